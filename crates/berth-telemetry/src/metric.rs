//! Metric identity (namespace, name, sorted dimensions, unit) and PutMetricData's datum forms with CloudWatch's
//! validation rules (reference §1.1–1.4: lengths, ≤30 dimensions, ±2^360, no NaN/Inf, ≤150 values, timestamps
//! two weeks back to two hours ahead).
//!
//! Messages are AWS's where a source shows them (a 2013 probe of the live service for values; moto's tests and
//! Eucalyptus's CloudWatch validator, both written against AWS, for the rest), else in the same style.

use std::fmt;

use crate::error::Invalid;

/// Most dimensions a metric can have (reference §1.1).
pub const MAX_DIMENSIONS: usize = 30;
/// Most distinct values in one `Values` datum (reference §1.3).
pub const MAX_VALUES: usize = 150;
/// Largest magnitude CloudWatch accepts for a value: 2^360 (reference §1.3).
pub const MAX_MAGNITUDE: f64 = 2.348_542_582_773_833_2e108;
/// Smallest non-zero magnitude CloudWatch accepts: 2^-360 (Netflix servo's probe of the live service, 2013:
/// values with binary exponent ±361 are refused, `Double.MIN_VALUE` too; 0 is accepted).
pub const MIN_MAGNITUDE: f64 = 4.257_959_840_008_151e-109;
/// Oldest accepted timestamp: two weeks before now (reference §1.4).
pub const MAX_PAST_SECS: i64 = 14 * 86_400;
/// Newest accepted timestamp: two hours after now (reference §1.4).
pub const MAX_FUTURE_SECS: i64 = 2 * 3600;

/// CloudWatch's `StandardUnit`. A datum without a unit is stored as `None` (reference §1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Unit {
    Seconds,
    Microseconds,
    Milliseconds,
    Bytes,
    Kilobytes,
    Megabytes,
    Gigabytes,
    Terabytes,
    Bits,
    Kilobits,
    Megabits,
    Gigabits,
    Terabits,
    Percent,
    Count,
    BytesPerSecond,
    KilobytesPerSecond,
    MegabytesPerSecond,
    GigabytesPerSecond,
    TerabytesPerSecond,
    BitsPerSecond,
    KilobitsPerSecond,
    MegabitsPerSecond,
    GigabitsPerSecond,
    TerabitsPerSecond,
    CountPerSecond,
    #[default]
    None,
}

const UNITS: [(Unit, &str); 27] = [
    (Unit::Seconds, "Seconds"),
    (Unit::Microseconds, "Microseconds"),
    (Unit::Milliseconds, "Milliseconds"),
    (Unit::Bytes, "Bytes"),
    (Unit::Kilobytes, "Kilobytes"),
    (Unit::Megabytes, "Megabytes"),
    (Unit::Gigabytes, "Gigabytes"),
    (Unit::Terabytes, "Terabytes"),
    (Unit::Bits, "Bits"),
    (Unit::Kilobits, "Kilobits"),
    (Unit::Megabits, "Megabits"),
    (Unit::Gigabits, "Gigabits"),
    (Unit::Terabits, "Terabits"),
    (Unit::Percent, "Percent"),
    (Unit::Count, "Count"),
    (Unit::BytesPerSecond, "Bytes/Second"),
    (Unit::KilobytesPerSecond, "Kilobytes/Second"),
    (Unit::MegabytesPerSecond, "Megabytes/Second"),
    (Unit::GigabytesPerSecond, "Gigabytes/Second"),
    (Unit::TerabytesPerSecond, "Terabytes/Second"),
    (Unit::BitsPerSecond, "Bits/Second"),
    (Unit::KilobitsPerSecond, "Kilobits/Second"),
    (Unit::MegabitsPerSecond, "Megabits/Second"),
    (Unit::GigabitsPerSecond, "Gigabits/Second"),
    (Unit::TerabitsPerSecond, "Terabits/Second"),
    (Unit::CountPerSecond, "Count/Second"),
    (Unit::None, "None"),
];

