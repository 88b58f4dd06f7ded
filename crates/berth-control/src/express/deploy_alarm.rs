//! The deployment alarm Express creates for a service ("faulty deployments", express-mode reference §2.11: 4xx +
//! 5xx above 1% of the service's requests for 2 datapoints within 3 periods), tagged `AmazonECSManaged=true`,
//! visible in DescribeAlarms, watched by the service's deployments (`rollout`) and deleted with the service.
//!
//! AWS publishes neither its name nor its metric math; berth's choice ([docs/alarms.md], "The deployment alarm"):
//! a metric-math alarm over the service's two target groups (the placement's `group_a` and `group_b`, each with
//! the `LoadBalancer` dimension as ALB's per-target-group metrics carry it), `Sum` of
//! `HTTPCode_Target_4XX_Count`, `HTTPCode_Target_5XX_Count` and `RequestCount` per group, returning
//! `100 * (4xx + 5xx) / requests`, `GreaterThanThreshold` 1, 2 of 3 periods, `TreatMissingData notBreaching`.
//! The error counts are published only when non-zero, and metric math counts a missing point as 0 beside one
//! that exists, so a period with requests and no errors is 0%; a period without requests (a division by zero)
//! has no datapoint, which is not breaching. The period is the autoscaling preset's (`ControlConfig.scaling`:
//! berth 10 s, so a bad canary is caught in 20–30 s; aws 60 s).
//!
//! Like every other resource Express provisions, it is put through the infrastructure role's [`Journal`]
//! (`cloudwatch:PutMetricAlarm` and `cloudwatch:TagResource` with the request tag, `cloudwatch:DeleteAlarms` on
//! the tagged alarm) inside the command's transaction ([`ensure`], [`remove`]); [`adopt`] gives services created
//! before the alarm existed theirs, level-triggered, from the reconciler (when the routes change, else every 30 s).

use berth_model::cloudwatch as cw;
use berth_store::{ServiceRow, Tx};

use super::MANAGED_TAG;
use super::journal::{self, Journal, Purpose};
use crate::{Control, ControlError};

/// The name of a service's deployment alarm.
pub(crate) fn alarm_name(service: &ServiceRow) -> String {
    format!("{}-{}-deployment-rollback", service.cluster, service.name)
}

/// The error percentage above which the alarm breaches.
pub(crate) const THRESHOLD_PERCENT: f64 = 1.0;
/// Breaching datapoints (M) out of the evaluation periods (N): "2 datapoints within 3 minutes".
pub(crate) const DATAPOINTS: i32 = 2;
pub(crate) const PERIODS: i32 = 3;

fn managed() -> Vec<(String, String)> {
    vec![(MANAGED_TAG.0.to_string(), MANAGED_TAG.1.to_string())]
}

/// The `Sum` of one `AWS/ApplicationELB` metric of one target group.
fn group_metric(id: &str, metric: &str, lb: &str, tg: &str, period: i32) -> cw::MetricDataQuery {
    let dimension = |name: &str, value: &str| cw::Dimension { name: Some(name.into()), value: Some(value.into()) };
    cw::MetricDataQuery {
        id: Some(id.into()),
        metric_stat: Some(cw::MetricStat {
            metric: Some(cw::Metric {
                namespace: Some("AWS/ApplicationELB".into()),
                metric_name: Some(metric.into()),
                dimensions: Some(vec![dimension("LoadBalancer", lb), dimension("TargetGroup", tg)]),
            }),
            period: Some(period),
            stat: Some("Sum".into()),
            unit: None,
        }),
        return_data: Some(false),
        ..Default::default()
    }
}

