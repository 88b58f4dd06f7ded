//! A task's `secrets` and `repositoryCredentials`, resolved when it launches.
//!
//! Revisions keep only references (`valueFrom`, `credentialsParameter`); the reconciler resolves them
//! right before it asks the runtime to start the container, as the task's execution role, so a rotated
//! secret reaches the next task and a missing one stops the task with ECS's `ResourceInitializationError`.

use berth_core::{AwsError, ErrorCode};
use berth_model::ecs::ExpressGatewayContainer;
use berth_runtime::RegistryAuth;

use super::{manager, ssm};
use crate::{Control, ControlError};

/// The stop reason prefix ECS uses when secrets or registry credentials cannot be fetched.
pub(crate) const INIT_ERROR: &str =
    "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed";

/// Where a secret's value comes from, as ECS's `valueFrom` syntax says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ValueFrom {
    /// `arn:aws:secretsmanager:<region>:<account>:secret:<name>[-suffix][:json-key:version-stage:version-id]`.
    Secret { secret_id: String, json_key: Option<String>, version_stage: Option<String>, version_id: Option<String> },
    /// `arn:aws:ssm:<region>:<account>:parameter/<name>`, or the parameter's name.
    Parameter { name: String },
}

/// Parses a `valueFrom`; the error says what is wrong, for a create or update to refuse.
pub(crate) fn parse_value_from(value_from: &str) -> Result<ValueFrom, String> {
    let v = value_from.trim();
    if v.is_empty() {
        return Err("valueFrom must not be empty".into());
    }
    if !v.starts_with("arn:") {
        ssm::valid_name(v)
            .map_err(|e| format!("'{v}' is not a valid SSM parameter name: {}", AwsError::from(e).message))?;
        return Ok(ValueFrom::Parameter { name: v.to_string() });
    }
    let parts: Vec<&str> = v.split(':').collect();
    let service = parts.get(2).copied().unwrap_or_default();
    match service {
        "secretsmanager" => {
            if parts.len() < 7 || parts.len() > 10 || parts[5] != "secret" || parts[6].is_empty() {
                return Err(format!(
                    "'{v}' is not a Secrets Manager secret ARN: expected arn:aws:secretsmanager:<region>:<account>:secret:<name>[:json-key:version-stage:version-id]"
                ));
            }
            let field = |i: usize| parts.get(i).filter(|s| !s.is_empty()).map(|s| s.to_string());
            let (json_key, version_stage, version_id) = (field(7), field(8), field(9));
            if version_stage.is_some() && version_id.is_some() {
                return Err(format!("'{v}' names both a version stage and a version id; give one of them"));
            }
            Ok(ValueFrom::Secret { secret_id: parts[..7].join(":"), json_key, version_stage, version_id })
        }
        "ssm" => {
            let resource = if parts.len() == 6 { parts[5] } else { "" };
            match resource.strip_prefix("parameter/") {
                Some(name) if !name.is_empty() => Ok(ValueFrom::Parameter { name: v.to_string() }),
                _ => Err(format!(
                    "'{v}' is not an SSM parameter ARN: expected arn:aws:ssm:<region>:<account>:parameter/<name>"
                )),
            }
        }
        _ => Err(format!("'{v}' must be a Secrets Manager secret ARN or an SSM parameter ARN or name")),
    }
}

/// Checks a `repositoryCredentials.credentialsParameter`: a Secrets Manager secret ARN or name.
pub(crate) fn check_credentials_parameter(value: &str) -> Result<(), String> {
    if value.starts_with("arn:") {
        match parse_value_from(value)? {
            ValueFrom::Secret { json_key: None, version_stage: None, version_id: None, .. } => Ok(()),
            _ => Err(format!("'{value}' must be a Secrets Manager secret ARN (no JSON key or version)")),
        }
    } else if !value.is_empty() && value.chars().all(|ch| ch.is_ascii_alphanumeric() || "/_+=.@-".contains(ch)) {
        Ok(())
    } else {
        Err(format!("'{value}' is not a Secrets Manager secret ARN or name"))
    }
}

/// What a task needs fetched before its container can start: references only, never values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LaunchNeeds {
    pub execution_role: Option<String>,
    /// (environment variable, valueFrom).
    pub secrets: Vec<(String, String)>,
    pub registry_credentials: Option<String>,
    /// Where the container's output goes (`logs/target.rs`), when it logs.
    pub log: Option<crate::logs::target::LogTarget>,
}

