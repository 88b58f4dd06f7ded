//! ARNs and ids of the resources the control plane creates, in AWS's formats.

use rand::Rng;

#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub region: String,
    pub account: String,
    /// Marks this server's containers.
    pub instance: String,
}

pub(crate) fn new_account_id() -> String {
    let mut rng = rand::rng();
    // AWS account ids are 12 digits; avoid a leading zero so nothing strips it.
    let first = rng.random_range(1..10u8);
    let rest: String = (0..11).map(|_| char::from(b'0' + rng.random_range(0..10u8))).collect();
    format!("{first}{rest}")
}

impl Names {
    fn ecs(&self, resource: &str) -> String {
        format!("arn:aws:ecs:{}:{}:{resource}", self.region, self.account)
    }
    pub fn cluster(&self, name: &str) -> String {
        self.ecs(&format!("cluster/{name}"))
    }
    pub fn service(&self, cluster: &str, name: &str) -> String {
        self.ecs(&format!("service/{cluster}/{name}"))
    }
    pub fn service_revision(&self, cluster: &str, service: &str, id: u64) -> String {
        self.ecs(&format!("service-revision/{cluster}/{service}/{id:019}"))
    }
    /// A service deployment's ARN from its id (random, ECS-style: `rollout::begin` makes one).
    pub fn deployment(&self, cluster: &str, service: &str, id: &str) -> String {
        self.ecs(&format!("service-deployment/{cluster}/{service}/{id}"))
    }
    pub fn task(&self, cluster: &str, id: &str) -> String {
        self.ecs(&format!("task/{cluster}/{id}"))
    }
    pub fn container(&self, cluster: &str, task_id: &str) -> String {
        self.ecs(&format!("container/{cluster}/{task_id}/main"))
    }
    pub fn task_definition(&self, family: &str, revision: i64) -> String {
        self.ecs(&format!("task-definition/{family}:{revision}"))
    }
}

/// Accepts a cluster given as a name or an ARN and returns its name.
pub(crate) fn cluster_name(given: Option<&str>) -> String {
    match given {
        None | Some("") => "default".to_string(),
        Some(s) => match s.strip_prefix("arn:") {
            Some(_) => s.rsplit('/').next().unwrap_or(s).to_string(),
            None => s.to_string(),
        },
    }
}

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A unique id with IAM's prefix (`AIDA` users, `AROA` roles, `ANPA` policies, `AKIA`/`ASIA` keys).
pub(crate) fn new_id(prefix: &str, len: usize) -> String {
    let mut rng = rand::rng();
    let tail: String = (0..len).map(|_| ID_ALPHABET[rng.random_range(0..ID_ALPHABET.len())] as char).collect();
    format!("{prefix}{tail}")
}

/// A secret access key (40 characters of base64's alphabet).
pub(crate) fn new_secret(len: usize) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..len).map(|_| A[rng.random_range(0..A.len())] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let n = Names { region: "us-east-1".into(), account: "123456789012".into(), instance: "i".into() };
        assert_eq!(n.cluster("default"), "arn:aws:ecs:us-east-1:123456789012:cluster/default");
        assert_eq!(n.service("default", "web"), "arn:aws:ecs:us-east-1:123456789012:service/default/web");
        assert_eq!(
            n.service_revision("default", "web", 7),
            "arn:aws:ecs:us-east-1:123456789012:service-revision/default/web/0000000000000000007"
        );
        assert_eq!(
            n.task_definition("default-web", 3),
            "arn:aws:ecs:us-east-1:123456789012:task-definition/default-web:3"
        );
        let id = new_account_id();
        assert_eq!(id.len(), 12);
        assert!(!id.starts_with('0'));
        assert_eq!(cluster_name(Some("arn:aws:ecs:us-east-1:123456789012:cluster/prod")), "prod");
        assert_eq!(cluster_name(None), "default");
    }
}
