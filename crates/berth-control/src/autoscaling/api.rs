//! The Application Auto Scaling operations: validation, the rows they write, and the answers.

use berth_core::ErrorCode;
use berth_core::status::ServiceStatus;
use berth_model::Timestamp;
use berth_model::application_autoscaling::*;
use berth_store::{ScalableTargetRow, ScalingActivityRow, ScalingPolicyRow, ScheduledActionRow, Tx};
use berth_telemetry::scaling::{AdjustmentType as StepAdjustmentType, PredefinedMetric, TrackedMetric};

use super::alarms::{self, OwnedAlarm};
use super::{DIMENSION, NAMESPACE};
use crate::{Control, ControlError, now};

/// Most scalable targets (ECS, per Region), policies per target and scheduled actions per target (§6.10).
const MAX_TARGETS: usize = 3000;
const MAX_POLICIES: usize = 50;
const MAX_SCHEDULED: usize = 200;

pub(crate) fn handle(c: &Control, op: Operation) -> Result<Output, ControlError> {
    Ok(match op {
        Operation::RegisterScalableTarget(r) => Output::RegisterScalableTarget(register(c, r)?),
        Operation::DescribeScalableTargets(r) => Output::DescribeScalableTargets(describe_targets(c, r)?),
        Operation::DeregisterScalableTarget(r) => Output::DeregisterScalableTarget(deregister(c, r)?),
        Operation::PutScalingPolicy(r) => Output::PutScalingPolicy(put_policy(c, r)?),
        Operation::DescribeScalingPolicies(r) => Output::DescribeScalingPolicies(describe_policies(c, r)?),
        Operation::DeleteScalingPolicy(r) => Output::DeleteScalingPolicy(delete_policy(c, r)?),
        Operation::DescribeScalingActivities(r) => Output::DescribeScalingActivities(describe_activities(c, r)?),
        Operation::PutScheduledAction(r) => Output::PutScheduledAction(put_scheduled(c, r)?),
        Operation::DescribeScheduledActions(r) => Output::DescribeScheduledActions(describe_scheduled(c, r)?),
        Operation::DeleteScheduledAction(r) => Output::DeleteScheduledAction(delete_scheduled(c, r)?),
        Operation::TagResource(r) => Output::TagResource(tag(c, r)?),
        Operation::UntagResource(r) => Output::UntagResource(untag(c, r)?),
        Operation::ListTagsForResource(r) => Output::ListTagsForResource(list_tags(c, r)?),
    })
}

fn invalid(message: impl Into<String>) -> ControlError {
    ControlError::code(ErrorCode::Validation, message)
}

/// berth scales ECS services only.
pub(crate) fn namespace(ns: Option<ServiceNamespace>) -> Result<(), ControlError> {
    match ns {
        Some(ServiceNamespace::Ecs) => Ok(()),
        Some(other) => Err(invalid(format!(
            "Unsupported service namespace: {}. berth scales ECS services (ServiceNamespace ecs).",
            other.as_str()
        ))),
        None => Err(invalid("ServiceNamespace is required.")),
    }
}

fn dimension(d: Option<ScalableDimension>) -> Result<(), ControlError> {
    match d {
        Some(ScalableDimension::EcsServiceDesiredCount) | None => Ok(()),
        Some(other) => Err(invalid(format!(
            "Unsupported scalable dimension {} for service namespace ecs: use ecs:service:DesiredCount.",
            other.as_str()
        ))),
    }
}

/// `service/<cluster>/<service>` → (cluster, service).
pub(crate) fn resource(resource_id: &str) -> Result<(&str, &str), ControlError> {
    let bad = || {
        invalid(format!(
            "Unsupported resource ID {resource_id} for service namespace ecs: expected service/<cluster-name>/<service-name>."
        ))
    };
    if resource_id.is_empty() || resource_id.len() > 1600 {
        return Err(bad());
    }
    let mut parts = resource_id.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("service"), Some(cluster), Some(service), None) if !cluster.is_empty() && !service.is_empty() => {
            Ok((cluster, service))
        }
        _ => Err(bad()),
    }
}

/// The key of a request naming one target: validated namespace, resource id and dimension.
fn key(
    ns: Option<ServiceNamespace>,
    resource_id: &Option<String>,
    dim: Option<ScalableDimension>,
) -> Result<String, ControlError> {
    namespace(ns)?;
    dimension(dim)?;
    if dim.is_none() {
        return Err(invalid("ScalableDimension is required."));
    }
    let rid = resource_id.clone().unwrap_or_default();
    resource(&rid)?;
    Ok(rid)
}

fn no_target(resource_id: &str) -> ControlError {
    ControlError::code(
        ErrorCode::ObjectNotFound,
        format!(
            "No scalable target registered for service namespace: ecs, resource ID: {resource_id}, scalable dimension: {DIMENSION}"
        ),
    )
}

