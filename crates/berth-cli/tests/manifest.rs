//! The berth.toml format and the plan (manifest.rs): data-driven cases, no network.

use berth_cli::manifest::{self, Change, Observed};

/// A change as one line: `ACTION NAME[ field: old → new]...`.
fn show(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .map(|c| match c {
            Change::Update { name, fields, .. } => {
                let f: Vec<String> = fields.iter().map(|f| format!("{}: {} → {}", f.field, f.old, f.new)).collect();
                format!("update {name} {}", f.join("; "))
            }
            other => format!("{} {}", other.action(), other.name()),
        })
        .collect()
}

fn web(image: &str) -> Observed {
    Observed {
        name: "web".into(),
        arn: "arn:aws:ecs:us-east-1:000000000000:service/default/web".into(),
        image: image.into(),
        port: Some(8080),
        health_path: Some("/ping".into()),
        cpu: Some("256".into()),
        memory: Some("512".into()),
        min: Some(1),
        max: Some(4),
        scale_on: Some(manifest::ScaleOn::Requests),
        target: Some(500),
        env: [("MODE".to_string(), "prod".to_string())].into(),
        secrets: Default::default(),
        execution_role: Some("arn:aws:iam::000000000000:role/ecsTaskExecutionRole".into()),
        infrastructure_role: Some("arn:aws:iam::000000000000:role/ecsInfrastructureRoleForExpressServices".into()),
        draining: false,
    }
}

fn draining(mut o: Observed) -> Observed {
    o.draining = true;
    o
}

fn other(name: &str) -> Observed {
    Observed {
        name: name.into(),
        arn: format!("arn:aws:ecs:us-east-1:000000000000:service/default/{name}"),
        image: "nginx".into(),
        ..Observed::default()
    }
}

const FULL: &str = r#"
[services.web]
image = "berth-demo:latest"
port = 8080
health_path = "/ping"
cpu = "256"
memory = 512
min = 1
max = 4
scale_on = "requests"
target = 500
env = { MODE = "prod" }
"#;

struct Case {
    name: &'static str,
    file: &'static str,
    observed: Vec<Observed>,
    prune: bool,
    expect: &'static [&'static str],
}

#[test]
fn plan_cases() {
    let cases = vec![
        Case { name: "nothing runs: create", file: FULL, observed: vec![], prune: false, expect: &["create web"] },
        Case {
            name: "runs as declared: unchanged (cpu as a string, memory as a number)",
            file: FULL,
            observed: vec![web("berth-demo:latest")],
            prune: false,
            expect: &["unchanged web"],
        },
        Case {
            name: "new image: one field",
            file: FULL,
            observed: vec![web("berth-demo:v1")],
            prune: false,
            expect: &["update web image: berth-demo:v1 → berth-demo:latest"],
        },
        Case {
            name: "fields left out are left alone",
            file: "[services.web]\nimage = \"berth-demo:latest\"\n",
            observed: vec![web("berth-demo:latest")],
            prune: false,
            expect: &["unchanged web"],
        },
        Case {
            name: "env is the whole set",
            file: "[services.web]\nimage = \"berth-demo:latest\"\nenv = { MODE = \"dev\", DEBUG = \"1\" }\n",
            observed: vec![web("berth-demo:latest")],
            prune: false,
            expect: &["update web env: {MODE=prod} → {DEBUG=1, MODE=dev}"],
        },
        Case {
            name: "an empty env clears it",
            file: "[services.web]\nimage = \"berth-demo:latest\"\nenv = {}\n",
            observed: vec![web("berth-demo:latest")],
            prune: false,
            expect: &["update web env: {MODE=prod} → {}"],
        },
        Case {
            name: "several fields, in the file's field order",
            file: "[services.web]\nimage = \"berth-demo:latest\"\nport = 80\nmax = 10\nscale_on = \"cpu\"\ntarget = 60\n",
            observed: vec![web("berth-demo:latest")],
            prune: false,
            expect: &["update web port: 8080 → 80; max: 4 → 10; scale_on: requests → cpu; target: 500 → 60"],
        },
        Case {
            name: "a field the service never set shows as (unset)",
            file: "[services.api]\nimage = \"nginx\"\nhealth_path = \"/health\"\n",
            observed: vec![other("api")],
            prune: false,
            expect: &["update api health_path: (unset) → /health"],
        },
        Case {
            name: "services the file does not name are kept without --prune",
            file: FULL,
            observed: vec![other("old"), web("berth-demo:latest"), other("aaa")],
            prune: false,
            expect: &["unchanged web", "unmanaged aaa", "unmanaged old"],
        },
        Case {
            name: "--prune deletes them",
            file: FULL,
            observed: vec![other("old"), web("berth-demo:latest")],
            prune: true,
            expect: &["unchanged web", "delete old"],
        },
        Case {
            name: "several services sorted by name",
            file: "[services.zeta]\nimage = \"a\"\n[services.alpha]\nimage = \"b\"\n",
            observed: vec![],
            prune: true,
            expect: &["create alpha", "create zeta"],
        },
        Case {
            name: "another infrastructure role cannot be applied in place",
            file: "[services.web]\nimage = \"berth-demo:latest\"\ninfrastructure_role = \"arn:aws:iam::000000000000:role/other\"\n",
            observed: vec![web("berth-demo:latest")],
            prune: false,
            expect: &["blocked web"],
        },
        Case {
            name: "the same infrastructure role is fine",
            file: "[services.web]\nimage = \"berth-demo:latest\"\ninfrastructure_role = \"arn:aws:iam::000000000000:role/ecsInfrastructureRoleForExpressServices\"\n",
            observed: vec![web("berth-demo:latest")],
            prune: false,
            expect: &["unchanged web"],
        },
        Case {
            name: "a declared service being deleted cannot be applied yet",
            file: FULL,
            observed: vec![draining(web("berth-demo:latest"))],
            prune: false,
            expect: &["blocked web"],
        },
        Case {
            name: "an undeclared service being deleted is neither kept nor deleted again",
            file: FULL,
            observed: vec![web("berth-demo:latest"), draining(other("old"))],
            prune: true,
            expect: &["unchanged web"],
        },
        Case {
            name: "secrets compared by ARN",
            file: "[services.web]\nimage = \"berth-demo:latest\"\nsecrets = { DB = \"arn:aws:secretsmanager:us-east-1:000000000000:secret:db\" }\n",
            observed: vec![web("berth-demo:latest")],
            prune: false,
            expect: &["update web secrets: {} → {DB=arn:aws:secretsmanager:us-east-1:000000000000:secret:db}"],
        },
    ];
    for case in cases {
        let m = manifest::parse("berth.toml", case.file).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let changes = manifest::plan(&m, &case.observed, case.prune);
        assert_eq!(show(&changes), case.expect, "case: {}", case.name);
        // is_change agrees with the action
        for c in &changes {
            assert_eq!(c.is_change(), !matches!(c.action(), "unchanged" | "unmanaged"), "case: {}", case.name);
        }
    }
}

