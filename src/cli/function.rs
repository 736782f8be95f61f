//! `wasmless function`: kubeless's function verbs (deploy, update, call,
//! ls, describe, logs, top, delete), on a running `up` or, with any
//! cluster flag, a cluster.

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};

use super::local::Local;
use super::spec::{self, FunctionFlags};
use super::target::FunctionTarget;
use crate::crd::Function;
use crate::up::FunctionInfo;

/// The `wasmless function` verbs.
#[derive(Debug, Subcommand)]
pub enum FunctionCommand {
    /// Deploy (or replace) a function.
    Deploy(DeployArgs),
    /// Change a deployed function: only the flags given change.
    Update(DeployArgs),
    /// Call a function and print its response.
    Call(CallArgs),
    /// List the functions (all, or those named) and their state.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
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
        /// Keep printing new lines as they come.
        #[arg(short = 'f', long)]
        follow: bool,
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
    /// Calls, failures and durations per function, from the metrics.
    Top(TopArgs),
    /// Delete a function.
    Delete {
        /// The function's name.
        name: String,
        /// Where the function runs.
        #[command(flatten)]
        target: FunctionTarget,
    },
}

/// Options of `function deploy` and `function update`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The function's name.
    pub name: String,
    /// What the function is.
    #[command(flatten)]
    pub flags: FunctionFlags,
    /// Cluster: wait until the function is ready (or refused).
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, default_value = "2m", value_parser = parse_wait)]
    pub wait_timeout: std::time::Duration,
    /// Where it runs.
    #[command(flatten)]
    pub target: FunctionTarget,
}

fn parse_wait(text: &str) -> Result<std::time::Duration, String> {
    crate::crd::parse_duration(text)
}

/// Options of `function call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The function's name.
    pub name: String,
    /// The event data, POSTed (without it, a GET). JSON is sent as
    /// `application/json`, anything else as
    /// `application/x-www-form-urlencoded`, as kubeless did.
    #[arg(long)]
    pub data: Option<String>,
    /// Its content type, instead of the guess.
    #[arg(long)]
    pub content_type: Option<String>,
    /// Where the function runs.
    #[command(flatten)]
    pub target: FunctionTarget,
}

/// An output format, as kubeless's `--out` took it.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Output {
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// Options of `function ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only these functions.
    pub names: Vec<String>,
    /// Print the functions as JSON or YAML instead of a table.
    #[arg(short = 'o', long = "out")]
    pub out: Option<Output>,
    /// Where the functions run.
    #[command(flatten)]
    pub target: FunctionTarget,
}

/// Options of `function top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Only this function.
    #[arg(long = "function", short = 'f')]
    pub function: Option<String>,
    /// Print as JSON or YAML instead of a table.
    #[arg(short = 'o', long = "out")]
    pub out: Option<Output>,
    /// Where the functions run.
    #[command(flatten)]
    pub target: FunctionTarget,
}

/// `KEY=VALUE`, for flags that take exactly that.
pub(super) fn parse_env(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))
}

/// The content type kubeless's `function call --data` sent.
pub fn call_content_type(data: &str) -> &'static str {
    if serde_json::from_str::<serde_json::Value>(data).is_ok() {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    }
}

/// Prints `value` as JSON or YAML.
pub fn print_as<T: serde::Serialize>(value: &T, out: Output) -> anyhow::Result<()> {
    match out {
        Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Output::Yaml => print!("{}", serde_saphyr::to_string(value)?),
    }
    Ok(())
}

impl FunctionCommand {
    fn target(&self) -> &FunctionTarget {
        match self {
            FunctionCommand::Deploy(args) | FunctionCommand::Update(args) => &args.target,
            FunctionCommand::Call(args) => &args.target,
            FunctionCommand::Ls(args) => &args.target,
            FunctionCommand::Top(args) => &args.target,
            FunctionCommand::Describe { target, .. }
            | FunctionCommand::Logs { target, .. }
            | FunctionCommand::Delete { target, .. } => target,
        }
    }
}

