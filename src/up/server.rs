//! The HTTP side of `up`: routes `/<function>/...` to functions, serves
//! `/healthz`, `/metrics` and the admin API, and runs until interrupted.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::host::{Event, Host, InvokeError, Response};
use crate::manifest::{manifest_files, read_manifest};

use super::admin::{self, ADMIN_PREFIX};
use super::metrics::Metrics;
use super::triggers::TriggerSet;
use super::watch;
use crate::crd::Target;
use crate::host::registry::{Origin, Registry};
use crate::triggers::{DeliveryError, Dispatch, accepted};

/// Settings of `up`, validated from the command line.
#[derive(Clone, Debug)]
pub struct UpConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Manifest files and folders.
    pub paths: Vec<PathBuf>,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// How many events may run at once; more wait their turn.
    pub max_concurrency: usize,
    /// How many events of one function may run at once (more of its
    /// events wait their turn, while other functions' run): a pool's
    /// fair share. `None`: only `max_concurrency`.
    pub function_concurrency: Option<usize>,
    /// Reload functions when their manifests or modules change.
    pub watch: bool,
    /// Where triggers keep state across restarts (the last cron tick).
    pub state_dir: Option<PathBuf>,
    /// Unload functions idle this long (their next event loads them again
    /// from the compile cache); `None` keeps them loaded.
    pub unload_idle: Option<std::time::Duration>,
    /// Serve the admin API (`up`); `wasmless host` in a pod does not.
    pub admin: bool,
    /// The admin API's Unix socket; `None`: `PORT.sock` in
    /// [`super::admin_socket::default_folder`], after the function port.
    pub admin_socket: Option<PathBuf>,
    /// The command's name in what it prints (`up`, `host`).
    pub name: &'static str,
    /// `host` in a pod: the one function that answers every path.
    pub root_function: Option<String>,
    /// `host --pool`: serve the pool Functions of this namespace, learnt
    /// from the Kubernetes API, each at every path of its own Service.
    pub pool_namespace: Option<String>,
    /// The runtime catalog, and whether fallbacks run as local processes.
    pub fallback: super::Fallback,
    /// What one client may hold: time to send a request, open connections.
    pub connections: ConnectionLimits,
    /// Join Kafka groups as a static member named in the state folder
    /// (`up`), so that a restart takes its partitions back at once. Pods
    /// do not: a static member does not leave its group when it stops, so
    /// a rollout's old pods would hold their partitions for a session
    /// timeout.
    pub static_kafka_members: bool,
    /// How many functions it may hold; a deploy of one more is refused.
    pub max_functions: usize,
    /// On SIGTERM, how long to go on serving (with `/healthz` failing) so
    /// that Services and proxies stop sending here before the listener
    /// closes; requests in flight then finish. Zero for `up`.
    pub drain: std::time::Duration,
    /// After an event of a function runs out of memory, how long its
    /// events run one at a time (zero: never), so that a memory bomb's
    /// page faults and resets keep to one core and its neighbours keep
    /// the others.
    pub memory_penalty: std::time::Duration,
}

/// What slow or many clients may hold of the server.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// How long a client may take to send a request's headers; also how
    /// long a kept-alive connection may sit idle. `None`: no limit.
    pub header_timeout: Option<std::time::Duration>,
    /// How long a client may take to send a request's body (408 after).
    pub body_timeout: std::time::Duration,
    /// How many connections may be open at once; more are answered 503
    /// and closed.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Some(std::time::Duration::from_secs(30)),
            body_timeout: std::time::Duration::from_secs(60),
            max_connections: 4096,
        }
    }
}

impl ConnectionLimits {
    /// An HTTP/1 connection builder that keeps to these limits.
    pub(super) fn http1(&self) -> hyper::server::conn::http1::Builder {
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(self.header_timeout);
        builder
    }
}

