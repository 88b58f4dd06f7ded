//! The service's charts: the GetMetricData queries for what berth publishes (docs/metrics-collection.md:
//! `AWS/ApplicationELB` per load balancer + target group, `AWS/ECS` per cluster + service) and the series the
//! answers make, one [`Chart`] each.

use std::collections::BTreeMap;

use berth_client::{Client, Service};
use serde_json::{Value, json};

use super::data::{arr, load_balancer_arns, s, target_group_arns};
use crate::ConsoleError;
use crate::charts::{Chart, Series};

/// A time window the page can show.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub label: &'static str,
    pub seconds: i64,
    pub period: i64,
}

pub const RANGES: [Range; 3] = [
    Range { label: "1h", seconds: 3600, period: 60 },
    Range { label: "3h", seconds: 3 * 3600, period: 180 },
    Range { label: "24h", seconds: 24 * 3600, period: 1200 },
];

/// The range a `?range=` names (1 hour by default).
pub fn range(name: Option<&str>) -> Range {
    RANGES.iter().copied().find(|r| Some(r.label) == name).unwrap_or(RANGES[0])
}

/// An ALB dimension value from an ARN: `app/<name>/<id>` from a load balancer's, `targetgroup/<name>/<id>` from a
/// target group's.
pub fn arn_suffix(arn: &str) -> Option<&str> {
    arn.split_once(":loadbalancer/").map(|(_, s)| s).or_else(|| arn.rsplit_once(':').map(|(_, s)| s))
}

