//! CloudWatch's storage tiers (reference §1.5): high-resolution data at 1 s kept 3 h, 1-minute aggregates kept
//! 15 days, 5-minute 63 days, 1-hour 455 days. Each datum lives in exactly one tier: a datum enters the finest tier
//! its resolution and age allow, and [`Series::roll_up`] merges every aggregate that outlived its tier into the
//! next coarser one (and drops what outlived 455 days). So a series' size is bounded whatever the uptime
//! ([`max_stored_aggregates`]).
//!
//! [`plan_range`] is the period/StartTime rule of GetMetricData and GetMetricStatistics as a pure function: which
//! tier to read, which buckets, what timestamps, or the error CloudWatch gives.

use std::collections::BTreeMap;

use crate::aggregate::Aggregate;
use crate::error::Invalid;

pub const HOUR: i64 = 3600;
pub const DAY: i64 = 86_400;

/// A storage tier: its aggregation period and how long (by age of the bucket's start) its aggregates are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// 1-second aggregates of high-resolution metrics, kept 3 hours.
    Second = 0,
    /// 1-minute aggregates, kept 15 days.
    Minute = 1,
    /// 5-minute aggregates, kept 63 days.
    FiveMinutes = 2,
    /// 1-hour aggregates, kept 455 days.
    Hour = 3,
}

pub const TIERS: [Tier; 4] = [Tier::Second, Tier::Minute, Tier::FiveMinutes, Tier::Hour];

impl Tier {
    pub fn period(self) -> i64 {
        match self {
            Tier::Second => 1,
            Tier::Minute => 60,
            Tier::FiveMinutes => 300,
            Tier::Hour => HOUR,
        }
    }
    pub fn retention(self) -> i64 {
        match self {
            Tier::Second => 3 * HOUR,
            Tier::Minute => 15 * DAY,
            Tier::FiveMinutes => 63 * DAY,
            Tier::Hour => 455 * DAY,
        }
    }
    pub fn bucket(self, ts: i64) -> i64 {
        ts.div_euclid(self.period()) * self.period()
    }
    /// Whether a bucket starting at `start` has outlived this tier at `now`.
    fn aged(self, start: i64, now: i64) -> bool {
        now - start > self.retention()
    }
}

/// How far in the future a datum may be stamped (PutMetricData: 2 hours).
pub const FUTURE_SLACK: i64 = 2 * HOUR;

/// The most aggregates one series can hold after a roll-up at any `now`: per tier, the buckets whose start is in
/// `[now − retention, now + 2 h]` (data may be stamped 2 h ahead) — the tier's age band only, since older data has
/// moved on. High-resolution series use all four tiers, standard ones the last three.
pub fn max_stored_aggregates(high_resolution: bool) -> i64 {
    TIERS
        .iter()
        .filter(|t| high_resolution || **t != Tier::Second)
        .map(|t| {
            // The band a tier holds: from the previous tier's retention (data younger is still there) to its own.
            let younger = match t {
                Tier::Second => -FUTURE_SLACK,
                // A high-resolution series may also receive 60 s data, which enters minutes at once.
                Tier::Minute => -FUTURE_SLACK,
                Tier::FiveMinutes => Tier::Minute.retention(),
                Tier::Hour => Tier::FiveMinutes.retention(),
            };
            // +1: a bucket partly inside the band on either end; +1 for the bucket straddling the younger edge.
            (t.retention() - younger) / t.period() + 2
        })
        .sum()
}

/// The tier a datum stamped `ts` (whole seconds) enters at `now`: the 1-second tier when high resolution and
/// younger than 3 h, else the finest tier whose retention covers its age; `None` when it is older than every tier.
pub fn tier_for(ts: i64, high_resolution: bool, now: i64) -> Option<Tier> {
    let first = if high_resolution { 0 } else { 1 };
    TIERS[first..].iter().copied().find(|t| !t.aged(t.bucket(ts), now))
}

/// One series' stored aggregates, by tier and bucket start (epoch seconds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    tiers: [BTreeMap<i64, Aggregate>; 4],
}