/// Everything a request needs.
pub struct App {
    pub(crate) registry: Registry,
    pub(crate) metrics: Metrics,
    pub(crate) triggers: TriggerSet,
    /// HTTPTriggers: more paths that reach a function.
    pub(crate) routes: super::routes::Routes,
    /// The Functions applied through the admin API, as applied (what
    /// `function update` starts from).
    pub(super) applied: std::sync::Mutex<std::collections::BTreeMap<String, crate::crd::Function>>,
    config: UpConfig,
    permits: Semaphore,
    /// A pool's Services' cluster IPs.
    pub(crate) pool_addresses: super::pool::Addresses,
    /// Each function's share of the events that run at once.
    function_permits: std::sync::Mutex<std::collections::HashMap<String, Arc<Semaphore>>>,
    /// Functions whose events ran out of memory lately: their events take
    /// turns through a lane of one ([`UpConfig::memory_penalty`]).
    penalties: std::sync::Mutex<std::collections::HashMap<String, Penalty>>,
    /// This `up`'s name as a static Kafka group member, if it has one.
    kafka_member: Option<String>,
    /// Set on SIGTERM: `/healthz` fails while the last requests come in.
    draining: std::sync::atomic::AtomicBool,
}

/// A function's events run one at a time until `until`.
struct Penalty {
    until: Instant,
    lane: Arc<Semaphore>,
}

/// Why a call to a function by name did not run it.
enum CallError {
    NotFound,
    NotReady(String),
    Invoke(InvokeError),
}

pub(super) type HttpResponse = http::Response<Full<Bytes>>;

/// How long shutdown waits for triggers to finish their deliveries.
const SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(40);

/// Loads the manifests, binds, and serves until Ctrl-C or SIGTERM; then
/// stops the triggers (Kafka triggers finish their deliveries and commit).
pub async fn run(config: UpConfig, host: Arc<Host>) -> anyhow::Result<()> {
    let listener = crate::net::listen(config.listen)
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    if let Some(files) = crate::net::raise_open_files_limit()
        && files < config.connections.max_connections as u64 + 256
    {
        tracing::warn!(
            "this process may open {files} files: fewer connections than --max-connections ({}) will be served (raise `ulimit -n`)",
            config.connections.max_connections
        );
    }
    let files = manifest_files(&config.paths)?;
    let kafka_member = match (&config.state_dir, config.static_kafka_members) {
        (Some(dir), true) => match crate::triggers::kafka::member_id(dir) {
            Ok(id) => Some(id),
            Err(err) => {
                tracing::warn!(
                    "no Kafka member id in {}: {err}; a restarted consumer waits for its old session to time out",
                    dir.display()
                );
                None
            }
        },
        _ => None,
    };
    let app = Arc::new(App {
        kafka_member,
        registry: Registry::new(host, config.fallback.clone())
            .with_max_functions(config.max_functions),
        metrics: Metrics::default(),
        triggers: TriggerSet::default(),
        routes: Default::default(),
        applied: Default::default(),
        permits: Semaphore::new(config.max_concurrency.max(1)),
        pool_addresses: Default::default(),
        function_permits: Default::default(),
        penalties: Default::default(),
        draining: Default::default(),
        config,
    });
    load_manifests(&app, &files).await;
    if let Some(idle) = app.config.unload_idle {
        let sweeper = Arc::downgrade(&app);
        tokio::spawn(async move {
            let every = (idle / 4).clamp(
                std::time::Duration::from_millis(250),
                std::time::Duration::from_secs(30),
            );
            loop {
                tokio::time::sleep(every).await;
                let Some(app) = sweeper.upgrade() else { break };
                let parked = app.registry.park_idle(idle);
                if parked > 0 {
                    tracing::debug!("parked {parked} idle functions");
                }
            }
        });
    }
    if app.config.watch {
        watch::start(app.clone(), &app.config.paths, &files)?;
    }
    if let Some(namespace) = app.config.pool_namespace.clone() {
        tokio::spawn(super::pool::follow(app.clone(), namespace));
    }
    let addr = listener.local_addr()?;
    let admin = match (app.config.admin, &app.config.admin_socket) {
        (false, _) => None,
        (true, path) => {
            let path = path.clone().unwrap_or_else(|| {
                super::admin_socket::socket_for_port(
                    &super::admin_socket::default_folder(),
                    addr.port(),
                )
            });
            let socket = super::admin_socket::AdminSocket::bind(&path)
                .await
                .map_err(|e| anyhow::anyhow!("cannot serve the admin API: {e}"))?;
            Some(Arc::new(socket))
        }
    };
    println!("wasmless {}: listening on http://{addr}", app.config.name);
    if let Some(socket) = &admin {
        println!("  admin API: unix:{}", socket.path().display());
        let (socket, app) = (socket.clone(), app.clone());
        tokio::spawn(async move { socket.serve(app).await });
    }
    for info in app.registry.list() {
        if info.status == "ready" {
            println!("  http://{addr}/{}", info.name);
        }
    }
    for info in app.triggers.list() {
        println!("  {} {}", info.name, info.detail);
    }
    let stopping = {
        let app = app.clone();
        async move {
            shutdown_signal().await;
            let drain = app.config.drain;
            app.draining
                .store(true, std::sync::atomic::Ordering::Relaxed);
            if !drain.is_zero() {
                eprintln!(
                    "wasmless {}: draining: serving {drain:?} more while Services stop sending here",
                    app.config.name
                );
                tokio::time::sleep(drain).await;
            }
        }
    };
    let result = serve(listener, app.clone(), stopping).await;
    eprintln!("wasmless {}: stopping", app.config.name);
    drop(admin);
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, app.triggers.stop_all())
        .await
        .is_err()
    {
        eprintln!(
            "wasmless {}: triggers did not stop within {SHUTDOWN_TIMEOUT:?}",
            app.config.name
        );
    }
    result
}

