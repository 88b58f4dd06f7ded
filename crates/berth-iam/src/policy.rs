//! Policy documents: the model, the parser and the validation rules IAM applies before storing one.
//!
//! Parsing is faithful to the grammar in the IAM User Guide (reference_policies_grammar.html): every element that
//! takes a list also takes a single string, `Statement` may be one object or an array, `Principal` may be `"*"` or
//! an object of principal types, condition values may be strings, numbers or booleans. Validation depends on the
//! document's [`PolicyKind`]: an identity policy must not name a principal and must name resources; a role's trust
//! policy must name a principal, must not name resources and may only use STS actions. The messages are the ones
//! IAM returns with `MalformedPolicyDocument`, where known (marked "berth's wording" where not).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::error::{PolicyError, SYNTAX};

/// Which rules a document is validated against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// Inline or managed policy attached to a user, group or role.
    Identity,
    /// A role's trust policy (`AssumeRolePolicyDocument`).
    Trust,
    /// A resource-based policy (e.g. a secret's): needs a principal and resources.
    Resource,
}

/// The policy language version. A document without `Version` is 2008-10-17, where `${...}` is literal text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V2012_10_17,
    V2008_10_17,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action` or `NotAction`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionBlock {
    Action(Vec<String>),
    NotAction(Vec<String>),
}

/// `Resource` or `NotResource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceBlock {
    Resource(Vec<String>),
    NotResource(Vec<String>),
}

/// `Principal` or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalBlock {
    Principal(PrincipalSet),
    NotPrincipal(PrincipalSet),
}

/// The principals a `Principal` element names. `"Principal": "*"` sets `everyone`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrincipalSet {
    pub everyone: bool,
    pub aws: Vec<String>,
    pub service: Vec<String>,
    pub federated: Vec<String>,
    pub canonical_user: Vec<String>,
}

/// The comparison a condition operator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

const TESTS: &[(&str, Test)] = &[
    ("StringEquals", Test::StringEquals),
    ("StringNotEquals", Test::StringNotEquals),
    ("StringEqualsIgnoreCase", Test::StringEqualsIgnoreCase),
    ("StringNotEqualsIgnoreCase", Test::StringNotEqualsIgnoreCase),
    ("StringLike", Test::StringLike),
    ("StringNotLike", Test::StringNotLike),
    ("NumericEquals", Test::NumericEquals),
    ("NumericNotEquals", Test::NumericNotEquals),
    ("NumericLessThan", Test::NumericLessThan),
    ("NumericLessThanEquals", Test::NumericLessThanEquals),
    ("NumericGreaterThan", Test::NumericGreaterThan),
    ("NumericGreaterThanEquals", Test::NumericGreaterThanEquals),
    ("DateEquals", Test::DateEquals),
    ("DateNotEquals", Test::DateNotEquals),
    ("DateLessThan", Test::DateLessThan),
    ("DateLessThanEquals", Test::DateLessThanEquals),
    ("DateGreaterThan", Test::DateGreaterThan),
    ("DateGreaterThanEquals", Test::DateGreaterThanEquals),
    ("Bool", Test::Bool),
    ("BinaryEquals", Test::BinaryEquals),
    ("IpAddress", Test::IpAddress),
    ("NotIpAddress", Test::NotIpAddress),
    ("ArnEquals", Test::ArnEquals),
    ("ArnLike", Test::ArnLike),
    ("ArnNotEquals", Test::ArnNotEquals),
    ("ArnNotLike", Test::ArnNotLike),
    ("Null", Test::Null),
];

impl Test {
    /// The operator's name as written in policies.
    pub fn name(self) -> &'static str {
        TESTS.iter().find(|(_, t)| *t == self).map_or("", |(n, _)| n)
    }

    /// Negated operators: a missing key makes them true, and several policy values combine with AND (NOR of
    /// the positive test) rather than OR (reference_policies_elements_condition_operators.html and
    /// reference_policies_condition-logic-multiple-context-keys-or-values.html).
    pub fn is_negated(self) -> bool {
        matches!(
            self,
            Test::StringNotEquals
                | Test::StringNotEqualsIgnoreCase
                | Test::StringNotLike
                | Test::NumericNotEquals
                | Test::DateNotEquals
                | Test::NotIpAddress
                | Test::ArnNotEquals
                | Test::ArnNotLike
        )
    }
}