impl Unit {
    /// The wire name (`Bytes/Second`).
    pub fn as_str(self) -> &'static str {
        UNITS.iter().find(|(u, _)| *u == self).map_or("None", |(_, s)| s)
    }

    /// Parses a wire name; `parameter` names the field for the error.
    pub fn parse(s: &str, parameter: &str) -> Result<Unit, Invalid> {
        UNITS.iter().find(|(_, name)| *name == s).map(|(u, _)| *u).ok_or_else(|| {
            let names: Vec<&str> = UNITS.iter().map(|(_, n)| *n).collect();
            Invalid::value(format!("The parameter {parameter} must be a value in the set [{}].", names.join(", ")))
        })
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One dimension (name, value).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dimension {
    pub name: String,
    pub value: String,
}

impl Dimension {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Dimension { name: name.into(), value: value.into() }
    }
}

/// A metric's identity: namespace + name + dimensions (sorted by name, unique names) + unit. Data with different
/// units are aggregated separately (reference §1.2), so the unit is part of what a series is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MetricId {
    pub namespace: String,
    pub name: String,
    /// Sorted by name; names are unique.
    pub dimensions: Vec<Dimension>,
    pub unit: Unit,
}

impl MetricId {
    /// Validates and normalizes (sorts) an identity. `prefix` is the parameter path of the metric
    /// (`MetricData.member.1`), used in messages; the namespace is checked by [`validate_namespace`].
    pub fn new(
        namespace: &str,
        name: &str,
        dimensions: Vec<Dimension>,
        unit: Unit,
        prefix: &str,
    ) -> Result<MetricId, Invalid> {
        validate_namespace(namespace, "Namespace")?;
        check_len(name, 1, 255, &format!("{prefix}.MetricName"))?;
        let dimensions = validate_dimensions(dimensions, &format!("{prefix}.Dimensions"))?;
        Ok(MetricId { namespace: namespace.to_string(), name: name.to_string(), dimensions, unit })
    }

    /// The identity without its unit (what ListMetrics shows and what a Get without `Unit` matches).
    pub fn same_metric(&self, other: &MetricId) -> bool {
        self.namespace == other.namespace && self.name == other.name && self.dimensions == other.dimensions
    }
}

/// Namespace: 1–255 characters, not starting with `:`, no control characters (reference §1.1).
pub fn validate_namespace(namespace: &str, parameter: &str) -> Result<(), Invalid> {
    check_len(namespace, 1, 255, parameter)?;
    if namespace.starts_with(':') || namespace.chars().any(char::is_control) {
        return Err(Invalid::value(format!(
            "The value {namespace} for parameter {parameter} is invalid: it must not start with ':' or contain control characters."
        )));
    }
    Ok(())
}

/// Dimensions: ≤30, names 1–255 ASCII (not blank, no leading `:`, no control characters), values 1–1024 ASCII
/// (not blank), names unique. Returns them sorted by name.
pub fn validate_dimensions(mut dims: Vec<Dimension>, parameter: &str) -> Result<Vec<Dimension>, Invalid> {
    if dims.len() > MAX_DIMENSIONS {
        return Err(Invalid::value(format!(
            "The collection {parameter} must not have a size greater than {MAX_DIMENSIONS}."
        )));
    }
    for (i, d) in dims.iter().enumerate() {
        let at = format!("{parameter}.member.{}", i + 1);
        check_len(&d.name, 1, 255, &format!("{at}.Name"))?;
        check_len(&d.value, 1, 1024, &format!("{at}.Value"))?;
        let bad_name = !d.name.is_ascii()
            || d.name.trim().is_empty()
            || d.name.starts_with(':')
            || d.name.chars().any(|c| c.is_ascii_control());
        if bad_name {
            return Err(Invalid::value(format!("The value {} for parameter {at}.Name is invalid.", d.name)));
        }
        if !d.value.is_ascii() || d.value.trim().is_empty() {
            return Err(Invalid::value(format!("The value {} for parameter {at}.Value is invalid.", d.value)));
        }
    }
    dims.sort();
    if dims.windows(2).any(|w| w[0].name == w[1].name) {
        return Err(Invalid::value("No Metric may specify the same dimension twice."));
    }
    Ok(dims)
}

fn check_len(s: &str, min: usize, max: usize, parameter: &str) -> Result<(), Invalid> {
    let n = s.chars().count();
    if n == 0 && min > 0 {
        return Err(Invalid::missing(parameter));
    }
    if n < min {
        return Err(Invalid::value(format!("The parameter {parameter} must be longer than {} characters.", min - 1)));
    }
    if n > max {
        return Err(Invalid::value(format!("The parameter {parameter} must be shorter than {} characters.", max + 1)));
    }
    Ok(())
}

