//! Trigger throughput and timing, side by side in one run:
//!
//! - Kafka: messages per second from one topic (4 partitions) on
//!   librdkafka's mock broker, consumed by (a) a bare rdkafka consumer that
//!   only receives, (b) the KafkaTrigger consumer delivering to a dispatcher
//!   that does nothing (the trigger's own cost: ordering, backpressure,
//!   offset storing), and (c) the KafkaTrigger delivering each message to a
//!   wasm function (`examples/wasm/hello.wasm`, a fresh instance per
//!   message), and (d) the KafkaTrigger delivering `SOURCE_MESSAGES` to the
//!   Python and JavaScript hello examples (a fresh instance each, as `up`
//!   runs them; and with `spec.instanceReuse: 100`). Each is timed from its first message to its last, so group
//!   joins do not count, and each runs `ROUNDS` times, interleaved; the
//!   median is reported with its ratio to the bare consumer.
//! - Cron: how late each tick of a every-second schedule is delivered.
//!
//! Needs the example modules: run `bash examples/build.sh` first.
//! Run with `cargo bench --bench triggers`; prints a markdown table.

#![allow(missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use wasmless::crd::{CronTrigger, KafkaTrigger, Target};
use wasmless::host::{Event, FunctionSettings, Host, HostConfig, LoadedFunction, Response};
use wasmless::triggers::{DeliveryError, Dispatch, TriggerMetrics, accepted, cron, kafka};

const MESSAGES: usize = 20_000;
const PARTITIONS: i32 = 4;
const ROUNDS: usize = 3;
const CRON_TICKS: usize = 10;
/// Messages for the source functions (slower per event).
const SOURCE_MESSAGES: usize = 3_000;
/// Events per instance for the rows with `spec.instanceReuse`.
const REUSE: u32 = 100;

/// Counts deliveries; runs a wasm function on each if it has one.
struct Counter {
    function: Option<Arc<LoadedFunction>>,
    count: AtomicUsize,
    first: std::sync::Mutex<Option<Instant>>,
    done: Notify,
    target: usize,
}

impl Counter {
    fn new(function: Option<Arc<LoadedFunction>>, target: usize) -> Self {
        Self {
            function,
            count: AtomicUsize::new(0),
            first: std::sync::Mutex::new(None),
            done: Notify::new(),
            target,
        }
    }
}

impl Dispatch for Counter {
    fn targets(&self, _target: &Target) -> Vec<String> {
        vec!["bench".to_owned()]
    }

    async fn deliver(&self, _function: &str, event: Event) -> Result<Response, DeliveryError> {
        let response = match &self.function {
            Some(function) => accepted(function.handle_event(event).await?)?,
            None => Response::text(200, ""),
        };
        self.first
            .lock()
            .expect("first")
            .get_or_insert_with(Instant::now);
        if self.count.fetch_add(1, Ordering::SeqCst) + 1 == self.target {
            self.done.notify_one();
        }
        Ok(response)
    }
}

fn hello() -> Arc<LoadedFunction> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/wasm/hello.wasm");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `bash examples/build.sh` first",
            path.display()
        )
    });
    let host = Host::new(HostConfig::default()).expect("engine");
    let settings = FunctionSettings {
        name: "bench".into(),
        runtime: "wasm".into(),
        timeout: Duration::from_secs(10),
        memory_limit: 64 << 20,
        env: Vec::new(),
        mounts: Vec::new(),
        outbound: Default::default(),
        events_per_instance: 1,
    };
    Arc::new(host.load(&bytes, settings).expect("hello loads"))
}

