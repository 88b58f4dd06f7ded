//! STS: who is calling (`GetCallerIdentity`) and role sessions (`AssumeRole`): temporary `ASIA…` credentials
//! with a session token, accepted by SigV4 until they expire. The session's secrets are stored sealed
//! ([`crate::sealed_credentials`]).

use berth_core::{Arn, AwsError, ErrorCode};
use berth_iam::{AwsPrincipal, PolicyKind, Principal, PrincipalBlock, RequestContext};
use berth_model::Timestamp;
use berth_model::sts::{
    AssumeRoleRequest, AssumeRoleResponse, AssumedRoleUser, Credentials, GetCallerIdentityResponse, Operation, Output,
};
use berth_store::StsSessionRow;

use crate::iam::access::role_by_arn;
use crate::names::{new_id, new_secret};
use crate::{CallerIdentity, Control, ControlError, authz, now};

/// STS's bounds for `DurationSeconds`, and the cap for role chaining.
const MIN_DURATION: i32 = 900;
const CHAINED_MAX: i32 = 3600;

impl Control {
    /// Handles one decoded STS operation for an authenticated caller.
    pub async fn handle_sts(&self, caller: &CallerIdentity, op: Operation) -> Result<Output, AwsError> {
        let (name, errors) = (op.name(), op.errors());
        let out = match op {
            // AWS answers GetCallerIdentity for every valid credential, whatever its policies say.
            Operation::GetCallerIdentity(_) => Ok(Output::GetCallerIdentity(GetCallerIdentityResponse {
                user_id: Some(caller.user_id.clone()),
                account: Some(caller.account.clone()),
                arn: Some(caller.principal_arn.clone()),
            })),
            Operation::AssumeRole(r) => self.assume_role(caller, r).map(Output::AssumeRole).map_err(AwsError::from),
        };
        crate::error::answer(berth_model::sts::SIGNING_NAME, name, errors, out)
    }

    fn assume_role(&self, caller: &CallerIdentity, r: AssumeRoleRequest) -> Result<AssumeRoleResponse, ControlError> {
        let role_arn = r.role_arn.unwrap_or_default();
        let session = r.role_session_name.unwrap_or_default();
        let session_ok = (2..=64).contains(&session.len())
            && session.chars().all(|ch| ch.is_ascii_alphanumeric() || "_+=,.@-".contains(ch));
        if !session_ok {
            return Err(validation(format!(
                "1 validation error detected: Value '{session}' at 'roleSessionName' failed to satisfy constraint: \
                 Member must satisfy regular expression pattern: [\\w+=,.@-]* and have length between 2 and 64"
            )));
        }
        if r.policy.is_some() || r.policy_arns.as_ref().is_some_and(|p| !p.is_empty()) {
            return Err(validation("Session policies (Policy, PolicyArns) are not supported by berth yet."));
        }
        if authz::is_root(caller) {
            return Err(ControlError::code(ErrorCode::AccessDenied, "Roles may not be assumed by root accounts."));
        }
        let denied = || {
            ControlError::code(
                ErrorCode::AccessDenied,
                format!(
                    "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                    caller.principal_arn
                ),
            )
        };
        let chained = caller.principal_arn.contains(":assumed-role/");
        let t = now();
        let row = self.tx(|tx| {
            let role = role_by_arn(tx, &caller.account, &role_arn)?.ok_or_else(denied)?;
            let duration = r.duration_seconds.unwrap_or(3600);
            if duration < MIN_DURATION {
                return Err(validation(format!(
                    "1 validation error detected: Value '{duration}' at 'durationSeconds' failed to satisfy \
                     constraint: Member must have value greater than or equal to {MIN_DURATION}"
                )));
            }
            if chained && duration > CHAINED_MAX {
                return Err(validation(
                    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
                ));
            }
            if i64::from(duration) > role.max_session_duration {
                return Err(validation("The requested DurationSeconds exceeds the MaxSessionDuration set for this role."));
            }
            // The trust policy must allow the caller; unless it names the caller itself (not just the account),
            // the caller's identity policies must allow sts:AssumeRole on the role too.
            let trust = berth_iam::Policy::parse(&role.trust_policy, PolicyKind::Trust).map_err(|_| denied())?;
            let principal = caller_principal(caller).ok_or_else(denied)?;
            let mut request = RequestContext::new("sts:AssumeRole", role_arn.clone()).with_principal(Principal::Aws(principal.clone()));
            if let Some(id) = &r.external_id {
                request = request.with_key("sts:ExternalId", id.clone());
            }
            if let Some(g) = &caller.access.0 {
                request = g.context(request);
            }
            if !berth_iam::evaluate(&request, &[&trust]).is_allowed() {
                return Err(denied());
            }
            if !names_caller(&trust, &principal) {
                authz::authorize_on(caller, "sts:AssumeRole", &role_arn).map_err(|_| denied())?;
            }
            let access_key_id = new_id("ASIA", 16);
            let secret = new_secret(40);
            let token = format!("IQoJb3JpZ2luX2Vj{}", new_secret(320));
            let row = StsSessionRow {
                sealed: self.seal_session(&access_key_id, &secret, &token)?,
                access_key_id,
                role_name: role.name.clone(),
                role_id: role.role_id.clone(),
                session_name: session.clone(),
                assumed_role_arn: format!("arn:aws:sts::{}:assumed-role/{}/{session}", caller.account, role.name),
                expires_at: t + f64::from(duration),
                created_at: t,
            };
            tx.sts_sessions_prune(t - 86_400.0)?;
            tx.sts_session_insert(&row)?;
            Ok((row, secret, token))
        })?;
        let (row, secret, token) = row;
        Ok(AssumeRoleResponse {
            credentials: Some(Credentials {
                access_key_id: Some(row.access_key_id),
                secret_access_key: Some(secret),
                session_token: Some(token),
                expiration: Some(Timestamp(row.expires_at.floor())),
            }),
            assumed_role_user: Some(AssumedRoleUser {
                assumed_role_id: Some(format!("{}:{}", row.role_id, row.session_name)),
                arn: Some(row.assumed_role_arn),
            }),
            ..Default::default()
        })
    }
}

fn validation(message: impl Into<String>) -> ControlError {
    ControlError::code(ErrorCode::ValidationError, message)
}

/// The caller as a trust policy's `Principal` sees it.
fn caller_principal(caller: &CallerIdentity) -> Option<AwsPrincipal> {
    if let Some(g) = &caller.access.0 {
        return Some(g.principal.clone());
    }
    let arn: Arn = caller.principal_arn.parse().ok()?;
    Some(AwsPrincipal::identity(&arn))
}

/// Does an `Allow` statement of the trust policy name this principal by its own ARN (not only its account)?
fn names_caller(trust: &berth_iam::Policy, p: &AwsPrincipal) -> bool {
    trust.statements.iter().any(|s| {
        s.effect == berth_iam::Effect::Allow
            && matches!(&s.principal, Some(PrincipalBlock::Principal(set))
                if set.aws.iter().any(|a| a == &p.arn || p.session_arn.as_deref() == Some(a.as_str())))
    })
}
