//! What the stored policies mean for a request: resolving a caller's grants, the documents behind managed policy
//! ARNs, role sessions (the caller's own and the ones berth takes, such as the infrastructure role's
//! `ECSGateway`), and the role checks of Express services (`iam:PassRole`, trust). What the infrastructure role
//! does is checked in `provisioning`.

use std::sync::Arc;

use berth_core::{Arn, AwsError, ErrorCode};
use berth_iam::{AwsPrincipal, Policy, PolicyKind, RequestContext};
use berth_store::{IamOwner, IamRoleRow, Tx};

use crate::authz::{self, Access, Grants};
use crate::{CallerIdentity, Control, ControlError};

/// The prefix of AWS managed policy ARNs.
pub(crate) const AWS_MANAGED_PREFIX: &str = "arn:aws:iam::aws:policy/";

/// Is this a well-formed managed policy ARN (the account's, or AWS's with the account `aws`)?
pub(crate) fn is_policy_arn(arn: &str) -> bool {
    arn.strip_prefix(AWS_MANAGED_PREFIX).is_some_and(|rest| !rest.is_empty() && !rest.ends_with('/'))
        || arn.parse::<Arn>().is_ok_and(|a| a.service == "iam" && a.resource.starts_with("policy/"))
}

/// The default version's document of a managed policy (AWS's or the account's), if it exists.
pub(crate) fn managed_document(tx: &Tx<'_>, arn: &str) -> Result<Option<String>, ControlError> {
    if arn.starts_with(AWS_MANAGED_PREFIX) {
        return Ok(berth_iam::managed::find(arn).map(|p| p.document.to_owned()));
    }
    let Some(p) = tx.iam_policy_get(arn)? else { return Ok(None) };
    Ok(tx.iam_policy_version(arn, &p.default_version)?.map(|v| v.document))
}

/// Every identity policy of a user or role: inline, then attached. Documents were validated when stored; one
/// that no longer parses is logged and skipped (it then allows nothing).
fn identity_policies(tx: &Tx<'_>, owner: IamOwner, name: &str) -> Result<Vec<Policy>, ControlError> {
    let mut docs: Vec<(String, String)> = tx.iam_inline_all(owner, name)?;
    for arn in tx.iam_attached(owner, name)? {
        if let Some(d) = managed_document(tx, &arn)? {
            docs.push((arn, d));
        }
    }
    Ok(docs
        .into_iter()
        .filter_map(|(which, d)| match Policy::parse(&d, PolicyKind::Identity) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(policy = %which, error = %e, "stored policy does not parse; ignored");
                None
            }
        })
        .collect())
}

/// The grants of a session of `role` named `session_name`.
pub(crate) fn role_grants(tx: &Tx<'_>, role: &IamRoleRow, session_name: &str) -> Result<Grants, ControlError> {
    let arn: Arn = role.arn.parse().map_err(|_| ControlError::invalid(format!("Invalid role ARN {}", role.arn)))?;
    Ok(Grants {
        principal: AwsPrincipal::role_session(&arn, session_name),
        username: None,
        user_id: format!("{}:{session_name}", role.role_id),
        policies: identity_policies(tx, IamOwner::Role, &role.name)?,
        tags: tx.tags_get(&role.arn)?,
    })
}

/// The role a role ARN names, if it exists in this account.
pub(crate) fn role_by_arn(tx: &Tx<'_>, account: &str, arn: &str) -> Result<Option<IamRoleRow>, ControlError> {
    let Ok(parsed) = arn.parse::<Arn>() else { return Ok(None) };
    let Some(name) = parsed.iam_role_name() else { return Ok(None) };
    if parsed.account != account {
        return Ok(None);
    }
    Ok(tx.iam_role_get(name)?.filter(|r| r.arn == arn))
}

