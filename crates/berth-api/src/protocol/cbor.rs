//! Smithy RPC v2 CBOR: `POST /service/<ServiceName>/operation/<Operation>` with `smithy-protocol: rpc-v2-cbor`,
//! CBOR bodies (RFC 8949); errors as a CBOR map `{"__type": "...", "message": "..."}` with the same header, and,
//! for services that are `awsQueryCompatible` (CloudWatch), the Query spelling of the code in
//! `x-amzn-query-error: <Code>;<Sender|Receiver>`, which their SDKs report instead of `__type`.
//!
//! CloudWatch is served over it (the Go and Java SDKs' choice). A request body is decoded by walking the
//! operation's generated wire schema (`cloudwatch::OPERATIONS`): timestamps arrive as tag 1 around epoch seconds
//! (an integer or a float), doubles as floats or integers, blobs as byte strings; they become the member-name
//! JSON value the other CloudWatch protocols build, and `Operation::from_value` validates it. Outputs are written
//! the same way back: a map of the present members, timestamps as tag 1 around an integer (whole seconds) or a
//! 64-bit float, doubles as 64-bit floats (never half floats), no body for operations without output. Every
//! other service's request is answered in it with an error, so a client can read why it was refused.

use berth_core::{AwsError, ErrorCode};
use berth_model::DecodeError;
use berth_model::schema::{Ref, Shape, Structure};
use bytes::Bytes;
use ciborium::value::Value as Cbor;
use http::{HeaderValue, StatusCode};
use serde_json::{Map, Value};

use super::{Route, Service, compat};
use crate::Request;

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

/// The service a path segment names: the service shape's name, bare or with its namespace
/// (`com.amazonaws.cloudwatch.GraniteServiceVersion20100801`).
fn service_of_segment(segment: &str) -> Option<Service> {
    let name = segment.rsplit('.').next().unwrap_or(segment);
    (name == berth_model::cloudwatch::TARGET_PREFIX).then_some(Service::CloudWatch)
}

/// The service the path names, if berth serves it over RPC v2 CBOR (unauthenticated: for spelling errors).
pub(crate) fn service(parts: &http::request::Parts) -> Option<Service> {
    service_and_operation(parts.uri.path()).and_then(|(service, _)| service_of_segment(service))
}

/// Names the service and operation.
pub(crate) fn route(parts: &http::request::Parts) -> Result<Route, AwsError> {
    if parts.method != http::Method::POST {
        return Err(AwsError::new(
            ErrorCode::UnknownOperation,
            format!("RPC v2 CBOR operations are called with POST, not {}", parts.method),
        ));
    }
    if parts.headers.contains_key("x-amz-target") || parts.headers.contains_key("x-amzn-target") {
        return Err(AwsError::new(
            ErrorCode::Serialization,
            "RPC v2 CBOR requests must not carry X-Amz-Target or X-Amzn-Target",
        ));
    }
    match service_and_operation(parts.uri.path()) {
        Some((segment, operation)) => match service_of_segment(segment) {
            Some(service) => Ok(Route { service, operation: operation.to_string() }),
            None => Err(AwsError::new(
                ErrorCode::UnknownOperation,
                format!("berth does not serve {segment} (operation {operation}) over RPC v2 CBOR"),
            )),
        },
        None => Err(AwsError::new(
            ErrorCode::UnknownOperation,
            "The request names no operation: RPC v2 CBOR requests are POST /service/<ServiceName>/operation/<Operation>",
        )),
    }
}

/// Decodes a CloudWatch request body (empty for an operation without input members).
pub(crate) fn decode(route: &Route, body: &[u8]) -> Result<Request, AwsError> {
    if route.service != Service::CloudWatch {
        return Err(AwsError::new(
            ErrorCode::UnknownOperation,
            format!("{} is not served over RPC v2 CBOR", route.service.signing_name()),
        ));
    }
    let op = &route.operation;
    let Some(schema) = berth_model::cloudwatch::operation(op) else {
        return Err(compat::cloudwatch_decode_error(DecodeError::UnknownOperation(op.clone())));
    };
    let value = if body.is_empty() {
        Value::Object(Map::new())
    } else {
        let cbor: Cbor = ciborium::from_reader(body)
            .map_err(|e| AwsError::new(ErrorCode::Serialization, format!("Request body is not valid CBOR: {e}")))?;
        if !matches!(cbor, Cbor::Map(_)) {
            return Err(AwsError::new(ErrorCode::Serialization, "Request body must be a CBOR map"));
        }
        Value::Object(structure(schema.input, cbor, "").map_err(compat::cloudwatch_decode_error)?)
    };
    berth_model::cloudwatch::Operation::from_value(op, value)
        .map(Request::CloudWatch)
        .map_err(compat::cloudwatch_decode_error)
}

