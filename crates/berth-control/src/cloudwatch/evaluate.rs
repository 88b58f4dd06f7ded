//! Alarm evaluation on schedule: [`Control::evaluate_alarms`] evaluates every alarm that is due (each on its
//! cadence, `alarm::next_evaluation`) and returns the actions due, which the caller hands to the dispatcher
//! (`reconcile.rs`). State lives in the store only, so a restart evaluates from where the last process left off.
//!
//! Per due alarm: read its datapoints over the evaluation range (one metric's statistic, or a metric-math
//! alarm's `ReturnData` query through `berth_telemetry::math`), evaluate with `berth_telemetry::alarm::evaluate`,
//! and [`decide`] (pure) what changes: state, reason and reason data with their timestamps and a `StateUpdate`
//! history item on a transition, the next evaluation, and the actions due (on a transition, after a
//! SetAlarmState, and again every minute for Auto Scaling actions while the state lasts, `alarm::actions_due`).
//! The decisions of a batch are written in one short transaction, each only if no command changed its alarm since
//! it was read (the alarm's generation).

use berth_model::cloudwatch::{HistoryItemType, PutMetricAlarmInput};
use berth_store::{AlarmHistoryRow, AlarmRow};
use berth_telemetry::alarm::{self, Datapoint, Evaluation, State};
use berth_telemetry::{Aggregate, MetricId, math};

use super::alarms::{self as api, ActionKind, AlarmSpec, MetricRef, Source};
use crate::{Control, ControlError, now};

/// An action an alarm made due: carry out `action_arn` for `alarm_name`, now in `state`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmAction {
    pub alarm_name: String,
    pub alarm_arn: String,
    pub action_arn: String,
    pub state: State,
    /// The newest datapoint the state was decided on (`recentDatapoints` of its reason data), if any.
    pub newest_value: Option<f64>,
    /// The threshold it was compared with (its reason data's, else the alarm's; step scaling's bounds are
    /// relative to it).
    pub threshold: Option<f64>,
    /// The `StateReason`.
    pub reason: String,
}

/// Reads a metric's stored aggregates per `period` bucket in `[start, end)`: `(metric, every_unit, period, start,
/// end)`, in `metric.unit` only ([`Control::metric_aggregates`]) or, when `every_unit`, in every unit the metric
/// was recorded with, merged per bucket (an alarm without `Unit`).
pub type ReadAggregates<'a> =
    dyn Fn(&MetricId, bool, i64, i64, i64) -> Result<Vec<(i64, Aggregate)>, ControlError> + 'a;

/// Most alarms written per transaction.
const BATCH: usize = 100;

/// An evaluation's result, and when the alarm is next due.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Evaluated {
    /// The evaluation, or why the alarm could not be evaluated (its data could not be read or computed).
    pub result: Result<Evaluation, String>,
    pub next_evaluation: i64,
}

/// What one pass decided for one alarm.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decision {
    /// The generation the decision was made from: it is written only while the alarm still has it.
    pub generation: i64,
    pub row: AlarmRow,
    pub history: Vec<AlarmHistoryRow>,
    pub actions: Vec<AlarmAction>,
}

fn state_actions(c: &PutMetricAlarmInput, state: State) -> &[String] {
    match state {
        State::Ok => c.ok_actions.as_deref(),
        State::Alarm => c.alarm_actions.as_deref(),
        State::InsufficientData => c.insufficient_data_actions.as_deref(),
    }
    .unwrap_or_default()
}

/// The newest of `recentDatapoints` and the `threshold` of a StateReasonData.
fn reason_values(reason_data: Option<&str>) -> (Option<f64>, Option<f64>) {
    let Some(v) = reason_data.and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()) else {
        return (None, None);
    };
    let newest = v.get("recentDatapoints").and_then(|r| r.as_array()?.last()?.as_f64());
    (newest, v.get("threshold").and_then(serde_json::Value::as_f64))
}

fn action(row: &AlarmRow, config: Option<&PutMetricAlarmInput>, arn: &str, state: State) -> AlarmAction {
    let (newest_value, threshold) = reason_values(row.state_reason_data.as_deref());
    AlarmAction {
        alarm_name: row.name.clone(),
        alarm_arn: row.arn.clone(),
        action_arn: arn.to_string(),
        state,
        newest_value,
        threshold: threshold.or_else(|| config.and_then(|c| c.threshold)),
        reason: row.state_reason.clone(),
    }
}

