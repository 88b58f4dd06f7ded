//! The one exhaustive mapping from berth's error codes to AWS error names and HTTP statuses.
//!
//! Every library error that can reach a client is converted into an [`AwsError`] at the boundary where it
//! becomes visible; the wire layer only ever renders `AwsError`s. Adding a code means adding it to the
//! `match` below, which the compiler enforces.

use std::fmt;

/// An AWS error code berth can return. The wire name is [`ErrorCode::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    // Authentication and protocol errors shared by every service.
    IncompleteSignature,
    InvalidSignature,
    /// Query-protocol spelling of `InvalidSignature`.
    SignatureDoesNotMatch,
    UnrecognizedClient,
    /// Query-protocol spelling of `UnrecognizedClient`.
    InvalidClientTokenId,
    MissingAuthenticationToken,
    ExpiredToken,
    /// Query-protocol "request is too old/too far in the future".
    RequestExpired,
    AccessDenied,
    Serialization,
    UnknownOperation,
    Validation,
    InternalFailure,
    /// The request body is larger than the endpoint accepts (HTTP 413).
    RequestEntityTooLarge,
    // ECS.
    Server,
    Client,
    InvalidParameter,
    ClusterNotFound,
    ClusterContainsServices,
    ClusterContainsTasks,
    ServiceNotFound,
    ServiceNotActive,
    ResourceNotFound,
    ResourceInUse,
    UnsupportedFeature,
    PlatformUnknown,
    PlatformTaskDefinitionIncompatibility,
    LimitExceeded,
}

impl ErrorCode {
    /// The error's name on the wire (`__type` in JSON protocols, `Code` in Query/XML).
    pub fn name(self) -> &'static str {
        use ErrorCode::*;
        match self {
            IncompleteSignature => "IncompleteSignatureException",
            InvalidSignature => "InvalidSignatureException",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            UnrecognizedClient => "UnrecognizedClientException",
            InvalidClientTokenId => "InvalidClientTokenId",
            MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ExpiredToken => "ExpiredTokenException",
            RequestExpired => "RequestExpired",
            AccessDenied => "AccessDeniedException",
            Serialization => "SerializationException",
            UnknownOperation => "UnknownOperationException",
            Validation => "ValidationException",
            InternalFailure => "InternalFailure",
            RequestEntityTooLarge => "RequestEntityTooLargeException",
            Server => "ServerException",
            Client => "ClientException",
            InvalidParameter => "InvalidParameterException",
            ClusterNotFound => "ClusterNotFoundException",
            ClusterContainsServices => "ClusterContainsServicesException",
            ClusterContainsTasks => "ClusterContainsTasksException",
            ServiceNotFound => "ServiceNotFoundException",
            ServiceNotActive => "ServiceNotActiveException",
            ResourceNotFound => "ResourceNotFoundException",
            ResourceInUse => "ResourceInUseException",
            UnsupportedFeature => "UnsupportedFeatureException",
            PlatformUnknown => "PlatformUnknownException",
            PlatformTaskDefinitionIncompatibility => "PlatformTaskDefinitionIncompatibilityException",
            LimitExceeded => "LimitExceededException",
        }
    }

    /// The HTTP status AWS answers with for this code.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            IncompleteSignature
            | InvalidSignature
            | UnrecognizedClient
            | ExpiredToken
            | AccessDenied
            | Serialization
            | UnknownOperation
            | Validation
            | Client
            | InvalidParameter
            | ClusterNotFound
            | ClusterContainsServices
            | ClusterContainsTasks
            | ServiceNotFound
            | ServiceNotActive
            | ResourceNotFound
            | ResourceInUse
            | UnsupportedFeature
            | PlatformUnknown
            | PlatformTaskDefinitionIncompatibility
            | LimitExceeded
            | RequestExpired => 400,
            SignatureDoesNotMatch | InvalidClientTokenId | MissingAuthenticationToken => 403,
            RequestEntityTooLarge => 413,
            InternalFailure | Server => 500,
        }
    }

    /// Whether the fault is the sender's (`Sender`) or the server's (`Receiver`), as Query/XML errors say.
    pub fn is_sender_fault(self) -> bool {
        self.http_status() < 500
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error as a client sees it: a code and a message a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    pub code: ErrorCode,
    pub message: String,
}

impl AwsError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameter, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Server, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_faults_are_5xx_and_client_faults_4xx() {
        assert_eq!(ErrorCode::Server.http_status(), 500);
        assert!(!ErrorCode::InternalFailure.is_sender_fault());
        assert_eq!(ErrorCode::InvalidSignature.http_status(), 400);
        assert!(ErrorCode::ServiceNotFound.is_sender_fault());
        assert_eq!(ErrorCode::ServiceNotFound.name(), "ServiceNotFoundException");
    }
}
