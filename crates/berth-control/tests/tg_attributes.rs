//! Target-group attributes the proxy enforces: slow start and target stickiness are validated like ALB and
//! reach the route table at once, as do the target group health requirements (routing failover); the table
//! carries the server's stickiness key.

use berth_control::ControlConfig;
use berth_core::ErrorCode;
use berth_model::elbv2::{self as elb, Operation as E, Output as EO};
use berth_routes::{MinimumHealthy, TargetStickiness};

mod common;

use common::Harness;

async fn world(name: &str) -> (Harness, String) {
    let h = Harness::new(&format!("tg-attrs-{name}"), |_| ControlConfig::default());
    h.create_express_roles().await;
    h.create_demo_service("web").await;
    h.settle().await;
    let group = h.table().target_groups.iter().find(|g| !g.targets.is_empty()).map(|g| g.id.clone()).expect("group");
    (h, group)
}

async fn modify(h: &Harness, group: &str, attrs: &[(&str, &str)]) -> Result<Vec<(String, String)>, ErrorCode> {
    let out = h
        .control
        .handle_elbv2(
            &h.caller,
            E::ModifyTargetGroupAttributes(elb::ModifyTargetGroupAttributesInput {
                target_group_arn: Some(group.into()),
                attributes: Some(
                    attrs
                        .iter()
                        .map(|(k, v)| elb::TargetGroupAttribute { key: Some((*k).into()), value: Some((*v).into()) })
                        .collect(),
                ),
            }),
        )
        .await
        .map_err(|e| e.code)?;
    let EO::ModifyTargetGroupAttributes(out) = out else { panic!("wrong output") };
    Ok(out
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|a| (a.key.unwrap_or_default(), a.value.unwrap_or_default()))
        .collect())
}

#[tokio::test]
async fn slow_start_and_stickiness_are_validated_and_published() {
    let (h, group) = world("publish").await;
    let tg = |h: &Harness| h.table().target_group(&group).cloned().expect("group in table");
    assert_eq!((tg(&h).slow_start_secs, tg(&h).stickiness), (0, None), "ALB's defaults: off");
    assert_eq!(h.table().stickiness_key.len(), 64, "the table carries the server's stickiness key");

    // Invalid values, as ALB rejects them.
    let cases: &[(&[(&str, &str)], ErrorCode)] = &[
        (&[("slow_start.duration_seconds", "29")], ErrorCode::ValidationError),
        (&[("slow_start.duration_seconds", "901")], ErrorCode::ValidationError),
        (&[("stickiness.type", "source_ip")], ErrorCode::ValidationError),
        (&[("stickiness.lb_cookie.duration_seconds", "0")], ErrorCode::ValidationError),
        (&[("stickiness.app_cookie.duration_seconds", "604801")], ErrorCode::ValidationError),
        (&[("stickiness.app_cookie.cookie_name", "AWSALBAPP-0")], ErrorCode::ValidationError),
        (&[("stickiness.app_cookie.cookie_name", "AWSALB")], ErrorCode::ValidationError),
        (&[("stickiness.app_cookie.cookie_name", "a;b")], ErrorCode::ValidationError),
        (&[("stickiness.enabled", "true"), ("stickiness.type", "app_cookie")], ErrorCode::ValidationError),
        (
            &[("slow_start.duration_seconds", "30"), ("load_balancing.algorithm.type", "least_outstanding_requests")],
            ErrorCode::InvalidConfigurationRequest,
        ),
    ];
    let version = h.table().version;
    for (attrs, want) in cases {
        assert_eq!(modify(&h, &group, attrs).await.map(|_| ()), Err(*want), "{attrs:?}");
    }
    assert_eq!(h.table().version, version, "a refused modification changes nothing");

    // Slow start and duration-based stickiness reach the table at once.
    let shown = modify(
        &h,
        &group,
        &[
            ("slow_start.duration_seconds", "30"),
            ("stickiness.enabled", "true"),
            ("stickiness.type", "lb_cookie"),
            ("stickiness.lb_cookie.duration_seconds", "120"),
        ],
    )
    .await
    .expect("modify");
    for key in ["stickiness.app_cookie.cookie_name", "stickiness.app_cookie.duration_seconds"] {
        assert!(shown.iter().any(|(k, _)| k == key), "{key} is shown with its default");
    }
    assert_eq!(tg(&h).slow_start_secs, 30);
    assert_eq!(tg(&h).stickiness, Some(TargetStickiness::LbCookie { duration_secs: 120 }));
    // With slow start on, least outstanding requests is refused the other way round too.
    assert_eq!(
        modify(&h, &group, &[("load_balancing.algorithm.type", "least_outstanding_requests")]).await.map(|_| ()),
        Err(ErrorCode::InvalidConfigurationRequest)
    );

    // Application-based stickiness needs the application's cookie name.
    modify(
        &h,
        &group,
        &[
            ("stickiness.type", "app_cookie"),
            ("stickiness.app_cookie.cookie_name", "SESSIONID"),
            ("stickiness.app_cookie.duration_seconds", "60"),
        ],
    )
    .await
    .expect("app cookie");
    assert_eq!(
        tg(&h).stickiness,
        Some(TargetStickiness::AppCookie { cookie_name: "SESSIONID".into(), duration_secs: 60 })
    );
    modify(&h, &group, &[("stickiness.enabled", "false"), ("slow_start.duration_seconds", "0")]).await.expect("off");
    assert_eq!((tg(&h).slow_start_secs, tg(&h).stickiness), (0, None));

    // The key survives a restart (cookies issued before stay valid).
    let key = h.table().stickiness_key.clone();
    let mut h = h;
    h.restart();
    assert_eq!(h.table().stickiness_key, key);
}

