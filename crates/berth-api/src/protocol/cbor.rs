//! Smithy RPC v2 CBOR: `POST /service/<ServiceName>/operation/<Operation>` with `smithy-protocol: rpc-v2-cbor`,
//! CBOR bodies (RFC 8949); errors as a CBOR map `{"__type": "...", "message": "..."}` with the same header, and,
//! for services that are `awsQueryCompatible` (CloudWatch), the Query spelling of the code in
//! `x-amzn-query-error: <Code>;<Sender|Receiver>`, which their SDKs report instead of `__type`.
//!
//! The Go and Java SDKs speak it to CloudWatch. berth serves no service over it yet: every request is answered
//! in it (authentication errors included), so a client can read why it was refused.

use std::collections::BTreeMap;

use berth_core::{AwsError, ErrorCode};
use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use super::Route;

pub(crate) const CONTENT_TYPE: &str = "application/cbor";
/// The header that names the protocol, on requests and responses.
pub(crate) const PROTOCOL_HEADER: &str = "smithy-protocol";
pub(crate) const PROTOCOL: &str = "rpc-v2-cbor";

/// Whether a request speaks RPC v2 CBOR (its `smithy-protocol` header says so).
pub(crate) fn is_rpc_v2_cbor(parts: &http::request::Parts) -> bool {
    parts.headers.get(PROTOCOL_HEADER).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() == PROTOCOL)
}

/// The service and operation of `/service/<ServiceName>/operation/<Operation>` (a prefix before `/service/` is
/// allowed, as the specification allows endpoints with a path).
fn service_and_operation(path: &str) -> Option<(&str, &str)> {
    let rest = &path[path.rfind("/service/")? + "/service/".len()..];
    let (service, operation) = rest.split_once("/operation/")?;
    (!service.is_empty() && !operation.is_empty() && !operation.contains('/')).then_some((service, operation))
}

/// Names the service and operation. No service is served over RPC v2 CBOR yet, so this always answers why.
pub(crate) fn route(parts: &http::request::Parts) -> Result<Route, AwsError> {
    if parts.method != http::Method::POST {
        return Err(AwsError::new(
            ErrorCode::UnknownOperation,
            format!("RPC v2 CBOR operations are called with POST, not {}", parts.method),
        ));
    }
    match service_and_operation(parts.uri.path()) {
        Some((service, operation)) => Err(AwsError::new(
            ErrorCode::UnknownOperation,
            format!("berth does not serve {service} (operation {operation}) yet"),
        )),
        None => Err(AwsError::new(
            ErrorCode::UnknownOperation,
            "The request names no operation: RPC v2 CBOR requests are POST /service/<ServiceName>/operation/<Operation>",
        )),
    }
}

/// The Query protocol's spelling of a code, for `x-amzn-query-error`.
fn query_code(code: ErrorCode) -> &'static str {
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

/// The CBOR error body: a map of `__type` and `message`.
fn error_body(error: &AwsError) -> Vec<u8> {
    let body = BTreeMap::from([("__type", error.code.name()), ("message", error.message.as_str())]);
    let mut out = Vec::with_capacity(64 + error.message.len());
    // Writing a map of two strings into a Vec cannot fail; an empty body is still a readable error status.
    if ciborium::into_writer(&body, &mut out).is_err() {
        out.clear();
    }
    out
}

pub(crate) fn encode_error(error: &AwsError, request_id: &str) -> http::Response<Bytes> {
    let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = http::Response::new(Bytes::from(error_body(error)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    h.insert(PROTOCOL_HEADER, HeaderValue::from_static(PROTOCOL));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", id);
    }
    let fault = if error.code.is_sender_fault() { "Sender" } else { "Receiver" };
    if let Ok(v) = HeaderValue::from_str(&format!("{};{fault}", query_code(error.code))) {
        h.insert("x-amzn-query-error", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str) -> http::request::Parts {
        let b = http::Request::builder().method(method).uri(uri).header(PROTOCOL_HEADER, PROTOCOL);
        b.body(()).expect("request").into_parts().0
    }

    #[test]
    fn routes_name_the_service_and_operation_berth_does_not_serve() {
        let cases = [
            ("POST", "/service/GraniteServiceVersion20100801/operation/GetMetricData", "GraniteServiceVersion20100801"),
            ("POST", "/prefix/service/Svc/operation/Op", "Svc (operation Op)"),
            ("POST", "/", "names no operation"),
            ("POST", "/service/Svc/operation/", "names no operation"),
            ("POST", "/service/Svc/operation/A/B", "names no operation"),
            ("GET", "/service/Svc/operation/Op", "not GET"),
        ];
        for (method, uri, text) in cases {
            let p = parts(method, uri);
            assert!(is_rpc_v2_cbor(&p));
            let e = route(&p).expect_err("nothing is served over CBOR");
            assert_eq!(e.code, ErrorCode::UnknownOperation, "{method} {uri}");
            assert!(e.message.contains(text), "{method} {uri}: {}", e.message);
        }
    }

    #[test]
    fn errors_are_cbor_maps_with_the_protocol_header() {
        let resp = encode_error(&AwsError::new(ErrorCode::UnknownOperation, "no such thing"), "rid");
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.headers()["content-type"], CONTENT_TYPE);
        assert_eq!(resp.headers()["smithy-protocol"], "rpc-v2-cbor");
        assert_eq!(resp.headers()["x-amzn-requestid"], "rid");
        assert_eq!(resp.headers()["x-amzn-query-error"], "InvalidAction;Sender");
        let body: BTreeMap<String, String> = ciborium::from_reader(&resp.body()[..]).expect("a CBOR map");
        let want = BTreeMap::from([
            ("__type".to_string(), "UnknownOperationException".to_string()),
            ("message".to_string(), "no such thing".to_string()),
        ]);
        assert_eq!(body, want);
        // The exact bytes: a map of two text strings (RFC 8949 major types 5 and 3).
        assert_eq!(&resp.body()[..8], b"\xa2\x66__type");
        let resp = encode_error(&AwsError::new(ErrorCode::MissingAuthenticationToken, "m"), "rid");
        assert_eq!(
            (resp.status().as_u16(), resp.headers()["x-amzn-query-error"].to_str().ok()),
            (403, Some("MissingAuthenticationToken;Sender"))
        );
        let resp = encode_error(&AwsError::internal("x"), "rid");
        assert_eq!(resp.headers()["x-amzn-query-error"], "ServerException;Receiver");
    }
}
