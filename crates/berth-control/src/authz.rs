//! Authorization: every operation of every principal is decided here, by berth-iam's policy evaluation.
//!
//! The API layer authenticates a caller; [`Control::identify`](crate::Control::identify) then resolves the
//! identity policies that apply to it (an IAM user's inline and attached policies; for a role session, the role's)
//! into the caller's [`Access`]. Handlers ask [`authorize`] (`"ecs:CreateCluster"`, resource `*`) or, when they
//! know the resource and condition keys, [`authorize_request`]. The account's root user is allowed everything;
//! everyone else gets what their policies allow (explicit deny wins, default deny) and an `AccessDenied` worded
//! as AWS words it otherwise. This module reads no store: what it decides on was loaded with the caller.

use std::sync::Arc;

use berth_core::{AwsError, ErrorCode};
use berth_iam::{AwsPrincipal, Decision, Policy, Principal, RequestContext};

use crate::CallerIdentity;

/// What a principal may do: the identity policies that apply to it, resolved when the request arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// The identity: `arn` is the user's or the role's ARN (`aws:PrincipalArn`), `session_arn` the assumed-role
    /// ARN for a role session.
    pub principal: AwsPrincipal,
    /// `aws:username` (IAM users only).
    pub username: Option<String>,
    /// `aws:userid`.
    pub user_id: String,
    /// Identity policies (inline and attached), parsed.
    pub policies: Vec<Policy>,
    /// The principal's tags (`aws:PrincipalTag/...`): a role's tags for its sessions.
    pub tags: Vec<(String, String)>,
}

impl Grants {
    /// The ARN AWS names in an `AccessDenied` message: the session ARN for a role session.
    pub fn caller_arn(&self) -> &str {
        self.principal.session_arn.as_deref().unwrap_or(&self.principal.arn)
    }

    /// The request context for `request`: the principal, its global condition keys and the clock.
    pub fn context(&self, mut request: RequestContext) -> RequestContext {
        if let Some(u) = &self.username {
            request = request.with_key("aws:username", u.clone());
        }
        request
            .with_principal(Principal::Aws(self.principal.clone()))
            .with_key("aws:userid", self.user_id.clone())
            // The API only listens on HTTPS.
            .with_key("aws:SecureTransport", "true")
            .with_principal_tags(self.tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .with_now(std::time::SystemTime::now())
    }

    /// Evaluates `request` against these grants; `Err(AccessDenied)` with AWS's message when denied.
    pub fn check(&self, request: RequestContext) -> Result<(), AwsError> {
        let request = self.context(request);
        let policies: Vec<&Policy> = self.policies.iter().collect();
        let decision = berth_iam::evaluate(&request, &policies);
        deny(self.caller_arn(), &request, &decision)
    }
}

fn deny(caller_arn: &str, request: &RequestContext, decision: &Decision) -> Result<(), AwsError> {
    match berth_iam::access_denied_message(caller_arn, request, decision) {
        None => Ok(()),
        Some(message) => Err(AwsError::new(ErrorCode::AccessDenied, message)),
    }
}

/// A caller's resolved grants. `Default` holds none: only the root user is allowed anything then.
#[derive(Debug, Clone, Default)]
pub struct Access(pub Option<Arc<Grants>>);

impl PartialEq for Access {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            _ => false,
        }
    }
}

impl Eq for Access {}

/// Is the caller the account's root user?
pub fn is_root(caller: &CallerIdentity) -> bool {
    caller.principal_arn == format!("arn:aws:iam::{}:root", caller.account)
}

/// May the caller perform `action` (resource `*`, no extra condition keys)?
pub fn authorize(caller: &CallerIdentity, action: &str) -> Result<(), AwsError> {
    authorize_request(caller, RequestContext::new(action, "*"))
}

/// May the caller perform `action` on `resource`?
pub fn authorize_on(caller: &CallerIdentity, action: &str, resource: &str) -> Result<(), AwsError> {
    authorize_request(caller, RequestContext::new(action, resource))
}

/// May the caller perform this request (action, resource and the condition keys the handler knows, e.g.
/// `aws:RequestTag/...`, `aws:ResourceTag/...`, `iam:PassedToService`)? The principal's own keys
/// (`aws:username`, `aws:PrincipalArn`, `aws:CurrentTime`, `aws:SecureTransport`, ...) are added here.
pub fn authorize_request(caller: &CallerIdentity, request: RequestContext) -> Result<(), AwsError> {
    if is_root(caller) {
        return Ok(());
    }
    match &caller.access.0 {
        Some(grants) => grants.check(request),
        None => deny(&caller.principal_arn, &request, &Decision::ImplicitDeny),
    }
}