pub(super) async fn run(verb: FunctionCommand) -> anyhow::Result<()> {
    if let Some(target) = verb.target().cluster.target() {
        return run_on_cluster(verb, target).await;
    }
    let local = Local::new(&verb.target().up)?;
    match verb {
        FunctionCommand::Deploy(args) => deploy_local(&local, args, false).await,
        FunctionCommand::Update(args) => deploy_local(&local, args, true).await,
        FunctionCommand::Call(args) => {
            let url = format!("{}/{}", local.url(), args.name);
            let (method, body, content_type) = match args.data {
                Some(data) => {
                    let content_type = args
                        .content_type
                        .unwrap_or_else(|| call_content_type(&data).to_owned());
                    (http::Method::POST, data.into_bytes(), Some(content_type))
                }
                None => (http::Method::GET, Vec::new(), args.content_type),
            };
            let answer = crate::client::send(method, &url, content_type.as_deref(), body).await?;
            use std::io::Write as _;
            std::io::stdout().write_all(&answer.body)?;
            anyhow::ensure!(
                answer.status.is_success(),
                "{} answered {}",
                args.name,
                answer.status
            );
            Ok(())
        }
        FunctionCommand::Logs {
            name, tail, follow, ..
        } => logs_local(&local, &name, tail, follow).await,
        FunctionCommand::Describe { name, .. } => describe_local(&local, &name).await,
        FunctionCommand::Ls(args) => {
            let mut list: Vec<FunctionInfo> = local.get("functions").await?.unwrap_or_default();
            if !args.names.is_empty() {
                for name in &args.names {
                    anyhow::ensure!(
                        list.iter().any(|f| &f.name == name),
                        "no function named {name} at {}",
                        local.url()
                    );
                }
                list.retain(|f| args.names.contains(&f.name));
            }
            if let Some(out) = args.out {
                return print_as(&list, out);
            }
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
            Ok(())
        }
        FunctionCommand::Top(args) => {
            let text = local.metrics().await?;
            let list: Vec<FunctionInfo> = local.get("functions").await?.unwrap_or_default();
            let figures = super::top::parse(&[text], "-");
            let rows = top_rows(
                list.iter().map(|f| f.name.clone()),
                figures,
                args.function.as_deref(),
                "-",
            )?;
            print_top(&rows, args.out)
        }
        FunctionCommand::Delete { name, .. } => {
            local.delete("Function", &name).await?;
            // Its --schedule trigger goes with it.
            let cron = format!("trigger-{name}");
            let triggers: Vec<crate::up::TriggerInfo> =
                local.get("triggers").await?.unwrap_or_default();
            if triggers
                .iter()
                .any(|t| t.name == format!("CronTrigger/{cron}") && t.origin == "api")
            {
                local.delete("CronTrigger", &cron).await?;
            }
            println!("deleted {name}");
            Ok(())
        }
    }
}

/// The rows of `top`: every function listed, with its figures (zero when
/// it has had no event).
fn top_rows(
    names: impl Iterator<Item = String>,
    mut figures: std::collections::BTreeMap<String, super::top::FunctionMetrics>,
    only: Option<&str>,
    namespace: &str,
) -> anyhow::Result<Vec<super::top::FunctionMetrics>> {
    let mut rows: Vec<super::top::FunctionMetrics> = names
        .filter(|n| only.is_none_or(|o| o == n))
        .map(|name| {
            figures
                .remove(&name)
                .unwrap_or_else(|| super::top::FunctionMetrics {
                    function: name,
                    namespace: namespace.to_owned(),
                    method: "ANY".to_owned(),
                    ..Default::default()
                })
        })
        .collect();
    if let Some(only) = only {
        anyhow::ensure!(!rows.is_empty(), "no function named {only}");
    }
    rows.sort_by(|a, b| a.function.cmp(&b.function));
    Ok(rows)
}

/// `top`'s rows as kubeless printed them: its table, or JSON or YAML.
fn print_top(rows: &[super::top::FunctionMetrics], out: Option<Output>) -> anyhow::Result<()> {
    match out {
        Some(out) => print_as(&rows, out),
        None => {
            print!("{}", super::top::table(rows));
            Ok(())
        }
    }
}

/// Notes the flags that mean nothing under `up`, once each.
fn note_cluster_flags(flags: &FunctionFlags, wait: bool, url: &str) {
    let mut ignored = spec::cluster_only(flags);
    if wait {
        ignored.push("--wait");
    }
    if !ignored.is_empty() {
        eprintln!(
            "note: {} {} a cluster's (add --cluster to use a cluster); under up every function answers at {url}/NAME/ as soon as it is deployed",
            ignored.join(", "),
            if ignored.len() == 1 { "is" } else { "are" }
        );
    }
}

async fn deploy_local(local: &Local, args: DeployArgs, update: bool) -> anyhow::Result<()> {
    let name = &args.name;
    note_cluster_flags(&args.flags, args.wait, local.url());
    let base = if update {
        let found: Option<Function> = local.get(&format!("objects/Function/{name}")).await?;
        Some(found.ok_or_else(|| {
            anyhow::anyhow!(
                "no function named {name} at {}: deploy it first",
                local.url()
            )
        })?)
    } else {
        None
    };
    let catalog = crate::runtimes::Catalog::built_in();
    let described = spec::describe(name, &args.flags, base, &catalog).await?;
    let function = spec::without_cluster_fields(described.function);
    let mut objects = vec![serde_json::to_value(&function)?];
    if let Some(cron) = &described.cron {
        objects.push(serde_json::to_value(cron)?);
    }
    let answer = local.apply(&objects).await?;
    let mut failed = None;
    for object in answer.objects {
        match (object.kind.as_str(), object.outcome.as_str()) {
            ("Function", "failed") => {
                failed = Some(object.message.unwrap_or_default());
            }
            ("Function", _) => println!(
                "{} {} ({})",
                if update { "updated" } else { "deployed" },
                object.name,
                object.message.unwrap_or_default()
            ),
            (kind, _) => println!("applied {kind}/{}", object.name),
        }
    }
    if let Some(reason) = failed {
        anyhow::bail!("{name} did not load: {}", reason.trim());
    }
    Ok(())
}