/// A source example on its runtime, loaded as `up` loads it (Python's
/// files compiled to bytecode first). `None` when the runtime is not built.
async fn source_hello(
    host: &Arc<Host>,
    file: &str,
    example: &str,
    runtime: &str,
    events_per_instance: u32,
) -> Option<(Arc<LoadedFunction>, PathBuf)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let Ok(wasm) = std::fs::read(root.join("runtimes/dist").join(file)) else {
        eprintln!("runtimes/dist/{file} is not built (bash examples/build.sh): row skipped");
        return None;
    };
    let code = std::env::temp_dir().join(format!(
        "wasmless-bench-kafka-{runtime}-{events_per_instance}-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&code).expect("code folder");
    let example = root.join("examples").join(example);
    let name = example.file_name().expect("a file");
    std::fs::copy(&example, code.join(name)).expect("the example");
    let mut settings = FunctionSettings {
        name: "bench".into(),
        runtime: runtime.into(),
        timeout: Duration::from_secs(10),
        memory_limit: 256 << 20,
        env: vec![
            ("MOD_NAME".into(), "hello".into()),
            ("FUNC_HANDLER".into(), "handler".into()),
        ],
        mounts: vec![wasmless::host::Mount {
            host: code.clone(),
            guest: "/kubeless".into(),
            writable: false,
        }],
        outbound: Default::default(),
        events_per_instance,
    };
    let bytecode = code.with_extension("bytecode");
    if runtime.starts_with("python") {
        wasmless::up::add_bytecode_folder(&mut settings, &bytecode, &code);
    }
    let function = Arc::new(
        host.load_optimized(&wasm, settings)
            .expect("the runtime loads"),
    );
    if let Some(compiled) = wasmless::up::Bytecode::new(&function) {
        compiled.run("bench").await;
    }
    Some((function, code))
}

async fn publish(brokers: &str, topic: &str, messages: usize) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .expect("producer");
    let mut pending = Vec::with_capacity(messages);
    for i in 0..messages {
        let key = (i % 64).to_string();
        let record = FutureRecord::to(topic).key(&key).payload("bench");
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
            .expect("reported")
            .map_err(|(e, _)| e)
            .expect("delivered");
    }
}

/// Messages per second of a bare consumer.
async fn bare(brokers: &str, topic: &str, group: &str) -> f64 {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut first = None;
    for _ in 0..MESSAGES {
        consumer.recv().await.expect("message");
        first.get_or_insert_with(Instant::now);
    }
    let first = first.expect("messages");
    (MESSAGES - 1) as f64 / first.elapsed().as_secs_f64()
}

