//! The trigger resources: `CronTrigger` (a function on a schedule) and
//! `KafkaTrigger` (a function on each message of Kafka topics).

use std::collections::BTreeMap;
use std::time::Duration;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::function::{API_VERSION, InvalidSpec, ObjectMeta, validate_resource_name};
use super::quantity::parse_duration;
use super::schema;
use super::status::TriggerStatus;

/// A function run on a schedule: `kind: CronTrigger`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronTrigger {
    /// Always `wasmless.io/v1alpha1`.
    pub api_version: String,
    /// Always `CronTrigger`.
    pub kind: String,
    /// The trigger's name.
    pub metadata: ObjectMeta,
    /// The schedule and the function.
    pub spec: CronTriggerSpec,
    /// Written by the platform; ignored when read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

// In a cluster this is the `spec` of the `CronTrigger` custom resource
// (`CronTriggerResource`).
/// What a cron trigger runs, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, CustomResource, JsonSchema)]
#[kube(
    group = "wasmless.io",
    version = "v1alpha1",
    kind = "CronTrigger",
    root = "CronTriggerResource",
    namespaced,
    status = "TriggerStatus",
    category = "wasmless",
    doc = "Runs a function on a schedule, one event per tick.",
    printcolumn(name = "Function", type_ = "string", json_path = ".spec.function"),
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(
        name = "Last Schedule",
        type_ = "date",
        json_path = ".status.lastScheduleTime"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CronTriggerSpec {
    /// The function to run (kubeless wrote `function-name`).
    #[serde(alias = "function-name")]
    pub function: String,
    /// Standard 5-field cron (`*/5 * * * *`), or 6 fields with seconds first
    /// (`*/10 * * * * *`), or an alias such as `@hourly`. Evaluated in UTC.
    pub schedule: String,
    /// The event's data: a string is sent as text, anything else as JSON.
    /// Without it the event is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::any_value")]
    pub payload: Option<serde_json::Value>,
    /// The event's type (content type); by default `text/plain` for a
    /// string payload and `application/json` for others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// What to do with ticks missed while no scheduler ran: `once` (the
    /// default) fires one catch-up event for the latest missed tick, `skip`
    /// fires none. Never more than one.
    #[serde(default)]
    pub catch_up: CatchUp,
}

/// The catch-up policy of a cron trigger.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Fire one event for the latest missed tick.
    #[default]
    Once,
    /// Fire nothing for missed ticks.
    Skip,
}

/// A function run on each message of Kafka topics: `kind: KafkaTrigger`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaTrigger {
    /// Always `wasmless.io/v1alpha1`.
    pub api_version: String,
    /// Always `KafkaTrigger`.
    pub kind: String,
    /// The trigger's name.
    pub metadata: ObjectMeta,
    /// The topics, the functions and the delivery settings.
    pub spec: KafkaTriggerSpec,
    /// Written by the platform; ignored when read back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
}

// In a cluster this is the `spec` of the `KafkaTrigger` custom resource
// (`KafkaTriggerResource`).
/// What a Kafka trigger consumes and where it delivers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, CustomResource, JsonSchema)]
#[kube(
    group = "wasmless.io",
    version = "v1alpha1",
    kind = "KafkaTrigger",
    root = "KafkaTriggerResource",
    namespaced,
    status = "TriggerStatus",
    category = "wasmless",
    doc = "Runs functions on each message of Kafka topics, at least once.",
    printcolumn(name = "Topic", type_ = "string", json_path = ".spec.topic"),
    printcolumn(name = "Function", type_ = "string", json_path = ".spec.function"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaTriggerSpec {
    /// Bootstrap brokers, `host:port`, as a list or comma-separated.
    #[schemars(schema_with = "schema::any_value")]
    pub brokers: Brokers,
    /// One topic (kubeless's field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Several topics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<String>,
    /// The function to deliver to, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Or every function whose labels match (kubeless's field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_selector: Option<LabelSelector>,
    /// The consumer group; by default `wasmless-<trigger name>`, shared by
    /// every replica so that partitions spread across them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer_group: Option<String>,
    /// Where a new consumer group starts: `latest` (the default) or
    /// `earliest`. A group that committed offsets resumes from them.
    #[serde(default)]
    pub start_from: StartFrom,
    /// How many times a failed delivery is retried before the message goes
    /// to the dead-letter topic. Default 5.
    #[serde(default = "default_max_retries")]
    #[schemars(range(min = 0, max = 1000))]
    pub max_retries: u32,
    /// The first retry's delay; each next retry doubles it. Default `1s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_backoff: Option<String>,
    /// The longest delay between retries. Default `60s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retry_backoff: Option<String>,
    /// Where a message goes when its retries are exhausted. Without it, the
    /// message keeps being retried at the longest delay and its partition
    /// waits: a message is never dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_topic: Option<String>,
    /// Messages taken from Kafka but not yet done, at most. Default 64.
    #[serde(default = "default_max_in_flight")]
    #[schemars(range(min = 1, max = 10000))]
    pub max_in_flight: u32,
    /// Extra librdkafka client properties (`security.protocol`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
}

/// Bootstrap brokers as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Brokers {
    /// `host:port,host:port`.
    Text(String),
    /// A list of `host:port`.
    List(Vec<String>),
    /// Anything else, kept so that reading a cluster's triggers never fails
    /// on one bad object; validation refuses it.
    Other(serde_json::Value),
}

