//! Query (ELBv2, IAM, STS) and EC2 round trips through the public entry point, data-driven by
//! `vectors/query_vectors.json` (requests serialized by botocore's own serializers, see `vectors/query_gen.py`):
//! every request body must decode into exactly the parameters it came from, and every typed output, encoded
//! as XML, must parse back with botocore's own parsers (`vectors/query_check.py`) into exactly that output.
//! Error responses are checked the same way.
//!
//! The botocore half runs with `$BERTH_PYTHON` (default `python3`); without botocore it prints a skip
//! message, unless `BERTH_REQUIRE_PYTHON=1`, which makes it fail instead.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::SystemTime;

use berth_api::sigv4::{self, SigningCredentials, SigningParams};
use berth_api::{ApiConfig, Backend, Caller, Credential, Request, Response};
use berth_core::{AwsError, ErrorCode};
use berth_model::{ec2, elbv2, iam, sts};
use bytes::Bytes;
use http::{HeaderValue, Method};
use serde_json::{Value, json};

const KEY: &str = "AKIDQUERYTEST0000001";
const SECRET: &str = "query/test+secret";
const NOW: &str = "20231010T003000Z";

fn now() -> SystemTime {
    sigv4::parse_basic_iso(NOW).map(SystemTime::from).expect("now")
}

/// Records what it was asked and answers with the output (or error) it was told to.
#[derive(Default)]
struct Recorder {
    answer: Mutex<Option<Result<Value, AwsError>>>,
    seen: Mutex<Vec<(String, String, Value)>>,
}

#[async_trait::async_trait]
impl Backend for Recorder {
    fn credential(&self, access_key_id: &str) -> Option<Credential> {
        (access_key_id == KEY).then(|| common::root_credential(SECRET))
    }
    fn region(&self) -> String {
        "us-east-1".into()
    }
    async fn handle(&self, _caller: Caller, request: Request) -> Result<Response, AwsError> {
        let name = request.operation_name();
        let value = match &request {
            Request::Elbv2(op) => op.to_value(),
            Request::Iam(op) => op.to_value(),
            Request::Sts(op) => op.to_value(),
            Request::Ec2(op) => op.to_value(),
            other => panic!("unexpected request {other:?}"),
        };
        self.seen.lock().expect("lock").push((request.service_name().to_string(), name.to_string(), value));
        let answer = self.answer.lock().expect("lock").take().unwrap_or_else(|| Ok(Value::Null));
        let output = answer?;
        let bad = |e: berth_model::DecodeError| AwsError::internal(format!("bad vector output: {e}"));
        Ok(match request {
            Request::Elbv2(_) => Response::Elbv2(elbv2::Output::from_value(name, output).map_err(bad)?),
            Request::Iam(_) => Response::Iam(iam::Output::from_value(name, output).map_err(bad)?),
            Request::Sts(_) => Response::Sts(sts::Output::from_value(name, output).map_err(bad)?),
            Request::Ec2(_) => Response::Ec2(ec2::Output::from_value(name, output).map_err(bad)?),
            _ => unreachable!(),
        })
    }
}

fn signing_name(service: &str) -> &'static str {
    match service {
        "elbv2" => elbv2::SIGNING_NAME,
        "iam" => iam::SIGNING_NAME,
        "sts" => sts::SIGNING_NAME,
        "ec2" => ec2::SIGNING_NAME,
        other => panic!("unknown service {other}"),
    }
}

/// A form POST signed as botocore signs it.
fn form_request(body: &str, service: &str, secret: &str, sign: bool) -> http::Request<Bytes> {
    let uri: http::Uri = "http://localhost:4566/".parse().expect("uri");
    let mut headers = http::HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"));
    if sign {
        let params = SigningParams {
            credentials: SigningCredentials { access_key_id: KEY, secret_access_key: secret, session_token: None },
            region: "us-east-1",
            service,
            time: now(),
        };
        sigv4::sign(&Method::POST, &uri, &mut headers, body.as_bytes(), &params).expect("sign");
    }
    let mut req = http::Request::new(Bytes::from(body.to_string()));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = "/".parse().expect("uri");
    *req.headers_mut() = headers;
    req
}

struct Answer {
    status: u16,
    request_id: String,
    xml: String,
}

