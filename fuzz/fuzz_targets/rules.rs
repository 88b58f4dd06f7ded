//! Rule compilation and matching on arbitrary rules and requests, plus wildcards and redirects.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use berth_proxy::fuzzing::{FuzzRequest, match_rules, redirect, wildcard};
use berth_routes::{Condition, QueryStringPair, Redirect, RedirectStatus, Rule, RuleAction};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Cond {
    Host(Vec<String>),
    Path(Vec<String>),
    Header(String, Vec<String>),
    Method(Vec<String>),
    Query(Vec<(Option<String>, String)>),
    SourceIp(Vec<String>),
}

#[derive(Debug, Arbitrary)]
struct Input {
    rules: Vec<(u32, Vec<Cond>)>,
    hosts: Vec<String>,
    host_header: Option<String>,
    authority: Option<String>,
    path_and_query: String,
    method: String,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    source: ([u8; 16], bool),
    pattern: (String, String, bool),
    redirect: [Option<String>; 5],
    port: u16,
}

fuzz_target!(|input: Input| {
    let rules: Vec<Rule> = input
        .rules
        .into_iter()
        .enumerate()
        .map(|(i, (priority, conds))| Rule {
            arn: format!("rule-{i}"),
            priority,
            conditions: conds
                .into_iter()
                .map(|c| match c {
                    Cond::Host(values) => Condition::HostHeader { values },
                    Cond::Path(values) => Condition::PathPattern { values },
                    Cond::Header(name, values) => Condition::HttpHeader { name, values },
                    Cond::Method(values) => Condition::HttpRequestMethod { values },
                    Cond::Query(pairs) => Condition::QueryString {
                        values: pairs.into_iter().map(|(key, value)| QueryStringPair { key, value }).collect(),
                    },
                    Cond::SourceIp(values) => Condition::SourceIp { values },
                })
                .collect(),
            actions: vec![RuleAction::Forward { target_groups: vec![], stickiness: None }],
            load_balancer: None,
        })
        .collect();
    let (ip, v4) = input.source;
    let source = if v4 {
        IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(ip))
    };
    let pairs: Vec<(&[u8], &[u8])> = input.headers.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
    let req = FuzzRequest {
        host_header: input.host_header.as_deref(),
        authority: input.authority.as_deref(),
        path_and_query: &input.path_and_query,
        method: &input.method,
        headers: &pairs,
        source,
    };
    if let Some(priority) = match_rules(&rules, &input.hosts, &req) {
        assert!(rules.iter().any(|r| r.priority == priority) || priority == berth_routes::HOST_ROUTE_PRIORITY);
    }
    let (pattern, text, fold) = input.pattern;
    let _ = wildcard(&pattern, &text, fold);

    let [protocol, host, port, path, query] = input.redirect;
    let r = Redirect { protocol, host, port, path, query, status_code: RedirectStatus::Http301 };
    let (path, query) = match input.path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (input.path_and_query.as_str(), None),
    };
    let _ = redirect(&r, input.host_header.as_deref().unwrap_or("h"), input.port, path, query);
});
