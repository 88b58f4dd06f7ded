//! The whole pure pipeline through the public API, as the wiring will drive it: PutMetricData → tier buckets →
//! the alarm's datapoints → evaluation every 10 s → the target tracking decision. Simulated time only.
//!
//! Scenario (issue 11's scale-out test in miniature): a service runs 2 tasks, CPU target 60 with berth's alarm
//! timing (10 s periods, AlarmHigh 1 of 1, AlarmLow 30 of 30). Each task reports its CPU every 10 s as a
//! high-resolution datum. Load (as the per-task CPU with 2 tasks) is 55% (between AlarmLow's 54 and the target),
//! jumps to 90% at `SPIKE` and drops to 10% at `CALM`; with more tasks each task's share is smaller.

use berth_telemetry::alarm::{self, AlarmConfig, State, TreatMissingData};
use berth_telemetry::metric::{DatumInput, MetricDatumInput, validate_put};
use berth_telemetry::scaling::{
    self, AlarmTiming, Capacity, Decision, Direction, PredefinedMetric, ScalingConfig, Trigger,
};
use berth_telemetry::storage::{Api, Series, plan_range};
use berth_telemetry::{Aggregate, Dimension, Statistic};

const START: i64 = 1_800_000_000 / 3600 * 3600;
const SPIKE: i64 = START + 600;
const CALM: i64 = START + 1200;

fn cpu_at(t: i64) -> f64 {
    if t < SPIKE {
        55.0
    } else if t < CALM {
        90.0
    } else {
        10.0
    }
}

fn config(spec: &scaling::AlarmSpec) -> AlarmConfig {
    AlarmConfig {
        period: spec.period,
        evaluation_periods: spec.evaluation_periods,
        datapoints_to_alarm: Some(spec.datapoints_to_alarm),
        threshold: spec.threshold,
        comparison: spec.comparison,
        treat_missing_data: TreatMissingData::Missing,
        evaluate_low_sample_count_percentile: true,
        statistic: Some(Statistic::parse(&spec.statistic, "Statistic").expect("statistic")),
        evaluation_range: None,
    }
}

#[test]
fn a_cpu_spike_scales_out_within_one_period_and_calm_scales_in_after_the_low_window() {
    let specs = scaling::alarms(
        "service/default/web",
        "arn:aws:autoscaling:us-east-1:123456789012:scalingPolicy:x:resource/ecs/service/default/web:policyName/webCPU",
        &PredefinedMetric::EcsServiceAverageCpuUtilization,
        60.0,
        false,
        AlarmTiming::BERTH,
        "high",
        "low",
    );
    let (high, low) = (config(&specs[0]), config(&specs[1]));
    let policy = ScalingConfig::new(60.0, 1, 20);
    let mut series = Series::new();
    let mut states = (None::<State>, None::<State>);
    let mut capacity = Capacity { running: 2, desired: 2, deploying: false };
    let mut last = None;
    let mut scale_out_at = None;
    let mut scale_in_at = None;
    let mut t = START;
    while t < CALM + 600 {
        // Each task reports at t + 1 (inside the period starting at t); the publisher writes at t + 2.
        let data: Vec<MetricDatumInput> = (0..capacity.running)
            .map(|_| MetricDatumInput {
                metric_name: "CPUUtilization".into(),
                dimensions: vec![Dimension::new("ServiceName", "web"), Dimension::new("ClusterName", "default")],
                unit: Some("Percent".into()),
                datum: DatumInput {
                    value: Some(cpu_at(t) * 2.0 / f64::from(capacity.running)),
                    timestamp: Some((t + 1) as f64),
                    storage_resolution: Some(1),
                    ..Default::default()
                },
            })
            .collect();
        // (Publishing under a custom namespace: AWS/ is reserved for clients; berth's own publisher skips that check.)
        for (id, d) in validate_put("Test/ECS", &data, (t + 2) as f64).expect("valid") {
            assert_eq!(id.dimensions[0].name, "ClusterName");
            series.record(d.timestamp, d.high_resolution, Aggregate::of(&d.datum), t + 2);
        }
        // Evaluations run on 10 s boundaries, half a second after (so the period just closed is complete).
        let now = t + 10;
        series.roll_up(now);
        for (cfg, state, trigger) in [(&high, &mut states.0, Trigger::High), (&low, &mut states.1, Trigger::Low)] {
            let range = i64::from(cfg.evaluation_periods + 2) * cfg.period;
            let plan = plan_range(now - range, now, cfg.period, now, Api::GetMetricData).expect("plan");
            let statistic = cfg.statistic.clone().expect("a metric alarm");
            let points = alarm::datapoints(&statistic, &series.read(&plan));
            let e = alarm::evaluate(cfg, &points, now as f64 + 0.5, *state);
            *state = Some(e.state);
            if e.state == State::Alarm && alarm::actions_due(e.changed, true, None, now) {
                let newest = points.last().map(|p| p.value);
                let d = scaling::decide(&policy, capacity, trigger, newest, now, last);
                if let Decision::Scale { to, direction } = d {
                    match direction {
                        Direction::Out => scale_out_at = scale_out_at.or(Some(now)),
                        Direction::In => scale_in_at = scale_in_at.or(Some(now)),
                    }
                    last = Some(scaling::Activity { at: now, direction, to });
                    // The reconciler starts (or drains) tasks; here they run at once.
                    capacity = Capacity { running: to, desired: to, deploying: false };
                }
            }
        }
        t += 10;
    }
    let out = scale_out_at.expect("scaled out");
    assert_eq!(out - SPIKE, 10, "the spike's first 10 s period is evaluated as soon as it closes");
    let inn = scale_in_at.expect("scaled in");
    // AlarmLow needs 30 periods below 54 after the calm, and the capacity follows the load down.
    assert_eq!(inn - CALM, 300, "30 × 10 s below 90% of the target");
    assert!(capacity.running >= policy.min_capacity && capacity.running < 3, "scaled in: {capacity:?}");
    assert_eq!(states.0, Some(State::Ok));
}
