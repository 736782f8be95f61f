//! Hot reload: when a manifest or a module it names changes, its functions
//! are loaded again and swapped in; events in flight finish on the old
//! version. Its triggers are restarted if their spec changed. A manifest
//! that no longer parses keeps the old versions serving.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::manifest::{ManifestFunction, absolute, is_hidden, read_manifest};

use super::server::App;
use crate::host::registry::Origin;

/// How long to wait for a burst of file events to settle.
const SETTLE: Duration = Duration::from_millis(150);

/// Starts watching. The watcher lives in the reload task, which can then
/// also watch the folders of modules named by manifests added later.
pub fn start(app: Arc<App>, roots: &[PathBuf], files: &[PathBuf]) -> anyhow::Result<()> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if matches!(event.kind, notify::EventKind::Access(_)) {
                return;
            }
            for path in event.paths {
                let _ = tx.send(path);
            }
        }
    })?;
    let mut folders = Folders::default();
    for root in roots {
        let root = absolute(root);
        if root.is_dir() {
            watcher.watch(&root, RecursiveMode::Recursive)?;
        } else if let Some(parent) = root.parent() {
            folders.watch(&mut watcher, parent);
        }
    }
    // Modules named by manifests may live elsewhere: watch their folders.
    let mut modules = HashMap::new();
    for file in files {
        let file = absolute(file);
        let functions = read_manifest(&file).0.functions;
        for module in module_paths(&file, &functions) {
            if let Some(parent) = module.parent() {
                folders.watch(&mut watcher, parent);
            }
            modules.insert(module, file.clone());
        }
    }
    let mut manifests: BTreeSet<PathBuf> = files.iter().map(|f| absolute(f)).collect();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            tokio::time::sleep(SETTLE).await;
            let mut changed = BTreeSet::from([first]);
            while let Ok(path) = rx.try_recv() {
                changed.insert(path);
            }
            let mut reload = BTreeSet::new();
            for path in changed {
                if let Some(dir) = projection_swapped(&path) {
                    // A ConfigMap volume updated in place: every file in it
                    // now points at the new data.
                    reload.extend(
                        manifests
                            .iter()
                            .filter(|m| m.parent() == Some(dir))
                            .cloned(),
                    );
                    continue;
                }
                if let Some(manifest) = modules.get(&path) {
                    reload.insert(manifest.clone());
                } else if is_yaml(&path)
                    && (manifests.contains(&path) || visible_under_root(&path, &app))
                {
                    reload.insert(path);
                }
            }
            for manifest in reload {
                manifests.insert(manifest.clone());
                for module in reload_manifest(&app, &manifest).await {
                    if let Some(parent) = module.parent() {
                        folders.watch(&mut watcher, parent);
                    }
                    modules.insert(module, manifest.clone());
                }
            }
        }
    });
    Ok(())
}

/// The folders watched one level deep.
#[derive(Default)]
struct Folders(BTreeSet<PathBuf>);

impl Folders {
    fn watch(&mut self, watcher: &mut notify::RecommendedWatcher, dir: &Path) {
        if self.0.insert(dir.to_owned())
            && let Err(err) = watcher.watch(dir, RecursiveMode::NonRecursive)
        {
            tracing::warn!(dir = %dir.display(), "cannot watch for changes: {err}");
        }
    }
}

/// Loads a manifest again and returns the module files its functions name.
async fn reload_manifest(app: &Arc<App>, path: &Path) -> Vec<PathBuf> {
    let registry = &app.registry;
    let before = registry.names_from(path);
    if !path.exists() {
        for name in before {
            registry.remove(&name);
            eprintln!("removed {name}: {} was deleted", path.display());
        }
        app.routes.apply(path, Vec::new());
        app.triggers.apply(app, path, Vec::new()).await;
        return Vec::new();
    }
    let (manifest, errors) = read_manifest(path);
    for note in &manifest.notes {
        eprintln!("note: {note}");
    }
    let functions = manifest.functions;
    if !errors.is_empty() {
        for error in errors {
            eprintln!("error: {error} (the running versions keep serving)");
        }
        return Vec::new();
    }
    let modules = module_paths(path, &functions);
    let names: BTreeSet<String> = functions
        .iter()
        .map(|f| f.function.name().to_owned())
        .collect();
    for manifest in functions {
        let name = manifest.function.name().to_owned();
        match registry
            .deploy(manifest.function, Origin::Manifest(path.to_owned()))
            .await
        {
            Ok(_) => eprintln!("reloaded {name} from {}", path.display()),
            Err(reason) => eprintln!("reloading {name} FAILED: {reason}"),
        }
    }
    for name in before.into_iter().filter(|n| !names.contains(n)) {
        registry.remove(&name);
        eprintln!("removed {name}: no longer in {}", path.display());
    }
    app.routes.apply(path, manifest.http_triggers);
    app.triggers.apply(app, path, manifest.triggers).await;
    modules
}

/// The module files that a manifest's functions read through `spec.file`.
fn module_paths(manifest: &Path, functions: &[ManifestFunction]) -> Vec<PathBuf> {
    let base = manifest.parent().map(Path::to_owned).unwrap_or_default();
    functions
        .iter()
        .filter_map(|f| f.function.spec.file.as_ref())
        .map(|file| absolute(&base.join(file)))
        .collect()
}
/// The folder of a ConfigMap volume whose `..data` link `path` is, as a
/// kubelet swaps it on an update.
fn projection_swapped(path: &Path) -> Option<&Path> {
    (path.file_name()? == "..data")
        .then(|| path.parent())
        .flatten()
}

/// Whether `path` is below a served folder and not in a hidden folder or
/// file there (as [`crate::manifest::manifest_files`] leaves them out).
fn visible_under_root(path: &Path, app: &App) -> bool {
    app.watch_roots().iter().any(|root| {
        path.strip_prefix(root).is_ok_and(|rest| {
            !rest
                .components()
                .any(|c| is_hidden(Path::new(c.as_os_str())))
        })
    })
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}