/// `ForAllValues:` / `ForAnyValue:` in front of an operator, for multivalued context keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    ForAllValues,
    ForAnyValue,
}

/// A parsed condition operator such as `ForAnyValue:StringLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    pub test: Test,
    pub if_exists: bool,
    pub set: Option<SetQualifier>,
}

impl Operator {
    /// Parse an operator name. Names are matched case-insensitively (berth is lenient here).
    pub fn parse(name: &str) -> Option<Operator> {
        let (set, rest) = match name.split_once(':') {
            Some((q, rest)) if q.eq_ignore_ascii_case("ForAllValues") => (Some(SetQualifier::ForAllValues), rest),
            Some((q, rest)) if q.eq_ignore_ascii_case("ForAnyValue") => (Some(SetQualifier::ForAnyValue), rest),
            Some(_) => return None,
            None => (None, name),
        };
        let lower = rest.to_ascii_lowercase();
        let (base, if_exists) = match lower.strip_suffix("ifexists") {
            Some(b) => (b, true),
            None => (lower.as_str(), false),
        };
        let test = TESTS.iter().find(|(n, _)| n.eq_ignore_ascii_case(base)).map(|(_, t)| *t)?;
        if test == Test::Null && (if_exists || set.is_some()) {
            return None;
        }
        Some(Operator { test, if_exists, set })
    }
}

/// One `operator: { key: values }` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub operator: Operator,
    /// The context key as written (looked up case-insensitively).
    pub key: String,
    /// The values, as strings (JSON numbers and booleans are rendered as JSON writes them).
    pub values: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub action: ActionBlock,
    /// `None` only where the kind forbids it (trust policies).
    pub resource: Option<ResourceBlock>,
    /// `None` in identity policies.
    pub principal: Option<PrincipalBlock>,
    /// All must hold (AND across operators and keys).
    pub conditions: Vec<Condition>,
}

/// A parsed and validated policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub version: Version,
    pub id: Option<String>,
    pub statements: Vec<Statement>,
}

fn malformed(m: impl Into<String>) -> PolicyError {
    PolicyError::malformed(m)
}

fn syntax() -> PolicyError {
    PolicyError::malformed(SYNTAX)
}

const VENDOR_PREFIX: &str = "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.";

impl Policy {
    /// Parse and validate a policy document of the given kind.
    pub fn parse(text: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        let doc: Value = serde_json::from_str(text).map_err(|_| syntax())?;
        let Value::Object(top) = doc else { return Err(syntax()) };
        for k in top.keys() {
            if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
                return Err(syntax());
            }
        }
        let version = match top.get("Version") {
            None => Version::V2008_10_17,
            Some(Value::String(v)) if v == "2012-10-17" => Version::V2012_10_17,
            Some(Value::String(v)) if v == "2008-10-17" => Version::V2008_10_17,
            Some(Value::String(_)) => return Err(malformed("The policy failed legacy parsing")),
            Some(_) => return Err(syntax()),
        };
        let id = match top.get("Id") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(syntax()),
        };
        let raw = match top.get("Statement") {
            None => return Err(malformed("Missing required field Statement")),
            Some(Value::Object(o)) => vec![o],
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| if let Value::Object(o) = v { Ok(o) } else { Err(syntax()) })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(syntax()),
        };
        if raw.is_empty() {
            // berth's wording.
            return Err(malformed("Missing required field Statement"));
        }
        let statements = raw.into_iter().map(|o| parse_statement(o, kind)).collect::<Result<Vec<_>, _>>()?;
        if kind != PolicyKind::Resource {
            let mut seen = BTreeSet::new();
            for sid in statements.iter().filter_map(|s| s.sid.as_deref()).filter(|s| !s.is_empty()) {
                if !seen.insert(sid) {
                    return Err(malformed("Statement IDs (SID) in a single policy must be unique."));
                }
            }
        }
        Ok(Policy { version, id, statements })
    }
}