#[test]
fn bad_files_name_the_file_the_service_and_the_field() {
    let cases: &[(&str, &str)] = &[
        ("[services.web]\nport = 80\n", "berth.toml: services.web.image: missing field `image`"),
        ("[services.web]\nimage = \"x\"\nprot = 80\n", "berth.toml: services.web.prot: unknown field `prot`"),
        ("[services.web]\nimage = \"x\"\nport = 0\n", "berth.toml: services.web.port: must be from 1 to 65535"),
        ("[services.web]\nimage = \"x\"\nport = 70000\n", "berth.toml: services.web"),
        (
            "[services.web]\nimage = \"x\"\nhealth_path = \"ping\"\n",
            "services.web.health_path: \"ping\" must start with `/`",
        ),
        ("[services.web]\nimage = \"x\"\nmin = 5\nmax = 2\n", "services.web.max: 2 is below min (5)"),
        ("[services.web]\nimage = \"x\"\nscale_on = \"requests\"\n", "services.web.target: is required with scale_on"),
        ("[services.web]\nimage = \"x\"\ntarget = 5\n", "services.web.scale_on: is required with target"),
        ("[services.web]\nimage = \"x\"\nscale_on = \"disk\"\ntarget = 5\n", "services.web"),
        ("[services.web]\nimage = \"x\"\ncpu = \"lots\"\n", "services.web.cpu: \"lots\" must be a positive number"),
        (
            "[services.web]\nimage = \"x\"\nsecrets = { DB = \"hunter2\" }\n",
            "services.web.secrets: DB: \"hunter2\" is not an ARN",
        ),
        (
            "[services.web]\nimage = \"x\"\nexecution_role = \"admin\"\n",
            "services.web.execution_role: \"admin\" is not a role ARN",
        ),
        ("[services.web]\nimage = \"  \"\n", "services.web.image: must name a container image"),
        ("[services.\"9lives\"]\nimage = \"x\"\n", "services.9lives: a service name starts with a letter"),
        ("[service.web]\nimage = \"x\"\n", "berth.toml: line 1: unknown field `service`, expected `services`"),
        ("", "berth.toml: declares no service"),
        ("[services.web\nimage = 1", "berth.toml: line 1: "),
    ];
    for (text, want) in cases {
        match manifest::parse("berth.toml", text) {
            Ok(m) => panic!("{text:?} parsed: {m:?}"),
            Err(e) => {
                let e = e.to_string();
                assert!(e.starts_with("berth.toml: ") && e.contains(want), "{text:?}: {e}");
            }
        }
    }
}

#[test]
fn numbers_or_strings_for_cpu_and_memory() {
    let m = manifest::parse("berth.toml", FULL).expect("the full example parses");
    let web = &m.services["web"];
    assert_eq!(web.port, Some(8080));
    assert_eq!(web.cpu.as_ref().map(manifest::Units::value).as_deref(), Some("256"));
    assert_eq!(web.memory.as_ref().map(manifest::Units::value).as_deref(), Some("512"));
    assert_eq!(web.scale_on, Some(manifest::ScaleOn::Requests));
}
