//! The functions `up` serves, by name. Replacing an entry is atomic: events
//! in flight keep the `Arc` of the version they started on.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::crd::{ContentType, Function, Target};
use crate::host::{
    CacheOutcome, Event, FunctionSettings, Host, InvokeError, LoadedFunction, Parked, PreInitError,
    Response,
};
use crate::manifest::{fetch_url, resolve_source};
use crate::runtimes::catalog::LocalServer;
use crate::runtimes::{self, Catalog, Dependencies, Language, Path as RunPath, Placement};

use super::fallback::{LocalProcess, ProcessSpec};
use super::source::{
    Bytecode, CODE_MOUNT, CodeError, Install, Installer, SourceRuntimes, Target as InstallTarget,
    add_bytecode_folder, prepared, write_code,
};

use super::listing::FunctionInfo;

/// How long after a Python function loads its files are compiled to
/// bytecode ([`Bytecode`]).
const BYTECODE_DELAY: Duration = Duration::from_millis(200);

/// Where a function came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A manifest file given to `up` (watched for changes).
    Manifest(PathBuf),
    /// Deployed through the admin API.
    Api,
    /// A Function of the pool's namespace, from the Kubernetes API.
    Cluster,
}

/// A function known but not loaded yet: its first event loads it.
pub struct Pending {
    function: Function,
    origin: Origin,
    /// Held while it loads, so that concurrent first events load it once.
    gate: tokio::sync::Mutex<()>,
}

/// A function's current state.
#[derive(Clone)]
pub enum Entry {
    /// Loaded and serving.
    Ready(Arc<LoadedFunction>),
    /// Could not be loaded; calls get 503 with the reason, and the first
    /// event after a backoff loads it again.
    Failed(Arc<Failure>),
    /// Unloaded while idle; its next event loads it again from the compile
    /// cache (a fraction of a millisecond).
    Parked(Parked),
    /// On the container-image fallback: a local process of its runtime's
    /// server.
    Process(Arc<LocalProcess>),
    /// Known, not loaded yet (a pool loads a function on its first event).
    Pending(Arc<Pending>),
}

/// The first retry of a failed load waits this long; each further one
/// twice as long as the one before, up to [`MAX_RETRY_BACKOFF`].
pub const FIRST_RETRY_BACKOFF: Duration = Duration::from_secs(1);
/// The longest wait between two tries of a failed load.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(300);

/// A load that failed, and how to try it again: a mirror or a package index
/// that was down, or a Secret not there yet, must not need an edit of the
/// function. The first event after the backoff tries again (events before
/// it get the reason at once, so a flood of calls does not hammer the
/// mirror); a new version of the function replaces the entry at once.
pub struct Failure {
    reason: String,
    retry: Retry,
    /// How many tries failed in a row.
    attempts: u32,
    /// When the next try may start.
    due: Instant,
    /// Held while it is tried again, so that concurrent events try once.
    gate: tokio::sync::Mutex<()>,
}

/// What a retry runs again.
enum Retry {
    /// The whole load of this version.
    Deploy(Box<Function>, Origin),
    /// Loading a parked function again from the compile cache.
    Wake(Parked),
}

impl Failure {
    fn new(reason: String, retry: Retry, attempts: u32) -> Self {
        let backoff = FIRST_RETRY_BACKOFF
            .saturating_mul(1 << attempts.saturating_sub(1).min(16))
            .min(MAX_RETRY_BACKOFF);
        Self {
            reason,
            retry,
            attempts,
            due: Instant::now() + backoff,
            gate: tokio::sync::Mutex::new(()),
        }
    }

    /// Why it failed.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// How many tries failed in a row.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The reason, with when it is tried again: what a caller is told.
    pub fn message(&self) -> String {
        let wait = self.due.saturating_duration_since(Instant::now());
        let tries = match self.attempts {
            1 => "1 try".to_owned(),
            n => format!("{n} tries"),
        };
        format!(
            "{} ({tries}; the first event after {} s tries again)",
            self.reason.trim_end(),
            wait.as_secs_f64().ceil() as u64
        )
    }
}

/// A function ready to take events, on either path.
#[derive(Clone)]
pub enum Runner {
    /// Loaded in the wasm host.
    Wasm(Arc<LoadedFunction>),
    /// A fallback process.
    Process(Arc<LocalProcess>),
}

impl Runner {
    /// What it is, for a line of output: kind, size and code tier, or the
    /// fallback process.
    pub fn summary(&self) -> String {
        match self {
            Runner::Wasm(f) => format!(
                "{}, {} KiB, {:?}",
                f.kind().as_str(),
                f.size() / 1024,
                f.cache_outcome()
            ),
            Runner::Process(_) => "container-image fallback, as a local process".to_owned(),
        }
    }

    /// The kind of function: a wasm kind, or `process`.
    pub fn kind(&self) -> &'static str {
        match self {
            Runner::Wasm(f) => f.kind().as_str(),
            Runner::Process(_) => "process",
        }
    }

    /// Runs one event.
    pub async fn handle_event(&self, event: Event) -> Result<Response, InvokeError> {
        match self {
            Runner::Wasm(function) => function.handle_event(event).await,
            Runner::Process(process) => process.handle_event(event).await,
        }
    }
}

#[derive(Clone)]
struct Slot {
    entry: Entry,
    origin: Origin,
    runtime: String,
    labels: BTreeMap<String, String>,
    placement: Option<Placement>,
}

impl Slot {
    /// The listing of the function called `name` in this slot.
    fn info(&self, name: &str) -> FunctionInfo {
        FunctionInfo::new(
            name,
            &self.runtime,
            &self.entry,
            &self.origin,
            self.placement.as_ref(),
        )
    }
}

