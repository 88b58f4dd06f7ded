//! The store under load (`bench/store/run.sh`, results in BENCHMARKS.md): API latency and throughput with
//! 32 concurrent clients, idle and while 50 Express services reconcile and a FilterLogEvents loop scans a
//! 100,000-event log group. In process, through `Control`'s public API, over the in-memory driver: what is
//! measured is the control plane and its store, not HTTP, SigV4 or a client.
//!
//! Phases, each on a fresh control plane (a store file in a temporary directory) holding 50 Express services
//! and a 100,000-event log group:
//! - `describe idle` / `describe load`: every client calls DescribeExpressGatewayService on one of the 50
//!   services, back to back, for `BENCH_SECONDS`;
//! - `create idle` / `create load`: every client calls CreateExpressGatewayService (new names), for
//!   `BENCH_WRITE_SECONDS`.
//!
//! Each client is an OS thread that hands its request to the runtime as a task (what a server's connection task
//! does) and waits for the answer, back to back: the latency it measures includes any wait for a worker, so a
//! worker blocked on the store shows in every client's numbers (not only in the one request holding it).
//!
//! Idle: the reconciler runs as a server runs it (woken by commands and every second), a proxy reports every
//! target healthy every 200 ms. Load adds: the reconciler woken every 50 ms (passes back to back over the 50
//! services) and one more client calling FilterLogEvents over the whole group (a pattern that matches nothing,
//! so each call scans all 100,000 events), back to back.
//!
//! Output: one markdown table row per phase on stdout. Env: BENCH_DISPATCH (`worker`, the default: the request
//! task calls the control plane itself, as main's server did before issue 10; `blocking`: it hands the call to
//! `spawn_blocking`, as `crates/berth/src/backend.rs` does since), BENCH_SECONDS (default 8), BENCH_WRITE_SECONDS
//! (default 4), BENCH_CLIENTS (default 32), BENCH_SERVICES (default 50), BENCH_EVENTS (default 100000).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use berth_certs::Ca;
use berth_control::{CallerIdentity, Control, ControlConfig};
use berth_model::{ecs, iam, logs};
use berth_routes::{ProxyReport, TargetHealth, TargetReport, TargetState};
use berth_runtime::memory::MemoryDriver;
use berth_store::Store;
use tokio::runtime::{Handle, Runtime};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct World {
    control: Arc<Control>,
    caller: CallerIdentity,
    services: Vec<String>,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn role(control: &Control, caller: &CallerIdentity, name: &str, service: &str, policy: &str) -> String {
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"{service}"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    control
        .handle_iam(
            caller,
            iam::Operation::CreateRole(iam::CreateRoleRequest {
                role_name: Some(name.into()),
                assume_role_policy_document: Some(trust),
                ..Default::default()
            }),
        )
        .await
        .expect("create role");
    control
        .handle_iam(
            caller,
            iam::Operation::AttachRolePolicy(iam::AttachRolePolicyRequest {
                role_name: Some(name.into()),
                policy_arn: Some(format!("arn:aws:iam::aws:policy/service-role/{policy}")),
            }),
        )
        .await
        .expect("attach");
    format!("arn:aws:iam::{}:role/{name}", control.account_id())
}

fn create_request(world_account: &str, name: &str) -> ecs::Operation {
    ecs::Operation::CreateExpressGatewayService(ecs::CreateExpressGatewayServiceRequest {
        service_name: Some(name.into()),
        infrastructure_role_arn: Some(format!("arn:aws:iam::{world_account}:role/infra")),
        execution_role_arn: Some(format!("arn:aws:iam::{world_account}:role/exec")),
        primary_container: Some(ecs::ExpressGatewayContainer {
            image: Some("berth-demo:latest".into()),
            ..Default::default()
        }),
        ..Default::default()
    })
}

async fn world(n_services: u64, n_events: u64) -> World {
    let dir = std::env::temp_dir().join(format!("berth-bench-store-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).expect("dir");
    let store = Store::open(&dir.join("berth.db")).expect("store");
    let driver = Arc::new(MemoryDriver::new());
    let ca = Arc::new(Ca::generate().expect("ca"));
    let control = Control::new(ControlConfig::default(), store, driver, ca).expect("control");
    let caller = CallerIdentity::root(control.account_id());
    role(&control, &caller, "exec", "ecs-tasks.amazonaws.com", "AmazonECSTaskExecutionRolePolicy").await;
    role(&control, &caller, "infra", "ecs.amazonaws.com", "AmazonECSInfrastructureRoleforExpressGatewayServices").await;
    let account = control.account_id().to_string();
    let mut services = Vec::new();
    for i in 0..n_services {
        match control.handle_ecs(&caller, create_request(&account, &format!("svc-{i}"))).await.expect("create") {
            ecs::Output::CreateExpressGatewayService(r) => {
                services.push(r.service.and_then(|s| s.service_arn).expect("arn"))
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let call = |op| {
        let control = Arc::clone(&control);
        let caller = caller.clone();
        async move { control.handle_logs(&caller, op).await.expect("logs") }
    };
    call(logs::Operation::CreateLogGroup(logs::CreateLogGroupRequest {
        log_group_name: Some("bench".into()),
        ..Default::default()
    }))
    .await;
    call(logs::Operation::CreateLogStream(logs::CreateLogStreamRequest {
        log_group_name: Some("bench".into()),
        log_stream_name: Some("app".into()),
    }))
    .await;
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    let start = now_ms - 3_600_000;
    let mut i = 0;
    while i < n_events {
        let batch: Vec<logs::InputLogEvent> = (i..(i + 10_000).min(n_events))
            .map(|j| logs::InputLogEvent {
                timestamp: Some(start + j as i64 * 10),
                message: Some(format!("GET /items/{j} 200 {} ms user-agent=bench request-id={j:016x}", j % 97)),
            })
            .collect();
        i += batch.len() as u64;
        call(logs::Operation::PutLogEvents(logs::PutLogEventsRequest {
            log_group_name: Some("bench".into()),
            log_stream_name: Some("app".into()),
            log_events: Some(batch),
            ..Default::default()
        }))
        .await;
    }
    World { control, caller, services, _dir: TempDir(dir) }
}

fn rand_suffix() -> u64 {
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// What a proxy serving the current table would report: every target healthy, nothing in flight.
fn report_healthy(control: &Control) {
    let table = control.subscribe_routes().borrow().clone();
    let targets = table
        .target_groups
        .iter()
        .flat_map(|g| {
            g.targets.iter().map(move |t| TargetReport {
                target_group: g.id.clone(),
                target: t.id.clone(),
                health: if t.state == TargetState::Draining { TargetHealth::Draining } else { TargetHealth::Healthy },
                reason: None,
                in_flight: 0,
            })
        })
        .collect();
    control.report(ProxyReport { proxy_id: "bench".into(), version: table.version, targets, ..Default::default() });
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Describe,
    Create,
}

struct Outcome {
    latencies: Vec<Duration>,
    errors: u64,
    elapsed: Duration,
    scans: u64,
    scan_time: Duration,
}

/// How the server hands a request to the control plane: on the worker that read it (main's `backend.rs`
/// before issue 10) or on a blocking thread (`spawn_blocking`, `backend.rs` since).
#[derive(Clone, Copy, PartialEq)]
enum Dispatch {
    Worker,
    Blocking,
}

/// Sends one request the way a server's connection task does (a task on the runtime's workers, handing it to the
/// control plane as `dispatch` says) and waits for its answer from outside the runtime, as a client would: the
/// time includes any wait for a worker.
fn call<T: Send + 'static>(rt: &Handle, dispatch: Dispatch, request: impl Future<Output = T> + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let answer = match dispatch {
            Dispatch::Worker => request.await,
            Dispatch::Blocking => {
                let runtime = Handle::current();
                tokio::task::spawn_blocking(move || runtime.block_on(request)).await.expect("handler")
            }
        };
        let _ = tx.send(answer);
    });
    rx.recv().expect("answer")
}

/// What every phase shares.
struct Setup {
    dispatch: Dispatch,
    clients: u64,
    services: u64,
    events: u64,
}

fn phase(rt: &Runtime, setup: &Setup, kind: Kind, load: bool, seconds: u64) -> Outcome {
    let (dispatch, clients, n_services, n_events) = (setup.dispatch, setup.clients, setup.services, setup.events);
    let w = Arc::new(rt.block_on(world(n_services, n_events)));
    let stop = Arc::new(AtomicBool::new(false));
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let reconciler = rt.spawn(Arc::clone(&w.control).run_reconciler(async {
        let _ = shutdown_rx.await;
    }));
    // Let the services' first tasks start and turn healthy before measuring.
    rt.block_on(async {
        for _ in 0..10 {
            report_healthy(&w.control);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut background = Vec::new();
    {
        let (w, stop) = (Arc::clone(&w), Arc::clone(&stop));
        background.push(rt.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                report_healthy(&w.control);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }));
    }
    if load {
        let (w, stop) = (Arc::clone(&w), Arc::clone(&stop));
        background.push(rt.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                w.control.wake();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }));
    }
    let handle = rt.handle().clone();
    let account = w.control.account_id().to_string();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let (outcomes, scans) = std::thread::scope(|scope| {
        let scanner = load.then(|| {
            let (w, handle) = (Arc::clone(&w), handle.clone());
            scope.spawn(move || {
                let (mut scans, mut time) = (0u64, Duration::ZERO);
                while Instant::now() < deadline {
                    let w = Arc::clone(&w);
                    let t = Instant::now();
                    call(&handle, dispatch, async move {
                        let op = logs::Operation::FilterLogEvents(logs::FilterLogEventsRequest {
                            log_group_name: Some("bench".into()),
                            filter_pattern: Some("NOTHING-MATCHES-THIS".into()),
                            ..Default::default()
                        });
                        let _ = w.control.handle_logs(&w.caller, op).await;
                    });
                    time += t.elapsed();
                    scans += 1;
                }
                (scans, time)
            })
        });
        let threads: Vec<_> = (0..clients)
            .map(|c| {
                let (w, handle, account) = (Arc::clone(&w), handle.clone(), account.clone());
                scope.spawn(move || {
                    let mut latencies = Vec::new();
                    let mut errors = 0;
                    let mut i = 0u64;
                    while Instant::now() < deadline {
                        let op = match kind {
                            Kind::Describe => {
                                let arn = &w.services[((c * 7919 + i) % w.services.len() as u64) as usize];
                                ecs::Operation::DescribeExpressGatewayService(
                                    ecs::DescribeExpressGatewayServiceRequest {
                                        service_arn: Some(arn.clone()),
                                        ..Default::default()
                                    },
                                )
                            }
                            Kind::Create => create_request(&account, &format!("w-{c}-{i}")),
                        };
                        let w = Arc::clone(&w);
                        let t = Instant::now();
                        let ok =
                            call(&handle, dispatch, async move { w.control.handle_ecs(&w.caller, op).await.is_ok() });
                        latencies.push(t.elapsed());
                        if !ok {
                            errors += 1;
                        }
                        i += 1;
                    }
                    (latencies, errors)
                })
            })
            .collect();
        let outcomes: Vec<_> = threads.into_iter().map(|t| t.join().expect("client")).collect();
        (outcomes, scanner.map(|s| s.join().expect("scanner")))
    });
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = shutdown_tx.send(());
    rt.block_on(async {
        for b in background {
            let _ = b.await;
        }
        let _ = reconciler.await;
    });
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for (l, e) in outcomes {
        latencies.extend(l);
        errors += e;
    }
    let (scans, scan_time) = scans.unwrap_or_default();
    Outcome { latencies, errors, elapsed, scans, scan_time }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let seconds = env("BENCH_SECONDS", 8);
    let write_seconds = env("BENCH_WRITE_SECONDS", 4);
    let clients = env("BENCH_CLIENTS", 32);
    let services = env("BENCH_SERVICES", 50);
    let events = env("BENCH_EVENTS", 100_000);
    let dispatch = match std::env::var("BENCH_DISPATCH").as_deref() {
        Ok("blocking") => Dispatch::Blocking,
        Ok("worker") | Err(_) => Dispatch::Worker,
        Ok(other) => panic!("BENCH_DISPATCH is worker or blocking, not {other}"),
    };
    let setup = Setup { dispatch, clients, services, events };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    println!(
        "| phase | requests | errors | requests/s | p50 ms | p99 ms | max ms | FilterLogEvents calls | mean scan ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, kind, load, secs) in [
        ("describe idle", Kind::Describe, false, seconds),
        ("describe load", Kind::Describe, true, seconds),
        ("create idle", Kind::Create, false, write_seconds),
        ("create load", Kind::Create, true, write_seconds),
    ] {
        let mut o = phase(&rt, &setup, kind, load, secs);
        o.latencies.sort();
        let n = o.latencies.len();
        let pct =
            |p: f64| o.latencies.get(((n as f64 * p) as usize).min(n.saturating_sub(1))).copied().unwrap_or_default();
        let mean_scan = if o.scans > 0 { ms(o.scan_time) / o.scans as f64 } else { 0.0 };
        println!(
            "| {name} | {n} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {:.1} |",
            o.errors,
            n as f64 / o.elapsed.as_secs_f64(),
            ms(pct(0.50)),
            ms(pct(0.99)),
            ms(o.latencies.last().copied().unwrap_or_default()),
            o.scans,
            mean_scan,
        );
    }
}
