//! `wasmless up` end to end: the real binary on a loopback port, real wasm
//! guests built from source, real HTTP.

mod common;

use std::time::{Duration, Instant};

use common::{Up, manifest_for_file, manifest_inline, tempdir, wasm, wat_writing};

/// A WASI command that writes to stderr and exits with status 3.
const QUITTER: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "giving up")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 9))
    (drop (call $fd_write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    (call $proc_exit (i32.const 3))))"#;

/// A folder with the examples plus the misbehaving guest.
fn functions_dir() -> std::path::PathBuf {
    let dir = tempdir();
    let mut yaml = String::new();
    yaml += &manifest_for_file("hello", &wasm("hello"), "");
    yaml += &manifest_for_file(
        "echo",
        &wasm("echo"),
        "  timeout: 7s\n  memory: 32Mi\n  env:\n  - name: GREETING\n    value: hi\n",
    );
    yaml += &manifest_for_file("http-hello", &wasm("http-hello"), "");
    yaml += &manifest_for_file("shout", &wasm("command"), "");
    yaml += &manifest_for_file(
        "misbehave",
        &wasm("misbehave"),
        "  timeout: 1s\n  memory: 16Mi\n",
    );
    std::fs::write(dir.join("functions.yaml"), yaml).expect("writing manifest");
    dir
}

#[tokio::test]
async fn every_kind_of_function_answers_over_http() {
    let up = Up::start(&[&functions_dir()]);
    assert_eq!(
        up.post("/hello", "Ada").await,
        (200, "Hello, Ada!\n".into())
    );
    assert_eq!(
        up.get("/http-hello/some/path?x=1").await,
        (
            200,
            "Hello from wasi:http! You asked for /some/path?x=1\n".into()
        )
    );
    assert_eq!(
        up.post("/shout", "quiet words").await,
        (200, "POST QUIET WORDS\n".into())
    );
    assert_eq!(up.get("/healthz").await.0, 200);
}

