//! Metric alarm evaluation (reference §3.1–3.9) as one pure function: [`evaluate`] takes the alarm's
//! configuration, the datapoints of its statistic per period, `now` and the previous state, and returns the new
//! state with CloudWatch's `StateReason` and `StateReasonData`.
//!
//! The evaluation range is the last `R` complete periods before `now` (`R` = N + 2 by default: the documented
//! example is N = 3 → 5 periods; AWS does not publish the formula, §3.4.1). Then, as documented (§3.4):
//! - ≥ N real points in range → the newest N real points decide (M of them breaching → ALARM, else OK);
//!   TreatMissingData is not used;
//! - no real point → `missing`: INSUFFICIENT_DATA, `ignore`: the state is kept, `breaching`: ALARM,
//!   `notBreaching`: OK;
//! - some but fewer than N → every real point takes part and as few missing points as possible (N − real) are
//!   filled: `breaching` counts them as breaching, `notBreaching` as not; `missing` and `ignore` count only the
//!   real ones, except the premature-alarm rule (§3.4.5): when every real point in range breaches and the oldest
//!   breaching point among the last N periods is at least M periods old, `missing` goes to ALARM and `ignore`
//!   keeps the state. That is exactly the published table (§3.4), which the tests reproduce row by row.
//!
//! `EvaluateLowSampleCountPercentile = ignore` (§3.6): when a percentile statistic's evaluated point has fewer
//! samples than 10/(1−p) (p ≥ 0.5) or 10/p (p < 0.5), the state is kept.

use std::fmt::Write as _;

use serde::Serialize;

