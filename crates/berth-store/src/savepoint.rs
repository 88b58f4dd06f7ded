//! Savepoints: a part of a transaction that can be undone while the rest of it is kept. The control plane
//! uses one where a step is authorized only after it has been carried out (the infrastructure role's teardown
//! of a deleted service): a denied step is undone, and what the transaction wrote before it stays.

use crate::{StoreError, Tx};

impl Tx<'_> {
    /// Runs `f` inside a savepoint: its writes stay when it returns `Ok` and are undone, the rest of the
    /// transaction untouched, when it returns `Err`. Savepoints nest.
    pub fn savepoint<T, E: From<StoreError>>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T, E>) -> Result<T, E> {
        self.conn().execute_batch("SAVEPOINT berth_step").map_err(StoreError::from)?;
        match f(self) {
            Ok(v) => {
                self.conn().execute_batch("RELEASE berth_step").map_err(StoreError::from)?;
                Ok(v)
            }
            Err(e) => {
                self.conn().execute_batch("ROLLBACK TO berth_step; RELEASE berth_step").map_err(StoreError::from)?;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{Store, StoreError};

    #[test]
    fn a_failed_step_is_undone_and_the_rest_kept() {
        let mut store = Store::open_in_memory().expect("store");
        store
            .tx(|tx| {
                tx.meta_set("before", "1")?;
                let r: Result<(), StoreError> = tx.savepoint(|tx| {
                    tx.meta_set("inside", "1")?;
                    // A nested step that succeeds is undone with its failing parent.
                    tx.savepoint(|tx| tx.meta_set("nested", "1"))?;
                    Err(StoreError::Corrupt("denied".into()))
                });
                assert!(r.is_err());
                tx.savepoint(|tx| tx.meta_set("kept", "1"))?;
                Ok::<_, StoreError>(())
            })
            .expect("tx");
        store
            .tx(|tx| {
                assert_eq!(tx.meta_get("before")?.as_deref(), Some("1"));
                assert_eq!(tx.meta_get("inside")?, None);
                assert_eq!(tx.meta_get("nested")?, None);
                assert_eq!(tx.meta_get("kept")?.as_deref(), Some("1"));
                Ok::<_, StoreError>(())
            })
            .expect("tx");
    }
}
