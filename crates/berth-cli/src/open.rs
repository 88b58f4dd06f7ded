//! `berth open NAME`, and opening a URL in the user's browser.

use serde_json::json;

use crate::output::{Doc, Section};
use crate::service;
use crate::{CliError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service (name or ARN).
    pub name: String,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Doc, CliError> {
    let found = service::find(ctx, &args.name).await?;
    let Some(url) = service::url(&found.service, ctx.url_port) else {
        return Err(CliError::Failed(format!(
            "{} has no URL yet; its load balancer is still being set up — see `berth status {}`",
            found.name, found.name
        )));
    };
    let opened = open_url(&url);
    Ok(Doc {
        json: json!({"serviceName": found.name, "url": url, "opened": opened}),
        sections: vec![Section::Lines(vec![url])],
    })
}

/// Opens `url` with the desktop's opener (`xdg-open`, `open`) when there is one and a display to show it on;
/// returns whether it did.
pub fn open_url(url: &str) -> bool {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        let display = ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
        if !display {
            return false;
        }
        "xdg-open"
    };
    if !on_path(opener) {
        return false;
    }
    std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
