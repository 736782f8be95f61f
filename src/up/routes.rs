//! HTTPTriggers under `up`: every function answers at `/NAME/` already;
//! an HTTPTrigger's `path` (and `host`, when given) also reaches it, as
//! the Ingress it makes on a cluster does (`trigger http create get-python
//! --function-name get-python --path echo`, then `curl .../echo`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use crate::crd::HttpTriggerResource;

struct Route {
    trigger: HttpTriggerResource,
    origin: PathBuf,
}

/// The HTTPTriggers `up` knows, by name.
#[derive(Default)]
pub struct Routes {
    routes: RwLock<BTreeMap<String, Route>>,
}

impl Routes {
    /// Makes the HTTPTriggers from `origin` be exactly `triggers`. A name
    /// another origin declared already is refused (logged).
    pub fn apply(&self, origin: &Path, triggers: Vec<HttpTriggerResource>) {
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        routes.retain(|_, r| r.origin != origin);
        for trigger in triggers {
            let name = trigger.metadata.name.clone().unwrap_or_default();
            if let Some(other) = routes.get(&name) {
                let message = format!(
                    "{}: HTTPTrigger/{name} is already declared in {}; this one is ignored",
                    origin.display(),
                    other.origin.display()
                );
                tracing::error!("{message}");
                eprintln!("error: {message}");
                continue;
            }
            routes.insert(
                name,
                Route {
                    trigger,
                    origin: origin.to_owned(),
                },
            );
        }
    }

    /// Whether there are none (the common case: no lookup per request).
    pub fn is_empty(&self) -> bool {
        self.routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    /// HTTPTrigger `name`, as applied.
    pub fn get(&self, name: &str) -> Option<HttpTriggerResource> {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        routes.get(name).map(|r| r.trigger.clone())
    }

    /// Where HTTPTrigger `name` came from, if it exists.
    pub fn origin(&self, name: &str) -> Option<PathBuf> {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        routes.get(name).map(|r| r.origin.clone())
    }

    /// The function a request for `path` on `host` goes to, and the path
    /// below the trigger's: the longest matching path wins.
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<(String, String)> {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        let host = host.map(|h| h.split(':').next().unwrap_or(h));
        routes
            .values()
            .filter_map(|r| {
                let spec = &r.trigger.spec;
                let prefix = spec.path.as_deref()?.trim_end_matches('/');
                if let Some(wanted) = spec.host.as_deref()
                    && Some(wanted) != host
                {
                    return None;
                }
                let below = path.strip_prefix(prefix)?;
                (below.is_empty() || below.starts_with('/'))
                    .then(|| (prefix.len(), spec.function.clone(), below.to_owned()))
            })
            .max_by_key(|(len, _, _)| *len)
            .map(|(_, function, below)| {
                let below = if below.is_empty() {
                    "/".to_owned()
                } else {
                    below
                };
                (function, below)
            })
    }

    /// `HTTPTrigger/NAME`, what it routes, and its origin, sorted.
    pub fn list(&self) -> Vec<(String, String, PathBuf)> {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        routes
            .iter()
            .map(|(name, r)| {
                let spec = &r.trigger.spec;
                let detail = format!(
                    "{}{} -> {}",
                    spec.host.as_deref().unwrap_or(""),
                    spec.path.as_deref().unwrap_or("(no path: /NAME/ only)"),
                    spec.function
                );
                (format!("HTTPTrigger/{name}"), detail, r.origin.clone())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::HttpTriggerSpec;

    fn trigger(name: &str, function: &str, host: Option<&str>, path: &str) -> HttpTriggerResource {
        HttpTriggerResource::new(
            name,
            HttpTriggerSpec {
                function: function.to_owned(),
                host: host.map(str::to_owned),
                path: Some(path.to_owned()),
                tls_secret: None,
                ingress_class_name: None,
                basic_auth_secret: None,
                cors: None,
                gateway: None,
            },
        )
    }

    #[test]
    fn the_longest_path_on_the_right_host_wins() {
        let routes = Routes::default();
        routes.apply(
            Path::new("a.yaml"),
            vec![
                trigger("short", "f", None, "/echo"),
                trigger("long", "g", None, "/echo/deep"),
                trigger("hosted", "h", Some("example.com"), "/web"),
            ],
        );
        assert_eq!(routes.route(None, "/echo"), Some(("f".into(), "/".into())));
        assert_eq!(
            routes.route(None, "/echo/x"),
            Some(("f".into(), "/x".into()))
        );
        assert_eq!(
            routes.route(None, "/echo/deep/y"),
            Some(("g".into(), "/y".into()))
        );
        assert_eq!(routes.route(None, "/echoes"), None);
        assert_eq!(routes.route(Some("other"), "/web"), None);
        assert_eq!(
            routes.route(Some("example.com:8080"), "/web/a"),
            Some(("h".into(), "/a".into()))
        );
        routes.apply(Path::new("a.yaml"), Vec::new());
        assert_eq!(routes.route(None, "/echo"), None);
    }
}
