//! Outgoing HTTP from functions, through `spec.allowedOutboundHosts`: real
//! HTTP servers on loopback ports, a Python function on `urllib.request`,
//! a JavaScript function on `fetch`, and a `wasi:http` component on
//! `wasi:http/outgoing-handler`, each under `wasmless up`. What the list
//! grants is reached; everything else (another port, a redirect to it, a
//! name that resolves to loopback, `up`'s own admin API) is refused with
//! the host's reason, and never reaches the server.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::source::{function, source_up};
use common::tempdir;
use serde_json::{Value, json};

/// A loopback HTTP server that answers `/echo` with what it received (as
/// JSON: method, path, host, body) and `/redirect?to=URL` with a 302 to
/// URL; it counts the requests it got.
struct Server {
    url: String,
    port: u16,
    hits: Arc<AtomicUsize>,
}

async fn server() -> Server {
    use http_body_util::{BodyExt, Full};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding");
    let port = listener.local_addr().expect("address").port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let counted = counted.clone();
                        async move {
                            counted.fetch_add(1, Ordering::SeqCst);
                            let method = req.method().to_string();
                            let path = req.uri().path().to_owned();
                            let query = req.uri().query().unwrap_or_default().to_owned();
                            let host = req
                                .headers()
                                .get("host")
                                .and_then(|h| h.to_str().ok())
                                .unwrap_or_default()
                                .to_owned();
                            let body = req.into_body().collect().await.expect("body").to_bytes();
                            let mut response = hyper::Response::new(Full::new(bytes::Bytes::new()));
                            if let Some(to) = query.strip_prefix("to=") {
                                *response.status_mut() = hyper::StatusCode::FOUND;
                                response
                                    .headers_mut()
                                    .insert("location", to.parse().expect("a header value"));
                            } else {
                                let answer = json!({
                                    "method": method,
                                    "path": path,
                                    "host": host,
                                    "body": String::from_utf8_lossy(&body),
                                });
                                response.headers_mut().insert(
                                    "content-type",
                                    "application/json".parse().expect("type"),
                                );
                                response
                                    .headers_mut()
                                    .insert("x-server", "echo".parse().expect("header"));
                                *response.body_mut() = Full::new(answer.to_string().into());
                            }
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    Server {
        url: format!("http://127.0.0.1:{port}"),
        port,
        hits,
    }
}

impl Server {
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

const PYTHON: &str = r#"
import json
import urllib.error
import urllib.request

def handler(event, context):
    ask = event["data"]
    request = urllib.request.Request(
        ask["url"],
        data=ask.get("body", "").encode() or None,
        headers=ask.get("headers", {}),
        method=ask.get("method", "GET"),
    )
    try:
        with urllib.request.urlopen(request) as answer:
            return {
                "status": answer.status,
                "server": answer.headers.get("x-server"),
                "url": answer.geturl(),
                "body": json.loads(answer.read()),
            }
    except urllib.error.HTTPError as error:
        return {"status": error.code}
    except urllib.error.URLError as error:
        return {"error": str(error.reason), "kind": type(error.reason).__name__}
"#;

const JAVASCRIPT: &str = r#"
module.exports.handler = async (event) => {
  const ask = event.data;
  try {
    const answer = await fetch(ask.url, {
      method: ask.method || "GET",
      headers: ask.headers || {},
      body: ask.body,
    });
    return {
      status: answer.status,
      server: answer.headers.get("x-server"),
      url: answer.url,
      body: await answer.json(),
    };
  } catch (error) {
    return { error: String(error.message), kind: error.name };
  }
};
"#;

/// The manifest of a source function that fetches, with this allow-list.
fn fetching(runtime: &str, name: &str, allowed: &[String]) -> String {
    let (handler, source) = if runtime.starts_with("python") {
        ("fetch.handler", PYTHON)
    } else {
        ("fetch.handler", JAVASCRIPT)
    };
    let mut extra = String::new();
    if !allowed.is_empty() {
        extra.push_str("  allowedOutboundHosts:\n");
        for entry in allowed {
            extra.push_str(&format!("    - \"{entry}\"\n"));
        }
    }
    function(runtime, name, handler, source, &extra)
}

async fn call(up: &common::Up, name: &str, ask: Value) -> Value {
    let (status, body) = up
        .request(
            "POST",
            &format!("/{name}"),
            Some("application/json"),
            ask.to_string().as_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{name}: {body}\n{}", up.log());
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: {e}: {body}"))
}

/// Asserts that the function reported a refusal whose message holds `says`.
fn assert_refused(got: &Value, says: &str) {
    let error = got["error"].as_str().unwrap_or_default();
    assert!(error.contains(says), "{got}");
}

/// The checks both source runtimes pass.
async fn check_runtime(runtime: &str) {
    let allowed = server().await;
    let other = server().await;
    let dir = tempdir();
    let manifests = [
        fetching(runtime, "granted", std::slice::from_ref(&allowed.url)),
        fetching(runtime, "nothing", &[]),
        fetching(
            runtime,
            "by-name",
            &[format!("http://localhost:{}", allowed.port)],
        ),
    ]
    .concat();
    std::fs::write(dir.join("functions.yaml"), manifests).expect("manifest");
    let up = source_up(&[&dir]);

    // What the list names is reached, with the method, body and headers the
    // function gave, and the Host header the URL's (not the function's).
    let got = call(
        &up,
        "granted",
        json!({
            "url": format!("{}/echo", allowed.url),
            "method": "POST",
            "body": "order 7",
            "headers": {"content-type": "text/plain", "host": "evil.test"},
        }),
    )
    .await;
    assert_eq!(got["status"], 200, "{got}");
    assert_eq!(got["server"], "echo", "{got}");
    assert_eq!(got["body"]["method"], "POST", "{got}");
    assert_eq!(got["body"]["path"], "/echo", "{got}");
    assert_eq!(got["body"]["body"], "order 7", "{got}");
    assert_eq!(
        got["body"]["host"],
        format!("127.0.0.1:{}", allowed.port),
        "{got}"
    );
    let reached = allowed.hits();

    // Another port of the same address is not granted, and not reached.
    let got = call(
        &up,
        "granted",
        json!({"url": format!("{}/echo", other.url)}),
    )
    .await;
    assert_refused(&got, "not in spec.allowedOutboundHosts");
    assert_eq!(other.hits(), 0);

    // A granted host that redirects elsewhere: the redirect is followed as
    // a new request, which is refused.
    let got = call(
        &up,
        "granted",
        json!({"url": format!("{}/redirect?to={}/echo", allowed.url, other.url)}),
    )
    .await;
    assert_refused(&got, "not in spec.allowedOutboundHosts");
    assert_eq!(allowed.hits(), reached + 1, "the redirect itself was asked");
    assert_eq!(other.hits(), 0, "the redirect's target was not reached");

    // A redirect within the list is followed.
    let got = call(
        &up,
        "granted",
        json!({"url": format!("{}/redirect?to={}/echo", allowed.url, allowed.url)}),
    )
    .await;
    assert_eq!(got["status"], 200, "{got}");
    assert_eq!(got["body"]["path"], "/echo", "{got}");

    // No list: nothing is reached.
    let got = call(
        &up,
        "nothing",
        json!({"url": format!("{}/echo", allowed.url)}),
    )
    .await;
    assert_refused(&got, "is empty");

    // A name granted by the list that resolves to loopback is refused: only
    // an entry naming the address reaches it.
    let before = allowed.hits();
    let got = call(
        &up,
        "by-name",
        json!({"url": format!("http://localhost:{}/echo", allowed.port)}),
    )
    .await;
    let error = got["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("resolves to") && error.contains("loopback"),
        "{got}"
    );
    assert_eq!(allowed.hits(), before);

    // `up` itself: its function port is not granted, and its admin API is
    // on a Unix socket no function can reach.
    let got = call(
        &up,
        "granted",
        json!({"url": format!("{}/_wasmless/functions", up.url)}),
    )
    .await;
    assert_refused(&got, "not in spec.allowedOutboundHosts");

    // Each refusal is a line of the function's log.
    let (ok, logs, _) = up.cli(&["function", "logs", "granted"]);
    assert!(ok);
    assert!(
        logs.contains("outbound request denied"),
        "function logs: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_functions_reach_what_their_allow_list_names_and_nothing_else() {
    check_runtime("python3.x").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn javascript_functions_reach_what_their_allow_list_names_and_nothing_else() {
    check_runtime("nodejs20").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wasi_http_components_reach_what_their_allow_list_names_and_nothing_else() {
    let allowed = server().await;
    let other = server().await;
    let dir = tempdir();
    let wasm = common::wasm("fetcher");
    let manifest = format!(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata:\n  name: fetcher\nspec:\n  file: {}\n  allowedOutboundHosts:\n    - \"http://127.0.0.1:{}\"\n",
        wasm.display(),
        allowed.port
    );
    std::fs::write(dir.join("fetcher.yaml"), manifest).expect("manifest");
    let up = common::Up::start(&[&dir]);
    let get = |url: String, host: Option<&str>| {
        let path = match host {
            Some(host) => format!("/fetcher/?url={url}&host={host}"),
            None => format!("/fetcher/?url={url}"),
        };
        let up = &up;
        async move { up.get(&path).await }
    };

    let (status, body) = get(format!("{}/echo", allowed.url), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("status 200\n"), "{body}");
    assert!(body.contains(r#""path":"/echo""#), "{body}");

    // The guest cannot name another Host: wasi:http forbids the header.
    let (_, body) = get(format!("{}/echo", allowed.url), Some("evil.test")).await;
    assert!(
        body.contains("host header: HeaderError::Forbidden"),
        "{body}"
    );
    assert!(
        body.contains(&format!(r#""host":"127.0.0.1:{}""#, allowed.port)),
        "{body}"
    );

    let (_, body) = get(format!("{}/echo", other.url), None).await;
    assert!(
        body.contains("error: ErrorCode::HttpRequestDenied"),
        "{body}"
    );
    // wasi:http does not follow redirects: the 302 is the answer.
    let (_, body) = get(
        format!("{}/redirect?to={}/echo", allowed.url, other.url),
        None,
    )
    .await;
    assert!(body.starts_with("status 302"), "{body}");
    assert_eq!(other.hits(), 0);
    // Cloud metadata (link-local), not named by the list.
    let (_, body) = get("http://169.254.169.254/latest/meta-data".to_owned(), None).await;
    assert!(
        body.contains("error: ErrorCode::HttpRequestDenied"),
        "{body}"
    );
    let (ok, logs, _) = up.cli(&["function", "logs", "fetcher"]);
    assert!(ok);
    assert!(
        logs.contains("outbound request denied") && logs.contains("169.254.169.254"),
        "function logs: {logs}"
    );
}

#[test]
fn a_bad_allow_list_entry_is_refused_with_its_index() {
    let dir = tempdir();
    let manifest = "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata:\n  name: bad\nspec:\n  function: '(component)'\n  allowedOutboundHosts:\n    - https://api.example.com\n    - api.example.com/v1\n";
    std::fs::write(dir.join("bad.yaml"), manifest).expect("manifest");
    let up = common::Up::start(&[&dir]);
    common::source::wait_for_log_line(
        &up,
        &[
            "bad",
            "spec.allowedOutboundHosts[1]",
            "scheme://host[:port]",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_sets_the_allow_list_with_allow_outbound() {
    let allowed = server().await;
    let dir = tempdir();
    let up = source_up(&[&dir]);
    let code = dir.join("fetch.js");
    std::fs::write(&code, JAVASCRIPT).expect("code");
    let code = code.display().to_string();
    let deploy = |extra: &[&str]| {
        let mut args = vec![
            "function",
            "deploy",
            "fetch",
            "--runtime",
            "nodejs20",
            "--handler",
            "fetch.handler",
            "--from-file",
            &code,
        ];
        args.extend_from_slice(extra);
        up.cli(&args)
    };
    let (ok, out, err) = deploy(&["--allow-outbound", "api.example.com"]);
    assert!(!ok, "{out}");
    assert!(
        err.contains("--allow-outbound") && err.contains("scheme://host[:port]"),
        "{err}"
    );
    let (ok, out, err) = deploy(&["--allow-outbound", &allowed.url]);
    assert!(ok, "{out}{err}");
    let got = call(
        &up,
        "fetch",
        json!({"url": format!("{}/echo", allowed.url)}),
    )
    .await;
    assert_eq!(got["status"], 200, "{got}");
    assert_eq!(got["body"]["path"], "/echo", "{got}");
}

/// A loopback TCP server that answers each line with `echo: LINE`, and
/// counts its connections. Returns its port and the count.
async fn tcp_echo() -> (u16, Arc<AtomicUsize>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding");
    let port = listener.local_addr().expect("address").port();
    let count = Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut lines = tokio::io::BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if write
                        .write_all(format!("echo: {line}\n").as_bytes())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    (port, count)
}

const PYTHON_TCP: &str = r#"
import socket

def handler(event, context):
    ask = event["data"]
    try:
        if ask.get("listen"):
            server = socket.socket()
            server.bind(("0.0.0.0", 0))
            server.listen()
            return {"listening": server.getsockname()[1]}
        with socket.create_connection((ask["host"], ask["port"]), timeout=10) as conn:
            conn.sendall(b"ping\n")
            return {"echo": conn.makefile().readline().strip()}
    except OSError as error:
        return {"error": str(error), "kind": type(error).__name__}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn python_sockets_connect_where_tcp_entries_grant_and_nowhere_else() {
    let (port, hits) = tcp_echo().await;
    let (other, other_hits) = tcp_echo().await;
    let dir = tempdir();
    let entries = |list: &[String]| {
        let mut extra = "  allowedOutboundHosts:\n".to_owned();
        for entry in list {
            extra.push_str(&format!("    - \"{entry}\"\n"));
        }
        extra
    };
    let manifests = [
        function(
            "python3.x",
            "tcp",
            "tcp.handler",
            PYTHON_TCP,
            &entries(&[format!("tcp://127.0.0.1:{port}")]),
        ),
        function(
            "python3.x",
            "tcp-by-name",
            "tcp.handler",
            PYTHON_TCP,
            &entries(&[format!("tcp://localhost:{port}")]),
        ),
        function(
            "python3.x",
            "http-only",
            "tcp.handler",
            PYTHON_TCP,
            &entries(&[format!("http://127.0.0.1:{port}")]),
        ),
    ]
    .concat();
    std::fs::write(dir.join("functions.yaml"), manifests).expect("manifest");
    let up = source_up(&[&dir]);

    let got = call(&up, "tcp", json!({"host": "127.0.0.1", "port": port})).await;
    assert_eq!(got["echo"], "echo: ping", "{got}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // Another port: refused, never reached.
    let got = call(&up, "tcp", json!({"host": "127.0.0.1", "port": other})).await;
    assert_eq!(got["kind"], "PermissionError", "{got}");
    assert_eq!(other_hits.load(Ordering::SeqCst), 0);

    // No server: listening is refused.
    let got = call(&up, "tcp", json!({"listen": true})).await;
    assert_eq!(got["kind"], "PermissionError", "{got}");

    // A name that resolves to loopback is refused unless the address is named.
    let got = call(
        &up,
        "tcp-by-name",
        json!({"host": "localhost", "port": port}),
    )
    .await;
    assert_eq!(got["kind"], "PermissionError", "{got}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // http:// entries grant no sockets (not even a lookup of an address).
    let got = call(&up, "http-only", json!({"host": "127.0.0.1", "port": port})).await;
    assert!(got["error"].is_string(), "{got}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    let (_, logs, _) = up.cli(&["function", "logs", "tcp"]);
    assert!(
        logs.contains(&format!("tcp://127.0.0.1:{other} is not granted")),
        "function logs: {logs}"
    );
    let (_, logs, _) = up.cli(&["function", "logs", "tcp-by-name"]);
    assert!(
        logs.contains("localhost resolves to 127.0.0.1"),
        "function logs: {logs}"
    );
}
