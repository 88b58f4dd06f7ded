//! The one error a client can see from this crate: an AWS error code (from `berth-core`'s exhaustive list) and a
//! CloudWatch-style message naming the parameter (`MetricData.member.1.Value`).

use berth_core::{AwsError, ErrorCode};

/// A request CloudWatch would refuse: `InvalidParameterValue`, `MissingParameter` or `InvalidParameterCombination`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.name())]
pub struct Invalid {
    pub code: ErrorCode,
    pub message: String,
}

impl Invalid {
    pub fn value(message: impl Into<String>) -> Self {
        Invalid { code: ErrorCode::InvalidParameterValue, message: message.into() }
    }
    pub fn missing(parameter: &str) -> Self {
        Invalid { code: ErrorCode::MissingParameter, message: format!("The parameter {parameter} is required.") }
    }
    pub fn combination(message: impl Into<String>) -> Self {
        Invalid { code: ErrorCode::InvalidParameterCombination, message: message.into() }
    }
}

impl From<Invalid> for AwsError {
    fn from(e: Invalid) -> Self {
        AwsError::new(e.code, e.message)
    }
}
