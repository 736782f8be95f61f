//! The container-image fallback under `wasmless up`: with no container
//! engine, a fallback function runs on this machine as a process of its
//! runtime's server (the one in its image, `runtimes/images/*/`), started
//! with the local interpreter. Events reach it over HTTP on loopback with
//! the same contract as in a cluster.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::host::{Event, Host, InvokeError, Response};
use crate::runtimes::catalog::{Local, LocalServer};

/// How long a server may take to start (import the function's module).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest response read back from a function.
const MAX_RESPONSE: usize = 16 << 20;
/// Headers of the server's reply that are not the function's.
const NOT_THE_FUNCTIONS: [&str; 6] = [
    "content-length",
    "connection",
    "date",
    "server",
    "transfer-encoding",
    "wasmless-error",
];
/// Environment passed through from `up` to a fallback process; it gets no
/// other variable of `up`'s.
const PASSED_ENV: [&str; 6] = ["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT"];

/// What a fallback process is started with.
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    /// The function's name.
    pub name: String,
    /// The catalog's local runner.
    pub local: Local,
    /// The function's files (its `/kubeless`).
    pub code: PathBuf,
    /// The function's environment plus the runtime's `FUNC_*` variables.
    pub env: Vec<(String, String)>,
    /// Per-event time limit.
    pub timeout: Duration,
}

/// A fallback function's server: a local process that `up` started (and
/// stops when this is dropped), or the runtime container beside `wasmless
/// host` in a pod.
pub struct LocalProcess {
    timeout: Duration,
    client: Client<HttpConnector, Full<Bytes>>,
    running: tokio::sync::Mutex<Running>,
    /// How to start the process again if it dies; `None` for a server
    /// someone else runs.
    restart: Option<Restart>,
}

/// The server's address, and the process when `up` started it (stopped on
/// drop).
struct Running {
    address: SocketAddr,
    child: Option<tokio::process::Child>,
}

struct Restart {
    spec: ProcessSpec,
    servers: PathBuf,
    host: Arc<Host>,
}

/// Why a request did not reach the function.
enum SendError {
    /// Nothing listens: the request was not delivered.
    Refused(String),
    /// The connection failed after it was made: the event may have run.
    Broken(String),
    /// Anything else.
    Failed(InvokeError),
}

impl LocalProcess {
    /// A server someone else runs at `address` (the runtime container of a
    /// fallback function's pod).
    pub fn remote(address: SocketAddr, timeout: Duration) -> Self {
        Self {
            timeout,
            client: Client::builder(TokioExecutor::new()).build_http(),
            running: tokio::sync::Mutex::new(Running {
                address,
                child: None,
            }),
            restart: None,
        }
    }

    /// Starts the runtime's server for `spec` and waits until it listens.
    /// `servers` is a folder to write the built-in server sources to. If
    /// the process dies later, the next event starts it again.
    pub async fn start(spec: ProcessSpec, servers: &Path, host: Arc<Host>) -> Result<Self, String> {
        let running = spawn(&spec, servers, host.clone()).await?;
        Ok(Self {
            timeout: spec.timeout,
            // A fresh loopback connection per event (cheap beside the fork
            // per event): a dead process is then seen as a refused
            // connection, which delivered nothing and is safe to retry once
            // the process is started again. A kept connection to it would
            // fail without saying whether the event was sent.
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build_http(),
            running: tokio::sync::Mutex::new(running),
            restart: Some(Restart {
                spec,
                servers: servers.to_owned(),
                host,
            }),
        })
    }
}

