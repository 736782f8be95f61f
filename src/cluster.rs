//! The `wasmless function` verbs against a Kubernetes cluster: deploy,
//! ls, describe, delete, logs and call, as kubeless's CLI had them. Glue
//! over the kube client; errors name the function and the namespace.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};

use crate::crd::{CronTrigger, CronTriggerResource, Function, FunctionResource};
use crate::operator::resources::{FUNCTION_LABEL, PORT_NAME};

/// The port of a `wasmless host` container in a function's or pool's pod,
/// by name: its `/metrics` are there.
const HOST_PORT_NAME: &str = "http";

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
    /// The namespace it works in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

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

/// The cluster object of a Function.
pub fn function_resource(function: &Function) -> FunctionResource {
    let mut resource = FunctionResource::new(function.name(), function.spec.clone());
    if !function.metadata.labels.is_empty() {
        resource.metadata.labels = Some(function.metadata.labels.clone());
    }
    if !function.metadata.annotations.is_empty() {
        resource.metadata.annotations = Some(function.metadata.annotations.clone());
    }
    resource
}

/// The Function `name`, as `up` reads it, if it exists.
pub async fn get_function(cluster: &Cluster, name: &str) -> anyhow::Result<Option<Function>> {
    let found = cluster
        .functions()
        .get_opt(name)
        .await
        .map_err(|e| anyhow::anyhow!("reading {name} in {}: {e}", cluster.namespace))?;
    Ok(found.map(|f| f.to_function()))
}

/// Changes fields of a Function (a JSON merge patch).
pub async fn patch_function(
    cluster: &Cluster,
    name: &str,
    patch: serde_json::Value,
) -> anyhow::Result<()> {
    cluster
        .functions()
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| anyhow::anyhow!("changing {name} in {}: {e}", cluster.namespace))?;
    Ok(())
}

/// Applies a CronTrigger (server-side apply).
pub async fn apply_cron(cluster: &Cluster, trigger: &CronTrigger) -> anyhow::Result<()> {
    let name = &trigger.metadata.name;
    let mut resource = CronTriggerResource::new(name, trigger.spec.clone());
    if !trigger.metadata.labels.is_empty() {
        resource.metadata.labels = Some(trigger.metadata.labels.clone());
    }
    apply(cluster, name, &resource).await
}

/// Server-side applies one namespaced object of ours.
pub async fn apply<K>(cluster: &Cluster, name: &str, object: &K) -> anyhow::Result<()>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "applying {}/{name} in {}: {e}",
            K::kind(&Default::default()),
            cluster.namespace
        )
    })?;
    Ok(())
}

/// Deletes one namespaced object of ours; false if there was none.
pub async fn delete_object<K>(cluster: &Cluster, name: &str) -> anyhow::Result<bool>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(e) => Err(anyhow::anyhow!(
            "deleting {}/{name} in {}: {e}",
            K::kind(&Default::default()),
            cluster.namespace
        )),
    }
}

/// One namespaced object of ours, if it exists.
pub async fn get_object<K>(cluster: &Cluster, name: &str) -> anyhow::Result<Option<K>>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    api.get_opt(name).await.map_err(|e| {
        anyhow::anyhow!(
            "reading {}/{name} in {}: {e}",
            K::kind(&Default::default()),
            cluster.namespace
        )
    })
}

/// The namespaced objects of one kind.
pub async fn list_objects<K>(cluster: &Cluster) -> anyhow::Result<Vec<K>>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let list = api.list(&ListParams::default()).await.map_err(|e| {
        anyhow::anyhow!(
            "listing {} in {}: {e}",
            K::plural(&Default::default()),
            cluster.namespace
        )
    })?;
    Ok(list.items)
}

