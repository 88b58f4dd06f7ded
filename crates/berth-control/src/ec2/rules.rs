//! Security group rules, pure: turning EC2 `IpPermission`s into normalized rules (as EC2 validates and
//! canonicalizes them), grouping rules back into `IpPermission`s, and what a set of ingress rules allows —
//! for the firewall ([`allows`], [`to_allows`]) and for the load balancer's source filter
//! ([`allowed_sources`]).

use std::net::IpAddr;

use berth_core::ErrorCode;
use berth_core::cidr::Cidr;
use berth_model::ec2::{IpPermission, IpRange, Ipv6Range, UserIdGroupPair};
use berth_runtime::firewall::{Allow, Protocol};
use berth_store::SecurityGroupRuleRow;

use crate::ControlError;

/// Where a rule's traffic comes from (ingress) or goes to (egress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    V4(Cidr),
    V6(Cidr),
    /// Members of a security group (by id).
    Group(String),
}

/// One normalized rule, before it gets an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    /// `-1`, `tcp`, `udp`, `icmp`, `icmpv6` or another protocol number.
    pub protocol: String,
    pub from_port: i32,
    pub to_port: i32,
    pub peer: Peer,
    pub description: Option<String>,
}

impl RuleSpec {
    /// Whether `row` is the same rule (descriptions do not count, as in EC2's duplicate check).
    pub fn same_as(&self, row: &SecurityGroupRuleRow) -> bool {
        self.protocol == row.protocol
            && self.from_port == row.from_port
            && self.to_port == row.to_port
            && peer_of(row).as_ref() == Some(&self.peer)
    }
}

/// The peer a stored rule names.
pub fn peer_of(row: &SecurityGroupRuleRow) -> Option<Peer> {
    if let Some(c) = row.cidr_ipv4.as_deref().and_then(|c| c.parse().ok()) {
        return Some(Peer::V4(c));
    }
    if let Some(c) = row.cidr_ipv6.as_deref().and_then(|c| c.parse().ok()) {
        return Some(Peer::V6(c));
    }
    row.referenced_group_id.clone().map(Peer::Group)
}

fn bad(message: impl Into<String>) -> ControlError {
    ControlError::code(ErrorCode::InvalidParameterValue, message)
}

/// The canonical protocol name and port range of a permission, validated as EC2 does.
pub fn normalize_protocol(
    protocol: Option<&str>,
    from: Option<i32>,
    to: Option<i32>,
) -> Result<(String, i32, i32), ControlError> {
    let raw = protocol.ok_or_else(|| {
        ControlError::code(ErrorCode::MissingParameter, "The request must contain the parameter ipProtocol")
    })?;
    let name = match raw.to_ascii_lowercase().as_str() {
        "-1" | "all" => "-1".to_string(),
        "tcp" | "6" => "tcp".into(),
        "udp" | "17" => "udp".into(),
        "icmp" | "1" => "icmp".into(),
        "icmpv6" | "58" => "icmpv6".into(),
        other => match other.parse::<u8>() {
            Ok(n) => n.to_string(),
            Err(_) => return Err(bad(format!("Invalid value '{raw}' for IP protocol. Unknown protocol."))),
        },
    };
    match name.as_str() {
        "tcp" | "udp" => {
            let (Some(f), Some(t)) = (from, to) else {
                return Err(bad(format!(
                    "Invalid value 'Must specify both from and to ports with TCP/UDP.' for portRange ({name})."
                )));
            };
            if !(0..=65535).contains(&f) || !(0..=65535).contains(&t) || f > t {
                return Err(bad(format!(
                    "Invalid port range {f}-{t}: ports must be between 0 and 65535, and fromPort at most toPort."
                )));
            }
            Ok((name, f, t))
        }
        "icmp" | "icmpv6" => {
            let (f, t) = (from.unwrap_or(-1), to.unwrap_or(-1));
            if !(-1..=255).contains(&f) || !(-1..=255).contains(&t) {
                return Err(bad(format!("Invalid ICMP type {f} or code {t}: each must be between -1 and 255.")));
            }
            Ok((name, f, t))
        }
        _ => Ok((name, -1, -1)),
    }
}

