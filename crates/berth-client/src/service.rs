//! The AWS services berth answers, as a client addresses them.

/// One of berth's AWS services: its SigV4 signing name and the protocol the client speaks to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Ecs,
    Elbv2,
    Ec2,
    Iam,
    Sts,
    Logs,
    CloudWatch,
    ApplicationAutoScaling,
    SecretsManager,
    Ssm,
}

impl Service {
    /// The SigV4 signing name (the service part of the credential scope).
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Ecs => "ecs",
            Service::Elbv2 => "elasticloadbalancing",
            Service::Ec2 => "ec2",
            Service::Iam => "iam",
            Service::Sts => "sts",
            Service::Logs => "logs",
            Service::CloudWatch => "monitoring",
            Service::ApplicationAutoScaling => "application-autoscaling",
            Service::SecretsManager => "secretsmanager",
            Service::Ssm => "ssm",
        }
    }
}
