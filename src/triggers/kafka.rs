//! The Kafka consumer of a `KafkaTrigger`: each message becomes an event for
//! the trigger's functions, delivered at least once.
//!
//! - Order: one task per partition handles that partition's messages one
//!   after the other; partitions run concurrently.
//! - Backpressure: at most `maxInFlight` messages are taken from Kafka and
//!   not yet done; the consumer stops polling until one is.
//! - At least once: a message's offset is stored only after every function
//!   accepted it, or after it was written to the dead-letter topic; the
//!   client commits stored offsets every second and on shutdown. A crash
//!   redelivers what was not committed, never skips it.
//! - Failures: a failed delivery is retried with exponential backoff
//!   (`retryBackoff` doubling up to `maxRetryBackoff`, `maxRetries` times),
//!   then the message goes to `deadLetterTopic`. Without one, it keeps being
//!   retried at the longest delay and its partition waits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{DeliveryError, Dispatch, TriggerMetrics};
use crate::crd::{KafkaTrigger, StartFrom, Target};
use crate::host::Event;

/// How often the client commits stored offsets.
const COMMIT_INTERVAL_MS: &str = "1000";
/// How often the client reports statistics (consumer lag).
const STATISTICS_INTERVAL_MS: &str = "2000";
/// How long shutdown waits for deliveries in progress.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A validated Kafka trigger, ready to run.
#[derive(Clone, Debug)]
pub struct KafkaJob {
    name: String,
    brokers: String,
    topics: Vec<String>,
    target: Target,
    group: String,
    start_from: StartFrom,
    max_retries: u32,
    backoff: Duration,
    max_backoff: Duration,
    dead_letter_topic: Option<String>,
    max_in_flight: usize,
    config: Vec<(String, String)>,
    /// `group.instance.id`: a static member of its group, which takes its
    /// partitions back at once when it restarts.
    instance: Option<String>,
}

/// The longest `group.instance.id` a broker takes.
const MAX_INSTANCE_ID: usize = 249;

/// This machine's stable name as a Kafka group member: a random id kept in
/// `state_dir/kafka-member`, made on first use, so that an `up` that
/// restarts on the same state folder rejoins its groups as the member it
/// was.
pub fn member_id(state_dir: &std::path::Path) -> std::io::Result<String> {
    let path = state_dir.join("kafka-member");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim();
        if !id.is_empty() {
            return Ok(id.to_owned());
        }
    }
    std::fs::create_dir_all(state_dir)?;
    let id = format!("wasmless-{}", uuid::Uuid::new_v4().simple());
    let temp = state_dir.join(format!(".kafka-member.{}", std::process::id()));
    std::fs::write(&temp, format!("{id}\n"))?;
    std::fs::rename(&temp, &path)?;
    Ok(id)
}

impl KafkaJob {
    /// Prepares `trigger`.
    pub fn new(trigger: &KafkaTrigger) -> Result<Self, String> {
        trigger.validate().map_err(|e| e.to_string())?;
        let spec = &trigger.spec;
        Ok(Self {
            name: trigger.name().to_owned(),
            brokers: spec.brokers().join(","),
            topics: spec.topics(),
            target: spec.target(),
            group: trigger.consumer_group(),
            start_from: spec.start_from,
            max_retries: spec.max_retries,
            backoff: spec.retry_backoff()?,
            max_backoff: spec.max_retry_backoff()?,
            dead_letter_topic: spec.dead_letter_topic.clone(),
            max_in_flight: spec.max_in_flight as usize,
            config: spec
                .config
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            instance: None,
        })
    }

    /// Joins the group as the static member `member` (see [`member_id`]),
    /// unless the trigger's `config` names its own `group.instance.id`.
    pub fn with_member(mut self, member: &str) -> Self {
        let id: String = format!("{member}.{}", self.group)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '_'
                }
            })
            .take(MAX_INSTANCE_ID)
            .collect();
        self.instance = Some(id);
        self
    }

    /// The delay before retry number `attempt` (from 1).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }

    fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", format!("wasmless-{}", self.name));
        for (key, value) in &self.config {
            config.set(key, value);
        }
        config
    }

    fn consumer_config(&self) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("group.id", &self.group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", COMMIT_INTERVAL_MS)
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
        if let Some(instance) = &self.instance {
            config.set("group.instance.id", instance);
        }
        config.set(
            "auto.offset.reset",
            match self.start_from {
                StartFrom::Earliest => "earliest",
                StartFrom::Latest => "latest",
            },
        );
        // The user's settings win, except those at-least-once relies on.
        for (key, value) in &self.config {
            if !matches!(
                key.as_str(),
                "enable.auto.offset.store" | "enable.auto.commit"
            ) {
                config.set(key, value);
            }
        }
        config
    }
}

