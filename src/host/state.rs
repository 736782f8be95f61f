//! Per-store state: what one instance, serving one event, may reach.
//! Nothing here is shared between events.

use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::function::Mount;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use super::outbound::Outbound;

use super::error::MemoryLimitExceeded;

/// How much of stderr (and of stdout for components) is kept for the log.
pub(crate) const LOG_CAPTURE: usize = 64 * 1024;

/// Caps linear memory at the function's limit and says so when hit.
pub(crate) struct MemoryCap {
    limit: u64,
}

impl MemoryCap {
    pub(crate) fn new(limit: u64) -> Self {
        Self { limit }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.limit {
            return Err(MemoryLimitExceeded(self.limit).into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables are bounded by the pooling allocator's slot size.
        Ok(true)
    }
}

/// The output streams of one instance, kept to log them after the event.
#[derive(Clone)]
pub(crate) struct Captured {
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
}

impl Captured {
    pub(crate) fn new(stdout_capacity: usize) -> Self {
        Self {
            stdout: MemoryOutputPipe::new(stdout_capacity),
            stderr: MemoryOutputPipe::new(LOG_CAPTURE),
        }
    }
}

/// Builds a WASI context that grants exactly the function's environment,
/// stdio and mounts (read-only unless the mount says otherwise): no other
/// files, no network, no host environment.
pub(crate) fn wasi_builder(
    env: &[(String, String)],
    mounts: &[Mount],
    io: &Captured,
) -> WasiCtxBuilder {
    let mut builder = WasiCtx::builder();
    builder
        .envs(env)
        .stdout(io.stdout.clone())
        .stderr(io.stderr.clone())
        // A function's folders are local (its files, its Secrets, the
        // host's bytecode): a stat or the read of a small file takes
        // microseconds on the event's own thread, far less than the hand-off
        // to tokio's blocking pool that WASI otherwise makes for each (a
        // Python event makes several). The price: a call that reads a large
        // granted file holds its worker thread until the read returns.
        .allow_blocking_current_thread(true);
    for mount in mounts {
        // A folder that vanished after the function loaded is left out:
        // the function then sees no such folder.
        let perms = if mount.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        if let Err(err) = builder.preopened_dir(&mount.host, &mount.guest, perms) {
            tracing::warn!(folder = %mount.host.display(), "cannot grant {}: {err}", mount.guest);
        }
    }
    builder
}

/// Store state of a component (wasmless world or wasi:http).
pub(crate) struct ComponentState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub limits: MemoryCap,
    /// When the running call is stopped: the event's deadline, or, for an
    /// instance made ahead of its event, the deadline of its making.
    pub deadline: Instant,
    /// What its outgoing requests may reach.
    pub outbound: Outbound,
    /// Keeps the epoch clocks ticking while the store exists.
    _ticking: super::engine::Ticking,
}

impl ComponentState {
    pub(crate) fn new(wasi: WasiCtx, memory_limit: u64, deadline: Instant) -> Self {
        Self {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            limits: MemoryCap::new(memory_limit),
            deadline,
            outbound: Outbound::deny_all(),
            _ticking: super::engine::Ticking::new(),
        }
    }

    /// The same, reaching what `outbound` grants.
    pub(crate) fn with_outbound(mut self, outbound: Outbound) -> Self {
        self.outbound = outbound;
        self
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ComponentState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

/// Store state of a WASI command module.
pub(crate) struct CommandState {
    pub wasi: WasiP1Ctx,
    pub limits: MemoryCap,
    /// When the event's run is stopped.
    pub deadline: Instant,
    /// Keeps the epoch clocks ticking while the store exists.
    _ticking: super::engine::Ticking,
}

impl CommandState {
    pub(crate) fn new(
        stdin: bytes::Bytes,
        mut builder: WasiCtxBuilder,
        memory_limit: u64,
        deadline: Instant,
    ) -> Self {
        builder.stdin(MemoryInputPipe::new(stdin));
        Self {
            wasi: builder.build_p1(),
            limits: MemoryCap::new(memory_limit),
            deadline,
            _ticking: super::engine::Ticking::new(),
        }
    }
}
