//! The reconcilers against the mock API server, one named scenario each.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::fixtures::{Step, context, empty_list, function, pool_pod, set_pool_pods};
use super::reconcile::{error_policy, reconcile_function, reconcile_http_trigger};
use crate::crd::{FunctionResource, HttpTriggerResource};

const KAFKA: &str = "/apis/wasmless.io/v1alpha1/namespaces/team/kafkatriggers";
const EVENTS: &str = "/apis/events.k8s.io/v1/namespaces/team/events";
const SLICES: &str = "/apis/discovery.k8s.io/v1/namespaces/team/endpointslices";

fn path(kind: &str, name: &str) -> String {
    match kind {
        "configmaps" | "services" | "endpoints" => format!("/api/v1/namespaces/team/{kind}/{name}"),
        "deployments" => format!("/apis/apps/v1/namespaces/team/deployments/{name}"),
        "serviceaccounts" => format!("/api/v1/namespaces/team/serviceaccounts/{name}"),
        "rolebindings" | "roles" => {
            format!("/apis/rbac.authorization.k8s.io/v1/namespaces/team/{kind}/{name}")
        }
        "horizontalpodautoscalers" => {
            format!("/apis/autoscaling/v2/namespaces/team/horizontalpodautoscalers/{name}")
        }
        "functions" => format!("/apis/wasmless.io/v1alpha1/namespaces/team/functions/{name}"),
        "status" => format!("/apis/wasmless.io/v1alpha1/namespaces/team/functions/{name}/status"),
        _ => panic!("no path for {kind}"),
    }
}

/// The Deployment status of pods that are all up.
fn available(generation: i64) -> Value {
    json!({"observedGeneration": generation, "replicas": 1, "updatedReplicas": 1,
           "readyReplicas": 1, "availableReplicas": 1,
           "conditions": [{"type": "Available", "status": "True"}]})
}

/// A dedicated wasm function (its own ConfigMap, Deployment, Service).
fn wat(source: &str) -> Value {
    json!({"function": source, "placement": "Dedicated"})
}

/// The steps of applying a valid function with no Kafka trigger and no
/// autoscaling, the Deployment answering with `deployment_status`.
fn apply_steps(name: &str, deployment_status: Value) -> Vec<Step> {
    vec![
        Step::reply(Method::GET, KAFKA, 200, empty_list("KafkaTriggerList")),
        Step::echo(Method::PATCH, &path("configmaps", name)),
        Step::echo_with_status(Method::PATCH, &path("deployments", name), deployment_status),
        Step::echo(Method::PATCH, &path("services", name)),
        Step::not_found(Method::GET, &path("horizontalpodautoscalers", name)),
    ]
}

