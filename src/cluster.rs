//! The `wasmless function` verbs against a Kubernetes cluster: deploy,
//! ls, describe, delete, logs and call, as kubeless's CLI had them. Glue
//! over the kube client; errors name the function and the namespace.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::Engine as _;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};

use crate::crd::{
    Autoscaling, ContentType, EnvVar, FunctionResource, FunctionSpec, Seconds, WASM_RUNTIME,
};
use crate::operator::resources::{FUNCTION_LABEL, PORT_NAME};

/// The field manager of the CLI's server-side applies.
const FIELD_MANAGER: &str = "wasmless-cli";

/// Which cluster and namespace, as kubectl takes them.
#[derive(Clone, Debug, Default)]
pub struct ClusterTarget {
    /// A kubeconfig file (default: `KUBECONFIG`, then `~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig (default: its current context).
    pub context: Option<String>,
    /// The namespace (default: the context's).
    pub namespace: Option<String>,
}

/// A connected client and the namespace to work in.
pub struct Cluster {
    client: Client,
    /// For requests to functions through the API server's service proxy:
    /// no retries, so that a function's own 503 (its source did not load)
    /// is shown at once rather than retried for minutes.
    proxy: Client,
    namespace: String,
}

impl Cluster {
    /// Connects as kubectl would.
    pub async fn connect(target: &ClusterTarget) -> anyhow::Result<Self> {
        let options = KubeConfigOptions {
            context: target.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match &target.kubeconfig {
            Some(path) => {
                let file = Kubeconfig::read_from(path)
                    .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
                Config::from_custom_kubeconfig(file, &options).await
            }
            None => Config::from_kubeconfig(&options).await,
        }
        .map_err(|e| anyhow::anyhow!("loading the kubeconfig: {e}"))?;
        let namespace = target
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let mut once = config.clone();
        once.default_retry = false;
        let client = Client::try_from(config)
            .map_err(|e| anyhow::anyhow!("connecting to the cluster: {e}"))?;
        let proxy = Client::try_from(once)
            .map_err(|e| anyhow::anyhow!("connecting to the cluster: {e}"))?;
        Ok(Self {
            client,
            proxy,
            namespace,
        })
    }

    pub(crate) fn functions(&self) -> Api<FunctionResource> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }
}

/// What `function deploy` sends to a cluster.
#[derive(Clone, Debug, Default)]
pub struct Deployment {
    /// The function's name.
    pub name: String,
    /// The module or source file.
    pub from_file: PathBuf,
    /// `--runtime`.
    pub runtime: Option<String>,
    /// `--handler`.
    pub handler: Option<String>,
    /// `--image`.
    pub image: Option<String>,
    /// `--timeout`.
    pub timeout: Option<String>,
    /// `--memory`.
    pub memory: Option<String>,
    /// `--env KEY=VALUE`.
    pub env: Vec<(String, String)>,
    /// `--secrets`.
    pub secrets: Vec<String>,
    /// `--port`.
    pub port: Option<i32>,
    /// `--replicas`.
    pub replicas: Option<i32>,
    /// `--max-replicas`: autoscale between `replicas` (or 1) and this.
    pub max_replicas: Option<i32>,
}

