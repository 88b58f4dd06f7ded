//! An Express service's auto scaling, provisioned as its infrastructure role: the scalable target
//! (`ecs:service:DesiredCount`, min/max from `scalingTarget`, 1 and 20 by default, tagged
//! `AmazonECSManaged=true`) and one target tracking policy named `<ServiceName><PredefinedMetricType>` on the
//! chosen metric (target 60 by default), whose two alarms Application Auto Scaling creates.
//!
//! Each step is recorded in the [`Journal`] (`application-autoscaling:RegisterScalableTarget`, `TagResource`,
//! `PutScalingPolicy`, `cloudwatch:PutMetricAlarm` and `TagResource` for each alarm; on deletion
//! `DeleteScalingPolicy`, `cloudwatch:DeleteAlarms`, `DeregisterScalableTarget`) and checked with the rest of the
//! command. An update that gives `scalingTarget` changes the target's bounds and the policy's metric and target
//! value (keeping the user's other edits: cooldowns, `DisableScaleIn`); any other update leaves both alone, so a
//! user's own changes survive deployments. The alarms are written to CloudWatch once the transaction commits
//! ([`after_commit`]); alarms of a deleted service are queued and deleted by the autoscaling pass.

use berth_model::application_autoscaling as aas;
use berth_model::ecs::{ExpressGatewayScalingTarget, ExpressGatewayServiceScalingMetric};
use berth_store::{ServiceRow, Tx};

use super::MANAGED_TAG;
use super::journal::Journal;
use crate::autoscaling::{self, api};
use crate::{Control, ControlError};

fn managed() -> Vec<(String, String)> {
    vec![(MANAGED_TAG.0.to_string(), MANAGED_TAG.1.to_string())]
}

fn resource_id(service: &ServiceRow) -> String {
    format!("service/{}/{}", service.cluster, service.name)
}

fn predefined(metric: Option<ExpressGatewayServiceScalingMetric>) -> aas::MetricType {
    match metric {
        Some(ExpressGatewayServiceScalingMetric::AverageMemory) => aas::MetricType::ECSServiceAverageMemoryUtilization,
        Some(ExpressGatewayServiceScalingMetric::RequestCountPerTarget) => aas::MetricType::ALBRequestCountPerTarget,
        _ => aas::MetricType::ECSServiceAverageCPUUtilization,
    }
}

/// The policy's name: `<ServiceName><TargetMetric>` (express-mode reference §2.7), the metric as its predefined
/// type (**inference**: the exact spelling of the metric part is not published).
pub(crate) fn policy_name(service: &str, metric: aas::MetricType) -> String {
    format!("{service}{}", metric.as_str())
}

/// `app/<lb>/<id>/targetgroup/<tg>/<id>` of the target group the service's live revision serves from
/// (ALBRequestCountPerTarget); it changes when a deployment moves the service to its other group
/// ([`follow_live_group`]).
fn resource_label(tx: &Tx<'_>, service: &ServiceRow) -> Result<Option<String>, ControlError> {
    let Some(p) = tx.placement_get(service.id)? else { return Ok(None) };
    let revision = service.live_revision.as_deref().unwrap_or(&service.target_revision);
    let group = tx.revision_group(revision)?.unwrap_or(p.group_a);
    let lb = p.load_balancer_arn.split_once(":loadbalancer/").map(|(_, s)| s.to_string());
    let tg = group.rsplit_once(':').map(|(_, s)| s.to_string());
    Ok(lb.zip(tg).map(|(lb, tg)| format!("{lb}/{tg}")))
}

fn tracking(
    tx: &Tx<'_>,
    service: &ServiceRow,
    scaling: &ExpressGatewayScalingTarget,
    keep: Option<aas::TargetTrackingScalingPolicyConfiguration>,
) -> Result<aas::TargetTrackingScalingPolicyConfiguration, ControlError> {
    let kind = predefined(scaling.auto_scaling_metric);
    let label = if kind == aas::MetricType::ALBRequestCountPerTarget { resource_label(tx, service)? } else { None };
    let keep = keep.unwrap_or_default();
    Ok(aas::TargetTrackingScalingPolicyConfiguration {
        target_value: Some(f64::from(scaling.auto_scaling_target_value.unwrap_or(60))),
        predefined_metric_specification: Some(aas::PredefinedMetricSpecification {
            predefined_metric_type: Some(kind),
            resource_label: label,
        }),
        customized_metric_specification: None,
        scale_out_cooldown: keep.scale_out_cooldown,
        scale_in_cooldown: keep.scale_in_cooldown,
        disable_scale_in: keep.disable_scale_in.or(Some(false)),
    })
}

