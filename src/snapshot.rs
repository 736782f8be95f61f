//! Snapshots of a component after its `init` (wasmtime's Wizer): a copy of
//! the component whose memory starts as that run left it.
//!
//! - `wasmless pre-init`, a build step of the source runtimes, runs a
//!   runtime's `init` with no function named: the JavaScript runtime's Boa
//!   engine, with its built-in objects, is then in every instance from the
//!   start instead of being made by each.
//! - The host snapshots a busy source function (see
//!   `host::registry`'s `snapshot_later`): the runtime with the function's
//!   module imported and the event path rehearsed, so that each fresh
//!   instance starts where `init` would have left it.
//!
//! Only memory and globals are kept. A handle the run left open (a file, a
//! folder, a stream: the host's WASI resources) would be in the snapshot's
//! memory with nothing behind it in a later instance, so a run that keeps
//! one is refused ([`SnapshotError::HandlesKept`]).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use wasmtime::component::{Component, ComponentExportIndex, Instance, Lift, Linker, WasmList};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtx;
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use crate::host::state::ComponentState;
use crate::host::{Compiler, EngineConfig, EpochClock, build_engine, init_export, new_store};

/// The export the snapshot runs: the world's `init`, which the host also
/// calls ahead of each event (it is kept).
pub const INIT: &str = "wasmless:function/init.init@0.1.0";
/// The interface that holds it.
const INIT_INTERFACE: &str = "wasmless:function/init@0.1.0";

/// How long `init` may run in the build step.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Why a snapshot was not made.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Wizer could not instrument the component.
    #[error("instrumenting the component: {0}")]
    Instrument(String),
    /// The instrumented component did not compile.
    #[error("compiling the instrumented component: {0}")]
    CompileInstrumented(String),
    /// The instrumented component did not instantiate.
    #[error("instantiating the component: {0}")]
    Instantiate(String),
    /// The component exports no `init` of the wasmless world.
    #[error("the component has no init export: {0}")]
    NoInit(String),
    /// `init` trapped, returned an error or ran past its time.
    #[error("its init failed: {0}")]
    RunInit(String),
    /// `init` left WASI resources open.
    #[error(
        "its init left files, folders or streams open (module-level code that prints, for one): no later instance would have them"
    )]
    HandlesKept,
    /// Wizer could not read the instance's state or write the snapshot.
    #[error("taking the snapshot: {0}")]
    TakeSnapshot(String),
}

/// Pre-initializes the component at `input` by running `init` (no
/// environment, no files: the runtime sets up only what every function
/// shares) and writes the snapshot to `output`.
pub async fn pre_init(input: &Path, output: &Path) -> anyhow::Result<()> {
    let wasm = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let engine = build_engine(&EngineConfig::default(), Compiler::Baseline)
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let _clock = EpochClock::start(&engine);
    let snapshot = snapshot(&engine, &wasm, WasiCtx::builder().build(), 1 << 30, TIMEOUT)
        .await
        .with_context(|| format!("pre-initializing {}", input.display()))?;
    std::fs::write(output, &snapshot).with_context(|| format!("writing {}", output.display()))?;
    Ok(())
}

/// Runs the `init` export of the component `wasm` once, in an instance
/// that sees `wasi` and may use `memory_limit` bytes for `timeout`, and
/// returns the component whose memory starts as `init` left it. CPU-heavy
/// (the instrumented component is compiled on `engine`): call it off the
/// async executor's hot path. `engine` needs a running epoch clock.
pub async fn snapshot(
    engine: &Engine,
    wasm: &[u8],
    wasi: WasiCtx,
    memory_limit: u64,
    timeout: Duration,
) -> Result<Vec<u8>, SnapshotError> {
    let mut wizer = Wizer::new();
    wizer.init_func(INIT).keep_init_func(true);
    let (cx, instrumented) = wizer
        .instrument_component(wasm)
        .map_err(|e| SnapshotError::Instrument(format!("{e:#}")))?;
    let component = Component::new(engine, &instrumented)
        .map_err(|e| SnapshotError::CompileInstrumented(format!("{e:#}")))?;
    let mut store = new_store(
        engine,
        ComponentState::new(wasi, memory_limit, Instant::now() + timeout),
    );
    let instance = linker(engine)
        .map_err(|e| SnapshotError::Instantiate(format!("{e:#}")))?
        .instantiate_async(&mut store, &component)
        .await
        .map_err(|e| SnapshotError::Instantiate(format!("{e:#}")))?;
    let init = init_export(&component, INIT_INTERFACE)
        .map_err(|e| SnapshotError::NoInit(e.to_string()))
        .and_then(|index| {
            instance
                .get_typed_func::<(), ()>(&mut store, index)
                .map_err(|e| SnapshotError::NoInit(format!("{e:#}")))
        })?;
    init.call_async(&mut store, ())
        .await
        .map_err(|e| SnapshotError::RunInit(format!("{e:#}")))?;
    if !store.data().table.is_empty() {
        return Err(SnapshotError::HandlesKept);
    }
    wizer
        .snapshot_component(&cx, &mut State { store, instance })
        .await
        .map_err(|e| SnapshotError::TakeSnapshot(format!("{e:#}")))
}

fn linker(engine: &Engine) -> anyhow::Result<Linker<ComponentState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    // Linked as the host links them; nothing outgoing is granted here.
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    crate::host::link_outbound(&mut linker).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    Ok(linker)
}

/// The export `func` of the exported instance `instance`.
fn export(
    component: &Instance,
    store: &mut Store<ComponentState>,
    instance: &str,
    func: &str,
) -> Option<ComponentExportIndex> {
    let outer = component.get_export_index(&mut *store, None, instance)?;
    component.get_export_index(&mut *store, Some(&outer), func)
}

/// What Wizer reads the instance's state through: the accessors its
/// instrumentation exported.
struct State {
    store: Store<ComponentState>,
    instance: Instance,
}

impl State {
    async fn call<R: Lift + 'static, R2>(
        &mut self,
        instance: &str,
        func: &str,
        use_result: impl FnOnce(&mut Store<ComponentState>, R) -> R2,
    ) -> R2 {
        // The instrumentation exports these accessors; one missing, or
        // failing, is a bug in it, which the build step reports by aborting.
        let index = export(&self.instance, &mut self.store, instance, func)
            .unwrap_or_else(|| panic!("the instrumented component lacks {instance}#{func}"));
        let typed = self
            .instance
            .get_typed_func::<(), (R,)>(&mut self.store, index)
            .unwrap_or_else(|e| panic!("{instance}#{func}: {e:#}"));
        let (result,) = typed
            .call_async(&mut self.store, ())
            .await
            .unwrap_or_else(|e| panic!("{instance}#{func}: {e:#}"));
        use_result(&mut self.store, result)
    }
}

impl ComponentInstanceState for State {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        self.call(instance, func, |store, list: WasmList<u8>| {
            contents(list.as_le_slice(&*store))
        })
        .await
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func, |_, r| r).await
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func, |_, r| r).await
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call(instance, func, |_, r: f32| r.to_bits()).await
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call(instance, func, |_, r: f64| r.to_bits()).await
    }
}
