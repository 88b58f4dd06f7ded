//! The console's shared state: the API client template, the session key and the sessions.

use std::sync::Arc;

use crate::ConsoleConfig;

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub inner: Arc<Inner>,
}

pub struct Inner {
    pub config: ConsoleConfig,
}

impl AppState {
    pub fn new(config: ConsoleConfig) -> Result<AppState, crate::ConsoleError> {
        Ok(AppState { inner: Arc::new(Inner { config }) })
    }
}
