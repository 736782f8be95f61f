//! The handler contract on the host side: the event a function receives,
//! the context it runs in and the response it gives, whatever the source of
//! the event and the kind of function.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

/// Where an HTTP event came from (`event-namespace`).
pub const HTTP_NAMESPACE: &str = "http.wasmless.io";

/// One event for a function.
#[derive(Clone, Debug)]
pub struct Event {
    /// The payload.
    pub data: Bytes,
    /// A unique id.
    pub id: String,
    /// The content type of `data`.
    pub event_type: String,
    /// When the event happened.
    pub time: SystemTime,
    /// Where it came from (`http.wasmless.io`, ...).
    pub namespace: String,
    /// The HTTP request that carried it, if any.
    pub request: Option<HttpRequest>,
    /// Other source attributes (Kafka key, partition, offset ...).
    pub attributes: Vec<(String, String)>,
}

/// The HTTP request behind an event.
#[derive(Clone, Debug, Default)]
pub struct HttpRequest {
    /// Upper-case method.
    pub method: String,
    /// Path below the function's mount point, starting with `/`.
    pub path: String,
    /// Query string without `?`.
    pub query: String,
    /// Headers with lower-case names.
    pub headers: Vec<(String, String)>,
}

/// What a function is told about itself.
#[derive(Clone, Debug)]
pub struct Context {
    /// The function's name.
    pub function_name: String,
    /// Per-event time limit.
    pub timeout: Duration,
    /// The runtime name from the spec.
    pub runtime: String,
    /// Per-event memory limit in bytes.
    pub memory_limit: u64,
}

/// A function's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Bytes,
}

impl Event {
    /// A new event with a fresh id and the current time.
    pub fn new(data: Bytes, event_type: impl Into<String>, namespace: impl Into<String>) -> Self {
        Self {
            data,
            id: uuid::Uuid::new_v4().to_string(),
            event_type: event_type.into(),
            time: SystemTime::now(),
            namespace: namespace.into(),
            request: None,
            attributes: Vec::new(),
        }
    }

    /// `event-time` as RFC 3339 in UTC, ending in `Z`.
    pub fn time_rfc3339(&self) -> String {
        humantime::format_rfc3339_millis(self.time).to_string()
    }
}

impl Response {
    /// A response with a status and a plain-text body.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![(
                "content-type".to_owned(),
                "text/plain; charset=utf-8".to_owned(),
            )],
            body: Bytes::from(body.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_time_is_rfc3339_utc_with_z_and_ids_are_unique() {
        let a = Event::new(Bytes::new(), "text/plain", HTTP_NAMESPACE);
        let b = Event::new(Bytes::new(), "text/plain", HTTP_NAMESPACE);
        assert_ne!(a.id, b.id);
        let time = a.time_rfc3339();
        assert!(time.ends_with('Z'), "{time}");
        assert!(humantime::parse_rfc3339(&time).is_ok(), "{time}");
    }
}
