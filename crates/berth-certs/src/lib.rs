//! berth-certs: berth's internal certificate authority and the TLS plumbing around it.
//!
//! It owns the root CA (an ECDSA P-256 key and self-signed certificate kept in the data directory), the
//! leaf certificates it issues for endpoint hosts and the API, the SNI certificate resolver, and the
//! rustls configurations built on the one crypto provider of the tree (ring). It must never know routes,
//! services or the store, never open sockets, and never pull in another crypto provider.

mod ca;
mod error;
mod sni;
mod tls;

pub use ca::{CA_CERT_FILE, CA_COMMON_NAME, CA_KEY_FILE, Ca, IssuedCert, LEAF_VALIDITY};
pub use error::CertError;
pub use sni::{CertEntry, SniResolver, normalize_server_name};
pub use tls::{certified_key_from_pem, client_config, crypto_provider, server_config, single_cert_server_config};
