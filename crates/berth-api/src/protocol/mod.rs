//! The AWS wire protocols: which service and operation a request names, how its body becomes a typed
//! [`Request`](crate::Request), and how responses and errors are written back.
//!
//! - AWS JSON 1.1 (ECS, Secrets Manager, SSM, CloudWatch Logs, Application Auto Scaling) and 1.0 (CloudWatch):
//!   `X-Amz-Target: Prefix.Operation`, JSON bodies.
//! - Query (ELBv2, IAM, STS, CloudWatch): form-encoded `Action=...&Version=...` parameters, XML responses.
//! - EC2: Query's requests with EC2's parameter names, XML responses in EC2's envelope.
//! - Smithy RPC v2 CBOR (`smithy-protocol: rpc-v2-cbor`, the Go and Java SDKs' choice for CloudWatch): CloudWatch.
//!
//! CloudWatch speaks all three of its model's protocols (JSON 1.0, RPC v2 CBOR, Query); every one decodes into the
//! same typed operation through the model's member names, and its errors carry the Query spelling of the code
//! (`compat.rs`), as the model's `awsQueryCompatible` trait asks.
//!
//! A request for a service berth does not serve is answered in the protocol it spoke (a CBOR error for RPC v2
//! CBOR, an XML error for a form-encoded Query request), so the client can read the error.
//!
//! The protocol is detected from the headers (and, for unsigned form requests, the `Version` parameter)
//! before the request is authenticated, so that even authentication errors come back in the caller's
//! protocol. Query and EC2 requests are then routed by the SigV4 scope's service plus `Action`.

pub(crate) mod cbor;
pub(crate) mod compat;
pub(crate) mod json;
pub(crate) mod query;
pub(crate) mod xml;

use berth_core::AwsError;
use bytes::Bytes;

use crate::sigv4::AuthError;
use crate::{Request, Response};

/// An AWS service berth serves on this endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    Ecs,
    SecretsManager,
    Ssm,
    Logs,
    Elbv2,
    Iam,
    Sts,
    Ec2,
    CloudWatch,
    ApplicationAutoScaling,
}

impl Service {
    /// The SigV4 signing name the credential scope must carry.
    pub(crate) fn signing_name(self) -> &'static str {
        match self {
            Service::Ecs => berth_model::ecs::SIGNING_NAME,
            Service::SecretsManager => berth_model::secretsmanager::SIGNING_NAME,
            Service::Ssm => berth_model::ssm::SIGNING_NAME,
            Service::Logs => berth_model::logs::SIGNING_NAME,
            Service::Elbv2 => berth_model::elbv2::SIGNING_NAME,
            Service::Iam => berth_model::iam::SIGNING_NAME,
            Service::Sts => berth_model::sts::SIGNING_NAME,
            Service::Ec2 => berth_model::ec2::SIGNING_NAME,
            Service::CloudWatch => berth_model::cloudwatch::SIGNING_NAME,
            Service::ApplicationAutoScaling => berth_model::application_autoscaling::SIGNING_NAME,
        }
    }

    /// The services spoken over Query or EC2.
    const QUERY: [Service; 5] = [Service::Elbv2, Service::Iam, Service::Sts, Service::Ec2, Service::CloudWatch];

    /// The service a signing name stands for, among those spoken over Query or EC2.
    pub(crate) fn query_service(signing_name: &str) -> Option<Service> {
        Self::QUERY.into_iter().find(|s| s.signing_name() == signing_name)
    }

    /// The service whose API version this is, among those spoken over Query or EC2.
    fn query_service_by_version(version: &str) -> Option<Service> {
        Self::QUERY.into_iter().find(|s| s.api_version() == version)
    }

    pub(crate) fn api_version(self) -> &'static str {
        match self {
            Service::Ecs => berth_model::ecs::API_VERSION,
            Service::SecretsManager => berth_model::secretsmanager::API_VERSION,
            Service::Ssm => berth_model::ssm::API_VERSION,
            Service::Logs => berth_model::logs::API_VERSION,
            Service::Elbv2 => berth_model::elbv2::API_VERSION,
            Service::Iam => berth_model::iam::API_VERSION,
            Service::Sts => berth_model::sts::API_VERSION,
            Service::Ec2 => berth_model::ec2::API_VERSION,
            Service::CloudWatch => berth_model::cloudwatch::API_VERSION,
            Service::ApplicationAutoScaling => berth_model::application_autoscaling::API_VERSION,
        }
    }

    /// The XML namespace of the service's responses (Query and EC2 services).
    pub(crate) fn xml_namespace(self) -> Option<&'static str> {
        match self {
            Service::Elbv2 => Some(berth_model::elbv2::XML_NAMESPACE),
            Service::Iam => Some(berth_model::iam::XML_NAMESPACE),
            Service::Sts => Some(berth_model::sts::XML_NAMESPACE),
            Service::Ec2 => Some(berth_model::ec2::XML_NAMESPACE),
            Service::CloudWatch => Some(berth_model::cloudwatch::XML_NAMESPACE),
            Service::Ecs | Service::SecretsManager | Service::Ssm | Service::Logs | Service::ApplicationAutoScaling => {
                None
            }
        }
    }
}

