//! The objects the operator makes for Functions and HTTPTriggers, checked
//! against golden YAML in tests/golden/. After an intended change, rewrite
//! the files with `WASMLESS_BLESS=1 cargo test --test operator_objects` and
//! review the diff.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use common::{Up, tempdir, wasm};

use wasmless::crd::{FunctionResource, HttpTriggerResource, KafkaTrigger};
use wasmless::operator::resources::{FunctionObjects, PodSettings, desired_objects};
use wasmless::operator::routes::{Route, desired_route};
use wasmless::runtimes::Catalog;

fn settings() -> PodSettings {
    PodSettings {
        image: "ghcr.io/wasmless/wasmless:0.1.0".into(),
        image_pull_policy: Some("IfNotPresent".into()),
        cluster_domain: "cluster.local".into(),
    }
}

/// A Function as the API server returns it: the YAML plus a namespace and
/// a uid.
fn function(yaml: &str) -> FunctionResource {
    let mut f: FunctionResource = serde_saphyr::from_str(yaml).expect("test Function parses");
    f.metadata.namespace = Some("team".into());
    f.metadata.uid = Some("0b5c7d6e-1111-2222-3333-444455556666".into());
    f
}

/// What the operator applies: a pool function only has its Service (the
/// namespace's pool serves it), a dedicated one its own objects.
fn to_yaml(objects: &FunctionObjects) -> String {
    let hosting = format!(
        "# hosting: {} ({}: {})\n",
        objects.hosting.hosting.as_str(),
        objects.hosting.reason,
        objects.hosting.message
    );
    let mut docs = match objects.hosting.hosting {
        wasmless::crd::Hosting::Pool => {
            vec![hosting + &serde_saphyr::to_string(&objects.service).expect("yaml")]
        }
        wasmless::crd::Hosting::Dedicated => vec![
            hosting + &serde_saphyr::to_string(&objects.config_map).expect("yaml"),
            serde_saphyr::to_string(&objects.deployment).expect("yaml"),
            serde_saphyr::to_string(&objects.service).expect("yaml"),
        ],
    };
    if let Some(hpa) = &objects.autoscaler {
        docs.push(serde_saphyr::to_string(hpa).expect("yaml"));
    }
    docs.join("---\n")
}

/// Compares with tests/golden/NAME.yaml, or rewrites it when blessing.
fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.yaml"));
    if std::env::var_os("WASMLESS_BLESS").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        panic!(
            "{} differs from what was generated (WASMLESS_BLESS=1 rewrites it):\n{actual}",
            path.display()
        );
    }
}

#[test]
fn a_function_in_the_pool_has_only_its_service_which_selects_no_pods() {
    let f = function(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: hello, labels: {team: web}}\n\
         spec:\n  runtime: python3.x\n  handler: greet.handler\n  function: |\n    def handler(event, context):\n        return 'hi'\n",
    );
    let objects = desired_objects(&f, &[], &settings(), &Catalog::built_in()).expect("valid");
    golden("pool-function", &to_yaml(&objects));
}

#[test]
fn what_shapes_a_functions_pods_gives_it_a_dedicated_placement() {
    let base = "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: hello}\nspec:\n  function: (module)\n";
    for (extra, reason) in [
        ("", "Default"),
        ("  replicas: 1\n", "Default"),
        ("  placement: Pool\n", "Requested"),
        ("  placement: Dedicated\n", "Requested"),
        ("  replicas: 3\n", "PodSettings"),
        ("  replicas: 0\n", "PodSettings"),
        ("  autoscaling: {maxReplicas: 3}\n", "PodSettings"),
        ("  secrets: [db]\n", "Default"),
        ("  port: 9000\n", "PodSettings"),
        ("  resources: {limits: {cpu: '1'}}\n", "PodSettings"),
        (
            "  deployment: {metadata: {labels: {a: b}}}\n",
            "PodSettings",
        ),
    ] {
        let f = function(&format!("{base}{extra}"));
        let objects = desired_objects(&f, &[], &settings(), &Catalog::built_in()).expect(extra);
        assert_eq!(objects.hosting.reason, reason, "{extra}");
        let dedicated = objects.hosting.hosting == wasmless::crd::Hosting::Dedicated;
        assert_eq!(
            dedicated,
            reason == "PodSettings" || extra.contains("Dedicated"),
            "{extra}"
        );
    }
    // A Kafka trigger leaves it in the pool, which runs its consumers.
    let f = function(base);
    let trigger: wasmless::crd::KafkaTrigger = serde_saphyr::from_str(
        "apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata: {name: t}\nspec: {function: hello, topic: orders, brokers: 'k:9092'}\n",
    )
    .expect("a trigger");
    let objects =
        desired_objects(&f, &[trigger], &settings(), &Catalog::built_in()).expect("valid");
    assert_eq!(objects.hosting.hosting, wasmless::crd::Hosting::Pool);

    // Asked for the pool, but it shapes its pods: refused, saying why.
    let f = function(&format!("{base}  placement: Pool\n  replicas: 2\n"));
    let refusal = desired_objects(&f, &[], &settings(), &Catalog::built_in()).expect_err("refused");
    assert!(
        refusal.message.contains("spec.replicas"),
        "{}",
        refusal.message
    );
}

