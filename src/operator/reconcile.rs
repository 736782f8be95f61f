//! The reconcilers: thin I/O shells around the pure builders. Each applies
//! what the builders want with server-side apply, writes the status, and
//! reports a problem with the user's spec as a condition and an Event
//! (then waits for a change); API errors are returned and retried.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::context::{Context, FIELD_MANAGER};
use super::error::Error;
use super::invalid::valid;
use super::pool::{
    POOL_CONFIG, POOL_NAME, POOL_SECRETS, PoolSettings, desired_pool, desired_pool_secrets,
    installer_for, pool_installers, pool_secrets, pool_selector_text,
};
use super::resources::{
    Refusal, cached_pool_service, desired_endpoints, desired_objects, function_url, hosting_now,
    hosting_of, selector_text,
};
use super::routes::{Route, desired_route, http_route_resource, route_url};
use super::status::{READY, deployment_readiness, ready_condition};
use crate::crd::{
    CronTriggerResource, FunctionResource, FunctionStatus, Hosting, HttpTriggerResource,
    KafkaTrigger, KafkaTriggerResource, TriggerStatus,
};

/// How often a settled resource is checked again without any change.
const RESYNC: Duration = Duration::from_secs(300);

/// Brings a Function's ConfigMap, Deployment, Service and autoscaler in
/// line with its spec, and its status in line with its Deployment.
pub async fn reconcile_function(
    function: Arc<FunctionResource>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let (namespace, name) = identity(function.as_ref())?;
    // A pool Function's Service and Endpoints are all its first request
    // waits for, and the cache knows enough to make them: they go out
    // while the whole Function (its source) is read.
    let (whole, early) = tokio::join!(
        with_source(&ctx, function.clone(), &namespace, &name),
        early_pool_service(&ctx, &function, &namespace),
    );
    let Some(function) = whole? else {
        // Deleted since it was cached: its objects go with it (an early
        // Service too, through its owner reference).
        return Ok(Action::await_change());
    };
    // A pool function's Kafka consumers run in the pool, which reads the
    // triggers itself: only a dedicated Deployment's ConfigMap lists them.
    // Not listing them for a pool function is one API call fewer before
    // its Service, which is what its first request waits for.
    let kafka = if hosting_of(&function, &ctx.catalog()) == Some(Hosting::Pool) {
        Vec::new()
    } else {
        kafka_triggers_for(&function, &namespace, &ctx).await?
    };
    let objects = match desired_objects(&function, &kafka, &ctx.settings, &ctx.catalog()) {
        Ok(objects) => objects,
        Err(refusal) => {
            // The refusal is about this generation: `function deploy
            // --wait` reads that and prints the reason at once.
            let status = FunctionStatus {
                observed_generation: function.metadata.generation,
                conditions: vec![refused(
                    function.as_ref(),
                    &function.status_conditions(),
                    &refusal,
                )],
                placement: None,
                url: None,
                ..function.status.clone().unwrap_or_default()
            };
            write_status(&ctx, function.as_ref(), function.status.as_ref(), status).await?;
            warn(&ctx, function.as_ref(), &refusal).await;
            if let Some((service, endpoints)) = &early
                && !served_in_pool(&function)
            {
                // Made from the cache before the source said otherwise, for
                // a Function no earlier version of which the pool served.
                delete_made(&ctx, &namespace, service).await?;
                delete_made(&ctx, &namespace, endpoints).await?;
            }
            ctx.count("Function", "refused");
            return Ok(Action::await_change());
        }
    };
    let pooled = objects.hosting.hosting == Hosting::Pool;
    let service;
    let deployment = if pooled {
        // The namespace's pool serves it. Its Service and that Service's
        // Endpoints (the pool's pods) first, side by side: with the pool
        // up, they are all a new function waits for (the pool has staged
        // it from the Function itself). Then the pool; what a dedicated
        // placement made goes.
        service = match early {
            Some((service, _)) => service,
            None => {
                let endpoints =
                    desired_endpoints(function.as_ref(), &pool_pods(&ctx, &namespace).await);
                let (applied, _) = tokio::try_join!(
                    apply(&ctx, &namespace, &objects.service),
                    apply(&ctx, &namespace, &endpoints),
                )?;
                applied
            }
        };
        let pool = ensure_pool(&ctx, &namespace, &function).await?;
        delete_owned::<HorizontalPodAutoscaler>(&ctx, &namespace, &name, function.as_ref()).await?;
        delete_owned::<Deployment>(&ctx, &namespace, &name, function.as_ref()).await?;
        delete_owned::<ConfigMap>(&ctx, &namespace, &name, function.as_ref()).await?;
        retire_selected_slices(&ctx, &namespace, &name).await?;
        pool
    } else {
        apply(&ctx, &namespace, &objects.config_map).await?;
        let mut desired = objects.deployment.clone();
        if let Some(scaling) = &function.spec.autoscaling {
            keep_autoscaled_replicas(&ctx, &namespace, scaling, &mut desired).await?;
        }
        let deployment = apply(&ctx, &namespace, &desired).await?;
        service = apply(&ctx, &namespace, &objects.service).await?;
        match &objects.autoscaler {
            Some(autoscaler) => {
                apply(&ctx, &namespace, autoscaler).await?;
            }
            None => {
                delete_owned::<HorizontalPodAutoscaler>(&ctx, &namespace, &name, function.as_ref())
                    .await?
            }
        }
        deployment
    };
    let (ready, reason, message) = deployment_readiness(&deployment);
    let deployed = deployment.status.unwrap_or_default();
    let mut placement: crate::crd::PlacementStatus = (&objects.placement).into();
    placement.hosting = objects.hosting.hosting.as_str().to_owned();
    placement.pool = pooled.then(|| POOL_NAME.to_owned());
    placement.hosting_reason = objects.hosting.reason.to_owned();
    placement.hosting_message = objects.hosting.message.clone();
    let status = FunctionStatus {
        observed_generation: function.metadata.generation,
        conditions: vec![ready_condition(
            ready,
            reason,
            message,
            function.metadata.generation,
            &function.status_conditions(),
            Timestamp::now(),
        )],
        replicas: Some(deployed.replicas.unwrap_or(0)),
        ready_replicas: Some(deployed.ready_replicas.unwrap_or(0)),
        selector: Some(if pooled {
            pool_selector_text()
        } else {
            selector_text(&name)
        }),
        url: Some(function_url(&function, &ctx.settings)),
        cluster_ip: service
            .spec
            .and_then(|s| s.cluster_ip)
            .filter(|ip| ip != "None"),
        placement: Some(placement),
    };
    let was_ready = is_ready(&function.status_conditions());
    write_status(&ctx, function.as_ref(), function.status.as_ref(), status).await?;
    if ready && !was_ready {
        let note = format!("serving at {}", function_url(&function, &ctx.settings));
        publish(&ctx, function.as_ref(), EventType::Normal, "Ready", note).await;
    }
    ctx.count("Function", "ok");
    ctx.succeeded(&key(function.as_ref()));
    Ok(Action::requeue(RESYNC))
}

