//! berth-client against berth's own server side: every request is signed by the client and verified by
//! berth-api's SigV4 verifier, encoded by the client and decoded by the server's codec into the typed request,
//! answered through the server's encoder and decoded back by the client. A stub backend records what the server
//! decoded and answers canned outputs, so each case checks both directions of every protocol.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use berth_api::{ApiConfig, Backend, Caller, Credential, Principal, Request, Response};
use berth_client::{Client, ClientError, Credentials, Service, Settings};
use berth_core::{AwsError, ErrorCode};
use serde_json::{Value, json};

const REGION: &str = "eu-west-3";
const AKID: &str = "AKIAROOTTEST0000001";
const SECRET: &str = "root/secret+key=with/special";
const TEMP_AKID: &str = "ASIATEMPTEST0000001";
const TEMP_SECRET: &str = "temp-secret";
const TOKEN: &str = "session/token+value==";

#[derive(Default)]
struct Stub {
    /// What the server decoded: (operation, the typed request as member-name JSON).
    seen: Mutex<Vec<(String, Value)>>,
    /// The output each operation answers with (member-name JSON; null for operations without output).
    canned: Mutex<HashMap<String, Value>>,
    /// The error the next call answers with instead.
    fail: Mutex<Option<AwsError>>,
}

impl Stub {
    fn last(&self) -> (String, Value) {
        self.seen.lock().expect("lock").last().cloned().expect("a request reached the backend")
    }
}

fn principal() -> Principal {
    Principal { arn: "arn:aws:iam::123456789012:root".into(), account: "123456789012".into(), user_id: "root".into() }
}

#[async_trait::async_trait]
impl Backend for Stub {
    fn credential(&self, access_key_id: &str) -> Option<Credential> {
        match access_key_id {
            AKID => Some(Credential {
                secret_access_key: SECRET.into(),
                principal: principal(),
                session_token: None,
                expires_at: None,
            }),
            TEMP_AKID => Some(Credential {
                secret_access_key: TEMP_SECRET.into(),
                principal: principal(),
                session_token: Some(TOKEN.into()),
                expires_at: None,
            }),
            _ => None,
        }
    }

    fn region(&self) -> String {
        REGION.into()
    }

    async fn handle(&self, _caller: Caller, request: Request) -> Result<Response, AwsError> {
        let name = request.operation_name().to_string();
        let value = match &request {
            Request::Elbv2(op) => op.to_value(),
            Request::Iam(op) => op.to_value(),
            Request::Sts(op) => op.to_value(),
            Request::Ec2(op) => op.to_value(),
            Request::CloudWatch(op) => op.to_value(),
            Request::Ecs(berth_model::ecs::Operation::ListServices(r)) => serde_json::to_value(r).expect("json"),
            other => panic!("the stub does not serve {other:?}"),
        };
        self.seen.lock().expect("lock").push((name.clone(), value));
        if let Some(e) = self.fail.lock().expect("lock").take() {
            return Err(e);
        }
        let canned = self.canned.lock().expect("lock").get(&name).cloned().unwrap_or(Value::Null);
        let bad = |e: berth_model::DecodeError| AwsError::internal(format!("canned {name}: {e}"));
        Ok(match request {
            Request::Elbv2(_) => Response::Elbv2(berth_model::elbv2::Output::from_value(&name, canned).map_err(bad)?),
            Request::Iam(_) => Response::Iam(berth_model::iam::Output::from_value(&name, canned).map_err(bad)?),
            Request::Sts(_) => Response::Sts(berth_model::sts::Output::from_value(&name, canned).map_err(bad)?),
            Request::Ec2(_) => Response::Ec2(berth_model::ec2::Output::from_value(&name, canned).map_err(bad)?),
            Request::CloudWatch(_) => {
                Response::CloudWatch(berth_model::cloudwatch::Output::from_value(&name, canned).map_err(bad)?)
            }
            Request::Ecs(_) => Response::Ecs(berth_model::ecs::Output::ListServices(
                serde_json::from_value(canned).map_err(|e| AwsError::internal(e.to_string()))?,
            )),
            _ => return Err(AwsError::internal("not served")),
        })
    }
}

