//! The module rules of ARCHITECTURE.md inside `berth-control`, checked against its sources so they cannot rot:
//! which top-level module may use which (a module uses only modules of lower layers, so the graph has no
//! circle), and which files are pure.
//!
//! A module `a` uses module `b` when a file of `a` names `crate::b` (also inside a grouped `crate::{..}` import
//! or inline in an expression), climbs out of `a` with `super::` to `b`, or calls a `pub` method of `Control`
//! that a file of `b` defines (`impl Control` blocks hide dependencies that paths do not show). The crate root
//! (`lib.rs`) is the composition root: it may use every module, and every module may use what it defines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// berth-control's top-level modules, top layer first. A module may use only modules of later (lower) layers;
/// a new module must be placed here.
const LAYERS: &[(&str, &[&str])] = &[
    ("observability", &["observe"]),
    ("executor", &["reconcile"]),
    ("ECS API", &["ecs"]),
    ("deployments", &["rollout"]),
    ("orchestration", &["express", "certs", "publish", "containers"]),
    ("services", &["autoscaling", "elbv2", "log_shipping", "sampling", "secrets", "sts", "task_role"]),
    ("base services", &["cloudwatch", "ec2", "logs", "iam"]),
    ("credentials", &["credentials"]),
    ("sealing", &["sealed_credentials"]),
    ("foundation", &["authz", "config", "error", "health", "names", "paging", "plan", "revisions", "routes", "token"]),
    ("words", &["deployment"]),
];

/// Files that decide without state: no `Control`, no store transaction, no driver, no lock, no async (row and
/// policy types as plain data are fine).
const PURE: &[&str] = &[
    "plan.rs",
    "deployment.rs",
    "routes.rs",
    "paging.rs",
    "ec2/rules.rs",
    "elbv2/rules.rs",
    "logs/pattern.rs",
    "logs/regex.rs",
];

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../berth-control/src")
}

/// Every `.rs` file under `dir`, as (path relative to `src`, text).
fn sources(dir: &Path, base: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).expect("read src dir").map(|e| e.expect("dir entry").path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            sources(&p, base, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p.strip_prefix(base).expect("under src").to_string_lossy().replace('\\', "/");
            out.push((rel, std::fs::read_to_string(&p).expect("read source")));
        }
    }
}

