//! The admin API of `up`, under `/_wasmless/` (a path no function name can
//! take), used by the `wasmless function` verbs. It answers loopback
//! clients only.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::crd::{API_VERSION, ContentType, EnvVar, Function, FunctionSpec, ObjectMeta, Seconds};

use super::registry::{Entry, Origin};
use crate::host::CacheOutcome;

/// The path prefix of the admin API.
pub const ADMIN_PREFIX: &str = "/_wasmless/";

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
    /// `parked` when unloaded while idle.
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
                    if f.cache_outcome() == CacheOutcome::Baseline {
                        "baseline"
                    } else {
                        "optimized"
                    }
                    .to_owned(),
                ),
            ),
            Entry::Failed(reason) => ("failed", None, Some(reason.clone()), None, None),
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

/// What `wasmless function deploy` sends.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployRequest {
    /// The runtime (default `wasm`).
    pub runtime: Option<String>,
    /// The handler, for source runtimes.
    pub handler: Option<String>,
    /// A container image to run on instead of wasm.
    #[serde(default)]
    pub image: Option<String>,
    /// Timeout as in the spec.
    pub timeout: Option<String>,
    /// Memory limit as in the spec.
    pub memory: Option<String>,
    /// Environment variables.
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// The source file's bytes.
    #[serde(with = "base64_bytes")]
    pub source: Vec<u8>,
}

impl DeployRequest {
    /// The Function this request describes, validated.
    pub fn into_function(self, name: &str) -> Result<Function, String> {
        let function = Function {
            api_version: API_VERSION.to_owned(),
            kind: "Function".to_owned(),
            metadata: ObjectMeta {
                name: name.to_owned(),
                ..ObjectMeta::default()
            },
            spec: FunctionSpec {
                runtime: self
                    .runtime
                    .unwrap_or_else(|| crate::crd::WASM_RUNTIME.to_owned()),
                handler: self.handler,
                image: self.image,
                function: Some(base64::engine::general_purpose::STANDARD.encode(&self.source)),
                // A zip (several files of a source function) is unpacked.
                function_content_type: if self.source.starts_with(b"PK\x03\x04") {
                    ContentType::Base64Zip
                } else {
                    ContentType::Base64
                },
                timeout: self.timeout.map(Seconds::Text),
                memory: self.memory,
                env: self
                    .env
                    .into_iter()
                    .map(|(name, value)| EnvVar { name, value })
                    .collect(),
                ..FunctionSpec::default()
            },
            status: None,
        };
        function.validate().map_err(|e| e.to_string())?;
        Ok(function)
    }
}

mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}
