//! Shared host pools: the `wasmless host --pool` pods of a namespace, which
//! serve every pool Function there (each keeps its own Service, which
//! selects the pool's pods), and the decision of which Functions they
//! serve. Pure builders; the reconciler applies what these return.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::RoleBinding;
use serde_json::json;

use super::resources::{FUNCTION_PORT, PodSettings, Refusal, installs_dependencies};
use crate::crd::{Function, Hosting};
use crate::runtimes::{Catalog, Path as RunPath, Placement};

/// The pool's Deployment, ServiceAccount and RoleBinding, in each
/// namespace that has pool Functions.
pub const POOL_NAME: &str = "wasmless-pool";
/// The label of the pool's pods (its value is the pool's name), which pool
/// Functions' Services select.
pub const POOL_LABEL: &str = "wasmless.io/pool";
/// The ClusterRole (in manifests/rbac.yaml) a pool is bound to in its
/// namespace: read Functions and triggers.
pub const POOL_CLUSTER_ROLE: &str = "wasmless-pool";
/// Every API permission a pool's host uses, in its namespace only (the
/// `wasmless-pool` ClusterRole of manifests/rbac.yaml grants exactly these,
/// a test checks it): it reads the Functions it serves.
pub const POOL_PERMISSIONS: &[(&str, &str, &[&str])] =
    &[("wasmless.io", "functions", &["list", "watch"])];
/// The environment variable naming the namespace a pool serves.
pub const POOL_NAMESPACE_ENV: &str = "WASMLESS_POOL_NAMESPACE";

/// Where a Function runs, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostingDecision {
    /// Pool or dedicated.
    pub hosting: Hosting,
    /// `Default`, `Requested`, `ImagePath` or `PodSettings`.
    pub reason: &'static str,
    /// The decision in a sentence, for `describe`.
    pub message: String,
}

/// How the operator builds pools: the settings of every namespace's pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSettings {
    /// Pods per pool.
    pub replicas: i32,
    /// The host container's CPU request (a quantity).
    pub cpu: String,
    /// The host container's memory request and limit (quantities).
    pub memory: String,
    /// The memory limit.
    pub memory_limit: String,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            replicas: 1,
            cpu: "100m".into(),
            memory: "128Mi".into(),
            memory_limit: "2Gi".into(),
        }
    }
}

/// The fields that shape a Function's own pods, which a shared pool cannot
/// honour: set, they give it a Deployment of its own.
fn pod_fields(plain: &Function, catalog: &Catalog, kafka: bool) -> Vec<&'static str> {
    let spec = &plain.spec;
    let mut fields = Vec::new();
    if spec.replicas.is_some_and(|r| r != 1) {
        fields.push("replicas");
    }
    if spec.autoscaling.is_some() {
        fields.push("autoscaling");
    }
    if spec.resources.is_some() {
        fields.push("resources");
    }
    if spec.port.is_some_and(|p| p != FUNCTION_PORT) {
        fields.push("port");
    }
    if spec.deployment.is_some() {
        fields.push("deployment");
    }
    if !spec.secrets.is_empty() {
        fields.push("secrets");
    }
    if installs_dependencies(plain, catalog) {
        fields.push("dependencies");
    }
    if kafka {
        fields.push("a KafkaTrigger");
    }
    fields
}