/// A statistic set as PutMetricData sends it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatisticSet {
    pub sample_count: f64,
    pub sum: f64,
    pub minimum: f64,
    pub maximum: f64,
}

/// A `MetricDatum`'s value part as decoded from the wire (everything optional, as in the model).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DatumInput {
    pub value: Option<f64>,
    pub statistic_values: Option<StatisticSet>,
    pub values: Option<Vec<f64>>,
    pub counts: Option<Vec<f64>>,
    /// Epoch seconds; `None` means "the receive time".
    pub timestamp: Option<f64>,
    pub storage_resolution: Option<i64>,
}

/// A validated datum's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    Value(f64),
    Statistics(StatisticSet),
    /// (value, count) pairs, counts > 0.
    Values(Vec<(f64, f64)>),
}

/// A validated datum: its value, its time (whole epoch seconds: CloudWatch aggregates to at least 1 s) and whether
/// it is high resolution (`StorageResolution` 1).
#[derive(Debug, Clone, PartialEq)]
pub struct ValidDatum {
    pub datum: Datum,
    pub timestamp: i64,
    pub high_resolution: bool,
}

fn check_value(v: f64, parameter: &str) -> Result<(), Invalid> {
    if !v.is_finite() || v.abs() > MAX_MAGNITUDE || (v != 0.0 && v.abs() < MIN_MAGNITUDE) {
        return Err(Invalid::value(format!("The value {} for parameter {parameter} is invalid.", java_number(v))));
    }
    Ok(())
}

