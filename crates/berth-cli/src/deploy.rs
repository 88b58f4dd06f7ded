//! `berth deploy IMAGE`: create or update an Express service, show its progress, end with its URL.
//!
//! Create when no service has the name (the roles found by their AWS console names, or created with AWS's
//! managed policies after asking), else UpdateExpressGatewayService with only what changed. Then
//! `progress::watch` follows the deployment to its end (`--detach`: return at once).

use std::time::Duration;

use berth_client::{ClientError, Service};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::output::{Doc, Section};
use crate::progress::{Outcome, Watch};
use crate::service::{self, Found};
use crate::{CliError, Ctx};

pub const EXAMPLES: &str = "Examples:
  berth deploy nginx:1.27 --port 80
  berth deploy registry.example.com/shop:v2 --name shop --env MODE=prod --min 2 --max 10 --scale-on requests --target 500
  berth deploy berth-demo:latest --yes --output json     # scripts: no questions, JSON on stdout";

/// The task execution role's name as AWS's console creates it.
pub const EXECUTION_ROLE: &str = "ecsTaskExecutionRole";
/// The infrastructure role's name as AWS's documentation names it.
pub const INFRASTRUCTURE_ROLE: &str = "ecsInfrastructureRoleForExpressServices";
const EXECUTION_POLICY: &str = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy";
const INFRASTRUCTURE_POLICY: &str =
    "arn:aws:iam::aws:policy/service-role/AmazonECSInfrastructureRoleforExpressGatewayServices";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container image (`nginx:1.27`, `registry.example.com/team/shop:v2`).
    pub image: String,
    /// The service name (default: the image repository's last path segment).
    #[arg(long)]
    pub name: Option<String>,
    /// The container port (default 80).
    #[arg(long)]
    pub port: Option<u16>,
    /// An environment variable (repeatable); merged into the service's variables on an update.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Remove an environment variable on an update (repeatable).
    #[arg(long = "unset-env", value_name = "KEY")]
    pub unset_env: Vec<String>,
    /// A secret as an environment variable, from Secrets Manager or SSM (repeatable).
    #[arg(long = "secret", value_name = "NAME=ARN")]
    pub secret: Vec<String>,
    /// CPU units (256, 512, 1024, 2048, 4096).
    #[arg(long)]
    pub cpu: Option<String>,
    /// Memory in MiB (512 … 30720).
    #[arg(long)]
    pub memory: Option<String>,
    /// Minimum task count.
    #[arg(long)]
    pub min: Option<i32>,
    /// Maximum task count.
    #[arg(long)]
    pub max: Option<i32>,
    /// The auto scaling metric.
    #[arg(long, value_enum, requires = "target")]
    pub scale_on: Option<ScaleOn>,
    /// The auto scaling target value (percent for cpu/memory, requests per task for requests).
    #[arg(long, requires = "scale_on")]
    pub target: Option<i32>,
    /// The health check path (default /ping).
    #[arg(long)]
    pub health_path: Option<String>,
    /// Serve on an internal load balancer (a private subnet of the default VPC), reachable from the VPC only.
    #[arg(long)]
    pub private: bool,
    /// The task execution role (default: the role named ecsTaskExecutionRole).
    #[arg(long, value_name = "ARN")]
    pub execution_role: Option<String>,
    /// The infrastructure role (default: ecsInfrastructureRoleForExpressServices); set at creation only.
    #[arg(long, value_name = "ARN")]
    pub infrastructure_role: Option<String>,
    /// Return right after the call instead of following the deployment.
    #[arg(long)]
    pub detach: bool,
    /// How long to follow the deployment (`30m`, `90s`, `1h`); it keeps running after.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// `--scale-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScaleOn {
    Cpu,
    Memory,
    Requests,
}

impl ScaleOn {
    fn metric(self) -> &'static str {
        match self {
            ScaleOn::Cpu => "AVERAGE_CPU",
            ScaleOn::Memory => "AVERAGE_MEMORY",
            ScaleOn::Requests => "REQUEST_COUNT_PER_TARGET",
        }
    }
}

