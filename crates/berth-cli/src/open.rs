//! `berth open NAME`, and opening a URL in the user's browser.

use crate::output::Doc;
use crate::{CliError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service.
    pub name: String,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Doc, CliError> {
    let _ = (ctx, args);
    Err(CliError::Failed("not yet implemented".into()))
}

/// Opens `url` with the desktop's opener (`xdg-open`, `open`) when there is one; returns whether it did.
pub fn open_url(url: &str) -> bool {
    let _ = url;
    false
}
