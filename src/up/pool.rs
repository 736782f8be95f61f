//! A shared host pool (`wasmless host --pool`): the Functions of one
//! namespace, learnt from the Kubernetes API, and which of them a request
//! is for.
//!
//! The pool watches the Functions of its namespace and stages every one the
//! operator places in the pool (`status.placement.hosting: Pool`, decided
//! here the same way until the operator has written it) in the registry,
//! unloaded: its first event loads it (from the compile cache
//! when its code was compiled before); one created or changed while the
//! pool runs is loaded at once instead, ahead of its first request, which
//! waits for the Service the operator makes. It is parked when idle, and a new
//! generation replaces it atomically, as under `up`. Every pool Function
//! has its own Service selecting the pool's pods, so a request names its
//! function by the Service it came to.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt as _;
use http::HeaderMap;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::reflector;
use kube::runtime::watcher::{self, Event as Watched};

use std::path::{Path, PathBuf};

use super::secrets::PoolSecrets;
use super::server::App;
use crate::crd::{Function, FunctionResource, Hosting, KafkaTrigger, KafkaTriggerResource, Target};
use crate::host::registry::{Entry, Origin};
use crate::manifest::Trigger;
use crate::operator::pool::POOL_SECRETS_ROOT;
use crate::operator::resources::hosting_now;
use crate::runtimes::Catalog;

/// A header naming the function outright (routes that cannot keep the
/// Service's name in `Host` set it, as the operator's HTTPRoutes do).
pub const FUNCTION_HEADER: &str = "wasmless-function";

/// The cluster IPs of the pool's Functions' Services, from their status.
#[derive(Debug, Default)]
pub struct Addresses(std::sync::RwLock<HashMap<String, String>>);

impl Addresses {
    /// The function whose Service has `address`.
    pub fn function(&self, address: &str) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(address)
            .cloned()
    }

    fn set(&self, name: &str, address: Option<String>) {
        let mut map = self.0.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, n| n != name);
        if let Some(address) = address {
            map.insert(address, name.to_owned());
        }
    }
}

