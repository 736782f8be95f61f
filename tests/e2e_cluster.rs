//! End to end on the real single-node Kubernetes of tests/cluster/ (its own
//! API server, controllers, kubelet, containerd and kube-proxy): wasmless is
//! installed as manifests/ deploys it (the operator's two replicas, its
//! ServiceAccount and RBAC), functions are deployed with the CLI and kubectl
//! and called through the API server and from other pods. In CI the cluster
//! is always there (.ci/run brings it up); elsewhere these tests say that
//! they were skipped unless KUBECONFIG names it.

mod common;

use std::time::Duration;

use common::cluster::Namespace;
use common::wasm;

/// A pod start on this machine takes seconds; a first compile in a debug
/// build more.
const READY: Duration = Duration::from_secs(180);

/// An inline WASI command that writes `text`, as a Function manifest.
fn command_function(name: &str, text: &str, extra: &str) -> String {
    common::manifest_inline(name, &common::wat_writing(text), extra)
}

/// Applies `yaml` in the namespace.
fn apply(ns: &Namespace<'_>, yaml: &str) {
    let dir = common::tempdir();
    let file = dir.join("objects.yaml");
    std::fs::write(&file, yaml).expect("write");
    ns.kubectl_ok(&["apply", "-f", &file.display().to_string()]);
}

/// The Function's Ready condition: (status, reason, message).
fn ready_condition(ns: &Namespace<'_>, name: &str) -> Option<(String, String, String)> {
    let out = ns.kubectl(&[
        "get",
        "function",
        name,
        "-o",
        r#"jsonpath={range .status.conditions[?(@.type=="Ready")]}{.status}{"\t"}{.reason}{"\t"}{.message}{end}"#,
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut parts = text.splitn(3, '\t');
    let status = parts.next().filter(|s| !s.is_empty())?.to_owned();
    Some((
        status,
        parts.next().unwrap_or_default().to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    ))
}

fn wait_ready(ns: &Namespace<'_>, name: &str) {
    ns_eventually(ns, &format!("{name} Ready"), READY, || {
        matches!(ready_condition(ns, name), Some((s, _, _)) if s == "True").then_some(())
    });
}

fn ns_eventually<T>(
    ns: &Namespace<'_>,
    what: &str,
    limit: Duration,
    probe: impl FnMut() -> Option<T>,
) -> T {
    common::cluster::cluster()
        .expect("a cluster")
        .eventually(what, limit, probe, || ns.describe())
}

/// `kubectl get pods` of the namespace's pool, with `args` (a field
/// selector, `-o ...`).
fn get_pool_pods(ns: &Namespace<'_>, args: &[&str]) -> String {
    let mut all = vec!["get", "pods", "-l", "wasmless.io/pool=wasmless-pool"];
    all.extend_from_slice(args);
    ns.kubectl_ok(&all)
}

/// The whole log of the namespace's pool pods.
fn pool_log(ns: &Namespace<'_>) -> String {
    ns.kubectl_ok(&[
        "logs",
        "-l",
        "wasmless.io/pool=wasmless-pool",
        "--tail",
        "-1",
    ])
}

/// `kubectl get OBJECT -o jsonpath=PATH`, when the object exists.
fn jsonpath(ns: &Namespace<'_>, object: &str, path: &str) -> Option<String> {
    let out = ns.kubectl(&["get", object, "-o", &format!("jsonpath={path}")]);
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The Service's cluster IP.
fn cluster_ip(ns: &Namespace<'_>, service: &str) -> String {
    ns.kubectl_ok(&[
        "get",
        "service",
        service,
        "-o",
        "jsonpath={.spec.clusterIP}",
    ])
}

/// Runs a pod of the Python runtime image that POSTs `body` to `url` and
/// returns what it printed: the status and the body.
fn call_from_a_pod(ns: &Namespace<'_>, pod: &str, url: &str, body: &str) -> String {
    call_from_a_pod_with(ns, pod, url, body, &[])
}

/// [`call_from_a_pod`] with request headers; an error status is printed
/// as a success is.
fn call_from_a_pod_with(
    ns: &Namespace<'_>,
    pod: &str,
    url: &str,
    body: &str,
    headers: &[(&str, &str)],
) -> String {
    let headers: std::collections::BTreeMap<&str, &str> = headers.iter().copied().collect();
    let script = format!(
        "import urllib.request as u, urllib.error as e\n\
         try:\n    r = u.urlopen(u.Request({url:?}, data={body:?}.encode(), headers={headers:?}), timeout=20)\n\
         except e.HTTPError as err:\n    r = err\n\
         print(r.status, r.read().decode(), end='')"
    );
    ns.kubectl_ok(&[
        "run",
        pod,
        "--image",
        "ghcr.io/wasmless/runtime-python:0.1.0",
        "--image-pull-policy",
        "Never",
        "--restart",
        "Never",
        "--command",
        "--",
        "python3",
        "-c",
        &script,
    ]);
    ns_eventually(ns, &format!("pod {pod} done"), READY, || {
        let phase = ns.kubectl_ok(&["get", "pod", pod, "-o", "jsonpath={.status.phase}"]);
        matches!(phase.as_str(), "Succeeded" | "Failed").then_some(())
    });
    ns.kubectl_ok(&["logs", pod])
}

#[test]
fn a_wasm_function_deployed_with_the_cli_answers_through_the_api_server_and_its_service() {
    let cluster = cluster_or_skip!("a_wasm_function_deployed_with_the_cli_answers");
    let ns = cluster.namespace("wasm");
    let module = wasm("hello").display().to_string();
    let (ok, out, err) = ns.wasmless(&[
        "function",
        "deploy",
        "hello",
        "--from-file",
        &module,
        "--wait",
        "--wait-timeout",
        "3m",
    ]);
    assert!(ok, "deploy: {out}{err}\n{}", ns.describe());
    // Through the API server's service proxy.
    let (ok, out, err) = ns.wasmless(&["function", "call", "hello", "--data", "cluster"]);
    assert!(ok, "call: {out}{err}\n{}", ns.describe());
    assert_eq!(out, "Hello, cluster!\n");
    // From another pod, to the function's Service (through kube-proxy).
    let url = format!("http://{}:8080/", cluster_ip(&ns, "hello"));
    assert_eq!(
        call_from_a_pod(&ns, "caller", &url, "pod"),
        "200 Hello, pod!\n"
    );
    let (ok, out, err) = ns.wasmless(&["function", "ls"]);
    assert!(ok && out.contains("hello"), "ls: {out}{err}");
}

#[test]
fn an_invalid_function_is_refused_with_its_reason_and_does_not_delay_a_valid_one() {
    let cluster = cluster_or_skip!("an_invalid_function_is_refused");
    let ns = cluster.namespace("invalid");
    apply(
        &ns,
        &(command_function("broken", "never", "  functionContentType: base64\n")
            + &command_function("fine", "fine", "")),
    );
    let (status, reason, message) = ns_eventually(&ns, "broken refused", READY, || {
        ready_condition(&ns, "broken").filter(|(s, _, _)| s == "False")
    });
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "InvalidSpec"),
        "{message}"
    );
    assert!(message.contains("base64"), "{message}");
    let events = ns.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=broken,type=Warning",
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(
        events.contains("InvalidSpec"),
        "events: {events}\n{}",
        ns.describe()
    );
    // The operator makes a new pool Function's Service from its cached
    // copy before it reads the source; refused for its source, it has none.
    ns_eventually(
        &ns,
        "broken without a Service",
        Duration::from_secs(30),
        || {
            let found = ns.kubectl(&["get", "service", "broken", "-o", "name"]);
            (!found.status.success()).then_some(())
        },
    );
    wait_ready(&ns, "fine");
    // A name that would break its Service is refused by the API server.
    let dir = common::tempdir();
    let file = dir.join("digit.yaml");
    std::fs::write(&file, command_function("9lives", "x", "")).expect("write");
    let refused = ns.kubectl(&["apply", "-f", &file.display().to_string()]);
    let said = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(
        !refused.status.success(),
        "a name starting with a digit was stored"
    );
    assert!(said.contains("starting with a letter"), "{said}");
    let (ok, out, err) = ns.wasmless(&["function", "call", "fine"]);
    assert!(ok, "call: {out}{err}");
    assert_eq!(out, "fine");
}

#[test]
fn kubectl_scale_gives_a_function_three_ready_pods() {
    let cluster = cluster_or_skip!("kubectl_scale_gives_a_function_three_ready_pods");
    let ns = cluster.namespace("scale");
    apply(&ns, &command_function("scaled", "scaled", ""));
    wait_ready(&ns, "scaled");
    // The schema defaults spec.replicas, so /scale (what an HPA or KEDA
    // reads) says 1 rather than nothing.
    let scale = cluster.kubectl_ok(&[
        "get",
        "--raw",
        &format!(
            "/apis/wasmless.io/v1alpha1/namespaces/{}/functions/scaled/scale",
            ns.name
        ),
    ]);
    let scale: serde_json::Value = serde_json::from_str(&scale).expect("a Scale");
    assert_eq!(scale["spec"]["replicas"], 1, "{scale}");
    let hosting = || {
        jsonpath(
            &ns,
            "function/scaled",
            "{.status.placement.hosting} {.status.placement.hostingReason}",
        )
    };
    assert_eq!(hosting().as_deref(), Some("Pool Default"));
    // More than one replica needs pods of its own: it moves to a
    // Deployment of its own, and its status says why.
    ns.kubectl_ok(&["scale", "function/scaled", "--replicas=3"]);
    ns_eventually(&ns, "three ready pods", READY, || {
        let ready = ns.kubectl_ok(&[
            "get",
            "function",
            "scaled",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ]);
        (ready == "3").then_some(())
    });
    let pods = ns.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "function=scaled",
        "--field-selector",
        "status.phase=Running",
        "-o",
        "name",
    ]);
    assert_eq!(pods.lines().count(), 3, "{pods}\n{}", ns.describe());
    assert_eq!(hosting().as_deref(), Some("Dedicated PodSettings"));
    let (ok, out, err) = ns.wasmless(&["function", "call", "scaled"]);
    assert!(ok && out == "scaled", "call: {out}{err}");
}

