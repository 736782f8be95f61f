//! Reading manifests (Functions and triggers) from YAML files and folders,
//! and turning a Function's spec into the bytes of its source.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::crd::{
    ContentType, CronTrigger, Function, HttpTriggerResource, HttpTriggerSpec, KafkaTrigger,
};

/// A Function read from a manifest file.
#[derive(Clone, Debug)]
pub struct ManifestFunction {
    /// The function.
    pub function: Function,
    /// The file it came from.
    pub path: PathBuf,
}

/// A trigger read from a manifest file.
#[derive(Clone, Debug, PartialEq)]
pub enum Trigger {
    /// A `CronTrigger`.
    Cron(CronTrigger),
    /// A `KafkaTrigger`.
    Kafka(KafkaTrigger),
}

impl Trigger {
    /// `CronTrigger/NAME` or `KafkaTrigger/NAME`.
    pub fn key(&self) -> String {
        match self {
            Trigger::Cron(t) => format!("CronTrigger/{}", t.name()),
            Trigger::Kafka(t) => format!("KafkaTrigger/{}", t.name()),
        }
    }
}

/// Everything wasmless runs that one manifest file declares.
#[derive(Clone, Debug, Default)]
pub struct Manifest {
    /// Its functions.
    pub functions: Vec<ManifestFunction>,
    /// Its cron and Kafka triggers.
    pub triggers: Vec<Trigger>,
    /// Its HTTPTriggers, checked (`up` serves every function at `/NAME/`
    /// already; on a cluster they are Ingresses and routes).
    pub http_triggers: Vec<HttpTriggerResource>,
    /// What was ignored or changed in converting kubeless objects, one
    /// line each, naming the document and field.
    pub notes: Vec<String>,
}

/// A manifest document that could not be read, with where it is.
#[derive(Debug, thiserror::Error)]
#[error("{path}: document {document}: {message}", path = .path.display())]
pub struct ManifestError {
    /// The file.
    pub path: PathBuf,
    /// The document's number in the file, from 1 (empty documents are not
    /// counted).
    pub document: usize,
    /// Where in the file the YAML stops making sense (line, column, from 1),
    /// for syntax errors; type errors name the field in `message` instead.
    pub position: Option<(u64, u64)>,
    /// What is wrong, naming the field or the position.
    pub message: String,
}

/// Finds the manifest files among `paths`: files as given, and `*.yaml` /
/// `*.yml` files anywhere below folders, leaving out hidden ones (names
/// starting with `.`). That also leaves out the `..data` and `..TIMESTAMP`
/// folders behind the files of a ConfigMap volume, which a kubelet projects
/// as links into them: each file is read once, by its own name.
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
        if is_hidden(&path) {
            continue;
        }
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

/// Whether a file's name starts with a dot.
pub fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Reads every Function, CronTrigger and KafkaTrigger in one manifest file
/// (several documents allowed). Documents of other kinds are skipped; bad
/// documents are reported each with the file, the document number and the
/// field. A YAML syntax error ends the file: the documents before it are
/// kept, and the error gives its line and column.
pub fn read_manifest(path: &Path) -> (Manifest, Vec<ManifestError>) {
    let error = |document, message: String| ManifestError {
        path: path.to_owned(),
        document,
        position: None,
        message,
    };
    match std::fs::read(path) {
        Ok(text) => parse_manifest(&text, path),
        Err(err) => (
            Manifest::default(),
            vec![error(0, format!("cannot read: {err}"))],
        ),
    }
}

/// Reads the documents of a manifest's text, as [`read_manifest`] does;
/// `path` names it in errors.
pub fn parse_manifest(text: &[u8], path: &Path) -> (Manifest, Vec<ManifestError>) {
    let error = |document, message: String| ManifestError {
        path: path.to_owned(),
        document,
        position: None,
        message,
    };
    let mut manifest = Manifest::default();
    let mut errors = Vec::new();
    let mut read = |number: usize, value: serde_json::Value, errors: &mut Vec<ManifestError>| {
        let read = if crate::kubeless::is_kubeless(&value) {
            read_kubeless(path, value, number, &mut manifest)
        } else {
            read_document(path, value, &mut manifest)
        };
        if let Err(message) = read {
            errors.push(error(number, message));
        }
    };
    if let Some(documents) = json_documents(text) {
        for (index, value) in documents.into_iter().enumerate() {
            read(index + 1, value, &mut errors);
        }
        return (manifest, errors);
    }
    // Documents as JSON values, as Kubernetes reads manifests; empty ones
    // are skipped. The parser's budget bounds the work and memory one file
    // can cost (alias bombs, deep nesting).
    let options = serde_saphyr::options! { with_snippet: false };
    let mut reader = std::io::Cursor::new(text);
    let documents = serde_saphyr::read_with_options::<_, serde_json::Value>(&mut reader, options);
    for (index, document) in documents.enumerate() {
        let number = index + 1;
        match document {
            Ok(value) => read(number, value, &mut errors),
            Err(err) => {
                errors.push(ManifestError {
                    position: err.location().map(|at| (at.line(), at.column())),
                    ..error(number, format!("not valid YAML: {err}"))
                });
                // The parser cannot find its way back after a syntax error,
                // so what follows in the file is not read.
                break;
            }
        }
    }
    (manifest, errors)
}

