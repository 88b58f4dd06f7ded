//! The Express feature as an orchestration of the AWS services' resources behind a service: its security
//! groups (`security_groups.rs`), the journal of what berth does as the infrastructure role and its check
//! (`journal.rs`), its place on a shared load balancer (`placement.rs`), its auto scaling (`scaling.rs`), the deployment alarm (`deploy_alarm.rs`), and the deletion of a service's
//! resources as that role (`teardown.rs`).

pub(crate) mod deploy_alarm;
pub(crate) mod journal;
pub(crate) mod log_group;
pub(crate) mod placement;
pub(crate) mod scaling;
pub(crate) mod security_groups;
pub(crate) mod teardown;

pub(crate) const MANAGED_TAG: (&str, &str) = ("AmazonECSManaged", "true");