/// Kubernetes label selector (`matchLabels` only).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Labels a function must all have.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

/// Where a new consumer group starts reading.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    /// Only messages published from now on.
    #[default]
    Latest,
    /// Every message still in the topic.
    Earliest,
}

/// The functions a trigger delivers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One function by name.
    Name(String),
    /// Every function carrying all these labels.
    Labels(BTreeMap<String, String>),
}

impl Target {
    /// Whether a function with this name and these labels is a target.
    pub fn matches(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Target::Name(wanted) => wanted == name,
            Target::Labels(wanted) => wanted.iter().all(|(k, v)| labels.get(k) == Some(v)),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Name(name) => write!(f, "function {name}"),
            Target::Labels(labels) => {
                let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "functions labelled {}", labels.join(","))
            }
        }
    }
}

fn default_max_retries() -> u32 {
    5
}

fn default_max_in_flight() -> u32 {
    64
}

/// The default first retry delay of Kafka deliveries.
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_secs(1);
/// The default longest retry delay of Kafka deliveries.
pub const DEFAULT_MAX_RETRY_BACKOFF: Duration = Duration::from_secs(60);

fn check_header(api_version: &str, kind: &str, expected: &str) -> Result<(), InvalidSpec> {
    if api_version != API_VERSION {
        return Err(InvalidSpec::new(
            "apiVersion",
            format!("`{api_version}` is not supported; use {API_VERSION}"),
        ));
    }
    if kind != expected {
        return Err(InvalidSpec::new(
            "kind",
            format!("expected {expected}, found `{kind}`"),
        ));
    }
    Ok(())
}

impl CronTrigger {
    /// Checks the header, the name, the function name and the schedule.
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        check_header(&self.api_version, &self.kind, "CronTrigger")?;
        validate_resource_name(&self.metadata.name)
            .map_err(|m| InvalidSpec::new("metadata.name", m))?;
        validate_resource_name(&self.spec.function)
            .map_err(|m| InvalidSpec::new("spec.function", m))?;
        let schedule = parse_schedule(&self.spec.schedule)
            .map_err(|m| InvalidSpec::new("spec.schedule", m))?;
        if schedule
            .find_next_occurrence(&chrono::Utc::now(), false)
            .is_err()
        {
            return Err(InvalidSpec::new(
                "spec.schedule",
                format!("`{}` never fires", self.spec.schedule),
            ));
        }
        Ok(())
    }

    /// The trigger's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }
}

/// Parses a cron schedule: 5 fields (minute first), 6 fields (seconds
/// first) or an `@` alias, with the usual POSIX meaning (0 and 7 are
/// Sunday; day of month and day of week match when either does).
pub fn parse_schedule(schedule: &str) -> Result<croner::Cron, String> {
    let fields = schedule.split_whitespace().count();
    if !schedule.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
        return Err(format!(
            "`{schedule}` has {fields} fields; use 5 (minute hour day month weekday) or 6 (second first)"
        ));
    }
    // A list with an empty item (`,`, `1,,2`, `5,`) is an empty set to the
    // parser when nothing else is in the field, and the search for its next
    // tick then runs for seconds to minutes: refuse it, naming the field.
    let names: &[&str] = if fields == 6 {
        &[
            "second",
            "minute",
            "hour",
            "day of month",
            "month",
            "day of week",
        ]
    } else {
        &["minute", "hour", "day of month", "month", "day of week"]
    };
    if !schedule.trim_start().starts_with('@') {
        for (field, name) in schedule.split_whitespace().zip(names) {
            if field.split(',').any(str::is_empty) {
                return Err(format!(
                    "`{schedule}`: the {name} field `{field}` has an empty item in its list"
                ));
            }
        }
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
        .parse(schedule)
        .map_err(|e| format!("`{schedule}` is not a valid cron schedule: {e}"))
}

