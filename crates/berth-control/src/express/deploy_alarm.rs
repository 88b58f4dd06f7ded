//! The deployment alarm Express creates for a service ("faulty deployments": 4xx + 5xx above 1% of the
//! service's requests for 2 datapoints within 3 periods), tagged `AmazonECSManaged`, visible in DescribeAlarms,
//! watched by the service's deployments; deleted with the service.

use berth_store::ServiceRow;

/// The name of a service's deployment alarm.
#[allow(dead_code)] // used once the deployment alarm lands (owner: alarm)
pub(crate) fn alarm_name(service: &ServiceRow) -> String {
    format!("{}-{}-deployment-rollback", service.cluster, service.name)
}