async fn call(backend: &Recorder, req: http::Request<Bytes>) -> Answer {
    let resp =
        berth_api::handle_http_at(backend, &ApiConfig::default(), req, IpAddr::V4(Ipv4Addr::LOCALHOST), now()).await;
    assert_eq!(resp.headers()["content-type"], "text/xml");
    let request_id = resp.headers()["x-amzn-requestid"].to_str().expect("id").to_string();
    Answer { status: resp.status().as_u16(), request_id, xml: String::from_utf8(resp.body().to_vec()).expect("utf8") }
}

fn vectors() -> Vec<Value> {
    let doc: Value = serde_json::from_str(include_str!("vectors/query_vectors.json")).expect("vectors json");
    doc["vectors"].as_array().expect("vectors").clone()
}

#[tokio::test]
async fn botocore_requests_decode_and_outputs_parse_back() {
    let backend = Recorder::default();
    let mut outputs = Vec::new();
    let vectors = vectors();
    assert!(vectors.len() >= 30, "expected the full vector set, got {}", vectors.len());
    for (i, v) in vectors.iter().enumerate() {
        let service = v["service"].as_str().expect("service");
        let operation = v["operation"].as_str().expect("operation");
        *backend.answer.lock().expect("lock") = Some(Ok(v["output"].clone()));
        let a =
            call(&backend, form_request(v["body"].as_str().expect("body"), signing_name(service), SECRET, true)).await;
        assert_eq!(a.status, 200, "{service} {operation}: {}", a.xml);
        let (seen_service, seen_op, seen) = backend.seen.lock().expect("lock").pop().expect("the backend was called");
        assert_eq!((seen_service.as_str(), seen_op.as_str()), (signing_name(service), operation));
        assert_eq!(seen, v["input"], "{service} {operation} #{i} decoded differently from\n{}", v["body"]);
        outputs.push(json!({"index": i, "status": a.status, "request_id": a.request_id, "xml": a.xml}));
    }
    // Errors: (service, body, backend answer, status, code, fault type for Query).
    let elb = "Action=DescribeLoadBalancers&Version=2015-12-01";
    let cases: Vec<(&str, String, Option<AwsError>, u16, &str)> = vec![
        (
            "elbv2",
            elb.into(),
            Some(AwsError::new(ErrorCode::LoadBalancerNotFound, "One or more load balancers not found")),
            400,
            "LoadBalancerNotFound",
        ),
        (
            "elbv2",
            elb.into(),
            Some(AwsError::new(
                ErrorCode::AccessDenied,
                "User: x is not authorized to perform: elasticloadbalancing:DescribeLoadBalancers",
            )),
            403,
            "AccessDenied",
        ),
        (
            "iam",
            "Action=GetRole&Version=2010-05-08&RoleName=nope".into(),
            Some(AwsError::new(ErrorCode::NoSuchEntity, "The role with name nope cannot be found.")),
            404,
            "NoSuchEntity",
        ),
        (
            "iam",
            "Action=GetRole&Version=2010-05-08&RoleName=x".into(),
            Some(AwsError::new(ErrorCode::ServiceFailure, "boom <&>")),
            500,
            "ServiceFailure",
        ),
        ("iam", "Action=GetRole&Version=2010-05-08".into(), None, 400, "ValidationError"),
        ("iam", "Action=ListRoles&Version=2010-05-08&MaxItems=many".into(), None, 400, "ValidationError"),
        (
            "elbv2",
            "Action=DescribeLoadBalancers&Version=2015-12-01&LoadBalancerArns.member.1=a&PageSize=1.5".into(),
            None,
            400,
            "ValidationError",
        ),
        ("sts", "Action=AssumeRole&Version=2011-06-15&RoleArn=a".into(), None, 400, "ValidationError"),
        ("sts", "Action=GetSessionToken&Version=2011-06-15".into(), None, 400, "InvalidAction"),
        ("sts", "Action=GetCallerIdentity&Version=2010-05-08".into(), None, 400, "InvalidAction"),
        ("sts", "Version=2011-06-15".into(), None, 400, "MissingAction"),
        ("ec2", "Action=CreateSecurityGroup&Version=2016-11-15&GroupName=g".into(), None, 400, "MissingParameter"),
        ("ec2", "Action=DescribeVpcs&Version=2016-11-15&MaxResults=x".into(), None, 400, "InvalidParameterValue"),
        ("ec2", "Action=RunInstances&Version=2016-11-15".into(), None, 400, "InvalidAction"),
        (
            "ec2",
            "Action=DescribeVpcs&Version=2016-11-15".into(),
            Some(AwsError::new(ErrorCode::Ec2InvalidVpcIdNotFound, "The vpc ID 'vpc-9' does not exist")),
            400,
            "InvalidVpcID.NotFound",
        ),
        (
            "ec2",
            "Action=DescribeVpcs&Version=2016-11-15".into(),
            Some(AwsError::new(ErrorCode::AccessDenied, "You are not authorized to perform this operation.")),
            403,
            "UnauthorizedOperation",
        ),
    ];
    let mut errors = Vec::new();
    for (service, body, answer, status, code) in cases {
        *backend.answer.lock().expect("lock") = answer.map(Err);
        let a = call(&backend, form_request(&body, signing_name(service), SECRET, true)).await;
        assert_eq!(a.status, status, "{service} {body}: {}", a.xml);
        assert!(a.xml.contains(&format!("<Code>{code}</Code>")), "{service} {body}: {}", a.xml);
        let protocol = if service == "ec2" { "ec2" } else { "query" };
        let message = common::message_of(&a.xml);
        let ty = (protocol == "query").then_some(if status >= 500 { "Receiver" } else { "Sender" });
        errors.push(json!({"protocol": protocol, "status": a.status, "xml": a.xml, "code": code,
                           "message": message, "type": ty, "request_id": a.request_id}));
    }
    // Authentication errors, in each protocol's spelling.
    let auth_cases: Vec<(&str, &str, &str, bool, u16, &str)> = vec![
        ("sts", "Action=GetCallerIdentity&Version=2011-06-15", "wrong", true, 403, "SignatureDoesNotMatch"),
        ("sts", "Action=GetCallerIdentity&Version=2011-06-15", SECRET, false, 403, "MissingAuthenticationToken"),
        ("ec2", "Action=DescribeVpcs&Version=2016-11-15", "wrong", true, 401, "AuthFailure"),
        ("ec2", "Action=DescribeVpcs&Version=2016-11-15", SECRET, false, 403, "MissingAuthenticationToken"),
    ];
    for (service, body, secret, sign, status, code) in auth_cases {
        let a = call(&backend, form_request(body, signing_name(service), secret, sign)).await;
        assert_eq!(a.status, status, "{service} {body}: {}", a.xml);
        assert!(a.xml.contains(&format!("<Code>{code}</Code>")), "{service}: {}", a.xml);
        let protocol = if service == "ec2" { "ec2" } else { "query" };
        errors.push(json!({"protocol": protocol, "status": a.status, "xml": a.xml, "code": code,
                           "message": common::message_of(&a.xml), "type": null, "request_id": a.request_id}));
    }
    common::botocore_check("query_check.py", &json!({"outputs": outputs, "errors": errors}));
}