async fn logs_local(
    local: &Local,
    name: &str,
    tail: Option<i64>,
    follow: bool,
) -> anyhow::Result<()> {
    let base = format!("functions/{name}/logs");
    let fetch = |tail: Option<i64>| {
        let mut path = base.clone();
        if let Some(tail) = tail {
            path.push_str(&format!("?tail={tail}"));
        }
        async move {
            let answer = local
                .admin(http::Method::GET, &path, None, Vec::new())
                .await?;
            anyhow::ensure!(
                answer.status.is_success(),
                "{}",
                String::from_utf8_lossy(&answer.body).trim()
            );
            Ok::<_, anyhow::Error>(String::from_utf8_lossy(&answer.body).into_owned())
        }
    };
    let mut seen: Vec<String> = fetch(tail).await?.lines().map(str::to_owned).collect();
    for line in &seen {
        println!("{line}");
    }
    if !follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let now: Vec<String> = fetch(None).await?.lines().map(str::to_owned).collect();
        // The new lines are what follows the last one seen.
        let start = match seen.last() {
            Some(last) => now.iter().rposition(|l| l == last).map_or(0, |at| at + 1),
            None => 0,
        };
        for line in &now[start..] {
            println!("{line}");
        }
        if start < now.len() {
            seen = now;
        }
    }
}

async fn describe_local(local: &Local, name: &str) -> anyhow::Result<()> {
    let list: Vec<FunctionInfo> = local.get("functions").await?.unwrap_or_default();
    let f = list
        .into_iter()
        .find(|f| f.name == name)
        .ok_or_else(|| anyhow::anyhow!("no function named {name} at {}", local.url()))?;
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
    println!("URL:      {}/{}/", local.url(), f.name);
    Ok(())
}

async fn run_on_cluster(
    verb: FunctionCommand,
    target: crate::cluster::ClusterTarget,
) -> anyhow::Result<()> {
    use crate::cluster;
    let cluster = cluster::Cluster::connect(&target).await?;
    match verb {
        FunctionCommand::Deploy(args) => deploy_cluster(&cluster, args, false).await,
        FunctionCommand::Update(args) => deploy_cluster(&cluster, args, true).await,
        FunctionCommand::Call(args) => {
            let content_type = args.content_type.or_else(|| {
                args.data
                    .as_deref()
                    .map(|d| call_content_type(d).to_owned())
            });
            let (status, body) =
                cluster::call(&cluster, &args.name, args.data, content_type.as_deref()).await?;
            use std::io::Write as _;
            std::io::stdout().write_all(&body)?;
            anyhow::ensure!(status.is_success(), "{} answered {status}", args.name);
            Ok(())
        }
        FunctionCommand::Ls(args) => cluster::list(&cluster, &args.names, args.out).await,
        FunctionCommand::Describe { name, .. } => cluster::describe(&cluster, &name).await,
        FunctionCommand::Logs {
            name,
            tail,
            follow,
            container,
            ..
        } => cluster::logs(&cluster, &name, tail, follow, container.as_deref()).await,
        FunctionCommand::Top(args) => {
            let (names, texts) = cluster::metrics(&cluster, args.function.as_deref()).await?;
            let figures = super::top::parse(&texts, cluster.namespace());
            let rows = top_rows(
                names.into_iter(),
                figures,
                args.function.as_deref(),
                cluster.namespace(),
            )?;
            print_top(&rows, args.out)
        }
        FunctionCommand::Delete { name, .. } => {
            cluster::delete(&cluster, &name).await?;
            // Its --schedule trigger goes with it.
            let cron = format!("trigger-{name}");
            let trigger =
                cluster::get_object::<crate::crd::CronTriggerResource>(&cluster, &cron).await?;
            if trigger.is_some_and(|t| t.spec.function == name)
                && cluster::delete_object::<crate::crd::CronTriggerResource>(&cluster, &cron)
                    .await?
            {
                println!("cron trigger {cron} deleted");
            }
            Ok(())
        }
    }
}

async fn deploy_cluster(
    cluster: &crate::cluster::Cluster,
    args: DeployArgs,
    update: bool,
) -> anyhow::Result<()> {
    let name = &args.name;
    let base = if update {
        let found = crate::cluster::get_function(cluster, name).await?;
        Some(found.ok_or_else(|| {
            anyhow::anyhow!(
                "no function {name} in namespace {}: deploy it first",
                cluster.namespace()
            )
        })?)
    } else {
        None
    };
    let catalog = crate::runtimes::Catalog::built_in();
    let described = spec::describe(name, &args.flags, base, &catalog)
        .await
        .with_context(|| format!("{} {name}", if update { "updating" } else { "deploying" }))?;
    if let Some(cron) = &described.cron {
        crate::cluster::apply_cron(cluster, cron).await?;
        println!("cron trigger {} applied", cron.metadata.name);
    }
    let wait = args.wait.then_some(args.wait_timeout);
    crate::cluster::deploy(cluster, &described.function, wait).await
}
