//! What the control-plane suites share: a control plane over a fresh store in a temporary directory and the
//! in-memory driver, restarts over the same store, reconciler passes run until spawned work settles, and IAM
//! roles created the way the AWS documentation's CLI flow creates them.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_certs::Ca;
use berth_control::{CallerIdentity, Control, ControlConfig};
use berth_core::{AwsError, ErrorCode};
use berth_model::ec2;
use berth_model::ecs;
use berth_model::elbv2::{self as elb, Operation as E, Output as EO};
use berth_model::iam::{self, Operation as Iam};
use berth_routes::{ProxyReport, RouteTable, TargetHealth, TargetReport, TargetState};
use berth_runtime::memory::MemoryDriver;
use berth_store::Store;

/// A control plane as a server runs it, minus the wire protocols.
pub struct Harness {
    pub control: Arc<Control>,
    pub driver: Arc<MemoryDriver>,
    pub caller: CallerIdentity,
    /// The data directory (`berth.db` lives here).
    pub dir: PathBuf,
    pub ca: Arc<Ca>,
    config: ControlConfig,
}

impl Harness {
    /// A fresh world named `name` (the directory is removed first); `config` may place files in the directory.
    pub fn new(name: &str, config: impl FnOnce(&Path) -> ControlConfig) -> Harness {
        let dir = std::env::temp_dir().join(format!("berth-control-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let config = config(&dir);
        let driver = Arc::new(MemoryDriver::new());
        let ca = Arc::new(Ca::generate().expect("ca"));
        let control = open(&config, &dir, &driver, &ca);
        let caller = CallerIdentity::root(control.account_id());
        Harness { control, driver, caller, dir, ca, config }
    }

    /// A new control plane over the same store and runtime, as after a server restart.
    pub fn restart(&mut self) {
        self.control = open(&self.config, &self.dir, &self.driver, &self.ca);
    }

    /// Runs reconciler passes, letting spawned starts and stops finish in between.
    pub async fn settle(&self) {
        for _ in 0..4 {
            self.control.reconcile_once().await.expect("pass");
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        }
    }

    /// Which of `needles` occur in the database file or its WAL.
    pub fn at_rest(&self, needles: &[&str]) -> Vec<String> {
        let db = std::fs::read(self.dir.join("berth.db")).expect("db");
        let wal = std::fs::read(self.dir.join("berth.db-wal")).unwrap_or_default();
        needles
            .iter()
            .filter(|n| [&db, &wal].iter().any(|bytes| bytes.windows(n.len()).any(|x| x == n.as_bytes())))
            .map(|n| n.to_string())
            .collect()
    }

    /// The route table the control plane publishes now.
    pub fn table(&self) -> Arc<RouteTable> {
        self.control.subscribe_routes().borrow().clone()
    }

    /// Reports what a proxy serving the current table would: every target as `health` says (draining ones
    /// draining) with `in_flight` requests each.
    pub fn report_as_proxy(&self, health: TargetHealth, in_flight: u64) {
        let table = self.table();
        let targets = table
            .target_groups
            .iter()
            .flat_map(|g| {
                g.targets.iter().map(move |t| TargetReport {
                    target_group: g.id.clone(),
                    target: t.id.clone(),
                    health: if t.state == TargetState::Draining { TargetHealth::Draining } else { health },
                    reason: None,
                    in_flight,
                })
            })
            .collect();
        self.control.report(ProxyReport { proxy_id: "p1".into(), version: table.version, targets, metrics: None });
    }

    /// One ELBv2 call as the harness's caller.
    pub async fn elb(&self, op: E) -> Result<EO, AwsError> {
        self.control.handle_elbv2(&self.caller, op).await
    }

    /// One EC2 call as the harness's caller.
    pub async fn ec2(&self, op: ec2::Operation) -> Result<ec2::Output, AwsError> {
        self.control.handle_ec2(&self.caller, op).await
    }

    /// The ARN of a load balancer's HTTPS (443) listener.
    pub async fn https_listener(&self, lb: &str) -> String {
        let Ok(EO::DescribeListeners(o)) = self
            .elb(E::DescribeListeners(elb::DescribeListenersInput {
                load_balancer_arn: Some(lb.into()),
                ..Default::default()
            }))
            .await
        else {
            panic!("describe listeners")
        };
        let listeners = o.listeners.unwrap_or_default();
        let https = listeners.iter().find(|l| l.port == Some(443)).expect("https listener");
        https.listener_arn.clone().expect("arn")
    }

    pub fn role_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:role/{name}", self.control.account_id())
    }

    /// The account's `exec` and `infra` roles (see [`create_express_roles`]).
    pub async fn create_express_roles(&self) {
        create_express_roles(&self.control, &self.caller).await;
    }

    /// Creates an Express service as `request` says, filling in what it leaves out: the `infra` and `exec` roles
    /// (create them first with [`Harness::create_express_roles`]) and a `berth-demo:latest` container.
    pub async fn create_service(
        &self,
        request: ecs::CreateExpressGatewayServiceRequest,
    ) -> Result<ecs::ECSExpressGatewayService, AwsError> {
        let request = ecs::CreateExpressGatewayServiceRequest {
            infrastructure_role_arn: request.infrastructure_role_arn.or_else(|| Some(self.role_arn("infra"))),
            execution_role_arn: request.execution_role_arn.or_else(|| Some(self.role_arn("exec"))),
            primary_container: request.primary_container.or_else(|| Some(demo_container())),
            ..request
        };
        match self.control.handle_ecs(&self.caller, ecs::Operation::CreateExpressGatewayService(request)).await? {
            ecs::Output::CreateExpressGatewayService(r) => Ok(r.service.expect("service")),
            other => panic!("unexpected output {other:?}"),
        }
    }

    /// DeleteExpressGatewayService of `arn`; returns the service as the deletion answers it.
    pub async fn delete_service(&self, arn: &str) -> ecs::ECSExpressGatewayService {
        let op = ecs::Operation::DeleteExpressGatewayService(ecs::DeleteExpressGatewayServiceRequest {
            service_arn: Some(arn.into()),
        });
        match self.control.handle_ecs(&self.caller, op).await.expect("delete") {
            ecs::Output::DeleteExpressGatewayService(r) => r.service.expect("service"),
            other => panic!("unexpected output {other:?}"),
        }
    }

    /// Every stopped task of the `default` cluster, as DescribeTasks shows it.
    pub async fn stopped_tasks(&self) -> Vec<ecs::Task> {
        let cluster = Some("default".to_string());
        let list = ecs::Operation::ListTasks(ecs::ListTasksRequest {
            cluster: cluster.clone(),
            desired_status: Some(ecs::DesiredStatus::Stopped),
            ..Default::default()
        });
        let Ok(ecs::Output::ListTasks(list)) = self.control.handle_ecs(&self.caller, list).await else {
            panic!("list tasks")
        };
        let arns = list.task_arns.unwrap_or_default();
        if arns.is_empty() {
            return Vec::new();
        }
        let describe = ecs::Operation::DescribeTasks(ecs::DescribeTasksRequest {
            cluster,
            tasks: Some(arns),
            ..Default::default()
        });
        let Ok(ecs::Output::DescribeTasks(d)) = self.control.handle_ecs(&self.caller, describe).await else {
            panic!("describe tasks")
        };
        d.tasks.unwrap_or_default()
    }

    /// Creates the Express service `name` with [`Harness::create_service`]'s defaults; returns its ARN.
    pub async fn create_demo_service(&self, name: &str) -> String {
        self.create_service(named(name)).await.expect("create").service_arn.expect("arn")
    }
}

/// A create request for the service `name` (the rest defaulted by [`Harness::create_service`]).
/// The HTTPS endpoint host of an Express service's active configuration.
pub fn endpoint(s: &ecs::ECSExpressGatewayService) -> String {
    s.active_configurations
        .as_ref()
        .and_then(|c| c.first())
        .and_then(|c| c.ingress_paths.as_ref())
        .and_then(|p| p.first())
        .and_then(|p| p.endpoint.clone())
        .expect("endpoint")
}

pub fn named(name: &str) -> ecs::CreateExpressGatewayServiceRequest {
    ecs::CreateExpressGatewayServiceRequest { service_name: Some(name.into()), ..Default::default() }
}

/// The demo image's container with nothing else set.
pub fn demo_container() -> ecs::ExpressGatewayContainer {
    ecs::ExpressGatewayContainer { image: Some("berth-demo:latest".into()), ..Default::default() }
}

fn open(config: &ControlConfig, dir: &Path, driver: &Arc<MemoryDriver>, ca: &Arc<Ca>) -> Arc<Control> {
    Control::new(config.clone(), Store::open(&dir.join("berth.db")).expect("store"), driver.clone(), ca.clone())
        .expect("control")
}

/// A trust policy letting `service` assume the role.
pub fn trust_policy(service: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Service":"{service}"}},"Action":"sts:AssumeRole"}}]}}"#
    )
}

