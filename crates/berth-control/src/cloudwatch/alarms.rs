//! CloudWatch metric alarms: PutMetricAlarm, DescribeAlarms, DescribeAlarmsForMetric, DeleteAlarms, SetAlarmState,
//! DescribeAlarmHistory, EnableAlarmActions and DisableAlarmActions ([`handle`]), and the entry points target
//! tracking uses to create and remove its alarms ([`Control::put_alarm`], [`Control::delete_alarms_named`]) through
//! the same validation. Evaluation is `evaluate.rs`.
//!
//! An alarm is stored with its configuration as PutMetricAlarm received it (the model's shape as JSON, tags
//! apart), so DescribeAlarms answers exactly what was put; [`spec`] parses it into what evaluation needs, once at
//! PutMetricAlarm (the validation) and again at every evaluation.
//!
//! Actions: every ARN form the model lists is accepted and recorded; berth carries out Application Auto Scaling
//! policies (`arn:aws:autoscaling:…:scalingPolicy:…`) and records every other action (SNS, Lambda, EC2, Systems
//! Manager, …) as not executable in the alarm's history (docs/alarms.md).

use std::collections::BTreeSet;

use berth_core::ErrorCode;
use berth_model::Timestamp;
use berth_model::cloudwatch::{
    AlarmHistoryItem, AlarmType, DeleteAlarmsInput, DescribeAlarmHistoryInput, DescribeAlarmHistoryOutput,
    DescribeAlarmsForMetricInput, DescribeAlarmsForMetricOutput, DescribeAlarmsInput, DescribeAlarmsOutput,
    EvaluationState, HistoryItemType, MetricAlarm, Operation, Output, PutMetricAlarmInput, ScanBy, SetAlarmStateInput,
    StandardUnit, StateValue,
};
use berth_store::{AlarmHistoryQuery, AlarmHistoryRow, AlarmRow, HistoryCursor};
use berth_telemetry::alarm::{AlarmConfig, Comparison, State, TreatMissingData};
use berth_telemetry::{Dimension, Invalid, MetricId, Statistic, Unit, math};

use crate::{Control, ControlError, now, token};

/// Most alarms berth keeps (AWS documents no limit; this bounds the evaluator's work).
pub const MAX_ALARMS: usize = 10_000;
/// Most actions per state (reference §3.1).
pub const MAX_ACTIONS: usize = 5;
/// Largest PutMetricAlarm payload (reference §3.1: 120 KB uncompressed), measured on the stored configuration.
pub const MAX_PAYLOAD: usize = 120 * 1024;
/// Most tags on an alarm.
pub const MAX_TAGS: usize = 50;
/// How long history items are kept (reference §3.8: two weeks).
pub const HISTORY_RETENTION_SECS: f64 = 14.0 * 86_400.0;
/// Longest `HistoryData` (reference §3.8).
const MAX_HISTORY_DATA: usize = 4095;
/// Longest `HistorySummary`.
const MAX_HISTORY_SUMMARY: usize = 255;
/// The reason of a new alarm's INSUFFICIENT_DATA state.
pub const INITIAL_REASON: &str = "Unchecked: Initial alarm creation";

/// Handles one alarm operation of the CloudWatch API at `now` (epoch seconds). The caller (`handle_cloudwatch`)
/// has authenticated and authorized it.
pub(crate) fn handle(control: &Control, op: Operation, now: f64) -> Result<Output, ControlError> {
    match op {
        Operation::PutMetricAlarm(input) => {
            control.put_alarm_at(input, None, now)?;
            Ok(Output::PutMetricAlarm(()))
        }
        Operation::DescribeAlarms(input) => Ok(Output::DescribeAlarms(describe_alarms(control, &input)?)),
        Operation::DescribeAlarmsForMetric(input) => {
            Ok(Output::DescribeAlarmsForMetric(describe_alarms_for_metric(control, &input)?))
        }
        Operation::DeleteAlarms(DeleteAlarmsInput { alarm_names }) => {
            let names = alarm_names.unwrap_or_default();
            names_within(&names, "alarmNames")?;
            control.delete_alarms_at(&names, now)?;
            Ok(Output::DeleteAlarms(()))
        }
        Operation::SetAlarmState(input) => {
            set_alarm_state(control, input, now)?;
            Ok(Output::SetAlarmState(()))
        }
        Operation::DescribeAlarmHistory(input) => Ok(Output::DescribeAlarmHistory(describe_history(control, &input)?)),
        Operation::EnableAlarmActions(input) => {
            set_actions_enabled(control, &input.alarm_names.unwrap_or_default(), true)?;
            Ok(Output::EnableAlarmActions(()))
        }
        Operation::DisableAlarmActions(input) => {
            set_actions_enabled(control, &input.alarm_names.unwrap_or_default(), false)?;
            Ok(Output::DisableAlarmActions(()))
        }
        other => {
            Err(ControlError::code(ErrorCode::InternalFailure, format!("{} is not an alarm operation", other.name())))
        }
    }
}

// ---- validation

/// AWS's wording for a member that breaks the model's constraints.
fn constraint(field: &str, value: &str, rule: &str) -> ControlError {
    ControlError::code(
        ErrorCode::ValidationError,
        format!("1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {rule}"),
    )
}

fn length(value: &str, field: &str, min: usize, max: usize) -> Result<(), ControlError> {
    let n = value.chars().count();
    if n < min {
        return Err(constraint(field, value, &format!("Member must have length greater than or equal to {min}")));
    }
    if n > max {
        return Err(constraint(field, value, &format!("Member must have length less than or equal to {max}")));
    }
    Ok(())
}