/// A running server; dropping it stops it.
struct Server {
    addr: SocketAddr,
    stub: Arc<Stub>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Serves plain HTTP, or HTTPS with a certificate for localhost and 127.0.0.1 issued by `ca`.
async fn start(ca: Option<&berth_certs::Ca>) -> Server {
    let tls = ca.map(|ca| {
        let issued = ca.issue(&["localhost".to_string()], &[IpAddr::V4(Ipv4Addr::LOCALHOST)]).expect("cert");
        let config = berth_certs::single_cert_server_config(&issued.cert_pem, &issued.key_pem, &[b"h2", b"http/1.1"]);
        Arc::new(config.expect("tls"))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stub = Arc::new(Stub::default());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let backend = Arc::clone(&stub);
    tokio::spawn(async move {
        let _ = berth_api::serve(listener, tls, backend, ApiConfig::default(), async {
            let _ = stopped.await;
        })
        .await;
    });
    Server { addr, stub, _stop: stop }
}

fn root() -> Credentials {
    Credentials { access_key_id: AKID.into(), secret_access_key: SECRET.into(), session_token: None }
}

fn http_client(addr: SocketAddr, credentials: Credentials) -> Client {
    let settings = Settings { endpoint: format!("http://{addr}"), region: REGION.into(), ca_pem: None };
    Client::new(settings, credentials).expect("client")
}

/// (service, operation, input, canned output).
fn cases() -> Vec<(Service, &'static str, Value, Value)> {
    let tg_arn = "arn:aws:elasticloadbalancing:eu-west-3:123456789012:targetgroup/web/0123456789abcdef";
    let tg = json!({
        "TargetGroupArn": tg_arn, "TargetGroupName": "web", "Protocol": "HTTP", "Port": 8080, "VpcId": "vpc-1",
        "HealthCheckProtocol": "HTTP", "HealthCheckPort": "traffic-port", "HealthCheckEnabled": true,
        "HealthCheckIntervalSeconds": 30, "HealthCheckTimeoutSeconds": 5, "HealthyThresholdCount": 5,
        "UnhealthyThresholdCount": 2, "HealthCheckPath": "/ping?x=1&y=<2>", "Matcher": {"HttpCode": "200-399"},
        "LoadBalancerArns": ["arn:aws:elasticloadbalancing:eu-west-3:123456789012:loadbalancer/app/a/1", "lb-2"],
        "TargetType": "ip"
    });
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ecs-tasks.amazonaws.com"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"a b":"x+y%z&<>"}}}]}"#;
    let role = json!({
        "Path": "/", "RoleName": "ecsTaskExecutionRole", "RoleId": "AROA123",
        "Arn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole", "CreateDate": 1_696_897_800.25,
        "AssumeRolePolicyDocument": policy, "Description": "runs tasks", "MaxSessionDuration": 3600,
        "Tags": [{"Key": "team", "Value": "a&b"}, {"Key": "empty", "Value": ""}]
    });
    vec![
        (
            Service::Elbv2,
            "DescribeTargetGroups",
            json!({"TargetGroupArns": [tg_arn, "second"], "PageSize": 10}),
            json!({"TargetGroups": [tg.clone(), {"TargetGroupArn": "second", "LoadBalancerArns": []}], "NextMarker": "m"}),
        ),
        (Service::Elbv2, "DescribeTargetGroups", json!({"Names": []}), json!({"TargetGroups": []})),
        (
            Service::Elbv2,
            "ModifyTargetGroup",
            json!({"TargetGroupArn": tg_arn, "HealthCheckPath": "/healthz", "HealthCheckIntervalSeconds": 10,
                   "HealthyThresholdCount": 2, "HealthCheckEnabled": false, "Matcher": {"HttpCode": "200,302"}}),
            json!({"TargetGroups": [tg]}),
        ),
        (
            Service::Elbv2,
            "AddTags",
            json!({"ResourceArns": [tg_arn], "Tags": [{"Key": "k", "Value": "v w"}, {"Key": "only"}]}),
            json!({}),
        ),
        (
            Service::Iam,
            "ListRoles",
            json!({"PathPrefix": "/", "MaxItems": 100}),
            json!({"Roles": [role.clone()], "IsTruncated": false}),
        ),
        (Service::Iam, "GetRole", json!({"RoleName": "ecsTaskExecutionRole"}), json!({"Role": role.clone()})),
        (
            Service::Iam,
            "CreateRole",
            json!({"RoleName": "r", "AssumeRolePolicyDocument": policy, "Tags": [{"Key": "k", "Value": "v"}]}),
            json!({"Role": role}),
        ),
        (Service::Iam, "DeleteRole", json!({"RoleName": "r"}), Value::Null),
        (
            Service::Ec2,
            "DescribeSecurityGroups",
            json!({"GroupIds": ["sg-1", "sg-2"], "Filters": [{"Name": "vpc-id", "Values": ["vpc-1", "vpc-2"]}], "DryRun": false}),
            json!({"SecurityGroups": [{
                "GroupId": "sg-1", "GroupName": "web", "Description": "web & more", "VpcId": "vpc-1",
                "OwnerId": "123456789012",
                "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "all"}],
                    "UserIdGroupPairs": [{"GroupId": "sg-2", "UserId": "123456789012"}]}],
                "IpPermissionsEgress": [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
                "Tags": [{"Key": "Name", "Value": "web"}]
            }]}),
        ),
        (Service::Ec2, "DescribeSecurityGroups", json!({}), json!({"SecurityGroups": []})),
        (
            Service::Sts,
            "GetCallerIdentity",
            json!({}),
            json!({"UserId": "AIDA1", "Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/alice"}),
        ),
        (
            Service::CloudWatch,
            "DescribeAlarms",
            json!({"AlarmNames": ["high-5xx"], "MaxRecords": 5}),
            json!({"MetricAlarms": [{"AlarmName": "high-5xx", "Threshold": 5.5, "EvaluationPeriods": 3,
                "ComparisonOperator": "GreaterThanThreshold", "StateValue": "OK",
                "StateUpdatedTimestamp": 1_696_897_800.5}]}),
        ),
        (
            Service::Ecs,
            "ListServices",
            json!({"cluster": "default", "maxResults": 10}),
            json!({"serviceArns": ["arn:aws:ecs:eu-west-3:123456789012:service/default/web"], "nextToken": "t"}),
        ),
    ]
}

#[tokio::test]
async fn every_protocol_round_trips_through_the_server_codec() {
    let server = start(None).await;
    let client = http_client(server.addr, root());
    for (service, action, input, output) in cases() {
        server.stub.canned.lock().expect("lock").insert(action.to_string(), output.clone());
        let got = client.call_value(service, action, input.clone()).await;
        let got = got.unwrap_or_else(|e| panic!("{service:?} {action} {input}: {e:?}"));
        let (seen_action, seen_input) = server.stub.last();
        assert_eq!(seen_action, action);
        assert_eq!(seen_input, input, "{service:?} {action}: what the server decoded");
        let expected = if output.is_null() { json!({}) } else { output };
        assert_eq!(got, expected, "{service:?} {action}: what the client decoded");
    }
}

#[tokio::test]
async fn typed_calls_use_the_generated_shapes() {
    let server = start(None).await;
    server.stub.canned.lock().expect("lock").insert(
        "GetCallerIdentity".into(),
        json!({"UserId": "AIDA1", "Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/alice"}),
    );
    let client = http_client(server.addr, root());
    let out: berth_model::sts::GetCallerIdentityResponse = client
        .call(Service::Sts, "GetCallerIdentity", &berth_model::sts::GetCallerIdentityRequest::default())
        .await
        .expect("typed call");
    assert_eq!(out.arn.as_deref(), Some("arn:aws:iam::123456789012:user/alice"));
    assert_eq!(out.account.as_deref(), Some("123456789012"));
}

#[tokio::test]
async fn errors_are_decoded_in_every_protocol() {
    let server = start(None).await;
    let client = http_client(server.addr, root());
    let cases = [
        (
            Service::Ecs,
            "ListServices",
            json!({"cluster": "nope"}),
            ErrorCode::ClusterNotFound,
            "ClusterNotFoundException",
            400,
        ),
        (Service::Ecs, "ListServices", json!({}), ErrorCode::AccessDenied, "AccessDeniedException", 400),
        (Service::Iam, "GetRole", json!({"RoleName": "nope"}), ErrorCode::NoSuchEntity, "NoSuchEntity", 404),
        (Service::Iam, "GetRole", json!({"RoleName": "x"}), ErrorCode::AccessDenied, "AccessDenied", 403),
        (
            Service::Ec2,
            "DescribeSecurityGroups",
            json!({"GroupIds": ["sg-9"]}),
            ErrorCode::Ec2InvalidGroupNotFound,
            "InvalidGroup.NotFound",
            400,
        ),
        (Service::Ec2, "DescribeSecurityGroups", json!({}), ErrorCode::AccessDenied, "UnauthorizedOperation", 403),
        (Service::Sts, "GetCallerIdentity", json!({}), ErrorCode::AccessDenied, "AccessDenied", 403),
        (Service::CloudWatch, "DescribeAlarms", json!({}), ErrorCode::AccessDenied, "AccessDenied", 400),
    ];
    for (service, action, input, code, wire_code, status) in cases {
        let message = format!("no <{wire_code}> & that's final");
        *server.stub.fail.lock().expect("lock") = Some(AwsError::new(code, message.clone()));
        let err = client.call_value(service, action, input).await.expect_err("fails");
        match err {
            ClientError::Api { code: c, message: m, status: s, request_id } => {
                assert_eq!(c, wire_code, "{service:?} {action}");
                assert_eq!(m, message, "{service:?} {action}");
                assert_eq!(s, status, "{service:?} {action}: the HTTP status");
                assert!(request_id.is_some_and(|r| !r.is_empty()), "{service:?} {action}: a request id");
            }
            other => panic!("{service:?} {action}: {other:?}"),
        }
    }
    // The model's own validation, decoded by the server from what the client sent: a required member missing.
    let err = client.call_value(Service::Iam, "GetRole", json!({})).await.expect_err("RoleName is required");
    assert_eq!(err.code(), Some("ValidationError"), "{err:?}");
    let err = client.call_value(Service::Ec2, "CreateSecurityGroup", json!({})).await.expect_err("required");
    assert_eq!(err.code(), Some("MissingParameter"), "{err:?}");
}

#[tokio::test]
async fn signatures_verify_only_with_the_right_key_and_token() {
    let server = start(None).await;
    server.stub.canned.lock().expect("lock").insert(
        "GetCallerIdentity".into(),
        json!({"UserId": "u", "Account": "123456789012", "Arn": "arn:aws:iam::123456789012:root"}),
    );
    server.stub.canned.lock().expect("lock").insert("ListServices".into(), json!({"serviceArns": []}));
    let temp = Credentials {
        access_key_id: TEMP_AKID.into(),
        secret_access_key: TEMP_SECRET.into(),
        session_token: Some(TOKEN.into()),
    };
    let client = http_client(server.addr, root());
    for creds in [root(), temp.clone()] {
        let c = client.with_credentials(creds.clone());
        c.call_value(Service::Sts, "GetCallerIdentity", json!({})).await.unwrap_or_else(|e| panic!("{creds:?}: {e:?}"));
        c.call_value(Service::Ecs, "ListServices", json!({})).await.unwrap_or_else(|e| panic!("{creds:?}: {e:?}"));
    }
    let wrong_secret = Credentials { secret_access_key: "wrong".into(), ..root() };
    let unknown = Credentials { access_key_id: "AKIANOBODY".into(), ..root() };
    let no_token = Credentials { session_token: None, ..temp.clone() };
    let other_token = Credentials { session_token: Some("other".into()), ..temp };
    let cases = [
        (wrong_secret.clone(), Service::Sts, "SignatureDoesNotMatch"),
        (wrong_secret.clone(), Service::Ecs, "InvalidSignatureException"),
        (wrong_secret, Service::Ec2, "AuthFailure"),
        (unknown.clone(), Service::Iam, "InvalidClientTokenId"),
        (unknown, Service::Ecs, "UnrecognizedClientException"),
        (no_token, Service::Sts, "InvalidClientTokenId"),
        (other_token, Service::Ecs, "UnrecognizedClientException"),
    ];
    let seen_before = server.stub.seen.lock().expect("lock").len();
    for (creds, service, code) in cases {
        let action = match service {
            Service::Ecs => "ListServices",
            Service::Ec2 => "DescribeSecurityGroups",
            Service::Iam => "ListRoles",
            _ => "GetCallerIdentity",
        };
        let err = client.with_credentials(creds.clone()).call_value(service, action, json!({})).await;
        let err = err.expect_err("refused");
        assert_eq!(err.code(), Some(code), "{creds:?} {service:?}: {err:?}");
    }
    assert_eq!(server.stub.seen.lock().expect("lock").len(), seen_before, "refused requests never reach the backend");
}

#[tokio::test]
async fn https_trusts_only_the_given_ca() {
    let ca = berth_certs::Ca::generate().expect("ca");
    let server = start(Some(&ca)).await;
    server.stub.canned.lock().expect("lock").insert(
        "GetCallerIdentity".into(),
        json!({"UserId": "u", "Account": "123456789012", "Arn": "arn:aws:iam::123456789012:root"}),
    );
    let port = server.addr.port();
    for host in ["localhost", "127.0.0.1"] {
        let settings = Settings {
            endpoint: format!("https://{host}:{port}/"),
            region: REGION.into(),
            ca_pem: Some(ca.root_pem().as_bytes().to_vec()),
        };
        let client = Client::new(settings, root()).expect("client");
        let out = client.call_value(Service::Sts, "GetCallerIdentity", json!({})).await.expect("over TLS");
        assert_eq!(out["Account"], "123456789012");
    }
    let other = berth_certs::Ca::generate().expect("ca");
    let endpoint = format!("https://localhost:{port}");
    let settings =
        Settings { endpoint: endpoint.clone(), region: REGION.into(), ca_pem: Some(other.root_pem().into()) };
    let err =
        Client::new(settings, root()).expect("client").call_value(Service::Sts, "GetCallerIdentity", json!({})).await;
    match err {
        Err(ClientError::Transport { endpoint: e, detail }) => {
            assert_eq!(e, endpoint);
            assert!(detail.to_lowercase().contains("certificate"), "{detail}");
        }
        other => panic!("an untrusted certificate must fail: {other:?}"),
    }
    let settings = Settings { endpoint, region: REGION.into(), ca_pem: None };
    assert!(matches!(Client::new(settings, root()), Err(ClientError::Config(m)) if m.contains("AWS_CA_BUNDLE")));
}

#[tokio::test]
async fn an_unreachable_endpoint_is_a_transport_error_naming_it() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let err = http_client(addr, root()).call_value(Service::Sts, "GetCallerIdentity", json!({})).await;
    match err {
        Err(ClientError::Transport { endpoint, detail }) => {
            assert_eq!(endpoint, format!("http://{addr}"));
            assert!(detail.to_lowercase().contains("refused"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_input_is_refused_before_sending() {
    let server = start(None).await;
    let client = http_client(server.addr, root());
    for (service, action, input, text) in [
        (Service::Iam, "GetRole", json!({"Rolename": "x"}), "'Rolename' is not a member of GetRoleRequest"),
        (Service::Iam, "GetRole", json!({"RoleName": 5}), "'RoleName' must be a string"),
        (Service::Iam, "ListRoles", json!({"MaxItems": "ten"}), "'MaxItems' must be a whole number"),
        (Service::Elbv2, "DescribeTargetGroups", json!({"Names": "web"}), "'Names' must be a list"),
        (Service::Iam, "NoSuchAction", json!({}), "NoSuchAction is not an operation of iam"),
        (Service::Ecs, "ListServices", json!([1]), "must be a JSON object"),
    ] {
        match client.call_value(service, action, input.clone()).await {
            Err(ClientError::Config(m)) => assert!(m.contains(text), "{input}: {m}"),
            other => panic!("{action} {input}: {other:?}"),
        }
    }
    assert!(server.stub.seen.lock().expect("lock").is_empty());
}

/// Counts the TCP connections made to `target` through it.
async fn counting_proxy(target: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let count = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (addr, count)
}

#[tokio::test]
async fn calls_and_clones_share_one_pooled_connection() {
    let server = start(None).await;
    server.stub.canned.lock().expect("lock").insert(
        "GetCallerIdentity".into(),
        json!({"UserId": "u", "Account": "123456789012", "Arn": "arn:aws:iam::123456789012:root"}),
    );
    let (proxy, connections) = counting_proxy(server.addr).await;
    let client = http_client(proxy, root());
    let other = client.with_credentials(root());
    for c in [&client, &other, &client.clone(), &other] {
        for _ in 0..3 {
            c.call_value(Service::Sts, "GetCallerIdentity", json!({})).await.expect("call");
        }
    }
    assert_eq!(server.stub.seen.lock().expect("lock").len(), 12);
    assert_eq!(connections.load(Ordering::SeqCst), 1, "sequential calls reuse one connection");
}

#[tokio::test]
async fn concurrent_https_calls_share_one_http2_connection() {
    let ca = berth_certs::Ca::generate().expect("ca");
    let server = start(Some(&ca)).await;
    server.stub.canned.lock().expect("lock").insert(
        "GetCallerIdentity".into(),
        json!({"UserId": "u", "Account": "123456789012", "Arn": "arn:aws:iam::123456789012:root"}),
    );
    server.stub.canned.lock().expect("lock").insert("ListRoles".into(), json!({"Roles": [], "IsTruncated": false}));
    let (proxy, connections) = counting_proxy(server.addr).await;
    let settings = Settings {
        endpoint: format!("https://localhost:{}", proxy.port()),
        region: REGION.into(),
        ca_pem: Some(ca.root_pem().into()),
    };
    let client = Client::new(settings, root()).expect("client");
    // The first call learns (by ALPN) that the connection speaks HTTP/2; then every call multiplexes on it.
    client.call_value(Service::Sts, "GetCallerIdentity", json!({})).await.expect("first call");
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..50 {
        let c = if i % 2 == 0 { client.clone() } else { client.with_credentials(root()) };
        let (service, action) =
            if i % 2 == 0 { (Service::Sts, "GetCallerIdentity") } else { (Service::Iam, "ListRoles") };
        calls.spawn(async move { c.call_value(service, action, json!({})).await });
    }
    while let Some(done) = calls.join_next().await {
        done.expect("task").expect("call");
    }
    assert_eq!(server.stub.seen.lock().expect("lock").len(), 51);
    assert_eq!(connections.load(Ordering::SeqCst), 1, "concurrent calls multiplex on one HTTP/2 connection");
}
