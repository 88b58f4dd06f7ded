//! berth-runtime: the driver trait that runs tasks, in berth's own words, plus an in-memory driver for tests.
//!
//! It owns the vocabulary between the control plane and a container runtime: a [`TaskSpec`] to run, the
//! [`ObservedTask`]s a runtime reports, and [`DriverError`]s with ECS's stop-reason classes. It must never
//! know Docker (only `berth-runtime-docker` does), never read the store, and never decide how many tasks
//! should run: that is the control plane's job.

pub mod firewall;
pub mod memory;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use berth_core::sizing::TaskSize;

/// Label keys every task container carries, so a restarted server can adopt what runs.
pub mod labels {
    pub const MANAGED: &str = "berth.managed";
    pub const CLUSTER: &str = "berth.cluster";
    pub const SERVICE: &str = "berth.service";
    pub const REVISION: &str = "berth.revision";
    pub const TASK: &str = "berth.task";
    pub const TASK_ARN: &str = "berth.task-arn";
    /// The berth instance (server) that owns the container.
    pub const INSTANCE: &str = "berth.instance";
}

/// Everything a driver needs to start one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    /// The task id (32 hex); unique, and the key every other call uses.
    pub task_id: String,
    /// Labels to put on the container; must include the keys in [`labels`].
    pub labels: BTreeMap<String, String>,
    pub image: String,
    /// Replaces the image's CMD when non-empty.
    pub command: Vec<String>,
    pub environment: Vec<(String, String)>,
    pub size: TaskSize,
    /// The port the application listens on (the target port).
    pub container_port: u16,
    /// The berth-managed network the task joins.
    pub network: String,
    /// Grace period between SIGTERM and SIGKILL on stop.
    pub stop_timeout: Duration,
    pub registry_auth: Option<RegistryAuth>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// What a runtime reports about one berth-managed task container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedTask {
    pub task_id: String,
    pub labels: BTreeMap<String, String>,
    pub state: ObservedState,
    /// The task's address on its network, once it has one.
    pub ip: Option<IpAddr>,
    pub started_at: Option<SystemTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObservedState {
    /// Created but not running yet.
    Created,
    Running,
    /// The container's main process ended.
    Exited {
        exit_code: i64,
        finished_at: Option<SystemTime>,
        error: Option<String>,
    },
}

/// A started task: its address on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedTask {
    pub ip: IpAddr,
    pub started_at: SystemTime,
}

/// Why a driver could not do what was asked, classed as ECS classes stop reasons.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    #[error(
        "CannotPullContainerError: pull image manifest has been retried 1 time(s): failed to resolve ref {image}: {message}"
    )]
    ImagePull { image: String, message: String },
    #[error("CannotCreateContainerError: {0}")]
    Create(String),
    #[error("CannotStartContainerError: {0}")]
    Start(String),
    #[error("task {0} not found")]
    NotFound(String),
    #[error("container runtime unavailable: {0}")]
    Unavailable(String),
}

/// A container runtime that runs tasks. Implementations are idempotent: running a task id that already
/// runs, or stopping one that is gone, succeeds.
#[async_trait::async_trait]
pub trait Driver: Send + Sync + 'static {
    /// A short name for logs (`docker`, `memory`).
    fn name(&self) -> &'static str;
    /// Makes sure the named task network exists.
    async fn ensure_network(&self, network: &str) -> Result<(), DriverError>;
    /// Pulls the image if missing, creates and starts the container, and returns its address.
    async fn run_task(&self, spec: &TaskSpec) -> Result<StartedTask, DriverError>;
    /// Stops the task (SIGTERM, then SIGKILL after `timeout`) and removes its container.
    async fn stop_task(&self, task_id: &str, timeout: Duration) -> Result<(), DriverError>;
    /// Removes a task's container whatever its state (used after a task has exited and been recorded).
    async fn remove_task(&self, task_id: &str) -> Result<(), DriverError>;
    /// Every berth-managed task container the runtime has, running or exited.
    async fn list_tasks(&self) -> Result<Vec<ObservedTask>, DriverError>;
    /// The addresses of a task network, or `None` when it does not exist (yet).
    async fn network_info(&self, _network: &str) -> Result<Option<firewall::NetworkInfo>, DriverError> {
        Ok(None)
    }
    /// Makes the runtime's firewall enforce `policy` (replacing this owner's previous policy). Idempotent.
    async fn sync_firewall(&self, _policy: &firewall::FirewallPolicy) -> Result<firewall::FirewallReport, DriverError> {
        Err(DriverError::Unavailable(format!("the {} runtime has no firewall", self.name())))
    }
}
