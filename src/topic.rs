//! `wasmless topic`: Kafka administration for trigger users: create, delete
//! and list topics, and publish messages.

use std::time::Duration;

use anyhow::Context as _;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// How long an admin or publish request may take.
const TIMEOUT: Duration = Duration::from_secs(15);

fn config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", "wasmless-cli")
        .set("socket.connection.setup.timeout.ms", "10000");
    config
}

fn admin(brokers: &str) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    config(brokers)
        .create()
        .with_context(|| format!("connecting to {brokers}"))
}

fn options() -> AdminOptions {
    AdminOptions::new()
        .operation_timeout(Some(TIMEOUT))
        .request_timeout(Some(TIMEOUT))
}

/// Creates `name` with `partitions` partitions.
pub async fn create(
    brokers: &str,
    name: &str,
    partitions: i32,
    replication: i32,
) -> anyhow::Result<()> {
    if !crate::crd::valid_topic(name) {
        anyhow::bail!("`{name}` is not a valid topic name: use 1 to 249 of a-z A-Z 0-9 . _ -");
    }
    let admin = admin(brokers)?;
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replication));
    let results = admin
        .create_topics([&topic], &options())
        .await
        .with_context(|| format!("creating {name} on {brokers}"))?;
    for result in results {
        if let Err((topic, code)) = result {
            anyhow::bail!("creating {topic} failed: {code}");
        }
    }
    Ok(())
}

/// Deletes `name`.
pub async fn delete(brokers: &str, name: &str) -> anyhow::Result<()> {
    let admin = admin(brokers)?;
    let results = admin
        .delete_topics(&[name], &options())
        .await
        .with_context(|| format!("deleting {name} on {brokers}"))?;
    for result in results {
        if let Err((topic, code)) = result {
            anyhow::bail!("deleting {topic} failed: {code}");
        }
    }
    Ok(())
}

/// A topic and its partition count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicInfo {
    /// The name.
    pub name: String,
    /// How many partitions it has.
    pub partitions: usize,
}

/// The topics on the cluster, sorted, internal ones (`__...`) left out.
pub async fn list(brokers: &str) -> anyhow::Result<Vec<TopicInfo>> {
    let admin = admin(brokers)?;
    let metadata = tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(None, TIMEOUT))
        .await?
        .with_context(|| format!("listing topics on {brokers}"))?;
    let mut topics: Vec<TopicInfo> = metadata
        .topics()
        .iter()
        .filter(|t| !t.name().starts_with("__"))
        .map(|t| TopicInfo {
            name: t.name().to_owned(),
            partitions: t.partitions().len(),
        })
        .collect();
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(topics)
}

/// One message to publish.
#[derive(Clone, Debug, Default)]
pub struct Publish {
    /// The payload.
    pub data: Vec<u8>,
    /// The key, if any.
    pub key: Option<String>,
    /// Headers (a content type is one: `content-type`).
    pub headers: Vec<(String, String)>,
}

/// Publishes `messages` to `topic`, waiting until the broker has each; returns
/// the (partition, offset) of each.
pub async fn publish(
    brokers: &str,
    topic: &str,
    messages: &[Publish],
) -> anyhow::Result<Vec<(i32, i64)>> {
    let producer: FutureProducer = config(brokers)
        .set("message.timeout.ms", "15000")
        .create()
        .with_context(|| format!("connecting to {brokers}"))?;
    let mut placed = Vec::with_capacity(messages.len());
    for message in messages {
        let mut headers = OwnedHeaders::new();
        for (key, value) in &message.headers {
            headers = headers.insert(Header {
                key,
                value: Some(value),
            });
        }
        let mut record = FutureRecord::<str, [u8]>::to(topic)
            .payload(&message.data)
            .headers(headers);
        if let Some(key) = &message.key {
            record = record.key(key);
        }
        match producer.send(record, TIMEOUT).await {
            Ok(delivery) => placed.push((delivery.partition, delivery.offset)),
            Err((err, _)) => anyhow::bail!("publishing to {topic} on {brokers} failed: {err}"),
        }
    }
    Ok(placed)
}
