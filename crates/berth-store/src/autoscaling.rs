//! Application Auto Scaling: scalable targets, scaling policies (their configuration as the API's JSON, the
//! alarms they own, the last policy-driven activity for cooldowns), scheduled actions (with their last run) and
//! scaling activities. Tags live in the shared `tags` table under the target's ARN. A target is keyed by
//! `(namespace, resource id, dimension)`; its policies and scheduled actions by name within it.

use rusqlite::{OptionalExtension, Row, params};

use crate::{Epoch, Result, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct ScalableTargetRow {
    pub namespace: String,
    pub resource_id: String,
    pub dimension: String,
    pub arn: String,
    pub min_capacity: i64,
    pub max_capacity: i64,
    pub role_arn: Option<String>,
    pub scale_in_suspended: bool,
    pub scale_out_suspended: bool,
    pub scheduled_suspended: bool,
    pub created_at: Epoch,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScalingPolicyRow {
    pub arn: String,
    pub namespace: String,
    pub resource_id: String,
    pub dimension: String,
    pub name: String,
    /// `TargetTrackingScaling` or `StepScaling`.
    pub policy_type: String,
    /// The policy's configuration as the API's JSON (TargetTracking... or StepScalingPolicyConfiguration).
    pub config: String,
    /// The alarms the policy owns (target tracking): `[[name, arn], ...]` as JSON.
    pub alarms: String,
    pub created_at: Epoch,
    /// The last policy-driven scaling activity of this policy: when, `out`/`in`, to what capacity.
    pub last_at: Option<Epoch>,
    pub last_direction: Option<String>,
    pub last_to: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledActionRow {
    pub arn: String,
    pub namespace: String,
    pub resource_id: String,
    pub dimension: String,
    pub name: String,
    pub schedule: String,
    pub timezone: Option<String>,
    pub start_time: Option<Epoch>,
    pub end_time: Option<Epoch>,
    pub min_capacity: Option<i64>,
    pub max_capacity: Option<i64>,
    pub created_at: Epoch,
    /// The scheduled time of the last run carried out (`None`: never ran).
    pub last_run: Option<Epoch>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScalingActivityRow {
    pub id: String,
    pub namespace: String,
    pub resource_id: String,
    pub dimension: String,
    pub description: String,
    pub cause: String,
    pub start_time: Epoch,
    pub end_time: Option<Epoch>,
    /// Pending, InProgress, Successful, Overridden, Unfulfilled, Failed.
    pub status: String,
    pub status_message: Option<String>,
    /// `NotScaledReasons` as the API's JSON (a not-scaled activity), else `None`.
    pub not_scaled: Option<String>,
}

const TARGET_COLS: &str = "namespace, resource_id, dimension, arn, min_capacity, max_capacity, role_arn, \
     scale_in_suspended, scale_out_suspended, scheduled_suspended, created_at";
const POLICY_COLS: &str = "arn, namespace, resource_id, dimension, name, policy_type, config, alarms, created_at, \
     last_at, last_direction, last_to";
const ACTION_COLS: &str = "arn, namespace, resource_id, dimension, name, schedule, timezone, start_time, end_time, \
     min_capacity, max_capacity, created_at, last_run";
const ACTIVITY_COLS: &str = "id, namespace, resource_id, dimension, description, cause, start_time, end_time, \
     status, status_message, not_scaled";

fn target(r: &Row<'_>) -> rusqlite::Result<ScalableTargetRow> {
    Ok(ScalableTargetRow {
        namespace: r.get(0)?,
        resource_id: r.get(1)?,
        dimension: r.get(2)?,
        arn: r.get(3)?,
        min_capacity: r.get(4)?,
        max_capacity: r.get(5)?,
        role_arn: r.get(6)?,
        scale_in_suspended: r.get(7)?,
        scale_out_suspended: r.get(8)?,
        scheduled_suspended: r.get(9)?,
        created_at: r.get(10)?,
    })
}

fn policy(r: &Row<'_>) -> rusqlite::Result<ScalingPolicyRow> {
    Ok(ScalingPolicyRow {
        arn: r.get(0)?,
        namespace: r.get(1)?,
        resource_id: r.get(2)?,
        dimension: r.get(3)?,
        name: r.get(4)?,
        policy_type: r.get(5)?,
        config: r.get(6)?,
        alarms: r.get(7)?,
        created_at: r.get(8)?,
        last_at: r.get(9)?,
        last_direction: r.get(10)?,
        last_to: r.get(11)?,
    })
}

fn action(r: &Row<'_>) -> rusqlite::Result<ScheduledActionRow> {
    Ok(ScheduledActionRow {
        arn: r.get(0)?,
        namespace: r.get(1)?,
        resource_id: r.get(2)?,
        dimension: r.get(3)?,
        name: r.get(4)?,
        schedule: r.get(5)?,
        timezone: r.get(6)?,
        start_time: r.get(7)?,
        end_time: r.get(8)?,
        min_capacity: r.get(9)?,
        max_capacity: r.get(10)?,
        created_at: r.get(11)?,
        last_run: r.get(12)?,
    })
}

fn activity(r: &Row<'_>) -> rusqlite::Result<ScalingActivityRow> {
    Ok(ScalingActivityRow {
        id: r.get(0)?,
        namespace: r.get(1)?,
        resource_id: r.get(2)?,
        dimension: r.get(3)?,
        description: r.get(4)?,
        cause: r.get(5)?,
        start_time: r.get(6)?,
        end_time: r.get(7)?,
        status: r.get(8)?,
        status_message: r.get(9)?,
        not_scaled: r.get(10)?,
    })
}

impl Tx<'_> {
    // ---- scalable targets

    /// Inserts or replaces the target (keyed by namespace, resource id and dimension).
    pub fn scalable_target_put(&self, t: &ScalableTargetRow) -> Result<()> {
        self.conn().execute(
            &format!(
                "INSERT INTO aas_targets({TARGET_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                 ON CONFLICT(namespace, resource_id, dimension) DO UPDATE SET min_capacity = excluded.min_capacity, \
                 max_capacity = excluded.max_capacity, role_arn = excluded.role_arn, \
                 scale_in_suspended = excluded.scale_in_suspended, scale_out_suspended = excluded.scale_out_suspended, \
                 scheduled_suspended = excluded.scheduled_suspended"
            ),
            params![
                t.namespace,
                t.resource_id,
                t.dimension,
                t.arn,
                t.min_capacity,
                t.max_capacity,
                t.role_arn,
                t.scale_in_suspended,
                t.scale_out_suspended,
                t.scheduled_suspended,
                t.created_at
            ],
        )?;
        Ok(())
    }

    pub fn scalable_target_get(
        &self,
        namespace: &str,
        resource_id: &str,
        dimension: &str,
    ) -> Result<Option<ScalableTargetRow>> {
        let sql = format!(
            "SELECT {TARGET_COLS} FROM aas_targets WHERE namespace = ?1 AND resource_id = ?2 AND dimension = ?3"
        );
        Ok(self.conn().query_row(&sql, params![namespace, resource_id, dimension], target).optional()?)
    }

    pub fn scalable_target_by_arn(&self, arn: &str) -> Result<Option<ScalableTargetRow>> {
        let sql = format!("SELECT {TARGET_COLS} FROM aas_targets WHERE arn = ?1");
        Ok(self.conn().query_row(&sql, [arn], target).optional()?)
    }

    /// Every target of a namespace, by resource id.
    pub fn scalable_targets(&self, namespace: &str) -> Result<Vec<ScalableTargetRow>> {
        let sql = format!("SELECT {TARGET_COLS} FROM aas_targets WHERE namespace = ?1 ORDER BY resource_id, dimension");
        let mut st = self.conn().prepare(&sql)?;
        let rows = st.query_map([namespace], target)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes the target with its policies, scheduled actions and tags (its activities stay, as history).
    pub fn scalable_target_delete(&self, namespace: &str, resource_id: &str, dimension: &str) -> Result<()> {
        let key = params![namespace, resource_id, dimension];
        if let Some(t) = self.scalable_target_get(namespace, resource_id, dimension)? {
            self.conn().execute("DELETE FROM tags WHERE resource_arn = ?1", [t.arn])?;
        }
        for table in ["aas_policies", "aas_scheduled_actions", "aas_targets"] {
            self.conn().execute(
                &format!("DELETE FROM {table} WHERE namespace = ?1 AND resource_id = ?2 AND dimension = ?3"),
                key,
            )?;
        }
        Ok(())
    }

    // ---- scaling policies

    /// Inserts the policy or replaces its type, configuration and alarms (keeping its ARN, creation time and
    /// last activity).
    pub fn scaling_policy_put(&self, p: &ScalingPolicyRow) -> Result<()> {
        self.conn().execute(
            &format!(
                "INSERT INTO aas_policies({POLICY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
                 ON CONFLICT(namespace, resource_id, dimension, name) DO UPDATE SET policy_type = excluded.policy_type, \
                 config = excluded.config, alarms = excluded.alarms"
            ),
            params![
                p.arn,
                p.namespace,
                p.resource_id,
                p.dimension,
                p.name,
                p.policy_type,
                p.config,
                p.alarms,
                p.created_at,
                p.last_at,
                p.last_direction,
                p.last_to
            ],
        )?;
        Ok(())
    }

    pub fn scaling_policy_get(
        &self,
        namespace: &str,
        resource_id: &str,
        dimension: &str,
        name: &str,
    ) -> Result<Option<ScalingPolicyRow>> {
        let sql = format!(
            "SELECT {POLICY_COLS} FROM aas_policies WHERE namespace = ?1 AND resource_id = ?2 AND dimension = ?3 \
             AND name = ?4"
        );
        Ok(self.conn().query_row(&sql, params![namespace, resource_id, dimension, name], policy).optional()?)
    }

    pub fn scaling_policy_by_arn(&self, arn: &str) -> Result<Option<ScalingPolicyRow>> {
        let sql = format!("SELECT {POLICY_COLS} FROM aas_policies WHERE arn = ?1");
        Ok(self.conn().query_row(&sql, [arn], policy).optional()?)
    }

    /// A namespace's policies (of one target when `resource_id` is given), by resource id and name.
    pub fn scaling_policies(&self, namespace: &str, resource_id: Option<&str>) -> Result<Vec<ScalingPolicyRow>> {
        let sql = format!(
            "SELECT {POLICY_COLS} FROM aas_policies WHERE namespace = ?1 AND (?2 IS NULL OR resource_id = ?2) \
             ORDER BY resource_id, name"
        );
        let mut st = self.conn().prepare(&sql)?;
        let rows = st.query_map(params![namespace, resource_id], policy)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn scaling_policy_delete(&self, arn: &str) -> Result<()> {
        self.conn().execute("DELETE FROM aas_policies WHERE arn = ?1", [arn])?;
        Ok(())
    }

    /// Records a policy's last scaling activity (its cooldowns start from it).
    pub fn scaling_policy_set_last(&self, arn: &str, at: Epoch, direction: &str, to: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE aas_policies SET last_at = ?2, last_direction = ?3, last_to = ?4 WHERE arn = ?1",
            params![arn, at, direction, to],
        )?;
        Ok(())
    }

    // ---- scheduled actions

    /// Inserts the action or replaces its schedule and bounds (a replaced schedule runs afresh).
    pub fn scheduled_action_put(&self, a: &ScheduledActionRow) -> Result<()> {
        self.conn().execute(
            &format!(
                "INSERT INTO aas_scheduled_actions({ACTION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
                 ?12, ?13) ON CONFLICT(namespace, resource_id, dimension, name) DO UPDATE SET \
                 schedule = excluded.schedule, timezone = excluded.timezone, start_time = excluded.start_time, \
                 end_time = excluded.end_time, min_capacity = excluded.min_capacity, \
                 max_capacity = excluded.max_capacity, last_run = excluded.last_run"
            ),
            params![
                a.arn,
                a.namespace,
                a.resource_id,
                a.dimension,
                a.name,
                a.schedule,
                a.timezone,
                a.start_time,
                a.end_time,
                a.min_capacity,
                a.max_capacity,
                a.created_at,
                a.last_run
            ],
        )?;
        Ok(())
    }

    pub fn scheduled_action_get(
        &self,
        namespace: &str,
        resource_id: &str,
        dimension: &str,
        name: &str,
    ) -> Result<Option<ScheduledActionRow>> {
        let sql = format!(
            "SELECT {ACTION_COLS} FROM aas_scheduled_actions WHERE namespace = ?1 AND resource_id = ?2 \
             AND dimension = ?3 AND name = ?4"
        );
        Ok(self.conn().query_row(&sql, params![namespace, resource_id, dimension, name], action).optional()?)
    }

    /// A namespace's scheduled actions (of one target when `resource_id` is given), by resource id and name.
    pub fn scheduled_actions(&self, namespace: &str, resource_id: Option<&str>) -> Result<Vec<ScheduledActionRow>> {
        let sql = format!(
            "SELECT {ACTION_COLS} FROM aas_scheduled_actions WHERE namespace = ?1 AND (?2 IS NULL OR resource_id = ?2) \
             ORDER BY resource_id, name"
        );
        let mut st = self.conn().prepare(&sql)?;
        let rows = st.query_map(params![namespace, resource_id], action)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn scheduled_action_delete(&self, arn: &str) -> Result<()> {
        self.conn().execute("DELETE FROM aas_scheduled_actions WHERE arn = ?1", [arn])?;
        Ok(())
    }

    pub fn scheduled_action_set_last_run(&self, arn: &str, at: Epoch) -> Result<()> {
        self.conn().execute("UPDATE aas_scheduled_actions SET last_run = ?2 WHERE arn = ?1", params![arn, at])?;
        Ok(())
    }

    // ---- activities

    pub fn scaling_activity_add(&self, a: &ScalingActivityRow) -> Result<()> {
        self.conn().execute(
            &format!(
                "INSERT INTO aas_activities({ACTIVITY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
            ),
            params![
                a.id,
                a.namespace,
                a.resource_id,
                a.dimension,
                a.description,
                a.cause,
                a.start_time,
                a.end_time,
                a.status,
                a.status_message,
                a.not_scaled
            ],
        )?;
        Ok(())
    }

    /// A namespace's activities (of one target when `resource_id` is given), newest first.
    pub fn scaling_activities(&self, namespace: &str, resource_id: Option<&str>) -> Result<Vec<ScalingActivityRow>> {
        let sql = format!(
            "SELECT {ACTIVITY_COLS} FROM aas_activities WHERE namespace = ?1 AND (?2 IS NULL OR resource_id = ?2) \
             ORDER BY start_time DESC, seq DESC"
        );
        let mut st = self.conn().prepare(&sql)?;
        let rows = st.query_map(params![namespace, resource_id], activity)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Forgets activities that started before `before` (AAS keeps six weeks).
    pub fn scaling_activities_prune(&self, before: Epoch) -> Result<usize> {
        Ok(self.conn().execute("DELETE FROM aas_activities WHERE start_time < ?1", [before])?)
    }
}
