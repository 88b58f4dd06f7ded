//! Where load balancers live and listen, and who may connect to them.
//!
//! An Express service's subnets decide its load balancer's scheme ([`crate::ec2::subnets::privacy`]): public
//! subnets share internet-facing load balancers, private ones internal load balancers, each per VPC and never
//! mixed. An internet-facing load balancer takes a free address of the proxy's address pool when it is created
//! (`proxy.address_pool`) and listens there by itself; without one it shares the proxy's default sockets,
//! where the request's Host picks it. An internal load balancer listens on its VPC's side only: the address
//! of its network's gateway (as the runtime reports it), on the proxy's HTTPS and HTTP ports, never on the
//! public sockets; until the gateway is known it is not served at all. Its source filter is the union of the
//! ingress rules of the load balancer groups of every service it carries, applied to every host it serves.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};

use berth_core::cidr::Cidr;
use berth_routes::{ListenerSources, LoadBalancer, Scheme};
use berth_store::{LbNetworkRow, LoadBalancerRow, TargetGroupRow, Tx};

use super::parse;
use crate::ec2::subnets::Privacy;
use crate::{Control, ControlError};

/// A load balancer's VPC (load balancers from before VPCs were recorded are in the default VPC).
pub(crate) fn lb_vpc(tx: &Tx<'_>, lb_arn: &str) -> Result<String, ControlError> {
    match tx.lb_network_get(lb_arn)? {
        Some(n) => Ok(n.vpc_id),
        None => crate::ec2::network::default_vpc(tx),
    }
}

/// A target group's VPC: that of the load balancer forwarding to it (`lb_arn`), else of its service's load
/// balancer, else the default VPC.
pub(crate) fn tg_vpc(tx: &Tx<'_>, g: &TargetGroupRow, lb_arn: Option<&str>) -> Result<String, ControlError> {
    if let Some(arn) = lb_arn {
        return lb_vpc(tx, arn);
    }
    match g.service_id.map(|id| tx.placement_get(id)).transpose()?.flatten() {
        Some(p) => lb_vpc(tx, &p.load_balancer_arn),
        None => crate::ec2::network::default_vpc(tx),
    }
}

/// The first address of `pool` no other load balancer listens on.
pub(crate) fn free_pool_address(tx: &Tx<'_>, pool: &[IpAddr]) -> Result<Option<IpAddr>, ControlError> {
    let used: BTreeSet<String> = tx.lb_networks()?.into_iter().filter_map(|n| n.address).collect();
    Ok(pool.iter().copied().find(|a| !used.contains(&a.to_string())))
}

/// Records a new load balancer's VPC and, for an internet-facing one, a free pool address.
pub(crate) fn assign(
    c: &Control,
    tx: &Tx<'_>,
    lb_arn: &str,
    vpc_id: &str,
    privacy: Privacy,
) -> Result<(), ControlError> {
    let address = match privacy {
        Privacy::Public => free_pool_address(tx, &c.config.address_pool)?.map(|a| a.to_string()),
        Privacy::Private => None,
    };
    tx.lb_network_put(&LbNetworkRow { lb_arn: lb_arn.into(), vpc_id: vpc_id.into(), address })?;
    Ok(())
}

