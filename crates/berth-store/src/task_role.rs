//! Task-role credentials: one row per task that has a task role, holding the id its credentials endpoint URL
//! names, a SHA-256 of the bearer token the task presents (never the token), and the role session currently
//! handed to it.

use rusqlite::{OptionalExtension, Row, params};

use crate::{Epoch, Result, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct TaskCredentialRow {
    /// The id in `/v2/credentials/<id>` (a UUID, as the ECS agent uses).
    pub credential_id: String,
    pub task_id: String,
    pub role_arn: String,
    /// The hex SHA-256 of the `AWS_CONTAINER_AUTHORIZATION_TOKEN` given to the task.
    pub token_hash: String,
    /// The `sts_sessions` key currently served to the task, once one was issued.
    pub access_key_id: Option<String>,
    pub created_at: Epoch,
}

const COLS: &str = "credential_id, task_id, role_arn, token_hash, access_key_id, created_at";

fn row(r: &Row<'_>) -> rusqlite::Result<TaskCredentialRow> {
    Ok(TaskCredentialRow {
        credential_id: r.get(0)?,
        task_id: r.get(1)?,
        role_arn: r.get(2)?,
        token_hash: r.get(3)?,
        access_key_id: r.get(4)?,
        created_at: r.get(5)?,
    })
}

impl Tx<'_> {
    pub fn task_credential_insert(&self, c: &TaskCredentialRow) -> Result<()> {
        self.conn().execute(
            &format!("INSERT INTO task_credentials({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![c.credential_id, c.task_id, c.role_arn, c.token_hash, c.access_key_id, c.created_at],
        )?;
        Ok(())
    }

    /// A credential id's row (one still awaiting conversion from a plain-text token is not served).
    pub fn task_credential_get(&self, credential_id: &str) -> Result<Option<TaskCredentialRow>> {
        let sql = format!("SELECT {COLS} FROM task_credentials WHERE credential_id = ?1 AND token_hash IS NOT NULL");
        Ok(self.conn().query_row(&sql, [credential_id], row).optional()?)
    }

    /// Credentials written with a plain-text token before hashing: (credential id, token).
    pub fn task_credentials_unhashed(&self) -> Result<Vec<(String, String)>> {
        let mut stmt = self.conn().prepare(
            "SELECT credential_id, COALESCE(legacy_token, '') FROM task_credentials WHERE token_hash IS NULL \
             ORDER BY credential_id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Stores a credential's token hash and forgets its plain-text token.
    pub fn task_credential_set_token_hash(&self, credential_id: &str, token_hash: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE task_credentials SET token_hash = ?2, legacy_token = NULL WHERE credential_id = ?1",
            params![credential_id, token_hash],
        )?;
        Ok(())
    }

    /// Records the role session now served for this credential id.
    pub fn task_credential_set_session(&self, credential_id: &str, access_key_id: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE task_credentials SET access_key_id = ?2 WHERE credential_id = ?1",
            params![credential_id, access_key_id],
        )?;
        Ok(())
    }

    /// Forgets the credentials of tasks whose rows are gone (stopped tasks past their retention).
    pub fn task_credentials_prune(&self) -> Result<usize> {
        Ok(self.conn().execute("DELETE FROM task_credentials WHERE task_id NOT IN (SELECT id FROM tasks)", [])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn task_credentials_round_trip() {
        let mut store = Store::open_in_memory().expect("store");
        store
            .tx(|tx| {
                let c = TaskCredentialRow {
                    credential_id: "c1".into(),
                    task_id: "t1".into(),
                    role_arn: "arn:aws:iam::123456789012:role/App".into(),
                    token_hash: "ab12".into(),
                    access_key_id: None,
                    created_at: 1.0,
                };
                tx.task_credential_insert(&c)?;
                assert_eq!(tx.task_credential_get("c1")?, Some(c.clone()));
                assert_eq!(tx.task_credential_get("c2")?, None);
                tx.task_credential_set_session("c1", "ASIA1")?;
                assert_eq!(tx.task_credential_get("c1")?.and_then(|r| r.access_key_id), Some("ASIA1".into()));
                assert!(tx.task_credential_insert(&c).is_err(), "credential ids are unique");
                // No task row "t1" exists, so pruning forgets it.
                assert_eq!(tx.task_credentials_prune()?, 1);
                assert_eq!(tx.task_credential_get("c1")?, None);
                Ok::<_, crate::StoreError>(())
            })
            .expect("tx");
    }

    #[test]
    fn the_migration_moves_plain_text_aside_for_conversion() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("db");
        let before = crate::schema::version_before("task_credentials_hashed").expect("the migration exists");
        crate::schema::migrate_to(&mut conn, before).expect("old schema");
        conn.execute_batch(
            "INSERT INTO task_credentials(credential_id, task_id, role_arn, token, access_key_id, created_at) \
             VALUES ('c1', 't1', 'arn:r', 'plain-token', 'ASIA1', 1.0); \
             INSERT INTO sts_sessions(access_key_id, secret_access_key, session_token, role_name, role_id, \
             session_name, assumed_role_arn, expires_at, created_at) \
             VALUES ('ASIA1', 'plain-secret', 'plain-session', 'r', 'AROA1', 's', 'arn:s', 9.0, 1.0);",
        )
        .expect("old rows");
        crate::schema::migrate(&mut conn).expect("migrate");
        let mut store = Store { conn, path: Default::default(), temp: None };
        store
            .tx(|tx| {
                assert_eq!(tx.task_credential_get("c1")?, None, "not served until converted");
                assert_eq!(tx.task_credentials_unhashed()?, [("c1".to_string(), "plain-token".to_string())]);
                assert_eq!(
                    tx.sts_sessions_unsealed()?,
                    [("ASIA1".to_string(), "plain-secret".to_string(), "plain-session".to_string())]
                );
                assert_eq!(tx.sts_session_get("ASIA1")?, None, "not served until sealed");
                tx.task_credential_set_token_hash("c1", "hash")?;
                tx.sts_session_seal("ASIA1", &[9, 9])?;
                let c = tx.task_credential_get("c1")?.expect("converted");
                assert_eq!((c.token_hash.as_str(), c.access_key_id.as_deref()), ("hash", Some("ASIA1")));
                assert_eq!(tx.sts_session_get("ASIA1")?.map(|s| (s.sealed, s.expires_at)), Some((vec![9, 9], 9.0)));
                assert!(tx.task_credentials_unhashed()?.is_empty() && tx.sts_sessions_unsealed()?.is_empty());
                let plain: i64 = tx.conn().query_row(
                    "SELECT (SELECT COUNT(*) FROM task_credentials WHERE legacy_token IS NOT NULL) + \
                     (SELECT COUNT(*) FROM sts_sessions WHERE legacy_secret IS NOT NULL OR legacy_token IS NOT NULL)",
                    [],
                    |r| r.get(0),
                )?;
                assert_eq!(plain, 0, "the plain text is gone");
                Ok::<_, crate::StoreError>(())
            })
            .expect("tx");
    }
}