impl LaunchNeeds {
    pub(crate) fn of(container: &ExpressGatewayContainer, execution_role: Option<&str>) -> LaunchNeeds {
        LaunchNeeds {
            execution_role: execution_role.map(str::to_string),
            secrets: container
                .secrets
                .iter()
                .flatten()
                .filter_map(|s| Some((s.name.clone()?, s.value_from.clone()?)))
                .collect(),
            registry_credentials: container
                .repository_credentials
                .as_ref()
                .and_then(|r| r.credentials_parameter.clone()),
            log: crate::logs::target::LogTarget::of(container),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.secrets.is_empty() && self.registry_credentials.is_none()
    }
}

/// Resolved values for one launch. Its `Debug` shows names only.
#[derive(Default)]
pub(crate) struct Resolved {
    pub environment: Vec<(String, String)>,
    pub registry_auth: Option<RegistryAuth>,
}

impl Control {
    /// Fetches a task's secrets and registry credentials as its execution role. The error is the task's
    /// stop reason (`ResourceInitializationError: ...`).
    pub(crate) fn resolve_launch(&self, needs: &LaunchNeeds) -> Result<Resolved, String> {
        if needs.is_empty() {
            return Ok(Resolved::default());
        }
        let role = needs.execution_role.as_deref();
        let outcome = self.tx(|tx| {
            let mut resolved = Resolved::default();
            let mut missing_parameters = Vec::new();
            for (env, value_from) in &needs.secrets {
                let source = match parse_value_from(value_from) {
                    Ok(s) => s,
                    Err(e) => return Ok(Err(format!("{INIT_ERROR}: invalid secret {env}: {e}"))),
                };
                match source {
                    ValueFrom::Secret { secret_id, json_key, version_stage, version_id } => {
                        let text = match self.fetch_secret(tx, role, &secret_id, version_stage.as_deref(), version_id.as_deref())? {
                            Ok(t) => t,
                            Err(e) => return Ok(Err(e)),
                        };
                        let value = match json_key {
                            None => text,
                            Some(key) => match json_value(&text, &key) {
                                Some(v) => v,
                                None => {
                                    return Ok(Err(format!(
                                        "{INIT_ERROR}: unable to retrieve secret from asm: service call has been retried 1 time(s): retrieved secret from Secrets Manager did not contain json key {key}"
                                    )));
                                }
                            },
                        };
                        resolved.environment.push((env.clone(), value));
                    }
                    ValueFrom::Parameter { name } => {
                        if let Err(e) = self.execution_role_may(tx, role, "ssm:GetParameters", &name) {
                            return Ok(Err(format!(
                                "{INIT_ERROR}: unable to retrieve secrets from ssm: service call has been retried 1 time(s): {e}"
                            )));
                        }
                        match ssm::read(self, tx, &name, true) {
                            Ok(Some((_, p))) => resolved.environment.push((env.clone(), p.value.unwrap_or_default())),
                            Ok(None) => missing_parameters.push(name),
                            Err(ControlError::Aws(_)) => missing_parameters.push(name),
                            Err(e) => return Err(e),
                        }
                    }
                }
            }
            if !missing_parameters.is_empty() {
                return Ok(Err(format!(
                    "{INIT_ERROR}: unable to retrieve secrets from ssm: service call has been retried 1 time(s): invalid ssm parameters: {}",
                    missing_parameters.join(" ")
                )));
            }
            if let Some(credentials) = &needs.registry_credentials {
                let text = match self.fetch_secret(tx, role, credentials, None, None)? {
                    Ok(t) => t,
                    Err(e) => return Ok(Err(e)),
                };
                match (json_value(&text, "username"), json_value(&text, "password")) {
                    (Some(username), Some(password)) => {
                        resolved.registry_auth = Some(RegistryAuth { username, password });
                    }
                    _ => {
                        return Ok(Err(format!(
                            "{INIT_ERROR}: unable to retrieve private registry authentication from asm: the secret {credentials} must be JSON with \"username\" and \"password\""
                        )));
                    }
                }
            }
            Ok(Ok(resolved))
        });
        match outcome {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot resolve a task's secrets");
                Err(format!("{INIT_ERROR}: the secrets store is unavailable; try again"))
            }
        }
    }

    /// One Secrets Manager read for a launch; the inner error is the task's stop reason.
    fn fetch_secret(
        &self,
        tx: &berth_store::Tx<'_>,
        role: Option<&str>,
        secret_id: &str,
        stage: Option<&str>,
        version_id: Option<&str>,
    ) -> Result<Result<String, String>, ControlError> {
        let fail = |e: AwsError| {
            format!(
                "{INIT_ERROR}: unable to retrieve secret from asm: service call has been retried 1 time(s): failed to fetch secret {secret_id} from secrets manager: {}: {}",
                e.code.name(),
                e.message
            )
        };
        if let Err(e) = self.execution_role_may(tx, role, "secretsmanager:GetSecretValue", secret_id) {
            return Ok(Err(fail(AwsError::new(ErrorCode::AccessDenied, e))));
        }
        let secret = match manager::find(self, tx, secret_id) {
            Ok(s) => s,
            Err(ControlError::Aws(e)) => return Ok(Err(fail(e))),
            Err(e) => return Err(e),
        };
        if secret.deleted_at.is_some() {
            return Ok(Err(fail(AwsError::new(
                ErrorCode::InvalidRequest,
                "You can't perform this operation on the secret because it was marked for deletion.",
            ))));
        }
        let version = match manager::select_version(tx, &secret, version_id, stage) {
            Ok(v) => v,
            Err(ControlError::Aws(e)) => return Ok(Err(fail(e))),
            Err(e) => return Err(e),
        };
        match manager::open(self, &version) {
            Ok((_, text)) => Ok(Ok(text)),
            Err(ControlError::Aws(e)) => Ok(Err(fail(e))),
            Err(e) => Err(e),
        }
    }
}

