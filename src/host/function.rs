//! Loading functions: recognising their kind, compiling (through the cache)
//! and pre-instantiating them against the host's linkers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::ComponentExportIndex;
use wasmtime::component::types::ComponentItem;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::bindings::FunctionIndices;
use super::cache::{CacheOutcome, CompileCache, Compiled};
use super::engine::{Compiler, EngineConfig, EpochClock, build_engine, ready_margin};
use super::error::LoadError;
use super::logs::FunctionLogs;
use super::ready::{Budget, READY_IDLE, ReadySlot};
use super::state::{CommandState, ComponentState};

/// The kinds of wasm function the host runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FunctionKind {
    /// A component of the `wasmless` world (written with the guest SDK).
    Wasmless,
    /// A `wasi:http/proxy` component.
    HttpProxy,
    /// A WASI preview 1 command module: event on stdin, response on stdout.
    Command,
}

impl FunctionKind {
    /// A short name for listings and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            FunctionKind::Wasmless => "wasmless",
            FunctionKind::HttpProxy => "wasi-http",
            FunctionKind::Command => "wasi-command",
        }
    }
}

/// Settings of a host.
#[derive(Clone, Debug, Default)]
pub struct HostConfig {
    /// Engine limits.
    pub engine: EngineConfig,
    /// Where compiled artefacts are cached; none keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
    /// The largest response body a function may return, in bytes.
    pub max_response_bytes: usize,
    /// Tiered compilation: a module no cache knows is first compiled with
    /// the baseline compiler (several times faster), so that it answers
    /// sooner; `load_optimized` then gives its optimized form.
    pub tiered: bool,
    /// Where Kubernetes Secrets are mounted (`/` in a function's pod): a
    /// function's `spec.secrets` are read-only folders below it. `None`
    /// (`wasmless up`) grants none.
    pub secrets_root: Option<PathBuf>,
    /// Where the runtime components of source functions are
    /// (`runtimes/dist` after `bash examples/build.sh`).
    pub runtimes_dir: Option<PathBuf>,
    /// A pod's source function whose files (and installed packages) init
    /// containers already put in this folder: it is used as it is.
    pub prepared_code: Option<PathBuf>,
    /// Who installs the packages of source functions' dependency files:
    /// this process (`up`), or a pool pod's installer containers.
    pub installer: crate::host::Installer,
    /// How long an instance made ahead of its event waits for one before
    /// it is dropped. `None` is [`READY_IDLE`]; zero makes every instance
    /// with its event, on the event's time.
    pub ready_idle: Option<Duration>,
    /// A read-only compile cache made when the image was built (`wasmless
    /// runtimes --precompile`): the source runtimes' optimized code, so
    /// that no pod compiles an interpreter. Used when its engine matches.
    pub precompiled_dir: Option<PathBuf>,
    /// How long a deploy waits for its module's baseline compile; `None`
    /// is [`DEFAULT_COMPILE_TIMEOUT`]. (The optimizing compile, off the
    /// deploy's path with tiered compilation, is not bounded.)
    pub compile_timeout: Option<Duration>,
    /// A Python or JavaScript function whose events came this many times faster than
    /// its instances were made gets its own snapshot (`preinit`), made
    /// in the background; zero: never.
    pub snapshot_after: u32,
}

