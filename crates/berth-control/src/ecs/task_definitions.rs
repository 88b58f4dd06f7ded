//! RegisterTaskDefinition, DeregisterTaskDefinition and DeleteTaskDefinitions, and a task definition turned
//! into an Express revision's configuration (`taskDefinitionArn` on Create/UpdateExpressGatewayService).
//!
//! Registration validates as ECS does for the launch types a definition asks for (berth runs Fargate only, so a
//! definition is `FARGATE`-compatible when it passes Fargate's rules, and a definition that requires FARGATE must).
//! Status: ACTIVE → INACTIVE (deregistered) → DELETE_IN_PROGRESS (deleted); the record stays describable.
//! An Express service given a task definition runs its `Main` container: the revision's configuration is derived
//! from it (image, port, command, environment, secrets, registry credentials, awslogs options, roles, size) and
//! keeps the user's ARN, so nothing is registered for that revision.

use std::collections::BTreeSet;

use berth_core::{Arn, ErrorCode, sizing};
use berth_model::Timestamp;
use berth_model::ecs::*;
use berth_store::{ServiceRow, TaskDefinitionRow, Tx};

use super::render;
use crate::{CallerIdentity, Control, ControlError, now};

/// The container an Express service runs (ECS's requirement for `taskDefinitionArn`).
const MAIN: &str = "Main";
/// DeleteTaskDefinitions takes at most this many.
const MAX_DELETE: usize = 10;
/// The log drivers Fargate accepts.
const FARGATE_LOG_DRIVERS: &[LogDriver] = &[LogDriver::Awslogs, LogDriver::Splunk, LogDriver::Awsfirelens];

const ACTIVE: &str = "ACTIVE";
const INACTIVE: &str = "INACTIVE";
const DELETE_IN_PROGRESS: &str = "DELETE_IN_PROGRESS";

fn client(message: impl Into<String>) -> ControlError {
    ControlError::code(ErrorCode::Client, message)
}

pub(crate) fn register(
    c: &Control,
    caller: &CallerIdentity,
    r: RegisterTaskDefinitionRequest,
) -> Result<RegisterTaskDefinitionResponse, ControlError> {
    let tags = super::tags::tag_pairs(r.tags.clone().unwrap_or_default())?;
    let def = validate(c, &r)?;
    let family = def.family.clone().unwrap_or_default();
    let t = now();
    let (def, tags) = c.tx(|tx| {
        let row = tx.task_definition_register(
            &family,
            |rev| c.names.task_definition(&family, rev),
            |arn, rev| {
                body(&TaskDefinition {
                    task_definition_arn: Some(arn.into()),
                    revision: Some(rev as i32),
                    status: Some(TaskDefinitionStatus::Active),
                    registered_at: Some(Timestamp(t)),
                    registered_by: Some(caller.principal_arn.clone()),
                    ..def.clone()
                })
            },
            t,
        )?;
        tx.tags_put(&row.arn, &tags)?;
        Ok((parse(&row)?, render::tag_list(tx, &row.arn)?))
    })?;
    Ok(RegisterTaskDefinitionResponse { task_definition: Some(def), tags: Some(tags) })
}

pub(crate) fn deregister(
    c: &Control,
    r: DeregisterTaskDefinitionRequest,
) -> Result<DeregisterTaskDefinitionResponse, ControlError> {
    let given = r.task_definition.unwrap_or_default();
    let id = Ident::parse(&given).map_err(client)?;
    if id.revision.is_none() {
        return Err(client(format!(
            "Invalid task definition '{given}': a revision is required (family:revision or the full ARN)."
        )));
    }
    let t = now();
    let def = c.tx(|tx| {
        let row = id.lookup(tx)?.ok_or_else(|| client("The specified task definition does not exist."))?;
        let mut def = parse(&row)?;
        match row.status.as_str() {
            ACTIVE => {
                def.status = Some(TaskDefinitionStatus::Inactive);
                def.deregistered_at = Some(Timestamp(t));
                tx.task_definition_set_status(&row.arn, INACTIVE, &body(&def))?;
            }
            // Deregistering twice changes nothing.
            INACTIVE => {}
            _ => return Err(client(format!("The task definition {} is being deleted.", row.arn))),
        }
        Ok(def)
    })?;
    Ok(DeregisterTaskDefinitionResponse { task_definition: Some(def) })
}

