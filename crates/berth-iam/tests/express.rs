//! The Express Mode scenarios, with the managed policies berth ships.

mod common;

use berth_iam::managed::{
    self, ADMINISTRATOR_ACCESS, AMAZON_ECS_INFRASTRUCTURE_ROLE_FOR_EXPRESS_GATEWAY_SERVICES as INFRA,
    AMAZON_ECS_TASK_EXECUTION_ROLE_POLICY as EXEC,
};
use berth_iam::{
    Decision, Policy, PolicyKind, Principal, RequestContext, check_managed_policy_size, evaluate, trust_allows,
};

const ACCT: &str = "123456789012";

fn infra() -> Policy {
    INFRA.policy().expect("infrastructure policy parses")
}

fn decide(policy: &Policy, req: RequestContext) -> Decision {
    evaluate(&req, &[policy])
}

#[test]
fn every_managed_policy_parses_validates_and_fits() {
    assert_eq!(managed::ALL.len(), 3);
    for p in managed::ALL {
        let parsed = p.policy().unwrap_or_else(|e| panic!("{}: {e}", p.arn));
        assert!(!parsed.statements.is_empty());
        check_managed_policy_size(p.document).unwrap_or_else(|e| panic!("{}: {e}", p.arn));
        assert!(p.arn.ends_with(&format!("{}{}", p.path, p.name)), "{}", p.arn);
        assert_eq!(managed::find(p.arn), Some(p));
    }
    assert_eq!(managed::find("arn:aws:iam::aws:policy/Nope"), None);
    assert_eq!(infra().statements.len(), 17);
    let sids: Vec<_> = infra().statements.iter().filter_map(|s| s.sid.clone()).collect();
    assert!(sids.contains(&"ELBOperations".to_owned()) && sids.contains(&"CloudWatchLogsReadOperations".to_owned()));
}

#[test]
fn infrastructure_role_elb_needs_the_managed_tag() {
    let p = infra();
    let rule = format!(
        "arn:aws:elasticloadbalancing:us-east-1:{ACCT}:listener-rule/app/ecs-express-gateway-alb-1/50dc6c495c0c9188/f2f7dc8efc522ab2/9683b2d02a6cabee"
    );
    let tagged = RequestContext::new("elasticloadbalancing:CreateRule", rule.clone())
        .with_resource_tags([("AmazonECSManaged", "true")]);
    assert_eq!(decide(&p, tagged), Decision::Allow);
    let untagged = RequestContext::new("elasticloadbalancing:CreateRule", rule.clone());
    assert_eq!(decide(&p, untagged), Decision::ImplicitDeny);
    let wrong = RequestContext::new("elasticloadbalancing:CreateRule", rule)
        .with_resource_tags([("AmazonECSManaged", "false")]);
    assert_eq!(decide(&p, wrong), Decision::ImplicitDeny);
    // Network load balancers are not covered (the policy names app/ only).
    let nlb = format!("arn:aws:elasticloadbalancing:us-east-1:{ACCT}:loadbalancer/net/x/50dc6c495c0c9188");
    let req = RequestContext::new("elasticloadbalancing:DeleteLoadBalancer", nlb)
        .with_resource_tags([("AmazonECSManaged", "true")]);
    assert_eq!(decide(&p, req), Decision::ImplicitDeny);
    // Tagging only as part of a create call.
    let tg = format!("arn:aws:elasticloadbalancing:us-east-1:{ACCT}:targetgroup/ecs-gateway-tg-1/73e2d6bc24d8a067");
    let on_create = RequestContext::new("elasticloadbalancing:AddTags", tg.clone())
        .with_key("elasticloadbalancing:CreateAction", "CreateTargetGroup");
    assert_eq!(decide(&p, on_create), Decision::Allow);
    assert_eq!(decide(&p, RequestContext::new("elasticloadbalancing:AddTags", tg)), Decision::ImplicitDeny);
    // Reads are open.
    assert_eq!(decide(&p, RequestContext::new("elasticloadbalancing:DescribeTargetHealth", "*")), Decision::Allow);
}

