//! `berth resources`.

use crate::output::Doc;
use crate::{CliError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(ctx: &Ctx, args: Args) -> Result<Doc, CliError> {
    let _ = (ctx, args);
    Err(CliError::Failed("not yet implemented".into()))
}
