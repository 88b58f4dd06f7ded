//! Rows → ECS response shapes.

use berth_core::sizing::TaskSize;
use berth_core::status::{ServiceStatus, TaskStatus};
use berth_model::Timestamp;
use berth_model::ecs::*;
use berth_store::{DeploymentRow, FINISHED_STATUSES, ServiceRow, TaskRow, Tx};

use crate::deployment::{Hook, Progress, Settings};
use crate::revisions::revision_config;
use crate::{CallerIdentity, Control, ControlError};

pub(crate) fn express_status(row: &ServiceRow) -> ExpressGatewayServiceStatus {
    ExpressGatewayServiceStatus {
        status_code: Some(match row.status {
            ServiceStatus::Active => ExpressGatewayServiceStatusCode::Active,
            ServiceStatus::Draining => ExpressGatewayServiceStatusCode::Draining,
            ServiceStatus::Inactive => ExpressGatewayServiceStatusCode::Inactive,
        }),
        status_reason: row.status_reason.clone(),
    }
}

pub(crate) fn tag_list(tx: &Tx<'_>, arn: &str) -> Result<Vec<Tag>, ControlError> {
    Ok(tx.tags_get(arn)?.into_iter().map(|(k, v)| Tag { key: Some(k), value: Some(v) }).collect())
}

pub(crate) fn express_service(
    c: &Control,
    tx: &Tx<'_>,
    row: &ServiceRow,
    with_tags: bool,
) -> Result<ECSExpressGatewayService, ControlError> {
    let newest = tx.deployments_of(row.id)?.into_iter().next();
    let mut active = Vec::new();
    if row.status != ServiceStatus::Inactive {
        let serving = match &newest {
            Some(d) => serving_revisions(d)?,
            None => [row.live_revision.clone(), Some(row.target_revision.clone())]
                .into_iter()
                .flatten()
                .filter(|r| !r.is_empty())
                .collect(),
        };
        let mut seen: Vec<String> = Vec::new();
        for revision in serving {
            if !seen.contains(&revision) {
                active.push(revision_config(tx, &revision)?);
                seen.push(revision);
            }
        }
    }
    Ok(ECSExpressGatewayService {
        cluster: Some(row.cluster.clone()),
        service_name: Some(row.name.clone()),
        service_arn: Some(row.arn.clone()),
        infrastructure_role_arn: row.infrastructure_role_arn.clone(),
        status: Some(express_status(row)),
        current_deployment: Some(match &newest {
            Some(d) => d.arn.clone(),
            None => c.names.deployment(&row.cluster, &row.name, &row.target_revision),
        }),
        active_configurations: Some(active),
        tags: if with_tags { Some(tag_list(tx, &row.arn)?) } else { None },
        created_at: Some(Timestamp(row.created_at)),
        updated_at: Some(Timestamp(row.updated_at)),
    })
}

