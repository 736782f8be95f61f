//! Shared fixtures: guest modules built from source in the test run, and a
//! real `wasmless up` process on an ephemeral loopback port.

#![allow(dead_code)]

pub mod cluster;
pub mod source;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The settings of a wasm function called `name` loaded in-process: a
/// 5 s timeout, 64 MiB of memory, nothing else granted.
pub fn wasm_settings(name: &str) -> wasmless::host::FunctionSettings {
    wasmless::host::FunctionSettings {
        name: name.into(),
        runtime: "wasm".into(),
        timeout: Duration::from_secs(5),
        memory_limit: 64 << 20,
        env: Vec::new(),
        mounts: Vec::new(),
        outbound: Default::default(),
        events_per_instance: 1,
    }
}

/// An HTTP event: a POST to `path` with the body `Ada`.
pub fn http_event(path: &str) -> wasmless::host::Event {
    let mut event = wasmless::host::Event::new(
        bytes::Bytes::from_static(b"Ada"),
        "text/plain",
        wasmless::host::HTTP_NAMESPACE,
    );
    event.request = Some(wasmless::host::HttpRequest {
        method: "POST".into(),
        path: path.into(),
        ..wasmless::host::HttpRequest::default()
    });
    event
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The path of an example or test guest, built to wasm (once per test run)
/// by the same script users run.
pub fn wasm(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let status = Command::new("bash")
            .arg(root().join("examples/build.sh"))
            .env("WASMLESS_BIN", env!("CARGO_BIN_EXE_wasmless"))
            .status()
            .expect("running examples/build.sh");
        assert!(status.success(), "examples/build.sh failed");
    });
    let path = root().join("examples/wasm").join(format!("{name}.wasm"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A fresh temporary folder.
pub fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("wasmless-test-{}", uuid_like()));
    std::fs::create_dir_all(&dir).expect("creating a temp dir");
    dir
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        Instant::now().elapsed().as_nanos()
    )
}

/// A Function manifest for a module file.
pub fn manifest_for_file(name: &str, file: &Path, extra: &str) -> String {
    format!(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata:\n  name: {name}\nspec:\n  file: {}\n{extra}---\n",
        file.display()
    )
}

/// A Function manifest with inline WAT.
pub fn manifest_inline(name: &str, wat: &str, extra: &str) -> String {
    let indented: String = wat.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata:\n  name: {name}\nspec:\n  function: |\n{indented}{extra}---\n"
    )
}

/// A WASI command (in WAT) that writes `text` to stdout.
pub fn wat_writing(text: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{text}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        len = text.len()
    )
}

/// A running `wasmless up`, stopped when dropped.
pub struct Up {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Everything it wrote to stderr so far.
    pub stderr: Arc<Mutex<String>>,
}

impl Up {
    /// Starts `wasmless up` on `paths` with a fresh compile cache.
    pub fn start(paths: &[&Path]) -> Up {
        Self::start_with(paths, &[])
    }

    /// Same, with extra command-line arguments.
    pub fn start_with(paths: &[&Path], args: &[&str]) -> Up {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wasmless"));
        command
            .arg("up")
            .args(paths)
            .args(["--listen", "127.0.0.1:0"]);
        if !args.contains(&"--cache-dir") {
            command.arg("--cache-dir").arg(tempdir());
        }
        if !args.contains(&"--state-dir") {
            command.arg("--state-dir").arg(tempdir());
        }
        command.args(args);
        Self::spawn(command)
    }

    /// Starts `wasmless host` on the function folder `dir` (as a pod runs
    /// it), on a loopback port with fresh cache and state folders, with
    /// `env` added to its environment.
    pub fn host(dir: &Path, env: &[(&str, &std::ffi::OsStr)]) -> Up {
        let mut command = Command::new(env!("CARGO_BIN_EXE_wasmless"));
        command
            .args(["host", "--function-dir"])
            .arg(dir)
            .args(["--listen", "127.0.0.1:0", "--cache-dir"])
            .arg(tempdir())
            .arg("--state-dir")
            .arg(tempdir())
            .envs(env.iter().copied());
        Self::spawn(command)
    }

