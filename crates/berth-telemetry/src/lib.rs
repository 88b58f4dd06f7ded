//! berth-telemetry: the pure core of CloudWatch metrics, alarms and target tracking (issue 11).
//!
//! It owns the rules and the in-memory shapes, not the storage: metric identity and PutMetricData's datum validation (`metric.rs`), the
//! per-period aggregate with its mergeable log-bucket sketch and its byte encoding (`sketch.rs`, `aggregate.rs`),
//! CloudWatch's storage tiers, roll-up and the period/StartTime rules of GetMetricData and GetMetricStatistics
//! (`storage.rs`), statistics and their string forms (`statistic.rs`), alarm evaluation with M of N and
//! TreatMissingData (`alarm.rs`), metric math (`math.rs`), target tracking's alarms and scaling decision and step
//! scaling (`scaling.rs`), scheduled actions' `at`/`rate`/`cron` schedules (`schedule.rs`), and the Prometheus
//! text exposition with its lock-free histogram (`prometheus.rs`) for the server's and the proxy's `/metrics`.
//!
//! It must never do I/O, read a clock, touch the store or serve anything: time is always an input (epoch
//! seconds), every function but the Prometheus histogram's counters is deterministic, and the wiring (berth-control,
//! berth-api, the binary, the proxy) persists and serves what this crate computes — the exposition text included,
//! which this crate only writes into a `String`. It depends on `berth-core` at most.
//!
//! How the wiring uses it:
//! - PutMetricData: [`metric::validate_put`] → for each (id, datum), [`Aggregate::of`] and record it in the
//!   series' tier bucket (the store keeps `(series, tier, start) → Aggregate::encode()`; [`storage::Series`] is
//!   the same thing in memory). Internal publishers (`AWS/ECS`, `AWS/ApplicationELB`) build [`MetricId`]s
//!   directly and may write per-interval aggregates (the proxy's per-interval histogram as `Values`/`Counts`).
//! - Periodically: [`storage::roll_up_plan`] over the aged keys, executed as merge + delete.
//! - GetMetricStatistics / GetMetricData: [`storage::plan_range`] → read the buckets → [`Statistic::compute`];
//!   expressions: [`math::validate_queries`] then [`math::evaluate_queries`].
//! - Alarms: every [`alarm::evaluation_interval`], read the alarm's period buckets over its evaluation range,
//!   [`alarm::datapoints`] → [`alarm::evaluate`]; store state, reason and reason data when `changed` (a history
//!   item), run actions when [`alarm::actions_due`].
//! - Target tracking: [`scaling::alarms`] on PutScalingPolicy; when an alarm's action names a policy,
//!   [`scaling::decide`] with the running count and the alarm's newest datapoint.

#![forbid(unsafe_code)]

pub mod aggregate;
pub mod alarm;
pub mod error;
pub mod math;
pub mod metric;
pub mod prometheus;
pub mod scaling;
pub mod schedule;
pub mod sketch;
pub mod statistic;
pub mod storage;

pub use aggregate::Aggregate;
pub use error::Invalid;
pub use metric::{Datum, Dimension, MetricId, Unit};
pub use statistic::Statistic;