/// What changes for one alarm at `now` (pure): `config` is its stored configuration (its action lists; `None`
/// when unreadable), `evaluated` the evaluation when it was due (`None`: only a SetAlarmState's actions were).
pub(crate) fn decide(
    row: &AlarmRow,
    config: Option<&PutMetricAlarmInput>,
    evaluated: Option<Evaluated>,
    now: f64,
) -> Decision {
    let now_i = now.floor() as i64;
    let mut out = row.clone();
    let mut history = Vec::new();
    let mut actions = Vec::new();
    let lists = |state: State| config.map(|c| state_actions(c, state)).unwrap_or_default();
    if row.actions_pending {
        out.actions_pending = false;
        if row.actions_enabled
            && let Ok(state) = State::parse(&row.state)
            && !lists(state).is_empty()
        {
            actions.extend(lists(state).iter().map(|arn| action(row, config, arn, state)));
            out.actions_run_at = Some(now_i);
        }
    }
    if let Some(Evaluated { result, next_evaluation }) = evaluated {
        out.next_evaluation = next_evaluation;
        match result {
            Err(_) => {
                if out.evaluation_state.as_deref() != Some("EVALUATION_ERROR") {
                    out.evaluation_state = Some("EVALUATION_ERROR".into());
                    out.state_updated = now;
                }
            }
            Ok(e) => {
                if out.evaluation_state.take().is_some() {
                    out.state_updated = now;
                }
                if e.changed {
                    let before = out.clone();
                    out.state = e.state.as_str().to_string();
                    out.state_reason = e.reason;
                    out.state_reason_data = Some(e.reason_data);
                    out.state_updated = now;
                    out.state_transitioned = now;
                    history.push(api::state_update_item(&before, &out, now));
                    let due = lists(e.state);
                    if out.actions_enabled && !due.is_empty() {
                        actions.extend(due.iter().map(|arn| action(&out, config, arn, e.state)));
                        out.actions_run_at = Some(now_i);
                    } else {
                        out.actions_run_at = None;
                    }
                } else if out.actions_enabled {
                    let scaling: Vec<&String> =
                        lists(e.state).iter().filter(|a| ActionKind::of(a) == Some(ActionKind::AutoScaling)).collect();
                    if !scaling.is_empty() && alarm::actions_due(false, true, out.actions_run_at, now_i) {
                        actions.extend(scaling.into_iter().map(|arn| action(&out, config, arn, e.state)));
                        out.actions_run_at = Some(now_i);
                    }
                }
            }
        }
    }
    Decision { generation: row.generation, row: out, history, actions }
}

/// A metric's aggregates in `[start, end)`; without a unit, every unit's merged per bucket.
fn aggregates(
    m: &MetricRef,
    period: i64,
    start: i64,
    end: i64,
    read: &ReadAggregates<'_>,
) -> Result<Vec<(i64, Aggregate)>, String> {
    read(&m.id(m.unit.unwrap_or_default()), m.unit.is_none(), period, start, end).map_err(|e| e.to_string())
}

/// The alarm's datapoints over its evaluation range at `now`.
pub(crate) fn datapoints(spec: &AlarmSpec, now: f64, read: &ReadAggregates<'_>) -> Result<Vec<Datapoint>, String> {
    let (start, end) = spec.config.window(now);
    let period = spec.config.period;
    match &spec.source {
        Source::Metric(m) => {
            let statistic = spec.config.statistic.as_ref().ok_or("the alarm has no statistic")?;
            Ok(alarm::datapoints(statistic, &aggregates(m, period, start, end, read)?))
        }
        Source::Math(queries) => {
            let mut ctx = math::Context {
                timestamps: (start..end).step_by(period.max(1) as usize).collect(),
                period,
                ..Default::default()
            };
            let mut returned = None;
            for q in queries {
                let Some((m, statistic)) = &q.metric else { continue };
                let points = alarm::datapoints(statistic, &aggregates(m, period, start, end, read)?);
                ctx.metrics.push((q.query.id.clone(), points.iter().map(|d| (d.timestamp, d.value)).collect()));
                if q.query.return_data {
                    returned = Some(points);
                }
            }
            if let Some(points) = returned {
                return Ok(points);
            }
            let id = queries.iter().find(|q| q.query.return_data).map(|q| q.query.id.clone()).ok_or("no ReturnData")?;
            let all: Vec<math::Query> = queries.iter().map(|q| q.query.clone()).collect();
            match math::evaluate_queries(&all, ctx).map_err(|e| e.to_string())?.remove(&id) {
                Some(math::Value::Series(s)) => Ok(s
                    .into_iter()
                    .map(|(timestamp, value)| Datapoint { timestamp, value, sample_count: 1.0 })
                    .collect()),
                _ => Err(format!("The expression {id} must produce a single time series.")),
            }
        }
    }
}

impl Control {
    /// Evaluates every alarm that is due at `now` (epoch seconds), stores what changed and returns the actions
    /// due, for [`Control::dispatch_alarm_actions`].
    pub fn evaluate_alarms(&self, now: f64) -> Result<Vec<AlarmAction>, ControlError> {
        self.evaluate_alarms_reading(now, &|m, every_unit, p, s, e| {
            if every_unit { self.metric_aggregates_any_unit(m, p, s, e) } else { self.metric_aggregates(m, p, s, e) }
        })
    }