#[tokio::test]
async fn echo_sees_the_kubeless_event_and_context_fields() {
    let up = Up::start(&[&functions_dir()]);
    let (status, body) = up
        .request(
            "PUT",
            "/echo/a/b?q=1&r=2",
            Some("application/json"),
            br#"{"n":1}"#,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let first: serde_json::Value = serde_json::from_str(&body).expect("echo answers JSON");
    let event = &first["event"];
    assert_eq!(event["data"], r#"{"n":1}"#);
    assert_eq!(event["event-type"], "application/json");
    assert_eq!(event["event-namespace"], "http.wasmless.io");
    let time = event["event-time"]
        .as_str()
        .expect("event-time is a string");
    assert!(time.ends_with('Z'), "{time}");
    assert!(humantime::parse_rfc3339(time).is_ok(), "{time} is RFC 3339");
    let request = &event["extensions"]["request"];
    assert_eq!(request["method"], "PUT");
    assert_eq!(request["path"], "/a/b");
    assert_eq!(request["query"], "q=1&r=2");
    assert_eq!(request["headers"]["content-type"], "application/json");
    let context = &first["context"];
    assert_eq!(context["function-name"], "echo");
    assert_eq!(context["timeout"], 7000);
    assert_eq!(context["runtime"], "wasm");
    assert_eq!(context["memory-limit"], 32 << 20);
    // Only the granted environment is visible.
    assert_eq!(first["env"], serde_json::json!(["GREETING"]));

    let (_, again) = up.post("/echo", "x").await;
    let second: serde_json::Value = serde_json::from_str(&again).expect("JSON");
    assert_ne!(first["event"]["event-id"], second["event"]["event-id"]);
    assert_eq!(second["event"]["event-type"], "text/plain");
}

#[tokio::test]
async fn traps_errors_timeouts_and_memory_are_reported_and_the_host_goes_on() {
    let up = Up::start(&[&functions_dir()]);
    let (status, body) = up.get("/misbehave/panic").await;
    assert_eq!(status, 500);
    assert!(body.contains("trapped"), "{body}");

    let (status, body) = up.get("/misbehave/error").await;
    assert_eq!(
        (status, body.as_str()),
        (422, "the guest refused this event\n")
    );

    let started = Instant::now();
    let (status, body) = up.get("/misbehave/loop").await;
    assert_eq!(status, 408);
    assert!(body.contains("Request timeout exceeded"), "{body}");
    assert!(started.elapsed() < Duration::from_secs(10));

    let (status, body) = up.get("/misbehave/sleep").await;
    assert_eq!(status, 408, "{body}");

    let (status, body) = up.get("/misbehave/alloc").await;
    assert_eq!(status, 500);
    assert!(body.contains("memory limit"), "{body}");

    // No files, sockets or outgoing HTTP without a grant.
    for path in ["/misbehave/file", "/misbehave/tcp", "/misbehave/http"] {
        let (status, body) = up.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.starts_with("denied: "), "{path}: {body}");
    }
    let (_, body) = up.get("/misbehave/http").await;
    assert!(body.contains("HttpRequestDenied"), "{body}");

    // The host still serves everyone, the misbehaving function included.
    assert_eq!(up.post("/hello", "still here").await.0, 200);
    assert_eq!(up.get("/misbehave/fine").await, (200, "ok".into()));
}

#[tokio::test]
async fn unknown_functions_big_bodies_and_broken_modules_get_clear_errors() {
    let dir = functions_dir();
    std::fs::write(
        dir.join("garbage.wasm"),
        b"\0asm\x01\0\0\0 this is not a module",
    )
    .expect("write");
    let manifests = manifest_for_file("broken", &dir.join("garbage.wasm"), "")
        + &manifest_inline("no-start", "(module (func (export \"main\")))", "")
        + &manifest_inline(
            "trapper",
            "(module (func (export \"_start\") unreachable))",
            "",
        )
        + &manifest_inline("quitter", QUITTER, "");
    std::fs::write(dir.join("broken.yaml"), manifests).expect("write");
    let up = Up::start_with(&[&dir], &["--max-body-size", "1Ki"]);

    assert_eq!(up.get("/nobody").await.0, 404);
    let (status, body) = up.post("/hello", &"x".repeat(4096)).await;
    assert_eq!(status, 413, "{body}");

    let (status, body) = up.get("/broken").await;
    assert_eq!(status, 503);
    assert!(body.contains("compiling failed"), "{body}");
    let (status, body) = up.get("/no-start").await;
    assert_eq!(status, 503);
    assert!(body.contains("_start"), "{body}");
    let (status, body) = up.get("/trapper").await;
    assert_eq!(status, 500);
    assert!(body.contains("unreachable"), "{body}");

    let (status, body) = up.get("/quitter").await;
    assert_eq!(status, 500);
    assert!(body.contains("exited with status 3: giving up"), "{body}");

    let (ok, listing, _) = up.cli(&["function", "ls"]);
    assert!(ok);
    let broken = listing
        .lines()
        .find(|l| l.starts_with("broken"))
        .expect("broken is listed");
    assert!(
        broken.contains("failed") && broken.contains("compiling failed"),
        "{broken}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("hello") && l.contains("ready")),
        "{listing}"
    );
    assert_eq!(up.post("/hello", "ok").await.0, 200);
}

#[tokio::test]
async fn an_invalid_manifest_is_reported_with_file_document_and_field() {
    let dir = tempdir();
    let yaml = manifest_for_file("hello", &wasm("hello"), "")
        + &manifest_for_file("bad", &wasm("hello"), "  timeout: never\n");
    std::fs::write(dir.join("fns.yaml"), yaml).expect("write");
    let up = Up::start(&[&dir]);
    assert_eq!(up.post("/hello", "x").await.0, 200);
    let log = up.log();
    assert!(log.contains("fns.yaml: document 2: spec.timeout"), "{log}");
}

#[tokio::test]
async fn two_hundred_concurrent_requests_to_several_functions_all_answer() {
    two_hundred_concurrent_requests(&[]).await;
    // Two events at a time, with instances made ahead of events and spent
    // ones dropped in the background beside them: the pool still has room
    // for every event that runs.
    two_hundred_concurrent_requests(&["--max-instances", "2"]).await;
}

async fn two_hundred_concurrent_requests(args: &[&str]) {
    let up = std::sync::Arc::new(Up::start_with(&[&functions_dir()], args));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let up = up.clone();
        tasks.push(tokio::spawn(async move {
            match i % 3 {
                0 => (
                    up.post("/hello", &format!("n{i}")).await,
                    format!("Hello, n{i}!\n"),
                ),
                1 => (
                    up.post("/shout", &format!("n{i}")).await,
                    format!("POST N{i}\n"),
                ),
                _ => (
                    up.get(&format!("/http-hello/{i}")).await,
                    format!("Hello from wasi:http! You asked for /{i}\n"),
                ),
            }
        }));
    }
    for task in tasks {
        let ((status, body), expected) = task.await.expect("task");
        assert_eq!((status, body), (200, expected), "{args:?}");
    }
    let (_, metrics) = up.get("/metrics").await;
    assert!(
        metrics.contains("wasmless_function_calls_total{function=\"hello\"} 67"),
        "{metrics}"
    );
    assert!(
        metrics.contains("wasmless_function_duration_seconds_bucket"),
        "{metrics}"
    );
}

