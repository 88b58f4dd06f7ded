//! Create, describe, update and delete Express services, and the ECS service views of them.

use berth_core::ids;
use berth_core::sizing;
use berth_core::status::ServiceStatus;
use berth_core::{Arn, ErrorCode};
use berth_model::Timestamp;
use berth_model::ecs::*;
use berth_store::{RevisionRow, ServiceRow, Tx};

use super::render;
use crate::express::journal::{self, Journal, Purpose};
use crate::iam::access::ExpressRoles;
use crate::names::cluster_name;
use crate::{CallerIdentity, Control, ControlError, now};

const DEFAULT_HEALTH_CHECK_PATH: &str = "/ping";
const DEFAULT_CONTAINER_PORT: i32 = 80;
const DEFAULT_MIN_TASKS: i32 = 1;
const DEFAULT_MAX_TASKS: i32 = 20;
const DEFAULT_SCALING_TARGET: i32 = 60;

pub(crate) fn create(
    c: &Control,
    caller: &CallerIdentity,
    r: CreateExpressGatewayServiceRequest,
) -> Result<CreateExpressGatewayServiceResponse, ControlError> {
    // taskDefinitionArn: the user's task definition gives the container, roles and size (task_definitions.rs).
    let (r, task_source) = super::task_definitions::for_create(c, r)?;
    let infra = r.infrastructure_role_arn.as_deref().unwrap_or_default();
    role_arn("infrastructureRoleArn", infra)?;
    let Some(container) = r.primary_container else {
        return Err(ControlError::invalid("primaryContainer is required when taskDefinitionArn is not specified."));
    };
    let exec = r
        .execution_role_arn
        .ok_or_else(|| ControlError::invalid("executionRoleArn is required when primaryContainer is specified."))?;
    role_arn("executionRoleArn", &exec)?;
    let container = normalize_container(container)?;
    let service_name = match r.service_name {
        Some(n) => n,
        None => ids::service_name_from_image(container.image.as_deref().unwrap_or("service")),
    };
    if !ids::is_valid_name(&service_name) {
        return Err(ControlError::invalid(format!(
            "Invalid serviceName '{service_name}': up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."
        )));
    }
    let cluster = cluster_name(r.cluster.as_deref());
    let mut container = container;
    if container.aws_logs_configuration.is_none() {
        // Express picks the group; it is kept by every later revision unless an update names another.
        container.aws_logs_configuration = Some(ExpressGatewayServiceAwsLogsConfiguration {
            log_group: Some(crate::logs::target::default_group(&cluster, &service_name)),
            log_stream_prefix: Some(crate::logs::target::DEFAULT_PREFIX.into()),
        });
    }
    let tags = super::tags::tag_pairs(r.tags.unwrap_or_default())?;
    c.check_express_roles(
        caller,
        ExpressRoles { infrastructure: Some(infra), execution: Some(&exec), task: r.task_role_arn.as_deref() },
    )?;
    let mut config = RevisionSpec {
        execution_role_arn: Some(exec),
        task_role_arn: r.task_role_arn,
        cpu: r.cpu,
        memory: r.memory,
        health_check_path: r.health_check_path,
        primary_container: container,
        scaling_target: r.scaling_target,
        network_configuration: r.network_configuration,
        cpu_architecture: r.cpu_architecture,
    }
    .validate()?;
    task_source.apply(&mut config.config, None);

    let host = ids::endpoint_host(&service_name, &ids::random_hex(6), &c.names.region, &c.config.base_domain);
    let cert = c.issue_certificate(&host)?;

    let t = now();
    let service = c.tx(|tx| {
        ensure_cluster(c, tx, &cluster, t)?;
        let arn = c.names.service(&cluster, &service_name);
        if let Some(existing) = tx.service_by_name(&cluster, &service_name)?
            && existing.status == ServiceStatus::Active
        {
            return Err(ControlError::invalid(format!(
                "A service named '{service_name}' already exists in cluster '{cluster}'. Service names must be unique within a cluster."
            )));
        }
        let mut row = ServiceRow {
            id: 0,
            arn: arn.clone(),
            cluster: cluster.clone(),
            name: service_name.clone(),
            status: ServiceStatus::Active,
            status_reason: None,
            express: true,
            infrastructure_role_arn: Some(infra.to_string()),
            target_revision: String::new(),
            live_revision: None,
            desired_count: config.desired_count(),
            endpoint_host: host.clone(),
            created_at: t,
            updated_at: t,
        };
        row.id = tx.service_insert(&row)?;
        let mut journal = Journal::default();
        config.with_security_groups(c, tx, &row, &mut journal)?;
        let revision = new_revision(c, tx, &row, &config, caller, t)?;
        row.target_revision = revision.clone();
        row.live_revision = Some(revision);
        tx.service_update(&row)?;
        tx.certificate_put(&cert)?;
        let health_path = config.config.health_check_path.as_deref().unwrap_or(DEFAULT_HEALTH_CHECK_PATH);
        let port = config.config.primary_container.as_ref().and_then(|p| p.container_port).unwrap_or(80);
        crate::express::placement::place_service(c, tx, &row, health_path, port.clamp(1, 65535) as u16, t, &mut journal)?;
        // The service's first deployment (no source revision): its tasks scale up, then it completes.
        let revision = row.target_revision.clone();
        crate::rollout::begin(c, tx, &mut row, &revision, t)?;
        tx.service_update(&row)?;
        if let Some(target) = config.config.primary_container.as_ref().and_then(crate::logs::target::LogTarget::of) {
            crate::express::log_group::ensure_group(c, tx, &target.group, &mut journal)?;
        }
        let scaling = config.config.scaling_target.clone().unwrap_or_default();
        let policy = crate::express::scaling::provision(c, tx, &row, &scaling, &mut journal, t)?;
        crate::express::deploy_alarm::ensure(c, tx, &row, &mut journal)?;
        // Everything above is undone if the infrastructure role may not do all of it.
        journal::authorize(c, tx, infra, &journal, Purpose::Create)?;
        tx.tags_put(&arn, &tags)?;
        Ok((render::express_service(c, tx, &row, true)?, policy))
    })?;
    let (service, (policy_arn, dropped)) = service;
    crate::express::scaling::after_commit(c, &policy_arn, &dropped);
    c.wake();
    Ok(CreateExpressGatewayServiceResponse { service: Some(service) })
}

