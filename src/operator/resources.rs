//! What a Function becomes in a cluster: pure `desired_*` builders for its
//! ConfigMap, Deployment, Service and HorizontalPodAutoscaler. No I/O; the
//! reconciler applies what these return.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    ConfigMap, EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod,
    Service,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::merge::merge;
use super::pool::HostingDecision;
use crate::crd::{
    ContentType, Function, FunctionResource, Hosting, ImageSecurity, KafkaTrigger, WASM_RUNTIME,
};
use crate::runtimes::{Catalog, Dependencies, Path as RunPath, Placement};

/// Where a container-image function's files are, in its pod.
pub const CODE_DIR: &str = "/kubeless";

/// The port every function's Service listens on, and the default port of
/// its pods.
pub const FUNCTION_PORT: i32 = 8080;
/// The name of that Service port (kubeless's).
pub const PORT_NAME: &str = "http-function-port";
/// Where the function's ConfigMap is mounted in its pods.
pub const FUNCTION_DIR: &str = "/function";
/// The most a ConfigMap may hold.
pub const CONFIG_MAP_LIMIT: usize = 1 << 20;
/// The pod template annotation that changes when the function does, so
/// that its pods roll over.
pub const CHECKSUM_ANNOTATION: &str = "wasmless.io/checksum";
/// The label every object made for a function carries, with its name.
pub const FUNCTION_LABEL: &str = "function";
/// The label marking objects made by the operator.
pub const CREATED_BY_LABEL: &str = "created-by";

/// How the operator builds pods: the settings that are not in a Function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodSettings {
    /// The image with the `wasmless` binary, run as `wasmless host`.
    pub image: String,
    /// `Always`, `IfNotPresent` or `Never`; the cluster's default if unset.
    pub image_pull_policy: Option<String>,
    /// The cluster's DNS domain, for the URL in a Function's status.
    pub cluster_domain: String,
}

/// Every object that makes up one function in a cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct FunctionObjects {
    /// The function's source or module and its manifest, mounted by the pods.
    pub config_map: ConfigMap,
    /// The pods running `wasmless host`.
    pub deployment: Deployment,
    /// The function's in-cluster address.
    pub service: Service,
    /// Present when the Function asks for autoscaling.
    pub autoscaler: Option<HorizontalPodAutoscaler>,
    /// Which path it runs on, and why.
    pub placement: Placement,
    /// Pool or dedicated, and why. With `Pool` the ConfigMap and the
    /// Deployment above are not made (the namespace's pool serves the
    /// function) and the Service selects the pool's pods.
    pub hosting: HostingDecision,
}

/// Why a Function cannot be turned into objects: a permanent problem that
/// only the user can fix. `reason` is the CamelCase reason of the Ready
/// condition and the Event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// `InvalidSpec`, `SourceTooLarge`, ...
    pub reason: &'static str,
    /// What is wrong and what to do, for the user.
    pub message: String,
}

impl Refusal {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self {
            reason: "InvalidSpec",
            message: message.into(),
        }
    }
}

/// The labels of every object made for `name`, and the pod selector.
pub fn selector_labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (FUNCTION_LABEL.to_owned(), name.to_owned()),
        (CREATED_BY_LABEL.to_owned(), "wasmless".to_owned()),
    ])
}