pub(crate) fn delete(
    c: &Control,
    r: DeleteTaskDefinitionsRequest,
) -> Result<DeleteTaskDefinitionsResponse, ControlError> {
    let given = r.task_definitions.unwrap_or_default();
    if given.is_empty() || given.len() > MAX_DELETE {
        return Err(ControlError::invalid(format!(
            "taskDefinitions must name 1 to {MAX_DELETE} task definitions; {} given.",
            given.len()
        )));
    }
    let t = now();
    c.tx(|tx| {
        let mut deleted = Vec::new();
        let mut failures = Vec::new();
        for g in &given {
            let fail = |arn: String, reason: &str| Failure { arn: Some(arn), reason: Some(reason.into()), detail: None };
            let id = match Ident::parse(g) {
                Ok(id) if id.revision.is_some() => id,
                _ => {
                    failures.push(fail(g.clone(), "The specified task definition identifier is invalid. Specify family:revision or the full ARN."));
                    continue;
                }
            };
            let Some(row) = id.lookup(tx)? else {
                let arn = if g.starts_with("arn:") {
                    g.clone()
                } else {
                    c.names.task_definition(&id.family, id.revision.unwrap_or_default())
                };
                failures.push(fail(arn, "The specified task definition does not exist."));
                continue;
            };
            let mut def = parse(&row)?;
            match row.status.as_str() {
                ACTIVE => failures.push(fail(
                    row.arn.clone(),
                    "The specified task definition is still in ACTIVE status. Please deregister the target and try again.",
                )),
                INACTIVE => {
                    def.status = Some(TaskDefinitionStatus::DeleteInProgress);
                    def.delete_requested_at = Some(Timestamp(t));
                    tx.task_definition_set_status(&row.arn, DELETE_IN_PROGRESS, &body(&def))?;
                    deleted.push(def);
                }
                // Already being deleted: answered as it is.
                _ => deleted.push(def),
            }
        }
        Ok(DeleteTaskDefinitionsResponse { task_definitions: Some(deleted), failures: Some(failures) })
    })
}

/// DescribeTaskDefinition: a family (its latest ACTIVE revision), `family:revision` or an ARN (any status).
pub(crate) fn describe(
    c: &Control,
    r: DescribeTaskDefinitionRequest,
) -> Result<DescribeTaskDefinitionResponse, ControlError> {
    let given = r.task_definition.unwrap_or_default();
    let with_tags = r.include.unwrap_or_default().contains(&TaskDefinitionField::Tags);
    let id = Ident::parse(&given).map_err(client)?;
    c.read(|tx| {
        let row = id.lookup(tx)?.ok_or_else(|| client("Unable to describe task definition."))?;
        let tags = if with_tags { Some(render::tag_list(tx, &row.arn)?) } else { None };
        Ok(DescribeTaskDefinitionResponse { task_definition: Some(parse(&row)?), tags })
    })
}

/// ListTaskDefinitions: one status (ACTIVE unless asked), one family if `familyPrefix` names it, by family name and
/// revision (DESC reverses both), paged.
pub(crate) fn list(c: &Control, r: ListTaskDefinitionsRequest) -> Result<ListTaskDefinitionsResponse, ControlError> {
    let status = r.status.map(|s| s.as_str()).unwrap_or(ACTIVE);
    let family = r.family_prefix.as_deref().filter(|f| !f.is_empty());
    let mut arns: Vec<String> =
        c.read(|tx| Ok(tx.task_definitions(family, status)?.into_iter().map(|d| d.arn).collect()))?;
    if r.sort == Some(SortOrder::Desc) {
        arns.reverse();
    }
    let (page, next) = super::paginate(arns, r.next_token.as_deref(), r.max_results)?;
    Ok(ListTaskDefinitionsResponse { task_definition_arns: Some(page), next_token: next })
}

/// A task definition as a request names it: family, `family:revision`, or its ARN.
struct Ident {
    family: String,
    revision: Option<i64>,
    arn: Option<String>,
}

impl Ident {
    fn parse(given: &str) -> Result<Ident, String> {
        let (rest, arn) = if given.starts_with("arn:") {
            let parsed: Arn = given.parse().map_err(|e| format!("Invalid task definition ARN '{given}': {e}"))?;
            let rest = parsed
                .resource
                .strip_prefix("task-definition/")
                .ok_or_else(|| format!("Invalid task definition ARN '{given}': not a task-definition ARN."))?
                .to_string();
            (rest, Some(given.to_string()))
        } else {
            (given.to_string(), None)
        };
        let (family, revision) = match rest.rsplit_once(':') {
            Some((family, rev)) => match rev.parse::<i64>() {
                Ok(n) if n > 0 => (family.to_string(), Some(n)),
                _ => return Err(format!("Invalid revision number. Number: {rev}")),
            },
            None => (rest, None),
        };
        if family.is_empty() {
            return Err("The task definition must not be empty.".into());
        }
        Ok(Ident { family, revision, arn })
    }

    fn lookup(&self, tx: &Tx<'_>) -> Result<Option<TaskDefinitionRow>, ControlError> {
        Ok(match &self.arn {
            Some(arn) => tx.task_definition_get(arn)?,
            None => tx.task_definition_by_family(&self.family, self.revision)?,
        })
    }
}

