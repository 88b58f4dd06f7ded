//! What can go wrong calling berth.

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// berth answered with an AWS error.
    #[error("{code}: {message}")]
    Api { code: String, message: String, status: u16, request_id: Option<String> },
    /// berth could not be reached, or the connection failed.
    #[error("cannot reach berth at {endpoint}: {detail}")]
    Transport { endpoint: String, detail: String },
    /// No credentials, no endpoint, an unreadable CA bundle or profile.
    #[error("{0}")]
    Config(String),
    /// berth's answer did not have the expected shape.
    #[error("unexpected answer from berth: {0}")]
    Decode(String),
}

impl ClientError {
    /// The AWS error code, for an API error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}
