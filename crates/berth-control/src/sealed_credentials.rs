//! Credentials at rest. A long-term access key's secret (root, IAM users) is sealed with the vault (AES-256-GCM,
//! associated data binding it to its access key id, so a sealed value copied to another row does not open), and
//! so are a role session's secret access key and session token, together; SigV4 needs the secret key back, so
//! it cannot be a hash. A task's credentials
//! token only ever needs comparing, so only its SHA-256 is stored and the presented token's hash is compared in
//! constant time. Rows written in plain text by an older berth are converted once at start, before anything is
//! served, and the WAL is checkpointed so the plain text does not linger there.

use berth_store::{CredentialRow, StsSessionRow};

use crate::{Control, ControlError};

/// The associated data of a session's sealed secrets.
fn aad(access_key_id: &str) -> Vec<u8> {
    format!("sts-session:{access_key_id}").into_bytes()
}

/// The associated data of a long-term access key's sealed secret.
fn access_key_aad(access_key_id: &str) -> Vec<u8> {
    format!("access-key:{access_key_id}").into_bytes()
}

/// What is stored of a task's credentials token.
pub(crate) fn token_hash(token: &str) -> String {
    berth_vault::sha256_hex(token.as_bytes())
}

/// Whether `presented` is the token whose hash is `stored` (constant time in the hashes).
pub(crate) fn token_matches(stored: &str, presented: &str) -> bool {
    berth_core::ids::constant_time_eq(stored.as_bytes(), token_hash(presented).as_bytes())
}

fn vault_error(e: berth_vault::VaultError) -> ControlError {
    ControlError::Vault(e.to_string())
}

impl Control {
    /// The sealed form of a session's secret access key and session token, for its row.
    pub(crate) fn seal_session(&self, access_key_id: &str, secret: &str, token: &str) -> Result<Vec<u8>, ControlError> {
        // Neither contains a newline: both are drawn from base64's alphabet.
        self.vault.seal(&aad(access_key_id), format!("{secret}\n{token}").as_bytes()).map_err(vault_error)
    }

    /// The sealed form of a long-term access key's secret, for its row.
    pub(crate) fn seal_access_key(&self, access_key_id: &str, secret: &str) -> Result<Vec<u8>, ControlError> {
        self.vault.seal(&access_key_aad(access_key_id), secret.as_bytes()).map_err(vault_error)
    }

    /// A long-term access key row's secret access key.
    pub(crate) fn open_access_key(&self, row: &CredentialRow) -> Result<String, ControlError> {
        let plain = self.vault.open(&access_key_aad(&row.access_key_id), &row.sealed).map_err(vault_error)?;
        String::from_utf8(plain).map_err(|_| ControlError::Vault("a sealed access key is not text".into()))
    }

    /// A session row's (secret access key, session token).
    pub(crate) fn open_session(&self, row: &StsSessionRow) -> Result<(String, String), ControlError> {
        let plain = self.vault.open(&aad(&row.access_key_id), &row.sealed).map_err(vault_error)?;
        let text = String::from_utf8(plain).map_err(|_| ControlError::Vault("a sealed session is not text".into()))?;
        let (secret, token) =
            text.split_once('\n').ok_or_else(|| ControlError::Vault("a sealed session has no token".into()))?;
        Ok((secret.to_owned(), token.to_owned()))
    }

    /// Seals the long-term access keys and role sessions and hashes the task tokens an older berth stored in
    /// plain text, then checkpoints the WAL. Returns how many rows were converted.
    pub(crate) fn seal_legacy_credentials(&self) -> Result<usize, ControlError> {
        let converted = self.tx(|tx| {
            let keys = tx.credentials_unsealed()?;
            for (id, secret) in &keys {
                tx.credential_seal(id, &self.seal_access_key(id, secret)?)?;
            }
            let sessions = tx.sts_sessions_unsealed()?;
            for (id, secret, token) in &sessions {
                tx.sts_session_seal(id, &self.seal_session(id, secret, token)?)?;
            }
            let tokens = tx.task_credentials_unhashed()?;
            for (id, token) in &tokens {
                tx.task_credential_set_token_hash(id, &token_hash(token))?;
            }
            Ok(keys.len() + sessions.len() + tokens.len())
        })?;
        if converted > 0 {
            self.store.lock().unwrap_or_else(|e| e.into_inner()).checkpoint()?;
            tracing::info!(
                rows = converted,
                "sealed access keys and role-session secrets and hashed task tokens stored in plain text"
            );
        }
        Ok(converted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_matches_its_hash_only() {
        let stored = token_hash("tok-1");
        assert_eq!(stored.len(), 64);
        assert!(token_matches(&stored, "tok-1"));
        for other in ["tok-2", "", "tok-1 ", &stored] {
            assert!(!token_matches(&stored, other), "{other:?}");
        }
    }
}
