//! The metric store under load (`bench/metrics/run.sh`, results in BENCHMARKS.md). In process, through `Control`'s
//! public API over the in-memory driver and a store file in a temporary directory: what is measured is the control
//! plane and its store (validation, the write buffer, the flusher's transactions, roll-up, reads), not HTTP, SigV4
//! or a client. The flusher runs as the server runs it (`Control::run_metrics`: every second).
//!
//! Phases:
//! - `ingest`: PutMetricData requests (20 datums of one value each, over 1,000 series) and `record_metrics` calls
//!   (100 samples of a 5-value per-interval histogram each, over 1,000 series, as a proxy's report feeds it), each
//!   paced at 10,000 datapoints/s for `BENCH_SECONDS`, then unpaced: process CPU (user + system, every thread:
//!   the flusher included) per second of wall time, and the unpaced throughput.
//! - `storage`: 100 standard series with one sample every 10 s for one day (stamped 13 days ago: the 1-minute
//!   tier) and 20 high-resolution series with one sample per second for 3 hours (the 1-second tier); the store's
//!   used bytes (pages in use × page size, after a checkpoint, minus the empty store's) per series per day of data
//!   in each tier, as roll-up (run with a clock moved forward) moves the data into 5-minute and 1-hour aggregates.
//! - `get`: GetMetricStatistics and GetMetricData latency (median, p99 of `BENCH_GETS` calls) over the stored data.
//!
//! Output: markdown on stdout. Env: BENCH_SECONDS (default 5), BENCH_GETS (default 200).

use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_certs::Ca;
use berth_control::cloudwatch::Sample;
use berth_control::{CallerIdentity, Control, ControlConfig};
use berth_model::Timestamp;
use berth_model::cloudwatch::{self as cw, Operation as Op};
use berth_runtime::memory::MemoryDriver;
use berth_store::Store;
use berth_telemetry::{Aggregate, Datum, Dimension, MetricId, Unit};
use tokio::runtime::Runtime;
use tokio::sync::watch;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// User + system CPU seconds of this process (every thread), from /proc (clock ticks of 1/100 s).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

struct World {
    control: Arc<Control>,
    caller: CallerIdentity,
    dir: std::path::PathBuf,
    stop: watch::Sender<bool>,
    flusher: tokio::task::JoinHandle<()>,
}

