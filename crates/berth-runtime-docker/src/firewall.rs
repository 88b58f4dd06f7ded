//! Security groups on the Docker host: each berth instance keeps two iptables chains.
//!
//! - `BERTH-SG-<instance>` (ingress), jumped to from Docker's `DOCKER-USER` chain for traffic leaving into its
//!   network's bridge: returns established traffic and each allowed (source, protocol, port) towards a protected
//!   task, and drops everything else towards that task.
//! - `BERTH-EG-<instance>` (egress), jumped to from `DOCKER-USER` for traffic coming out of the bridge (to another
//!   container on it, with bridge netfilter on, or routed elsewhere) and from `INPUT` for traffic from the bridge
//!   to the host itself (the gateway, the proxy, berth's link-local endpoints): returns established traffic and
//!   each allowed (destination, protocol, port) of a restricted task, and drops everything else from that task.
//!
//! Both chains only `RETURN` or `DROP`, so a packet between two containers passes only if the sender's egress
//! and the receiver's ingress both allow it; traffic of other addresses passes through untouched.
//!
//! A pure [`render`] and [`plan`] (desired chains vs. what `iptables -S` shows) decide one atomic
//! `iptables-restore --noflush` input; the executor only runs `iptables -S` and that restore. Chains of
//! berth instances that have no running container any more are removed by whichever instance sees them,
//! so a stopped test server never leaves rules that could match a later container's address.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use berth_runtime::DriverError;
use berth_runtime::firewall::{Allow, FirewallPolicy, Protocol};
use tokio::io::AsyncWriteExt;

/// Docker's chain for user rules, evaluated first in FORWARD.
pub const DOCKER_USER: &str = "DOCKER-USER";
/// The built-in chain for traffic addressed to the host itself.
pub const INPUT: &str = "INPUT";
/// The prefix of every berth ingress chain; the rest is the owning instance.
pub const CHAIN_PREFIX: &str = "BERTH-SG-";
/// The prefix of every berth egress chain; the rest is the owning instance.
pub const EGRESS_PREFIX: &str = "BERTH-EG-";
const PREFIXES: [&str; 2] = [CHAIN_PREFIX, EGRESS_PREFIX];
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// The ingress chain of an owner (instance ids are hex; anything else is dropped, and the name stays within
/// iptables' 28 characters).
pub fn chain_name(owner: &str) -> String {
    format!("{CHAIN_PREFIX}{}", clean_owner(owner))
}

/// The egress chain of an owner.
pub fn egress_chain_name(owner: &str) -> String {
    format!("{EGRESS_PREFIX}{}", clean_owner(owner))
}

fn clean_owner(owner: &str) -> String {
    owner.chars().filter(char::is_ascii_alphanumeric).take(16).collect()
}

/// The owner named by a berth chain, if `name` is one.
fn owner_of(name: &str) -> Option<&str> {
    PREFIXES.iter().find_map(|p| name.strip_prefix(p))
}

/// One chain's desired rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    /// As `iptables -S` prints them; the first is a marker carrying a hash of the rest, so a changed or edited
    /// chain is recognised without re-parsing every match.
    pub rules: Vec<String>,
}

/// The two chains of a policy: ingress first, then egress.
pub fn render(policy: &FirewallPolicy) -> Vec<Chain> {
    let ingress = policy.tasks.iter().map(|t| (t.address, t.allow.as_slice()));
    let egress = policy.egress.iter().map(|t| (t.address, t.allow.as_slice()));
    vec![
        render_chain(chain_name(&policy.owner), Direction::Ingress, ingress),
        render_chain(egress_chain_name(&policy.owner), Direction::Egress, egress),
    ]
}

/// Which end of a packet a chain's task is: the destination (ingress) or the source (egress).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

