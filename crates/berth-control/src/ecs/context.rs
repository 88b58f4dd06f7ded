//! The request contexts of an ECS operation: each resource it acts on and the tags that come with it, so identity
//! policies can scope ECS permissions to services, clusters and tasks (`Resource`, `aws:ResourceTag/...`,
//! `aws:RequestTag/...`, `aws:TagKeys`, `ecs:cluster`). The List operations and DescribeTaskDefinition /
//! ListTaskDefinitions are checked on resource `*` (with `ecs:cluster` where AWS has it), as AWS does.

use berth_iam::RequestContext;
use berth_model::ecs::{
    ContinueServiceDeploymentRequest, DescribeServiceDeploymentsRequest, DescribeServiceRevisionsRequest,
    ListServiceDeploymentsRequest, Operation, StopServiceDeploymentRequest, UpdateServiceRequest,
};

use crate::names::cluster_name;
use crate::{Control, ControlError, authz};

/// The contexts `ecs:<Op>` is authorized with (one per resource it names; all must be allowed).
pub(crate) fn ecs_requests(c: &Control, op: &Operation) -> Result<Vec<RequestContext>, ControlError> {
    let action = format!("ecs:{}", op.name());
    let cluster_arn = |given: &Option<String>| c.names.cluster(&cluster_name(given.as_deref()));
    let on_existing = |arn: &str, cluster: &str| -> Result<RequestContext, ControlError> {
        let tags = c.read(|tx| Ok(tx.tags_get(arn)?))?;
        Ok(RequestContext::new(action.clone(), arn)
            .with_resource_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .with_key("ecs:cluster", cluster.to_string()))
    };
    // A name or id is completed to the ARN it stands for in `cluster`.
    let full = |given: &str, cluster: &Option<String>, make: &dyn Fn(&str, &str) -> String| -> String {
        if given.starts_with("arn:") { given.to_string() } else { make(&cluster_name(cluster.as_deref()), given) }
    };
    Ok(match op {
        Operation::CreateCluster(r) => {
            let cluster = RequestContext::new(action, c.names.cluster(&cluster_name(r.cluster_name.as_deref())));
            vec![authz::with_request_tags(cluster, r.tags.iter().flatten().map(|t| (&t.key, &t.value)))]
        }
        Operation::DescribeClusters(r) => {
            let given = r.clusters.clone().filter(|l| !l.is_empty()).unwrap_or_else(|| vec!["default".into()]);
            given
                .iter()
                .map(|g| {
                    let arn = cluster_arn(&Some(g.clone()));
                    on_existing(&arn, &arn)
                })
                .collect::<Result<_, _>>()?
        }
        Operation::DescribeServices(r) => {
            let cluster = cluster_arn(&r.cluster);
            r.services
                .iter()
                .flatten()
                .map(|s| on_existing(&full(s, &r.cluster, &|cl, n| c.names.service(cl, n)), &cluster))
                .collect::<Result<_, _>>()?
        }
        Operation::DescribeTasks(r) => {
            let cluster = cluster_arn(&r.cluster);
            r.tasks
                .iter()
                .flatten()
                .map(|t| on_existing(&full(t, &r.cluster, &|cl, id| c.names.task(cl, id)), &cluster))
                .collect::<Result<_, _>>()?
        }
        Operation::StopTask(r) => {
            let task = full(r.task.as_deref().unwrap_or_default(), &r.cluster, &|cl, id| c.names.task(cl, id));
            vec![on_existing(&task, &cluster_arn(&r.cluster))?]
        }
        Operation::ListServices(r) => {
            vec![RequestContext::new(action, "*").with_key("ecs:cluster", cluster_arn(&r.cluster))]
        }
        // The service (name or ARN) they act on, in the request's cluster or else the ARN's.
        Operation::UpdateService(UpdateServiceRequest { service, cluster, .. })
        | Operation::ListServiceDeployments(ListServiceDeploymentsRequest { service, cluster, .. }) => {
            let service = full(service.as_deref().unwrap_or_default(), cluster, &|cl, n| c.names.service(cl, n));
            vec![on_existing(&service, &cluster_arn(&cluster.clone().or_else(|| arn_cluster(&service))))?]
        }
        // Each service deployment or revision ARN, in the cluster it names.
        Operation::DescribeServiceDeployments(DescribeServiceDeploymentsRequest { service_deployment_arns: arns })
        | Operation::DescribeServiceRevisions(DescribeServiceRevisionsRequest { service_revision_arns: arns }) => arns
            .iter()
            .flatten()
            .map(|arn| on_existing(arn, &cluster_arn(&arn_cluster(arn))))
            .collect::<Result<_, _>>()?,
        Operation::StopServiceDeployment(StopServiceDeploymentRequest { service_deployment_arn: arn, .. })
        | Operation::ContinueServiceDeployment(ContinueServiceDeploymentRequest {
            service_deployment_arn: arn, ..
        }) => {
            let arn = arn.clone().unwrap_or_default();
            vec![on_existing(&arn, &cluster_arn(&arn_cluster(&arn)))?]
        }
        Operation::ListTasks(r) => {
            vec![RequestContext::new(action, "*").with_key("ecs:cluster", cluster_arn(&r.cluster))]
        }
        _ => vec![ecs_request(c, op)?],
    })
}

