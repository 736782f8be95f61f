//! The `Function` resource: a function's source, runtime and limits.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::quantity::{parse_duration, parse_memory};
use super::schema;
use super::status::FunctionStatus;

/// Top-level folders of a function pod's file system (the image's, the
/// host's `/function` and `/tmp`, the kernel's): a Secret is mounted at
/// `/<name>`, so these names would hide them.
pub const RESERVED_MOUNTS: &[&str] = &[
    "bin", "boot", "dev", "etc", "function", "home", "kubeless", "lib", "lib32", "lib64", "media",
    "mnt", "opt", "proc", "root", "run", "sbin", "srv", "sys", "tmp", "usr", "var",
];

/// The API group and version of every wasmless resource.
pub const API_VERSION: &str = "wasmless.io/v1alpha1";
/// The runtime name of functions that are WebAssembly modules or components.
pub const WASM_RUNTIME: &str = "wasm";
/// The per-event time limit when a Function sets none (kubeless's default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);
/// The per-event memory limit when a Function sets none.
pub const DEFAULT_MEMORY: u64 = 128 << 20;

/// A function: `apiVersion: wasmless.io/v1alpha1`, `kind: Function`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Function {
    /// Always `wasmless.io/v1alpha1`.
    pub api_version: String,
    /// Always `Function`.
    pub kind: String,
    /// The function's name and labels.
    pub metadata: ObjectMeta,
    /// What the function is and how it runs.
    pub spec: FunctionSpec,
    /// Written by the platform; ignored when read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

/// The subset of Kubernetes object metadata that wasmless reads. Other
/// metadata fields (as `kubectl get -o yaml` prints them) are accepted and
/// ignored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// The function's name: a DNS label (lower-case letters, digits and `-`,
    /// at most 63 characters). It is the first path segment of its URL.
    pub name: String,
    /// The namespace, in a cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels, used by trigger selectors.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

