//! Security groups on the Docker host: each berth instance keeps one iptables chain, `BERTH-SG-<instance>`,
//! jumped to from Docker's `DOCKER-USER` chain for traffic leaving into its network's bridge. The chain
//! returns established traffic and each allowed (source, protocol, port) towards a protected task, and drops
//! everything else towards that task; traffic to other addresses passes through untouched.
//!
//! A pure [`render`] and [`plan`] (desired chain vs. what `iptables -S` shows) decide one atomic
//! `iptables-restore --noflush` input; the executor only runs `iptables -S` and that restore. Chains of
//! berth instances that have no running container any more are removed by whichever instance sees them,
//! so a stopped test server never leaves rules that could match a later container's address.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use berth_runtime::DriverError;
use berth_runtime::firewall::{FirewallPolicy, Protocol};
use tokio::io::AsyncWriteExt;

/// Docker's chain for user rules, evaluated first in FORWARD.
pub const DOCKER_USER: &str = "DOCKER-USER";
/// The prefix of every berth chain; the rest is the owning instance.
pub const CHAIN_PREFIX: &str = "BERTH-SG-";
const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// The chain of an owner (instance ids are hex; anything else is dropped, and the name stays within
/// iptables' 28 characters).
pub fn chain_name(owner: &str) -> String {
    let clean: String = owner.chars().filter(char::is_ascii_alphanumeric).take(16).collect();
    format!("{CHAIN_PREFIX}{clean}")
}

/// The chain's rules for a policy, as `iptables -S` prints them; the first is a marker carrying a hash of
/// the rest, so a changed or edited chain is recognised without re-parsing every match.
pub fn render(policy: &FirewallPolicy) -> Vec<String> {
    let chain = chain_name(&policy.owner);
    let mut rules = vec![format!("-A {chain} -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN")];
    for t in &policy.tasks {
        let (dest, all) = match t.address {
            std::net::IpAddr::V4(a) => (format!("{a}/32"), "0.0.0.0/0"),
            std::net::IpAddr::V6(a) => (format!("{a}/128"), "::/0"),
        };
        for a in &t.allow {
            let mut r = format!("-A {chain}");
            let source = a.source.to_string();
            if source != all {
                r.push_str(&format!(" -s {source}"));
            }
            r.push_str(&format!(" -d {dest}"));
            let proto = match a.protocol {
                Protocol::All => None,
                Protocol::Tcp => Some("tcp".to_string()),
                Protocol::Udp => Some("udp".to_string()),
                Protocol::Icmp => Some("icmp".to_string()),
                Protocol::Number(n) => Some(n.to_string()),
            };
            if let Some(p) = &proto {
                r.push_str(&format!(" -p {p}"));
                if let (Some((f, to)), "tcp" | "udp") = (a.ports, p.as_str()) {
                    let range = if f == to { f.to_string() } else { format!("{f}:{to}") };
                    r.push_str(&format!(" -m {p} --dport {range}"));
                }
            }
            r.push_str(" -j RETURN");
            rules.push(r);
        }
        rules.push(format!("-A {chain} -d {dest} -j DROP"));
    }
    let mut out = vec![format!("-A {chain} -m comment --comment \"berth-policy:{:016x}\"", fnv(&rules))];
    out.extend(rules);
    out
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
    /// The `-A DOCKER-USER ...` rules that jump to a berth chain.
    pub jumps: Vec<String>,
    /// Every berth chain and its rules.
    pub chains: Vec<(String, Vec<String>)>,
}

/// Reads `iptables -S` output.
pub fn parse(output: &str) -> Observed {
    let mut o = Observed::default();
    for line in output.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("-N"), Some(DOCKER_USER)) => o.docker_user = true,
            (Some("-N"), Some(name)) if name.starts_with(CHAIN_PREFIX) => o.chains.push((name.to_string(), Vec::new())),
            (Some("-A"), Some(DOCKER_USER)) if line.contains(&format!(" -j {CHAIN_PREFIX}")) => {
                o.jumps.push(line.to_string())
            }
            (Some("-A"), Some(name)) if name.starts_with(CHAIN_PREFIX) => {
                if let Some((_, rules)) = o.chains.iter_mut().find(|(n, _)| n == name) {
                    rules.push(line.to_string());
                }
            }
            _ => {}
        }
    }
    o
}