fn validation(message: impl Into<String>) -> ControlError {
    ControlError::code(ErrorCode::ValidationError, message)
}

fn names_within(names: &[String], field: &str) -> Result<(), ControlError> {
    if names.len() > 100 {
        return Err(constraint(field, &format!("{names:?}"), "Member must have length less than or equal to 100"));
    }
    Ok(())
}

/// What kind of action an alarm action ARN names, from its service (reference §3.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// `arn:aws:autoscaling:<r>:<a>:scalingPolicy:<id>:resource/…` (Application Auto Scaling) or
    /// `…:autoScalingGroupName/…` (EC2 Auto Scaling).
    AutoScaling,
    Sns,
    Lambda,
    /// `arn:aws:automate:<r>:ec2:stop|terminate|reboot|recover` and the older `arn:aws:swf:…` forms.
    Ec2,
    /// Systems Manager OpsItems and Incident Manager response plans.
    SystemsManager,
    /// An aiops investigation group.
    Investigation,
}

impl ActionKind {
    /// The kind of an action ARN, or `None` when the ARN is not one CloudWatch accepts.
    pub fn of(arn: &str) -> Option<ActionKind> {
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some(service), Some(_region), Some(account), Some(resource)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") || resource.is_empty() {
            return None;
        }
        Some(match service {
            "autoscaling" if resource.starts_with("scalingPolicy:") => ActionKind::AutoScaling,
            "sns" => ActionKind::Sns,
            "lambda" if resource.starts_with("function:") => ActionKind::Lambda,
            // `arn:aws:automate:<region>:ec2:<action>` has no account part.
            "automate" if account == "ec2" && matches!(resource, "stop" | "terminate" | "reboot" | "recover") => {
                ActionKind::Ec2
            }
            "swf" if resource.starts_with("action/actions/AWS_EC2.") => ActionKind::Ec2,
            "ssm" if resource.starts_with("opsitem:") => ActionKind::SystemsManager,
            "ssm-incidents" if resource.starts_with("responseplan/") => ActionKind::SystemsManager,
            "aiops" if resource.starts_with("investigation-group/") => ActionKind::Investigation,
            _ => return None,
        })
    }

    /// Why berth does not carry out an action of this kind (`None`: it does).
    pub fn not_executable(self) -> Option<&'static str> {
        match self {
            ActionKind::AutoScaling => None,
            ActionKind::Sns => Some("berth does not deliver SNS notifications; the action was recorded only"),
            ActionKind::Lambda => Some("berth does not invoke Lambda functions; the action was recorded only"),
            ActionKind::Ec2 => Some("berth has no EC2 instances to act on; the action was recorded only"),
            ActionKind::SystemsManager => {
                Some("berth does not create Systems Manager OpsItems or incidents; the action was recorded only")
            }
            ActionKind::Investigation => Some("berth does not start investigations; the action was recorded only"),
        }
    }
}

/// A metric as an alarm names it. Without a unit the alarm reads the metric in every unit it was published in.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRef {
    pub namespace: String,
    pub name: String,
    /// Sorted by name.
    pub dimensions: Vec<Dimension>,
    pub unit: Option<Unit>,
}

impl MetricRef {
    /// The stored series' identity in `unit`.
    pub fn id(&self, unit: Unit) -> MetricId {
        MetricId {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            dimensions: self.dimensions.clone(),
            unit,
        }
    }
}

/// One query of a metric-math alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct MathQuery {
    pub query: math::Query,
    /// A `MetricStat` query's metric and statistic.
    pub metric: Option<(MetricRef, Statistic)>,
}

/// Where an alarm's datapoints come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// One metric's statistic (`AlarmConfig::statistic`).
    Metric(MetricRef),
    /// The `ReturnData` query of a metric-math alarm.
    Math(Vec<MathQuery>),
}

/// What evaluation needs of an alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmSpec {
    pub config: AlarmConfig,
    pub source: Source,
}

fn unit_of(u: Option<StandardUnit>, field: &str) -> Result<Option<Unit>, ControlError> {
    u.map(|u| Unit::parse(u.as_str(), field)).transpose().map_err(ControlError::from)
}

fn metric_ref(
    namespace: &str,
    name: &str,
    dimensions: &[berth_model::cloudwatch::Dimension],
    unit: Option<StandardUnit>,
    prefix: &str,
) -> Result<MetricRef, ControlError> {
    let dims = dimensions
        .iter()
        .map(|d| Dimension::new(d.name.clone().unwrap_or_default(), d.value.clone().unwrap_or_default()))
        .collect();
    let id = MetricId::new(namespace, name, dims, Unit::None, prefix).map_err(ControlError::from)?;
    Ok(MetricRef {
        namespace: id.namespace,
        name: id.name,
        dimensions: id.dimensions,
        unit: unit_of(unit, format!("{prefix}.Unit").trim_start_matches('.'))?,
    })
}

