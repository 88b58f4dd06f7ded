//! The berth.toml format (services declared in a file) and the plan: the pure diff between what the file declares
//! and what runs, as a list of [`Change`]s. No I/O here: `apply.rs` reads the file, observes berth and acts.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A parsed and validated berth.toml.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// By service name, sorted.
    pub services: BTreeMap<String, ServiceSpec>,
}

/// One `[services.NAME]` table. Fields left out are left as they are on an existing service (and take berth's
/// defaults on a new one); `env` and `secrets`, when present, are the whole set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    pub image: String,
    pub port: Option<u16>,
    pub health_path: Option<String>,
    pub cpu: Option<Units>,
    pub memory: Option<Units>,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub scale_on: Option<ScaleOn>,
    pub target: Option<u32>,
    pub env: Option<BTreeMap<String, String>>,
    pub secrets: Option<BTreeMap<String, String>>,
    pub execution_role: Option<String>,
    pub infrastructure_role: Option<String>,
}

/// CPU units or memory MiB, written `"256"` or `256`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Units {
    Text(String),
    Number(u32),
}

impl Units {
    pub fn value(&self) -> String {
        match self {
            Units::Text(s) => s.trim().to_string(),
            Units::Number(n) => n.to_string(),
        }
    }
}

/// `scale_on`: the metric the service scales on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScaleOn {
    Cpu,
    Memory,
    Requests,
}

impl ScaleOn {
    /// The API's `autoScalingMetric`.
    pub fn metric(self) -> &'static str {
        match self {
            ScaleOn::Cpu => "AVERAGE_CPU",
            ScaleOn::Memory => "AVERAGE_MEMORY",
            ScaleOn::Requests => "REQUEST_COUNT_PER_TARGET",
        }
    }

    pub fn from_metric(metric: &str) -> Option<ScaleOn> {
        match metric {
            "AVERAGE_CPU" => Some(ScaleOn::Cpu),
            "AVERAGE_MEMORY" => Some(ScaleOn::Memory),
            "REQUEST_COUNT_PER_TARGET" => Some(ScaleOn::Requests),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ScaleOn::Cpu => "cpu",
            ScaleOn::Memory => "memory",
            ScaleOn::Requests => "requests",
        }
    }
}

/// A berth.toml that cannot be used: the file, the service and the field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {}{message}", where_(.service, .field))]
pub struct ManifestError {
    pub file: String,
    pub service: Option<String>,
    pub field: Option<String>,
    pub message: String,
}

