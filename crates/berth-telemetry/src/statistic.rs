//! Statistics (reference §1.7): SampleCount, Sum, Minimum, Maximum, Average, and the extended ones parsed from
//! their string forms: `pNN` (up to 10 decimals), `tmNN`/`TM(a:b)`, `wmNN`/`WM(a:b)`, `tcNN`/`TC(a:b)`,
//! `tsNN`/`TS(a:b)`, `IQM` and `PR(a:b)`. Bounds are percentages (`10%`) or absolute values; with absolute bounds
//! the lower one is excluded and the upper included. Computed from an [`Aggregate`]: the basic statistics exactly,
//! the extended ones from its sketch (within its relative accuracy).

use std::fmt;

use crate::aggregate::Aggregate;
use crate::error::Invalid;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    Percent(f64),
    Value(f64),
}

/// Which trimmed statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trimmed {
    /// Trimmed mean.
    Mean,
    /// Winsorized mean: values outside the bounds are clamped to them.
    Winsorized,
    /// Trimmed count.
    Count,
    /// Trimmed sum.
    Sum,
    /// Percentile rank: percent of values inside the (absolute) range.
    Rank,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Statistic {
    SampleCount,
    Sum,
    Minimum,
    Maximum,
    Average,
    /// Percentile, 0..=100.
    Percentile(f64),
    /// A trimmed statistic with optional lower/upper bounds (`None` = open end), and the text it was parsed from.
    Trimmed {
        kind: Trimmed,
        lower: Option<Bound>,
        upper: Option<Bound>,
        text: String,
    },
}

impl fmt::Display for Statistic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Statistic::SampleCount => f.write_str("SampleCount"),
            Statistic::Sum => f.write_str("Sum"),
            Statistic::Minimum => f.write_str("Minimum"),
            Statistic::Maximum => f.write_str("Maximum"),
            Statistic::Average => f.write_str("Average"),
            Statistic::Percentile(p) => write!(f, "p{p}"),
            Statistic::Trimmed { text, .. } => f.write_str(text),
        }
    }
}

impl Statistic {
    /// Parses `Statistic` or `ExtendedStatistic` text. `parameter` names the field in the error.
    pub fn parse(s: &str, parameter: &str) -> Result<Statistic, Invalid> {
        let bad = || Invalid::value(format!("The value {s} for parameter {parameter} is not a valid statistic."));
        match s {
            "SampleCount" => return Ok(Statistic::SampleCount),
            "Sum" => return Ok(Statistic::Sum),
            "Minimum" => return Ok(Statistic::Minimum),
            "Maximum" => return Ok(Statistic::Maximum),
            "Average" => return Ok(Statistic::Average),
            "IQM" => {
                return Ok(Statistic::Trimmed {
                    kind: Trimmed::Mean,
                    lower: Some(Bound::Percent(25.0)),
                    upper: Some(Bound::Percent(75.0)),
                    text: s.into(),
                });
            }
            _ => {}
        }
        if let Some(num) = s.strip_prefix('p') {
            let p = parse_number(num, 10).ok_or_else(bad)?;
            if !(0.0..=100.0).contains(&p) {
                return Err(bad());
            }
            return Ok(Statistic::Percentile(p));
        }
        for (short, kind) in
            [("tm", Trimmed::Mean), ("wm", Trimmed::Winsorized), ("tc", Trimmed::Count), ("ts", Trimmed::Sum)]
        {
            if let Some(num) = s.strip_prefix(short) {
                let p = parse_number(num, 10).ok_or_else(bad)?;
                if !(0.0..=100.0).contains(&p) || p == 0.0 {
                    return Err(bad());
                }
                return Ok(Statistic::Trimmed { kind, lower: None, upper: Some(Bound::Percent(p)), text: s.into() });
            }
        }
        for (long, kind) in [
            ("TM(", Trimmed::Mean),
            ("WM(", Trimmed::Winsorized),
            ("TC(", Trimmed::Count),
            ("TS(", Trimmed::Sum),
            ("PR(", Trimmed::Rank),
        ] {
            let Some(inner) = s.strip_prefix(long).and_then(|r| r.strip_suffix(')')) else { continue };
            let (lo, hi) = inner.split_once(':').ok_or_else(bad)?;
            let lower = parse_bound(lo).ok_or_else(bad)?;
            let upper = parse_bound(hi).ok_or_else(bad)?;
            if lower.is_none() && upper.is_none() {
                return Err(bad());
            }
            let percent = |b: &Option<Bound>| matches!(b, Some(Bound::Percent(_)));
            let value = |b: &Option<Bound>| matches!(b, Some(Bound::Value(_)));
            // Both bounds of one kind; PR takes absolute bounds only.
            if (percent(&lower) && value(&upper)) || (value(&lower) && percent(&upper)) {
                return Err(bad());
            }
            if kind == Trimmed::Rank && (percent(&lower) || percent(&upper)) {
                return Err(bad());
            }
            if let (Some(l), Some(u)) = (lower, upper) {
                let (Bound::Percent(l) | Bound::Value(l)) = l;
                let (Bound::Percent(u) | Bound::Value(u)) = u;
                if l >= u {
                    return Err(bad());
                }
            }
            return Ok(Statistic::Trimmed { kind, lower, upper, text: s.into() });
        }
        Err(bad())
    }