/// Registers (or updates) the target and puts the policy for `scaling`, recording each call in `journal`.
/// Returns the policy's ARN and the alarms it no longer owns.
pub(crate) fn provision(
    c: &Control,
    tx: &Tx<'_>,
    service: &ServiceRow,
    scaling: &ExpressGatewayScalingTarget,
    journal: &mut Journal,
    t: f64,
) -> Result<(String, Vec<String>), ControlError> {
    let rid = resource_id(service);
    let tags = managed();
    let register = aas::RegisterScalableTargetRequest {
        service_namespace: Some(aas::ServiceNamespace::Ecs),
        resource_id: Some(rid.clone()),
        scalable_dimension: Some(aas::ScalableDimension::EcsServiceDesiredCount),
        min_capacity: scaling.min_task_count,
        max_capacity: scaling.max_task_count,
        role_arn: None,
        suspended_state: None,
        tags: Some(tags.iter().cloned().collect()),
    };
    let (target, _) = api::register_in(c, tx, &register, t)?;
    journal.aas_register(&target.arn, &tags);
    let kind = predefined(scaling.auto_scaling_metric);
    let name = policy_name(&service.name, kind);
    let mut dropped = Vec::new();
    // A policy of this service on another metric (an earlier scalingTarget) goes.
    for p in tx.scaling_policies(autoscaling::NAMESPACE, Some(&rid))? {
        let other = aas::MetricType::ALL.iter().any(|m| p.name == policy_name(&service.name, *m));
        if other && p.name != name {
            dropped.extend(api::delete_policy_in(tx, &rid, &p.name)?);
            journal.aas_policy("application-autoscaling:DeleteScalingPolicy", &target.arn);
        }
    }
    let keep = tx
        .scaling_policy_get(autoscaling::NAMESPACE, &rid, autoscaling::DIMENSION, &name)?
        .and_then(|p| serde_json::from_str(&p.config).ok());
    let put = aas::PutScalingPolicyRequest {
        policy_name: Some(name),
        service_namespace: Some(aas::ServiceNamespace::Ecs),
        resource_id: Some(rid),
        scalable_dimension: Some(aas::ScalableDimension::EcsServiceDesiredCount),
        policy_type: Some(aas::PolicyType::TargetTrackingScaling),
        target_tracking_scaling_policy_configuration: Some(tracking(tx, service, scaling, keep)?),
        ..Default::default()
    };
    let (policy, gone) = api::put_policy_in(c, tx, &put, t)?;
    dropped.extend(gone);
    journal.aas_policy("application-autoscaling:PutScalingPolicy", &target.arn);
    for alarm in autoscaling::alarms::parse(&policy.alarms) {
        journal.cloudwatch_put_alarm(&alarm.arn, &tags);
    }
    for name in &dropped {
        journal.act("cloudwatch:DeleteAlarms", &autoscaling::alarms::arn(c, name), tags.clone());
    }
    Ok((policy.arn, dropped))
}

/// Re-puts the service's ALBRequestCountPerTarget policies whose resource label names a group the service no
/// longer serves from (after a deployment moved it to its other group), keeping every other setting; their
/// alarms follow through the autoscaling pass, the replaced ones are queued for deletion.
pub(crate) fn follow_live_group(c: &Control, tx: &Tx<'_>, service: &ServiceRow, t: f64) -> Result<(), ControlError> {
    let Some(label) = resource_label(tx, service)? else { return Ok(()) };
    let rid = resource_id(service);
    for p in tx.scaling_policies(autoscaling::NAMESPACE, Some(&rid))? {
        let Ok(mut config) = serde_json::from_str::<aas::TargetTrackingScalingPolicyConfiguration>(&p.config) else {
            continue;
        };
        let Some(spec) = config.predefined_metric_specification.as_mut() else { continue };
        if spec.predefined_metric_type != Some(aas::MetricType::ALBRequestCountPerTarget)
            || spec.resource_label.as_deref() == Some(label.as_str())
        {
            continue;
        }
        spec.resource_label = Some(label.clone());
        let put = aas::PutScalingPolicyRequest {
            policy_name: Some(p.name.clone()),
            service_namespace: Some(aas::ServiceNamespace::Ecs),
            resource_id: Some(rid.clone()),
            scalable_dimension: Some(aas::ScalableDimension::EcsServiceDesiredCount),
            policy_type: Some(aas::PolicyType::TargetTrackingScaling),
            target_tracking_scaling_policy_configuration: Some(config),
            ..Default::default()
        };
        let (_, gone) = api::put_policy_in(c, tx, &put, t)?;
        autoscaling::queue_alarm_deletion(tx, &gone)?;
    }
    Ok(())
}

/// After the command's transaction: the alarms go to CloudWatch (the autoscaling pass retries what fails).
pub(crate) fn after_commit(c: &Control, policy_arn: &str, dropped: &[String]) {
    if let Err(e) = autoscaling::alarms::delete(c, dropped).and_then(|()| autoscaling::ensure_alarms(c, policy_arn)) {
        tracing::warn!(policy = %policy_arn, error = %e, "the scaling policy's alarms are retried by the next pass");
    }
}

/// Removes the service's target, its policies and scheduled actions (a deletion), recording the calls; the
/// policies' alarms are queued for the autoscaling pass to delete. Nothing to do when none is registered.
pub(crate) fn remove(tx: &Tx<'_>, service: &ServiceRow, journal: &mut Journal) -> Result<(), ControlError> {
    let rid = resource_id(service);
    let Some(target) = tx.scalable_target_get(autoscaling::NAMESPACE, &rid, autoscaling::DIMENSION)? else {
        return Ok(());
    };
    let tags = tx.tags_get(&target.arn)?;
    for p in tx.scaling_policies(autoscaling::NAMESPACE, Some(&rid))? {
        journal.aas_policy("application-autoscaling:DeleteScalingPolicy", &target.arn);
        for a in autoscaling::alarms::parse(&p.alarms) {
            journal.act("cloudwatch:DeleteAlarms", &a.arn, managed());
        }
    }
    journal.act("application-autoscaling:DeregisterScalableTarget", &target.arn, tags);
    let doomed = api::deregister_in(tx, &rid)?;
    autoscaling::queue_alarm_deletion(tx, &doomed)?;
    Ok(())
}
