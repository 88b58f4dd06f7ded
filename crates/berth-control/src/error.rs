use berth_core::{AwsError, ErrorCode};
use berth_store::StoreError;

/// Everything that can go wrong in the control plane, mapped exhaustively to AWS errors below.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    Aws(#[from] AwsError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("secrets key: {0}")]
    Vault(String),
    /// The container runtime failed or cannot be reached (e.g. dockerd restarting).
    #[error("container runtime: {0}")]
    Runtime(#[from] berth_runtime::DriverError),
}

impl ControlError {
    pub fn invalid(message: impl Into<String>) -> Self {
        ControlError::Aws(AwsError::invalid_parameter(message))
    }
    pub fn code(code: ErrorCode, message: impl Into<String>) -> Self {
        ControlError::Aws(AwsError::new(code, message))
    }
    /// The same error under the name an operation's model gives it (`from` becomes `to`, message kept).
    pub(crate) fn respelled(self, from: ErrorCode, to: ErrorCode) -> Self {
        match self {
            ControlError::Aws(a) if a.code == from => ControlError::Aws(AwsError::new(to, a.message)),
            other => other,
        }
    }
}

impl From<ControlError> for AwsError {
    fn from(e: ControlError) -> Self {
        match e {
            ControlError::Aws(a) => a,
            ControlError::Store(StoreError::Conflict(what)) => {
                AwsError::invalid_parameter(format!("{what} already exists"))
            }
            ControlError::Store(s) => {
                tracing::error!(error = %s, "store failure");
                AwsError::internal("The server could not record the change; nothing was changed. Try again.")
            }
            ControlError::Certificate(m) => {
                tracing::error!(error = %m, "certificate failure");
                AwsError::internal(format!("Could not issue the endpoint certificate: {m}"))
            }
            ControlError::Vault(m) => {
                tracing::error!(error = %m, "secrets key failure");
                AwsError::internal("The server could not use its secrets key; nothing was changed.")
            }
            ControlError::Runtime(e) => {
                tracing::error!(error = %e, "container runtime failure");
                AwsError::internal("The container runtime is unavailable. Try again.")
            }
        }
    }
}

/// The one check at the boundary where an operation's answer leaves the control plane: an internal failure takes
/// the service's own name for it (ECS `ServerException`, IAM `ServiceFailure`, …), and the error must be one the
/// operation's model lists, or one every operation may return ([`may_return`]), so that typed SDKs can match it.
/// A mismatch is a bug: debug builds (every control-plane test that reaches an error path) panic, release builds
/// log it.
pub(crate) fn answer<T>(
    service: &str,
    operation: &str,
    modeled: &[&str],
    result: Result<T, AwsError>,
) -> Result<T, AwsError> {
    result.map_err(|mut e| {
        if e.code == ErrorCode::Server {
            e.code = internal_error(service);
        }
        if !may_return(service, modeled, e.code) {
            tracing::error!(
                service, operation, code = e.code.name(), message = %e.message,
                "an error the operation's model does not list"
            );
            debug_assert!(
                false,
                "{service}:{operation} answered {} ({}), which its model does not list: {modeled:?}",
                e.code.name(),
                e.message
            );
        }
        e
    })
}

/// The service's error for an internal failure, by SigV4 signing name.
pub fn internal_error(service: &str) -> ErrorCode {
    match service {
        "iam" => ErrorCode::ServiceFailure,
        "ssm" => ErrorCode::InternalServerError,
        "secretsmanager" => ErrorCode::InternalServiceError,
        "logs" => ErrorCode::LogsServiceUnavailable,
        "ecs" => ErrorCode::Server,
        "application-autoscaling" => ErrorCode::InternalService,
        _ => ErrorCode::InternalFailure,
    }
}