/// What a roll-up did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollUp {
    /// Aggregates merged into a coarser tier.
    pub moved: usize,
    /// Aggregates dropped after 455 days.
    pub dropped: usize,
}

impl Series {
    pub fn new() -> Self {
        Series::default()
    }

    /// Records an aggregate stamped `ts` (whole seconds): into the 1-second tier when high resolution and younger
    /// than 3 h, else the finest tier whose retention covers its age. Returns the tier, or `None` when the datum
    /// is older than every tier (dropped).
    pub fn record(&mut self, ts: i64, high_resolution: bool, agg: Aggregate, now: i64) -> Option<Tier> {
        let tier = tier_for(ts, high_resolution, now)?;
        merge_into(&mut self.tiers[tier as usize], tier.bucket(ts), agg);
        Some(tier)
    }

    /// Moves every aggregate that outlived its tier at `now` into the coarser tier where it belongs (merging), and
    /// drops those that outlived the last: [`roll_up_plan`] executed in memory. Idempotent; call it as often as
    /// convenient (e.g. once a minute).
    pub fn roll_up(&mut self, now: i64) -> RollUp {
        // Aged keys are a prefix of each tier (sorted by start): only those are planned.
        let keys: Vec<(Tier, i64)> = TIERS
            .iter()
            .flat_map(|t| self.tiers[*t as usize].keys().take_while(|s| t.aged(**s, now)).map(|s| (*t, *s)))
            .collect();
        let mut done = RollUp::default();
        for m in roll_up_plan(keys, now) {
            let Some(agg) = self.tiers[m.from.0 as usize].remove(&m.from.1) else { continue };
            match m.to {
                Some((tier, start)) => {
                    merge_into(&mut self.tiers[tier as usize], start, agg);
                    done.moved += 1;
                }
                None => done.dropped += 1,
            }
        }
        done
    }

    /// Stored aggregates in all tiers.
    pub fn len(&self) -> usize {
        self.tiers.iter().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn tier_len(&self, tier: Tier) -> usize {
        self.tiers[tier as usize].len()
    }

    /// Encoded bytes of every stored aggregate (what the store keeps, keys aside).
    pub fn encoded_bytes(&self) -> usize {
        self.tiers.iter().flat_map(BTreeMap::values).map(|a| a.encode().len()).sum()
    }

    /// The aggregates of a planned range: for each bucket of the plan that has data, the merge of every stored
    /// aggregate whose start falls in `[bucket, bucket + period)`, from every tier (each datum is in exactly one,
    /// so nothing counts twice; a standard-resolution metric read with a 10 s period shows its minutes at the
    /// buckets where they start).
    pub fn read(&self, plan: &RangePlan) -> Vec<(i64, Aggregate)> {
        let mut out: BTreeMap<i64, Aggregate> = BTreeMap::new();
        let Some(&first) = plan.timestamps.first() else { return Vec::new() };
        let end = first + plan.period * plan.timestamps.len() as i64;
        for tier in TIERS {
            for (start, agg) in self.tiers[tier as usize].range(first..end) {
                let bucket = first + (start - first) / plan.period * plan.period;
                match out.get_mut(&bucket) {
                    Some(a) => a.merge(agg),
                    None => {
                        out.insert(bucket, agg.clone());
                    }
                }
            }
        }
        out.into_iter().collect()
    }

    /// Every stored (tier, start, aggregate), for persisting.
    pub fn entries(&self) -> impl Iterator<Item = (Tier, i64, &Aggregate)> {
        TIERS.iter().flat_map(move |t| self.tiers[*t as usize].iter().map(move |(s, a)| (*t, *s, a)))
    }

    /// Restores one persisted entry.
    pub fn restore(&mut self, tier: Tier, start: i64, agg: Aggregate) {
        self.tiers[tier as usize].insert(start, agg);
    }
}

/// One step of a roll-up: merge the aggregate stored at `from` into the one at `to` (creating it) and delete
/// `from`; or, with `to: None`, delete it (older than 455 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub from: (Tier, i64),
    pub to: Option<(Tier, i64)>,
}