/// Applies the Service and Endpoints of a Function whose cached object (its
/// source left out) decides it is a pool Function; the two as applied, or
/// `None` when there was nothing to do early or it failed (the reconcile
/// then applies them after reading the whole Function, and reports).
async fn early_pool_service(
    ctx: &Context,
    function: &FunctionResource,
    namespace: &str,
) -> Option<(Service, Endpoints)> {
    // Only a generation not reconciled yet waits for them; a resync or a
    // pool pod's change goes the usual way.
    let new = function.status.as_ref().and_then(|s| s.observed_generation)
        != function.metadata.generation;
    if !new || !function.annotations().contains_key(SOURCE_NOT_CACHED) {
        return None;
    }
    let service = cached_pool_service(function, &ctx.settings, &ctx.catalog())?;
    let endpoints = desired_endpoints(function, &pool_pods(ctx, namespace).await);
    match tokio::try_join!(
        apply(ctx, namespace, &service),
        apply(ctx, namespace, &endpoints),
    ) {
        Ok(applied) => Some(applied),
        Err(err) => {
            tracing::debug!(function = %function.name_any(), "early Service: {err}");
            None
        }
    }
}

/// Deletes `object`, which this reconcile made: that very object (by its
/// uid), if it is still there. (The operator may not read Services or
/// Endpoints, only write them.)
async fn delete_made<K>(ctx: &Context, namespace: &str, object: &K) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let name = object.name_any();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let params = DeleteParams {
        preconditions: object
            .meta()
            .uid
            .clone()
            .map(|uid| kube::api::Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
        ..DeleteParams::default()
    };
    match api.delete(&name, &params).await {
        Ok(_) => Ok(()),
        // Gone, or another object by that name now: not this one to delete.
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
        Err(source) => Err(Error::Delete {
            kind: kind_name::<K>(),
            name,
            source,
        }),
    }
}

/// Whether the pool served an earlier version of `function` (its status
/// says so): its Service then existed before this reconcile.
fn served_in_pool(function: &FunctionResource) -> bool {
    function
        .status
        .as_ref()
        .and_then(|s| s.placement.as_ref())
        .is_some_and(|p| p.hosting == Hosting::Pool.as_str())
}

/// The pool pods of `namespace`, once the operator's cache of them has
/// its first list (an empty cache is not "no pods").
async fn pool_pods(ctx: &Context, namespace: &str) -> Vec<Arc<Pod>> {
    let Some(store) = ctx.pool_pods.get() else {
        return Vec::new();
    };
    if store.wait_until_ready().await.is_err() {
        return Vec::new();
    }
    store
        .state()
        .into_iter()
        .filter(|pod| pod.metadata.namespace.as_deref() == Some(namespace))
        .collect()
}

