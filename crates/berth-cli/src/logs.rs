//! `berth logs NAME [-f] [--since] [--filter]`: a service's log events from its log groups (FilterLogEvents),
//! printed at once or followed by polling until Ctrl-C.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use berth_client::Service;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::lookup::{self, Found};
use crate::output::{Doc, Format, Section, Table};
use crate::{CliError, Ctx};

pub const EXAMPLES: &str = "Examples:
  berth logs web                      # the last 10 minutes
  berth logs web --since 1h --filter ERROR
  berth logs web -f                   # follow; Ctrl-C stops (exit 0)
  berth logs web -f -o json | jq -r .message   # one JSON object per line while following";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service (a name in --cluster, or its ARN).
    pub name: String,
    /// Follow: print new events as they arrive (polls every second) until Ctrl-C.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Start from this long ago (`30s`, `10m`, `1h`, `2d`) or this time (RFC 3339, e.g. 2026-01-31T12:00:00Z).
    #[arg(long, default_value = "10m")]
    pub since: String,
    /// A CloudWatch Logs filter pattern (`ERROR`, `"exact phrase"`, `?a ?b`, `-excluded`).
    #[arg(long)]
    pub filter: Option<String>,
    /// At most this many events (the newest) without -f.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
}

/// One event as printed.
#[derive(Debug, Clone)]
struct Event {
    id: String,
    timestamp: i64,
    stream: String,
    group: String,
    message: String,
}

impl Event {
    fn of(group: &str, v: &Value) -> Option<Event> {
        Some(Event {
            id: v["eventId"].as_str()?.to_string(),
            timestamp: v["timestamp"].as_i64()?,
            stream: v["logStreamName"].as_str().unwrap_or_default().to_string(),
            group: group.to_string(),
            message: v["message"].as_str().unwrap_or_default().trim_end_matches('\n').to_string(),
        })
    }

    /// ECS streams are `prefix/container/task-id`: the task id.
    fn task(&self) -> &str {
        self.stream.rsplit('/').next().unwrap_or(&self.stream)
    }

    fn time(&self) -> String {
        time_text(self.timestamp)
    }

    fn json(&self) -> Value {
        json!({
            "timestamp": self.timestamp,
            "time": self.time(),
            "task": self.task(),
            "logGroupName": self.group,
            "logStreamName": self.stream,
            "eventId": self.id,
            "message": self.message,
        })
    }

    fn line(&self, format: Format) -> String {
        match format {
            Format::Json => self.json().to_string(),
            Format::Text => self.message.clone(),
            Format::Table => format!("{}  {}  {}", self.time(), self.task(), self.message),
        }
    }
}

/// RFC 3339 in UTC with milliseconds, always the same width.
const TIME_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

fn time_text(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(TIME_FORMAT).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// `--since` as epoch milliseconds.
pub fn parse_since(since: &str, now_ms: i64) -> Result<i64, CliError> {
    let s = since.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let bad = || {
        CliError::Usage(format!(
            "--since {since:?}: expected a duration (30s, 10m, 1h, 2d) or an RFC 3339 time (2026-01-31T12:00:00Z)"
        ))
    };
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(bad()),
    };
    n.checked_mul(unit_ms).map(|d| now_ms - d).ok_or_else(bad)
}

fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The service's log groups: the active configurations' awslogs groups, else the managed log groups.
async fn log_groups(ctx: &Ctx, found: &Found) -> Result<Vec<String>, CliError> {
    let mut groups: Vec<String> = Vec::new();
    for c in found.service["activeConfigurations"].as_array().into_iter().flatten() {
        if let Some(g) = c["primaryContainer"]["awsLogsConfiguration"]["logGroup"].as_str()
            && !groups.iter().any(|x| x == g)
        {
            groups.push(g.to_string());
        }
    }
    if groups.is_empty() {
        for rev in lookup::revisions(ctx, &lookup::active_revisions(found)).await? {
            for g in rev["ecsManagedResources"]["logGroups"].as_array().into_iter().flatten() {
                if let Some(name) = g["logGroupName"].as_str()
                    && !groups.iter().any(|x| x == name)
                {
                    groups.push(name.to_string());
                }
            }
        }
    }
    if groups.is_empty() {
        return Err(CliError::Failed(format!(
            "{} has no log group: its container logs nowhere berth keeps (awsLogsConfiguration)",
            found.name
        )));
    }
    Ok(groups)
}

/// FilterLogEvents over every page from `start` (ms), keeping at most the newest `keep` events.
async fn fetch(
    ctx: &Ctx,
    group: &str,
    start: i64,
    filter: Option<&str>,
    keep: usize,
) -> Result<VecDeque<Event>, CliError> {
    let mut events = VecDeque::new();
    let mut token: Option<String> = None;
    // Bounded: at most 1000 pages per poll.
    for _ in 0..1000 {
        let mut input = json!({"logGroupName": group, "startTime": start});
        if let Some(f) = filter {
            input["filterPattern"] = json!(f);
        }
        if let Some(t) = &token {
            input["nextToken"] = json!(t);
        }
        let out = ctx.client.call_value(Service::Logs, "FilterLogEvents", input).await?;
        for v in out["events"].as_array().into_iter().flatten() {
            if let Some(e) = Event::of(group, v) {
                events.push_back(e);
                if events.len() > keep {
                    events.pop_front();
                }
            }
        }
        let next = out["nextToken"].as_str().filter(|t| !t.is_empty()).map(String::from);
        if next.is_none() || next == token {
            break;
        }
        token = next;
    }
    Ok(events)
}

