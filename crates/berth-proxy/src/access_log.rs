//! Access logs in ALB's format, one line per request, written by a background task. Requests hand their
//! entry to a bounded channel and never wait: when the writer lags, entries are dropped and counted.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::metrics::Metrics;

/// Entries waiting for the writer at most.
const QUEUE: usize = 16 * 1024;

/// Everything one log line says.
#[derive(Debug, Clone)]
pub(crate) struct LogEntry {
    /// `http`, `https`, `h2`, `ws` or `wss`.
    pub kind: &'static str,
    /// When the request arrived.
    pub received: SystemTime,
    /// When the response ended.
    pub time: SystemTime,
    pub elb: Arc<str>,
    pub client: SocketAddr,
    pub target: Option<SocketAddr>,
    /// Seconds; `None` is logged as -1 (the request never reached the stage).
    pub request_processing: Option<Duration>,
    pub target_processing: Option<Duration>,
    pub response_processing: Option<Duration>,
    pub elb_status: u16,
    pub target_status: Option<u16>,
    pub received_bytes: u64,
    pub sent_bytes: u64,
    /// `GET https://host:443/path?query HTTP/1.1`.
    pub request: String,
    pub user_agent: String,
    pub ssl_cipher: &'static str,
    pub ssl_protocol: &'static str,
    pub target_group: Option<Arc<str>>,
    pub trace_id: String,
    /// The SNI name the client sent.
    pub domain_name: Option<Arc<str>>,
    /// `None`: no rule matched (ALB logs 0 for the default action).
    pub matched_rule_priority: Option<u32>,
    /// `forward`, `redirect`, `fixed-response`.
    pub actions_executed: &'static str,
    pub redirect_url: Option<String>,
    pub error_reason: Option<&'static str>,
}

/// ISO 8601 with microseconds in UTC, as ALB writes `time` and `request_creation_time`.
pub(crate) fn format_time(t: SystemTime) -> String {
    berth_core::time::iso8601_micros(t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default())
}

/// A quoted field: `"` and `\` escaped, control characters as `\xNN`, empty as `-`.
fn quoted(out: &mut String, v: &str) {
    out.push('"');
    if v.is_empty() {
        out.push('-');
    }
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c) & 0xff);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "-1".to_owned(), |d| format!("{:.6}", d.as_secs_f64()))
}

impl LogEntry {
    /// The ALB access log line (no trailing newline). Fields, in order: type time elb client:port target:port
    /// request_processing_time target_processing_time response_processing_time elb_status_code
    /// target_status_code received_bytes sent_bytes "request" "user_agent" ssl_cipher ssl_protocol
    /// target_group_arn "trace_id" "domain_name" "chosen_cert_arn" matched_rule_priority request_creation_time
    /// "actions_executed" "redirect_url" "error_reason" "target:port_list" "target_status_code_list"
    /// "classification" "classification_reason" conn_trace_id.
    pub fn format(&self) -> String {
        let mut o = String::with_capacity(512);
        let dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
        let target = self.target.map(|t| t.to_string());
        let target_status = self.target_status.map(|s| s.to_string());
        let _ = write!(
            o,
            "{} {} {} {} {} {} {} {} {} {} {} {} ",
            self.kind,
            format_time(self.time),
            self.elb,
            self.client,
            dash(target.clone()),
            secs(self.request_processing),
            secs(self.target_processing),
            secs(self.response_processing),
            self.elb_status,
            dash(target_status.clone()),
            self.received_bytes,
            self.sent_bytes,
        );
        quoted(&mut o, &self.request);
        o.push(' ');
        quoted(&mut o, &self.user_agent);
        let _ =
            write!(o, " {} {} {} ", self.ssl_cipher, self.ssl_protocol, self.target_group.as_deref().unwrap_or("-"));
        quoted(&mut o, &self.trace_id);
        o.push(' ');
        quoted(&mut o, self.domain_name.as_deref().unwrap_or(""));
        o.push_str(" \"-\" ");
        let _ = write!(o, "{} {} ", self.matched_rule_priority.unwrap_or(0), format_time(self.received));
        quoted(&mut o, self.actions_executed);
        o.push(' ');
        quoted(&mut o, self.redirect_url.as_deref().unwrap_or(""));
        o.push(' ');
        quoted(&mut o, self.error_reason.unwrap_or(""));
        o.push(' ');
        quoted(&mut o, target.as_deref().unwrap_or(""));
        o.push(' ');
        quoted(&mut o, target_status.as_deref().unwrap_or(""));
        o.push_str(" \"-\" \"-\" -");
        o
    }
}

