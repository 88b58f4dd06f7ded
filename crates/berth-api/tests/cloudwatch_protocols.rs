//! CloudWatch's three protocols (AWS JSON 1.0, Smithy RPC v2 CBOR, Query) through the public entry point,
//! data-driven by `vectors/cloudwatch_vectors.json` (each request serialized by botocore's own serializer in every
//! protocol, see `vectors/cloudwatch_gen.py`): every protocol's body must decode into the same typed operation,
//! equal to the parameters it came from; every typed output, encoded in every protocol, must parse back with
//! botocore's own parsers (`vectors/cloudwatch_check.py`) into exactly that output. Errors are checked the same
//! way: status, `__type`, `x-amzn-query-error`, and the code botocore reports.
//!
//! The botocore half runs as `common::botocore_check` says (`$BERTH_PYTHON`, `BERTH_REQUIRE_PYTHON=1`).

mod common;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::SystemTime;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use berth_api::sigv4::{self, SigningCredentials, SigningParams};
use berth_api::{ApiConfig, Backend, Caller, Credential, Request, Response};
use berth_core::{AwsError, ErrorCode};
use berth_model::cloudwatch;
use bytes::Bytes;
use http::{HeaderValue, Method};
use serde_json::{Value, json};

const KEY: &str = "AKIDCLOUDWATCHTEST01";
const SECRET: &str = "cloudwatch/test+secret";
const NOW: &str = "20231010T003000Z";
const PROTOCOLS: [&str; 3] = ["json", "smithy-rpc-v2-cbor", "query"];

fn now() -> SystemTime {
    sigv4::parse_basic_iso(NOW).map(SystemTime::from).expect("now")
}

/// Records the operations it was asked and answers with the output (or error) it was told to.
#[derive(Default)]
struct Recorder {
    answer: Mutex<Option<Result<Value, AwsError>>>,
    seen: Mutex<Vec<cloudwatch::Operation>>,
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
        assert_eq!(request.service_name(), "cloudwatch");
        let Request::CloudWatch(op) = request else { panic!("unexpected request {request:?}") };
        let name = op.name();
        self.seen.lock().expect("lock").push(op);
        let answer = self.answer.lock().expect("lock").take().unwrap_or_else(|| Ok(Value::Null));
        let output = cloudwatch::Output::from_value(name, answer?)
            .map_err(|e| AwsError::internal(format!("bad vector output: {e}")))?;
        Ok(Response::CloudWatch(output))
    }
}

/// A request in `protocol`, signed as botocore signs it (`secret: None` leaves it unsigned).
fn request(protocol: &str, operation: &str, body: Vec<u8>, secret: Option<&str>) -> http::Request<Bytes> {
    request_with(protocol, operation, body, secret, false)
}

