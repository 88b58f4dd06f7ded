//! An Express service's log group, created as the infrastructure role.

use berth_store::{LogGroupRow, Tx};

use super::MANAGED_TAG;
use super::journal::Journal;
use crate::logs::now_ms;
use crate::{Control, ControlError};

/// Express creates a service's log group as the infrastructure role, unless it exists (groups outlive their
/// services). The journal is authorized with the rest of the command.
pub(crate) fn ensure_group(c: &Control, tx: &Tx<'_>, group: &str, journal: &mut Journal) -> Result<(), ControlError> {
    journal.describe("logs:DescribeLogGroups");
    if tx.log_group_get(group)?.is_some() {
        return Ok(());
    }
    let arn = c.log_group_arn(group);
    let tags = vec![(MANAGED_TAG.0.to_string(), MANAGED_TAG.1.to_string())];
    journal.logs_create_group(&arn, &tags);
    tx.log_group_insert(&LogGroupRow {
        name: group.to_string(),
        arn: arn.clone(),
        created_ms: now_ms(),
        retention_days: None,
        kms_key_id: None,
        log_group_class: "STANDARD".into(),
        deletion_protection: false,
    })?;
    tx.tags_put(&arn, &tags)?;
    Ok(())
}
