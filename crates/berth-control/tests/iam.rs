//! IAM and STS through the control plane: entities and their errors, authorization of users and role sessions
//! by their policies (data-driven), and the Express role checks. No sockets: callers are resolved with
//! `Control::identify` as the API backend does.

use std::sync::Arc;

use berth_certs::Ca;
use berth_control::{CallerIdentity, Control, ControlConfig};
use berth_core::{AwsError, ErrorCode};
use berth_model::iam::{self, Operation as Iam, Output as IamOut};
use berth_model::sts::{self, Operation as Sts, Output as StsOut};
use berth_runtime::memory::MemoryDriver;
use berth_store::Store;

mod common;

use common::{user_key, user_with};

fn control() -> Arc<Control> {
    let driver = Arc::new(MemoryDriver::new());
    let ca = Arc::new(Ca::generate().expect("ca"));
    Control::new(ControlConfig::default(), Store::open_in_memory().expect("store"), driver, ca).expect("control")
}

async fn iam(c: &Control, caller: &CallerIdentity, op: Iam) -> Result<IamOut, AwsError> {
    c.handle_iam(caller, op).await
}

fn create_role(name: &str, trust: &str) -> Iam {
    Iam::CreateRole(iam::CreateRoleRequest {
        role_name: Some(name.into()),
        assume_role_policy_document: Some(trust.into()),
        ..Default::default()
    })
}

const TRUST_ECS_TASKS: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

#[tokio::test]
async fn entities_and_their_errors() {
    let c = control();
    let root = CallerIdentity::root(c.account_id());
    let code = |r: Result<IamOut, AwsError>| r.map(|_| ()).map_err(|e| e.code);
    assert_eq!(code(iam(&c, &root, create_role("r", TRUST_ECS_TASKS)).await), Ok(()));
    // (operation, expected)
    let cases: Vec<(Iam, Result<(), ErrorCode>)> = vec![
        (create_role("R", TRUST_ECS_TASKS), Err(ErrorCode::EntityAlreadyExists)),
        (create_role("bad name", TRUST_ECS_TASKS), Err(ErrorCode::ValidationError)),
        (
            create_role("x", r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}"#),
            Err(ErrorCode::MalformedPolicyDocument),
        ),
        (create_role("x", "not json"), Err(ErrorCode::MalformedPolicyDocument)),
        (Iam::GetRole(iam::GetRoleRequest { role_name: Some("nope".into()) }), Err(ErrorCode::NoSuchEntity)),
        (
            Iam::AttachRolePolicy(iam::AttachRolePolicyRequest {
                role_name: Some("r".into()),
                policy_arn: Some("arn:aws:iam::aws:policy/Nope".into()),
            }),
            Err(ErrorCode::NoSuchEntity),
        ),
        (
            Iam::AttachRolePolicy(iam::AttachRolePolicyRequest {
                role_name: Some("r".into()),
                policy_arn: Some("not-an-arn".into()),
            }),
            Err(ErrorCode::InvalidInput),
        ),
        (
            Iam::AttachRolePolicy(iam::AttachRolePolicyRequest {
                role_name: Some("r".into()),
                policy_arn: Some("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy".into()),
            }),
            Ok(()),
        ),
        (Iam::DeleteRole(iam::DeleteRoleRequest { role_name: Some("r".into()) }), Err(ErrorCode::DeleteConflict)),
        (
            Iam::PutRolePolicy(iam::PutRolePolicyRequest {
                role_name: Some("r".into()),
                policy_name: Some("p".into()),
                policy_document: Some(
                    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*"}]}"#.into(),
                ),
            }),
            Err(ErrorCode::MalformedPolicyDocument),
        ),
        (
            Iam::GetRolePolicy(iam::GetRolePolicyRequest {
                role_name: Some("r".into()),
                policy_name: Some("p".into()),
            }),
            Err(ErrorCode::NoSuchEntity),
        ),
        (
            Iam::DetachRolePolicy(iam::DetachRolePolicyRequest {
                role_name: Some("r".into()),
                policy_arn: Some("arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy".into()),
            }),
            Ok(()),
        ),
        (Iam::DeleteRole(iam::DeleteRoleRequest { role_name: Some("r".into()) }), Ok(())),
        (Iam::DeleteUser(iam::DeleteUserRequest { user_name: Some("nobody".into()) }), Err(ErrorCode::NoSuchEntity)),
    ];
    for (i, (op, want)) in cases.into_iter().enumerate() {
        let name = op.name();
        assert_eq!(code(iam(&c, &root, op).await), want, "case {i}: {name}");
    }
}

