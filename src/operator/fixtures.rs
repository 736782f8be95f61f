//! Test only: an in-memory Kubernetes API server that answers a scenario
//! of expected requests in order, and builders for test resources.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use super::context::Context;
use super::resources::PodSettings;
use crate::crd::FunctionResource;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// One expected request and the answer to it.
pub struct Step {
    method: Method,
    path: String,
    reply: Reply,
}

enum Reply {
    /// Answer with the request's own body (what an apply returns), with
    /// `status` merged in when given.
    Echo(Option<Value>),
    /// Answer with this object, the request body's fields merged in
    /// (what a merge patch returns).
    Patched(Value),
    /// Answer with this status and body.
    Fixed(u16, Value),
}

impl Step {
    /// Expect `method path` and answer with the request body.
    pub fn echo(method: Method, path: &str) -> Self {
        Self {
            method,
            path: path.to_owned(),
            reply: Reply::Echo(None),
        }
    }

    /// Expect `method path` and answer with the request body plus this
    /// `status` (a Deployment as the API server reports it).
    pub fn echo_with_status(method: Method, path: &str, status: Value) -> Self {
        Self {
            method,
            path: path.to_owned(),
            reply: Reply::Echo(Some(status)),
        }
    }

    /// Expect a merge patch of `object` at `path` and answer with the
    /// patched object.
    pub fn patch(path: &str, object: &impl serde::Serialize) -> Self {
        Self {
            method: Method::PATCH,
            path: path.to_owned(),
            reply: Reply::Patched(serde_json::to_value(object).expect("object serializes")),
        }
    }

    /// Expect `method path` and answer `code` with `body`.
    pub fn reply(method: Method, path: &str, code: u16, body: Value) -> Self {
        Self {
            method,
            path: path.to_owned(),
            reply: Reply::Fixed(code, body),
        }
    }

    /// Expect `method path` and answer 404.
    pub fn not_found(method: Method, path: &str) -> Self {
        Self::reply(
            method,
            path,
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "reason": "NotFound", "code": 404, "message": "not found"}),
        )
    }
}

/// A request the server received: `METHOD path` and its JSON body.
#[derive(Debug)]
pub struct Seen {
    /// `PATCH /api/v1/...`.
    pub request: String,
    /// The body, `null` when empty.
    pub body: Value,
}

/// The mock API server.
pub struct ApiServer {
    handle: Handle,
}

/// A context whose client talks to a new mock API server.
pub fn context() -> (Arc<Context>, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let settings = PodSettings {
        image: "wasmless:test".into(),
        image_pull_policy: None,
        cluster_domain: "cluster.local".into(),
    };
    let ctx = Context::new(client, settings, Some("test".into()));
    (Arc::new(ctx), ApiServer { handle })
}

impl ApiServer {
    /// Answers `steps` in order and returns what it saw. A request that
    /// differs from the next step fails the test, naming both.
    pub fn run(mut self, steps: Vec<Step>) -> JoinHandle<Vec<Seen>> {
        tokio::spawn(async move {
            let mut seen = Vec::new();
            for step in steps {
                let next =
                    tokio::time::timeout(Duration::from_secs(10), self.handle.next_request());
                let (request, send) = next
                    .await
                    .unwrap_or_else(|_| {
                        panic!("no request came; expected {} {}", step.method, step.path)
                    })
                    .expect("the client is alive");
                let line = format!("{} {}", request.method(), request.uri().path());
                assert_eq!(
                    line,
                    format!("{} {}", step.method, step.path),
                    "unexpected request after {:?}",
                    seen.iter().map(|s: &Seen| &s.request).collect::<Vec<_>>()
                );
                let bytes = request.into_body().collect_bytes().await.expect("body");
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let (code, answer) = match step.reply {
                    Reply::Echo(status) => {
                        let mut answer = body.clone();
                        if let Some(status) = status {
                            answer["status"] = status;
                        }
                        (200, answer)
                    }
                    Reply::Patched(mut object) => {
                        super::merge::merge(&mut object, &body);
                        (200, object)
                    }
                    Reply::Fixed(code, answer) => (code, answer),
                };
                let response = Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&answer).expect("json")))
                    .expect("response");
                send.send_response(response);
                seen.push(Seen {
                    request: line,
                    body,
                });
            }
            seen
        })
    }
}

/// A Function as the API server returns it, in namespace `team`.
pub fn function(name: &str, spec: Value, generation: i64) -> FunctionResource {
    serde_json::from_value(json!({
        "apiVersion": "wasmless.io/v1alpha1",
        "kind": "Function",
        "metadata": {
            "name": name,
            "namespace": "team",
            "uid": format!("uid-{name}"),
            "generation": generation,
            "resourceVersion": "1",
        },
        "spec": spec,
    }))
    .expect("test Function")
}

/// An empty list of `kind`.
pub fn empty_list(kind: &str) -> Value {
    json!({"apiVersion": "v1", "kind": kind, "metadata": {"resourceVersion": "1"}, "items": []})
}

/// Fills the operator's cache of pool pods with `pods` and marks it
/// listed.
pub fn set_pool_pods(ctx: &Context, pods: Vec<k8s_openapi::api::core::v1::Pod>) {
    use kube::runtime::{reflector, watcher};
    let (store, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for pod in pods {
        writer.apply_watcher_event(&watcher::Event::InitApply(pod));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    assert!(ctx.pool_pods.set(store).is_ok(), "set once");
}

/// A pool pod of `namespace` at `ip` on node-1, ready or not.
pub fn pool_pod(
    namespace: &str,
    name: &str,
    ip: &str,
    ready: bool,
) -> k8s_openapi::api::core::v1::Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "uid": format!("uid-{name}"),
                     "labels": {"wasmless.io/pool": "wasmless-pool"}},
        "spec": {"nodeName": "node-1", "containers": []},
        "status": {"podIP": ip, "conditions": [
            {"type": "Ready", "status": if ready { "True" } else { "False" }}]},
    }))
    .expect("a pod")
}