#[test]
fn pool_functions_share_one_pod_and_a_new_source_reaches_it_without_a_new_pod() {
    let cluster = cluster_or_skip!("pool_functions_share_one_pod");
    let ns = cluster.namespace("pool");
    apply(
        &ns,
        &(command_function("one", "one v1", "")
            + "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: two}\nspec:\n  runtime: python3.x\n  handler: two.handler\n  function: |\n    def handler(event, context):\n        print('two got', event['data'], flush=True)\n        return 'two: %s %s' % (event['data'], event['extensions']['request']['path'])\n"),
    );
    wait_ready(&ns, "one");
    wait_ready(&ns, "two");
    let placement = ns.kubectl_ok(&[
        "get",
        "function",
        "-o",
        "jsonpath={.items[*].status.placement.hosting}",
    ]);
    assert_eq!(placement, "Pool Pool", "{}", ns.describe());
    let pool_pods = || {
        get_pool_pods(
            &ns,
            &[
                "-o",
                "jsonpath={range .items[*]}{.metadata.uid}:{.status.containerStatuses[0].restartCount}{\"\\n\"}{end}",
            ],
        )
    };
    let pods = pool_pods();
    assert_eq!(
        pods.lines().count(),
        1,
        "one pool pod serves both: {pods}\n{}",
        ns.describe()
    );
    // No pod of their own.
    let own = ns.kubectl_ok(&["get", "pods", "-l", "function", "-o", "name"]);
    assert!(own.trim().is_empty(), "{own}");
    // Through the API server's service proxy (the CLI), each by its name.
    let (ok, out, err) = ns.wasmless(&["function", "call", "one"]);
    assert!(
        ok && out == "one v1",
        "call one: {out}{err}\n{}",
        ns.describe()
    );
    let (ok, out, err) = ns.wasmless(&["function", "call", "two", "--data", "proxy"]);
    assert!(
        ok && out == "two: proxy /",
        "call two: {out}{err}\n{}",
        ns.describe()
    );
    // From a pod, by each Service's DNS name, at any path.
    let url = format!("http://two.{}.svc.cluster.local:8080/orders/7", ns.name);
    assert_eq!(
        call_from_a_pod(&ns, "caller", &url, "pod"),
        "200 two: pod /orders/7"
    );
    // A new source reaches the pool without a new pod.
    apply(&ns, &command_function("one", "one v2", ""));
    ns_eventually(&ns, "one v2 answers", READY, || {
        (ns.wasmless(&["function", "call", "one"]).1 == "one v2").then_some(())
    });
    assert_eq!(pool_pods(), pods, "the same pool pod, never restarted");
    // Each function's own lines from the pool's log.
    let (ok, out, err) = ns.wasmless(&["function", "logs", "two"]);
    assert!(ok && out.contains("two got proxy"), "logs: {out}{err}");
    assert!(!out.contains("function=one"), "only two's lines: {out}");
    // A Function that opts into instance reuse has the pool serve its
    // events in one instance, up to its bound.
    apply(
        &ns,
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: three}\nspec:\n  runtime: python3.x\n  handler: three.handler\n  instanceReuse: {maxEvents: 2}\n  function: |\n    calls = 0\n    def handler(event, context):\n        global calls\n        calls += 1\n        return str(calls)\n",
    );
    wait_ready(&ns, "three");
    // Created while the pool runs: loaded ahead of its first event (while
    // its Service was made), not on it.
    ns_eventually(&ns, "three loaded ahead", READY, || {
        let log = pool_log(&ns);
        log.lines()
            .any(|l| l.contains("loaded ahead of its first event") && l.contains("function=three"))
            .then_some(())
    });
    let counts: Vec<String> = (0..3)
        .map(|_| {
            let (ok, out, err) = ns.wasmless(&["function", "call", "three"]);
            assert!(ok, "call three: {out}{err}\n{}", ns.describe());
            out
        })
        .collect();
    assert_eq!(counts, ["1", "2", "1"], "{}", ns.describe());
    ns.kubectl_ok(&["delete", "function", "three", "--wait=true"]);
    // A deleted function is gone from the pool too, and a request that
    // names no function of it says what the pool is.
    ns.kubectl_ok(&["delete", "function", "one", "--wait=true"]);
    ns_eventually(&ns, "one removed from the pool", READY, || {
        let log = pool_log(&ns);
        log.contains("removed from the pool function=one")
            .then_some(())
    });
    let pool = get_pool_pods(&ns, &["-o", "jsonpath={.items[0].status.podIP}"]);
    let direct = format!("http://{pool}:8080/");
    let answer = call_from_a_pod_with(&ns, "gone", &direct, "x", &[("wasmless-function", "one")]);
    assert!(
        answer.starts_with("404 no function named `one`"),
        "{answer}"
    );
    let answer = call_from_a_pod(&ns, "nameless", &direct, "x");
    assert!(
        answer.starts_with("404 this is the wasmless pool of namespace"),
        "{answer}"
    );

    // The namespace sizes its pool: two pods at least, an HPA up to three.
    ns.kubectl_ok(&[
        "create",
        "configmap",
        "wasmless-pool",
        "--from-literal=replicas=2",
        "--from-literal=maxReplicas=3",
    ]);
    ns_eventually(&ns, "the pool's autoscaler", READY, || {
        jsonpath(
            &ns,
            "hpa/wasmless-pool",
            "{.spec.minReplicas} {.spec.maxReplicas}",
        )
        .filter(|r| r == "2 3")
    });
    ns_eventually(&ns, "two pool pods ready", READY, || {
        jsonpath(&ns, "deployment/wasmless-pool", "{.status.readyReplicas}").filter(|r| r == "2")
    });
    // A pool Function's Service selects no pods: the operator lists the
    // pool's pods in its Endpoints, and follows them when one goes.
    assert_eq!(
        jsonpath(&ns, "service/two", "{.spec.selector}").as_deref(),
        Some(""),
        "{}",
        ns.describe()
    );
    let ready_pool_ips = || {
        let pods = get_pool_pods(
            &ns,
            &[
                "-o",
                "jsonpath={range .items[*]}{.metadata.deletionTimestamp}/{.status.podIP}/{.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
            ],
        );
        let mut ips: Vec<String> = pods
            .lines()
            .filter_map(|l| {
                let mut parts = l.split('/');
                let (deleting, ip, ready) = (parts.next()?, parts.next()?, parts.next()?);
                (deleting.is_empty() && !ip.is_empty() && ready == "True").then(|| ip.to_owned())
            })
            .collect();
        ips.sort();
        ips
    };
    let endpoint_ips = || {
        let mut ips: Vec<String> = jsonpath(&ns, "endpoints/two", "{.subsets[*].addresses[*].ip}")
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        ips.sort();
        ips
    };
    let before = ns_eventually(&ns, "two's Endpoints list both pool pods", READY, || {
        let pods = ready_pool_ips();
        (pods.len() == 2 && endpoint_ips() == pods).then_some(pods)
    });
    let url = format!("http://two.{}.svc.cluster.local:8080/both", ns.name);
    assert_eq!(
        call_from_a_pod(&ns, "caller-both", &url, "pod"),
        "200 two: pod /both"
    );
    let victim = get_pool_pods(
        &ns,
        &[
            "--field-selector",
            &format!("status.podIP={}", before[0]),
            "-o",
            "name",
        ],
    );
    ns.kubectl_ok(&["delete", victim.trim(), "--wait=false"]);
    ns_eventually(
        &ns,
        "two's Endpoints follow the replaced pool pod",
        READY,
        || {
            let pods = ready_pool_ips();
            let endpoints = endpoint_ips();
            (pods.len() == 2 && !pods.contains(&before[0]) && endpoints == pods).then_some(())
        },
    );
    let (ok, out, err) = ns.wasmless(&["function", "call", "two", "--data", "after"]);
    assert!(
        ok && out == "two: after /",
        "call two after a pool pod went: {out}{err}\n{}",
        ns.describe()
    );
    assert_eq!(
        call_from_a_pod(&ns, "caller-after", &url, "pod"),
        "200 two: pod /both"
    );
    // A mistake in it is reported on it.
    ns.kubectl_ok(&[
        "patch",
        "configmap",
        "wasmless-pool",
        "-p",
        r#"{"data":{"size":"2"}}"#,
    ]);
    ns_eventually(&ns, "a Warning about the pool's settings", READY, || {
        let events = ns.kubectl_ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=wasmless-pool,involvedObject.kind=ConfigMap,type=Warning",
            "-o",
            "jsonpath={.items[*].message}",
        ]);
        events.contains("unknown key `size`").then_some(())
    });
    // With no pool Function left, the pool goes.
    ns.kubectl_ok(&["delete", "function", "two", "--wait=true"]);
    ns_eventually(
        &ns,
        "the unused pool deleted",
        Duration::from_secs(240),
        || {
            let left = ns.kubectl_ok(&[
                "get",
                "deployments,serviceaccounts,rolebindings",
                "-o",
                "name",
            ]);
            (!left.contains("wasmless-pool")).then_some(())
        },
    );
}

