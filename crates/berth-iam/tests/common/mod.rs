//! Shared helpers: build a request context and a policy set from the JSON case format.

#![allow(dead_code)]

use std::time::{Duration, UNIX_EPOCH};

use berth_core::Arn;
use berth_iam::{AwsPrincipal, Decision, Policy, PolicyKind, Principal, RequestContext, evaluate};
use serde_json::Value;

pub fn arn(s: &str) -> Arn {
    s.parse().unwrap_or_else(|e| panic!("bad ARN {s}: {e}"))
}

/// `{"user": ARN}`, `{"root": ACCOUNT}`, `{"session": [ROLE_ARN, NAME]}`, `{"service": S}`, `{"federated": F}`
/// or `"anonymous"`.
pub fn principal(v: &Value) -> Principal {
    if v.as_str() == Some("anonymous") {
        return Principal::Anonymous;
    }
    let o = v.as_object().expect("principal object");
    let (k, v) = o.iter().next().expect("one principal entry");
    let s = |v: &Value| v.as_str().expect("string").to_owned();
    match k.as_str() {
        "user" => Principal::Aws(AwsPrincipal::identity(&arn(&s(v)))),
        "root" => Principal::Aws(AwsPrincipal::root(&s(v))),
        "session" => {
            let a = v.as_array().expect("[role, session]");
            Principal::Aws(AwsPrincipal::role_session(&arn(&s(&a[0])), &s(&a[1])))
        }
        "service" => Principal::Service(s(v)),
        "federated" => Principal::Federated(s(v)),
        other => panic!("unknown principal kind {other}"),
    }
}

pub fn request(v: &Value) -> RequestContext {
    let mut ctx = RequestContext::new(
        v["action"].as_str().expect("action"),
        v.get("resource").and_then(Value::as_str).unwrap_or("*"),
    );
    if let Some(keys) = v.get("keys").and_then(Value::as_object) {
        for (k, val) in keys {
            ctx = match val {
                Value::Array(a) => ctx.with_multi_key(k, a.iter().map(|x| x.as_str().expect("string value"))),
                other => ctx.with_key(k, other.as_str().expect("string value")),
            };
        }
    }
    if let Some(p) = v.get("principal") {
        ctx = ctx.with_principal(principal(p));
    }
    if let Some(now) = v.get("now").and_then(Value::as_u64) {
        ctx = ctx.with_now(UNIX_EPOCH + Duration::from_secs(now));
    }
    ctx
}

pub fn kind(v: Option<&Value>) -> PolicyKind {
    match v.and_then(Value::as_str) {
        None | Some("Identity") => PolicyKind::Identity,
        Some("Trust") => PolicyKind::Trust,
        Some("Resource") => PolicyKind::Resource,
        Some(other) => panic!("unknown kind {other}"),
    }
}

pub fn parse(doc: &Value, kind: PolicyKind) -> Policy {
    let text = serde_json::to_string(doc).expect("serialize");
    Policy::parse(&text, kind).unwrap_or_else(|e| panic!("policy must parse: {e}\n{text}"))
}

pub fn decision_name(d: &Decision) -> String {
    match d {
        Decision::Allow => "Allow".into(),
        Decision::ImplicitDeny => "ImplicitDeny".into(),
        Decision::ExplicitDeny { sid: None } => "ExplicitDeny".into(),
        Decision::ExplicitDeny { sid: Some(s) } => format!("ExplicitDeny:{s}"),
    }
}

/// Run a table of cases; returns how many ran.
pub fn run_table(cases: &Value) -> usize {
    let cases = cases.as_array().expect("array of cases");
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let kind = kind(case.get("kind"));
        let docs: Vec<Value> = match (case.get("statements"), case.get("policies")) {
            (Some(s), None) => vec![serde_json::json!({"Version": "2012-10-17", "Statement": s})],
            (None, Some(Value::Array(p))) => p.clone(),
            _ => panic!("{name}: needs statements or policies"),
        };
        let policies: Vec<Policy> = docs.iter().map(|d| parse(d, kind)).collect();
        let refs: Vec<&Policy> = policies.iter().collect();
        let got = decision_name(&evaluate(&request(&case["request"]), &refs));
        let want = case["expect"].as_str().expect("expect");
        if got != want {
            failures.push(format!("{name}: want {want}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{} failing cases:\n{}", failures.len(), failures.join("\n"));
    cases.len()
}