#[tokio::test]
async fn documents_come_back_as_given() {
    let c = control();
    let root = CallerIdentity::root(c.account_id());
    let IamOut::CreateRole(r) = iam(&c, &root, create_role("r", TRUST_ECS_TASKS)).await.expect("role") else {
        panic!("wrong output")
    };
    let doc = r.role.and_then(|r| r.assume_role_policy_document).expect("doc");
    // The XML encoder URL-encodes it on the wire (crates/berth-api protocol tests); here it is the document.
    assert_eq!(doc, TRUST_ECS_TASKS);
}

/// (the user's policy, operation as a label, expected allowed)
#[tokio::test]
async fn users_get_what_their_policies_allow() {
    let c = control();
    let cases: &[(&str, &str, bool)] = &[
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:ListClusters","Resource":"*"}]}"#,
            "ListClusters",
            true,
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:ListClusters","Resource":"*"}]}"#,
            "ListRoles",
            false,
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:List*","Resource":"*"}]}"#,
            "ListRoles",
            true,
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"iam:*","Resource":"*"}]}"#,
            "ListRoles",
            false,
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}"#,
            "ListClusters",
            true,
        ),
        (
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}]}"#,
            "ListRoles",
            false,
        ),
    ];
    for (i, (policy, op, allowed)) in cases.iter().enumerate() {
        let user = user_with(&c, &format!("u{i}"), policy).await;
        let got = match *op {
            "ListClusters" => {
                c.handle_ecs(&user, berth_model::ecs::Operation::ListClusters(Default::default())).await.map(|_| ())
            }
            "ListRoles" => iam(&c, &user, Iam::ListRoles(Default::default())).await.map(|_| ()),
            _ => unreachable!(),
        };
        assert_eq!(got.is_ok(), *allowed, "case {i}: {op}: {got:?}");
        if let Err(e) = got {
            assert_eq!(e.code, ErrorCode::AccessDenied);
            assert!(
                e.message.starts_with(&format!("User: arn:aws:iam::{}:user/u{i} is not authorized", c.account_id()))
            );
        }
    }
}

#[tokio::test]
async fn assume_role_sessions_carry_the_role_policies_and_expire() {
    let c = control();
    let root = CallerIdentity::root(c.account_id());
    let account = c.account_id().to_owned();
    let user = user_with(
        &c,
        "alice",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}"#,
    )
    .await;
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    iam(&c, &root, create_role("reader", &trust)).await.expect("role");
    iam(
        &c,
        &root,
        Iam::PutRolePolicy(iam::PutRolePolicyRequest {
            role_name: Some("reader".into()),
            policy_name: Some("p".into()),
            policy_document: Some(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:ListRoles","Resource":"*"}]}"#
                    .into(),
            ),
        }),
    )
    .await
    .expect("policy");
    let assume = |duration: i32| {
        Sts::AssumeRole(sts::AssumeRoleRequest {
            role_arn: Some(format!("arn:aws:iam::{account}:role/reader")),
            role_session_name: Some("s1".into()),
            duration_seconds: Some(duration),
            ..Default::default()
        })
    };
    assert_eq!(c.handle_sts(&user, assume(600)).await.map(|_| ()).map_err(|e| e.code), Err(ErrorCode::ValidationError));
    assert_eq!(
        c.handle_sts(&user, assume(3601)).await.map(|_| ()).map_err(|e| e.code),
        Err(ErrorCode::ValidationError)
    );
    assert_eq!(c.handle_sts(&root, assume(900)).await.map(|_| ()).map_err(|e| e.code), Err(ErrorCode::AccessDenied));
    let StsOut::AssumeRole(out) = c.handle_sts(&user, assume(900)).await.expect("assume") else {
        panic!("wrong output")
    };
    let creds = out.credentials.expect("credentials");
    let key = c.access_key(creds.access_key_id.as_deref().expect("id")).expect("lookup").expect("key");
    assert_eq!(key.principal_arn, format!("arn:aws:sts::{account}:assumed-role/reader/s1"));
    assert_eq!(key.session_token, creds.session_token);
    let expires = key.expires_at.expect("expiry");
    assert_eq!(creds.expiration.map(|t| t.0), Some(expires.floor()));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs_f64();
    assert!((expires - now - 900.0).abs() < 5.0, "expires in 900 s");

    let session = c.identify(&key.principal_arn, &account, &key.user_id).expect("identify");
    assert!(iam(&c, &session, Iam::ListRoles(Default::default())).await.is_ok());
    let e = iam(&c, &session, Iam::ListUsers(Default::default())).await.expect_err("denied");
    assert_eq!(
        e.message,
        format!(
            "User: arn:aws:sts::{account}:assumed-role/reader/s1 is not authorized to perform: iam:ListUsers because \
             no identity-based policy allows the iam:ListUsers action"
        )
    );
    // A user whose policies do not allow sts:AssumeRole is refused even though the trust names the account.
    let bob = user_with(
        &c,
        "bob",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecs:*","Resource":"*"}]}"#,
    )
    .await;
    assert_eq!(c.handle_sts(&bob, assume(900)).await.map(|_| ()).map_err(|e| e.code), Err(ErrorCode::AccessDenied));
}