/// The label selector of a function's pods, as text (for the scale
/// subresource).
pub fn selector_text(name: &str) -> String {
    selector_labels(name)
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The function's URL inside the cluster.
pub fn function_url(function: &FunctionResource, settings: &PodSettings) -> String {
    let name = function.metadata.name.as_deref().unwrap_or_default();
    let namespace = function.metadata.namespace.as_deref().unwrap_or("default");
    format!(
        "http://{name}.{namespace}.svc.{}:{FUNCTION_PORT}/",
        settings.cluster_domain
    )
}

/// Builds every object of a function. `kafka` holds the Kafka triggers
/// that deliver to it: its pods consume their topics. `catalog` decides
/// whether it runs in wasm or on its runtime's image.
pub fn desired_objects(
    function: &FunctionResource,
    kafka: &[KafkaTrigger],
    settings: &PodSettings,
    catalog: &Catalog,
) -> Result<FunctionObjects, Refusal> {
    let plain = function.to_function();
    plain
        .validate()
        .map_err(|e| Refusal::invalid(e.to_string()))?;
    let placement = place(&plain, catalog)?;
    if placement.language.is_some() {
        // A source runtime imports `file` and calls `function`: a name it
        // cannot import fails every event, so it is refused here.
        let handler = plain.spec.handler.as_deref().ok_or_else(|| {
            Refusal::invalid(format!(
                "spec.handler: required for {}: file.function, such as hello.handler",
                plain.spec.runtime
            ))
        })?;
        crate::runtimes::split_handler(handler)
            .map_err(|m| Refusal::invalid(format!("spec.handler: {m}")))?;
    }
    if plain.spec.file.is_some() {
        return Err(Refusal::invalid(
            "spec.file is read by `wasmless up` only; in a cluster give the source in spec.function \
             (`wasmless function deploy --from-file` does this)",
        ));
    }
    let hosting = super::pool::decide(&plain, &placement)?;
    let config_map = desired_config_map(function, &plain, kafka)?;
    let checksum = checksum(&config_map);
    let deployment = match placement.path {
        RunPath::Wasm => with_installed_dependencies(
            desired_deployment(function, settings, &checksum)?,
            &plain,
            settings,
            catalog,
        )?,
        RunPath::Image => {
            desired_image_deployment(function, &plain, settings, &checksum, &placement)?
        }
    };
    Ok(FunctionObjects {
        deployment,
        service: desired_service(function, hosting.hosting)?,
        autoscaler: desired_autoscaler(function)?,
        config_map,
        placement,
        hosting,
    })
}

/// Where a Function will run, as [`desired_objects`] decides it (leaving
/// Kafka triggers aside); `None` if it cannot run.
pub fn hosting_of(function: &FunctionResource, catalog: &Catalog) -> Option<Hosting> {
    let plain = function.to_function();
    plain.validate().ok()?;
    let placement = place(&plain, catalog).ok()?;
    super::pool::decide(&plain, &placement)
        .ok()
        .map(|d| d.hosting)
}

/// The Service of a Function the operator's cache decides is a pool
/// Function, from the cached object itself, whose source is left out
/// ([`super::reconcile::SOURCE_NOT_CACHED`]). What the decision reads is
/// all kept there (the runtime, the handler, the pod fields, a zip's
/// dependency file); the source only has to be there, so an empty one
/// stands in for it. `None` when the cache decides otherwise or refuses
/// the Function; the whole Function can still be refused for its source
/// (base64 that does not decode).
pub fn cached_pool_service(
    function: &FunctionResource,
    settings: &PodSettings,
    catalog: &Catalog,
) -> Option<Service> {
    let mut stand_in = function.clone();
    stand_in.spec.function.get_or_insert_default();
    let objects = desired_objects(&stand_in, &[], settings, catalog).ok()?;
    (objects.hosting.hosting == Hosting::Pool).then_some(objects.service)
}

/// Where a Function runs now: the operator's decision for its current spec
/// (`status.placement.hosting`), or, until the operator has written it,
/// the same decision made from the spec ([`hosting_of`]).
pub fn hosting_now(function: &FunctionResource, catalog: &Catalog) -> Option<Hosting> {
    let status = function.status.as_ref();
    let current = status.and_then(|s| s.observed_generation) == function.metadata.generation;
    match status.and_then(|s| s.placement.as_ref()) {
        Some(placement) if current && !placement.hosting.is_empty() => {
            if placement.hosting == Hosting::Pool.as_str() {
                Some(Hosting::Pool)
            } else {
                Some(Hosting::Dedicated)
            }
        }
        _ => hosting_of(function, catalog),
    }
}

/// The catalog's decision for a Function: the dependencies it is judged by
/// are the names in its zip's dependency file (`requirements.txt`,
/// `package.json`), checked against the runtime's `nativePackages`.
fn place(function: &Function, catalog: &Catalog) -> Result<Placement, Refusal> {
    let spec = &function.spec;
    let dependencies = catalog
        .find(&spec.runtime)
        .and_then(|entry| {
            let file = &entry.install.as_ref()?.file;
            let text = zipped_file(&function.spec, file)?;
            Some(crate::runtimes::placement::listed_native(entry, &text))
        })
        .unwrap_or(Dependencies::Pure);
    crate::runtimes::place(catalog, &spec.runtime, spec.image.as_deref(), &dependencies).map_err(
        |e| Refusal {
            reason: e.reason,
            message: e.message,
        },
    )
}

/// A file at the top of a base64+zip source, as text.
pub(super) fn zipped_file(spec: &crate::crd::FunctionSpec, name: &str) -> Option<String> {
    use std::io::Read as _;
    if spec.function_content_type != ContentType::Base64Zip {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(spec.function.as_deref()?.trim())
        .ok()?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).ok()?;
    let mut entry = archive.by_name(name).ok()?;
    let mut text = String::new();
    entry
        .by_ref()
        .take(1 << 20)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// The metadata of an object made for `function`: its name and namespace,
/// the function's labels plus ours, and the function as controlling owner.
fn object_meta(function: &FunctionResource) -> ObjectMeta {
    let name = function.metadata.name.clone().unwrap_or_default();
    let mut labels = function.metadata.labels.clone().unwrap_or_default();
    labels.extend(selector_labels(&name));
    ObjectMeta {
        name: Some(name),
        namespace: function.metadata.namespace.clone(),
        labels: Some(labels),
        owner_references: owner(function).map(|o| vec![o]),
        ..ObjectMeta::default()
    }
}

fn owner(function: &FunctionResource) -> Option<OwnerReference> {
    function.controller_owner_ref(&())
}

/// The ConfigMap the pods mount at /function: `function.yaml` (the Function
/// as `wasmless host` reads it, with the cluster-only fields left out), the
/// module or WAT beside it, and `triggers.yaml` with its Kafka triggers.
pub fn desired_config_map(
    function: &FunctionResource,
    plain: &Function,
    kafka: &[KafkaTrigger],
) -> Result<ConfigMap, Refusal> {
    let mut data = BTreeMap::new();
    let mut binary = BTreeMap::new();
    let spec = &plain.spec;
    let mut manifest_spec = json!({
        "runtime": spec.runtime,
        "timeout": spec.timeout,
        "memory": spec.memory,
        "env": spec.env,
        "secrets": spec.secrets,
        "handler": spec.handler,
        "checksum": spec.checksum,
    });
    let source = spec.function.clone().unwrap_or_default();
    match (spec.runtime.as_str(), spec.function_content_type) {
        (WASM_RUNTIME, ContentType::Base64) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(source.trim())
                .map_err(|e| Refusal::invalid(format!("spec.function: not valid base64: {e}")))?;
            binary.insert("function.wasm".to_owned(), ByteString(bytes));
            manifest_spec["file"] = json!("function.wasm");
        }
        (WASM_RUNTIME, ContentType::Text) => {
            data.insert("function.wat".to_owned(), source);
            manifest_spec["file"] = json!("function.wat");
        }
        (_, content_type) => {
            manifest_spec["function"] = json!(source);
            manifest_spec["functionContentType"] = json!(content_type);
        }
    }
    let object = manifest_spec.as_object_mut().expect("built as an object");
    object.retain(|_, v| !v.is_null() && *v != json!([]));
    let manifest = json!({
        "apiVersion": plain.api_version,
        "kind": "Function",
        "metadata": {"name": plain.name(), "labels": plain.metadata.labels},
        "spec": manifest_spec,
    });
    data.insert("function.yaml".to_owned(), to_yaml(&manifest));
    if !kafka.is_empty() {
        let docs: Vec<String> = kafka
            .iter()
            .map(|t| {
                to_yaml(&serde_json::to_value(pod_trigger(t, plain)).expect("a trigger serializes"))
            })
            .collect();
        data.insert("triggers.yaml".to_owned(), docs.join("---\n"));
    }
    let size: usize = data.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
        + binary
            .iter()
            .map(|(k, v)| k.len() + v.0.len())
            .sum::<usize>();
    if size > CONFIG_MAP_LIMIT {
        return Err(Refusal {
            reason: "SourceTooLarge",
            message: format!(
                "the function is {size} bytes, more than a ConfigMap holds ({CONFIG_MAP_LIMIT}); \
                 publish it at a URL and set spec.function to the URL, \
                 spec.functionContentType: url and spec.checksum"
            ),
        });
    }
    Ok(ConfigMap {
        metadata: object_meta(function),
        data: Some(data),
        binary_data: (!binary.is_empty()).then_some(binary),
        ..ConfigMap::default()
    })
}

/// A Kafka trigger as one function's pods run it. A trigger that selects
/// functions by label gets a consumer group per function, so that every
/// selected function sees every message (as under `wasmless up`); the pods
/// of one function share the group and split the partitions.
fn pod_trigger(trigger: &KafkaTrigger, function: &Function) -> KafkaTrigger {
    let mut trigger = trigger.clone();
    if trigger.spec.function.is_none() {
        trigger.spec.consumer_group = Some(trigger.group_for(function.name()));
    }
    trigger.metadata.namespace = None;
    trigger
}

/// `sha256:<hex>` of everything in the ConfigMap.
pub fn checksum(config_map: &ConfigMap) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in config_map.data.iter().flatten() {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    for (key, value) in config_map.binary_data.iter().flatten() {
        hasher.update(key.as_bytes());
        hasher.update([1]);
        hasher.update(&value.0);
        hasher.update([1]);
    }
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// The Deployment running `wasmless host` on the function's ConfigMap,
/// with the user's `spec.deployment` merged in.
pub fn desired_deployment(
    function: &FunctionResource,
    settings: &PodSettings,
    checksum: &str,
) -> Result<Deployment, Refusal> {
    let meta = object_meta(function);
    let name = meta.name.clone().unwrap_or_default();
    let spec = &function.spec;
    let port = spec.port.unwrap_or(FUNCTION_PORT);
    let labels = meta.labels.clone().unwrap_or_default();
    let mut volumes = vec![
        json!({"name": "function", "configMap": {"name": name}}),
        json!({"name": "tmp", "emptyDir": {}}),
    ];
    let mut mounts = vec![
        json!({"name": "function", "mountPath": FUNCTION_DIR, "readOnly": true}),
        json!({"name": "tmp", "mountPath": "/tmp"}),
    ];
    for secret in &spec.secrets {
        let volume = secret_volume_name(secret);
        volumes.push(json!({"name": volume, "secret": {"secretName": secret}}));
        mounts.push(json!({"name": volume, "mountPath": format!("/{secret}"), "readOnly": true}));
    }
    let probe = json!({"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10});
    let resources = match &spec.resources {
        Some(resources) => serde_json::to_value(resources).expect("resources serialize"),
        None => json!({"requests": {"cpu": "50m", "memory": "64Mi"}}),
    };
    let mut container = json!({
        "name": "function",
        "image": settings.image,
        "args": ["host"],
        "env": [
            {"name": "WASMLESS_FUNCTION", "value": name},
            {"name": "WASMLESS_FUNCTION_DIR", "value": FUNCTION_DIR},
            {"name": "WASMLESS_LISTEN", "value": format!("[::]:{port}")},
        ],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        // The host binds, then compiles its function before it answers:
        // under a small CPU request a first compile takes a while, and
        // the startup probe holds the liveness probe off until it is done.
        "startupProbe": startup_probe("http"),
        "readinessProbe": probe,
        "livenessProbe": probe,
        "resources": resources,
        "volumeMounts": mounts,
        "securityContext": restricted_container(),
    });
    if let Some(policy) = &settings.image_pull_policy {
        container["imagePullPolicy"] = json!(policy);
    }
    let mut deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "selector": {"matchLabels": selector_labels(&name)},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        (CHECKSUM_ANNOTATION): checksum,
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": port.to_string(),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "containers": [container],
                    "volumes": volumes,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                },
            },
        },
    });
    // With autoscaling the HorizontalPodAutoscaler owns the replica count.
    if spec.autoscaling.is_none() {
        deployment["spec"]["replicas"] = json!(spec.replicas.unwrap_or(1));
    }
    overlay(deployment, spec.deployment.as_ref(), "spec.deployment")
}

