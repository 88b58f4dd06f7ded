//! Snapshot tests of what `ls`, `status` and `deploy` print, in every `--output` format, and of the live
//! progress display and its plain lines — all from fixed JSON in `fixtures/` (no network). A difference fails
//! with both texts; `UPDATE_SNAPSHOTS=1 cargo test -p berth-cli --test snapshots` rewrites `snapshots/*.txt`.

use std::path::PathBuf;

use berth_cli::output::{Doc, Format, Output};
use berth_cli::{deploy, ls, progress, status};

fn dir(sub: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join(sub)
}

fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = dir("fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check_text(name: &str, got: &str) {
    let path = dir("snapshots").join(format!("{name}.txt"));
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::write(&path, got).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_SNAPSHOTS=1 writes it)", path.display()));
    assert!(
        want == got,
        "{} differs (UPDATE_SNAPSHOTS=1 rewrites it)\n--- want\n{want}\n--- got\n{got}",
        path.display()
    );
}

fn check_doc(name: &str, doc: &Doc) {
    for (format, ext) in [(Format::Table, "table"), (Format::Text, "text"), (Format::Json, "json")] {
        let got = Output { format, color: false }.render(doc);
        if format == Format::Json {
            // Pure JSON: it parses back to the document.
            let back: serde_json::Value = serde_json::from_str(&got).expect("json output parses");
            assert_eq!(back, doc.json);
        }
        check_text(&format!("{name}.{ext}"), &got);
    }
}

#[test]
fn ls_in_every_format() {
    let rows: Vec<ls::Row> = fixture("ls.json");
    check_doc("ls", &ls::doc(&rows));
    check_doc("ls-empty", &ls::doc(&[]));
}

#[test]
fn status_in_every_format() {
    let data: status::Data = fixture("status.json");
    let doc = status::doc(&data);
    // The traffic split and target health come from the deployment and DescribeTargetHealth.
    assert_eq!(doc.json["deployment"]["lifecycleStage"], "PRODUCTION_TRAFFIC_SHIFT");
    assert_eq!(doc.json["tasks"][1]["health"], "healthy");
    check_doc("status", &doc);
}

#[test]
fn deploy_final_output_in_every_format_ends_with_the_url() {
    let d: deploy::Deployed = fixture("deploy.json");
    let doc = deploy::doc(&d);
    for format in [Format::Table, Format::Text] {
        let text = Output { format, color: false }.render(&doc);
        assert_eq!(text.lines().last(), Some("https://shop-1a2b3c.ecs.us-east-1.localhost"));
    }
    check_doc("deploy", &doc);
}

#[test]
fn the_progress_frame_and_its_plain_lines() {
    let data: status::Data = fixture("status.json");
    let lines = progress::lines(&data.observed);
    let frame = progress::frame("Updating shop (shop:v2)", &lines, 3, 100, 100, false);
    check_text("progress.frame", &(frame.join("\n") + "\n"));
    let mut seen = std::collections::BTreeSet::new();
    let mut plain = progress::changes(&[], &lines, data.observed.at);
    // The events of the last two minutes (the fixture's steady-state event is older: not printed).
    plain.extend(progress::new_events(&data.observed, data.observed.at - 120.0, &mut seen));
    check_text("progress.plain", &(plain.join("\n") + "\n"));
}