/// [`request`], its body gzipped (`Content-Encoding: gzip`) as botocore compresses PutMetricData from 10 KiB on.
fn request_with(
    protocol: &str,
    operation: &str,
    body: Vec<u8>,
    secret: Option<&str>,
    gzip: bool,
) -> http::Request<Bytes> {
    let body = if gzip {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&body).expect("gzip");
        gz.finish().expect("gzip")
    } else {
        body
    };
    let path = match protocol {
        "smithy-rpc-v2-cbor" => format!("/service/GraniteServiceVersion20100801/operation/{operation}"),
        _ => "/".to_string(),
    };
    let uri: http::Uri = format!("http://localhost:4566{path}").parse().expect("uri");
    let mut headers = http::HeaderMap::new();
    if gzip {
        headers.insert("content-encoding", HeaderValue::from_static("gzip"));
    }
    match protocol {
        "json" => {
            let target = format!("GraniteServiceVersion20100801.{operation}");
            headers.insert("x-amz-target", HeaderValue::from_str(&target).expect("target"));
            headers.insert("content-type", HeaderValue::from_static("application/x-amz-json-1.0"));
            headers.insert("x-amzn-query-mode", HeaderValue::from_static("true"));
        }
        "smithy-rpc-v2-cbor" => {
            headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
            headers.insert("accept", HeaderValue::from_static("application/cbor"));
            headers.insert("x-amzn-query-mode", HeaderValue::from_static("true"));
            if !body.is_empty() {
                headers.insert("content-type", HeaderValue::from_static("application/cbor"));
            }
        }
        _ => {
            headers
                .insert("content-type", HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"));
        }
    }
    if let Some(secret) = secret {
        let params = SigningParams {
            credentials: SigningCredentials { access_key_id: KEY, secret_access_key: secret, session_token: None },
            region: "us-east-1",
            service: "monitoring",
            time: now(),
        };
        sigv4::sign(&Method::POST, &uri, &mut headers, &body, &params).expect("sign");
    }
    let mut req = http::Request::new(Bytes::from(body));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = path.parse().expect("path");
    *req.headers_mut() = headers;
    req
}

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The headers botocore's parsers read, as JSON for the checker.
    fn headers_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        for name in ["content-type", "x-amzn-requestid", "x-amzn-query-error", "smithy-protocol"] {
            if let Some(v) = self.header(name) {
                m.insert(name.into(), Value::String(v.into()));
            }
        }
        Value::Object(m)
    }

    /// The error message as each protocol carries it.
    fn message(&self, protocol: &str) -> String {
        match protocol {
            "json" => serde_json::from_slice::<Value>(&self.body).expect("json")["message"]
                .as_str()
                .expect("message")
                .to_string(),
            "smithy-rpc-v2-cbor" => {
                let v: ciborium::value::Value = ciborium::from_reader(&self.body[..]).expect("cbor");
                let map = v.into_map().expect("a map");
                map.into_iter()
                    .find(|(k, _)| k.as_text() == Some("message"))
                    .and_then(|(_, v)| v.into_text().ok())
                    .expect("message")
            }
            _ => common::message_of(std::str::from_utf8(&self.body).expect("utf8")),
        }
    }

    /// `__type` of a JSON or CBOR error.
    fn error_type(&self, protocol: &str) -> Option<String> {
        match protocol {
            "json" => serde_json::from_slice::<Value>(&self.body).ok()?["__type"].as_str().map(str::to_string),
            "smithy-rpc-v2-cbor" => {
                let v: ciborium::value::Value = ciborium::from_reader(&self.body[..]).ok()?;
                v.into_map().ok()?.into_iter().find(|(k, _)| k.as_text() == Some("__type"))?.1.into_text().ok()
            }
            _ => None,
        }
    }
}

async fn call(backend: &Recorder, req: http::Request<Bytes>) -> Answer {
    let resp =
        berth_api::handle_http_at(backend, &ApiConfig::default(), req, IpAddr::V4(Ipv4Addr::LOCALHOST), now()).await;
    Answer { status: resp.status().as_u16(), headers: resp.headers().clone(), body: resp.body().clone() }
}

/// What each protocol answers with, on success and on error.
fn assert_content_type(protocol: &str, a: &Answer, what: &str) {
    match protocol {
        "json" => assert_eq!(a.header("content-type"), Some("application/x-amz-json-1.0"), "{what}"),
        "smithy-rpc-v2-cbor" => {
            assert_eq!(a.header("smithy-protocol"), Some("rpc-v2-cbor"), "{what}");
            let want = if a.body.is_empty() { None } else { Some("application/cbor") };
            assert_eq!(a.header("content-type"), want, "{what}");
        }
        _ => assert_eq!(a.header("content-type"), Some("text/xml"), "{what}"),
    }
}

/// Numbers compared as numbers (a double may travel as `3` or `3.0`).
fn normalize(v: &Value) -> Value {
    match v {
        Value::Number(n) => n.as_f64().map(|f| json!(f)).unwrap_or(Value::Null),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (k.clone(), normalize(v))).collect()),
        other => other.clone(),
    }
}

fn vectors() -> Vec<Value> {
    let doc: Value = serde_json::from_str(include_str!("vectors/cloudwatch_vectors.json")).expect("vectors json");
    doc["vectors"].as_array().expect("vectors").clone()
}

/// A CBOR body from a JSON value (maps, arrays, text, integers, floats), for hand-made requests.
fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("cbor");
    out
}