#[tokio::test]
async fn ecs_permissions_can_be_scoped_by_tags() {
    use berth_model::ecs::{
        CreateExpressGatewayServiceRequest, DescribeExpressGatewayServiceRequest, ExpressGatewayContainer,
        Operation as Ecs, Output as EcsOut, Tag,
    };
    let c = control();
    common::create_express_roles(&c, &CallerIdentity::root(c.account_id())).await;
    let root = CallerIdentity::root(c.account_id());
    let account = c.account_id().to_owned();
    let user = user_with(
        &c,
        "web-team",
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ecs:CreateExpressGatewayService","Resource":"*","Condition":{"StringEquals":{"aws:RequestTag/team":"web"}}},
            {"Effect":"Allow","Action":"ecs:DescribeExpressGatewayService","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/team":"web"}}},
            {"Effect":"Allow","Action":"iam:PassRole","Resource":"*"}]}"#,
    )
    .await;
    let create = |name: &str, tags: Option<Vec<Tag>>| {
        Ecs::CreateExpressGatewayService(CreateExpressGatewayServiceRequest {
            service_name: Some(name.into()),
            execution_role_arn: Some(format!("arn:aws:iam::{account}:role/exec")),
            infrastructure_role_arn: Some(format!("arn:aws:iam::{account}:role/infra")),
            primary_container: Some(ExpressGatewayContainer { image: Some("demo:1".into()), ..Default::default() }),
            tags,
            ..Default::default()
        })
    };
    let web = Some(vec![Tag { key: Some("team".into()), value: Some("web".into()) }]);
    let e = c.handle_ecs(&user, create("untagged", None)).await.expect_err("denied");
    assert_eq!(e.code, ErrorCode::AccessDenied);
    assert!(
        e.message.contains(&format!("on resource: arn:aws:ecs:us-east-1:{account}:service/default/untagged")),
        "{}",
        e.message
    );
    let arn_of = |out: EcsOut| match out {
        EcsOut::CreateExpressGatewayService(r) => r.service.and_then(|s| s.service_arn).expect("arn"),
        _ => panic!("wrong output"),
    };
    let mine = arn_of(c.handle_ecs(&user, create("mine", web)).await.expect("tagged create"));
    let theirs = arn_of(c.handle_ecs(&root, create("theirs", None)).await.expect("root create"));
    let describe = |arn: &str| {
        Ecs::DescribeExpressGatewayService(DescribeExpressGatewayServiceRequest {
            service_arn: Some(arn.into()),
            ..Default::default()
        })
    };
    assert!(c.handle_ecs(&user, describe(&mine)).await.is_ok());
    let e = c.handle_ecs(&user, describe(&theirs)).await.expect_err("denied");
    assert_eq!(e.code, ErrorCode::AccessDenied);

    // DescribeServices is checked on each service it names (by name or ARN): a user allowed on one service's ARN
    // reads it and is denied when the call also names another.
    let reader = user_with(
        &c,
        "reader",
        &format!(r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"ecs:DescribeServices","Resource":"{mine}"}}]}}"#),
    )
    .await;
    let services = |names: &[&str]| {
        Ecs::DescribeServices(berth_model::ecs::DescribeServicesRequest {
            services: Some(names.iter().map(|n| n.to_string()).collect()),
            ..Default::default()
        })
    };
    assert!(c.handle_ecs(&reader, services(&["mine"])).await.is_ok(), "by name");
    assert!(c.handle_ecs(&reader, services(&[&mine])).await.is_ok(), "by ARN");
    let e = c.handle_ecs(&reader, services(&["mine", "theirs"])).await.expect_err("denied");
    assert_eq!(e.code, ErrorCode::AccessDenied);
    assert!(e.message.contains(&theirs), "{}", e.message);
}