/// The stored task definition `given` names (`family` for its latest ACTIVE revision, `family:revision` or an
/// ARN): `InvalidParameterException` when it is malformed, `ClientException` when there is none.
pub(super) fn find(tx: &Tx<'_>, given: &str) -> Result<TaskDefinitionRow, ControlError> {
    let id = Ident::parse(given).map_err(ControlError::invalid)?;
    id.lookup(tx)?.ok_or_else(|| client(format!("TaskDefinition not found: {given}")))
}

fn body(def: &TaskDefinition) -> String {
    serde_json::to_string(def).unwrap_or_default()
}

/// A stored task definition, with the status its row records.
fn parse(row: &TaskDefinitionRow) -> Result<TaskDefinition, ControlError> {
    let mut def: TaskDefinition = serde_json::from_str(&row.body)
        .map_err(|e| ControlError::Store(berth_store::StoreError::Corrupt(format!("task definition: {e}"))))?;
    def.status = TaskDefinitionStatus::parse(&row.status).or(def.status);
    Ok(def)
}

// ---- registration

/// Validates a registration as ECS does and returns the definition to record (without ARN, revision and
/// registration details), with ECS's defaults filled in and cpu/memory normalised to units and MiB.
fn validate(c: &Control, r: &RegisterTaskDefinitionRequest) -> Result<TaskDefinition, ControlError> {
    let family = r.family.as_deref().unwrap_or_default();
    if family.is_empty() || family.len() > 255 || !family.chars().all(is_name_char) {
        return Err(client(format!(
            "Invalid family '{family}': up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."
        )));
    }
    let requires = r.requires_compatibilities.clone().unwrap_or_default();
    let network_mode = r.network_mode.unwrap_or(NetworkMode::Bridge);
    let cpu = r
        .cpu
        .as_deref()
        .map(|s| sizing::parse_cpu(s).ok_or_else(|| ControlError::invalid("Invalid 'cpu' setting for task.")))
        .transpose()?;
    let memory = r
        .memory
        .as_deref()
        .map(|s| sizing::parse_memory(s).ok_or_else(|| ControlError::invalid("Invalid 'memory' setting for task.")))
        .transpose()?;
    let execution_role_arn = r.execution_role_arn.as_deref().map(|a| role(c, "executionRoleArn", a)).transpose()?;
    let task_role_arn = r.task_role_arn.as_deref().map(|a| role(c, "taskRoleArn", a)).transpose()?;
    let given = r.container_definitions.clone().unwrap_or_default();
    if given.is_empty() {
        return Err(client("Container list cannot be empty."));
    }
    let containers = given.into_iter().map(|d| container(d, network_mode)).collect::<Result<Vec<_>, ControlError>>()?;
    task_rules(&containers, network_mode)?;
    let task = Task { network_mode, cpu, memory, execution_role: execution_role_arn.is_some(), r };
    let fargate = fargate_rules(&task, &containers);
    let mut compatibilities = vec![Compatibility::Ec2];
    let (cpu, memory) = match fargate {
        Ok(size) => {
            compatibilities.push(Compatibility::Fargate);
            (Some(size.cpu), Some(size.memory_mib))
        }
        Err(e) if requires.contains(&Compatibility::Fargate) => return Err(e),
        Err(_) => (cpu, memory),
    };
    Ok(TaskDefinition {
        container_definitions: Some(containers),
        family: Some(family.to_string()),
        task_role_arn,
        execution_role_arn,
        network_mode: Some(network_mode),
        volumes: Some(r.volumes.clone().unwrap_or_default()),
        placement_constraints: Some(r.placement_constraints.clone().unwrap_or_default()),
        compatibilities: Some(compatibilities),
        runtime_platform: r.runtime_platform.clone(),
        requires_compatibilities: Some(requires),
        cpu: cpu.map(|c| c.to_string()),
        memory: memory.map(|m| m.to_string()),
        inference_accelerators: r.inference_accelerators.clone(),
        pid_mode: r.pid_mode,
        ipc_mode: r.ipc_mode,
        proxy_configuration: r.proxy_configuration.clone(),
        ephemeral_storage: r.ephemeral_storage.clone(),
        enable_fault_injection: r.enable_fault_injection,
        trusted_execution_configuration: r.trusted_execution_configuration.clone(),
        ..Default::default()
    })
}

fn is_name_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'
}

