//! The endpoint over real sockets: `serve` on 127.0.0.1:0 with a stub backend, called by real boto3 (a Python
//! subprocess) and by a raw hyper client signing with berth's own signer; plain HTTP and TLS (HTTP/2 by ALPN).
//!
//! The Python interpreter is `$BERTH_PYTHON` (default `python3`). Without boto3 the boto3 test prints a skip
//! message, unless `BERTH_REQUIRE_PYTHON=1`, which makes it fail instead.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use berth_api::sigv4::{self, SigningCredentials, SigningParams};
use berth_api::{ApiConfig, Backend, Caller, Credential, Request, Response};
use berth_core::{AwsError, ErrorCode};
use berth_model::{ec2, ecs, elbv2, ssm, sts};
use bytes::Bytes;
use http::{HeaderValue, Method};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const KEY: &str = "AKIDBERTHTEST0000001";
const SECRET: &str = "berth/test+secret";
const MAX_BODY: usize = 4096;

struct TestBackend;

#[async_trait::async_trait]
impl Backend for TestBackend {
    fn credential(&self, access_key_id: &str) -> Option<Credential> {
        (access_key_id == KEY).then(|| common::root_credential(SECRET))
    }
    fn region(&self) -> String {
        "us-east-1".into()
    }
    async fn handle(&self, caller: Caller, request: Request) -> Result<Response, AwsError> {
        let req = match request {
            Request::Ecs(ecs::Operation::DescribeClusters(req)) => req,
            Request::Elbv2(elbv2::Operation::DescribeLoadBalancers(req)) => return describe_load_balancers(req),
            Request::Sts(sts::Operation::GetCallerIdentity(_)) => {
                return Ok(Response::Sts(sts::Output::GetCallerIdentity(sts::GetCallerIdentityResponse {
                    user_id: Some(caller.principal.user_id),
                    account: Some(caller.principal.account),
                    arn: Some(caller.principal.arn),
                })));
            }
            Request::Ec2(ec2::Operation::DescribeVpcs(req)) => return describe_vpcs(req),
            Request::Ssm(ssm::Operation::GetParameter(req)) => {
                return Ok(Response::Ssm(ssm::Output::GetParameter(ssm::GetParameterResult {
                    parameter: Some(ssm::Parameter {
                        name: req.name,
                        value: Some("from-ssm".into()),
                        r#type: Some(ssm::ParameterType::String),
                        version: Some(1),
                        ..Default::default()
                    }),
                })));
            }
            _ => return Err(AwsError::new(ErrorCode::Client, "the test backend does not do that")),
        };
        // Echo the names asked for, and who asked, so the test sees the typed request arrived intact.
        let clusters = req
            .clusters
            .unwrap_or_default()
            .into_iter()
            .map(|name| ecs::Cluster {
                cluster_arn: Some(format!("arn:aws:ecs:us-east-1:{}:cluster/{name}", caller.principal.account)),
                cluster_name: Some(name),
                status: Some("ACTIVE".into()),
                ..Default::default()
            })
            .collect();
        Ok(Response::Ecs(ecs::Output::DescribeClusters(ecs::DescribeClustersResponse {
            clusters: Some(clusters),
            failures: None,
        })))
    }
}

fn describe_load_balancers(req: elbv2::DescribeLoadBalancersInput) -> Result<Response, AwsError> {
    let names = req.names.unwrap_or_default();
    if names.iter().any(|n| n == "missing") {
        return Err(AwsError::new(ErrorCode::LoadBalancerNotFound, "Load balancers '[missing]' not found"));
    }
    let load_balancers = names
        .into_iter()
        .map(|name| elbv2::LoadBalancer {
            load_balancer_arn: Some(format!(
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/{name}/50dc6c495c0c9188"
            )),
            load_balancer_name: Some(name),
            created_time: Some(berth_model::Timestamp(1_696_897_800.5)),
            scheme: Some(elbv2::LoadBalancerSchemeEnum::InternetFacing),
            state: Some(elbv2::LoadBalancerState { code: Some(elbv2::LoadBalancerStateEnum::Active), reason: None }),
            security_groups: Some(vec!["sg-1".into(), "sg-2".into()]),
            ..Default::default()
        })
        .collect();
    Ok(Response::Elbv2(elbv2::Output::DescribeLoadBalancers(elbv2::DescribeLoadBalancersOutput {
        load_balancers: Some(load_balancers),
        next_marker: None,
    })))
}