/// Deletes the EndpointSlices the control plane's EndpointSlice controller
/// made for the Service `name` while it had a selector (a pool Service
/// made by an earlier version of the operator): that controller leaves
/// them when the selector goes, and they would go stale beside the ones
/// mirrored from the operator's Endpoints.
async fn retire_selected_slices(ctx: &Context, namespace: &str, name: &str) -> Result<(), Error> {
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), namespace);
    let selector = format!(
        "kubernetes.io/service-name={name},endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io"
    );
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels(&selector),
    )
    .await
    .map(|_| ())
    .map_err(|source| Error::Delete {
        kind: "EndpointSlice",
        name: format!("{name} (selected)"),
        source,
    })
}

/// Applies the pool of `namespace` (its ServiceAccount, RoleBinding and
/// Deployment) and returns its Deployment as the API server has it.
/// While the namespace's pool Functions (`function` among them) name
/// Secrets, it also applies the Role that lets the pool read those.
async fn ensure_pool(
    ctx: &Context,
    namespace: &str,
    function: &FunctionResource,
) -> Result<Deployment, Error> {
    let settings = pool_settings(ctx, namespace).await?;
    let catalog = ctx.catalog();
    let mut installers = ctx
        .functions
        .get()
        .map(|store| pool_installers(&store.state(), namespace, &catalog))
        .unwrap_or_default();
    // The cache may not have this version yet.
    if let Some(installer) = installer_for(&function.to_function(), &catalog) {
        installers
            .entry(installer.language.tag())
            .or_insert(installer);
    }
    let pool = desired_pool(namespace, &ctx.settings, &settings, &installers);
    apply(ctx, namespace, &pool.service_account).await?;
    apply(ctx, namespace, &pool.role_binding).await?;
    let mut secrets = ctx
        .functions
        .get()
        .map(|store| pool_secrets(&store.state(), namespace, &ctx.catalog()))
        .unwrap_or_default();
    // The cache may not have this version yet.
    secrets.extend(function.spec.secrets.iter().cloned());
    if let Some((role, binding)) = desired_pool_secrets(namespace, &secrets) {
        apply(ctx, namespace, &role).await?;
        apply(ctx, namespace, &binding).await?;
    }
    let deployment = apply(ctx, namespace, &pool.deployment).await?;
    match &pool.autoscaler {
        Some(autoscaler) => {
            apply(ctx, namespace, autoscaler).await?;
        }
        None => delete_pool_object::<HorizontalPodAutoscaler>(ctx, namespace).await?,
    }
    Ok(deployment)
}

/// Deletes the pool of `namespace`: its Deployment, autoscaler,
/// RoleBinding and ServiceAccount (those that are there).
pub(super) async fn delete_pool(ctx: &Context, namespace: &str) -> Result<(), Error> {
    delete_pool_object::<HorizontalPodAutoscaler>(ctx, namespace).await?;
    delete_pool_object::<Deployment>(ctx, namespace).await?;
    delete_pool_secrets(ctx, namespace).await?;
    delete_pool_object::<k8s_openapi::api::rbac::v1::RoleBinding>(ctx, namespace).await?;
    delete_pool_object::<k8s_openapi::api::core::v1::ServiceAccount>(ctx, namespace).await
}

/// Deletes the Role (and its RoleBinding) that lets the pool of
/// `namespace` read Secrets, if they are there.
pub(super) async fn delete_pool_secrets(ctx: &Context, namespace: &str) -> Result<(), Error> {
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    delete_named::<RoleBinding>(ctx, namespace, POOL_SECRETS).await?;
    delete_named::<Role>(ctx, namespace, POOL_SECRETS).await
}

/// Deletes the pool's object of kind `K` in `namespace`, if it is there.
async fn delete_pool_object<K>(ctx: &Context, namespace: &str) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    delete_named::<K>(ctx, namespace, POOL_NAME).await
}

/// Deletes `name` of kind `K` in `namespace`, if it is there.
async fn delete_named<K>(ctx: &Context, namespace: &str, name: &str) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(source) => Err(Error::Delete {
            kind: kind_name::<K>(),
            name: name.to_owned(),
            source,
        }),
    }
}

/// The operator's pool settings with the namespace's `wasmless-pool`
/// ConfigMap laid over them. A ConfigMap with a mistake is reported with
/// a Warning Event on it, and the defaults apply meanwhile.
async fn pool_settings(ctx: &Context, namespace: &str) -> Result<PoolSettings, Error> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
    let config = api
        .get_opt(POOL_CONFIG)
        .await
        .map_err(|source| Error::Get {
            kind: "ConfigMap",
            name: POOL_CONFIG.to_owned(),
            source,
        })?;
    let Some(config) = config else {
        return Ok(ctx.pool.clone());
    };
    match ctx
        .pool
        .with_overrides(&config.data.clone().unwrap_or_default())
    {
        Ok(settings) => Ok(settings),
        Err(message) => {
            let note = format!("the pool's settings are not used: {message}");
            tracing::warn!(namespace, "ConfigMap {POOL_CONFIG}: {note}");
            publish(
                ctx,
                &config,
                EventType::Warning,
                "InvalidPoolSettings",
                note,
            )
            .await;
            Ok(ctx.pool.clone())
        }
    }
}

