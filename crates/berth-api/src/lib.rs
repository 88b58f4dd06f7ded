//! berth-api: the one HTTP endpoint for every AWS service berth serves.
//!
//! It owns the path from bytes on the wire to a typed request and back: authenticate the caller with SigV4,
//! decode the request in its service's AWS protocol into a [`Request`], hand it to a [`Backend`], and
//! encode the [`Response`] or the AWS-shaped error. Handlers never see raw HTTP. It must never contain
//! business logic nor know the store or the runtime: everything an operation does happens behind
//! [`Backend::handle`].

mod protocol;
mod server;
pub mod sigv4;
pub mod stream;

use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use berth_core::{AwsError, ErrorCode};
use bytes::Bytes;

pub use server::serve;
pub use stream::{EventStream, StreamEvent};

/// Who an access key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub arn: String,
    pub account: String,
    pub user_id: String,
}

/// The secret behind an access key, and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub secret_access_key: String,
    pub principal: Principal,
    /// Set for temporary (STS) credentials: requests must carry exactly this `X-Amz-Security-Token`.
    pub session_token: Option<String>,
    pub expires_at: Option<SystemTime>,
}

/// An authenticated caller, as a backend sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub access_key_id: String,
    pub principal: Principal,
    pub request_id: String,
    pub source_ip: IpAddr,
}

/// A decoded request, one variant per AWS service.
// Each request is built once and moved into the backend: a few hundred bytes on the stack beat a Box in every
// backend's match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// ECS (AWS JSON 1.1).
    Ecs(berth_model::ecs::Operation),
    /// Elastic Load Balancing v2 (Query; SigV4 service `elasticloadbalancing`).
    Elbv2(berth_model::elbv2::Operation),
    /// IAM (Query).
    Iam(berth_model::iam::Operation),
    /// STS (Query).
    Sts(berth_model::sts::Operation),
    /// EC2 (EC2 Query).
    Ec2(berth_model::ec2::Operation),
    /// Secrets Manager (AWS JSON 1.1).
    SecretsManager(berth_model::secretsmanager::Operation),
    /// SSM Parameter Store (AWS JSON 1.1).
    Ssm(berth_model::ssm::Operation),
    /// CloudWatch Logs (AWS JSON 1.1).
    Logs(berth_model::logs::Operation),
    /// CloudWatch (AWS JSON 1.0, Smithy RPC v2 CBOR or Query; SigV4 service `monitoring`).
    CloudWatch(berth_model::cloudwatch::Operation),
    /// Application Auto Scaling (AWS JSON 1.1).
    ApplicationAutoScaling(berth_model::application_autoscaling::Operation),
}

impl Request {
    /// The operation's name, for logs and authorization.
    pub fn operation_name(&self) -> &'static str {
        match self {
            Request::Ecs(op) => op.name(),
            Request::Elbv2(op) => op.name(),
            Request::Iam(op) => op.name(),
            Request::Sts(op) => op.name(),
            Request::Ec2(op) => op.name(),
            Request::SecretsManager(op) => op.name(),
            Request::Ssm(op) => op.name(),
            Request::Logs(op) => op.name(),
            Request::CloudWatch(op) => op.name(),
            Request::ApplicationAutoScaling(op) => op.name(),
        }
    }

    /// The service's IAM action prefix (`ecs`, `elasticloadbalancing`, `iam`, `sts`, `ec2`, `secretsmanager`,
    /// `ssm`, `logs`, `cloudwatch`, `application-autoscaling`): with [`Request::operation_name`] it names the IAM
    /// action, e.g. `elasticloadbalancing:AddTags`. It is the SigV4 signing name except for CloudWatch, which signs
    /// as `monitoring`.
    pub fn service_name(&self) -> &'static str {
        match self {
            Request::Ecs(_) => berth_model::ecs::SIGNING_NAME,
            Request::Elbv2(_) => berth_model::elbv2::SIGNING_NAME,
            Request::Iam(_) => berth_model::iam::SIGNING_NAME,
            Request::Sts(_) => berth_model::sts::SIGNING_NAME,
            Request::Ec2(_) => berth_model::ec2::SIGNING_NAME,
            Request::SecretsManager(_) => berth_model::secretsmanager::SIGNING_NAME,
            Request::Ssm(_) => berth_model::ssm::SIGNING_NAME,
            Request::Logs(_) => berth_model::logs::SIGNING_NAME,
            Request::CloudWatch(_) => "cloudwatch",
            Request::ApplicationAutoScaling(_) => berth_model::application_autoscaling::SIGNING_NAME,
        }
    }
}

