//! CloudWatch alarms through the control plane: PutMetricAlarm's validation, DescribeAlarms' filters and pages,
//! the stored evaluation path (datapoints → evaluation at chosen times → state, reason and history in the store,
//! actions due), the documented M-of-N × TreatMissingData table, a metric-math alarm, SetAlarmState and the
//! evaluation that follows, and a restart that keeps state and history.
//!
//! Datapoints come from an in-test series store handed to `Control::evaluate_alarms_reading` (the seam of
//! `evaluate_alarms`, which reads `Control::metric_aggregates`), bucketed per period as the metric store does.

use std::cell::RefCell;
use std::collections::BTreeMap;

use berth_control::cloudwatch::AlarmAction;
use berth_control::{ControlConfig, ControlError};
use berth_core::{AwsError, ErrorCode};
use berth_model::Timestamp;
use berth_model::cloudwatch::{
    self as cw, ComparisonOperator as Cmp, MetricAlarm, Operation as Op, Output as Out, PutMetricAlarmInput, StateValue,
};
use berth_telemetry::alarm::State;
use berth_telemetry::{Aggregate, MetricId, Unit};

mod common;

use common::Harness;

const SCALE: &str =
    "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:7f2c:resource/ecs/service/default/web:policyName/cpu";
const SNS: &str = "arn:aws:sns:us-east-1:123456789012:ops";

/// A minute boundary ten minutes ahead of the clock: alarms created now are due by then.
fn future_minute() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    (now / 60 + 10) * 60
}

/// (metric name, unit) → (timestamp, value) samples.
type Samples = BTreeMap<(String, Unit), Vec<(i64, f64)>>;

struct Cw {
    h: Harness,
    data: RefCell<Samples>,
}

impl Cw {
    fn new(name: &str) -> Cw {
        Cw { h: Harness::new(&format!("alarms-{name}"), |_| ControlConfig::default()), data: RefCell::default() }
    }

    async fn call(&self, op: Op) -> Result<Out, AwsError> {
        self.h.control.handle_cloudwatch(&self.h.caller, op).await
    }

