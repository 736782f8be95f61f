//! `wasmless operator`: the controllers for the four resources, the cron
//! scheduler under its Lease, and /healthz and /metrics.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodSpec, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, ListParams};
use kube::core::DeserializeGuard;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use kube_lease_manager::LeaseManagerBuilder;
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::context::Context;
use super::invalid::reconcile_decoded;
use super::reconcile::{
    error_policy, reconcile_cron_trigger, reconcile_function, reconcile_http_trigger,
    reconcile_kafka_trigger,
};
use super::resources::{CREATED_BY_LABEL, PodSettings};
use super::scheduler::{self, SchedulerConfig};
use crate::crd::{
    CronTriggerResource, FunctionResource, HttpTriggerResource, KafkaTriggerResource,
};
use crate::triggers::TriggerMetrics;

/// The Lease whose holder reconciles and fires the cron triggers; the other
/// replicas stand by with warm caches.
pub const LEASE: &str = "wasmless-operator";

/// How long a stopping replica waits for its Lease to be released, so that
/// a standby takes over at once rather than when the Lease expires.
const RELEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Every API permission the operator uses: (group, resource, verbs).
/// manifests/rbac.yaml grants exactly these (a test checks it). A
/// server-side apply that creates is authorized as `create`; setting an
/// owner reference needs `delete` on the object (the
/// OwnerReferencesPermissionEnforcement admission plugin) and, for
/// `blockOwnerDeletion`, `update` on the owner's finalizers.
pub const PERMISSIONS: &[(&str, &str, &[&str])] = &[
    ("wasmless.io", "functions", &["get", "list", "watch"]),
    ("wasmless.io", "httptriggers", &["get", "list", "watch"]),
    ("wasmless.io", "crontriggers", &["get", "list", "watch"]),
    ("wasmless.io", "kafkatriggers", &["get", "list", "watch"]),
    ("wasmless.io", "functions/status", &["patch"]),
    ("wasmless.io", "httptriggers/status", &["patch"]),
    ("wasmless.io", "crontriggers/status", &["patch"]),
    ("wasmless.io", "kafkatriggers/status", &["patch"]),
    ("wasmless.io", "functions/finalizers", &["update"]),
    ("wasmless.io", "httptriggers/finalizers", &["update"]),
    (
        "",
        "configmaps",
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    (
        "",
        "services",
        &["list", "watch", "create", "patch", "delete"],
    ),
    ("", "endpoints", &["create", "patch", "delete"]),
    ("", "pods", &["list", "watch"]),
    (
        "discovery.k8s.io",
        "endpointslices",
        &["list", "deletecollection"],
    ),
    (
        "apps",
        "deployments",
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    (
        "autoscaling",
        "horizontalpodautoscalers",
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    (
        "networking.k8s.io",
        "ingresses",
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    (
        "gateway.networking.k8s.io",
        "httproutes",
        &["get", "create", "patch", "delete"],
    ),
    ("events.k8s.io", "events", &["create", "patch"]),
    ("coordination.k8s.io", "leases", &["get", "create", "patch"]),
    // Each namespace's pool: its identity, bound to the wasmless-pool
    // ClusterRole (whose permissions the operator holds, so it may bind it).
    ("", "serviceaccounts", &["create", "patch", "delete"]),
    (
        "rbac.authorization.k8s.io",
        "rolebindings",
        &["create", "patch", "delete"],
    ),
    // And, while its Functions name Secrets, a Role to read those by name
    // (the operator may grant only what it holds itself).
    (
        "rbac.authorization.k8s.io",
        "roles",
        &["create", "patch", "delete"],
    ),
    ("", "secrets", &["get"]),
];

/// Settings of `wasmless operator`, validated.
#[derive(Clone, Debug)]
pub struct OperatorConfig {
    /// How function pods are built.
    pub settings: PodSettings,
    /// Watch only this namespace; all namespaces when `None`.
    pub namespace: Option<String>,
    /// Where /healthz and /metrics are served.
    pub listen: SocketAddr,
    /// The namespace of the cron Lease (the operator's own).
    pub lease_namespace: String,
    /// This replica's name in the Lease and in Events.
    pub identity: String,
}

fn api<K>(client: &Client, namespace: &Option<String>) -> Api<K>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the operator until SIGTERM or Ctrl-C.
pub async fn run(config: OperatorConfig) -> anyhow::Result<()> {
    let client = Client::try_default().await.map_err(|e| {
        anyhow::anyhow!("connecting to Kubernetes (in-cluster service account, or KUBECONFIG): {e}")
    })?;
    let ns = &config.namespace;
    api::<FunctionResource>(&client, ns)
        .list(&ListParams::default().limit(1))
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot list Functions ({e}); are the CRDs installed? `wasmless crds | kubectl apply -f -`"
            )
        })?;
    let ctx = Arc::new(Context::new(
        client.clone(),
        config.settings.clone(),
        Some(config.identity.clone()),
    ));
    let trigger_metrics = TriggerMetrics::default();
    let mut registry = Registry::default();
    ctx.register(&mut registry);
    trigger_metrics.register(&mut registry);
    let stop = CancellationToken::new();
    let health = tokio::spawn(serve_health(config.listen, Arc::new(registry)));
    let trimmer = tokio::spawn(return_freed_heap_now_and_then());

    // One replica reconciles at a time: the holder of the Lease. Two that
    // both applied (an old and a new version during an upgrade) would set
    // their own templates in turn, forever.
    let lease = LeaseManagerBuilder::new(client.clone(), LEASE)
        .with_namespace(&config.lease_namespace)
        .with_identity(&config.identity)
        .build()
        .await
        .with_context(|| format!("setting up the {LEASE} Lease in {}", config.lease_namespace))?;
    let (leader, lease_task) = lease.watch().await;
    ctx.set_leading(*leader.borrow());
    let (elected, elections) = watch::channel(0u64);
    let follower = tokio::spawn(follow_lease(
        leader.clone(),
        ctx.clone(),
        elected,
        stop.clone(),
    ));

    let owned = watcher::Config::default().labels(&format!("{CREATED_BY_LABEL}=wasmless"));
    let all = watcher::Config::default();

    // Every resource of ours is watched through DeserializeGuard: an object
    // that does not decode is reported on its own (super::invalid) instead
    // of failing the whole list.
    // The caches hold no function sources: the Functions without their
    // `spec.function` (the reconciler reads the whole object), the
    // ConfigMaps that carry the source as metadata only. The operator's
    // memory then does not grow with the size of the sources.
    let (function_cache, function_writer) = reflector::store();
    let function_events = watcher(guarded::<FunctionResource>(&client, ns), all.clone())
        .default_backoff()
        .modify(cached(&ctx))
        .reflect(function_writer)
        .applied_objects();
    let functions = Controller::for_stream(function_events, function_cache)
        .owns_stream(
            watcher(
                api::<PartialObjectMeta<ConfigMap>>(&client, ns),
                owned.clone(),
            )
            .default_backoff()
            .touched_objects(),
        )
        .owns(api::<Deployment>(&client, ns), owned.clone())
        .owns(api::<Service>(&client, ns), owned.clone())
        .owns(api::<HorizontalPodAutoscaler>(&client, ns), owned.clone());
    let function_store = functions.store();
    let pool_store = functions.store();
    let config_store = functions.store();
    let sweep_store = functions.store();
    let _ = ctx.functions.set(functions.store());
    // The pool pods, for the Endpoints of pool Functions: a change to one
    // (an address, readiness, a new or deleted pod) re-reconciles the
    // pool Functions of its namespace.
    let (pod_cache, pod_writer) = reflector::store();
    let _ = ctx.pool_pods.set(pod_cache);
    let pod_store = functions.store();
    let pool_pods = watcher(
        api::<Pod>(&client, ns),
        watcher::Config::default().labels(&super::pool::pool_selector_text()),
    )
    .default_backoff()
    .modify(pod_addressing)
    .reflect(pod_writer)
    .touched_objects();
    // A Kafka trigger rides in the ConfigMaps of the functions it selects:
    // any change to one re-reconciles the functions of its namespace.
    let functions = functions
        // A pool's readiness is its Functions': a change to its Deployment
        // re-reconciles the pool Functions of its namespace.
        .watches(
            api::<Deployment>(&client, ns),
            watcher::Config::default().labels(super::pool::POOL_LABEL),
            move |pool| pool_functions(&pool_store.state(), pool.namespace()),
        )
        .watches_stream(pool_pods, move |pod| {
            pool_functions(&pod_store.state(), pod.namespace())
        })
        // So does a change to the namespace's pool settings.
        .watches_stream(
            watcher(
                api::<PartialObjectMeta<ConfigMap>>(&client, ns),
                watcher::Config::default()
                    .fields(&format!("metadata.name={}", super::pool::POOL_CONFIG)),
            )
            .default_backoff()
            .touched_objects(),
            move |config| pool_functions(&config_store.state(), config.namespace()),
        )
        .watches(
            guarded::<KafkaTriggerResource>(&client, ns),
            all.clone(),
            move |trigger| same_namespace(&function_store.state(), trigger.namespace()),
        )
        .reconcile_all_on(on_election(elections.clone()))
        // A new runtime catalog may move Functions between wasm and image.
        .reconcile_all_on(super::catalog::watch(
            client.clone(),
            &config.lease_namespace,
            ctx.clone(),
        ))
        .shutdown_on_signal()
        .run(
            |object, ctx| reconcile_decoded(object, ctx, reconcile_function),
            error_policy,
            ctx.clone(),
        )
        .for_each(log_outcome);

    let kafka = Controller::new(guarded::<KafkaTriggerResource>(&client, ns), all.clone());
    let kafka_store = kafka.store();
    let kafka = kafka
        .watches_stream(
            watcher(guarded::<FunctionResource>(&client, ns), all.clone())
                .default_backoff()
                .modify(cached(&ctx))
                .touched_objects(),
            move |function| same_namespace(&kafka_store.state(), function.namespace()),
        )
        .reconcile_all_on(on_election(elections.clone()))
        .shutdown_on_signal()
        .run(
            |object, ctx| reconcile_decoded(object, ctx, reconcile_kafka_trigger),
            error_policy,
            ctx.clone(),
        )
        .for_each(log_outcome);

    let http = Controller::new(guarded::<HttpTriggerResource>(&client, ns), all.clone())
        .owns(api::<Ingress>(&client, ns), all.clone())
        .reconcile_all_on(on_election(elections.clone()))
        .shutdown_on_signal()
        .run(
            |object, ctx| reconcile_decoded(object, ctx, reconcile_http_trigger),
            error_policy,
            ctx.clone(),
        )
        .for_each(log_outcome);

    let cron = Controller::new(guarded::<CronTriggerResource>(&client, ns), all);
    let cron_store = cron.store();
    let cron = cron
        .reconcile_all_on(on_election(elections))
        .shutdown_on_signal()
        .run(
            |object, ctx| reconcile_decoded(object, ctx, reconcile_cron_trigger),
            error_policy,
            ctx.clone(),
        )
        .for_each(log_outcome);

    let sweeper = tokio::spawn(sweep_pools(
        ctx.clone(),
        sweep_store,
        ns.clone(),
        stop.clone(),
    ));
    let scheduler = tokio::spawn(scheduler::run(
        cron_store,
        leader,
        SchedulerConfig {
            url_template: format!(
                "http://{{function}}.{{namespace}}.svc.{}:{}/",
                config.settings.cluster_domain,
                super::resources::FUNCTION_PORT
            ),
            ticks: scheduler::Ticks::Status(client.clone()),
        },
        trigger_metrics,
        stop.clone(),
    ));
    tracing::info!(
        namespace = ns.as_deref().unwrap_or("all"),
        image = %config.settings.image,
        "wasmless operator: reconciling Functions, HTTPTriggers, CronTriggers and KafkaTriggers"
    );
    tokio::join!(functions, kafka, http, cron);
    tracing::info!("wasmless operator: stopping");
    stop.cancel();
    let _ = scheduler.await;
    let _ = sweeper.await;
    let _ = follower.await;
    // With every receiver gone the lease manager releases the Lease.
    if tokio::time::timeout(RELEASE_TIMEOUT, lease_task)
        .await
        .is_err()
    {
        tracing::warn!(
            "the {LEASE} Lease was not released in time; a standby takes over when it expires"
        );
    }
    health.abort();
    trimmer.abort();
    Ok(())
}

/// How often the operator gives freed heap back to the system.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Gives the heap freed since the last time back to the system, every
/// [`TRIM_EVERY`]. A burst of reconciles (each reads its whole Function,
/// the source too) leaves freed memory in the allocator's per-thread
/// arenas: with 1,000 Functions of 16 KB the leading replica held 167 MiB
/// resident, 71 MiB after one trim (benches/README.md).
async fn return_freed_heap_now_and_then() {
    let mut every = tokio::time::interval(TRIM_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let _ = tokio::task::spawn_blocking(crate::host::return_freed_heap).await;
    }
}

/// Keeps `ctx` told whether this replica holds the Lease, and counts each
/// election in `elected` (which makes every controller reconcile all its
/// objects), until `stop` or the lease manager's end.
async fn follow_lease(
    mut leader: watch::Receiver<bool>,
    ctx: Arc<Context>,
    elected: watch::Sender<u64>,
    stop: CancellationToken,
) {
    loop {
        let leading = *leader.borrow_and_update();
        if leading != ctx.is_leading() {
            ctx.set_leading(leading);
            if leading {
                tracing::info!("holding the {LEASE} Lease: reconciling and firing cron triggers");
                elected.send_modify(|n| *n += 1);
            } else {
                tracing::info!("the {LEASE} Lease went to another replica: standing by");
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            changed = leader.changed() => if changed.is_err() {
                ctx.set_leading(false);
                tracing::warn!("the {LEASE} Lease is no longer managed; this replica stops reconciling");
                break;
            },
        }
    }
}

/// One item per election won, for `Controller::reconcile_all_on`.
fn on_election(elections: watch::Receiver<u64>) -> impl futures::Stream<Item = ()> + Send {
    futures::stream::unfold(elections, |mut elections| async move {
        elections.changed().await.ok()?;
        Some(((), elections))
    })
}

/// The API of one of our resources, read through [`DeserializeGuard`].
fn guarded<K>(client: &Client, namespace: &Option<String>) -> Api<DeserializeGuard<K>>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    api::<DeserializeGuard<K>>(client, namespace)
}

/// The objects of `objects` in `namespace`.
/// How often the leader looks for pools no Function uses any more.
const POOL_SWEEP: std::time::Duration = std::time::Duration::from_secs(60);

/// Deletes the pool of a namespace that has no pool Function left (none
/// was placed there, or all were deleted or moved): an idle namespace
/// costs no pod. A pool younger than a sweep period is left alone, so that
/// a Function just created is seen first.
async fn sweep_pools(
    ctx: Arc<Context>,
    functions: reflector::Store<DeserializeGuard<FunctionResource>>,
    namespace: Option<String>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(POOL_SWEEP) => {}
        }
        if !ctx.is_leading() || !functions_ready(&functions) {
            continue;
        }
        let pools = match api::<Deployment>(&ctx.client, &namespace)
            .list_metadata(&ListParams::default().labels(super::pool::POOL_LABEL))
            .await
        {
            Ok(pools) => pools,
            Err(err) => {
                tracing::warn!("listing the pools: {err}");
                continue;
            }
        };
        for pool in pools {
            let ns = pool.namespace();
            let young = pool.metadata.creation_timestamp.as_ref().is_none_or(|t| {
                t.0.duration_until(k8s_openapi::jiff::Timestamp::now())
                    .unsigned_abs()
                    < POOL_SWEEP
            });
            let Some(ns) = ns else { continue };
            if young {
                continue;
            }
            if !pool_functions(&functions.state(), Some(ns.clone())).is_empty() {
                // In use: it keeps its Secrets Role while a Function names
                // a Secret (each reconcile applies it), and loses it after.
                let secrets = super::pool::pool_secrets(&functions.state(), &ns, &ctx.catalog());
                if secrets.is_empty()
                    && let Err(err) = super::reconcile::delete_pool_secrets(&ctx, &ns).await
                {
                    tracing::warn!(namespace = %ns, "deleting the pool's unused Secrets Role: {err}");
                }
                continue;
            }
            if let Err(err) = super::reconcile::delete_pool(&ctx, &ns).await {
                tracing::warn!(namespace = %ns, "deleting the unused pool: {err}");
            } else {
                tracing::info!(namespace = %ns, "deleted the pool: no Function of the namespace uses it");
            }
        }
    }
}