/// Marks a cached Function whose inline source was left out of the cache.
pub const SOURCE_NOT_CACHED: &str = "wasmless.io/source-not-cached";

/// Drops a Function's inline source from the operator's cache (a source
/// can be about 1 MiB; the cache holds every Function), with the copies of
/// it that `kubectl apply` keeps (its last-applied annotation) and the
/// managed fields, marking it so that [`with_source`] reads the whole
/// object when it is reconciled.
///
/// What decisions about other Functions need stays: a zipped source is
/// replaced by a zip of its dependency file alone (the one `catalog` names
/// for its runtime), so that the pool's installers and a Function's
/// placement can be judged from the cache.
pub fn without_source(
    object: &mut DeserializeGuard<FunctionResource>,
    catalog: &crate::runtimes::Catalog,
) {
    let Ok(function) = object.0.as_mut() else {
        return;
    };
    function.metadata.managed_fields = None;
    let kept = dependency_file_only(function, catalog);
    let annotations = function.metadata.annotations.get_or_insert_default();
    let applied = annotations
        .remove("kubectl.kubernetes.io/last-applied-configuration")
        .is_some();
    if function.spec.function.take().is_some() || applied {
        annotations.insert(SOURCE_NOT_CACHED.to_owned(), "true".to_owned());
    }
    function.spec.function = kept;
}

/// A zip (base64) of `function`'s dependency file alone, if its source is
/// a zip that has one.
fn dependency_file_only(
    function: &FunctionResource,
    catalog: &crate::runtimes::Catalog,
) -> Option<String> {
    use base64::Engine as _;
    use std::io::Write as _;
    let install = catalog.find(&function.spec.runtime)?.install.as_ref()?;
    let text = super::resources::zipped_file(&function.spec, &install.file)?;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file(install.file.as_str(), options).ok()?;
    zip.write_all(text.as_bytes()).ok()?;
    let bytes = zip.finish().ok()?.into_inner();
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The whole Function for a cached one whose source was left out: read
/// from the API server (`None` when it is gone).
async fn with_source(
    ctx: &Context,
    function: Arc<FunctionResource>,
    namespace: &str,
    name: &str,
) -> Result<Option<Arc<FunctionResource>>, Error> {
    if !function.annotations().contains_key(SOURCE_NOT_CACHED) {
        return Ok(Some(function));
    }
    let api: Api<FunctionResource> = Api::namespaced(ctx.client.clone(), namespace);
    let whole = api.get_opt(name).await.map_err(|source| Error::Get {
        kind: "Function",
        name: name.to_owned(),
        source,
    })?;
    Ok(whole.map(Arc::new))
}

/// Under autoscaling the HorizontalPodAutoscaler sets the replica count;
/// the apply carries the count the Deployment has (within the autoscaler's
/// bounds), so that the operator keeps a share of the field. Left out, a
/// server-side apply that owned `spec.replicas` alone would drop it, and the
/// Deployment would fall to 1 replica the moment autoscaling is turned on.
async fn keep_autoscaled_replicas(
    ctx: &Context,
    namespace: &str,
    scaling: &crate::crd::Autoscaling,
    desired: &mut Deployment,
) -> Result<(), Error> {
    let name = desired.name_any();
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), namespace);
    let live = api.get_opt(&name).await.map_err(|source| Error::Get {
        kind: "Deployment",
        name: name.clone(),
        source,
    })?;
    let min = scaling.min_replicas.unwrap_or(1).max(1);
    let max = scaling.max_replicas.max(min);
    let replicas = live
        .and_then(|d| d.spec)
        .and_then(|s| s.replicas)
        .unwrap_or(min)
        .clamp(min, max);
    if let Some(spec) = desired.spec.as_mut() {
        spec.replicas = Some(replicas);
    }
    Ok(())
}