/// The rules one permission stands for: one per IP range, IPv6 range and group pair. `resolve_group`
/// turns a pair's group id or name into an existing group id.
pub fn specs_from_permission(
    p: &IpPermission,
    mut resolve_group: impl FnMut(&UserIdGroupPair) -> Result<String, ControlError>,
) -> Result<Vec<RuleSpec>, ControlError> {
    let (protocol, from_port, to_port) = normalize_protocol(p.ip_protocol.as_deref(), p.from_port, p.to_port)?;
    let mut out = Vec::new();
    let mut push = |peer, description: Option<String>| {
        out.push(RuleSpec { protocol: protocol.clone(), from_port, to_port, peer, description });
    };
    for r in p.ip_ranges.iter().flatten() {
        let raw = r.cidr_ip.as_deref().unwrap_or_default();
        let c: Cidr = raw.parse().map_err(|_| bad(format!("CIDR block {raw} is malformed")))?;
        if !c.is_ipv4() {
            return Err(bad(format!("CIDR block {raw} is malformed: IpRanges take IPv4 blocks; use Ipv6Ranges.")));
        }
        push(Peer::V4(c), r.description.clone());
    }
    for r in p.ipv6_ranges.iter().flatten() {
        let raw = r.cidr_ipv6.as_deref().unwrap_or_default();
        let c: Cidr = raw.parse().map_err(|_| bad(format!("CIDR block {raw} is malformed")))?;
        if c.is_ipv4() {
            return Err(bad(format!("CIDR block {raw} is malformed: Ipv6Ranges take IPv6 blocks.")));
        }
        push(Peer::V6(c), r.description.clone());
    }
    for pair in p.user_id_group_pairs.iter().flatten() {
        push(Peer::Group(resolve_group(pair)?), pair.description.clone());
    }
    if p.prefix_list_ids.as_ref().is_some_and(|l| !l.is_empty()) {
        return Err(ControlError::code(ErrorCode::UnsupportedFeature, "Prefix lists are not supported by berth."));
    }
    Ok(out)
}

/// Stored rules grouped into `IpPermission`s (one per protocol and port range, in first-seen order), as
/// DescribeSecurityGroups shows them.
pub fn to_permissions(rules: &[&SecurityGroupRuleRow], owner: &str, vpc_id: &str) -> Vec<IpPermission> {
    let mut out: Vec<IpPermission> = Vec::new();
    for r in rules {
        let key = (Some(r.protocol.clone()), ports(r).0, ports(r).1);
        let idx = match out.iter().position(|p| (p.ip_protocol.clone(), p.from_port, p.to_port) == key) {
            Some(i) => i,
            None => {
                out.push(IpPermission {
                    ip_protocol: key.0,
                    from_port: key.1,
                    to_port: key.2,
                    user_id_group_pairs: Some(Vec::new()),
                    ip_ranges: Some(Vec::new()),
                    ipv6_ranges: Some(Vec::new()),
                    prefix_list_ids: Some(Vec::new()),
                });
                out.len() - 1
            }
        };
        let p = &mut out[idx];
        match peer_of(r) {
            Some(Peer::V4(c)) => p
                .ip_ranges
                .get_or_insert_with(Vec::new)
                .push(IpRange { cidr_ip: Some(c.to_string()), description: r.description.clone() }),
            Some(Peer::V6(c)) => p
                .ipv6_ranges
                .get_or_insert_with(Vec::new)
                .push(Ipv6Range { cidr_ipv6: Some(c.to_string()), description: r.description.clone() }),
            Some(Peer::Group(g)) => p.user_id_group_pairs.get_or_insert_with(Vec::new).push(UserIdGroupPair {
                group_id: Some(g),
                user_id: Some(owner.to_string()),
                vpc_id: Some(vpc_id.to_string()),
                description: r.description.clone(),
                ..Default::default()
            }),
            None => {}
        }
    }
    out
}

/// The ports EC2 shows for a rule: none for "all protocols".
pub fn ports(r: &SecurityGroupRuleRow) -> (Option<i32>, Option<i32>) {
    if r.protocol == "-1" { (None, None) } else { (Some(r.from_port), Some(r.to_port)) }
}

fn protocol_of(name: &str) -> Protocol {
    match name {
        "-1" => Protocol::All,
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "icmp" => Protocol::Icmp,
        "icmpv6" => Protocol::Number(58),
        n => n.parse().map(Protocol::Number).unwrap_or(Protocol::All),
    }
}

