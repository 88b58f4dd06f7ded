//! A service deployment's words, shared by the API (`ecs/`), the rollout (`rollout/`) and the planner
//! (`plan.rs`): a service's deployment settings (what UpdateService set) and a deployment's progress (what the
//! planner keeps between passes), both stored as JSON. Pure: no store, no clock.
//!
//! Status and stage are ECS's enums (`ServiceDeploymentStatus`, `ServiceDeploymentLifecycleStage`) and live in
//! the row's own columns; everything else the planner needs to resume after a restart is in [`Progress`].

use berth_model::ecs::DeploymentConfiguration;
use serde::{Deserialize, Serialize};

/// A service's deployment settings: what UpdateService's `deploymentConfiguration` (and the test listener rule
/// of `loadBalancers[].advancedConfiguration`) set. Stored per service; `None` members take the defaults
/// (Express: CANARY with the server's canary percentage and bakes, the service's deployment alarm, the circuit
/// breaker with rollback).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// As given by UpdateService, validated (the model's shape; defaults are filled in per deployment).
    pub configuration: Option<DeploymentConfiguration>,
    /// BLUE_GREEN's test listener rule: it forwards 100% to the new revision from TEST_TRAFFIC_SHIFT on.
    pub test_listener_rule: Option<String>,
}

/// Server-wide defaults for Express deployments (`[deploy]` in the server configuration): AWS's values unless
/// the operator sets others.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Defaults {
    /// Share of production traffic the first canary step sends to the new revision, percent (AWS: 5).
    pub canary_percent: f64,
    /// Seconds the canary step bakes before all traffic shifts (Express: 180).
    pub canary_bake_secs: u64,
    /// Seconds the full shift bakes before the old tasks go (Express: 180).
    pub bake_secs: u64,
}

impl Default for Defaults {
    fn default() -> Self {
        Self { canary_percent: 5.0, canary_bake_secs: 180, bake_secs: 180 }
    }
}

/// A deployment's progress, as the planner keeps it (`deployments.progress`). Every member has a default so a
/// row written by an older berth still reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Progress {
    /// Production traffic share of the target revision, percent (0–100).
    pub target_weight: f64,
    /// Test traffic share of the target revision on the test listener rule, percent (BLUE_GREEN).
    pub test_weight: f64,
    /// Production shift steps taken (CANARY: 1 after the canary step, 2 at 100%; LINEAR: one per step).
    pub step: u32,
    /// Seconds of the current bake that were watched (a bake counts only time the server was up to watch it).
    pub baked_secs: f64,
    /// When `baked_secs` was last brought up to date.
    pub bake_checked_at: Option<f64>,
    /// The hook the deployment waits on now (a PAUSE hook, or a bake shown as one), if any.
    pub hook: Option<Hook>,
    /// Hooks that finished, oldest first.
    pub hooks_done: Vec<Hook>,
    /// Circuit breaker: failures of the target revision's tasks counted so far, and the count that trips it.
    pub failures: u32,
    pub failure_threshold: u32,
    /// The alarms watched, and those found in ALARM.
    pub alarm_names: Vec<String>,
    pub triggered_alarms: Vec<String>,
    /// Set once the deployment rolls back (or is stopped).
    pub rollback: Option<RollbackInfo>,
    /// Tasks whose failure was counted (so a failure counts once across passes and restarts).
    pub counted_failures: Vec<String>,
    /// Failures of the source revision's tasks while rolling back (past the threshold: ROLLBACK_FAILED).
    pub source_failures: u32,
    /// User pause hooks of the current stage (or shift step) that have finished.
    pub stage_hooks_done: u32,
    /// The open hook is a bake shown as a pause hook (its clock is `baked_secs`), not a user's hook.
    pub bake: bool,
    /// Seconds of the canary / linear step bakes and of the final bake (berth keeps seconds; the config shows
    /// minutes rounded up). `None`: the configuration's minutes.
    pub step_bake_secs: Option<f64>,
    pub final_bake_secs: Option<f64>,
    /// Seconds of bakes the server was not up to watch (not counted).
    pub unwatched_secs: f64,
}

/// One lifecycle hook occurrence (ECS's `DeploymentLifecycleHookDetail`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Hook {
    /// `ecs-pause-` + URL-safe characters.
    pub hook_id: String,
    /// ECS's `DeploymentLifecycleHookStage` wire value.
    pub stage: String,
    /// `PAUSE` (berth runs no Lambda).
    pub target_type: String,
    /// ECS's `DeploymentLifecycleHookStatus` wire value: `AWAITING_ACTION`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`.
    pub status: String,
    pub expires_at: Option<f64>,
    /// `CONTINUE` or `ROLLBACK`: what happens when it expires.
    pub timeout_action: String,
}

/// ECS's `Rollback`: why, when, and to which revision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RollbackInfo {
    pub reason: String,
    pub started_at: f64,
    pub revision: String,
}

impl Progress {
    /// Reads a stored progress; a row that does not parse is reported as the store's corruption by the caller.
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

impl Settings {
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}
