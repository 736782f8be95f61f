//! The host's inner steps, per kind of function: compile (Cranelift, and
//! the Winch baseline tier), cached load (from the disk cache), a fresh
//! instance alone, instantiate + invoke one event in a fresh instance made
//! for it (on optimized and on baseline code), and an event on the fresh
//! instance made ahead of it, as a warm function's events run.
//!
//! Needs the example modules: run `bash examples/build.sh` first.
//! Run with `cargo bench --bench host`.

#![allow(missing_docs)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use wasmless::host::{
    CacheOutcome, Event, FunctionSettings, HTTP_NAMESPACE, Host, HostConfig, HttpRequest,
};

const KINDS: [(&str, &str); 3] = [
    ("wasmless", "hello"),
    ("wasi-http", "http-hello"),
    ("wasi-command", "command"),
];

fn module(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("examples/wasm/{name}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `bash examples/build.sh` first",
            path.display()
        )
    })
}

fn settings() -> FunctionSettings {
    FunctionSettings {
        name: "bench".into(),
        runtime: "wasm".into(),
        timeout: Duration::from_secs(10),
        memory_limit: 64 << 20,
        env: Vec::new(),
        mounts: Vec::new(),
        outbound: Default::default(),
        events_per_instance: 1,
    }
}

fn host(cache: Option<PathBuf>) -> Arc<Host> {
    // The host's log, for `RUST_LOG=wasmless=debug cargo bench ...`.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    Host::new(HostConfig {
        cache_dir: cache,
        ..HostConfig::default()
    })
    .expect("engine starts")
}

fn event() -> Event {
    let mut event = Event::new(Bytes::from_static(b"bench"), "text/plain", HTTP_NAMESPACE);
    event.request = Some(HttpRequest {
        method: "POST".into(),
        path: "/".into(),
        query: String::new(),
        headers: vec![("content-type".into(), "text/plain".into())],
    });
    event
}

fn compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    let host = host(None);
    for (kind, name) in KINDS {
        let bytes = module(name);
        group.bench_function(kind, |b| {
            b.iter(|| {
                host.cache().clear_memory();
                host.load(&bytes, settings()).expect("loads")
            })
        });
    }
    group.finish();
}

/// The baseline tier: what a module no cache knows costs before its first
/// answer when tiered compilation is on (Winch).
fn compile_baseline(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile_baseline");
    group.sample_size(10);
    let host = tiered_host();
    for (kind, name) in KINDS {
        let bytes = module(name);
        group.bench_function(kind, |b| {
            b.iter(|| {
                let function = host.load(&bytes, settings()).expect("loads");
                assert_eq!(function.cache_outcome(), CacheOutcome::Baseline);
                function
            })
        });
    }
    group.finish();
}

fn tiered_host() -> Arc<Host> {
    Host::new(HostConfig {
        tiered: true,
        ..HostConfig::default()
    })
    .expect("engines start")
}

