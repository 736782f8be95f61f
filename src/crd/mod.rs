//! Resource types of the `wasmless.io/v1alpha1` API: what a user writes in
//! YAML, for `wasmless up` and as Kubernetes custom resources (the
//! `*Resource` types, whose schemas become the CRDs). Types and their
//! validation only; no I/O.

// kube's `printcolumn(...)` attributes repeat keys such as `type_` by
// design; clippy reads them as duplicates.
#![allow(clippy::duplicated_attributes)]

mod definitions;
mod function;
mod http_trigger;
mod quantity;
mod schema;
mod status;
mod trigger;

pub use definitions::{GROUP, VERSION, crds_yaml, custom_resource_definitions};
pub use function::{
    API_VERSION, Autoscaling, ContentType, DEFAULT_MEMORY, DEFAULT_TIMEOUT, EnvVar, Function,
    FunctionResource, FunctionSpec, Hosting, ImageSecurity, InstanceReuse, InvalidSpec, MAX_REUSE,
    ObjectMeta, Seconds, WASM_RUNTIME,
};
pub use http_trigger::{Cors, GatewayRef, HttpTriggerResource, HttpTriggerSpec};
pub use quantity::{parse_duration, parse_memory};
pub use status::{FunctionStatus, PlacementStatus, TriggerStatus};
pub use trigger::{
    Brokers, CatchUp, CronTrigger, CronTriggerResource, CronTriggerSpec, DEFAULT_MAX_RETRY_BACKOFF,
    DEFAULT_RETRY_BACKOFF, KafkaTrigger, KafkaTriggerResource, KafkaTriggerSpec, LabelSelector,
    StartFrom, Target, parse_schedule, valid_topic,
};
