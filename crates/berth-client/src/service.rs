//! The AWS services berth answers, as a client addresses them: signing name and wire protocol.

use berth_model::schema::OperationSchema;

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

/// How a service is spoken on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wire {
    /// AWS JSON: `X-Amz-Target: {target_prefix}.{Action}`, `application/x-amz-json-{version}`.
    Json { target_prefix: &'static str, version: &'static str },
    /// Query: `Action=…&Version=…` form parameters, XML answers in `<{Action}Response><{Action}Result>`.
    Query,
    /// EC2's Query: capitalised parameter names, lists numbered right after the name, `<{Action}Response>` answers.
    Ec2,
}

impl Service {
    /// The SigV4 signing name (the service part of the credential scope).
    pub fn signing_name(self) -> &'static str {
        match self {
            Service::Ecs => berth_model::ecs::SIGNING_NAME,
            Service::Elbv2 => berth_model::elbv2::SIGNING_NAME,
            Service::Ec2 => berth_model::ec2::SIGNING_NAME,
            Service::Iam => berth_model::iam::SIGNING_NAME,
            Service::Sts => berth_model::sts::SIGNING_NAME,
            Service::Logs => berth_model::logs::SIGNING_NAME,
            Service::CloudWatch => berth_model::cloudwatch::SIGNING_NAME,
            Service::ApplicationAutoScaling => berth_model::application_autoscaling::SIGNING_NAME,
            Service::SecretsManager => berth_model::secretsmanager::SIGNING_NAME,
            Service::Ssm => berth_model::ssm::SIGNING_NAME,
        }
    }

    /// The model's API version (the Query `Version` parameter).
    pub fn api_version(self) -> &'static str {
        match self {
            Service::Ecs => berth_model::ecs::API_VERSION,
            Service::Elbv2 => berth_model::elbv2::API_VERSION,
            Service::Ec2 => berth_model::ec2::API_VERSION,
            Service::Iam => berth_model::iam::API_VERSION,
            Service::Sts => berth_model::sts::API_VERSION,
            Service::Logs => berth_model::logs::API_VERSION,
            Service::CloudWatch => berth_model::cloudwatch::API_VERSION,
            Service::ApplicationAutoScaling => berth_model::application_autoscaling::API_VERSION,
            Service::SecretsManager => berth_model::secretsmanager::API_VERSION,
            Service::Ssm => berth_model::ssm::API_VERSION,
        }
    }

    /// The protocol the client speaks. CloudWatch's model offers RPC v2 CBOR, JSON 1.0 and Query; berth serves
    /// all three with the same member names, and JSON 1.0 needs no schema walk and no second codec here.
    pub(crate) fn wire(self) -> Wire {
        use berth_model::{application_autoscaling, cloudwatch, ecs, logs, secretsmanager, ssm};
        let json = |target_prefix, version| Wire::Json { target_prefix, version };
        match self {
            Service::Ecs => json(ecs::TARGET_PREFIX, ecs::JSON_VERSION),
            Service::Logs => json(logs::TARGET_PREFIX, logs::JSON_VERSION),
            Service::CloudWatch => json(cloudwatch::TARGET_PREFIX, cloudwatch::JSON_VERSION),
            Service::ApplicationAutoScaling => {
                json(application_autoscaling::TARGET_PREFIX, application_autoscaling::JSON_VERSION)
            }
            Service::SecretsManager => json(secretsmanager::TARGET_PREFIX, secretsmanager::JSON_VERSION),
            Service::Ssm => json(ssm::TARGET_PREFIX, ssm::JSON_VERSION),
            Service::Elbv2 | Service::Iam | Service::Sts => Wire::Query,
            Service::Ec2 => Wire::Ec2,
        }
    }

    /// The wire schema of a Query or EC2 operation (`None` for JSON services and unknown operations).
    pub(crate) fn operation_schema(self, action: &str) -> Option<&'static OperationSchema> {
        match self {
            Service::Elbv2 => berth_model::elbv2::operation(action),
            Service::Iam => berth_model::iam::operation(action),
            Service::Sts => berth_model::sts::operation(action),
            Service::Ec2 => berth_model::ec2::operation(action),
            Service::CloudWatch => berth_model::cloudwatch::operation(action),
            Service::Ecs | Service::Logs | Service::ApplicationAutoScaling | Service::SecretsManager | Service::Ssm => {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_follow_the_model() {
        assert_eq!(
            Service::Ecs.wire(),
            Wire::Json { target_prefix: "AmazonEC2ContainerServiceV20141113", version: "1.1" }
        );
        assert_eq!(
            Service::CloudWatch.wire(),
            Wire::Json { target_prefix: "GraniteServiceVersion20100801", version: "1.0" }
        );
        assert_eq!(Service::Iam.wire(), Wire::Query);
        assert_eq!(Service::Ec2.wire(), Wire::Ec2);
        assert_eq!(Service::Elbv2.signing_name(), "elasticloadbalancing");
        assert_eq!(Service::CloudWatch.signing_name(), "monitoring");
        assert!(Service::Iam.operation_schema("GetRole").is_some());
        assert!(Service::Iam.operation_schema("NoSuchThing").is_none());
        assert!(Service::Ecs.operation_schema("ListServices").is_none());
    }
}
