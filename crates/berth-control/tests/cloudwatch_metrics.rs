//! CloudWatch metrics through the control plane: PutMetricData's rules, GetMetricStatistics and GetMetricData
//! (exact counts, statistics, percentiles within the sketch's error, math, SEARCH, paging), ListMetrics, the
//! buffer read back before and after it is written (counted once), roll-up into coarser tiers with the same
//! answers, a restart that loses nothing, dashboards, tags and authorization. No sockets.

use std::collections::BTreeMap;

use berth_control::cloudwatch::Sample;
use berth_core::{AwsError, ErrorCode};
use berth_model::Timestamp;
use berth_model::cloudwatch::{self as cw, Operation as Op, Output as Out};
use berth_telemetry::{Aggregate, Datum, Dimension, MetricId, Unit};

mod common;

use common::{Harness, user_with};

fn harness(name: &str) -> Harness {
    Harness::new(name, |_| berth_control::ControlConfig::default())
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64
}

/// A minute boundary half an hour ago: every datum of a test lands after it (and within 3 h).
fn base() -> i64 {
    (now() / 3600) * 3600 - 3600
}

async fn call(h: &Harness, op: Op) -> Result<Out, AwsError> {
    h.control.handle_cloudwatch(&h.caller, op).await
}

fn dims(pairs: &[(&str, &str)]) -> Option<Vec<cw::Dimension>> {
    Some(pairs.iter().map(|(n, v)| cw::Dimension { name: Some((*n).into()), value: Some((*v).into()) }).collect())
}

fn datum(name: &str, t: i64, v: f64) -> cw::MetricDatum {
    cw::MetricDatum {
        metric_name: Some(name.into()),
        timestamp: Some(Timestamp(t as f64)),
        value: Some(v),
        ..Default::default()
    }
}

async fn put(h: &Harness, ns: &str, data: Vec<cw::MetricDatum>) -> Result<(), AwsError> {
    let op = Op::PutMetricData(cw::PutMetricDataInput {
        namespace: Some(ns.into()),
        metric_data: Some(data),
        ..Default::default()
    });
    call(h, op).await.map(|_| ())
}

fn stats_input(ns: &str, name: &str, start: i64, end: i64, period: i32) -> cw::GetMetricStatisticsInput {
    cw::GetMetricStatisticsInput {
        namespace: Some(ns.into()),
        metric_name: Some(name.into()),
        start_time: Some(Timestamp(start as f64)),
        end_time: Some(Timestamp(end as f64)),
        period: Some(period),
        statistics: Some(cw::Statistic::ALL.to_vec()),
        ..Default::default()
    }
}

async fn stats(h: &Harness, input: cw::GetMetricStatisticsInput) -> Vec<cw::Datapoint> {
    match call(h, Op::GetMetricStatistics(input)).await {
        Ok(Out::GetMetricStatistics(o)) => o.datapoints.expect("datapoints"),
        other => panic!("GetMetricStatistics: {other:?}"),
    }
}

/// (unit, sample count, sum) of a datapoint.
type UnitPoint = (Option<cw::StandardUnit>, f64, f64);

/// (timestamp, sample count, sum) of each datapoint.
fn counts(points: &[cw::Datapoint]) -> Vec<(i64, f64, f64)> {
    points.iter().map(|p| (p.timestamp.expect("t").0 as i64, p.sample_count.expect("n"), p.sum.expect("sum"))).collect()
}

fn metric_query(id: &str, ns: &str, name: &str, stat: &str, period: i32) -> cw::MetricDataQuery {
    cw::MetricDataQuery {
        id: Some(id.into()),
        metric_stat: Some(cw::MetricStat {
            metric: Some(cw::Metric { namespace: Some(ns.into()), metric_name: Some(name.into()), dimensions: None }),
            period: Some(period),
            stat: Some(stat.into()),
            unit: None,
        }),
        ..Default::default()
    }
}

fn expression(id: &str, e: &str) -> cw::MetricDataQuery {
    cw::MetricDataQuery { id: Some(id.into()), expression: Some(e.into()), ..Default::default() }
}

fn data_input(queries: Vec<cw::MetricDataQuery>, start: i64, end: i64) -> cw::GetMetricDataInput {
    cw::GetMetricDataInput {
        metric_data_queries: Some(queries),
        start_time: Some(Timestamp(start as f64)),
        end_time: Some(Timestamp(end as f64)),
        scan_by: Some(cw::ScanBy::TimestampAscending),
        ..Default::default()
    }
}

async fn data(h: &Harness, input: cw::GetMetricDataInput) -> Result<cw::GetMetricDataOutput, AwsError> {
    match call(h, Op::GetMetricData(input)).await? {
        Out::GetMetricData(o) => Ok(o),
        other => panic!("GetMetricData: {other:?}"),
    }
}

