//! The data-driven evaluation table: tests/data/eval_cases.json, (policies, request) → decision.

mod common;

#[test]
fn evaluation_table() {
    let cases: serde_json::Value =
        serde_json::from_str(include_str!("data/eval_cases.json")).expect("eval_cases.json is JSON");
    let n = common::run_table(&cases);
    assert!(n > 100, "the table should stay large, has {n}");
}

/// Examples from the IAM User Guide; each case's `source` names the page it comes from.
#[test]
fn aws_documented_examples() {
    let cases: serde_json::Value =
        serde_json::from_str(include_str!("data/aws_examples.json")).expect("aws_examples.json is JSON");
    for case in cases.as_array().expect("array") {
        assert!(case.get("source").and_then(|s| s.as_str()).is_some(), "{} names its source", case["name"]);
    }
    common::run_table(&cases);
}

/// The harness itself notices a wrong expectation.
#[test]
fn harness_reports_mismatches() {
    let cases = serde_json::json!([{"name": "wrong on purpose",
        "statements": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
        "request": {"action": "ecs:ListClusters"}, "expect": "ImplicitDeny"}]);
    let outcome = std::panic::catch_unwind(|| common::run_table(&cases));
    assert!(outcome.is_err());
}