/// A string or a list of strings.
fn strings(v: &Value) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => {
            a.iter().map(|v| if let Value::String(s) = v { Ok(s.clone()) } else { Err(syntax()) }).collect()
        }
        _ => Err(syntax()),
    }
}

fn parse_statement(o: &Map<String, Value>, kind: PolicyKind) -> Result<Statement, PolicyError> {
    for k in o.keys() {
        if !matches!(
            k.as_str(),
            "Sid"
                | "Effect"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Principal"
                | "NotPrincipal"
                | "Condition"
        ) {
            return Err(syntax());
        }
    }
    let sid = match o.get("Sid") {
        None => None,
        Some(Value::String(s)) => {
            if kind != PolicyKind::Resource && !s.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(malformed(
                    "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular \
                     expression [0-9A-Za-z]*",
                ));
            }
            Some(s.clone())
        }
        Some(_) => return Err(syntax()),
    };
    let effect = match o.get("Effect") {
        None => return Err(malformed("Missing required field Effect")),
        Some(Value::String(e)) if e == "Allow" => Effect::Allow,
        Some(Value::String(e)) if e == "Deny" => Effect::Deny,
        Some(Value::String(e)) => return Err(malformed(format!("Invalid effect: {e}"))),
        Some(_) => return Err(syntax()),
    };

    // Principal before Action/Resource: IAM reports a principal in an identity policy first.
    let principal = match (o.get("Principal"), o.get("NotPrincipal")) {
        (Some(_), Some(_)) => return Err(syntax()),
        (Some(_), None) | (None, Some(_)) if kind == PolicyKind::Identity => {
            return Err(malformed("Policy document should not specify a principal."));
        }
        (Some(p), None) => Some(PrincipalBlock::Principal(parse_principal(p, kind)?)),
        (None, Some(p)) => Some(PrincipalBlock::NotPrincipal(parse_principal(p, kind)?)),
        (None, None) if kind == PolicyKind::Identity => None,
        (None, None) => return Err(malformed("Missing required field Principal")),
    };

    let action = match (o.get("Action"), o.get("NotAction")) {
        (Some(_), Some(_)) => return Err(syntax()),
        (Some(a), None) => ActionBlock::Action(strings(a)?),
        (None, Some(a)) => ActionBlock::NotAction(strings(a)?),
        (None, None) => return Err(malformed("Policy statement must contain actions.")),
    };
    let (ActionBlock::Action(actions) | ActionBlock::NotAction(actions)) = &action;
    if actions.is_empty() {
        return Err(malformed("Policy statement must contain actions."));
    }
    for a in actions {
        validate_action(a)?;
        if kind == PolicyKind::Trust && matches!(action, ActionBlock::Action(_)) && !is_trust_action(a) {
            return Err(malformed("AssumeRole policy may only specify STS AssumeRole actions."));
        }
    }

    let resource = match (o.get("Resource"), o.get("NotResource")) {
        (Some(_), Some(_)) => return Err(syntax()),
        (Some(_), None) if kind == PolicyKind::Trust => return Err(malformed("Has prohibited field Resource")),
        (None, Some(_)) if kind == PolicyKind::Trust => return Err(malformed("Has prohibited field NotResource")),
        (Some(r), None) => Some(ResourceBlock::Resource(strings(r)?)),
        (None, Some(r)) => Some(ResourceBlock::NotResource(strings(r)?)),
        (None, None) if kind == PolicyKind::Trust => None,
        (None, None) => return Err(malformed("Policy statement must contain resources.")),
    };
    if let Some(ResourceBlock::Resource(rs) | ResourceBlock::NotResource(rs)) = &resource {
        if rs.is_empty() {
            return Err(malformed("Policy statement must contain resources."));
        }
        for r in rs {
            validate_resource(r)?;
        }
    }

    let conditions = match o.get("Condition") {
        None => Vec::new(),
        Some(c) => parse_conditions(c)?,
    };
    Ok(Statement { sid, effect, action, resource, principal, conditions })
}

