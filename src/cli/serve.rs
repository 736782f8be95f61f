//! `wasmless up` and `wasmless host`: their flags, validated into the
//! configs of `up` and the host, and the pod helpers `prepare` and
//! `pre-init`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::host::{EngineConfig, Host, HostConfig};
use crate::up::UpConfig;

/// Options of `wasmless prepare`.
#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// The folder holding function.yaml (the mounted ConfigMap).
    #[arg(long, default_value = "/function", env = "WASMLESS_FUNCTION_DIR")]
    pub function_dir: PathBuf,
    /// Where to write the files.
    #[arg(long, default_value = "/kubeless")]
    pub into: PathBuf,
    /// The file name of a single source (`hello.py`); a zip is unpacked.
    #[arg(long)]
    pub file: Option<String>,
}

/// Options of `wasmless pre-init`.
#[derive(Debug, Args)]
pub struct PreInitArgs {
    /// The runtime component.
    pub input: PathBuf,
    /// Where to write the pre-initialized component.
    pub output: PathBuf,
}

/// What slow or many clients may hold, for `up` and `host` alike.
#[derive(Clone, Debug, Args)]
pub struct ConnectionArgs {
    /// How long a client may take to send a request's headers, and how
    /// long a kept-alive connection may sit idle (`0`: no limit).
    #[arg(long, default_value = "30s", env = "WASMLESS_HEADER_TIMEOUT")]
    pub header_timeout: String,
    /// How long a client may take to send a request's body (then 408).
    #[arg(long, default_value = "60s", env = "WASMLESS_BODY_TIMEOUT")]
    pub body_timeout: String,
    /// How many connections may be open at once; more are answered 503
    /// and closed.
    #[arg(long, default_value_t = 4096, env = "WASMLESS_MAX_CONNECTIONS")]
    pub max_connections: usize,
}

impl TryFrom<ConnectionArgs> for crate::up::ConnectionLimits {
    type Error = anyhow::Error;

    fn try_from(args: ConnectionArgs) -> anyhow::Result<Self> {
        let header_timeout = match args.header_timeout.trim() {
            "0" | "never" => None,
            text => Some(
                crate::crd::parse_duration(text)
                    .map_err(|e| anyhow::anyhow!("--header-timeout: {e}"))?,
            ),
        };
        let body_timeout = crate::crd::parse_duration(args.body_timeout.trim())
            .map_err(|e| anyhow::anyhow!("--body-timeout: {e}"))?;
        anyhow::ensure!(
            args.max_connections > 0,
            "--max-connections: must be at least 1"
        );
        Ok(Self {
            header_timeout,
            body_timeout,
            max_connections: args.max_connections,
        })
    }
}