/// Applies an HTTPTrigger's Ingress or HTTPRoute.
pub async fn reconcile_http_trigger(
    trigger: Arc<HttpTriggerResource>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let (namespace, name) = identity(trigger.as_ref())?;
    if let Err(invalid) = trigger.spec.validate() {
        let refusal = Refusal {
            reason: "InvalidSpec",
            message: invalid.to_string(),
        };
        return refuse_trigger(&ctx, trigger.as_ref(), &trigger.status, refusal).await;
    }
    let exposed = match desired_route(&trigger) {
        Route::Ingress(ingress) => {
            let applied = apply(&ctx, &namespace, ingress.as_ref()).await?;
            let routes = Api::<DynamicObject>::namespaced_with(
                ctx.client.clone(),
                &namespace,
                &http_route_resource(),
            );
            // Without the Gateway API installed there is nothing to clean.
            if let Ok(Some(route)) = routes.get_opt(&name).await
                && owned_by(&route, trigger.as_ref())
            {
                routes
                    .delete(&name, &DeleteParams::default())
                    .await
                    .map_err(|source| Error::Delete {
                        kind: "HTTPRoute",
                        name: name.clone(),
                        source,
                    })?;
            }
            ingress_exposure(&applied)
        }
        Route::HttpRoute(route) => {
            let routes = Api::<DynamicObject>::namespaced_with(
                ctx.client.clone(),
                &namespace,
                &http_route_resource(),
            );
            let applied = routes
                .patch(&name, &apply_params(), &Patch::Apply(route.as_ref()))
                .await;
            if let Err(kube::Error::Api(status)) = &applied
                && status.code == 404
            {
                let refusal = Refusal {
                    reason: "GatewayAPIMissing",
                    message:
                        "spec.gateway needs the Gateway API (HTTPRoute) installed in the cluster"
                            .into(),
                };
                return refuse_trigger(&ctx, trigger.as_ref(), &trigger.status, refusal).await;
            }
            let applied = applied.map_err(|source| Error::Apply {
                kind: "HTTPRoute",
                name: name.clone(),
                source,
            })?;
            delete_owned::<Ingress>(&ctx, &namespace, &name, trigger.as_ref()).await?;
            route_exposure(&applied)
        }
    };
    // Read through the guard: the trigger only needs to know that its
    // Function exists, even one the operator cannot decode.
    let functions: Api<DeserializeGuard<FunctionResource>> =
        Api::namespaced(ctx.client.clone(), &namespace);
    let exists = functions
        .get_opt(&trigger.spec.function)
        .await
        .map_err(|source| Error::List {
            kind: "functions",
            source,
        })?
        .is_some();
    let waiting = exposed.is_err();
    let readiness = match exposed {
        _ if !exists => (
            false,
            "FunctionNotFound",
            format!("no function named {} in {namespace}", trigger.spec.function),
        ),
        Err((reason, message)) => (false, reason, message),
        Ok(()) => (
            true,
            "Exposed",
            format!(
                "routes {} to function {}",
                route_url(&trigger),
                trigger.spec.function
            ),
        ),
    };
    let url = Some(route_url(&trigger));
    let action = finish_trigger(&ctx, trigger.as_ref(), &trigger.status, readiness, url).await?;
    // An HTTPRoute's status is not watched: look again soon while a
    // Gateway has not answered (an Ingress's status change is watched).
    Ok(if waiting {
        Action::requeue(ROUTE_RECHECK)
    } else {
        action
    })
}

/// How often an HTTPTrigger waiting for its Ingress's address or its
/// HTTPRoute's acceptance is looked at again.
const ROUTE_RECHECK: Duration = Duration::from_secs(10);

/// Whether an ingress controller has taken the Ingress: it writes the
/// address it serves it on.
fn ingress_exposure(ingress: &Ingress) -> Result<(), (&'static str, String)> {
    let addresses = ingress
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(Vec::len)
        .unwrap_or(0);
    if addresses > 0 {
        return Ok(());
    }
    let class = ingress
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.clone())
        .map(|c| format!("class `{c}`"))
        .unwrap_or_else(|| "the default class".to_owned());
    Err((
        "WaitingForAddress",
        format!(
            "the Ingress has no address yet: is an ingress controller serving {class} running?"
        ),
    ))
}

