//! Task roles over the in-memory driver: a task of a service with a `taskRoleArn` gets the credentials
//! endpoint's variables and its token; the endpoint answers with a role session named after the task, reused
//! until renewal and accepted as an access key; wrong tokens, unknown ids, untrusted roles and stopped tasks are
//! refused; a task without a task role gets nothing. Sessions are renewed before they expire; tokens and session
//! secrets never reach the database file or its WAL in plain text, and rows an older berth wrote in plain text
//! are converted at start.

use berth_control::ControlConfig;
use berth_control::TaskEndpoint;
use berth_control::task_role::TaskCredentialsError;
use berth_model::ecs;
use berth_model::iam::{self, Operation as Iam};
use berth_runtime::TaskSpec;

mod common;

use common::Harness;

fn world(name: &str) -> Harness {
    let config = |dir: &std::path::Path| ControlConfig {
        task_endpoint: Some(TaskEndpoint {
            credentials_base: "http://169.254.170.2:51679".into(),
            api_url: Some("http://169.254.170.2:51680".into()),
        }),
        secrets_key: Some(dir.join("secrets.key")),
        ..ControlConfig::default()
    };
    Harness::new(&format!("task-role-{name}"), config)
}

impl Harness {
    async fn role(&self, name: &str, service: &str, policy: Option<&str>) -> String {
        common::create_role(&self.control, &self.caller, name, service, policy).await
    }

    async fn service(&self, name: &str, task_role: Option<String>) -> String {
        self.create_express_roles().await;
        let request = ecs::CreateExpressGatewayServiceRequest { task_role_arn: task_role, ..common::named(name) };
        self.create_service(request).await.expect("create service").service_arn.expect("arn")
    }

    fn started(&self, service_arn: &str) -> TaskSpec {
        self.driver
            .started()
            .into_iter()
            .find(|s| s.labels.get("berth.service").map(String::as_str) == Some(service_arn))
            .expect("a started task")
    }
}

fn env<'a>(spec: &'a TaskSpec, name: &str) -> Option<&'a str> {
    spec.environment.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn a_task_gets_its_task_role_through_the_credentials_endpoint() {
    let w = world("with-role");
    let role = w.role("app", "ecs-tasks.amazonaws.com", None).await;
    let svc = w.service("web", Some(role.clone())).await;
    w.settle().await;
    let spec = w.started(&svc);
    let uri = env(&spec, "AWS_CONTAINER_CREDENTIALS_FULL_URI").expect("full uri");
    let id = uri.strip_prefix("http://169.254.170.2:51679/v2/credentials/").expect("endpoint base");
    let token = env(&spec, "AWS_CONTAINER_AUTHORIZATION_TOKEN").expect("token");
    assert_eq!(env(&spec, "AWS_ENDPOINT_URL"), Some("http://169.254.170.2:51680"));
    assert_eq!(env(&spec, "AWS_DEFAULT_REGION"), Some("us-east-1"));

    let creds = w.control.task_credentials(id, token).expect("credentials");
    assert_eq!(creds.role_arn, role);
    assert!(creds.access_key_id.starts_with("ASIA"));
    // The session authenticates as the role, named after the task.
    let key = w.control.access_key(&creds.access_key_id).expect("lookup").expect("a key");
    assert_eq!(key.principal_arn, format!("arn:aws:sts::{}:assumed-role/app/{}", w.control.account_id(), spec.task_id));
    assert_eq!(key.session_token.as_deref(), Some(creds.token.as_str()));
    // Asked again, the same session is served (it is far from expiring).
    assert_eq!(w.control.task_credentials(id, token).expect("again"), creds);

    let wrong = format!("{token}x");
    let cases: [(&str, &str, TaskCredentialsError); 3] = [
        (id, &wrong, TaskCredentialsError::Unauthorized),
        (id, "", TaskCredentialsError::Unauthorized),
        ("00000000-0000-4000-a000-000000000000", token, TaskCredentialsError::NotFound),
    ];
    for (id, token, want) in cases {
        assert_eq!(w.control.task_credentials(id, token), Err(want));
    }

    // A role that stops trusting ecs-tasks.amazonaws.com gets no new sessions.
    w.control
        .handle_iam(
            &w.caller,
            Iam::UpdateAssumeRolePolicy(iam::UpdateAssumeRolePolicyRequest {
                role_name: Some("app".into()),
                policy_document: Some(common::trust_policy("ecs.amazonaws.com")),
            }),
        )
        .await
        .expect("update trust");
    assert!(matches!(w.control.task_credentials(id, token), Err(TaskCredentialsError::Denied(_))));

    // Once the task has stopped, its id is no longer served.
    w.driver.exit_task(&spec.task_id, 1);
    w.settle().await;
    assert_eq!(w.control.task_credentials(id, token), Err(TaskCredentialsError::NotFound));
}

#[tokio::test]
async fn a_task_without_a_task_role_gets_no_credentials() {
    let w = world("without-role");
    let svc = w.service("plain", None).await;
    w.settle().await;
    let spec = w.started(&svc);
    for name in ["AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_ENDPOINT_URL"] {
        assert_eq!(env(&spec, name), None, "{name}");
    }
}

