//! Security and reliability of `wasmless up` around the sandbox: who can
//! reach the admin API, and what slow or hostile clients can hold. The real
//! binary, on a loopback port and its Unix socket.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use common::{Up, manifest_inline, tempdir, wat_writing};

/// Sends one raw HTTP/1.1 request over the Unix socket at `socket` and
/// returns the status and body.
async fn over_socket(
    socket: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .expect("connect to the admin socket");
    common::exchange(stream, method, path, headers, body).await
}

fn planted() -> String {
    manifest_inline("planted", &wat_writing("planted"), "")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebinding_web_page_cannot_reach_the_admin_api() {
    let up = Up::start(&[]);
    // A page whose name now resolves to 127.0.0.1 talks to the function
    // port, with its own Host and Origin; a local reverse proxy forwards
    // with a local Host. Neither finds an admin API there.
    for headers in [
        vec![
            ("host", "attacker.example:8080"),
            ("origin", "http://attacker.example:8080"),
            ("content-type", "application/yaml"),
        ],
        vec![("host", "127.0.0.1"), ("content-type", "application/yaml")],
    ] {
        let (status, body) = up
            .request_with("PUT", "/_wasmless/apply", &headers, planted().as_bytes())
            .await;
        assert_eq!(status, 404, "{body}");
        assert!(body.contains("not on the function port"), "{body}");
    }
    let (status, _) = up.get("/_wasmless/functions").await;
    assert_eq!(status, 404);

    // The socket is where the CLI looks for it, private to this user.
    let socket = wasmless::up::admin_socket::socket_for_url(&up.url).expect("a URL");
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&socket), 0o600, "{}", socket.display());
    assert_eq!(mode(socket.parent().expect("a folder")), 0o700);

    // A browser's request that reaches the socket anyway is refused, and so
    // is one for another host.
    for (headers, why) in [
        (vec![("host", "localhost"), ("origin", "null")], "origin"),
        (
            vec![("host", "localhost"), ("sec-fetch-site", "cross-site")],
            "sec-fetch-site",
        ),
        (vec![("host", "attacker.example")], "attacker.example"),
    ] {
        let (status, body) = over_socket(
            &socket,
            "PUT",
            "/_wasmless/apply",
            &headers,
            planted().as_bytes(),
        )
        .await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains(why), "{body}");
    }
    let (ok, listed, err) = up.cli(&["function", "ls"]);
    assert!(ok, "{err}");
    assert!(!listed.contains("planted"), "{listed}");
    let (status, _) = up.post("/planted", "").await;
    assert_eq!(status, 404, "nothing was deployed");

    // The CLI's own way in works, with nothing but the URL to go on.
    let (status, body) = over_socket(
        &socket,
        "PUT",
        "/_wasmless/apply",
        &[("host", "localhost"), ("content-type", "application/yaml")],
        planted().as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(up.post("/planted", "").await, (200, "planted".into()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmless"))
        .args(["function", "ls"])
        .env("WASMLESS_URL", &up.url)
        .output()
        .expect("runs");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{listed}");
    assert!(listed.contains("planted"), "{listed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_socket_is_not_taken_over_and_goes_away_with_up() {
    let folder = tempdir();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let socket = folder.join("admin.sock");
    let socket_arg = socket.to_str().expect("a UTF-8 path");
    let mut up = Up::start_with(&[], &["--admin-socket", socket_arg]);
    assert_eq!(
        std::fs::metadata(&folder)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777,
        0o700,
        "the folder is made private"
    );

    // A second `up` on another port may not take a live socket over.
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_wasmless"))
        .args(["up", "--listen", "127.0.0.1:0", "--no-cache"])
        .args(["--admin-socket", socket_arg])
        .arg("--state-dir")
        .arg(tempdir())
        .output()
        .expect("runs");
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another wasmless up answers on this admin socket"),
        "{err}"
    );

    // The CLI given the socket reaches the first one.
    let url = up.url.clone();
    let list = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_wasmless"))
            .args([
                "function",
                "ls",
                "--url",
                &url,
                "--admin-socket",
                socket_arg,
            ])
            .output()
            .expect("runs")
    };
    let out = list();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    assert!(up.terminate(Duration::from_secs(30)), "stops on SIGTERM");
    assert!(!socket.exists(), "the socket is removed when up stops");

    // With no `up` there, the CLI says where it looked.
    let out = list();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach the admin API") && err.contains(socket_arg),
        "{err}"
    );
}