impl KafkaTrigger {
    /// Checks the header, the name and every spec field.
    pub fn validate(&self) -> Result<(), InvalidSpec> {
        check_header(&self.api_version, &self.kind, "KafkaTrigger")?;
        validate_resource_name(&self.metadata.name)
            .map_err(|m| InvalidSpec::new("metadata.name", m))?;
        let spec = &self.spec;
        if let Brokers::Other(value) = &spec.brokers {
            return Err(InvalidSpec::new(
                "spec.brokers",
                format!("`{value}` is neither host:port text nor a list of them"),
            ));
        }
        if spec.brokers().is_empty() {
            return Err(InvalidSpec::new(
                "spec.brokers",
                "at least one broker (host:port) is required",
            ));
        }
        if let Some(bad) = spec.brokers().into_iter().find(|b| !b.contains(':')) {
            return Err(InvalidSpec::new(
                "spec.brokers",
                format!("`{bad}` is not host:port"),
            ));
        }
        if !(1..=10_000).contains(&spec.max_in_flight) {
            return Err(InvalidSpec::new(
                "spec.maxInFlight",
                format!("{} is not between 1 and 10000", spec.max_in_flight),
            ));
        }
        if spec.max_retries > 1000 {
            return Err(InvalidSpec::new(
                "spec.maxRetries",
                format!("{} is more than 1000", spec.max_retries),
            ));
        }
        if spec.topics().is_empty() {
            return Err(InvalidSpec::new(
                "spec.topics",
                "at least one topic is required (`topic` or `topics`)",
            ));
        }
        if let Some(bad) = spec.topics().into_iter().find(|t| !valid_topic(t)) {
            return Err(InvalidSpec::new(
                "spec.topics",
                format!("`{bad}` is not a valid Kafka topic name"),
            ));
        }
        match (&spec.function, &spec.function_selector) {
            (Some(_), Some(_)) => {
                return Err(InvalidSpec::new(
                    "spec.functionSelector",
                    "give either `function` or `functionSelector`, not both",
                ));
            }
            (None, None) => {
                return Err(InvalidSpec::new(
                    "spec.function",
                    "required (or `functionSelector` with `matchLabels`)",
                ));
            }
            (Some(name), None) => {
                validate_resource_name(name).map_err(|m| InvalidSpec::new("spec.function", m))?;
            }
            (None, Some(selector)) if selector.match_labels.is_empty() => {
                return Err(InvalidSpec::new(
                    "spec.functionSelector.matchLabels",
                    "at least one label is required",
                ));
            }
            (None, Some(_)) => {}
        }
        if let Some(topic) = &spec.dead_letter_topic {
            if !valid_topic(topic) {
                return Err(InvalidSpec::new(
                    "spec.deadLetterTopic",
                    format!("`{topic}` is not a valid Kafka topic name"),
                ));
            }
            if spec.topics().contains(topic) {
                return Err(InvalidSpec::new(
                    "spec.deadLetterTopic",
                    "must not be one of the consumed topics",
                ));
            }
        }
        spec.retry_backoff()
            .map_err(|m| InvalidSpec::new("spec.retryBackoff", m))?;
        spec.max_retry_backoff()
            .map_err(|m| InvalidSpec::new("spec.maxRetryBackoff", m))?;
        if spec.max_in_flight == 0 {
            return Err(InvalidSpec::new("spec.maxInFlight", "must be at least 1"));
        }
        Ok(())
    }

    /// The trigger's name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The consumer group: the spec's, or `wasmless-<name>`.
    pub fn consumer_group(&self) -> String {
        self.spec
            .consumer_group
            .clone()
            .unwrap_or_else(|| format!("wasmless-{}", self.metadata.name))
    }

