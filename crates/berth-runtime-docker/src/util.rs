//! Small pure helpers: Docker timestamps and image references.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parses a Docker RFC 3339 timestamp (`2024-05-01T10:20:30.123456789Z`, or with a `+hh:mm` offset).
///
/// Returns `None` for Docker's "never" (`0001-01-01T00:00:00Z`), anything before 1970, and malformed input.
pub fn parse_docker_time(s: &str) -> Option<SystemTime> {
    let t = time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok()?;
    let nanos = u64::try_from(t.unix_timestamp_nanos()).ok()?;
    Some(UNIX_EPOCH + Duration::from_nanos(nanos))
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
