//! Secrets Manager secrets (with their versions and staging labels) and SSM parameters (with their
//! version history). Values arrive here already sealed by the control plane's vault (secret values and
//! SecureStrings) or as plain text (String and StringList parameters); the store never sees a key.

use rusqlite::{OptionalExtension, Row, params};

use crate::{Epoch, Result, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct SecretRow {
    /// `arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random characters>`.
    pub arn: String,
    pub name: String,
    pub description: Option<String>,
    pub kms_key_id: Option<String>,
    pub created_at: Epoch,
    pub last_changed_at: Epoch,
    pub last_accessed_at: Option<Epoch>,
    /// When a scheduled deletion was requested (`DeletedDate`); `None` while the secret is live.
    pub deleted_at: Option<Epoch>,
    /// When a scheduled deletion becomes final.
    pub deletion_date: Option<Epoch>,
}

#[derive(Clone, PartialEq)]
pub struct SecretVersionRow {
    pub secret_arn: String,
    pub version_id: String,
    /// `SecretBinary` (base64 on the wire) rather than `SecretString`.
    pub binary: bool,
    /// The value, sealed with associated data naming the secret ARN and version id.
    pub sealed: Vec<u8>,
    pub created_at: Epoch,
}

impl std::fmt::Debug for SecretVersionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretVersionRow")
            .field("secret_arn", &self.secret_arn)
            .field("version_id", &self.version_id)
            .field("binary", &self.binary)
            .field("sealed", &format_args!("<{} bytes>", self.sealed.len()))
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParameterRow {
    /// As given (`/app/db/password` or `flat-name`).
    pub name: String,
    pub arn: String,
    /// `String`, `StringList` or `SecureString` (of the current version).
    pub kind: String,
    pub description: Option<String>,
    pub allowed_pattern: Option<String>,
    pub key_id: Option<String>,
    pub tier: String,
    pub data_type: String,
    /// The current version.
    pub version: i64,
    pub last_modified_at: Epoch,
    pub last_modified_user: String,
}

#[derive(Clone, PartialEq)]
pub struct ParameterVersionRow {
    pub name: String,
    pub version: i64,
    pub kind: String,
    /// Plain UTF-8 for `String`/`StringList`; sealed (bound to the ARN and version) for `SecureString`.
    pub value: Vec<u8>,
    pub last_modified_at: Epoch,
    pub last_modified_user: String,
}

impl std::fmt::Debug for ParameterVersionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParameterVersionRow")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("kind", &self.kind)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .finish()
    }
}

const SECRET_COLS: &str =
    "arn, name, description, kms_key_id, created_at, last_changed_at, last_accessed_at, deleted_at, deletion_date";

fn secret_row(r: &Row<'_>) -> rusqlite::Result<SecretRow> {
    Ok(SecretRow {
        arn: r.get(0)?,
        name: r.get(1)?,
        description: r.get(2)?,
        kms_key_id: r.get(3)?,
        created_at: r.get(4)?,
        last_changed_at: r.get(5)?,
        last_accessed_at: r.get(6)?,
        deleted_at: r.get(7)?,
        deletion_date: r.get(8)?,
    })
}

fn secret_version_row(r: &Row<'_>) -> rusqlite::Result<SecretVersionRow> {
    Ok(SecretVersionRow {
        secret_arn: r.get(0)?,
        version_id: r.get(1)?,
        binary: r.get(2)?,
        sealed: r.get(3)?,
        created_at: r.get(4)?,
    })
}

const PARAMETER_COLS: &str = "name, arn, kind, description, allowed_pattern, key_id, tier, data_type, version, \
     last_modified_at, last_modified_user";

fn parameter_row(r: &Row<'_>) -> rusqlite::Result<ParameterRow> {
    Ok(ParameterRow {
        name: r.get(0)?,
        arn: r.get(1)?,
        kind: r.get(2)?,
        description: r.get(3)?,
        allowed_pattern: r.get(4)?,
        key_id: r.get(5)?,
        tier: r.get(6)?,
        data_type: r.get(7)?,
        version: r.get(8)?,
        last_modified_at: r.get(9)?,
        last_modified_user: r.get(10)?,
    })
}

