//! Target tracking (reference §6.3–6.6): the two alarms a policy creates ([`alarms`]) and the scaling decision
//! when one of them fires ([`decide`]).
//!
//! The capacity formula is not published (§6.5, **(inference)**): berth computes `ceil(running × metric / target)`
//! in both directions, from the running count (not the desired count, which prevents runaway scaling). Rounding up
//! never adds too little and never removes too much. Scale-out takes effect at once, and a computed capacity above
//! the current desired count is always applied (a larger scale-out is allowed during the scale-out cooldown, and
//! capacity added earlier already counts, because the comparison is with the desired count). Scale-in happens only
//! when AlarmLow fires, never when `DisableScaleIn`, dynamic scale-in is suspended or a deployment is in progress,
//! and not within the scale-in cooldown of the last scale-in (a scale-out cancels it). Never outside [min, max];
//! a desired count below min is raised to min. No data → no scaling in either direction.

use crate::alarm::{Comparison, TreatMissingData};
use crate::metric::Dimension;

/// The predefined metrics ECS services can track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PredefinedMetric {
    EcsServiceAverageCpuUtilization,
    EcsServiceAverageMemoryUtilization,
    /// With the `ResourceLabel` `app/<lb>/<id>/targetgroup/<tg>/<id>`.
    AlbRequestCountPerTarget {
        resource_label: String,
    },
    EcsServiceAverageCpuUtilizationHighResolution,
    EcsServiceAverageMemoryUtilizationHighResolution,
}

impl PredefinedMetric {
    pub fn parse(kind: &str, resource_label: Option<&str>) -> Option<PredefinedMetric> {
        Some(match kind {
            "ECSServiceAverageCPUUtilization" => PredefinedMetric::EcsServiceAverageCpuUtilization,
            "ECSServiceAverageMemoryUtilization" => PredefinedMetric::EcsServiceAverageMemoryUtilization,
            "ECSServiceAverageCPUUtilizationHighResolution" => {
                PredefinedMetric::EcsServiceAverageCpuUtilizationHighResolution
            }
            "ECSServiceAverageMemoryUtilizationHighResolution" => {
                PredefinedMetric::EcsServiceAverageMemoryUtilizationHighResolution
            }
            "ALBRequestCountPerTarget" => {
                PredefinedMetric::AlbRequestCountPerTarget { resource_label: resource_label?.to_string() }
            }
            _ => return None,
        })
    }
}

/// Period and datapoints of the two alarms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmTiming {
    pub period: i64,
    /// AlarmHigh: N = M.
    pub high_datapoints: u32,
    /// AlarmLow: N = M.
    pub low_datapoints: u32,
}

impl AlarmTiming {
    /// What AWS creates (live-account exports, §6.4): 60 s, 3 of 3 high, 15 of 15 low.
    pub const AWS: AlarmTiming = AlarmTiming { period: 60, high_datapoints: 3, low_datapoints: 15 };
    /// berth's default: 10-second high-resolution periods; one breaching period scales out (answered within
    /// ~10 s), 30 periods (5 minutes) below 90% of the target scale in.
    pub const BERTH: AlarmTiming = AlarmTiming { period: 10, high_datapoints: 1, low_datapoints: 30 };
}

/// One alarm as PutMetricAlarm would receive it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSpec {
    pub name: String,
    pub description: String,
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<Dimension>,
    pub statistic: String,
    pub unit: Option<String>,
    pub comparison: Comparison,
    pub threshold: f64,
    pub period: i64,
    pub evaluation_periods: u32,
    pub datapoints_to_alarm: u32,
    pub treat_missing_data: TreatMissingData,
    pub alarm_actions: Vec<String>,
}

/// The metric a target tracking policy tracks, as its alarms watch it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedMetric {
    pub namespace: String,
    pub metric_name: String,
    pub dimensions: Vec<Dimension>,
    pub statistic: String,
    pub unit: Option<String>,
}

impl TrackedMetric {
    /// What one datapoint of a `period`-second alarm on this metric counts for in the policy's target's unit:
    /// counts (statistic `Sum`, such as RequestCountPerTarget, whose target is per target **per minute**, §6.3)
    /// scale by `60 / period`, so a 10-second alarm compares its sums with a sixth of the target; averages,
    /// minima and maxima (utilizations) do not scale.
    pub fn per_minute(&self, period: i64) -> f64 {
        if self.statistic == "Sum" && period > 0 { 60.0 / period as f64 } else { 1.0 }
    }
}

