//! Decoding ECS request bodies (AWS JSON 1.1) for every operation never panics, whatever the bytes.
#![no_main]

use berth_model::ecs::Operation;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, Vec<u8>)| {
    let (which, body) = input;
    let name = Operation::NAMES[usize::from(which) % Operation::NAMES.len()];
    let _ = Operation::decode(name, &body);
});
