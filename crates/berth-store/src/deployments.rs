//! Service deployments (ECS's `ServiceDeployment`) and each service's deployment settings. The store keeps
//! the rows; what a status, stage or progress means is the control plane's (`berth-control`'s `deployment.rs`
//! and `plan.rs`).

use rusqlite::{OptionalExtension, Row, params};

use crate::{Epoch, Result, Tx};

/// One deployment of a service: from `source_revision` (the revision serving when it began; none for a
/// service's first) to `target_revision`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentRow {
    /// Assigned by the store on insert (0 before).
    pub id: i64,
    pub arn: String,
    pub service_id: i64,
    /// ECS's `ServiceDeploymentStatus` wire value (`PENDING`, `IN_PROGRESS`, `SUCCESSFUL`, ...).
    pub status: String,
    pub status_reason: Option<String>,
    /// ECS's `ServiceDeploymentLifecycleStage` wire value (`SCALE_UP`, `BAKE_TIME`, ...).
    pub stage: String,
    pub target_revision: String,
    pub source_revision: Option<String>,
    /// The effective `DeploymentConfiguration` this deployment follows, as JSON (the model's shape).
    pub config: String,
    /// The planner's progress (weights, step, bake clock, hooks, failures, alarms, rollback), as JSON.
    pub progress: String,
    pub created_at: Epoch,
    pub started_at: Option<Epoch>,
    pub finished_at: Option<Epoch>,
    pub stopped_at: Option<Epoch>,
    pub updated_at: Epoch,
}

const COLUMNS: &str = "id, arn, service_id, status, status_reason, stage, target_revision, source_revision, config, \
                       progress, created_at, started_at, finished_at, stopped_at, updated_at";

fn deployment_row(r: &Row<'_>) -> rusqlite::Result<DeploymentRow> {
    Ok(DeploymentRow {
        id: r.get(0)?,
        arn: r.get(1)?,
        service_id: r.get(2)?,
        status: r.get(3)?,
        status_reason: r.get(4)?,
        stage: r.get(5)?,
        target_revision: r.get(6)?,
        source_revision: r.get(7)?,
        config: r.get(8)?,
        progress: r.get(9)?,
        created_at: r.get(10)?,
        started_at: r.get(11)?,
        finished_at: r.get(12)?,
        stopped_at: r.get(13)?,
        updated_at: r.get(14)?,
    })
}

/// Statuses of a deployment that has ended (ECS's "Completed" group).
pub const FINISHED_STATUSES: [&str; 4] = ["SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"];

/// [`FINISHED_STATUSES`] as an SQL list: `('SUCCESSFUL', ...)`.
fn finished_list() -> String {
    format!("({})", FINISHED_STATUSES.map(|s| format!("'{s}'")).join(", "))
}

impl Tx<'_> {
    /// Inserts a deployment; returns its id.
    pub fn deployment_insert(&self, d: &DeploymentRow) -> Result<i64> {
        self.conn().execute(
            "INSERT INTO deployments(arn, service_id, status, status_reason, stage, target_revision, source_revision, \
             config, progress, created_at, started_at, finished_at, stopped_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                d.arn,
                d.service_id,
                d.status,
                d.status_reason,
                d.stage,
                d.target_revision,
                d.source_revision,
                d.config,
                d.progress,
                d.created_at,
                d.started_at,
                d.finished_at,
                d.stopped_at,
                d.updated_at
            ],
        )?;
        Ok(self.conn().last_insert_rowid())
    }

    /// Rewrites a deployment's mutable columns (by id).
    pub fn deployment_update(&self, d: &DeploymentRow) -> Result<()> {
        self.conn().execute(
            "UPDATE deployments SET status = ?2, status_reason = ?3, stage = ?4, source_revision = ?5, config = ?6, \
             progress = ?7, started_at = ?8, finished_at = ?9, stopped_at = ?10, updated_at = ?11 WHERE id = ?1",
            params![
                d.id,
                d.status,
                d.status_reason,
                d.stage,
                d.source_revision,
                d.config,
                d.progress,
                d.started_at,
                d.finished_at,
                d.stopped_at,
                d.updated_at
            ],
        )?;
        Ok(())
    }

    pub fn deployment_get(&self, arn: &str) -> Result<Option<DeploymentRow>> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {COLUMNS} FROM deployments WHERE arn = ?1"), [arn], deployment_row)
            .optional()?)
    }

    /// A service's deployments, newest first.
    pub fn deployments_of(&self, service_id: i64) -> Result<Vec<DeploymentRow>> {
        let mut stmt = self
            .conn()
            .prepare(&format!("SELECT {COLUMNS} FROM deployments WHERE service_id = ?1 ORDER BY id DESC"))?;
        let rows = stmt.query_map([service_id], deployment_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The service's deployment that has not finished, if any (at most one: a new one supersedes the last).
    pub fn deployment_current(&self, service_id: i64) -> Result<Option<DeploymentRow>> {
        Ok(self
            .conn()
            .query_row(
                &format!(
                    "SELECT {COLUMNS} FROM deployments WHERE service_id = ?1 AND status NOT IN {} \
                     ORDER BY id DESC LIMIT 1",
                    finished_list()
                ),
                [service_id],
                deployment_row,
            )
            .optional()?)
    }

    /// Every deployment that has not finished, oldest first (the reconciler's work list).
    pub fn deployments_unfinished(&self) -> Result<Vec<DeploymentRow>> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {COLUMNS} FROM deployments WHERE status NOT IN {} ORDER BY id",
            finished_list()
        ))?;
        let rows = stmt.query_map([], deployment_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// A service's deployment settings as JSON (`None`: never set; the defaults apply).
    pub fn deployment_settings_get(&self, service_id: i64) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT settings FROM service_deployment_settings WHERE service_id = ?1", [service_id], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn deployment_settings_put(&self, service_id: i64, settings: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO service_deployment_settings(service_id, settings) VALUES (?1, ?2) \
             ON CONFLICT(service_id) DO UPDATE SET settings = excluded.settings",
            params![service_id, settings],
        )?;
        Ok(())
    }
}