pub(crate) fn describe(
    c: &Control,
    r: DescribeExpressGatewayServiceRequest,
) -> Result<DescribeExpressGatewayServiceResponse, ControlError> {
    let arn = r.service_arn.unwrap_or_default();
    let with_tags = r.include.unwrap_or_default().contains(&ExpressGatewayServiceInclude::Tags);
    let service = c.read(|tx| {
        // Describe's model names a missing service `ResourceNotFoundException` (Update and Delete:
        // `ServiceNotFoundException`).
        let row = express_by_arn(tx, &arn)
            .map_err(|e| e.respelled(ErrorCode::ServiceNotFound, ErrorCode::ResourceNotFound))?;
        render::express_service(c, tx, &row, with_tags)
    })?;
    Ok(DescribeExpressGatewayServiceResponse { service: Some(service) })
}

pub(crate) fn update(
    c: &Control,
    caller: &CallerIdentity,
    r: UpdateExpressGatewayServiceRequest,
) -> Result<UpdateExpressGatewayServiceResponse, ControlError> {
    let prepared = prepare_update(c, caller, r)?;
    let updated = c.tx(|tx| update_in(c, tx, caller, &prepared, now()))?;
    Ok(UpdateExpressGatewayServiceResponse { service: Some(after_update(c, updated)) })
}