#[test]
fn changing_the_source_rolls_the_pods_and_deleting_the_function_collects_its_objects() {
    let cluster = cluster_or_skip!("changing_the_source_rolls_the_pods");
    let ns = cluster.namespace("roll");
    let dedicated = "  placement: Dedicated\n";
    apply(&ns, &command_function("rolled", "v1", dedicated));
    wait_ready(&ns, "rolled");
    let call = || ns.wasmless(&["function", "call", "rolled"]);
    assert_eq!(call().1, "v1");
    apply(&ns, &command_function("rolled", "v2", dedicated));
    ns_eventually(&ns, "v2 answers", READY, || {
        (call().1 == "v2").then_some(())
    });

    ns.kubectl_ok(&["delete", "function", "rolled", "--wait=true"]);
    ns_eventually(&ns, "owned objects collected", READY, || {
        let left = ns.kubectl_ok(&[
            "get",
            "deployments,services,configmaps,pods",
            "-l",
            "function=rolled",
            "-o",
            "name",
        ]);
        left.trim().is_empty().then_some(())
    });
}

/// Puts the CRDs of manifests/ back when dropped.
struct RestoreCrds<'a>(&'a common::cluster::Installed);

impl Drop for RestoreCrds<'_> {
    fn drop(&mut self) {
        let crds = common::root().join("manifests/crds.yaml");
        let _ = self.0.kubectl(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            &crds.display().to_string(),
        ]);
    }
}

#[test]
fn an_object_the_operator_cannot_decode_is_reported_and_does_not_stop_the_others() {
    let cluster = cluster_or_skip!("an_object_the_operator_cannot_decode");
    let ns = cluster.namespace("undecodable");
    // The schema bounds every number, so the API server refuses it ...
    let huge =
        common::manifest_inline("huge", &common::wat_writing("huge"), "  port: 3000000000\n");
    let dir = common::tempdir();
    std::fs::write(dir.join("huge.yaml"), &huge).expect("write");
    let refused = ns.kubectl(&["apply", "-f", &dir.join("huge.yaml").display().to_string()]);
    let said = String::from_utf8_lossy(&refused.stderr).into_owned();
    assert!(!refused.status.success(), "a port out of range was stored");
    assert!(
        said.contains("spec.port") && said.contains("65535"),
        "{said}"
    );

    // ... but a CRD without the bounds and formats (one from before, or
    // from elsewhere) stores it: such an object must not stop the operator.
    let restore = RestoreCrds(cluster);
    let schema = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties";
    cluster.kubectl_ok(&[
        "patch",
        "crd",
        "functions.wasmless.io",
        "--type=json",
        "-p",
        &format!(
            r#"[{{"op":"remove","path":"{schema}/port/maximum"}},{{"op":"remove","path":"{schema}/port/format"}}]"#
        ),
    ]);
    cluster.kubectl_ok(&[
        "patch",
        "crd",
        "kafkatriggers.wasmless.io",
        "--type=json",
        "-p",
        &format!(
            r#"[{{"op":"remove","path":"{schema}/maxInFlight/maximum"}},{{"op":"remove","path":"{schema}/maxInFlight/format"}}]"#
        ),
    ]);
    ns_eventually(&ns, "the unbounded CRD in effect", READY, || {
        ns.kubectl(&["apply", "-f", &dir.join("huge.yaml").display().to_string()])
            .status
            .success()
            .then_some(())
    });
    apply(
        &ns,
        "apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata: {name: flood}\nspec: {brokers: 'k:9092', topic: t, function: after, maxInFlight: 5000000000}\n",
    );
    drop(restore);

    // A valid Function created after them, in the same namespace (whose
    // Kafka triggers every Function's reconcile lists), becomes Ready.
    apply(&ns, &command_function("after", "after", ""));
    wait_ready(&ns, "after");
    let (ok, out, err) = ns.wasmless(&["function", "call", "after"]);
    assert!(ok, "call: {out}{err}");
    assert_eq!(out, "after");

    // The undecodable one says why, on itself.
    let (status, reason, message) = ns_eventually(&ns, "huge reported", READY, || {
        ready_condition(&ns, "huge").filter(|(s, _, _)| s == "False")
    });
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "InvalidObject"),
        "{message}"
    );
    assert!(
        message.contains("replicas") || message.contains("3000000000"),
        "{message}"
    );
    let events = ns.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=huge,type=Warning",
        "-o",
        "jsonpath={.items[*].reason}",
    ]);
    assert!(
        events.contains("InvalidObject"),
        "events: {events}\n{}",
        ns.describe()
    );
}

#[test]
fn a_function_on_its_image_answers_and_function_logs_shows_its_output() {
    let cluster = cluster_or_skip!("a_function_on_its_image_answers");
    let ns = cluster.namespace("image");
    apply(
        &ns,
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: pyimage}\nspec:\n  runtime: python3.x\n  handler: hello.handler\n  image: ghcr.io/wasmless/runtime-python:0.1.0\n  function: |\n    def handler(event, context):\n        print('handled', event['data'], flush=True)\n        return 'from the image'\n",
    );
    wait_ready(&ns, "pyimage");
    let placement = ns.kubectl_ok(&[
        "get",
        "function",
        "pyimage",
        "-o",
        "jsonpath={.status.placement.path}",
    ]);
    assert_eq!(placement, "image");
    let (ok, out, err) = ns.wasmless(&["function", "call", "pyimage", "--data", "marker-42"]);
    assert!(ok, "call: {out}{err}\n{}", ns.describe());
    assert_eq!(out, "from the image");
    // The pod has the wasmless host and the runtime; logs shows the
    // function's own output by default.
    let logs = ns_eventually(&ns, "the function's output in its logs", READY, || {
        let (ok, out, _) = ns.wasmless(&["function", "logs", "pyimage"]);
        (ok && out.contains("handled marker-42")).then_some(out)
    });
    assert!(logs.contains("==> pyimage-"), "{logs}");
    let (ok, out, err) = ns.wasmless(&["function", "logs", "pyimage", "-c", "function"]);
    assert!(ok, "logs -c function: {out}{err}");
    assert!(!out.contains("handled marker-42"), "{out}");
}