    /// Whether PutMetricAlarm's `ExtendedStatistic` accepts it (reference §1.7, last row): `pNN`, `tm90`-style
    /// short forms, `IQM`, `PR(n:m)`, and `TC/TM/TS/WM(X%:X%)` with both X between 10 and 90.
    pub fn allowed_in_alarm(&self) -> bool {
        match self {
            Statistic::Percentile(_) => true,
            Statistic::Trimmed { kind: Trimmed::Rank, .. } => true,
            Statistic::Trimmed { text, lower, upper, .. } => {
                if text == "IQM" || !text.contains('(') {
                    return true;
                }
                let ok = |b: &Option<Bound>| matches!(b, Some(Bound::Percent(x)) if (10.0..=90.0).contains(x));
                ok(lower) && ok(upper)
            }
            _ => false,
        }
    }

    /// Whether it is an extended statistic (sent as `ExtendedStatistic`, answered in `ExtendedStatistics`).
    pub fn is_extended(&self) -> bool {
        matches!(self, Statistic::Percentile(_) | Statistic::Trimmed { .. })
    }

    /// The percentile as a fraction, for EvaluateLowSampleCountPercentile.
    pub fn percentile_fraction(&self) -> Option<f64> {
        match self {
            Statistic::Percentile(p) => Some(p / 100.0),
            _ => None,
        }
    }

    /// The statistic of one aggregate; `None` when it has no value (no samples; percentiles without a sketch or
    /// with a negative value; a trimmed statistic with nothing inside its bounds).
    pub fn compute(&self, a: &Aggregate) -> Option<f64> {
        if a.sample_count <= 0.0 {
            return None;
        }
        match self {
            Statistic::SampleCount => Some(a.sample_count),
            Statistic::Sum => Some(a.sum),
            Statistic::Minimum => Some(a.min),
            Statistic::Maximum => Some(a.max),
            Statistic::Average => Some(a.average()),
            Statistic::Percentile(p) => {
                let sketch = a.sketch.as_ref()?;
                sketch.quantile(p / 100.0, a.min, a.max)
            }
            Statistic::Trimmed { kind, lower, upper, .. } => trimmed(a, *kind, *lower, *upper),
        }
    }
}