/// An UpdateExpressGatewayService request checked before its transaction: the task definition it names read,
/// roles checked, the container normalized.
pub(crate) struct PreparedUpdate {
    arn: String,
    r: UpdateExpressGatewayServiceRequest,
    task_source: super::task_definitions::TaskSource,
    container: Option<ExpressGatewayContainer>,
    only_scaling: bool,
}

/// What [`update_in`] wrote: the answer and the scaling policy to settle after the commit.
pub(crate) type Updated = (UpdatedExpressGatewayService, Option<(String, Vec<String>)>);

pub(crate) fn prepare_update(
    c: &Control,
    caller: &CallerIdentity,
    r: UpdateExpressGatewayServiceRequest,
) -> Result<PreparedUpdate, ControlError> {
    let arn = r.service_arn.clone().unwrap_or_default();
    // taskDefinitionArn: the user's task definition gives the container, roles and size (task_definitions.rs).
    let (r, task_source) = super::task_definitions::for_update(c, r)?;
    if let Some(e) = &r.execution_role_arn {
        role_arn("executionRoleArn", e)?;
    }
    let container = r.primary_container.clone().map(normalize_container).transpose()?;
    c.check_express_roles(
        caller,
        ExpressRoles {
            infrastructure: None,
            execution: r.execution_role_arn.as_deref(),
            task: r.task_role_arn.as_deref(),
        },
    )?;
    // Only a new scalingTarget: the scalable target and its policy change, and no deployment starts.
    let only_scaling = r.scaling_target.is_some()
        && r.execution_role_arn.is_none()
        && r.health_check_path.is_none()
        && container.is_none()
        && r.task_role_arn.is_none()
        && r.network_configuration.is_none()
        && r.cpu.is_none()
        && r.memory.is_none()
        && r.cpu_architecture.is_none();
    Ok(PreparedUpdate { arn, r, task_source, container, only_scaling })
}