    async fn ok(&self, op: Op) -> Out {
        let name = op.name();
        self.call(op).await.unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    async fn err(&self, op: Op) -> AwsError {
        let name = op.name();
        match self.call(op).await {
            Ok(out) => panic!("{name} succeeded: {out:?}"),
            Err(e) => e,
        }
    }

    fn publish(&self, metric: &str, unit: Unit, t: i64, v: f64) {
        self.data.borrow_mut().entry((metric.to_string(), unit)).or_default().push((t, v));
    }

    /// What the metric store would answer: the samples of that series (in its unit, or in every unit), merged per
    /// period bucket.
    fn read(
        &self,
        m: &MetricId,
        every_unit: bool,
        period: i64,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Aggregate)>, ControlError> {
        let mut buckets: BTreeMap<i64, Aggregate> = BTreeMap::new();
        let data = self.data.borrow();
        let series = data.iter().filter(|((name, unit), _)| *name == m.name && (every_unit || *unit == m.unit));
        for (t, v) in series.flat_map(|(_, samples)| samples) {
            if (start..end).contains(t) {
                let b = t.div_euclid(period) * period;
                let one = Aggregate::of_values(&[(*v, 1.0)]);
                match buckets.get_mut(&b) {
                    Some(a) => a.merge(&one),
                    None => {
                        buckets.insert(b, one);
                    }
                }
            }
        }
        Ok(buckets.into_iter().collect())
    }

    fn evaluate(&self, now: f64) -> Vec<AlarmAction> {
        self.h.control.evaluate_alarms_reading(now, &|m, u, p, s, e| self.read(m, u, p, s, e)).expect("evaluate")
    }

    async fn put(&self, input: PutMetricAlarmInput) {
        self.ok(Op::PutMetricAlarm(input)).await;
    }

    async fn alarm(&self, name: &str) -> MetricAlarm {
        let Out::DescribeAlarms(out) = self
            .ok(Op::DescribeAlarms(cw::DescribeAlarmsInput {
                alarm_names: Some(vec![name.into()]),
                ..Default::default()
            }))
            .await
        else {
            panic!("not DescribeAlarms")
        };
        let mut alarms = out.metric_alarms.expect("MetricAlarms");
        assert_eq!(alarms.len(), 1, "{name}");
        alarms.remove(0)
    }

    async fn state(&self, name: &str) -> StateValue {
        self.alarm(name).await.state_value.expect("StateValue")
    }

    /// The alarm's history summaries of one type, oldest first.
    async fn history(&self, name: &str, kind: cw::HistoryItemType) -> Vec<String> {
        let Out::DescribeAlarmHistory(out) = self
            .ok(Op::DescribeAlarmHistory(cw::DescribeAlarmHistoryInput {
                alarm_name: Some(name.into()),
                history_item_type: Some(kind),
                scan_by: Some(cw::ScanBy::TimestampAscending),
                ..Default::default()
            }))
            .await
        else {
            panic!("not DescribeAlarmHistory")
        };
        out.alarm_history_items.expect("items").into_iter().map(|i| i.history_summary.expect("summary")).collect()
    }

    async fn set_state(&self, name: &str, state: StateValue, data: Option<&str>) {
        self.ok(Op::SetAlarmState(cw::SetAlarmStateInput {
            alarm_name: Some(name.into()),
            state_value: Some(state),
            state_reason: Some("forced by a test".into()),
            state_reason_data: data.map(str::to_string),
        }))
        .await;
    }
}

/// An alarm on `App`/`metric` (Average > 50) with N, M and TreatMissingData.
fn alarm(name: &str, metric: &str, period: i32, n: i32, m: i32, treat: &str) -> PutMetricAlarmInput {
    PutMetricAlarmInput {
        alarm_name: Some(name.into()),
        namespace: Some("App".into()),
        metric_name: Some(metric.into()),
        statistic: Some(cw::Statistic::Average),
        period: Some(period),
        evaluation_periods: Some(n),
        datapoints_to_alarm: Some(m),
        threshold: Some(50.0),
        comparison_operator: Some(Cmp::GreaterThanThreshold),
        treat_missing_data: Some(treat.into()),
        ..Default::default()
    }
}

#[derive(Debug, Clone, Copy)]
enum Want {
    S(StateValue),
    Keep,
}
use StateValue::{Alarm as A, InsufficientData as I, Ok as O};
use Want::{Keep, S};

/// The documented M-of-N table (reference §3.4: N = 3, evaluation range 5, oldest → newest; `0` = 10, `X` = 100,
/// `-` missing) through the stored path: datapoints published, one evaluation at a chosen time, the state read
/// back with DescribeAlarms and the transition's history item read back with DescribeAlarmHistory. "keep state"
/// rows are checked from OK and from ALARM (set with SetAlarmState), so they cannot pass by accident.
#[tokio::test]
async fn m_of_n_and_treat_missing_data_table_through_the_store() {
    let c = Cw::new("table");
    let end = future_minute();
    let table: [(&str, i32, [Want; 4]); 9] = [
        ("0 - X - X", 3, [S(O), S(O), S(O), S(O)]),
        ("0 - - - -", 3, [S(O), S(O), S(O), S(O)]),
        ("- - - - -", 3, [S(I), Keep, S(A), S(O)]),
        ("0 X X - X", 3, [S(A), S(A), S(A), S(A)]),
        ("- - X - -", 3, [S(A), Keep, S(A), S(O)]),
        ("0 - X - X", 2, [S(A), S(A), S(A), S(A)]),
        ("0 - X - -", 2, [S(O), S(O), S(A), S(O)]),
        ("- - - - 0", 2, [S(O), S(O), S(A), S(O)]),
        ("- - - X -", 2, [S(A), Keep, S(A), S(O)]),
    ];
    let treats = ["missing", "ignore", "breaching", "notBreaching"];
    // (alarm, expected state, whether a transition from the starting state is expected)
    let mut cases: Vec<(String, StateValue, bool)> = Vec::new();
    for (row, (pattern, m, wants)) in table.iter().enumerate() {
        let metric = format!("row{row}");
        for (i, slot) in pattern.split_whitespace().enumerate() {
            let t = end - (5 - i as i64) * 60 + 7;
            match slot {
                "0" => c.publish(&metric, Unit::None, t, 10.0),
                "X" => c.publish(&metric, Unit::None, t, 100.0),
                _ => {}
            }
        }
        for (treat, want) in treats.iter().zip(wants) {
            match want {
                S(state) => {
                    let name = format!("{row}-{treat}");
                    c.put(alarm(&name, &metric, 60, 3, *m, treat)).await;
                    cases.push((name, *state, *state != I));
                }
                Keep => {
                    for prior in [O, A] {
                        let name = format!("{row}-{treat}-from-{}", prior.as_str());
                        c.put(alarm(&name, &metric, 60, 3, *m, treat)).await;
                        c.set_state(&name, prior, None).await;
                        cases.push((name, prior, false));
                    }
                }
            }
        }
    }
    c.evaluate(end as f64 + 30.0);
    for (name, want, transition) in cases {
        assert_eq!(c.state(&name).await, want, "{name}");
        let updates = c.history(&name, cw::HistoryItemType::StateUpdate).await;
        if transition {
            assert_eq!(updates, [format!("Alarm updated from INSUFFICIENT_DATA to {}", want.as_str())], "{name}");
        } else if name.contains("-from-") {
            // Only SetAlarmState's own transition: the evaluation kept the state.
            assert_eq!(updates, [format!("Alarm updated from INSUFFICIENT_DATA to {}", want.as_str())], "{name}");
        } else {
            assert_eq!(updates, Vec::<String>::new(), "{name}");
        }
    }
}

/// An alarm on a custom metric goes OK → ALARM → OK on its 10-second cadence, with its reasons, its history and
/// the actions due: every action of the new state on a transition, the Auto Scaling action again a minute later
/// while the alarm stays in ALARM, nothing between evaluations.
#[tokio::test]
async fn ok_alarm_ok_with_history_and_the_actions_due() {
    let c = Cw::new("cycle");
    let b = future_minute();
    let input = PutMetricAlarmInput {
        alarm_actions: Some(vec![SCALE.into(), SNS.into()]),
        ok_actions: Some(vec![SNS.into()]),
        unit: Some(cw::StandardUnit::Milliseconds),
        ..alarm("latency", "Latency", 10, 3, 2, "missing")
    };
    c.put(input).await;
    let created = c.alarm("latency").await;
    assert_eq!(created.state_value, Some(I));
    assert_eq!(created.state_reason.as_deref(), Some("Unchecked: Initial alarm creation"));
    assert_eq!(
        created.alarm_arn.as_deref(),
        Some(format!("arn:aws:cloudwatch:us-east-1:{}:alarm:latency", c.h.control.account_id()).as_str())
    );

    let publish = |from: i64, to: i64, v: f64| {
        for t in (from..to).step_by(10) {
            c.publish("Latency", Unit::Milliseconds, t + 3, v);
            // Another unit of the same metric is another series: never read by this alarm.
            c.publish("Latency", Unit::Seconds, t + 3, 1000.0);
        }
    };
    let arns = |a: &[AlarmAction]| a.iter().map(|a| (a.action_arn.clone(), a.state)).collect::<Vec<_>>();

    publish(b - 30, b, 10.0);
    let actions = c.evaluate(b as f64 + 1.0);
    assert_eq!(c.state("latency").await, O);
    assert_eq!(arns(&actions), [(SNS.to_string(), State::Ok)]);

    // Not due again until b + 10: nothing happens in between.
    publish(b, b + 20, 90.0);
    assert_eq!(c.evaluate(b as f64 + 9.0), []);
    assert_eq!(c.state("latency").await, O);

    // [b-30, b+20): 10 10 10 90 90 → newest 3: 10 90 90, 2 breaching of M = 2.
    let actions = c.evaluate(b as f64 + 21.0);
    let a = c.alarm("latency").await;
    assert_eq!(a.state_value, Some(A));
    assert_eq!(arns(&actions), [(SCALE.to_string(), State::Alarm), (SNS.to_string(), State::Alarm)]);
    assert_eq!((actions[0].newest_value, actions[0].threshold), (Some(90.0), Some(50.0)));
    assert_eq!(actions[0].alarm_name, "latency");
    let reason = a.state_reason.expect("reason");
    assert!(
        reason.starts_with("Threshold Crossed: 2 out of the last 3 datapoints [90.0 (")
            && reason
                .ends_with("were greater than the threshold (50.0) (minimum 2 datapoints for OK -> ALARM transition)."),
        "{reason}"
    );
    let data: serde_json::Value = serde_json::from_str(&a.state_reason_data.expect("data")).expect("json");
    assert_eq!(data["recentDatapoints"], serde_json::json!([10.0, 90.0, 90.0]));
    assert_eq!(data["statistic"], "Average");
    assert_eq!(data["period"], 10);
    assert_eq!(a.state_transitioned_timestamp, Some(Timestamp(b as f64 + 21.0)));

    // Still in ALARM: the scaling action repeats once a minute, the SNS action does not.
    publish(b + 20, b + 90, 90.0);
    for t in [31, 41, 51, 61, 71] {
        assert_eq!(c.evaluate((b + t) as f64), [], "at b+{t}");
    }
    assert_eq!(arns(&c.evaluate(b as f64 + 81.0)), [(SCALE.to_string(), State::Alarm)]);

    // Calm: two of the newest three below the threshold → OK.
    publish(b + 90, b + 110, 10.0);
    let actions = c.evaluate(b as f64 + 111.0);
    assert_eq!(c.state("latency").await, O);
    assert_eq!(arns(&actions), [(SNS.to_string(), State::Ok)]);

    assert_eq!(
        c.history("latency", cw::HistoryItemType::StateUpdate).await,
        [
            "Alarm updated from INSUFFICIENT_DATA to OK",
            "Alarm updated from OK to ALARM",
            "Alarm updated from ALARM to OK"
        ]
    );
    assert_eq!(c.history("latency", cw::HistoryItemType::ConfigurationUpdate).await, ["Alarm \"latency\" created"]);

    c.h.control
        .record_alarm_action_result("latency", SNS, false, "berth does not deliver SNS notifications")
        .expect("record");
    c.h.control.record_alarm_action_result("latency", SCALE, true, "scaled to 3").expect("record");
    assert_eq!(
        c.history("latency", cw::HistoryItemType::Action).await,
        [
            format!("Failed to execute action {SNS}. Received error: \"berth does not deliver SNS notifications\""),
            format!("Successfully executed action {SCALE}")
        ]
    );
}

/// A metric-math alarm: an error rate in percent from two metrics' sums, alarming above 5%.
#[tokio::test]
async fn a_metric_math_alarm_evaluates_its_return_data_expression() {
    let c = Cw::new("math");
    let b = future_minute();
    let stat = |id: &str, metric: &str| cw::MetricDataQuery {
        id: Some(id.into()),
        metric_stat: Some(cw::MetricStat {
            metric: Some(cw::Metric {
                namespace: Some("App".into()),
                metric_name: Some(metric.into()),
                dimensions: Some(vec![cw::Dimension { name: Some("Service".into()), value: Some("web".into()) }]),
            }),
            period: Some(60),
            stat: Some("Sum".into()),
            unit: Some(cw::StandardUnit::Count),
        }),
        return_data: Some(false),
        ..Default::default()
    };
    let input = PutMetricAlarmInput {
        alarm_name: Some("error-rate".into()),
        metrics: Some(vec![
            stat("errors", "Errors"),
            stat("requests", "Requests"),
            cw::MetricDataQuery {
                id: Some("rate".into()),
                expression: Some("100 * errors / requests".into()),
                label: Some("Error rate".into()),
                return_data: Some(true),
                ..Default::default()
            },
        ]),
        evaluation_periods: Some(1),
        threshold: Some(5.0),
        comparison_operator: Some(Cmp::GreaterThanOrEqualToThreshold),
        ..Default::default()
    };
    c.put(input).await;
    for (t, errors, requests) in [(b - 120, 1.0, 100.0), (b - 60, 10.0, 100.0), (b, 2.0, 100.0)] {
        c.publish("Errors", Unit::Count, t + 1, errors);
        c.publish("Requests", Unit::Count, t + 1, requests / 2.0);
        c.publish("Requests", Unit::Count, t + 2, requests / 2.0);
    }
    c.evaluate(b as f64 - 59.0);
    assert_eq!(c.state("error-rate").await, O);
    c.evaluate(b as f64 + 1.0);
    let a = c.alarm("error-rate").await;
    assert_eq!(a.state_value, Some(A));
    assert_eq!((a.metric_name, a.namespace, a.period), (None, None, None));
    assert_eq!(a.metrics.as_ref().map(Vec::len), Some(3));
    let data: serde_json::Value = serde_json::from_str(&a.state_reason_data.expect("data")).expect("json");
    assert_eq!(data["recentDatapoints"], serde_json::json!([10.0]));
    assert_eq!((data.get("statistic"), data.get("extendedStatistic")), (None, None));
    c.evaluate(b as f64 + 61.0);
    assert_eq!(c.state("error-rate").await, O);
}

/// SetAlarmState shows the forced state at once, its actions are due at the next pass (with the newest value
/// of its reason data), and the next scheduled evaluation recomputes the real state.
#[tokio::test]
async fn set_alarm_state_then_the_next_evaluation_recomputes() {
    let c = Cw::new("set-state");
    let b = future_minute();
    c.put(PutMetricAlarmInput { alarm_actions: Some(vec![SCALE.into()]), ..alarm("cpu", "CPU", 60, 1, 1, "missing") })
        .await;
    c.publish("CPU", Unit::None, b - 50, 20.0);
    assert_eq!(c.evaluate(b as f64 + 1.0), []);
    assert_eq!(c.state("cpu").await, O);

    c.set_state("cpu", A, Some(r#"{"version":"1.0","recentDatapoints":[99.5],"threshold":42.0}"#)).await;
    let forced = c.alarm("cpu").await;
    assert_eq!((forced.state_value, forced.state_reason.as_deref()), (Some(A), Some("forced by a test")));
    // Not due (next evaluation at b + 60), but the forced state's actions are.
    let actions = c.evaluate(b as f64 + 2.0);
    assert_eq!(
        actions.iter().map(|a| (a.action_arn.as_str(), a.state, a.newest_value, a.threshold)).collect::<Vec<_>>(),
        [(SCALE, State::Alarm, Some(99.5), Some(42.0))]
    );
    assert_eq!(c.evaluate(b as f64 + 3.0), [], "the actions ran once");
    assert_eq!(c.state("cpu").await, A);

    c.publish("CPU", Unit::None, b + 10, 20.0);
    c.evaluate(b as f64 + 61.0);
    assert_eq!(c.state("cpu").await, O);
    // SetAlarmState stamps the real clock while the test evaluates minutes ahead of it: compare without order.
    let mut updates = c.history("cpu", cw::HistoryItemType::StateUpdate).await;
    updates.sort();
    assert_eq!(
        updates,
        [
            "Alarm updated from ALARM to OK",
            "Alarm updated from INSUFFICIENT_DATA to OK",
            "Alarm updated from OK to ALARM"
        ]
    );

    let bad = |data: &str, name: &str| {
        Op::SetAlarmState(cw::SetAlarmStateInput {
            alarm_name: Some(name.into()),
            state_value: Some(A),
            state_reason: Some("x".into()),
            state_reason_data: Some(data.into()),
        })
    };
    assert_eq!(c.err(bad("{not json", "cpu")).await.code, ErrorCode::CwInvalidFormat);
    assert_eq!(c.err(bad("{}", "nope")).await.code, ErrorCode::CwResourceNotFound);
    assert_eq!(c.err(bad(&"x".repeat(4001), "cpu")).await.code, ErrorCode::ValidationError);
    assert_eq!(c.state("cpu").await, O, "a refused SetAlarmState changes nothing");
}

/// A restart keeps every alarm's state, reason, timestamps, schedule and history: the next evaluation continues
/// from the stored state (no second transition on the same data).
#[tokio::test]
async fn a_restart_keeps_state_and_history() {
    let mut c = Cw::new("restart");
    let b = future_minute();
    c.put(alarm("disk", "Disk", 60, 2, 2, "missing")).await;
    c.publish("Disk", Unit::None, b - 100, 80.0);
    c.publish("Disk", Unit::None, b - 40, 90.0);
    c.evaluate(b as f64 + 5.0);
    let before = c.alarm("disk").await;
    assert_eq!(before.state_value, Some(A));
    let history = c.history("disk", cw::HistoryItemType::StateUpdate).await;

    c.h.restart();
    assert_eq!(c.alarm("disk").await, before);
    assert_eq!(c.history("disk", cw::HistoryItemType::StateUpdate).await, history);
    // Not due again before b + 60, after the restart too.
    assert_eq!(c.evaluate(b as f64 + 30.0), []);
    c.publish("Disk", Unit::None, b + 20, 95.0);
    c.evaluate(b as f64 + 61.0);
    let after = c.alarm("disk").await;
    assert_eq!((after.state_value, after.state_transitioned_timestamp), (Some(A), before.state_transitioned_timestamp));
    assert_eq!(c.history("disk", cw::HistoryItemType::StateUpdate).await, history);
}

/// PutMetricAlarm refuses what CloudWatch refuses, with its error codes, and writes nothing.
#[tokio::test]
async fn put_metric_alarm_validation_table() {
    let c = Cw::new("validation");
    let ok = alarm("valid", "M", 60, 3, 2, "missing");
    let math = |queries: Vec<cw::MetricDataQuery>| PutMetricAlarmInput {
        alarm_name: Some("math".into()),
        metrics: Some(queries),
        evaluation_periods: Some(1),
        threshold: Some(1.0),
        comparison_operator: Some(Cmp::GreaterThanThreshold),
        ..Default::default()
    };
    let q = |id: &str, period: i32, ret: bool| cw::MetricDataQuery {
        id: Some(id.into()),
        metric_stat: Some(cw::MetricStat {
            metric: Some(cw::Metric { namespace: Some("App".into()), metric_name: Some("M".into()), dimensions: None }),
            period: Some(period),
            stat: Some("Average".into()),
            unit: None,
        }),
        return_data: Some(ret),
        ..Default::default()
    };
    let e = |id: &str, expr: &str, ret: bool| cw::MetricDataQuery {
        id: Some(id.into()),
        expression: Some(expr.into()),
        return_data: Some(ret),
        ..Default::default()
    };
    use ErrorCode as E;
    let table: Vec<(&str, PutMetricAlarmInput, ErrorCode)> = vec![
        ("period 45", PutMetricAlarmInput { period: Some(45), ..ok.clone() }, E::InvalidParameterValue),
        ("M > N", PutMetricAlarmInput { datapoints_to_alarm: Some(4), ..ok.clone() }, E::InvalidParameterValue),
        ("N = 0", PutMetricAlarmInput { evaluation_periods: Some(0), ..ok.clone() }, E::InvalidParameterValue),
        (
            "over a day at 60 s",
            PutMetricAlarmInput { evaluation_periods: Some(1441), datapoints_to_alarm: None, ..ok.clone() },
            E::InvalidParameterValue,
        ),
        (
            "anomaly band",
            PutMetricAlarmInput {
                comparison_operator: Some(Cmp::LessThanLowerOrGreaterThanUpperThreshold),
                ..ok.clone()
            },
            E::InvalidParameterValue,
        ),
        (
            "ThresholdMetricId",
            PutMetricAlarmInput { threshold_metric_id: Some("ad1".into()), ..ok.clone() },
            E::ValidationError,
        ),
        ("no threshold", PutMetricAlarmInput { threshold: None, ..ok.clone() }, E::MissingParameter),
        ("no operator", PutMetricAlarmInput { comparison_operator: None, ..ok.clone() }, E::MissingParameter),
        ("no statistic", PutMetricAlarmInput { statistic: None, ..ok.clone() }, E::MissingParameter),
        (
            "both statistics",
            PutMetricAlarmInput { extended_statistic: Some("p99".into()), ..ok.clone() },
            E::InvalidParameterCombination,
        ),
        (
            "p99 is fine but not p101",
            PutMetricAlarmInput { statistic: None, extended_statistic: Some("p101".into()), ..ok.clone() },
            E::InvalidParameterValue,
        ),
        (
            "trimmed outside 10..90",
            PutMetricAlarmInput { statistic: None, extended_statistic: Some("TM(5%:95%)".into()), ..ok.clone() },
            E::InvalidParameterValue,
        ),
        (
            "bad TreatMissingData",
            PutMetricAlarmInput { treat_missing_data: Some("zero".into()), ..ok.clone() },
            E::InvalidParameterValue,
        ),
        (
            "bad EvaluateLowSampleCountPercentile",
            PutMetricAlarmInput { evaluate_low_sample_count_percentile: Some("maybe".into()), ..ok.clone() },
            E::InvalidParameterValue,
        ),
        ("empty name", PutMetricAlarmInput { alarm_name: Some(String::new()), ..ok.clone() }, E::ValidationError),
        ("long name", PutMetricAlarmInput { alarm_name: Some("n".repeat(256)), ..ok.clone() }, E::ValidationError),
        (
            "long description",
            PutMetricAlarmInput { alarm_description: Some("d".repeat(1025)), ..ok.clone() },
            E::ValidationError,
        ),
        (
            "a configuration over 120 KB",
            math(
                (0..10)
                    .map(|i| cw::MetricDataQuery {
                        label: Some("l".repeat(12 * 1024)),
                        ..q(&format!("m{i}"), 60, i == 0)
                    })
                    .collect(),
            ),
            E::ValidationError,
        ),
        (
            "namespace starting with ':'",
            PutMetricAlarmInput { namespace: Some(":x".into()), ..ok.clone() },
            E::InvalidParameterValue,
        ),
        (
            "six actions",
            PutMetricAlarmInput { alarm_actions: Some(vec![SNS.into(); 6]), ..ok.clone() },
            E::ValidationError,
        ),
        (
            "an ARN that is no action",
            PutMetricAlarmInput { ok_actions: Some(vec!["arn:aws:sqs:us-east-1:1:q".into()]), ..ok.clone() },
            E::ValidationError,
        ),
        (
            "51 tags",
            PutMetricAlarmInput {
                tags: Some((0..51).map(|i| cw::Tag { key: Some(format!("k{i}")), value: Some("v".into()) }).collect()),
                ..ok.clone()
            },
            E::ValidationError,
        ),
        ("PromQL", PutMetricAlarmInput { evaluation_interval: Some(60), ..ok.clone() }, E::ValidationError),
        (
            "warm-up",
            PutMetricAlarmInput {
                warm_up_configuration: Some(cw::WarmUpConfiguration {
                    warm_up_period_duration_in_minutes: Some(5),
                    only_start_evaluating_after_warm_up_period_ends: None,
                }),
                ..ok.clone()
            },
            E::ValidationError,
        ),
        (
            "no metric at all",
            PutMetricAlarmInput { namespace: None, metric_name: None, statistic: None, period: None, ..ok.clone() },
            E::MissingParameter,
        ),
        (
            "Metrics with MetricName",
            PutMetricAlarmInput { metric_name: Some("M".into()), ..math(vec![q("m1", 60, true)]) },
            E::InvalidParameterCombination,
        ),
        ("two ReturnData", math(vec![q("m1", 60, true), e("e1", "m1 * 2", true)]), E::InvalidParameterValue),
        ("no ReturnData", math(vec![q("m1", 60, false)]), E::InvalidParameterValue),
        (
            "mixed periods",
            math(vec![q("m1", 60, false), q("m2", 120, false), e("e1", "m1 + m2", true)]),
            E::ValidationError,
        ),
        ("bad id", math(vec![q("M1", 60, true)]), E::InvalidParameterValue),
        ("unparsable expression", math(vec![q("m1", 60, false), e("e1", "m1 +", true)]), E::InvalidParameterValue),
        ("SEARCH", math(vec![e("e1", "SEARCH('{App} M', 'Average', 60)", true)]), E::InvalidParameterValue),
        ("only expressions", math(vec![e("e1", "m1 * 2", true)]), E::ValidationError),
        (
            "EC2 action on math",
            PutMetricAlarmInput {
                alarm_actions: Some(vec!["arn:aws:automate:us-east-1:ec2:stop".into()]),
                ..math(vec![q("m1", 60, true)])
            },
            E::ValidationError,
        ),
    ];
    for (what, input, code) in table {
        let got = c.err(Op::PutMetricAlarm(input)).await;
        assert_eq!(got.code, code, "{what}: {}", got.message);
    }
    let Out::DescribeAlarms(out) = c.ok(Op::DescribeAlarms(Default::default())).await else { panic!() };
    assert_eq!(out.metric_alarms, Some(vec![]), "nothing was written");
    // What the table's rows vary is accepted when valid.
    for input in [
        ok.clone(),
        PutMetricAlarmInput {
            alarm_name: Some("hi-res".into()),
            period: Some(10),
            evaluation_periods: Some(8640),
            datapoints_to_alarm: None,
            ..ok.clone()
        },
        PutMetricAlarmInput { alarm_name: Some("twenty".into()), period: Some(20), ..ok.clone() },
        PutMetricAlarmInput {
            alarm_name: Some("hourly-week".into()),
            period: Some(3600),
            evaluation_periods: Some(168),
            ..ok.clone()
        },
        PutMetricAlarmInput {
            alarm_name: Some("p99".into()),
            statistic: None,
            extended_statistic: Some("p99".into()),
            evaluate_low_sample_count_percentile: Some("ignore".into()),
            ..ok.clone()
        },
        PutMetricAlarmInput {
            alarm_name: Some("tm".into()),
            statistic: None,
            extended_statistic: Some("TM(10%:90%)".into()),
            ..ok.clone()
        },
        PutMetricAlarmInput {
            alarm_name: Some("actions".into()),
            alarm_actions: Some(vec![SCALE.into(), SNS.into(), "arn:aws:automate:us-east-1:ec2:reboot".into()]),
            insufficient_data_actions: Some(vec!["arn:aws:lambda:us-east-1:123456789012:function:f".into()]),
            ..ok.clone()
        },
        PutMetricAlarmInput {
            alarm_name: Some("math-ok".into()),
            ..math(vec![q("m1", 60, false), e("e1", "FILL(m1, 0) * 2", true)])
        },
    ] {
        c.put(input).await;
    }
    for op in [
        Cmp::GreaterThanOrEqualToThreshold,
        Cmp::GreaterThanThreshold,
        Cmp::LessThanThreshold,
        Cmp::LessThanOrEqualToThreshold,
    ] {
        c.put(PutMetricAlarmInput {
            alarm_name: Some(format!("op-{}", op.as_str())),
            comparison_operator: Some(op),
            ..ok.clone()
        })
        .await;
    }
}

/// DescribeAlarms' filters and pages, DescribeAlarmsForMetric, an update in place (state kept, configuration
/// replaced), Enable/DisableAlarmActions, DeleteAlarms, and DescribeAlarmHistory's filters, order and pages.
#[tokio::test]
async fn describe_update_enable_delete_and_history_pages() {
    let c = Cw::new("describe");
    let b = future_minute();
    for i in 0..7 {
        let actions = if i % 2 == 0 { Some(vec![SCALE.into()]) } else { Some(vec![SNS.into()]) };
        let mut input = PutMetricAlarmInput {
            alarm_actions: actions,
            ..alarm(&format!("web-{i}"), "Requests", 60, 1, 1, "missing")
        };
        if i == 6 {
            input.metric_name = Some("Errors".into());
            input.dimensions = Some(vec![cw::Dimension { name: Some("Service".into()), value: Some("web".into()) }]);
        }
        c.put(input).await;
    }
    c.put(alarm("api-0", "Requests", 60, 1, 1, "missing")).await;
    c.publish("Requests", Unit::None, b - 30, 100.0);
    c.evaluate(b as f64 + 1.0);

    let describe = |input: cw::DescribeAlarmsInput| async {
        let Out::DescribeAlarms(out) = c.ok(Op::DescribeAlarms(input)).await else { panic!() };
        let names: Vec<String> =
            out.metric_alarms.expect("alarms").into_iter().map(|a| a.alarm_name.expect("name")).collect();
        (names, out.next_token, out.composite_alarms)
    };
    // Pages of 3 by name, walked to the end.
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let (page, next, _) =
            describe(cw::DescribeAlarmsInput { max_records: Some(3), next_token: token.clone(), ..Default::default() })
                .await;
        assert!(page.len() <= 3);
        names.extend(page);
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(names, ["api-0", "web-0", "web-1", "web-2", "web-3", "web-4", "web-5", "web-6"]);
    let (prefixed, _, composites) =
        describe(cw::DescribeAlarmsInput { alarm_name_prefix: Some("web-".into()), ..Default::default() }).await;
    assert_eq!((prefixed.len(), composites), (7, Some(vec![])));
    let (scaling, _, _) =
        describe(cw::DescribeAlarmsInput { action_prefix: Some("arn:aws:autoscaling:".into()), ..Default::default() })
            .await;
    assert_eq!(scaling, ["web-0", "web-2", "web-4", "web-6"]);
    let (alarming, _, _) = describe(cw::DescribeAlarmsInput { state_value: Some(A), ..Default::default() }).await;
    assert_eq!(alarming.len(), 7, "web-6 watches Errors, which has no data");
    let (insufficient, _, _) = describe(cw::DescribeAlarmsInput { state_value: Some(I), ..Default::default() }).await;
    assert_eq!(insufficient, ["web-6"]);
    let (named, _, _) = describe(cw::DescribeAlarmsInput {
        alarm_names: Some(vec!["web-3".into(), "nope".into(), "api-0".into()]),
        ..Default::default()
    })
    .await;
    assert_eq!(named, ["api-0", "web-3"]);
    let (composite_only, _, _) = describe(cw::DescribeAlarmsInput {
        alarm_types: Some(vec![cw::AlarmType::CompositeAlarm]),
        ..Default::default()
    })
    .await;
    assert_eq!(composite_only, Vec::<String>::new());
    for (input, code) in [
        (cw::DescribeAlarmsInput { max_records: Some(101), ..Default::default() }, ErrorCode::ValidationError),
        (cw::DescribeAlarmsInput { next_token: Some("zz".into()), ..Default::default() }, ErrorCode::InvalidNextToken),
        (
            cw::DescribeAlarmsInput { alarm_names: Some(vec!["a".into(); 101]), ..Default::default() },
            ErrorCode::ValidationError,
        ),
        (
            cw::DescribeAlarmsInput {
                children_of_alarm_name: Some("x".into()),
                state_value: Some(A),
                ..Default::default()
            },
            ErrorCode::InvalidParameterCombination,
        ),
    ] {
        assert_eq!(c.err(Op::DescribeAlarms(input)).await.code, code);
    }

    let for_metric = |input: cw::DescribeAlarmsForMetricInput| async {
        let Out::DescribeAlarmsForMetric(out) = c.ok(Op::DescribeAlarmsForMetric(input)).await else { panic!() };
        out.metric_alarms.expect("alarms").into_iter().map(|a| a.alarm_name.expect("name")).collect::<Vec<_>>()
    };
    let requests = cw::DescribeAlarmsForMetricInput {
        namespace: Some("App".into()),
        metric_name: Some("Requests".into()),
        ..Default::default()
    };
    assert_eq!(for_metric(requests.clone()).await.len(), 7);
    assert_eq!(
        for_metric(cw::DescribeAlarmsForMetricInput { statistic: Some(cw::Statistic::Sum), ..requests.clone() })
            .await
            .len(),
        0
    );
    assert_eq!(
        for_metric(cw::DescribeAlarmsForMetricInput {
            period: Some(60),
            statistic: Some(cw::Statistic::Average),
            ..requests
        })
        .await
        .len(),
        7
    );
    let errors = cw::DescribeAlarmsForMetricInput {
        namespace: Some("App".into()),
        metric_name: Some("Errors".into()),
        ..Default::default()
    };
    assert_eq!(
        for_metric(cw::DescribeAlarmsForMetricInput { dimensions: Some(vec![]), ..errors.clone() }).await.len(),
        0
    );
    assert_eq!(
        for_metric(cw::DescribeAlarmsForMetricInput {
            dimensions: Some(vec![cw::Dimension { name: Some("Service".into()), value: Some("web".into()) }]),
            ..errors
        })
        .await,
        ["web-6"]
    );

    // Update in place: the state stays, the configuration is replaced (ActionsEnabled back to its default).
    c.ok(Op::DisableAlarmActions(cw::DisableAlarmActionsInput {
        alarm_names: Some(vec!["web-0".into(), "nope".into()]),
    }))
    .await;
    assert_eq!(c.alarm("web-0").await.actions_enabled, Some(false));
    c.ok(Op::EnableAlarmActions(cw::EnableAlarmActionsInput { alarm_names: Some(vec!["web-0".into()]) })).await;
    assert_eq!(c.alarm("web-0").await.actions_enabled, Some(true));
    let before = c.alarm("web-1").await;
    c.put(PutMetricAlarmInput {
        threshold: Some(500.0),
        alarm_description: Some("raised".into()),
        actions_enabled: Some(false),
        ..alarm("web-1", "Requests", 60, 1, 1, "missing")
    })
    .await;
    let after = c.alarm("web-1").await;
    assert_eq!(
        (after.state_value, after.state_reason.clone(), after.state_updated_timestamp),
        (before.state_value, before.state_reason.clone(), before.state_updated_timestamp)
    );
    assert_eq!(
        (after.threshold, after.alarm_description.as_deref(), after.alarm_actions, after.actions_enabled),
        (Some(500.0), Some("raised"), Some(vec![]), Some(false))
    );
    // Re-evaluated at once with the new threshold: 100 is no longer above it.
    c.evaluate(b as f64 + 2.0);
    assert_eq!(c.state("web-1").await, O);
    assert_eq!(
        c.history("web-1", cw::HistoryItemType::ConfigurationUpdate).await,
        ["Alarm \"web-1\" created", "Alarm \"web-1\" updated"]
    );

    // DeleteAlarms: names that do not exist are skipped; history outlives the alarm.
    c.ok(Op::DeleteAlarms(cw::DeleteAlarmsInput { alarm_names: Some(vec!["web-1".into(), "never".into()]) })).await;
    let (left, _, _) =
        describe(cw::DescribeAlarmsInput { alarm_name_prefix: Some("web-1".into()), ..Default::default() }).await;
    assert_eq!(left, Vec::<String>::new());
    assert_eq!(
        c.history("web-1", cw::HistoryItemType::ConfigurationUpdate).await,
        ["Alarm \"web-1\" created", "Alarm \"web-1\" updated", "Alarm \"web-1\" deleted"]
    );

    // History: every alarm's items, newest first by default, in pages; a date range; composite alarms have none.
    let history = |input: cw::DescribeAlarmHistoryInput| async {
        let Out::DescribeAlarmHistory(out) = c.ok(Op::DescribeAlarmHistory(input)).await else { panic!() };
        (out.alarm_history_items.expect("items"), out.next_token)
    };
    let (all, none) = history(Default::default()).await;
    assert_eq!(none, None);
    let times: Vec<f64> = all.iter().map(|i| i.timestamp.expect("time").0).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    let mut paged = Vec::new();
    let mut token = None;
    loop {
        let (page, next) = history(cw::DescribeAlarmHistoryInput {
            max_records: Some(4),
            next_token: token.clone(),
            ..Default::default()
        })
        .await;
        paged.extend(page);
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(paged, all);
    let (ranged, _) = history(cw::DescribeAlarmHistoryInput {
        start_date: Some(Timestamp(b as f64)),
        end_date: Some(Timestamp(b as f64 + 1.5)),
        ..Default::default()
    })
    .await;
    assert_eq!(ranged.len(), 7, "the seven transitions of the evaluation at b + 1: {ranged:?}");
    assert!(ranged.iter().all(|i| i.history_item_type == Some(cw::HistoryItemType::StateUpdate)));
    let (composite, _) = history(cw::DescribeAlarmHistoryInput {
        alarm_types: Some(vec![cw::AlarmType::CompositeAlarm]),
        ..Default::default()
    })
    .await;
    assert_eq!(composite, vec![]);
    assert_eq!(
        c.err(Op::DescribeAlarmHistory(cw::DescribeAlarmHistoryInput {
            next_token: Some("00".into()),
            ..Default::default()
        }))
        .await
        .code,
        ErrorCode::InvalidNextToken
    );
}

/// The entry points target tracking uses: the same validation as PutMetricAlarm, a managed mark that replacements
/// keep, and deletion by name.
#[tokio::test]
async fn managed_alarms_through_the_crate_entry_points() {
    let c = Cw::new("managed");
    let policy = SCALE;
    let arn =
        c.h.control
            .put_alarm(
                alarm("TargetTracking-service/default/web-AlarmHigh-1", "CPUUtilization", 10, 1, 1, "missing"),
                Some(policy),
            )
            .expect("put");
    assert!(arn.ends_with(":alarm:TargetTracking-service/default/web-AlarmHigh-1"), "{arn}");
    c.h.control
        .put_alarm(
            alarm("TargetTracking-service/default/web-AlarmLow-1", "CPUUtilization", 10, 30, 30, "missing"),
            Some(policy),
        )
        .expect("put");
    c.h.control.put_alarm(alarm("mine", "CPUUtilization", 60, 1, 1, "missing"), None).expect("put");
    // A replacement without a mark keeps the one it had.
    c.h.control
        .put_alarm(
            PutMetricAlarmInput {
                threshold: Some(70.0),
                ..alarm("TargetTracking-service/default/web-AlarmHigh-1", "CPUUtilization", 10, 1, 1, "missing")
            },
            None,
        )
        .expect("put");
    let managed = c.h.control.alarms_managed_by(policy).expect("managed");
    assert_eq!(
        managed,
        ["TargetTracking-service/default/web-AlarmHigh-1", "TargetTracking-service/default/web-AlarmLow-1"]
    );
    let refused = c
        .h
        .control
        .put_alarm(PutMetricAlarmInput { period: Some(15), ..alarm("x", "CPU", 10, 1, 1, "missing") }, Some(policy));
    assert!(
        matches!(refused, Err(ControlError::Aws(AwsError { code: ErrorCode::InvalidParameterValue, .. }))),
        "{refused:?}"
    );
    c.h.control.delete_alarms_named(&managed).expect("delete");
    assert_eq!(c.h.control.alarms_managed_by(policy).expect("managed"), Vec::<String>::new());
    let Out::DescribeAlarms(out) = c.ok(Op::DescribeAlarms(Default::default())).await else { panic!() };
    assert_eq!(
        out.metric_alarms.expect("alarms").into_iter().map(|a| a.alarm_name.expect("name")).collect::<Vec<_>>(),
        ["mine"]
    );
}

/// An alarm without `Unit` reads its metric in every unit it was published in (merged per period); with a `Unit`,
/// only that unit.
#[tokio::test]
async fn an_alarm_without_a_unit_reads_every_unit() {
    let c = Cw::new("units");
    let b = future_minute();
    c.put(PutMetricAlarmInput { threshold: Some(40.0), ..alarm("any-unit", "Mixed", 60, 1, 1, "missing") }).await;
    c.put(PutMetricAlarmInput {
        threshold: Some(40.0),
        unit: Some(cw::StandardUnit::Percent),
        ..alarm("percent", "Mixed", 60, 1, 1, "missing")
    })
    .await;
    c.publish("Mixed", Unit::Count, b - 30, 100.0);
    c.publish("Mixed", Unit::Percent, b - 20, 0.0);
    c.evaluate(b as f64 + 1.0);
    let reasons =
        |a: MetricAlarm| serde_json::from_str::<serde_json::Value>(&a.state_reason_data.expect("data")).expect("json");
    let any = c.alarm("any-unit").await;
    assert_eq!(any.state_value, Some(A));
    assert_eq!(reasons(any)["recentDatapoints"], serde_json::json!([50.0]));
    let percent = c.alarm("percent").await;
    assert_eq!(percent.state_value, Some(O));
    assert_eq!(reasons(percent)["recentDatapoints"], serde_json::json!([0.0]));
}

/// The real read path: datapoints recorded through `Control::record_metrics` (the ingest gate PutMetricData and
/// the publishers share), buffered and then flushed, drive `Control::evaluate_alarms`; an alarm without `Unit`
/// reads the series recorded in `Count`, one with `Unit: Percent` does not.
#[tokio::test]
async fn recorded_datapoints_drive_evaluate_alarms() {
    use berth_control::cloudwatch::Sample;
    let c = Cw::new("recorded");
    c.put(alarm("hot", "Queue", 10, 2, 2, "missing")).await;
    c.put(PutMetricAlarmInput {
        unit: Some(cw::StandardUnit::Percent),
        ..alarm("percent", "Queue", 10, 2, 2, "missing")
    })
    .await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
    let t0 = (now / 10.0).floor() * 10.0;
    let sample = |t: f64, v: f64| Sample {
        metric: MetricId::new("App", "Queue", vec![], Unit::Count, "").expect("metric"),
        timestamp: t,
        aggregate: Aggregate::of_values(&[(v, 1.0)]),
        storage_resolution: 1,
    };
    // Two periods in the buffer only, then flushed; a third stays buffered (reads merge it).
    c.h.control.record_metrics(vec![sample(t0 - 25.0, 80.0), sample(t0 - 15.0, 90.0)]);
    c.h.control.flush_metrics().expect("flush");
    c.h.control.record_metrics(vec![sample(t0 - 5.0, 95.0)]);
    let actions = c.h.control.evaluate_alarms(now + 0.5).expect("evaluate");
    assert_eq!(actions, []);
    let hot = c.alarm("hot").await;
    assert_eq!(hot.state_value, Some(A));
    let data: serde_json::Value = serde_json::from_str(&hot.state_reason_data.expect("data")).expect("json");
    assert_eq!(data["recentDatapoints"], serde_json::json!([90.0, 95.0]));
    assert_eq!(c.state("percent").await, I, "no Percent data: nothing to evaluate");
}
