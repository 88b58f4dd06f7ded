//! The infrastructure role at work: what berth does for an Express service, in AWS's words, and the check of
//! it against the role's policies.
//!
//! The code that provisions, updates and tears down a service's resources (`placement.rs`: `place_service`,
//! `assign_revision`, `release_service`, `retire_groups`; `security_groups.rs`) records each action it performs in a
//! [`Journal`]: AWS's action name, the real resource ARN, the tags the request carries and the tags the
//! resource carries. Before the transaction (or the savepoint of a teardown step) commits, [`authorize`]
//! evaluates every entry as the role's `ECSGateway` session; a denial fails the whole step, so what is
//! authorized is exactly what was done, and a denied step leaves nothing behind. Only actions berth performs are
//! recorded: berth has no ACM, so it records none of its actions; it does create log groups (`log_group.rs`:
//! `logs:DescribeLogGroups`, `logs:CreateLogGroup`, `logs:TagResource`) and the service's auto scaling
//! (`scaling.rs`: Application Auto Scaling's target and policy, CloudWatch's alarms).
//!
//! The condition keys follow the managed policy `AmazonECSInfrastructureRoleforExpressGatewayServices` (see
//! berth-iam's `managed` module): a create call carries its tags as request tags and, as AWS evaluates the tags
//! being created with the resource, as resource tags too; the tagging a create implies is recorded as its own
//! `elasticloadbalancing:AddTags` / `ec2:CreateTags` with the `elasticloadbalancing:CreateAction` /
//! `ec2:CreateAction` key naming the create call.

use berth_core::{AwsError, ErrorCode};
use berth_iam::RequestContext;
use berth_model::elbv2::Action;
use berth_store::Tx;

use crate::iam::access::{INFRASTRUCTURE_SESSION, role_by_arn, role_grants};
use crate::{Control, ControlError};

type Tags = Vec<(String, String)>;

/// One action berth performed as the infrastructure role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Performed {
    /// `service:Action`, AWS's name.
    pub action: String,
    /// The resource's ARN, or `*` for the reads that have no resource-level permissions.
    pub resource: String,
    /// The tags in the request (`aws:RequestTag/...`, `aws:TagKeys`).
    pub request_tags: Tags,
    /// The tags on the resource acted on (`aws:ResourceTag/...`); for a create, the tags it is created with.
    pub resource_tags: Tags,
    /// Service-specific condition keys, such as `elasticloadbalancing:CreateAction`.
    pub keys: Vec<(String, String)>,
}

/// What one command or teardown step did as the infrastructure role, in order.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    entries: Vec<Performed>,
}

impl Journal {
    pub fn entries(&self) -> &[Performed] {
        &self.entries
    }

    fn push(&mut self, p: Performed) {
        // The same question twice has the same answer.
        if !self.entries.contains(&p) {
            self.entries.push(p);
        }
    }

    /// A read without resource-level permissions (`elasticloadbalancing:DescribeRules`, `ec2:DescribeVpcs`).
    pub fn describe(&mut self, action: &str) {
        self.push(Performed {
            action: action.into(),
            resource: "*".into(),
            request_tags: vec![],
            resource_tags: vec![],
            keys: vec![],
        });
    }

    /// `logs:CreateLogGroup` with its tags and the `logs:TagResource` that puts them on the group; both carry
    /// the tags as request tags (the managed policy's `aws:RequestTag/AmazonECSManaged` condition).
    pub fn logs_create_group(&mut self, arn: &str, tags: &[(String, String)]) {
        for action in ["logs:CreateLogGroup", "logs:TagResource"] {
            self.push(Performed {
                action: action.into(),
                resource: arn.into(),
                request_tags: tags.to_vec(),
                resource_tags: vec![],
                keys: vec![],
            });
        }
    }

    /// `application-autoscaling:RegisterScalableTarget` with its `Tags` (request and resource tags: the managed
    /// policy asks for `aws:ResourceTag/AmazonECSManaged`) and the `TagResource` it implies.
    pub fn aas_register(&mut self, target_arn: &str, tags: &[(String, String)]) {
        for action in ["application-autoscaling:RegisterScalableTarget", "application-autoscaling:TagResource"] {
            self.push(Performed {
                action: action.into(),
                resource: target_arn.into(),
                request_tags: tags.to_vec(),
                resource_tags: tags.to_vec(),
                keys: vec![],
            });
        }
    }

    /// A scaling policy call (`PutScalingPolicy`, `DeleteScalingPolicy`) on the target, with the
    /// `application-autoscaling:service-namespace` key.
    pub fn aas_policy(&mut self, action: &str, target_arn: &str) {
        self.push(Performed {
            action: action.into(),
            resource: target_arn.into(),
            request_tags: vec![],
            resource_tags: vec![],
            keys: vec![("application-autoscaling:service-namespace".into(), "ecs".into())],
        });
    }

