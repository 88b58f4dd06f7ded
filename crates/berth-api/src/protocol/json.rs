//! AWS JSON 1.1 and 1.0: `X-Amz-Target: <TargetPrefix>.<Operation>`, JSON bodies, errors as
//! `{"__type": "...", "message": "..."}` with an `x-amzn-ErrorType` header. CloudWatch speaks 1.0
//! (`application/x-amz-json-1.0`, answered in kind) and adds `x-amzn-query-error` to its errors (`compat.rs`).

use berth_core::{AwsError, ErrorCode};
use berth_model::DecodeError;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};

use super::{Route, Service};
use crate::sigv4::AuthError;
use crate::{Request, Response};

pub(crate) const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
pub(crate) const CONTENT_TYPE_1_0: &str = "application/x-amz-json-1.0";

/// The service a target prefix names.
fn service_of_prefix(prefix: &str) -> Option<Service> {
    match prefix {
        berth_model::ecs::TARGET_PREFIX => Some(Service::Ecs),
        berth_model::secretsmanager::TARGET_PREFIX => Some(Service::SecretsManager),
        berth_model::ssm::TARGET_PREFIX => Some(Service::Ssm),
        berth_model::logs::TARGET_PREFIX => Some(Service::Logs),
        berth_model::cloudwatch::TARGET_PREFIX => Some(Service::CloudWatch),
        berth_model::application_autoscaling::TARGET_PREFIX => Some(Service::ApplicationAutoScaling),
        _ => None,
    }
}

/// The service the `X-Amz-Target` header names, if berth serves it (unauthenticated: for spelling errors).
pub(crate) fn service(parts: &http::request::Parts) -> Option<Service> {
    let target = parts.headers.get("x-amz-target")?.to_str().ok()?.trim();
    service_of_prefix(target.split_once('.').map_or(target, |(prefix, _)| prefix))
}

/// The content type a service's JSON protocol answers with.
fn content_type(service: Option<Service>) -> &'static str {
    match service {
        Some(Service::CloudWatch) => CONTENT_TYPE_1_0,
        _ => CONTENT_TYPE,
    }
}

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
    let Some(service) = service_of_prefix(prefix) else {
        return Err(AwsError::new(
            ErrorCode::UnknownOperation,
            format!("The target {target} names a service berth does not serve"),
        ));
    };
    if parts.method != http::Method::POST {
        return Err(AwsError::new(
            ErrorCode::UnknownOperation,
            format!("AWS JSON operations are called with POST, not {}", parts.method),
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
        Service::ApplicationAutoScaling => {
            berth_model::application_autoscaling::Operation::decode(op, body).map(Request::ApplicationAutoScaling)
        }
        Service::CloudWatch => return decode_cloudwatch(op, body),
        Service::Elbv2 | Service::Iam | Service::Sts | Service::Ec2 => {
            return Err(AwsError::new(
                ErrorCode::UnknownOperation,
                format!("{} is not served over AWS JSON", route.service.signing_name()),
            ));
        }
    };
    decoded.map_err(|e| match (route.service, e) {
        // SSM and Application Auto Scaling report model violations as ValidationException; ECS and Secrets
        // Manager as InvalidParameterException.
        (Service::Ssm | Service::ApplicationAutoScaling, DecodeError::Invalid(m)) => {
            AwsError::new(ErrorCode::Validation, m)
        }
        (_, e) => e.into(),
    })
}

/// A CloudWatch JSON 1.0 body, decoded through the member-name value every CloudWatch protocol builds, so that
/// all three tell an absent member (`MissingParameter`) from a wrong one (`InvalidParameterValue`) alike.
fn decode_cloudwatch(op: &str, body: &[u8]) -> Result<Request, AwsError> {
    let value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_slice::<serde_json::Value>(body)
            .map_err(|e| AwsError::new(ErrorCode::Serialization, format!("Request body is not valid JSON: {e}")))?
    };
    if !value.is_object() {
        return Err(AwsError::new(ErrorCode::Serialization, "Request body must be a JSON object"));
    }
    berth_model::cloudwatch::Operation::from_value(op, value)
        .map(Request::CloudWatch)
        .map_err(super::compat::cloudwatch_decode_error)
}

fn response(status: StatusCode, content_type: &'static str, body: Vec<u8>, request_id: &str) -> http::Response<Bytes> {
    let mut resp = http::Response::new(Bytes::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(content_type));
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
        Response::ApplicationAutoScaling(out) => out.to_json(),
        Response::CloudWatch(out) => {
            // Operations without output (PutMetricData, PutMetricAlarm, ...) answer an empty object.
            let body = if out.to_value().is_null() { b"{}".to_vec() } else { out.to_json() };
            return response(StatusCode::OK, CONTENT_TYPE_1_0, body, request_id);
        }
        Response::Elbv2(_) | Response::Iam(_) | Response::Sts(_) | Response::Ec2(_) => {
            return super::query::encode(resp, request_id);
        }
    };
    response(StatusCode::OK, CONTENT_TYPE, body, request_id)
}

