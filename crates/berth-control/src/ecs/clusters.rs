//! Clusters: namespaces for services. `default` is created on first use.

use berth_core::ErrorCode;
use berth_core::ids::is_valid_name;
use berth_core::status::TaskStatus;
use berth_model::ecs::*;
use berth_store::ClusterRow;

use super::render;
use crate::names::cluster_name;
use crate::{Control, ControlError, now};

pub(crate) fn create(c: &Control, r: CreateClusterRequest) -> Result<CreateClusterResponse, ControlError> {
    let name = r.cluster_name.unwrap_or_else(|| "default".into());
    if !is_valid_name(&name) {
        return Err(ControlError::invalid(format!(
            "Invalid clusterName '{name}': up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed."
        )));
    }
    let tags = super::tags::tag_pairs(r.tags.unwrap_or_default())?;
    let cluster = c.tx(|tx| {
        let row = match tx.cluster_get(&name)? {
            Some(row) if row.status == "ACTIVE" => row,
            _ => {
                let row = ClusterRow {
                    name: name.clone(),
                    arn: c.names.cluster(&name),
                    status: "ACTIVE".into(),
                    created_at: now(),
                };
                tx.cluster_insert(&row)?;
                row
            }
        };
        tx.tags_put(&row.arn, &tags)?;
        render::cluster(tx, &row, true)
    })?;
    Ok(CreateClusterResponse { cluster: Some(cluster) })
}

pub(crate) fn describe(c: &Control, r: DescribeClustersRequest) -> Result<DescribeClustersResponse, ControlError> {
    let wanted = r.clusters.unwrap_or_else(|| vec!["default".into()]);
    if wanted.len() > 100 {
        return Err(ControlError::invalid("clusters can have at most 100 items."));
    }
    let with_tags = r.include.unwrap_or_default().contains(&ClusterField::Tags);
    c.read(|tx| {
        let mut clusters = Vec::new();
        let mut failures = Vec::new();
        for w in wanted {
            let name = cluster_name(Some(&w));
            match tx.cluster_get(&name)? {
                Some(row) => clusters.push(render::cluster(tx, &row, with_tags)?),
                None => failures.push(Failure {
                    arn: Some(c.names.cluster(&name)),
                    reason: Some("MISSING".into()),
                    detail: None,
                }),
            }
        }
        Ok(DescribeClustersResponse { clusters: Some(clusters), failures: Some(failures) })
    })
}

pub(crate) fn list(c: &Control, r: ListClustersRequest) -> Result<ListClustersResponse, ControlError> {
    let arns: Vec<String> =
        c.read(|tx| Ok(tx.clusters()?.into_iter().filter(|r| r.status == "ACTIVE").map(|r| r.arn).collect()))?;
    let (page, next) = super::paginate(arns, r.next_token.as_deref(), r.max_results)?;
    Ok(ListClustersResponse { cluster_arns: Some(page), next_token: next })
}

pub(crate) fn delete(c: &Control, r: DeleteClusterRequest) -> Result<DeleteClusterResponse, ControlError> {
    let name = cluster_name(r.cluster.as_deref());
    let cluster = c.tx(|tx| {
        let Some(mut row) = tx.cluster_get(&name)?.filter(|r| r.status == "ACTIVE") else {
            return Err(ControlError::code(ErrorCode::ClusterNotFound, "Cluster not found."));
        };
        if !tx.services_live(Some(&name))?.is_empty() {
            return Err(ControlError::code(
                ErrorCode::ClusterContainsServices,
                "The Cluster cannot be deleted while Services are active.",
            ));
        }
        if tx.tasks_in(&name, None, Some(TaskStatus::Running))?.iter().any(|t| t.last_status != TaskStatus::Stopped) {
            return Err(ControlError::code(
                ErrorCode::ClusterContainsTasks,
                "The Cluster cannot be deleted while Tasks are active.",
            ));
        }
        tx.cluster_set_status(&name, "INACTIVE")?;
        row.status = "INACTIVE".into();
        render::cluster(tx, &row, false)
    })?;
    Ok(DeleteClusterResponse { cluster: Some(cluster) })
}
