//! Create (`/create`): the three inputs on one form as AWS's console has them (image, execution role,
//! infrastructure role, each role a picker of existing roles whose trust policy fits plus a button that creates
//! AWS's default role), the optional settings folded away; submitting calls CreateExpressGatewayService.

use axum::Form;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use berth_client::{Client, ClientError, Service};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::alert;
use crate::layout::{csrf_field, page};
use crate::session::User;
use crate::{AppState, ConsoleError};

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/create", get(form).post(create)).route("/roles/default", post(create_default_role))
}

/// The two roles an Express service needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleKind {
    Execution,
    Infrastructure,
}

impl RoleKind {
    pub fn parse(s: &str) -> Option<RoleKind> {
        match s {
            "execution" => Some(RoleKind::Execution),
            "infrastructure" => Some(RoleKind::Infrastructure),
            _ => None,
        }
    }

    /// The service principal the role's trust policy must name.
    pub fn principal(self) -> &'static str {
        match self {
            RoleKind::Execution => "ecs-tasks.amazonaws.com",
            RoleKind::Infrastructure => "ecs.amazonaws.com",
        }
    }

    /// AWS's default role name.
    pub fn default_name(self) -> &'static str {
        match self {
            RoleKind::Execution => "ecsTaskExecutionRole",
            RoleKind::Infrastructure => "ecsInfrastructureRoleForExpressServices",
        }
    }

    /// AWS's managed policy for it.
    pub fn managed_policy(self) -> &'static str {
        match self {
            RoleKind::Execution => "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy",
            RoleKind::Infrastructure => {
                "arn:aws:iam::aws:policy/service-role/AmazonECSInfrastructureRoleforExpressGatewayServices"
            }
        }
    }

    fn field(self) -> &'static str {
        match self {
            RoleKind::Execution => "execution_role_arn",
            RoleKind::Infrastructure => "infrastructure_role_arn",
        }
    }

    fn label(self) -> &'static str {
        match self {
            RoleKind::Execution => "Task execution role",
            RoleKind::Infrastructure => "Infrastructure role",
        }
    }
}

/// The form, as posted (every field a string so a bad value re-renders as typed).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CreateForm {
    pub image: String,
    pub execution_role_arn: String,
    pub infrastructure_role_arn: String,
    pub cluster: String,
    pub name: String,
    pub port: String,
    pub health_check_path: String,
    pub cpu: String,
    pub memory: String,
    pub min_tasks: String,
    pub max_tasks: String,
    pub environment: String,
    /// Set by the "Create default role" buttons (they post the whole form to `/roles/default`).
    pub kind: String,
}

impl CreateForm {
    /// Whether any optional setting is filled (the folded section then opens, to show what was typed).
    pub fn has_optional(&self) -> bool {
        [
            &self.cluster,
            &self.name,
            &self.port,
            &self.health_check_path,
            &self.cpu,
            &self.memory,
            &self.min_tasks,
            &self.max_tasks,
            &self.environment,
        ]
        .iter()
        .any(|v| !v.trim().is_empty())
    }
}

/// `K=V` lines into ECS `KeyValuePair`s; blank lines and `#` comments skipped.
pub fn parse_environment(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(format!("environment line {}: {line:?} is not KEY=VALUE", n + 1));
        };
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("environment line {}: {k:?} is not a variable name (letters, digits and _)", n + 1));
        }
        if out.iter().any(|(seen, _)| seen == k) {
            return Err(format!("environment line {}: {k} is set twice", n + 1));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

fn parse_int(field: &str, value: &str, min: i64, max: i64) -> Result<Option<i64>, String> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    match v.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(format!("{field} must be a whole number from {min} to {max} (got {v:?})")),
    }
}

