//! JavaScript functions, kubeless (Node.js) style, through `wasmless up`
//! over HTTP: the runtime component (the Boa engine) built from
//! runtimes/js by the build script, the function's files given inline or
//! as a zip, and its pure-JavaScript dependencies installed with npm from a
//! local package.

mod common;

use common::source::{
    check_event_fields, check_loop_times_out, check_module_code_runs_ahead, code_of,
    drive_back_to_back, function, raw, source_up, source_up_with, wait_for_log_line,
    wait_for_optimized_code, wait_long_for_log_line, zipped,
};
use common::tempdir;

/// The runtime name of these tests' functions.
const RUNTIME: &str = "nodejs20";

const HELLO: &str = r#"
console.log("hello: module loaded");
const greeting = "Hello"; // module-level code runs before the first event
module.exports = {
  handler: (event, context) => {
    console.log("hello: called with", event.data);
    return `${greeting}, ${event.data}!`;
  },
};
"#;

const FIELDS: &str = r#"
module.exports.handler = (event, context) => ({
  data: event.data,
  "event-id": event["event-id"],
  "event-type": event["event-type"],
  "event-time": event["event-time"],
  "event-namespace": event["event-namespace"],
  method: event.extensions.request.method,
  path: event.extensions.request.path,
  query: event.extensions.request.url.split("?")[1],
  "x-trace": event.extensions.request.headers["x-trace"],
  context,
});
"#;

const SHAPES: &str = r#"
const prefix = async () => "async ";
module.exports = {
  later: async (event) => (await prefix()) + event.data,
  created: (event) => {
    event.extensions.response.status(201).set("Location", "/things/1");
    return "made";
  },
  fail: () => { throw new TypeError("the order is invalid"); },
  spin: () => { for (;;) {} },
};
"#;

const AHEAD: &str = r#"
const loaded = Date.now();
let calls = 0;
module.exports.handler = () => {
  calls += 1;
  return { since: (Date.now() - loaded) / 1000, calls };
};
"#;

const BROKEN: &str = r#"
throw new Error("no settings file");
"#;

const RANDOM: &str = r#"
module.exports.handler = () => String(Math.random());
"#;

