//! The iptables executor against this host's real iptables (root, Docker's DOCKER-USER chain): what it
//! writes reads back as in sync (no re-apply loop), a changed policy is applied, and a gone owner's chain
//! is collected, ingress and egress chains alike. The bridge name is one no interface has, so the rules never
//! match real traffic.

use std::collections::BTreeSet;

use berth_runtime::firewall::{Allow, FirewallPolicy, Protocol, TaskEgress, TaskIngress};
use berth_runtime_docker::firewall;

fn policy(owner: &str, ports: (u16, u16)) -> FirewallPolicy {
    let c = |s: &str| s.parse().expect("cidr");
    FirewallPolicy {
        owner: owner.into(),
        network: "unused".into(),
        tasks: vec![TaskIngress {
            address: "10.254.253.2".parse().expect("ip"),
            allow: vec![
                Allow { protocol: Protocol::Tcp, ports: Some(ports), source: c("10.254.253.1/32") },
                Allow { protocol: Protocol::Udp, ports: Some((53, 53)), source: c("0.0.0.0/0") },
                Allow { protocol: Protocol::Number(47), ports: None, source: c("192.0.2.0/24") },
                Allow { protocol: Protocol::All, ports: None, source: c("198.51.100.0/24") },
            ],
        }],
        egress: vec![TaskEgress {
            address: "10.254.253.3".parse().expect("ip"),
            allow: vec![
                Allow { protocol: Protocol::Tcp, ports: Some(ports), source: c("10.254.253.2/32") },
                Allow { protocol: Protocol::Tcp, ports: Some((51679, 51679)), source: c("169.254.170.2/32") },
            ],
        }],
    }
}

#[tokio::test]
async fn rules_written_read_back_in_sync_and_are_collected() {
    let owner = format!("test{:x}", std::process::id());
    let bridge = "br-berthnone0";
    let chain = firewall::chain_name(&owner);
    let none = BTreeSet::new();

    let observed = firewall::observe().await.expect("iptables with Docker's DOCKER-USER chain (run as root)");
    let desired = firewall::render(&policy(&owner, (80, 80)));
    let input = firewall::plan(&owner, bridge, &desired, &observed, &none).expect("first apply has work");
    firewall::apply(&input).await.expect("apply");
    let observed = firewall::observe().await.expect("observe");
    assert_eq!(firewall::plan(&owner, bridge, &desired, &observed, &none), None, "what was written reads back in sync");
    assert!(observed.jumps.contains(&firewall::jump(bridge, &chain)));
    let egress = firewall::egress_chain_name(&owner);
    for j in firewall::egress_jumps(bridge, &egress) {
        assert!(observed.jumps.contains(&j), "{j} in {:?}", observed.jumps);
    }

    // A changed policy is applied and then in sync again.
    let desired = firewall::render(&policy(&owner, (8000, 9000)));
    let input = firewall::plan(&owner, bridge, &desired, &observed, &none).expect("a change has work");
    firewall::apply(&input).await.expect("apply");
    let observed = firewall::observe().await.expect("observe");
    assert_eq!(firewall::plan(&owner, bridge, &desired, &observed, &none), None);
    let (_, rules) = observed.chains.iter().find(|(n, _)| *n == chain).expect("chain");
    assert!(rules.iter().any(|r| r.contains("--dport 8000:9000")), "{rules:?}");
    let (_, rules) = observed.chains.iter().find(|(n, _)| *n == egress).expect("egress chain");
    assert!(rules.iter().any(|r| r.contains("-s 10.254.253.3/32 -d 10.254.253.2/32 -p tcp -m tcp --dport 8000:9000")));

    // Another owner collects it once this one is gone.
    let dead = BTreeSet::from([chain["BERTH-SG-".len()..].to_string()]);
    let other = "testcollector";
    let input = firewall::plan(other, bridge, &firewall::render(&policy(other, (1, 1))), &observed, &dead)
        .expect("collecting has work");
    assert!(input.contains(&format!("-X {chain}")) && input.contains(&format!("-X {egress}")), "{input}");
    firewall::apply(&input).await.expect("apply");
    let observed = firewall::observe().await.expect("observe");
    assert!(observed.chains.iter().all(|(n, _)| *n != chain && *n != egress), "the dead owner's chains are gone");
    assert!(observed.jumps.iter().all(|j| !j.ends_with(&chain) && !j.ends_with(&egress)));
    // The collector's own chain goes the same way.
    let input = firewall::remove(other, &observed).expect("the collector has a chain");
    firewall::apply(&input).await.expect("apply");
    let observed = firewall::observe().await.expect("observe");
    assert!(observed.chains.iter().all(|(n, _)| *n != firewall::chain_name(other)));
    assert!(observed.chains.iter().all(|(n, _)| *n != firewall::egress_chain_name(other)));
    assert!(observed.jumps.iter().all(|j| !j.contains(&firewall::egress_chain_name(other))));
    assert_eq!(firewall::remove(other, &observed), None);
}
