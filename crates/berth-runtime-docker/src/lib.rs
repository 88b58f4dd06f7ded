//! berth-runtime-docker: the [`Driver`] that runs berth's tasks as Docker Engine containers.
//!
//! It owns everything Docker: the connection to the Engine API (over its unix socket, with the API version
//! negotiated down to the daemon's), one container per task named `berth-task-<task id>`, the labels that let
//! a restarted server adopt what runs, bridge networks labelled `berth.managed=true`, image pulls, and the
//! translation of Docker's errors into berth's [`DriverError`] classes. It is the only crate that knows
//! bollard. It must never decide what should run (the control plane does), never touch containers or
//! networks without berth's labels (other than refusing to reuse a name), and never leave a half-built
//! container behind when a create or start fails.

pub mod dns;
pub mod firewall;
mod output;
pub mod stats;
mod util;

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_runtime::{
    Driver, DriverError, ObservedState, ObservedTask, OutputFollower, OutputStream, StartedTask, TaskSpec, TaskStats,
    labels,
};
use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummary,
    ContainerSummaryStateEnum, EndpointSettings, HostConfig, HostConfigLogConfig, NetworkCreateRequest, RestartPolicy,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, InspectContainerOptions, ListContainersOptions, ListNetworksOptions,
    LogsOptions, RemoveContainerOptions, StopContainerOptions,
};
use futures_util::StreamExt;

pub use util::parse_docker_time;

/// The Engine's default socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
/// The prefix of every task container's name; the rest is the task id.
pub const CONTAINER_PREFIX: &str = "berth-task-";
/// Timeout for one Engine API request (until response headers; streamed bodies such as pulls are not cut).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// A cap on the stop grace period (ECS itself allows at most 120 s).
const MAX_STOP_TIMEOUT: Duration = Duration::from_secs(600);
/// How a call is retried while the daemon cannot be reached (dockerd restarting; with live-restore the containers
/// run on meanwhile): pauses from 0.1 s doubling to 1 s, for about 10 s in all, then the caller gets
/// [`DriverError::Unavailable`].
const RETRY: Retry =
    Retry { first: Duration::from_millis(100), max: Duration::from_secs(1), total: Duration::from_secs(10) };
/// Per-container json-file log rotation.
const LOG_MAX_SIZE: &str = "10m";
const LOG_MAX_FILE: &str = "3";

/// A bounded backoff for calls that are safe to repeat (every [`Driver`] call of this driver is idempotent).
#[derive(Debug, Clone, Copy)]
struct Retry {
    first: Duration,
    max: Duration,
    total: Duration,
}

impl Retry {
    /// Calls `call` until it answers anything but [`DriverError::Unavailable`] or the time is up.
    async fn run<T, F, Fut>(self, mut call: F) -> Result<T, DriverError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, DriverError>>,
    {
        let deadline = tokio::time::Instant::now() + self.total;
        let mut pause = self.first;
        loop {
            match call().await {
                Err(DriverError::Unavailable(_)) if tokio::time::Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(self.max);
                }
                answer => return answer,
            }
        }
    }
}

/// What the daemon says about surviving its own restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaemonSettings {
    /// `live-restore`: containers keep running while dockerd is stopped or restarted.
    pub live_restore: bool,
    /// The daemon is a swarm node (Docker refuses live-restore there).
    pub swarm: bool,
}

impl DaemonSettings {
    /// The warning a server logs once at start when a restart of this daemon would stop every task, or `None`.
    pub fn warning(&self) -> Option<String> {
        if self.live_restore {
            return None;
        }
        let why = if self.swarm {
            "the daemon is a swarm node and Docker refuses live-restore in swarm mode"
        } else {
            "turn it on with scripts/ensure-docker.sh or \"live-restore\": true in /etc/docker/daemon.json (then reload dockerd: SIGHUP)"
        };
        Some(format!(
            "the Docker daemon runs without live-restore: restarting or upgrading dockerd stops every task and berth replaces them (requests fail meanwhile); {why}"
        ))
    }
}

/// The container name of a task.
pub fn container_name(task_id: &str) -> String {
    format!("{CONTAINER_PREFIX}{task_id}")
}

/// A [`Driver`] backed by a local Docker Engine.
#[derive(Debug, Clone)]
pub struct DockerDriver {
    docker: Docker,
    /// Serialises network creation in this process (API 1.41 has no server-side duplicate-name check).
    network_lock: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// The DNS servers task containers get (`--dns`); empty for the engine's choice (see `dns.rs`).
    dns: Vec<IpAddr>,
    /// Reads tasks' usage from their cgroups (`stats.rs`).
    sampler: std::sync::Arc<stats::Sampler>,
}