/// Whether an operation of `service` (SigV4 signing name) whose model lists `modeled` may answer `code`: a listed
/// error, or one every operation may return ([`ErrorCode::is_common`]). EC2's model lists no errors (its codes
/// are documented apart, and its SDKs match them by string), so any of its codes may.
pub fn may_return(service: &str, modeled: &[&str], code: ErrorCode) -> bool {
    code.is_common() || service == "ec2" || modeled.contains(&code.name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_model::{cloudwatch, ec2, ecs, elbv2, iam, logs, secretsmanager, ssm, sts};

    /// The errors each operation answers, as berth's handlers return them (after the fixes where the model names
    /// the error differently), checked against the operation's model. A row that the model does not allow is a
    /// bug typed SDKs would report as an unhandled error.
    #[test]
    fn every_error_an_operation_returns_is_one_its_model_lists() {
        use ErrorCode as E;
        /// (service, its generated lookup, operation, the errors berth answers it with)
        type Row<'a> = (&'a str, fn(&str) -> &'static [&'static str], &'a str, &'a [ErrorCode]);
        let rows: &[Row<'_>] = &[
            (
                "ecs",
                ecs::operation_errors,
                "CreateExpressGatewayService",
                &[
                    E::InvalidParameter,
                    E::ClusterNotFound,
                    E::UnsupportedFeature,
                    E::PlatformTaskDefinitionIncompatibility,
                    E::AccessDenied,
                    E::Server,
                ],
            ),
            (
                "ecs",
                ecs::operation_errors,
                "DescribeExpressGatewayService",
                &[E::ResourceNotFound, E::InvalidParameter],
            ),
            (
                "ecs",
                ecs::operation_errors,
                "UpdateExpressGatewayService",
                &[E::ServiceNotFound, E::ServiceNotActive, E::UnsupportedFeature, E::InvalidParameter],
            ),
            ("ecs", ecs::operation_errors, "DeleteExpressGatewayService", &[E::ServiceNotFound, E::ServiceNotActive]),
            (
                "ecs",
                ecs::operation_errors,
                "DeleteCluster",
                &[E::ClusterNotFound, E::ClusterContainsServices, E::ClusterContainsTasks],
            ),
            ("ecs", ecs::operation_errors, "ListTasks", &[E::ServiceNotFound, E::ClusterNotFound, E::InvalidParameter]),
            ("ecs", ecs::operation_errors, "DescribeTaskDefinition", &[E::Client, E::InvalidParameter]),
            ("ecs", ecs::operation_errors, "TagResource", &[E::ResourceNotFound, E::InvalidParameter]),
            ("ecs", ecs::operation_errors, "ListTagsForResource", &[E::InvalidParameter]),
            (
                "elasticloadbalancing",
                elbv2::operation_errors,
                "CreateRule",
                &[
                    E::ListenerNotFound,
                    E::PriorityInUse,
                    E::TooManyRules,
                    E::TooManyTags,
                    E::InvalidConfigurationRequest,
                    E::TargetGroupNotFound,
                    E::TooManyActions,
                    E::TooManyTargetGroups,
                    E::InvalidLoadBalancerAction,
                    E::ValidationError,
                ],
            ),
            (
                "elasticloadbalancing",
                elbv2::operation_errors,
                "ModifyRule",
                &[
                    E::RuleNotFound,
                    E::OperationNotPermitted,
                    E::TargetGroupNotFound,
                    E::TooManyActions,
                    E::InvalidLoadBalancerAction,
                    E::ValidationError,
                ],
            ),
            (
                "elasticloadbalancing",
                elbv2::operation_errors,
                "SetRulePriorities",
                &[E::RuleNotFound, E::PriorityInUse, E::OperationNotPermitted],
            ),
            (
                "elasticloadbalancing",
                elbv2::operation_errors,
                "ModifyTargetGroupAttributes",
                &[E::TargetGroupNotFound, E::InvalidConfigurationRequest, E::ValidationError],
            ),
            (
                "elasticloadbalancing",
                elbv2::operation_errors,
                "RegisterTargets",
                &[E::TargetGroupNotFound, E::InvalidTarget],
            ),
            (
                "elasticloadbalancing",
                elbv2::operation_errors,
                "AddTags",
                &[
                    E::DuplicateTagKeys,
                    E::TooManyTags,
                    E::LoadBalancerNotFound,
                    E::TargetGroupNotFound,
                    E::RuleNotFound,
                ],
            ),
            (
                "iam",
                iam::operation_errors,
                "CreateRole",
                &[
                    E::EntityAlreadyExists,
                    E::InvalidInput,
                    E::MalformedPolicyDocument,
                    E::IamLimitExceeded,
                    E::ServiceFailure,
                ],
            ),
            ("iam", iam::operation_errors, "DeleteRole", &[E::NoSuchEntity, E::DeleteConflict]),
            ("iam", iam::operation_errors, "AttachRolePolicy", &[E::NoSuchEntity, E::InvalidInput]),
            ("iam", iam::operation_errors, "TagRole", &[E::NoSuchEntity, E::InvalidInput, E::IamLimitExceeded]),
            ("iam", iam::operation_errors, "GetUser", &[E::NoSuchEntity, E::ValidationError]),
            (
                "sts",
                sts::operation_errors,
                "AssumeRole",
                &[E::AccessDenied, E::ValidationError, E::MalformedPolicyDocument],
            ),
            (
                "secretsmanager",
                secretsmanager::operation_errors,
                "DescribeSecret",
                &[E::ResourceNotFound, E::InvalidParameter, E::InternalServiceError],
            ),
            (
                "secretsmanager",
                secretsmanager::operation_errors,
                "TagResource",
                &[E::ResourceNotFound, E::InvalidRequest, E::InvalidParameter],
            ),
            (
                "secretsmanager",
                secretsmanager::operation_errors,
                "CreateSecret",
                &[E::ResourceExists, E::InvalidRequest, E::InvalidParameter, E::EncryptionFailure, E::Validation],
            ),
            (
                "ssm",
                ssm::operation_errors,
                "PutParameter",
                &[E::ParameterAlreadyExists, E::HierarchyLevelLimitExceeded, E::Validation, E::InternalServerError],
            ),
            ("ssm", ssm::operation_errors, "GetParameter", &[E::ParameterNotFound, E::ParameterVersionNotFound]),
            (
                "ssm",
                ssm::operation_errors,
                "GetParametersByPath",
                &[E::InvalidFilterKey, E::InvalidFilterOption, E::InvalidFilterValue, E::InvalidNextToken],
            ),
            (
                "logs",
                logs::operation_errors,
                "CreateLogGroup",
                &[E::LogsResourceAlreadyExists, E::InvalidParameter, E::LimitExceeded, E::LogsServiceUnavailable],
            ),
            (
                "logs",
                logs::operation_errors,
                "TagResource",
                &[E::ResourceNotFound, E::InvalidParameter, E::LogsTooManyTags],
            ),
            ("logs", logs::operation_errors, "TagLogGroup", &[E::ResourceNotFound, E::InvalidParameter]),
            ("logs", logs::operation_errors, "PutLogEvents", &[E::ResourceNotFound, E::InvalidParameter]),
            ("ec2", ec2::operation_errors, "CreateSubnet", &[E::Ec2InvalidSubnetConflict, E::Ec2InvalidVpcIdNotFound]),
            (
                "monitoring",
                cloudwatch::operation_errors,
                "PutMetricAlarm",
                &[
                    E::CwLimitExceeded,
                    E::ValidationError,
                    E::InvalidParameterValue,
                    E::MissingParameter,
                    E::InvalidParameterCombination,
                ],
            ),
            (
                "monitoring",
                cloudwatch::operation_errors,
                "SetAlarmState",
                &[E::CwResourceNotFound, E::CwInvalidFormat, E::ValidationError],
            ),
            (
                "monitoring",
                cloudwatch::operation_errors,
                "DescribeAlarms",
                &[E::InvalidNextToken, E::ValidationError, E::InvalidParameterCombination],
            ),
            (
                "monitoring",
                cloudwatch::operation_errors,
                "DescribeAlarmHistory",
                &[E::InvalidNextToken, E::ValidationError],
            ),
        ];
        for (service, errors, operation, codes) in rows {
            let modeled = errors(operation);
            assert!(!modeled.is_empty() || *service == "ec2" || *service == "sts", "{service}:{operation} is known");
            for code in *codes {
                assert!(
                    may_return(service, modeled, *code),
                    "{service}:{operation} may not answer {code}: {modeled:?}"
                );
            }
        }
        // What the fixes changed: these would reach typed SDKs as unhandled errors.
        let refused = [
            ("ecs", ecs::operation_errors("DescribeExpressGatewayService"), E::ServiceNotFound),
            ("ecs", ecs::operation_errors("ListTagsForResource"), E::ResourceNotFound),
            ("ecs", ecs::operation_errors("UpdateExpressGatewayService"), E::PlatformTaskDefinitionIncompatibility),
            ("elasticloadbalancing", elbv2::operation_errors("ModifyRule"), E::InvalidConfigurationRequest),
            ("elasticloadbalancing", elbv2::operation_errors("CreateRule"), E::DuplicateTagKeys),
            ("secretsmanager", secretsmanager::operation_errors("TagResource"), E::LimitExceeded),
            ("logs", logs::operation_errors("TagLogGroup"), E::LogsTooManyTags),
            ("iam", iam::operation_errors("GetUser"), E::Server),
            ("monitoring", cloudwatch::operation_errors("PutMetricAlarm"), E::CwResourceNotFound),
        ];
        for (service, modeled, code) in refused {
            assert!(!may_return(service, modeled, code), "{service} {code} must not pass: {modeled:?}");
        }
    }

    #[test]
    fn internal_failures_take_each_services_name() {
        for (service, code) in [
            ("ecs", "ServerException"),
            ("iam", "ServiceFailure"),
            ("ssm", "InternalServerError"),
            ("secretsmanager", "InternalServiceError"),
            ("logs", "ServiceUnavailableException"),
            ("elasticloadbalancing", "InternalFailure"),
            ("sts", "InternalFailure"),
            ("ec2", "InternalFailure"),
        ] {
            let e: Result<(), AwsError> = answer(service, "Op", &[code], Err(AwsError::internal("boom")));
            let e = e.expect_err("error");
            assert_eq!((e.code.name(), e.code.http_status()), (code, 500), "{service}");
        }
    }
}
