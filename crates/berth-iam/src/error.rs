//! The two ways a policy document is refused, with the AWS error codes IAM uses for them.

/// Why a policy document was refused. `Display` is the message AWS puts after the code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// `MalformedPolicyDocument` (HTTP 400): the document is not valid policy grammar for its kind.
    #[error("{0}")]
    Malformed(String),
    /// `LimitExceeded` (HTTP 409): the document (or an entity's inline aggregate) is too large.
    #[error("{0}")]
    LimitExceeded(String),
}

impl PolicyError {
    /// The AWS error code (`MalformedPolicyDocument` or `LimitExceeded`).
    pub fn aws_code(&self) -> &'static str {
        match self {
            PolicyError::Malformed(_) => "MalformedPolicyDocument",
            PolicyError::LimitExceeded(_) => "LimitExceeded",
        }
    }

    /// The message without the code.
    pub fn message(&self) -> &str {
        match self {
            PolicyError::Malformed(m) | PolicyError::LimitExceeded(m) => m,
        }
    }

    pub(crate) fn malformed(m: impl Into<String>) -> Self {
        PolicyError::Malformed(m.into())
    }
}

/// AWS's catch-all reason for a document that is not JSON or has the wrong shape somewhere.
pub(crate) const SYNTAX: &str = "Syntax errors in policy.";
