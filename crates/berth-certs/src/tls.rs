use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::ResolvesServerCert;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::error::CertError;

/// The one crypto provider of the tree: ring.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Parses a PEM certificate chain (leaf first) and its PEM private key, checking that they match.
pub fn certified_key_from_pem(cert_pem: &str, key_pem: &str) -> Result<CertifiedKey, CertError> {
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CertError::Pem(format!("certificate: {e}")))?;
    if chain.is_empty() {
        return Err(CertError::Pem("no certificate in PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| CertError::Pem(format!("key: {e}")))?;
    let provider = crypto_provider();
    let certified = CertifiedKey::from_der(chain, key, &provider)?;
    Ok(certified)
}

/// A TLS server configuration (TLS 1.2 and 1.3, no client auth) choosing certificates through `resolver`,
/// offering `alpn` protocols in preference order.
pub fn server_config(resolver: Arc<dyn ResolvesServerCert>, alpn: &[&[u8]]) -> Result<ServerConfig, CertError> {
    let mut config = ServerConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// A TLS server configuration serving one certificate for every name (the API server's).
pub fn single_cert_server_config(cert_pem: &str, key_pem: &str, alpn: &[&[u8]]) -> Result<ServerConfig, CertError> {
    let key = Arc::new(certified_key_from_pem(cert_pem, key_pem)?);
    server_config(Arc::new(SingleCert(key)), alpn)
}

/// A TLS client configuration trusting only the given PEM roots (the CLI and tests talking to berth).
pub fn client_config(root_pems: &[&str], alpn: &[&[u8]]) -> Result<ClientConfig, CertError> {
    let mut roots = RootCertStore::empty();
    for pem in root_pems {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots.add(cert.map_err(|e| CertError::Pem(e.to_string()))?)?;
        }
    }
    let mut config = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

#[derive(Debug)]
struct SingleCert(Arc<CertifiedKey>);

impl ResolvesServerCert for SingleCert {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}
