//! CloudWatch (`monitoring`, 2010-08-01): metrics (PutMetricData, GetMetricData, GetMetricStatistics,
//! ListMetrics: `metrics.rs`), alarms (`alarms.rs`; evaluated on schedule by `evaluate.rs`), dashboards and tags
//! (`dashboards.rs`), entered by `handle_cloudwatch` and authorized as `cloudwatch:<Operation>` (`context.rs`); and the one gate every datapoint
//! enters by (`ingest.rs`): PutMetricData, the proxies' per-interval reports and the tasks' cgroup samples alike.
//!
//! The rules (validation, aggregates, tiers, statistics, alarm evaluation, metric math) live in
//! `berth-telemetry`; this module persists and serves what it computes.

pub(crate) mod alarms;
mod context;
mod dashboards;
pub(crate) mod evaluate;
pub(crate) mod ingest;

pub use evaluate::{AlarmAction, ReadAggregates};
pub use ingest::Sample;
mod metrics;

use berth_core::{AwsError, ErrorCode};
use berth_model::cloudwatch::{Operation, Output};

use crate::{CallerIdentity, Control, ControlError, authz, now};

impl Control {
    /// Handles one decoded CloudWatch operation for an authenticated caller.
    pub async fn handle_cloudwatch(&self, caller: &CallerIdentity, op: Operation) -> Result<Output, AwsError> {
        let (name, errors) = (op.name(), op.errors());
        let out = crate::blocking(|| {
            if !authz::is_root(caller) {
                let requests = self.cloudwatch_requests(&op).map_err(AwsError::from)?;
                authz::authorize_all(caller, &format!("cloudwatch:{name}"), requests)?;
            }
            self.cloudwatch_handle(op, now()).map_err(AwsError::from)
        });
        crate::error::answer(berth_model::cloudwatch::SIGNING_NAME, name, errors, out)
    }

    fn cloudwatch_handle(&self, op: Operation, now: f64) -> Result<Output, ControlError> {
        Ok(match op {
            Operation::PutMetricData(r) => Output::PutMetricData(metrics::put(self, r, now)?),
            Operation::GetMetricStatistics(r) => Output::GetMetricStatistics(metrics::statistics(self, r, now)?),
            Operation::GetMetricData(r) => Output::GetMetricData(metrics::data(self, r, now)?),
            Operation::ListMetrics(r) => Output::ListMetrics(metrics::list(self, r, now)?),
            Operation::PutDashboard(r) => Output::PutDashboard(dashboards::put(self, r, now)?),
            Operation::GetDashboard(r) => Output::GetDashboard(dashboards::get(self, r)?),
            Operation::ListDashboards(r) => Output::ListDashboards(dashboards::list(self, r)?),
            Operation::DeleteDashboards(r) => Output::DeleteDashboards(dashboards::delete(self, r)?),
            Operation::TagResource(r) => Output::TagResource(dashboards::tag(self, r)?),
            Operation::UntagResource(r) => Output::UntagResource(dashboards::untag(self, r)?),
            Operation::ListTagsForResource(r) => Output::ListTagsForResource(dashboards::list_tags(self, r)?),
            op @ (Operation::PutMetricAlarm(_)
            | Operation::DescribeAlarms(_)
            | Operation::DescribeAlarmsForMetric(_)
            | Operation::DeleteAlarms(_)
            | Operation::SetAlarmState(_)
            | Operation::DescribeAlarmHistory(_)
            | Operation::EnableAlarmActions(_)
            | Operation::DisableAlarmActions(_)) => alarms::handle(self, op, now)?,
        })
    }

    /// `arn:aws:cloudwatch:<region>:<account>:alarm:<name>`.
    pub(crate) fn alarm_arn(&self, name: &str) -> String {
        format!("arn:aws:cloudwatch:{}:{}:alarm:{name}", self.names.region, self.names.account)
    }

    /// `arn:aws:cloudwatch::<account>:dashboard/<name>` (dashboards are global: no region, as AWS writes them).
    pub(crate) fn dashboard_arn(&self, name: &str) -> String {
        format!("arn:aws:cloudwatch::{}:dashboard/{name}", self.names.account)
    }
}

/// `InvalidParameterValue` with CloudWatch's message.
pub(crate) fn invalid(message: impl Into<String>) -> ControlError {
    ControlError::Aws(AwsError::new(ErrorCode::InvalidParameterValue, message))
}

/// `MissingParameter` for a required member.
pub(crate) fn missing(parameter: &str) -> ControlError {
    ControlError::Aws(AwsError::new(ErrorCode::MissingParameter, format!("The parameter {parameter} is required.")))
}

/// A request berth-telemetry's rules refuse, with its CloudWatch code and message.
impl From<berth_telemetry::Invalid> for ControlError {
    fn from(e: berth_telemetry::Invalid) -> Self {
        ControlError::Aws(e.into())
    }
}