fn where_(service: &Option<String>, field: &Option<String>) -> String {
    match (service, field) {
        (Some(s), Some(f)) => format!("services.{s}.{f}: "),
        (Some(s), None) => format!("services.{s}: "),
        (None, Some(f)) => format!("{f}: "),
        (None, None) => String::new(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileShape {
    #[serde(default)]
    services: BTreeMap<String, toml::Value>,
}

/// Parses and validates a berth.toml; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Manifest, ManifestError> {
    let err = |service: Option<&str>, field: Option<&str>, message: String| ManifestError {
        file: file.to_string(),
        service: service.map(String::from),
        field: field.map(String::from),
        message,
    };
    let shape: FileShape = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
        let message = one_line(e.message());
        err(None, None, line.map_or(message.clone(), |l| format!("line {l}: {message}")))
    })?;
    if shape.services.is_empty() {
        return Err(err(None, None, "declares no service: add a [services.NAME] table with an `image`".into()));
    }
    let mut services = BTreeMap::new();
    for (name, value) in shape.services {
        let spec: ServiceSpec = value.try_into().map_err(|e: toml::de::Error| {
            let message = one_line(&e.to_string());
            let field = field_of(&message);
            err(Some(&name), field.as_deref(), message)
        })?;
        validate(&name, &spec).map_err(|(field, message)| err(Some(&name), field, message))?;
        services.insert(name, spec);
    }
    Ok(Manifest { services })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The field a serde message names (`missing field `image``, `unknown field `x``, `... for key `port``).
fn field_of(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    let field = &message[start..start + len];
    (field.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !field.is_empty()).then(|| field.to_string())
}

/// Checks one service; the error names the field.
fn validate(name: &str, s: &ServiceSpec) -> Result<(), (Option<&'static str>, String)> {
    if name.is_empty()
        || name.len() > 255
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || !name.starts_with(|c: char| c.is_ascii_alphabetic())
    {
        return Err((
            None,
            "a service name starts with a letter and has up to 255 letters, digits, hyphens and underscores".into(),
        ));
    }
    if s.image.trim().is_empty() {
        return Err((Some("image"), "must name a container image, e.g. \"nginx:1.27\"".into()));
    }
    if s.port == Some(0) {
        return Err((Some("port"), "must be from 1 to 65535".into()));
    }
    if let Some(p) = &s.health_path
        && !p.starts_with('/')
    {
        return Err((Some("health_path"), format!("{p:?} must start with `/`, e.g. \"/ping\"")));
    }
    for (field, v) in [("cpu", &s.cpu), ("memory", &s.memory)] {
        if let Some(v) = v
            && v.value().parse::<u32>().map_or(true, |n| n == 0)
        {
            return Err((Some(field), format!("{:?} must be a positive number (e.g. \"256\")", v.value())));
        }
    }
    if let (Some(min), Some(max)) = (s.min, s.max)
        && min > max
    {
        return Err((Some("max"), format!("{max} is below min ({min})")));
    }
    match (s.scale_on, s.target) {
        (Some(_), None) => return Err((Some("target"), "is required with scale_on (e.g. target = 60)".into())),
        (None, Some(_)) => {
            return Err((Some("scale_on"), "is required with target: one of \"cpu\", \"memory\", \"requests\"".into()));
        }
        (_, Some(0)) => return Err((Some("target"), "must be at least 1".into())),
        _ => {}
    }
    for (k, _) in s.env.iter().flatten() {
        if k.is_empty() || k.contains('=') {
            return Err((Some("env"), format!("{k:?} is not a variable name")));
        }
    }
    for (k, v) in s.secrets.iter().flatten() {
        if k.is_empty() || k.contains('=') {
            return Err((Some("secrets"), format!("{k:?} is not a variable name")));
        }
        if !v.starts_with("arn:") {
            return Err((
                Some("secrets"),
                format!("{k}: {v:?} is not an ARN (a Secrets Manager secret or an SSM parameter)"),
            ));
        }
    }
    for (field, v) in [("execution_role", &s.execution_role), ("infrastructure_role", &s.infrastructure_role)] {
        if let Some(v) = v
            && !(v.starts_with("arn:") && v.contains(":role/"))
        {
            return Err((Some(field), format!("{v:?} is not a role ARN (arn:aws:iam::ACCOUNT:role/NAME)")));
        }
    }
    Ok(())
}

/// What runs: one Express service's current (target) configuration, as the file's fields.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Observed {
    pub name: String,
    pub arn: String,
    pub image: String,
    pub port: Option<u16>,
    pub health_path: Option<String>,
    pub cpu: Option<String>,
    pub memory: Option<String>,
    pub min: Option<u32>,
    pub max: Option<u32>,
    pub scale_on: Option<ScaleOn>,
    pub target: Option<u32>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    pub execution_role: Option<String>,
    pub infrastructure_role: Option<String>,
    /// `DRAINING` while it is being deleted (`ACTIVE` otherwise).
    #[serde(default)]
    pub draining: bool,
}

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

/// What `apply` would do to one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Change {
    /// Declared, not running: create it.
    Create { name: String, spec: ServiceSpec },
    /// Running and declared with other values: update these fields (one deployment).
    Update { name: String, arn: String, fields: Vec<FieldChange> },
    /// Running as declared.
    Unchanged { name: String, arn: String },
    /// Running, not declared, and `--prune`: delete it.
    Delete { name: String, arn: String },
    /// Running, not declared, no `--prune`: left alone.
    Unmanaged { name: String, arn: String },
    /// Declared with a change the API cannot make in place.
    Blocked { name: String, arn: String, reason: String },
}

impl Change {
    pub fn name(&self) -> &str {
        match self {
            Change::Create { name, .. }
            | Change::Update { name, .. }
            | Change::Unchanged { name, .. }
            | Change::Delete { name, .. }
            | Change::Unmanaged { name, .. }
            | Change::Blocked { name, .. } => name,
        }
    }

    /// Whether `apply` would call berth for it.
    pub fn is_change(&self) -> bool {
        matches!(self, Change::Create { .. } | Change::Update { .. } | Change::Delete { .. } | Change::Blocked { .. })
    }