#[tokio::test]
async fn target_group_health_requirements_are_validated_and_reach_the_table() {
    let (h, group) = world("health").await;
    let tg = |h: &Harness| h.table().target_group(&group).cloned().expect("group in table");
    assert_eq!(tg(&h).unhealthy_routing, MinimumHealthy { count: 1, percentage: None }, "ALB's default");
    const COUNT: &str = "target_group_health.unhealthy_state_routing.minimum_healthy_targets.count";
    const PERCENT: &str = "target_group_health.unhealthy_state_routing.minimum_healthy_targets.percentage";
    const DNS_COUNT: &str = "target_group_health.dns_failover.minimum_healthy_targets.count";
    const DNS_PERCENT: &str = "target_group_health.dns_failover.minimum_healthy_targets.percentage";
    let shown = modify(&h, &group, &[]).await.expect("nothing");
    for (key, default) in [(COUNT, "1"), (PERCENT, "off"), (DNS_COUNT, "1"), (DNS_PERCENT, "off")] {
        assert!(shown.iter().any(|(k, v)| k == key && v == default), "{key} shows {default}: {shown:?}");
    }
    let cases: &[(&[(&str, &str)], ErrorCode)] = &[
        (&[(COUNT, "0")], ErrorCode::ValidationError),
        (&[(COUNT, "off")], ErrorCode::ValidationError),
        (&[(COUNT, "1001")], ErrorCode::ValidationError),
        (&[(PERCENT, "0")], ErrorCode::ValidationError),
        (&[(PERCENT, "101")], ErrorCode::ValidationError),
        (&[(DNS_COUNT, "x")], ErrorCode::ValidationError),
        (&[(DNS_PERCENT, "100.5")], ErrorCode::ValidationError),
        // DNS failover never triggers after routing failover.
        (&[(DNS_COUNT, "2"), (COUNT, "3")], ErrorCode::InvalidConfigurationRequest),
        (&[(DNS_PERCENT, "20"), (PERCENT, "50")], ErrorCode::InvalidConfigurationRequest),
    ];
    let version = h.table().version;
    for (attrs, want) in cases {
        assert_eq!(modify(&h, &group, attrs).await.map(|_| ()), Err(*want), "{attrs:?}");
    }
    assert_eq!(h.table().version, version, "a refused modification changes nothing");

    modify(&h, &group, &[(COUNT, "2"), (PERCENT, "50"), (DNS_COUNT, "off")]).await.expect("modify");
    assert_eq!(tg(&h).unhealthy_routing, MinimumHealthy { count: 2, percentage: Some(50) });
    modify(&h, &group, &[(COUNT, "1"), (PERCENT, "off")]).await.expect("back");
    assert_eq!(tg(&h).unhealthy_routing, MinimumHealthy::default());
}
