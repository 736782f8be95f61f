//! The command line: `wasmless up`, and the `function`, `trigger` and
//! `topic` verbs.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use crate::host::{EngineConfig, Host, HostConfig};
use crate::up::{ADMIN_PREFIX, DeployRequest, FunctionInfo, TriggerInfo, UpConfig};

/// wasmless: WebAssembly functions as a service.
#[derive(Debug, Parser)]
#[command(name = "wasmless", version, about)]
pub struct Cli {
    /// Log filter, as RUST_LOG (for example `info` or `wasmless=debug`).
    #[arg(long, env = "RUST_LOG", global = true)]
    pub log: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Functions in YAML files and folders on this machine.
    Up(UpArgs),
    /// The entry point of a function's pod: serve the functions and
    /// triggers of the manifests in one folder (the mounted ConfigMap), with
    /// no admin API.
    Host(HostArgs),
    /// Deploy, call, list and delete functions on a running `wasmless up`.
    #[command(subcommand)]
    Function(FunctionCommand),
    /// List the cron and Kafka triggers of a running `wasmless up`.
    #[command(subcommand)]
    Trigger(TriggerCommand),
    /// Create, delete, list and publish to Kafka topics.
    #[command(subcommand)]
    Topic(TopicCommand),
    /// Measure cold starts against a running `wasmless up`, and helpers for
    /// the benchmark script.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Print the CustomResourceDefinitions (`wasmless crds | kubectl apply -f -`).
    Crds,
    /// The first init container of a container-image function's pod:
    /// write the function's files into the folder its runtime reads.
    Prepare(PrepareArgs),
    /// Print the runtime catalog in effect: the `spec.runtime` names, which
    /// run in wasm and which on a container image.
    Runtimes(RuntimesArgs),
    /// A build step of the source runtimes: run a runtime component's
    /// `init` once and write the snapshot of its memory as a new component.
    #[command(hide = true)]
    PreInit(PreInitArgs),
    /// Run the Kubernetes operator: reconcile Functions and triggers into
    /// the objects that serve them, and fire cron triggers.
    Operator(OperatorArgs),
}

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

/// Options of `wasmless runtimes`.
#[derive(Debug, Args)]
pub struct RuntimesArgs {
    /// A catalog file laid over the built-in one, as `up --runtime-catalog`
    /// takes it.
    #[arg(long, env = "WASMLESS_RUNTIME_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Print the catalog as YAML (a starting point for an override).
    #[arg(long)]
    pub yaml: bool,
    /// Compile the source runtimes (python.wasm, js.wasm) for the engine
    /// `wasmless host` runs with its default limits, into this folder: an
    /// image ships it (WASMLESS_PRECOMPILED_DIR) so that no pod compiles an
    /// interpreter.
    #[arg(long, value_name = "DIR")]
    pub precompile: Option<PathBuf>,
    /// Where the runtimes to precompile are (default: as `up` finds them).
    #[arg(long, env = "WASMLESS_RUNTIMES_DIR", requires = "precompile")]
    pub runtimes_dir: Option<PathBuf>,
}

/// Options of `wasmless operator`.
#[derive(Debug, Args)]
pub struct OperatorArgs {
    /// The image function pods run (`wasmless host`): this project's image.
    #[arg(long, env = "WASMLESS_IMAGE", default_value = concat!("ghcr.io/wasmless/wasmless:", env!("CARGO_PKG_VERSION")))]
    pub image: String,
    /// The pull policy of that image (Always, IfNotPresent, Never).
    #[arg(long, env = "WASMLESS_IMAGE_PULL_POLICY")]
    pub image_pull_policy: Option<String>,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "WASMLESS_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Where /healthz and /metrics are served.
    #[arg(long, default_value = "[::]:8081", env = "WASMLESS_OPERATOR_LISTEN")]
    pub listen: SocketAddr,
    /// The operator's namespace, where its cron Lease lives.
    #[arg(long, default_value = "wasmless", env = "POD_NAMESPACE")]
    pub lease_namespace: String,
    /// This replica's name (the pod's name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// The cluster's DNS domain.
    #[arg(long, default_value = "cluster.local", env = "WASMLESS_CLUSTER_DOMAIN")]
    pub cluster_domain: String,
}

