//! wasmless: WebAssembly-native functions-as-a-service.
//!
//! The host ([`host`]) runs functions in wasmtime, one fresh instance per
//! event; [`up`] serves them over HTTP on one machine; [`triggers`] turns
//! cron schedules and Kafka messages into events; [`crd`] holds the
//! resource types users write.

pub mod archive;
pub mod bench;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod crd;
pub mod host;
pub mod kubeless;
pub mod manifest;
pub mod net;
pub mod operator;
pub mod outbound;
pub mod prepare;
pub mod runtimes;
pub mod snapshot;
pub mod telemetry;
pub mod topic;
pub mod triggers;
pub mod up;
