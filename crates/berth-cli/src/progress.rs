//! The live progress of a deployment: redrawn in place on a terminal, timestamped lines otherwise.
//!
//! [`lines`] turns one [`Observed`] into the display's lines (deployment, image, tasks, health, traffic, the
//! managed resources, the last event) and [`outcome`] says whether the deployment ended; both are pure, as are
//! [`frame`] (the in-place display) and [`changes`] (the plain lines). [`watch`] is the small loop around them:
//! observe every second, redraw or print what changed, stop at the outcome, a timeout or Ctrl-C.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use serde_json::Value;

use crate::observe::{Observed, utc};
use crate::service::short_name;
use crate::{CliError, Ctx};

/// A line's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Done,
    Running,
    Failed,
    /// Not started yet.
    Waiting,
    /// Gone (deleted, stopped as planned).
    Gone,
    /// Information (no state).
    Info,
}

/// One line of the display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Identity across observations (what changed is told by key).
    pub key: String,
    pub mark: Mark,
    pub label: String,
    pub detail: String,
    /// Nesting level (0 = top).
    pub depth: usize,
    /// Shown on the live display only (a countdown that would make a plain line per second).
    pub note: String,
}

impl Line {
    fn new(key: impl Into<String>, mark: Mark, label: impl Into<String>, detail: impl Into<String>) -> Line {
        Line { key: key.into(), mark, label: label.into(), detail: detail.into(), depth: 0, note: String::new() }
    }
    fn nested(mut self, depth: usize) -> Line {
        self.depth = depth;
        self
    }
    fn noted(mut self, note: String) -> Line {
        self.note = note;
        self
    }
}

/// How a deployment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// Rolled back, stopped or failed, with the reason.
    Failed(String),
}

/// The revision the deployment heads to: the deployment's target, else the newest active configuration's.
pub fn target_revision(o: &Observed) -> Option<String> {
    o.deployment["targetServiceRevision"]["arn"].as_str().map(str::to_string).or_else(|| {
        crate::service::newest_configuration(&o.service)?["serviceRevisionArn"].as_str().map(str::to_string)
    })
}

/// Whether the observed deployment ended, and how.
pub fn outcome(o: &Observed) -> Option<Outcome> {
    match crate::service::status_code(&o.service) {
        "DRAINING" | "INACTIVE" => return Some(Outcome::Failed("the service is being deleted".into())),
        _ => {}
    }
    let reason = || {
        o.deployment["rollback"]["reason"]
            .as_str()
            .or(o.deployment["statusReason"].as_str())
            .filter(|r| !r.is_empty())
            .unwrap_or("no reason given")
            .to_string()
    };
    match o.deployment["status"].as_str() {
        Some("SUCCESSFUL") => Some(Outcome::Succeeded),
        Some("ROLLBACK_SUCCESSFUL") => Some(Outcome::Failed(format!("rolled back: {}", reason()))),
        Some("ROLLBACK_FAILED") => Some(Outcome::Failed(format!("rollback failed: {}", reason()))),
        Some("STOPPED") => Some(Outcome::Failed(format!("stopped: {}", reason()))),
        Some(_) => None,
        // No deployment to follow: done when the desired tasks run and are healthy.
        None => {
            let desired = o.ecs["desiredCount"].as_i64().unwrap_or(0);
            let healthy = o.live_tasks().filter(|t| o.task_health(t).as_deref() == Some("healthy")).count() as i64;
            (desired > 0 && healthy >= desired).then_some(Outcome::Succeeded)
        }
    }
}

fn resource_mark(status: Option<&str>) -> Mark {
    match status {
        Some("ACTIVE") => Mark::Done,
        Some("FAILED") => Mark::Failed,
        Some("DELETED") => Mark::Gone,
        Some(_) => Mark::Running,
        None => Mark::Waiting,
    }
}

/// The short form of a resource ARN: what follows the service part (`targetgroup/web-a/1f2e…`).
pub fn short_arn(arn: &str) -> &str {
    // arn:partition:service:region:account:resource
    arn.splitn(6, ':').nth(5).unwrap_or(arn)
}

