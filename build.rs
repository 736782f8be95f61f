//! Embeds the source runtimes (runtimes/dist/python.wasm and js.wasm,
//! built by `bash runtimes/build.sh`) in the `wasmless` binary, so that an
//! installed binary runs Python and JavaScript functions wherever it is.
//!
//! `WASMLESS_EMBED_RUNTIMES`: unset, a release build (`cargo install`)
//! embeds runtimes/dist when both files are there; a folder embeds that
//! folder's in any build (CI's tests do); `0` embeds nothing.

use std::path::{Path, PathBuf};

const FILES: [(&str, &str); 2] = [
    ("python.wasm", "WASMLESS_EMBEDDED_PYTHON"),
    ("js.wasm", "WASMLESS_EMBEDDED_JS"),
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=WASMLESS_EMBED_RUNTIMES");
    println!("cargo::rustc-check-cfg=cfg(wasmless_embedded)");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let setting = std::env::var("WASMLESS_EMBED_RUNTIMES").ok();
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let dir = match setting.as_deref() {
        Some("0") | Some("") => return,
        Some(dir) => {
            let dir = root.join(dir);
            for (file, _) in FILES {
                assert!(
                    dir.join(file).is_file(),
                    "WASMLESS_EMBED_RUNTIMES={}: no {file} there (bash runtimes/build.sh builds them)",
                    dir.display()
                );
            }
            dir
        }
        None if release => {
            let dir = root.join("runtimes/dist");
            // Built later, they are embedded in the next build.
            println!("cargo::rerun-if-changed={}", dir.display());
            if !FILES.iter().all(|(file, _)| dir.join(file).is_file()) {
                println!(
                    "cargo::warning=runtimes/dist is not built: this wasmless runs Python and JavaScript functions only with --runtimes-dir (run `bash runtimes/build.sh` first to embed them)"
                );
                return;
            }
            dir
        }
        None => return,
    };
    embed(&dir);
}

fn embed(dir: &Path) {
    for (file, variable) in FILES {
        let path = dir.join(file);
        println!("cargo::rerun-if-changed={}", path.display());
        println!("cargo::rustc-env={variable}={}", path.display());
    }
    println!("cargo::rustc-cfg=wasmless_embedded");
}
