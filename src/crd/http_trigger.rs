//! The `HTTPTrigger` resource: a function exposed outside the cluster
//! through an Ingress or a Gateway API HTTPRoute.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::function::{InvalidSpec, validate_object_name, validate_resource_name};
use super::status::TriggerStatus;

/// Where and how a function is exposed over HTTP. `wasmless up` serves
/// every function at `/<name>/` and needs no HTTPTrigger; in a cluster the
/// operator turns one into an Ingress, or an HTTPRoute when `gateway` is
/// set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, CustomResource, JsonSchema)]
#[kube(
    group = "wasmless.io",
    version = "v1alpha1",
    kind = "HTTPTrigger",
    root = "HttpTriggerResource",
    plural = "httptriggers",
    namespaced,
    status = "TriggerStatus",
    category = "wasmless",
    doc = "Exposes a function outside the cluster through an Ingress or a Gateway API HTTPRoute.",
    printcolumn(name = "Function", type_ = "string", json_path = ".spec.function"),
    printcolumn(name = "Host", type_ = "string", json_path = ".spec.host"),
    printcolumn(name = "Path", type_ = "string", json_path = ".spec.path"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpTriggerSpec {
    /// The function to expose, in the trigger's namespace.
    #[serde(alias = "function-name")]
    pub function: String,
    /// The host name to match (`fn.example.com`); any host when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The path prefix to match (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Ingress only: the Secret holding the TLS certificate for `host`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret: Option<String>,
    /// Ingress only: the IngressClass to use; the cluster's default when
    /// unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_class_name: Option<String>,
    /// Ingress only (ingress-nginx): a Secret in htpasswd format; callers
    /// must then give a user and password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth_secret: Option<String>,
    /// Ingress only (ingress-nginx): answer cross-origin requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    /// Expose through this Gateway (Gateway API) with an HTTPRoute instead
    /// of an Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<GatewayRef>,
}

/// Cross-origin resource sharing settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cors {
    /// Allowed origins (default `*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_origin: Option<String>,
    /// Allowed methods (default `GET, PUT, POST, DELETE, PATCH, OPTIONS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_methods: Option<String>,
    /// Allowed request headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_headers: Option<String>,
}

/// A Gateway API Gateway to attach an HTTPRoute to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayRef {
    /// The Gateway's name.
    pub name: String,
    /// Its namespace (default: the trigger's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// One listener of the Gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

impl HttpTriggerSpec {
    /// Checks the function name, the host and path, and that Ingress-only
    /// settings are not combined with a Gateway.
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        validate_resource_name(&self.function).map_err(|m| InvalidSpec::new("spec.function", m))?;
        if let Some(host) = &self.host {
            let wildcard = host.strip_prefix("*.").unwrap_or(host);
            validate_object_name(wildcard).map_err(|_| {
                InvalidSpec::new(
                    "spec.host",
                    format!("`{host}` is not a host name (lower-case DNS name, `*.` allowed)"),
                )
            })?;
        }
        if !self.path().starts_with('/') {
            return Err(InvalidSpec::new(
                "spec.path",
                format!("`{}` must start with /", self.path()),
            ));
        }
        for (field, secret) in [
            ("spec.tlsSecret", &self.tls_secret),
            ("spec.basicAuthSecret", &self.basic_auth_secret),
        ] {
            if let Some(secret) = secret {
                validate_object_name(secret).map_err(|m| InvalidSpec::new(field, m))?;
            }
        }
        if self.tls_secret.is_some() && self.host.is_none() {
            return Err(InvalidSpec::new(
                "spec.tlsSecret",
                "needs spec.host: a certificate is for a host name",
            ));
        }
        if let Some(gateway) = &self.gateway {
            validate_object_name(&gateway.name)
                .map_err(|m| InvalidSpec::new("spec.gateway.name", m))?;
            let ingress_only = [
                ("spec.tlsSecret", self.tls_secret.is_some()),
                ("spec.ingressClassName", self.ingress_class_name.is_some()),
                ("spec.basicAuthSecret", self.basic_auth_secret.is_some()),
                ("spec.cors", self.cors.is_some()),
            ];
            if let Some((field, _)) = ingress_only.iter().find(|(_, set)| *set) {
                return Err(InvalidSpec::new(
                    field,
                    "applies to an Ingress; with spec.gateway, TLS, auth and CORS are set on the Gateway",
                ));
            }
        }
        Ok(())
    }

    /// The path prefix, `/` when unset.
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> HttpTriggerSpec {
        serde_saphyr::from_str(yaml).expect("test spec parses")
    }

    #[test]
    fn a_plain_trigger_defaults_to_the_root_path() {
        let s = spec("function: hello\n");
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(s.path(), "/");
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            ("function: Hello\n", "spec.function"),
            ("function: a\nhost: 'bad host'\n", "spec.host"),
            ("function: a\npath: api\n", "spec.path"),
            ("function: a\ntlsSecret: cert\n", "spec.tlsSecret"),
            (
                "function: a\ngateway: {name: gw}\ningressClassName: nginx\n",
                "spec.ingressClassName",
            ),
        ];
        for (yaml, field) in cases {
            assert_eq!(
                spec(yaml).validate().expect_err(yaml).field,
                field,
                "{yaml}"
            );
        }
        assert_eq!(
            spec("function: a\nhost: '*.example.com'\ntlsSecret: cert\n").validate(),
            Ok(())
        );
    }
}