/// `30m`, `90s`, `1h`, `45` (seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = num.parse().map_err(|_| format!("'{s}' is not a duration: use 90s, 30m or 1h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("'{s}' is not a duration: use 90s, 30m or 1h")),
    };
    if secs == 0 {
        return Err("the timeout must be more than 0".into());
    }
    Ok(Duration::from_secs(secs))
}

/// The service name AWS derives from an image: the repository's last path segment, without tag or digest,
/// every character other than letters, digits, `-` and `_` replaced by `-`.
pub fn default_name(image: &str) -> Result<String, CliError> {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    let repo = last.split(':').next().unwrap_or(last);
    let name: String =
        repo.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    let name = name.trim_matches('-').chars().take(255).collect::<String>();
    if name.is_empty() {
        return Err(CliError::Usage(format!("cannot derive a service name from the image '{image}': pass --name")));
    }
    Ok(name)
}

fn check_name(name: &str) -> Result<(), CliError> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "invalid --name '{name}': up to 255 letters, digits, '-' and '_', starting with a letter or digit"
        )))
    }
}

/// `KEY=VALUE` pairs of a repeatable flag.
pub fn pairs(flag: &str, values: &[String]) -> Result<Vec<(String, String)>, CliError> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((k, val)) if !k.trim().is_empty() => Ok((k.trim().to_string(), val.to_string())),
            _ => Err(CliError::Usage(format!("{flag} expects KEY=VALUE, got '{v}'"))),
        })
        .collect()
}

/// What a deploy did, for its final output.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Deployed {
    pub name: String,
    pub arn: String,
    /// `created`, `updated` or `unchanged`.
    pub action: String,
    pub url: Option<String>,
    pub revision: Option<String>,
    pub deployment_arn: Option<String>,
    /// The deployment's status at the end (`SUCCESSFUL`; `IN_PROGRESS` with `--detach`).
    pub status: Option<String>,
}

