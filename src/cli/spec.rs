//! The Function that `function deploy` and `function update` flags
//! describe, kubeless's flags included, for `up` and a cluster alike.

use std::collections::BTreeMap;

use anyhow::Context as _;
use clap::Args;
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::crd::{
    API_VERSION, Autoscaling, ContentType, CronTrigger, CronTriggerSpec, EnvVar, Function,
    FunctionSpec, ObjectMeta, Seconds, WASM_RUNTIME,
};

/// The flags that shape a Function, as kubeless's CLI took them.
#[derive(Debug, Default, Args)]
pub struct FunctionFlags {
    /// The module (.wasm or .wat) or source: a file, a .zip, .tar,
    /// .tar.gz/.tgz, .tar.bz2 or .tar.xz archive, or an http(s) URL.
    #[arg(long, short = 'f')]
    pub from_file: Option<String>,
    /// The runtime (default `wasm`; `python3.x`, `nodejs14`, ...).
    #[arg(long)]
    pub runtime: Option<String>,
    /// The handler of a source function, `file.function`.
    #[arg(long)]
    pub handler: Option<String>,
    /// The dependency file (requirements.txt, package.json: the runtime's),
    /// a file or an http(s) URL: packed with the source and installed.
    #[arg(long, short = 'd')]
    pub dependencies: Option<String>,
    /// Environment variables, KEY=VALUE or KEY:VALUE; comma-separated or
    /// repeated.
    #[arg(long = "env", short = 'e', value_delimiter = ',')]
    pub env: Vec<String>,
    /// Labels, KEY=VALUE, KEY:VALUE or KEY; comma-separated or repeated.
    #[arg(long = "label", short = 'l', value_delimiter = ',')]
    pub labels: Vec<String>,
    /// Per-event timeout: seconds (kubeless's `180`) or a duration (`500ms`).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Per-event memory limit (`64Mi`).
    #[arg(long)]
    pub memory: Option<String>,
    /// A cron schedule (`*/5 * * * *`): also makes the CronTrigger
    /// `trigger-NAME` that calls the function on it.
    #[arg(long)]
    pub schedule: Option<String>,
    /// Run on this container image instead of wasm (the runtime's contract,
    /// or any image with `--runtime custom`).
    #[arg(long = "runtime-image", visible_alias = "image")]
    pub image: Option<String>,
    /// Where the function may send requests (`https://api.example.com`,
    /// `http://*.svc.cluster.local:8080`): its spec.allowedOutboundHosts,
    /// replaced; comma-separated or repeated. Nothing is reachable without.
    #[arg(
        long = "allow-outbound",
        value_delimiter = ',',
        value_name = "SCHEME://HOST[:PORT]"
    )]
    pub allow_outbound: Vec<String>,
    /// Let one instance serve up to N events in a row
    /// (spec.instanceReuse.maxEvents; module state then outlives an
    /// event); 1 turns it off: a fresh instance per event, the default.
    #[arg(long = "instance-reuse", value_name = "N")]
    pub instance_reuse: Option<u32>,
    /// Cluster only: Secrets mounted at /<secret>; comma-separated or
    /// repeated.
    #[arg(long, value_delimiter = ',')]
    pub secrets: Vec<String>,
    /// Cluster only: the CPU the function's pods request (`100m`).
    #[arg(long)]
    pub cpu: Option<String>,
    /// Cluster only: the port the function's pods listen on.
    #[arg(long)]
    pub port: Option<i32>,
    /// Cluster only: how many pods (with --max-replicas, the fewest).
    #[arg(long)]
    pub replicas: Option<i32>,
    /// Cluster only: autoscale on CPU up to this many pods.
    #[arg(long)]
    pub max_replicas: Option<i32>,
    /// Cluster only: a Secret to pull the runtime image with.
    #[arg(long)]
    pub image_pull_secret: Option<String>,
}

/// What the flags describe: the Function, the CronTrigger of
/// `--schedule`, and notes for flags with no meaning where it goes.
#[derive(Debug)]
pub struct Described {
    /// The Function.
    pub function: Function,
    /// The CronTrigger `trigger-NAME`, with `--schedule`.
    pub cron: Option<CronTrigger>,
}

/// The flags that only a cluster reads, as given.
pub fn cluster_only(flags: &FunctionFlags) -> Vec<&'static str> {
    [
        ("--secrets", !flags.secrets.is_empty()),
        ("--cpu", flags.cpu.is_some()),
        ("--port", flags.port.is_some()),
        ("--replicas", flags.replicas.is_some()),
        ("--max-replicas", flags.max_replicas.is_some()),
        ("--image-pull-secret", flags.image_pull_secret.is_some()),
    ]
    .into_iter()
    .filter_map(|(flag, set)| set.then_some(flag))
    .collect()
}

