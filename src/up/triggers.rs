//! The triggers `up` runs, from its manifests. Each runs as a task; a
//! manifest edit restarts only the triggers whose spec changed, and a
//! trigger removed from its manifest is stopped (a Kafka trigger first
//! finishes the deliveries in progress and commits).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::manifest::Trigger;
use crate::triggers::{cron, kafka};

use super::server::App;

struct Running {
    trigger: Trigger,
    origin: PathBuf,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// One trigger in a listing.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TriggerInfo {
    /// `CronTrigger/NAME` or `KafkaTrigger/NAME`.
    pub name: String,
    /// What it fires: the schedule or the topics, and the functions.
    pub detail: String,
    /// `running`, or `stopped` if it ended (see the log).
    pub status: String,
    /// The manifest it came from.
    pub origin: String,
}

/// The running triggers, by key.
#[derive(Default)]
pub struct TriggerSet {
    running: Mutex<HashMap<String, Running>>,
}

impl TriggerSet {
    /// Makes the triggers from `origin` be exactly `triggers`: starts new
    /// ones, restarts changed ones, stops the ones no longer there. A
    /// trigger whose name another manifest already uses is refused.
    pub async fn apply(&self, app: &Arc<App>, origin: &Path, triggers: Vec<Trigger>) {
        let keyed = triggers.into_iter().map(|t| (t.key(), t)).collect();
        self.apply_keyed(app, origin, keyed).await;
    }

    /// [`apply`](Self::apply) with a key of the caller's for each trigger
    /// (a pool runs one trigger once for each function it selects).
    pub async fn apply_keyed(
        &self,
        app: &Arc<App>,
        origin: &Path,
        triggers: Vec<(String, Trigger)>,
    ) {
        let mut stopping = Vec::new();
        let mut wanted = Vec::new();
        {
            let mut running = self.lock();
            for (key, trigger) in triggers {
                match running.get(&key) {
                    Some(current) if current.origin != origin => {
                        let message = format!(
                            "{}: {key} is already declared in {}; this one is ignored",
                            origin.display(),
                            current.origin.display()
                        );
                        tracing::error!("{message}");
                        eprintln!("error: {message}");
                    }
                    Some(current) if current.trigger == trigger && !current.task.is_finished() => {
                        wanted.push(key);
                    }
                    _ => {
                        if let Some(old) = running.remove(&key) {
                            stopping.push(old);
                        }
                        wanted.push(key.clone());
                        if let Some(started) = start(app, origin, &key, trigger) {
                            running.insert(key, started);
                        }
                    }
                }
            }
            let gone: Vec<String> = running
                .iter()
                .filter(|(key, r)| r.origin == origin && !wanted.contains(key))
                .map(|(key, _)| key.clone())
                .collect();
            for key in gone {
                if let Some(old) = running.remove(&key) {
                    eprintln!("stopping {key}: no longer in {}", origin.display());
                    stopping.push(old);
                }
            }
        }
        for old in stopping {
            finish(old).await;
        }
    }

    /// Stops every trigger, letting Kafka triggers finish and commit.
    pub async fn stop_all(&self) {
        let all: Vec<Running> = self.lock().drain().map(|(_, r)| r).collect();
        for r in &all {
            r.stop.cancel();
        }
        for r in all {
            let _ = r.task.await;
        }
    }

    /// The trigger with `key` (`CronTrigger/NAME`), as applied.
    pub fn get(&self, key: &str) -> Option<Trigger> {
        self.lock().get(key).map(|r| r.trigger.clone())
    }

    /// A listing of every trigger, sorted by key.
    pub fn list(&self) -> Vec<TriggerInfo> {
        let mut list: Vec<TriggerInfo> = self
            .lock()
            .iter()
            .map(|(key, r)| TriggerInfo {
                name: key.clone(),
                detail: describe(&r.trigger),
                status: if r.task.is_finished() {
                    "stopped"
                } else {
                    "running"
                }
                .to_owned(),
                origin: r.origin.display().to_string(),
            })
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn describe(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Cron(t) => format!("`{}` -> {}", t.spec.schedule, t.spec.function),
        Trigger::Kafka(t) => format!(
            "{} -> {} (group {})",
            t.spec.topics().join(","),
            t.spec.target(),
            t.consumer_group()
        ),
    }
}

async fn finish(old: Running) {
    old.stop.cancel();
    let _ = old.task.await;
}

fn start(app: &Arc<App>, origin: &Path, key: &str, trigger: Trigger) -> Option<Running> {
    let key = key.to_owned();
    let stop = CancellationToken::new();
    let metrics = app.metrics.triggers.clone();
    let task = match &trigger {
        Trigger::Cron(spec) => match cron::CronJob::new(spec, app.state_dir()) {
            Ok(job) => tokio::spawn(cron::run(job, app.clone(), metrics, stop.clone())),
            Err(err) => {
                eprintln!("error: {}: {key}: {err}", origin.display());
                return None;
            }
        },
        Trigger::Kafka(spec) => match kafka::KafkaJob::new(spec) {
            Ok(job) => {
                let job = match app.kafka_member() {
                    Some(member) => job.with_member(member),
                    None => job,
                };
                let app = app.clone();
                let stop = stop.clone();
                let key = key.clone();
                tokio::spawn(async move {
                    if let Err(err) = kafka::run(job, app, metrics, stop).await {
                        tracing::error!(trigger = %key, "{err}");
                        eprintln!("error: {key}: {err}");
                    }
                })
            }
            Err(err) => {
                eprintln!("error: {}: {key}: {err}", origin.display());
                return None;
            }
        },
    };
    eprintln!("started {key}: {}", describe(&trigger));
    Some(Running {
        trigger,
        origin: origin.to_owned(),
        stop,
        task,
    })
}