/// A result's (timestamp, value) pairs.
fn points(r: &cw::MetricDataResult) -> Vec<(i64, f64)> {
    let ts = r.timestamps.as_ref().expect("timestamps");
    let vs = r.values.as_ref().expect("values");
    ts.iter().zip(vs).map(|(t, v)| (t.0 as i64, *v)).collect()
}

fn code(r: Result<impl std::fmt::Debug, AwsError>) -> ErrorCode {
    match r {
        Err(e) => e.code,
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

#[tokio::test]
async fn put_metric_data_is_validated_as_cloudwatch_does() {
    let h = harness("cw-validate");
    let t = now();
    let stat_set =
        |n: f64| cw::StatisticSet { sample_count: Some(n), sum: Some(1.0), minimum: Some(1.0), maximum: Some(1.0) };
    let cases: Vec<(&str, &str, cw::MetricDatum, ErrorCode)> = vec![
        ("AWS/ namespace is reserved", "AWS/ECS", datum("m", t, 1.0), ErrorCode::InvalidParameterValue),
        (
            "Value and StatisticValues",
            "App",
            cw::MetricDatum { statistic_values: Some(stat_set(1.0)), ..datum("m", t, 1.0) },
            ErrorCode::InvalidParameterCombination,
        ),
        ("no value", "App", cw::MetricDatum { value: None, ..datum("m", t, 1.0) }, ErrorCode::MissingParameter),
        ("three weeks old", "App", datum("m", t - 21 * 86_400, 1.0), ErrorCode::InvalidParameterValue),
        ("three hours ahead", "App", datum("m", t + 3 * 3600, 1.0), ErrorCode::InvalidParameterValue),
        (
            "StorageResolution 5",
            "App",
            cw::MetricDatum { storage_resolution: Some(5), ..datum("m", t, 1.0) },
            ErrorCode::InvalidParameterValue,
        ),
        ("NaN", "App", datum("m", t, f64::NAN), ErrorCode::InvalidParameterValue),
        (
            "counts without values",
            "App",
            cw::MetricDatum { counts: Some(vec![1.0]), ..datum("m", t, 1.0) },
            ErrorCode::InvalidParameterCombination,
        ),
        (
            "statistic set without Sum",
            "App",
            cw::MetricDatum {
                value: None,
                statistic_values: Some(cw::StatisticSet { sum: None, ..stat_set(2.0) }),
                ..datum("m", t, 0.0)
            },
            ErrorCode::MissingParameter,
        ),
        ("empty name", "App", datum("", t, 1.0), ErrorCode::MissingParameter),
    ];
    for (case, ns, d, want) in cases {
        assert_eq!(code(put(&h, ns, vec![d]).await), want, "{case}");
    }
    // All or nothing: a bad datum refuses the good ones beside it.
    let r = put(&h, "App", vec![datum("ok", t, 1.0), datum("bad", t, f64::INFINITY)]).await;
    assert_eq!(code(r), ErrorCode::InvalidParameterValue);
    assert!(stats(&h, stats_input("App", "ok", t - 60, t + 60, 60)).await.is_empty());
}

#[tokio::test]
async fn statistics_are_exact_and_percentiles_within_the_sketch_error() {
    let h = harness("cw-stats");
    let b = base();
    // Minute k holds the values 1..=150 scaled by (k + 1), each twice (Values/Counts).
    for k in 0..3i64 {
        let t = b + k * 60 + 7;
        let scale = (k + 1) as f64;
        let values: Vec<f64> = (1..=150).map(|v| f64::from(v) * scale).collect();
        let d1 = cw::MetricDatum {
            value: None,
            values: Some(values.clone()),
            counts: Some(vec![2.0; 150]),
            ..datum("lat", t, 0.0)
        };
        put(&h, "App", vec![d1]).await.expect("put values");
    }
    let points = stats(
        &h,
        cw::GetMetricStatisticsInput {
            statistics: None,
            extended_statistics: Some(vec!["p50".into(), "p99".into(), "tm90".into()]),
            ..stats_input("App", "lat", b, b + 180, 60)
        },
    )
    .await;
    assert_eq!(points.len(), 3);
    for (k, p) in points.iter().enumerate() {
        let scale = (k + 1) as f64;
        assert_eq!(p.timestamp.expect("t").0 as i64, b + k as i64 * 60);
        let ext = p.extended_statistics.as_ref().expect("extended");
        for (stat, want) in [("p50", 75.0 * scale), ("p99", 149.0 * scale), ("tm90", 68.0 * scale)] {
            let got = ext[stat];
            assert!((got - want).abs() <= 0.015 * want, "minute {k} {stat}: {got} vs {want}");
        }
    }
    let all = stats(&h, stats_input("App", "lat", b, b + 180, 60)).await;
    let want: Vec<(i64, f64, f64)> = (0..3).map(|k| (b + k * 60, 300.0, 22_650.0 * (k + 1) as f64)).collect();
    assert_eq!(counts(&all), want);
    let p = &all[1];
    assert_eq!((p.minimum, p.maximum, p.average), (Some(2.0), Some(300.0), Some(151.0)));
    // One 180 s period merges the three minutes.
    let one = stats(&h, stats_input("App", "lat", b, b + 180, 180)).await;
    assert_eq!(counts(&one), vec![(b, 900.0, 135_900.0)]);
    // Statistic sets: exact basic statistics; no percentile when the set cannot give one.
    let set = cw::StatisticSet { sample_count: Some(4.0), sum: Some(20.0), minimum: Some(2.0), maximum: Some(8.0) };
    put(&h, "App", vec![cw::MetricDatum { value: None, statistic_values: Some(set), ..datum("set", b + 5, 0.0) }])
        .await
        .expect("put set");
    let s = stats(&h, stats_input("App", "set", b, b + 60, 60)).await;
    assert_eq!(
        (s[0].sample_count, s[0].sum, s[0].minimum, s[0].maximum),
        (Some(4.0), Some(20.0), Some(2.0), Some(8.0))
    );
    let s = stats(
        &h,
        cw::GetMetricStatisticsInput {
            statistics: None,
            extended_statistics: Some(vec!["p90".into()]),
            ..stats_input("App", "set", b, b + 60, 60)
        },
    )
    .await;
    assert_eq!(s[0].extended_statistics, Some(BTreeMap::new()));
}

#[tokio::test]
async fn units_dimensions_and_get_rules() {
    let h = harness("cw-units");
    let b = base();
    let with = |unit: Option<cw::StandardUnit>, d: Option<Vec<cw::Dimension>>, v: f64| cw::MetricDatum {
        unit,
        dimensions: d,
        ..datum("req", b + 1, v)
    };
    put(
        &h,
        "App",
        vec![
            with(Some(cw::StandardUnit::Count), dims(&[("Service", "web")]), 1.0),
            with(Some(cw::StandardUnit::Count), dims(&[("Service", "web")]), 2.0),
            with(Some(cw::StandardUnit::Seconds), dims(&[("Service", "web")]), 10.0),
            with(None, dims(&[("Service", "api")]), 100.0),
        ],
    )
    .await
    .expect("put");
    let input = |unit: Option<cw::StandardUnit>, d: &[(&str, &str)]| cw::GetMetricStatisticsInput {
        unit,
        dimensions: dims(d),
        ..stats_input("App", "req", b, b + 60, 60)
    };
    // (case, request, want (unit, count, sum) per datapoint)
    let cases: Vec<(&str, cw::GetMetricStatisticsInput, Vec<UnitPoint>)> = vec![
        (
            "Count only",
            input(Some(cw::StandardUnit::Count), &[("Service", "web")]),
            vec![(Some(cw::StandardUnit::Count), 2.0, 3.0)],
        ),
        (
            "every unit, one datapoint each",
            input(None, &[("Service", "web")]),
            vec![(Some(cw::StandardUnit::Seconds), 1.0, 10.0), (Some(cw::StandardUnit::Count), 2.0, 3.0)],
        ),
        ("a unit never sent", input(Some(cw::StandardUnit::Bytes), &[("Service", "web")]), vec![]),
        ("other dimensions", input(None, &[("Service", "api")]), vec![(Some(cw::StandardUnit::None), 1.0, 100.0)]),
        ("no dimensions is another metric", input(None, &[]), vec![]),
    ];
    for (case, req, want) in cases {
        let mut got: Vec<(Option<cw::StandardUnit>, f64, f64)> =
            stats(&h, req).await.iter().map(|p| (p.unit, p.sample_count.expect("n"), p.sum.expect("s"))).collect();
        got.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut want = want;
        want.sort_by(|a, b| a.1.total_cmp(&b.1));
        assert_eq!(got, want, "{case}");
    }
    let errors: Vec<(&str, cw::GetMetricStatisticsInput, ErrorCode)> = vec![
        (
            "period 7",
            cw::GetMetricStatisticsInput { period: Some(7), ..input(None, &[]) },
            ErrorCode::InvalidParameterValue,
        ),
        (
            "period 90",
            cw::GetMetricStatisticsInput { period: Some(90), ..input(None, &[]) },
            ErrorCode::InvalidParameterValue,
        ),
        (
            "end before start",
            cw::GetMetricStatisticsInput { end_time: Some(Timestamp((b - 60) as f64)), ..input(None, &[]) },
            ErrorCode::InvalidParameterValue,
        ),
        (
            "more than 1,440 datapoints",
            cw::GetMetricStatisticsInput { start_time: Some(Timestamp((b - 86_400) as f64)), ..input(None, &[]) },
            ErrorCode::InvalidParameterCombination,
        ),
        (
            "both statistic lists",
            cw::GetMetricStatisticsInput { extended_statistics: Some(vec!["p99".into()]), ..input(None, &[]) },
            ErrorCode::InvalidParameterCombination,
        ),
        (
            "no statistic",
            cw::GetMetricStatisticsInput { statistics: None, ..input(None, &[]) },
            ErrorCode::MissingParameter,
        ),
        (
            "a bad percentile",
            cw::GetMetricStatisticsInput {
                statistics: None,
                extended_statistics: Some(vec!["p101".into()]),
                ..input(None, &[])
            },
            ErrorCode::InvalidParameterValue,
        ),
    ];
    for (case, req, want) in errors {
        assert_eq!(code(call(&h, Op::GetMetricStatistics(req)).await), want, "{case}");
    }
}

#[tokio::test]
async fn high_resolution_periods_and_roll_up_keep_every_sample() {
    let h = harness("cw-rollup");
    let b = base();
    // Two minutes of one value per second, high resolution.
    let data: Vec<cw::MetricDatum> = (0..120)
        .map(|s| cw::MetricDatum { storage_resolution: Some(1), ..datum("hr", b + s, (s % 10) as f64) })
        .collect();
    put(&h, "App", data).await.expect("put");
    let ten = stats(&h, stats_input("App", "hr", b, b + 120, 10)).await;
    assert_eq!(counts(&ten), (0..12).map(|k| (b + k * 10, 10.0, 45.0)).collect::<Vec<_>>());
    let one = stats(&h, stats_input("App", "hr", b, b + 5, 1)).await;
    assert_eq!(counts(&one), (0..5).map(|k| (b + k, 1.0, k as f64)).collect::<Vec<_>>());
    h.control.flush_metrics().expect("flush");
    let tiers = || -> Vec<(i64, i64)> {
        let db = rusqlite::Connection::open(h.dir.join("berth.db")).expect("db");
        let mut st = db.prepare("SELECT tier, COUNT(*) FROM metric_data GROUP BY tier ORDER BY tier").expect("sql");
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("rows").collect::<Result<_, _>>().expect("rows")
    };
    assert_eq!(tiers(), vec![(0, 120)], "120 one-second aggregates");
    // Four hours later the seconds have outlived their tier: two minutes remain, same counts.
    let later = now() + 4 * 3600;
    let moved = h.control.roll_up_metrics(later, 1_000_000).expect("roll up");
    assert_eq!(moved, 120);
    assert_eq!(tiers(), vec![(1, 2)]);
    assert_eq!(h.control.roll_up_metrics(later, 1_000_000).expect("again"), 0, "idempotent");
    let minutes = stats(&h, stats_input("App", "hr", b, b + 120, 60)).await;
    assert_eq!(counts(&minutes), vec![(b, 60.0, 270.0), (b + 60, 60.0, 270.0)]);
    // A 10 s read now shows the minutes at their starts.
    let ten = stats(&h, stats_input("App", "hr", b, b + 120, 10)).await;
    assert_eq!(counts(&ten), vec![(b, 60.0, 270.0), (b + 60, 60.0, 270.0)]);
    let metric = MetricId { namespace: "App".into(), name: "hr".into(), dimensions: vec![], unit: Unit::None };
    let aggs = h.control.metric_aggregates(&metric, 120, b, b + 120).expect("aggregates");
    assert_eq!(aggs.len(), 1);
    assert_eq!((aggs[0].0, aggs[0].1.sample_count, aggs[0].1.sum), (b, 120.0, 540.0));
    // 16 days on, the minutes move into one 5-minute bucket; 456 days on, nothing is left.
    h.control.roll_up_metrics(now() + 16 * 86_400, 1_000_000).expect("5 min");
    assert_eq!(tiers(), vec![(2, 1)]);
    h.control.roll_up_metrics(now() + 456 * 86_400, 1_000_000).expect("drop");
    assert_eq!(tiers(), vec![]);
}

#[tokio::test]
async fn roll_up_work_is_bounded_per_pass() {
    let h = harness("cw-rollup-budget");
    let b = base();
    let data: Vec<cw::MetricDatum> =
        (0..300).map(|s| cw::MetricDatum { storage_resolution: Some(1), ..datum("hr", b + s, 1.0) }).collect();
    put(&h, "App", data).await.expect("put");
    h.control.flush_metrics().expect("flush");
    let later = now() + 4 * 3600;
    let passes: Vec<usize> = (0..4).map(|_| h.control.roll_up_metrics(later, 100).expect("pass")).collect();
    assert_eq!(passes, vec![100, 100, 100, 0]);
    let total = stats(&h, stats_input("App", "hr", b, b + 300, 300)).await;
    assert_eq!(counts(&total), vec![(b, 300.0, 300.0)]);
}

#[tokio::test]
async fn buffered_and_written_data_count_once() {
    let h = harness("cw-buffer");
    let b = base();
    put(&h, "App", vec![datum("c", b + 1, 1.0)]).await.expect("put");
    let read = || async { counts(&stats(&h, stats_input("App", "c", b, b + 60, 60)).await) };
    assert_eq!(read().await, vec![(b, 1.0, 1.0)], "readable before it is written");
    assert_eq!(h.control.flush_metrics().expect("flush"), 1);
    assert_eq!(read().await, vec![(b, 1.0, 1.0)], "written, counted once");
    put(&h, "App", vec![datum("c", b + 2, 2.0)]).await.expect("put");
    assert_eq!(read().await, vec![(b, 2.0, 3.0)], "stored + buffered merge");
    h.control.flush_metrics().expect("flush");
    assert_eq!(h.control.flush_metrics().expect("nothing left"), 0);
    assert_eq!(read().await, vec![(b, 2.0, 3.0)]);
}

#[tokio::test]
async fn a_restart_loses_no_datapoint() {
    let mut h = harness("cw-restart");
    let b = base();
    // Client data and internal samples (an AWS/ namespace, a sketch per interval), none flushed explicitly.
    let mut want = Vec::new();
    for s in 0..90 {
        put(&h, "App", vec![cw::MetricDatum { storage_resolution: Some(1), ..datum("hr", b + s, s as f64) }])
            .await
            .expect("put");
        want.push((b + s, 1.0, s as f64));
    }
    let elb = MetricId {
        namespace: "AWS/ApplicationELB".into(),
        name: "TargetResponseTime".into(),
        dimensions: vec![Dimension::new("LoadBalancer", "app/web/1")],
        unit: Unit::Seconds,
    };
    h.control.record_metrics(
        (0..10)
            .map(|k| Sample {
                metric: elb.clone(),
                timestamp: (b + k * 10) as f64,
                aggregate: Aggregate::of(&Datum::Values(vec![(0.01, 5.0), (0.2, 1.0)])),
                storage_resolution: 1,
            })
            .collect(),
    );
    h.control.flush_metrics().expect("first part written");
    put(&h, "App", vec![datum("std", b + 5, 7.0)]).await.expect("put");
    h.restart();
    let got = counts(&stats(&h, stats_input("App", "hr", b, b + 90, 1)).await);
    assert_eq!(got, want);
    assert_eq!(counts(&stats(&h, stats_input("App", "std", b, b + 60, 60)).await), vec![(b, 1.0, 7.0)]);
    let aggs = h.control.metric_aggregates(&elb, 10, b, b + 100).expect("elb");
    assert_eq!(aggs.len(), 10);
    assert!(aggs.iter().all(|(_, a)| a.sample_count == 6.0 && a.has_percentiles()));
    // And the next restart after more data too (the flush sequence continues across restarts).
    put(&h, "App", vec![datum("std", b + 6, 3.0)]).await.expect("put");
    h.restart();
    assert_eq!(counts(&stats(&h, stats_input("App", "std", b, b + 60, 60)).await), vec![(b, 2.0, 10.0)]);
}

#[tokio::test]
async fn get_metric_data_math_search_and_paging() {
    let h = harness("cw-data");
    let b = base();
    let mut d = Vec::new();
    for k in 0..5i64 {
        d.push(cw::MetricDatum { dimensions: dims(&[("Service", "web")]), ..datum("req", b + k * 60, (k + 1) as f64) });
        if k != 2 {
            d.push(cw::MetricDatum { dimensions: dims(&[("Service", "api")]), ..datum("req", b + k * 60, 10.0) });
        }
    }
    put(&h, "App", d).await.expect("put");
    let q = |id: &str, svc: &str| cw::MetricDataQuery {
        return_data: Some(false),
        metric_stat: Some(cw::MetricStat {
            metric: Some(cw::Metric {
                namespace: Some("App".into()),
                metric_name: Some("req".into()),
                dimensions: dims(&[("Service", svc)]),
            }),
            period: Some(60),
            stat: Some("Sum".into()),
            unit: None,
        }),
        ..expression(id, "")
    };
    let mq = |id, svc| cw::MetricDataQuery { expression: None, ..q(id, svc) };
    let t = |k: i64| b + k * 60;
    // (expression, want points)
    let cases: Vec<(&str, Vec<(i64, f64)>)> = vec![
        ("web + api", vec![(t(0), 11.0), (t(1), 12.0), (t(2), 3.0), (t(3), 14.0), (t(4), 15.0)]),
        ("SUM(METRICS())", vec![(t(0), 11.0), (t(1), 12.0), (t(2), 3.0), (t(3), 14.0), (t(4), 15.0)]),
        ("AVG(METRICS())", vec![(t(0), 5.5), (t(1), 6.0), (t(2), 1.5), (t(3), 7.0), (t(4), 7.5)]),
        ("FILL(api, 0)", vec![(t(0), 10.0), (t(1), 10.0), (t(2), 0.0), (t(3), 10.0), (t(4), 10.0)]),
        ("IF(web > 2, web)", vec![(t(2), 3.0), (t(3), 4.0), (t(4), 5.0)]),
        ("RATE(web)", vec![(t(1), 1.0 / 60.0), (t(2), 1.0 / 60.0), (t(3), 1.0 / 60.0), (t(4), 1.0 / 60.0)]),
        ("web * 2", vec![(t(0), 2.0), (t(1), 4.0), (t(2), 6.0), (t(3), 8.0), (t(4), 10.0)]),
    ];
    for (e, want) in cases {
        let input = data_input(vec![mq("web", "web"), mq("api", "api"), expression("e", e)], b, b + 300);
        let out = data(&h, input).await.unwrap_or_else(|err| panic!("{e}: {err}"));
        let results = out.metric_data_results.expect("results");
        assert_eq!(results.len(), 1, "{e}: only ReturnData results");
        assert_eq!(results[0].status_code, Some(cw::StatusCode::Complete));
        let got = points(&results[0]);
        assert_eq!(got.len(), want.len(), "{e}: {got:?}");
        for ((gt, gv), (wt, wv)) in got.iter().zip(&want) {
            assert!(gt == wt && (gv - wv).abs() < 1e-9, "{e}: {got:?} vs {want:?}");
        }
    }
    // A metric stat returned as is, labelled by its metric name, newest first by default.
    let mut input = data_input(vec![metric_query("m", "App", "req", "SampleCount", 60)], b, b + 300);
    input.scan_by = None;
    let out = data(&h, input).await.expect("data");
    let r = &out.metric_data_results.expect("results")[0];
    assert_eq!(r.label.as_deref(), Some("req"));
    assert!(points(r).is_empty(), "no metric without dimensions");
    // SEARCH over the series table: both services, one result each.
    let search = expression("s", "SEARCH('{App,Service} MetricName=\"req\"', 'Sum', 60)");
    let out = data(&h, data_input(vec![search], b, b + 300)).await.expect("search");
    let mut found: Vec<(String, f64)> = out
        .metric_data_results
        .expect("results")
        .iter()
        .map(|r| (r.label.clone().expect("label"), points(r).iter().map(|(_, v)| v).sum()))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(found, vec![("req api".to_string(), 40.0), ("req web".to_string(), 15.0)]);
    let sum_of_search = vec![expression("s", "SEARCH('{App,Service} req', 'Sum', 60)"), expression("total", "SUM(s)")];
    let mut sum_of_search = data_input(sum_of_search, b, b + 300);
    if let Some(qs) = sum_of_search.metric_data_queries.as_mut() {
        qs[0].return_data = Some(false);
    }
    let out = data(&h, sum_of_search).await.expect("sum of search");
    assert_eq!(points(&out.metric_data_results.expect("results")[0]).iter().map(|(_, v)| v).sum::<f64>(), 55.0);
    // Paging: two datapoints per page, both scan orders, every point exactly once.
    for scan in [cw::ScanBy::TimestampAscending, cw::ScanBy::TimestampDescending] {
        let mut token = None;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let mut input = data_input(vec![mq("web", "web")], b, b + 300);
            if let Some(qs) = input.metric_data_queries.as_mut() {
                qs[0].return_data = Some(true);
            }
            input.scan_by = Some(scan);
            input.max_datapoints = Some(2);
            input.next_token = token.clone();
            let out = data(&h, input).await.expect("page");
            let r = &out.metric_data_results.expect("results")[0];
            let want_status =
                if out.next_token.is_some() { cw::StatusCode::PartialData } else { cw::StatusCode::Complete };
            assert_eq!(r.status_code, Some(want_status));
            let p = points(r);
            assert!(p.len() <= 2);
            seen.extend(p);
            pages += 1;
            token = out.next_token;
            if token.is_none() {
                break;
            }
        }
        assert_eq!(pages, 3, "{scan:?}");
        let mut want: Vec<(i64, f64)> = (0..5).map(|k| (t(k), (k + 1) as f64)).collect();
        if scan == cw::ScanBy::TimestampDescending {
            want.reverse();
        }
        assert_eq!(seen, want, "{scan:?}");
    }
    // Errors.
    let errors: Vec<(&str, cw::GetMetricDataInput, ErrorCode)> = vec![
        (
            "duplicate ids",
            data_input(vec![mq("a", "web"), expression("a", "a")], b, b + 300),
            ErrorCode::InvalidParameterValue,
        ),
        (
            "bad id",
            data_input(vec![metric_query("A", "App", "req", "Sum", 60)], b, b + 300),
            ErrorCode::InvalidParameterValue,
        ),
        (
            "unknown id",
            data_input(vec![mq("web", "web"), expression("e", "nope * 2")], b, b + 300),
            ErrorCode::InvalidParameterValue,
        ),
        (
            "syntax",
            data_input(vec![mq("web", "web"), expression("e", "web +")], b, b + 300),
            ErrorCode::InvalidParameterValue,
        ),
        (
            "bad stat",
            data_input(vec![metric_query("m", "App", "req", "p200", 60)], b, b + 300),
            ErrorCode::InvalidParameterValue,
        ),
        (
            "bad period",
            data_input(vec![metric_query("m", "App", "req", "Sum", 45)], b, b + 300),
            ErrorCode::InvalidParameterValue,
        ),
        (
            "bad token",
            cw::GetMetricDataInput {
                next_token: Some("x".into()),
                ..data_input(vec![metric_query("m", "App", "req", "Sum", 60)], b, b + 300)
            },
            ErrorCode::InvalidNextToken,
        ),
    ];
    for (case, input, want) in errors {
        assert_eq!(code(data(&h, input).await), want, "{case}");
    }
}

#[tokio::test]
async fn list_metrics_filters_and_pages() {
    let h = harness("cw-list");
    let b = now() - 60;
    let mut d = Vec::new();
    for i in 0..520 {
        d.push(cw::MetricDatum { dimensions: dims(&[("Task", &format!("t{i:03}"))]), ..datum("cpu", b, 1.0) });
        if d.len() == 1000 {
            put(&h, "Big", std::mem::take(&mut d)).await.expect("put");
        }
    }
    put(&h, "Big", d).await.expect("put");
    put(
        &h,
        "App",
        vec![
            cw::MetricDatum { dimensions: dims(&[("Service", "web"), ("Zone", "a")]), ..datum("req", b, 1.0) },
            cw::MetricDatum { dimensions: dims(&[("Service", "api")]), ..datum("req", b, 1.0) },
            cw::MetricDatum {
                unit: Some(cw::StandardUnit::Count),
                dimensions: dims(&[("Service", "api")]),
                ..datum("req", b, 1.0)
            },
            datum("old", now() - 5 * 3600, 1.0),
        ],
    )
    .await
    .expect("put");
    h.control.flush_metrics().expect("flush");
    // `old` last received data four hours ago.
    let db = rusqlite::Connection::open(h.dir.join("berth.db")).expect("db");
    db.execute("UPDATE metric_series SET last_seen = last_seen - 4 * 3600 WHERE name = 'old'", []).expect("age");
    let list = |input: cw::ListMetricsInput| async {
        match call(&h, Op::ListMetrics(input)).await {
            Ok(Out::ListMetrics(o)) => o,
            other => panic!("ListMetrics: {other:?}"),
        }
    };
    let filter = |n: &str, v: Option<&str>| cw::DimensionFilter { name: Some(n.into()), value: v.map(Into::into) };
    let app = |f: Vec<cw::DimensionFilter>, recent: bool| cw::ListMetricsInput {
        namespace: Some("App".into()),
        dimensions: Some(f),
        recently_active: recent.then_some(cw::RecentlyActive::Pt3h),
        ..Default::default()
    };
    let cases: Vec<(&str, cw::ListMetricsInput, usize)> = vec![
        ("the namespace, one entry per metric whatever its units", app(vec![], false), 3),
        ("recently active", app(vec![], true), 2),
        ("has Service", app(vec![filter("Service", None)], false), 2),
        ("Service=web", app(vec![filter("Service", Some("web"))], false), 1),
        ("Service=web and Zone", app(vec![filter("Service", Some("web")), filter("Zone", None)], false), 1),
        ("no such dimension", app(vec![filter("Nope", None)], false), 0),
        ("by name", cw::ListMetricsInput { metric_name: Some("old".into()), ..Default::default() }, 1),
    ];
    for (case, input, want) in cases {
        assert_eq!(list(input).await.metrics.expect("metrics").len(), want, "{case}");
    }
    let first = list(cw::ListMetricsInput { namespace: Some("Big".into()), ..Default::default() }).await;
    assert_eq!(first.metrics.expect("page").len(), 500);
    let second = list(cw::ListMetricsInput {
        namespace: Some("Big".into()),
        next_token: first.next_token,
        ..Default::default()
    })
    .await;
    assert_eq!(second.metrics.expect("page").len(), 20);
    assert_eq!(second.next_token, None);
}

#[tokio::test]
async fn dashboards_and_tags() {
    let h = harness("cw-dash");
    let body =
        r#"{"widgets":[{"type":"metric","x":0,"y":0,"width":12,"height":6,"properties":{"metrics":[["App","req"]]}}]}"#;
    let put_dash = |name: &str, body: &str| {
        Op::PutDashboard(cw::PutDashboardInput {
            dashboard_name: Some(name.into()),
            dashboard_body: Some(body.into()),
            tags: None,
        })
    };
    let Out::PutDashboard(out) = call(&h, put_dash("web", body)).await.expect("put") else { panic!("put") };
    assert_eq!(out.dashboard_validation_messages, Some(vec![]));
    for (case, name, body, want) in [
        ("not json", "x", "{", ErrorCode::DashboardInvalidInput),
        ("no widgets", "x", "{}", ErrorCode::DashboardInvalidInput),
        ("bad name", "a b", body, ErrorCode::DashboardInvalidInput),
    ] {
        assert_eq!(code(call(&h, put_dash(name, body)).await), want, "{case}");
    }
    call(&h, put_dash("api", body)).await.expect("put api");
    let Out::GetDashboard(g) =
        call(&h, Op::GetDashboard(cw::GetDashboardInput { dashboard_name: Some("web".into()) })).await.expect("get")
    else {
        panic!("get")
    };
    assert_eq!(g.dashboard_body.as_deref(), Some(body));
    let arn = g.dashboard_arn.expect("arn");
    assert_eq!(arn, format!("arn:aws:cloudwatch::{}:dashboard/web", h.control.account_id()));
    let Out::ListDashboards(l) = call(
        &h,
        Op::ListDashboards(cw::ListDashboardsInput { dashboard_name_prefix: Some("w".into()), next_token: None }),
    )
    .await
    .expect("list") else {
        panic!("list")
    };
    let names: Vec<String> =
        l.dashboard_entries.expect("entries").into_iter().filter_map(|e| e.dashboard_name).collect();
    assert_eq!(names, vec!["web".to_string()]);
    // Tags on the dashboard; an alarm or dashboard that does not exist is not found.
    let tag = |arn: &str| {
        Op::TagResource(cw::TagResourceInput {
            resource_arn: Some(arn.into()),
            tags: Some(vec![cw::Tag { key: Some("team".into()), value: Some("a".into()) }]),
        })
    };
    call(&h, tag(&arn)).await.expect("tag");
    let Out::ListTagsForResource(t) =
        call(&h, Op::ListTagsForResource(cw::ListTagsForResourceInput { resource_arn: Some(arn.clone()) }))
            .await
            .expect("tags")
    else {
        panic!("tags")
    };
    assert_eq!(t.tags, Some(vec![cw::Tag { key: Some("team".into()), value: Some("a".into()) }]));
    let missing_alarm = format!("arn:aws:cloudwatch:{}:{}:alarm:nope", h.control.region(), h.control.account_id());
    assert_eq!(code(call(&h, tag(&missing_alarm)).await), ErrorCode::ResourceNotFound);
    assert_eq!(code(call(&h, tag("arn:aws:s3:::bucket")).await), ErrorCode::InvalidParameterValue);
    call(
        &h,
        Op::UntagResource(cw::UntagResourceInput {
            resource_arn: Some(arn.clone()),
            tag_keys: Some(vec!["team".into()]),
        }),
    )
    .await
    .expect("untag");
    // Delete: all or nothing.
    let del = |names: &[&str]| {
        Op::DeleteDashboards(cw::DeleteDashboardsInput {
            dashboard_names: Some(names.iter().map(|n| n.to_string()).collect()),
        })
    };
    assert_eq!(code(call(&h, del(&["web", "nope"])).await), ErrorCode::InvalidParameterValue);
    call(&h, del(&["web", "api"])).await.expect("delete");
    let r = call(&h, Op::GetDashboard(cw::GetDashboardInput { dashboard_name: Some("web".into()) })).await;
    assert_eq!(code(r), ErrorCode::DashboardNotFound);
}

#[tokio::test]
async fn users_are_authorized_by_namespace_and_resource() {
    let h = harness("cw-authz");
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"cloudwatch:PutMetricData","Resource":"*","Condition":{"StringEquals":{"cloudwatch:namespace":"App"}}},
        {"Effect":"Allow","Action":["cloudwatch:GetMetricStatistics","cloudwatch:ListMetrics"],"Resource":"*"},
        {"Effect":"Allow","Action":"cloudwatch:PutDashboard","Resource":"arn:aws:cloudwatch::*:dashboard/team-*"}]}"#;
    let user = user_with(&h.control, "metrics-user", policy).await;
    let t = now();
    let as_user = |op| {
        let c = h.control.clone();
        let u = user.clone();
        async move { c.handle_cloudwatch(&u, op).await }
    };
    let put_in = |ns: &str| {
        Op::PutMetricData(cw::PutMetricDataInput {
            namespace: Some(ns.into()),
            metric_data: Some(vec![datum("m", t, 1.0)]),
            ..Default::default()
        })
    };
    let dash = |name: &str| {
        Op::PutDashboard(cw::PutDashboardInput {
            dashboard_name: Some(name.into()),
            dashboard_body: Some(r#"{"widgets":[]}"#.into()),
            tags: None,
        })
    };
    let cases: Vec<(&str, Op, Option<ErrorCode>)> = vec![
        ("its namespace", put_in("App"), None),
        ("another namespace", put_in("Other"), Some(ErrorCode::AccessDenied)),
        ("read", Op::GetMetricStatistics(stats_input("App", "m", t - 60, t + 60, 60)), None),
        ("list", Op::ListMetrics(cw::ListMetricsInput::default()), None),
        ("its dashboards", dash("team-web"), None),
        ("other dashboards", dash("ops"), Some(ErrorCode::AccessDenied)),
        ("not granted", Op::ListDashboards(cw::ListDashboardsInput::default()), Some(ErrorCode::AccessDenied)),
    ];
    for (case, op, want) in cases {
        let got = as_user(op).await.err().map(|e| e.code);
        assert_eq!(got, want, "{case}");
    }
}
