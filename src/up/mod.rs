//! `wasmless up`: the host serving functions over HTTP on one machine, with
//! its cron and Kafka triggers, an admin API for the CLI and hot reload of
//! manifests and modules.

mod admin;
pub mod admin_socket;
mod connections;
mod metrics;
pub mod pool;
mod routes;
mod secrets;
mod server;
mod triggers;
mod watch;

pub use crate::host::FunctionInfo;
pub use crate::host::registry::{DEFAULT_MAX_FUNCTIONS, Fallback, Origin, Registry, Runner};
pub use crate::host::source::unzip;
pub use crate::host::source::{Bytecode, add_bytecode_folder};
pub use admin::{ADMIN_PREFIX, AppliedObject, ApplyAnswer, DeployRequest};
pub use metrics::Metrics;
pub use server::{App, ConnectionLimits, UpConfig, run, serve};
pub use triggers::{TriggerInfo, TriggerSet};
