//! The proxy as bench/proxy drives it, without a server.
//!
//! - `gen <routes> <backend addr> <host> <state file> <cert dir>`: writes a route table (version 1) with
//!   `<routes>` host routes (`<host>`, then `r1.<host>`...) each with its own target group whose one target is
//!   the backend, plus a certificate for `<host>` (also written as PEM to `<cert dir>` for nginx and HAProxy).
//! - `serve <state file> <https addr> <http addr> [metrics addr]`: serves that table (the HTTP listener forwards
//!   too), following a server that is not there, until SIGINT/SIGTERM.
//! - `apply <routes> <backend addr>`: an in-process fake server publishes two different tables of `<routes>`
//!   routes; prints how long each took from publication to being served, and the process's RSS.
//! - `apply-one <routes> <changes>`: an in-process fake server publishes a table shaped as berth's server builds
//!   it (`<routes>` host-header rules on load balancers of 25, two target groups per service, one target each
//!   on an in-process backend, a certificate per host), then `<changes>` tables that each replace the target
//!   of one group (a deployment step); prints the p50/p99 time from publication to being served.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_proxy::{Proxy, ProxyConfig};
use berth_routes::{
    Certificate, HealthCheck, HostRoute, ROUTES_PATH, RouteTable, Target, TargetGroup, TargetState, WeightedTargetGroup,
};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn table(
    version: u64,
    routes: usize,
    backend: SocketAddr,
    host: &str,
    cert: Option<&berth_certs::IssuedCert>,
) -> RouteTable {
    let mut t = RouteTable { version, ..RouteTable::default() };
    if let Some(c) = cert {
        t.certificates.push(Certificate {
            id: "bench".into(),
            hosts: vec![host.into()],
            cert_pem: c.cert_pem.clone(),
            key_pem: c.key_pem.clone(),
        });
    }
    for i in 0..routes {
        let name = if i == 0 { host.to_owned() } else { format!("r{i}.{host}") };
        let tg =
            format!("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/bench-{i}-v{version}/{i:016x}");
        t.hosts.push(HostRoute {
            host: name,
            service: format!("arn:aws:ecs:us-east-1:000000000000:service/bench/svc-{i}"),
            forward: vec![WeightedTargetGroup { target_group: tg.clone(), weight: 100 }],
        });
        t.target_groups.push(TargetGroup {
            id: tg,
            health_check: HealthCheck {
                path: "/".into(),
                interval_secs: 10,
                healthy_threshold: 2,
                ..HealthCheck::default()
            },
            targets: vec![Target { id: format!("task-{i}"), addr: backend, state: TargetState::Registered }],
            ..TargetGroup::default()
        });
    }
    t
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:").map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
            })
        })
        .unwrap_or(0)
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> Result<T, Error> {
    args.get(i).ok_or_else(|| format!("missing {what}"))?.parse::<T>().map_err(|_| format!("invalid {what}").into())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("gen") => {
            let routes: usize = arg(&args, 2, "routes")?;
            let backend: SocketAddr = arg(&args, 3, "backend")?;
            let host: String = arg(&args, 4, "host")?;
            let state: PathBuf = arg(&args, 5, "state file")?;
            let certs: PathBuf = arg(&args, 6, "cert dir")?;
            let ca = berth_certs::Ca::generate()?;
            let cert = ca.issue(std::slice::from_ref(&host), &[])?;
            std::fs::create_dir_all(&certs)?;
            std::fs::write(certs.join("cert.pem"), &cert.cert_pem)?;
            std::fs::write(certs.join("key.pem"), &cert.key_pem)?;
            std::fs::write(certs.join("combined.pem"), format!("{}{}", cert.cert_pem, cert.key_pem))?;
            let t = table(1, routes, backend, &host, Some(&cert));
            std::fs::write(&state, serde_json::to_vec(&t)?)?;
            Ok(())
        }
        Some("serve") => {
            let state: PathBuf = arg(&args, 2, "state file")?;
            // BERTH_BENCH_METRICS=on|off: an in-process fake server takes the reports (every second), which carry
            // metric deltas or not (bench/collect); unset: reports go to a server that is not there.
            let metrics = std::env::var("BERTH_BENCH_METRICS").ok();
            let server = match metrics {
                Some(_) => {
                    let table: RouteTable = serde_json::from_slice(&std::fs::read(&state)?)?;
                    let (tx, rx) = tokio::sync::watch::channel(Arc::new(table));
                    std::mem::forget(tx);
                    format!("http://{}", fake_server(rx).await?)
                }
                None => "http://127.0.0.1:9".to_owned(),
            };
            let mut config = ProxyConfig::new(server, "bench", state);
            config.report_metrics = metrics.as_deref() != Some("off");
            config.https_listen = arg(&args, 3, "https addr")?;
            config.http_listen = arg(&args, 4, "http addr")?;
            config.http_forward = true;
            config.metrics_listen = args.get(5).map(|a| a.parse()).transpose()?;
            config.access_log = std::env::var_os("BERTH_BENCH_ACCESS_LOG").map(PathBuf::from);
            let proxy = Proxy::start(config).await?;
            eprintln!("serving table version {}", proxy.table_version());
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            proxy.stop().await;
            Ok(())
        }
        Some("apply") => apply(arg(&args, 2, "routes")?, arg(&args, 3, "backend")?).await,
        Some("apply-one") => apply_one(arg(&args, 2, "routes")?, arg(&args, 3, "changes")?).await,
        _ => Err("usage: bench_proxy gen|serve|apply ...".into()),
    }
}

