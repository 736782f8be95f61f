//! A source function's `spec.handler` (`file.function`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok((module, entry)) = wasmless_fuzz::runtimes::split_handler(text) {
        assert!(!module.is_empty() && !entry.is_empty(), "{text:?}");
        assert!(
            !module.contains(['/', '\\']) && !module.contains(".."),
            "{text:?}"
        );
    }
});
