//! The cluster's cron scheduler: the operator replica holding the
//! `wasmless-cron` Lease fires every CronTrigger, posting each tick to the
//! function's Service. The others stand by, so a tick fires once however
//! many operator replicas run.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::ResourceExt;
use kube::core::DeserializeGuard;
use kube::runtime::reflector::Store;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::crd::{CronTriggerResource, CronTriggerSpec};
use crate::triggers::TriggerMetrics;
use crate::triggers::cron::{CronJob, run as run_cron};
use crate::triggers::http::HttpDispatch;

/// How long one cron delivery may take: the longest function timeout
/// (kubeless's default, 180 s) and some slack.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(190);
/// How often the set of triggers is compared with the running jobs.
const RESYNC: Duration = Duration::from_secs(1);

/// What the scheduler needs besides the triggers.
#[derive(Clone, Debug)]
pub struct SchedulerConfig {
    /// A function's URL, with `{function}` and `{namespace}` in place of
    /// its name and namespace.
    pub url_template: String,
    /// Where the last tick of each trigger is kept (so that a restart
    /// neither repeats nor floods ticks); `None` keeps nothing.
    pub state_dir: Option<PathBuf>,
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
            let state_dir = config.state_dir.as_ref().map(|d| d.join(&namespace));
            let job = match CronJob::new(&trigger.to_trigger(), state_dir.as_deref()) {
                Ok(job) => job,
                // An invalid trigger is reported by its reconciler.
                Err(_) => continue,
            };
            let template = config.url_template.replace("{namespace}", &namespace);
            let dispatch = Arc::new(HttpDispatch::new(template, DELIVERY_TIMEOUT));
            let token = stop.child_token();
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