pub(crate) fn target_of(tx: &Tx<'_>, resource_id: &str) -> Result<ScalableTargetRow, ControlError> {
    tx.scalable_target_get(NAMESPACE, resource_id, DIMENSION)?.ok_or_else(|| no_target(resource_id))
}

fn page<T>(items: Vec<T>, token: Option<&str>, max: Option<i32>) -> Result<(Vec<T>, Option<String>), ControlError> {
    let size = crate::paging::size(max, 50, 1..=50)
        .map_err(|m| invalid(format!("MaxResults {m} is out of range: it must be between 1 and 50.")))?;
    crate::paging::offset_page(items, token, size)
        .map_err(|_| ControlError::code(ErrorCode::InvalidNextTokenException, "Invalid NextToken."))
}

fn tag_pairs(tags: &std::collections::BTreeMap<String, String>) -> Result<Vec<(String, String)>, ControlError> {
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(invalid(format!("Invalid tag '{k}': keys have 1 to 128 characters and values at most 256.")));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(invalid(format!("Invalid tag key '{k}': the aws: prefix is reserved.")));
        }
    }
    Ok(tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

// ---- scalable targets

/// RegisterScalableTarget inside `tx`: creates the target or updates the fields the request gives, then
/// moves the service's desired count into [min, max]. Returns the target and whether the count changed.
pub(crate) fn register_in(
    c: &Control,
    tx: &Tx<'_>,
    r: &RegisterScalableTargetRequest,
    t: f64,
) -> Result<(ScalableTargetRow, bool), ControlError> {
    let rid = key(r.service_namespace, &r.resource_id, r.scalable_dimension)?;
    let (cluster, service) = resource(&rid)?;
    match tx.service_by_name(cluster, service)? {
        Some(s) if s.status == ServiceStatus::Active => {}
        _ => return Err(invalid(format!("ECS service doesn't exist: {rid}"))),
    }
    for (what, v) in [("MinCapacity", r.min_capacity), ("MaxCapacity", r.max_capacity)] {
        if v.is_some_and(|v| v < 0) {
            return Err(invalid(format!("{what} must be a non-negative integer.")));
        }
    }
    let suspended = r.suspended_state.clone().unwrap_or_default();
    let row = match tx.scalable_target_get(NAMESPACE, &rid, DIMENSION)? {
        Some(mut row) => {
            row.min_capacity = r.min_capacity.map_or(row.min_capacity, i64::from);
            row.max_capacity = r.max_capacity.map_or(row.max_capacity, i64::from);
            row.role_arn = r.role_arn.clone().or(row.role_arn);
            row.scale_in_suspended = suspended.dynamic_scaling_in_suspended.unwrap_or(row.scale_in_suspended);
            row.scale_out_suspended = suspended.dynamic_scaling_out_suspended.unwrap_or(row.scale_out_suspended);
            row.scheduled_suspended = suspended.scheduled_scaling_suspended.unwrap_or(row.scheduled_suspended);
            row
        }
        None => {
            let (Some(min), Some(max)) = (r.min_capacity, r.max_capacity) else {
                return Err(invalid("MinCapacity and MaxCapacity are required to register a new scalable target."));
            };
            if tx.scalable_targets(NAMESPACE)?.len() >= MAX_TARGETS {
                return Err(ControlError::code(
                    ErrorCode::LimitExceeded,
                    format!("An account can have at most {MAX_TARGETS} ECS scalable targets."),
                ));
            }
            ScalableTargetRow {
                namespace: NAMESPACE.into(),
                resource_id: rid.clone(),
                dimension: DIMENSION.into(),
                arn: format!(
                    "arn:aws:application-autoscaling:{}:{}:scalable-target/{}",
                    c.names.region,
                    c.names.account,
                    berth_core::ids::random_hex(18)
                ),
                min_capacity: i64::from(min),
                max_capacity: i64::from(max),
                role_arn: r.role_arn.clone().or_else(|| {
                    Some(format!(
                        "arn:aws:iam::{}:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_ECSService",
                        c.names.account
                    ))
                }),
                scale_in_suspended: suspended.dynamic_scaling_in_suspended.unwrap_or(false),
                scale_out_suspended: suspended.dynamic_scaling_out_suspended.unwrap_or(false),
                scheduled_suspended: suspended.scheduled_scaling_suspended.unwrap_or(false),
                created_at: t,
            }
        }
    };
    if row.min_capacity > row.max_capacity {
        return Err(invalid(format!(
            "Minimum capacity ({}) cannot be greater than maximum capacity ({}).",
            row.min_capacity, row.max_capacity
        )));
    }
    tx.scalable_target_put(&row)?;
    if let Some(tags) = &r.tags {
        tx.tags_put(&row.arn, &tag_pairs(tags)?)?;
    }
    let cause = format!(
        "scalable target registered with minimum capacity {} and maximum capacity {}",
        row.min_capacity, row.max_capacity
    );
    let changed = super::executor::fit_capacity(c, tx, &row, &cause, t)?;
    Ok((row, changed))
}

fn register(c: &Control, r: RegisterScalableTargetRequest) -> Result<RegisterScalableTargetResponse, ControlError> {
    let (row, changed) = c.tx(|tx| register_in(c, tx, &r, now()))?;
    if changed {
        c.wake();
    }
    Ok(RegisterScalableTargetResponse { scalable_target_arn: Some(row.arn) })
}

fn describe_targets(
    c: &Control,
    r: DescribeScalableTargetsRequest,
) -> Result<DescribeScalableTargetsResponse, ControlError> {
    namespace(r.service_namespace)?;
    dimension(r.scalable_dimension)?;
    let ids = r.resource_ids.clone().unwrap_or_default();
    let rows: Vec<ScalableTargetRow> = c
        .read(|tx| Ok(tx.scalable_targets(NAMESPACE)?))?
        .into_iter()
        .filter(|t| ids.is_empty() || ids.contains(&t.resource_id))
        .collect();
    let (rows, next) = page(rows, r.next_token.as_deref(), r.max_results)?;
    Ok(DescribeScalableTargetsResponse {
        scalable_targets: Some(rows.into_iter().map(render_target).collect()),
        next_token: next,
    })
}

pub(crate) fn render_target(t: ScalableTargetRow) -> ScalableTarget {
    ScalableTarget {
        service_namespace: Some(ServiceNamespace::Ecs),
        resource_id: Some(t.resource_id),
        scalable_dimension: Some(ScalableDimension::EcsServiceDesiredCount),
        min_capacity: Some(t.min_capacity as i32),
        max_capacity: Some(t.max_capacity as i32),
        predicted_capacity: None,
        role_arn: t.role_arn,
        creation_time: Some(Timestamp(t.created_at)),
        suspended_state: Some(SuspendedState {
            dynamic_scaling_in_suspended: Some(t.scale_in_suspended),
            dynamic_scaling_out_suspended: Some(t.scale_out_suspended),
            scheduled_scaling_suspended: Some(t.scheduled_suspended),
        }),
        scalable_target_arn: Some(t.arn),
    }
}

/// Deletes a target with its policies and scheduled actions inside `tx`; returns the alarms to delete.
pub(crate) fn deregister_in(tx: &Tx<'_>, resource_id: &str) -> Result<Vec<String>, ControlError> {
    target_of(tx, resource_id)?;
    let mut doomed = Vec::new();
    for p in tx.scaling_policies(NAMESPACE, Some(resource_id))? {
        doomed.extend(alarms::parse(&p.alarms).into_iter().map(|a| a.name));
    }
    tx.scalable_target_delete(NAMESPACE, resource_id, DIMENSION)?;
    Ok(doomed)
}

fn deregister(
    c: &Control,
    r: DeregisterScalableTargetRequest,
) -> Result<DeregisterScalableTargetResponse, ControlError> {
    let rid = key(r.service_namespace, &r.resource_id, r.scalable_dimension)?;
    let doomed = c.tx(|tx| deregister_in(tx, &rid))?;
    alarms::delete(c, &doomed)?;
    Ok(DeregisterScalableTargetResponse {})
}

// ---- scaling policies

/// `arn:aws:autoscaling:<region>:<account>:scalingPolicy:<uuid>:resource/ecs/<resource id>:policyName/<name>`.
fn policy_arn(c: &Control, resource_id: &str, name: &str) -> String {
    format!(
        "arn:aws:autoscaling:{}:{}:scalingPolicy:{}:resource/ecs/{resource_id}:policyName/{name}",
        c.names.region,
        c.names.account,
        berth_core::ids::uuid4()
    )
}

/// The metric a target tracking configuration tracks.
pub(crate) fn tracked_metric(
    resource_id: &str,
    config: &TargetTrackingScalingPolicyConfiguration,
) -> Result<TrackedMetric, ControlError> {
    match (&config.predefined_metric_specification, &config.customized_metric_specification) {
        (Some(p), None) => {
            let kind = p.predefined_metric_type.map(|k| k.as_str()).unwrap_or_default();
            let metric = PredefinedMetric::parse(kind, p.resource_label.as_deref()).ok_or_else(|| {
                if kind == "ALBRequestCountPerTarget" {
                    invalid("ResourceLabel is required for the predefined metric type ALBRequestCountPerTarget.")
                } else {
                    invalid(format!(
                        "Unsupported predefined metric type {kind} for service namespace ecs: use ECSServiceAverageCPUUtilization, ECSServiceAverageMemoryUtilization or ALBRequestCountPerTarget."
                    ))
                }
            })?;
            if let PredefinedMetric::AlbRequestCountPerTarget { resource_label } = &metric {
                let ok = resource_label.len() <= 1023
                    && resource_label.starts_with("app/")
                    && resource_label.split('/').count() == 6
                    && resource_label.contains("/targetgroup/");
                if !ok {
                    return Err(invalid(format!(
                        "Invalid ResourceLabel {resource_label}: expected app/<load-balancer-name>/<id>/targetgroup/<target-group-name>/<id>."
                    )));
                }
            }
            Ok(metric.tracked(resource_id))
        }
        (None, Some(m)) => {
            if m.metrics.is_some() {
                return Err(invalid(
                    "Metric math (CustomizedMetricSpecification.Metrics) in target tracking is not supported by berth yet: give MetricName, Namespace, Dimensions and Statistic.",
                ));
            }
            let (Some(name), Some(ns), Some(stat)) = (&m.metric_name, &m.namespace, m.statistic) else {
                return Err(invalid(
                    "CustomizedMetricSpecification needs MetricName, Namespace and Statistic (or Metrics).",
                ));
            };
            Ok(TrackedMetric {
                namespace: ns.clone(),
                metric_name: name.clone(),
                dimensions: m
                    .dimensions
                    .iter()
                    .flatten()
                    .map(|d| {
                        berth_telemetry::Dimension::new(
                            d.name.as_deref().unwrap_or_default(),
                            d.value.as_deref().unwrap_or_default(),
                        )
                    })
                    .collect(),
                statistic: stat.as_str().to_string(),
                unit: m.unit.clone(),
            })
        }
        _ => Err(invalid(
            "A target tracking policy needs exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification.",
        )),
    }
}

/// The step policy a configuration describes (validated).
pub(crate) fn step_policy(
    config: &StepScalingPolicyConfiguration,
) -> Result<berth_telemetry::scaling::StepPolicy, ControlError> {
    use berth_telemetry::scaling::{Aggregation, Step, StepPolicy};
    let adjustment_type = match config.adjustment_type {
        Some(AdjustmentType::ChangeInCapacity) => StepAdjustmentType::ChangeInCapacity,
        Some(AdjustmentType::ExactCapacity) => StepAdjustmentType::ExactCapacity,
        Some(AdjustmentType::PercentChangeInCapacity) => StepAdjustmentType::PercentChangeInCapacity,
        None => return Err(invalid("StepScalingPolicyConfiguration.AdjustmentType is required.")),
    };
    let policy = StepPolicy {
        adjustment_type,
        steps: config
            .step_adjustments
            .iter()
            .flatten()
            .map(|s| Step {
                lower: s.metric_interval_lower_bound,
                upper: s.metric_interval_upper_bound,
                adjustment: i64::from(s.scaling_adjustment.unwrap_or(0)),
            })
            .collect(),
        aggregation: match config.metric_aggregation_type {
            Some(MetricAggregationType::Minimum) => Aggregation::Minimum,
            Some(MetricAggregationType::Maximum) => Aggregation::Maximum,
            _ => Aggregation::Average,
        },
        min_adjustment_magnitude: config.min_adjustment_magnitude.map(i64::from),
    };
    policy.validate().map_err(|e| invalid(e.message))?;
    if config.cooldown.is_some_and(|c| c < 0) {
        return Err(invalid("Cooldown must be a non-negative integer."));
    }
    Ok(policy)
}

/// The alarms a target tracking policy wants, keeping the uuids (so the names) of those it already owns.
pub(crate) fn wanted_alarms(
    c: &Control,
    policy: &ScalingPolicyRow,
    owned: &[OwnedAlarm],
) -> Result<Vec<(OwnedAlarm, berth_telemetry::scaling::AlarmSpec)>, ControlError> {
    if policy.policy_type != PolicyType::TargetTrackingScaling.as_str() {
        return Ok(Vec::new());
    }
    let config: TargetTrackingScalingPolicyConfiguration = serde_json::from_str(&policy.config)
        .map_err(|e| ControlError::Store(berth_store::StoreError::Corrupt(format!("policy config: {e}"))))?;
    let metric = tracked_metric(&policy.resource_id, &config)?;
    let uuid = |kind: &str| {
        owned.iter().find(|a| a.kind == kind).map(|a| a.uuid.clone()).unwrap_or_else(berth_core::ids::uuid4)
    };
    let (high, low) = (uuid("AlarmHigh"), uuid("AlarmLow"));
    let specs = berth_telemetry::scaling::alarms_on(
        &policy.resource_id,
        &policy.arn,
        &metric,
        config.target_value.unwrap_or_default(),
        config.disable_scale_in.unwrap_or(false),
        c.config.scaling.alarm_timing,
        &high,
        &low,
    );
    Ok(specs
        .into_iter()
        .map(|spec| {
            let kind = if spec.name.contains("-AlarmHigh-") { "AlarmHigh" } else { "AlarmLow" };
            let uuid = if kind == "AlarmHigh" { high.clone() } else { low.clone() };
            (
                OwnedAlarm {
                    name: spec.name.clone(),
                    arn: alarms::arn(c, &spec.name),
                    kind: kind.into(),
                    uuid,
                    created: false,
                },
                spec,
            )
        })
        .collect())
}

/// PutScalingPolicy inside `tx`: creates or replaces the policy. Returns the policy and the alarms it no
/// longer owns (to delete once committed); its own alarms are put by [`super::ensure_alarms`].
pub(crate) fn put_policy_in(
    c: &Control,
    tx: &Tx<'_>,
    r: &PutScalingPolicyRequest,
    t: f64,
) -> Result<(ScalingPolicyRow, Vec<String>), ControlError> {
    let rid = key(r.service_namespace, &r.resource_id, r.scalable_dimension)?;
    let name = r.policy_name.clone().unwrap_or_default();
    if name.is_empty() || name.chars().count() > 256 || name.chars().any(|ch| ch.is_control()) {
        return Err(invalid(format!("Invalid PolicyName '{name}': 1 to 256 printable characters.")));
    }
    let kind = r.policy_type.unwrap_or(PolicyType::StepScaling);
    let config = match kind {
        PolicyType::TargetTrackingScaling => {
            let Some(tt) = &r.target_tracking_scaling_policy_configuration else {
                return Err(invalid(
                    "TargetTrackingScalingPolicyConfiguration is required for a TargetTrackingScaling policy.",
                ));
            };
            if r.step_scaling_policy_configuration.is_some() {
                return Err(invalid("StepScalingPolicyConfiguration is not valid for a TargetTrackingScaling policy."));
            }
            let Some(target) = tt.target_value.filter(|v| v.is_finite()) else {
                return Err(invalid("TargetTrackingScalingPolicyConfiguration.TargetValue is required."));
            };
            if target <= 0.0 {
                return Err(invalid(format!("TargetValue {target} must be greater than 0.")));
            }
            for (what, v) in [("ScaleOutCooldown", tt.scale_out_cooldown), ("ScaleInCooldown", tt.scale_in_cooldown)] {
                if v.is_some_and(|v| v < 0) {
                    return Err(invalid(format!("{what} must be a non-negative integer.")));
                }
            }
            tracked_metric(&rid, tt)?;
            serde_json::to_string(tt)
        }
        PolicyType::StepScaling => {
            let Some(step) = &r.step_scaling_policy_configuration else {
                return Err(invalid("StepScalingPolicyConfiguration is required for a StepScaling policy."));
            };
            if r.target_tracking_scaling_policy_configuration.is_some() {
                return Err(invalid("TargetTrackingScalingPolicyConfiguration is not valid for a StepScaling policy."));
            }
            step_policy(step)?;
            serde_json::to_string(step)
        }
        PolicyType::PredictiveScaling => {
            return Err(invalid("PredictiveScaling policies are not supported by berth."));
        }
    }
    .map_err(|e| invalid(e.to_string()))?;
    target_of(tx, &rid)?;
    let existing = tx.scaling_policy_get(NAMESPACE, &rid, DIMENSION, &name)?;
    if existing.is_none() && tx.scaling_policies(NAMESPACE, Some(&rid))?.len() >= MAX_POLICIES {
        return Err(ControlError::code(
            ErrorCode::LimitExceeded,
            format!("A scalable target can have at most {MAX_POLICIES} scaling policies."),
        ));
    }
    let owned = existing.as_ref().map(|p| alarms::parse(&p.alarms)).unwrap_or_default();
    let mut row = match existing {
        Some(mut row) => {
            row.policy_type = kind.as_str().into();
            row.config = config;
            row
        }
        None => ScalingPolicyRow {
            arn: policy_arn(c, &rid, &name),
            namespace: NAMESPACE.into(),
            resource_id: rid.clone(),
            dimension: DIMENSION.into(),
            name,
            policy_type: kind.as_str().into(),
            config,
            alarms: "[]".into(),
            created_at: t,
            last_at: None,
            last_direction: None,
            last_to: None,
        },
    };
    let wanted: Vec<OwnedAlarm> = wanted_alarms(c, &row, &owned)?.into_iter().map(|(a, _)| a).collect();
    let dropped = owned.iter().filter(|o| !wanted.iter().any(|w| w.name == o.name)).map(|o| o.name.clone()).collect();
    row.alarms = alarms::to_json(&wanted);
    tx.scaling_policy_put(&row)?;
    Ok((row, dropped))
}

fn put_policy(c: &Control, r: PutScalingPolicyRequest) -> Result<PutScalingPolicyResponse, ControlError> {
    let (row, dropped) = c.tx(|tx| put_policy_in(c, tx, &r, now()))?;
    alarms::delete(c, &dropped)?;
    super::ensure_alarms(c, &row.arn)?;
    Ok(PutScalingPolicyResponse { policy_arn: Some(row.arn.clone()), alarms: Some(render_alarms(&row)) })
}

fn render_alarms(p: &ScalingPolicyRow) -> Vec<Alarm> {
    alarms::parse(&p.alarms).into_iter().map(|a| Alarm { alarm_name: Some(a.name), alarm_arn: Some(a.arn) }).collect()
}

pub(crate) fn render_policy(p: &ScalingPolicyRow) -> ScalingPolicy {
    let kind = PolicyType::parse(&p.policy_type);
    ScalingPolicy {
        policy_arn: Some(p.arn.clone()),
        policy_name: Some(p.name.clone()),
        service_namespace: Some(ServiceNamespace::Ecs),
        resource_id: Some(p.resource_id.clone()),
        scalable_dimension: Some(ScalableDimension::EcsServiceDesiredCount),
        policy_type: kind,
        step_scaling_policy_configuration: (kind == Some(PolicyType::StepScaling))
            .then(|| serde_json::from_str(&p.config).ok())
            .flatten(),
        target_tracking_scaling_policy_configuration: (kind == Some(PolicyType::TargetTrackingScaling))
            .then(|| serde_json::from_str(&p.config).ok())
            .flatten(),
        predictive_scaling_policy_configuration: None,
        alarms: Some(render_alarms(p)),
        creation_time: Some(Timestamp(p.created_at)),
    }
}

fn describe_policies(
    c: &Control,
    r: DescribeScalingPoliciesRequest,
) -> Result<DescribeScalingPoliciesResponse, ControlError> {
    namespace(r.service_namespace)?;
    dimension(r.scalable_dimension)?;
    if let Some(rid) = &r.resource_id {
        resource(rid)?;
    }
    let names = r.policy_names.clone().unwrap_or_default();
    let rows: Vec<ScalingPolicyRow> = c
        .read(|tx| Ok(tx.scaling_policies(NAMESPACE, r.resource_id.as_deref())?))?
        .into_iter()
        .filter(|p| names.is_empty() || names.contains(&p.name))
        .collect();
    let (rows, next) = page(rows, r.next_token.as_deref(), r.max_results)?;
    Ok(DescribeScalingPoliciesResponse {
        scaling_policies: Some(rows.iter().map(render_policy).collect()),
        next_token: next,
    })
}

/// DeleteScalingPolicy inside `tx`; returns the alarms to delete once committed.
pub(crate) fn delete_policy_in(tx: &Tx<'_>, resource_id: &str, name: &str) -> Result<Vec<String>, ControlError> {
    let Some(p) = tx.scaling_policy_get(NAMESPACE, resource_id, DIMENSION, name)? else {
        return Err(ControlError::code(
            ErrorCode::ObjectNotFound,
            format!(
                "No scaling policy found for service namespace: ecs, resource ID: {resource_id}, scalable dimension: {DIMENSION}, policy name: {name}"
            ),
        ));
    };
    tx.scaling_policy_delete(&p.arn)?;
    Ok(alarms::parse(&p.alarms).into_iter().map(|a| a.name).collect())
}

fn delete_policy(c: &Control, r: DeleteScalingPolicyRequest) -> Result<DeleteScalingPolicyResponse, ControlError> {
    let rid = key(r.service_namespace, &r.resource_id, r.scalable_dimension)?;
    let name = r.policy_name.clone().unwrap_or_default();
    let doomed = c.tx(|tx| delete_policy_in(tx, &rid, &name))?;
    alarms::delete(c, &doomed)?;
    Ok(DeleteScalingPolicyResponse {})
}

// ---- activities

fn describe_activities(
    c: &Control,
    r: DescribeScalingActivitiesRequest,
) -> Result<DescribeScalingActivitiesResponse, ControlError> {
    namespace(r.service_namespace)?;
    dimension(r.scalable_dimension)?;
    if let Some(rid) = &r.resource_id {
        resource(rid)?;
    }
    let with_not_scaled = r.include_not_scaled_activities.unwrap_or(false);
    let rows: Vec<ScalingActivityRow> = c
        .read(|tx| Ok(tx.scaling_activities(NAMESPACE, r.resource_id.as_deref())?))?
        .into_iter()
        .filter(|a| with_not_scaled || a.not_scaled.is_none())
        .collect();
    let (rows, next) = page(rows, r.next_token.as_deref(), r.max_results)?;
    Ok(DescribeScalingActivitiesResponse {
        scaling_activities: Some(
            rows.into_iter()
                .map(|a| ScalingActivity {
                    activity_id: Some(a.id),
                    service_namespace: Some(ServiceNamespace::Ecs),
                    resource_id: Some(a.resource_id),
                    scalable_dimension: Some(ScalableDimension::EcsServiceDesiredCount),
                    description: Some(a.description),
                    cause: Some(a.cause),
                    start_time: Some(Timestamp(a.start_time)),
                    end_time: a.end_time.map(Timestamp),
                    status_code: ScalingActivityStatusCode::parse(&a.status),
                    status_message: a.status_message,
                    details: None,
                    not_scaled_reasons: a.not_scaled.as_deref().and_then(|j| serde_json::from_str(j).ok()),
                })
                .collect(),
        ),
        next_token: next,
    })
}

// ---- scheduled actions

fn put_scheduled(c: &Control, r: PutScheduledActionRequest) -> Result<PutScheduledActionResponse, ControlError> {
    let rid = key(r.service_namespace, &r.resource_id, r.scalable_dimension)?;
    let name = r.scheduled_action_name.clone().unwrap_or_default();
    if name.is_empty() || name.chars().count() > 256 || name.contains([':', '/', '|']) {
        return Err(invalid(format!(
            "Invalid ScheduledActionName '{name}': 1 to 256 characters, without ':', '/' or '|'."
        )));
    }
    let t = now();
    c.tx(|tx| {
        target_of(tx, &rid)?;
        let existing = tx.scheduled_action_get(NAMESPACE, &rid, DIMENSION, &name)?;
        let schedule = r.schedule.clone().or_else(|| existing.as_ref().map(|e| e.schedule.clone()));
        let Some(schedule) = schedule else {
            return Err(invalid("Schedule is required for a new scheduled action."));
        };
        let timezone = r.timezone.clone().or_else(|| existing.as_ref().and_then(|e| e.timezone.clone()));
        berth_telemetry::schedule::Schedule::parse(&schedule, timezone.as_deref()).map_err(|e| invalid(e.message))?;
        let action = r.scalable_target_action.clone();
        let min = action.as_ref().and_then(|a| a.min_capacity).map(i64::from);
        let max = action.as_ref().and_then(|a| a.max_capacity).map(i64::from);
        let (min, max) = match (&existing, action.is_some()) {
            (Some(e), false) => (e.min_capacity, e.max_capacity),
            _ => (min, max),
        };
        if min.is_none() && max.is_none() {
            return Err(invalid("ScalableTargetAction needs MinCapacity or MaxCapacity."));
        }
        if min.is_some_and(|m| m < 0) || max.is_some_and(|m| m < 0) {
            return Err(invalid("MinCapacity and MaxCapacity must be non-negative integers."));
        }
        if let (Some(a), Some(b)) = (min, max)
            && a > b
        {
            return Err(invalid(format!("Minimum capacity ({a}) cannot be greater than maximum capacity ({b}).")));
        }
        let start = r.start_time.map(|s| s.0).or_else(|| existing.as_ref().and_then(|e| e.start_time));
        let end = r.end_time.map(|s| s.0).or_else(|| existing.as_ref().and_then(|e| e.end_time));
        if let (Some(s), Some(e)) = (start, end)
            && s >= e
        {
            return Err(invalid("StartTime must be before EndTime."));
        }
        if existing.is_none() && tx.scheduled_actions(NAMESPACE, Some(&rid))?.len() >= MAX_SCHEDULED {
            return Err(ControlError::code(
                ErrorCode::LimitExceeded,
                format!("A scalable target can have at most {MAX_SCHEDULED} scheduled actions."),
            ));
        }
        let arn = existing.as_ref().map(|e| e.arn.clone()).unwrap_or_else(|| {
            format!(
                "arn:aws:autoscaling:{}:{}:scheduledAction:{}:resource/ecs/{rid}:scheduledActionName/{name}",
                c.names.region,
                c.names.account,
                berth_core::ids::uuid4()
            )
        });
        tx.scheduled_action_put(&ScheduledActionRow {
            arn,
            namespace: NAMESPACE.into(),
            resource_id: rid.clone(),
            dimension: DIMENSION.into(),
            name: name.clone(),
            schedule,
            timezone,
            start_time: start,
            end_time: end,
            min_capacity: min,
            max_capacity: max,
            created_at: existing.as_ref().map_or(t, |e| e.created_at),
            // A changed action runs afresh from now.
            last_run: Some(t),
        })?;
        Ok(())
    })?;
    c.wake();
    Ok(PutScheduledActionResponse {})
}

fn describe_scheduled(
    c: &Control,
    r: DescribeScheduledActionsRequest,
) -> Result<DescribeScheduledActionsResponse, ControlError> {
    namespace(r.service_namespace)?;
    dimension(r.scalable_dimension)?;
    if let Some(rid) = &r.resource_id {
        resource(rid)?;
    }
    let names = r.scheduled_action_names.clone().unwrap_or_default();
    let rows: Vec<ScheduledActionRow> = c
        .read(|tx| Ok(tx.scheduled_actions(NAMESPACE, r.resource_id.as_deref())?))?
        .into_iter()
        .filter(|a| names.is_empty() || names.contains(&a.name))
        .collect();
    let (rows, next) = page(rows, r.next_token.as_deref(), r.max_results)?;
    Ok(DescribeScheduledActionsResponse {
        scheduled_actions: Some(
            rows.into_iter()
                .map(|a| ScheduledAction {
                    scheduled_action_name: Some(a.name),
                    scheduled_action_arn: Some(a.arn),
                    service_namespace: Some(ServiceNamespace::Ecs),
                    schedule: Some(a.schedule),
                    timezone: a.timezone,
                    resource_id: Some(a.resource_id),
                    scalable_dimension: Some(ScalableDimension::EcsServiceDesiredCount),
                    start_time: a.start_time.map(Timestamp),
                    end_time: a.end_time.map(Timestamp),
                    scalable_target_action: Some(ScalableTargetAction {
                        min_capacity: a.min_capacity.map(|v| v as i32),
                        max_capacity: a.max_capacity.map(|v| v as i32),
                    }),
                    creation_time: Some(Timestamp(a.created_at)),
                })
                .collect(),
        ),
        next_token: next,
    })
}

fn delete_scheduled(
    c: &Control,
    r: DeleteScheduledActionRequest,
) -> Result<DeleteScheduledActionResponse, ControlError> {
    let rid = key(r.service_namespace, &r.resource_id, r.scalable_dimension)?;
    let name = r.scheduled_action_name.clone().unwrap_or_default();
    c.tx(|tx| match tx.scheduled_action_get(NAMESPACE, &rid, DIMENSION, &name)? {
        Some(a) => Ok(tx.scheduled_action_delete(&a.arn)?),
        None => Err(ControlError::code(
            ErrorCode::ObjectNotFound,
            format!("No scheduled action found for service namespace: ecs, resource ID: {rid}, scalable dimension: {DIMENSION}, scheduled action name: {name}"),
        )),
    })?;
    Ok(DeleteScheduledActionResponse {})
}

// ---- tags (on scalable targets, the only taggable resource)

fn tagged_target(tx: &Tx<'_>, arn: &str) -> Result<ScalableTargetRow, ControlError> {
    if !arn.starts_with("arn:aws:application-autoscaling:") || !arn.contains(":scalable-target/") {
        return Err(invalid(format!("Invalid ResourceARN {arn}: expected a scalable target's ARN.")));
    }
    tx.scalable_target_by_arn(arn)?.ok_or_else(|| {
        ControlError::code(ErrorCode::ResourceNotFound, format!("No scalable target found for ARN {arn}."))
    })
}

fn tag(c: &Control, r: TagResourceRequest) -> Result<TagResourceResponse, ControlError> {
    let arn = r.resource_arn.clone().unwrap_or_default();
    let tags = tag_pairs(&r.tags.clone().unwrap_or_default())?;
    c.tx(|tx| {
        tagged_target(tx, &arn)?;
        let mut keys: Vec<String> = tx.tags_get(&arn)?.into_iter().map(|(k, _)| k).collect();
        keys.extend(tags.iter().map(|(k, _)| k.clone()));
        keys.sort();
        keys.dedup();
        if keys.len() > 50 {
            return Err(ControlError::code(ErrorCode::LogsTooManyTags, "A scalable target can have at most 50 tags."));
        }
        Ok(tx.tags_put(&arn, &tags)?)
    })?;
    Ok(TagResourceResponse {})
}

fn untag(c: &Control, r: UntagResourceRequest) -> Result<UntagResourceResponse, ControlError> {
    let arn = r.resource_arn.clone().unwrap_or_default();
    let keys = r.tag_keys.clone().unwrap_or_default();
    c.tx(|tx| {
        tagged_target(tx, &arn)?;
        Ok(tx.tags_remove(&arn, &keys)?)
    })?;
    Ok(UntagResourceResponse {})
}

fn list_tags(c: &Control, r: ListTagsForResourceRequest) -> Result<ListTagsForResourceResponse, ControlError> {
    let arn = r.resource_arn.clone().unwrap_or_default();
    let tags = c.read(|tx| {
        tagged_target(tx, &arn).map_err(|e| e.respelled(ErrorCode::Validation, ErrorCode::ResourceNotFound))?;
        Ok(tx.tags_get(&arn)?)
    })?;
    Ok(ListTagsForResourceResponse { tags: Some(tags.into_iter().collect()) })
}
