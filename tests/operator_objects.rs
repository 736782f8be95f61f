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
    let mut f: FunctionResource = serde_yaml::from_str(yaml).expect("test Function parses");
    f.metadata.namespace = Some("team".into());
    f.metadata.uid = Some("0b5c7d6e-1111-2222-3333-444455556666".into());
    f
}

fn to_yaml(objects: &FunctionObjects) -> String {
    let mut docs = vec![
        serde_yaml::to_string(&objects.config_map).expect("yaml"),
        serde_yaml::to_string(&objects.deployment).expect("yaml"),
        serde_yaml::to_string(&objects.service).expect("yaml"),
    ];
    if let Some(hpa) = &objects.autoscaler {
        docs.push(serde_yaml::to_string(hpa).expect("yaml"));
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
fn a_wasm_module_becomes_a_config_map_deployment_and_service() {
    // `\0asm` version 1: the smallest module, base64 as the CLI sends it.
    let f = function(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: hello, labels: {team: web}}\n\
         spec: {function: AGFzbQEAAAA=, functionContentType: base64, timeout: '10', memory: 64Mi}\n",
    );
    let objects = desired_objects(&f, &[], &settings()).expect("valid");
    let module = &objects.config_map.binary_data.as_ref().expect("binary")["function.wasm"];
    assert_eq!(module.0, b"\0asm\x01\0\0\0");
    assert!(objects.autoscaler.is_none());
    golden("wasm-module", &to_yaml(&objects));
}

#[test]
fn a_source_function_keeps_its_source_in_the_manifest() {
    let f = function(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: greet}\n\
         spec:\n  runtime: python3.x\n  handler: greet.handler\n  function: |\n    def handler(event, context):\n        return 'hi'\n",
    );
    let objects = desired_objects(&f, &[], &settings()).expect("valid");
    golden("source-runtime", &to_yaml(&objects));
}

#[test]
fn env_secrets_port_and_resources_reach_the_pods() {
    let f = function(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: orders}\n\
         spec:\n  function: '(module)'\n  env: [{name: GREETING, value: hi}]\n  secrets: [db-creds, api.keys]\n  port: 9000\n  replicas: 3\n\
         \x20 resources: {requests: {cpu: 100m}, limits: {memory: 256Mi}}\n",
    );
    let objects = desired_objects(&f, &[], &settings()).expect("valid");
    golden("env-and-secrets", &to_yaml(&objects));
}

#[test]
fn autoscaling_adds_an_autoscaler_that_owns_the_replica_count() {
    let f = function(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: busy}\n\
         spec: {function: '(module)', replicas: 5, autoscaling: {minReplicas: 2, maxReplicas: 10, targetCpuUtilization: 60}}\n",
    );
    let objects = desired_objects(&f, &[], &settings()).expect("valid");
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
    let objects = desired_objects(&f, &[], &settings()).expect("valid");
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
    let f = function(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {name: audit, labels: {kind: sink}}\n\
         spec: {function: '(module)'}\n",
    );
    let triggers: Vec<KafkaTrigger> = [
        "apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata: {name: orders}\nspec: {brokers: 'k:9092', topic: orders, function: audit}\n",
        "apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata: {name: all}\nspec: {brokers: 'k:9092', topic: events, functionSelector: {matchLabels: {kind: sink}}}\n",
    ]
    .iter()
    .map(|y| serde_yaml::from_str(y).expect("trigger parses"))
    .collect();
    let objects = desired_objects(&f, &triggers, &settings()).expect("valid");
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
        let objects = desired_objects(&f, &[], &settings()).expect("valid");
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
        desired_objects(&f, &[], &settings()).expect_err(spec)
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
    let runtime = refusal("{function: 'x', runtime: ruby3.2}");
    assert_eq!(runtime.reason, "UnsupportedRuntime");
    assert!(
        runtime.message.contains("supported: wasm, python3.x"),
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
        let mut t: HttpTriggerResource = serde_yaml::from_str(yaml).expect("trigger parses");
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
            serde_yaml::to_string(&ingress).expect("yaml"),
            serde_yaml::to_string(&route).expect("yaml"),
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
    let objects = desired_objects(&f, &[], &settings()).expect("valid");
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
    assert!(host.terminate(Duration::from_secs(30)), "stops on SIGTERM");
}
