//! End to end on a real Kubernetes cluster: install the CRDs, run the
//! operator, deploy a function with the CLI and call it. Runs only when
//! `KUBECONFIG` is set and `WASMLESS_E2E_IMAGE` names an image of this
//! project that the cluster can pull (for kind: `docker build -t
//! wasmless:e2e . && kind load docker-image wasmless:e2e`); otherwise it
//! says that it was skipped.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::wasm;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

fn wasmless(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wasmless"))
        .args(args)
        .output()
        .expect("runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Kills the operator and deletes the namespace, whatever happens.
struct Cleanup {
    operator: Option<Child>,
    namespace: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut child) = self.operator.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("kubectl")
            .args(["delete", "namespace", &self.namespace, "--wait=false"])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_function_applied_to_a_cluster_answers() {
    let (Some(_), Ok(image)) = (
        std::env::var_os("KUBECONFIG"),
        std::env::var("WASMLESS_E2E_IMAGE"),
    ) else {
        // Written to stderr directly, so that the test harness does not
        // capture it: a skip must be visible.
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED e2e_cluster::a_function_applied_to_a_cluster_answers: no cluster here; set KUBECONFIG and WASMLESS_E2E_IMAGE (an image of this project the cluster can pull) to run it"
        );
        return;
    };
    let client = Client::try_default().await.expect("KUBECONFIG works");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in wasmless::crd::custom_resource_definitions() {
        crds.patch(
            &crd.name_any(),
            &PatchParams::apply("wasmless-e2e").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("CRDs install");
    }
    // Give the API server a moment to serve the new types.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let namespace = format!("wasmless-e2e-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(namespace.clone());
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    let mut cleanup = Cleanup {
        operator: None,
        namespace: namespace.clone(),
    };
    cleanup.operator = Some(
        Command::new(env!("CARGO_BIN_EXE_wasmless"))
            .args([
                "operator",
                "--watch-namespace",
                &namespace,
                "--lease-namespace",
                &namespace,
            ])
            .args([
                "--image",
                &image,
                "--image-pull-policy",
                "IfNotPresent",
                "--listen",
                "127.0.0.1:0",
            ])
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the operator starts"),
    );
    let module = wasm("hello").display().to_string();
    let (ok, out) = wasmless(&[
        "function",
        "deploy",
        "hello",
        "--from-file",
        &module,
        "-n",
        &namespace,
        "--wait",
        "--wait-timeout",
        "5m",
    ]);
    assert!(ok, "deploy: {out}");
    let (ok, out) = wasmless(&[
        "function", "call", "hello", "--data", "cluster", "-n", &namespace,
    ]);
    assert!(ok, "call: {out}");
    assert_eq!(out, "Hello, cluster!\n");
    let (ok, out) = wasmless(&["function", "delete", "hello", "-n", &namespace]);
    assert!(ok, "delete: {out}");
    let _ = namespaces
        .delete(&namespace, &DeleteParams::default())
        .await;
    drop(cleanup);
}
