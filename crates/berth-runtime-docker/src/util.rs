//! Small pure helpers: Docker timestamps and image references.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses a Docker RFC 3339 timestamp (`2024-05-01T10:20:30.123456789Z`, or with a `+hh:mm` offset).
///
/// Returns `None` for Docker's "never" (`0001-01-01T00:00:00Z`), anything before 1970, and malformed input.
pub fn parse_docker_time(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) { part.parse().ok() } else { None }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos: u32 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let mut value: u64 = 0;
        for (i, c) in frac.bytes().take(digits).enumerate() {
            if i < 9 {
                value = value * 10 + u64::from(c - b'0');
            }
        }
        for _ in digits..9 {
            value *= 10;
        }
        nanos = u32::try_from(value).ok()?;
        rest = &frac[digits..];
    }
    let offset_secs: i64 = match rest {
        "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && o.as_bytes()[3] == b':' => {
            let h: i64 = o.get(1..3)?.parse().ok()?;
            let m: i64 = o.get(4..6)?.parse().ok()?;
            let v = h * 3600 + m * 60;
            if o.starts_with('-') { -v } else { v }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Adds `:latest` to an image reference without a tag or digest, as the docker CLI does (the Engine API
/// would otherwise pull every tag of the repository).
pub fn normalize_image(image: &str) -> String {
    if image.contains('@') {
        return image.to_string();
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') { image.to_string() } else { format!("{image}:latest") }
}

/// The registry host an image reference names, if it names one (`ghcr.io/x/y` → `ghcr.io`); `None` means
/// Docker Hub.
pub fn registry_host(image: &str) -> Option<&str> {
    let (first, rest) = image.split_once('/')?;
    if rest.is_empty() {
        return None;
    }
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t: SystemTime) -> (u64, u32) {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        (d.as_secs(), d.subsec_nanos())
    }

    #[test]
    fn parses_docker_timestamps() {
        let t = parse_docker_time("2024-05-01T10:20:30.123456789Z").map(secs);
        assert_eq!(t, Some((1_714_558_830, 123_456_789)));
        assert_eq!(parse_docker_time("1970-01-01T00:00:00Z").map(secs), Some((0, 0)));
        assert_eq!(parse_docker_time("2000-02-29T23:59:59.5Z").map(secs), Some((951_868_799, 500_000_000)));
        assert_eq!(parse_docker_time("2024-05-01T12:20:30+02:00").map(secs), Some((1_714_558_830, 0)));
        assert_eq!(parse_docker_time("2024-05-01T10:20:30.1234567891Z").map(secs), Some((1_714_558_830, 123_456_789)));
    }

    #[test]
    fn rejects_never_and_garbage() {
        assert_eq!(parse_docker_time("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_docker_time(""), None);
        assert_eq!(parse_docker_time("2024-13-01T10:20:30Z"), None);
        assert_eq!(parse_docker_time("2024-05-01T10:20:30"), None);
        assert_eq!(parse_docker_time("2024-05-01T10:20:30.Z"), None);
        assert_eq!(parse_docker_time("2024-05-01T1a:20:30Z"), None);
        assert_eq!(parse_docker_time("2024-05-01T10:20:30+0200"), None);
    }

    #[test]
    fn normalizes_image_refs() {
        assert_eq!(normalize_image("nginx"), "nginx:latest");
        assert_eq!(normalize_image("nginx:1.27"), "nginx:1.27");
        assert_eq!(normalize_image("localhost:5000/app"), "localhost:5000/app:latest");
        assert_eq!(normalize_image("localhost:5000/app:v1"), "localhost:5000/app:v1");
        assert_eq!(normalize_image("ghcr.io/o/app@sha256:abc"), "ghcr.io/o/app@sha256:abc");
    }

    #[test]
    fn finds_registry_hosts() {
        assert_eq!(registry_host("nginx"), None);
        assert_eq!(registry_host("library/nginx"), None);
        assert_eq!(registry_host("ghcr.io/o/app:v1"), Some("ghcr.io"));
        assert_eq!(registry_host("localhost:5000/app"), Some("localhost:5000"));
        assert_eq!(registry_host("localhost/app"), Some("localhost"));
        assert_eq!(
            registry_host("123.dkr.ecr.us-east-1.amazonaws.com/app"),
            Some("123.dkr.ecr.us-east-1.amazonaws.com")
        );
    }
}
