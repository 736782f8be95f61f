//! `wasmless function ...` against a cluster: the real binary and the real
//! kube client, through a kubeconfig, to a fake Kubernetes API server on a
//! loopback port. The service proxy forwards calls to a real `wasmless
//! host` serving the function, so `function call` runs real wasm.

mod common;

use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{Up, tempdir, wasm};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

const FUNCTIONS: &str = "/apis/wasmless.io/v1alpha1/namespaces/team/functions";

/// One request the fake API server saw.
#[derive(Clone, Debug)]
struct Seen {
    line: String,
    body: Bytes,
}

fn function_object(spec: &Value) -> Value {
    json!({
        "apiVersion": "wasmless.io/v1alpha1", "kind": "Function",
        "metadata": {"name": "hello", "namespace": "team", "generation": 1, "uid": "u1"},
        "spec": spec,
        "status": {"observedGeneration": 1, "url": "http://hello.team.svc.cluster.local:8080/",
                   "replicas": 1, "readyReplicas": 1,
                   "placement": {"path": "wasm", "runtime": "wasm", "reason": "WasmModule",
                                 "message": "the function is a wasm module; it runs in the wasmless host"},
                   "conditions": [{"type": "Ready", "status": "True", "reason": "Available",
                                   "message": "1 of 1 pods ready", "lastTransitionTime": "2026-01-01T00:00:00Z"}]},
    })
}

/// The fake API server: answers the calls the CLI makes and records them.
async fn fake_api(host_url: String, seen: Arc<Mutex<Vec<Seen>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let spec = Arc::new(Mutex::new(json!({})));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (seen, spec, host_url) = (seen.clone(), spec.clone(), host_url.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let (seen, spec, host_url) = (seen.clone(), spec.clone(), host_url.clone());
                        async move {
                            let method = req.method().clone();
                            let path = req.uri().path().to_owned();
                            let query = req.uri().query().unwrap_or_default().to_owned();
                            let content_type = req.headers().get("content-type").cloned();
                            let body = req.into_body().collect().await.expect("body").to_bytes();
                            seen.lock().expect("lock").push(Seen {
                                line: format!("{method} {path}?{query}"),
                                body: body.clone(),
                            });
                            let (code, answer): (u16, Bytes) = match (method.as_str(), path.as_str()) {
                            ("PATCH", p) if p == format!("{FUNCTIONS}/hello") => {
                                let sent: Value = serde_json::from_slice(&body).expect("json");
                                *spec.lock().expect("lock") = sent["spec"].clone();
                                (200, json_bytes(&function_object(&sent["spec"])))
                            }
                            ("GET", p) if p == format!("{FUNCTIONS}/hello") => {
                                (200, json_bytes(&function_object(&spec.lock().expect("lock"))))
                            }
                            ("GET", FUNCTIONS) => (200, json_bytes(&json!({
                                "apiVersion": "wasmless.io/v1alpha1", "kind": "FunctionList",
                                "metadata": {}, "items": [function_object(&json!({"function": "(module)"}))]}))),
                            ("DELETE", p) if p == format!("{FUNCTIONS}/hello") => (200, json_bytes(&json!({
                                "kind": "Status", "apiVersion": "v1", "status": "Success"}))),
                            ("GET", "/apis/events.k8s.io/v1/namespaces/team/events") => (200, json_bytes(&json!({
                                "apiVersion": "events.k8s.io/v1", "kind": "EventList", "metadata": {},
                                "items": [{"metadata": {"name": "e1", "namespace": "team"},
                                           "eventTime": "2026-01-01T00:00:00.000000Z",
                                           "type": "Normal", "reason": "Ready",
                                           "note": "serving at http://hello.team.svc.cluster.local:8080/"}]}))),
                            ("GET", "/api/v1/namespaces/team/pods") => (200, json_bytes(&json!({
                                "apiVersion": "v1", "kind": "PodList", "metadata": {},
                                "items": [{"metadata": {"name": "hello-7d9f", "namespace": "team"}}]}))),
                            ("GET", "/api/v1/namespaces/team/pods/hello-7d9f/log") => {
                                (200, Bytes::from_static(b"wasmless host: listening on 0.0.0.0:8080\n"))
                            }
                            (_, p) if p.starts_with("/api/v1/namespaces/team/services/hello:http-function-port/proxy/") => {
                                // Forward to the real function, as the API server would.
                                let below = &p["/api/v1/namespaces/team/services/hello:http-function-port/proxy".len()..];
                                let mut forward = hyper::Request::builder().method(method).uri(format!("{host_url}{below}"));
                                if let Some(ct) = content_type {
                                    forward = forward.header("content-type", ct);
                                }
                                let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
                                let response = client
                                    .request(forward.body(Full::new(body)).expect("request"))
                                    .await
                                    .expect("the host answers");
                                let code = response.status().as_u16();
                                (code, response.into_body().collect().await.expect("body").to_bytes())
                            }
                            _ => (404, json_bytes(&json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                           "reason": "NotFound", "code": 404, "message": "not found"}))),
                        };
                            let mut response = hyper::Response::new(Full::new(answer));
                            *response.status_mut() =
                                hyper::StatusCode::from_u16(code).expect("code");
                            response.headers_mut().insert(
                                "content-type",
                                "application/json".parse().expect("header"),
                            );
                            Ok::<_, Infallible>(response)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

fn json_bytes(value: &Value) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("json"))
}

fn kubeconfig(dir: &Path, server: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: {{server: \"{server}\"}}\n\
             users:\n- name: dev\n  user: {{token: secret-token}}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: dev, namespace: team}}\n\
             current-context: fake\n"
        ),
    )
    .expect("kubeconfig");
    path
}

