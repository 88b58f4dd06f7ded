//! Secrets Manager, SSM Parameter Store and a task's secrets over the in-memory driver: the APIs' rules,
//! values sealed at rest (and surviving a restart with the key file), and launch-time resolution with
//! ECS's stop reasons.

use berth_control::ControlConfig;
use berth_core::ErrorCode;
use berth_model::{ecs, secretsmanager as sm, ssm};
use berth_runtime::RegistryAuth;

mod common;

use common::Harness;

fn world(name: &str) -> Harness {
    Harness::new(&format!("secrets-{name}"), |dir| ControlConfig {
        secrets_key: Some(dir.join("secrets.key")),
        ..ControlConfig::default()
    })
}

impl Harness {
    async fn sm(&self, op: sm::Operation) -> Result<sm::Output, berth_core::AwsError> {
        self.control.handle_secretsmanager(&self.caller, op).await
    }

    async fn ssm(&self, op: ssm::Operation) -> Result<ssm::Output, berth_core::AwsError> {
        self.control.handle_ssm(&self.caller, op).await
    }

    async fn create_secret(&self, name: &str, value: &str) -> String {
        let Ok(sm::Output::CreateSecret(r)) = self
            .sm(sm::Operation::CreateSecret(sm::CreateSecretRequest {
                name: Some(name.into()),
                secret_string: Some(value.into()),
                ..Default::default()
            }))
            .await
        else {
            panic!("create secret")
        };
        r.arn.expect("arn")
    }

    async fn get_secret(&self, id: &str) -> Result<sm::GetSecretValueResponse, berth_core::AwsError> {
        match self
            .sm(sm::Operation::GetSecretValue(sm::GetSecretValueRequest {
                secret_id: Some(id.into()),
                ..Default::default()
            }))
            .await?
        {
            sm::Output::GetSecretValue(r) => Ok(r),
            _ => panic!("wrong output"),
        }
    }

    async fn put_parameter(&self, name: &str, value: &str, kind: ssm::ParameterType, overwrite: bool) -> i64 {
        let Ok(ssm::Output::PutParameter(r)) = self
            .ssm(ssm::Operation::PutParameter(ssm::PutParameterRequest {
                name: Some(name.into()),
                value: Some(value.into()),
                r#type: Some(kind),
                overwrite: Some(overwrite),
                ..Default::default()
            }))
            .await
        else {
            panic!("put parameter {name}")
        };
        r.version.expect("version")
    }

    async fn get_parameter(&self, name: &str, decrypt: bool) -> Result<ssm::Parameter, berth_core::AwsError> {
        match self
            .ssm(ssm::Operation::GetParameter(ssm::GetParameterRequest {
                name: Some(name.into()),
                with_decryption: Some(decrypt),
            }))
            .await?
        {
            ssm::Output::GetParameter(r) => Ok(r.parameter.expect("parameter")),
            _ => panic!("wrong output"),
        }
    }

    /// The two roles, as the AWS docs create them, plus what the docs tell you to add to the execution role for
    /// secrets: `secretsmanager:GetSecretValue` and `ssm:GetParameters`. Idempotent.
    async fn ensure_roles(&self) {
        use berth_model::iam::{self, Operation as Iam};
        self.create_express_roles().await;
        self.control
            .handle_iam(
                &self.caller,
                Iam::PutRolePolicy(iam::PutRolePolicyRequest {
                    role_name: Some("exec".into()),
                    policy_name: Some("secrets".into()),
                    policy_document: Some(
                        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","ssm:GetParameters"],"Resource":"*"}]}"#
                            .into(),
                    ),
                }),
            )
            .await
            .expect("inline policy");
    }

    /// Creates service `name` running `container`, with the roles [`Harness::ensure_roles`] makes.
    async fn create_with(
        &self,
        name: &str,
        container: ecs::ExpressGatewayContainer,
    ) -> Result<String, berth_core::AwsError> {
        self.ensure_roles().await;
        let request =
            ecs::CreateExpressGatewayServiceRequest { primary_container: Some(container), ..common::named(name) };
        Ok(self.create_service(request).await?.service_arn.expect("arn"))
    }

