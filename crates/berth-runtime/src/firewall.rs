//! The firewall policy a runtime enforces for task containers: for each task address, the (protocol, ports,
//! source network) triples allowed to open connections to it (ingress), and for each task whose egress is
//! restricted, the (protocol, ports, destination network) triples it may open connections to (egress).
//! Everything else towards a listed ingress task, or from a listed egress task, is refused; replies to
//! established connections and traffic of unlisted addresses are not touched. The control plane computes the
//! policy from security groups; a driver makes it real.

use std::net::IpAddr;

use berth_core::cidr::Cidr;

/// The whole policy of one berth instance on one network. Applying it replaces the previous one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallPolicy {
    /// The berth instance that owns the rules (several berths may share one engine).
    pub owner: String,
    /// The runtime network the tasks are on.
    pub network: String,
    /// One entry per protected task, sorted by address.
    pub tasks: Vec<TaskIngress>,
    /// One entry per task whose outgoing connections are restricted, sorted by address. A task not listed
    /// may connect anywhere (the security group default: all traffic to 0.0.0.0/0).
    pub egress: Vec<TaskEgress>,
}

/// What may reach one task.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaskIngress {
    pub address: IpAddr,
    /// Sorted and deduplicated.
    pub allow: Vec<Allow>,
}

/// Where one task may open connections to. In its [`Allow`]s, `source` is the peer: the destination network.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaskEgress {
    pub address: IpAddr,
    /// Sorted and deduplicated; empty means the task may open no connection at all.
    pub allow: Vec<Allow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Allow {
    pub protocol: Protocol,
    /// Inclusive destination port range; `None` for every port (or a protocol without ports).
    pub ports: Option<(u16, u16)>,
    /// The peer network: where connections come from (ingress) or go to (egress).
    pub source: Cidr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    All,
    Tcp,
    Udp,
    Icmp,
    /// Any other IP protocol number.
    Number(u8),
}

/// What applying a policy did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirewallReport {
    /// Whether any rule changed.
    pub changed: bool,
    /// Rules of other (gone) berth instances that were removed.
    pub collected: Vec<String>,
}

/// A runtime network's addresses, as the engine reports them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkInfo {
    /// The IPv4 subnet tasks get addresses from.
    pub subnet: Option<Cidr>,
    /// The host side of the network (what the host, and so the proxy, connects to tasks from).
    pub gateway: Option<IpAddr>,
    /// The DNS servers the engine forwards tasks' queries to from inside their network namespace (so they
    /// pass the egress rules as the task's own traffic); empty when queries never leave the host.
    pub dns_resolvers: Vec<IpAddr>,
}