impl DockerDriver {
    /// Connects to the Engine's unix socket (`socket`, default [`DEFAULT_SOCKET`]; a `unix://` prefix is
    /// accepted), negotiates the API version down to the daemon's, and checks the daemon answers a ping.
    pub async fn connect(socket: Option<&str>) -> Result<DockerDriver, DriverError> {
        let path = socket.unwrap_or(DEFAULT_SOCKET);
        let docker = Docker::connect_with_unix(path, REQUEST_TIMEOUT.as_secs(), bollard::API_DEFAULT_VERSION)
            .map_err(|e| DriverError::Unavailable(format!("cannot connect to the Docker daemon at {path}: {e}")))?;
        let docker = docker.negotiate_version().await.map_err(|e| unavailable(path, e))?;
        docker.ping().await.map_err(|e| unavailable(path, e))?;
        Ok(DockerDriver { docker, network_lock: Default::default(), dns: Vec::new(), sampler: Default::default() })
    }

    /// Gives task containers these DNS servers (Docker's embedded resolver forwards to them) instead of the
    /// host's.
    pub fn with_dns(mut self, servers: Vec<IpAddr>) -> DockerDriver {
        self.dns = servers;
        self
    }

    /// Where task containers' DNS queries are forwarded to.
    fn dns_upstreams(&self) -> Vec<IpAddr> {
        if self.dns.is_empty() { dns::read_host_upstreams() } else { self.dns.clone() }
    }

    /// Whether the daemon keeps containers running across its own restart (`docker info`).
    pub async fn daemon_settings(&self) -> Result<DaemonSettings, DriverError> {
        let info = self.docker.info().await.map_err(|e| other(e, DriverError::Unavailable))?;
        let swarm = info.swarm.and_then(|s| s.local_node_state).is_some_and(|s| {
            matches!(s, bollard::models::LocalNodeState::ACTIVE | bollard::models::LocalNodeState::PENDING)
        });
        Ok(DaemonSettings { live_restore: info.live_restore_enabled == Some(true), swarm })
    }

    /// Reads each task's usage from Docker's stats API (one-shot), one request per task: the fallback of
    /// [`Driver::task_stats`], kept callable for the benchmark that compares the two (`bench/collect/`).
    pub async fn task_stats_from_api(&self, task_ids: &[String]) -> Result<Vec<TaskStats>, DriverError> {
        let mut out = Vec::with_capacity(task_ids.len());
        for task in task_ids {
            out.extend(stats::api_stats(&self.docker, task).await?);
        }
        Ok(out)
    }

    /// The Engine API version in use after negotiation, e.g. `1.41`.
    pub fn api_version(&self) -> String {
        self.docker.client_version().to_string()
    }

    /// Inspects a task's container; `Ok(None)` when it does not exist.
    async fn inspect_task(&self, name: &str) -> Result<Option<ContainerInspectResponse>, DriverError> {
        match self.docker.inspect_container(name, None::<InspectContainerOptions>).await {
            Ok(c) => Ok(Some(c)),
            Err(e) if is_status(&e, 404) => Ok(None),
            Err(e) => Err(other(e, DriverError::Create)),
        }
    }

