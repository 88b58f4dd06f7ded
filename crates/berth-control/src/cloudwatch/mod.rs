//! CloudWatch (`monitoring`, 2010-08-01): metrics (PutMetricData, GetMetricData, GetMetricStatistics,
//! ListMetrics), alarms, dashboards and tags (`handle_cloudwatch`), and the one gate every datapoint enters by
//! (`ingest.rs`): PutMetricData, the proxies' per-interval reports and the tasks' cgroup samples alike.
//!
//! The rules (validation, aggregates, tiers, statistics, alarm evaluation, metric math) live in
//! `berth-telemetry`; this module persists and serves what it computes.

pub(crate) mod alarms;
pub(crate) mod evaluate;
pub(crate) mod ingest;

pub use evaluate::{AlarmAction, ReadAggregates};

use berth_core::{AwsError, ErrorCode};
use berth_model::cloudwatch::{Operation, Output};

use crate::{CallerIdentity, Control};

impl Control {
    /// Handles one decoded CloudWatch operation for an authenticated caller.
    pub async fn handle_cloudwatch(&self, _caller: &CallerIdentity, op: Operation) -> Result<Output, AwsError> {
        let (name, modeled) = (op.name(), op.errors());
        match op {
            // Alarms (issue 11, alarms part); the metrics part replaces this placeholder with the whole API.
            Operation::PutMetricAlarm(_)
            | Operation::DescribeAlarms(_)
            | Operation::DescribeAlarmsForMetric(_)
            | Operation::DeleteAlarms(_)
            | Operation::SetAlarmState(_)
            | Operation::DescribeAlarmHistory(_)
            | Operation::EnableAlarmActions(_)
            | Operation::DisableAlarmActions(_) => crate::error::answer(
                "monitoring",
                name,
                modeled,
                alarms::handle(self, op, crate::now()).map_err(AwsError::from),
            ),
            // Contract placeholder (issue 11 in progress): replaced by the CloudWatch API.
            _ => Err(AwsError::new(ErrorCode::InvalidParameter, format!("{name} is not served yet"))),
        }
    }
}