fn cached_load(c: &mut Criterion) {
    let mut group = c.benchmark_group("cached_load");
    let dir = std::env::temp_dir().join(format!("wasmless-bench-{}", std::process::id()));
    let host = host(Some(dir.clone()));
    for (kind, name) in KINDS {
        let bytes = module(name);
        host.load(&bytes, settings()).expect("fills the disk cache");
        group.bench_function(kind, |b| {
            b.iter(|| {
                host.cache().clear_memory();
                host.load(&bytes, settings()).expect("loads")
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(dir);
}

/// A fresh store and instance alone, without the call.
fn instantiate(c: &mut Criterion) {
    let mut group = c.benchmark_group("instantiate");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let host = host(None);
    for (kind, name) in KINDS {
        let function = host.load(&module(name), settings()).expect("loads");
        group.bench_function(kind, |b| {
            b.iter(|| {
                runtime
                    .block_on(function.instantiate_only())
                    .expect("instantiates")
            })
        });
    }
    group.finish();
}

fn instantiate_and_invoke(c: &mut Criterion) {
    invoke_group(c, "instantiate_and_invoke", &host(None));
}

/// The same on baseline (Winch) code, as a new function runs until its
/// optimized code is in place.
fn instantiate_and_invoke_baseline(c: &mut Criterion) {
    invoke_group(c, "instantiate_and_invoke_baseline", &tiered_host());
}

fn invoke_group(c: &mut Criterion, group: &str, host: &Arc<Host>) {
    let mut group = c.benchmark_group(group);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    for (kind, name) in KINDS {
        let function = host.load(&module(name), settings()).expect("loads");
        let event = event();
        group.bench_function(kind, |b| time_inline_events(b, &runtime, &function, &event));
    }
    group.finish();
}

/// An event on the instance made ahead of it, as a warm function's event
/// runs: the call alone. The making of the next instance and the dropping
/// of the spent one, in the background, are not timed.
fn ready_event(c: &mut Criterion) {
    let mut group = c.benchmark_group("ready_event");
    let runtime = background_runtime();
    let host = host(None);
    for (kind, name) in KINDS {
        if kind == "wasi-command" {
            // A command's instance is made with its event (its stdin).
            continue;
        }
        let function = host.load(&module(name), settings()).expect("loads");
        let event = event();
        group.bench_function(kind, |b| time_ready_events(b, &runtime, &function, &event));
    }
    group.finish();
}

/// A runtime whose worker thread runs the background work of events (the
/// dropping of spent instances, the making of the next), as the server's
/// runtime does; `block_on` runs on the benchmark's thread.
fn background_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Times events on instances made for them (instantiate, then invoke).
fn time_inline_events(
    b: &mut criterion::Bencher,
    runtime: &tokio::runtime::Runtime,
    function: &wasmless::host::LoadedFunction,
    event: &Event,
) {
    b.iter(|| {
        let response = runtime
            .block_on(function.handle_event_inline(event.clone()))
            .expect("answers");
        assert_eq!(response.status, 200);
        response
    })
}

fn time_ready_events(
    b: &mut criterion::Bencher,
    runtime: &tokio::runtime::Runtime,
    function: &wasmless::host::LoadedFunction,
    event: &Event,
) {
    b.iter_custom(|iters| {
        let mut spent = Duration::ZERO;
        for _ in 0..iters {
            runtime.block_on(function.make_ready());
            assert!(function.instance_waiting(), "an instance is made ahead");
            let started = Instant::now();
            let response = runtime
                .block_on(function.handle_event(event.clone()))
                .expect("answers");
            spent += started.elapsed();
            assert_eq!(response.status, 200);
        }
        spent
    })
}

/// The Python runtime (`runtimes/dist/python.wasm`) running examples/
/// python-hello.
fn python(c: &mut Criterion) {
    source_runtime(
        c,
        "python",
        "python.wasm",
        "python-hello/hello.py",
        "python3.x",
    );
}

/// The JavaScript runtime (`runtimes/dist/js.wasm`) running examples/
/// js-hello.
fn javascript(c: &mut Criterion) {
    source_runtime(c, "javascript", "js.wasm", "js-hello/hello.js", "nodejs20");
}

/// A source runtime running an example: a fresh instance alone, and
/// instantiate + invoke (module load and handler included). Skipped when
/// the runtime is not built.
fn source_runtime(c: &mut Criterion, group: &str, file: &str, example: &str, runtime_name: &str) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let Ok(runtime_wasm) = std::fs::read(root.join("runtimes/dist").join(file)) else {
        eprintln!("{group}: runtimes/dist/{file} is not built (bash examples/build.sh); skipped");
        return;
    };
    let code = std::env::temp_dir().join(format!("wasmless-bench-{group}-{}", std::process::id()));
    std::fs::create_dir_all(&code).expect("code folder");
    let example = root.join("examples").join(example);
    let name = example.file_name().expect("a file");
    std::fs::copy(&example, code.join(name)).expect("the example");
    let mut settings = settings();
    settings.runtime = runtime_name.into();
    settings.env = vec![
        ("MOD_NAME".into(), "hello".into()),
        ("FUNC_HANDLER".into(), "handler".into()),
    ];
    settings.mounts = vec![wasmless::host::Mount {
        host: code.clone(),
        guest: "/kubeless".into(),
        writable: false,
    }];
    let bytecode = code.with_extension("bytecode");
    if group == "python" {
        wasmless::up::add_bytecode_folder(&mut settings, &bytecode, &code);
    }
    let host = host(None);
    let function = host
        .load_optimized(&runtime_wasm, settings)
        .expect("the runtime loads");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    // As `up` does after a Python function loads: its files compiled to
    // bytecode once, which events then load.
    if let Some(bytecode) = wasmless::up::Bytecode::new(&function) {
        runtime.block_on(bytecode.run(group));
    }
    let group_name = group;
    let mut group = c.benchmark_group(group);
    group.bench_function("instantiate", |b| {
        b.iter(|| {
            runtime
                .block_on(function.instantiate_only())
                .expect("instantiates")
        })
    });
    let event = event();
    group.bench_function("instantiate_and_invoke", |b| {
        time_inline_events(b, &runtime, &function, &event)
    });
    let background = background_runtime();
    group.bench_function("ready_event", |b| {
        time_ready_events(b, &background, &function, &event)
    });
    if group_name == "python" {
        // The function's own snapshot (what a busy function gets), on
        // optimized code and on the baseline compiler's, which serves
        // while the optimized code compiles.
        let snapshots = [
            ("snapshot", host.clone(), false),
            ("snapshot_baseline", tiered_host(), true),
        ];
        for (name, host, tiered) in snapshots {
            let started = Instant::now();
            let (snapshot, _) = host
                .pre_initialize(
                    &function,
                    wasmless::runtimes::Language::Python,
                    &runtime_wasm,
                    tiered,
                )
                .expect("the function is snapshotted");
            eprintln!(
                "python/{name}: made and compiled in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            group.bench_function(format!("{name}/instantiate_and_invoke"), |b| {
                time_inline_events(b, &runtime, &snapshot, &event)
            });
            group.bench_function(format!("{name}/ready_event"), |b| {
                time_ready_events(b, &background, &snapshot, &event)
            });
        }
    }
    group.finish();
    let _ = std::fs::remove_dir_all(code);
    let _ = std::fs::remove_dir_all(bytecode);
}

criterion_group!(
    benches,
    compile,
    compile_baseline,
    cached_load,
    instantiate,
    instantiate_and_invoke,
    ready_event,
    instantiate_and_invoke_baseline,
    python,
    javascript
);
criterion_main!(benches);
