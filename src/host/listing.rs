//! A loaded function as the admin API lists it (`function ls`, `describe`).

use serde::{Deserialize, Serialize};

use super::CacheOutcome;
use super::registry::{Entry, Origin};

/// One function in a listing.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FunctionInfo {
    /// The name.
    pub name: String,
    /// `ready` or `failed`.
    pub status: String,
    /// The kind of wasm function, when loaded.
    pub kind: Option<String>,
    /// The runtime from the spec.
    pub runtime: String,
    /// Why it failed, when it did.
    pub reason: Option<String>,
    /// The manifest file, or `api`.
    pub origin: String,
    /// sha256 of the module, when loaded.
    pub digest: Option<String>,
    /// `optimized`, `baseline` while the optimized code is compiled, or
    /// `parked` when unloaded while idle; `snapshot` (`snapshot-baseline`
    /// while its optimized code is compiled) when a busy source function
    /// runs on its own snapshot.
    #[serde(default)]
    pub code: Option<String>,
    /// Which path it runs on and why (wasm, or the container-image
    /// fallback).
    #[serde(default)]
    pub placement: Option<crate::crd::PlacementStatus>,
}

impl FunctionInfo {
    pub(crate) fn new(
        name: &str,
        runtime: &str,
        entry: &Entry,
        origin: &Origin,
        placement: Option<&crate::runtimes::Placement>,
    ) -> Self {
        let origin = match origin {
            Origin::Manifest(path) => path.display().to_string(),
            Origin::Api => "api".to_owned(),
            Origin::Cluster => "cluster".to_owned(),
        };
        let (status, kind, reason, digest, code) = match entry {
            Entry::Ready(f) => (
                "ready",
                Some(f.kind().as_str().to_owned()),
                None,
                Some(f.digest()),
                Some(
                    match (f.is_snapshot(), f.cache_outcome() == CacheOutcome::Baseline) {
                        (false, true) => "baseline",
                        (false, false) => "optimized",
                        (true, true) => "snapshot-baseline",
                        (true, false) => "snapshot",
                    }
                    .to_owned(),
                ),
            ),
            Entry::Failed(failure) => ("failed", None, Some(failure.message()), None, None),
            Entry::Process(_) => (
                "ready",
                Some("process".to_owned()),
                None,
                None,
                Some("native".to_owned()),
            ),
            Entry::Pending(_) => ("ready", None, None, None, Some("not loaded".to_owned())),
            Entry::Parked(parked) => (
                "ready",
                Some(parked.kind.as_str().to_owned()),
                None,
                Some(parked.digest()),
                Some("parked".to_owned()),
            ),
        };
        Self {
            name: name.to_owned(),
            status: status.to_owned(),
            kind,
            runtime: runtime.to_owned(),
            reason,
            origin,
            digest,
            code,
            placement: placement.map(Into::into),
        }
    }
}