// In a cluster this is the `spec` of the `Function` custom resource
// (`FunctionResource`); `wasmless up` reads the same spec from files.
/// The desired state of a function.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, CustomResource, JsonSchema)]
#[kube(
    group = "wasmless.io",
    version = "v1alpha1",
    kind = "Function",
    root = "FunctionResource",
    namespaced,
    status = "FunctionStatus",
    shortname = "fn",
    category = "wasmless",
    doc = "A function: WebAssembly or source code run by wasmless, one fresh sandboxed instance per event.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Runtime", type_ = "string", json_path = ".spec.runtime"),
    printcolumn(name = "Path", type_ = "string", json_path = ".status.placement.path"),
    printcolumn(
        name = "Placement",
        type_ = "string",
        json_path = ".status.placement.hosting"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason"
    ),
    printcolumn(
        name = "URL",
        type_ = "string",
        json_path = ".status.url",
        priority = 1
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FunctionSpec {
    /// The runtime: `wasm` (the default) for a WebAssembly component or
    /// module; source runtimes such as `python3.x` or `nodejs2x` run source
    /// code on an interpreter.
    #[serde(default = "default_runtime")]
    pub runtime: String,
    /// The entry point, `file.function`, for source runtimes. Not used by
    /// `wasm` functions, whose entry point is given by their kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    /// A container image to run the function on instead of wasm: one that
    /// serves the runtime's contract over HTTP (see runtimes/images/), or
    /// any image with the `custom` runtime. Unset, the runtime catalog
    /// decides: wasm when it can, the runtime's image otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Cluster only, on the image path: how the function's container runs.
    /// `Restricted` (the default for the catalog's images): as a verified
    /// non-root user, on a read-only root file system, with no
    /// capabilities. `AsImage` (the default with `spec.image`): as the
    /// image's Dockerfile says (its user, root included, and a writable
    /// file system), still without privilege escalation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_security: Option<ImageSecurity>,
    /// Cluster only: where the function runs. `Pool` (the default for wasm
    /// and source functions): the shared `wasmless host` pods of its
    /// namespace, which load it on its first event, in milliseconds.
    /// `Dedicated`: a Deployment of its own, as kubeless did (always so on
    /// the image path, and for Functions that shape their own pods:
    /// `replicas` other than 1, `autoscaling`, `resources`, `port`,
    /// `deployment`, `secrets` or installed dependencies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Hosting>,
    /// The function's source, encoded as `functionContentType` says: text
    /// (WAT or source code), base64 bytes, a base64 zip, or a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// How `function` is encoded: `text` (the default), `base64`,
    /// `base64+zip` or `url`.
    #[serde(
        default,
        alias = "function-content-type",
        skip_serializing_if = "ContentType::is_text"
    )]
    pub function_content_type: ContentType,
    /// `sha256:<hex>` of the source bytes. Required with `url`, checked
    /// whenever given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// `wasmless up` only: a file holding the source, relative to the
    /// manifest's folder. Edits to it reload the function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Per-event time limit: seconds (`"180"`, as kubeless wrote it) or a
    /// duration (`500ms`, `3s`). Default 180 seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::int_or_string")]
    pub timeout: Option<Seconds>,
    /// Per-event memory limit as a Kubernetes quantity (`64Mi`, `1Gi`).
    /// Default 128Mi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Environment variables the function may read. A function sees no other
    /// environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Where the function may send requests (deny by default): entries of
    /// `scheme://host[:port]`. `scheme` is `http`, `https` or `*`; `host`
    /// is a name (`api.example.com`), `*.` and a domain (its subdomains),
    /// `*` (any name), or an IP address (`127.0.0.1`, `[::1]`); `port` is a
    /// number or `*`, the scheme's own when left out. A name reaches public
    /// addresses only; an exact name may also reach private ones (10/8,
    /// 172.16/12, 192.168/16, 100.64/10, fc00::/7: a cluster's Services);
    /// loopback and link-local addresses (the host itself, cloud metadata)
    /// only when the entry names the address. `tcp://host:port` entries
    /// grant TCP connections (Python's `socket`), checked by the address
    /// connected to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_outbound_hosts: Vec<String>,
    /// Off unless set: lets one instance serve up to `maxEvents` events in
    /// a row, one at a time, instead of a fresh instance per event. Module
    /// state (globals, caches, a loaded model) then outlives an event, and
    /// an event may see what an earlier event of the same function left in
    /// memory; functions never share an instance. An instance that traps,
    /// times out or exceeds its memory is dropped. For functions whose
    /// per-event set-up dominates (Python, JavaScript) under steady load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_reuse: Option<InstanceReuse>,
    /// Cluster only: Kubernetes Secrets of the function's namespace, each
    /// mounted read-only at `/<secret-name>` in the function's pods (as
    /// kubeless did), so the top-level folders of the pod's file system
    /// ([`RESERVED_MOUNTS`]) cannot be Secret names here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Cluster only: how many pods serve the function (default 1). Set by
    /// `kubectl scale` and autoscalers through the scale subresource;
    /// ignored while `autoscaling` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // The default is in the schema too, so that the scale subresource (and
    // an HPA or KEDA reading it) sees 1, not nothing.
    #[schemars(range(min = 0, max = 10000), extend("default" = 1))]
    pub replicas: Option<i32>,
    /// Cluster only: a HorizontalPodAutoscaler for the function's pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
    /// Cluster only: the port the function's pods listen on and its Service
    /// targets (default 8080). The Service always listens on 8080.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// Cluster only: CPU and memory requests and limits of the function's
    /// container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Cluster only: a partial Deployment (`metadata`, `spec`) merged into
    /// the generated one, as kubeless did. Containers, volumes, env and
    /// ports merge by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::any_object")]
    pub deployment: Option<serde_json::Value>,
    /// Cluster only: a partial Service (`metadata`, `spec`) merged into the
    /// generated one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::any_object")]
    pub service: Option<serde_json::Value>,
}