#[tokio::test]
async fn every_protocol_decodes_the_same_operation_and_encodes_what_botocore_reads() {
    let backend = Recorder::default();
    let vectors = vectors();
    assert!(vectors.len() >= 9, "expected the full vector set, got {}", vectors.len());
    let mut outputs = Vec::new();
    for (i, v) in vectors.iter().enumerate() {
        let operation = v["operation"].as_str().expect("operation");
        let mut decoded = Vec::new();
        for protocol in PROTOCOLS {
            let r = &v["requests"][protocol];
            let body = B64.decode(r["body_base64"].as_str().expect("body")).expect("base64");
            *backend.answer.lock().expect("lock") = Some(Ok(v["output"].clone()));
            let a = call(&backend, request(protocol, operation, body.clone(), Some(SECRET))).await;
            let what = format!("{operation} over {protocol}");
            assert_eq!(a.status, 200, "{what}: {:?}", String::from_utf8_lossy(&a.body));
            assert_content_type(protocol, &a, &what);
            let op = backend.seen.lock().expect("lock").pop().expect("the backend was called");
            assert_eq!(op.name(), operation, "{what}");
            assert_eq!(normalize(&op.to_value()), normalize(&v["input"]), "{what} decoded differently");
            decoded.push(op);
            if operation == "PutMetricData" {
                // The same body gzipped decodes to the same operation.
                let a = call(&backend, request_with(protocol, operation, body.clone(), Some(SECRET), true)).await;
                assert_eq!(a.status, 200, "{what} gzipped: {:?}", String::from_utf8_lossy(&a.body));
                let zipped = backend.seen.lock().expect("lock").pop().expect("the backend was called");
                assert_eq!(Some(&zipped), decoded.last(), "{what} gzipped");
            }
            outputs.push(json!({"index": i, "protocol": protocol, "status": a.status, "headers": a.headers_json(),
                                "body_base64": B64.encode(&a.body),
                                "request_id": a.header("x-amzn-requestid").expect("request id")}));
        }
        // The same typed operation, whichever protocol carried it.
        assert_eq!(decoded[0], decoded[1], "{operation}: JSON and CBOR differ");
        assert_eq!(decoded[0], decoded[2], "{operation}: JSON and Query differ");
    }
    common::botocore_check("cloudwatch_check.py", &json!({"outputs": outputs, "errors": []}));
}

/// One error case, in one protocol.
struct ErrorCase {
    protocol: &'static str,
    operation: &'static str,
    body: Vec<u8>,
    secret: Option<&'static str>,
    answer: Option<AwsError>,
    status: u16,
    /// The code botocore reports: the Query code.
    code: &'static str,
    /// `__type` (JSON and CBOR).
    shape: &'static str,
}

fn per_protocol(
    operation: &'static str,
    json_body: &Value,
    query_body: &str,
    answer: Option<AwsError>,
    secret: Option<&'static str>,
    expect: [(u16, &'static str, &'static str); 3],
) -> Vec<ErrorCase> {
    let bodies = [json_body.to_string().into_bytes(), cbor(json_body), query_body.as_bytes().to_vec()];
    PROTOCOLS
        .into_iter()
        .zip(bodies)
        .zip(expect)
        .map(|((protocol, body), (status, code, shape))| ErrorCase {
            protocol,
            operation,
            body,
            secret,
            answer: answer.clone(),
            status,
            code,
            shape,
        })
        .collect()
}