/// Where `up` may run container-image fallbacks.
#[derive(Clone, Debug)]
pub struct Fallback {
    /// The runtime catalog.
    pub catalog: Arc<Catalog>,
    /// Run fallbacks as local processes (`up`); a pod's host does not (the
    /// operator gives a fallback function its image instead).
    pub local: bool,
    /// A pod's host in front of a fallback function: every event goes to
    /// the runtime container at this address (the operator decided the
    /// path).
    pub forward_to: Option<std::net::SocketAddr>,
}

/// A function loaded off the executor, before a fallback process starts.
enum Loaded {
    Wasm(Arc<LoadedFunction>, Arc<[u8]>),
    Process(ProcessSpec),
    Remote(Box<LocalProcess>),
}

/// Why a function did not load, with the path decision when one was made.
type LoadFailure = (String, Option<Box<Placement>>);

/// The registry of functions.
pub struct Registry {
    host: Arc<Host>,
    fallback: Fallback,
    sources: Arc<SourceRuntimes>,
    slots: Arc<RwLock<HashMap<String, Slot>>>,
    /// One optimizing compile at a time in the background (each already
    /// uses every core), so that a burst of deploys queues up instead of
    /// running hundreds of compiles at once.
    optimizer: Arc<tokio::sync::Semaphore>,
    /// One function's snapshot made at a time (see `host::preinit`).
    snapshots: Arc<tokio::sync::Semaphore>,
    /// How many functions it may hold; a deploy of one more is refused.
    max_functions: usize,
}

/// How many functions a registry holds unless told otherwise.
pub const DEFAULT_MAX_FUNCTIONS: usize = 10_000;

impl Registry {
    /// An empty registry on `host`.
    pub fn new(host: Arc<Host>, fallback: Fallback) -> Self {
        Self {
            sources: Arc::new(SourceRuntimes::new(host.config.runtimes_dir.clone())),
            fallback,
            host,
            slots: Arc::new(RwLock::new(HashMap::new())),
            optimizer: Arc::new(tokio::sync::Semaphore::new(1)),
            snapshots: Arc::new(tokio::sync::Semaphore::new(1)),
            max_functions: DEFAULT_MAX_FUNCTIONS,
        }
    }

    /// The same, holding at most `max` functions.
    pub fn with_max_functions(mut self, max: usize) -> Self {
        self.max_functions = max.max(1);
        self
    }

    /// Why `name` may not be added, if the registry is full and does not
    /// hold it already.
    fn full(&self, name: &str) -> Option<String> {
        let slots = self.read();
        (!slots.contains_key(name) && slots.len() >= self.max_functions).then(|| {
            format!(
                "{name} was not deployed: this host holds {} functions, its limit (--max-functions); delete some first",
                slots.len()
            )
        })
    }

    /// Where the host finds the folders of functions' Secrets, if anywhere.
    pub fn secrets_root(&self) -> Option<&std::path::Path> {
        self.host.config.secrets_root.as_deref()
    }