/// Whether an ingress rule lets `source` (a member of `source_groups`) open `protocol` traffic to `port`.
pub fn allows(r: &SecurityGroupRuleRow, protocol: Protocol, port: u16, source: IpAddr, source_groups: &[&str]) -> bool {
    if r.egress {
        return false;
    }
    let proto_ok = match protocol_of(&r.protocol) {
        Protocol::All => true,
        p => p == protocol,
    };
    let port_ok = match protocol_of(&r.protocol) {
        Protocol::Tcp | Protocol::Udp => (r.from_port..=r.to_port).contains(&i32::from(port)),
        _ => true,
    };
    let peer_ok = match peer_of(r) {
        Some(Peer::V4(c) | Peer::V6(c)) => c.contains(source),
        Some(Peer::Group(g)) => source_groups.contains(&g.as_str()),
        None => false,
    };
    proto_ok && port_ok && peer_ok
}

/// The firewall entries an ingress rule stands for, given the addresses of the groups it may reference.
pub fn to_allows(r: &SecurityGroupRuleRow, members: &dyn Fn(&str) -> Vec<Cidr>) -> Vec<Allow> {
    if r.egress {
        return Vec::new();
    }
    peer_allows(r, members)
}

/// A rule of either direction as firewall entries whose `source` is the rule's peer (where an ingress rule's
/// traffic comes from, where an egress rule's goes to).
pub fn peer_allows(r: &SecurityGroupRuleRow, members: &dyn Fn(&str) -> Vec<Cidr>) -> Vec<Allow> {
    let protocol = protocol_of(&r.protocol);
    let ports = match protocol {
        Protocol::Tcp | Protocol::Udp => {
            let (f, t) = (u16::try_from(r.from_port).unwrap_or(0), u16::try_from(r.to_port).unwrap_or(u16::MAX));
            if (f, t) == (0, u16::MAX) { None } else { Some((f, t)) }
        }
        _ => None,
    };
    let sources = match peer_of(r) {
        Some(Peer::V4(c) | Peer::V6(c)) => vec![c],
        Some(Peer::Group(g)) => members(&g),
        None => Vec::new(),
    };
    sources.into_iter().map(|source| Allow { protocol, ports, source }).collect()
}