/// The update written in the caller's transaction: a new revision and its deployment, or only the scaling target.
/// UpdateService calls it in its own transaction, so its settings and the deployment commit together.
pub(crate) fn update_in(
    c: &Control,
    tx: &Tx<'_>,
    caller: &CallerIdentity,
    p: &PreparedUpdate,
    t: f64,
) -> Result<Updated, ControlError> {
    let PreparedUpdate { arn, r, task_source, container, only_scaling } = p;
    let only_scaling = *only_scaling;
    {
        let mut row = express_by_arn(tx, arn)?;
        if row.status != ServiceStatus::Active {
            return Err(ControlError::code(
                ErrorCode::ServiceNotActive,
                format!("Service is in {} status and cannot be updated.", row.status.as_str()),
            ));
        }
        let current = crate::revisions::revision_config(tx, &row.target_revision)?;
        if only_scaling {
            let scaling = normalize_scaling(merge_scaling(r.scaling_target.clone(), current.scaling_target.clone()))?;
            let mut journal = Journal::default();
            let policy = crate::express::scaling::provision(c, tx, &row, &scaling, &mut journal, t)?;
            if let Some(role) = &row.infrastructure_role_arn {
                journal::authorize(c, tx, role, &journal, Purpose::Update)?;
            }
            // The revision's recorded scalingTarget follows, in place (the same tasks run on).
            for revision in [row.target_revision.clone()].into_iter().chain(row.live_revision.clone()) {
                let mut config = crate::revisions::revision_config(tx, &revision)?;
                config.scaling_target = Some(scaling.clone());
                let json = serde_json::to_string(&config).map_err(|e| ControlError::invalid(e.to_string()))?;
                tx.revision_set_config(&revision, &json)?;
            }
            let mut row = tx.service_by_id(row.id)?.unwrap_or(row);
            row.updated_at = t;
            tx.service_update(&row)?;
            return Ok((updated_view(tx, &row)?, Some(policy)));
        }
        let old_path = current.health_check_path.clone();
        let old_logs = current.primary_container.as_ref().and_then(|p| p.aws_logs_configuration.clone());
        // A new primaryContainer without awsLogsConfiguration keeps the service's log group.
        let container = container.clone().map(|mut p| {
            if p.aws_logs_configuration.is_none() {
                p.aws_logs_configuration = old_logs.clone();
            }
            p
        });
        let mut spec = RevisionSpec {
            execution_role_arn: r.execution_role_arn.clone().or(current.execution_role_arn),
            task_role_arn: r.task_role_arn.clone().or(current.task_role_arn),
            cpu: r.cpu.clone().or(current.cpu),
            memory: r.memory.clone().or(current.memory),
            health_check_path: r.health_check_path.clone().or(current.health_check_path),
            primary_container: container.or(current.primary_container).unwrap_or_default(),
            scaling_target: merge_scaling(r.scaling_target.clone(), current.scaling_target),
            network_configuration: r.network_configuration.clone().or(current.network_configuration),
            cpu_architecture: r.cpu_architecture.or(current.cpu_architecture),
        }
        .validate()
        // Update's model lists no PlatformTaskDefinitionIncompatibilityException (Create's does).
        .map_err(|e| e.respelled(ErrorCode::PlatformTaskDefinitionIncompatibility, ErrorCode::UnsupportedFeature))?;
        task_source
            .apply(&mut spec.config, super::task_definitions::users_own(current.task_definition_arn.as_deref(), &row));
        let mut journal = Journal::default();
        spec.with_security_groups(c, tx, &row, &mut journal)?;
        let revision = new_revision(c, tx, &row, &spec, caller, t)?;
        let new_path = spec.config.health_check_path.as_deref().filter(|p| Some(*p) != old_path.as_deref());
        crate::express::placement::assign_revision(tx, &row, &revision, new_path, &mut journal)?;
        // A new log group is created for the new tasks; the old one keeps the old logs.
        let new_logs = spec.config.primary_container.as_ref().and_then(crate::logs::target::LogTarget::of);
        if let Some(target) = new_logs
            && old_logs.as_ref().and_then(|o| o.log_group.as_deref()) != Some(target.group.as_str())
        {
            crate::express::log_group::ensure_group(c, tx, &target.group, &mut journal)?;
        }
        row.target_revision = revision.clone();
        // The count scaling reached is kept, within the (possibly new) bounds.
        let (min, max) = spec.bounds();
        row.desired_count = row.desired_count.clamp(min, max.max(min));
        // The deployment (superseding an unfinished one): CANARY by default, the service's settings otherwise.
        crate::rollout::begin(c, tx, &mut row, &revision, t)?;
        row.updated_at = t;
        tx.service_update(&row)?;
        // A new scalingTarget changes the target and its policy; otherwise a user's edits to them stay.
        let policy = match (&r.scaling_target, &spec.config.scaling_target) {
            (Some(_), Some(scaling)) => {
                Some(crate::express::scaling::provision(c, tx, &row, scaling, &mut journal, t)?)
            }
            _ => None,
        };
        if let Some(role) = &row.infrastructure_role_arn {
            journal::authorize(c, tx, role, &journal, Purpose::Update)?;
        }
        Ok((updated_view(tx, &row)?, policy))
    }
}

/// After [`update_in`]'s transaction committed: the scaling policy's alarms settled, the reconciler woken.
pub(crate) fn after_update(c: &Control, (updated, policy): Updated) -> UpdatedExpressGatewayService {
    if let Some((policy_arn, dropped)) = policy {
        crate::express::scaling::after_commit(c, &policy_arn, &dropped);
    }
    c.wake();
    updated
}

/// UpdateExpressGatewayService's answer: the service with its target revision's configuration.
fn updated_view(tx: &Tx<'_>, row: &ServiceRow) -> Result<UpdatedExpressGatewayService, ControlError> {
    let target = crate::revisions::revision_config(tx, &row.target_revision)?;
    Ok(UpdatedExpressGatewayService {
        service_arn: Some(row.arn.clone()),
        cluster: Some(row.cluster.clone()),
        service_name: Some(row.name.clone()),
        status: Some(render::express_status(row)),
        target_configuration: Some(target),
        created_at: Some(Timestamp(row.created_at)),
        updated_at: Some(Timestamp(row.updated_at)),
    })
}