/// Parses and checks an alarm's evaluation settings and metric (or metric math): everything evaluation needs.
/// The same checks as PutMetricAlarm's (its other members are checked by [`validate_put`]).
pub fn spec(input: &PutMetricAlarmInput) -> Result<AlarmSpec, ControlError> {
    let comparison = match input.comparison_operator {
        None => return Err(ControlError::from(Invalid::missing("ComparisonOperator"))),
        Some(c) => Comparison::parse(c.as_str()).map_err(ControlError::from)?,
    };
    if input.threshold_metric_id.is_some() {
        return Err(validation(
            "ThresholdMetricId is only valid for anomaly detection alarms, which berth does not support.",
        ));
    }
    let threshold = input.threshold.ok_or_else(|| ControlError::from(Invalid::missing("Threshold")))?;
    let evaluation_periods =
        input.evaluation_periods.ok_or_else(|| ControlError::from(Invalid::missing("EvaluationPeriods")))?;
    if evaluation_periods < 1 {
        return Err(ControlError::from(Invalid::value(
            "The parameter EvaluationPeriods must be greater than or equal to 1.",
        )));
    }
    let datapoints_to_alarm = match input.datapoints_to_alarm {
        None => None,
        Some(m) if m < 1 => {
            return Err(ControlError::from(Invalid::value(
                "The parameter DatapointsToAlarm must be greater than or equal to 1.",
            )));
        }
        Some(m) => Some(m as u32),
    };
    let treat_missing_data = input
        .treat_missing_data
        .as_deref()
        .map(TreatMissingData::parse)
        .transpose()
        .map_err(ControlError::from)?
        .unwrap_or_default();
    let evaluate_low_sample_count_percentile = match input.evaluate_low_sample_count_percentile.as_deref() {
        None | Some("evaluate") => true,
        Some("ignore") => false,
        Some(other) => {
            return Err(ControlError::from(Invalid::value(format!(
                "The value {other} for parameter EvaluateLowSampleCountPercentile is invalid. Valid values are evaluate and ignore."
            ))));
        }
    };
    let single = input.metric_name.is_some()
        || input.namespace.is_some()
        || input.statistic.is_some()
        || input.extended_statistic.is_some()
        || input.dimensions.is_some()
        || input.period.is_some()
        || input.unit.is_some();
    let (period, statistic, source) = match &input.metrics {
        Some(_) if single => {
            return Err(ControlError::from(Invalid::combination(
                "The Metrics list cannot be combined with MetricName, Namespace, Dimensions, Period, Unit, Statistic or ExtendedStatistic.",
            )));
        }
        Some(queries) => {
            let (period, queries) = math_queries(queries)?;
            (period, None, Source::Math(queries))
        }
        None => {
            let name =
                input.metric_name.as_deref().ok_or_else(|| ControlError::from(Invalid::missing("MetricName")))?;
            let namespace =
                input.namespace.as_deref().ok_or_else(|| ControlError::from(Invalid::missing("Namespace")))?;
            let period = input.period.ok_or_else(|| ControlError::from(Invalid::missing("Period")))?;
            let statistic = match (input.statistic, input.extended_statistic.as_deref()) {
                (Some(_), Some(_)) => {
                    return Err(ControlError::from(Invalid::combination(
                        "Exactly one of Statistic and ExtendedStatistic must be specified, not both.",
                    )));
                }
                (None, None) => {
                    return Err(ControlError::from(Invalid::missing("Statistic or the parameter ExtendedStatistic")));
                }
                (Some(s), None) => Statistic::parse(s.as_str(), "Statistic").map_err(ControlError::from)?,
                (None, Some(e)) => {
                    let s = Statistic::parse(e, "ExtendedStatistic").map_err(ControlError::from)?;
                    if !s.is_extended() {
                        return Err(ControlError::from(Invalid::value(format!(
                            "The value {e} for parameter ExtendedStatistic is not an extended statistic; use Statistic."
                        ))));
                    }
                    s
                }
            };
            let metric = metric_ref(namespace, name, input.dimensions.as_deref().unwrap_or_default(), input.unit, "")?;
            (i64::from(period), Some(statistic), Source::Metric(metric))
        }
    };
    let config = AlarmConfig {
        period,
        evaluation_periods: evaluation_periods as u32,
        datapoints_to_alarm,
        threshold,
        comparison,
        treat_missing_data,
        evaluate_low_sample_count_percentile,
        statistic,
        evaluation_range: None,
    };
    config.validate().map_err(ControlError::from)?;
    Ok(AlarmSpec { config, source })
}

/// A metric-math alarm's queries (reference §2.1): the query-set rules, one of `MetricStat` and `Expression` per
/// query, expressions that parse, and one period for every metric (the alarm's).
fn math_queries(queries: &[berth_model::cloudwatch::MetricDataQuery]) -> Result<(i64, Vec<MathQuery>), ControlError> {
    let plain: Vec<math::Query> = queries
        .iter()
        .map(|q| math::Query {
            id: q.id.clone().unwrap_or_default(),
            expression: q.expression.clone(),
            return_data: q.return_data.unwrap_or(true),
        })
        .collect();
    math::validate_queries(&plain, true).map_err(ControlError::from)?;
    let mut period: Option<i64> = None;
    let mut out = Vec::with_capacity(queries.len());
    for (i, (q, plain)) in queries.iter().zip(plain).enumerate() {
        let at = format!("Metrics.member.{}", i + 1);
        if q.account_id.is_some() {
            return Err(validation(format!(
                "{at}.AccountId: berth has one account; cross-account alarms are not supported."
            )));
        }
        let metric = match (&q.metric_stat, &q.expression) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(validation(format!("{at}: exactly one of MetricStat and Expression must be specified.")));
            }
            (None, Some(e)) => {
                math::parse(e).map_err(|e| ControlError::from(Invalid::from(e)))?;
                None
            }
            (Some(ms), None) => {
                let m = ms.metric.clone().unwrap_or_default();
                let metric = metric_ref(
                    m.namespace.as_deref().unwrap_or_default(),
                    m.metric_name.as_deref().unwrap_or_default(),
                    m.dimensions.as_deref().unwrap_or_default(),
                    ms.unit,
                    &format!("{at}.MetricStat.Metric"),
                )?;
                let stat = Statistic::parse(ms.stat.as_deref().unwrap_or_default(), &format!("{at}.MetricStat.Stat"))
                    .map_err(ControlError::from)?;
                let p = i64::from(ms.period.unwrap_or_default());
                match period {
                    Some(first) if first != p => {
                        return Err(validation(
                            "All metrics in an alarm's Metrics must use the same period (reference: CloudWatch alarms on metric math).",
                        ));
                    }
                    _ => period = Some(p),
                }
                Some((metric, stat))
            }
        };
        out.push(MathQuery { query: plain, metric });
    }
    let period = period.ok_or_else(|| validation("The Metrics of an alarm must include at least one MetricStat."))?;
    Ok((period, out))
}