fn ready_of(status_patch: &Value) -> (String, String) {
    let condition = &status_patch["status"]["conditions"][0];
    assert_eq!(condition["type"], "Ready");
    (
        condition["status"].as_str().unwrap_or_default().to_owned(),
        condition["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_new_function_gets_its_objects_owned_and_a_deploying_status() {
    let (ctx, server) = context();
    let f = function("hello", wat("(module)"), 1);
    let mut steps = apply_steps("hello", json!({"observedGeneration": 1}));
    steps.push(Step::patch(&path("status", "hello"), &f));
    let server = server.run(steps);
    let action = reconcile_function(Arc::new(f), ctx)
        .await
        .expect("reconciles");
    assert_eq!(action, Action::requeue(Duration::from_secs(300)));
    let seen = server.await.expect("server");
    for applied in &seen[1..4] {
        let owner = &applied.body["metadata"]["ownerReferences"][0];
        assert_eq!(owner["uid"], "uid-hello", "{}", applied.request);
        assert_eq!(owner["kind"], "Function");
        assert_eq!(owner["controller"], true);
    }
    let status = &seen[5].body;
    assert_eq!(ready_of(status), ("False".into(), "Deploying".into()));
    assert_eq!(
        status["status"]["selector"],
        "created-by=wasmless,function=hello"
    );
    assert_eq!(
        status["status"]["url"],
        "http://hello.team.svc.cluster.local:8080/"
    );
    assert_eq!(status["status"]["observedGeneration"], 1);
}

/// The steps of reconciling `f` (named hello) into a new pool, `secrets`
/// (the Secrets Role's) between the pool's identity and its Deployment.
fn pool_steps(f: &FunctionResource, secrets: Vec<Step>) -> Vec<Step> {
    let mut steps = vec![
        // The Service first, with no list of KafkaTriggers before it (the
        // pool reads those itself): it is what a new function waits for.
        Step::echo(Method::PATCH, &path("services", "hello")),
        // Its Endpoints beside it (the two requests go out together).
        Step::echo(Method::PATCH, &path("endpoints", "hello")),
        // No settings of the namespace's own: the operator's.
        Step::not_found(Method::GET, &path("configmaps", "wasmless-pool")),
        Step::echo(Method::PATCH, &path("serviceaccounts", "wasmless-pool")),
        Step::echo(Method::PATCH, &path("rolebindings", "wasmless-pool")),
    ];
    steps.extend(secrets);
    steps.extend([
        Step::echo_with_status(
            Method::PATCH,
            &path("deployments", "wasmless-pool"),
            available(1),
        ),
        Step::not_found(
            Method::DELETE,
            &path("horizontalpodautoscalers", "wasmless-pool"),
        ),
        // Nothing of a dedicated placement is left.
        Step::not_found(Method::GET, &path("horizontalpodautoscalers", "hello")),
        Step::not_found(Method::GET, &path("deployments", "hello")),
        Step::not_found(Method::GET, &path("configmaps", "hello")),
        // No EndpointSlice of an earlier selector is left.
        Step::reply(Method::DELETE, SLICES, 200, empty_list("EndpointSliceList")),
        Step::patch(&path("status", "hello"), f),
        Step::echo(Method::POST, EVENTS),
    ]);
    steps
}

#[tokio::test]
async fn a_pool_function_gets_the_namespaces_pool_and_a_service_with_its_pods() {
    let (ctx, server) = context();
    set_pool_pods(
        &ctx,
        vec![
            pool_pod("team", "pool-b", "198.18.1.7", true),
            pool_pod("team", "pool-a", "198.18.1.9", false),
            pool_pod("other", "pool-c", "198.18.1.8", true),
        ],
    );
    let f = function("hello", json!({"function": "(module)"}), 1);
    let steps = pool_steps(&f, Vec::new());
    let server = server.run(steps);
    reconcile_function(Arc::new(f), ctx)
        .await
        .expect("reconciles");
    let seen = server.await.expect("server");
    let binding = &seen[4].body;
    assert_eq!(binding["roleRef"]["kind"], "ClusterRole");
    assert_eq!(binding["roleRef"]["name"], "wasmless-pool");
    assert_eq!(binding["subjects"][0]["namespace"], "team");
    let pod = &seen[5].body["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "wasmless-pool");
    assert_eq!(pod["containers"][0]["args"], json!(["host", "--pool"]));
    // The pool is shared: no Function owns it.
    assert!(seen[5].body["metadata"]["ownerReferences"].is_null());
    // The Service selects nothing: its Endpoints are the operator's, the
    // namespace's pool pods (the ready one as an address), on the port
    // the Service names.
    let service = &seen[0].body;
    assert!(service["spec"]["selector"].is_null(), "{service}");
    assert_eq!(
        service["metadata"]["ownerReferences"][0]["uid"],
        "uid-hello"
    );
    let endpoints = &seen[1].body;
    assert_eq!(
        endpoints["metadata"]["ownerReferences"][0]["uid"],
        "uid-hello"
    );
    let subset = &endpoints["subsets"][0];
    assert_eq!(subset["addresses"][0]["ip"], "198.18.1.7");
    assert_eq!(subset["addresses"][0]["targetRef"]["name"], "pool-b");
    assert_eq!(subset["addresses"][0]["nodeName"], "node-1");
    assert_eq!(subset["notReadyAddresses"][0]["ip"], "198.18.1.9");
    assert_eq!(endpoints["subsets"].as_array().map(Vec::len), Some(1));
    assert_eq!(subset["addresses"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        subset["ports"][0]["name"],
        service["spec"]["ports"][0]["name"]
    );
    assert_eq!(subset["ports"][0]["port"], 8080);
    let slices = &seen[10].request;
    assert_eq!(slices, &format!("DELETE {SLICES}"));
    let status = &seen[11].body["status"];
    assert_eq!(
        ready_of(&seen[11].body),
        ("True".into(), "Available".into())
    );
    assert_eq!(status["placement"]["hosting"], "Pool");
    assert_eq!(status["placement"]["hostingReason"], "Default");
    assert_eq!(status["placement"]["pool"], "wasmless-pool");
    assert_eq!(status["selector"], "wasmless.io/pool=wasmless-pool");
}

#[tokio::test]
async fn a_pool_function_with_secrets_lets_the_pool_read_those_by_name() {
    let (ctx, server) = context();
    let f = function(
        "hello",
        json!({"function": "(module)", "secrets": ["db-creds", "api-keys"]}),
        1,
    );
    let steps = pool_steps(
        &f,
        vec![
            Step::echo(Method::PATCH, &path("roles", "wasmless-pool-secrets")),
            Step::echo(
                Method::PATCH,
                &path("rolebindings", "wasmless-pool-secrets"),
            ),
        ],
    );
    let server = server.run(steps);
    reconcile_function(Arc::new(f), ctx)
        .await
        .expect("reconciles");
    let seen = server.await.expect("server");
    // get, by name, on exactly the Secrets it names: nothing else.
    assert_eq!(
        seen[5].body["rules"],
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"],
                "resourceNames": ["api-keys", "db-creds"]}])
    );
    let binding = &seen[6].body;
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["roleRef"]["name"], "wasmless-pool-secrets");
    assert_eq!(binding["subjects"][0]["name"], "wasmless-pool");
    assert_eq!(seen[13].body["status"]["placement"]["hosting"], "Pool");
}