/// Query requests may also come as a signed GET with the parameters in the query string.
#[tokio::test]
async fn signed_get_requests() {
    let backend = Recorder::default();
    let uri: http::Uri = "http://localhost:4566/?Action=GetCallerIdentity&Version=2011-06-15".parse().expect("uri");
    let mut headers = http::HeaderMap::new();
    let params = SigningParams {
        credentials: SigningCredentials { access_key_id: KEY, secret_access_key: SECRET, session_token: None },
        region: "us-east-1",
        service: "sts",
        time: now(),
    };
    sigv4::sign(&Method::GET, &uri, &mut headers, b"", &params).expect("sign");
    let mut req = http::Request::new(Bytes::new());
    *req.uri_mut() = "/?Action=GetCallerIdentity&Version=2011-06-15".parse().expect("uri");
    *req.headers_mut() = headers;
    *backend.answer.lock().expect("lock") = Some(Ok(json!({"Account": "123456789012"})));
    let a = call(&backend, req).await;
    assert_eq!(a.status, 200, "{}", a.xml);
    assert!(
        a.xml.contains(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
             <GetCallerIdentityResult><Account>123456789012</Account></GetCallerIdentityResult>"
        ),
        "{}",
        a.xml
    );
    assert_eq!(backend.seen.lock().expect("lock").pop().map(|s| s.1), Some("GetCallerIdentity".to_string()));
}
