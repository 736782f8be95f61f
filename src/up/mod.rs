//! `wasmless up`: the host serving functions over HTTP on one machine, with
//! its cron and Kafka triggers, an admin API for the CLI and hot reload of
//! manifests and modules.

mod admin;
pub mod admin_socket;
mod connections;
mod fallback;
mod metrics;
pub mod pool;
mod registry;
mod routes;
mod secrets;
mod server;
mod source;
mod triggers;
mod watch;

pub use admin::{ADMIN_PREFIX, AppliedObject, ApplyAnswer, DeployRequest, FunctionInfo};
pub use metrics::Metrics;
pub use registry::{DEFAULT_MAX_FUNCTIONS, Fallback, Origin, Registry, Runner};
pub use server::{App, ConnectionLimits, UpConfig, run, serve};
pub use source::unzip;
pub use source::{Bytecode, add_bytecode_folder};
pub use triggers::{TriggerInfo, TriggerSet};
