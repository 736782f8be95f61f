//! `wasmless trigger`: kubeless's `trigger http|cronjob|kafka
//! create|update|delete|list`, with its flags, on `up` or a cluster; and
//! `trigger ls`, every trigger of an `up`.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::local::Local;
use super::target::{FunctionTarget, TargetArgs};
use crate::crd::{API_VERSION, CronTriggerResource, HttpTriggerResource, KafkaTriggerResource};
use crate::up::TriggerInfo;

/// The `wasmless trigger` verbs.
#[derive(Debug, Subcommand)]
pub enum TriggerCommand {
    /// List every trigger of a running `up` and whether it runs.
    Ls(TargetArgs),
    /// HTTP triggers: more paths and host names that reach a function (an
    /// Ingress or HTTPRoute on a cluster).
    #[command(subcommand)]
    Http(Verb<HttpArgs>),
    /// Cron triggers: call a function on a schedule.
    #[command(subcommand)]
    Cronjob(Verb<CronArgs>),
    /// Kafka triggers: call the functions a selector picks with each
    /// message of a topic.
    #[command(subcommand)]
    Kafka(Verb<KafkaArgs>),
}

/// The verbs of one kind of trigger.
#[derive(Debug, Subcommand)]
pub enum Verb<A: Args> {
    /// Create the trigger (or replace it).
    Create(A),
    /// Change the trigger: only the flags given change.
    Update(A),
    /// Delete the trigger.
    Delete {
        /// The trigger's name.
        name: String,
        /// Where it runs.
        #[command(flatten)]
        target: FunctionTarget,
    },
    /// List the triggers of this kind.
    #[command(visible_alias = "ls")]
    List {
        /// Where they run.
        #[command(flatten)]
        target: FunctionTarget,
    },
}

/// Options of `trigger http create|update`.
#[derive(Debug, Args)]
pub struct HttpArgs {
    /// The trigger's name.
    pub name: String,
    /// The function it reaches.
    #[arg(long)]
    pub function_name: Option<String>,
    /// The host name it answers (default: any).
    #[arg(long)]
    pub hostname: Option<String>,
    /// The path it answers, such as `echo` (default: `/`).
    #[arg(long)]
    pub path: Option<String>,
    /// Cluster: a Secret with the TLS certificate and key.
    #[arg(long)]
    pub tls_secret: Option<String>,
    /// Cluster: a Secret for basic authentication (ingress-nginx).
    #[arg(long)]
    pub basic_auth_secret: Option<String>,
    /// Cluster: the ingress controller (the Ingress's class), such as
    /// `nginx`.
    #[arg(long)]
    pub gateway: Option<String>,
    /// Cluster: allow cross-origin requests.
    #[arg(long)]
    pub cors_enable: bool,
    /// kube-lego's ACME flag: not set here (give --tls-secret, or use
    /// cert-manager's annotations).
    #[arg(long = "enableTLSAcme")]
    pub enable_tls_acme: bool,
    /// Where it runs.
    #[command(flatten)]
    pub target: FunctionTarget,
}

/// Options of `trigger cronjob create|update`.
#[derive(Debug, Args)]
pub struct CronArgs {
    /// The trigger's name.
    pub name: String,
    /// The function it calls.
    #[arg(long = "function", visible_alias = "function-name")]
    pub function: Option<String>,
    /// The schedule, in cron format (`*/5 * * * *`).
    #[arg(long)]
    pub schedule: Option<String>,
    /// The event data sent with each tick: JSON (an object), or text.
    #[arg(long, conflicts_with = "payload_from_file")]
    pub payload: Option<String>,
    /// The event data from a .json or .yaml file.
    #[arg(long)]
    pub payload_from_file: Option<std::path::PathBuf>,
    /// Where it runs.
    #[command(flatten)]
    pub target: FunctionTarget,
}

/// Options of `trigger kafka create|update`.
#[derive(Debug, Args)]
pub struct KafkaArgs {
    /// The trigger's name.
    pub name: String,
    /// The functions it calls, by label: `k=v,k2=v2` (or `k:v`).
    #[arg(long)]
    pub function_selector: Option<String>,
    /// The topic it reads.
    #[arg(long)]
    pub trigger_topic: Option<String>,
    /// The Kafka brokers, host:port[,host:port].
    #[arg(long, env = "WASMLESS_KAFKA_BROKERS")]
    pub brokers: Option<String>,
    /// Where it runs.
    #[command(flatten)]
    pub target: FunctionTarget,
}

/// A kind of trigger: how its flags make a spec.
trait Kind: Args {
    /// The object's kind.
    const KIND: &'static str;
    /// The trigger's name.
    fn name(&self) -> &str;
    /// Where it runs.
    fn target(&self) -> &FunctionTarget;
    /// The spec, from the flags laid over `base` (an update's current
    /// spec, or an empty one).
    fn spec(&self, base: Value, creating: bool) -> anyhow::Result<Value>;
    /// One line of a listing: what it does.
    fn detail(spec: &Value) -> String;
}