/// The CreateExpressGatewayService input (botocore member names) for a form, or what is wrong with it.
pub fn create_request(f: &CreateForm) -> Result<Value, String> {
    let image = f.image.trim();
    if image.is_empty() {
        return Err("enter a container image (for example public.ecr.aws/nginx/nginx:latest)".into());
    }
    if f.execution_role_arn.trim().is_empty() {
        return Err("choose a task execution role, or create the default one with its button".into());
    }
    if f.infrastructure_role_arn.trim().is_empty() {
        return Err("choose an infrastructure role, or create the default one with its button".into());
    }
    let mut container = Map::new();
    container.insert("image".into(), json!(image));
    if let Some(p) = parse_int("Container port", &f.port, 1, 65535)? {
        container.insert("containerPort".into(), json!(p));
    }
    let env = parse_environment(&f.environment)?;
    if !env.is_empty() {
        let pairs: Vec<Value> = env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
        container.insert("environment".into(), Value::Array(pairs));
    }
    let mut req = Map::new();
    req.insert("executionRoleArn".into(), json!(f.execution_role_arn.trim()));
    req.insert("infrastructureRoleArn".into(), json!(f.infrastructure_role_arn.trim()));
    req.insert("primaryContainer".into(), Value::Object(container));
    for (member, value) in [
        ("cluster", &f.cluster),
        ("serviceName", &f.name),
        ("healthCheckPath", &f.health_check_path),
        ("cpu", &f.cpu),
        ("memory", &f.memory),
    ] {
        let v = value.trim();
        if !v.is_empty() {
            req.insert(member.into(), json!(v));
        }
    }
    let min = parse_int("Minimum tasks", &f.min_tasks, 0, 10_000)?;
    let max = parse_int("Maximum tasks", &f.max_tasks, 1, 10_000)?;
    if let (Some(a), Some(b)) = (min, max)
        && a > b
    {
        return Err(format!("minimum tasks ({a}) is above maximum tasks ({b})"));
    }
    if min.is_some() || max.is_some() {
        let mut scaling = Map::new();
        if let Some(a) = min {
            scaling.insert("minTaskCount".into(), json!(a));
        }
        if let Some(b) = max {
            scaling.insert("maxTaskCount".into(), json!(b));
        }
        req.insert("scalingTarget".into(), Value::Object(scaling));
    }
    Ok(Value::Object(req))
}

/// A role the picker offers.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleChoice {
    pub name: String,
    pub arn: String,
}

/// Whether a trust policy document lets `principal` (a service) assume the role. The document may arrive
/// URL-encoded (as IAM's Query API returns it).
pub fn trusts_service(document: &str, principal: &str) -> bool {
    let parsed: Option<Value> = serde_json::from_str(document).ok().or_else(|| {
        let decoded = percent_encoding::percent_decode_str(document).decode_utf8().ok()?;
        serde_json::from_str(&decoded).ok()
    });
    let Some(doc) = parsed else {
        return false;
    };
    let as_list = |v: Option<&Value>| -> Vec<Value> {
        match v {
            Some(Value::Array(a)) => a.clone(),
            Some(other) => vec![other.clone()],
            None => Vec::new(),
        }
    };
    as_list(doc.get("Statement")).iter().any(|st| {
        st.get("Effect").and_then(Value::as_str) == Some("Allow")
            && as_list(st.get("Action")).iter().any(|a| matches!(a.as_str(), Some("sts:AssumeRole" | "sts:*" | "*")))
            && as_list(st.pointer("/Principal/Service")).iter().any(|p| p.as_str() == Some(principal))
    })
}

/// The roles (every page of ListRoles, bounded) whose trust policy fits each kind.
async fn role_choices(client: &Client) -> Result<(Vec<RoleChoice>, Vec<RoleChoice>), ClientError> {
    let mut execution = Vec::new();
    let mut infrastructure = Vec::new();
    let mut marker: Option<String> = None;
    for _ in 0..20 {
        let mut req = json!({"MaxItems": 1000});
        if let Some(m) = &marker {
            req["Marker"] = json!(m);
        }
        let out = client.call_value(Service::Iam, "ListRoles", req).await?;
        for r in out.get("Roles").and_then(Value::as_array).into_iter().flatten() {
            let name = r.get("RoleName").and_then(Value::as_str).unwrap_or_default();
            let arn = r.get("Arn").and_then(Value::as_str).unwrap_or_default();
            let doc = r.get("AssumeRolePolicyDocument").and_then(Value::as_str).unwrap_or_default();
            let choice = RoleChoice { name: name.into(), arn: arn.into() };
            if trusts_service(doc, RoleKind::Execution.principal()) {
                execution.push(choice.clone());
            }
            if trusts_service(doc, RoleKind::Infrastructure.principal()) {
                infrastructure.push(choice);
            }
        }
        marker = out.get("Marker").and_then(Value::as_str).map(String::from);
        if out.get("IsTruncated").and_then(Value::as_bool) != Some(true) || marker.is_none() {
            break;
        }
    }
    Ok((execution, infrastructure))
}

