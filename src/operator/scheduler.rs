//! The cluster's cron scheduler: the operator replica holding the
//! `wasmless-operator` Lease fires every CronTrigger, posting each tick to the
//! function's Service. The others stand by, so a tick fires once however
//! many operator replicas run. The last tick of each trigger is kept in its
//! `status.lastScheduleTime` (as a CronJob's is), so that a new leader
//! carries on where the last one stopped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::crd::{CronTriggerResource, CronTriggerSpec};
use crate::triggers::TriggerMetrics;
use crate::triggers::cron::{CronJob, TickStore, run as run_cron};
use crate::triggers::http::HttpDispatch;

/// How long one cron delivery may take: the longest function timeout
/// (kubeless's default, 180 s) and some slack.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(190);
/// How often the set of triggers is compared with the running jobs.
const RESYNC: Duration = Duration::from_secs(1);

/// What the scheduler needs besides the triggers.
#[derive(Clone)]
pub struct SchedulerConfig {
    /// A function's URL, with `{function}` and `{namespace}` in place of
    /// its name and namespace.
    pub url_template: String,
    /// Where the last tick of each trigger is kept, so that a restart or
    /// a new leader neither repeats nor floods ticks.
    pub ticks: Ticks,
}

/// Where the scheduler keeps each trigger's last tick.
#[derive(Clone)]
pub enum Ticks {
    /// In files below a folder (one per namespace and trigger).
    Folder(PathBuf),
    /// In each CronTrigger's `status.lastScheduleTime`, through this client.
    Status(kube::Client),
}

/// Runs the CronTriggers in `store` while `leader` is true, until `stop`.
pub async fn run(
    store: Store<DeserializeGuard<CronTriggerResource>>,
    mut leader: watch::Receiver<bool>,
    config: SchedulerConfig,
    metrics: TriggerMetrics,
    stop: CancellationToken,
) {
    let mut running: HashMap<String, (CronTriggerSpec, CancellationToken)> = HashMap::new();
    // Once the lease manager is gone this replica can no longer know it
    // leads, so it stops firing.
    let mut lease_lost = false;
    loop {
        let wanted = if !lease_lost && *leader.borrow_and_update() {
            store.state()
        } else {
            Vec::new()
        };
        // An undecodable trigger is reported by its reconciler.
        let wanted: HashMap<String, Arc<CronTriggerResource>> = wanted
            .iter()
            .filter_map(|t| t.0.as_ref().ok())
            .map(|t| (key(t), Arc::new(t.clone())))
            .collect();
        running.retain(|name, (spec, token)| {
            let keep = wanted.get(name).is_some_and(|t| t.spec == *spec);
            if !keep {
                tracing::info!(trigger = %name, "cron trigger stopped");
                token.cancel();
            }
            keep
        });
        for (name, trigger) in wanted {
            if running.contains_key(&name) {
                continue;
            }
            let namespace = trigger.namespace().unwrap_or_default();
            let state_dir = match &config.ticks {
                Ticks::Folder(dir) => Some(dir.join(&namespace)),
                Ticks::Status(_) => None,
            };
            let mut job = match CronJob::new(&trigger.to_trigger(), state_dir.as_deref()) {
                Ok(job) => job,
                // An invalid trigger is reported by its reconciler.
                Err(_) => continue,
            };
            let token = stop.child_token();
            if let Ticks::Status(client) = &config.ticks {
                let initial = trigger
                    .status
                    .as_ref()
                    .and_then(|s| s.last_schedule_time.as_ref())
                    .and_then(|t| DateTime::<Utc>::from_timestamp(t.0.as_second(), 0));
                let (sender, receiver) = watch::channel(None);
                let api = Api::namespaced(client.clone(), &namespace);
                tokio::spawn(record_ticks(
                    api,
                    trigger.name_any(),
                    receiver,
                    token.clone(),
                ));
                job = job.keep_ticks_in(Arc::new(StatusTicks { initial, sender }));
            }
            let template = config.url_template.replace("{namespace}", &namespace);
            let dispatch = Arc::new(HttpDispatch::new(template, DELIVERY_TIMEOUT));
            tokio::spawn(run_cron(job, dispatch, metrics.clone(), token.clone()));
            running.insert(name, (trigger.spec.clone(), token));
        }
        tokio::select! {
            () = stop.cancelled() => break,
            changed = leader.changed(), if !lease_lost => {
                if changed.is_err() {
                    tracing::warn!("the cron lease is no longer managed; cron triggers stop here");
                    lease_lost = true;
                }
            }
            () = tokio::time::sleep(RESYNC) => {}
        }
    }
    for (_, (_, token)) in running {
        token.cancel();
    }
}

fn key(trigger: &CronTriggerResource) -> String {
    format!(
        "{}/{}",
        trigger.namespace().unwrap_or_default(),
        trigger.name_any()
    )
}

/// A trigger's last tick as its status holds it: read once when its job
/// starts, written (latest value only) by [`record_ticks`].
#[derive(Debug)]
struct StatusTicks {
    initial: Option<DateTime<Utc>>,
    sender: watch::Sender<Option<DateTime<Utc>>>,
}

impl TickStore for StatusTicks {
    fn load(&self) -> Option<DateTime<Utc>> {
        self.initial
    }

    fn save(&self, last: DateTime<Utc>) {
        self.sender.send_replace(Some(last));
    }
}

/// Writes each new last tick of `name` to its status until `stop`; ticks
/// that come while a write is under way are folded into the next one.
async fn record_ticks(
    api: Api<CronTriggerResource>,
    name: String,
    mut ticks: watch::Receiver<Option<DateTime<Utc>>>,
    stop: CancellationToken,
) {
    let mut failing = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            changed = ticks.changed() => if changed.is_err() { break },
        }
        let Some(last) = *ticks.borrow_and_update() else {
            continue;
        };
        let Ok(time) = k8s_openapi::jiff::Timestamp::from_second(last.timestamp()) else {
            continue;
        };
        let patch = serde_json::json!({ "status": { "lastScheduleTime": Time(time) } });
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => failing = false,
            // Logged once per run of failures: the trigger may be gone,
            // and its job is stopped on the next resync.
            Err(err) if !failing => {
                failing = true;
                tracing::warn!(trigger = %name, "cannot record the last cron tick in its status: {err}");
            }
            Err(_) => {}
        }
    }
}