#[test]
fn an_http_trigger_makes_an_ingress_and_with_the_gateway_api_an_http_route() {
    let cluster = cluster_or_skip!("an_http_trigger_makes_an_ingress");
    let ns = cluster.namespace("http");
    apply(
        &ns,
        &(command_function("web", "web", "")
            + "apiVersion: wasmless.io/v1alpha1\nkind: HTTPTrigger\nmetadata: {name: web-ingress}\nspec: {function: web, host: web.example.test, path: /}\n"),
    );
    let backend = ns_eventually(&ns, "the Ingress", READY, || {
        jsonpath(
            &ns,
            "ingress/web-ingress",
            "{.spec.rules[0].host} {.spec.rules[0].http.paths[0].backend.service.name}:{.spec.rules[0].http.paths[0].backend.service.port.number}",
        )
    });
    assert_eq!(backend, "web.example.test web:8080");
    // Not Ready until an ingress controller serves it (this cluster has
    // none); when one writes the address it serves on, it is.
    let trigger_ready = |name: &str| {
        jsonpath(
            &ns,
            &format!("httptrigger/{name}"),
            r#"{.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].reason}"#,
        )
    };
    ns_eventually(&ns, "the trigger waiting for an address", READY, || {
        (trigger_ready("web-ingress").as_deref() == Some("False WaitingForAddress")).then_some(())
    });
    ns.kubectl_ok(&[
        "patch",
        "ingress",
        "web-ingress",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"loadBalancer":{"ingress":[{"ip":"198.18.0.1"}]}}}"#,
    ]);
    ns_eventually(&ns, "the trigger exposed", READY, || {
        (trigger_ready("web-ingress").as_deref() == Some("True Exposed")).then_some(())
    });

    // With the Gateway API's CRDs (from its Go module) installed, a trigger
    // naming a Gateway gets an HTTPRoute attached to it.
    let crds = std::process::Command::new("bash")
        .arg(common::root().join("tests/cluster/gateway-api.sh"))
        .output()
        .expect("running gateway-api.sh");
    assert!(
        crds.status.success(),
        "{}",
        String::from_utf8_lossy(&crds.stderr)
    );
    let crds = String::from_utf8_lossy(&crds.stdout).trim().to_owned();
    cluster.kubectl_ok(&["apply", "--server-side", "-f", &crds]);
    // Right after the apply the CRD may have no conditions yet, which
    // `kubectl wait` takes for an error: ask until it is Established.
    ns_eventually(&ns, "the HTTPRoute CRD established", READY, || {
        let established = cluster.kubectl(&[
            "get",
            "crd/httproutes.gateway.networking.k8s.io",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
        ]);
        (String::from_utf8_lossy(&established.stdout) == "True").then_some(())
    });
    apply(
        &ns,
        &format!(
            "apiVersion: wasmless.io/v1alpha1\nkind: HTTPTrigger\nmetadata: {{name: web-route}}\nspec: {{function: web, host: web.example.test, path: /api, gateway: {{name: edge, namespace: {}}}}}\n",
            ns.name
        ),
    );
    let route = ns_eventually(&ns, "the HTTPRoute", READY, || {
        jsonpath(
            &ns,
            "httproute/web-route",
            "{.spec.parentRefs[0].name} {.spec.hostnames[0]} {.spec.rules[0].backendRefs[0].name}:{.spec.rules[0].backendRefs[0].port}",
        )
    });
    assert_eq!(route, "edge web.example.test web:8080");
    // Ready once its Gateway's controller accepts the route.
    ns_eventually(&ns, "the trigger waiting for its Gateway", READY, || {
        (trigger_ready("web-route").as_deref() == Some("False WaitingForGateway")).then_some(())
    });
    ns.kubectl_ok(&[
        "patch",
        "httproute",
        "web-route",
        "--subresource=status",
        "--type=merge",
        "-p",
        &format!(
            r#"{{"status":{{"parents":[{{"parentRef":{{"name":"edge","namespace":"{}"}},"controllerName":"example.test/gateway","conditions":[{{"type":"Accepted","status":"True","reason":"Accepted","message":"","lastTransitionTime":"2026-12-01T00:00:00Z","observedGeneration":1}}]}}]}}}}"#,
            ns.name
        ),
    ]);
    ns_eventually(
        &ns,
        "the trigger exposed through its Gateway",
        READY,
        || (trigger_ready("web-route").as_deref() == Some("True Exposed")).then_some(()),
    );
    // The route is owned by its trigger: deleting the trigger removes it.
    ns.kubectl_ok(&["delete", "httptrigger", "web-route", "--wait=true"]);
    ns_eventually(&ns, "the HTTPRoute collected", READY, || {
        let out = ns.kubectl(&["get", "httproute", "web-route"]);
        (!out.status.success()).then_some(())
    });
}

#[test]
fn namespace_users_with_edit_manage_functions_and_with_view_read_them() {
    let cluster = cluster_or_skip!("namespace_users_with_edit_manage_functions");
    let ns = cluster.namespace("rbac");
    ns.kubectl_ok(&[
        "create",
        "rolebinding",
        "alice-edit",
        "--clusterrole=edit",
        "--user=alice",
    ]);
    ns.kubectl_ok(&[
        "create",
        "rolebinding",
        "bob-view",
        "--clusterrole=view",
        "--user=bob",
    ]);
    let can = |user: &str, verb: &str, resource: &str| {
        ns.kubectl(&["auth", "can-i", verb, resource, "--as", user])
            .status
            .success()
    };
    // The aggregation controller folds our roles into edit and view.
    ns_eventually(&ns, "edit and view aggregated", READY, || {
        (can("alice", "create", "functions.wasmless.io")
            && can("bob", "list", "crontriggers.wasmless.io"))
        .then_some(())
    });
    assert!(can("alice", "delete", "kafkatriggers.wasmless.io"));
    assert!(can("alice", "update", "functions.wasmless.io/scale"));
    assert!(can("bob", "get", "functions.wasmless.io"));
    assert!(!can("bob", "create", "functions.wasmless.io"));
    assert!(!can("bob", "delete", "httptriggers.wasmless.io"));
    // Alice deploys a function of her own, and it runs.
    let dir = common::tempdir();
    let file = dir.join("alice.yaml");
    std::fs::write(&file, command_function("alices", "hers", "")).expect("write");
    ns.kubectl_ok(&["apply", "-f", &file.display().to_string(), "--as", "alice"]);
    wait_ready(&ns, "alices");
}

#[test]
fn a_users_image_that_runs_as_root_runs_as_its_dockerfile_says() {
    let cluster = cluster_or_skip!("a_users_image_that_runs_as_root");
    let ns = cluster.namespace("asimage");
    let function = |name: &str, extra: &str| {
        format!(
            "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  runtime: python3.x\n  handler: who.handler\n  image: wasmless.test/python-root:1\n{extra}  function: |\n    import os\n    def handler(event, context):\n        with open('/written-by-the-function', 'w') as f:\n            f.write('x')\n        return 'uid %d, root file system writable' % os.getuid()\n---\n"
        )
    };
    // An image without a USER line: root, and a file system it writes to.
    apply(
        &ns,
        &(function("rooted", "") + &function("strict", "  imageSecurity: Restricted\n")),
    );
    wait_ready(&ns, "rooted");
    let (ok, out, err) = ns.wasmless(&["function", "call", "rooted"]);
    assert!(ok, "call: {out}{err}\n{}", ns.describe());
    assert_eq!(out, "uid 0, root file system writable");
    // Asked to be restricted, the same image is refused by the kubelet (it
    // would run as root), and the Function says it is not available.
    ns_eventually(&ns, "the restricted pod refused", READY, || {
        let reasons = ns.kubectl_ok(&[
            "get",
            "pods",
            "-l",
            "function=strict",
            "-o",
            "jsonpath={.items[*].status.containerStatuses[*].state.waiting.reason}",
        ]);
        reasons.contains("CreateContainerConfigError").then_some(())
    });
}

/// The operator pod holding the cron Lease.
fn cron_leader(cluster: &common::cluster::Installed) -> String {
    cluster.kubectl_ok(&[
        "-n",
        "wasmless",
        "get",
        "lease",
        "wasmless-operator",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ])
}

/// The tick times the function printed (`tick beat TIME`), in the order
/// of its pods' logs.
fn ticks_logged(ns: &Namespace<'_>, function: &str) -> Vec<String> {
    let (ok, out, _) = ns.wasmless(&["function", "logs", function]);
    if !ok {
        return Vec::new();
    }
    out.lines()
        .filter_map(|l| l.split_once("tick beat "))
        .filter_map(|(_, rest)| rest.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn cron_ticks_reach_the_function_and_go_on_when_the_lease_holder_dies() {
    let cluster = cluster_or_skip!("cron_ticks_reach_the_function");
    let ns = cluster.namespace("cron");
    apply(
        &ns,
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: ticker}\nspec:\n  runtime: python3.x\n  handler: ticker.handler\n  function: |\n    def handler(event, context):\n        print('tick', event['data'], event['event-time'], flush=True)\n        return 'ok'\n---\napiVersion: wasmless.io/v1alpha1\nkind: CronTrigger\nmetadata: {name: every-second}\nspec:\n  function: ticker\n  schedule: '* * * * * *'\n  payload: beat\n",
    );
    wait_ready(&ns, "ticker");
    // ticker is served by the namespace's pool: the ticks go to its
    // Service, which selects the pool's pods.
    assert_eq!(
        jsonpath(&ns, "function/ticker", "{.status.placement.hosting}").as_deref(),
        Some("Pool"),
        "{}",
        ns.describe()
    );
    // The leader posts each tick to ticker.NAMESPACE.svc.cluster.local:
    // the cluster's DNS, its Service and kube-proxy on the way.
    ns_eventually(&ns, "three ticks in the function's logs", READY, || {
        (ticks_logged(&ns, "ticker").len() >= 3).then_some(())
    });
    for tick in ticks_logged(&ns, "ticker") {
        chrono::DateTime::parse_from_rfc3339(&tick).expect("the tick's time as event-time");
    }
    // The last tick is kept where the next leader finds it.
    let last = ns_eventually(&ns, "status.lastScheduleTime", READY, || {
        jsonpath(
            &ns,
            "crontrigger/every-second",
            "{.status.lastScheduleTime}",
        )
        .filter(|t| !t.is_empty())
    });
    chrono::DateTime::parse_from_rfc3339(&last).expect("an RFC 3339 time");

    // Kill the Lease's holder: the other replica takes the Lease and the
    // ticks go on.
    let leader = cron_leader(cluster);
    assert!(leader.starts_with("wasmless-operator-"), "{leader:?}");
    cluster.kubectl_ok(&[
        "-n",
        "wasmless",
        "delete",
        "pod",
        &leader,
        "--grace-period=0",
        "--force",
        "--wait=false",
    ]);
    let before = ticks_logged(&ns, "ticker").len();
    let successor = ns_eventually(&ns, "another replica holding the cron Lease", READY, || {
        let holder = cron_leader(cluster);
        (!holder.is_empty() && holder != leader).then_some(holder)
    });
    let taken_over = ticks_logged(&ns, "ticker").len();
    assert!(taken_over >= before, "{taken_over} < {before}");
    ns_eventually(&ns, "ticks from the new leader", READY, || {
        (ticks_logged(&ns, "ticker").len() >= taken_over + 3).then_some(())
    });
    // Each tick time reached the function; a new leader starts from the
    // last recorded tick, so it repeats at most the one in flight.
    let lines = ticks_logged(&ns, "ticker");
    let distinct: std::collections::BTreeSet<&String> = lines.iter().collect();
    assert!(
        lines.len() - distinct.len() <= 1,
        "ticks repeated after {leader} gave way to {successor}: {lines:?}"
    );
}

/// Copies `from` to `to` on a thread of its own until `from` ends.
fn pipe(mut from: std::net::TcpStream, mut to: std::net::TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Write);
    });
}

