//! The runtime catalog: every `spec.runtime` name wasmless knows, the wasm
//! runtime that runs it (if any) and the container image that runs it
//! otherwise. Built in from `catalog.yaml`; a cluster overrides it with a
//! ConfigMap, `up` with a file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Language;

/// The built-in catalog's text.
pub const BUILT_IN: &str = include_str!("catalog.yaml");
/// The ConfigMap, in the operator's namespace, that overrides the catalog.
pub const CONFIG_MAP: &str = "wasmless-runtimes";
/// Its key holding the catalog.
pub const CONFIG_MAP_KEY: &str = "runtimes.yaml";
/// The runtime whose image is the Function's own `spec.image`.
pub const CUSTOM: &str = "custom";
/// The port a fallback image serves on unless its entry says otherwise.
pub const DEFAULT_PORT: i32 = 9000;

/// Runtimes by id, in catalog order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// The runtimes.
    pub runtimes: Vec<RuntimeEntry>,
}

/// One runtime.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuntimeEntry {
    /// The name shown in status and describe, such as `python3.x`.
    pub id: String,
    /// The `spec.runtime` values it answers to; `*` stands for a number.
    #[serde(default)]
    pub names: Vec<String>,
    /// The wasm runtime that runs it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm: Option<Language>,
    /// The extension of a handler's module file (`py`), for a single
    /// source file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<String>,
    /// The fallback image; `None` when the Function must give `spec.image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The entry command in the image; the image's own when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// The port the image serves on.
    #[serde(default = "default_port")]
    pub port: i32,
    /// How dependencies are installed before the function starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<Install>,
    /// Extra environment of the fallback container.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// How `wasmless up` runs the fallback on this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<Local>,
}

fn default_port() -> i32 {
    DEFAULT_PORT
}

/// The dependency step of a runtime.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Install {
    /// The file that lists the dependencies (`requirements.txt`); the step
    /// runs only when the function has it.
    pub file: String,
    /// The command, run in the runtime's image with the function's files in
    /// `/kubeless`.
    pub command: Vec<String>,
    /// The command for a function on the wasm path, run the same way:
    /// pure packages only (wheels, no install scripts). Without it, a
    /// function on the wasm path installs nothing in a cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub wasm_command: Vec<String>,
    /// Packages known to need native code: a function depending on one runs
    /// on the image even when the runtime has a wasm path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub native_packages: Vec<String>,
}

/// How `wasmless up` runs a fallback runtime as a local process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Local {
    /// The built-in server: `python` or `nodejs`.
    pub server: LocalServer,
    /// The interpreter that runs it, looked up on `PATH`.
    pub interpreter: String,
}

/// The built-in fallback servers (`runtimes/images/*/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalServer {
    /// `runtimes/images/python/server.py`.
    Python,
    /// `runtimes/images/nodejs/server.js`.
    Nodejs,
}

impl LocalServer {
    /// The server's files (name, source); the first is the one to run. The
    /// second is the request (and response) the wasm runtime gives a
    /// function too, so that both paths give the same objects.
    pub fn files(self) -> [(&'static str, &'static str); 2] {
        match self {
            LocalServer::Python => [
                (
                    "server.py",
                    include_str!("../../runtimes/images/python/server.py"),
                ),
                (
                    "_wasmless_request.py",
                    include_str!("../../runtimes/python/_wasmless_request.py"),
                ),
            ],
            LocalServer::Nodejs => [
                (
                    "server.js",
                    include_str!("../../runtimes/images/nodejs/server.js"),
                ),
                (
                    "express.js",
                    include_str!("../../runtimes/js/src/express.js"),
                ),
            ],
        }
    }
}

impl Catalog {
    /// The built-in catalog.
    pub fn built_in() -> Self {
        Self::parse(BUILT_IN, "the built-in catalog").expect("the built-in catalog is valid")
    }

    /// The built-in catalog with `text` (a catalog in YAML) laid over it:
    /// an entry replaces the built-in one with the same id, or is added.
    pub fn with_override(text: &str, origin: &str) -> Result<Self, String> {
        let overrides = Self::parse(text, origin)?;
        let mut catalog = Self::built_in();
        for entry in overrides.runtimes {
            match catalog.runtimes.iter_mut().find(|e| e.id == entry.id) {
                Some(existing) => *existing = entry,
                None => catalog.runtimes.push(entry),
            }
        }
        catalog.check().map_err(|e| format!("{origin}: {e}"))?;
        Ok(catalog)
    }

    /// The built-in catalog, overridden by the file at `path` when given.
    pub fn load(path: Option<&Path>) -> Result<Self, String> {
        let Some(path) = path else {
            return Ok(Self::built_in());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("runtime catalog {}: {e}", path.display()))?;
        Self::with_override(&text, &path.display().to_string())
    }

    fn parse(text: &str, origin: &str) -> Result<Self, String> {
        let catalog: Catalog = serde_saphyr::from_str(text)
            .map_err(|e| format!("{origin}: not a runtime catalog: {e}"))?;
        catalog.check().map_err(|e| format!("{origin}: {e}"))?;
        Ok(catalog)
    }

