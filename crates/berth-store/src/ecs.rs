//! Typed rows and their queries.

use berth_core::status::{ServiceStatus, TaskStatus};
use rusqlite::{OptionalExtension, Row, params};

use crate::{Result, StoreError, Tx};

/// Seconds since the Unix epoch, as every timestamp column stores it.
pub type Epoch = f64;

#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRow {
    pub name: String,
    pub arn: String,
    pub status: String,
    pub created_at: Epoch,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRow {
    pub id: i64,
    pub arn: String,
    pub cluster: String,
    pub name: String,
    pub status: ServiceStatus,
    pub status_reason: Option<String>,
    pub express: bool,
    pub infrastructure_role_arn: Option<String>,
    /// The revision the service converges to.
    pub target_revision: String,
    /// The revision that receives traffic; differs from `target_revision` while a deployment runs.
    pub live_revision: Option<String>,
    pub desired_count: u32,
    pub endpoint_host: String,
    pub created_at: Epoch,
    pub updated_at: Epoch,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RevisionRow {
    pub arn: String,
    pub service_id: i64,
    pub task_definition_arn: String,
    /// The service configuration of this revision, as JSON (owned by the control plane).
    pub config: String,
    pub created_at: Epoch,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskDefinitionRow {
    pub arn: String,
    pub family: String,
    pub revision: i64,
    pub status: String,
    /// The ECS `TaskDefinition` as JSON.
    pub body: String,
    pub registered_at: Epoch,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    pub id: String,
    pub arn: String,
    pub cluster: String,
    pub service_id: Option<i64>,
    pub revision_arn: Option<String>,
    pub task_definition_arn: String,
    pub started_by: Option<String>,
    pub desired_status: TaskStatus,
    pub last_status: TaskStatus,
    pub ip: Option<String>,
    pub port: u16,
    pub created_at: Epoch,
    pub started_at: Option<Epoch>,
    pub stopping_at: Option<Epoch>,
    pub stopped_at: Option<Epoch>,
    pub stop_code: Option<String>,
    pub stopped_reason: Option<String>,
    pub exit_code: Option<i64>,
    /// The route-table version from which this task was draining (no new requests).
    pub drain_version: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CertificateRow {
    pub host: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: Epoch,
}

fn parse_service_status(s: String) -> rusqlite::Result<ServiceStatus> {
    ServiceStatus::parse(&s).ok_or_else(|| corrupt(format!("service status {s}")))
}

fn parse_task_status(s: String) -> rusqlite::Result<TaskStatus> {
    TaskStatus::parse(&s).ok_or_else(|| corrupt(format!("task status {s}")))
}

fn corrupt(msg: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(StoreError::Corrupt(msg)))
}

fn cluster_row(r: &Row<'_>) -> rusqlite::Result<ClusterRow> {
    Ok(ClusterRow { name: r.get(0)?, arn: r.get(1)?, status: r.get(2)?, created_at: r.get(3)? })
}

const SERVICE_COLS: &str = "id, arn, cluster, name, status, status_reason, express, infrastructure_role_arn, \
    target_revision, live_revision, desired_count, endpoint_host, created_at, updated_at";

fn service_row(r: &Row<'_>) -> rusqlite::Result<ServiceRow> {
    Ok(ServiceRow {
        id: r.get(0)?,
        arn: r.get(1)?,
        cluster: r.get(2)?,
        name: r.get(3)?,
        status: parse_service_status(r.get(4)?)?,
        status_reason: r.get(5)?,
        express: r.get(6)?,
        infrastructure_role_arn: r.get(7)?,
        target_revision: r.get(8)?,
        live_revision: r.get(9)?,
        desired_count: r.get(10)?,
        endpoint_host: r.get(11)?,
        created_at: r.get(12)?,
        updated_at: r.get(13)?,
    })
}

const TASK_COLS: &str = "id, arn, cluster, service_id, revision_arn, task_definition_arn, started_by, desired_status, \
    last_status, ip, port, created_at, started_at, stopping_at, stopped_at, stop_code, stopped_reason, exit_code, \
    drain_version";

fn task_row(r: &Row<'_>) -> rusqlite::Result<TaskRow> {
    Ok(TaskRow {
        id: r.get(0)?,
        arn: r.get(1)?,
        cluster: r.get(2)?,
        service_id: r.get(3)?,
        revision_arn: r.get(4)?,
        task_definition_arn: r.get(5)?,
        started_by: r.get(6)?,
        desired_status: parse_task_status(r.get(7)?)?,
        last_status: parse_task_status(r.get(8)?)?,
        ip: r.get(9)?,
        port: r.get(10)?,
        created_at: r.get(11)?,
        started_at: r.get(12)?,
        stopping_at: r.get(13)?,
        stopped_at: r.get(14)?,
        stop_code: r.get(15)?,
        stopped_reason: r.get(16)?,
        exit_code: r.get(17)?,
        drain_version: r.get(18)?,
    })
}

fn task_def_row(r: &Row<'_>) -> rusqlite::Result<TaskDefinitionRow> {
    Ok(TaskDefinitionRow {
        arn: r.get(0)?,
        family: r.get(1)?,
        revision: r.get(2)?,
        status: r.get(3)?,
        body: r.get(4)?,
        registered_at: r.get(5)?,
    })
}

impl Tx<'_> {
    // ---- clusters

    pub fn cluster_insert(&self, c: &ClusterRow) -> Result<()> {
        self.conn().execute(
            "INSERT INTO clusters(name, arn, status, created_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(name) DO UPDATE SET status = excluded.status",
            params![c.name, c.arn, c.status, c.created_at],
        )?;
        Ok(())
    }

    pub fn cluster_get(&self, name: &str) -> Result<Option<ClusterRow>> {
        Ok(self
            .conn()
            .query_row("SELECT name, arn, status, created_at FROM clusters WHERE name = ?1", [name], cluster_row)
            .optional()?)
    }

    pub fn clusters(&self) -> Result<Vec<ClusterRow>> {
        let mut st = self.conn().prepare("SELECT name, arn, status, created_at FROM clusters ORDER BY name")?;
        let rows = st.query_map([], cluster_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn cluster_set_status(&self, name: &str, status: &str) -> Result<()> {
        self.conn().execute("UPDATE clusters SET status = ?2 WHERE name = ?1", params![name, status])?;
        Ok(())
    }

    // ---- services

    /// Inserts a service and returns its row id. Fails with `Conflict` if an ACTIVE service of that name
    /// exists in the cluster.
    pub fn service_insert(&self, s: &ServiceRow) -> Result<i64> {
        let r = self.conn().execute(
            "INSERT INTO services(arn, cluster, name, status, status_reason, express, infrastructure_role_arn, \
             target_revision, live_revision, desired_count, endpoint_host, created_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                s.arn,
                s.cluster,
                s.name,
                s.status.as_str(),
                s.status_reason,
                s.express,
                s.infrastructure_role_arn,
                s.target_revision,
                s.live_revision,
                s.desired_count,
                s.endpoint_host,
                s.created_at,
                s.updated_at
            ],
        );
        match r {
            Ok(_) => Ok(self.conn().last_insert_rowid()),
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(StoreError::Conflict(format!("service {} in cluster {}", s.name, s.cluster)))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn service_update(&self, s: &ServiceRow) -> Result<()> {
        self.conn().execute(
            "UPDATE services SET status = ?2, status_reason = ?3, target_revision = ?4, live_revision = ?5, \
             desired_count = ?6, updated_at = ?7 WHERE id = ?1",
            params![
                s.id,
                s.status.as_str(),
                s.status_reason,
                s.target_revision,
                s.live_revision,
                s.desired_count,
                s.updated_at
            ],
        )?;
        Ok(())
    }

    pub fn service_by_id(&self, id: i64) -> Result<Option<ServiceRow>> {
        let sql = format!("SELECT {SERVICE_COLS} FROM services WHERE id = ?1");
        Ok(self.conn().query_row(&sql, [id], service_row).optional()?)
    }

    /// The service with this ARN: the live one if any, else the most recent inactive one.
    pub fn service_by_arn(&self, arn: &str) -> Result<Option<ServiceRow>> {
        let sql = format!(
            "SELECT {SERVICE_COLS} FROM services WHERE arn = ?1 ORDER BY (status = 'INACTIVE'), id DESC LIMIT 1"
        );
        Ok(self.conn().query_row(&sql, [arn], service_row).optional()?)
    }

    /// The service named `name` in `cluster`, preferring a non-inactive one.
    pub fn service_by_name(&self, cluster: &str, name: &str) -> Result<Option<ServiceRow>> {
        let sql = format!(
            "SELECT {SERVICE_COLS} FROM services WHERE cluster = ?1 AND name = ?2 \
             ORDER BY (status = 'INACTIVE'), id DESC LIMIT 1"
        );
        Ok(self.conn().query_row(&sql, params![cluster, name], service_row).optional()?)
    }

    /// Services that are not INACTIVE, optionally in one cluster, oldest first.
    pub fn services_live(&self, cluster: Option<&str>) -> Result<Vec<ServiceRow>> {
        let sql = format!(
            "SELECT {SERVICE_COLS} FROM services WHERE status != 'INACTIVE' AND (?1 IS NULL OR cluster = ?1) ORDER BY id"
        );
        let mut st = self.conn().prepare(&sql)?;
        let rows = st.query_map([cluster], service_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- revisions

    pub fn revision_insert(&self, r: &RevisionRow) -> Result<()> {
        self.conn().execute(
            "INSERT INTO revisions(arn, service_id, task_definition_arn, config, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![r.arn, r.service_id, r.task_definition_arn, r.config, r.created_at],
        )?;
        Ok(())
    }

    /// Rewrites a revision's stored configuration (a change that starts no deployment, such as the scaling
    /// target).
    pub fn revision_set_config(&self, arn: &str, config: &str) -> Result<()> {
        self.conn().execute("UPDATE revisions SET config = ?2 WHERE arn = ?1", params![arn, config])?;
        Ok(())
    }

    pub fn revision_get(&self, arn: &str) -> Result<Option<RevisionRow>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT arn, service_id, task_definition_arn, config, created_at FROM revisions WHERE arn = ?1",
                [arn],
                |r| {
                    Ok(RevisionRow {
                        arn: r.get(0)?,
                        service_id: r.get(1)?,
                        task_definition_arn: r.get(2)?,
                        config: r.get(3)?,
                        created_at: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    // ---- task definitions

    /// Registers the next revision of `family` with `body` produced from the new ARN and revision number.
    pub fn task_definition_register(
        &self,
        family: &str,
        arn_for: impl FnOnce(i64) -> String,
        body_for: impl FnOnce(&str, i64) -> String,
        registered_at: Epoch,
    ) -> Result<TaskDefinitionRow> {
        let revision: i64 = self.conn().query_row(
            "SELECT COALESCE(MAX(revision), 0) + 1 FROM task_definitions WHERE family = ?1",
            [family],
            |r| r.get(0),
        )?;
        let arn = arn_for(revision);
        let body = body_for(&arn, revision);
        self.conn().execute(
            "INSERT INTO task_definitions(arn, family, revision, status, body, registered_at) \
             VALUES (?1, ?2, ?3, 'ACTIVE', ?4, ?5)",
            params![arn, family, revision, body, registered_at],
        )?;
        Ok(TaskDefinitionRow { arn, family: family.into(), revision, status: "ACTIVE".into(), body, registered_at })
    }

    pub fn task_definition_get(&self, arn: &str) -> Result<Option<TaskDefinitionRow>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT arn, family, revision, status, body, registered_at FROM task_definitions WHERE arn = ?1",
                [arn],
                task_def_row,
            )
            .optional()?)
    }

    /// `family` alone means its latest ACTIVE revision.
    pub fn task_definition_by_family(&self, family: &str, revision: Option<i64>) -> Result<Option<TaskDefinitionRow>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT arn, family, revision, status, body, registered_at FROM task_definitions \
                 WHERE family = ?1 AND (?2 IS NULL AND status = 'ACTIVE' OR revision = ?2) ORDER BY revision DESC LIMIT 1",
                params![family, revision],
                task_def_row,
            )
            .optional()?)
    }

    /// The task definitions with `status`, of one family (ListTaskDefinitions' `familyPrefix` is, as ECS documents
    /// it, the full family name) or of all, by family name and then revision.
    pub fn task_definitions(&self, family: Option<&str>, status: &str) -> Result<Vec<TaskDefinitionRow>> {
        let mut st = self.conn().prepare(
            "SELECT arn, family, revision, status, body, registered_at FROM task_definitions \
             WHERE status = ?2 AND (?1 IS NULL OR family = ?1) ORDER BY family, revision",
        )?;
        let rows = st.query_map(params![family, status], task_def_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Moves a task definition to `status` (ACTIVE, INACTIVE or DELETE_IN_PROGRESS) with its new `body`.
    pub fn task_definition_set_status(&self, arn: &str, status: &str, body: &str) -> Result<()> {
        self.conn()
            .execute("UPDATE task_definitions SET status = ?2, body = ?3 WHERE arn = ?1", params![arn, status, body])?;
        Ok(())
    }

    // ---- tasks

    pub fn task_insert(&self, t: &TaskRow) -> Result<()> {
        self.conn().execute(
            &format!("INSERT INTO tasks({TASK_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)"),
            params![
                t.id,
                t.arn,
                t.cluster,
                t.service_id,
                t.revision_arn,
                t.task_definition_arn,
                t.started_by,
                t.desired_status.as_str(),
                t.last_status.as_str(),
                t.ip,
                t.port,
                t.created_at,
                t.started_at,
                t.stopping_at,
                t.stopped_at,
                t.stop_code,
                t.stopped_reason,
                t.exit_code,
                t.drain_version
            ],
        )?;
        Ok(())
    }

    pub fn task_update(&self, t: &TaskRow) -> Result<()> {
        self.conn().execute(
            "UPDATE tasks SET desired_status = ?2, last_status = ?3, ip = ?4, started_at = ?5, stopping_at = ?6, \
             stopped_at = ?7, stop_code = ?8, stopped_reason = ?9, exit_code = ?10, drain_version = ?11 WHERE id = ?1",
            params![
                t.id,
                t.desired_status.as_str(),
                t.last_status.as_str(),
                t.ip,
                t.started_at,
                t.stopping_at,
                t.stopped_at,
                t.stop_code,
                t.stopped_reason,
                t.exit_code,
                t.drain_version
            ],
        )?;
        Ok(())
    }

    pub fn task_get(&self, id: &str) -> Result<Option<TaskRow>> {
        let sql = format!("SELECT {TASK_COLS} FROM tasks WHERE id = ?1 OR arn = ?1");
        Ok(self.conn().query_row(&sql, [id], task_row).optional()?)
    }

    /// Every task whose last status is not STOPPED (what the runtime should have).
    pub fn tasks_not_stopped(&self) -> Result<Vec<TaskRow>> {
        let sql = format!("SELECT {TASK_COLS} FROM tasks WHERE last_status != 'STOPPED' ORDER BY created_at");
        let mut st = self.conn().prepare(&sql)?;
        let rows = st.query_map([], task_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Tasks of a cluster, optionally of one service, filtered by desired status, newest first.
    pub fn tasks_in(
        &self,
        cluster: &str,
        service_id: Option<i64>,
        desired: Option<TaskStatus>,
    ) -> Result<Vec<TaskRow>> {
        let sql = format!(
            "SELECT {TASK_COLS} FROM tasks WHERE cluster = ?1 AND (?2 IS NULL OR service_id = ?2) \
             AND (?3 IS NULL OR desired_status = ?3) ORDER BY created_at DESC"
        );
        let mut st = self.conn().prepare(&sql)?;
        let rows = st.query_map(params![cluster, service_id, desired.map(|d| d.as_str())], task_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Recently stopped tasks of a service (newest first), for failure backoff and events.
    pub fn tasks_stopped_since(&self, service_id: i64, since: Epoch) -> Result<Vec<TaskRow>> {
        let sql = format!(
            "SELECT {TASK_COLS} FROM tasks WHERE service_id = ?1 AND last_status = 'STOPPED' AND stopped_at >= ?2 \
             ORDER BY stopped_at DESC"
        );
        let mut st = self.conn().prepare(&sql)?;
        let rows = st.query_map(params![service_id, since], task_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Forgets stopped tasks older than `before` (ECS shows stopped tasks for about an hour).
    pub fn tasks_prune_stopped(&self, before: Epoch) -> Result<usize> {
        Ok(self.conn().execute("DELETE FROM tasks WHERE last_status = 'STOPPED' AND stopped_at < ?1", [before])?)
    }

    // ---- certificates

    pub fn certificate_put(&self, c: &CertificateRow) -> Result<()> {
        self.conn().execute(
            "INSERT INTO certificates(host, cert_pem, key_pem, not_after) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(host) DO UPDATE SET cert_pem = excluded.cert_pem, key_pem = excluded.key_pem, \
             not_after = excluded.not_after",
            params![c.host, c.cert_pem, c.key_pem, c.not_after],
        )?;
        Ok(())
    }

    pub fn certificate_get(&self, host: &str) -> Result<Option<CertificateRow>> {
        Ok(self
            .conn()
            .query_row("SELECT host, cert_pem, key_pem, not_after FROM certificates WHERE host = ?1", [host], |r| {
                Ok(CertificateRow { host: r.get(0)?, cert_pem: r.get(1)?, key_pem: r.get(2)?, not_after: r.get(3)? })
            })
            .optional()?)
    }

    pub fn certificate_delete(&self, host: &str) -> Result<()> {
        self.conn().execute("DELETE FROM certificates WHERE host = ?1", [host])?;
        Ok(())
    }

    // ---- service events

    /// Records an event for a service, keeping its newest 100 (as ECS shows).
    pub fn event_add(&self, service_id: i64, at: Epoch, message: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO service_events(service_id, created_at, message) VALUES (?1, ?2, ?3)",
            params![service_id, at, message],
        )?;
        self.conn().execute(
            "DELETE FROM service_events WHERE service_id = ?1 AND id NOT IN \
             (SELECT id FROM service_events WHERE service_id = ?1 ORDER BY id DESC LIMIT 100)",
            [service_id],
        )?;
        Ok(())
    }

    /// A service's events, newest first: (id, created_at, message).
    pub fn events(&self, service_id: i64) -> Result<Vec<(i64, Epoch, String)>> {
        let mut st = self
            .conn()
            .prepare("SELECT id, created_at, message FROM service_events WHERE service_id = ?1 ORDER BY id DESC")?;
        let rows = st.query_map([service_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- tags

    pub fn tags_get(&self, resource_arn: &str) -> Result<Vec<(String, String)>> {
        let mut st = self.conn().prepare("SELECT key, value FROM tags WHERE resource_arn = ?1 ORDER BY key")?;
        let rows = st.query_map([resource_arn], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn tags_put(&self, resource_arn: &str, tags: &[(String, String)]) -> Result<()> {
        for (k, v) in tags {
            self.conn().execute(
                "INSERT INTO tags(resource_arn, key, value) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(resource_arn, key) DO UPDATE SET value = excluded.value",
                params![resource_arn, k, v],
            )?;
        }
        Ok(())
    }

    pub fn tags_remove(&self, resource_arn: &str, keys: &[String]) -> Result<()> {
        for k in keys {
            self.conn().execute("DELETE FROM tags WHERE resource_arn = ?1 AND key = ?2", params![resource_arn, k])?;
        }
        Ok(())
    }
}
