//! Event triggers: cron schedules and Kafka topics turned into events for
//! functions. A trigger runs as a task that delivers through a
//! [`Dispatch`]: in `wasmless up` and in a function's pod that is the host
//! in the same process; a scheduler elsewhere can deliver over HTTP.

pub mod cron;
pub mod http;
pub mod kafka;
mod metrics;

use std::future::Future;

pub use metrics::TriggerMetrics;

use crate::crd::Target;
use crate::host::{Event, InvokeError, Response};

/// `event-namespace` of cron events.
pub const CRON_NAMESPACE: &str = "cron.wasmless.io";
/// `event-namespace` of Kafka events.
pub use crate::host::KAFKA_NAMESPACE;

/// Where triggers send their events.
pub trait Dispatch: Send + Sync + 'static {
    /// The names of the functions `target` selects right now.
    fn targets(&self, target: &Target) -> Vec<String>;

    /// Runs `function` on `event`. A response that is not a success (2xx)
    /// is an error: the function did not accept the event.
    fn deliver(
        &self,
        function: &str,
        event: Event,
    ) -> impl Future<Output = Result<Response, DeliveryError>> + Send;
}

/// Why an event was not accepted by a function.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// No function has that name.
    #[error("no function named `{0}`")]
    NotFound(String),
    /// No function matches the trigger's selector.
    #[error("no {0} is deployed")]
    NoTarget(Target),
    /// The function exists but failed to load.
    #[error("function `{0}` is not ready: {1}")]
    NotReady(String, String),
    /// The function trapped, timed out, ran out of memory ...
    #[error(transparent)]
    Invoke(#[from] InvokeError),
    /// The function's URL could not be reached (HTTP delivery).
    #[error("{0}")]
    Unreachable(String),
    /// The function answered with an error status.
    #[error("the function answered {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
}

impl DeliveryError {
    /// A short label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            DeliveryError::NotFound(_) | DeliveryError::NoTarget(_) => "not-found",
            DeliveryError::NotReady(..) => "not-ready",
            DeliveryError::Invoke(_) => "failed",
            DeliveryError::Unreachable(_) => "unreachable",
            DeliveryError::Status { .. } => "status",
        }
    }
}

/// Turns a non-2xx response into [`DeliveryError::Status`].
pub fn accepted(response: Response) -> Result<Response, DeliveryError> {
    if (200..300).contains(&response.status) {
        Ok(response)
    } else {
        let body = String::from_utf8_lossy(&response.body[..response.body.len().min(512)])
            .trim()
            .to_owned();
        Err(DeliveryError::Status {
            status: response.status,
            body,
        })
    }
}
