//! Which path a Function takes, decided here and nowhere else: wasm when the
//! runtime and its dependencies allow it, the runtime's container image
//! otherwise. The operator reports the decision in the Function's status,
//! `up` in its listing, and `wasmless function describe` explains it.

use serde::{Deserialize, Serialize};

use super::Language;
use super::catalog::{CUSTOM, Catalog, RuntimeEntry};

/// The `spec.runtime` of a Function whose source is a wasm module.
pub const WASM: &str = crate::crd::WASM_RUNTIME;

/// How a Function runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Path {
    /// In the wasmless host: its own module, or a wasm language runtime.
    Wasm,
    /// On its runtime's container image (the fallback).
    Image,
}

impl Path {
    /// `wasm` or `image`.
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Wasm => "wasm",
            Path::Image => "image",
        }
    }
}

/// What is known of a function's dependencies when deciding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dependencies {
    /// None, or none that need native code as far as is known.
    Pure,
    /// The package named needs native code; `evidence` says how that is
    /// known (an installed file, or the catalog's list).
    Native {
        /// The package.
        package: String,
        /// A native file it installed, or where it is listed.
        evidence: String,
    },
}

/// The decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Wasm or image.
    pub path: Path,
    /// The catalog id (`python3.x`), or `wasm` for a module.
    pub runtime: String,
    /// The wasm language runtime, on the wasm path for source.
    pub language: Option<Language>,
    /// The catalog entry, on the image path.
    pub entry: Option<RuntimeEntry>,
    /// The image, on the image path.
    pub image: Option<String>,
    /// CamelCase, for status: `WasmModule`, `WasmRuntime`, `ImageRequested`,
    /// `NoWasmRuntime` or `NativeDependencies`.
    pub reason: &'static str,
    /// The decision in a sentence, for `describe`.
    pub message: String,
}

/// Why a Function has no path at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Unplaceable {
    /// `UnsupportedRuntime` or `ImageRequired`.
    pub reason: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

/// Decides the path of a Function with `spec.runtime` = `runtime` and
/// `spec.image` = `image`, knowing `dependencies`.
pub fn place(
    catalog: &Catalog,
    runtime: &str,
    image: Option<&str>,
    dependencies: &Dependencies,
) -> Result<Placement, Unplaceable> {
    let runtime = runtime.trim();
    let image = image.map(str::trim).filter(|i| !i.is_empty());
    if runtime == WASM {
        if image.is_some() {
            return Err(Unplaceable {
                reason: "InvalidSpec",
                message: "spec.image: a wasm module runs in the wasmless host; spec.image is for container-image runtimes".into(),
            });
        }
        return Ok(Placement {
            path: Path::Wasm,
            runtime: WASM.to_owned(),
            language: None,
            entry: None,
            image: None,
            reason: "WasmModule",
            message: "the function is a wasm module; it runs in the wasmless host".into(),
        });
    }
    let entry = catalog.find(runtime).ok_or_else(|| Unplaceable {
        reason: "UnsupportedRuntime",
        message: if runtime.starts_with("python2") {
            format!("spec.runtime: `{runtime}`: Python 2 is not supported; use python3.x")
        } else {
            format!(
                "spec.runtime: `{runtime}` is not in the runtime catalog; it has: wasm, {}",
                catalog.ids().join(", ")
            )
        },
    })?;
    let id = entry.id.clone();
    let image_path = |image: String, reason: &'static str, message: String| Placement {
        path: Path::Image,
        runtime: id.clone(),
        language: None,
        entry: Some(entry.clone()),
        image: Some(image),
        reason,
        message,
    };
    if let Some(image) = image {
        return Ok(image_path(
            image.to_owned(),
            "ImageRequested",
            format!("spec.image is set: the function runs on {image} with the {id} contract"),
        ));
    }
    let Some(default_image) = entry.image.clone() else {
        return Err(Unplaceable {
            reason: "ImageRequired",
            message: if id == CUSTOM {
                "spec.image: the custom runtime runs the image you give; set spec.image".to_owned()
            } else {
                format!("spec.image: runtime {id} has no image in the catalog; set spec.image")
            },
        });
    };
    match (entry.wasm, dependencies) {
        (None, _) => Ok(image_path(
            default_image.clone(),
            "NoWasmRuntime",
            format!("{id} has no wasm runtime yet: the function runs on {default_image}"),
        )),
        (Some(_), Dependencies::Native { package, evidence }) => Ok(image_path(
            default_image.clone(),
            "NativeDependencies",
            format!(
                "package `{package}` needs native code ({evidence}), which wasm cannot run: the function runs on {default_image}"
            ),
        )),
        (Some(language), Dependencies::Pure) => Ok(Placement {
            path: Path::Wasm,
            runtime: id.clone(),
            language: Some(language),
            entry: None,
            image: None,
            reason: "WasmRuntime",
            message: format!(
                "{id} runs on the wasm {} runtime in the wasmless host",
                language.title()
            ),
        }),
    }
}