/// The create page: the form (values kept), an error or notice above it.
async fn render(user: &User, f: &CreateForm, error: Option<&ConsoleError>, notice: Option<&str>) -> Markup {
    let (roles, roles_error) = match role_choices(&user.client).await {
        Ok(r) => (r, None),
        Err(e) => ((Vec::new(), Vec::new()), Some(ConsoleError::Api(e))),
    };
    let mut f = f.clone();
    if f.execution_role_arn.is_empty() {
        f.execution_role_arn = preselect(RoleKind::Execution, &roles.0);
    }
    if f.infrastructure_role_arn.is_empty() {
        f.infrastructure_role_arn = preselect(RoleKind::Infrastructure, &roles.1);
    }
    page(Some(user), "Create service", form_markup(user, &f, &roles, error, roles_error.as_ref(), notice))
}

/// The role a fresh form offers first: AWS's default role when it exists, else the only fitting one, else none.
pub fn preselect(kind: RoleKind, choices: &[RoleChoice]) -> String {
    if let Some(c) = choices.iter().find(|c| c.name == kind.default_name()) {
        return c.arn.clone();
    }
    match choices {
        [only] => only.arn.clone(),
        _ => String::new(),
    }
}

fn form_markup(
    user: &User,
    f: &CreateForm,
    roles: &(Vec<RoleChoice>, Vec<RoleChoice>),
    error: Option<&ConsoleError>,
    roles_error: Option<&ConsoleError>,
    notice: Option<&str>,
) -> Markup {
    let picker = |kind: RoleKind, choices: &[RoleChoice], selected: &str| {
        let id = kind.field();
        let button_id = match kind {
            RoleKind::Execution => "create-execution-role",
            RoleKind::Infrastructure => "create-infrastructure-role",
        };
        html! {
            div.field {
                label for=(id) { (kind.label()) }
                div.row {
                    select #(id) name=(id) {
                        option value="" selected[selected.is_empty()] { "Choose a role…" }
                        @for c in choices {
                            option value=(c.arn) selected[c.arn == selected] { (c.name) }
                        }
                        @if !selected.is_empty() && !choices.iter().any(|c| c.arn == selected) {
                            option value=(selected) selected { (selected) }
                        }
                    }
                    button #(button_id) type="submit" formaction="/roles/default" formnovalidate name="kind"
                        value=(if kind == RoleKind::Execution { "execution" } else { "infrastructure" }) {
                        "Create default role"
                    }
                }
                p.hint { "Roles trusted by " code { (kind.principal()) } ". The default role is "
                         code { (kind.default_name()) } " with " code { (kind.managed_policy().rsplit('/').next().unwrap_or_default()) } "." }
            }
        }
    };
    let text = |id: &str, label: &str, value: &str, hint: &str, kind: &str| {
        html! {
            div.field {
                label for=(id) { (label) }
                input #(id) name=(id) type=(kind) value=(value) spellcheck="false" autocapitalize="off";
                @if !hint.is_empty() { p.hint { (hint) } }
            }
        }
    };
    html! {
        h1 { "Create an Express service" }
        p.lead { "An image and two roles: berth creates the load balancer rule, certificate, target groups, scaling and alarms." }
        @if let Some(n) = notice { p.notice role="status" { (n) } }
        @if let Some(e) = error { (alert(e)) }
        @if let Some(e) = roles_error { (alert(e)) }
        form #create-form .card method="post" action="/create" {
            (csrf_field(user))
            div.field {
                label for="image" { "Container image" }
                input #image name="image" type="text" required value=(f.image) spellcheck="false" autocapitalize="off"
                    placeholder="registry/repository:tag";
            }
            (picker(RoleKind::Execution, &roles.0, &f.execution_role_arn))
            (picker(RoleKind::Infrastructure, &roles.1, &f.infrastructure_role_arn))
            details #more-settings open[f.has_optional()] {
                summary { "Additional configuration (optional)" }
                (text("name", "Service name", &f.name, "Default: made from the image name. Used for the URL.", "text"))
                (text("cluster", "Cluster", &f.cluster, "Default: default.", "text"))
                (text("port", "Container port", &f.port, "Default: 80.", "number"))
                (text("health_check_path", "Health check path", &f.health_check_path, "Default: /ping.", "text"))
                (text("cpu", "CPU units", &f.cpu, "Default: 1024 (1 vCPU).", "text"))
                (text("memory", "Memory (MiB)", &f.memory, "Default: 2048.", "text"))
                (text("min_tasks", "Minimum tasks", &f.min_tasks, "Default: 1.", "number"))
                (text("max_tasks", "Maximum tasks", &f.max_tasks, "Default: 20.", "number"))
                div.field {
                    label for="environment" { "Environment variables" }
                    textarea #environment name="environment" rows="4" spellcheck="false" placeholder="KEY=value" { (f.environment) }
                    p.hint { "One KEY=value per line." }
                }
            }
            button #create .primary type="submit" { "Create" }
        }
    }
}