/// One chain: replies return, then per task each allowance (peer, protocol, ports) returns and the rest of the
/// task's traffic in that direction is dropped.
fn render_chain<'a>(
    name: String,
    direction: Direction,
    entries: impl Iterator<Item = (std::net::IpAddr, &'a [Allow])>,
) -> Chain {
    let mut rules = vec![format!("-A {name} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN")];
    for (address, allow) in entries {
        let (task, all) = host_and_any(address);
        // `iptables -S` prints the source before the destination; a peer of "anywhere" is no match at all.
        let ends = |peer: Option<String>| {
            let peer = peer.filter(|p| p != all);
            match direction {
                Direction::Ingress => (peer.map(|p| format!(" -s {p}")).unwrap_or_default(), format!(" -d {task}")),
                Direction::Egress => (format!(" -s {task}"), peer.map(|p| format!(" -d {p}")).unwrap_or_default()),
            }
        };
        for a in allow {
            let (src, dst) = ends(Some(a.source.to_string()));
            rules.push(format!("-A {name}{src}{dst}{} -j RETURN", matches(a)));
        }
        let (src, dst) = ends(None);
        rules.push(format!("-A {name}{src}{dst} -j DROP"));
    }
    marked(name, rules)
}

fn host_and_any(address: std::net::IpAddr) -> (String, &'static str) {
    match address {
        std::net::IpAddr::V4(a) => (format!("{a}/32"), "0.0.0.0/0"),
        std::net::IpAddr::V6(a) => (format!("{a}/128"), "::/0"),
    }
}

/// The protocol and port matches of an allowance, as `iptables -S` prints them.
fn matches(a: &Allow) -> String {
    let proto = match a.protocol {
        Protocol::All => return String::new(),
        Protocol::Tcp => "tcp".to_string(),
        Protocol::Udp => "udp".to_string(),
        Protocol::Icmp => "icmp".to_string(),
        Protocol::Number(n) => n.to_string(),
    };
    let mut m = format!(" -p {proto}");
    if let (Some((f, to)), "tcp" | "udp") = (a.ports, proto.as_str()) {
        let range = if f == to { f.to_string() } else { format!("{f}:{to}") };
        m.push_str(&format!(" -m {proto} --dport {range}"));
    }
    m
}

fn marked(name: String, rules: Vec<String>) -> Chain {
    let mut out = vec![format!("-A {name} -m comment --comment \"berth-policy:{:016x}\"", fnv(&rules))];
    out.extend(rules);
    Chain { name, rules: out }
}

fn fnv(lines: &[String]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in lines.iter().flat_map(|l| l.bytes().chain(std::iter::once(b'\n'))) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// What `iptables -S` (the filter table) shows that matters here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// Whether Docker's `DOCKER-USER` chain exists (Docker manages iptables).
    pub docker_user: bool,
    /// The `-A DOCKER-USER ...` and `-A INPUT ...` rules that jump to a berth chain.
    pub jumps: Vec<String>,
    /// Every berth chain (ingress and egress, of every instance) and its rules.
    pub chains: Vec<(String, Vec<String>)>,
}

/// Reads `iptables -S` output.
pub fn parse(output: &str) -> Observed {
    let mut o = Observed::default();
    let to_berth = |line: &str| PREFIXES.iter().any(|p| line.contains(&format!(" -j {p}")));
    for line in output.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("-N"), Some(DOCKER_USER)) => o.docker_user = true,
            (Some("-N"), Some(name)) if owner_of(name).is_some() => o.chains.push((name.to_string(), Vec::new())),
            (Some("-A"), Some(DOCKER_USER | INPUT)) if to_berth(line) => o.jumps.push(line.to_string()),
            (Some("-A"), Some(name)) if owner_of(name).is_some() => {
                if let Some((_, rules)) = o.chains.iter_mut().find(|(n, _)| n == name) {
                    rules.push(line.to_string());
                }
            }
            _ => {}
        }
    }
    o
}

/// The jump rule from `DOCKER-USER` into the ingress `chain` for traffic into `bridge`.
pub fn jump(bridge: &str, chain: &str) -> String {
    format!("-A {DOCKER_USER} -o {bridge} -j {chain}")
}

/// The jump rules into the egress `chain` for traffic out of `bridge`: forwarded (to other containers and
/// beyond) and addressed to the host itself.
pub fn egress_jumps(bridge: &str, chain: &str) -> [String; 2] {
    [format!("-A {DOCKER_USER} -i {bridge} -j {chain}"), format!("-A {INPUT} -i {bridge} -j {chain}")]
}

