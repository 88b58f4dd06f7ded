//! The cost of reading task usage (bench/collect/run.sh): `bench_stats <rounds> <task id>...` reads the usage of the
//! given tasks' containers (`berth-task-<id>`, running) `rounds` times through [`Driver::task_stats`] (cgroup files)
//! and through Docker's one-shot stats API, and prints the wall time per pass and per 100 tasks of each, and the
//! CPU time this process spent per 100 tasks on the cgroup path.

use std::time::{Duration, Instant};

use berth_runtime::Driver;
use berth_runtime_docker::DockerDriver;

type Error = Box<dyn std::error::Error + Send + Sync>;

fn cpu_time() -> Duration {
    // utime + stime of this process, in clock ticks (100/s on Linux).
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).ok_or("usage: bench_stats <rounds> <task id>...")?.parse()?;
    let ids: Vec<String> = args[2..].to_vec();
    let driver = DockerDriver::connect(None).await?;
    // Warm up: the layout and each container's id are found once.
    let first = driver.task_stats(&ids).await?;
    if first.len() != ids.len() {
        return Err(format!("read {} of {} tasks", first.len(), ids.len()).into());
    }
    let per100 = |d: Duration| d.as_secs_f64() * 1e3 / rounds as f64 * 100.0 / ids.len() as f64;

    let (cpu0, t0) = (cpu_time(), Instant::now());
    for _ in 0..rounds {
        let read = driver.task_stats(&ids).await?;
        assert_eq!(read.len(), ids.len());
    }
    let (cgroup_wall, cgroup_cpu) = (t0.elapsed(), cpu_time().saturating_sub(cpu0));

    let api_rounds = rounds.min(5);
    let t1 = Instant::now();
    for _ in 0..api_rounds {
        let read = driver.task_stats_from_api(&ids).await?;
        assert_eq!(read.len(), ids.len());
    }
    let api_wall = t1.elapsed();
    let api_per100 = api_wall.as_secs_f64() * 1e3 / api_rounds as f64 * 100.0 / ids.len() as f64;

    println!("tasks {} rounds {rounds} (api rounds {api_rounds})", ids.len());
    println!(
        "cgroup files: {:.3} ms wall per 100 tasks, {:.3} ms cpu per 100 tasks",
        per100(cgroup_wall),
        per100(cgroup_cpu)
    );
    println!("stats API:    {api_per100:.1} ms wall per 100 tasks");
    println!("api / cgroup wall: {:.0}x", api_per100 / per100(cgroup_wall));
    Ok(())
}