impl TryFrom<OperatorArgs> for crate::operator::run::OperatorConfig {
    type Error = anyhow::Error;

    fn try_from(args: OperatorArgs) -> anyhow::Result<Self> {
        if let Some(policy) = &args.image_pull_policy {
            anyhow::ensure!(
                ["Always", "IfNotPresent", "Never"].contains(&policy.as_str()),
                "--image-pull-policy: `{policy}` is not Always, IfNotPresent or Never"
            );
        }
        anyhow::ensure!(!args.image.trim().is_empty(), "--image must not be empty");
        let identity = match args.identity {
            Some(identity) => identity,
            None => format!("wasmless-operator-{}", uuid::Uuid::new_v4().simple()),
        };
        Ok(Self {
            settings: crate::operator::resources::PodSettings {
                image: args.image,
                image_pull_policy: args.image_pull_policy,
                cluster_domain: args.cluster_domain,
            },
            namespace: args.watch_namespace,
            listen: args.listen,
            lease_namespace: args.lease_namespace,
            identity,
        })
    }
}

/// The `wasmless bench` verbs.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Deploy fresh functions and time each from the deploy call to its
    /// first successful response, with the compile cache cold and warm.
    ColdStart {
        /// Trials per kind and cache state.
        #[arg(long, default_value_t = 30)]
        trials: usize,
        /// With a cluster: trials per kind on a Deployment of its own (each
        /// waits for a new pod).
        #[arg(long, default_value_t = 5)]
        dedicated_trials: usize,
        /// What to measure.
        #[command(flatten)]
        subjects: SubjectArgs,
        /// Where `up` runs.
        #[command(flatten)]
        target: TargetArgs,
        /// Measure on a cluster instead: apply a fresh Function, time it to
        /// its first answer through its Service (the API server's proxy).
        #[command(flatten)]
        cluster: ClusterArgs,
    },
    /// Time requests to functions that are loaded and have answered
    /// before, one at a time with a pause between them (as sporadic
    /// traffic comes), per kind of function.
    Warm {
        /// Timed requests per kind.
        #[arg(long, default_value_t = 200)]
        requests: usize,
        /// The pause before each request (`10ms`, `0.5s`).
        #[arg(long, default_value = "10ms")]
        pause: String,
        /// What to measure.
        #[command(flatten)]
        subjects: SubjectArgs,
        /// Where `up` runs.
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Deploy COUNT distinct copies of a module (for memory measurements).
    Deploy {
        /// How many.
        #[arg(long)]
        count: usize,
        /// The module.
        #[arg(long, default_value = "examples/wasm/hello.wasm")]
        module: PathBuf,
        /// Names are PREFIX-0, PREFIX-1, ...
        #[arg(long, default_value = "idle")]
        prefix: String,
        /// Where `up` runs.
        #[command(flatten)]
        target: TargetArgs,
    },
    /// Serve `hello world` from a bare hyper server: the HTTP ceiling that
    /// benches/run.sh compares with.
    Ceiling {
        /// Address to serve on.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: SocketAddr,
    },
}

/// The functions a bench measures.
#[derive(Debug, Args)]
pub struct SubjectArgs {
    /// Modules to measure, KIND=PATH (KIND is any label); may be repeated.
    /// Default: the examples of each kind in --examples.
    #[arg(long = "module", value_parser = parse_env)]
    pub modules: Vec<(String, String)>,
    /// Where the example modules are (`bash examples/build.sh`).
    #[arg(long, default_value = "examples/wasm")]
    pub examples: PathBuf,
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
    /// How long a function's next instance, made ahead of its event after
    /// the last one, waits for it before it is dropped (`0`: make every
    /// instance with its event).
    #[arg(long, default_value = "60s", env = "WASMLESS_READY_IDLE")]
    pub ready_idle: String,
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
        }
    }
}

/// The `wasmless trigger` verbs.
#[derive(Debug, Subcommand)]
pub enum TriggerCommand {
    /// List the triggers and whether they run.
    Ls(TargetArgs),
}

