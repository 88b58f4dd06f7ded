//! What the service page reads from berth (ECS, ELBv2, EC2, CloudWatch, Logs) as the user, and the pure picking
//! of the parts it shows out of the model's JSON answers.

use berth_client::{Client, Service};
use serde_json::{Value, json};

use crate::ConsoleError;

/// Everything the page shows about one service.
#[derive(Debug, Default)]
pub struct Loaded {
    pub cluster: String,
    pub name: String,
    pub arn: String,
    /// DescribeExpressGatewayService's `service`.
    pub express: Value,
    /// DescribeServices' service (events, counts).
    pub ecs: Value,
    /// DescribeServiceDeployments, newest first.
    pub deployments: Vec<Value>,
    /// DescribeServiceRevisions of the active and recent revisions.
    pub revisions: Vec<Value>,
    /// DescribeTasks of the RUNNING tasks.
    pub tasks: Vec<Value>,
    /// DescribeTargetHealth's descriptions over the current revision's target groups (empty when not readable).
    pub targets: Vec<Value>,
}

/// A string member along a path of object keys.
pub fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_str)
}

/// An array member (empty when absent).
pub fn arr<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// A number member.
pub fn num(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_f64)
}

/// What follows the last `/` of an ARN (a task id, a deployment id).
pub fn last_segment(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// A service that is not there, with what to do.
pub fn not_found(what: String) -> ConsoleError {
    ConsoleError::NotFound(format!("{what} does not exist; check the name and the cluster on the services list"))
}

/// The service's ARN and its DescribeServices answer.
pub async fn find(client: &Client, cluster: &str, name: &str) -> Result<(String, Value), ConsoleError> {
    let out =
        client.call_value(Service::Ecs, "DescribeServices", json!({"cluster": cluster, "services": [name]})).await?;
    let service = arr(&out, &["services"])
        .first()
        .cloned()
        .ok_or_else(|| not_found(format!("service {name} in cluster {cluster}")))?;
    let arn = s(&service, &["serviceArn"]).ok_or_else(|| not_found(format!("service {name}")))?.to_string();
    Ok((arn, service))
}

/// The service's Express description alone (actions need no more).
pub async fn express(client: &Client, arn: &str) -> Result<Value, ConsoleError> {
    let out = client.call_value(Service::Ecs, "DescribeExpressGatewayService", json!({"serviceArn": arn})).await?;
    Ok(out.get("service").cloned().unwrap_or(Value::Null))
}

/// The newest deployments (at most `n`), described, newest first.
pub async fn deployments(client: &Client, cluster: &str, name: &str, n: u32) -> Result<Vec<Value>, ConsoleError> {
    let list = client
        .call_value(
            Service::Ecs,
            "ListServiceDeployments",
            json!({"cluster": cluster, "service": name, "maxResults": n}),
        )
        .await?;
    let arns: Vec<&str> =
        arr(&list, &["serviceDeployments"]).iter().filter_map(|d| s(d, &["serviceDeploymentArn"])).collect();
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    let out =
        client.call_value(Service::Ecs, "DescribeServiceDeployments", json!({"serviceDeploymentArns": arns})).await?;
    let mut all = arr(&out, &["serviceDeployments"]).to_vec();
    all.sort_by(|a, b| num(b, &["createdAt"]).unwrap_or(0.0).total_cmp(&num(a, &["createdAt"]).unwrap_or(0.0)));
    Ok(all)
}

/// The running tasks, described.
pub async fn tasks(client: &Client, cluster: &str, name: &str) -> Result<Vec<Value>, ConsoleError> {
    let list = client
        .call_value(
            Service::Ecs,
            "ListTasks",
            json!({"cluster": cluster, "serviceName": name, "desiredStatus": "RUNNING"}),
        )
        .await?;
    let arns: Vec<&str> = arr(&list, &["taskArns"]).iter().filter_map(Value::as_str).take(100).collect();
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    let out = client.call_value(Service::Ecs, "DescribeTasks", json!({"cluster": cluster, "tasks": arns})).await?;
    let mut tasks = arr(&out, &["tasks"]).to_vec();
    tasks.sort_by(|a, b| num(a, &["startedAt"]).unwrap_or(0.0).total_cmp(&num(b, &["startedAt"]).unwrap_or(0.0)));
    Ok(tasks)
}

/// Revisions by ARN, described (unknown ones are skipped).
pub async fn revisions(client: &Client, arns: &[String]) -> Result<Vec<Value>, ConsoleError> {
    if arns.is_empty() {
        return Ok(Vec::new());
    }
    let out = client.call_value(Service::Ecs, "DescribeServiceRevisions", json!({"serviceRevisionArns": arns})).await?;
    Ok(arr(&out, &["serviceRevisions"]).to_vec())
}

/// The revision ARNs worth describing: the active configurations', then every recent deployment's target and
/// sources, each once, at most 20.
pub fn revision_arns(express: &Value, deployments: &[Value]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let active = arr(express, &["activeConfigurations"]).iter().filter_map(|c| s(c, &["serviceRevisionArn"]));
    let deployed = deployments.iter().flat_map(|d| {
        s(d, &["targetServiceRevision", "arn"])
            .into_iter()
            .chain(arr(d, &["sourceServiceRevisions"]).iter().filter_map(|r| s(r, &["arn"])))
    });
    for arn in active.chain(deployed) {
        if !out.iter().any(|a| a == arn) && out.len() < 20 {
            out.push(arn.to_string());
        }
    }
    out
}

/// Everything for the page, the independent calls at once.
pub async fn load(client: &Client, cluster: &str, name: &str) -> Result<Loaded, ConsoleError> {
    let (arn, ecs) = find(client, cluster, name).await?;
    let (express, deployments, tasks) =
        tokio::try_join!(express(client, &arn), deployments(client, cluster, name, 5), tasks(client, cluster, name))?;
    let revisions = revisions(client, &revision_arns(&express, &deployments)).await?;
    let mut loaded = Loaded {
        cluster: cluster.into(),
        name: name.into(),
        arn,
        express,
        ecs,
        deployments,
        revisions,
        tasks,
        targets: Vec::new(),
    };
    loaded.targets = target_health(client, &loaded.resources()).await;
    Ok(loaded)
}

/// Every target of the service's target groups as the load balancer sees it. A user who may not read target
/// health still gets the page (the tasks then show ECS's own health).
pub async fn target_health(client: &Client, resources: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for tg in target_group_arns(resources) {
        match client.call_value(Service::Elbv2, "DescribeTargetHealth", json!({"TargetGroupArn": tg})).await {
            Ok(v) => out.extend(arr(&v, &["TargetHealthDescriptions"]).iter().cloned()),
            Err(e) => tracing::debug!(error = %e, "console: target health not readable"),
        }
    }
    out
}

/// The current revision's managed resources (for the edit handlers: they act only on this service's resources).
pub async fn current_resources(client: &Client, cluster: &str, name: &str) -> Result<(String, Value), ConsoleError> {
    let (arn, _) = find(client, cluster, name).await?;
    let express = express(client, &arn).await?;
    let revisions = revisions(client, &revision_arns(&express, &[])).await?;
    let resources = revisions.first().and_then(|r| r.get("ecsManagedResources")).cloned().unwrap_or(Value::Null);
    Ok((arn, resources))
}

impl Loaded {
    /// The revision that serves or is being deployed: the newest deployment's target, else the first active one.
    pub fn current_revision(&self) -> Option<&Value> {
        let arn = self.deployments.first().and_then(|d| s(d, &["targetServiceRevision", "arn"])).or_else(|| {
            arr(&self.express, &["activeConfigurations"]).iter().find_map(|c| s(c, &["serviceRevisionArn"]))
        })?;
        self.revision(arn)
    }

    pub fn revision(&self, arn: &str) -> Option<&Value> {
        self.revisions.iter().find(|r| s(r, &["serviceRevisionArn"]) == Some(arn))
    }

    /// The managed resources of the current revision (`ecsManagedResources`).
    pub fn resources(&self) -> Value {
        self.current_revision().and_then(|r| r.get("ecsManagedResources")).cloned().unwrap_or(Value::Null)
    }

    /// The service's https endpoint host.
    pub fn endpoint(&self) -> Option<String> {
        endpoint(&self.express)
    }
}

/// The endpoint host of an Express service (the first ingress path's), without any scheme.
pub fn endpoint(express: &Value) -> Option<String> {
    arr(express, &["activeConfigurations"]).iter().flat_map(|c| arr(c, &["ingressPaths"])).find_map(|p| {
        let e = s(p, &["endpoint"])?;
        let host = e.trim_start_matches("https://").trim_start_matches("http://").trim_end_matches('/');
        (!host.is_empty()).then(|| host.to_string())
    })
}

/// The managed target groups' ARNs (every ingress path's).
pub fn target_group_arns(resources: &Value) -> Vec<String> {
    arr(resources, &["ingressPaths"])
        .iter()
        .flat_map(|p| arr(p, &["targetGroups"]))
        .filter_map(|t| s(t, &["arn"]).map(str::to_string))
        .collect()
}

/// The managed listener rules' ARNs.
pub fn rule_arns(resources: &Value) -> Vec<String> {
    arr(resources, &["ingressPaths"]).iter().filter_map(|p| s(p, &["rule", "arn"]).map(str::to_string)).collect()
}

/// The managed load balancers' ARNs.
pub fn load_balancer_arns(resources: &Value) -> Vec<String> {
    arr(resources, &["ingressPaths"])
        .iter()
        .filter_map(|p| s(p, &["loadBalancer", "arn"]).map(str::to_string))
        .collect()
}

/// Security group ids of the service and its load balancers (from their ARNs, `…:security-group/sg-…`).
pub fn security_group_ids(resources: &Value) -> Vec<String> {
    let service = arr(resources, &["serviceSecurityGroups"]).iter();
    let lb = arr(resources, &["ingressPaths"]).iter().flat_map(|p| arr(p, &["loadBalancerSecurityGroups"]));
    let mut out: Vec<String> = Vec::new();
    for g in service.chain(lb) {
        if let Some(id) = s(g, &["arn"]).map(last_segment)
            && !out.iter().any(|o| o == id)
        {
            out.push(id.to_string());
        }
    }
    out
}

/// Alarm names (from `…:alarm:<name>` ARNs).
pub fn alarm_names(resources: &Value) -> Vec<String> {
    arr(resources, &["metricAlarms"])
        .iter()
        .filter_map(|a| s(a, &["arn"]))
        .filter_map(|arn| arn.split_once(":alarm:").map(|(_, n)| n.to_string()))
        .collect()
}

/// The service's log group names (the managed ones).
pub fn log_group_names(resources: &Value) -> Vec<String> {
    arr(resources, &["logGroups"])
        .iter()
        .filter_map(|g| {
            s(g, &["logGroupName"]).map(str::to_string).or_else(|| {
                // `arn:aws:logs:<region>:<account>:log-group:<name>[:*]`
                let arn = s(g, &["arn"])?;
                let (_, rest) = arn.split_once(":log-group:")?;
                Some(rest.trim_end_matches(":*").to_string())
            })
        })
        .collect()
}

/// The deployment still running (not finished), if the newest one is.
pub fn running_deployment(deployments: &[Value]) -> Option<&Value> {
    deployments.first().filter(|d| {
        matches!(
            s(d, &["status"]),
            Some("PENDING" | "IN_PROGRESS" | "ROLLBACK_REQUESTED" | "ROLLBACK_IN_PROGRESS" | "STOP_REQUESTED")
        )
    })
}

/// The hook a deployment waits on (a bake, or a user's pause hook), if any.
pub fn awaited_hook(deployment: &Value) -> Option<&str> {
    arr(deployment, &["lifecycleHookDetails"])
        .iter()
        .find(|h| s(h, &["status"]) == Some("AWAITING_ACTION"))
        .and_then(|h| s(h, &["hookId"]))
}

/// The target's production traffic share in a deployment, in percent; none for a service's first deployment (no
/// source to share with: the target takes all traffic once healthy).
pub fn target_weight(deployment: &Value) -> Option<f64> {
    if !has_source(deployment) {
        return None;
    }
    num(deployment, &["targetServiceRevision", "requestedProductionTrafficWeight"])
}

/// Whether a deployment replaces a revision (a service's first deployment does not: nothing to roll back to).
pub fn has_source(deployment: &Value) -> bool {
    !arr(deployment, &["sourceServiceRevisions"]).is_empty()
}

/// The health a task shows: the load balancer's view of it (its container's address is a target: `healthy`,
/// `unhealthy`, `initial`, `draining`), else ECS's `healthStatus` (the task's, else its container's).
pub fn task_health<'a>(task: &'a Value, targets: &'a [Value]) -> &'a str {
    let addresses: Vec<&str> = arr(task, &["containers"])
        .iter()
        .flat_map(|c| arr(c, &["networkInterfaces"]))
        .filter_map(|n| s(n, &["privateIpv4Address"]))
        .collect();
    let lb = targets
        .iter()
        .find(|t| s(t, &["Target", "Id"]).is_some_and(|id| addresses.contains(&id)))
        .and_then(|t| s(t, &["TargetHealth", "State"]));
    lb.or_else(|| s(task, &["healthStatus"]))
        .or_else(|| arr(task, &["containers"]).first().and_then(|c| s(c, &["healthStatus"])))
        .unwrap_or("UNKNOWN")
}

/// A Unix time (seconds) as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn fmt_time(secs: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC")).ok()
        })
        .unwrap_or_else(|| format!("{secs}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resources() -> Value {
        json!({
            "ingressPaths": [{
                "endpoint": "web-ab12cd.ecs.us-east-1.berth.localhost",
                "loadBalancer": {"arn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/berth/1"},
                "loadBalancerSecurityGroups": [{"arn": "arn:aws:ec2:us-east-1:000000000000:security-group/sg-lb"}],
                "rule": {"arn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/app/berth/1/2/3"},
                "targetGroups": [
                    {"arn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/a/1"},
                    {"arn": "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/b/2"}
                ]
            }],
            "serviceSecurityGroups": [
                {"arn": "arn:aws:ec2:us-east-1:000000000000:security-group/sg-svc"},
                {"arn": "arn:aws:ec2:us-east-1:000000000000:security-group/sg-lb"}
            ],
            "metricAlarms": [{"arn": "arn:aws:cloudwatch:us-east-1:000000000000:alarm:web-5xx"}, {"arn": "bad"}],
            "logGroups": [
                {"arn": "arn:aws:logs:us-east-1:000000000000:log-group:/aws/ecs/default/web-1:*"},
                {"logGroupName": "/named"}
            ]
        })
    }

    #[test]
    fn resources_are_picked_from_the_managed_resources() {
        let r = resources();
        assert_eq!(target_group_arns(&r).len(), 2);
        assert_eq!(
            rule_arns(&r),
            vec!["arn:aws:elasticloadbalancing:us-east-1:000000000000:listener-rule/app/berth/1/2/3"]
        );
        assert_eq!(load_balancer_arns(&r).len(), 1);
        assert_eq!(security_group_ids(&r), vec!["sg-svc", "sg-lb"]);
        assert_eq!(alarm_names(&r), vec!["web-5xx"]);
        assert_eq!(log_group_names(&r), vec!["/aws/ecs/default/web-1", "/named"]);
        assert!(target_group_arns(&Value::Null).is_empty());
    }

    #[test]
    fn the_endpoint_is_a_host() {
        let e = json!({"activeConfigurations": [{"ingressPaths": [{"endpoint": "https://web.example/"}]}]});
        assert_eq!(endpoint(&e).as_deref(), Some("web.example"));
        assert_eq!(endpoint(&json!({})), None);
    }

    #[test]
    fn revisions_are_listed_once_active_first() {
        let express = json!({"activeConfigurations": [{"serviceRevisionArn": "r2"}]});
        let deployments = vec![
            json!({"targetServiceRevision": {"arn": "r2"}, "sourceServiceRevisions": [{"arn": "r1"}]}),
            json!({"targetServiceRevision": {"arn": "r1"}}),
        ];
        assert_eq!(revision_arns(&express, &deployments), vec!["r2", "r1"]);
    }

    #[test]
    fn a_running_deployment_and_its_awaited_hook() {
        let d = json!({"status": "IN_PROGRESS", "lifecycleHookDetails": [
            {"hookId": "h1", "status": "SUCCEEDED"}, {"hookId": "h2", "status": "AWAITING_ACTION"}],
            "targetServiceRevision": {"requestedProductionTrafficWeight": 5.0}, "sourceServiceRevisions": [{"arn": "r1"}]});
        assert!(running_deployment(std::slice::from_ref(&d)).is_some());
        assert_eq!(awaited_hook(&d), Some("h2"));
        assert_eq!(target_weight(&d), Some(5.0));
        let first =
            json!({"status": "IN_PROGRESS", "targetServiceRevision": {"requestedProductionTrafficWeight": 0.0}});
        assert_eq!(target_weight(&first), None);
        assert!(!has_source(&first) && has_source(&d));
        let done = json!({"status": "SUCCESSFUL"});
        assert!(running_deployment(&[done, d]).is_none());
        assert!(running_deployment(&[]).is_none());
    }

    #[test]
    fn task_health_falls_back_to_the_container() {
        assert_eq!(task_health(&json!({"healthStatus": "HEALTHY"}), &[]), "HEALTHY");
        assert_eq!(task_health(&json!({"containers": [{"healthStatus": "UNHEALTHY"}]}), &[]), "UNHEALTHY");
        assert_eq!(task_health(&json!({}), &[]), "UNKNOWN");
        let task = json!({"healthStatus": "UNKNOWN", "containers": [{"networkInterfaces": [{"privateIpv4Address": "172.18.0.3"}]}]});
        let targets = [
            json!({"Target": {"Id": "172.18.0.9", "Port": 80}, "TargetHealth": {"State": "unhealthy"}}),
            json!({"Target": {"Id": "172.18.0.3", "Port": 80}, "TargetHealth": {"State": "healthy"}}),
        ];
        assert_eq!(task_health(&task, &targets), "healthy");
        assert_eq!(task_health(&task, &targets[..1]), "UNKNOWN");
        assert_eq!(fmt_time(0.0), "1970-01-01 00:00:00 UTC");
    }
}
