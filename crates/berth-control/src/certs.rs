//! Renewal of the certificates the HTTPS listeners serve: the default wildcard certificate and each endpoint's
//! listener certificate, all issued by the internal CA for [`berth_certs::LEAF_VALIDITY`].
//!
//! Level-triggered and restart-safe: every reconciler pass reads the stored certificates' `not_after` and
//! reissues those that expire within [`crate::ControlConfig::certificate_renew_before`]; the new certificate
//! replaces the row in one transaction, and the pass's route publication ships it to the proxies (which
//! swap their snapshot: existing TLS connections keep their session, new handshakes get the new
//! certificate). A crash between issuing and writing only wastes the issued certificate; the next pass
//! issues again.

use std::time::Duration;

use berth_store::CertificateRow;

use crate::{Control, ControlError};

/// Whether a certificate valid until `not_after` must be reissued at `now` (epoch seconds).
pub(crate) fn due(not_after: f64, now: f64, renew_before: Duration) -> bool {
    not_after - renew_before.as_secs_f64() <= now
}

impl Control {
    /// Every certificate host the listeners serve (the default first).
    fn served_certificate_hosts(&self, tx: &berth_store::Tx<'_>) -> Result<Vec<String>, ControlError> {
        let mut hosts = vec![self.default_host()];
        hosts.extend(crate::elbv2::certificate_hosts(tx)?);
        Ok(hosts)
    }

    /// Issues a certificate for `host`; the caller stores it (issue outside any transaction: signing is CPU work).
    pub(crate) fn issue_certificate(&self, host: &str) -> Result<CertificateRow, ControlError> {
        let cert = self.ca.issue(&[host.to_owned()], &[]).map_err(|e| ControlError::Certificate(e.to_string()))?;
        let not_after = cert.not_after.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        Ok(CertificateRow { host: host.to_owned(), cert_pem: cert.cert_pem, key_pem: cert.key_pem, not_after })
    }

    /// Reissues every served certificate that is missing or expires within the renewal window at `now`.
    /// Returns how many were renewed; a failure to issue one is logged and retried on the next pass.
    pub(crate) fn renew_certificates(&self, now: f64) -> Result<usize, ControlError> {
        let renew_before = self.config.certificate_renew_before;
        let hosts = self.tx(|tx| {
            let mut due_hosts = Vec::new();
            for host in self.served_certificate_hosts(tx)? {
                let row = tx.certificate_get(&host)?;
                if row.as_ref().is_none_or(|c| due(c.not_after, now, renew_before)) {
                    due_hosts.push((host, row.map(|c| c.not_after)));
                }
            }
            Ok(due_hosts)
        })?;
        let mut renewed = 0;
        for (host, old) in hosts {
            let row = match self.issue_certificate(&host) {
                Ok(row) => row,
                Err(e) => {
                    tracing::warn!(%host, error = %e, "cannot renew a certificate; retrying on the next pass");
                    continue;
                }
            };
            let not_after = row.not_after;
            // Written only if nobody renewed it meanwhile (the row is still the one judged due).
            let written = self.tx(|tx| {
                let current = tx.certificate_get(&host)?.map(|c| c.not_after);
                if current != old {
                    return Ok(false);
                }
                tx.certificate_put(&row)?;
                Ok(true)
            })?;
            if written {
                tracing::info!(%host, old_not_after = ?old, not_after, "renewed a certificate");
                renewed += 1;
            }
        }
        Ok(renewed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_table() {
        const DAY: f64 = 86_400.0;
        let window = Duration::from_secs(30 * 86_400);
        // (not_after, now, due)
        let cases = [
            (100.0 * DAY, 0.0, false),
            (90.0 * DAY, 0.0, false),
            (30.0 * DAY + 1.0, 0.0, false),
            (30.0 * DAY, 0.0, true),
            (10.0 * DAY, 0.0, true),
            (-1.0, 0.0, true),
            (90.0 * DAY, 60.0 * DAY, true),
            (90.0 * DAY, 59.0 * DAY, false),
        ];
        for (not_after, now, want) in cases {
            assert_eq!(due(not_after, now, window), want, "not_after {not_after} now {now}");
        }
        assert!(!due(DAY, 0.0, Duration::ZERO));
        assert!(due(DAY, DAY, Duration::ZERO));
    }
}