/// Whether a Gateway has accepted the HTTPRoute (its `Accepted` condition
/// in `status.parents`), with the Gateway's reason when it refused.
fn route_exposure(route: &DynamicObject) -> Result<(), (&'static str, String)> {
    let parents = route.data["status"]["parents"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut refusals = Vec::new();
    for parent in &parents {
        let gateway = parent["parentRef"]["name"].as_str().unwrap_or("?");
        let accepted = parent["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Accepted");
        match accepted {
            Some(c) if c["status"] == "True" => return Ok(()),
            Some(c) => refusals.push(format!(
                "Gateway {gateway}: {}: {}",
                c["reason"].as_str().unwrap_or_default(),
                c["message"].as_str().unwrap_or_default()
            )),
            None => {}
        }
    }
    if refusals.is_empty() {
        Err((
            "WaitingForGateway",
            "no Gateway has accepted the HTTPRoute yet: is a Gateway API controller serving spec.gateway running?".to_owned(),
        ))
    } else {
        Err(("RouteNotAccepted", refusals.join("; ")))
    }
}

/// Reports whether a KafkaTrigger is valid and which functions it reaches.
/// The consuming is done where each of those functions runs: by its own
/// pods (the trigger rides in their ConfigMaps), or by the namespace's
/// pool (which watches the KafkaTriggers).
pub async fn reconcile_kafka_trigger(
    trigger: Arc<KafkaTriggerResource>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let (namespace, _) = identity(trigger.as_ref())?;
    let plain = trigger.to_trigger();
    if let Err(invalid) = plain.validate() {
        let refusal = Refusal {
            reason: "InvalidSpec",
            message: invalid.to_string(),
        };
        return refuse_trigger(&ctx, trigger.as_ref(), &trigger.status, refusal).await;
    }
    let functions: Api<DeserializeGuard<FunctionResource>> =
        Api::namespaced(ctx.client.clone(), &namespace);
    let target = plain.spec.target();
    let listed = functions
        .list(&Default::default())
        .await
        .map_err(|source| Error::List {
            kind: "functions",
            source,
        })?;
    let catalog = ctx.catalog();
    let reached: Vec<String> = valid(listed)
        .filter(|f| target.matches(&f.name_any(), f.labels()))
        .map(|f| {
            let hosted = match hosting_now(&f, &catalog) {
                Some(Hosting::Pool) => "the pool",
                _ => "its pods",
            };
            format!("{} ({hosted})", f.name_any())
        })
        .collect();
    let (ready, reason, message) = if reached.is_empty() {
        (false, "NoFunction", format!("no {target} in {namespace}"))
    } else {
        (
            true,
            "Delivering",
            format!(
                "{} consumed for {}",
                plain.spec.topics().join(", "),
                reached.join(", ")
            ),
        )
    };
    let readiness = (ready, reason, message);
    finish_trigger(&ctx, trigger.as_ref(), &trigger.status, readiness, None).await
}

/// Reports whether a CronTrigger is valid; the leader's scheduler fires it.
pub async fn reconcile_cron_trigger(
    trigger: Arc<CronTriggerResource>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    identity(trigger.as_ref())?;
    if let Err(invalid) = trigger.to_trigger().validate() {
        let refusal = Refusal {
            reason: "InvalidSpec",
            message: invalid.to_string(),
        };
        return refuse_trigger(&ctx, trigger.as_ref(), &trigger.status, refusal).await;
    }
    let message = format!(
        "calls {} on `{}`",
        trigger.spec.function, trigger.spec.schedule
    );
    let readiness = (true, "Scheduled", message);
    finish_trigger(&ctx, trigger.as_ref(), &trigger.status, readiness, None).await
}

/// The retry policy of every reconciler: log, count, and retry with a
/// delay that doubles per consecutive failure of the object.
pub fn error_policy<K: Resource<DynamicType = ()> + Send + Sync + 'static>(
    object: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    if error.namespace_terminating() {
        tracing::debug!(object = %key(object.as_ref()), "its namespace is being deleted: {error}");
        return Action::await_change();
    }
    let delay = ctx.next_retry(&key(object.as_ref()));
    tracing::warn!(object = %key(object.as_ref()), retry_in = ?delay, "reconcile failed: {error}");
    ctx.count(kind_name::<K>(), "error");
    // The user sees the failure on the resource too (`kubectl describe`).
    let note = format!("{error}; retrying in {}s", delay.as_secs());
    let events = ctx.clone();
    tokio::spawn(async move {
        publish(
            &events,
            object.as_ref(),
            EventType::Warning,
            "ReconcileFailed",
            note,
        )
        .await;
    });
    Action::requeue(delay)
}

/// The kind of `K`, for metric labels and error messages (both need a
/// `'static` name).
pub(super) fn kind_name<K: Resource<DynamicType = ()>>() -> &'static str {
    match K::kind(&()).as_ref() {
        "Function" => "Function",
        "HTTPTrigger" => "HTTPTrigger",
        "CronTrigger" => "CronTrigger",
        "KafkaTrigger" => "KafkaTrigger",
        "ConfigMap" => "ConfigMap",
        "Deployment" => "Deployment",
        "Service" => "Service",
        "HorizontalPodAutoscaler" => "HorizontalPodAutoscaler",
        "Ingress" => "Ingress",
        "ServiceAccount" => "ServiceAccount",
        "RoleBinding" => "RoleBinding",
        _ => "object",
    }
}

/// `Kind/namespace/name`, the key of an object's retry state.
pub(super) fn key<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!(
        "{}/{}/{}",
        K::kind(&()),
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

fn identity<K: Resource>(object: &K) -> Result<(String, String), Error> {
    let namespace = object
        .meta()
        .namespace
        .clone()
        .ok_or(Error::MissingMetadata("namespace"))?;
    let name = object
        .meta()
        .name
        .clone()
        .ok_or(Error::MissingMetadata("name"))?;
    Ok((namespace, name))
}

/// The valid Kafka triggers of `namespace` that deliver to `function`.
async fn kafka_triggers_for(
    function: &FunctionResource,
    namespace: &str,
    ctx: &Context,
) -> Result<Vec<KafkaTrigger>, Error> {
    let api: Api<DeserializeGuard<KafkaTriggerResource>> =
        Api::namespaced(ctx.client.clone(), namespace);
    let list = api
        .list(&Default::default())
        .await
        .map_err(|source| Error::List {
            kind: "kafkatriggers",
            source,
        })?;
    let name = function.name_any();
    Ok(valid(list)
        .map(|t| t.to_trigger())
        .filter(|t| t.validate().is_ok() && t.spec.target().matches(&name, function.labels()))
        .collect())
}

fn apply_params() -> PatchParams {
    PatchParams::apply(FIELD_MANAGER).force()
}

/// Server-side applies `object` and returns it as the API server has it.
async fn apply<K>(ctx: &Context, namespace: &str, object: &K) -> Result<K, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let name = object.name_any();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    api.patch(&name, &apply_params(), &Patch::Apply(object))
        .await
        .map_err(|source| Error::Apply {
            kind: kind_name::<K>(),
            name,
            source,
        })
}

