//! Sign-in sessions: held in memory (credentials never leave the server), named by a random id that the
//! `berth_session` cookie carries signed with HMAC-SHA256; and the [`User`] extractor pages take.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Redirect, Response};
use berth_client::{Client, Credentials};
use http::HeaderMap;
use http::request::Parts;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::{AppState, ConsoleError};

/// The cookie's name.
pub const COOKIE: &str = "berth_session";

/// The key the cookie is signed with.
pub struct SessionKey(hmac::Key);

impl SessionKey {
    /// A fresh random key.
    pub fn generate() -> Result<SessionKey, ConsoleError> {
        let rng = SystemRandom::new();
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .map_err(|_| ConsoleError::Internal("no randomness for the session key".into()))?;
        Ok(SessionKey(key))
    }

    /// `id.signature`, both hex.
    pub fn sign(&self, id: &str) -> String {
        let tag = hmac::sign(&self.0, id.as_bytes());
        format!("{id}.{}", hex::encode(tag.as_ref()))
    }

    /// The id inside a cookie value when its signature is this key's (checked in constant time).
    pub fn verify<'a>(&self, value: &'a str) -> Option<&'a str> {
        let (id, sig) = value.rsplit_once('.')?;
        let sig = hex::decode(sig).ok()?;
        hmac::verify(&self.0, id.as_bytes(), &sig).ok()?;
        Some(id)
    }
}

/// One signed-in user.
#[derive(Clone)]
pub struct Session {
    pub credentials: Credentials,
    /// The identity's ARN, as STS GetCallerIdentity said.
    pub arn: String,
    pub account: String,
    /// The per-session CSRF token every form carries.
    pub csrf: String,
    pub created: Instant,
    pub expires: Instant,
}

/// Every live session, bounded in number; expired ones are swept on each sign-in and ignored on lookup.
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    ttl: Duration,
    max: usize,
}

/// `n` random bytes, hex.
pub fn random_hex(n: usize) -> Result<String, ConsoleError> {
    let mut buf = vec![0u8; n];
    SystemRandom::new().fill(&mut buf).map_err(|_| ConsoleError::Internal("no randomness".into()))?;
    Ok(hex::encode(buf))
}