/// How far one instance may be reused (`spec.instanceReuse`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceReuse {
    /// The most events one instance serves before it is replaced by a fresh
    /// one (1 to 1,000,000; 1 is a fresh instance per event).
    #[schemars(range(min = 1, max = MAX_REUSE))]
    pub max_events: u32,
}

/// The most events `spec.instanceReuse.maxEvents` may allow one instance.
pub const MAX_REUSE: u32 = 1_000_000;

/// Horizontal autoscaling of a function's pods (autoscaling/v2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Autoscaling {
    /// The fewest pods (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10000))]
    pub min_replicas: Option<i32>,
    /// The most pods.
    #[schemars(range(min = 1, max = 10000))]
    pub max_replicas: i32,
    /// Average CPU use, in percent of the request, to scale at (default 80).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub target_cpu_utilization: Option<i32>,
}

/// A timeout as written: kubeless wrote seconds as a string, YAML users
/// write numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Seconds {
    /// A number of seconds.
    Number(f64),
    /// Seconds as text, or a duration with a unit.
    Text(String),
}

/// One environment variable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    /// The variable's name.
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

/// How a function's own container runs on the image path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ImageSecurity {
    /// A verified non-root user, a read-only root file system, no
    /// capabilities, no privilege escalation.
    Restricted,
    /// The image's own user and file system; no privilege escalation.
    AsImage,
}

/// Where a function runs in a cluster (`spec.placement`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Hosting {
    /// The shared host pods of the function's namespace.
    Pool,
    /// A Deployment of its own.
    Dedicated,
}

impl Hosting {
    /// As written in the spec and status.
    pub fn as_str(self) -> &'static str {
        match self {
            Hosting::Pool => "Pool",
            Hosting::Dedicated => "Dedicated",
        }
    }
}

/// How `spec.function` is encoded (kubeless's content types).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ContentType {
    /// Plain text: WAT for `wasm`, source code for source runtimes.
    #[default]
    #[serde(rename = "text")]
    Text,
    /// Base64 of the bytes (a `.wasm` file, or source).
    #[serde(rename = "base64")]
    Base64,
    /// Base64 of a zip archive of several files (source runtimes).
    #[serde(rename = "base64+zip")]
    Base64Zip,
    /// `function` holds an http(s) URL to fetch; `checksum` is required.
    #[serde(rename = "url")]
    Url,
}

impl ContentType {
    fn is_text(&self) -> bool {
        *self == ContentType::Text
    }
}

/// A spec field that is missing, malformed or contradicts another.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidSpec {
    /// The field's path, such as `spec.timeout`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl InvalidSpec {
    pub(crate) fn new(field: &str, message: impl fmt::Display) -> Self {
        Self {
            field: field.to_owned(),
            message: message.to_string(),
        }
    }
}

fn default_runtime() -> String {
    WASM_RUNTIME.to_owned()
}

impl Default for FunctionSpec {
    /// A `wasm` function with no source yet and every limit at its default.
    fn default() -> Self {
        Self {
            runtime: default_runtime(),
            handler: None,
            image: None,
            image_security: None,
            placement: None,
            function: None,
            function_content_type: ContentType::Text,
            checksum: None,
            file: None,
            timeout: None,
            memory: None,
            env: Vec::new(),
            allowed_outbound_hosts: Vec::new(),
            instance_reuse: None,
            secrets: Vec::new(),
            replicas: None,
            autoscaling: None,
            port: None,
            resources: None,
            deployment: None,
            service: None,
        }
    }
}

impl Function {
    /// Checks everything that can be checked without reading the source:
    /// the API version and kind, the name, and every spec field.
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        if self.api_version != API_VERSION {
            return Err(InvalidSpec::new(
                "apiVersion",
                format!("`{}` is not supported; use {API_VERSION}", self.api_version),
            ));
        }
        if self.kind != "Function" {
            return Err(InvalidSpec::new(
                "kind",
                format!("expected Function, found `{}`", self.kind),
            ));
        }
        validate_resource_name(&self.metadata.name)
            .map_err(|m| InvalidSpec::new("metadata.name", m))?;
        self.spec.validate()
    }

    /// The function's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }
}