fn invalid(path: &str, what: &str) -> DecodeError {
    DecodeError::Invalid(format!(
        "1 validation error detected: Value at '{path}' failed to satisfy constraint: Member must be {what}"
    ))
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

/// The members of a structure the schema declares (others, and nulls, are ignored), by member name.
fn structure(st: &Structure, cbor: Cbor, path: &str) -> Result<Map<String, Value>, DecodeError> {
    let Cbor::Map(entries) = cbor else { return Err(invalid(path, "a structure")) };
    let mut obj = Map::new();
    for (k, v) in entries {
        let Cbor::Text(key) = k else { continue };
        let Some(m) = st.members.iter().find(|m| m.name == key) else { continue };
        let member_path = join(path, m.name);
        if let Some(v) = value(&m.target, v, &member_path)? {
            obj.insert(m.name.to_string(), v);
        }
    }
    Ok(obj)
}

/// A CBOR value of the referenced shape as the JSON value the generated types read; `None` for null.
fn value(r: &Ref, cbor: Cbor, path: &str) -> Result<Option<Value>, DecodeError> {
    if matches!(cbor, Cbor::Null) {
        return Ok(None);
    }
    let v = match (r.shape, cbor) {
        (Shape::Structure(st), c) => Value::Object(structure(st, c, path)?),
        (Shape::List(list), Cbor::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.into_iter().enumerate() {
                if let Some(v) = value(&list.member, item, &format!("{path}.member.{}", i + 1))? {
                    out.push(v);
                }
            }
            Value::Array(out)
        }
        (Shape::Map(map), Cbor::Map(entries)) => {
            let mut obj = Map::new();
            for (k, v) in entries {
                let Cbor::Text(key) = k else { return Err(invalid(path, "a map with string keys")) };
                let entry_path = join(path, &key);
                if let Some(v) = value(&map.value, v, &entry_path)? {
                    obj.insert(key, v);
                }
            }
            Value::Object(obj)
        }
        (Shape::String, Cbor::Text(s)) => Value::String(s),
        (Shape::Boolean, Cbor::Bool(b)) => Value::Bool(b),
        (Shape::Integer | Shape::Long, Cbor::Integer(i)) => {
            Value::from(i64::try_from(i128::from(i)).map_err(|_| invalid(path, "a 64-bit integer"))?)
        }
        (Shape::Double, c) => number(c).ok_or_else(|| invalid(path, "a finite number"))?,
        (Shape::Timestamp, Cbor::Tag(1, inner)) => number(*inner).ok_or_else(|| invalid(path, "a timestamp"))?,
        // Lenient: a bare number of epoch seconds.
        (Shape::Timestamp, c @ (Cbor::Integer(_) | Cbor::Float(_))) => {
            number(c).ok_or_else(|| invalid(path, "a timestamp"))?
        }
        (Shape::Blob, Cbor::Bytes(b)) => {
            Value::String(base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b))
        }
        (Shape::List(_), _) => return Err(invalid(path, "a list")),
        (Shape::Map(_), _) => return Err(invalid(path, "a map")),
        (Shape::String, _) => return Err(invalid(path, "a string")),
        (Shape::Boolean, _) => return Err(invalid(path, "true or false")),
        (Shape::Integer | Shape::Long, _) => return Err(invalid(path, "an integer")),
        (Shape::Timestamp, _) => return Err(invalid(path, "a timestamp (tag 1)")),
        (Shape::Blob, _) => return Err(invalid(path, "a byte string")),
    };
    Ok(Some(v))
}

/// A finite CBOR number (integer or float) as a JSON number.
fn number(cbor: Cbor) -> Option<Value> {
    match cbor {
        Cbor::Integer(i) => i64::try_from(i128::from(i)).ok().map(Value::from),
        Cbor::Float(f) => serde_json::Number::from_f64(f).map(Value::Number),
        _ => None,
    }
}

