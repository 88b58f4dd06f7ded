//! Rows → ECS response shapes.

use berth_core::sizing::TaskSize;
use berth_core::status::{ServiceStatus, TaskStatus};
use berth_model::Timestamp;
use berth_model::ecs::*;
use berth_store::{ServiceRow, TaskRow, Tx};

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
    let mut active = Vec::new();
    if row.status != ServiceStatus::Inactive {
        if let Some(live) = &row.live_revision {
            active.push(revision_config(tx, live)?);
        }
        if row.live_revision.as_deref() != Some(row.target_revision.as_str()) && !row.target_revision.is_empty() {
            active.push(revision_config(tx, &row.target_revision)?);
        }
    }
    Ok(ECSExpressGatewayService {
        cluster: Some(row.cluster.clone()),
        service_name: Some(row.name.clone()),
        service_arn: Some(row.arn.clone()),
        infrastructure_role_arn: row.infrastructure_role_arn.clone(),
        status: Some(express_status(row)),
        current_deployment: Some(c.names.deployment(&row.cluster, &row.name, &row.target_revision)),
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
    let mut deployments = Vec::new();
    let in_progress = row.live_revision.as_deref() != Some(row.target_revision.as_str())
        || tasks.iter().any(|t| t.revision_arn.as_deref() != Some(row.target_revision.as_str()));
    let active_status = row.status != ServiceStatus::Inactive;
    if active_status {
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
                test_listener_rule: None,
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