/// Ctrl-C, or SIGTERM (how process managers and Kubernetes stop us).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn load_manifests(app: &Arc<App>, files: &[PathBuf]) {
    let mut functions = Vec::new();
    let mut triggers = Vec::new();
    for file in files {
        let (found, errors) = read_manifest(file);
        for error in errors {
            tracing::error!("invalid manifest: {error}");
            eprintln!("error: {error}");
        }
        for note in &found.notes {
            tracing::info!("{note}");
            eprintln!("note: {note}");
        }
        functions.extend(found.functions);
        app.routes.apply(file, found.http_triggers);
        triggers.push((file.clone(), found.triggers));
    }
    let total = functions.len();
    for (i, manifest) in functions.into_iter().enumerate() {
        let name = manifest.function.name().to_owned();
        eprintln!(
            "[{}/{total}] loading {name} from {}",
            i + 1,
            manifest.path.display()
        );
        let started = Instant::now();
        match app
            .registry
            .deploy(manifest.function, Origin::Manifest(manifest.path))
            .await
        {
            Ok(f) => eprintln!(
                "[{}/{total}] {name}: ready ({}, {:.0} ms)",
                i + 1,
                f.summary(),
                started.elapsed().as_secs_f64() * 1e3
            ),
            Err(reason) => eprintln!("[{}/{total}] {name}: FAILED: {reason}", i + 1),
        }
    }
    // Triggers start once their functions are loaded.
    for (file, found) in triggers {
        if !found.is_empty() {
            app.triggers.apply(app, &file, found).await;
        }
    }
}

/// Reads and drops up to `limit` bytes of a body that is refused, so that
/// the client reads the answer rather than a reset connection.
pub(super) async fn drain(body: Incoming, limit: usize) {
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        Limited::new(body, limit).collect(),
    )
    .await;
}

/// Serves HTTP on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    stop: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let limits = app.config.connections;
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let refused = super::connections::Refusals::default();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors, most often: let connections close
                // rather than spin.
                tracing::warn!("accepting a connection failed: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            refused.refuse(stream, peer, limits.max_connections);
            continue;
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(app.handle_request(req, peer).await) }
        });
        let connection = graceful.watch(
            limits
                .http1()
                .serve_connection(TokioIo::new(stream), service),
        );
        tokio::spawn(async move {
            let _open = permit;
            if let Err(err) = connection.await {
                tracing::debug!(%peer, "connection ended: {err}");
            }
        });
    }
    // No new connections; the open ones finish the request they are on
    // and close (an idle keep-alive connection closes at once).
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {SHUTDOWN_TIMEOUT:?}: dropped");
    }
    Ok(())
}

impl App {
    /// What one client may hold.
    pub(crate) fn connection_limits(&self) -> ConnectionLimits {
        self.config.connections
    }

    /// This `up`'s name as a static Kafka group member, if it has one.
    pub(crate) fn kafka_member(&self) -> Option<&str> {
        self.kafka_member.as_deref()
    }

    /// The runtime catalog.
    pub(crate) fn catalog(&self) -> Arc<crate::runtimes::Catalog> {
        self.config.fallback.catalog.clone()
    }

    /// Where triggers keep state, if anywhere.
    pub(crate) fn state_dir(&self) -> Option<&std::path::Path> {
        self.config.state_dir.as_deref()
    }