async fn form(user: User) -> Response {
    render(&user, &CreateForm::default(), None, None).await.into_response()
}

async fn create(user: User, Form(f): Form<CreateForm>) -> Response {
    let req = match create_request(&f) {
        Ok(r) => r,
        Err(msg) => {
            let e = ConsoleError::BadInput(msg);
            return (e.status(), render(&user, &f, Some(&e), None).await).into_response();
        }
    };
    match user.client.call_value(Service::Ecs, "CreateExpressGatewayService", req).await {
        Ok(out) => {
            let svc = out.get("service").cloned().unwrap_or_default();
            let name = svc.get("serviceName").and_then(Value::as_str).unwrap_or_default();
            let cluster =
                svc.get("cluster").and_then(Value::as_str).map(super::home::last_segment).unwrap_or("default");
            if name.is_empty() {
                return Redirect::to("/").into_response();
            }
            tracing::info!(service = name, user = %user.arn, "console created a service");
            Redirect::to(&format!("/services/{cluster}/{name}")).into_response()
        }
        Err(e) => {
            let e = ConsoleError::Api(e);
            (e.status(), render(&user, &f, Some(&e), None).await).into_response()
        }
    }
}

/// Creates AWS's default role of a kind (CreateRole, then AttachRolePolicy with the managed policy); an existing
/// role of that name is reused (the policy attached again, which IAM allows). Answers its ARN.
async fn ensure_default_role(client: &Client, kind: RoleKind) -> Result<String, ClientError> {
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": kind.principal()}, "Action": "sts:AssumeRole"}]});
    let arn = match client
        .call_value(
            Service::Iam,
            "CreateRole",
            json!({"RoleName": kind.default_name(), "AssumeRolePolicyDocument": trust.to_string(),
                   "Description": "Created by the berth console"}),
        )
        .await
    {
        Ok(out) => out.pointer("/Role/Arn").and_then(Value::as_str).unwrap_or_default().to_string(),
        Err(e) if e.code() == Some("EntityAlreadyExists") => {
            let out = client.call_value(Service::Iam, "GetRole", json!({"RoleName": kind.default_name()})).await?;
            out.pointer("/Role/Arn").and_then(Value::as_str).unwrap_or_default().to_string()
        }
        Err(e) => return Err(e),
    };
    client
        .call_value(
            Service::Iam,
            "AttachRolePolicy",
            json!({"RoleName": kind.default_name(), "PolicyArn": kind.managed_policy()}),
        )
        .await?;
    Ok(arn)
}

