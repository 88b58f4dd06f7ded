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

/// One reading of a task's resource usage, as cAdvisor reads a container's cgroup: cumulative, so two readings
/// give the usage between them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskStats {
    pub task_id: String,
    /// CPU time used since the container started, in nanoseconds (cgroup v2 `cpu.stat` `usage_usec` × 1000,
    /// v1 `cpuacct.usage`).
    pub cpu_ns: u64,
    /// The working set in bytes: memory in use less inactive file cache (v2 `memory.current` − `inactive_file`,
    /// v1 `memory.usage_in_bytes` − `total_inactive_file`), what `docker stats` shows and ECS rolls up.
    pub memory_bytes: u64,
    /// When it was read.
    pub at: SystemTime,
}

/// A started task: its address on the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedTask {
    pub ip: IpAddr,
    pub started_at: SystemTime,
}

/// Which output stream of a container a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// One line a task's container wrote, as the awslogs driver would ship it: without its newline, at most
/// [`MAX_LINE_BYTES`] long (longer lines arrive split into several), never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// When the runtime received the line, in nanoseconds since the Unix epoch.
    pub timestamp_ns: i64,
    pub stream: OutputStream,
    pub line: String,
}

/// The longest line a follower yields: CloudWatch Logs' event limit (256 KiB less the 26 bytes of per-event
/// overhead), where the awslogs driver splits longer lines.
pub const MAX_LINE_BYTES: usize = 256 * 1024 - 26;

/// A task container's output as it is written: lines in order, ending (`None`) once the container has stopped
/// and everything it wrote has been yielded. Dropping it stops the following.
#[derive(Debug)]
pub struct OutputFollower {
    rx: tokio::sync::mpsc::Receiver<Result<OutputLine, DriverError>>,
}

impl OutputFollower {
    /// A follower fed by a driver through the sending half (capacity `bound` lines).
    pub fn channel(bound: usize) -> (tokio::sync::mpsc::Sender<Result<OutputLine, DriverError>>, OutputFollower) {
        let (tx, rx) = tokio::sync::mpsc::channel(bound.max(1));
        (tx, OutputFollower { rx })
    }

    /// The next line, an error (after which nothing follows), or `None` at the end of the output.
    pub async fn next(&mut self) -> Option<Result<OutputLine, DriverError>> {
        self.rx.recv().await
    }
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
    /// The runtime cannot be reached (its daemon is stopped or restarting): nothing can be said about the tasks,
    /// which may well run on. Never a sign that a task ended.
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
    /// Stops the task (SIGTERM, then SIGKILL after `timeout`) but keeps its container, so its output can still be
    /// read; [`Driver::remove_task`] removes it later. Drivers that cannot keep a stopped container stop and
    /// remove it.
    async fn halt_task(&self, task_id: &str, timeout: Duration) -> Result<(), DriverError> {
        self.stop_task(task_id, timeout).await
    }
    /// Follows a task container's stdout and stderr from `since_ns` (inclusive, nanoseconds since the Unix epoch;
    /// `None`: from the start), in the order written, until the container has stopped and its output is drained.
    /// Errors with [`DriverError::NotFound`] when the container does not exist. A follow the runtime breaks off
    /// while the container runs (its daemon restarting) should end with an error; since some end it early
    /// instead, callers take the end of a follow for the end of the output only when the container had already
    /// stopped (see [`Driver::task_state`]) before that follow began.
    async fn follow_output(&self, task_id: &str, since_ns: Option<i64>) -> Result<OutputFollower, DriverError>;
    /// Every berth-managed task container the runtime has, running or exited. An error (e.g.
    /// [`DriverError::Unavailable`]) says nothing about the tasks: never read it as an empty list.
    async fn list_tasks(&self) -> Result<Vec<ObservedTask>, DriverError>;
    /// The state of one task's container, or `None` when it has none.
    async fn task_state(&self, task_id: &str) -> Result<Option<ObservedState>, DriverError> {
        Ok(self.list_tasks().await?.into_iter().find(|t| t.task_id == task_id).map(|t| t.state))
    }
    /// The addresses of a task network, or `None` when it does not exist (yet).
    async fn network_info(&self, _network: &str) -> Result<Option<firewall::NetworkInfo>, DriverError> {
        Ok(None)
    }
    /// Reads the resource usage of each running task of `task_ids`; a task with no running container is left out.
    /// Called every sampling interval, so it must be cheap (the Docker driver reads cgroup files).
    async fn task_stats(&self, _task_ids: &[String]) -> Result<Vec<TaskStats>, DriverError> {
        Ok(Vec::new())
    }
    /// Makes the runtime's firewall enforce `policy` (replacing this owner's previous policy). Idempotent.
    async fn sync_firewall(&self, _policy: &firewall::FirewallPolicy) -> Result<firewall::FirewallReport, DriverError> {
        Err(DriverError::Unavailable(format!("the {} runtime has no firewall", self.name())))
    }
}
