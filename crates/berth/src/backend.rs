//! The API backend: authenticated, decoded requests go to the control plane.

use std::sync::Arc;

use berth_api::{Backend, Caller, Credential, Principal, Request, Response};
use berth_control::{CallerIdentity, Control};
use berth_core::{AwsError, ErrorCode};

pub struct ApiBackend {
    pub control: Arc<Control>,
}

#[async_trait::async_trait]
impl Backend for ApiBackend {
    fn credential(&self, access_key_id: &str) -> Option<Credential> {
        match self.control.credential(access_key_id) {
            Ok(Some(row)) => Some(Credential {
                secret_access_key: row.secret_access_key,
                principal: Principal {
                    arn: row.principal_arn,
                    account: self.control.account_id().into(),
                    user_id: row.user_id,
                },
                session_token: None,
                expires_at: None,
            }),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "credential lookup failed");
                None
            }
        }
    }

    fn region(&self) -> String {
        self.control.region().to_string()
    }

    async fn handle(&self, caller: Caller, request: Request) -> Result<Response, AwsError> {
        let identity = CallerIdentity {
            principal_arn: caller.principal.arn,
            account: caller.principal.account,
            user_id: caller.principal.user_id,
        };
        match request {
            Request::Ecs(op) => self.control.handle_ecs(&identity, op).await.map(Response::Ecs),
            Request::Sts(op) => self.control.handle_sts(&identity, op).await.map(Response::Sts),
            Request::SecretsManager(op) => {
                self.control.handle_secretsmanager(&identity, op).await.map(Response::SecretsManager)
            }
            Request::Ssm(op) => self.control.handle_ssm(&identity, op).await.map(Response::Ssm),
            other => Err(AwsError::new(
                ErrorCode::NotImplemented,
                format!("{}:{} is not implemented yet", other.service_name(), other.operation_name()),
            )),
        }
    }
}