/// The Function resource for a deployment: a `.wasm` file (or any binary)
/// goes base64, text (WAT, source) as it is.
pub fn function_resource(deployment: &Deployment) -> anyhow::Result<FunctionResource> {
    let bytes = std::fs::read(&deployment.from_file)
        .with_context(|| format!("reading {}", deployment.from_file.display()))?;
    let encoded = || base64::engine::general_purpose::STANDARD.encode(&bytes);
    let (source, content_type) = if bytes.starts_with(b"PK\x03\x04") {
        // Several files of a source function, unpacked by the host.
        (encoded(), ContentType::Base64Zip)
    } else if bytes.starts_with(b"\0") || std::str::from_utf8(&bytes).is_err() {
        (encoded(), ContentType::Base64)
    } else {
        (
            String::from_utf8_lossy(&bytes).into_owned(),
            ContentType::Text,
        )
    };
    let spec = FunctionSpec {
        runtime: deployment
            .runtime
            .clone()
            .unwrap_or_else(|| WASM_RUNTIME.to_owned()),
        handler: deployment.handler.clone(),
        image: deployment.image.clone(),
        function: Some(source),
        function_content_type: content_type,
        timeout: deployment.timeout.clone().map(Seconds::Text),
        memory: deployment.memory.clone(),
        env: deployment
            .env
            .iter()
            .map(|(name, value)| EnvVar {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        secrets: deployment.secrets.clone(),
        port: deployment.port,
        replicas: deployment.replicas,
        autoscaling: deployment.max_replicas.map(|max| Autoscaling {
            min_replicas: deployment.replicas,
            max_replicas: max,
            target_cpu_utilization: None,
        }),
        ..FunctionSpec::default()
    };
    let resource = FunctionResource::new(&deployment.name, spec);
    resource
        .to_function()
        .validate()
        .map_err(|e| anyhow::anyhow!("{}: {e}", deployment.name))?;
    Ok(resource)
}

/// `function deploy`: creates or updates the Function; with `wait`, waits
/// until it is ready (or refused) and says so.
pub async fn deploy(
    cluster: &Cluster,
    deployment: &Deployment,
    wait: Option<Duration>,
) -> anyhow::Result<()> {
    let resource = function_resource(deployment)?;
    let name = &deployment.name;
    let applied = cluster
        .functions()
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&resource),
        )
        .await
        .map_err(|e| anyhow::anyhow!("deploying {name} in {}: {e}", cluster.namespace))?;
    println!(
        "function {name} deployed in namespace {} (generation {})",
        cluster.namespace,
        applied.metadata.generation.unwrap_or_default()
    );
    if let Some(limit) = wait {
        wait_ready(cluster, name, applied.metadata.generation, limit).await?;
    }
    Ok(())
}