/// The cluster a `service-deployment/<cluster>/...` or `service-revision/<cluster>/...` ARN names (none: `default`).
fn arn_cluster(arn: &str) -> Option<String> {
    let resource = arn.splitn(6, ':').nth(5)?;
    resource.split('/').nth(1).map(str::to_string)
}

/// The context of an operation on one resource named in the request (or `*`).
fn ecs_request(c: &Control, op: &Operation) -> Result<RequestContext, ControlError> {
    let action = format!("ecs:{}", op.name());
    let tagged = |request: RequestContext, tags: &Option<Vec<berth_model::ecs::Tag>>| {
        authz::with_request_tags(request, tags.iter().flatten().map(|t| (&t.key, &t.value)))
    };
    let on_existing = |arn: &str| -> Result<RequestContext, ControlError> {
        let tags = c.read(|tx| Ok(tx.tags_get(arn)?))?;
        Ok(RequestContext::new(action.clone(), arn)
            .with_resource_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
    };
    Ok(match op {
        Operation::CreateExpressGatewayService(r) => {
            let cluster = cluster_name(r.cluster.as_deref());
            let name = r.service_name.clone().unwrap_or_else(|| {
                berth_core::ids::service_name_from_image(
                    r.primary_container.as_ref().and_then(|p| p.image.as_deref()).unwrap_or("service"),
                )
            });
            tagged(RequestContext::new(action.clone(), c.names.service(&cluster, &name)), &r.tags)
        }
        Operation::DescribeExpressGatewayService(r) => on_existing(r.service_arn.as_deref().unwrap_or_default())?,
        Operation::UpdateExpressGatewayService(r) => on_existing(r.service_arn.as_deref().unwrap_or_default())?,
        Operation::DeleteExpressGatewayService(r) => on_existing(r.service_arn.as_deref().unwrap_or_default())?,
        Operation::DeleteCluster(r) => on_existing(&c.names.cluster(&cluster_name(r.cluster.as_deref())))?,
        Operation::ListTagsForResource(r) => on_existing(r.resource_arn.as_deref().unwrap_or_default())?,
        Operation::TagResource(r) => tagged(on_existing(r.resource_arn.as_deref().unwrap_or_default())?, &r.tags),
        Operation::UntagResource(r) => on_existing(r.resource_arn.as_deref().unwrap_or_default())?
            .with_multi_key("aws:TagKeys", r.tag_keys.clone().unwrap_or_default()),
        _ => RequestContext::new(action, "*"),
    })
}