/// GetMetricStatistics' `Statistics` (1–5 of the five basic ones) and `ExtendedStatistics` (1–10), at least one
/// list and never both (reference §1.6). Returns (text as requested, statistic) pairs in request order, so the
/// answer can key `ExtendedStatistics` by the exact requested string (`p99.0`).
pub fn parse_statistics_request(
    statistics: &[String],
    extended: &[String],
) -> Result<Vec<(String, Statistic)>, Invalid> {
    const BASIC: &str = "[Average, Sum, SampleCount, Maximum, Minimum]";
    match (statistics.is_empty(), extended.is_empty()) {
        (true, true) => {
            return Err(Invalid::missing("Statistics or the parameter ExtendedStatistics"));
        }
        (false, false) => {
            return Err(Invalid::combination(
                "The parameters Statistics and ExtendedStatistics are mutually exclusive and you have specified both.",
            ));
        }
        _ => {}
    }
    if statistics.len() > 5 {
        return Err(Invalid::value("The collection Statistics must not have a size greater than 5."));
    }
    if extended.len() > 10 {
        return Err(Invalid::value("The collection ExtendedStatistics must not have a size greater than 10."));
    }
    let mut out = Vec::new();
    for (i, s) in statistics.iter().enumerate() {
        let st = Statistic::parse(s, "Statistics").ok().filter(|st| !st.is_extended()).ok_or_else(|| {
            Invalid::value(format!("The parameter Statistics.member.{} must be a value in the set {BASIC}.", i + 1))
        })?;
        out.push((s.clone(), st));
    }
    for (i, s) in extended.iter().enumerate() {
        let st = Statistic::parse(s, &format!("ExtendedStatistics.member.{}", i + 1))?;
        if !st.is_extended() {
            return Err(Invalid::value(format!(
                "The value {s} for parameter ExtendedStatistics.member.{} is not a valid statistic.",
                i + 1
            )));
        }
        out.push((s.clone(), st));
    }
    Ok(out)
}

fn parse_number(s: &str, max_decimals: usize) -> Option<f64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    if int.is_empty()
        || !digits(int)
        || !digits(frac)
        || frac.len() > max_decimals
        || (s.contains('.') && frac.is_empty())
    {
        return None;
    }
    s.parse().ok()
}

fn parse_bound(s: &str) -> Option<Option<Bound>> {
    if s.is_empty() {
        return Some(None);
    }
    if let Some(p) = s.strip_suffix('%') {
        let v = parse_number(p, 10)?;
        return (0.0..=100.0).contains(&v).then_some(Some(Bound::Percent(v)));
    }
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(Some(Bound::Value(v)))
}

