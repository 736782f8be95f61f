//! Resource types of the `wasmless.io/v1alpha1` API: what a user writes in
//! YAML, for `wasmless up` and (later) as Kubernetes custom resources.
//! Types and their validation only; no I/O.

mod function;
mod quantity;
mod trigger;

pub use function::{
    API_VERSION, ContentType, DEFAULT_MEMORY, DEFAULT_TIMEOUT, EnvVar, Function, FunctionSpec,
    InvalidSpec, ObjectMeta, Seconds, WASM_RUNTIME,
};
pub use quantity::{parse_duration, parse_memory};
pub use trigger::{
    Brokers, CatchUp, CronTrigger, CronTriggerSpec, DEFAULT_MAX_RETRY_BACKOFF,
    DEFAULT_RETRY_BACKOFF, KafkaTrigger, KafkaTriggerSpec, LabelSelector, StartFrom, Target,
    parse_schedule, valid_topic,
};