/// The plain ECS view of a service (DescribeServices).
pub(crate) fn service(c: &Control, tx: &Tx<'_>, row: &ServiceRow, with_tags: bool) -> Result<Service, ControlError> {
    let tasks = tx.tasks_in(&row.cluster, Some(row.id), Some(TaskStatus::Running))?;
    let count = |rev: Option<&str>, running: bool| {
        tasks
            .iter()
            .filter(|t| rev.is_none_or(|r| t.revision_arn.as_deref() == Some(r)))
            .filter(
                |t| if running { t.last_status == TaskStatus::Running } else { t.last_status < TaskStatus::Running },
            )
            .count() as i32
    };
    let target = revision_config(tx, &row.target_revision)?;
    let active_status = row.status != ServiceStatus::Inactive;
    let live = live_tasks(tx, row)?;
    let newest = tx.deployments_of(row.id)?.into_iter().next();
    let deployments = match &newest {
        Some(d) if active_status => {
            legacy_deployments(row, d, &live, &|r| revision_config(tx, r).ok().and_then(|c| c.created_at), &|r| {
                revision_config(tx, r).ok().and_then(|c| c.task_definition_arn)
            })?
        }
        _ => deployments_without_rows(tx, row, &tasks, &target, &count)?,
    };
    let heading_to = match &newest {
        Some(d) if !advancing(d) && d.status != "SUCCESSFUL" => d.source_revision.clone(),
        _ => Some(row.target_revision.clone()),
    };
    let settings = match tx.deployment_settings_get(row.id)? {
        Some(json) => Settings::parse(&json).map_err(|e| corrupt("deployment settings", e))?,
        None => Settings::default(),
    };
    let port = target.primary_container.as_ref().and_then(|p| p.container_port).unwrap_or(80);
    // Express services deploy blue/green across their two target groups, as ECS shows it.
    let groups = crate::elbv2::service_groups(tx, row)?;
    Ok(Service {
        service_arn: Some(row.arn.clone()),
        service_name: Some(row.name.clone()),
        cluster_arn: Some(c.names.cluster(&row.cluster)),
        load_balancers: Some(vec![LoadBalancer {
            target_group_arn: groups.as_ref().map(|g| g.0.clone()),
            container_name: Some("Main".into()),
            container_port: Some(port),
            advanced_configuration: groups.map(|(_, alternate, rule)| AdvancedConfiguration {
                alternate_target_group_arn: Some(alternate),
                production_listener_rule: rule,
                test_listener_rule: settings.test_listener_rule.clone(),
                role_arn: row.infrastructure_role_arn.clone(),
            }),
            ..Default::default()
        }]),
        status: Some(row.status.as_str().into()),
        desired_count: Some(if active_status { row.desired_count as i32 } else { 0 }),
        running_count: Some(count(None, true)),
        pending_count: Some(count(None, false)),
        launch_type: Some(LaunchType::Fargate),
        platform_version: Some("LATEST".into()),
        platform_family: Some("Linux".into()),
        // Express services show no task definition on the service itself (as AWS does).
        task_definition: None,
        network_configuration: target.network_configuration.as_ref().map(|n| NetworkConfiguration {
            awsvpc_configuration: Some(AwsVpcConfiguration {
                subnets: n.subnets.clone(),
                security_groups: n.security_groups.clone(),
                assign_public_ip: Some(AssignPublicIp::Enabled),
            }),
        }),
        deployments: Some(deployments),
        current_service_deployment: newest.as_ref().map(|d| d.arn.clone()),
        current_service_revisions: Some(current_revisions(row, &live, heading_to.as_deref())),
        deployment_configuration: Some(
            settings.configuration.clone().unwrap_or_else(|| express_default_configuration(c, row)),
        ),
        events: Some(
            tx.events(row.id)?
                .into_iter()
                .map(|(id, at, message)| ServiceEvent {
                    id: Some(id.to_string()),
                    created_at: Some(Timestamp(at)),
                    message: Some(message),
                })
                .collect(),
        ),
        created_at: Some(Timestamp(row.created_at)),
        health_check_grace_period_seconds: Some(300),
        scheduling_strategy: Some(SchedulingStrategy::Replica),
        deployment_controller: Some(DeploymentController { r#type: Some(DeploymentControllerType::Ecs) }),
        tags: if with_tags { Some(tag_list(tx, &row.arn)?) } else { None },
        created_by: row.infrastructure_role_arn.clone(),
        enable_ecs_managed_tags: Some(true),
        propagate_tags: Some(PropagateTags::Service),
        enable_execute_command: Some(false),
        availability_zone_rebalancing: Some(AvailabilityZoneRebalancing::Enabled),
        resource_management_type: Some(if row.express {
            ResourceManagementType::Ecs
        } else {
            ResourceManagementType::Customer
        }),
        ..Default::default()
    })
}

/// `Service.deployments[]` of a service whose deployments were never recorded (created before berth recorded
/// them): the target revision PRIMARY, the live one ACTIVE while it differs.
fn deployments_without_rows(
    tx: &Tx<'_>,
    row: &ServiceRow,
    tasks: &[TaskRow],
    target: &ExpressGatewayServiceConfiguration,
    count: &dyn Fn(Option<&str>, bool) -> i32,
) -> Result<Vec<Deployment>, ControlError> {
    let mut deployments = Vec::new();
    let in_progress = row.live_revision.as_deref() != Some(row.target_revision.as_str())
        || tasks.iter().any(|t| t.revision_arn.as_deref() != Some(row.target_revision.as_str()));
    if row.status != ServiceStatus::Inactive {
        deployments.push(Deployment {
            id: Some(format!("ecs-svc/{}", deployment_id(&row.target_revision))),
            status: Some("PRIMARY".into()),
            task_definition: target.task_definition_arn.clone(),
            desired_count: Some(row.desired_count as i32),
            pending_count: Some(count(Some(&row.target_revision), false)),
            running_count: Some(count(Some(&row.target_revision), true)),
            failed_tasks: Some(0),
            created_at: target.created_at,
            updated_at: Some(Timestamp(row.updated_at)),
            launch_type: Some(LaunchType::Fargate),
            platform_version: Some("LATEST".into()),
            rollout_state: Some(if in_progress {
                DeploymentRolloutState::InProgress
            } else {
                DeploymentRolloutState::Completed
            }),
            rollout_state_reason: Some(if in_progress {
                "ECS deployment in progress.".into()
            } else {
                "ECS deployment completed.".into()
            }),
            ..Default::default()
        });
        if let Some(live) = row.live_revision.as_deref().filter(|l| *l != row.target_revision) {
            let cfg = revision_config(tx, live)?;
            deployments.push(Deployment {
                id: Some(format!("ecs-svc/{}", deployment_id(live))),
                status: Some("ACTIVE".into()),
                task_definition: cfg.task_definition_arn.clone(),
                desired_count: Some(0),
                pending_count: Some(count(Some(live), false)),
                running_count: Some(count(Some(live), true)),
                created_at: cfg.created_at,
                launch_type: Some(LaunchType::Fargate),
                platform_version: Some("LATEST".into()),
                rollout_state: Some(DeploymentRolloutState::Completed),
                ..Default::default()
            });
        }
    }
    Ok(deployments)
}

fn deployment_id(revision_arn: &str) -> &str {
    revision_arn.rsplit('/').next().unwrap_or(revision_arn)
}

pub(crate) fn task(c: &Control, tx: &Tx<'_>, t: &TaskRow, with_tags: bool) -> Result<Task, ControlError> {
    let td = tx.task_definition_get(&t.task_definition_arn)?;
    let def: Option<TaskDefinition> = td.as_ref().and_then(|d| serde_json::from_str(&d.body).ok());
    let image = def
        .as_ref()
        .and_then(|d| d.container_definitions.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.image.clone());
    // ECS groups a service's tasks as `service:<name>` and standalone tasks as `family:<family>`.
    let group = match t.service_id.map(|id| tx.service_by_id(id)).transpose()?.flatten() {
        Some(s) => Some(format!("service:{}", s.name)),
        None => td.as_ref().map(|d| format!("family:{}", d.family)),
    };
    // ECS reports container health checks here; Express task definitions define none (the load
    // balancer's target health is separate), so it is UNKNOWN as on AWS.
    let health = HealthStatus::Unknown;
    let stop_code = t.stop_code.as_deref().and_then(TaskStopCode::parse);
    Ok(Task {
        attachments: Some(Vec::new()),
        availability_zone: Some(format!("{}a", c.names.region)),
        cluster_arn: Some(c.names.cluster(&t.cluster)),
        connectivity: t.started_at.map(|_| Connectivity::Connected),
        connectivity_at: t.started_at.map(Timestamp),
        containers: Some(vec![Container {
            container_arn: Some(c.names.container(&t.cluster, &t.id)),
            task_arn: Some(t.arn.clone()),
            name: Some("Main".into()),
            image,
            runtime_id: Some(format!("berth-task-{}", t.id)),
            last_status: Some(t.last_status.as_str().into()),
            exit_code: t.exit_code.map(|e| e as i32),
            reason: t.stopped_reason.clone().filter(|_| t.exit_code.is_none() && t.last_status == TaskStatus::Stopped),
            network_interfaces: t.ip.as_ref().map(|ip| {
                vec![NetworkInterface {
                    attachment_id: None,
                    private_ipv4_address: Some(ip.clone()),
                    ipv6_address: None,
                }]
            }),
            health_status: Some(health),
            cpu: def.as_ref().and_then(|d| d.cpu.clone()),
            memory: def.as_ref().and_then(|d| d.memory.clone()),
            ..Default::default()
        }]),
        cpu: def.as_ref().and_then(|d| d.cpu.clone()),
        memory: def.as_ref().and_then(|d| d.memory.clone()),
        created_at: Some(Timestamp(t.created_at)),
        desired_status: Some(t.desired_status.as_str().into()),
        enable_execute_command: Some(false),
        group,
        health_status: Some(health),
        last_status: Some(t.last_status.as_str().into()),
        launch_type: Some(LaunchType::Fargate),
        platform_version: Some("1.4.0".into()),
        platform_family: Some("Linux".into()),
        pull_started_at: t.started_at.map(Timestamp),
        pull_stopped_at: t.started_at.map(Timestamp),
        started_at: t.started_at.map(Timestamp),
        started_by: t.started_by.clone(),
        stop_code,
        stopped_at: t.stopped_at.map(Timestamp),
        execution_stopped_at: t.stopped_at.map(Timestamp),
        stopped_reason: t.stopped_reason.clone(),
        stopping_at: t.stopping_at.map(Timestamp),
        tags: if with_tags { Some(tag_list(tx, &t.arn)?) } else { None },
        task_arn: Some(t.arn.clone()),
        task_definition_arn: Some(t.task_definition_arn.clone()),
        version: Some(version_of(t)),
        ..Default::default()
    })
}

/// ECS bumps a task's `version` on every status change; derive it from how far the task got.
fn version_of(t: &TaskRow) -> i64 {
    1 + i64::from(t.started_at.is_some()) + i64::from(t.stopping_at.is_some()) + i64::from(t.stopped_at.is_some())
}

pub(crate) fn cluster(tx: &Tx<'_>, row: &berth_store::ClusterRow, with_tags: bool) -> Result<Cluster, ControlError> {
    let services = tx.services_live(Some(&row.name))?;
    let tasks = tx.tasks_in(&row.name, None, Some(TaskStatus::Running))?;
    Ok(Cluster {
        cluster_arn: Some(row.arn.clone()),
        cluster_name: Some(row.name.clone()),
        status: Some(row.status.clone()),
        registered_container_instances_count: Some(0),
        running_tasks_count: Some(tasks.iter().filter(|t| t.last_status == TaskStatus::Running).count() as i32),
        pending_tasks_count: Some(tasks.iter().filter(|t| t.last_status < TaskStatus::Running).count() as i32),
        active_services_count: Some(services.iter().filter(|s| s.status == ServiceStatus::Active).count() as i32),
        statistics: Some(Vec::new()),
        tags: if with_tags { Some(tag_list(tx, &row.arn)?) } else { Some(Vec::new()) },
        settings: Some(vec![ClusterSetting {
            name: Some(ClusterSettingName::ContainerInsights),
            value: Some("disabled".into()),
        }]),
        capacity_providers: Some(vec!["FARGATE".into()]),
        default_capacity_provider_strategy: Some(vec![CapacityProviderStrategyItem {
            capacity_provider: Some("FARGATE".into()),
            weight: Some(1),
            base: Some(0),
        }]),
        ..Default::default()
    })
}

/// The task definition of a revision, as JSON for the store.
#[allow(clippy::too_many_arguments)]
pub(crate) fn task_definition_json(
    config: &ExpressGatewayServiceConfiguration,
    size: TaskSize,
    region: &str,
    family: &str,
    arn: &str,
    revision: i64,
    caller: &CallerIdentity,
    t: f64,
) -> String {
    let container = config.primary_container.clone().unwrap_or_default();
    let port = container.container_port.unwrap_or(80);
    let log_configuration = crate::logs::target::LogTarget::of(&container).map(|l| l.log_configuration(region));
    let def = TaskDefinition {
        task_definition_arn: Some(arn.into()),
        container_definitions: Some(vec![ContainerDefinition {
            name: Some("Main".into()),
            image: container.image,
            essential: Some(true),
            port_mappings: Some(vec![PortMapping {
                container_port: Some(port),
                host_port: Some(port),
                protocol: Some(TransportProtocol::Tcp),
                name: Some(format!("{port}-tcp")),
                app_protocol: Some(ApplicationProtocol::Http),
                ..Default::default()
            }]),
            command: container.command.filter(|c| !c.is_empty()),
            environment: container.environment,
            secrets: container.secrets.filter(|s| !s.is_empty()),
            repository_credentials: container
                .repository_credentials
                .map(|r| RepositoryCredentials { credentials_parameter: r.credentials_parameter }),
            stop_timeout: Some(30),
            version_consistency: Some(VersionConsistency::Enabled),
            linux_parameters: Some(LinuxParameters { init_process_enabled: Some(true), ..Default::default() }),
            log_configuration,
            ..Default::default()
        }]),
        family: Some(family.into()),
        task_role_arn: config.task_role_arn.clone(),
        execution_role_arn: config.execution_role_arn.clone(),
        network_mode: Some(NetworkMode::Awsvpc),
        revision: Some(revision as i32),
        volumes: Some(Vec::new()),
        status: Some(TaskDefinitionStatus::Active),
        compatibilities: Some(vec![Compatibility::Ec2, Compatibility::Fargate]),
        runtime_platform: Some(RuntimePlatform {
            cpu_architecture: Some(CPUArchitecture::X8664),
            operating_system_family: Some(OSFamily::Linux),
        }),
        requires_compatibilities: Some(vec![Compatibility::Fargate]),
        cpu: Some(size.cpu.to_string()),
        memory: Some(size.memory_mib.to_string()),
        registered_at: Some(Timestamp(t)),
        registered_by: Some(caller.principal_arn.clone()),
        ..Default::default()
    };
    serde_json::to_string(&def).unwrap_or_default()
}

// ---- deployments (the rows the rollout writes, as ECS shows them)

/// A stored JSON column that does not parse: the store's corruption.
fn corrupt(what: &str, e: impl std::fmt::Display) -> ControlError {
    ControlError::Store(berth_store::StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn progress_of(d: &DeploymentRow) -> Result<Progress, ControlError> {
    Progress::parse(&d.progress).map_err(|e| corrupt(&format!("deployment {} progress", d.arn), e))
}

pub(crate) fn config_of(d: &DeploymentRow) -> Result<DeploymentConfiguration, ControlError> {
    if d.config.trim().is_empty() {
        return Ok(DeploymentConfiguration::default());
    }
    serde_json::from_str(&d.config).map_err(|e| corrupt(&format!("deployment {} configuration", d.arn), e))
}

/// Whether a deployment has ended (ECS's "Completed" group).
pub(crate) fn finished(d: &DeploymentRow) -> bool {
    FINISHED_STATUSES.contains(&d.status.as_str())
}

/// A service's tasks that have not stopped (every revision), the counts below are taken from.
pub(crate) fn live_tasks(tx: &Tx<'_>, service: &ServiceRow) -> Result<Vec<TaskRow>, ControlError> {
    Ok(tx
        .tasks_in(&service.cluster, Some(service.id), None)?
        .into_iter()
        .filter(|t| t.last_status != TaskStatus::Stopped)
        .collect())
}

/// One revision's tasks: (requested = desired RUNNING, running, pending = desired RUNNING but not yet).
pub(crate) fn revision_counts(tasks: &[TaskRow], revision: &str) -> (i32, i32, i32) {
    let of = || tasks.iter().filter(|t| t.revision_arn.as_deref() == Some(revision));
    let requested = of().filter(|t| t.desired_status == TaskStatus::Running).count() as i32;
    let running = of().filter(|t| t.last_status == TaskStatus::Running).count() as i32;
    let pending =
        of().filter(|t| t.desired_status == TaskStatus::Running && t.last_status < TaskStatus::Running).count() as i32;
    (requested, running, pending)
}

/// Whether the deployment still moves towards its target (not rolling back, not stopping, not over).
fn advancing(d: &DeploymentRow) -> bool {
    matches!(d.status.as_str(), "PENDING" | "IN_PROGRESS")
}

fn hook_detail(h: &Hook) -> DeploymentLifecycleHookDetail {
    DeploymentLifecycleHookDetail {
        hook_id: Some(h.hook_id.clone()),
        target_type: DeploymentLifecycleHookTargetType::parse(&h.target_type),
        target_arn: None,
        status: DeploymentLifecycleHookStatus::parse(&h.status),
        expires_at: h.expires_at.map(Timestamp),
        timeout_action: DeploymentLifecycleHookAction::parse(&h.timeout_action),
    }
}

/// A monitor's status: not configured, tripped, watching, or done watching.
fn monitor_status(enabled: bool, triggered: bool, done: bool) -> ServiceDeploymentRollbackMonitorsStatus {
    use ServiceDeploymentRollbackMonitorsStatus as S;
    match (enabled, triggered, done) {
        (false, _, _) => S::Disabled,
        (true, true, _) => S::Triggered,
        (true, false, true) => S::MonitoringComplete,
        (true, false, false) => S::Monitoring,
    }
}

/// ListServiceDeployments' entry.
pub(crate) fn deployment_brief(c: &Control, service: &ServiceRow, d: &DeploymentRow) -> ServiceDeploymentBrief {
    ServiceDeploymentBrief {
        service_deployment_arn: Some(d.arn.clone()),
        service_arn: Some(service.arn.clone()),
        cluster_arn: Some(c.names.cluster(&service.cluster)),
        started_at: d.started_at.map(Timestamp),
        created_at: Some(Timestamp(d.created_at)),
        finished_at: d.finished_at.map(Timestamp),
        target_service_revision_arn: Some(d.target_revision.clone()),
        status: ServiceDeploymentStatus::parse(&d.status),
        status_reason: d.status_reason.clone(),
    }
}

/// DescribeServiceDeployments' entry: the row, its progress, and the task counts of its two revisions.
pub(crate) fn service_deployment(
    c: &Control,
    service: &ServiceRow,
    d: &DeploymentRow,
    tasks: &[TaskRow],
) -> Result<ServiceDeployment, ControlError> {
    let p = progress_of(d)?;
    let config = config_of(d)?;
    let done = finished(d);
    let (requested, running, pending) = revision_counts(tasks, &d.target_revision);
    // While it advances, the target is asked for the service's whole desired count.
    let requested = if advancing(d) { requested.max(service.desired_count as i32) } else { requested };
    let target = ServiceRevisionSummary {
        arn: Some(d.target_revision.clone()),
        requested_task_count: Some(requested),
        running_task_count: Some(running),
        pending_task_count: Some(pending),
        requested_test_traffic_weight: Some(p.test_weight),
        requested_production_traffic_weight: Some(p.target_weight),
    };
    let sources = d
        .source_revision
        .iter()
        .map(|source| {
            let (requested, running, pending) = revision_counts(tasks, source);
            ServiceRevisionSummary {
                arn: Some(source.clone()),
                requested_task_count: Some(requested),
                running_task_count: Some(running),
                pending_task_count: Some(pending),
                requested_test_traffic_weight: Some(100.0 - p.test_weight),
                requested_production_traffic_weight: Some(100.0 - p.target_weight),
            }
        })
        .collect();
    let alarm_names = if p.alarm_names.is_empty() {
        config.alarms.as_ref().and_then(|a| a.alarm_names.clone()).unwrap_or_default()
    } else {
        p.alarm_names.clone()
    };
    let alarms_enabled = config.alarms.as_ref().and_then(|a| a.enable).unwrap_or(true) && !alarm_names.is_empty();
    let breaker_enabled =
        config.deployment_circuit_breaker.as_ref().and_then(|b| b.enable).unwrap_or(p.failure_threshold > 0);
    let tripped = p.failure_threshold > 0 && p.failures >= p.failure_threshold;
    let mut hooks: Vec<DeploymentLifecycleHookDetail> = p.hooks_done.iter().map(hook_detail).collect();
    hooks.extend(p.hook.iter().map(hook_detail));
    Ok(ServiceDeployment {
        service_deployment_arn: Some(d.arn.clone()),
        service_arn: Some(service.arn.clone()),
        cluster_arn: Some(c.names.cluster(&service.cluster)),
        created_at: Some(Timestamp(d.created_at)),
        started_at: d.started_at.map(Timestamp),
        finished_at: d.finished_at.map(Timestamp),
        stopped_at: d.stopped_at.map(Timestamp),
        updated_at: Some(Timestamp(d.updated_at)),
        source_service_revisions: Some(sources),
        target_service_revision: Some(target),
        status: ServiceDeploymentStatus::parse(&d.status),
        status_reason: d.status_reason.clone(),
        lifecycle_stage: ServiceDeploymentLifecycleStage::parse(&d.stage),
        lifecycle_hook_details: Some(hooks),
        deployment_configuration: Some(config),
        rollback: p.rollback.as_ref().map(|r| Rollback {
            reason: Some(r.reason.clone()),
            started_at: Some(Timestamp(r.started_at)),
            service_revision_arn: Some(r.revision.clone()),
        }),
        deployment_circuit_breaker: Some(ServiceDeploymentCircuitBreaker {
            status: Some(monitor_status(breaker_enabled, tripped, done)),
            failure_count: Some(p.failures as i32),
            threshold: Some(p.failure_threshold as i32),
        }),
        alarms: Some(ServiceDeploymentAlarms {
            status: Some(monitor_status(alarms_enabled, !p.triggered_alarms.is_empty(), done)),
            alarm_names: Some(alarm_names),
            triggered_alarm_names: Some(p.triggered_alarms.clone()),
        }),
    })
}

/// The deployment configuration Express deployments follow when the service's settings give none: CANARY with
/// the server's canary percentage and bakes (whole minutes, as the model has them), the service's deployment
/// alarm and the circuit breaker, both with rollback.
pub(crate) fn express_default_configuration(c: &Control, service: &ServiceRow) -> DeploymentConfiguration {
    let d = c.config.deploy;
    let minutes = |secs: u64| i32::try_from(secs.div_ceil(60)).unwrap_or(i32::MAX);
    DeploymentConfiguration {
        deployment_circuit_breaker: Some(DeploymentCircuitBreaker {
            enable: Some(true),
            rollback: Some(true),
            ..Default::default()
        }),
        maximum_percent: Some(200),
        minimum_healthy_percent: Some(100),
        alarms: Some(DeploymentAlarms {
            alarm_names: Some(vec![crate::express::deploy_alarm::alarm_name(service)]),
            rollback: Some(true),
            enable: Some(true),
        }),
        strategy: Some(DeploymentStrategy::Canary),
        bake_time_in_minutes: Some(minutes(d.bake_secs)),
        canary_configuration: Some(CanaryConfiguration {
            canary_percent: Some(d.canary_percent),
            canary_bake_time_in_minutes: Some(minutes(d.canary_bake_secs)),
        }),
        ..Default::default()
    }
}

/// The service's effective deployment settings: what UpdateService stored, else the Express defaults.
pub(crate) fn effective_configuration(
    c: &Control,
    tx: &Tx<'_>,
    service: &ServiceRow,
) -> Result<DeploymentConfiguration, ControlError> {
    let stored = match tx.deployment_settings_get(service.id)? {
        Some(json) => Settings::parse(&json).map_err(|e| corrupt("deployment settings", e))?.configuration,
        None => None,
    };
    Ok(stored.unwrap_or_else(|| express_default_configuration(c, service)))
}

/// The revisions that serve production traffic by a service's newest deployment, oldest first: while it runs,
/// each one its weights give a share (both during a canary); once it has ended, the one it left serving. A
/// deployment whose revisions have no traffic yet (a service's first) shows its target.
pub(crate) fn serving_revisions(d: &DeploymentRow) -> Result<Vec<String>, ControlError> {
    let p = progress_of(d)?;
    let mut out = Vec::new();
    let back = !advancing(d) && d.status != "SUCCESSFUL";
    if finished(d) {
        match (&d.source_revision, back) {
            (Some(source), true) => out.push(source.clone()),
            _ => out.push(d.target_revision.clone()),
        }
        return Ok(out);
    }
    if let Some(source) = &d.source_revision
        && p.target_weight < 100.0
    {
        out.push(source.clone());
    }
    if p.target_weight > 0.0 || out.is_empty() {
        out.push(d.target_revision.clone());
    }
    Ok(out)
}

/// `ecs-svc/<digits>`: the legacy deployment id of a revision.
fn legacy_id(revision_arn: &str) -> String {
    format!("ecs-svc/{}", deployment_id(revision_arn))
}

/// `Service.deployments[]` from the newest deployment row: PRIMARY is the revision the service is heading to
/// (the target, or the source once the deployment rolls back or stops), ACTIVE the other one while it still has
/// tasks. rolloutState and its reason use ECS's texts where ECS publishes them (in progress, completed, circuit
/// breaker); the alarm and stop texts are berth's.
fn legacy_deployments(
    service: &ServiceRow,
    d: &DeploymentRow,
    tasks: &[TaskRow],
    revision_created: &dyn Fn(&str) -> Option<Timestamp>,
    task_definition: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Deployment>, ControlError> {
    use DeploymentRolloutState as R;
    let p = progress_of(d)?;
    let back = !advancing(d) && d.status != "SUCCESSFUL";
    // The revision the service ends up on, and the one it leaves.
    let (primary, other) = match (&d.source_revision, back) {
        (Some(source), true) => (source.clone(), Some(d.target_revision.clone())),
        (source, _) => (d.target_revision.clone(), source.clone().filter(|_| !back)),
    };
    let why_back = if !p.triggered_alarms.is_empty() {
        format!("ECS deployment alarm {} in ALARM", p.triggered_alarms.join(", "))
    } else if p.failure_threshold > 0 && p.failures >= p.failure_threshold {
        "ECS deployment circuit breaker".to_string()
    } else {
        "ECS deployment".to_string()
    };
    let failed_reason = || d.status_reason.clone().unwrap_or_else(|| format!("{why_back}: deployment failed."));
    let (state, reason) = match (d.status.as_str(), primary == d.target_revision) {
        ("PENDING" | "IN_PROGRESS", _) => {
            (R::InProgress, format!("ECS deployment {} in progress.", legacy_id(&primary)))
        }
        ("SUCCESSFUL", _) | ("ROLLBACK_SUCCESSFUL" | "STOPPED", false) => {
            (R::Completed, format!("ECS deployment {} completed.", legacy_id(&primary)))
        }
        ("ROLLBACK_REQUESTED" | "ROLLBACK_IN_PROGRESS" | "STOP_REQUESTED", false) => {
            (R::InProgress, format!("{why_back}: rolling back to deploymentId {}.", legacy_id(&primary)))
        }
        _ => (R::Failed, failed_reason()),
    };
    let entry = |revision: &str, status: &str, desired: i32, state: R, reason: String, failed: u32| {
        let (_, running, pending) = revision_counts(tasks, revision);
        Deployment {
            id: Some(legacy_id(revision)),
            status: Some(status.into()),
            task_definition: task_definition(revision),
            desired_count: Some(desired),
            pending_count: Some(pending),
            running_count: Some(running),
            failed_tasks: Some(failed as i32),
            created_at: revision_created(revision),
            updated_at: Some(Timestamp(d.updated_at)),
            launch_type: Some(LaunchType::Fargate),
            platform_version: Some("LATEST".into()),
            rollout_state: Some(state),
            rollout_state_reason: Some(reason),
            ..Default::default()
        }
    };
    let target_failures = if primary == d.target_revision { p.failures } else { 0 };
    let mut out = vec![entry(&primary, "PRIMARY", service.desired_count as i32, state, reason, target_failures)];
    if let Some(other) = other {
        let (requested, running, pending) = revision_counts(tasks, &other);
        if requested + running + pending > 0 {
            let (state, reason, failed) = if other == d.target_revision {
                (R::Failed, failed_reason(), p.failures)
            } else {
                (R::Completed, format!("ECS deployment {} completed.", legacy_id(&other)), 0)
            };
            out.push(entry(&other, "ACTIVE", requested, state, reason, failed));
        }
    }
    Ok(out)
}

/// The revisions a service's tasks run (and its target revision), with their counts.
fn current_revisions(
    service: &ServiceRow,
    tasks: &[TaskRow],
    advancing_to: Option<&str>,
) -> Vec<ServiceCurrentRevisionSummary> {
    let mut arns: Vec<String> = Vec::new();
    if service.status != ServiceStatus::Inactive && !service.target_revision.is_empty() {
        arns.push(service.target_revision.clone());
    }
    for t in tasks {
        if let Some(r) = &t.revision_arn
            && !arns.contains(r)
        {
            arns.push(r.clone());
        }
    }
    arns.into_iter()
        .map(|arn| {
            let (requested, running, pending) = revision_counts(tasks, &arn);
            let requested = if advancing_to == Some(arn.as_str()) {
                requested.max(service.desired_count as i32)
            } else {
                requested
            };
            ServiceCurrentRevisionSummary {
                arn: Some(arn),
                requested_task_count: Some(requested),
                running_task_count: Some(running),
                pending_task_count: Some(pending),
            }
        })
        .collect()
}