/// The `iptables-restore --noflush` input that makes the host match `desired` (`owner`'s chains as [`render`]
/// made them, hooked to `bridge`) and removes the chains of `dead` owners; `None` when nothing needs doing.
pub fn plan(
    owner: &str,
    bridge: &str,
    desired: &[Chain],
    observed: &Observed,
    dead: &BTreeSet<String>,
) -> Option<String> {
    let ingress = chain_name(owner);
    let egress = egress_chain_name(owner);
    let mut cmds: Vec<String> = Vec::new();
    // Our chains: declaring one in restore creates or flushes it; then its rules.
    // The marker (first rule) carries a hash of the rest: same marker and count means same chain, even if
    // iptables prints a match differently from how it was written.
    for want in desired {
        let current = observed.chains.iter().find(|(n, _)| *n == want.name).map(|(_, r)| r.as_slice());
        let in_sync = current.is_some_and(|c| c.len() == want.rules.len() && c.first() == want.rules.first());
        if !in_sync {
            cmds.push(format!(":{} - [0:0]", want.name));
            cmds.extend(want.rules.iter().cloned());
        }
    }
    // Our jumps: exactly the wanted ones, on this bridge (inserted at the top, so before Docker's final RETURN).
    let wanted: Vec<(String, Vec<String>)> =
        vec![(ingress.clone(), vec![jump(bridge, &ingress)]), (egress.clone(), egress_jumps(bridge, &egress).to_vec())];
    for (chain, want) in wanted {
        let ours: Vec<&String> = observed.jumps.iter().filter(|j| j.ends_with(&format!(" -j {chain}"))).collect();
        let mut have: Vec<&String> = ours.clone();
        have.sort();
        let mut want_sorted: Vec<&String> = want.iter().collect();
        want_sorted.sort();
        if have != want_sorted {
            cmds.extend(ours.iter().map(|j| j.replacen("-A ", "-D ", 1)));
            for j in &want {
                let (builtin, rest) = j.trim_start_matches("-A ").split_once(' ').unwrap_or((DOCKER_USER, ""));
                cmds.push(format!("-I {builtin} 1 {rest}"));
            }
        }
    }
    // Chains of instances that are gone: unhook, flush, delete.
    for (name, _) in observed.chains.iter().filter(|(n, _)| *n != ingress && *n != egress) {
        if owner_of(name).is_some_and(|o| dead.contains(o)) {
            cmds.extend(removal(name, observed));
        }
    }
    restore(cmds)
}

/// The restore input that removes `owner`'s chains and their jumps; `None` when it has none.
pub fn remove(owner: &str, observed: &Observed) -> Option<String> {
    let cmds: Vec<String> = [chain_name(owner), egress_chain_name(owner)]
        .iter()
        .filter(|c| observed.chains.iter().any(|(n, _)| n == *c))
        .flat_map(|c| removal(c, observed))
        .collect();
    restore(cmds)
}

fn removal(chain: &str, observed: &Observed) -> Vec<String> {
    let mut cmds: Vec<String> = observed
        .jumps
        .iter()
        .filter(|j| j.ends_with(&format!(" -j {chain}")))
        .map(|j| j.replacen("-A ", "-D ", 1))
        .collect();
    cmds.push(format!("-F {chain}"));
    cmds.push(format!("-X {chain}"));
    cmds
}

fn restore(cmds: Vec<String>) -> Option<String> {
    (!cmds.is_empty()).then(|| format!("*filter\n{}\nCOMMIT\n", cmds.join("\n")))
}

