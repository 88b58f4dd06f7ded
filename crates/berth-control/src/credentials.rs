//! Access keys. Until IAM lands the account has one principal, its root user, whose keys are created at
//! first start.

use berth_store::CredentialRow;
use rand::Rng;

use crate::{Control, ControlError, now};

const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn random_from(alphabet: &[u8], n: usize) -> String {
    let mut rng = rand::rng();
    (0..n).map(|_| alphabet[rng.random_range(0..alphabet.len())] as char).collect()
}

impl Control {
    /// The root user's access key, created on first call.
    pub fn root_credentials(&self) -> Result<CredentialRow, ControlError> {
        let root_arn = format!("arn:aws:iam::{}:root", self.names.account);
        self.tx(|tx| {
            if let Some(c) = tx.credentials_all()?.into_iter().find(|c| c.principal_arn == root_arn) {
                return Ok(c);
            }
            let row = CredentialRow {
                access_key_id: format!("AKIA{}", random_from(KEY_ALPHABET, 16)),
                secret_access_key: random_from(SECRET_ALPHABET, 40),
                principal_arn: root_arn.clone(),
                user_id: self.names.account.clone(),
                created_at: now(),
            };
            tx.credential_put(&row)?;
            Ok(row)
        })
    }

    /// Looks up an access key.
    pub fn credential(&self, access_key_id: &str) -> Result<Option<CredentialRow>, ControlError> {
        self.tx(|tx| Ok(tx.credential_get(access_key_id)?))
    }
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

impl Control {
    /// Looks up a long-term key (root, IAM users) or a role session's temporary key.
    pub fn access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>, ControlError> {
        self.tx(|tx| {
            if let Some(c) = tx.credential_get(access_key_id)? {
                return Ok(Some(AccessKey {
                    secret_access_key: c.secret_access_key,
                    principal_arn: c.principal_arn,
                    user_id: c.user_id,
                    session_token: None,
                    expires_at: None,
                }));
            }
            let Some(s) = tx.sts_session_get(access_key_id)? else { return Ok(None) };
            // A session sealed under another key (the key file was replaced) is as good as unknown.
            let (secret, token) = match self.open_session(&s) {
                Ok(opened) => opened,
                Err(e) => {
                    tracing::warn!(access_key_id, error = %e, "a role session's sealed secrets do not open");
                    return Ok(None);
                }
            };
            Ok(Some(AccessKey {
                secret_access_key: secret,
                principal_arn: s.assumed_role_arn,
                user_id: format!("{}:{}", s.role_id, s.session_name),
                session_token: Some(token),
                expires_at: Some(s.expires_at),
            }))
        })
    }
}