/// PutMetricAlarm's checks of everything [`spec`] does not read: name, description, actions, tags and the
/// features berth does not have.
fn validate_put(input: &PutMetricAlarmInput, spec: &AlarmSpec) -> Result<(), ControlError> {
    let name = input.alarm_name.as_deref().unwrap_or_default();
    length(name, "alarmName", 1, 255)?;
    if name.chars().any(char::is_control) {
        return Err(constraint("alarmName", name, "Member must not contain control characters"));
    }
    if let Some(d) = &input.alarm_description {
        length(d, "alarmDescription", 0, 1024)?;
    }
    if input.evaluation_criteria.is_some() || input.evaluation_interval.is_some() {
        return Err(validation(
            "PromQL alarms (EvaluationCriteria, EvaluationInterval) are not supported by berth; use a metric or Metrics.",
        ));
    }
    if input.warm_up_configuration.is_some() {
        return Err(validation("WarmUpConfiguration is not supported by berth."));
    }
    if input.evaluation_window.as_ref().is_some_and(|w| w.wall_clock_window.is_some()) {
        return Err(validation("WallClockWindow is not supported by berth; alarms evaluate a sliding window."));
    }
    let math = matches!(spec.source, Source::Math(_));
    for (field, list) in [
        ("alarmActions", &input.alarm_actions),
        ("oKActions", &input.ok_actions),
        ("insufficientDataActions", &input.insufficient_data_actions),
    ] {
        let list = list.as_deref().unwrap_or_default();
        if list.len() > MAX_ACTIONS {
            return Err(constraint(
                field,
                &format!("{list:?}"),
                &format!("Member must have length less than or equal to {MAX_ACTIONS}"),
            ));
        }
        for arn in list {
            length(arn, field, 1, 1024)?;
            match ActionKind::of(arn) {
                None => return Err(validation(format!("Invalid arn syntax: {arn}"))),
                Some(ActionKind::Ec2) if math => {
                    return Err(validation("Alarms on metric math expressions cannot have EC2 actions."));
                }
                Some(_) => {}
            }
        }
    }
    let tags = input.tags.as_deref().unwrap_or_default();
    if tags.len() > MAX_TAGS {
        return Err(constraint(
            "tags",
            &format!("{} tags", tags.len()),
            "Member must have length less than or equal to 50",
        ));
    }
    super::dashboards::tag_pairs(tags)?;
    Ok(())
}

// ---- rows and answers

/// Whether an alarm of this name exists (TagResource and friends check it).
pub(crate) fn exists(control: &Control, name: &str) -> Result<bool, ControlError> {
    Ok(control.read(|tx| Ok(tx.alarm_get(name)?))?.is_some())
}

/// The stored configuration of an alarm.
pub(crate) fn stored_config(row: &AlarmRow) -> Result<PutMetricAlarmInput, ControlError> {
    serde_json::from_str(&row.config).map_err(|e| {
        ControlError::Store(berth_store::StoreError::Corrupt(format!("alarm {}: configuration: {e}", row.name)))
    })
}

fn timestamp(t: f64) -> Option<Timestamp> {
    // Milliseconds, as AWS answers.
    Some(Timestamp((t * 1000.0).round() / 1000.0))
}

/// An alarm as DescribeAlarms answers it.
pub(crate) fn metric_alarm(row: &AlarmRow) -> Result<MetricAlarm, ControlError> {
    let c = stored_config(row)?;
    let metric_form = c.metrics.is_none();
    Ok(MetricAlarm {
        alarm_name: Some(row.name.clone()),
        alarm_arn: Some(row.arn.clone()),
        alarm_description: c.alarm_description,
        alarm_configuration_updated_timestamp: timestamp(row.config_updated),
        actions_enabled: Some(row.actions_enabled),
        ok_actions: Some(c.ok_actions.unwrap_or_default()),
        alarm_actions: Some(c.alarm_actions.unwrap_or_default()),
        insufficient_data_actions: Some(c.insufficient_data_actions.unwrap_or_default()),
        state_value: StateValue::parse(&row.state),
        state_reason: Some(row.state_reason.clone()),
        state_reason_data: row.state_reason_data.clone(),
        state_updated_timestamp: timestamp(row.state_updated),
        metric_name: c.metric_name,
        namespace: c.namespace,
        statistic: c.statistic,
        extended_statistic: c.extended_statistic,
        dimensions: if metric_form { Some(c.dimensions.unwrap_or_default()) } else { None },
        period: c.period,
        unit: c.unit,
        evaluation_periods: c.evaluation_periods,
        datapoints_to_alarm: c.datapoints_to_alarm,
        threshold: c.threshold,
        comparison_operator: c.comparison_operator,
        treat_missing_data: Some(c.treat_missing_data.unwrap_or_else(|| "missing".into())),
        evaluate_low_sample_count_percentile: c.evaluate_low_sample_count_percentile,
        metrics: c.metrics,
        threshold_metric_id: None,
        evaluation_state: row.evaluation_state.as_deref().and_then(EvaluationState::parse),
        state_transitioned_timestamp: timestamp(row.state_transitioned),
        evaluation_window: c.evaluation_window,
        warm_up_configuration: None,
        evaluation_criteria: None,
        evaluation_interval: None,
        action_configuration: c.action_configuration,
    })
}