/// The jump rule from `DOCKER-USER` into `chain` for traffic into `bridge`.
pub fn jump(bridge: &str, chain: &str) -> String {
    format!("-A {DOCKER_USER} -o {bridge} -j {chain}")
}

/// The `iptables-restore --noflush` input that makes the host match `desired` (for `owner`'s chain, on
/// `bridge`) and removes the chains of `dead` owners; `None` when nothing needs doing.
pub fn plan(
    owner: &str,
    bridge: &str,
    desired: &[String],
    observed: &Observed,
    dead: &BTreeSet<String>,
) -> Option<String> {
    let chain = chain_name(owner);
    let want_jump = jump(bridge, &chain);
    let mut cmds: Vec<String> = Vec::new();
    // Our chain: declaring it in restore creates or flushes it; then its rules.
    // The marker (first rule) carries a hash of the rest: same marker and count means same chain, even if
    // iptables prints a match differently from how it was written.
    let current = observed.chains.iter().find(|(n, _)| *n == chain).map(|(_, r)| r.as_slice());
    let in_sync = current.is_some_and(|c| c.len() == desired.len() && c.first() == desired.first());
    if !in_sync {
        cmds.push(format!(":{chain} - [0:0]"));
        cmds.extend(desired.iter().cloned());
    }
    // Our jump: exactly one, on this bridge (inserted at the top, so before Docker's final RETURN).
    let ours: Vec<&String> = observed.jumps.iter().filter(|j| j.ends_with(&format!(" -j {chain}"))).collect();
    if ours != [&want_jump] {
        for j in &ours {
            cmds.push(j.replacen("-A ", "-D ", 1));
        }
        cmds.push(want_jump.replacen(&format!("-A {DOCKER_USER}"), &format!("-I {DOCKER_USER} 1"), 1));
    }
    // Chains of instances that are gone: unhook, flush, delete.
    for (name, _) in observed.chains.iter().filter(|(n, _)| *n != chain) {
        if dead.contains(&name[CHAIN_PREFIX.len()..]) {
            cmds.extend(removal(name, observed));
        }
    }
    restore(cmds)
}