/// The `wasmless topic` verbs.
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// The topic's name.
        name: String,
        /// How many partitions.
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// How many replicas of each partition.
        #[arg(long, default_value_t = 1)]
        replication_factor: i32,
        /// Which Kafka.
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// Delete a topic.
    Delete {
        /// The topic's name.
        name: String,
        /// Which Kafka.
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// List the topics.
    Ls(KafkaArgs),
    /// Publish a message.
    Publish(PublishArgs),
}

/// Which Kafka to talk to.
#[derive(Debug, Args)]
pub struct KafkaArgs {
    /// Bootstrap brokers, host:port[,host:port].
    #[arg(long, default_value = "localhost:9092", env = "WASMLESS_KAFKA_BROKERS")]
    pub brokers: String,
}

/// Options of `wasmless topic publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The topic.
    pub topic: String,
    /// The message (default: read from --file, or stdin).
    #[arg(long, conflicts_with = "file")]
    pub data: Option<String>,
    /// A file holding the message.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The message key.
    #[arg(long)]
    pub key: Option<String>,
    /// The message's content type (sent as the `content-type` header).
    #[arg(long)]
    pub content_type: Option<String>,
    /// Other headers, NAME=VALUE; may be repeated.
    #[arg(long = "header", value_parser = parse_env)]
    pub headers: Vec<(String, String)>,
    /// Which Kafka.
    #[command(flatten)]
    pub kafka: KafkaArgs,
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
    /// How long a function's next instance, made ahead of its event after
    /// the last one, waits for it before it is dropped (`0`: make every
    /// instance with its event).
    #[arg(long, default_value = "60s")]
    pub ready_idle: String,
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
}

/// Where the source runtimes are when no folder is given: `runtimes/dist`
/// in a checkout (after `bash examples/build.sh`), else the installed
/// `share/wasmless/runtimes` beside the binary's `bin`.
/// `wasmless runtimes --precompile DIR`: the source runtimes' optimized
/// code for the engine of a `wasmless host` with its default settings.
async fn precompile_runtimes(args: RuntimesArgs) -> anyhow::Result<()> {
    let into = args.precompile.expect("checked by the caller");
    let Cli {
        command: Command::Host(defaults),
        ..
    } = Cli::parse_from(["wasmless", "host"])
    else {
        unreachable!("parsed as the host command");
    };
    let (_, mut config) = <(UpConfig, HostConfig)>::try_from(UpArgs::from(defaults))?;
    config.cache_dir = Some(into.clone());
    config.tiered = false;
    config.precompiled_dir = None;
    let dir = args
        .runtimes_dir
        .or_else(default_runtimes_dir)
        .ok_or_else(|| anyhow::anyhow!("no runtimes folder: give --runtimes-dir (runtimes/dist after `bash runtimes/build.sh`)"))?;
    let host = Host::new(config).map_err(|e| anyhow::anyhow!("starting the wasm engine: {e:#}"))?;
    for language in [
        crate::runtimes::Language::Python,
        crate::runtimes::Language::JavaScript,
    ] {
        let path = dir.join(language.component_file());
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "reading the {} runtime at {}",
                language.title(),
                path.display()
            )
        })?;
        let started = std::time::Instant::now();
        eprintln!(
            "precompiling {} ({} MiB) ...",
            path.display(),
            bytes.len() >> 20
        );
        let engine_host = host.clone();
        let compiled = tokio::task::spawn_blocking(move || engine_host.precompile(&bytes))
            .await?
            .map_err(|e| anyhow::anyhow!("compiling {}: {e:#}", path.display()))?;
        eprintln!(
            "  {} in {:.1} s",
            if compiled {
                "compiled"
            } else {
                "already there"
            },
            started.elapsed().as_secs_f64()
        );
    }
    println!("{}", into.display());
    Ok(())
}

fn default_runtimes_dir() -> Option<PathBuf> {
    let checkout = PathBuf::from("runtimes/dist");
    if checkout.is_dir() {
        return std::path::absolute(checkout).ok();
    }
    let exe = std::env::current_exe().ok()?;
    let installed = exe.parent()?.parent()?.join("share/wasmless/runtimes");
    installed.is_dir().then_some(installed)
}