#[tokio::test]
async fn updating_a_service_needs_passrole_for_the_roles_it_passes() {
    use berth_model::ecs::{
        CreateExpressGatewayServiceRequest, ExpressGatewayContainer, Operation as Ecs, Output as EcsOut,
        UpdateExpressGatewayServiceRequest,
    };
    let c = control();
    common::create_express_roles(&c, &CallerIdentity::root(c.account_id())).await;
    let root = CallerIdentity::root(c.account_id());
    let account = c.account_id().to_owned();
    let EcsOut::CreateExpressGatewayService(out) = c
        .handle_ecs(
            &root,
            Ecs::CreateExpressGatewayService(CreateExpressGatewayServiceRequest {
                service_name: Some("web".into()),
                execution_role_arn: Some(format!("arn:aws:iam::{account}:role/exec")),
                infrastructure_role_arn: Some(format!("arn:aws:iam::{account}:role/infra")),
                primary_container: Some(ExpressGatewayContainer { image: Some("demo:1".into()), ..Default::default() }),
                ..Default::default()
            }),
        )
        .await
        .expect("create")
    else {
        panic!("wrong output")
    };
    let arn = out.service.and_then(|s| s.service_arn).expect("arn");
    // May pass roles to ecs.amazonaws.com only: not an execution role (passed to ecs-tasks.amazonaws.com).
    let user = user_with(
        &c,
        "deployer",
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ecs:UpdateExpressGatewayService","Resource":"*"},
            {"Effect":"Allow","Action":"iam:PassRole","Resource":"*","Condition":{"StringEquals":{"iam:PassedToService":"ecs.amazonaws.com"}}}]}"#,
    )
    .await;
    let update = |exec: Option<String>| {
        Ecs::UpdateExpressGatewayService(UpdateExpressGatewayServiceRequest {
            service_arn: Some(arn.clone()),
            execution_role_arn: exec,
            primary_container: Some(ExpressGatewayContainer { image: Some("demo:2".into()), ..Default::default() }),
            ..Default::default()
        })
    };
    // An update that passes no role needs no PassRole.
    c.handle_ecs(&user, update(None)).await.expect("image update");
    let e = c.handle_ecs(&user, update(Some(format!("arn:aws:iam::{account}:role/exec")))).await.expect_err("denied");
    assert_eq!(e.code, ErrorCode::AccessDenied);
    assert!(e.message.contains("iam:PassRole"), "{}", e.message);
}

#[tokio::test]
async fn berth_acts_as_a_role_with_that_roles_policies() {
    let c = control();
    common::create_express_roles(&c, &CallerIdentity::root(c.account_id())).await;
    let account = c.account_id().to_owned();
    let exec = format!("arn:aws:iam::{account}:role/exec");
    let ctx = |action: &str| berth_iam::RequestContext::new(action, "*");
    // AmazonECSTaskExecutionRolePolicy allows pulling from ECR and writing logs, not reading secrets.
    assert!(c.authorize_as_role(&exec, "task1", ctx("ecr:BatchGetImage")).is_ok());
    assert!(c.authorize_as_role(&exec, "task1", ctx("logs:PutLogEvents")).is_ok());
    let e = c.authorize_as_role(&exec, "task1", ctx("secretsmanager:GetSecretValue")).expect_err("denied");
    assert!(e.message.contains("assumed-role/exec/task1 is not authorized"), "{}", e.message);
    let e = c
        .authorize_as_role(&format!("arn:aws:iam::{account}:role/nope"), "t", ctx("ecr:BatchGetImage"))
        .expect_err("missing role");
    assert_eq!(e.code, ErrorCode::AccessDenied);
}

