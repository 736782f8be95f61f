//! `wasmless pre-init`: a build step of the source runtimes. It runs a
//! runtime component's `init` export once, with no function named, and
//! writes a copy of the component whose memory starts as that run left it
//! (wasmtime's Wizer): the JavaScript runtime's Boa engine, with its
//! built-in objects, is then in every instance from the start instead of
//! being made by each.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use wasmtime::component::{Component, ComponentExportIndex, Instance, Lift, Linker, WasmList};
use wasmtime::{Engine, Store};
use wasmtime_wizer::{ComponentInstanceState, Wizer};

use crate::host::state::ComponentState;
use crate::host::{Compiler, EngineConfig, EpochClock, build_engine, init_export, new_store};

/// The export the snapshot runs: the world's `init`, which the host also
/// calls ahead of each event (it is kept).
pub const INIT: &str = "wasmless:function/init.init@0.1.0";
/// The interface that holds it.
const INIT_INTERFACE: &str = "wasmless:function/init@0.1.0";

/// How long `init` may run.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Pre-initializes the component at `input` by running `init` (no
/// environment, no files: the runtime sets up only what every function
/// shares) and writes the snapshot to `output`.
pub async fn pre_init(input: &Path, output: &Path) -> anyhow::Result<()> {
    let wasm = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let mut wizer = Wizer::new();
    wizer.init_func(INIT).keep_init_func(true);
    let (cx, instrumented) = wizer
        .instrument_component(&wasm)
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .with_context(|| format!("instrumenting {}", input.display()))?;
    let engine = build_engine(&EngineConfig::default(), Compiler::Baseline)
        .map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let _clock = EpochClock::start(&engine);
    let component = Component::new(&engine, &instrumented)
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .context("compiling the instrumented component")?;
    let mut store = store(&engine);
    let instance = linker(&engine)?
        .instantiate_async(&mut store, &component)
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .context("instantiating the component")?;
    let init = init_export(&component, INIT_INTERFACE)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .and_then(|index| {
            instance
                .get_typed_func::<(), ()>(&mut store, index)
                .map_err(|e| anyhow::anyhow!("{e:#}"))
        })?;
    init.call_async(&mut store, ())
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .context("running init")?;
    let snapshot = wizer
        .snapshot_component(&cx, &mut State { store, instance })
        .await
        .map_err(|e| anyhow::anyhow!("{e:#}"))
        .context("taking the snapshot")?;
    std::fs::write(output, &snapshot).with_context(|| format!("writing {}", output.display()))?;
    Ok(())
}

fn store(engine: &Engine) -> Store<ComponentState> {
    let wasi = wasmtime_wasi::WasiCtx::builder().build();
    new_store(
        engine,
        ComponentState::new(wasi, 1 << 30, Instant::now() + TIMEOUT),
    )
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