    /// The folders given to `up`, absolute: new manifests there are loaded.
    pub(crate) fn watch_roots(&self) -> Vec<PathBuf> {
        self.config
            .paths
            .iter()
            .filter(|p| p.is_dir())
            .filter_map(|p| std::path::absolute(p).ok())
            .collect()
    }

    async fn handle_request(
        self: &Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> HttpResponse {
        let path = req.uri().path().to_owned();
        match path.as_str() {
            "/healthz" if self.draining.load(std::sync::atomic::Ordering::Relaxed) => {
                return plain(StatusCode::SERVICE_UNAVAILABLE, "draining\n");
            }
            "/healthz" => return plain(StatusCode::OK, "ok\n"),
            "/metrics" => {
                let mut response = plain(StatusCode::OK, self.metrics.encode());
                response.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static(
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    ),
                );
                return response;
            }
            _ => {}
        }
        if path.starts_with(ADMIN_PREFIX) {
            tracing::debug!(%peer, "the admin API was asked for on the function port");
            drain(req.into_body(), self.config.max_body_bytes).await;
            return plain(
                StatusCode::NOT_FOUND,
                if self.config.admin {
                    "the admin API is not on the function port: it is on a Unix socket of this user's (the wasmless CLI finds it; `up` prints where)\n"
                } else {
                    "there is no admin API here: functions come from their manifests\n"
                },
            );
        }
        let trimmed = path.trim_start_matches('/');
        let pooled;
        let routed;
        let (name, below) = match (&self.config.pool_namespace, &self.config.root_function) {
            (Some(namespace), _) => match super::pool::addressed(req.headers(), namespace, |ip| {
                self.pool_addresses.function(ip)
            }) {
                Some(name) => {
                    pooled = name;
                    (pooled.as_str(), path.as_str())
                }
                None => {
                    return plain(
                        StatusCode::NOT_FOUND,
                        format!(
                            "this is the wasmless pool of namespace {namespace}: call a function through its Service (http://NAME.{namespace}.svc:8080/), or name it in the `{}` header\n",
                            super::pool::FUNCTION_HEADER
                        ),
                    );
                }
            },
            (None, Some(root)) => (root.as_str(), path.as_str()),
            (None, None) => {
                let (first, rest) = match trimmed.find('/') {
                    Some(i) => (&trimmed[..i], &trimmed[i..]),
                    None => (trimmed, "/"),
                };
                // An HTTPTrigger's path, unless a function has the name.
                let host = req
                    .headers()
                    .get(http::header::HOST)
                    .and_then(|h| h.to_str().ok());
                let routed_to = if self.routes.is_empty() || self.registry.contains(first) {
                    None
                } else {
                    self.routes.route(host, &path)
                };
                match routed_to {
                    Some((function, below)) => {
                        pooled = function;
                        routed = below;
                        (pooled.as_str(), routed.as_str())
                    }
                    None => (first, rest),
                }
            }
        };
        if name.is_empty() {
            return plain(
                StatusCode::NOT_FOUND,
                "no function here: call /<function-name>\n",
            );
        }
        let function = match self.registry.ready(name).await {
            None => {
                return plain(
                    StatusCode::NOT_FOUND,
                    format!("no function named `{name}`\n"),
                );
            }
            Some(Err(reason)) => {
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("function `{name}` failed to load: {reason}\n"),
                );
            }
            Some(Ok(function)) => function,
        };
        let below = below.to_owned();
        let event = match self.http_event(req, below).await {
            Ok(event) => event,
            Err(response) => return response,
        };
        match self.invoke(name, &function, event).await {
            Ok(response) => to_http(response),
            Err(err) => {
                let body = match &err {
                    InvokeError::Timeout(_) => "Request timeout exceeded\n".to_owned(),
                    other => format!("{}\n", other.to_string().trim_end()),
                };
                plain(
                    StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    body,
                )
            }
        }
    }

    /// Runs one event on a loaded function, within the concurrency limit,
    /// and records it in the metrics.
    async fn invoke(
        &self,
        name: &str,
        function: &super::Runner,
        event: Event,
    ) -> Result<Response, InvokeError> {
        let _in_flight = self.metrics.in_flight(name);
        // A function that ran out of memory lately waits in its lane of one
        // first: its next events may well do the same.
        let _lane = match self.penalty_lane(name) {
            Some(lane) => Some(
                lane.acquire_owned()
                    .await
                    .expect("the semaphore is never closed"),
            ),
            None => None,
        };
        // Its own share first, so that a flood of one function's events
        // waits in its own line and leaves the host's slots to the others.
        let _share = match self.config.function_concurrency {
            Some(limit) => Some(
                self.function_share(name, limit)
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed"),
            ),
            None => None,
        };
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let _running = self.metrics.running(name);
        let started = Instant::now();
        let outcome = function.handle_event(event).await;
        let failure = outcome.as_ref().err().map(failure_reason);
        self.metrics.observe(name, started.elapsed(), failure);
        if let Err(InvokeError::MemoryExceeded { .. }) = &outcome {
            self.penalize(name);
        }
        if let Err(err) = &outcome {
            tracing::warn!(function = %name, "event failed: {err}");
        }
        outcome
    }

    /// The lane of a function that ran out of memory lately, if it is in
    /// one.
    fn penalty_lane(&self, name: &str) -> Option<Arc<Semaphore>> {
        let penalties = self.penalties.lock().unwrap_or_else(|e| e.into_inner());
        let penalty = penalties.get(name)?;
        (penalty.until > Instant::now()).then(|| penalty.lane.clone())
    }

    /// Puts `name`'s events in a lane of one for the next
    /// [`UpConfig::memory_penalty`] (from now: each event that runs out of
    /// memory again extends it).
    fn penalize(&self, name: &str) {
        let period = self.config.memory_penalty;
        if period.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut penalties = self.penalties.lock().unwrap_or_else(|e| e.into_inner());
        penalties.retain(|_, p| p.until > now || p.lane.available_permits() == 0);
        let penalty = penalties.entry(name.to_owned()).or_insert_with(|| Penalty {
            until: now,
            lane: Arc::new(Semaphore::new(1)),
        });
        if penalty.until <= now {
            tracing::warn!(
                function = %name,
                "function `{name}` ran out of memory: its events run one at a time until {} after the last one that does",
                humantime::format_duration(period)
            );
        }
        penalty.until = now + period;
    }

    fn function_share(&self, name: &str, limit: usize) -> Arc<Semaphore> {
        let mut shares = self
            .function_permits
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if shares.len() > 4096 {
            // Forget the idle ones (all permits back) of removed functions.
            shares.retain(|_, s| s.available_permits() < limit);
        }
        shares
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(limit.max(1))))
            .clone()
    }

    /// Runs one event on the function called `name`.
    async fn call(&self, name: &str, event: Event) -> Result<Response, CallError> {
        match self.registry.ready(name).await {
            None => Err(CallError::NotFound),
            Some(Err(reason)) => Err(CallError::NotReady(reason)),
            Some(Ok(function)) => self
                .invoke(name, &function, event)
                .await
                .map_err(CallError::Invoke),
        }
    }

    /// Turns an HTTP request into an event. Event fields sent as headers
    /// (by a cron or Kafka dispatcher) are kept; others are made here.
    async fn http_event(
        &self,
        req: Request<Incoming>,
        path: String,
    ) -> Result<Event, HttpResponse> {
        let (parts, body) = req.into_parts();
        let limit = self.config.max_body_bytes;
        let within = self.config.connections.body_timeout;
        let Ok(read) = tokio::time::timeout(within, Limited::new(body, limit).collect()).await
        else {
            return Err(plain(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {}\n",
                    humantime::format_duration(within)
                ),
            ));
        };
        let data = match read {
            Ok(collected) => collected.to_bytes(),
            Err(err)
                if err
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return Err(plain(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body exceeds the limit of {limit} bytes\n"),
                ));
            }
            Err(err) => {
                return Err(plain(
                    StatusCode::BAD_REQUEST,
                    format!("reading the request failed: {err}\n"),
                ));
            }
        };
        let event = Event::from_http(&parts, path, data);
        Ok(event)
    }

    pub(super) async fn handle_admin(
        self: &Arc<Self>,
        req: Request<Incoming>,
        rest: &str,
    ) -> HttpResponse {
        let method = req.method().clone();
        let name = rest
            .strip_prefix("functions/")
            .unwrap_or_default()
            .to_owned();
        if let (&Method::GET, Some(function)) = (&method, name.strip_suffix("/logs")) {
            let tail = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("tail="))
                .and_then(|n| n.parse().ok());
            return match self.registry.logs(function, tail) {
                Some(lines) => {
                    let mut text = lines.join("\n");
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    plain(StatusCode::OK, text)
                }
                None => plain(
                    StatusCode::NOT_FOUND,
                    format!("no function named `{function}`\n"),
                ),
            };
        }
        if let Some(object) = rest.strip_prefix("objects/") {
            return match method {
                Method::GET => self.admin_object(object),
                Method::DELETE => self.admin_delete_object(object).await,
                _ => plain(StatusCode::METHOD_NOT_ALLOWED, "GET or DELETE\n"),
            };
        }
        match (method, rest) {
            (Method::GET, "functions") => json(StatusCode::OK, &self.registry.list()),
            (Method::GET, "triggers") => json(StatusCode::OK, &self.trigger_list()),
            (Method::PUT | Method::POST, "apply") => self.admin_apply(req).await,
            (Method::GET, _) if !name.is_empty() => match self.registry.info(&name) {
                Some(info) => json(StatusCode::OK, &info),
                None => plain(
                    StatusCode::NOT_FOUND,
                    format!("no function named `{name}`\n"),
                ),
            },
            (Method::PUT, _) if !name.is_empty() => self.admin_deploy(req, &name).await,
            (Method::DELETE, _) if !name.is_empty() => {
                self.lock_applied().remove(&name);
                if self.registry.remove(&name) {
                    plain(StatusCode::OK, format!("deleted {name}\n"))
                } else {
                    plain(
                        StatusCode::NOT_FOUND,
                        format!("no function named `{name}`\n"),
                    )
                }
            }
            _ => plain(StatusCode::NOT_FOUND, "unknown admin call\n"),
        }
    }

    async fn admin_deploy(&self, req: Request<Incoming>, name: &str) -> HttpResponse {
        // A module may be larger than an event; allow a generous body.
        let limit = self.config.max_body_bytes.max(64 << 20);
        let body = match Limited::new(req.into_body(), limit).collect().await {
            Ok(body) => body.to_bytes(),
            Err(err) => return plain(StatusCode::PAYLOAD_TOO_LARGE, format!("{err}\n")),
        };
        let request: admin::DeployRequest = match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(err) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    format!("invalid deploy request: {err}\n"),
                );
            }
        };
        let (function, source) = match request.into_function(name) {
            Ok(made) => made,
            Err(err) => return plain(StatusCode::BAD_REQUEST, format!("{err}\n")),
        };
        match self
            .registry
            .deploy_decoded(function, Origin::Api, source)
            .await
        {
            Ok(function) => {
                tracing::info!(
                    function = name,
                    kind = function.kind(),
                    "deployed through the admin API"
                );
                let info = self.registry.info(name);
                json(StatusCode::OK, &info)
            }
            Err(reason) => plain(StatusCode::UNPROCESSABLE_ENTITY, format!("{reason}\n")),
        }
    }
}