#[tokio::test]
async fn deploy_call_list_and_delete_through_the_cli() {
    let up = Up::start(&[]);
    let hello = wasm("hello");
    let (ok, out, err) = up.cli(&[
        "function",
        "deploy",
        "greeter",
        "--from-file",
        hello.to_str().expect("utf-8 path"),
        "--timeout",
        "2",
        "--memory",
        "32Mi",
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("deployed greeter (wasmless)"), "{out}");
    let (ok, out, _) = up.cli(&["function", "call", "greeter", "--data", "CLI"]);
    assert!(ok);
    assert_eq!(out, "Hello, CLI!\n");
    let (ok, out, _) = up.cli(&["function", "ls"]);
    assert!(
        ok && out.contains("greeter") && out.contains("ready"),
        "{out}"
    );

    let dir = tempdir();
    std::fs::write(dir.join("junk.wasm"), b"definitely not wasm").expect("write");
    let (ok, _, err) = up.cli(&[
        "function",
        "deploy",
        "junk",
        "--from-file",
        dir.join("junk.wasm").to_str().expect("utf-8"),
    ]);
    assert!(!ok);
    assert!(err.contains("not a WebAssembly module"), "{err}");

    let (ok, out, _) = up.cli(&["function", "describe", "greeter"]);
    assert!(
        ok && out.contains("Status:   ready") && out.contains("/greeter/"),
        "{out}"
    );

    // What a function writes is kept for `function logs`.
    let recorder = wasm("recorder");
    let (ok, out, err) = up.cli(&[
        "function",
        "deploy",
        "recorder",
        "--from-file",
        recorder.to_str().expect("utf-8 path"),
    ]);
    assert!(ok, "{out}{err}");
    for data in ["first", "second"] {
        assert_eq!(up.post("/recorder", data).await.0, 200);
    }
    let (ok, out, err) = up.cli(&["function", "logs", "recorder", "--tail", "1"]);
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains("RECORD") && out.contains("data=second"),
        "{out}"
    );
    let (ok, _, err) = up.cli(&["function", "logs", "nobody"]);
    assert!(!ok && err.contains("no function named `nobody`"), "{err}");

    let (ok, _, _) = up.cli(&["function", "delete", "greeter"]);
    assert!(ok);
    assert_eq!(up.post("/greeter", "x").await.0, 404);
    let (ok, _, err) = up.cli(&["function", "call", "greeter"]);
    assert!(!ok && err.contains("404"), "{err}");
}