/// The request side of the log: hands entries to the writer without waiting.
#[derive(Debug, Clone)]
pub(crate) struct AccessLog {
    tx: mpsc::Sender<LogEntry>,
    metrics: Arc<Metrics>,
}

impl AccessLog {
    /// Starts the writer task appending to `path`.
    pub fn start(path: PathBuf, metrics: Arc<Metrics>) -> (AccessLog, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write_log(path, rx));
        (AccessLog { tx, metrics }, task)
    }

    pub fn log(&self, entry: LogEntry) {
        if self.tx.try_send(entry).is_err() {
            self.metrics.access_log_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn write_log(path: PathBuf, mut rx: mpsc::Receiver<LogEntry>) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Err(e) = tokio::fs::create_dir_all(dir).await
    {
        tracing::warn!(path = %dir.display(), error = %e, "cannot create the access log directory");
    }
    let file = tokio::fs::OpenOptions::new().create(true).append(true).open(&path).await;
    let mut file = match file {
        Ok(f) => tokio::io::BufWriter::with_capacity(64 * 1024, f),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot open the access log; entries are dropped");
            // Keep draining so requests never notice.
            while rx.recv().await.is_some() {}
            return;
        }
    };
    let mut failing = false;
    while let Some(entry) = rx.recv().await {
        let mut batch = entry.format();
        batch.push('\n');
        // Take what is queued now, then write and flush once.
        while batch.len() < 60 * 1024
            && let Ok(more) = rx.try_recv()
        {
            batch.push_str(&more.format());
            batch.push('\n');
        }
        let written = async {
            file.write_all(batch.as_bytes()).await?;
            file.flush().await
        };
        match written.await {
            Ok(()) => failing = false,
            Err(e) if !failing => {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the access log");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format_table() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (1_530_570_180, 186_641, "2018-07-02T22:23:00.186641Z"),
            (951_782_400, 1, "2000-02-29T00:00:00.000001Z"),
            (4_107_542_399, 999_999, "2100-02-28T23:59:59.999999Z"),
        ];
        for (secs, micros, want) in cases {
            let t = SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros);
            assert_eq!(format_time(t), want);
        }
    }

    #[test]
    fn line_has_alb_fields() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_530_570_180) + Duration::from_micros(186_641);
        let entry = LogEntry {
            kind: "https",
            received: t,
            time: t,
            elb: "arn:svc".into(),
            client: "192.168.131.39:2817".parse().expect("addr"),
            target: Some("10.0.0.1:80".parse().expect("addr")),
            request_processing: Some(Duration::from_micros(86)),
            target_processing: Some(Duration::from_micros(48_000)),
            response_processing: Some(Duration::ZERO),
            elb_status: 200,
            target_status: Some(200),
            received_bytes: 0,
            sent_bytes: 57,
            request: "GET https://www.example.com:443/ HTTP/1.1".into(),
            user_agent: "curl/7.46.0 \"x\"".into(),
            ssl_cipher: "ECDHE-RSA-AES128-GCM-SHA256",
            ssl_protocol: "TLSv1.2",
            target_group: Some("tg-arn".into()),
            trace_id: "Root=1-58337281-1d84f3d73c47ec4e58577259".into(),
            domain_name: Some("www.example.com".into()),
            matched_rule_priority: Some(50_000),
            actions_executed: "forward",
            redirect_url: None,
            error_reason: None,
        };
        let want = "https 2018-07-02T22:23:00.186641Z arn:svc 192.168.131.39:2817 10.0.0.1:80 0.000086 0.048000 \
            0.000000 200 200 0 57 \"GET https://www.example.com:443/ HTTP/1.1\" \"curl/7.46.0 \\\"x\\\"\" \
            ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 tg-arn \"Root=1-58337281-1d84f3d73c47ec4e58577259\" \
            \"www.example.com\" \"-\" 50000 2018-07-02T22:23:00.186641Z \"forward\" \"-\" \"-\" \"10.0.0.1:80\" \
            \"200\" \"-\" \"-\" -";
        assert_eq!(entry.format(), want);
        let fixed = LogEntry {
            target: None,
            target_status: None,
            target_processing: None,
            response_processing: None,
            elb_status: 404,
            matched_rule_priority: None,
            actions_executed: "fixed-response",
            ..entry
        };
        let line = fixed.format();
        let fields: Vec<_> = line.split(' ').collect();
        assert_eq!((fields[4], fields[6], fields[7], fields[9]), ("-", "-1", "-1", "-"), "{line}");
    }
}