/// A Kafka-protocol broker that the pods reach: librdkafka's mock cluster
/// (which listens on loopback only) behind a forwarder on the node's
/// address, and advertised there, so that metadata sends clients back to
/// it. The producer owns the broker; it lives as long as the value.
struct PodBroker {
    producer: rdkafka::producer::BaseProducer,
    /// `198.18.0.1:PORT`.
    address: String,
}

impl PodBroker {
    // One FFI call: librdkafka's mock cluster has no safe setter for the
    // address it advertises.
    #[allow(unsafe_code)]
    fn start() -> PodBroker {
        use rdkafka::ClientConfig;
        use rdkafka::producer::Producer as _;
        let producer: rdkafka::producer::BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .set("message.timeout.ms", "30000")
            .create()
            .expect("a producer with its mock broker");
        let mock = producer.client().mock_cluster().expect("its mock cluster");
        let loopback = mock.bootstrap_servers();
        let forwarder = std::net::TcpListener::bind("198.18.0.1:0")
            .expect("a port on the test cluster's bridge");
        let port = forwarder.local_addr().expect("its address").port();
        std::thread::spawn(move || {
            for client in forwarder.incoming().flatten() {
                let Ok(broker) = std::net::TcpStream::connect(&loopback) else {
                    continue;
                };
                let (Ok(client_reads), Ok(broker_writes)) =
                    (client.try_clone(), broker.try_clone())
                else {
                    continue;
                };
                pipe(client_reads, broker_writes);
                pipe(broker, client);
            }
        });
        let host = std::ffi::CString::new("198.18.0.1").expect("no NUL");
        // SAFETY: the mock cluster belongs to `producer`, which outlives
        // this call; librdkafka copies the host name.
        unsafe {
            rdkafka::bindings::rd_kafka_mock_broker_set_host_port(
                rdkafka::bindings::rd_kafka_handle_mock_cluster(producer.client().native_ptr()),
                1,
                host.as_ptr(),
                i32::from(port),
            );
        }
        mock.create_topic("orders", 2, 1).expect("a topic");
        drop(mock);
        PodBroker {
            producer,
            address: format!("198.18.0.1:{port}"),
        }
    }

    /// Publishes `data` to `topic` and waits until the broker has it.
    fn publish(&self, topic: &str, keys_and_data: &[(String, String)]) {
        use rdkafka::producer::{BaseRecord, Producer as _};
        for (key, data) in keys_and_data {
            self.producer
                .send(BaseRecord::to(topic).key(key).payload(data))
                .map_err(|(e, _)| e)
                .expect("queued");
        }
        self.producer
            .flush(Duration::from_secs(30))
            .expect("every message acknowledged");
    }
}

#[test]
fn a_kafka_trigger_delivers_every_message_in_the_pool_and_in_dedicated_pods() {
    let cluster = cluster_or_skip!("a_kafka_trigger_delivers_every_message");
    let ns = cluster.namespace("kafka");
    let broker = PodBroker::start();
    let consumer = |name: &str, extra: &str| {
        format!(
            "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {{name: {name}, labels: {{role: sink}}}}\nspec:\n  runtime: python3.x\n  handler: {name}.handler\n{extra}  function: |\n    def handler(event, context):\n        print('got', event['data'], flush=True)\n        return 'ok'\n"
        )
    };
    // `consumer` is served by the namespace's pool, which runs the
    // consumer of `orders` for it; `auditor` has a pod of its own, whose
    // host runs the consumer of `audit` (a selector) for it.
    apply(
        &ns,
        &format!(
            "{}---\n{}---\napiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata: {{name: orders}}\nspec:\n  brokers: {brokers}\n  topic: orders\n  function: consumer\n  startFrom: earliest\n---\napiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata: {{name: audit}}\nspec:\n  brokers: {brokers}\n  topic: orders\n  functionSelector: {{matchLabels: {{role: sink}}}}\n  startFrom: earliest\n",
            consumer("consumer", ""),
            consumer("auditor", "  placement: Dedicated\n"),
            brokers = broker.address
        ),
    );
    wait_ready(&ns, "consumer");
    wait_ready(&ns, "auditor");
    let hosting = |name: &str| {
        jsonpath(
            &ns,
            &format!("function/{name}"),
            "{.status.placement.hosting}",
        )
    };
    assert_eq!(
        hosting("consumer").as_deref(),
        Some("Pool"),
        "{}",
        ns.describe()
    );
    assert_eq!(
        hosting("auditor").as_deref(),
        Some("Dedicated"),
        "{}",
        ns.describe()
    );
    // The trigger reaches auditor's ConfigMap after its first version, so
    // its pod is replaced once: publish when only the new one is left (an
    // old pod that consumed the messages would take its log with it).
    ns.kubectl_ok(&["rollout", "status", "deployment/auditor", "--timeout=180s"]);
    ns_eventually(&ns, "one auditor pod left", READY, || {
        let pods = ns.kubectl_ok(&["get", "pods", "-l", "function=auditor", "-o", "name"]);
        (pods.lines().count() == 1).then_some(())
    });
    const N: usize = 30;
    let messages: Vec<(String, String)> = (0..N)
        .map(|i| (format!("key-{}", i % 5), format!("order-{i}")))
        .collect();
    broker.publish("orders", &messages);
    // Every message reaches each function at least once per group:
    // `consumer` twice (by name and by the selector, two groups), `auditor`
    // once (the selector's group for it).
    let each_delivered = |name: &str, copies: usize| {
        ns_eventually(
            &ns,
            &format!("every message in {name}'s logs {copies}×"),
            READY,
            || {
                let (ok, out, _) = ns.wasmless(&["function", "logs", name]);
                let mut seen: std::collections::BTreeMap<String, usize> = Default::default();
                for data in out
                    .lines()
                    .filter_map(|l| l.split_once("got "))
                    .filter_map(|(_, rest)| rest.split_whitespace().next())
                {
                    *seen.entry(data.to_owned()).or_default() += 1;
                }
                let all = messages
                    .iter()
                    .all(|(_, data)| seen.get(data).is_some_and(|n| *n >= copies));
                (ok && all).then_some(seen)
            },
        )
    };
    let in_pool = each_delivered("consumer", 2);
    let in_pod = each_delivered("auditor", 1);
    assert_eq!(in_pool.len(), N, "only the messages sent: {in_pool:?}");
    assert_eq!(in_pod.len(), N, "only the messages sent: {in_pod:?}");
    for trigger in ["orders", "audit"] {
        let ready = jsonpath(
            &ns,
            &format!("kafkatrigger/{trigger}"),
            r#"{.status.conditions[?(@.type=="Ready")].status}"#,
        );
        assert_eq!(ready.as_deref(), Some("True"), "{}", ns.describe());
    }
    let message = jsonpath(
        &ns,
        "kafkatrigger/audit",
        r#"{.status.conditions[?(@.type=="Ready")].message}"#,
    )
    .unwrap_or_default();
    assert!(
        message.contains("auditor (its pods)") && message.contains("consumer (the pool)"),
        "{message}"
    );
}

/// A Python function that answers with the file at `path`, or with
/// `denied: ERROR` when it cannot read it.
fn file_reader(name: &str, path: &str, extra: &str) -> String {
    format!(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  runtime: python3.x\n  handler: {name}.handler\n{extra}  function: |\n    def handler(event, context):\n        try:\n            return open('{path}').read()\n        except Exception as e:\n            return 'denied: %s' % type(e).__name__\n---\n"
    )
}