/// A role given as a name or an ARN, as the role's ARN.
fn role(c: &Control, member: &str, given: &str) -> Result<String, ControlError> {
    if !given.starts_with("arn:") {
        if given.is_empty() || given.len() > 64 || given.chars().any(|ch| ch.is_whitespace() || ch == '/') {
            return Err(client(format!(
                "Invalid {member} '{given}': give a role name or arn:aws:iam::<account-id>:role/<name>."
            )));
        }
        return Ok(format!("arn:aws:iam::{}:role/{given}", c.names.account));
    }
    let arn: Arn = given.parse().map_err(|e| client(format!("Invalid {member} '{given}': {e}.")))?;
    if arn.service != "iam" || arn.iam_role_name().is_none() {
        return Err(client(format!("Invalid {member} '{given}': expected arn:aws:iam::<account-id>:role/<name>.")));
    }
    Ok(given.to_string())
}

/// One container's own rules (the task's network mode decides the port mapping rules); ECS's defaults filled in.
fn container(mut d: ContainerDefinition, mode: NetworkMode) -> Result<ContainerDefinition, ControlError> {
    let name = d.name.clone().unwrap_or_default();
    if name.is_empty() {
        return Err(client("Container.name should not be null or empty."));
    }
    if name.len() > 255 || !name.chars().all(is_name_char) {
        return Err(client(format!(
            "Invalid container name '{name}': up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."
        )));
    }
    let bad = |what: String| client(format!("Invalid setting for container '{name}'. {what}"));
    let image = d.image.as_deref().unwrap_or_default();
    if image.trim().is_empty() {
        return Err(client("Container.image should not be null or empty."));
    }
    if image.chars().any(char::is_whitespace) {
        return Err(bad(format!("image '{image}' must not contain whitespace.")));
    }
    let (reference, digest) = match image.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (image, None),
    };
    if reference.is_empty() || reference.len() > 255 {
        return Err(bad("image must be 1 to 255 characters before any '@' digest.".into()));
    }
    if let Some(digest) = digest {
        let hex = digest.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64 || !hex.chars().all(|ch| ch.is_ascii_hexdigit()) {
            return Err(bad(format!("image digest '{digest}' must be sha256: followed by 64 hexadecimal characters.")));
        }
    }
    if let (Some(m), Some(res)) = (d.memory, d.memory_reservation)
        && res > m
    {
        return Err(bad(format!("memoryReservation ({res}) must not exceed memory ({m}).")));
    }
    if d.memory.is_some_and(|m| m < 6) || d.memory_reservation.is_some_and(|m| m < 6) {
        return Err(bad("memory and memoryReservation must be at least 6 MiB.".into()));
    }
    if d.cpu.is_some_and(|cpu| cpu < 0) {
        return Err(bad("cpu must not be negative.".into()));
    }
    if mode != NetworkMode::Bridge && d.links.as_ref().is_some_and(|l| !l.is_empty()) {
        return Err(client(format!("Links are not supported when networkMode={}.", mode.as_str())));
    }
    let mut mappings = d.port_mappings.take().unwrap_or_default();
    for m in &mut mappings {
        port_mapping(m, mode).map_err(bad)?;
    }
    d.port_mappings = Some(mappings);
    if let Some(h) = &d.health_check {
        health_check(h).map_err(bad)?;
    }
    for kv in d.environment.iter().flatten() {
        let n = kv.name.as_deref().unwrap_or_default();
        if n.is_empty() || n.contains('=') || n.contains('\0') {
            return Err(bad(format!("environment variable name '{n}' is invalid.")));
        }
    }
    let mut secret_names = BTreeSet::new();
    for s in d.secrets.iter().flatten() {
        let n = s.name.as_deref().unwrap_or_default();
        if n.is_empty() || n.contains('=') || !secret_names.insert(n) {
            return Err(bad(format!("secret name '{n}' is empty, invalid or given twice.")));
        }
        crate::secrets::launch::parse_value_from(s.value_from.as_deref().unwrap_or_default())
            .map_err(|e| bad(format!("secret '{n}': {e}.")))?;
    }
    if let Some(creds) = &d.repository_credentials {
        crate::secrets::launch::check_credentials_parameter(creds.credentials_parameter.as_deref().unwrap_or_default())
            .map_err(|e| bad(format!("repositoryCredentials.credentialsParameter: {e}.")))?;
    }
    if let Some(log) = &d.log_configuration
        && log.log_driver == Some(LogDriver::Awslogs)
    {
        let opts = log.options.clone().unwrap_or_default();
        let group = opts.get("awslogs-group").map(String::as_str).unwrap_or_default();
        if group.is_empty() {
            return Err(client("Log driver awslogs option 'awslogs-group' should not be null or empty."));
        }
        crate::logs::valid_group_name(group)
            .map_err(|_| bad(format!("awslogs-group '{group}' is not a valid log group name.")))?;
        if let Some(prefix) = opts.get("awslogs-stream-prefix")
            && (prefix.len() > 400 || prefix.contains([':', '*']))
        {
            return Err(bad(format!(
                "awslogs-stream-prefix '{prefix}' must be at most 400 characters without ':' or '*'."
            )));
        }
    }
    d.essential = Some(d.essential.unwrap_or(true));
    d.cpu = Some(d.cpu.unwrap_or(0));
    d.environment = Some(d.environment.unwrap_or_default());
    d.mount_points = Some(d.mount_points.unwrap_or_default());
    d.volumes_from = Some(d.volumes_from.unwrap_or_default());
    Ok(d)
}