/// The documents of a manifest that is JSON throughout: one object, or
/// several separated by `---` lines (as the CLI sends them), empty ones
/// skipped. `None` when any document is not a JSON object: the YAML parser
/// reads the manifest then, and reports its errors. JSON is YAML too; this
/// only spares a JSON manifest the YAML parser's character-by-character
/// scan, which took most of a deploy's time for a module sent inline.
fn json_documents(text: &[u8]) -> Option<Vec<serde_json::Value>> {
    let mut documents = Vec::new();
    let mut add = |part: &[u8]| -> Option<()> {
        let part = part.trim_ascii();
        if part.is_empty() {
            return Some(());
        }
        if part[0] != b'{' {
            return None;
        }
        documents.push(serde_json::from_slice(part).ok()?);
        Some(())
    };
    let mut start = 0;
    let mut at = 0;
    while at < text.len() {
        let end = text[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| at + i);
        if text[at..end].trim_ascii_end() == b"---" {
            add(&text[start..at])?;
            start = (end + 1).min(text.len());
        }
        at = end + 1;
    }
    add(&text[start..])?;
    Some(documents)
}

/// Adds the wasmless objects made from one of kubeless's, with notes on
/// what was ignored or changed.
fn read_kubeless(
    path: &Path,
    value: serde_json::Value,
    number: usize,
    manifest: &mut Manifest,
) -> Result<(), String> {
    let converted = crate::kubeless::convert(value, &crate::runtimes::Catalog::built_in())?;
    for note in converted.notes {
        manifest
            .notes
            .push(format!("{}: document {number}: {note}", path.display()));
    }
    for document in converted.documents {
        read_document(path, document, manifest)?;
    }
    Ok(())
}

/// Adds one document to `manifest`, or says why it cannot be used.
fn read_document(
    path: &Path,
    value: serde_json::Value,
    manifest: &mut Manifest,
) -> Result<(), String> {
    let Some(object) = value.as_object() else {
        return Err(format!(
            "not a Kubernetes object: the document is {}, not a mapping with apiVersion and kind",
            json_kind(&value)
        ));
    };
    match object.get("kind").and_then(|k| k.as_str()) {
        Some("Function") => parse_function(value).map(|function| {
            manifest.functions.push(ManifestFunction {
                function,
                path: path.to_owned(),
            })
        }),
        Some("CronTrigger") => parse_resource(value, CronTrigger::validate)
            .map(|t| manifest.triggers.push(Trigger::Cron(t))),
        Some("KafkaTrigger") => parse_resource(value, KafkaTrigger::validate)
            .map(|t| manifest.triggers.push(Trigger::Kafka(t))),
        // A cluster resource: `up` serves every function at /<name>/
        // already, so it is only checked, to report mistakes early.
        Some("HTTPTrigger") => {
            check_http_trigger(value.clone())?;
            parse_resource(value, |_: &HttpTriggerResource| Ok::<(), String>(()))
                .map(|t| manifest.http_triggers.push(t))
        }
        Some(_) => Ok(()),
        None => Err("kind: missing (a Kubernetes object names its kind)".to_owned()),
    }
}

/// What a JSON value is, for messages.
fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "a mapping",
    }
}

/// Parses and validates one Function document; the error names the field.
pub fn parse_function(value: serde_json::Value) -> Result<Function, String> {
    parse_resource(value, Function::validate)
}

