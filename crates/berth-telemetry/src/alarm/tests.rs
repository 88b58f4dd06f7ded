use super::*;

const PERIOD: i64 = 60;
/// An evaluation time 30 s into a minute; the newest complete period starts at `END - 60`.
const END: i64 = 1_800_000_000 / 60 * 60;
const NOW: f64 = END as f64 + 30.0;

fn config(n: u32, m: u32, treat: TreatMissingData) -> AlarmConfig {
    AlarmConfig {
        period: PERIOD,
        evaluation_periods: n,
        datapoints_to_alarm: Some(m),
        threshold: 50.0,
        comparison: Comparison::GreaterThanThreshold,
        treat_missing_data: treat,
        evaluate_low_sample_count_percentile: true,
        statistic: Some(Statistic::Average),
        evaluation_range: None,
    }
}

/// `0 - X - X` (oldest → newest): `0` = 10 (not breaching 50), `X` = 100 (breaching), `-` = missing; the last
/// character is the newest complete period.
fn points(pattern: &str) -> Vec<Datapoint> {
    let slots: Vec<&str> = pattern.split_whitespace().collect();
    let r = slots.len() as i64;
    slots
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let value = match *c {
                "0" => 10.0,
                "X" => 100.0,
                _ => return None,
            };
            Some(Datapoint { timestamp: END - (r - i as i64) * PERIOD, value, sample_count: 1.0 })
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    S(State),
    Keep,
}
use State::{Alarm, InsufficientData as Insufficient, Ok as OkS};
use Want::{Keep, S};

/// The documented table of reference §3.4 (CW-ALARMS, "Configuring how CloudWatch alarms treat missing data",
/// N = 3, evaluation range 5), row by row, for each TreatMissingData: MISSING, IGNORE, BREACHING, NOT BREACHING.
/// "keep state" is checked from both OK and ALARM so that it cannot pass by accident.
#[test]
fn documented_m_of_n_table() {
    let table: [(&str, u32, [Want; 4]); 9] = [
        ("0 - X - X", 3, [S(OkS), S(OkS), S(OkS), S(OkS)]),
        ("0 - - - -", 3, [S(OkS), S(OkS), S(OkS), S(OkS)]),
        ("- - - - -", 3, [S(Insufficient), Keep, S(Alarm), S(OkS)]),
        ("0 X X - X", 3, [S(Alarm), S(Alarm), S(Alarm), S(Alarm)]),
        ("- - X - -", 3, [S(Alarm), Keep, S(Alarm), S(OkS)]),
        ("0 - X - X", 2, [S(Alarm), S(Alarm), S(Alarm), S(Alarm)]),
        ("0 - X - -", 2, [S(OkS), S(OkS), S(Alarm), S(OkS)]),
        ("- - - - 0", 2, [S(OkS), S(OkS), S(Alarm), S(OkS)]),
        ("- - - X -", 2, [S(Alarm), Keep, S(Alarm), S(OkS)]),
    ];
    let treats = [
        TreatMissingData::Missing,
        TreatMissingData::Ignore,
        TreatMissingData::Breaching,
        TreatMissingData::NotBreaching,
    ];
    for (pattern, m, wants) in table {
        for (treat, want) in treats.iter().zip(wants) {
            for previous in [State::Ok, State::Alarm] {
                let got = evaluate(&config(3, m, *treat), &points(pattern), NOW, Some(previous));
                let expected = match want {
                    S(s) => s,
                    Keep => previous,
                };
                assert_eq!(got.state, expected, "{pattern} M={m} {treat:?} from {previous:?}: {}", got.reason);
                assert_eq!(got.changed, expected != previous, "{pattern} {treat:?}");
            }
        }
    }
}

/// The premature-alarm examples of §3.4.5 with M = N = 3: `- - - - X` and `- - - X -` do not alarm, `- - X - -`
/// does.
#[test]
fn premature_alarm_rule() {
    for (pattern, alarms) in [("- - - - X", false), ("- - - X -", false), ("- - X - -", true), ("X - - - -", false)] {
        let got = evaluate(&config(3, 3, TreatMissingData::Missing), &points(pattern), NOW, Some(State::Ok));
        assert_eq!(got.state == State::Alarm, alarms, "{pattern}: {}", got.reason);
    }
}

