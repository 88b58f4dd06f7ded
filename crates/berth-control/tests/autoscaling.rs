//! Application Auto Scaling over the in-memory driver: the API's round trip and errors, alarm actions that move
//! an Express service's desired count (tasks placed and drained by the reconciler), cooldowns, min/max,
//! scheduled actions, and the target, policy and alarms Express provisions, updates and removes.

use berth_control::{AlarmTrigger, ControlConfig, ScalingOutcome};
use berth_core::ErrorCode;
use berth_model::application_autoscaling::{self as aas, Operation as A, Output as AO};
use berth_model::ecs;
use berth_routes::TargetHealth;

mod common;

use common::Harness;

const WEB: &str = "service/default/web";

async fn world(name: &str) -> Harness {
    let w = Harness::new(&format!("aas-{name}"), |_| ControlConfig {
        drain_timeout: std::time::Duration::from_secs(30),
        ..ControlConfig::default()
    });
    w.create_express_roles().await;
    w
}

impl Harness {
    async fn aas(&self, op: A) -> Result<AO, berth_core::AwsError> {
        self.control.handle_application_autoscaling(&self.caller, op).await
    }

    async fn targets(&self) -> Vec<aas::ScalableTarget> {
        let Ok(AO::DescribeScalableTargets(o)) = self
            .aas(A::DescribeScalableTargets(aas::DescribeScalableTargetsRequest {
                service_namespace: Some(aas::ServiceNamespace::Ecs),
                ..Default::default()
            }))
            .await
        else {
            panic!("describe targets")
        };
        o.scalable_targets.unwrap_or_default()
    }

    async fn policies(&self, resource_id: &str) -> Vec<aas::ScalingPolicy> {
        let Ok(AO::DescribeScalingPolicies(o)) = self
            .aas(A::DescribeScalingPolicies(aas::DescribeScalingPoliciesRequest {
                service_namespace: Some(aas::ServiceNamespace::Ecs),
                resource_id: Some(resource_id.into()),
                ..Default::default()
            }))
            .await
        else {
            panic!("describe policies")
        };
        o.scaling_policies.unwrap_or_default()
    }

    async fn activities(&self, not_scaled: bool) -> Vec<aas::ScalingActivity> {
        let Ok(AO::DescribeScalingActivities(o)) = self
            .aas(A::DescribeScalingActivities(aas::DescribeScalingActivitiesRequest {
                service_namespace: Some(aas::ServiceNamespace::Ecs),
                resource_id: Some(WEB.into()),
                include_not_scaled_activities: Some(not_scaled),
                ..Default::default()
            }))
            .await
        else {
            panic!("describe activities")
        };
        o.scaling_activities.unwrap_or_default()
    }

    async fn desired(&self, name: &str) -> i32 {
        let Ok(ecs::Output::DescribeServices(o)) = self
            .control
            .handle_ecs(
                &self.caller,
                ecs::Operation::DescribeServices(ecs::DescribeServicesRequest {
                    services: Some(vec![name.into()]),
                    ..Default::default()
                }),
            )
            .await
        else {
            panic!("describe services")
        };
        o.services.unwrap_or_default()[0].desired_count.expect("desired")
    }

    /// An Express service's active configurations.
    async fn active(&self, arn: &str) -> Vec<ecs::ExpressGatewayServiceConfiguration> {
        let describe = ecs::Operation::DescribeExpressGatewayService(ecs::DescribeExpressGatewayServiceRequest {
            service_arn: Some(arn.into()),
            ..Default::default()
        });
        let Ok(ecs::Output::DescribeExpressGatewayService(d)) = self.control.handle_ecs(&self.caller, describe).await
        else {
            panic!("describe express service")
        };
        d.service.and_then(|s| s.active_configurations).unwrap_or_default()
    }

    /// Passes with every target healthy and idle, until tasks settle.
    async fn converge(&self) {
        for _ in 0..4 {
            self.settle().await;
            self.report_as_proxy(TargetHealth::Healthy, 0);
        }
        self.settle().await;
    }
}

