//! Validation: which documents IAM refuses, and with which reason.

use berth_iam::{
    InlineOwner, Operator, Policy, PolicyError, PolicyKind, SetQualifier, Test, Version, check_inline_aggregate,
    check_managed_policy_size, check_trust_policy_size, policy_size,
};

const ID: PolicyKind = PolicyKind::Identity;
const TRUST: PolicyKind = PolicyKind::Trust;

fn err(doc: &str, kind: PolicyKind) -> String {
    match Policy::parse(doc, kind) {
        Ok(p) => panic!("expected an error for {doc}, parsed {p:?}"),
        Err(e) => {
            assert_eq!(e.aws_code(), "MalformedPolicyDocument", "{doc}");
            e.to_string()
        }
    }
}

#[test]
fn malformed_documents_have_aws_reasons() {
    let s = |stmt: &str| format!(r#"{{"Version":"2012-10-17","Statement":{stmt}}}"#);
    let cases: Vec<(String, PolicyKind, &str)> = vec![
        ("not json".into(), ID, "Syntax errors in policy."),
        ("[]".into(), ID, "Syntax errors in policy."),
        (r#"{"Version":"2012-10-17"}"#.into(), ID, "Missing required field Statement"),
        (r#"{"Version":"2012-10-17","Statement":[]}"#.into(), ID, "Missing required field Statement"),
        (r#"{"Version":"2012-10-17","Statement":"x"}"#.into(), ID, "Syntax errors in policy."),
        (r#"{"Version":"2012-10-17","Statement":["x"]}"#.into(), ID, "Syntax errors in policy."),
        (
            r#"{"Version":"2012-10-17","Extra":1,"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#.into(),
            ID,
            "Syntax errors in policy.",
        ),
        (
            r#"{"Version":"2012-10-18","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#.into(),
            ID,
            "The policy failed legacy parsing",
        ),
        (
            r#"{"Version":2012,"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#.into(),
            ID,
            "Syntax errors in policy.",
        ),
        (s(r#"{"Action":"*","Resource":"*"}"#), ID, "Missing required field Effect"),
        (s(r#"{"Effect":"Permit","Action":"*","Resource":"*"}"#), ID, "Invalid effect: Permit"),
        (s(r#"{"Effect":"allow","Action":"*","Resource":"*"}"#), ID, "Invalid effect: allow"),
        (s(r#"{"Effect":"Allow","Actions":"*","Resource":"*"}"#), ID, "Syntax errors in policy."),
        (s(r#"{"Effect":"Allow","Resource":"*"}"#), ID, "Policy statement must contain actions."),
        (s(r#"{"Effect":"Allow","Action":[],"Resource":"*"}"#), ID, "Policy statement must contain actions."),
        (s(r#"{"Effect":"Allow","Action":"*","NotAction":"iam:*","Resource":"*"}"#), ID, "Syntax errors in policy."),
        (s(r#"{"Effect":"Allow","Action":"*"}"#), ID, "Policy statement must contain resources."),
        (s(r#"{"Effect":"Allow","Action":"*","Resource":[]}"#), ID, "Policy statement must contain resources."),
        (s(r#"{"Effect":"Allow","Action":[1],"Resource":"*"}"#), ID, "Syntax errors in policy."),
        (
            s(r#"{"Effect":"Allow","Action":"CreateService","Resource":"*"}"#),
            ID,
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (s(r#"{"Effect":"Allow","Action":"ec*:CreateService","Resource":"*"}"#), ID, "Vendor ec* is not valid"),
        (
            s(r#"{"Effect":"Allow","Action":"ecs:Create Service","Resource":"*"}"#),
            ID,
            "Invalid Action: The action ecs:Create Service is not a valid action name.",
        ),
        (
            s(r#"{"Effect":"Allow","Action":"ecs:*","Resource":"vpc-123"}"#),
            ID,
            "Resource vpc-123 must be in ARN format or \"*\".",
        ),
        (
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Principal":{"AWS":"*"}}"#),
            ID,
            "Policy document should not specify a principal.",
        ),
        (
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","NotPrincipal":{"AWS":"123456789012"}}"#),
            ID,
            "Policy document should not specify a principal.",
        ),
        (
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEqualz":{"aws:username":"x"}}}"#),
            ID,
            "Invalid Condition type : StringEqualz",
        ),
        (
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NullIfExists":{"aws:username":"true"}}}"#),
            ID,
            "Invalid Condition type : NullIfExists",
        ),
        (
            s(
                r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"ForSomeValues:StringEquals":{"aws:TagKeys":"x"}}}"#,
            ),
            ID,
            "Invalid Condition type : ForSomeValues:StringEquals",
        ),
        (
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"username":"x"}}}"#),
            ID,
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:username":null}}}"#),
            ID,
            "Syntax errors in policy.",
        ),
        (
            s(r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":"x"}}"#),
            ID,
            "Syntax errors in policy.",
        ),
        (
            s(r#"{"Sid":"has space","Effect":"Allow","Action":"*","Resource":"*"}"#),
            ID,
            "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*",
        ),
        (
            s(
                r#"[{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"A","Effect":"Deny","Action":"*","Resource":"*"}]"#,
            ),
            ID,
            "Statement IDs (SID) in a single policy must be unique.",
        ),
        // Trust policies.
        (s(r#"{"Effect":"Allow","Action":"sts:AssumeRole"}"#), TRUST, "Missing required field Principal"),
        (
            s(
                r#"{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole","Resource":"*"}"#,
            ),
            TRUST,
            "Has prohibited field Resource",
        ),
        (
            s(r#"{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"s3:GetObject"}"#),
            TRUST,
            "AssumeRole policy may only specify STS AssumeRole actions.",
        ),
        (
            s(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/*"},"Action":"sts:AssumeRole"}"#),
            TRUST,
            "Invalid principal in policy: \"AWS\":\"arn:aws:iam::123456789012:role/*\"",
        ),
        (
            s(r#"{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"sts:AssumeRole"}"#),
            TRUST,
            "Invalid principal in policy: \"AWS\":\"bob\"",
        ),
        (
            s(r#"{"Effect":"Allow","Principal":{"Service":"ecs *.amazonaws.com"},"Action":"sts:AssumeRole"}"#),
            TRUST,
            "Invalid principal in policy: \"SERVICE\":\"ecs *.amazonaws.com\"",
        ),
        (
            s(r#"{"Effect":"Allow","Principal":{"Robot":"x"},"Action":"sts:AssumeRole"}"#),
            TRUST,
            "Invalid principal in policy: \"Robot\"",
        ),
        (
            s(r#"{"Effect":"Allow","Principal":"ecs","Action":"sts:AssumeRole"}"#),
            TRUST,
            "Invalid principal in policy: ecs",
        ),
        (s(r#"{"Effect":"Allow","Principal":{},"Action":"sts:AssumeRole"}"#), TRUST, "Syntax errors in policy."),
    ];
    for (doc, kind, want) in &cases {
        assert_eq!(err(doc, *kind), *want, "{doc}");
    }
}

#[test]
fn valid_documents_parse_faithfully() {
    // Statement as an object, strings for lists, no Version (2008-10-17), Id kept.
    let p = Policy::parse(r#"{"Id":"x","Statement":{"Effect":"Deny","NotAction":"iam:*","NotResource":"*"}}"#, ID)
        .expect("valid");
    assert_eq!(p.version, Version::V2008_10_17);
    assert_eq!(p.id.as_deref(), Some("x"));
    assert_eq!(p.statements.len(), 1);

    // Condition values may be numbers and booleans; operators keep their qualifiers.
    let p = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"A1","Effect":"Allow","Action":["ecs:*"],"Resource":["*"],
            "Condition":{"NumericLessThan":{"ecs:count":[3, 4.5]},"Bool":{"aws:SecureTransport":true},
            "ForAnyValue:StringLikeIfExists":{"aws:TagKeys":"team-*"}}}]}"#,
        ID,
    )
    .expect("valid");
    assert_eq!(p.version, Version::V2012_10_17);
    let conds = &p.statements[0].conditions;
    assert_eq!(conds.len(), 3);
    let num = conds.iter().find(|c| c.operator.test == Test::NumericLessThan).expect("numeric");
    assert_eq!(num.values, vec!["3".to_owned(), "4.5".to_owned()]);
    let b = conds.iter().find(|c| c.operator.test == Test::Bool).expect("bool");
    assert_eq!(b.values, vec!["true".to_owned()]);
    let any = conds.iter().find(|c| c.operator.test == Test::StringLike).expect("like");
    assert_eq!(
        any.operator,
        Operator { test: Test::StringLike, if_exists: true, set: Some(SetQualifier::ForAnyValue) }
    );

    // Trust policies of the Express tutorial.
    let exec = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let infra = r#"{"Version":"2012-10-17","Statement":[{"Sid":"AllowAccessInfrastructureForECSExpressServices","Effect":"Allow","Principal":{"Service":"ecs.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    for doc in [exec, infra] {
        Policy::parse(doc, TRUST).expect("trust policy");
        // A trust policy is not a valid identity policy.
        assert_eq!(err(doc, ID), "Policy document should not specify a principal.");
    }
    // Principal forms.
    for principal in [
        r#""*""#,
        r#"{"AWS":"*"}"#,
        r#"{"AWS":"123456789012"}"#,
        r#"{"AWS":["arn:aws:iam::123456789012:root","arn:aws:iam::123456789012:user/a/b"]}"#,
        r#"{"AWS":"arn:aws:sts::123456789012:assumed-role/ci/build"}"#,
        r#"{"Federated":"cognito-identity.amazonaws.com"}"#,
        r#"{"Service":["ecs.amazonaws.com","ecs-tasks.amazonaws.com"],"AWS":"123456789012"}"#,
    ] {
        let doc = format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Principal":{principal},"Action":["sts:AssumeRole","sts:TagSession"]}}}}"#
        );
        Policy::parse(&doc, TRUST).unwrap_or_else(|e| panic!("{principal}: {e}"));
    }
    // Resource-based policies allow Sids with spaces and need resources.
    let rp = r#"{"Version":"2012-10-17","Statement":{"Sid":"Read it","Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}}"#;
    Policy::parse(rp, PolicyKind::Resource).expect("resource policy");
}

#[test]
fn size_quotas_count_non_whitespace_characters() {
    assert_eq!(policy_size("{ \"a\" :\n\t1 }"), 7);
    let big = format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::{}"}}}}"#,
        "x".repeat(6100)
    );
    let e = check_managed_policy_size(&big).expect_err("too big");
    assert_eq!(e, PolicyError::LimitExceeded("Cannot exceed quota for PolicySize: 6144".into()));
    assert_eq!(e.aws_code(), "LimitExceeded");
    // Whitespace does not count.
    let padded = format!("{}{}", " ".repeat(10_000), r#"{"Statement":[]}"#);
    check_managed_policy_size(&padded).expect("whitespace is free");
    check_trust_policy_size(&"x".repeat(2048)).expect("at the quota");
    let e = check_trust_policy_size(&"x".repeat(2049)).expect_err("over");
    assert_eq!(e.message(), "Cannot exceed quota for ACLSizePerRole: 2048");
    let five = "y".repeat(5000);
    check_inline_aggregate(InlineOwner::Role, "r", [five.as_str(), five.as_str()]).expect("10000 fits");
    let extra = "z".repeat(241);
    let e = check_inline_aggregate(InlineOwner::Role, "r", [five.as_str(), five.as_str(), extra.as_str()])
        .expect_err("over 10240");
    assert_eq!(e.message(), "Maximum policy size of 10240 bytes exceeded for role r");
    let e = check_inline_aggregate(InlineOwner::User, "bob", ["u".repeat(2049).as_str()]).expect_err("over 2048");
    assert_eq!(e.message(), "Maximum policy size of 2048 bytes exceeded for user bob");
    check_inline_aggregate(InlineOwner::Group, "g", ["g".repeat(5120).as_str()]).expect("5120 fits");
}
