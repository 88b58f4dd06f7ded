//! UpdateService on an Express service's ECS service: its deployment configuration (every strategy of the
//! current ECS model), the test listener rule of blue/green, desired count, a forced new deployment, a task
//! definition. AWS refuses deployment configuration on Express services; berth accepts it (docs/deployments.md,
//! "UpdateService on Express services"). The settings are stored per service and read by the rollout at the
//! next deployment; a forced deployment or a task definition goes through the Express update path.

use berth_core::ErrorCode;
use berth_core::status::ServiceStatus;
use berth_model::ecs::*;
use berth_store::{ServiceRow, Tx};

use super::render;
use crate::deployment::Settings;
use crate::{CallerIdentity, Control, ControlError, now};

/// The members UpdateService takes on an Express service; any other is refused by name.
const SUPPORTED: [&str; 7] = [
    "cluster",
    "service",
    "desiredCount",
    "taskDefinition",
    "deploymentConfiguration",
    "forceNewDeployment",
    "loadBalancers",
];

/// ECS's bounds (ecs-deployments reference §2.1 and §2.3).
const MAX_BAKE_MINUTES: i32 = 1440;
const MAX_PAUSE_MINUTES: i32 = 20160;
const MAX_PAUSE_HOOKS: usize = 10;

pub(crate) fn update(
    c: &Control,
    caller: &CallerIdentity,
    r: UpdateServiceRequest,
) -> Result<UpdateServiceResponse, ControlError> {
    refuse_unsupported(&r)?;
    let given = r.service.clone().unwrap_or_default();
    let t = now();
    // A deployment's request is checked first (the task definition it names, its roles); then the settings, the
    // desired count and the deployment are written in one transaction: a refused deployment leaves nothing behind.
    let (arn, task_definition) = c.read(|tx| {
        let service = super::deployments::service_named(tx, r.cluster.as_deref(), &given)?;
        let task_definition = r
            .task_definition
            .as_deref()
            .map(|given| super::task_definitions::find(tx, given).map(|row| row.arn))
            .transpose()?;
        Ok((service.arn, task_definition))
    })?;
    let deploys = r.force_new_deployment == Some(true) || task_definition.is_some();
    let prepared = match deploys {
        true => Some(super::express::prepare_update(
            c,
            caller,
            UpdateExpressGatewayServiceRequest {
                service_arn: Some(arn.clone()),
                task_definition_arn: task_definition,
                ..Default::default()
            },
        )?),
        false => None,
    };
    let (service, updated) = c.tx(|tx| {
        let mut service = super::deployments::service_named(tx, r.cluster.as_deref(), &arn)?;
        if service.status != ServiceStatus::Active {
            return Err(ControlError::code(
                ErrorCode::ServiceNotActive,
                format!("Service is in {} status and cannot be updated.", service.status.as_str()),
            ));
        }
        let before = tx.deployment_settings_get(service.id)?;
        let mut settings = match &before {
            Some(json) => Settings::parse(json).map_err(|e| {
                ControlError::Store(berth_store::StoreError::Corrupt(format!("deployment settings: {e}")))
            })?,
            None => Settings::default(),
        };
        if let Some(config) = r.deployment_configuration.clone() {
            let current = crate::rollout::effective(c, &service, &settings).config;
            settings.configuration = Some(validate_configuration(tx, config, &current)?);
        }
        if let Some(lbs) = &r.load_balancers {
            settings.test_listener_rule = test_listener_rule(tx, &service, lbs)?;
        }
        // Express services deploy CANARY unless UpdateService set another strategy.
        let strategy = settings.configuration.as_ref().and_then(|c| c.strategy).unwrap_or(DeploymentStrategy::Canary);
        if strategy != DeploymentStrategy::BlueGreen
            && settings.test_listener_rule.is_some()
            && r.load_balancers.is_some()
        {
            return Err(ControlError::invalid(format!(
                "testListenerRule is only used by the BLUE_GREEN strategy; the service's strategy is {}.",
                strategy.as_str()
            )));
        }
        if let Some(desired) = r.desired_count {
            let (min, max) = scaling_bounds(tx, &service)?;
            if desired < min || desired > max {
                return Err(ControlError::invalid(format!(
                    "desiredCount {desired} is outside the service's scaling target ({min} to {max} tasks); \
                     change the bounds with UpdateExpressGatewayService's scalingTarget."
                )));
            }
            service.desired_count = desired as u32;
            service.updated_at = t;
            tx.service_update(&service)?;
        }
        tx.deployment_settings_put(service.id, &settings.to_json())?;
        let updated = prepared.as_ref().map(|p| super::express::update_in(c, tx, caller, p, t)).transpose()?;
        Ok((service, updated))
    })?;
    if let Some(updated) = updated {
        super::express::after_update(c, updated);
    }
    c.wake();
    let rendered = c.read(|tx| {
        let row = tx.service_by_id(service.id)?.unwrap_or(service);
        render::service(c, tx, &row, false)
    })?;
    Ok(UpdateServiceResponse { service: Some(rendered) })
}