    async fn stopped_reasons(&self, service_arn: &str) -> Vec<String> {
        self.stopped_tasks()
            .await
            .into_iter()
            .filter(|t| {
                t.group
                    .as_deref()
                    .is_some_and(|g| service_arn.ends_with(&format!("/{}", g.trim_start_matches("service:"))))
            })
            .map(|t| {
                assert_eq!(t.stop_code, Some(ecs::TaskStopCode::TaskFailedToStart));
                t.stopped_reason.unwrap_or_default()
            })
            .collect()
    }
}

fn code(r: Result<impl std::fmt::Debug, berth_core::AwsError>) -> ErrorCode {
    r.expect_err("an error").code
}

fn secret(name: &str, value_from: &str) -> ecs::Secret {
    ecs::Secret { name: Some(name.into()), value_from: Some(value_from.into()) }
}

fn demo(secrets: Vec<ecs::Secret>) -> ecs::ExpressGatewayContainer {
    ecs::ExpressGatewayContainer {
        image: Some("berth-demo:latest".into()),
        secrets: Some(secrets),
        ..Default::default()
    }
}

#[tokio::test]
async fn secret_versions_stages_lookup_and_deletion() {
    let mut w = world("sm");
    let arn = w.create_secret("app/db", r#"{"password":"p1"}"#).await;
    assert!(arn.starts_with(&format!("arn:aws:secretsmanager:us-east-1:{}:secret:app/db-", w.control.account_id())));
    assert_eq!(arn.len() - arn.rfind('-').expect("suffix") - 1, 6);

    // By name, full ARN and partial ARN.
    let partial = arn[..arn.len() - 7].to_string();
    for id in ["app/db", arn.as_str(), partial.as_str()] {
        assert_eq!(w.get_secret(id).await.expect(id).secret_string.as_deref(), Some(r#"{"password":"p1"}"#));
    }
    assert_eq!(code(w.get_secret("nope").await), ErrorCode::ResourceNotFound);
    let again = w
        .sm(sm::Operation::CreateSecret(sm::CreateSecretRequest {
            name: Some("app/db".into()),
            secret_string: Some("x".into()),
            ..Default::default()
        }))
        .await;
    assert_eq!(code(again), ErrorCode::ResourceExists);

    // A new value becomes AWSCURRENT; the old one AWSPREVIOUS.
    let first = w.get_secret("app/db").await.expect("get").version_id.expect("version");
    let Ok(sm::Output::PutSecretValue(put)) = w
        .sm(sm::Operation::PutSecretValue(sm::PutSecretValueRequest {
            secret_id: Some("app/db".into()),
            secret_string: Some(r#"{"password":"p2"}"#.into()),
            ..Default::default()
        }))
        .await
    else {
        panic!("put")
    };
    assert_eq!(put.version_stages, Some(vec!["AWSCURRENT".to_string()]));
    let prev = w
        .sm(sm::Operation::GetSecretValue(sm::GetSecretValueRequest {
            secret_id: Some("app/db".into()),
            version_stage: Some("AWSPREVIOUS".into()),
            ..Default::default()
        }))
        .await;
    let Ok(sm::Output::GetSecretValue(prev)) = prev else { panic!("previous") };
    assert_eq!(prev.version_id.as_deref(), Some(first.as_str()));
    assert_eq!(prev.secret_string.as_deref(), Some(r#"{"password":"p1"}"#));

    // A repeated ClientRequestToken: the same value is a no-op, another value is refused.
    let token = "0123456789abcdef0123456789abcdef".to_string();
    let put_with = |value: &str| sm::PutSecretValueRequest {
        secret_id: Some("app/db".into()),
        client_request_token: Some(token.clone()),
        secret_string: Some(value.into()),
        ..Default::default()
    };
    w.sm(sm::Operation::PutSecretValue(put_with("v-token"))).await.expect("first put");
    w.sm(sm::Operation::PutSecretValue(put_with("v-token"))).await.expect("same token, same value");
    assert_eq!(code(w.sm(sm::Operation::PutSecretValue(put_with("other"))).await), ErrorCode::ResourceExists);
    assert_eq!(w.get_secret("app/db").await.expect("get").version_id.as_deref(), Some(token.as_str()));
    w.sm(sm::Operation::PutSecretValue(sm::PutSecretValueRequest {
        secret_id: Some("app/db".into()),
        secret_string: Some(r#"{"password":"p2"}"#.into()),
        ..Default::default()
    }))
    .await
    .expect("put p2 again");

    // The value survives a restart (the key file is reused) and the database holds no plaintext.
    w.restart();
    assert_eq!(w.get_secret(&arn).await.expect("after restart").secret_string.as_deref(), Some(r#"{"password":"p2"}"#));
    let db = std::fs::read(w.dir.join("berth.db")).expect("db");
    let wal = std::fs::read(w.dir.join("berth.db-wal")).unwrap_or_default();
    for bytes in [&db, &wal] {
        assert!(!bytes.windows(11).any(|x| x == br#"password":"#), "plaintext found at rest");
    }

    // Scheduled deletion: reads refuse, the name stays taken, restore brings it back; force deletes at once.
    let bad_window = w
        .sm(sm::Operation::DeleteSecret(sm::DeleteSecretRequest {
            secret_id: Some(arn.clone()),
            recovery_window_in_days: Some(3),
            ..Default::default()
        }))
        .await;
    assert_eq!(code(bad_window), ErrorCode::InvalidParameter);
    let Ok(sm::Output::DeleteSecret(d)) = w
        .sm(sm::Operation::DeleteSecret(sm::DeleteSecretRequest { secret_id: Some(arn.clone()), ..Default::default() }))
        .await
    else {
        panic!("delete")
    };
    let days = (d.deletion_date.expect("date").0 - berth_now()) / 86_400.0;
    assert!((29.9..30.1).contains(&days), "{days}");
    assert_eq!(code(w.get_secret("app/db").await), ErrorCode::InvalidRequest);
    let Ok(sm::Output::ListSecrets(l)) = w.sm(sm::Operation::ListSecrets(Default::default())).await else {
        panic!("list")
    };
    assert!(l.secret_list.unwrap_or_default().is_empty(), "planned deletions are not listed by default");
    w.sm(sm::Operation::RestoreSecret(sm::RestoreSecretRequest { secret_id: Some("app/db".into()) }))
        .await
        .expect("restore");
    assert!(w.get_secret("app/db").await.is_ok());
    // Over 50 tags: TagResource's model has no LimitExceededException, so it is an invalid parameter.
    let tags: Vec<sm::Tag> = (0..51).map(|i| sm::Tag { key: Some(format!("k{i}")), value: Some("v".into()) }).collect();
    let tag = sm::Operation::TagResource(sm::TagResourceRequest { secret_id: Some("app/db".into()), tags: Some(tags) });
    assert_eq!(code(w.sm(tag).await), ErrorCode::InvalidParameter);
    w.sm(sm::Operation::DeleteSecret(sm::DeleteSecretRequest {
        secret_id: Some("app/db".into()),
        force_delete_without_recovery: Some(true),
        ..Default::default()
    }))
    .await
    .expect("force delete");
    assert_eq!(code(w.get_secret("app/db").await), ErrorCode::ResourceNotFound);
    w.create_secret("app/db", "reused").await;
}

fn berth_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

#[tokio::test]
async fn parameters_types_versions_paths_and_decryption() {
    let w = world("ssm");
    assert_eq!(w.put_parameter("/app/db/host", "db.local", ssm::ParameterType::String, false).await, 1);
    assert_eq!(w.put_parameter("/app/db/password", "s3cret-pw", ssm::ParameterType::SecureString, false).await, 1);
    assert_eq!(w.put_parameter("/app/hosts", "a,b", ssm::ParameterType::StringList, false).await, 1);
    let exists = w
        .ssm(ssm::Operation::PutParameter(ssm::PutParameterRequest {
            name: Some("/app/db/host".into()),
            value: Some("x".into()),
            r#type: Some(ssm::ParameterType::String),
            ..Default::default()
        }))
        .await;
    assert_eq!(code(exists), ErrorCode::ParameterAlreadyExists);
    assert_eq!(w.put_parameter("/app/db/host", "db2.local", ssm::ParameterType::String, true).await, 2);
    assert_eq!(w.get_parameter("/app/db/host:1", false).await.expect("v1").value.as_deref(), Some("db.local"));

    let hidden = w.get_parameter("/app/db/password", false).await.expect("encrypted");
    assert_ne!(hidden.value.as_deref(), Some("s3cret-pw"), "SecureString is not shown without decryption");
    let shown = w.get_parameter("/app/db/password", true).await.expect("decrypted");
    assert_eq!(shown.value.as_deref(), Some("s3cret-pw"));
    let arn = shown.arn.expect("arn");
    assert_eq!(arn, format!("arn:aws:ssm:us-east-1:{}:parameter/app/db/password", w.control.account_id()));
    assert_eq!(w.get_parameter(&arn, true).await.expect("by arn").value.as_deref(), Some("s3cret-pw"));
    assert_eq!(code(w.get_parameter("/missing", false).await), ErrorCode::ParameterNotFound);

    let Ok(ssm::Output::GetParameters(many)) = w
        .ssm(ssm::Operation::GetParameters(ssm::GetParametersRequest {
            names: Some(vec!["/app/hosts".into(), "/nope".into()]),
            with_decryption: None,
        }))
        .await
    else {
        panic!("get parameters")
    };
    assert_eq!(many.parameters.map(|p| p.len()), Some(1));
    assert_eq!(many.invalid_parameters, Some(vec!["/nope".to_string()]));

    // By path: one level, then recursive in pages of 1.
    let by_path = |recursive: bool, token: Option<String>| ssm::GetParametersByPathRequest {
        path: Some("/app".into()),
        recursive: Some(recursive),
        with_decryption: Some(true),
        max_results: Some(1),
        next_token: token,
        ..Default::default()
    };
    let Ok(ssm::Output::GetParametersByPath(top)) =
        w.ssm(ssm::Operation::GetParametersByPath(by_path(false, None))).await
    else {
        panic!("by path")
    };
    assert_eq!(top.parameters.unwrap_or_default()[0].name.as_deref(), Some("/app/hosts"));
    assert!(top.next_token.is_none());
    let mut names = Vec::new();
    let mut token = None;
    for _ in 0..10 {
        let Ok(ssm::Output::GetParametersByPath(page)) =
            w.ssm(ssm::Operation::GetParametersByPath(by_path(true, token.clone()))).await
        else {
            panic!("page")
        };
        names.extend(page.parameters.unwrap_or_default().into_iter().filter_map(|p| p.name));
        token = page.next_token;
        if token.is_none() {
            break;
        }
    }
    assert_eq!(names, vec!["/app/db/host", "/app/db/password", "/app/hosts"]);

    let Ok(ssm::Output::DeleteParameters(del)) = w
        .ssm(ssm::Operation::DeleteParameters(ssm::DeleteParametersRequest {
            names: Some(vec!["/app/hosts".into(), "/nope".into()]),
        }))
        .await
    else {
        panic!("delete")
    };
    assert_eq!(del.deleted_parameters, Some(vec!["/app/hosts".to_string()]));
    assert_eq!(del.invalid_parameters, Some(vec!["/nope".to_string()]));
    let db = std::fs::read(w.dir.join("berth.db")).expect("db");
    let wal = std::fs::read(w.dir.join("berth.db-wal")).unwrap_or_default();
    assert!(!db.windows(9).any(|x| x == b"s3cret-pw") && !wal.windows(9).any(|x| x == b"s3cret-pw"));
}

#[tokio::test]
async fn secrets_reach_the_task_and_missing_ones_stop_it() {
    let w = world("launch");
    let arn = w.create_secret("db", r#"{"username":"admin","password":"pw1"}"#).await;
    w.put_parameter("/app/token", "tok-1", ssm::ParameterType::SecureString, false).await;
    w.put_parameter("plain", "plain-1", ssm::ParameterType::String, false).await;
    let param_arn = format!("arn:aws:ssm:us-east-1:{}:parameter/app/token", w.control.account_id());

    // Invalid references are refused at create.
    let bad = w.create_with("bad", demo(vec![secret("X", "arn:aws:s3:::bucket")])).await;
    assert_eq!(code(bad), ErrorCode::InvalidParameter);

    w.create_with(
        "web",
        demo(vec![
            secret("DB_PASSWORD", &format!("{arn}:password::")),
            secret("DB_JSON", &arn),
            secret("TOKEN", &param_arn),
            secret("PLAIN", "plain"),
        ]),
    )
    .await
    .expect("create");
    w.settle().await;
    let started = w.driver.started();
    assert_eq!(started.len(), 1);
    let env: std::collections::BTreeMap<String, String> = started[0].environment.iter().cloned().collect();
    assert_eq!(env.get("DB_PASSWORD").map(String::as_str), Some("pw1"));
    assert_eq!(env.get("DB_JSON").map(String::as_str), Some(r#"{"username":"admin","password":"pw1"}"#));
    assert_eq!(env.get("TOKEN").map(String::as_str), Some("tok-1"));
    assert_eq!(env.get("PLAIN").map(String::as_str), Some("plain-1"));

    // The revision and the task definition keep references only.
    let Ok(ecs::Output::ListTaskDefinitions(tds)) =
        w.control.handle_ecs(&w.caller, ecs::Operation::ListTaskDefinitions(Default::default())).await
    else {
        panic!("list task definitions")
    };
    let td_arn = tds.task_definition_arns.unwrap_or_default().pop().expect("td");
    let Ok(ecs::Output::DescribeTaskDefinition(td)) = w
        .control
        .handle_ecs(
            &w.caller,
            ecs::Operation::DescribeTaskDefinition(ecs::DescribeTaskDefinitionRequest {
                task_definition: Some(td_arn),
                ..Default::default()
            }),
        )
        .await
    else {
        panic!("describe task definition")
    };
    let text = format!("{td:?}");
    assert!(text.contains("DB_PASSWORD") && !text.contains("pw1") && !text.contains("tok-1"), "{text}");
}

#[tokio::test]
async fn launch_failures_carry_ecs_reasons() {
    let w = world("failures");
    let arn = w.create_secret("creds", r#"{"username":"u"}"#).await;
    let missing = w.create_with("a", demo(vec![secret("A", "arn:aws:secretsmanager:us-east-1:1:secret:gone")])).await;
    let missing = missing.expect("create does not check existence");
    let json_key = w.create_with("b", demo(vec![secret("B", &format!("{arn}:nokey::"))])).await.expect("create");
    let ssm_missing = w.create_with("c", demo(vec![secret("C", "/no/such/param")])).await.expect("create");
    w.settle().await;
    assert!(w.driver.started().is_empty(), "no task started");
    let r = w.stopped_reasons(&missing).await;
    assert!(
        r.iter().any(|r| r.starts_with("ResourceInitializationError: unable to pull secrets or registry auth:")
            && r.contains("ResourceNotFoundException")),
        "{r:?}"
    );
    let r = w.stopped_reasons(&json_key).await;
    assert!(r.iter().any(|r| r.contains("did not contain json key nokey")), "{r:?}");
    let r = w.stopped_reasons(&ssm_missing).await;
    assert!(r.iter().any(|r| r.contains("invalid ssm parameters: /no/such/param")), "{r:?}");
}

#[tokio::test]
async fn registry_credentials_are_resolved_and_checked_by_the_registry() {
    let w = world("registry");
    let image = "registry.local:5000/private/app:1";
    w.driver.require_registry_auth(image, RegistryAuth { username: "alice".into(), password: "right".into() });
    w.create_secret("reg/good", r#"{"username":"alice","password":"right"}"#).await;
    w.create_secret("reg/bad", r#"{"username":"alice","password":"wrong"}"#).await;
    let with = |param: &str| ecs::ExpressGatewayContainer {
        image: Some(image.into()),
        repository_credentials: Some(ecs::ExpressGatewayRepositoryCredentials {
            credentials_parameter: Some(param.into()),
        }),
        ..Default::default()
    };
    let bad = w.create_with("bad", with("reg/bad")).await.expect("create");
    w.settle().await;
    let r = w.stopped_reasons(&bad).await;
    assert!(r.iter().any(|r| r.starts_with("CannotPullContainerError:")), "{r:?}");
    assert!(w.driver.running_ids().is_empty());

    w.create_with("good", with("reg/good")).await.expect("create");
    w.settle().await;
    let good: Vec<_> = w.driver.started().into_iter().filter(|s| s.registry_auth.is_some()).collect();
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].registry_auth.as_ref().map(|a| a.password.as_str()), Some("right"));
    assert!(!format!("{:?}", good[0].registry_auth).contains("right"), "passwords are not printed");
}

/// Secrets Manager and SSM authorize on the secret's and the parameter's ARN: a user allowed on `secret:a-*` and
/// `parameter/app/a` reads those (by name or ARN) and is denied on the others.
#[tokio::test]
async fn reads_are_authorized_on_the_secret_and_parameter_arns() {
    let w = world("authz");
    let a = w.create_secret("a", "one").await;
    let b = w.create_secret("b", "two").await;
    w.put_parameter("/app/a", "x", ssm::ParameterType::String, false).await;
    w.put_parameter("/app/b", "y", ssm::ParameterType::String, false).await;
    let (region, account) = (w.control.region().to_string(), w.control.account_id().to_string());
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Action":"secretsmanager:GetSecretValue",
              "Resource":"arn:aws:secretsmanager:{region}:{account}:secret:a-*"}},
            {{"Effect":"Allow","Action":["ssm:GetParameter","ssm:GetParameters"],
              "Resource":"arn:aws:ssm:{region}:{account}:parameter/app/a"}}]}}"#
    );
    let user = common::user_with(&w.control, "alice", &policy).await;
    let get = |id: &str| {
        sm::Operation::GetSecretValue(sm::GetSecretValueRequest { secret_id: Some(id.into()), ..Default::default() })
    };
    let code = |r: Result<sm::Output, berth_core::AwsError>| r.map(|_| ()).map_err(|e| e.code);
    assert_eq!(code(w.control.handle_secretsmanager(&user, get("a")).await), Ok(()), "by name");
    assert_eq!(code(w.control.handle_secretsmanager(&user, get(&a)).await), Ok(()), "by ARN");
    assert_eq!(code(w.control.handle_secretsmanager(&user, get("b")).await), Err(ErrorCode::AccessDenied));
    let denied = w.control.handle_secretsmanager(&user, get(&b)).await.expect_err("denied on b");
    assert!(denied.message.contains(&b), "the denial names the secret: {}", denied.message);
    let param = |name: &str| {
        ssm::Operation::GetParameter(ssm::GetParameterRequest { name: Some(name.into()), ..Default::default() })
    };
    let both = ssm::Operation::GetParameters(ssm::GetParametersRequest {
        names: Some(vec!["/app/a".into(), "/app/b".into()]),
        ..Default::default()
    });
    let pcode = |r: Result<ssm::Output, berth_core::AwsError>| r.map(|_| ()).map_err(|e| e.code);
    assert_eq!(pcode(w.control.handle_ssm(&user, param("/app/a")).await), Ok(()));
    assert_eq!(pcode(w.control.handle_ssm(&user, param("/app/b")).await), Err(ErrorCode::AccessDenied));
    assert_eq!(pcode(w.control.handle_ssm(&user, both).await), Err(ErrorCode::AccessDenied), "every name is checked");
}