pub(crate) fn delete(
    c: &Control,
    r: DeleteExpressGatewayServiceRequest,
) -> Result<DeleteExpressGatewayServiceResponse, ControlError> {
    let arn = r.service_arn.unwrap_or_default();
    let service = c.tx(|tx| {
        let mut row = express_by_arn(tx, &arn)?;
        if row.status != ServiceStatus::Active {
            return Err(ControlError::code(
                ErrorCode::ServiceNotActive,
                format!("Service is in {} status.", row.status.as_str()),
            ));
        }
        row.status = ServiceStatus::Draining;
        row.status_reason = Some(crate::express::teardown::DRAINING_REASON.into());
        let t = now();
        row.updated_at = t;
        tx.service_update(&row)?;
        // Its unfinished deployment ends now (STOPPED), in the deletion's transaction.
        crate::rollout::abandon(tx, &row, t)?;
        // Off its load balancer now if the infrastructure role allows it; else the reconciler retries.
        crate::express::teardown::release(c, tx, &mut row, t)?;
        render::express_service(c, tx, &row, false)
    })?;
    c.wake();
    Ok(DeleteExpressGatewayServiceResponse { service: Some(service) })
}

pub(crate) fn list_services(c: &Control, r: ListServicesRequest) -> Result<ListServicesResponse, ControlError> {
    let cluster = cluster_name(r.cluster.as_deref());
    let arns = c.read(|tx| {
        require_cluster(tx, &cluster)?;
        Ok(tx
            .services_live(Some(&cluster))?
            .into_iter()
            .filter(|s| match r.resource_management_type {
                Some(ResourceManagementType::Customer) => !s.express,
                Some(ResourceManagementType::Ecs) => s.express,
                None => true,
            })
            .map(|s| s.arn)
            .collect::<Vec<_>>())
    })?;
    let (page, next) = super::paginate(arns, r.next_token.as_deref(), r.max_results)?;
    Ok(ListServicesResponse { service_arns: Some(page), next_token: next })
}

pub(crate) fn describe_services(
    c: &Control,
    r: DescribeServicesRequest,
) -> Result<DescribeServicesResponse, ControlError> {
    let cluster = cluster_name(r.cluster.as_deref());
    let wanted = r.services.unwrap_or_default();
    if wanted.len() > 10 {
        return Err(ControlError::invalid("services can have at most 10 items."));
    }
    let with_tags = r.include.unwrap_or_default().contains(&ServiceField::Tags);
    c.read(|tx| {
        require_cluster(tx, &cluster)?;
        let mut services = Vec::new();
        let mut failures = Vec::new();
        for s in wanted {
            let row = if s.starts_with("arn:") { tx.service_by_arn(&s)? } else { tx.service_by_name(&cluster, &s)? };
            match row.filter(|row| row.cluster == cluster) {
                Some(row) => services.push(render::service(c, tx, &row, with_tags)?),
                None => failures.push(Failure {
                    arn: Some(if s.starts_with("arn:") { s } else { c.names.service(&cluster, &s) }),
                    reason: Some("MISSING".into()),
                    detail: None,
                }),
            }
        }
        Ok(DescribeServicesResponse { services: Some(services), failures: Some(failures) })
    })
}

/// A service revision's settings before they are written down: what a create or an update asked for.
struct RevisionSpec {
    execution_role_arn: Option<String>,
    task_role_arn: Option<String>,
    cpu: Option<String>,
    memory: Option<String>,
    health_check_path: Option<String>,
    primary_container: ExpressGatewayContainer,
    scaling_target: Option<ExpressGatewayScalingTarget>,
    network_configuration: Option<ExpressGatewayServiceNetworkConfiguration>,
    cpu_architecture: Option<ExpressCpuArchitecture>,
}

