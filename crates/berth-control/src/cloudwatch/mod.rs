//! CloudWatch (`monitoring`, 2010-08-01): metrics (PutMetricData, GetMetricData, GetMetricStatistics,
//! ListMetrics), alarms, dashboards and tags (`handle_cloudwatch`), and the one gate every datapoint enters by
//! (`ingest.rs`): PutMetricData, the proxies' per-interval reports and the tasks' cgroup samples alike.
//!
//! The rules (validation, aggregates, tiers, statistics, alarm evaluation, metric math) live in
//! `berth-telemetry`; this module persists and serves what it computes.

pub(crate) mod ingest;

use berth_core::{AwsError, ErrorCode};
use berth_model::cloudwatch::{Operation, Output};

use crate::{CallerIdentity, Control};

impl Control {
    /// Handles one decoded CloudWatch operation for an authenticated caller.
    pub async fn handle_cloudwatch(&self, _caller: &CallerIdentity, op: Operation) -> Result<Output, AwsError> {
        // Contract placeholder (issue 11 in progress): replaced by the CloudWatch API.
        Err(AwsError::new(ErrorCode::InvalidParameter, format!("{} is not served yet", op.name())))
    }
}
