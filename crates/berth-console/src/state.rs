//! The console's shared state: the API client template, the session key and the sessions.

use std::sync::Arc;

use berth_client::{Client, Credentials};

use crate::ConsoleConfig;
use crate::session::{SessionKey, Sessions};

/// How many sessions the console holds at once; the oldest is dropped beyond it.
pub const MAX_SESSIONS: usize = 10_000;

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub inner: Arc<Inner>,
}

pub struct Inner {
    pub config: ConsoleConfig,
    /// Signs no one: each session clones it with the user's credentials (`Client::with_credentials`), sharing
    /// the connection pool.
    pub api: Client,
    /// Signs the session cookie (random, made at start: a restart signs everyone out).
    pub key: SessionKey,
    pub sessions: Sessions,
}

impl AppState {
    pub fn new(config: ConsoleConfig) -> Result<AppState, crate::ConsoleError> {
        let anonymous =
            Credentials { access_key_id: String::new(), secret_access_key: String::new(), session_token: None };
        let api = Client::new(config.api.clone(), anonymous)?;
        let key = SessionKey::generate()?;
        let sessions = Sessions::new(config.session_ttl, MAX_SESSIONS);
        Ok(AppState { inner: Arc::new(Inner { config, api, key, sessions }) })
    }

    pub fn config(&self) -> &ConsoleConfig {
        &self.inner.config
    }
}