/// Options of `wasmless host`.
#[derive(Debug, Args)]
pub struct HostArgs {
    /// The folder holding the manifests (Functions, triggers) and modules.
    #[arg(long, default_value = "/function", env = "WASMLESS_FUNCTION_DIR")]
    pub function_dir: PathBuf,
    /// Front a container-image function: send every event (HTTP, cron,
    /// Kafka) to its runtime container at this address, such as
    /// 127.0.0.1:9000.
    #[arg(long, env = "WASMLESS_FORWARD_TO")]
    pub forward_to: Option<SocketAddr>,
    /// A source function's files, already unpacked with their packages
    /// installed (by the pod's init containers), such as /kubeless.
    #[arg(long, env = "WASMLESS_CODE_DIR")]
    pub code_dir: Option<PathBuf>,
    /// A folder shared with the pod's package installer containers (a
    /// pool's): source functions' files are written there, and their
    /// dependency files installed by those containers.
    #[arg(long, env = "WASMLESS_INSTALLER_DIR")]
    pub installer_dir: Option<PathBuf>,
    /// Address to serve on.
    #[arg(long, default_value = "[::]:8080", env = "WASMLESS_LISTEN")]
    pub listen: SocketAddr,
    /// Where compiled functions are cached (a writable folder).
    #[arg(
        long,
        default_value = "/tmp/wasmless/cache",
        env = "WASMLESS_CACHE_DIR"
    )]
    pub cache_dir: PathBuf,
    /// Where triggers keep state (a writable folder).
    #[arg(
        long,
        default_value = "/tmp/wasmless/state",
        env = "WASMLESS_STATE_DIR"
    )]
    pub state_dir: PathBuf,
    /// Largest request body accepted (bytes, or a quantity such as 10Mi).
    #[arg(long, default_value = "10Mi", env = "WASMLESS_MAX_BODY_SIZE")]
    pub max_body_size: String,
    /// Largest memory limit a function may ask for.
    #[arg(long, default_value = "1Gi", env = "WASMLESS_MAX_MEMORY")]
    pub max_memory: String,
    /// How many instances may exist at once.
    #[arg(long, default_value_t = 1000, env = "WASMLESS_MAX_INSTANCES")]
    pub max_instances: u32,
    /// How many events of one function may run at once (its fair share of
    /// the host; a pool's default is a quarter of --max-instances).
    #[arg(long, env = "WASMLESS_FUNCTION_CONCURRENCY")]
    pub function_concurrency: Option<usize>,
    /// After an event of a function runs out of memory, how long its
    /// events run one at a time (each such event starts it again), so that
    /// a memory bomb takes one core and its neighbours keep the others
    /// (`0`: never).
    #[arg(long, default_value = "2s", env = "WASMLESS_MEMORY_PENALTY")]
    pub memory_penalty: String,
    /// How long a function's next instance, made ahead of its event after
    /// the last one, waits for it before it is dropped (`0`: make every
    /// instance with its event).
    #[arg(long, default_value = "60s", env = "WASMLESS_READY_IDLE")]
    pub ready_idle: String,
    /// Give a busy Python or JavaScript function its own snapshot (its
    /// module loaded) once this many of its events came faster
    /// than its fresh instances were made: each instance then starts
    /// there, several times cheaper under load (`0`: never).
    #[arg(long, default_value_t = 32, env = "WASMLESS_SNAPSHOT_AFTER")]
    pub snapshot_after: u32,
    /// Serve this function at every path (`/`, `/orders/42`), as a
    /// kubeless function's Service did; without it, `/<name>/...`.
    #[arg(long, env = "WASMLESS_FUNCTION")]
    pub function: Option<String>,
    /// Where the pod mounts the functions' Secrets: `spec.secrets` are
    /// read-only folders below it.
    #[arg(long, default_value = "/", env = "WASMLESS_SECRETS_ROOT")]
    pub secrets_root: PathBuf,
    /// Where the runtimes of source functions are (python.wasm).
    #[arg(long, env = "WASMLESS_RUNTIMES_DIR")]
    pub runtimes_dir: Option<PathBuf>,
    /// Be a shared pool: serve the pool Functions of a namespace, read from
    /// the Kubernetes API (with the pod's ServiceAccount), instead of the
    /// function folder.
    #[arg(long, env = "WASMLESS_POOL")]
    pub pool: bool,
    /// The namespace a pool serves (the pod's own, from the downward API).
    #[arg(long, env = "WASMLESS_POOL_NAMESPACE", requires = "pool")]
    pub pool_namespace: Option<String>,
    /// A pool parks a function idle this long: its next event loads it
    /// again from the compile cache.
    #[arg(long, default_value = "5m", env = "WASMLESS_UNLOAD_IDLE")]
    pub unload_idle: String,
    /// The image's precompiled runtimes (`wasmless runtimes --precompile`),
    /// used when they match this engine.
    #[arg(
        long,
        default_value = "/usr/local/share/wasmless/precompiled",
        env = "WASMLESS_PRECOMPILED_DIR"
    )]
    pub precompiled_dir: PathBuf,
    /// How many functions it may hold; a deploy of one more is refused.
    #[arg(long, default_value_t = crate::up::DEFAULT_MAX_FUNCTIONS, env = "WASMLESS_MAX_FUNCTIONS")]
    pub max_functions: usize,
    /// How long a deploy waits for its module's baseline compile; past it
    /// the deploy is refused (the compile goes on at the lowest CPU
    /// priority). Not applied with --no-tiering.
    #[arg(long, default_value = "120s", env = "WASMLESS_COMPILE_TIMEOUT")]
    pub compile_timeout: String,
    /// On SIGTERM, how long to go on serving, with /healthz failing, while
    /// the Service's endpoints drop this pod; then requests in flight
    /// finish and it exits. Keep it under the pod's
    /// terminationGracePeriodSeconds.
    #[arg(long, default_value = "5s", env = "WASMLESS_DRAIN")]
    pub drain: String,
    /// What slow or many clients may hold.
    #[command(flatten)]
    pub connections: ConnectionArgs,
}

