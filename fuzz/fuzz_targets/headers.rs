//! Header handling: hop-by-hop stripping, X-Forwarded-*, trace id, WebSocket detection, stickiness cookie.
#![no_main]

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Vec<(Vec<u8>, Vec<u8>)>, [u8; 16], u16, bool)| {
    let (headers, ip, port, https) = input;
    let pairs: Vec<(&[u8], &[u8])> = headers.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
    let client = SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port);
    berth_proxy::fuzzing::headers(&pairs, client, https);
});
