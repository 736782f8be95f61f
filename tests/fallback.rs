//! The container-image fallback under `wasmless up`: functions that run on
//! their runtime's image in a cluster run here as local processes of the
//! same server (runtimes/images/*/server.*). The same function answers the
//! same on the wasm runtime and on the fallback, field by field.

mod common;

use common::source::{function, raw, source_up, text, wheel, zipped};
use common::tempdir;

const PYTHON_IMAGE: &str = "ghcr.io/wasmless/runtime-python:0.1.0";
const NODE_IMAGE: &str = "ghcr.io/wasmless/runtime-nodejs:0.1.0";

const PYTHON: &str = r#"
def fields(event, context):
    return {"event": event, "context": context}

def created(event, context):
    return "made", 201, {"Location": "/things/1"}

def fail(event, context):
    raise ValueError("the order is invalid")

def spin(event, context):
    while True:
        pass
"#;

const JAVASCRIPT: &str = r#"
module.exports.fields = (event, context) => {
  const { response, ...extensions } = event.extensions;
  return { event: { ...event, extensions }, context };
};
module.exports.created = (event) => {
  event.extensions.response.status(201).set("Location", "/things/1");
  return "made";
};
module.exports.fail = () => { throw new Error("the order is invalid"); };
module.exports.spin = () => { while (true) {} };
"#;

/// The functions of `source`, each twice: on wasm (`NAME-wasm`) and on the
/// runtime's image (`NAME-image`).
fn both_paths(runtime: &str, image: &str, module: &str, source: &str) -> String {
    let mut manifest = String::new();
    for entry in ["fields", "created", "fail", "spin"] {
        for (suffix, extra) in [
            ("wasm", String::new()),
            ("image", format!("  image: {image}\n")),
        ] {
            let extra = format!("{extra}  timeout: '3'\n");
            manifest.push_str(&function(
                runtime,
                &format!("{entry}-{suffix}"),
                &format!("{module}.{entry}"),
                source,
                &extra,
            ));
        }
    }
    manifest
}

/// Calls `NAME-wasm` and `NAME-image` with the same request (the event's
/// id and time given, as a dispatcher gives them) and checks that they
/// answer the same: status, content type, body.
async fn same_on_both(url: &str, name: &str) -> (u16, String) {
    let mut answers = Vec::new();
    for suffix in ["wasm", "image"] {
        let answer = raw(
            url,
            "POST",
            &format!("/{name}-{suffix}/orders?limit=2"),
            &[
                ("content-type", "application/json"),
                ("x-trace", "t-1"),
                ("event-id", "ev-1"),
                ("event-time", "2026-11-25T10:00:00.000Z"),
            ],
            br#"{"id": 7, "items": ["a"]}"#.to_vec(),
        )
        .await;
        let location = answer.2.get("location").cloned();
        let content_type = answer.2.get("content-type").cloned();
        let (status, body) = text(answer);
        // The function's name differs by the suffix only; JSON is compared
        // field by field (key order is the runtime's own).
        let body = body.replace(&format!("{name}-{suffix}"), name);
        let body = match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(json) if json.is_object() => json.to_string(),
            _ => body,
        };
        answers.push((status, body, location, content_type));
    }
    assert_eq!(answers[0], answers[1], "{name}: wasm, then image");
    (answers[0].0, answers[0].1.clone())
}

