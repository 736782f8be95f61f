//! A busy source function's own snapshot: its runtime (Python or
//! JavaScript) with the function's module already loaded, and for Python
//! the event path rehearsed (wasmtime's Wizer, as `wasmless pre-init` does
//! for a runtime alone).
//!
//! A fresh instance of a source function spends most of its CPU before its
//! event: loading the handler's module and touching, page by page, the
//! memory the event path writes. Under steady load that is paid per event. An
//! instance of the function's snapshot starts where `init` left it, so an
//! event pays only for its own call. The snapshot is made once per loaded
//! version, off the event path, and replaces the function's code like its
//! optimized code does; events keep the contract of a fresh instance per
//! event (module-level code ran once, in the snapshot, not per instance).
//!
//! Not every function can have one: the snapshot's run must not touch the
//! file system (a handle it kept would be dangling in every later
//! instance), so the module's source is handed to the runtime in its
//! environment, and a function with installed packages, with Secrets (a
//! snapshot is written to the compile cache), or whose module-level code
//! opens files, imports from its folder or prints keeps its ordinary path.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::error::LoadError;
use super::function::{FunctionSettings, Host, LoadedFunction};
use super::ready::WARM_UP;
use super::source::{BYTECODE_MOUNT, CODE_MOUNT};
use super::state::{Captured, LOG_CAPTURE, wasi_builder};
use crate::runtimes::Language;
use crate::snapshot::SnapshotError;

/// Where the runtimes take the handler's module source from in the
/// snapshot's run (`runtimes/python/app.py`, `runtimes/js/src/lib.rs`).
pub const SNAPSHOT_SOURCE: &str = "WASMLESS_SNAPSHOT_SOURCE";

/// The least time the snapshot's run may take, whatever the function's
/// timeout: it runs on baseline code, once.
const MIN_SNAPSHOT_TIME: Duration = Duration::from_secs(30);

/// Why a function has no snapshot.
#[derive(Debug, thiserror::Error)]
pub enum PreInitError {
    /// The function is not of a kind that can have one.
    #[error("{0}")]
    NotEligible(String),
    /// The snapshot's run failed or left handles open.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The snapshot did not compile or pre-instantiate.
    #[error("loading the snapshot: {0}")]
    Load(#[from] LoadError),
}

impl Host {
    /// The snapshot of `function` (a function of `language` on `runtime`,
    /// the runtime component it runs on), loaded with the same settings:
    /// compiled by the baseline compiler first when `tiered` (the caller
    /// then compiles its optimized code, as for any module). CPU-heavy for
    /// seconds: call it off the async executor, on a thread that may block
    /// (it drives its own calls into the guest).
    pub fn pre_initialize(
        self: &Arc<Self>,
        function: &LoadedFunction,
        language: Language,
        runtime: &[u8],
        tiered: bool,
    ) -> Result<(LoadedFunction, Arc<[u8]>), PreInitError> {
        let settings = function.settings();
        let source = module_source(settings, language)?;
        let mut env = settings.env.clone();
        env.push((SNAPSHOT_SOURCE.to_owned(), source));
        env.push((WARM_UP.to_owned(), "1".to_owned()));
        let io = Captured::new(LOG_CAPTURE);
        // No folders: see the module's doc.
        let wasi = wasi_builder(&env, &[], &io).build();
        let engine = self.snapshot_engine();
        let timeout = settings.timeout.max(MIN_SNAPSHOT_TIME);
        let snapshot = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PreInitError::NotEligible(format!("no runtime for the snapshot: {e}")))?
            .block_on(crate::snapshot::snapshot(
                &engine,
                runtime,
                wasi,
                settings.memory_limit,
                timeout,
            ))
            .map_err(|err| match err {
                // What the runtime said is the reason; the trap's backtrace
                // is not.
                SnapshotError::RunInit(trap) => {
                    let said = last_lines(&io.stderr.contents());
                    SnapshotError::RunInit(if said.is_empty() {
                        trap.lines().next().unwrap_or_default().to_owned()
                    } else {
                        said
                    })
                }
                other => other,
            })?;
        let digest: [u8; 32] = Sha256::digest(&snapshot).into();
        let mut loaded = self.load_binary(&snapshot, digest, settings.clone(), tiered)?;
        loaded.pre_initialized = true;
        Ok((loaded, snapshot.into()))
    }
}