/// How long a deploy waits for its module's compile unless the host says:
/// the Python runtime (24 MiB) takes seconds with the baseline compiler.
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs a compile on a thread of its own, so that no compile waits behind
/// another's, and waits at most `limit` for it. Past the limit the compile
/// cannot be stopped (wasmtime has no way to), so its thread is moved to the
/// lowest CPU priority, where it takes only what nothing else wants, and
/// its result is dropped when it ends.
fn bounded<T: Send + 'static>(
    limit: Duration,
    work: impl FnOnce() -> Result<T, LoadError> + Send + 'static,
) -> Result<T, LoadError> {
    let (done, result) = std::sync::mpsc::sync_channel(1);
    let (started, thread_id) = std::sync::mpsc::sync_channel(1);
    std::thread::Builder::new()
        .name("wasmless-compile".into())
        .spawn(move || {
            let _ = started.send(crate::net::thread_id());
            let _ = done.send(work());
        })
        .map_err(|e| {
            LoadError::CompileModule(wasmtime::Error::msg(format!("no compile thread: {e}")))
        })?;
    match result.recv_timeout(limit) {
        Ok(outcome) => outcome,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            if let Ok(id) = thread_id.recv() {
                crate::net::lowest_priority(id);
            }
            Err(LoadError::CompileTimeout(limit))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(LoadError::CompileModule(
            wasmtime::Error::msg("the compile thread ended without a result"),
        )),
    }
}

/// What a function is allowed and told, from its spec.
#[derive(Clone, Debug)]
pub struct FunctionSettings {
    /// The function's name.
    pub name: String,
    /// The runtime from the spec.
    pub runtime: String,
    /// Per-event time limit.
    pub timeout: Duration,
    /// Per-event memory limit in bytes.
    pub memory_limit: u64,
    /// The environment the function sees.
    pub env: Vec<(String, String)>,
    /// Host folders the function may read, each at its guest path (a
    /// cluster function's Secrets, at `/<secret-name>`). Nothing else of
    /// the host's file system is visible.
    pub mounts: Vec<Mount>,
    /// Where its outgoing requests may go (`spec.allowedOutboundHosts`).
    pub outbound: Arc<crate::outbound::OutboundPolicy>,
    /// How many events one instance serves before a fresh one replaces it
    /// (`spec.instanceReuse.maxEvents`); 1, the default, is a fresh
    /// instance per event.
    pub events_per_instance: u32,
}

/// A host folder a function may read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The folder on the host.
    pub host: PathBuf,
    /// Where the function sees it, such as `/db-creds`.
    pub guest: String,
    /// Whether the function may write there. Functions get read-only
    /// mounts; only the host's own runs (the Python runtime writing the
    /// compiled bytecode of a function's files) write.
    pub writable: bool,
}

/// A wasmtime engine with the linkers for every kind of function.
pub struct Host {
    optimized: Tier,
    baseline: Option<Tier>,
    cache: CompileCache,
    pub(crate) config: HostConfig,
    started: std::time::Instant,
    logs: FunctionLogs,
    /// Baseline code by digest while a function uses it, so that functions
    /// sharing a module (the source runtimes) compile it once.
    baseline_code: std::sync::Mutex<HashMap<[u8; 32], std::sync::Weak<Compiled>>>,
    /// Room for the instances held outside events, in each tier's pool.
    ready_budget: Arc<Budget>,
}

/// One compiler's engine, with its linkers and epoch clock.
struct Tier {
    engine: Engine,
    component_linker: wasmtime::component::Linker<ComponentState>,
    command_linker: wasmtime::Linker<CommandState>,
    _clock: EpochClock,
}

impl Tier {
    fn new(config: &EngineConfig, compiler: Compiler) -> wasmtime::Result<Self> {
        let engine = build_engine(config, compiler)?;
        let mut component_linker = wasmtime::component::Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut component_linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut component_linker)?;
        super::outbound::add_to_linker(&mut component_linker)?;
        let mut command_linker = wasmtime::Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut command_linker, |s: &mut CommandState| {
            &mut s.wasi
        })?;
        let clock = EpochClock::start(&engine);
        Ok(Self {
            engine,
            component_linker,
            command_linker,
            _clock: clock,
        })
    }
}

#[derive(Clone)]
pub(crate) enum Prepared {
    Wasmless(WasmlessPre),
    HttpProxy(ProxyPre<ComponentState>),
    Command(wasmtime::InstancePre<CommandState>),
}