/// The Deployment of a function on the container-image fallback. The pod
/// is the wasm path's (same labels, Service port, probes, metrics, Kafka
/// consumers in `wasmless host`) with the host in front of a second
/// container, the runtime's image, to which it forwards every event. Two
/// init containers come first: `prepare` writes the function's files into
/// /kubeless, and `install` runs the runtime's dependency step when the
/// function has the dependency file.
pub fn desired_image_deployment(
    function: &FunctionResource,
    plain: &Function,
    settings: &PodSettings,
    checksum: &str,
    placement: &Placement,
) -> Result<Deployment, Refusal> {
    let spec = &plain.spec;
    let entry = placement
        .entry
        .as_ref()
        .ok_or_else(|| Refusal::invalid("no runtime for the image path"))?;
    let image = placement.image.clone().unwrap_or_default();
    let port = function.spec.port.unwrap_or(FUNCTION_PORT);
    if entry.port == port {
        return Err(Refusal {
            reason: "PortConflict",
            message: format!(
                "runtime {} serves on port {}, the port wasmless host listens on in front of it; set spec.port, or the runtime's port in the catalog, to another",
                entry.id, entry.port
            ),
        });
    }
    let mut deployment = serde_json::to_value(desired_deployment(function, settings, checksum)?)
        .expect("a Deployment serializes");
    let pod = &mut deployment["spec"]["template"]["spec"];
    let restricted = restricted_container();
    // The host in front: it forwards instead of loading the function.
    let host = &mut pod["containers"][0];
    host["env"]
        .as_array_mut()
        .expect("built as an array")
        .push(json!({"name": "WASMLESS_FORWARD_TO", "value": format!("127.0.0.1:{}", entry.port)}));
    host["resources"] = json!({"requests": {"cpu": "20m", "memory": "32Mi"}});
    let secret_mounts: Vec<Value> = host["volumeMounts"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter(|m| m["name"].as_str().is_some_and(|n| n.starts_with("secret-")))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    pod["volumes"]
        .as_array_mut()
        .expect("built as an array")
        .push(json!({"name": "code", "emptyDir": {}}));
    let name = plain.name();
    let handler = spec.handler.as_deref().unwrap_or_default();
    let (module, entry_point) = crate::runtimes::split_handler(handler).unwrap_or(("", ""));
    let timeout = spec
        .timeout()
        .map_err(|e| Refusal::invalid(e.to_string()))?;
    let memory = spec
        .memory_limit()
        .map_err(|e| Refusal::invalid(e.to_string()))?;
    let mut env = vec![
        json!({"name": "FUNC_DIR", "value": CODE_DIR}),
        json!({"name": "FUNC_NAME", "value": name}),
        json!({"name": "MOD_NAME", "value": module}),
        json!({"name": "FUNC_HANDLER", "value": entry_point}),
        json!({"name": "FUNC_RUNTIME", "value": spec.runtime}),
        json!({"name": "FUNC_TIMEOUT", "value": timeout.as_secs().to_string()}),
        json!({"name": "FUNC_MEMORY_LIMIT", "value": memory.to_string()}),
        json!({"name": "FUNC_PORT", "value": entry.port.to_string()}),
    ];
    env.extend(
        entry
            .env
            .iter()
            .map(|(k, v)| json!({"name": k, "value": v})),
    );
    env.extend(
        spec.env
            .iter()
            .map(|v| json!({"name": v.name, "value": v.value})),
    );
    let mut runtime_mounts = vec![
        json!({"name": "code", "mountPath": CODE_DIR, "readOnly": true}),
        json!({"name": "tmp", "mountPath": "/tmp"}),
    ];
    runtime_mounts.extend(secret_mounts);
    // The process cannot cap each event's memory as wasm does: the
    // container's limit is spec.memory instead.
    let resources = match (&spec.resources, &spec.memory) {
        (Some(resources), _) => serde_json::to_value(resources).expect("resources serialize"),
        (None, Some(memory)) => {
            json!({"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": memory}})
        }
        (None, None) => json!({"requests": {"cpu": "50m", "memory": "64Mi"}}),
    };
    let mut runtime = json!({
        "name": "runtime",
        "image": image,
        "env": env,
        "ports": [{"name": "runtime", "containerPort": entry.port, "protocol": "TCP"}],
        "startupProbe": startup_probe("runtime"),
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "runtime"}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "runtime"}, "periodSeconds": 10},
        "resources": resources,
        "volumeMounts": runtime_mounts,
        "securityContext": restricted,
    });
    if !entry.command.is_empty() {
        runtime["command"] = json!(entry.command);
    }
    // A user's image runs as its Dockerfile says unless asked otherwise;
    // the pod-level non-root check moves to the containers that stay
    // restricted.
    let as_image = match spec.image_security {
        Some(ImageSecurity::AsImage) => true,
        Some(ImageSecurity::Restricted) => false,
        None => spec.image.is_some(),
    };
    let image_context = if as_image {
        runtime["securityContext"] = json!({"allowPrivilegeEscalation": false});
        pod["securityContext"] = json!({"seccompProfile": {"type": "RuntimeDefault"}});
        pod["containers"][0]["securityContext"]["runAsNonRoot"] = json!(true);
        json!({"allowPrivilegeEscalation": false})
    } else {
        restricted.clone()
    };
    pod["containers"]
        .as_array_mut()
        .expect("built as an array")
        .push(runtime);
    let install = entry
        .install
        .as_ref()
        .map(|install| install.command.clone())
        .unwrap_or_default();
    let mut init = init_containers(
        plain,
        settings,
        entry,
        &image,
        &install,
        &image_context,
        &resources,
    );
    if as_image {
        // `prepare` runs the wasmless image: restricted as ever.
        let mut context = restricted.clone();
        context["runAsNonRoot"] = json!(true);
        init[0]["securityContext"] = context;
    }
    pod["initContainers"] = json!(init);
    serde_json::from_value(deployment)
        .map_err(|e| Refusal::invalid(format!("the image Deployment does not fit: {e}")))
}