/// Refuses every member an Express service does not take through UpdateService, by its wire name.
fn refuse_unsupported(r: &UpdateServiceRequest) -> Result<(), ControlError> {
    let value = serde_json::to_value(r).map_err(|e| ControlError::invalid(e.to_string()))?;
    let members = value.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()).unwrap_or_default();
    match members.iter().find(|m| !SUPPORTED.contains(&m.as_str())) {
        Some(m) => Err(ControlError::invalid(format!(
            "{m} is not supported on an Express service; UpdateService takes {} here.",
            SUPPORTED[2..].join(", ")
        ))),
        None => Ok(()),
    }
}

/// The scalable target's bounds (Express registers one per service), else Express's defaults.
fn scaling_bounds(tx: &Tx<'_>, service: &ServiceRow) -> Result<(i32, i32), ControlError> {
    let resource_id = format!("service/{}/{}", service.cluster, service.name);
    let target = tx.scalable_target_get(crate::autoscaling::NAMESPACE, &resource_id, crate::autoscaling::DIMENSION)?;
    Ok(target.map_or((1, 20), |t| {
        (i32::try_from(t.min_capacity).unwrap_or(0), i32::try_from(t.max_capacity).unwrap_or(i32::MAX))
    }))
}

/// `loadBalancers[]` on an Express service: one entry describing the service's own load balancing (what
/// DescribeServices shows), of which only `advancedConfiguration.testListenerRule` may be set. The rule must be
/// a rule of the service's HTTPS listener other than its production rule.
fn test_listener_rule(tx: &Tx<'_>, service: &ServiceRow, lbs: &[LoadBalancer]) -> Result<Option<String>, ControlError> {
    let refuse = |what: &str| {
        ControlError::invalid(format!(
            "loadBalancers: {what}; on an Express service only advancedConfiguration.testListenerRule can be set."
        ))
    };
    let Some((live, other, production)) = crate::elbv2::service_groups(tx, service)? else {
        return Err(refuse("the service has no load balancer"));
    };
    let [lb] = lbs else { return Err(refuse("give exactly one entry")) };
    if lb.load_balancer_name.is_some() {
        return Err(refuse("loadBalancerName is for Classic Load Balancers"));
    }
    if let Some(g) = &lb.target_group_arn
        && *g != live
        && *g != other
    {
        return Err(refuse(&format!("targetGroupArn {g} is not one of the service's target groups")));
    }
    if lb.container_name.as_deref().is_some_and(|n| n != "Main") {
        return Err(refuse("containerName must be Main"));
    }
    let Some(advanced) = &lb.advanced_configuration else { return Ok(None) };
    if let Some(g) = &advanced.alternate_target_group_arn
        && *g != live
        && *g != other
    {
        return Err(refuse(&format!("alternateTargetGroupArn {g} is not one of the service's target groups")));
    }
    if advanced.production_listener_rule.is_some() && advanced.production_listener_rule != production {
        return Err(refuse("productionListenerRule is the service's Express rule and cannot change"));
    }
    let Some(test) = advanced.test_listener_rule.clone() else { return Ok(None) };
    if Some(&test) == production.as_ref() {
        return Err(ControlError::invalid(
            "testListenerRule must be different from productionListenerRule (the service's Express rule).",
        ));
    }
    let Some(rule) = tx.rule_get(&test)? else {
        return Err(ControlError::invalid(format!("testListenerRule {test} is not a listener rule.")));
    };
    let listener = match &production {
        Some(p) => tx.rule_get(p)?.map(|r| r.listener_arn),
        None => None,
    };
    if listener.as_deref() != Some(rule.listener_arn.as_str()) {
        return Err(ControlError::invalid(format!(
            "testListenerRule {test} is not a rule of the service's listener {}.",
            listener.unwrap_or_default()
        )));
    }
    if rule.priority.is_none() {
        return Err(ControlError::invalid("testListenerRule cannot be the listener's default rule."));
    }
    Ok(Some(test))
}