/// A component of the wasmless world, pre-instantiated.
#[derive(Clone)]
pub(crate) struct WasmlessPre {
    pub pre: wasmtime::component::InstancePre<ComponentState>,
    /// Where its handler is among its exports.
    pub indices: FunctionIndices,
    /// Its `init` export (`wasmless:function/init`), which an instance made
    /// ahead of its event runs right after it is made.
    pub init: Option<ComponentExportIndex>,
}

/// A function ready to serve events: compiled and pre-instantiated.
pub struct LoadedFunction {
    pub(crate) host: Arc<Host>,
    /// The engine its code was compiled for.
    pub(crate) engine: Engine,
    pub(crate) settings: FunctionSettings,
    pub(crate) kind: FunctionKind,
    pub(crate) prepared: Prepared,
    /// A component function's next instance, made ahead of its event.
    pub(crate) ready: Option<Arc<ReadySlot>>,
    digest: [u8; 32],
    size: usize,
    cache_outcome: CacheOutcome,
    /// Keeps the artefact known to the cache while this function lives.
    _compiled: Arc<Compiled>,
    /// When it last started an event, in ms since the host started.
    pub(crate) last_used: std::sync::atomic::AtomicU64,
    /// Whether its source is kept in the cache (so it can be parked).
    parkable: bool,
    /// Whether its code is a source runtime's, shared by many functions:
    /// parking it keeps the code loaded.
    pub(crate) shared: bool,
    /// Whether its code is its own snapshot (see `preinit`).
    pub(crate) pre_initialized: bool,
    /// Set once its snapshot was asked for: one per loaded version.
    snapshot_asked: std::sync::atomic::AtomicBool,
}

impl Host {
    /// Builds the engine, the linkers and the cache, and starts the epoch
    /// clock.
    pub fn new(mut config: HostConfig) -> wasmtime::Result<Arc<Self>> {
        if config.max_response_bytes == 0 {
            config.max_response_bytes = 16 << 20;
        }
        let optimized = Tier::new(&config.engine, Compiler::Optimizing)?;
        let baseline = if config.tiered {
            match Tier::new(&config.engine, Compiler::Baseline) {
                Ok(tier) => Some(tier),
                Err(err) => {
                    tracing::warn!(
                        "no baseline compiler on this platform, tiered compilation is off: {err:#}"
                    );
                    None
                }
            }
        } else {
            None
        };
        let cache = CompileCache::new(
            &optimized.engine,
            config.cache_dir.as_deref(),
            config.precompiled_dir.as_deref(),
        );
        match cache.precompiled() {
            Some((dir, true)) => {
                tracing::debug!(dir = %dir.display(), "precompiled code for this engine")
            }
            Some((dir, false)) => tracing::warn!(
                dir = %dir.display(),
                "the precompiled runtimes were made for another engine configuration (other limits or \
                 another wasmtime): each is compiled again on its first use"
            ),
            None => {}
        }
        let ready_budget = Budget::new(ready_margin(config.engine.max_instances.max(1)) as usize);
        Ok(Arc::new(Self {
            optimized,
            baseline,
            cache,
            config,
            started: std::time::Instant::now(),
            logs: FunctionLogs::default(),
            baseline_code: std::sync::Mutex::default(),
            ready_budget,
        }))
    }

    /// The baseline code of `wasm`, compiled unless a loaded function
    /// already has it.
    fn baseline_compile(
        &self,
        tier: &Tier,
        digest: [u8; 32],
        wasm: &[u8],
        component: bool,
    ) -> Result<Arc<Compiled>, LoadError> {
        let known = self.baseline_code.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(compiled) = known.get(&digest).and_then(std::sync::Weak::upgrade) {
            return Ok(compiled);
        }
        drop(known);
        let engine = tier.engine.clone();
        let owned = wasm.to_vec();
        let compiled = Arc::new(bounded(self.compile_timeout(), move || {
            compile(&engine, &owned, component).map_err(LoadError::CompileModule)
        })?);
        let mut known = self.baseline_code.lock().unwrap_or_else(|e| e.into_inner());
        known.retain(|_, weak| weak.strong_count() > 0);
        known.insert(digest, Arc::downgrade(&compiled));
        Ok(compiled)
    }