/// PutMetricAlarm's input for the service's alarm (with its tag), or `None` when the service has no place on a
/// load balancer (nothing to watch yet).
pub(crate) fn input(
    c: &Control,
    tx: &Tx<'_>,
    service: &ServiceRow,
) -> Result<Option<cw::PutMetricAlarmInput>, ControlError> {
    let Some(p) = tx.placement_get(service.id)? else { return Ok(None) };
    let dims = crate::sampling::lb_dimension(&p.load_balancer_arn)
        .zip(crate::sampling::tg_dimension(&p.group_a))
        .zip(crate::sampling::tg_dimension(&p.group_b));
    let Some(((lb, a), b)) = dims else { return Ok(None) };
    let period = c.config.scaling.alarm_timing.period as i32;
    let mut metrics = Vec::new();
    for (suffix, tg) in [("a", &a), ("b", &b)] {
        metrics.push(group_metric(&format!("e4{suffix}"), "HTTPCode_Target_4XX_Count", &lb, tg, period));
        metrics.push(group_metric(&format!("e5{suffix}"), "HTTPCode_Target_5XX_Count", &lb, tg, period));
        metrics.push(group_metric(&format!("r{suffix}"), "RequestCount", &lb, tg, period));
    }
    metrics.push(cw::MetricDataQuery {
        id: Some("errorpercent".into()),
        expression: Some("100 * (e4a + e5a + e4b + e5b) / (ra + rb)".into()),
        label: Some("4xx + 5xx error percentage".into()),
        return_data: Some(true),
        ..Default::default()
    });
    Ok(Some(cw::PutMetricAlarmInput {
        alarm_name: Some(alarm_name(service)),
        alarm_description: Some(format!(
            "Rolls back a deployment of the Express service {} when 4xx + 5xx responses exceed {THRESHOLD_PERCENT}% \
             of its requests for {DATAPOINTS} of {PERIODS} periods. Created and managed by Amazon ECS Express.",
            service.arn
        )),
        actions_enabled: Some(true),
        metrics: Some(metrics),
        evaluation_periods: Some(PERIODS),
        datapoints_to_alarm: Some(DATAPOINTS),
        threshold: Some(THRESHOLD_PERCENT),
        comparison_operator: Some(cw::ComparisonOperator::GreaterThanThreshold),
        treat_missing_data: Some("notBreaching".into()),
        tags: Some(managed().into_iter().map(|(k, v)| cw::Tag { key: Some(k), value: Some(v) }).collect()),
        ..Default::default()
    }))
}

/// Puts the service's alarm when it is missing or its configuration is not what Express wants (an older berth's,
/// another period preset, a user's edit: the alarm is Express's, as on AWS), recording the calls in `journal`.
/// Nothing when it is as wanted, so calling it again changes nothing (the alarm keeps its state and evaluation
/// schedule). The caller authorizes the journal with the rest of its command.
pub(crate) fn ensure(
    c: &Control,
    tx: &Tx<'_>,
    service: &ServiceRow,
    journal: &mut Journal,
) -> Result<(), ControlError> {
    let Some(mut wanted) = input(c, tx, service)? else { return Ok(()) };
    let name = alarm_name(service);
    if let Some(row) = tx.alarm_get(&name)? {
        let tags = wanted.tags.take();
        let current = crate::cloudwatch::alarms::stored_config(&row).ok();
        if current.as_ref() == Some(&wanted) {
            return Ok(());
        }
        wanted.tags = tags;
    }
    let arn = c.put_alarm_in(tx, wanted, Some(&service.arn), crate::now())?;
    journal.cloudwatch_put_alarm(&arn, &managed());
    Ok(())
}

/// Deletes the service's alarm if it has one, recording `cloudwatch:DeleteAlarms` on it (with the tags it
/// carries: the managed policy asks for `aws:ResourceTag/AmazonECSManaged`).
pub(crate) fn remove(tx: &Tx<'_>, service: &ServiceRow, journal: &mut Journal) -> Result<(), ControlError> {
    let name = alarm_name(service);
    let Some(row) = tx.alarm_get(&name)? else { return Ok(()) };
    journal.act("cloudwatch:DeleteAlarms", &row.arn, tx.tags_get(&row.arn)?);
    crate::cloudwatch::alarms::delete_alarms_in(tx, &[name], crate::now())
}

/// Does the service still have its alarm?
pub(crate) fn exists(tx: &Tx<'_>, service: &ServiceRow) -> Result<bool, ControlError> {
    Ok(tx.alarm_get(&alarm_name(service))?.is_some())
}

/// Gives every active Express service the alarm as Express wants it (services created before it existed, or
/// whose alarm was deleted or edited), each in a savepoint authorized as its infrastructure role; a denial
/// leaves that service as it was until its role allows it (retried by the next check). The reconciler runs it
/// when the route generation moved (services were created, updated or deleted) and otherwise every 30 s.
pub(crate) fn adopt(c: &Control, tx: &Tx<'_>) -> Result<(), ControlError> {
    for s in tx.services_live(None)? {
        if !s.express || s.status != berth_core::status::ServiceStatus::Active {
            continue;
        }
        let step = tx.savepoint(|tx| {
            let mut journal = Journal::default();
            ensure(c, tx, &s, &mut journal)?;
            match &s.infrastructure_role_arn {
                Some(role) => journal::authorize(c, tx, role, &journal, Purpose::Update),
                None => Ok(()),
            }
        });
        match step {
            Ok(()) => {}
            Err(e @ ControlError::Store(_)) => return Err(e),
            Err(e) if journal::is_denial(&e) => {
                tracing::debug!(service = %s.arn, error = %e, "the deployment alarm waits for the infrastructure role");
            }
            Err(e) => tracing::warn!(service = %s.arn, error = %e, "cannot put the deployment alarm"),
        }
    }
    Ok(())
}
