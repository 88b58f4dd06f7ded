//! Task-role credentials: one row per task that has a task role, holding the id its credentials endpoint URL
//! names, the bearer token the task presents, and the role session currently handed to it.

use rusqlite::{OptionalExtension, Row, params};

use crate::{Epoch, Result, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct TaskCredentialRow {
    /// The id in `/v2/credentials/<id>` (a UUID, as the ECS agent uses).
    pub credential_id: String,
    pub task_id: String,
    pub role_arn: String,
    /// The value of `AWS_CONTAINER_AUTHORIZATION_TOKEN` given to the task.
    pub token: String,
    /// The `sts_sessions` key currently served to the task, once one was issued.
    pub access_key_id: Option<String>,
    pub created_at: Epoch,
}

const COLS: &str = "credential_id, task_id, role_arn, token, access_key_id, created_at";

fn row(r: &Row<'_>) -> rusqlite::Result<TaskCredentialRow> {
    Ok(TaskCredentialRow {
        credential_id: r.get(0)?,
        task_id: r.get(1)?,
        role_arn: r.get(2)?,
        token: r.get(3)?,
        access_key_id: r.get(4)?,
        created_at: r.get(5)?,
    })
}

impl Tx<'_> {
    pub fn task_credential_insert(&self, c: &TaskCredentialRow) -> Result<()> {
        self.conn().execute(
            &format!("INSERT INTO task_credentials({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![c.credential_id, c.task_id, c.role_arn, c.token, c.access_key_id, c.created_at],
        )?;
        Ok(())
    }

    pub fn task_credential_get(&self, credential_id: &str) -> Result<Option<TaskCredentialRow>> {
        let sql = format!("SELECT {COLS} FROM task_credentials WHERE credential_id = ?1");
        Ok(self.conn().query_row(&sql, [credential_id], row).optional()?)
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
                    token: "tok".into(),
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
}