/// Runs the CLI; returns (success, stdout, stderr).
async fn cli(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmless"))
            .args(&args)
            .env_remove("KUBECONFIG")
            .output()
            .expect("runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .expect("joined")
}

fn args(list: &[&str], kubeconfig: &Path) -> Vec<String> {
    let mut args: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    args.push("--kubeconfig".into());
    args.push(kubeconfig.display().to_string());
    args
}

#[tokio::test(flavor = "multi_thread")]
async fn function_verbs_work_against_a_cluster() {
    // The function, served by a real host as its pod would.
    let dir = tempdir();
    std::fs::copy(wasm("hello"), dir.join("hello.wasm")).expect("module");
    std::fs::write(
        dir.join("function.yaml"),
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: hello}\nspec: {file: hello.wasm}\n",
    )
    .expect("manifest");
    let mut host = Up::host(
        &dir,
        &[("WASMLESS_FUNCTION", std::ffi::OsStr::new("hello"))],
    );

    let seen = Arc::new(Mutex::new(Vec::new()));
    let server = fake_api(host.url.clone(), seen.clone()).await;
    let config = kubeconfig(&tempdir(), &server);

    // deploy: a server-side apply of the Function, module in base64.
    let module = wasm("hello").display().to_string();
    let (ok, out, err) = cli(args(
        &[
            "function",
            "deploy",
            "hello",
            "--from-file",
            &module,
            "--env",
            "GREETING=hi",
            "--secrets",
            "db,api",
            "--port",
            "9000",
            "--timeout",
            "5",
            "--wait",
        ],
        &config,
    ))
    .await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("function hello deployed in namespace team"),
        "{out}"
    );
    assert!(
        out.contains("is ready at http://hello.team.svc.cluster.local:8080/"),
        "{out}"
    );
    let apply = seen.lock().expect("lock")[0].clone();
    assert!(
        apply.line.starts_with(&format!("PATCH {FUNCTIONS}/hello?")),
        "{}",
        apply.line
    );
    assert!(
        apply.line.contains("fieldManager=wasmless-cli"),
        "{}",
        apply.line
    );
    let sent: Value = serde_json::from_slice(&apply.body).expect("json");
    assert_eq!(sent["kind"], "Function");
    assert_eq!(sent["spec"]["functionContentType"], "base64");
    assert_eq!(sent["spec"]["secrets"], json!(["db", "api"]));
    assert_eq!(sent["spec"]["port"], 9000);
    assert_eq!(
        sent["spec"]["env"],
        json!([{"name": "GREETING", "value": "hi"}])
    );
    let module_bytes = std::fs::read(wasm("hello")).expect("module");
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(sent["spec"]["function"].as_str().expect("source"))
            .expect("base64"),
        module_bytes
    );

    // ls, describe, logs.
    let (ok, out, err) = cli(args(&["function", "ls"], &config)).await;
    assert!(ok, "{err}");
    let row = out.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("hello") && row.contains("True") && row.contains("Available"),
        "{out}"
    );
    let (ok, out, err) = cli(args(&["function", "describe", "hello"], &config)).await;
    assert!(ok, "{err}");
    for expected in [
        "Namespace:  team",
        "Ready=True Available",
        "Normal   Ready",
        "Secret:     db (mounted at /db)",
        "Path:       wasm (WasmModule)",
        "Why:        the function is a wasm module",
    ] {
        assert!(out.contains(expected), "{expected:?} in\n{out}");
    }
    let (ok, out, err) = cli(args(
        &["function", "logs", "hello", "--tail", "20"],
        &config,
    ))
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("==> hello-7d9f <==") && out.contains("listening on"),
        "{out}"
    );
    assert!(
        seen.lock()
            .expect("lock")
            .iter()
            .any(|s| s.line.contains("labelSelector=function%3Dhello")),
        "pods are found by the function label"
    );

    // call goes through the service proxy to the real function.
    let (ok, out, err) = cli(args(
        &["function", "call", "hello", "--data", "cluster"],
        &config,
    ))
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, "Hello, cluster!\n");

    // delete.
    let (ok, out, err) = cli(args(&["function", "delete", "hello"], &config)).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("function hello deleted from namespace team"),
        "{out}"
    );
    assert!(
        seen.lock()
            .expect("lock")
            .iter()
            .any(|s| s.line.starts_with(&format!("DELETE {FUNCTIONS}/hello")))
    );

    // An unknown function is an error that names it.
    let (ok, _, err) = cli(args(&["function", "describe", "nope"], &config)).await;
    assert!(!ok);
    assert!(err.contains("no function nope in namespace team"), "{err}");
    // Cluster-only flags against a local `up` are noted, with the fix, and
    // the deploy goes on (here to no `up` at all).
    let (ok, _, err) = cli(vec![
        "function".into(),
        "deploy".into(),
        "x".into(),
        "--from-file".into(),
        module.clone(),
        "--port".into(),
        "9000".into(),
    ])
    .await;
    assert!(!ok);
    assert!(
        err.contains("note: --port is a cluster's (add --cluster to use a cluster)"),
        "{err}"
    );
    assert!(
        err.contains("is `wasmless up` running on this machine"),
        "{err}"
    );

    // The operator against a cluster without the CRDs says what to do.
    let operator = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_wasmless"))
                .args(["operator", "--listen", "127.0.0.1:0"])
                .env("KUBECONFIG", &config)
                .output()
                .expect("runs")
        })
        .await
        .expect("joined")
    };
    assert!(!operator.status.success());
    let err = String::from_utf8_lossy(&operator.stderr);
    assert!(err.contains("are the CRDs installed?"), "{err}");
    assert!(host.terminate(Duration::from_secs(30)));
}