/// Whether the Function cache has listed at least once.
fn functions_ready(functions: &reflector::Store<DeserializeGuard<FunctionResource>>) -> bool {
    futures::FutureExt::now_or_never(functions.wait_until_ready()).is_some_and(|r| r.is_ok())
}

/// What the operator keeps of a pool pod: what its Endpoints address
/// needs (name, uid, node, address, readiness), nothing of its spec.
fn pod_addressing(pod: &mut Pod) {
    pod.metadata.managed_fields = None;
    pod.metadata.annotations = None;
    let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    pod.spec = Some(PodSpec {
        node_name,
        ..PodSpec::default()
    });
    if let Some(status) = pod.status.as_mut() {
        status.container_statuses = None;
        status.init_container_statuses = None;
    }
}

/// The Functions of `namespace` in its pool (or not placed yet).
fn pool_functions(
    functions: &[Arc<DeserializeGuard<FunctionResource>>],
    namespace: Option<String>,
) -> Vec<ObjectRef<DeserializeGuard<FunctionResource>>> {
    functions
        .iter()
        .filter(|f| f.meta().namespace == namespace)
        .filter(|f| {
            let hosting =
                f.0.as_ref()
                    .ok()
                    .and_then(|f| Some(f.status.as_ref()?.placement.as_ref()?.hosting.clone()));
            hosting.is_none_or(|h| h == crate::crd::Hosting::Pool.as_str())
        })
        .map(|f| ObjectRef::from_obj(f.as_ref()))
        .collect()
}

