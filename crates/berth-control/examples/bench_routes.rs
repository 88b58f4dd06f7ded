//! The reconciler at scale, over the in-memory driver (`bench/routes/run.sh` drives it).
//!
//! `bench_routes <services> <passes>`: creates `<services>` Express services (one task each), makes every target
//! healthy as a proxy would report it, then prints, in ms, the p50/p99 of `<passes>` idle reconciler passes and
//! of the passes of one deployment (UpdateExpressGatewayService of one service, passes until its old task is
//! stopped), with a simulated proxy reporting every target healthy at the latest table between passes.

#![allow(clippy::unwrap_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use berth_control::ControlConfig;
use berth_model::ecs::*;
use berth_routes::TargetHealth;

use common::Harness;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn arg(args: &[String], i: usize, default: usize) -> Result<usize, Error> {
    match args.get(i) {
        Some(v) => Ok(v.parse()?),
        None => Ok(default),
    }
}

/// One pass plus the spawned starts and stops it caused; returns the pass's own time.
async fn pass(w: &Harness) -> Duration {
    let started = Instant::now();
    w.control.reconcile_once().await.expect("pass");
    let took = started.elapsed();
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    took
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn print(name: &str, mut times: Vec<Duration>) {
    times.sort();
    println!("{name}_p50_ms {:.2}", percentile(&times, 0.5));
    println!("{name}_p99_ms {:.2}", percentile(&times, 0.99));
    println!("{name}_n {}", times.len());
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let services = arg(&args, 1, 1000)?;
    let passes = arg(&args, 2, 50)?;
    let w = Harness::new("bench-routes", |_| ControlConfig {
        resync_interval: Duration::from_secs(3600),
        ..ControlConfig::default()
    });
    w.create_express_roles().await;
    let started = Instant::now();
    let mut arns = Vec::new();
    for i in 0..services {
        let request = CreateExpressGatewayServiceRequest {
            service_name: Some(format!("svc-{i}")),
            scaling_target: Some(ExpressGatewayScalingTarget { min_task_count: Some(1), ..Default::default() }),
            ..Default::default()
        };
        arns.push(w.create_service(request).await?.service_arn.unwrap_or_default());
    }
    eprintln!("created {services} services in {:.1} s", started.elapsed().as_secs_f64());
    // Start every task, then make every target healthy until nothing moves any more.
    for _ in 0..6 {
        pass(&w).await;
        w.report_as_proxy(TargetHealth::Healthy, 0);
    }
    let table = w.table();
    let targets: usize = table.target_groups.iter().map(|g| g.targets.len()).sum();
    eprintln!(
        "table v{}: {} rules, {} groups, {targets} targets",
        table.version,
        table.rules.len(),
        table.target_groups.len()
    );
    if targets < services {
        return Err(format!("only {targets} targets for {services} services").into());
    }

    let mut idle = Vec::new();
    let before = w.table().version;
    for _ in 0..passes {
        idle.push(pass(&w).await);
        w.report_as_proxy(TargetHealth::Healthy, 0);
    }
    if w.table().version != before {
        eprintln!("note: idle passes published tables {} → {}", before, w.table().version);
    }
    print("idle_pass", idle);

    // One deployment: a new image for one service; passes until its old task is stopped.
    let update = Operation::UpdateExpressGatewayService(UpdateExpressGatewayServiceRequest {
        service_arn: arns.first().cloned(),
        primary_container: Some(ExpressGatewayContainer { image: Some("berth-demo:v2".into()), ..Default::default() }),
        ..Default::default()
    });
    w.control.handle_ecs(&w.caller, update).await?;
    let mut deploying = Vec::new();
    let first_version = w.table().version;
    for _ in 0..400 {
        deploying.push(pass(&w).await);
        w.report_as_proxy(TargetHealth::Healthy, 0);
        let stopped = w.stopped_tasks().await;
        if stopped.iter().any(|t| t.last_status.as_deref() == Some("STOPPED")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!("deployment: {} passes, tables v{} → v{}", deploying.len(), first_version, w.table().version);
    print("deploy_pass", deploying);
    std::fs::remove_dir_all(&w.dir).ok();
    Ok(())
}