/// Creates role `name` trusting `service`, with the AWS managed policy `managed` (a `service-role/` name)
/// attached when given, and returns its ARN. A role that exists already is left as it is.
pub async fn create_role(
    control: &Control,
    caller: &CallerIdentity,
    name: &str,
    service: &str,
    managed: Option<&str>,
) -> String {
    let created = control
        .handle_iam(
            caller,
            Iam::CreateRole(iam::CreateRoleRequest {
                role_name: Some(name.into()),
                assume_role_policy_document: Some(trust_policy(service)),
                ..Default::default()
            }),
        )
        .await;
    match created {
        Ok(_) => {
            if let Some(policy) = managed {
                control
                    .handle_iam(
                        caller,
                        Iam::AttachRolePolicy(iam::AttachRolePolicyRequest {
                            role_name: Some(name.into()),
                            policy_arn: Some(format!("arn:aws:iam::aws:policy/service-role/{policy}")),
                        }),
                    )
                    .await
                    .expect("attach");
            }
        }
        Err(e) if e.code == ErrorCode::EntityAlreadyExists => {}
        Err(e) => panic!("create role {name}: {e:?}"),
    }
    format!("arn:aws:iam::{}:role/{name}", control.account_id())
}

/// Creates `exec` (trusting ecs-tasks.amazonaws.com, AmazonECSTaskExecutionRolePolicy) and `infra` (trusting
/// ecs.amazonaws.com, AmazonECSInfrastructureRoleforExpressGatewayServices), as Express services need them.
pub async fn create_express_roles(control: &Control, caller: &CallerIdentity) {
    create_role(control, caller, "exec", "ecs-tasks.amazonaws.com", Some("AmazonECSTaskExecutionRolePolicy")).await;
    create_role(
        control,
        caller,
        "infra",
        "ecs.amazonaws.com",
        Some("AmazonECSInfrastructureRoleforExpressGatewayServices"),
    )
    .await;
}