/// A double as CloudWatch's validation messages print it (Java's `NumberFormat`: grouping commas, at most three
/// decimals, 17 significant digits then zeros, `∞`): `The value 4,697,085,165,547,666,500,000,…,000 for
/// parameter …`, `The value 0 for parameter …` for 2^-361, `-∞`. NaN prints as `NaN` (AWS's Java prints U+FFFD;
/// `NaN` is what moto answers and clients can read).
pub fn java_number(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    let sign = if v.is_sign_negative() { "-" } else { "" };
    if v.is_infinite() {
        return format!("{sign}∞");
    }
    // Shortest round-trip digits and exponent: d.ddd × 10^e.
    let sci = format!("{:e}", v.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    // Integer and fraction digits.
    let point = exp + 1; // digits before the decimal point
    let (int, frac): (String, String) = if point <= 0 {
        ("0".into(), "0".repeat((-point) as usize) + &digits)
    } else if point as usize >= digits.len() {
        (digits.clone() + &"0".repeat(point as usize - digits.len()), String::new())
    } else {
        (digits[..point as usize].to_string(), digits[point as usize..].to_string())
    };
    // Three decimals, half-even, carried into the integer part.
    let mut int_digits: Vec<u8> = int.bytes().map(|b| b - b'0').collect();
    let mut frac_digits: Vec<u8> = frac.bytes().map(|b| b - b'0').take(3).collect();
    let rest: Vec<u8> = frac.bytes().map(|b| b - b'0').skip(3).collect();
    let last_even = frac_digits.last().or(int_digits.last()).is_some_and(|d| d % 2 == 0);
    let round_up = match rest.first() {
        Some(d) if *d > 5 => true,
        Some(5) => rest[1..].iter().any(|d| *d > 0) || !last_even,
        _ => false,
    };
    if round_up {
        let mut all: Vec<u8> = int_digits.iter().chain(frac_digits.iter()).copied().collect();
        let mut i = all.len();
        loop {
            if i == 0 {
                all.insert(0, 1);
                break;
            }
            i -= 1;
            if all[i] == 9 {
                all[i] = 0;
            } else {
                all[i] += 1;
                break;
            }
        }
        let split = all.len() - frac_digits.len();
        frac_digits = all[split..].to_vec();
        int_digits = all[..split].to_vec();
    }
    while frac_digits.last() == Some(&0) {
        frac_digits.pop();
    }
    let int: String = int_digits.iter().map(|d| char::from(b'0' + d)).collect();
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let frac: String = frac_digits.iter().map(|d| char::from(b'0' + d)).collect();
    if frac.is_empty() { format!("{sign}{grouped}") } else { format!("{sign}{grouped}.{frac}") }
}

/// Validates one datum's value, time and resolution. `prefix` is its parameter path (`MetricData.member.3`), `now`
/// the receive time in epoch seconds.
pub fn validate_datum(input: &DatumInput, prefix: &str, now: f64) -> Result<ValidDatum, Invalid> {
    let forms = [input.value.is_some(), input.statistic_values.is_some(), input.values.is_some()];
    let names = ["Value", "StatisticValues", "Values"];
    let given: Vec<&str> = forms.iter().zip(names).filter(|(g, _)| **g).map(|(_, n)| n).collect();
    if given.len() > 1 {
        return Err(Invalid::combination(format!(
            "The parameters {prefix}.{} and {prefix}.{} are mutually exclusive and you have specified both.",
            given[0], given[1]
        )));
    }
    if input.counts.is_some() && input.values.is_none() {
        return Err(Invalid::combination(format!(
            "The parameter {prefix}.Counts may only be specified with {prefix}.Values."
        )));
    }
    let datum = if let Some(v) = input.value {
        check_value(v, &format!("{prefix}.Value"))?;
        Datum::Value(v)
    } else if let Some(s) = input.statistic_values {
        let at = format!("{prefix}.StatisticValues");
        check_value(s.sample_count, &format!("{at}.SampleCount"))?;
        check_value(s.sum, &format!("{at}.Sum"))?;
        check_value(s.minimum, &format!("{at}.Minimum"))?;
        check_value(s.maximum, &format!("{at}.Maximum"))?;
        if s.maximum < s.minimum {
            return Err(Invalid::value(format!("The parameter {at}.Maximum must be greater than {at}.Minimum.")));
        }
        if s.sample_count < 0.0 {
            return Err(Invalid::value(format!("The parameter {at}.SampleCount must be greater than 0.")));
        }
        if s.sample_count == 0.0 {
            return Err(Invalid::value(format!("The parameter {at}.SampleCount must not equal 0.")));
        }
        Datum::Statistics(s)
    } else if let Some(values) = &input.values {
        if values.len() > MAX_VALUES {
            return Err(Invalid::value(format!(
                "The collection {prefix}.Values must not have a size greater than {MAX_VALUES}."
            )));
        }
        let counts: Vec<f64> = match &input.counts {
            Some(c) if c.len() != values.len() => {
                return Err(Invalid::value(format!(
                    "The parameters {prefix}.Values and {prefix}.Counts must be of the same size."
                )));
            }
            Some(c) => c.clone(),
            None => vec![1.0; values.len()],
        };
        let mut pairs = Vec::with_capacity(values.len());
        for (i, (v, c)) in values.iter().zip(&counts).enumerate() {
            check_value(*v, &format!("{prefix}.Values.member.{}", i + 1))?;
            check_value(*c, &format!("{prefix}.Counts.member.{}", i + 1))?;
            if *c < 0.0 {
                return Err(Invalid::value(format!(
                    "The value {} for parameter {prefix}.Counts.member.{} must not be negative.",
                    java_number(*c),
                    i + 1
                )));
            }
            if *c > 0.0 {
                pairs.push((*v, *c));
            }
        }
        if pairs.is_empty() {
            return Err(Invalid::value(format!("The parameter {prefix}.Values must contain a value with a count.")));
        }
        Datum::Values(pairs)
    } else {
        return Err(Invalid {
            code: berth_core::ErrorCode::MissingParameter,
            message: format!(
                "At least one of the parameters {prefix}.Value or {prefix}.StatisticValues must be specified."
            ),
        });
    };
    let high_resolution = match input.storage_resolution {
        None | Some(60) => false,
        Some(1) => true,
        Some(other) => {
            return Err(Invalid::value(format!(
                "The value {other} for parameter {prefix}.StorageResolution is invalid. Valid values are 1 and 60."
            )));
        }
    };
    let ts = input.timestamp.unwrap_or(now);
    if !ts.is_finite() {
        return Err(Invalid::value(format!("The parameter {prefix}.Timestamp is invalid.")));
    }
    let timestamp = ts.floor() as i64;
    let now_s = now.floor() as i64;
    if timestamp < now_s - MAX_PAST_SECS {
        return Err(Invalid::value(format!(
            "The parameter {prefix}.Timestamp must specify a time within the past two weeks."
        )));
    }
    if timestamp > now_s + MAX_FUTURE_SECS {
        return Err(Invalid::value(format!(
            "The parameter {prefix}.Timestamp must specify a time no more than two hours in the future."
        )));
    }
    Ok(ValidDatum { datum, timestamp, high_resolution })
}

/// Most metrics in one PutMetricData call (reference §1.6).
pub const MAX_METRIC_DATA: usize = 1000;

/// One `MetricDatum` as decoded from the wire.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricDatumInput {
    pub metric_name: String,
    pub dimensions: Vec<Dimension>,
    pub unit: Option<String>,
    pub datum: DatumInput,
}