    /// Pulls `image` unless it is present locally. With registry credentials it always pulls (layers
    /// already present are not downloaded again), so the credentials are checked by the registry for
    /// every task, as on Fargate, and a cached private image never starts with wrong credentials.
    async fn ensure_image(&self, spec: &TaskSpec) -> Result<(), DriverError> {
        let image = spec.image.as_str();
        if spec.registry_auth.is_none() {
            match self.docker.inspect_image(image).await {
                Ok(_) => return Ok(()),
                Err(e) if is_status(&e, 404) => {}
                Err(e) if is_unavailable(&e) => return Err(DriverError::Unavailable(e.to_string())),
                Err(e) => return Err(pull_error(image, e)),
            }
        }
        let reference = util::normalize_image(image);
        let credentials = spec.registry_auth.as_ref().map(|a| DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.clone()),
            serveraddress: util::registry_host(image).map(str::to_string),
            ..Default::default()
        });
        let options = CreateImageOptions { from_image: Some(reference), ..Default::default() };
        let mut progress = self.docker.create_image(Some(options), None, credentials);
        while let Some(item) = progress.next().await {
            if let Err(e) = item {
                if is_unavailable(&e) {
                    return Err(DriverError::Unavailable(e.to_string()));
                }
                return Err(pull_error(image, e));
            }
        }
        // A pull can "succeed" without producing the reference (e.g. a digest mismatch); check it.
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(()),
            Err(e) => Err(pull_error(image, e)),
        }
    }

    fn create_body(spec: &TaskSpec) -> ContainerCreateBody {
        let mut container_labels: HashMap<String, String> =
            spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        container_labels.insert(labels::MANAGED.to_string(), "true".to_string());
        container_labels.entry(labels::TASK.to_string()).or_insert_with(|| spec.task_id.clone());
        let memory = spec.size.memory_bytes();
        let stop_secs = spec.stop_timeout.min(MAX_STOP_TIMEOUT).as_secs();
        ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.environment.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            cmd: (!spec.command.is_empty()).then(|| spec.command.clone()),
            labels: Some(container_labels),
            exposed_ports: (spec.container_port != 0).then(|| vec![format!("{}/tcp", spec.container_port)]),
            stop_timeout: i64::try_from(stop_secs).ok(),
            host_config: Some(HostConfig {
                nano_cpus: Some(spec.size.nano_cpus()),
                memory: Some(memory),
                // Swap equal to memory means no swap on top of the limit, as on Fargate.
                memory_swap: Some(memory),
                network_mode: Some(spec.network.clone()),
                init: Some(true),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::NO),
                    maximum_retry_count: None,
                }),
                log_config: Some(HostConfigLogConfig {
                    typ: Some("json-file".to_string()),
                    config: Some(HashMap::from([
                        ("max-size".to_string(), LOG_MAX_SIZE.to_string()),
                        ("max-file".to_string(), LOG_MAX_FILE.to_string()),
                    ])),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Stops a task's container (SIGTERM, SIGKILL after `timeout`) and keeps it. A missing container is fine;
    /// other refusals (e.g. it is being removed) are left for the removal to settle.
    async fn halt(&self, task_id: &str, timeout: Duration) -> Result<(), DriverError> {
        let name = container_name(task_id);
        let timeout = timeout.min(MAX_STOP_TIMEOUT);
        let t = i32::try_from(timeout.as_secs()).unwrap_or(i32::MAX);
        // The stop request returns once the container has stopped, up to `timeout` plus the kill.
        let docker = self.docker.clone().with_timeout(REQUEST_TIMEOUT + timeout);
        match docker.stop_container(&name, Some(StopContainerOptions { t: Some(t), signal: None })).await {
            Ok(()) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) if is_unavailable(&e) => Err(DriverError::Unavailable(e.to_string())),
            Err(_) => Ok(()),
        }
    }

    /// Force-removes a container; a missing one (or one already being removed) is fine.
    async fn force_remove(&self, name: &str) -> Result<(), DriverError> {
        let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        match self.docker.remove_container(name, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) if is_status(&e, 409) && message_of(&e).contains("already in progress") => Ok(()),
            Err(e) => Err(other(e, DriverError::Create)),
        }
    }

    /// The networks named exactly `name` (Engine API 1.41 allows several), oldest first.
    async fn networks_named(&self, name: &str) -> Result<Vec<bollard::models::Network>, DriverError> {
        let options =
            ListNetworksOptions { filters: Some(HashMap::from([("name".to_string(), vec![name.to_string()])])) };
        let networks = self.docker.list_networks(Some(options)).await.map_err(|e| other(e, DriverError::Create))?;
        // The name filter matches substrings; keep exact matches only.
        let mut exact: Vec<_> = networks.into_iter().filter(|n| n.name.as_deref() == Some(name)).collect();
        exact.sort_by_cached_key(|n| (n.created.as_deref().and_then(parse_docker_time), n.id.clone()));
        Ok(exact)
    }

    /// Creates the network unless it exists, then settles any duplicates a concurrent creator made.
    ///
    /// Engine API 1.41 does not refuse a second network of the same name (bollard cannot send its
    /// `CheckDuplicate`), and a duplicated name makes `NetworkMode` ambiguous. Every call therefore keeps the
    /// oldest berth-managed network of the name (ties broken by id) and removes the others that have no
    /// containers; since every caller uses the same order, concurrent callers converge on one network.
    async fn ensure_network_inner(&self, name: &str) -> Result<(), DriverError> {
        if self.networks_named(name).await?.is_empty() {
            let request = NetworkCreateRequest {
                name: name.to_string(),
                driver: Some("bridge".to_string()),
                labels: Some(HashMap::from([(labels::MANAGED.to_string(), "true".to_string())])),
                ..Default::default()
            };
            match self.docker.create_network(request).await {
                Ok(_) => {}
                // Newer Engines refuse duplicate names themselves.
                Err(e) if is_status(&e, 409) => {}
                Err(e) => return Err(other(e, DriverError::Create)),
            }
        }
        let networks = self.networks_named(name).await?;
        for duplicate in networks.iter().skip(1) {
            let managed = duplicate.labels.as_ref().and_then(|l| l.get(labels::MANAGED)).map(String::as_str);
            let (Some(id), Some("true")) = (duplicate.id.as_deref(), managed) else { continue };
            match self.docker.remove_network(id).await {
                Ok(()) => {}
                Err(e) if is_unavailable(&e) => return Err(DriverError::Unavailable(e.to_string())),
                // Gone already, or in use by a container: leave it.
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// The network's subnet, gateway and bridge interface, if it exists.
    async fn network_details(
        &self,
        name: &str,
    ) -> Result<Option<(berth_runtime::firewall::NetworkInfo, String)>, DriverError> {
        let Some(n) = self.networks_named(name).await?.into_iter().next() else {
            return Ok(None);
        };
        let configs = n.ipam.and_then(|i| i.config).unwrap_or_default();
        let v4 = configs.iter().find_map(|c| {
            let subnet: berth_core::cidr::Cidr = c.subnet.as_deref()?.parse().ok()?;
            subnet.is_ipv4().then(|| (subnet, c.gateway.as_deref().and_then(|g| g.parse::<IpAddr>().ok())))
        });
        let gateway = v4.and_then(|(subnet, gw)| {
            gw.or_else(|| match subnet.addr() {
                IpAddr::V4(a) => Some(IpAddr::V4(Ipv4Addr::from(u32::from(a) + 1))),
                IpAddr::V6(_) => None,
            })
        });
        let bridge = n
            .options
            .as_ref()
            .and_then(|o| o.get("com.docker.network.bridge.name").cloned())
            .or_else(|| n.id.as_deref().map(|id| format!("br-{}", &id[..id.len().min(12)])))
            .ok_or_else(|| DriverError::Unavailable(format!("network {name} has no id")))?;
        let info = berth_runtime::firewall::NetworkInfo {
            subnet: v4.map(|v| v.0),
            gateway,
            dns_resolvers: self.dns_upstreams(),
        };
        Ok(Some((info, bridge)))
    }

    /// Whether any running container carries `berth.instance=<owner>`.
    async fn instance_has_containers(&self, owner: &str) -> Result<bool, DriverError> {
        let options = ListContainersOptions {
            all: false,
            filters: Some(HashMap::from([("label".to_string(), vec![format!("{}={owner}", labels::INSTANCE)])])),
            ..Default::default()
        };
        let list = self.docker.list_containers(Some(options)).await.map_err(|e| other(e, DriverError::Create))?;
        Ok(!list.is_empty())
    }

    /// The ObservedTask for one listed container, or `None` if it vanished meanwhile or is not a task.
    async fn observe(&self, summary: ContainerSummary) -> Result<Option<ObservedTask>, DriverError> {
        let container_labels: BTreeMap<String, String> = summary.labels.unwrap_or_default().into_iter().collect();
        let Some(task_id) = container_labels.get(labels::TASK).cloned() else { return Ok(None) };
        let network_mode = summary.host_config.and_then(|h| h.network_mode);
        let ip = summary.network_settings.and_then(|n| n.networks).and_then(|n| pick_ip(&n, network_mode.as_deref()));
        let created = summary.created.and_then(|c| u64::try_from(c).ok()).map(|c| UNIX_EPOCH + Duration::from_secs(c));
        let state = summary.state.unwrap_or(ContainerSummaryStateEnum::EMPTY);
        let (state, started_at) = match state {
            ContainerSummaryStateEnum::CREATED => (ObservedState::Created, None),
            // A running container's start time is within milliseconds of its creation (run_task creates
            // and starts it back to back); listing avoids an inspect per running task.
            ContainerSummaryStateEnum::RUNNING
            | ContainerSummaryStateEnum::RESTARTING
            | ContainerSummaryStateEnum::PAUSED
            | ContainerSummaryStateEnum::STOPPING => (ObservedState::Running, created),
            ContainerSummaryStateEnum::EXITED
            | ContainerSummaryStateEnum::DEAD
            | ContainerSummaryStateEnum::REMOVING
            | ContainerSummaryStateEnum::EMPTY => {
                let Some(id) = summary.id else { return Ok(None) };
                let Some(inspect) = self.inspect_task(&id).await? else { return Ok(None) };
                let (state, started_at) = observed_state(&inspect);
                (state, started_at)
            }
        };
        Ok(Some(ObservedTask { task_id, labels: container_labels, state, ip, started_at }))
    }
}

/// Whether the container runs (or may: the daemon does not answer), once its log stream has ended.
async fn still_runs(docker: &Docker, name: &str) -> bool {
    match docker.inspect_container(name, None::<InspectContainerOptions>).await {
        Ok(c) => matches!(observed_state(&c).0, ObservedState::Running),
        Err(e) if is_status(&e, 404) => false,
        Err(_) => true,
    }
}

/// The state and start time an inspected container reports.
fn observed_state(c: &ContainerInspectResponse) -> (ObservedState, Option<SystemTime>) {
    let Some(st) = c.state.as_ref() else { return (ObservedState::Created, None) };
    let started_at = st.started_at.as_deref().and_then(parse_docker_time);
    let state = match st.status {
        Some(ContainerStateStatusEnum::CREATED) | None | Some(ContainerStateStatusEnum::EMPTY) => {
            ObservedState::Created
        }
        Some(
            ContainerStateStatusEnum::RUNNING
            | ContainerStateStatusEnum::RESTARTING
            | ContainerStateStatusEnum::PAUSED
            | ContainerStateStatusEnum::STOPPING,
        ) => ObservedState::Running,
        Some(
            ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD | ContainerStateStatusEnum::REMOVING,
        ) => {
            let error = if st.oom_killed == Some(true) {
                Some("OutOfMemoryError: Container killed due to memory usage".to_string())
            } else {
                st.error.clone().filter(|e| !e.is_empty())
            };
            ObservedState::Exited {
                exit_code: st.exit_code.unwrap_or(-1),
                finished_at: st.finished_at.as_deref().and_then(parse_docker_time),
                error,
            }
        }
    };
    (state, started_at)
}

/// The container's address on `network` (or, failing that, on any network it has an address on).
fn pick_ip(networks: &HashMap<String, EndpointSettings>, network: Option<&str>) -> Option<IpAddr> {
    let parse = |e: &EndpointSettings| e.ip_address.as_deref().filter(|s| !s.is_empty())?.parse::<IpAddr>().ok();
    network.and_then(|n| networks.get(n)).and_then(parse).or_else(|| {
        let mut names: Vec<&String> = networks.keys().collect();
        names.sort();
        names.into_iter().filter_map(|n| networks.get(n)).find_map(parse)
    })
}

fn is_status(e: &BollardError, code: u16) -> bool {
    matches!(e, BollardError::DockerResponseServerError { status_code, .. } if *status_code == code)
}

fn message_of(e: &BollardError) -> String {
    match e {
        BollardError::DockerResponseServerError { message, .. } => message.clone(),
        BollardError::DockerStreamError { error } => error.clone(),
        e => e.to_string(),
    }
}

/// Whether an error means the daemon could not be reached at all (rather than refusing a request).
fn is_unavailable(e: &BollardError) -> bool {
    matches!(
        e,
        BollardError::SocketNotFoundError(_)
            | BollardError::IOError { .. }
            | BollardError::HyperLegacyError { .. }
            | BollardError::HyperResponseError { .. }
            | BollardError::RequestTimeoutError
    )
}

fn unavailable(path: &str, e: BollardError) -> DriverError {
    DriverError::Unavailable(format!("cannot connect to the Docker daemon at {path}: {e}"))
}

/// Maps an error to `Unavailable` when the daemon is unreachable, else to `class` with Docker's message.
fn other(e: BollardError, class: fn(String) -> DriverError) -> DriverError {
    if is_unavailable(&e) { DriverError::Unavailable(e.to_string()) } else { class(message_of(&e)) }
}

fn pull_error(image: &str, e: BollardError) -> DriverError {
    DriverError::ImagePull { image: image.to_string(), message: message_of(&e) }
}

#[async_trait::async_trait]
impl Driver for DockerDriver {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn network_info(&self, network: &str) -> Result<Option<berth_runtime::firewall::NetworkInfo>, DriverError> {
        RETRY.run(|| async { Ok(self.network_details(network).await?.map(|(info, _)| info)) }).await
    }

    async fn sync_firewall(
        &self,
        policy: &berth_runtime::firewall::FirewallPolicy,
    ) -> Result<berth_runtime::firewall::FirewallReport, DriverError> {
        let Some((_, bridge)) = self.network_details(&policy.network).await? else {
            return Err(DriverError::Unavailable(format!("network {} does not exist yet", policy.network)));
        };
        let observed = firewall::observe().await?;
        let mut dead = std::collections::BTreeSet::new();
        for owner in firewall::other_owners(&policy.owner, &observed) {
            if !self.instance_has_containers(&owner).await? {
                dead.insert(owner);
            }
        }
        let desired = firewall::render(policy);
        let Some(input) = firewall::plan(&policy.owner, &bridge, &desired, &observed, &dead) else {
            return Ok(berth_runtime::firewall::FirewallReport::default());
        };
        firewall::apply(&input).await?;
        Ok(berth_runtime::firewall::FirewallReport {
            changed: true,
            collected: dead.iter().map(|o| format!("{}{o}", firewall::CHAIN_PREFIX)).collect(),
        })
    }

    async fn ensure_network(&self, network: &str) -> Result<(), DriverError> {
        let _guard = self.network_lock.lock().await;
        RETRY.run(|| self.ensure_network_inner(network)).await
    }

    /// Runs the task's container, or returns the address of the one already running under its id (see
    /// `run_once`); retried while the daemon is unreachable.
    async fn run_task(&self, spec: &TaskSpec) -> Result<StartedTask, DriverError> {
        RETRY.run(|| self.run_once(spec)).await
    }

    async fn stop_task(&self, task_id: &str, timeout: Duration) -> Result<(), DriverError> {
        RETRY.run(|| self.halt(task_id, timeout)).await?;
        let name = container_name(task_id);
        RETRY.run(|| self.force_remove(&name)).await
    }

    async fn halt_task(&self, task_id: &str, timeout: Duration) -> Result<(), DriverError> {
        RETRY.run(|| self.halt(task_id, timeout)).await
    }

    /// Follows the container's log (see `follow_once`); starting to follow is retried while the daemon is
    /// unreachable, and a stream the Engine closes while the container runs (dockerd stopping) ends with
    /// [`DriverError::Unavailable`], for the caller to follow again from its last line.
    async fn follow_output(&self, task_id: &str, since_ns: Option<i64>) -> Result<OutputFollower, DriverError> {
        RETRY.run(|| self.follow_once(task_id, since_ns)).await
    }

    async fn remove_task(&self, task_id: &str) -> Result<(), DriverError> {
        let name = container_name(task_id);
        RETRY.run(|| self.force_remove(&name)).await
    }

    async fn list_tasks(&self) -> Result<Vec<ObservedTask>, DriverError> {
        RETRY.run(|| self.list_once()).await
    }

    async fn task_state(&self, task_id: &str) -> Result<Option<ObservedState>, DriverError> {
        let name = container_name(task_id);
        let inspect = RETRY.run(|| self.inspect_task(&name)).await?;
        Ok(inspect.map(|c| observed_state(&c).0))
    }

    async fn task_stats(&self, task_ids: &[String]) -> Result<Vec<TaskStats>, DriverError> {
        self.sampler.stats(&self.docker, task_ids).await
    }
}

impl DockerDriver {
    /// Runs the task's container, or returns the address of the one already running under its id (an
    /// exited or never-started container of the same id is replaced).
    ///
    /// If the container starts but its process exits before it is inspected, the task still counts as
    /// started (the control plane sees the exit through `list_tasks`), and the address returned is the
    /// unspecified address `0.0.0.0`, since Docker has already released the real one.
    async fn run_once(&self, spec: &TaskSpec) -> Result<StartedTask, DriverError> {
        let name = container_name(&spec.task_id);
        if let Some(existing) = self.inspect_task(&name).await? {
            if let Some(started) = running_address(&existing, &spec.network) {
                return Ok(started);
            }
            self.force_remove(&name).await?;
        }
        self.ensure_image(spec).await?;

        let options = CreateContainerOptions { name: Some(name.clone()), ..Default::default() };
        let mut body = Self::create_body(spec);
        if let Some(hc) = body.host_config.as_mut().filter(|_| !self.dns.is_empty()) {
            hc.dns = Some(self.dns.iter().map(IpAddr::to_string).collect());
        }
        match self.docker.create_container(Some(options), body).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 409) => {
                // A concurrent run_task of the same id got there first; answer with its container if it runs.
                if let Some(existing) = self.inspect_task(&name).await?
                    && let Some(started) = running_address(&existing, &spec.network)
                {
                    return Ok(started);
                }
                return Err(DriverError::Create(message_of(&e)));
            }
            Err(e) => return Err(other(e, DriverError::Create)),
        }
        if let Err(e) = self.docker.start_container(&name, None).await {
            let err = other(e, DriverError::Start);
            // Leave nothing half-built; the start error is what matters to the caller.
            let _ = self.force_remove(&name).await;
            return Err(err);
        }
        let Some(inspect) = self.inspect_task(&name).await? else {
            // Removed behind our back between start and inspect: it did start.
            return Ok(StartedTask { ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED), started_at: SystemTime::now() });
        };
        let started_at = inspect
            .state
            .as_ref()
            .and_then(|s| s.started_at.as_deref())
            .and_then(parse_docker_time)
            .unwrap_or_else(SystemTime::now);
        let ip = container_ip(&inspect, &spec.network).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        Ok(StartedTask { ip, started_at })
    }

    /// Follows the container's log (`docker logs --follow --timestamps --since`), reassembling Docker's frames
    /// into lines (`output.rs`); the Engine ends the stream once the container has stopped and its log is read.
    async fn follow_once(&self, task_id: &str, since_ns: Option<i64>) -> Result<OutputFollower, DriverError> {
        let name = container_name(task_id);
        if self.inspect_task(&name).await?.is_none() {
            return Err(DriverError::NotFound(task_id.to_string()));
        }
        let since = since_ns.unwrap_or(i64::MIN);
        // The Engine takes whole seconds here; the lines before `since` in that second are dropped below.
        let since_secs = i32::try_from(since.max(0).div_euclid(1_000_000_000)).unwrap_or(i32::MAX);
        let options = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            since: since_secs,
            timestamps: true,
            ..Default::default()
        };
        let docker = self.docker.clone();
        let (tx, follower) = OutputFollower::channel(1024);
        tokio::spawn(async move {
            let mut frames = docker.logs(&name, Some(options));
            let mut assembler = output::Assembler::default();
            loop {
                let lines = match frames.next().await {
                    Some(Ok(LogOutput::StdOut { message })) => assembler.frame(OutputStream::Stdout, &message),
                    Some(Ok(LogOutput::StdErr { message })) => assembler.frame(OutputStream::Stderr, &message),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        let err = if is_status(&e, 404) {
                            DriverError::NotFound(name.clone())
                        } else {
                            other(e, DriverError::Unavailable)
                        };
                        let _ = tx.send(Err(err)).await;
                        return;
                    }
                    None => {
                        // dockerd also ends every log stream when it stops (with live-restore the container runs
                        // on): only a container that no longer runs has ended its output. A broken stream keeps
                        // its unfinished line; the caller follows again from the last whole one.
                        if still_runs(&docker, &name).await {
                            let closed = format!("the Docker daemon closed the log stream of {name}, which still runs");
                            let _ = tx.send(Err(DriverError::Unavailable(closed))).await;
                            return;
                        }
                        for line in assembler.finish().into_iter().filter(|l| l.timestamp_ns >= since) {
                            if tx.send(Ok(line)).await.is_err() {
                                return;
                            }
                        }
                        return;
                    }
                };
                for line in lines.into_iter().filter(|l| l.timestamp_ns >= since) {
                    if tx.send(Ok(line)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(follower)
    }

    /// Every berth-managed task container, one attempt.
    async fn list_once(&self) -> Result<Vec<ObservedTask>, DriverError> {
        let filters =
            HashMap::from([("label".to_string(), vec![format!("{}=true", labels::MANAGED), labels::TASK.to_string()])]);
        let options = ListContainersOptions { all: true, filters: Some(filters), ..Default::default() };
        let containers = self.docker.list_containers(Some(options)).await.map_err(|e| other(e, DriverError::Create))?;
        let mut tasks = Vec::with_capacity(containers.len());
        for summary in containers {
            if let Some(task) = self.observe(summary).await? {
                tasks.push(task);
            }
        }
        tasks.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        Ok(tasks)
    }
}

/// The address and start time of a container that is running, or `None` if it is not.
fn running_address(c: &ContainerInspectResponse, network: &str) -> Option<StartedTask> {
    let st = c.state.as_ref()?;
    if st.running != Some(true) {
        return None;
    }
    let ip = container_ip(c, network)?;
    let started_at = st.started_at.as_deref().and_then(parse_docker_time).unwrap_or_else(SystemTime::now);
    Some(StartedTask { ip, started_at })
}

fn container_ip(c: &ContainerInspectResponse, network: &str) -> Option<IpAddr> {
    let networks = c.network_settings.as_ref()?.networks.as_ref()?;
    pick_ip(networks, Some(network))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::sizing::TaskSize;

    #[test]
    fn create_body_carries_the_spec() {
        let spec = TaskSpec {
            task_id: "abc".into(),
            labels: BTreeMap::from([(labels::SERVICE.to_string(), "svc".to_string())]),
            image: "berth-demo:latest".into(),
            command: vec![],
            environment: vec![("A".into(), "1".into())],
            size: TaskSize { cpu: 512, memory_mib: 1024 },
            container_port: 80,
            network: "berth-net".into(),
            stop_timeout: Duration::from_secs(30),
            registry_auth: None,
        };
        let body = DockerDriver::create_body(&spec);
        assert_eq!(body.cmd, None);
        assert_eq!(body.env, Some(vec!["A=1".to_string()]));
        assert_eq!(body.stop_timeout, Some(30));
        let l = body.labels.unwrap_or_default();
        assert_eq!(l.get(labels::MANAGED).map(String::as_str), Some("true"));
        assert_eq!(l.get(labels::TASK).map(String::as_str), Some("abc"));
        assert_eq!(l.get(labels::SERVICE).map(String::as_str), Some("svc"));
        let hc = body.host_config.unwrap_or_default();
        assert_eq!(hc.nano_cpus, Some(500_000_000));
        assert_eq!(hc.memory, Some(1024 * 1024 * 1024));
        assert_eq!(hc.init, Some(true));
        assert_eq!(hc.network_mode.as_deref(), Some("berth-net"));

        let with_cmd = DockerDriver::create_body(&TaskSpec { command: vec!["/x".into()], ..spec });
        assert_eq!(with_cmd.cmd, Some(vec!["/x".to_string()]));
    }

    #[tokio::test]
    async fn calls_are_retried_while_the_daemon_is_away_and_no_longer() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let retry =
            Retry { first: Duration::from_millis(1), max: Duration::from_millis(4), total: Duration::from_secs(5) };
        let calls = AtomicU32::new(0);
        // Away for three calls, then back.
        let answer = retry
            .run(|| async {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                if n < 3 { Err(DriverError::Unavailable("gone".into())) } else { Ok(n) }
            })
            .await;
        assert_eq!(answer, Ok(3));
        // Any other error is the answer at once.
        calls.store(0, Ordering::SeqCst);
        let answer: Result<(), _> = retry
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(DriverError::NotFound("t".into()))
            })
            .await;
        assert_eq!((answer, calls.load(Ordering::SeqCst)), (Err(DriverError::NotFound("t".into())), 1));
        // A daemon that stays away: the caller gets Unavailable once the time is up.
        let short = Retry { total: Duration::from_millis(30), ..retry };
        calls.store(0, Ordering::SeqCst);
        let answer: Result<(), _> = short
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(DriverError::Unavailable("gone".into()))
            })
            .await;
        assert_eq!(answer, Err(DriverError::Unavailable("gone".into())));
        assert!(calls.load(Ordering::SeqCst) > 1, "retried before giving up");
    }

    #[test]
    fn a_daemon_without_live_restore_is_warned_about() {
        let warning = |live_restore, swarm| DaemonSettings { live_restore, swarm }.warning();
        assert_eq!(warning(true, false), None);
        let plain = warning(false, false).unwrap_or_default();
        assert!(plain.contains("without live-restore") && plain.contains("scripts/ensure-docker.sh"), "{plain}");
        let swarm = warning(false, true).unwrap_or_default();
        assert!(swarm.contains("swarm mode") && !swarm.contains("ensure-docker"), "{swarm}");
    }

    #[test]
    fn picks_the_tasks_network_ip() {
        let ep = |ip: &str| EndpointSettings { ip_address: Some(ip.to_string()), ..Default::default() };
        let nets = HashMap::from([("a".to_string(), ep("10.0.0.2")), ("b".to_string(), ep("10.1.0.2"))]);
        assert_eq!(pick_ip(&nets, Some("b")), "10.1.0.2".parse().ok());
        assert_eq!(pick_ip(&nets, Some("zzz")), "10.0.0.2".parse().ok());
        assert_eq!(pick_ip(&HashMap::from([("a".to_string(), ep(""))]), Some("a")), None);
    }
}
