//! A function's source archive (zip, tar, tar.gz, tar.bz2, tar.xz): what
//! it is, its entries, and a tar made into a zip, within the bounds on
//! entries and unpacked size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmless_fuzz::archive;

fuzz_target!(|data: &[u8]| {
    let kind = archive::Archive::of(data);
    if let Ok(zip) = archive::to_zip(data)
        && kind != Some(archive::Archive::Zip)
    {
        // A tar made into a zip here reads back, within the bounds.
        let entries = archive::zip_entries(&zip).expect("a zip made from a tar reads back");
        within_bounds(&entries);
    }
    if let Ok(entries) = archive::zip_entries(data) {
        within_bounds(&entries);
    }
});

fn within_bounds(entries: &[(String, Vec<u8>)]) {
    let unpacked: u64 = entries.iter().map(|(_, bytes)| bytes.len() as u64).sum();
    assert!(entries.len() <= archive::MAX_ENTRIES);
    assert!(unpacked <= archive::MAX_UNPACKED);
}
