//! Shared host pools: the `wasmless host --pool` pods of a namespace, which
//! serve every pool Function there (each keeps its own Service, which
//! selects the pool's pods), and the decision of which Functions they
//! serve. Pure builders; the reconciler applies what these return.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde_json::json;

use super::resources::{FUNCTION_PORT, PodSettings, Refusal, installs_dependencies};
use crate::crd::{Function, Hosting};
use crate::runtimes::{Catalog, Language, Path as RunPath, Placement};

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
/// a test checks it): it reads the Functions it serves and the
/// KafkaTriggers whose consumers it runs.
pub const POOL_PERMISSIONS: &[(&str, &str, &[&str])] = &[
    ("wasmless.io", "functions", &["list", "watch"]),
    ("wasmless.io", "kafkatriggers", &["list", "watch"]),
];
/// The Role (and its RoleBinding to the pool's ServiceAccount) that lets a
/// namespace's pool read the Secrets its Functions name in `spec.secrets`,
/// by name and nothing else; made while any pool Function names one.
pub const POOL_SECRETS: &str = "wasmless-pool-secrets";
/// Where a pool's host writes the Secrets of its Functions (a memory-backed
/// emptyDir), one folder per Secret; each function is granted only its own.
pub const POOL_SECRETS_ROOT: &str = "/var/run/wasmless/secrets";
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

/// The Role and RoleBinding ([`POOL_SECRETS`]) that let the pool of
/// `namespace` read `secrets` (the Secrets its Functions name): `get` on
/// each by name. `None` when there are none (an empty `resourceNames`
/// would grant every Secret).
pub fn desired_pool_secrets(
    namespace: &str,
    secrets: &std::collections::BTreeSet<String>,
) -> Option<(Role, RoleBinding)> {
    if secrets.is_empty() {
        return None;
    }
    let meta = json!({"name": POOL_SECRETS, "namespace": namespace, "labels": pool_labels()});
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta,
        "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": secrets}],
    });
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": POOL_SECRETS},
        "subjects": [{"kind": "ServiceAccount", "name": POOL_NAME, "namespace": namespace}],
    });
    Some((
        serde_json::from_value(role).expect("a Role"),
        serde_json::from_value(binding).expect("a RoleBinding"),
    ))
}

/// The Secrets the pool Functions of `namespace` name in `spec.secrets`.
pub fn pool_secrets(
    functions: &[std::sync::Arc<kube::core::DeserializeGuard<crate::crd::FunctionResource>>],
    namespace: &str,
    catalog: &Catalog,
) -> std::collections::BTreeSet<String> {
    functions
        .iter()
        .filter_map(|f| f.0.as_ref().ok())
        .filter(|f| f.metadata.namespace.as_deref() == Some(namespace))
        .filter(|f| super::resources::hosting_now(f, catalog) == Some(Hosting::Pool))
        .flat_map(|f| f.spec.secrets.iter().cloned())
        .collect()
}

/// Where a pool pod writes its functions' files: a folder shared with its
/// package installer containers, which install the packages of those
/// Functions that have a dependency file.
pub const POOL_CODE_ROOT: &str = "/var/run/wasmless/code";

/// A package installer container of a pool: the runtime image of a
/// language that a pool Function with a dependency file is written in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolInstaller {
    /// The language whose packages it installs.
    pub language: Language,
    /// The runtime's image (it has the language's package manager).
    pub image: String,
    /// The runtime's install command on the wasm path (pure packages).
    pub command: Vec<String>,
}

/// The installer a Function needs in its pool: one for its language when
/// it has a dependency file to install.
pub fn installer_for(plain: &Function, catalog: &Catalog) -> Option<PoolInstaller> {
    if !installs_dependencies(plain, catalog) {
        return None;
    }
    let entry = catalog.find(&plain.spec.runtime)?;
    Some(PoolInstaller {
        language: entry.wasm?,
        image: entry.image.clone()?,
        command: entry.install.as_ref()?.wasm_command.clone(),
    })
}

/// The installers the pool of `namespace` needs, one per language, for its
/// Functions with a dependency file.
pub fn pool_installers(
    functions: &[std::sync::Arc<kube::core::DeserializeGuard<crate::crd::FunctionResource>>],
    namespace: &str,
    catalog: &Catalog,
) -> BTreeMap<&'static str, PoolInstaller> {
    let mut installers = BTreeMap::new();
    for function in functions.iter().filter_map(|f| f.0.as_ref().ok()) {
        if function.metadata.namespace.as_deref() != Some(namespace)
            || super::resources::hosting_now(function, catalog) != Some(Hosting::Pool)
        {
            continue;
        }
        if let Some(installer) = installer_for(&function.to_function(), catalog) {
            installers
                .entry(installer.language.tag())
                .or_insert(installer);
        }
    }
    installers
}

