//! Authorization: where IAM policy evaluation plugs in.
//!
//! Every operation is authorized here before it runs, with its IAM action name (`ecs:CreateCluster`).
//! Until IAM lands, only the account's root user exists, and root is allowed everything; a caller of any
//! other account is refused.

use berth_core::{AwsError, ErrorCode};

use crate::CallerIdentity;

pub fn authorize(caller: &CallerIdentity, action: &str) -> Result<(), AwsError> {
    if caller.principal_arn == format!("arn:aws:iam::{}:root", caller.account) {
        return Ok(());
    }
    Err(AwsError::new(
        ErrorCode::AccessDenied,
        format!("User: {} is not authorized to perform: {action}", caller.principal_arn),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_allowed_others_are_not() {
        let root = CallerIdentity {
            principal_arn: "arn:aws:iam::123456789012:root".into(),
            account: "123456789012".into(),
            user_id: String::new(),
        };
        assert!(authorize(&root, "ecs:CreateCluster").is_ok());
        let other = CallerIdentity {
            principal_arn: "arn:aws:iam::123456789012:user/bob".into(),
            account: "123456789012".into(),
            user_id: "AIDAEXAMPLE".into(),
        };
        let e = authorize(&other, "ecs:CreateCluster").expect_err("denied");
        assert_eq!(e.code, ErrorCode::AccessDenied);
        assert!(e.message.contains("ecs:CreateCluster"));
    }
}
