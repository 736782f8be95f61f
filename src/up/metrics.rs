//! Prometheus metrics of `up`: calls, failures and durations per function,
//! and the triggers' series.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::triggers::TriggerMetrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabels {
    function: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    function: String,
    reason: &'static str,
}

/// The metrics, and the registry that encodes them.
pub struct Metrics {
    registry: Registry,
    /// The triggers' series, in the same registry.
    pub triggers: TriggerMetrics,
    calls: Family<FunctionLabels, Counter>,
    failures: Family<FailureLabels, Counter>,
    duration: Family<FunctionLabels, Histogram>,
    in_flight: Family<FunctionLabels, Gauge>,
    running: Family<FunctionLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("wasmless");
        let calls = Family::<FunctionLabels, Counter>::default();
        let failures = Family::<FailureLabels, Counter>::default();
        let duration = Family::<FunctionLabels, Histogram>::new_with_constructor(|| {
            // 10 µs to about 84 s.
            Histogram::new(exponential_buckets(0.00001, 4.0, 12))
        });
        registry.register(
            "function_calls",
            "Events handled, per function",
            calls.clone(),
        );
        registry.register(
            "function_failures",
            "Events that ended in an error, per function and reason",
            failures.clone(),
        );
        registry.register(
            "function_duration_seconds",
            "Time to handle an event, instantiation included",
            duration.clone(),
        );
        let in_flight = Family::<FunctionLabels, Gauge>::default();
        registry.register(
            "function_in_flight",
            "Events running or waiting for their turn now, per function (for KEDA)",
            in_flight.clone(),
        );
        let running = Family::<FunctionLabels, Gauge>::default();
        registry.register(
            "function_running",
            "Events running now (past their turn), per function",
            running.clone(),
        );
        let triggers = TriggerMetrics::default();
        triggers.register(&mut registry);
        Self {
            registry,
            triggers,
            calls,
            failures,
            duration,
            in_flight,
            running,
        }
    }
}

impl Metrics {
    /// Records one event of `function`; `failure` names why it failed.
    pub fn observe(&self, function: &str, elapsed: Duration, failure: Option<&'static str>) {
        let labels = FunctionLabels {
            function: function.to_owned(),
        };
        self.calls.get_or_create(&labels).inc();
        self.duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if let Some(reason) = failure {
            self.failures
                .get_or_create(&FailureLabels {
                    function: function.to_owned(),
                    reason,
                })
                .inc();
        }
    }

    /// Counts an event of `function` in flight until the guard is dropped.
    pub fn in_flight(&self, function: &str) -> InFlight {
        InFlight::count(&self.in_flight, function)
    }

    /// Counts an event of `function` running until the guard is dropped.
    pub fn running(&self, function: &str) -> InFlight {
        InFlight::count(&self.running, function)
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// An event in flight or running ([`Metrics::in_flight`],
/// [`Metrics::running`]).
pub struct InFlight(Gauge);

impl InFlight {
    /// Counts one more in `function`'s gauge of `family` until dropped.
    fn count(family: &Family<FunctionLabels, Gauge>, function: &str) -> InFlight {
        let gauge = family
            .get_or_create(&FunctionLabels {
                function: function.to_owned(),
            })
            .clone();
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}
