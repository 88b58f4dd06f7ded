//! Where a container's output goes, as the `awslogs` options of an Express container name it: the log group
//! and the stream prefix (each task writes `<prefix>/Main/<task id>`), validated as ECS and CloudWatch Logs do.

use std::collections::BTreeMap;

use berth_core::ids;
use berth_model::ecs::{
    ExpressGatewayContainer, ExpressGatewayServiceAwsLogsConfiguration, LogConfiguration, LogDriver,
};

use crate::ControlError;

/// The stream prefix Express uses when none is given.
pub(crate) const DEFAULT_PREFIX: &str = "ecs";

/// The container name in every stream (`<prefix>/<container>/<task id>`).
const CONTAINER: &str = "Main";

/// Where a container's output goes: the group and the stream prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogTarget {
    pub group: String,
    pub prefix: String,
}

impl LogTarget {
    /// The target a revision's container names (`None`: it logs nowhere, as revisions from before berth shipped
    /// logs).
    pub(crate) fn of(container: &ExpressGatewayContainer) -> Option<LogTarget> {
        let cfg = container.aws_logs_configuration.as_ref()?;
        Some(LogTarget {
            group: cfg.log_group.clone().filter(|g| !g.is_empty())?,
            prefix: cfg.log_stream_prefix.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| DEFAULT_PREFIX.into()),
        })
    }

    /// The task's stream: `<prefix>/Main/<task id>`.
    pub(crate) fn stream(&self, task_id: &str) -> String {
        format!("{}/{CONTAINER}/{task_id}", self.prefix)
    }

    /// The container definition's `logConfiguration`, as ECS shows an Express task definition's.
    pub(crate) fn log_configuration(&self, region: &str) -> LogConfiguration {
        let options = BTreeMap::from([
            ("awslogs-group".to_string(), self.group.clone()),
            ("awslogs-region".to_string(), region.to_string()),
            ("awslogs-stream-prefix".to_string(), self.prefix.clone()),
            ("mode".to_string(), "non-blocking".to_string()),
            ("max-buffer-size".to_string(), "25m".to_string()),
        ]);
        LogConfiguration { log_driver: Some(LogDriver::Awslogs), options: Some(options), secret_options: None }
    }
}

/// The group Express picks for a new service: `/aws/ecs/<cluster>/<service>-<4 hex>`.
pub(crate) fn default_group(cluster: &str, service: &str) -> String {
    format!("/aws/ecs/{cluster}/{service}-{}", ids::random_hex(4))
}

/// Checks an `awsLogsConfiguration` as ECS and CloudWatch Logs do (both members are required by the model).
pub(crate) fn validate(cfg: &ExpressGatewayServiceAwsLogsConfiguration) -> Result<(), ControlError> {
    let group = cfg.log_group.as_deref().unwrap_or_default();
    if super::valid_group_name(group).is_err() {
        return Err(ControlError::invalid(format!(
            "Invalid primaryContainer.awsLogsConfiguration.logGroup '{group}': a log group name is 1 to 512 characters of a-z, A-Z, 0-9, '_', '-', '/', '.' and '#', and must not start with 'aws/'."
        )));
    }
    let prefix = cfg.log_stream_prefix.as_deref().unwrap_or_default();
    if prefix.is_empty() || prefix.len() > 400 || prefix.contains([':', '*']) || prefix.chars().any(char::is_control) {
        return Err(ControlError::invalid(format!(
            "Invalid primaryContainer.awsLogsConfiguration.logStreamPrefix '{prefix}': it must be 1 to 400 characters without ':', '*' or control characters."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_group_is_a_valid_name() {
        let g = default_group("default", "web");
        assert!(g.starts_with("/aws/ecs/default/web-") && g.len() == "/aws/ecs/default/web-".len() + 4, "{g}");
        assert!(crate::logs::valid_group_name(&g).is_ok());
    }

    #[test]
    fn prefixes_are_checked() {
        let cfg = |g: &str, p: &str| ExpressGatewayServiceAwsLogsConfiguration {
            log_group: Some(g.into()),
            log_stream_prefix: Some(p.into()),
        };
        assert!(validate(&cfg("/g", "ecs")).is_ok());
        assert!(validate(&cfg("/g", "")).is_err());
        assert!(validate(&cfg("/g", "a:b")).is_err());
        assert!(validate(&cfg("/g", "a*")).is_err());
        assert!(validate(&cfg("bad group", "ecs")).is_err());
    }

    #[test]
    fn streams_and_task_definitions_name_the_target() {
        let t = LogTarget { group: "/aws/ecs/default/web-1a2b".into(), prefix: "ecs".into() };
        assert_eq!(t.stream("0123abcd"), "ecs/Main/0123abcd");
        let lc = t.log_configuration("eu-west-1");
        assert_eq!(lc.log_driver, Some(LogDriver::Awslogs));
        let o = lc.options.unwrap_or_default();
        let get = |k: &str| o.get(k).map(String::as_str);
        assert_eq!(get("awslogs-group"), Some("/aws/ecs/default/web-1a2b"));
        assert_eq!(get("awslogs-region"), Some("eu-west-1"));
        assert_eq!(get("awslogs-stream-prefix"), Some("ecs"));
        assert_eq!(get("mode"), Some("non-blocking"));
        assert_eq!(get("max-buffer-size"), Some("25m"));
        let c = ExpressGatewayContainer {
            aws_logs_configuration: Some(ExpressGatewayServiceAwsLogsConfiguration {
                log_group: Some("/g".into()),
                log_stream_prefix: Some("p".into()),
            }),
            ..Default::default()
        };
        assert_eq!(LogTarget::of(&c), Some(LogTarget { group: "/g".into(), prefix: "p".into() }));
        assert_eq!(LogTarget::of(&ExpressGatewayContainer::default()), None);
    }
}
