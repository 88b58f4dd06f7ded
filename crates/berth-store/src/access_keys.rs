//! Long-term access keys (the root user's and IAM users' `AKIA…` keys) in `credentials`. The secret access key
//! is stored only sealed by the control plane's vault (bound to the key id); rows an older berth wrote in plain
//! text keep it in `legacy_secret` until the control plane seals it at start, and are not served until then.

use rusqlite::{OptionalExtension, Row, params};

use crate::{Epoch, Result, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct CredentialRow {
    /// `AKIA…`.
    pub access_key_id: String,
    /// The secret access key, sealed by the control plane's vault (bound to the key id); never stored in plain
    /// text.
    pub sealed: Vec<u8>,
    /// The root user's or the IAM user's ARN.
    pub principal_arn: String,
    pub user_id: String,
    pub created_at: Epoch,
}

const COLS: &str = "access_key_id, sealed, principal_arn, user_id, created_at";

fn row(r: &Row<'_>) -> rusqlite::Result<CredentialRow> {
    Ok(CredentialRow {
        access_key_id: r.get(0)?,
        sealed: r.get(1)?,
        principal_arn: r.get(2)?,
        user_id: r.get(3)?,
        created_at: r.get(4)?,
    })
}

impl Tx<'_> {
    pub fn credential_put(&self, c: &CredentialRow) -> Result<()> {
        self.conn().execute(
            &format!("INSERT INTO credentials({COLS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
            params![c.access_key_id, c.sealed, c.principal_arn, c.user_id, c.created_at],
        )?;
        Ok(())
    }

    /// An access key (one still awaiting sealing is not served).
    pub fn credential_get(&self, access_key_id: &str) -> Result<Option<CredentialRow>> {
        let sql = format!("SELECT {COLS} FROM credentials WHERE access_key_id = ?1 AND sealed IS NOT NULL");
        Ok(self.conn().query_row(&sql, [access_key_id], row).optional()?)
    }

    /// The sealed access keys of a principal, oldest first.
    pub fn credentials_of(&self, principal_arn: &str) -> Result<Vec<CredentialRow>> {
        let sql = format!(
            "SELECT {COLS} FROM credentials WHERE principal_arn = ?1 AND sealed IS NOT NULL ORDER BY created_at"
        );
        let mut st = self.conn().prepare(&sql)?;
        let rows = st.query_map([principal_arn], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes an access key; `false` when there was none.
    pub fn credential_delete(&self, access_key_id: &str) -> Result<bool> {
        Ok(self.conn().execute("DELETE FROM credentials WHERE access_key_id = ?1", [access_key_id])? > 0)
    }

    /// Access keys written in plain text before sealing: (access key id, secret access key).
    pub fn credentials_unsealed(&self) -> Result<Vec<(String, String)>> {
        let mut st = self.conn().prepare(
            "SELECT access_key_id, COALESCE(legacy_secret, '') FROM credentials WHERE sealed IS NULL \
             ORDER BY access_key_id",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Stores an access key's sealed secret and forgets its plain text.
    pub fn credential_seal(&self, access_key_id: &str, sealed: &[u8]) -> Result<()> {
        self.conn().execute(
            "UPDATE credentials SET sealed = ?2, legacy_secret = NULL WHERE access_key_id = ?1",
            params![access_key_id, sealed],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn key(id: &str, principal: &str, at: Epoch) -> CredentialRow {
        CredentialRow {
            access_key_id: id.into(),
            sealed: vec![1, 2, 3],
            principal_arn: principal.into(),
            user_id: "AIDA1".into(),
            created_at: at,
        }
    }

    #[test]
    fn access_keys_round_trip() {
        let mut store = Store::open_in_memory().expect("store");
        store
            .tx(|tx| {
                let (a, b) = (key("AKIA2", "arn:u", 2.0), key("AKIA1", "arn:u", 1.0));
                tx.credential_put(&a)?;
                tx.credential_put(&b)?;
                tx.credential_put(&key("AKIA3", "arn:other", 3.0))?;
                assert!(tx.credential_put(&a).is_err(), "access key ids are unique");
                assert_eq!(tx.credential_get("AKIA2")?, Some(a.clone()));
                assert_eq!(tx.credential_get("AKIA9")?, None);
                assert_eq!(tx.credentials_of("arn:u")?, [b.clone(), a.clone()], "oldest first");
                assert!(tx.credential_delete("AKIA2")?);
                assert!(!tx.credential_delete("AKIA2")?);
                assert_eq!(tx.credentials_of("arn:u")?, [b]);
                Ok::<_, crate::StoreError>(())
            })
            .expect("tx");
    }

    #[test]
    fn the_migration_moves_plain_text_secrets_aside_for_sealing() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("db");
        let before = crate::schema::version_before("credentials_sealed").expect("the migration exists");
        crate::schema::migrate_to(&mut conn, before).expect("old schema");
        conn.execute(
            "INSERT INTO credentials(access_key_id, secret_access_key, principal_arn, user_id, created_at) \
             VALUES ('AKIA1', 'plain-secret', 'arn:u', 'AIDA1', 1.0)",
            [],
        )
        .expect("old row");
        crate::schema::migrate(&mut conn).expect("migrate");
        let mut store = Store { conn, path: Default::default(), temp: None };
        store
            .tx(|tx| {
                assert_eq!(tx.credential_get("AKIA1")?, None, "not served until sealed");
                assert_eq!(tx.credentials_of("arn:u")?, []);
                assert_eq!(tx.credentials_unsealed()?, [("AKIA1".to_string(), "plain-secret".to_string())]);
                tx.credential_seal("AKIA1", &[7, 7])?;
                let sealed = tx.credential_get("AKIA1")?.expect("sealed");
                assert_eq!((sealed.sealed, sealed.principal_arn, sealed.created_at), (vec![7, 7], "arn:u".into(), 1.0));
                assert!(tx.credentials_unsealed()?.is_empty());
                let plain: i64 = tx.conn().query_row(
                    "SELECT COUNT(*) FROM credentials WHERE legacy_secret IS NOT NULL",
                    [],
                    |r| r.get(0),
                )?;
                assert_eq!(plain, 0, "the plain text is gone");
                Ok::<_, crate::StoreError>(())
            })
            .expect("tx");
    }
}
