//! What the stored policies mean for a request: resolving a caller's grants, the documents behind managed policy
//! ARNs, role sessions (the caller's own and the ones berth takes, such as the infrastructure role's
//! `ECSGateway`), and the role checks of Express services (`iam:PassRole`, trust, provisioning permissions).

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
        let grants = self.tx(|tx| {
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
            .tx(|tx| match role_by_arn(tx, &self.names.account, role_arn)? {
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

/// One action berth performs as the infrastructure role when it provisions an Express service.
pub(crate) struct ProvisioningAction {
    pub action: &'static str,
    /// Resource ARN after `arn:aws:<service>:<region>:<account>:`.
    pub resource: String,
    /// `(key, value)` condition keys besides the tags.
    pub keys: Vec<(&'static str, &'static str)>,
    /// Whether `AmazonECSManaged=true` is on the request (and so on the resource being created).
    pub managed_tag: bool,
}

/// What berth does for a new Express service, in AWS's words: the load balancer resources (shared load
/// balancer, listeners, rule, two target groups, tagged on create), the two security groups with their rules,
/// the scaling target and policy, the rollback alarm and the log group.
pub(crate) fn provisioning_actions(service: &str) -> Vec<ProvisioningAction> {
    let a = |action, resource: String, keys: Vec<(&'static str, &'static str)>, managed_tag| ProvisioningAction {
        action,
        resource,
        keys,
        managed_tag,
    };
    let lb = "loadbalancer/app/ecs-express-gateway-alb/0".to_owned();
    let listener = "listener/app/ecs-express-gateway-alb/0/0".to_owned();
    let rule = "listener-rule/app/ecs-express-gateway-alb/0/0/0".to_owned();
    let tg = format!("targetgroup/{service}/0");
    vec![
        a("elasticloadbalancing:DescribeLoadBalancers", "*".into(), vec![], false),
        a("elasticloadbalancing:CreateLoadBalancer", lb.clone(), vec![], true),
        a("elasticloadbalancing:AddTags", lb, vec![("elasticloadbalancing:CreateAction", "CreateLoadBalancer")], true),
        a("elasticloadbalancing:CreateTargetGroup", tg.clone(), vec![], true),
        a(
            "elasticloadbalancing:AddTags",
            tg.clone(),
            vec![("elasticloadbalancing:CreateAction", "CreateTargetGroup")],
            true,
        ),
        a("elasticloadbalancing:CreateListener", listener.clone(), vec![], true),
        a(
            "elasticloadbalancing:AddTags",
            listener,
            vec![("elasticloadbalancing:CreateAction", "CreateListener")],
            true,
        ),
        a("elasticloadbalancing:CreateRule", rule.clone(), vec![], true),
        a("elasticloadbalancing:AddTags", rule, vec![("elasticloadbalancing:CreateAction", "CreateRule")], true),
        a("elasticloadbalancing:RegisterTargets", tg, vec![], true),
        a("ec2:DescribeVpcs", "*".into(), vec![], false),
        a("ec2:DescribeSubnets", "*".into(), vec![], false),
        a("ec2:CreateSecurityGroup", "vpc/vpc-default".into(), vec![], true),
        a("ec2:CreateSecurityGroup", "security-group/*".into(), vec![], true),
        a("ec2:CreateTags", "security-group/*".into(), vec![("ec2:CreateAction", "CreateSecurityGroup")], true),
        a("ec2:AuthorizeSecurityGroupIngress", "security-group/*".into(), vec![], true),
        a("application-autoscaling:RegisterScalableTarget", "scalable-target/*".into(), vec![], true),
        a(
            "application-autoscaling:PutScalingPolicy",
            "scalable-target/*".into(),
            vec![("application-autoscaling:service-namespace", "ecs")],
            false,
        ),
        a("cloudwatch:PutMetricAlarm", format!("alarm:{service}-rollback"), vec![], true),
        a("logs:CreateLogGroup", format!("log-group:/aws/ecs/default/{service}"), vec![], true),
    ]
}

/// Evaluates every provisioning action as a session of the infrastructure role (`ECSGateway`), before
/// anything is written. The first denied action fails the create with AWS's `AccessDenied` message, which names
/// the role session and the action.
pub(crate) fn check_provisioning(
    tx: &Tx<'_>,
    region: &str,
    account: &str,
    infrastructure_role: &IamRoleRow,
    service: &str,
) -> Result<(), ControlError> {
    let grants = role_grants(tx, infrastructure_role, INFRASTRUCTURE_SESSION)?;
    for p in provisioning_actions(service) {
        let resource = if p.resource == "*" {
            "*".to_owned()
        } else {
            let svc = p.action.split(':').next().unwrap_or_default();
            format!("arn:aws:{svc}:{region}:{account}:{}", p.resource)
        };
        let mut request = RequestContext::new(p.action, resource);
        for (k, v) in &p.keys {
            request = request.with_key(k, *v);
        }
        if p.managed_tag {
            let tags = [("AmazonECSManaged", "true")];
            // The tags created with a resource are its resource tags too (see berth-iam's managed module).
            request = request.with_request_tags(tags).with_resource_tags(tags);
        }
        grants.check(request).map_err(|e| {
            ControlError::Aws(AwsError::new(
                ErrorCode::AccessDenied,
                format!(
                    "The infrastructure role {} cannot provision the service: {}",
                    infrastructure_role.arn, e.message
                ),
            ))
        })?;
    }
    Ok(())
}

/// The roles of an Express create or update, checked before anything is written: each role given may be passed
/// by the caller, exists and trusts its service; on create, the infrastructure role must also allow everything
/// berth will do for the service (`provision_service` names it).
pub(crate) struct ExpressRoles<'a> {
    pub infrastructure: Option<&'a str>,
    pub execution: Option<&'a str>,
    pub task: Option<&'a str>,
    pub provision_service: Option<&'a str>,
}

impl Control {
    pub(crate) fn check_express_roles(
        &self,
        caller: &CallerIdentity,
        roles: ExpressRoles<'_>,
    ) -> Result<(), ControlError> {
        self.tx(|tx| {
            let mut infra = None;
            if let Some(arn) = roles.infrastructure {
                infra = Some(check_passed_role(tx, caller, "infrastructureRoleArn", arn, INFRASTRUCTURE_ROLE_SERVICE)?);
            }
            if let Some(arn) = roles.execution {
                check_passed_role(tx, caller, "executionRoleArn", arn, EXECUTION_ROLE_SERVICE)?;
            }
            if let Some(arn) = roles.task {
                check_passed_role(tx, caller, "taskRoleArn", arn, EXECUTION_ROLE_SERVICE)?;
            }
            if let (Some(role), Some(service)) = (infra, roles.provision_service) {
                check_provisioning(tx, &self.names.region, &self.names.account, &role, service)?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role_with(tx: &Tx<'_>, name: &str, attached: &[&str], inline: Option<&str>) -> IamRoleRow {
        let row = IamRoleRow {
            name: name.into(),
            role_id: format!("AROA{name}"),
            arn: format!("arn:aws:iam::123456789012:role/{name}"),
            path: "/".into(),
            trust_policy: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#.into(),
            description: None,
            max_session_duration: 3600,
            created_at: 0.0,
        };
        tx.iam_role_insert(&row).expect("role");
        for a in attached {
            tx.iam_attach(IamOwner::Role, name, a).expect("attach");
        }
        if let Some(doc) = inline {
            tx.iam_inline_put(IamOwner::Role, name, "inline", doc).expect("inline");
        }
        row
    }

    const INFRA: &str = "arn:aws:iam::aws:policy/service-role/AmazonECSInfrastructureRoleforExpressGatewayServices";

    #[test]
    fn the_managed_infrastructure_policy_allows_every_provisioning_action() {
        let mut store = berth_store::Store::open_in_memory().expect("store");
        store
            .tx(|tx| {
                let ok = role_with(tx, "infra", &[INFRA], None);
                check_provisioning(tx, "us-east-1", "123456789012", &ok, "web").expect("allowed");
                // Without it nothing is allowed, and the message names the session and the first action.
                let none = role_with(tx, "empty", &[], None);
                let e = AwsError::from(check_provisioning(tx, "us-east-1", "123456789012", &none, "web").expect_err("denied"));
                assert_eq!(e.code, ErrorCode::AccessDenied);
                assert!(e.message.contains("arn:aws:sts::123456789012:assumed-role/empty/ECSGateway"), "{}", e.message);
                assert!(e.message.contains("elasticloadbalancing:DescribeLoadBalancers"), "{}", e.message);
                // The managed policy with an explicit deny of one ELB action fails on exactly that action.
                let deny = role_with(
                    tx,
                    "denied",
                    &[INFRA],
                    Some(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"elasticloadbalancing:CreateRule","Resource":"*"}]}"#),
                );
                let e = AwsError::from(check_provisioning(tx, "us-east-1", "123456789012", &deny, "web").expect_err("denied"));
                assert!(e.message.contains("perform: elasticloadbalancing:CreateRule on resource"), "{}", e.message);
                Ok::<_, ControlError>(())
            })
            .expect("tx");
    }
}