/// Starts the runtime's server for `spec` and waits until it listens.
async fn spawn(spec: &ProcessSpec, servers: &Path, host: Arc<Host>) -> Result<Running, String> {
    let interpreter = which(&spec.local.interpreter).ok_or_else(|| {
            format!(
                "this function runs on the container-image fallback; `wasmless up` runs it with the local `{}`, which is not on PATH: install it, or deploy the function to a cluster",
                spec.local.interpreter
            )
        })?;
    let server = write_server(servers, spec.local.server)?;
    let mut command = tokio::process::Command::new(&interpreter);
    command
        .arg(&server)
        .current_dir(&spec.code)
        .env_clear()
        .envs(
            PASSED_ENV
                .iter()
                .filter_map(|k| Some((*k, std::env::var_os(k)?))),
        )
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("FUNC_DIR", &spec.code)
        .env("FUNC_NAME", &spec.name)
        .env("FUNC_LISTEN", "127.0.0.1")
        .env("FUNC_PORT", "0")
        .env("FUNC_PARENT_PID", std::process::id().to_string())
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start `{}`: {e}", interpreter.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let (listening, announced) = tokio::sync::oneshot::channel();
    let stderr_tail = Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
    tokio::spawn(forward(
        stdout,
        spec.name.clone(),
        host.clone(),
        Some(listening),
        None,
    ));
    tokio::spawn(forward(
        stderr,
        spec.name.clone(),
        host,
        None,
        Some(stderr_tail.clone()),
    ));
    let started = tokio::time::timeout(START_TIMEOUT, announced).await;
    let address = match started {
        Ok(Ok(address)) => address,
        Ok(Err(_)) => {
            // The output ended before the server listened: it exited.
            let status = child
                .wait()
                .await
                .map(|s| s.to_string())
                .unwrap_or_default();
            // Let the stderr task drain.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let tail: Vec<String> = stderr_tail
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned()
                .collect();
            return Err(format!(
                "the {:?} fallback server exited ({status}): {}",
                spec.local.server,
                tail.join(" / ")
            ));
        }
        Err(_) => {
            return Err(format!(
                "the fallback server did not start within {START_TIMEOUT:?}"
            ));
        }
    };
    Ok(Running {
        address,
        child: Some(child),
    })
}

impl LocalProcess {
    /// Runs one event: the function's HTTP request as it came (or a POST
    /// for a cron or Kafka event), with the event's fields as headers. If
    /// the process `up` started has died, it is started again and the event
    /// delivered to the new one.
    pub async fn handle_event(&self, event: Event) -> Result<Response, InvokeError> {
        let address = self.running.lock().await.address;
        let (message, delivered) = match self.send(address, event.clone()).await {
            Ok(response) => return Ok(response),
            Err(SendError::Failed(err)) => return Err(err),
            Err(SendError::Refused(message)) => (message, false),
            Err(SendError::Broken(message)) => (message, true),
        };
        let Some(restart) = &self.restart else {
            return Err(InvokeError::Trap(message));
        };
        let address = {
            let mut running = self.running.lock().await;
            // Unless another event restarted it meanwhile.
            if running.address == address {
                let Some(child) = running.child.as_mut() else {
                    return Err(InvokeError::Trap(message));
                };
                let status = if delivered {
                    // The connection broke mid-event: restart only if the
                    // process died (it may take a moment to be reaped).
                    match exited(child).await {
                        Some(status) => status,
                        None => return Err(InvokeError::Trap(message)),
                    }
                } else {
                    // Nothing listens where it did: it died, is dying, or
                    // is stuck; either way it is stopped.
                    let _ = child.start_kill();
                    match child.wait().await {
                        Ok(status) => status.to_string(),
                        Err(e) => e.to_string(),
                    }
                };
                tracing::warn!(function = %restart.spec.name, "the fallback process exited ({status}); starting it again");
                *running = spawn(&restart.spec, &restart.servers, restart.host.clone())
                    .await
                    .map_err(InvokeError::Trap)?;
            }
            running.address
        };
        // An event the process may have run is not run again.
        if delivered {
            return Err(InvokeError::Trap(format!(
                "{message}; the fallback process exited and was started again"
            )));
        }
        self.send(address, event).await.map_err(|e| match e {
            SendError::Refused(message) | SendError::Broken(message) => InvokeError::Trap(message),
            SendError::Failed(err) => err,
        })
    }