/// Writes an error in the JSON protocol of `service` (JSON 1.1 when the request named none berth serves).
pub(crate) fn encode_error(service: Option<Service>, error: &AwsError, request_id: &str) -> http::Response<Bytes> {
    let (wire, query_error) = match service {
        Some(Service::CloudWatch) => {
            let wire = super::compat::cloudwatch(error);
            let header = wire.query_error_header();
            (wire, Some(header))
        }
        _ => (super::compat::generic(error.code), None),
    };
    let body = serde_json::json!({ "__type": wire.shape, "message": error.message });
    let status = StatusCode::from_u16(wire.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = response(status, content_type(service), body.to_string().into_bytes(), request_id);
    let h = resp.headers_mut();
    h.insert("x-amzn-errortype", HeaderValue::from_static(wire.shape));
    if let Some(v) = query_error.and_then(|q| HeaderValue::from_str(&q).ok()) {
        h.insert("x-amzn-query-error", v);
    }
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
        let resp = encode_error(None, &AwsError::new(ErrorCode::ClusterNotFound, "Cluster not found."), "rid");
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.headers()["x-amzn-errortype"], "ClusterNotFoundException");
        assert_eq!(resp.headers()["x-amzn-requestid"], "rid");
        assert_eq!(resp.headers()["content-type"], CONTENT_TYPE);
        let v: serde_json::Value = serde_json::from_slice(resp.body()).expect("json");
        assert_eq!(v, serde_json::json!({"__type": "ClusterNotFoundException", "message": "Cluster not found."}));
        assert_eq!(auth_error(&AuthError::Missing).code.http_status(), 403);
        assert!(!resp.headers().contains_key("x-amzn-query-error"));
        // CloudWatch: JSON 1.0, the shape as __type, the Query code in x-amzn-query-error.
        let e = AwsError::new(ErrorCode::InvalidParameterValue, "The value NaN for parameter Value is invalid.");
        let resp = encode_error(Some(Service::CloudWatch), &e, "rid");
        assert_eq!(resp.status(), 400);
        assert_eq!(resp.headers()["content-type"], CONTENT_TYPE_1_0);
        assert_eq!(resp.headers()["x-amzn-query-error"], "InvalidParameterValue;Sender");
        let v: serde_json::Value = serde_json::from_slice(resp.body()).expect("json");
        assert_eq!(v["__type"], "InvalidParameterValueException");
    }

    #[test]
    fn application_autoscaling_over_json_1_1() {
        use berth_model::application_autoscaling as aas;
        let r = route(&parts("POST", Some("AnyScaleFrontendService.RegisterScalableTarget"))).expect("route");
        assert_eq!(r, Route { service: Service::ApplicationAutoScaling, operation: "RegisterScalableTarget".into() });
        let body = br#"{"ServiceNamespace":"ecs","ResourceId":"service/default/web",
            "ScalableDimension":"ecs:service:DesiredCount","MinCapacity":1,"MaxCapacity":20}"#;
        let Ok(Request::ApplicationAutoScaling(aas::Operation::RegisterScalableTarget(req))) = decode(&r, body) else {
            panic!("decode failed");
        };
        assert_eq!(
            (req.resource_id.as_deref(), req.min_capacity, req.max_capacity),
            (Some("service/default/web"), Some(1), Some(20))
        );
        // Model violations are ValidationException, as the model lists.
        let e = decode(&r, br#"{"ServiceNamespace":"ecs"}"#).expect_err("missing members");
        assert_eq!((e.code, e.code.name()), (ErrorCode::Validation, "ValidationException"));
        assert!(e.message.contains("'ResourceId'"), "{}", e.message);
        let out = aas::Output::RegisterScalableTarget(aas::RegisterScalableTargetResponse {
            scalable_target_arn: Some(
                "arn:aws:application-autoscaling:us-east-1:123456789012:scalable-target/x".into(),
            ),
        });
        let resp = encode(&Response::ApplicationAutoScaling(out), "rid");
        assert_eq!(resp.headers()["content-type"], CONTENT_TYPE);
        let v: serde_json::Value = serde_json::from_slice(resp.body()).expect("json");
        assert!(v["ScalableTargetARN"].as_str().is_some_and(|a| a.ends_with("scalable-target/x")), "{v}");
        let resp = encode_error(Some(Service::ApplicationAutoScaling), &e, "rid");
        assert_eq!(resp.headers()["content-type"], CONTENT_TYPE);
        assert!(!resp.headers().contains_key("x-amzn-query-error"));
    }
}