    /// [`Control::evaluate_alarms`] reading the metrics' aggregates through `read` (tests give datapoints
    /// without the metric store).
    #[doc(hidden)]
    pub fn evaluate_alarms_reading(
        &self,
        now: f64,
        read: &ReadAggregates<'_>,
    ) -> Result<Vec<AlarmAction>, ControlError> {
        let now_i = now.floor() as i64;
        let due = self.read(|tx| Ok(tx.alarms_due(now_i)?))?;
        let mut actions = Vec::new();
        for batch in due.chunks(BATCH) {
            let decisions: Vec<Decision> = batch.iter().map(|row| self.decide_alarm(row, now, read)).collect();
            let written = self.tx(|tx| {
                let mut out = Vec::new();
                for d in decisions {
                    if tx.alarm_get(&d.row.name)?.is_none_or(|current| current.generation != d.generation) {
                        continue;
                    }
                    tx.alarm_put(&d.row)?;
                    for h in &d.history {
                        tx.alarm_history_add(h)?;
                    }
                    out.extend(d.actions);
                }
                tx.alarm_history_prune(now - api::HISTORY_RETENTION_SECS)?;
                Ok(out)
            })?;
            actions.extend(written);
        }
        Ok(actions)
    }

    fn decide_alarm(&self, row: &AlarmRow, now: f64, read: &ReadAggregates<'_>) -> Decision {
        let config = api::stored_config(row).ok();
        let evaluated = (row.next_evaluation <= now.floor() as i64).then(|| {
            let spec = config
                .as_ref()
                .ok_or_else(|| "unreadable configuration".to_string())
                .and_then(|c| api::spec(c).map_err(|e| e.to_string()));
            let next_evaluation = alarm::next_evaluation(spec.as_ref().map_or(60, |s| s.config.period), now);
            let result = spec.and_then(|s| {
                let points = datapoints(&s, now, read)?;
                Ok(alarm::evaluate(&s.config, &points, now, State::parse(&row.state).ok()))
            });
            if let Err(e) = &result {
                tracing::warn!(alarm = %row.name, error = %e, "alarm could not be evaluated");
            }
            Evaluated { result, next_evaluation }
        });
        decide(row, config.as_ref(), evaluated, now)
    }