#[tokio::test]
async fn task_credentials_are_renewed_before_they_expire_and_kept_sealed() {
    use berth_control::task_role::{RENEW_BEFORE_SECS, SESSION_SECS};
    let w = world("renewal");
    let role = w.role("app", "ecs-tasks.amazonaws.com", None).await;
    let svc = w.service("web", Some(role)).await;
    w.settle().await;
    let spec = w.started(&svc);
    let uri = env(&spec, "AWS_CONTAINER_CREDENTIALS_FULL_URI").expect("full uri");
    let id = uri.rsplit('/').next().expect("id");
    let token = env(&spec, "AWS_CONTAINER_AUTHORIZATION_TOKEN").expect("token");
    let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();

    let first = w.control.task_credentials_at(id, token, t0).expect("first");
    // The role's MaxSessionDuration (1 hour by default) bounds the session.
    let fresh_until = t0 + SESSION_SECS.min(3600.0) - RENEW_BEFORE_SECS;
    for t in [t0 + 60.0, fresh_until - 60.0] {
        assert_eq!(w.control.task_credentials_at(id, token, t).expect("reused"), first, "at t0+{}", t - t0);
    }
    // Inside the renewal window (SDKs refresh 15 minutes ahead), a fresh session that expires later.
    let renewed = w.control.task_credentials_at(id, token, fresh_until + 60.0).expect("renewed");
    assert_ne!(renewed.access_key_id, first.access_key_id);
    assert_ne!(renewed.secret_access_key, first.secret_access_key);
    assert!(renewed.expiration > first.expiration, "{} > {}", renewed.expiration, first.expiration);
    assert_eq!(w.control.task_credentials_at(id, token, fresh_until + 120.0).expect("again"), renewed);
    // Both sessions authenticate with their own secrets (the old one until it expires).
    for c in [&first, &renewed] {
        let key = w.control.access_key(&c.access_key_id).expect("lookup").expect("a key");
        assert_eq!(
            (key.secret_access_key.as_str(), key.session_token.as_deref()),
            (c.secret_access_key.as_str(), Some(c.token.as_str()))
        );
    }

    let secrets = [
        token,
        first.secret_access_key.as_str(),
        first.token.as_str(),
        renewed.secret_access_key.as_str(),
        renewed.token.as_str(),
    ];
    assert_eq!(w.at_rest(&secrets), Vec::<String>::new(), "plain text at rest");
}

#[tokio::test]
async fn plain_text_rows_of_an_older_berth_are_converted_at_start() {
    let mut w = world("legacy");
    let role = w.role("app", "ecs-tasks.amazonaws.com", None).await;
    let svc = w.service("web", Some(role)).await;
    w.settle().await;
    let spec = w.started(&svc);
    let uri = env(&spec, "AWS_CONTAINER_CREDENTIALS_FULL_URI").expect("full uri");
    let id = uri.rsplit('/').next().expect("id").to_string();
    let token = env(&spec, "AWS_CONTAINER_AUTHORIZATION_TOKEN").expect("token").to_string();
    let creds = w.control.task_credentials(&id, &token).expect("credentials");

    // Put the rows back as the previous schema's migration leaves them: plain text aside, nothing sealed.
    // Plus an AssumeRole session that only ever existed in plain text.
    let legacy_secret = "LegacySecretKeyOnlyInPlainText0123456789";
    let legacy_token = "IQoJb3JpZ2luX2VjLegacySessionTokenOnlyInPlainText";
    {
        let db = rusqlite::Connection::open(w.dir.join("berth.db")).expect("open");
        db.execute(
            "UPDATE task_credentials SET token_hash = NULL, legacy_token = ?1 WHERE credential_id = ?2",
            rusqlite::params![token, id],
        )
        .expect("legacy token");
        db.execute(
            "UPDATE sts_sessions SET sealed = NULL, legacy_secret = ?1, legacy_token = ?2 WHERE access_key_id = ?3",
            rusqlite::params![creds.secret_access_key, creds.token, creds.access_key_id],
        )
        .expect("legacy session");
        db.execute(
            "INSERT INTO sts_sessions(access_key_id, legacy_secret, legacy_token, role_name, role_id, session_name, \
             assumed_role_arn, expires_at, created_at) SELECT 'ASIALEGACY', ?1, ?2, role_name, role_id, 'old', \
             assumed_role_arn, expires_at, created_at FROM sts_sessions WHERE access_key_id = ?3",
            rusqlite::params![legacy_secret, legacy_token, creds.access_key_id],
        )
        .expect("legacy assume-role session");
    }
    assert_eq!(w.control.task_credentials(&id, &token), Err(TaskCredentialsError::NotFound), "unconverted");

    w.restart();
    assert_eq!(w.control.task_credentials(&id, &token).expect("converted"), creds, "the same session, reused");
    assert_eq!(
        w.control.task_credentials(&id, "wrong"),
        Err(TaskCredentialsError::Unauthorized),
        "the hash still refuses other tokens"
    );
    let key = w.control.access_key("ASIALEGACY").expect("lookup").expect("the legacy session");
    assert_eq!((key.secret_access_key.as_str(), key.session_token.as_deref()), (legacy_secret, Some(legacy_token)));
    let secrets = [token.as_str(), &creds.secret_access_key, &creds.token, legacy_secret, legacy_token];
    assert_eq!(w.at_rest(&secrets), Vec::<String>::new(), "plain text at rest after the conversion");
}
