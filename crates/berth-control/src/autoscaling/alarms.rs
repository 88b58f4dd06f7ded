//! The alarms a target tracking policy owns, as CloudWatch receives them, and the seam to CloudWatch's alarms.
//!
//! A policy row lists its alarms ([`OwnedAlarm`]: name, ARN, which one, whether CloudWatch has it yet). They are
//! written to CloudWatch after the policy's transaction commits (`Control::put_alarm` runs its own), and a
//! periodic pass puts any that are not there yet, so a failure between the two is repaired (level-triggered).
//!
//! [`put`] and [`delete`] are the only calls into CloudWatch's alarms (`Control::put_alarm`, marked as managed by
//! the policy, and `Control::delete_alarms_named`).

use berth_model::cloudwatch as cw;
use berth_telemetry::scaling::AlarmSpec;
use serde::{Deserialize, Serialize};

use crate::{Control, ControlError};

/// One alarm a policy owns, as the policy row keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OwnedAlarm {
    pub name: String,
    pub arn: String,
    /// `AlarmHigh` or `AlarmLow`.
    pub kind: String,
    /// The uuid in its name (kept when the policy is updated, so the alarm keeps its name).
    pub uuid: String,
    /// CloudWatch has it as the policy last described it.
    pub created: bool,
}

pub(crate) fn parse(json: &str) -> Vec<OwnedAlarm> {
    serde_json::from_str(json).unwrap_or_default()
}

pub(crate) fn to_json(alarms: &[OwnedAlarm]) -> String {
    serde_json::to_string(alarms).unwrap_or_else(|_| "[]".into())
}

/// `arn:aws:cloudwatch:<region>:<account>:alarm:<name>`.
pub(crate) fn arn(c: &Control, name: &str) -> String {
    format!("arn:aws:cloudwatch:{}:{}:alarm:{name}", c.names.region, c.names.account)
}

/// PutMetricAlarm's input for `spec`, with the tags the alarm carries (Express: `AmazonECSManaged=true`).
pub(crate) fn input(spec: &AlarmSpec, tags: &[(String, String)]) -> cw::PutMetricAlarmInput {
    cw::PutMetricAlarmInput {
        alarm_name: Some(spec.name.clone()),
        alarm_description: Some(spec.description.clone()),
        actions_enabled: Some(true),
        alarm_actions: Some(spec.alarm_actions.clone()),
        metric_name: Some(spec.metric_name.clone()),
        namespace: Some(spec.namespace.clone()),
        statistic: cw::Statistic::parse(&spec.statistic),
        dimensions: Some(
            spec.dimensions
                .iter()
                .map(|d| cw::Dimension { name: Some(d.name.clone()), value: Some(d.value.clone()) })
                .collect(),
        ),
        period: Some(spec.period as i32),
        unit: spec.unit.as_deref().and_then(cw::StandardUnit::parse),
        evaluation_periods: Some(spec.evaluation_periods as i32),
        datapoints_to_alarm: Some(spec.datapoints_to_alarm as i32),
        threshold: Some(spec.threshold),
        comparison_operator: cw::ComparisonOperator::parse(spec.comparison.as_str()),
        treat_missing_data: Some(treat_missing(spec.treat_missing_data).into()),
        tags: (!tags.is_empty())
            .then(|| tags.iter().map(|(k, v)| cw::Tag { key: Some(k.clone()), value: Some(v.clone()) }).collect()),
        ..Default::default()
    }
}

fn treat_missing(t: berth_telemetry::alarm::TreatMissingData) -> &'static str {
    use berth_telemetry::alarm::TreatMissingData as T;
    match t {
        T::Missing => "missing",
        T::Ignore => "ignore",
        T::Breaching => "breaching",
        T::NotBreaching => "notBreaching",
    }
}

/// Creates or replaces the alarm in CloudWatch on behalf of the policy `managed_by`; returns its ARN.
pub(crate) fn put(c: &Control, input: cw::PutMetricAlarmInput, managed_by: &str) -> Result<String, ControlError> {
    c.put_alarm(input, Some(managed_by))
}

/// Deletes the named alarms from CloudWatch (those already gone are no error).
pub(crate) fn delete(c: &Control, names: &[String]) -> Result<(), ControlError> {
    if names.is_empty() {
        return Ok(());
    }
    c.delete_alarms_named(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_telemetry::scaling::{AlarmTiming, PredefinedMetric, alarms};

    #[test]
    fn the_alarm_cloudwatch_receives() {
        let policy = "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:u:resource/ecs/service/default/web:policyName/webCPU";
        let specs = alarms(
            "service/default/web",
            policy,
            &PredefinedMetric::EcsServiceAverageCpuUtilization,
            60.0,
            false,
            AlarmTiming::BERTH,
            "h",
            "l",
        );
        let tags = vec![("AmazonECSManaged".to_string(), "true".to_string())];
        let high = input(&specs[0], &tags);
        assert_eq!(high.alarm_name.as_deref(), Some("TargetTracking-service/default/web-AlarmHigh-h"));
        assert_eq!(high.statistic, Some(cw::Statistic::Average));
        assert_eq!(high.unit, Some(cw::StandardUnit::Percent));
        assert_eq!(high.comparison_operator, Some(cw::ComparisonOperator::GreaterThanThreshold));
        assert_eq!((high.period, high.evaluation_periods, high.datapoints_to_alarm), (Some(10), Some(1), Some(1)));
        assert_eq!(high.threshold, Some(60.0));
        assert_eq!(high.treat_missing_data.as_deref(), Some("missing"));
        assert_eq!(high.alarm_actions, Some(vec![policy.to_string()]));
        assert_eq!(high.tags.as_ref().map(Vec::len), Some(1));
        let dims: Vec<(String, String)> = high
            .dimensions
            .unwrap_or_default()
            .into_iter()
            .map(|d| (d.name.unwrap_or_default(), d.value.unwrap_or_default()))
            .collect();
        assert_eq!(dims, vec![("ClusterName".into(), "default".into()), ("ServiceName".into(), "web".into())]);
        let low = input(&specs[1], &[]);
        assert_eq!(low.comparison_operator, Some(cw::ComparisonOperator::LessThanThreshold));
        assert_eq!((low.threshold, low.evaluation_periods, low.tags), (Some(54.0), Some(30), None));
    }
}