/// A port mapping's rules; `hostPort` and `protocol` are filled in as ECS shows them under awsvpc.
fn port_mapping(m: &mut PortMapping, mode: NetworkMode) -> Result<(), String> {
    match (m.container_port, m.container_port_range.as_deref()) {
        (Some(p), _) if !(1..=65535).contains(&p) => return Err(format!("containerPort {p} must be 1 to 65535.")),
        (Some(_), Some(_)) => return Err("give containerPort or containerPortRange, not both.".into()),
        (None, None) => return Err("a port mapping needs containerPort or containerPortRange.".into()),
        (None, Some(range)) => {
            let valid = range
                .split_once('-')
                .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
                .is_some_and(|(a, b)| 1 <= a && a < b && b <= 65535);
            if !valid {
                return Err(format!(
                    "containerPortRange '{range}' must be <first>-<last> with 1 <= first < last <= 65535."
                ));
            }
        }
        (Some(_), None) => {}
    }
    if matches!(mode, NetworkMode::Awsvpc | NetworkMode::Host)
        && let (Some(host), Some(port)) = (m.host_port, m.container_port)
        && host != port
        && host != 0
    {
        return Err(format!(
            "When networkMode={}, the host ports and container ports in port mappings must match.",
            mode.as_str()
        ));
    }
    if let Some(name) = &m.name
        && (name.is_empty()
            || name.len() > 64
            || name.starts_with('-')
            || !name.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-'))
    {
        return Err(format!(
            "port mapping name '{name}' must be 1 to 64 lowercase letters, numbers, underscores and hyphens, not starting with a hyphen."
        ));
    }
    m.protocol = Some(m.protocol.unwrap_or(TransportProtocol::Tcp));
    if matches!(mode, NetworkMode::Awsvpc | NetworkMode::Host) && m.container_port.is_some() {
        m.host_port = m.container_port;
    }
    Ok(())
}

fn health_check(h: &HealthCheck) -> Result<(), String> {
    let command = h.command.clone().unwrap_or_default();
    if !matches!(command.first().map(String::as_str), Some("CMD" | "CMD-SHELL" | "NONE")) {
        return Err("healthCheck.command must start with CMD, CMD-SHELL or NONE.".into());
    }
    for (what, value, min, max) in [
        ("interval", h.interval, 5, 300),
        ("timeout", h.timeout, 2, 60),
        ("retries", h.retries, 1, 10),
        ("startPeriod", h.start_period, 0, 300),
    ] {
        if let Some(v) = value
            && !(min..=max).contains(&v)
        {
            return Err(format!("healthCheck.{what} {v} must be between {min} and {max}."));
        }
    }
    Ok(())
}

/// The rules across a task's containers. Under awsvpc and host the containers share one network namespace, so a
/// container port is mapped once per task; under bridge, once per container.
fn task_rules(containers: &[ContainerDefinition], mode: NetworkMode) -> Result<(), ControlError> {
    let shared = matches!(mode, NetworkMode::Awsvpc | NetworkMode::Host);
    let mut names = BTreeSet::new();
    for d in containers {
        let name = d.name.as_deref().unwrap_or_default();
        if !names.insert(name) {
            return Err(client(format!(
                "Container names must be unique within a task definition: '{name}' is given twice."
            )));
        }
    }
    if !containers.iter().any(|d| d.essential != Some(false)) {
        return Err(client("At least one essential container is required: mark a container essential."));
    }
    let mut ports = BTreeSet::new();
    let mut port_names = BTreeSet::new();
    for d in containers {
        if !shared {
            ports.clear();
        }
        for m in d.port_mappings.iter().flatten() {
            if let Some(p) = m.container_port
                && !ports.insert(p)
            {
                return Err(client(format!(
                    "Port {p} is mapped more than once (once per port whatever the protocol, and under {} once per task).",
                    mode.as_str()
                )));
            }
            if let Some(n) = &m.name
                && !port_names.insert(n.as_str())
            {
                return Err(client(format!(
                    "Port mapping names must be unique within a task definition: '{n}' is given twice."
                )));
            }
        }
        for dep in d.depends_on.iter().flatten() {
            let on = dep.container_name.as_deref().unwrap_or_default();
            if !names.contains(on) {
                return Err(client(format!(
                    "Invalid setting for container '{}'. dependsOn names container '{on}', which the task definition does not define.",
                    d.name.as_deref().unwrap_or_default()
                )));
            }
        }
    }
    Ok(())
}

/// What Fargate's rules read from a registration.
struct Task<'a> {
    network_mode: NetworkMode,
    cpu: Option<u32>,
    memory: Option<u32>,
    execution_role: bool,
    r: &'a RegisterTaskDefinitionRequest,
}