#[tokio::test]
async fn editing_a_manifest_or_its_module_reloads_the_function() {
    let dir = tempdir();
    let manifest = dir.join("reload.yaml");
    std::fs::write(
        &manifest,
        manifest_inline("version", &wat_writing("v1"), ""),
    )
    .expect("write");
    let up = Up::start(&[&dir]);
    assert_eq!(up.get("/version").await, (200, "v1".into()));

    std::fs::write(
        &manifest,
        manifest_inline("version", &wat_writing("v2"), ""),
    )
    .expect("write");
    up.wait_for_swap("/version", "v1", "v2", Duration::from_secs(15))
        .await;

    // Editing the module a manifest names reloads that function too.
    let module = dir.join("module.wat");
    std::fs::write(&module, wat_writing("m1")).expect("write");
    std::fs::write(
        dir.join("module.yaml"),
        manifest_for_file("module", &module, ""),
    )
    .expect("write");
    wait_for(&up, "/module", "m1").await;
    std::fs::write(&module, wat_writing("m2")).expect("write");
    wait_for(&up, "/module", "m2").await;

    // A broken edit keeps the running version.
    std::fs::write(&manifest, "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: version}\nspec: {bogus: 1}\n").expect("write");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(up.get("/version").await, (200, "v2".into()));
}

// Multi-threaded: `Up::start` blocks while the file server runs on the
// runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_is_fetched_from_a_url_and_its_checksum_checked() {
    use sha2::Digest as _;
    let bytes = std::fs::read(wasm("hello")).expect("hello.wasm");
    let checksum = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
    let server = common::serve_files(vec![("/hello.wasm", bytes)]).await;
    let fetched = |name: &str, path: &str, sum: &str| {
        format!(
            "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata:\n  name: {name}\nspec:\n  function: {server}{path}\n  functionContentType: url\n  checksum: {sum}\n---\n"
        )
    };
    let dir = tempdir();
    let yaml = fetched("direct", "/hello.wasm", &checksum)
        + &fetched("redirected", "/moved", &checksum)
        + &fetched(
            "tampered",
            "/hello.wasm",
            &format!("sha256:{}", "0".repeat(64)),
        )
        + &fetched("missing", "/nothing.wasm", &checksum);
    std::fs::write(dir.join("url.yaml"), yaml).expect("write");
    let up = Up::start(&[&dir]);
    assert_eq!(
        up.post("/direct", "URL").await,
        (200, "Hello, URL!\n".into())
    );
    assert_eq!(
        up.post("/redirected", "again").await,
        (200, "Hello, again!\n".into())
    );
    let (status, body) = up.get("/tampered").await;
    assert_eq!(status, 503);
    assert!(body.contains("spec.checksum"), "{body}");
    let (status, body) = up.get("/missing").await;
    assert_eq!(status, 503);
    assert!(body.contains("404"), "{body}");
}

// A mirror that was down when the function first loaded: the function is
// not failed for good, the first event after the backoff loads it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_whose_source_was_unreachable_loads_on_an_event_after_the_backoff() {
    use sha2::Digest as _;
    use std::sync::atomic::Ordering;
    let bytes = std::fs::read(wasm("hello")).expect("hello.wasm");
    let checksum = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&bytes)));
    let mirror = common::FileServer::start(vec![("/hello.wasm", bytes)]).await;
    mirror.down.store(true, Ordering::SeqCst);
    let dir = tempdir();
    std::fs::write(
        dir.join("url.yaml"),
        format!(
            "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata:\n  name: mirrored\nspec:\n  function: {}/hello.wasm\n  functionContentType: url\n  checksum: {checksum}\n",
            mirror.url
        ),
    )
    .expect("write");
    let up = Up::start(&[&dir]);
    let (status, body) = up.post("/mirrored", "outage").await;
    assert_eq!(status, 503, "{body}\n{}", up.log());
    assert!(body.contains("503"), "the mirror's answer is named: {body}");
    assert!(
        body.contains("tries again"),
        "says it is tried again: {body}"
    );
    // Within the backoff, events are told at once and the mirror is left
    // alone.
    let asked = mirror.requests.load(Ordering::SeqCst);
    for _ in 0..20 {
        assert_eq!(up.post("/mirrored", "flood").await.0, 503);
    }
    assert_eq!(
        mirror.requests.load(Ordering::SeqCst),
        asked,
        "{}",
        up.log()
    );

    // Still down after the backoff: tried again, and failed again, with a
    // longer wait.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let (status, body) = up.post("/mirrored", "still").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("2 tries"), "{body}");
    assert!(mirror.requests.load(Ordering::SeqCst) > asked);

    // Back up: the first event after the backoff loads it and is answered.
    mirror.down.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = up.post("/mirrored", "mirror").await;
        if status == 200 {
            assert_eq!(body, "Hello, mirror!\n");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never loaded: {status} {body}\n{}",
            up.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        up.log().contains("loading it again after a failure"),
        "{}",
        up.log()
    );
}