    /// The consumer group that delivers to `function`: the trigger's own
    /// when it names its function; with a selector, one group for each
    /// selected function (`GROUP.FUNCTION`), so that every selected
    /// function sees every message. The hosts that run one function share
    /// its group and split the partitions.
    pub fn group_for(&self, function: &str) -> String {
        if self.spec.function.is_some() {
            self.consumer_group()
        } else {
            format!("{}.{function}", self.consumer_group())
        }
    }

    /// This trigger as it delivers to `function` alone, in that function's
    /// consumer group ([`group_for`](Self::group_for)).
    pub fn for_function(&self, function: &str) -> KafkaTrigger {
        let mut trigger = self.clone();
        trigger.spec.consumer_group = Some(self.group_for(function));
        trigger.spec.function = Some(function.to_owned());
        trigger.spec.function_selector = None;
        trigger.metadata.namespace = None;
        trigger.status = None;
        trigger
    }
}

impl KafkaTriggerSpec {
    /// The brokers, one per entry.
    pub fn brokers(&self) -> Vec<String> {
        let list: Vec<&str> = match &self.brokers {
            Brokers::Text(text) => text.split(',').collect(),
            Brokers::List(list) => list.iter().map(String::as_str).collect(),
            Brokers::Other(_) => Vec::new(),
        };
        list.into_iter()
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Every topic named by `topic` and `topics`.
    pub fn topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = self.topic.iter().chain(&self.topics).cloned().collect();
        topics.dedup();
        topics
    }

    /// The functions it delivers to.
    pub fn target(&self) -> Target {
        match (&self.function, &self.function_selector) {
            (Some(name), _) => Target::Name(name.clone()),
            (None, Some(selector)) => Target::Labels(selector.match_labels.clone()),
            (None, None) => Target::Labels(BTreeMap::new()),
        }
    }

    /// The first retry delay.
    pub fn retry_backoff(&self) -> Result<Duration, String> {
        parse_optional_duration(self.retry_backoff.as_deref(), DEFAULT_RETRY_BACKOFF)
    }

    /// The longest retry delay.
    pub fn max_retry_backoff(&self) -> Result<Duration, String> {
        parse_optional_duration(self.max_retry_backoff.as_deref(), DEFAULT_MAX_RETRY_BACKOFF)
    }
}

fn parse_optional_duration(text: Option<&str>, default: Duration) -> Result<Duration, String> {
    match text {
        None => Ok(default),
        Some(text) => parse_duration(text).map_err(|e| e.to_string()),
    }
}