    pub fn action(&self) -> &'static str {
        match self {
            Change::Create { .. } => "create",
            Change::Update { .. } => "update",
            Change::Unchanged { .. } => "unchanged",
            Change::Delete { .. } => "delete",
            Change::Unmanaged { .. } => "unmanaged",
            Change::Blocked { .. } => "blocked",
        }
    }
}

/// The changes that make berth match `desired`: services sorted by name, the declared ones first. Services the
/// file does not name are deleted only with `prune`.
pub fn plan(desired: &Manifest, observed: &[Observed], prune: bool) -> Vec<Change> {
    let mut changes = Vec::new();
    for (name, spec) in &desired.services {
        let Some(obs) = observed.iter().find(|o| &o.name == name) else {
            changes.push(Change::Create { name: name.clone(), spec: spec.clone() });
            continue;
        };
        let (name, arn) = (name.clone(), obs.arn.clone());
        if obs.draining {
            let reason = "it is being deleted (DRAINING): apply again once `berth ls` no longer shows it".into();
            changes.push(Change::Blocked { name, arn, reason });
            continue;
        }
        if let Some(role) = &spec.infrastructure_role
            && obs.infrastructure_role.as_deref() != Some(role.as_str())
        {
            let reason = format!(
                "infrastructure_role cannot change on a running service ({} → {role}): remove the field, or delete \
                 the service (berth rm {name}) and apply again",
                shown(&obs.infrastructure_role)
            );
            changes.push(Change::Blocked { name, arn, reason });
            continue;
        }
        let fields = diff(spec, obs);
        if fields.is_empty() {
            changes.push(Change::Unchanged { name, arn });
        } else {
            changes.push(Change::Update { name, arn, fields });
        }
    }
    // A service being deleted is already going: neither kept nor deleted again.
    let mut extra: Vec<&Observed> =
        observed.iter().filter(|o| !o.draining && !desired.services.contains_key(&o.name)).collect();
    extra.sort_by(|a, b| a.name.cmp(&b.name));
    for o in extra {
        let (name, arn) = (o.name.clone(), o.arn.clone());
        changes.push(if prune { Change::Delete { name, arn } } else { Change::Unmanaged { name, arn } });
    }
    changes
}

fn shown<T: fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map_or_else(|| "(unset)".to_string(), |v| v.to_string())
}

fn map_text(m: &BTreeMap<String, String>) -> String {
    if m.is_empty() {
        return "{}".into();
    }
    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", parts.join(", "))
}

/// The fields `spec` sets to another value than `obs` has.
pub fn diff(spec: &ServiceSpec, obs: &Observed) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut field = |name: &str, old: String, new: String| {
        if old != new {
            out.push(FieldChange { field: name.into(), old, new });
        }
    };
    field("image", obs.image.clone(), spec.image.clone());
    if let Some(p) = spec.port {
        field("port", shown(&obs.port), p.to_string());
    }
    if let Some(p) = &spec.health_path {
        field("health_path", shown(&obs.health_path), p.clone());
    }
    if let Some(c) = &spec.cpu {
        field("cpu", shown(&obs.cpu), c.value());
    }
    if let Some(m) = &spec.memory {
        field("memory", shown(&obs.memory), m.value());
    }
    if let Some(m) = spec.min {
        field("min", shown(&obs.min), m.to_string());
    }
    if let Some(m) = spec.max {
        field("max", shown(&obs.max), m.to_string());
    }
    if let Some(s) = spec.scale_on {
        field("scale_on", shown(&obs.scale_on.map(ScaleOn::as_str)), s.as_str().to_string());
    }
    if let Some(t) = spec.target {
        field("target", shown(&obs.target), t.to_string());
    }
    if let Some(env) = &spec.env {
        field("env", map_text(&obs.env), map_text(env));
    }
    if let Some(secrets) = &spec.secrets {
        field("secrets", map_text(&obs.secrets), map_text(secrets));
    }
    if let Some(r) = &spec.execution_role {
        field("execution_role", shown(&obs.execution_role), r.clone());
    }
    out
}

/// Whether an update touches the container (image, port, env, secrets), the scaling target, or others.
pub fn touches(fields: &[FieldChange], names: &[&str]) -> bool {
    fields.iter().any(|f| names.contains(&f.field.as_str()))
}