/// Polls `path` until it answers `expected` (bounded).
async fn wait_for(up: &Up, path: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = up.get(path).await;
        if status == 200 && body == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never answered {expected}: {status} {body}\n{}",
            up.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn host_serves_the_function_folder_without_an_admin_api() {
    // The folder a pod mounts from the function's ConfigMap: the manifest
    // and its module side by side.
    let dir = tempdir();
    std::fs::copy(wasm("hello"), dir.join("hello.wasm")).expect("module");
    std::fs::write(
        dir.join("function.yaml"),
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata:\n  name: hello\nspec:\n  file: hello.wasm\n",
    )
    .expect("manifest");
    let mut host = Up::host(&dir, &[]);
    assert_eq!(
        host.post("/hello", "pod").await,
        (200, "Hello, pod!\n".into())
    );
    assert_eq!(host.get("/healthz").await.0, 200);
    let (status, body) = host.get("/_wasmless/functions").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("no admin API"), "{body}");
    assert!(host.terminate(Duration::from_secs(30)), "stops on SIGTERM");

    // As the operator runs it: the function answers at every path.
    let mut host = Up::host(
        &dir,
        &[("WASMLESS_FUNCTION", std::ffi::OsStr::new("hello"))],
    );
    assert_eq!(host.post("/", "root").await, (200, "Hello, root!\n".into()));
    assert_eq!(
        host.post("/orders/42", "path").await,
        (200, "Hello, path!\n".into())
    );
    assert_eq!(host.get("/healthz").await.0, 200);
    assert!(host.terminate(Duration::from_secs(30)), "stops on SIGTERM");
    assert!(
        host.log().contains("wasmless host: stopping"),
        "{}",
        host.log()
    );

    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_wasmless"))
        .args(["host", "--function-dir", "/nonexistent/function"])
        .output()
        .expect("runs");
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("/nonexistent/function: no such folder"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_function_reads_its_secrets_and_nothing_else() {
    // What the kubelet mounts: the Secret `db-creds` at <root>/db-creds.
    let root = tempdir();
    std::fs::create_dir(root.join("db-creds")).expect("secret folder");
    std::fs::write(root.join("db-creds/password"), "s3cret").expect("secret");
    std::fs::create_dir(root.join("other")).expect("other folder");
    std::fs::write(root.join("other/key"), "not yours").expect("other");
    let dir = tempdir();
    std::fs::copy(wasm("misbehave"), dir.join("misbehave.wasm")).expect("module");
    std::fs::write(
        dir.join("function.yaml"),
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: reader}\nspec: {file: misbehave.wasm, secrets: [db-creds]}\n",
    )
    .expect("manifest");
    let mut host = Up::host(&dir, &[("WASMLESS_SECRETS_ROOT", root.as_os_str())]);
    assert_eq!(
        host.post("/reader/read", "/db-creds/password").await,
        (200, "s3cret".into())
    );
    for other in ["/other/key", "/etc/hostname"] {
        let (status, body) = host.post("/reader/read", other).await;
        assert_eq!(status, 200);
        assert!(body.starts_with("denied"), "{other}: {body}");
    }
    let (_, body) = host.post("/reader/write", "/db-creds/new").await;
    assert!(body.starts_with("denied"), "secrets are read-only: {body}");
    assert!(!root.join("db-creds/new").exists());
    assert!(host.terminate(Duration::from_secs(30)));

    // A Secret that is not mounted fails the load with the reason.
    std::fs::write(
        dir.join("function.yaml"),
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: reader}\nspec: {file: misbehave.wasm, secrets: [missing]}\n",
    )
    .expect("manifest");
    let mut host = Up::host(&dir, &[("WASMLESS_SECRETS_ROOT", root.as_os_str())]);
    let (status, body) = host.post("/reader/read", "x").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("secret `missing` is not mounted"), "{body}");
    assert!(host.terminate(Duration::from_secs(30)));
}