fn describe_vpcs(req: ec2::DescribeVpcsRequest) -> Result<Response, AwsError> {
    let ids = req.vpc_ids.unwrap_or_default();
    if let Some(id) = ids.iter().find(|id| id.as_str() == "vpc-missing") {
        return Err(AwsError::new(ErrorCode::Ec2InvalidVpcIdNotFound, format!("The vpc ID '{id}' does not exist")));
    }
    let filters = req.filters.unwrap_or_default();
    let vpcs = ids
        .into_iter()
        .map(|id| ec2::Vpc {
            vpc_id: Some(id),
            cidr_block: Some("172.31.0.0/16".into()),
            state: Some(ec2::VpcState::Available),
            is_default: Some(true),
            tags: Some(
                filters
                    .iter()
                    .map(|f| ec2::Tag { key: f.name.clone(), value: f.values.as_ref().map(|v| v.join(",")) })
                    .collect(),
            ),
            ..Default::default()
        })
        .collect();
    Ok(Response::Ec2(ec2::Output::DescribeVpcs(ec2::DescribeVpcsResult { vpcs: Some(vpcs), next_token: None })))
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(tls: Option<Arc<rustls::ServerConfig>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let config = ApiConfig { max_body_bytes: MAX_BODY, ..ApiConfig::default() };
        let task = tokio::spawn(berth_api::serve(listener, tls, Arc::new(TestBackend), config, async move {
            let _ = rx.await;
        }));
        Server { addr, stop: Some(tx), task }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let r = tokio::time::timeout(Duration::from_secs(15), self.task).await.expect("serve returns after shutdown");
        r.expect("join").expect("serve ok");
    }
}

/// Builds a request signed with berth's signer, as an SDK would send it.
fn signed_request(
    addr: SocketAddr,
    target: &str,
    body: &str,
    secret: &str,
    at: SystemTime,
    sign: bool,
) -> http::Request<Full<Bytes>> {
    let uri: http::Uri = format!("http://{addr}/").parse().expect("uri");
    let mut headers = http::HeaderMap::new();
    headers.insert("x-amz-target", HeaderValue::from_str(&format!("{}.{target}", ecs::TARGET_PREFIX)).expect("hv"));
    headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
    headers.insert("host", HeaderValue::from_str(&addr.to_string()).expect("hv"));
    if sign {
        let params = SigningParams {
            credentials: SigningCredentials { access_key_id: KEY, secret_access_key: secret, session_token: None },
            region: "us-east-1",
            service: ecs::SIGNING_NAME,
            time: at,
        };
        sigv4::sign(&Method::POST, &uri, &mut headers, body.as_bytes(), &params).expect("sign");
    }
    let mut req = http::Request::new(Full::new(Bytes::from(body.to_string())));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = "/".parse().expect("path");
    *req.headers_mut() = headers;
    req
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    json: serde_json::Value,
}

async fn send_http1(addr: SocketAddr, req: http::Request<Full<Bytes>>) -> Answer {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.expect("handshake");
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.expect("response");
    answer(resp).await
}

async fn answer(resp: http::Response<hyper::body::Incoming>) -> Answer {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"));
    Answer { status, headers, json }
}

