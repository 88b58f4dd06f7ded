//! Certificate renewal by the reconciler: a listener certificate that comes within the renewal window is
//! reissued by the internal CA on the next pass (also the first pass after a restart), the route table
//! version moves and carries the new certificate, and certificates not yet due are left alone.

use std::path::Path;
use std::sync::Arc;

use berth_control::ControlConfig;
use berth_routes::RouteTable;
use berth_store::{CertificateRow, Store, StoreError};

mod common;

use common::Harness;

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// The certificate the table carries for `host`.
fn cert_of<'a>(table: &'a RouteTable, host: &str) -> &'a berth_routes::Certificate {
    table.certificates.iter().find(|c| c.hosts.iter().any(|h| h == host)).expect("certificate for host")
}

/// Moves a stored certificate's `not_after` to `now + days` (the certificate itself is unchanged), as if
/// time had passed.
fn age(dir: &Path, host: &str, days: f64) -> f64 {
    let mut store = Store::open(&dir.join("berth.db")).expect("store");
    store
        .tx(|tx| {
            let row = tx.certificate_get(host)?.expect("stored certificate");
            let not_after = now() + days * 86_400.0;
            tx.certificate_put(&CertificateRow { not_after, ..row })?;
            Ok::<_, StoreError>(not_after)
        })
        .expect("age")
}

fn stored(dir: &Path, host: &str) -> CertificateRow {
    let mut store = Store::open(&dir.join("berth.db")).expect("store");
    store.tx(|tx| Ok::<_, StoreError>(tx.certificate_get(host)?.expect("stored"))).expect("read")
}

#[tokio::test]
async fn near_expiry_certificates_are_reissued_and_published() {
    let mut h = Harness::new("cert-renewal", |_| ControlConfig::default());
    h.create_express_roles().await;
    h.create_demo_service("web").await;
    h.settle().await;
    let default_host = h.control.default_host();
    let endpoint = h
        .table()
        .certificates
        .iter()
        .flat_map(|c| c.hosts.iter())
        .find(|host| **host != default_host)
        .cloned()
        .expect("the endpoint's certificate");
    let before: Arc<RouteTable> = h.table();
    let (endpoint_pem, default_pem) =
        (cert_of(&before, &endpoint).cert_pem.clone(), cert_of(&before, &default_host).cert_pem.clone());
    assert!(stored(&h.dir, &endpoint).not_after > now() + 89.0 * 86_400.0, "a fresh 90-day certificate");

    // Not due: passes change nothing.
    h.settle().await;
    assert_eq!(h.table().version, before.version);

    // The endpoint certificate now expires in 10 days (inside the 30-day window): the next pass reissues it.
    age(&h.dir, &endpoint, 10.0);
    h.control.reconcile_once().await.expect("pass");
    let after = h.table();
    assert!(after.version > before.version, "a new table carries the new certificate");
    let renewed = cert_of(&after, &endpoint);
    assert_ne!(renewed.cert_pem, endpoint_pem, "reissued");
    assert_ne!(renewed.key_pem, cert_of(&before, &endpoint).key_pem, "with a new key");
    h.ca.verify(&renewed.cert_pem, &endpoint).expect("the new certificate chains to the CA and names the host");
    assert_eq!(cert_of(&after, &default_host).cert_pem, default_pem, "a certificate not due is kept");
    assert!(stored(&h.dir, &endpoint).not_after > now() + 89.0 * 86_400.0);
    h.settle().await;
    assert_eq!(h.table().version, after.version, "renewed once, not on every pass");

    // Restart-safe: the default certificate comes due while the server is down; the restarted server
    // renews it at start, and an endpoint certificate due at restart is renewed by the first pass.
    age(&h.dir, &default_host, 29.0);
    age(&h.dir, &endpoint, 1.0);
    let endpoint_pem = renewed.cert_pem.clone();
    h.restart();
    h.control.reconcile_once().await.expect("pass");
    let restarted = h.table();
    assert!(restarted.version > after.version);
    assert_ne!(cert_of(&restarted, &default_host).cert_pem, default_pem);
    assert_ne!(cert_of(&restarted, &endpoint).cert_pem, endpoint_pem);
    for host in [&default_host, &endpoint] {
        assert!(stored(&h.dir, host).not_after > now() + 89.0 * 86_400.0, "{host}");
    }
}

#[tokio::test]
async fn the_renewal_window_is_configurable() {
    // A window longer than the validity: every certificate is due on every pass (the knob tests use).
    let h = Harness::new("cert-window", |_| ControlConfig {
        certificate_renew_before: std::time::Duration::from_secs(91 * 86_400),
        ..ControlConfig::default()
    });
    let host = h.control.default_host();
    let first = stored(&h.dir, &host).cert_pem;
    let v = h.table().version;
    h.control.reconcile_once().await.expect("pass");
    assert_ne!(stored(&h.dir, &host).cert_pem, first);
    assert!(h.table().version > v);
}
