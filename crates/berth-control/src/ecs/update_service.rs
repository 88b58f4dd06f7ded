//! UpdateService on an Express service's ECS service: its deployment configuration (every strategy of the
//! current ECS model), desired count, a forced new deployment, a task definition.

use berth_core::ErrorCode;
use berth_model::ecs::*;

use crate::{CallerIdentity, Control, ControlError};

pub(crate) fn update(
    _c: &Control,
    _caller: &CallerIdentity,
    _r: UpdateServiceRequest,
) -> Result<UpdateServiceResponse, ControlError> {
    Err(ControlError::code(ErrorCode::UnsupportedFeature, "not implemented yet"))
}
