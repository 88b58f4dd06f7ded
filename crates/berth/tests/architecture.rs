//! The dependency rules of ARCHITECTURE.md, checked against `cargo metadata` so they cannot rot.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Direct dependencies (normal and build, not dev) of every workspace crate, by crate name.
fn workspace_deps() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let mut map = BTreeMap::new();
    for p in meta["packages"].as_array().expect("packages") {
        let name = p["name"].as_str().expect("name").to_string();
        let deps = p["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].as_str() != Some("dev"))
            .map(|d| d["name"].as_str().expect("dep name").to_string())
            .collect();
        map.insert(name, deps);
    }
    map
}

#[test]
fn dependency_rules_hold() {
    let deps = workspace_deps();
    let berth: BTreeSet<&str> = deps.keys().map(String::as_str).filter(|n| n.starts_with("berth")).collect();
    assert!(berth.contains("berth-core") && berth.contains("berth-proxy"), "workspace crates found: {berth:?}");
    let on = |krate: &str, dep: &str| deps.get(krate).is_some_and(|d| d.contains(dep));
    let mut broken = Vec::new();
    let mut rule = |ok: bool, what: String| {
        if !ok {
            broken.push(what);
        }
    };
    for k in &berth {
        rule(
            *k == "berth-runtime-docker" || !on(k, "bollard"),
            format!("{k} depends on bollard: only berth-runtime-docker may"),
        );
        rule(*k == "berth" || !on(k, "anyhow"), format!("{k} depends on anyhow: libraries use thiserror"));
        rule(!on(k, "aws-lc-rs"), format!("{k} pulls in aws-lc-rs: ring is the only crypto provider"));
    }
    for forbidden in ["berth-store", "berth-control", "berth-runtime", "berth-runtime-docker", "berth-api"] {
        rule(
            !on("berth-proxy", forbidden),
            format!("berth-proxy depends on {forbidden}: the proxy only knows berth-routes"),
        );
    }
    for forbidden in ["berth-api", "berth-proxy", "berth-runtime-docker", "hyper", "bollard"] {
        rule(
            !on("berth-control", forbidden),
            format!("berth-control depends on {forbidden}: it speaks no wire protocol"),
        );
    }
    for forbidden in ["berth-store", "berth-control", "berth-runtime", "berth-proxy"] {
        rule(
            !on("berth-api", forbidden),
            format!("berth-api depends on {forbidden}: it hands typed requests to a Backend"),
        );
    }
    for k in ["berth-core", "berth-routes"] {
        let inner: Vec<&String> = deps[k].iter().filter(|d| d.starts_with("berth")).collect();
        rule(inner.is_empty(), format!("{k} depends on {inner:?}: it must depend on no berth crate"));
    }
    for k in
        ["berth-store", "berth-runtime", "berth-model", "berth-certs", "berth-iam", "berth-vault", "berth-telemetry"]
    {
        let inner: Vec<&String> = deps[k].iter().filter(|d| d.starts_with("berth") && *d != "berth-core").collect();
        rule(inner.is_empty(), format!("{k} depends on {inner:?}: only berth-core is allowed"));
    }
    for forbidden in ["tokio", "rusqlite", "hyper", "bollard"] {
        rule(
            !on("berth-telemetry", forbidden),
            format!("berth-telemetry depends on {forbidden}: it is pure (no I/O, no clock, no store)"),
        );
    }
    // berth's own clients reach berth only through its public API: no store, no control plane, no server side.
    let server_side = [
        "berth-store",
        "berth-control",
        "berth-api",
        "berth-proxy",
        "berth-runtime",
        "berth-runtime-docker",
        "berth-certs",
    ];
    for k in ["berth-client", "berth-cli", "berth-console"] {
        for forbidden in server_side {
            rule(!on(k, forbidden), format!("{k} depends on {forbidden}: clients use berth's public API only"));
        }
    }
    rule(!on("berth-cli", "berth-console"), "berth-cli depends on berth-console".into());
    rule(!on("berth-console", "berth-cli"), "berth-console depends on berth-cli".into());
    for k in &berth {
        rule(
            *k == "berth-client" || !on(k, "aws-sigv4"),
            format!("{k} depends on aws-sigv4: berth-client is the one signer"),
        );
        for web in ["axum", "maud"] {
            rule(*k == "berth-console" || !on(k, web), format!("{k} depends on {web}: only the console serves pages"));
        }
    }
    if let Some(demo) = deps.get("berth-demo") {
        rule(demo.is_empty(), format!("berth-demo has dependencies {demo:?}: it must build from std alone"));
    }
    assert!(broken.is_empty(), "dependency rules broken:\n{}", broken.join("\n"));
}

#[test]
fn the_lockfile_has_one_crypto_provider() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock")).expect("Cargo.lock");
    assert!(!lock.contains("name = \"aws-lc-rs\""), "aws-lc-rs is in Cargo.lock; use ring only");
    assert!(lock.contains("name = \"ring\""));
}

#[test]
fn every_library_crate_starts_with_its_contract() {
    let crates = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    for entry in std::fs::read_dir(crates).expect("crates dir") {
        let dir = entry.expect("entry").path();
        let lib = dir.join("src/lib.rs");
        let main = dir.join("src/main.rs");
        let root = if lib.exists() { lib } else { main };
        let Ok(text) = std::fs::read_to_string(&root) else { continue };
        assert!(text.trim_start().starts_with("//!"), "{} must start with a //! paragraph", root.display());
    }
}