impl FunctionSpec {
    /// Checks the spec's fields and that they do not contradict each other.
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        match (&self.function, &self.file) {
            (Some(_), Some(_)) => {
                return Err(InvalidSpec::new(
                    "spec.file",
                    "spec.file and spec.function are mutually exclusive: give the source one way",
                ));
            }
            (None, None)
                if !(self.runtime == crate::runtimes::catalog::CUSTOM && self.image.is_some()) =>
            {
                return Err(InvalidSpec::new(
                    "spec.function",
                    "the function has no source: set spec.function (inline, base64 or url) or spec.file",
                ));
            }
            (None, Some(_)) if self.function_content_type != ContentType::Text => {
                return Err(InvalidSpec::new(
                    "spec.functionContentType",
                    "applies to spec.function; spec.file is read as it is",
                ));
            }
            _ => {}
        }
        if self.function_content_type == ContentType::Url && self.checksum.is_none() {
            return Err(InvalidSpec::new(
                "spec.checksum",
                "is required when functionContentType is url (sha256:<hex> of the content)",
            ));
        }
        if let Some(checksum) = &self.checksum {
            parse_checksum(checksum).map_err(|m| InvalidSpec::new("spec.checksum", m))?;
        }
        if self.runtime.trim().is_empty() {
            return Err(InvalidSpec::new("spec.runtime", "must not be empty"));
        }
        if let Some(image) = &self.image
            && (image.trim().is_empty() || image.chars().any(char::is_whitespace))
        {
            return Err(InvalidSpec::new(
                "spec.image",
                format!("`{image}` is not an image reference"),
            ));
        }
        self.timeout()?;
        self.memory_limit()?;
        self.outbound_policy()?;
        self.events_per_instance()?;
        for (i, var) in self.env.iter().enumerate() {
            if var.name.is_empty() || var.name.contains('=') {
                return Err(InvalidSpec::new(
                    &format!("spec.env[{i}].name"),
                    format!("`{}` is not a valid variable name", var.name),
                ));
            }
        }
        self.validate_cluster_fields()
    }

    /// Checks the fields that only a cluster uses.
    fn validate_cluster_fields(&self) -> Result<(), InvalidSpec> {
        for (i, secret) in self.secrets.iter().enumerate() {
            validate_object_name(secret)
                .map_err(|m| InvalidSpec::new(&format!("spec.secrets[{i}]"), m))?;
            if RESERVED_MOUNTS.contains(&secret.as_str()) {
                return Err(InvalidSpec::new(
                    &format!("spec.secrets[{i}]"),
                    format!(
                        "a Secret named `{secret}` would be mounted over the pod's own /{secret}; the names {} are reserved",
                        RESERVED_MOUNTS.join(", ")
                    ),
                ));
            }
        }
        if let Some(replicas) = self.replicas
            && replicas < 0
        {
            return Err(InvalidSpec::new("spec.replicas", "must not be negative"));
        }
        if let Some(port) = self.port
            && !(1..=65535).contains(&port)
        {
            return Err(InvalidSpec::new(
                "spec.port",
                format!("{port} is not a port (1-65535)"),
            ));
        }
        if let Some(scaling) = &self.autoscaling {
            let min = scaling.min_replicas.unwrap_or(1);
            if min < 1 {
                return Err(InvalidSpec::new(
                    "spec.autoscaling.minReplicas",
                    "must be at least 1",
                ));
            }
            if scaling.max_replicas < min {
                return Err(InvalidSpec::new(
                    "spec.autoscaling.maxReplicas",
                    format!("{} is below minReplicas ({min})", scaling.max_replicas),
                ));
            }
            if let Some(cpu) = scaling.target_cpu_utilization
                && !(1..=100).contains(&cpu)
            {
                return Err(InvalidSpec::new(
                    "spec.autoscaling.targetCpuUtilization",
                    format!("{cpu} is not a percentage (1-100)"),
                ));
            }
        }
        for (field, template) in [
            ("spec.deployment", &self.deployment),
            ("spec.service", &self.service),
        ] {
            if let Some(template) = template
                && !template.is_object()
            {
                return Err(InvalidSpec::new(
                    field,
                    "must be an object (metadata, spec)",
                ));
            }
        }
        Ok(())
    }

    /// The per-event time limit.
    pub fn timeout(&self) -> Result<Duration, InvalidSpec> {
        let parsed = match &self.timeout {
            None => return Ok(DEFAULT_TIMEOUT),
            Some(Seconds::Number(n)) => parse_duration(&n.to_string()),
            Some(Seconds::Text(text)) => parse_duration(text),
        };
        parsed.map_err(|m| InvalidSpec::new("spec.timeout", m))
    }

    /// What `allowedOutboundHosts` grants, parsed.
    pub fn outbound_policy(&self) -> Result<crate::outbound::OutboundPolicy, InvalidSpec> {
        crate::outbound::OutboundPolicy::parse(&self.allowed_outbound_hosts)
            .map_err(|(i, m)| InvalidSpec::new(&format!("spec.allowedOutboundHosts[{i}]"), m))
    }

    /// How many events one instance may serve: 1 (a fresh instance per
    /// event) unless `instanceReuse` says more.
    pub fn events_per_instance(&self) -> Result<u32, InvalidSpec> {
        match &self.instance_reuse {
            None => Ok(1),
            Some(reuse) if (1..=MAX_REUSE).contains(&reuse.max_events) => Ok(reuse.max_events),
            Some(reuse) => Err(InvalidSpec::new(
                "spec.instanceReuse.maxEvents",
                format!(
                    "{} is out of range: 1 (a fresh instance per event) to {MAX_REUSE}",
                    reuse.max_events
                ),
            )),
        }
    }

    /// The per-event memory limit in bytes.
    pub fn memory_limit(&self) -> Result<u64, InvalidSpec> {
        match &self.memory {
            None => Ok(DEFAULT_MEMORY),
            Some(text) => parse_memory(text).map_err(|m| InvalidSpec::new("spec.memory", m)),
        }
    }

    /// The expected SHA-256 of the source, when the spec gives one.
    pub fn expected_sha256(&self) -> Option<[u8; 32]> {
        self.checksum
            .as_deref()
            .and_then(|c| parse_checksum(c).ok())
    }
}

