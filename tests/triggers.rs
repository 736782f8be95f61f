//! Cron and Kafka triggers through a real `wasmless up` process. Kafka tests
//! run against librdkafka's mock cluster: a real Kafka-protocol broker in
//! this process, on a loopback port, which `up` reaches over TCP with the
//! real librdkafka client.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Up, manifest_for_file, tempdir, wasm};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};

/// One event as the recorder guest logged it.
#[derive(Clone, Debug)]
struct Record(BTreeMap<String, String>);

impl Record {
    fn get(&self, key: &str) -> &str {
        self.0.get(key).map(String::as_str).unwrap_or_default()
    }
}

/// The events the recorder logged, in order.
fn records(up: &Up) -> Vec<Record> {
    up.log()
        .lines()
        .filter_map(|line| {
            let start = line.find("RECORD\t")?;
            let rest = &line[start + "RECORD\t".len()..];
            let rest = &rest[..rest.find("\tend")?];
            Some(Record(
                rest.split('\t')
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            ))
        })
        .collect()
}

/// Waits until `done` holds for the records, or panics with the log.
fn wait_for_records(up: &Up, limit: Duration, what: &str, done: impl Fn(&[Record]) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        if done(&records(up)) {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}; log:\n{}", up.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn recorder_manifest(dir: &Path, triggers: &str) -> PathBuf {
    let manifest = dir.join("functions.yaml");
    let text = format!(
        "{}{triggers}",
        manifest_for_file("recorder", &wasm("recorder"), "")
    );
    std::fs::write(&manifest, text).expect("writing the manifest");
    manifest
}

/// The value of a metric series whose line contains every `parts`.
fn metric(text: &str, name: &str, parts: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && parts.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .next()
}

fn kafka_trigger(name: &str, brokers: &str, topic: &str, extra: &str) -> String {
    format!(
        "apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata:\n  name: {name}\nspec:\n  brokers: \"{brokers}\"\n  topic: {topic}\n  function: recorder\n  startFrom: earliest\n  config:\n    session.timeout.ms: \"6000\"\n    heartbeat.interval.ms: \"500\"\n{extra}---\n"
    )
}

fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("message.timeout.ms", "20000")
        .create()
        .expect("a producer")
}

/// Publishes `(key, data)` messages and waits until the broker has them.
async fn publish(producer: &FutureProducer, topic: &str, messages: &[(String, String)]) {
    let mut pending = Vec::new();
    for (key, data) in messages {
        let headers = OwnedHeaders::new().insert(Header {
            key: "content-type",
            value: Some("text/plain"),
        });
        let record = FutureRecord::to(topic)
            .key(key.as_str())
            .payload(data.as_str())
            .headers(headers);
        pending.push(
            producer
                .send_result(record)
                .map_err(|(e, _)| e)
                .expect("queued"),
        );
    }
    for delivery in pending {
        delivery
            .await
            .expect("delivery reported")
            .map_err(|(e, _)| e)
            .expect("the broker has the message");
    }
}