/// Appends a CBOR head: major type and argument in the shortest form.
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    if n < 24 {
        out.push(m | n as u8);
    } else if n <= u64::from(u8::MAX) {
        out.extend_from_slice(&[m | 24, n as u8]);
    } else if n <= u64::from(u16::MAX) {
        out.push(m | 25);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= u64::from(u32::MAX) {
        out.push(m | 26);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(m | 27);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn text(out: &mut Vec<u8>, s: &str) {
    head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn integer(out: &mut Vec<u8>, i: i64) {
    if i >= 0 {
        head(out, 0, i as u64);
    } else {
        // -1 - i, without overflow for i64::MIN.
        head(out, 1, !(i as u64));
    }
}

fn double(out: &mut Vec<u8>, f: f64) {
    out.push(0xfb);
    out.extend_from_slice(&f.to_bits().to_be_bytes());
}

/// Whether a JSON value will be written (absent and null members are omitted).
fn present(v: &Value) -> bool {
    !v.is_null()
}

/// Writes the members of `value` that `st` declares, as a CBOR map.
fn write_structure(out: &mut Vec<u8>, st: &Structure, value: &Value) {
    let obj = value.as_object();
    let members: Vec<_> = st
        .members
        .iter()
        .filter_map(|m| obj.and_then(|o| o.get(m.name)).filter(|v| present(v)).map(|v| (m, v)))
        .collect();
    head(out, 5, members.len() as u64);
    for (m, v) in members {
        text(out, m.name);
        write_value(out, &m.target, v);
    }
}

fn write_value(out: &mut Vec<u8>, r: &Ref, v: &Value) {
    match r.shape {
        Shape::Structure(st) => write_structure(out, st, v),
        Shape::List(list) => {
            let items: Vec<&Value> =
                v.as_array().map(|a| a.iter().filter(|x| present(x)).collect()).unwrap_or_default();
            head(out, 4, items.len() as u64);
            for item in items {
                write_value(out, &list.member, item);
            }
        }
        Shape::Map(map) => {
            let entries: Vec<(&String, &Value)> =
                v.as_object().map(|o| o.iter().filter(|(_, x)| present(x)).collect()).unwrap_or_default();
            head(out, 5, entries.len() as u64);
            for (k, val) in entries {
                text(out, k);
                write_value(out, &map.value, val);
            }
        }
        Shape::String => match v {
            Value::String(s) => text(out, s),
            other => text(out, &other.to_string()),
        },
        Shape::Boolean => out.push(if v.as_bool().unwrap_or(false) { 0xf5 } else { 0xf4 }),
        Shape::Integer | Shape::Long => match (v.as_i64(), v.as_f64()) {
            (Some(i), _) => integer(out, i),
            (None, Some(f)) => integer(out, f as i64),
            (None, None) => integer(out, 0),
        },
        Shape::Double => double(out, v.as_f64().unwrap_or(f64::NAN)),
        Shape::Timestamp => {
            // Tag 1: epoch seconds, an integer when whole, else a 64-bit float (milliseconds survive).
            out.push(0xc1);
            let secs = v.as_f64().unwrap_or(0.0);
            if secs.fract() == 0.0 && secs.abs() < 9.0e15 {
                integer(out, secs as i64);
            } else {
                double(out, secs);
            }
        }
        Shape::Blob => {
            let bytes = v
                .as_str()
                .and_then(|s| base64::Engine::decode(&base64::engine::general_purpose::STANDARD, s).ok())
                .unwrap_or_default();
            head(out, 2, bytes.len() as u64);
            out.extend_from_slice(&bytes);
        }
    }
}

/// The CBOR body of a CloudWatch output: the output structure's present members, none for no output.
pub(crate) fn cloudwatch_body(output: &berth_model::cloudwatch::Output) -> Vec<u8> {
    let Some(st) = berth_model::cloudwatch::operation(output.name()).and_then(|s| s.output) else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(256);
    write_structure(&mut out, st, &output.to_value());
    out
}

fn response(status: StatusCode, body: Vec<u8>, request_id: &str) -> http::Response<Bytes> {
    let has_body = !body.is_empty();
    let mut resp = http::Response::new(Bytes::from(body));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    if has_body {
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    }
    h.insert(PROTOCOL_HEADER, HeaderValue::from_static(PROTOCOL));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", id);
    }
    resp
}

/// Writes a CloudWatch output.
pub(crate) fn encode_cloudwatch(output: &berth_model::cloudwatch::Output, request_id: &str) -> http::Response<Bytes> {
    response(StatusCode::OK, cloudwatch_body(output), request_id)
}

/// The CBOR error body: a map of `__type` and `message`.
fn error_body(type_name: &str, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + type_name.len() + message.len());
    head(&mut out, 5, 2);
    text(&mut out, "__type");
    text(&mut out, type_name);
    text(&mut out, "message");
    text(&mut out, message);
    out
}

/// Writes an error: CloudWatch's spelling for CloudWatch requests, the code's own name (with its Query spelling
/// in `x-amzn-query-error`) for requests berth does not serve over RPC v2 CBOR.
pub(crate) fn encode_error(service: Option<Service>, error: &AwsError, request_id: &str) -> http::Response<Bytes> {
    let wire = match service {
        Some(Service::CloudWatch) => compat::cloudwatch(error),
        _ => compat::generic(error.code),
    };
    let status = StatusCode::from_u16(wire.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = response(status, error_body(wire.shape, &error.message), request_id);
    if let Ok(v) = HeaderValue::from_str(&wire.query_error_header()) {
        resp.headers_mut().insert("x-amzn-query-error", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn parts(method: &str, uri: &str) -> http::request::Parts {
        let b = http::Request::builder().method(method).uri(uri).header(PROTOCOL_HEADER, PROTOCOL);
        b.body(()).expect("request").into_parts().0
    }

    #[test]
    fn routes() {
        for uri in [
            "/service/GraniteServiceVersion20100801/operation/GetMetricData",
            "/prefix/service/com.amazonaws.cloudwatch.GraniteServiceVersion20100801/operation/GetMetricData",
        ] {
            let p = parts("POST", uri);
            assert_eq!(service(&p), Some(Service::CloudWatch), "{uri}");
            let r = route(&p).expect(uri);
            assert_eq!(r, Route { service: Service::CloudWatch, operation: "GetMetricData".into() });
        }
        let cases = [
            ("POST", "/prefix/service/Svc/operation/Op", "Svc (operation Op)"),
            ("POST", "/", "names no operation"),
            ("POST", "/service/Svc/operation/", "names no operation"),
            ("POST", "/service/Svc/operation/A/B", "names no operation"),
            ("GET", "/service/GraniteServiceVersion20100801/operation/ListMetrics", "not GET"),
        ];
        for (method, uri, text) in cases {
            let p = parts(method, uri);
            assert!(is_rpc_v2_cbor(&p));
            let e = route(&p).expect_err("not served");
            assert_eq!(e.code, ErrorCode::UnknownOperation, "{method} {uri}");
            assert!(e.message.contains(text), "{method} {uri}: {}", e.message);
        }
        let mut p = parts("POST", "/service/GraniteServiceVersion20100801/operation/ListMetrics");
        p.headers.insert("x-amz-target", HeaderValue::from_static("GraniteServiceVersion20100801.ListMetrics"));
        assert_eq!(route(&p).expect_err("target header").code, ErrorCode::Serialization);
    }

    #[test]
    fn errors_are_cbor_maps_with_the_protocol_header() {
        let resp = encode_error(None, &AwsError::new(ErrorCode::UnknownOperation, "no such thing"), "rid");
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
        let resp = encode_error(None, &AwsError::new(ErrorCode::MissingAuthenticationToken, "m"), "rid");
        assert_eq!(
            (resp.status().as_u16(), resp.headers()["x-amzn-query-error"].to_str().ok()),
            (403, Some("MissingAuthenticationToken;Sender"))
        );
        let resp = encode_error(None, &AwsError::internal("x"), "rid");
        assert_eq!(resp.headers()["x-amzn-query-error"], "ServerException;Receiver");
        // CloudWatch's: the shape as __type, the model's Query code and status.
        let e = AwsError::new(ErrorCode::ResourceNotFound, "gone");
        let resp = encode_error(Some(Service::CloudWatch), &e, "rid");
        assert_eq!(resp.status(), 404);
        assert_eq!(resp.headers()["x-amzn-query-error"], "ResourceNotFoundException;Sender");
    }

    #[test]
    fn heads_and_scalars_in_their_shortest_form() {
        fn bytes(write: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
            let mut out = Vec::new();
            write(&mut out);
            out
        }
        let cases: Vec<(Vec<u8>, &[u8])> = vec![
            (bytes(|o| integer(o, 0)), b"\x00"),
            (bytes(|o| integer(o, 23)), b"\x17"),
            (bytes(|o| integer(o, 24)), b"\x18\x18"),
            (bytes(|o| integer(o, 256)), b"\x19\x01\x00"),
            (bytes(|o| integer(o, 65536)), b"\x1a\x00\x01\x00\x00"),
            (bytes(|o| integer(o, 1 << 32)), b"\x1b\x00\x00\x00\x01\x00\x00\x00\x00"),
            (bytes(|o| integer(o, -1)), b"\x20"),
            (bytes(|o| integer(o, -25)), b"\x38\x18"),
            (bytes(|o| integer(o, i64::MIN)), b"\x3b\x7f\xff\xff\xff\xff\xff\xff\xff"),
            (bytes(|o| double(o, 1.5)), b"\xfb\x3f\xf8\x00\x00\x00\x00\x00\x00"),
            (bytes(|o| text(o, "a")), b"\x61a"),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
    }
}