impl Sessions {
    pub fn new(ttl: Duration, max: usize) -> Sessions {
        Sessions { map: Mutex::new(HashMap::new()), ttl, max: max.max(1) }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Starts a session; answers its id.
    pub fn create(&self, credentials: Credentials, arn: String, account: String) -> Result<String, ConsoleError> {
        self.create_at(credentials, arn, account, Instant::now())
    }

    fn create_at(
        &self,
        credentials: Credentials,
        arn: String,
        account: String,
        now: Instant,
    ) -> Result<String, ConsoleError> {
        let id = random_hex(32)?;
        let csrf = random_hex(32)?;
        let session = Session { credentials, arn, account, csrf, created: now, expires: now + self.ttl };
        let mut map = self.lock();
        map.retain(|_, s| s.expires > now);
        while map.len() >= self.max {
            let oldest = map.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        map.insert(id.clone(), session);
        Ok(id)
    }

    /// The session, while it lasts.
    pub fn get(&self, id: &str) -> Option<Session> {
        self.get_at(id, Instant::now())
    }

    fn get_at(&self, id: &str, now: Instant) -> Option<Session> {
        let mut map = self.lock();
        match map.get(id) {
            Some(s) if s.expires > now => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// Drops every expired session; answers how many.
    pub fn sweep(&self) -> usize {
        self.sweep_at(Instant::now())
    }

    fn sweep_at(&self, now: Instant) -> usize {
        let mut map = self.lock();
        let before = map.len();
        map.retain(|_, s| s.expires > now);
        before - map.len()
    }

    /// Signs out.
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves the map usable: recover it.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The value of the session cookie in these headers, if any.
pub fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// The session id these headers carry, when the cookie is validly signed and the session lives.
pub fn from_headers(state: &AppState, headers: &HeaderMap) -> Option<(String, Session)> {
    let id = state.inner.key.verify(cookie_value(headers)?)?;
    let session = state.inner.sessions.get(id)?;
    Some((id.to_string(), session))
}

/// `Set-Cookie` starting a session.
pub fn set_cookie(state: &AppState, id: &str) -> String {
    format!(
        "{COOKIE}={}; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age={}",
        state.inner.key.sign(id),
        state.inner.sessions.ttl().as_secs()
    )
}

/// `Set-Cookie` ending it.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/; Max-Age=0")
}

/// The signed-in user. Not signed in: a redirect to `/signin`.
#[derive(Clone)]
pub struct User {
    /// Calls berth as this user.
    pub client: Client,
    pub arn: String,
    pub account: String,
    /// The session's CSRF token (see [`crate::layout::csrf_field`]).
    pub csrf: String,
    /// The session id (to sign out).
    pub session_id: String,
}

impl User {
    pub fn from_session(state: &AppState, id: String, s: Session) -> User {
        User {
            client: state.inner.api.with_credentials(s.credentials),
            arn: s.arn,
            account: s.account,
            csrf: s.csrf,
            session_id: id,
        }
    }

    /// The identity's short name: `root`, or the user name at the end of the ARN.
    pub fn name(&self) -> &str {
        if self.arn.ends_with(":root") {
            return "root";
        }
        self.arn.rsplit('/').next().unwrap_or(&self.arn)
    }
}

impl FromRequestParts<AppState> for User {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<User, Response> {
        match from_headers(state, &parts.headers) {
            Some((id, s)) => Ok(User::from_session(state, id, s)),
            None => Err(Redirect::to("/signin").into_response()),
        }
    }
}

/// The signed-in user, when there is one (pages that show either way, e.g. the sign-in page).
pub struct MaybeUser(pub Option<User>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<MaybeUser, Self::Rejection> {
        Ok(MaybeUser(from_headers(state, &parts.headers).map(|(id, s)| User::from_session(state, id, s))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials { access_key_id: "AKIA".into(), secret_access_key: "s".into(), session_token: None }
    }

    #[test]
    fn signature_round_trips_and_rejects_tampering() {
        let key = SessionKey::generate().unwrap();
        let signed = key.sign("abc123");
        assert_eq!(key.verify(&signed), Some("abc123"));
        let (id, sig) = signed.split_once('.').unwrap();
        assert_eq!(key.verify(&format!("abc124.{sig}")), None, "another id with the same signature");
        let mut bad = sig.to_string();
        bad.replace_range(0..1, if &sig[0..1] == "0" { "1" } else { "0" });
        assert_eq!(key.verify(&format!("{id}.{bad}")), None, "a flipped signature digit");
        assert_eq!(key.verify(id), None, "no signature");
        assert_eq!(key.verify(&format!("{id}.zz")), None, "not hex");
        let other = SessionKey::generate().unwrap();
        assert_eq!(other.verify(&signed), None, "another server's key (a restart)");
    }

    #[test]
    fn sessions_expire_and_are_swept() {
        let sessions = Sessions::new(Duration::from_secs(60), 100);
        let t0 = Instant::now();
        let a = sessions.create_at(creds(), "arn:a".into(), "1".into(), t0).unwrap();
        assert!(sessions.get_at(&a, t0 + Duration::from_secs(59)).is_some());
        assert!(sessions.get_at(&a, t0 + Duration::from_secs(60)).is_none(), "expired at its ttl");
        assert_eq!(sessions.len(), 0, "an expired session found on lookup is removed");
        let b = sessions.create_at(creds(), "arn:b".into(), "1".into(), t0).unwrap();
        let _c = sessions.create_at(creds(), "arn:c".into(), "1".into(), t0 + Duration::from_secs(61)).unwrap();
        assert!(sessions.get_at(&b, t0 + Duration::from_secs(61)).is_none());
        assert_eq!(sessions.len(), 1, "a sign-in sweeps expired sessions");
        assert_eq!(sessions.sweep_at(t0 + Duration::from_secs(120)), 0, "the last one lives until t0+121");
        assert_eq!(sessions.sweep_at(t0 + Duration::from_secs(121)), 1);
        assert!(sessions.is_empty());
    }

    #[test]
    fn sessions_are_bounded_dropping_the_oldest() {
        let sessions = Sessions::new(Duration::from_secs(600), 2);
        let t0 = Instant::now();
        let a = sessions.create_at(creds(), "arn:a".into(), "1".into(), t0).unwrap();
        let b = sessions.create_at(creds(), "arn:b".into(), "1".into(), t0 + Duration::from_secs(1)).unwrap();
        let c = sessions.create_at(creds(), "arn:c".into(), "1".into(), t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(sessions.len(), 2);
        assert!(sessions.get(&a).is_none());
        assert!(sessions.get(&b).is_some() && sessions.get(&c).is_some());
        sessions.remove(&b);
        assert!(sessions.get(&b).is_none(), "signed out");
    }

    #[test]
    fn ids_and_tokens_differ_per_session() {
        let sessions = Sessions::new(Duration::from_secs(600), 10);
        let a = sessions.create(creds(), "arn:a".into(), "1".into()).unwrap();
        let b = sessions.create(creds(), "arn:a".into(), "1".into()).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(sessions.get(&a).unwrap().csrf, sessions.get(&b).unwrap().csrf);
    }

    #[test]
    fn cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, "a=1; berth_session=xyz.abc; b=2".parse().unwrap());
        assert_eq!(cookie_value(&h), Some("xyz.abc"));
        let mut h = HeaderMap::new();
        h.insert(http::header::COOKIE, "xberth_session=1".parse().unwrap());
        assert_eq!(cookie_value(&h), None);
    }
}