#[tokio::test]
async fn errors_in_every_protocol() {
    let backend = Recorder::default();
    let put = json!({"Namespace": "App", "MetricData": [{"MetricName": "m", "Value": 1.0}]});
    let put_form = "Action=PutMetricData&Version=2010-08-01&Namespace=App&MetricData.member.1.MetricName=m\
                    &MetricData.member.1.Value=1";
    let same = |status, code, shape| [(status, code, shape); 3];
    let mut cases = Vec::new();
    // What the control plane answers, spelled by CloudWatch's model in every protocol.
    for (answer, status, code, shape) in [
        (
            AwsError::new(
                ErrorCode::InvalidParameterValue,
                "The value NaN for parameter MetricData.member.1.Value is invalid.",
            ),
            400,
            "InvalidParameterValue",
            "InvalidParameterValueException",
        ),
        (AwsError::new(ErrorCode::MissingParameter, "x"), 400, "MissingParameter", "MissingRequiredParameterException"),
        (
            AwsError::new(
                ErrorCode::InvalidParameterCombination,
                "Must specify either Statistics or ExtendedStatistics",
            ),
            400,
            "InvalidParameterCombination",
            "InvalidParameterCombinationException",
        ),
        (
            AwsError::new(ErrorCode::IamLimitExceeded, "The maximum number of alarms"),
            400,
            "LimitExceeded",
            "LimitExceededFault",
        ),
        (AwsError::new(ErrorCode::InvalidNextToken, "bad token"), 400, "InvalidNextToken", "InvalidNextToken"),
        (AwsError::new(ErrorCode::InternalFailure, "boom <&>"), 500, "InternalServiceError", "InternalServiceFault"),
        // The generic invalid-parameter code other services share becomes CloudWatch's.
        (
            AwsError::new(ErrorCode::InvalidParameter, "bad value"),
            400,
            "InvalidParameterValue",
            "InvalidParameterValueException",
        ),
    ] {
        cases.extend(per_protocol(
            "PutMetricData",
            &put,
            put_form,
            Some(answer),
            Some(SECRET),
            same(status, code, shape),
        ));
    }
    // Requests the model refuses: the same codes in every protocol.
    cases.extend(per_protocol(
        "PutMetricData",
        &json!({"MetricData": [{"Value": 1.0}]}),
        "Action=PutMetricData&Version=2010-08-01&MetricData.member.1.Value=1",
        None,
        Some(SECRET),
        same(400, "MissingParameter", "MissingRequiredParameterException"),
    ));
    cases.extend(per_protocol(
        "GetMetricStatistics",
        &json!({"Namespace": "n", "MetricName": "m", "StartTime": 1, "EndTime": 2, "Period": "sixty"}),
        "Action=GetMetricStatistics&Version=2010-08-01&Namespace=n&MetricName=m&StartTime=1&EndTime=2&Period=sixty",
        None,
        Some(SECRET),
        same(400, "InvalidParameterValue", "InvalidParameterValueException"),
    ));
    cases.extend(per_protocol(
        "PutCompositeAlarm",
        &json!({}),
        "Action=PutCompositeAlarm&Version=2010-08-01",
        None,
        Some(SECRET),
        [
            (400, "InvalidAction", "UnknownOperationException"),
            (400, "InvalidAction", "UnknownOperationException"),
            (400, "InvalidAction", "InvalidAction"),
        ],
    ));
    // Authentication, in each protocol's spelling.
    cases.extend(per_protocol(
        "ListMetrics",
        &json!({}),
        "Action=ListMetrics&Version=2010-08-01",
        None,
        Some("wrong"),
        [
            (400, "SignatureDoesNotMatch", "InvalidSignatureException"),
            (400, "SignatureDoesNotMatch", "InvalidSignatureException"),
            (403, "SignatureDoesNotMatch", "SignatureDoesNotMatch"),
        ],
    ));
    let mut errors = Vec::new();
    for c in cases {
        *backend.answer.lock().expect("lock") = c.answer.clone().map(Err);
        let a = call(&backend, request(c.protocol, c.operation, c.body.clone(), c.secret)).await;
        let what = format!("{} over {} ({})", c.operation, c.protocol, c.code);
        assert_eq!(a.status, c.status, "{what}: {}", String::from_utf8_lossy(&a.body));
        assert_content_type(c.protocol, &a, &what);
        let fault = if c.status >= 500 { "Receiver" } else { "Sender" };
        match c.protocol {
            "query" => {
                let xml = String::from_utf8_lossy(&a.body);
                assert!(xml.contains(&format!("<Code>{}</Code>", c.code)), "{what}: {xml}");
                assert!(xml.contains("xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\""), "{what}: {xml}");
                assert_eq!(a.header("x-amzn-query-error"), None, "{what}");
            }
            _ => {
                assert_eq!(a.error_type(c.protocol).as_deref(), Some(c.shape), "{what}");
                let want = format!("{};{fault}", c.code);
                assert_eq!(a.header("x-amzn-query-error"), Some(want.as_str()), "{what}");
            }
        }
        let shape = (c.protocol != "query").then_some(c.shape);
        errors.push(json!({"protocol": c.protocol, "status": a.status, "headers": a.headers_json(),
                           "body_base64": B64.encode(&a.body), "code": c.code, "message": a.message(c.protocol),
                           "type": fault, "shape": shape,
                           "request_id": a.header("x-amzn-requestid").expect("request id")}));
    }
    common::botocore_check("cloudwatch_check.py", &json!({"outputs": [], "errors": errors}));
}