/// The contract, field by field, on both paths of one language.
async fn check_contract(url: &str, runtime: &str) {
    let (status, body) = same_on_both(url, "fields").await;
    assert_eq!(status, 200, "{body}");
    let fields: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let event = &fields["event"];
    assert_eq!(event["data"], serde_json::json!({"id": 7, "items": ["a"]}));
    assert_eq!(event["event-id"], "ev-1");
    assert_eq!(event["event-time"], "2026-11-25T10:00:00.000Z");
    assert_eq!(event["event-type"], "application/json");
    assert_eq!(event["event-namespace"], "http.wasmless.io");
    let request = &event["extensions"]["request"];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["path"], "/orders");
    if runtime.starts_with("nodejs") {
        // Express's request: the query parsed, the raw one in the URL.
        assert_eq!(request["query"], serde_json::json!({"limit": "2"}));
        assert_eq!(request["url"], "/orders?limit=2");
    } else {
        assert_eq!(request["query"], "limit=2");
    }
    assert_eq!(request["headers"]["x-trace"], "t-1");
    assert!(request["headers"].get("event-id").is_none(), "{request}");
    assert_eq!(fields["context"]["function-name"], "fields");
    assert_eq!(fields["context"]["runtime"], runtime);
    assert_eq!(fields["context"]["timeout"], "3");
    assert_eq!(
        fields["context"]["memory-limit"],
        (128u64 << 20).to_string()
    );

    assert_eq!(same_on_both(url, "created").await, (201, "made".into()));
    let (status, body) = same_on_both(url, "fail").await;
    assert_eq!(status, 500);
    assert!(body.contains("the order is invalid"), "{body}");
    let (status, body) = same_on_both(url, "spin").await;
    assert_eq!(status, 408);
    assert_eq!(body.trim(), "Request timeout exceeded");
}

