//! An in-memory [`Driver`] for tests: tasks "run" instantly, get addresses from 10.99.0.0/16, can be
//! made to fail or exit on demand, and write the output lines a test gives them. Its "daemon" can be stopped
//! and started again ([`MemoryDriver::stop_daemon`]): tasks run on, as under Docker's live-restore.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::{
    Driver, DriverError, ObservedState, ObservedTask, OutputFollower, OutputLine, OutputStream, RegistryAuth,
    StartedTask, TaskSpec, TaskStats,
};

#[derive(Default)]
pub struct MemoryDriver {
    inner: Arc<Mutex<Inner>>,
    /// Wakes output followers when a task writes, exits or goes away.
    changed: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct Inner {
    next_ip: u32,
    tasks: BTreeMap<String, ObservedTask>,
    networks: BTreeSet<String>,
    missing_images: BTreeSet<String>,
    private_images: BTreeMap<String, RegistryAuth>,
    started: Vec<TaskSpec>,
    firewall: Option<crate::firewall::FirewallPolicy>,
    firewall_syncs: usize,
    /// Each container's output so far (gone with the container, as in Docker).
    output: BTreeMap<String, Vec<OutputLine>>,
    follows: usize,
    halts: usize,
    /// Followers deliver nothing while set (a slow reader, for drain tests).
    output_held: bool,
    /// The "daemon" is stopped: every call fails with [`DriverError::Unavailable`] and followers end.
    daemon_stopped: bool,
    /// Bumped by every stop of the daemon: a follower started before a stop ends.
    daemon_epoch: u64,
    /// Each running task's usage as tests set it: (cumulative cpu ns, memory bytes).
    usage: BTreeMap<String, (u64, u64)>,
}

fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    // A poisoned lock only means another test thread panicked; the data is still usable.
    inner.lock().unwrap_or_else(|e| e.into_inner())
}

