//! AWS JSON 1.1 and 1.0: `X-Amz-Target: Prefix.Action`, the input object as the body; errors as
//! `{"__type": "prefix#Code", "message": "..."}` or the `x-amzn-ErrorType` header, with CloudWatch's
//! `x-amzn-query-error` (its Query spelling of the code) preferred as botocore prefers it.

use serde_json::Value;

use super::{Encoded, header_request_id, unreadable};
use crate::ClientError;
use crate::transport::Answer;

pub(super) fn encode(target_prefix: &str, version: &str, action: &str, input: &Value) -> Result<Encoded, ClientError> {
    let content_type = match version {
        "1.0" => "application/x-amz-json-1.0",
        _ => "application/x-amz-json-1.1",
    };
    let body = serde_json::to_vec(input).map_err(|e| ClientError::Config(format!("{action}: {e}")))?;
    Ok(Encoded { content_type, target: Some(format!("{target_prefix}.{action}")), body })
}

pub(super) fn decode(action: &str, body: &[u8]) -> Result<Value, ClientError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ClientError::Decode(format!("{action}: the answer is not JSON: {e}")))?;
    match value {
        // An operation without output: berth (like botocore's tolerance) may answer `null`.
        Value::Null => Ok(Value::Object(serde_json::Map::new())),
        Value::Object(_) => Ok(value),
        _ => Err(ClientError::Decode(format!("{action}: the answer is not a JSON object"))),
    }
}

/// `aws.protocoltests#Code`, `Code:http://internal.amazon.com/…` → `Code`.
fn bare_code(raw: &str) -> &str {
    let raw = raw.trim();
    let raw = raw.split(':').next().unwrap_or(raw);
    raw.rsplit('#').next().unwrap_or(raw).trim()
}

pub(super) fn error(answer: &Answer) -> ClientError {
    let body: Option<Value> = serde_json::from_slice(&answer.body).ok().filter(Value::is_object);
    let field = |names: &[&str]| {
        body.as_ref().and_then(|b| names.iter().find_map(|n| b.get(*n).and_then(Value::as_str))).map(str::to_string)
    };
    let header = |name: &str| answer.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    // `x-amzn-query-error: Code;Sender`.
    let query_code = header("x-amzn-query-error").and_then(|v| v.split(';').next().map(str::to_string));
    let code = query_code
        .or_else(|| header("x-amzn-errortype"))
        .or_else(|| field(&["__type", "code", "Code"]))
        .map(|c| bare_code(&c).to_string())
        .filter(|c| !c.is_empty());
    let Some(code) = code else {
        return unreadable(answer, "no AWS error code");
    };
    let message = field(&["message", "Message", "errorMessage"]).unwrap_or_default();
    ClientError::Api { code, message, status: answer.status, request_id: header_request_id(answer) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> Answer {
        let mut map = http::HeaderMap::new();
        for (k, v) in headers {
            map.insert(http::HeaderName::from_bytes(k.as_bytes()).expect("name"), v.parse().expect("value"));
        }
        Answer { status, headers: map, body: bytes::Bytes::copy_from_slice(body.as_bytes()) }
    }

    #[test]
    fn answers_without_output_are_empty_objects() {
        for body in ["", "  ", "null", "{}"] {
            assert_eq!(decode("PutRetentionPolicy", body.as_bytes()).expect(body), serde_json::json!({}), "{body:?}");
        }
        assert!(decode("X", b"[1]").is_err());
        assert!(decode("X", b"\"s\"").is_err());
    }

    #[test]
    fn errors_take_the_code_from_the_header_or_the_body() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str, &'a str);
        let cases: &[Case<'_>] = &[
            (
                &[],
                r#"{"__type":"com.amazonaws.ecs#ClusterNotFoundException","message":"no"}"#,
                "ClusterNotFoundException",
                "no",
            ),
            (
                &[("x-amzn-errortype", "AccessDeniedException:http://internal/")],
                r#"{"Message":"denied"}"#,
                "AccessDeniedException",
                "denied",
            ),
            (&[], r#"{"__type":"ResourceNotFoundException","Message":"gone"}"#, "ResourceNotFoundException", "gone"),
            (
                &[("x-amzn-query-error", "ResourceNotFound;Sender")],
                r#"{"__type":"com.amazonaws.cloudwatch#ResourceNotFoundException","message":"m"}"#,
                "ResourceNotFound",
                "m",
            ),
        ];
        for (headers, body, code, message) in cases {
            let mut headers = headers.to_vec();
            headers.push(("x-amzn-requestid", "rid-1"));
            match error(&answer(400, &headers, body)) {
                ClientError::Api { code: c, message: m, status, request_id } => {
                    assert_eq!((c.as_str(), m.as_str(), status), (*code, *message, 400), "{body}");
                    assert_eq!(request_id.as_deref(), Some("rid-1"));
                }
                other => panic!("{body}: {other:?}"),
            }
        }
        let e = error(&answer(502, &[], "<html>Bad Gateway</html>"));
        assert!(matches!(&e, ClientError::Decode(m) if m.contains("HTTP 502") && m.contains("Bad Gateway")), "{e:?}");
    }

    #[test]
    fn answers_are_objects() {
        assert_eq!(decode("X", b"").expect("empty"), serde_json::json!({}));
        assert_eq!(decode("X", br#"{"a":1}"#).expect("obj"), serde_json::json!({"a": 1}));
        assert!(matches!(decode("X", b"[1]"), Err(ClientError::Decode(_))));
        assert!(matches!(decode("X", b"{"), Err(ClientError::Decode(_))));
    }
}