#[tokio::test(flavor = "multi_thread")]
async fn python_answers_the_same_on_wasm_and_on_the_fallback() {
    let dir = tempdir();
    std::fs::write(
        dir.join("functions.yaml"),
        both_paths("python3.x", PYTHON_IMAGE, "handlers", PYTHON),
    )
    .expect("manifest");
    let up = source_up(&[&dir]);
    check_contract(&up.url, "python3.x").await;

    let (ok, out, err) = up.cli(&["function", "describe", "fields-image"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Path:     image (ImageRequested)") && out.contains(PYTHON_IMAGE),
        "{out}"
    );
    let (ok, out, _) = up.cli(&["function", "describe", "fields-wasm"]);
    assert!(ok && out.contains("Path:     wasm (WasmRuntime)"), "{out}");
    let (ok, out, _) = up.cli(&["function", "ls"]);
    assert!(ok && out.contains("process"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn javascript_answers_the_same_on_wasm_and_on_the_fallback() {
    let dir = tempdir();
    std::fs::write(
        dir.join("functions.yaml"),
        both_paths("nodejs20", NODE_IMAGE, "handlers", JAVASCRIPT),
    )
    .expect("manifest");
    let up = source_up(&[&dir]);
    check_contract(&up.url, "nodejs20").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_fallback_installs_a_wheel_and_takes_cron_events() {
    let dir = tempdir();
    let greeting = wheel(
        "greeting",
        "def greet(name):\n    return f'Greetings, {name}'\n",
        false,
    );
    let mut manifest = zipped(
        "python3.x",
        "greeter",
        "main.handler",
        &[
            ("main.py", b"import os, signal\nimport greeting\n\ndef handler(event, context):\n    if event['data'] == 'die':\n        os.kill(os.getppid(), signal.SIGKILL)\n    print('greeting', event['data'], event['event-namespace'], event['extensions']['request'] is None)\n    return greeting.greet(str(event['data']))\n"),
            ("requirements.txt", b"--no-index\n--find-links wheels\ngreeting\n"),
            ("wheels/greeting-1.0-py3-none-any.whl", &greeting),
        ],
    );
    manifest = manifest.replace(
        "  handler: main.handler\n",
        &format!("  handler: main.handler\n  image: {PYTHON_IMAGE}\n"),
    );
    // A cron trigger reaches the process too: an event with no request.
    manifest.push_str(
        "apiVersion: wasmless.io/v1alpha1\nkind: CronTrigger\nmetadata: {name: tick}\n\
         spec: {function: greeter, schedule: '* * * * * *', payload: {job: tick}}\n",
    );
    std::fs::write(dir.join("functions.yaml"), &manifest).expect("manifest");
    let up = source_up(&[&dir]);
    assert_eq!(
        up.post("/greeter", "Ada").await,
        (200, "Greetings, Ada".into())
    );
    // The process's output is the function's log.
    common::source::wait_for_log_line(&up, &["greeting Ada http.wasmless.io False"]);
    common::source::wait_for_log_line(&up, &["greeting {'job': 'tick'}", "True"]);
    let (ok, out, err) = up.cli(&["function", "logs", "greeter"]);
    assert!(ok && out.contains("greeting Ada"), "{out}{err}");

    // The server process dies (here the function kills it): that event
    // fails, and the next one starts it again.
    let (status, body) = up.post("/greeter", "die").await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("the fallback process did not answer"),
        "{body}"
    );
    let answer = up.post("/greeter", "Grace").await;
    assert_eq!(answer, (200, "Greetings, Grace".into()), "{}", up.log());
    common::source::wait_for_log_line(&up, &["the fallback process exited", "starting it again"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn what_cannot_run_here_says_why() {
    let dir = tempdir();
    // A catalog whose Python fallback needs an interpreter this machine
    // does not have, and has no wasm path.
    let catalog = dir.join("catalog.yaml");
    std::fs::write(
        &catalog,
        "runtimes:\n- id: python3.x\n  names: [python3.x]\n  extension: py\n  image: registry.example/py:1\n  local: {server: python, interpreter: python3-not-installed}\n",
    )
    .expect("catalog");
    let functions = dir.join("functions");
    std::fs::create_dir_all(&functions).expect("dir");
    let hello = "def handler(event, context):\n    return 'hi'\n";
    let mut manifest = function("python3.x", "py", "hello.handler", hello, "");
    manifest.push_str(&function(
        "ruby3.x",
        "rb",
        "hello.handler",
        "def handler(e, c) = 'hi'",
        "",
    ));
    manifest.push_str(&function(
        "perl5",
        "pl",
        "hello.handler",
        "sub handler { 'hi' }",
        "",
    ));
    manifest.push_str(&function(
        "python3.x",
        "own",
        "hello.handler",
        hello,
        "  image: registry.example/team/own:1\n",
    ));
    std::fs::write(functions.join("functions.yaml"), manifest).expect("manifest");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wasmless"));
    command
        .arg("up")
        .arg(&functions)
        .args(["--listen", "127.0.0.1:0", "--no-cache", "--runtime-catalog"])
        .arg(&catalog)
        .arg("--state-dir")
        .arg(tempdir());
    let up = common::Up::spawn(command);
    for (name, says) in [
        ("py", "`python3-not-installed`, which is not on PATH"),
        (
            "rb",
            "ruby3.x runs on the container image ghcr.io/wasmless/runtime-ruby",
        ),
        (
            "pl",
            "`perl5` is not in the runtime catalog; it has: wasm, python3.x",
        ),
        (
            "own",
            "no container engine to run registry.example/team/own:1",
        ),
    ] {
        let (status, body) = up.post(&format!("/{name}"), "x").await;
        assert_eq!(status, 503, "{name}: {body}");
        assert!(body.contains(says), "{name}: {body}");
    }
}

#[test]
fn the_runtimes_command_prints_the_catalog_in_effect() {
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmless"))
            .arg("runtimes")
            .args(args)
            .output()
            .expect("runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let table = run(&[]);
    for needle in [
        "python3.x",
        "nodejs2x",
        "ruby3.x",
        "go1.x",
        "java17",
        "custom",
        "runtime-python",
    ] {
        assert!(table.contains(needle), "{needle}: {table}");
    }
    let dir = tempdir();
    let file = dir.join("catalog.yaml");
    std::fs::write(
        &file,
        "runtimes:\n- id: php8\n  names: [php8]\n  image: registry.example/php:8\n",
    )
    .expect("write");
    let table = run(&["--catalog", file.to_str().expect("utf-8")]);
    assert!(
        table.contains("php8") && table.contains("registry.example/php:8"),
        "{table}"
    );
    // The YAML form reads back as a catalog.
    let yaml = run(&["--yaml"]);
    let parsed = wasmless::runtimes::Catalog::with_override(&yaml, "printed").expect("valid");
    assert_eq!(parsed, wasmless::runtimes::Catalog::built_in());
    std::fs::write(&file, "runtimes: [{id: bad}]").expect("write");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmless"))
        .args(["runtimes", "--catalog"])
        .arg(&file)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("runtime `bad` has no names"));
}