/// The roll-up as a pure plan over stored keys (tier, bucket start), for an executor over any store: every key
/// that outlived its tier at `now` goes straight to the first coarser tier it has not outlived (merging is
/// associative, so skipping a tier changes nothing), or is dropped. Keys that are current produce no move.
pub fn roll_up_plan(keys: impl IntoIterator<Item = (Tier, i64)>, now: i64) -> Vec<Move> {
    keys.into_iter()
        .filter(|(tier, start)| tier.aged(*start, now))
        .map(|(tier, start)| {
            let to = TIERS[tier as usize + 1..].iter().map(|t| (*t, t.bucket(start))).find(|(t, b)| !t.aged(*b, now));
            Move { from: (tier, start), to }
        })
        .collect()
}

fn merge_into(map: &mut BTreeMap<i64, Aggregate>, start: i64, agg: Aggregate) {
    match map.get_mut(&start) {
        Some(a) => a.merge(&agg),
        None => {
            map.insert(start, agg);
        }
    }
}

/// Which API asks (their limits differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// GetMetricStatistics: at most 1,440 datapoints, else an error.
    GetMetricStatistics,
    /// GetMetricData: the caller checks `MaxDatapoints` (100,800 by default) across queries.
    GetMetricData,
}

/// Most datapoints one GetMetricStatistics call may ask for (reference §1.6).
pub const MAX_STATISTICS_DATAPOINTS: usize = 1440;

/// The answer to "which tier, which buckets, what timestamps".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangePlan {
    /// The coarsest tier the rules allow at this age (informational: [`Series::read`] reads every tier).
    pub tier: Tier,
    pub period: i64,
    /// Bucket starts (each datapoint is labelled with the start of its period), ascending; empty when CloudWatch
    /// returns no data for this period at this age.
    pub timestamps: Vec<i64>,
    /// GetMetricData only: the range held more than [`MAX_DATAPOINTS`] buckets; the plan stops there and the
    /// rest starts at this time (the wiring's `NextToken`: plan again from here).
    pub next_start: Option<i64>,
}

/// 9999-12-31T23:59:59Z: times beyond are refused (and all arithmetic on accepted ones stays in range).
pub const MAX_TIME: i64 = 253_402_300_799;

/// GetMetricData's default `MaxDatapoints` (reference §1.6); a plan never holds more buckets.
pub const MAX_DATAPOINTS: usize = 100_800;

/// The period/StartTime rules of GetMetricData/GetMetricStatistics (reference §1.5): the period is 1, 5, 10, 20,
/// 30 or a multiple of 60; StartTime < EndTime; by the age of StartTime the period must be a multiple of 60 (3 h–
/// 15 d), 300 (15–63 d) or 3600 (older), else no data; StartTime is rounded down to the minute (< 15 d), 5 minutes
/// (15–63 d) or the hour (older), and sub-minute periods to a multiple of the period. StartTime is inclusive,
/// EndTime exclusive. Times are epoch seconds.
pub fn plan_range(start: i64, end: i64, period: i64, now: i64, api: Api) -> Result<RangePlan, Invalid> {
    if period < 0 {
        return Err(Invalid::value("The parameter Period must be greater than 0."));
    }
    if period == 0 {
        return Err(Invalid::value("The parameter Period must not equal 0."));
    }
    if (period < 60 && ![1, 5, 10, 20, 30].contains(&period)) || (period >= 60 && period % 60 != 0) {
        return Err(Invalid::value("The parameter Period must be a multiple of 60."));
    }
    for (name, t) in [("StartTime", start), ("EndTime", end)] {
        if !(-MAX_TIME..=MAX_TIME).contains(&t) {
            return Err(Invalid::value(format!("The parameter {name} is out of range.")));
        }
    }
    if start > end {
        return Err(Invalid::value("The parameter EndTime must be greater than StartTime."));
    }
    if start == end {
        return Err(Invalid::value("The parameter StartTime must not equal parameter EndTime."));
    }
    let age = now.saturating_sub(start);
    let (tier, needed_multiple, round) = if age > 63 * DAY {
        (Tier::Hour, 3600, 3600)
    } else if age > 15 * DAY {
        (Tier::FiveMinutes, 300, 300)
    } else if age > 3 * HOUR {
        (Tier::Minute, 60, 60)
    } else if period < 60 {
        (Tier::Second, 1, period)
    } else {
        (Tier::Minute, 60, 60)
    };
    let round = if period < 60 { round.min(period) } else { round };
    if period % needed_multiple != 0 {
        return Ok(RangePlan { tier, period, timestamps: Vec::new(), next_start: None });
    }
    let first = start.div_euclid(round) * round;
    let count = end.saturating_sub(first).saturating_add(period - 1) / period;
    if api == Api::GetMetricStatistics && count > MAX_STATISTICS_DATAPOINTS as i64 {
        // AWS's code for this one is InvalidParameterCombination (its sample error and users' reports).
        return Err(Invalid::combination(format!(
            "You have requested up to {} datapoints, which exceeds the limit of 1,440. You may reduce the datapoints requested by increasing Period, or decreasing the time range.",
            thousands(count)
        )));
    }
    let kept = count.min(MAX_DATAPOINTS as i64);
    let timestamps = (0..kept).map(|k| first + k * period).collect();
    let next_start = (count > kept).then(|| first + kept * period);
    Ok(RangePlan { tier, period, timestamps, next_start })
}