#[tokio::test]
async fn a_function_whose_pods_come_up_turns_ready_with_an_event() {
    let (ctx, server) = context();
    let mut f = function("hello", wat("(module)"), 1);
    f.status = Some(serde_json::from_value(json!({
        "conditions": [{"type": "Ready", "status": "False", "reason": "Deploying", "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    })).expect("status"));
    let mut steps = apply_steps("hello", available(0));
    steps.push(Step::patch(&path("status", "hello"), &f));
    steps.push(Step::echo(Method::POST, EVENTS));
    let server = server.run(steps);
    reconcile_function(Arc::new(f), ctx)
        .await
        .expect("reconciles");
    let seen = server.await.expect("server");
    assert_eq!(ready_of(&seen[5].body), ("True".into(), "Available".into()));
    assert_eq!(seen[5].body["status"]["readyReplicas"], 1);
    assert_eq!(seen[6].body["reason"], "Ready");
    assert_eq!(seen[6].body["type"], "Normal");
}

#[tokio::test]
async fn a_new_generation_rolls_the_pods_with_a_new_checksum() {
    let mut checksums = Vec::new();
    for (generation, source) in [(1, "(module)"), (2, "(module (memory 1))")] {
        let (ctx, server) = context();
        let f = function("hello", wat(source), generation);
        let mut steps = apply_steps("hello", available(generation));
        steps.push(Step::patch(&path("status", "hello"), &f));
        steps.push(Step::echo(Method::POST, EVENTS));
        let server = server.run(steps);
        reconcile_function(Arc::new(f), ctx)
            .await
            .expect("reconciles");
        let seen = server.await.expect("server");
        assert_eq!(seen[1].body["data"]["function.wat"], source);
        let annotations = &seen[2].body["spec"]["template"]["metadata"]["annotations"];
        checksums.push(annotations["wasmless.io/checksum"].clone());
        assert_eq!(seen[5].body["status"]["observedGeneration"], generation);
    }
    assert!(checksums[0].is_string());
    assert_ne!(checksums[0], checksums[1], "a new source rolls the pods");
}

#[tokio::test]
async fn an_invalid_spec_is_reported_as_a_condition_and_an_event_and_not_retried() {
    let (ctx, server) = context();
    let f = function(
        "hello",
        json!({"function": "(module)", "timeout": "soon"}),
        3,
    );
    let server = server.run(vec![
        Step::reply(Method::GET, KAFKA, 200, empty_list("KafkaTriggerList")),
        Step::patch(&path("status", "hello"), &f),
        Step::echo(Method::POST, EVENTS),
    ]);
    let action = reconcile_function(Arc::new(f), ctx)
        .await
        .expect("not an error");
    assert_eq!(action, Action::await_change());
    let seen = server.await.expect("server");
    assert_eq!(
        ready_of(&seen[1].body),
        ("False".into(), "InvalidSpec".into())
    );
    let message = seen[1].body["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.starts_with("spec.timeout"), "{message}");
    assert_eq!(seen[2].body["type"], "Warning");
    assert_eq!(seen[2].body["reason"], "InvalidSpec");
    assert!(
        seen[2].body["note"]
            .as_str()
            .unwrap_or_default()
            .contains("spec.timeout")
    );
}

#[tokio::test]
async fn an_api_error_is_returned_and_retried_with_a_growing_delay() {
    let (ctx, server) = context();
    let f = Arc::new(function("hello", wat("(module)"), 1));
    let server = server.run(vec![
        Step::reply(Method::GET, KAFKA, 200, empty_list("KafkaTriggerList")),
        Step::reply(
            Method::PATCH,
            &path("configmaps", "hello"),
            500,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                   "message": "etcdserver: request timed out", "reason": "InternalError", "code": 500}),
        ),
    ]);
    let error = reconcile_function(f.clone(), ctx.clone())
        .await
        .expect_err("the apply failed");
    server.await.expect("server");
    assert!(
        error.to_string().starts_with("applying ConfigMap hello"),
        "{error}"
    );
    let delays: Vec<Action> = (0..3)
        .map(|_| error_policy(f.clone(), &error, ctx.clone()))
        .collect();
    assert_eq!(
        delays,
        [1, 2, 4].map(|s| Action::requeue(Duration::from_secs(s)))
    );
    let other = Arc::new(function("other", wat("(module)"), 1));
    assert_eq!(
        error_policy(other, &error, ctx),
        Action::requeue(Duration::from_secs(1)),
        "one failing function does not slow the others"
    );
}

#[tokio::test]
async fn dropping_autoscaling_deletes_the_autoscaler_it_made() {
    let (ctx, server) = context();
    let f = function("hello", wat("(module)"), 2);
    let mut steps = apply_steps("hello", available(2));
    steps.pop();
    steps.push(Step::reply(
        Method::GET,
        &path("horizontalpodautoscalers", "hello"),
        200,
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
               "metadata": {"name": "hello", "namespace": "team",
                            "ownerReferences": [{"apiVersion": "wasmless.io/v1alpha1", "kind": "Function",
                                                 "name": "hello", "uid": "uid-hello", "controller": true}]},
               "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "hello"}, "maxReplicas": 3}}),
    ));
    steps.push(Step::reply(
        Method::DELETE,
        &path("horizontalpodautoscalers", "hello"),
        200,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Success"}),
    ));
    steps.push(Step::patch(&path("status", "hello"), &f));
    steps.push(Step::echo(Method::POST, EVENTS));
    let server = server.run(steps);
    reconcile_function(Arc::new(f), ctx)
        .await
        .expect("reconciles");
    let seen = server.await.expect("server");
    assert!(seen.iter().any(|s| s.request.starts_with("DELETE")));
}

#[tokio::test]
async fn autoscaling_applies_an_autoscaler_and_carries_the_live_replica_count() {
    let (ctx, server) = context();
    let f = function(
        "hello",
        json!({"function": "(module)", "placement": "Dedicated", "autoscaling": {"maxReplicas": 4}}),
        1,
    );
    let three = json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
                       "readyReplicas": 3, "availableReplicas": 3,
                       "conditions": [{"type": "Available", "status": "True"}]});
    let mut steps = apply_steps("hello", three);
    steps.pop();
    // The Deployment as the autoscaler left it: 3 replicas.
    steps.insert(
        2,
        Step::reply(
            Method::GET,
            &path("deployments", "hello"),
            200,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "hello", "namespace": "team"}, "spec": {"replicas": 3, "selector": {}, "template": {}}}),
        ),
    );
    steps.push(Step::echo(
        Method::PATCH,
        &path("horizontalpodautoscalers", "hello"),
    ));
    steps.push(Step::patch(&path("status", "hello"), &f));
    steps.push(Step::echo(Method::POST, EVENTS));
    let server = server.run(steps);
    reconcile_function(Arc::new(f), ctx)
        .await
        .expect("reconciles");
    let seen = server.await.expect("server");
    assert_eq!(
        seen[3].body["spec"]["replicas"], 3,
        "the apply keeps what the autoscaler set"
    );
    assert_eq!(seen[5].body["spec"]["maxReplicas"], 4);
}