/// The function a request to a pool of `namespace` is for: the
/// `wasmless-function` header; else the Service named in the API server's
/// service proxy path (`X-Forwarded-Uri: /api/v1/namespaces/NS/services/
/// NAME[:PORT]/proxy/...`); else the Service in `Host` (`NAME`, `NAME.NS`,
/// `NAME.NS.svc`, `NAME.NS.svc.cluster.local`, with or without a port),
/// or its Service's cluster IP (`by_address`).
pub fn addressed(
    headers: &HeaderMap,
    namespace: &str,
    by_address: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(name) = header(FUNCTION_HEADER)
        .map(str::trim)
        .filter(|n| is_name(n))
    {
        return Some(name.to_owned());
    }
    if let Some(uri) = header("x-forwarded-uri")
        && let Some(name) = proxied_service(uri, namespace)
    {
        return Some(name);
    }
    let host = header("host")?;
    let host = host.rsplit_once(':').map_or(host, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    // An address: a Service's cluster IP (`[fd00::1]` in brackets), or not
    // a Service at all.
    let address = host.trim_start_matches('[').trim_end_matches(']');
    if address.parse::<std::net::IpAddr>().is_ok() {
        return by_address(address);
    }
    let labels: Vec<&str> = host.trim_end_matches('.').split('.').collect();
    let name = match labels.as_slice() {
        [name] => name,
        [name, ns] if *ns == namespace => name,
        [name, ns, "svc", ..] if *ns == namespace => name,
        _ => return None,
    };
    (is_name(name) && !name.chars().all(|c| c.is_ascii_digit())).then(|| (*name).to_owned())
}

/// The Service of the API server's proxy path, when it is in `namespace`.
fn proxied_service(uri: &str, namespace: &str) -> Option<String> {
    let rest = uri.strip_prefix("/api/v1/namespaces/")?;
    let (ns, rest) = rest.split_once('/')?;
    if ns != namespace {
        return None;
    }
    let rest = rest.strip_prefix("services/")?;
    let (service, rest) = rest.split_once('/')?;
    if !rest.starts_with("proxy") {
        return None;
    }
    // NAME, NAME:PORT or SCHEME:NAME:PORT.
    let parts: Vec<&str> = service.split(':').collect();
    let name = match parts.as_slice() {
        [name] | [name, _] => name,
        [_, name, _] => name,
        _ => return None,
    };
    is_name(name).then(|| (*name).to_owned())
}

/// A DNS label: what a Function's (and its Service's) name is.
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Whether this Function is the pool's: the operator's decision for its
/// current spec, or, until the operator has written it, the same decision
/// made here (so that a new Function is staged as soon as it is created,
/// not after its status; one the operator then puts elsewhere is dropped).
fn pooled(function: &FunctionResource, catalog: &Catalog) -> bool {
    hosting_now(function, catalog) == Some(Hosting::Pool)
}

/// The Function as the pool's host runs it: what the pool cannot honour
/// (the fields that shape pods of its own) the operator keeps out of the
/// pool, and is dropped here.
fn as_run(resource: &FunctionResource) -> Function {
    let mut function = resource.to_function();
    let spec = &mut function.spec;
    spec.replicas = None;
    spec.autoscaling = None;
    spec.port = None;
    spec.resources = None;
    spec.deployment = None;
    spec.service = None;
    spec.image = None;
    spec.image_security = None;
    spec.placement = None;
    spec.file = None;
    function.metadata.namespace = None;
    function
}

/// Follows the Functions of `namespace` until the process ends: stages the
/// pool's, drops the others and the deleted. A Function that cannot be
/// decoded is logged and not served; the others go on.
pub async fn follow(app: Arc<App>, namespace: String) {
    let client = match kube::Client::try_default().await {
        Ok(client) => client,
        Err(err) => {
            tracing::error!(
                "the pool cannot reach the Kubernetes API, so it serves no function: {err}"
            );
            return;
        }
    };
    tokio::spawn(follow_kafka(app.clone(), client.clone(), namespace.clone()));
    let root = app
        .registry
        .secrets_root()
        .map_or_else(|| PathBuf::from(POOL_SECRETS_ROOT), Path::to_path_buf);
    let secrets = PoolSecrets::new(Api::namespaced(client.clone(), &namespace), root);
    tokio::spawn(secrets.clone().refresh(app.clone()));
    let api: Api<DeserializeGuard<FunctionResource>> = Api::namespaced(client, &namespace);
    let mut served: HashMap<String, Option<i64>> = HashMap::new();
    let mut listed: Option<HashSet<String>> = None;
    let stream = watcher::watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    while let Some(event) = stream.next().await {
        match event {
            Ok(Watched::Init) => listed = Some(HashSet::new()),
            Ok(Watched::InitApply(object) | Watched::Apply(object)) => {
                let name = object.name_any();
                // A Function created or changed while the pool runs (not
                // one listed at its start) is about to be called.
                let live = listed.is_none();
                if let Some(listed) = listed.as_mut() {
                    listed.insert(name.clone());
                }
                track(&app, &secrets, &mut served, &namespace, name, object, live);
            }
            Ok(Watched::InitDone) => {
                // Deleted while the watch was down.
                if let Some(listed) = listed.take() {
                    let gone: Vec<String> = served
                        .keys()
                        .filter(|name| !listed.contains(*name))
                        .cloned()
                        .collect();
                    for name in gone {
                        forget(&app, &secrets, &mut served, &name);
                    }
                }
            }
            Ok(Watched::Delete(object)) => forget(&app, &secrets, &mut served, &object.name_any()),
            Err(err) => tracing::warn!("watching the Functions of namespace {namespace}: {err}"),
        }
    }
}

/// Where the pool's consumers come from, in listings and logs.
const KAFKA_ORIGIN: &str = "the namespace's KafkaTriggers";
/// How often the consumers are compared with the triggers and functions.
const KAFKA_RESYNC: std::time::Duration = std::time::Duration::from_secs(1);

/// The Kafka consumers a pool runs: for each valid trigger, one for each
/// function of the pool it selects (`selected`), delivering to that
/// function alone in its consumer group ([`KafkaTrigger::for_function`]).
/// Keyed `KafkaTrigger/TRIGGER/FUNCTION`, sorted.
pub fn pool_consumers(
    triggers: &[KafkaTrigger],
    selected: impl Fn(&Target) -> Vec<String>,
) -> Vec<(String, Trigger)> {
    let mut consumers: Vec<(String, Trigger)> = triggers
        .iter()
        .filter(|t| t.validate().is_ok())
        .flat_map(|trigger| {
            selected(&trigger.spec.target())
                .into_iter()
                .map(move |function| {
                    (
                        format!("KafkaTrigger/{}/{function}", trigger.name()),
                        Trigger::Kafka(trigger.for_function(&function)),
                    )
                })
        })
        .collect();
    consumers.sort_by(|a, b| a.0.cmp(&b.0));
    consumers
}

/// Runs the consumers of the namespace's KafkaTriggers for the pool's
/// functions until the process ends, following both: a new trigger or a
/// newly staged function starts one, a changed trigger restarts its
/// consumers, and a removed one finishes its deliveries and commits. A
/// trigger that cannot be read or is invalid is left to the operator,
/// which reports it in the trigger's status.
async fn follow_kafka(app: Arc<App>, client: kube::Client, namespace: String) {
    let api: Api<DeserializeGuard<KafkaTriggerResource>> = Api::namespaced(client, &namespace);
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
        .default_backoff();
    let watching = namespace.clone();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Err(err) = event {
                tracing::warn!("watching the KafkaTriggers of namespace {watching}: {err}");
            }
        }
    });
    let origin = std::path::Path::new(KAFKA_ORIGIN);
    let mut running: Vec<(String, Trigger)> = Vec::new();
    loop {
        let triggers: Vec<KafkaTrigger> = store
            .state()
            .iter()
            .filter_map(|t| t.0.as_ref().ok())
            .map(|t| t.to_trigger())
            .collect();
        let wanted = pool_consumers(&triggers, |target| app.registry.matching(target));
        if wanted != running {
            app.triggers.apply_keyed(&app, origin, wanted.clone()).await;
            running = wanted;
        }
        tokio::time::sleep(KAFKA_RESYNC).await;
    }
}

