//! Integration tests against the real Docker Engine, using the demo image `berth-demo:latest`
//! (build it with `scripts/build-demo.sh`).
//!
//! Without a reachable daemon (or without the demo image) each test prints a skip message and passes, unless
//! `BERTH_REQUIRE_DOCKER=1` is set, in which case it fails. `BERTH_DOCKER_SOCKET` overrides the socket.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_core::sizing::TaskSize;
use berth_runtime::{Driver, DriverError, ObservedState, ObservedTask, TaskSpec, labels};
use berth_runtime_docker::{DockerDriver, container_name};
use bollard::Docker;
use bollard::query_parameters::{InspectContainerOptions, ListNetworksOptions, RemoveContainerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DEMO_IMAGE: &str = "berth-demo:latest";

fn socket() -> String {
    std::env::var("BERTH_DOCKER_SOCKET").unwrap_or_else(|_| berth_runtime_docker::DEFAULT_SOCKET.to_string())
}

fn require_docker() -> bool {
    std::env::var("BERTH_REQUIRE_DOCKER").is_ok_and(|v| v == "1")
}

/// Prints a skip notice straight to stderr, past the test harness's output capture, so it is always seen.
fn skip(message: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

/// A driver, or `None` (after printing why) when the test should be skipped.
async fn driver(test: &str) -> Option<DockerDriver> {
    let driver = match DockerDriver::connect(Some(&socket())).await {
        Ok(d) => d,
        Err(e) => {
            assert!(!require_docker(), "BERTH_REQUIRE_DOCKER=1 but Docker is unreachable: {e}");
            skip(&format!("SKIP {test}: Docker is unreachable ({e}); set BERTH_REQUIRE_DOCKER=1 to make this fail"));
            return None;
        }
    };
    if let Err(e) = raw().await.inspect_image(DEMO_IMAGE).await {
        assert!(
            !require_docker(),
            "BERTH_REQUIRE_DOCKER=1 but {DEMO_IMAGE} is missing ({e}); run scripts/build-demo.sh"
        );
        skip(&format!("SKIP {test}: {DEMO_IMAGE} is missing ({e}); run scripts/build-demo.sh"));
        return None;
    }
    Some(driver)
}

/// A bare bollard client for checking what the driver did.
async fn raw() -> Docker {
    let docker = Docker::connect_with_unix(&socket(), 60, bollard::API_DEFAULT_VERSION)
        .unwrap_or_else(|e| panic!("docker client: {e}"));
    docker.negotiate_version().await.unwrap_or_else(|e| panic!("negotiate: {e}"))
}

/// A unique 32-hex id per call.
fn unique_id() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("{:016x}{:08x}{:08x}", nanos as u64, std::process::id(), n)
}

/// Removes the test's containers and network when dropped, even if the test panicked.
struct Cleanup {
    containers: Vec<String>,
    networks: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let containers = std::mem::take(&mut self.containers);
        let networks = std::mem::take(&mut self.networks);
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async {
                let docker = raw().await;
                for c in containers {
                    let opts = RemoveContainerOptions { force: true, v: true, ..Default::default() };
                    let _ = docker.remove_container(&c, Some(opts)).await;
                }
                for n in networks {
                    // Remove by id: a duplicated name is ambiguous to the Engine.
                    for id in network_ids(&docker, &n).await {
                        let _ = docker.remove_network(&id).await;
                    }
                }
            });
        })
        .join();
    }
}

/// The ids of the networks named exactly `name`.
async fn network_ids(docker: &Docker, name: &str) -> Vec<String> {
    let options = ListNetworksOptions {
        filters: Some(std::collections::HashMap::from([("name".to_string(), vec![name.to_string()])])),
    };
    let networks = docker.list_networks(Some(options)).await.unwrap_or_default();
    networks.into_iter().filter(|n| n.name.as_deref() == Some(name)).filter_map(|n| n.id).collect()
}

fn spec(task_id: &str, network: &str, test: &str) -> TaskSpec {
    TaskSpec {
        task_id: task_id.to_string(),
        labels: BTreeMap::from([
            (labels::MANAGED.to_string(), "true".to_string()),
            (labels::CLUSTER.to_string(), "default".to_string()),
            (labels::SERVICE.to_string(), format!("test-{test}")),
            (labels::REVISION.to_string(), "1".to_string()),
            (labels::TASK.to_string(), task_id.to_string()),
            (labels::TASK_ARN.to_string(), format!("arn:aws:ecs:us-east-1:000000000000:task/default/{task_id}")),
        ]),
        image: DEMO_IMAGE.to_string(),
        command: vec![],
        environment: vec![("DEMO_VERSION".to_string(), format!("test-{test}"))],
        size: TaskSize { cpu: 256, memory_mib: 512 },
        container_port: 80,
        network: network.to_string(),
        stop_timeout: Duration::from_secs(10),
        registry_auth: None,
    }
}

