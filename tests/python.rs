//! Python functions, kubeless style, through `wasmless up` over HTTP: the
//! runtime component built from runtimes/python by the build script, the
//! function's files given as a file, inline or a zip, and its pure-Python
//! dependencies installed from a local wheel.

mod common;

use common::source::{
    bytecode_done, check_event_fields, check_loop_times_out, check_module_code_runs_ahead, code_of,
    drive_back_to_back, function, has_bytecode, raw, source_up, source_up_with, wait_for_log_line,
    wait_for_optimized_code, wait_long_for_log_line, wheel, zip_of, zipped,
};
use common::tempdir;

/// The runtime name of these tests' functions.
const RUNTIME: &str = "python3.x";

const HELLO: &str = r#"
print("hello: module loaded")
greeting = "Hello"   # module-level code runs before the first event

def handler(event, context):
    print("hello: called with", event["data"])
    return f"{greeting}, {event['data']}!"
"#;

const FIELDS: &str = r#"
def handler(event, context):
    return {
        "data": event["data"],
        "event-id": event["event-id"],
        "event-type": event["event-type"],
        "event-time": event["event-time"],
        "event-namespace": event["event-namespace"],
        "method": event["extensions"]["request"]["method"],
        "path": event["extensions"]["request"]["path"],
        "query": event["extensions"]["request"]["query"],
        "x-trace": event["extensions"]["request"]["headers"].get("x-trace"),
        "context": context,
    }
"#;

const SHAPES: &str = r#"
async def prefix():
    return "async "

async def later(event, context):
    return (await prefix()) + event["data"]

def created(event, context):
    return "made", 201, {"Location": "/things/1"}

def binary(event, context):
    return bytes([0, 1, 2, 255])

def fail(event, context):
    raise ValueError("the order is invalid")

def spin(event, context):
    while True:
        pass
"#;

const AHEAD: &str = r#"
import time
loaded = time.time()
calls = 0

def handler(event, context):
    global calls
    calls += 1
    return {"since": time.time() - loaded, "calls": calls}
"#;

const BROKEN: &str = r#"
raise RuntimeError("no settings file")