/// A backend's answer, one variant per AWS service. It is encoded in the protocol of its own variant's
/// service, so a backend must answer a request with the variant of the request's service.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    Ecs(berth_model::ecs::Output),
    Elbv2(berth_model::elbv2::Output),
    Iam(berth_model::iam::Output),
    Sts(berth_model::sts::Output),
    Ec2(berth_model::ec2::Output),
    SecretsManager(berth_model::secretsmanager::Output),
    Ssm(berth_model::ssm::Output),
    Logs(berth_model::logs::Output),
    CloudWatch(berth_model::cloudwatch::Output),
    ApplicationAutoScaling(berth_model::application_autoscaling::Output),
}

/// What serves the decoded requests: the control plane in the binary, a stub in tests.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Looks up an access key (root keys, later IAM user keys and STS session keys).
    fn credential(&self, access_key_id: &str) -> Option<Credential>;
    /// The region requests must be signed for.
    fn region(&self) -> String;
    async fn handle(&self, caller: Caller, request: Request) -> Result<Response, AwsError>;
    /// Serves an operation whose answer is an event stream ([`stream::is_event_stream`]: StartLiveTail).
    async fn handle_stream(&self, caller: Caller, request: Request) -> Result<EventStream, AwsError> {
        let _ = caller;
        Err(AwsError::new(ErrorCode::UnknownOperation, format!("{} is not served here", request.operation_name())))
    }
    /// Called once per answered request with its operation (`-` when it was never decoded), HTTP status and the
    /// time to the response's head: where the binary counts API latency. Must not block.
    fn observe(&self, operation: &str, status: u16, latency: Duration) {
        let _ = (operation, status, latency);
    }
}

/// Limits of the endpoint.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// How far a request's signing time may be from the server's clock.
    pub clock_skew: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self { max_body_bytes: 10 * 1024 * 1024, clock_skew: Duration::from_secs(15 * 60) }
    }
}

/// Handles one complete HTTP request: authenticate, decode, dispatch, encode. Never fails: every error
/// becomes an AWS-shaped error response.
pub async fn handle_http<B: Backend + ?Sized>(
    backend: &B,
    config: &ApiConfig,
    req: http::Request<Bytes>,
    source_ip: IpAddr,
) -> http::Response<Bytes> {
    handle_http_at(backend, config, req, source_ip, SystemTime::now()).await
}

/// [`handle_http`] with an explicit "now", for tests with fixed signing times.
pub async fn handle_http_at<B: Backend + ?Sized>(
    backend: &B,
    config: &ApiConfig,
    req: http::Request<Bytes>,
    source_ip: IpAddr,
    now: SystemTime,
) -> http::Response<Bytes> {
    respond(backend, config, req, source_ip, now, None).await.map(stream::Body::into_bytes)
}

/// [`handle_http_at`] with a body that may be an event stream, ending when `stop` turns true.
pub(crate) async fn respond<B: Backend + ?Sized>(
    backend: &B,
    config: &ApiConfig,
    req: http::Request<Bytes>,
    source_ip: IpAddr,
    now: SystemTime,
    stop: Option<tokio::sync::watch::Receiver<bool>>,
) -> http::Response<stream::Body> {
    let started = Instant::now();
    let request_id = new_request_id();
    let (parts, body) = req.into_parts();
    let protocol = protocol::Protocol::detect(&parts, &body);
    let mut operation = String::from("-");
    let result = dispatch(backend, config, &parts, &body, source_ip, now, &request_id, protocol, &mut operation).await;
    let response = match &result {
        Ok(stream::Answer::Response(resp)) => protocol.encode(resp, &request_id).map(stream::Body::full),
        Ok(stream::Answer::Stream(events)) => stream::response(events.clone(), &request_id, stop),
        Err(e) => protocol.encode_error(e, &request_id).map(stream::Body::full),
    };
    let latency = started.elapsed();
    let latency_ms = latency.as_secs_f64() * 1000.0;
    let status = response.status().as_u16();
    backend.observe(&operation, status, latency);
    match &result {
        Ok(_) => tracing::debug!(%request_id, %source_ip, operation, status, latency_ms, "api request"),
        Err(e) => tracing::info!(
            %request_id, %source_ip, operation, status, latency_ms, code = e.code.name(), message = %e.message,
            "api request failed"
        ),
    }
    response
}

