//! Fixtures for source functions (Python, JavaScript): `up` with the
//! runtimes, manifests with inline or zipped code, and requests that show
//! the response headers.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use super::{Up, root, tempdir, wasm};

/// `up` on `paths`, with the source runtimes and a compile cache shared by
/// the tests (a runtime is compiled once per test run, not per test).
pub fn source_up(paths: &[&Path]) -> Up {
    // Builds the examples and the runtimes once per test run.
    wasm("hello");
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("source-cache");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wasmless"));
    command
        .arg("up")
        .args(paths)
        .args(["--listen", "127.0.0.1:0", "--cache-dir"])
        .arg(&cache)
        .arg("--state-dir")
        .arg(tempdir())
        .arg("--runtimes-dir")
        .arg(root().join("runtimes/dist"));
    Up::spawn(command)
}

/// A response: status, body and headers.
pub type Answer = (u16, Vec<u8>, HashMap<String, String>);

/// One request with headers.
pub async fn raw(
    url: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Answer {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(format!("{url}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = http_body_util::Full::new(bytes::Bytes::from(body));
    let response = client
        .request(request.body(body).expect("request"))
        .await
        .expect("up answers");
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let bytes = response.into_body().collect().await.expect("body");
    (status, bytes.to_bytes().to_vec(), headers)
}

/// The status and the body as text.
pub fn text(answer: Answer) -> (u16, String) {
    (answer.0, String::from_utf8_lossy(&answer.1).into_owned())
}

/// A Function manifest document with inline `source`.
pub fn function(runtime: &str, name: &str, handler: &str, source: &str, extra: &str) -> String {
    let mut indented = String::new();
    for line in source.lines() {
        indented.push_str("    ");
        indented.push_str(line);
        indented.push('\n');
    }
    format!(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata:\n  name: {name}\nspec:\n  runtime: {runtime}\n  handler: {handler}\n{extra}  function: |\n{indented}---\n"
    )
}

/// A Function manifest document whose code is a zip of `files`.
pub fn zipped(runtime: &str, name: &str, handler: &str, files: &[(&str, &[u8])]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(zip_of(files));
    format!(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata:\n  name: {name}\nspec:\n  runtime: {runtime}\n  handler: {handler}\n  functionContentType: base64+zip\n  function: {encoded}\n---\n"
    )
}

/// A zip archive of `files` (name, content).
pub fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, content) in files {
            zip.start_file(*name, options).expect("zip entry");
            zip.write_all(content).expect("zip content");
        }
        zip.finish().expect("zip");
    }
    buffer.into_inner()
}