fn assert_error(a: &Answer, status: u16, ty: &str, text: &str) {
    assert_eq!(a.status, status, "{}", a.json);
    assert_eq!(a.json["__type"], ty, "{}", a.json);
    assert_eq!(a.headers["x-amzn-errortype"], ty);
    assert!(a.headers.contains_key("x-amzn-requestid"));
    let message = a.json["message"].as_str().unwrap_or("");
    assert!(message.contains(text), "message {message:?} lacks {text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_http_errors_and_success() {
    let server = Server::start(None).await;
    let addr = server.addr;
    let now = SystemTime::now();

    let ok =
        send_http1(addr, signed_request(addr, "DescribeClusters", r#"{"clusters":["web"]}"#, SECRET, now, true)).await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    assert_eq!(ok.json["clusters"][0]["clusterName"], "web");
    assert_eq!(ok.headers["content-type"], "application/x-amz-json-1.1");

    let a = send_http1(addr, signed_request(addr, "DescribeClusters", "{\"clusters\":", SECRET, now, true)).await;
    assert_error(&a, 400, "SerializationException", "not valid JSON");

    let a = send_http1(addr, signed_request(addr, "DescribeExpressGatewayService", "{}", SECRET, now, true)).await;
    assert_error(&a, 400, "InvalidParameterException", "'serviceArn'");

    let stale = now - Duration::from_secs(3600);
    let a = send_http1(addr, signed_request(addr, "DescribeClusters", "{}", SECRET, stale, true)).await;
    assert_error(&a, 400, "InvalidSignatureException", "Signature expired: ");
    assert!(a.json["message"].as_str().unwrap_or("").ends_with(" - 15 min.)"), "{}", a.json);

    let a = send_http1(addr, signed_request(addr, "DescribeClusters", "{}", SECRET, now, false)).await;
    assert_error(&a, 403, "MissingAuthenticationTokenException", "Missing Authentication Token");

    let a = send_http1(addr, signed_request(addr, "NoSuchThing", "{}", SECRET, now, true)).await;
    assert_error(&a, 400, "UnknownOperationException", "NoSuchThing");

    let big = format!(r#"{{"clusters":["{}"]}}"#, "x".repeat(MAX_BODY));
    let a = send_http1(addr, signed_request(addr, "DescribeClusters", &big, SECRET, now, true)).await;
    assert_error(&a, 413, "RequestEntityTooLargeException", "4096");

    // A chunked body has no Content-Length up front: the limit applies while it is read.
    let mut raw = TcpStream::connect(addr).await.expect("connect");
    let chunk = "x".repeat(MAX_BODY + 1);
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    raw.write_all(request.as_bytes()).await.expect("write");
    let (head, body) = read_response(&mut raw).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(body.contains("RequestEntityTooLargeException"), "{body}");
    assert!(!head.to_ascii_lowercase().contains("connection: close"), "{head}");

    // The body over the limit is read to its end before the answer, so the connection carries the next request
    // (before, the server answered and closed while the client was still sending: the client saw a reset).
    let declared = "x".repeat(3 * MAX_BODY);
    let next = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nX-Amz-Target: AmazonEC2ContainerServiceV20141113.ListClusters\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    for (what, request) in [
        ("chunked", request.clone()),
        (
            "declared",
            format!("POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{declared}", declared.len()),
        ),
    ] {
        raw.write_all(request.as_bytes()).await.expect("write");
        let (head, _) = read_response(&mut raw).await;
        assert!(head.starts_with("HTTP/1.1 413"), "{what}: {head}");
        raw.write_all(next.as_bytes()).await.expect("write");
        let (head, body) = read_response(&mut raw).await;
        assert!(head.starts_with("HTTP/1.1 403"), "{what}: the next request on the connection is answered: {head}");
        assert!(body.contains("MissingAuthenticationTokenException"), "{what}: {body}");
    }

    server.stop().await;
}

/// Reads one HTTP/1.1 response with a `Content-Length` body: (head, body).
async fn read_response(s: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte)).await.expect("in time").expect("read");
        assert_eq!(n, 1, "the connection ended after {:?}", String::from_utf8_lossy(&buf));
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>()))
        .and_then(Result::ok)
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.expect("body");
    (head, String::from_utf8_lossy(&body).into_owned())
}

const BOTO3_SCRIPT: &str = r#"
import json, sys
import boto3, botocore.config, botocore.exceptions
endpoint, key, secret = sys.argv[1:4]
def client(k, s):
    return boto3.client("ecs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=k,
                        aws_secret_access_key=s, config=botocore.config.Config(retries={"max_attempts": 1}))
out = {}
r = client(key, secret).describe_clusters(clusters=["web", "api"])
out["ok"] = {"names": [c["clusterName"] for c in r["clusters"]], "request_id": r["ResponseMetadata"]["RequestId"]}
for name, (k, s) in {"wrong_secret": (key, secret + "x"), "unknown_key": ("AKIDUNKNOWN000000000", secret)}.items():
    try:
        client(k, s).describe_clusters(clusters=["web"])
        out[name] = None
    except botocore.exceptions.ClientError as e:
        out[name] = {"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"],
                     "status": e.response["ResponseMetadata"]["HTTPStatusCode"], "class": type(e).__name__}
print(json.dumps(out))
"#;