/// Validates a whole PutMetricData request from a client: the namespace (not `AWS/`, which is reserved for the
/// metrics berth publishes itself), 1..=1000 data, and each datum's identity and value. All or nothing: the first
/// error refuses the request. Returns each datum's normalized identity with its validated value.
pub fn validate_put(
    namespace: &str,
    data: &[MetricDatumInput],
    now: f64,
) -> Result<Vec<(MetricId, ValidDatum)>, Invalid> {
    validate_namespace(namespace, "Namespace")?;
    if namespace.starts_with("AWS/") {
        return Err(Invalid::value(format!(
            "The value {namespace} for parameter Namespace is invalid: namespaces starting with AWS/ are reserved."
        )));
    }
    if data.is_empty() {
        return Err(Invalid::missing("MetricData"));
    }
    if data.len() > MAX_METRIC_DATA {
        return Err(Invalid::value(format!(
            "The collection MetricData must not have a size greater than {MAX_METRIC_DATA}."
        )));
    }
    data.iter()
        .enumerate()
        .map(|(i, d)| {
            let prefix = format!("MetricData.member.{}", i + 1);
            let unit = match &d.unit {
                Some(u) => Unit::parse(u, &format!("{prefix}.Unit"))?,
                None => Unit::None,
            };
            let id = MetricId::new(namespace, &d.metric_name, d.dimensions.clone(), unit, &prefix)?;
            Ok((id, validate_datum(&d.datum, &prefix, now)?))
        })
        .collect()
}

