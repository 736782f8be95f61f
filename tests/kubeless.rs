//! kubeless users switch without rewriting: the commands of kubeless
//! v1.0.8's documentation (docs/kubeless-functions.md,
//! advanced-function-deployment.md, http-triggers.md, cronjob-triggers.md,
//! pubsub-functions.md, autoscaling.md), run as written with `wasmless`
//! for `kubeless` against a real `wasmless up`; kubeless's own
//! `kubeless.io/v1beta1` YAML; and the request API its Python and Node.js
//! functions use. The only change to a command is `python2.7`, which no
//! wasm CPython runs (README, "Coming from kubeless").

mod common;

use std::io::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Up, tempdir};
use rdkafka::mocking::MockCluster;

/// Runs `wasmless ARGS` with `env` and returns (success, stdout, stderr).
fn wasmless(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmless"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("running wasmless");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `wasmless function logs NAME` until a line contains `wanted`.
fn wait_for_log(up: &Up, name: &str, wanted: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let (_, out, _) = up.cli(&["function", "logs", name]);
        if out.contains(wanted) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never logged {wanted:?}: {out}\n{}",
            up.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

const HELLOGET: &str = "def foo(event, context):\n    return 'hello world'\n";
const ECHO: &str = "def foo(event, context):\n    print(event['data'])\n    return event['data']\n";

#[tokio::test(flavor = "multi_thread")]
async fn the_kubeless_docs_function_and_trigger_commands_run_as_written() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.join("python")).expect("mkdir");
    let helloget = dir.join("python/helloget.py");
    std::fs::write(&helloget, HELLOGET).expect("write");
    let helloget = helloget.to_str().expect("utf-8");
    let up = Up::start(&[]);

    // http-triggers.md: deploy, then expose on a path and host name.
    let (ok, out, err) = up.cli(&[
        "function",
        "deploy",
        "get-python",
        "--runtime",
        "python3.9",
        "--handler",
        "helloget.foo",
        "--from-file",
        helloget,
    ]);
    assert!(ok, "{out}{err}");
    assert_eq!(up.get("/get-python").await, (200, "hello world".into()));
    let (ok, out, err) = up.cli(&[
        "trigger",
        "http",
        "create",
        "get-python",
        "--function-name",
        "get-python",
        "--path",
        "echo",
        "--hostname",
        "example.com",
    ]);
    assert!(ok, "{out}{err}");
    let (status, body) = up
        .request_with(
            "POST",
            "/echo",
            &[("host", "example.com")],
            b"{\"Another\": \"Echo\"}",
        )
        .await;
    assert_eq!((status, body.as_str()), (200, "hello world"));
    // Another host name does not reach it by that path.
    let (status, _) = up
        .request_with("POST", "/echo", &[("host", "other.org")], b"x")
        .await;
    assert_eq!(status, 404);
    let (ok, out, _) = up.cli(&["trigger", "http", "list"]);
    assert!(
        ok && out.contains("example.com/echo -> get-python"),
        "{out}"
    );
    // The docs' other HTTP trigger commands, as written (TLS, basic auth
    // and the gateway are the cluster Ingress's; under up they are kept).
    for (name, flags) in [
        ("tls", &["--path", "get-python", "--enableTLSAcme"][..]),
        (
            "secret",
            &["--hostname", "foo.bar.com", "--tls-secret", "secret-name"][..],
        ),
        (
            "auth",
            &["--basic-auth-secret", "basic-auth", "--gateway", "nginx"][..],
        ),
        (
            "kong",
            &["--gateway", "kong", "--hostname", "foo.bar.com"][..],
        ),
    ] {
        let mut args = vec![
            "trigger",
            "http",
            "create",
            name,
            "--function-name",
            "get-python",
        ];
        args.extend_from_slice(flags);
        let (ok, out, err) = up.cli(&args);
        assert!(ok, "{args:?}: {out}{err}");
        let (ok, out, err) = up.cli(&["trigger", "http", "delete", name]);
        assert!(ok, "{out}{err}");
    }

    // `function update` changes the code and keeps the rest.
    let echo = dir.join("echo.py");
    std::fs::write(&echo, ECHO).expect("write");
    let (ok, out, err) = up.cli(&[
        "function",
        "update",
        "get-python",
        "--from-file",
        echo.to_str().expect("utf-8"),
    ]);
    assert!(ok && out.contains("updated get-python"), "{out}{err}");
    // kubeless-functions.md: JSON data is sent as JSON and parsed.
    let (ok, out, _) = up.cli(&[
        "function",
        "call",
        "get-python",
        "--data",
        r#"{"Another": "Echo"}"#,
    ]);
    assert!(ok, "{out}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).expect("JSON back"),
        serde_json::json!({"Another": "Echo"})
    );
    let (ok, out, _) = up.cli(&["function", "ls", "get-python", "-o", "json"]);
    assert!(ok, "{out}");
    let listed: serde_json::Value = serde_json::from_str(&out).expect("JSON listing");
    assert_eq!(listed[0]["name"], "get-python");
    assert_eq!(listed[0]["runtime"], "python3.9");
    let (ok, _, err) = up.cli(&["function", "update", "nothing-here", "--timeout", "5"]);
    assert!(!ok && err.contains("deploy it first"), "{err}");

    // cronjob-triggers.md: create, see the ticks in the logs, then a payload.
    let (ok, out, err) = up.cli(&[
        "function",
        "deploy",
        "cron-test-hello-world",
        "--runtime",
        "python3.9",
        "--handler",
        "echo.foo",
        "--from-file",
        echo.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = up.cli(&[
        "trigger",
        "cronjob",
        "create",
        "cron-test-hello-world",
        "--function",
        "cron-test-hello-world",
        "--schedule",
        "*/1 * * * *",
    ]);
    assert!(ok, "{out}{err}");
    let (ok, out, _) = up.cli(&["trigger", "cronjob", "list"]);
    assert!(
        ok && out.contains("`*/1 * * * *` -> cron-test-hello-world"),
        "{out}"
    );
    // Every second (a seconds field) to see ticks in the test's time, with
    // a payload, as `trigger cronjob update --payload` documents.
    let (ok, out, err) = up.cli(&[
        "trigger",
        "cronjob",
        "update",
        "cron-test-hello-world",
        "--schedule",
        "* * * * * *",
        "--payload",
        r#"{"tick": "from cron"}"#,
    ]);
    assert!(ok, "{out}{err}");
    wait_for_log(
        &up,
        "cron-test-hello-world",
        "from cron",
        Duration::from_secs(20),
    );
    let (ok, out, err) = up.cli(&["trigger", "cronjob", "delete", "cron-test-hello-world"]);
    assert!(ok, "{out}{err}");

    // kubeless-functions.md's --schedule: a function with its own CronTrigger.
    let (ok, out, err) = up.cli(&[
        "function",
        "deploy",
        "scheduled",
        "--runtime",
        "python3.9",
        "--handler",
        "helloget.foo",
        "--from-file",
        helloget,
        "--schedule",
        "* * * * * *",
    ]);
    assert!(
        ok && out.contains("applied CronTrigger/trigger-scheduled"),
        "{out}{err}"
    );
    let (ok, out, _) = up.cli(&["trigger", "ls"]);
    assert!(ok && out.contains("CronTrigger/trigger-scheduled"), "{out}");
    let (ok, _, _) = up.cli(&["function", "delete", "scheduled"]);
    assert!(ok);
    let (_, out, _) = up.cli(&["trigger", "ls"]);
    assert!(
        !out.contains("trigger-scheduled"),
        "its trigger went with it: {out}"
    );

    // Flags that mean nothing under up are noted, not refused.
    let (ok, out, err) = up.cli(&[
        "function",
        "deploy",
        "sized",
        "--runtime",
        "python3.9",
        "--handler",
        "helloget.foo",
        "--from-file",
        helloget,
        "--cpu",
        "100m",
        "--port",
        "8081",
        "--replicas",
        "2",
        "--memory",
        "64Mi",
        "--env",
        "foo:bar,baz=qux",
        "--label",
        "team:a",
    ]);
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("note: --cpu, --port, --replicas are a cluster's"),
        "{err}"
    );
    // autoscaling.md: a cluster's, noted.
    let (ok, _, err) = up.cli(&[
        "autoscale",
        "create",
        "sized",
        "--min",
        "1",
        "--max",
        "3",
        "--value",
        "70",
    ]);
    assert!(
        ok && err.contains("note: autoscaling is a cluster's"),
        "{err}"
    );

    // `function top`: kubeless's figures, from the metrics.
    let (ok, out, _) = up.cli(&[
        "function",
        "top",
        "--function",
        "get-python",
        "--out",
        "json",
    ]);
    assert!(ok, "{out}");
    let top: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(top[0]["function"], "get-python");
    assert!(top[0]["total_calls"].as_f64() >= Some(3.0), "{top}");
    assert!(top[0]["avg_duration_seconds"].as_f64() > Some(0.0), "{top}");
    let (ok, out, _) = up.cli(&["function", "top"]);
    assert!(
        ok && out.starts_with("NAME") && out.contains("TOTAL_CALLS"),
        "{out}"
    );

    // A closed pipe ends the listing quietly, as `| head -1` closes it: the
    // reading end is gone before the CLI has its answer from up to print.
    let mut listing = Command::new(env!("CARGO_BIN_EXE_wasmless"))
        .args(["function", "ls", "--url", &up.url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("wasmless function ls");
    drop(listing.stdout.take());
    let listing = listing.wait_with_output().expect("it ends");
    let stderr = String::from_utf8_lossy(&listing.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(
        listing.status.signal(),
        Some(13),
        "ended by SIGPIPE, as Unix tools do: {:?} {stderr}",
        listing.status
    );

    let (ok, out, _) = up.cli(&["trigger", "http", "delete", "get-python"]);
    assert!(ok, "{out}");
    let (ok, out, _) = up.cli(&["function", "delete", "get-python"]);
    assert!(ok && out.contains("deleted get-python"), "{out}");
    assert_eq!(up.get("/echo").await.0, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kubeless_pubsub_commands_deliver_through_kafka() {
    let cluster = MockCluster::new(1).expect("a mock cluster");
    let brokers = cluster.bootstrap_servers();
    let env = [("WASMLESS_KAFKA_BROKERS", brokers.as_str())];
    let dir = tempdir();
    let test_py = dir.join("test.py");
    std::fs::write(
        &test_py,
        "def foobar(event, context):\n    print(event['data'])\n    return event['data']\n",
    )
    .expect("write");
    let up = Up::start(&[]);
    let (ok, out, err) = up.cli(&[
        "function",
        "deploy",
        "test",
        "--runtime",
        "python3.9",
        "--handler",
        "test.foobar",
        "--from-file",
        test_py.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{out}{err}");
    // pubsub-functions.md, as written (the brokers from the environment).
    // librdkafka's mock broker answers no CreateTopics request (`topic
    // create` times out on it): its own call makes the topic here.
    cluster.create_topic("test-topic", 1, 1).expect("a topic");
    let trigger = Command::new(env!("CARGO_BIN_EXE_wasmless"))
        .args([
            "trigger",
            "kafka",
            "create",
            "test",
            "--function-selector",
            "created-by=kubeless,function=test",
            "--trigger-topic",
            "test-topic",
            "--url",
            &up.url,
        ])
        .envs(env)
        .output()
        .expect("wasmless");
    assert!(trigger.status.success(), "{trigger:?}");
    let (ok, out, _) = up.cli(&["trigger", "kafka", "list"]);
    assert!(ok && out.contains("test-topic"), "{out}");
    // The consumer joins its group before the message, which it reads
    // from the latest offset.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    loop {
        n += 1;
        let data = format!("Hello World! {n}");
        let (ok, out, err) = wasmless(
            &["topic", "publish", "--topic", "test-topic", "--data", &data],
            &env,
        );
        assert!(ok, "{out}{err}");
        let (_, logs, _) = up.cli(&["function", "logs", "test"]);
        if logs.contains("Hello World!") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no message reached test: {}",
            up.log()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let (ok, out, _) = wasmless(&["topic", "ls"], &env);
    assert!(ok && out.contains("test-topic"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sources_come_as_files_archives_urls_and_with_dependencies() {
    let dir = tempdir();
    // A tar.gz of two files: the handler imports its sibling.
    let tarball = dir.join("fn.tar.gz");
    {
        let file = std::fs::File::create(&tarball).expect("create");
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, body) in [
            (
                "main.py",
                "import util\ndef handler(event, context):\n    return util.greet()\n",
            ),
            ("util.py", "def greet():\n    return 'from a tarball'\n"),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, body.as_bytes())
                .expect("append");
        }
        tar.into_inner().expect("tar").finish().expect("gzip");
    }
    let up = Up::start(&[]);
    let (ok, out, err) = up.cli(&[
        "function",
        "deploy",
        "tarred",
        "--runtime",
        "python3.9",
        "--handler",
        "main.handler",
        "--from-file",
        tarball.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{out}{err}");
    assert_eq!(up.get("/tarred").await, (200, "from a tarball".into()));

    // --from-file https?://...: the URL and its checksum, fetched by up.
    let server = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = server.local_addr().expect("address");
    let served = "def handler(event, context):\n    return 'from a URL'\n";
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = server.accept().await else {
                break;
            };
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{served}",
                    served.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    let url = format!("http://{address}/hello.py");
    let (ok, out, err) = up.cli(&[
        "function",
        "deploy",
        "fetched",
        "--runtime",
        "python3.9",
        "--handler",
        "hello.handler",
        "--from-file",
        &url,
    ]);
    assert!(ok, "{out}{err}");
    assert_eq!(up.get("/fetched").await, (200, "from a URL".into()));

    // --dependencies: packed with the source (a requirements file that asks
    // for nothing to fetch, so the test needs no package index).
    let source = dir.join("deps.py");
    std::fs::write(&source, "import os\ndef handler(event, context):\n    return ','.join(sorted(os.listdir('/kubeless')))\n").expect("write");
    let requirements = dir.join("requirements.txt");
    std::fs::write(&requirements, "# nothing to install\n").expect("write");
    let (ok, out, err) = up.cli(&[
        "function",
        "deploy",
        "with-deps",
        "--runtime",
        "python3.9",
        "--handler",
        "deps.handler",
        "--from-file",
        source.to_str().expect("utf-8"),
        "--dependencies",
        requirements.to_str().expect("utf-8"),
    ]);
    assert!(ok, "{out}{err}");
    let (status, body) = up.get("/with-deps").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("deps.py") && body.contains("requirements.txt"),
        "{body}"
    );
}

/// kubeless's own YAML (advanced-function-deployment.md's shape), read by
/// `up` as it is, and printed by `wasmless convert` for a cluster.
#[tokio::test(flavor = "multi_thread")]
async fn kubeless_v1beta1_yaml_runs_under_up_and_converts_for_a_cluster() {
    let dir = tempdir();
    let manifest = dir.join("kubeless.yaml");
    let source = "def foo(event, context):\n    import os\n    return 'hello ' + os.environ.get('GREETING', '?')\n";
    let checksum = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(source.as_bytes()))
    };
    let yaml = format!(
        r#"apiVersion: kubeless.io/v1beta1
kind: Function
metadata:
  name: get-python
  namespace: default
  label:
    created-by: kubeless
    function: get-python
spec:
  runtime: python3.9
  timeout: "180"
  handler: helloget.foo
  deps: ""
  checksum: sha256:{checksum}
  function-content-type: text
  function: |
{indented}
  deployment:
    spec:
      template:
        spec:
          containers:
          - env:
            - name: GREETING
              value: kubeless
            resources:
              limits:
                cpu: 100m
                memory: 100Mi
  service:
    ports:
    - name: http-function-port
      port: 8080
      protocol: TCP
      targetPort: 8080
    selector:
      created-by: kubeless
    type: ClusterIP
  horizontalPodAutoscaler:
    spec:
      minReplicas: 1
      maxReplicas: 3
      metrics:
      - type: Resource
        resource:
          name: cpu
          targetAverageUtilization: 70
---
apiVersion: kubeless.io/v1beta1
kind: HTTPTrigger
metadata:
  name: get-python
spec:
  function-name: get-python
  path: hello
  tls: true
---
apiVersion: kubeless.io/v1beta1
kind: CronJobTrigger
metadata:
  name: get-python
spec:
  function-name: get-python
  schedule: "* * * * * *"
"#,
        indented = source
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    std::fs::write(&manifest, &yaml).expect("write");
    let up = Up::start(&[&manifest]);
    assert_eq!(up.get("/get-python").await, (200, "hello kubeless".into()));
    assert_eq!(up.get("/hello").await, (200, "hello kubeless".into()));
    let (ok, out, _) = up.cli(&["trigger", "ls"]);
    assert!(ok && out.contains("CronTrigger/get-python"), "{out}");
    assert!(
        up.log().contains("note: ") && up.log().contains("document 2: spec.tls"),
        "what is not taken is noted: {}",
        up.log()
    );

    // The same file for kubectl.
    let (ok, out, err) = wasmless(&["convert", "-f", manifest.to_str().expect("utf-8")], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("apiVersion: wasmless.io/v1alpha1"), "{out}");
    assert!(out.contains("kind: CronTrigger"), "{out}");
    assert!(out.contains("targetCpuUtilization: 70"), "{out}");
    // And a kind with no counterpart is refused by name.
    let nats = dir.join("nats.yaml");
    let mut file = std::fs::File::create(&nats).expect("create");
    writeln!(
        file,
        "apiVersion: kubeless.io/v1beta1\nkind: NATSTrigger\nmetadata: {{name: n}}\nspec: {{topic: t}}"
    )
    .expect("write");
    let (ok, _, err) = wasmless(&["convert", "-f", nats.to_str().expect("utf-8")], &[]);
    assert!(
        !ok && err.contains("NATSTrigger has no counterpart"),
        "{err}"
    );
}

const BOTTLE: &str = r#"
def handler(event, context):
    r = event['extensions']['request']
    upload = r.files.get('upload')
    return {
        "method": r.method, "path": r.path, "url": r.url,
        "header": r.get_header('X-Test'), "headers": r.headers.get('X-Test'),
        "query": r.query.get('a'), "all": r.query.getall('a'), "attr": r.query.b,
        "json": r.json, "body": r.body.read().decode(),
        "forms": dict(r.forms),
        "file": None if upload is None else [upload.filename, upload.file.read().decode()],
        "mapping": [r['method'], r['query']],
    }
"#;

const EXPRESS: &str = r#"
module.exports = {
  info: (event) => {
    const req = event.extensions.request;
    return { get: req.get("X-Test"), header: req.header("x-test"), json: req.is("json"),
             text: req.is("text/*"), query: req.query, body: req.body, method: req.method,
             path: req.path, url: req.url };
  },
  send: (event) => {
    const res = event.extensions.response;
    res.status(202).set({ "X-Kind": "sent" });
    res.send({ ok: true });
    return "not this";
  },
  stream: (event) => {
    const res = event.extensions.response;
    const source = {
      pipe(dest) {
        dest.emit("pipe", this);
        for (const chunk of ["a", "b", "c"]) dest.write(chunk);
        dest.end("!");
        return dest;
      },
    };
    res.setHeader("Content-Type", "text/plain");
    source.pipe(res);
  },
};
"#;

#[tokio::test(flavor = "multi_thread")]
async fn kubeless_request_apis_answer_in_python_and_javascript() {
    let dir = tempdir();
    std::fs::write(dir.join("bottle.py"), BOTTLE).expect("write");
    std::fs::write(dir.join("express.js"), EXPRESS).expect("write");
    let up = Up::start(&[]);
    let deploy = |name: &str, runtime: &str, handler: &str, file: &str| {
        let (ok, out, err) = up.cli(&[
            "function",
            "deploy",
            name,
            "--runtime",
            runtime,
            "--handler",
            handler,
            "--from-file",
            dir.join(file).to_str().expect("utf-8"),
        ]);
        assert!(ok, "{out}{err}");
    };
    deploy("bottle", "python3.9", "bottle.handler", "bottle.py");
    for name in ["info", "send", "stream"] {
        deploy(name, "nodejs14", &format!("express.{name}"), "express.js");
    }
    let json = |body: &str| {
        serde_json::from_str::<serde_json::Value>(body).unwrap_or_else(|e| panic!("{e}: {body:?}"))
    };

    let (status, body) = up
        .request_with(
            "POST",
            "/bottle/p/q?a=1&a=2&b=3",
            &[("x-test", "yes"), ("content-type", "application/json")],
            b"{\"k\": 1}",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let got = json(&body);
    assert_eq!(got["method"], "POST");
    assert_eq!(got["path"], "/p/q");
    assert!(
        got["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/p/q?a=1&a=2&b=3")),
        "{got}"
    );
    assert_eq!(got["header"], "yes");
    assert_eq!(got["headers"], "yes");
    assert_eq!(got["query"], "2");
    assert_eq!(got["all"], serde_json::json!(["1", "2"]));
    assert_eq!(got["attr"], "3");
    assert_eq!(got["json"], serde_json::json!({"k": 1}));
    assert_eq!(got["body"], "{\"k\": 1}");
    assert_eq!(got["mapping"], serde_json::json!(["POST", "a=1&a=2&b=3"]));
    let (_, body) = up
        .request_with(
            "POST",
            "/bottle",
            &[("content-type", "application/x-www-form-urlencoded")],
            b"x=1&y=two",
        )
        .await;
    assert_eq!(
        json(&body)["forms"],
        serde_json::json!({"x": "1", "y": "two"})
    );
    let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nada\r\n\
         --XyZ\r\nContent-Disposition: form-data; name=\"upload\"; filename=\"notes.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nhello file\r\n--XyZ--\r\n";
    let (_, body) = up
        .request_with(
            "POST",
            "/bottle",
            &[("content-type", "multipart/form-data; boundary=XyZ")],
            multipart.as_bytes(),
        )
        .await;
    let got = json(&body);
    assert_eq!(got["forms"], serde_json::json!({"name": "ada"}));
    assert_eq!(got["file"], serde_json::json!(["notes.txt", "hello file"]));

    let (status, body) = up
        .request_with(
            "POST",
            "/info/p?a=1&a=2&b=x%20y",
            &[("x-test", "yes"), ("content-type", "application/json")],
            b"{\"k\": 1}",
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let got = json(&body);
    assert_eq!(got["get"], "yes");
    assert_eq!(got["header"], "yes");
    assert_eq!(got["json"], "json");
    assert_eq!(got["text"], false);
    assert_eq!(
        got["query"],
        serde_json::json!({"a": ["1", "2"], "b": "x y"})
    );
    assert_eq!(got["body"], serde_json::json!({"k": 1}));
    assert_eq!(got["url"], "/p?a=1&a=2&b=x%20y");
    let (_, body) = up
        .request_with(
            "POST",
            "/info",
            &[("content-type", "application/x-www-form-urlencoded")],
            b"x=1&y=2",
        )
        .await;
    assert_eq!(json(&body)["body"], serde_json::json!({"x": "1", "y": "2"}));

    let answer = wasmless::client::send(
        http::Method::GET,
        &format!("{}/send", up.url),
        None,
        Vec::new(),
    )
    .await
    .expect("send");
    assert_eq!(answer.status, 202);
    assert_eq!(answer.body.as_ref(), b"{\"ok\":true}");
    let (status, body) = up.get("/stream").await;
    assert_eq!((status, body.as_str()), (200, "abc!"));
}

/// The runtimes ship inside the binary: `up` started outside a checkout,
/// with no runtimes folder, runs Python and JavaScript. CI builds the
/// binary with them (`WASMLESS_EMBED_RUNTIMES`, as a release build does by
/// itself); elsewhere the test says so and stops.
#[tokio::test(flavor = "multi_thread")]
async fn an_installed_binary_runs_python_and_javascript_outside_a_checkout() {
    let elsewhere = tempdir();
    let (ok, out, _) = {
        let out = Command::new(env!("CARGO_BIN_EXE_wasmless"))
            .arg("runtimes")
            .current_dir(&elsewhere)
            .env_remove("WASMLESS_RUNTIMES_DIR")
            .output()
            .expect("wasmless runtimes");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            (),
        )
    };
    assert!(ok, "{out}");
    if !out.contains("built into this binary") {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI builds the binary with its runtimes (WASMLESS_EMBED_RUNTIMES): {out}"
        );
        eprintln!(
            "SKIPPED: this test binary was built without WASMLESS_EMBED_RUNTIMES=runtimes/dist ({out})"
        );
        return;
    }
    std::fs::write(elsewhere.join("hello.py"), HELLOGET).expect("write");
    std::fs::write(
        elsewhere.join("hello.js"),
        "module.exports.foo = () => 'hello from js';\n",
    )
    .expect("write");
    let mut command = Command::new(env!("CARGO_BIN_EXE_wasmless"));
    command
        .args(["up", "--listen", "127.0.0.1:0", "--cache-dir"])
        .arg(tempdir())
        .arg("--state-dir")
        .arg(tempdir())
        .current_dir(&elsewhere)
        .env_remove("WASMLESS_RUNTIMES_DIR");
    let up = Up::spawn(command);
    for (name, runtime, file) in [
        ("py", "python3.9", "hello.py"),
        ("js", "nodejs14", "hello.js"),
    ] {
        let handler = format!("{}.foo", file.split('.').next().expect("a stem"));
        let (ok, out, err) = up.cli(&[
            "function",
            "deploy",
            name,
            "--runtime",
            runtime,
            "--handler",
            &handler,
            "--from-file",
            elsewhere.join(file).to_str().expect("utf-8"),
        ]);
        assert!(ok, "{out}{err}");
    }
    assert_eq!(up.get("/py").await, (200, "hello world".into()));
    assert_eq!(up.get("/js").await, (200, "hello from js".into()));
}
