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
    source_up_with(paths, &[])
}

/// The same, with more arguments of `up`.
pub fn source_up_with(paths: &[&Path], args: &[&str]) -> Up {
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
        .arg(root().join("runtimes/dist"))
        .args(args);
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

/// Calls the `fields` function (which returns its event and context as
/// JSON) with a JSON POST, and checks every kubeless field.
pub async fn check_event_fields(up: &Up, runtime: &str) {
    let (status, body) = text(
        raw(
            &up.url,
            "POST",
            "/fields/orders?limit=2",
            &[("content-type", "application/json"), ("x-trace", "t-1")],
            br#"{"id": 7, "items": ["a"]}"#.to_vec(),
        )
        .await,
    );
    assert_eq!(status, 200, "{body}");
    let fields: serde_json::Value = serde_json::from_str(&body).expect("a result becomes JSON");
    assert_eq!(fields["data"], serde_json::json!({"id": 7, "items": ["a"]}));
    assert_eq!(fields["event-type"], "application/json");
    let time = fields["event-time"].as_str().unwrap_or_default();
    assert!(time.ends_with('Z'), "{fields}");
    assert!(fields["event-id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(fields["event-namespace"], "http.wasmless.io");
    assert_eq!(fields["method"], "POST");
    assert_eq!(fields["path"], "/orders");
    assert_eq!(fields["query"], "limit=2");
    assert_eq!(fields["x-trace"], "t-1");
    assert_eq!(fields["context"]["function-name"], "fields");
    assert_eq!(fields["context"]["runtime"], runtime);
    assert_eq!(fields["context"]["timeout"], "180");
    assert_eq!(
        fields["context"]["memory-limit"],
        (128u64 << 20).to_string()
    );
}

/// Calls `spin` (an endless loop with a 3 s timeout) and checks that it
/// gets 408 while `hello` keeps answering, and after.
pub async fn check_loop_times_out(up: &Up) {
    let spinning = {
        let url = up.url.clone();
        tokio::spawn(async move { text(raw(&url, "POST", "/spin", &[], b"x".to_vec()).await) })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        up.post("/hello", "meanwhile").await,
        (200, "Hello, meanwhile!".into())
    );
    let (status, body) = spinning.await.expect("joined");
    assert_eq!(status, 408);
    assert_eq!(body.trim(), "Request timeout exceeded");
    assert_eq!(
        up.post("/hello", "after").await,
        (200, "Hello, after!".into())
    );
}

/// Module-level code runs once per instance, before its event: for an
/// instance made ahead of its event, when it is made. `ahead`'s handler
/// answers `{"since": <seconds since its module was loaded>, "calls":
/// <events its instance served>}`; `broken`'s module throws `error` when it
/// loads.
pub async fn check_module_code_runs_ahead(up: &Up, error: &str) {
    let since_and_calls = || async {
        let (status, body) = up.post("/ahead", "x").await;
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        (
            answer["since"].as_f64().expect("since"),
            answer["calls"].clone(),
        )
    };
    // The first events' instances are made for them (a lone event leaves
    // none made ahead); the next one is made after the second, ahead of
    // the next event, and loads the module then.
    for _ in 0..2 {
        let (_, calls) = since_and_calls().await;
        assert_eq!(calls, 1);
    }
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let (since, calls) = since_and_calls().await;
    assert!(
        since >= 0.5,
        "the module was loaded {since} s before its event"
    );
    assert_eq!(calls, 1, "the instance served an event before");
    // A module that fails to load fails each of its events with the
    // reason, whether it was loaded with the event or ahead of it.
    for _ in 0..2 {
        let (status, body) = up.post("/broken", "x").await;
        assert_eq!(status, 500, "{body}");
        assert!(body.contains(error), "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Waits (up to 10 s: the log is read by another thread) until one line of
/// `up`'s log holds every needle; panics with the log otherwise.
pub fn wait_for_log_line(up: &Up, needles: &[&str]) {
    wait_for_log_line_within(up, needles, std::time::Duration::from_secs(10));
}

/// The same, up to two minutes: a snapshot is made on baseline code in a
/// debug build.
pub fn wait_long_for_log_line(up: &Up, needles: &[&str]) {
    wait_for_log_line_within(up, needles, std::time::Duration::from_secs(120));
}

fn wait_for_log_line_within(up: &Up, needles: &[&str], limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let log = up.log();
        if log.lines().any(|l| needles.iter().all(|n| l.contains(n))) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no log line with {needles:?}:\n{log}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Eight clients sending back to back, half to each of `paths`, `each`
/// requests apiece: events of both functions come faster than their
/// instances are made. Every answer must be a 200.
pub async fn drive_back_to_back(up: &Up, paths: [&str; 2], each: usize) {
    let clients = (0..8).map(|i| async move {
        let path = paths[i % 2];
        for _ in 0..each {
            let (status, body) = up.post(path, "x").await;
            assert_eq!(status, 200, "{path}: {body}");
        }
    });
    futures::future::join_all(clients).await;
}

/// The CODE column of `function ls` for the function `name`.
pub fn code_of(up: &Up, name: &str) -> String {
    let (ok, listing, err) = up.cli(&["function", "ls"]);
    assert!(ok, "{err}");
    let row = listing
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} row:\n{listing}"));
    row.split_whitespace().nth(3).unwrap_or_default().to_owned()
}

/// Waits up to ten minutes (a debug build's optimizing compile of a
/// runtime) until no function of `up` runs on baseline code.
pub async fn wait_for_optimized_code(up: &Up) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let (ok, listing, err) = up.cli(&["function", "ls"]);
        assert!(ok, "{err}");
        if !listing.contains("baseline") {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{listing}");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// A wheel (a zip with its metadata) of one package; `native` adds a
/// shared library, as a package with C extensions has.
pub fn wheel(name: &str, init: &str, native: bool) -> Vec<u8> {
    let metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n");
    let purelib = if native { "false" } else { "true" };
    let wheel_file = format!(
        "Wheel-Version: 1.0\nGenerator: wasmless-tests\nRoot-Is-Purelib: {purelib}\nTag: py3-none-any\n"
    );
    let init_path = format!("{name}/__init__.py");
    let so_path = format!("{name}/_speedups.so");
    let metadata_path = format!("{name}-1.0.dist-info/METADATA");
    let wheel_path = format!("{name}-1.0.dist-info/WHEEL");
    let record_path = format!("{name}-1.0.dist-info/RECORD");
    let mut files: Vec<(&str, &[u8])> = vec![
        (&init_path, init.as_bytes()),
        (&metadata_path, metadata.as_bytes()),
        (&wheel_path, wheel_file.as_bytes()),
    ];
    if native {
        files.push((&so_path, b"\x7fELF not really"));
    }
    let mut record: String = files.iter().map(|(n, _)| format!("{n},,\n")).collect();
    record.push_str(&format!("{record_path},,\n"));
    files.push((&record_path, record.as_bytes()));
    zip_of(&files)
}

/// Whether `folder` holds Python bytecode of `module`: a
/// `<module>.cpython-*.pyc` file, as the host's bytecode run writes.
pub fn has_bytecode(folder: &Path, module: &str) -> bool {
    let prefix = format!("{module}.cpython-");
    std::fs::read_dir(folder).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(&prefix) && name.ends_with(".pyc")
        })
    })
}

/// Whether the host's bytecode run left its mark (`.wasmless-<digest>`),
/// that it is done, in the bytecode folder `folder`.
pub fn bytecode_done(folder: &Path) -> bool {
    std::fs::read_dir(folder).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".wasmless-"))
    })
}
