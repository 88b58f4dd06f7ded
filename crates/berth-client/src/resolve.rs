//! Finding the endpoint and the credentials as AWS tools do.

use std::path::PathBuf;

use crate::{ClientError, Credentials, Settings};

/// A berth on this machine, from its data directory: the fallback when nothing else names an endpoint.
#[derive(Debug, Clone)]
pub struct LocalBerth {
    pub endpoint: String,
    pub region: String,
    /// The root user's credentials file `berth up` writes.
    pub credentials_file: PathBuf,
    /// berth's root CA.
    pub ca_pem: PathBuf,
}

/// What the command line says; the environment and `~/.aws` are read by [`resolve`].
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `--endpoint-url`.
    pub endpoint_url: Option<String>,
    /// `--profile`.
    pub profile: Option<String>,
    /// `--region`.
    pub region: Option<String>,
    pub local: Option<LocalBerth>,
}

/// Endpoint: `--endpoint-url`, `AWS_ENDPOINT_URL`, the profile's `endpoint_url`, the local berth.
/// Credentials: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, the profile (`--profile`,
/// `AWS_PROFILE`) in `AWS_SHARED_CREDENTIALS_FILE`/`AWS_CONFIG_FILE` (default `~/.aws/…`), then the local berth's
/// root credentials when the endpoint is the local berth, else the `default` profile.
/// CA: `AWS_CA_BUNDLE`, the profile's `ca_bundle`, the local berth's CA.
pub fn resolve(sources: &Sources) -> Result<(Settings, Credentials), ClientError> {
    let _ = sources;
    Err(ClientError::Config("berth-client: not yet implemented".into()))
}
