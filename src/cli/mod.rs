//! The command line: `wasmless up` and `host`, the `function`, `trigger`
//! and `topic` verbs, and the operator's and benchmarks' entry points. One
//! file per verb group.

mod autoscale;
mod bench;
mod convert;
mod function;
mod local;
mod operator;
mod pipe;
mod runtimes;
mod serve;
mod spec;
mod target;
mod top;
mod topic;
mod trigger;

use clap::{Parser, Subcommand};

pub use bench::{BenchCommand, SubjectArgs};
pub use convert::ConvertArgs;
pub use function::print_as;
pub use function::{CallArgs, DeployArgs, FunctionCommand, Output, call_content_type};
pub use operator::OperatorArgs;
pub use runtimes::RuntimesArgs;
pub use serve::{HostArgs, PreInitArgs, PrepareArgs, UpArgs};
pub use spec::{FunctionFlags, parse_pair};
pub use target::{ClusterArgs, FunctionTarget, TargetArgs};
pub use topic::{KafkaArgs, PublishArgs, TopicCommand};
pub use trigger::TriggerCommand;

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
    /// kubeless's trigger verbs: http, cronjob and kafka triggers, on `up`
    /// or a cluster.
    #[command(subcommand)]
    Trigger(TriggerCommand),
    /// Autoscale a function's pods on a cluster (kubeless's verbs).
    #[command(subcommand)]
    Autoscale(autoscale::AutoscaleCommand),
    /// Print kubeless.io/v1beta1 objects (files, or stdin with `-`) as
    /// wasmless ones, for `kubectl apply -f -`, with a note per field
    /// that was ignored or changed.
    Convert(ConvertArgs),
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

impl Command {
    /// Whether this verb is a client that prints its answer and exits (not
    /// a server).
    fn prints_and_exits(&self) -> bool {
        !matches!(
            self,
            Command::Up(_) | Command::Host(_) | Command::Operator(_) | Command::Bench(_)
        )
    }
}

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if cli.command.prints_and_exits() {
        pipe::die_on_closed_stdout();
    }
    match cli.command {
        Command::Up(args) => serve::up(args).await,
        Command::Host(args) => serve::host(args).await,
        Command::Function(verb) => function::run(verb).await,
        Command::Trigger(verb) => trigger::run(verb).await,
        Command::Autoscale(verb) => autoscale::run(verb).await,
        Command::Convert(args) => convert::run(args),
        Command::Topic(verb) => topic::run(verb).await,
        Command::Bench(verb) => bench::run(verb).await,
        Command::Operator(args) => {
            let config = crate::operator::run::OperatorConfig::try_from(args)?;
            crate::operator::run::run(config).await
        }
        Command::Prepare(args) => {
            crate::prepare::prepare(&args.function_dir, &args.into, args.file.as_deref()).await
        }
        Command::PreInit(args) => crate::snapshot::pre_init(&args.input, &args.output).await,
        Command::Runtimes(args) if args.precompile.is_some() => runtimes::precompile(args).await,
        Command::Runtimes(args) => {
            let catalog = crate::runtimes::Catalog::load(args.catalog.as_deref())
                .map_err(anyhow::Error::msg)?;
            if args.yaml {
                print!("{}", catalog.to_yaml());
            } else {
                print!("{}", runtimes::table(&catalog));
                println!("\nsource runtimes: {}", runtimes::source_runtimes());
            }
            Ok(())
        }
        Command::Crds => {
            print!("{}", crate::crd::crds_yaml());
            Ok(())
        }
    }
}