/// Reads what the server sends on `stream` until it closes it, within
/// `limit`; `None` if it is still open then.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt as _;
    let mut answer = Vec::new();
    match tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await {
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_are_cut_off_and_open_connections_are_bounded() {
    use tokio::io::AsyncWriteExt as _;
    let dir = tempdir();
    std::fs::write(
        dir.join("hello.yaml"),
        manifest_inline("hello", &wat_writing("hi"), ""),
    )
    .expect("manifest");
    let up = Up::start_with(
        &[&dir],
        &[
            "--header-timeout",
            "1s",
            "--body-timeout",
            "1s",
            "--max-connections",
            "6",
        ],
    );
    let address = up.url.trim_start_matches("http://").to_owned();
    let connect = || tokio::net::TcpStream::connect(address.clone());

    // Headers that never end: the connection is closed after the timeout.
    let mut stalled = connect().await.expect("connects");
    stalled
        .write_all(b"POST /hello HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .expect("write");
    assert!(
        read_until_closed(&mut stalled, Duration::from_secs(10))
            .await
            .is_some(),
        "a connection whose headers never end is closed"
    );

    // A body that never arrives: 408, naming the limit.
    let mut slow = connect().await.expect("connects");
    slow.write_all(
        b"POST /hello HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\nonly ten b",
    )
    .await
    .expect("write");
    let answer = read_until_closed(&mut slow, Duration::from_secs(10))
        .await
        .expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive within 1s"), "{answer}");

    // Six open connections take all there are: the seventh gets 503.
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(connect().await.expect("connects"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = connect().await.expect("the kernel still accepts");
    let answer = read_until_closed(&mut extra, Duration::from_secs(5))
        .await
        .expect("answered and closed at once");
    assert!(
        answer.starts_with("HTTP/1.1 503") && answer.contains("--max-connections"),
        "{answer}"
    );
    // The idle ones time out and free their places; the function answers.
    for stream in &mut held {
        assert!(
            read_until_closed(stream, Duration::from_secs(10))
                .await
                .is_some(),
            "an idle connection is closed"
        );
    }
    assert_eq!(up.post("/hello", "").await, (200, "hi".into()));
    assert!(up.log().contains("refused 1 more"), "{}", up.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_host_refuses_one_more_function_and_keeps_the_others() {
    let up = Up::start_with(&[], &["--max-functions", "2"]);
    let socket = wasmless::up::admin_socket::socket_for_url(&up.url).expect("a URL");
    let apply = |yaml: String| {
        let socket = socket.clone();
        async move {
            over_socket(
                &socket,
                "PUT",
                "/_wasmless/apply",
                &[("host", "localhost"), ("content-type", "application/yaml")],
                yaml.as_bytes(),
            )
            .await
        }
    };
    let three: String = ["one", "two", "three"]
        .iter()
        .map(|name| manifest_inline(name, &wat_writing(name), ""))
        .collect();
    let (status, body) = apply(three).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains(
            "three was not deployed: this host holds 2 functions, its limit (--max-functions)"
        ),
        "{body}"
    );
    assert_eq!(up.post("/one", "").await, (200, "one".into()));
    assert_eq!(up.post("/two", "").await, (200, "two".into()));
    assert_eq!(up.post("/three", "").await.0, 404);
    // A new version of one it holds is no new function.
    let (status, body) = apply(manifest_inline("two", &wat_writing("two, again"), "")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(up.post("/two", "").await, (200, "two, again".into()));
    // Room made, it fits.
    let (ok, _, err) = up.cli(&["function", "delete", "one"]);
    assert!(ok, "{err}");
    let (status, body) = apply(manifest_inline("three", &wat_writing("three"), "")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(up.post("/three", "").await, (200, "three".into()));
}

/// A command module of `functions` functions, each `pairs` times
/// `i32.const 1; drop`: nothing pathological, only big, so that its compile
/// takes far longer than the limit the test sets.
fn big_module(functions: usize, pairs: usize) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    fn section(id: u8, payload: &[u8], out: &mut Vec<u8>) {
        out.push(id);
        leb(payload.len(), out);
        out.extend_from_slice(payload);
    }
    let mut wasm = b"\0asm\x01\0\0\0".to_vec();
    section(1, &[1, 0x60, 0, 0], &mut wasm);
    let mut funcs = Vec::new();
    leb(functions, &mut funcs);
    funcs.resize(funcs.len() + functions, 0);
    section(3, &funcs, &mut wasm);
    let mut exports = vec![1, 6];
    exports.extend_from_slice(b"_start");
    exports.extend_from_slice(&[0, 0]);
    section(7, &exports, &mut wasm);
    let mut body = vec![0];
    for _ in 0..pairs {
        body.extend_from_slice(&[0x41, 0x01, 0x1a]);
    }
    body.push(0x0b);
    let mut code = Vec::new();
    leb(functions, &mut code);
    for _ in 0..functions {
        leb(body.len(), &mut code);
        code.extend_from_slice(&body);
    }
    section(10, &code, &mut wasm);
    wasm
}

#[tokio::test(flavor = "multi_thread")]
async fn a_module_slow_to_compile_is_refused_at_the_limit_and_the_others_serve() {
    let dir = common::tempdir();
    std::fs::write(
        dir.join("good.yaml"),
        common::manifest_inline("good", &common::wat_writing("fine"), ""),
    )
    .expect("write");
    // About 60 MB of code: a second or more to compile here.
    std::fs::write(dir.join("big.wasm"), big_module(4000, 5000)).expect("write");
    std::fs::write(
        dir.join("big.yaml"),
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: big}\nspec: {file: big.wasm}\n",
    )
    .expect("write");
    let up = common::Up::start_with(&[&dir], &["--compile-timeout", "100ms"]);
    common::source::wait_for_log_line(&up, &["big", "took longer than 100ms", "--compile-timeout"]);
    assert_eq!(up.get("/good").await, (200, "fine".into()));
    let (status, body) = up.get("/big").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("--compile-timeout"), "{body}");
    // A deploy after it compiles while the refused compile goes on.
    std::fs::write(
        dir.join("late.yaml"),
        common::manifest_inline("late", &common::wat_writing("late"), ""),
    )
    .expect("write");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while up.get("/late").await != (200, "late".into()) {
        assert!(
            std::time::Instant::now() < deadline,
            "late never answered: {}",
            up.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