def handler(event, context):
    return "unreachable"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn python_functions_follow_the_kubeless_contract() {
    let dir = tempdir();
    let mut manifest = function(RUNTIME, "hello", "hello.handler", HELLO, "");
    manifest.push_str(&function(RUNTIME, "fields", "fields.handler", FIELDS, ""));
    manifest.push_str(&function(RUNTIME, "ahead", "ahead.handler", AHEAD, ""));
    manifest.push_str(&function(RUNTIME, "broken", "broken.handler", BROKEN, ""));
    for (name, entry) in [
        ("later", "later"),
        ("created", "created"),
        ("binary", "binary"),
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
            ("main.py", b"from helpers import shout\n\ndef handler(event, context):\n    return shout(event['data'])\n"),
            ("helpers.py", b"def shout(text):\n    return text.upper() + '!'\n"),
        ],
    ));
    std::fs::write(dir.join("functions.yaml"), manifest).expect("manifest");
    let up = source_up(&[&dir]);

    assert_eq!(up.post("/hello", "Ada").await, (200, "Hello, Ada!".into()));
    // print goes to the log, tagged with the function.
    wait_for_log_line(&up, &["hello: called with Ada", "function=hello"]);

    check_event_fields(&up, RUNTIME).await;

    assert_eq!(up.post("/later", "hi").await, (200, "async hi".into()));
    let (status, body, headers) = raw(&up.url, "POST", "/created", &[], Vec::new()).await;
    assert_eq!((status, body.as_slice()), (201, &b"made"[..]));
    assert_eq!(
        headers.get("location").map(String::as_str),
        Some("/things/1")
    );
    let (status, bytes, _) = raw(&up.url, "GET", "/binary", &[], Vec::new()).await;
    assert_eq!((status, bytes), (200, vec![0, 1, 2, 255]));
    let (status, body) = up.post("/fail", "x").await;
    assert_eq!(status, 500);
    assert!(body.contains("ValueError: the order is invalid"), "{body}");
    assert_eq!(up.post("/two-modules", "zip").await, (200, "ZIP!".into()));
    check_module_code_runs_ahead(&up, "RuntimeError: no settings file").await;

    // An endless loop is stopped at its 3 s timeout; the others keep answering.
    check_loop_times_out(&up).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn python_dependencies_are_installed_and_native_ones_run_on_the_fallback() {
    let dir = tempdir();
    let requirements = b"--no-index\n--find-links wheels\ngreeting\n";
    let pure = wheel(
        "greeting",
        "def greet(name):\n    return f'Greetings, {name}'\n",
        false,
    );
    // Native code beside Python that does not load it: the fallback process
    // runs it as CPython would.
    let native = wheel("fastmath", "def add(a, b):\n    return a + b\n", true);
    let mut manifest = zipped(
        RUNTIME,
        "greeter",
        "main.handler",
        &[
            ("main.py", b"import greeting\n\ndef handler(event, context):\n    return greeting.greet(event['data'])\n"),
            ("requirements.txt", requirements),
            ("wheels/greeting-1.0-py3-none-any.whl", &pure),
        ],
    );
    manifest.push_str(&zipped(
        RUNTIME,
        "native",
        "main.handler",
        &[
            ("main.py", b"import fastmath\n\ndef handler(event, context):\n    return str(fastmath.add(1, 2))\n"),
            ("requirements.txt", b"--no-index\n--find-links wheels\nfastmath\n"),
            ("wheels/fastmath-1.0-py3-none-any.whl", &native),
        ],
    ));
    manifest.push_str(&function(
        RUNTIME,
        "nohandler",
        "main.nothere",
        "def handler(e, c):\n    return 'x'\n",
        "",
    ));
    manifest.push_str(&zipped(
        RUNTIME,
        "nomodule",
        "main.handler",
        &[("other.py", b"def handler(e, c):\n    return 'x'\n")],
    ));
    std::fs::write(dir.join("functions.yaml"), &manifest).expect("manifest");
    let up = source_up(&[&dir]);

    assert_eq!(
        up.post("/greeter", "Ada").await,
        (200, "Greetings, Ada".into())
    );
    // A package with native code sends the function to the container-image
    // fallback, run here as a local process, and `describe` says why.
    assert_eq!(up.post("/native", "x").await, (200, "3".into()));
    let (ok, out, err) = up.cli(&["function", "describe", "native"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Path:     image (NativeDependencies)")
            && out.contains("package `fastmath` needs native code (fastmath/_speedups.so")
            && out.contains("ghcr.io/wasmless/runtime-python"),
        "{out}"
    );
    let (status, body) = up.post("/nohandler", "x").await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("main.py has no function 'nothere'"), "{body}");
    let (status, body) = up.post("/nomodule", "x").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("main.py is not in the zip"), "{body}");

    // The CLI deploys a zip of several files as such.
    let archive = dir.join("app.zip");
    std::fs::write(
        &archive,
        zip_of(&[
            ("main.py", b"from util import twice\n\ndef handler(event, context):\n    return twice(event['data'])\n"),
            ("util.py", b"def twice(text):\n    return text * 2\n"),
        ]),
    )
    .expect("zip");
    let (ok, out, err) = up.cli(&[
        "function",
        "deploy",
        "zipped",
        "--runtime",
        "python3.x",
        "--handler",
        "main.handler",
        "--from-file",
        archive.to_str().expect("utf-8 path"),
    ]);
    assert!(ok, "{out}{err}");
    assert_eq!(up.post("/zipped", "ab").await, (200, "abab".into()));
}