/// The final answer: JSON and fields, the URL as the last line.
pub fn doc(d: &Deployed) -> Doc {
    let json = json!({
        "serviceName": d.name,
        "serviceArn": d.arn,
        "action": d.action,
        "url": d.url,
        "serviceRevisionArn": d.revision,
        "serviceDeploymentArn": d.deployment_arn,
        "deploymentStatus": d.status,
    });
    let mut fields = vec![("Service".to_string(), d.name.clone()), ("Action".to_string(), d.action.clone())];
    if let Some(r) = &d.revision {
        fields.push(("Revision".into(), service::revision_label(r)));
    }
    if let Some(a) = &d.deployment_arn {
        fields.push(("Deployment".into(), service::short_name(a).to_string()));
    }
    if let Some(s) = &d.status {
        fields.push(("Status".into(), s.clone()));
    }
    let mut sections = vec![Section::Fields { title: None, fields }];
    if let Some(u) = &d.url {
        sections.push(Section::Lines(vec![u.clone()]));
    }
    Doc { json, sections }
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Doc, CliError> {
    let name = match &args.name {
        Some(n) => n.clone(),
        None => default_name(&args.image)?,
    };
    check_name(&name)?;
    if args.image.trim().is_empty() {
        return Err(CliError::Usage("the image is empty".into()));
    }
    if let (Some(min), Some(max)) = (args.min, args.max)
        && min > max
    {
        return Err(CliError::Usage(format!("--min {min} is more than --max {max}")));
    }
    if args.min.is_some_and(|m| m < 0) || args.max.is_some_and(|m| m < 1) {
        return Err(CliError::Usage("--min must be 0 or more and --max 1 or more".into()));
    }
    if let Some(p) = &args.health_path
        && !p.starts_with('/')
    {
        return Err(CliError::Usage(format!("--health-path must start with '/', got '{p}'")));
    }
    let env = pairs("--env", &args.env)?;
    let secrets = pairs("--secret", &args.secret)?;

    let existing = service::try_find(ctx, &name).await?;
    let (action, arn, deployment_arn, url, revision) = match existing {
        Some(found) => {
            let Some(request) = update_request(&found, &args, &env, &secrets)? else {
                let newest = service::newest_configuration(&found.service);
                let d = Deployed {
                    name: found.name.clone(),
                    arn: found.arn.clone(),
                    action: "unchanged".into(),
                    url: service::url(&found.service, ctx.url_port),
                    revision: newest.and_then(|c| c["serviceRevisionArn"].as_str()).map(str::to_string),
                    deployment_arn: found.service["currentDeployment"].as_str().map(str::to_string),
                    status: None,
                };
                eprintln!("{} is already running {} with these settings: nothing to deploy.", found.name, args.image);
                return Ok(doc(&d));
            };
            let before = found.service["currentDeployment"].as_str().map(str::to_string);
            let out = ctx.client.call_value(Service::Ecs, "UpdateExpressGatewayService", request).await?;
            let after = service::describe(ctx, &found.arn).await?;
            let dep = after["currentDeployment"].as_str().map(str::to_string).filter(|d| Some(d) != before.as_ref());
            let revision = out["service"]["targetConfiguration"]["serviceRevisionArn"].as_str().map(str::to_string);
            ("updated", found.arn, dep, service::url(&after, ctx.url_port), revision)
        }
        None => {
            let request = create_request(ctx, &name, &args, &env, &secrets).await?;
            let out = create(ctx, request).await?;
            let svc = &out["service"];
            let arn = svc["serviceArn"]
                .as_str()
                .ok_or_else(|| {
                    CliError::Client(ClientError::Decode("CreateExpressGatewayService: no serviceArn".into()))
                })?
                .to_string();
            let revision =
                service::newest_configuration(svc).and_then(|c| c["serviceRevisionArn"].as_str()).map(str::to_string);
            (
                "created",
                arn,
                svc["currentDeployment"].as_str().map(str::to_string),
                service::url(svc, ctx.url_port),
                revision,
            )
        }
    };
    let mut deployed = Deployed {
        name: name.clone(),
        arn: arn.clone(),
        action: action.into(),
        url,
        revision,
        deployment_arn: deployment_arn.clone(),
        status: None,
    };
    if let Some(u) = &deployed.url {
        eprintln!("{} {name}: {u}", if action == "created" { "Created" } else { "Updated" });
    }
    if deployment_arn.is_none() {
        // An update of the scaling settings only: no new tasks, no deployment.
        eprintln!("Scaling settings changed; no new deployment was needed.");
        return Ok(doc(&deployed));
    }
    if args.detach {
        deployed.status = Some("IN_PROGRESS".into());
        eprintln!("Not following the deployment (--detach); watch it with `berth status {name}`.");
        return Ok(doc(&deployed));
    }
    let verb = if action == "created" { "Deploying" } else { "Updating" };
    let watch = Watch {
        arn: &arn,
        name: &name,
        deployment_arn: deployment_arn.as_deref(),
        header: format!("{verb} {name} ({})", args.image),
        timeout: args.timeout,
    };
    let (last, outcome) = crate::progress::watch(ctx, &watch).await?;
    deployed.status = last.deployment["status"].as_str().map(str::to_string);
    if deployed.url.is_none() {
        deployed.url = service::url(&last.service, ctx.url_port);
    }
    match outcome {
        Outcome::Succeeded => Ok(doc(&deployed)),
        Outcome::Failed(why) => Err(CliError::Failed(format!(
            "the deployment of {name} did not complete: {why}; see `berth status {name}`"
        ))),
    }
}

/// CreateExpressGatewayService, retried briefly while just-created roles cannot be assumed yet (as on AWS).
async fn create(ctx: &Ctx, request: Value) -> Result<Value, CliError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match ctx.client.call_value(Service::Ecs, "CreateExpressGatewayService", request.clone()).await {
            Err(ClientError::Api { code, message, .. })
                if attempt < 6 && code == "InvalidParameterException" && message.to_lowercase().contains("assume") =>
            {
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            other => return Ok(other?),
        }
    }
}

