//! DescribeServiceRevisions: a revision's workload and, for Express services, `ecsManagedResources` (ingress
//! path, scaling, alarms, security groups, log groups) with their ARNs and statuses. Every resource is read
//! from its own service's rows (ELBv2, Application Auto Scaling, CloudWatch, EC2, Logs) as they are now: one
//! that is gone shows `DELETED`, one of a service being deleted `DEPROVISIONING`.

use berth_core::status::ServiceStatus;
use berth_model::Timestamp;
use berth_model::application_autoscaling as aas;
use berth_model::ecs::*;
use berth_store::{RevisionRow, ServiceRow, Tx};

use crate::elbv2::{HealthSettings, https_listener, parse};
use crate::revisions::revision_config;
use crate::{Control, ControlError};

pub(crate) fn describe(
    c: &Control,
    r: DescribeServiceRevisionsRequest,
) -> Result<DescribeServiceRevisionsResponse, ControlError> {
    let arns = r.service_revision_arns.unwrap_or_default();
    c.read(|tx| {
        let (found, failures) = super::deployments::describe_each("serviceRevisionArns", arns, |arn| {
            let Some(row) = tx.revision_get(arn)? else { return Ok(None) };
            let Some(service) = tx.service_by_id(row.service_id)? else { return Ok(None) };
            Ok(Some(revision(c, tx, &service, &row)?))
        })?;
        Ok(DescribeServiceRevisionsResponse { service_revisions: Some(found), failures: Some(failures) })
    })
}

/// A revision as ECS shows it.
fn revision(
    c: &Control,
    tx: &Tx<'_>,
    service: &ServiceRow,
    row: &RevisionRow,
) -> Result<ServiceRevision, ControlError> {
    let config = revision_config(tx, &row.arn)?;
    let group = tx.revision_group(&row.arn)?;
    let rule = crate::elbv2::service_groups(tx, service)?.and_then(|(_, _, rule)| rule);
    let container = config.primary_container.clone().unwrap_or_default();
    let net = config.network_configuration.clone().unwrap_or_default();
    Ok(ServiceRevision {
        service_revision_arn: Some(row.arn.clone()),
        service_arn: Some(service.arn.clone()),
        cluster_arn: Some(c.names.cluster(&service.cluster)),
        task_definition: Some(row.task_definition_arn.clone()),
        launch_type: Some(LaunchType::Fargate),
        platform_version: Some("LATEST".into()),
        platform_family: Some("Linux".into()),
        load_balancers: Some(vec![LoadBalancer {
            target_group_arn: group.clone(),
            container_name: Some("Main".into()),
            container_port: container.container_port,
            ..Default::default()
        }]),
        network_configuration: Some(NetworkConfiguration {
            awsvpc_configuration: Some(AwsVpcConfiguration {
                subnets: net.subnets.clone(),
                security_groups: net.security_groups.clone(),
                assign_public_ip: Some(AssignPublicIp::Enabled),
            }),
        }),
        container_images: Some(vec![ContainerImage {
            container_name: Some("Main".into()),
            image: container.image.clone(),
            image_digest: None,
        }]),
        guard_duty_enabled: Some(false),
        created_at: Some(Timestamp(row.created_at)),
        resolved_configuration: Some(ResolvedConfiguration {
            load_balancers: Some(vec![ServiceRevisionLoadBalancer {
                target_group_arn: group.clone(),
                production_listener_rule: rule.clone(),
            }]),
            vpc_lattice_configurations: None,
        }),
        ecs_managed_resources: if service.express {
            Some(managed_resources(c, tx, service, &config, group.as_deref(), rule.as_deref())?)
        } else {
            None
        },
        ..Default::default()
    })
}

/// A managed resource's status: gone, going with its service, or there.
fn status(exists: bool, service: &ServiceRow) -> ManagedResourceStatus {
    match (exists, service.status) {
        (false, _) => ManagedResourceStatus::Deleted,
        (true, ServiceStatus::Active) => ManagedResourceStatus::Active,
        (true, _) => ManagedResourceStatus::Deprovisioning,
    }
}