/// The first message of `topic`, read by a fresh consumer group.
async fn first_message(brokers: &str, topic: &str) -> rdkafka::message::OwnedMessage {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("reader-{topic}"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("a consumer");
    consumer.subscribe(&[topic]).expect("subscribed");
    tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("a message within 30 s")
        .expect("a message")
        .detach()
}

fn headers_of(message: &rdkafka::message::OwnedMessage) -> HashMap<String, String> {
    message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .map(|h| {
                    (
                        h.key.to_owned(),
                        String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn messages(prefix: &str, range: std::ops::Range<usize>) -> Vec<(String, String)> {
    range
        .map(|i| (format!("key-{}", i % 7), format!("{prefix}-{i}")))
        .collect()
}

/// Every record's data, and how often each was seen.
fn seen(records: &[Record]) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for r in records {
        *seen.entry(r.get("data").to_owned()).or_default() += 1;
    }
    seen
}

/// Checks that within each partition the offsets of first deliveries rise.
fn assert_partition_order(records: &[Record]) {
    let mut last: HashMap<String, i64> = HashMap::new();
    let mut first_seen = HashSet::new();
    for r in records {
        if !first_seen.insert(r.get("id").to_owned()) {
            continue;
        }
        let offset: i64 = r.get("offset").parse().expect("an offset attribute");
        let previous = last.insert(r.get("partition").to_owned(), offset);
        if let Some(previous) = previous {
            assert!(
                offset > previous,
                "partition {} went from offset {previous} to {offset}",
                r.get("partition")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_delivers_every_message_in_partition_order() {
    let cluster = MockCluster::new(1).expect("a mock cluster");
    cluster.create_topic("orders", 4, 1).expect("a topic");
    let brokers = cluster.bootstrap_servers();
    let dir = tempdir();
    let manifest = recorder_manifest(&dir, &kafka_trigger("orders", &brokers, "orders", ""));
    let up = Up::start(&[&manifest]);
    const N: usize = 200;
    publish(&producer(&brokers), "orders", &messages("m", 0..N)).await;
    wait_for_records(&up, Duration::from_secs(60), "every message", |r| {
        seen(r).len() >= N
    });
    let records = records(&up);
    let seen = seen(&records);
    for i in 0..N {
        assert!(
            seen.contains_key(&format!("m-{i}")),
            "m-{i} was not delivered"
        );
    }
    assert_eq!(records.len(), N, "no duplicates without a restart");
    assert_partition_order(&records);
    let partitions: HashSet<&str> = records.iter().map(|r| r.get("partition")).collect();
    assert_eq!(partitions.len(), 4, "messages spread over every partition");
    let first = &records[0];
    assert_eq!(first.get("namespace"), "kafka.wasmless.io");
    assert_eq!(first.get("type"), "text/plain");
    assert_eq!(first.get("topic"), "orders");
    assert_eq!(first.get("trigger"), "orders");
    assert!(first.get("key").starts_with("key-"), "{first:?}");
    assert_eq!(first.get("header.content-type"), "text/plain");
    assert_eq!(
        first.get("id"),
        format!("orders-{}-{}", first.get("partition"), first.get("offset"))
    );
    assert!(first.get("time").ends_with('Z'), "{first:?}");

    // Metrics: every delivery counted, and the lag drops to 0 once the
    // offsets are committed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, text) = up.get("/metrics").await;
        let delivered = metric(
            &text,
            "wasmless_trigger_deliveries_total",
            &["trigger=\"orders\"", "outcome=\"success\""],
        );
        let lags: Vec<f64> = (0..4)
            .filter_map(|p| {
                metric(
                    &text,
                    "wasmless_kafka_consumer_lag",
                    &["trigger=\"orders\"", &format!("partition=\"{p}\"")],
                )
            })
            .collect();
        if delivered == Some(N as f64) && lags.len() == 4 && lags.iter().all(|l| *l == 0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never showed {N} deliveries and no lag:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (ok, out, _) = up.cli(&["trigger", "ls"]);
    assert!(
        ok && out.contains("KafkaTrigger/orders") && out.contains("running"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_failures_are_retried_then_dead_lettered_in_order() {
    let cluster = MockCluster::new(1).expect("a mock cluster");
    cluster.create_topic("jobs", 1, 1).expect("a topic");
    cluster.create_topic("jobs-dlq", 1, 1).expect("a topic");
    let brokers = cluster.bootstrap_servers();
    let dir = tempdir();
    let extra = "  maxRetries: 2\n  retryBackoff: 50ms\n  deadLetterTopic: jobs-dlq\n";
    let manifest = recorder_manifest(&dir, &kafka_trigger("jobs", &brokers, "jobs", extra));
    let up = Up::start(&[&manifest]);
    let batch = vec![
        ("a".to_owned(), "ok-1".to_owned()),
        ("b".to_owned(), "fail-2".to_owned()),
        ("c".to_owned(), "ok-3".to_owned()),
    ];
    publish(&producer(&brokers), "jobs", &batch).await;
    wait_for_records(&up, Duration::from_secs(60), "ok-3", |r| {
        r.iter().any(|r| r.get("data") == "ok-3")
    });
    let data: Vec<String> = records(&up)
        .iter()
        .map(|r| r.get("data").to_owned())
        .collect();
    assert_eq!(
        data,
        ["ok-1", "fail-2", "fail-2", "fail-2", "ok-3"],
        "fail-2 tried 1 + 2 times, and ok-3 waited for it"
    );

    let dead = first_message(&brokers, "jobs-dlq").await;
    assert_eq!(dead.payload(), Some(&b"fail-2"[..]));
    assert_eq!(dead.key(), Some(&b"b"[..]));
    let headers = headers_of(&dead);
    assert_eq!(headers["wasmless-function"], "recorder");
    assert_eq!(headers["wasmless-topic"], "jobs");
    assert_eq!(headers["wasmless-offset"], "1");
    assert_eq!(headers["content-type"], "text/plain");
    assert!(
        headers["wasmless-error"].contains("rejected: fail-2"),
        "{headers:?}"
    );
    let (_, text) = up.get("/metrics").await;
    assert_eq!(
        metric(
            &text,
            "wasmless_trigger_retries_total",
            &["trigger=\"jobs\""]
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "wasmless_trigger_dead_letters_total",
            &["trigger=\"jobs\""]
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_consumer_stopped_or_crashed_mid_stream_loses_nothing() {
    let cluster = MockCluster::new(1).expect("a mock cluster");
    cluster.create_topic("stream", 3, 1).expect("a topic");
    let brokers = cluster.bootstrap_servers();
    let dir = tempdir();
    const IN_FLIGHT: usize = 8;
    let extra = format!("  maxInFlight: {IN_FLIGHT}\n");
    let manifest = recorder_manifest(&dir, &kafka_trigger("stream", &brokers, "stream", &extra));
    const N: usize = 300;
    publish(&producer(&brokers), "stream", &messages("slow", 0..N)).await;

    // Stopped (SIGTERM) a third of the way: it finishes what it holds and
    // commits, so the next run repeats at most the in-flight window.
    let mut first = Up::start(&[&manifest]);
    wait_for_records(&first, Duration::from_secs(60), "a third", |r| {
        r.len() >= N / 3
    });
    assert!(
        first.terminate(Duration::from_secs(30)),
        "up stops on SIGTERM"
    );
    let first_records = records(&first);
    assert!(
        first.log().contains("offsets committed on shutdown"),
        "{}",
        first.log()
    );

    let mut second = Up::start(&[&manifest]);
    wait_for_records(&second, Duration::from_secs(60), "more", |r| {
        r.len() >= N / 3
    });
    second.crash();
    let second_records = records(&second);
    let repeated_after_stop = second_records
        .iter()
        .filter(|r| first_records.iter().any(|f| f.get("id") == r.get("id")))
        .count();
    assert!(
        repeated_after_stop <= IN_FLIGHT,
        "{repeated_after_stop} messages repeated after a clean stop (window {IN_FLIGHT})"
    );

    // After the crash, the third run delivers the rest (and repeats what
    // was not committed yet).
    let third = Up::start(&[&manifest]);
    let before: Vec<Record> = first_records
        .iter()
        .chain(&second_records)
        .cloned()
        .collect();
    wait_for_records(&third, Duration::from_secs(90), "every message", |r| {
        let all: HashMap<String, usize> = seen(&[before.as_slice(), r].concat());
        all.len() >= N
    });
    let all = [before.as_slice(), &records(&third)].concat();
    let counts = seen(&all);
    let lost: Vec<String> = (0..N)
        .map(|i| format!("slow-{i}"))
        .filter(|d| !counts.contains_key(d))
        .collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    let duplicates = all.len() - counts.len();
    // A crash repeats what was delivered since the last commit (every
    // second) plus what was in flight; with 20 ms per message over three
    // partitions that is well under half the stream.
    assert!(
        duplicates < N / 2,
        "{duplicates} duplicates after a crash is more than a commit interval's worth"
    );
    eprintln!("restart test: {N} messages, 0 lost, {duplicates} delivered twice");
    for run in [&first_records, &second_records, &records(&third)] {
        assert_partition_order(run);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_broker_going_away_and_coming_back() {
    let cluster = MockCluster::new(1).expect("a mock cluster");
    cluster.create_topic("events", 2, 1).expect("a topic");
    let brokers = cluster.bootstrap_servers();
    let dir = tempdir();
    // This trigger finds its function by label, as kubeless's did.
    let manifest = dir.join("functions.yaml");
    let trigger = kafka_trigger("events", &brokers, "events", "").replace(
        "  function: recorder\n",
        "  functionSelector:\n    matchLabels:\n      topic: events\n",
    );
    let text = format!(
        "apiVersion: wasmless.io/v1alpha1\nkind: Function\nmetadata:\n  name: recorder\n  labels:\n    topic: events\nspec:\n  file: {}\n---\n{trigger}",
        wasm("recorder").display()
    );
    std::fs::write(&manifest, text).expect("writing the manifest");
    let mut up = Up::start(&[&manifest]);
    let producer = producer(&brokers);
    publish(&producer, "events", &messages("before", 0..10)).await;
    wait_for_records(&up, Duration::from_secs(60), "the first batch", |r| {
        r.len() >= 10
    });

    let kafka_lines = |up: &Up| up.log().matches("kafka:").count();
    let before = kafka_lines(&up);
    cluster.broker_down(1).expect("broker down");
    let deadline = Instant::now() + Duration::from_secs(30);
    while kafka_lines(&up) == before {
        assert!(
            Instant::now() < deadline,
            "no log line about the broker:\n{}",
            up.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(up.is_running(), "up survives the broker going away");
    assert_eq!(up.get("/healthz").await.0, 200);
    cluster.broker_up(1).expect("broker up");

    publish(&producer, "events", &messages("after", 0..10)).await;
    wait_for_records(&up, Duration::from_secs(60), "the second batch", |r| {
        seen(r).keys().filter(|d| d.starts_with("after-")).count() >= 10
    });
    let counts = seen(&records(&up));
    for i in 0..10 {
        assert!(counts.contains_key(&format!("before-{i}")));
        assert!(counts.contains_key(&format!("after-{i}")));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn topic_cli_lists_and_publishes() {
    // The mock broker has no CreateTopics/DeleteTopics API, so `topic
    // create` and `topic delete` are checked only for their input errors.
    let cluster = MockCluster::new(1).expect("a mock cluster");
    cluster.create_topic("greetings", 3, 1).expect("a topic");
    let brokers = cluster.bootstrap_servers();
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wasmless"))
            .args(args)
            .args(["--brokers", &brokers])
            .output()
            .expect("running the CLI");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = cli(&["topic", "ls"]);
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("greetings") && l.trim_end().ends_with('3')),
        "{out}"
    );
    let (ok, out, err) = cli(&[
        "topic",
        "publish",
        "greetings",
        "--data",
        "{\"hello\":1}",
        "--key",
        "k1",
        "--content-type",
        "application/json",
        "--header",
        "trace=t-1",
    ]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("published to greetings/"), "{out}");

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "cli-check")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("a consumer");
    consumer.subscribe(&["greetings"]).expect("subscribed");
    let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .expect("the message within 30 s")
        .expect("a message");
    assert_eq!(message.payload(), Some(&b"{\"hello\":1}"[..]));
    assert_eq!(message.key(), Some(&b"k1"[..]));
    let headers: Vec<(String, Vec<u8>)> = message
        .headers()
        .expect("headers")
        .iter()
        .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
        .collect();
    assert!(
        headers.contains(&("trace".into(), b"t-1".to_vec())),
        "{headers:?}"
    );
    assert!(headers.contains(&("content-type".into(), b"application/json".to_vec())));

    let (ok, _, err) = cli(&["topic", "create", "bad topic"]);
    assert!(!ok && err.contains("not a valid topic name"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cron_fires_every_second_with_the_tick_as_event_time() {
    let dir = tempdir();
    let trigger = "apiVersion: wasmless.io/v1alpha1\nkind: CronTrigger\nmetadata:\n  name: every-second\nspec:\n  function: recorder\n  schedule: \"* * * * * *\"\n  payload: {\"job\": \"tick\"}\n---\n\
                   apiVersion: wasmless.io/v1alpha1\nkind: CronTrigger\nmetadata:\n  name: broken\nspec:\n  function: recorder\n  schedule: \"every minute\"\n";
    let manifest = recorder_manifest(&dir, trigger);
    let up = Up::start(&[&manifest]);
    let started = Instant::now();
    wait_for_records(&up, Duration::from_secs(20), "4 ticks", |r| r.len() >= 4);
    let elapsed = started.elapsed();
    assert!(
        up.log().contains("document 3: spec.schedule"),
        "a bad schedule is named by file, document and field:\n{}",
        up.log()
    );
    let records = records(&up);
    assert!(
        records.len() as f64 <= elapsed.as_secs_f64() + 2.0,
        "{} ticks in {elapsed:?}: more than one a second",
        records.len()
    );
    let mut times = Vec::new();
    let mut ids = HashSet::new();
    for r in &records {
        assert_eq!(r.get("namespace"), "cron.wasmless.io");
        assert_eq!(r.get("type"), "application/json");
        assert_eq!(r.get("data"), "{\"job\":\"tick\"}");
        assert_eq!(r.get("trigger"), "every-second");
        assert!(ids.insert(r.get("id").to_owned()), "ids are unique");
        let time = r.get("time");
        assert!(time.ends_with(".000Z"), "ticks are whole seconds: {time}");
        times.push(
            chrono::DateTime::parse_from_rfc3339(time)
                .expect("RFC 3339")
                .timestamp(),
        );
    }
    for pair in times.windows(2) {
        assert_eq!(pair[1] - pair[0], 1, "consecutive ticks: {times:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cron_missed_ticks_fire_once_or_are_skipped() {
    let dir = tempdir();
    let state = tempdir();
    // The scheduler last ran five minutes ago: five minute ticks were missed.
    let last = chrono::Utc::now() - chrono::Duration::minutes(5);
    std::fs::create_dir_all(state.join("cron")).expect("state dir");
    for name in ["catch-once", "catch-skip"] {
        std::fs::write(
            state.join("cron").join(format!("{name}.last")),
            last.to_rfc3339(),
        )
        .expect("state file");
    }
    let trigger = |name: &str, policy: &str| {
        format!(
            "apiVersion: wasmless.io/v1alpha1\nkind: CronTrigger\nmetadata:\n  name: {name}\nspec:\n  function: recorder\n  schedule: \"0 * * * * *\"\n  payload: {name}\n  catchUp: {policy}\n---\n"
        )
    };
    let manifest = recorder_manifest(
        &dir,
        &format!(
            "{}{}",
            trigger("catch-once", "once"),
            trigger("catch-skip", "skip")
        ),
    );
    let started = chrono::Utc::now();
    let state_arg = state.to_string_lossy().into_owned();
    let up = Up::start_with(&[&manifest], &["--state-dir", &state_arg]);
    wait_for_records(&up, Duration::from_secs(20), "the catch-up", |r| {
        r.iter().any(|r| r.get("data") == "catch-once")
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let missed = |name: &str| -> Vec<Record> {
        records(&up)
            .into_iter()
            .filter(|r| r.get("data") == name)
            .filter(|r| {
                chrono::DateTime::parse_from_rfc3339(r.get("time")).expect("RFC 3339") < started
            })
            .collect()
    };
    let once = missed("catch-once");
    assert_eq!(once.len(), 1, "one catch-up, no pile-up: {once:?}");
    let tick = chrono::DateTime::parse_from_rfc3339(once[0].get("time")).expect("RFC 3339");
    assert!(
        tick.timestamp() % 60 == 0,
        "the latest missed minute tick: {tick}"
    );
    assert!(
        started.timestamp() - tick.timestamp() <= 60,
        "the latest missed tick, not an older one: {tick}"
    );
    assert!(missed("catch-skip").is_empty(), "skip fires no missed tick");
    let recorded = std::fs::read_to_string(state.join("cron/catch-once.last")).expect("state");
    assert!(
        chrono::DateTime::parse_from_rfc3339(recorded.trim()).expect("RFC 3339") >= tick,
        "the state file records the tick: {recorded}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cron_over_http_carries_the_event_fields_as_headers() {
    use std::sync::Arc;
    use wasmless::triggers::{TriggerMetrics, cron, http::HttpDispatch};

    let dir = tempdir();
    let manifest = recorder_manifest(&dir, "");
    let up = Up::start(&[&manifest]);
    let trigger: wasmless::crd::CronTrigger = serde_saphyr::from_str(
        "apiVersion: wasmless.io/v1alpha1\nkind: CronTrigger\nmetadata: {name: remote}\nspec: {function: recorder, schedule: '* * * * * *', payload: hello}\n",
    )
    .expect("a trigger");
    let job = cron::CronJob::new(&trigger, None).expect("valid");
    let dispatch = Arc::new(Spy {
        inner: HttpDispatch::new(format!("{}/{{function}}", up.url), Duration::from_secs(10)),
        sent: Default::default(),
    });
    let stop = tokio_util::sync::CancellationToken::new();
    let scheduler = tokio::spawn(cron::run(
        job,
        dispatch.clone(),
        TriggerMetrics::default(),
        stop.clone(),
    ));
    wait_for_records(&up, Duration::from_secs(20), "2 ticks over HTTP", |r| {
        r.len() >= 2
    });
    stop.cancel();
    scheduler.await.expect("the scheduler stops");
    for r in records(&up) {
        assert_eq!(r.get("namespace"), "cron.wasmless.io");
        assert_eq!(r.get("type"), "text/plain");
        assert_eq!(r.get("data"), "hello");
        assert!(r.get("time").ends_with(".000Z"), "the tick's time: {r:?}");
        let sent = dispatch.sent.lock().expect("ids");
        assert!(
            sent.contains(&r.get("id").to_owned()),
            "the scheduler's event-id: {r:?}"
        );
    }
    // Unreachable targets are an error, not a hang.
    let nowhere = HttpDispatch::new("http://127.0.0.1:9/{function}", Duration::from_secs(5));
    let event = wasmless::host::Event::new(bytes::Bytes::new(), "text/plain", "cron.wasmless.io");
    use wasmless::triggers::Dispatch as _;
    let err = nowhere
        .deliver("f", event)
        .await
        .expect_err("nothing listens on port 9");
    assert_eq!(err.reason(), "unreachable", "{err}");
}

/// Remembers the ids of the events it passes on.
struct Spy {
    inner: wasmless::triggers::http::HttpDispatch,
    sent: std::sync::Mutex<Vec<String>>,
}

impl wasmless::triggers::Dispatch for Spy {
    fn targets(&self, target: &wasmless::crd::Target) -> Vec<String> {
        self.inner.targets(target)
    }

    async fn deliver(
        &self,
        function: &str,
        event: wasmless::host::Event,
    ) -> Result<wasmless::host::Response, wasmless::triggers::DeliveryError> {
        self.sent.lock().expect("ids").push(event.id.clone());
        self.inner.deliver(function, event).await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cluster_scheduler_fires_only_while_it_holds_the_lease() {
    use kube::core::DeserializeGuard;
    use kube::runtime::{reflector, watcher};
    use wasmless::crd::CronTriggerResource;
    use wasmless::operator::scheduler::{SchedulerConfig, run};
    use wasmless::triggers::TriggerMetrics;

    let dir = tempdir();
    let manifest = recorder_manifest(&dir, "");
    let up = Up::start(&[&manifest]);
    // The operator's view of the cluster: one CronTrigger in namespace
    // `team`, as its reflector holds it.
    let (store, mut writer) = reflector::store::<DeserializeGuard<CronTriggerResource>>();
    let mut trigger: CronTriggerResource = serde_saphyr::from_str(
        "apiVersion: wasmless.io/v1alpha1\nkind: CronTrigger\nmetadata: {name: beat, namespace: team}\nspec: {function: recorder, schedule: '* * * * * *', payload: beat}\n",
    )
    .expect("a trigger");
    writer.apply_watcher_event(&watcher::Event::Apply(DeserializeGuard(
        Ok(trigger.clone()),
    )));
    let (lease, leader) = tokio::sync::watch::channel(false);
    let stop = tokio_util::sync::CancellationToken::new();
    let scheduler = tokio::spawn(run(
        store,
        leader,
        SchedulerConfig {
            // Stands in for http://{function}.{namespace}.svc...: the
            // namespace must have been filled in for the path to exist.
            url_template: format!("{}/{{function}}?ns={{namespace}}", up.url),
            ticks: wasmless::operator::scheduler::Ticks::Folder(tempdir()),
        },
        TriggerMetrics::default(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(records(&up).len(), 0, "a standby replica fires nothing");

    lease.send(true).expect("the scheduler listens");
    wait_for_records(&up, Duration::from_secs(20), "ticks from the leader", |r| {
        r.len() >= 2
    });
    assert!(records(&up).iter().all(|r| r.get("data") == "beat"));

    // A changed spec restarts the job with the new payload.
    trigger.spec.payload = Some(serde_json::json!("changed"));
    writer.apply_watcher_event(&watcher::Event::Apply(DeserializeGuard(
        Ok(trigger.clone()),
    )));
    wait_for_records(
        &up,
        Duration::from_secs(20),
        "ticks with the new payload",
        |r| r.iter().any(|r| r.get("data") == "changed"),
    );

    // Losing the lease stops the ticks within a second.
    lease.send(false).expect("the scheduler listens");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after_loss = records(&up).len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(records(&up).len(), after_loss, "no ticks without the lease");

    // A dropped lease manager counts as a lost lease.
    lease.send(true).expect("the scheduler listens");
    wait_for_records(&up, Duration::from_secs(20), "ticks again", |r| {
        r.len() > after_loss
    });
    drop(lease);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let after_drop = records(&up).len();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        records(&up).len(),
        after_drop,
        "no ticks once the lease is unmanaged"
    );
    stop.cancel();
    scheduler.await.expect("the scheduler stops");
}

/// An Apache Kafka broker of tests/kafka/broker.sh on loopback (SASL_SSL
/// with PLAIN, and PLAINTEXT), stopped when dropped.
struct KafkaBroker {
    pid: String,
    sasl_ssl: String,
    plaintext: String,
    ca: String,
}

impl KafkaBroker {
    fn start() -> KafkaBroker {
        let dir = tempdir();
        let out = std::process::Command::new("bash")
            .arg(common::root().join("tests/kafka/broker.sh"))
            .arg(&dir)
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("running tests/kafka/broker.sh");
        assert!(out.status.success(), "tests/kafka/broker.sh failed");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")))
                .unwrap_or_else(|| panic!("broker.sh printed no {key}=: {text}"))
                .to_owned()
        };
        KafkaBroker {
            pid: field("pid"),
            sasl_ssl: field("sasl_ssl"),
            plaintext: field("plaintext"),
            ca: field("ca"),
        }
    }

    /// librdkafka properties for its SASL_SSL listener as `user`.
    fn client_config(&self, user: &str, password: &str) -> Vec<(&'static str, String)> {
        vec![
            ("security.protocol", "SASL_SSL".to_owned()),
            ("sasl.mechanisms", "PLAIN".to_owned()),
            ("sasl.username", user.to_owned()),
            ("sasl.password", password.to_owned()),
            ("ssl.ca.location", self.ca.clone()),
        ]
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").arg(&self.pid).status();
        for _ in 0..100 {
            let alive = std::process::Command::new("kill")
                .args(["-0", &self.pid])
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !alive {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &self.pid])
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_over_sasl_ssl_delivers_and_a_wrong_password_is_reported() {
    let broker = KafkaBroker::start();
    // The test's own client speaks TLS and SASL too (the same librdkafka).
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &broker.sasl_ssl)
        .set("message.timeout.ms", "30000");
    for (key, value) in broker.client_config("alice", "alice-secret") {
        config.set(key, value);
    }
    let producer: FutureProducer = config.create().expect("a SASL_SSL producer");
    const N: usize = 40;
    publish(&producer, "secure", &messages("s", 0..N)).await;

    let yaml_config = |user: &str, password: &str| {
        broker
            .client_config(user, password)
            .iter()
            .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
            .collect::<String>()
    };
    let dir = tempdir();
    let manifest = recorder_manifest(
        &dir,
        &format!(
            "{}{}",
            kafka_trigger(
                "secure",
                &broker.sasl_ssl,
                "secure",
                &yaml_config("alice", "alice-secret")
            ),
            kafka_trigger(
                "refused",
                &broker.sasl_ssl,
                "secure",
                &yaml_config("alice", "not-her-password")
            ),
        ),
    );
    let up = Up::start(&[&manifest]);
    wait_for_records(
        &up,
        Duration::from_secs(90),
        "every message over SASL_SSL",
        |r| seen(r).len() >= N,
    );
    let records = records(&up);
    assert!(
        records.iter().all(|r| r.get("trigger") == "secure"),
        "only the trigger with the right password delivers"
    );
    for i in 0..N {
        assert!(
            seen(&records).contains_key(&format!("s-{i}")),
            "s-{i} missing"
        );
    }
    // The refused one says why, by name, and `up` goes on serving.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !up
        .log()
        .lines()
        .any(|l| l.contains("refused") && l.contains("Authentication failed"))
    {
        assert!(
            Instant::now() < deadline,
            "no authentication error for the refused trigger:\n{}",
            up.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _) = up.get("/healthz").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_up_takes_its_partitions_back_within_seconds_ten_times_running() {
    // An Apache Kafka broker, not the mock: the group coordinator's own
    // handling of a member that comes back is what is tested. The trigger
    // keeps the default session timeout (45 s), which a restarted dynamic
    // member would wait out.
    let broker = KafkaBroker::start();
    let brokers = broker.plaintext.clone();
    let dir = tempdir();
    let state = tempdir();
    let state_arg = state.to_str().expect("a UTF-8 path").to_owned();
    let trigger = format!(
        "apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata:\n  name: restarts\nspec:\n  brokers: \"{brokers}\"\n  topic: restarts\n  function: recorder\n  startFrom: earliest\n---\n"
    );
    let manifest = recorder_manifest(&dir, &trigger);
    let producer = producer(&brokers);
    const CYCLES: usize = 10;
    const BATCH: usize = 20;
    let mut published = HashSet::new();
    let mut delivered: Vec<Record> = Vec::new();
    let mut back_after = Vec::new();
    for cycle in 0..=CYCLES {
        let batch = messages(&format!("c{cycle}"), 0..BATCH);
        publish(&producer, "restarts", &batch).await;
        published.extend(batch.iter().map(|(_, data)| data.clone()));
        let started = Instant::now();
        let mut up = Up::start_with(&[&manifest], &["--state-dir", &state_arg]);
        // This cycle's batch, behind everything earlier in its partitions.
        let wanted: Vec<String> = batch.iter().map(|(_, d)| d.clone()).collect();
        wait_for_records(&up, Duration::from_secs(60), "the batch", |r| {
            let got = seen(r);
            wanted.iter().all(|d| got.contains_key(d))
        });
        back_after.push(started.elapsed());
        if cycle < CYCLES {
            // The batch's offsets are committed (every second); then it is
            // killed with more on its way: some of that is delivered, some
            // not committed yet, some not taken at all.
            std::thread::sleep(Duration::from_millis(1500));
            let more = messages(&format!("k{cycle}"), 0..BATCH);
            publish(&producer, "restarts", &more).await;
            published.extend(more.into_iter().map(|(_, data)| data));
            std::thread::sleep(Duration::from_millis(150));
            up.crash();
        }
        let run = records(&up);
        assert_partition_order(&run);
        delivered.extend(run);
    }
    let counts = seen(&delivered);
    let lost: Vec<&String> = published
        .iter()
        .filter(|d| !counts.contains_key(*d))
        .collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    let duplicates = delivered.len() - counts.len();
    // At most what was published after the last commit of each run.
    assert!(
        duplicates <= CYCLES * BATCH,
        "{duplicates} duplicates: more than was in flight at the kills"
    );
    let restarts = &back_after[1..];
    let slowest = restarts.iter().max().expect("restarts");
    eprintln!(
        "{CYCLES} SIGKILLs: {} messages, 0 lost, {duplicates} delivered twice; partitions back after each restart in {:?} at most",
        published.len(),
        slowest
    );
    assert!(
        *slowest < Duration::from_secs(10),
        "a restarted up waited {slowest:?} for its partitions: {restarts:?}"
    );
}

/// Found by the `kafka_event` fuzz target: a message whose timestamp is
/// past year 9999 (a producer sets it) used to panic the delivery when its
/// `event-time` was written. It is delivered with the time it was received,
/// and the messages after it too.
#[tokio::test(flavor = "multi_thread")]
async fn a_message_stamped_past_year_9999_is_delivered_with_the_time_it_came() {
    let cluster = MockCluster::new(1).expect("a mock cluster");
    cluster.create_topic("stamps", 1, 1).expect("a topic");
    let brokers = cluster.bootstrap_servers();
    let dir = tempdir();
    let manifest = recorder_manifest(&dir, &kafka_trigger("stamps", &brokers, "stamps", ""));
    let up = Up::start(&[&manifest]);
    let producer = producer(&brokers);
    let far = FutureRecord::to("stamps")
        .key("far")
        .payload("far-0")
        .timestamp(i64::MAX);
    producer
        .send(far, Duration::from_secs(20))
        .await
        .map_err(|(e, _)| e)
        .expect("the broker has the message");
    publish(&producer, "stamps", &messages("after", 0..3)).await;
    wait_for_records(&up, Duration::from_secs(60), "every message", |r| {
        seen(r).len() >= 4
    });
    let records = records(&up);
    let far = records
        .iter()
        .find(|r| r.get("data") == "far-0")
        .unwrap_or_else(|| panic!("far-0 delivered: {records:?}"));
    let time = far.get("time");
    assert!(time.starts_with("20") && time.ends_with('Z'), "{time}");
}