/// Messages per second through a KafkaTrigger.
async fn trigger(
    brokers: &str,
    topic: &str,
    group: &str,
    function: Option<Arc<LoadedFunction>>,
    messages: usize,
) -> f64 {
    let trigger: KafkaTrigger = serde_saphyr::from_str(&format!(
        "apiVersion: wasmless.io/v1alpha1\nkind: KafkaTrigger\nmetadata: {{name: bench}}\nspec: {{brokers: '{brokers}', topic: {topic}, function: bench, consumerGroup: {group}, startFrom: earliest}}\n"
    ))
    .expect("trigger");
    let job = kafka::KafkaJob::new(&trigger).expect("valid");
    let counter = Arc::new(Counter::new(function, messages));
    let stop = CancellationToken::new();
    let running = tokio::spawn(kafka::run(
        job,
        counter.clone(),
        TriggerMetrics::default(),
        stop.clone(),
    ));
    counter.done.notified().await;
    let elapsed = counter
        .first
        .lock()
        .expect("first")
        .expect("messages")
        .elapsed();
    stop.cancel();
    running.await.expect("stops").expect("runs");
    (messages - 1) as f64 / elapsed.as_secs_f64()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn cron_skew() -> Vec<f64> {
    let trigger: CronTrigger = serde_saphyr::from_str(
        "apiVersion: wasmless.io/v1alpha1\nkind: CronTrigger\nmetadata: {name: skew}\nspec: {function: bench, schedule: '* * * * * *'}\n",
    )
    .expect("trigger");
    let job = cron::CronJob::new(&trigger, None).expect("valid");
    let recorder = Arc::new(Skew::default());
    let stop = CancellationToken::new();
    let running = tokio::spawn(cron::run(
        job,
        recorder.clone(),
        TriggerMetrics::default(),
        stop.clone(),
    ));
    while recorder.delays.lock().expect("delays").len() < CRON_TICKS {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    running.await.expect("stops");
    let mut delays = recorder.delays.lock().expect("delays").clone();
    delays.sort_by(f64::total_cmp);
    delays
}

#[derive(Default)]
struct Skew {
    delays: std::sync::Mutex<Vec<f64>>,
}

impl Dispatch for Skew {
    fn targets(&self, _target: &Target) -> Vec<String> {
        vec!["bench".to_owned()]
    }

    async fn deliver(&self, _function: &str, event: Event) -> Result<Response, DeliveryError> {
        let late = std::time::SystemTime::now()
            .duration_since(event.time)
            .unwrap_or_default();
        self.delays
            .lock()
            .expect("delays")
            .push(late.as_secs_f64() * 1e3);
        Ok(Response::text(200, ""))
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster
            .create_topic("bench", PARTITIONS, 1)
            .expect("topic");
        let brokers = cluster.bootstrap_servers();
        eprintln!("publishing {MESSAGES} messages to {PARTITIONS} partitions ...");
        publish(&brokers, "bench", MESSAGES).await;
        cluster
            .create_topic("source", PARTITIONS, 1)
            .expect("topic");
        publish(&brokers, "source", SOURCE_MESSAGES).await;
        let function = hello();
        let host = Host::new(HostConfig::default()).expect("engine");
        // Fresh instance per event (the default), and spec.instanceReuse: 100.
        let mut sources = Vec::new();
        for reuse in [1, REUSE] {
            for (label, file, example, runtime) in [
                ("Python", "python.wasm", "python-hello/hello.py", "python3.x"),
                ("JavaScript", "js.wasm", "js-hello/hello.js", "nodejs20"),
            ] {
                if let Some(loaded) = source_hello(&host, file, example, runtime, reuse).await {
                    // A busy Python function's own snapshot (what `up`
                    // gives it under load), fresh instance each.
                    if label == "Python" && reuse == 1 {
                        let (host, function) = (host.clone(), loaded.0.clone());
                        let wasm = std::fs::read(
                            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("runtimes/dist").join(file),
                        )
                        .expect("the runtime");
                        let snapshot = tokio::task::spawn_blocking(move || {
                            host.pre_initialize(&function, wasmless::runtimes::Language::Python, &wasm, false)
                        })
                        .await
                        .expect("snapshot task")
                        .expect("the Python hello is snapshotted");
                        let code = loaded.1.clone();
                        sources.push(("Python (snapshot)", reuse, (Arc::new(snapshot.0), code), Vec::new()));
                    }
                    sources.push((label, reuse, loaded, Vec::new()));
                }
            }
        }
        let (mut b, mut n, mut w) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            eprintln!("round {}/{ROUNDS} ...", round + 1);
            b.push(bare(&brokers, "bench", &format!("bare-{round}")).await);
            n.push(trigger(&brokers, "bench", &format!("noop-{round}"), None, MESSAGES).await);
            w.push(trigger(&brokers, "bench", &format!("wasm-{round}"), Some(function.clone()), MESSAGES).await);
            for (label, reuse, (f, _), rates) in &mut sources {
                let group = format!("{label}-{reuse}-{round}");
                rates.push(trigger(&brokers, "source", &group, Some(f.clone()), SOURCE_MESSAGES).await);
            }
        }
        let (b, n, w) = (median(b), median(n), median(w));
        println!("| Kafka consumer ({MESSAGES} messages, {PARTITIONS} partitions, mock broker) | messages/s (median of {ROUNDS}) | ratio to bare |");
        println!("|---|---:|---:|");
        println!("| bare rdkafka StreamConsumer (receive only) | {b:.0} | 1.00 |");
        println!("| KafkaTrigger, no-op dispatcher | {n:.0} | {:.2} |", n / b);
        println!("| KafkaTrigger, wasm function (hello, fresh instance each) | {w:.0} | {:.2} |", w / b);
        for (label, reuse, (_, code), rates) in sources {
            let r = median(rates);
            let how = if reuse == 1 {
                "fresh instance each".to_owned()
            } else {
                format!("instanceReuse {reuse}")
            };
            println!("| KafkaTrigger, {label} hello ({SOURCE_MESSAGES} messages, {how}) | {r:.0} | {:.4} |", r / b);
            let _ = std::fs::remove_dir_all(&code);
            let _ = std::fs::remove_dir_all(code.with_extension("bytecode"));
        }
        eprintln!("measuring cron firing delay over {CRON_TICKS} ticks ...");
        let delays = cron_skew().await;
        println!();
        println!("| Cron (every second, {CRON_TICKS} ticks) | ms |");
        println!("|---|---:|");
        println!("| firing delay p50 | {:.2} |", delays[delays.len() / 2]);
        println!("| firing delay max | {:.2} |", delays[delays.len() - 1]);
    });
}
