//! The wasm host: compiles functions once, pre-instantiates them, and runs
//! every event in a fresh, sandboxed instance with its own memory and time
//! limits; and its registry of loaded functions (with the container-image
//! fallback and source runtimes), which `up`'s manifests and admin API,
//! a pod's function folder and a pool's Kubernetes watch all feed.

mod bindings;
mod cache;
mod engine;
mod error;
mod event;
pub(crate) mod fallback;
mod function;
mod invoke;
mod listing;
mod logs;
mod outbound;
mod preinit;
mod ready;
pub(crate) mod registry;
pub(crate) mod source;
pub(crate) mod state;

pub use cache::{CacheOutcome, CompileCache, Compiled};
pub use engine::{
    Compiler, EPOCH_TICK, EngineConfig, EpochClock, IDLE_TICK, Ticking, build_engine, epoch_ticks,
    return_freed_heap,
};
pub use error::{InvokeError, LoadError};
pub use event::{
    Context, EVENT_FIELD_HEADERS, Event, HTTP_NAMESPACE, HttpRequest, KAFKA_NAMESPACE, KafkaRecord,
    Response,
};
pub(crate) use function::init_export;
pub use function::{
    FunctionKind, FunctionSettings, Host, HostConfig, LoadedFunction, Mount, Parked,
};
pub(crate) use invoke::new_store;
pub use listing::FunctionInfo;
pub use logs::FunctionLogs;
pub(crate) use outbound::add_to_linker as link_outbound;
pub use preinit::{PreInitError, SNAPSHOT_SOURCE};
pub use source::{Installer, installer_script};
