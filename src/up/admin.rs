//! The admin API of `up`, under `/_wasmless/` (a path no function name can
//! take), used by the `wasmless function` verbs. It answers loopback
//! clients only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::{Deserialize, Serialize};

use super::server::{App, HttpResponse, json, plain};
use super::triggers::TriggerInfo;
use crate::host::registry::Origin;
use crate::manifest::parse_manifest;

use crate::crd::{API_VERSION, ContentType, EnvVar, Function, FunctionSpec, ObjectMeta, Seconds};

/// The path prefix of the admin API.
pub const ADMIN_PREFIX: &str = "/_wasmless/";

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
    /// The Function this request describes, validated, and its source's
    /// bytes.
    pub fn into_function(self, name: &str) -> Result<(Function, Vec<u8>), String> {
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
        Ok((function, self.source))
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

/// One object of an `apply`, and what became of it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AppliedObject {
    /// `Function`, `CronTrigger`, `KafkaTrigger` or `HTTPTrigger`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// `deployed`, `failed` (a Function that did not load), or `applied`.
    pub outcome: String,
    /// The function's kind, or why it failed.
    #[serde(default)]
    pub message: Option<String>,
}

/// The answer to `PUT /_wasmless/apply`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ApplyAnswer {
    /// Each object, in the order given.
    pub objects: Vec<AppliedObject>,
    /// What was ignored or changed in converting kubeless objects.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// The origin of an object applied through the admin API.
fn api_origin(key: &str) -> PathBuf {
    PathBuf::from(format!("{API_ORIGIN}{key}"))
}

const API_ORIGIN: &str = "api:";

