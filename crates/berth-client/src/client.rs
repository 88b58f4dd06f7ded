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

impl std::fmt::Debug for Client {
    // The endpoint and who signs; never the secret, never the CA bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.settings.endpoint)
            .field("region", &self.settings.region)
            .field("credentials", &self.credentials)
            .finish()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn client(endpoint: &str, token: Option<&str>) -> Client {
        let settings = Settings { endpoint: endpoint.into(), region: "eu-west-3".into(), ca_pem: None };
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "s3cr3t-value".into(),
            session_token: token.map(str::to_string),
        };
        Client::new(settings, credentials).expect("client")
    }

    #[test]
    fn requests_carry_what_sigv4_and_the_protocol_need() {
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_696_897_800);
        let c = client("HTTP://127.0.0.1:9443/", Some("tok"));
        assert_eq!(c.settings().endpoint, "http://127.0.0.1:9443");
        let encoded = protocol::encode(Service::Ecs, "ListServices", &serde_json::json!({"cluster": "default"}))
            .expect("encodes");
        let r = c.request(Service::Ecs, &encoded, time).expect("request");
        let h = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        assert_eq!(r.uri(), "http://127.0.0.1:9443/");
        assert_eq!(h("host"), "127.0.0.1:9443");
        assert_eq!(h("x-amz-target"), "AmazonEC2ContainerServiceV20141113.ListServices");
        assert_eq!(h("content-type"), "application/x-amz-json-1.1");
        assert_eq!(h("x-amz-date"), "20231010T003000Z");
        assert_eq!(h("x-amz-security-token"), "tok");
        let auth = h("authorization");
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231010/eu-west-3/ecs/aws4_request, "),
            "{auth}"
        );
        for signed in ["content-type", "host", "x-amz-date", "x-amz-security-token", "x-amz-target"] {
            assert!(auth.contains(signed), "{signed} is signed: {auth}");
        }
        assert_eq!(r.body().as_ref(), br#"{"cluster":"default"}"#);

        let encoded = protocol::encode(Service::Iam, "GetRole", &serde_json::json!({"RoleName": "r"})).expect("enc");
        let r = client("http://localhost:9443", None).request(Service::Iam, &encoded, time).expect("request");
        assert!(r.headers().get("x-amz-security-token").is_none());
        assert!(r.headers().get("x-amz-target").is_none());
        let auth = r.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(auth.contains("/eu-west-3/iam/aws4_request"), "{auth}");
        assert_eq!(r.body().as_ref(), b"Action=GetRole&Version=2010-05-08&RoleName=r");
        let debug = format!("{:?}", client("http://localhost:9443", Some("tok")));
        assert!(!debug.contains("s3cr3t") && !debug.contains("\"tok\""), "{debug}");
    }

    /// The console calls from axum handlers and spawned tasks: the client and its calls must cross threads.
    #[test]
    fn clients_and_calls_are_send_and_sync() {
        fn send_sync<T: Send + Sync>(_: &T) {}
        fn send<T: Send>(_: &T) {}
        let c = client("http://localhost:1", None);
        send_sync(&c);
        let call = c.call_value(Service::Ecs, "ListServices", serde_json::json!({}));
        send(&call);
        let input = serde_json::json!({});
        let typed = c.call::<serde_json::Value, serde_json::Value>(Service::Sts, "GetCallerIdentity", &input);
        send(&typed);
    }

    #[test]
    fn settings_are_checked() {
        let creds = Credentials { access_key_id: "A".into(), secret_access_key: "s".into(), session_token: None };
        for (endpoint, region, text) in [
            ("ftp://x:1", "r", "scheme other than http"),
            ("https://x:1/path", "r", "has a path"),
            ("http://x:1", " ", "no region"),
        ] {
            let settings = Settings { endpoint: endpoint.into(), region: region.into(), ca_pem: None };
            match Client::new(settings, creds.clone()) {
                Err(ClientError::Config(m)) => assert!(m.contains(text), "{endpoint}: {m}"),
                other => panic!("{endpoint}: {other:?}"),
            }
        }
        let settings = Settings { endpoint: "http://x:1".into(), region: "r".into(), ca_pem: None };
        let empty = Credentials { access_key_id: String::new(), ..creds };
        assert!(matches!(Client::new(settings, empty), Err(ClientError::Config(_))));
    }
}