/// ELBv2 and STS (Query), EC2 and SSM through real boto3: typed requests arrive intact, XML responses parse,
/// and errors surface as `ClientError`s with the right code (including the modeled exception classes).
const BOTO3_QUERY_SCRIPT: &str = r#"
import json, sys
import boto3, botocore.config, botocore.exceptions
endpoint, key, secret = sys.argv[1:4]
def client(service, k=key, s=secret, validate=True):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=k,
                        aws_secret_access_key=s,
                        config=botocore.config.Config(retries={"max_attempts": 1}, parameter_validation=validate))
def error(call):
    try:
        call()
        return None
    except botocore.exceptions.ClientError as e:
        return {"code": e.response["Error"]["Code"], "message": e.response["Error"]["Message"],
                "type": e.response["Error"].get("Type"), "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
                "class": type(e).__name__, "request_id": e.response["ResponseMetadata"].get("RequestId")}
out = {}
r = client("elbv2").describe_load_balancers(Names=["web", "api"])
out["elbv2"] = {"names": [lb["LoadBalancerName"] for lb in r["LoadBalancers"]],
                "created": r["LoadBalancers"][0]["CreatedTime"].isoformat(),
                "state": r["LoadBalancers"][0]["State"]["Code"],
                "security_groups": r["LoadBalancers"][0]["SecurityGroups"],
                "request_id": r["ResponseMetadata"]["RequestId"]}
out["elbv2_missing"] = error(lambda: client("elbv2").describe_load_balancers(Names=["missing"]))
r = client("sts").get_caller_identity()
out["sts"] = {"account": r["Account"], "arn": r["Arn"], "user_id": r["UserId"]}
out["sts_wrong_secret"] = error(lambda: client("sts", s=secret + "x").get_caller_identity())
out["sts_unknown_key"] = error(lambda: client("sts", k="AKIDUNKNOWN000000000").get_caller_identity())
out["iam_invalid"] = error(lambda: client("iam", validate=False).get_role())
r = client("ec2").describe_vpcs(VpcIds=["vpc-1", "vpc-2"], Filters=[{"Name": "is-default", "Values": ["true", "x"]}])
out["ec2"] = {"vpcs": [(v["VpcId"], v["IsDefault"], v["State"], v["Tags"]) for v in r["Vpcs"]],
              "request_id": r["ResponseMetadata"]["RequestId"]}