/// `function deploy`: creates or updates the Function; with `wait`, waits
/// until it is ready (or refused) and says so.
pub async fn deploy(
    cluster: &Cluster,
    function: &Function,
    wait: Option<Duration>,
) -> anyhow::Result<()> {
    let resource = function_resource(function);
    let name = function.name();
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
pub async fn list(
    cluster: &Cluster,
    names: &[String],
    out: Option<crate::cli::Output>,
) -> anyhow::Result<()> {
    let mut functions = cluster
        .functions()
        .list(&ListParams::default())
        .await
        .map_err(|e| anyhow::anyhow!("listing functions in {}: {e}", cluster.namespace))?
        .items;
    if !names.is_empty() {
        for name in names {
            anyhow::ensure!(
                functions.iter().any(|f| &f.name_any() == name),
                "no function {name} in namespace {}",
                cluster.namespace
            );
        }
        functions.retain(|f| names.contains(&f.name_any()));
    }
    if let Some(out) = out {
        for f in &mut functions {
            f.metadata.managed_fields = None;
        }
        return crate::cli::print_as(&functions, out);
    }
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
    follow: bool,
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
    for pod in &list.items {
        let pod_name = pod.name_any();
        let params = LogParams {
            // A pool's log holds every function's lines: the tail is of
            // this function's.
            tail_lines: if pooled { None } else { tail },
            container: log_container(pod, container),
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
    if follow {
        follow_logs(&pods, &list.items, name, pooled, container).await?;
    }
    Ok(())
}

/// `logs -f`: the new lines of every pod, as they come, until the pods
/// end or the user stops it.
async fn follow_logs(
    pods: &Api<Pod>,
    list: &[Pod],
    name: &str,
    pooled: bool,
    container: Option<&str>,
) -> anyhow::Result<()> {
    use futures::{AsyncBufReadExt as _, StreamExt as _};
    let mut streams = Vec::new();
    for pod in list {
        let pod_name = pod.name_any();
        let params = LogParams {
            follow: true,
            since_seconds: Some(1),
            container: log_container(pod, container),
            ..LogParams::default()
        };
        let stream = pods
            .log_stream(&pod_name, &params)
            .await
            .map_err(|e| anyhow::anyhow!("following the logs of {pod_name}: {e}"))?;
        let many = list.len() > 1;
        streams.push(
            stream
                .lines()
                .map(move |line| (many, pod_name.clone(), line)),
        );
    }
    let mut all = futures::stream::select_all(streams);
    while let Some((many, pod_name, line)) = all.next().await {
        let line = line.map_err(|e| anyhow::anyhow!("reading the logs of {pod_name}: {e}"))?;
        if pooled && !logged_for(&line, name) {
            continue;
        }
        if many {
            println!("[{pod_name}] {line}");
        } else {
            println!("{line}");
        }
    }
    Ok(())
}

/// The names of the Functions (or the one asked for) and the `/metrics`
/// text of the pods serving them, read through the API server's pod
/// proxy.
pub async fn metrics(
    cluster: &Cluster,
    only: Option<&str>,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let functions = cluster
        .functions()
        .list(&ListParams::default())
        .await
        .map_err(|e| anyhow::anyhow!("listing functions in {}: {e}", cluster.namespace))?;
    let names: Vec<String> = functions
        .iter()
        .map(|f| f.name_any())
        .filter(|n| only.is_none_or(|o| o == n))
        .collect();
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let mut selectors = vec![crate::operator::pool::pool_selector_text()];
    selectors.extend(names.iter().map(|n| format!("{FUNCTION_LABEL}={n}")));
    let mut texts = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for selector in selectors {
        let list = pods
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| anyhow::anyhow!("listing pods ({selector}): {e}"))?;
        for pod in list {
            let pod_name = pod.name_any();
            let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
            if !running || !seen.insert(pod_name.clone()) {
                continue;
            }
            // The pod proxy takes a port number, not a name.
            let port = pod
                .spec
                .as_ref()
                .into_iter()
                .flat_map(|s| &s.containers)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(HOST_PORT_NAME))
                .map(|p| p.container_port);
            let Some(port) = port else { continue };
            let uri = format!(
                "/api/v1/namespaces/{}/pods/{pod_name}:{port}/proxy/metrics",
                cluster.namespace
            );
            let request = http::Request::get(&uri).body(kube::client::Body::empty())?;
            let text = match cluster.proxy.send(request).await {
                Ok(response) if response.status().is_success() => response
                    .into_body()
                    .collect()
                    .await
                    .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                    .map_err(anyhow::Error::from),
                Ok(response) => Err(anyhow::anyhow!("{}", response.status())),
                Err(e) => Err(e.into()),
            };
            match text {
                Ok(text) => texts.push(text),
                Err(e) => eprintln!("note: no metrics from {pod_name}: {e:#}"),
            }
        }
    }
    Ok((names, texts))
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