/// A fake server whose route watch answers with the latest table `rx` holds at once; returns its address.
async fn fake_server(rx: tokio::sync::watch::Receiver<Arc<RouteTable>>) -> Result<SocketAddr, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let rx = rx.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let mut rx = rx.clone();
                    async move {
                        let after: u64 = req
                            .uri()
                            .query()
                            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("after=")))
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        let mut response = http::Response::new(Full::new(Bytes::new()));
                        if req.uri().path() != ROUTES_PATH {
                            *response.status_mut() = http::StatusCode::NO_CONTENT;
                            return Ok::<_, std::convert::Infallible>(response);
                        }
                        let table = loop {
                            let t = rx.borrow_and_update().clone();
                            if t.version > after {
                                break Some(t);
                            }
                            if tokio::time::timeout(Duration::from_secs(20), rx.changed()).await.is_err() {
                                break None;
                            }
                        };
                        match table {
                            Some(t) => {
                                *response.body_mut() =
                                    Full::new(Bytes::from(serde_json::to_vec(&*t).unwrap_or_default()))
                            }
                            None => *response.status_mut() = http::StatusCode::NO_CONTENT,
                        }
                        Ok(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
            });
        }
    });
    Ok(addr)
}

/// A fake server whose route watch answers with the latest published table at once.
async fn apply(routes: usize, backend: SocketAddr) -> Result<(), Error> {
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(RouteTable::default()));
    let addr = fake_server(rx).await?;
    let dir = std::env::temp_dir().join(format!("berth-bench-apply-{}", std::process::id()));
    let mut config = ProxyConfig::new(format!("http://{addr}"), "bench", dir.join("routes.json"));
    config.https_listen = "127.0.0.1:0".parse()?;
    config.http_listen = "127.0.0.1:0".parse()?;
    let proxy = Proxy::start(config).await?;
    let rss_empty = rss_kib();
    let ca = berth_certs::Ca::generate()?;
    let cert = ca.issue(&["bench.localhost".to_owned()], &[])?;
    for version in 1..=3u64 {
        let t = Arc::new(table(version, routes, backend, "bench.localhost", Some(&cert)));
        let started = Instant::now();
        tx.send_replace(t);
        while proxy.table_version() < version {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        println!("apply_v{version}_ms {:.1}", started.elapsed().as_secs_f64() * 1e3);
    }
    // Let the probers settle, then measure.
    tokio::time::sleep(Duration::from_secs(2)).await;
    println!("rss_empty_kib {rss_empty}");
    println!("rss_loaded_kib {}", rss_kib());
    proxy.stop().await;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// A backend answering 200 to everything (the health checks), on loopback.
async fn backend() -> Result<SocketAddr, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = service_fn(|_req: http::Request<hyper::body::Incoming>| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service).await;
            });
        }
    });
    Ok(addr)
}