/// The owners of the berth chains `observed` has, other than `owner` (each once).
pub fn other_owners(owner: &str, observed: &Observed) -> Vec<String> {
    let mine = clean_owner(owner);
    let owners: BTreeSet<String> =
        observed.chains.iter().filter_map(|(n, _)| owner_of(n)).filter(|o| *o != mine).map(str::to_string).collect();
    owners.into_iter().collect()
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> DriverError {
    DriverError::Unavailable(format!("{what}: {e}"))
}

/// Runs `iptables -S` (filter table).
pub async fn observe() -> Result<Observed, DriverError> {
    let out = tokio::time::timeout(
        COMMAND_TIMEOUT,
        tokio::process::Command::new("iptables").args(["-w", "5", "-S"]).stdin(Stdio::null()).output(),
    )
    .await
    .map_err(|_| unavailable("iptables -S", "timed out"))?
    .map_err(|e| unavailable("cannot run iptables", e))?;
    if !out.status.success() {
        return Err(unavailable("iptables -S failed", String::from_utf8_lossy(&out.stderr).trim()));
    }
    let observed = parse(&String::from_utf8_lossy(&out.stdout));
    if !observed.docker_user {
        return Err(DriverError::Unavailable(
            "the DOCKER-USER chain does not exist (is dockerd running with iptables enabled?)".into(),
        ));
    }
    Ok(observed)
}

/// Applies a restore input atomically.
pub async fn apply(input: &str) -> Result<(), DriverError> {
    let run = async {
        let mut child = tokio::process::Command::new("iptables-restore")
            .args(["-w", "5", "--noflush"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| unavailable("cannot run iptables-restore", e))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).await.map_err(|e| unavailable("iptables-restore stdin", e))?;
        }
        let out = child.wait_with_output().await.map_err(|e| unavailable("iptables-restore", e))?;
        if !out.status.success() {
            return Err(unavailable("iptables-restore failed", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(())
    };
    tokio::time::timeout(COMMAND_TIMEOUT, run).await.map_err(|_| unavailable("iptables-restore", "timed out"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_runtime::firewall::{TaskEgress, TaskIngress};

    fn c(s: &str) -> berth_core::cidr::Cidr {
        s.parse().expect("cidr")
    }

    fn policy() -> FirewallPolicy {
        FirewallPolicy {
            owner: "abc123".into(),
            network: "berth-default".into(),
            tasks: vec![
                TaskIngress {
                    address: "172.18.0.2".parse().expect("ip"),
                    allow: vec![
                        Allow { protocol: Protocol::All, ports: None, source: c("10.0.0.0/8") },
                        Allow { protocol: Protocol::Tcp, ports: Some((80, 80)), source: c("172.18.0.1/32") },
                        Allow { protocol: Protocol::Tcp, ports: Some((1000, 2000)), source: c("0.0.0.0/0") },
                        Allow { protocol: Protocol::Udp, ports: Some((53, 53)), source: c("192.0.2.0/24") },
                        Allow { protocol: Protocol::Icmp, ports: None, source: c("0.0.0.0/0") },
                    ],
                },
                TaskIngress { address: "172.18.0.3".parse().expect("ip"), allow: vec![] },
            ],
            egress: vec![
                TaskEgress {
                    address: "172.18.0.2".parse().expect("ip"),
                    allow: vec![
                        Allow { protocol: Protocol::All, ports: None, source: c("10.0.0.0/8") },
                        Allow { protocol: Protocol::Tcp, ports: Some((80, 80)), source: c("172.18.0.3/32") },
                        Allow { protocol: Protocol::Tcp, ports: Some((443, 443)), source: c("0.0.0.0/0") },
                        Allow { protocol: Protocol::Tcp, ports: Some((51679, 51679)), source: c("169.254.170.2/32") },
                        Allow { protocol: Protocol::Udp, ports: Some((53, 53)), source: c("192.0.2.53/32") },
                        Allow { protocol: Protocol::Number(47), ports: None, source: c("198.51.100.0/24") },
                    ],
                },
                TaskEgress { address: "172.18.0.4".parse().expect("ip"), allow: vec![] },
            ],
        }
    }

    #[test]
    fn renders_rules_as_iptables_prints_them() {
        let chains = render(&policy());
        let [ingress, egress] = chains.as_slice() else { panic!("two chains") };
        assert_eq!(ingress.name, "BERTH-SG-abc123");
        assert!(ingress.rules[0].starts_with("-A BERTH-SG-abc123 -m comment --comment \"berth-policy:"));
        assert_eq!(
            ingress.rules[1..],
            [
                "-A BERTH-SG-abc123 -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
                "-A BERTH-SG-abc123 -s 10.0.0.0/8 -d 172.18.0.2/32 -j RETURN",
                "-A BERTH-SG-abc123 -s 172.18.0.1/32 -d 172.18.0.2/32 -p tcp -m tcp --dport 80 -j RETURN",
                "-A BERTH-SG-abc123 -d 172.18.0.2/32 -p tcp -m tcp --dport 1000:2000 -j RETURN",
                "-A BERTH-SG-abc123 -s 192.0.2.0/24 -d 172.18.0.2/32 -p udp -m udp --dport 53 -j RETURN",
                "-A BERTH-SG-abc123 -d 172.18.0.2/32 -p icmp -j RETURN",
                "-A BERTH-SG-abc123 -d 172.18.0.2/32 -j DROP",
                "-A BERTH-SG-abc123 -d 172.18.0.3/32 -j DROP",
            ]
        );
        assert_eq!(egress.name, "BERTH-EG-abc123");
        assert!(egress.rules[0].starts_with("-A BERTH-EG-abc123 -m comment --comment \"berth-policy:"));
        assert_eq!(
            egress.rules[1..],
            [
                "-A BERTH-EG-abc123 -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN",
                "-A BERTH-EG-abc123 -s 172.18.0.2/32 -d 10.0.0.0/8 -j RETURN",
                "-A BERTH-EG-abc123 -s 172.18.0.2/32 -d 172.18.0.3/32 -p tcp -m tcp --dport 80 -j RETURN",
                "-A BERTH-EG-abc123 -s 172.18.0.2/32 -p tcp -m tcp --dport 443 -j RETURN",
                "-A BERTH-EG-abc123 -s 172.18.0.2/32 -d 169.254.170.2/32 -p tcp -m tcp --dport 51679 -j RETURN",
                "-A BERTH-EG-abc123 -s 172.18.0.2/32 -d 192.0.2.53/32 -p udp -m udp --dport 53 -j RETURN",
                "-A BERTH-EG-abc123 -s 172.18.0.2/32 -d 198.51.100.0/24 -p 47 -j RETURN",
                "-A BERTH-EG-abc123 -s 172.18.0.2/32 -j DROP",
                "-A BERTH-EG-abc123 -s 172.18.0.4/32 -j DROP",
            ]
        );
        let mut other = policy();
        other.tasks.pop();
        let changed = render(&other);
        assert_ne!(changed[0].rules[0], ingress.rules[0], "the marker changes with the rules");
        assert_eq!(changed[1], *egress, "the other chain is untouched");
        let unrestricted = render(&FirewallPolicy { egress: vec![], ..policy() });
        assert_eq!(unrestricted[1].rules.len(), 2, "no restricted task: marker and the established rule only");
        assert_eq!(chain_name("ab-c;1"), "BERTH-SG-abc1");
        assert_eq!(egress_chain_name("ab-c;1"), "BERTH-EG-abc1");
    }

    #[test]
    fn plans_only_what_differs() {
        let desired = render(&policy());
        let (sg, eg) = ("BERTH-SG-abc123", "BERTH-EG-abc123");
        let jumps_ok = vec![
            format!("-A DOCKER-USER -o br-1 -j {sg}"),
            format!("-A DOCKER-USER -i br-1 -j {eg}"),
            format!("-A INPUT -i br-1 -j {eg}"),
        ];
        let none = BTreeSet::new();
        struct Case {
            name: &'static str,
            observed: Observed,
            dead: BTreeSet<String>,
            want: Option<Vec<String>>,
        }
        let chains_ok: Vec<(String, Vec<String>)> = desired.iter().map(|c| (c.name.clone(), c.rules.clone())).collect();
        let in_sync = Observed { docker_user: true, jumps: jumps_ok.clone(), chains: chains_ok.clone() };
        let restore_chain = |i: usize| {
            let mut v = vec![format!(":{} - [0:0]", desired[i].name)];
            v.extend(desired[i].rules.iter().cloned());
            v
        };
        let inserts = vec![
            format!("-I DOCKER-USER 1 -o br-1 -j {sg}"),
            format!("-I DOCKER-USER 1 -i br-1 -j {eg}"),
            format!("-I INPUT 1 -i br-1 -j {eg}"),
        ];
        let cases = vec![
            Case { name: "in sync", observed: in_sync.clone(), dead: none.clone(), want: None },
            Case {
                name: "first start",
                observed: Observed { docker_user: true, ..Default::default() },
                dead: none.clone(),
                want: Some([restore_chain(0), restore_chain(1), inserts.clone()].concat()),
            },
            Case {
                name: "an older berth left the ingress chain and its jump only",
                observed: Observed {
                    docker_user: true,
                    jumps: vec![jumps_ok[0].clone()],
                    chains: vec![chains_ok[0].clone()],
                },
                dead: none.clone(),
                want: Some([restore_chain(1), inserts[1..].to_vec()].concat()),
            },
            Case {
                name: "a rule was deleted by hand",
                observed: Observed {
                    chains: vec![
                        chains_ok[0].clone(),
                        (eg.to_string(), desired[1].rules[..desired[1].rules.len() - 1].to_vec()),
                    ],
                    ..in_sync.clone()
                },
                dead: none.clone(),
                want: Some(restore_chain(1)),
            },
            Case {
                name: "jumps on an old bridge",
                observed: Observed {
                    jumps: vec![
                        format!("-A DOCKER-USER -o br-0 -j {sg}"),
                        format!("-A DOCKER-USER -i br-0 -j {eg}"),
                        format!("-A INPUT -i br-0 -j {eg}"),
                    ],
                    ..in_sync.clone()
                },
                dead: none.clone(),
                want: Some(vec![
                    format!("-D DOCKER-USER -o br-0 -j {sg}"),
                    inserts[0].clone(),
                    format!("-D DOCKER-USER -i br-0 -j {eg}"),
                    format!("-D INPUT -i br-0 -j {eg}"),
                    inserts[1].clone(),
                    inserts[2].clone(),
                ]),
            },
            Case {
                name: "the INPUT jump was deleted by hand",
                observed: Observed { jumps: jumps_ok[..2].to_vec(), ..in_sync.clone() },
                dead: none.clone(),
                want: Some(vec![format!("-D DOCKER-USER -i br-1 -j {eg}"), inserts[1].clone(), inserts[2].clone()]),
            },
            Case {
                name: "another live instance's jumps around ours are fine, in any order",
                observed: Observed {
                    jumps: vec![
                        "-A DOCKER-USER -o br-1 -j BERTH-SG-live".into(),
                        jumps_ok[2].clone(),
                        jumps_ok[1].clone(),
                        jumps_ok[0].clone(),
                        "-A INPUT -i br-1 -j BERTH-EG-live".into(),
                    ],
                    chains: [chains_ok.clone(), vec![("BERTH-SG-live".into(), vec![])]].concat(),
                    ..in_sync.clone()
                },
                dead: none.clone(),
                want: None,
            },
            Case {
                name: "a duplicated jump is reduced to one",
                observed: Observed { jumps: [jumps_ok.clone(), vec![jumps_ok[0].clone()]].concat(), ..in_sync.clone() },
                dead: none.clone(),
                want: Some(vec![
                    format!("-D DOCKER-USER -o br-1 -j {sg}"),
                    format!("-D DOCKER-USER -o br-1 -j {sg}"),
                    inserts[0].clone(),
                ]),
            },
            Case {
                name: "the chains printed differently but with the same markers are in sync",
                observed: Observed {
                    chains: chains_ok
                        .iter()
                        .map(|(n, rules)| {
                            let rules = rules
                                .iter()
                                .enumerate()
                                .map(|(i, r)| if i == 0 { r.clone() } else { format!("{r} ") })
                                .collect();
                            (n.clone(), rules)
                        })
                        .collect(),
                    ..in_sync.clone()
                },
                dead: none.clone(),
                want: None,
            },
            Case {
                name: "a dead instance's chains are collected, a live one's kept",
                observed: Observed {
                    jumps: [
                        jumps_ok.clone(),
                        vec![
                            "-A DOCKER-USER -o br-1 -j BERTH-SG-dead".into(),
                            "-A DOCKER-USER -i br-1 -j BERTH-EG-dead".into(),
                            "-A INPUT -i br-1 -j BERTH-EG-dead".into(),
                            "-A DOCKER-USER -o br-1 -j BERTH-SG-live".into(),
                        ],
                    ]
                    .concat(),
                    chains: [
                        chains_ok.clone(),
                        vec![
                            ("BERTH-SG-dead".into(), vec!["-A BERTH-SG-dead -d 172.18.0.9/32 -j DROP".into()]),
                            ("BERTH-EG-dead".into(), vec!["-A BERTH-EG-dead -s 172.18.0.9/32 -j DROP".into()]),
                            ("BERTH-SG-live".into(), vec![]),
                        ],
                    ]
                    .concat(),
                    ..in_sync.clone()
                },
                dead: BTreeSet::from(["dead".to_string()]),
                want: Some(vec![
                    "-D DOCKER-USER -o br-1 -j BERTH-SG-dead".into(),
                    "-F BERTH-SG-dead".into(),
                    "-X BERTH-SG-dead".into(),
                    "-D DOCKER-USER -i br-1 -j BERTH-EG-dead".into(),
                    "-D INPUT -i br-1 -j BERTH-EG-dead".into(),
                    "-F BERTH-EG-dead".into(),
                    "-X BERTH-EG-dead".into(),
                ]),
            },
        ];
        for c in cases {
            let got = plan("abc123", "br-1", &desired, &c.observed, &c.dead);
            let want = c.want.map(|cmds| format!("*filter\n{}\nCOMMIT\n", cmds.join("\n")));
            assert_eq!(got, want, "{}", c.name);
        }
    }

    #[test]
    fn parses_iptables_s() {
        let text = "-P INPUT ACCEPT\n-N DOCKER-USER\n-N BERTH-SG-x\n-N BERTH-EG-x\n-N BERTH-EG-y\n\
                    -A INPUT -i br-1 -j BERTH-EG-x\n-A INPUT -i lo -j ACCEPT\n\
                    -A DOCKER-USER -o br-1 -j BERTH-SG-x\n-A DOCKER-USER -j RETURN\n\
                    -A BERTH-SG-x -d 1.2.3.4/32 -j DROP\n-A BERTH-EG-x -s 1.2.3.4/32 -j DROP\n-A FORWARD -j DOCKER-USER\n";
        let o = parse(text);
        assert!(o.docker_user);
        assert_eq!(o.jumps, ["-A INPUT -i br-1 -j BERTH-EG-x", "-A DOCKER-USER -o br-1 -j BERTH-SG-x"]);
        assert_eq!(
            o.chains,
            [
                ("BERTH-SG-x".to_string(), vec!["-A BERTH-SG-x -d 1.2.3.4/32 -j DROP".to_string()]),
                ("BERTH-EG-x".to_string(), vec!["-A BERTH-EG-x -s 1.2.3.4/32 -j DROP".to_string()]),
                ("BERTH-EG-y".to_string(), vec![]),
            ]
        );
        assert_eq!(other_owners("y", &o), ["x"]);
        assert_eq!(other_owners("z", &o), ["x", "y"]);
        assert!(!parse("-N FOO\n").docker_user);
        let removal = remove("x", &o).expect("x has chains");
        assert_eq!(
            removal,
            "*filter\n-D DOCKER-USER -o br-1 -j BERTH-SG-x\n-F BERTH-SG-x\n-X BERTH-SG-x\n\
             -D INPUT -i br-1 -j BERTH-EG-x\n-F BERTH-EG-x\n-X BERTH-EG-x\nCOMMIT\n"
        );
        assert_eq!(remove("w", &o), None);
    }
}
