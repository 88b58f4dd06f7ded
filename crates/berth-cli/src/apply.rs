//! `berth plan -f berth.toml` / `berth apply -f berth.toml`: services declared in a file. Reads the file, observes
//! the cluster's Express services, and shows or makes the changes `manifest::plan` computes.

use std::collections::BTreeMap;
use std::io::Write as _;

use berth_client::Service;
use serde_json::{Value, json};

use crate::lookup::{self, Found};
use crate::manifest::{self, Change, FieldChange, Manifest, Observed, ScaleOn, ServiceSpec};
use crate::output::{Doc, Format, Section, Table};
use crate::{CliError, Ctx, exit};

pub const PLAN_EXAMPLES: &str = "Examples:
  berth plan -f berth.toml
  berth plan -f berth.toml --prune --exit-code   # exit 1 when something would change
  berth plan -o json | jq '.changes[] | select(.action != \"unchanged\")'";

pub const APPLY_EXAMPLES: &str = "Examples:
  berth apply -f berth.toml
  berth apply -f berth.toml --prune --yes        # also delete services the file does not name";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file declaring the services (docs/cli.md describes it).
    #[arg(short = 'f', long = "file", default_value = "berth.toml")]
    pub file: std::path::PathBuf,
    /// Also list the services the file does not name as deletions.
    #[arg(long)]
    pub prune: bool,
    /// Exit 1 when the plan has changes (0 when berth already matches the file).
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    /// The file declaring the services (docs/cli.md describes it).
    #[arg(short = 'f', long = "file", default_value = "berth.toml")]
    pub file: std::path::PathBuf,
    /// Delete the services of the cluster the file does not name (asks first unless --yes).
    #[arg(long)]
    pub prune: bool,
}

// The execution and infrastructure roles `berth deploy` creates (AWS's documented default names).
use crate::deploy::{EXECUTION_ROLE as DEFAULT_EXECUTION_ROLE, INFRASTRUCTURE_ROLE as DEFAULT_INFRASTRUCTURE_ROLE};

pub async fn plan(ctx: &Ctx, args: Args) -> Result<Doc, CliError> {
    let manifest = read(&args.file)?;
    let (observed, _) = observe(ctx).await?;
    let changes = manifest::plan(&manifest, &observed, args.prune);
    let doc = plan_doc(&args.file.display().to_string(), &changes, ctx.out.format);
    if args.exit_code && changes.iter().any(Change::is_change) {
        // Scripts read the plan and the exit code: print it, then exit 1 without an error message.
        ctx.out.print(&doc);
        let _ = std::io::stdout().flush();
        std::process::exit(exit::FAILED);
    }
    Ok(doc)
}

pub async fn apply(ctx: &Ctx, args: ApplyArgs) -> Result<Doc, CliError> {
    let file = args.file.display().to_string();
    let manifest = read(&args.file)?;
    let (observed, found) = observe(ctx).await?;
    let changes = manifest::plan(&manifest, &observed, args.prune);
    let blocked: Vec<String> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Blocked { name, reason, .. } => Some(format!("{name}: {reason}")),
            _ => None,
        })
        .collect();
    if !blocked.is_empty() {
        return Err(CliError::Failed(format!("{file}: nothing applied: {}", blocked.join("; "))));
    }
    let deletes: Vec<&str> = changes.iter().filter(|c| matches!(c, Change::Delete { .. })).map(Change::name).collect();
    if !deletes.is_empty()
        && !ctx.confirm(&format!(
            "Delete {} service(s) {} that {file} does not name, and everything berth created for them?",
            deletes.len(),
            deletes.join(", ")
        ))?
    {
        return Err(CliError::Failed("nothing applied: the deletion was not confirmed".into()));
    }
    let mut results = Vec::new();
    for change in &changes {
        let result = match change {
            Change::Create { name, spec } => {
                let arn = create(ctx, name, spec).await?;
                json!({"name": name, "action": "create", "serviceArn": arn})
            }
            Change::Update { name, arn, fields } => {
                let Some(f) = found.get(name) else { continue };
                update(ctx, f, &manifest.services[name], fields).await?;
                json!({"name": name, "action": "update", "serviceArn": arn,
                       "fields": fields.iter().map(|f| f.field.clone()).collect::<Vec<_>>()})
            }
            Change::Delete { name, arn } => {
                ctx.client.call_value(Service::Ecs, "DeleteExpressGatewayService", json!({"serviceArn": arn})).await?;
                json!({"name": name, "action": "delete", "serviceArn": arn})
            }
            Change::Unchanged { .. } | Change::Unmanaged { .. } | Change::Blocked { .. } => continue,
        };
        if ctx.out.format != Format::Json {
            eprintln!(
                "{}d {}",
                result["action"].as_str().unwrap_or_default(),
                result["name"].as_str().unwrap_or_default()
            );
        }
        results.push(result);
    }
    let mut doc = plan_doc(&file, &changes, ctx.out.format);
    doc.json["applied"] = Value::Array(results.clone());
    if results.is_empty() {
        doc.sections.push(Section::Lines(vec![format!("berth already matches {file}: nothing to do")]));
    } else if ctx.out.format == Format::Table {
        doc.sections.push(Section::Lines(vec![format!(
            "applied {} change(s); `berth status NAME` follows a deployment",
            results.len()
        )]));
    }
    Ok(doc)
}