    /// `cloudwatch:PutMetricAlarm` with the alarm's `Tags`, and the `cloudwatch:TagResource` it implies.
    pub fn cloudwatch_put_alarm(&mut self, alarm_arn: &str, tags: &[(String, String)]) {
        for action in ["cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"] {
            self.push(Performed {
                action: action.into(),
                resource: alarm_arn.into(),
                request_tags: tags.to_vec(),
                resource_tags: vec![],
                keys: vec![],
            });
        }
    }

    /// An action on an existing resource that carries `resource_tags`.
    pub fn act(&mut self, action: &str, arn: &str, resource_tags: Tags) {
        self.push(Performed {
            action: action.into(),
            resource: arn.into(),
            request_tags: vec![],
            resource_tags,
            keys: vec![],
        });
    }

    /// An ELBv2 action on an existing resource, with the tags the store holds for it.
    pub fn elb(&mut self, tx: &Tx<'_>, action: &str, arn: &str) -> Result<(), ControlError> {
        self.act(&format!("elasticloadbalancing:{action}"), arn, tx.tags_get(arn)?);
        Ok(())
    }

    /// An ELBv2 create call (`CreateLoadBalancer`, `CreateListener`, `CreateTargetGroup`, `CreateRule`) with
    /// its `Tags`, and the `AddTags` it implies.
    pub fn elb_create(&mut self, create: &str, arn: &str, tags: &[(String, String)]) {
        self.push(Performed {
            action: format!("elasticloadbalancing:{create}"),
            resource: arn.into(),
            request_tags: tags.to_vec(),
            resource_tags: tags.to_vec(),
            keys: vec![],
        });
        if !tags.is_empty() {
            self.push(Performed {
                action: "elasticloadbalancing:AddTags".into(),
                resource: arn.into(),
                request_tags: tags.to_vec(),
                resource_tags: tags.to_vec(),
                keys: vec![("elasticloadbalancing:CreateAction".into(), create.into())],
            });
        }
    }

    /// `ec2:CreateSecurityGroup` with `TagSpecifications`: authorized on the VPC and on the new group, and the
    /// `ec2:CreateTags` it implies.
    pub fn ec2_create_group(&mut self, c: &Control, vpc_id: &str, group_id: &str, tags: &[(String, String)]) {
        let group = crate::ec2::arn(c, "security-group", group_id);
        for resource in [crate::ec2::arn(c, "vpc", vpc_id), group.clone()] {
            self.push(Performed {
                action: "ec2:CreateSecurityGroup".into(),
                resource,
                request_tags: tags.to_vec(),
                resource_tags: vec![],
                keys: vec![],
            });
        }
        if !tags.is_empty() {
            self.push(Performed {
                action: "ec2:CreateTags".into(),
                resource: group,
                request_tags: tags.to_vec(),
                resource_tags: vec![],
                keys: vec![("ec2:CreateAction".into(), "CreateSecurityGroup".into())],
            });
        }
    }

    /// `ec2:AuthorizeSecurityGroupIngress` on a group (with the tags the group carries and the rules'
    /// `TagSpecifications`), and the `ec2:CreateTags` of each new rule.
    pub fn ec2_authorize_ingress(
        &mut self,
        c: &Control,
        tx: &Tx<'_>,
        group_id: &str,
        rule_ids: &[String],
        tags: &[(String, String)],
    ) -> Result<(), ControlError> {
        self.push(Performed {
            action: "ec2:AuthorizeSecurityGroupIngress".into(),
            resource: crate::ec2::arn(c, "security-group", group_id),
            request_tags: tags.to_vec(),
            resource_tags: tx.ec2_tags_get(group_id)?,
            keys: vec![],
        });
        if !tags.is_empty() {
            for id in rule_ids {
                self.push(Performed {
                    action: "ec2:CreateTags".into(),
                    resource: crate::ec2::arn(c, "security-group-rule", id),
                    request_tags: tags.to_vec(),
                    resource_tags: vec![],
                    keys: vec![("ec2:CreateAction".into(), "AuthorizeSecurityGroupIngress".into())],
                });
            }
        }
        Ok(())
    }

    /// An EC2 action on an existing security group, with the tags the store holds for it.
    pub fn ec2_group(&mut self, c: &Control, tx: &Tx<'_>, action: &str, group_id: &str) -> Result<(), ControlError> {
        self.act(&format!("ec2:{action}"), &crate::ec2::arn(c, "security-group", group_id), tx.ec2_tags_get(group_id)?);
        Ok(())
    }