/// The ConfigMap of a namespace that sets its pool's size and resources
/// (keys `replicas`, `maxReplicas`, `targetCPUUtilization`, `cpu`,
/// `memory`, `memoryLimit`); without it the operator's defaults apply.
pub const POOL_CONFIG: &str = "wasmless-pool";

/// How a namespace's pool is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSettings {
    /// Pods per pool (the fewest, with autoscaling).
    pub replicas: i32,
    /// With more than `replicas`: a HorizontalPodAutoscaler on CPU scales
    /// the pool up to this many pods.
    pub max_replicas: Option<i32>,
    /// The autoscaler's target: average CPU use in percent of the request.
    pub target_cpu_utilization: i32,
    /// The host container's CPU request (a quantity).
    pub cpu: String,
    /// The host container's memory request (a quantity).
    pub memory: String,
    /// Its memory limit.
    pub memory_limit: String,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            replicas: 1,
            max_replicas: None,
            target_cpu_utilization: 80,
            cpu: "100m".into(),
            memory: "128Mi".into(),
            memory_limit: "2Gi".into(),
        }
    }
}

impl PoolSettings {
    /// These settings with a namespace's [`POOL_CONFIG`] data laid over
    /// them; an unknown key or a bad value is an error naming it.
    pub fn with_overrides(
        &self,
        data: &std::collections::BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let mut settings = self.clone();
        let number = |key: &str, value: &str, min: i32, max: i32| {
            value
                .trim()
                .parse::<i32>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    format!("{key}: `{value}` is not a whole number from {min} to {max}")
                })
        };
        let quantity = |key: &str, value: &str| {
            let value = value.trim();
            let valid = value.chars().next().is_some_and(|c| c.is_ascii_digit())
                && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '.');
            valid
                .then(|| value.to_owned())
                .ok_or_else(|| format!("{key}: `{value}` is not a quantity such as 250m or 512Mi"))
        };
        for (key, value) in data {
            match key.as_str() {
                "replicas" => settings.replicas = number(key, value, 1, 1000)?,
                "maxReplicas" => settings.max_replicas = Some(number(key, value, 1, 1000)?),
                "targetCPUUtilization" => {
                    settings.target_cpu_utilization = number(key, value, 1, 1000)?
                }
                "cpu" => settings.cpu = quantity(key, value)?,
                "memory" => settings.memory = quantity(key, value)?,
                "memoryLimit" => settings.memory_limit = quantity(key, value)?,
                other => {
                    return Err(format!(
                        "unknown key `{other}` (known: replicas, maxReplicas, targetCPUUtilization, cpu, memory, memoryLimit)"
                    ));
                }
            }
        }
        if let Some(max) = settings.max_replicas
            && max < settings.replicas
        {
            return Err(format!(
                "maxReplicas ({max}) is below replicas ({})",
                settings.replicas
            ));
        }
        Ok(settings)
    }

    fn autoscaled(&self) -> bool {
        self.max_replicas.is_some_and(|max| max > self.replicas)
    }
}

/// The fields that shape a Function's own pods, which a shared pool cannot
/// honour: set, they give it a Deployment of its own.
fn pod_fields(plain: &Function) -> Vec<&'static str> {
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
    fields
}

/// Decides where a Function runs: in its namespace's pool unless it is on
/// the image path, asks for `Dedicated`, or shapes its own pods. (A
/// KafkaTrigger does not matter: the pool runs the consumers of its
/// functions, as dedicated pods run theirs.)
/// An explicit `Pool` that cannot be honoured is refused.
pub fn decide(plain: &Function, placement: &Placement) -> Result<HostingDecision, Refusal> {
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
    let fields = pod_fields(plain);
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
    /// Scales the pool on CPU, when its settings allow more pods.
    pub autoscaler: Option<HorizontalPodAutoscaler>,
}

