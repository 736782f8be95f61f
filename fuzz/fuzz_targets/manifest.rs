//! A manifest file, as `up` reads it: YAML → Function and trigger types
//! (and kubeless's own kinds, converted), every document validated.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (manifest, errors) =
        wasmless_fuzz::manifest::parse_manifest(data, std::path::Path::new("fuzz.yaml"));
    // Every error renders (the text `up` prints).
    for error in &errors {
        let _ = error.to_string();
    }
    let _ = manifest;
});
