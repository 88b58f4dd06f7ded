//! CloudWatch's errors on the wire. Its model is `awsQueryCompatible`: every protocol it speaks names an error by
//! its shape (`__type: InvalidParameterValueException` in JSON 1.0 and RPC v2 CBOR) and also by its Query code
//! (`x-amzn-query-error: InvalidParameterValue;Sender`, which botocore and the other SDKs report as the error
//! code), and Query answers `<Code>InvalidParameterValue</Code>`. The generated `cloudwatch::ERRORS` table holds
//! both spellings with the status and the fault.
//!
//! The control plane names a CloudWatch error by an [`ErrorCode`] whose wire name is either the shape
//! (`InvalidParameterValueException`) or the Query code (`InvalidParameterValue`, `MissingParameter`,
//! `ResourceNotFound`, `LimitExceeded`, ...); both find the same row. Errors the model does not list (signatures,
//! access, unknown operations) keep their own name, with the Query spelling as the header's code. ECS's generic
//! `InvalidParameterException` becomes CloudWatch's `InvalidParameterValueException`, `LimitExceededException`
//! `LimitExceededFault`, an internal failure `InternalServiceFault`.

use berth_core::{AwsError, ErrorCode};
use berth_model::DecodeError;
use berth_model::cloudwatch::ERRORS;

/// An error as one service spells it on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireError {
    /// `__type` in JSON and CBOR: the error's shape name.
    pub(crate) shape: &'static str,
    /// The Query protocol's code: `<Code>` in XML, the first half of `x-amzn-query-error`.
    pub(crate) query_code: &'static str,
    pub(crate) status: u16,
    pub(crate) sender_fault: bool,
}

impl WireError {
    /// `x-amzn-query-error: <Code>;<Sender|Receiver>`.
    pub(crate) fn query_error_header(&self) -> String {
        format!("{};{}", self.query_code, if self.sender_fault { "Sender" } else { "Receiver" })
    }

    /// The `Type` of a Query error.
    pub(crate) fn fault(&self) -> &'static str {
        if self.sender_fault { "Sender" } else { "Receiver" }
    }
}

/// The Query protocol's spelling of a code every service shares, for `x-amzn-query-error`.
pub(crate) fn query_code(code: ErrorCode) -> &'static str {
    let query = match code {
        ErrorCode::UnknownOperation => ErrorCode::InvalidAction,
        ErrorCode::MissingAuthenticationToken => ErrorCode::MissingAuthenticationTokenQuery,
        ErrorCode::IncompleteSignature => ErrorCode::IncompleteSignatureQuery,
        ErrorCode::InvalidSignature => ErrorCode::SignatureDoesNotMatch,
        ErrorCode::UnrecognizedClient => ErrorCode::InvalidClientTokenId,
        ErrorCode::ExpiredToken => ErrorCode::ExpiredTokenQuery,
        ErrorCode::AccessDenied => ErrorCode::AccessDeniedQuery,
        ErrorCode::Validation => ErrorCode::ValidationError,
        other => other,
    };
    query.name()
}

/// An error of a service that is not Query-compatible: its own name, with the Query spelling beside it.
pub(crate) fn generic(code: ErrorCode) -> WireError {
    WireError {
        shape: code.name(),
        query_code: query_code(code),
        status: code.http_status(),
        sender_fault: code.is_sender_fault(),
    }
}

fn modeled(shape: &str) -> Option<WireError> {
    ERRORS.iter().find(|e| e.shape == shape).map(|e| WireError {
        shape: e.shape,
        query_code: e.code,
        status: e.http_status,
        sender_fault: e.sender_fault,
    })
}

/// How CloudWatch spells `error` in each of its protocols.
pub(crate) fn cloudwatch(error: &AwsError) -> WireError {
    let name = error.code.name();
    let by_shape = modeled(name);
    let by_query_code = || ERRORS.iter().find(|e| e.code == name).and_then(|e| modeled(e.shape));
    let by_meaning = || match error.code {
        ErrorCode::InvalidParameter => modeled("InvalidParameterValueException"),
        ErrorCode::LimitExceeded => modeled("LimitExceededFault"),
        ErrorCode::Server | ErrorCode::InternalFailure => modeled("InternalServiceFault"),
        _ => None,
    };
    // Outside the model's table: the Query spelling of a shared code (AccessDenied, InvalidAction, ...).
    by_shape.or_else(by_query_code).or_else(by_meaning).unwrap_or_else(|| generic(error.code))
}

