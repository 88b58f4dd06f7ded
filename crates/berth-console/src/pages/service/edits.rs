//! The resources berth created for a service, each with its ARN, and their settings edited in place through the
//! APIs the AWS CLI uses: the health check (ELBv2 ModifyTargetGroup on every target group of the service, so the
//! next deployment's group agrees), scaling bounds (UpdateExpressGatewayService `scalingTarget`: berth updates the
//! scalable target and the service's recorded configuration together, without a deployment), the listener rule's
//! hosts (ModifyRule), security group ingress (Authorize/RevokeSecurityGroupIngress), an alarm's threshold
//! (PutMetricAlarm with the alarm's other settings kept) and the log group's retention (PutRetentionPolicy).

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Redirect;
use axum::response::Response;
use berth_client::{Client, Service};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::data::{self, Loaded, arr, num, s};
use super::{back, page_path};
use crate::layout::csrf_field;
use crate::session::User;
use crate::{AppState, ConsoleError};

/// The live settings of the managed resources (what the forms start from).
#[derive(Debug, Default)]
pub struct Details {
    pub target_groups: Vec<Value>,
    pub rules: Vec<Value>,
    pub security_groups: Vec<Value>,
    pub alarms: Vec<Value>,
    pub log_groups: Vec<Value>,
    /// What could not be read (shown, not fatal: a user may see some resources and not others).
    pub errors: Vec<String>,
}

/// Reads every managed resource's settings; a refused read is noted, the rest still shows.
pub async fn details(client: &Client, resources: &Value) -> Details {
    let tgs = data::target_group_arns(resources);
    let rules = data::rule_arns(resources);
    let sgs = data::security_group_ids(resources);
    let alarms = data::alarm_names(resources);
    let logs = data::log_group_names(resources);
    let call = |svc, op: &'static str, input: Value, key: &'static str, skip: bool| async move {
        if skip {
            return Ok(Vec::new());
        }
        client.call_value(svc, op, input).await.map(|v| arr(&v, &[key]).to_vec()).map_err(|e| format!("{op}: {e}"))
    };
    let (t, r, g, a, l) = tokio::join!(
        call(Service::Elbv2, "DescribeTargetGroups", json!({"TargetGroupArns": tgs}), "TargetGroups", tgs.is_empty()),
        call(Service::Elbv2, "DescribeRules", json!({"RuleArns": rules}), "Rules", rules.is_empty()),
        call(Service::Ec2, "DescribeSecurityGroups", json!({"GroupIds": sgs}), "SecurityGroups", sgs.is_empty()),
        call(Service::CloudWatch, "DescribeAlarms", json!({"AlarmNames": alarms}), "MetricAlarms", alarms.is_empty()),
        call(
            Service::Logs,
            "DescribeLogGroups",
            json!({"logGroupNamePrefix": logs.first().cloned().unwrap_or_default()}),
            "logGroups",
            logs.is_empty()
        ),
    );
    let mut d = Details::default();
    let mut take = |res: Result<Vec<Value>, String>| match res {
        Ok(v) => v,
        Err(e) => {
            d.errors.push(e);
            Vec::new()
        }
    };
    let (t, r, g, a) = (take(t), take(r), take(g), take(a));
    let l: Vec<Value> =
        take(l).into_iter().filter(|g| s(g, &["logGroupName"]).is_some_and(|n| logs.iter().any(|x| x == n))).collect();
    Details { target_groups: t, rules: r, security_groups: g, alarms: a, log_groups: l, errors: d.errors }
}

fn field(id: &str, label: &str, name: &str, value: String, kind: &str) -> Markup {
    html! {
        div class="field" {
            label for=(id) { (label) }
            input id=(id) name=(name) type=(kind) value=(value);
        }
    }
}

fn opt_num(v: &Value, path: &[&str]) -> String {
    num(v, path).map(|n| if n.fract() == 0.0 { format!("{}", n as i64) } else { n.to_string() }).unwrap_or_default()
}

