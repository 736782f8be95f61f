//! What the operator writes back: `status` of every wasmless resource.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The observed state of a Function, written by the operator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FunctionStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the function answers), with the reason when it does not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Pods running the function (the scale subresource reads it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Pods ready to serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// The label selector of the function's pods, for autoscalers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The function's URL inside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Its Service's cluster IP: a pool tells a request to that address
    /// by it.
    #[serde(default, rename = "clusterIP", skip_serializing_if = "Option::is_none")]
    pub cluster_ip: Option<String>,
    /// Which path the function runs on, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementStatus>,
}

/// The runtime catalog's decision for a Function.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlacementStatus {
    /// `wasm` or `image`.
    pub path: String,
    /// The catalog's runtime id (`python3.x`), or `wasm` for a module.
    pub runtime: String,
    /// The container image, on the image path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `WasmModule`, `WasmRuntime`, `ImageRequested`, `NoWasmRuntime` or
    /// `NativeDependencies`.
    pub reason: String,
    /// The decision in a sentence.
    pub message: String,
    /// `Pool` (the namespace's shared host pods) or `Dedicated` (a
    /// Deployment of its own).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hosting: String,
    /// The pool's Deployment, with `Pool` hosting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Why it is hosted so: `Default`, `Requested`, `ImagePath`, or the
    /// field that needs pods of its own (`Replicas`, `Autoscaling`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hosting_reason: String,
    /// The hosting decision in a sentence.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hosting_message: String,
}

impl From<&crate::runtimes::Placement> for PlacementStatus {
    fn from(placement: &crate::runtimes::Placement) -> Self {
        Self {
            path: placement.path.as_str().to_owned(),
            runtime: placement.runtime.clone(),
            image: placement.image.clone(),
            reason: placement.reason.to_owned(),
            message: placement.message.clone(),
            ..Self::default()
        }
    }
}

/// The observed state of a trigger, written by the operator.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the trigger is in place), with the reason when it is not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Where the trigger is reachable (an HTTPTrigger's URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A CronTrigger's last tick handled (fired, or skipped under
    /// `catchUp: skip`), written by the replica that fires it, so that the
    /// next one neither repeats nor silently misses ticks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_schedule_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
}