#[test]
fn infrastructure_role_security_groups_need_the_request_tag() {
    let p = infra();
    let sg = format!("arn:aws:ec2:us-east-1:{ACCT}:security-group/sg-0123456789abcdef0");
    let vpc = format!("arn:aws:ec2:us-east-1:{ACCT}:vpc/vpc-0123456789abcdef0");
    let with_tag =
        RequestContext::new("ec2:CreateSecurityGroup", sg.clone()).with_request_tags([("AmazonECSManaged", "true")]);
    assert_eq!(decide(&p, with_tag), Decision::Allow);
    let without = RequestContext::new("ec2:CreateSecurityGroup", sg.clone()).with_request_tags([("team", "web")]);
    assert_eq!(decide(&p, without), Decision::ImplicitDeny);
    // The VPC side of the same call is blanket-allowed.
    assert_eq!(decide(&p, RequestContext::new("ec2:CreateSecurityGroup", vpc)), Decision::Allow);
    // Changing a group needs the group's tag.
    let revoke = RequestContext::new("ec2:RevokeSecurityGroupIngress", sg.clone());
    assert_eq!(decide(&p, revoke), Decision::ImplicitDeny);
    let revoke =
        RequestContext::new("ec2:RevokeSecurityGroupIngress", sg).with_resource_tags([("AmazonECSManaged", "true")]);
    assert_eq!(decide(&p, revoke), Decision::Allow);
}

#[test]
fn infrastructure_role_lacks_describe_account_attributes() {
    // The known AWS gap (reference §5.1): users add an inline policy for it.
    let p = infra();
    let req = RequestContext::new("ec2:DescribeAccountAttributes", "*");
    assert_eq!(decide(&p, req.clone()), Decision::ImplicitDeny);
    let fix = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ec2:DescribeAccountAttributes","Resource":"*"}]}"#,
        PolicyKind::Identity,
    )
    .expect("inline fix");
    assert_eq!(evaluate(&req, &[&p, &fix]), Decision::Allow);
    // Nor does it delete log groups or pass roles.
    assert_eq!(
        decide(
            &p,
            RequestContext::new("logs:DeleteLogGroup", format!("arn:aws:logs:us-east-1:{ACCT}:log-group:/ecs/web"))
        ),
        Decision::ImplicitDeny
    );
    assert_eq!(
        decide(&p, RequestContext::new("iam:PassRole", format!("arn:aws:iam::{ACCT}:role/x"))),
        Decision::ImplicitDeny
    );
}

#[test]
fn infrastructure_role_other_services() {
    let p = infra();
    let cases = [
        (
            RequestContext::new(
                "logs:CreateLogGroup",
                format!("arn:aws:logs:us-east-1:{ACCT}:log-group:/aws/ecs/default/web-1a2b"),
            )
            .with_request_tags([("AmazonECSManaged", "true")]),
            Decision::Allow,
        ),
        (
            RequestContext::new(
                "logs:CreateLogGroup",
                format!("arn:aws:logs:us-east-1:{ACCT}:log-group:/aws/ecs/default/web-1a2b"),
            ),
            Decision::ImplicitDeny,
        ),
        (
            RequestContext::new(
                "cloudwatch:PutMetricAlarm",
                format!("arn:aws:cloudwatch:us-east-1:{ACCT}:alarm:web-faulty"),
            )
            .with_request_tags([("AmazonECSManaged", "true")]),
            Decision::Allow,
        ),
        (
            RequestContext::new(
                "cloudwatch:DeleteAlarms",
                format!("arn:aws:cloudwatch:us-east-1:{ACCT}:alarm:web-faulty"),
            ),
            Decision::ImplicitDeny,
        ),
        (
            RequestContext::new(
                "application-autoscaling:PutScalingPolicy",
                format!("arn:aws:application-autoscaling:us-east-1:{ACCT}:scalable-target/0ec9f7a1"),
            )
            .with_key("application-autoscaling:service-namespace", "ecs"),
            Decision::Allow,
        ),
        (
            RequestContext::new(
                "application-autoscaling:PutScalingPolicy",
                format!("arn:aws:application-autoscaling:us-east-1:{ACCT}:scalable-target/0ec9f7a1"),
            )
            .with_key("application-autoscaling:service-namespace", "dynamodb"),
            Decision::ImplicitDeny,
        ),
        (
            RequestContext::new("iam:CreateServiceLinkedRole", "*")
                .with_key("iam:AWSServiceName", "elasticloadbalancing.amazonaws.com"),
            Decision::Allow,
        ),
        (
            RequestContext::new("iam:CreateServiceLinkedRole", "*").with_key("iam:AWSServiceName", "rds.amazonaws.com"),
            Decision::ImplicitDeny,
        ),
        (
            RequestContext::new("acm:RequestCertificate", format!("arn:aws:acm:us-east-1:{ACCT}:certificate/1234"))
                .with_resource_tags([("AmazonECSManaged", "true")]),
            Decision::Allow,
        ),
        (RequestContext::new("ec2:DescribeSubnets", "*"), Decision::Allow),
        (RequestContext::new("ecs:CreateService", "*"), Decision::ImplicitDeny),
    ];
    for (req, want) in cases {
        assert_eq!(decide(&p, req.clone()), want, "{} on {}", req.action, req.resource);
    }
}

