//! `berth scale`, `rm` (`rollback` and `promote` are in rollback.rs).

use crate::output::Doc;
use crate::{CliError, Ctx};

#[derive(Debug, clap::Args)]
pub struct ScaleArgs {
    pub name: String,
}
#[derive(Debug, clap::Args)]
pub struct RmArgs {
    pub name: String,
}

pub async fn scale(ctx: &Ctx, args: ScaleArgs) -> Result<Doc, CliError> {
    let _ = (ctx, args);
    Err(CliError::Failed("not yet implemented".into()))
}
pub async fn rm(ctx: &Ctx, args: RmArgs) -> Result<Doc, CliError> {
    let _ = (ctx, args);
    Err(CliError::Failed("not yet implemented".into()))
}