/// A control plane over a store file with a secrets key in its directory (restartable).
fn harness(name: &str) -> common::Harness {
    common::Harness::new(&format!("iam-{name}"), |dir| ControlConfig {
        secrets_key: Some(dir.join("secrets.key")),
        ..ControlConfig::default()
    })
}

fn secret_of(c: &Control, access_key_id: &str) -> Option<String> {
    c.access_key(access_key_id).expect("lookup").map(|k| k.secret_access_key)
}

#[tokio::test]
async fn long_term_access_keys_are_sealed_at_rest() {
    let mut h = harness("sealed-keys");
    let root = h.control.root_credentials().expect("root key");
    let (id, secret) = user_key(&h.control, "alice").await;
    assert_eq!(secret_of(&h.control, &id), Some(secret.clone()));
    assert_eq!(secret_of(&h.control, &id), Some(secret.clone()), "again (cached)");
    assert_eq!(secret_of(&h.control, &root.access_key_id), Some(root.secret_access_key.clone()));
    assert_eq!(h.at_rest(&[&secret, &root.secret_access_key]), Vec::<String>::new(), "plain text at rest");

    // After a restart the same keys open; the root user keeps its key.
    h.restart();
    let again = h.control.root_credentials().expect("root key");
    assert_eq!(
        (again.access_key_id, again.secret_access_key),
        (root.access_key_id.clone(), root.secret_access_key.clone())
    );
    assert_eq!(secret_of(&h.control, &id), Some(secret.clone()));

    // DeleteAccessKey forgets a key at once, cached or not.
    let root_caller = CallerIdentity::root(h.control.account_id());
    let delete = |id: &str| {
        Iam::DeleteAccessKey(iam::DeleteAccessKeyRequest {
            user_name: Some("alice".into()),
            access_key_id: Some(id.into()),
        })
    };
    iam(&h.control, &root_caller, delete(&id)).await.expect("delete");
    assert_eq!(secret_of(&h.control, &id), None, "deleted");

    // A sealed secret is bound to its key id: copied to another key's row, it does not open.
    let (bob, _) = user_key(&h.control, "bob").await;
    {
        let db = rusqlite::Connection::open(h.dir.join("berth.db")).expect("open");
        db.execute(
            "UPDATE credentials SET sealed = (SELECT sealed FROM credentials WHERE access_key_id = ?1) \
             WHERE access_key_id = ?2",
            rusqlite::params![root.access_key_id, bob],
        )
        .expect("swap");
    }
    h.restart();
    assert_eq!(secret_of(&h.control, &bob), None, "another key's sealed secret");
    assert_eq!(secret_of(&h.control, &root.access_key_id), Some(root.secret_access_key));
}

#[tokio::test]
async fn plain_text_access_keys_of_an_older_berth_are_converted_at_start() {
    let mut h = harness("legacy-keys");
    let root = h.control.root_credentials().expect("root key");
    let (id, secret) = user_key(&h.control, "alice").await;
    // Put the rows back as the migration leaves an older berth's: the secret in plain text aside, nothing sealed.
    {
        let db = rusqlite::Connection::open(h.dir.join("berth.db")).expect("open");
        for (key, plain) in [(&root.access_key_id, &root.secret_access_key), (&id, &secret)] {
            db.execute(
                "UPDATE credentials SET sealed = NULL, legacy_secret = ?1 WHERE access_key_id = ?2",
                rusqlite::params![plain, key],
            )
            .expect("legacy row");
        }
    }
    assert_eq!(h.at_rest(&[&secret, &root.secret_access_key]).len(), 2, "the test put plain text there");
    assert_eq!(secret_of(&h.control, &id), None, "not served while unsealed");

    h.restart();
    assert_eq!(secret_of(&h.control, &id), Some(secret.clone()), "converted");
    let again = h.control.root_credentials().expect("root key");
    assert_eq!(
        (again.access_key_id, again.secret_access_key),
        (root.access_key_id.clone(), root.secret_access_key.clone()),
        "the root user keeps its key"
    );
    assert_eq!(h.at_rest(&[&secret, &root.secret_access_key]), Vec::<String>::new(), "plain text after conversion");
}
