//! A service revision's stored configuration, as ECS's shape (the one reader of `revisions.config`).

use berth_model::ecs::ExpressGatewayServiceConfiguration;
use berth_store::Tx;

use crate::ControlError;

pub(crate) fn revision_config(tx: &Tx<'_>, arn: &str) -> Result<ExpressGatewayServiceConfiguration, ControlError> {
    let row = tx
        .revision_get(arn)?
        .ok_or_else(|| ControlError::Store(berth_store::StoreError::Corrupt(format!("missing revision {arn}"))))?;
    serde_json::from_str(&row.config)
        .map_err(|e| ControlError::Store(berth_store::StoreError::Corrupt(format!("revision {arn}: {e}"))))
}