fn read(path: &std::path::Path) -> Result<Manifest, CliError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("cannot read {name}: {e} (pass the file with -f PATH)")))?;
    manifest::parse(&name, &text).map_err(|e| CliError::Usage(e.to_string()))
}

/// The cluster's Express services, as the file's fields, and by name.
async fn observe(ctx: &Ctx) -> Result<(Vec<Observed>, BTreeMap<String, Found>), CliError> {
    let found = lookup::list(ctx).await?;
    let observed = found.iter().map(observed).collect();
    let by_name = found.into_iter().map(|f| (f.name.clone(), f)).collect();
    Ok((observed, by_name))
}

fn pairs(v: &Value, value_key: &str) -> BTreeMap<String, String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["name"].as_str()?.to_string(), p[value_key].as_str()?.to_string())))
        .collect()
}

/// One service's target configuration as a berth.toml service.
pub fn observed(f: &Found) -> Observed {
    let empty = Value::Null;
    let c = crate::service::newest_configuration(&f.service).unwrap_or(&empty);
    let p = &c["primaryContainer"];
    let s = &c["scalingTarget"];
    let num = |v: &Value| v.as_u64().and_then(|n| u32::try_from(n).ok());
    Observed {
        name: f.name.clone(),
        arn: f.arn.clone(),
        image: p["image"].as_str().unwrap_or_default().to_string(),
        port: p["containerPort"].as_u64().and_then(|n| u16::try_from(n).ok()),
        health_path: c["healthCheckPath"].as_str().map(String::from),
        cpu: c["cpu"].as_str().map(String::from),
        memory: c["memory"].as_str().map(String::from),
        min: num(&s["minTaskCount"]),
        max: num(&s["maxTaskCount"]),
        scale_on: s["autoScalingMetric"].as_str().and_then(ScaleOn::from_metric),
        target: num(&s["autoScalingTargetValue"]),
        env: pairs(&p["environment"], "value"),
        secrets: pairs(&p["secrets"], "valueFrom"),
        execution_role: c["executionRoleArn"].as_str().map(String::from),
        infrastructure_role: f.service["infrastructureRoleArn"].as_str().map(String::from),
        draining: crate::service::status_code(&f.service) == "DRAINING",
    }
}

fn name_values(m: &BTreeMap<String, String>, value_key: &str) -> Value {
    Value::Array(m.iter().map(|(k, v)| json!({"name": k, value_key: v})).collect())
}

/// The primaryContainer for a spec: the running one's other members (logs, command, credentials) kept.
fn container(spec: &ServiceSpec, running: Option<&Value>) -> Value {
    let mut c = running.cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
    c["image"] = json!(spec.image);
    if let Some(p) = spec.port {
        c["containerPort"] = json!(p);
    }
    if let Some(env) = &spec.env {
        c["environment"] = name_values(env, "value");
    }
    if let Some(secrets) = &spec.secrets {
        c["secrets"] = name_values(secrets, "valueFrom");
    }
    c
}

