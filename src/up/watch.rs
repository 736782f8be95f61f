//! Hot reload: when a manifest or a module it names changes, its functions
//! are loaded again and swapped in; events in flight finish on the old
//! version. A manifest that no longer parses keeps the old versions serving.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use crate::manifest::{absolute, read_manifest};

use super::registry::Origin;
use super::server::App;

/// How long to wait for a burst of file events to settle.
const SETTLE: Duration = Duration::from_millis(150);

/// Starts watching; the watcher stops when the returned value is dropped.
pub fn start(
    app: Arc<App>,
    roots: &[PathBuf],
    files: &[PathBuf],
) -> anyhow::Result<notify::RecommendedWatcher> {
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
    let mut watched = BTreeSet::new();
    for root in roots {
        let root = absolute(root);
        if root.is_dir() {
            watcher.watch(&root, RecursiveMode::Recursive)?;
        } else if let Some(parent) = root.parent() {
            watched.insert(parent.to_owned());
        }
    }
    // Modules named by manifests may live elsewhere: watch their folders.
    let mut modules = HashMap::new();
    for file in files {
        for module in module_paths(file) {
            if let Some(parent) = module.parent() {
                watched.insert(parent.to_owned());
            }
            modules.insert(module, absolute(file));
        }
    }
    for dir in &watched {
        if let Err(err) = watcher.watch(dir, RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), "cannot watch for changes: {err}");
        }
    }
    let manifests: BTreeSet<PathBuf> = files.iter().map(|f| absolute(f)).collect();
    tokio::spawn(async move {
        let mut modules = modules;
        let mut manifests = manifests;
        while let Some(first) = rx.recv().await {
            tokio::time::sleep(SETTLE).await;
            let mut changed = BTreeSet::from([first]);
            while let Ok(path) = rx.try_recv() {
                changed.insert(path);
            }
            let mut reload = BTreeSet::new();
            for path in changed {
                if let Some(manifest) = modules.get(&path) {
                    reload.insert(manifest.clone());
                } else if is_yaml(&path) && (manifests.contains(&path) || under_root(&path, &app)) {
                    reload.insert(path);
                }
            }
            for manifest in reload {
                manifests.insert(manifest.clone());
                for module in module_paths(&manifest) {
                    modules.insert(module, manifest.clone());
                }
                reload_manifest(&app, &manifest).await;
            }
        }
    });
    Ok(watcher)
}

async fn reload_manifest(app: &App, path: &Path) {
    let registry = &app.registry;
    let before = registry.names_from(path);
    if !path.exists() {
        for name in before {
            registry.remove(&name);
            eprintln!("removed {name}: {} was deleted", path.display());
        }
        return;
    }
    let (functions, errors) = read_manifest(path);
    if !errors.is_empty() {
        for error in errors {
            eprintln!("error: {error} (the running versions keep serving)");
        }
        return;
    }
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
}

/// The module files a manifest's functions read through `spec.file`.
fn module_paths(manifest: &Path) -> Vec<PathBuf> {
    let base = absolute(manifest)
        .parent()
        .map(Path::to_owned)
        .unwrap_or_default();
    read_manifest(manifest)
        .0
        .iter()
        .filter_map(|f| f.function.spec.file.as_ref())
        .map(|file| absolute(&base.join(file)))
        .collect()
}

fn under_root(path: &Path, app: &App) -> bool {
    app.watch_roots().iter().any(|root| path.starts_with(root))
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}
