//! The AWS managed policies berth ships, under their real ARNs.
//!
//! The documents are AWS's own, copied from the zoph-io/MAMIP mirror of AWS managed policies (see
//! /work/shared/reference/express-mode.md, section 5 and its source list): nothing in the two ECS documents is
//! reconstructed. What is berth's is only the reading of the condition keys they use, which the API layer must
//! put into the request context for these statements to mean what they mean on AWS:
//! - `aws:ResourceTag/AmazonECSManaged` on `elasticloadbalancing:Create*`: AWS evaluates the tags being created
//!   with the resource as its resource tags, so callers set both `aws:RequestTag/...` and `aws:ResourceTag/...`
//!   from the create call's tags (berth's interpretation of how the published policy can work at all).
//! - `elasticloadbalancing:CreateAction` / `ec2:CreateAction`: the create call a tagging happens within.
//! - `iam:AWSServiceName`, `application-autoscaling:service-namespace`: from the request.
//! - `ec2:CreateSecurityGroup` is authorized twice, as on AWS: once on the VPC (`BlanketAllowCreateSecurity
//!   GroupsInVPCs`) and once on the new `security-group/*` (needs the request tag).

use crate::error::PolicyError;
use crate::policy::{Policy, PolicyKind};

/// An AWS managed policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManagedPolicy {
    pub arn: &'static str,
    pub name: &'static str,
    pub path: &'static str,
    /// The default version's id, as in the mirrored copy.
    pub version_id: &'static str,
    pub description: &'static str,
    /// The document as AWS returns it from GetPolicyVersion (decoded).
    pub document: &'static str,
}

impl ManagedPolicy {
    /// The parsed document.
    pub fn policy(&self) -> Result<Policy, PolicyError> {
        Policy::parse(self.document, PolicyKind::Identity)
    }
}

pub const ADMINISTRATOR_ACCESS: ManagedPolicy = ManagedPolicy {
    arn: "arn:aws:iam::aws:policy/AdministratorAccess",
    name: "AdministratorAccess",
    path: "/",
    version_id: "v1",
    description: "Provides full access to AWS services and resources.",
    document: r#"{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "*",
            "Resource": "*"
        }
    ]
}"#,
};

/// AWS's version v1 (2017-11-16).
pub const AMAZON_ECS_TASK_EXECUTION_ROLE_POLICY: ManagedPolicy = ManagedPolicy {
    arn: "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
    name: "AmazonECSTaskExecutionRolePolicy",
    path: "/service-role/",
    version_id: "v1",
    description: "Provides access to other AWS service resources that are required to run Amazon ECS tasks",
    document: r#"{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "ecr:GetAuthorizationToken",
                "ecr:BatchCheckLayerAvailability",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchGetImage",
                "logs:CreateLogStream",
                "logs:PutLogEvents"
            ],
            "Resource": "*"
        }
    ]
}"#,
};

/// AWS's version v4 (2026-02-11) as mirrored; the reference notes v6's action lists are the same.
pub const AMAZON_ECS_INFRASTRUCTURE_ROLE_FOR_EXPRESS_GATEWAY_SERVICES: ManagedPolicy = ManagedPolicy {
    arn: "arn:aws:iam::aws:policy/service-role/AmazonECSInfrastructureRoleforExpressGatewayServices",
    name: "AmazonECSInfrastructureRoleforExpressGatewayServices",
    path: "/service-role/",
    version_id: "v4",
    // berth's wording: the mirror carries only the document.
    description: "Provides Amazon ECS access to create and manage the load balancing, networking, certificate, \
                  scaling and monitoring resources of Express services on your behalf.",
    document: include_str!("managed/AmazonECSInfrastructureRoleforExpressGatewayServices.json"),
};

/// Every managed policy berth ships.
pub const ALL: &[ManagedPolicy] = &[
    ADMINISTRATOR_ACCESS,
    AMAZON_ECS_TASK_EXECUTION_ROLE_POLICY,
    AMAZON_ECS_INFRASTRUCTURE_ROLE_FOR_EXPRESS_GATEWAY_SERVICES,
];

/// The managed policy with this ARN.
pub fn find(arn: &str) -> Option<&'static ManagedPolicy> {
    ALL.iter().find(|p| p.arn == arn)
}
