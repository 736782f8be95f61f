//! The `Function` resource: a function's source, runtime and limits.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::quantity::{parse_duration, parse_memory};

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

/// The desired state of a function.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    pub timeout: Option<Seconds>,
    /// Per-event memory limit as a Kubernetes quantity (`64Mi`, `1Gi`).
    /// Default 128Mi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// Environment variables the function may read. A function sees no other
    /// environment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvVar {
    /// The variable's name.
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

/// How `spec.function` is encoded (kubeless's content types).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
        validate_name(&self.metadata.name).map_err(|m| InvalidSpec::new("metadata.name", m))?;
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
            (None, None) => {
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
        self.timeout()?;
        self.memory_limit()?;
        for (i, var) in self.env.iter().enumerate() {
            if var.name.is_empty() || var.name.contains('=') {
                return Err(InvalidSpec::new(
                    &format!("spec.env[{i}].name"),
                    format!("`{}` is not a valid variable name", var.name),
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
        serde_yaml::from_str(&yaml).expect("test manifest parses")
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
    fn unknown_spec_fields_are_refused() {
        let yaml = "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: a}\nspec: {file: a.wasm, timout: 3}\n";
        let err = serde_yaml::from_str::<Function>(yaml)
            .expect_err("refused")
            .to_string();
        assert!(err.contains("unknown field `timout`"), "{err}");
    }
}