impl From<HostArgs> for UpArgs {
    /// `host` is `up` on one folder with a pod's defaults: no admin API, no
    /// parking (the pod serves its function), reloads when the mounted
    /// ConfigMap changes.
    fn from(args: HostArgs) -> Self {
        UpArgs {
            paths: if args.pool {
                Vec::new()
            } else {
                vec![args.function_dir]
            },
            listen: args.listen,
            cache_dir: Some(args.cache_dir),
            no_cache: false,
            max_body_size: args.max_body_size,
            max_memory: args.max_memory,
            max_instances: args.max_instances,
            ready_idle: args.ready_idle,
            snapshot_after: args.snapshot_after,
            memory_penalty: args.memory_penalty,
            function_concurrency: args.function_concurrency.or(args
                .pool
                .then_some((args.max_instances as usize / 4).max(1))),
            no_watch: args.pool,
            no_tiering: false,
            unload_idle: if args.pool {
                args.unload_idle
            } else {
                "0".to_owned()
            },
            state_dir: Some(args.state_dir),
            runtimes_dir: args.runtimes_dir,
            runtime_catalog: None,
            admin_socket: None,
            max_functions: args.max_functions,
            compile_timeout: args.compile_timeout,
            connections: args.connections,
        }
    }
}

/// Options of `wasmless up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Function manifests: YAML files, or folders searched for *.yaml.
    pub paths: Vec<PathBuf>,
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "WASMLESS_LISTEN")]
    pub listen: SocketAddr,
    /// Where compiled functions are cached.
    #[arg(long, env = "WASMLESS_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Keep compiled functions in memory only.
    #[arg(long)]
    pub no_cache: bool,
    /// Largest request body accepted (bytes, or a quantity such as 10Mi).
    #[arg(long, default_value = "10Mi")]
    pub max_body_size: String,
    /// Largest memory limit a function may ask for.
    #[arg(long, default_value = "1Gi")]
    pub max_memory: String,
    /// How many instances may exist at once.
    #[arg(long, default_value_t = 1000)]
    pub max_instances: u32,
    /// How many events of one function may run at once; more of its
    /// events wait their turn while other functions' run (default: no
    /// limit but --max-instances).
    #[arg(long, env = "WASMLESS_FUNCTION_CONCURRENCY")]
    pub function_concurrency: Option<usize>,
    /// After an event of a function runs out of memory, how long its
    /// events run one at a time (each such event starts it again), so that
    /// a memory bomb takes one core and its neighbours keep the others
    /// (`0`: never).
    #[arg(long, default_value = "2s", env = "WASMLESS_MEMORY_PENALTY")]
    pub memory_penalty: String,
    /// How long a function's next instance, made ahead of its event after
    /// the last one, waits for it before it is dropped (`0`: make every
    /// instance with its event).
    #[arg(long, default_value = "60s")]
    pub ready_idle: String,
    /// Give a busy Python or JavaScript function its own snapshot (its
    /// module loaded) once this many of its events came faster
    /// than its fresh instances were made: each instance then starts
    /// there, several times cheaper under load (`0`: never).
    #[arg(long, default_value_t = 32, env = "WASMLESS_SNAPSHOT_AFTER")]
    pub snapshot_after: u32,
    /// Do not reload functions when their files change.
    #[arg(long)]
    pub no_watch: bool,
    /// Compile new modules with the optimizing compiler only (no baseline
    /// tier answering first).
    #[arg(long)]
    pub no_tiering: bool,
    /// Unload a function idle this long (`30s`, `5m`; `0` never): its next
    /// event loads it again from the compile cache in well under a
    /// millisecond. Needs the compile cache.
    #[arg(long, default_value = "5m")]
    pub unload_idle: String,
    /// Where triggers keep state across restarts (the last cron tick);
    /// default: the user's state folder.
    #[arg(long, env = "WASMLESS_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where the runtimes of source functions are (python.wasm); default:
    /// runtimes/dist here, else share/wasmless/runtimes beside the binary.
    #[arg(long, env = "WASMLESS_RUNTIMES_DIR")]
    pub runtimes_dir: Option<PathBuf>,
    /// A runtime catalog (YAML, as `wasmless runtimes` prints) laid over the
    /// built-in one: its entries replace those with the same id, or add
    /// runtimes.
    #[arg(long, env = "WASMLESS_RUNTIME_CATALOG")]
    pub runtime_catalog: Option<PathBuf>,
    /// The Unix socket of the admin API (the function verbs' way in);
    /// default: PORT.sock in $XDG_RUNTIME_DIR/wasmless, else in
    /// /tmp/wasmless-UID, where the CLI looks for it.
    #[arg(long, env = "WASMLESS_ADMIN_SOCKET")]
    pub admin_socket: Option<PathBuf>,
    /// How many functions it may hold; a deploy of one more is refused.
    #[arg(long, default_value_t = crate::up::DEFAULT_MAX_FUNCTIONS, env = "WASMLESS_MAX_FUNCTIONS")]
    pub max_functions: usize,
    /// How long a deploy waits for its module's baseline compile; past it
    /// the deploy is refused (the compile goes on at the lowest CPU
    /// priority). Not applied with --no-tiering.
    #[arg(long, default_value = "120s", env = "WASMLESS_COMPILE_TIMEOUT")]
    pub compile_timeout: String,
    /// What slow or many clients may hold.
    #[command(flatten)]
    pub connections: ConnectionArgs,
}