/// `request` with the tags a request carries as `aws:RequestTag/...` and `aws:TagKeys` (a missing key or value
/// counts as empty); each service's `Tag` shape gives its `(key, value)`.
pub fn with_request_tags<'a>(
    request: RequestContext,
    tags: impl IntoIterator<Item = (&'a Option<String>, &'a Option<String>)>,
) -> RequestContext {
    let pairs: Vec<(&str, &str)> =
        tags.into_iter().map(|(k, v)| (k.as_deref().unwrap_or_default(), v.as_deref().unwrap_or_default())).collect();
    request.with_request_tags(pairs)
}

/// May the caller perform every one of `requests` (one per resource an operation names)? An operation that
/// names none is checked as `action` on `*`, so an empty list never skips the check.
pub fn authorize_all(caller: &CallerIdentity, action: &str, requests: Vec<RequestContext>) -> Result<(), AwsError> {
    if requests.is_empty() {
        return authorize(caller, action);
    }
    requests.into_iter().try_for_each(|r| authorize_request(caller, r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_iam::PolicyKind;

    fn caller(arn: &str, policies: &[&str]) -> CallerIdentity {
        let parsed = policies.iter().map(|p| Policy::parse(p, PolicyKind::Identity).expect("policy")).collect();
        let arn_parsed: berth_core::Arn = arn.parse().expect("arn");
        CallerIdentity {
            principal_arn: arn.into(),
            account: "123456789012".into(),
            user_id: "AIDAEXAMPLE".into(),
            access: Access(Some(Arc::new(Grants {
                principal: AwsPrincipal::identity(&arn_parsed),
                username: arn.rsplit('/').next().map(str::to_owned),
                user_id: "AIDAEXAMPLE".into(),
                policies: parsed,
                tags: vec![],
            }))),
        }
    }

    #[test]
    fn root_is_allowed_everything_and_unresolved_callers_nothing() {
        let root = CallerIdentity {
            principal_arn: "arn:aws:iam::123456789012:root".into(),
            account: "123456789012".into(),
            user_id: "123456789012".into(),
            access: Access::default(),
        };
        assert!(authorize(&root, "ecs:CreateCluster").is_ok());
        let other = CallerIdentity { principal_arn: "arn:aws:iam::123456789012:user/bob".into(), ..root };
        let e = authorize(&other, "ecs:CreateCluster").expect_err("denied");
        assert_eq!(e.code, ErrorCode::AccessDenied);
        assert_eq!(
            e.message,
            "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: ecs:CreateCluster because no \
             identity-based policy allows the ecs:CreateCluster action"
        );
    }

    /// (policies, action, resource, allowed)
    const CASES: &[(&[&str], &str, &str, bool)] = &[
        (&[], "ecs:ListClusters", "*", false),
        (
            &[r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:List*","Resource":"*"}}"#],
            "ecs:ListClusters",
            "*",
            true,
        ),
        (
            &[r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:List*","Resource":"*"}}"#],
            "ecs:CreateCluster",
            "*",
            false,
        ),
        // Deny wins over an allow in another policy.
        (
            &[
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"iam:*","Resource":"*"}}"#,
            ],
            "iam:CreateUser",
            "arn:aws:iam::123456789012:user/x",
            false,
        ),
        // Policy variables see aws:username.
        (
            &[
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:CreateAccessKey","Resource":"arn:aws:iam::*:user/${aws:username}"}}"#,
            ],
            "iam:CreateAccessKey",
            "arn:aws:iam::123456789012:user/alice",
            true,
        ),
        (
            &[
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:CreateAccessKey","Resource":"arn:aws:iam::*:user/${aws:username}"}}"#,
            ],
            "iam:CreateAccessKey",
            "arn:aws:iam::123456789012:user/bob",
            false,
        ),
        // aws:SecureTransport is true on berth's HTTPS API.
        (
            &[
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}}"#,
            ],
            "ecs:ListServices",
            "*",
            true,
        ),
        // aws:CurrentTime is set: a policy that expired in 2020 allows nothing.
        (
            &[
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecs:*","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}}}"#,
            ],
            "ecs:ListServices",
            "*",
            false,
        ),
    ];

    #[test]
    fn identity_policies_decide() {
        for (i, (policies, action, resource, allowed)) in CASES.iter().enumerate() {
            let c = caller("arn:aws:iam::123456789012:user/alice", policies);
            let got = authorize_on(&c, action, resource);
            assert_eq!(got.is_ok(), *allowed, "case {i}: {action} on {resource}: {got:?}");
        }
    }

    #[test]
    fn explicit_deny_is_worded_as_aws() {
        let c = caller(
            "arn:aws:iam::123456789012:user/alice",
            &[r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"ecs:*","Resource":"*"}}"#],
        );
        let e = authorize(&c, "ecs:ListServices").expect_err("denied");
        assert!(e.message.ends_with("with an explicit deny in an identity-based policy"), "{}", e.message);
    }
}