/// A CloudWatch request that does not fit the model, in every protocol: an absent required member is
/// `MissingParameter` ("The parameter X is required."), a wrong value `InvalidParameterValue`, an unknown
/// operation the protocol's own answer (`UnknownOperationException`, Query's `InvalidAction`).
pub(crate) fn cloudwatch_decode_error(e: DecodeError) -> AwsError {
    match e {
        DecodeError::UnknownOperation(op) => {
            AwsError::new(ErrorCode::UnknownOperation, format!("Operation {op} is not supported by berth"))
        }
        DecodeError::Missing { paths, .. } => {
            AwsError::new(ErrorCode::MissingParameter, format!("The parameter {} is required.", paths.join(", ")))
        }
        DecodeError::Invalid(m) => AwsError::new(ErrorCode::InvalidParameterValue, m),
        DecodeError::Malformed(m) => AwsError::new(ErrorCode::Serialization, m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudwatch_spellings() {
        // (code the control plane answers, __type, Query code, status, sender fault)
        let cases = [
            (ErrorCode::InvalidParameterValue, "InvalidParameterValueException", "InvalidParameterValue", 400, true),
            (ErrorCode::MissingParameter, "MissingRequiredParameterException", "MissingParameter", 400, true),
            (
                ErrorCode::InvalidParameterCombination,
                "InvalidParameterCombinationException",
                "InvalidParameterCombination",
                400,
                true,
            ),
            (ErrorCode::InvalidParameter, "InvalidParameterValueException", "InvalidParameterValue", 400, true),
            (ErrorCode::InvalidNextToken, "InvalidNextToken", "InvalidNextToken", 400, true),
            (ErrorCode::IamLimitExceeded, "LimitExceededFault", "LimitExceeded", 400, true),
            (ErrorCode::LimitExceeded, "LimitExceededFault", "LimitExceeded", 400, true),
            (ErrorCode::ResourceNotFound, "ResourceNotFoundException", "ResourceNotFoundException", 404, true),
            (ErrorCode::InternalFailure, "InternalServiceFault", "InternalServiceError", 500, false),
            (ErrorCode::Server, "InternalServiceFault", "InternalServiceError", 500, false),
            (ErrorCode::AccessDenied, "AccessDeniedException", "AccessDenied", 400, true),
            (ErrorCode::UnknownOperation, "UnknownOperationException", "InvalidAction", 400, true),
            (ErrorCode::InvalidSignature, "InvalidSignatureException", "SignatureDoesNotMatch", 400, true),
            (
                ErrorCode::MissingAuthenticationToken,
                "MissingAuthenticationTokenException",
                "MissingAuthenticationToken",
                403,
                true,
            ),
            (ErrorCode::Serialization, "SerializationException", "SerializationException", 400, true),
        ];
        for (code, shape, query, status, sender) in cases {
            let w = cloudwatch(&AwsError::new(code, "m"));
            assert_eq!((w.shape, w.query_code, w.status, w.sender_fault), (shape, query, status, sender), "{code:?}");
        }
        assert_eq!(
            cloudwatch(&AwsError::new(ErrorCode::InternalFailure, "m")).query_error_header(),
            "InternalServiceError;Receiver"
        );
    }

    #[test]
    fn decode_errors() {
        let e = cloudwatch_decode_error(DecodeError::Missing {
            paths: vec!["MetricData.member.1.MetricName".into()],
            message: "x".into(),
        });
        assert_eq!(
            (e.code, e.message.as_str()),
            (ErrorCode::MissingParameter, "The parameter MetricData.member.1.MetricName is required.")
        );
        assert_eq!(cloudwatch_decode_error(DecodeError::Invalid("x".into())).code, ErrorCode::InvalidParameterValue);
        assert_eq!(cloudwatch_decode_error(DecodeError::Malformed("x".into())).code, ErrorCode::Serialization);
        assert_eq!(
            cloudwatch_decode_error(DecodeError::UnknownOperation("X".into())).code,
            ErrorCode::UnknownOperation
        );
    }
}