    /// Whether there is a function called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.read().contains_key(name)
    }

    /// The function called `name`, if any.
    pub fn get(&self, name: &str) -> Option<Entry> {
        self.read().get(name).map(|slot| slot.entry.clone())
    }

    /// Loads a function (compiling off the executor) and puts it in place of
    /// any previous version. A function that fails to load is recorded as
    /// failed, with the reason, and the error is returned too.
    pub async fn deploy(&self, function: Function, origin: Origin) -> Result<Runner, String> {
        self.deploy_try(function, origin, 0, None).await
    }

    /// [`Registry::deploy`] of a function whose inline source the caller
    /// has decoded already (`source`): it is not decoded again.
    pub async fn deploy_decoded(
        &self,
        function: Function,
        origin: Origin,
        source: Vec<u8>,
    ) -> Result<Runner, String> {
        self.deploy_try(function, origin, 0, Some(source)).await
    }

    /// [`Registry::deploy`], after `failed` tries of this version failed;
    /// with the source's bytes if the caller has them.
    async fn deploy_try(
        &self,
        function: Function,
        origin: Origin,
        failed: u32,
        decoded: Option<Vec<u8>>,
    ) -> Result<Runner, String> {
        let name = function.name().to_owned();
        if let Some(refusal) = self.full(&name) {
            tracing::warn!("{refusal}");
            return Err(refusal);
        }
        let runtime = function.spec.runtime.clone();
        let labels = function.metadata.labels.clone();
        let started = Instant::now();
        let host = self.host.clone();
        let sources = self.sources.clone();
        let fallback = self.fallback.clone();
        let base_dir = match &origin {
            Origin::Manifest(path) => path.parent().map(|p| p.to_owned()),
            Origin::Api | Origin::Cluster => None,
        };
        let placement;
        let again = Retry::Deploy(Box::new(function.clone()), origin.clone());
        let source = match decoded {
            Some(source) => Ok(Some(source)),
            None => fetch(&function).await,
        };
        let loaded = match source {
            Ok(fetched) => tokio::task::spawn_blocking(move || {
                load(&host, &sources, &fallback, &function, base_dir, fetched)
            })
            .await
            .unwrap_or_else(|e| Err((format!("loading panicked: {e}"), None))),
            Err(reason) => Err((reason, None)),
        };
        let loaded = match loaded {
            Ok((Loaded::Remote(process), decided)) => {
                let process = Arc::new(*process);
                self.put(
                    &name,
                    Entry::Process(process.clone()),
                    origin,
                    runtime,
                    labels,
                    Some(decided),
                );
                return Ok(Runner::Process(process));
            }
            Ok((Loaded::Process(spec), decided)) => {
                placement = Some(decided);
                let servers = self.servers_dir();
                match LocalProcess::start(spec, &servers, self.host.clone()).await {
                    Ok(process) => {
                        let process = Arc::new(process);
                        tracing::info!(function = %name, "running on the local fallback process");
                        self.put(
                            &name,
                            Entry::Process(process),
                            origin,
                            runtime,
                            labels,
                            placement,
                        );
                        return Ok(Runner::Process(self.process(&name)?));
                    }
                    Err(reason) => Err(reason),
                }
            }
            Ok((Loaded::Wasm(function, source), decided)) => {
                placement = Some(decided);
                Ok((function, source))
            }
            Err((reason, decided)) => {
                placement = decided.map(|p| *p);
                Err(reason)
            }
        };
        let (loaded, source) = match loaded {
            Ok((function, source)) => (Ok(function), Some(source)),
            Err(reason) => (Err(reason), None),
        };
        let entry = match &loaded {
            Ok(function) => {
                tracing::debug!(
                    function = %name,
                    kind = function.kind().as_str(),
                    size = function.size(),
                    cache = ?function.cache_outcome(),
                    elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                    "function ready"
                );
                Entry::Ready(function.clone())
            }
            Err(reason) => {
                let failure = Failure::new(reason.clone(), again, failed + 1);
                tracing::error!(function = %name, attempts = failure.attempts(), "function failed to load: {}", failure.message());
                Entry::Failed(Arc::new(failure))
            }
        };
        let told = match &entry {
            Entry::Failed(failure) => Some(failure.message()),
            _ => None,
        };
        self.put(&name, entry, origin, runtime, labels, placement);
        // Only a Python function on its wasm runtime has a bytecode folder.
        if let Ok(function) = &loaded
            && let Some(bytecode) = Bytecode::new(function)
        {
            let name = name.clone();
            tokio::spawn(async move {
                // Not at once: the first events after a deploy would share
                // the machine's cores with it.
                tokio::time::sleep(BYTECODE_DELAY).await;
                bytecode.run(&name).await;
            });
        }
        // Only now that it is in place can the optimized code replace it.
        if let (Ok(function), Some(source)) = (&loaded, source)
            && function.cache_outcome() == CacheOutcome::Baseline
        {
            self.optimize_later(name, function.clone(), source);
        }
        loaded
            .map(Runner::Wasm)
            .map_err(|reason| told.unwrap_or(reason))
    }

    fn put(
        &self,
        name: &str,
        entry: Entry,
        origin: Origin,
        runtime: String,
        labels: BTreeMap<String, String>,
        placement: Option<Placement>,
    ) {
        self.write().insert(
            name.to_owned(),
            Slot {
                entry,
                origin,
                runtime,
                labels,
                placement,
            },
        );
    }

    /// The process just put in place for `name`.
    fn process(&self, name: &str) -> Result<Arc<LocalProcess>, String> {
        match self.get(name) {
            Some(Entry::Process(process)) => Ok(process),
            _ => Err(format!("`{name}` was replaced while it started")),
        }
    }

    /// Where the built-in fallback servers are written.
    fn servers_dir(&self) -> PathBuf {
        match &self.host.config.cache_dir {
            Some(cache) => cache.join("servers"),
            None => std::env::temp_dir().join("wasmless-servers"),
        }
    }

    /// The function called `name`, ready to run: a parked function is
    /// loaded again first. `None` if there is no such function, `Err` with
    /// the reason if it cannot run.
    pub async fn ready(&self, name: &str) -> Option<Result<Runner, String>> {
        let parked = loop {
            match self.get(name)? {
                Entry::Ready(function) => {
                    self.snapshot_if_busy(name, &function);
                    return Some(Ok(Runner::Wasm(function)));
                }
                Entry::Process(process) => return Some(Ok(Runner::Process(process))),
                Entry::Failed(failure) => {
                    if Instant::now() < failure.due {
                        return Some(Err(failure.message()));
                    }
                    let _trying = failure.gate.lock().await;
                    // Still the version that failed (no one tried it again
                    // or replaced it meanwhile): try it now.
                    if matches!(self.get(name)?, Entry::Failed(now) if Arc::ptr_eq(&now, &failure))
                    {
                        tracing::info!(function = %name, attempts = failure.attempts, "loading it again after a failure");
                        match &failure.retry {
                            Retry::Deploy(function, origin) => {
                                return Some(
                                    self.deploy_try(
                                        (**function).clone(),
                                        origin.clone(),
                                        failure.attempts,
                                        None,
                                    )
                                    .await,
                                );
                            }
                            Retry::Wake(parked) => {
                                let parked = parked.clone();
                                let attempts = failure.attempts;
                                return Some(
                                    self.wake_again(name, parked, attempts, &failure).await,
                                );
                            }
                        }
                    }
                }
                Entry::Parked(parked) => break parked,
                Entry::Pending(pending) => {
                    let _loading = pending.gate.lock().await;
                    // Still the version that was waiting (no one loaded or
                    // replaced it meanwhile): load it now.
                    if matches!(self.get(name)?, Entry::Pending(now) if Arc::ptr_eq(&now, &pending))
                    {
                        let function = pending.function.clone();
                        return Some(self.deploy(function, pending.origin.clone()).await);
                    }
                }
            }
        };
        let started = Instant::now();
        let loaded = self.load_parked(&parked).await;
        let woken = self.wake(name, loaded, &parked, started);
        match woken {
            Some(outcome) => Some(outcome),
            None if self.get(name).is_some() => Box::pin(self.ready(name)).await,
            None => None,
        }
    }

    /// Loads a parked function again, off the executor.
    async fn load_parked(&self, parked: &Parked) -> Result<LoadedFunction, String> {
        let host = self.host.clone();
        let wanted = parked.clone();
        tokio::task::spawn_blocking(move || host.load_parked(&wanted))
            .await
            .map_err(|e| format!("loading panicked: {e}"))
            .and_then(|r| r.map_err(|e| e.to_string()))
    }

    /// Tries again to load a parked function whose load failed `attempts`
    /// times (`failure` is the entry that says so).
    async fn wake_again(
        &self,
        name: &str,
        parked: Parked,
        attempts: u32,
        failure: &Arc<Failure>,
    ) -> Result<Runner, String> {
        let loaded = self.load_parked(&parked).await;
        let mut slots = self.write();
        let Some(slot) = slots.get_mut(name) else {
            return Err(format!("`{name}` was removed while it loaded"));
        };
        if !matches!(&slot.entry, Entry::Failed(now) if Arc::ptr_eq(now, failure)) {
            return Err(format!(
                "`{name}` was replaced while it loaded; call it again"
            ));
        }
        match loaded {
            Ok(function) => {
                let function = Arc::new(function);
                slot.entry = Entry::Ready(function.clone());
                tracing::info!(function = %name, "loaded again after a failure");
                Ok(Runner::Wasm(function))
            }
            Err(reason) => {
                let failure = Failure::new(reason, Retry::Wake(parked), attempts + 1);
                let message = failure.message();
                tracing::error!(function = %name, attempts = failure.attempts, "a parked function could not be loaded again: {message}");
                slot.entry = Entry::Failed(Arc::new(failure));
                Err(message)
            }
        }
    }

    /// Puts a parked function that was loaded again in place, unless it was
    /// replaced meanwhile. `None`: gone, or replaced by a pending version.
    fn wake(
        &self,
        name: &str,
        loaded: Result<LoadedFunction, String>,
        parked: &Parked,
        started: Instant,
    ) -> Option<Result<Runner, String>> {
        let mut slots = self.write();
        let slot = slots.get_mut(name)?;
        match (&slot.entry, loaded) {
            // Someone else woke it (or replaced it) meanwhile: use theirs.
            (Entry::Ready(current), _) => Some(Ok(Runner::Wasm(current.clone()))),
            (Entry::Process(current), _) => Some(Ok(Runner::Process(current.clone()))),
            (Entry::Failed(failure), _) => Some(Err(failure.message())),
            // Replaced by a version not loaded yet: load that one.
            (Entry::Pending(_), _) => None,
            (Entry::Parked(_), Ok(function)) => {
                let function = Arc::new(function);
                slot.entry = Entry::Ready(function.clone());
                tracing::debug!(
                    function = %name,
                    elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                    "woke a parked function"
                );
                Some(Ok(Runner::Wasm(function)))
            }
            (Entry::Parked(_), Err(reason)) => {
                let failure = Failure::new(reason, Retry::Wake(parked.clone()), 1);
                let message = failure.message();
                tracing::error!(function = %name, "a parked function could not be loaded again: {message}");
                slot.entry = Entry::Failed(Arc::new(failure));
                Some(Err(message))
            }
        }
    }

    /// Parks every function idle for longer than `idle` and not running:
    /// its compiled code and instance data are freed until its next event.
    /// Returns how many were parked.
    pub fn park_idle(&self, idle: Duration) -> usize {
        let mut parked = 0;
        for slot in self.write().values_mut() {
            parked += usize::from(park_if_idle(slot, idle));
        }
        parked
    }

    /// How long the loaded function `name` has been idle (since its last
    /// event, or its load); `None` unless it is loaded.
    pub fn idle_for(&self, name: &str) -> Option<Duration> {
        match &self.read().get(name)?.entry {
            Entry::Ready(function) => Some(function.idle_for()),
            _ => None,
        }
    }

    /// Parks the function `name`, as [`Registry::park_idle`] does, if it is
    /// loaded, idle for longer than `idle` and not running.
    pub fn park_if_idle(&self, name: &str, idle: Duration) -> bool {
        self.write()
            .get_mut(name)
            .is_some_and(|slot| park_if_idle(slot, idle))
    }

    /// Compiles `baseline`'s optimized code in the background and swaps it
    /// in, unless the function was replaced or removed meanwhile.
    fn optimize_later(&self, name: String, baseline: Arc<LoadedFunction>, source: Arc<[u8]>) {
        optimize_later(
            self.host.clone(),
            self.slots.clone(),
            self.optimizer.clone(),
            name,
            baseline,
            source,
        );
    }

    /// Starts the snapshot of `function` (see `host::preinit`) when it runs
    /// on a source runtime and its events came under steady load often
    /// enough, once per loaded version. Runs on every event: past the
    /// checks of a few flags, the work is in the background.
    fn snapshot_if_busy(&self, name: &str, function: &Arc<LoadedFunction>) {
        let after = self.host.config.snapshot_after;
        if after == 0
            || !function.on_shared_runtime()
            || function.events_under_load() < after
            || !function.claim_snapshot()
        {
            return;
        }
        let sources = self.sources.clone();
        let host = self.host.clone();
        let slots = self.slots.clone();
        let optimizer = self.optimizer.clone();
        let snapshots = self.snapshots.clone();
        let name = name.to_owned();
        let function = function.clone();
        tokio::spawn(async move {
            let Ok(_permit) = snapshots.acquire_owned().await else {
                return;
            };
            if !serves(
                &slots.read().unwrap_or_else(|e| e.into_inner()),
                &name,
                &function,
            ) {
                return;
            }
            tracing::info!(function = %name, events = function.events_under_load(), "events come faster than fresh instances are made: making the function's snapshot");
            let started = Instant::now();
            let tiered = host.config.tiered;
            let made = {
                let (host, function) = (host.clone(), function.clone());
                // At normal priority: under load, it is what frees the CPU.
                tokio::task::spawn_blocking(move || {
                    // The source runtime it runs on, by its code's digest
                    // (reading a runtime's file the first time).
                    let digest = function.digest();
                    let (language, runtime) = [Language::Python, Language::JavaScript]
                        .into_iter()
                        .filter_map(|language| Some((language, sources.component(language).ok()?)))
                        .find(|(_, runtime)| hex::encode(runtime.digest) == digest)
                        .ok_or_else(|| {
                            PreInitError::NotEligible("not on a source runtime".into())
                        })?;
                    let made = host.pre_initialize(&function, language, &runtime.bytes, tiered);
                    crate::host::return_freed_heap();
                    made
                })
                .await
            };
            let (snapshot, wasm) = match made {
                Ok(Ok(made)) => made,
                Ok(Err(PreInitError::NotEligible(why))) => {
                    tracing::info!(function = %name, "no snapshot: {why}; its instances start as before");
                    return;
                }
                Ok(Err(err)) => {
                    tracing::warn!(function = %name, "no snapshot: {err}; its instances start as before");
                    return;
                }
                Err(err) => {
                    tracing::warn!(function = %name, "making the snapshot panicked: {err}");
                    return;
                }
            };
            let Some(snapshot) = replace_if_serves(&slots, &name, &function, snapshot) else {
                return;
            };
            tracing::info!(
                function = %name,
                elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                code = if snapshot.cache_outcome() == CacheOutcome::Baseline { "baseline" } else { "optimized" },
                "snapshot in place: each instance starts with the module loaded"
            );
            if snapshot.cache_outcome() == CacheOutcome::Baseline {
                optimize_later(host, slots, optimizer, name, snapshot, wasm);
            }
        });
    }

    /// Makes `function` known without loading it: its first event loads it
    /// (from the compile cache when its code was compiled before). When an
    /// earlier version is loaded, `function` is handed back instead: the
    /// caller deploys it (the old version serves until the new one is in
    /// place).
    pub fn stage(&self, function: Function, origin: Origin) -> Option<Function> {
        let name = function.name().to_owned();
        if matches!(self.get(&name), Some(Entry::Ready(_) | Entry::Process(_))) {
            return Some(function);
        }
        let runtime = function.spec.runtime.clone();
        let labels = function.metadata.labels.clone();
        let pending = Arc::new(Pending {
            function,
            origin: origin.clone(),
            gate: tokio::sync::Mutex::new(()),
        });
        self.put(
            &name,
            Entry::Pending(pending),
            origin,
            runtime,
            labels,
            None,
        );
        None
    }

    /// The names of the functions that came from `origin`.
    pub fn names_of(&self, origin: &Origin) -> Vec<String> {
        self.read()
            .iter()
            .filter(|(_, slot)| &slot.origin == origin)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Removes a function; true if it was there.
    pub fn remove(&self, name: &str) -> bool {
        self.host.logs().forget(name);
        self.write().remove(name).is_some()
    }

    /// The last `tail` lines a function wrote (all kept lines when `None`);
    /// `None` when there is no such function.
    pub fn logs(&self, name: &str, tail: Option<usize>) -> Option<Vec<String>> {
        self.read()
            .contains_key(name)
            .then(|| self.host.logs().tail(name, tail))
    }

    /// The names of the functions `target` selects, ready or not, sorted.
    pub fn matching(&self, target: &Target) -> Vec<String> {
        let mut names: Vec<String> = self
            .read()
            .iter()
            .filter(|(name, slot)| target.matches(name, &slot.labels))
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }

    /// The names of the functions that came from `path`.
    pub fn names_from(&self, path: &std::path::Path) -> Vec<String> {
        self.read()
            .iter()
            .filter(|(_, slot)| matches!(&slot.origin, Origin::Manifest(p) if p == path))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The listing of the function called `name`, if there is one.
    pub fn info(&self, name: &str) -> Option<FunctionInfo> {
        self.read()
            .get_key_value(name)
            .map(|(name, slot)| slot.info(name))
    }

    /// A listing of every function, sorted by name.
    pub fn list(&self) -> Vec<FunctionInfo> {
        let mut list: Vec<FunctionInfo> = self
            .read()
            .iter()
            .map(|(name, slot)| slot.info(name))
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Slot>> {
        self.slots.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Slot>> {
        self.slots.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// How long a version serves on its baseline code before its optimized
/// compile starts.
const OPTIMIZE_AFTER: Duration = Duration::from_millis(500);

/// Compiles `baseline`'s optimized code in the background and swaps it
/// in, unless the function was replaced or removed meanwhile.
fn optimize_later(
    host: Arc<Host>,
    slots: Arc<RwLock<HashMap<String, Slot>>>,
    optimizer: Arc<tokio::sync::Semaphore>,
    name: String,
    baseline: Arc<LoadedFunction>,
    source: Arc<[u8]>,
) {
    tokio::spawn(async move {
        // A version that goes at once (a test, a benchmark's trial, an
        // apply soon followed by another) costs no optimized compile: on a
        // small node that compile takes a core from whatever comes next.
        tokio::time::sleep(OPTIMIZE_AFTER).await;
        let Ok(_permit) = optimizer.acquire_owned().await else {
            return;
        };
        // Replaced or removed while waiting: nothing to optimize.
        if !serves(
            &slots.read().unwrap_or_else(|e| e.into_inner()),
            &name,
            &baseline,
        ) {
            return;
        }
        let settings = baseline.settings().clone();
        let started = Instant::now();
        let optimized = tokio::task::spawn_blocking(move || {
            let optimized =
                crate::host::engine::in_background(|| host.load_optimized(&source, settings));
            crate::host::return_freed_heap();
            optimized
        })
        .await;
        let optimized = match optimized {
            Ok(Ok(mut optimized)) => {
                // The optimized code of a source runtime is shared as its
                // baseline code was, and that of a snapshot is a snapshot.
                optimized.shared = baseline.shared;
                optimized.pre_initialized = baseline.pre_initialized;
                optimized
            }
            Ok(Err(err)) => {
                tracing::warn!(function = %name, "optimized compile failed, the baseline code keeps serving: {err}");
                return;
            }
            Err(err) => {
                tracing::warn!(function = %name, "optimized compile panicked: {err}");
                return;
            }
        };
        if replace_if_serves(&slots, &name, &baseline, optimized).is_some() {
            tracing::debug!(
                function = %name,
                elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                "optimized code in place"
            );
        }
    });
}

/// Puts `new` in `name`'s place if `old` still serves it (it was not
/// replaced or removed meanwhile): other code for the same version, such as
/// its optimized code or its snapshot. Swapping code in is not a use: the
/// function stays as idle as it was.
fn replace_if_serves(
    slots: &RwLock<HashMap<String, Slot>>,
    name: &str,
    old: &Arc<LoadedFunction>,
    new: LoadedFunction,
) -> Option<Arc<LoadedFunction>> {
    new.last_used.store(
        old.last_used.load(std::sync::atomic::Ordering::Relaxed),
        std::sync::atomic::Ordering::Relaxed,
    );
    let new = Arc::new(new);
    let mut slots = slots.write().unwrap_or_else(|e| e.into_inner());
    if !serves(&slots, name, old) {
        return None;
    }
    slots.get_mut(name)?.entry = Entry::Ready(new.clone());
    Some(new)
}

/// Parks the function in `slot` if it is loaded, idle for longer than
/// `idle` and not running (no event holds it).
fn park_if_idle(slot: &mut Slot, idle: Duration) -> bool {
    if let Entry::Ready(function) = &slot.entry
        && Arc::strong_count(function) == 1
        && function.idle_for() > idle
        && let Some(dormant) = function.park()
    {
        slot.entry = Entry::Parked(dormant);
        return true;
    }
    false
}

/// Whether `name` still serves exactly `function`.
fn serves(slots: &HashMap<String, Slot>, name: &str, function: &Arc<LoadedFunction>) -> bool {
    slots
        .get(name)
        .is_some_and(|slot| matches!(&slot.entry, Entry::Ready(f) if Arc::ptr_eq(f, function)))
}

/// Fetches a `url` source before loading (other sources are read by `load`).
async fn fetch(function: &Function) -> Result<Option<Vec<u8>>, String> {
    match (
        &function.spec.function_content_type,
        &function.spec.function,
    ) {
        (ContentType::Url, Some(url)) => fetch_url(url).await.map(Some).map_err(|e| e.to_string()),
        _ => Ok(None),
    }
}

/// Loads a function: decides its path with the runtime catalog, writes
/// its files and installs its dependencies, then loads it in the host (with
/// the wasm it runs, for a later optimized compile) or describes the
/// fallback process to start. An error comes with the decision when one was
/// made.
fn load(
    host: &Arc<Host>,
    sources: &SourceRuntimes,
    fallback: &Fallback,
    function: &Function,
    base_dir: Option<PathBuf>,
    fetched: Option<Vec<u8>>,
) -> Result<(Loaded, Placement), LoadFailure> {
    let spec = &function.spec;
    let decide = |dependencies: &Dependencies| {
        runtimes::place(
            &fallback.catalog,
            &spec.runtime,
            spec.image.as_deref(),
            dependencies,
        )
        .map_err(|e| (e.message, None))
    };
    if let Some(address) = fallback.forward_to {
        let timeout = spec.timeout().map_err(|e| (e.to_string(), None))?;
        let placement = Placement {
            path: RunPath::Image,
            runtime: spec.runtime.clone(),
            language: None,
            entry: None,
            image: spec.image.clone(),
            reason: "Forwarded",
            message: format!("events go to the runtime container at {address}"),
        };
        return Ok((
            Loaded::Remote(Box::new(LocalProcess::remote(address, timeout))),
            placement,
        ));
    }
    let mut placement = decide(&Dependencies::Pure)?;
    let with = |placement: &Placement| {
        let placement = placement.clone();
        move |message: String| (message, Some(Box::new(placement)))
    };
    let source = resolve_source(function, base_dir.as_deref(), fetched)
        .map_err(|e| with(&placement)(e.to_string()))?;
    let mut settings = FunctionSettings {
        name: function.name().to_owned(),
        runtime: spec.runtime.clone(),
        timeout: spec
            .timeout()
            .map_err(|e| with(&placement)(e.to_string()))?,
        memory_limit: spec
            .memory_limit()
            .map_err(|e| with(&placement)(e.to_string()))?,
        env: spec
            .env
            .iter()
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect(),
        mounts: secret_mounts(function, host.config.secrets_root.as_deref())
            .map_err(with(&placement))?,
        outbound: Arc::new(
            spec.outbound_policy()
                .map_err(|e| with(&placement)(e.to_string()))?,
        ),
        events_per_instance: spec
            .events_per_instance()
            .map_err(|e| with(&placement)(e.to_string()))?,
    };
    if placement.path == RunPath::Wasm && placement.language.is_none() {
        if spec.function_content_type == ContentType::Base64Zip {
            return Err(with(&placement)("spec.functionContentType: base64+zip is for source runtimes (python3.x, nodejs); give a wasm function as base64".into()));
        }
        let loaded = host
            .load(&source, settings)
            .map_err(|e| with(&placement)(e.to_string()))?;
        return Ok((Loaded::Wasm(Arc::new(loaded), source.into()), placement));
    }
    let handler = spec.handler.as_deref().ok_or_else(|| {
        with(&placement)(format!(
            "spec.handler: required for {}: file.function, such as hello.handler",
            spec.runtime
        ))
    })?;
    let (module, entry) = runtimes::split_handler(handler)
        .map_err(|m| with(&placement)(format!("spec.handler: {m}")))?;
    // A source from a URL (kubeless's url+zip, url+compressedtar) is
    // unpacked by what its bytes are; a tar archive travels as a zip.
    let fetched_archive = spec.function_content_type == ContentType::Url
        && crate::archive::Archive::of(&source).is_some();
    let source = if fetched_archive {
        crate::archive::to_zip(&source)
            .map_err(|e| with(&placement)(format!("spec.function: {e}")))?
    } else {
        source
    };
    let zip = spec.function_content_type == ContentType::Base64Zip
        || fetched_archive
        || spec.file.as_deref().is_some_and(|f| f.ends_with(".zip"));
    // A pool's installer containers see the functions' files where they
    // are written.
    let code_root = match (&host.config.installer, &host.config.cache_dir) {
        (Installer::Containers(shared), _) => shared.clone(),
        (Installer::Local, Some(cache)) => cache.join("code"),
        (Installer::Local, None) => std::env::temp_dir().join("wasmless-code"),
    };
    let bytecode_root = match &host.config.cache_dir {
        Some(cache) => cache.join("bytecode"),
        None => std::env::temp_dir().join("wasmless-bytecode"),
    };
    settings.env.extend([
        ("MOD_NAME".to_owned(), module.to_owned()),
        ("FUNC_HANDLER".to_owned(), entry.to_owned()),
        ("FUNC_RUNTIME".to_owned(), spec.runtime.clone()),
        (
            "FUNC_TIMEOUT".to_owned(),
            settings.timeout.as_secs().to_string(),
        ),
        (
            "FUNC_MEMORY_LIMIT".to_owned(),
            settings.memory_limit.to_string(),
        ),
    ]);
    if let Some(language) = placement.language {
        let written = match &host.config.prepared_code {
            Some(dir) => prepared(dir, module, language),
            None => write_code(
                &code_root,
                &source,
                zip,
                module,
                language,
                &Install {
                    target: InstallTarget::Wasm,
                    by: &host.config.installer,
                    env: &settings.env,
                },
            ),
        };
        match written {
            Ok(code) => {
                let component = sources.component(language).map_err(with(&placement))?;
                if language == Language::Python {
                    add_bytecode_folder(&mut settings, &bytecode_root, &code);
                }
                settings.mounts.push(crate::host::Mount {
                    host: code,
                    guest: CODE_MOUNT.to_owned(),
                    writable: false,
                });
                let loaded = host
                    .load_digested(&component.bytes, component.digest, settings)
                    .map_err(|e| with(&placement)(e.to_string()))?;
                return Ok((
                    Loaded::Wasm(Arc::new(loaded), component.bytes.clone()),
                    placement,
                ));
            }
            // Native code in the dependencies: the fallback, if allowed here.
            Err(CodeError::Native {
                package,
                file,
                manifest,
            }) if fallback.local => {
                placement = decide(&Dependencies::Native {
                    package,
                    evidence: format!("{file}, installed from {manifest}"),
                })?;
            }
            Err(CodeError::Native {
                package,
                file,
                manifest,
            }) => {
                return Err(with(&placement)(format!(
                    "{manifest}: package `{package}` contains native code ({file}), which cannot run in wasm. \
                     Add `{package}` to the nativePackages of runtime {} in the runtime catalog \
                     (ConfigMap wasmless-runtimes), or set spec.image, so that the operator runs it on its image",
                    placement.runtime
                )));
            }
            Err(other) => return Err(with(&placement)(other.to_string())),
        }
    }
    // The container-image fallback.
    let runtime = placement.runtime.clone();
    let image = placement.image.clone().unwrap_or_default();
    let catalog_image = placement
        .entry
        .as_ref()
        .and_then(|e| e.image.clone())
        .unwrap_or_default();
    let local = placement
        .entry
        .as_ref()
        .and_then(|e| e.local.clone())
        .filter(|_| fallback.local && spec.image.as_deref().is_none_or(|i| same_repository(i, &catalog_image)))
        .ok_or_else(|| {
            with(&placement)(if !fallback.local {
                format!("the function runs on the image {image}, not in the wasmless host; the operator gives it its own Deployment")
            } else if spec.image.as_deref().is_some_and(|i| !same_repository(i, &catalog_image)) {
                format!("spec.image: `wasmless up` has no container engine to run {image}; deploy the function to a cluster, or drop spec.image to run {runtime} here")
            } else {
                format!("{runtime} runs on the container image {image}; `wasmless up` runs the container-image runtimes of python3.x and nodejs only (as local processes); deploy this function to a cluster")
            })
        })?;
    let language = match local.server {
        LocalServer::Python => Language::Python,
        LocalServer::Nodejs => Language::JavaScript,
    };
    let code = write_code(
        &code_root,
        &source,
        zip,
        module,
        language,
        &Install {
            target: InstallTarget::Native,
            by: &Installer::Local,
            env: &settings.env,
        },
    )
    .map_err(|e| with(&placement)(e.to_string()))?;
    Ok((
        Loaded::Process(ProcessSpec {
            name: function.name().to_owned(),
            local,
            code,
            env: settings.env,
            timeout: settings.timeout,
        }),
        placement,
    ))
}

/// Whether two image references name the same repository (any tag): a
/// Function that asks for its runtime's own image runs on the same server
/// locally.
fn same_repository(a: &str, b: &str) -> bool {
    fn repository(image: &str) -> &str {
        let image = image.split('@').next().unwrap_or(image);
        match image.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => repository,
            _ => image,
        }
    }
    repository(a.trim()) == repository(b.trim())
}

/// The function's Secrets as read-only folders below `root` (a pod's `/`,
/// where the Deployment mounts them). Without a root (`wasmless up`) a
/// function gets none, and says so once.
fn secret_mounts(
    function: &Function,
    root: Option<&std::path::Path>,
) -> Result<Vec<crate::host::Mount>, String> {
    let secrets = &function.spec.secrets;
    let Some(root) = root else {
        if !secrets.is_empty() {
            tracing::warn!(function = %function.name(), "spec.secrets are mounted in a cluster only; `up` grants no files");
        }
        return Ok(Vec::new());
    };
    secrets
        .iter()
        .map(|secret| {
            let host = root.join(secret);
            if host.is_dir() {
                Ok(crate::host::Mount {
                    host,
                    guest: format!("/{secret}"),
                    writable: false,
                })
            } else {
                Err(format!(
                    "spec.secrets: secret `{secret}` is not mounted at {}",
                    host.display()
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::HostConfig;

    fn registry() -> Registry {
        registry_with(HostConfig::default())
    }

    fn registry_with(config: HostConfig) -> Registry {
        let host = Host::new(config).expect("engine starts");
        Registry::new(
            host,
            Fallback {
                catalog: Arc::new(Catalog::built_in()),
                local: false,
                forward_to: None,
            },
        )
    }

    fn function(name: &str, wat: &str) -> Function {
        let yaml = format!(
            "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata: {{name: {name}}}\nspec:\n  function: '{wat}'\n"
        );
        serde_saphyr::from_str(&yaml).expect("a Function")
    }

    const MODULE: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

    #[tokio::test]
    async fn a_staged_function_loads_once_on_its_first_events() {
        let registry = Arc::new(registry());
        assert!(
            registry
                .stage(function("a", MODULE), Origin::Cluster)
                .is_none()
        );
        assert!(matches!(registry.get("a"), Some(Entry::Pending(_))));
        assert_eq!(registry.names_of(&Origin::Cluster), vec!["a".to_owned()]);
        // Two first events at once: one load, both served.
        let (one, two) = tokio::join!(registry.ready("a"), registry.ready("a"));
        assert!(matches!(one, Some(Ok(Runner::Wasm(_)))));
        assert!(matches!(two, Some(Ok(Runner::Wasm(_)))));
        assert!(matches!(registry.get("a"), Some(Entry::Ready(_))));
        assert_eq!(registry.host.cache().compiles(), 1);
        // A new version of a loaded function comes back to be deployed
        // (the loaded one serves meanwhile).
        let again = registry.stage(function("a", MODULE), Origin::Cluster);
        assert!(again.is_some());
        assert!(matches!(registry.get("a"), Some(Entry::Ready(_))));
        // One that does not load says why, on its first event.
        registry.stage(function("bad", "(module"), Origin::Cluster);
        assert!(matches!(registry.ready("bad").await, Some(Err(_))));
        assert!(registry.ready("none").await.is_none());
    }

    #[tokio::test]
    async fn a_function_is_parked_by_name_only_once_idle_and_not_running() {
        // Parking keeps the source in the compile cache, on disk.
        let cache = std::env::temp_dir().join(format!("wasmless-park-{}", uuid::Uuid::new_v4()));
        let registry = Arc::new(registry_with(HostConfig {
            cache_dir: Some(cache.clone()),
            ..HostConfig::default()
        }));
        registry.stage(function("a", MODULE), Origin::Cluster);
        assert_eq!(registry.idle_for("a"), None, "not loaded yet");
        let running = registry.ready("a").await;
        assert!(matches!(running, Some(Ok(Runner::Wasm(_)))));
        // Its code must be optimized to be parked: wait for that.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !matches!(registry.get("a"), Some(Entry::Ready(f)) if f.cache_outcome() != CacheOutcome::Baseline)
        {
            assert!(Instant::now() < deadline, "optimized code in place");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(registry.idle_for("a").expect("loaded") >= Duration::from_millis(200));
        drop(running);
        assert!(
            !registry.park_if_idle("a", Duration::from_secs(3600)),
            "not idle that long"
        );
        // An event holds the loaded function: it is not parked under it.
        let Some(Entry::Ready(held)) = registry.get("a") else {
            panic!("loaded");
        };
        assert!(!registry.park_if_idle("a", Duration::from_millis(100)));
        drop(held);
        assert!(registry.park_if_idle("a", Duration::from_millis(100)));
        assert!(matches!(registry.get("a"), Some(Entry::Parked(_))));
        assert_eq!(registry.idle_for("a"), None);
        assert!(!registry.park_if_idle("none", Duration::ZERO));
        // Its next event loads it again.
        assert!(matches!(
            registry.ready("a").await,
            Some(Ok(Runner::Wasm(_)))
        ));
        let _ = std::fs::remove_dir_all(cache);
    }
}