/// The resources section's content.
pub fn render(l: &Loaded, resources: &Value, d: &Details, user: &User) -> Markup {
    let base = page_path(&l.cluster, &l.name);
    let scalable = resources.get("autoScaling").and_then(|a| a.get("scalableTarget"));
    let policies = resources.get("autoScaling").map(|a| arr(a, &["applicationAutoScalingPolicies"])).unwrap_or(&[]);
    let tg0 = d.target_groups.first();
    html! {
        @for e in &d.errors { p class="error" role="alert" { "Could not read: " (e) } }
        div class="table-wrap" {
            table class="resources" {
                thead { tr { th { "Resource" } th { "ARN" } th { "Status" } } }
                tbody {
                    @for p in arr(resources, &["ingressPaths"]) {
                        (row("Load balancer", p.get("loadBalancer")))
                        (row("Listener", p.get("listener")))
                        (row("Listener rule", p.get("rule")))
                        (row("Certificate", p.get("certificate")))
                        @for t in arr(p, &["targetGroups"]) { (row("Target group", Some(t))) }
                        @for g in arr(p, &["loadBalancerSecurityGroups"]) { (row("Load balancer security group", Some(g))) }
                    }
                    @for g in arr(resources, &["serviceSecurityGroups"]) { (row("Service security group", Some(g))) }
                    (row("Scalable target", scalable))
                    @for p in policies { (row("Scaling policy", Some(p))) }
                    @for a in arr(resources, &["metricAlarms"]) { (row("Alarm", Some(a))) }
                    @for g in arr(resources, &["logGroups"]) { (row("Log group", Some(g))) }
                }
            }
        }
        @if let Some(tg) = tg0 {
            form id="edit-health-check" method="post" action=(format!("{base}/health-check")) {
                h3 { "Health check" }
                (csrf_field(user))
                (field("hc-path", "Path", "health_check_path", s(tg, &["HealthCheckPath"]).unwrap_or("").into(), "text"))
                (field("hc-interval", "Interval (seconds)", "interval", opt_num(tg, &["HealthCheckIntervalSeconds"]), "number"))
                (field("hc-healthy", "Healthy threshold", "healthy_threshold", opt_num(tg, &["HealthyThresholdCount"]), "number"))
                (field("hc-unhealthy", "Unhealthy threshold", "unhealthy_threshold", opt_num(tg, &["UnhealthyThresholdCount"]), "number"))
                (field("hc-matcher", "Success codes", "matcher", s(tg, &["Matcher", "HttpCode"]).unwrap_or("").into(), "text"))
                button type="submit" { "Save health check" }
            }
        }
        @if let Some(t) = scalable {
            form id="edit-scaling" method="post" action=(format!("{base}/scaling")) {
                h3 { "Scaling" }
                (csrf_field(user))
                (field("scale-min", "Minimum tasks", "min_tasks", opt_num(t, &["minCapacity"]), "number"))
                (field("scale-max", "Maximum tasks", "max_tasks", opt_num(t, &["maxCapacity"]), "number"))
                button type="submit" { "Save scaling" }
            }
        }
        @for (i, r) in d.rules.iter().enumerate() {
            form id=(numbered("edit-rule-host", i)) class="edit-rule-host" method="post" action=(format!("{base}/rule-host")) {
                h3 { "Listener rule hosts" }
                (csrf_field(user))
                input type="hidden" name="rule_arn" value=(s(r, &["RuleArn"]).unwrap_or(""));
                (field(&numbered("rule-hosts", i), "Hosts (comma-separated)", "hosts", hosts(r).join(", "), "text"))
                button type="submit" { "Save hosts" }
            }
        }
        @for g in &d.security_groups {
            @let id = s(g, &["GroupId"]).unwrap_or("");
            div class="security-group" data-group=(id) {
                h3 { "Security group " code { (id) } " ingress" }
                ul {
                    @for p in arr(g, &["IpPermissions"]) {
                        @for r in arr(p, &["IpRanges"]) {
                            li {
                                (rule_text(p)) " from " code { (s(r, &["CidrIp"]).unwrap_or("")) }
                                form class="inline" method="post" action=(format!("{base}/ingress")) {
                                    (csrf_field(user))
                                    input type="hidden" name="group_id" value=(id);
                                    input type="hidden" name="op" value="revoke";
                                    input type="hidden" name="protocol" value=(s(p, &["IpProtocol"]).unwrap_or(""));
                                    input type="hidden" name="from_port" value=(opt_num(p, &["FromPort"]));
                                    input type="hidden" name="to_port" value=(opt_num(p, &["ToPort"]));
                                    input type="hidden" name="cidr" value=(s(r, &["CidrIp"]).unwrap_or(""));
                                    button type="submit" class="revoke-ingress" { "Remove" }
                                }
                            }
                        }
                    }
                }
                form class="add-ingress" method="post" action=(format!("{base}/ingress")) {
                    (csrf_field(user))
                    input type="hidden" name="group_id" value=(id);
                    input type="hidden" name="op" value="authorize";
                    (field(&format!("{id}-proto"), "Protocol (tcp, udp, -1)", "protocol", "tcp".into(), "text"))
                    (field(&format!("{id}-from"), "From port", "from_port", String::new(), "number"))
                    (field(&format!("{id}-to"), "To port", "to_port", String::new(), "number"))
                    (field(&format!("{id}-cidr"), "Source CIDR", "cidr", String::new(), "text"))
                    button type="submit" { "Add rule" }
                }
            }
        }
        @for (i, a) in d.alarms.iter().enumerate() {
            @let name = s(a, &["AlarmName"]).unwrap_or("");
            form class="edit-alarm" method="post" action=(format!("{base}/alarm")) {
                h3 { "Alarm " code { (name) } }
                p { (s(a, &["MetricName"]).unwrap_or("")) " " (s(a, &["ComparisonOperator"]).unwrap_or("")) " · state " (s(a, &["StateValue"]).unwrap_or("")) }
                (csrf_field(user))
                input type="hidden" name="alarm_name" value=(name);
                (field(&format!("alarm-threshold-{i}"), "Threshold", "threshold", opt_num(a, &["Threshold"]), "text"))
                button type="submit" { "Save threshold" }
            }
        }
        @for (i, g) in d.log_groups.iter().enumerate() {
            @let name = s(g, &["logGroupName"]).unwrap_or("");
            form id=(numbered("edit-log-retention", i)) class="edit-log-retention" method="post" action=(format!("{base}/log-retention")) {
                h3 { "Log group " code { (name) } }
                (csrf_field(user))
                input type="hidden" name="log_group" value=(name);
                (field(&numbered("log-retention", i), "Retention in days (1, 3, 5, 7, 14, 30, 60, 90, … 3653)", "retention_days", opt_num(g, &["retentionInDays"]), "number"))
                button type="submit" { "Save retention" }
            }
        }
    }
}

