//! The API backend: authenticated, decoded requests go to the control plane.

use std::sync::Arc;

use berth_api::{Backend, Caller, Credential, EventStream, Principal, Request, Response, StreamEvent};
use berth_control::Control;
use berth_control::logs::live_tail::LiveMessage;
use berth_model::logs::{Operation as LogsOperation, StartLiveTailRequest};

use crate::metrics::ServerMetrics;
use berth_core::AwsError;

pub struct ApiBackend {
    pub control: Arc<Control>,
    /// Where API latency is counted (`/metrics`).
    pub metrics: Arc<ServerMetrics>,
}

#[async_trait::async_trait]
impl Backend for ApiBackend {
    fn credential(&self, access_key_id: &str) -> Option<Credential> {
        match self.control.access_key(access_key_id) {
            Ok(Some(key)) => Some(Credential {
                secret_access_key: key.secret_access_key,
                principal: Principal {
                    arn: key.principal_arn,
                    account: self.control.account_id().into(),
                    user_id: key.user_id,
                },
                session_token: key.session_token,
                expires_at: key
                    .expires_at
                    .map(|t| std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t.max(0.0))),
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

    async fn handle_stream(&self, caller: Caller, request: Request) -> Result<EventStream, AwsError> {
        match request {
            Request::Logs(LogsOperation::StartLiveTail(r)) => self.live_tail(caller, r).await,
            other => Err(AwsError::new(
                berth_core::ErrorCode::UnknownOperation,
                format!("{} does not answer with an event stream", other.operation_name()),
            )),
        }
    }

    fn observe(&self, operation: &str, status: u16, latency: std::time::Duration) {
        self.metrics.observe_api(operation, status, latency);
    }

    async fn handle(&self, caller: Caller, request: Request) -> Result<Response, AwsError> {
        // The control plane's work is synchronous (SQLite, policy evaluation): it runs on a blocking thread,
        // one hand-off per request, so the async workers keep serving connections meanwhile.
        let control = Arc::clone(&self.control);
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || runtime.block_on(dispatch(&control, caller, request))).await.map_err(
            |e| {
                tracing::error!(error = %e, "an API request's handler failed");
                AwsError::internal("internal error")
            },
        )?
    }
}

impl ApiBackend {
    /// StartLiveTail: the session opens on a blocking thread (it reads the store), then streams from its task.
    async fn live_tail(&self, caller: Caller, r: StartLiveTailRequest) -> Result<EventStream, AwsError> {
        let control = Arc::clone(&self.control);
        let runtime = tokio::runtime::Handle::current();
        let mut tail = tokio::task::spawn_blocking(move || {
            let _runtime = runtime.enter();
            let identity = control
                .identify(&caller.principal.arn, &caller.principal.account, &caller.principal.user_id)
                .map_err(AwsError::from)?;
            control.start_live_tail(&identity, r)
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "a live tail's start failed");
            AwsError::internal("internal error")
        })??;
        Ok(EventStream::from_poll(move |cx| {
            tail.poll_next(cx).map(|m| {
                m.map(|m| match m {
                    LiveMessage::Event { event_type, payload } => {
                        StreamEvent::Event { event_type: event_type.into(), payload: payload.into() }
                    }
                    LiveMessage::Exception { exception_type, payload } => {
                        StreamEvent::Exception { exception_type: exception_type.into(), payload: payload.into() }
                    }
                })
            })
        }))
    }
}

async fn dispatch(control: &Control, caller: Caller, request: Request) -> Result<Response, AwsError> {
    // Resolve the caller's identity policies once; every handler authorizes against them.
    let identity = control
        .identify(&caller.principal.arn, &caller.principal.account, &caller.principal.user_id)
        .map_err(AwsError::from)?;
    match request {
        Request::Ecs(op) => control.handle_ecs(&identity, op).await.map(Response::Ecs),
        Request::Elbv2(op) => control.handle_elbv2(&identity, op).await.map(Response::Elbv2),
        Request::Sts(op) => control.handle_sts(&identity, op).await.map(Response::Sts),
        Request::SecretsManager(op) => control.handle_secretsmanager(&identity, op).await.map(Response::SecretsManager),
        Request::Ssm(op) => control.handle_ssm(&identity, op).await.map(Response::Ssm),
        Request::Iam(op) => control.handle_iam(&identity, op).await.map(Response::Iam),
        Request::Ec2(op) => control.handle_ec2(&identity, op).await.map(Response::Ec2),
        Request::Logs(op) => control.handle_logs(&identity, op).await.map(Response::Logs),
        Request::CloudWatch(op) => control.handle_cloudwatch(&identity, op).await.map(Response::CloudWatch),
        Request::ApplicationAutoScaling(op) => {
            control.handle_application_autoscaling(&identity, op).await.map(Response::ApplicationAutoScaling)
        }
    }
}