/// Which service and operation a request is for, known before its body is decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Route {
    pub(crate) service: Service,
    pub(crate) operation: String,
}

/// A wire protocol. The service, when the unauthenticated request already names it (the `X-Amz-Target` prefix,
/// the RPC v2 CBOR path, the credential scope of a Query request), decides how errors are spelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// AWS JSON 1.0 or 1.1: `POST /`, `X-Amz-Target: Prefix.Operation`, JSON body.
    Json(Option<Service>),
    /// Query: form parameters `Action`, `Version` and the members; XML responses.
    Query(Option<Service>),
    /// EC2: Query with EC2's parameter names and response envelope.
    Ec2,
    /// Smithy RPC v2 CBOR: `POST /service/<Service>/operation/<Op>`, `smithy-protocol: rpc-v2-cbor`.
    Cbor(Option<Service>),
}

impl Protocol {
    /// Guesses the protocol from the request alone (it is not authenticated yet): a `smithy-protocol:
    /// rpc-v2-cbor` header means RPC v2 CBOR, an `X-Amz-Target` header JSON; otherwise the service in the
    /// claimed credential scope decides (a service berth does not serve: Query for a form request, else JSON);
    /// an unsigned form request is Query, or EC2 if its `Version` is EC2's.
    pub(crate) fn detect(parts: &http::request::Parts, body: &[u8]) -> Protocol {
        if cbor::is_rpc_v2_cbor(parts) {
            return Protocol::Cbor(cbor::service(parts));
        }
        if parts.headers.contains_key("x-amz-target") {
            return Protocol::Json(json::service(parts));
        }
        if let Some(scope_service) = claimed_scope_service(parts) {
            return match Service::query_service(&scope_service) {
                Some(Service::Ec2) => Protocol::Ec2,
                Some(service) => Protocol::Query(Some(service)),
                None if query::looks_like_query(parts) => Protocol::Query(None),
                None => Protocol::Json(None),
            };
        }
        if !query::looks_like_query(parts) {
            return Protocol::Json(None);
        }
        let version = query::parameter(parts, body, "Version");
        match version.as_deref().and_then(Service::query_service_by_version) {
            Some(Service::Ec2) => Protocol::Ec2,
            service => Protocol::Query(service),
        }
    }

    /// The protocol's spelling of an authentication failure.
    pub(crate) fn auth_error(self, e: &AuthError) -> AwsError {
        match self {
            Protocol::Json(_) | Protocol::Cbor(_) => json::auth_error(e),
            Protocol::Query(_) => query::auth_error(query::Flavor::Query, e),
            Protocol::Ec2 => query::auth_error(query::Flavor::Ec2, e),
        }
    }

    /// Names the service and operation. Runs after authentication; `scope_service` is the verified
    /// credential scope's service, which is how Query and EC2 requests name their service.
    pub(crate) fn route(
        self,
        parts: &http::request::Parts,
        body: &[u8],
        scope_service: &str,
    ) -> Result<Route, AwsError> {
        match self {
            Protocol::Json(_) => json::route(parts),
            Protocol::Cbor(_) => cbor::route(parts),
            Protocol::Query(_) => query::route(query::Flavor::Query, parts, body, scope_service),
            Protocol::Ec2 => query::route(query::Flavor::Ec2, parts, body, scope_service),
        }
    }

    /// Decodes the body into the typed request of `route`.
    pub(crate) fn decode(self, route: &Route, parts: &http::request::Parts, body: &[u8]) -> Result<Request, AwsError> {
        match self {
            Protocol::Json(_) => json::decode(route, body),
            Protocol::Query(_) | Protocol::Ec2 => query::decode(route, parts, body),
            Protocol::Cbor(_) => cbor::decode(route, body),
        }
    }

