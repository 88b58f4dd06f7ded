//! `berth plan -f berth.toml` / `berth apply -f berth.toml`: services declared in a file.

use crate::output::Doc;
use crate::{CliError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The file.
    #[arg(short = 'f', long = "file", default_value = "berth.toml")]
    pub file: std::path::PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub plan: Args,
}

pub async fn plan(ctx: &Ctx, args: Args) -> Result<Doc, CliError> {
    let _ = (ctx, args);
    Err(CliError::Failed("not yet implemented".into()))
}

pub async fn apply(ctx: &Ctx, args: ApplyArgs) -> Result<Doc, CliError> {
    let _ = (ctx, args);
    Err(CliError::Failed("not yet implemented".into()))
}
