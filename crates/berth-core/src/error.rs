//! The one exhaustive mapping from berth's error codes to AWS error names and HTTP statuses.
//!
//! Every library error that can reach a client is converted into an [`AwsError`] at the boundary where it
//! becomes visible; the wire layer only ever renders `AwsError`s. Adding a code means adding it to the
//! `match` below, which the compiler enforces.

use std::fmt;

/// An AWS error code berth can return. The wire name is [`ErrorCode::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    // Authentication and protocol errors shared by every service.
    IncompleteSignature,
    InvalidSignature,
    /// Query-protocol spelling of `InvalidSignature`.
    SignatureDoesNotMatch,
    UnrecognizedClient,
    /// Query-protocol spelling of `UnrecognizedClient`.
    InvalidClientTokenId,
    MissingAuthenticationToken,
    ExpiredToken,
    /// Query-protocol "request is too old/too far in the future".
    RequestExpired,
    AccessDenied,
    Serialization,
    UnknownOperation,
    Validation,
    InternalFailure,
    /// The request body is larger than the endpoint accepts (HTTP 413).
    RequestEntityTooLarge,
    // ECS.
    Server,
    Client,
    InvalidParameter,
    ClusterNotFound,
    ClusterContainsServices,
    ClusterContainsTasks,
    ServiceNotFound,
    ServiceNotActive,
    ResourceNotFound,
    ResourceInUse,
    UnsupportedFeature,
    PlatformUnknown,
    PlatformTaskDefinitionIncompatibility,
    LimitExceeded,
    /// ECS's `ConflictException` (StopServiceDeployment on a deployment that has finished).
    Conflict,
    /// ECS's `ServiceDeploymentNotFoundException`.
    ServiceDeploymentNotFound,
    // Query and EC2 protocols (form-encoded requests, XML responses).
    /// A Query request violates the model (missing required member, wrong type).
    ValidationError,
    /// The `Action` names no operation of the service (or not for this `Version`), or one berth does not
    /// implement: AWS's answer to an unknown action (HTTP 400).
    InvalidAction,
    /// The request has no `Action` parameter.
    MissingAction,
    /// The form parameters cannot be decoded.
    MalformedQueryString,
    /// Query/EC2 spelling of `MissingAuthenticationToken`.
    MissingAuthenticationTokenQuery,
    /// Query/EC2 spelling of `IncompleteSignature`.
    IncompleteSignatureQuery,
    /// Query/EC2 spelling of `ExpiredToken` (IAM, ELBv2, EC2; STS models `ExpiredTokenException`).
    ExpiredTokenQuery,
    /// Query spelling of `AccessDenied` (the Query codec also renders `AccessDenied` this way).
    AccessDeniedQuery,
    // EC2.
    /// EC2's answer to unknown keys and signatures that do not verify.
    AuthFailure,
    /// EC2 spelling of `AccessDenied` (the EC2 codec also renders `AccessDenied` this way).
    UnauthorizedOperation,
    MissingParameter,
    InvalidParameterValue,
    InvalidParameterCombination,
    Ec2InvalidGroupNotFound,
    Ec2InvalidGroupDuplicate,
    Ec2InvalidGroupIdMalformed,
    Ec2InvalidPermissionDuplicate,
    Ec2InvalidPermissionNotFound,
    Ec2InvalidSecurityGroupRuleIdNotFound,
    Ec2InvalidVpcIdNotFound,
    Ec2InvalidSubnetIdNotFound,
    Ec2InvalidId,
    Ec2DependencyViolation,
    Ec2SecurityGroupLimitExceeded,
    Ec2RulesPerSecurityGroupLimitExceeded,
    /// EC2 security groups: the default group cannot be deleted.
    Ec2CannotDelete,
    // EC2 subnets (lb: CreateSubnet / ModifySubnetAttribute).
    /// The CIDR block is not inside the VPC's or has an invalid size.
    Ec2InvalidSubnetRange,
    /// The CIDR block overlaps another subnet's.
    Ec2InvalidSubnetConflict,
    // ELBv2 (codes from the botocore `elbv2` model).
    DuplicateTagKeys,
    HealthUnavailable,
    IncompatibleProtocols,
    InvalidConfigurationRequest,
    InvalidLoadBalancerAction,
    InvalidTarget,
    ListenerNotFound,
    LoadBalancerNotFound,
    OperationNotPermitted,
    PriorityInUse,
    RuleNotFound,
    TargetGroupAssociationLimit,
    TargetGroupNotFound,
    TooManyActions,
    TooManyRegistrationsForTargetId,
    TooManyRules,
    TooManyTags,
    TooManyTargetGroups,
    TooManyTargets,
    TooManyUniqueTargetGroupsPerLoadBalancer,
    TrustStoreNotFound,
    UnsupportedProtocol,
    // IAM and STS (codes from the botocore `iam` and `sts` models; STS's ExpiredTokenException is `ExpiredToken`).
    ConcurrentModification,
    DeleteConflict,
    EntityAlreadyExists,
    InvalidInput,
    /// IAM's `LimitExceeded` (ECS's is `LimitExceeded`, spelled `LimitExceededException`).
    IamLimitExceeded,
    MalformedPolicyDocument,
    NoSuchEntity,
    PolicyNotAttachable,
    ServiceFailure,
    UnmodifiableEntity,
    PackedPolicyTooLarge,
    RegionDisabled,
    // Secrets Manager (InvalidParameter, ResourceNotFound and LimitExceeded above are shared).
    DecryptionFailure,
    EncryptionFailure,
    InternalServiceError,
    InvalidNextTokenException,
    InvalidRequest,
    /// Secrets Manager's spelling; IAM's is `MalformedPolicyDocument`.
    MalformedPolicyDocumentException,
    PreconditionNotMet,
    ResourceExists,
    // SSM Parameter Store.
    HierarchyLevelLimitExceeded,
    HierarchyTypeMismatch,
    InternalServerError,
    InvalidAllowedPattern,
    InvalidFilterKey,
    InvalidFilterOption,
    InvalidFilterValue,
    InvalidKeyId,
    /// SSM's spelling; Secrets Manager's is `InvalidNextTokenException`.
    InvalidNextToken,
    ParameterAlreadyExists,
    ParameterLimitExceeded,
    ParameterMaxVersionLimitExceeded,
    ParameterNotFound,
    ParameterPatternMismatch,
    ParameterVersionNotFound,
    TooManyUpdates,
    UnsupportedParameterType,
    // CloudWatch Logs (InvalidParameter, ResourceNotFound, LimitExceeded and Validation above are shared).
    LogsResourceAlreadyExists,
    /// Logs' spelling; ELBv2's is `TooManyTags`.
    LogsTooManyTags,
    /// Logs' internal failure (its models list it for every operation).
    LogsServiceUnavailable,
    // Application Auto Scaling (Validation, LimitExceeded, ResourceNotFound and the Logs TooManyTags are shared).
    ObjectNotFound,
    ConcurrentUpdate,
    InternalService,
    // CloudWatch (`monitoring`): names as the model's shapes (JSON `__type`); the Query codes come from the model.
    /// GetDashboard / DeleteDashboards on a dashboard that does not exist (Query code `ResourceNotFound`).
    DashboardNotFound,
    /// PutDashboard with an invalid body (Query code `InvalidParameterInput`).
    DashboardInvalidInput,
    /// CloudWatch's `ResourceNotFound` (SetAlarmState on an alarm that does not exist).
    CwResourceNotFound,
    /// CloudWatch's `InvalidFormatFault` (SetAlarmState's StateReasonData is not JSON; Query code `InvalidFormat`).
    CwInvalidFormat,
    /// CloudWatch's `LimitExceededFault` (PutMetricAlarm beyond the alarm quota; Query code `LimitExceeded`).
    CwLimitExceeded,
}