    /// Records the outcome of carrying out an alarm's action as an `Action` history item.
    pub fn record_alarm_action_result(
        &self,
        alarm_name: &str,
        action_arn: &str,
        ok: bool,
        message: &str,
    ) -> Result<(), ControlError> {
        let t = now();
        let message: String = message.chars().take(2048).collect();
        let summary = if ok {
            format!("Successfully executed action {action_arn}")
        } else {
            format!("Failed to execute action {action_arn}. Received error: \"{message}\"")
        };
        let data = serde_json::json!({
            "actionState": if ok { "Succeeded" } else { "Failed" },
            "stateUpdateTimestamp": (t * 1000.0) as i64,
            "notificationResource": action_arn,
            if ok { "message" } else { "error" }: message,
        });
        let item = api::history_item(alarm_name, t, HistoryItemType::Action, summary, data.to_string());
        self.tx(|tx| Ok(tx.alarm_history_add(&item).map(|_| ())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(state: &str) -> AlarmRow {
        AlarmRow {
            name: "a".into(),
            arn: "arn:aws:cloudwatch:us-east-1:000000000000:alarm:a".into(),
            config: "{}".into(),
            namespace: Some("App".into()),
            metric_name: Some("Latency".into()),
            managed_by: None,
            actions_enabled: true,
            state: state.into(),
            state_reason: "r".into(),
            state_reason_data: None,
            evaluation_state: None,
            state_updated: 1.0,
            state_transitioned: 1.0,
            config_updated: 1.0,
            next_evaluation: 100,
            actions_run_at: None,
            actions_pending: false,
            generation: 3,
        }
    }

    const SCALE: &str =
        "arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:u:resource/ecs/service/default/web:policyName/p";
    const SNS: &str = "arn:aws:sns:us-east-1:000000000000:ops";

    fn config() -> PutMetricAlarmInput {
        PutMetricAlarmInput {
            alarm_actions: Some(vec![SCALE.into(), SNS.into()]),
            ok_actions: Some(vec![SNS.into()]),
            threshold: Some(50.0),
            ..Default::default()
        }
    }

    fn evaluated(state: State, changed: bool) -> Evaluated {
        Evaluated {
            result: Ok(Evaluation {
                state,
                reason: format!("to {}", state.as_str()),
                reason_data: r#"{"recentDatapoints":[1.0,7.5]}"#.into(),
                changed,
            }),
            next_evaluation: 160,
        }
    }

    fn arns(d: &Decision) -> Vec<(&str, State)> {
        d.actions.iter().map(|a| (a.action_arn.as_str(), a.state)).collect()
    }

    /// Which actions an evaluation makes due, by what happened (data-driven): a transition runs every action of
    /// the new state; staying in a state repeats only Auto Scaling actions, once a minute; disabled actions never
    /// run; a SetAlarmState's actions run at the next pass.
    #[test]
    fn actions_due_by_transition_repeat_and_set_state() {
        let c = config();
        type Case = (&'static str, AlarmRow, Option<Evaluated>, Vec<(&'static str, State)>, Option<i64>);
        let table: Vec<Case> = vec![
            (
                "OK → ALARM runs every ALARM action",
                row("OK"),
                Some(evaluated(State::Alarm, true)),
                vec![(SCALE, State::Alarm), (SNS, State::Alarm)],
                Some(100),
            ),
            (
                "ALARM → OK runs the OK actions",
                row("ALARM"),
                Some(evaluated(State::Ok, true)),
                vec![(SNS, State::Ok)],
                Some(100),
            ),
            (
                "to INSUFFICIENT_DATA with no actions",
                row("OK"),
                Some(evaluated(State::InsufficientData, true)),
                vec![],
                None,
            ),
            (
                "staying in ALARM a minute later repeats the scaling action only",
                AlarmRow { actions_run_at: Some(40), ..row("ALARM") },
                Some(evaluated(State::Alarm, false)),
                vec![(SCALE, State::Alarm)],
                Some(100),
            ),
            (
                "staying in ALARM within the minute repeats nothing",
                AlarmRow { actions_run_at: Some(41), ..row("ALARM") },
                Some(evaluated(State::Alarm, false)),
                vec![],
                Some(41),
            ),
            (
                "staying in OK repeats nothing (no scaling action)",
                AlarmRow { actions_run_at: Some(0), ..row("OK") },
                Some(evaluated(State::Ok, false)),
                vec![],
                Some(0),
            ),
            (
                "disabled actions do not run",
                AlarmRow { actions_enabled: false, ..row("OK") },
                Some(evaluated(State::Alarm, true)),
                vec![],
                None,
            ),
            (
                "a SetAlarmState's actions run without an evaluation",
                AlarmRow { actions_pending: true, ..row("ALARM") },
                None,
                vec![(SCALE, State::Alarm), (SNS, State::Alarm)],
                Some(100),
            ),
        ];
        for (what, r, e, want, run_at) in table {
            let d = decide(&r, Some(&c), e, 100.5);
            assert_eq!(arns(&d), want, "{what}");
            assert_eq!(d.row.actions_run_at, run_at, "{what}");
            assert!(!d.row.actions_pending, "{what}");
        }
    }

    #[test]
    fn a_transition_stores_state_reason_and_history_and_a_steady_state_only_the_schedule() {
        let c = config();
        let d = decide(&row("OK"), Some(&c), Some(evaluated(State::Alarm, true)), 100.5);
        assert_eq!(
            (d.row.state.as_str(), d.row.state_reason.as_str(), d.row.state_updated, d.row.state_transitioned),
            ("ALARM", "to ALARM", 100.5, 100.5)
        );
        assert_eq!(d.row.next_evaluation, 160);
        assert_eq!(d.history.len(), 1);
        assert_eq!(d.history[0].summary, "Alarm updated from OK to ALARM");
        let data: serde_json::Value = serde_json::from_str(&d.history[0].data).expect("json");
        assert_eq!(data["newState"]["stateReasonData"]["recentDatapoints"][1], 7.5);
        assert_eq!((d.actions[0].newest_value, d.actions[0].threshold), (Some(7.5), Some(50.0)));
        assert_eq!(d.actions[0].reason, "to ALARM");
        assert_eq!(d.generation, 3);

        let steady = decide(&row("OK"), Some(&c), Some(evaluated(State::Ok, false)), 100.5);
        assert_eq!(steady.row, AlarmRow { next_evaluation: 160, ..row("OK") });
        assert!(steady.history.is_empty());

        let failed = Evaluated { result: Err("boom".into()), next_evaluation: 160 };
        let d = decide(&row("OK"), Some(&c), Some(failed), 100.5);
        assert_eq!(
            (d.row.state.as_str(), d.row.evaluation_state.as_deref(), d.row.state_updated),
            ("OK", Some("EVALUATION_ERROR"), 100.5)
        );
        let recovered = decide(&d.row, Some(&c), Some(evaluated(State::Ok, false)), 110.0);
        assert_eq!((recovered.row.evaluation_state, recovered.row.state_updated), (None, 110.0));
    }
}