fn container(args: &Args, env: &[(String, String)], secrets: &[(String, String)]) -> Value {
    let mut c = json!({"image": args.image});
    if let Some(p) = args.port {
        c["containerPort"] = json!(p);
    }
    if !env.is_empty() {
        c["environment"] = env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
    }
    if !secrets.is_empty() {
        c["secrets"] = secrets.iter().map(|(k, v)| json!({"name": k, "valueFrom": v})).collect();
    }
    c
}

async fn create_request(
    ctx: &Ctx,
    name: &str,
    args: &Args,
    env: &[(String, String)],
    secrets: &[(String, String)],
) -> Result<Value, CliError> {
    if !args.unset_env.is_empty() {
        return Err(CliError::Usage(format!("--unset-env: there is no service {name} yet to remove variables from")));
    }
    let (execution, infrastructure) = roles(ctx, args).await?;
    let mut req = json!({
        "serviceName": name,
        "cluster": ctx.cluster,
        "executionRoleArn": execution,
        "infrastructureRoleArn": infrastructure,
        "primaryContainer": container(args, env, secrets),
    });
    if let Some(p) = &args.health_path {
        req["healthCheckPath"] = json!(p);
    }
    if let Some(c) = &args.cpu {
        req["cpu"] = json!(c);
    }
    if let Some(m) = &args.memory {
        req["memory"] = json!(m);
    }
    let scaling = scaling_target(&Value::Null, args)?;
    if scaling.as_object().is_some_and(|o| !o.is_empty()) {
        req["scalingTarget"] = scaling;
    }
    if args.private {
        req["networkConfiguration"] = json!({"subnets": private_subnets(ctx).await?});
    }
    Ok(req)
}

/// The scaling target `current` becomes with the flags (an empty object when neither says anything).
fn scaling_target(current: &Value, args: &Args) -> Result<Value, CliError> {
    let mut s = if current.is_object() { current.clone() } else { json!({}) };
    if let Some(m) = args.min {
        s["minTaskCount"] = json!(m);
    }
    if let Some(m) = args.max {
        s["maxTaskCount"] = json!(m);
    }
    if let Some(on) = args.scale_on {
        s["autoScalingMetric"] = json!(on.metric());
    }
    if let Some(t) = args.target {
        if t < 1 {
            return Err(CliError::Usage(format!("--target must be 1 or more, got {t}")));
        }
        s["autoScalingTargetValue"] = json!(t);
    }
    if let (Some(min), Some(max)) = (s["minTaskCount"].as_i64(), s["maxTaskCount"].as_i64())
        && min > max
    {
        return Err(CliError::Usage(format!("the minimum task count {min} would be more than the maximum {max}")));
    }
    Ok(s)
}