    /// Checks what YAML cannot: ids are unique and plain, every runtime has
    /// a name, ports are ports.
    fn check(&self) -> Result<(), String> {
        let mut seen = std::collections::BTreeSet::new();
        for entry in &self.runtimes {
            let id = &entry.id;
            if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c == '*') {
                return Err(format!("runtime id `{id}` must be a plain name"));
            }
            if !seen.insert(id.as_str()) {
                return Err(format!("runtime `{id}` is listed twice"));
            }
            if entry.names.is_empty() && id != CUSTOM {
                return Err(format!(
                    "runtime `{id}` has no names (the spec.runtime values it answers to)"
                ));
            }
            if let Some(name) = entry.names.iter().find(|n| n.matches('*').count() > 1) {
                return Err(format!(
                    "runtime `{id}`: name `{name}` may hold one `*` at most"
                ));
            }
            if !(1..=65535).contains(&entry.port) {
                return Err(format!("runtime `{id}`: port {} is not a port", entry.port));
            }
            if let Some(install) = &entry.install
                && install.command.is_empty()
            {
                return Err(format!("runtime `{id}`: install.command is empty"));
            }
        }
        Ok(())
    }

    /// The runtime a `spec.runtime` value names: an id first, then the
    /// names in catalog order.
    pub fn find(&self, name: &str) -> Option<&RuntimeEntry> {
        let name = name.trim();
        self.runtimes.iter().find(|e| e.id == name).or_else(|| {
            self.runtimes
                .iter()
                .find(|e| e.names.iter().any(|pattern| matches(pattern, name)))
        })
    }

    /// The ids, for error messages.
    pub fn ids(&self) -> Vec<&str> {
        self.runtimes.iter().map(|e| e.id.as_str()).collect()
    }

    /// The catalog as YAML.
    pub fn to_yaml(&self) -> String {
        serde_saphyr::to_string(self).expect("a catalog serializes")
    }
}

/// Whether `name` fits `pattern`, where one `*` stands for a number (one
/// or more digits, with at most one dot inside: `3.12`).
fn matches(pattern: &str, name: &str) -> bool {
    let Some((before, after)) = pattern.split_once('*') else {
        return pattern == name;
    };
    let Some(middle) = name
        .strip_prefix(before)
        .and_then(|rest| rest.strip_suffix(after))
    else {
        return false;
    };
    let mut parts = middle.split('.');
    let number =
        |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    number(parts.next()) && parts.next().is_none_or(|p| number(Some(p))) && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_catalog_names_the_issue_runtimes() {
        let catalog = Catalog::built_in();
        for (name, id) in [
            ("python3.x", "python3.x"),
            ("python3.12", "python3.x"),
            ("python", "python3.x"),
            ("nodejs2x", "nodejs2x"),
            ("nodejs20", "nodejs2x"),
            ("javascript", "nodejs2x"),
            ("ruby3.x", "ruby3.x"),
            ("ruby3.3", "ruby3.x"),
            ("go1.x", "go1.x"),
            ("go1.22", "go1.x"),
            ("java17", "java17"),
            ("custom", "custom"),
        ] {
            assert_eq!(
                catalog.find(name).map(|e| e.id.as_str()),
                Some(id),
                "{name}"
            );
        }
        for name in [
            "python2.7",
            "nodejsx",
            "perl5",
            "python3.",
            "go1.x.y",
            "rust",
        ] {
            assert_eq!(catalog.find(name).map(|e| &e.id), None, "{name}");
        }
        assert_eq!(catalog.find("ruby3.x").and_then(|e| e.wasm), None);
        assert_eq!(
            catalog.find("python3.x").and_then(|e| e.wasm),
            Some(Language::Python)
        );
        assert_eq!(catalog.find("custom").and_then(|e| e.image.clone()), None);
    }

    #[test]
    fn an_override_replaces_by_id_and_adds() {
        let catalog = Catalog::with_override(
            "runtimes:\n\
             - id: python3.x\n  names: [python3.x]\n  image: registry.example/python:1\n\
             - id: php8\n  names: [php8, \"php8.*\"]\n  image: registry.example/php:8\n  port: 9100\n",
            "test",
        )
        .expect("valid");
        let python = catalog.find("python3.x").expect("kept");
        assert_eq!(python.image.as_deref(), Some("registry.example/python:1"));
        assert_eq!(python.wasm, None, "replaced whole, so no wasm path");
        assert!(
            catalog.find("python3.9").is_none(),
            "its names were replaced"
        );
        assert_eq!(catalog.find("php8.2").map(|e| e.port), Some(9100));
        assert_eq!(catalog.find("python3.x").map(|e| e.port), Some(9000));
        assert!(catalog.find("nodejs20").is_some(), "the others stay");
    }

    #[test]
    fn a_bad_override_is_refused_with_the_reason() {
        for (text, expected) in [
            ("runtimes: [{id: a, names: [a], port: 0}]", "port 0"),
            (
                "runtimes: [{id: a, names: [a]}, {id: a, names: [b]}]",
                "twice",
            ),
            ("runtimes: [{id: a}]", "no names"),
            ("runtimes: [{id: a, names: [a], imag: x}]", "unknown field"),
            (
                "runtimes: [{id: a, names: [a], wasm: ruby}]",
                "unknown variant",
            ),
            (
                "runtimes: [{id: a, names: [a], install: {file: f, command: []}}]",
                "empty",
            ),
            ("- not a catalog", "not a runtime catalog"),
        ] {
            let err = Catalog::with_override(text, "cm").expect_err(text);
            assert!(
                err.contains(expected) && err.starts_with("cm:"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn patterns_stand_for_version_numbers() {
        assert!(matches("python3.*", "python3.12"));
        assert!(matches("nodejs*", "nodejs20"));
        assert!(matches("java*", "java21"));
        assert!(matches("go1.*", "go1.22"));
        assert!(!matches("go1.*", "go1.x"));
        assert!(!matches("nodejs*", "nodejs"));
        assert!(matches("ruby*", "ruby3.3"));
        assert!(!matches("ruby*", "ruby3.3.1"));
    }
}