/// The `wasmless_function_in_flight` gauge of `function`.
async fn in_flight(up: &Up, function: &str) -> u64 {
    gauge(up, "wasmless_function_in_flight", function).await
}

/// The gauge `name` of `function` in `/metrics` (0 if absent).
async fn gauge(up: &Up, name: &str, function: &str) -> u64 {
    let (_, metrics) = up.get("/metrics").await;
    let series = format!("{name}{{function=\"{function}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Sends `count` requests to `path` at once; returns their statuses and
/// the most of `function`'s events seen running, and in flight, at once
/// meanwhile (`/metrics`, polled every 10 ms).
async fn at_once(up: &Up, function: &str, path: &str, count: usize) -> (Vec<u16>, u64, u64) {
    let done = std::sync::atomic::AtomicBool::new(false);
    let calls = async {
        let answers = futures::future::join_all((0..count).map(|_| up.get(path))).await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        answers
            .into_iter()
            .map(|(status, _)| status)
            .collect::<Vec<u16>>()
    };
    let watch = async {
        let (mut running, mut in_flight) = (0, 0);
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            running = running.max(gauge(up, "wasmless_function_running", function).await);
            in_flight = in_flight.max(gauge(up, "wasmless_function_in_flight", function).await);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (running, in_flight)
    };
    let (statuses, (running, in_flight)) = tokio::join!(calls, watch);
    (statuses, running, in_flight)
}

#[tokio::test]
async fn a_function_that_ran_out_of_memory_runs_one_event_at_a_time_for_a_while() {
    let dir = tempdir();
    let yaml = manifest_for_file(
        "bomb",
        &wasm("misbehave"),
        "  timeout: 1s\n  memory: 16Mi\n",
    ) + &manifest_for_file("fine", &wasm("hello"), "");
    std::fs::write(dir.join("functions.yaml"), yaml).expect("writing manifest");
    let up = Up::start_with(&[&dir], &["--memory-penalty", "2s"]);

    // Before: two events that sleep until their timeout run side by side.
    let (statuses, running, _) = at_once(&up, "bomb", "/bomb/sleep", 2).await;
    assert_eq!(statuses, [408, 408]);
    assert_eq!(running, 2, "two sleeping events did not run at once");

    // One event runs out of memory ...
    let (status, body) = up.get("/bomb/alloc").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("memory limit"), "{body}");
    // The warning is logged before the answer, but read from up's stderr
    // by another thread: it may come in a moment after the answer.
    let warning = "function `bomb` ran out of memory: its events run one at a time until 2s after the last one that does";
    common::source::wait_for_log_line(&up, &[warning]);
    assert!(up.log().contains(warning), "{}", up.log());
    // ... and for the next 2 s its events take turns: all three are in,
    // one runs at a time, each until its 1 s timeout.
    let started = Instant::now();
    let (statuses, running, waiting) = at_once(&up, "bomb", "/bomb/sleep", 3).await;
    assert_eq!(statuses, [408, 408, 408]);
    assert_eq!(
        running, 1,
        "the penalized function's events ran side by side"
    );
    assert!(
        waiting >= 2,
        "its events did not wait their turn: {waiting} in flight"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "three 1 s events one at a time took {:?}",
        started.elapsed()
    );
    // Its neighbour was never held up by the lane.
    assert_eq!(up.post("/fine", "Ada").await, (200, "Hello, Ada!\n".into()));

    // The 2 s are over: side by side again.
    let (statuses, running, _) = at_once(&up, "bomb", "/bomb/sleep", 2).await;
    assert_eq!(statuses, [408, 408]);
    assert_eq!(running, 2, "the penalty did not end");
}

#[tokio::test]
async fn a_flood_of_one_functions_events_waits_in_its_own_line() {
    let dir = tempdir();
    let yaml = manifest_for_file("slow", &wasm("misbehave"), "  timeout: 3s\n")
        + &manifest_for_file("fast", &wasm("hello"), "");
    std::fs::write(dir.join("functions.yaml"), yaml).expect("writing manifest");
    // Four instances in all, one at a time per function.
    let up = Up::start_with(
        &[&dir],
        &[
            "--max-instances",
            "4",
            "--function-concurrency",
            "1",
            "--ready-idle",
            "0",
        ],
    );
    // Six events that each run until their timeout: without a share per
    // function they would take all four slots and the neighbour would wait.
    let flood = async {
        let calls = (0..6).map(|_| up.get("/slow/loop"));
        futures::future::join_all(calls).await
    };
    let neighbour = async {
        // Once all six are in (one runs, five wait their turn) ...
        let deadline = Instant::now() + Duration::from_secs(20);
        while in_flight(&up, "slow").await < 6 {
            assert!(
                Instant::now() < deadline,
                "the flood never arrived: {}",
                up.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // ... the neighbour is served at once, with the flood still there.
        let (status, body) = up.post("/fast", "Ada").await;
        let waiting = in_flight(&up, "slow").await;
        (status, body, waiting)
    };
    let (answers, (status, body, waiting)) = tokio::join!(flood, neighbour);
    assert_eq!((status, body.as_str()), (200, "Hello, Ada!\n"));
    assert!(
        waiting >= 5,
        "the neighbour waited behind the flood ({waiting} of its events left)"
    );
    for (status, _) in answers {
        assert_eq!(status, 408);
    }
    assert_eq!(in_flight(&up, "slow").await, 0);
}

/// A version that goes within moments of its deploy (a test, a benchmark's
/// trial, an apply soon replaced) costs no optimized compile; one that
/// stays gets its optimized code, cached on disk.
#[test]
fn a_function_deleted_at_once_costs_no_optimized_compile() {
    use sha2::Digest as _;
    let dir = tempdir();
    let cache = tempdir();
    let up = Up::start_with(&[], &["--cache-dir", cache.to_str().expect("utf-8 path")]);
    let hello = std::fs::read(wasm("hello")).expect("hello.wasm");
    // Code no cache knows: each compiles afresh.
    let module = |nonce: &str| {
        let bytes = wasmless::bench::with_nonce(&hello, nonce);
        let path = dir.join(format!("{nonce}.wasm"));
        std::fs::write(&path, &bytes).expect("module");
        (path, hex::encode(sha2::Sha256::digest(&bytes)))
    };
    let artefact = |digest: &str| {
        walk(&cache)
            .iter()
            .any(|p| p.file_name().and_then(|n| n.to_str()) == Some(&format!("{digest}.cwasm")))
    };
    let (gone, gone_digest) = module("gone");
    let (kept, kept_digest) = module("kept");
    let deploy = |name: &str, path: &std::path::Path| {
        let (ok, out, err) = up.cli(&[
            "function",
            "deploy",
            name,
            "--from-file",
            path.to_str().expect("utf-8 path"),
        ]);
        assert!(ok, "{out}{err}");
    };
    deploy("gone", &gone);
    let (ok, out, err) = up.cli(&["function", "delete", "gone"]);
    assert!(ok, "{out}{err}");
    deploy("kept", &kept);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, listing, _) = up.cli(&["function", "ls"]);
        let code = listing
            .lines()
            .find(|l| l.starts_with("kept "))
            .and_then(|l| l.split_whitespace().nth(3))
            .unwrap_or_default()
            .to_owned();
        if code == "optimized" {
            break;
        }
        assert!(Instant::now() < deadline, "never optimized:\n{listing}");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        artefact(&kept_digest),
        "the kept function's optimized code is cached"
    );
    // The optimized compiles run one at a time in the order they were
    // asked for: had the deleted one been compiled, it would be there.
    assert!(!artefact(&gone_digest), "the deleted function was compiled");
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
