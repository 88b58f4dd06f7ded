use std::path::PathBuf;

/// Everything that can go wrong creating, loading or using certificates.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("invalid CA in {dir}: {reason}")]
    InvalidCa { dir: PathBuf, reason: String },
    #[error("invalid PEM: {0}")]
    Pem(String),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("a certificate needs at least one DNS name or IP address")]
    NoNames,
}

impl CertError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io { path: path.into(), source }
    }
}