/// Fargate's rules; the task size when they hold.
fn fargate_rules(t: &Task<'_>, containers: &[ContainerDefinition]) -> Result<sizing::TaskSize, ControlError> {
    if t.network_mode != NetworkMode::Awsvpc {
        return Err(client("Fargate only supports network mode 'awsvpc'."));
    }
    let cpu = t.cpu.ok_or_else(|| client("Fargate requires that 'cpu' be defined at the task level."))?;
    let memory = t.memory.ok_or_else(|| client("Fargate requires that 'memory' be defined at the task level."))?;
    let size = sizing::validate(Some(&cpu.to_string()), Some(&memory.to_string())).map_err(|_| {
        client(format!(
            "No Fargate configuration exists for given values: {cpu} CPU, {memory} memory. See the Amazon ECS documentation for the valid values."
        ))
    })?;
    if t.r.ipc_mode.is_some() {
        return Err(client("Fargate does not support ipcMode; remove it."));
    }
    if t.r.pid_mode == Some(PidMode::Host) {
        return Err(client("Fargate supports pidMode 'task' only."));
    }
    if t.r.inference_accelerators.as_ref().is_some_and(|a| !a.is_empty()) {
        return Err(client("Fargate does not support inferenceAccelerators."));
    }
    if let Some(gib) = t.r.ephemeral_storage.as_ref().and_then(|e| e.size_in_gi_b)
        && !(21..=200).contains(&gib)
    {
        return Err(client(format!("ephemeralStorage.sizeInGiB {gib} must be between 21 and 200.")));
    }
    let cpu_sum: i64 = containers.iter().map(|d| i64::from(d.cpu.unwrap_or(0))).sum();
    if cpu_sum > i64::from(size.cpu) {
        return Err(client(format!(
            "The sum of the containers' cpu ({cpu_sum}) exceeds the task's cpu ({}).",
            size.cpu
        )));
    }
    let memory_sum: i64 = containers.iter().map(|d| i64::from(d.memory.or(d.memory_reservation).unwrap_or(0))).sum();
    if memory_sum > i64::from(size.memory_mib) {
        return Err(client(format!(
            "The sum of the containers' memory ({memory_sum} MiB) exceeds the task's memory ({} MiB).",
            size.memory_mib
        )));
    }
    for d in containers {
        let name = d.name.as_deref().unwrap_or_default();
        for (what, v) in [("startTimeout", d.start_timeout), ("stopTimeout", d.stop_timeout)] {
            if let Some(v) = v
                && !(2..=120).contains(&v)
            {
                return Err(client(format!(
                    "Invalid setting for container '{name}'. On Fargate {what} must be between 2 and 120 seconds; {v} given."
                )));
            }
        }
        if d.privileged == Some(true) {
            return Err(client(format!(
                "Invalid setting for container '{name}'. Fargate does not support privileged containers."
            )));
        }
        if let Some(log) = &d.log_configuration {
            let driver = log.log_driver.unwrap_or(LogDriver::JsonFile);
            if !FARGATE_LOG_DRIVERS.contains(&driver) {
                return Err(client(format!(
                    "Fargate does not support log driver {}; use awslogs, splunk or awsfirelens.",
                    driver.as_str()
                )));
            }
            if driver == LogDriver::Awslogs {
                if !t.execution_role {
                    return Err(client(
                        "Fargate requires task definition to have execution role ARN to support log driver awslogs.",
                    ));
                }
                let prefix = log.options.as_ref().and_then(|o| o.get("awslogs-stream-prefix"));
                if prefix.is_none_or(|p| p.is_empty()) {
                    return Err(client("Fargate requires log driver awslogs option 'awslogs-stream-prefix'."));
                }
            }
        }
        if d.secrets.as_ref().is_some_and(|s| !s.is_empty()) && !t.execution_role {
            return Err(client("Fargate requires task definition to have execution role ARN to support secrets."));
        }
        if d.repository_credentials.is_some() && !t.execution_role {
            return Err(client(
                "Fargate requires task definition to have execution role ARN to support private registry authentication.",
            ));
        }
    }
    Ok(size)
}

// ---- Express services on a user's task definition

/// A user's task definition an Express revision runs.
pub(crate) struct UserDefinition {
    arn: String,
    task_role_arn: Option<String>,
}

