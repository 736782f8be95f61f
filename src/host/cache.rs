//! Compiled artefacts, cached in memory and on disk.
//!
//! The key is the SHA-256 of the wasm bytes; the disk folder is named after
//! the engine's compatibility hash, so that a different wasmtime version or
//! setting never loads an artefact it did not write. A module is compiled
//! at most once per cache folder: later loads map the artefact from disk.
//!
//! Artefacts are used from a file mapping whenever there is a cache folder,
//! even right after compiling, so their pages are clean page-cache pages the
//! kernel can reclaim rather than private memory (loading touches them, so
//! they still count as resident: parking an idle function is what frees
//! them). In memory the cache remembers artefacts some loaded function
//! still uses (weak references), so that deleted functions free their code,
//! and holds on to the last [`RECENT`] small ones it handed out (each under
//! [`RECENT_MAX_BYTES`] of code): a function deployed again soon after it
//! was deleted or parked, or another under the same module, then skips
//! mapping and checking its artefact again (about a sixth of a warm
//! deploy's time, benches/README.md).

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use wasmtime::Engine;
use wasmtime::component::Component;

/// A compiled component or core module.
#[derive(Clone)]
pub enum Compiled {
    /// A component.
    Component(Component),
    /// A core module.
    Module(wasmtime::Module),
}

impl Compiled {
    /// The size of its code and data image, in bytes.
    fn image_bytes(&self) -> usize {
        let range = match self {
            Compiled::Component(component) => component.image_range(),
            Compiled::Module(module) => module.image_range(),
        };
        (range.end as usize).saturating_sub(range.start as usize)
    }
}

/// How many recently used artefacts the cache keeps in memory beyond those
/// loaded functions use.
const RECENT: usize = 8;

/// The largest artefact kept that way: small functions, whose load is
/// mostly fixed cost; a runtime or a snapshot is freed with its functions.
const RECENT_MAX_BYTES: usize = 1 << 20;

/// Where a compiled artefact came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Already compiled in this process.
    Memory,
    /// Loaded from the disk cache.
    Disk,
    /// Compiled now by the optimizing compiler.
    Compiled,
    /// Compiled now by the baseline compiler, to answer sooner; the
    /// optimized code is compiled in the background (see `Host::load`).
    Baseline,
}

/// The compile cache of one engine.
pub struct CompileCache {
    dir: Option<PathBuf>,
    /// A read-only cache of this engine made ahead (the image's), and
    /// whether it has this engine's folder.
    seed: Option<(PathBuf, bool)>,
    memory: Mutex<HashMap<[u8; 32], Weak<Compiled>>>,
    /// The last [`RECENT`] small artefacts handed out, latest last.
    recent: Mutex<VecDeque<([u8; 32], Arc<Compiled>)>>,
    compiles: AtomicU64,
}