/// Trimmed statistics over the sketch's (value, count) points. Percent bounds select by rank (the values ranked
/// in `(lower·n, upper·n]`, buckets split fractionally); absolute bounds select values in `(lower, upper]`.
fn trimmed(a: &Aggregate, kind: Trimmed, lower: Option<Bound>, upper: Option<Bound>) -> Option<f64> {
    let sketch = a.sketch.as_ref()?;
    if sketch.has_negative() {
        return None;
    }
    let points = sketch.points(a.min, a.max);
    let n: f64 = points.iter().map(|(_, c)| c).sum();
    // (value, weight inside the range) and, for WM, the clamp values.
    let mut inside: Vec<(f64, f64)> = Vec::new();
    let (lo_v, hi_v);
    let percent = matches!(lower, Some(Bound::Percent(_))) || matches!(upper, Some(Bound::Percent(_)));
    if percent {
        let lo_r = match lower {
            Some(Bound::Percent(p)) => p / 100.0 * n,
            _ => 0.0,
        };
        let hi_r = match upper {
            Some(Bound::Percent(p)) => p / 100.0 * n,
            _ => n,
        };
        let mut seen = 0.0;
        for (v, c) in &points {
            let (from, to) = (seen, seen + c);
            let w = (to.min(hi_r) - from.max(lo_r)).max(0.0);
            if w > 0.0 {
                inside.push((*v, w));
            }
            seen = to;
        }
        lo_v = sketch.quantile(lo_r / n, a.min, a.max).unwrap_or(a.min);
        hi_v = sketch.quantile(hi_r / n, a.min, a.max).unwrap_or(a.max);
    } else {
        let lo = match lower {
            Some(Bound::Value(v)) => v,
            _ => f64::NEG_INFINITY,
        };
        let hi = match upper {
            Some(Bound::Value(v)) => v,
            _ => f64::INFINITY,
        };
        inside = points.iter().copied().filter(|(v, _)| *v > lo && *v <= hi).collect();
        lo_v = lo.max(a.min);
        hi_v = hi.min(a.max);
    }
    let count: f64 = inside.iter().map(|(_, w)| w).sum();
    let sum: f64 = inside.iter().map(|(v, w)| v * w).sum();
    match kind {
        Trimmed::Count => Some(count),
        Trimmed::Rank => Some(100.0 * count / n),
        Trimmed::Sum => (count > 0.0).then_some(sum),
        Trimmed::Mean => (count > 0.0).then(|| sum / count),
        Trimmed::Winsorized => {
            let total: f64 = points.iter().map(|(v, c)| v.clamp(lo_v, hi_v.max(lo_v)) * c).sum();
            Some(total / n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric::Datum;
    use crate::sketch::tests::{Rng, exact};

    #[test]
    fn parse_table() {
        let tm = |l: Option<Bound>, u: Option<Bound>, t: &str| Statistic::Trimmed {
            kind: Trimmed::Mean,
            lower: l,
            upper: u,
            text: t.into(),
        };
        let ok: Vec<(&str, Statistic)> = vec![
            ("Average", Statistic::Average),
            ("SampleCount", Statistic::SampleCount),
            ("p99", Statistic::Percentile(99.0)),
            ("p95.45", Statistic::Percentile(95.45)),
            ("p0", Statistic::Percentile(0.0)),
            ("p100", Statistic::Percentile(100.0)),
            ("p99.1234567891", Statistic::Percentile(99.1234567891)),
            ("tm99", tm(None, Some(Bound::Percent(99.0)), "tm99")),
            ("IQM", tm(Some(Bound::Percent(25.0)), Some(Bound::Percent(75.0)), "IQM")),
            ("TM(10%:90%)", tm(Some(Bound::Percent(10.0)), Some(Bound::Percent(90.0)), "TM(10%:90%)")),
            ("TM(:95%)", tm(None, Some(Bound::Percent(95.0)), "TM(:95%)")),
            ("TM(150:1000)", tm(Some(Bound::Value(150.0)), Some(Bound::Value(1000.0)), "TM(150:1000)")),
        ];
        for (s, want) in ok {
            assert_eq!(Statistic::parse(s, "ExtendedStatistic"), Ok(want), "{s}");
        }
        for s in [
            "average",
            "p",
            "p101",
            "p99.",
            "p99.12345678901",
            "p-1",
            "P99",
            "tm0",
            "TM(90%:10%)",
            "TM(:)",
            "TM(10%:900)",
            "PR(10%:20%)",
            "TM(10%:90%",
            "Median",
            "wm",
            "TM(a:b)",
        ] {
            let e = Statistic::parse(s, "ExtendedStatistic").expect_err(s);
            assert_eq!(e.message, format!("The value {s} for parameter ExtendedStatistic is not a valid statistic."));
            assert_eq!(e.code.name(), "InvalidParameterValue");
        }
    }

    #[test]
    fn statistics_requests() {
        let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let ok = parse_statistics_request(&[], &v(&["p99.0", "IQM"])).expect("valid");
        assert_eq!(ok[0], ("p99.0".to_string(), Statistic::Percentile(99.0)), "keyed by the requested text");
        assert_eq!(parse_statistics_request(&v(&["Sum", "Average"]), &[]).map(|s| s.len()), Ok(2));
        for (basic, ext, want) in [
            (
                v(&[]),
                v(&[]),
                "MissingParameter: The parameter Statistics or the parameter ExtendedStatistics is required.",
            ),
            (
                v(&["Sum"]),
                v(&["p99"]),
                "InvalidParameterCombination: The parameters Statistics and ExtendedStatistics are mutually exclusive and you have specified both.",
            ),
            (
                v(&["Sum"; 6]),
                v(&[]),
                "InvalidParameterValue: The collection Statistics must not have a size greater than 5.",
            ),
            (
                v(&[]),
                v(&["p9"; 11]),
                "InvalidParameterValue: The collection ExtendedStatistics must not have a size greater than 10.",
            ),
            (
                v(&["Sum", "p99"]),
                v(&[]),
                "InvalidParameterValue: The parameter Statistics.member.2 must be a value in the set [Average, Sum, SampleCount, Maximum, Minimum].",
            ),
            (
                v(&[]),
                v(&["Sum"]),
                "InvalidParameterValue: The value Sum for parameter ExtendedStatistics.member.1 is not a valid statistic.",
            ),
            (
                v(&[]),
                v(&["p101"]),
                "InvalidParameterValue: The value p101 for parameter ExtendedStatistics.member.1 is not a valid statistic.",
            ),
        ] {
            assert_eq!(parse_statistics_request(&basic, &ext).expect_err(want).to_string(), want);
        }
    }

    #[test]
    fn alarm_allowed_table() {
        for (s, allowed) in [
            ("p90", true),
            ("tm90", true),
            ("tc90", true),
            ("ts90", true),
            ("wm90", true),
            ("IQM", true),
            ("PR(10:200)", true),
            ("TM(10%:90%)", true),
            ("TS(20%:80%)", true),
            ("TM(5%:90%)", false),
            ("TM(10%:95%)", false),
            ("TM(:90%)", false),
            ("TM(10:90)", false),
            ("Average", false),
        ] {
            let st = Statistic::parse(s, "ExtendedStatistic").expect(s);
            assert_eq!(st.allowed_in_alarm(), allowed, "{s}");
        }
    }

    #[test]
    fn exact_statistics_on_small_data() {
        // 1..=10: exact values are within one bucket of themselves (1% accuracy) and clamped to min/max.
        let a = Aggregate::of(&Datum::Values((1..=10).map(|v| (f64::from(v), 1.0)).collect()));
        let get = |s: &str| Statistic::parse(s, "s").expect(s).compute(&a).expect(s);
        let close = |got: f64, want: f64, s: &str| {
            assert!((got - want).abs() <= 0.011 * want.abs() + 1e-9, "{s}: {got} vs {want}")
        };
        assert_eq!(get("SampleCount"), 10.0);
        assert_eq!(get("Sum"), 55.0);
        assert_eq!(get("Minimum"), 1.0);
        assert_eq!(get("Maximum"), 10.0);
        assert_eq!(get("Average"), 5.5);
        close(get("p50"), 5.0, "p50");
        close(get("p90"), 9.0, "p90");
        close(get("p100"), 10.0, "p100");
        close(get("tm50"), 3.0, "tm50: mean of 1..5");
        close(get("TM(10%:90%)"), 5.5, "TM(10%:90%): mean of 2..9");
        close(get("IQM"), 5.5, "IQM: values ranked 3..7 with the halves of 3 and 8 → 5.5");
        close(get("TC(10%:90%)"), 8.0, "TC");
        close(get("TS(10%:90%)"), 44.0, "TS: 2+..+9");
        close(get("TM(3.5:7.5)"), 5.5, "TM(3.5:7.5): 4..7");
        close(get("TC(3.5:7.5)"), 4.0, "TC(3.5:7.5)");
        close(get("PR(:5.5)"), 50.0, "PR(:5.5)");
        close(get("WM(10%:90%)"), 5.4, "WM: p10 = 1, p90 = 9, so 10 counts as 9");
        let neg = Aggregate::of(&Datum::Values(vec![(-1.0, 1.0), (2.0, 1.0)]));
        assert_eq!(Statistic::Percentile(50.0).compute(&neg), None, "negative values: no percentile");
        assert_eq!(Statistic::Average.compute(&neg), Some(0.5));
    }

    #[test]
    fn trimmed_mean_matches_exact_on_random_data() {
        let mut rng = Rng(5);
        let data: Vec<f64> = (0..20_000).map(|_| (0.5 * rng.normal()).exp() * 100.0).collect();
        let a = Aggregate::of_values(&data.iter().map(|v| (*v, 1.0)).collect::<Vec<_>>());
        let mut sorted = data.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let want_iqm: f64 = sorted[n / 4..3 * n / 4].iter().sum::<f64>() / (n / 2) as f64;
        let got = Statistic::parse("IQM", "s").expect("IQM").compute(&a).expect("value");
        assert!((got - want_iqm).abs() / want_iqm < 0.01, "IQM {got} vs {want_iqm}");
        let want_p99 = exact(&sorted, 0.99);
        let got = Statistic::Percentile(99.0).compute(&a).expect("p99");
        assert!((got - want_p99).abs() / want_p99 <= 0.01, "p99 {got} vs {want_p99}");
    }
}