fn track(
    app: &Arc<App>,
    secrets: &Arc<PoolSecrets>,
    served: &mut HashMap<String, Option<i64>>,
    namespace: &str,
    name: String,
    object: DeserializeGuard<FunctionResource>,
    live: bool,
) {
    let function = match object.0 {
        Ok(function) => function,
        Err(invalid) => {
            if served.contains_key(&name) {
                forget(app, secrets, served, &name);
            }
            tracing::error!(function = %name, "Function {namespace}/{name} cannot be read, so the pool does not serve it: {}", invalid.error);
            return;
        }
    };
    let pooled = pooled(&function, &app.catalog());
    let address = function.status.as_ref().and_then(|s| s.cluster_ip.clone());
    app.pool_addresses.set(&name, address.filter(|_| pooled));
    if !pooled {
        if served.contains_key(&name) {
            tracing::info!(function = %name, "no longer in the pool");
            forget(app, secrets, served, &name);
        }
        return;
    }
    let generation = function.metadata.generation;
    // Status writes come as changes too: only a new spec is a new version.
    if served.get(&name) == Some(&generation) {
        return;
    }
    tracing::info!(function = %name, generation = ?generation, "staged: loads on its first event");
    served.insert(name.clone(), generation);
    let run = as_run(&function);
    if run.spec.secrets.is_empty() {
        secrets.forget(&name);
        stage(app, run);
        if live {
            warm(app, name);
        }
    } else {
        // Its Secrets first, so that its first event finds them.
        secrets.stage(app, run, generation);
    }
}

/// Stages `function` in the registry, unloaded; if a version of it is
/// loaded, swaps in the new one as soon as it has loaded.
pub(super) fn stage(app: &Arc<App>, function: Function) {
    // A function with packages to install loads now, not on its first
    // event: that event would wait for the installer.
    let eager = crate::operator::resources::installs_dependencies(&function, &app.catalog());
    let name = function.name().to_owned();
    let Some(function) = app.registry.stage(function, Origin::Cluster) else {
        if eager {
            let app = app.clone();
            tokio::spawn(async move {
                tracing::info!(function = %name, "installing its packages");
                match app.registry.ready(&name).await {
                    Some(Err(reason)) => {
                        tracing::warn!(function = %name, "did not load: {reason}")
                    }
                    Some(Ok(_)) => tracing::info!(function = %name, "packages installed, loaded"),
                    None => {}
                }
            });
        }
        return;
    };
    let app = app.clone();
    tokio::spawn(async move {
        if let Err(reason) = app.registry.deploy(function, Origin::Cluster).await {
            tracing::warn!(function = %name, "the new version did not load: {reason}");
        }
    });
}