impl CompileCache {
    /// A cache that keeps artefacts under `root` (none: memory only), and
    /// also finds them in `seed`, a read-only cache of the same layout
    /// made ahead (used only when it has this engine's folder).
    pub fn new(engine: &Engine, root: Option<&Path>, seed: Option<&Path>) -> Self {
        let folder = {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut hasher);
            format!("{:016x}", hasher.finish())
        };
        let dir = root.map(|root| root.join(&folder));
        let seed = seed.filter(|s| s.is_dir()).map(|seed| {
            let dir = seed.join(&folder);
            let matches = dir.is_dir();
            (dir, matches)
        });
        Self {
            dir,
            seed,
            memory: Mutex::new(HashMap::new()),
            recent: Mutex::new(VecDeque::new()),
            compiles: AtomicU64::new(0),
        }
    }

    /// The precompiled cache's folder for this engine, and whether it
    /// exists (a cache made for another engine configuration has none).
    pub fn precompiled(&self) -> Option<(&Path, bool)> {
        self.seed
            .as_ref()
            .map(|(dir, matches)| (dir.as_path(), *matches))
    }

    /// How many times this cache compiled wasm to native code.
    pub fn compiles(&self) -> u64 {
        self.compiles.load(Ordering::Relaxed)
    }

    /// Compiles `wasm` (whose SHA-256 is `digest`) with the engine's
    /// compiler and keeps the artefact on disk; call [`CompileCache::lookup`]
    /// first.
    pub fn compile(
        &self,
        engine: &Engine,
        digest: [u8; 32],
        wasm: &[u8],
        component: bool,
    ) -> wasmtime::Result<(Arc<Compiled>, CacheOutcome)> {
        let path = self.path(digest);
        let artefact = if component {
            engine.precompile_component(wasm)?
        } else {
            engine.precompile_module(wasm)?
        };
        self.compiles.fetch_add(1, Ordering::Relaxed);
        let mapped = path.as_ref().and_then(|path| {
            if let Err(err) = store_artefact(path, &artefact) {
                tracing::warn!(path = %path.display(), "could not write the compile cache: {err}");
                return None;
            }
            load_artefact(engine, path, component)
        });
        let compiled = match mapped {
            Some(compiled) => compiled,
            None => deserialize(engine, &artefact, component)?,
        };
        Ok((self.remember(digest, compiled), CacheOutcome::Compiled))
    }

    /// The compiled form of the module with this digest, if memory or disk
    /// has it.
    pub fn lookup(
        &self,
        engine: &Engine,
        digest: [u8; 32],
        component: bool,
    ) -> Option<(Arc<Compiled>, CacheOutcome)> {
        if let Some(found) = self.lock().get(&digest).and_then(Weak::upgrade) {
            self.keep_recent(digest, &found);
            return Some((found, CacheOutcome::Memory));
        }
        let name = format!("{}.cwasm", hex::encode(digest));
        let found = self
            .path(digest)
            .and_then(|path| load_artefact(engine, &path, component))
            .or_else(|| match &self.seed {
                Some((dir, true)) => load_artefact(engine, &dir.join(&name), component),
                _ => None,
            })?;
        Some((self.remember(digest, found), CacheOutcome::Disk))
    }

    /// Keeps the wasm bytes beside their artefact (once), so that a parked
    /// function can be loaded again by its digest. False without a cache
    /// folder or if the write failed.
    pub fn keep_source(&self, digest: [u8; 32], wasm: &[u8]) -> bool {
        let Some(path) = self.source_path(digest) else {
            return false;
        };
        if path.exists() {
            return true;
        }
        match store_artefact(&path, wasm) {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(path = %path.display(), "could not keep the module's source: {err}");
                false
            }
        }
    }

    /// The wasm bytes kept by [`CompileCache::keep_source`].
    pub fn source(&self, digest: [u8; 32]) -> std::io::Result<Vec<u8>> {
        match self.source_path(digest) {
            Some(path) => std::fs::read(path),
            None => Err(std::io::Error::other("there is no cache folder")),
        }
    }

    fn source_path(&self, digest: [u8; 32]) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|dir| dir.join(format!("{}.wasm", hex::encode(digest))))
    }

    fn path(&self, digest: [u8; 32]) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|dir| dir.join(format!("{}.cwasm", hex::encode(digest))))
    }

    fn remember(&self, digest: [u8; 32], compiled: Compiled) -> Arc<Compiled> {
        let compiled = Arc::new(compiled);
        let mut memory = self.lock();
        if memory.len() >= 64 && memory.len().is_power_of_two() {
            memory.retain(|_, weak| weak.strong_count() > 0);
        }
        memory.insert(digest, Arc::downgrade(&compiled));
        drop(memory);
        self.keep_recent(digest, &compiled);
        compiled
    }

    /// Holds on to `compiled` as the latest of the recent artefacts, if it
    /// is small enough.
    fn keep_recent(&self, digest: [u8; 32], compiled: &Arc<Compiled>) {
        if compiled.image_bytes() > RECENT_MAX_BYTES {
            return;
        }
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.retain(|(kept, _)| *kept != digest);
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back((digest, compiled.clone()));
    }

    /// Forgets artefacts held in memory (the disk copies stay).
    pub fn clear_memory(&self) {
        self.lock().clear();
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Weak<Compiled>>> {
        // A panic while holding this lock leaves the map itself consistent.
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn load_artefact(engine: &Engine, path: &Path, component: bool) -> Option<Compiled> {
    if !path.exists() {
        return None;
    }
    // SAFETY: the file was written by `store_artefact` of this program, in a
    // folder named after this engine's compatibility hash, renamed into place
    // only once complete; wasmtime checks the header and engine settings again.
    #[allow(unsafe_code)]
    let loaded = unsafe {
        if component {
            Component::deserialize_file(engine, path).map(Compiled::Component)
        } else {
            wasmtime::Module::deserialize_file(engine, path).map(Compiled::Module)
        }
    };
    match loaded {
        Ok(compiled) => Some(compiled),
        Err(err) => {
            tracing::warn!(path = %path.display(), "ignoring an unusable cache entry: {err:#}");
            None
        }
    }
}

fn deserialize(engine: &Engine, artefact: &[u8], component: bool) -> wasmtime::Result<Compiled> {
    // SAFETY: the bytes were produced by `precompile_*` of this same engine
    // just now.
    #[allow(unsafe_code)]
    unsafe {
        if component {
            Component::deserialize(engine, artefact).map(Compiled::Component)
        } else {
            wasmtime::Module::deserialize(engine, artefact).map(Compiled::Module)
        }
    }
}

fn store_artefact(path: &Path, artefact: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .expect("cache paths are files inside the cache folder");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        std::process::id(),
        uuid::Uuid::new_v4()
    ));
    // No fsync: an entry cut short by a crash fails wasmtime's checks when
    // loaded and is compiled again.
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(artefact)?;
    drop(file);
    std::fs::rename(&tmp, path)
}