/// The pool of `namespace`, with a package installer container for each
/// of `installers`.
pub fn desired_pool(
    namespace: &str,
    settings: &PodSettings,
    pool: &PoolSettings,
    installers: &BTreeMap<&'static str, PoolInstaller>,
) -> PoolObjects {
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
            {"name": "WASMLESS_SECRETS_ROOT", "value": POOL_SECRETS_ROOT},
            {"name": "WASMLESS_INSTALLER_DIR", "value": POOL_CODE_ROOT},
        ],
        "ports": [{"name": "http", "containerPort": FUNCTION_PORT, "protocol": "TCP"}],
        "readinessProbe": probe,
        "livenessProbe": probe,
        "resources": {
            "requests": {"cpu": pool.cpu, "memory": pool.memory},
            "limits": {"memory": pool.memory_limit},
        },
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "secrets", "mountPath": POOL_SECRETS_ROOT},
            {"name": "code", "mountPath": POOL_CODE_ROOT},
        ],
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
        },
    });
    if let Some(policy) = &settings.image_pull_policy {
        container["imagePullPolicy"] = json!(policy);
    }
    let mut containers = vec![container];
    let mut volumes = vec![
        json!({"name": "tmp", "emptyDir": {}}),
        // The Secrets of its Functions, in memory only.
        json!({"name": "secrets", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}),
        // Its functions' files, shared with the installers.
        json!({"name": "code", "emptyDir": {}}),
    ];
    if !installers.is_empty() {
        // The installers' own scratch space: not the host's /tmp, which
        // holds its compile cache.
        volumes.push(json!({"name": "install-tmp", "emptyDir": {}}));
    }
    for installer in installers.values() {
        let script = crate::host::source::installer_script(
            POOL_CODE_ROOT,
            installer.language,
            &installer.command,
        );
        containers.push(json!({
            "name": format!("install-{}", installer.language.tag()),
            "image": installer.image,
            "command": ["/bin/sh", "-c", script],
            "env": [{"name": "HOME", "value": "/tmp"}],
            "resources": {
                "requests": {"cpu": "10m", "memory": "32Mi"},
                "limits": {"memory": "512Mi"},
            },
            "volumeMounts": [
                {"name": "code", "mountPath": POOL_CODE_ROOT},
                {"name": "install-tmp", "mountPath": "/tmp"},
            ],
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]},
            },
        }));
    }
    let mut deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
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
                    "containers": containers,
                    "volumes": volumes,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                },
            },
        },
    });
    // With an autoscaler the autoscaler owns the count.
    let autoscaler = pool.autoscaled().then(|| {
        serde_json::from_value(json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": meta,
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": POOL_NAME},
                "minReplicas": pool.replicas,
                "maxReplicas": pool.max_replicas,
                "metrics": [{
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": pool.target_cpu_utilization},
                    },
                }],
            },
        }))
        .expect("a HorizontalPodAutoscaler")
    });
    if autoscaler.is_none() {
        deployment["spec"]["replicas"] = json!(pool.replicas);
    }
    PoolObjects {
        service_account: serde_json::from_value(service_account).expect("a ServiceAccount"),
        role_binding: serde_json::from_value(role_binding).expect("a RoleBinding"),
        deployment: serde_json::from_value(deployment).expect("a Deployment"),
        autoscaler,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_namespace_sets_its_pools_size_and_resources_and_is_told_what_is_wrong() {
        let base = PoolSettings::default();
        let set = base
            .with_overrides(&data(&[
                ("replicas", "2"),
                ("maxReplicas", "6"),
                ("cpu", "250m"),
                ("memoryLimit", "1Gi"),
            ]))
            .expect("valid");
        assert_eq!(
            (set.replicas, set.max_replicas, set.cpu.as_str()),
            (2, Some(6), "250m")
        );
        let settings = PodSettings {
            image: "img".into(),
            image_pull_policy: None,
            cluster_domain: "cluster.local".into(),
        };
        let pool = desired_pool("team", &settings, &set, &BTreeMap::new());
        let hpa = pool.autoscaler.expect("an autoscaler");
        let spec = hpa.spec.expect("spec");
        assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 6));
        // The autoscaler owns the count, not the operator.
        assert_eq!(pool.deployment.spec.as_ref().and_then(|s| s.replicas), None);
        let fixed = desired_pool("team", &settings, &base, &BTreeMap::new());
        assert!(fixed.autoscaler.is_none());
        assert_eq!(
            fixed.deployment.spec.as_ref().and_then(|s| s.replicas),
            Some(1)
        );
        for (bad, says) in [
            (("replicas", "0"), "replicas"),
            (("replicas", "many"), "replicas"),
            (("cpu", "lots"), "cpu"),
            (("memory", "-1Gi"), "memory"),
            (("size", "2"), "unknown key `size`"),
        ] {
            let error = base.with_overrides(&data(&[bad])).expect_err(bad.0);
            assert!(error.contains(says), "{error}");
        }
        let error = base
            .with_overrides(&data(&[("replicas", "3"), ("maxReplicas", "2")]))
            .expect_err("max below min");
        assert!(error.contains("below"), "{error}");
    }
}
