//! Read-only connections beside the one writer. In WAL mode a reader sees the last committed state and
//! neither waits for the writer nor makes it wait, so the API's reads and long scans (FilterLogEvents over a
//! large group) never hold the writer's lock. The connections are opened `SQLITE_OPEN_READ_ONLY`: a write
//! through [`Readers::read`] is an SQLite error ("attempt to write a readonly database"), never a silent
//! write beside the writer's lock.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::{Result, StoreError, Tx};

/// At most this many read connections: more concurrent reads wait for one (on 2 cores more would only contend,
/// and every connection caches its own pages and parsed schema).
const MAX_CONNECTIONS: usize = 16;
/// How long a read waits for a connection to come back before it opens one more.
const WAIT_FOR_RETURN: Duration = Duration::from_millis(100);

/// A pool of read-only connections to a store's database, opened on demand and kept. `Sync`: share it by
/// reference.
pub struct Readers {
    path: PathBuf,
    pool: Mutex<Pool>,
    returned: Condvar,
    /// Keeps a temporary database alive while readers may open it.
    _temp: Option<Arc<TempDir>>,
}

#[derive(Default)]
struct Pool {
    idle: Vec<Connection>,
    /// Connections open now, idle or in use.
    open: usize,
}

/// Frees a taken connection's place in the pool if a read panics (the connection itself is dropped).
struct Place<'a>(&'a Readers);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.forget_one();
        }
    }
}

impl Readers {
    pub(crate) fn new(path: PathBuf, temp: Option<Arc<TempDir>>) -> Readers {
        Readers { path, pool: Mutex::new(Pool::default()), returned: Condvar::new(), _temp: temp }
    }

    /// An idle connection, a new one while fewer than [`MAX_CONNECTIONS`] are open, else the next one returned;
    /// after [`WAIT_FOR_RETURN`] a new one anyway (a read nested in another read must not wait forever), closed
    /// again when it is returned.
    fn take(&self) -> Result<Connection> {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        let mut waited = false;
        loop {
            if let Some(conn) = pool.idle.pop() {
                return Ok(conn);
            }
            if pool.open < MAX_CONNECTIONS || waited {
                pool.open += 1;
                drop(pool);
                return open_read_only(&self.path).inspect_err(|_| self.forget_one());
            }
            let (p, timeout) = self.returned.wait_timeout(pool, WAIT_FOR_RETURN).unwrap_or_else(|e| e.into_inner());
            pool = p;
            waited = timeout.timed_out();
        }
    }

    fn give_back(&self, conn: Connection) {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        if pool.open > MAX_CONNECTIONS {
            pool.open -= 1;
        } else {
            pool.idle.push(conn);
        }
        self.returned.notify_one();
    }

    fn forget_one(&self) {
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).open -= 1;
        self.returned.notify_one();
    }

    /// Runs `f` in a read transaction on a read-only connection: one consistent snapshot of what was committed
    /// when it began. Writes inside `f` fail.
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Tx<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let mut conn = self.take()?;
        let place = Place(self);
        let out = (|| {
            let t = Tx { tx: conn.transaction().map_err(StoreError::from)? };
            let out = f(&t);
            // Nothing to commit: ending the transaction releases its snapshot (the WAL can be checkpointed).
            t.tx.rollback().map_err(StoreError::from)?;
            out
        })();
        drop(place);
        self.give_back(conn);
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
    fn connections_are_kept_and_bounded_and_nested_reads_never_wait_forever() {
        use super::{MAX_CONNECTIONS, Readers};
        let store = Store::open_in_memory().expect("open");
        let readers = store.readers();
        for _ in 0..100 {
            readers.read(|t| t.meta_get("k")).expect("read");
        }
        assert_eq!(readers.pool.lock().expect("pool").open, 1, "one connection serves sequential reads");
        fn nest(r: &Readers, depth: usize) -> Result<usize, StoreError> {
            if depth == 0 {
                return Ok(0);
            }
            r.read(|t| {
                t.meta_get("k")?;
                Ok(nest(r, depth - 1)? + 1)
            })
        }
        assert_eq!(nest(&readers, MAX_CONNECTIONS + 2).expect("nested"), MAX_CONNECTIONS + 2);
        let pool = readers.pool.lock().expect("pool");
        assert_eq!((pool.open, pool.idle.len()), (MAX_CONNECTIONS, MAX_CONNECTIONS), "the extra ones were closed");
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
