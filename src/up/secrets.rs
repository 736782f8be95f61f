//! The Secrets of a pool's functions. A dedicated pod has its Function's
//! `spec.secrets` mounted by the kubelet; a pool learns its functions from
//! the API, so it reads their Secrets from the API too (the operator's
//! `wasmless-pool-secrets` Role lets it get those by name, nothing else)
//! and writes each to a folder below the host's secrets root, a
//! memory-backed emptyDir. Each function is granted only the folders of
//! the Secrets it names, read-only, as in a pod of its own.
//!
//! A function is staged once its Secrets are written, so its first event
//! finds them. The Secrets are read again every [`REFRESH`], as the
//! kubelet refreshes a mounted Secret; a function whose Secret could not
//! be read is staged again once it can.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use super::server::App;
use crate::crd::Function;
use crate::host::registry::Entry;

/// How often the Secrets are read again.
pub const REFRESH: Duration = Duration::from_secs(30);

/// How long a new function's Secrets are retried while the pool may not
/// read them yet, and how often.
const GRANT_WAIT: Duration = Duration::from_secs(10);
const GRANT_POLL: Duration = Duration::from_millis(250);

/// A Secret that could not be read or written.
struct Failure {
    secret: String,
    why: String,
    /// The API refused the pool (not granted yet, or not at all).
    forbidden: bool,
}

/// What the pool knows of one function that names Secrets.
struct Wanted {
    generation: Option<i64>,
    function: Function,
    /// Whether a Secret it names could not be read when it was last tried.
    missing: bool,
}

/// The Secrets the pool's functions name, and where they are written.
pub struct PoolSecrets {
    api: Api<Secret>,
    root: PathBuf,
    wanted: Mutex<HashMap<String, Wanted>>,
}

impl PoolSecrets {
    /// Secrets read with `api`, written below `root`.
    pub fn new(api: Api<Secret>, root: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            api,
            root,
            wanted: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Wanted>> {
        self.wanted.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stages `function` (generation `generation`) once the Secrets it
    /// names are written; a newer generation staged meanwhile wins.
    pub fn stage(self: &Arc<Self>, app: &Arc<App>, function: Function, generation: Option<i64>) {
        let name = function.name().to_owned();
        self.lock().insert(
            name.clone(),
            Wanted {
                generation,
                function: function.clone(),
                missing: false,
            },
        );
        let this = self.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let mut failed = this.sync(&function.spec.secrets).await;
            // A new Function is often seen before the operator has let the
            // pool read its Secrets: wait a little for that, not a refresh.
            let mut waited = Duration::ZERO;
            while waited < GRANT_WAIT && failed.iter().any(|f| f.forbidden) {
                tokio::time::sleep(GRANT_POLL).await;
                waited += GRANT_POLL;
                let names: Vec<String> = failed.iter().map(|f| f.secret.clone()).collect();
                failed = this.sync(&names).await;
            }
            {
                let mut wanted = this.lock();
                match wanted.get_mut(&name) {
                    Some(w) if w.generation == generation => w.missing = !failed.is_empty(),
                    // Forgotten, or a newer version is on its way.
                    _ => return,
                }
            }
            for f in &failed {
                tracing::error!(function = %name, "Secret `{}` (spec.secrets) cannot be read, so the function's events fail until it can: {}", f.secret, f.why);
            }
            super::pool::stage(&app, function);
        });
    }

    /// Stops keeping the Secrets of `name` (deleted, or out of the pool).
    pub fn forget(&self, name: &str) {
        self.lock().remove(name);
    }

    /// Reads every Secret named by a function again, every [`REFRESH`],
    /// until the process ends; removes the folders of Secrets no function
    /// names any more, and stages again a function whose Secrets can now
    /// be read.
    pub async fn refresh(self: Arc<Self>, app: Arc<App>) {
        loop {
            tokio::time::sleep(REFRESH).await;
            let names: BTreeSet<String> = self
                .lock()
                .values()
                .flat_map(|w| w.function.spec.secrets.iter().cloned())
                .collect();
            let list: Vec<String> = names.iter().cloned().collect();
            let failed: BTreeSet<String> = self
                .sync(&list)
                .await
                .into_iter()
                .map(|f| f.secret)
                .collect();
            self.prune(&names);
            let again: Vec<Function> = {
                let mut wanted = self.lock();
                wanted
                    .values_mut()
                    .filter_map(|w| {
                        let now_missing =
                            w.function.spec.secrets.iter().any(|s| failed.contains(s));
                        let was_missing = std::mem::replace(&mut w.missing, now_missing);
                        (was_missing && !now_missing).then(|| w.function.clone())
                    })
                    .collect()
            };
            for function in again {
                if !matches!(app.registry.get(function.name()), Some(Entry::Ready(_))) {
                    tracing::info!(function = %function.name(), "its Secrets can be read now: staged again");
                    super::pool::stage(&app, function);
                }
            }
        }
    }