/// How many functions may be loaded ahead of their first event at once
/// (loaded, not yet called): the rest of a burst of new Functions loads on
/// its first events, as at the pool's start, so a bulk apply of thousands
/// does not hold thousands loaded.
const WARM_SLOTS: usize = 8;
/// A function loaded ahead and not called within this is parked again.
const WARM_IDLE: std::time::Duration = std::time::Duration::from_secs(20);
/// How often a function loaded ahead is checked for its first event.
const WARM_CHECK: std::time::Duration = std::time::Duration::from_millis(250);

/// Loads a Function the pool has just learnt of ahead of its first event.
/// Its first request comes through its Service, which the operator makes
/// from the same Function: the load (a compile for new code) runs while the
/// Service and its endpoints are made, not after the request came. One not
/// called within [`WARM_IDLE`] is parked again; with every slot taken, a
/// function loads on its first event instead.
fn warm(app: &Arc<App>, name: String) {
    static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(WARM_SLOTS);
    // A loaded earlier version is being replaced by a deploy already.
    if !matches!(app.registry.get(&name), Some(Entry::Pending(_))) {
        return;
    }
    let Ok(slot) = SLOTS.try_acquire() else {
        return;
    };
    let app = app.clone();
    tokio::spawn(async move {
        let _slot = slot;
        let started = std::time::Instant::now();
        match app.registry.ready(&name).await {
            Some(Ok(_)) => tracing::info!(
                function = %name,
                elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                "loaded ahead of its first event"
            ),
            // Removed meanwhile, or failed: the failure is logged and told
            // to its first event.
            _ => return,
        }
        let loaded = std::time::Instant::now();
        while loaded.elapsed() < WARM_IDLE {
            tokio::time::sleep(WARM_CHECK).await;
            match app.registry.idle_for(&name) {
                // Called since: loaded for good, as after any event.
                Some(idle) if idle < loaded.elapsed() => return,
                Some(_) => {}
                // Removed, replaced or parked.
                None => return,
            }
        }
        if app.registry.park_if_idle(&name, WARM_IDLE) {
            tracing::debug!(function = %name, "loaded ahead, not called: parked");
        }
    });
}