    /// Writes a successful response, in the protocol of the service that answered (CloudWatch's in the protocol
    /// the request spoke).
    pub(crate) fn encode(self, response: &Response, request_id: &str) -> http::Response<Bytes> {
        match response {
            Response::CloudWatch(out) => match self {
                Protocol::Cbor(_) => cbor::encode_cloudwatch(out, request_id),
                Protocol::Query(_) | Protocol::Ec2 => query::encode(response, request_id),
                Protocol::Json(_) => json::encode(response, request_id),
            },
            Response::Ecs(_)
            | Response::SecretsManager(_)
            | Response::Ssm(_)
            | Response::Logs(_)
            | Response::ApplicationAutoScaling(_) => json::encode(response, request_id),
            Response::Elbv2(_) | Response::Iam(_) | Response::Sts(_) | Response::Ec2(_) => {
                query::encode(response, request_id)
            }
        }
    }

    /// Writes an error response.
    pub(crate) fn encode_error(self, error: &AwsError, request_id: &str) -> http::Response<Bytes> {
        match self {
            Protocol::Json(service) => json::encode_error(service, error, request_id),
            Protocol::Cbor(service) => cbor::encode_error(service, error, request_id),
            Protocol::Query(Some(Service::CloudWatch)) => {
                let wire = compat::cloudwatch(error);
                query::encode_wire_error(
                    Some(berth_model::cloudwatch::XML_NAMESPACE),
                    &wire,
                    &error.message,
                    request_id,
                )
            }
            Protocol::Query(service) => {
                query::encode_error(query::Flavor::Query, service.and_then(Service::xml_namespace), error, request_id)
            }
            Protocol::Ec2 => query::encode_error(query::Flavor::Ec2, None, error, request_id),
        }
    }
}

/// The request body as its protocol reads it: a `Content-Encoding: gzip` body (botocore compresses CloudWatch's
/// PutMetricData bodies of 10 KiB and more, whatever the protocol) is inflated, up to `max` bytes. The signature
/// covers the compressed bytes, so this runs after authentication.
pub(crate) fn decoded_body<'a>(
    parts: &http::request::Parts,
    body: &'a [u8],
    max: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, AwsError> {
    use std::io::Read;
    let encodings = parts
        .headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|e| e.trim().to_ascii_lowercase())
        .filter(|e| !e.is_empty() && e != "identity")
        .collect::<Vec<_>>();
    match encodings.as_slice() {
        [] => Ok(std::borrow::Cow::Borrowed(body)),
        [gzip] if gzip == "gzip" => {
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(max));
            let read = flate2::read::MultiGzDecoder::new(body).take(max as u64 + 1).read_to_end(&mut out);
            match read {
                Ok(_) if out.len() > max => Err(crate::too_large(max)),
                Ok(_) => Ok(std::borrow::Cow::Owned(out)),
                Err(e) => Err(AwsError::new(
                    berth_core::ErrorCode::Serialization,
                    format!("The gzip request body cannot be inflated: {e}"),
                )),
            }
        }
        other => Err(AwsError::new(
            berth_core::ErrorCode::Serialization,
            format!("Content-Encoding {} is not supported (only gzip)", other.join(", ")),
        )),
    }
}