/// A validated spec with every default filled in.
struct ValidSpec {
    config: ExpressGatewayServiceConfiguration,
    size: sizing::TaskSize,
}

impl ValidSpec {
    /// Creates or validates the service's security groups and subnets (EC2) and records the effective
    /// network configuration in the spec.
    fn with_security_groups(
        &mut self,
        c: &Control,
        tx: &Tx<'_>,
        service: &ServiceRow,
        journal: &mut Journal,
    ) -> Result<(), ControlError> {
        let port =
            self.config.primary_container.as_ref().and_then(|p| p.container_port).unwrap_or(DEFAULT_CONTAINER_PORT);
        let net = crate::express::security_groups::network_for_revision(
            c,
            tx,
            service,
            self.config.network_configuration.as_ref(),
            port,
            journal,
        )?;
        self.config.network_configuration = Some(net);
        Ok(())
    }

    fn desired_count(&self) -> u32 {
        self.bounds().0
    }

    /// The task count's bounds: the scaling target's min and max.
    fn bounds(&self) -> (u32, u32) {
        let s = self.config.scaling_target.as_ref();
        let min = s.and_then(|s| s.min_task_count).unwrap_or(DEFAULT_MIN_TASKS).max(0) as u32;
        let max = s.and_then(|s| s.max_task_count).unwrap_or(DEFAULT_MAX_TASKS).max(0) as u32;
        (min, max)
    }
}

impl RevisionSpec {
    fn validate(self) -> Result<ValidSpec, ControlError> {
        let size = sizing::validate(self.cpu.as_deref(), self.memory.as_deref()).map_err(ControlError::Aws)?;
        if let Some(t) = &self.task_role_arn {
            role_arn("taskRoleArn", t)?;
        }
        let path = self.health_check_path.unwrap_or_else(|| DEFAULT_HEALTH_CHECK_PATH.to_string());
        if !path.starts_with('/') || path.len() > 1024 || path.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
            return Err(ControlError::invalid(format!(
                "Invalid healthCheckPath '{path}': it must start with '/', contain no whitespace and be at most 1024 characters."
            )));
        }
        if matches!(self.cpu_architecture, Some(ExpressCpuArchitecture::Arm64)) {
            return Err(ControlError::code(
                ErrorCode::PlatformTaskDefinitionIncompatibility,
                "cpuArchitecture ARM64 is not available on this berth host (X86_64).",
            ));
        }
        let scaling = normalize_scaling(self.scaling_target)?;
        Ok(ValidSpec {
            config: ExpressGatewayServiceConfiguration {
                service_revision_arn: None,
                execution_role_arn: self.execution_role_arn,
                task_role_arn: self.task_role_arn,
                task_definition_arn: None,
                cpu: Some(size.cpu.to_string()),
                memory: Some(size.memory_mib.to_string()),
                cpu_architecture: Some(ExpressCpuArchitecture::X8664),
                network_configuration: self.network_configuration,
                health_check_path: Some(path),
                primary_container: Some(self.primary_container),
                scaling_target: Some(scaling),
                ingress_paths: None,
                created_at: None,
            },
            size,
        })
    }
}