/// A double as Java prints it (`70.0`, `1.0E-5`, `NaN`, `Infinity`): CloudWatch's messages and StateReason texts
/// are written by Java.
pub fn java_double(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    let a = v.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = format!("{v}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        // Scientific: mantissa with at least one decimal, `E` exponent.
        let s = format!("{v:e}");
        let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mant = if mant.contains('.') { mant.to_string() } else { format!("{mant}.0") };
        format!("{mant}E{exp}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(v: f64) -> DatumInput {
        DatumInput { value: Some(v), ..Default::default() }
    }

    const NOW: f64 = 1_800_000_000.0;

    #[test]
    fn two_to_the_360_is_the_limit() {
        assert_eq!(MAX_MAGNITUDE, 2f64.powi(360));
        assert_eq!(MIN_MAGNITUDE, 2f64.powi(-360));
        // Netflix servo's probe of the live service (see MIN_MAGNITUDE): what was refused, and how it was printed.
        for (v, printed) in [
            (2f64.powi(-361) * 1.5, "0"),
            (-(2f64.powi(-361) * 1.5), "-0"),
            (f64::from_bits(1), "0"),
            (f64::INFINITY, "∞"),
            (
                f64::MAX,
                "179,769,313,486,231,570,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000",
            ),
        ] {
            let e = validate_datum(&val(v), "MetricData.member.1", NOW).expect_err(printed);
            assert_eq!(e.message, format!("The value {printed} for parameter MetricData.member.1.Value is invalid."));
        }
        for ok in [0.0, 1.0, -1.0, 2f64.powi(-360), -(2f64.powi(360))] {
            assert!(validate_datum(&val(ok), "MetricData.member.1", NOW).is_ok(), "{ok}");
        }
        for (v, s) in [
            (1.5, "1.5"),
            (1234.5678, "1,234.568"),
            (0.0005, "0"),
            (0.0015, "0.002"),
            (999.9999, "1,000"),
            (-2.0, "-2"),
        ] {
            assert_eq!(java_number(v), s);
        }
    }

    #[test]
    fn datum_validation_table() {
        let p = "MetricData.member.1";
        // (case, input, Ok(expected datum) | Err((code, message)))
        type Want = Result<Datum, (&'static str, &'static str)>;
        let cases: Vec<(&str, DatumInput, Want)> = vec![
            ("plain value", val(3.5), Ok(Datum::Value(3.5))),
            ("2^360 accepted", val(2f64.powi(360)), Ok(Datum::Value(2f64.powi(360)))),
            ("-2^360 accepted", val(-(2f64.powi(360))), Ok(Datum::Value(-(2f64.powi(360))))),
            (
                "above 2^360",
                val(2f64.powi(361)),
                Err((
                    "InvalidParameterValue",
                    "The value 4,697,085,165,547,666,500,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000,000 for parameter MetricData.member.1.Value is invalid.",
                )),
            ),
            (
                "NaN",
                val(f64::NAN),
                Err(("InvalidParameterValue", "The value NaN for parameter MetricData.member.1.Value is invalid.")),
            ),
            (
                "-Infinity",
                val(f64::NEG_INFINITY),
                Err(("InvalidParameterValue", "The value -∞ for parameter MetricData.member.1.Value is invalid.")),
            ),
            (
                "no value",
                DatumInput::default(),
                Err((
                    "MissingParameter",
                    "At least one of the parameters MetricData.member.1.Value or MetricData.member.1.StatisticValues must be specified.",
                )),
            ),
            (
                "value and statistic set",
                DatumInput {
                    value: Some(1.0),
                    statistic_values: Some(StatisticSet { sample_count: 1.0, sum: 1.0, minimum: 1.0, maximum: 1.0 }),
                    ..Default::default()
                },
                Err((
                    "InvalidParameterCombination",
                    "The parameters MetricData.member.1.Value and MetricData.member.1.StatisticValues are mutually exclusive and you have specified both.",
                )),
            ),
            (
                "statistic set",
                DatumInput {
                    statistic_values: Some(StatisticSet { sample_count: 4.0, sum: 10.0, minimum: 1.0, maximum: 4.0 }),
                    ..Default::default()
                },
                Ok(Datum::Statistics(StatisticSet { sample_count: 4.0, sum: 10.0, minimum: 1.0, maximum: 4.0 })),
            ),
            (
                "statistic set min > max",
                DatumInput {
                    statistic_values: Some(StatisticSet { sample_count: 4.0, sum: 10.0, minimum: 5.0, maximum: 4.0 }),
                    ..Default::default()
                },
                Err((
                    "InvalidParameterValue",
                    "The parameter MetricData.member.1.StatisticValues.Maximum must be greater than MetricData.member.1.StatisticValues.Minimum.",
                )),
            ),
            (
                "statistic set zero samples",
                DatumInput {
                    statistic_values: Some(StatisticSet { sample_count: 0.0, sum: 0.0, minimum: 0.0, maximum: 0.0 }),
                    ..Default::default()
                },
                Err((
                    "InvalidParameterValue",
                    "The parameter MetricData.member.1.StatisticValues.SampleCount must not equal 0.",
                )),
            ),
            (
                "values default counts",
                DatumInput { values: Some(vec![1.0, 2.0]), ..Default::default() },
                Ok(Datum::Values(vec![(1.0, 1.0), (2.0, 1.0)])),
            ),
            (
                "values with counts, zero count dropped",
                DatumInput { values: Some(vec![1.0, 2.0]), counts: Some(vec![3.0, 0.0]), ..Default::default() },
                Ok(Datum::Values(vec![(1.0, 3.0)])),
            ),
            (
                "values and counts differ in length",
                DatumInput { values: Some(vec![1.0, 2.0]), counts: Some(vec![3.0]), ..Default::default() },
                Err((
                    "InvalidParameterValue",
                    "The parameters MetricData.member.1.Values and MetricData.member.1.Counts must be of the same size.",
                )),
            ),
            (
                "151 values",
                DatumInput { values: Some(vec![1.0; 151]), ..Default::default() },
                Err((
                    "InvalidParameterValue",
                    "The collection MetricData.member.1.Values must not have a size greater than 150.",
                )),
            ),
            (
                "150 values",
                DatumInput { values: Some(vec![1.0; 150]), ..Default::default() },
                Ok(Datum::Values(vec![(1.0, 1.0); 150])),
            ),
            (
                "NaN among values",
                DatumInput { values: Some(vec![1.0, f64::NAN]), ..Default::default() },
                Err((
                    "InvalidParameterValue",
                    "The value NaN for parameter MetricData.member.1.Values.member.2 is invalid.",
                )),
            ),
            (
                "counts without values",
                DatumInput { value: Some(1.0), counts: Some(vec![1.0]), ..Default::default() },
                Err((
                    "InvalidParameterCombination",
                    "The parameter MetricData.member.1.Counts may only be specified with MetricData.member.1.Values.",
                )),
            ),
            (
                "storage resolution 5",
                DatumInput { value: Some(1.0), storage_resolution: Some(5), ..Default::default() },
                Err((
                    "InvalidParameterValue",
                    "The value 5 for parameter MetricData.member.1.StorageResolution is invalid. Valid values are 1 and 60.",
                )),
            ),
            (
                "15 days old",
                DatumInput { value: Some(1.0), timestamp: Some(NOW - 15.0 * 86_400.0), ..Default::default() },
                Err((
                    "InvalidParameterValue",
                    "The parameter MetricData.member.1.Timestamp must specify a time within the past two weeks.",
                )),
            ),
            (
                "3 hours ahead",
                DatumInput { value: Some(1.0), timestamp: Some(NOW + 3.0 * 3600.0), ..Default::default() },
                Err((
                    "InvalidParameterValue",
                    "The parameter MetricData.member.1.Timestamp must specify a time no more than two hours in the future.",
                )),
            ),
        ];
        for (case, input, want) in cases {
            let got = validate_datum(&input, p, NOW).map(|d| d.datum).map_err(|e| (e.code.name(), e.message));
            let want = want.map_err(|(c, m)| (c, m.to_string()));
            assert_eq!(got, want, "case {case}");
        }
    }

    #[test]
    fn timestamps_and_resolution() {
        let d = validate_datum(
            &DatumInput {
                value: Some(1.0),
                timestamp: Some(NOW - 12.7),
                storage_resolution: Some(1),
                ..Default::default()
            },
            "MetricData.member.1",
            NOW,
        )
        .expect("valid");
        assert_eq!(d.timestamp, 1_800_000_000 - 13, "floored to the second");
        assert!(d.high_resolution);
        let d = validate_datum(&val(1.0), "MetricData.member.1", NOW + 0.9).expect("valid");
        assert_eq!(d.timestamp, 1_800_000_000, "receive time when no timestamp");
        assert!(!d.high_resolution);
    }

    #[test]
    fn identity_is_sorted_and_checked() {
        let id = MetricId::new(
            "App",
            "Latency",
            vec![Dimension::new("Service", "web"), Dimension::new("Cluster", "default")],
            Unit::Milliseconds,
            "MetricData.member.1",
        )
        .expect("valid");
        assert_eq!(id.dimensions[0].name, "Cluster");
        let long = "m".repeat(256);
        let too_many: Vec<Dimension> = (0..31).map(|i| Dimension::new(format!("d{i:02}"), "v")).collect();
        let cases: Vec<(&str, &str, Vec<Dimension>, &str)> = vec![
            ("", "m", vec![], "MissingParameter: The parameter Namespace is required."),
            (
                ":x",
                "m",
                vec![],
                "InvalidParameterValue: The value :x for parameter Namespace is invalid: it must not start with ':' or contain control characters.",
            ),
            ("App", "", vec![], "MissingParameter: The parameter MetricData.member.1.MetricName is required."),
            (
                "App",
                &long,
                vec![],
                "InvalidParameterValue: The parameter MetricData.member.1.MetricName must be shorter than 256 characters.",
            ),
            (
                "App",
                "m",
                too_many,
                "InvalidParameterValue: The collection MetricData.member.1.Dimensions must not have a size greater than 30.",
            ),
            (
                "App",
                "m",
                vec![Dimension::new("A", " ")],
                "InvalidParameterValue: The value   for parameter MetricData.member.1.Dimensions.member.1.Value is invalid.",
            ),
            (
                "App",
                "m",
                vec![Dimension::new(":A", "v")],
                "InvalidParameterValue: The value :A for parameter MetricData.member.1.Dimensions.member.1.Name is invalid.",
            ),
            (
                "App",
                "m",
                vec![Dimension::new("A", "v"), Dimension::new("A", "w")],
                "InvalidParameterValue: No Metric may specify the same dimension twice.",
            ),
        ];
        for (ns, name, dims, want) in cases {
            let got = MetricId::new(ns, name, dims, Unit::None, "MetricData.member.1").expect_err("invalid");
            assert_eq!(got.to_string(), want);
        }
        let thirty: Vec<Dimension> = (0..30).map(|i| Dimension::new(format!("d{i:02}"), "v")).collect();
        assert!(MetricId::new("App", "m", thirty, Unit::None, "p").is_ok());
    }

    #[test]
    fn whole_requests() {
        let datum = |name: &str, unit: Option<&str>| MetricDatumInput {
            metric_name: name.into(),
            dimensions: vec![Dimension::new("B", "2"), Dimension::new("A", "1")],
            unit: unit.map(String::from),
            datum: val(1.0),
        };
        let ok = validate_put("App", &[datum("m", Some("Count")), datum("n", None)], NOW).expect("valid");
        assert_eq!(ok.len(), 2);
        assert_eq!((ok[0].0.unit, ok[1].0.unit), (Unit::Count, Unit::None));
        assert_eq!(ok[0].0.dimensions[0].name, "A", "sorted");
        let cases: Vec<(&str, Vec<MetricDatumInput>, &str)> = vec![
            (
                "AWS/ECS",
                vec![datum("m", None)],
                "InvalidParameterValue: The value AWS/ECS for parameter Namespace is invalid: namespaces starting with AWS/ are reserved.",
            ),
            ("App", vec![], "MissingParameter: The parameter MetricData is required."),
            (
                "App",
                vec![datum("m", None); 1001],
                "InvalidParameterValue: The collection MetricData must not have a size greater than 1000.",
            ),
            (
                "App",
                vec![datum("m", None), datum("n", Some("Parsecs"))],
                "InvalidParameterValue: The parameter MetricData.member.2.Unit must be a value in the set [Seconds, Microseconds, Milliseconds, Bytes, Kilobytes, Megabytes, Gigabytes, Terabytes, Bits, Kilobits, Megabits, Gigabits, Terabits, Percent, Count, Bytes/Second, Kilobytes/Second, Megabytes/Second, Gigabytes/Second, Terabytes/Second, Bits/Second, Kilobits/Second, Megabits/Second, Gigabits/Second, Terabits/Second, Count/Second, None].",
            ),
            (
                "App",
                vec![datum("m", None), datum("", None)],
                "MissingParameter: The parameter MetricData.member.2.MetricName is required.",
            ),
        ];
        for (ns, data, want) in cases {
            assert_eq!(validate_put(ns, &data, NOW).expect_err(want).to_string(), want);
        }
        assert_eq!(validate_put("App", &vec![datum("m", None); 1000], NOW).map(|v| v.len()), Ok(1000));
    }

    #[test]
    fn units_round_trip() {
        for (u, s) in UNITS {
            assert_eq!(Unit::parse(s, "Unit"), Ok(u));
            assert_eq!(u.as_str(), s);
        }
        assert_eq!(
            Unit::parse("Furlongs", "MetricData.member.1.Unit").expect_err("bad").message,
            "The parameter MetricData.member.1.Unit must be a value in the set [Seconds, Microseconds, Milliseconds, Bytes, Kilobytes, Megabytes, Gigabytes, Terabytes, Bits, Kilobits, Megabits, Gigabits, Terabits, Percent, Count, Bytes/Second, Kilobytes/Second, Megabytes/Second, Gigabytes/Second, Terabytes/Second, Bits/Second, Kilobits/Second, Megabits/Second, Gigabits/Second, Terabits/Second, Count/Second, None]."
        );
    }

    #[test]
    fn java_doubles() {
        for (v, s) in [
            (70.0, "70.0"),
            (0.5, "0.5"),
            (6.046241709654764, "6.046241709654764"),
            (1e7, "1.0E7"),
            (1.5e-5, "1.5E-5"),
            (-3.0, "-3.0"),
            (0.0, "0.0"),
        ] {
            assert_eq!(java_double(v), s);
        }
    }
}