/// The service of the credential scope a request claims (`Authorization` header or presigned
/// `X-Amz-Credential`), unverified.
fn claimed_scope_service(parts: &http::request::Parts) -> Option<String> {
    let credential = match parts.headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        Some(auth) => {
            let start = auth.find("Credential=")? + "Credential=".len();
            let rest = &auth[start..];
            rest[..rest.find([',', ' ']).unwrap_or(rest.len())].to_string()
        }
        None => query::query_parameter(parts, "X-Amz-Credential")?,
    };
    // AKID/date/region/service/aws4_request
    let mut fields = credential.rsplit('/');
    let _terminator = fields.next()?;
    Some(fields.next()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::ErrorCode;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).expect("request").into_parts().0
    }

    fn auth(service: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential=AKID/20231010/us-east-1/{service}/aws4_request, SignedHeaders=host, \
             Signature=00"
        )
    }

    #[test]
    fn gzip_bodies_are_inflated_within_the_limit() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&b"Action=PutMetricData&".repeat(100)).expect("gzip");
        let zipped = gz.finish().expect("gzip");
        let gzip = parts("POST", "/", &[("content-encoding", "gzip")]);
        let body = decoded_body(&gzip, &zipped, 10_000).expect("inflates");
        assert_eq!(&body[..], &b"Action=PutMetricData&".repeat(100)[..]);
        assert_eq!(decoded_body(&gzip, &zipped, 2099).expect_err("over").code, ErrorCode::RequestEntityTooLarge);
        assert_eq!(decoded_body(&gzip, b"plain", 100).expect_err("not gzip").code, ErrorCode::Serialization);
        let plain = parts("POST", "/", &[]);
        assert!(matches!(decoded_body(&plain, b"x", 100), Ok(std::borrow::Cow::Borrowed(b"x"))));
        let br = parts("POST", "/", &[("content-encoding", "br")]);
        assert_eq!(decoded_body(&br, b"x", 100).expect_err("br").code, ErrorCode::Serialization);
    }

    #[test]
    fn detects_the_protocol() {
        let form = ("content-type", "application/x-www-form-urlencoded; charset=utf-8");
        let cases: Vec<(http::request::Parts, &[u8], Protocol)> = vec![
            (
                parts("POST", "/", &[("x-amz-target", "X.Y"), ("authorization", &auth("iam"))]),
                b"",
                Protocol::Json(None),
            ),
            (parts("POST", "/", &[("authorization", &auth("ecs"))]), b"", Protocol::Json(None)),
            (
                parts("POST", "/", &[("x-amz-target", "GraniteServiceVersion20100801.ListMetrics")]),
                b"",
                Protocol::Json(Some(Service::CloudWatch)),
            ),
            (
                parts("POST", "/", &[("x-amz-target", "AnyScaleFrontendService.DescribeScalableTargets")]),
                b"",
                Protocol::Json(Some(Service::ApplicationAutoScaling)),
            ),
            (
                parts(
                    "POST",
                    "/service/GraniteServiceVersion20100801/operation/GetMetricData",
                    &[("authorization", &auth("monitoring")), ("smithy-protocol", "rpc-v2-cbor")],
                ),
                b"",
                Protocol::Cbor(Some(Service::CloudWatch)),
            ),
            (
                parts("POST", "/", &[("authorization", &auth("monitoring")), form]),
                b"",
                Protocol::Query(Some(Service::CloudWatch)),
            ),
            (
                parts("POST", "/", &[("authorization", &auth("monitoring"))]),
                b"",
                Protocol::Query(Some(Service::CloudWatch)),
            ),
            (
                parts("POST", "/", &[form]),
                b"Action=ListMetrics&Version=2010-08-01",
                Protocol::Query(Some(Service::CloudWatch)),
            ),
            // Services berth does not serve: answered in the protocol the client spoke.
            (parts("POST", "/", &[("authorization", &auth("kinesis")), form]), b"", Protocol::Query(None)),
            (parts("POST", "/", &[("authorization", &auth("kinesis"))]), b"", Protocol::Json(None)),
            (parts("POST", "/service/S/operation/O", &[("smithy-protocol", "rpc-v2-cbor")]), b"", Protocol::Cbor(None)),
            (parts("POST", "/", &[("authorization", &auth("iam")), form]), b"", Protocol::Query(Some(Service::Iam))),
            (
                parts("POST", "/", &[("authorization", &auth("elasticloadbalancing"))]),
                b"",
                Protocol::Query(Some(Service::Elbv2)),
            ),
            (parts("POST", "/", &[("authorization", &auth("ec2")), form]), b"", Protocol::Ec2),
            (
                parts(
                    "GET",
                    "/?Action=GetCallerIdentity&X-Amz-Credential=AKID%2F20231010%2Fus-east-1%2Fsts%2Faws4_request",
                    &[],
                ),
                b"",
                Protocol::Query(Some(Service::Sts)),
            ),
            (parts("POST", "/", &[form]), b"Action=DescribeVpcs&Version=2016-11-15", Protocol::Ec2),
            (parts("POST", "/", &[form]), b"Action=GetUser&Version=2010-05-08", Protocol::Query(Some(Service::Iam))),
            (parts("POST", "/", &[form]), b"Action=GetUser", Protocol::Query(None)),
            (parts("GET", "/?Action=DescribeVpcs&Version=2016-11-15", &[]), b"", Protocol::Ec2),
            (parts("POST", "/", &[]), b"Action=GetUser", Protocol::Json(None)),
        ];
        for (p, body, expected) in cases {
            assert_eq!(Protocol::detect(&p, body), expected, "{} {:?}", p.uri, p.headers);
        }
    }
}