/// The UpdateExpressGatewayService request for what the flags change, or `None` when nothing changes.
fn update_request(
    found: &Found,
    args: &Args,
    env: &[(String, String)],
    secrets: &[(String, String)],
) -> Result<Option<Value>, CliError> {
    if service::status_code(&found.service) == "DRAINING" {
        return Err(CliError::Failed(format!(
            "{} is being deleted; wait until it is gone, or deploy under another --name",
            found.name
        )));
    }
    let current = service::newest_configuration(&found.service).cloned().unwrap_or(Value::Null);
    if let Some(infra) = &args.infrastructure_role
        && found.service["infrastructureRoleArn"].as_str() != Some(infra)
    {
        return Err(CliError::Usage(format!(
            "{} exists and its infrastructure role cannot change (it is set at creation); drop --infrastructure-role or deploy under another --name",
            found.name
        )));
    }
    let private_now = current["ingressPaths"].as_array().into_iter().flatten().any(|p| p["accessType"] == "PRIVATE");
    if args.private && !private_now {
        return Err(CliError::Usage(format!(
            "{} is public; a service cannot become private: deploy a new one under another --name",
            found.name
        )));
    }
    let mut req = json!({"serviceArn": found.arn});
    let mut changed = false;

    // The container: the current one with the flags applied; sent whole when anything in it changed.
    let mut c = current["primaryContainer"].clone();
    if !c.is_object() {
        c = json!({});
    }
    let mut container_changed = c["image"].as_str() != Some(args.image.as_str());
    c["image"] = json!(args.image);
    if let Some(p) = args.port
        && c["containerPort"].as_i64().unwrap_or(80) != i64::from(p)
    {
        c["containerPort"] = json!(p);
        container_changed = true;
    }
    let merged = merge_named(&c["environment"], env, "value", &args.unset_env);
    if merged != c["environment"] && !(merged.as_array().is_some_and(|a| a.is_empty()) && c["environment"].is_null()) {
        c["environment"] = merged;
        container_changed = true;
    }
    let merged = merge_named(&c["secrets"], secrets, "valueFrom", &[]);
    if merged != c["secrets"] && !(merged.as_array().is_some_and(|a| a.is_empty()) && c["secrets"].is_null()) {
        c["secrets"] = merged;
        container_changed = true;
    }
    if container_changed {
        req["primaryContainer"] = c;
        changed = true;
    }
    let mut set = |key: &str, want: Option<&str>| {
        if let Some(w) = want
            && current[key].as_str() != Some(w)
        {
            req[key] = json!(w);
            changed = true;
        }
    };
    set("executionRoleArn", args.execution_role.as_deref());
    set("healthCheckPath", args.health_path.as_deref());
    set("cpu", args.cpu.as_deref());
    set("memory", args.memory.as_deref());
    let scaling = scaling_target(&current["scalingTarget"], args)?;
    let now = if current["scalingTarget"].is_object() { current["scalingTarget"].clone() } else { json!({}) };
    if scaling != now {
        req["scalingTarget"] = scaling;
        changed = true;
    }
    Ok(changed.then_some(req))
}

/// A `[{name, <value_key>}]` list with `set` applied (replacing same-named entries, keeping order) and the
/// names in `unset` removed.
fn merge_named(current: &Value, set: &[(String, String)], value_key: &str, unset: &[String]) -> Value {
    let mut list: Vec<Value> = current.as_array().cloned().unwrap_or_default();
    list.retain(|e| !unset.iter().any(|u| e["name"].as_str() == Some(u)));
    for (k, v) in set {
        match list.iter_mut().find(|e| e["name"].as_str() == Some(k)) {
            Some(e) => e[value_key] = json!(v),
            None => list.push(json!({"name": k, value_key: v})),
        }
    }
    Value::Array(list)
}

/// The two roles: the flags', else the roles with AWS's default names; missing ones created after asking.
async fn roles(ctx: &Ctx, args: &Args) -> Result<(String, String), CliError> {
    let execution = match &args.execution_role {
        Some(a) => Some(a.clone()),
        None => role_arn(ctx, EXECUTION_ROLE).await?,
    };
    let infrastructure = match &args.infrastructure_role {
        Some(a) => Some(a.clone()),
        None => role_arn(ctx, INFRASTRUCTURE_ROLE).await?,
    };
    if let (Some(e), Some(i)) = (&execution, &infrastructure) {
        return Ok((e.clone(), i.clone()));
    }
    // (name, managed policy, what it is, its flag)
    let mut missing = Vec::new();
    if execution.is_none() {
        missing.push((EXECUTION_ROLE, EXECUTION_POLICY, "task execution role", "--execution-role"));
    }
    if infrastructure.is_none() {
        missing.push((INFRASTRUCTURE_ROLE, INFRASTRUCTURE_POLICY, "infrastructure role", "--infrastructure-role"));
    }
    for (name, policy, what, flag) in &missing {
        eprintln!(
            "This account has no {what} named {name} (or pass {flag} ARN).\n  It would be created with AWS's managed policy {}.",
            service::short_name(policy)
        );
    }
    let names: Vec<&str> = missing.iter().map(|m| m.0).collect();
    if !ctx.confirm(&format!("Create the role{} {}", if names.len() > 1 { "s" } else { "" }, names.join(" and ")))? {
        return Err(CliError::Failed(
            "no roles to deploy with: answer yes to create them, or pass --execution-role and --infrastructure-role"
                .into(),
        ));
    }
    let execution = match execution {
        Some(e) => e,
        None => create_role(ctx, EXECUTION_ROLE, "ecs-tasks.amazonaws.com", EXECUTION_POLICY).await?,
    };
    let infrastructure = match infrastructure {
        Some(i) => i,
        None => create_role(ctx, INFRASTRUCTURE_ROLE, "ecs.amazonaws.com", INFRASTRUCTURE_POLICY).await?,
    };
    Ok((execution, infrastructure))
}

