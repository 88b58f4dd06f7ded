//! An in-memory [`Driver`] for tests: tasks "run" instantly, get addresses from 10.99.0.0/16, and can be
//! made to fail or exit on demand.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::{Driver, DriverError, ObservedState, ObservedTask, RegistryAuth, StartedTask, TaskSpec};

#[derive(Default)]
pub struct MemoryDriver {
    inner: Mutex<Inner>,
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
}

impl MemoryDriver {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another test thread panicked; the data is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
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
    }

    /// Forgets a task, as if its container was removed behind berth's back.
    pub fn vanish(&self, task_id: &str) {
        self.lock().tasks.remove(task_id);
    }

    /// The specs of every task started so far, in order.
    pub fn started(&self) -> Vec<TaskSpec> {
        self.lock().started.clone()
    }

    pub fn running_ids(&self) -> Vec<String> {
        self.lock().tasks.values().filter(|t| t.state == ObservedState::Running).map(|t| t.task_id.clone()).collect()
    }

    pub fn has_network(&self, name: &str) -> bool {
        self.lock().networks.contains(name)
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
        self.lock().networks.insert(network.to_string());
        Ok(())
    }

    async fn run_task(&self, spec: &TaskSpec) -> Result<StartedTask, DriverError> {
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
        self.lock().tasks.remove(task_id);
        Ok(())
    }

    async fn remove_task(&self, task_id: &str) -> Result<(), DriverError> {
        self.lock().tasks.remove(task_id);
        Ok(())
    }

    async fn list_tasks(&self) -> Result<Vec<ObservedTask>, DriverError> {
        Ok(self.lock().tasks.values().cloned().collect())
    }

    async fn network_info(&self, network: &str) -> Result<Option<crate::firewall::NetworkInfo>, DriverError> {
        Ok(self.lock().networks.contains(network).then(|| crate::firewall::NetworkInfo {
            subnet: berth_core::cidr::Cidr::new(IpAddr::V4(Ipv4Addr::new(10, 99, 0, 0)), 16),
            gateway: Some(IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1))),
        }))
    }

    async fn sync_firewall(
        &self,
        policy: &crate::firewall::FirewallPolicy,
    ) -> Result<crate::firewall::FirewallReport, DriverError> {
        let mut inner = self.lock();
        let changed = inner.firewall.as_ref() != Some(policy);
        inner.firewall = Some(policy.clone());
        inner.firewall_syncs += 1;
        Ok(crate::firewall::FirewallReport { changed, collected: Vec::new() })
    }
}