fn normalize_container(mut c: ExpressGatewayContainer) -> Result<ExpressGatewayContainer, ControlError> {
    let image = c.image.as_deref().unwrap_or_default().trim().to_string();
    if image.is_empty() || image.len() > 255 || image.chars().any(char::is_whitespace) {
        return Err(ControlError::invalid(format!(
            "Invalid primaryContainer.image '{image}': give an image reference such as 'berth-demo:latest' or 'registry.example.com/team/app@sha256:...'."
        )));
    }
    c.image = Some(image);
    let port = c.container_port.unwrap_or(DEFAULT_CONTAINER_PORT);
    if !(1..=65535).contains(&port) {
        return Err(ControlError::invalid(format!(
            "Invalid primaryContainer.containerPort {port}: it must be between 1 and 65535."
        )));
    }
    c.container_port = Some(port);
    if let Some(logs) = &c.aws_logs_configuration {
        crate::logs::target::validate(logs)?;
    }
    if let Some(creds) = &c.repository_credentials {
        let param = creds.credentials_parameter.as_deref().unwrap_or_default();
        crate::secrets::launch::check_credentials_parameter(param).map_err(|e| {
            ControlError::invalid(format!("Invalid primaryContainer.repositoryCredentials.credentialsParameter: {e}."))
        })?;
    }
    let mut secret_names: Vec<&str> = Vec::new();
    for s in c.secrets.iter().flatten() {
        let name = s.name.as_deref().unwrap_or_default();
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(ControlError::invalid(format!("Invalid secret name '{name}' in primaryContainer.secrets.")));
        }
        if secret_names.contains(&name) {
            return Err(ControlError::invalid(format!("Duplicate secret name '{name}' in primaryContainer.secrets.")));
        }
        secret_names.push(name);
        crate::secrets::launch::parse_value_from(s.value_from.as_deref().unwrap_or_default()).map_err(|e| {
            ControlError::invalid(format!("Invalid valueFrom of secret '{name}' in primaryContainer.secrets: {e}."))
        })?;
    }
    for kv in c.environment.iter().flatten() {
        let name = kv.name.as_deref().unwrap_or_default();
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(ControlError::invalid(format!(
                "Invalid environment variable name '{name}' in primaryContainer.environment."
            )));
        }
    }
    Ok(c)
}

fn normalize_scaling(s: Option<ExpressGatewayScalingTarget>) -> Result<ExpressGatewayScalingTarget, ControlError> {
    let s = s.unwrap_or_default();
    let min = s.min_task_count.unwrap_or(DEFAULT_MIN_TASKS);
    let max = s.max_task_count.unwrap_or(DEFAULT_MAX_TASKS.max(min));
    if min < 0 || max < 1 || min > max || max > 5000 {
        return Err(ControlError::invalid(format!(
            "Invalid scalingTarget: minTaskCount ({min}) must be between 0 and maxTaskCount ({max}), and maxTaskCount between 1 and 5000."
        )));
    }
    let target = s.auto_scaling_target_value.unwrap_or(DEFAULT_SCALING_TARGET);
    if target < 1 {
        return Err(ControlError::invalid(format!(
            "Invalid scalingTarget.autoScalingTargetValue {target}: it must be positive."
        )));
    }
    Ok(ExpressGatewayScalingTarget {
        min_task_count: Some(min),
        max_task_count: Some(max),
        auto_scaling_metric: Some(s.auto_scaling_metric.unwrap_or(ExpressGatewayServiceScalingMetric::AverageCpu)),
        auto_scaling_target_value: Some(target),
    })
}

fn merge_scaling(
    new: Option<ExpressGatewayScalingTarget>,
    old: Option<ExpressGatewayScalingTarget>,
) -> Option<ExpressGatewayScalingTarget> {
    match (new, old) {
        (None, old) => old,
        (Some(n), None) => Some(n),
        (Some(n), Some(o)) => Some(ExpressGatewayScalingTarget {
            min_task_count: n.min_task_count.or(o.min_task_count),
            max_task_count: n.max_task_count.or(o.max_task_count),
            auto_scaling_metric: n.auto_scaling_metric.or(o.auto_scaling_metric),
            auto_scaling_target_value: n.auto_scaling_target_value.or(o.auto_scaling_target_value),
        }),
    }
}