/// Creates user `name` with one access key and returns (access key id, secret access key).
pub async fn user_key(c: &Control, name: &str) -> (String, String) {
    let root = CallerIdentity::root(c.account_id());
    c.handle_iam(&root, Iam::CreateUser(iam::CreateUserRequest { user_name: Some(name.into()), ..Default::default() }))
        .await
        .expect("user");
    let Ok(iam::Output::CreateAccessKey(k)) =
        c.handle_iam(&root, Iam::CreateAccessKey(iam::CreateAccessKeyRequest { user_name: Some(name.into()) })).await
    else {
        panic!("key")
    };
    let k = k.access_key.expect("key");
    (k.access_key_id.expect("id"), k.secret_access_key.expect("secret"))
}

/// Creates a user with one inline policy and returns it as a resolved caller.
pub async fn user_with(c: &Control, name: &str, policy: &str) -> CallerIdentity {
    let (id, _) = user_key(c, name).await;
    let root = CallerIdentity::root(c.account_id());
    let put = Iam::PutUserPolicy(iam::PutUserPolicyRequest {
        user_name: Some(name.into()),
        policy_name: Some("p".into()),
        policy_document: Some(policy.into()),
    });
    c.handle_iam(&root, put).await.expect("policy");
    let key = c.access_key(&id).expect("lookup").expect("key");
    c.identify(&key.principal_arn, c.account_id(), &key.user_id).expect("identify")
}
