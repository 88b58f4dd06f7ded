//! The proxy's HTTP/1.1 fast path: request and response heads, chunked bodies.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Vec<u8>, bool, bool, Vec<u16>)| {
    let (raw, head_request, close, cuts) = input;
    berth_proxy::fuzzing::h1_request(&raw);
    berth_proxy::fuzzing::h1_response(&raw, head_request, close);
    berth_proxy::fuzzing::chunked(&raw, &cuts);
});