impl Dispatch for App {
    fn targets(&self, target: &Target) -> Vec<String> {
        self.registry.matching(target)
    }

    async fn deliver(&self, function: &str, event: Event) -> Result<Response, DeliveryError> {
        match self.call(function, event).await {
            Ok(response) => accepted(response),
            Err(CallError::NotFound) => Err(DeliveryError::NotFound(function.to_owned())),
            Err(CallError::NotReady(reason)) => {
                Err(DeliveryError::NotReady(function.to_owned(), reason))
            }
            Err(CallError::Invoke(err)) => Err(DeliveryError::Invoke(err)),
        }
    }
}

fn failure_reason(err: &InvokeError) -> &'static str {
    match err {
        InvokeError::Trap(_) => "trap",
        InvokeError::Guest { .. } => "error",
        InvokeError::Timeout(_) => "timeout",
        InvokeError::MemoryExceeded { .. } => "memory",
        InvokeError::Exit { .. } => "exit",
        InvokeError::ResponseTooLarge(_) => "response-too-large",
        InvokeError::NoResponse => "no-response",
    }
}

fn to_http(response: Response) -> HttpResponse {
    let mut builder = http::Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(response.body))
        .unwrap_or_else(|err| {
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the function's response is not valid HTTP: {err}\n"),
            )
        })
}

pub(super) fn plain(status: StatusCode, body: impl Into<Bytes>) -> HttpResponse {
    let mut response = http::Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

pub(super) fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> HttpResponse {
    let body = serde_json::to_vec_pretty(value).expect("listings always serialize");
    let mut response = plain(status, body);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}
