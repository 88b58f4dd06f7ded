use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::tls::certified_key_from_pem;

/// One certificate offered by an [`SniResolver`]: the hosts it serves (exact names or `*.domain`
/// wildcards) and its PEM chain and key.
#[derive(Debug, Clone, Copy)]
pub struct CertEntry<'a> {
    pub id: &'a str,
    pub hosts: &'a [String],
    pub cert_pem: &'a str,
    pub key_pem: &'a str,
}

/// Chooses a certificate by SNI: an exact host (case-insensitive), then a one-label wildcard
/// (`*.example.com` serves `a.example.com`, not `a.b.example.com` nor `example.com`), else the default
/// (the first valid certificate). Certificates are parsed once, at construction.
#[derive(Default)]
pub struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
    count: usize,
}

impl std::fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SniResolver")
            .field("certificates", &self.count)
            .field("exact", &self.exact.len())
            .field("wildcard", &self.wildcard.len())
            .finish()
    }
}

/// Lowercases a server name and drops a trailing dot.
pub fn normalize_server_name(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

impl SniResolver {
    /// Builds the resolver; a certificate that does not parse or does not match its key is skipped and
    /// logged. When two certificates claim the same host, the first wins.
    pub fn new<'a>(entries: impl IntoIterator<Item = CertEntry<'a>>) -> Self {
        let mut resolver = SniResolver::default();
        for entry in entries {
            let key = match certified_key_from_pem(entry.cert_pem, entry.key_pem) {
                Ok(key) => Arc::new(key),
                Err(e) => {
                    tracing::warn!(certificate = entry.id, error = %e, "skipping an invalid certificate");
                    continue;
                }
            };
            resolver.count += 1;
            if resolver.default.is_none() {
                resolver.default = Some(key.clone());
            }
            for host in entry.hosts {
                let host = normalize_server_name(host);
                let (map, name) = match host.strip_prefix("*.") {
                    Some(suffix) => (&mut resolver.wildcard, suffix.to_owned()),
                    None => (&mut resolver.exact, host),
                };
                if name.is_empty() || name.contains('*') {
                    tracing::warn!(certificate = entry.id, host = %name, "ignoring an invalid certificate host");
                    continue;
                }
                map.entry(name).or_insert_with(|| key.clone());
            }
        }
        resolver
    }

    /// The certificate for `server_name` (the client's SNI, if it sent one).
    pub fn select(&self, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = server_name {
            let name = normalize_server_name(name);
            if let Some(key) = self.exact.get(&name) {
                return Some(key.clone());
            }
            if let Some((_, parent)) = name.split_once('.')
                && let Some(key) = self.wildcard.get(parent)
            {
                return Some(key.clone());
            }
        }
        self.default.clone()
    }

    /// How many valid certificates the resolver holds.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.select(hello.server_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ca, IssuedCert, client_config, server_config};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};

    fn der(cert: &IssuedCert) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(cert.cert_pem.as_bytes()).expect("der")
    }

    struct Fixture {
        ca: Ca,
        certs: Vec<(&'static str, Vec<String>, IssuedCert)>,
    }

    fn fixture() -> Fixture {
        let ca = Ca::generate().expect("ca");
        let specs: [(&str, &[&str]); 3] = [
            ("first", &["first.localhost"]),
            ("exact", &["a.example.com", "B.Example.Com"]),
            ("wild", &["*.wild.test"]),
        ];
        let certs = specs
            .iter()
            .map(|(id, hosts)| {
                let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
                (*id, hosts.clone(), ca.issue(&hosts, &[]).expect("issue"))
            })
            .collect();
        Fixture { ca, certs }
    }

    fn resolver(f: &Fixture, extra_invalid: bool) -> SniResolver {
        let bad_hosts = vec!["bad.localhost".to_string()];
        let mut entries: Vec<CertEntry<'_>> = Vec::new();
        if extra_invalid {
            // Invalid entries come first: they must neither be served nor become the default.
            entries.push(CertEntry { id: "garbage", hosts: &bad_hosts, cert_pem: "nope", key_pem: "nope" });
            let (_, _, a) = &f.certs[0];
            let (_, _, b) = &f.certs[1];
            entries.push(CertEntry { id: "mismatch", hosts: &bad_hosts, cert_pem: &a.cert_pem, key_pem: &b.key_pem });
        }
        for (id, hosts, cert) in &f.certs {
            entries.push(CertEntry { id, hosts, cert_pem: &cert.cert_pem, key_pem: &cert.key_pem });
        }
        SniResolver::new(entries)
    }

    #[test]
    fn selection_table() {
        let f = fixture();
        let r = resolver(&f, true);
        assert_eq!(r.len(), 3);
        let by_id = |id: &str| der(&f.certs.iter().find(|(i, _, _)| *i == id).expect("id").2);
        let cases: &[(Option<&str>, &str)] = &[
            (Some("a.example.com"), "exact"),
            (Some("A.EXAMPLE.COM"), "exact"),
            (Some("a.example.com."), "exact"),
            (Some("b.example.com"), "exact"),
            (Some("x.wild.test"), "wild"),
            (Some("Other.Wild.Test"), "wild"),
            (Some("x.y.wild.test"), "first"),
            (Some("wild.test"), "first"),
            (Some("c.example.com"), "first"),
            (Some("bad.localhost"), "first"),
            (Some("first.localhost"), "first"),
            (None, "first"),
        ];
        for (sni, want) in cases {
            let got = r.select(*sni).expect("a certificate");
            assert_eq!(got.cert[0], by_id(want), "sni {sni:?} should get {want}");
        }
    }

    #[test]
    fn empty_resolver_has_nothing() {
        let r = SniResolver::new([]);
        assert!(r.is_empty());
        assert!(r.select(Some("a.example.com")).is_none());
        assert!(r.select(None).is_none());
    }

    #[tokio::test]
    async fn tls_handshake_picks_the_sni_certificate_and_alpn() {
        let f = fixture();
        let server = Arc::new(server_config(Arc::new(resolver(&f, false)), &[b"h2", b"http/1.1"]).expect("server"));
        let client = Arc::new(client_config(&[f.ca.root_pem()], &[b"h2"]).expect("client"));
        for (name, want) in [("b.example.com", "exact"), ("zz.wild.test", "wild")] {
            let (c, s) = tokio::io::duplex(64 * 1024);
            let acceptor = tokio_rustls::TlsAcceptor::from(server.clone());
            let server_task = tokio::spawn(async move { acceptor.accept(s).await.map(|_| ()) });
            let connector = tokio_rustls::TlsConnector::from(client.clone());
            let sni = ServerName::try_from(name.to_string()).expect("name");
            let tls = connector.connect(sni, c).await.expect("handshake verifies against the root");
            let (_, conn) = tls.get_ref();
            assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
            let peer = conn.peer_certificates().expect("peer certs");
            let want_der = der(&f.certs.iter().find(|(i, _, _)| *i == want).expect("id").2);
            assert_eq!(peer[0], want_der);
            server_task.await.expect("join").expect("server handshake");
        }
    }
}
