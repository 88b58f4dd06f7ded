//! `berth status NAME`: one service — endpoint, revision, the deployment with its stage and traffic split, tasks
//! with target health, scaling, alarms with their state, and the last events.

use berth_client::Service;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::observe::{Observed, utc};
use crate::output::{Doc, Section, Table};
use crate::service::{self, denied, revision_label, short_name};
use crate::{CliError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service (name or ARN).
    pub name: String,
    /// How many recent events to show.
    #[arg(long, default_value_t = 10)]
    pub events: usize,
}

/// What `status` shows.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Data {
    pub observed: Observed,
    /// CloudWatch DescribeAlarms `MetricAlarms` of the service's alarms.
    #[serde(default)]
    pub alarms: Vec<Value>,
    #[serde(default = "ten")]
    pub events: usize,
    /// [`crate::Ctx::url_port`].
    #[serde(default)]
    pub url_port: Option<u16>,
}

fn ten() -> usize {
    10
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Doc, CliError> {
    let found = service::find(ctx, &args.name).await?;
    let mut observed = Observed::take(ctx, &found.arn, None).await?;
    let names: Vec<String> = observed
        .revisions
        .iter()
        .flat_map(|r| r["ecsManagedResources"]["metricAlarms"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a["arn"].as_str().map(alarm_name))
        .fold(Vec::new(), |mut acc, n| {
            if !acc.contains(&n) {
                acc.push(n);
            }
            acc
        });
    let mut alarms = Vec::new();
    if !names.is_empty() {
        match ctx.client.call_value(Service::CloudWatch, "DescribeAlarms", json!({"AlarmNames": names})).await {
            Ok(v) => alarms = v["MetricAlarms"].as_array().cloned().unwrap_or_default(),
            Err(e) if denied(&e) => observed.denied.push("cloudwatch:DescribeAlarms".into()),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(doc(&Data { observed, alarms, events: args.events, url_port: ctx.url_port }))
}

/// An alarm's name from its ARN (`arn:aws:cloudwatch:<region>:<account>:alarm:<name>`).
pub fn alarm_name(arn: &str) -> String {
    match arn.split_once(":alarm:") {
        Some((_, name)) => name.to_string(),
        None => arn.to_string(),
    }
}

fn pct(v: &Value) -> String {
    match v.as_f64() {
        Some(p) if p.fract() == 0.0 => format!("{p:.0}%"),
        Some(p) => format!("{p:.1}%"),
        None => "-".into(),
    }
}

pub fn doc(d: &Data) -> Doc {
    let o = &d.observed;
    let svc = &o.service;
    let newest = service::newest_configuration(svc).cloned().unwrap_or(Value::Null);
    let name = svc["serviceName"].as_str().unwrap_or("?").to_string();
    let url = service::url(svc, d.url_port);
    let mut sections = Vec::new();

    // The service.
    let mut status = service::status_code(svc).to_string();
    if let Some(r) = svc["status"]["statusReason"].as_str().filter(|r| !r.is_empty()) {
        status = format!("{status} ({r})");
    }
    let revision = newest["serviceRevisionArn"].as_str().map(revision_label);
    let image = newest["primaryContainer"]["image"].as_str().map(str::to_string);
    let mut fields = vec![
        ("Name".to_string(), name.clone()),
        ("Status".to_string(), status),
        ("URL".to_string(), url.clone().unwrap_or_else(|| "-".into())),
        ("Revision".to_string(), revision.clone().unwrap_or_else(|| "-".into())),
        ("Image".to_string(), image.clone().unwrap_or_else(|| "-".into())),
    ];
    if let Some(p) = newest["primaryContainer"]["containerPort"].as_i64() {
        fields.push(("Port".into(), p.to_string()));
    }
    if let Some(h) = newest["healthCheckPath"].as_str() {
        fields.push(("Health check".into(), h.to_string()));
    }
    if let (Some(c), Some(m)) = (newest["cpu"].as_str(), newest["memory"].as_str()) {
        fields.push(("CPU/memory".into(), format!("{c} / {m} MiB")));
    }
    sections.push(Section::Fields { title: None, fields });

    // The deployment.
    let dep = &o.deployment;
    let deployment_json = if dep.is_object() {
        let target = &dep["targetServiceRevision"];
        let target_rev = target["arn"].as_str().map(revision_label).unwrap_or_default();
        // A finished deployment's target serves everything, whatever weight it last requested.
        let target_weight = if dep["status"].as_str() == Some("SUCCESSFUL") {
            json!(100)
        } else {
            target["requestedProductionTrafficWeight"].clone()
        };
        let mut split = format!("revision {target_rev} {}", pct(&target_weight));
        for s in dep["sourceServiceRevisions"].as_array().into_iter().flatten() {
            let rev = s["arn"].as_str().map(revision_label).unwrap_or_default();
            let weight = if dep["status"].as_str() == Some("SUCCESSFUL") {
                json!(0)
            } else {
                s["requestedProductionTrafficWeight"].clone()
            };
            split.push_str(&format!(", revision {rev} {}", pct(&weight)));
        }
        let mut fields = vec![
            ("Id".to_string(), dep["serviceDeploymentArn"].as_str().map(short_name).unwrap_or("?").to_string()),
            ("Status".to_string(), dep["status"].as_str().unwrap_or("?").to_string()),
            ("Stage".to_string(), dep["lifecycleStage"].as_str().unwrap_or("-").to_string()),
            ("Traffic".to_string(), split.clone()),
        ];
        let bake = crate::progress::bake_note(o);
        if !bake.is_empty() {
            fields.push(("Bake".into(), bake.trim_start_matches("bake ").to_string()));
        }
        if let Some(r) = dep["statusReason"].as_str().filter(|r| !r.is_empty()) {
            fields.push(("Reason".into(), r.to_string()));
        }
        if let Some(r) = dep["rollback"]["reason"].as_str() {
            fields.push(("Rollback".into(), r.to_string()));
        }
        if let Some(t) = dep["startedAt"].as_f64().or(dep["createdAt"].as_f64()) {
            fields.push(("Started".into(), utc(t)));
        }
        if let Some(t) = dep["finishedAt"].as_f64() {
            fields.push(("Finished".into(), utc(t)));
        }
        sections.push(Section::Fields { title: Some("Deployment".into()), fields });
        json!({
            "serviceDeploymentArn": dep["serviceDeploymentArn"],
            "status": dep["status"],
            "statusReason": dep["statusReason"],
            "lifecycleStage": dep["lifecycleStage"],
            "lifecycleHookDetails": dep["lifecycleHookDetails"],
            "targetServiceRevision": dep["targetServiceRevision"],
            "sourceServiceRevisions": dep["sourceServiceRevisions"],
            "rollback": dep["rollback"],
            "startedAt": dep["startedAt"],
            "finishedAt": dep["finishedAt"],
        })
    } else {
        Value::Null
    };

    // Tasks with their target health.
    let mut table = Table::new(&["TASK", "REVISION", "STATUS", "HEALTH", "STARTED"]);
    let mut tasks_json = Vec::new();
    for t in o.live_tasks() {
        let id = short_name(t["taskArn"].as_str().unwrap_or("?")).to_string();
        let rev = o.task_revision(t);
        let health = o.task_health(t);
        let started = t["startedAt"].as_f64();
        table.row(vec![
            id.clone(),
            rev.as_deref().map(revision_label).unwrap_or_else(|| "-".into()),
            t["lastStatus"].as_str().unwrap_or("?").to_string(),
            health.clone().unwrap_or_else(|| "-".into()),
            started.map(utc).unwrap_or_else(|| "-".into()),
        ]);
        tasks_json.push(json!({
            "taskArn": t["taskArn"], "serviceRevisionArn": rev, "lastStatus": t["lastStatus"],
            "health": health, "startedAt": t["startedAt"],
        }));
    }
    sections.push(Section::Table { title: Some("Tasks".into()), table });

    // Scaling: the managed scalable target and policy, else the configuration's scaling target.
    let managed = o
        .revisions
        .iter()
        .find(|r| r["serviceRevisionArn"] == newest["serviceRevisionArn"])
        .map(|r| r["ecsManagedResources"]["autoScaling"].clone())
        .unwrap_or(Value::Null);
    let st = &newest["scalingTarget"];
    let min = managed["scalableTarget"]["minCapacity"].as_i64().or(st["minTaskCount"].as_i64());
    let max = managed["scalableTarget"]["maxCapacity"].as_i64().or(st["maxTaskCount"].as_i64());
    let policy = managed["applicationAutoScalingPolicies"][0].clone();
    let metric = policy["metric"].as_str().or(st["autoScalingMetric"].as_str()).map(str::to_string);
    let target_value = policy["targetValue"].as_f64().or(st["autoScalingTargetValue"].as_f64());
    let desired = o.ecs["desiredCount"].as_i64();
    let running = o.ecs["runningCount"].as_i64();
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
    let policy_text = match (&metric, target_value) {
        (Some(m), Some(t)) => format!("{m} target {t}"),
        (Some(m), None) => m.clone(),
        _ => "-".into(),
    };
    sections.push(Section::Fields {
        title: Some("Scaling".into()),
        fields: vec![
            ("Min".into(), opt(min)),
            ("Max".into(), opt(max)),
            ("Desired".into(), opt(desired)),
            ("Running".into(), opt(running)),
            ("Policy".into(), policy_text),
        ],
    });

    // Alarms.
    let mut table = Table::new(&["ALARM", "STATE", "REASON"]);
    let mut alarms_json = Vec::new();
    for a in &d.alarms {
        let name = a["AlarmName"].as_str().unwrap_or("?");
        let state = a["StateValue"].as_str().unwrap_or("?");
        let reason = a["StateReason"].as_str().unwrap_or("");
        table.row(vec![name.to_string(), state.to_string(), reason.to_string()]);
        alarms_json.push(json!({"alarmName": name, "state": state, "stateReason": reason}));
    }
    if !d.alarms.is_empty() {
        sections.push(Section::Table { title: Some("Alarms".into()), table });
    }

    // The newest events, oldest first.
    let mut events: Vec<&Value> = o.ecs["events"].as_array().into_iter().flatten().collect();
    events.sort_by(|a, b| b["createdAt"].as_f64().unwrap_or(0.0).total_cmp(&a["createdAt"].as_f64().unwrap_or(0.0)));
    events.truncate(d.events);
    events.reverse();
    let mut table = Table::new(&["TIME", "MESSAGE"]);
    for e in &events {
        table.row(vec![
            e["createdAt"].as_f64().map(utc).unwrap_or_default(),
            e["message"].as_str().unwrap_or("").to_string(),
        ]);
    }
    if !events.is_empty() {
        sections.push(Section::Table { title: Some("Events".into()), table });
    }
    if !o.denied.is_empty() {
        sections.push(Section::Lines(vec![format!("Note: not allowed to read {}", o.denied.join(", "))]));
    }

    let json = json!({
        "serviceName": name,
        "serviceArn": svc["serviceArn"],
        "status": svc["status"],
        "url": url,
        "serviceRevisionArn": newest["serviceRevisionArn"],
        "image": image,
        "deployment": deployment_json,
        "tasks": tasks_json,
        "scaling": {"minTaskCount": min, "maxTaskCount": max, "desiredCount": desired, "runningCount": running,
            "autoScalingMetric": metric, "autoScalingTargetValue": target_value},
        "alarms": alarms_json,
        "events": events.iter().map(|e| json!({"createdAt": e["createdAt"], "message": e["message"]})).collect::<Vec<_>>(),
        "notAllowed": o.denied,
    });
    Doc { json, sections }
}
