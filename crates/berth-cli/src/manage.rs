//! `berth rollback`, `promote` (`scale` and `rm` live in scale.rs and rm.rs, re-exported here).

use crate::output::Doc;
use crate::{CliError, Ctx};

#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    pub name: String,
}
#[derive(Debug, clap::Args)]
pub struct PromoteArgs {
    pub name: String,
}
pub use crate::rm::{RmArgs, rm};
pub use crate::scale::{ScaleArgs, scale};

pub async fn rollback(ctx: &Ctx, args: RollbackArgs) -> Result<Doc, CliError> {
    let _ = (ctx, args);
    Err(CliError::Failed("not yet implemented".into()))
}
pub async fn promote(ctx: &Ctx, args: PromoteArgs) -> Result<Doc, CliError> {
    let _ = (ctx, args);
    Err(CliError::Failed("not yet implemented".into()))
}