/// Logs the client's errors and records consumer lag.
struct TriggerContext {
    trigger: String,
    metrics: TriggerMetrics,
}

impl ClientContext for TriggerContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(trigger = %self.trigger, facility = fac, "kafka: {message}")
            }
            L::Warning => {
                tracing::warn!(trigger = %self.trigger, facility = fac, "kafka: {message}")
            }
            _ => tracing::debug!(trigger = %self.trigger, facility = fac, "kafka: {message}"),
        }
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, stats) in &statistics.topics {
            for (partition, stats) in &stats.partitions {
                if *partition >= 0 && stats.consumer_lag >= 0 {
                    self.metrics
                        .lag(&self.trigger, topic, *partition, stats.consumer_lag);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.metrics.kafka_error(&self.trigger);
        tracing::warn!(trigger = %self.trigger, "kafka: {error}: {reason} (the client keeps retrying)");
    }
}

impl ConsumerContext for TriggerContext {
    fn post_rebalance(
        &self,
        _consumer: &rdkafka::consumer::BaseConsumer<Self>,
        rebalance: &Rebalance<'_>,
    ) {
        match rebalance {
            Rebalance::Assign(list) => {
                tracing::info!(trigger = %self.trigger, partitions = %describe(list), "partitions assigned")
            }
            Rebalance::Revoke(list) => {
                tracing::info!(trigger = %self.trigger, partitions = %describe(list), "partitions revoked")
            }
            Rebalance::Error(err) => {
                tracing::warn!(trigger = %self.trigger, "rebalance failed: {err}")
            }
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        offsets: &TopicPartitionList,
    ) {
        match result {
            Ok(()) => {
                tracing::debug!(trigger = %self.trigger, offsets = %describe(offsets), "offsets committed")
            }
            Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
            Err(err) => {
                tracing::warn!(trigger = %self.trigger, "committing offsets failed: {err} (retried at the next commit)")
            }
        }
    }
}

fn describe(list: &TopicPartitionList) -> String {
    list.elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => format!("{}/{}@{o}", e.topic(), e.partition()),
            _ => format!("{}/{}", e.topic(), e.partition()),
        })
        .collect::<Vec<_>>()
        .join(",")
}

type TriggerConsumer = StreamConsumer<TriggerContext>;

/// What every partition task shares.
struct Shared<D> {
    job: KafkaJob,
    dispatch: Arc<D>,
    consumer: Arc<TriggerConsumer>,
    producer: Option<FutureProducer>,
    metrics: TriggerMetrics,
    stop: CancellationToken,
    /// The next offset to commit, per partition, as stored.
    stored: Mutex<HashMap<(String, i32), i64>>,
}

/// How handling one message ended.
enum Handled {
    /// Accepted, or dead-lettered: its offset may be committed.
    Done,
    /// Shutdown came first: it will be delivered again.
    Abandoned,
}

