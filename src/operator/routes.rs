//! What an HTTPTrigger becomes: an Ingress for the function's Service, or a
//! Gateway API HTTPRoute when the trigger names a Gateway. Pure builders.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::Ingress;
use kube::Resource;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::json;

use super::resources::{FUNCTION_PORT, selector_labels};
use crate::crd::{Cors, HttpTriggerResource};

/// The annotation prefix of ingress-nginx, which reads auth and CORS.
const NGINX: &str = "nginx.ingress.kubernetes.io";

/// The Gateway API HTTPRoute type.
pub fn http_route_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute"),
        "httproutes",
    )
}

/// The object an HTTPTrigger becomes.
#[derive(Clone, Debug, PartialEq)]
pub enum Route {
    /// An Ingress (no `spec.gateway`).
    Ingress(Box<Ingress>),
    /// An HTTPRoute attached to `spec.gateway`.
    HttpRoute(Box<DynamicObject>),
}

/// Builds the Ingress or HTTPRoute of a valid HTTPTrigger.
pub fn desired_route(trigger: &HttpTriggerResource) -> Route {
    let name = trigger.metadata.name.clone().unwrap_or_default();
    let spec = &trigger.spec;
    let mut labels = selector_labels(&spec.function);
    labels.insert("wasmless.io/http-trigger".to_owned(), name.clone());
    let owner = trigger.controller_owner_ref(&()).map(|o| vec![o]);
    if let Some(gateway) = &spec.gateway {
        let mut route = DynamicObject::new(&name, &http_route_resource());
        route.metadata.namespace = trigger.metadata.namespace.clone();
        route.metadata.labels = Some(labels);
        route.metadata.owner_references = owner;
        let mut parent = json!({"name": gateway.name});
        if let Some(namespace) = &gateway.namespace {
            parent["namespace"] = json!(namespace);
        }
        if let Some(section) = &gateway.section_name {
            parent["sectionName"] = json!(section);
        }
        let mut route_spec = json!({
            "parentRefs": [parent],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": spec.path()}}],
                // The route keeps the caller's Host: the header names the
                // function for a shared pool behind its Service.
                "filters": [{
                    "type": "RequestHeaderModifier",
                    "requestHeaderModifier": {
                        "set": [{"name": crate::up::pool::FUNCTION_HEADER, "value": spec.function}],
                    },
                }],
                "backendRefs": [{"name": spec.function, "port": FUNCTION_PORT}],
            }],
        });
        if let Some(host) = &spec.host {
            route_spec["hostnames"] = json!([host]);
        }
        route.data = json!({ "spec": route_spec });
        return Route::HttpRoute(Box::new(route));
    }
    let mut annotations = BTreeMap::new();
    // ingress-nginx sends the function's Service name as Host (the
    // caller's is in X-Forwarded-Host), by which a shared pool behind the
    // Service tells its functions apart.
    if let Some(namespace) = &trigger.metadata.namespace {
        annotations.insert(
            format!("{NGINX}/upstream-vhost"),
            format!("{}.{namespace}.svc", spec.function),
        );
    }
    if let Some(secret) = &spec.basic_auth_secret {
        annotations.insert(format!("{NGINX}/auth-type"), "basic".to_owned());
        annotations.insert(format!("{NGINX}/auth-secret"), secret.clone());
        annotations.insert(
            format!("{NGINX}/auth-realm"),
            format!("Authentication required for {}", spec.function),
        );
    }
    if let Some(cors) = &spec.cors {
        cors_annotations(cors, &mut annotations);
    }
    let mut ingress_spec = json!({
        "rules": [{
            "http": {"paths": [{
                "path": spec.path(),
                "pathType": "Prefix",
                "backend": {"service": {"name": spec.function, "port": {"number": FUNCTION_PORT}}},
            }]},
        }],
    });
    if let Some(host) = &spec.host {
        ingress_spec["rules"][0]["host"] = json!(host);
    }
    if let Some(class) = &spec.ingress_class_name {
        ingress_spec["ingressClassName"] = json!(class);
    }
    if let (Some(secret), Some(host)) = (&spec.tls_secret, &spec.host) {
        ingress_spec["tls"] = json!([{"hosts": [host], "secretName": secret}]);
    }
    let ingress = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": name,
            "namespace": trigger.metadata.namespace,
            "labels": labels,
            "annotations": (!annotations.is_empty()).then_some(annotations),
            "ownerReferences": owner,
        },
        "spec": ingress_spec,
    });
    Route::Ingress(Box::new(
        serde_json::from_value(ingress).expect("the generated Ingress fits its type"),
    ))
}

fn cors_annotations(cors: &Cors, annotations: &mut BTreeMap<String, String>) {
    annotations.insert(format!("{NGINX}/enable-cors"), "true".to_owned());
    let fields = [
        ("cors-allow-origin", &cors.allow_origin),
        ("cors-allow-methods", &cors.allow_methods),
        ("cors-allow-headers", &cors.allow_headers),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            annotations.insert(format!("{NGINX}/{key}"), value.clone());
        }
    }
}

/// Where an HTTPTrigger makes its function reachable, for its status.
pub fn route_url(trigger: &HttpTriggerResource) -> String {
    let spec = &trigger.spec;
    let scheme = if spec.tls_secret.is_some() {
        "https"
    } else {
        "http"
    };
    format!(
        "{scheme}://{}{}",
        spec.host.as_deref().unwrap_or("<ingress address>"),
        spec.path()
    )
}