/// The source without comments, string and char literals (their contents become spaces), so only code is read.
fn strip(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !b[..i].last().is_some_and(|p| ident(*p)) {
            // Raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|h| b.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}'), else a lifetime.
            let close = if next == Some('\\') {
                b.get(i + 3..).and_then(|r| r.iter().position(|&x| x == '\'')).map(|p| i + 3 + p)
            } else if b.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match close {
                Some(end) => {
                    out.push_str("' '");
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The module path of a file: `ec2/groups.rs` → [ec2, groups], `ec2/mod.rs` → [ec2], `lib.rs` → [].
fn file_module(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel.trim_end_matches(".rs").split('/').map(str::to_string).collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts
}

/// The names a path continues with after `crate::` or `super::` at `at`: one name, or the first segment of each
/// item of a grouped `{..}` import.
fn path_heads(code: &[char], at: usize) -> Vec<String> {
    let mut i = at;
    while code.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    if code.get(i) == Some(&'{') {
        let mut heads = Vec::new();
        let mut depth = 0;
        let mut item_start = true;
        i += 1;
        while i < code.len() {
            let c = code[i];
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => item_start = true,
                _ if item_start && ident(c) => {
                    let start = i;
                    while code.get(i).is_some_and(|&c| ident(c)) {
                        i += 1;
                    }
                    heads.push(code[start..i].iter().collect());
                    item_start = false;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        heads
    } else {
        let start = i;
        while code.get(i).is_some_and(|&c| ident(c)) {
            i += 1;
        }
        vec![code[start..i].iter().collect()]
    }
}

/// Whether `word` starts at `i` as a whole word.
fn word_at(code: &[char], i: usize, word: &str) -> bool {
    let w: Vec<char> = word.chars().collect();
    code.len() >= i + w.len()
        && code[i..i + w.len()] == w[..]
        && (i == 0 || !ident(code[i - 1]) && code[i - 1] != ':')
        && !code.get(i + w.len()).is_some_and(|&c| ident(c))
}

/// The top-level modules a file's paths name, with the line of each use.
fn path_uses(rel: &str, code: &str, tops: &BTreeSet<String>) -> Vec<(String, usize)> {
    let code: Vec<char> = code.chars().collect();
    let file_path = file_module(rel);
    let own = file_path.first().cloned().unwrap_or_default();
    // Inline `mod x {` blocks deepen the module path `super::` climbs from.
    let mut braces: Vec<bool> = Vec::new();
    let mut pending_mod = false;
    let mut line = 1;
    let mut out = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let c = code[i];
        if c == '\n' {
            line += 1;
        }
        if word_at(&code, i, "mod") {
            let mut j = i + 3;
            while code.get(j).is_some_and(|c| c.is_whitespace()) {
                j += 1;
            }
            while code.get(j).is_some_and(|&c| ident(c)) {
                j += 1;
            }
            while code.get(j).is_some_and(|c| c.is_whitespace()) {
                j += 1;
            }
            pending_mod = code.get(j) == Some(&'{');
        }
        match c {
            '{' => {
                braces.push(pending_mod);
                pending_mod = false;
            }
            '}' => {
                braces.pop();
            }
            _ => {}
        }
        if word_at(&code, i, "crate") && code.get(i + 5) == Some(&':') && code.get(i + 6) == Some(&':') {
            for h in path_heads(&code, i + 7) {
                if tops.contains(&h) && h != own {
                    out.push((h, line));
                }
            }
        } else if word_at(&code, i, "super") && code.get(i + 5) == Some(&':') {
            let mut k = 0;
            let mut j = i;
            while code.get(j..j + 7).is_some_and(|w| w.iter().copied().eq("super::".chars())) {
                k += 1;
                j += 7;
            }
            let depth = file_path.len() + braces.iter().filter(|m| **m).count();
            if k >= depth {
                for h in path_heads(&code, j) {
                    if tops.contains(&h) && h != own {
                        out.push((h, line));
                    }
                }
            }
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

/// The `pub`/`pub(crate)` methods each `impl Control` block defines, by method name → owning top-level module.
fn control_methods(files: &[(String, String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut methods: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, _, code) in files {
        // The root's methods are the composition root's, usable by every module.
        let Some(top) = file_module(rel).first().cloned() else { continue };
        let mut search = 0;
        while let Some(pos) =
            code[search..].find("impl Control {").or_else(|| code[search..].find("impl crate::Control {"))
        {
            let start = search + pos;
            let open = start + code[start..].find('{').expect("impl block opens");
            let mut depth = 0;
            let mut end = open;
            for (n, c) in code[open..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = open + n;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let body = &code[open..end];
            for l in body.lines() {
                let l = l.trim_start();
                if !l.starts_with("pub") {
                    continue;
                }
                let Some(f) = l.find("fn ") else { continue };
                let name: String = l[f + 3..].chars().take_while(|&c| ident(c)).collect();
                if !name.is_empty() {
                    methods.entry(name).or_default().insert(top.clone());
                }
            }
            search = end.max(start + 1);
        }
    }
    methods
}

/// Every (module, used module) edge, with where it was seen.
fn module_edges() -> (BTreeSet<String>, BTreeMap<(String, String), String>) {
    let base = src_dir();
    let mut raw = Vec::new();
    sources(&base, &base, &mut raw);
    assert!(raw.iter().any(|(r, _)| r == "lib.rs"), "berth-control sources found at {}", base.display());
    let files: Vec<(String, String, String)> = raw
        .into_iter()
        .map(|(r, t)| {
            let c = strip(&t);
            (r, t, c)
        })
        .collect();
    let tops: BTreeSet<String> =
        files.iter().filter(|(r, _, _)| r != "lib.rs").map(|(r, _, _)| file_module(r)[0].clone()).collect();
    let methods = control_methods(&files);
    let mut edges: BTreeMap<(String, String), String> = BTreeMap::new();
    for (rel, _, code) in &files {
        let Some(own) = file_module(rel).first().cloned() else { continue };
        for (used, line) in path_uses(rel, code, &tops) {
            edges.entry((own.clone(), used.clone())).or_insert_with(|| format!("{rel}:{line} names crate::{used}"));
        }
        for (n, _) in code.char_indices().filter(|(_, c)| *c == '.') {
            let name: String = code[n + 1..].chars().take_while(|&c| ident(c)).collect();
            let after = code[n + 1 + name.len()..].trim_start();
            if name.is_empty() || !(after.starts_with('(') || after.starts_with("::<")) {
                continue;
            }
            for owner in methods.get(&name).into_iter().flatten() {
                if *owner != own {
                    let line = code[..n].matches('\n').count() + 1;
                    edges
                        .entry((own.clone(), owner.clone()))
                        .or_insert_with(|| format!("{rel}:{line} calls Control::{name} (defined in {owner})"));
                }
            }
        }
    }
    (tops, edges)
}

#[test]
fn control_modules_use_only_lower_layers() {
    let (tops, edges) = module_edges();
    let mut layer: BTreeMap<&str, usize> = BTreeMap::new();
    let mut broken = Vec::new();
    for (n, (_, modules)) in LAYERS.iter().enumerate() {
        for m in *modules {
            if layer.insert(m, n).is_some() {
                broken.push(format!("{m} is placed in two layers"));
            }
        }
    }
    for t in &tops {
        if !layer.contains_key(t.as_str()) {
            broken.push(format!("module {t} is in no layer: place it in LAYERS (and ARCHITECTURE.md)"));
        }
    }
    for m in layer.keys() {
        if !tops.contains(*m) {
            broken.push(format!("LAYERS names {m}, which is not a module of berth-control"));
        }
    }
    for ((from, to), why) in &edges {
        let (Some(&lf), Some(&lt)) = (layer.get(from.as_str()), layer.get(to.as_str())) else { continue };
        if lt <= lf {
            broken.push(format!(
                "{from} ({}) uses {to} ({}), which is not in a lower layer: {why}",
                LAYERS[lf].0, LAYERS[lt].0
            ));
        }
    }
    let graph: Vec<String> = tops
        .iter()
        .map(|t| {
            let to: Vec<&str> = edges.keys().filter(|(f, _)| f == t).map(|(_, u)| u.as_str()).collect();
            format!("{t} -> {}", to.join(" "))
        })
        .collect();
    assert!(
        broken.is_empty(),
        "module rules broken:\n  {}\nmodule graph:\n  {}",
        broken.join("\n  "),
        graph.join("\n  ")
    );
}

/// Every service module enters the same way: `Control::handle_<service>` defined in its own module, none in the
/// crate root.
#[test]
fn every_service_enters_through_its_own_module() {
    let base = src_dir();
    let mut raw = Vec::new();
    sources(&base, &base, &mut raw);
    let mut broken = Vec::new();
    let entries = [
        ("ecs", "handle_ecs"),
        ("elbv2", "handle_elbv2"),
        ("ec2", "handle_ec2"),
        ("iam", "handle_iam"),
        ("logs", "handle_logs"),
        ("secrets", "handle_secretsmanager"),
        ("secrets", "handle_ssm"),
        ("sts", "handle_sts"),
    ];
    for (module, entry) in entries {
        let defined = raw
            .iter()
            .filter(|(rel, _)| file_module(rel).first().map(String::as_str) == Some(module))
            .any(|(_, text)| text.contains(&format!("pub async fn {entry}(")));
        if !defined {
            broken.push(format!("{module} does not define Control::{entry}"));
        }
    }
    for (rel, text) in &raw {
        if rel == "lib.rs" && text.contains("pub async fn handle_") {
            broken.push("lib.rs defines a handle_*: a service enters through its own module".to_string());
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn pure_files_touch_no_state() {
    let base = src_dir();
    let mut broken = Vec::new();
    for rel in PURE {
        let text = std::fs::read_to_string(base.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let code: Vec<char> = strip(&text).chars().collect();
        for word in ["Control", "Tx", "Store", "Driver", "tokio", "Mutex", "async"] {
            if (0..code.len()).any(|i| word_at(&code, i, word)) {
                broken.push(format!("{rel} names {word}: pure files decide from their inputs only"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_checker_sees_every_kind_of_use() {
    let tops: BTreeSet<String> = ["ec2", "elbv2", "iam", "logs"].iter().map(|s| s.to_string()).collect();
    let heads = |rel: &str, code: &str| -> Vec<String> {
        path_uses(rel, &strip(code), &tops).into_iter().map(|(m, _)| m).collect()
    };
    assert_eq!(heads("ec2/groups.rs", "use crate::{Control, elbv2::x, iam};"), ["elbv2", "iam"]);
    assert_eq!(heads("ec2/groups.rs", "fn f() { crate::logs::g(); }"), ["logs"]);
    assert_eq!(heads("ec2/groups.rs", "use super::rules; use super::super::iam::x;"), ["iam"]);
    assert_eq!(heads("ec2.rs", "use super::iam;"), ["iam"]);
    assert_eq!(heads("ec2/mod.rs", "mod tests { use super::*; use super::super::logs; }"), ["logs"]);
    assert!(heads("ec2/mod.rs", "// crate::iam\nconst S: &str = \"crate::logs\";").is_empty());
    assert!(heads("ec2/mod.rs", "use crate::ec2::x;").is_empty(), "a module's own paths are no dependency");
}