/// The first of a kind keeps the plain id the page's contract names (`form#edit-log-retention`); more get `-2`, `-3`.
fn numbered(id: &str, i: usize) -> String {
    if i == 0 { id.to_string() } else { format!("{id}-{}", i + 1) }
}

fn row(kind: &str, r: Option<&Value>) -> Markup {
    html! {
        @if let Some(r) = r {
            tr class="resource" data-kind=(kind) {
                td { (kind) }
                td class="arn" { code { (s(r, &["arn"]).unwrap_or("")) } }
                td { (s(r, &["status"]).unwrap_or("")) }
            }
        }
    }
}

/// A rule's host-header values.
pub fn hosts(rule: &Value) -> Vec<String> {
    arr(rule, &["Conditions"])
        .iter()
        .filter(|c| s(c, &["Field"]) == Some("host-header"))
        .flat_map(|c| {
            let config = arr(c, &["HostHeaderConfig", "Values"]);
            if config.is_empty() { arr(c, &["Values"]) } else { config }
        })
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn rule_text(p: &Value) -> String {
    let proto = s(p, &["IpProtocol"]).unwrap_or("");
    if proto == "-1" {
        return "all traffic".into();
    }
    match (num(p, &["FromPort"]), num(p, &["ToPort"])) {
        (Some(a), Some(b)) if a == b => format!("{proto} {a}"),
        (Some(a), Some(b)) => format!("{proto} {a}-{b}"),
        _ => proto.to_string(),
    }
}

/// A whole number form value in a range, or a message naming the field.
pub fn int_field(label: &str, raw: &str, min: i64, max: i64) -> Result<Option<i64>, ConsoleError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    match raw.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(ConsoleError::BadInput(format!("{label} must be a whole number from {min} to {max}, got {raw:?}"))),
    }
}

fn not_this_services(what: &str, name: &str) -> ConsoleError {
    ConsoleError::BadInput(format!("{what} is not one berth created for {name}; edit it with the AWS CLI instead"))
}

#[derive(Deserialize)]
pub struct HealthCheckForm {
    #[serde(default)]
    health_check_path: String,
    #[serde(default)]
    interval: String,
    #[serde(default)]
    healthy_threshold: String,
    #[serde(default)]
    unhealthy_threshold: String,
    #[serde(default)]
    matcher: String,
}