/// The `wasmless function` verbs.
#[derive(Debug, Subcommand)]
pub enum FunctionCommand {
    /// Deploy (or replace) a function from a file.
    Deploy(DeployArgs),
    /// Call a function and print its response.
    Call(CallArgs),
    /// List the functions and their state.
    Ls(FunctionTarget),
    /// Show a function's settings, state and (in a cluster) Events.
    Describe {
        /// The function's name.
        name: String,
        /// Where the function runs.
        #[command(flatten)]
        target: FunctionTarget,
    },
    /// Print what a function wrote (stdout and stderr): its recent lines
    /// from a local `up`, or its pods' logs in a cluster.
    Logs {
        /// The function's name.
        name: String,
        /// Only the last N lines of each pod.
        #[arg(long)]
        tail: Option<i64>,
        /// In a cluster, the container whose log to show: by default the
        /// function's own output (`runtime` on the image path, where a
        /// `wasmless host` container forwards events to it; `function` on
        /// the wasm path).
        #[arg(short = 'c', long)]
        container: Option<String>,
        /// Where the function runs.
        #[command(flatten)]
        target: FunctionTarget,
    },
    /// Delete a function.
    Delete {
        /// The function's name.
        name: String,
        /// Where the function runs.
        #[command(flatten)]
        target: FunctionTarget,
    },
}

/// A running `up` (the default), or a cluster when any cluster flag is
/// given.
#[derive(Debug, Args)]
pub struct FunctionTarget {
    /// Where `up` runs.
    #[command(flatten)]
    pub up: TargetArgs,
    /// Which cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Kubernetes flags, as kubectl takes them. Any of them selects the cluster
/// instead of a local `up`.
#[derive(Debug, Default, Args)]
pub struct ClusterArgs {
    /// Talk to the cluster of the current kubeconfig context.
    #[arg(long)]
    pub cluster: bool,
    /// The kubeconfig file (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context.
    #[arg(long)]
    pub context: Option<String>,
    /// The namespace (default: the context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

impl ClusterArgs {
    /// The cluster to talk to, when any cluster flag was given.
    pub fn target(&self) -> Option<crate::cluster::ClusterTarget> {
        let wanted = self.cluster
            || self.kubeconfig.is_some()
            || self.context.is_some()
            || self.namespace.is_some();
        wanted.then(|| crate::cluster::ClusterTarget {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
            namespace: self.namespace.clone(),
        })
    }
}

/// Which `up` to talk to.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// The URL of a running `wasmless up`.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "WASMLESS_URL")]
    pub url: String,
}

/// Options of `wasmless function deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The function's name.
    pub name: String,
    /// The module (.wasm or .wat) or source file.
    #[arg(long)]
    pub from_file: PathBuf,
    /// The runtime (default `wasm`).
    #[arg(long)]
    pub runtime: Option<String>,
    /// The handler, for source runtimes.
    #[arg(long)]
    pub handler: Option<String>,
    /// Run on this container image instead of wasm (the runtime's contract,
    /// or any image with `--runtime custom`).
    #[arg(long)]
    pub image: Option<String>,
    /// Per-event timeout: seconds or a duration (`500ms`).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Per-event memory limit (`64Mi`).
    #[arg(long)]
    pub memory: Option<String>,
    /// Environment variables, KEY=VALUE; may be repeated.
    #[arg(long = "env", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Cluster only: Secrets mounted at /<secret>; comma-separated or
    /// repeated.
    #[arg(long, value_delimiter = ',')]
    pub secrets: Vec<String>,
    /// Cluster only: the port the function's pods listen on.
    #[arg(long)]
    pub port: Option<i32>,
    /// Cluster only: how many pods (with --max-replicas, the fewest).
    #[arg(long)]
    pub replicas: Option<i32>,
    /// Cluster only: autoscale on CPU up to this many pods.
    #[arg(long)]
    pub max_replicas: Option<i32>,
    /// Cluster only: wait until the function is ready (or refused).
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, default_value = "2m", value_parser = parse_wait)]
    pub wait_timeout: std::time::Duration,
    /// Where `up` runs.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Which cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

fn parse_wait(text: &str) -> Result<std::time::Duration, String> {
    crate::crd::parse_duration(text)
}