/// Answers a request that was refused before its body could be read (too large), in its protocol.
pub(crate) fn reject(parts: &http::request::Parts, error: &AwsError) -> http::Response<Bytes> {
    let request_id = new_request_id();
    tracing::info!(%request_id, code = error.code.name(), message = %error.message, "api request refused");
    protocol::Protocol::detect(parts, &[]).encode_error(error, &request_id)
}

pub(crate) fn too_large(max: usize) -> AwsError {
    AwsError::new(ErrorCode::RequestEntityTooLarge, format!("Request body is larger than the {max} bytes allowed"))
}

#[allow(clippy::too_many_arguments)]
async fn dispatch<B: Backend + ?Sized>(
    backend: &B,
    config: &ApiConfig,
    parts: &http::request::Parts,
    body: &[u8],
    source_ip: IpAddr,
    now: SystemTime,
    request_id: &str,
    protocol: protocol::Protocol,
    operation: &mut String,
) -> Result<stream::Answer, AwsError> {
    if body.len() > config.max_body_bytes {
        return Err(too_large(config.max_body_bytes));
    }
    // Authenticate before looking at what is asked, so unauthenticated callers learn nothing.
    let verified = sigv4::verify(&parts.method, &parts.uri, &parts.headers, body, now, config.clock_skew, |key| {
        backend.credential(key)
    })
    .map_err(|e| protocol.auth_error(&e))?;
    let body = &*protocol::decoded_body(parts, body, config.max_body_bytes)?;
    let route = protocol.route(parts, body, &verified.scope.service)?;
    operation.clone_from(&route.operation);
    let signing_name = route.service.signing_name();
    if verified.scope.service != signing_name {
        let e = sigv4::AuthError::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{signing_name}'."
        ));
        return Err(protocol.auth_error(&e));
    }
    let region = backend.region();
    if verified.scope.region != region {
        let e = sigv4::AuthError::InvalidSignature(format!(
            "Credential should be scoped to a valid region, not '{}'.",
            verified.scope.region
        ));
        return Err(protocol.auth_error(&e));
    }
    let request = protocol.decode(&route, parts, body)?;
    let caller = Caller {
        access_key_id: verified.access_key_id,
        principal: verified.credential.principal,
        request_id: request_id.to_string(),
        source_ip,
    };
    if stream::is_event_stream(&request) {
        return backend.handle_stream(caller, request).await.map(stream::Answer::Stream);
    }
    backend.handle(caller, request).await.map(stream::Answer::Response)
}

