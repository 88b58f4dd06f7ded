//! What the integration tests share: the root credential of a stub backend, and running botocore (`$BERTH_PYTHON`,
//! default `python3`) on what berth wrote. Without the Python module the botocore half prints a skip message,
//! unless `BERTH_REQUIRE_PYTHON=1`, which makes it fail instead.

#![allow(dead_code)]

use std::io::Write;

use berth_api::{Credential, Principal};

/// The account root's credential for `secret`.
pub fn root_credential(secret: &str) -> Credential {
    Credential {
        secret_access_key: secret.into(),
        principal: Principal {
            arn: "arn:aws:iam::123456789012:root".into(),
            account: "123456789012".into(),
            user_id: "123456789012".into(),
        },
        session_token: None,
        expires_at: None,
    }
}

pub fn python() -> String {
    std::env::var("BERTH_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether `module` imports with [`python`]; a skip message (or, with `BERTH_REQUIRE_PYTHON=1`, a failure) if not.
pub fn python_has(module: &str) -> bool {
    let ok = std::process::Command::new(python())
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var("BERTH_REQUIRE_PYTHON").as_deref() != Ok("1"),
            "{module} is not importable with {} and BERTH_REQUIRE_PYTHON=1",
            python()
        );
        eprintln!("SKIP: {module} is not importable with {} (set BERTH_PYTHON to a Python that has it)", python());
    }
    ok
}

/// Runs the checker `tests/vectors/<script>` with `encoded` on stdin; it must exit 0.
pub fn botocore_check(script: &str, encoded: &serde_json::Value) {
    if !python_has("botocore") {
        return;
    }
    let path = format!("{}/tests/vectors/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = std::process::Command::new(python())
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python");
    child.stdin.take().expect("stdin").write_all(encoded.to_string().as_bytes()).expect("write");
    let out = child.wait_with_output().expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "botocore disagrees:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("botocore check ({script}): {}", stdout.trim());
}

/// The unescaped text of the first `<Message>` of an XML error, as botocore should read it.
pub fn message_of(xml: &str) -> String {
    let start = xml.find("<Message>").map(|i| i + "<Message>".len()).unwrap_or(0);
    let end = xml.find("</Message>").unwrap_or(start);
    xml[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}
