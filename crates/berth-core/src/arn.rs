//! Amazon Resource Names: `arn:partition:service:region:account-id:resource`.

use std::fmt;
use std::str::FromStr;

/// A parsed ARN. `resource` keeps everything after the fifth colon (it may itself contain `:` and `/`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: String,
    pub resource: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArnError {
    #[error("ARN must start with 'arn:'")]
    Prefix,
    #[error("ARN must have six ':'-separated parts (arn:partition:service:region:account-id:resource)")]
    Parts,
    #[error("ARN partition, service and resource must not be empty")]
    Empty,
    #[error("ARN account id must be 12 digits or empty")]
    Account,
}

impl FromStr for Arn {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let rest = s.strip_prefix("arn:").ok_or(ArnError::Prefix)?;
        let mut it = rest.splitn(5, ':');
        let (Some(partition), Some(service), Some(region), Some(account), Some(resource)) =
            (it.next(), it.next(), it.next(), it.next(), it.next())
        else {
            return Err(ArnError::Parts);
        };
        if partition.is_empty() || service.is_empty() || resource.is_empty() {
            return Err(ArnError::Empty);
        }
        if !(account.is_empty() || account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())) {
            return Err(ArnError::Account);
        }
        Ok(Arn {
            partition: partition.into(),
            service: service.into(),
            region: region.into(),
            account: account.into(),
            resource: resource.into(),
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "arn:{}:{}:{}:{}:{}", self.partition, self.service, self.region, self.account, self.resource)
    }
}

impl Arn {
    /// An IAM role ARN's role name (`role/path/name` → `name`), if this is one.
    pub fn iam_role_name(&self) -> Option<&str> {
        if self.service != "iam" {
            return None;
        }
        let path = self.resource.strip_prefix("role/")?;
        path.rsplit('/').next().filter(|n| !n.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        let cases = [
            "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
            "arn:aws:ecs:us-east-1:123456789012:service/default/web",
            "arn:aws:ecs:us-east-1:123456789012:task-definition/default-web:3",
        ];
        for c in cases {
            let a: Arn = c.parse().expect(c);
            assert_eq!(a.to_string(), c);
        }
    }

    #[test]
    fn rejects_bad_arns() {
        let cases = [
            ("role/x", ArnError::Prefix),
            ("arn:aws:iam", ArnError::Parts),
            ("arn:aws:iam::12:role/x", ArnError::Account),
            ("arn::iam::123456789012:role/x", ArnError::Empty),
        ];
        for (c, want) in cases {
            assert_eq!(c.parse::<Arn>(), Err(want), "{c}");
        }
    }

    #[test]
    fn role_name_ignores_path() {
        let a: Arn = "arn:aws:iam::123456789012:role/service-role/infra".parse().expect("arn");
        assert_eq!(a.iam_role_name(), Some("infra"));
        let b: Arn = "arn:aws:iam::123456789012:user/bob".parse().expect("arn");
        assert_eq!(b.iam_role_name(), None);
    }
}
