//! Civil dates for epoch times (Howard Hinnant's algorithms), and the `2026-11-27T10:13:39Z` form AWS uses.
//! One copy for every crate that formats or parses a UTC date by hand.

/// Days since 1970-01-01 for a proleptic Gregorian date (`m` 1..=12, `d` 1..=31).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month, day)` of a day counted from 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2026-11-27T10:13:39Z` for whole epoch seconds (negative ones too).
pub fn iso8601(secs: i64) -> String {
    format!("{}Z", iso8601_seconds(secs))
}

/// `2026-11-27T10:13:39` (no zone) for whole epoch seconds, for callers that append a fraction.
pub fn iso8601_seconds(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_format() {
        for (secs, want) in [
            (0, "1970-01-01T00:00:00Z"),
            (1_795_781_619, "2026-11-27T12:13:39Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (-86_400, "1969-12-31T00:00:00Z"),
            (1_563_278_400, "2019-07-16T12:00:00Z"),
        ] {
            assert_eq!(iso8601(secs), want);
            let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
            assert_eq!(days_from_civil(y, m, d), secs.div_euclid(86_400));
        }
        for days in -800_000..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
