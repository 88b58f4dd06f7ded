//! Secrets Manager and SSM Parameter Store, and the resolution of a task's `secrets` and
//! `repositoryCredentials` when it launches.
//!
//! Secret values and SecureString parameters are sealed by the control plane's vault before they reach
//! the store, bound to their resource ARN and version, and opened only to answer GetSecretValue, a
//! decrypted GetParameter(s), or a task launch. Revisions store `valueFrom` references, never values.

mod context;
pub(crate) mod launch;
mod manager;
mod ssm;

use berth_core::{AwsError, ErrorCode};
use rand::Rng;

use crate::{CallerIdentity, Control, authz};

impl Control {
    /// Handles one decoded Secrets Manager operation for an authenticated caller.
    pub async fn handle_secretsmanager(
        &self,
        caller: &CallerIdentity,
        op: berth_model::secretsmanager::Operation,
    ) -> Result<berth_model::secretsmanager::Output, AwsError> {
        let (name, errors) = (op.name(), op.errors());
        let out = (|| {
            if !authz::is_root(caller) {
                let requests = context::secretsmanager_requests(self, &op).map_err(AwsError::from)?;
                authz::authorize_all(caller, &format!("secretsmanager:{name}"), requests)?;
            }
            manager::handle(self, op).map_err(AwsError::from)
        })();
        crate::error::answer(berth_model::secretsmanager::SIGNING_NAME, name, errors, out)
    }

    /// Handles one decoded SSM operation for an authenticated caller.
    pub async fn handle_ssm(
        &self,
        caller: &CallerIdentity,
        op: berth_model::ssm::Operation,
    ) -> Result<berth_model::ssm::Output, AwsError> {
        let (name, errors) = (op.name(), op.errors());
        let out = (|| {
            if !authz::is_root(caller) {
                let requests = context::ssm_requests(self, &op).map_err(AwsError::from)?;
                authz::authorize_all(caller, &format!("ssm:{name}"), requests)?;
            }
            ssm::handle(self, caller, op).map_err(AwsError::from)
        })();
        crate::error::answer(berth_model::ssm::SIGNING_NAME, name, errors, out)
    }
}

/// `n` random letters and digits (the suffix of a secret's ARN).
pub(crate) fn random_alnum(n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

/// Standard base64 with padding (how AWS shows ciphertext blobs).
pub(crate) fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// A page of `items` (sorted by `key`) after the item whose key the token names; the next token names
/// the last item returned. Keyset pagination stays correct while items are added or removed.
pub(crate) fn page_after<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> &str,
    token: Option<&str>,
    max: usize,
    bad_token: ErrorCode,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let after = match token.filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => {
            Some(crate::token::decode(t).ok_or_else(|| AwsError::new(bad_token, "The nextToken is not valid."))?)
        }
    };
    let mut rest: Vec<T> = match &after {
        None => items,
        Some(a) => items.into_iter().filter(|i| key(i) > a.as_str()).collect(),
    };
    let more = rest.len() > max;
    rest.truncate(max);
    let next = if more { rest.last().map(|i| crate::token::encode(key(i))) } else { None };
    Ok((rest, next))
}

/// Validates tags as both services do: keys 1..128 characters, values up to 256, at most 50 per call.
pub(crate) fn tag_pairs(
    tags: impl IntoIterator<Item = (Option<String>, Option<String>)>,
    code: ErrorCode,
) -> Result<Vec<(String, String)>, AwsError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in tags {
        let k = k.unwrap_or_default();
        let v = v.unwrap_or_default();
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(AwsError::new(
                code,
                format!("Invalid tag '{k}': keys have 1 to 128 characters and values at most 256."),
            ));
        }
        if k.to_ascii_lowercase().starts_with("aws:") {
            return Err(AwsError::new(code, format!("Invalid tag key '{k}': the aws: prefix is reserved.")));
        }
        out.retain(|(ek, _)| *ek != k);
        out.push((k, v));
    }
    if out.len() > 50 {
        return Err(AwsError::new(code, "A resource can have at most 50 tags."));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_and_suffixes_have_the_right_shape() {
        let u = berth_core::ids::uuid4();
        assert_eq!(u.len(), 36);
        assert_eq!(u.as_bytes()[14], b'4');
        assert!(matches!(u.as_bytes()[19], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(berth_core::ids::uuid4(), u);
        let s = random_alnum(6);
        assert_eq!(s.len(), 6);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, enc) in
            [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")]
        {
            assert_eq!(base64(plain.as_bytes()), enc);
        }
    }

    #[test]
    fn keyset_pages_walk_everything_once() {
        let items: Vec<String> = (0..7).map(|i| format!("/p/{i}")).collect();
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..10 {
            let (page, next) =
                page_after(items.clone(), |s| s.as_str(), token.as_deref(), 3, ErrorCode::InvalidNextToken)
                    .expect("page");
            seen.extend(page);
            token = next;
            if token.is_none() {
                break;
            }
        }
        assert_eq!(seen, items);
        let e = page_after(items, |s| s.as_str(), Some("zz"), 3, ErrorCode::InvalidNextToken).expect_err("bad");
        assert_eq!(e.code, ErrorCode::InvalidNextToken);
    }
}
