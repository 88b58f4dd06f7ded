//! AWS JSON 1.1: `X-Amz-Target: <TargetPrefix>.<Operation>`, JSON bodies, errors as
//! `{"__type": "...", "message": "..."}` with an `x-amzn-ErrorType` header.

use berth_core::{AwsError, ErrorCode};
use berth_model::DecodeError;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use super::{Route, Service};
use crate::sigv4::AuthError;
use crate::{Request, Response};

pub(crate) const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

pub(crate) fn auth_error(e: &AuthError) -> AwsError {
    let code = match e {
        AuthError::Missing => ErrorCode::MissingAuthenticationToken,
        AuthError::Incomplete(_) => ErrorCode::IncompleteSignature,
        AuthError::UnrecognizedClient => ErrorCode::UnrecognizedClient,
        AuthError::ExpiredToken => ErrorCode::ExpiredToken,
        AuthError::Expired(_) | AuthError::InvalidSignature(_) => ErrorCode::InvalidSignature,
    };
    AwsError::new(code, e.to_string())
}

pub(crate) fn route(parts: &http::request::Parts) -> Result<Route, AwsError> {
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or("");
    if target.is_empty() {
        return Err(AwsError::new(
            ErrorCode::UnknownOperation,
            "The request names no operation: berth expects an X-Amz-Target header (AWS JSON 1.1 protocol)",
        ));
    }
    let (prefix, operation) = target.split_once('.').unwrap_or((target, ""));
    if operation.is_empty() {
        return Err(AwsError::new(ErrorCode::UnknownOperation, format!("The target {target} names no operation")));
    }
    let service = match prefix {
        berth_model::ecs::TARGET_PREFIX => Service::Ecs,
        berth_model::secretsmanager::TARGET_PREFIX => Service::SecretsManager,
        berth_model::ssm::TARGET_PREFIX => Service::Ssm,
        berth_model::logs::TARGET_PREFIX => Service::Logs,
        _ => {
            return Err(AwsError::new(
                ErrorCode::UnknownOperation,
                format!("The target {target} names a service berth does not serve"),
            ));
        }
    };
    if parts.method != http::Method::POST {
        return Err(AwsError::new(
            ErrorCode::UnknownOperation,
            format!("AWS JSON 1.1 operations are called with POST, not {}", parts.method),
        ));
    }
    Ok(Route { service, operation: operation.to_string() })
}

pub(crate) fn decode(route: &Route, body: &[u8]) -> Result<Request, AwsError> {
    let op = &route.operation;
    let decoded = match route.service {
        Service::Ecs => berth_model::ecs::Operation::decode(op, body).map(Request::Ecs),
        Service::SecretsManager => {
            berth_model::secretsmanager::Operation::decode(op, body).map(Request::SecretsManager)
        }
        Service::Ssm => berth_model::ssm::Operation::decode(op, body).map(Request::Ssm),
        Service::Logs => berth_model::logs::Operation::decode(op, body).map(Request::Logs),
        Service::Elbv2 | Service::Iam | Service::Sts | Service::Ec2 => {
            return Err(AwsError::new(
                ErrorCode::UnknownOperation,
                format!("{} is not served over AWS JSON 1.1", route.service.signing_name()),
            ));
        }
    };
    decoded.map_err(|e| match (route.service, e) {
        // SSM reports model violations as ValidationException; ECS and Secrets Manager as InvalidParameterException.
        (Service::Ssm, DecodeError::Invalid(m)) => AwsError::new(ErrorCode::Validation, m),
        (_, e) => e.into(),
    })
}

fn response(status: StatusCode, body: Vec<u8>, request_id: &str) -> http::Response<Bytes> {
    let mut resp = http::Response::new(Bytes::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", id);
    }
    resp
}

pub(crate) fn encode(resp: &Response, request_id: &str) -> http::Response<Bytes> {
    let body = match resp {
        Response::Ecs(out) => out.to_json(),
        Response::SecretsManager(out) => out.to_json(),
        Response::Ssm(out) => out.to_json(),
        Response::Logs(out) => out.to_json(),
        Response::Elbv2(_) | Response::Iam(_) | Response::Sts(_) | Response::Ec2(_) => {
            return super::query::encode(resp, request_id);
        }
    };
    response(StatusCode::OK, body, request_id)
}

pub(crate) fn encode_error(error: &AwsError, request_id: &str) -> http::Response<Bytes> {
    let name = error.code.name();
    let body = serde_json::json!({ "__type": name, "message": error.message });
    let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = response(status, body.to_string().into_bytes(), request_id);
    resp.headers_mut().insert("x-amzn-errortype", HeaderValue::from_static(name));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, target: Option<&str>) -> http::request::Parts {
        let mut b = http::Request::builder().method(method).uri("/");
        if let Some(t) = target {
            b = b.header("x-amz-target", t);
        }
        b.body(()).expect("request").into_parts().0
    }

    #[test]
    fn routes_by_target() {
        let r = route(&parts("POST", Some("AmazonEC2ContainerServiceV20141113.ListClusters"))).expect("route");
        assert_eq!(r, Route { service: Service::Ecs, operation: "ListClusters".into() });
        let r = route(&parts("POST", Some("Logs_20140328.GetLogEvents"))).expect("route");
        assert_eq!(r, Route { service: Service::Logs, operation: "GetLogEvents".into() });
        for (method, target) in [
            ("POST", None),
            ("POST", Some("AmazonEC2ContainerServiceV20141113")),
            ("POST", Some("Kinesis_20131202.ListStreams")),
            ("GET", Some("AmazonEC2ContainerServiceV20141113.ListClusters")),
        ] {
            let e = route(&parts(method, target)).expect_err("unroutable");
            assert_eq!(e.code, ErrorCode::UnknownOperation, "{method} {target:?}");
        }
        // A known prefix with an unknown operation fails at decoding, with the operation named.
        let r = route(&parts("POST", Some("AmazonEC2ContainerServiceV20141113.RunTask"))).expect("route");
        let e = decode(&r, b"{}").expect_err("unknown");
        assert_eq!(e.code, ErrorCode::UnknownOperation);
        assert!(e.message.contains("RunTask"));
    }

    #[test]
    fn error_shape() {
        let resp = encode_error(&AwsError::new(ErrorCode::ClusterNotFound, "Cluster not found."), "rid");
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.headers()["x-amzn-errortype"], "ClusterNotFoundException");
        assert_eq!(resp.headers()["x-amzn-requestid"], "rid");
        assert_eq!(resp.headers()["content-type"], CONTENT_TYPE);
        let v: serde_json::Value = serde_json::from_slice(resp.body()).expect("json");
        assert_eq!(v, serde_json::json!({"__type": "ClusterNotFoundException", "message": "Cluster not found."}));
        assert_eq!(auth_error(&AuthError::Missing).code.http_status(), 403);
    }
}
