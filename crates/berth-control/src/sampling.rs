//! The metrics berth publishes itself: `AWS/ECS` CPU and memory from the tasks' samples, and `AWS/ApplicationELB`
//! from the proxies' per-interval reports, turned into [`crate::cloudwatch::ingest::Sample`]s.
//!
//! Pure computation first (consecutive readings → utilizations → samples; a proxy's deltas → samples), then the
//! thin I/O around it: [`Control::run_sampling`] reads the tasks' cgroups through the driver every
//! `sampling_interval`, and [`Control::record_proxy_metrics`] takes each proxy report's deltas as they arrive.
//! Everything enters the store through [`Control::record_metrics`] (buffered, never waited for). The spec is
//! `docs/metrics-collection.md`.

use std::collections::{BTreeMap, HashMap};

use berth_routes::{MetricsDelta, RouteTable, RuleAction, TargetHealth, TargetReport, latency_bucket_value};
use berth_runtime::TaskStats;
use berth_telemetry::{Aggregate, Dimension, MetricId, Unit};

use crate::cloudwatch::ingest::Sample;
use crate::{Control, ControlError};

pub const ECS_NAMESPACE: &str = "AWS/ECS";
pub const ALB_NAMESPACE: &str = "AWS/ApplicationELB";
/// berth publishes its own metrics at high resolution (1-second buckets), timestamps aligned to the interval.
pub const STORAGE_RESOLUTION: i32 = 1;
const MIB: f64 = 1024.0 * 1024.0;

// ---------------------------------------------------------------------------------------------------------------
// AWS/ECS: per-task utilization from consecutive cgroup readings.

/// What a running task reserved, and whose it is.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskReservation {
    pub task_id: String,
    pub cluster: String,
    pub service: String,
    /// ECS cpu units (1024 = one vCPU).
    pub cpu_units: u32,
    pub memory_mib: u32,
}

/// One cumulative reading of a task (`Driver::task_stats`), its time in epoch seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub cpu_ns: u64,
    pub memory_bytes: u64,
    pub at: f64,
}

impl Reading {
    pub fn of(stats: &TaskStats) -> Reading {
        let at = stats.at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        Reading { cpu_ns: stats.cpu_ns, memory_bytes: stats.memory_bytes, at }
    }
}

/// CPUUtilization and MemoryUtilization of one task (percent of its reservation), as ECS computes them: CPU used
/// over the interval ÷ reserved vCPUs × 100; the working set ÷ reserved memory × 100. `None` without a usable
/// previous reading (first sight, a clock that did not move, a counter that went back: a new container).
pub fn utilization(prev: &Reading, cur: &Reading, reserved: &TaskReservation) -> Option<(f64, f64)> {
    let seconds = cur.at - prev.at;
    if seconds <= 0.0 || cur.cpu_ns < prev.cpu_ns || reserved.cpu_units == 0 || reserved.memory_mib == 0 {
        return None;
    }
    let vcpus_used = (cur.cpu_ns - prev.cpu_ns) as f64 / 1e9 / seconds;
    let cpu = vcpus_used / (f64::from(reserved.cpu_units) / 1024.0) * 100.0;
    let memory = cur.memory_bytes as f64 / (f64::from(reserved.memory_mib) * MIB) * 100.0;
    Some((cpu, memory))
}

/// The previous reading of every task seen in the last pass.
#[derive(Debug, Default)]
pub struct UsageHistory {
    previous: HashMap<String, Reading>,
}

impl UsageHistory {
    /// Takes this pass's readings; returns each task's utilization since its previous reading. Tasks not read this
    /// time are forgotten.
    pub fn step(
        &mut self,
        tasks: &[TaskReservation],
        readings: &HashMap<String, Reading>,
    ) -> Vec<(TaskReservation, f64, f64)> {
        let mut out = Vec::new();
        let mut next = HashMap::with_capacity(readings.len());
        for task in tasks {
            let Some(cur) = readings.get(&task.task_id) else { continue };
            if let Some(prev) = self.previous.get(&task.task_id)
                && let Some((cpu, memory)) = utilization(prev, cur, task)
            {
                out.push((task.clone(), cpu, memory));
            }
            next.insert(task.task_id.clone(), *cur);
        }
        self.previous = next;
        out
    }
}

