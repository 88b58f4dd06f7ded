//! The request context: who asks, for which action on which resource, and the condition keys that came with it.

use std::collections::BTreeMap;

use berth_core::Arn;

/// An AWS identity making a request: a user, a role session or an account's root user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsPrincipal {
    /// The 12-digit account.
    pub account: String,
    /// The identity's IAM ARN: `arn:aws:iam::<account>:root`, `...:user/<path><name>` or, for a role session,
    /// the role's ARN `...:role/<path><name>` (what `aws:PrincipalArn` holds).
    pub arn: String,
    /// For a role session, `arn:aws:sts::<account>:assumed-role/<role-name>/<session-name>`.
    pub session_arn: Option<String>,
}

impl AwsPrincipal {
    /// An account's root user.
    pub fn root(account: &str) -> Self {
        AwsPrincipal { account: account.to_owned(), arn: format!("arn:aws:iam::{account}:root"), session_arn: None }
    }

    /// An IAM user or role (without a session) by ARN; the account comes from the ARN.
    pub fn identity(arn: &Arn) -> Self {
        AwsPrincipal { account: arn.account.clone(), arn: arn.to_string(), session_arn: None }
    }

    /// A session of a role (`AssumeRole` with `session_name`).
    pub fn role_session(role: &Arn, session_name: &str) -> Self {
        let name = role.iam_role_name().unwrap_or(&role.resource);
        AwsPrincipal {
            account: role.account.clone(),
            arn: role.to_string(),
            session_arn: Some(format!(
                "arn:{}:sts::{}:assumed-role/{name}/{session_name}",
                role.partition, role.account
            )),
        }
    }
}

/// Who is making the request, as the Principal element of a resource-based or trust policy names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// `{"AWS": ...}`.
    Aws(AwsPrincipal),
    /// `{"Service": "ecs-tasks.amazonaws.com"}`.
    Service(String),
    /// `{"Federated": ...}` (an identity provider ARN or name such as `cognito-identity.amazonaws.com`).
    Federated(String),
    /// An unauthenticated caller; only `"*"` matches it.
    Anonymous,
}

/// A condition key's value in the request: one string, or a set (`aws:TagKeys`, `ForAllValues`/`ForAnyValue`).
/// Numbers, dates, booleans and addresses are carried as strings and parsed by the operator that reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    Single(String),
    Multi(Vec<String>),
}

impl ContextValue {
    /// The values as a slice (one element for `Single`).
    pub fn values(&self) -> &[String] {
        match self {
            ContextValue::Single(v) => std::slice::from_ref(v),
            ContextValue::Multi(v) => v,
        }
    }
}

/// One authorization question: may `principal` perform `action` on `resource`, given these condition keys?
///
/// Condition key names are case-insensitive, as in AWS (reference_policies_elements_condition.html: "Condition
/// key names are not case-sensitive"); they are stored lower-cased. Values are case-preserving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// `service:Action`, e.g. `elasticloadbalancing:CreateRule`.
    pub action: String,
    /// The resource ARN, or `*` for actions that do not support resource-level permissions.
    pub resource: String,
    /// Who asks; needed by statements with `Principal`/`NotPrincipal` (trust and resource-based policies).
    pub principal: Option<Principal>,
    keys: BTreeMap<String, ContextValue>,
}

impl RequestContext {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        RequestContext { action: action.into(), resource: resource.into(), principal: None, keys: BTreeMap::new() }
    }

    /// Set the principal, and the global keys that follow from it unless already set: `aws:PrincipalArn`,
    /// `aws:PrincipalAccount` and `aws:PrincipalType` for AWS principals, `aws:PrincipalServiceName` for services.
    pub fn with_principal(mut self, principal: Principal) -> Self {
        match &principal {
            Principal::Aws(p) => {
                self.set_default("aws:PrincipalArn", &p.arn);
                self.set_default("aws:PrincipalAccount", &p.account);
                let kind = if p.session_arn.is_some() {
                    "AssumedRole"
                } else if p.arn.ends_with(":root") {
                    "Account"
                } else {
                    "User"
                };
                self.set_default("aws:PrincipalType", kind);
            }
            Principal::Service(s) => self.set_default("aws:PrincipalServiceName", s),
            Principal::Federated(_) | Principal::Anonymous => {}
        }
        self.principal = Some(principal);
        self
    }

    /// Set a single-valued key (replacing any value).
    pub fn with_key(mut self, key: &str, value: impl Into<String>) -> Self {
        self.set(key, ContextValue::Single(value.into()));
        self
    }

    /// Set a multivalued key (replacing any value). An empty set is kept: it is present but empty.
    pub fn with_multi_key<I, S>(mut self, key: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.set(key, ContextValue::Multi(values.into_iter().map(Into::into).collect()));
        self
    }

    /// The tags on the resource acted on: `aws:ResourceTag/<key>`.
    pub fn with_resource_tags<'a>(mut self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        for (k, v) in tags {
            self.set(&format!("aws:ResourceTag/{k}"), ContextValue::Single(v.to_owned()));
        }
        self
    }

    /// The tags in the request: `aws:RequestTag/<key>` for each, and `aws:TagKeys` holding all their keys.
    pub fn with_request_tags<'a>(mut self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut keys = Vec::new();
        for (k, v) in tags {
            self.set(&format!("aws:RequestTag/{k}"), ContextValue::Single(v.to_owned()));
            keys.push(k.to_owned());
        }
        self.set("aws:TagKeys", ContextValue::Multi(keys));
        self
    }

    /// The principal's tags: `aws:PrincipalTag/<key>`.
    pub fn with_principal_tags<'a>(mut self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        for (k, v) in tags {
            self.set(&format!("aws:PrincipalTag/{k}"), ContextValue::Single(v.to_owned()));
        }
        self
    }

    /// The injected clock: sets `aws:CurrentTime` (ISO 8601, UTC) and `aws:EpochTime` (seconds).
    pub fn with_now(mut self, now: std::time::SystemTime) -> Self {
        let secs = match now.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        };
        self.set("aws:CurrentTime", ContextValue::Single(berth_core::time::iso8601(secs)));
        self.set("aws:EpochTime", ContextValue::Single(secs.to_string()));
        self
    }

    /// Set a key in place.
    pub fn set(&mut self, key: &str, value: ContextValue) {
        self.keys.insert(key.to_ascii_lowercase(), value);
    }

    fn set_default(&mut self, key: &str, value: &str) {
        self.keys.entry(key.to_ascii_lowercase()).or_insert_with(|| ContextValue::Single(value.to_owned()));
    }

    /// A key's value, by case-insensitive name.
    pub fn get(&self, key: &str) -> Option<&ContextValue> {
        self.keys.get(&key.to_ascii_lowercase())
    }

    /// A key's value if it is single-valued (what a policy variable may reference).
    pub fn single(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(ContextValue::Single(v)) => Some(v),
            _ => None,
        }
    }
}
