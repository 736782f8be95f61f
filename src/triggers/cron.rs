//! The cron scheduler: fires a `CronTrigger`'s function at each tick of its
//! schedule (in UTC).
//!
//! Each tick is one event: a fresh `event-id`, the tick's time as
//! `event-time`, `cron.wasmless.io` as `event-namespace` and the trigger's
//! payload as data. Deliveries run concurrently with the schedule, so a slow
//! function never delays the next tick.
//!
//! Missed ticks (the scheduler was not running, or the machine slept) are
//! never piled up: with `catchUp: once` the latest missed tick fires once as
//! soon as the scheduler runs again; with `catchUp: skip` it does not. To
//! know what was missed across restarts, the scheduler keeps the time of the
//! last tick it handled in a [`TickStore`]: under `up` a state file
//! (`<state-dir>/cron/<trigger>.last`, an RFC 3339 time), on a cluster the
//! trigger's `status.lastScheduleTime`, where the next leader finds it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{CRON_NAMESPACE, Dispatch, TriggerMetrics};
use crate::crd::{CatchUp, CronTrigger, parse_schedule};
use crate::host::Event;

/// A tick fired later than this after its time counts as missed.
pub const MISSED_AFTER: Duration = Duration::from_secs(2);
/// The longest sleep between looks at the wall clock, so that a clock jump
/// or a suspended machine is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(1);

/// Where a job keeps the time of the last tick it handled, so that a
/// restart (or a new leader) neither repeats ticks nor misses them unseen.
pub trait TickStore: Send + Sync + std::fmt::Debug {
    /// The last tick handled, if one was recorded.
    fn load(&self) -> Option<DateTime<Utc>>;
    /// Records `last`; a failure is logged, never fatal.
    fn save(&self, last: DateTime<Utc>);
}

/// A [`TickStore`] in one file holding an RFC 3339 time.
#[derive(Debug)]
struct FileTicks {
    trigger: String,
    file: PathBuf,
}

impl TickStore for FileTicks {
    fn load(&self) -> Option<DateTime<Utc>> {
        let text = std::fs::read_to_string(&self.file).ok()?;
        DateTime::parse_from_rfc3339(text.trim())
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    fn save(&self, last: DateTime<Utc>) {
        let file = &self.file;
        let written = file
            .parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|()| {
                let tmp = file.with_extension("tmp");
                std::fs::write(&tmp, last.to_rfc3339())?;
                std::fs::rename(&tmp, file)
            });
        if let Err(err) = written {
            tracing::warn!(trigger = %self.trigger, "cannot record the last cron tick in {}: {err}", file.display());
        }
    }
}

/// A validated cron trigger, ready to run.
#[derive(Clone, Debug)]
pub struct CronJob {
    name: String,
    function: String,
    schedule: croner::Cron,
    data: Bytes,
    content_type: String,
    catch_up: CatchUp,
    ticks: Option<Arc<dyn TickStore>>,
}

impl CronJob {
    /// Prepares `trigger`; `state_dir` keeps the last tick across restarts
    /// (without it, ticks missed before a start are not caught up).
    pub fn new(trigger: &CronTrigger, state_dir: Option<&Path>) -> Result<Self, String> {
        trigger.validate().map_err(|e| e.to_string())?;
        let spec = &trigger.spec;
        let schedule = parse_schedule(&spec.schedule)?;
        let (data, default_type) = match &spec.payload {
            None => (Bytes::new(), "text/plain"),
            Some(serde_json::Value::String(text)) => (Bytes::from(text.clone()), "text/plain"),
            Some(value) => (
                Bytes::from(serde_json::to_vec(value).map_err(|e| e.to_string())?),
                "application/json",
            ),
        };
        Ok(Self {
            name: trigger.name().to_owned(),
            function: spec.function.clone(),
            schedule,
            data,
            content_type: spec
                .content_type
                .clone()
                .unwrap_or_else(|| default_type.to_owned()),
            catch_up: spec.catch_up,
            ticks: state_dir.map(|d| {
                Arc::new(FileTicks {
                    trigger: trigger.name().to_owned(),
                    file: d.join("cron").join(format!("{}.last", trigger.name())),
                }) as Arc<dyn TickStore>
            }),
        })
    }

    /// Keeps the last tick in `ticks` instead of a state file.
    pub fn keep_ticks_in(mut self, ticks: Arc<dyn TickStore>) -> Self {
        self.ticks = Some(ticks);
        self
    }

    /// The event for the tick at `time`.
    pub fn event(&self, time: DateTime<Utc>) -> Event {
        let mut event = Event::new(self.data.clone(), &self.content_type, CRON_NAMESPACE);
        event.time = time.into();
        event.attributes = vec![
            ("trigger".to_owned(), self.name.clone()),
            ("schedule".to_owned(), self.schedule.pattern.to_string()),
        ];
        event
    }

    /// What to fire when the clock reads `now` and the last tick handled
    /// was `last`: the tick to fire, if any, and whether ticks were missed.
    pub fn due(&self, last: DateTime<Utc>, now: DateTime<Utc>) -> Due {
        let Ok(latest) = self.schedule.find_previous_occurrence(&now, true) else {
            return Due::Nothing;
        };
        if latest <= last {
            return Due::Nothing;
        }
        let first = self
            .schedule
            .find_next_occurrence(&last, false)
            .unwrap_or(latest);
        let late = (now - latest).to_std().unwrap_or_default();
        if first >= latest && late <= MISSED_AFTER {
            return Due::OnTime(latest);
        }
        match self.catch_up {
            CatchUp::Once => Due::CatchUp(latest),
            CatchUp::Skip => Due::Skip(latest),
        }
    }

    fn load_last(&self) -> Option<DateTime<Utc>> {
        self.ticks.as_ref()?.load()
    }

