//! DescribeServiceRevisions: a revision's workload and, for Express services, `ecsManagedResources` (ingress
//! path, scaling, alarms, security groups, log groups) with their ARNs and statuses.

use berth_core::ErrorCode;
use berth_model::ecs::*;

use crate::{Control, ControlError};

pub(crate) fn describe(
    _c: &Control,
    _r: DescribeServiceRevisionsRequest,
) -> Result<DescribeServiceRevisionsResponse, ControlError> {
    Err(ControlError::code(ErrorCode::UnsupportedFeature, "not implemented yet"))
}