    /// Reads `names` and writes each; returns those that failed.
    async fn sync(&self, names: &[String]) -> Vec<Failure> {
        let mut failed = Vec::new();
        for name in names {
            let mut forbidden = false;
            let result = match self.api.get(name).await {
                Ok(secret) => write_secret(&self.root.join(name), &secret)
                    .map_err(|e| format!("writing it below {}: {e}", self.root.display())),
                Err(kube::Error::Api(e)) if e.code == 404 => Err("no such Secret".to_owned()),
                Err(kube::Error::Api(e)) if e.code == 403 => {
                    forbidden = true;
                    Err(format!(
                        "the pool may not read it (the operator grants that with the {} Role): {}",
                        crate::operator::pool::POOL_SECRETS,
                        e.message
                    ))
                }
                Err(err) => Err(err.to_string()),
            };
            if let Err(why) = result {
                failed.push(Failure {
                    secret: name.clone(),
                    why,
                    forbidden,
                });
            }
        }
        failed
    }

    /// Removes the folders of Secrets no function names.
    fn prune(&self, names: &BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !names.contains(&name)
                && entry.path().is_dir()
                && let Err(err) = std::fs::remove_dir_all(entry.path())
            {
                tracing::warn!("removing the unused Secret folder {name}: {err}");
            }
        }
    }
}

/// Writes each key of `secret` as a file in `dir` (replaced whole, so a
/// reader never sees half a value) and removes keys it no longer has.
pub fn write_secret(dir: &Path, secret: &Secret) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let mut keys = BTreeSet::new();
    let data = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k, v.0.as_slice()));
    let text = secret
        .string_data
        .iter()
        .flatten()
        .map(|(k, v)| (k, v.as_bytes()));
    for (key, value) in data.chain(text) {
        // The API allows `[-._a-zA-Z0-9]+`; anything else is not a file.
        if key.is_empty() || key.starts_with("..") || key.contains('/') || key.starts_with(".tmp-")
        {
            continue;
        }
        let temporary = dir.join(format!(".tmp-{key}"));
        std::fs::write(&temporary, value)?;
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o400))?;
        std::fs::rename(&temporary, dir.join(key))?;
        keys.insert(key.clone());
    }
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !keys.contains(&name) {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_becomes_one_file_per_key_and_loses_the_keys_it_drops() {
        let root = std::env::temp_dir().join(format!("wasmless-secrets-{}", std::process::id()));
        let folder = root.join("db");
        let secret = |pairs: &[(&str, &str)]| Secret {
            data: Some(
                pairs
                    .iter()
                    .map(|(k, v)| {
                        (
                            (*k).to_owned(),
                            k8s_openapi::ByteString(v.as_bytes().to_vec()),
                        )
                    })
                    .collect(),
            ),
            ..Secret::default()
        };
        write_secret(&folder, &secret(&[("user", "app"), ("password", "s3cret")]))
            .expect("written");
        assert_eq!(
            std::fs::read_to_string(folder.join("password")).expect("read"),
            "s3cret"
        );
        assert_eq!(
            std::fs::read_to_string(folder.join("user")).expect("read"),
            "app"
        );
        write_secret(
            &folder,
            &secret(&[("password", "rotated"), ("../escape", "x")]),
        )
        .expect("written");
        assert_eq!(
            std::fs::read_to_string(folder.join("password")).expect("read"),
            "rotated"
        );
        assert!(!folder.join("user").exists(), "a dropped key is removed");
        assert!(
            !root.join("escape").exists(),
            "a key never leaves its folder"
        );
        let names: Vec<String> = std::fs::read_dir(&folder)
            .expect("listed")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["password"]);
        std::fs::remove_dir_all(&root).expect("cleaned up");
    }
}