#[test]
fn execution_role_policy_writes_logs_but_reads_no_secrets() {
    let p = EXEC.policy().expect("parses");
    let stream = format!("arn:aws:logs:us-east-1:{ACCT}:log-group:/aws/ecs/default/web:log-stream:ecs/web/abc");
    assert_eq!(decide(&p, RequestContext::new("logs:PutLogEvents", stream.clone())), Decision::Allow);
    assert_eq!(decide(&p, RequestContext::new("logs:CreateLogStream", stream)), Decision::Allow);
    assert_eq!(decide(&p, RequestContext::new("ecr:GetAuthorizationToken", "*")), Decision::Allow);
    let secret = format!("arn:aws:secretsmanager:us-east-1:{ACCT}:secret:registry-AbCdEf");
    assert_eq!(decide(&p, RequestContext::new("secretsmanager:GetSecretValue", secret)), Decision::ImplicitDeny);
    let param = format!("arn:aws:ssm:us-east-1:{ACCT}:parameter/db/password");
    assert_eq!(decide(&p, RequestContext::new("ssm:GetParameters", param)), Decision::ImplicitDeny);
}

#[test]
fn administrator_access_allows_everything() {
    let p = ADMINISTRATOR_ACCESS.policy().expect("parses");
    for action in ["iam:PassRole", "ecs:CreateExpressGatewayService", "ec2:DescribeAccountAttributes"] {
        assert_eq!(decide(&p, RequestContext::new(action, "*")), Decision::Allow);
    }
}

#[test]
fn express_trust_policies() {
    let exec = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        PolicyKind::Trust,
    )
    .expect("exec trust");
    let infra = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"AllowAccessInfrastructureForECSExpressServices","Effect":"Allow","Principal":{"Service":"ecs.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
        PolicyKind::Trust,
    )
    .expect("infra trust");
    let exec_arn = format!("arn:aws:iam::{ACCT}:role/ecsTaskExecutionRole");
    let infra_arn = format!("arn:aws:iam::{ACCT}:role/ecsInfrastructureRoleForExpressServices");
    let tasks = Principal::Service("ecs-tasks.amazonaws.com".into());
    let ecs = Principal::Service("ecs.amazonaws.com".into());
    assert_eq!(trust_allows(&exec, &exec_arn, &tasks), Decision::Allow);
    assert_eq!(trust_allows(&exec, &exec_arn, &ecs), Decision::ImplicitDeny);
    assert_eq!(trust_allows(&infra, &infra_arn, &ecs), Decision::Allow);
    assert_eq!(trust_allows(&infra, &infra_arn, &tasks), Decision::ImplicitDeny);
    let user =
        Principal::Aws(berth_iam::AwsPrincipal::identity(&common::arn(&format!("arn:aws:iam::{ACCT}:user/bob"))));
    assert_eq!(trust_allows(&infra, &infra_arn, &user), Decision::ImplicitDeny);
}

#[test]
fn pass_role_for_express() {
    // The caller needs iam:PassRole on both roles; scoped with iam:PassedToService.
    let p = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:PassRole","Resource":"arn:aws:iam::*:role/ecs*","Condition":{"StringLike":{"iam:PassedToService":"ecs*.amazonaws.com"}}}]}"#,
        PolicyKind::Identity,
    )
    .expect("parses");
    let ok = RequestContext::new("iam:PassRole", format!("arn:aws:iam::{ACCT}:role/ecsTaskExecutionRole"))
        .with_key("iam:PassedToService", "ecs-tasks.amazonaws.com");
    assert_eq!(decide(&p, ok), Decision::Allow);
    let other = RequestContext::new("iam:PassRole", format!("arn:aws:iam::{ACCT}:role/admin"))
        .with_key("iam:PassedToService", "ecs.amazonaws.com");
    assert_eq!(decide(&p, other), Decision::ImplicitDeny);
}