/// A random UUID (version 4), the shape AWS request ids have.
pub fn new_request_id() -> String {
    berth_core::ids::uuid4()
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::ecs;
    use std::net::Ipv4Addr;
    use std::sync::Mutex;

    struct Stub {
        seen: Mutex<Vec<Caller>>,
    }

    #[async_trait::async_trait]
    impl Backend for Stub {
        fn credential(&self, key: &str) -> Option<Credential> {
            (key == "AKIDTEST").then(|| Credential {
                secret_access_key: "secret".into(),
                principal: Principal {
                    arn: "arn:aws:iam::123456789012:root".into(),
                    account: "123456789012".into(),
                    user_id: "123456789012".into(),
                },
                session_token: None,
                expires_at: None,
            })
        }
        fn region(&self) -> String {
            "us-east-1".into()
        }
        async fn handle(&self, caller: Caller, request: Request) -> Result<Response, AwsError> {
            self.seen.lock().expect("lock").push(caller);
            match request {
                Request::Ecs(ecs::Operation::DescribeClusters(r)) => {
                    Ok(Response::Ecs(ecs::Output::DescribeClusters(ecs::DescribeClustersResponse {
                        clusters: Some(
                            r.clusters
                                .unwrap_or_default()
                                .into_iter()
                                .map(|n| ecs::Cluster { cluster_name: Some(n), ..Default::default() })
                                .collect(),
                        ),
                        failures: None,
                    })))
                }
                other => Err(AwsError::new(ErrorCode::Client, format!("stub: {}", other.operation_name()))),
            }
        }
    }

    const NOW: &str = "20231010T003000Z";

    fn now() -> SystemTime {
        sigv4::parse_basic_iso(NOW).map(SystemTime::from).expect("now")
    }

    fn request(target: &str, body: &str, service: &str, region: &str) -> http::Request<Bytes> {
        let uri: http::Uri = "http://localhost:4566/".parse().expect("uri");
        let mut headers = http::HeaderMap::new();
        headers.insert("x-amz-target", http::HeaderValue::from_str(target).expect("hv"));
        headers.insert("content-type", http::HeaderValue::from_static("application/x-amz-json-1.1"));
        let params = sigv4::SigningParams {
            credentials: sigv4::SigningCredentials {
                access_key_id: "AKIDTEST",
                secret_access_key: "secret",
                session_token: None,
            },
            region,
            service,
            time: now(),
        };
        sigv4::sign(&http::Method::POST, &uri, &mut headers, body.as_bytes(), &params).expect("sign");
        let mut req = http::Request::new(Bytes::from(body.to_string()));
        *req.method_mut() = http::Method::POST;
        *req.uri_mut() = "/".parse().expect("uri");
        *req.headers_mut() = headers;
        req
    }

    async fn call(req: http::Request<Bytes>) -> (u16, serde_json::Value, http::HeaderMap) {
        let stub = Stub { seen: Mutex::new(Vec::new()) };
        let config = ApiConfig { max_body_bytes: 64, ..ApiConfig::default() };
        let resp = handle_http_at(&stub, &config, req, IpAddr::V4(Ipv4Addr::LOCALHOST), now()).await;
        let v = serde_json::from_slice(resp.body()).expect("json body");
        (resp.status().as_u16(), v, resp.headers().clone())
    }

    const DESCRIBE: &str = "AmazonEC2ContainerServiceV20141113.DescribeClusters";

    #[tokio::test]
    async fn dispatches_a_typed_request() {
        let (status, v, h) = call(request(DESCRIBE, r#"{"clusters":["web"]}"#, "ecs", "us-east-1")).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v, serde_json::json!({"clusters": [{"clusterName": "web"}]}));
        assert_eq!(h["content-type"], "application/x-amz-json-1.1");
        assert_eq!(h["x-amzn-requestid"].len(), 36);
    }

    #[tokio::test]
    async fn error_table() {
        // (request, status, __type, text in message)
        let cases = [
            (request(DESCRIBE, "{", "ecs", "us-east-1"), 400, "SerializationException", "not valid JSON"),
            (
                request("AmazonEC2ContainerServiceV20141113.DescribeExpressGatewayService", "{}", "ecs", "us-east-1"),
                400,
                "InvalidParameterException",
                "'serviceArn'",
            ),
            (
                request("AmazonEC2ContainerServiceV20141113.Nope", "{}", "ecs", "us-east-1"),
                400,
                "UnknownOperationException",
                "Nope",
            ),
            (request("Other_1.Nope", "{}", "ecs", "us-east-1"), 400, "UnknownOperationException", "Other_1.Nope"),
            // Secrets Manager and SSM share the JSON path, each with its own spelling of a model violation.
            (request("AmazonSSM.GetParameter", "{}", "ssm", "us-east-1"), 400, "ValidationException", "'Name'"),
            (
                request("secretsmanager.GetSecretValue", "{}", "secretsmanager", "us-east-1"),
                400,
                "InvalidParameterException",
                "'SecretId'",
            ),
            (
                request("AmazonSSM.GetParameter", "{}", "secretsmanager", "us-east-1"),
                400,
                "InvalidSignatureException",
                "Credential should be scoped to correct service: 'ssm'.",
            ),
            (
                request(DESCRIBE, "{}", "logs", "us-east-1"),
                400,
                "InvalidSignatureException",
                "Credential should be scoped to correct service: 'ecs'.",
            ),
            (request(DESCRIBE, "{}", "ecs", "eu-west-1"), 400, "InvalidSignatureException", "'eu-west-1'"),
            (request(DESCRIBE, &" ".repeat(65), "ecs", "us-east-1"), 413, "RequestEntityTooLargeException", "64"),
            (
                {
                    let mut r = request(DESCRIBE, "{}", "ecs", "us-east-1");
                    r.headers_mut().remove("authorization");
                    r
                },
                403,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ),
            (
                {
                    // Unauthenticated callers learn nothing about the operation.
                    let mut r = request("Other_1.Nope", "{", "ecs", "us-east-1");
                    r.headers_mut().remove("authorization");
                    r
                },
                403,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ),
        ];
        for (req, status, ty, text) in cases {
            let (s, v, h) = call(req).await;
            assert_eq!((s, v["__type"].as_str()), (status, Some(ty)), "{v}");
            assert!(v["message"].as_str().is_some_and(|m| m.contains(text)), "{v}");
            assert_eq!(h["x-amzn-errortype"], ty);
        }
    }

    #[test]
    fn request_ids_look_like_uuids() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_ne!(id, new_request_id());
    }
}