#[test]
fn a_pool_function_reads_its_own_secrets_and_no_other_function_does() {
    let cluster = cluster_or_skip!("a_pool_function_reads_its_own_secrets");
    let ns = cluster.namespace("secrets");
    let secret = |value: &str| {
        let yaml = ns.kubectl_ok(&[
            "create",
            "secret",
            "generic",
            "db-creds",
            &format!("--from-literal=password={value}"),
            "--dry-run=client",
            "-o",
            "yaml",
        ]);
        apply(&ns, &yaml);
    };
    secret("s3cret");
    let with_secret = "  secrets: [db-creds]\n";
    apply(
        &ns,
        &(file_reader("reader", "/db-creds/password", with_secret)
            + &file_reader("nosy", "/db-creds/password", "")
            + &file_reader("lost", "/absent/password", "  secrets: [absent]\n")
            + &file_reader(
                "ownpod",
                "/db-creds/password",
                "  secrets: [db-creds]\n  placement: Dedicated\n",
            )),
    );
    for name in ["reader", "nosy", "lost", "ownpod"] {
        wait_ready(&ns, name);
    }
    let hosting = ns.kubectl_ok(&[
        "get",
        "function",
        "reader",
        "nosy",
        "lost",
        "ownpod",
        "-o",
        "jsonpath={.items[*].status.placement.hosting}",
    ]);
    assert_eq!(hosting, "Pool Pool Pool Dedicated", "{}", ns.describe());
    let call = |name: &str| {
        let (ok, out, err) = ns.wasmless(&["function", "call", name]);
        (ok, format!("{out}{err}"))
    };
    // The pool reads the Secret from the API and grants it to the function
    // that names it, as the kubelet mounts it in a pod of its own.
    let answer = ns_eventually(&ns, "reader reads its Secret", READY, || {
        let (ok, out) = call("reader");
        ok.then_some(out)
    });
    assert_eq!(answer, "s3cret");
    assert_eq!(call("ownpod"), (true, "s3cret".to_owned()));
    // Its neighbour in the same pool sees no such file.
    let (ok, out) = call("nosy");
    assert!(ok && out.starts_with("denied: "), "{out}");
    // The pool may read only what its Functions name.
    let role = ns.kubectl_ok(&[
        "get",
        "role",
        "wasmless-pool-secrets",
        "-o",
        "jsonpath={.rules[*].resourceNames}",
    ]);
    assert!(
        role.contains("db-creds") && role.contains("absent"),
        "{role}"
    );
    let pool = format!("--as=system:serviceaccount:{}:wasmless-pool", ns.name);
    let can = |secret: &str| {
        let out = ns.kubectl(&["auth", "can-i", "get", &format!("secret/{secret}"), &pool]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(can("db-creds"), "yes");
    assert_eq!(can("someone-elses"), "no");
    let out = ns.kubectl(&["auth", "can-i", "list", "secrets", &pool]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");
    // A Secret that does not exist: its function's events fail, saying so.
    let (ok, out) = call("lost");
    assert!(!ok && out.contains("absent"), "{out}");
    // Once it exists, the function answers (the pool reads its Secrets
    // again every 30 s), with no new pod.
    apply(
        &ns,
        &ns.kubectl_ok(&[
            "create",
            "secret",
            "generic",
            "absent",
            "--from-literal=password=found",
            "--dry-run=client",
            "-o",
            "yaml",
        ]),
    );
    let found = ns_eventually(&ns, "lost reads its new Secret", READY, || {
        let (ok, out) = call("lost");
        ok.then_some(out)
    });
    assert_eq!(found, "found");
    // A changed Secret reaches the pool's function, as a mounted one does.
    secret("rotated");
    ns_eventually(&ns, "reader reads the rotated value", READY, || {
        (call("reader") == (true, "rotated".to_owned())).then_some(())
    });
}

#[test]
fn turning_on_autoscaling_keeps_the_replicas_a_function_has() {
    let cluster = cluster_or_skip!("turning_on_autoscaling_keeps_the_replicas");
    let ns = cluster.namespace("autoscale");
    apply(
        &ns,
        &command_function("autoscaled", "autoscaled", "  replicas: 3\n"),
    );
    let replicas = || jsonpath(&ns, "deployment/autoscaled", "{.spec.replicas}");
    ns_eventually(&ns, "three ready pods", READY, || {
        (jsonpath(&ns, "function/autoscaled", "{.status.readyReplicas}").as_deref() == Some("3"))
            .then_some(())
    });
    ns.kubectl_ok(&[
        "patch",
        "function",
        "autoscaled",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"autoscaling":{"minReplicas":1,"maxReplicas":5}}}"#,
    ]);
    ns_eventually(&ns, "its HorizontalPodAutoscaler", READY, || {
        jsonpath(&ns, "hpa/autoscaled", "{.spec.maxReplicas}").filter(|m| m == "5")
    });
    // The operator no longer sets the count but keeps a share of the field:
    // the Deployment stays at 3 until the autoscaler decides otherwise (it
    // has no metrics here, so it keeps what there is).
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < until {
        assert_eq!(
            replicas().as_deref(),
            Some("3"),
            "the Deployment's replicas after autoscaling was turned on\n{}",
            ns.describe()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Turned off again, spec.replicas rules once more.
    ns.kubectl_ok(&[
        "patch",
        "function",
        "autoscaled",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"autoscaling":null,"replicas":2}}"#,
    ]);
    ns_eventually(&ns, "two replicas without autoscaling", READY, || {
        (replicas().as_deref() == Some("2")).then_some(())
    });
    ns_eventually(&ns, "the autoscaler removed", READY, || {
        jsonpath(&ns, "hpa/autoscaled", "{.metadata.name}")
            .is_none()
            .then_some(())
    });
}

/// A WASI command that spins for a while, then writes `burnt`.
const BURNER: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "burnt")
  (func (export "_start") (local $i i32)
    (local.set $i (i32.const 40000000))
    (loop $spin
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $spin (i32.ne (local.get $i) (i32.const 0))))
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 5))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

#[test]
fn an_autoscaled_function_under_load_gets_more_pods_from_its_hpa() {
    let cluster = cluster_or_skip!("an_autoscaled_function_under_load_gets_more_pods");
    let ns = cluster.namespace("hpa");
    apply(
        &ns,
        &common::manifest_inline(
            "burner",
            BURNER,
            "  resources:\n    requests: {cpu: 20m, memory: 64Mi}\n  autoscaling:\n    minReplicas: 1\n    maxReplicas: 3\n    targetCpuUtilization: 50\n",
        ),
    );
    wait_ready(&ns, "burner");
    // Load from inside the cluster, by the Service's name, for as long as
    // the test needs it (the pod goes with the namespace).
    let url = format!("http://burner.{}.svc.cluster.local:8080/", ns.name);
    let script = format!(
        "import threading, time, urllib.request as u\n\
         def hammer():\n    end = time.time() + 300\n    while time.time() < end:\n        try: u.urlopen({url:?}, timeout=30).read()\n        except Exception as e: print('error', e, flush=True)\n\
         ts = [threading.Thread(target=hammer) for _ in range(4)]\n\
         [t.start() for t in ts]; [t.join() for t in ts]\n"
    );
    ns.kubectl_ok(&[
        "run",
        "load",
        "--image",
        "ghcr.io/wasmless/runtime-python:0.1.0",
        "--image-pull-policy",
        "Never",
        "--restart",
        "Never",
        "--command",
        "--",
        "python3",
        "-c",
        &script,
    ]);
    // metrics-server reports the pods' CPU, and the autoscaler acts on it.
    let utilization = ns_eventually(&ns, "CPU utilization in the HPA's status", READY, || {
        jsonpath(
            &ns,
            "hpa/burner",
            "{.status.currentMetrics[0].resource.current.averageUtilization}",
        )
        .filter(|u| !u.is_empty())
    });
    let utilization: u32 = utilization.parse().expect("a percentage");
    ns_eventually(&ns, "more than one pod for the function", READY, || {
        let replicas = jsonpath(&ns, "function/burner", "{.status.replicas}")?;
        (replicas.parse::<u32>().ok()? >= 2).then_some(())
    });
    let desired = jsonpath(&ns, "hpa/burner", "{.status.desiredReplicas}").unwrap_or_default();
    assert!(
        desired.parse::<u32>().is_ok_and(|d| d >= 2),
        "desired {desired:?} at {utilization}% of the CPU request\n{}",
        ns.describe()
    );
}

/// Puts a pure wheel of `name` (its `__init__.py` being `init`) in the PEP
/// 503 index below `root`.
fn put_wheel(root: &std::path::Path, name: &str, init: &str) {
    let folder = root.join("simple").join(name);
    std::fs::create_dir_all(&folder).expect("index folder");
    std::fs::write(
        folder.join(format!("{name}-1.0-py3-none-any.whl")),
        common::source::wheel(name, init, false),
    )
    .expect("wheel");
}

/// `manifest` (one zipped Python Function) with pip pointed at the index of
/// the package server at `url`, through the Function's env.
fn pip_from(manifest: &str, url: &str) -> String {
    manifest.replace(
        "  handler: main.handler\n",
        &format!(
            "  handler: main.handler\n  env:\n  - {{name: PIP_INDEX_URL, value: '{url}/simple/'}}\n  - {{name: PIP_TRUSTED_HOST, value: 198.18.0.1}}\n"
        ),
    )
}

