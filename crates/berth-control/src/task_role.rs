//! Task roles: a task whose service has a `taskRoleArn` gets credentials for that role through an ECS-style
//! credentials endpoint. At launch the task receives `AWS_CONTAINER_CREDENTIALS_FULL_URI` (naming a fresh
//! credential id) and `AWS_CONTAINER_AUTHORIZATION_TOKEN`; the endpoint (served by the binary) hands the id
//! and token to [`Control::task_credentials`], which answers with a role session named after the task id,
//! issued as `ecs-tasks.amazonaws.com` would assume the role and renewed well before it expires. A task without
//! a task role gets none of this. Only a hash of the task's token is stored, and the session's secrets sealed
//! ([`crate::sealed_credentials`]).

use berth_iam::{Policy, PolicyKind, Principal};
use berth_runtime::TaskSpec;
use berth_store::{StsSessionRow, TaskCredentialRow, Tx};
use serde::Serialize;

use crate::iam::access::role_by_arn;
use crate::names::{new_id, new_secret};
use crate::sealed_credentials::{token_hash, token_matches};
use crate::{Control, ControlError, now};

/// The service principal a task role must trust.
pub const TASKS_SERVICE: &str = "ecs-tasks.amazonaws.com";
/// The path prefix of the credentials endpoint (the ECS agent's `/v2/credentials/<id>`).
pub const CREDENTIALS_PATH: &str = "/v2/credentials/";
/// How long a task-role session lasts (bounded by the role's `MaxSessionDuration`).
pub const SESSION_SECS: f64 = 6.0 * 3600.0;
/// A served session with less than this left is replaced by a fresh one (SDKs refresh 15 minutes ahead).
pub const RENEW_BEFORE_SECS: f64 = 30.0 * 60.0;

/// The ECS credentials endpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub token: String,
    /// `2026-11-27T10:13:39Z`.
    pub expiration: String,
    pub role_arn: String,
}

