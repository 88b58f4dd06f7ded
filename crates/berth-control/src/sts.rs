//! STS: who is calling. `AssumeRole` arrives with IAM roles (a later issue).

use berth_core::{AwsError, ErrorCode};
use berth_model::sts::{GetCallerIdentityResponse, Operation, Output};

use crate::{CallerIdentity, Control, authz};

impl Control {
    /// Handles one decoded STS operation for an authenticated caller.
    pub async fn handle_sts(&self, caller: &CallerIdentity, op: Operation) -> Result<Output, AwsError> {
        match op {
            // AWS answers GetCallerIdentity for every valid credential, whatever its policies say.
            Operation::GetCallerIdentity(_) => Ok(Output::GetCallerIdentity(GetCallerIdentityResponse {
                user_id: Some(caller.user_id.clone()),
                account: Some(caller.account.clone()),
                arn: Some(caller.principal_arn.clone()),
            })),
            Operation::AssumeRole(_) => {
                authz::authorize(caller, "sts:AssumeRole")?;
                Err(AwsError::new(
                    ErrorCode::NotImplemented,
                    "sts:AssumeRole needs IAM roles, which berth does not have yet.",
                ))
            }
        }
    }
}