/// `t` rounded down to a multiple of `interval` seconds (at least 1).
pub fn align(t: f64, interval: u64) -> f64 {
    let interval = interval.max(1) as f64;
    (t / interval).floor() * interval
}

/// Per service (`ClusterName`, `ServiceName`) and per cluster (`ClusterName`): one aggregate per metric holding every
/// task's value, so Average is the service's utilization, Minimum/Maximum the least/most loaded task and
/// SampleCount the number of task readings, as ECS reports them.
pub fn ecs_samples(utilizations: &[(TaskReservation, f64, f64)], timestamp: f64) -> Vec<Sample> {
    /// (value, count) pairs of CPU and of memory.
    type Values = (Vec<(f64, f64)>, Vec<(f64, f64)>);
    let mut services: BTreeMap<(&str, &str), Values> = BTreeMap::new();
    let mut clusters: BTreeMap<&str, Values> = BTreeMap::new();
    for (task, cpu, memory) in utilizations {
        let s = services.entry((task.cluster.as_str(), task.service.as_str())).or_default();
        s.0.push((*cpu, 1.0));
        s.1.push((*memory, 1.0));
        let c = clusters.entry(task.cluster.as_str()).or_default();
        c.0.push((*cpu, 1.0));
        c.1.push((*memory, 1.0));
    }
    let mut out = Vec::new();
    let mut push = |dimensions: Vec<Dimension>, cpu: &[(f64, f64)], memory: &[(f64, f64)]| {
        for (name, values) in [("CPUUtilization", cpu), ("MemoryUtilization", memory)] {
            out.push(sample(
                ECS_NAMESPACE,
                name,
                dimensions.clone(),
                Unit::Percent,
                timestamp,
                Aggregate::of_values(values),
            ));
        }
    };
    for ((cluster, service), (cpu, memory)) in &services {
        push(vec![Dimension::new("ClusterName", *cluster), Dimension::new("ServiceName", *service)], cpu, memory);
    }
    for (cluster, (cpu, memory)) in &clusters {
        push(vec![Dimension::new("ClusterName", *cluster)], cpu, memory);
    }
    out
}

