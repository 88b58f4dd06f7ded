//! The client: one connection pool, one identity, calls by service and action.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{ClientError, Credentials, Service};

/// Where berth is.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `https://localhost:9443`, no path.
    pub endpoint: String,
    pub region: String,
    /// PEM certificates to trust besides none (berth's CA); without it only a plain `http://` endpoint works.
    pub ca_pem: Option<Vec<u8>>,
}

/// Calls berth's public API as one identity. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    settings: Settings,
    credentials: Credentials,
}

impl Client {
    pub fn new(settings: Settings, credentials: Credentials) -> Result<Client, ClientError> {
        Ok(Client { settings, credentials })
    }

    /// The same endpoint and connection pool, another identity (the console: one per signed-in user).
    pub fn with_credentials(&self, credentials: Credentials) -> Client {
        Client { settings: self.settings.clone(), credentials }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// One operation with its input as the model's JSON shape (member names as botocore spells them); the
    /// output likewise, whatever the protocol on the wire.
    pub async fn call_value(&self, service: Service, action: &str, input: Value) -> Result<Value, ClientError> {
        let _ = (service, action, input);
        Err(ClientError::Config("berth-client: not yet implemented".into()))
    }

    /// [`Client::call_value`] with typed shapes (`berth_model`'s generated requests and responses).
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        service: Service,
        action: &str,
        input: &Req,
    ) -> Result<Resp, ClientError> {
        let input = serde_json::to_value(input).map_err(|e| ClientError::Decode(e.to_string()))?;
        let output = self.call_value(service, action, input).await?;
        serde_json::from_value(output).map_err(|e| ClientError::Decode(format!("{action}: {e}")))
    }
}