/// Options of `wasmless function call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The function's name.
    pub name: String,
    /// The event data (the request body).
    #[arg(long)]
    pub data: Option<String>,
    /// Its content type.
    #[arg(long)]
    pub content_type: Option<String>,
    /// Where `up` runs.
    #[command(flatten)]
    pub target: TargetArgs,
    /// Which cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
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
            ready_idle: Some(ready_idle),
            precompiled_dir: None,
        };
        Ok((up, host))
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Up(args) => {
            let (up, host) = <(UpConfig, HostConfig)>::try_from(args)?;
            let host =
                Host::new(host).map_err(|e| anyhow::anyhow!("starting the wasm engine: {e:#}"))?;
            crate::up::run(up, host).await
        }
        Command::Host(args) => {
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
            let secrets_root = args.secrets_root.clone();
            let precompiled_dir = args.precompiled_dir.clone();
            let (mut up, mut host) = <(UpConfig, HostConfig)>::try_from(UpArgs::from(args))?;
            host.secrets_root = Some(secrets_root);
            host.precompiled_dir = Some(precompiled_dir);
            host.prepared_code = code_dir;
            up.admin = false;
            up.fallback.local = false;
            up.fallback.forward_to = forward_to;
            up.name = "host";
            up.root_function = root_function;
            if pool_namespace.is_some() {
                up.name = "pool";
                up.root_function = None;
            }
            up.pool_namespace = pool_namespace;
            let host =
                Host::new(host).map_err(|e| anyhow::anyhow!("starting the wasm engine: {e:#}"))?;
            crate::up::run(up, host).await
        }
        Command::Function(verb) => run_function(verb).await,
        Command::Trigger(TriggerCommand::Ls(target)) => list_triggers(target).await,
        Command::Topic(verb) => run_topic(verb).await,
        Command::Bench(verb) => run_bench(verb).await,
        Command::Operator(args) => {
            let config = crate::operator::run::OperatorConfig::try_from(args)?;
            crate::operator::run::run(config).await
        }
        Command::Prepare(args) => {
            crate::prepare::prepare(&args.function_dir, &args.into, args.file.as_deref()).await
        }
        Command::PreInit(args) => crate::snapshot::pre_init(&args.input, &args.output).await,
        Command::Runtimes(args) if args.precompile.is_some() => precompile_runtimes(args).await,
        Command::Runtimes(args) => {
            let catalog = crate::runtimes::Catalog::load(args.catalog.as_deref())
                .map_err(anyhow::Error::msg)?;
            if args.yaml {
                print!("{}", catalog.to_yaml());
            } else {
                print!("{}", runtimes_table(&catalog));
            }
            Ok(())
        }
        Command::Crds => {
            print!("{}", crate::crd::crds_yaml());
            Ok(())
        }
    }
}

async fn run_bench(verb: BenchCommand) -> anyhow::Result<()> {
    use crate::bench;
    match verb {
        BenchCommand::ColdStart {
            trials,
            dedicated_trials,
            subjects,
            target,
            cluster,
        } => {
            anyhow::ensure!(trials > 0, "--trials must be at least 1");
            let subjects = bench_subjects(&subjects)?;
            if let Some(target) = cluster.target() {
                let cluster = crate::cluster::Cluster::connect(&target).await?;
                let rows =
                    bench::cluster::cold_start(&cluster, &subjects, trials, dedicated_trials)
                        .await?;
                print!("{}", bench::cluster::table(&rows));
                return Ok(());
            }
            let rows = bench::cold_start(&target.url, &subjects, trials).await?;
            print!("{}", bench::table(&rows));
        }
        BenchCommand::Warm {
            requests,
            pause,
            subjects,
            target,
        } => {
            anyhow::ensure!(requests > 0, "--requests must be at least 1");
            let pause = match pause.trim() {
                "0" => std::time::Duration::ZERO,
                text => {
                    crate::crd::parse_duration(text).map_err(|e| anyhow::anyhow!("--pause: {e}"))?
                }
            };
            let subjects = bench_subjects(&subjects)?;
            let rows = bench::warm(&target.url, &subjects, requests, pause).await?;
            print!("{}", bench::warm_table(&rows));
        }
        BenchCommand::Deploy {
            count,
            module,
            prefix,
            target,
        } => {
            let bytes =
                std::fs::read(&module).with_context(|| format!("reading {}", module.display()))?;
            bench::deploy_many(&target.url, &bytes, &prefix, count).await?;
        }
        BenchCommand::Ceiling { listen } => bench::ceiling(listen).await?,
    }
    Ok(())
}