out["ec2_missing"] = error(lambda: client("ec2").describe_vpcs(VpcIds=["vpc-missing"]))
out["ec2_wrong_secret"] = error(lambda: client("ec2", s=secret + "x").describe_vpcs())
r = client("ssm").get_parameter(Name="/app/db")
out["ssm"] = {"name": r["Parameter"]["Name"], "value": r["Parameter"]["Value"]}
print(json.dumps(out))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_boto3_client() {
    if !common::python_has("boto3") {
        return;
    }
    let server = Server::start(None).await;
    let endpoint = format!("http://{}", server.addr);
    let output = tokio::process::Command::new(common::python())
        .args(["-c", BOTO3_SCRIPT, &endpoint, KEY, SECRET])
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .await
        .expect("run python");
    server.stop().await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "boto3 script failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let out: serde_json::Value = serde_json::from_str(stdout.trim()).expect("script output");
    assert_eq!(out["ok"]["names"], serde_json::json!(["web", "api"]));
    assert_eq!(out["ok"]["request_id"].as_str().map(str::len), Some(36));
    assert_eq!(out["wrong_secret"]["code"], "InvalidSignatureException", "{out}");
    assert_eq!(out["wrong_secret"]["status"], 400);
    assert!(out["wrong_secret"]["message"].as_str().unwrap_or("").starts_with("The request signature we calculated"));
    assert_eq!(out["unknown_key"]["code"], "UnrecognizedClientException", "{out}");
    assert_eq!(out["unknown_key"]["message"], "The security token included in the request is invalid.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_boto3_query_and_ec2_clients() {
    if !common::python_has("boto3") {
        return;
    }
    let server = Server::start(None).await;
    let endpoint = format!("http://{}", server.addr);
    let output = tokio::process::Command::new(common::python())
        .args(["-c", BOTO3_QUERY_SCRIPT, &endpoint, KEY, SECRET])
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .await
        .expect("run python");
    server.stop().await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "boto3 script failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let out: serde_json::Value = serde_json::from_str(stdout.trim()).expect("script output");

    assert_eq!(out["elbv2"]["names"], json!(["web", "api"]), "{out}");
    assert_eq!(out["elbv2"]["created"], "2023-10-10T00:30:00.500000+00:00");
    assert_eq!(out["elbv2"]["state"], "active");
    assert_eq!(out["elbv2"]["security_groups"], json!(["sg-1", "sg-2"]));
    assert_eq!(out["elbv2"]["request_id"].as_str().map(str::len), Some(36));
    let e = &out["elbv2_missing"];
    assert_eq!(
        (&e["code"], &e["class"], &e["status"], &e["type"]),
        (&json!("LoadBalancerNotFound"), &json!("LoadBalancerNotFoundException"), &json!(400), &json!("Sender")),
        "{out}"
    );
    assert_eq!(e["message"], "Load balancers '[missing]' not found");

    assert_eq!(
        out["sts"],
        json!({"account": "123456789012", "arn": "arn:aws:iam::123456789012:root", "user_id": "123456789012"})
    );
    assert_eq!(
        (&out["sts_wrong_secret"]["code"], &out["sts_wrong_secret"]["status"]),
        (&json!("SignatureDoesNotMatch"), &json!(403)),
        "{out}"
    );
    assert!(
        out["sts_wrong_secret"]["message"].as_str().unwrap_or("").starts_with("The request signature we calculated")
    );
    assert_eq!(
        (&out["sts_unknown_key"]["code"], &out["sts_unknown_key"]["status"]),
        (&json!("InvalidClientTokenId"), &json!(403)),
        "{out}"
    );
    assert_eq!(out["sts_unknown_key"]["message"], "The security token included in the request is invalid.");
    assert_eq!(out["iam_invalid"]["code"], "ValidationError", "{out}");
    assert!(out["iam_invalid"]["message"].as_str().unwrap_or("").contains("'RoleName'"), "{out}");

    let tags = json!([{"Key": "is-default", "Value": "true,x"}]);
    assert_eq!(
        out["ec2"]["vpcs"],
        json!([["vpc-1", true, "available", tags], ["vpc-2", true, "available", tags]]),
        "{out}"
    );
    assert_eq!(out["ec2"]["request_id"].as_str().map(str::len), Some(36));
    let e = &out["ec2_missing"];
    assert_eq!((&e["code"], &e["status"]), (&json!("InvalidVpcID.NotFound"), &json!(400)), "{out}");
    assert_eq!(e["message"], "The vpc ID 'vpc-missing' does not exist");
    assert_eq!(e["request_id"].as_str().map(str::len), Some(36));
    assert_eq!(
        (&out["ec2_wrong_secret"]["code"], &out["ec2_wrong_secret"]["status"]),
        (&json!("AuthFailure"), &json!(401)),
        "{out}"
    );

    assert_eq!(out["ssm"], json!({"name": "/app/db", "value": "from-ssm"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_http2() {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert_der = certified.cert.der().clone();
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(certified.signing_key.serialize_der()).expect("key");
    let server_config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![cert_der.clone()], key_der)
        .expect("server config");
    let server = Server::start(Some(Arc::new(server_config))).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert_der).expect("root");
    let mut client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    client_config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let tls = connector.connect(name, tcp).await.expect("TLS handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "server offers h2 by ALPN");

    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.expect("h2 handshake");
    tokio::spawn(conn);
    // HTTP/2 carries the host as :authority, which the signature covers like a Host header.
    let authority = format!("localhost:{}", server.addr.port());
    let uri: http::Uri = format!("https://{authority}/").parse().expect("uri");
    let body = r#"{"clusters":["secure"]}"#;
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "x-amz-target",
        HeaderValue::from_str(&format!("{}.DescribeClusters", ecs::TARGET_PREFIX)).expect("hv"),
    );
    headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.1"));
    let params = SigningParams {
        credentials: SigningCredentials { access_key_id: KEY, secret_access_key: SECRET, session_token: None },
        region: "us-east-1",
        service: "ecs",
        time: SystemTime::now(),
    };
    sigv4::sign(&Method::POST, &uri, &mut headers, body.as_bytes(), &params).expect("sign");
    headers.remove("host");
    let mut req = http::Request::new(Full::new(Bytes::from(body)));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = uri;
    *req.version_mut() = http::Version::HTTP_2;
    *req.headers_mut() = headers;
    let a = answer(sender.send_request(req).await.expect("response")).await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(a.json["clusters"][0]["clusterName"], "secure");
    server.stop().await;
}