/// The ModifyTargetGroup input a health check form asks for.
pub fn health_check_input(f: &HealthCheckForm) -> Result<Value, ConsoleError> {
    let mut input = json!({});
    let path = f.health_check_path.trim();
    if !path.is_empty() {
        if !path.starts_with('/') || path.len() > 1024 || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConsoleError::BadInput(format!(
                "the health check path must start with / and have no spaces (at most 1024 characters), got {path:?}"
            )));
        }
        input["HealthCheckPath"] = json!(path);
    }
    if let Some(n) = int_field("The interval", &f.interval, 5, 300)? {
        input["HealthCheckIntervalSeconds"] = json!(n);
    }
    if let Some(n) = int_field("The healthy threshold", &f.healthy_threshold, 2, 10)? {
        input["HealthyThresholdCount"] = json!(n);
    }
    if let Some(n) = int_field("The unhealthy threshold", &f.unhealthy_threshold, 2, 10)? {
        input["UnhealthyThresholdCount"] = json!(n);
    }
    let matcher = f.matcher.trim();
    if !matcher.is_empty() {
        input["Matcher"] = json!({"HttpCode": matcher});
    }
    if input.as_object().is_some_and(|o| o.is_empty()) {
        return Err(ConsoleError::BadInput("nothing to change: fill in at least one health check setting".into()));
    }
    Ok(input)
}

pub async fn health_check(
    State(state): State<AppState>,
    user: User,
    Path((cluster, name)): Path<(String, String)>,
    Form(form): Form<HealthCheckForm>,
) -> Response {
    let done = health_check_inner(&user, &cluster, &name, form).await;
    super::outcome(&state, &user, &cluster, &name, done).await
}

async fn health_check_inner(
    user: &User,
    cluster: &str,
    name: &str,
    form: HealthCheckForm,
) -> Result<Redirect, ConsoleError> {
    let input = health_check_input(&form)?;
    let (_, resources) = data::current_resources(&user.client, cluster, name).await?;
    let groups = data::target_group_arns(&resources);
    if groups.is_empty() {
        return Err(ConsoleError::BadInput(format!("{name} has no target group yet; wait for it to become active")));
    }
    for tg in groups {
        let mut one = input.clone();
        one["TargetGroupArn"] = json!(tg);
        user.client.call_value(Service::Elbv2, "ModifyTargetGroup", one).await?;
    }
    Ok(back(cluster, name, "health-check"))
}

#[derive(Deserialize)]
pub struct ScalingForm {
    #[serde(default)]
    min_tasks: String,
    #[serde(default)]
    max_tasks: String,
}

pub async fn scaling(
    State(state): State<AppState>,
    user: User,
    Path((cluster, name)): Path<(String, String)>,
    Form(form): Form<ScalingForm>,
) -> Response {
    let done = scaling_inner(&user, &cluster, &name, form).await;
    super::outcome(&state, &user, &cluster, &name, done).await
}

async fn scaling_inner(user: &User, cluster: &str, name: &str, form: ScalingForm) -> Result<Redirect, ConsoleError> {
    let min = int_field("The minimum", &form.min_tasks, 0, 1000)?;
    let max = int_field("The maximum", &form.max_tasks, 1, 1000)?;
    let (Some(min), Some(max)) = (min, max) else {
        return Err(ConsoleError::BadInput("give both the minimum and the maximum number of tasks".into()));
    };
    if min > max {
        return Err(ConsoleError::BadInput(format!("the minimum ({min}) is above the maximum ({max})")));
    }
    let (arn, _) = data::find(&user.client, cluster, name).await?;
    user.client
        .call_value(
            Service::Ecs,
            "UpdateExpressGatewayService",
            json!({"serviceArn": arn, "scalingTarget": {"minTaskCount": min, "maxTaskCount": max}}),
        )
        .await?;
    Ok(back(cluster, name, "scaling"))
}

#[derive(Deserialize)]
pub struct RuleHostForm {
    #[serde(default)]
    rule_arn: String,
    #[serde(default)]
    hosts: String,
}

