//! The epoch clocks tick every millisecond only while a store exists: an
//! idle host wakes ten times a second per engine, and a function's endless
//! loop is still stopped at its deadline. (Its own test binary: the clocks'
//! state is the process's.)

mod common;

use std::time::Duration;

use wasmless::host::{Host, HostConfig, IDLE_TICK, InvokeError, epoch_ticks};

#[tokio::test(flavor = "multi_thread")]
async fn the_epoch_clocks_sleep_while_no_store_exists_and_stop_loops_when_one_does() {
    let host = Host::new(HostConfig {
        cache_dir: Some(common::tempdir()),
        ready_idle: Some(Duration::ZERO),
        ..HostConfig::default()
    })
    .expect("engine starts");
    let bytes = std::fs::read(common::wasm("misbehave")).expect("misbehave.wasm");
    let mut settings = common::wasm_settings("misbehave");
    settings.timeout = Duration::from_millis(500);
    let function = host.load(&bytes, settings).expect("loads");

    // No store: the host's clocks (one per engine) tick every IDLE_TICK.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = epoch_ticks();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = epoch_ticks() - before;
    let at_most = 2 * (Duration::from_secs(1).as_millis() / IDLE_TICK.as_millis() + 2) as u64;
    assert!(idle <= at_most, "{idle} ticks in an idle second");

    // An endless loop: its store keeps the clocks ticking every
    // millisecond, and it is stopped at its timeout.
    let before = epoch_ticks();
    let looped = function.handle_event(common::http_event("/loop")).await;
    assert!(matches!(looped, Err(InvokeError::Timeout(_))), "{looped:?}");
    let busy = epoch_ticks() - before;
    assert!(busy >= 100, "only {busy} ticks over a 500 ms loop");
}