/// Caps JSON history data at [`MAX_HISTORY_DATA`]: `full` when it fits, else `short`.
fn history_data(full: serde_json::Value, short: serde_json::Value) -> String {
    let s = full.to_string();
    if s.len() <= MAX_HISTORY_DATA { s } else { short.to_string() }
}

fn summary(s: String) -> String {
    s.chars().take(MAX_HISTORY_SUMMARY).collect()
}

pub(crate) fn history_item(
    name: &str,
    at: f64,
    kind: HistoryItemType,
    summary_text: String,
    data: String,
) -> AlarmHistoryRow {
    AlarmHistoryRow {
        seq: 0,
        alarm_name: name.to_string(),
        alarm_type: AlarmType::MetricAlarm.as_str().to_string(),
        timestamp: at,
        item_type: kind.as_str().to_string(),
        summary: summary(summary_text),
        data,
    }
}

/// A `ConfigurationUpdate` history item, `Alarm "<name>" <verb>`, with `{"version", "type": kind}` and `fields`
/// (left out when the whole is longer than `HistoryData` may be).
fn configuration_item(name: &str, at: f64, kind: &str, verb: &str, fields: serde_json::Value) -> AlarmHistoryRow {
    let short = serde_json::json!({ "version": "1.0", "type": kind });
    let mut full = short.clone();
    if let (Some(full), serde_json::Value::Object(fields)) = (full.as_object_mut(), fields) {
        full.extend(fields);
    }
    history_item(
        name,
        at,
        HistoryItemType::ConfigurationUpdate,
        format!("Alarm \"{name}\" {verb}"),
        history_data(full, short),
    )
}

/// The `StateUpdate` history item of a transition (reference §3.8).
pub(crate) fn state_update_item(before: &AlarmRow, after: &AlarmRow, at: f64) -> AlarmHistoryRow {
    let side = |r: &AlarmRow, with_data: bool| {
        let mut v = serde_json::json!({ "stateValue": r.state, "stateReason": r.state_reason });
        if with_data
            && let Some(d) =
                r.state_reason_data.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        {
            v["stateReasonData"] = d;
        }
        v
    };
    let data = |with_data: bool| serde_json::json!({ "version": "1.0", "oldState": side(before, with_data), "newState": side(after, with_data) });
    history_item(
        &after.name,
        at,
        HistoryItemType::StateUpdate,
        format!("Alarm updated from {} to {}", before.state, after.state),
        history_data(data(true), data(false)),
    )
}

/// The model's fields of an alarm that are its configuration (what `originalUpdatedFields` compares).
fn configuration_fields(alarm: &MetricAlarm) -> serde_json::Map<String, serde_json::Value> {
    let mut v = match serde_json::to_value(alarm) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    for state_field in [
        "StateValue",
        "StateReason",
        "StateReasonData",
        "StateUpdatedTimestamp",
        "StateTransitionedTimestamp",
        "AlarmConfigurationUpdatedTimestamp",
        "EvaluationState",
    ] {
        v.remove(state_field);
    }
    v
}

// ---- commands

impl Control {
    /// Creates or replaces an alarm as PutMetricAlarm does (same validation, same errors) and returns its ARN.
    /// `managed_by` marks an alarm created on a user's behalf (target tracking passes its policy ARN); a
    /// replacement keeps the mark it had when `None`.
    pub fn put_alarm(&self, input: PutMetricAlarmInput, managed_by: Option<&str>) -> Result<String, ControlError> {
        self.put_alarm_at(input, managed_by, now())
    }

    /// [`Control::put_alarm`] at `now`. A new alarm starts in INSUFFICIENT_DATA and is evaluated at once; a
    /// replacement keeps its state, takes the whole new configuration (ActionsEnabled included), ignores `Tags`
    /// (TagResource changes those) and is evaluated at once with it.
    pub(crate) fn put_alarm_at(
        &self,
        input: PutMetricAlarmInput,
        managed_by: Option<&str>,
        now: f64,
    ) -> Result<String, ControlError> {
        self.tx(|tx| self.put_alarm_in(tx, input, managed_by, now))
    }

