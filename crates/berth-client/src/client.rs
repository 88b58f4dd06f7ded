//! The client: one connection pool, one identity, calls by service and action.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http_body_util::Full;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::transport::Transport;
use crate::{ClientError, Credentials, Service, protocol, sign};

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
    settings: Arc<Settings>,
    credentials: Credentials,
    transport: Arc<Transport>,
}

impl Client {
    /// A client for `settings.endpoint` (`http://` or `https://HOST:PORT`; https needs `settings.ca_pem`).
    /// Nothing connects until the first call.
    pub fn new(mut settings: Settings, credentials: Credentials) -> Result<Client, ClientError> {
        settings.endpoint = crate::resolve::normalize_endpoint(&settings.endpoint, "the settings")?;
        if settings.region.trim().is_empty() {
            return Err(ClientError::Config("no region: pass --region or set AWS_REGION".into()));
        }
        if credentials.access_key_id.trim().is_empty() || credentials.secret_access_key.is_empty() {
            return Err(ClientError::Config("the access key id or secret access key is empty: set both".into()));
        }
        let transport = Transport::new(&settings.endpoint, settings.ca_pem.as_deref())?;
        Ok(Client { settings: Arc::new(settings), credentials, transport })
    }

    /// The same endpoint and connection pool, another identity (the console: one per signed-in user).
    pub fn with_credentials(&self, credentials: Credentials) -> Client {
        Client { settings: Arc::clone(&self.settings), credentials, transport: Arc::clone(&self.transport) }
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
        let encoded = protocol::encode(service, action, &input)?;
        let request = self.request(service, &encoded, SystemTime::now())?;
        let (parts, body) = request.into_parts();
        let answer = self.transport.send(http::Request::from_parts(parts, Full::new(body))).await?;
        protocol::decode(service, action, &answer)
    }

    /// The signed HTTP request of an encoded operation.
    pub(crate) fn request(
        &self,
        service: Service,
        encoded: &protocol::Encoded,
        time: SystemTime,
    ) -> Result<http::Request<Bytes>, ClientError> {
        let endpoint = self.transport.endpoint();
        let host = endpoint.split_once("://").map_or(endpoint, |(_, h)| h);
        let mut builder = http::Request::builder()
            .method(http::Method::POST)
            .uri(format!("{endpoint}/"))
            .header(http::header::HOST, host)
            .header(http::header::CONTENT_TYPE, encoded.content_type)
            .header(http::header::USER_AGENT, concat!("berth-client/", env!("CARGO_PKG_VERSION")));
        if let Some(target) = &encoded.target {
            builder = builder.header("x-amz-target", target);
        }
        let mut request = builder
            .body(Bytes::from(encoded.body.clone()))
            .map_err(|e| ClientError::Config(format!("cannot build the request: {e}")))?;
        sign::sign_request(&mut request, &self.credentials, &self.settings.region, service.signing_name(), time)?;
        Ok(request)
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