use crate::error::Invalid;
use crate::metric::java_double;
use crate::statistic::Statistic;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Ok,
    Alarm,
    InsufficientData,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "OK",
            State::Alarm => "ALARM",
            State::InsufficientData => "INSUFFICIENT_DATA",
        }
    }
    pub fn parse(s: &str) -> Result<State, Invalid> {
        match s {
            "OK" => Ok(State::Ok),
            "ALARM" => Ok(State::Alarm),
            "INSUFFICIENT_DATA" => Ok(State::InsufficientData),
            _ => Err(Invalid::value(format!("The value {s} for parameter StateValue is invalid."))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    GreaterThanOrEqualToThreshold,
    GreaterThanThreshold,
    LessThanThreshold,
    LessThanOrEqualToThreshold,
}

impl Comparison {
    pub fn parse(s: &str) -> Result<Comparison, Invalid> {
        match s {
            "GreaterThanOrEqualToThreshold" => Ok(Comparison::GreaterThanOrEqualToThreshold),
            "GreaterThanThreshold" => Ok(Comparison::GreaterThanThreshold),
            "LessThanThreshold" => Ok(Comparison::LessThanThreshold),
            "LessThanOrEqualToThreshold" => Ok(Comparison::LessThanOrEqualToThreshold),
            "LessThanLowerOrGreaterThanUpperThreshold" | "LessThanLowerThreshold" | "GreaterThanUpperThreshold" => {
                Err(Invalid::value(format!(
                    "The value {s} for parameter ComparisonOperator is not supported: berth has no anomaly detection bands."
                )))
            }
            _ => Err(Invalid::value(format!("The value {s} for parameter ComparisonOperator is invalid."))),
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => "GreaterThanOrEqualToThreshold",
            Comparison::GreaterThanThreshold => "GreaterThanThreshold",
            Comparison::LessThanThreshold => "LessThanThreshold",
            Comparison::LessThanOrEqualToThreshold => "LessThanOrEqualToThreshold",
        }
    }
    pub fn breaches(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => value >= threshold,
            Comparison::GreaterThanThreshold => value > threshold,
            Comparison::LessThanThreshold => value < threshold,
            Comparison::LessThanOrEqualToThreshold => value <= threshold,
        }
    }
    fn words(self) -> &'static str {
        match self {
            Comparison::GreaterThanOrEqualToThreshold => "greater than or equal to",
            Comparison::GreaterThanThreshold => "greater than",
            Comparison::LessThanThreshold => "less than",
            Comparison::LessThanOrEqualToThreshold => "less than or equal to",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TreatMissingData {
    #[default]
    Missing,
    Ignore,
    Breaching,
    NotBreaching,
}

impl TreatMissingData {
    pub fn parse(s: &str) -> Result<TreatMissingData, Invalid> {
        match s {
            "missing" => Ok(TreatMissingData::Missing),
            "ignore" => Ok(TreatMissingData::Ignore),
            "breaching" => Ok(TreatMissingData::Breaching),
            "notBreaching" => Ok(TreatMissingData::NotBreaching),
            _ => Err(Invalid::value(format!(
                "The value {s} for parameter TreatMissingData is invalid. Valid values are breaching, notBreaching, ignore and missing."
            ))),
        }
    }
}

/// What evaluation needs of an alarm.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmConfig {
    pub period: i64,
    /// N.
    pub evaluation_periods: u32,
    /// M; `None` behaves as N.
    pub datapoints_to_alarm: Option<u32>,
    pub threshold: f64,
    pub comparison: Comparison,
    pub treat_missing_data: TreatMissingData,
    /// `EvaluateLowSampleCountPercentile`: true for `evaluate` (the default), false for `ignore`.
    pub evaluate_low_sample_count_percentile: bool,
    /// The metric's statistic; `None` for a metric-math alarm (its StateReasonData then names no statistic, and
    /// EvaluateLowSampleCountPercentile does not apply).
    pub statistic: Option<Statistic>,
    /// Periods fetched per evaluation; `None` = N + 2 (see the module docs).
    pub evaluation_range: Option<u32>,
}

impl AlarmConfig {
    /// PutMetricAlarm's checks of these fields (reference §3.1–3.2, the model's rule for the total).
    pub fn validate(&self) -> Result<(), Invalid> {
        let p = self.period;
        if !(p == 10 || p == 20 || p == 30 || (p >= 60 && p % 60 == 0)) {
            return Err(Invalid::value(format!(
                "The parameter Period must be 10, 20, 30 or a multiple of 60; {p} is not valid."
            )));
        }
        if self.evaluation_periods == 0 {
            return Err(Invalid::value("The parameter EvaluationPeriods must be greater than or equal to 1."));
        }
        if let Some(m) = self.datapoints_to_alarm {
            if m == 0 {
                return Err(Invalid::value("The parameter DatapointsToAlarm must be greater than or equal to 1."));
            }
            if m > self.evaluation_periods {
                return Err(Invalid::value("DatapointsToAlarm must be less than or equal to EvaluationPeriods."));
            }
        }
        let total = p * i64::from(self.evaluation_periods);
        let limit = if p < 3600 { 86_400 } else { 7 * 86_400 };
        if total > limit {
            return Err(Invalid::value(format!(
                "The evaluation period ({total} seconds = Period × EvaluationPeriods) must not exceed {} seconds.",
                limit
            )));
        }
        if !self.threshold.is_finite() {
            return Err(Invalid::value("The parameter Threshold must be a finite number."));
        }
        if let Some(s) = &self.statistic
            && s.is_extended()
            && !s.allowed_in_alarm()
        {
            return Err(Invalid::value(format!(
                "The value {s} for parameter ExtendedStatistic is not supported for alarms."
            )));
        }
        Ok(())
    }

    fn m(&self) -> usize {
        self.datapoints_to_alarm.unwrap_or(self.evaluation_periods).max(1) as usize
    }
    fn n(&self) -> usize {
        self.evaluation_periods.max(1) as usize
    }
    fn range(&self) -> usize {
        self.evaluation_range.map_or(self.n() + 2, |r| r as usize).max(self.n())
    }

    /// The evaluation range at `now` as `[start, end)` in epoch seconds: the last R complete periods (see the
    /// module docs). The data an evaluation reads.
    pub fn window(&self, now: f64) -> (i64, i64) {
        let period = self.period.max(1);
        let end = (now.floor() as i64).div_euclid(period) * period;
        (end - self.range() as i64 * period, end)
    }
}

/// One period's value of the alarm's statistic, stamped with the period's start (epoch seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Datapoint {
    pub timestamp: i64,
    pub value: f64,
    pub sample_count: f64,
}

/// The alarm's datapoints from per-period aggregates (e.g. [`crate::storage::Series::read`] with the alarm's
/// period): the statistic of each, skipping periods where it has no value.
pub fn datapoints(statistic: &Statistic, aggregates: &[(i64, crate::aggregate::Aggregate)]) -> Vec<Datapoint> {
    aggregates
        .iter()
        .filter_map(|(t, a)| {
            statistic.compute(a).map(|value| Datapoint { timestamp: *t, value, sample_count: a.sample_count })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub state: State,
    /// `StateReason` (≤ 1023 characters). Store it (and `reason_data`) only when `changed`.
    pub reason: String,
    /// `StateReasonData`: a JSON string shaped like CloudWatch's.
    pub reason_data: String,
    /// Whether `state` differs from the previous state (a transition: history item and actions).
    pub changed: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReasonData<'a> {
    version: &'a str,
    query_date: String,
    start_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    statistic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extended_statistic: Option<String>,
    period: i64,
    recent_datapoints: Vec<f64>,
    threshold: f64,
    evaluated_datapoints: Vec<Evaluated>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Evaluated {
    timestamp: String,
    sample_count: f64,
    value: f64,
}

/// `yyyy-MM-dd'T'HH:mm:ss.SSS+0000`, the date form of StateReasonData.
pub fn reason_date(epoch: f64) -> String {
    let ms = (epoch * 1000.0).floor() as i64;
    format!("{}.{:03}+0000", berth_core::time::iso8601_seconds(ms.div_euclid(1000)), ms.rem_euclid(1000))
}

/// `dd/MM/yy HH:mm:ss`, the date form inside StateReason.
fn reason_point_date(epoch: i64) -> String {
    let iso = berth_core::time::iso8601_seconds(epoch); // YYYY-MM-DDTHH:MM:SS
    format!("{}/{}/{} {}", &iso[8..10], &iso[5..7], &iso[2..4], &iso[11..19])
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 { format!("{n} {one}") } else { format!("{n} {many}") }
}

/// Evaluates an alarm at `now` (epoch seconds) over `datapoints` (any order; points outside the evaluation range
/// are ignored; for two points in one period the later one in the slice wins). `previous` is `None` for an alarm
/// never evaluated (which counts as INSUFFICIENT_DATA, the state PutMetricAlarm creates).
pub fn evaluate(config: &AlarmConfig, datapoints: &[Datapoint], now: f64, previous: Option<State>) -> Evaluation {
    let (n, m, r) = (config.n(), config.m(), config.range());
    let period = config.period.max(1);
    let (first, end) = config.window(now);
    // Slots oldest → newest.
    let mut slots: Vec<Option<Datapoint>> = vec![None; r];
    for d in datapoints {
        if d.timestamp >= first && d.timestamp < end && d.value.is_finite() {
            slots[((d.timestamp - first) / period) as usize] = Some(*d);
        }
    }
    let reals: Vec<(usize, Datapoint)> = slots.iter().enumerate().filter_map(|(i, d)| d.map(|d| (i, d))).collect();
    let breaches = |d: &Datapoint| config.comparison.breaches(d.value, config.threshold);
    let before = previous.unwrap_or(State::InsufficientData);
    let thr = java_double(config.threshold);
    let words = config.comparison.words();
    let fmt_points = |pts: &[(usize, Datapoint)]| {
        let mut s = String::new();
        for (k, (_, d)) in pts.iter().rev().enumerate() {
            if k > 0 {
                s.push_str(", ");
            }
            let _ = write!(s, "{} ({})", java_double(d.value), reason_point_date(d.timestamp));
        }
        s
    };

    // The points that decide (oldest → newest), how many missing points are filled, and the outcome.
    let evaluated: Vec<(usize, Datapoint)> =
        if reals.len() >= n { reals[reals.len() - n..].to_vec() } else { reals.clone() };
    // `Threshold Crossed: 2 out of the last 3 datapoints [v (date), …] were [not ]greater than the threshold (70.0)
    // (minimum 2 datapoints for OK -> ALARM transition).`
    let crossed = |count: usize, not: &str, min: usize, to: State| {
        format!(
            "Threshold Crossed: {count} out of the last {} [{}] {} {not}{words} the threshold ({thr}) (minimum {} for {} -> {} transition).",
            plural(evaluated.len(), "datapoint", "datapoints"),
            fmt_points(&evaluated),
            if count == 1 { "was" } else { "were" },
            plural(min, "datapoint", "datapoints"),
            before.as_str(),
            to.as_str()
        )
    };
    let fill = n.saturating_sub(evaluated.len());
    let real_breaching = evaluated.iter().filter(|(_, d)| breaches(d)).count();

    let keep = |why: String| (before, why);
    let (state, reason) = if let Some(statistic) = &config.statistic
        && let Some(p) = statistic.percentile_fraction().filter(|_| !config.evaluate_low_sample_count_percentile)
        && let Some(low) = evaluated.iter().find(|(_, d)| d.sample_count < low_sample_minimum(p))
    {
        keep(format!(
            "Unchanged: {} samples in the period starting {} are too few to evaluate {} (EvaluateLowSampleCountPercentile is ignore).",
            java_double(low.1.sample_count),
            reason_point_date(low.1.timestamp),
            statistic
        ))
    } else if reals.is_empty() {
        match config.treat_missing_data {
            TreatMissingData::Missing => (
                State::InsufficientData,
                format!("Insufficient Data: {} unknown.", plural(r, "datapoint was", "datapoints were")),
            ),
            TreatMissingData::Ignore => keep(format!(
                "Unchanged: {} missing and TreatMissingData is ignore.",
                plural(r, "datapoint was", "datapoints were")
            )),
            TreatMissingData::Breaching => (
                State::Alarm,
                format!(
                    "Threshold Crossed: no datapoints were received for {n} periods and {} treated as [Breaching].",
                    plural(n, "missing datapoint was", "missing datapoints were")
                ),
            ),
            TreatMissingData::NotBreaching => (
                State::Ok,
                format!(
                    "Threshold Crossed: no datapoints were received for {n} periods and {} treated as [NonBreaching].",
                    plural(n, "missing datapoint was", "missing datapoints were")
                ),
            ),
        }
    } else if fill > 0
        && matches!(config.treat_missing_data, TreatMissingData::Breaching | TreatMissingData::NotBreaching)
    {
        let breaching_fill = config.treat_missing_data == TreatMissingData::Breaching;
        let b = real_breaching + if breaching_fill { fill } else { 0 };
        let state = if b >= m { State::Alarm } else { State::Ok };
        (
            state,
            format!(
                "Threshold Crossed: {} received for {n} periods and {} treated as [{}].",
                plural(evaluated.len(), "datapoint was", "datapoints were"),
                plural(fill, "missing datapoint was", "missing datapoints were"),
                if breaching_fill { "Breaching" } else { "NonBreaching" }
            ),
        )
    } else {
        // Premature alarm (§3.4.5): only when data had to be filled under missing/ignore.
        let premature = fill > 0 && real_breaching == evaluated.len() && {
            let oldest_in_last_n = evaluated.iter().find(|(i, d)| *i >= r - n && breaches(d));
            oldest_in_last_n.is_some_and(|(i, _)| r - i >= m)
        };
        if premature && config.treat_missing_data == TreatMissingData::Ignore {
            keep(format!(
                "Unchanged: {} missing and TreatMissingData is ignore.",
                plural(fill, "datapoint was", "datapoints were")
            ))
        } else if premature || real_breaching >= m {
            (State::Alarm, crossed(real_breaching, "", m, State::Alarm))
        } else {
            (State::Ok, crossed(evaluated.len() - real_breaching, "not ", n - m + 1, State::Ok))
        }
    };

    let (statistic, extended_statistic) = match &config.statistic {
        Some(s) if s.is_extended() => (None, Some(s.to_string())),
        Some(s) => (Some(s.to_string()), None),
        None => (None, None),
    };
    let data = ReasonData {
        version: "1.0",
        query_date: reason_date(now),
        start_date: reason_date(first as f64),
        statistic,
        extended_statistic,
        period,
        recent_datapoints: evaluated.iter().map(|(_, d)| d.value).collect(),
        threshold: config.threshold,
        evaluated_datapoints: evaluated
            .iter()
            .rev()
            .map(|(_, d)| Evaluated {
                timestamp: reason_date(d.timestamp as f64),
                sample_count: d.sample_count,
                value: d.value,
            })
            .collect(),
    };
    // StateReasonData is at most 4000 characters: drop the per-point detail, then the oldest recent points.
    let mut data = data;
    let mut reason_data = serde_json::to_string(&data).unwrap_or_default();
    if reason_data.len() > MAX_REASON_DATA {
        data.evaluated_datapoints.clear();
        reason_data = serde_json::to_string(&data).unwrap_or_default();
    }
    while reason_data.len() > MAX_REASON_DATA && !data.recent_datapoints.is_empty() {
        let excess = (reason_data.len() - MAX_REASON_DATA) / 8 + 1;
        let cut = excess.min(data.recent_datapoints.len());
        data.recent_datapoints.drain(..cut);
        reason_data = serde_json::to_string(&data).unwrap_or_default();
    }
    let mut reason = reason;
    truncate(&mut reason, 1023);
    Evaluation { state, reason, reason_data, changed: state != before }
}

/// How often an alarm is evaluated (§3.3): every minute for periods of 60 s and more, every 10 s for 10 and 30 s
/// periods, and (not documented, **(inference)**) every 10 s for 20 s periods too.
pub fn evaluation_interval(period: i64) -> i64 {
    if period >= 60 { 60 } else { 10 }
}

/// When the next evaluation after `now` is due: the next multiple of the interval (evaluations run on the
/// interval's boundaries, so every alarm of one cadence is evaluated together).
pub fn next_evaluation(period: i64, now: f64) -> i64 {
    let every = evaluation_interval(period);
    ((now.floor() as i64).div_euclid(every) + 1) * every
}

/// Whether an alarm's actions for its current state run at this evaluation (§3.10): always on a transition; and,
/// for Auto Scaling actions only, again once a minute while the alarm stays in the state (`last_run` is when
/// they last ran in this state).
pub fn actions_due(changed: bool, autoscaling: bool, last_run: Option<i64>, now: i64) -> bool {
    changed || (autoscaling && last_run.is_none_or(|t| now - t >= 60))
}

/// Longest `StateReasonData` (reference §3.7).
pub const MAX_REASON_DATA: usize = 4000;

/// The fewest samples for which a percentile is statistically significant (§3.6).
pub fn low_sample_minimum(p: f64) -> f64 {
    if p >= 0.5 { 10.0 / (1.0 - p).max(f64::MIN_POSITIVE) } else { 10.0 / p.max(f64::MIN_POSITIVE) }
}

fn truncate(s: &mut String, max: usize) {
    if s.chars().count() > max {
        let cut: String = s.chars().take(max).collect();
        *s = cut;
    }
}

#[cfg(test)]
mod tests;