    /// What a deployment to `group` does on the load balancer: its tasks are registered in `group`, traffic
    /// moves by modifying the Express rules that forward to `group` or `other`, and the old revision's tasks
    /// are deregistered from `other`. A user's own rules that forward to the groups follow too, but that is
    /// berth keeping the user's rules consistent, not the infrastructure role's work (see [`is_express_rule`]).
    pub fn deployment(&mut self, tx: &Tx<'_>, group: &str, other: &str) -> Result<(), ControlError> {
        self.elb(tx, "RegisterTargets", group)?;
        self.describe("elasticloadbalancing:DescribeRules");
        for rule in tx.rules_all()? {
            let actions: Vec<Action> = crate::elbv2::parse(&rule.actions, "rule actions")?;
            if is_express_rule(&rule) && forwards_to(&actions, &[group, other]) {
                self.elb(tx, "ModifyRule", &rule.arn)?;
            }
        }
        if other != group {
            self.elb(tx, "DeregisterTargets", other)?;
        }
        Ok(())
    }
}

/// Is this rule one Express made (a service's host-header rule), as opposed to a user's own rule? The
/// infrastructure role acts on the former only; when berth edits a user's rule because the groups it forwards
/// to move or go away, it does so for the user (who made the rule through the API, authorized then), and that
/// edit is not checked against the role (a managed role could not edit an untagged rule at all).
pub(crate) fn is_express_rule(rule: &berth_store::RuleRow) -> bool {
    rule.service_id.is_some()
}

/// Does any of `actions` forward to one of `groups`?
fn forwards_to(actions: &[Action], groups: &[&str]) -> bool {
    actions.iter().any(|a| {
        a.target_group_arn.as_deref().is_some_and(|g| groups.contains(&g))
            || a.forward_config
                .as_ref()
                .and_then(|f| f.target_groups.as_ref())
                .is_some_and(|ts| ts.iter().any(|t| t.target_group_arn.as_deref().is_some_and(|g| groups.contains(&g))))
    })
}