impl ErrorCode {
    /// The error's name on the wire (`__type` in JSON protocols, `Code` in Query/XML).
    pub fn name(self) -> &'static str {
        use ErrorCode::*;
        match self {
            IncompleteSignature => "IncompleteSignatureException",
            InvalidSignature => "InvalidSignatureException",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            UnrecognizedClient => "UnrecognizedClientException",
            InvalidClientTokenId => "InvalidClientTokenId",
            MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ExpiredToken => "ExpiredTokenException",
            RequestExpired => "RequestExpired",
            AccessDenied => "AccessDeniedException",
            Serialization => "SerializationException",
            UnknownOperation => "UnknownOperationException",
            Validation => "ValidationException",
            InternalFailure => "InternalFailure",
            RequestEntityTooLarge => "RequestEntityTooLargeException",
            Server => "ServerException",
            Client => "ClientException",
            InvalidParameter => "InvalidParameterException",
            ClusterNotFound => "ClusterNotFoundException",
            ClusterContainsServices => "ClusterContainsServicesException",
            ClusterContainsTasks => "ClusterContainsTasksException",
            ServiceNotFound => "ServiceNotFoundException",
            ServiceNotActive => "ServiceNotActiveException",
            ResourceNotFound => "ResourceNotFoundException",
            ResourceInUse => "ResourceInUseException",
            UnsupportedFeature => "UnsupportedFeatureException",
            PlatformUnknown => "PlatformUnknownException",
            PlatformTaskDefinitionIncompatibility => "PlatformTaskDefinitionIncompatibilityException",
            LimitExceeded => "LimitExceededException",
            Conflict => "ConflictException",
            ServiceDeploymentNotFound => "ServiceDeploymentNotFoundException",
            ValidationError => "ValidationError",
            InvalidAction => "InvalidAction",
            MissingAction => "MissingAction",
            MalformedQueryString => "MalformedQueryString",
            MissingAuthenticationTokenQuery => "MissingAuthenticationToken",
            IncompleteSignatureQuery => "IncompleteSignature",
            ExpiredTokenQuery => "ExpiredToken",
            AccessDeniedQuery => "AccessDenied",
            AuthFailure => "AuthFailure",
            UnauthorizedOperation => "UnauthorizedOperation",
            MissingParameter => "MissingParameter",
            InvalidParameterValue => "InvalidParameterValue",
            InvalidParameterCombination => "InvalidParameterCombination",
            Ec2InvalidGroupNotFound => "InvalidGroup.NotFound",
            Ec2InvalidGroupDuplicate => "InvalidGroup.Duplicate",
            Ec2InvalidGroupIdMalformed => "InvalidGroupId.Malformed",
            Ec2InvalidPermissionDuplicate => "InvalidPermission.Duplicate",
            Ec2InvalidPermissionNotFound => "InvalidPermission.NotFound",
            Ec2InvalidSecurityGroupRuleIdNotFound => "InvalidSecurityGroupRuleId.NotFound",
            Ec2InvalidVpcIdNotFound => "InvalidVpcID.NotFound",
            Ec2InvalidSubnetIdNotFound => "InvalidSubnetID.NotFound",
            Ec2InvalidId => "InvalidID",
            Ec2DependencyViolation => "DependencyViolation",
            Ec2SecurityGroupLimitExceeded => "SecurityGroupLimitExceeded",
            Ec2RulesPerSecurityGroupLimitExceeded => "RulesPerSecurityGroupLimitExceeded",
            Ec2CannotDelete => "CannotDelete",
            Ec2InvalidSubnetRange => "InvalidSubnet.Range",
            Ec2InvalidSubnetConflict => "InvalidSubnet.Conflict",
            DuplicateTagKeys => "DuplicateTagKeys",
            HealthUnavailable => "HealthUnavailable",
            IncompatibleProtocols => "IncompatibleProtocols",
            InvalidConfigurationRequest => "InvalidConfigurationRequest",
            InvalidLoadBalancerAction => "InvalidLoadBalancerAction",
            InvalidTarget => "InvalidTarget",
            ListenerNotFound => "ListenerNotFound",
            LoadBalancerNotFound => "LoadBalancerNotFound",
            OperationNotPermitted => "OperationNotPermitted",
            PriorityInUse => "PriorityInUse",
            RuleNotFound => "RuleNotFound",
            TargetGroupAssociationLimit => "TargetGroupAssociationLimit",
            TargetGroupNotFound => "TargetGroupNotFound",
            TooManyActions => "TooManyActions",
            TooManyRegistrationsForTargetId => "TooManyRegistrationsForTargetId",
            TooManyRules => "TooManyRules",
            TooManyTags => "TooManyTags",
            TooManyTargetGroups => "TooManyTargetGroups",
            TooManyTargets => "TooManyTargets",
            TooManyUniqueTargetGroupsPerLoadBalancer => "TooManyUniqueTargetGroupsPerLoadBalancer",
            TrustStoreNotFound => "TrustStoreNotFound",
            UnsupportedProtocol => "UnsupportedProtocol",
            ConcurrentModification => "ConcurrentModification",
            DeleteConflict => "DeleteConflict",
            EntityAlreadyExists => "EntityAlreadyExists",
            InvalidInput => "InvalidInput",
            IamLimitExceeded => "LimitExceeded",
            MalformedPolicyDocument => "MalformedPolicyDocument",
            NoSuchEntity => "NoSuchEntity",
            PolicyNotAttachable => "PolicyNotAttachable",
            ServiceFailure => "ServiceFailure",
            UnmodifiableEntity => "UnmodifiableEntity",
            PackedPolicyTooLarge => "PackedPolicyTooLarge",
            RegionDisabled => "RegionDisabledException",
            DecryptionFailure => "DecryptionFailure",
            EncryptionFailure => "EncryptionFailure",
            InternalServiceError => "InternalServiceError",
            InvalidNextTokenException => "InvalidNextTokenException",
            InvalidRequest => "InvalidRequestException",
            MalformedPolicyDocumentException => "MalformedPolicyDocumentException",
            PreconditionNotMet => "PreconditionNotMetException",
            ResourceExists => "ResourceExistsException",
            HierarchyLevelLimitExceeded => "HierarchyLevelLimitExceededException",
            HierarchyTypeMismatch => "HierarchyTypeMismatchException",
            InternalServerError => "InternalServerError",
            InvalidAllowedPattern => "InvalidAllowedPatternException",
            InvalidFilterKey => "InvalidFilterKey",
            InvalidFilterOption => "InvalidFilterOption",
            InvalidFilterValue => "InvalidFilterValue",
            InvalidKeyId => "InvalidKeyId",
            InvalidNextToken => "InvalidNextToken",
            ParameterAlreadyExists => "ParameterAlreadyExists",
            ParameterLimitExceeded => "ParameterLimitExceeded",
            ParameterMaxVersionLimitExceeded => "ParameterMaxVersionLimitExceeded",
            ParameterNotFound => "ParameterNotFound",
            ParameterPatternMismatch => "ParameterPatternMismatchException",
            ParameterVersionNotFound => "ParameterVersionNotFound",
            TooManyUpdates => "TooManyUpdates",
            UnsupportedParameterType => "UnsupportedParameterType",
            LogsResourceAlreadyExists => "ResourceAlreadyExistsException",
            DashboardNotFound => "DashboardNotFoundError",
            DashboardInvalidInput => "DashboardInvalidInputError",
            LogsTooManyTags => "TooManyTagsException",
            LogsServiceUnavailable => "ServiceUnavailableException",
            ObjectNotFound => "ObjectNotFoundException",
            ConcurrentUpdate => "ConcurrentUpdateException",
            InternalService => "InternalServiceException",
            CwResourceNotFound => "ResourceNotFound",
            CwInvalidFormat => "InvalidFormatFault",
            CwLimitExceeded => "LimitExceededFault",
        }
    }

    /// The HTTP status AWS answers with for this code.
    pub fn http_status(self) -> u16 {
        use ErrorCode::*;
        match self {
            IncompleteSignature
            | InvalidSignature
            | UnrecognizedClient
            | ExpiredToken
            | AccessDenied
            | Serialization
            | UnknownOperation
            | Validation
            | Client
            | InvalidParameter
            | ClusterNotFound
            | ClusterContainsServices
            | ClusterContainsTasks
            | ServiceNotFound
            | ServiceNotActive
            | ResourceNotFound
            | ResourceInUse
            | UnsupportedFeature
            | PlatformUnknown
            | PlatformTaskDefinitionIncompatibility
            | LimitExceeded
            | Conflict
            | ServiceDeploymentNotFound
            | RequestExpired => 400,
            SignatureDoesNotMatch | InvalidClientTokenId | MissingAuthenticationToken => 403,
            RequestEntityTooLarge => 413,
            InternalFailure | Server => 500,
            ValidationError
            | InvalidAction
            | MissingAction
            | MalformedQueryString
            | IncompleteSignatureQuery
            | ExpiredTokenQuery
            | MissingParameter
            | InvalidParameterValue
            | InvalidParameterCombination
            | Ec2InvalidGroupNotFound
            | Ec2InvalidGroupDuplicate
            | Ec2InvalidGroupIdMalformed
            | Ec2InvalidPermissionDuplicate
            | Ec2InvalidPermissionNotFound
            | Ec2InvalidSecurityGroupRuleIdNotFound
            | Ec2InvalidVpcIdNotFound
            | Ec2InvalidSubnetIdNotFound
            | Ec2InvalidId
            | Ec2DependencyViolation
            | Ec2SecurityGroupLimitExceeded
            | Ec2RulesPerSecurityGroupLimitExceeded
            | Ec2CannotDelete
            | Ec2InvalidSubnetRange
            | Ec2InvalidSubnetConflict
            | DuplicateTagKeys
            | IncompatibleProtocols
            | InvalidConfigurationRequest
            | InvalidLoadBalancerAction
            | InvalidTarget
            | ListenerNotFound
            | LoadBalancerNotFound
            | OperationNotPermitted
            | PriorityInUse
            | RuleNotFound
            | TargetGroupAssociationLimit
            | TargetGroupNotFound
            | TooManyActions
            | TooManyRegistrationsForTargetId
            | TooManyRules
            | TooManyTags
            | TooManyTargetGroups
            | TooManyTargets
            | TooManyUniqueTargetGroupsPerLoadBalancer
            | TrustStoreNotFound
            | UnsupportedProtocol
            | InvalidInput
            | MalformedPolicyDocument
            | PolicyNotAttachable
            | UnmodifiableEntity
            | PackedPolicyTooLarge
            | DecryptionFailure
            | EncryptionFailure
            | InvalidNextTokenException
            | InvalidRequest
            | MalformedPolicyDocumentException
            | PreconditionNotMet
            | ResourceExists
            | HierarchyLevelLimitExceeded
            | HierarchyTypeMismatch
            | InvalidAllowedPattern
            | InvalidFilterKey
            | InvalidFilterOption
            | InvalidFilterValue
            | InvalidKeyId
            | InvalidNextToken
            | ParameterAlreadyExists
            | ParameterLimitExceeded
            | ParameterMaxVersionLimitExceeded
            | ParameterNotFound
            | ParameterPatternMismatch
            | ParameterVersionNotFound
            | TooManyUpdates
            | UnsupportedParameterType
            | LogsResourceAlreadyExists
            | LogsTooManyTags
            | ObjectNotFound
            | ConcurrentUpdate
            | DashboardInvalidInput
            | CwInvalidFormat
            | CwLimitExceeded => 400,
            AuthFailure => 401,
            MissingAuthenticationTokenQuery | AccessDeniedQuery | UnauthorizedOperation | RegionDisabled => 403,
            NoSuchEntity | DashboardNotFound | CwResourceNotFound => 404,
            ConcurrentModification | DeleteConflict | EntityAlreadyExists | IamLimitExceeded => 409,
            HealthUnavailable
            | ServiceFailure
            | InternalServiceError
            | InternalServerError
            | LogsServiceUnavailable
            | InternalService => 500,
        }
    }

    /// Whether any operation of any service may return this code, whatever its model lists: AWS's common errors
    /// (authentication and signatures, access denied, validation, an unknown action or operation, a malformed
    /// request, a request too large, an internal failure). Every other code must be listed by the operation.
    pub fn is_common(self) -> bool {
        use ErrorCode::*;
        matches!(
            self,
            IncompleteSignature
                | InvalidSignature
                | SignatureDoesNotMatch
                | UnrecognizedClient
                | InvalidClientTokenId
                | MissingAuthenticationToken
                | ExpiredToken
                | RequestExpired
                | AccessDenied
                | Serialization
                | UnknownOperation
                | Validation
                | InternalFailure
                | RequestEntityTooLarge
                | ValidationError
                | InvalidAction
                | MissingAction
                | MalformedQueryString
                | MissingAuthenticationTokenQuery
                | IncompleteSignatureQuery
                | ExpiredTokenQuery
                | AccessDeniedQuery
                | AuthFailure
                | UnauthorizedOperation
                | MissingParameter
                | InvalidParameterValue
                | InvalidParameterCombination
        )
    }

    /// Whether the fault is the sender's (`Sender`) or the server's (`Receiver`), as Query/XML errors say.
    pub fn is_sender_fault(self) -> bool {
        self.http_status() < 500
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error as a client sees it: a code and a message a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    pub code: ErrorCode,
    pub message: String,
}

impl AwsError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidParameter, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Server, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_faults_are_5xx_and_client_faults_4xx() {
        assert_eq!(ErrorCode::Server.http_status(), 500);
        assert!(!ErrorCode::InternalFailure.is_sender_fault());
        assert_eq!(ErrorCode::InvalidSignature.http_status(), 400);
        assert!(ErrorCode::ServiceNotFound.is_sender_fault());
        assert_eq!(ErrorCode::ServiceNotFound.name(), "ServiceNotFoundException");
    }
}