    async fn send(&self, address: SocketAddr, event: Event) -> Result<Response, SendError> {
        let request =
            request(address, event).map_err(|m| SendError::Failed(InvokeError::Trap(m)))?;
        // The server stops the event at the timeout itself; this is a
        // backstop for a server that no longer answers.
        let answer = tokio::time::timeout(self.timeout + Duration::from_secs(5), async {
            let response = self.client.request(request).await.map_err(|e| {
                let message = format!("the fallback process did not answer: {e}");
                if e.is_connect() {
                    SendError::Refused(message)
                } else {
                    SendError::Broken(message)
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .map_err(|e| {
                    SendError::Failed(InvokeError::Trap(format!(
                        "reading the fallback process's answer: {e}"
                    )))
                })?;
            Ok::<_, SendError>((parts, body))
        })
        .await;
        let (parts, body) = match answer {
            Err(_) => return Err(SendError::Failed(InvokeError::Timeout(self.timeout))),
            Ok(Err(err)) => return Err(err),
            Ok(Ok(answer)) => answer,
        };
        let status = parts.status.as_u16();
        let error = parts
            .headers
            .get("wasmless-error")
            .and_then(|v| v.to_str().ok());
        match error {
            Some("timeout") => return Err(SendError::Failed(InvokeError::Timeout(self.timeout))),
            Some(_) => {
                return Err(SendError::Failed(InvokeError::Guest {
                    status,
                    message: String::from_utf8_lossy(&body).trim_end().to_owned(),
                }));
            }
            None => {}
        }
        let headers = parts
            .headers
            .iter()
            .filter(|(name, _)| !NOT_THE_FUNCTIONS.contains(&name.as_str()))
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect();
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}

/// The HTTP request that carries `event` to the server at `address`.
fn request(address: SocketAddr, event: Event) -> Result<http::Request<Full<Bytes>>, String> {
    let (method, target, headers) = match &event.request {
        Some(request) => {
            let query = if request.query.is_empty() {
                String::new()
            } else {
                format!("?{}", request.query)
            };
            (
                request.method.as_str(),
                format!("{}{query}", request.path),
                request.headers.as_slice(),
            )
        }
        None => ("POST", "/".to_owned(), &[][..]),
    };
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("http://{address}{target}"));
    for (name, value) in headers {
        if !matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection"
        ) {
            builder = builder.header(name, value);
        }
    }
    if event.request.is_none() {
        builder = builder
            .header("content-type", &event.event_type)
            .header("event-request", "none");
    }
    builder = builder
        .header("event-id", &event.id)
        .header("event-type", &event.event_type)
        .header("event-time", event.time_rfc3339())
        .header("event-namespace", &event.namespace);
    for (key, value) in &event.attributes {
        builder = builder.header(format!("event-attribute-{key}"), value);
    }
    builder
        .body(Full::new(event.data))
        .map_err(|e| format!("the event cannot be sent over HTTP: {e}"))
}

/// The exit status of a process that has exited or does within half a
/// second; `None` if it still runs.
async fn exited(child: &mut tokio::process::Child) -> Option<String> {
    for _ in 0..10 {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status.to_string());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Copies a process's output lines into the function's log. The first
/// `listening on http://ADDRESS` line on stdout is the server announcing
/// itself; `tail` keeps the last lines, for the error when it exits.
async fn forward(
    stream: impl tokio::io::AsyncRead + Unpin,
    name: String,
    host: Arc<Host>,
    mut listening: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
    tail: Option<Arc<std::sync::Mutex<std::collections::VecDeque<String>>>>,
) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if listening.is_some()
            && let Some(address) = line
                .strip_prefix("listening on http://")
                .and_then(|a| a.trim().parse().ok())
            && let Some(sender) = listening.take()
        {
            let _ = sender.send(address);
            continue;
        }
        if let Some(tail) = &tail {
            let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
            if tail.len() == 5 {
                tail.pop_front();
            }
            tail.push_back(line.clone());
        }
        tracing::info!(function = %name, "{line}");
        host.logs().push(&name, line);
    }
}

/// Writes the built-in server's files into `dir` (once per content) and
/// returns the path of the one to run.
fn write_server(dir: &Path, server: LocalServer) -> Result<PathBuf, String> {
    let files = server.files();
    for (file, source) in files {
        let path = dir.join(file);
        if std::fs::read_to_string(&path).is_ok_and(|existing| existing == source) {
            continue;
        }
        std::fs::create_dir_all(dir)
            .and_then(|()| {
                let staging = dir.join(format!(".{file}.{}", uuid::Uuid::new_v4().simple()));
                std::fs::write(&staging, source)?;
                std::fs::rename(&staging, &path)
            })
            .map_err(|e| {
                format!(
                    "cannot write the fallback server to {}: {e}",
                    path.display()
                )
            })?;
    }
    Ok(dir.join(files[0].0))
}

/// The interpreter's path: `name` itself when it has a slash, else the
/// first match on `PATH`.
fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        return path.is_file().then_some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}