fn sample(
    namespace: &str,
    name: &str,
    mut dimensions: Vec<Dimension>,
    unit: Unit,
    timestamp: f64,
    aggregate: Aggregate,
) -> Sample {
    dimensions.sort();
    Sample {
        metric: MetricId { namespace: namespace.to_string(), name: name.to_string(), dimensions, unit },
        timestamp,
        aggregate,
        storage_resolution: STORAGE_RESOLUTION,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// AWS/ApplicationELB: a proxy's per-interval deltas.

/// `app/<name>/<id>`: the `LoadBalancer` dimension of a load balancer ARN (its resource after `loadbalancer/`).
pub fn lb_dimension(arn: &str) -> Option<String> {
    let (_, rest) = arn.split_once(":loadbalancer/")?;
    rest.starts_with("app/").then(|| rest.to_string())
}

/// `app/<name>/<id>` of a listener rule's ARN (`…:listener-rule/app/<name>/<id>/<listener>/<rule>`), for labels of
/// rules the current table no longer has.
fn lb_dimension_of_rule(arn: &str) -> Option<String> {
    let (_, rest) = arn.split_once(":listener-rule/")?;
    let mut parts = rest.split('/');
    let (kind, name, id) = (parts.next()?, parts.next()?, parts.next()?);
    (kind == "app").then(|| format!("app/{name}/{id}"))
}

/// `targetgroup/<name>/<id>`: the `TargetGroup` dimension of a target group ARN.
pub fn tg_dimension(arn: &str) -> Option<String> {
    let (_, rest) = arn.rsplit_once(':')?;
    rest.starts_with("targetgroup/").then(|| rest.to_string())
}

/// Which load balancer each rule and target group belongs to, from the route table.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct AlbTopology {
    /// rule ARN → `LoadBalancer` dimension.
    rules: HashMap<String, String>,
    /// target group ARN → `LoadBalancer` dimension (ALB: a target group serves one load balancer).
    groups: HashMap<String, String>,
}

impl AlbTopology {
    pub fn of(table: &RouteTable) -> AlbTopology {
        let mut topology = AlbTopology::default();
        for rule in &table.rules {
            let Some(lb) = rule.load_balancer.as_deref().and_then(lb_dimension) else { continue };
            for action in &rule.actions {
                if let RuleAction::Forward { target_groups, .. } = action {
                    for tg in target_groups {
                        topology.groups.entry(tg.target_group.clone()).or_insert_with(|| lb.clone());
                    }
                }
            }
            topology.rules.insert(rule.arn.clone(), lb);
        }
        topology
    }

    fn lb_of_label(&self, label: &str) -> Option<String> {
        self.rules.get(label).cloned().or_else(|| lb_dimension_of_rule(label))
    }
}

/// A count as ALB reports it: Sum = the count, and Minimum = Maximum = Average = 1 (each request is one datum);
/// zero is one datum of 0.
fn count(n: u64) -> Aggregate {
    if n == 0 { Aggregate::of_values(&[(0.0, 1.0)]) } else { Aggregate::of_values(&[(1.0, n as f64)]) }
}

fn gauge(v: f64) -> Aggregate {
    Aggregate::of_values(&[(v, 1.0)])
}

const CLASSES: [&str; 4] = ["2XX", "3XX", "4XX", "5XX"];

/// The samples of one proxy report: its deltas (summed across proxies by the store, which merges every sample of a
/// series in a bucket) and the health it sees of each target group's targets.
pub fn alb_samples(
    delta: &MetricsDelta,
    targets: &[TargetReport],
    topology: &AlbTopology,
    timestamp: f64,
) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut push = |name: &str, dims: &[(&str, &str)], unit: Unit, aggregate: Aggregate| {
        let dimensions = dims.iter().map(|(k, v)| Dimension::new(*k, *v)).collect();
        out.push(sample(ALB_NAMESPACE, name, dimensions, unit, timestamp, aggregate));
    };

    // Per load balancer: the labels (rules) of one load balancer summed.
    #[derive(Default)]
    struct Lb {
        requests: u64,
        target: [u64; 4],
        elb: [u64; 4],
        bytes: u64,
        new: u64,
        active: u64,
        latency: Option<Aggregate>,
    }
    let mut lbs: BTreeMap<String, Lb> = BTreeMap::new();
    for d in &delta.load_balancers {
        let Some(lb) = topology.lb_of_label(&d.label) else { continue };
        let acc = lbs.entry(lb).or_default();
        acc.requests += d.requests;
        for i in 0..4 {
            acc.target[i] += d.target_codes[i];
            acc.elb[i] += d.elb_codes[i];
        }
        acc.bytes += d.processed_bytes;
        acc.new += d.new_connections;
        acc.active += d.active_connections;
    }

    // Health as this proxy sees it, per target group.
    let mut health: HashMap<&str, (u64, u64, u64)> = HashMap::new();
    for t in targets {
        let h = health.entry(t.target_group.as_str()).or_default();
        match t.health {
            TargetHealth::Healthy => h.0 += 1,
            TargetHealth::Unhealthy => h.1 += 1,
            TargetHealth::Initial | TargetHealth::Draining => {}
        }
        if t.health != TargetHealth::Draining {
            h.2 += 1;
        }
    }

    for g in &delta.target_groups {
        let (Some(lb), Some(tg)) = (topology.groups.get(&g.target_group), tg_dimension(&g.target_group)) else {
            continue;
        };
        let dims: &[(&str, &str)] = &[("LoadBalancer", lb), ("TargetGroup", &tg)];
        push("RequestCount", dims, Unit::Count, count(g.requests));
        let (healthy, unhealthy, registered) = health.get(g.target_group.as_str()).copied().unwrap_or_default();
        // ALB divides by the healthy targets; a group failing open (none healthy) serves all its targets.
        let per = g.requests as f64 / healthy.max(if healthy == 0 { registered } else { 1 }).max(1) as f64;
        push("RequestCountPerTarget", dims, Unit::None, gauge(per));
        push("RequestCountPerTarget", &[("TargetGroup", &tg)], Unit::None, gauge(per));
        push("HealthyHostCount", dims, Unit::Count, gauge(healthy as f64));
        push("UnHealthyHostCount", dims, Unit::Count, gauge(unhealthy as f64));
        for (i, class) in CLASSES.iter().enumerate() {
            if g.target_codes[i] > 0 {
                push(&format!("HTTPCode_Target_{class}_Count"), dims, Unit::Count, count(g.target_codes[i]));
            }
        }
        let pairs: Vec<(f64, f64)> = g
            .response_time
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(b, n)| (latency_bucket_value(*b), *n as f64))
            .collect();
        if !pairs.is_empty() {
            let latency = Aggregate::of_values(&pairs);
            push("TargetResponseTime", dims, Unit::Seconds, latency.clone());
            let acc = lbs.entry(lb.clone()).or_default();
            match &mut acc.latency {
                Some(a) => a.merge(&latency),
                None => acc.latency = Some(latency),
            }
        }
    }

    for (lb, acc) in &lbs {
        let dims: &[(&str, &str)] = &[("LoadBalancer", lb)];
        push("RequestCount", dims, Unit::Count, count(acc.requests));
        for (i, class) in CLASSES.iter().enumerate() {
            if acc.target[i] > 0 {
                push(&format!("HTTPCode_Target_{class}_Count"), dims, Unit::Count, count(acc.target[i]));
            }
            if acc.elb[i] > 0 && i >= 1 {
                push(&format!("HTTPCode_ELB_{class}_Count"), dims, Unit::Count, count(acc.elb[i]));
            }
        }
        push("ProcessedBytes", dims, Unit::Bytes, gauge(acc.bytes as f64));
        push("NewConnectionCount", dims, Unit::Count, gauge(acc.new as f64));
        push("ActiveConnectionCount", dims, Unit::Count, gauge(acc.active as f64));
        if let Some(latency) = &acc.latency {
            push("TargetResponseTime", dims, Unit::Seconds, latency.clone());
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------------------------
// The I/O around it.

impl Control {
    /// Turns a proxy report's deltas into `AWS/ApplicationELB` samples (the internal API calls it per report).
    pub(crate) fn record_proxy_metrics(&self, delta: &MetricsDelta, targets: &[TargetReport]) {
        let topology = AlbTopology::of(&self.routes.borrow());
        let samples = alb_samples(delta, targets, &topology, delta.end.floor());
        if !samples.is_empty() {
            self.record_metrics(samples);
        }
    }

    /// Every running task of a service with what it reserved.
    fn running_reservations(&self) -> Result<Vec<TaskReservation>, ControlError> {
        self.read(|tx| {
            let mut services = HashMap::new();
            let mut sizes: HashMap<String, berth_core::sizing::TaskSize> = HashMap::new();
            let mut out = Vec::new();
            for task in tx.tasks_not_stopped()? {
                let (Some(service_id), Some(revision)) = (task.service_id, task.revision_arn.as_deref()) else {
                    continue;
                };
                if task.last_status != berth_core::status::TaskStatus::Running {
                    continue;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = services.entry(service_id) {
                    e.insert(tx.service_by_id(service_id)?);
                }
                let Some(Some(service)) = services.get(&service_id) else { continue };
                if !sizes.contains_key(revision) {
                    let config = crate::revisions::revision_config(tx, revision)?;
                    let size = berth_core::sizing::validate(config.cpu.as_deref(), config.memory.as_deref()).unwrap_or(
                        berth_core::sizing::TaskSize {
                            cpu: berth_core::sizing::DEFAULT_CPU,
                            memory_mib: berth_core::sizing::DEFAULT_MEMORY_MIB,
                        },
                    );
                    sizes.insert(revision.to_string(), size);
                }
                let Some(size) = sizes.get(revision) else { continue };
                out.push(TaskReservation {
                    task_id: task.id.clone(),
                    cluster: service.cluster.clone(),
                    service: service.name.clone(),
                    cpu_units: size.cpu,
                    memory_mib: size.memory_mib,
                });
            }
            Ok(out)
        })
    }

    /// One sampling pass: read every running task's cgroup, publish utilizations since the previous pass.
    pub async fn sample_tasks_once(&self, history: &mut UsageHistory) -> Result<usize, ControlError> {
        let tasks = self.running_reservations()?;
        let ids: Vec<String> = tasks.iter().map(|t| t.task_id.clone()).collect();
        let stats = if ids.is_empty() { Vec::new() } else { self.driver.task_stats(&ids).await? };
        let readings: HashMap<String, Reading> = stats.iter().map(|s| (s.task_id.clone(), Reading::of(s))).collect();
        let utilizations = history.step(&tasks, &readings);
        let interval = self.config.sampling_interval.as_secs();
        let samples = ecs_samples(&utilizations, align(crate::now(), interval));
        let n = samples.len();
        if n > 0 {
            self.record_metrics(samples);
        }
        Ok(n)
    }

    /// Samples the tasks every `sampling_interval` until `shutdown` resolves.
    pub async fn run_sampling(self: std::sync::Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut history = UsageHistory::default();
        let mut ticks = tokio::time::interval(self.config.sampling_interval.max(std::time::Duration::from_secs(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = &mut shutdown => return,
            }
            if let Err(e) = self.sample_tasks_once(&mut history).await {
                tracing::debug!(error = %e, "task sampling pass failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_routes::{LbDelta, Rule, TgDelta, WeightedTargetGroup, latency_bucket};

    fn reservation(id: &str, service: &str, cpu_units: u32, memory_mib: u32) -> TaskReservation {
        TaskReservation {
            task_id: id.into(),
            cluster: "default".into(),
            service: service.into(),
            cpu_units,
            memory_mib,
        }
    }

    #[test]
    fn utilization_is_percent_of_the_reservation() {
        // (cpu units, memory MiB, Δcpu ns, Δt s, working set bytes) → (cpu %, memory %)
        type Case = (u32, u32, u64, f64, u64, Option<(f64, f64)>);
        let cases: &[Case] = &[
            // a quarter vCPU fully used for 10 s
            (256, 512, 2_500_000_000, 10.0, 256 * 1024 * 1024, Some((100.0, 50.0))),
            // one vCPU reserved, half used
            (1024, 2048, 5_000_000_000, 10.0, 0, Some((50.0, 0.0))),
            // two vCPUs used on one reserved: above 100, as ECS allows
            (1024, 1024, 20_000_000_000, 10.0, 1024 * 1024 * 1024, Some((200.0, 100.0))),
            (512, 1024, 0, 10.0, 512 * 1024 * 1024, Some((0.0, 50.0))),
            // no time passed
            (256, 512, 1, 0.0, 0, None),
        ];
        for (cpu_units, mib, dcpu, dt, mem, want) in cases {
            let r = reservation("t", "s", *cpu_units, *mib);
            let prev = Reading { cpu_ns: 1_000, memory_bytes: 0, at: 100.0 };
            let cur = Reading { cpu_ns: 1_000 + dcpu, memory_bytes: *mem, at: 100.0 + dt };
            let got = utilization(&prev, &cur, &r);
            match (got, want) {
                (Some((c, m)), Some((wc, wm))) => {
                    assert!(
                        (c - wc).abs() < 1e-9 && (m - wm).abs() < 1e-9,
                        "{cpu_units}/{mib}: got {c},{m} want {wc},{wm}"
                    );
                }
                (got, want) => assert_eq!(got, *want, "{cpu_units}/{mib}"),
            }
        }
        // A counter going back is a new container: no value.
        let r = reservation("t", "s", 256, 512);
        let prev = Reading { cpu_ns: 10, memory_bytes: 0, at: 1.0 };
        assert_eq!(utilization(&prev, &Reading { cpu_ns: 5, memory_bytes: 0, at: 2.0 }, &r), None);
    }

    #[test]
    fn history_needs_two_readings_and_forgets_gone_tasks() {
        let tasks = vec![reservation("a", "web", 1024, 1024), reservation("b", "web", 1024, 1024)];
        let mut h = UsageHistory::default();
        let r = |cpu_ns, at| Reading { cpu_ns, memory_bytes: 512 * 1024 * 1024, at };
        let first = HashMap::from([("a".to_string(), r(0, 0.0)), ("b".to_string(), r(0, 0.0))]);
        assert!(h.step(&tasks, &first).is_empty(), "one reading gives no rate");
        let second =
            HashMap::from([("a".to_string(), r(10_000_000_000, 10.0)), ("b".to_string(), r(2_000_000_000, 10.0))]);
        let got = h.step(&tasks, &second);
        let cpu: Vec<(String, f64)> = got.iter().map(|(t, c, _)| (t.task_id.clone(), *c)).collect();
        assert_eq!(cpu, vec![("a".to_string(), 100.0), ("b".to_string(), 20.0)]);
        // b is gone; when it comes back it starts over.
        let third = HashMap::from([("a".to_string(), r(15_000_000_000, 20.0))]);
        assert_eq!(h.step(&tasks, &third).len(), 1);
        let fourth =
            HashMap::from([("a".to_string(), r(15_000_000_000, 30.0)), ("b".to_string(), r(9_000_000_000, 30.0))]);
        let got = h.step(&tasks, &fourth);
        assert_eq!(got.iter().map(|(t, _, _)| t.task_id.as_str()).collect::<Vec<_>>(), vec!["a"]);
    }

    #[test]
    fn ecs_samples_per_service_and_cluster() {
        let u = vec![
            (reservation("a", "web", 256, 512), 80.0, 10.0),
            (reservation("b", "web", 256, 512), 20.0, 30.0),
            (reservation("c", "api", 256, 512), 50.0, 50.0),
        ];
        let samples = ecs_samples(&u, 120.0);
        let find = |name: &str, dims: &[(&str, &str)]| {
            let dims: Vec<Dimension> = dims.iter().map(|(k, v)| Dimension::new(*k, *v)).collect();
            samples
                .iter()
                .find(|s| s.metric.name == name && s.metric.dimensions == dims)
                .unwrap_or_else(|| panic!("{name} {dims:?}"))
        };
        let web = find("CPUUtilization", &[("ClusterName", "default"), ("ServiceName", "web")]);
        assert_eq!(
            (web.aggregate.sample_count, web.aggregate.sum, web.aggregate.min, web.aggregate.max),
            (2.0, 100.0, 20.0, 80.0)
        );
        assert_eq!(web.metric.namespace, "AWS/ECS");
        assert_eq!(web.metric.unit, Unit::Percent);
        assert_eq!((web.timestamp, web.storage_resolution), (120.0, 1));
        let mem = find("MemoryUtilization", &[("ClusterName", "default"), ("ServiceName", "web")]);
        assert_eq!(mem.aggregate.average(), 20.0);
        let cluster = find("CPUUtilization", &[("ClusterName", "default")]);
        assert_eq!((cluster.aggregate.sample_count, cluster.aggregate.average()), (3.0, 50.0));
        assert_eq!(samples.len(), 6, "2 services + 1 cluster, 2 metrics each");
        assert_eq!(align(129.9, 10), 120.0);
        assert_eq!(align(130.0, 10), 130.0);
    }

    const LB: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/berth-alb/50dc6c495c0c9188";
    const RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/berth-alb/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee";
    const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web-tg/943f017f100becff";

    fn table() -> RouteTable {
        RouteTable {
            rules: vec![Rule {
                arn: RULE.into(),
                priority: 1,
                conditions: Vec::new(),
                actions: vec![RuleAction::Forward {
                    target_groups: vec![WeightedTargetGroup { target_group: TG.into(), weight: 1 }],
                    stickiness: None,
                }],
                load_balancer: Some(LB.into()),
            }],
            ..Default::default()
        }
    }

    fn target(t: &str, health: TargetHealth) -> TargetReport {
        TargetReport { target_group: TG.into(), target: t.into(), health, reason: None, in_flight: 0 }
    }

    #[test]
    fn dimensions_are_arn_suffixes() {
        assert_eq!(lb_dimension(LB).as_deref(), Some("app/berth-alb/50dc6c495c0c9188"));
        assert_eq!(tg_dimension(TG).as_deref(), Some("targetgroup/web-tg/943f017f100becff"));
        assert_eq!(lb_dimension_of_rule(RULE).as_deref(), Some("app/berth-alb/50dc6c495c0c9188"));
        assert_eq!(lb_dimension("arn:aws:elasticloadbalancing:us-east-1:1:loadbalancer/net/n/1"), None);
        assert_eq!(tg_dimension("not-an-arn"), None);
    }

    #[test]
    fn alb_samples_from_deltas() {
        let latencies = [0.010, 0.012, 0.020, 0.100];
        let mut histogram: BTreeMap<u32, u64> = BTreeMap::new();
        for l in latencies {
            *histogram.entry(latency_bucket((l * 1e6) as u64) as u32).or_default() += 1;
        }
        let delta = MetricsDelta {
            end: 1000.4,
            seconds: 1.0,
            load_balancers: vec![
                LbDelta {
                    label: RULE.into(),
                    requests: 5,
                    target_codes: [3, 0, 1, 0],
                    elb_codes: [0, 0, 0, 1],
                    processed_bytes: 2048,
                    new_connections: 2,
                    active_connections: 1,
                },
                // Unmatched requests belong to no load balancer.
                LbDelta { label: "-".into(), requests: 7, ..Default::default() },
            ],
            target_groups: vec![TgDelta {
                target_group: TG.into(),
                requests: 4,
                target_codes: [3, 0, 1, 0],
                response_time: histogram.into_iter().collect(),
                targets: vec![("10.0.0.2:80".into(), 3), ("10.0.0.3:80".into(), 1)],
            }],
        };
        let targets = [
            target("a", TargetHealth::Healthy),
            target("b", TargetHealth::Healthy),
            target("c", TargetHealth::Unhealthy),
        ];
        let samples = alb_samples(&delta, &targets, &AlbTopology::of(&table()), 1000.0);
        let lb = [("LoadBalancer", "app/berth-alb/50dc6c495c0c9188")];
        let tg = [
            ("LoadBalancer", "app/berth-alb/50dc6c495c0c9188"),
            ("TargetGroup", "targetgroup/web-tg/943f017f100becff"),
        ];
        let get = |name: &str, dims: &[(&str, &str)]| -> &Sample {
            let dims: Vec<Dimension> = dims.iter().map(|(k, v)| Dimension::new(*k, *v)).collect();
            samples
                .iter()
                .find(|s| s.metric.name == name && s.metric.dimensions == dims)
                .unwrap_or_else(|| panic!("missing {name} {dims:?}"))
        };
        // (metric, dimensions, Sum)
        type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], f64);
        let table: &[Row<'_>] = &[
            ("RequestCount", &lb, 5.0),
            ("RequestCount", &tg, 4.0),
            ("HTTPCode_Target_2XX_Count", &lb, 3.0),
            ("HTTPCode_Target_4XX_Count", &lb, 1.0),
            ("HTTPCode_Target_2XX_Count", &tg, 3.0),
            ("HTTPCode_ELB_5XX_Count", &lb, 1.0),
            ("ProcessedBytes", &lb, 2048.0),
            ("NewConnectionCount", &lb, 2.0),
            ("ActiveConnectionCount", &lb, 1.0),
            ("RequestCountPerTarget", &tg, 2.0),
            ("RequestCountPerTarget", &[("TargetGroup", "targetgroup/web-tg/943f017f100becff")], 2.0),
            ("HealthyHostCount", &tg, 2.0),
            ("UnHealthyHostCount", &tg, 1.0),
        ];
        for (name, dims, sum) in table {
            assert_eq!(get(name, dims).aggregate.sum, *sum, "{name} {dims:?}");
        }
        let rc = get("RequestCount", &lb);
        assert_eq!(
            (rc.aggregate.sample_count, rc.aggregate.min, rc.aggregate.max),
            (5.0, 1.0, 1.0),
            "ALB counts: each datum 1"
        );
        assert_eq!(rc.metric.namespace, "AWS/ApplicationELB");
        assert!(!samples.iter().any(|s| s.metric.name == "HTTPCode_ELB_4XX_Count"), "zero codes are not reported");
        let latency = get("TargetResponseTime", &tg);
        assert_eq!(latency.metric.unit, Unit::Seconds);
        assert_eq!(latency.aggregate.sample_count, 4.0);
        for (q, want) in [(0.5, 0.012), (0.99, 0.100)] {
            let got = latency
                .aggregate
                .sketch
                .as_ref()
                .and_then(|s| s.quantile(q, latency.aggregate.min, latency.aggregate.max));
            let got = got.expect("percentile");
            assert!((got - want).abs() / want < 0.03, "p{q}: {got} vs {want}");
        }
        assert_eq!(get("TargetResponseTime", &lb).aggregate.sample_count, 4.0);
    }

    #[test]
    fn per_target_divides_by_all_targets_when_none_is_healthy() {
        let delta = MetricsDelta {
            end: 10.0,
            seconds: 1.0,
            target_groups: vec![TgDelta { target_group: TG.into(), requests: 6, ..Default::default() }],
            ..Default::default()
        };
        let targets = [
            target("a", TargetHealth::Unhealthy),
            target("b", TargetHealth::Initial),
            target("c", TargetHealth::Unhealthy),
        ];
        let samples = alb_samples(&delta, &targets, &AlbTopology::of(&table()), 10.0);
        let per = samples.iter().find(|s| s.metric.name == "RequestCountPerTarget").expect("per target");
        assert_eq!(per.aggregate.sum, 2.0);
        // Idle: zeros are still reported (scale-in needs them).
        let idle = MetricsDelta {
            end: 11.0,
            seconds: 1.0,
            target_groups: vec![TgDelta { target_group: TG.into(), ..Default::default() }],
            ..Default::default()
        };
        let samples = alb_samples(&idle, &targets, &AlbTopology::of(&table()), 11.0);
        let rc = samples.iter().find(|s| s.metric.name == "RequestCount").expect("request count");
        assert_eq!((rc.aggregate.sum, rc.aggregate.sample_count), (0.0, 1.0));
    }
}