    fn save_last(&self, last: DateTime<Utc>) {
        if let Some(ticks) = &self.ticks {
            ticks.save(last);
        }
    }
}

/// The outcome of [`CronJob::due`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// No tick since the last one.
    Nothing,
    /// A tick to fire now.
    OnTime(DateTime<Utc>),
    /// Ticks were missed; fire the latest once.
    CatchUp(DateTime<Utc>),
    /// Ticks were missed; fire none of them.
    Skip(DateTime<Utc>),
}

/// Runs `job` until `stop` is cancelled, delivering through `dispatch`.
pub async fn run<D: Dispatch>(
    job: CronJob,
    dispatch: Arc<D>,
    metrics: TriggerMetrics,
    stop: CancellationToken,
) {
    let job = Arc::new(job);
    let mut last = match job.load_last() {
        Some(last) => last,
        None => {
            let now = Utc::now();
            job.save_last(now);
            now
        }
    };
    tracing::info!(trigger = %job.name, function = %job.function, schedule = %job.schedule.pattern, "cron trigger started");
    loop {
        let now = Utc::now();
        let fire = match job.due(last, now) {
            Due::Nothing => None,
            Due::OnTime(tick) => Some(tick),
            Due::CatchUp(tick) => {
                tracing::info!(trigger = %job.name, tick = %tick.to_rfc3339(), "ticks were missed; firing the latest once (catchUp: once)");
                Some(tick)
            }
            Due::Skip(tick) => {
                tracing::info!(trigger = %job.name, tick = %tick.to_rfc3339(), "ticks were missed; skipping them (catchUp: skip)");
                last = tick;
                job.save_last(tick);
                None
            }
        };
        if let Some(tick) = fire {
            last = tick;
            job.save_last(tick);
            let delay = (now - tick).to_std().unwrap_or_default();
            metrics.cron_delay(&job.name, delay);
            metrics.event(&job.name);
            tokio::spawn(fire_tick(
                job.clone(),
                dispatch.clone(),
                metrics.clone(),
                tick,
            ));
        }
        let Ok(next) = job.schedule.find_next_occurrence(&now.max(last), false) else {
            tracing::error!(trigger = %job.name, schedule = %job.schedule.pattern, "the schedule fires no more; the trigger stops");
            break;
        };
        let wait = (next - Utc::now())
            .to_std()
            .unwrap_or_default()
            .min(MAX_SLEEP)
            + Duration::from_millis(1);
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
    }
    tracing::info!(trigger = %job.name, "cron trigger stopped");
}

async fn fire_tick<D: Dispatch>(
    job: Arc<CronJob>,
    dispatch: Arc<D>,
    metrics: TriggerMetrics,
    tick: DateTime<Utc>,
) {
    let event = job.event(tick);
    let id = event.id.clone();
    let started = Instant::now();
    match dispatch.deliver(&job.function, event).await {
        Ok(response) => {
            metrics.delivery(&job.name, &job.function, true);
            tracing::info!(
                trigger = %job.name,
                function = %job.function,
                event_id = %id,
                tick = %tick.to_rfc3339(),
                status = response.status,
                elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
                "cron event delivered"
            );
        }
        Err(err) => {
            metrics.delivery(&job.name, &job.function, false);
            tracing::warn!(
                trigger = %job.name,
                function = %job.function,
                event_id = %id,
                tick = %tick.to_rfc3339(),
                "cron event failed: {err}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(schedule: &str, catch_up: &str) -> CronJob {
        let yaml = format!(
            "apiVersion: wasmless.io/v1alpha1\nkind: CronTrigger\nmetadata: {{name: t}}\nspec: {{function: f, schedule: '{schedule}', catchUp: {catch_up}, payload: {{n: 1}}}}\n"
        );
        let trigger: CronTrigger = serde_saphyr::from_str(&yaml).expect("valid yaml");
        CronJob::new(&trigger, None).expect("valid trigger")
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("valid time")
            .with_timezone(&Utc)
    }

    #[test]
    fn a_tick_just_passed_is_on_time() {
        let job = job("0 * * * *", "once");
        let due = job.due(at("2026-11-25T09:59:30Z"), at("2026-11-25T10:00:00.300Z"));
        assert_eq!(due, Due::OnTime(at("2026-11-25T10:00:00Z")));
        let nothing = job.due(at("2026-11-25T10:00:00Z"), at("2026-11-25T10:00:30Z"));
        assert_eq!(nothing, Due::Nothing);
    }

    #[test]
    fn missed_ticks_fire_at_most_once_or_not_at_all() {
        let last = at("2026-11-25T06:00:00Z");
        let now = at("2026-11-25T10:20:00Z");
        let latest = at("2026-11-25T10:00:00Z");
        assert_eq!(
            job("0 * * * *", "once").due(last, now),
            Due::CatchUp(latest)
        );
        assert_eq!(job("0 * * * *", "skip").due(last, now), Due::Skip(latest));
        // One tick, but long ago: missed too.
        let last = at("2026-11-25T09:30:00Z");
        assert_eq!(job("0 * * * *", "skip").due(last, now), Due::Skip(latest));
    }

    #[test]
    fn events_carry_the_tick_time_payload_and_namespace() {
        let job = job("*/5 * * * * *", "once");
        let event = job.event(at("2026-11-25T10:00:05Z"));
        assert_eq!(event.time_rfc3339(), "2026-11-25T10:00:05.000Z");
        assert_eq!(event.namespace, CRON_NAMESPACE);
        assert_eq!(event.event_type, "application/json");
        assert_eq!(&event.data[..], br#"{"n":1}"#);
        assert_ne!(event.id, job.event(at("2026-11-25T10:00:05Z")).id);
    }
}