/// Where an Express request's task-level settings come from.
pub(crate) enum TaskSource {
    /// `taskDefinitionArn`: the user's own definition.
    User(UserDefinition),
    /// primaryContainer, roles or size given: berth registers the revision's task definition.
    Given,
    /// None of them (an update of the health check path, network or scaling): the current revision's source.
    Unchanged,
}

impl TaskSource {
    /// After the revision's configuration is validated: the user's definition it runs, if any. Its ARN is kept (so
    /// nothing is registered for the revision) and its task role replaces the one the service had.
    pub(crate) fn apply(&self, config: &mut ExpressGatewayServiceConfiguration, current_user_definition: Option<&str>) {
        match self {
            TaskSource::User(u) => {
                config.task_definition_arn = Some(u.arn.clone());
                config.task_role_arn = u.task_role_arn.clone();
            }
            TaskSource::Unchanged => config.task_definition_arn = current_user_definition.map(str::to_string),
            TaskSource::Given => config.task_definition_arn = None,
        }
    }
}

/// The current revision's task definition if it is a user's (not the family berth registers for the service).
pub(crate) fn users_own<'a>(current: Option<&'a str>, service: &ServiceRow) -> Option<&'a str> {
    let managed = format!("task-definition/{}-{}:", service.cluster, service.name);
    current.filter(|arn| !arn.contains(&managed))
}

/// The members `taskDefinitionArn` cannot be combined with, as the request gives them.
fn conflicts(given: [(&str, bool); 6]) -> Result<(), ControlError> {
    match given.iter().find(|(_, set)| *set) {
        Some((member, _)) => Err(ControlError::invalid(format!(
            "taskDefinitionArn cannot be combined with {member}: the task definition gives primaryContainer, executionRoleArn, taskRoleArn, cpu, memory and cpuArchitecture."
        ))),
        None => Ok(()),
    }
}

/// Completes a Create or UpdateExpressGatewayService request (`$t`, both name the members alike) from its
/// `taskDefinitionArn`, as if the definition's settings had been given; `$neither` is the source when the request
/// gives neither a definition nor any task-level member.
macro_rules! from_task_definition {
    ($c:expr, $r:expr, $t:ident, $neither:expr) => {{
        let r = $r;
        let given = [
            ("primaryContainer", r.primary_container.is_some()),
            ("executionRoleArn", r.execution_role_arn.is_some()),
            ("taskRoleArn", r.task_role_arn.is_some()),
            ("cpu", r.cpu.is_some()),
            ("memory", r.memory.is_some()),
            ("cpuArchitecture", r.cpu_architecture.is_some()),
        ];
        match r.task_definition_arn.clone() {
            None if given.iter().any(|(_, set)| *set) => Ok((r, TaskSource::Given)),
            None => Ok((r, $neither)),
            Some(arn) => {
                conflicts(given)?;
                let p = $c.read(|tx| express_parts(tx, &arn))?;
                let source = TaskSource::User(UserDefinition { arn: p.arn, task_role_arn: p.task_role_arn.clone() });
                let r = $t {
                    primary_container: Some(p.container),
                    execution_role_arn: Some(p.execution_role_arn),
                    task_role_arn: p.task_role_arn,
                    cpu: p.cpu,
                    memory: p.memory,
                    cpu_architecture: p.cpu_architecture,
                    ..r
                };
                Ok((r, source))
            }
        }
    }};
}

/// CreateExpressGatewayService with `taskDefinitionArn`: the request as if the task definition's settings had
/// been given (so every later check applies to them), and where they came from.
pub(crate) fn for_create(
    c: &Control,
    r: CreateExpressGatewayServiceRequest,
) -> Result<(CreateExpressGatewayServiceRequest, TaskSource), ControlError> {
    from_task_definition!(c, r, CreateExpressGatewayServiceRequest, TaskSource::Given)
}

/// UpdateExpressGatewayService with `taskDefinitionArn`, as [`for_create`]; an update with neither keeps the
/// current revision's source.
pub(crate) fn for_update(
    c: &Control,
    r: UpdateExpressGatewayServiceRequest,
) -> Result<(UpdateExpressGatewayServiceRequest, TaskSource), ControlError> {
    from_task_definition!(c, r, UpdateExpressGatewayServiceRequest, TaskSource::Unchanged)
}

/// What an Express revision takes from a task definition.
struct ExpressParts {
    arn: String,
    container: ExpressGatewayContainer,
    execution_role_arn: String,
    task_role_arn: Option<String>,
    cpu: Option<String>,
    memory: Option<String>,
    cpu_architecture: Option<ExpressCpuArchitecture>,
}