/// Kafka's rule: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn valid_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= 249
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kafka(spec: &str) -> Result<KafkaTrigger, String> {
        let yaml = format!(
            "apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata:\n  name: orders\nspec:\n{spec}"
        );
        let trigger: KafkaTrigger = serde_saphyr::from_str(&yaml).map_err(|e| e.to_string())?;
        trigger.validate().map_err(|e| e.to_string())?;
        Ok(trigger)
    }

    fn cron(spec: &str) -> Result<CronTrigger, String> {
        let yaml = format!(
            "apiVersion: wasmless.io/v1alpha1\nkind: CronTrigger\nmetadata:\n  name: nightly\nspec:\n{spec}"
        );
        let trigger: CronTrigger = serde_saphyr::from_str(&yaml).map_err(|e| e.to_string())?;
        trigger.validate().map_err(|e| e.to_string())?;
        Ok(trigger)
    }

    #[test]
    fn kafka_defaults_and_kubeless_fields() {
        let trigger = kafka(
            "  brokers: a:9092, b:9092\n  topic: orders\n  functionSelector:\n    matchLabels:\n      topic: orders\n",
        )
        .expect("valid");
        assert_eq!(trigger.spec.brokers(), ["a:9092", "b:9092"]);
        assert_eq!(trigger.spec.topics(), ["orders"]);
        assert_eq!(trigger.consumer_group(), "wasmless-orders");
        assert_eq!(trigger.spec.start_from, StartFrom::Latest);
        assert_eq!(trigger.spec.max_retries, 5);
        assert_eq!(trigger.spec.max_in_flight, 64);
        assert_eq!(trigger.spec.retry_backoff(), Ok(DEFAULT_RETRY_BACKOFF));
        let target = trigger.spec.target();
        let labels = BTreeMap::from([("topic".to_owned(), "orders".to_owned())]);
        assert!(target.matches("anything", &labels));
        assert!(!target.matches("anything", &BTreeMap::new()));
    }

    #[test]
    fn kafka_errors_name_the_field() {
        let base = "  brokers: [\"k:9092\"]\n";
        let cases = [
            ("  topic: t\n  function: f\n", "spec.brokers"),
            (
                "  brokers: [\"k\"]\n  topic: t\n  function: f\n",
                "spec.brokers: `k` is not host:port",
            ),
            (
                "  brokers: 9092\n  topic: t\n  function: f\n",
                "spec.brokers: `9092` is neither host:port text nor a list",
            ),
            ("  function: f\n", "spec.topics"),
            ("  topic: \"bad topic\"\n  function: f\n", "spec.topics"),
            ("  topic: t\n", "spec.function: required"),
            (
                "  topic: t\n  function: f\n  functionSelector:\n    matchLabels: {a: b}\n",
                "spec.functionSelector",
            ),
            (
                "  topic: t\n  function: f\n  deadLetterTopic: t\n",
                "spec.deadLetterTopic",
            ),
            (
                "  topic: t\n  function: f\n  retryBackoff: soon\n",
                "spec.retryBackoff",
            ),
            (
                "  topic: t\n  function: f\n  maxInFlight: 0\n",
                "spec.maxInFlight",
            ),
            (
                "  topic: t\n  function: f\n  startFrom: middle\n",
                "startFrom",
            ),
            (
                "  topic: t\n  function: f\n  retries: 3\n",
                "unknown field `retries`",
            ),
        ];
        for (spec, expected) in cases {
            let spec = if spec.contains("brokers") {
                spec.to_owned()
            } else if expected == "spec.brokers" {
                format!("  brokers: \"\"\n{spec}")
            } else {
                format!("{base}{spec}")
            };
            let err = kafka(&spec).expect_err(&spec);
            assert!(err.contains(expected), "{spec}: {err}");
        }
    }

    #[test]
    fn cron_schedules_with_and_without_seconds() {
        let trigger = cron("  function-name: hello\n  schedule: \"*/5 * * * *\"\n").expect("valid");
        assert_eq!(trigger.spec.function, "hello");
        assert_eq!(trigger.spec.catch_up, CatchUp::Once);
        assert!(
            cron("  function: hello\n  schedule: \"*/2 * * * * *\"\n  catchUp: skip\n").is_ok()
        );
        assert!(cron("  function: hello\n  schedule: \"@hourly\"\n").is_ok());
        // Sunday is 0 (and 7), as in POSIX cron.
        let sunday = parse_schedule("0 12 * * 0").expect("valid");
        let from = chrono::DateTime::parse_from_rfc3339("2026-11-25T00:00:00Z")
            .expect("valid time")
            .with_timezone(&chrono::Utc);
        let next = sunday
            .find_next_occurrence(&from, false)
            .expect("a next Sunday");
        assert_eq!(next.to_rfc3339(), "2026-11-29T12:00:00+00:00");
    }

    #[test]
    fn cron_errors_name_the_field() {
        let err = cron("  function: hello\n  schedule: \"* * *\"\n").expect_err("3 fields");
        assert!(
            err.contains("spec.schedule") && err.contains("3 fields"),
            "{err}"
        );
        let err = cron("  function: hello\n  schedule: \"61 * * * *\"\n").expect_err("minute 61");
        assert!(err.contains("spec.schedule"), "{err}");
        let err = cron("  function: Hello\n  schedule: \"* * * * *\"\n").expect_err("bad name");
        assert!(err.contains("spec.function"), "{err}");
        let err = cron("  function: hello\n  schedule: \"0 0 30 2 *\"\n").expect_err("Feb 30");
        assert!(err.contains("never fires"), "{err}");
        // Found by the cron fuzz target: an empty list item made the search
        // for the next tick run for minutes.
        for schedule in [
            ", * * * *",
            "0 , * * *",
            ", 0 0 * * *",
            "0 0 * * 5,",
            "1,,2 * * * *",
        ] {
            let err = cron(&format!("  function: hello\n  schedule: \"{schedule}\"\n"))
                .expect_err(schedule);
            assert!(err.contains("has an empty item"), "{schedule}: {err}");
        }
        let err = cron("  schedule: \"* * * * *\"\n").expect_err("no function");
        assert!(err.contains("function"), "{err}");
    }
}