    /// [`Control::put_alarm_at`] inside the caller's transaction (Express creates a service's deployment alarm in
    /// the transaction that creates the service).
    pub(crate) fn put_alarm_in(
        &self,
        tx: &berth_store::Tx<'_>,
        mut input: PutMetricAlarmInput,
        managed_by: Option<&str>,
        now: f64,
    ) -> Result<String, ControlError> {
        let spec = spec(&input)?;
        validate_put(&input, &spec)?;
        let name = input.alarm_name.clone().unwrap_or_default();
        let arn = self.alarm_arn(&name);
        let tags = super::dashboards::tag_pairs(&input.tags.take().unwrap_or_default())?;
        let config =
            serde_json::to_string(&input).map_err(|e| ControlError::code(ErrorCode::InternalFailure, e.to_string()))?;
        if config.len() > MAX_PAYLOAD {
            return Err(validation(format!(
                "The alarm's configuration is {} bytes; PutMetricAlarm takes at most {MAX_PAYLOAD}.",
                config.len()
            )));
        }
        let (namespace, metric_name) = match &spec.source {
            Source::Metric(m) => (Some(m.namespace.clone()), Some(m.name.clone())),
            Source::Math(_) => (None, None),
        };
        let actions_enabled = input.actions_enabled.unwrap_or(true);
        let due = now.floor() as i64;
        let existing = tx.alarm_get(&name)?;
        let row = match &existing {
            None => {
                if tx.alarms_count()? >= MAX_ALARMS {
                    return Err(ControlError::code(
                        ErrorCode::CwLimitExceeded,
                        format!("The maximum number of alarms ({MAX_ALARMS}) has been reached."),
                    ));
                }
                AlarmRow {
                    name: name.clone(),
                    arn: arn.clone(),
                    config: config.clone(),
                    namespace: namespace.clone(),
                    metric_name: metric_name.clone(),
                    managed_by: managed_by.map(str::to_string),
                    actions_enabled,
                    state: State::InsufficientData.as_str().to_string(),
                    state_reason: INITIAL_REASON.to_string(),
                    state_reason_data: None,
                    evaluation_state: None,
                    state_updated: now,
                    state_transitioned: now,
                    config_updated: now,
                    next_evaluation: due,
                    actions_run_at: None,
                    actions_pending: false,
                    generation: 1,
                }
            }
            Some(old) => AlarmRow {
                config: config.clone(),
                namespace: namespace.clone(),
                metric_name: metric_name.clone(),
                managed_by: managed_by.map(str::to_string).or_else(|| old.managed_by.clone()),
                actions_enabled,
                config_updated: now,
                next_evaluation: due,
                generation: old.generation + 1,
                ..old.clone()
            },
        };
        tx.alarm_put(&row)?;
        let new = configuration_fields(&metric_alarm(&row)?);
        let item = match &existing {
            None => {
                tx.tags_put(&arn, &tags)?;
                configuration_item(&name, now, "Create", "created", serde_json::json!({ "createdAlarm": new }))
            }
            Some(old) => {
                let old = configuration_fields(&metric_alarm(old)?);
                let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
                let original: serde_json::Map<String, serde_json::Value> = keys
                    .into_iter()
                    .filter(|k| old.get(*k) != new.get(*k))
                    .map(|k| (k.clone(), old.get(k).cloned().unwrap_or(serde_json::Value::Null)))
                    .collect();
                configuration_item(
                    &name,
                    now,
                    "Update",
                    "updated",
                    serde_json::json!({ "updatedAlarm": new, "originalUpdatedFields": original }),
                )
            }
        };
        tx.alarm_history_add(&item)?;
        Ok(arn)
    }

    /// Deletes the named alarms (names that do not exist are skipped, as CloudWatch does) with their tags; their
    /// history stays until it ages out.
    pub fn delete_alarms_named(&self, names: &[String]) -> Result<(), ControlError> {
        self.delete_alarms_at(names, now())
    }

    pub(crate) fn delete_alarms_at(&self, names: &[String], now: f64) -> Result<(), ControlError> {
        self.tx(|tx| delete_alarms_in(tx, names, now))
    }

    /// The names of the alarms created on behalf of `managed_by` (a target tracking policy's ARN).
    pub fn alarms_managed_by(&self, managed_by: &str) -> Result<Vec<String>, ControlError> {
        Ok(self.read(|tx| Ok(tx.alarms_managed_by(managed_by)?))?.into_iter().map(|a| a.name).collect())
    }
}

/// Deletes the named alarms inside the caller's transaction (see [`Control::delete_alarms_named`]).
pub(crate) fn delete_alarms_in(tx: &berth_store::Tx<'_>, names: &[String], now: f64) -> Result<(), ControlError> {
    for name in names {
        let Some(row) = tx.alarm_get(name)? else { continue };
        let deleted = configuration_fields(&metric_alarm(&row)?);
        tx.alarm_delete(name)?;
        let keys: Vec<String> = tx.tags_get(&row.arn)?.into_iter().map(|(k, _)| k).collect();
        tx.tags_remove(&row.arn, &keys)?;
        tx.alarm_history_add(&configuration_item(
            name,
            now,
            "Delete",
            "deleted",
            serde_json::json!({ "deletedAlarm": deleted }),
        ))?;
    }
    Ok(())
}

fn set_alarm_state(control: &Control, input: SetAlarmStateInput, now: f64) -> Result<(), ControlError> {
    let name = input.alarm_name.unwrap_or_default();
    length(&name, "alarmName", 1, 255)?;
    let state = input.state_value.ok_or_else(|| ControlError::from(Invalid::missing("StateValue")))?;
    let reason = input.state_reason.unwrap_or_default();
    length(&reason, "stateReason", 0, 1023)?;
    if let Some(data) = &input.state_reason_data {
        length(data, "stateReasonData", 0, 4000)?;
        if serde_json::from_str::<serde_json::Value>(data).is_err() {
            return Err(ControlError::code(ErrorCode::CwInvalidFormat, "Data was not syntactically valid JSON"));
        }
    }
    control.tx(|tx| {
        let Some(before) = tx.alarm_get(&name)? else {
            return Err(ControlError::code(ErrorCode::CwResourceNotFound, format!("Alarm {name} not found")));
        };
        let changed = before.state != state.as_str();
        let after = AlarmRow {
            state: state.as_str().to_string(),
            state_reason: reason.clone(),
            state_reason_data: input.state_reason_data.clone(),
            state_updated: now,
            state_transitioned: if changed { now } else { before.state_transitioned },
            actions_pending: before.actions_pending || changed,
            actions_run_at: if changed { None } else { before.actions_run_at },
            generation: before.generation + 1,
            ..before.clone()
        };
        tx.alarm_put(&after)?;
        if changed {
            tx.alarm_history_add(&state_update_item(&before, &after, now))?;
        }
        Ok(())
    })
}