fn owned_by<O: Resource, K: Resource>(object: &O, owner: &K) -> bool {
    let uid = owner.meta().uid.as_deref();
    object
        .meta()
        .owner_references
        .iter()
        .flatten()
        .any(|r| Some(r.uid.as_str()) == uid)
}

/// Deletes `name` of kind `K` if `owner` owns it (one it made earlier and
/// no longer wants); leaves anything else alone.
async fn delete_owned<K>(
    ctx: &Context,
    namespace: &str,
    name: &str,
    owner: &impl Resource,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    let failed = |source| Error::Delete {
        kind: kind_name::<K>(),
        name: name.to_owned(),
        source,
    };
    match api.get_opt(name).await.map_err(failed)? {
        Some(object) if owned_by(&object, owner) => {
            api.delete(name, &DeleteParams::default())
                .await
                .map_err(failed)?;
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Merge-patches the status subresource when it changed.
async fn write_status<K, S>(
    ctx: &Context,
    object: &K,
    current: Option<&S>,
    status: S,
) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
    S: Serialize + PartialEq,
{
    if current == Some(&status) {
        return Ok(());
    }
    let name = object.name_any();
    let api: Api<K> = Api::namespaced(
        ctx.client.clone(),
        object.meta().namespace.as_deref().unwrap_or_default(),
    );
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status_patch(current, &status) })),
    )
    .await
    .map_err(|source| Error::PatchStatus {
        kind: kind_name::<K>(),
        name,
        source,
    })?;
    Ok(())
}

/// The Ready=False condition of a refused spec.
fn refused(object: &impl Resource, previous: &[Condition], refusal: &Refusal) -> Condition {
    ready_condition(
        false,
        refusal.reason,
        refusal.message.clone(),
        object.meta().generation,
        previous,
        Timestamp::now(),
    )
}

/// Publishes a Warning Event for a refused spec.
async fn warn<K: Resource<DynamicType = ()>>(ctx: &Context, object: &K, refusal: &Refusal) {
    publish(
        ctx,
        object,
        EventType::Warning,
        refusal.reason,
        refusal.message.clone(),
    )
    .await;
}

/// Publishes an Event; a failure is logged, never fatal.
pub(super) async fn publish<K: Resource<DynamicType = ()>>(
    ctx: &Context,
    object: &K,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(event_note(note)),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(err) = ctx.recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(object = %key(object), "could not publish an Event: {err}");
    }
}

/// The merge patch that turns `current` into `status`: a field that is gone
/// from `status` is set to null, which a merge patch removes (a field left
/// out would keep its stale value).
fn status_patch<S: Serialize>(current: Option<&S>, status: &S) -> serde_json::Value {
    let mut patch = serde_json::to_value(status).unwrap_or_default();
    let old = current.and_then(|c| serde_json::to_value(c).ok());
    if let (Some(serde_json::Value::Object(old)), serde_json::Value::Object(new)) =
        (old, &mut patch)
    {
        for (key, value) in &old {
            match new.get(key) {
                None => {
                    new.insert(key.clone(), serde_json::Value::Null);
                }
                // Unchanged: left out, so that a field another writer
                // keeps (the cron scheduler's lastScheduleTime) is not
                // set back to the value this reconcile saw.
                Some(same) if same == value => {
                    new.remove(key);
                }
                Some(_) => {}
            }
        }
    }
    patch
}

/// The longest note events.k8s.io accepts, in bytes.
const MAX_NOTE: usize = 1024;

/// `note`, cut to what an Event can hold (at a character boundary, marked
/// with an ellipsis), so that a long API error still reaches the user.
fn event_note(mut note: String) -> String {
    if note.len() <= MAX_NOTE {
        return note;
    }
    const MORE: &str = " …";
    let mut end = MAX_NOTE - MORE.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    note.truncate(end);
    note.push_str(MORE);
    note
}

fn trigger_conditions(status: &Option<TriggerStatus>) -> Vec<Condition> {
    status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default()
}