impl App {
    pub(super) fn lock_applied(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<String, Function>> {
        self.applied.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every trigger: cron and Kafka ones that run, and HTTPTriggers.
    pub(super) fn trigger_list(&self) -> Vec<TriggerInfo> {
        let shown = |origin: String| {
            if origin.starts_with(API_ORIGIN) {
                "api".to_owned()
            } else {
                origin
            }
        };
        let mut list: Vec<TriggerInfo> = self
            .triggers
            .list()
            .into_iter()
            .map(|t| TriggerInfo {
                origin: shown(t.origin),
                ..t
            })
            .collect();
        list.extend(
            self.routes
                .list()
                .into_iter()
                .map(|(name, detail, origin)| TriggerInfo {
                    name,
                    detail,
                    status: "routed".to_owned(),
                    origin: shown(origin.display().to_string()),
                }),
        );
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// `PUT /_wasmless/apply`: manifest documents (YAML or JSON; wasmless
    /// or kubeless objects), all checked before any is applied.
    pub(super) async fn admin_apply(self: &Arc<Self>, req: Request<Incoming>) -> HttpResponse {
        let body = match Limited::new(req.into_body(), 64 << 20).collect().await {
            Ok(body) => body.to_bytes(),
            Err(err) => return plain(StatusCode::PAYLOAD_TOO_LARGE, format!("{err}\n")),
        };
        let (manifest, errors) = parse_manifest(&body, Path::new("request"));
        if !errors.is_empty() {
            let text: Vec<String> = errors.iter().map(|e| format!("{e}\n")).collect();
            return plain(StatusCode::BAD_REQUEST, text.concat());
        }
        // A name that a manifest file declares stays the file's.
        for function in &manifest.functions {
            let name = function.function.name();
            if let Some(file) = self.manifest_origin(name) {
                return plain(
                    StatusCode::CONFLICT,
                    format!("{name} comes from {file}: edit that file instead\n"),
                );
            }
        }
        let mut answer = ApplyAnswer {
            notes: manifest.notes,
            ..ApplyAnswer::default()
        };
        let mut failed = false;
        for found in manifest.functions {
            let function = found.function;
            let name = function.name().to_owned();
            self.lock_applied().insert(name.clone(), function.clone());
            let (outcome, message) = match self.registry.deploy(function, Origin::Api).await {
                Ok(runner) => {
                    tracing::info!(function = %name, summary = %runner.summary(), "deployed through the admin API");
                    let kind = self.registry.info(&name).and_then(|f| f.kind);
                    ("deployed", kind)
                }
                Err(reason) => {
                    failed = true;
                    if !self.registry.contains(&name) {
                        // Refused before it was loaded (the host is full):
                        // nothing of it stays.
                        self.lock_applied().remove(&name);
                    }
                    ("failed", Some(reason))
                }
            };
            answer.objects.push(AppliedObject {
                kind: "Function".to_owned(),
                name,
                outcome: outcome.to_owned(),
                message,
            });
        }
        for trigger in manifest.triggers {
            let key = trigger.key();
            let (kind, name) = key.split_once('/').expect("a key is KIND/NAME");
            let object = AppliedObject {
                kind: kind.to_owned(),
                name: name.to_owned(),
                outcome: "applied".to_owned(),
                message: None,
            };
            self.triggers
                .apply(self, &api_origin(&key), vec![trigger])
                .await;
            answer.objects.push(object);
        }
        for trigger in manifest.http_triggers {
            let name = trigger.metadata.name.clone().unwrap_or_default();
            let key = format!("HTTPTrigger/{name}");
            self.routes.apply(&api_origin(&key), vec![trigger]);
            answer.objects.push(AppliedObject {
                kind: "HTTPTrigger".to_owned(),
                name,
                outcome: "applied".to_owned(),
                message: None,
            });
        }
        let status = if failed {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::OK
        };
        json(status, &answer)
    }

    /// The manifest file a function came from, if it came from one.
    fn manifest_origin(&self, name: &str) -> Option<String> {
        self.registry
            .info(name)
            .filter(|f| f.origin != "api" && f.origin != "cluster")
            .map(|f| f.origin)
    }

    /// `GET /_wasmless/objects/Function/NAME`: the Function as applied.
    pub(super) fn admin_object(&self, object: &str) -> HttpResponse {
        let found = match object.split_once('/') {
            Some(("Function", name)) => name,
            Some(("HTTPTrigger", name)) => {
                return match self.routes.get(name) {
                    Some(trigger) => json(StatusCode::OK, &trigger),
                    None => plain(StatusCode::NOT_FOUND, format!("no {object}\n")),
                };
            }
            Some(("CronTrigger" | "KafkaTrigger", _)) => {
                return match self.triggers.get(object) {
                    Some(crate::manifest::Trigger::Cron(t)) => json(StatusCode::OK, &t),
                    Some(crate::manifest::Trigger::Kafka(t)) => json(StatusCode::OK, &t),
                    None => plain(StatusCode::NOT_FOUND, format!("no {object}\n")),
                };
            }
            _ => {
                return plain(
                    StatusCode::NOT_FOUND,
                    "objects/KIND/NAME: Function, HTTPTrigger, CronTrigger or KafkaTrigger\n",
                );
            }
        };
        let name = found;
        if let Some(function) = self.lock_applied().get(name) {
            return json(StatusCode::OK, function);
        }
        match self.manifest_origin(name) {
            Some(file) => plain(
                StatusCode::CONFLICT,
                format!("{name} comes from {file}: edit that file instead\n"),
            ),
            None => plain(
                StatusCode::NOT_FOUND,
                format!("no function named `{name}`\n"),
            ),
        }
    }

    /// `DELETE /_wasmless/objects/KIND/NAME`, for objects applied through
    /// the admin API.
    pub(super) async fn admin_delete_object(self: &Arc<Self>, object: &str) -> HttpResponse {
        let Some((kind, name)) = object.split_once('/') else {
            return plain(StatusCode::NOT_FOUND, "objects/KIND/NAME\n");
        };
        let key = format!("{kind}/{name}");
        let origin = match kind {
            "Function" => {
                if let Some(file) = self.manifest_origin(name) {
                    return plain(
                        StatusCode::CONFLICT,
                        format!("{name} comes from {file}: remove it there\n"),
                    );
                }
                self.lock_applied().remove(name);
                return if self.registry.remove(name) {
                    plain(StatusCode::OK, format!("deleted {key}\n"))
                } else {
                    plain(
                        StatusCode::NOT_FOUND,
                        format!("no function named `{name}`\n"),
                    )
                };
            }
            "HTTPTrigger" => self.routes.origin(name),
            "CronTrigger" | "KafkaTrigger" => self
                .triggers
                .list()
                .into_iter()
                .find(|t| t.name == key)
                .map(|t| PathBuf::from(t.origin)),
            other => {
                return plain(
                    StatusCode::NOT_FOUND,
                    format!(
                        "`{other}` is not Function, HTTPTrigger, CronTrigger or KafkaTrigger\n"
                    ),
                );
            }
        };
        match origin {
            None => plain(StatusCode::NOT_FOUND, format!("no {key}\n")),
            Some(origin) if origin != api_origin(&key) => plain(
                StatusCode::CONFLICT,
                format!("{key} comes from {}: remove it there\n", origin.display()),
            ),
            Some(origin) => {
                if kind == "HTTPTrigger" {
                    self.routes.apply(&origin, Vec::new());
                } else {
                    self.triggers.apply(self, &origin, Vec::new()).await;
                }
                plain(StatusCode::OK, format!("deleted {key}\n"))
            }
        }
    }
}