fn managed_resources(
    c: &Control,
    tx: &Tx<'_>,
    service: &ServiceRow,
    config: &ExpressGatewayServiceConfiguration,
    group: Option<&str>,
    rule: Option<&str>,
) -> Result<ECSManagedResources, ControlError> {
    let security_group = |id: &str| -> Result<ManagedSecurityGroup, ControlError> {
        let row = tx.security_group_get(id)?;
        Ok(ManagedSecurityGroup {
            arn: Some(crate::ec2::arn(c, "security-group", id)),
            status: Some(status(row.is_some(), service)),
            status_reason: None,
            updated_at: Some(Timestamp(row.map_or(service.updated_at, |g| g.created_at))),
        })
    };
    let net = config.network_configuration.clone().unwrap_or_default();
    let service_security_groups =
        net.security_groups.iter().flatten().map(|g| security_group(g)).collect::<Result<Vec<_>, _>>()?;
    let ingress = ingress_path(tx, service, config, group, rule, &security_group)?;
    let (auto_scaling, mut metric_alarms) = auto_scaling(c, tx, service)?;
    // The deployment alarm Express watches its deployments with.
    let deploy_alarm = crate::express::deploy_alarm::alarm_name(service);
    if let Some(a) = tx.alarm_get(&deploy_alarm)? {
        metric_alarms.push(ManagedMetricAlarm {
            arn: Some(a.arn.clone()),
            status: Some(status(true, service)),
            status_reason: None,
            updated_at: Some(Timestamp(a.config_updated)),
        });
    }
    let mut log_groups = Vec::new();
    if let Some(name) = config
        .primary_container
        .as_ref()
        .and_then(|p| p.aws_logs_configuration.as_ref())
        .and_then(|l| l.log_group.clone())
    {
        let row = tx.log_group_get(&name)?;
        log_groups.push(ManagedLogGroup {
            arn: Some(row.as_ref().map_or_else(|| c.log_group_arn(&name), |g| g.arn.clone())),
            // A log group outlives its service (its logs stay).
            status: Some(if row.is_some() { ManagedResourceStatus::Active } else { ManagedResourceStatus::Deleted }),
            status_reason: None,
            updated_at: Some(Timestamp(row.map_or(service.updated_at, |g| g.created_ms as f64 / 1000.0))),
            log_group_name: Some(name),
        });
    }
    Ok(ECSManagedResources {
        ingress_paths: Some(vec![ingress]),
        auto_scaling: Some(auto_scaling),
        metric_alarms: Some(metric_alarms),
        service_security_groups: Some(service_security_groups),
        log_groups: Some(log_groups),
        gateway_connections: None,
    })
}

/// The revision's way in: the service's endpoint on its shared load balancer (with the load balancer's security
/// groups), the HTTPS listener and its certificate for the endpoint, the service's rule, and the revision's
/// target group.
fn ingress_path(
    tx: &Tx<'_>,
    service: &ServiceRow,
    config: &ExpressGatewayServiceConfiguration,
    group: Option<&str>,
    rule: Option<&str>,
    security_group: &dyn Fn(&str) -> Result<ManagedSecurityGroup, ControlError>,
) -> Result<ManagedIngressPath, ControlError> {
    let summary = config.ingress_paths.iter().flatten().next().cloned().unwrap_or_default();
    let mut path = ManagedIngressPath {
        access_type: summary.access_type,
        endpoint: summary.endpoint.or_else(|| Some(service.endpoint_host.clone())),
        ..Default::default()
    };
    if let Some(arn) = group {
        let row = tx.tg_get(arn)?;
        let health: Option<HealthSettings> =
            row.as_ref().map(|g| parse(&g.health_check, "target group health check")).transpose()?;
        let port = row.as_ref().map(|g| i32::from(g.port));
        path.target_groups = Some(vec![ManagedTargetGroup {
            arn: Some(arn.to_string()),
            status: Some(status(row.is_some(), service)),
            status_reason: None,
            updated_at: Some(Timestamp(row.as_ref().map_or(service.updated_at, |g| g.created_at))),
            health_check_path: health.as_ref().map(|h| h.path.clone()),
            health_check_port: health.as_ref().and_then(|h| h.port.parse::<i32>().ok()).or(port),
            port,
        }]);
    }
    if let Some(arn) = rule {
        let exists = tx.rule_get(arn)?.is_some();
        path.rule = Some(ManagedListenerRule {
            arn: Some(arn.to_string()),
            status: Some(status(exists, service)),
            status_reason: None,
            updated_at: Some(Timestamp(service.created_at)),
        });
    }
    // Released from its load balancer once the service is deleted.
    let Some(placement) = tx.placement_get(service.id)? else { return Ok(path) };
    let lb = tx.lb_get(&placement.load_balancer_arn)?;
    let lb_created = lb.as_ref().map_or(service.created_at, |l| l.created_at);
    let lb_groups = crate::elbv2::network::lb_security_groups(tx, &placement.load_balancer_arn)?;
    path.load_balancer = Some(ManagedLoadBalancer {
        arn: Some(placement.load_balancer_arn.clone()),
        status: Some(status(lb.is_some(), service)),
        status_reason: None,
        updated_at: Some(Timestamp(lb_created)),
        scheme: lb.as_ref().map(|l| l.scheme.clone()),
        subnet_ids: config.network_configuration.as_ref().and_then(|n| n.subnets.clone()),
        security_group_ids: Some(lb_groups),
    });
    path.load_balancer_security_groups = Some(
        crate::ec2::attachments::load_balancer_group(tx, service.id)?
            .iter()
            .map(|g| security_group(g))
            .collect::<Result<Vec<_>, _>>()?,
    );
    if let Some(listener) = https_listener(tx, &placement.load_balancer_arn)? {
        let certificate =
            tx.listener_certificates(&listener.arn)?.into_iter().find(|l| l.host == service.endpoint_host);
        path.certificate = certificate.map(|cert| ManagedCertificate {
            arn: Some(cert.certificate_arn),
            status: Some(status(true, service)),
            status_reason: None,
            updated_at: Some(Timestamp(service.created_at)),
            domain_name: Some(cert.host),
        });
        path.listener = Some(ManagedListener {
            arn: Some(listener.arn),
            status: Some(status(true, service)),
            status_reason: None,
            updated_at: Some(Timestamp(lb_created)),
        });
    }
    Ok(path)
}