/// Where one load balancer listens: its own (HTTPS, HTTP) addresses, `None` for the default sockets, or no
/// entry at all when it cannot be served yet (an internal one whose gateway is unknown).
pub(crate) fn listen_addresses(
    c: &Control,
    tx: &Tx<'_>,
    lb: &LoadBalancerRow,
) -> Result<Option<Option<(SocketAddr, SocketAddr)>>, ControlError> {
    let net = tx.lb_network_get(&lb.arn)?;
    let (https, http) = (c.config.https_port, c.config.http_port);
    let own = |ip: IpAddr| Some((SocketAddr::new(ip, https), SocketAddr::new(ip, http)));
    if lb.scheme == Privacy::Private.scheme() {
        let vpc = match &net {
            Some(n) => n.vpc_id.clone(),
            None => crate::ec2::network::default_vpc(tx)?,
        };
        let Some(vpc) = tx.vpc_get(&vpc)? else { return Ok(None) };
        let gateway =
            tx.meta_get(&crate::ec2::network::gateway_key(&vpc.network))?.and_then(|g| g.parse::<IpAddr>().ok());
        return Ok(gateway.map(own));
    }
    let address = net.and_then(|n| n.address).and_then(|a| a.parse::<IpAddr>().ok());
    // An address taken out of the pool is no longer listened on: the load balancer shares the default sockets.
    Ok(Some(address.filter(|a| c.config.address_pool.contains(a)).and_then(own)))
}

/// The route table's load balancers (those that can be served), with the hosts each serves exactly.
/// `hosts_by_service`: active services' endpoint hosts; `rule_hosts`: exact host-header values of each load
/// balancer's rules.
pub(crate) fn route_load_balancers(
    c: &Control,
    tx: &Tx<'_>,
    hosts_by_service: &HashMap<i64, String>,
    rule_hosts: &HashMap<String, Vec<String>>,
) -> Result<Vec<LoadBalancer>, ControlError> {
    let placements = tx.placements()?;
    let members = crate::ec2::attachments::Members::load(tx)?;
    let mut out = Vec::new();
    for lb in tx.lbs()? {
        let Some(listen) = listen_addresses(c, tx, &lb)? else { continue };
        let services: Vec<i64> =
            placements.iter().filter(|p| p.load_balancer_arn == lb.arn).map(|p| p.service_id).collect();
        let mut hosts: Vec<String> = services
            .iter()
            .filter_map(|s| hosts_by_service.get(s))
            .chain(rule_hosts.get(&lb.arn).into_iter().flatten())
            .map(|h| h.to_ascii_lowercase())
            .collect();
        hosts.sort();
        hosts.dedup();
        let attrs: BTreeMap<String, String> = parse(&lb.attributes, "load balancer attributes")?;
        let idle = attrs.get("idle_timeout.timeout_seconds").and_then(|v| v.parse::<u32>().ok());
        // The union of the load balancer groups of the services it carries.
        let mut groups = BTreeSet::new();
        for s in &services {
            if let Some(g) = crate::ec2::attachments::load_balancer_group(tx, *s)? {
                groups.insert(g);
            }
        }
        let sources = if groups.is_empty() {
            None
        } else {
            let union = |port: u16| -> Result<Vec<String>, ControlError> {
                let mut all: Vec<Cidr> = Vec::new();
                for g in &groups {
                    all.extend(members.sources(tx, g, port)?);
                }
                let mut shown: Vec<String> = all.iter().map(ToString::to_string).collect();
                shown.sort();
                shown.dedup();
                Ok(shown)
            };
            Some(ListenerSources { https: union(443)?, http: union(80)? })
        };
        out.push(LoadBalancer {
            arn: lb.arn.clone(),
            scheme: if lb.scheme == Privacy::Private.scheme() { Scheme::Internal } else { Scheme::InternetFacing },
            https_listen: listen.map(|(h, _)| h),
            http_listen: listen.map(|(_, h)| h),
            hosts,
            idle_timeout_secs: idle,
            sources,
        });
    }
    Ok(out)
}

/// The security groups of a load balancer: the load balancer groups of the services it carries.
pub(crate) fn lb_security_groups(tx: &Tx<'_>, lb_arn: &str) -> Result<Vec<String>, ControlError> {
    let mut groups = BTreeSet::new();
    for p in tx.placements()?.into_iter().filter(|p| p.load_balancer_arn == lb_arn) {
        if let Some(g) = crate::ec2::attachments::load_balancer_group(tx, p.service_id)? {
            groups.insert(g);
        }
    }
    Ok(groups.into_iter().collect())
}