fn world(rt: &Runtime, name: &str) -> World {
    let dir = std::env::temp_dir().join(format!("berth-bench-metrics-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let store = Store::open(&dir.join("berth.db")).expect("store");
    let ca = Arc::new(Ca::generate().expect("ca"));
    let control = Control::new(ControlConfig::default(), store, Arc::new(MemoryDriver::new()), ca).expect("control");
    let caller = CallerIdentity::root(control.account_id());
    let (stop, rx) = watch::channel(false);
    let flusher = rt.spawn(Arc::clone(&control).run_metrics(async move {
        let mut rx = rx;
        let _ = rx.wait_for(|s| *s).await;
    }));
    World { control, caller, dir, stop, flusher }
}

impl World {
    fn finish(self, rt: &Runtime) {
        let _ = self.stop.send(true);
        let _ = rt.block_on(self.flusher);
        drop(self.control);
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Bytes of pages in use once the file is compacted (checkpoint, VACUUM): what the data occupies.
    fn used_bytes(&self) -> i64 {
        let db = rusqlite::Connection::open(self.dir.join("berth.db")).expect("db");
        let _ = db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        db.execute_batch("VACUUM").expect("vacuum");
        let _ = db.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let q = |p: &str| db.query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, i64>(0)).expect("pragma");
        (q("page_count") - q("freelist_count")) * q("page_size")
    }
}

fn put_request(k: u64, t: f64) -> Op {
    let data = (0..20)
        .map(|i| cw::MetricDatum {
            metric_name: Some("Latency".into()),
            dimensions: Some(vec![cw::Dimension {
                name: Some("Task".into()),
                value: Some(format!("t{}", (k * 20 + i) % 1000)),
            }]),
            timestamp: Some(Timestamp(t)),
            value: Some(((k * 7 + i) % 97) as f64),
            unit: Some(cw::StandardUnit::Milliseconds),
            ..Default::default()
        })
        .collect();
    Op::PutMetricData(cw::PutMetricDataInput {
        namespace: Some("Bench".into()),
        metric_data: Some(data),
        ..Default::default()
    })
}

fn metric(ns: &str, name: &str, series: u64) -> MetricId {
    MetricId {
        namespace: ns.into(),
        name: name.into(),
        dimensions: vec![Dimension::new("TargetGroup", format!("tg-{series}"))],
        unit: Unit::Seconds,
    }
}

fn histogram(k: u64) -> Aggregate {
    let v = |j: u64| 0.001 * (((k * 31 + j * 17) % 500) + 1) as f64;
    Aggregate::of(&Datum::Values((0..5).map(|j| (v(j), 1.0 + (j % 2) as f64)).collect()))
}

fn samples(k: u64, t: f64) -> Vec<Sample> {
    (0..100)
        .map(|i| Sample {
            metric: metric("AWS/ApplicationELB", "TargetResponseTime", (k * 100 + i) % 1000),
            timestamp: t,
            aggregate: histogram(k + i),
            storage_resolution: 1,
        })
        .collect()
}

/// Runs `batch(k)` (which records `per_batch` datapoints) paced at `rate` datapoints/s for `secs` (or unpaced
/// when `rate` is 0); returns (datapoints, wall seconds, CPU seconds).
fn drive(secs: f64, rate: f64, per_batch: u64, mut batch: impl FnMut(u64)) -> (u64, f64, f64) {
    let start = Instant::now();
    let cpu = cpu_secs();
    let mut k = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        if rate > 0.0 {
            let due = (k * per_batch) as f64 / rate;
            let ahead = due - start.elapsed().as_secs_f64();
            if ahead > 0.0 {
                std::thread::sleep(Duration::from_secs_f64(ahead));
            }
        }
        batch(k);
        k += 1;
    }
    (k * per_batch, start.elapsed().as_secs_f64(), cpu_secs() - cpu)
}

fn ingest(rt: &Runtime, secs: f64) {
    println!("## Ingest\n");
    println!("| path | paced rate (datapoints/s) | achieved (datapoints/s) | CPU (% of one core, all threads) |");
    println!("|---|---:|---:|---:|");
    let mut paced_cpu = Vec::new();
    for (path, per_batch) in [("PutMetricData", 20u64), ("record_metrics", 100u64)] {
        for rate in [10_000.0, 0.0] {
            let w = world(rt, "ingest");
            let (n, wall, cpu) = match path {
                "PutMetricData" => drive(secs, rate, per_batch, |k| {
                    rt.block_on(w.control.handle_cloudwatch(&w.caller, put_request(k, now()))).expect("put");
                }),
                _ => drive(secs, rate, per_batch, |k| w.control.record_metrics(samples(k, now()))),
            };
            // The last flush belongs to the cost.
            let (cpu0, wall_end) = (cpu_secs(), Instant::now());
            w.finish(rt);
            let cpu = cpu + (cpu_secs() - cpu0);
            let wall = wall + wall_end.elapsed().as_secs_f64();
            let label = if rate > 0.0 { format!("{rate:.0}") } else { "unpaced".into() };
            let pct = 100.0 * cpu / wall;
            if rate > 0.0 {
                paced_cpu.push((path, pct));
            }
            println!("| {path} | {label} | {:.0} | {pct:.1} |", n as f64 / wall);
        }
    }
    if let [(_, put), (_, rec)] = paced_cpu.as_slice() {
        println!(
            "\nAt 10,000 datapoints/s: PutMetricData costs {put:.1}% of a core, record_metrics {rec:.1}% ({:.1}× less).\n",
            put / rec.max(0.01)
        );
    }
}

fn storage_and_get(rt: &Runtime, gets: usize) {
    let w = world(rt, "storage");
    let empty = w.used_bytes();
    let t0 = now().floor() as i64;
    // One day of standard data, 13 days ago (the 1-minute tier), one sample per 10 s per series.
    let day_start = (t0 - 13 * 86_400) / 3600 * 3600;
    let std_series = 100u64;
    for step in 0..8640u64 {
        let t = (day_start + step as i64 * 10) as f64;
        let batch = (0..std_series)
            .map(|s| Sample {
                metric: metric("Bench", "Std", s),
                timestamp: t,
                aggregate: histogram(step + s),
                storage_resolution: 60,
            })
            .collect();
        w.control.record_metrics(batch);
        if step % 360 == 359 {
            w.control.flush_metrics().expect("flush");
        }
    }
    w.control.flush_metrics().expect("flush");
    let std_minutes = w.used_bytes() - empty;
    // Three hours of high-resolution data ending now (the 1-second tier), one sample per second per series.
    let hr_series = 20u64;
    let hr_start = t0 - 3 * 3600 + 60;
    for step in 0..(3 * 3600 - 60) as u64 {
        let t = (hr_start + step as i64) as f64;
        let batch = (0..hr_series)
            .map(|s| Sample {
                metric: metric("Bench", "Hr", s),
                timestamp: t,
                aggregate: histogram(step + s),
                storage_resolution: 1,
            })
            .collect();
        w.control.record_metrics(batch);
        if step % 600 == 599 {
            w.control.flush_metrics().expect("flush");
        }
    }
    w.control.flush_metrics().expect("flush");
    let hr_seconds = w.used_bytes() - empty - std_minutes;

    // Get latency over what is stored.
    println!("## Get latency ({gets} calls each, one client)\n");
    println!("| call | datapoints | median (ms) | p99 (ms) |");
    println!("|---|---:|---:|---:|");
    let stat_input = |name: &str, series: u64, start: i64, end: i64, period: i32| cw::GetMetricStatisticsInput {
        namespace: Some("Bench".into()),
        metric_name: Some(name.into()),
        dimensions: Some(vec![cw::Dimension { name: Some("TargetGroup".into()), value: Some(format!("tg-{series}")) }]),
        start_time: Some(Timestamp(start as f64)),
        end_time: Some(Timestamp(end as f64)),
        period: Some(period),
        statistics: Some(vec![cw::Statistic::Average, cw::Statistic::SampleCount]),
        ..Default::default()
    };
    let data_input = |start: i64, end: i64, period: i32| cw::GetMetricDataInput {
        metric_data_queries: Some(
            (0..5)
                .map(|i| cw::MetricDataQuery {
                    id: Some(format!("m{i}")),
                    metric_stat: Some(cw::MetricStat {
                        metric: Some(cw::Metric {
                            namespace: Some("Bench".into()),
                            metric_name: Some("Hr".into()),
                            dimensions: Some(vec![cw::Dimension {
                                name: Some("TargetGroup".into()),
                                value: Some(format!("tg-{i}")),
                            }]),
                        }),
                        period: Some(period),
                        stat: Some("p99".into()),
                        unit: None,
                    }),
                    return_data: Some(false),
                    ..Default::default()
                })
                .chain(std::iter::once(cw::MetricDataQuery {
                    id: Some("total".into()),
                    expression: Some("AVG(METRICS())".into()),
                    ..Default::default()
                }))
                .collect(),
        ),
        start_time: Some(Timestamp(start as f64)),
        end_time: Some(Timestamp(end as f64)),
        ..Default::default()
    };
    let calls: Vec<(&str, Op)> = vec![
        (
            "GetMetricStatistics, 3 h of 1 s data at 60 s",
            Op::GetMetricStatistics(stat_input("Hr", 3, hr_start, t0, 60)),
        ),
        (
            "GetMetricStatistics, 1 h of 1 s data at 10 s",
            Op::GetMetricStatistics(stat_input("Hr", 4, t0 - 3600, t0, 10)),
        ),
        (
            "GetMetricStatistics, 1 day of 1 min data at 300 s",
            Op::GetMetricStatistics(stat_input("Std", 7, day_start, day_start + 86_400, 300)),
        ),
        ("GetMetricData, p99 of 5 series + AVG, 3 h at 60 s", Op::GetMetricData(data_input(hr_start, t0, 60))),
    ];
    for (what, op) in calls {
        let mut times = Vec::new();
        let mut points = 0;
        for _ in 0..gets {
            let start = Instant::now();
            let out = rt.block_on(w.control.handle_cloudwatch(&w.caller, op.clone())).expect("get");
            times.push(start.elapsed().as_secs_f64() * 1000.0);
            points = match out {
                cw::Output::GetMetricStatistics(o) => o.datapoints.map_or(0, |d| d.len()),
                cw::Output::GetMetricData(o) => {
                    o.metric_data_results.map_or(0, |r| r.iter().map(|r| r.values.as_ref().map_or(0, Vec::len)).sum())
                }
                _ => 0,
            };
        }
        times.sort_by(f64::total_cmp);
        let q = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
        println!("| {what} | {points} | {:.2} | {:.2} |", q(0.5), q(0.99));
    }

    // Roll-up, with the clock moved forward.
    let roll = |at: i64| {
        let mut total = 0;
        loop {
            let n = w.control.roll_up_metrics(at, 200_000).expect("roll up");
            total += n;
            if n == 0 {
                break;
            }
        }
        total
    };
    roll(t0 + 4 * 3600);
    let hr_minutes = w.used_bytes() - empty - std_minutes;
    // The high-resolution series go; the standard ones age on alone.
    {
        let db = rusqlite::Connection::open(w.dir.join("berth.db")).expect("db");
        db.execute("DELETE FROM metric_data WHERE series IN (SELECT id FROM metric_series WHERE name = 'Hr')", [])
            .expect("delete");
    }
    roll(t0 + 3 * 86_400);
    let std_five = w.used_bytes() - empty;
    roll(t0 + 52 * 86_400);
    let std_hours = w.used_bytes() - empty;
    let per = |bytes: i64, series: u64, days: f64| bytes as f64 / series as f64 / days;
    let hr_days = (3.0 * 3600.0 - 60.0) / 86_400.0;
    println!("\n## Stored bytes per series per day of data (store pages in use)\n");
    println!("| series | tier | aggregates per day | bytes per series per day |");
    println!("|---|---|---:|---:|");
    let sec = per(hr_seconds, hr_series, hr_days);
    let min = per(std_minutes, std_series, 1.0);
    let five = per(std_five, std_series, 1.0);
    let hour = per(std_hours, std_series, 1.0);
    println!("| high resolution, 1 sample/s | 1 s (kept 3 h) | 86,400 | {sec:.0} |");
    println!("| high resolution, after 3 h | 1 min | 1,440 | {:.0} |", per(hr_minutes, hr_series, hr_days));
    println!("| standard, 1 sample/10 s | 1 min (kept 15 d) | 1,440 | {min:.0} |");
    println!("| standard, after 15 d | 5 min (kept 63 d) | 288 | {five:.0} |");
    println!("| standard, after 63 d | 1 h (kept 455 d) | 24 | {hour:.0} |");
    // Steady state: what one standard series holds at any time once it has run longer than 455 days; a
    // high-resolution one holds 3 h of seconds on top of its own (larger) minutes and coarser aggregates.
    let standard = 15.0 * min + 48.0 * five + 392.0 * hour;
    println!(
        "\nSteady state of a standard series older than 455 days (15 d of minutes, 48 d of 5-minute and 392 d of \
         hourly aggregates): {:.1} MB. A high-resolution series adds {:.2} MB of seconds (3 h) to its own minute and \
         coarser aggregates.",
        standard / 1e6,
        sec * 3.0 / 24.0 / 1e6
    );
    w.finish(rt);
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let secs = env("BENCH_SECONDS", 5) as f64;
    let gets = env("BENCH_GETS", 200) as usize;
    ingest(&rt, secs);
    storage_and_get(&rt, gets);
}