/// A table as berth's server builds it for `routes` Express services: service `i` has host
/// `svc-<i>.bench.localhost`, a host-header rule at priority `i + 1` forwarding 100/0 to its groups `a`/`b` on
/// load balancer `i / 25`, its own certificate, and one target in group `a` (`targets[i]`, on `backend`).
fn express_table(
    version: u64,
    backend: SocketAddr,
    certs: &[(String, berth_certs::IssuedCert)],
    targets: &[String],
) -> RouteTable {
    use berth_routes::{Condition, LoadBalancer, Rule, RuleAction};
    let mut t = RouteTable { version, stickiness_key: "00".repeat(32), ..RouteTable::default() };
    let group = |i: usize, side: &str| {
        format!("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/svc-{i}-{side}/{i:016x}")
    };
    let lb = |i: usize| format!("arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/lb-{}/x", i / 25);
    for (i, (host, cert)) in certs.iter().enumerate() {
        t.certificates.push(Certificate {
            id: host.clone(),
            hosts: vec![host.clone()],
            cert_pem: cert.cert_pem.clone(),
            key_pem: cert.key_pem.clone(),
        });
        t.rules.push(Rule {
            arn: format!("arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/app/r/{i}"),
            priority: i as u32 + 1,
            conditions: vec![Condition::HostHeader { values: vec![host.clone()] }],
            actions: vec![RuleAction::Forward {
                target_groups: vec![
                    WeightedTargetGroup { target_group: group(i, "a"), weight: 100 },
                    WeightedTargetGroup { target_group: group(i, "b"), weight: 0 },
                ],
                stickiness: None,
            }],
            load_balancer: Some(lb(i)),
        });
        if i % 25 == 0 {
            t.load_balancers.push(LoadBalancer { arn: lb(i), ..LoadBalancer::default() });
        }
        if let Some(l) = t.load_balancers.last_mut() {
            l.hosts.push(host.clone());
        }
        let check = HealthCheck { path: "/ping".into(), ..HealthCheck::default() };
        t.target_groups.push(TargetGroup {
            id: group(i, "a"),
            health_check: check.clone(),
            targets: vec![Target { id: targets[i].clone(), addr: backend, state: TargetState::Registered }],
            ..TargetGroup::default()
        });
        t.target_groups.push(TargetGroup { id: group(i, "b"), health_check: check, ..TargetGroup::default() });
    }
    t.target_groups.sort_by(|a, b| a.id.cmp(&b.id));
    t
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len().max(1) as f64 - 1.0) * p).round() as usize;
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// Publishes a berth-shaped table of `routes` services, then `changes` tables that each replace one group's
/// target; prints the time each took from publication to being served (first, then p50/p99 of the changes).
async fn apply_one(routes: usize, changes: usize) -> Result<(), Error> {
    let backend = backend().await?;
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(RouteTable::default()));
    let addr = fake_server(rx).await?;
    let dir = std::env::temp_dir().join(format!("berth-bench-apply-one-{}", std::process::id()));
    let mut config = ProxyConfig::new(format!("http://{addr}"), "bench", dir.join("routes.json"));
    config.https_listen = "127.0.0.1:0".parse()?;
    config.http_listen = "127.0.0.1:0".parse()?;
    let proxy = Proxy::start(config).await?;
    let ca = berth_certs::Ca::generate()?;
    let mut certs = Vec::new();
    for i in 0..routes {
        let host = format!("svc-{i}.bench.localhost");
        let cert = ca.issue(std::slice::from_ref(&host), &[])?;
        certs.push((host, cert));
    }
    let mut targets: Vec<String> =
        (0..routes).map(|i| format!("arn:aws:ecs:us-east-1:000000000000:task/default/{i:032x}")).collect();
    let publish = |version: u64, targets: &[String]| {
        let t = Arc::new(express_table(version, backend, &certs, targets));
        let started = Instant::now();
        tx.send_replace(t);
        started
    };
    let wait = |version: u64, started: Instant| {
        let proxy = &proxy;
        async move {
            while proxy.table_version() < version {
                tokio::time::sleep(Duration::from_micros(100)).await;
            }
            started.elapsed()
        }
    };
    let started = publish(1, &targets);
    let first = wait(1, started).await;
    println!("apply_first_ms {:.1}", first.as_secs_f64() * 1e3);
    // Every target's first health checks, before the measured changes.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // The gap between tables (ms): BENCH_APPLY_GAP_MS, default 150 (older proxies wait 100 ms after each table).
    let gap_ms: u64 = std::env::var("BENCH_APPLY_GAP_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(150);
    let mut times = Vec::new();
    for k in 0..changes {
        let i = (k * 37) % routes;
        targets[i] = format!("arn:aws:ecs:us-east-1:000000000000:task/default/{:016x}{:016x}", k + 1, i);
        let version = k as u64 + 2;
        let started = publish(version, &targets);
        times.push(wait(version, started).await);
        // A new target is probed every 20 ms until healthy: let it settle like a real deployment step would.
        tokio::time::sleep(Duration::from_millis(gap_ms)).await;
    }
    times.sort();
    println!("apply_one_p50_ms {:.1}", percentile_ms(&times, 0.5));
    println!("apply_one_p99_ms {:.1}", percentile_ms(&times, 0.99));
    println!("apply_one_n {}", times.len());
    proxy.stop().await;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