#[test]
fn a_source_function_whose_handler_cannot_be_imported_is_refused() {
    for (handler, says) in [
        (
            "  handler: own-pod.handler\n",
            "`own-pod.handler` must be file.function",
        ),
        ("  handler: handler\n", "`handler` must be file.function"),
        ("", "spec.handler: required for python3.12"),
    ] {
        let f = function(&format!(
            "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {{name: own-pod}}\n\
             spec:\n  runtime: python3.12\n{handler}  function: |\n    def handler(event, context):\n        return 'hi'\n"
        ));
        let refusal =
            desired_objects(&f, &[], &settings(), &Catalog::built_in()).expect_err(handler);
        assert_eq!(refusal.reason, "InvalidSpec");
        assert!(refusal.message.contains(says), "{}", refusal.message);
    }
}

#[test]
fn a_wasm_module_becomes_a_config_map_deployment_and_service() {
    // `\0asm` version 1: the smallest module, base64 as the CLI sends it.
    let f = function(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: hello, labels: {team: web}}\n\
         spec: {function: AGFzbQEAAAA=, functionContentType: base64, timeout: '10', memory: 64Mi, placement: Dedicated}\n",
    );
    let objects = desired_objects(&f, &[], &settings(), &Catalog::built_in()).expect("valid");
    let module = &objects.config_map.binary_data.as_ref().expect("binary")["function.wasm"];
    assert_eq!(module.0, b"\0asm\x01\0\0\0");
    assert!(objects.autoscaler.is_none());
    golden("wasm-module", &to_yaml(&objects));
}

#[test]
fn a_source_function_keeps_its_source_in_the_manifest() {
    let f = function(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: greet}\n\
         spec:\n  runtime: python3.x\n  placement: Dedicated\n  handler: greet.handler\n  function: |\n    def handler(event, context):\n        return 'hi'\n",
    );
    let objects = desired_objects(&f, &[], &settings(), &Catalog::built_in()).expect("valid");
    golden("source-runtime", &to_yaml(&objects));
}

#[test]
fn env_secrets_port_and_resources_reach_the_pods() {
    let f = function(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: orders}\n\
         spec:\n  function: '(module)'\n  env: [{name: GREETING, value: hi}]\n  secrets: [db-creds, api.keys]\n  port: 9000\n  replicas: 3\n\
         \x20 resources: {requests: {cpu: 100m}, limits: {memory: 256Mi}}\n",
    );
    let objects = desired_objects(&f, &[], &settings(), &Catalog::built_in()).expect("valid");
    golden("env-and-secrets", &to_yaml(&objects));
}

#[test]
fn autoscaling_adds_an_autoscaler_that_owns_the_replica_count() {
    let f = function(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: busy}\n\
         spec: {function: '(module)', replicas: 5, autoscaling: {minReplicas: 2, maxReplicas: 10, targetCpuUtilization: 60}}\n",
    );
    let objects = desired_objects(&f, &[], &settings(), &Catalog::built_in()).expect("valid");
    assert_eq!(
        objects.deployment.spec.as_ref().and_then(|s| s.replicas),
        None
    );
    golden("scaling", &to_yaml(&objects));
}

#[test]
fn deployment_and_service_templates_are_merged_in() {
    let f = function(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: custom}\n\
         spec:\n  function: '(module)'\n  deployment:\n    metadata: {annotations: {owner: payments}}\n    spec:\n      template:\n        spec:\n          nodeSelector: {disk: ssd}\n          containers:\n          - name: function\n            env: [{name: RUST_LOG, value: debug}]\n          - name: proxy\n            image: envoy:v1\n\
         \x20 service: {spec: {type: NodePort}}\n",
    );
    let objects = desired_objects(&f, &[], &settings(), &Catalog::built_in()).expect("valid");
    let pod = objects
        .deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec");
    let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["function", "proxy"]);
    let env = pod.containers[0].env.as_ref().expect("env");
    assert!(env.iter().any(|e| e.name == "WASMLESS_FUNCTION"));
    assert!(env.iter().any(|e| e.name == "RUST_LOG"));
    golden("templates", &to_yaml(&objects));
}

