//! `wasmless autoscale`: kubeless's autoscaling verbs, which set a
//! Function's `spec.autoscaling` (a HorizontalPodAutoscaler on CPU).

use clap::{Args, Subcommand, ValueEnum};

use super::target::FunctionTarget;

/// The `wasmless autoscale` verbs.
#[derive(Debug, Subcommand)]
pub enum AutoscaleCommand {
    /// Autoscale a function's pods between --min and --max.
    Create(CreateArgs),
    /// Stop autoscaling a function.
    Delete {
        /// The function's name.
        name: String,
        /// Where it runs.
        #[command(flatten)]
        target: FunctionTarget,
    },
    /// List the functions that autoscale.
    #[command(visible_alias = "ls")]
    List {
        /// Where they run.
        #[command(flatten)]
        target: FunctionTarget,
    },
}

/// What to scale on.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Metric {
    /// Average CPU use, in percent of the request.
    Cpu,
    /// Requests per second (kubeless's custom metric).
    Qps,
}

/// Options of `autoscale create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The function's name.
    pub name: String,
    /// The fewest pods.
    #[arg(long, default_value_t = 1)]
    pub min: i32,
    /// The most pods.
    #[arg(long, default_value_t = 1)]
    pub max: i32,
    /// What to scale on.
    #[arg(long, value_enum, default_value = "cpu")]
    pub metric: Metric,
    /// The target: a percentage of the CPU request.
    #[arg(long)]
    pub value: Option<String>,
    /// Where it runs.
    #[command(flatten)]
    pub target: FunctionTarget,
}

pub(super) async fn run(verb: AutoscaleCommand) -> anyhow::Result<()> {
    let target = match &verb {
        AutoscaleCommand::Create(args) => &args.target,
        AutoscaleCommand::Delete { target, .. } | AutoscaleCommand::List { target } => target,
    };
    let Some(cluster_target) = target.cluster.target() else {
        eprintln!(
            "note: autoscaling is a cluster's (add --cluster to use one); under up every function already takes as many events at once as --max-instances allows"
        );
        return Ok(());
    };
    let cluster = crate::cluster::Cluster::connect(&cluster_target).await?;
    match verb {
        AutoscaleCommand::Create(args) => {
            if let Metric::Qps = args.metric {
                anyhow::bail!(
                    "--metric qps: not supported (it needs a custom-metrics adapter); use --metric cpu, or KEDA on the hosts' wasmless_function_in_flight metric"
                );
            }
            anyhow::ensure!(
                args.min >= 1 && args.max >= args.min,
                "--min must be at least 1 and --max at least --min"
            );
            let mut autoscaling = serde_json::json!({
                "minReplicas": args.min,
                "maxReplicas": args.max,
            });
            if let Some(value) = &args.value {
                let percent: i32 = value.trim_end_matches('%').parse().map_err(|_| {
                    anyhow::anyhow!("--value: `{value}` is not a percentage of the CPU request")
                })?;
                autoscaling["targetCpuUtilization"] = percent.into();
            }
            crate::cluster::patch_function(
                &cluster,
                &args.name,
                serde_json::json!({ "spec": { "autoscaling": autoscaling } }),
            )
            .await?;
            println!(
                "function {} autoscales between {} and {} pods",
                args.name, args.min, args.max
            );
        }
        AutoscaleCommand::Delete { name, .. } => {
            crate::cluster::patch_function(
                &cluster,
                &name,
                serde_json::json!({ "spec": { "autoscaling": null } }),
            )
            .await?;
            println!("function {name} no longer autoscales");
        }
        AutoscaleCommand::List { .. } => {
            let functions =
                crate::cluster::list_objects::<crate::crd::FunctionResource>(&cluster).await?;
            println!(
                "{:<24} {:<12} {:<4} {:<4} {:<6} VALUE",
                "NAME", "NAMESPACE", "MIN", "MAX", "METRIC"
            );
            for f in functions {
                let Some(a) = &f.spec.autoscaling else {
                    continue;
                };
                println!(
                    "{:<24} {:<12} {:<4} {:<4} {:<6} {}",
                    f.metadata.name.as_deref().unwrap_or_default(),
                    cluster.namespace(),
                    a.min_replicas.unwrap_or(1),
                    a.max_replicas,
                    "cpu",
                    a.target_cpu_utilization.unwrap_or(80)
                );
            }
        }
    }
    Ok(())
}
