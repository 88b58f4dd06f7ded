//! berth-store: berth's desired and recorded state in embedded SQLite (WAL).
//!
//! It owns the schema, its migrations and typed rows, one module per service: ECS (`ecs.rs`: clusters, services,
//! revisions, task definitions, tasks, certificates, tags), ELBv2 (`elbv2.rs`, `lb_network.rs`), EC2 (`ec2.rs`:
//! VPCs, subnets, security groups and their rules), IAM (`iam.rs`, `access_keys.rs`, `task_role.rs`: users, roles,
//! policies, access keys, role sessions, task credentials), Secrets Manager and SSM (`secrets.rs`), CloudWatch Logs
//! (`logs.rs`), the shippers' cursors (`log_shipping.rs`), CloudWatch metric series, aggregates and dashboards
//! (`metrics.rs`), CloudWatch alarms with their history (`alarms.rs`) and Application Auto Scaling
//! (`autoscaling.rs`); every change happens inside one transaction
//! ([`Store::tx`], with savepoints), so a failed command leaves nothing half-written. Reads go through
//! [`Readers`] (`readers.rs`): read-only connections beside the one writer (WAL), so a read never waits for the
//! writer and a long scan never holds it. It must never call a runtime, the network or the proxy, and never
//! decide anything: it records what the control plane decides.

mod access_keys;
mod alarms;
mod autoscaling;
mod deployments;
mod ec2;
mod ecs;
mod elbv2;
mod iam;
mod lb_network;
mod log_shipping;
mod logs;
mod metrics;
mod readers;
mod savepoint;
mod schema;
mod secrets;
mod task_role;

pub use access_keys::*;
pub use alarms::*;
pub use autoscaling::*;
pub use deployments::*;
pub use ec2::*;
pub use ecs::*;
pub use elbv2::*;
pub use iam::*;
pub use lb_network::*;
pub use log_shipping::*;
pub use logs::*;
pub use metrics::*;
pub use readers::Readers;
pub use secrets::*;
pub use task_role::*;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("{0} already exists")]
    Conflict(String),
    #[error("temporary database: {0}")]
    Temporary(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// The database's one writer. Not `Sync`: the control plane keeps it behind a mutex and holds it only for
/// short transactions; reads go through [`Store::readers`].
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// A temporary database's directory, removed when the store and its readers are gone.
    temp: Option<Arc<readers::TempDir>>,
}

/// A transaction: every read and write goes through one.
pub struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Store> {
        Self::init(path, None)
    }

    /// A database of its own that is gone when the store (and its readers) are dropped, for tests: a file in
    /// `/dev/shm` (memory) where there is one, else in the temporary directory, so that [`Readers`] can open
    /// it beside the writer (an SQLite `:memory:` database is private to its connection).
    pub fn open_in_memory() -> Result<Store> {
        let temp = Arc::new(readers::TempDir::new()?);
        let path = temp.path().join("berth.db");
        Self::init(&path, Some(temp))
    }

    fn init(path: &Path, temp: Option<Arc<readers::TempDir>>) -> Result<Store> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Deleted and rewritten content (secrets, converted credentials) is zeroed, not left in free space.
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mut store = Store { conn, path: path.to_owned(), temp };
        schema::migrate(&mut store.conn)?;
        Ok(store)
    }

    /// A pool of read-only connections to this database (opened on demand, after the migrations ran here).
    pub fn readers(&self) -> Readers {
        Readers::new(self.path.clone(), self.temp.clone())
    }

    /// Copies the WAL into the database file and truncates it, so values rewritten since (plain text replaced
    /// by sealed values) do not linger in old WAL frames.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Runs `f` in a transaction, committing when it returns `Ok`.
    pub fn tx<T, E: From<StoreError>>(
        &mut self,
        f: impl FnOnce(&Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let tx = self.conn.transaction().map_err(StoreError::from)?;
        let t = Tx { tx };
        let out = f(&t)?;
        t.tx.commit().map_err(StoreError::from)?;
        Ok(out)
    }
}

impl Tx<'_> {
    pub(crate) fn conn(&self) -> &Connection {
        &self.tx
    }

    pub fn meta_get(&self, key: &str) -> Result<Option<String>> {
        Ok(self.conn().query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    pub fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// Increments the counter stored under `key` and returns the new value (starting at 1).
    pub fn next_counter(&self, key: &str) -> Result<u64> {
        let cur: u64 = self.meta_get(key)?.and_then(|v| v.parse().ok()).unwrap_or(0);
        let next = cur + 1;
        self.meta_set(key, &next.to_string())?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests;