/// The init containers that put a source function's files in /kubeless:
/// `prepare` writes them from the ConfigMap; `install` runs `command` in
/// `image` when the function has the runtime's dependency file.
fn init_containers(
    plain: &Function,
    settings: &PodSettings,
    entry: &crate::runtimes::RuntimeEntry,
    image: &str,
    command: &[String],
    restricted: &Value,
    resources: &Value,
) -> Vec<Value> {
    let spec = &plain.spec;
    let handler = spec.handler.as_deref().unwrap_or_default();
    let module = crate::runtimes::split_handler(handler)
        .map(|(module, _)| module)
        .unwrap_or("");
    // A single source gets the runtime's extension.
    let mut prepare_args = vec![
        "prepare".to_owned(),
        "--function-dir".to_owned(),
        FUNCTION_DIR.to_owned(),
        "--into".to_owned(),
        CODE_DIR.to_owned(),
    ];
    if spec.function_content_type != ContentType::Base64Zip && !module.is_empty() {
        prepare_args.push("--file".to_owned());
        prepare_args.push(match &entry.extension {
            Some(extension) => format!("{module}.{extension}"),
            None => module.to_owned(),
        });
    }
    let mut prepare = json!({
        "name": "prepare",
        "image": settings.image,
        "args": prepare_args,
        "volumeMounts": [
            {"name": "function", "mountPath": FUNCTION_DIR, "readOnly": true},
            {"name": "code", "mountPath": CODE_DIR},
        ],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
        "securityContext": restricted,
    });
    if let Some(policy) = &settings.image_pull_policy {
        prepare["imagePullPolicy"] = json!(policy);
    }
    let mut init = vec![prepare];
    if let Some(install) = &entry.install
        && !command.is_empty()
        && zipped_file(&plain.spec, &install.file).is_some()
    {
        // The function's env reaches the package manager too, so that
        // PIP_INDEX_URL, npm_config_registry or HTTPS_PROXY set on the
        // Function choose where packages come from.
        let mut env = vec![json!({"name": "HOME", "value": "/tmp"})];
        env.extend(
            spec.env
                .iter()
                .filter(|v| v.name != "HOME")
                .map(|v| json!({"name": v.name, "value": v.value})),
        );
        init.push(json!({
            "name": "install",
            "image": image,
            "command": command,
            "env": env,
            "volumeMounts": [
                {"name": "code", "mountPath": CODE_DIR},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
            "resources": resources,
            "securityContext": restricted,
        }));
    }
    init
}

/// A source function on the wasm path whose zip has the runtime's
/// dependency file: the pod's host reads its files from /kubeless, where
/// the init containers unpacked them and installed the packages with the
/// runtime's image (pure packages only, `install.wasmCommand`): the
/// wasmless image has no pip or npm.
/// Whether a wasm-path Function has a dependency file its pods install
/// (by an init container of the runtime's image) before it runs.
pub fn installs_dependencies(plain: &Function, catalog: &Catalog) -> bool {
    catalog.find(&plain.spec.runtime).is_some_and(|entry| {
        matches!((&entry.install, &entry.image), (Some(install), Some(_))
            if !install.wasm_command.is_empty() && zipped_file(&plain.spec, &install.file).is_some())
    })
}

fn with_installed_dependencies(
    deployment: Deployment,
    plain: &Function,
    settings: &PodSettings,
    catalog: &Catalog,
) -> Result<Deployment, Refusal> {
    if !installs_dependencies(plain, catalog) {
        return Ok(deployment);
    }
    let Some(entry) = catalog.find(&plain.spec.runtime) else {
        return Ok(deployment);
    };
    let (Some(install), Some(image)) = (&entry.install, &entry.image) else {
        return Ok(deployment);
    };
    let mut deployment = serde_json::to_value(deployment).expect("a Deployment serializes");
    let pod = &mut deployment["spec"]["template"]["spec"];
    let restricted = restricted_container();
    let resources = json!({"requests": {"cpu": "50m", "memory": "64Mi"}});
    pod["initContainers"] = json!(init_containers(
        plain,
        settings,
        entry,
        image,
        &install.wasm_command,
        &restricted,
        &resources,
    ));
    pod["volumes"]
        .as_array_mut()
        .expect("built as an array")
        .push(json!({"name": "code", "emptyDir": {}}));
    let host = &mut pod["containers"][0];
    host["volumeMounts"]
        .as_array_mut()
        .expect("built as an array")
        .push(json!({"name": "code", "mountPath": CODE_DIR, "readOnly": true}));
    host["env"]
        .as_array_mut()
        .expect("built as an array")
        .push(json!({"name": "WASMLESS_CODE_DIR", "value": CODE_DIR}));
    serde_json::from_value(deployment)
        .map_err(|e| Refusal::invalid(format!("the Deployment does not fit: {e}")))
}

/// The security context of every container the operator makes: no
/// privilege escalation, a read-only root file system, no capabilities.
fn restricted_container() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"]},
    })
}

