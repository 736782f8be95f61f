//! YAML syntax errors in manifests, through a real `wasmless up`: each is
//! reported with its file, line and column at once, and neither start-up
//! nor a running `up` is held up by it.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Up, manifest_inline, tempdir, wat_writing};

/// Common typos, each with the line it is on (from 1) in the file written
/// by [`broken`].
const TYPOS: [(&str, &str, u64); 5] = [
    ("an unquoted colon in a value", "x: a: b\n", 1),
    ("a tab in the indentation", "spec:\n\tfunction: x\n", 2),
    (
        "an unclosed flow mapping",
        "metadata: {name: a\nspec: {}\n",
        2,
    ),
    ("an alias to no anchor", "spec: *nowhere\n", 1),
    (
        "a bare scalar",
        "this line is not a manifest\n",
        // Not a syntax error: the document is reported, without a position.
        0,
    ),
];

/// More than `up` needs for a few small functions; the typo above took
/// gigabytes within seconds.
const MEMORY_LIMIT: u64 = 512 << 20;

/// How long an error may take to show up in the log.
const DEADLINE: Duration = Duration::from_secs(5);

/// The typo `text` alone in a file.
fn broken(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
}

/// Waits until the log, from byte `from` on, has a line holding every one
/// of `parts`.
async fn wait_for_log(up: &Up, from: usize, parts: &[&str]) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let log = up.log();
        if log[from..]
            .lines()
            .any(|l| parts.iter().all(|p| l.contains(p)))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no line with {parts:?} within {DEADLINE:?}: {log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn position(line: u64) -> String {
    format!("at line {line}, column")
}

#[tokio::test]
async fn yaml_typos_at_start_up_are_reported_and_the_other_files_serve() {
    let dir = tempdir();
    std::fs::write(
        dir.join("good.yaml"),
        manifest_inline("good", &wat_writing("fine"), ""),
    )
    .expect("write");
    for (i, (_, text, _)) in TYPOS.iter().enumerate() {
        broken(&dir, &format!("typo-{i}.yaml"), text);
    }
    let up = Up::start(&[&dir]);
    for (i, (what, _, line)) in TYPOS.iter().enumerate() {
        let file = format!("typo-{i}.yaml: document 1: ");
        if *line == 0 {
            wait_for_log(&up, 0, &[&file, "not a Kubernetes object"]).await;
        } else {
            wait_for_log(&up, 0, &[&file, "not valid YAML", &position(*line)]).await;
        }
        assert_eq!(up.get("/healthz").await.0, 200, "{what}");
    }
    assert_eq!(up.get("/good").await, (200, "fine".into()));
    assert!(
        up.resident_bytes() < MEMORY_LIMIT,
        "up holds {} bytes",
        up.resident_bytes()
    );
}

#[tokio::test]
async fn a_yaml_typo_saved_under_the_watcher_keeps_the_running_version() {
    let dir = tempdir();
    let manifest = dir.join("edited.yaml");
    let version = |v: &str| manifest_inline("edited", &wat_writing(v), "");
    std::fs::write(&manifest, version("v1")).expect("write");
    std::fs::write(
        dir.join("other.yaml"),
        manifest_inline("other", &wat_writing("other"), ""),
    )
    .expect("write");
    let up = Up::start(&[&dir]);
    assert_eq!(up.get("/edited").await, (200, "v1".into()));

    for (what, text, line) in TYPOS {
        // A valid new version followed by the typo: the file as a whole is
        // broken, so the running version keeps serving.
        let lines_before = version("v2").lines().count() as u64;
        let from = up.log().len();
        std::fs::write(&manifest, format!("{}{text}", version("v2"))).expect("write");
        let at = position(lines_before + line);
        let expected = if line == 0 {
            ["edited.yaml: document 2: ", "not a Kubernetes object"]
        } else {
            ["edited.yaml: document 2: not valid YAML", &at]
        };
        let keeps = "(the running versions keep serving)";
        wait_for_log(&up, from, &[expected[0], expected[1], keeps]).await;
        assert_eq!(up.get("/healthz").await.0, 200, "{what}");
        assert_eq!(up.get("/edited").await, (200, "v1".into()), "{what}");
        assert_eq!(up.get("/other").await, (200, "other".into()), "{what}");
        assert!(
            up.resident_bytes() < MEMORY_LIMIT,
            "{what}: up holds {} bytes",
            up.resident_bytes()
        );
    }

    // Fixing the file loads the new version.
    std::fs::write(&manifest, version("v3")).expect("write");
    let deadline = Instant::now() + DEADLINE;
    while up.get("/edited").await.1 != "v3" {
        assert!(
            Instant::now() < deadline,
            "the fix was not loaded: {}",
            up.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Found by the cron fuzz target: a schedule with an empty list item
/// (`, * * * *`) made the check of its next tick run for minutes, and
/// `up` stopped there. It is refused at once, naming the field.
#[tokio::test]
async fn a_schedule_with_an_empty_list_item_is_refused_at_once() {
    let dir = tempdir();
    std::fs::write(
        dir.join("good.yaml"),
        manifest_inline("good", &wat_writing("fine"), ""),
    )
    .expect("write");
    broken(
        &dir,
        "cron.yaml",
        "apiVersion: wasmless.io/v1alpha1\nkind: CronTrigger\nmetadata: {name: tick}\nspec:\n  function: good\n  schedule: \", * * * *\"\n",
    );
    let up = Up::start(&[&dir]);
    wait_for_log(
        &up,
        0,
        &[
            "cron.yaml",
            "spec.schedule",
            "minute field `,` has an empty item",
        ],
    )
    .await;
    assert_eq!(up.get("/good").await, (200, "fine".into()));
}