#[tokio::test(flavor = "multi_thread")]
async fn javascript_functions_follow_the_kubeless_contract() {
    let dir = tempdir();
    let mut manifest = function(RUNTIME, "hello", "hello.handler", HELLO, "");
    manifest.push_str(&function(RUNTIME, "fields", "fields.handler", FIELDS, ""));
    manifest.push_str(&function(RUNTIME, "ahead", "ahead.handler", AHEAD, ""));
    manifest.push_str(&function(RUNTIME, "broken", "broken.handler", BROKEN, ""));
    manifest.push_str(&function(RUNTIME, "random", "random.handler", RANDOM, ""));
    for (name, entry) in [
        ("later", "later"),
        ("created", "created"),
        ("fail", "fail"),
        ("spin", "spin"),
    ] {
        manifest.push_str(&function(
            RUNTIME,
            name,
            &format!("shapes.{entry}"),
            SHAPES,
            "  timeout: \"3\"\n",
        ));
    }
    manifest.push_str(&zipped(
        RUNTIME,
        "two-modules",
        "main.handler",
        &[
            ("main.js", b"const { shout } = require('./lib/helpers');\nmodule.exports.handler = (event) => shout(event.data);\n"),
            ("lib/helpers.js", b"module.exports.shout = (text) => text.toUpperCase() + '!';\n"),
        ],
    ));
    manifest.push_str(&function(
        RUNTIME,
        "nohandler",
        "main.nothere",
        "module.exports.handler = () => 'x';\n",
        "",
    ));
    std::fs::write(dir.join("functions.yaml"), manifest).expect("manifest");
    let up = source_up(&[&dir]);

    assert_eq!(up.post("/hello", "Ada").await, (200, "Hello, Ada!".into()));
    // console.log goes to the log, tagged with the function.
    wait_for_log_line(&up, &["hello: called with Ada", "function=hello"]);

    check_event_fields(&up, RUNTIME).await;

    assert_eq!(up.post("/later", "hi").await, (200, "async hi".into()));
    let (status, body, headers) = raw(&up.url, "POST", "/created", &[], Vec::new()).await;
    assert_eq!((status, body.as_slice()), (201, &b"made"[..]));
    assert_eq!(
        headers.get("location").map(String::as_str),
        Some("/things/1")
    );
    let (status, body) = up.post("/fail", "x").await;
    assert_eq!(status, 500);
    assert!(body.contains("TypeError: the order is invalid"), "{body}");
    assert_eq!(up.post("/two-modules", "zip").await, (200, "ZIP!".into()));
    let (status, body) = up.post("/nohandler", "x").await;
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("main.js exports no function `nothere`"),
        "{body}"
    );
    check_module_code_runs_ahead(&up, "Error: no settings file").await;
    // The runtime ships a snapshot of its engine, made once at build time;
    // the random numbers of each instance are still its own.
    let mut numbers = std::collections::HashSet::new();
    for _ in 0..3 {
        let (status, body) = up.post("/random", "x").await;
        assert_eq!(status, 200, "{body}");
        assert!(numbers.insert(body.clone()), "{body} came twice");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // An endless loop is stopped at its 3 s timeout; the others keep answering.
    check_loop_times_out(&up).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn javascript_dependencies_are_installed_and_native_ones_run_on_the_fallback() {
    let dir = tempdir();
    let mut manifest = zipped(
        RUNTIME,
        "greeter",
        "main.handler",
        &[
            ("main.js", b"const greeting = require('greeting');\nmodule.exports.handler = (event) => greeting.greet(event.data);\n"),
            ("package.json", br#"{"name": "greeter", "version": "1.0.0", "dependencies": {"greeting": "file:./vendor/greeting"}}"#),
            ("vendor/greeting/package.json", br#"{"name": "greeting", "version": "1.0.0", "main": "lib/greet.js"}"#),
            ("vendor/greeting/lib/greet.js", b"module.exports.greet = (name) => `Greetings, ${name}`;\n"),
        ],
    );
    manifest.push_str(&zipped(
        RUNTIME,
        "native",
        "main.handler",
        &[
            ("main.js", b"const fast = require('fastmath');\nmodule.exports.handler = () => String(fast.add(1, 2));\n"),
            ("package.json", br#"{"name": "native", "version": "1.0.0", "dependencies": {"fastmath": "file:./vendor/fastmath"}}"#),
            ("vendor/fastmath/package.json", br#"{"name": "fastmath", "version": "1.0.0", "main": "index.js"}"#),
            // The addon is there but not loaded: Node.js on the fallback
            // runs the package.
            ("vendor/fastmath/index.js", b"module.exports = { add: (a, b) => a + b };\n"),
            ("vendor/fastmath/build/Release/fastmath.node", b"\x7fELF not really"),
        ],
    ));
    std::fs::write(dir.join("functions.yaml"), &manifest).expect("manifest");
    let up = source_up(&[&dir]);

    assert_eq!(
        up.post("/greeter", "Ada").await,
        (200, "Greetings, Ada".into())
    );
    // A native addon sends the function to the container-image fallback,
    // run here as a local Node.js process, and `describe` says why.
    assert_eq!(up.post("/native", "x").await, (200, "3".into()));
    let (ok, out, err) = up.cli(&["function", "describe", "native"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Path:     image (NativeDependencies)")
            && out.contains("package `fastmath` needs native code")
            && out.contains("ghcr.io/wasmless/runtime-nodejs"),
        "{out}"
    );
}

/// What a busy function's events see of its module-level state.
const BUSY: &str = r#"
let calls = 0;
const greeting = "Hello";
module.exports.handler = (event, context) => {
  calls += 1;
  console.log("busy: call", calls);
  return { calls, greeting: `${greeting}, ${context["function-name"]}`, data: event.data };
};
"#;

/// Module-level code that requires a file of its folder.
const SPLIT: &str = r#"
const { word } = require("./word");
module.exports.handler = () => word;
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_javascript_function_gets_its_own_snapshot_and_each_event_still_starts_fresh() {
    let dir = tempdir();
    std::fs::write(
        dir.join("functions.yaml"),
        format!(
            "{}{}",
            function(RUNTIME, "busy", "busy.handler", BUSY, ""),
            zipped(
                RUNTIME,
                "split",
                "split.handler",
                &[
                    ("split.js", SPLIT.as_bytes()),
                    ("word.js", b"module.exports.word = 'split';\n"),
                ],
            ),
        ),
    )
    .expect("manifest");
    let up = source_up_with(&[&dir], &["--snapshot-after", "16"]);
    assert_eq!(up.post("/busy", "x").await.0, 200);
    wait_for_optimized_code(&up).await;

    drive_back_to_back(&up, ["/busy", "/split"], 40).await;
    wait_long_for_log_line(&up, &["snapshot in place", "busy"]);
    // Its snapshot's run has no files: the require fails, and the runtime
    // says so; the function keeps its ordinary path.
    wait_long_for_log_line(
        &up,
        &["no snapshot", "split", "Cannot find module './word'"],
    );
    assert!(code_of(&up, "busy").starts_with("snapshot"));
    assert!(!code_of(&up, "split").starts_with("snapshot"));

    // Each event still gets a fresh instance: the module's state as its
    // code left it, its output in the log.
    for data in ["one", "two", "three"] {
        let (status, body) = up.post("/busy", data).await;
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(answer["calls"], 1, "{body}");
        assert_eq!(answer["greeting"], "Hello, busy", "{body}");
        assert_eq!(answer["data"], data, "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(up.post("/split", "").await, (200, "split".to_owned()));
    wait_for_log_line(&up, &["busy: call 1"]);
}