/// The value under `key` of a JSON object: strings as they are, other values as JSON text.
fn json_value(text: &str, key: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    match value.as_object()?.get(key)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(id: &str, key: Option<&str>, stage: Option<&str>, version: Option<&str>) -> ValueFrom {
        ValueFrom::Secret {
            secret_id: id.into(),
            json_key: key.map(Into::into),
            version_stage: stage.map(Into::into),
            version_id: version.map(Into::into),
        }
    }

    #[test]
    fn value_from_follows_ecs_syntax() {
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf";
        let cases: Vec<(String, Result<ValueFrom, &str>)> = vec![
            (arn.into(), Ok(secret(arn, None, None, None))),
            (format!("{arn}:password::"), Ok(secret(arn, Some("password"), None, None))),
            (format!("{arn}:password:AWSPREVIOUS:"), Ok(secret(arn, Some("password"), Some("AWSPREVIOUS"), None))),
            (format!("{arn}::AWSCURRENT"), Ok(secret(arn, None, Some("AWSCURRENT"), None))),
            (format!("{arn}:::0b9e-uuid"), Ok(secret(arn, None, None, Some("0b9e-uuid")))),
            (
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:db".into(),
                Ok(secret("arn:aws:secretsmanager:us-east-1:123456789012:secret:db", None, None, None)),
            ),
            (format!("{arn}:k:AWSCURRENT:some-id"), Err("both a version stage and a version id")),
            (format!("{arn}:k:s:i:extra"), Err("not a Secrets Manager secret ARN")),
            ("arn:aws:secretsmanager:us-east-1:123456789012:secret:".into(), Err("not a Secrets Manager secret ARN")),
            ("arn:aws:secretsmanager:us-east-1:123456789012:other:x".into(), Err("not a Secrets Manager secret ARN")),
            (
                "arn:aws:ssm:us-east-1:123456789012:parameter/app/db".into(),
                Ok(ValueFrom::Parameter { name: "arn:aws:ssm:us-east-1:123456789012:parameter/app/db".into() }),
            ),
            ("arn:aws:ssm:us-east-1:123456789012:document/x".into(), Err("not an SSM parameter ARN")),
            ("arn:aws:ssm:us-east-1:123456789012:parameter/".into(), Err("not an SSM parameter ARN")),
            ("/app/db/password".into(), Ok(ValueFrom::Parameter { name: "/app/db/password".into() })),
            ("plain_name".into(), Ok(ValueFrom::Parameter { name: "plain_name".into() })),
            ("not a name".into(), Err("not a valid SSM parameter name")),
            ("arn:aws:s3:::bucket/key".into(), Err("must be a Secrets Manager secret ARN or an SSM parameter")),
            ("".into(), Err("must not be empty")),
        ];
        for (input, want) in cases {
            match (parse_value_from(&input), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{input}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{input}: {got}"),
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn credentials_parameter_is_a_whole_secret() {
        assert!(check_credentials_parameter("arn:aws:secretsmanager:us-east-1:1:secret:reg-AbCdEf").is_ok());
        assert!(check_credentials_parameter("registry/creds").is_ok());
        assert!(check_credentials_parameter("arn:aws:secretsmanager:us-east-1:1:secret:reg:username::").is_err());
        assert!(check_credentials_parameter("arn:aws:ssm:us-east-1:1:parameter/x").is_err());
        assert!(check_credentials_parameter("has space").is_err());
    }

    #[test]
    fn json_keys_pick_values() {
        let doc = r#"{"username":"u","port":5432,"nested":{"a":1},"nothing":null}"#;
        assert_eq!(json_value(doc, "username").as_deref(), Some("u"));
        assert_eq!(json_value(doc, "port").as_deref(), Some("5432"));
        assert_eq!(json_value(doc, "nested").as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(json_value(doc, "nothing"), None);
        assert_eq!(json_value(doc, "absent"), None);
        assert_eq!(json_value("not json", "username"), None);
        assert_eq!(json_value("[1,2]", "username"), None);
    }
}