impl Tx<'_> {
    // ---- secrets

    pub fn secret_insert(&self, s: &SecretRow) -> Result<()> {
        self.conn().execute(
            &format!("INSERT INTO secrets({SECRET_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
            params![
                s.arn,
                s.name,
                s.description,
                s.kms_key_id,
                s.created_at,
                s.last_changed_at,
                s.last_accessed_at,
                s.deleted_at,
                s.deletion_date
            ],
        )?;
        Ok(())
    }

    pub fn secret_update(&self, s: &SecretRow) -> Result<()> {
        self.conn().execute(
            "UPDATE secrets SET description = ?2, kms_key_id = ?3, last_changed_at = ?4, last_accessed_at = ?5, \
             deleted_at = ?6, deletion_date = ?7 WHERE arn = ?1",
            params![
                s.arn,
                s.description,
                s.kms_key_id,
                s.last_changed_at,
                s.last_accessed_at,
                s.deleted_at,
                s.deletion_date
            ],
        )?;
        Ok(())
    }

    pub fn secret_by_arn(&self, arn: &str) -> Result<Option<SecretRow>> {
        let sql = format!("SELECT {SECRET_COLS} FROM secrets WHERE arn = ?1");
        Ok(self.conn().query_row(&sql, [arn], secret_row).optional()?)
    }

    pub fn secret_by_name(&self, name: &str) -> Result<Option<SecretRow>> {
        let sql = format!("SELECT {SECRET_COLS} FROM secrets WHERE name = ?1");
        Ok(self.conn().query_row(&sql, [name], secret_row).optional()?)
    }

    /// Every secret, by name.
    pub fn secrets_all(&self) -> Result<Vec<SecretRow>> {
        let mut st = self.conn().prepare(&format!("SELECT {SECRET_COLS} FROM secrets ORDER BY name"))?;
        let rows = st.query_map([], secret_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes a secret with its versions, staging labels and tags.
    pub fn secret_delete(&self, arn: &str) -> Result<()> {
        self.conn().execute("DELETE FROM secret_stages WHERE secret_arn = ?1", [arn])?;
        self.conn().execute("DELETE FROM secret_versions WHERE secret_arn = ?1", [arn])?;
        self.conn().execute("DELETE FROM tags WHERE resource_arn = ?1", [arn])?;
        self.conn().execute("DELETE FROM secrets WHERE arn = ?1", [arn])?;
        Ok(())
    }

    /// Finishes every scheduled deletion due at `now`; returns the ARNs deleted.
    pub fn secrets_purge_due(&self, now: Epoch) -> Result<Vec<String>> {
        let due: Vec<String> = {
            let mut st = self.conn().prepare("SELECT arn FROM secrets WHERE deletion_date <= ?1")?;
            let rows = st.query_map([now], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for arn in &due {
            self.secret_delete(arn)?;
        }
        Ok(due)
    }

    pub fn secret_version_insert(&self, v: &SecretVersionRow) -> Result<()> {
        self.conn().execute(
            "INSERT INTO secret_versions(secret_arn, version_id, is_binary, sealed, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![v.secret_arn, v.version_id, v.binary, v.sealed, v.created_at],
        )?;
        Ok(())
    }

    pub fn secret_version_get(&self, arn: &str, version_id: &str) -> Result<Option<SecretVersionRow>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT secret_arn, version_id, is_binary, sealed, created_at FROM secret_versions \
                 WHERE secret_arn = ?1 AND version_id = ?2",
                params![arn, version_id],
                secret_version_row,
            )
            .optional()?)
    }

    /// A secret's versions, oldest first.
    pub fn secret_versions(&self, arn: &str) -> Result<Vec<SecretVersionRow>> {
        let mut st = self.conn().prepare(
            "SELECT secret_arn, version_id, is_binary, sealed, created_at FROM secret_versions \
             WHERE secret_arn = ?1 ORDER BY created_at, rowid",
        )?;
        let rows = st.query_map([arn], secret_version_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A secret's staging labels: (stage, version id), by stage.
    pub fn secret_stages(&self, arn: &str) -> Result<Vec<(String, String)>> {
        let mut st =
            self.conn().prepare("SELECT stage, version_id FROM secret_stages WHERE secret_arn = ?1 ORDER BY stage")?;
        let rows = st.query_map([arn], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Attaches `stage` to `version_id`, moving it off whichever version had it.
    pub fn secret_stage_set(&self, arn: &str, stage: &str, version_id: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO secret_stages(secret_arn, stage, version_id) VALUES (?1, ?2, ?3) \
             ON CONFLICT(secret_arn, stage) DO UPDATE SET version_id = excluded.version_id",
            params![arn, stage, version_id],
        )?;
        Ok(())
    }

    /// Removes versions that carry no staging label, keeping the `keep` newest versions overall.
    pub fn secret_versions_prune(&self, arn: &str, keep: usize) -> Result<()> {
        self.conn().execute(
            "DELETE FROM secret_versions WHERE secret_arn = ?1 \
             AND version_id NOT IN (SELECT version_id FROM secret_stages WHERE secret_arn = ?1) \
             AND rowid NOT IN (SELECT rowid FROM secret_versions WHERE secret_arn = ?1 \
                               ORDER BY created_at DESC, rowid DESC LIMIT ?2)",
            params![arn, keep as i64],
        )?;
        Ok(())
    }

    // ---- SSM parameters

    /// Inserts or replaces a parameter's metadata row.
    pub fn parameter_put(&self, p: &ParameterRow) -> Result<()> {
        self.conn().execute(
            &format!(
                "INSERT INTO parameters({PARAMETER_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                 ON CONFLICT(name) DO UPDATE SET arn = excluded.arn, kind = excluded.kind, \
                 description = excluded.description, allowed_pattern = excluded.allowed_pattern, \
                 key_id = excluded.key_id, tier = excluded.tier, data_type = excluded.data_type, \
                 version = excluded.version, last_modified_at = excluded.last_modified_at, \
                 last_modified_user = excluded.last_modified_user"
            ),
            params![
                p.name,
                p.arn,
                p.kind,
                p.description,
                p.allowed_pattern,
                p.key_id,
                p.tier,
                p.data_type,
                p.version,
                p.last_modified_at,
                p.last_modified_user
            ],
        )?;
        Ok(())
    }

    pub fn parameter_get(&self, name: &str) -> Result<Option<ParameterRow>> {
        let sql = format!("SELECT {PARAMETER_COLS} FROM parameters WHERE name = ?1");
        Ok(self.conn().query_row(&sql, [name], parameter_row).optional()?)
    }

    /// Every parameter, by name.
    pub fn parameters_all(&self) -> Result<Vec<ParameterRow>> {
        let mut st = self.conn().prepare(&format!("SELECT {PARAMETER_COLS} FROM parameters ORDER BY name"))?;
        let rows = st.query_map([], parameter_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Parameters whose names start with `prefix`, by name.
    pub fn parameters_with_prefix(&self, prefix: &str) -> Result<Vec<ParameterRow>> {
        let mut st = self.conn().prepare(&format!(
            "SELECT {PARAMETER_COLS} FROM parameters WHERE substr(name, 1, length(?1)) = ?1 ORDER BY name"
        ))?;
        let rows = st.query_map([prefix], parameter_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Deletes a parameter with its history and tags; false if there was none.
    pub fn parameter_delete(&self, name: &str) -> Result<bool> {
        let Some(p) = self.parameter_get(name)? else { return Ok(false) };
        self.conn().execute("DELETE FROM parameter_versions WHERE name = ?1", [name])?;
        self.conn().execute("DELETE FROM tags WHERE resource_arn = ?1", [&p.arn])?;
        self.conn().execute("DELETE FROM parameters WHERE name = ?1", [name])?;
        Ok(true)
    }

    pub fn parameter_version_insert(&self, v: &ParameterVersionRow) -> Result<()> {
        self.conn().execute(
            "INSERT INTO parameter_versions(name, version, kind, value, last_modified_at, last_modified_user) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![v.name, v.version, v.kind, v.value, v.last_modified_at, v.last_modified_user],
        )?;
        Ok(())
    }

    pub fn parameter_version_get(&self, name: &str, version: i64) -> Result<Option<ParameterVersionRow>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT name, version, kind, value, last_modified_at, last_modified_user FROM parameter_versions \
                 WHERE name = ?1 AND version = ?2",
                params![name, version],
                |r| {
                    Ok(ParameterVersionRow {
                        name: r.get(0)?,
                        version: r.get(1)?,
                        kind: r.get(2)?,
                        value: r.get(3)?,
                        last_modified_at: r.get(4)?,
                        last_modified_user: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    /// Keeps the `keep` newest versions of a parameter's history.
    pub fn parameter_versions_prune(&self, name: &str, keep: usize) -> Result<()> {
        self.conn().execute(
            "DELETE FROM parameter_versions WHERE name = ?1 AND version NOT IN \
             (SELECT version FROM parameter_versions WHERE name = ?1 ORDER BY version DESC LIMIT ?2)",
            params![name, keep as i64],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn secret(arn: &str, name: &str) -> SecretRow {
        SecretRow {
            arn: arn.into(),
            name: name.into(),
            description: None,
            kms_key_id: None,
            created_at: 1.0,
            last_changed_at: 1.0,
            last_accessed_at: None,
            deleted_at: None,
            deletion_date: None,
        }
    }

    fn version(arn: &str, id: &str, at: f64) -> SecretVersionRow {
        SecretVersionRow {
            secret_arn: arn.into(),
            version_id: id.into(),
            binary: false,
            sealed: vec![1, 2],
            created_at: at,
        }
    }

    #[test]
    fn secrets_versions_stages_and_purge() {
        let mut store = Store::open_in_memory().expect("store");
        store
            .tx(|t| {
                t.secret_insert(&secret("arn:a-111111", "a"))?;
                assert!(t.secret_insert(&secret("arn:a-222222", "a")).is_err(), "names are unique");
                t.secret_version_insert(&version("arn:a-111111", "v1", 1.0))?;
                t.secret_version_insert(&version("arn:a-111111", "v2", 2.0))?;
                t.secret_version_insert(&version("arn:a-111111", "v3", 3.0))?;
                t.secret_stage_set("arn:a-111111", "AWSCURRENT", "v1")?;
                t.secret_stage_set("arn:a-111111", "AWSCURRENT", "v3")?;
                t.secret_stage_set("arn:a-111111", "AWSPREVIOUS", "v2")?;
                assert_eq!(
                    t.secret_stages("arn:a-111111")?,
                    vec![("AWSCURRENT".to_string(), "v3".to_string()), ("AWSPREVIOUS".into(), "v2".into())]
                );
                t.secret_versions_prune("arn:a-111111", 1)?;
                let ids: Vec<String> = t.secret_versions("arn:a-111111")?.into_iter().map(|v| v.version_id).collect();
                assert_eq!(ids, vec!["v2", "v3"], "an unlabelled old version goes, labelled ones stay");
                t.tags_put("arn:a-111111", &[("k".into(), "v".into())])?;
                let mut s = secret("arn:a-111111", "a");
                s.deletion_date = Some(10.0);
                t.secret_update(&s)?;
                assert!(t.secrets_purge_due(9.0)?.is_empty());
                assert_eq!(t.secrets_purge_due(10.0)?, vec!["arn:a-111111".to_string()]);
                assert!(t.secret_by_name("a")?.is_none());
                assert!(t.secret_versions("arn:a-111111")?.is_empty());
                assert!(t.tags_get("arn:a-111111")?.is_empty());
                Ok::<_, crate::StoreError>(())
            })
            .expect("tx");
    }

    #[test]
    fn parameters_history_prefix_and_delete() {
        let mut store = Store::open_in_memory().expect("store");
        store
            .tx(|t| {
                for (name, v) in [("/app/a", 1), ("/app/b/c", 1), ("/apple", 1), ("x", 1)] {
                    t.parameter_put(&ParameterRow {
                        name: name.into(),
                        arn: format!("arn:{name}"),
                        kind: "String".into(),
                        description: None,
                        allowed_pattern: None,
                        key_id: None,
                        tier: "Standard".into(),
                        data_type: "text".into(),
                        version: v,
                        last_modified_at: 1.0,
                        last_modified_user: "root".into(),
                    })?;
                }
                let names: Vec<String> = t.parameters_with_prefix("/app/")?.into_iter().map(|p| p.name).collect();
                assert_eq!(names, vec!["/app/a", "/app/b/c"]);
                for v in 1..=4 {
                    t.parameter_version_insert(&ParameterVersionRow {
                        name: "x".into(),
                        version: v,
                        kind: "String".into(),
                        value: format!("v{v}").into_bytes(),
                        last_modified_at: 1.0,
                        last_modified_user: "root".into(),
                    })?;
                }
                t.parameter_versions_prune("x", 2)?;
                assert!(t.parameter_version_get("x", 2)?.is_none());
                assert_eq!(t.parameter_version_get("x", 4)?.map(|v| v.value), Some(b"v4".to_vec()));
                assert!(t.parameter_delete("x")?);
                assert!(!t.parameter_delete("x")?);
                assert!(t.parameter_version_get("x", 4)?.is_none());
                Ok::<_, crate::StoreError>(())
            })
            .expect("tx");
    }
}