fn set(spec: &mut Value, key: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        spec[key] = value.into();
    }
}

fn required(spec: &Value, key: &str, flag: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        spec.get(key).is_some_and(|v| !v.is_null()),
        "{flag}: required"
    );
    Ok(())
}

impl Kind for HttpArgs {
    const KIND: &'static str = "HTTPTrigger";
    fn name(&self) -> &str {
        &self.name
    }
    fn target(&self) -> &FunctionTarget {
        &self.target
    }
    fn spec(&self, mut spec: Value, _creating: bool) -> anyhow::Result<Value> {
        set(&mut spec, "function", self.function_name.clone());
        set(&mut spec, "host", self.hostname.clone());
        set(
            &mut spec,
            "path",
            self.path.as_ref().map(|p| {
                if p.starts_with('/') {
                    p.clone()
                } else {
                    format!("/{p}")
                }
            }),
        );
        set(&mut spec, "tlsSecret", self.tls_secret.clone());
        set(&mut spec, "basicAuthSecret", self.basic_auth_secret.clone());
        set(&mut spec, "ingressClassName", self.gateway.clone());
        if self.cors_enable {
            spec["cors"] = json!({});
        }
        if self.enable_tls_acme {
            eprintln!(
                "note: --enableTLSAcme (kube-lego) is not set; give --tls-secret, or cert-manager's annotations on the Ingress"
            );
        }
        required(&spec, "function", "--function-name")?;
        Ok(spec)
    }
    fn detail(spec: &Value) -> String {
        format!(
            "{}{} -> {}",
            spec["host"].as_str().unwrap_or(""),
            spec["path"].as_str().unwrap_or("/"),
            spec["function"].as_str().unwrap_or("?")
        )
    }
}

impl Kind for CronArgs {
    const KIND: &'static str = "CronTrigger";
    fn name(&self) -> &str {
        &self.name
    }
    fn target(&self) -> &FunctionTarget {
        &self.target
    }
    fn spec(&self, mut spec: Value, _creating: bool) -> anyhow::Result<Value> {
        set(&mut spec, "function", self.function.clone());
        set(&mut spec, "schedule", self.schedule.clone());
        let payload = match (&self.payload, &self.payload_from_file) {
            (Some(text), _) => Some(serde_json::from_str(text).unwrap_or(json!(text))),
            (None, Some(file)) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| anyhow::anyhow!("--payload-from-file {}: {e}", file.display()))?;
                let value: Value = serde_saphyr::from_str(&text).map_err(|e| {
                    anyhow::anyhow!(
                        "--payload-from-file {}: not JSON or YAML: {e}",
                        file.display()
                    )
                })?;
                Some(value)
            }
            (None, None) => None,
        };
        set(&mut spec, "payload", payload);
        required(&spec, "function", "--function")?;
        required(&spec, "schedule", "--schedule")?;
        Ok(spec)
    }
    fn detail(spec: &Value) -> String {
        format!(
            "`{}` -> {}",
            spec["schedule"].as_str().unwrap_or("?"),
            spec["function"].as_str().unwrap_or("?")
        )
    }
}

impl Kind for KafkaArgs {
    const KIND: &'static str = "KafkaTrigger";
    fn name(&self) -> &str {
        &self.name
    }
    fn target(&self) -> &FunctionTarget {
        &self.target
    }
    fn spec(&self, mut spec: Value, creating: bool) -> anyhow::Result<Value> {
        if let Some(selector) = &self.function_selector {
            let mut labels = serde_json::Map::new();
            for pair in selector.split(',').filter(|p| !p.trim().is_empty()) {
                let (key, value) = super::spec::parse_pair(pair, true)
                    .map_err(|e| anyhow::anyhow!("--function-selector: {e}"))?;
                labels.insert(key, json!(value));
            }
            spec["functionSelector"] = json!({ "matchLabels": labels });
            if let Some(map) = spec.as_object_mut() {
                map.remove("function");
            }
        }
        if let Some(topic) = &self.trigger_topic {
            spec["topic"] = json!(topic);
            if let Some(map) = spec.as_object_mut() {
                map.remove("topics");
            }
        }
        match &self.brokers {
            Some(brokers) => spec["brokers"] = json!(brokers),
            None if creating => spec["brokers"] = json!("localhost:9092"),
            None => {}
        }
        required(&spec, "functionSelector", "--function-selector")?;
        required(&spec, "topic", "--trigger-topic")?;
        Ok(spec)
    }
    fn detail(spec: &Value) -> String {
        format!(
            "{} -> {}",
            spec["topic"].as_str().unwrap_or("?"),
            spec["functionSelector"]["matchLabels"]
        )
    }
}