/// Why the endpoint refuses; the binary maps these to HTTP statuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskCredentialsError {
    /// Unknown credential id, or the task has stopped (404).
    #[error("no credentials for this id")]
    NotFound,
    /// Missing or wrong `Authorization` token (401).
    #[error("the authorization token does not match")]
    Unauthorized,
    /// The role is gone or no longer trusts `ecs-tasks.amazonaws.com` (403).
    #[error("{0}")]
    Denied(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Control {
    /// Gives a starting task its credential id and token, if it has a task role and berth serves the endpoint.
    /// Runs in the transaction that writes the task row.
    pub(crate) fn grant_task_role(
        &self,
        tx: &Tx<'_>,
        role_arn: Option<&str>,
        spec: &mut TaskSpec,
        t: f64,
    ) -> Result<(), ControlError> {
        let (Some(role_arn), Some(endpoint)) = (role_arn, &self.config.task_endpoint) else { return Ok(()) };
        let token = new_secret(48);
        let row = TaskCredentialRow {
            credential_id: berth_core::ids::uuid4(),
            task_id: spec.task_id.clone(),
            role_arn: role_arn.to_owned(),
            token_hash: token_hash(&token),
            access_key_id: None,
            created_at: t,
        };
        tx.task_credentials_prune()?;
        tx.task_credential_insert(&row)?;
        let env = &mut spec.environment;
        let mut set = |k: &str, v: String, overwrite: bool| {
            if overwrite {
                env.retain(|(name, _)| name != k);
            } else if env.iter().any(|(name, _)| name == k) {
                return;
            }
            env.push((k.to_owned(), v));
        };
        let uri = format!("{}{CREDENTIALS_PATH}{}", endpoint.credentials_base.trim_end_matches('/'), row.credential_id);
        set("AWS_CONTAINER_CREDENTIALS_FULL_URI", uri, true);
        set("AWS_CONTAINER_AUTHORIZATION_TOKEN", token, true);
        set("AWS_REGION", self.names.region.clone(), false);
        set("AWS_DEFAULT_REGION", self.names.region.clone(), false);
        if let Some(api) = &endpoint.api_url {
            set("AWS_ENDPOINT_URL", api.clone(), false);
        }
        Ok(())
    }

    /// Answers the credentials endpoint: the task's current role session, issuing a new one when none is
    /// served yet or the served one is close to expiring.
    pub fn task_credentials(&self, credential_id: &str, token: &str) -> Result<TaskCredentials, TaskCredentialsError> {
        self.task_credentials_at(credential_id, token, now())
    }

    /// [`Control::task_credentials`] at time `t` (seconds since the epoch): tests drive renewal with it.
    pub fn task_credentials_at(
        &self,
        credential_id: &str,
        token: &str,
        t: f64,
    ) -> Result<TaskCredentials, TaskCredentialsError> {
        let internal = |e: ControlError| TaskCredentialsError::Internal(e.to_string());
        let account = self.names.account.clone();
        self.tx(|tx| {
            let Some(grant) = tx.task_credential_get(credential_id)? else {
                return Ok(Err(TaskCredentialsError::NotFound));
            };
            if !token_matches(&grant.token_hash, token) {
                return Ok(Err(TaskCredentialsError::Unauthorized));
            }
            match tx.task_get(&grant.task_id)? {
                Some(task) if task.last_status < berth_core::status::TaskStatus::Stopped => {}
                _ => return Ok(Err(TaskCredentialsError::NotFound)),
            }
            let Some(role) = role_by_arn(tx, &account, &grant.role_arn)? else {
                return Ok(Err(TaskCredentialsError::Denied(format!(
                    "The task role {} does not exist.",
                    grant.role_arn
                ))));
            };
            let trusted = Policy::parse(&role.trust_policy, PolicyKind::Trust).is_ok_and(|trust| {
                berth_iam::trust_allows(&trust, &role.arn, &Principal::Service(TASKS_SERVICE.into())).is_allowed()
            });
            if !trusted {
                return Ok(Err(TaskCredentialsError::Denied(format!(
                    "The trust policy of the task role {} does not allow {TASKS_SERVICE} to call sts:AssumeRole.",
                    role.arn
                ))));
            }
            let current = match &grant.access_key_id {
                Some(key) => tx.sts_session_get(key)?,
                None => None,
            };
            // The served session while it is far from expiring (and opens: a replaced key file means a new one).
            let reuse = current
                .filter(|s| s.role_id == role.role_id && s.expires_at - t > RENEW_BEFORE_SECS)
                .and_then(|s| self.open_session(&s).ok().map(|(secret, token)| (s, secret, token)));
            let (session, secret, session_token) = match reuse {
                Some(reused) => reused,
                None => {
                    let duration = SESSION_SECS.min(role.max_session_duration as f64);
                    let access_key_id = new_id("ASIA", 16);
                    let secret = new_secret(40);
                    let session_token = format!("IQoJb3JpZ2luX2Vj{}", new_secret(320));
                    let s = StsSessionRow {
                        sealed: self.seal_session(&access_key_id, &secret, &session_token)?,
                        access_key_id,
                        role_name: role.name.clone(),
                        role_id: role.role_id.clone(),
                        session_name: grant.task_id.clone(),
                        assumed_role_arn: format!(
                            "arn:aws:sts::{account}:assumed-role/{}/{}",
                            role.name, grant.task_id
                        ),
                        expires_at: t + duration,
                        created_at: t,
                    };
                    tx.sts_session_insert(&s)?;
                    tx.task_credential_set_session(credential_id, &s.access_key_id)?;
                    (s, secret, session_token)
                }
            };
            Ok(Ok(TaskCredentials {
                access_key_id: session.access_key_id,
                secret_access_key: secret,
                token: session_token,
                expiration: berth_core::time::iso8601(session.expires_at.floor() as i64),
                role_arn: role.arn,
            }))
        })
        .map_err(internal)?
    }
}
