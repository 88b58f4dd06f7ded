use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use time::OffsetDateTime;

use crate::error::CertError;
use crate::tls::{certified_key_from_pem, crypto_provider};

/// The root certificate's file in the CA directory.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The root key's file in the CA directory (mode 0600).
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// The root certificate's subject common name.
pub const CA_COMMON_NAME: &str = "berth internal CA";
/// How long an issued leaf certificate is valid.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(90 * 24 * 3600);

const CA_VALIDITY: time::Duration = time::Duration::days(3650);
/// Certificates start an hour in the past so that small clock skews do not reject them.
const BACKDATE: time::Duration = time::Duration::hours(1);

/// berth's internal root CA: signs leaf certificates for endpoint hosts and the API.
pub struct Ca {
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").field("subject", &CA_COMMON_NAME).finish_non_exhaustive()
    }
}

/// A leaf certificate and its private key, both PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCert {
    pub cert_pem: String,
    pub key_pem: String,
    pub not_after: SystemTime,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCert").field("not_after", &self.not_after).finish_non_exhaustive()
    }
}

/// The root's parameters. The subject is fixed, so a root loaded from disk signs with the same issuer name
/// it was created with (checked at load by verifying a freshly issued leaf against it).
fn ca_params(now: OffsetDateTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    dn.push(DnType::OrganizationName, "berth");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    params
}

impl Ca {
    /// Loads the CA from `dir` (`ca.pem`, `ca-key.pem`) or creates a new one there.
    ///
    /// A missing `ca.pem` means a new CA (a lone key is what an interrupted creation leaves behind); a
    /// certificate without its key, or a key that does not match, is an error: that root may already be in
    /// someone's trust store and must not be replaced silently.
    pub fn load_or_create(dir: &Path) -> Result<Ca, CertError> {
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        if cert_path.exists() {
            let cert_pem = fs::read_to_string(&cert_path).map_err(|e| CertError::io(&cert_path, e))?;
            let key_pem = fs::read_to_string(&key_path).map_err(|e| CertError::io(&key_path, e))?;
            return Ca::from_pem(&cert_pem, &key_pem)
                .map_err(|e| CertError::InvalidCa { dir: dir.to_path_buf(), reason: e.to_string() });
        }
        fs::create_dir_all(dir).map_err(|e| CertError::io(dir, e))?;
        let (ca, key_pem) = Ca::generate_with_key()?;
        // The key first: a crash between the two renames leaves a lone key, which the next start replaces.
        write_atomically(&key_path, key_pem.as_bytes(), 0o600)?;
        write_atomically(&cert_path, ca.cert_pem.as_bytes(), 0o644)?;
        tracing::info!(dir = %dir.display(), "created the internal CA");
        Ok(ca)
    }

    /// A new CA kept in memory only (tests, throwaway setups).
    pub fn generate() -> Result<Ca, CertError> {
        Ok(Ca::generate_with_key()?.0)
    }

    fn generate_with_key() -> Result<(Ca, String), CertError> {
        let key = KeyPair::generate()?;
        let key_pem = key.serialize_pem();
        let params = ca_params(OffsetDateTime::now_utc());
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        let cert_der = cert.der().clone();
        Ok((Ca { cert_pem, cert_der, issuer: Issuer::new(params, key) }, key_pem))
    }

    /// Builds a CA from its certificate and key, checking that they belong together.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca, CertError> {
        let cert_der =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| CertError::Pem(e.to_string()))?;
        // Does the key match the certificate's public key?
        certified_key_from_pem(cert_pem, key_pem)?;
        let key = KeyPair::from_pem(key_pem)?;
        let ca = Ca {
            cert_pem: cert_pem.to_owned(),
            cert_der,
            issuer: Issuer::new(ca_params(OffsetDateTime::now_utc()), key),
        };
        // Does a leaf signed with our issuer name chain to this certificate?
        let probe = ca.issue(&["ca-check.berth.invalid".to_owned()], &[])?;
        ca.verify(&probe.cert_pem, "ca-check.berth.invalid")?;
        Ok(ca)
    }

    /// The root certificate, PEM, for trust stores (`berth ca`).
    pub fn root_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The root certificate, DER.
    pub fn root_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Issues a 90-day server certificate for `dns_names` and `ips`, signed by this root.
    pub fn issue(&self, dns_names: &[String], ips: &[IpAddr]) -> Result<IssuedCert, CertError> {
        let common_name = match (dns_names.first(), ips.first()) {
            (Some(name), _) => name.clone(),
            (None, Some(ip)) => ip.to_string(),
            (None, None) => return Err(CertError::NoNames),
        };
        let now = OffsetDateTime::now_utc();
        let not_after = (now + LEAF_VALIDITY).replace_nanosecond(0).unwrap_or(now + LEAF_VALIDITY);
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.subject_alt_names = dns_names
            .iter()
            .map(|n| Ok(SanType::DnsName(n.clone().try_into()?)))
            .chain(ips.iter().map(|ip| Ok(SanType::IpAddress(*ip))))
            .collect::<Result<Vec<_>, rcgen::Error>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = now - BACKDATE;
        params.not_after = not_after;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCert { cert_pem: cert.pem(), key_pem: key.serialize_pem(), not_after: not_after.into() })
    }

    /// Checks that `cert_pem` chains to this root and is valid for `server_name` now.
    pub fn verify(&self, cert_pem: &str, server_name: &str) -> Result<(), CertError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert_der.clone())?;
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), crypto_provider())
            .build()
            .map_err(|e| CertError::Pem(e.to_string()))?;
        let leaf = CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| CertError::Pem(e.to_string()))?;
        let name = ServerName::try_from(server_name.to_owned()).map_err(|e| CertError::Pem(e.to_string()))?;
        verifier.verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())?;
        Ok(())
    }
}