/// `*`, or `vendor:Name` where the vendor has no wildcards.
fn validate_action(a: &str) -> Result<(), PolicyError> {
    if a == "*" {
        return Ok(());
    }
    let Some((vendor, name)) = a.split_once(':') else {
        return Err(malformed(VENDOR_PREFIX));
    };
    if vendor.is_empty() || !vendor.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(malformed(format!("Vendor {vendor} is not valid")));
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '*' | '?' | '-' | '_')) {
        // berth's wording, after IAM Access Analyzer's "Invalid Action" finding.
        return Err(malformed(format!("Invalid Action: The action {a} is not a valid action name.")));
    }
    Ok(())
}

/// Actions a role trust policy may allow: the AssumeRole family and the session-tagging companions.
fn is_trust_action(a: &str) -> bool {
    let a = a.to_ascii_lowercase();
    if a == "*" {
        return true;
    }
    let Some(name) = a.strip_prefix("sts:") else { return false };
    name.starts_with("assumerole")
        || matches!(name, "tagsession" | "setsourceidentity" | "setcontext")
        || name.contains(['*', '?'])
}

/// `*` or an ARN; an ARN with fewer than six segments must end with a `*` (which may expand across colons).
fn validate_resource(r: &str) -> Result<(), PolicyError> {
    let ok = r == "*" || (r.starts_with("arn:") && (r.split(':').count() >= 6 || r.ends_with('*')));
    if ok { Ok(()) } else { Err(malformed(format!("Resource {r} must be in ARN format or \"*\"."))) }
}

fn parse_principal(v: &Value, kind: PolicyKind) -> Result<PrincipalSet, PolicyError> {
    let mut set = PrincipalSet::default();
    match v {
        Value::String(s) if s == "*" => set.everyone = true,
        Value::String(s) => return Err(malformed(format!("Invalid principal in policy: {s}"))),
        Value::Object(o) if !o.is_empty() => {
            for (ty, vals) in o {
                let vals = strings(vals)?;
                if vals.is_empty() {
                    return Err(syntax());
                }
                let target = match ty.as_str() {
                    "AWS" => &mut set.aws,
                    "Service" => &mut set.service,
                    "Federated" => &mut set.federated,
                    "CanonicalUser" if kind != PolicyKind::Trust => &mut set.canonical_user,
                    _ => return Err(malformed(format!("Invalid principal in policy: \"{ty}\""))),
                };
                for p in vals {
                    if !valid_principal(ty, &p) {
                        let label = if ty == "Service" { "SERVICE" } else { ty.as_str() };
                        return Err(malformed(format!("Invalid principal in policy: \"{label}\":\"{p}\"")));
                    }
                    target.push(p);
                }
            }
        }
        _ => return Err(syntax()),
    }
    Ok(set)
}

/// A principal value IAM accepts. Partial wildcards are never allowed: "You cannot use a wildcard to match part
/// of a principal name or ARN" (reference_policies_elements_principal.html).
fn valid_principal(ty: &str, p: &str) -> bool {
    if p == "*" {
        return ty == "AWS";
    }
    if p.is_empty() || p.contains(['*', '?']) {
        return false;
    }
    match ty {
        "AWS" => {
            if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
                return true;
            }
            let Ok(arn) = p.parse::<berth_core::Arn>() else { return false };
            let acct_ok = arn.account.len() == 12;
            match arn.service.as_str() {
                "iam" => {
                    acct_ok
                        && (arn.resource == "root"
                            || arn.resource.starts_with("user/")
                            || arn.resource.starts_with("role/"))
                }
                "sts" => {
                    acct_ok
                        && (arn.resource.starts_with("assumed-role/") || arn.resource.starts_with("federated-user/"))
                }
                _ => false,
            }
        }
        "Service" => p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')),
        _ => true,
    }
}