impl Control {
    /// Resolves an authenticated principal into a caller with its grants: an IAM user's policies, a role
    /// session's role policies. The root user needs none; a principal that no longer exists gets none.
    pub fn identify(&self, principal_arn: &str, account: &str, user_id: &str) -> Result<CallerIdentity, ControlError> {
        let mut caller = CallerIdentity {
            principal_arn: principal_arn.to_owned(),
            account: account.to_owned(),
            user_id: user_id.to_owned(),
            access: Access::default(),
        };
        if authz::is_root(&caller) {
            return Ok(caller);
        }
        let Ok(arn) = principal_arn.parse::<Arn>() else { return Ok(caller) };
        let grants = self.read(|tx| {
            if arn.service == "iam"
                && let Some(path_name) = arn.resource.strip_prefix("user/")
            {
                let name = path_name.rsplit('/').next().unwrap_or_default();
                let Some(user) = tx.iam_user_get(name)?.filter(|u| u.arn == principal_arn) else { return Ok(None) };
                return Ok(Some(Grants {
                    principal: AwsPrincipal::identity(&arn),
                    username: Some(user.name.clone()),
                    user_id: user.user_id.clone(),
                    policies: identity_policies(tx, IamOwner::User, &user.name)?,
                    tags: vec![],
                }));
            }
            if arn.service == "sts"
                && let Some(rest) = arn.resource.strip_prefix("assumed-role/")
                && let Some((role_name, session)) = rest.split_once('/')
            {
                // A session belongs to the role it was issued for: a role deleted and created again under the
                // same name (a new role id) does not inherit the old role's sessions.
                let Some(role) =
                    tx.iam_role_get(role_name)?.filter(|r| user_id.starts_with(&format!("{}:", r.role_id)))
                else {
                    return Ok(None);
                };
                return Ok(Some(role_grants(tx, &role, session)?));
            }
            Ok(None)
        })?;
        caller.access = Access(grants.map(Arc::new));
        Ok(caller)
    }
}

impl Control {
    /// Authorizes `request` as a session of the role `role_arn` named `session_name`, as berth does when it acts
    /// for a task or a service (the execution role reading a secret or pulling an image, the infrastructure role
    /// provisioning). A role that does not exist is refused like a denied action.
    pub fn authorize_as_role(
        &self,
        role_arn: &str,
        session_name: &str,
        request: RequestContext,
    ) -> Result<(), AwsError> {
        let grants = self
            .read(|tx| match role_by_arn(tx, &self.names.account, role_arn)? {
                Some(role) => Ok(Some(role_grants(tx, &role, session_name)?)),
                None => Ok(None),
            })
            .map_err(AwsError::from)?;
        match grants {
            Some(g) => g.check(request),
            None => Err(AwsError::new(
                ErrorCode::AccessDenied,
                format!("Role {role_arn} does not exist; berth cannot act as it to perform {}", request.action),
            )),
        }
    }
}

/// May a session of `role_arn` perform `action` on `resource`? The denial's message, as AWS words it.
pub(crate) fn check_role_action(
    tx: &Tx<'_>,
    account: &str,
    role_arn: &str,
    session: &str,
    action: &str,
    resource: &str,
) -> Result<(), String> {
    let role = match role_by_arn(tx, account, role_arn) {
        Ok(Some(r)) => r,
        Ok(None) => return Err(format!("the role {role_arn} does not exist")),
        Err(e) => return Err(AwsError::from(e).message),
    };
    let grants = role_grants(tx, &role, session).map_err(|e| AwsError::from(e).message)?;
    grants.check(RequestContext::new(action, resource)).map_err(|e| e.message)
}

/// The services Express passes its roles to, by member.
pub(crate) const EXECUTION_ROLE_SERVICE: &str = "ecs-tasks.amazonaws.com";
pub(crate) const INFRASTRUCTURE_ROLE_SERVICE: &str = "ecs.amazonaws.com";

