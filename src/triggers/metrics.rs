//! Prometheus metrics of triggers: events, deliveries, retries,
//! dead letters, Kafka consumer lag and cron firing delay.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    trigger: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    trigger: String,
    function: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabels {
    trigger: String,
    function: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    trigger: String,
    topic: String,
    partition: String,
}

/// The trigger metrics; clones share the same series.
#[derive(Clone)]
pub struct TriggerMetrics {
    events: Family<TriggerLabels, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
    retries: Family<FunctionLabels, Counter>,
    dead_letters: Family<FunctionLabels, Counter>,
    kafka_errors: Family<TriggerLabels, Counter>,
    lag: Family<PartitionLabels, Gauge>,
    cron_delay: Family<TriggerLabels, Histogram>,
}

impl Default for TriggerMetrics {
    fn default() -> Self {
        Self {
            events: Family::default(),
            deliveries: Family::default(),
            retries: Family::default(),
            dead_letters: Family::default(),
            kafka_errors: Family::default(),
            lag: Family::default(),
            cron_delay: Family::new_with_constructor(|| {
                // 100 µs to about 26 s.
                Histogram::new(exponential_buckets(0.0001, 4.0, 10))
            }),
        }
    }
}

impl TriggerMetrics {
    /// Adds the series to `registry` (prefixed as the registry is).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "trigger_events",
            "Events a trigger produced: cron ticks fired, Kafka messages taken",
            self.events.clone(),
        );
        registry.register(
            "trigger_deliveries",
            "Delivery attempts of trigger events to functions, by outcome",
            self.deliveries.clone(),
        );
        registry.register(
            "trigger_retries",
            "Deliveries retried after a failure",
            self.retries.clone(),
        );
        registry.register(
            "trigger_dead_letters",
            "Kafka messages written to the dead-letter topic after their retries",
            self.dead_letters.clone(),
        );
        registry.register(
            "kafka_client_errors",
            "Errors reported by the Kafka client (broker down, ...)",
            self.kafka_errors.clone(),
        );
        registry.register(
            "kafka_consumer_lag",
            "Messages in a partition not yet committed by the trigger's group",
            self.lag.clone(),
        );
        registry.register(
            "cron_delay_seconds",
            "How late a cron tick was fired after its scheduled time",
            self.cron_delay.clone(),
        );
    }

    /// One more event from `trigger`.
    pub fn event(&self, trigger: &str) {
        self.events.get_or_create(&trigger_labels(trigger)).inc();
    }

    /// One delivery attempt and its outcome.
    pub fn delivery(&self, trigger: &str, function: &str, ok: bool) {
        self.deliveries
            .get_or_create(&DeliveryLabels {
                trigger: trigger.to_owned(),
                function: function.to_owned(),
                outcome: if ok { "success" } else { "failure" },
            })
            .inc();
    }

    /// One retry.
    pub fn retry(&self, trigger: &str, function: &str) {
        self.retries
            .get_or_create(&function_labels(trigger, function))
            .inc();
    }

    /// One message dead-lettered.
    pub fn dead_letter(&self, trigger: &str, function: &str) {
        self.dead_letters
            .get_or_create(&function_labels(trigger, function))
            .inc();
    }

    /// One error from the Kafka client.
    pub fn kafka_error(&self, trigger: &str) {
        self.kafka_errors
            .get_or_create(&trigger_labels(trigger))
            .inc();
    }

    /// The consumer lag of one partition.
    pub fn lag(&self, trigger: &str, topic: &str, partition: i32, lag: i64) {
        self.lag
            .get_or_create(&PartitionLabels {
                trigger: trigger.to_owned(),
                topic: topic.to_owned(),
                partition: partition.to_string(),
            })
            .set(lag);
    }

    /// How late a cron tick fired.
    pub fn cron_delay(&self, trigger: &str, delay: Duration) {
        self.cron_delay
            .get_or_create(&trigger_labels(trigger))
            .observe(delay.as_secs_f64());
    }
}

fn trigger_labels(trigger: &str) -> TriggerLabels {
    TriggerLabels {
        trigger: trigger.to_owned(),
    }
}

fn function_labels(trigger: &str, function: &str) -> FunctionLabels {
    FunctionLabels {
        trigger: trigger.to_owned(),
        function: function.to_owned(),
    }
}