/// Polls the Function's status until Ready, a refusal, or `limit`.
async fn wait_ready(
    cluster: &Cluster,
    name: &str,
    generation: Option<i64>,
    limit: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    let mut last = String::new();
    loop {
        let function = cluster.functions().get(name).await?;
        let status = function.status.unwrap_or_default();
        let current = status.observed_generation >= generation;
        if let Some(ready) = status.conditions.iter().find(|c| c.type_ == "Ready")
            && current
        {
            let line = format!("{}: {}", ready.reason, ready.message);
            if line != last {
                println!("  {line}");
                last = line;
            }
            if ready.status == "True" {
                println!(
                    "function {name} is ready at {}",
                    status.url.unwrap_or_default()
                );
                return Ok(());
            }
            if !["Deploying", "ScaledToZero"].contains(&ready.reason.as_str()) {
                anyhow::bail!(
                    "function {name} is not ready: {}: {}",
                    ready.reason,
                    ready.message
                );
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "function {name} was not ready within {}s; see `wasmless function describe {name}`",
                limit.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `function ls`: one line per Function.
pub async fn list(cluster: &Cluster) -> anyhow::Result<()> {
    let functions = cluster
        .functions()
        .list(&ListParams::default())
        .await
        .map_err(|e| anyhow::anyhow!("listing functions in {}: {e}", cluster.namespace))?;
    println!(
        "{:<24} {:<10} {:<10} {:<6} {:<18} URL",
        "NAME", "RUNTIME", "PLACEMENT", "READY", "REASON"
    );
    for f in functions {
        let status = f.status.clone().unwrap_or_default();
        let ready = status.conditions.iter().find(|c| c.type_ == "Ready");
        let hosting = status
            .placement
            .as_ref()
            .map(|p| p.hosting.as_str())
            .filter(|h| !h.is_empty())
            .unwrap_or("-");
        println!(
            "{:<24} {:<10} {:<10} {:<6} {:<18} {}",
            f.name_any(),
            f.spec.runtime,
            hosting,
            ready.map_or("-", |c| c.status.as_str()),
            ready.map_or("-", |c| c.reason.as_str()),
            status.url.unwrap_or_else(|| "-".into())
        );
    }
    Ok(())
}

/// `function describe`: the spec, the status and the recent Events.
pub async fn describe(cluster: &Cluster, name: &str) -> anyhow::Result<()> {
    let f =
        cluster.functions().get_opt(name).await?.ok_or_else(|| {
            anyhow::anyhow!("no function {name} in namespace {}", cluster.namespace)
        })?;
    let spec = &f.spec;
    let status = f.status.clone().unwrap_or_default();
    println!("Name:       {}", f.name_any());
    println!("Namespace:  {}", cluster.namespace);
    println!("Runtime:    {}", spec.runtime);
    if let Some(handler) = &spec.handler {
        println!("Handler:    {handler}");
    }
    println!("Timeout:    {:?}", spec.timeout()?);
    println!("Memory:     {} bytes", spec.memory_limit()?);
    for var in &spec.env {
        println!("Env:        {}={}", var.name, var.value);
    }
    for secret in &spec.secrets {
        println!("Secret:     {secret} (mounted at /{secret})");
    }
    if let Some(image) = &spec.image {
        println!("Image:      {image} (spec.image)");
    }
    match &status.placement {
        Some(placement) => {
            println!("Path:       {} ({})", placement.path, placement.reason);
            if let Some(image) = &placement.image {
                println!("Runs on:    {image}");
            }
            println!("Why:        {}", placement.message);
            if !placement.hosting.is_empty() {
                let pool = placement
                    .pool
                    .as_deref()
                    .map(|p| format!(", {p}"))
                    .unwrap_or_default();
                println!(
                    "Placement:  {}{pool} ({})",
                    placement.hosting, placement.hosting_reason
                );
                println!("Why:        {}", placement.hosting_message);
            }
        }
        None => println!("Path:       - (not decided yet, or refused: see the conditions)"),
    }
    println!("URL:        {}", status.url.as_deref().unwrap_or("-"));
    println!(
        "Replicas:   {} ready of {}",
        status.ready_replicas.unwrap_or(0),
        status.replicas.unwrap_or(0)
    );
    println!("Conditions:");
    for c in &status.conditions {
        println!("  {}={} {}: {}", c.type_, c.status, c.reason, c.message);
    }
    let events: Api<Event> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let selector = format!("regarding.kind=Function,regarding.name={name}");
    let events = events
        .list(&ListParams::default().fields(&selector))
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    println!("Events:");
    for e in events {
        println!(
            "  {:<8} {:<24} {}",
            e.type_.unwrap_or_default(),
            e.reason.unwrap_or_default(),
            e.note.unwrap_or_default()
        );
    }
    Ok(())
}

/// `function delete`: the operator's objects go with it (owner references).
pub async fn delete(cluster: &Cluster, name: &str) -> anyhow::Result<()> {
    cluster
        .functions()
        .delete(name, &DeleteParams::default())
        .await
        .map_err(|e| anyhow::anyhow!("deleting {name} in {}: {e}", cluster.namespace))?;
    println!(
        "function {name} deleted from namespace {}",
        cluster.namespace
    );
    Ok(())
}

/// The container of a function's pod whose log is the function's output:
/// the one asked for, else `runtime` (the image path's user code) when
/// there is one, else the only one.
pub fn log_container(pod: &Pod, wanted: Option<&str>) -> Option<String> {
    if let Some(wanted) = wanted {
        return Some(wanted.to_owned());
    }
    let containers = &pod.spec.as_ref()?.containers;
    match containers.iter().find(|c| c.name == "runtime") {
        Some(runtime) => Some(runtime.name.clone()),
        None => containers.first().map(|c| c.name.clone()),
    }
}

/// Whether a line of a pool's log is about function `name`: the host logs
/// a function's output (and what it does with it) with a `function=NAME`
/// field, after the message.
pub fn logged_for(line: &str, name: &str) -> bool {
    line.rfind(" function=").is_some_and(|at| {
        let value = &line[at + " function=".len()..];
        value.split(' ').next() == Some(name)
    })
}

/// `function logs`: the function's output from each of its pods (a pool
/// function's: its lines from the pool's pods).
pub async fn logs(
    cluster: &Cluster,
    name: &str,
    tail: Option<i64>,
    container: Option<&str>,
) -> anyhow::Result<()> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let functions: Api<FunctionResource> =
        Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let pooled = functions
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|f| f.status?.placement)
        .is_some_and(|p| p.hosting == crate::crd::Hosting::Pool.as_str());
    let selector = if pooled {
        crate::operator::pool::pool_selector_text()
    } else {
        format!("{FUNCTION_LABEL}={name}")
    };
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| anyhow::anyhow!("listing the pods of {name}: {e}"))?;
    if list.items.is_empty() {
        anyhow::bail!(
            "function {name} has no pods in namespace {}",
            cluster.namespace
        );
    }
    for pod in list {
        let pod_name = pod.name_any();
        let params = LogParams {
            // A pool's log holds every function's lines: the tail is of
            // this function's.
            tail_lines: if pooled { None } else { tail },
            container: log_container(&pod, container),
            ..LogParams::default()
        };
        let text = pods
            .logs(&pod_name, &params)
            .await
            .map_err(|e| anyhow::anyhow!("reading the logs of {pod_name}: {e}"))?;
        println!("==> {pod_name} <==");
        if pooled {
            let lines: Vec<&str> = text.lines().filter(|l| logged_for(l, name)).collect();
            let skip = tail.map_or(0, |t| {
                lines.len().saturating_sub(usize::try_from(t).unwrap_or(0))
            });
            for line in &lines[skip..] {
                println!("{line}");
            }
        } else {
            print!("{text}");
        }
    }
    Ok(())
}

/// `function call`: an HTTP request to the function through the API
/// server's service proxy. Returns the status and the body.
pub async fn call(
    cluster: &Cluster,
    name: &str,
    data: Option<String>,
    content_type: Option<&str>,
) -> anyhow::Result<(http::StatusCode, bytes::Bytes)> {
    let uri = format!(
        "/api/v1/namespaces/{}/services/{name}:{PORT_NAME}/proxy/",
        cluster.namespace
    );
    let (method, body) = match data {
        Some(data) => (http::Method::POST, data.into_bytes()),
        None => (http::Method::GET, Vec::new()),
    };
    let mut request = http::Request::builder().method(method).uri(&uri);
    if let Some(content_type) = content_type {
        request = request.header(http::header::CONTENT_TYPE, content_type);
    }
    let request = request.body(kube::client::Body::from(body))?;
    let response = cluster
        .proxy
        .send(request)
        .await
        .map_err(|e| anyhow::anyhow!("calling {name} in {}: {e}", cluster.namespace))?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(containers: &[&str]) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"containers": containers.iter().map(|n| serde_json::json!({"name": n})).collect::<Vec<_>>()},
        }))
        .expect("a pod")
    }

    #[test]
    fn a_pool_log_line_belongs_to_the_function_it_names() {
        let line = "2026-12-01T15:00:00.1Z  INFO tick beat function=ticker stream=\"stdout\"";
        assert!(logged_for(line, "ticker"));
        assert!(!logged_for(line, "tick"));
        assert!(!logged_for(line, "other"));
        assert!(logged_for(
            "x  INFO staged: loads on its first event function=a generation=Some(1)",
            "a"
        ));
        assert!(!logged_for("x  INFO listening", "a"));
    }

    #[test]
    fn logs_show_the_runtime_container_of_an_image_pod_by_default() {
        let image_pod = pod(&["function", "runtime"]);
        assert_eq!(log_container(&image_pod, None).as_deref(), Some("runtime"));
        assert_eq!(
            log_container(&image_pod, Some("function")).as_deref(),
            Some("function")
        );
        assert_eq!(
            log_container(&pod(&["function"]), None).as_deref(),
            Some("function")
        );
    }
}
