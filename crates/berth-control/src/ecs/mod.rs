//! What each ECS operation means. Commands validate, then change desired state in one transaction and
//! wake the reconciler; they never wait for containers.

mod clusters;
mod context;
mod deployments;
mod express;
pub(crate) mod render;
mod service_revisions;
mod tags;
mod task_definitions;
mod tasks;
mod update_service;

use berth_core::AwsError;
use berth_model::ecs::{Operation, Output};

use crate::{CallerIdentity, Control, ControlError, authz};

pub(crate) fn handle(c: &Control, caller: &CallerIdentity, op: Operation) -> Result<Output, ControlError> {
    use Operation as O;
    Ok(match op {
        O::CreateExpressGatewayService(r) => Output::CreateExpressGatewayService(express::create(c, caller, r)?),
        O::DescribeExpressGatewayService(r) => Output::DescribeExpressGatewayService(express::describe(c, r)?),
        O::UpdateExpressGatewayService(r) => Output::UpdateExpressGatewayService(express::update(c, caller, r)?),
        O::DeleteExpressGatewayService(r) => Output::DeleteExpressGatewayService(express::delete(c, r)?),
        O::CreateCluster(r) => Output::CreateCluster(clusters::create(c, r)?),
        O::DescribeClusters(r) => Output::DescribeClusters(clusters::describe(c, r)?),
        O::ListClusters(r) => Output::ListClusters(clusters::list(c, r)?),
        O::DeleteCluster(r) => Output::DeleteCluster(clusters::delete(c, r)?),
        O::ListServices(r) => Output::ListServices(express::list_services(c, r)?),
        O::DescribeServices(r) => Output::DescribeServices(express::describe_services(c, r)?),
        O::ListTasks(r) => Output::ListTasks(tasks::list(c, r)?),
        O::DescribeTasks(r) => Output::DescribeTasks(tasks::describe(c, r)?),
        O::StopTask(r) => Output::StopTask(tasks::stop(c, r)?),
        O::DescribeTaskDefinition(r) => Output::DescribeTaskDefinition(tasks::describe_task_definition(c, r)?),
        O::ListTaskDefinitions(r) => Output::ListTaskDefinitions(tasks::list_task_definitions(c, r)?),
        O::TagResource(r) => Output::TagResource(tags::tag(c, r)?),
        O::UntagResource(r) => Output::UntagResource(tags::untag(c, r)?),
        O::ListTagsForResource(r) => Output::ListTagsForResource(tags::list(c, r)?),
        O::UpdateService(r) => Output::UpdateService(update_service::update(c, caller, r)?),
        O::ListServiceDeployments(r) => Output::ListServiceDeployments(deployments::list(c, r)?),
        O::DescribeServiceDeployments(r) => Output::DescribeServiceDeployments(deployments::describe(c, r)?),
        O::StopServiceDeployment(r) => Output::StopServiceDeployment(deployments::stop(c, caller, r)?),
        O::ContinueServiceDeployment(r) => Output::ContinueServiceDeployment(deployments::continue_(c, caller, r)?),
        O::DescribeServiceRevisions(r) => Output::DescribeServiceRevisions(service_revisions::describe(c, r)?),
        O::RegisterTaskDefinition(r) => Output::RegisterTaskDefinition(task_definitions::register(c, caller, r)?),
        O::DeregisterTaskDefinition(r) => Output::DeregisterTaskDefinition(task_definitions::deregister(c, r)?),
        O::DeleteTaskDefinitions(r) => Output::DeleteTaskDefinitions(task_definitions::delete(c, r)?),
    })
}

impl Control {
    /// Handles one decoded ECS operation for an authenticated caller.
    pub async fn handle_ecs(&self, caller: &CallerIdentity, op: Operation) -> Result<Output, AwsError> {
        let (name, errors) = (op.name(), op.errors());
        let out = (|| {
            if !authz::is_root(caller) {
                let requests = context::ecs_requests(self, &op).map_err(AwsError::from)?;
                authz::authorize_all(caller, &format!("ecs:{name}"), requests)?;
            }
            handle(self, caller, op).map_err(AwsError::from)
        })();
        crate::error::answer(berth_model::ecs::SIGNING_NAME, name, errors, out)
    }
}

/// A page of `items` from `next_token` (an offset), at most `max` (default 100, ECS's cap).
pub(crate) fn paginate<T>(
    items: Vec<T>,
    next_token: Option<&str>,
    max: Option<i32>,
) -> Result<(Vec<T>, Option<String>), ControlError> {
    let max = crate::paging::size(max, 100, 1..=100)
        .map_err(|m| ControlError::invalid(format!("maxResults must be between 1 and 100, got {m}")))?;
    crate::paging::offset_page(items, next_token, max).map_err(|_| ControlError::invalid("Invalid nextToken"))
}