impl PredefinedMetric {
    /// The metric a predefined type stands for on the ECS service `service/<cluster>/<service>`: `AWS/ECS`
    /// CPU or memory utilization (Average, Percent; dimensions ClusterName, ServiceName), or `AWS/ApplicationELB`
    /// RequestCountPerTarget (Sum; dimensions LoadBalancer and TargetGroup from the resource label).
    pub fn tracked(&self, resource_id: &str) -> TrackedMetric {
        let mut parts = resource_id.splitn(3, '/');
        let (_, cluster, service) = (parts.next(), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let ecs = |name: &str| TrackedMetric {
            namespace: "AWS/ECS".to_string(),
            metric_name: name.to_string(),
            dimensions: vec![Dimension::new("ClusterName", cluster), Dimension::new("ServiceName", service)],
            statistic: "Average".to_string(),
            unit: Some("Percent".to_string()),
        };
        match self {
            PredefinedMetric::EcsServiceAverageCpuUtilization
            | PredefinedMetric::EcsServiceAverageCpuUtilizationHighResolution => ecs("CPUUtilization"),
            PredefinedMetric::EcsServiceAverageMemoryUtilization
            | PredefinedMetric::EcsServiceAverageMemoryUtilizationHighResolution => ecs("MemoryUtilization"),
            PredefinedMetric::AlbRequestCountPerTarget { resource_label } => {
                let (lb, tg) = match resource_label.find("/targetgroup/") {
                    Some(i) => (&resource_label[..i], &resource_label[i + 1..]),
                    None => (resource_label.as_str(), ""),
                };
                TrackedMetric {
                    namespace: "AWS/ApplicationELB".to_string(),
                    metric_name: "RequestCountPerTarget".to_string(),
                    dimensions: vec![Dimension::new("LoadBalancer", lb), Dimension::new("TargetGroup", tg)],
                    statistic: "Sum".to_string(),
                    unit: None,
                }
            }
        }
    }
}

/// The alarms a target tracking policy on an ECS service creates: AlarmHigh (> target) and AlarmLow
/// (< 0.9 × target, only without `DisableScaleIn`), named `TargetTracking-<resourceId>-AlarmHigh-<uuid>`.
/// `cluster`/`service` come from the resource id `service/<cluster>/<service>`; the uuids are the caller's.
#[allow(clippy::too_many_arguments)]
pub fn alarms(
    resource_id: &str,
    policy_arn: &str,
    metric: &PredefinedMetric,
    target_value: f64,
    disable_scale_in: bool,
    timing: AlarmTiming,
    uuid_high: &str,
    uuid_low: &str,
) -> Vec<AlarmSpec> {
    let tracked = metric.tracked(resource_id);
    alarms_on(resource_id, policy_arn, &tracked, target_value, disable_scale_in, timing, uuid_high, uuid_low)
}

/// [`alarms`] on any metric (a customized metric specification's).
#[allow(clippy::too_many_arguments)]
pub fn alarms_on(
    resource_id: &str,
    policy_arn: &str,
    metric: &TrackedMetric,
    target_value: f64,
    disable_scale_in: bool,
    timing: AlarmTiming,
    uuid_high: &str,
    uuid_low: &str,
) -> Vec<AlarmSpec> {
    // The thresholds in the alarm's own unit (a 10-second sum of a per-minute target is a sixth of it).
    let target_value = target_value / metric.per_minute(timing.period);
    let one = |which: &str, uuid: &str, comparison, threshold, n| AlarmSpec {
        name: format!("TargetTracking-{resource_id}-{which}-{uuid}"),
        description: format!("DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {policy_arn}."),
        namespace: metric.namespace.clone(),
        metric_name: metric.metric_name.clone(),
        dimensions: metric.dimensions.clone(),
        statistic: metric.statistic.clone(),
        unit: metric.unit.clone(),
        comparison,
        threshold,
        period: timing.period,
        evaluation_periods: n,
        datapoints_to_alarm: n,
        treat_missing_data: TreatMissingData::Missing,
        alarm_actions: vec![policy_arn.to_string()],
    };
    let mut out =
        vec![one("AlarmHigh", uuid_high, Comparison::GreaterThanThreshold, target_value, timing.high_datapoints)];
    if !disable_scale_in {
        out.push(one("AlarmLow", uuid_low, Comparison::LessThanThreshold, 0.9 * target_value, timing.low_datapoints));
    }
    out
}

/// A target tracking policy's scaling parameters and the target's bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScalingConfig {
    pub target_value: f64,
    pub min_capacity: u32,
    pub max_capacity: u32,
    pub scale_out_cooldown: i64,
    pub scale_in_cooldown: i64,
    pub disable_scale_in: bool,
    pub scale_in_suspended: bool,
    pub scale_out_suspended: bool,
}

