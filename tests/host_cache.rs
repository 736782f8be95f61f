//! The host in-process: the compile cache never compiles a module twice,
//! tiered compilation answers on baseline code with the same limits,
//! modules that fit no kind are refused with the reason, and instances made
//! ahead of their events are fresh, get their event's time and run the
//! function's init then; `wasmless pre-init` ships the memory init leaves.

mod common;

use std::time::Duration;

use common::{http_event as request, wasm_settings as settings};
use wasmless::host::{CacheOutcome, FunctionKind, Host, HostConfig, InvokeError, LoadError};

fn host(cache: &std::path::Path) -> std::sync::Arc<Host> {
    Host::new(HostConfig {
        cache_dir: Some(cache.to_owned()),
        ..HostConfig::default()
    })
    .expect("engine starts")
}

#[test]
fn a_cached_module_is_never_compiled_twice() {
    let cache = common::tempdir();
    let bytes = std::fs::read(common::wasm("hello")).expect("hello.wasm");

    let first = host(&cache);
    let a = first.load(&bytes, settings("a")).expect("loads");
    assert_eq!(a.cache_outcome(), CacheOutcome::Compiled);
    assert_eq!(a.kind(), FunctionKind::Wasmless);
    let b = first.load(&bytes, settings("b")).expect("loads again");
    assert_eq!(b.cache_outcome(), CacheOutcome::Memory);
    assert_eq!(first.cache().compiles(), 1);

    // A new host (a restart) maps the artefact from disk.
    let second = host(&cache);
    let c = second.load(&bytes, settings("c")).expect("loads from disk");
    assert_eq!(c.cache_outcome(), CacheOutcome::Disk);
    assert_eq!(second.cache().compiles(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_module_stays_in_memory_after_its_function_goes_until_newer_ones_push_it_out() {
    let cache = common::tempdir();
    let hello = std::fs::read(common::wasm("hello")).expect("hello.wasm");
    let host = host(&cache);
    let first = host.load(&hello, settings("first")).expect("loads");
    assert_eq!(first.cache_outcome(), CacheOutcome::Compiled);
    drop(first);
    // Deployed again after it was deleted: its code is still in memory.
    let again = host.load(&hello, settings("again")).expect("loads");
    assert_eq!(again.cache_outcome(), CacheOutcome::Memory);
    drop(again);
    // Eight other modules later, only the disk has it.
    for n in 0..8 {
        let other = wasmless::bench::with_nonce(&hello, &format!("other-{n}"));
        let loaded = host.load(&other, settings("other")).expect("loads");
        assert_eq!(loaded.cache_outcome(), CacheOutcome::Compiled);
    }
    let later = host.load(&hello, settings("later")).expect("loads");
    assert_eq!(later.cache_outcome(), CacheOutcome::Disk);
    let response = later.handle_event(request("/")).await.expect("answers");
    assert_eq!(&response.body[..], b"Hello, Ada!\n");
}

#[test]
fn a_corrupt_cache_entry_is_recompiled() {
    let cache = common::tempdir();
    let bytes = std::fs::read(common::wasm("command")).expect("command.wasm");
    host(&cache).load(&bytes, settings("a")).expect("loads");
    for dir in std::fs::read_dir(&cache).expect("cache dir") {
        for file in std::fs::read_dir(dir.expect("entry").path()).expect("engine dir") {
            std::fs::write(file.expect("entry").path(), b"garbage").expect("corrupting");
        }
    }
    let again = host(&cache);
    let f = again.load(&bytes, settings("a")).expect("recompiles");
    assert_eq!(f.cache_outcome(), CacheOutcome::Compiled);
    assert_eq!(f.kind(), FunctionKind::Command);
}

#[test]
fn modules_that_fit_no_kind_are_refused_with_the_reason() {
    let host = host(&common::tempdir());
    let err = |source: &[u8]| host.load(source, settings("x")).err().expect("refused");
    assert!(matches!(err(b"hello"), LoadError::NotWasm(_)));
    let no_start = err(b"(module (func (export \"run\")))").to_string();
    assert!(no_start.contains("_start"), "{no_start}");
    let empty_component = err(b"(component)").to_string();
    assert!(
        empty_component.contains("exports neither"),
        "{empty_component}"
    );
    // An `init` export must be `init: func()`.
    let bad_init = err(br#"(component
        (core module $m (func (export "f") (param i32)))
        (core instance $i (instantiate $m))
        (func $init (param "x" u32) (canon lift (core func $i "f")))
        (instance $init-instance (export "init" (func $init)))
        (export "wasmless:function/init@0.1.0" (instance $init-instance))
        (instance $handler)
        (export "wasmless:function/handler@0.1.0" (instance $handler))
    )"#)
    .to_string();
    assert!(bad_init.contains("`init: func()`"), "{bad_init}");
    let mut big = settings("big");
    big.memory_limit = 8 << 30;
    let too_big = host
        .load(b"(module (func (export \"_start\")))", big)
        .err()
        .expect("refused");
    assert!(matches!(too_big, LoadError::MemoryTooLarge { .. }));
}

fn tiered_host(cache: &std::path::Path) -> std::sync::Arc<Host> {
    Host::new(HostConfig {
        cache_dir: Some(cache.to_owned()),
        tiered: true,
        ..HostConfig::default()
    })
    .expect("engines start")
}

#[tokio::test(flavor = "multi_thread")]
async fn tiered_loads_answer_on_baseline_code_then_cache_the_optimized_code() {
    let cache = common::tempdir();
    let host = tiered_host(&cache);
    let bytes = std::fs::read(common::wasm("hello")).expect("hello.wasm");
    let baseline = host.load(&bytes, settings("a")).expect("loads");
    assert_eq!(baseline.cache_outcome(), CacheOutcome::Baseline);
    assert_eq!(
        host.cache().compiles(),
        0,
        "the baseline code is not cached"
    );
    let response = baseline.handle_event(request("/")).await.expect("answers");
    assert_eq!(&response.body[..], b"Hello, Ada!\n");
    baseline
        .instantiate_only()
        .await
        .expect("instantiates alone");

    let optimized = host.load_optimized(&bytes, settings("a")).expect("loads");
    assert_eq!(optimized.cache_outcome(), CacheOutcome::Compiled);
    let response = optimized.handle_event(request("/")).await.expect("answers");
    assert_eq!(&response.body[..], b"Hello, Ada!\n");
    // Known now: no baseline compile any more.
    let again = host.load(&bytes, settings("b")).expect("loads");
    assert_eq!(again.cache_outcome(), CacheOutcome::Memory);
    drop((optimized, again));
    let from_disk = tiered_host(&cache)
        .load(&bytes, settings("c"))
        .expect("loads");
    assert_eq!(from_disk.cache_outcome(), CacheOutcome::Disk);
}

#[tokio::test(flavor = "multi_thread")]
async fn baseline_code_keeps_the_time_and_memory_limits() {
    let cache = common::tempdir();
    let host = tiered_host(&cache);
    let bytes = std::fs::read(common::wasm("misbehave")).expect("misbehave.wasm");
    let mut limited = settings("misbehave");
    limited.timeout = Duration::from_millis(300);
    let function = host.load(&bytes, limited).expect("loads");
    assert_eq!(function.cache_outcome(), CacheOutcome::Baseline);
    let looped = function.handle_event(request("/loop")).await;
    assert!(matches!(looped, Err(InvokeError::Timeout(_))), "{looped:?}");
    let hoarded = function.handle_event(request("/alloc")).await;
    assert!(
        matches!(hoarded, Err(InvokeError::MemoryExceeded { .. })),
        "{hoarded:?}"
    );
    let refused = function.handle_event(request("/error")).await;
    assert!(
        matches!(refused, Err(InvokeError::Guest { .. })),
        "{refused:?}"
    );
}

/// Polls `check` for up to five seconds.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(std::time::Instant::now() < until, "{what}: not within 5 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn served(function: &wasmless::host::LoadedFunction) -> String {
    let response = function
        .handle_event(request("/count"))
        .await
        .expect("answers");
    String::from_utf8_lossy(&response.body).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_made_ahead_are_fresh_get_their_events_time_and_are_dropped_when_idle() {
    let cache = common::tempdir();
    let host = Host::new(HostConfig {
        cache_dir: Some(cache.clone()),
        ready_idle: Some(Duration::from_secs(2)),
        ..HostConfig::default()
    })
    .expect("engine starts");
    let bytes = std::fs::read(common::wasm("misbehave")).expect("misbehave.wasm");
    let mut limited = settings("misbehave");
    limited.timeout = Duration::from_millis(300);
    let function = host.load(&bytes, limited).expect("loads");
    assert!(!function.instance_waiting(), "none before the first event");

    // A lone event leaves none waiting; a second within `ready_idle` of
    // it does. Every event finds an instance that served nothing before.
    assert_eq!(served(&function).await, "1");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!function.instance_waiting(), "one after a lone event");
    assert_eq!(served(&function).await, "1");
    eventually("the next instance is made", || function.instance_waiting()).await;
    assert_eq!(served(&function).await, "1");
    eventually("the next instance is made", || function.instance_waiting()).await;

    // An instance that waited longer than the timeout still gets its
    // event's whole time: the deadline is the event's, not its making's.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(served(&function).await, "1");
    eventually("the next instance is made", || function.instance_waiting()).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let started = std::time::Instant::now();
    let looped = function.handle_event(request("/loop")).await;
    assert!(matches!(looped, Err(InvokeError::Timeout(_))), "{looped:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "stopped after {:?}, before the event's 300 ms",
        started.elapsed()
    );
    // An instance made for its event, as before, is as fresh.
    let inline = function
        .handle_event_inline(request("/count"))
        .await
        .expect("answers");
    assert_eq!(&inline.body[..], b"1");

    // Left waiting longer than `ready_idle`, the instance is dropped.
    eventually("the next instance is made", || function.instance_waiting()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    eventually("the idle instance is dropped", || {
        !function.instance_waiting()
    })
    .await;
    // The next event makes its own and answers.
    assert_eq!(served(&function).await, "1");

    // With `ready_idle` zero, none is made ahead.
    let eager = Host::new(HostConfig {
        cache_dir: Some(cache),
        ready_idle: Some(Duration::ZERO),
        ..HostConfig::default()
    })
    .expect("engine starts");
    let function = eager.load(&bytes, settings("misbehave")).expect("loads");
    assert_eq!(served(&function).await, "1");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!function.instance_waiting());
}

async fn init_says(function: &wasmless::host::LoadedFunction, making_ahead: bool) -> String {
    let event = request("/init");
    let response = if making_ahead {
        function.handle_event(event).await
    } else {
        function.handle_event_inline(event).await
    };
    String::from_utf8_lossy(&response.expect("answers").body).into_owned()
}

/// The milliseconds in "init ran N ms before".
fn init_ms(said: &str) -> u128 {
    said.strip_prefix("init ran ")
        .and_then(|rest| rest.strip_suffix(" ms before"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("init did not run: {said}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn init_runs_when_the_instance_is_made_ahead_and_a_failing_one_costs_no_event() {
    let cache = common::tempdir();
    let host = Host::new(HostConfig {
        cache_dir: Some(cache),
        ready_idle: Some(Duration::from_secs(30)),
        ..HostConfig::default()
    })
    .expect("engine starts");
    let bytes = std::fs::read(common::wasm("misbehave")).expect("misbehave.wasm");

    // The first events' instances are made for them: no init (after a
    // lone event, none is made ahead).
    let function = host.load(&bytes, settings("misbehave")).expect("loads");
    assert_eq!(init_says(&function, true).await, "init did not run");
    assert_eq!(init_says(&function, true).await, "init did not run");
    // The next one was made ahead, and its init ran then, not with the
    // event.
    eventually("the next instance is made", || function.instance_waiting()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let said = init_says(&function, true).await;
    assert!(init_ms(&said) >= 250, "{said}");
    // Its event's instance is still its own: it served nothing before.
    eventually("the next instance is made", || function.instance_waiting()).await;
    assert_eq!(served(&function).await, "1");
    // An instance made for its event runs no init.
    assert_eq!(init_says(&function, false).await, "init did not run");

    // An init that traps, or never returns, leaves no instance waiting,
    // and the events are answered on instances made for them.
    for (how, timeout) in [("panic", 5_000), ("loop", 300)] {
        let mut failing = settings(&format!("init-{how}"));
        failing.env = vec![("MISBEHAVE_INIT".into(), how.into())];
        failing.timeout = Duration::from_millis(timeout);
        let function = host.load(&bytes, failing).expect("loads");
        for _ in 0..2 {
            function.make_ready().await;
            assert!(!function.instance_waiting(), "{how}: an instance waits");
            assert_eq!(init_says(&function, true).await, "init did not run");
        }
    }
    // The last event's next instance is being made in the background, its
    // init looping until its 300 ms run out. The host's epoch clock is what
    // stops it, and it stops ticking when the host is dropped at the end of
    // this test: wait for that making to end first (a CI run hung here,
    // the runtime's shutdown waiting for an init no tick would stop).
    tokio::time::sleep(Duration::from_secs(2)).await;
}

/// `wasmless pre-init` (the build step of the JavaScript runtime) runs a
/// component's init once and writes a component whose every instance starts
/// with the memory that init left: an instance made for its event, which
/// runs no init, already holds init's state, and each event still gets an
/// instance of its own.
#[tokio::test(flavor = "multi_thread")]
async fn pre_init_ships_the_memory_init_leaves_in_every_instance() {
    let dir = common::tempdir();
    let original = common::wasm("misbehave");
    let snapshot = dir.join("misbehave-pre-init.wasm");
    wasmless::snapshot::pre_init(&original, &snapshot)
        .await
        .expect("pre-init");
    let host = Host::new(HostConfig {
        cache_dir: Some(dir.join("cache")),
        ready_idle: Some(Duration::ZERO),
        ..HostConfig::default()
    })
    .expect("engine starts");
    let bytes = std::fs::read(&original).expect("misbehave.wasm");
    let plain = host.load(&bytes, settings("plain")).expect("loads");
    assert_eq!(init_says(&plain, false).await, "init did not run");
    let bytes = std::fs::read(&snapshot).expect("the snapshot");
    let snapshotted = host.load(&bytes, settings("snapshotted")).expect("loads");
    for _ in 0..2 {
        let said = init_says(&snapshotted, false).await;
        assert!(said.starts_with("init ran "), "{said}");
        assert_eq!(served(&snapshotted).await, "1");
    }
}

#[test]
fn an_images_precompiled_folder_serves_code_with_no_compile() {
    let bytes = std::fs::read(common::wasm("hello")).expect("hello.wasm");
    // What `wasmless runtimes --precompile` makes when an image is built.
    let precompiled = common::tempdir();
    let maker = host(&precompiled);
    assert!(maker.precompile(&bytes).expect("compiles"), "compiled once");
    assert!(!maker.precompile(&bytes).expect("there"), "and not twice");

    // A pod: an empty, writable cache and the image's folder.
    let cache = common::tempdir();
    let pod = Host::new(HostConfig {
        cache_dir: Some(cache.clone()),
        precompiled_dir: Some(precompiled.clone()),
        ..HostConfig::default()
    })
    .expect("engine starts");
    assert!(matches!(pod.cache().precompiled(), Some((_, true))));
    let loaded = pod.load(&bytes, settings("a")).expect("loads");
    assert_eq!(loaded.cache_outcome(), CacheOutcome::Disk);
    assert_eq!(pod.cache().compiles(), 0, "nothing compiled in the pod");

    // A folder made for another engine is not used: it compiles.
    let other = common::tempdir();
    std::fs::create_dir_all(other.join("0123456789abcdef")).expect("mkdir");
    let pod = Host::new(HostConfig {
        cache_dir: Some(common::tempdir()),
        precompiled_dir: Some(other),
        ..HostConfig::default()
    })
    .expect("engine starts");
    assert!(matches!(pod.cache().precompiled(), Some((_, false))));
    let loaded = pod.load(&bytes, settings("a")).expect("loads");
    assert_ne!(loaded.cache_outcome(), CacheOutcome::Disk);
}