/// Writes `path` through a temporary file and a rename, with `mode` on Unix.
fn write_atomically(path: &Path, contents: &[u8], mode: u32) -> Result<(), CertError> {
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&tmp).map_err(|e| CertError::io(&tmp, e))?;
    file.write_all(contents).and_then(|()| file.sync_all()).map_err(|e| CertError::io(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| CertError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn temp_dir(name: &str) -> PathBuf {
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!("berth-certs-{name}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn creates_then_loads_the_same_root() {
        let dir = temp_dir("create");
        let ca = Ca::load_or_create(&dir).expect("create");
        assert!(ca.root_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join(CA_KEY_FILE)).expect("key").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = Ca::load_or_create(&dir).expect("load");
        assert_eq!(again.root_pem(), ca.root_pem());
        // A leaf from the reloaded CA chains to the root created first.
        let leaf = again.issue(&["web-abc123.ecs.us-east-1.localhost".into()], &[]).expect("issue");
        ca.verify(&leaf.cert_pem, "web-abc123.ecs.us-east-1.localhost").expect("verifies");
        fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn issued_leaf_names_and_validity() {
        let ca = Ca::generate().expect("ca");
        let ip: IpAddr = "127.0.0.1".parse().expect("ip");
        let leaf = ca.issue(&["a.localhost".into(), "b.localhost".into()], &[ip]).expect("issue");
        for name in ["a.localhost", "b.localhost", "127.0.0.1"] {
            ca.verify(&leaf.cert_pem, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(ca.verify(&leaf.cert_pem, "c.localhost").is_err());
        let days = leaf.not_after.duration_since(SystemTime::now()).expect("future").as_secs() / 86_400;
        assert!((89..=90).contains(&days), "{days}");
        let other = Ca::generate().expect("other ca");
        assert!(other.verify(&leaf.cert_pem, "a.localhost").is_err(), "must not chain to another root");
        assert!(matches!(ca.issue(&[], &[]), Err(CertError::NoNames)));
    }

    #[test]
    fn broken_ca_directories() {
        // A lone key (interrupted creation) is replaced.
        let dir = temp_dir("lone-key");
        fs::write(dir.join(CA_KEY_FILE), "garbage").expect("write");
        Ca::load_or_create(&dir).expect("recreated");
        fs::remove_dir_all(&dir).ok();

        // A certificate without its key is an error.
        let dir = temp_dir("no-key");
        let ca = Ca::generate().expect("ca");
        fs::write(dir.join(CA_CERT_FILE), ca.root_pem()).expect("write");
        assert!(matches!(Ca::load_or_create(&dir), Err(CertError::Io { .. })));

        // A key that does not match the certificate is an error.
        let other_key = KeyPair::generate().expect("key").serialize_pem();
        fs::write(dir.join(CA_KEY_FILE), other_key).expect("write");
        assert!(matches!(Ca::load_or_create(&dir), Err(CertError::InvalidCa { .. })));

        // A leaf certificate posing as the root is an error too (its subject is not ours).
        let leaf = ca.issue(&["x.localhost".into()], &[]).expect("leaf");
        fs::write(dir.join(CA_CERT_FILE), &leaf.cert_pem).expect("write");
        fs::write(dir.join(CA_KEY_FILE), &leaf.key_pem).expect("write");
        assert!(matches!(Ca::load_or_create(&dir), Err(CertError::InvalidCa { .. })));
        fs::remove_dir_all(&dir).ok();
    }
}
