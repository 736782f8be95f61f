//! A function's source archive (zip, tar, tar.gz, tar.bz2, tar.xz): what
//! it is, its entries, and a tar made into a zip, within the bounds on
//! entries and unpacked size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmless_fuzz::archive;

fuzz_target!(|data: &[u8]| {
    let _ = archive::Archive::of(data);
    if let Ok(zip) = archive::to_zip(data) {
        let entries = archive::zip_entries(&zip).expect("a zip made here reads back");
        let unpacked: u64 = entries.iter().map(|(_, bytes)| bytes.len() as u64).sum();
        assert!(entries.len() <= archive::MAX_ENTRIES);
        assert!(unpacked <= archive::MAX_UNPACKED);
    }
    let _ = archive::zip_entries(data);
});