/// Checks a task definition against Express's rules (a `Main` container, essential, with exactly one named TCP port
/// mapping; FARGATE-compatible; ACTIVE) and berth's (one container per task, awslogs, an execution role), and
/// derives the revision's settings from it.
fn express_parts(tx: &Tx<'_>, given: &str) -> Result<ExpressParts, ControlError> {
    let row = find(tx, given)?;
    match row.status.as_str() {
        ACTIVE => {}
        INACTIVE => return Err(client(format!("TaskDefinition is inactive: {}", row.arn))),
        _ => return Err(client(format!("TaskDefinition is being deleted: {}", row.arn))),
    }
    let def = parse(&row)?;
    let arn = row.arn;
    if !def.compatibilities.iter().flatten().any(|c| *c == Compatibility::Fargate) {
        return Err(ControlError::invalid(format!("Task definition does not support launch_type FARGATE: {arn}")));
    }
    let containers = def.container_definitions.clone().unwrap_or_default();
    let Some(main) = containers.iter().find(|d| d.name.as_deref() == Some(MAIN)) else {
        return Err(ControlError::invalid(format!(
            "The task definition {arn} must have a container named '{MAIN}' for an Express service."
        )));
    };
    if main.essential == Some(false) {
        return Err(ControlError::invalid(format!("The container '{MAIN}' of {arn} must be essential.")));
    }
    let mappings = main.port_mappings.clone().unwrap_or_default();
    let [mapping] = mappings.as_slice() else {
        return Err(ControlError::invalid(format!(
            "The container '{MAIN}' of {arn} must have exactly one port mapping; it has {}.",
            mappings.len()
        )));
    };
    let (Some(port), Some(_), true) = (
        mapping.container_port,
        mapping.name.as_ref().filter(|n| !n.is_empty()),
        mapping.protocol.unwrap_or(TransportProtocol::Tcp) == TransportProtocol::Tcp,
    ) else {
        return Err(ControlError::invalid(format!(
            "The port mapping of container '{MAIN}' in {arn} must be TCP with a containerPort and a name."
        )));
    };
    let unsupported = |what: String| ControlError::code(ErrorCode::UnsupportedFeature, what);
    let others: Vec<&str> = containers.iter().filter_map(|d| d.name.as_deref()).filter(|n| *n != MAIN).collect();
    if !others.is_empty() {
        return Err(unsupported(format!(
            "berth runs one container per task; {arn} also defines {}. Register a task definition with the '{MAIN}' container only.",
            others.join(", ")
        )));
    }
    for (member, set) in [
        ("entryPoint", main.entry_point.as_ref().is_some_and(|v| !v.is_empty())),
        ("environmentFiles", main.environment_files.as_ref().is_some_and(|v| !v.is_empty())),
        ("workingDirectory", main.working_directory.is_some()),
        ("user", main.user.is_some()),
    ] {
        if set {
            return Err(unsupported(format!(
                "berth does not run container '{MAIN}' with {member} yet ({arn}); bake it into the image or use command."
            )));
        }
    }
    let aws_logs_configuration = match &main.log_configuration {
        None => None,
        Some(log) if log.log_driver == Some(LogDriver::Awslogs) => {
            let opts = log.options.clone().unwrap_or_default();
            Some(ExpressGatewayServiceAwsLogsConfiguration {
                log_group: opts.get("awslogs-group").cloned(),
                log_stream_prefix: Some(
                    opts.get("awslogs-stream-prefix")
                        .cloned()
                        .unwrap_or_else(|| crate::logs::target::DEFAULT_PREFIX.into()),
                ),
            })
        }
        Some(log) => {
            return Err(unsupported(format!(
                "berth ships container output with log driver awslogs only; {arn} uses {}.",
                log.log_driver.map(|d| d.as_str()).unwrap_or("none")
            )));
        }
    };
    let Some(execution_role_arn) = def.execution_role_arn.clone() else {
        return Err(ControlError::invalid(format!(
            "The task definition {arn} has no executionRoleArn; an Express service's tasks pull images and ship logs as their execution role."
        )));
    };
    let cpu_architecture = match def.runtime_platform.as_ref().and_then(|p| p.cpu_architecture) {
        Some(CPUArchitecture::Arm64) => Some(ExpressCpuArchitecture::Arm64),
        _ => None,
    };
    let container = ExpressGatewayContainer {
        image: main.image.clone(),
        container_port: Some(port),
        aws_logs_configuration,
        repository_credentials: main
            .repository_credentials
            .as_ref()
            .map(|r| ExpressGatewayRepositoryCredentials { credentials_parameter: r.credentials_parameter.clone() }),
        command: main.command.clone().filter(|c| !c.is_empty()),
        environment: main.environment.clone().filter(|e| !e.is_empty()),
        secrets: main.secrets.clone().filter(|s| !s.is_empty()),
    };
    Ok(ExpressParts {
        arn,
        container,
        execution_role_arn,
        task_role_arn: def.task_role_arn.clone(),
        cpu: def.cpu.clone(),
        memory: def.memory.clone(),
        cpu_architecture,
    })
}