/// A volume name for a Secret: a DNS label, unique per Secret name.
fn secret_volume_name(secret: &str) -> String {
    let label: String = secret.replace('.', "-").chars().take(40).collect();
    let digest = hex::encode(&Sha256::digest(secret.as_bytes())[..4]);
    format!("secret-{}-{digest}", label.trim_end_matches('-'))
}

/// The Service in front of the function's pods, with `spec.service`
/// merged in. A dedicated function's Service selects its pods; a pool
/// function's Service selects none: the operator writes its Endpoints
/// ([`desired_endpoints`]) together with it, so that its first request
/// does not wait for the endpoints controller to notice the Service.
pub fn desired_service(function: &FunctionResource, hosting: Hosting) -> Result<Service, Refusal> {
    let meta = object_meta(function);
    let name = meta.name.clone().unwrap_or_default();
    let mut service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "ports": [{
                "name": PORT_NAME,
                "port": FUNCTION_PORT,
                "targetPort": function.spec.port.unwrap_or(FUNCTION_PORT),
                "protocol": "TCP",
            }],
        },
    });
    if hosting == Hosting::Dedicated {
        service["spec"]["selector"] = json!(selector_labels(&name));
    }
    overlay(service, function.spec.service.as_ref(), "spec.service")
}

/// The Endpoints of a pool function's Service: the namespace's pool pods
/// that have an address, the ready ones as `addresses` (the API server's
/// service proxy and, through the EndpointSlices the control plane mirrors
/// from them, kube-proxy route to these) and the others as
/// `notReadyAddresses`; no subset while no pod has an address.
pub fn desired_endpoints(
    function: &FunctionResource,
    pool_pods: &[std::sync::Arc<Pod>],
) -> Endpoints {
    let mut ready = Vec::new();
    let mut waiting = Vec::new();
    for pod in pool_pods {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
            continue;
        };
        let address = EndpointAddress {
            ip,
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                namespace: pod.metadata.namespace.clone(),
                uid: pod.metadata.uid.clone(),
                ..ObjectReference::default()
            }),
            ..EndpointAddress::default()
        };
        if pod_ready(pod) {
            ready.push(address);
        } else {
            waiting.push(address);
        }
    }
    ready.sort_by(|a, b| a.ip.cmp(&b.ip));
    waiting.sort_by(|a, b| a.ip.cmp(&b.ip));
    let subsets = (!ready.is_empty() || !waiting.is_empty()).then(|| {
        vec![EndpointSubset {
            addresses: (!ready.is_empty()).then_some(ready),
            not_ready_addresses: (!waiting.is_empty()).then_some(waiting),
            ports: Some(vec![EndpointPort {
                name: Some(PORT_NAME.into()),
                port: FUNCTION_PORT,
                protocol: Some("TCP".into()),
                ..EndpointPort::default()
            }]),
        }]
    });
    Endpoints {
        metadata: object_meta(function),
        subsets,
    }
}