pub(super) async fn run(verb: TriggerCommand) -> anyhow::Result<()> {
    match verb {
        TriggerCommand::Ls(target) => list_all(&Local::new(&target)?).await,
        TriggerCommand::Http(verb) => run_kind::<HttpArgs, HttpTriggerResource>(verb).await,
        TriggerCommand::Cronjob(verb) => run_kind::<CronArgs, CronTriggerResource>(verb).await,
        TriggerCommand::Kafka(verb) => run_kind::<KafkaArgs, KafkaTriggerResource>(verb).await,
    }
}

async fn list_all(local: &Local) -> anyhow::Result<()> {
    let list: Vec<TriggerInfo> = local.get("triggers").await?.unwrap_or_default();
    println!("{:<32} {:<8} DETAIL", "NAME", "STATUS");
    for t in list {
        println!("{:<32} {:<8} {}", t.name, t.status, t.detail);
    }
    Ok(())
}

async fn run_kind<A, K>(verb: Verb<A>) -> anyhow::Result<()>
where
    A: Kind,
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let target = match &verb {
        Verb::Create(args) | Verb::Update(args) => args.target(),
        Verb::Delete { target, .. } | Verb::List { target } => target,
    };
    let cluster = match target.cluster.target() {
        Some(target) => Some(crate::cluster::Cluster::connect(&target).await?),
        None => None,
    };
    let local = Local::new(&target.up)?;
    match verb {
        Verb::Create(args) => apply::<A, K>(&args, cluster.as_ref(), &local, false).await,
        Verb::Update(args) => apply::<A, K>(&args, cluster.as_ref(), &local, true).await,
        Verb::Delete { name, .. } => {
            match &cluster {
                Some(cluster) => {
                    anyhow::ensure!(
                        crate::cluster::delete_object::<K>(cluster, &name).await?,
                        "no {}/{name} in namespace {}",
                        A::KIND,
                        cluster.namespace()
                    );
                }
                None => local.delete(A::KIND, &name).await?,
            }
            println!("deleted {}/{name}", A::KIND);
            Ok(())
        }
        Verb::List { .. } => {
            let rows: Vec<(String, String)> = match &cluster {
                Some(cluster) => crate::cluster::list_objects::<K>(cluster)
                    .await?
                    .into_iter()
                    .map(|o| {
                        let value = serde_json::to_value(&o).unwrap_or_default();
                        (
                            o.meta().name.clone().unwrap_or_default(),
                            A::detail(&value["spec"]),
                        )
                    })
                    .collect(),
                None => {
                    let list: Vec<TriggerInfo> = local.get("triggers").await?.unwrap_or_default();
                    let prefix = format!("{}/", A::KIND);
                    list.into_iter()
                        .filter_map(|t| {
                            let name = t.name.strip_prefix(&prefix)?.to_owned();
                            Some((name, t.detail))
                        })
                        .collect()
                }
            };
            println!("{:<32} DETAIL", "NAME");
            for (name, detail) in rows {
                println!("{name:<32} {detail}");
            }
            Ok(())
        }
    }
}

async fn apply<A, K>(
    args: &A,
    cluster: Option<&crate::cluster::Cluster>,
    local: &Local,
    update: bool,
) -> anyhow::Result<()>
where
    A: Kind,
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
{
    let name = args.name();
    let current: Option<Value> = match cluster {
        Some(cluster) => crate::cluster::list_objects::<K>(cluster)
            .await?
            .into_iter()
            .find(|o| o.meta().name.as_deref() == Some(name))
            .map(|o| serde_json::to_value(&o).unwrap_or_default()),
        None => local.get(&format!("objects/{}/{name}", A::KIND)).await?,
    };
    let base = match (update, current) {
        (true, None) => anyhow::bail!("no {}/{name}: create it first", A::KIND),
        (true, Some(current)) => current["spec"].clone(),
        (false, _) => json!({}),
    };
    let spec = args.spec(base, !update)?;
    let object = json!({
        "apiVersion": API_VERSION,
        "kind": A::KIND,
        "metadata": { "name": name },
        "spec": spec,
    });
    match cluster {
        Some(cluster) => {
            let resource: K = serde_json::from_value(object)
                .map_err(|e| anyhow::anyhow!("{}/{name}: {e}", A::KIND))?;
            crate::cluster::apply(cluster, name, &resource).await?;
            println!(
                "{} {}/{name} in namespace {}",
                if update { "updated" } else { "created" },
                A::KIND,
                cluster.namespace()
            );
        }
        None => {
            local.apply(&[object]).await?;
            println!(
                "{} {}/{name}",
                if update { "updated" } else { "created" },
                A::KIND
            );
            if A::KIND == "HTTPTrigger" && args.target().up.url.starts_with("http") {
                let path = spec["path"].as_str().unwrap_or("/");
                println!(
                    "  {}{path} -> {}",
                    local.url(),
                    spec["function"].as_str().unwrap_or("?")
                );
            }
        }
    }
    Ok(())
}