/// Runs `job` until `stop` is cancelled. Returns an error only if the
/// client cannot be created (a bad setting); an unreachable broker is
/// logged and retried, never fatal.
pub async fn run<D: Dispatch>(
    job: KafkaJob,
    dispatch: Arc<D>,
    metrics: TriggerMetrics,
    stop: CancellationToken,
) -> Result<(), String> {
    let context = TriggerContext {
        trigger: job.name.clone(),
        metrics: metrics.clone(),
    };
    let consumer: TriggerConsumer = job
        .consumer_config()
        .create_with_context(context)
        .map_err(|e| format!("cannot create the Kafka consumer: {e}"))?;
    let topics: Vec<&str> = job.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|e| format!("cannot subscribe to {}: {e}", job.topics.join(",")))?;
    let producer = match &job.dead_letter_topic {
        Some(_) => Some(
            job.client_config()
                .set("message.timeout.ms", "30000")
                .create::<FutureProducer>()
                .map_err(|e| format!("cannot create the dead-letter producer: {e}"))?,
        ),
        None => {
            tracing::warn!(trigger = %job.name, "no deadLetterTopic: a message whose retries are exhausted is retried until it succeeds, and its partition waits");
            None
        }
    };
    tracing::info!(
        trigger = %job.name,
        topics = %job.topics.join(","),
        group = %job.group,
        target = %job.target,
        "Kafka trigger started"
    );
    let permits = Arc::new(Semaphore::new(job.max_in_flight));
    let shared = Arc::new(Shared {
        job,
        dispatch,
        consumer: Arc::new(consumer),
        producer,
        metrics,
        stop: stop.clone(),
        stored: Mutex::new(HashMap::new()),
    });
    let mut partitions: HashMap<(String, i32), mpsc::UnboundedSender<Work>> = HashMap::new();
    let mut tasks = JoinSet::new();
    loop {
        let permit = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let message = tokio::select! {
            biased;
            () = stop.cancelled() => break,
            message = shared.consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message.detach(),
            Err(err) => {
                shared.metrics.kafka_error(&shared.job.name);
                tracing::warn!(trigger = %shared.job.name, "consuming failed: {err} (retrying)");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        shared.metrics.event(&shared.job.name);
        let key = (message.topic().to_owned(), message.partition());
        let sender = partitions.entry(key).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tasks.spawn(partition_task(shared.clone(), rx));
            tx
        });
        if sender.send(Work { message, permit }).is_err() {
            // The partition's task has ended (shutting down); the message
            // was not stored and will be delivered again.
            break;
        }
    }
    drop(partitions);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(trigger = %shared.job.name, "deliveries still running after {DRAIN_TIMEOUT:?}; their messages will be delivered again");
        tasks.abort_all();
    }
    shared.commit_stored();
    tracing::info!(trigger = %shared.job.name, "Kafka trigger stopped");
    Ok(())
}

struct Work {
    message: OwnedMessage,
    permit: OwnedSemaphorePermit,
}

/// Handles one partition's messages in order.
async fn partition_task<D: Dispatch>(
    shared: Arc<Shared<D>>,
    mut rx: mpsc::UnboundedReceiver<Work>,
) {
    while let Some(Work { message, permit }) = rx.recv().await {
        if shared.stop.is_cancelled() {
            break;
        }
        match shared.handle(&message).await {
            Handled::Done => shared.store(&message),
            Handled::Abandoned => break,
        }
        drop(permit);
    }
}

