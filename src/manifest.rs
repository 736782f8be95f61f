//! Reading Function manifests from YAML files and folders, and turning a
//! Function's spec into the bytes of its source.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::crd::{ContentType, Function};

/// A Function read from a manifest file.
#[derive(Clone, Debug)]
pub struct ManifestFunction {
    /// The function.
    pub function: Function,
    /// The file it came from.
    pub path: PathBuf,
}

/// A manifest document that could not be read, with where it is.
#[derive(Debug, thiserror::Error)]
#[error("{path}: document {document}: {message}", path = .path.display())]
pub struct ManifestError {
    /// The file.
    pub path: PathBuf,
    /// The document's number in the file, from 1.
    pub document: usize,
    /// What is wrong, naming the field.
    pub message: String,
}

/// Finds the manifest files among `paths`: files as given, and `*.yaml` /
/// `*.yml` files anywhere below folders.
pub fn manifest_files(paths: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            collect_yaml(path, &mut files)?;
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{}: no such file or folder", path.display()),
            ));
        }
    }
    let mut files: Vec<PathBuf> = files.iter().map(|f| absolute(f)).collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// The absolute form of `path` with `.` and `..` removed lexically, so that
/// paths compare equal to the ones a file watcher reports.
pub fn absolute(path: &Path) -> PathBuf {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn collect_yaml(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_yaml(&path, files)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            files.push(path);
        }
    }
    Ok(())
}

/// Reads every Function in one manifest file (several documents allowed).
/// Documents of other kinds are skipped; bad documents are reported each
/// with the file, the document number and the field.
pub fn read_manifest(path: &Path) -> (Vec<ManifestFunction>, Vec<ManifestError>) {
    let error = |document, message: String| ManifestError {
        path: path.to_owned(),
        document,
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) => return (Vec::new(), vec![error(0, format!("cannot read: {err}"))]),
    };
    let mut functions = Vec::new();
    let mut errors = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let number = index + 1;
        let value = match serde_yaml::Value::deserialize(document) {
            Ok(serde_yaml::Value::Null) => continue,
            Ok(value) => value,
            Err(err) => {
                errors.push(error(number, format!("not valid YAML: {err}")));
                continue;
            }
        };
        if value.get("kind").and_then(|k| k.as_str()) != Some("Function") {
            continue;
        }
        match parse_function(value) {
            Ok(function) => functions.push(ManifestFunction {
                function,
                path: path.to_owned(),
            }),
            Err(message) => errors.push(error(number, message)),
        }
    }
    (functions, errors)
}

use serde::Deserialize as _;

/// Parses and validates one Function document; the error names the field.
pub fn parse_function(value: serde_yaml::Value) -> Result<Function, String> {
    let function: Function = serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        if path == "." {
            inner
        } else {
            format!("{path}: {inner}")
        }
    })?;
    function.validate().map_err(|e| e.to_string())?;
    Ok(function)
}

/// Why a function's source could not be had.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// `spec.file` could not be read.
    #[error("spec.file: cannot read {path}: {source}", path = .path.display())]
    ReadFile {
        /// The resolved path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// `spec.function` is not valid base64.
    #[error("spec.function: not valid base64: {0}")]
    DecodeBase64(base64::DecodeError),
    /// The content type cannot be used here yet.
    #[error("spec.functionContentType: {0}")]
    Unsupported(String),
    /// The bytes do not match `spec.checksum`.
    #[error("spec.checksum: the source's sha256 is {actual}, not the one given")]
    ChecksumMismatch {
        /// The digest of what was read.
        actual: String,
    },
}

/// The source bytes of a function. `base_dir` is the manifest's folder, for
/// `spec.file`.
pub fn resolve_source(
    function: &Function,
    base_dir: Option<&Path>,
) -> Result<Vec<u8>, SourceError> {
    let spec = &function.spec;
    let bytes = match (&spec.file, &spec.function) {
        (Some(file), _) => {
            let path = base_dir
                .map(|d| d.join(file))
                .unwrap_or_else(|| PathBuf::from(file));
            std::fs::read(&path).map_err(|source| SourceError::ReadFile { path, source })?
        }
        (None, Some(inline)) => match spec.function_content_type {
            ContentType::Text => inline.clone().into_bytes(),
            ContentType::Base64 => base64::engine::general_purpose::STANDARD
                .decode(inline.trim())
                .map_err(SourceError::DecodeBase64)?,
            ContentType::Base64Zip => {
                return Err(SourceError::Unsupported(
                    "base64+zip is for source runtimes (Python, JavaScript), which this host does not run yet; give a wasm function as base64".into(),
                ));
            }
            ContentType::Url => {
                return Err(SourceError::Unsupported(
                    "fetching a function from a URL is not supported by this host yet; download it and use spec.file or base64".into(),
                ));
            }
        },
        (None, None) => Vec::new(),
    };
    if let Some(expected) = spec.expected_sha256() {
        let actual: [u8; 32] = Sha256::digest(&bytes).into();
        if actual != expected {
            return Err(SourceError::ChecksumMismatch {
                actual: format!("sha256:{}", hex::encode(actual)),
            });
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("temp file");
        path
    }

    #[test]
    fn several_documents_and_errors_name_file_document_and_field() {
        let dir = tempdir();
        let path = write(
            &dir,
            "fns.yaml",
            "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: a}\nspec: {function: '(module)'}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n---\n\
             apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: b}\nspec: {function: '(module)', timeout: [1]}\n---\n\
             apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: c}\nspec: {function: '(module)', memry: 1Mi}\n",
        );
        let (functions, errors) = read_manifest(&path);
        assert_eq!(functions.len(), 1);
        assert_eq!(functions[0].function.name(), "a");
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].document, 3);
        assert!(
            errors[0]
                .to_string()
                .contains("fns.yaml: document 3: spec.timeout"),
            "{}",
            errors[0]
        );
        assert_eq!(errors[1].document, 4);
        assert!(
            errors[1]
                .to_string()
                .contains("document 4: spec.memry: unknown field `memry`"),
            "{}",
            errors[1]
        );
    }

    #[test]
    fn checksum_is_verified() {
        let mut f = parse_function(
            serde_yaml::from_str("apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: a}\nspec: {function: aGk=, functionContentType: base64}\n")
                .expect("yaml"),
        )
        .expect("valid");
        assert_eq!(resolve_source(&f, None).expect("decodes"), b"hi");
        let good = format!("sha256:{}", hex::encode(Sha256::digest(b"hi")));
        f.spec.checksum = Some(good);
        assert!(resolve_source(&f, None).is_ok());
        f.spec.checksum = Some(format!("sha256:{}", "0".repeat(64)));
        assert!(matches!(
            resolve_source(&f, None),
            Err(SourceError::ChecksumMismatch { .. })
        ));
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wasmless-manifest-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