/// Parses `sha256:<64 hex digits>`.
fn parse_checksum(text: &str) -> Result<[u8; 32], String> {
    let hex_digits = text
        .strip_prefix("sha256:")
        .ok_or_else(|| format!("`{text}` must look like sha256:<64 hex digits>"))?;
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_digits, &mut digest)
        .map_err(|_| format!("`{text}` must look like sha256:<64 hex digits>"))?;
    Ok(digest)
}

/// The name of a Function or trigger: a DNS-1035 label (at most 63
/// lower-case letters, digits and `-`, starting with a letter), since it
/// names the function's Service and goes into label values. The CRDs hold
/// the same rule ([`NAME_RULE`]), so `kubectl apply` refuses what `up`
/// refuses.
pub(crate) fn validate_resource_name(name: &str) -> Result<(), String> {
    validate_name(name)?;
    if name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Ok(())
    } else {
        Err(format!(
            "`{name}` must start with a letter: it names the function's Service (a DNS-1035 label)"
        ))
    }
}

/// [`validate_resource_name`] as a CEL rule on `metadata.name`.
pub const NAME_RULE: &str =
    "size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')";

/// A Secret or other object name: a DNS subdomain (lower-case letters,
/// digits, `-` and `.`, at most 253 characters).
pub(crate) fn validate_object_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|part| validate_name(part).is_ok());
    if valid {
        Ok(())
    } else {
        Err(format!("`{name}` is not a valid object name"))
    }
}

