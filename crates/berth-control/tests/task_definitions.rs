//! Bring-your-own task definitions over the in-memory driver: RegisterTaskDefinition validated as ECS validates
//! it for Fargate (a data-driven table), the ACTIVE → INACTIVE → DELETE_IN_PROGRESS life with Describe and List,
//! and `taskDefinitionArn` on Create/UpdateExpressGatewayService: Express's rules, and tasks that start with the
//! definition's image, environment and port.

use berth_control::ControlConfig;
use berth_core::{AwsError, ErrorCode};
use berth_model::ecs;
use serde_json::{Value, json};

mod common;

use common::Harness;

async fn world(name: &str) -> Harness {
    let h = Harness::new(&format!("taskdefs-{name}"), |_| ControlConfig::default());
    h.create_express_roles().await;
    h
}

impl Harness {
    async fn ecs(&self, op: ecs::Operation) -> Result<ecs::Output, AwsError> {
        self.control.handle_ecs(&self.caller, op).await
    }

    async fn register(&self, def: Value) -> Result<ecs::RegisterTaskDefinitionResponse, AwsError> {
        let request: ecs::RegisterTaskDefinitionRequest = serde_json::from_value(def).expect("request shape");
        match self.ecs(ecs::Operation::RegisterTaskDefinition(request)).await? {
            ecs::Output::RegisterTaskDefinition(r) => Ok(r),
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn register_ok(&self, def: Value) -> ecs::TaskDefinition {
        self.register(def).await.expect("register").task_definition.expect("definition")
    }

    async fn describe_td(&self, given: &str) -> Result<ecs::DescribeTaskDefinitionResponse, AwsError> {
        let op = ecs::Operation::DescribeTaskDefinition(ecs::DescribeTaskDefinitionRequest {
            task_definition: Some(given.into()),
            include: Some(vec![ecs::TaskDefinitionField::Tags]),
        });
        match self.ecs(op).await? {
            ecs::Output::DescribeTaskDefinition(r) => Ok(r),
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn list_tds(&self, r: ecs::ListTaskDefinitionsRequest) -> ecs::ListTaskDefinitionsResponse {
        match self.ecs(ecs::Operation::ListTaskDefinitions(r)).await.expect("list") {
            ecs::Output::ListTaskDefinitions(r) => r,
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn deregister(&self, given: &str) -> Result<ecs::TaskDefinition, AwsError> {
        let op = ecs::Operation::DeregisterTaskDefinition(ecs::DeregisterTaskDefinitionRequest {
            task_definition: Some(given.into()),
        });
        match self.ecs(op).await? {
            ecs::Output::DeregisterTaskDefinition(r) => Ok(r.task_definition.expect("definition")),
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn delete_tds(&self, given: &[&str]) -> Result<ecs::DeleteTaskDefinitionsResponse, AwsError> {
        let op = ecs::Operation::DeleteTaskDefinitions(ecs::DeleteTaskDefinitionsRequest {
            task_definitions: Some(given.iter().map(|s| s.to_string()).collect()),
        });
        match self.ecs(op).await? {
            ecs::Output::DeleteTaskDefinitions(r) => Ok(r),
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn create_raw(
        &self,
        r: ecs::CreateExpressGatewayServiceRequest,
    ) -> Result<ecs::ECSExpressGatewayService, AwsError> {
        let r = ecs::CreateExpressGatewayServiceRequest { infrastructure_role_arn: Some(self.role_arn("infra")), ..r };
        match self.ecs(ecs::Operation::CreateExpressGatewayService(r)).await? {
            ecs::Output::CreateExpressGatewayService(r) => Ok(r.service.expect("service")),
            other => panic!("unexpected {other:?}"),
        }
    }

    async fn update(
        &self,
        r: ecs::UpdateExpressGatewayServiceRequest,
    ) -> Result<ecs::UpdatedExpressGatewayService, AwsError> {
        match self.ecs(ecs::Operation::UpdateExpressGatewayService(r)).await? {
            ecs::Output::UpdateExpressGatewayService(r) => Ok(r.service.expect("service")),
            other => panic!("unexpected {other:?}"),
        }
    }

    /// A valid Fargate definition for an Express service: `Main` on port 8080 named `web`, awslogs, exec role.
    fn definition(&self, family: &str) -> Value {
        json!({
            "family": family,
            "requiresCompatibilities": ["FARGATE"],
            "networkMode": "awsvpc",
            "cpu": "256",
            "memory": "512",
            "executionRoleArn": self.role_arn("exec"),
            "containerDefinitions": [{
                "name": "Main",
                "image": "berth-demo:latest",
                "essential": true,
                "command": ["serve", "--greeting"],
                "portMappings": [{"containerPort": 8080, "name": "web", "protocol": "tcp"}],
                "environment": [{"name": "GREETING", "value": "from-the-task-definition"}],
                "logConfiguration": {"logDriver": "awslogs", "options": {
                    "awslogs-group": "/ecs/byo", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "byo"}}
            }]
        })
    }
}

/// JSON pointers and the values to set there.
type Edits = Vec<(String, Value)>;

/// Sets (or with `null` removes) the member at a JSON pointer; the parent must exist.
fn set(v: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer");
    match v.pointer_mut(parent).expect("parent") {
        Value::Object(map) if value.is_null() => {
            map.remove(key);
        }
        Value::Object(map) => {
            map.insert(key.to_string(), value);
        }
        Value::Array(items) => {
            let i: usize = key.parse().expect("index");
            if i < items.len() {
                items[i] = value;
            } else {
                items.push(value);
            }
        }
        other => panic!("cannot set {pointer} in {other}"),
    }
}

/// What a registration answers: the normalised task cpu and memory, or an error code with a fragment of its message.
#[derive(Debug)]
enum Want {
    Ok(Option<&'static str>, Option<&'static str>),
    Err(ErrorCode, &'static str),
}

#[tokio::test]
async fn registration_is_validated_as_ecs_validates_fargate_definitions() {
    let h = world("table").await;
    let c = "/containerDefinitions/0";
    let second = json!({"name": "side", "image": "busybox", "essential": false});
    let rows: Vec<(&str, Edits, Want)> = vec![
        ("the base definition", vec![], Want::Ok(Some("256"), Some("512"))),
        (
            "vCPU and GB forms",
            vec![("/cpu".into(), json!("1 vCPU")), ("/memory".into(), json!("2 GB"))],
            Want::Ok(Some("1024"), Some("2048")),
        ),
        (
            "largest 4 vCPU memory",
            vec![("/cpu".into(), json!("4096")), ("/memory".into(), json!("30720"))],
            Want::Ok(Some("4096"), Some("30720")),
        ),
        (
            "hostPort equal to containerPort",
            vec![(format!("{c}/portMappings/0/hostPort"), json!(8080))],
            Want::Ok(Some("256"), Some("512")),
        ),
        (
            "essential omitted means essential",
            vec![(format!("{c}/essential"), Value::Null)],
            Want::Ok(Some("256"), Some("512")),
        ),
        (
            "a valid health check",
            vec![(
                format!("{c}/healthCheck"),
                json!({"command": ["CMD-SHELL", "true"], "interval": 5, "timeout": 2, "retries": 10, "startPeriod": 300}),
            )],
            Want::Ok(Some("256"), Some("512")),
        ),
        (
            "an image by digest",
            vec![(format!("{c}/image"), json!(format!("registry.example/app@sha256:{}", "a".repeat(64))))],
            Want::Ok(Some("256"), Some("512")),
        ),
        ("stopTimeout 120", vec![(format!("{c}/stopTimeout"), json!(120))], Want::Ok(Some("256"), Some("512"))),
        (
            "EC2 only: bridge without size",
            vec![
                ("/requiresCompatibilities".into(), Value::Null),
                ("/networkMode".into(), json!("bridge")),
                ("/cpu".into(), Value::Null),
                ("/memory".into(), Value::Null),
                (format!("{c}/memory"), json!(128)),
            ],
            Want::Ok(None, None),
        ),
        (
            "family with a space",
            vec![("/family".into(), json!("bad family"))],
            Want::Err(ErrorCode::Client, "Invalid family 'bad family'"),
        ),
        (
            "family of 256 characters",
            vec![("/family".into(), json!("f".repeat(256)))],
            Want::Err(ErrorCode::Client, "up to 255 letters"),
        ),
        (
            "no containers",
            vec![("/containerDefinitions".into(), json!([]))],
            Want::Err(ErrorCode::Client, "Container list cannot be empty"),
        ),
        (
            "bridge on Fargate",
            vec![("/networkMode".into(), json!("bridge"))],
            Want::Err(ErrorCode::Client, "Fargate only supports network mode 'awsvpc'"),
        ),
        (
            "network mode omitted on Fargate",
            vec![("/networkMode".into(), Value::Null)],
            Want::Err(ErrorCode::Client, "Fargate only supports network mode 'awsvpc'"),
        ),
        (
            "task cpu missing",
            vec![("/cpu".into(), Value::Null)],
            Want::Err(ErrorCode::Client, "Fargate requires that 'cpu' be defined at the task level"),
        ),
        (
            "task memory missing",
            vec![("/memory".into(), Value::Null)],
            Want::Err(ErrorCode::Client, "Fargate requires that 'memory' be defined"),
        ),
        (
            "no Fargate pair",
            vec![("/memory".into(), json!("4096"))],
            Want::Err(ErrorCode::Client, "No Fargate configuration exists for given values: 256 CPU, 4096 memory"),
        ),
        (
            "0.25 vCPU with 1.5 GB",
            vec![("/memory".into(), json!("1536"))],
            Want::Err(ErrorCode::Client, "256 CPU, 1536 memory"),
        ),
        (
            "cpu not a number",
            vec![("/cpu".into(), json!("lots"))],
            Want::Err(ErrorCode::InvalidParameter, "Invalid 'cpu' setting for task"),
        ),
        (
            "no essential container",
            vec![(format!("{c}/essential"), json!(false))],
            Want::Err(ErrorCode::Client, "At least one essential container"),
        ),
        (
            "two containers named Main",
            vec![("/containerDefinitions/1".into(), json!({"name": "Main", "image": "busybox"}))],
            Want::Err(ErrorCode::Client, "Container names must be unique"),
        ),
        (
            "hostPort differs under awsvpc",
            vec![(format!("{c}/portMappings/0/hostPort"), json!(9090))],
            Want::Err(ErrorCode::Client, "the host ports and container ports in port mappings must match"),
        ),
        (
            "port name in capitals",
            vec![(format!("{c}/portMappings/0/name"), json!("Web"))],
            Want::Err(ErrorCode::Client, "port mapping name 'Web'"),
        ),
        (
            "port name starting with a hyphen",
            vec![(format!("{c}/portMappings/0/name"), json!("-web"))],
            Want::Err(ErrorCode::Client, "not starting with a hyphen"),
        ),
        (
            "one port on two protocols",
            vec![(format!("{c}/portMappings/1"), json!({"containerPort": 8080, "protocol": "udp"}))],
            Want::Err(ErrorCode::Client, "Port 8080 is mapped more than once"),
        ),
        (
            "one port in two containers under awsvpc",
            vec![(
                "/containerDefinitions/1".into(),
                json!({"name": "side", "image": "busybox", "essential": false, "portMappings": [{"containerPort": 8080}]}),
            )],
            Want::Err(ErrorCode::Client, "Port 8080 is mapped more than once"),
        ),
        (
            "one port in two containers under bridge",
            vec![
                ("/requiresCompatibilities".into(), Value::Null),
                ("/networkMode".into(), json!("bridge")),
                (
                    "/containerDefinitions/1".into(),
                    json!({"name": "side", "image": "busybox", "memory": 64, "portMappings": [{"containerPort": 8080}]}),
                ),
            ],
            Want::Ok(Some("256"), Some("512")),
        ),
        (
            "a bad port range",
            vec![(format!("{c}/portMappings/1"), json!({"containerPortRange": "10-5"}))],
            Want::Err(ErrorCode::Client, "containerPortRange '10-5'"),
        ),
        (
            "health check interval too short",
            vec![(format!("{c}/healthCheck"), json!({"command": ["CMD", "true"], "interval": 2}))],
            Want::Err(ErrorCode::Client, "healthCheck.interval 2 must be between 5 and 300"),
        ),
        (
            "health check retries too many",
            vec![(format!("{c}/healthCheck"), json!({"command": ["CMD", "true"], "retries": 11}))],
            Want::Err(ErrorCode::Client, "healthCheck.retries 11"),
        ),
        (
            "health check command without CMD",
            vec![(format!("{c}/healthCheck"), json!({"command": ["curl", "x"]}))],
            Want::Err(ErrorCode::Client, "must start with CMD, CMD-SHELL or NONE"),
        ),
        (
            "stopTimeout above 120",
            vec![(format!("{c}/stopTimeout"), json!(121))],
            Want::Err(ErrorCode::Client, "stopTimeout must be between 2 and 120"),
        ),
        (
            "empty image",
            vec![(format!("{c}/image"), json!(""))],
            Want::Err(ErrorCode::Client, "Container.image should not be null or empty"),
        ),
        (
            "image longer than 255",
            vec![(format!("{c}/image"), json!("i".repeat(256)))],
            Want::Err(ErrorCode::Client, "1 to 255 characters"),
        ),
        (
            "digest that is not sha256",
            vec![(format!("{c}/image"), json!("app@sha256:abc"))],
            Want::Err(ErrorCode::Client, "64 hexadecimal"),
        ),
        (
            "links under awsvpc",
            vec![(format!("{c}/links"), json!(["db"]))],
            Want::Err(ErrorCode::Client, "Links are not supported when networkMode=awsvpc"),
        ),
        ("ipcMode on Fargate", vec![("/ipcMode".into(), json!("host"))], Want::Err(ErrorCode::Client, "ipcMode")),
        (
            "pidMode host on Fargate",
            vec![("/pidMode".into(), json!("host"))],
            Want::Err(ErrorCode::Client, "pidMode 'task' only"),
        ),
        (
            "a secret from S3",
            vec![(format!("{c}/secrets"), json!([{"name": "A", "valueFrom": "arn:aws:s3:::bucket/key"}]))],
            Want::Err(ErrorCode::Client, "secret 'A'"),
        ),
        (
            "a secret named twice",
            vec![(format!("{c}/secrets"), json!([{"name": "A", "valueFrom": "p1"}, {"name": "A", "valueFrom": "p2"}]))],
            Want::Err(ErrorCode::Client, "given twice"),
        ),
        (
            "awslogs without a group",
            vec![(format!("{c}/logConfiguration/options/awslogs-group"), Value::Null)],
            Want::Err(ErrorCode::Client, "Log driver awslogs option 'awslogs-group' should not be null or empty"),
        ),
        (
            "awslogs without a stream prefix",
            vec![(format!("{c}/logConfiguration/options/awslogs-stream-prefix"), Value::Null)],
            Want::Err(ErrorCode::Client, "awslogs-stream-prefix"),
        ),
        (
            "awslogs without an execution role",
            vec![("/executionRoleArn".into(), Value::Null)],
            Want::Err(ErrorCode::Client, "execution role ARN to support log driver awslogs"),
        ),
        (
            "json-file on Fargate",
            vec![(format!("{c}/logConfiguration"), json!({"logDriver": "json-file"}))],
            Want::Err(ErrorCode::Client, "does not support log driver json-file"),
        ),
        (
            "container memory above the task's",
            vec![(format!("{c}/memory"), json!(1024))],
            Want::Err(ErrorCode::Client, "exceeds the task's memory"),
        ),
        (
            "container cpu above the task's",
            vec![(format!("{c}/cpu"), json!(512))],
            Want::Err(ErrorCode::Client, "exceeds the task's cpu"),
        ),
        (
            "ephemeral storage below 21 GiB",
            vec![("/ephemeralStorage".into(), json!({"sizeInGiB": 20}))],
            Want::Err(ErrorCode::Client, "ephemeralStorage.sizeInGiB 20"),
        ),
        (
            "dependsOn an unknown container",
            vec![(format!("{c}/dependsOn"), json!([{"containerName": "db", "condition": "START"}]))],
            Want::Err(ErrorCode::Client, "dependsOn names container 'db'"),
        ),
        (
            "a sidecar that is not essential",
            vec![("/containerDefinitions/1".into(), second.clone())],
            Want::Ok(Some("256"), Some("512")),
        ),
    ];
    assert!(rows.len() >= 25);
    let mut failures = Vec::new();
    for (label, edits, want) in rows {
        let mut def = h.definition("table");
        for (pointer, value) in edits {
            set(&mut def, &pointer, value);
        }
        let got = h.register(def).await;
        let ok = match (&want, &got) {
            (Want::Ok(cpu, memory), Ok(r)) => {
                let d = r.task_definition.as_ref().expect("definition");
                d.cpu.as_deref() == *cpu
                    && d.memory.as_deref() == *memory
                    && d.status == Some(ecs::TaskDefinitionStatus::Active)
            }
            (Want::Err(code, fragment), Err(e)) => e.code == *code && e.message.contains(fragment),
            _ => false,
        };
        if !ok {
            failures.push(format!("{label}: wanted {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn register_describe_list_deregister_delete() {
    let h = world("life").await;
    let mut def = h.definition("life");
    def["tags"] = json!([{"key": "team", "value": "web"}]);
    let first = h.register(def.clone()).await.expect("register");
    let td1 = first.task_definition.clone().expect("definition");
    let arn1 = td1.task_definition_arn.clone().expect("arn");
    assert_eq!(td1.revision, Some(1));
    assert!(arn1.ends_with(":task-definition/life:1"), "{arn1}");
    assert_eq!(td1.registered_by.as_deref(), Some(h.caller.principal_arn.as_str()));
    assert!(td1.registered_at.is_some());
    assert_eq!(td1.compatibilities, Some(vec![ecs::Compatibility::Ec2, ecs::Compatibility::Fargate]));
    assert_eq!(td1.requires_compatibilities, Some(vec![ecs::Compatibility::Fargate]));
    let main = &td1.container_definitions.as_ref().expect("containers")[0];
    let mapping = &main.port_mappings.as_ref().expect("mappings")[0];
    assert_eq!((mapping.host_port, mapping.protocol), (Some(8080), Some(ecs::TransportProtocol::Tcp)));
    assert_eq!(main.essential, Some(true));
    let tag = |k: &str, v: &str| ecs::Tag { key: Some(k.into()), value: Some(v.into()) };
    assert_eq!(first.tags, Some(vec![tag("team", "web")]));

    let arn2 = h.register_ok(h.definition("life")).await.task_definition_arn.expect("arn");
    h.register_ok(h.definition("life-other")).await;
    // A family alone is its latest ACTIVE revision; tags come with include=TAGS.
    let latest = h.describe_td("life").await.expect("describe");
    assert_eq!(latest.task_definition.and_then(|d| d.revision), Some(2));
    let one = h.describe_td("life:1").await.expect("describe");
    assert_eq!(one.task_definition.and_then(|d| d.task_definition_arn), Some(arn1.clone()));
    assert_eq!(one.tags, Some(vec![tag("team", "web")]));

    // familyPrefix names one family whole; ASC by family then revision, DESC reversed; pages of maxResults.
    let family =
        |f: &str, sort| ecs::ListTaskDefinitionsRequest { family_prefix: Some(f.into()), sort, ..Default::default() };
    assert_eq!(h.list_tds(family("life", None)).await.task_definition_arns, Some(vec![arn1.clone(), arn2.clone()]));
    assert_eq!(
        h.list_tds(family("life", Some(ecs::SortOrder::Desc))).await.task_definition_arns,
        Some(vec![arn2.clone(), arn1.clone()])
    );
    assert_eq!(h.list_tds(family("lif", None)).await.task_definition_arns, Some(vec![]));
    let page = h.list_tds(ecs::ListTaskDefinitionsRequest { max_results: Some(2), ..Default::default() }).await;
    assert_eq!(page.task_definition_arns.as_ref().map(Vec::len), Some(2));
    let rest =
        h.list_tds(ecs::ListTaskDefinitionsRequest { next_token: page.next_token.clone(), ..Default::default() }).await;
    let all: Vec<String> = page
        .task_definition_arns
        .into_iter()
        .flatten()
        .chain(rest.task_definition_arns.into_iter().flatten())
        .collect();
    assert_eq!(all.len(), 3);
    assert!(all[0].ends_with("/life:1") && all[1].ends_with("/life:2") && all[2].ends_with("/life-other:1"), "{all:?}");

    // Deregister needs a revision; then INACTIVE, still describable, off the default list.
    let no_revision = h.deregister("life").await.expect_err("a family alone");
    assert_eq!(no_revision.code, ErrorCode::Client);
    let gone = h.deregister("life:9").await.expect_err("unknown");
    assert_eq!(
        (gone.code, gone.message.as_str()),
        (ErrorCode::Client, "The specified task definition does not exist.")
    );
    let inactive = h.deregister(&arn1).await.expect("deregister");
    assert_eq!(inactive.status, Some(ecs::TaskDefinitionStatus::Inactive));
    assert!(inactive.deregistered_at.is_some());
    let described = h.describe_td(&arn1).await.expect("describe").task_definition.expect("definition");
    assert_eq!(described.status, Some(ecs::TaskDefinitionStatus::Inactive));
    assert_eq!(h.list_tds(family("life", None)).await.task_definition_arns, Some(vec![arn2.clone()]));
    let status = |s| ecs::ListTaskDefinitionsRequest { status: Some(s), ..Default::default() };
    assert_eq!(
        h.list_tds(status(ecs::TaskDefinitionStatus::Inactive)).await.task_definition_arns,
        Some(vec![arn1.clone()])
    );

    // Delete: only INACTIVE ones; ACTIVE and unknown ones are failures with ECS's reasons.
    let too_many: Vec<String> = (1..=11).map(|i| format!("life:{i}")).collect();
    let refs: Vec<&str> = too_many.iter().map(String::as_str).collect();
    assert_eq!(h.delete_tds(&refs).await.expect_err("11").code, ErrorCode::InvalidParameter);
    let deleted = h.delete_tds(&[&arn1, &arn2, "life:7"]).await.expect("delete");
    let done = deleted.task_definitions.expect("deleted");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].task_definition_arn.as_deref(), Some(arn1.as_str()));
    assert_eq!(done[0].status, Some(ecs::TaskDefinitionStatus::DeleteInProgress));
    assert!(done[0].delete_requested_at.is_some());
    let failures = deleted.failures.expect("failures");
    let reasons: Vec<(String, String)> =
        failures.into_iter().map(|f| (f.arn.unwrap_or_default(), f.reason.unwrap_or_default())).collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(reasons[0].0, arn2);
    assert!(reasons[0].1.contains("still in ACTIVE status"), "{reasons:?}");
    assert!(
        reasons[1].0.ends_with(":task-definition/life:7") && reasons[1].1.contains("does not exist"),
        "{reasons:?}"
    );
    let described = h.describe_td(&arn1).await.expect("describe").task_definition.expect("definition");
    assert_eq!(described.status, Some(ecs::TaskDefinitionStatus::DeleteInProgress));
    assert_eq!(h.list_tds(status(ecs::TaskDefinitionStatus::Inactive)).await.task_definition_arns, Some(vec![]));
    assert_eq!(
        h.list_tds(status(ecs::TaskDefinitionStatus::DeleteInProgress)).await.task_definition_arns,
        Some(vec![arn1.clone()])
    );
    // A deleted revision cannot be deregistered again, and the family's numbering goes on.
    assert_eq!(h.deregister(&arn1).await.expect_err("being deleted").code, ErrorCode::Client);
    assert_eq!(h.register_ok(h.definition("life")).await.revision, Some(3));
}

/// The revision's task definition ARN and the tasks the service started.
async fn started_with(h: &Harness) -> Vec<berth_runtime::TaskSpec> {
    h.settle().await;
    h.driver.started()
}

#[tokio::test]
async fn an_express_service_runs_a_users_task_definition() {
    let h = world("express").await;
    let td = h.register_ok(h.definition("byo")).await.task_definition_arn.expect("arn");
    let service = h
        .create_raw(ecs::CreateExpressGatewayServiceRequest {
            service_name: Some("byo".into()),
            task_definition_arn: Some(td.clone()),
            ..Default::default()
        })
        .await
        .expect("create");
    let config = service.active_configurations.expect("configs").pop().expect("config");
    assert_eq!(config.task_definition_arn.as_deref(), Some(td.as_str()));
    assert_eq!(config.execution_role_arn, Some(h.role_arn("exec")));
    assert_eq!((config.cpu.as_deref(), config.memory.as_deref()), (Some("256"), Some("512")));
    let main = config.primary_container.expect("container");
    assert_eq!(main.container_port, Some(8080));
    let logs = main.aws_logs_configuration.expect("logs");
    assert_eq!((logs.log_group.as_deref(), logs.log_stream_prefix.as_deref()), (Some("/ecs/byo"), Some("byo")));
    // No second family was registered for the revision.
    let active = h.list_tds(Default::default()).await.task_definition_arns.expect("arns");
    assert_eq!(active, vec![td.clone()]);

    let started = started_with(&h).await;
    assert_eq!(started.len(), 1);
    let task = &started[0];
    assert_eq!((task.image.as_str(), task.container_port), ("berth-demo:latest", 8080));
    assert_eq!(task.command, vec!["serve".to_string(), "--greeting".to_string()]);
    let env: std::collections::BTreeMap<_, _> = task.environment.iter().cloned().collect();
    assert_eq!(env.get("GREETING").map(String::as_str), Some("from-the-task-definition"));
    // DescribeTasks names the user's definition.
    let Ok(ecs::Output::ListTasks(list)) = h.ecs(ecs::Operation::ListTasks(Default::default())).await else {
        panic!("list tasks")
    };
    let Ok(ecs::Output::DescribeTasks(tasks)) = h
        .ecs(ecs::Operation::DescribeTasks(ecs::DescribeTasksRequest { tasks: list.task_arns, ..Default::default() }))
        .await
    else {
        panic!("describe tasks")
    };
    assert_eq!(tasks.tasks.expect("tasks")[0].task_definition_arn.as_deref(), Some(td.as_str()));
}

#[tokio::test]
async fn express_rules_for_a_task_definition() {
    let h = world("rules").await;
    let base = h.definition("rules");
    let td = h.register_ok(base.clone()).await.task_definition_arn.expect("arn");
    let create = |edit: &dyn Fn(&mut ecs::CreateExpressGatewayServiceRequest)| {
        let mut r = ecs::CreateExpressGatewayServiceRequest {
            service_name: Some("rules".into()),
            task_definition_arn: Some(td.clone()),
            ..Default::default()
        };
        edit(&mut r);
        r
    };
    // taskDefinitionArn cannot be combined with the members it gives; the error names the member.
    let combined: Vec<(&str, ecs::CreateExpressGatewayServiceRequest)> = vec![
        ("primaryContainer", create(&|r| r.primary_container = Some(common::demo_container()))),
        ("executionRoleArn", create(&|r| r.execution_role_arn = Some(h.role_arn("exec")))),
        ("taskRoleArn", create(&|r| r.task_role_arn = Some(h.role_arn("exec")))),
        ("cpu", create(&|r| r.cpu = Some("256".into()))),
        ("memory", create(&|r| r.memory = Some("512".into()))),
        ("cpuArchitecture", create(&|r| r.cpu_architecture = Some(ecs::ExpressCpuArchitecture::X8664))),
    ];
    for (member, request) in combined {
        let e = h.create_raw(request).await.expect_err(member);
        assert_eq!(e.code, ErrorCode::InvalidParameter, "{member}: {e:?}");
        assert!(e.message.contains(&format!("cannot be combined with {member}")), "{member}: {}", e.message);
    }

    let c = "/containerDefinitions/0";
    let rows: Vec<(&str, Edits, ErrorCode, &str)> = vec![
        (
            "no container named Main",
            vec![(format!("{c}/name"), json!("app"))],
            ErrorCode::InvalidParameter,
            "must have a container named 'Main'",
        ),
        (
            "two port mappings",
            vec![(format!("{c}/portMappings/1"), json!({"containerPort": 9090, "name": "admin"}))],
            ErrorCode::InvalidParameter,
            "exactly one port mapping; it has 2",
        ),
        (
            "no port mapping",
            vec![(format!("{c}/portMappings"), json!([]))],
            ErrorCode::InvalidParameter,
            "exactly one port mapping; it has 0",
        ),
        (
            "a port mapping without a name",
            vec![(format!("{c}/portMappings/0/name"), Value::Null)],
            ErrorCode::InvalidParameter,
            "TCP with a containerPort and a name",
        ),
        (
            "a UDP port mapping",
            vec![(format!("{c}/portMappings/0/protocol"), json!("udp"))],
            ErrorCode::InvalidParameter,
            "TCP with a containerPort and a name",
        ),
        (
            "not FARGATE-compatible",
            vec![
                ("/requiresCompatibilities".into(), Value::Null),
                ("/networkMode".into(), json!("bridge")),
                (format!("{c}/portMappings/0/hostPort"), Value::Null),
            ],
            ErrorCode::InvalidParameter,
            "does not support launch_type FARGATE",
        ),
        (
            "a sidecar",
            vec![("/containerDefinitions/1".into(), json!({"name": "side", "image": "busybox", "essential": false}))],
            ErrorCode::UnsupportedFeature,
            "also defines side",
        ),
        (
            "an entry point",
            vec![(format!("{c}/entryPoint"), json!(["/bin/sh"]))],
            ErrorCode::UnsupportedFeature,
            "entryPoint",
        ),
        (
            "no execution role",
            vec![("/executionRoleArn".into(), Value::Null), (format!("{c}/logConfiguration"), Value::Null)],
            ErrorCode::InvalidParameter,
            "has no executionRoleArn",
        ),
    ];
    for (i, (label, edits, code, fragment)) in rows.into_iter().enumerate() {
        let mut def = base.clone();
        def["family"] = json!(format!("rules-{i}"));
        for (pointer, value) in edits {
            set(&mut def, &pointer, value);
        }
        let arn = h.register_ok(def).await.task_definition_arn.expect("arn");
        let e = h.create_raw(create(&|r| r.task_definition_arn = Some(arn.clone()))).await.expect_err(label);
        assert!(e.code == code && e.message.contains(fragment), "{label}: {e:?}");
    }

    // Unknown and INACTIVE definitions are ClientExceptions; nothing was created by any refusal.
    let unknown = h.create_raw(create(&|r| r.task_definition_arn = Some(format!("{td}0")))).await.expect_err("unknown");
    assert_eq!(unknown.code, ErrorCode::Client, "{unknown:?}");
    h.deregister(&td).await.expect("deregister");
    let inactive = h.create_raw(create(&|_| {})).await.expect_err("inactive");
    assert_eq!((inactive.code, inactive.message.contains("TaskDefinition is inactive")), (ErrorCode::Client, true));
    // Not even the default cluster (created by a create's transaction) exists.
    let listed = h.ecs(ecs::Operation::ListServices(Default::default())).await.expect_err("no cluster");
    assert_eq!(listed.code, ErrorCode::ClusterNotFound);
}

#[tokio::test]
async fn updates_move_between_berths_and_the_users_task_definitions() {
    let h = world("update").await;
    let service = h.create_demo_service("moving").await;
    let managed = |arn: &Option<String>| arn.as_deref().is_some_and(|a| a.contains(":task-definition/default-moving:"));
    let td = h.register_ok(h.definition("moving-own")).await.task_definition_arn.expect("arn");
    let update = |edit: &dyn Fn(&mut ecs::UpdateExpressGatewayServiceRequest)| {
        let mut r =
            ecs::UpdateExpressGatewayServiceRequest { service_arn: Some(service.clone()), ..Default::default() };
        edit(&mut r);
        r
    };
    let with_cpu = h.update(update(&|r| {
        r.task_definition_arn = Some(td.clone());
        r.cpu = Some("512".into());
    }));
    assert_eq!(with_cpu.await.expect_err("cpu").code, ErrorCode::InvalidParameter);

    // To the user's definition: its ARN, its environment, its port.
    let own = h.update(update(&|r| r.task_definition_arn = Some(td.clone()))).await.expect("update");
    let target = own.target_configuration.expect("target");
    assert_eq!(target.task_definition_arn.as_deref(), Some(td.as_str()));
    assert_eq!(target.primary_container.as_ref().and_then(|p| p.container_port), Some(8080));
    h.report_as_proxy(berth_routes::TargetHealth::Healthy, 0);
    let started = started_with(&h).await;
    let newest = started.iter().find(|t| t.container_port == 8080).expect("a task of the user's definition");
    assert!(newest.environment.contains(&("GREETING".into(), "from-the-task-definition".into())));

    // A health check path alone keeps the user's definition.
    let path = h.update(update(&|r| r.health_check_path = Some("/health".into()))).await.expect("update");
    assert_eq!(path.target_configuration.and_then(|t| t.task_definition_arn), Some(td.clone()));

    // An INACTIVE definition cannot be deployed again.
    h.deregister(&td).await.expect("deregister");
    let again = h.update(update(&|r| r.task_definition_arn = Some(td.clone()))).await.expect_err("inactive");
    assert_eq!(again.code, ErrorCode::Client);

    // primaryContainer goes back to berth's own definitions (a new revision of the service's family).
    let back = h.update(update(&|r| r.primary_container = Some(common::demo_container()))).await.expect("update");
    let back = back.target_configuration.expect("target");
    assert!(managed(&back.task_definition_arn), "{:?}", back.task_definition_arn);
    assert_eq!(back.primary_container.and_then(|p| p.container_port), Some(80));
}