fn set_actions_enabled(control: &Control, names: &[String], enabled: bool) -> Result<(), ControlError> {
    names_within(names, "alarmNames")?;
    control.tx(|tx| {
        for name in names {
            if let Some(row) = tx.alarm_get(name)?
                && row.actions_enabled != enabled
            {
                tx.alarm_put(&AlarmRow { actions_enabled: enabled, generation: row.generation + 1, ..row })?;
            }
        }
        Ok(())
    })
}

// ---- reads

fn actions_of(c: &PutMetricAlarmInput) -> impl Iterator<Item = &String> {
    [&c.alarm_actions, &c.ok_actions, &c.insufficient_data_actions].into_iter().flatten().flatten()
}

fn describe_alarms(control: &Control, input: &DescribeAlarmsInput) -> Result<DescribeAlarmsOutput, ControlError> {
    let names = input.alarm_names.as_deref().unwrap_or_default();
    names_within(names, "alarmNames")?;
    if let Some(p) = &input.alarm_name_prefix {
        length(p, "alarmNamePrefix", 1, 255)?;
    }
    if let Some(p) = &input.action_prefix {
        length(p, "actionPrefix", 1, 1024)?;
    }
    if input.alarm_names.is_some() && input.alarm_name_prefix.is_some() {
        return Err(ControlError::from(Invalid::combination(
            "AlarmNames and AlarmNamePrefix cannot be specified together.",
        )));
    }
    let family = input.children_of_alarm_name.is_some() || input.parents_of_alarm_name.is_some();
    let others = input.alarm_names.is_some()
        || input.alarm_name_prefix.is_some()
        || input.state_value.is_some()
        || input.action_prefix.is_some();
    if family && others {
        return Err(ControlError::from(Invalid::combination(
            "ChildrenOfAlarmName and ParentsOfAlarmName cannot be combined with other filters.",
        )));
    }
    let size = crate::paging::size(input.max_records, 50, 1..=100)
        .map_err(|m| constraint("maxRecords", &m.to_string(), "Member must have value between 1 and 100"))?;
    let after = match &input.next_token {
        None => None,
        Some(t) => Some(token::decode(t).ok_or_else(|| {
            ControlError::code(ErrorCode::InvalidNextToken, "The service returned an invalid next token.")
        })?),
    };
    let wanted = |t: AlarmType| input.alarm_types.as_ref().is_none_or(|ts| ts.contains(&t));
    // berth has no composite alarms: a composite alarm has no parents or children among metric alarms that
    // would be listed, and no metric alarm is any alarm's child here.
    let rows = if family || !wanted(AlarmType::MetricAlarm) {
        Vec::new()
    } else {
        control.read(|tx| Ok(tx.alarms_list()?))?
    };
    let mut matching = Vec::new();
    for row in rows {
        if after.as_deref().is_some_and(|a| row.name.as_str() <= a)
            || (!names.is_empty() && !names.contains(&row.name))
            || input.alarm_name_prefix.as_deref().is_some_and(|p| !row.name.starts_with(p))
            || input.state_value.is_some_and(|s| s.as_str() != row.state)
        {
            continue;
        }
        if let Some(prefix) = &input.action_prefix
            && !actions_of(&stored_config(&row)?).any(|a| a.starts_with(prefix.as_str()))
        {
            continue;
        }
        matching.push(row);
        if matching.len() > size {
            break;
        }
    }
    let next_token = (matching.len() > size).then(|| {
        matching.truncate(size);
        token::encode(&matching[size - 1].name)
    });
    Ok(DescribeAlarmsOutput {
        composite_alarms: Some(Vec::new()),
        metric_alarms: Some(matching.iter().map(metric_alarm).collect::<Result<_, _>>()?),
        log_alarms: None,
        next_token,
    })
}

fn describe_alarms_for_metric(
    control: &Control,
    input: &DescribeAlarmsForMetricInput,
) -> Result<DescribeAlarmsForMetricOutput, ControlError> {
    let namespace = input.namespace.clone().unwrap_or_default();
    let name = input.metric_name.clone().unwrap_or_default();
    let dims: Option<Vec<Dimension>> = input.dimensions.as_ref().map(|ds| {
        let mut v: Vec<Dimension> = ds
            .iter()
            .map(|d| Dimension::new(d.name.clone().unwrap_or_default(), d.value.clone().unwrap_or_default()))
            .collect();
        v.sort();
        v
    });
    let rows = control.read(|tx| Ok(tx.alarms_for_metric(&namespace, &name)?))?;
    let mut alarms = Vec::new();
    for row in rows {
        let c = stored_config(&row)?;
        let mut row_dims: Vec<Dimension> = c
            .dimensions
            .iter()
            .flatten()
            .map(|d| Dimension::new(d.name.clone().unwrap_or_default(), d.value.clone().unwrap_or_default()))
            .collect();
        row_dims.sort();
        let keep = input.statistic.is_none_or(|s| c.statistic == Some(s))
            && input.extended_statistic.as_ref().is_none_or(|e| c.extended_statistic.as_ref() == Some(e))
            && input.period.is_none_or(|p| c.period == Some(p))
            && input.unit.is_none_or(|u| c.unit == Some(u))
            && dims.as_ref().is_none_or(|d| *d == row_dims);
        if keep {
            alarms.push(metric_alarm(&row)?);
        }
    }
    Ok(DescribeAlarmsForMetricOutput { metric_alarms: Some(alarms) })
}