fn stat(id: String, namespace: &str, metric: &str, dims: &[(&str, &str)], stat: &str, period: i64) -> Value {
    let dims: Vec<Value> = dims.iter().map(|(n, v)| json!({"Name": n, "Value": v})).collect();
    json!({
        "Id": id,
        "MetricStat": {"Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dims}, "Period": period, "Stat": stat},
        "ReturnData": true
    })
}

/// The queries: per target group requests, p50/p99 latency, 4xx/5xx, healthy targets; the service's CPU and memory.
pub fn queries(resources: &Value, cluster: &str, service: &str, period: i64) -> Vec<Value> {
    let mut out = Vec::new();
    let lb = load_balancer_arns(resources).first().and_then(|a| arn_suffix(a).map(str::to_string));
    if let Some(lb) = lb {
        for (i, tg) in target_group_arns(resources).iter().enumerate() {
            let Some(tg) = arn_suffix(tg) else { continue };
            let d = [("LoadBalancer", lb.as_str()), ("TargetGroup", tg)];
            let alb = "AWS/ApplicationELB";
            out.push(stat(format!("req_{i}"), alb, "RequestCount", &d, "Sum", period));
            out.push(stat(format!("pfifty_{i}"), alb, "TargetResponseTime", &d, "p50", period));
            out.push(stat(format!("pninetynine_{i}"), alb, "TargetResponseTime", &d, "p99", period));
            out.push(stat(format!("xfour_{i}"), alb, "HTTPCode_Target_4XX_Count", &d, "Sum", period));
            out.push(stat(format!("xfive_{i}"), alb, "HTTPCode_Target_5XX_Count", &d, "Sum", period));
            out.push(stat(format!("healthy_{i}"), alb, "HealthyHostCount", &d, "Maximum", period));
        }
    }
    let d = [("ClusterName", cluster), ("ServiceName", service)];
    out.push(stat("cpu".into(), "AWS/ECS", "CPUUtilization", &d, "Average", period));
    out.push(stat("mem".into(), "AWS/ECS", "MemoryUtilization", &d, "Average", period));
    out
}

/// How the results of one kind across target groups become one series.
#[derive(Clone, Copy)]
enum Combine {
    Sum,
    Max,
}

/// The points of every result whose id starts with `prefix`, combined per timestamp, times `scale`.
fn series(results: &[Value], prefix: &str, combine: Combine, scale: f64, label: &str) -> Series {
    let mut at: BTreeMap<i64, f64> = BTreeMap::new();
    for r in
        results.iter().filter(|r| s(r, &["Id"]).is_some_and(|id| id == prefix || id.starts_with(&format!("{prefix}_"))))
    {
        let times = arr(r, &["Timestamps"]);
        let values = arr(r, &["Values"]);
        for (t, v) in times.iter().zip(values) {
            let (Some(t), Some(v)) = (t.as_f64(), v.as_f64()) else { continue };
            let slot = at.entry(t as i64).or_insert(match combine {
                Combine::Sum => 0.0,
                Combine::Max => f64::MIN,
            });
            *slot = match combine {
                Combine::Sum => *slot + v,
                Combine::Max => slot.max(v),
            };
        }
    }
    Series { label: label.into(), points: at.into_iter().map(|(t, v)| (t, v * scale)).collect() }
}

/// The six charts from GetMetricData's `MetricDataResults`.
pub fn charts(results: &[Value], start: i64, end: i64, period: i64) -> Vec<Chart> {
    let chart = |title: &str, unit: &str, series: Vec<Series>| Chart {
        title: title.into(),
        unit: unit.into(),
        period,
        start,
        end,
        series,
    };
    vec![
        chart("Requests", "per period", vec![series(results, "req", Combine::Sum, 1.0, "requests")]),
        chart(
            "Latency",
            "ms",
            vec![
                series(results, "pfifty", Combine::Max, 1000.0, "p50"),
                series(results, "pninetynine", Combine::Max, 1000.0, "p99"),
            ],
        ),
        chart(
            "Errors",
            "responses",
            vec![
                series(results, "xfour", Combine::Sum, 1.0, "4xx"),
                series(results, "xfive", Combine::Sum, 1.0, "5xx"),
            ],
        ),
        chart("CPU", "%", vec![series(results, "cpu", Combine::Max, 1.0, "CPU")]),
        chart("Memory", "%", vec![series(results, "mem", Combine::Max, 1.0, "memory")]),
        chart("Task count", "healthy tasks", vec![series(results, "healthy", Combine::Sum, 1.0, "healthy tasks")]),
    ]
}

/// Reads the window ending now and returns the charts (every page of GetMetricData, at most 10).
pub async fn load(
    client: &Client,
    resources: &Value,
    cluster: &str,
    service: &str,
    range: Range,
    now: i64,
) -> Result<Vec<Chart>, ConsoleError> {
    let end = now - now.rem_euclid(range.period) + range.period;
    let start = end - range.seconds;
    let queries = queries(resources, cluster, service, range.period);
    let mut results: Vec<Value> = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let mut input =
            json!({"MetricDataQueries": queries, "StartTime": start, "EndTime": end, "ScanBy": "TimestampAscending"});
        if let Some(t) = &token {
            input["NextToken"] = json!(t);
        }
        let out = client.call_value(Service::CloudWatch, "GetMetricData", input).await?;
        results.extend(arr(&out, &["MetricDataResults"]).iter().cloned());
        token = s(&out, &["NextToken"]).map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok(charts(&results, start, end, range.period))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources() -> Value {
        json!({"ingressPaths": [{
            "loadBalancer": {"arn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/berth/abc"},
            "targetGroups": [
                {"arn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web-a/1"},
                {"arn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web-b/2"}
            ]
        }]})
    }

    #[test]
    fn queries_use_alb_arn_suffixes_and_the_service_dimensions() {
        let q = queries(&resources(), "default", "web", 60);
        assert_eq!(q.len(), 2 * 6 + 2);
        let req = &q[0];
        assert_eq!(req["Id"], "req_0");
        assert_eq!(req["MetricStat"]["Metric"]["Dimensions"][0]["Value"], "app/berth/abc");
        assert_eq!(req["MetricStat"]["Metric"]["Dimensions"][1]["Value"], "targetgroup/web-a/1");
        assert_eq!(req["MetricStat"]["Stat"], "Sum");
        let cpu = q.iter().find(|q| q["Id"] == "cpu").expect("the test input");
        assert_eq!(cpu["MetricStat"]["Metric"]["Namespace"], "AWS/ECS");
        assert_eq!(cpu["MetricStat"]["Metric"]["Dimensions"][1]["Value"], "web");
        // Every id is a valid GetMetricData id: a lower-case letter, then letters, digits, underscores.
        for q in &q {
            let id = q["Id"].as_str().expect("the test input");
            assert!(id.starts_with(|c: char| c.is_ascii_lowercase()), "{id}");
            assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{id}");
        }
        // Without a load balancer only the ECS queries remain.
        assert_eq!(queries(&Value::Null, "default", "web", 60).len(), 2);
    }

    #[test]
    fn target_groups_add_up_and_percentiles_take_the_worst() {
        let results = vec![
            json!({"Id": "req_0", "Timestamps": [0.0, 60.0], "Values": [3.0, 4.0]}),
            json!({"Id": "req_1", "Timestamps": [60.0, 120.0], "Values": [1.0, 2.0]}),
            json!({"Id": "pfifty_0", "Timestamps": [0.0], "Values": [0.010]}),
            json!({"Id": "pfifty_1", "Timestamps": [0.0], "Values": [0.020]}),
            json!({"Id": "cpu", "Timestamps": [0.0], "Values": [12.5]}),
        ];
        let charts = charts(&results, 0, 3600, 60);
        assert_eq!(charts.len(), 6);
        assert_eq!(charts[0].series[0].points, vec![(0, 3.0), (60, 5.0), (120, 2.0)]);
        assert_eq!(charts[1].series[0].points, vec![(0, 20.0)]);
        assert!(charts[1].series[1].points.is_empty());
        assert_eq!(charts[3].series[0].points, vec![(0, 12.5)]);
        // "cpu" does not take "cpux"'s points; "req" does not take "request_0"'s.
        let other = vec![json!({"Id": "cpux", "Timestamps": [0.0], "Values": [1.0]})];
        assert!(series(&other, "cpu", Combine::Max, 1.0, "CPU").points.is_empty());
    }

    #[test]
    fn ranges_and_suffixes() {
        assert_eq!(range(Some("3h")).period, 180);
        assert_eq!(range(Some("nope")).label, "1h");
        assert_eq!(range(None).seconds, 3600);
        assert_eq!(arn_suffix("arn:aws:elasticloadbalancing:r:1:loadbalancer/app/x/1"), Some("app/x/1"));
        assert_eq!(arn_suffix("arn:aws:elasticloadbalancing:r:1:targetgroup/t/2"), Some("targetgroup/t/2"));
    }
}