impl ScalingConfig {
    /// A target tracking policy as ECS Express creates it: the target, min/max (Express: 1 and 20), the ECS
    /// default cooldowns (300 s each, §6.3), scale-in enabled, nothing suspended.
    pub fn new(target_value: f64, min_capacity: u32, max_capacity: u32) -> Self {
        ScalingConfig {
            target_value,
            min_capacity,
            max_capacity,
            scale_out_cooldown: 300,
            scale_in_cooldown: 300,
            disable_scale_in: false,
            scale_in_suspended: false,
            scale_out_suspended: false,
        }
    }
}

/// The service as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub running: u32,
    pub desired: u32,
    /// An ECS deployment is in progress (scale-in is turned off meanwhile).
    pub deploying: bool,
}

/// Which alarm fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    High,
    Low,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Out,
    In,
}

/// The last policy-driven scaling activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    pub at: i64,
    pub direction: Direction,
    pub to: u32,
}

/// Why nothing was scaled (AAS's `NotScaledReasons` codes, plus berth's own for the other cases).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotScaled {
    AlreadyAtMaxCapacity,
    AlreadyAtMinCapacity,
    AlreadyAtDesiredCapacity,
    /// No datapoint: no scaling in either direction.
    InsufficientData,
    ScaleInDisabled,
    Suspended,
    DeploymentInProgress,
    Cooldown,
}

impl NotScaled {
    pub fn code(self) -> &'static str {
        match self {
            NotScaled::AlreadyAtMaxCapacity => "AlreadyAtMaxCapacity",
            NotScaled::AlreadyAtMinCapacity => "AlreadyAtMinCapacity",
            NotScaled::AlreadyAtDesiredCapacity => "AlreadyAtDesiredCapacity",
            NotScaled::InsufficientData => "InsufficientData",
            NotScaled::ScaleInDisabled => "ScaleInDisabled",
            NotScaled::Suspended => "Suspended",
            NotScaled::DeploymentInProgress => "DeploymentInProgress",
            NotScaled::Cooldown => "Cooldown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Scale { to: u32, direction: Direction },
    NotScaled(NotScaled),
}

/// The scaling decision when `trigger`'s alarm is in ALARM with `metric` as its latest datapoint (`None` when
/// there is none), at `now`.
pub fn decide(
    config: &ScalingConfig,
    current: Capacity,
    trigger: Trigger,
    metric: Option<f64>,
    now: i64,
    last: Option<Activity>,
) -> Decision {
    let (min, max) = (config.min_capacity, config.max_capacity.max(config.min_capacity));
    let Some(metric) = metric.filter(|m| m.is_finite()) else {
        return Decision::NotScaled(NotScaled::InsufficientData);
    };
    let target = config.target_value;
    let wanted = if target <= 0.0 {
        max
    } else if current.running == 0 {
        // Scale from zero: one datapoint showing demand scales out by the minimum amount.
        if metric > 0.0 { 1 } else { 0 }
    } else {
        let raw = f64::from(current.running) * metric / target;
        // Rounded up, with a tolerance so that 3 × 60 / 60 stays 3.
        let up = (raw - 1e-9).ceil().max(0.0);
        if up >= f64::from(u32::MAX) { u32::MAX } else { up as u32 }
    };
    let to = wanted.clamp(min, max);
    match trigger {
        Trigger::High => {
            if config.scale_out_suspended {
                return Decision::NotScaled(NotScaled::Suspended);
            }
            let to = to.max(current.desired.min(max)).max(min);
            if to > current.desired {
                if let Some(a) = last
                    && a.direction == Direction::Out
                    && now < a.at + config.scale_out_cooldown
                    && to <= a.to
                {
                    return Decision::NotScaled(NotScaled::Cooldown);
                }
                return Decision::Scale { to, direction: Direction::Out };
            }
            if current.desired >= max {
                Decision::NotScaled(NotScaled::AlreadyAtMaxCapacity)
            } else {
                Decision::NotScaled(NotScaled::AlreadyAtDesiredCapacity)
            }
        }
        Trigger::Low => {
            if current.desired < min {
                return Decision::Scale { to: min, direction: Direction::Out };
            }
            if config.disable_scale_in {
                return Decision::NotScaled(NotScaled::ScaleInDisabled);
            }
            if config.scale_in_suspended {
                return Decision::NotScaled(NotScaled::Suspended);
            }
            if current.deploying {
                return Decision::NotScaled(NotScaled::DeploymentInProgress);
            }
            if let Some(a) = last
                && a.direction == Direction::In
                && now < a.at + config.scale_in_cooldown
            {
                return Decision::NotScaled(NotScaled::Cooldown);
            }
            if to < current.desired {
                return Decision::Scale { to, direction: Direction::In };
            }
            if current.desired <= min {
                Decision::NotScaled(NotScaled::AlreadyAtMinCapacity)
            } else {
                Decision::NotScaled(NotScaled::AlreadyAtDesiredCapacity)
            }
        }
    }
}

/// Step scaling's `AdjustmentType` (reference §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdjustmentType {
    ChangeInCapacity,
    ExactCapacity,
    PercentChangeInCapacity,
}