#[tokio::test]
async fn kafka_triggers_that_select_the_function_ride_in_its_config_map() {
    let (ctx, server) = context();
    let mut f = function("audit", wat("(module)"), 1);
    f.metadata.labels = Some([("tier".to_owned(), "sink".to_owned())].into());
    let triggers = json!({"apiVersion": "wasmless.io/v1alpha1", "kind": "KafkaTriggerList",
        "metadata": {"resourceVersion": "1"}, "items": [
        {"apiVersion": "wasmless.io/v1alpha1", "kind": "KafkaTrigger",
         "metadata": {"name": "mine", "namespace": "team"},
         "spec": {"brokers": "k:9092", "topic": "orders", "functionSelector": {"matchLabels": {"tier": "sink"}}}},
        {"apiVersion": "wasmless.io/v1alpha1", "kind": "KafkaTrigger",
         "metadata": {"name": "theirs", "namespace": "team"},
         "spec": {"brokers": "k:9092", "topic": "other", "function": "someone-else"}}]});
    let mut steps = apply_steps("audit", available(1));
    steps[0] = Step::reply(Method::GET, KAFKA, 200, triggers);
    steps.push(Step::patch(&path("status", "audit"), &f));
    steps.push(Step::echo(Method::POST, EVENTS));
    let server = server.run(steps);
    reconcile_function(Arc::new(f), ctx)
        .await
        .expect("reconciles");
    let seen = server.await.expect("server");
    let triggers = seen[1].body["data"]["triggers.yaml"]
        .as_str()
        .unwrap_or_default();
    assert!(triggers.contains("name: mine"), "{triggers}");
    assert!(!triggers.contains("theirs"), "{triggers}");
}