/// The source networks a group's ingress rules admit on TCP `port`: what the proxy lets connect to a
/// load balancer listener guarded by this group. Group references contribute their members' addresses.
pub fn allowed_sources(rules: &[SecurityGroupRuleRow], port: u16, members: &dyn Fn(&str) -> Vec<Cidr>) -> Vec<Cidr> {
    let mut out: Vec<Cidr> = rules
        .iter()
        .flat_map(|r| to_allows(r, members))
        .filter(|a| {
            matches!(a.protocol, Protocol::All | Protocol::Tcp) && a.ports.is_none_or(|(f, t)| (f..=t).contains(&port))
        })
        .map(|a| a.source)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(protocol: &str, from: i32, to: i32, peer: &str) -> SecurityGroupRuleRow {
        let (v4, v6, group) = if peer.starts_with("sg-") {
            (None, None, Some(peer.to_string()))
        } else if peer.contains(':') {
            (None, Some(peer.to_string()), None)
        } else {
            (Some(peer.to_string()), None, None)
        };
        SecurityGroupRuleRow {
            id: "sgr-1".into(),
            group_id: "sg-self".into(),
            egress: false,
            protocol: protocol.into(),
            from_port: from,
            to_port: to,
            cidr_ipv4: v4,
            cidr_ipv6: v6,
            referenced_group_id: group,
            description: None,
        }
    }

    #[test]
    fn protocols_and_ports_normalize_like_ec2() {
        type Case<'a> = (Option<&'a str>, Option<i32>, Option<i32>, Result<(&'a str, i32, i32), &'a str>);
        let cases: &[Case<'_>] = &[
            (Some("tcp"), Some(80), Some(80), Ok(("tcp", 80, 80))),
            (Some("6"), Some(1000), Some(2000), Ok(("tcp", 1000, 2000))),
            (Some("UDP"), Some(53), Some(53), Ok(("udp", 53, 53))),
            (Some("-1"), Some(1), Some(2), Ok(("-1", -1, -1))),
            (Some("all"), None, None, Ok(("-1", -1, -1))),
            (Some("icmp"), None, None, Ok(("icmp", -1, -1))),
            (Some("icmp"), Some(8), Some(0), Ok(("icmp", 8, 0))),
            (Some("47"), None, None, Ok(("47", -1, -1))),
            (Some("tcp"), None, Some(80), Err("InvalidParameterValue")),
            (Some("tcp"), Some(90), Some(80), Err("InvalidParameterValue")),
            (Some("tcp"), Some(0), Some(65536), Err("InvalidParameterValue")),
            (Some("tcp"), Some(-1), Some(80), Err("InvalidParameterValue")),
            (Some("gre"), None, None, Err("InvalidParameterValue")),
            (Some("300"), None, None, Err("InvalidParameterValue")),
            (None, Some(80), Some(80), Err("MissingParameter")),
        ];
        for (p, f, t, want) in cases {
            let got = normalize_protocol(*p, *f, *t).map_err(|e| berth_core::AwsError::from(e).code.name());
            let want = want.map(|(n, a, b)| (n.to_string(), a, b));
            assert_eq!(got, want, "{p:?} {f:?} {t:?}");
        }
    }

    #[test]
    fn permissions_expand_to_one_rule_per_peer() {
        let p = IpPermission {
            ip_protocol: Some("tcp".into()),
            from_port: Some(443),
            to_port: Some(443),
            ip_ranges: Some(vec![IpRange { cidr_ip: Some("10.1.2.3/8".into()), description: Some("d".into()) }]),
            ipv6_ranges: Some(vec![Ipv6Range { cidr_ipv6: Some("::/0".into()), description: None }]),
            user_id_group_pairs: Some(vec![UserIdGroupPair { group_id: Some("sg-a".into()), ..Default::default() }]),
            prefix_list_ids: None,
        };
        let specs = specs_from_permission(&p, |g| Ok(g.group_id.clone().unwrap_or_default())).expect("valid");
        let peers: Vec<Peer> = specs.iter().map(|s| s.peer.clone()).collect();
        assert_eq!(
            peers,
            vec![
                Peer::V4("10.0.0.0/8".parse().expect("cidr")),
                Peer::V6("::/0".parse().expect("cidr")),
                Peer::Group("sg-a".into())
            ]
        );
        assert_eq!(specs[0].description.as_deref(), Some("d"));
        let bad_cases = [
            IpPermission {
                ip_ranges: Some(vec![IpRange { cidr_ip: Some("::/0".into()), description: None }]),
                ..p.clone()
            },
            IpPermission {
                ip_ranges: Some(vec![IpRange { cidr_ip: Some("10.0.0.0/40".into()), description: None }]),
                ..p.clone()
            },
            IpPermission {
                ipv6_ranges: Some(vec![Ipv6Range { cidr_ipv6: Some("10.0.0.0/8".into()), description: None }]),
                ..p.clone()
            },
        ];
        for b in bad_cases {
            assert!(specs_from_permission(&b, |_| Ok("sg-a".into())).is_err(), "{b:?}");
        }
    }

    #[test]
    fn ingress_rules_match_protocol_port_and_source() {
        let v4 = |s: &str| -> IpAddr { s.parse().expect("ip") };
        // (rule, protocol, port, source, source groups, allowed)
        type Case<'a> = (SecurityGroupRuleRow, Protocol, u16, &'a str, &'a [&'a str], bool);
        let cases: &[Case<'_>] = &[
            (rule("tcp", 80, 80, "0.0.0.0/0"), Protocol::Tcp, 80, "203.0.113.5", &[], true),
            (rule("tcp", 80, 80, "0.0.0.0/0"), Protocol::Tcp, 81, "203.0.113.5", &[], false),
            (rule("tcp", 80, 80, "0.0.0.0/0"), Protocol::Udp, 80, "203.0.113.5", &[], false),
            (rule("tcp", 80, 80, "0.0.0.0/0"), Protocol::Tcp, 80, "::1", &[], false),
            (rule("tcp", 80, 80, "::/0"), Protocol::Tcp, 80, "::1", &[], true),
            (rule("tcp", 8000, 8999, "10.0.0.0/8"), Protocol::Tcp, 8500, "10.9.9.9", &[], true),
            (rule("tcp", 8000, 8999, "10.0.0.0/8"), Protocol::Tcp, 9000, "10.9.9.9", &[], false),
            (rule("tcp", 8000, 8999, "10.0.0.0/8"), Protocol::Tcp, 8500, "11.0.0.1", &[], false),
            (rule("udp", 53, 53, "10.0.0.0/8"), Protocol::Udp, 53, "10.0.0.1", &[], true),
            (rule("-1", -1, -1, "10.0.0.0/8"), Protocol::Udp, 9, "10.0.0.1", &[], true),
            (rule("-1", -1, -1, "10.0.0.0/8"), Protocol::Tcp, 65535, "10.0.0.1", &[], true),
            (rule("-1", -1, -1, "10.0.0.0/8"), Protocol::Tcp, 1, "192.168.0.1", &[], false),
            (rule("icmp", -1, -1, "0.0.0.0/0"), Protocol::Icmp, 0, "1.2.3.4", &[], true),
            (rule("icmp", -1, -1, "0.0.0.0/0"), Protocol::Tcp, 0, "1.2.3.4", &[], false),
            (rule("tcp", 80, 80, "sg-lb"), Protocol::Tcp, 80, "172.18.0.9", &["sg-lb"], true),
            (rule("tcp", 80, 80, "sg-lb"), Protocol::Tcp, 80, "172.18.0.9", &["sg-other"], false),
            (rule("tcp", 80, 80, "sg-lb"), Protocol::Tcp, 80, "172.18.0.9", &[], false),
            (rule("-1", -1, -1, "sg-lb"), Protocol::Udp, 5, "172.18.0.9", &["sg-x", "sg-lb"], true),
        ];
        for (r, proto, port, src, groups, want) in cases {
            assert_eq!(allows(r, *proto, *port, v4(src), groups), *want, "{r:?} {proto:?} {port} {src} {groups:?}");
        }
        let mut egress = rule("-1", -1, -1, "0.0.0.0/0");
        egress.egress = true;
        assert!(!allows(&egress, Protocol::Tcp, 80, v4("1.1.1.1"), &[]), "egress rules admit nothing in");
    }

    #[test]
    fn allowed_sources_for_a_listener_port() {
        let members = |g: &str| -> Vec<Cidr> {
            if g == "sg-web" { vec!["172.18.0.7/32".parse().expect("cidr")] } else { Vec::new() }
        };
        let rules = vec![
            rule("tcp", 443, 443, "0.0.0.0/0"),
            rule("tcp", 443, 443, "::/0"),
            rule("tcp", 80, 80, "10.0.0.0/8"),
            rule("tcp", 0, 65535, "192.0.2.0/24"),
            rule("udp", 443, 443, "198.51.100.0/24"),
            rule("-1", -1, -1, "sg-web"),
        ];
        let show = |v: Vec<Cidr>| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            show(allowed_sources(&rules, 443, &members)),
            ["0.0.0.0/0", "172.18.0.7/32", "192.0.2.0/24", "::/0"]
        );
        assert_eq!(show(allowed_sources(&rules, 80, &members)), ["10.0.0.0/8", "172.18.0.7/32", "192.0.2.0/24"]);
        assert_eq!(show(allowed_sources(&rules[..1], 80, &members)), Vec::<String>::new());
    }

    #[test]
    fn rules_group_back_into_permissions() {
        let rows = [rule("tcp", 80, 80, "0.0.0.0/0"), rule("tcp", 80, 80, "::/0"), rule("-1", -1, -1, "sg-a")];
        let refs: Vec<&SecurityGroupRuleRow> = rows.iter().collect();
        let perms = to_permissions(&refs, "123456789012", "vpc-1");
        assert_eq!(perms.len(), 2);
        assert_eq!(perms[0].from_port, Some(80));
        assert_eq!(perms[0].ip_ranges.as_ref().map(Vec::len), Some(1));
        assert_eq!(perms[0].ipv6_ranges.as_ref().map(Vec::len), Some(1));
        assert_eq!(perms[1].ip_protocol.as_deref(), Some("-1"));
        assert_eq!(perms[1].from_port, None);
        let pair = &perms[1].user_id_group_pairs.as_ref().expect("pairs")[0];
        assert_eq!(pair.group_id.as_deref(), Some("sg-a"));
        assert_eq!(pair.user_id.as_deref(), Some("123456789012"));
    }
}