    fn compile_timeout(&self) -> Duration {
        self.config
            .compile_timeout
            .unwrap_or(DEFAULT_COMPILE_TIMEOUT)
    }

    /// The recent output of each function.
    pub fn logs(&self) -> &FunctionLogs {
        &self.logs
    }

    /// The compile cache.
    pub fn cache(&self) -> &CompileCache {
        &self.cache
    }

    /// Compiles `wasm` (a component) with the optimizing compiler into the
    /// cache folder, unless it is there already; true if it compiled.
    pub fn precompile(&self, wasm: &[u8]) -> wasmtime::Result<bool> {
        let digest: [u8; 32] = Sha256::digest(wasm).into();
        let engine = &self.optimized.engine;
        if self.cache.lookup(engine, digest, true).is_some() {
            return Ok(false);
        }
        self.cache.compile(engine, digest, wasm, true)?;
        Ok(true)
    }

    /// Compiles (or finds in the cache) and pre-instantiates a function.
    /// With tiered compilation, a module no cache knows is compiled by the
    /// baseline compiler (its [`CacheOutcome`] is `Baseline`): call
    /// [`Host::load_optimized`] afterwards, off the hot path, for the
    /// optimized form. CPU-heavy on a cache miss: call it off the async
    /// executor.
    pub fn load(
        self: &Arc<Self>,
        source: &[u8],
        settings: FunctionSettings,
    ) -> Result<LoadedFunction, LoadError> {
        self.load_with(source, settings, self.baseline.is_some())
    }

    /// Compiles with the optimizing compiler (or finds it in the cache) and
    /// pre-instantiates a function.
    pub fn load_optimized(
        self: &Arc<Self>,
        source: &[u8],
        settings: FunctionSettings,
    ) -> Result<LoadedFunction, LoadError> {
        self.load_with(source, settings, false)
    }

    fn load_with(
        self: &Arc<Self>,
        source: &[u8],
        settings: FunctionSettings,
        tiered: bool,
    ) -> Result<LoadedFunction, LoadError> {
        self.check_memory(&settings)?;
        let wasm = to_binary(source)?;
        let digest: [u8; 32] = Sha256::digest(&wasm).into();
        self.load_binary(&wasm, digest, settings, tiered)
    }

    /// Loads a binary module or component whose SHA-256 the caller already
    /// knows (a source runtime, shared by many functions), as [`Host::load`]
    /// does.
    pub fn load_digested(
        self: &Arc<Self>,
        wasm: &[u8],
        digest: [u8; 32],
        settings: FunctionSettings,
    ) -> Result<LoadedFunction, LoadError> {
        self.check_memory(&settings)?;
        let mut loaded = self.load_binary(wasm, digest, settings, self.baseline.is_some())?;
        loaded.shared = true;
        Ok(loaded)
    }

    fn check_memory(&self, settings: &FunctionSettings) -> Result<(), LoadError> {
        let max = self.config.engine.max_memory;
        if settings.memory_limit > max {
            return Err(LoadError::MemoryTooLarge {
                asked: settings.memory_limit,
                max,
            });
        }
        Ok(())
    }