fn condition_value(v: &Value) -> Result<String, PolicyError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(syntax()),
    }
}

fn parse_conditions(v: &Value) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(ops) = v else { return Err(syntax()) };
    let mut out = Vec::new();
    for (op_name, block) in ops {
        let operator =
            Operator::parse(op_name).ok_or_else(|| malformed(format!("Invalid Condition type : {op_name}")))?;
        let Value::Object(keys) = block else { return Err(syntax()) };
        for (key, vals) in keys {
            if !key.contains(':') || key.starts_with(':') {
                return Err(malformed(VENDOR_PREFIX));
            }
            let values = match vals {
                Value::Array(a) => a.iter().map(condition_value).collect::<Result<Vec<_>, _>>()?,
                v => vec![condition_value(v)?],
            };
            if values.is_empty() {
                return Err(syntax());
            }
            out.push(Condition { operator, key: key.clone(), values });
        }
    }
    Ok(out)
}

/// The size IAM counts against its quotas: characters, not counting white space ("IAM doesn't count white space
/// when calculating the size of a policy", reference_iam-quotas.html).
pub fn policy_size(text: &str) -> usize {
    text.chars().filter(|c| !c.is_whitespace()).count()
}

/// Managed policy versions: 6,144 characters.
pub const MANAGED_POLICY_MAX: usize = 6144;
/// A role's trust policy: 2,048 characters (the default quota).
pub const TRUST_POLICY_MAX: usize = 2048;
/// Aggregate of a role's inline policies: 10,240 characters.
pub const ROLE_INLINE_MAX: usize = 10_240;
/// Aggregate of a user's inline policies: 2,048 characters.
pub const USER_INLINE_MAX: usize = 2048;
/// Aggregate of a group's inline policies: 5,120 characters.
pub const GROUP_INLINE_MAX: usize = 5120;

/// A managed policy version's size (`LimitExceeded: Cannot exceed quota for PolicySize: 6144`).
pub fn check_managed_policy_size(text: &str) -> Result<(), PolicyError> {
    if policy_size(text) > MANAGED_POLICY_MAX {
        return Err(PolicyError::LimitExceeded(format!("Cannot exceed quota for PolicySize: {MANAGED_POLICY_MAX}")));
    }
    Ok(())
}

/// A role trust policy's size (`LimitExceeded: Cannot exceed quota for ACLSizePerRole: 2048`).
pub fn check_trust_policy_size(text: &str) -> Result<(), PolicyError> {
    if policy_size(text) > TRUST_POLICY_MAX {
        return Err(PolicyError::LimitExceeded(format!("Cannot exceed quota for ACLSizePerRole: {TRUST_POLICY_MAX}")));
    }
    Ok(())
}

/// Who owns a set of inline policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InlineOwner {
    User,
    Group,
    Role,
}

/// The aggregate size of an entity's inline policies, including the one being put (`LimitExceeded: Maximum
/// policy size of 10240 bytes exceeded for role NAME`).
pub fn check_inline_aggregate<'a>(
    owner: InlineOwner,
    name: &str,
    documents: impl IntoIterator<Item = &'a str>,
) -> Result<(), PolicyError> {
    let (max, word) = match owner {
        InlineOwner::User => (USER_INLINE_MAX, "user"),
        InlineOwner::Group => (GROUP_INLINE_MAX, "group"),
        InlineOwner::Role => (ROLE_INLINE_MAX, "role"),
    };
    let total: usize = documents.into_iter().map(policy_size).sum();
    if total > max {
        return Err(PolicyError::LimitExceeded(format!(
            "Maximum policy size of {max} bytes exceeded for {word} {name}"
        )));
    }
    Ok(())
}