fn scaling(spec: &ServiceSpec, running: Option<&Value>) -> Value {
    let mut s = running.cloned().filter(Value::is_object).unwrap_or_else(|| json!({}));
    if let Some(m) = spec.min {
        s["minTaskCount"] = json!(m);
    }
    if let Some(m) = spec.max {
        s["maxTaskCount"] = json!(m);
    }
    if let Some(on) = spec.scale_on {
        s["autoScalingMetric"] = json!(on.metric());
    }
    if let Some(t) = spec.target {
        s["autoScalingTargetValue"] = json!(t);
    }
    s
}

async fn role(
    ctx: &Ctx,
    given: &Option<String>,
    default: &str,
    field: &str,
    service: &str,
) -> Result<String, CliError> {
    if let Some(r) = given {
        return Ok(r.clone());
    }
    match ctx.client.call_value(Service::Iam, "GetRole", json!({"RoleName": default})).await {
        Ok(v) => v["Role"]["Arn"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| CliError::Failed(format!("GetRole {default} answered without an Arn"))),
        Err(e) if e.code() == Some("NoSuchEntity") => Err(CliError::Usage(format!(
            "services.{service}.{field}: not set, and the default role {default} does not exist: set it in the \
             file, or run `berth deploy` once to create the default roles"
        ))),
        Err(e) => Err(e.into()),
    }
}

async fn create(ctx: &Ctx, name: &str, spec: &ServiceSpec) -> Result<String, CliError> {
    let execution = role(ctx, &spec.execution_role, DEFAULT_EXECUTION_ROLE, "execution_role", name).await?;
    let infrastructure =
        role(ctx, &spec.infrastructure_role, DEFAULT_INFRASTRUCTURE_ROLE, "infrastructure_role", name).await?;
    let mut req = json!({
        "serviceName": name,
        "cluster": ctx.cluster,
        "executionRoleArn": execution,
        "infrastructureRoleArn": infrastructure,
        "primaryContainer": container(spec, None),
    });
    if let Some(p) = &spec.health_path {
        req["healthCheckPath"] = json!(p);
    }
    if let Some(c) = &spec.cpu {
        req["cpu"] = json!(c.value());
    }
    if let Some(m) = &spec.memory {
        req["memory"] = json!(m.value());
    }
    if spec.min.is_some() || spec.max.is_some() || spec.scale_on.is_some() {
        req["scalingTarget"] = scaling(spec, None);
    }
    let out = ctx.client.call_value(Service::Ecs, "CreateExpressGatewayService", req).await?;
    Ok(out["service"]["serviceArn"].as_str().unwrap_or_default().to_string())
}

/// UpdateExpressGatewayService with only what changed (the container and the scaling target are sent whole).
async fn update(ctx: &Ctx, f: &Found, spec: &ServiceSpec, fields: &[FieldChange]) -> Result<(), CliError> {
    let running = crate::service::newest_configuration(&f.service);
    let mut req = json!({"serviceArn": f.arn});
    if manifest::touches(fields, &["image", "port", "env", "secrets"]) {
        req["primaryContainer"] = container(spec, running.map(|c| &c["primaryContainer"]));
    }
    if manifest::touches(fields, &["min", "max", "scale_on", "target"]) {
        req["scalingTarget"] = scaling(spec, running.map(|c| &c["scalingTarget"]));
    }
    for (field, member, value) in [
        ("health_path", "healthCheckPath", spec.health_path.clone()),
        ("cpu", "cpu", spec.cpu.as_ref().map(manifest::Units::value)),
        ("memory", "memory", spec.memory.as_ref().map(manifest::Units::value)),
        ("execution_role", "executionRoleArn", spec.execution_role.clone()),
    ] {
        if manifest::touches(fields, &[field])
            && let Some(v) = value
        {
            req[member] = json!(v);
        }
    }
    ctx.client.call_value(Service::Ecs, "UpdateExpressGatewayService", req).await?;
    Ok(())
}

