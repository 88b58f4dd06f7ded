//! Host header / HTTP/2 `:authority` parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Option<String>, Option<String>)| {
    let (host, authority) = input;
    if let Some(parsed) = berth_proxy::fuzzing::request_host(host.as_deref(), authority.as_deref()) {
        // The result is itself a usable Host (one trailing dot is stripped per parse, so `a..` is not
        // idempotent; that is accepted).
        assert!(berth_proxy::fuzzing::request_host(Some(&parsed), None).is_some(), "{parsed:?}");
    }
});