/// Registers the task definition and the service revision for `spec`; returns the revision ARN.
fn new_revision(
    c: &Control,
    tx: &Tx<'_>,
    service: &ServiceRow,
    spec: &ValidSpec,
    caller: &CallerIdentity,
    t: f64,
) -> Result<String, ControlError> {
    let family = format!("{}-{}", service.cluster, service.name);
    let td_arn = match &spec.config.task_definition_arn {
        // The user's own task definition (taskDefinitionArn, task_definitions.rs): nothing to register.
        Some(users) => users.clone(),
        None => {
            tx.task_definition_register(
                &family,
                |rev| c.names.task_definition(&family, rev),
                |arn, rev| {
                    render::task_definition_json(&spec.config, spec.size, &c.names.region, &family, arn, rev, caller, t)
                },
                t,
            )?
            .arn
        }
    };
    let seq = tx.next_counter("revision_seq")?;
    let arn = c.names.service_revision(&service.cluster, &service.name, seq);
    let mut config = spec.config.clone();
    config.service_revision_arn = Some(arn.clone());
    config.task_definition_arn = Some(td_arn);
    // Private subnets give an internal load balancer, reachable from the VPC only.
    let subnets = config.network_configuration.as_ref().and_then(|n| n.subnets.clone()).unwrap_or_default();
    let access = match crate::ec2::subnets::privacy_of_ids(tx, &subnets)? {
        crate::ec2::subnets::Privacy::Public => AccessType::Public,
        crate::ec2::subnets::Privacy::Private => AccessType::Private,
    };
    config.ingress_paths =
        Some(vec![IngressPathSummary { access_type: Some(access), endpoint: Some(service.endpoint_host.clone()) }]);
    config.created_at = Some(Timestamp(t));
    let json = serde_json::to_string(&config).map_err(|e| ControlError::invalid(e.to_string()))?;
    tx.revision_insert(&RevisionRow {
        arn: arn.clone(),
        service_id: service.id,
        task_definition_arn: config.task_definition_arn.clone().unwrap_or_default(),
        config: json,
        created_at: t,
    })?;
    Ok(arn)
}

fn role_arn(member: &str, value: &str) -> Result<(), ControlError> {
    let arn: Arn = value.parse().map_err(|e| {
        ControlError::invalid(format!(
            "Invalid {member} '{value}': {e}. Expected arn:aws:iam::<account-id>:role/<name>."
        ))
    })?;
    if arn.service != "iam" || arn.iam_role_name().is_none() || arn.account.is_empty() {
        return Err(ControlError::invalid(format!(
            "Invalid {member} '{value}': expected an IAM role ARN such as arn:aws:iam::<account-id>:role/<name>."
        )));
    }
    Ok(())
}

/// Creates the `default` cluster on first use; any other cluster must exist and be ACTIVE.
fn ensure_cluster(c: &Control, tx: &Tx<'_>, cluster: &str, t: f64) -> Result<(), ControlError> {
    match tx.cluster_get(cluster)? {
        Some(row) if row.status == "ACTIVE" => Ok(()),
        _ if cluster == "default" => {
            tx.cluster_insert(&berth_store::ClusterRow {
                name: cluster.into(),
                arn: c.names.cluster(cluster),
                status: "ACTIVE".into(),
                created_at: t,
            })?;
            Ok(())
        }
        _ => Err(ControlError::code(ErrorCode::ClusterNotFound, format!("Cluster not found: {cluster}"))),
    }
}

pub(crate) fn require_cluster(tx: &Tx<'_>, cluster: &str) -> Result<(), ControlError> {
    match tx.cluster_get(cluster)? {
        Some(row) if row.status == "ACTIVE" => Ok(()),
        _ => Err(ControlError::code(ErrorCode::ClusterNotFound, "Cluster not found.")),
    }
}

fn express_by_arn(tx: &Tx<'_>, arn: &str) -> Result<ServiceRow, ControlError> {
    let not_found = || ControlError::code(ErrorCode::ServiceNotFound, format!("Service not found: {arn}"));
    if arn.parse::<Arn>().is_err() {
        return Err(ControlError::invalid(format!(
            "Invalid serviceArn '{arn}': expected arn:aws:ecs:<region>:<account-id>:service/<cluster>/<name>."
        )));
    }
    match tx.service_by_arn(arn)? {
        Some(row) if row.express => Ok(row),
        _ => Err(not_found()),
    }
}
