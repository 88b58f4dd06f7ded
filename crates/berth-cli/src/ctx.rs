//! What every command gets: the client, the output settings, and whether it may ask questions.

use std::io::IsTerminal;

use berth_client::{Client, LocalBerth, Sources};

use crate::output::{Color, Format, Output};
use crate::{CliError, Global};

/// A command's context.
pub struct Ctx {
    pub client: Client,
    pub out: Output,
    /// The cluster the service names are in.
    pub cluster: String,
    /// `--yes`.
    pub yes: bool,
    /// stdin and stdout are terminals: questions may be asked and progress redrawn in place.
    pub interactive: bool,
    /// stderr is a terminal (live progress goes there with `--output json`).
    pub stderr_tty: bool,
    /// The local berth's HTTPS port when it is not 443 (service URLs name it so they open as printed).
    pub url_port: Option<u16>,
}

impl Ctx {
    pub fn new(global: &Global, local: Option<LocalBerth>) -> Result<Ctx, CliError> {
        let sources = Sources {
            endpoint_url: global.endpoint_url.clone(),
            profile: global.profile.clone(),
            region: global.region.clone(),
            local: local.clone(),
        };
        let (settings, credentials) = berth_client::resolve(&sources)?;
        let url_port = local.filter(|l| berth_client::is_local_berth(&settings.endpoint, l)).and_then(|l| l.https_port);
        let client = Client::new(settings, credentials)?;
        let stdout_tty = std::io::stdout().is_terminal();
        Ok(Ctx {
            client,
            url_port,
            out: Output { format: global.output, color: use_color(global, stdout_tty) },
            cluster: global.cluster.clone(),
            yes: global.yes,
            interactive: stdout_tty && std::io::stdin().is_terminal(),
            stderr_tty: std::io::stderr().is_terminal(),
        })
    }

    /// Asks a yes/no question (default no). `--yes` answers it; without a terminal the answer is an error
    /// naming `--yes`.
    pub fn confirm(&self, question: &str) -> Result<bool, CliError> {
        if self.yes {
            return Ok(true);
        }
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Usage(format!(
                "{question} needs an answer: pass --yes when not running interactively"
            )));
        }
        eprint!("{question} [y/N] ");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(|e| CliError::Failed(e.to_string()))?;
        Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
    }
}

fn use_color(global: &Global, stdout_tty: bool) -> bool {
    match (global.color, global.output) {
        (_, Format::Text | Format::Json) => false,
        (Color::Always, _) => true,
        (Color::Never, _) => false,
        (Color::Auto, _) => stdout_tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
    }
}

/// Prints an error the way every command does (`berth: error: …` plus a hint on stderr; with `--output json`
/// also `{"error": {"code", "message"}}` on stdout) and returns its exit code.
pub fn report_error(global: &Global, e: &CliError) -> i32 {
    if global.output == Format::Json {
        let code = match e {
            CliError::Client(c) => c.code().unwrap_or("ClientError").to_string(),
            CliError::NotFound { .. } => "NotFound".into(),
            CliError::Usage(_) => "Usage".into(),
            CliError::Failed(_) => "Failed".into(),
            CliError::Interrupted => "Interrupted".into(),
        };
        println!("{}", serde_json::json!({"error": {"code": code, "message": e.to_string()}}));
    }
    eprintln!("berth: error: {e}");
    if let Some(h) = e.hint() {
        eprintln!("  hint: {h}");
    }
    e.exit_code()
}
