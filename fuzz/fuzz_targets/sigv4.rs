//! SigV4 verification over arbitrary requests: never panics, and never accepts a request whose
//! signature it did not compute itself (the fuzzer cannot know the secret).
#![no_main]

use std::time::{Duration, SystemTime};

use berth_api::{Credential, Principal, sigv4};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (String, String, Vec<(String, String)>, Vec<u8>)| {
    let (method, uri, headers, body) = input;
    let Ok(method) = http::Method::from_bytes(method.as_bytes()) else { return };
    let Ok(uri) = uri.parse::<http::Uri>() else { return };
    let mut map = http::HeaderMap::new();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k.as_bytes()), http::HeaderValue::from_str(&v)) {
            map.append(k, v);
        }
    }
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    let lookup = |_: &str| {
        Some(Credential {
            secret_access_key: "fuzz-secret-the-fuzzer-never-sees-0000000".into(),
            principal: Principal { arn: "arn:aws:iam::123456789012:root".into(), account: "123456789012".into(), user_id: "123456789012".into() },
            session_token: None,
            expires_at: None,
        })
    };
    let result = sigv4::verify(&method, &uri, &map, &body, now, Duration::from_secs(900), lookup);
    assert!(result.is_err(), "a request signed without the secret was accepted");
});