#[test]
fn kafka_triggers_ride_in_the_config_map() {
    // In pods of its own, their host runs the consumers (in the pool, the
    // pool does: src/up/pool.rs).
    let f = function(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: audit, labels: {kind: sink}}\n\
         spec: {function: '(module)', placement: Dedicated}\n",
    );
    let triggers: Vec<KafkaTrigger> = [
        "apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata: {name: orders}\nspec: {brokers: 'k:9092', topic: orders, function: audit}\n",
        "apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata: {name: all}\nspec: {brokers: 'k:9092', topic: events, functionSelector: {matchLabels: {kind: sink}}}\n",
    ]
    .iter()
    .map(|y| serde_saphyr::from_str(y).expect("trigger parses"))
    .collect();
    let objects = desired_objects(&f, &triggers, &settings(), &Catalog::built_in()).expect("valid");
    let data = objects.config_map.data.as_ref().expect("data");
    let text = &data["triggers.yaml"];
    let (manifest, errors) = {
        let dir = std::env::temp_dir().join(format!("wasmless-golden-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("triggers.yaml"), text).expect("write");
        let read = wasmless::manifest::read_manifest(&dir.join("triggers.yaml"));
        let _ = std::fs::remove_dir_all(&dir);
        read
    };
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(manifest.triggers.len(), 2, "the host reads both triggers");
    assert!(text.contains("consumerGroup: wasmless-all.audit"), "{text}");
    golden("kafka-triggers", &to_yaml(&objects));
}

#[test]
fn a_changed_source_changes_the_pod_checksum() {
    let checksum = |source: &str| {
        let f = function(&format!(
            "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {{name: a}}\nspec: {{function: '{source}'}}\n"
        ));
        let objects = desired_objects(&f, &[], &settings(), &Catalog::built_in()).expect("valid");
        objects
            .deployment
            .spec
            .and_then(|s| s.template.metadata)
            .and_then(|m| m.annotations)
            .and_then(|a| a.get("wasmless.io/checksum").cloned())
            .expect("checksum annotation")
    };
    assert_eq!(checksum("(module)"), checksum("(module)"));
    assert_ne!(checksum("(module)"), checksum("(module (memory 1))"));
}

#[test]
fn functions_that_cannot_run_are_refused_with_a_reason() {
    let refusal = |spec: &str| {
        let f = function(&format!(
            "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {{name: a}}\nspec: {spec}\n"
        ));
        desired_objects(&f, &[], &settings(), &Catalog::built_in()).expect_err(spec)
    };
    let file = refusal("{file: a.wasm}");
    assert_eq!(file.reason, "InvalidSpec");
    assert!(file.message.contains("wasmless up"), "{}", file.message);
    let large = refusal(&format!("{{function: '{}'}}", ";;".repeat(600_000)));
    assert_eq!(large.reason, "SourceTooLarge");
    assert!(large.message.contains("URL"), "{}", large.message);
    let base64 = refusal("{function: '!!', functionContentType: base64}");
    assert!(
        base64.message.starts_with("spec.function"),
        "{}",
        base64.message
    );
    let template = refusal("{function: '(module)', deployment: {spec: {replicas: many}}}");
    assert!(
        template.message.starts_with("spec.deployment"),
        "{}",
        template.message
    );
    let runtime = refusal("{function: 'x', runtime: cobol85}");
    assert_eq!(runtime.reason, "UnsupportedRuntime");
    assert!(
        runtime
            .message
            .contains("it has: wasm, python3.x, nodejs2x, ruby3.x"),
        "{}",
        runtime.message
    );
    let timeout = refusal("{function: '(module)', timeout: soon}");
    assert!(
        timeout.message.starts_with("spec.timeout"),
        "{}",
        timeout.message
    );
}

#[test]
fn http_triggers_become_an_ingress_or_an_http_route() {
    let trigger = |yaml: &str| {
        let mut t: HttpTriggerResource = serde_saphyr::from_str(yaml).expect("trigger parses");
        t.metadata.namespace = Some("team".into());
        t.metadata.uid = Some("7a6b5c4d-aaaa-bbbb-cccc-ddddeeeeffff".into());
        t
    };
    let ingress = trigger(
        "apiVersion: wasmless.io/v1alpha1\nkind: HTTPTrigger\nmetadata: {name: hello}\n\
         spec: {function: hello, host: hello.example.com, path: /api, tlsSecret: hello-cert, ingressClassName: nginx, \
         basicAuthSecret: hello-users, cors: {allowOrigin: 'https://app.example.com'}}\n",
    );
    let Route::Ingress(ingress) = desired_route(&ingress) else {
        panic!("an Ingress without spec.gateway");
    };
    let route = trigger(
        "apiVersion: wasmless.io/v1alpha1\nkind: HTTPTrigger\nmetadata: {name: hello-gw}\n\
         spec: {function: hello, host: hello.example.com, gateway: {name: public, namespace: infra, sectionName: https}}\n",
    );
    let Route::HttpRoute(route) = desired_route(&route) else {
        panic!("an HTTPRoute with spec.gateway");
    };
    golden(
        "http-trigger",
        &[
            serde_saphyr::to_string(&ingress).expect("yaml"),
            serde_saphyr::to_string(&route).expect("yaml"),
        ]
        .join("---\n"),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pod_serves_what_the_operator_writes() {
    // A real module deployed as the CLI does, turned into objects; the
    // ConfigMap written out as the kubelet mounts it; `wasmless host` run
    // with the container's environment, as the Deployment runs it.
    let module = std::fs::read(wasm("hello")).expect("examples built");
    let f = function(&format!(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {{name: hello}}\n\
         spec: {{function: {}, functionContentType: base64}}\n",
        base64::engine::general_purpose::STANDARD.encode(&module)
    ));
    let objects = desired_objects(&f, &[], &settings(), &Catalog::built_in()).expect("valid");
    let dir = tempdir();
    for (key, value) in objects.config_map.data.iter().flatten() {
        std::fs::write(dir.join(key), value).expect("write data");
    }
    for (key, value) in objects.config_map.binary_data.iter().flatten() {
        std::fs::write(dir.join(key), &value.0).expect("write binaryData");
    }
    let container = &objects
        .deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec")
        .containers[0];
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_wasmless"));
    command.args(container.args.iter().flatten());
    for var in container.env.iter().flatten() {
        let value = match var.name.as_str() {
            "WASMLESS_FUNCTION_DIR" => dir.display().to_string(),
            "WASMLESS_LISTEN" => "127.0.0.1:0".to_owned(),
            _ => var.value.clone().unwrap_or_default(),
        };
        command.env(&var.name, value);
    }
    command
        .env("WASMLESS_CACHE_DIR", tempdir())
        .env("WASMLESS_STATE_DIR", tempdir());
    let mut host = Up::spawn(command);
    assert_eq!(
        host.post("/", "cluster").await,
        (200, "Hello, cluster!\n".into())
    );
    assert_eq!(host.get("/healthz").await.0, 200);
    // SIGTERM, as the kubelet stops a pod: it goes on serving while the
    // Service's endpoints drop it, no longer ready, then exits.
    assert!(host.signal_term());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = host.get("/healthz").await;
        if status == 503 {
            assert_eq!(body, "draining\n");
            break;
        }
        assert_eq!(status, 200);
        assert!(std::time::Instant::now() < deadline, "{}", host.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        host.post("/", "late").await,
        (200, "Hello, late!\n".into()),
        "a request while draining is answered"
    );
    assert!(
        host.wait_exit(Duration::from_secs(30)),
        "stops after draining: {}",
        host.log()
    );
    assert!(host.log().contains("draining"), "{}", host.log());
}

/// A Function from `name\nspec: ...`.
fn named(text: &str) -> FunctionResource {
    function(&format!(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata:\n  name: {text}\n"
    ))
}

/// A function's pod run on this machine: its volumes as folders (the
/// ConfigMap's files at /function, the emptyDir at /kubeless), and the paths
/// in its containers' arguments and environment mapped to them.
struct LocalPod {
    function_dir: PathBuf,
    code: PathBuf,
    spec: k8s_openapi::api::core::v1::PodSpec,
}

impl LocalPod {
    fn of(objects: &FunctionObjects) -> Self {
        let function_dir = tempdir();
        for (key, value) in objects.config_map.data.iter().flatten() {
            std::fs::write(function_dir.join(key), value).expect("write data");
        }
        let spec = objects
            .deployment
            .spec
            .clone()
            .and_then(|s| s.template.spec)
            .expect("pod spec");
        Self {
            function_dir,
            code: tempdir(),
            spec,
        }
    }

    /// `value` with the pod's folders replaced by this machine's.
    fn local(&self, value: &str) -> String {
        value
            .replace("/function", &self.function_dir.display().to_string())
            .replace("/kubeless", &self.code.display().to_string())
    }

    /// Runs the first init container, `wasmless prepare`.
    fn prepare(&self) {
        let prepare = &self.spec.init_containers.as_ref().expect("init containers")[0];
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_wasmless"))
            .args(prepare.args.iter().flatten().map(|a| self.local(a)))
            .status()
            .expect("wasmless prepare runs");
        assert!(status.success());
    }
}

/// A Function whose source is a zip of `files`.
fn zipped_function(
    name: &str,
    runtime: &str,
    extra: &str,
    files: &[(&str, &[u8])],
) -> FunctionResource {
    let encoded = base64::engine::general_purpose::STANDARD.encode(common::source::zip_of(files));
    function(&format!(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\n\
         spec: {{runtime: {runtime}, handler: main.handler, functionContentType: base64+zip, function: {encoded}{extra}}}\n"
    ))
}

/// The Deployments of a function of each runtime in the catalog that runs
/// on its image, and why it does.
#[test]
fn each_catalog_runtime_gets_its_image_deployment() {
    let catalog = Catalog::built_in();
    let cases = [
        (
            zipped_function(
                "py-native",
                "python3.x",
                "",
                &[
                    ("main.py", b"import numpy\n"),
                    ("requirements.txt", b"numpy==2.1\n"),
                ],
            ),
            "NativeDependencies",
        ),
        (
            named(
                "node-image\nspec: {runtime: nodejs20, handler: main.handler, image: registry.example/team/node-fn:3, function: 'module.exports.handler = () => 1'}",
            ),
            "ImageRequested",
        ),
        (
            named(
                "ruby\nspec: {runtime: ruby3.3, handler: hello.handler, function: 'def handler(event, context) = \"hi\"', env: [{name: GREETING, value: hi}]}",
            ),
            "NoWasmRuntime",
        ),
        (
            zipped_function(
                "go",
                "go1.x",
                "",
                &[
                    ("main.go", b"package kubeless\n"),
                    ("go.mod", b"module fn\n"),
                ],
            ),
            "NoWasmRuntime",
        ),
        (
            zipped_function(
                "java",
                "java17",
                "",
                &[
                    ("Handler.java", b"class Handler {}\n"),
                    ("pom.xml", b"<project/>\n"),
                ],
            ),
            "NoWasmRuntime",
        ),
        (
            named("own\nspec: {runtime: custom, image: registry.example/team/own:1}"),
            "ImageRequested",
        ),
    ];
    let mut docs = Vec::new();
    for (f, reason) in cases {
        let name = f.metadata.name.clone().unwrap_or_default();
        let objects = desired_objects(&f, &[], &settings(), &catalog).expect(&name);
        assert_eq!(objects.placement.path.as_str(), "image", "{name}");
        assert_eq!(objects.placement.reason, reason, "{name}");
        let pod = objects
            .deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .expect("pod spec");
        let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["function", "runtime"], "{name}");
        let init: Vec<&str> = pod
            .init_containers
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        // The install step runs only when the function has the dependency file.
        let expected_init: &[&str] = match name.as_str() {
            "py-native" | "go" | "java" => &["prepare", "install"],
            _ => &["prepare"],
        };
        assert_eq!(init, expected_init, "{name}");
        docs.push(serde_saphyr::to_string(&objects.deployment).expect("yaml"));
    }
    golden("image-deployments", &docs.join("---\n"));
}

#[test]
fn a_python_function_on_its_image_keeps_the_service_and_triggers() {
    let f = zipped_function(
        "py-native",
        "python3.x",
        ", timeout: '30', memory: 256Mi, secrets: [db], port: 8080",
        &[
            ("main.py", b"import numpy\n"),
            ("requirements.txt", b"numpy==2.1\n"),
        ],
    );
    let trigger: KafkaTrigger = serde_saphyr::from_str(
        "apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata: {name: orders}\n\
         spec: {function: py-native, topic: orders, brokers: 'kafka:9092'}\n",
    )
    .expect("trigger");
    let objects =
        desired_objects(&f, &[trigger], &settings(), &Catalog::built_in()).expect("valid");
    assert!(
        objects
            .config_map
            .data
            .as_ref()
            .is_some_and(|d| d.contains_key("triggers.yaml")),
        "the host in front consumes the Kafka topic"
    );
    golden("image-python", &to_yaml(&objects));
}

#[test]
fn the_catalog_override_moves_functions_and_refusals_name_the_reason() {
    let pure = named(
        "hello\nspec: {runtime: python3.12, handler: hello.handler, function: 'def handler(e, c): return 1'}",
    );
    let built_in = desired_objects(&pure, &[], &settings(), &Catalog::built_in()).expect("valid");
    assert_eq!(
        (built_in.placement.path.as_str(), built_in.placement.reason),
        ("wasm", "WasmRuntime")
    );
    // A cluster whose catalog runs Python on its own image only.
    let catalog = Catalog::with_override(
        "runtimes:\n- id: python3.x\n  names: [\"python3.*\"]\n  extension: py\n  image: registry.example/py:9\n  command: [python3, /srv/server.py]\n",
        "test",
    )
    .expect("valid override");
    let moved = desired_objects(&pure, &[], &settings(), &catalog).expect("valid");
    assert_eq!(
        (moved.placement.path.as_str(), moved.placement.reason),
        ("image", "NoWasmRuntime")
    );
    let pod = moved
        .deployment
        .spec
        .and_then(|s| s.template.spec)
        .expect("pod");
    let runtime = &pod.containers[1];
    assert_eq!(runtime.image.as_deref(), Some("registry.example/py:9"));
    assert_eq!(
        runtime.command.clone().unwrap_or_default(),
        ["python3", "/srv/server.py"]
    );
    let prepare = &pod.init_containers.unwrap_or_default()[0];
    assert_eq!(
        prepare.args.clone().unwrap_or_default(),
        [
            "prepare",
            "--function-dir",
            "/function",
            "--into",
            "/kubeless",
            "--file",
            "hello.py"
        ]
    );

    for (yaml, reason, says) in [
        (
            "perl\nspec: {runtime: perl5, handler: a.b, function: x}",
            "UnsupportedRuntime",
            "not in the runtime catalog",
        ),
        ("own\nspec: {runtime: custom}", "InvalidSpec", "no source"),
        (
            "own\nspec: {runtime: custom, function: x}",
            "ImageRequired",
            "set spec.image",
        ),
        (
            "clash\nspec: {runtime: ruby3.x, handler: a.b, function: x, port: 9000}",
            "PortConflict",
            "port 9000",
        ),
        (
            "wasm-image\nspec: {function: AGFzbQEAAAA=, functionContentType: base64, image: x:1}",
            "InvalidSpec",
            "spec.image",
        ),
    ] {
        let refusal =
            desired_objects(&named(yaml), &[], &settings(), &Catalog::built_in()).expect_err(yaml);
        assert_eq!(refusal.reason, reason, "{yaml}: {}", refusal.message);
        assert!(
            refusal.message.contains(says),
            "{yaml}: {}",
            refusal.message
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_pod_serves_through_its_containers_here() {
    // A Python function on its image, as the operator builds its pod; each
    // container run here as the Deployment runs it: `prepare` writes the
    // files, the runtime's server serves them, and `wasmless host` in front
    // forwards the events.
    let f = zipped_function(
        "greeter",
        "python3.x",
        ", image: ghcr.io/wasmless/runtime-python:0.1.0",
        &[
            ("main.py", b"from util import shout\n\ndef handler(event, context):\n    return shout(event['data']) + ' from ' + context['function-name']\n"),
            ("util.py", b"def shout(text):\n    return text.upper()\n"),
        ],
    );
    let objects = desired_objects(&f, &[], &settings(), &Catalog::built_in()).expect("valid");
    let here = LocalPod::of(&objects);
    let (pod, code, local) = (&here.spec, &here.code, |v: &str| here.local(v));
    here.prepare();
    assert!(code.join("main.py").is_file() && code.join("util.py").is_file());
    // The runtime container: its command and environment, on a free port.
    let runtime = &pod.containers[1];
    let command = runtime.command.clone().unwrap_or_default();
    assert_eq!(command, ["python3", "/runtime/server.py"]);
    // /runtime as the image lays it out: the server and its request module.
    let runtime_dir = common::tempdir();
    for (file, source) in wasmless::runtimes::catalog::LocalServer::Python.files() {
        std::fs::write(runtime_dir.join(file), source).expect("write the runtime");
    }
    let mut server = std::process::Command::new(&command[0]);
    server.arg(runtime_dir.join("server.py"));
    for var in runtime.env.iter().flatten() {
        server.env(&var.name, local(var.value.as_deref().unwrap_or_default()));
    }
    let mut server = server
        .env("FUNC_PORT", "0")
        .env("FUNC_LISTEN", "127.0.0.1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs the server");
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.stdout.take().expect("piped")),
        &mut line,
    )
    .expect("the server says where it listens");
    let address = line
        .trim()
        .strip_prefix("listening on http://")
        .expect("listening line")
        .to_owned();
    // The host in front, with the function container's environment.
    let host_container = &pod.containers[0];
    let mut host = std::process::Command::new(env!("CARGO_BIN_EXE_wasmless"));
    host.args(host_container.args.iter().flatten());
    for var in host_container.env.iter().flatten() {
        let value = match var.name.as_str() {
            "WASMLESS_FUNCTION_DIR" => here.function_dir.display().to_string(),
            "WASMLESS_LISTEN" => "127.0.0.1:0".to_owned(),
            "WASMLESS_FORWARD_TO" => address.clone(),
            _ => var.value.clone().unwrap_or_default(),
        };
        host.env(&var.name, value);
    }
    host.env("WASMLESS_CACHE_DIR", tempdir())
        .env("WASMLESS_STATE_DIR", tempdir());
    let mut host = Up::spawn(host);
    assert_eq!(
        host.post("/", "hello").await,
        (200, "HELLO from greeter".into())
    );
    assert_eq!(host.get("/healthz").await.0, 200);
    let metrics = host.get("/metrics").await.1;
    assert!(
        metrics.contains("wasmless_function_calls_total{function=\"greeter\"} 1"),
        "{metrics}"
    );
    assert!(host.terminate(Duration::from_secs(30)), "stops on SIGTERM");
    let _ = server.kill();
    let _ = server.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wasm_source_function_gets_its_packages_installed_in_its_pod() {
    // A Python function on the wasm path with a requirements.txt: the pod's
    // init containers unpack it into /kubeless and install the packages
    // with the runtime's image (the wasmless image has no pip); the host
    // serves the prepared folder. Each container run here as the pod runs
    // it, with `pip` as `python3 -m pip`.
    let requirements = "--no-index\n--find-links wheels\ngreeting\n";
    let wheel = common::source::wheel(
        "greeting",
        "def greet(name):\n    return f'Greetings, {name}'\n",
        false,
    );
    let f = zipped_function(
        "greeter",
        "python3.x",
        "",
        &[
            ("main.py", b"import greeting\n\ndef handler(event, context):\n    return greeting.greet(event['data'])\n"),
            ("requirements.txt", requirements.as_bytes()),
            ("wheels/greeting-1.0-py3-none-any.whl", &wheel),
        ],
    );
    let objects = desired_objects(&f, &[], &settings(), &Catalog::built_in()).expect("valid");
    assert_eq!(objects.placement.reason, "WasmRuntime");
    golden(
        "source-dependencies",
        &serde_saphyr::to_string(&objects.deployment).expect("yaml"),
    );
    let here = LocalPod::of(&objects);
    let (pod, code, local) = (&here.spec, &here.code, |v: &str| here.local(v));
    let init = pod.init_containers.clone().unwrap_or_default();
    assert_eq!(init.len(), 2, "prepare and install");
    here.prepare();
    let install = init[1].command.clone().unwrap_or_default();
    assert_eq!(install[0], "pip");
    assert!(
        install.iter().any(|a| a == "--only-binary=:all:"),
        "{install:?}"
    );
    // The requirements' relative paths are the function's folder's.
    let status = std::process::Command::new("python3")
        .args(["-m", "pip"])
        .args(install[1..].iter().map(|a| local(a)))
        .current_dir(code)
        .status()
        .expect("pip runs");
    assert!(status.success());
    assert!(code.join(".deps/greeting/__init__.py").is_file());
    let host_container = &pod.containers[0];
    let mut host = std::process::Command::new(env!("CARGO_BIN_EXE_wasmless"));
    host.args(host_container.args.iter().flatten());
    for var in host_container.env.iter().flatten() {
        let value = match var.name.as_str() {
            "WASMLESS_LISTEN" => "127.0.0.1:0".to_owned(),
            _ => local(var.value.as_deref().unwrap_or_default()),
        };
        host.env(&var.name, value);
    }
    let cache = tempdir();
    host.env("WASMLESS_CACHE_DIR", &cache)
        .env("WASMLESS_STATE_DIR", tempdir())
        .env(
            "WASMLESS_RUNTIMES_DIR",
            common::root().join("runtimes/dist"),
        );
    let mut host = Up::spawn(host);
    assert_eq!(host.post("/", "Ada").await, (200, "Greetings, Ada".into()));
    // The host has the prepared files compiled to bytecode in its own
    // folder (the pod's /kubeless is read-only to it): the handler's module
    // and the installed package.
    let bytecode = cache
        .join("bytecode")
        .join(code.file_name().expect("a name"))
        .join("kubeless");
    let compiled = common::source::has_bytecode;
    // The run's mark that it is done, in the folder above.
    let done = || common::source::bytecode_done(bytecode.parent().expect("the folder"));
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !(done()
        && compiled(&bytecode, "main")
        && compiled(&bytecode.join(".deps/greeting"), "__init__"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no bytecode in {}:\n{}",
            bytecode.display(),
            host.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(host.post("/", "Ada").await, (200, "Greetings, Ada".into()));
    assert!(
        host.terminate(Duration::from_secs(30)),
        "stops on SIGTERM:\n{}",
        host.log()
    );
}

#[test]
fn a_source_function_with_packages_stays_in_the_pool_whose_pods_get_its_installer() {
    use wasmless::operator::pool::{POOL_CODE_ROOT, PoolSettings, desired_pool, installer_for};
    let catalog = Catalog::built_in();
    let f = zipped_function(
        "greeter",
        "python3.x",
        "",
        &[
            ("main.py", b"def handler(event, context):\n    return 'x'\n"),
            ("requirements.txt", b"greeting\n"),
        ],
    );
    let objects = desired_objects(&f, &[], &settings(), &catalog).expect("valid");
    assert_eq!(
        objects.hosting.hosting,
        wasmless::crd::Hosting::Pool,
        "{}",
        objects.hosting.message
    );
    let installer = installer_for(&f.to_function(), &catalog).expect("an installer");
    assert_eq!(installer.language, wasmless::runtimes::Language::Python);
    // Without a dependency file it needs none.
    let plain = zipped_function(
        "plain",
        "python3.x",
        "",
        &[("main.py", b"def handler(event, context):\n    return 'x'\n")],
    );
    assert!(installer_for(&plain.to_function(), &catalog).is_none());

    let installers = std::collections::BTreeMap::from([(installer.language.tag(), installer)]);
    let pool = desired_pool("team", &settings(), &PoolSettings::default(), &installers);
    golden(
        "pool-installers",
        &serde_saphyr::to_string(&pool.deployment).expect("yaml"),
    );
    let pod = pool
        .deployment
        .spec
        .and_then(|s| s.template.spec)
        .expect("a pod");
    let [host, install] = pod.containers.as_slice() else {
        panic!("a host and an installer: {:?}", pod.containers);
    };
    assert!(host.env.iter().flatten().any(|e| {
        e.name == "WASMLESS_INSTALLER_DIR" && e.value.as_deref() == Some(POOL_CODE_ROOT)
    }));
    assert_eq!(install.name, "install-python");
    assert_eq!(
        install.image.as_deref(),
        catalog.find("python3.x").and_then(|e| e.image.as_deref())
    );
    let command = install.command.clone().unwrap_or_default();
    assert_eq!(command[..2], ["/bin/sh", "-c"]);
    assert!(
        command[2].contains("'--only-binary=:all:'") && command[2].contains("'./.deps'"),
        "{}",
        command[2]
    );
    for container in [host, install] {
        assert!(
            container
                .volume_mounts
                .iter()
                .flatten()
                .any(|m| m.name == "code" && m.mount_path == POOL_CODE_ROOT),
            "{}",
            container.name
        );
    }
}

#[test]
fn the_operators_cache_keeps_a_functions_dependency_file_so_the_pool_gets_every_installer() {
    use kube::core::DeserializeGuard;
    use std::sync::Arc;
    use wasmless::operator::pool::pool_installers;
    use wasmless::operator::reconcile::{SOURCE_NOT_CACHED, without_source};
    let catalog = Catalog::built_in();
    let cached = |name: &str, runtime: &str, files: &[(&str, &[u8])]| {
        let mut f = zipped_function(name, runtime, "", files);
        f.metadata.namespace = Some("team".into());
        let big = f.spec.function.clone().expect("a source").len();
        let mut object = DeserializeGuard(Ok(f));
        without_source(&mut object, &catalog);
        let f = object.0.expect("valid");
        assert_eq!(
            f.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(SOURCE_NOT_CACHED))
                .map(String::as_str),
            Some("true")
        );
        (f, big)
    };
    // Code that does not compress: the cache must not keep it.
    let mut seed = 7u32;
    let padding: Vec<u8> = (0..200_000)
        .map(|_| {
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            b'a' + (seed >> 16) as u8 % 26
        })
        .collect();
    let (python, big) = cached(
        "py",
        "python3.x",
        &[
            ("main.py", padding.as_slice()),
            ("requirements.txt", b"greeting\n"),
        ],
    );
    let (javascript, _) = cached(
        "js",
        "nodejs20",
        &[
            ("main.js", b"module.exports.handler = () => 1;\n"),
            ("package.json", br#"{"dependencies": {"shout": "1.0.0"}}"#),
        ],
    );
    let (plain, _) = cached("plain", "python3.x", &[("main.py", b"x = 1\n")]);
    // The handler's code is gone from the cache, the dependency file stays.
    let kept = python
        .spec
        .function
        .as_deref()
        .expect("the dependency file");
    assert!(kept.len() < big / 10, "{} of {big}", kept.len());
    assert_eq!(plain.spec.function, None);
    let store: Vec<_> = [python, javascript, plain]
        .into_iter()
        .map(|f| Arc::new(DeserializeGuard(Ok(f))))
        .collect();
    let installers = pool_installers(&store, "team", &catalog);
    assert_eq!(
        installers.keys().copied().collect::<Vec<_>>(),
        ["javascript", "python"]
    );
}

/// The operator makes a pool Function's Service from its cached copy (the
/// source left out) while it reads the whole Function: for every kind of
/// Function the cache must decide as the whole object does, and make the
/// same Service.
#[test]
fn the_cached_copy_of_a_function_makes_the_same_pool_service_as_the_whole_one() {
    use kube::core::DeserializeGuard;
    use wasmless::crd::Hosting;
    use wasmless::operator::reconcile::without_source;
    use wasmless::operator::resources::cached_pool_service;
    let catalog = Catalog::built_in();
    let base = "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: hello, labels: {team: web}}\nspec:\n";
    let functions = [
        function(&format!("{base}  function: (module)\n")),
        function(&format!("{base}  function: (module)\n  port: 9000\n")),
        function(&format!(
            "{base}  function: (module)\n  placement: Dedicated\n"
        )),
        function(&format!(
            "{base}  runtime: python3.x\n  handler: greet.handler\n  function: |\n    def handler(event, context):\n        return 'hi'\n"
        )),
        function(&format!(
            "{base}  runtime: nodejs20\n  handler: main.handler\n  functionContentType: base64\n  function: {}\n",
            base64::engine::general_purpose::STANDARD.encode("module.exports.handler = () => 1;\n")
        )),
        zipped_function(
            "hello",
            "python3.x",
            "",
            &[
                ("main.py", b"import greeting\n"),
                ("requirements.txt", b"greeting\n"),
            ],
        ),
        zipped_function(
            "hello",
            "python3.x",
            "",
            &[
                ("main.py", b"import numpy\n"),
                ("requirements.txt", b"numpy==2.1\n"),
            ],
        ),
    ];
    let mut pooled = 0;
    for whole in functions {
        let objects = desired_objects(&whole, &[], &settings(), &catalog).expect("valid");
        let mut object = DeserializeGuard(Ok(whole.clone()));
        without_source(&mut object, &catalog);
        let cached = object.0.expect("valid");
        assert!(
            cached.spec.function.as_ref().is_none_or(|f| f.len() < 1000),
            "the cache holds no source"
        );
        let early = cached_pool_service(&cached, &settings(), &catalog);
        if objects.hosting.hosting == Hosting::Pool {
            pooled += 1;
            assert_eq!(early.as_ref(), Some(&objects.service), "{:?}", whole.spec);
        } else {
            assert_eq!(early, None, "{:?}", whole.spec);
        }
    }
    assert_eq!(pooled, 4, "four of the seven are pool Functions");
    // Refused for what the cache keeps (a source runtime with no handler):
    // no Service from the cache either.
    let refused = function(&format!(
        "{base}  runtime: python3.x\n  function: |\n    def handler(event, context):\n        return 'hi'\n"
    ));
    assert!(desired_objects(&refused, &[], &settings(), &catalog).is_err());
    let mut object = DeserializeGuard(Ok(refused));
    without_source(&mut object, &catalog);
    let cached = object.0.expect("valid");
    assert_eq!(cached_pool_service(&cached, &settings(), &catalog), None);
}