/// `POST /roles/default` (the create form's role buttons post the whole form here): creates the role, then
/// shows the form again with the values kept and the new role chosen.
async fn create_default_role(user: User, Form(mut f): Form<CreateForm>) -> Response {
    let Some(kind) = RoleKind::parse(&f.kind) else {
        let e = ConsoleError::BadInput(format!("kind must be execution or infrastructure (got {:?})", f.kind));
        return (e.status(), render(&user, &f, Some(&e), None).await).into_response();
    };
    match ensure_default_role(&user.client, kind).await {
        Ok(arn) => {
            match kind {
                RoleKind::Execution => f.execution_role_arn = arn,
                RoleKind::Infrastructure => f.infrastructure_role_arn = arn,
            }
            let notice = format!("Role {} is ready, with {}.", kind.default_name(), kind.managed_policy());
            render(&user, &f, None, Some(&notice)).await.into_response()
        }
        Err(e) => {
            let e = ConsoleError::Api(e);
            (e.status(), render(&user, &f, Some(&e), None).await).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> CreateForm {
        CreateForm {
            image: "berth-demo:latest".into(),
            execution_role_arn: "arn:aws:iam::1:role/e".into(),
            infrastructure_role_arn: "arn:aws:iam::1:role/i".into(),
            ..CreateForm::default()
        }
    }

    #[test]
    fn minimal_form_is_the_three_inputs() {
        let r = create_request(&base()).unwrap();
        assert_eq!(
            r,
            json!({"executionRoleArn": "arn:aws:iam::1:role/e", "infrastructureRoleArn": "arn:aws:iam::1:role/i",
                   "primaryContainer": {"image": "berth-demo:latest"}})
        );
    }

    #[test]
    fn optional_settings_map_to_members() {
        let f = CreateForm {
            name: "web".into(),
            port: "8080".into(),
            health_check_path: "/health".into(),
            cpu: "512".into(),
            memory: "1024".into(),
            min_tasks: "1".into(),
            max_tasks: "3".into(),
            environment: "A=1\r\n# note\r\n\r\nB = x=y\r\n".into(),
            ..base()
        };
        let r = create_request(&f).unwrap();
        assert_eq!(r["serviceName"], "web");
        assert_eq!(r["primaryContainer"]["containerPort"], 8080);
        assert_eq!(
            r["primaryContainer"]["environment"],
            json!([{"name": "A", "value": "1"}, {"name": "B", "value": " x=y"}])
        );
        assert_eq!(r["scalingTarget"], json!({"minTaskCount": 1, "maxTaskCount": 3}));
        assert_eq!(
            (r["healthCheckPath"].as_str(), r["cpu"].as_str(), r["memory"].as_str()),
            (Some("/health"), Some("512"), Some("1024"))
        );
    }

    #[test]
    fn bad_forms_say_what_is_wrong() {
        let cases: Vec<(CreateForm, &str)> = vec![
            (CreateForm { image: " ".into(), ..base() }, "container image"),
            (CreateForm { execution_role_arn: "".into(), ..base() }, "task execution role"),
            (CreateForm { infrastructure_role_arn: "".into(), ..base() }, "infrastructure role"),
            (CreateForm { port: "0".into(), ..base() }, "Container port"),
            (CreateForm { port: "http".into(), ..base() }, "Container port"),
            (CreateForm { min_tasks: "4".into(), max_tasks: "2".into(), ..base() }, "above maximum"),
            (CreateForm { environment: "NOEQUALS".into(), ..base() }, "line 1"),
            (CreateForm { environment: "A=1\nA=2".into(), ..base() }, "set twice"),
            (CreateForm { environment: "BAD-NAME=1".into(), ..base() }, "not a variable name"),
        ];
        for (f, want) in cases {
            let err = create_request(&f).unwrap_err();
            assert!(err.contains(want), "{want:?} not in {err:?}");
        }
    }

    #[test]
    fn trust_policies() {
        let doc = |svc: Value| {
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": svc}, "Action": "sts:AssumeRole"}]})
                .to_string()
        };
        assert!(trusts_service(&doc(json!("ecs-tasks.amazonaws.com")), "ecs-tasks.amazonaws.com"));
        assert!(!trusts_service(&doc(json!("ecs-tasks.amazonaws.com")), "ecs.amazonaws.com"));
        assert!(trusts_service(&doc(json!(["lambda.amazonaws.com", "ecs.amazonaws.com"])), "ecs.amazonaws.com"));
        let encoded: String =
            percent_encoding::utf8_percent_encode(&doc(json!("ecs.amazonaws.com")), percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        assert!(trusts_service(&encoded, "ecs.amazonaws.com"), "URL-encoded as IAM returns it");
        let deny = json!({"Statement": {"Effect": "Deny", "Principal": {"Service": "ecs.amazonaws.com"}, "Action": "sts:AssumeRole"}}).to_string();
        assert!(!trusts_service(&deny, "ecs.amazonaws.com"));
        assert!(!trusts_service("not json", "ecs.amazonaws.com"));
    }

    #[test]
    fn preselection() {
        let c = |n: &str| RoleChoice { name: n.into(), arn: format!("arn:aws:iam::1:role/{n}") };
        assert_eq!(
            preselect(RoleKind::Execution, &[c("a"), c("ecsTaskExecutionRole")]),
            "arn:aws:iam::1:role/ecsTaskExecutionRole"
        );
        assert_eq!(preselect(RoleKind::Execution, &[c("mine")]), "arn:aws:iam::1:role/mine");
        assert_eq!(preselect(RoleKind::Execution, &[c("a"), c("b")]), "", "two others: the user chooses");
        assert_eq!(preselect(RoleKind::Infrastructure, &[]), "");
    }

    #[test]
    fn role_kinds() {
        assert_eq!(RoleKind::parse("execution"), Some(RoleKind::Execution));
        assert_eq!(RoleKind::parse("infrastructure"), Some(RoleKind::Infrastructure));
        assert_eq!(RoleKind::parse("other"), None);
    }
}
