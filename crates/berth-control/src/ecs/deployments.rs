//! ListServiceDeployments, DescribeServiceDeployments, StopServiceDeployment and ContinueServiceDeployment:
//! the deployments rows rendered as ECS's shapes, and a user's stop or hook decision written for the rollout
//! to act on.

use berth_core::ErrorCode;
use berth_model::ecs::*;

use crate::{Control, ControlError};

fn not_yet() -> ControlError {
    ControlError::code(ErrorCode::UnsupportedFeature, "not implemented yet")
}

pub(crate) fn list(
    _c: &Control,
    _r: ListServiceDeploymentsRequest,
) -> Result<ListServiceDeploymentsResponse, ControlError> {
    Err(not_yet())
}

pub(crate) fn describe(
    _c: &Control,
    _r: DescribeServiceDeploymentsRequest,
) -> Result<DescribeServiceDeploymentsResponse, ControlError> {
    Err(not_yet())
}

pub(crate) fn stop(
    _c: &Control,
    _r: StopServiceDeploymentRequest,
) -> Result<StopServiceDeploymentResponse, ControlError> {
    Err(not_yet())
}

pub(crate) fn continue_(
    _c: &Control,
    _r: ContinueServiceDeploymentRequest,
) -> Result<ContinueServiceDeploymentResponse, ControlError> {
    Err(not_yet())
}