/// The modules given as KIND=PATH, or else the examples.
fn bench_subjects(args: &SubjectArgs) -> anyhow::Result<Vec<crate::bench::Subject>> {
    if args.modules.is_empty() {
        return crate::bench::Subject::examples(&args.examples);
    }
    args.modules
        .iter()
        .map(|(kind, path)| crate::bench::Subject::from_file(kind, std::path::Path::new(path)))
        .collect()
}

async fn list_triggers(target: TargetArgs) -> anyhow::Result<()> {
    let url = format!("{}{ADMIN_PREFIX}triggers", target.url.trim_end_matches('/'));
    let answer = crate::client::send(http::Method::GET, &url, None, Vec::new()).await?;
    if !answer.status.is_success() {
        anyhow::bail!(
            "listing failed: {}",
            String::from_utf8_lossy(&answer.body).trim()
        );
    }
    let list: Vec<TriggerInfo> = serde_json::from_slice(&answer.body)?;
    println!("{:<32} {:<8} DETAIL", "NAME", "STATUS");
    for t in list {
        println!("{:<32} {:<8} {}", t.name, t.status, t.detail);
    }
    Ok(())
}

async fn run_topic(verb: TopicCommand) -> anyhow::Result<()> {
    use crate::topic;
    match verb {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            kafka,
        } => {
            topic::create(&kafka.brokers, &name, partitions, replication_factor).await?;
            println!("created {name} ({partitions} partitions)");
        }
        TopicCommand::Delete { name, kafka } => {
            topic::delete(&kafka.brokers, &name).await?;
            println!("deleted {name}");
        }
        TopicCommand::Ls(kafka) => {
            println!("{:<40} PARTITIONS", "TOPIC");
            for t in topic::list(&kafka.brokers).await? {
                println!("{:<40} {}", t.name, t.partitions);
            }
        }
        TopicCommand::Publish(args) => {
            let data = match (args.data, &args.file) {
                (Some(data), _) => data.into_bytes(),
                (None, Some(file)) => {
                    std::fs::read(file).with_context(|| format!("reading {}", file.display()))?
                }
                (None, None) => {
                    use std::io::Read as _;
                    let mut data = Vec::new();
                    std::io::stdin().read_to_end(&mut data)?;
                    data
                }
            };
            let mut headers = args.headers;
            if let Some(content_type) = args.content_type {
                headers.push(("content-type".to_owned(), content_type));
            }
            let message = topic::Publish {
                data,
                key: args.key,
                headers,
            };
            let placed = topic::publish(&args.kafka.brokers, &args.topic, &[message]).await?;
            for (partition, offset) in placed {
                println!("published to {}/{partition} at offset {offset}", args.topic);
            }
        }
    }
    Ok(())
}

/// The cluster a function verb names, if any.
fn cluster_of(verb: &FunctionCommand) -> Option<crate::cluster::ClusterTarget> {
    match verb {
        FunctionCommand::Deploy(args) => args.cluster.target(),
        FunctionCommand::Call(args) => args.cluster.target(),
        FunctionCommand::Ls(target)
        | FunctionCommand::Describe { target, .. }
        | FunctionCommand::Logs { target, .. }
        | FunctionCommand::Delete { target, .. } => target.cluster.target(),
    }
}

