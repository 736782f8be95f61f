//! `wasmless topic`: Kafka topics, created, listed and published to.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::function::parse_env;

/// The `wasmless topic` verbs.
#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic.
    Create {
        /// The topic's name.
        name: String,
        /// How many partitions.
        #[arg(long, default_value_t = 1)]
        partitions: i32,
        /// How many replicas of each partition.
        #[arg(long, default_value_t = 1)]
        replication_factor: i32,
        /// Which Kafka.
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// Delete a topic.
    Delete {
        /// The topic's name.
        name: String,
        /// Which Kafka.
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// List the topics.
    #[command(visible_alias = "list")]
    Ls(KafkaArgs),
    /// Publish a message.
    Publish(PublishArgs),
}

/// Which Kafka to talk to.
#[derive(Debug, Args)]
pub struct KafkaArgs {
    /// Bootstrap brokers, host:port[,host:port].
    #[arg(long, default_value = "localhost:9092", env = "WASMLESS_KAFKA_BROKERS")]
    pub brokers: String,
}

/// Options of `wasmless topic publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The topic (or --topic, as kubeless took it).
    #[arg(required_unless_present = "topic_flag", conflicts_with = "topic_flag")]
    pub topic: Option<String>,
    /// The topic.
    #[arg(long = "topic", id = "topic_flag")]
    pub topic_flag: Option<String>,
    /// The message (default: read from --file, or stdin).
    #[arg(long, conflicts_with = "file")]
    pub data: Option<String>,
    /// A file holding the message.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The message key.
    #[arg(long)]
    pub key: Option<String>,
    /// The message's content type (sent as the `content-type` header).
    #[arg(long)]
    pub content_type: Option<String>,
    /// Other headers, NAME=VALUE; may be repeated.
    #[arg(long = "header", value_parser = parse_env)]
    pub headers: Vec<(String, String)>,
    /// Which Kafka.
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

pub(super) async fn run(verb: TopicCommand) -> anyhow::Result<()> {
    use crate::topic;
    match verb {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            kafka,
        } => {
            topic::create(&kafka.brokers, &name, partitions, replication_factor).await?;
            println!("created {name} ({partitions} partitions)");
        }
        TopicCommand::Delete { name, kafka } => {
            topic::delete(&kafka.brokers, &name).await?;
            println!("deleted {name}");
        }
        TopicCommand::Ls(kafka) => {
            println!("{:<40} PARTITIONS", "TOPIC");
            for t in topic::list(&kafka.brokers).await? {
                println!("{:<40} {}", t.name, t.partitions);
            }
        }
        TopicCommand::Publish(args) => {
            let data = match (args.data, &args.file) {
                (Some(data), _) => data.into_bytes(),
                (None, Some(file)) => {
                    std::fs::read(file).with_context(|| format!("reading {}", file.display()))?
                }
                (None, None) => {
                    use std::io::Read as _;
                    let mut data = Vec::new();
                    std::io::stdin().read_to_end(&mut data)?;
                    data
                }
            };
            let mut headers = args.headers;
            if let Some(content_type) = args.content_type {
                headers.push(("content-type".to_owned(), content_type));
            }
            let message = topic::Publish {
                data,
                key: args.key,
                headers,
            };
            let name = args
                .topic
                .or(args.topic_flag)
                .expect("clap requires one of them");
            let placed = topic::publish(&args.kafka.brokers, &name, &[message]).await?;
            for (partition, offset) in placed {
                println!("published to {name}/{partition} at offset {offset}");
            }
        }
    }
    Ok(())
}
