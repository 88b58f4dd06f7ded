//! Where task containers' DNS goes. A container on a user-defined network asks Docker's embedded resolver
//! (127.0.0.11 in its own namespace), which forwards what it cannot answer to upstream servers from inside the
//! container's network namespace: those queries leave with the task's address and pass the host's firewall
//! like the task's own traffic. The upstream servers are the engine's `--dns` for the container when berth sets
//! one (`runtime.dns_servers`), else the host's, chosen as Docker 20.10 chooses them: the nameservers of
//! `/etc/resolv.conf` (or of systemd-resolved's upstream file when that only names its stub 127.0.0.53),
//! without loopback addresses (unreachable from a container), and Google's public servers when none is left.
//! A daemon-wide `dns` setting (daemon.json) is not read.

use std::net::{IpAddr, Ipv4Addr};

/// The host's resolver configuration.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// systemd-resolved's list of upstream servers, used when `/etc/resolv.conf` only names its stub.
pub const SYSTEMD_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";
/// What Docker falls back to when the host names no usable server.
const DEFAULT_SERVERS: [IpAddr; 2] = [IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)), IpAddr::V4(Ipv4Addr::new(8, 8, 4, 4))];

/// The `nameserver` addresses of a resolv.conf text, in order.
fn nameservers(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            (words.next() == Some("nameserver")).then(|| words.next()?.parse().ok())?
        })
        .collect()
}

/// The servers Docker's embedded resolver forwards to for a container without its own `--dns`, given the
/// host's `/etc/resolv.conf` and, when it exists, systemd-resolved's upstream file.
pub fn host_upstreams(resolv_conf: &str, systemd: Option<&str>) -> Vec<IpAddr> {
    let mut servers = nameservers(resolv_conf);
    if servers == [IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53))]
        && let Some(systemd) = systemd
    {
        servers = nameservers(systemd);
    }
    servers.retain(|s| !s.is_loopback());
    if servers.is_empty() { DEFAULT_SERVERS.to_vec() } else { servers }
}

/// [`host_upstreams`] of this host's files (a missing `/etc/resolv.conf` reads as empty, as for Docker).
pub fn read_host_upstreams() -> Vec<IpAddr> {
    let etc = std::fs::read_to_string(RESOLV_CONF).unwrap_or_default();
    let systemd = std::fs::read_to_string(SYSTEMD_RESOLV_CONF).ok();
    host_upstreams(&etc, systemd.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_are_chosen_as_docker_chooses_them() {
        let ip = |s: &str| -> IpAddr { s.parse().expect("ip") };
        // (host resolv.conf, systemd-resolved's file, expected upstreams)
        let cases: [(&str, Option<&str>, Vec<IpAddr>); 7] = [
            ("nameserver 10.255.255.53\n", None, vec![ip("10.255.255.53")]),
            (
                "# comment\nsearch example.org\nnameserver 192.0.2.53\n nameserver  198.51.100.1 \noptions ndots:2\n",
                None,
                vec![ip("192.0.2.53"), ip("198.51.100.1")],
            ),
            ("nameserver 127.0.0.1\nnameserver 192.0.2.53\n", None, vec![ip("192.0.2.53")]),
            (
                "nameserver 127.0.0.53\n",
                Some("nameserver 192.0.2.1\nnameserver fd00::1\n"),
                vec![ip("192.0.2.1"), ip("fd00::1")],
            ),
            ("nameserver 127.0.0.53\n", None, DEFAULT_SERVERS.to_vec()),
            ("nameserver ::1\nnameserver not-an-address\n", None, DEFAULT_SERVERS.to_vec()),
            ("", Some("nameserver 192.0.2.1\n"), DEFAULT_SERVERS.to_vec()),
        ];
        for (etc, systemd, want) in cases {
            assert_eq!(host_upstreams(etc, systemd), want, "{etc:?} / {systemd:?}");
        }
    }
}