fn register(resource_id: &str, min: Option<i32>, max: Option<i32>) -> A {
    A::RegisterScalableTarget(aas::RegisterScalableTargetRequest {
        service_namespace: Some(aas::ServiceNamespace::Ecs),
        resource_id: Some(resource_id.into()),
        scalable_dimension: Some(aas::ScalableDimension::EcsServiceDesiredCount),
        min_capacity: min,
        max_capacity: max,
        ..Default::default()
    })
}

fn cpu_policy(name: &str, target: f64) -> aas::PutScalingPolicyRequest {
    aas::PutScalingPolicyRequest {
        policy_name: Some(name.into()),
        service_namespace: Some(aas::ServiceNamespace::Ecs),
        resource_id: Some(WEB.into()),
        scalable_dimension: Some(aas::ScalableDimension::EcsServiceDesiredCount),
        policy_type: Some(aas::PolicyType::TargetTrackingScaling),
        target_tracking_scaling_policy_configuration: Some(aas::TargetTrackingScalingPolicyConfiguration {
            target_value: Some(target),
            predefined_metric_specification: Some(aas::PredefinedMetricSpecification {
                predefined_metric_type: Some(aas::MetricType::ECSServiceAverageCPUUtilization),
                resource_label: None,
            }),
            scale_out_cooldown: Some(60),
            scale_in_cooldown: Some(120),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn fired(alarm: &str, policy: &str, value: f64) -> AlarmTrigger {
    AlarmTrigger {
        alarm_name: alarm.into(),
        policy_arn: policy.into(),
        state: "ALARM".into(),
        newest_value: Some(value),
        threshold: None,
    }
}

#[tokio::test]
async fn alarm_actions_scale_out_and_in_within_bounds_and_cooldowns() {
    let w = world("cycle").await;
    w.create_demo_service("web").await;
    w.converge().await;
    assert_eq!(w.driver.running_ids().len(), 1);

    // Registering again updates the target Express made (idempotent), and only what is given.
    let Ok(AO::RegisterScalableTarget(r)) = w.aas(register(WEB, Some(1), Some(5))).await else { panic!("register") };
    let target_arn = r.scalable_target_arn.expect("arn");
    let Ok(AO::RegisterScalableTarget(again)) = w.aas(register(WEB, None, Some(5))).await else { panic!("again") };
    assert_eq!(again.scalable_target_arn.as_deref(), Some(target_arn.as_str()));
    let t = w.targets().await;
    assert_eq!((t.len(), t[0].min_capacity, t[0].max_capacity), (1, Some(1), Some(5)));

    let Ok(AO::PutScalingPolicy(p)) = w.aas(A::PutScalingPolicy(cpu_policy("cpu50", 50.0))).await else {
        panic!("put policy")
    };
    let policy = p.policy_arn.expect("policy arn");
    assert!(
        policy.starts_with("arn:aws:autoscaling:us-east-1:")
            && policy.ends_with(":resource/ecs/service/default/web:policyName/cpu50"),
        "{policy}"
    );
    let alarms: Vec<String> = p.alarms.unwrap_or_default().into_iter().map(|a| a.alarm_name.expect("name")).collect();
    assert_eq!(alarms.len(), 2);
    assert!(alarms[0].starts_with("TargetTracking-service/default/web-AlarmHigh-"), "{alarms:?}");
    assert!(alarms[1].starts_with("TargetTracking-service/default/web-AlarmLow-"), "{alarms:?}");
    // DescribeScalingPolicies shows the same alarms; the Express policy is there too.
    let described = w.policies(WEB).await;
    let ours = described.iter().find(|p| p.policy_name.as_deref() == Some("cpu50")).expect("cpu50");
    let names: Vec<String> =
        ours.alarms.clone().unwrap_or_default().into_iter().map(|a| a.alarm_name.expect("name")).collect();
    assert_eq!(names, alarms);
    assert_eq!(described.len(), 2, "Express's policy and ours");
    let (high, low) = (alarms[0].clone(), alarms[1].clone());

    // AlarmHigh at 150% of a 50% target with 1 running task: 3 tasks, at once.
    let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
    let out = w.control.execute_scaling_policy(&fired(&high, &policy, 150.0), t0).expect("scale out");
    assert_eq!(out, ScalingOutcome::Scaled { from: 1, to: 3 });
    assert_eq!(w.desired("web").await, 3);
    w.converge().await;
    assert_eq!(w.driver.running_ids().len(), 3, "the reconciler placed the new tasks");

    // Proportional and clamped to max: 3 × 400 / 50 = 24 → 5.
    let out = w.control.execute_scaling_policy(&fired(&high, &policy, 400.0), t0 + 5.0).expect("to max");
    assert_eq!(out, ScalingOutcome::Scaled { from: 3, to: 5 });
    w.converge().await;
    assert_eq!(w.driver.running_ids().len(), 5);
    let out = w.control.execute_scaling_policy(&fired(&high, &policy, 400.0), t0 + 6.0).expect("at max");
    assert_eq!(out, ScalingOutcome::NotScaled("AlreadyAtMaxCapacity".into()));

    // AlarmLow at 20%: 5 × 20 / 50 = 2 (rounded up, never removing too much).
    let out = w.control.execute_scaling_policy(&fired(&low, &policy, 20.0), t0 + 10.0).expect("scale in");
    assert_eq!(out, ScalingOutcome::Scaled { from: 5, to: 2 });
    w.converge().await;
    assert_eq!(w.driver.running_ids().len(), 2, "scale-in drained and stopped three tasks");
    // Within the 120 s scale-in cooldown nothing more is removed; after it, down to min and never below.
    let out = w.control.execute_scaling_policy(&fired(&low, &policy, 5.0), t0 + 60.0).expect("cooldown");
    assert_eq!(out, ScalingOutcome::NotScaled("Cooldown".into()));
    let out = w.control.execute_scaling_policy(&fired(&low, &policy, 5.0), t0 + 200.0).expect("to min");
    assert_eq!(out, ScalingOutcome::Scaled { from: 2, to: 1 });
    let out = w.control.execute_scaling_policy(&fired(&low, &policy, 1.0), t0 + 400.0).expect("at min");
    assert_eq!(out, ScalingOutcome::NotScaled("AlreadyAtMinCapacity".into()));
    w.converge().await;
    assert_eq!(w.desired("web").await, 1);
    assert_eq!(w.driver.running_ids().len(), 1);

    // No data: no scaling in either direction.
    let none = AlarmTrigger { newest_value: None, ..fired(&high, &policy, 0.0) };
    assert_eq!(
        w.control.execute_scaling_policy(&none, t0 + 500.0).expect("no data"),
        ScalingOutcome::NotScaled("InsufficientData".into())
    );

    // Every scaling is an activity with its cause; not-scaled ones only when asked for.
    let acts = w.activities(false).await;
    let scaled: Vec<(String, String)> = acts
        .iter()
        .filter(|a| a.cause.as_deref().is_some_and(|c| c.contains("triggered policy cpu50")))
        .map(|a| (a.description.clone().unwrap_or_default(), a.cause.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        scaled.iter().map(|(d, _)| d.as_str()).collect::<Vec<_>>(),
        vec![
            "Setting desired count to 1.",
            "Setting desired count to 2.",
            "Setting desired count to 5.",
            "Setting desired count to 3."
        ]
    );
    assert_eq!(scaled[3].1, format!("monitor alarm {high} in state ALARM triggered policy cpu50"));
    assert!(acts.iter().all(|a| a.status_code == Some(aas::ScalingActivityStatusCode::Successful)));
    let all = w.activities(true).await;
    let codes: Vec<String> = all
        .iter()
        .flat_map(|a| a.not_scaled_reasons.clone().unwrap_or_default())
        .map(|r| r.code.unwrap_or_default())
        .collect();
    assert_eq!(codes, vec!["InsufficientData", "AlreadyAtMinCapacity", "Cooldown", "AlreadyAtMaxCapacity"]);

    // Deleting the policy removes it and its alarms from the description; an alarm still naming it fails.
    w.aas(A::DeleteScalingPolicy(aas::DeleteScalingPolicyRequest {
        policy_name: Some("cpu50".into()),
        service_namespace: Some(aas::ServiceNamespace::Ecs),
        resource_id: Some(WEB.into()),
        scalable_dimension: Some(aas::ScalableDimension::EcsServiceDesiredCount),
    }))
    .await
    .expect("delete policy");
    assert_eq!(w.policies(WEB).await.len(), 1);
    assert!(w.control.execute_scaling_policy(&fired(&high, &policy, 150.0), t0 + 600.0).is_err());

    // Tags on the target.
    w.aas(A::TagResource(aas::TagResourceRequest {
        resource_arn: Some(target_arn.clone()),
        tags: Some([("team".to_string(), "a".to_string())].into_iter().collect()),
    }))
    .await
    .expect("tag");
    let Ok(AO::ListTagsForResource(tags)) =
        w.aas(A::ListTagsForResource(aas::ListTagsForResourceRequest { resource_arn: Some(target_arn.clone()) })).await
    else {
        panic!("list tags")
    };
    let tags = tags.tags.unwrap_or_default();
    assert_eq!(tags.get("team").map(String::as_str), Some("a"));
    assert_eq!(tags.get("AmazonECSManaged").map(String::as_str), Some("true"), "Express tagged its target");

    // Deregistering removes the target with its policies.
    w.aas(A::DeregisterScalableTarget(aas::DeregisterScalableTargetRequest {
        service_namespace: Some(aas::ServiceNamespace::Ecs),
        resource_id: Some(WEB.into()),
        scalable_dimension: Some(aas::ScalableDimension::EcsServiceDesiredCount),
    }))
    .await
    .expect("deregister");
    assert!(w.targets().await.is_empty());
    assert!(w.policies(WEB).await.is_empty());
}

#[tokio::test]
async fn registering_moves_the_desired_count_into_the_bounds_and_scheduled_actions_run_when_due() {
    let w = world("bounds").await;
    w.create_demo_service("web").await;
    w.converge().await;
    w.aas(register(WEB, Some(2), Some(4))).await.expect("register");
    assert_eq!(w.desired("web").await, 2, "raised to the new minimum");
    w.converge().await;
    assert_eq!(w.driver.running_ids().len(), 2);

    // A scheduled action one minute from now raises min to 3 when due, not before.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() as i64;
    let at = now + 60;
    let (y, m, d) = berth_core::time::civil_from_days(at.div_euclid(86_400));
    let s = at.rem_euclid(86_400);
    let schedule = format!("at({y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02})", s / 3600, s % 3600 / 60, s % 60);
    w.aas(A::PutScheduledAction(aas::PutScheduledActionRequest {
        service_namespace: Some(aas::ServiceNamespace::Ecs),
        schedule: Some(schedule.clone()),
        scheduled_action_name: Some("morning".into()),
        resource_id: Some(WEB.into()),
        scalable_dimension: Some(aas::ScalableDimension::EcsServiceDesiredCount),
        scalable_target_action: Some(aas::ScalableTargetAction { min_capacity: Some(3), max_capacity: None }),
        ..Default::default()
    }))
    .await
    .expect("put scheduled");
    let Ok(AO::DescribeScheduledActions(d)) = w
        .aas(A::DescribeScheduledActions(aas::DescribeScheduledActionsRequest {
            service_namespace: Some(aas::ServiceNamespace::Ecs),
            resource_id: Some(WEB.into()),
            ..Default::default()
        }))
        .await
    else {
        panic!("describe scheduled")
    };
    let actions = d.scheduled_actions.unwrap_or_default();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].schedule.as_deref(), Some(schedule.as_str()));
    w.control.autoscaling_pass(now as f64 + 30.0).expect("early pass");
    assert_eq!(w.desired("web").await, 2, "not due yet");
    w.control.autoscaling_pass(at as f64 + 1.0).expect("due pass");
    assert_eq!(w.desired("web").await, 3);
    assert_eq!(w.targets().await[0].min_capacity, Some(3));
    let acts = w.activities(false).await;
    assert!(acts[0].cause.as_deref().is_some_and(|c| c.starts_with("scheduled action name morning was triggered")));
    // It ran once.
    w.aas(register(WEB, Some(1), None)).await.expect("lower min");
    w.control.autoscaling_pass(at as f64 + 100.0).expect("later pass");
    assert_eq!(w.targets().await[0].min_capacity, Some(1));
    w.aas(A::DeleteScheduledAction(aas::DeleteScheduledActionRequest {
        service_namespace: Some(aas::ServiceNamespace::Ecs),
        scheduled_action_name: Some("morning".into()),
        resource_id: Some(WEB.into()),
        scalable_dimension: Some(aas::ScalableDimension::EcsServiceDesiredCount),
    }))
    .await
    .expect("delete scheduled");
}

#[tokio::test]
async fn errors_are_the_ones_the_model_lists() {
    let w = world("errors").await;
    w.create_demo_service("web").await;
    let tt = |p: aas::PutScalingPolicyRequest| A::PutScalingPolicy(p);
    let cases: Vec<(&str, A, ErrorCode, &str)> = vec![
        (
            "another namespace",
            A::RegisterScalableTarget(aas::RegisterScalableTargetRequest {
                service_namespace: Some(aas::ServiceNamespace::Dynamodb),
                ..Default::default()
            }),
            ErrorCode::Validation,
            "Unsupported service namespace",
        ),
        (
            "a malformed resource id",
            register("web", Some(1), Some(2)),
            ErrorCode::Validation,
            "Unsupported resource ID",
        ),
        (
            "a service that does not exist",
            register("service/default/nope", Some(1), Some(2)),
            ErrorCode::Validation,
            "ECS service doesn't exist",
        ),
        ("min above max", register(WEB, Some(5), Some(2)), ErrorCode::Validation, "cannot be greater than maximum"),
        (
            "a policy without a target",
            tt(aas::PutScalingPolicyRequest {
                resource_id: Some("service/default/other".into()),
                ..cpu_policy("p", 50.0)
            }),
            ErrorCode::ObjectNotFound,
            "No scalable target registered",
        ),
        (
            "ALBRequestCountPerTarget without a resource label",
            tt(aas::PutScalingPolicyRequest {
                target_tracking_scaling_policy_configuration: Some(aas::TargetTrackingScalingPolicyConfiguration {
                    target_value: Some(100.0),
                    predefined_metric_specification: Some(aas::PredefinedMetricSpecification {
                        predefined_metric_type: Some(aas::MetricType::ALBRequestCountPerTarget),
                        resource_label: None,
                    }),
                    ..Default::default()
                }),
                ..cpu_policy("alb", 0.0)
            }),
            ErrorCode::Validation,
            "ResourceLabel is required",
        ),
        ("a zero target", tt(cpu_policy("zero", 0.0)), ErrorCode::Validation, "must be greater than 0"),
        (
            "predictive scaling",
            tt(aas::PutScalingPolicyRequest {
                policy_type: Some(aas::PolicyType::PredictiveScaling),
                ..cpu_policy("pred", 50.0)
            }),
            ErrorCode::Validation,
            "not supported",
        ),
        (
            "step scaling with gaps",
            tt(aas::PutScalingPolicyRequest {
                policy_type: Some(aas::PolicyType::StepScaling),
                target_tracking_scaling_policy_configuration: None,
                step_scaling_policy_configuration: Some(aas::StepScalingPolicyConfiguration {
                    adjustment_type: Some(aas::AdjustmentType::ChangeInCapacity),
                    step_adjustments: Some(vec![
                        aas::StepAdjustment {
                            metric_interval_lower_bound: Some(0.0),
                            metric_interval_upper_bound: Some(10.0),
                            scaling_adjustment: Some(1),
                        },
                        aas::StepAdjustment {
                            metric_interval_lower_bound: Some(20.0),
                            metric_interval_upper_bound: None,
                            scaling_adjustment: Some(2),
                        },
                    ]),
                    ..Default::default()
                }),
                ..cpu_policy("steps", 50.0)
            }),
            ErrorCode::Validation,
            "neither overlap nor leave gaps",
        ),
        (
            "deleting a policy that does not exist",
            A::DeleteScalingPolicy(aas::DeleteScalingPolicyRequest {
                policy_name: Some("nope".into()),
                service_namespace: Some(aas::ServiceNamespace::Ecs),
                resource_id: Some(WEB.into()),
                scalable_dimension: Some(aas::ScalableDimension::EcsServiceDesiredCount),
            }),
            ErrorCode::ObjectNotFound,
            "No scaling policy found",
        ),
        (
            "a schedule berth cannot read",
            A::PutScheduledAction(aas::PutScheduledActionRequest {
                service_namespace: Some(aas::ServiceNamespace::Ecs),
                schedule: Some("every day".into()),
                scheduled_action_name: Some("x".into()),
                resource_id: Some(WEB.into()),
                scalable_dimension: Some(aas::ScalableDimension::EcsServiceDesiredCount),
                scalable_target_action: Some(aas::ScalableTargetAction { min_capacity: Some(1), max_capacity: None }),
                ..Default::default()
            }),
            ErrorCode::Validation,
            "is not valid",
        ),
        (
            "tags of an unknown target",
            A::ListTagsForResource(aas::ListTagsForResourceRequest {
                resource_arn: Some(format!(
                    "arn:aws:application-autoscaling:us-east-1:{}:scalable-target/0123",
                    w.control.account_id()
                )),
            }),
            ErrorCode::ResourceNotFound,
            "No scalable target",
        ),
    ];
    for (case, op, code, text) in cases {
        let e = w.aas(op).await.expect_err(case);
        assert_eq!(e.code, code, "{case}: {}", e.message);
        assert!(e.message.contains(text), "{case}: {}", e.message);
    }
}

#[tokio::test]
async fn express_provisions_updates_and_removes_its_scaling() {
    let w = world("express").await;
    let created = w
        .create_service(ecs::CreateExpressGatewayServiceRequest {
            scaling_target: Some(ecs::ExpressGatewayScalingTarget {
                min_task_count: Some(2),
                max_task_count: Some(6),
                auto_scaling_metric: Some(ecs::ExpressGatewayServiceScalingMetric::AverageMemory),
                auto_scaling_target_value: Some(70),
            }),
            ..common::named("api")
        })
        .await
        .expect("create");
    let arn = created.service_arn.expect("arn");
    let rid = "service/default/api";
    let t = w.targets().await;
    assert_eq!(
        (t.len(), t[0].resource_id.as_deref(), t[0].min_capacity, t[0].max_capacity),
        (1, Some(rid), Some(2), Some(6))
    );
    let policies = w.policies(rid).await;
    assert_eq!(policies.len(), 1);
    let p = &policies[0];
    assert_eq!(p.policy_name.as_deref(), Some("apiECSServiceAverageMemoryUtilization"));
    let cfg = p.target_tracking_scaling_policy_configuration.clone().expect("tt");
    assert_eq!(cfg.target_value, Some(70.0));
    assert_eq!(p.alarms.as_ref().map(Vec::len), Some(2), "AlarmHigh and AlarmLow");
    w.converge().await;
    assert_eq!(w.desired("api").await, 2);

    // A user's own edit of the policy survives a deployment.
    let mut edited = cpu_policy("apiECSServiceAverageMemoryUtilization", 70.0);
    edited.resource_id = Some(rid.into());
    if let Some(c) = edited.target_tracking_scaling_policy_configuration.as_mut() {
        c.predefined_metric_specification = Some(aas::PredefinedMetricSpecification {
            predefined_metric_type: Some(aas::MetricType::ECSServiceAverageMemoryUtilization),
            resource_label: None,
        });
        c.scale_in_cooldown = Some(33);
    }
    w.aas(A::PutScalingPolicy(edited)).await.expect("edit");
    let update = |r: ecs::UpdateExpressGatewayServiceRequest| {
        w.control.handle_ecs(&w.caller, ecs::Operation::UpdateExpressGatewayService(r))
    };
    let mut image = common::demo_container();
    image.environment = Some(vec![ecs::KeyValuePair { name: Some("V".into()), value: Some("2".into()) }]);
    update(ecs::UpdateExpressGatewayServiceRequest {
        service_arn: Some(arn.clone()),
        primary_container: Some(image),
        ..Default::default()
    })
    .await
    .expect("deploy");
    let cfg = w.policies(rid).await[0].target_tracking_scaling_policy_configuration.clone().expect("tt");
    assert_eq!(cfg.scale_in_cooldown, Some(33));
    w.converge().await;

    // A new scalingTarget changes the target and the policy, keeps the edit, and starts no deployment.
    let rev_before = w.active(&arn).await[0].service_revision_arn.clone().expect("revision");
    let started = w.driver.started().len();
    update(ecs::UpdateExpressGatewayServiceRequest {
        service_arn: Some(arn.clone()),
        scaling_target: Some(ecs::ExpressGatewayScalingTarget {
            max_task_count: Some(10),
            auto_scaling_target_value: Some(50),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .expect("scaling update");
    let t = w.targets().await;
    assert_eq!((t[0].min_capacity, t[0].max_capacity), (Some(2), Some(10)));
    let cfg = w.policies(rid).await[0].target_tracking_scaling_policy_configuration.clone().expect("tt");
    assert_eq!((cfg.target_value, cfg.scale_in_cooldown), (Some(50.0), Some(33)));
    w.converge().await;
    assert_eq!(w.driver.started().len(), started, "no new task: no deployment");
    let active = w.active(&arn).await;
    assert_eq!(active[0].service_revision_arn.as_deref(), Some(rev_before.as_str()));
    assert_eq!(active[0].scaling_target.as_ref().and_then(|s| s.max_task_count), Some(10));

    // A new metric replaces the policy (named after it).
    update(ecs::UpdateExpressGatewayServiceRequest {
        service_arn: Some(arn.clone()),
        scaling_target: Some(ecs::ExpressGatewayScalingTarget {
            auto_scaling_metric: Some(ecs::ExpressGatewayServiceScalingMetric::RequestCountPerTarget),
            auto_scaling_target_value: Some(100),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .expect("metric update");
    let policies = w.policies(rid).await;
    assert_eq!(policies.len(), 1);
    assert_eq!(policies[0].policy_name.as_deref(), Some("apiALBRequestCountPerTarget"));
    let label = policies[0]
        .target_tracking_scaling_policy_configuration
        .as_ref()
        .and_then(|c| c.predefined_metric_specification.as_ref())
        .and_then(|m| m.resource_label.clone())
        .expect("label");
    assert!(label.starts_with("app/") && label.contains("/targetgroup/"), "{label}");

    // Deleting the service removes them.
    w.control
        .handle_ecs(
            &w.caller,
            ecs::Operation::DeleteExpressGatewayService(ecs::DeleteExpressGatewayServiceRequest {
                service_arn: Some(arn.clone()),
            }),
        )
        .await
        .expect("delete");
    assert!(w.targets().await.is_empty());
    assert!(w.policies(rid).await.is_empty());
}

#[tokio::test]
async fn a_role_that_may_not_scale_provisions_nothing() {
    let w = world("denied").await;
    let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"application-autoscaling:PutScalingPolicy","Resource":"*"}]}"#;
    w.control
        .handle_iam(
            &w.caller,
            berth_model::iam::Operation::PutRolePolicy(berth_model::iam::PutRolePolicyRequest {
                role_name: Some("infra".into()),
                policy_name: Some("no-scaling".into()),
                policy_document: Some(deny.into()),
            }),
        )
        .await
        .expect("deny");
    let e = w.create_service(common::named("web")).await.expect_err("denied");
    assert_eq!(e.code, ErrorCode::AccessDenied);
    assert!(e.message.contains("application-autoscaling:PutScalingPolicy"), "{}", e.message);
    assert!(w.targets().await.is_empty(), "nothing registered");
}

#[tokio::test]
async fn callers_are_authorized_per_operation_on_the_target_and_its_tags() {
    let w = world("authz").await;
    w.create_demo_service("web").await;
    // May read everything, and register only targets Express manages; never put a policy.
    let policy = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":"application-autoscaling:Describe*","Resource":"*"},
        {"Effect":"Allow","Action":"application-autoscaling:RegisterScalableTarget","Resource":"*",
         "Condition":{"StringEquals":{"aws:ResourceTag/AmazonECSManaged":"true"}}}]}"#;
    let user = common::user_with(&w.control, "ops", policy).await;
    let call = |op: A| w.control.handle_application_autoscaling(&user, op);
    let described = call(A::DescribeScalableTargets(aas::DescribeScalableTargetsRequest {
        service_namespace: Some(aas::ServiceNamespace::Ecs),
        ..Default::default()
    }))
    .await;
    assert!(matches!(described, Ok(AO::DescribeScalableTargets(_))), "{described:?}");
    call(register(WEB, Some(1), Some(3))).await.expect("the managed target may be registered");
    let e = call(A::PutScalingPolicy(cpu_policy("p", 50.0))).await.expect_err("no PutScalingPolicy");
    assert_eq!(e.code, ErrorCode::AccessDenied);
    assert!(e.message.contains("application-autoscaling:PutScalingPolicy"), "{}", e.message);
    // Once the tag is gone, registering is refused too.
    let arn = w.targets().await[0].scalable_target_arn.clone().expect("arn");
    w.aas(A::UntagResource(aas::UntagResourceRequest {
        resource_arn: Some(arn),
        tag_keys: Some(vec!["AmazonECSManaged".into()]),
    }))
    .await
    .expect("untag");
    let e = call(register(WEB, Some(1), Some(4))).await.expect_err("untagged");
    assert_eq!(e.code, ErrorCode::AccessDenied);
    assert_eq!(w.targets().await[0].max_capacity, Some(3), "nothing changed");
}

/// The whole loop through CloudWatch: Express's policy puts its two alarms in CloudWatch; a recorded AWS/ECS
/// CPUUtilization datapoint above the target sends AlarmHigh to ALARM; its action runs the policy, which raises the
/// desired count; deleting the service deletes the alarms.
#[tokio::test]
async fn a_cpu_datapoint_above_the_target_scales_out_through_cloudwatch_alarms() {
    use berth_control::cloudwatch::Sample;
    use berth_model::cloudwatch as cw;
    use berth_telemetry::{Aggregate, Dimension, MetricId, Unit};
    let w = world("cloudwatch").await;
    let arn = w.create_demo_service("web").await;
    w.converge().await;
    let alarms = |w: &Harness| {
        let op = cw::Operation::DescribeAlarms(cw::DescribeAlarmsInput {
            alarm_name_prefix: Some("TargetTracking-service/default/web-".into()),
            ..Default::default()
        });
        let control = w.control.clone();
        let caller = w.caller.clone();
        async move {
            let Ok(cw::Output::DescribeAlarms(o)) = control.handle_cloudwatch(&caller, op).await else {
                panic!("describe alarms")
            };
            o.metric_alarms.unwrap_or_default()
        }
    };
    let found = alarms(&w).await;
    // (which, threshold, period, evaluation periods)
    type Seen = (String, Option<f64>, Option<i32>, Option<i32>);
    let mut seen: Vec<Seen> = found
        .iter()
        .map(|a| {
            let kind = if a.alarm_name.as_deref().unwrap_or_default().contains("-AlarmHigh-") { "high" } else { "low" };
            (kind.to_string(), a.threshold, a.period, a.evaluation_periods)
        })
        .collect();
    seen.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        seen,
        vec![("high".into(), Some(60.0), Some(10), Some(1)), ("low".into(), Some(54.0), Some(10), Some(30))]
    );
    let policy = w.policies(WEB).await.remove(0);
    let policy_arn = policy.policy_arn.expect("arn");
    assert!(found.iter().all(|a| a.alarm_actions.as_deref() == Some(std::slice::from_ref(&policy_arn))));

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
    let t0 = (now / 10.0).floor() * 10.0;
    let cpu = MetricId {
        namespace: "AWS/ECS".into(),
        name: "CPUUtilization".into(),
        dimensions: vec![Dimension::new("ClusterName", "default"), Dimension::new("ServiceName", "web")],
        unit: Unit::Percent,
    };
    w.control.record_metrics(vec![Sample {
        metric: cpu,
        timestamp: t0 + 5.0,
        aggregate: Aggregate::of_values(&[(150.0, 1.0)]),
        storage_resolution: 1,
    }]);
    w.control.alarms_tick(t0 + 10.5);
    assert_eq!(w.desired("web").await, 3, "1 task at 150% of 60 → 3");
    let acts = w.activities(false).await;
    let cause = acts[0].cause.clone().unwrap_or_default();
    assert!(
        cause.contains("-AlarmHigh-")
            && cause.ends_with("in state ALARM triggered policy webECSServiceAverageCPUUtilization"),
        "{cause}"
    );
    w.converge().await;
    assert_eq!(w.driver.running_ids().len(), 3);

    w.control
        .handle_ecs(
            &w.caller,
            ecs::Operation::DeleteExpressGatewayService(ecs::DeleteExpressGatewayServiceRequest {
                service_arn: Some(arn),
            }),
        )
        .await
        .expect("delete");
    w.converge().await;
    assert!(alarms(&w).await.is_empty(), "the policy's alarms went with the service");
}