async fn fetch_all(
    ctx: &Ctx,
    groups: &[String],
    start: i64,
    filter: Option<&str>,
    keep: usize,
) -> Result<Vec<Event>, CliError> {
    let mut all = Vec::new();
    for g in groups {
        match fetch(ctx, g, start, filter, keep).await {
            Ok(events) => all.extend(events),
            // A group not created yet (no task has logged) has nothing to show.
            Err(CliError::Client(e)) if e.code() == Some("ResourceNotFoundException") => {}
            Err(e) => return Err(e),
        }
    }
    all.sort_by(|a, b| a.timestamp.cmp(&b.timestamp).then_with(|| a.id.cmp(&b.id)));
    let skip = all.len().saturating_sub(keep);
    all.drain(..skip);
    Ok(all)
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Doc, CliError> {
    if args.limit == 0 {
        return Err(CliError::Usage("--limit must be at least 1".into()));
    }
    let start = parse_since(&args.since, now_ms())?;
    let found = crate::service::find(ctx, &args.name).await?;
    let groups = log_groups(ctx, &found).await?;
    let filter = args.filter.as_deref().filter(|f| !f.trim().is_empty());
    if args.follow {
        return follow(ctx, &groups, start, filter, args.limit).await;
    }
    let events = fetch_all(ctx, &groups, start, filter, args.limit).await?;
    let json = Value::Array(events.iter().map(Event::json).collect());
    let sections = match ctx.out.format {
        Format::Table => {
            let mut t = Table::new(&["TIMESTAMP", "TASK", "MESSAGE"]);
            for e in &events {
                t.row(vec![e.time(), e.task().to_string(), e.message.clone()]);
            }
            vec![Section::Table { title: None, table: t }]
        }
        _ => vec![Section::Lines(events.iter().map(|e| e.message.clone()).collect())],
    };
    if events.is_empty() && ctx.out.format != Format::Json {
        eprintln!("no log events since {} (try --since 1h, or another --filter)", time_text(start));
    }
    Ok(Doc { json, sections })
}

/// Prints events as they arrive, polling every second, until Ctrl-C (exit 0). Memory stays bounded: only the ids
/// of events at or after the newest timestamp seen are kept to drop repeats.
async fn follow(ctx: &Ctx, groups: &[String], start: i64, filter: Option<&str>, limit: usize) -> Result<Doc, CliError> {
    let format = ctx.out.format;
    let mut watermark = start;
    let mut seen: HashSet<String> = HashSet::new();
    let mut first = true;
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let keep = if first { limit } else { 10_000 };
        let poll = fetch_all(ctx, groups, watermark, filter, keep);
        let events = tokio::select! {
            _ = &mut stop => return Ok(Doc::none()),
            r = poll => r?,
        };
        first = false;
        let mut out = String::new();
        for e in events {
            if e.timestamp < watermark || seen.contains(&e.id) {
                continue;
            }
            if e.timestamp > watermark {
                watermark = e.timestamp;
                seen.clear();
            }
            seen.insert(e.id.clone());
            out.push_str(&e.line(format));
            out.push('\n');
        }
        if !out.is_empty() {
            use std::io::Write as _;
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) ends the follow.
            if stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()).is_err() {
                return Ok(Doc::none());
            }
        }
        tokio::select! {
            _ = &mut stop => return Ok(Doc::none()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_durations_and_times() {
        let now = 1_800_000_000_000;
        assert_eq!(parse_since("30s", now).ok(), Some(now - 30_000));
        assert_eq!(parse_since("10m", now).ok(), Some(now - 600_000));
        assert_eq!(parse_since("1h", now).ok(), Some(now - 3_600_000));
        assert_eq!(parse_since("2d", now).ok(), Some(now - 172_800_000));
        assert_eq!(parse_since("2026-01-31T12:00:00Z", now).ok(), Some(1_769_860_800_000));
        assert_eq!(parse_since("2026-01-31T13:00:00+01:00", now).ok(), Some(1_769_860_800_000));
        for bad in ["", "10", "m", "10 minutes", "-5m", "1y", "yesterday", "99999999999999999999d"] {
            assert!(matches!(parse_since(bad, now), Err(CliError::Usage(_))), "{bad:?}");
        }
    }

    #[test]
    fn events_print_by_format() {
        let v = json!({"eventId": "e1", "timestamp": 1_769_860_800_123i64, "logStreamName": "ecs/Main/0123abcd",
                       "message": "GET /ping 200\n"});
        let e = Event::of("/aws/ecs/web", &v).expect("an event");
        assert_eq!(e.line(Format::Table), "2026-01-31T12:00:00.123Z  0123abcd  GET /ping 200");
        assert_eq!(e.line(Format::Text), "GET /ping 200");
        assert_eq!(time_text(1_769_860_800_990), "2026-01-31T12:00:00.990Z");
        assert_eq!(time_text(1_769_860_800_000), "2026-01-31T12:00:00.000Z");
        let j: Value = serde_json::from_str(&e.line(Format::Json)).expect("json");
        assert_eq!(j["task"], "0123abcd");
        assert_eq!(j["logGroupName"], "/aws/ecs/web");
        assert_eq!(j["timestamp"], 1_769_860_800_123i64);
        assert!(Event::of("g", &json!({"timestamp": 1})).is_none(), "an event without an id is skipped");
    }
}