/// The ARN of the role `name`, `None` when there is none.
async fn role_arn(ctx: &Ctx, name: &str) -> Result<Option<String>, CliError> {
    match ctx.client.call_value(Service::Iam, "GetRole", json!({"RoleName": name})).await {
        Ok(v) => Ok(v["Role"]["Arn"].as_str().map(str::to_string)),
        Err(ClientError::Api { code, .. }) if code == "NoSuchEntity" => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A role trusted by `principal` with the managed policy `policy` attached (as AWS's console creates it).
async fn create_role(ctx: &Ctx, name: &str, principal: &str, policy: &str) -> Result<String, CliError> {
    let trust = json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": principal}, "Action": "sts:AssumeRole"}],
    });
    let out = ctx
        .client
        .call_value(
            Service::Iam,
            "CreateRole",
            json!({
                "RoleName": name,
                "AssumeRolePolicyDocument": trust.to_string(),
                "Description": "Created by berth deploy for Express services",
            }),
        )
        .await?;
    ctx.client.call_value(Service::Iam, "AttachRolePolicy", json!({"RoleName": name, "PolicyArn": policy})).await?;
    eprintln!("Created role {name} with {}.", service::short_name(policy));
    out["Role"]["Arn"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| CliError::Client(ClientError::Decode("CreateRole: no Role.Arn".into())))
}

/// The default VPC's private subnets (no public IP on launch).
async fn private_subnets(ctx: &Ctx) -> Result<Vec<String>, CliError> {
    let vpcs = ctx
        .client
        .call_value(Service::Ec2, "DescribeVpcs", json!({"Filters": [{"Name": "isDefault", "Values": ["true"]}]}))
        .await?;
    let Some(vpc) = vpcs["Vpcs"][0]["VpcId"].as_str() else {
        return Err(CliError::Failed("--private: there is no default VPC to find a private subnet in".into()));
    };
    let subnets = ctx
        .client
        .call_value(Service::Ec2, "DescribeSubnets", json!({"Filters": [{"Name": "vpc-id", "Values": [vpc]}]}))
        .await?;
    let private: Vec<String> = subnets["Subnets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["MapPublicIpOnLaunch"].as_bool() == Some(false))
        .filter_map(|s| s["SubnetId"].as_str().map(str::to_string))
        .collect();
    if private.is_empty() {
        return Err(CliError::Failed(format!(
            "--private: the default VPC {vpc} has no private subnet; create one (aws ec2 create-subnet --vpc-id {vpc} --cidr-block …) and deploy again"
        )));
    }
    Ok(private)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_the_repositorys_last_segment() {
        assert_eq!(default_name("nginx:1.27").ok().as_deref(), Some("nginx"));
        assert_eq!(default_name("registry.example.com:5000/team/shop:v2").ok().as_deref(), Some("shop"));
        assert_eq!(default_name("ghcr.io/a/my.app@sha256:abcd").ok().as_deref(), Some("my-app"));
        assert_eq!(default_name("berth-demo:latest").ok().as_deref(), Some("berth-demo"));
        assert!(matches!(default_name("..."), Err(CliError::Usage(_))));
    }

    #[test]
    fn pairs_need_a_key_and_an_equals_sign() {
        let p = pairs("--env", &["A=1".into(), "B=x=y".into(), "C=".into()]).ok();
        assert_eq!(p, Some(vec![("A".into(), "1".into()), ("B".into(), "x=y".into()), ("C".into(), String::new())]));
        let e = pairs("--env", &["NOPE".into()]).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("--env expects KEY=VALUE, got 'NOPE'"));
        assert!(pairs("--secret", &["=x".into()]).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("m").is_err());
    }

    fn args(image: &str) -> Args {
        Args {
            image: image.into(),
            name: None,
            port: None,
            env: vec![],
            unset_env: vec![],
            secret: vec![],
            cpu: None,
            memory: None,
            min: None,
            max: None,
            scale_on: None,
            target: None,
            health_path: None,
            private: false,
            execution_role: None,
            infrastructure_role: None,
            detach: false,
            timeout: Duration::from_secs(60),
        }
    }

    fn found() -> Found {
        Found {
            arn: "arn:aws:ecs:us-east-1:1:service/default/web".into(),
            name: "web".into(),
            service: json!({"status": {"statusCode": "ACTIVE"}, "infrastructureRoleArn": "arn:aws:iam::1:role/infra",
                "activeConfigurations": [{"serviceRevisionArn": "r1", "createdAt": 1.0, "cpu": "256",
                    "primaryContainer": {"image": "web:1", "containerPort": 8080,
                        "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
                    "scalingTarget": {"minTaskCount": 1, "maxTaskCount": 4},
                    "ingressPaths": [{"accessType": "PUBLIC", "endpoint": "web.localhost"}]}]}),
        }
    }

    #[test]
    fn an_update_sends_only_what_changed() {
        let f = found();
        assert_eq!(update_request(&f, &args("web:1"), &[], &[]).ok().flatten(), None);
        let mut a = args("web:1");
        a.port = Some(8080);
        a.cpu = Some("256".into());
        assert_eq!(update_request(&f, &a, &[], &[]).ok().flatten(), None, "same port and cpu: nothing to do");

        let env = vec![("B".to_string(), "3".to_string()), ("C".to_string(), "4".to_string())];
        let req = update_request(&f, &args("web:1"), &env, &[]).ok().flatten();
        assert_eq!(
            req,
            Some(json!({"serviceArn": f.arn, "primaryContainer": {"image": "web:1", "containerPort": 8080,
                "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}}))
        );

        let mut a = args("web:2");
        a.max = Some(10);
        let req = update_request(&f, &a, &[], &[]).ok().flatten().unwrap_or_default();
        assert_eq!(req["primaryContainer"]["image"], "web:2");
        assert_eq!(req["scalingTarget"], json!({"minTaskCount": 1, "maxTaskCount": 10}));
        assert!(req.get("cpu").is_none());

        let mut a = args("web:1");
        a.unset_env = vec!["A".into()];
        let req = update_request(&f, &a, &[], &[]).ok().flatten().unwrap_or_default();
        assert_eq!(req["primaryContainer"]["environment"], json!([{"name": "B", "value": "2"}]));
    }

    #[test]
    fn an_update_refuses_what_cannot_change() {
        let f = found();
        let mut a = args("web:1");
        a.infrastructure_role = Some("arn:aws:iam::1:role/other".into());
        assert!(matches!(update_request(&f, &a, &[], &[]), Err(CliError::Usage(_))));
        let mut a = args("web:1");
        a.private = true;
        assert!(matches!(update_request(&f, &a, &[], &[]), Err(CliError::Usage(_))));
        let mut a = args("web:1");
        a.min = Some(5);
        let e = update_request(&f, &a, &[], &[]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("minimum task count 5 would be more than the maximum 4"), "{e}");
    }
}