/// The request context a journal entry is evaluated with.
pub(crate) fn request_context(p: &Performed) -> RequestContext {
    let mut r = RequestContext::new(p.action.clone(), p.resource.clone());
    for (k, v) in &p.keys {
        r = r.with_key(k, v.clone());
    }
    if !p.request_tags.is_empty() {
        r = r.with_request_tags(p.request_tags.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    r.with_resource_tags(p.resource_tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// What a step was doing, for the denial's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Create,
    Update,
    Delete,
}

impl Purpose {
    fn words(self) -> &'static str {
        match self {
            Purpose::Create => "provision the service",
            Purpose::Update => "update the service",
            Purpose::Delete => "delete the service's resources",
        }
    }
}

/// Evaluates every entry of `journal` as the `ECSGateway` session of `role_arn`, in order. The first denied
/// action fails with `AccessDenied`, whose message names the role, the session and the action (AWS's wording).
/// A role that no longer exists is denied everything.
pub(crate) fn authorize(
    c: &Control,
    tx: &Tx<'_>,
    role_arn: &str,
    journal: &Journal,
    purpose: Purpose,
) -> Result<(), ControlError> {
    if journal.entries().is_empty() {
        return Ok(());
    }
    let denied = |message: String| {
        ControlError::Aws(AwsError::new(
            ErrorCode::AccessDenied,
            format!("The infrastructure role {role_arn} cannot {}: {message}", purpose.words()),
        ))
    };
    let Some(role) = role_by_arn(tx, &c.names.account, role_arn)? else {
        let first = &journal.entries()[0].action;
        return Err(denied(format!("the role does not exist, so berth cannot act as it to perform {first}")));
    };
    let grants = role_grants(tx, &role, INFRASTRUCTURE_SESSION)?;
    for p in journal.entries() {
        grants.check(request_context(p)).map_err(|e| denied(e.message))?;
    }
    Ok(())
}

/// Is this the denial [`authorize`] reports?
pub(crate) fn is_denial(e: &ControlError) -> bool {
    matches!(e, ControlError::Aws(a) if a.code == ErrorCode::AccessDenied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn managed() -> Tags {
        vec![("AmazonECSManaged".into(), "true".into())]
    }

    fn entry(action: &str, resource: &str, request: Tags, resource_tags: Tags, keys: &[(&str, &str)]) -> Performed {
        Performed {
            action: action.into(),
            resource: resource.into(),
            request_tags: request,
            resource_tags,
            keys: keys.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    const LB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/ecs-express-gateway-alb-1a2b3c4d/0123456789abcdef";
    const RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/ecs-express-gateway-alb-1a2b3c4d/0123456789abcdef/fedcba9876543210/0011223344556677";
    const SG: &str = "arn:aws:ec2:us-east-1:123456789012:security-group/sg-0123456789abcdef0";

    #[test]
    fn journal_entries_become_request_contexts() {
        // (entry, the context it is evaluated with)
        let cases: Vec<(Performed, RequestContext)> = vec![
            (entry("elasticloadbalancing:DescribeRules", "*", vec![], vec![], &[]), {
                RequestContext::new("elasticloadbalancing:DescribeRules", "*")
            }),
            // A create carries its tags as request and resource tags.
            (
                entry("elasticloadbalancing:CreateLoadBalancer", LB, managed(), managed(), &[]),
                RequestContext::new("elasticloadbalancing:CreateLoadBalancer", LB)
                    .with_request_tags([("AmazonECSManaged", "true")])
                    .with_resource_tags([("AmazonECSManaged", "true")]),
            ),
            // Tagging on create names the create call.
            (
                entry(
                    "elasticloadbalancing:AddTags",
                    RULE,
                    managed(),
                    managed(),
                    &[("elasticloadbalancing:CreateAction", "CreateRule")],
                ),
                RequestContext::new("elasticloadbalancing:AddTags", RULE)
                    .with_key("elasticloadbalancing:CreateAction", "CreateRule")
                    .with_request_tags([("AmazonECSManaged", "true")])
                    .with_resource_tags([("AmazonECSManaged", "true")]),
            ),
            // An action on an existing resource: only its own tags (none here: no tag keys at all).
            (
                entry("elasticloadbalancing:DeleteRule", RULE, vec![], vec![], &[]),
                RequestContext::new("elasticloadbalancing:DeleteRule", RULE),
            ),
            (
                entry("ec2:DeleteSecurityGroup", SG, vec![], managed(), &[]),
                RequestContext::new("ec2:DeleteSecurityGroup", SG).with_resource_tags([("AmazonECSManaged", "true")]),
            ),
            (
                entry("ec2:CreateTags", SG, managed(), vec![], &[("ec2:CreateAction", "CreateSecurityGroup")]),
                RequestContext::new("ec2:CreateTags", SG)
                    .with_key("ec2:CreateAction", "CreateSecurityGroup")
                    .with_request_tags([("AmazonECSManaged", "true")]),
            ),
        ];
        for (p, want) in cases {
            assert_eq!(request_context(&p), want, "{p:?}");
        }
    }

    #[test]
    fn a_create_records_its_tagging_and_duplicates_once() {
        let mut j = Journal::default();
        j.elb_create("CreateRule", RULE, &managed());
        j.elb_create("CreateRule", RULE, &managed());
        j.describe("elasticloadbalancing:DescribeRules");
        j.describe("elasticloadbalancing:DescribeRules");
        let got: Vec<(&str, Option<&str>)> =
            j.entries().iter().map(|p| (p.action.as_str(), p.keys.first().map(|(_, v)| v.as_str()))).collect();
        assert_eq!(
            got,
            vec![
                ("elasticloadbalancing:CreateRule", None),
                ("elasticloadbalancing:AddTags", Some("CreateRule")),
                ("elasticloadbalancing:DescribeRules", None),
            ]
        );
        // Untagged creates imply no tagging.
        let mut j = Journal::default();
        j.elb_create("CreateTargetGroup", LB, &[]);
        assert_eq!(j.entries().len(), 1);
    }

    #[test]
    fn forwarding_is_found_in_both_action_shapes() {
        let plain = Action { target_group_arn: Some("A".into()), ..Default::default() };
        let weighted = Action {
            forward_config: Some(berth_model::elbv2::ForwardActionConfig {
                target_groups: Some(vec![berth_model::elbv2::TargetGroupTuple {
                    target_group_arn: Some("B".into()),
                    weight: Some(1),
                }]),
                target_group_stickiness_config: None,
            }),
            ..Default::default()
        };
        // (actions, groups, forwards)
        let cases: Vec<(Vec<Action>, Vec<&str>, bool)> = vec![
            (vec![plain.clone()], vec!["A"], true),
            (vec![plain.clone()], vec!["B"], false),
            (vec![weighted.clone()], vec!["B", "C"], true),
            (vec![weighted.clone()], vec!["A"], false),
            (vec![Action::default()], vec!["A"], false),
            (vec![Action::default(), weighted], vec!["B"], true),
        ];
        for (actions, groups, want) in cases {
            assert_eq!(forwards_to(&actions, &groups), want, "{actions:?} {groups:?}");
        }
    }
}
