//! RegisterTaskDefinition, DeregisterTaskDefinition and DeleteTaskDefinitions, and a task definition turned
//! into an Express revision's configuration (`taskDefinitionArn` on Create/UpdateExpressGatewayService).

use berth_core::ErrorCode;
use berth_model::ecs::*;

use crate::{CallerIdentity, Control, ControlError};

fn not_yet() -> ControlError {
    ControlError::code(ErrorCode::UnsupportedFeature, "not implemented yet")
}

pub(crate) fn register(
    _c: &Control,
    _caller: &CallerIdentity,
    _r: RegisterTaskDefinitionRequest,
) -> Result<RegisterTaskDefinitionResponse, ControlError> {
    Err(not_yet())
}

pub(crate) fn deregister(
    _c: &Control,
    _r: DeregisterTaskDefinitionRequest,
) -> Result<DeregisterTaskDefinitionResponse, ControlError> {
    Err(not_yet())
}

pub(crate) fn delete(
    _c: &Control,
    _r: DeleteTaskDefinitionsRequest,
) -> Result<DeleteTaskDefinitionsResponse, ControlError> {
    Err(not_yet())
}