#[tokio::test]
async fn an_http_trigger_gets_an_ingress_and_a_ready_status() {
    let (ctx, server) = context();
    let trigger: HttpTriggerResource = serde_json::from_value(json!({
        "apiVersion": "wasmless.io/v1alpha1", "kind": "HTTPTrigger",
        "metadata": {"name": "web", "namespace": "team", "uid": "uid-web", "generation": 1},
        "spec": {"function": "hello", "host": "hello.example.com"},
    }))
    .expect("trigger");
    let hello: FunctionResource = function("hello", wat("(module)"), 1);
    let server = server.run(vec![
        // As an ingress controller leaves it: with the address it serves.
        Step::echo_with_status(
            Method::PATCH,
            "/apis/networking.k8s.io/v1/namespaces/team/ingresses/web",
            json!({"loadBalancer": {"ingress": [{"ip": "198.18.0.1"}]}}),
        ),
        Step::not_found(
            Method::GET,
            "/apis/gateway.networking.k8s.io/v1/namespaces/team/httproutes/web",
        ),
        Step::reply(
            Method::GET,
            &path("functions", "hello"),
            200,
            serde_json::to_value(&hello).expect("json"),
        ),
        Step::patch(
            "/apis/wasmless.io/v1alpha1/namespaces/team/httptriggers/web/status",
            &trigger,
        ),
    ]);
    reconcile_http_trigger(Arc::new(trigger), ctx)
        .await
        .expect("reconciles");
    let seen = server.await.expect("server");
    let rule = &seen[0].body["spec"]["rules"][0];
    assert_eq!(rule["host"], "hello.example.com");
    assert_eq!(
        rule["http"]["paths"][0]["backend"]["service"]["name"],
        "hello"
    );
    assert_eq!(ready_of(&seen[3].body), ("True".into(), "Exposed".into()));
    assert_eq!(seen[3].body["status"]["url"], "http://hello.example.com/");
}