/// The host has the runtime compile a Python function's files to bytecode
/// once, in the background, into a folder of its own, and events load that
/// instead of compiling the source on every fresh instance: shown by
/// changing the sources under the host's feet (the folder is never changed
/// otherwise), which events then do not see until the bytecode is gone.
#[tokio::test(flavor = "multi_thread")]
async fn python_files_are_compiled_to_bytecode_once_and_events_use_it() {
    let dir = tempdir();
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let main = format!(
        "# {nonce}\nfrom helpers import shout\n\ndef handler(event, context):\n    return shout(event['data'])\n"
    );
    std::fs::write(
        dir.join("functions.yaml"),
        zipped(
            RUNTIME,
            "compiled",
            "main.handler",
            &[
                ("main.py", main.as_bytes()),
                (
                    "helpers.py",
                    b"def shout(text):\n    return text.upper() + '!'\n",
                ),
                // Never imported: it cannot compile, which is said, and the
                // function runs anyway.
                ("broken.py", b"def oops(:\n"),
            ],
        ),
    )
    .expect("manifest");
    // The host's own run is told by its environment and by where its event
    // comes from: a function whose spec sets the same variable still runs
    // its handler on every event.
    std::fs::write(
        dir.join("sneaky.yaml"),
        function(
            RUNTIME,
            "sneaky",
            "sneaky.handler",
            "def handler(event, context):\n    return 'handled'\n",
            "  env: [{name: WASMLESS_PRECOMPILE, value: '1'}]\n",
        ),
    )
    .expect("manifest");
    let up = source_up(&[&dir]);
    assert_eq!(up.post("/compiled", "hi").await, (200, "HI!".into()));
    assert_eq!(up.post("/sneaky", "hi").await, (200, "handled".into()));

    // The function's folder in the host's cache, found by its nonce, and
    // the bytecode folder of the same name.
    let cache = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("source-cache");
    let code = std::fs::read_dir(cache.join("code"))
        .expect("the code folders")
        .map(|entry| entry.expect("entry").path())
        .find(|folder| {
            std::fs::read_to_string(folder.join("main.py")).is_ok_and(|s| s.contains(&nonce))
        })
        .expect("the function's folder");
    let bytecode = cache
        .join("bytecode")
        .join(code.file_name().expect("a name"));
    let compiled = |module: &str| has_bytecode(&bytecode.join("kubeless"), module);
    let done = || bytecode_done(&bytecode);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "no bytecode in {}:\n{}",
            bytecode.display(),
            up.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        compiled("main") && compiled("helpers"),
        "{}",
        bytecode.display()
    );
    assert!(
        !compiled("broken"),
        "a file that does not compile has no .pyc"
    );
    assert!(
        !code.join("__pycache__").exists(),
        "the function's own folder is not written"
    );
    wait_for_log_line(
        &up,
        &[
            "did not compile",
            "broken.py",
            "line 1",
            "function=compiled",
        ],
    );

    // Both modules now come from their bytecode: new sources are not seen.
    std::fs::write(
        code.join("main.py"),
        "def handler(event, context):\n    return 'main.py changed'\n",
    )
    .expect("main.py");
    std::fs::write(
        code.join("helpers.py"),
        "def shout(text):\n    return 'helpers.py changed'\n",
    )
    .expect("helpers.py");
    assert_eq!(up.post("/compiled", "hi").await, (200, "HI!".into()));
    // Without it, the source is compiled again on each event.
    std::fs::remove_dir_all(bytecode.join("kubeless")).expect("remove the bytecode");
    assert_eq!(
        up.post("/compiled", "hi").await,
        (200, "main.py changed".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn parked_python_functions_wake_with_their_own_code_and_state() {
    let dir = tempdir();
    let manifest = dir.join("functions.yaml");
    let shout = "def handler(event, context):\n    return event['data'].upper()\n";
    std::fs::write(
        &manifest,
        format!(
            "{}{}",
            function(RUNTIME, "hello", "hello.handler", HELLO, ""),
            function(RUNTIME, "shout", "shout.handler", shout, "")
        ),
    )
    .expect("manifest");
    let up = source_up_with(&[&manifest], &["--unload-idle", "1s"]);
    let codes = || {
        let (_, listing, _) = up.cli(&["function", "ls"]);
        listing
            .lines()
            .filter(|l| l.starts_with("hello ") || l.starts_with("shout "))
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
            .collect::<Vec<_>>()
    };
    // Parked only once their runtime's optimized code is in place, which
    // a cold compile cache takes a while to make.
    let both_parked = || {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
        loop {
            let now = codes();
            if now.len() == 2 && now.iter().all(|c| c == "parked") {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never parked: {now:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    for round in ["one", "two"] {
        both_parked();
        // Woken, each runs its own module (its module-level code too), on
        // the runtime they share.
        assert_eq!(
            up.post("/hello", round).await,
            (200, format!("Hello, {round}!"))
        );
        assert_eq!(up.post("/shout", round).await, (200, round.to_uppercase()));
        assert_eq!(
            up.post("/hello", "again").await,
            (200, "Hello, again!".into())
        );
    }
}

/// Instances made ahead of events are told whether there is quiet time
/// before their event (`WASMLESS_WARM_UP`): with requests spaced out, `1`
/// (the runtime rehearses the event path, so the event finds it warm);
/// under steady load, `0` (the rehearsal would only add to each event's
/// CPU time). An instance made for its own event runs no `init`, and has
/// no hint.
#[tokio::test(flavor = "multi_thread")]
async fn instances_made_under_steady_load_skip_the_warm_up() {
    let dir = tempdir();
    let hint = "import os\n\ndef handler(event, context):\n    return os.environ.get('WASMLESS_WARM_UP', 'none')\n";
    std::fs::write(
        dir.join("functions.yaml"),
        function(RUNTIME, "hint", "hint.handler", hint, ""),
    )
    .expect("manifest");
    let up = source_up(&[&dir]);
    // Two events, so that the function is one whose next events get
    // instances made ahead (a lone event's does not).
    for _ in 0..2 {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        assert_eq!(up.post("/hint", "").await.0, 200);
    }

    let mut spaced = Vec::new();
    for _ in 0..4 {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        let (status, body) = up.post("/hint", "").await;
        assert_eq!(status, 200, "{body}");
        spaced.push(body);
    }
    assert!(spaced.iter().all(|b| b == "1"), "spaced out: {spaced:?}");

    let streams = (0..8).map(|_| async {
        let mut seen = Vec::new();
        for _ in 0..40 {
            let (status, body) = up.post("/hint", "").await;
            assert_eq!(status, 200, "{body}");
            seen.push(body);
        }
        seen
    });
    let under_load: Vec<String> = futures::future::join_all(streams)
        .await
        .into_iter()
        .flatten()
        .collect();
    let count = |v: &str| under_load.iter().filter(|b| *b == v).count();
    assert!(
        count("0") > 0 && count("0") + count("1") + count("none") == under_load.len(),
        "under load: {} told 0, {} told 1, {} made for their event",
        count("0"),
        count("1"),
        count("none")
    );
}

/// A `wasmless host` that writes its functions' files to `shared`, where
/// its pod's package installer containers install their packages (as a
/// pool pod does), serving the Function of `manifest`.
fn host_with_installers(shared: &std::path::Path, manifest: &str) -> common::Up {
    let dir = tempdir();
    std::fs::write(
        dir.join("function.yaml"),
        manifest.trim_end_matches("---\n"),
    )
    .expect("manifest");
    let cache = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("source-cache");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wasmless"));
    command
        .args(["host", "--function-dir"])
        .arg(&dir)
        .args(["--listen", "127.0.0.1:0", "--cache-dir"])
        .arg(&cache)
        .arg("--state-dir")
        .arg(tempdir())
        .arg("--runtimes-dir")
        .arg(common::root().join("runtimes/dist"))
        .arg("--installer-dir")
        .arg(shared);
    common::Up::spawn(command)
}

/// The Python installer container of a pool pod, as the operator runs it
/// (the script and the catalog's install command), here a local `sh` with
/// this machine's pip.
struct InstallerContainer(std::process::Child);

impl InstallerContainer {
    fn start(shared: &std::path::Path) -> Self {
        let catalog = wasmless::runtimes::Catalog::built_in();
        let command = &catalog
            .find(RUNTIME)
            .and_then(|e| e.install.as_ref())
            .expect("the Python runtime installs packages")
            .wasm_command;
        let script = wasmless::host::installer_script(
            shared.to_str().expect("utf-8 path"),
            wasmless::runtimes::Language::Python,
            command,
        );
        let child = std::process::Command::new("sh")
            .args(["-c", &script])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("sh");
        Self(child)
    }
}

impl Drop for InstallerContainer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pool_pods_installer_container_installs_its_functions_packages() {
    // Build the runtimes first (the shared cache compiles them once).
    common::wasm("hello");
    let greeting = wheel(
        "greeting",
        "def greet(name):\n    return f'Greetings, {name}'\n",
        false,
    );
    // Where packages come from is set in the Function's env, which reaches
    // the installer.
    let with_env = |manifest: String| {
        manifest.replace(
            "  functionContentType:",
            "  env:\n  - {name: PIP_FIND_LINKS, value: wheels}\n  functionContentType:",
        )
    };
    let greeter = with_env(zipped(
        RUNTIME,
        "greeter",
        "main.handler",
        &[
            ("main.py", b"import greeting\n\ndef handler(event, context):\n    return greeting.greet(event['data'])\n"),
            ("requirements.txt", b"--no-index\ngreeting\n"),
            ("wheels/greeting-1.0-py3-none-any.whl", &greeting),
        ],
    ));

    // A pod whose installer is not there yet says so.
    let lonely = tempdir();
    let mut host = host_with_installers(&lonely, &greeter);
    let (status, body) = host.post("/greeter", "Ada").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("this pool pod has no Python package installer yet"),
        "{body}"
    );
    assert!(host.terminate(std::time::Duration::from_secs(30)));

    let shared = tempdir();
    let _installer = InstallerContainer::start(&shared);
    let mark = shared.join(".wasmless-installer-python");
    for _ in 0..100 {
        if mark.is_file() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(mark.is_file(), "the installer did not start");

    let mut host = host_with_installers(&shared, &greeter);
    assert_eq!(
        host.post("/greeter", "Ada").await,
        (200, "Greetings, Ada".into()),
        "{}",
        host.log()
    );
    // The installed packages are in the function's folder, the request and
    // its files are gone.
    let folders: Vec<_> = std::fs::read_dir(&shared)
        .expect("shared folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    assert!(folders[0].join(".deps/greeting/__init__.py").is_file());
    let left: Vec<_> = std::fs::read_dir(&folders[0])
        .expect("function folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".wasmless-install"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(host.terminate(std::time::Duration::from_secs(30)));

    // The installer's failure is the load's error, with its last lines.
    let missing = with_env(zipped(
        RUNTIME,
        "missing",
        "main.handler",
        &[
            (
                "main.py",
                b"import nothere\n\ndef handler(event, context):\n    return 'x'\n",
            ),
            ("requirements.txt", b"--no-index\nnothere-at-all\n"),
        ],
    ));
    let mut host = host_with_installers(&shared, &missing);
    let (status, body) = host.post("/missing", "x").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("requirements.txt: pip could not install the packages")
            && body.contains("nothere-at-all"),
        "{body}"
    );
    assert!(host.terminate(std::time::Duration::from_secs(30)));
}

/// What a busy function's events see of its module-level state and of its
/// environment.
const BUSY: &str = r#"
import gc
import os
calls = 0
greeting = "Hello"

class Node:
    pass

def handler(event, context):
    global calls
    calls += 1
    seen = sorted(k for k in os.environ if k.startswith("WASMLESS_SNAPSHOT") or k in ("MOD_NAME", "GREETING_TO"))
    print("busy: call", calls)
    # A reference cycle made by the event: garbage the collector finds.
    a, b = Node(), Node()
    a.other, b.other = b, a
    del a, b
    collected = gc.collect()
    return {"calls": calls, "greeting": f"{greeting}, {os.environ.get('GREETING_TO')}", "data": event["data"], "env": seen,
            "frozen": gc.get_freeze_count(), "collected": collected}
"#;

/// Module-level code that prints: its instance holds the stdout stream.
const LOUD: &str =
    "print('loud: module loaded')\n\ndef handler(event, context):\n    return 'loud'\n";

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_python_function_gets_its_own_snapshot_and_each_event_still_starts_fresh() {
    let dir = tempdir();
    let env = "  env:\n  - name: GREETING_TO\n    value: world\n";
    std::fs::write(
        dir.join("functions.yaml"),
        format!(
            "{}{}",
            function(RUNTIME, "busy", "busy.handler", BUSY, env),
            function(RUNTIME, "loud", "loud.handler", LOUD, ""),
        ),
    )
    .expect("manifest");
    let up = source_up_with(&[&dir], &["--snapshot-after", "16"]);
    let before = serde_json::from_str::<serde_json::Value>(&up.post("/busy", "before").await.1)
        .expect("json");
    // The runtime's optimized code first (as on a machine that compiled it
    // before): the code swapped in is still the shared runtime's, which a
    // snapshot is made from.
    wait_for_optimized_code(&up).await;

    drive_back_to_back(&up, ["/busy", "/loud"], 25).await;
    wait_long_for_log_line(&up, &["snapshot in place", "busy"]);
    wait_long_for_log_line(
        &up,
        &["no snapshot", "loud", "left files, folders or streams open"],
    );

    assert!(code_of(&up, "busy").starts_with("snapshot"));
    assert!(!code_of(&up, "loud").starts_with("snapshot"));

    // On the snapshot, each event still gets a fresh instance: the module's
    // state as its code left it, the function's own environment (not the
    // snapshot run's), its output in the log.
    for data in ["one", "two", "three"] {
        let (status, body) = up.post("/busy", data).await;
        assert_eq!(status, 200, "{body}");
        let answer: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(answer["calls"], 1, "{body}");
        assert_eq!(answer["greeting"], "Hello, world", "{body}");
        assert_eq!(answer["data"], data, "{body}");
        assert_eq!(answer["env"], before["env"], "{body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        before["env"],
        serde_json::json!(["GREETING_TO", "MOD_NAME"])
    );
    // The snapshots leave the objects alive in them out of the collector's
    // passes (the runtime's in its own, the module's too in the
    // function's); the garbage an event makes is still collected.
    let frozen = |answer: &serde_json::Value| answer["frozen"].as_u64().expect("frozen");
    assert!(frozen(&before) > 10_000, "{before}");
    assert!(before["collected"].as_u64() >= Some(2), "{before}");
    let (status, body) = up.post("/busy", "four").await;
    assert_eq!(status, 200, "{body}");
    let after: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert!(frozen(&after) > frozen(&before), "{before} {after}");
    assert!(after["collected"].as_u64() >= Some(2), "{after}");
    assert_eq!(up.post("/loud", "").await, (200, "loud".to_owned()));
    wait_for_log_line(&up, &["busy: call 1"]);
}