/// A package server on the node's address, as a PyPI mirror or an npm
/// tarball host would be for a real cluster: Python's http.server over a
/// folder holding a PEP 503 index (`simple/NAME/` listings of wheels) and
/// npm tarballs. Stopped when dropped.
struct PackageServer {
    child: std::process::Child,
    /// `http://198.18.0.1:PORT`.
    url: String,
}

impl PackageServer {
    fn start(root: &std::path::Path) -> PackageServer {
        let port = std::net::TcpListener::bind("198.18.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port on the bridge")
            .port();
        let child = std::process::Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "198.18.0.1",
                "--directory",
            ])
            .arg(root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m http.server");
        let url = format!("http://198.18.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("198.18.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the package server did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        PackageServer { child, url }
    }
}

impl Drop for PackageServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn source_functions_install_their_packages_from_a_mirror_on_wasm_or_their_fallback_image() {
    use common::source::zipped;
    let cluster = cluster_or_skip!("source_functions_install_their_requirements");
    let ns = cluster.namespace("deps");
    // The packages: a pure wheel, and an npm tarball (package/...).
    let root = common::tempdir();
    put_wheel(
        &root,
        "greeting",
        "def greet(name):\n    return f'Greetings, {name}'\n",
    );
    // A stand-in under the name of a package with native code: the
    // catalog judges by name, so this function goes to its fallback image.
    put_wheel(
        &root,
        "numpy",
        "def where():\n    return 'numpy from the mirror'\n",
    );
    let package = root.join("shout/package");
    std::fs::create_dir_all(&package).expect("package folder");
    std::fs::write(
        package.join("package.json"),
        r#"{"name": "shout", "version": "1.0.0", "main": "index.js"}"#,
    )
    .expect("package.json");
    std::fs::write(
        package.join("index.js"),
        "module.exports = (text) => String(text).toUpperCase() + '!';\n",
    )
    .expect("index.js");
    let tarred = std::process::Command::new("tar")
        .arg("-czf")
        .arg(root.join("shout-1.0.0.tgz"))
        .arg("-C")
        .arg(root.join("shout"))
        .arg("package")
        .status()
        .expect("tar");
    assert!(tarred.success());
    let server = PackageServer::start(&root);

    // The Function's env reaches pip (PIP_INDEX_URL); npm takes the
    // tarball's URL from package.json.
    let python = zipped(
        "python3.x",
        "pygreeter",
        "main.handler",
        &[
            (
                "main.py",
                b"import greeting\n\ndef handler(event, context):\n    return greeting.greet(event['data'])\n",
            ),
            ("requirements.txt", b"greeting==1.0\n"),
        ],
    );
    let python = pip_from(&python, &server.url);
    let native = zipped(
        "python3.x",
        "native",
        "main.handler",
        &[
            (
                "main.py",
                b"import numpy\n\ndef handler(event, context):\n    print('native handled', event['data'], flush=True)\n    return numpy.where()\n",
            ),
            ("requirements.txt", b"numpy\n"),
        ],
    );
    let native = pip_from(&native, &server.url);
    let package_json = format!(
        r#"{{"name": "jsgreeter", "version": "1.0.0", "dependencies": {{"shout": "{}/shout-1.0.0.tgz"}}}}"#,
        server.url
    );
    let javascript = zipped(
        "nodejs20",
        "jsgreeter",
        "main.handler",
        &[
            (
                "main.js",
                b"const shout = require('shout');\nmodule.exports.handler = (event) => shout(event.data);\n",
            ),
            ("package.json", package_json.as_bytes()),
        ],
    );
    apply(&ns, &format!("{python}{javascript}{native}"));
    wait_ready(&ns, "pygreeter");
    wait_ready(&ns, "jsgreeter");
    wait_ready(&ns, "native");
    let placement = jsonpath(
        &ns,
        "function/native",
        "{.status.placement.path} {.status.placement.reason}",
    );
    assert_eq!(placement.as_deref(), Some("image NativeDependencies"));
    let (ok, out, err) = ns.wasmless(&["function", "call", "native", "--data", "marker-7"]);
    assert!(ok, "call native: {out}{err}\n{}", ns.describe());
    assert_eq!(out, "numpy from the mirror");
    ns_eventually(&ns, "the fallback's output in its logs", READY, || {
        let (ok, out, _) = ns.wasmless(&["function", "logs", "native"]);
        (ok && out.contains("native handled marker-7")).then_some(())
    });
    for (name, expected) in [("pygreeter", "Greetings, Ada"), ("jsgreeter", "ADA!")] {
        let path = jsonpath(&ns, &format!("function/{name}"), "{.status.placement.path}");
        assert_eq!(path.as_deref(), Some("wasm"), "{name} runs on wasm");
        let (ok, out, err) = ns.wasmless(&["function", "call", name, "--data", "Ada"]);
        assert!(ok, "call {name}: {out}{err}\n{}", ns.describe());
        assert_eq!(out, expected, "{name}");
        let hosting = jsonpath(
            &ns,
            &format!("function/{name}"),
            "{.status.placement.hosting}",
        );
        assert_eq!(
            hosting.as_deref(),
            Some("Pool"),
            "{name}\n{}",
            ns.describe()
        );
    }
    // A change of packages reaches the pool's pods where they are: the
    // installer container they already have installs the new set.
    ns.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/wasmless-pool",
        "--timeout=120s",
    ]);
    // The running pods that stay: a pod of a replaced ReplicaSet (the pool
    // made before all its Functions were seen) is still `Running` while it
    // terminates.
    let pool_pods = || {
        let listed: serde_json::Value =
            serde_json::from_str(&get_pool_pods(&ns, &["-o", "json"])).expect("pods as JSON");
        let mut uids: Vec<String> = listed["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|pod| {
                pod["status"]["phase"] == "Running"
                    && pod["metadata"]["deletionTimestamp"].is_null()
            })
            .filter_map(|pod| pod["metadata"]["uid"].as_str().map(str::to_owned))
            .collect();
        uids.sort();
        uids
    };
    let before = pool_pods();
    put_wheel(
        &root,
        "salute",
        "def salute(name):\n    return f'Salute, {name}'\n",
    );
    let changed = zipped(
        "python3.x",
        "pygreeter",
        "main.handler",
        &[
            (
                "main.py",
                b"import salute\n\ndef handler(event, context):\n    return salute.salute(event['data'])\n",
            ),
            ("requirements.txt", b"salute==1.0\n"),
        ],
    );
    apply(&ns, &pip_from(&changed, &server.url));
    ns_eventually(&ns, "the new package in use", READY, || {
        let (ok, out, _) = ns.wasmless(&["function", "call", "pygreeter", "--data", "Ada"]);
        (ok && out == "Salute, Ada").then_some(())
    });
    assert_eq!(pool_pods(), before, "no new pool pod\n{}", ns.describe());
}

#[test]
fn a_url_source_with_its_checksum_reaches_the_pool_and_a_wrong_checksum_is_refused() {
    use sha2::Digest as _;
    let cluster = cluster_or_skip!("a_url_source_with_its_checksum_reaches_the_pool");
    let ns = cluster.namespace("url");
    // The module on a web server the pool's pod reaches (the node).
    let root = common::tempdir();
    let module = std::fs::read(wasm("hello")).expect("hello.wasm");
    std::fs::write(root.join("hello.wasm"), &module).expect("write");
    let checksum = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&module)));
    let server = PackageServer::start(&root);
    let function = |name: &str, checksum: &str| {
        format!(
            "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  functionContentType: url\n  function: {}/hello.wasm\n  checksum: '{checksum}'\n---\n",
            server.url
        )
    };
    let wrong = format!("sha256:{}", "0".repeat(64));
    apply(
        &ns,
        &(function("fetched", &checksum) + &function("tampered", &wrong)),
    );
    wait_ready(&ns, "fetched");
    let placement = jsonpath(&ns, "function/fetched", "{.status.placement.hosting}");
    assert_eq!(placement.as_deref(), Some("Pool"), "{}", ns.describe());
    let (ok, out, err) = ns.wasmless(&["function", "call", "fetched", "--data", "url"]);
    assert!(
        ok && out == "Hello, url!\n",
        "call: {out}{err}\n{}",
        ns.describe()
    );
    // The pool fetched it and checked it; a source that is not what its
    // checksum says is not run, and the answer says why.
    wait_ready(&ns, "tampered");
    let (ok, out, err) = ns.wasmless(&["function", "call", "tampered", "--data", "url"]);
    assert!(!ok, "a wrong checksum ran: {out}");
    assert!(
        out.contains("checksum") && err.contains("503"),
        "call: {out}{err}"
    );
}

