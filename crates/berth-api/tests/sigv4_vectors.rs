//! Verifies every request in `vectors/sigv4_vectors.json`: signed by botocore's own `SigV4Auth` /
//! `SigV4QueryAuth` (see `vectors/gen.py`), with tampered copies that must fail with the expected error.

use std::time::{Duration, SystemTime};

use berth_api::sigv4::{self, AuthError};
use berth_api::{Credential, Principal};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use serde_json::Value;

fn credential(secret: &str, token: Option<&str>) -> Credential {
    Credential {
        secret_access_key: secret.to_string(),
        principal: Principal {
            arn: "arn:aws:iam::123456789012:root".into(),
            account: "123456789012".into(),
            user_id: "123456789012".into(),
        },
        session_token: token.map(str::to_string),
        expires_at: None,
    }
}

#[test]
fn botocore_vectors() {
    let raw = include_str!("vectors/sigv4_vectors.json");
    let doc: Value = serde_json::from_str(raw).expect("vectors json");
    let vectors = doc["vectors"].as_array().expect("vectors");
    assert!(vectors.len() > 100, "expected the full vector set, got {}", vectors.len());
    let mut failures = Vec::new();
    for v in vectors {
        let name = v["name"].as_str().expect("name");
        let method = Method::from_bytes(v["method"].as_str().expect("method").as_bytes()).expect("method");
        let uri: Uri = v["url"].as_str().expect("url").parse().unwrap_or_else(|e| panic!("{name}: url: {e}"));
        let mut headers = HeaderMap::new();
        for pair in v["headers"].as_array().expect("headers") {
            let k = HeaderName::from_bytes(pair[0].as_str().expect("k").to_ascii_lowercase().as_bytes()).expect("name");
            headers.append(k, HeaderValue::from_str(pair[1].as_str().expect("v")).expect("value"));
        }
        let body = v["body"].as_str().expect("body").as_bytes();
        let now: SystemTime = sigv4::parse_basic_iso(v["now"].as_str().expect("now")).expect("now").into();
        let key = v["access_key"].as_str().expect("akid").to_string();
        let cred = credential(v["secret"].as_str().expect("secret"), v["token"].as_str());
        let result =
            sigv4::verify(&method, &uri, &headers, body, now, Duration::from_secs(900), |k| (k == key).then_some(cred));
        let expected_valid = v["valid"].as_bool().expect("valid");
        let outcome = match (&result, expected_valid, v["error"].as_str()) {
            (Ok(_), true, _) => Ok(()),
            (Err(AuthError::InvalidSignature(_)), false, Some("InvalidSignature")) => Ok(()),
            (Err(AuthError::UnrecognizedClient), false, Some("UnrecognizedClient")) => Ok(()),
            (r, _, e) => Err(format!("{name}: expected valid={expected_valid} error={e:?}, got {r:?}")),
        };
        if let Err(f) = outcome {
            failures.push(f);
        }
    }
    assert!(failures.is_empty(), "{} of {} vectors failed:\n{}", failures.len(), vectors.len(), failures.join("\n"));
}