/// Sets up a fresh network for one test.
async fn setup(test: &str) -> Option<(DockerDriver, String, Cleanup)> {
    let driver = driver(test).await?;
    let network = format!("berth-test-{}", unique_id());
    let cleanup = Cleanup { containers: vec![], networks: vec![network.clone()] };
    driver.ensure_network(&network).await.unwrap_or_else(|e| panic!("ensure_network: {e}"));
    Some((driver, network, cleanup))
}

async fn find(driver: &DockerDriver, task_id: &str) -> Option<ObservedTask> {
    let tasks = driver.list_tasks().await.unwrap_or_else(|e| panic!("list_tasks: {e}"));
    tasks.into_iter().find(|t| t.task_id == task_id)
}

/// GETs `path` from `ip:80` (retrying briefly while the app starts) and returns the status and head.
async fn http_get(ip: IpAddr, path: &str) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match try_get(ip, path).await {
            Ok(r) => return r,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("GET http://{ip}{path}: {e}"),
        }
    }
}

async fn try_get(ip: IpAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect((ip, 80))).await??;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: {ip}\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await??;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, text))
}

#[tokio::test]
async fn run_reach_list_stop() {
    let Some((driver, network, mut cleanup)) = setup("run_reach_list_stop").await else { return };
    assert_eq!(driver.api_version(), raw().await.client_version().to_string());
    driver.ensure_network(&network).await.unwrap_or_else(|e| panic!("ensure_network again: {e}"));
    let id = unique_id();
    cleanup.containers.push(container_name(&id));
    let spec = spec(&id, &network, "run_reach_list_stop");

    let t0 = Instant::now();
    let started = driver.run_task(&spec).await.unwrap_or_else(|e| panic!("run_task: {e}"));
    let run_latency = t0.elapsed();
    let (status, head) = http_get(started.ip, "/ping").await;
    let reachable_latency = t0.elapsed();
    eprintln!("run_task returned {} in {run_latency:?}; /ping answered after {reachable_latency:?}", started.ip);
    assert_eq!(status, 200, "{head}");
    assert!(head.ends_with("pong"), "{head}");
    assert!(head.contains("x-demo-version: test-run_reach_list_stop"), "{head}");
    assert!(started.started_at <= SystemTime::now());

    // Idempotent: the same task id answers with the running container.
    let again = driver.run_task(&spec).await.unwrap_or_else(|e| panic!("run_task again: {e}"));
    assert_eq!(again, started);

    let observed = find(&driver, &id).await.unwrap_or_else(|| panic!("task {id} not listed"));
    assert_eq!(observed.state, ObservedState::Running);
    assert_eq!(observed.ip, Some(started.ip));
    assert!(observed.started_at.is_some());
    for (k, v) in &spec.labels {
        assert_eq!(observed.labels.get(k), Some(v), "label {k}");
    }

    let t1 = Instant::now();
    driver.stop_task(&id, Duration::from_secs(10)).await.unwrap_or_else(|e| panic!("stop_task: {e}"));
    let stop_latency = t1.elapsed();
    eprintln!("stop_task took {stop_latency:?}");
    // With an init process the FROM-scratch app dies on SIGTERM instead of waiting for the SIGKILL.
    assert!(stop_latency < Duration::from_secs(5), "stop took {stop_latency:?}");
    assert!(find(&driver, &id).await.is_none(), "task still listed after stop");
    let gone = raw().await.inspect_container(&container_name(&id), None::<InspectContainerOptions>).await;
    assert!(gone.is_err(), "container still exists after stop");

    // Stopping or removing what is gone succeeds.
    driver.stop_task(&id, Duration::from_secs(1)).await.unwrap_or_else(|e| panic!("stop_task again: {e}"));
    driver.remove_task(&id).await.unwrap_or_else(|e| panic!("remove_task: {e}"));
}

#[tokio::test]
async fn missing_image_is_a_pull_error_and_leaves_nothing() {
    let Some((driver, network, mut cleanup)) = setup("missing_image").await else { return };
    let id = unique_id();
    cleanup.containers.push(container_name(&id));
    let spec = TaskSpec { image: "berth-no-such-image:nope".to_string(), ..spec(&id, &network, "missing_image") };
    let t0 = Instant::now();
    let err = driver.run_task(&spec).await.err();
    eprintln!("pull failure took {:?}: {err:?}", t0.elapsed());
    match err {
        Some(DriverError::ImagePull { image, message }) => {
            assert_eq!(image, "berth-no-such-image:nope");
            assert!(!message.is_empty());
        }
        other => panic!("expected ImagePull, got {other:?}"),
    }
    assert!(find(&driver, &id).await.is_none());
    let gone = raw().await.inspect_container(&container_name(&id), None::<InspectContainerOptions>).await;
    assert!(gone.is_err(), "a container was left behind");
}