/// Host names from a comma/space separated list (at most 5, as ALB's host-header condition allows).
pub fn parse_hosts(raw: &str) -> Result<Vec<String>, ConsoleError> {
    let hosts: Vec<String> =
        raw.split(|c: char| c == ',' || c.is_whitespace()).filter(|h| !h.is_empty()).map(str::to_string).collect();
    if hosts.is_empty() || hosts.len() > 5 {
        return Err(ConsoleError::BadInput(format!("give 1 to 5 host names separated by commas, got {}", hosts.len())));
    }
    if let Some(bad) =
        hosts.iter().find(|h| h.len() > 128 || !h.chars().all(|c| c.is_ascii_alphanumeric() || "-.*?".contains(c)))
    {
        return Err(ConsoleError::BadInput(format!("{bad:?} is not a host name (letters, digits, - . * ?)")));
    }
    Ok(hosts)
}

pub async fn rule_host(
    State(state): State<AppState>,
    user: User,
    Path((cluster, name)): Path<(String, String)>,
    Form(form): Form<RuleHostForm>,
) -> Response {
    let done = rule_host_inner(&user, &cluster, &name, form).await;
    super::outcome(&state, &user, &cluster, &name, done).await
}

async fn rule_host_inner(user: &User, cluster: &str, name: &str, form: RuleHostForm) -> Result<Redirect, ConsoleError> {
    let hosts = parse_hosts(&form.hosts)?;
    let (_, resources) = data::current_resources(&user.client, cluster, name).await?;
    if !data::rule_arns(&resources).contains(&form.rule_arn) {
        return Err(not_this_services("that listener rule", name));
    }
    let rules = user.client.call_value(Service::Elbv2, "DescribeRules", json!({"RuleArns": [form.rule_arn]})).await?;
    let rule = arr(&rules, &["Rules"]).first().cloned().unwrap_or(Value::Null);
    // Keep every other condition; replace the host-header one.
    let mut conditions: Vec<Value> =
        arr(&rule, &["Conditions"]).iter().filter(|c| s(c, &["Field"]) != Some("host-header")).cloned().collect();
    conditions.push(json!({"Field": "host-header", "HostHeaderConfig": {"Values": hosts}}));
    user.client
        .call_value(Service::Elbv2, "ModifyRule", json!({"RuleArn": form.rule_arn, "Conditions": conditions}))
        .await?;
    Ok(back(cluster, name, "rule-host"))
}

#[derive(Deserialize)]
pub struct IngressForm {
    #[serde(default)]
    group_id: String,
    #[serde(default)]
    op: String,
    #[serde(default)]
    protocol: String,
    #[serde(default)]
    from_port: String,
    #[serde(default)]
    to_port: String,
    #[serde(default)]
    cidr: String,
}

/// The IpPermissions of an ingress form.
pub fn ingress_permission(f: &IngressForm) -> Result<Value, ConsoleError> {
    let proto = f.protocol.trim().to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "icmp" | "-1") {
        return Err(ConsoleError::BadInput(format!("the protocol must be tcp, udp, icmp or -1 (all), got {proto:?}")));
    }
    let cidr = f.cidr.trim();
    let valid_cidr = cidr.split_once('/').is_some_and(|(ip, bits)| {
        ip.parse::<std::net::Ipv4Addr>().is_ok() && bits.parse::<u8>().is_ok_and(|b| b <= 32)
    });
    if !valid_cidr {
        return Err(ConsoleError::BadInput(format!("the source must be an IPv4 CIDR like 10.0.0.0/8, got {cidr:?}")));
    }
    let mut p = json!({"IpProtocol": proto, "IpRanges": [{"CidrIp": cidr}]});
    if proto != "-1" {
        let from = int_field("The from port", &f.from_port, -1, 65535)?;
        let to = int_field("The to port", &f.to_port, -1, 65535)?.or(from);
        let (Some(from), Some(to)) = (from, to) else {
            return Err(ConsoleError::BadInput("give the port (from, and to for a range)".into()));
        };
        if from > to {
            return Err(ConsoleError::BadInput(format!("the from port ({from}) is above the to port ({to})")));
        }
        p["FromPort"] = json!(from);
        p["ToPort"] = json!(to);
    }
    Ok(p)
}

pub async fn ingress(
    State(state): State<AppState>,
    user: User,
    Path((cluster, name)): Path<(String, String)>,
    Form(form): Form<IngressForm>,
) -> Response {
    let done = ingress_inner(&user, &cluster, &name, form).await;
    super::outcome(&state, &user, &cluster, &name, done).await
}