async fn refuse_trigger<K>(
    ctx: &Context,
    trigger: &K,
    current: &Option<TriggerStatus>,
    refusal: Refusal,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let status = TriggerStatus {
        observed_generation: trigger.meta().generation,
        conditions: vec![refused(trigger, &trigger_conditions(current), &refusal)],
        url: None,
        last_schedule_time: last_schedule_time(current),
    };
    write_status(ctx, trigger, current.as_ref(), status).await?;
    warn(ctx, trigger, &refusal).await;
    ctx.count(kind_name::<K>(), "refused");
    Ok(Action::await_change())
}

async fn finish_trigger<K>(
    ctx: &Context,
    trigger: &K,
    current: &Option<TriggerStatus>,
    (ready, reason, message): (bool, &str, String),
    url: Option<String>,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let generation = trigger.meta().generation;
    let status = TriggerStatus {
        observed_generation: generation,
        conditions: vec![ready_condition(
            ready,
            reason,
            message,
            generation,
            &trigger_conditions(current),
            Timestamp::now(),
        )],
        url,
        last_schedule_time: last_schedule_time(current),
    };
    write_status(ctx, trigger, current.as_ref(), status).await?;
    ctx.count(kind_name::<K>(), "ok");
    ctx.succeeded(&key(trigger));
    Ok(Action::requeue(RESYNC))
}

/// The cron scheduler's own field, kept by the reconcilers' patches.
fn last_schedule_time(
    current: &Option<TriggerStatus>,
) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time> {
    current.as_ref().and_then(|s| s.last_schedule_time.clone())
}

fn is_ready(conditions: &[Condition]) -> bool {
    conditions
        .iter()
        .any(|c| c.type_ == READY && c.status == "True")
}

impl FunctionResource {
    /// The current conditions, empty before the first status.
    fn status_conditions(&self) -> Vec<Condition> {
        self.status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_patch_clears_the_fields_that_are_gone() {
        let before = FunctionStatus {
            observed_generation: Some(1),
            url: Some("http://old".into()),
            placement: Some(crate::crd::PlacementStatus {
                path: "wasm".into(),
                runtime: "wasm".into(),
                image: None,
                reason: "Wasm".into(),
                message: String::new(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let after = FunctionStatus {
            observed_generation: Some(2),
            ..Default::default()
        };
        let patch = status_patch(Some(&before), &after);
        assert_eq!(patch["observedGeneration"], 2);
        assert!(
            patch["url"].is_null() && patch.get("url").is_some(),
            "{patch}"
        );
        assert!(
            patch.get("placement").is_some_and(|p| p.is_null()),
            "{patch}"
        );
        assert_eq!(status_patch(None, &after), json!({"observedGeneration": 2}));
        let mut same_url = after.clone();
        same_url.url = Some("http://old".into());
        let mut before = before;
        before.placement = None;
        assert_eq!(
            status_patch(Some(&before), &same_url),
            json!({"observedGeneration": 2}),
            "unchanged fields are left out"
        );
    }

    #[test]
    fn an_http_trigger_is_exposed_once_its_ingress_has_an_address_or_its_route_is_accepted() {
        let mut ingress: Ingress = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"ingressClassName": "nginx"},
        }))
        .expect("an Ingress");
        let (reason, message) = ingress_exposure(&ingress).expect_err("no address yet");
        assert_eq!(reason, "WaitingForAddress");
        assert!(message.contains("class `nginx`"), "{message}");
        ingress.status = serde_json::from_value(
            json!({"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}),
        )
        .expect("a status");
        assert_eq!(ingress_exposure(&ingress), Ok(()));

        let route = |status: serde_json::Value| -> DynamicObject {
            serde_json::from_value(json!({
                "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                "metadata": {"name": "web"}, "status": status,
            }))
            .expect("an HTTPRoute")
        };
        assert_eq!(
            route_exposure(&route(json!({}))).expect_err("waiting").0,
            "WaitingForGateway"
        );
        let refused = route_exposure(&route(json!({"parents": [{
            "parentRef": {"name": "public"},
            "conditions": [{"type": "Accepted", "status": "False", "reason": "NotAllowedByListeners", "message": "no listener allows this namespace"}],
        }]})))
        .expect_err("refused");
        assert_eq!(refused.0, "RouteNotAccepted");
        assert!(
            refused.1.contains("Gateway public: NotAllowedByListeners"),
            "{}",
            refused.1
        );
        assert_eq!(
            route_exposure(&route(json!({"parents": [{
                "parentRef": {"name": "public"},
                "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted"}],
            }]}))),
            Ok(())
        );
    }

    #[test]
    fn a_long_event_note_is_cut_to_what_an_event_holds() {
        assert_eq!(event_note("short".into()), "short");
        let long = "é".repeat(2000);
        let cut = event_note(long.clone());
        assert!(cut.len() <= MAX_NOTE, "{}", cut.len());
        assert!(cut.ends_with(" …"));
        assert!(long.starts_with(cut.trim_end_matches(" …")));
    }
}