/// Whether a pod's `Ready` condition is true.
fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == super::status::READY && c.status == "True")
        })
}

/// How long a container may take to answer `/healthz` the first time:
/// every 2 s for up to 5 minutes, before the liveness probe takes over.
fn startup_probe(port: &str) -> Value {
    json!({
        "httpGet": {"path": "/healthz", "port": port},
        "periodSeconds": 2,
        "timeoutSeconds": 2,
        "failureThreshold": 150,
    })
}

/// The HorizontalPodAutoscaler, when `spec.autoscaling` asks for one.
pub fn desired_autoscaler(
    function: &FunctionResource,
) -> Result<Option<HorizontalPodAutoscaler>, Refusal> {
    let Some(scaling) = &function.spec.autoscaling else {
        return Ok(None);
    };
    let meta = object_meta(function);
    let hpa = json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta.name},
            "minReplicas": scaling.min_replicas.unwrap_or(1),
            "maxReplicas": scaling.max_replicas,
            "metrics": [{
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {
                        "type": "Utilization",
                        "averageUtilization": scaling.target_cpu_utilization.unwrap_or(80),
                    },
                },
            }],
        },
    });
    overlay(hpa, None, "spec.autoscaling").map(Some)
}

/// Merges the user's template into a generated object and reads it back
/// as its Kubernetes type.
fn overlay<T: DeserializeOwned>(
    mut object: Value,
    template: Option<&Value>,
    field: &str,
) -> Result<T, Refusal> {
    if let Some(template) = template {
        merge(&mut object, template);
    }
    serde_json::from_value(object)
        .map_err(|e| Refusal::invalid(format!("{field}: does not fit the object: {e}")))
}

fn to_yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).expect("JSON values serialize to YAML")
}