async fn ingress_inner(user: &User, cluster: &str, name: &str, form: IngressForm) -> Result<Redirect, ConsoleError> {
    let op = match form.op.as_str() {
        "authorize" => "AuthorizeSecurityGroupIngress",
        "revoke" => "RevokeSecurityGroupIngress",
        other => return Err(ConsoleError::BadInput(format!("op must be authorize or revoke, got {other:?}"))),
    };
    let permission = ingress_permission(&form)?;
    let (_, resources) = data::current_resources(&user.client, cluster, name).await?;
    if !data::security_group_ids(&resources).contains(&form.group_id) {
        return Err(not_this_services("that security group", name));
    }
    user.client.call_value(Service::Ec2, op, json!({"GroupId": form.group_id, "IpPermissions": [permission]})).await?;
    Ok(back(cluster, name, "ingress"))
}

#[derive(Deserialize)]
pub struct AlarmForm {
    #[serde(default)]
    alarm_name: String,
    #[serde(default)]
    threshold: String,
}

/// The members of a MetricAlarm that PutMetricAlarm takes back unchanged.
const ALARM_MEMBERS: [&str; 20] = [
    "AlarmName",
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
];

/// PutMetricAlarm's input: the alarm as described, with a new threshold.
pub fn alarm_input(alarm: &Value, threshold: f64) -> Value {
    let mut input = json!({});
    for m in ALARM_MEMBERS {
        if let Some(v) = alarm.get(m).filter(|v| !v.is_null()) {
            input[m] = v.clone();
        }
    }
    input["Threshold"] = json!(threshold);
    input
}

pub async fn alarm(
    State(state): State<AppState>,
    user: User,
    Path((cluster, name)): Path<(String, String)>,
    Form(form): Form<AlarmForm>,
) -> Response {
    let done = alarm_inner(&user, &cluster, &name, form).await;
    super::outcome(&state, &user, &cluster, &name, done).await
}

async fn alarm_inner(user: &User, cluster: &str, name: &str, form: AlarmForm) -> Result<Redirect, ConsoleError> {
    let threshold: f64 =
        form.threshold.trim().parse().ok().filter(|t: &f64| t.is_finite()).ok_or_else(|| {
            ConsoleError::BadInput(format!("the threshold must be a number, got {:?}", form.threshold))
        })?;
    let (_, resources) = data::current_resources(&user.client, cluster, name).await?;
    if !data::alarm_names(&resources).contains(&form.alarm_name) {
        return Err(not_this_services("that alarm", name));
    }
    let out =
        user.client.call_value(Service::CloudWatch, "DescribeAlarms", json!({"AlarmNames": [form.alarm_name]})).await?;
    let alarm = arr(&out, &["MetricAlarms"])
        .first()
        .cloned()
        .ok_or_else(|| ConsoleError::BadInput(format!("the alarm {} is gone; reload the page", form.alarm_name)))?;
    user.client.call_value(Service::CloudWatch, "PutMetricAlarm", alarm_input(&alarm, threshold)).await?;
    Ok(back(cluster, name, "alarm"))
}

#[derive(Deserialize)]
pub struct RetentionForm {
    #[serde(default)]
    log_group: String,
    #[serde(default)]
    retention_days: String,
}

/// The retention values CloudWatch Logs accepts.
const RETENTION_DAYS: [i64; 22] =
    [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];

pub async fn log_retention(
    State(state): State<AppState>,
    user: User,
    Path((cluster, name)): Path<(String, String)>,
    Form(form): Form<RetentionForm>,
) -> Response {
    let done = log_retention_inner(&user, &cluster, &name, form).await;
    super::outcome(&state, &user, &cluster, &name, done).await
}

