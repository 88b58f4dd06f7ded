//! Application Auto Scaling (2016-02-06, `handle_application_autoscaling`): scalable targets, scaling policies
//! (target tracking with the alarms it owns, step scaling), scheduled actions and scaling activities, for
//! `ecs:service:DesiredCount`; and the alarm actions that name a scaling policy.

use berth_core::{AwsError, ErrorCode};
use berth_model::application_autoscaling::{Operation, Output};

use crate::{CallerIdentity, Control};

impl Control {
    /// Handles one decoded Application Auto Scaling operation for an authenticated caller.
    pub async fn handle_application_autoscaling(
        &self,
        _caller: &CallerIdentity,
        op: Operation,
    ) -> Result<Output, AwsError> {
        // Contract placeholder (issue 11 in progress): replaced by the Application Auto Scaling API.
        Err(AwsError::new(ErrorCode::InvalidParameter, format!("{} is not served yet", op.name())))
    }
}