    pub(super) fn load_binary(
        self: &Arc<Self>,
        wasm: &[u8],
        digest: [u8; 32],
        settings: FunctionSettings,
        tiered: bool,
    ) -> Result<LoadedFunction, LoadError> {
        let component = wasmtime::wasmparser::Parser::is_component(wasm);
        if !component && !wasmtime::wasmparser::Parser::is_core_wasm(wasm) {
            return Err(LoadError::NotWasm("unknown wasm version or layer".into()));
        }
        let parkable = self.cache.keep_source(digest, wasm);
        let cached = self.cache.lookup(&self.optimized.engine, digest, component);
        let (tier, compiled, cache_outcome) = match (cached, &self.baseline) {
            (Some((compiled, outcome)), _) => (&self.optimized, compiled, outcome),
            (None, Some(baseline)) if tiered => (
                baseline,
                self.baseline_compile(baseline, digest, wasm, component)?,
                CacheOutcome::Baseline,
            ),
            (None, _) => {
                let (compiled, outcome) = self
                    .cache
                    .compile(&self.optimized.engine, digest, wasm, component)
                    .map_err(LoadError::CompileModule)?;
                (&self.optimized, compiled, outcome)
            }
        };
        self.assemble(
            tier,
            compiled,
            cache_outcome,
            digest,
            wasm.len(),
            settings,
            parkable,
        )
    }

