//! Errors of the host: loading a function, and running one event.

use std::time::Duration;

/// Why a function could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are neither a wasm binary nor WAT text.
    #[error("not a WebAssembly module or component: {0}")]
    NotWasm(String),
    /// Valid wasm, but not one of the kinds the host runs.
    #[error("{0}")]
    UnsupportedKind(String),
    /// Compiling to native code failed (usually invalid wasm).
    #[error("compiling failed: {0:#}")]
    CompileModule(wasmtime::Error),
    /// Compiling took longer than the host allows a deploy to wait.
    #[error(
        "compiling the module took longer than {}, this host's limit (--compile-timeout); it is refused, and its compile goes on at the lowest CPU priority until it ends",
        humantime::format_duration(*.0)
    )]
    CompileTimeout(std::time::Duration),
    /// The function imports something the host does not provide.
    #[error("linking failed: {0:#}")]
    LinkImports(wasmtime::Error),
    /// A parked function's module is no longer in the compile cache.
    #[error(
        "the module {0} of this parked function is gone from the compile cache; deploy it again"
    )]
    ParkedSourceGone(String),
    /// The function asks for more memory than the host allows.
    #[error("spec.memory of {asked} bytes exceeds this host's limit of {max} bytes (--max-memory)")]
    MemoryTooLarge {
        /// What the spec asked for.
        asked: u64,
        /// The host's cap.
        max: u64,
    },
}

/// Why one event did not produce a response.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// The function trapped (a panic, `unreachable`, an out-of-bounds access).
    #[error("function trapped: {0}")]
    Trap(String),
    /// The function returned its own error.
    #[error("{message}")]
    Guest {
        /// The status code the function chose.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The event ran past the function's timeout and was stopped.
    #[error("Request timeout exceeded ({0:?})")]
    Timeout(Duration),
    /// The function tried to grow its memory past its limit.
    #[error("function exceeded its memory limit of {limit} bytes")]
    MemoryExceeded {
        /// The limit in bytes.
        limit: u64,
    },
    /// A WASI command exited with a non-zero status.
    #[error("function exited with status {code}: {stderr}")]
    Exit {
        /// The exit code.
        code: i32,
        /// The tail of what it wrote to stderr.
        stderr: String,
    },
    /// The response was larger than the host allows.
    #[error("function response exceeds the limit of {0} bytes")]
    ResponseTooLarge(usize),
    /// A wasi:http function ended without setting a response.
    #[error("function finished without sending a response")]
    NoResponse,
}

impl InvokeError {
    /// The HTTP status that reports this error to a caller.
    pub fn status(&self) -> u16 {
        match self {
            InvokeError::Guest { status, .. } => *status,
            InvokeError::Timeout(_) => 408,
            _ => 500,
        }
    }
}

/// Raised from inside the store when an event passes its deadline.
#[derive(Debug, thiserror::Error)]
#[error("event deadline passed")]
pub(crate) struct DeadlineExceeded;

/// Raised from the resource limiter when memory would grow past the limit.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {0} bytes exceeded")]
pub(crate) struct MemoryLimitExceeded(pub u64);

/// Sorts an error out of wasmtime into the outcome a caller sees.
pub(crate) fn classify(err: wasmtime::Error, timeout: Duration) -> InvokeError {
    if err.is::<DeadlineExceeded>() {
        return InvokeError::Timeout(timeout);
    }
    if let Some(MemoryLimitExceeded(limit)) = err.downcast_ref::<MemoryLimitExceeded>() {
        return InvokeError::MemoryExceeded { limit: *limit };
    }
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return InvokeError::Exit {
            code: exit.0,
            stderr: String::new(),
        };
    }
    InvokeError::Trap(format!("{err:#}"))
}