/// The checks creating or updating an Express service makes on one role it is given: the caller may pass it
/// (`iam:PassRole` with `iam:PassedToService`), it exists, and its trust policy lets `service` assume it.
pub(crate) fn check_passed_role(
    tx: &Tx<'_>,
    caller: &CallerIdentity,
    member: &str,
    role_arn: &str,
    service: &str,
) -> Result<IamRoleRow, ControlError> {
    authz::authorize_request(
        caller,
        RequestContext::new("iam:PassRole", role_arn).with_key("iam:PassedToService", service),
    )?;
    let role = role_by_arn(tx, &caller.account, role_arn)?.ok_or_else(|| {
        ControlError::invalid(format!(
            "The {member} '{role_arn}' does not exist. Create the role (aws iam create-role) with a trust policy \
             for {service} first."
        ))
    })?;
    let trust = Policy::parse(&role.trust_policy, PolicyKind::Trust)
        .map_err(|e| ControlError::invalid(format!("The trust policy of {member} '{role_arn}' is not valid: {e}")))?;
    let decision = berth_iam::trust_allows(&trust, role_arn, &berth_iam::Principal::Service(service.to_owned()));
    if !decision.is_allowed() {
        return Err(ControlError::invalid(format!(
            "Unable to assume the {member} '{role_arn}': its trust policy does not allow {service} to call \
             sts:AssumeRole. Add {{\"Effect\": \"Allow\", \"Principal\": {{\"Service\": \"{service}\"}}, \
             \"Action\": \"sts:AssumeRole\"}} to it."
        )));
    }
    Ok(role)
}

/// The session name AWS shows for the infrastructure role.
pub(crate) const INFRASTRUCTURE_SESSION: &str = "ECSGateway";

/// The roles of an Express create or update, checked before anything is written: each role given may be passed
/// by the caller, exists and trusts its service. What the infrastructure role is then asked to do is checked
/// against exactly what berth does, in the command's transaction (see `crate::express::journal`).
pub(crate) struct ExpressRoles<'a> {
    pub infrastructure: Option<&'a str>,
    pub execution: Option<&'a str>,
    pub task: Option<&'a str>,
}

impl Control {
    pub(crate) fn check_express_roles(
        &self,
        caller: &CallerIdentity,
        roles: ExpressRoles<'_>,
    ) -> Result<(), ControlError> {
        self.read(|tx| {
            if let Some(arn) = roles.infrastructure {
                check_passed_role(tx, caller, "infrastructureRoleArn", arn, INFRASTRUCTURE_ROLE_SERVICE)?;
            }
            if let Some(arn) = roles.execution {
                check_passed_role(tx, caller, "executionRoleArn", arn, EXECUTION_ROLE_SERVICE)?;
            }
            if let Some(arn) = roles.task {
                check_passed_role(tx, caller, "taskRoleArn", arn, EXECUTION_ROLE_SERVICE)?;
            }
            Ok(())
        })
    }
}

/// The session name berth's execution-role calls carry.
const EXECUTION_SESSION: &str = "ECSTaskExecution";

impl Control {
    /// THE one place where the execution role's permission to read a secret or parameter is checked: the action
    /// is evaluated against the role's policies, as a session of the role (AWS words a denial `User:
    /// arn:aws:sts::<acct>:assumed-role/<role>/<session> is not authorized ...`). A bare parameter name or secret
    /// name becomes its ARN (a secret name without AWS's random suffix).
    pub(crate) fn execution_role_may(
        &self,
        tx: &berth_store::Tx<'_>,
        role: Option<&str>,
        action: &str,
        resource: &str,
    ) -> Result<(), String> {
        let Some(role_arn) = role else {
            return Err(format!("no execution role is configured to perform {action} on {resource}"));
        };
        let (region, account) = (&self.names.region, &self.names.account);
        let resource = if resource.starts_with("arn:") {
            resource.to_owned()
        } else if action.starts_with("ssm:") {
            format!("arn:aws:ssm:{region}:{account}:parameter/{}", resource.trim_start_matches('/'))
        } else {
            format!("arn:aws:secretsmanager:{region}:{account}:secret:{resource}")
        };
        check_role_action(tx, account, role_arn, EXECUTION_SESSION, action, &resource)
    }
}