async fn log_retention_inner(
    user: &User,
    cluster: &str,
    name: &str,
    form: RetentionForm,
) -> Result<Redirect, ConsoleError> {
    let days =
        form.retention_days.trim().parse::<i64>().ok().filter(|d| RETENTION_DAYS.contains(d)).ok_or_else(|| {
            ConsoleError::BadInput(format!(
                "the retention must be one of {} days, got {:?}",
                RETENTION_DAYS.map(|d| d.to_string()).join(", "),
                form.retention_days
            ))
        })?;
    let (_, resources) = data::current_resources(&user.client, cluster, name).await?;
    if !data::log_group_names(&resources).contains(&form.log_group) {
        return Err(not_this_services("that log group", name));
    }
    user.client
        .call_value(
            Service::Logs,
            "PutRetentionPolicy",
            json!({"logGroupName": form.log_group, "retentionInDays": days}),
        )
        .await?;
    Ok(back(cluster, name, "log-retention"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(path: &str, interval: &str) -> HealthCheckForm {
        HealthCheckForm {
            health_check_path: path.into(),
            interval: interval.into(),
            healthy_threshold: "3".into(),
            unhealthy_threshold: String::new(),
            matcher: "200-299".into(),
        }
    }

    #[test]
    fn a_health_check_form_becomes_modify_target_group() {
        let v = health_check_input(&hc("/ping", "10")).expect("the test input");
        assert_eq!(
            v,
            json!({"HealthCheckPath": "/ping", "HealthCheckIntervalSeconds": 10, "HealthyThresholdCount": 3, "Matcher": {"HttpCode": "200-299"}})
        );
        assert!(health_check_input(&hc("ping", "")).is_err());
        assert!(health_check_input(&hc("/a b", "")).is_err());
        assert!(health_check_input(&hc("/", "4")).is_err());
        let e = health_check_input(&hc("/", "x")).expect_err("the test input").to_string();
        assert!(e.contains("interval") && e.contains("5 to 300"), "{e}");
    }

    #[test]
    fn hosts_and_ingress_are_checked() {
        assert_eq!(parse_hosts("a.example, b.example").expect("the test input"), vec!["a.example", "b.example"]);
        assert!(parse_hosts("").is_err());
        assert!(parse_hosts("a b c d e f").is_err());
        assert!(parse_hosts("bad/host").is_err());
        let rule = json!({"Conditions": [{"Field": "host-header", "HostHeaderConfig": {"Values": ["x.example"]}},
            {"Field": "path-pattern", "Values": ["/*"]}]});
        assert_eq!(hosts(&rule), vec!["x.example"]);
        let f = |proto: &str, from: &str, to: &str, cidr: &str| IngressForm {
            group_id: "sg-1".into(),
            op: "authorize".into(),
            protocol: proto.into(),
            from_port: from.into(),
            to_port: to.into(),
            cidr: cidr.into(),
        };
        assert_eq!(
            ingress_permission(&f("tcp", "443", "", "10.0.0.0/8")).expect("the test input"),
            json!({"IpProtocol": "tcp", "IpRanges": [{"CidrIp": "10.0.0.0/8"}], "FromPort": 443, "ToPort": 443})
        );
        assert_eq!(ingress_permission(&f("-1", "", "", "0.0.0.0/0")).expect("the test input")["IpProtocol"], "-1");
        assert!(ingress_permission(&f("tcp", "", "", "10.0.0.0/8")).is_err());
        assert!(ingress_permission(&f("tcp", "90", "80", "10.0.0.0/8")).is_err());
        assert!(ingress_permission(&f("tcp", "80", "", "10.0.0.0")).is_err());
        assert!(ingress_permission(&f("gre", "80", "", "10.0.0.0/8")).is_err());
    }

    #[test]
    fn an_alarm_keeps_its_settings_with_a_new_threshold() {
        let alarm = json!({"AlarmName": "a", "AlarmArn": "arn", "StateValue": "OK", "MetricName": "m", "Namespace": "n",
            "Statistic": "Sum", "Period": 60, "EvaluationPeriods": 3, "Threshold": 5.0, "ComparisonOperator": "GreaterThanThreshold",
            "AlarmActions": ["x"], "Dimensions": [{"Name": "d", "Value": "v"}]});
        let input = alarm_input(&alarm, 9.5);
        assert_eq!(input["Threshold"], 9.5);
        assert_eq!(input["AlarmActions"], json!(["x"]));
        assert_eq!(input["Dimensions"], alarm["Dimensions"]);
        assert!(input.get("AlarmArn").is_none() && input.get("StateValue").is_none());
    }

    #[test]
    fn numbers_name_their_field_and_range() {
        assert_eq!(int_field("x", " 7 ", 1, 10).expect("the test input"), Some(7));
        assert_eq!(int_field("x", "", 1, 10).expect("the test input"), None);
        let e = int_field("The minimum", "11", 1, 10).expect_err("the test input").to_string();
        assert!(e.contains("The minimum") && e.contains("1 to 10") && e.contains("11"), "{e}");
    }
}
