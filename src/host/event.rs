//! The handler contract on the host side: the event a function receives,
//! the context it runs in and the response it gives, whatever the source of
//! the event and the kind of function.

use std::time::{Duration, SystemTime};

use bytes::Bytes;

/// Where an HTTP event came from (`event-namespace`).
pub const HTTP_NAMESPACE: &str = "http.wasmless.io";
/// Where a Kafka event came from.
pub const KAFKA_NAMESPACE: &str = "kafka.wasmless.io";
/// The headers that carry an event's own fields when a dispatcher (cron,
/// Kafka, in a cluster) delivers it over HTTP; they are not the request's.
pub const EVENT_FIELD_HEADERS: [&str; 4] =
    ["event-id", "event-type", "event-time", "event-namespace"];

/// 9999-12-31T23:59:59.999Z in ms since the epoch: the last time RFC 3339
/// writes.
const LAST_RFC3339_MS: u64 = 253_402_300_799_999;

/// One Kafka message, as the consumer received it.
#[derive(Clone, Debug, Default)]
pub struct KafkaRecord<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Its timestamp in ms since the epoch, if it has one.
    pub timestamp_ms: Option<i64>,
    /// Its key.
    pub key: Option<&'a [u8]>,
    /// Its value.
    pub payload: Option<&'a [u8]>,
    /// Its headers, names as sent.
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
}

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

    /// The event of an HTTP request (`path` below the function's mount
    /// point, `data` its body). Event fields sent as headers (by a cron or
    /// Kafka dispatcher) are kept; others are made here.
    pub fn from_http(parts: &http::request::Parts, path: String, data: Bytes) -> Self {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let event_type = header("event-type")
            .or_else(|| header("content-type"))
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let mut event = Event::new(
            data,
            event_type,
            header("event-namespace").unwrap_or_else(|| HTTP_NAMESPACE.to_owned()),
        );
        if let Some(id) = header("event-id") {
            event.id = id;
        }
        if let Some(time) =
            header("event-time").and_then(|t| humantime::parse_rfc3339_weak(&t).ok())
        {
            event.time = time;
        }
        event.request = Some(HttpRequest {
            method: parts.method.as_str().to_owned(),
            path,
            query: parts.uri.query().unwrap_or_default().to_owned(),
            headers: parts
                .headers
                .iter()
                .filter(|(k, _)| !EVENT_FIELD_HEADERS.contains(&k.as_str()))
                .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                .collect(),
        });
        event
    }

    /// The event for one Kafka message: the payload as data, the
    /// `content-type` header as event type, and the message's coordinates,
    /// key and headers as attributes. The event-id is the message's
    /// coordinates, so a redelivered message has the same id.
    pub fn from_kafka(message: &KafkaRecord<'_>, trigger: &str) -> Self {
        let headers: Vec<(String, Option<&[u8]>)> = message
            .headers
            .iter()
            .map(|(key, value)| (key.to_ascii_lowercase(), *value))
            .collect();
        let content_type = headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .and_then(|(_, v)| v.and_then(|v| std::str::from_utf8(v).ok()))
            .unwrap_or("application/octet-stream")
            .to_owned();
        let data = Bytes::copy_from_slice(message.payload.unwrap_or_default());
        let mut event = Event::new(data, content_type, KAFKA_NAMESPACE);
        event.id = format!("{}-{}-{}", message.topic, message.partition, message.offset);
        // A timestamp past what RFC 3339 can write (year 9999) is not a
        // time: the event keeps the time it was received.
        if let Some(millis) = message.timestamp_ms
            && let Ok(millis) = u64::try_from(millis)
            && millis <= LAST_RFC3339_MS
        {
            event.time = std::time::UNIX_EPOCH + Duration::from_millis(millis);
        }
        let mut attributes = vec![
            ("trigger".to_owned(), trigger.to_owned()),
            ("topic".to_owned(), message.topic.to_owned()),
            ("partition".to_owned(), message.partition.to_string()),
            ("offset".to_owned(), message.offset.to_string()),
        ];
        if let Some(key) = message.key {
            match std::str::from_utf8(key) {
                Ok(key) => attributes.push(("key".to_owned(), key.to_owned())),
                Err(_) => {
                    use base64::Engine as _;
                    attributes.push((
                        "key-base64".to_owned(),
                        base64::engine::general_purpose::STANDARD.encode(key),
                    ));
                }
            }
        }
        for (key, value) in headers {
            let value = value.map(String::from_utf8_lossy).unwrap_or_default();
            attributes.push((format!("header.{key}"), value.into_owned()));
        }
        event.attributes = attributes;
        event
    }

    /// `event-time` as RFC 3339 in UTC, ending in `Z`. A time past year
    /// 9999 (which RFC 3339 cannot write) is written as the last it can.
    pub fn time_rfc3339(&self) -> String {
        use std::fmt::Write as _;
        let mut text = String::new();
        if write!(text, "{}", humantime::format_rfc3339_millis(self.time)).is_err() {
            text = "9999-12-31T23:59:59.999Z".to_owned();
        }
        text
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
    fn a_kafka_timestamp_past_year_9999_is_not_the_events_time() {
        let record = |ms| KafkaRecord {
            topic: "t",
            timestamp_ms: Some(ms),
            ..KafkaRecord::default()
        };
        let far = Event::from_kafka(&record(i64::MAX), "k");
        assert!(
            far.time_rfc3339().starts_with("20"),
            "{}",
            far.time_rfc3339()
        );
        let last = Event::from_kafka(&record(253_402_300_799_999), "k");
        assert_eq!(last.time_rfc3339(), "9999-12-31T23:59:59.999Z");
        let mut event = Event::new(Bytes::new(), "text/plain", HTTP_NAMESPACE);
        event.time = std::time::UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(event.time_rfc3339(), "9999-12-31T23:59:59.999Z");
    }

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
