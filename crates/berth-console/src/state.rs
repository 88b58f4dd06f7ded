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
        // A placeholder identity: this client never calls; each request uses `with_credentials(user's)`.
        let anonymous = Credentials {
            access_key_id: "CONSOLE-TEMPLATE".into(),
            secret_access_key: "never-used".into(),
            session_token: None,
        };
        let api = Client::new(config.api.clone(), anonymous)?;
        let key = SessionKey::generate()?;
        let sessions = Sessions::new(config.session_ttl, MAX_SESSIONS);
        Ok(AppState { inner: Arc::new(Inner { config, api, key, sessions }) })
    }

    pub fn config(&self) -> &ConsoleConfig {
        &self.inner.config
    }

    /// A service's link from its endpoint (a host name, or a URL), with the load balancer's port.
    pub fn endpoint_url(&self, endpoint: &str) -> String {
        endpoint_url(endpoint, self.inner.config.https_port)
    }
}

/// `https://<host>[:<port>]/` from an Express endpoint (`host`, or `https://host[/…]`), the port only when not 443.
pub fn endpoint_url(endpoint: &str, https_port: u16) -> String {
    let rest = endpoint.strip_prefix("https://").or_else(|| endpoint.strip_prefix("http://")).unwrap_or(endpoint);
    let host = rest.split('/').next().unwrap_or(rest);
    let host = host.split(':').next().unwrap_or(host);
    if https_port == 443 { format!("https://{host}/") } else { format!("https://{host}:{https_port}/") }
}

#[cfg(test)]
mod tests {
    #[test]
    fn endpoint_urls() {
        assert_eq!(
            super::endpoint_url("web-1a2b3c.ecs.us-east-1.localhost", 443),
            "https://web-1a2b3c.ecs.us-east-1.localhost/"
        );
        assert_eq!(super::endpoint_url("web.localhost", 8443), "https://web.localhost:8443/");
        assert_eq!(super::endpoint_url("https://web.localhost/", 8443), "https://web.localhost:8443/");
        assert_eq!(super::endpoint_url("https://web.localhost:443/x", 443), "https://web.localhost/");
    }
}
