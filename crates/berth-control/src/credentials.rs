//! Access keys: long-term keys (the root user's, created at first start, and IAM users' from CreateAccessKey)
//! and role sessions' temporary keys, looked up for SigV4. Long-term secrets are stored only sealed
//! (`sealed_credentials.rs`); opened ones are kept in a small in-memory cache so a request does not pay a
//! transaction and an AEAD open, and an entry is dropped in the transaction that deletes its key.

use std::collections::HashMap;
use std::sync::Mutex;

use berth_store::{CredentialRow, StsSessionRow, Tx};

use crate::names::{new_id, new_secret};
use crate::{Control, ControlError, now};

/// A long-term access key with its secret, as its owner gets it once (CreateAccessKey's answer, the root
/// user's credentials file). Deliberately not `Debug`: nothing may print the secret.
pub struct IssuedKey {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Seconds since the epoch.
    pub created_at: f64,
}

/// An access key as the API layer needs it: the secret, whose it is and, for a role session, its token and
/// expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessKey {
    pub secret_access_key: String,
    pub principal_arn: String,
    pub user_id: String,
    pub session_token: Option<String>,
    /// Seconds since the epoch.
    pub expires_at: Option<f64>,
}

/// Opened long-term keys by access key id. Entries are inserted and removed only while the store's lock is
/// held (inside a transaction), so a lookup racing a DeleteAccessKey cannot put the deleted key back.
#[derive(Default)]
pub(crate) struct KeyCache(Mutex<HashMap<String, AccessKey>>);

/// More distinct keys than this in use at once only costs lookups: the cache starts over.
const CACHE_MAX: usize = 1024;

impl KeyCache {
    fn get(&self, access_key_id: &str) -> Option<AccessKey> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(access_key_id).cloned()
    }

    fn insert(&self, access_key_id: &str, key: AccessKey) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CACHE_MAX {
            map.clear();
        }
        map.insert(access_key_id.to_owned(), key);
    }

    fn remove(&self, access_key_id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(access_key_id);
    }
}

impl Control {
    /// The root user's access key, created on first call. A root key whose sealed secret no longer opens (the
    /// secrets key file was replaced) is replaced by a new one.
    pub fn root_credentials(&self) -> Result<IssuedKey, ControlError> {
        let root_arn = format!("arn:aws:iam::{}:root", self.names.account);
        self.tx(|tx| {
            for row in tx.credentials_of(&root_arn)? {
                match self.open_access_key(&row) {
                    Ok(secret) => {
                        return Ok(IssuedKey {
                            access_key_id: row.access_key_id,
                            secret_access_key: secret,
                            created_at: row.created_at,
                        });
                    }
                    Err(e) => {
                        tracing::warn!(access_key_id = row.access_key_id, error = %e,
                            "the root user's access key does not open (was secrets.key replaced?): issuing a new one");
                        self.delete_access_key(tx, &row.access_key_id)?;
                    }
                }
            }
            self.issue_access_key(tx, &root_arn, &self.names.account)
        })
    }

    /// Creates a long-term access key for a principal in `tx`; its row holds the secret only sealed.
    pub(crate) fn issue_access_key(
        &self,
        tx: &Tx<'_>,
        principal_arn: &str,
        user_id: &str,
    ) -> Result<IssuedKey, ControlError> {
        let key = IssuedKey { access_key_id: new_id("AKIA", 16), secret_access_key: new_secret(40), created_at: now() };
        tx.credential_put(&CredentialRow {
            access_key_id: key.access_key_id.clone(),
            sealed: self.seal_access_key(&key.access_key_id, &key.secret_access_key)?,
            principal_arn: principal_arn.to_owned(),
            user_id: user_id.to_owned(),
            created_at: key.created_at,
        })?;
        Ok(key)
    }

    /// Deletes a long-term access key in `tx` and forgets its opened secret; `false` when there was none.
    pub(crate) fn delete_access_key(&self, tx: &Tx<'_>, access_key_id: &str) -> Result<bool, ControlError> {
        self.access_keys.remove(access_key_id);
        Ok(tx.credential_delete(access_key_id)?)
    }

    /// Looks up a long-term key (root, IAM users) or a role session's temporary key. A key whose sealed secret
    /// does not open (the key file was replaced) is as good as unknown. Cached keys cost no store access; a role
    /// session (never cached) is read beside the writer; a long-term key is opened and cached under the
    /// writer's lock (see `KeyCache`).
    pub fn access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>, ControlError> {
        if let Some(key) = self.access_keys.get(access_key_id) {
            return Ok(Some(key));
        }
        let session = self.read(|tx| match tx.credential_get(access_key_id)? {
            Some(_) => Ok(None),
            None => Ok(Some(tx.sts_session_get(access_key_id)?)),
        })?;
        match session {
            Some(None) => return Ok(None),
            Some(Some(s)) => return Ok(self.session_key(access_key_id, s)),
            None => {}
        }
        self.tx(|tx| {
            if let Some(c) = tx.credential_get(access_key_id)? {
                let secret = match self.open_access_key(&c) {
                    Ok(secret) => secret,
                    Err(e) => {
                        tracing::warn!(access_key_id, error = %e, "an access key's sealed secret does not open");
                        return Ok(None);
                    }
                };
                let key = AccessKey {
                    secret_access_key: secret,
                    principal_arn: c.principal_arn,
                    user_id: c.user_id,
                    session_token: None,
                    expires_at: None,
                };
                // Still inside the transaction: see `KeyCache`.
                self.access_keys.insert(access_key_id, key.clone());
                return Ok(Some(key));
            }
            // Deleted since it was read.
            Ok(None)
        })
    }

    /// A role session's key, or `None` when its sealed secrets do not open.
    fn session_key(&self, access_key_id: &str, s: StsSessionRow) -> Option<AccessKey> {
        let (secret, token) = match self.open_session(&s) {
            Ok(opened) => opened,
            Err(e) => {
                tracing::warn!(access_key_id, error = %e, "a role session's sealed secrets do not open");
                return None;
            }
        };
        Some(AccessKey {
            secret_access_key: secret,
            principal_arn: s.assumed_role_arn,
            user_id: format!("{}:{}", s.role_id, s.session_name),
            session_token: Some(token),
            expires_at: Some(s.expires_at),
        })
    }
}