/// The display's lines for one observation.
pub fn lines(o: &Observed) -> Vec<Line> {
    let mut out = Vec::new();
    let target = target_revision(o);
    let dep = &o.deployment;

    // Deployment and its stage.
    if dep.is_object() {
        let status = dep["status"].as_str().unwrap_or("PENDING");
        let stage = dep["lifecycleStage"].as_str().unwrap_or("");
        let mark = match status {
            "SUCCESSFUL" => Mark::Done,
            "ROLLBACK_SUCCESSFUL" | "ROLLBACK_FAILED" | "STOPPED" => Mark::Failed,
            _ => Mark::Running,
        };
        let mut detail = status.to_string();
        if !stage.is_empty() && mark == Mark::Running {
            let _ = write!(detail, " · {stage}");
        }
        if let Some(r) = dep["statusReason"].as_str().filter(|r| !r.is_empty() && mark == Mark::Failed) {
            let _ = write!(detail, " · {r}");
        }
        out.push(Line::new("deployment", mark, "Deployment", detail));
    }

    // Tasks of the target revision: image pulled, started, healthy.
    let target_tasks: Vec<&Value> =
        o.tasks.iter().filter(|t| target.is_none() || o.task_revision(t) == target).collect();
    let live: Vec<&Value> =
        target_tasks.iter().copied().filter(|t| t["lastStatus"].as_str() != Some("STOPPED")).collect();
    let wanted = dep["targetServiceRevision"]["requestedTaskCount"]
        .as_i64()
        .or_else(|| o.ecs["desiredCount"].as_i64())
        .unwrap_or(0)
        .max(0) as usize;
    let image = target
        .as_deref()
        .and_then(|t| o.revisions.iter().find(|r| r["serviceRevisionArn"].as_str() == Some(t)))
        .and_then(|r| r["containerImages"][0]["image"].as_str())
        .or_else(|| crate::service::newest_configuration(&o.service)?["primaryContainer"]["image"].as_str())
        .unwrap_or("the image")
        .to_string();
    let pulled =
        live.iter().filter(|t| t["pullStoppedAt"].is_number() || t["lastStatus"].as_str() == Some("RUNNING")).count();
    let running = live.iter().filter(|t| t["lastStatus"].as_str() == Some("RUNNING")).count();
    let healthy = live.iter().filter(|t| o.task_health(t).as_deref() == Some("healthy")).count();
    let stopped: Vec<&&Value> = target_tasks
        .iter()
        .filter(|t| {
            t["lastStatus"].as_str() == Some("STOPPED") && t["createdAt"].as_f64().unwrap_or(0.0) + 1.0 >= o.at - 3600.0
        })
        .collect();
    let (mark, detail) = if pulled > 0 {
        (Mark::Done, format!("{image} pulled"))
    } else if !live.is_empty() {
        (Mark::Running, format!("pulling {image}"))
    } else {
        (Mark::Waiting, image.clone())
    };
    out.push(Line::new("image", mark, "Image", detail));
    let mark = if wanted > 0 && running >= wanted {
        Mark::Done
    } else if live.is_empty() {
        Mark::Waiting
    } else {
        Mark::Running
    };
    out.push(Line::new("tasks", mark, "Tasks", format!("{running}/{wanted} running")));
    for t in live.iter().take(8) {
        let id = short_name(t["taskArn"].as_str().unwrap_or("?"));
        let id = &id[..id.len().min(12)];
        let status = t["lastStatus"].as_str().unwrap_or("?");
        let health = o.task_health(t).unwrap_or_else(|| "unregistered".into());
        let mark = match (status, health.as_str()) {
            ("RUNNING", "healthy") => Mark::Done,
            (_, "unhealthy") => Mark::Failed,
            _ => Mark::Running,
        };
        out.push(Line::new(format!("task {id}"), mark, format!("Task {id}"), format!("{status} {health}")).nested(1));
    }
    if let Some(last) = stopped.first() {
        let id = short_name(last["taskArn"].as_str().unwrap_or("?"));
        let id = &id[..id.len().min(12)];
        let code = last["containers"][0]["exitCode"].as_i64().map(|c| format!(" (exit {c})")).unwrap_or_default();
        let reason = last["stoppedReason"].as_str().unwrap_or("stopped");
        out.push(
            Line::new(format!("stopped {id}"), Mark::Failed, format!("Task {id}"), format!("STOPPED: {reason}{code}"))
                .nested(1),
        );
    }
    let mark = if wanted > 0 && healthy >= wanted {
        Mark::Done
    } else if running == 0 {
        Mark::Waiting
    } else {
        Mark::Running
    };
    out.push(Line::new("health", mark, "Healthy", format!("{healthy}/{wanted} healthy")));

    // Traffic: the canary share of production traffic, up to 100%.
    if dep.is_object() {
        let weight = dep["targetServiceRevision"]["requestedProductionTrafficWeight"].as_f64().unwrap_or(0.0);
        let rev = target.as_deref().map(crate::service::revision_label).unwrap_or_default();
        let (mark, detail) = if weight >= 100.0 {
            (Mark::Done, format!("100% to revision {rev}"))
        } else if weight > 0.0 {
            (Mark::Running, format!("{}% to revision {rev} (canary)", fmt_pct(weight)))
        } else if dep["status"].as_str() == Some("SUCCESSFUL") {
            (Mark::Done, format!("100% to revision {rev}"))
        } else {
            (Mark::Waiting, format!("0% to revision {rev}"))
        };
        out.push(Line::new("traffic", mark, "Traffic", detail).noted(bake_note(o)));
    }

    // The managed resources of the target revision.
    let res = target
        .as_deref()
        .and_then(|t| o.revisions.iter().find(|r| r["serviceRevisionArn"].as_str() == Some(t)))
        .map(|r| &r["ecsManagedResources"]);
    if let Some(res) = res.filter(|r| r.is_object()) {
        out.push(Line::new("resources", Mark::Info, "Resources", ""));
        let mut push = |label: &str, r: &Value, extra: Option<&str>| {
            let Some(arn) = r["arn"].as_str() else { return };
            let status = r["status"].as_str();
            let mut detail = format!("{} {}", extra.unwrap_or(resource_name(arn)), status.unwrap_or("?"));
            if let Some(reason) = r["statusReason"].as_str().filter(|s| !s.is_empty() && status != Some("ACTIVE")) {
                let _ = write!(detail, ": {reason}");
            }
            out.push(Line::new(format!("{label} {arn}"), resource_mark(status), label, detail).nested(1));
        };
        for path in res["ingressPaths"].as_array().into_iter().flatten() {
            push("LoadBalancer", &path["loadBalancer"], None);
            push("Certificate", &path["certificate"], path["certificate"]["domainName"].as_str());
            push("Listener", &path["listener"], None);
            push("Rule", &path["rule"], None);
            for tg in path["targetGroups"].as_array().into_iter().flatten() {
                push("TargetGroup", tg, None);
            }
            for sg in path["loadBalancerSecurityGroups"].as_array().into_iter().flatten() {
                push("SecurityGroup", sg, None);
            }
        }
        push("ScalableTarget", &res["autoScaling"]["scalableTarget"], None);
        for p in res["autoScaling"]["applicationAutoScalingPolicies"].as_array().into_iter().flatten() {
            push("ScalingPolicy", p, None);
        }
        for a in res["metricAlarms"].as_array().into_iter().flatten() {
            push("Alarm", a, None);
        }
        for sg in res["serviceSecurityGroups"].as_array().into_iter().flatten() {
            push("SecurityGroup", sg, None);
        }
        for lg in res["logGroups"].as_array().into_iter().flatten() {
            push("LogGroup", lg, lg["logGroupName"].as_str());
        }
    }

    // The newest service event.
    if let Some(e) = newest_event(&o.ecs) {
        out.push(Line::new("event", Mark::Info, "Event", e.to_string()));
    }
    if !o.denied.is_empty() {
        out.push(Line::new("denied", Mark::Info, "Note", format!("not allowed to read: {}", o.denied.join(", "))));
    }
    out
}

