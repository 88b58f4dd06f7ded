//! CIDR blocks (IPv4 and IPv6): parsing as EC2 accepts them, the canonical network form, and containment.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// A network: an address with its host bits cleared, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// The network `addr/prefix`, host bits cleared; `None` when the prefix is too long for the family.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Cidr> {
        match addr {
            IpAddr::V4(a) if prefix <= 32 => {
                let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
                Some(Cidr { addr: IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask)), prefix })
            }
            IpAddr::V6(a) if prefix <= 128 => {
                let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
                Some(Cidr { addr: IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask)), prefix })
            }
            _ => None,
        }
    }

    /// The single-address network of `addr` (/32 or /128).
    pub fn host(addr: IpAddr) -> Cidr {
        Cidr { addr, prefix: if addr.is_ipv4() { 32 } else { 128 } }
    }

    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    pub fn is_ipv4(&self) -> bool {
        self.addr.is_ipv4()
    }

    /// Whether `ip` lies in this network (never across families).
    pub fn contains(&self, ip: IpAddr) -> bool {
        Cidr::new(ip, self.prefix).is_some_and(|n| n.addr == self.addr)
    }

    /// The `index`-th block of prefix `prefix` inside this one (`None` past the end or for a shorter prefix).
    pub fn subnet(&self, prefix: u8, index: u32) -> Option<Cidr> {
        match self.addr {
            IpAddr::V4(a) if prefix >= self.prefix && prefix <= 32 => {
                let bits = u32::from(prefix - self.prefix);
                if bits < 32 && u64::from(index) >= (1u64 << bits) {
                    return None;
                }
                let step = if prefix == 32 { 1u64 } else { 1u64 << (32 - prefix) };
                let base = u64::from(u32::from(a)) + u64::from(index) * step;
                let base = u32::try_from(base).ok()?;
                Cidr::new(IpAddr::V4(Ipv4Addr::from(base)), prefix)
            }
            _ => None,
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a CIDR block (expected address/prefix, such as 10.0.0.0/16 or 2001:db8::/32)")]
pub struct CidrError(pub String);

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let err = || CidrError(s.to_string());
        let (addr, prefix) = s.split_once('/').ok_or_else(err)?;
        if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let addr: IpAddr = addr.parse().map_err(|_| err())?;
        let prefix: u8 = prefix.parse().map_err(|_| err())?;
        Cidr::new(addr, prefix).ok_or_else(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_canonicalizes() {
        let cases: &[(&str, Option<&str>)] = &[
            ("10.0.0.0/8", Some("10.0.0.0/8")),
            ("10.1.2.3/8", Some("10.0.0.0/8")),
            ("0.0.0.0/0", Some("0.0.0.0/0")),
            ("192.168.1.7/32", Some("192.168.1.7/32")),
            ("::/0", Some("::/0")),
            ("2001:db8::1/32", Some("2001:db8::/32")),
            ("10.0.0.0/33", None),
            ("10.0.0.0", None),
            ("10.0.0/8", None),
            ("10.0.0.0/-1", None),
            ("10.0.0.0/", None),
            ("::/129", None),
            ("x/8", None),
        ];
        for (input, want) in cases {
            let got = input.parse::<Cidr>().ok().map(|c| c.to_string());
            assert_eq!(got.as_deref(), *want, "{input}");
        }
    }

    #[test]
    fn contains_within_one_family() {
        let cases: &[(&str, &str, bool)] = &[
            ("10.0.0.0/8", "10.255.1.1", true),
            ("10.0.0.0/8", "11.0.0.1", false),
            ("0.0.0.0/0", "203.0.113.9", true),
            ("0.0.0.0/0", "::1", false),
            ("::/0", "::1", true),
            ("::/0", "127.0.0.1", false),
            ("172.18.0.5/32", "172.18.0.5", true),
            ("172.18.0.5/32", "172.18.0.6", false),
            ("2001:db8::/32", "2001:db8:ffff::1", true),
            ("2001:db8::/32", "2001:db9::1", false),
        ];
        for (net, ip, want) in cases {
            let net: Cidr = net.parse().expect(net);
            assert_eq!(net.contains(ip.parse().expect(ip)), *want, "{net} ∋ {ip}");
        }
    }

    #[test]
    fn carves_subnets() {
        let vpc: Cidr = "172.31.0.0/16".parse().expect("cidr");
        assert_eq!(vpc.subnet(20, 0).map(|c| c.to_string()).as_deref(), Some("172.31.0.0/20"));
        assert_eq!(vpc.subnet(20, 2).map(|c| c.to_string()).as_deref(), Some("172.31.32.0/20"));
        assert_eq!(vpc.subnet(20, 15).map(|c| c.to_string()).as_deref(), Some("172.31.240.0/20"));
        assert_eq!(vpc.subnet(20, 16), None);
        assert_eq!(vpc.subnet(8, 0), None);
    }
}