/// Where the source runtimes are when no folder is given: `runtimes/dist`
/// in a checkout (after `bash examples/build.sh`), else the installed
/// `share/wasmless/runtimes` beside the binary's `bin`.
pub(super) fn default_runtimes_dir() -> Option<PathBuf> {
    let checkout = PathBuf::from("runtimes/dist");
    if checkout.is_dir() {
        return std::path::absolute(checkout).ok();
    }
    let exe = std::env::current_exe().ok()?;
    let installed = exe.parent()?.parent()?.join("share/wasmless/runtimes");
    installed.is_dir().then_some(installed)
}

impl TryFrom<UpArgs> for (UpConfig, HostConfig) {
    type Error = anyhow::Error;

    fn try_from(args: UpArgs) -> anyhow::Result<Self> {
        let max_body = crate::crd::parse_memory(&args.max_body_size)
            .map_err(|e| anyhow::anyhow!("--max-body-size: {e}"))?;
        let max_memory = crate::crd::parse_memory(&args.max_memory)
            .map_err(|e| anyhow::anyhow!("--max-memory: {e}"))?;
        let cache_dir = if args.no_cache {
            None
        } else {
            args.cache_dir
                .or_else(|| dirs::cache_dir().map(|d| d.join("wasmless")))
        };
        let unload_idle = match args.unload_idle.trim() {
            "0" | "never" => None,
            text => Some(
                crate::crd::parse_duration(text)
                    .map_err(|e| anyhow::anyhow!("--unload-idle: {e}"))?,
            ),
        };
        let ready_idle = match args.ready_idle.trim() {
            "0" | "never" => std::time::Duration::ZERO,
            text => crate::crd::parse_duration(text)
                .map_err(|e| anyhow::anyhow!("--ready-idle: {e}"))?,
        };
        let memory_penalty = match args.memory_penalty.trim() {
            "0" | "never" => std::time::Duration::ZERO,
            text => crate::crd::parse_duration(text)
                .map_err(|e| anyhow::anyhow!("--memory-penalty: {e}"))?,
        };
        let catalog = crate::runtimes::Catalog::load(args.runtime_catalog.as_deref())
            .map_err(|e| anyhow::anyhow!("--runtime-catalog: {e}"))?;
        let up = UpConfig {
            fallback: crate::up::Fallback {
                catalog: std::sync::Arc::new(catalog),
                local: true,
                forward_to: None,
            },
            listen: args.listen,
            paths: args.paths,
            max_body_bytes: usize::try_from(max_body).unwrap_or(usize::MAX),
            max_concurrency: args.max_instances as usize,
            function_concurrency: args.function_concurrency,
            watch: !args.no_watch,
            unload_idle,
            admin: true,
            admin_socket: args.admin_socket,
            connections: args.connections.try_into()?,
            static_kafka_members: true,
            max_functions: args.max_functions,
            drain: std::time::Duration::ZERO,
            memory_penalty,
            name: "up",
            root_function: None,
            pool_namespace: None,
            state_dir: args.state_dir.or_else(|| {
                dirs::state_dir()
                    .or_else(dirs::data_local_dir)
                    .map(|d| d.join("wasmless"))
            }),
        };
        let host = HostConfig {
            engine: EngineConfig {
                max_instances: args.max_instances,
                max_memory,
            },
            cache_dir,
            max_response_bytes: 0,
            tiered: !args.no_tiering,
            secrets_root: None,
            runtimes_dir: args.runtimes_dir.or_else(default_runtimes_dir),
            prepared_code: None,
            installer: crate::host::Installer::Local,
            ready_idle: Some(ready_idle),
            precompiled_dir: None,
            compile_timeout: Some(
                crate::crd::parse_duration(&args.compile_timeout)
                    .map_err(|e| anyhow::anyhow!("--compile-timeout: {e}"))?,
            ),
            snapshot_after: args.snapshot_after,
        };
        Ok((up, host))
    }
}

