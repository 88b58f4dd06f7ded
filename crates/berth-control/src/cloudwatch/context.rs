//! The request contexts `cloudwatch:<Operation>` is authorized with, as CloudWatch's service authorization
//! reference lists them: alarms on `arn:aws:cloudwatch:<region>:<account>:alarm:<name>` (one context per alarm
//! named), dashboards on `arn:aws:cloudwatch::<account>:dashboard/<name>`, metric operations on `*` (PutMetricData
//! with the `cloudwatch:namespace` condition key), tag operations on the ARN they name with
//! `aws:RequestTag/*` / `aws:TagKeys`; a named alarm's or dashboard's stored tags are its `aws:ResourceTag/*`.

use berth_iam::RequestContext;
use berth_model::cloudwatch::Operation;

use crate::{Control, ControlError};

impl Control {
    pub(super) fn cloudwatch_requests(&self, op: &Operation) -> Result<Vec<RequestContext>, ControlError> {
        let action = format!("cloudwatch:{}", op.name());
        let on = |arn: String| -> Result<RequestContext, ControlError> {
            let tags = self.read(|tx| Ok(tx.tags_get(&arn)?))?;
            Ok(RequestContext::new(action.clone(), arn)
                .with_resource_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
        };
        let alarms = |names: &Option<Vec<String>>| -> Result<Vec<RequestContext>, ControlError> {
            names.iter().flatten().map(|n| on(self.alarm_arn(n))).collect()
        };
        let star = || vec![RequestContext::new(action.clone(), "*")];
        Ok(match op {
            Operation::PutMetricData(r) => {
                vec![
                    RequestContext::new(action.clone(), "*")
                        .with_key("cloudwatch:namespace", r.namespace.clone().unwrap_or_default()),
                ]
            }
            Operation::GetMetricData(_)
            | Operation::GetMetricStatistics(_)
            | Operation::ListMetrics(_)
            | Operation::DescribeAlarmsForMetric(_)
            | Operation::ListDashboards(_) => star(),
            Operation::DescribeAlarms(_) | Operation::DescribeAlarmHistory(_) => {
                vec![RequestContext::new(action.clone(), self.alarm_arn("*"))]
            }
            Operation::PutMetricAlarm(r) => {
                let ctx = on(self.alarm_arn(r.alarm_name.as_deref().unwrap_or_default()))?;
                vec![crate::authz::with_request_tags(ctx, r.tags.iter().flatten().map(|t| (&t.key, &t.value)))]
            }
            Operation::DeleteAlarms(r) => alarms(&r.alarm_names)?,
            Operation::EnableAlarmActions(r) => alarms(&r.alarm_names)?,
            Operation::DisableAlarmActions(r) => alarms(&r.alarm_names)?,
            Operation::SetAlarmState(r) => vec![on(self.alarm_arn(r.alarm_name.as_deref().unwrap_or_default()))?],
            Operation::PutDashboard(r) => {
                let ctx = on(self.dashboard_arn(r.dashboard_name.as_deref().unwrap_or_default()))?;
                vec![crate::authz::with_request_tags(ctx, r.tags.iter().flatten().map(|t| (&t.key, &t.value)))]
            }
            Operation::GetDashboard(r) => {
                vec![on(self.dashboard_arn(r.dashboard_name.as_deref().unwrap_or_default()))?]
            }
            Operation::DeleteDashboards(r) => {
                r.dashboard_names.iter().flatten().map(|n| on(self.dashboard_arn(n))).collect::<Result<_, _>>()?
            }
            Operation::TagResource(r) => {
                let ctx = on(r.resource_arn.clone().unwrap_or_default())?;
                vec![crate::authz::with_request_tags(ctx, r.tags.iter().flatten().map(|t| (&t.key, &t.value)))]
            }
            Operation::UntagResource(r) => vec![
                on(r.resource_arn.clone().unwrap_or_default())?
                    .with_multi_key("aws:TagKeys", r.tag_keys.clone().unwrap_or_default()),
            ],
            Operation::ListTagsForResource(r) => vec![on(r.resource_arn.clone().unwrap_or_default())?],
        })
    }
}