/// A function name must be a DNS label: it becomes a URL path segment here
/// and an object name in a cluster.
pub(crate) fn validate_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a valid name: use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(spec: &str) -> Function {
        let yaml = format!(
            "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata:\n  name: hello\nspec:\n{spec}"
        );
        serde_saphyr::from_str(&yaml).expect("test manifest parses")
    }

    #[test]
    fn names_are_dns_1035_labels() {
        assert!(validate_resource_name("hello-2").is_ok());
        assert!(validate_resource_name("2hello").is_err_and(|e| e.contains("start with a letter")));
        assert!(validate_resource_name(&"a".repeat(64)).is_err());
        assert!(validate_resource_name("Hello").is_err());
        assert!(validate_resource_name("a-").is_err());
    }

    #[test]
    fn defaults_are_wasm_text_and_kubeless_limits() {
        let f = function("  file: hello.wasm\n");
        assert_eq!(f.validate(), Ok(()));
        assert_eq!(f.spec.runtime, WASM_RUNTIME);
        assert_eq!(f.spec.timeout(), Ok(DEFAULT_TIMEOUT));
        assert_eq!(f.spec.memory_limit(), Ok(DEFAULT_MEMORY));
    }

    #[test]
    fn kubeless_field_spellings_are_accepted() {
        let f = function(
            "  function: aGk=\n  function-content-type: base64\n  timeout: \"3\"\n  handler: hello.handler\n  runtime: wasm\n",
        );
        assert_eq!(f.spec.function_content_type, ContentType::Base64);
        assert_eq!(f.spec.timeout(), Ok(Duration::from_secs(3)));
        assert_eq!(f.validate(), Ok(()));
    }

    #[test]
    fn contradictory_or_missing_source_names_the_field() {
        let both = function("  file: a.wasm\n  function: \"(module)\"\n");
        assert_eq!(both.validate().expect_err("refused").field, "spec.file");
        let none = function("  runtime: wasm\n");
        assert_eq!(none.validate().expect_err("refused").field, "spec.function");
        let url =
            function("  function: https://example.invalid/a.wasm\n  functionContentType: url\n");
        assert_eq!(url.validate().expect_err("refused").field, "spec.checksum");
        let bad_sum = function("  file: a.wasm\n  checksum: md5:abc\n");
        assert_eq!(
            bad_sum.validate().expect_err("refused").field,
            "spec.checksum"
        );
    }

    #[test]
    fn bad_limits_and_names_are_refused() {
        assert_eq!(
            function("  file: a.wasm\n  timeout: forever\n")
                .validate()
                .expect_err("refused")
                .field,
            "spec.timeout"
        );
        assert_eq!(
            function("  file: a.wasm\n  memory: lots\n")
                .validate()
                .expect_err("refused")
                .field,
            "spec.memory"
        );
        let mut f = function("  file: a.wasm\n");
        f.metadata.name = "Hello_World".into();
        assert_eq!(f.validate().expect_err("refused").field, "metadata.name");
    }

    #[test]
    fn secrets_named_like_the_pods_own_folders_are_refused() {
        let err = function("  file: a.wasm\n  secrets: [api-keys, tmp]\n")
            .validate()
            .expect_err("refused");
        assert_eq!(err.field, "spec.secrets[1]");
        assert!(err.to_string().contains("/tmp"), "{err}");
        assert!(
            function("  file: a.wasm\n  secrets: [api-keys, tmpfiles]\n")
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn unknown_spec_fields_are_refused() {
        let yaml = "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: a}\nspec: {file: a.wasm, timout: 3}\n";
        let err = serde_saphyr::from_str::<Function>(yaml)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("unknown field `timout`"), "{err}");
    }
}