/// A `KEY=VALUE` or `KEY:VALUE` pair (the first `=`, else the first `:`).
pub fn parse_pair(text: &str, value_required: bool) -> Result<(String, String), String> {
    let split = text.split_once('=').or_else(|| text.split_once(':'));
    match split {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        None if !value_required && !text.trim().is_empty() => {
            Ok((text.trim().to_owned(), String::new()))
        }
        _ => Err(format!(
            "`{text}` is not KEY=VALUE or KEY:VALUE{}",
            if value_required { "" } else { " (or KEY)" }
        )),
    }
}

/// Reads a file, or fetches an http(s) URL.
async fn read_source(place: &str) -> anyhow::Result<Vec<u8>> {
    if place.starts_with("http://") || place.starts_with("https://") {
        crate::manifest::fetch_url(place)
            .await
            .with_context(|| format!("fetching {place}"))
    } else {
        std::fs::read(place).with_context(|| format!("reading {place}"))
    }
}

/// The Function the flags describe: new (`base` None, `--from-file`
/// required) or `base` with the flags given laid over it.
pub async fn describe(
    name: &str,
    flags: &FunctionFlags,
    base: Option<Function>,
    catalog: &crate::runtimes::Catalog,
) -> anyhow::Result<Described> {
    let updating = base.is_some();
    let mut function = base.unwrap_or_else(|| Function {
        api_version: API_VERSION.to_owned(),
        kind: "Function".to_owned(),
        metadata: ObjectMeta {
            name: name.to_owned(),
            ..ObjectMeta::default()
        },
        spec: FunctionSpec {
            runtime: WASM_RUNTIME.to_owned(),
            ..FunctionSpec::default()
        },
        status: None,
    });
    if !updating {
        function
            .metadata
            .labels
            .extend(crate::kubeless::cli_labels(name));
    }
    let spec = &mut function.spec;
    if let Some(runtime) = &flags.runtime {
        spec.runtime = runtime.clone();
    }
    if let Some(handler) = &flags.handler {
        spec.handler = Some(handler.clone());
    }
    match (&flags.from_file, &flags.dependencies) {
        (None, None) if !updating => anyhow::bail!("--from-file: required"),
        (None, None) => {}
        (None, Some(_)) => anyhow::bail!(
            "--dependencies: give --from-file too (the source is packed with its dependency file)"
        ),
        (Some(place), deps) => {
            let url = place.starts_with("http://") || place.starts_with("https://");
            let bytes = read_source(place).await?;
            let dependencies = match deps {
                Some(deps) => Some(read_source(deps).await?),
                None => None,
            };
            spec.file = None;
            spec.checksum = None;
            if url && dependencies.is_none() {
                // As kubeless did: the URL itself, with the checksum of
                // what it serves now; the host fetches and checks it.
                spec.function = Some(place.clone());
                spec.function_content_type = ContentType::Url;
                spec.checksum = Some(format!("sha256:{}", hex::encode(sha256(&bytes))));
            } else {
                let file_name = if url {
                    None
                } else {
                    std::path::Path::new(place)
                        .file_name()
                        .and_then(|n| n.to_str())
                        .map(str::to_owned)
                };
                let (source, content_type) = crate::kubeless::source_spec(
                    &spec.runtime,
                    spec.handler.as_deref(),
                    file_name.as_deref(),
                    bytes,
                    dependencies.as_deref(),
                    catalog,
                )
                .map_err(|e| anyhow::anyhow!("{place}: {e}"))?;
                spec.function = Some(source);
                spec.function_content_type = content_type;
            }
        }
    }
    if let Some(timeout) = &flags.timeout {
        spec.timeout = Some(Seconds::Text(timeout.clone()));
    }
    if let Some(memory) = &flags.memory {
        spec.memory = Some(memory.clone());
    }
    if let Some(image) = &flags.image {
        spec.image = Some(image.clone());
    }
    for pair in &flags.env {
        let (key, value) = parse_pair(pair, false).map_err(|e| anyhow::anyhow!("--env: {e}"))?;
        spec.env.retain(|v| v.name != key);
        spec.env.push(EnvVar { name: key, value });
    }
    let mut labels = BTreeMap::new();
    for pair in &flags.labels {
        let (key, value) = parse_pair(pair, false).map_err(|e| anyhow::anyhow!("--label: {e}"))?;
        labels.insert(key, value);
    }
    function.metadata.labels.extend(labels);
    let spec = &mut function.spec;
    if let Some(max_events) = flags.instance_reuse {
        spec.instance_reuse = (max_events != 1).then_some(crate::crd::InstanceReuse { max_events });
        spec.events_per_instance()
            .map_err(|e| anyhow::anyhow!("--instance-reuse: {e}"))?;
    }
    if !flags.allow_outbound.is_empty() {
        spec.allowed_outbound_hosts = flags.allow_outbound.clone();
        spec.outbound_policy()
            .map_err(|e| anyhow::anyhow!("--allow-outbound: {e}"))?;
    }
    if !flags.secrets.is_empty() {
        spec.secrets = flags.secrets.clone();
    }
    if let Some(port) = flags.port {
        spec.port = Some(port);
    }
    if let Some(replicas) = flags.replicas {
        spec.replicas = Some(replicas);
    }
    if let Some(max) = flags.max_replicas {
        spec.autoscaling = Some(Autoscaling {
            min_replicas: flags.replicas,
            max_replicas: max,
            target_cpu_utilization: None,
        });
    }
    if let Some(cpu) = &flags.cpu {
        // kubeless asked for and limited the CPU alike.
        let resources = spec
            .resources
            .get_or_insert_with(ResourceRequirements::default);
        for list in [&mut resources.requests, &mut resources.limits] {
            list.get_or_insert_with(BTreeMap::new)
                .insert("cpu".to_owned(), Quantity(cpu.clone()));
        }
    }
    if let Some(secret) = &flags.image_pull_secret {
        let deployment = spec.deployment.get_or_insert_with(|| serde_json::json!({}));
        deployment["spec"]["template"]["spec"]["imagePullSecrets"] =
            serde_json::json!([{ "name": secret }]);
    }
    function
        .validate()
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let cron = match &flags.schedule {
        Some(schedule) => {
            let trigger = CronTrigger {
                api_version: API_VERSION.to_owned(),
                kind: "CronTrigger".to_owned(),
                metadata: ObjectMeta {
                    name: format!("trigger-{name}"),
                    ..ObjectMeta::default()
                },
                spec: CronTriggerSpec {
                    function: name.to_owned(),
                    schedule: schedule.clone(),
                    payload: None,
                    content_type: None,
                    catch_up: Default::default(),
                },
                status: None,
            };
            trigger
                .validate()
                .map_err(|e| anyhow::anyhow!("--schedule: {e}"))?;
            Some(trigger)
        }
        None => None,
    };
    Ok(Described { function, cron })
}

