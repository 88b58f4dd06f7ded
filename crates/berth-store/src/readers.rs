//! Read-only connections beside the one writer. In WAL mode a reader sees the last committed state and
//! neither waits for the writer nor makes it wait, so the API's reads and long scans (FilterLogEvents over a
//! large group) never hold the writer's lock. The connections are opened `SQLITE_OPEN_READ_ONLY`: a write
//! through [`Readers::read`] is an SQLite error ("attempt to write a readonly database"), never a silent
//! write beside the writer's lock.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::{Result, StoreError, Tx};

/// Idle connections kept for the next reads; more concurrent reads open (and then close) their own.
const MAX_IDLE: usize = 8;

/// A pool of read-only connections to a store's database. `Sync`: share it by reference.
pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Keeps a temporary database alive while readers may open it.
    _temp: Option<Arc<TempDir>>,
}

impl Readers {
    pub(crate) fn new(path: PathBuf, temp: Option<Arc<TempDir>>) -> Readers {
        Readers { path, idle: Mutex::new(Vec::new()), _temp: temp }
    }

    /// Runs `f` in a read transaction on a read-only connection: one consistent snapshot of what was committed
    /// when it began. Writes inside `f` fail.
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match idle {
            Some(c) => c,
            None => open_read_only(&self.path)?,
        };
        let out = {
            let t = Tx { tx: conn.transaction().map_err(StoreError::from)? };
            let out = f(&t);
            // Nothing to commit: ending the transaction releases its snapshot (the WAL can be checkpointed).
            t.tx.rollback().map_err(StoreError::from)?;
            out
        };
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
        out
    }
}

fn open_read_only(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// The directory of a temporary database ([`crate::Store::open_in_memory`]), removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> Result<TempDir> {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() { shm.to_owned() } else { std::env::temp_dir() };
        let dir = base.join(format!("berth-store-{}-{}", std::process::id(), berth_core::ids::random_hex(16)));
        std::fs::create_dir(&dir).map_err(|e| StoreError::Temporary(format!("{}: {e}", dir.display())))?;
        Ok(TempDir(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use crate::{Store, StoreError};

    #[test]
    fn a_reader_cannot_write() {
        let store = Store::open_in_memory().expect("open");
        let readers = store.readers();
        let err = readers.read(|t| t.meta_set("k", "v")).expect_err("a write through a reader");
        match err {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                assert_eq!(e.code, rusqlite::ErrorCode::ReadOnly, "{e}")
            }
            other => panic!("not a read-only error: {other}"),
        }
        assert_eq!(readers.read(|t| t.meta_get("k")).expect("read"), None);
    }

    #[test]
    fn a_reader_sees_what_was_committed_without_waiting_for_the_writer() {
        let mut store = Store::open_in_memory().expect("open");
        let readers = store.readers();
        store.tx(|t| t.meta_set("k", "1")).expect("write");
        assert_eq!(readers.read(|t| t.meta_get("k")).expect("read").as_deref(), Some("1"));
        // The writer's open transaction neither blocks a reader nor shows it uncommitted writes.
        store
            .tx(|t| {
                t.meta_set("k", "2")?;
                assert_eq!(readers.read(|r| r.meta_get("k"))?.as_deref(), Some("1"));
                Ok::<_, StoreError>(())
            })
            .expect("write");
        assert_eq!(readers.read(|t| t.meta_get("k")).expect("read").as_deref(), Some("2"));
    }

    #[test]
    fn a_temporary_database_goes_with_its_store_and_readers() {
        let store = Store::open_in_memory().expect("open");
        let dir = store.temp.as_ref().expect("temporary").path().to_owned();
        let readers = store.readers();
        readers.read(|t| t.meta_get("k")).expect("read");
        drop(store);
        assert!(dir.is_dir(), "the readers still use it");
        drop(readers);
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}