#[tokio::test]
async fn an_invalid_cron_trigger_is_refused_with_an_event() {
    let (ctx, server) = context();
    let trigger: crate::crd::CronTriggerResource = serde_json::from_value(json!({
        "apiVersion": "wasmless.io/v1alpha1", "kind": "CronTrigger",
        "metadata": {"name": "nightly", "namespace": "team", "uid": "uid-n", "generation": 2},
        "spec": {"function": "hello", "schedule": "0 0 30 2 *"},
    }))
    .expect("trigger");
    let server = server.run(vec![
        Step::patch(
            "/apis/wasmless.io/v1alpha1/namespaces/team/crontriggers/nightly/status",
            &trigger,
        ),
        Step::echo(Method::POST, EVENTS),
    ]);
    let action = super::reconcile::reconcile_cron_trigger(Arc::new(trigger), ctx)
        .await
        .expect("not an error");
    assert_eq!(action, Action::await_change());
    let seen = server.await.expect("server");
    assert_eq!(
        ready_of(&seen[0].body),
        ("False".into(), "InvalidSpec".into())
    );
    assert_eq!(seen[0].body["status"]["observedGeneration"], 2);
    assert_eq!(seen[1].body["reason"], "InvalidSpec");
    let note = seen[1].body["note"].as_str().unwrap_or_default();
    assert!(note.starts_with("spec.schedule"), "{note}");
}

#[tokio::test]
async fn a_kafka_trigger_reports_the_functions_it_reaches() {
    let (ctx, server) = context();
    let trigger: crate::crd::KafkaTriggerResource = serde_json::from_value(json!({
        "apiVersion": "wasmless.io/v1alpha1", "kind": "KafkaTrigger",
        "metadata": {"name": "orders", "namespace": "team", "uid": "uid-o", "generation": 1},
        "spec": {"brokers": "k:9092", "topic": "orders", "functionSelector": {"matchLabels": {"tier": "sink"}}},
    }))
    .expect("trigger");
    let sink = [("tier".to_owned(), "sink".to_owned())];
    let mut pooled = function("audit", json!({"function": "(module)"}), 1);
    pooled.metadata.labels = Some(sink.clone().into());
    let mut dedicated = function("ledger", wat("(module)"), 1);
    dedicated.metadata.labels = Some(sink.into());
    let other = function("web", wat("(module)"), 1);
    let list = json!({"apiVersion": "wasmless.io/v1alpha1", "kind": "FunctionList",
        "metadata": {"resourceVersion": "1"}, "items": [pooled, dedicated, other]});
    let server = server.run(vec![
        Step::reply(
            Method::GET,
            "/apis/wasmless.io/v1alpha1/namespaces/team/functions",
            200,
            list,
        ),
        Step::patch(
            "/apis/wasmless.io/v1alpha1/namespaces/team/kafkatriggers/orders/status",
            &trigger,
        ),
    ]);
    super::reconcile::reconcile_kafka_trigger(Arc::new(trigger), ctx)
        .await
        .expect("reconciles");
    let seen = server.await.expect("server");
    assert_eq!(
        ready_of(&seen[1].body),
        ("True".into(), "Delivering".into())
    );
    let message = seen[1].body["status"]["conditions"][0]["message"]
        .as_str()
        .unwrap_or_default();
    // Each selected function's consumer runs where the function does.
    assert_eq!(
        message,
        "orders consumed for audit (the pool), ledger (its pods)"
    );
}
