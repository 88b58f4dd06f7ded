//! The proxy as bench/proxy drives it, without a server.
//!
//! - `gen <routes> <backend addr> <host> <state file> <cert dir>`: writes a route table (version 1) with
//!   `<routes>` host routes (`<host>`, then `r1.<host>`...) each with its own target group whose one target is
//!   the backend, plus a certificate for `<host>` (also written as PEM to `<cert dir>` for nginx and HAProxy).
//! - `serve <state file> <https addr> <http addr> [metrics addr]`: serves that table (the HTTP listener forwards
//!   too), following a server that is not there, until SIGINT/SIGTERM.
//! - `apply <routes> <backend addr>`: an in-process fake server publishes two different tables of `<routes>`
//!   routes; prints how long each took from publication to being served, and the process's RSS.

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
            let mut config = ProxyConfig::new("http://127.0.0.1:9", "bench", state);
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
        _ => Err("usage: bench_proxy gen|serve|apply ...".into()),
    }
}

/// A fake server whose route watch answers with the latest published table at once.
async fn apply(routes: usize, backend: SocketAddr) -> Result<(), Error> {
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(RouteTable::default()));
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