/// The commands of kubeless's documentation, with `wasmless` for
/// `kubeless`, on the cluster: deploy with its flags and a schedule,
/// update, call, top, the trigger verbs, autoscale, and kubeless's YAML
/// through `wasmless convert`.
#[test]
fn the_kubeless_cli_deploys_triggers_scales_and_converts_on_a_cluster() {
    let cluster = cluster_or_skip!("the_kubeless_cli_deploys_triggers_scales_and_converts");
    let ns = cluster.namespace("kubeless");
    let dir = common::tempdir();
    let source = dir.join("helloget.py");
    std::fs::write(
        &source,
        "import os\ndef foo(event, context):\n    print('got', event['data'], flush=True)\n    return {'data': event['data'], 'greeting': os.environ.get('GREETING')}\n",
    )
    .expect("write");
    let source = source.display().to_string();
    let (ok, out, err) = ns.wasmless(&[
        "function",
        "deploy",
        "get-python",
        "--runtime",
        "python3.9",
        "--handler",
        "helloget.foo",
        "--from-file",
        &source,
        "--env",
        "GREETING:kube",
        "--label",
        "team=a",
        "--schedule",
        "* * * * * *",
        "--wait",
        "--wait-timeout",
        "3m",
    ]);
    assert!(ok, "deploy: {out}{err}\n{}", ns.describe());
    assert!(
        out.contains("cron trigger trigger-get-python applied"),
        "{out}"
    );
    assert_eq!(
        jsonpath(&ns, "function/get-python", "{.metadata.labels.created-by}").as_deref(),
        Some("kubeless")
    );
    let (ok, out, err) = ns.wasmless(&["function", "call", "get-python", "--data", r#"{"a": 1}"#]);
    assert!(ok, "call: {out}{err}\n{}", ns.describe());
    let answer: serde_json::Value = serde_json::from_str(&out).expect("JSON back");
    assert_eq!(
        answer,
        serde_json::json!({"data": {"a": 1}, "greeting": "kube"})
    );
    // The schedule's ticks reach it.
    ns_eventually(&ns, "a cron tick in the function's logs", READY, || {
        let (_, logs, _) = ns.wasmless(&["function", "logs", "get-python"]);
        logs.lines()
            .filter(|l| l.contains("got"))
            .nth(2)
            .map(|_| ())
    });
    // `update` changes what is given and keeps the rest.
    let (ok, out, err) = ns.wasmless(&[
        "function",
        "update",
        "get-python",
        "--timeout",
        "7",
        "--wait",
    ]);
    assert!(ok, "update: {out}{err}\n{}", ns.describe());
    assert_eq!(
        jsonpath(&ns, "function/get-python", "{.spec.timeout}").as_deref(),
        Some("7")
    );
    assert_eq!(
        jsonpath(&ns, "function/get-python", "{.spec.handler}").as_deref(),
        Some("helloget.foo")
    );
    // `top`: from the pool pod's metrics, through the API server.
    let (ok, out, err) =
        ns.wasmless(&["function", "top", "--function", "get-python", "-o", "json"]);
    assert!(ok, "top: {out}{err}");
    let top: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert!(top[0]["total_calls"].as_f64() >= Some(1.0), "{top}");

    // Triggers, with kubeless's flags.
    let (ok, out, err) = ns.wasmless(&[
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
    assert!(ok, "trigger http: {out}{err}");
    assert_eq!(
        jsonpath(&ns, "httptrigger/get-python", "{.spec.path}").as_deref(),
        Some("/echo")
    );
    let (ok, out, _) = ns.wasmless(&["trigger", "http", "list"]);
    assert!(
        ok && out.contains("example.com/echo -> get-python"),
        "{out}"
    );
    let (ok, out, err) = ns.wasmless(&[
        "trigger",
        "cronjob",
        "update",
        "trigger-get-python",
        "--schedule",
        "*/5 * * * *",
    ]);
    assert!(ok, "trigger cronjob update: {out}{err}");
    assert_eq!(
        jsonpath(&ns, "crontrigger/trigger-get-python", "{.spec.schedule}").as_deref(),
        Some("*/5 * * * *")
    );
    let (ok, out, err) = ns.wasmless(&["trigger", "http", "delete", "get-python"]);
    assert!(ok, "{out}{err}");

    // Autoscaling on CPU: the Function's spec, and its own pods again.
    let (ok, out, err) = ns.wasmless(&[
        "autoscale",
        "create",
        "get-python",
        "--min",
        "1",
        "--max",
        "3",
        "--value",
        "70",
    ]);
    assert!(ok, "autoscale: {out}{err}");
    assert_eq!(
        jsonpath(
            &ns,
            "function/get-python",
            "{.spec.autoscaling.maxReplicas}"
        )
        .as_deref(),
        Some("3")
    );
    let (ok, out, _) = ns.wasmless(&["autoscale", "list"]);
    assert!(
        ok && out.contains("get-python") && out.contains("70"),
        "{out}"
    );
    let (ok, out, err) = ns.wasmless(&["autoscale", "delete", "get-python"]);
    assert!(ok, "{out}{err}");
    assert_eq!(
        jsonpath(&ns, "function/get-python", "{.spec.autoscaling}").as_deref(),
        Some("")
    );

    // kubeless's own YAML, converted for kubectl.
    let yaml = dir.join("kubeless.yaml");
    std::fs::write(
        &yaml,
        "apiVersion: kubeless.io/v1beta1\nkind: Function\nmetadata:\n  name: from-kubeless\n  label: {created-by: kubeless, function: from-kubeless}\nspec:\n  runtime: python3.9\n  handler: hello.foo\n  timeout: \"180\"\n  function-content-type: text\n  function: |\n    def foo(event, context):\n        return 'converted'\n  deployment:\n    spec:\n      template:\n        spec:\n          containers:\n          - env:\n            - {name: A, value: b}\n",
    )
    .expect("write");
    let (ok, converted, err) = cluster.wasmless(&["convert", "-f", &yaml.display().to_string()]);
    assert!(ok, "convert: {err}");
    apply(&ns, &converted);
    wait_ready(&ns, "from-kubeless");
    let (ok, out, err) = ns.wasmless(&["function", "call", "from-kubeless"]);
    assert!(ok && out == "converted", "{out}{err}\n{}", ns.describe());
    let (ok, out, _) = ns.wasmless(&["function", "ls", "from-kubeless", "-o", "json"]);
    assert!(ok, "{out}");
    let listed: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        listed[0]["spec"]["env"],
        serde_json::json!([{"name": "A", "value": "b"}])
    );

    // Deleting the function deletes its --schedule trigger.
    let (ok, out, err) = ns.wasmless(&["function", "delete", "get-python"]);
    assert!(
        ok && out.contains("cron trigger trigger-get-python deleted"),
        "{out}{err}"
    );
    let (ok, out, _) = ns.wasmless(&["trigger", "cronjob", "list"]);
    assert!(ok && !out.contains("trigger-get-python"), "{out}");
}

#[test]
fn a_pool_function_reaches_a_service_its_allow_list_names_exactly_and_nothing_else() {
    let cluster = cluster_or_skip!("a_pool_function_reaches_a_service_its_allow_list_names");
    let ns = cluster.namespace("outbound");
    let caller = |name: &str, entry: &str| {
        format!(
            "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  runtime: python3.x\n  handler: call.handler\n  allowedOutboundHosts: [\"{entry}\"]\n  function: |\n    import urllib.error, urllib.request\n    def handler(event, context):\n        try:\n            with urllib.request.urlopen(event['data']) as answer:\n                return '%d %s' % (answer.status, answer.read().decode())\n        except urllib.error.URLError as error:\n            return 'refused: %s' % error.reason\n---\n"
        )
    };
    let domain = format!("{}.svc.cluster.local", ns.name);
    apply(
        &ns,
        &(command_function("target", "target says hi", "")
            + &caller("exact", &format!("http://target.{domain}:8080"))
            + &caller("wild", &format!("http://*.{domain}:8080"))),
    );
    for name in ["target", "exact", "wild"] {
        wait_ready(&ns, name);
    }
    let url = format!("http://target.{domain}:8080/");
    // By its exact name, a Service's private address is granted. The pool
    // pod may be Ready before kube-proxy routes the Service's address to it
    // (the connection is then refused, after the allow-list let it through):
    // wait for that, not for the allow-list.
    ns_eventually(&ns, "exact reaches target", READY, || {
        let (ok, out, err) = ns.wasmless(&["function", "call", "exact", "--data", &url]);
        assert!(
            ok && (out == "200 target says hi" || out.contains("Connection refused")),
            "call exact: {out}{err}\n{}",
            ns.describe()
        );
        (out == "200 target says hi").then_some(())
    });
    // A wildcard grants public addresses only: the Service's is not.
    let (ok, out, err) = ns.wasmless(&["function", "call", "wild", "--data", &url]);
    assert!(
        ok && out.starts_with("refused: ")
            && out.contains("a private address")
            && out.contains("exactly"),
        "call wild: {out}{err}\n{}",
        ns.describe()
    );
    // Another Service of the namespace, not named: refused.
    let other = format!("http://wild.{domain}:8080/");
    let (ok, out, err) = ns.wasmless(&["function", "call", "exact", "--data", &other]);
    assert!(
        ok && out.contains("not in spec.allowedOutboundHosts"),
        "call exact → wild: {out}{err}"
    );
    // The refusals are in the function's log, from the pool's pods.
    let (ok, out, err) = ns.wasmless(&["function", "logs", "wild"]);
    assert!(
        ok && out.contains("outbound request denied"),
        "logs: {out}{err}"
    );
}