/// The source of the handler's module of a function of `language` that can
/// have a snapshot, or why it cannot.
fn module_source(settings: &FunctionSettings, language: Language) -> Result<String, PreInitError> {
    let refuse = |why: &str| Err(PreInitError::NotEligible(why.to_owned()));
    let mut code: Option<&Path> = None;
    for mount in &settings.mounts {
        match mount.guest.as_str() {
            CODE_MOUNT => code = Some(&mount.host),
            BYTECODE_MOUNT => {}
            _ => return refuse("it has Secrets, which a snapshot must not hold"),
        }
    }
    let Some(code) = code else {
        return refuse("it has no folder of files");
    };
    let packages = match language {
        Language::Python => &[".deps"][..],
        Language::JavaScript => &[".deps", "node_modules"][..],
    };
    if packages.iter().any(|folder| code.join(folder).exists()) {
        return refuse("it has installed packages, which its snapshot's run could not read");
    }
    let module = settings
        .env
        .iter()
        .rev()
        .find(|(name, _)| name == "MOD_NAME")
        .map(|(_, value)| value.as_str())
        .unwrap_or_default();
    if module.is_empty() || module.contains(['/', '\\']) || module.starts_with('.') {
        return refuse("its handler names no module of its folder");
    }
    let path: PathBuf = code.join(format!("{module}.{}", language.extension()));
    std::fs::read_to_string(&path)
        .map_err(|err| PreInitError::NotEligible(format!("cannot read {}: {err}", path.display())))
}

/// The last few non-empty lines of what the snapshot's run printed, on one
/// line.
fn last_lines(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    // Less a Rust guest's panic boilerplate around its message.
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("thread '") && !l.starts_with("note: run with"))
        .collect();
    lines[lines.len().saturating_sub(3)..].join(" / ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_runs_reason_is_the_runtimes_message_without_panic_boilerplate() {
        let printed = b"thread '<unnamed>' (1) panicked at runtimes/js/src/lib.rs:140:9:\nthe function's module did not load: Error: Cannot find module './word'\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n";
        assert_eq!(
            last_lines(printed),
            "the function's module did not load: Error: Cannot find module './word'"
        );
        let traceback = b"Traceback (most recent call last):\n  File \"/kubeless/a.py\", line 1\n    import b\nModuleNotFoundError: No module named 'b'\n\n";
        assert_eq!(
            last_lines(traceback),
            "File \"/kubeless/a.py\", line 1 / import b / ModuleNotFoundError: No module named 'b'"
        );
    }

    #[test]
    fn only_a_function_with_nothing_but_its_own_files_is_snapshotted() {
        let code = std::env::temp_dir().join(format!("wasmless-preinit-{}", std::process::id()));
        std::fs::create_dir_all(&code).expect("folder");
        std::fs::write(
            code.join("hello.py"),
            "def handler(e, c):\n    return 'hi'\n",
        )
        .expect("file");
        let mount = |guest: &str| super::super::Mount {
            host: code.clone(),
            guest: guest.to_owned(),
            writable: false,
        };
        let settings = |mounts: Vec<super::super::Mount>| FunctionSettings {
            name: "hello".into(),
            runtime: "python3.x".into(),
            timeout: Duration::from_secs(1),
            memory_limit: 1 << 26,
            env: vec![("MOD_NAME".into(), "hello".into())],
            mounts,
            outbound: Default::default(),
            events_per_instance: 1,
        };
        let eligible = settings(vec![mount(CODE_MOUNT), mount(BYTECODE_MOUNT)]);
        assert!(
            module_source(&eligible, Language::Python)
                .expect("eligible")
                .contains("def handler")
        );
        let with_secret = settings(vec![mount(CODE_MOUNT), mount("/db-creds")]);
        assert!(
            matches!(module_source(&with_secret, Language::Python), Err(PreInitError::NotEligible(why)) if why.contains("Secrets"))
        );
        assert!(
            matches!(module_source(&eligible, Language::JavaScript), Err(PreInitError::NotEligible(why)) if why.contains("hello.js"))
        );
        std::fs::create_dir_all(code.join(".deps")).expect("deps");
        assert!(
            matches!(module_source(&eligible, Language::Python), Err(PreInitError::NotEligible(why)) if why.contains("installed packages"))
        );
        let _ = std::fs::remove_dir_all(&code);
    }
}