fn history_token(c: HistoryCursor) -> String {
    token::encode(&format!("{}/{}", c.timestamp, c.seq))
}

fn history_cursor(t: &str) -> Option<HistoryCursor> {
    let key = token::decode(t)?;
    let (ts, seq) = key.split_once('/')?;
    Some(HistoryCursor { timestamp: ts.parse().ok()?, seq: seq.parse().ok()? })
}

fn describe_history(
    control: &Control,
    input: &DescribeAlarmHistoryInput,
) -> Result<DescribeAlarmHistoryOutput, ControlError> {
    if let Some(n) = &input.alarm_name {
        length(n, "alarmName", 1, 255)?;
    }
    let size = crate::paging::size(input.max_records, 100, 1..=100)
        .map_err(|m| constraint("maxRecords", &m.to_string(), "Member must have value between 1 and 100"))?;
    let after = match &input.next_token {
        None => None,
        Some(t) => Some(history_cursor(t).ok_or_else(|| {
            ControlError::code(ErrorCode::InvalidNextToken, "The service returned an invalid next token.")
        })?),
    };
    let alarm_types: Vec<String> = match &input.alarm_types {
        None => vec![AlarmType::MetricAlarm.as_str().to_string()],
        Some(ts) => ts.iter().map(|t| t.as_str().to_string()).collect(),
    };
    let query = AlarmHistoryQuery {
        alarm_name: input.alarm_name.clone(),
        alarm_types,
        item_type: input.history_item_type.map(|t| t.as_str().to_string()),
        start: input.start_date.map(|t| t.0),
        end: input.end_date.map(|t| t.0),
        ascending: input.scan_by == Some(ScanBy::TimestampAscending),
        after,
        limit: size + 1,
    };
    // An empty AlarmTypes list matches nothing (the store reads an empty list as "any").
    let mut rows = if query.alarm_types.is_empty() {
        Vec::new()
    } else {
        control.read(|tx| Ok(tx.alarm_history_page(&query)?))?
    };
    let next_token = (rows.len() > size).then(|| {
        rows.truncate(size);
        let last = &rows[size - 1];
        history_token(HistoryCursor { timestamp: last.timestamp, seq: last.seq })
    });
    Ok(DescribeAlarmHistoryOutput {
        alarm_history_items: Some(
            rows.into_iter()
                .map(|h| AlarmHistoryItem {
                    alarm_name: Some(h.alarm_name),
                    alarm_contributor_id: None,
                    alarm_type: AlarmType::parse(&h.alarm_type),
                    timestamp: timestamp(h.timestamp),
                    history_item_type: HistoryItemType::parse(&h.item_type),
                    history_summary: Some(h.summary),
                    history_data: Some(h.data),
                    alarm_contributor_attributes: None,
                })
                .collect(),
        ),
        next_token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_arns_by_kind() {
        let table: &[(&str, Option<ActionKind>)] = &[
            (
                "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:ac542982-cbeb-4294-891c-a5a941dfa787:resource/ecs/service/default/web:policyName/cpu",
                Some(ActionKind::AutoScaling),
            ),
            (
                "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:1:autoScalingGroupName/g:policyName/p",
                Some(ActionKind::AutoScaling),
            ),
            ("arn:aws:sns:us-east-1:123456789012:ops", Some(ActionKind::Sns)),
            ("arn:aws:lambda:us-east-1:123456789012:function:f:live", Some(ActionKind::Lambda)),
            ("arn:aws:automate:us-east-1:ec2:stop", Some(ActionKind::Ec2)),
            ("arn:aws:automate:us-east-1:ec2:explode", None),
            ("arn:aws:swf:us-east-1:123456789012:action/actions/AWS_EC2.InstanceId.Stop/1.0", Some(ActionKind::Ec2)),
            ("arn:aws:ssm:us-east-1:123456789012:opsitem:3#CATEGORY=Availability", Some(ActionKind::SystemsManager)),
            ("arn:aws:ssm-incidents::123456789012:responseplan/plan", Some(ActionKind::SystemsManager)),
            ("arn:aws-cn:sns:cn-north-1:123456789012:ops", Some(ActionKind::Sns)),
            ("arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:x", None),
            ("arn:aws:sqs:us-east-1:123456789012:q", None),
            ("arn:aws:sns:us-east-1:123456789012:", None),
            ("arn:other:sns:us-east-1:123456789012:t", None),
            ("sns:topic", None),
            ("", None),
        ];
        for (arn, want) in table {
            assert_eq!(ActionKind::of(arn), *want, "{arn}");
        }
        assert_eq!(ActionKind::AutoScaling.not_executable(), None);
        assert!(ActionKind::Sns.not_executable().is_some_and(|m| m.contains("SNS")));
    }

    #[test]
    fn history_tokens_round_trip_and_refuse_strangers() {
        let c = HistoryCursor { timestamp: 1_765_000_000.123, seq: 42 };
        assert_eq!(history_cursor(&history_token(c)), Some(c));
        assert_eq!(history_cursor("zz"), None);
        assert_eq!(history_cursor(&token::encode("12")), None);
    }
}