/// Drops what only a cluster reads, for `up`.
pub fn without_cluster_fields(mut function: Function) -> Function {
    let spec = &mut function.spec;
    spec.secrets.clear();
    spec.port = None;
    spec.replicas = None;
    spec.autoscaling = None;
    spec.resources = None;
    spec.deployment = None;
    spec.service = None;
    function
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_take_kubeless_spellings() {
        assert_eq!(parse_pair("a=b:c", true), Ok(("a".into(), "b:c".into())));
        assert_eq!(parse_pair("a:b", true), Ok(("a".into(), "b".into())));
        assert_eq!(
            parse_pair("flag", false),
            Ok(("flag".into(), String::new()))
        );
        assert!(parse_pair("flag", true).is_err());
        assert!(parse_pair("=x", true).is_err());
    }

    #[tokio::test]
    async fn flags_make_a_labelled_function_and_its_cron_trigger() {
        let dir = std::env::temp_dir().join(format!("wasmless-spec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let source = dir.join("hello.py");
        std::fs::write(&source, "def handler(event, context):\n    return 'hi'\n").expect("write");
        let deps = dir.join("requirements.txt");
        std::fs::write(&deps, "six\n").expect("write");
        let flags = FunctionFlags {
            from_file: Some(source.display().to_string()),
            runtime: Some("python3.12".into()),
            handler: Some("hello.handler".into()),
            dependencies: Some(deps.display().to_string()),
            env: vec!["A=1".into(), "B:2".into()],
            labels: vec!["team:x".into(), "bare".into()],
            schedule: Some("*/5 * * * *".into()),
            cpu: Some("100m".into()),
            ..FunctionFlags::default()
        };
        let described = describe("hello", &flags, None, &crate::runtimes::Catalog::built_in())
            .await
            .expect("described");
        let f = &described.function;
        assert_eq!(f.metadata.labels["function"], "hello");
        assert_eq!(f.metadata.labels["created-by"], "kubeless");
        assert_eq!(f.metadata.labels["team"], "x");
        assert_eq!(f.metadata.labels["bare"], "");
        assert_eq!(f.spec.function_content_type, ContentType::Base64Zip);
        assert_eq!(
            f.spec.env,
            vec![
                EnvVar {
                    name: "A".into(),
                    value: "1".into()
                },
                EnvVar {
                    name: "B".into(),
                    value: "2".into()
                }
            ]
        );
        let cron = described.cron.expect("a cron trigger");
        assert_eq!(cron.metadata.name, "trigger-hello");
        assert_eq!(cron.spec.function, "hello");
        // An update lays only the flags given over the Function.
        let update = FunctionFlags {
            timeout: Some("5".into()),
            ..FunctionFlags::default()
        };
        let updated = describe(
            "hello",
            &update,
            Some(f.clone()),
            &crate::runtimes::Catalog::built_in(),
        )
        .await
        .expect("updated");
        assert_eq!(updated.function.spec.function, f.spec.function);
        assert_eq!(updated.function.spec.runtime, "python3.12");
        assert_eq!(
            updated.function.spec.timeout,
            Some(Seconds::Text("5".into()))
        );
        assert!(updated.cron.is_none());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