fn now_ns() -> i64 {
    SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

impl MemoryDriver {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Makes a task's container write `line` now (a timestamp never before its previous line's). Ignored when
    /// the task has no container.
    pub fn write_output(&self, task_id: &str, stream: OutputStream, line: &str) {
        let last = self.lock().output.get(task_id).and_then(|o| o.last()).map(|l| l.timestamp_ns).unwrap_or(0);
        self.write_output_at(task_id, now_ns().max(last), stream, line);
    }

    /// Makes a task's container write `line` with the given timestamp (tests of equal timestamps).
    pub fn write_output_at(&self, task_id: &str, timestamp_ns: i64, stream: OutputStream, line: &str) {
        {
            let mut inner = self.lock();
            if !inner.tasks.contains_key(task_id) {
                return;
            }
            inner.output.entry(task_id.to_string()).or_default().push(OutputLine {
                timestamp_ns,
                stream,
                line: line.to_string(),
            });
        }
        self.changed.notify_waiters();
    }

    /// Holds every follower back (nothing is delivered) until [`MemoryDriver::release_output`].
    pub fn hold_output(&self) {
        self.lock().output_held = true;
    }

    pub fn release_output(&self) {
        self.lock().output_held = false;
        self.changed.notify_waiters();
    }

    /// Stops the "daemon", as dockerd with live-restore: containers run on (and their output is kept), every call
    /// fails with [`DriverError::Unavailable`], and running followers end early, as the Engine closes its log
    /// streams when it stops (without an error: the harder case for a follower).
    pub fn stop_daemon(&self) {
        {
            let mut inner = self.lock();
            inner.daemon_stopped = true;
            inner.daemon_epoch += 1;
        }
        self.changed.notify_waiters();
    }

    /// Starts the "daemon" again: calls answer.
    pub fn start_daemon(&self) {
        self.lock().daemon_stopped = false;
    }

    /// Fails with [`DriverError::Unavailable`] while the daemon is stopped.
    fn available(&self) -> Result<(), DriverError> {
        if self.lock().daemon_stopped {
            return Err(DriverError::Unavailable("the memory daemon is stopped".into()));
        }
        Ok(())
    }

    /// How many times `follow_output` was called.
    pub fn follows(&self) -> usize {
        self.lock().follows
    }

    /// How many times `halt_task` was called.
    pub fn halts(&self) -> usize {
        self.lock().halts
    }

    /// Whether a container exists for the task (running or exited).
    /// Sets what [`Driver::task_stats`] reports for a task: cumulative CPU nanoseconds and working-set bytes.
    pub fn set_usage(&self, task_id: &str, cpu_ns: u64, memory_bytes: u64) {
        self.lock().usage.insert(task_id.to_string(), (cpu_ns, memory_bytes));
    }

    pub fn has_container(&self, task_id: &str) -> bool {
        self.lock().tasks.contains_key(task_id)
    }

    fn forget(&self, task_id: &str) {
        {
            let mut inner = self.lock();
            inner.tasks.remove(task_id);
            inner.output.remove(task_id);
        }
        self.changed.notify_waiters();
    }

    /// Makes every later `run_task` of `image` fail as a pull error.
    pub fn fail_pulls_of(&self, image: &str) {
        self.lock().missing_images.insert(image.to_string());
    }

    /// Makes `image` private: a `run_task` pulls it only with exactly these registry credentials.
    pub fn require_registry_auth(&self, image: &str, auth: RegistryAuth) {
        self.lock().private_images.insert(image.to_string(), auth);
    }

    /// Makes a running task exit with `code`, as if its process died.
    pub fn exit_task(&self, task_id: &str, code: i64) {
        if let Some(t) = self.lock().tasks.get_mut(task_id) {
            t.state = ObservedState::Exited { exit_code: code, finished_at: Some(SystemTime::now()), error: None };
        }
        self.changed.notify_waiters();
    }

    /// The specs of every task started so far, in order.
    pub fn started(&self) -> Vec<TaskSpec> {
        self.lock().started.clone()
    }

    pub fn running_ids(&self) -> Vec<String> {
        self.lock().tasks.values().filter(|t| t.state == ObservedState::Running).map(|t| t.task_id.clone()).collect()
    }

    /// The firewall policy applied last, if any.
    pub fn firewall(&self) -> Option<crate::firewall::FirewallPolicy> {
        self.lock().firewall.clone()
    }

    /// How many times a firewall policy was applied.
    pub fn firewall_syncs(&self) -> usize {
        self.lock().firewall_syncs
    }
}

#[async_trait::async_trait]
impl Driver for MemoryDriver {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn ensure_network(&self, network: &str) -> Result<(), DriverError> {
        self.available()?;
        self.lock().networks.insert(network.to_string());
        Ok(())
    }

    async fn run_task(&self, spec: &TaskSpec) -> Result<StartedTask, DriverError> {
        self.available()?;
        let mut inner = self.lock();
        if inner.missing_images.contains(&spec.image) {
            return Err(DriverError::ImagePull { image: spec.image.clone(), message: "not found".into() });
        }
        if let Some(auth) = inner.private_images.get(&spec.image)
            && spec.registry_auth.as_ref() != Some(auth)
        {
            return Err(DriverError::ImagePull {
                image: spec.image.clone(),
                message: "pull access denied: no basic auth credentials, or wrong ones".into(),
            });
        }
        if let Some(t) = inner.tasks.get(&spec.task_id)
            && t.state == ObservedState::Running
            && let Some(ip) = t.ip
        {
            return Ok(StartedTask { ip, started_at: t.started_at.unwrap_or_else(SystemTime::now) });
        }
        inner.next_ip += 1;
        let n = inner.next_ip;
        let ip = IpAddr::V4(Ipv4Addr::new(10, 99, (n >> 8) as u8, n as u8));
        let now = SystemTime::now();
        inner.tasks.insert(
            spec.task_id.clone(),
            ObservedTask {
                task_id: spec.task_id.clone(),
                labels: spec.labels.clone(),
                state: ObservedState::Running,
                ip: Some(ip),
                started_at: Some(now),
            },
        );
        inner.started.push(spec.clone());
        Ok(StartedTask { ip, started_at: now })
    }