/// `bake 2m35s left` while a bake (a pause hook with an expiry) runs.
pub fn bake_note(o: &Observed) -> String {
    let waiting = o.deployment["lifecycleHookDetails"].as_array().into_iter().flatten().find_map(|h| {
        matches!(h["status"].as_str(), Some("AWAITING_ACTION" | "IN_PROGRESS")).then(|| h["expiresAt"].as_f64())?
    });
    match waiting {
        Some(end) if o.deployment["status"].as_str() == Some("IN_PROGRESS") => {
            format!("bake {} left", fmt_elapsed((end - o.at).max(0.0).ceil() as u64))
        }
        _ => String::new(),
    }
}

/// A resource's readable name: an alarm's or a scaling policy's name, else the ARN's resource part.
fn resource_name(arn: &str) -> &str {
    if let Some((_, name)) = arn.split_once(":alarm:") {
        return name;
    }
    if let Some((_, name)) = arn.split_once(":policyName/") {
        return name;
    }
    short_arn(arn)
}

fn newest_event(ecs: &Value) -> Option<&str> {
    ecs["events"]
        .as_array()?
        .iter()
        .max_by(|a, b| a["createdAt"].as_f64().unwrap_or(0.0).total_cmp(&b["createdAt"].as_f64().unwrap_or(0.0)))?["message"]
        .as_str()
}