/// The first dependency the catalog lists as native, by the names in the
/// function's dependency file (`requirements.txt` or `package.json`).
pub fn listed_native(entry: &RuntimeEntry, dependency_file: &str) -> Dependencies {
    let Some(install) = &entry.install else {
        return Dependencies::Pure;
    };
    let names = dependency_names(&install.file, dependency_file);
    let normal = |s: &str| s.trim().to_ascii_lowercase().replace('_', "-");
    for name in names {
        if install
            .native_packages
            .iter()
            .any(|native| normal(native) == normal(&name))
        {
            return Dependencies::Native {
                evidence: format!(
                    "listed in the nativePackages of runtime {} in the catalog",
                    entry.id
                ),
                package: name,
            };
        }
    }
    Dependencies::Pure
}

/// The package names a dependency file asks for.
fn dependency_names(file: &str, text: &str) -> Vec<String> {
    if file.ends_with(".json") {
        let Ok(package) = serde_json::from_str::<serde_json::Value>(text) else {
            return Vec::new();
        };
        return package
            .get("dependencies")
            .and_then(|d| d.as_object())
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default();
    }
    // requirements.txt: a name at the start of each requirement line.
    text.lines()
        .map(|line| line.split('#').next().unwrap_or_default().trim())
        .filter(|line| !line.is_empty() && !line.starts_with('-'))
        .filter_map(|line| {
            let end = line
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
                .unwrap_or(line.len());
            let name = &line[..end];
            (!name.is_empty() && !name.ends_with(".whl")).then(|| name.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(
        runtime: &str,
        image: Option<&str>,
        deps: &Dependencies,
    ) -> Result<Placement, Unplaceable> {
        place(&Catalog::built_in(), runtime, image, deps)
    }

    #[test]
    fn each_reason_for_each_path() {
        let pure = Dependencies::Pure;
        let native = Dependencies::Native {
            package: "numpy".into(),
            evidence: "numpy/core/x.so".into(),
        };
        let cases = [
            ("wasm", None, &pure, Path::Wasm, "WasmModule"),
            ("python3.12", None, &pure, Path::Wasm, "WasmRuntime"),
            ("nodejs20", None, &pure, Path::Wasm, "WasmRuntime"),
            (
                "python3.x",
                None,
                &native,
                Path::Image,
                "NativeDependencies",
            ),
            (
                "python3.x",
                Some("me/py:1"),
                &pure,
                Path::Image,
                "ImageRequested",
            ),
            ("ruby3.x", None, &pure, Path::Image, "NoWasmRuntime"),
            ("go1.x", None, &pure, Path::Image, "NoWasmRuntime"),
            ("java17", None, &pure, Path::Image, "NoWasmRuntime"),
            (
                "custom",
                Some("me/fn:2"),
                &pure,
                Path::Image,
                "ImageRequested",
            ),
        ];
        for (runtime, image, deps, path, reason) in cases {
            let placement = decide(runtime, image, deps).expect(runtime);
            assert_eq!(
                (placement.path, placement.reason),
                (path, reason),
                "{runtime}"
            );
            assert_eq!(placement.image.is_some(), path == Path::Image, "{runtime}");
        }
        let native = decide("python3.x", None, &native).expect("placed");
        assert!(native.message.contains("numpy") && native.message.contains("runtime-python"));
        assert_eq!(
            decide("python3", None, &pure).map(|p| p.runtime),
            Ok("python3.x".into())
        );
    }

    #[test]
    fn what_has_no_path_is_refused_with_the_reason() {
        let pure = Dependencies::Pure;
        let unknown = decide("perl5", None, &pure).expect_err("refused");
        assert_eq!(unknown.reason, "UnsupportedRuntime");
        assert!(
            unknown.message.contains("ruby3.x, go1.x, java17, custom"),
            "{}",
            unknown.message
        );
        assert!(
            decide("python2.7", None, &pure)
                .expect_err("refused")
                .message
                .contains("Python 2")
        );
        assert_eq!(
            decide("custom", None, &pure).expect_err("refused").reason,
            "ImageRequired"
        );
        assert_eq!(
            decide("wasm", Some("x"), &pure)
                .expect_err("refused")
                .reason,
            "InvalidSpec"
        );
    }

    #[test]
    fn native_packages_are_found_by_name_in_dependency_files() {
        let catalog = Catalog::built_in();
        let python = catalog.find("python3.x").expect("built in");
        let requirements = "# tools\nrequests>=2\nNumPy==1.26 ; python_version > '3'\n";
        assert!(matches!(
            listed_native(python, requirements),
            Dependencies::Native { package, .. } if package == "NumPy"
        ));
        assert_eq!(
            listed_native(python, "requests\n./local.whl\n-r other.txt\n"),
            Dependencies::Pure
        );
        let node = catalog.find("nodejs").expect("built in");
        assert!(matches!(
            listed_native(node, r#"{"dependencies": {"left-pad": "1", "sharp": "^0.33"}}"#),
            Dependencies::Native { package, .. } if package == "sharp"
        ));
        assert_eq!(listed_native(node, "not json"), Dependencies::Pure);
    }
}