/// Checks an HTTPTrigger document's spec; the error names the field.
fn check_http_trigger(mut value: serde_json::Value) -> Result<(), String> {
    let spec = value
        .get_mut("spec")
        .map(std::mem::take)
        .ok_or_else(|| "spec: missing".to_owned())?;
    let spec: HttpTriggerSpec = serde_path_to_error::deserialize(spec).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path == "." {
            format!("spec: {inner}")
        } else {
            format!("spec.{path}: {inner}")
        }
    })?;
    spec.validate().map_err(|e| e.to_string())
}

/// Parses one document into a resource and validates it; the error names
/// the field.
fn parse_resource<T, E>(
    value: serde_json::Value,
    validate: impl FnOnce(&T) -> Result<(), E>,
) -> Result<T, String>
where
    T: serde::de::DeserializeOwned,
    E: std::fmt::Display,
{
    let resource: T = serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        if path == "." {
            inner
        } else {
            format!("{path}: {inner}")
        }
    })?;
    validate(&resource).map_err(|e| e.to_string())?;
    Ok(resource)
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
    /// Fetching `spec.function` as a URL failed.
    #[error("spec.function: fetching {url} failed: {message}")]
    Fetch {
        /// The URL.
        url: String,
        /// Why.
        message: String,
    },
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
/// `spec.file`; `given` is the inline source's bytes when the caller has
/// them already: what [`fetch_url`] got for a `url` source (required for
/// one), or the decoded bytes of a `base64` one.
pub fn resolve_source(
    function: &Function,
    base_dir: Option<&Path>,
    given: Option<Vec<u8>>,
) -> Result<Vec<u8>, SourceError> {
    let spec = &function.spec;
    let bytes = match (&spec.file, &spec.function, given) {
        (Some(file), _, _) => {
            let path = base_dir
                .map(|d| d.join(file))
                .unwrap_or_else(|| PathBuf::from(file));
            std::fs::read(&path).map_err(|source| SourceError::ReadFile { path, source })?
        }
        // Fetched from its URL, or decoded by the caller already.
        (None, Some(_), Some(given)) => given,
        (None, Some(inline), None) => match spec.function_content_type {
            ContentType::Text => inline.clone().into_bytes(),
            ContentType::Base64 | ContentType::Base64Zip => {
                base64::engine::general_purpose::STANDARD
                    .decode(inline.trim())
                    .map_err(SourceError::DecodeBase64)?
            }
            ContentType::Url => {
                return Err(SourceError::Fetch {
                    url: inline.clone(),
                    message: "the source was not fetched".into(),
                });
            }
        },
        (None, None, _) => Vec::new(),
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

/// The largest source fetched from a URL.
const MAX_FETCH_BYTES: usize = 256 << 20;
/// How long a fetch may take, redirects included.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// How many redirects a fetch follows.
const MAX_REDIRECTS: usize = 5;

/// Fetches a function's source from an http(s) URL, following redirects.
/// The caller checks the result against `spec.checksum`.
pub async fn fetch_url(url: &str) -> Result<Vec<u8>, SourceError> {
    let fail = |message: String| SourceError::Fetch {
        url: url.to_owned(),
        message,
    };
    tokio::time::timeout(FETCH_TIMEOUT, fetch_following_redirects(url))
        .await
        .map_err(|_| fail(format!("no answer within {FETCH_TIMEOUT:?}")))?
        .map_err(fail)
}

async fn fetch_following_redirects(url: &str) -> Result<Vec<u8>, String> {
    use http_body_util::{BodyExt, Empty, Limited};
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .build();
    let client: hyper_util::client::legacy::Client<_, Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector);
    let mut uri: http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    for _ in 0..=MAX_REDIRECTS {
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            return Err("only http and https URLs are supported".into());
        }
        let response = client
            .get(uri.clone())
            .await
            .map_err(|e| format!("{e:#}"))?;
        let status = response.status();
        if status.is_redirection() {
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .ok_or_else(|| format!("{status} without a Location"))?;
            uri = resolve_location(&uri, location)?;
            continue;
        }
        if !status.is_success() {
            return Err(format!("the server answered {status}"));
        }
        let body = Limited::new(response.into_body(), MAX_FETCH_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the body: {e}"))?;
        return Ok(body.to_bytes().to_vec());
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}

/// A redirect's Location, absolute or relative to the current URL.
fn resolve_location(current: &http::Uri, location: &str) -> Result<http::Uri, String> {
    let parsed: http::Uri = location
        .parse()
        .map_err(|e| format!("bad redirect {location}: {e}"))?;
    if parsed.scheme().is_some() {
        return Ok(parsed);
    }
    let mut parts = current.clone().into_parts();
    parts.path_and_query = parsed.path_and_query().cloned();
    http::Uri::from_parts(parts).map_err(|e| format!("bad redirect {location}: {e}"))
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
             apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: c}\nspec: {function: '(module)', memry: 1Mi}\n---\n\
             apiVersion: wasmless.io/v1alpha1\nkind: CronTrigger\nmetadata: {name: tick}\nspec: {function: a, schedule: '* * * * *'}\n---\n\
             apiVersion: wasmless.io/v1alpha1\nkind: CronTrigger\nmetadata: {name: bad}\nspec: {function: a, schedule: 'often'}\n---\n\
             apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata: {name: orders}\nspec: {brokers: 'k:9092', topic: orders, function: a}\n",
        );
        let (manifest, errors) = read_manifest(&path);
        let functions = manifest.functions;
        let keys: Vec<String> = manifest.triggers.iter().map(Trigger::key).collect();
        assert_eq!(keys, ["CronTrigger/tick", "KafkaTrigger/orders"]);
        assert_eq!(functions.len(), 1);
        assert_eq!(functions[0].function.name(), "a");
        assert_eq!(errors.len(), 3);
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
        assert!(
            errors[2]
                .to_string()
                .contains("document 6: spec.schedule: `often`"),
            "{}",
            errors[2]
        );
    }

    #[test]
    fn json_documents_read_as_their_yaml_and_anything_else_goes_to_the_yaml_parser() {
        let yaml = [
            "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: a}\nspec: {function: '(module)'}\n",
            "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: b}\nspec: {function: '(module)', timeout: [1]}\n",
            "apiVersion: wasmless.io/v1alpha1\nkind: CronTrigger\nmetadata: {name: tick}\nspec: {function: a, schedule: '* * * * *'}\n",
        ];
        // As the CLI sends objects: compact JSON, `---` between them.
        let json: Vec<String> = yaml
            .iter()
            .map(|doc| {
                let value: serde_json::Value = serde_saphyr::from_str(doc).expect("yaml");
                serde_json::to_string(&value).expect("json")
            })
            .collect();
        let sent = format!("\n{}\n---\n\n---\r\n{}\n---\n{}", json[0], json[1], json[2]);
        let found = json_documents(sent.as_bytes()).expect("all JSON");
        assert_eq!(found.len(), 3);
        let (manifest, errors) = parse_manifest(sent.as_bytes(), Path::new("request"));
        let (expected, expected_errors) =
            parse_manifest(yaml.join("---\n").as_bytes(), Path::new("request"));
        let names = |m: &Manifest| -> Vec<String> {
            m.functions
                .iter()
                .map(|f| f.function.name().to_owned())
                .chain(m.triggers.iter().map(Trigger::key))
                .collect()
        };
        assert_eq!(names(&manifest), ["a", "CronTrigger/tick"]);
        assert_eq!(names(&manifest), names(&expected));
        let texts =
            |e: &[ManifestError]| -> Vec<String> { e.iter().map(|e| e.to_string()).collect() };
        assert_eq!(texts(&errors), texts(&expected_errors));
        assert!(
            texts(&errors)[0].contains("document 2: spec.timeout"),
            "{errors:?}"
        );

        // YAML, a mix, a JSON document after a `---` on its own line's
        // text, and broken JSON are the YAML parser's.
        for text in [
            yaml[0].to_owned(),
            format!("{}\n---\n{}", json[0], yaml[2]),
            format!("--- {}", json[0]),
            format!("{}\n---\n{{\"kind\": ", json[0]),
        ] {
            assert!(json_documents(text.as_bytes()).is_none(), "{text}");
        }
        let (_, errors) = parse_manifest(
            format!("{}\n---\n{{\"kind\": ", json[0]).as_bytes(),
            Path::new("request"),
        );
        assert!(
            errors[0].to_string().contains("not valid YAML"),
            "{errors:?}"
        );
    }

    /// Common YAML typos, each after a valid document: (text, line of the
    /// error).
    pub(crate) const SYNTAX_ERRORS: [(&str, u64); 4] = [
        // An unquoted colon inside a value.
        ("x: a: b\n", 1),
        // A tab in the indentation.
        ("spec:\n\tfunction: x\n", 2),
        // A flow mapping never closed.
        ("metadata: {name: a\nspec: {}\n", 2),
        // An alias to an anchor that does not exist.
        ("spec: *nowhere\n", 1),
    ];

    #[test]
    fn a_syntax_error_ends_the_file_with_its_line_and_column() {
        let dir = tempdir();
        let good = "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: a}\nspec: {function: '(module)'}\n";
        for (i, (bad, line)) in SYNTAX_ERRORS.into_iter().enumerate() {
            let text = format!(
                "{good}---\n{bad}---\n{}",
                good.replace("name: a", "name: b")
            );
            let path = write(&dir, &format!("bad-{i}.yaml"), &text);
            let (manifest, errors) = read_manifest(&path);
            let names: Vec<&str> = manifest
                .functions
                .iter()
                .map(|f| f.function.name())
                .collect();
            assert_eq!(
                names,
                ["a"],
                "the document before the error is kept: {bad:?}"
            );
            assert_eq!(errors.len(), 1, "{bad:?}: {errors:?}");
            let error = &errors[0];
            assert_eq!(error.document, 2, "{bad:?}");
            // The file's line: four of the good document and a `---`.
            let (at_line, column) = error.position.expect("a syntax error has a position");
            assert_eq!(at_line, line + 5, "{bad:?}: {error}");
            assert!(column >= 1, "{bad:?}: {error}");
            let message = error.to_string();
            assert!(
                message.contains(&format!("bad-{i}.yaml: document 2: not valid YAML: "))
                    && message.contains(&format!("line {at_line}, column {column}")),
                "{message}"
            );
        }
    }

    #[test]
    fn a_document_that_is_not_an_object_is_an_error_and_others_are_kept() {
        let dir = tempdir();
        let path = write(
            &dir,
            "scalar.yaml",
            "just a sentence\n---\n- a list\n---\nmetadata: {name: nokind}\n---\n\n---\napiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: a}\nspec: {function: '(module)'}\n",
        );
        let (manifest, errors) = read_manifest(&path);
        assert_eq!(manifest.functions.len(), 1);
        let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 3, "{messages:?}");
        assert!(
            messages[0].contains("document 1: not a Kubernetes object: the document is a string"),
            "{messages:?}"
        );
        assert!(
            messages[1].contains("document 2: not a Kubernetes object: the document is a list"),
            "{messages:?}"
        );
        assert!(
            messages[2].contains("document 3: kind: missing"),
            "{messages:?}"
        );
    }

    #[test]
    fn an_alias_bomb_is_refused_not_expanded() {
        let dir = tempdir();
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..12 {
            let prev = (b'a' + level - 1) as char;
            let name = (b'a' + level) as char;
            text += &format!(
                "{name}: &{name} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
            );
        }
        let path = write(&dir, "bomb.yaml", &text);
        let (manifest, errors) = read_manifest(&path);
        assert!(manifest.functions.is_empty());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].message.starts_with("not valid YAML: "),
            "{}",
            errors[0]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_configmap_volume_is_read_once_by_its_projected_names() {
        // As a kubelet lays out a ConfigMap volume.
        let dir = tempdir();
        let data = dir.join("..2026_12_01_08_00_00.000000001");
        std::fs::create_dir(&data).expect("timestamp folder");
        write(&data, "function.yaml", "kind: Function\n");
        std::os::unix::fs::symlink(&data, dir.join("..data")).expect("..data link");
        std::os::unix::fs::symlink("..data/function.yaml", dir.join("function.yaml"))
            .expect("file link");
        std::fs::create_dir(dir.join(".git")).expect("hidden folder");
        write(&dir.join(".git"), "config.yaml", "kind: Function\n");
        let files = manifest_files(std::slice::from_ref(&dir)).expect("lists");
        assert_eq!(files, [absolute(&dir.join("function.yaml"))]);
    }

    #[test]
    fn checksum_is_verified() {
        let mut f = parse_function(
            serde_saphyr::from_str("apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: a}\nspec: {function: aGk=, functionContentType: base64}\n")
                .expect("yaml"),
        )
        .expect("valid");
        assert_eq!(resolve_source(&f, None, None).expect("decodes"), b"hi");
        let good = format!("sha256:{}", hex::encode(Sha256::digest(b"hi")));
        f.spec.checksum = Some(good);
        assert!(resolve_source(&f, None, None).is_ok());
        f.spec.checksum = Some(format!("sha256:{}", "0".repeat(64)));
        assert!(matches!(
            resolve_source(&f, None, None),
            Err(SourceError::ChecksumMismatch { .. })
        ));
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("wasmless-manifest-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }
}
