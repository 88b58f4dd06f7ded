//! Identifiers and names: random hex ids, ECS-style task ids, service-name rules and endpoint hosts.

/// `n` random lowercase hex characters.
pub fn random_hex(n: usize) -> String {
    let bytes: Vec<u8> = (0..n.div_ceil(2)).map(|_| rand::random()).collect();
    let mut hex = hex::encode(bytes);
    hex.truncate(n);
    hex
}

/// A random version 4 UUID, lowercase with hyphens: AWS request ids, Secrets Manager version ids, the ECS
/// agent's credential ids.
pub fn uuid4() -> String {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid().to_string()
}

/// Compares secrets (tokens, signatures) in time that depends only on their lengths, so a secret cannot be
/// guessed byte by byte from response timings.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A task id as ECS prints them: 32 lowercase hex characters.
pub fn task_id() -> String {
    random_hex(32)
}

/// Whether `name` is a valid ECS service or cluster name: 1–255 letters, digits, `_` and `-`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A service name generated from an image reference as ECS does (`nginx:latest` → `nginx-1a2b`).
pub fn service_name_from_image(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    let repo = last.split(':').next().unwrap_or(last);
    let mut base: String =
        repo.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    base.truncate(200);
    if base.is_empty() {
        base.push_str("service");
    }
    format!("{base}-{}", random_hex(4))
}

/// The DNS label a service name becomes in an endpoint host: lowercase, `_` → `-`, at most 48 characters,
/// no leading or trailing `-`.
pub fn dns_label(name: &str) -> String {
    let mut label: String =
        name.to_ascii_lowercase().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    label.truncate(48);
    let trimmed = label.trim_matches('-');
    if trimmed.is_empty() { "svc".to_string() } else { trimmed.to_string() }
}

/// The endpoint host of a service: `<name>-<6 hex>.ecs.<region>.<base-domain>`.
pub fn endpoint_host(service_name: &str, suffix: &str, region: &str, base_domain: &str) -> String {
    format!("{}-{suffix}.ecs.{region}.{base_domain}", dns_label(service_name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_contents_and_lengths() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn names() {
        assert!(is_valid_name("web_api-2"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("web api"));
        assert!(!is_valid_name(&"a".repeat(256)));
    }

    #[test]
    fn generated_names_follow_the_image() {
        let n = service_name_from_image("registry.local:5000/team/berth-demo:latest");
        assert!(n.starts_with("berth-demo-"), "{n}");
        assert_eq!(n.len(), "berth-demo-".len() + 4);
        assert!(is_valid_name(&n));
        assert!(service_name_from_image("nginx@sha256:abcd").starts_with("nginx-"));
    }

    #[test]
    fn endpoint_hosts_are_readable_dns_names() {
        assert_eq!(
            endpoint_host("My_Web", "a1b2c3", "us-east-1", "localhost"),
            "my-web-a1b2c3.ecs.us-east-1.localhost"
        );
        assert_eq!(dns_label("--x--"), "x");
        assert_eq!(dns_label("___"), "svc");
        assert_eq!(dns_label(&"a".repeat(100)).len(), 48);
    }

    #[test]
    fn task_ids_are_32_hex() {
        let id = task_id();
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