impl<D: Dispatch> Shared<D> {
    /// Delivers one message to every target function, with retries, then
    /// to the dead-letter topic if some function never accepted it.
    async fn handle(&self, message: &OwnedMessage) -> Handled {
        let job = &self.job;
        let mut pending: Option<Vec<String>> = None;
        let mut attempt = 0u32;
        loop {
            let names = match pending.take() {
                Some(names) => names,
                None => self.dispatch.targets(&job.target),
            };
            let mut failures = Vec::new();
            if names.is_empty() {
                failures.push((
                    job.target.to_string(),
                    DeliveryError::NoTarget(job.target.clone()),
                ));
            }
            for name in &names {
                let started = Instant::now();
                match self.dispatch.deliver(name, event(message, &job.name)).await {
                    Ok(_) => {
                        self.metrics.delivery(&job.name, name, true);
                        tracing::debug!(trigger = %job.name, function = %name, topic = message.topic(), partition = message.partition(), offset = message.offset(), elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "message delivered");
                    }
                    Err(err) => {
                        self.metrics.delivery(&job.name, name, false);
                        failures.push((name.clone(), err));
                    }
                }
            }
            if failures.is_empty() {
                return Handled::Done;
            }
            attempt += 1;
            let exhausted = attempt > job.max_retries;
            if exhausted && let Some(topic) = &job.dead_letter_topic {
                for (function, err) in &failures {
                    match self
                        .dead_letter(topic, message, function, &err.to_string())
                        .await
                    {
                        Handled::Done => {}
                        Handled::Abandoned => return Handled::Abandoned,
                    }
                }
                return Handled::Done;
            }
            let delay = if exhausted {
                job.max_backoff
            } else {
                job.backoff(attempt)
            };
            for (function, err) in &failures {
                self.metrics.retry(&job.name, function);
                if exhausted {
                    tracing::error!(trigger = %job.name, function = %function, topic = message.topic(), partition = message.partition(), offset = message.offset(), "delivery failed after {} retries and there is no deadLetterTopic; retrying in {delay:?} (the partition waits): {err}", job.max_retries);
                } else {
                    tracing::warn!(trigger = %job.name, function = %function, topic = message.topic(), partition = message.partition(), offset = message.offset(), "delivery failed (attempt {attempt} of {}); retrying in {delay:?}: {err}", job.max_retries + 1);
                }
            }
            if !names.is_empty() {
                pending = Some(failures.into_iter().map(|(name, _)| name).collect());
            }
            tokio::select! {
                () = self.stop.cancelled() => return Handled::Abandoned,
                () = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Writes `message` to the dead-letter topic, retrying until the broker
    /// has it (or shutdown).
    async fn dead_letter(
        &self,
        topic: &str,
        message: &OwnedMessage,
        function: &str,
        error: &str,
    ) -> Handled {
        let job = &self.job;
        let Some(producer) = &self.producer else {
            return Handled::Abandoned;
        };
        let partition = message.partition().to_string();
        let offset = message.offset().to_string();
        let mut headers = OwnedHeaders::new();
        if let Some(original) = message.headers() {
            for header in original.iter() {
                headers = headers.insert(Header {
                    key: header.key,
                    value: header.value,
                });
            }
        }
        for (key, value) in [
            ("wasmless-trigger", job.name.as_str()),
            ("wasmless-function", function),
            ("wasmless-error", error),
            ("wasmless-topic", message.topic()),
            ("wasmless-partition", &partition),
            ("wasmless-offset", &offset),
        ] {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let payload = message.payload().unwrap_or_default();
        let mut attempt = 0;
        loop {
            let mut record = FutureRecord::<[u8], [u8]>::to(topic)
                .payload(payload)
                .headers(headers.clone());
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            let sent = tokio::select! {
                () = self.stop.cancelled() => return Handled::Abandoned,
                sent = producer.send(record, Duration::from_secs(10)) => sent,
            };
            match sent {
                Ok(_) => {
                    self.metrics.dead_letter(&job.name, function);
                    tracing::error!(trigger = %job.name, function, topic = message.topic(), partition = message.partition(), offset = message.offset(), dead_letter_topic = topic, "retries exhausted; message written to the dead-letter topic: {error}");
                    return Handled::Done;
                }
                Err((err, _)) => {
                    attempt += 1;
                    let delay = job.backoff(attempt);
                    tracing::warn!(trigger = %job.name, dead_letter_topic = topic, "writing to the dead-letter topic failed: {err}; retrying in {delay:?}");
                    tokio::select! {
                        () = self.stop.cancelled() => return Handled::Abandoned,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// Marks `message` done: its offset will be committed.
    fn store(&self, message: &OwnedMessage) {
        match self
            .consumer
            .store_offset(message.topic(), message.partition(), message.offset())
        {
            Ok(()) => {
                let mut stored = self.stored.lock().unwrap_or_else(|e| e.into_inner());
                stored.insert(
                    (message.topic().to_owned(), message.partition()),
                    message.offset() + 1,
                );
            }
            // The partition moved to another consumer in a rebalance; that
            // consumer delivers the message again.
            Err(err) => {
                tracing::debug!(trigger = %self.job.name, topic = message.topic(), partition = message.partition(), "offset not stored: {err}")
            }
        }
    }

    /// Commits what was stored, for the partitions still assigned.
    fn commit_stored(&self) {
        let assigned = match self.consumer.assignment() {
            Ok(assigned) => assigned,
            Err(err) => {
                tracing::warn!(trigger = %self.job.name, "cannot read the assignment to commit: {err}");
                return;
            }
        };
        let stored = self.stored.lock().unwrap_or_else(|e| e.into_inner());
        let mut list = TopicPartitionList::new();
        for element in assigned.elements() {
            if let Some(next) = stored.get(&(element.topic().to_owned(), element.partition())) {
                let added = list.add_partition_offset(
                    element.topic(),
                    element.partition(),
                    Offset::Offset(*next),
                );
                if let Err(err) = added {
                    tracing::warn!(trigger = %self.job.name, "cannot commit {}/{}: {err}", element.topic(), element.partition());
                }
            }
        }
        if list.count() == 0 {
            return;
        }
        match self.consumer.commit(&list, CommitMode::Sync) {
            Ok(()) => {
                tracing::info!(trigger = %self.job.name, offsets = %describe(&list), "offsets committed on shutdown")
            }
            Err(err) => {
                tracing::warn!(trigger = %self.job.name, "committing offsets on shutdown failed: {err}; uncommitted messages will be delivered again")
            }
        }
    }
}

/// The event for one Kafka message ([`Event::from_kafka`]).
pub fn event(message: &OwnedMessage, trigger: &str) -> Event {
    let headers: Vec<(&str, Option<&[u8]>)> = message
        .headers()
        .map(|h| h.iter().map(|h| (h.key, h.value)).collect())
        .unwrap_or_default();
    Event::from_kafka(
        &crate::host::KafkaRecord {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
            timestamp_ms: message.timestamp().to_millis(),
            key: message.key(),
            payload: message.payload(),
            headers,
        },
        trigger,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::Timestamp;

    fn job(extra: &str) -> KafkaJob {
        let yaml = format!(
            "apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata: {{name: orders}}\nspec: {{brokers: 'k:9092', topic: orders, function: f{extra}}}\n"
        );
        let trigger: KafkaTrigger = serde_saphyr::from_str(&yaml).expect("valid yaml");
        KafkaJob::new(&trigger).expect("valid trigger")
    }

    #[test]
    fn a_member_keeps_its_id_across_restarts_and_joins_as_a_static_member() {
        let dir = std::env::temp_dir().join(format!("wasmless-member-{}", std::process::id()));
        let first = member_id(&dir).expect("made");
        assert!(first.starts_with("wasmless-"), "{first}");
        assert_eq!(member_id(&dir).expect("read back"), first);
        let _ = std::fs::remove_dir_all(&dir);

        let config = job("").with_member("wasmless-abc").consumer_config();
        assert_eq!(
            config.get("group.instance.id"),
            Some("wasmless-abc.wasmless-orders")
        );
        assert_eq!(job("").consumer_config().get("group.instance.id"), None);
        // Only the characters a broker takes, and no more than it takes.
        let long = job("").with_member(&format!("a/b c{}", "x".repeat(300)));
        let id = long
            .consumer_config()
            .get("group.instance.id")
            .map(str::to_owned);
        let id = id.expect("set");
        assert!(id.starts_with("a_b_c"), "{id}");
        assert_eq!(id.len(), MAX_INSTANCE_ID);
        // The trigger's own setting wins.
        let own = job(", config: {group.instance.id: mine}").with_member("m");
        assert_eq!(own.consumer_config().get("group.instance.id"), Some("mine"));
    }

    #[test]
    fn backoff_doubles_up_to_the_limit() {
        let job = job(", retryBackoff: 100ms, maxRetryBackoff: 1s");
        let delays: Vec<u128> = (1..=6).map(|a| job.backoff(a).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(job.backoff(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn user_config_cannot_turn_off_manual_offset_storing() {
        let job = job(", config: {enable.auto.offset.store: 'true', fetch.min.bytes: '10'}");
        let config = job.consumer_config();
        assert_eq!(config.get("enable.auto.offset.store"), Some("false"));
        assert_eq!(config.get("fetch.min.bytes"), Some("10"));
        assert_eq!(config.get("group.id"), Some("wasmless-orders"));
        assert_eq!(config.get("auto.offset.reset"), Some("latest"));
    }

    #[test]
    fn messages_become_events_with_coordinates_key_and_headers() {
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "Content-Type",
                value: Some("application/json"),
            })
            .insert(Header {
                key: "trace",
                value: Some("abc"),
            });
        let message = OwnedMessage::new(
            Some(br#"{"a":1}"#.to_vec()),
            Some(b"order-7".to_vec()),
            "orders".to_owned(),
            Timestamp::CreateTime(1_764_064_800_000),
            3,
            42,
            Some(headers),
        );
        let event = event(&message, "t");
        assert_eq!(event.id, "orders-3-42");
        assert_eq!(event.event_type, "application/json");
        assert_eq!(event.namespace, crate::triggers::KAFKA_NAMESPACE);
        assert_eq!(event.time_rfc3339(), "2025-11-25T10:00:00.000Z");
        let get = |k: &str| {
            event
                .attributes
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("partition"), Some("3"));
        assert_eq!(get("offset"), Some("42"));
        assert_eq!(get("key"), Some("order-7"));
        assert_eq!(get("header.trace"), Some("abc"));
        let bare = OwnedMessage::new(None, None, "t".into(), Timestamp::NotAvailable, 0, 0, None);
        assert_eq!(
            super::event(&bare, "t").event_type,
            "application/octet-stream"
        );
    }
}