fn minutes(member: &str, v: Option<i32>, max: i32) -> Result<(), ControlError> {
    match v {
        Some(m) if !(0..=max).contains(&m) => {
            Err(ControlError::invalid(format!("{member} must be between 0 and {max} minutes, got {m}.")))
        }
        _ => Ok(()),
    }
}

/// A percentage between `min` and 100 in steps of 0.1, as ECS takes canaryPercent and stepPercent.
fn percent(member: &str, v: Option<f64>, min: f64) -> Result<(), ControlError> {
    let Some(p) = v else { return Ok(()) };
    let tenths = p * 10.0;
    if !(min..=100.0).contains(&p) || (tenths - tenths.round()).abs() > 1e-6 {
        return Err(ControlError::invalid(format!(
            "{member} must be between {min} and 100.0 in steps of 0.1, got {p}."
        )));
    }
    Ok(())
}

/// Validates `deploymentConfiguration` as ECS does; a missing strategy keeps the service's current one.
fn validate_configuration(
    tx: &Tx<'_>,
    mut config: DeploymentConfiguration,
    current: &DeploymentConfiguration,
) -> Result<DeploymentConfiguration, ControlError> {
    use DeploymentStrategy as S;
    let strategy = config.strategy.or(current.strategy).unwrap_or(S::Rolling);
    config.strategy = Some(strategy);
    if config.canary_configuration.is_some() && strategy != S::Canary {
        return Err(ControlError::invalid(format!(
            "canaryConfiguration can only be used with the CANARY strategy, not {}.",
            strategy.as_str()
        )));
    }
    if config.linear_configuration.is_some() && strategy != S::Linear {
        return Err(ControlError::invalid(format!(
            "linearConfiguration can only be used with the LINEAR strategy, not {}.",
            strategy.as_str()
        )));
    }
    if let Some(canary) = &config.canary_configuration {
        percent("canaryConfiguration.canaryPercent", canary.canary_percent, 0.1)?;
        minutes("canaryConfiguration.canaryBakeTimeInMinutes", canary.canary_bake_time_in_minutes, MAX_BAKE_MINUTES)?;
    }
    if let Some(linear) = &config.linear_configuration {
        percent("linearConfiguration.stepPercent", linear.step_percent, 3.0)?;
        minutes("linearConfiguration.stepBakeTimeInMinutes", linear.step_bake_time_in_minutes, MAX_BAKE_MINUTES)?;
    }
    minutes("bakeTimeInMinutes", config.bake_time_in_minutes, MAX_BAKE_MINUTES)?;
    if strategy == S::BlueGreen && config.bake_time_in_minutes.is_none() {
        return Err(ControlError::invalid("bakeTimeInMinutes is required with the BLUE_GREEN strategy."));
    }
    if strategy != S::Rolling && config.bake_time_in_minutes.is_none() {
        // CANARY and LINEAR keep the server's bake unless one is given.
        config.bake_time_in_minutes = current.bake_time_in_minutes;
    }
    let min = config.minimum_healthy_percent.unwrap_or(100);
    let max = config.maximum_percent.unwrap_or(200);
    if !(0..=100).contains(&min) {
        return Err(ControlError::invalid(format!("minimumHealthyPercent must be between 0 and 100, got {min}.")));
    }
    if !(100..=200).contains(&max) {
        return Err(ControlError::invalid(format!("maximumPercent must be between 100 and 200, got {max}.")));
    }
    if strategy == S::Rolling && min == 100 && max == 100 {
        return Err(ControlError::invalid(
            "minimumHealthyPercent 100 with maximumPercent 100 lets a rolling deployment neither start nor stop a task.",
        ));
    }
    // ECS documents the circuit breaker for ROLLING; Express runs it under its CANARY too, and so does berth
    // under every strategy (the target revision's task failures).
    if let Some(threshold) = config.deployment_circuit_breaker.as_ref().and_then(|b| b.threshold_configuration.as_ref())
    {
        let value = threshold.value.unwrap_or(50);
        let percent = !matches!(threshold.r#type, Some(ThresholdType::Count));
        if value < 1 || (percent && value > 100) {
            return Err(ControlError::invalid(format!(
                "deploymentCircuitBreaker.thresholdConfiguration.value must be {}, got {value}.",
                if percent { "between 1 and 100" } else { "at least 1" }
            )));
        }
    }
    if let Some(alarms) = &config.alarms {
        let names = alarms.alarm_names.clone().unwrap_or_default();
        if alarms.enable == Some(true) && names.is_empty() {
            return Err(ControlError::invalid("alarms.alarmNames must name at least one alarm when enable is true."));
        }
        for name in &names {
            if name.trim().is_empty() {
                return Err(ControlError::invalid("alarms.alarmNames cannot contain an empty name."));
            }
            // berth checks the alarms exist when they are set (a typo would otherwise never fire).
            if tx.alarm_get(name)?.is_none() {
                return Err(ControlError::invalid(format!(
                    "alarms.alarmNames: the CloudWatch alarm '{name}' does not exist."
                )));
            }
        }
    }
    let hooks = config.lifecycle_hooks.clone().unwrap_or_default();
    if hooks.len() > MAX_PAUSE_HOOKS {
        return Err(ControlError::invalid(format!("lifecycleHooks can have at most {MAX_PAUSE_HOOKS} PAUSE hooks.")));
    }
    for (i, hook) in hooks.iter().enumerate() {
        // The model's default target type is AWS_LAMBDA.
        if hook.target_type != Some(DeploymentLifecycleHookTargetType::Pause) {
            return Err(ControlError::code(
                ErrorCode::UnsupportedFeature,
                format!(
                    "lifecycleHooks[{i}]: AWS_LAMBDA hooks are not supported: berth runs no Lambda functions; use targetType PAUSE."
                ),
            ));
        }
        if hook.hook_target_arn.is_some() || hook.role_arn.is_some() || hook.hook_details.is_some() {
            return Err(ControlError::invalid(format!(
                "lifecycleHooks[{i}]: hookTargetArn, roleArn and hookDetails are for AWS_LAMBDA hooks, not PAUSE."
            )));
        }
        let stages = hook.lifecycle_stages.clone().unwrap_or_default();
        if stages.is_empty() {
            return Err(ControlError::invalid(format!("lifecycleHooks[{i}]: lifecycleStages must name a stage.")));
        }
        for stage in stages {
            if matches!(
                stage,
                DeploymentLifecycleHookStage::TestTrafficShift | DeploymentLifecycleHookStage::ProductionTrafficShift
            ) {
                return Err(ControlError::invalid(format!(
                    "lifecycleHooks[{i}]: PAUSE hooks cannot run at {} (it also runs during a rollback).",
                    stage.as_str()
                )));
            }
        }
        if let Some(timeout) = hook.timeout_configuration.as_ref().and_then(|t| t.timeout_in_minutes)
            && !(1..=MAX_PAUSE_MINUTES).contains(&timeout)
        {
            return Err(ControlError::invalid(format!(
                "lifecycleHooks[{i}]: timeoutConfiguration.timeoutInMinutes must be between 1 and {MAX_PAUSE_MINUTES}, got {timeout}."
            )));
        }
    }
    if let Some(early) = &config.early_success_criteria {
        if strategy != S::Rolling {
            return Err(ControlError::invalid(format!(
                "earlySuccessCriteria applies to the ROLLING strategy only, not {}.",
                strategy.as_str()
            )));
        }
        if let Some(h) = early.healthy_percent
            && (!(0..=100).contains(&h) || h < min)
        {
            return Err(ControlError::invalid(format!(
                "earlySuccessCriteria.healthyPercent must be between minimumHealthyPercent ({min}) and 100, got {h}."
            )));
        }
    }
    Ok(config)
}
