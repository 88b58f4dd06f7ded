//! IAM and STS rows: users, roles, inline and customer managed policies (with versions), attachments and role
//! sessions. User access keys are [`crate::CredentialRow`]s whose `principal_arn` is the user's ARN.
//!
//! Names of users, roles and policies are unique case-insensitively, as in IAM (the columns are `NOCASE`).

use rusqlite::{OptionalExtension, Row, params};

use crate::{Epoch, Result, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct IamUserRow {
    pub name: String,
    /// `AIDA…`.
    pub user_id: String,
    pub arn: String,
    pub path: String,
    pub created_at: Epoch,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IamRoleRow {
    pub name: String,
    /// `AROA…`.
    pub role_id: String,
    pub arn: String,
    pub path: String,
    /// The trust policy as given (decoded JSON text).
    pub trust_policy: String,
    pub description: Option<String>,
    /// Seconds.
    pub max_session_duration: i64,
    pub created_at: Epoch,
}

/// Who holds an inline policy or an attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IamOwner {
    User,
    Role,
}

impl IamOwner {
    fn as_str(self) -> &'static str {
        match self {
            IamOwner::User => "user",
            IamOwner::Role => "role",
        }
    }
}

/// A customer managed policy.
#[derive(Debug, Clone, PartialEq)]
pub struct IamPolicyRow {
    pub arn: String,
    pub name: String,
    /// `ANPA…`.
    pub policy_id: String,
    pub path: String,
    pub description: Option<String>,
    pub default_version: String,
    pub created_at: Epoch,
    pub updated_at: Epoch,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IamPolicyVersionRow {
    pub policy_arn: String,
    pub version_id: String,
    pub document: String,
    pub created_at: Epoch,
}

/// Temporary credentials of a role session (`AssumeRole`, task roles).
#[derive(Debug, Clone, PartialEq)]
pub struct StsSessionRow {
    /// `ASIA…`.
    pub access_key_id: String,
    /// The secret access key and session token, sealed by the control plane's vault (bound to the key id);
    /// never stored in plain text.
    pub sealed: Vec<u8>,
    pub role_name: String,
    pub role_id: String,
    pub session_name: String,
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub assumed_role_arn: String,
    pub expires_at: Epoch,
    pub created_at: Epoch,
}

fn user_row(r: &Row<'_>) -> rusqlite::Result<IamUserRow> {
    Ok(IamUserRow { name: r.get(0)?, user_id: r.get(1)?, arn: r.get(2)?, path: r.get(3)?, created_at: r.get(4)? })
}

const ROLE_COLS: &str = "name, role_id, arn, path, trust_policy, description, max_session_duration, created_at";

fn role_row(r: &Row<'_>) -> rusqlite::Result<IamRoleRow> {
    Ok(IamRoleRow {
        name: r.get(0)?,
        role_id: r.get(1)?,
        arn: r.get(2)?,
        path: r.get(3)?,
        trust_policy: r.get(4)?,
        description: r.get(5)?,
        max_session_duration: r.get(6)?,
        created_at: r.get(7)?,
    })
}

const POLICY_COLS: &str = "arn, name, policy_id, path, description, default_version, created_at, updated_at";

fn policy_row(r: &Row<'_>) -> rusqlite::Result<IamPolicyRow> {
    Ok(IamPolicyRow {
        arn: r.get(0)?,
        name: r.get(1)?,
        policy_id: r.get(2)?,
        path: r.get(3)?,
        description: r.get(4)?,
        default_version: r.get(5)?,
        created_at: r.get(6)?,
        updated_at: r.get(7)?,
    })
}

const SESSION_COLS: &str =
    "access_key_id, sealed, role_name, role_id, session_name, assumed_role_arn, expires_at, created_at";

fn session_row(r: &Row<'_>) -> rusqlite::Result<StsSessionRow> {
    Ok(StsSessionRow {
        access_key_id: r.get(0)?,
        sealed: r.get(1)?,
        role_name: r.get(2)?,
        role_id: r.get(3)?,
        session_name: r.get(4)?,
        assumed_role_arn: r.get(5)?,
        expires_at: r.get(6)?,
        created_at: r.get(7)?,
    })
}

fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<T>>) -> Result<Vec<T>> {
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

impl Tx<'_> {
    // ---- users

    pub fn iam_user_insert(&self, u: &IamUserRow) -> Result<()> {
        self.conn().execute(
            "INSERT INTO iam_users(name, user_id, arn, path, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![u.name, u.user_id, u.arn, u.path, u.created_at],
        )?;
        Ok(())
    }

    pub fn iam_user_get(&self, name: &str) -> Result<Option<IamUserRow>> {
        let sql = "SELECT name, user_id, arn, path, created_at FROM iam_users WHERE name = ?1";
        Ok(self.conn().query_row(sql, [name], user_row).optional()?)
    }

    pub fn iam_users(&self) -> Result<Vec<IamUserRow>> {
        let mut st = self.conn().prepare("SELECT name, user_id, arn, path, created_at FROM iam_users ORDER BY name")?;
        collect(st.query_map([], user_row)?)
    }

    pub fn iam_user_delete(&self, name: &str) -> Result<()> {
        self.conn().execute("DELETE FROM iam_users WHERE name = ?1", [name])?;
        Ok(())
    }

    // ---- roles

    pub fn iam_role_insert(&self, r: &IamRoleRow) -> Result<()> {
        self.conn().execute(
            &format!("INSERT INTO iam_roles({ROLE_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            params![
                r.name,
                r.role_id,
                r.arn,
                r.path,
                r.trust_policy,
                r.description,
                r.max_session_duration,
                r.created_at
            ],
        )?;
        Ok(())
    }

    pub fn iam_role_get(&self, name: &str) -> Result<Option<IamRoleRow>> {
        let sql = format!("SELECT {ROLE_COLS} FROM iam_roles WHERE name = ?1");
        Ok(self.conn().query_row(&sql, [name], role_row).optional()?)
    }

    pub fn iam_roles(&self) -> Result<Vec<IamRoleRow>> {
        let mut st = self.conn().prepare(&format!("SELECT {ROLE_COLS} FROM iam_roles ORDER BY name"))?;
        collect(st.query_map([], role_row)?)
    }

    pub fn iam_role_set_trust(&self, name: &str, trust_policy: &str) -> Result<()> {
        self.conn().execute("UPDATE iam_roles SET trust_policy = ?2 WHERE name = ?1", params![name, trust_policy])?;
        Ok(())
    }

    pub fn iam_role_delete(&self, name: &str) -> Result<()> {
        self.conn().execute("DELETE FROM iam_roles WHERE name = ?1", [name])?;
        Ok(())
    }

    // ---- inline policies

    /// Creates or replaces an inline policy.
    pub fn iam_inline_put(&self, owner: IamOwner, owner_name: &str, policy_name: &str, document: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO iam_inline_policies(owner_kind, owner_name, policy_name, document) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT(owner_kind, owner_name, policy_name) DO UPDATE SET document = excluded.document",
            params![owner.as_str(), owner_name, policy_name, document],
        )?;
        Ok(())
    }

    pub fn iam_inline_get(&self, owner: IamOwner, owner_name: &str, policy_name: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT document FROM iam_inline_policies WHERE owner_kind = ?1 AND owner_name = ?2 AND policy_name = ?3",
                params![owner.as_str(), owner_name, policy_name],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// `(policy name, document)` of every inline policy of the owner, by name.
    pub fn iam_inline_all(&self, owner: IamOwner, owner_name: &str) -> Result<Vec<(String, String)>> {
        let mut st = self.conn().prepare(
            "SELECT policy_name, document FROM iam_inline_policies WHERE owner_kind = ?1 AND owner_name = ?2 \
             ORDER BY policy_name",
        )?;
        collect(st.query_map(params![owner.as_str(), owner_name], |r| Ok((r.get(0)?, r.get(1)?)))?)
    }

    /// Deletes one inline policy; `false` when there was none.
    pub fn iam_inline_delete(&self, owner: IamOwner, owner_name: &str, policy_name: &str) -> Result<bool> {
        Ok(self.conn().execute(
            "DELETE FROM iam_inline_policies WHERE owner_kind = ?1 AND owner_name = ?2 AND policy_name = ?3",
            params![owner.as_str(), owner_name, policy_name],
        )? > 0)
    }

    // ---- customer managed policies

    pub fn iam_policy_insert(&self, p: &IamPolicyRow, first: &IamPolicyVersionRow) -> Result<()> {
        self.conn().execute(
            &format!("INSERT INTO iam_policies({POLICY_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            params![p.arn, p.name, p.policy_id, p.path, p.description, p.default_version, p.created_at, p.updated_at],
        )?;
        self.conn().execute(
            "INSERT INTO iam_policy_versions(policy_arn, version_id, document, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![first.policy_arn, first.version_id, first.document, first.created_at],
        )?;
        Ok(())
    }

    pub fn iam_policy_get(&self, arn: &str) -> Result<Option<IamPolicyRow>> {
        let sql = format!("SELECT {POLICY_COLS} FROM iam_policies WHERE arn = ?1");
        Ok(self.conn().query_row(&sql, [arn], policy_row).optional()?)
    }

    pub fn iam_policy_by_name(&self, name: &str) -> Result<Option<IamPolicyRow>> {
        let sql = format!("SELECT {POLICY_COLS} FROM iam_policies WHERE name = ?1");
        Ok(self.conn().query_row(&sql, [name], policy_row).optional()?)
    }

    pub fn iam_policies(&self) -> Result<Vec<IamPolicyRow>> {
        let mut st = self.conn().prepare(&format!("SELECT {POLICY_COLS} FROM iam_policies ORDER BY name"))?;
        collect(st.query_map([], policy_row)?)
    }

    pub fn iam_policy_version(&self, arn: &str, version_id: &str) -> Result<Option<IamPolicyVersionRow>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT policy_arn, version_id, document, created_at FROM iam_policy_versions \
                 WHERE policy_arn = ?1 AND version_id = ?2",
                params![arn, version_id],
                |r| {
                    Ok(IamPolicyVersionRow {
                        policy_arn: r.get(0)?,
                        version_id: r.get(1)?,
                        document: r.get(2)?,
                        created_at: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// Deletes a policy and its versions.
    pub fn iam_policy_delete(&self, arn: &str) -> Result<()> {
        self.conn().execute("DELETE FROM iam_policy_versions WHERE policy_arn = ?1", [arn])?;
        self.conn().execute("DELETE FROM iam_policies WHERE arn = ?1", [arn])?;
        Ok(())
    }

    // ---- attachments

    /// Attaches a managed policy (idempotent, as in IAM).
    pub fn iam_attach(&self, owner: IamOwner, owner_name: &str, policy_arn: &str) -> Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO iam_attachments(owner_kind, owner_name, policy_arn) VALUES (?1, ?2, ?3)",
            params![owner.as_str(), owner_name, policy_arn],
        )?;
        Ok(())
    }

    /// Detaches a managed policy; `false` when it was not attached.
    pub fn iam_detach(&self, owner: IamOwner, owner_name: &str, policy_arn: &str) -> Result<bool> {
        Ok(self.conn().execute(
            "DELETE FROM iam_attachments WHERE owner_kind = ?1 AND owner_name = ?2 AND policy_arn = ?3",
            params![owner.as_str(), owner_name, policy_arn],
        )? > 0)
    }

    /// The ARNs of the managed policies attached to the owner, sorted.
    pub fn iam_attached(&self, owner: IamOwner, owner_name: &str) -> Result<Vec<String>> {
        let mut st = self.conn().prepare(
            "SELECT policy_arn FROM iam_attachments WHERE owner_kind = ?1 AND owner_name = ?2 ORDER BY policy_arn",
        )?;
        collect(st.query_map(params![owner.as_str(), owner_name], |r| r.get(0))?)
    }

    /// How many users and roles a managed policy is attached to.
    pub fn iam_attachment_count(&self, policy_arn: &str) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM iam_attachments WHERE policy_arn = ?1", [policy_arn], |r| r.get(0))?)
    }

    // ---- STS sessions

    pub fn sts_session_insert(&self, s: &StsSessionRow) -> Result<()> {
        self.conn().execute(
            &format!("INSERT INTO sts_sessions({SESSION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            params![
                s.access_key_id,
                s.sealed,
                s.role_name,
                s.role_id,
                s.session_name,
                s.assumed_role_arn,
                s.expires_at,
                s.created_at
            ],
        )?;
        Ok(())
    }

    /// A sealed session (a row still awaiting conversion from plain text is not served).
    pub fn sts_session_get(&self, access_key_id: &str) -> Result<Option<StsSessionRow>> {
        let sql = format!("SELECT {SESSION_COLS} FROM sts_sessions WHERE access_key_id = ?1 AND sealed IS NOT NULL");
        Ok(self.conn().query_row(&sql, [access_key_id], session_row).optional()?)
    }

    /// Sessions written in plain text before sealing: (access key id, secret access key, session token).
    pub fn sts_sessions_unsealed(&self) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self.conn().prepare(
            "SELECT access_key_id, COALESCE(legacy_secret, ''), COALESCE(legacy_token, '') FROM sts_sessions \
             WHERE sealed IS NULL ORDER BY access_key_id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Stores a session's sealed secrets and forgets their plain text.
    pub fn sts_session_seal(&self, access_key_id: &str, sealed: &[u8]) -> Result<()> {
        self.conn().execute(
            "UPDATE sts_sessions SET sealed = ?2, legacy_secret = NULL, legacy_token = NULL WHERE access_key_id = ?1",
            params![access_key_id, sealed],
        )?;
        Ok(())
    }

    /// Removes sessions that expired before `before`; returns how many.
    pub fn sts_sessions_prune(&self, before: Epoch) -> Result<usize> {
        Ok(self.conn().execute("DELETE FROM sts_sessions WHERE expires_at < ?1", [before])?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    #[test]
    fn roles_policies_attachments_and_sessions_round_trip() {
        let mut store = Store::open_in_memory().expect("store");
        store
            .tx(|tx| {
                let role = IamRoleRow {
                    name: "Infra".into(),
                    role_id: "AROAEXAMPLE".into(),
                    arn: "arn:aws:iam::123456789012:role/Infra".into(),
                    path: "/".into(),
                    trust_policy: "{}".into(),
                    description: None,
                    max_session_duration: 3600,
                    created_at: 1.0,
                };
                tx.iam_role_insert(&role)?;
                // Names are unique case-insensitively.
                assert!(
                    tx.iam_role_insert(&IamRoleRow { name: "infra".into(), role_id: "AROA2".into(), ..role.clone() })
                        .is_err()
                );
                assert_eq!(tx.iam_role_get("INFRA")?.map(|r| r.role_id), Some("AROAEXAMPLE".into()));
                tx.iam_inline_put(IamOwner::Role, "Infra", "p", "{\"a\":1}")?;
                tx.iam_inline_put(IamOwner::Role, "Infra", "p", "{\"a\":2}")?;
                assert_eq!(tx.iam_inline_all(IamOwner::Role, "infra")?, vec![("p".into(), "{\"a\":2}".into())]);
                assert!(tx.iam_inline_get(IamOwner::User, "Infra", "p")?.is_none());
                tx.iam_attach(IamOwner::Role, "Infra", "arn:aws:iam::aws:policy/X")?;
                tx.iam_attach(IamOwner::Role, "Infra", "arn:aws:iam::aws:policy/X")?;
                assert_eq!(tx.iam_attachment_count("arn:aws:iam::aws:policy/X")?, 1);
                assert!(tx.iam_detach(IamOwner::Role, "Infra", "arn:aws:iam::aws:policy/X")?);
                assert!(!tx.iam_detach(IamOwner::Role, "Infra", "arn:aws:iam::aws:policy/X")?);
                let s = StsSessionRow {
                    access_key_id: "ASIA1".into(),
                    sealed: vec![1, 2, 3],
                    role_name: "Infra".into(),
                    role_id: "AROAEXAMPLE".into(),
                    session_name: "x".into(),
                    assumed_role_arn: "arn:aws:sts::123456789012:assumed-role/Infra/x".into(),
                    expires_at: 10.0,
                    created_at: 1.0,
                };
                tx.sts_session_insert(&s)?;
                assert_eq!(tx.sts_session_get("ASIA1")?, Some(s));
                assert_eq!(tx.sts_sessions_prune(11.0)?, 1);
                Ok::<_, crate::StoreError>(())
            })
            .expect("tx");
    }
}
