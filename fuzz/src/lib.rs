//! The modules of wasmless that parse what users and the network send,
//! compiled from the main crate's own files (the same source, not a copy)
//! without the host, the operator or the Kafka client, so that the fuzz
//! build stays small. Each module keeps its `crate::` paths: they are
//! mirrored here.

#![allow(dead_code, unused_imports, missing_docs, clippy::all)]

#[path = "../../src/archive.rs"]
pub mod archive;
#[path = "../../src/crd/mod.rs"]
pub mod crd;
#[path = "../../src/host/event.rs"]
mod event;
#[path = "../../src/kubeless.rs"]
pub mod kubeless;
#[path = "../../src/manifest.rs"]
pub mod manifest;
#[path = "../../src/outbound.rs"]
pub mod outbound;
#[path = "../../src/runtimes/mod.rs"]
pub mod runtimes;

/// `crate::host` as the event module sees it.
pub mod host {
    pub use crate::event::*;
}
