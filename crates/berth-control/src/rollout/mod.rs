//! Deployments carried out: a deployment begun (or superseded) when a service gets a new revision, and each
//! pass's step of every unfinished deployment (the executor around `plan.rs`'s pure stage machine): traffic
//! weights on every rule forwarding to the service's target groups, bakes watched by the deployment's alarms,
//! pause hooks, the circuit breaker, rollback. Every decision is written to the deployment's row before it is
//! acted on, so a restart resumes where the last process stopped.

use berth_store::{ServiceRow, Tx};

use crate::{Control, ControlError};

/// Begins a deployment of `service` to `revision` (a revision just recorded by a create, an update or a forced
/// new deployment): supersedes the service's unfinished deployment (its in-flight revision rolled back or
/// replaced, never left half-live), records the new deployment (PENDING) and points the service at the new
/// revision. Called inside the command's transaction; returns the new deployment's ARN.
#[allow(dead_code)] // called once the rollout lands (owner: rollout)
pub(crate) fn begin(
    _c: &Control,
    _tx: &Tx<'_>,
    _service: &mut ServiceRow,
    _revision: &str,
    _t: f64,
) -> Result<String, ControlError> {
    // Placeholder until the rollout lands (owner: rollout).
    Ok(String::new())
}