/// One `StepAdjustment`: bounds relative to the alarm threshold (`None` = −∞ / +∞).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step {
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub adjustment: i64,
}

/// `MetricAggregationType`: how the alarm's recent datapoints become one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aggregation {
    #[default]
    Average,
    Minimum,
    Maximum,
}

/// A step scaling policy's configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPolicy {
    pub adjustment_type: AdjustmentType,
    pub steps: Vec<Step>,
    pub aggregation: Aggregation,
    /// PercentChangeInCapacity only.
    pub min_adjustment_magnitude: Option<i64>,
}

/// Most steps in one policy (reference §6.10).
pub const MAX_STEPS: usize = 20;

fn validation(message: impl Into<String>) -> crate::error::Invalid {
    crate::error::Invalid { code: berth_core::ErrorCode::Validation, message: message.into() }
}

impl StepPolicy {
    /// PutScalingPolicy's rules for steps (§6.7): 1..=20 steps, each lower < upper and not both null, contiguous
    /// (no overlap, no gap) once sorted, a null upper bound on the last step when any bound is positive and a null
    /// lower bound on the first when any is negative; `MinAdjustmentMagnitude` only with percent changes.
    pub fn validate(&self) -> Result<(), crate::error::Invalid> {
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(validation(format!("A step scaling policy needs 1 to {MAX_STEPS} step adjustments.")));
        }
        let mut steps = self.steps.clone();
        steps.sort_by(|a, b| a.lower.unwrap_or(f64::NEG_INFINITY).total_cmp(&b.lower.unwrap_or(f64::NEG_INFINITY)));
        for st in &steps {
            if st.lower.is_none() && st.upper.is_none() {
                return Err(validation("A step adjustment cannot have both bounds null."));
            }
            if let (Some(l), Some(u)) = (st.lower, st.upper)
                && l >= u
            {
                return Err(validation("The lower bound of a step adjustment must be less than its upper bound."));
            }
        }
        for w in steps.windows(2) {
            if w[0].upper != w[1].lower {
                return Err(validation("Step adjustments must neither overlap nor leave gaps between their bounds."));
            }
        }
        let bounds: Vec<f64> = steps.iter().flat_map(|s| [s.lower, s.upper]).flatten().collect();
        let (first, last) = (steps[0], steps[steps.len() - 1]);
        if bounds.iter().any(|b| *b > 0.0) && last.upper.is_some() {
            return Err(validation("The step adjustment with the highest bounds must have a null upper bound."));
        }
        if bounds.iter().any(|b| *b < 0.0) && first.lower.is_some() {
            return Err(validation("The step adjustment with the lowest bounds must have a null lower bound."));
        }
        if self.min_adjustment_magnitude.is_some() && self.adjustment_type != AdjustmentType::PercentChangeInCapacity {
            return Err(validation("MinAdjustmentMagnitude is only valid with PercentChangeInCapacity."));
        }
        Ok(())
    }

    /// The new capacity when the policy's alarm fires with `recent` datapoints and `threshold` (what
    /// StateReasonData carries), from `current` capacity, clamped to [min, max]. `Err` carries the alarm-history
    /// text when no step matches.
    pub fn apply(&self, recent: &[f64], threshold: f64, current: u32, min: u32, max: u32) -> Result<u32, String> {
        let value = match self.aggregation {
            _ if recent.is_empty() => f64::NAN,
            Aggregation::Average => recent.iter().sum::<f64>() / recent.len() as f64,
            Aggregation::Minimum => recent.iter().copied().fold(f64::INFINITY, f64::min),
            Aggregation::Maximum => recent.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        };
        let d = value - threshold;
        let above = d >= 0.0;
        let step = self.steps.iter().find(|s| {
            let lo = s.lower.is_none_or(|l| if above { d >= l } else { d > l });
            let hi = s.upper.is_none_or(|u| if above { d < u } else { d <= u });
            lo && hi
        });
        let Some(step) = step.filter(|_| value.is_finite()) else {
            return Err(format!(
                "No step adjustment found for metric value [{}] and breach threshold {}",
                recent.iter().map(|v| crate::metric::java_double(*v)).collect::<Vec<_>>().join(", "),
                crate::metric::java_double(threshold)
            ));
        };
        let cur = i64::from(current);
        let target = match self.adjustment_type {
            AdjustmentType::ChangeInCapacity => cur + step.adjustment,
            AdjustmentType::ExactCapacity => step.adjustment,
            AdjustmentType::PercentChangeInCapacity => {
                let raw = cur as f64 * step.adjustment as f64 / 100.0;
                // > 1 rounds down, 0..1 → 1, −1..0 → −1, < −1 rounds toward zero.
                let mut change = if raw > 1.0 {
                    raw.floor() as i64
                } else if raw > 0.0 {
                    1
                } else if raw < -1.0 {
                    raw.ceil() as i64
                } else if raw < 0.0 {
                    -1
                } else {
                    0
                };
                if let Some(m) = self.min_adjustment_magnitude
                    && change != 0
                    && change.abs() < m
                {
                    change = m * change.signum();
                }
                cur + change
            }
        };
        Ok(target.clamp(i64::from(min), i64::from(max.max(min))) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarms_as_aws_creates_them() {
        let arn = "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:u:resource/ecs/service/default/web:policyName/webCPU";
        let a = alarms(
            "service/default/web",
            arn,
            &PredefinedMetric::EcsServiceAverageCpuUtilization,
            60.0,
            false,
            AlarmTiming::AWS,
            "h-1",
            "l-2",
        );
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].name, "TargetTracking-service/default/web-AlarmHigh-h-1");
        assert_eq!(a[1].name, "TargetTracking-service/default/web-AlarmLow-l-2");
        assert_eq!(a[0].description, format!("DO NOT EDIT OR DELETE. For TargetTrackingScaling policy {arn}."));
        assert_eq!((a[0].namespace.as_str(), a[0].metric_name.as_str()), ("AWS/ECS", "CPUUtilization"));
        assert_eq!(
            a[0].dimensions,
            vec![Dimension::new("ClusterName", "default"), Dimension::new("ServiceName", "web")]
        );
        assert_eq!((a[0].statistic.as_str(), a[0].unit.as_deref()), ("Average", Some("Percent")));
        assert_eq!((a[0].comparison, a[0].threshold), (Comparison::GreaterThanThreshold, 60.0));
        assert_eq!((a[1].comparison, a[1].threshold), (Comparison::LessThanThreshold, 54.0));
        assert_eq!((a[0].period, a[0].evaluation_periods, a[0].datapoints_to_alarm), (60, 3, 3));
        assert_eq!((a[1].period, a[1].evaluation_periods, a[1].datapoints_to_alarm), (60, 15, 15));
        assert_eq!(a[0].alarm_actions, vec![arn.to_string()]);
        // §6.4's thresholds: 70→63, 80→72, 6000→5400, 1500→1350.
        for (t, low) in [(70.0, 63.0), (80.0, 72.0), (6000.0, 5400.0), (1500.0, 1350.0)] {
            let a = alarms(
                "service/c/s",
                arn,
                &PredefinedMetric::EcsServiceAverageMemoryUtilization,
                t,
                false,
                AlarmTiming::BERTH,
                "a",
                "b",
            );
            assert!((a[1].threshold - low).abs() < 1e-9, "{t}");
            assert_eq!(a[0].metric_name, "MemoryUtilization");
            assert_eq!((a[0].period, a[0].evaluation_periods, a[1].evaluation_periods), (10, 1, 30));
        }
        let alb = PredefinedMetric::parse(
            "ALBRequestCountPerTarget",
            Some("app/my-alb/778d41231b141a0f/targetgroup/my-alb-target-group/943f017f100becff"),
        )
        .expect("known");
        let a = alarms("service/c/s", arn, &alb, 1000.0, true, AlarmTiming::AWS, "a", "b");
        assert_eq!(a.len(), 1, "DisableScaleIn: no AlarmLow");
        assert_eq!(a[0].threshold, 1000.0, "60-second sums are per minute already");
        // 10-second sums of a per-minute target: a sixth of it; utilizations are not scaled.
        let fast = alarms("service/c/s", arn, &alb, 600.0, false, AlarmTiming::BERTH, "a", "b");
        assert_eq!((fast[0].threshold, fast[1].threshold), (100.0, 90.0));
        assert_eq!(alb.tracked("service/c/s").per_minute(10), 6.0);
        assert_eq!(PredefinedMetric::EcsServiceAverageCpuUtilization.tracked("service/c/s").per_minute(10), 1.0);
        assert_eq!(a[0].namespace, "AWS/ApplicationELB");
        assert_eq!(
            a[0].dimensions,
            vec![
                Dimension::new("LoadBalancer", "app/my-alb/778d41231b141a0f"),
                Dimension::new("TargetGroup", "targetgroup/my-alb-target-group/943f017f100becff")
            ]
        );
        assert_eq!((a[0].statistic.as_str(), a[0].unit.as_deref()), ("Sum", None));
        assert_eq!(PredefinedMetric::parse("ALBRequestCountPerTarget", None), None, "needs a resource label");
    }

    #[test]
    fn step_scaling_table() {
        let pct = |steps: Vec<Step>| StepPolicy {
            adjustment_type: AdjustmentType::PercentChangeInCapacity,
            steps,
            aggregation: Aggregation::Average,
            min_adjustment_magnitude: None,
        };
        let st = |lower, upper, adjustment| Step { lower, upper, adjustment };
        // §6.7's worked example: current 10, threshold 50, +10% for [10, 20), +30% for [20, ∞).
        let example = pct(vec![st(Some(0.0), Some(10.0), 0), st(Some(10.0), Some(20.0), 10), st(Some(20.0), None, 30)]);
        assert_eq!(example.validate(), Ok(()));
        assert_eq!(example.apply(&[60.0], 50.0, 10, 1, 100), Ok(11));
        assert_eq!(example.apply(&[70.0], 50.0, 11, 1, 100), Ok(14), "30% of 11 = 3.3 rounds down");
        assert_eq!(example.apply(&[65.0, 75.0], 50.0, 10, 1, 100), Ok(13), "average of the recent datapoints: 70");
        assert_eq!(example.apply(&[70.0], 50.0, 10, 1, 12), Ok(12), "clamped to max");
        // MinAdjustmentMagnitude: 25% of 4 = 1, but at least 2.
        let mut mam = pct(vec![st(Some(0.0), None, 25)]);
        mam.min_adjustment_magnitude = Some(2);
        assert_eq!(mam.apply(&[51.0], 50.0, 4, 1, 100), Ok(6));
        // Percent rounding: 0..1 → 1, −1..0 → −1, < −1 toward zero.
        assert_eq!(pct(vec![st(Some(0.0), None, 10)]).apply(&[51.0], 50.0, 5, 0, 100), Ok(6), "0.5 → +1");
        assert_eq!(pct(vec![st(None, Some(0.0), -10)]).apply(&[40.0], 50.0, 5, 0, 100), Ok(4), "-0.5 → -1");
        assert_eq!(pct(vec![st(None, Some(0.0), -50)]).apply(&[40.0], 50.0, 5, 0, 100), Ok(3), "-2.5 → -2");
        let change = StepPolicy {
            adjustment_type: AdjustmentType::ChangeInCapacity,
            steps: vec![st(None, Some(-10.0), -2), st(Some(-10.0), Some(0.0), -1)],
            aggregation: Aggregation::Minimum,
            min_adjustment_magnitude: None,
        };
        assert_eq!(change.validate(), Ok(()));
        assert_eq!(change.apply(&[35.0, 45.0], 50.0, 5, 1, 10), Ok(3), "minimum 35: 15 below");
        assert_eq!(
            change.apply(&[40.0], 50.0, 5, 1, 10),
            Ok(3),
            "below the threshold the upper bound is inclusive: -10 falls in (-inf, -10]"
        );
        assert_eq!(change.apply(&[5.0], 50.0, 2, 1, 10), Ok(1), "never below min");
        let exact = StepPolicy { adjustment_type: AdjustmentType::ExactCapacity, ..pct(vec![st(Some(0.0), None, 7)]) };
        assert_eq!(exact.apply(&[90.0], 85.0, 2, 1, 10), Ok(7));
        assert_eq!(
            pct(vec![st(Some(0.0), Some(10.0), 10)]).apply(&[99.0], 85.0, 4, 1, 10),
            Err("No step adjustment found for metric value [99.0] and breach threshold 85.0".to_string()),
            "§8.7's history text"
        );
        for (policy, want) in [
            (pct(vec![]), "A step scaling policy needs 1 to 20 step adjustments."),
            (pct(vec![st(None, None, 1)]), "A step adjustment cannot have both bounds null."),
            (
                pct(vec![st(Some(5.0), Some(5.0), 1), st(Some(5.0), None, 1)]),
                "The lower bound of a step adjustment must be less than its upper bound.",
            ),
            (
                pct(vec![st(Some(0.0), Some(10.0), 1), st(Some(20.0), None, 2)]),
                "Step adjustments must neither overlap nor leave gaps between their bounds.",
            ),
            (
                pct(vec![st(Some(0.0), Some(10.0), 1), st(Some(5.0), None, 2)]),
                "Step adjustments must neither overlap nor leave gaps between their bounds.",
            ),
            (
                pct(vec![st(Some(0.0), Some(10.0), 1)]),
                "The step adjustment with the highest bounds must have a null upper bound.",
            ),
            (
                pct(vec![st(Some(-10.0), Some(0.0), -1)]),
                "The step adjustment with the lowest bounds must have a null lower bound.",
            ),
            (
                StepPolicy {
                    min_adjustment_magnitude: Some(2),
                    adjustment_type: AdjustmentType::ChangeInCapacity,
                    ..pct(vec![st(Some(0.0), None, 1)])
                },
                "MinAdjustmentMagnitude is only valid with PercentChangeInCapacity.",
            ),
        ] {
            let e = policy.validate().expect_err(want);
            assert_eq!((e.code.name(), e.message.as_str()), ("ValidationException", want));
        }
    }

    #[test]
    fn decision_table() {
        let cfg = ScalingConfig::new(60.0, 1, 20);
        let cap = |running, desired| Capacity { running, desired, deploying: false };
        let now = 10_000;
        let act = |ago: i64, direction, to| Some(Activity { at: now - ago, direction, to });
        use Decision::{NotScaled as N, Scale};
        use Direction::{In, Out};
        use NotScaled::*;
        use Trigger::{High, Low};
        type Case = (&'static str, ScalingConfig, Capacity, Trigger, Option<f64>, Option<Activity>, Decision);
        let cases: Vec<Case> = vec![
            (
                "proportional: 2 tasks at 90% of 60 → 3",
                cfg,
                cap(2, 2),
                High,
                Some(90.0),
                None,
                Scale { to: 3, direction: Out },
            ),
            ("proportional: 4 at 150 → 10", cfg, cap(4, 4), High, Some(150.0), None, Scale { to: 10, direction: Out }),
            ("rounded up: 3 at 61 → 4", cfg, cap(3, 3), High, Some(61.0), None, Scale { to: 4, direction: Out }),
            ("clamped to max", cfg, cap(10, 10), High, Some(600.0), None, Scale { to: 20, direction: Out }),
            ("at max", cfg, cap(20, 20), High, Some(600.0), None, N(AlreadyAtMaxCapacity)),
            (
                "from running, not desired: a scale-out in progress counts",
                cfg,
                cap(2, 3),
                High,
                Some(90.0),
                None,
                N(AlreadyAtDesiredCapacity),
            ),
            (
                "a larger scale-out during the cooldown",
                cfg,
                cap(3, 3),
                High,
                Some(120.0),
                act(60, Out, 3),
                Scale { to: 6, direction: Out },
            ),
            (
                "scale-out suspended",
                ScalingConfig { scale_out_suspended: true, ..cfg },
                cap(2, 2),
                High,
                Some(90.0),
                None,
                N(Suspended),
            ),
            ("no data: nothing", cfg, cap(2, 2), High, None, None, N(InsufficientData)),
            ("no data on AlarmLow: nothing", cfg, cap(4, 4), Low, None, None, N(InsufficientData)),
            (
                "scale from zero on demand",
                ScalingConfig { min_capacity: 0, ..cfg },
                cap(0, 0),
                High,
                Some(5.0),
                None,
                Scale { to: 1, direction: Out },
            ),
            ("scale in: 10 at 30 → 5", cfg, cap(10, 10), Low, Some(30.0), None, Scale { to: 5, direction: In }),
            (
                "scale in never removes too much: 10 at 50 → 9",
                cfg,
                cap(10, 10),
                Low,
                Some(50.0),
                None,
                Scale { to: 9, direction: In },
            ),
            (
                "scale in never below min",
                ScalingConfig { min_capacity: 2, ..cfg },
                cap(4, 4),
                Low,
                Some(1.0),
                None,
                Scale { to: 2, direction: In },
            ),
            ("at min", cfg, cap(1, 1), Low, Some(1.0), None, N(AlreadyAtMinCapacity)),
            (
                "DisableScaleIn",
                ScalingConfig { disable_scale_in: true, ..cfg },
                cap(10, 10),
                Low,
                Some(30.0),
                None,
                N(ScaleInDisabled),
            ),
            (
                "scale-in suspended",
                ScalingConfig { scale_in_suspended: true, ..cfg },
                cap(10, 10),
                Low,
                Some(30.0),
                None,
                N(Suspended),
            ),
            (
                "deployment in progress",
                cfg,
                Capacity { running: 10, desired: 10, deploying: true },
                Low,
                Some(30.0),
                None,
                N(DeploymentInProgress),
            ),
            ("scale-in cooldown", cfg, cap(10, 10), Low, Some(30.0), act(100, In, 10), N(Cooldown)),
            (
                "scale-in cooldown over",
                cfg,
                cap(10, 10),
                Low,
                Some(30.0),
                act(300, In, 10),
                Scale { to: 5, direction: In },
            ),
            (
                "a scale-out cancels the scale-in cooldown",
                cfg,
                cap(10, 10),
                Low,
                Some(30.0),
                act(10, Out, 10),
                Scale { to: 5, direction: In },
            ),
            (
                "desired below min is raised to min",
                ScalingConfig { min_capacity: 3, ..cfg },
                cap(1, 1),
                Low,
                Some(1.0),
                None,
                Scale { to: 3, direction: Out },
            ),
            (
                "scale-out while desired below min",
                ScalingConfig { min_capacity: 3, ..cfg },
                cap(1, 1),
                High,
                Some(70.0),
                None,
                Scale { to: 3, direction: Out },
            ),
        ];
        for (case, cfg, cap, trigger, metric, last, want) in cases {
            assert_eq!(decide(&cfg, cap, trigger, metric, now, last), want, "{case}");
        }
    }
}
