use berth_core::{AwsError, ErrorCode};
use berth_store::StoreError;

/// Everything that can go wrong in the control plane, mapped exhaustively to AWS errors below.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("secrets key: {0}")]
    Vault(String),
    /// The container runtime failed or cannot be reached (e.g. dockerd restarting).
    #[error("container runtime: {0}")]
    Runtime(#[from] berth_runtime::DriverError),
}

impl ControlError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ControlError::Aws(AwsError::invalid_parameter(message))
    }
    pub fn code(code: ErrorCode, message: impl Into<String>) -> Self {
        ControlError::Aws(AwsError::new(code, message))
    }
}

impl From<ControlError> for AwsError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::Aws(a) => a,
            ControlError::Store(StoreError::Conflict(what)) => {
                AwsError::invalid_parameter(format!("{what} already exists"))
            }
            ControlError::Store(s) => {
                tracing::error!(error = %s, "store failure");
                AwsError::internal("The server could not record the change; nothing was changed. Try again.")
            }
            ControlError::Certificate(m) => {
                tracing::error!(error = %m, "certificate failure");
                AwsError::internal(format!("Could not issue the endpoint certificate: {m}"))
            }
            ControlError::Vault(m) => {
                tracing::error!(error = %m, "secrets key failure");
                AwsError::internal("The server could not use its secrets key; nothing was changed.")
            }
            ControlError::Runtime(e) => {
                tracing::error!(error = %e, "container runtime failure");
                AwsError::internal("The container runtime is unavailable. Try again.")
            }
        }
    }
}