fn thousands(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Datum;
    use crate::sketch::tests::Rng;

    const NOW: i64 = 1_800_000_000 / 3600 * 3600;

    #[test]
    fn range_plans() {
        let m = 60;
        // (case, start, end, period, want: Ok((tier, first timestamp, count)) or Err(message))
        type Want = Result<(Tier, i64, usize), &'static str>;
        let cases: Vec<(&str, i64, i64, i64, Want)> = vec![
            ("1 h at 60 s, aligned", NOW - HOUR, NOW, 60, Ok((Tier::Minute, NOW - HOUR, 60))),
            ("start rounded down to the minute", NOW - HOUR - 25, NOW, 60, Ok((Tier::Minute, NOW - HOUR - m, 61))),
            ("high-res 10 s over 1 h", NOW - HOUR + 7, NOW, 10, Ok((Tier::Second, NOW - HOUR, 360))),
            ("high-res 20 s", NOW - 95, NOW, 20, Ok((Tier::Second, NOW - 100, 5))),
            ("10 s period on 4 h old data: no data", NOW - 4 * HOUR, NOW, 10, Ok((Tier::Minute, 0, 0))),
            ("60 s on 20 d old data: no data", NOW - 20 * DAY, NOW - 19 * DAY, 60, Ok((Tier::FiveMinutes, 0, 0))),
            (
                "300 s on 20 d old data",
                NOW - 20 * DAY - 100,
                NOW - 19 * DAY,
                300,
                Ok((Tier::FiveMinutes, NOW - 20 * DAY - 300, 289)),
            ),
            ("300 s on 70 d old data: no data", NOW - 70 * DAY, NOW - 69 * DAY, 300, Ok((Tier::Hour, 0, 0))),
            (
                "3600 s on 70 d old data, rounded to the hour",
                NOW - 70 * DAY - 1800,
                NOW - 69 * DAY,
                3600,
                Ok((Tier::Hour, NOW - 70 * DAY - 3600, 25)),
            ),
            ("EndTime exclusive", NOW - 120, NOW - 60, 60, Ok((Tier::Minute, NOW - 120, 1))),
            ("period 45", NOW - HOUR, NOW, 45, Err("The parameter Period must be a multiple of 60.")),
            ("period 90", NOW - HOUR, NOW, 90, Err("The parameter Period must be a multiple of 60.")),
            ("period 0", NOW - HOUR, NOW, 0, Err("The parameter Period must not equal 0.")),
            ("start = end", NOW, NOW, 60, Err("The parameter StartTime must not equal parameter EndTime.")),
            ("start > end", NOW, NOW - 60, 60, Err("The parameter EndTime must be greater than StartTime.")),
            ("period -60", NOW - HOUR, NOW, -60, Err("The parameter Period must be greater than 0.")),
            (
                "1441 points",
                NOW - 1441 * m,
                NOW,
                60,
                Err(
                    "You have requested up to 1,441 datapoints, which exceeds the limit of 1,440. You may reduce the datapoints requested by increasing Period, or decreasing the time range.",
                ),
            ),
        ];
        for (case, start, end, period, want) in cases {
            let got = plan_range(start, end, period, NOW, Api::GetMetricStatistics)
                .map(|p| (p.tier, p.timestamps.first().copied().unwrap_or(0), p.timestamps.len()))
                .map_err(|e| e.message);
            assert_eq!(got, want.map_err(str::to_string), "{case}");
        }
        let e = plan_range(NOW - 1441 * m, NOW, 60, NOW, Api::GetMetricStatistics).expect_err("1441");
        assert_eq!(e.code.name(), "InvalidParameterCombination");
        assert_eq!(
            plan_range(NOW - HOUR, NOW, 90, NOW, Api::GetMetricData).expect_err("90").code.name(),
            "InvalidParameterValue"
        );
        let p = plan_range(NOW - 1441 * m, NOW, 60, NOW, Api::GetMetricData).expect("GetMetricData has no 1440 limit");
        assert_eq!(p.timestamps.len(), 1441);
        // A year ahead at 1 s: the plan stops at MaxDatapoints and says where the rest starts.
        let p = plan_range(NOW - 60, NOW + 365 * DAY, 1, NOW, Api::GetMetricData).expect("ok");
        assert_eq!(p.timestamps.len(), MAX_DATAPOINTS);
        assert_eq!(p.next_start, Some(NOW - 60 + MAX_DATAPOINTS as i64));
        let p = plan_range(NOW - 300, NOW, 60, NOW, Api::GetMetricData).expect("ok");
        assert_eq!(p.next_start, None);
        // Absurd times from a client do not overflow.
        assert_eq!(
            plan_range(i64::MIN + 1, i64::MAX, 3600, NOW, Api::GetMetricData).expect_err("absurd").message,
            "The parameter StartTime is out of range."
        );
        let p = plan_range(-MAX_TIME, MAX_TIME, 1, NOW, Api::GetMetricData).expect("extreme but valid");
        assert_eq!(p.timestamps.len(), 0, "older than any tier at 1 s: no data");
        assert!(plan_range(-MAX_TIME, MAX_TIME, 3600, NOW, Api::GetMetricData).is_ok());
        assert!(p.timestamps.windows(2).all(|w| w[1] - w[0] == 60));
    }

    #[test]
    fn bound_is_the_sum_of_tier_bands() {
        // Standard: 15 d of minutes + 48 d of 5 minutes + 392 d of hours (+2 h ahead, +2 per tier edge).
        assert_eq!(max_stored_aggregates(false), (15 * 1440 + 120 + 2) + (48 * 288 + 2) + (392 * 24 + 2));
        assert_eq!(
            max_stored_aggregates(true),
            (3 * 3600 + 7200 + 2) + (15 * 1440 + 120 + 2) + (48 * 288 + 2) + (392 * 24 + 2)
        );
    }

    /// A standard series written every minute for 460 days, rolled up every hour: its size never exceeds the bound
    /// and settles at the sum of the tier bands; the oldest data is gone. Prints bytes per series per day.
    #[test]
    fn a_series_stays_bounded_whatever_the_uptime() {
        let mut rng = Rng(11);
        let mut s = Series::new();
        let bound = max_stored_aggregates(false) as usize;
        let start = NOW;
        let mut t = start;
        while t < start + 460 * DAY {
            // A CPU-like metric: 6 samples a minute (one every 10 s) around 40%.
            let values: Vec<(f64, f64)> = (0..6).map(|_| (40.0 + 20.0 * rng.unit(), 1.0)).collect();
            let agg = Aggregate::of(&Datum::Values(values));
            assert_eq!(s.record(t, false, agg, t), Some(Tier::Minute));
            if (t - start) % HOUR == 0 {
                s.roll_up(t);
                assert!(s.len() <= bound, "at day {}: {} > {bound}", (t - start) / DAY, s.len());
            }
            t += 60;
        }
        s.roll_up(t);
        assert_eq!(s.tier_len(Tier::Second), 0);
        assert!((21_599..=21_601).contains(&s.tier_len(Tier::Minute)), "{}", s.tier_len(Tier::Minute));
        assert!((13_823..=13_825).contains(&s.tier_len(Tier::FiveMinutes)), "{}", s.tier_len(Tier::FiveMinutes));
        // 460 - 63 days of hours, minus the 5 that outlived 455 d.
        assert!((9_407..=9_409).contains(&s.tier_len(Tier::Hour)), "{}", s.tier_len(Tier::Hour));
        let oldest = s.entries().map(|(_, start, _)| start).min().expect("data");
        assert!(t - oldest <= 455 * DAY + HOUR, "nothing older than 455 days is kept");
        let total = s.encoded_bytes();
        println!(
            "standard series after 460 days: {} aggregates (bound {bound}), {total} bytes encoded = {:.0} bytes per retained day (455), {:.1} bytes per aggregate",
            s.len(),
            total as f64 / 455.0,
            total as f64 / s.len() as f64
        );
        // Measured 2,375,960 bytes (53.0 per aggregate); the budget leaves 5% for the generator.
        assert!(total < 2_500_000, "a CPU-like series stays under 2.5 MB: {total}");
    }

    /// Bytes per series per day for four kinds of series, from the encoded size of real aggregates: a minute,
    /// five minutes and an hour of data each, times the number of aggregates each tier keeps at steady state
    /// (21,600 minutes, 13,824 five-minute and 9,408 hour aggregates). "Written per day" is what a day adds to the
    /// minute tier (1,440 aggregates); "steady state" is the bounded total, and "per retained day" that total over
    /// 455 days. Measured (budgets ~5% above): constant 986,304 B; CPU 2,371,248 B; RequestCount 3,789,600 B;
    /// TargetResponseTime (1000 requests/min) 23,180,880 B.
    #[test]
    fn bytes_per_series_per_day() {
        type Gen = fn(&mut Rng) -> Vec<(f64, f64)>;
        let kinds: [(&str, Gen, usize); 4] = [
            ("constant (1 sample/min, e.g. HealthyHostCount)", |_| vec![(2.0, 1.0)], 1_050_000),
            (
                "CPUUtilization (6 samples/min, 40-60%)",
                |r| (0..6).map(|_| (40.0 + 20.0 * r.unit(), 1.0)).collect(),
                2_500_000,
            ),
            (
                "RequestCount (per-interval counts, 6/min)",
                |r| (0..6).map(|_| ((100.0 * r.unit()).floor(), 1.0)).collect(),
                4_000_000,
            ),
            (
                "TargetResponseTime (1000 requests/min, lognormal)",
                |r| (0..1000).map(|_| (0.05 * (0.8 * r.normal()).exp(), 1.0)).collect(),
                25_000_000,
            ),
        ];
        for (name, gen_values, budget) in kinds {
            let mut rng = Rng(9);
            let minutes: Vec<Aggregate> = (0..60).map(|_| Aggregate::of_values(&gen_values(&mut rng))).collect();
            let merged = |from: usize, n: usize| {
                let mut a = minutes[from].clone();
                for m in &minutes[from + 1..from + n] {
                    a.merge(m);
                }
                a
            };
            let size = |a: &Aggregate| a.encode().len() as f64;
            let s1 = minutes.iter().map(size).sum::<f64>() / 60.0;
            let s5 = (0..12).map(|k| size(&merged(k * 5, 5))).sum::<f64>() / 12.0;
            let s60 = size(&merged(0, 60));
            let steady = 21_600.0 * s1 + 13_824.0 * s5 + 9_408.0 * s60;
            println!(
                "{name}: aggregate {s1:.0} B (1 min), {s5:.0} B (5 min), {s60:.0} B (1 h); written per day {:.0} B; steady state {:.0} B = {:.0} B per retained day",
                1440.0 * s1,
                steady,
                steady / 455.0
            );
            assert!(steady < budget as f64, "{name}: {steady} ≥ {budget}");
        }
    }

    /// High-resolution data at 1 s: the 1-second tier holds 3 h, older seconds roll into minutes with their counts.
    #[test]
    fn high_resolution_rolls_into_minutes() {
        let mut s = Series::new();
        let start = NOW;
        let mut t = start;
        while t < start + 4 * HOUR {
            s.record(t, true, Aggregate::of(&Datum::Value((t % 100) as f64)), t);
            if t % 60 == 0 {
                s.roll_up(t);
                assert!(s.len() <= max_stored_aggregates(true) as usize);
            }
            t += 1;
        }
        s.roll_up(t);
        assert_eq!(s.tier_len(Tier::Second), 3 * 3600);
        assert_eq!(s.tier_len(Tier::Minute), 60);
        // Every sample is still counted exactly once.
        let total: f64 = s.entries().map(|(_, _, a)| a.sample_count).sum();
        assert_eq!(total, (4 * HOUR) as f64);
        // A 60 s read over the whole range merges seconds and minutes into 240 full minutes.
        let plan = plan_range(start, t, 60, t, Api::GetMetricData).expect("plan");
        assert_eq!(plan.tier, Tier::Minute);
        let got = s.read(&plan);
        assert_eq!(got.len(), 240);
        assert!(got.iter().all(|(_, a)| a.sample_count == 60.0));
        // A 10 s read of the last hour comes from the seconds.
        let plan = plan_range(t - HOUR, t, 10, t, Api::GetMetricData).expect("plan");
        let got = s.read(&plan);
        assert_eq!(got.len(), 360);
        assert!(got.iter().all(|(_, a)| a.sample_count == 10.0));
    }

    #[test]
    fn roll_up_plans() {
        let keys = vec![
            (Tier::Second, NOW - 3 * HOUR),
            (Tier::Second, NOW - 3 * HOUR - 1),
            (Tier::Minute, NOW - 15 * DAY - 60),
            (Tier::Minute, NOW - 70 * DAY),
            (Tier::FiveMinutes, NOW - 63 * DAY),
            (Tier::Hour, NOW - 456 * DAY),
        ];
        let want = vec![
            Move { from: (Tier::Second, NOW - 3 * HOUR - 1), to: Some((Tier::Minute, NOW - 3 * HOUR - 60)) },
            Move { from: (Tier::Minute, NOW - 15 * DAY - 60), to: Some((Tier::FiveMinutes, NOW - 15 * DAY - 300)) },
            Move { from: (Tier::Minute, NOW - 70 * DAY), to: Some((Tier::Hour, NOW - 70 * DAY)) },
            Move { from: (Tier::Hour, NOW - 456 * DAY), to: None },
        ];
        assert_eq!(roll_up_plan(keys, NOW), want, "exactly 3 h / 15 d / 63 d old stays");
    }

    #[test]
    fn a_standard_metric_read_at_10_s_shows_its_minutes() {
        let mut s = Series::new();
        for k in 0..3 {
            s.record(NOW - 180 + k * 60 + 5, false, Aggregate::of(&Datum::Value(k as f64)), NOW);
        }
        let plan = plan_range(NOW - 180, NOW, 10, NOW, Api::GetMetricData).expect("plan");
        assert_eq!(plan.timestamps.len(), 18);
        let got: Vec<(i64, f64)> = s.read(&plan).into_iter().map(|(t, a)| (t, a.sum)).collect();
        assert_eq!(got, vec![(NOW - 180, 0.0), (NOW - 120, 1.0), (NOW - 60, 2.0)]);
    }

    #[test]
    fn late_data_goes_to_the_tier_of_its_age() {
        let mut s = Series::new();
        let agg = Aggregate::of(&Datum::Value(1.0));
        assert_eq!(s.record(NOW - 5 * HOUR, true, agg.clone(), NOW), Some(Tier::Minute), "high-res older than 3 h");
        assert_eq!(s.record(NOW - 20 * DAY, false, agg.clone(), NOW), Some(Tier::FiveMinutes));
        assert_eq!(s.record(NOW - 100 * DAY, false, agg.clone(), NOW), Some(Tier::Hour));
        assert_eq!(s.record(NOW - 500 * DAY, false, agg, NOW), None);
        assert_eq!(s.roll_up(NOW), RollUp::default(), "nothing aged");
        let r = s.roll_up(NOW + 456 * DAY);
        assert_eq!(r, RollUp { moved: 0, dropped: 3 });
        assert!(s.is_empty());
    }
}
