//! `wasmless function`: deploy, call, list, describe, show the logs of
//! and delete functions, on `up` or a cluster.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::target::{ClusterArgs, FunctionTarget, TargetArgs};
use crate::up::{ADMIN_PREFIX, DeployRequest, FunctionInfo};

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

pub(super) fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
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

pub(super) async fn run(verb: FunctionCommand) -> anyhow::Result<()> {
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