    /// Runs `command` (a `wasmless up` or `wasmless host`), and waits until
    /// it says where it listens.
    pub fn spawn(mut command: Command) -> Up {
        let mut child = command
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting wasmless");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut all = sink.lock().expect("stderr log");
                all.push_str(&line);
                all.push('\n');
            }
        });
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some((_, url)) = line.split_once(": listening on ") {
                    let _ = tx.send(url.to_owned());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                panic!("wasmless did not start: {}", stderr.lock().expect("log"));
            }
        };
        Up { child, url, stderr }
    }

    /// Sends a request and returns the status and body.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> (u16, String) {
        let answer = wasmless::client::send(
            method.parse().expect("valid method"),
            &format!("{}{path}", self.url),
            content_type,
            body.to_vec(),
        )
        .await
        .expect("request reaches up");
        (
            answer.status.as_u16(),
            String::from_utf8_lossy(&answer.body).into_owned(),
        )
    }

    /// Sends a request with these headers (`host` among them, if given)
    /// over a plain HTTP/1.1 connection, and returns the status and body.
    pub async fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, String) {
        let address = self.url.trim_start_matches("http://");
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect to up");
        let host = [("host", address)];
        let default_host = if headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            &[][..]
        } else {
            &host[..]
        };
        let headers: Vec<(&str, &str)> = default_host.iter().chain(headers).copied().collect();
        exchange(stream, method, path, &headers, body).await
    }

    /// GET `path`.
    pub async fn get(&self, path: &str) -> (u16, String) {
        self.request("GET", path, None, b"").await
    }

    /// POST `body` to `path`.
    pub async fn post(&self, path: &str, body: &str) -> (u16, String) {
        self.request("POST", path, Some("text/plain"), body.as_bytes())
            .await
    }

    /// Polls `path` until it answers `new`, within `limit`; until then
    /// only `old` may answer (a swap never shows a third state).
    pub async fn wait_for_swap(&self, path: &str, old: &str, new: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let (status, body) = self.get(path).await;
            assert_eq!(status, 200);
            if body == new {
                return;
            }
            assert_eq!(body, old, "only the old or the new version may answer");
            assert!(
                Instant::now() < deadline,
                "{path} did not switch to {new}: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `wasmless ARGS --url <this up>` and returns (success, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_wasmless"))
            .args(args)
            .args(["--url", &self.url])
            .output()
            .expect("running the wasmless CLI");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// What `up` has written to stderr.
    pub fn log(&self) -> String {
        self.stderr.lock().expect("log").clone()
    }

    /// Asks `up` to stop (SIGTERM, as a process manager would) and waits
    /// for it to exit; true if it exited on its own within `limit`.
    pub fn terminate(&mut self, limit: Duration) -> bool {
        self.signal_term() && self.wait_exit(limit)
    }

    /// Sends SIGTERM and returns at once; true if it was sent.
    pub fn signal_term(&self) -> bool {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Waits for the process to exit on its own; true if it did within
    /// `limit` (otherwise it is killed).
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }

    /// Kills `up` at once (SIGKILL), as a crash would.
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The process's resident memory in bytes, from /proc.
    pub fn resident_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the process is running");
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("VmRSS in /proc/PID/status");
        kib * 1024
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Serves `files` (path -> body) over real HTTP on a loopback port, plus
/// `/moved`, a redirect to the first file. Returns `http://127.0.0.1:PORT`.
pub async fn serve_files(files: Vec<(&'static str, Vec<u8>)>) -> String {
    FileServer::start(files).await.url
}

/// A file server ([`serve_files`]) that can be taken down: a mirror in an
/// outage answers 503.
pub struct FileServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// While set, every request gets 503.
    pub down: Arc<std::sync::atomic::AtomicBool>,
    /// How many requests came.
    pub requests: Arc<std::sync::atomic::AtomicUsize>,
}

impl FileServer {
    /// Serves `files` on a loopback port, up.
    pub async fn start(files: Vec<(&'static str, Vec<u8>)>) -> Self {
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let url = serve(files, down.clone(), requests.clone()).await;
        Self {
            url,
            down,
            requests,
        }
    }
}

async fn serve(
    files: Vec<(&'static str, Vec<u8>)>,
    down: Arc<std::sync::atomic::AtomicBool>,
    requests: Arc<std::sync::atomic::AtomicUsize>,
) -> String {
    use http_body_util::Full;
    use std::sync::atomic::Ordering;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding");
    let addr = listener.local_addr().expect("address");
    let files = Arc::new(files);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let files = files.clone();
            let down = down.clone();
            let requests = requests.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let files = files.clone();
                        requests.fetch_add(1, Ordering::SeqCst);
                        let down = down.load(Ordering::SeqCst);
                        async move {
                            let path = req.uri().path();
                            let mut response = hyper::Response::new(Full::new(bytes::Bytes::new()));
                            if down {
                                *response.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                                *response.body_mut() =
                                    Full::new(bytes::Bytes::from("mirror in maintenance"));
                            } else if path == "/moved" {
                                *response.status_mut() = hyper::StatusCode::FOUND;
                                response
                                    .headers_mut()
                                    .insert("location", files[0].0.parse().expect("header"));
                            } else if let Some((_, body)) = files.iter().find(|(p, _)| *p == path) {
                                *response.body_mut() = Full::new(bytes::Bytes::from(body.clone()));
                            } else {
                                *response.status_mut() = hyper::StatusCode::NOT_FOUND;
                            }
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

/// Sends one HTTP/1.1 request, exactly these headers plus its length and
/// `connection: close`, on `stream` (TCP or a Unix socket), and returns the
/// status and body.
pub async fn exchange<S>(
    mut stream: S,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(body).await.expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, body.to_owned())
}