async fn run_cluster_function(
    verb: FunctionCommand,
    target: crate::cluster::ClusterTarget,
) -> anyhow::Result<()> {
    use crate::cluster;
    let cluster = cluster::Cluster::connect(&target).await?;
    match verb {
        FunctionCommand::Deploy(args) => {
            let deployment = cluster::Deployment {
                name: args.name,
                from_file: args.from_file,
                runtime: args.runtime,
                handler: args.handler,
                image: args.image,
                timeout: args.timeout,
                memory: args.memory,
                env: args.env,
                secrets: args.secrets,
                port: args.port,
                replicas: args.replicas,
                max_replicas: args.max_replicas,
            };
            let wait = args.wait.then_some(args.wait_timeout);
            cluster::deploy(&cluster, &deployment, wait).await
        }
        FunctionCommand::Call(args) => {
            let (status, body) = cluster::call(
                &cluster,
                &args.name,
                args.data,
                args.content_type.as_deref(),
            )
            .await?;
            use std::io::Write as _;
            std::io::stdout().write_all(&body)?;
            anyhow::ensure!(status.is_success(), "{} answered {status}", args.name);
            Ok(())
        }
        FunctionCommand::Ls(_) => cluster::list(&cluster).await,
        FunctionCommand::Describe { name, .. } => cluster::describe(&cluster, &name).await,
        FunctionCommand::Logs {
            name,
            tail,
            container,
            ..
        } => cluster::logs(&cluster, &name, tail, container.as_deref()).await,
        FunctionCommand::Delete { name, .. } => cluster::delete(&cluster, &name).await,
    }
}

