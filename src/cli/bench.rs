//! `wasmless bench`: cold starts and warm requests against `up` or a
//! cluster, and the helpers of benches/run.sh.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::function::parse_env;
use super::target::{ClusterArgs, TargetArgs};

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
    /// Time a hello one request at a time, alone and while a neighbour on
    /// the same host misbehaves (endless loops, memory bombs, a flood of
    /// events): how well one function's trouble is kept from the others.
    Neighbours {
        /// Timed requests per row.
        #[arg(long, default_value_t = 300)]
        requests: usize,
        /// The pause before each timed request.
        #[arg(long, default_value = "10ms")]
        pause: String,
        /// Concurrent clients making the neighbour misbehave.
        #[arg(long, default_value_t = 16)]
        clients: usize,
        /// The measured function.
        #[arg(long, default_value = "examples/wasm/hello.wasm")]
        hello: PathBuf,
        /// The misbehaving neighbour (its `/loop` and `/alloc`).
        #[arg(long, default_value = "examples/wasm/misbehave.wasm")]
        misbehave: PathBuf,
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

pub(super) async fn run(verb: BenchCommand) -> anyhow::Result<()> {
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
            let rows = bench::cold_start(&admin(&target)?, &subjects, trials).await?;
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
            let rows = bench::warm(&admin(&target)?, &subjects, requests, pause).await?;
            print!("{}", bench::warm_table(&rows));
        }
        BenchCommand::Neighbours {
            requests,
            pause,
            clients,
            hello,
            misbehave,
            target,
        } => {
            anyhow::ensure!(requests > 0, "--requests must be at least 1");
            anyhow::ensure!(clients > 0, "--clients must be at least 1");
            let pause = crate::crd::parse_duration(pause.trim())
                .map_err(|e| anyhow::anyhow!("--pause: {e}"))?;
            let read = |path: &PathBuf| {
                std::fs::read(path).with_context(|| {
                    format!(
                        "reading {} (bash examples/build.sh builds it)",
                        path.display()
                    )
                })
            };
            let rows = bench::neighbours(
                &admin(&target)?,
                read(&hello)?,
                read(&misbehave)?,
                requests,
                pause,
                clients,
            )
            .await?;
            print!("{}", bench::neighbours_table(&rows));
        }
        BenchCommand::Deploy {
            count,
            module,
            prefix,
            target,
        } => {
            let bytes =
                std::fs::read(&module).with_context(|| format!("reading {}", module.display()))?;
            bench::deploy_many(&admin(&target)?, &bytes, &prefix, count).await?;
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

/// The admin API of the `up` that `target` names.
fn admin(target: &TargetArgs) -> anyhow::Result<crate::client::Admin> {
    crate::client::Admin::new(&target.url, target.admin_socket.as_deref())
}