/// More M-of-N cases beyond the table: every comparison operator at the threshold, N = M = 1, 2 of 5, late
/// points outside the range, the period in progress not counted.
#[test]
fn more_m_of_n_cases() {
    let at = |k: i64, v: f64| Datapoint { timestamp: END - k * PERIOD, value: v, sample_count: 1.0 };
    let mk = |n, m, cmp| AlarmConfig { comparison: cmp, ..config(n, m, TreatMissingData::Missing) };
    use Comparison::*;
    let cases: Vec<(&str, AlarmConfig, Vec<Datapoint>, State)> = vec![
        (">= at threshold", mk(1, 1, GreaterThanOrEqualToThreshold), vec![at(1, 50.0)], State::Alarm),
        ("> at threshold", mk(1, 1, GreaterThanThreshold), vec![at(1, 50.0)], State::Ok),
        ("< at threshold", mk(1, 1, LessThanThreshold), vec![at(1, 50.0)], State::Ok),
        ("<= at threshold", mk(1, 1, LessThanOrEqualToThreshold), vec![at(1, 50.0)], State::Alarm),
        ("< below", mk(1, 1, LessThanThreshold), vec![at(1, 49.9)], State::Alarm),
        (
            "2 of 5 breaching",
            mk(5, 2, GreaterThanThreshold),
            vec![at(5, 60.0), at(4, 1.0), at(3, 1.0), at(2, 70.0), at(1, 1.0)],
            State::Alarm,
        ),
        (
            "1 of 5 breaching",
            mk(5, 2, GreaterThanThreshold),
            vec![at(5, 60.0), at(4, 1.0), at(3, 1.0), at(2, 1.0), at(1, 1.0)],
            State::Ok,
        ),
        (
            "newest N real points only: an old breach outside them does not count",
            mk(2, 2, GreaterThanThreshold),
            vec![at(4, 99.0), at(3, 99.0), at(2, 1.0), at(1, 99.0)],
            State::Ok,
        ),
        (
            "reaching back over missing points (3.4.3)",
            mk(3, 3, GreaterThanThreshold),
            vec![at(5, 99.0), at(3, 99.0), at(1, 99.0)],
            State::Alarm,
        ),
        (
            "the period in progress is not evaluated",
            mk(1, 1, GreaterThanThreshold),
            vec![at(0, 99.0)],
            State::InsufficientData,
        ),
        ("outside the range (N + 2)", mk(1, 1, GreaterThanThreshold), vec![at(4, 99.0)], State::InsufficientData),
        ("NaN is no datapoint", mk(1, 1, GreaterThanThreshold), vec![at(1, f64::NAN)], State::InsufficientData),
    ];
    for (case, cfg, pts, want) in cases {
        let got = evaluate(&cfg, &pts, NOW, None);
        assert_eq!(got.state, want, "{case}: {}", got.reason);
        assert_eq!(got.changed, want != State::InsufficientData, "{case}: a new alarm starts INSUFFICIENT_DATA");
    }
}