/// Decides where a Function runs: in its namespace's pool unless it is on
/// the image path, asks for `Dedicated`, or shapes its own pods. `kafka`:
/// a KafkaTrigger delivers to it (its consumers run in dedicated pods).
/// An explicit `Pool` that cannot be honoured is refused.
pub fn decide(
    plain: &Function,
    placement: &Placement,
    catalog: &Catalog,
    kafka: bool,
) -> Result<HostingDecision, Refusal> {
    let asked = plain.spec.placement;
    if placement.path == RunPath::Image {
        if asked == Some(Hosting::Pool) {
            return Err(Refusal::invalid(format!(
                "spec.placement: Pool needs the wasm path, but this function runs on its runtime's image ({}); remove spec.placement",
                placement.message
            )));
        }
        return Ok(HostingDecision {
            hosting: Hosting::Dedicated,
            reason: "ImagePath",
            message: "on the image path: a Deployment of its own".into(),
        });
    }
    if asked == Some(Hosting::Dedicated) {
        return Ok(HostingDecision {
            hosting: Hosting::Dedicated,
            reason: "Requested",
            message: "spec.placement is Dedicated: a Deployment of its own".into(),
        });
    }
    let fields = pod_fields(plain, catalog, kafka);
    if !fields.is_empty() {
        let list = fields
            .iter()
            .map(|f| {
                if f.contains(' ') {
                    (*f).to_owned()
                } else {
                    format!("spec.{f}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        if asked == Some(Hosting::Pool) {
            return Err(Refusal::invalid(format!(
                "spec.placement: Pool cannot honour {list}, which need pods of the function's own; remove them, or set spec.placement: Dedicated"
            )));
        }
        return Ok(HostingDecision {
            hosting: Hosting::Dedicated,
            reason: "PodSettings",
            message: format!("a Deployment of its own, for {list}"),
        });
    }
    Ok(HostingDecision {
        hosting: Hosting::Pool,
        reason: if asked.is_some() {
            "Requested"
        } else {
            "Default"
        },
        message: format!(
            "served by the namespace's shared pool ({POOL_NAME}), loaded on its first event"
        ),
    })
}

/// The labels of a pool's pods (and its Service selector).
pub fn pool_selector() -> BTreeMap<String, String> {
    BTreeMap::from([(POOL_LABEL.to_owned(), POOL_NAME.to_owned())])
}

/// The label selector of a pool's pods, as text.
pub fn pool_selector_text() -> String {
    format!("{POOL_LABEL}={POOL_NAME}")
}

fn pool_labels() -> BTreeMap<String, String> {
    let mut labels = pool_selector();
    labels.insert("app.kubernetes.io/name".into(), POOL_NAME.into());
    labels.insert("app.kubernetes.io/managed-by".into(), "wasmless".into());
    labels.insert(super::resources::CREATED_BY_LABEL.into(), "wasmless".into());
    labels
}

/// Every object of a namespace's pool.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolObjects {
    /// The identity its pods read Functions and triggers with.
    pub service_account: ServiceAccount,
    /// Binds that identity to [`POOL_CLUSTER_ROLE`], in this namespace only.
    pub role_binding: RoleBinding,
    /// The pods running `wasmless host --pool`.
    pub deployment: Deployment,
}

/// The pool of `namespace`.
pub fn desired_pool(namespace: &str, settings: &PodSettings, pool: &PoolSettings) -> PoolObjects {
    let meta = json!({"name": POOL_NAME, "namespace": namespace, "labels": pool_labels()});
    let service_account = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta,
    });
    let role_binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta,
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": POOL_CLUSTER_ROLE,
        },
        "subjects": [{"kind": "ServiceAccount", "name": POOL_NAME, "namespace": namespace}],
    });
    let probe = json!({"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10});
    let mut container = json!({
        "name": "host",
        "image": settings.image,
        "args": ["host", "--pool"],
        "env": [
            {"name": POOL_NAMESPACE_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "WASMLESS_LISTEN", "value": format!("[::]:{FUNCTION_PORT}")},
        ],
        "ports": [{"name": "http", "containerPort": FUNCTION_PORT, "protocol": "TCP"}],
        "readinessProbe": probe,
        "livenessProbe": probe,
        "resources": {
            "requests": {"cpu": pool.cpu, "memory": pool.memory},
            "limits": {"memory": pool.memory_limit},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
        },
    });
    if let Some(policy) = &settings.image_pull_policy {
        container["imagePullPolicy"] = json!(policy);
    }
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": pool.replicas,
            "selector": {"matchLabels": pool_selector()},
            "template": {
                "metadata": {
                    "labels": pool_labels(),
                    "annotations": {
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": FUNCTION_PORT.to_string(),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    "serviceAccountName": POOL_NAME,
                    "containers": [container],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                    "securityContext": {
                        "runAsNonRoot": true,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                },
            },
        },
    });
    PoolObjects {
        service_account: serde_json::from_value(service_account).expect("a ServiceAccount"),
        role_binding: serde_json::from_value(role_binding).expect("a RoleBinding"),
        deployment: serde_json::from_value(deployment).expect("a Deployment"),
    }
}
