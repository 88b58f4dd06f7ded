//! `berth deploy IMAGE`: create or update an Express service, show its progress, end with its URL.

use crate::output::Doc;
use crate::{CliError, Ctx};

pub const EXAMPLES: &str = "Examples:
  berth deploy nginx:1.27 --port 80
  berth deploy registry.example.com/shop:v2 --name shop --env MODE=prod --min 2 --max 10 --scale-on requests --target 500";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container image.
    pub image: String,
}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Doc, CliError> {
    let _ = (ctx, args);
    Err(CliError::Failed("not yet implemented".into()))
}