#[tokio::test]
async fn missing_network_is_a_create_error_and_leaves_nothing() {
    let Some(driver) = driver("missing_network").await else { return };
    let id = unique_id();
    let _cleanup = Cleanup { containers: vec![container_name(&id)], networks: vec![] };
    let spec = spec(&id, &format!("berth-test-missing-{id}"), "missing_network");
    match driver.run_task(&spec).await {
        Err(DriverError::Create(m) | DriverError::Start(m)) => assert!(m.contains("network"), "{m}"),
        other => panic!("expected a create or start error, got {other:?}"),
    }
    let gone = raw().await.inspect_container(&container_name(&id), None::<InspectContainerOptions>).await;
    assert!(gone.is_err(), "a container was left behind");
}

#[tokio::test]
async fn exited_task_reports_its_exit_code() {
    let Some((driver, network, mut cleanup)) = setup("exit_code").await else { return };
    let id = unique_id();
    cleanup.containers.push(container_name(&id));
    let mut spec = spec(&id, &network, "exit_code");
    spec.environment.push(("DEMO_EXIT_CODE".to_string(), "3".to_string()));
    let crashed = driver.run_task(&spec).await.unwrap_or_else(|e| panic!("run_task of a crashing task: {e}"));
    eprintln!("run_task of a task that exits at once returned {crashed:?}");

    let deadline = Instant::now() + Duration::from_secs(15);
    let observed = loop {
        match find(&driver, &id).await {
            Some(t) if matches!(t.state, ObservedState::Exited { .. }) => break t,
            other if Instant::now() > deadline => panic!("task did not exit in time: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    match observed.state {
        ObservedState::Exited { exit_code, finished_at, error } => {
            assert_eq!(exit_code, 3);
            assert!(finished_at.is_some());
            assert_eq!(error, None);
        }
        other => panic!("unexpected state {other:?}"),
    }
    assert_eq!(observed.labels.get(labels::SERVICE).map(String::as_str), Some("test-exit_code"));

    // Running the same task id again replaces the exited container.
    spec.environment.retain(|(k, _)| k != "DEMO_EXIT_CODE");
    let started = driver.run_task(&spec).await.unwrap_or_else(|e| panic!("rerun: {e}"));
    assert_eq!(http_get(started.ip, "/ping").await.0, 200);

    driver.remove_task(&id).await.unwrap_or_else(|e| panic!("remove_task: {e}"));
    assert!(find(&driver, &id).await.is_none());
}

#[tokio::test]
async fn limits_and_settings_are_applied() {
    let Some((driver, network, mut cleanup)) = setup("limits").await else { return };
    let id = unique_id();
    cleanup.containers.push(container_name(&id));
    let mut spec = spec(&id, &network, "limits");
    spec.size = TaskSize { cpu: 512, memory_mib: 1024 };
    spec.command = vec!["ignored-arg".to_string()];
    spec.stop_timeout = Duration::from_secs(42);
    driver.run_task(&spec).await.unwrap_or_else(|e| panic!("run_task: {e}"));

    let c = raw()
        .await
        .inspect_container(&container_name(&id), None::<InspectContainerOptions>)
        .await
        .unwrap_or_else(|e| panic!("inspect: {e}"));
    let hc = c.host_config.unwrap_or_default();
    assert_eq!(hc.nano_cpus, Some(500_000_000));
    assert_eq!(hc.memory, Some(1024 * 1024 * 1024));
    assert_eq!(hc.init, Some(true));
    assert_eq!(hc.network_mode.as_deref(), Some(network.as_str()));
    assert_eq!(hc.restart_policy.and_then(|r| r.name).map(|n| n.to_string()).as_deref(), Some("no"));
    let log = hc.log_config.unwrap_or_default();
    assert_eq!(log.typ.as_deref(), Some("json-file"));
    assert!(log.config.unwrap_or_default().contains_key("max-size"));
    let config = c.config.unwrap_or_default();
    assert_eq!(config.stop_timeout, Some(42));
    assert_eq!(config.cmd, Some(vec!["ignored-arg".to_string()]));
    assert!(config.env.unwrap_or_default().contains(&"DEMO_VERSION=test-limits".to_string()));
    assert_eq!(config.labels.unwrap_or_default().get(labels::MANAGED).map(String::as_str), Some("true"));

    driver.stop_task(&id, Duration::from_secs(5)).await.unwrap_or_else(|e| panic!("stop_task: {e}"));
}

#[tokio::test]
async fn concurrent_ensure_network_leaves_one_network() {
    let Some(driver) = driver("concurrent_network").await else { return };
    // Separate drivers have separate in-process locks, like separate berth processes.
    let mut drivers = vec![driver];
    for _ in 0..3 {
        drivers.push(DockerDriver::connect(Some(&socket())).await.unwrap_or_else(|e| panic!("connect: {e}")));
    }
    for round in 0..3 {
        let name = format!("berth-test-{}", unique_id());
        let _cleanup = Cleanup { containers: vec![], networks: vec![name.clone()] };
        let results = futures_util::future::join_all(drivers.iter().map(|d| d.ensure_network(&name))).await;
        for r in results {
            r.unwrap_or_else(|e| panic!("ensure_network: {e}"));
        }
        let docker = raw().await;
        let ids = network_ids(&docker, &name).await;
        assert_eq!(ids.len(), 1, "round {round}: {ids:?}");
        let network = docker
            .inspect_network(&name, None::<bollard::query_parameters::InspectNetworkOptions>)
            .await
            .unwrap_or_else(|e| panic!("inspect: {e}"));
        assert_eq!(network.labels.unwrap_or_default().get(labels::MANAGED).map(String::as_str), Some("true"));
        assert_eq!(network.driver.as_deref(), Some("bridge"));
    }
}

#[tokio::test]
async fn unreachable_daemon_is_unavailable() {
    match DockerDriver::connect(Some("/nonexistent/berth-docker.sock")).await {
        Err(DriverError::Unavailable(m)) => assert!(m.contains("/nonexistent/berth-docker.sock"), "{m}"),
        other => panic!("expected Unavailable, got {:?}", other.map(|_| "a driver")),
    }
}

/// The follower's next line (within 10 s).
async fn next(f: &mut berth_runtime::OutputFollower) -> berth_runtime::OutputLine {
    match tokio::time::timeout(Duration::from_secs(10), f.next()).await {
        Ok(Some(Ok(line))) => line,
        other => panic!("no line: {other:?}"),
    }
}

#[tokio::test]
async fn output_is_followed_until_the_halted_container_is_drained() {
    let Some((driver, network, mut cleanup)) = setup("output").await else { return };
    let id = unique_id();
    cleanup.containers.push(container_name(&id));
    let started = driver.run_task(&spec(&id, &network, "output")).await.unwrap_or_else(|e| panic!("run_task: {e}"));
    let mut follower = driver.follow_output(&id, None).await.unwrap_or_else(|e| panic!("follow_output: {e}"));
    assert_eq!(driver.task_state(&id).await, Ok(Some(ObservedState::Running)));
    // The demo says where it listens, then one line per request, on stdout.
    let first = next(&mut follower).await;
    assert!(first.line.contains("listening on"), "{first:?}");
    assert_eq!(first.stream, berth_runtime::OutputStream::Stdout);
    let now_ns = SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0);
    assert!((now_ns - first.timestamp_ns).abs() < 60_000_000_000, "{first:?} vs {now_ns}");
    assert_eq!(http_get(started.ip, "/ping?first").await.0, 200);
    let request = next(&mut follower).await;
    assert!(request.line.contains("\"GET /ping?first\" 200"), "{request:?}");
    assert!(request.timestamp_ns >= first.timestamp_ns);

    // From an instant: only what came at or after it.
    let mut later =
        driver.follow_output(&id, Some(request.timestamp_ns)).await.unwrap_or_else(|e| panic!("follow: {e}"));
    assert_eq!(next(&mut later).await, request);

    // Halted, the container stays and the output ends once drained.
    assert_eq!(http_get(started.ip, "/ping?last").await.0, 200);
    driver.halt_task(&id, Duration::from_secs(5)).await.unwrap_or_else(|e| panic!("halt_task: {e}"));
    let mut rest = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), follower.next()).await {
            Ok(Some(Ok(line))) => rest.push(line.line),
            Ok(None) => break,
            other => panic!("follower did not end: {other:?}"),
        }
    }
    assert!(rest.iter().any(|l| l.contains("/ping?last")), "{rest:?}");
    assert!(matches!(find(&driver, &id).await.map(|t| t.state), Some(ObservedState::Exited { .. })));
    assert!(matches!(driver.task_state(&id).await, Ok(Some(ObservedState::Exited { .. }))));
    // A halted container's output can still be read whole.
    let mut again = driver.follow_output(&id, None).await.unwrap_or_else(|e| panic!("follow halted: {e}"));
    let mut count = 0;
    while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(10), again.next()).await {
        count += 1;
    }
    assert!(count >= 3, "{count}");
    driver.remove_task(&id).await.unwrap_or_else(|e| panic!("remove_task: {e}"));
    assert!(matches!(driver.follow_output(&id, None).await, Err(berth_runtime::DriverError::NotFound(_))));
    assert_eq!(driver.task_state(&id).await, Ok(None));
}
