//! Delivery over HTTP: how a scheduler outside the function's pods (the
//! operator's cron scheduler in a cluster) hands events to a function's
//! Service. The event travels as a POST whose body is the data, with the
//! event fields as headers (`event-id`, `event-type`, `event-time`,
//! `event-namespace`), which `wasmless up` and `wasmless host` turn back
//! into the same event.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{DeliveryError, Dispatch, accepted};
use crate::crd::Target;
use crate::host::{Event, Response};

/// The largest response body read back (the rest is not needed).
const MAX_RESPONSE: usize = 1 << 20;

/// Delivers events by POSTing them to a URL per function.
pub struct HttpDispatch {
    template: String,
    timeout: Duration,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl HttpDispatch {
    /// `template` is the function's URL with `{function}` in place of its
    /// name, such as `http://{function}.default.svc.cluster.local:8080/`.
    /// `timeout` bounds each delivery.
    pub fn new(template: impl Into<String>, timeout: Duration) -> Self {
        Self {
            template: template.into(),
            timeout,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The URL events for `function` go to.
    pub fn url(&self, function: &str) -> String {
        self.template.replace("{function}", function)
    }

    async fn post(&self, url: &str, event: Event) -> Result<Response, String> {
        let request = http::Request::post(url)
            .header(http::header::CONTENT_TYPE, &event.event_type)
            .header("event-id", &event.id)
            .header("event-type", &event.event_type)
            .header("event-time", event.time_rfc3339())
            .header("event-namespace", &event.namespace)
            .body(Full::new(event.data))
            .map_err(|e| format!("invalid URL {url}: {e}"))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok(Response {
            status,
            headers: Vec::new(),
            body,
        })
    }
}

impl Dispatch for HttpDispatch {
    /// A name is its own target; selectors need the cluster's API and are
    /// not resolved here.
    fn targets(&self, target: &Target) -> Vec<String> {
        match target {
            Target::Name(name) => vec![name.clone()],
            Target::Labels(_) => Vec::new(),
        }
    }

    async fn deliver(&self, function: &str, event: Event) -> Result<Response, DeliveryError> {
        let url = self.url(function);
        match tokio::time::timeout(self.timeout, self.post(&url, event)).await {
            Ok(Ok(response)) => accepted(response),
            Ok(Err(message)) => Err(DeliveryError::Unreachable(message)),
            Err(_) => Err(DeliveryError::Unreachable(format!(
                "POST {url}: no answer within {:?}",
                self.timeout
            ))),
        }
    }
}
