//! Quantities (`spec.memory`) and durations (`spec.timeout`, retries).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = wasmless_fuzz::crd::parse_memory(text);
    let _ = wasmless_fuzz::crd::parse_duration(text);
});
