//! Compiled artefacts, cached in memory and on disk.
//!
//! The key is the SHA-256 of the wasm bytes; the disk folder is named after
//! the engine's compatibility hash, so that a different wasmtime version or
//! setting never loads an artefact it did not write. A module is compiled
//! at most once per cache folder: later loads map the artefact from disk.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// Where a compiled artefact came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Already compiled in this process.
    Memory,
    /// Loaded from the disk cache.
    Disk,
    /// Compiled now.
    Compiled,
}

/// The compile cache of one engine.
pub struct CompileCache {
    dir: Option<PathBuf>,
    memory: Mutex<HashMap<[u8; 32], Compiled>>,
    compiles: AtomicU64,
}

impl CompileCache {
    /// A cache that keeps artefacts under `root` (none: memory only).
    pub fn new(engine: &Engine, root: Option<&Path>) -> Self {
        let dir = root.map(|root| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            engine.precompile_compatibility_hash().hash(&mut hasher);
            root.join(format!("{:016x}", hasher.finish()))
        });
        Self {
            dir,
            memory: Mutex::new(HashMap::new()),
            compiles: AtomicU64::new(0),
        }
    }

    /// How many times this cache compiled wasm to native code.
    pub fn compiles(&self) -> u64 {
        self.compiles.load(Ordering::Relaxed)
    }

    /// Returns the compiled form of `wasm` (whose SHA-256 is `digest`),
    /// compiling it only if neither memory nor disk has it.
    pub fn get_or_compile(
        &self,
        engine: &Engine,
        digest: [u8; 32],
        wasm: &[u8],
        component: bool,
    ) -> wasmtime::Result<(Compiled, CacheOutcome)> {
        if let Some(found) = self.lock().get(&digest) {
            return Ok((found.clone(), CacheOutcome::Memory));
        }
        let path = self
            .dir
            .as_ref()
            .map(|dir| dir.join(format!("{}.cwasm", hex::encode(digest))));
        if let Some(path) = &path
            && let Some(found) = load_artefact(engine, path, component)
        {
            self.lock().insert(digest, found.clone());
            return Ok((found, CacheOutcome::Disk));
        }
        let artefact = if component {
            engine.precompile_component(wasm)?
        } else {
            engine.precompile_module(wasm)?
        };
        self.compiles.fetch_add(1, Ordering::Relaxed);
        if let Some(path) = &path
            && let Err(err) = store_artefact(path, &artefact)
        {
            tracing::warn!(path = %path.display(), "could not write the compile cache: {err}");
        }
        let compiled = deserialize(engine, &artefact, component)?;
        self.lock().insert(digest, compiled.clone());
        Ok((compiled, CacheOutcome::Compiled))
    }

    /// Forgets artefacts held in memory (the disk copies stay).
    pub fn clear_memory(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Compiled>> {
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
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(artefact)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