fn fmt_pct(p: f64) -> String {
    if p.fract() == 0.0 { format!("{p:.0}") } else { format!("{p:.1}") }
}

/// The braille spinner, one frame per 100 ms tick.
pub const SPINNER: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

fn glyph(mark: Mark, tick: usize) -> &'static str {
    match mark {
        Mark::Done => "✓",
        Mark::Failed => "✗",
        Mark::Gone => "-",
        Mark::Waiting => "·",
        Mark::Info => " ",
        Mark::Running => SPINNER[tick % SPINNER.len()],
    }
}

fn paint(mark: Mark, s: &str, color: bool) -> String {
    if !color {
        return s.to_string();
    }
    let code = match mark {
        Mark::Done => "32",
        Mark::Failed => "31",
        Mark::Gone => "33",
        Mark::Running => "35",
        Mark::Waiting | Mark::Info => return s.to_string(),
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

/// One frame of the live display: a header with the spinner and elapsed time, then the lines, each cut to
/// `width` columns (so the redraw's cursor arithmetic holds).
pub fn frame(header: &str, lines: &[Line], tick: usize, elapsed_secs: u64, width: usize, color: bool) -> Vec<String> {
    let width = width.max(20);
    let mut out = Vec::new();
    let head = format!("{header} · {}", fmt_elapsed(elapsed_secs));
    out.push(format!("{} {}", paint(Mark::Running, SPINNER[tick % SPINNER.len()], color), cut(&head, width - 2)));
    let label_w = lines.iter().map(|l| l.label.chars().count() + 2 * l.depth).max().unwrap_or(0);
    for l in lines {
        let indent = "  ".repeat(l.depth + 1);
        let text = if l.mark == Mark::Info && l.detail.is_empty() {
            l.label.clone()
        } else {
            let pad = label_w.saturating_sub(l.label.chars().count() + 2 * l.depth);
            let note = if l.note.is_empty() { String::new() } else { format!(" · {}", l.note) };
            format!("{}{}  {}{note}", l.label, " ".repeat(pad), l.detail)
        };
        let avail = width.saturating_sub(indent.chars().count() + 2);
        out.push(format!("{indent}{} {}", paint(l.mark, glyph(l.mark, tick), color), cut(&text, avail)));
    }
    out
}

/// The final frame's header line, once the outcome is known.
pub fn final_header(header: &str, outcome: &Outcome, elapsed_secs: u64, color: bool) -> String {
    match outcome {
        Outcome::Succeeded => {
            format!("{} {header} · done in {}", paint(Mark::Done, "✓", color), fmt_elapsed(elapsed_secs))
        }
        Outcome::Failed(why) => format!("{} {header} · {why}", paint(Mark::Failed, "✗", color)),
    }
}

fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
    t.push('…');
    t
}

/// `1m05s`, `42s`.
pub fn fmt_elapsed(secs: u64) -> String {
    if secs >= 60 { format!("{}m{:02}s", secs / 60, secs % 60) } else { format!("{secs}s") }
}

/// The plain lines for what changed between two observations' lines (all of `cur` when `prev` is empty):
/// `[2026-12-08 10:00:01Z] Task 1a2b RUNNING healthy`.
pub fn changes(prev: &[Line], cur: &[Line], at: f64) -> Vec<String> {
    let ts = utc(at);
    cur.iter()
        .filter(|l| !(l.mark == Mark::Info && l.detail.is_empty()) && l.key != "event")
        // The printed text decides (the mark is not printed): the same words twice would read as a repeat.
        .filter(|l| !prev.iter().any(|p| p.key == l.key && p.label == l.label && p.detail == l.detail))
        .map(|l| format!("[{ts}] {} {}", l.label, l.detail))
        .collect()
}

/// The plain lines of the service events not printed yet (`seen` holds their ids) created at or after `since`,
/// oldest first: `[2026-12-08 10:00:01Z] Event (service web) has started 1 tasks: …`.
pub fn new_events(o: &Observed, since: f64, seen: &mut std::collections::BTreeSet<String>) -> Vec<String> {
    let mut events: Vec<&Value> = o.ecs["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["createdAt"].as_f64().unwrap_or(0.0) >= since)
        .collect();
    events.sort_by(|a, b| a["createdAt"].as_f64().unwrap_or(0.0).total_cmp(&b["createdAt"].as_f64().unwrap_or(0.0)));
    events
        .into_iter()
        .filter(|e| {
            let id =
                e["id"].as_str().map(str::to_string).unwrap_or_else(|| format!("{}{}", e["createdAt"], e["message"]));
            seen.insert(id)
        })
        .map(|e| {
            format!("[{}] Event {}", utc(e["createdAt"].as_f64().unwrap_or(o.at)), e["message"].as_str().unwrap_or(""))
        })
        .collect()
}

/// What to watch.
pub struct Watch<'a> {
    /// The service's ARN and name.
    pub arn: &'a str,
    pub name: &'a str,
    /// The deployment the command started (else the service's current one).
    pub deployment_arn: Option<&'a str>,
    /// The header of the live display ("Deploying web").
    pub header: String,
    pub timeout: Duration,
}

/// How often a deployment is observed: berth moves in hundreds of milliseconds (a create is healthy in about half a
/// second), so a 1-second poll would be most of what `berth deploy` waits; one observation is a handful of local API
/// calls. (The AWS CLI's monitor polls every 5 s, for deployments that take minutes.)
const POLL: Duration = Duration::from_millis(250);

/// Watches the deployment until it ends: `Ok(last observation, outcome)`; on timeout `Failed`; on Ctrl-C
/// `Interrupted` after saying the deployment keeps running. Draws on stderr (live when it is a terminal).
pub async fn watch(ctx: &Ctx, w: &Watch<'_>) -> Result<(Observed, Outcome), CliError> {
    let live = ctx.stderr_tty && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(true);
    let color = live && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let started = std::time::Instant::now();
    let mut drawn = 0usize;
    let mut prev: Vec<Line> = Vec::new();
    let mut printed: Vec<Line> = Vec::new();
    let mut tick = 0usize;
    let mut next_poll = std::time::Instant::now();
    // Events from the moment the command started (a little before, for clock steps).
    let since = crate::observe::now() - 5.0;
    let mut seen = std::collections::BTreeSet::new();
    if !live {
        eprintln!(
            "[{}] Watching {} (Ctrl-C stops watching; the deployment keeps running)",
            utc(crate::observe::now()),
            w.name
        );
    }
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        if std::time::Instant::now() >= next_poll {
            next_poll = std::time::Instant::now() + POLL;
            let o = Observed::take(ctx, w.arn, w.deployment_arn).await?;
            let cur = lines(&o);
            if !live {
                // Against the last state printed per step (not the last observation): a step that drops out of
                // one observation and comes back unchanged is not printed twice.
                for l in changes(&printed, &cur, o.at).into_iter().chain(new_events(&o, since, &mut seen)) {
                    eprintln!("{l}");
                }
                for l in &cur {
                    match printed.iter_mut().find(|p| p.key == l.key) {
                        Some(p) => *p = l.clone(),
                        None => printed.push(l.clone()),
                    }
                }
            }
            prev = cur;
            if let Some(out) = outcome(&o) {
                if live {
                    let mut f = frame(&w.header, &prev, tick, started.elapsed().as_secs(), term_width(), color);
                    f[0] = final_header(&w.header, &out, started.elapsed().as_secs(), color);
                    redraw(&mut drawn, &f);
                } else {
                    let word = match &out {
                        Outcome::Succeeded => "Deployment successful".to_string(),
                        Outcome::Failed(why) => format!("Deployment failed: {why}"),
                    };
                    eprintln!("[{}] {word}", utc(o.at));
                }
                return Ok((o, out));
            }
        }
        if started.elapsed() >= w.timeout {
            let msg = format!(
                "stopped watching after {}: the deployment keeps running; watch it with `berth status {}`",
                fmt_elapsed(w.timeout.as_secs()),
                w.name
            );
            if !live {
                eprintln!("[{}] {msg}", utc(crate::observe::now()));
            }
            return Err(CliError::Failed(msg));
        }
        if live {
            let f = frame(&w.header, &prev, tick, started.elapsed().as_secs(), term_width(), color);
            redraw(&mut drawn, &f);
        }
        tokio::select! {
            _ = &mut ctrl_c => {
                let msg = format!(
                    "Stopped watching. The deployment keeps running; watch it with `berth status {}`.",
                    w.name
                );
                if live {
                    eprintln!();
                }
                eprintln!("{msg}");
                return Err(CliError::Interrupted);
            }
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
        tick += 1;
    }
}

/// Rewrites the last `drawn` lines on stderr with `frame` (cursor up, clear each line, clear below).
fn redraw(drawn: &mut usize, frame: &[String]) {
    let mut s = String::new();
    if *drawn > 0 {
        let _ = write!(s, "\x1b[{}A\r", *drawn);
    }
    for l in frame {
        let _ = writeln!(s, "\x1b[2K{l}");
    }
    s.push_str("\x1b[J");
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(s.as_bytes());
    let _ = err.flush();
    *drawn = frame.len();
}

/// The terminal's width: `stty size` on the controlling terminal, else $COLUMNS, else 80.
fn term_width() -> usize {
    let from_stty = std::fs::File::open("/dev/tty").ok().and_then(|tty| {
        let out = std::process::Command::new("stty").arg("size").stdin(tty).output().ok()?;
        let s = String::from_utf8(out.stdout).ok()?;
        s.split_whitespace().nth(1)?.parse::<usize>().ok()
    });
    from_stty.or_else(|| std::env::var("COLUMNS").ok()?.parse().ok()).filter(|w| *w > 0).unwrap_or(80)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn observed(status: &str, weight: f64, health: &str) -> Observed {
        Observed {
            at: 1_796_720_000.0,
            service: json!({"serviceName": "web", "status": {"statusCode": "ACTIVE"},
                "activeConfigurations": [{"serviceRevisionArn": "arn:aws:ecs:us-east-1:1:service-revision/default/web/2",
                    "primaryContainer": {"image": "berth-demo:latest"}, "createdAt": 1.0}]}),
            ecs: json!({"desiredCount": 1, "events": [
                {"createdAt": 5.0, "message": "(service web) has reached a steady state."},
                {"createdAt": 1.0, "message": "(service web) started 1 task."}]}),
            deployment: json!({"status": status, "lifecycleStage": "PRODUCTION_TRAFFIC_SHIFT",
                "targetServiceRevision": {"arn": "arn:aws:ecs:us-east-1:1:service-revision/default/web/2",
                    "requestedTaskCount": 1, "requestedProductionTrafficWeight": weight},
                "sourceServiceRevisions": [{"arn": "arn:aws:ecs:us-east-1:1:service-revision/default/web/1"}],
                "statusReason": "alarm web-alarm in ALARM",
                "lifecycleHookDetails": [{"hookId": "bake", "status": "AWAITING_ACTION", "expiresAt": 1_796_720_095.0}]}),
            revisions: vec![json!({"serviceRevisionArn": "arn:aws:ecs:us-east-1:1:service-revision/default/web/2",
                "taskDefinition": "arn:aws:ecs:us-east-1:1:task-definition/default-web:2",
                "containerImages": [{"image": "berth-demo:latest"}],
                "ecsManagedResources": {"ingressPaths": [{"endpoint": "web-1.localhost",
                    "certificate": {"arn": "arn:aws:acm:us-east-1:1:certificate/abc", "status": "ACTIVE", "domainName": "web-1.localhost"},
                    "rule": {"arn": "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/lb/1/2/3", "status": "PROVISIONING"},
                    "targetGroups": [{"arn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-a/9", "status": "ACTIVE"}]}]}})],
            tasks: vec![json!({"taskArn": "arn:aws:ecs:us-east-1:1:task/default/0123456789abcdef",
                "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/default-web:2", "lastStatus": "RUNNING",
                "createdAt": 2.0, "containers": [{"networkInterfaces": [{"privateIpv4Address": "10.0.0.5"}]}]})],
            targets: vec![crate::observe::GroupHealth {
                target_group_arn: "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/web-a/9".into(),
                targets: vec![json!({"Target": {"Id": "10.0.0.5", "Port": 80}, "TargetHealth": {"State": health}})],
            }],
            denied: vec![],
        }
    }

    fn line<'a>(ls: &'a [Line], key: &str) -> &'a Line {
        ls.iter().find(|l| l.key == key).unwrap_or_else(|| panic!("no line {key} in {ls:#?}"))
    }

    #[test]
    fn a_canary_in_progress_shows_each_step_with_its_state() {
        let ls = lines(&observed("IN_PROGRESS", 5.0, "initial"));
        assert_eq!(line(&ls, "deployment").detail, "IN_PROGRESS · PRODUCTION_TRAFFIC_SHIFT");
        assert_eq!(line(&ls, "image").mark, Mark::Done);
        assert_eq!(line(&ls, "tasks").detail, "1/1 running");
        assert_eq!(line(&ls, "health").mark, Mark::Running);
        assert_eq!(line(&ls, "health").detail, "0/1 healthy");
        assert_eq!(line(&ls, "traffic").detail, "5% to revision 2 (canary)");
        assert_eq!(line(&ls, "task 0123456789ab").detail, "RUNNING initial");
        let rule = ls.iter().find(|l| l.label == "Rule").expect("rule line");
        assert_eq!(rule.mark, Mark::Running);
        assert_eq!(rule.detail, "listener-rule/app/lb/1/2/3 PROVISIONING");
        let cert = ls.iter().find(|l| l.label == "Certificate").expect("certificate line");
        assert_eq!((cert.mark, cert.detail.as_str()), (Mark::Done, "web-1.localhost ACTIVE"));
        assert_eq!(line(&ls, "event").detail, "(service web) has reached a steady state.");
        assert_eq!(outcome(&observed("IN_PROGRESS", 5.0, "healthy")), None);
    }

    #[test]
    fn outcomes_follow_the_deployment_status() {
        let ok = observed("SUCCESSFUL", 100.0, "healthy");
        assert_eq!(outcome(&ok), Some(Outcome::Succeeded));
        let ls = lines(&ok);
        assert_eq!(line(&ls, "deployment").detail, "SUCCESSFUL");
        assert_eq!(line(&ls, "traffic").mark, Mark::Done);
        assert_eq!(line(&ls, "health").mark, Mark::Done);
        assert_eq!(
            outcome(&observed("ROLLBACK_SUCCESSFUL", 0.0, "healthy")),
            Some(Outcome::Failed("rolled back: alarm web-alarm in ALARM".into()))
        );
        assert_eq!(line(&lines(&observed("ROLLBACK_SUCCESSFUL", 0.0, "healthy")), "deployment").mark, Mark::Failed);
        let mut gone = observed("IN_PROGRESS", 5.0, "healthy");
        gone.service["status"]["statusCode"] = json!("DRAINING");
        assert!(matches!(outcome(&gone), Some(Outcome::Failed(_))));
    }

    #[test]
    fn frames_are_cut_to_the_width_and_spin() {
        let ls = lines(&observed("IN_PROGRESS", 5.0, "initial"));
        let a = frame("Deploying web", &ls, 0, 65, 40, false);
        let b = frame("Deploying web", &ls, 1, 66, 40, false);
        assert_eq!(a.len(), ls.len() + 1);
        assert!(a.iter().all(|l| l.chars().count() <= 40), "{a:#?}");
        assert!(a[0].starts_with("⠋ Deploying web · 1m05s"), "{}", a[0]);
        assert!(b[0].starts_with("⠙ "), "{}", b[0]);
        assert!(a.iter().any(|l| l.contains("✓ Image")), "{a:#?}");
        let wide = frame("Deploying web", &ls, 0, 1, 200, false);
        assert!(
            wide.iter().any(|l| l.ends_with("Traffic              5% to revision 2 (canary) · bake 1m35s left")),
            "{wide:#?}"
        );
        let colored = frame("Deploying web", &ls, 0, 1, 200, true);
        assert!(colored.iter().any(|l| l.contains("\x1b[32m✓\x1b[0m")));
    }

    #[test]
    fn plain_mode_prints_only_what_changed_with_a_timestamp() {
        let first = lines(&observed("IN_PROGRESS", 5.0, "initial"));
        let all = changes(&[], &first, 1_796_720_000.0);
        assert!(all.iter().all(|l| l.starts_with("[2026-12-08 ")), "{all:#?}");
        assert!(all.iter().any(|l| l.ends_with("Task 0123456789ab RUNNING initial")), "{all:#?}");
        let second = lines(&observed("IN_PROGRESS", 5.0, "healthy"));
        let diff = changes(&first, &second, 1_796_720_001.0);
        assert_eq!(diff.len(), 2, "{diff:#?}");
        assert!(diff[0].ends_with("Task 0123456789ab RUNNING healthy"), "{diff:#?}");
        assert!(diff[1].ends_with("Healthy 1/1 healthy"), "{diff:#?}");
        assert!(changes(&second, &second, 1.0).is_empty());
    }

    #[test]
    fn plain_mode_prints_each_new_event_once_oldest_first() {
        let mut o = observed("IN_PROGRESS", 5.0, "initial");
        o.ecs["events"] = json!([
            {"id": "3", "createdAt": 1_796_720_002.0, "message": "c"},
            {"id": "2", "createdAt": 1_796_720_001.0, "message": "b"},
            {"id": "1", "createdAt": 1_796_710_000.0, "message": "before the deploy"}]);
        let mut seen = std::collections::BTreeSet::new();
        let got = new_events(&o, 1_796_719_999.0, &mut seen);
        assert_eq!(
            got,
            vec!["[2026-12-08 08:53:21Z] Event b".to_string(), "[2026-12-08 08:53:22Z] Event c".to_string()]
        );
        assert!(new_events(&o, 1_796_719_999.0, &mut seen).is_empty());
        if let Some(a) = o.ecs["events"].as_array_mut() {
            a.insert(0, json!({"id": "4", "createdAt": 1_796_720_003.0, "message": "d"}));
        }
        assert_eq!(new_events(&o, 1_796_719_999.0, &mut seen).len(), 1);
    }
}