/// `wasmless up`.
pub(super) async fn up(args: UpArgs) -> anyhow::Result<()> {
    let (up, host) = <(UpConfig, HostConfig)>::try_from(args)?;
    let host = Host::new(host).map_err(|e| anyhow::anyhow!("starting the wasm engine: {e:#}"))?;
    crate::up::run(up, host).await
}

/// `wasmless host`: `up` on a pod's function folder, or a namespace's pool.
pub(super) async fn host(args: HostArgs) -> anyhow::Result<()> {
    let dir = args.function_dir.clone();
    let pool_namespace = match (args.pool, &args.pool_namespace) {
        (false, _) => None,
        (true, Some(namespace)) => Some(namespace.clone()),
        (true, None) => anyhow::bail!(
            "--pool needs the namespace it serves: --pool-namespace or WASMLESS_POOL_NAMESPACE"
        ),
    };
    anyhow::ensure!(
        pool_namespace.is_some() || dir.is_dir(),
        "{}: no such folder (mount the function's ConfigMap there, or give --function-dir)",
        dir.display()
    );
    let root_function = args.function.clone();
    let forward_to = args.forward_to;
    let code_dir = args.code_dir.clone();
    let installer_dir = args.installer_dir.clone();
    let secrets_root = args.secrets_root.clone();
    let precompiled_dir = args.precompiled_dir.clone();
    let drain = match args.drain.trim() {
        "0" => std::time::Duration::ZERO,
        text => crate::crd::parse_duration(text).map_err(|e| anyhow::anyhow!("--drain: {e}"))?,
    };
    let (mut up, mut host) = <(UpConfig, HostConfig)>::try_from(UpArgs::from(args))?;
    up.drain = drain;
    host.secrets_root = Some(secrets_root);
    host.precompiled_dir = Some(precompiled_dir);
    host.prepared_code = code_dir;
    if let Some(dir) = installer_dir {
        host.installer = crate::host::Installer::Containers(dir);
    }
    up.admin = false;
    up.static_kafka_members = false;
    up.fallback.local = false;
    up.fallback.forward_to = forward_to;
    up.name = "host";
    up.root_function = root_function;
    if pool_namespace.is_some() {
        up.name = "pool";
        up.root_function = None;
    }
    up.pool_namespace = pool_namespace;
    let host = Host::new(host).map_err(|e| anyhow::anyhow!("starting the wasm engine: {e:#}"))?;
    crate::up::run(up, host).await
}
