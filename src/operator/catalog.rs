//! The runtime catalog in a cluster: the built-in one, overridden by the
//! ConfigMap `wasmless-runtimes` (key `runtimes.yaml`) in the operator's
//! namespace. The operator watches it; a change re-reconciles every
//! Function, and an invalid one is logged and ignored (the catalog in
//! effect stays).

use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::watcher;

use super::context::Context;
use crate::runtimes::Catalog;
use crate::runtimes::catalog::{CONFIG_MAP, CONFIG_MAP_KEY};

/// The catalog a version of the ConfigMap gives (`None`: there is none).
pub fn catalog_of(config_map: Option<&ConfigMap>) -> Result<Catalog, String> {
    let Some(config_map) = config_map else {
        return Ok(Catalog::built_in());
    };
    let namespace = config_map.metadata.namespace.as_deref().unwrap_or_default();
    let origin = format!("ConfigMap {namespace}/{CONFIG_MAP} key {CONFIG_MAP_KEY}");
    let text = config_map
        .data
        .as_ref()
        .and_then(|d| d.get(CONFIG_MAP_KEY))
        .ok_or_else(|| format!("{origin}: missing"))?;
    Catalog::with_override(text, &origin)
}

/// Watches the ConfigMap in `namespace`, puts each valid version in effect
/// in `ctx`, and yields once per change (for `reconcile_all_on`).
pub fn watch(
    client: kube::Client,
    namespace: &str,
    ctx: Arc<Context>,
) -> impl Stream<Item = ()> + Send + 'static {
    let api: Api<ConfigMap> = Api::namespaced(client, namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={CONFIG_MAP}"));
    watcher::watcher(api, config).filter_map(move |event| {
        let ctx = ctx.clone();
        async move {
            let found = match event {
                Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) => Some(cm),
                Ok(watcher::Event::Delete(_)) => None,
                Ok(watcher::Event::Init | watcher::Event::InitDone) => return None,
                Err(err) => {
                    tracing::warn!("watching the runtime catalog ConfigMap: {err}");
                    return None;
                }
            };
            match catalog_of(found.as_ref()) {
                Ok(catalog) => {
                    if *ctx.catalog() == catalog {
                        return None;
                    }
                    tracing::info!(
                        runtimes = catalog.ids().join(","),
                        "runtime catalog in effect changed; re-reconciling every Function"
                    );
                    ctx.set_catalog(catalog);
                    Some(())
                }
                Err(message) => {
                    tracing::error!("the runtime catalog override is ignored: {message}");
                    None
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_map(data: Option<&str>) -> ConfigMap {
        ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(CONFIG_MAP.into()),
                namespace: Some("wasmless-system".into()),
                ..Default::default()
            },
            data: data.map(|text| [(CONFIG_MAP_KEY.to_owned(), text.to_owned())].into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_config_map_overrides_the_built_in_catalog() {
        assert_eq!(catalog_of(None), Ok(Catalog::built_in()));
        let catalog = catalog_of(Some(&config_map(Some(
            "runtimes:\n- id: php8\n  names: [php8]\n  image: registry.example/php:8\n",
        ))))
        .expect("valid");
        assert!(catalog.find("php8").is_some() && catalog.find("python3.x").is_some());
        let missing = catalog_of(Some(&config_map(None))).expect_err("no key");
        assert!(
            missing.contains("wasmless-system/wasmless-runtimes key runtimes.yaml: missing"),
            "{missing}"
        );
        let invalid = catalog_of(Some(&config_map(Some("runtimes: [{id: x}]")))).expect_err("bad");
        assert!(invalid.contains("has no names"), "{invalid}");
    }
}