/// The service's scalable target and its policies, and the policies' alarms.
fn auto_scaling(
    c: &Control,
    tx: &Tx<'_>,
    service: &ServiceRow,
) -> Result<(ManagedAutoScaling, Vec<ManagedMetricAlarm>), ControlError> {
    use crate::autoscaling::{DIMENSION, NAMESPACE};
    // Express registers `service/<cluster>/<name>` (express/scaling.rs).
    let resource_id = format!("service/{}/{}", service.cluster, service.name);
    let target = tx.scalable_target_get(NAMESPACE, &resource_id, DIMENSION)?;
    let scalable_target = target.map(|t| ManagedScalableTarget {
        arn: Some(t.arn.clone()),
        status: Some(status(true, service)),
        status_reason: None,
        updated_at: Some(Timestamp(t.created_at)),
        min_capacity: i32::try_from(t.min_capacity).ok(),
        max_capacity: i32::try_from(t.max_capacity).ok(),
    });
    let mut policies = Vec::new();
    let mut alarms = Vec::new();
    for p in tx.scaling_policies(NAMESPACE, Some(&resource_id))? {
        let tracking: Option<aas::TargetTrackingScalingPolicyConfiguration> = serde_json::from_str(&p.config).ok();
        let metric = tracking
            .as_ref()
            .and_then(|t| t.predefined_metric_specification.as_ref())
            .and_then(|m| m.predefined_metric_type)
            .map(|m| m.as_str().to_string());
        policies.push(ManagedApplicationAutoScalingPolicy {
            arn: Some(p.arn.clone()),
            status: Some(status(true, service)),
            status_reason: None,
            updated_at: Some(Timestamp(p.created_at)),
            policy_type: Some(p.policy_type.clone()),
            target_value: tracking.as_ref().and_then(|t| t.target_value),
            metric,
        });
        for owned in crate::autoscaling::alarms::parse(&p.alarms) {
            let row = tx.alarm_get(&owned.name)?;
            alarms.push(ManagedMetricAlarm {
                arn: Some(
                    row.as_ref().map_or_else(|| crate::autoscaling::alarms::arn(c, &owned.name), |a| a.arn.clone()),
                ),
                status: Some(status(row.is_some(), service)),
                status_reason: None,
                updated_at: Some(Timestamp(row.map_or(p.created_at, |a| a.config_updated))),
            });
        }
    }
    Ok((ManagedAutoScaling { scalable_target, application_auto_scaling_policies: Some(policies) }, alarms))
}