    async fn stop_task(&self, task_id: &str, _timeout: Duration) -> Result<(), DriverError> {
        self.available()?;
        self.forget(task_id);
        Ok(())
    }

    async fn halt_task(&self, task_id: &str, _timeout: Duration) -> Result<(), DriverError> {
        self.available()?;
        {
            let mut inner = self.lock();
            inner.halts += 1;
            if let Some(t) = inner.tasks.get_mut(task_id)
                && t.state == ObservedState::Running
            {
                // SIGTERM ends the process with 143, as a stopped container reports.
                t.state = ObservedState::Exited { exit_code: 143, finished_at: Some(SystemTime::now()), error: None };
            }
        }
        self.changed.notify_waiters();
        Ok(())
    }

    async fn remove_task(&self, task_id: &str) -> Result<(), DriverError> {
        self.available()?;
        self.forget(task_id);
        Ok(())
    }

    async fn follow_output(&self, task_id: &str, since_ns: Option<i64>) -> Result<OutputFollower, DriverError> {
        self.available()?;
        {
            let mut inner = self.lock();
            if !inner.tasks.contains_key(task_id) {
                return Err(DriverError::NotFound(task_id.to_string()));
            }
            inner.follows += 1;
        }
        let (tx, follower) = OutputFollower::channel(256);
        let (inner, changed, id) = (Arc::clone(&self.inner), Arc::clone(&self.changed), task_id.to_string());
        let since = since_ns.unwrap_or(i64::MIN);
        let epoch = self.lock().daemon_epoch;
        tokio::spawn(async move {
            let mut next = 0;
            loop {
                let notified = changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if lock(&inner).daemon_epoch != epoch {
                    return;
                }
                if lock(&inner).output_held {
                    notified.await;
                    continue;
                }
                let (lines, done) = {
                    let g = lock(&inner);
                    let all = g.output.get(&id).map(Vec::as_slice).unwrap_or_default();
                    let lines: Vec<OutputLine> =
                        all.iter().skip(next).filter(|l| l.timestamp_ns >= since).cloned().collect();
                    next = all.len();
                    let alive = g.tasks.get(&id).is_some_and(|t| !matches!(t.state, ObservedState::Exited { .. }));
                    (lines, !alive)
                };
                for line in lines {
                    if tx.send(Ok(line)).await.is_err() {
                        return;
                    }
                }
                if done {
                    return;
                }
                notified.await;
            }
        });
        Ok(follower)
    }

    async fn list_tasks(&self) -> Result<Vec<ObservedTask>, DriverError> {
        self.available()?;
        Ok(self.lock().tasks.values().cloned().collect())
    }

    async fn task_stats(&self, task_ids: &[String]) -> Result<Vec<TaskStats>, DriverError> {
        self.available()?;
        let inner = self.lock();
        let at = SystemTime::now();
        Ok(task_ids
            .iter()
            .filter(|id| inner.tasks.get(*id).is_some_and(|t| t.state == ObservedState::Running))
            .map(|id| {
                let (cpu_ns, memory_bytes) = inner.usage.get(id).copied().unwrap_or_default();
                TaskStats { task_id: id.clone(), cpu_ns, memory_bytes, at }
            })
            .collect())
    }

    async fn network_info(&self, network: &str) -> Result<Option<crate::firewall::NetworkInfo>, DriverError> {
        self.available()?;
        Ok(self.lock().networks.contains(network).then(|| crate::firewall::NetworkInfo {
            subnet: berth_core::cidr::Cidr::new(IpAddr::V4(Ipv4Addr::new(10, 99, 0, 0)), 16),
            gateway: Some(IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1))),
            dns_resolvers: Vec::new(),
        }))
    }

    async fn sync_firewall(
        &self,
        policy: &crate::firewall::FirewallPolicy,
    ) -> Result<crate::firewall::FirewallReport, DriverError> {
        self.available()?;
        let mut inner = self.lock();
        let changed = inner.firewall.as_ref() != Some(policy);
        inner.firewall = Some(policy.clone());
        inner.firewall_syncs += 1;
        Ok(crate::firewall::FirewallReport { changed, collected: Vec::new() })
    }
}
