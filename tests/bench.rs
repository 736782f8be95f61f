//! `wasmless bench`: the cold-start and warm measurements and their
//! helpers, run against a real `wasmless up`.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Up, manifest_for_file, tempdir, wasm};

/// The cells of the markdown table rows of `out` whose kind is one of
/// `kinds`.
fn table_rows<'a>(out: &'a str, kinds: &[&str]) -> Vec<Vec<&'a str>> {
    out.lines()
        .filter(|l| kinds.iter().any(|k| l.starts_with(&format!("| {k} "))))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn cold_start_reports_cold_and_warm_rows_and_cleans_up() {
    let dir = tempdir();
    let manifest = dir.join("functions.yaml");
    std::fs::write(&manifest, manifest_for_file("hello", &wasm("hello"), "")).expect("manifest");
    let up = Up::start(&[&manifest]);
    let hello = wasm("hello");
    let command = wasm("command");
    let module_a = format!("sdk={}", hello.display());
    let module_b = format!("cmd={}", command.display());
    let (ok, out, err) = up.cli(&[
        "bench",
        "cold-start",
        "--trials",
        "3",
        "--module",
        &module_a,
        "--module",
        &module_b,
    ]);
    assert!(ok, "{out}{err}");
    let rows = table_rows(&out, &["sdk", "cmd"]);
    assert_eq!(rows.len(), 4, "{out}");
    for row in &rows {
        // | kind | module | cache | trials | min | p50 | p99 | deploy p50 |
        assert_eq!(row[4], "3", "{row:?}");
        let min: f64 = row[5].parse().expect("min ms");
        let p50: f64 = row[6].parse().expect("p50 ms");
        let p99: f64 = row[7].parse().expect("p99 ms");
        assert!(0.0 < min && min <= p50 && p50 <= p99, "{row:?}");
    }
    assert_eq!(rows[0][3], "cold");
    assert_eq!(rows[1][3], "warm");
    // A cold start compiles and a warm one does not: cold is the slower.
    let p50 = |row: &Vec<&str>| row[6].parse::<f64>().expect("p50");
    assert!(p50(&rows[0]) > p50(&rows[1]), "{out}");
    // The trial functions are deleted afterwards.
    let (_, listing, _) = up.cli(&["function", "ls"]);
    assert_eq!(listing.lines().count(), 2, "only hello is left:\n{listing}");
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_reports_a_row_per_kind_and_cleans_up() {
    let dir = tempdir();
    let up = Up::start(&[&dir]);
    let module_a = format!("sdk={}", wasm("hello").display());
    let module_b = format!("http={}", wasm("http-hello").display());
    let (ok, out, err) = up.cli(&[
        "bench",
        "warm",
        "--requests",
        "20",
        "--pause",
        "1ms",
        "--module",
        &module_a,
        "--module",
        &module_b,
    ]);
    assert!(ok, "{out}{err}");
    let rows = table_rows(&out, &["sdk", "http"]);
    assert_eq!(rows.len(), 2, "{out}");
    for row in &rows {
        // | kind | requests | min | p50 | p90 | p99 |
        assert_eq!(row[2], "20", "{row:?}");
        let times: Vec<f64> = row[3..7].iter().map(|t| t.parse().expect("ms")).collect();
        assert!(0.0 < times[0], "{row:?}");
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{row:?}");
    }
    assert!(err.contains("sdk: 20 requests, 1 ms apart"), "{err}");
    let (_, listing, _) = up.cli(&["function", "ls"]);
    assert_eq!(
        listing.lines().count(),
        1,
        "only the header is left:\n{listing}"
    );
    let (ok, _, err) = up.cli(&["bench", "warm", "--requests", "0"]);
    assert!(!ok);
    assert!(err.contains("--requests must be at least 1"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deploy_many_makes_distinct_functions() {
    let dir = tempdir();
    let up = Up::start(&[&dir]);
    let hello = wasm("hello");
    let (ok, out, err) = up.cli(&[
        "bench",
        "deploy",
        "--count",
        "3",
        "--module",
        &hello.to_string_lossy(),
        "--prefix",
        "idle",
    ]);
    assert!(ok, "{out}{err}");
    let (_, listing, _) = up.cli(&["function", "ls"]);
    for n in 0..3 {
        assert!(listing.contains(&format!("idle-{n}")), "{listing}");
    }
    assert_eq!(
        up.post("/idle-2", "Ada").await,
        (200, "Hello, Ada!\n".into())
    );
    // Each answered first on baseline code; the optimized code replaces it
    // in the background.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, listing, _) = up.cli(&["function", "ls"]);
        let optimized = listing
            .lines()
            .filter(|l| l.starts_with("idle-") && l.contains(" optimized "))
            .count();
        if optimized == 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{listing}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        up.post("/idle-0", "Bob").await,
        (200, "Hello, Bob!\n".into())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ceiling_server_answers_hello_world() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("address")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmless"))
        .args(["bench", "ceiling", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .spawn()
        .expect("starting the ceiling server");
    let url = format!("http://127.0.0.1:{port}/");
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(a) = wasmless::client::send(http::Method::GET, &url, None, Vec::new()).await {
            answer = Some(a);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    let answer = answer.expect("the ceiling server answers");
    assert_eq!(answer.status, 200);
    assert_eq!(&answer.body[..], b"hello world");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_functions_are_parked_and_wake_on_their_next_event() {
    let dir = tempdir();
    let manifest = dir.join("functions.yaml");
    std::fs::write(&manifest, manifest_for_file("hello", &wasm("hello"), "")).expect("manifest");
    let up = Up::start_with(&[&manifest], &["--unload-idle", "1s"]);
    let code = |listing: &str| {
        listing
            .lines()
            .find(|l| l.starts_with("hello "))
            .and_then(|l| l.split_whitespace().nth(3))
            .unwrap_or_default()
            .to_owned()
    };
    let wait_for = |wanted: &'static str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let (_, listing, _) = up.cli(&["function", "ls"]);
            if code(&listing) == wanted {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never {wanted}:\n{listing}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("parked");
    assert_eq!(
        up.post("/hello", "Ada").await,
        (200, "Hello, Ada!\n".into())
    );
    let (_, listing, _) = up.cli(&["function", "ls"]);
    assert_eq!(code(&listing), "optimized", "{listing}");
    wait_for("parked");
    // Many events at once on a parked function all answer.
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..20 {
        let url = format!("{}/hello", up.url);
        calls.spawn(async move {
            let answer = wasmless::client::send(
                http::Method::POST,
                &url,
                Some("text/plain"),
                format!("n{i}").into_bytes(),
            )
            .await
            .expect("up answers");
            (i, answer.status.as_u16(), answer.body)
        });
    }
    while let Some(done) = calls.join_next().await {
        let (i, status, body) = done.expect("the call ran");
        assert_eq!(status, 200);
        assert_eq!(&body[..], format!("Hello, n{i}!\n").as_bytes());
    }
}
