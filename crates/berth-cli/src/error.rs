//! A command's failure: what happened, what to do next, and the exit code.

use berth_client::ClientError;

use crate::exit;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// berth answered with an error, or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The named service does not exist.
    #[error("no service named {name:?} in cluster {cluster:?}")]
    NotFound { name: String, cluster: String },
    /// Bad usage that clap cannot see (a flag combination, a file that does not parse).
    #[error("{0}")]
    Usage(String),
    /// The command ran and what it asked for did not happen.
    #[error("{0}")]
    Failed(String),
    /// Ctrl-C.
    #[error("interrupted")]
    Interrupted,
}

impl CliError {
    /// The documented exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Client(ClientError::Api { code, status, .. }) => match (code.as_str(), *status) {
                (_, 403)
                | (
                    "AccessDenied"
                    | "AccessDeniedException"
                    | "UnrecognizedClientException"
                    | "InvalidClientTokenId"
                    | "SignatureDoesNotMatch"
                    | "IncompleteSignature"
                    | "ExpiredToken",
                    _,
                ) => exit::DENIED,
                (
                    "ServiceNotFoundException"
                    | "ResourceNotFoundException"
                    | "NoSuchEntity"
                    | "ClusterNotFoundException",
                    _,
                ) => exit::NOT_FOUND,
                _ => exit::API,
            },
            CliError::Client(ClientError::Transport { .. } | ClientError::Config(_)) => exit::UNREACHABLE,
            CliError::Client(ClientError::Decode(_)) | CliError::Failed(_) => exit::FAILED,
            CliError::NotFound { .. } => exit::NOT_FOUND,
            CliError::Usage(_) => exit::USAGE,
            CliError::Interrupted => exit::INTERRUPTED,
        }
    }

    /// What to do next, printed under the error.
    pub fn hint(&self) -> Option<String> {
        match self {
            CliError::Client(ClientError::Transport { .. }) => {
                Some("is berth running? Start it with `berth up`, or pass --endpoint-url".into())
            }
            CliError::Client(ClientError::Config(_)) => Some(
                "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or `eval \"$(berth env)\"`), or pass --profile".into(),
            ),
            CliError::NotFound { .. } => Some("`berth ls` lists the services".into()),
            CliError::Client(e) if self.exit_code() == exit::DENIED => Some(format!(
                "the identity signing the request may not do this ({}); check its IAM policies",
                e.code().unwrap_or("denied")
            )),
            _ => None,
        }
    }
}