fn same_namespace<K: Resource<DynamicType = ()>>(
    objects: &[Arc<K>],
    namespace: Option<String>,
) -> Vec<ObjectRef<K>> {
    objects
        .iter()
        .filter(|o| o.meta().namespace == namespace)
        .map(|o| ObjectRef::from_obj(o.as_ref()))
        .collect()
}

async fn log_outcome<K, E, W>(
    outcome: Result<
        (ObjectRef<K>, kube::runtime::controller::Action),
        kube::runtime::controller::Error<E, W>,
    >,
) where
    K: Resource,
    E: std::error::Error,
    W: std::error::Error,
{
    match outcome {
        Ok((object, _)) => tracing::debug!(%object, "reconciled"),
        // Reconcile errors are logged by the error policy.
        Err(kube::runtime::controller::Error::ReconcilerFailed(..)) => {}
        Err(err) => tracing::warn!("controller: {err}"),
    }
}

/// How the watchers of Functions cache one: without its source
/// ([`super::reconcile::without_source`], with the catalog in effect).
fn cached(ctx: &Arc<Context>) -> impl FnMut(&mut DeserializeGuard<FunctionResource>) + use<> {
    let ctx = ctx.clone();
    move |function| super::reconcile::without_source(function, &ctx.catalog())
}

/// Serves /healthz and /metrics until aborted.
async fn serve_health(listen: SocketAddr, registry: Arc<Registry>) -> anyhow::Result<()> {
    let listener = crate::net::listen(listen).with_context(|| format!("listening on {listen}"))?;
    loop {
        let (stream, _) = listener.accept().await?;
        let registry = registry.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let registry = registry.clone();
                    async move {
                        let (status, body) = match req.uri().path() {
                            "/healthz" => (200, "ok\n".to_owned()),
                            "/metrics" => {
                                let mut text = String::new();
                                match prometheus_client::encoding::text::encode(
                                    &mut text, &registry,
                                ) {
                                    Ok(()) => (200, text),
                                    Err(e) => (500, format!("encoding metrics: {e}\n")),
                                }
                            }
                            _ => (404, "not found: /healthz or /metrics\n".to_owned()),
                        };
                        let mut response = http::Response::new(Full::new(Bytes::from(body)));
                        *response.status_mut() = http::StatusCode::from_u16(status)
                            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
                        Ok::<_, Infallible>(response)
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