fn forget(
    app: &Arc<App>,
    secrets: &PoolSecrets,
    served: &mut HashMap<String, Option<i64>>,
    name: &str,
) {
    secrets.forget(name);
    served.remove(name);
    app.pool_addresses.set(name, None);
    if app.registry.remove(name) {
        tracing::info!(function = %name, "removed from the pool");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("a header name"),
                v.parse().expect("a header value"),
            );
        }
        map
    }

    fn kafka(yaml: &str) -> KafkaTrigger {
        serde_saphyr::from_str(yaml).expect("a trigger")
    }

    #[test]
    fn a_pool_runs_one_consumer_per_trigger_and_selected_function() {
        let triggers = [
            kafka(
                "apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata: {name: orders}\nspec: {brokers: 'k:9092', topic: orders, function: billing}\n",
            ),
            kafka(
                "apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata: {name: audit}\nspec: {brokers: 'k:9092', topic: events, functionSelector: {matchLabels: {tier: sink}}}\n",
            ),
            // Invalid (no topic): the operator reports it; no consumer.
            kafka(
                "apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata: {name: broken}\nspec: {brokers: 'k:9092', function: billing}\n",
            ),
            // Its function is not in the pool: no consumer here.
            kafka(
                "apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata: {name: elsewhere}\nspec: {brokers: 'k:9092', topic: t, function: dedicated}\n",
            ),
        ];
        let pool = |target: &Target| -> Vec<String> {
            ["billing", "ledger", "mailer"]
                .into_iter()
                .filter(|name| match target {
                    Target::Name(n) => n == name,
                    Target::Labels(_) => *name != "billing",
                })
                .map(str::to_owned)
                .collect()
        };
        let consumers = pool_consumers(&triggers, pool);
        let summary: Vec<(String, String, Option<String>)> = consumers
            .iter()
            .map(|(key, trigger)| match trigger {
                Trigger::Kafka(t) => (key.clone(), t.consumer_group(), t.spec.function.clone()),
                Trigger::Cron(_) => panic!("a cron trigger"),
            })
            .collect();
        let row = |key: &str, group: &str, function: &str| {
            (key.to_owned(), group.to_owned(), Some(function.to_owned()))
        };
        assert_eq!(
            summary,
            vec![
                // A selector: a group per function, so each sees every message.
                row(
                    "KafkaTrigger/audit/ledger",
                    "wasmless-audit.ledger",
                    "ledger"
                ),
                row(
                    "KafkaTrigger/audit/mailer",
                    "wasmless-audit.mailer",
                    "mailer"
                ),
                // By name: the trigger's group, as its dedicated pods use.
                row("KafkaTrigger/orders/billing", "wasmless-orders", "billing"),
            ]
        );
        for (_, trigger) in &consumers {
            let Trigger::Kafka(t) = trigger else { continue };
            assert!(t.spec.function_selector.is_none());
            crate::triggers::kafka::KafkaJob::new(t).expect("runs");
        }
    }

    #[test]
    fn a_request_names_its_function_by_the_service_it_came_to() {
        let ips = |ip: &str| (ip == "198.19.0.9" || ip == "fd00::9").then(|| "by-ip".to_owned());
        let at = |pairs: &[(&str, &str)]| addressed(&headers(pairs), "team", ips);
        assert_eq!(at(&[("host", "hello:8080")]).as_deref(), Some("hello"));
        assert_eq!(at(&[("host", "hello.team")]).as_deref(), Some("hello"));
        assert_eq!(
            at(&[("host", "hello.team.svc:8080")]).as_deref(),
            Some("hello")
        );
        assert_eq!(
            at(&[("host", "hello.team.svc.cluster.local:8080")]).as_deref(),
            Some("hello")
        );
        // Another namespace's Service, an address, a foreign name: none.
        assert_eq!(at(&[("host", "hello.other.svc.cluster.local")]), None);
        assert_eq!(at(&[("host", "198.18.0.7:8080")]), None);
        assert_eq!(at(&[("host", "[::1]:8080")]), None);
        // A Service's cluster IP.
        assert_eq!(at(&[("host", "198.19.0.9:8080")]).as_deref(), Some("by-ip"));
        assert_eq!(at(&[("host", "198.19.0.9")]).as_deref(), Some("by-ip"));
        assert_eq!(at(&[("host", "[fd00::9]:8080")]).as_deref(), Some("by-ip"));
        assert_eq!(at(&[("host", "[fd00::9]")]).as_deref(), Some("by-ip"));
        assert_eq!(at(&[("host", "example.com")]), None);
        // Through the API server's service proxy, Host is the API server.
        let proxied = |uri: &str| at(&[("host", "198.18.0.1:6443"), ("x-forwarded-uri", uri)]);
        assert_eq!(
            proxied("/api/v1/namespaces/team/services/hello:http-function-port/proxy/a/b")
                .as_deref(),
            Some("hello")
        );
        assert_eq!(
            proxied("/api/v1/namespaces/team/services/http:hello:8080/proxy").as_deref(),
            Some("hello")
        );
        assert_eq!(
            proxied("/api/v1/namespaces/team/services/hello/proxy/").as_deref(),
            Some("hello")
        );
        assert_eq!(
            proxied("/api/v1/namespaces/other/services/hello/proxy/"),
            None
        );
        assert_eq!(proxied("/api/v1/namespaces/team/pods/hello/proxy/"), None);
        // The explicit header wins.
        assert_eq!(
            at(&[("host", "example.com"), (FUNCTION_HEADER, "orders")]).as_deref(),
            Some("orders")
        );
        assert_eq!(at(&[(FUNCTION_HEADER, "Not A Name")]), None);
    }
}
