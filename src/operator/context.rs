//! What every reconcile needs: the API client, the pod settings, the Event
//! recorder, metrics, and the retry state of failing objects.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use super::resources::PodSettings;

/// The field manager of the operator's server-side applies.
pub const FIELD_MANAGER: &str = "wasmless-operator";
/// The first retry delay after a failed reconcile; it doubles per failure.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest retry delay.
pub const MAX_RETRY: Duration = Duration::from_secs(300);

/// Reconcile outcomes by kind: `wasmless_operator_reconciliations_total`.
pub type Reconciliations = Family<Vec<(&'static str, &'static str)>, Counter>;

/// The reconcilers' shared dependencies.
pub struct Context {
    /// The Kubernetes API.
    pub client: Client,
    /// How function pods are built.
    pub settings: PodSettings,
    /// How each namespace's shared host pool is built.
    pub pool: super::pool::PoolSettings,
    /// Publishes Events on the reconciled resources.
    pub recorder: Recorder,
    /// Counts reconciliations by kind and outcome.
    pub reconciliations: Reconciliations,
    /// Objects already reported as undecodable.
    pub reported_invalid: super::invalid::Reported,
    /// The Functions as the controller caches them (set once it runs): what
    /// a namespace's pool serves is read from here, not listed per event.
    pub functions: std::sync::OnceLock<
        kube::runtime::reflector::Store<kube::core::DeserializeGuard<crate::crd::FunctionResource>>,
    >,
    /// The pool pods of every watched namespace (set once the controllers
    /// start): what a pool function's Endpoints list.
    pub pool_pods:
        std::sync::OnceLock<kube::runtime::reflector::Store<k8s_openapi::api::core::v1::Pod>>,
    failures: Mutex<HashMap<String, u32>>,
    catalog: std::sync::RwLock<std::sync::Arc<crate::runtimes::Catalog>>,
    /// Whether this replica holds the operator's Lease (always, unless
    /// [`Context::follow_lease`] was called).
    leading: std::sync::atomic::AtomicBool,
}

impl Context {
    /// The runtime catalog in effect.
    pub fn catalog(&self) -> std::sync::Arc<crate::runtimes::Catalog> {
        self.catalog
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Puts a new runtime catalog in effect.
    pub fn set_catalog(&self, catalog: crate::runtimes::Catalog) {
        *self.catalog.write().unwrap_or_else(|e| e.into_inner()) = std::sync::Arc::new(catalog);
    }

    /// A context reporting as `wasmless-operator` (instance `instance`).
    pub fn new(client: Client, settings: PodSettings, instance: Option<String>) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_owned(),
            instance,
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            settings,
            pool: super::pool::PoolSettings::default(),
            reconciliations: Reconciliations::default(),
            reported_invalid: Default::default(),
            functions: std::sync::OnceLock::new(),
            pool_pods: std::sync::OnceLock::new(),
            failures: Mutex::default(),
            catalog: std::sync::RwLock::new(std::sync::Arc::new(
                crate::runtimes::Catalog::built_in(),
            )),
            leading: std::sync::atomic::AtomicBool::new(true),
        }
    }

    /// Whether this replica reconciles: it holds the operator's Lease.
    pub fn is_leading(&self) -> bool {
        self.leading.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Records whether this replica holds the operator's Lease.
    pub fn set_leading(&self, leading: bool) {
        self.leading
            .store(leading, std::sync::atomic::Ordering::Release);
    }

    /// Registers the operator's metrics.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "wasmless_operator_reconciliations",
            "Reconciliations by kind and outcome",
            self.reconciliations.clone(),
        );
    }

    /// Counts a reconcile of `kind` with `outcome` (`ok`, `refused`,
    /// `error`).
    pub fn count(&self, kind: &'static str, outcome: &'static str) {
        self.reconciliations
            .get_or_create(&vec![("kind", kind), ("outcome", outcome)])
            .inc();
    }

    /// The delay before retrying `key` after one more failure: 1 s, 2 s,
    /// 4 s, ... up to 5 minutes.
    pub fn next_retry(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock().expect("the lock is never poisoned");
        let count = failures.entry(key.to_owned()).or_insert(0);
        let delay = FIRST_RETRY
            .saturating_mul(1 << (*count).min(16))
            .min(MAX_RETRY);
        *count = count.saturating_add(1);
        delay
    }

    /// Forgets the failures of `key` after a successful reconcile.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .expect("the lock is never poisoned")
            .remove(key);
    }
}