async fn run_function(verb: FunctionCommand) -> anyhow::Result<()> {
    use crate::client::send;
    use http::Method;
    if let Some(target) = cluster_of(&verb) {
        return run_cluster_function(verb, target).await;
    }
    match verb {
        FunctionCommand::Deploy(args) => {
            let cluster_only = [
                ("--secrets", !args.secrets.is_empty()),
                ("--port", args.port.is_some()),
                ("--replicas", args.replicas.is_some()),
                ("--max-replicas", args.max_replicas.is_some()),
                ("--wait", args.wait),
            ];
            if let Some((flag, _)) = cluster_only.iter().find(|(_, set)| *set) {
                anyhow::bail!(
                    "{flag} applies to a cluster; add --cluster (or --namespace, --context, --kubeconfig)"
                );
            }
            let source = std::fs::read(&args.from_file)
                .with_context(|| format!("reading {}", args.from_file.display()))?;
            let request = DeployRequest {
                runtime: args.runtime,
                handler: args.handler,
                image: args.image,
                timeout: args.timeout,
                memory: args.memory,
                env: args.env,
                source,
            };
            let url = format!(
                "{}{ADMIN_PREFIX}functions/{}",
                args.target.url.trim_end_matches('/'),
                args.name
            );
            let answer = send(
                Method::PUT,
                &url,
                Some("application/json"),
                serde_json::to_vec(&request)?,
            )
            .await?;
            if !answer.status.is_success() {
                anyhow::bail!(
                    "deploying {} failed: {}",
                    args.name,
                    String::from_utf8_lossy(&answer.body).trim()
                );
            }
            let info: Option<FunctionInfo> = serde_json::from_slice(&answer.body)?;
            let kind = info.and_then(|i| i.kind).unwrap_or_default();
            println!("deployed {} ({kind})", args.name);
        }
        FunctionCommand::Call(args) => {
            let url = format!("{}/{}", args.target.url.trim_end_matches('/'), args.name);
            let (method, body) = match args.data {
                Some(data) => (Method::POST, data.into_bytes()),
                None => (Method::GET, Vec::new()),
            };
            let answer = send(method, &url, args.content_type.as_deref(), body).await?;
            use std::io::Write as _;
            std::io::stdout().write_all(&answer.body)?;
            if !answer.status.is_success() {
                anyhow::bail!("{} answered {}", args.name, answer.status);
            }
        }
        FunctionCommand::Logs {
            name, tail, target, ..
        } => {
            let mut url = format!(
                "{}{ADMIN_PREFIX}functions/{name}/logs",
                target.up.url.trim_end_matches('/')
            );
            if let Some(tail) = tail {
                url.push_str(&format!("?tail={tail}"));
            }
            let answer = send(Method::GET, &url, None, Vec::new()).await?;
            anyhow::ensure!(
                answer.status.is_success(),
                "{}",
                String::from_utf8_lossy(&answer.body).trim()
            );
            use std::io::Write as _;
            std::io::stdout().write_all(&answer.body)?;
        }
        FunctionCommand::Describe { name, target } => {
            let url = format!(
                "{}{ADMIN_PREFIX}functions",
                target.up.url.trim_end_matches('/')
            );
            let answer = send(Method::GET, &url, None, Vec::new()).await?;
            anyhow::ensure!(
                answer.status.is_success(),
                "listing failed: {}",
                String::from_utf8_lossy(&answer.body).trim()
            );
            let list: Vec<FunctionInfo> = serde_json::from_slice(&answer.body)?;
            let f = list
                .into_iter()
                .find(|f| f.name == name)
                .ok_or_else(|| anyhow::anyhow!("no function named {name} at {}", target.up.url))?;
            println!("Name:     {}", f.name);
            println!("Status:   {}", f.status);
            println!("Runtime:  {}", f.runtime);
            println!("Kind:     {}", f.kind.as_deref().unwrap_or("-"));
            println!("Code:     {}", f.code.as_deref().unwrap_or("-"));
            println!("Origin:   {}", f.origin);
            if let Some(placement) = &f.placement {
                println!("Path:     {} ({})", placement.path, placement.reason);
                if let Some(image) = &placement.image {
                    println!("Image:    {image}");
                }
                println!("Why:      {}", placement.message);
            }
            if let Some(reason) = f.reason {
                println!("Reason:   {reason}");
            }
            println!(
                "URL:      {}/{}/",
                target.up.url.trim_end_matches('/'),
                f.name
            );
        }
        FunctionCommand::Ls(target) => {
            let target = target.up;
            let url = format!(
                "{}{ADMIN_PREFIX}functions",
                target.url.trim_end_matches('/')
            );
            let answer = send(Method::GET, &url, None, Vec::new()).await?;
            if !answer.status.is_success() {
                anyhow::bail!(
                    "listing failed: {}",
                    String::from_utf8_lossy(&answer.body).trim()
                );
            }
            let list: Vec<FunctionInfo> = serde_json::from_slice(&answer.body)?;
            println!(
                "{:<24} {:<8} {:<13} {:<10} {:<10} DETAIL",
                "NAME", "STATUS", "KIND", "CODE", "RUNTIME"
            );
            for f in list {
                let detail = f.reason.unwrap_or(f.origin);
                println!(
                    "{:<24} {:<8} {:<13} {:<10} {:<10} {detail}",
                    f.name,
                    f.status,
                    f.kind.unwrap_or_else(|| "-".into()),
                    f.code.unwrap_or_else(|| "-".into()),
                    f.runtime
                );
            }
        }
        FunctionCommand::Delete { name, target } => {
            let target = target.up;
            let url = format!(
                "{}{ADMIN_PREFIX}functions/{name}",
                target.url.trim_end_matches('/')
            );
            let answer = send(Method::DELETE, &url, None, Vec::new()).await?;
            if !answer.status.is_success() {
                anyhow::bail!(
                    "deleting {name} failed: {}",
                    String::from_utf8_lossy(&answer.body).trim()
                );
            }
            println!("deleted {name}");
        }
    }
    Ok(())
}

/// The catalog as a table: which names run where.
fn runtimes_table(catalog: &crate::runtimes::Catalog) -> String {
    let mut rows = vec![[
        "RUNTIME".to_owned(),
        "NAMES".to_owned(),
        "WASM".to_owned(),
        "IMAGE".to_owned(),
        "LOCAL".to_owned(),
    ]];
    rows.push([
        "wasm".to_owned(),
        "wasm".to_owned(),
        "module".to_owned(),
        "-".to_owned(),
        "-".to_owned(),
    ]);
    for entry in &catalog.runtimes {
        rows.push([
            entry.id.clone(),
            entry.names.join(","),
            entry
                .wasm
                .map_or("-".to_owned(), |l| l.title().to_lowercase()),
            entry
                .image
                .clone()
                .unwrap_or_else(|| "spec.image".to_owned()),
            entry
                .local
                .as_ref()
                .map_or("-".to_owned(), |l| l.interpreter.clone()),
        ]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|row| {
            let line: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            format!("{}\n", line.join("  ").trim_end())
        })
        .collect()
}