    /// Pre-instantiates compiled code into a function.
    #[allow(clippy::too_many_arguments)]
    fn assemble(
        self: &Arc<Self>,
        tier: &Tier,
        compiled: Arc<Compiled>,
        cache_outcome: CacheOutcome,
        digest: [u8; 32],
        size: usize,
        settings: FunctionSettings,
        parkable: bool,
    ) -> Result<LoadedFunction, LoadError> {
        let (kind, prepared) = match compiled.as_ref() {
            Compiled::Component(c) => prepare_component(tier, c)?,
            Compiled::Module(m) => prepare_command(tier, m)?,
        };
        if settings.events_per_instance > 1 && !matches!(prepared, Prepared::Wasmless(_)) {
            tracing::warn!(
                function = %settings.name,
                "spec.instanceReuse applies to functions of the wasmless world (Python, JavaScript, the Rust SDK); this {} function gets a fresh instance per event",
                kind.as_str()
            );
        }
        Ok(LoadedFunction {
            host: self.clone(),
            engine: tier.engine.clone(),
            ready: ReadySlot::new(
                &tier.engine,
                &prepared,
                &settings,
                self.ready_idle(),
                &self.ready_budget,
            ),
            settings,
            kind,
            prepared,
            digest,
            size,
            cache_outcome,
            _compiled: compiled,
            last_used: std::sync::atomic::AtomicU64::new(self.now_ms()),
            parkable,
            shared: false,
            pre_initialized: false,
            snapshot_asked: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Loads a parked function again by its digest (from the source kept in
    /// the cache; its compiled code is normally found there too).
    ///
    /// Its code, when still loaded (a source runtime's, kept while parked)
    /// or in the cache, is used as it is: the source is read, and hashed,
    /// only when the code must be compiled again.
    pub fn load_parked(self: &Arc<Self>, parked: &Parked) -> Result<LoadedFunction, LoadError> {
        let found = match &parked.shared {
            Some(code) => Some((code.clone(), CacheOutcome::Memory)),
            None => self
                .cache
                .lookup(&self.optimized.engine, parked.digest, parked.component),
        };
        let mut loaded = match found {
            Some((compiled, outcome)) => self.assemble(
                &self.optimized,
                compiled,
                outcome,
                parked.digest,
                parked.size,
                parked.settings.clone(),
                true,
            )?,
            None => {
                let source = self.cache.source(parked.digest).map_err(|err| {
                    LoadError::ParkedSourceGone(format!("{} ({err})", parked.digest()))
                })?;
                self.check_memory(&parked.settings)?;
                self.load_binary(&source, parked.digest, parked.settings.clone(), false)?
            }
        };
        loaded.shared = parked.shared.is_some();
        loaded.pre_initialized = parked.pre_initialized;
        Ok(loaded)
    }

    /// The engine a snapshot's run compiles its instrumented component
    /// on: the baseline compiler's when there is one (the run is once).
    pub(super) fn snapshot_engine(&self) -> Engine {
        self.baseline
            .as_ref()
            .unwrap_or(&self.optimized)
            .engine
            .clone()
    }

    pub(crate) fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn ready_idle(&self) -> Duration {
        self.config.ready_idle.unwrap_or(READY_IDLE)
    }
}

/// What is left of a function unloaded while idle: enough to load it again
/// from the compile cache on its next event.
#[derive(Clone)]
pub struct Parked {
    digest: [u8; 32],
    /// Its settings.
    pub settings: FunctionSettings,
    /// Its kind.
    pub kind: FunctionKind,
    /// Whether its code is a component.
    component: bool,
    /// Its module's size in bytes.
    size: usize,
    /// The code, kept when a source runtime's (shared by many functions,
    /// so parking one frees nothing of it).
    shared: Option<Arc<Compiled>>,
    /// Whether the code is the function's own snapshot.
    pre_initialized: bool,
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parked")
            .field("digest", &self.digest())
            .field("kind", &self.kind)
            .field("shared", &self.shared.is_some())
            .finish_non_exhaustive()
    }
}

impl Parked {
    /// sha256 of its module, in hex.
    pub fn digest(&self) -> String {
        hex::encode(self.digest)
    }
}

/// Compiles without caching (the baseline tier's code is not kept).
fn compile(engine: &Engine, wasm: &[u8], component: bool) -> wasmtime::Result<Compiled> {
    Ok(if component {
        Compiled::Component(wasmtime::component::Component::new(engine, wasm)?)
    } else {
        Compiled::Module(wasmtime::Module::new(engine, wasm)?)
    })
}

fn prepare_component(
    tier: &Tier,
    component: &wasmtime::component::Component,
) -> Result<(FunctionKind, Prepared), LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(&tier.engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let has = |prefix: &str| exports.iter().any(|e| e.starts_with(prefix));
    let pre = tier
        .component_linker
        .instantiate_pre(component)
        .map_err(LoadError::LinkImports)?;
    if has("wasmless:function/handler@0.1") {
        let init = exports
            .iter()
            .find(|e| e.starts_with("wasmless:function/init@0.1"))
            .map(|name| init_export(component, name))
            .transpose()?;
        let indices = FunctionIndices::new(&pre).map_err(LoadError::LinkImports)?;
        Ok((
            FunctionKind::Wasmless,
            Prepared::Wasmless(WasmlessPre { pre, indices, init }),
        ))
    } else if has("wasi:http/incoming-handler@0.2") {
        let pre = ProxyPre::new(pre).map_err(LoadError::LinkImports)?;
        Ok((FunctionKind::HttpProxy, Prepared::HttpProxy(pre)))
    } else {
        Err(LoadError::UnsupportedKind(format!(
            "the component exports neither wasmless:function/handler@0.1 nor wasi:http/incoming-handler@0.2 (it exports: {})",
            if exports.is_empty() {
                "nothing".to_owned()
            } else {
                exports.join(", ")
            }
        )))
    }
}

/// The `init` function of a component's `init` export, `name`, which must
/// be `init: func()`.
pub(crate) fn init_export(
    component: &wasmtime::component::Component,
    name: &str,
) -> Result<ComponentExportIndex, LoadError> {
    let wrong = || {
        LoadError::UnsupportedKind(format!(
            "the component's {name} export must have the function `init: func()` of wit/wasmless.wit"
        ))
    };
    let (_, interface) = component.get_export(None, name).ok_or_else(wrong)?;
    match component.get_export(Some(&interface), "init") {
        Some((ComponentItem::ComponentFunc(func), index))
            if func.params().len() == 0 && func.results().len() == 0 =>
        {
            Ok(index)
        }
        _ => Err(wrong()),
    }
}

fn prepare_command(
    tier: &Tier,
    module: &wasmtime::Module,
) -> Result<(FunctionKind, Prepared), LoadError> {
    let is_command = module
        .exports()
        .any(|e| e.name() == "_start" && e.ty().func().is_some());
    if !is_command {
        return Err(LoadError::UnsupportedKind(
            "a core module must be a WASI command exporting a `_start` function".into(),
        ));
    }
    let pre = tier
        .command_linker
        .instantiate_pre(module)
        .map_err(LoadError::LinkImports)?;
    Ok((FunctionKind::Command, Prepared::Command(pre)))
}

impl LoadedFunction {
    /// How long since it last started an event (or was loaded).
    pub fn idle_for(&self) -> std::time::Duration {
        let last = self.last_used.load(std::sync::atomic::Ordering::Relaxed);
        std::time::Duration::from_millis(self.host.now_ms().saturating_sub(last))
    }

    /// What to keep to load it again later, if it can be parked: its code is
    /// optimized and its source is kept in the compile cache.
    pub fn park(&self) -> Option<Parked> {
        (self.parkable && self.cache_outcome != CacheOutcome::Baseline).then(|| Parked {
            digest: self.digest,
            settings: self.settings.clone(),
            kind: self.kind,
            component: matches!(self._compiled.as_ref(), Compiled::Component(_)),
            size: self.size,
            shared: self.shared.then(|| self._compiled.clone()),
            pre_initialized: self.pre_initialized,
        })
    }

    /// The same code with other settings: for the host's own runs of a
    /// function's runtime (such as compiling a Python function's files to
    /// bytecode, with its bytecode folder writable).
    pub fn with_settings(&self, settings: FunctionSettings) -> LoadedFunction {
        LoadedFunction {
            host: self.host.clone(),
            engine: self.engine.clone(),
            ready: ReadySlot::new(
                &self.engine,
                &self.prepared,
                &settings,
                self.host.ready_idle(),
                &self.host.ready_budget,
            ),
            settings,
            kind: self.kind,
            prepared: self.prepared.clone(),
            digest: self.digest,
            size: self.size,
            cache_outcome: self.cache_outcome,
            _compiled: self._compiled.clone(),
            last_used: std::sync::atomic::AtomicU64::new(self.host.now_ms()),
            parkable: false,
            shared: self.shared,
            pre_initialized: self.pre_initialized,
            snapshot_asked: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Whether its code is a source runtime's, shared with other
    /// functions (not its own snapshot).
    pub fn on_shared_runtime(&self) -> bool {
        self.shared
    }

    /// Whether its code is its own snapshot, made after its module was
    /// imported (see `preinit`).
    pub fn is_snapshot(&self) -> bool {
        self.pre_initialized
    }

    /// How many of its events came faster than instances were made ahead
    /// for them.
    pub fn events_under_load(&self) -> u32 {
        self.ready
            .as_ref()
            .map_or(0, |slot| slot.events_under_load())
    }

    /// Claims the one snapshot of this loaded version: true the first
    /// time only.
    pub(crate) fn claim_snapshot(&self) -> bool {
        use std::sync::atomic::Ordering;
        // A load first: once claimed, every later event of a busy function
        // only reads the flag.
        !self.snapshot_asked.load(Ordering::Relaxed)
            && !self.snapshot_asked.swap(true, Ordering::AcqRel)
    }

    /// Whether an instance made ahead of its next event is waiting.
    pub fn instance_waiting(&self) -> bool {
        self.ready.as_ref().is_some_and(|slot| slot.is_ready())
    }

    /// The function's settings.
    pub fn settings(&self) -> &FunctionSettings {
        &self.settings
    }

    /// The kind of function.
    pub fn kind(&self) -> FunctionKind {
        self.kind
    }

    /// SHA-256 of the wasm binary, hex.
    pub fn digest(&self) -> String {
        hex::encode(self.digest)
    }

    /// Size of the wasm binary in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Whether loading compiled it or found it in a cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache_outcome
    }
}

/// Accepts a wasm binary as it is and WAT text by translating it.
fn to_binary(source: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, LoadError> {
    if source.starts_with(b"\0asm") {
        return Ok(source.into());
    }
    wat::parse_bytes(source).map_err(|err| {
        let first = err
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        LoadError::NotWasm(format!(
            "it neither starts with the wasm magic bytes nor parses as WAT text ({first})"
        ))
    })
}