fn spec_fields(spec: &ServiceSpec) -> Vec<(String, String)> {
    let mut out = vec![("image".to_string(), spec.image.clone())];
    let mut opt = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            out.push((k.to_string(), v));
        }
    };
    opt("port", spec.port.map(|p| p.to_string()));
    opt("health_path", spec.health_path.clone());
    opt("cpu", spec.cpu.as_ref().map(manifest::Units::value));
    opt("memory", spec.memory.as_ref().map(manifest::Units::value));
    opt("min", spec.min.map(|v| v.to_string()));
    opt("max", spec.max.map(|v| v.to_string()));
    opt("scale_on", spec.scale_on.map(|s| s.as_str().to_string()));
    opt("target", spec.target.map(|v| v.to_string()));
    let map = |m: &BTreeMap<String, String>| m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
    opt("env", spec.env.as_ref().map(map));
    opt("secrets", spec.secrets.as_ref().map(map));
    opt("execution_role", spec.execution_role.clone());
    opt("infrastructure_role", spec.infrastructure_role.clone());
    out
}

/// The plan as a document: `+`/`~`/`-`/`=` blocks for people, `ACTION\tNAME\tFIELD\tOLD\tNEW` lines for scripts,
/// `{"file", "changes", "summary"}` as JSON.
pub fn plan_doc(file: &str, changes: &[Change], format: Format) -> Doc {
    let count = |a: &str| changes.iter().filter(|c| c.action() == a).count();
    let summary = json!({
        "create": count("create"), "update": count("update"), "delete": count("delete"),
        "unchanged": count("unchanged"), "unmanaged": count("unmanaged"), "blocked": count("blocked"),
    });
    let json = json!({"file": file, "changes": changes, "summary": summary});
    let sections = match format {
        Format::Text | Format::Json => {
            let mut t = Table::new(&["ACTION", "NAME", "FIELD", "OLD", "NEW"]);
            for c in changes {
                let row = |f: &str, o: &str, n: &str| {
                    vec![c.action().into(), c.name().into(), f.to_string(), o.to_string(), n.to_string()]
                };
                match c {
                    Change::Update { fields, .. } => {
                        for f in fields {
                            t.row(row(&f.field, &f.old, &f.new));
                        }
                    }
                    Change::Create { spec, .. } => {
                        for (k, v) in spec_fields(spec) {
                            t.row(row(&k, "", &v));
                        }
                    }
                    Change::Blocked { reason, .. } => t.row(row("", "", reason)),
                    _ => t.row(row("", "", "")),
                }
            }
            vec![Section::Table { title: None, table: t }]
        }
        Format::Table => {
            let mut lines = Vec::new();
            for c in changes {
                match c {
                    Change::Create { name, spec } => {
                        lines.push(format!("+ {name} (create)"));
                        let fields = spec_fields(spec);
                        let w = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
                        lines.extend(fields.iter().map(|(k, v)| format!("    {k:w$}  {v}")));
                    }
                    Change::Update { name, fields, .. } => {
                        lines.push(format!("~ {name} (update)"));
                        let w = fields.iter().map(|f| f.field.len()).max().unwrap_or(0);
                        lines.extend(fields.iter().map(|f| format!("    {:w$}  {} → {}", f.field, f.old, f.new)));
                    }
                    Change::Unchanged { name, .. } => lines.push(format!("= {name} (unchanged)")),
                    Change::Delete { name, .. } => lines.push(format!("- {name} (delete: not in {file}, --prune)")),
                    Change::Unmanaged { name, .. } => {
                        lines.push(format!("  {name} (not in {file}: kept; --prune would delete it)"))
                    }
                    Change::Blocked { name, reason, .. } => lines.push(format!("! {name} (blocked: {reason})")),
                }
            }
            lines.push(String::new());
            lines.push(format!(
                "Plan: {} to create, {} to update, {} to delete, {} unchanged.",
                count("create"),
                count("update"),
                count("delete"),
                count("unchanged")
            ));
            vec![Section::Lines(lines)]
        }
    };
    Doc { json, sections }
}