/// The restore input that removes `owner`'s chain and its jumps; `None` when it has none.
pub fn remove(owner: &str, observed: &Observed) -> Option<String> {
    let chain = chain_name(owner);
    if !observed.chains.iter().any(|(n, _)| *n == chain) {
        return None;
    }
    restore(removal(&chain, observed))
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

/// The owners of the berth chains `observed` has, other than `owner`.
pub fn other_owners(owner: &str, observed: &Observed) -> Vec<String> {
    let chain = chain_name(owner);
    observed.chains.iter().filter(|(n, _)| *n != chain).map(|(n, _)| n[CHAIN_PREFIX.len()..].to_string()).collect()
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
    use berth_runtime::firewall::{Allow, TaskIngress};

    fn policy() -> FirewallPolicy {
        let c = |s: &str| s.parse().expect("cidr");
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
        }
    }

    #[test]
    fn renders_rules_as_iptables_prints_them() {
        let rules = render(&policy());
        assert!(rules[0].starts_with("-A BERTH-SG-abc123 -m comment --comment \"berth-policy:"), "{}", rules[0]);
        assert_eq!(
            rules[1..],
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
        let mut other = policy();
        other.tasks.pop();
        assert_ne!(render(&other)[0], rules[0], "the marker changes with the rules");
        assert_eq!(chain_name("ab-c;1"), "BERTH-SG-abc1");
    }

    #[test]
    fn plans_only_what_differs() {
        let desired = render(&policy());
        let chain = "BERTH-SG-abc123";
        let jump_ok = format!("-A DOCKER-USER -o br-1 -j {chain}");
        let none = BTreeSet::new();
        struct Case {
            name: &'static str,
            observed: Observed,
            dead: BTreeSet<String>,
            want: Option<Vec<String>>,
        }
        let in_sync = Observed {
            docker_user: true,
            jumps: vec![jump_ok.clone()],
            chains: vec![(chain.to_string(), desired.clone())],
        };
        let mut restore_chain = vec![format!(":{chain} - [0:0]")];
        restore_chain.extend(desired.iter().cloned());
        let insert = format!("-I DOCKER-USER 1 -o br-1 -j {chain}");
        let cases = vec![
            Case { name: "in sync", observed: in_sync.clone(), dead: none.clone(), want: None },
            Case {
                name: "first start",
                observed: Observed { docker_user: true, ..Default::default() },
                dead: none.clone(),
                want: Some([restore_chain.clone(), vec![insert.clone()]].concat()),
            },
            Case {
                name: "a rule was deleted by hand",
                observed: Observed {
                    chains: vec![(chain.to_string(), desired[..desired.len() - 1].to_vec())],
                    ..in_sync.clone()
                },
                dead: none.clone(),
                want: Some(restore_chain.clone()),
            },
            Case {
                name: "jump on an old bridge",
                observed: Observed { jumps: vec![format!("-A DOCKER-USER -o br-0 -j {chain}")], ..in_sync.clone() },
                dead: none.clone(),
                want: Some(vec![format!("-D DOCKER-USER -o br-0 -j {chain}"), insert.clone()]),
            },
            Case {
                name: "another live instance's jump before ours is fine",
                observed: Observed {
                    jumps: vec!["-A DOCKER-USER -o br-1 -j BERTH-SG-live".into(), jump_ok.clone()],
                    chains: vec![(chain.to_string(), desired.clone()), ("BERTH-SG-live".into(), vec![])],
                    ..in_sync.clone()
                },
                dead: none.clone(),
                want: None,
            },
            Case {
                name: "a duplicated jump is reduced to one",
                observed: Observed { jumps: vec![jump_ok.clone(), jump_ok.clone()], ..in_sync.clone() },
                dead: none.clone(),
                want: Some(vec![
                    format!("-D DOCKER-USER -o br-1 -j {chain}"),
                    format!("-D DOCKER-USER -o br-1 -j {chain}"),
                    insert.clone(),
                ]),
            },
            Case {
                name: "the chain printed differently but with the same marker is in sync",
                observed: Observed {
                    chains: vec![(
                        chain.to_string(),
                        desired
                            .iter()
                            .enumerate()
                            .map(|(i, r)| if i == 0 { r.clone() } else { format!("{r} ") })
                            .collect(),
                    )],
                    ..in_sync.clone()
                },
                dead: none.clone(),
                want: None,
            },
            Case {
                name: "a dead instance's chain is collected, a live one's kept",
                observed: Observed {
                    jumps: vec![
                        jump_ok.clone(),
                        "-A DOCKER-USER -o br-1 -j BERTH-SG-dead".into(),
                        "-A DOCKER-USER -o br-1 -j BERTH-SG-live".into(),
                    ],
                    chains: vec![
                        (chain.to_string(), desired.clone()),
                        ("BERTH-SG-dead".into(), vec!["-A BERTH-SG-dead -d 172.18.0.9/32 -j DROP".into()]),
                        ("BERTH-SG-live".into(), vec![]),
                    ],
                    ..in_sync.clone()
                },
                dead: BTreeSet::from(["dead".to_string()]),
                want: Some(vec![
                    "-D DOCKER-USER -o br-1 -j BERTH-SG-dead".into(),
                    "-F BERTH-SG-dead".into(),
                    "-X BERTH-SG-dead".into(),
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
        let text = "-P INPUT ACCEPT\n-N DOCKER-USER\n-N BERTH-SG-x\n-A DOCKER-USER -o br-1 -j BERTH-SG-x\n\
                    -A DOCKER-USER -j RETURN\n-A BERTH-SG-x -d 1.2.3.4/32 -j DROP\n-A FORWARD -j DOCKER-USER\n";
        let o = parse(text);
        assert!(o.docker_user);
        assert_eq!(o.jumps, ["-A DOCKER-USER -o br-1 -j BERTH-SG-x"]);
        assert_eq!(o.chains, [("BERTH-SG-x".to_string(), vec!["-A BERTH-SG-x -d 1.2.3.4/32 -j DROP".to_string()])]);
        assert_eq!(other_owners("y", &o), ["x"]);
        assert!(!parse("-N FOO\n").docker_user);
    }
}
