//! The source runtimes built into the `wasmless` binary (see build.rs), so
//! that an installed binary runs Python and JavaScript functions with no
//! runtimes folder. The binary hands them over at start.

use std::sync::OnceLock;

static EMBEDDED: OnceLock<&'static [(&'static str, &'static [u8])]> = OnceLock::new();

/// Called once by the binary with the runtime files it carries (file name,
/// bytes); a binary built without them gives none.
pub fn provide(files: &'static [(&'static str, &'static [u8])]) {
    let _ = EMBEDDED.set(files);
}

/// The bytes of runtime `file` (`python.wasm`) carried by the binary.
pub fn get(file: &str) -> Option<&'static [u8]> {
    EMBEDDED
        .get()?
        .iter()
        .find(|(name, _)| *name == file)
        .map(|(_, bytes)| *bytes)
}

/// The files carried, with their sizes.
pub fn list() -> Vec<(&'static str, usize)> {
    EMBEDDED
        .get()
        .map(|files| files.iter().map(|(n, b)| (*n, b.len())).collect())
        .unwrap_or_default()
}