#[test]
fn reasons_and_reason_data() {
    let pts = vec![
        Datapoint { timestamp: END - 120, value: 60.5, sample_count: 4.0 },
        Datapoint { timestamp: END - 60, value: 70.25, sample_count: 5.0 },
    ];
    let cfg = AlarmConfig { period: 60, ..config(2, 2, TreatMissingData::Missing) };
    let got = evaluate(&cfg, &pts, NOW, Some(State::Ok));
    assert_eq!(got.state, State::Alarm);
    assert!(got.changed);
    let t1 = reason_point_date(END - 60);
    let t2 = reason_point_date(END - 120);
    assert_eq!(
        got.reason,
        format!(
            "Threshold Crossed: 2 out of the last 2 datapoints [70.25 ({t1}), 60.5 ({t2})] were greater than the threshold (50.0) (minimum 2 datapoints for OK -> ALARM transition)."
        )
    );
    let data: serde_json::Value = serde_json::from_str(&got.reason_data).expect("JSON");
    assert_eq!(data["version"], "1.0");
    assert_eq!(data["statistic"], "Average");
    assert_eq!(data["period"], 60);
    assert_eq!(data["threshold"], 50.0);
    assert_eq!(data["recentDatapoints"], serde_json::json!([60.5, 70.25]));
    assert_eq!(data["evaluatedDatapoints"][0]["sampleCount"], 5.0);
    assert_eq!(data["queryDate"], reason_date(NOW));
    assert_eq!(data["startDate"], reason_date((END - 4 * 60) as f64));
    // A metric-math alarm has no statistic: its reason data names none.
    let math = evaluate(&AlarmConfig { statistic: None, ..cfg.clone() }, &pts, NOW, Some(State::Ok));
    let math_data: serde_json::Value = serde_json::from_str(&math.reason_data).expect("JSON");
    assert_eq!(
        (math.state, math_data.get("statistic"), math_data.get("extendedStatistic")),
        (State::Alarm, None, None)
    );
    assert_eq!(math_data["recentDatapoints"], serde_json::json!([60.5, 70.25]));
    assert!(
        got.reason_data.starts_with(r#"{"version":"1.0","queryDate":""#),
        "CloudWatch's key order: {}",
        got.reason_data
    );

    let ok =
        evaluate(&cfg, &[Datapoint { timestamp: END - 60, value: 1.0, sample_count: 1.0 }], NOW, Some(State::Alarm));
    assert_eq!(ok.state, State::Ok);
    assert_eq!(
        ok.reason,
        format!(
            "Threshold Crossed: 1 out of the last 1 datapoint [1.0 ({t1})] was not greater than the threshold (50.0) (minimum 1 datapoint for ALARM -> OK transition)."
        )
    );
    let none = evaluate(&cfg, &[], NOW, Some(State::Ok));
    assert_eq!(none.reason, "Insufficient Data: 4 datapoints were unknown.");
    let filled = evaluate(
        &config(4, 4, TreatMissingData::NotBreaching),
        &[Datapoint { timestamp: END - 60, value: 99.0, sample_count: 1.0 }],
        NOW,
        Some(State::Alarm),
    );
    assert_eq!(
        filled.reason,
        "Threshold Crossed: 1 datapoint was received for 4 periods and 3 missing datapoints were treated as [NonBreaching]."
    );
    assert_eq!(reason_date(1_408_137_300.5), "2014-08-15T21:15:00.500+0000");
    assert_eq!(reason_point_date(1_408_137_300), "15/08/14 21:15:00");
}

#[test]
fn low_sample_count_percentiles() {
    assert_eq!(low_sample_minimum(0.99).round(), 1000.0);
    assert_eq!(low_sample_minimum(0.5), 20.0);
    assert_eq!(low_sample_minimum(0.1).round(), 100.0);
    let mut cfg = config(1, 1, TreatMissingData::Missing);
    cfg.statistic = Some(Statistic::Percentile(99.0));
    let pts = [Datapoint { timestamp: END - 60, value: 99.0, sample_count: 999.0 }];
    assert_eq!(evaluate(&cfg, &pts, NOW, Some(State::Ok)).state, State::Alarm, "evaluate (default) uses any count");
    cfg.evaluate_low_sample_count_percentile = false;
    let got = evaluate(&cfg, &pts, NOW, Some(State::Ok));
    assert_eq!((got.state, got.changed), (State::Ok, false), "ignore: too few samples keeps the state");
    let enough = [Datapoint { sample_count: 1000.0, ..pts[0] }];
    assert_eq!(evaluate(&cfg, &enough, NOW, Some(State::Ok)).state, State::Alarm);
    let data: serde_json::Value = serde_json::from_str(&got.reason_data).expect("JSON");
    assert_eq!(data["extendedStatistic"], "p99");
}

#[test]
fn config_validation() {
    let ok = config(3, 3, TreatMissingData::Missing);
    assert_eq!(ok.validate(), Ok(()));
    let cases: Vec<(AlarmConfig, &str)> = vec![
        (
            AlarmConfig { period: 45, ..ok.clone() },
            "The parameter Period must be 10, 20, 30 or a multiple of 60; 45 is not valid.",
        ),
        (
            AlarmConfig { evaluation_periods: 0, ..ok.clone() },
            "The parameter EvaluationPeriods must be greater than or equal to 1.",
        ),
        (
            AlarmConfig { datapoints_to_alarm: Some(4), ..ok.clone() },
            "DatapointsToAlarm must be less than or equal to EvaluationPeriods.",
        ),
        (
            AlarmConfig { period: 60, evaluation_periods: 1441, datapoints_to_alarm: None, ..ok.clone() },
            "The evaluation period (86460 seconds = Period × EvaluationPeriods) must not exceed 86400 seconds.",
        ),
        (
            AlarmConfig { period: 3600, evaluation_periods: 169, datapoints_to_alarm: None, ..ok.clone() },
            "The evaluation period (608400 seconds = Period × EvaluationPeriods) must not exceed 604800 seconds.",
        ),
        (
            AlarmConfig { statistic: Some(Statistic::parse("TM(5%:95%)", "s").expect("stat")), ..ok.clone() },
            "The value TM(5%:95%) for parameter ExtendedStatistic is not supported for alarms.",
        ),
    ];
    for (cfg, want) in cases {
        assert_eq!(cfg.validate().expect_err(want).message, want);
    }
    assert!(
        AlarmConfig { period: 3600, evaluation_periods: 168, ..ok.clone() }.validate().is_ok(),
        "7 days at 1 h periods"
    );
    assert!(AlarmConfig { period: 10, evaluation_periods: 8640, datapoints_to_alarm: None, ..ok }.validate().is_ok());
    assert!(Comparison::parse("LessThanLowerThreshold").is_err());
    assert_eq!(TreatMissingData::parse("notBreaching"), Ok(TreatMissingData::NotBreaching));
}

/// Every pattern of 5 periods (ok / breaching / missing: 243) for N = 3 and every M: invariants that hold for any
/// reading of §3.4. With no missing point among the last N, the four treatments agree; breaching never alarms
/// less than notBreaching; ignore either agrees with missing or keeps the state; notBreaching never gives
/// INSUFFICIENT_DATA; a result never depends on the previous state except through ignore.
#[test]
fn exhaustive_invariants_over_all_patterns() {
    let treats = [
        TreatMissingData::Missing,
        TreatMissingData::Ignore,
        TreatMissingData::Breaching,
        TreatMissingData::NotBreaching,
    ];
    let mut checked = 0;
    for code in 0..243u32 {
        let mut c = code;
        let pattern: Vec<&str> = (0..5)
            .map(|_| {
                let s = ["0", "X", "-"][(c % 3) as usize];
                c /= 3;
                s
            })
            .collect();
        let pattern = pattern.join(" ");
        let pts = points(&pattern);
        let last_n_complete = pattern.split_whitespace().skip(2).all(|s| s != "-");
        for m in 1..=3 {
            let run = |t: TreatMissingData, prev: State| evaluate(&config(3, m, t), &pts, NOW, Some(prev)).state;
            for prev in [State::Ok, State::Alarm, State::InsufficientData] {
                let r: Vec<State> = treats.iter().map(|t| run(*t, prev)).collect();
                if last_n_complete {
                    assert!(r.iter().all(|s| *s == r[0]), "{pattern} M={m}: {r:?}");
                }
                if r[3] == State::Alarm {
                    assert_eq!(r[2], State::Alarm, "{pattern} M={m}: breaching alarms less than notBreaching");
                }
                assert!(r[1] == r[0] || r[1] == prev, "{pattern} M={m}: ignore gave {:?}", r[1]);
                assert_ne!(r[3], State::InsufficientData, "{pattern} M={m}");
                assert_ne!(r[2], State::InsufficientData, "{pattern} M={m}");
                for t in [TreatMissingData::Missing, TreatMissingData::Breaching, TreatMissingData::NotBreaching] {
                    assert_eq!(run(t, prev), run(t, State::Ok), "{pattern} M={m} {t:?}: depends on the previous state");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 243 * 3 * 3);
}

#[test]
fn datapoints_from_aggregates() {
    use crate::aggregate::Aggregate;
    use crate::metric::Datum;
    let aggs = vec![
        (END - 120, Aggregate::of(&Datum::Values(vec![(1.0, 1.0), (3.0, 1.0)]))),
        (END - 60, Aggregate::of(&Datum::Value(-5.0))),
    ];
    let avg = datapoints(&Statistic::Average, &aggs);
    assert_eq!(
        avg,
        vec![
            Datapoint { timestamp: END - 120, value: 2.0, sample_count: 2.0 },
            Datapoint { timestamp: END - 60, value: -5.0, sample_count: 1.0 },
        ]
    );
    let p50 = datapoints(&Statistic::Percentile(50.0), &aggs);
    assert_eq!(p50.len(), 1, "no percentile for the period with a negative value");
}

#[test]
fn cadence_and_repeated_actions() {
    assert_eq!((evaluation_interval(10), evaluation_interval(20), evaluation_interval(30)), (10, 10, 10));
    assert_eq!((evaluation_interval(60), evaluation_interval(300)), (60, 60));
    assert_eq!(next_evaluation(60, 1_000_000.5), 1_000_020);
    assert_eq!(next_evaluation(10, 1_000_000.0), 1_000_010);
    assert_eq!(next_evaluation(10, 999_999.9), 1_000_000);
    // (changed, autoscaling, last run seconds ago, due)
    for (changed, autoscaling, ago, due) in [
        (true, false, None, true),
        (false, false, Some(600), false),
        (false, true, Some(59), false),
        (false, true, Some(60), true),
        (false, true, None, true),
        (true, true, Some(1), true),
    ] {
        assert_eq!(
            actions_due(changed, autoscaling, ago.map(|a| 1000 - a), 1000),
            due,
            "{changed} {autoscaling} {ago:?}"
        );
    }
}

#[test]
fn reason_data_stays_within_4000_characters() {
    let mut cfg = config(1000, 1000, TreatMissingData::Missing);
    cfg.period = 60;
    let pts: Vec<Datapoint> = (1..=1000)
        .map(|k| Datapoint { timestamp: END - k * 60, value: 1234.5678 + k as f64, sample_count: 1.0 })
        .collect();
    let e = evaluate(&cfg, &pts, NOW, Some(State::Ok));
    assert!(e.reason_data.len() <= MAX_REASON_DATA, "{}", e.reason_data.len());
    assert!(e.reason.chars().count() <= 1023);
    let data: serde_json::Value = serde_json::from_str(&e.reason_data).expect("still JSON");
    let recent = data["recentDatapoints"].as_array().expect("array");
    assert!(!recent.is_empty() && recent.len() < 1000);
    assert_eq!(recent.last().and_then(serde_json::Value::as_f64), Some(1235.5678), "the newest points are kept");
}
