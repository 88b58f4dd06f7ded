//! Dates for the `Date*` operators: ISO 8601 (the W3C profile AWS documents) and epoch seconds, to epoch
//! milliseconds; and the `aws:CurrentTime` rendering. No clock here: the time comes from the request context.

/// Parse a date condition value: epoch seconds (`1700000000`, `1700000000.5`) or ISO 8601 (`2026-11-27`,
/// `2026-11-27T10:00Z`, `2026-11-27T10:00:00.123+02:00`; no zone means UTC). Returns epoch milliseconds.
pub(crate) fn parse(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-') && !s[1..].contains('-') {
        let secs: f64 = s.parse().ok()?;
        if !secs.is_finite() || secs.abs() > 1e14 {
            return None;
        }
        return Some((secs * 1000.0).round() as i64);
    }
    parse_iso(s)
}

fn digits(s: &str, n: usize) -> Option<(i64, &str)> {
    let head = s.get(..n)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, &s[n..]))
}

fn parse_iso(s: &str) -> Option<i64> {
    let (year, rest) = digits(s, 4)?;
    let (month, rest) = match rest.strip_prefix('-') {
        Some(r) => digits(r, 2)?,
        None if rest.is_empty() => (1, rest),
        None => return None,
    };
    let (day, rest) = match rest.strip_prefix('-') {
        Some(r) => digits(r, 2)?,
        None if rest.is_empty() => (1, rest),
        None => return None,
    };
    let mut millis = berth_core::time::epoch_days(year, month, day)? * 86_400_000;
    let Some(time) = rest.strip_prefix('T').or_else(|| rest.strip_prefix('t')) else {
        return rest.is_empty().then_some(millis);
    };
    let (hour, rest) = digits(time, 2)?;
    let (minute, mut rest) = digits(rest.strip_prefix(':')?, 2)?;
    let mut second = 0;
    let mut frac_ms = 0;
    if let Some(r) = rest.strip_prefix(':') {
        let (s, r) = digits(r, 2)?;
        second = s;
        rest = r;
        if let Some(r) = rest.strip_prefix('.') {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 {
                return None;
            }
            let frac = &r[..n];
            let padded: String = frac.chars().chain("000".chars()).take(3).collect();
            frac_ms = padded.parse::<i64>().ok()?;
            rest = &r[n..];
        }
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    millis += ((hour * 60 + minute) * 60 + second) * 1000 + frac_ms;
    let offset_min = match rest {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let (oh, r) = digits(&rest[1..], 2)?;
            let r = r.strip_prefix(':').unwrap_or(r);
            let (om, r) = digits(r, 2)?;
            if !r.is_empty() || oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 60 + om)
        }
    };
    Some(millis - offset_min * 60_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iso_and_epoch() {
        let cases = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2019-07-16T12:00:00Z", Some(1_563_278_400_000)),
            ("2019-07-16T14:00:00+02:00", Some(1_563_278_400_000)),
            ("2019-07-16T12:00Z", Some(1_563_278_400_000)),
            ("2019-07-16T12:00:00.250Z", Some(1_563_278_400_250)),
            ("2019-07-16", Some(1_563_235_200_000)),
            ("1563278400", Some(1_563_278_400_000)),
            ("2019-02-29", None),
            ("2020-02-29", Some(1_582_934_400_000)),
            ("2019-13-01", None),
            ("yesterday", None),
            ("", None),
            ("2019-07-16T25:00:00Z", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse(s), want, "{s}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for secs in [0, 1_563_278_400, 1_795_000_000, -86_400] {
            let s = berth_core::time::iso8601(secs);
            assert_eq!(parse(&s), Some(secs * 1000), "{s}");
        }
        assert_eq!(berth_core::time::iso8601(1_563_278_400), "2019-07-16T12:00:00Z");
    }
}