/// CBOR's scalars in every form the specification allows a client to send: timestamps as tag 1 around an integer
/// or a float, doubles as integers, half, single or double floats, indefinite-length strings and maps.
#[tokio::test]
async fn cbor_scalars_in_every_allowed_form() {
    let backend = Recorder::default();
    // {"Namespace": "N", "MetricData": [{"MetricName": "m", "Timestamp": 1(1696897800), "Value": 1.5 (half)},
    //   {"MetricName": "m", "Timestamp": 1(1696897800.25 (double)), "Value": 3 (integer)}]}, indefinite lengths.
    let mut body = vec![0xbf]; // indefinite map
    body.extend_from_slice(b"\x69Namespace\x7f\x61N\xff"); // indefinite text "N"
    body.extend_from_slice(b"\x6aMetricData\x9f"); // indefinite array
    body.extend_from_slice(b"\xa3\x6aMetricName\x61m\x69Timestamp\xc1\x1a\x65\x24\x9b\x08\x65Value\xf9\x3e\x00");
    body.extend_from_slice(b"\xa3\x6aMetricName\x61m\x69Timestamp\xc1\xfb");
    body.extend_from_slice(&1_696_897_800.25f64.to_bits().to_be_bytes());
    body.extend_from_slice(b"\x65Value\x03");
    body.extend_from_slice(b"\xff\x71StorageResolution\x01\xff"); // an unknown top-level member is ignored
    let a = call(&backend, request("smithy-rpc-v2-cbor", "PutMetricData", body, Some(SECRET))).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.body.is_empty(), "PutMetricData answers no body");
    let op = backend.seen.lock().expect("lock").pop().expect("called");
    let cloudwatch::Operation::PutMetricData(input) = op else { panic!("{op:?}") };
    let data = input.metric_data.expect("data");
    let got: Vec<(f64, f64)> =
        data.iter().map(|d| (d.timestamp.expect("timestamp").0, d.value.expect("value"))).collect();
    assert_eq!(got, [(1_696_897_800.0, 1.5), (1_696_897_800.25, 3.0)]);
    // Bad bodies: not CBOR, not a map, a non-finite double, a timestamp that is text.
    let bad: [(&[u8], &str, &str); 4] = [
        (b"\xff\x00", "SerializationException", "not valid CBOR"),
        (b"\x80", "SerializationException", "CBOR map"),
        (
            b"\xa2\x69Namespace\x61N\x6aMetricData\x81\xa2\x6aMetricName\x61m\x65Value\xf9\x7c\x00",
            "InvalidParameterValueException",
            "MetricData.member.1.Value",
        ),
        (
            b"\xa2\x69Namespace\x61N\x6aMetricData\x81\xa2\x6aMetricName\x61m\x69Timestamp\x61x",
            "InvalidParameterValueException",
            "Timestamp",
        ),
    ];
    for (body, shape, text) in bad {
        let a = call(&backend, request("smithy-rpc-v2-cbor", "PutMetricData", body.to_vec(), Some(SECRET))).await;
        assert_eq!(a.status, 400, "{body:?}");
        assert_eq!(a.error_type("smithy-rpc-v2-cbor").as_deref(), Some(shape), "{body:?}");
        let message = a.message("smithy-rpc-v2-cbor");
        assert!(message.contains(text), "{body:?}: {message}");
    }
}

/// GetMetricData's timestamps in CBOR: every element of a timestamp list is tag 1, whole seconds as integers and
/// fractions as 64-bit floats; doubles are always 64-bit floats.
#[tokio::test]
async fn cbor_output_bytes() {
    let backend = Recorder::default();
    let output =
        json!({"MetricDataResults": [{"Id": "a", "Timestamps": [1696897800.0, 1696897800.25], "Values": [2.0]}]});
    *backend.answer.lock().expect("lock") = Some(Ok(output));
    let a = call(
        &backend,
        request(
            "smithy-rpc-v2-cbor",
            "GetMetricData",
            cbor(&json!({
        "MetricDataQueries": [{"Id": "a", "Expression": "1"}], "StartTime": 1, "EndTime": 2})),
            Some(SECRET),
        ),
    )
    .await;
    assert_eq!(a.status, 200);
    let mut want =
        b"\xa1\x71MetricDataResults\x81\xa3\x62Id\x61a\x6aTimestamps\x82\xc1\x1a\x65\x24\x9b\x08\xc1\xfb".to_vec();
    want.extend_from_slice(&1_696_897_800.25f64.to_bits().to_be_bytes());
    want.extend_from_slice(b"\x66Values\x81\xfb");
    want.extend_from_slice(&2.0f64.to_bits().to_be_bytes());
    assert_eq!(&a.body[..], &want[..]);
}
