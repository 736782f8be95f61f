//! The `wasmless` command.

use clap::Parser;

/// Task polls between two looks at the sockets and timers (see `main`).
const EVENT_INTERVAL: u32 = 2;

/// How long the command waits, once done, for work still running on the
/// blocking pool (a function's optimized code being compiled in the
/// background) before it exits anyway: that work is of no use any more,
/// and a SIGTERM must not wait a minute for a compile.
const BLOCKING_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// The source runtimes built in (build.rs), when they were.
#[cfg(wasmless_embedded)]
static RUNTIMES: &[(&str, &[u8])] = &[
    (
        "python.wasm",
        include_bytes!(env!("WASMLESS_EMBEDDED_PYTHON")),
    ),
    ("js.wasm", include_bytes!(env!("WASMLESS_EMBEDDED_JS"))),
];
#[cfg(not(wasmless_embedded))]
static RUNTIMES: &[(&str, &[u8])] = &[];

fn main() -> std::process::ExitCode {
    wasmless::runtimes::embedded::provide(RUNTIMES);
    let cli = wasmless::cli::Cli::parse();
    wasmless::telemetry::init(cli.log.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Look for ready sockets every 2 task polls, not tokio's 61: while
        // functions run for a whole epoch tick per poll (endless loops,
        // heavy events), 61 polls are 61 ticks before a neighbour's
        // request is even noticed (a hello's p50 beside endless loops: 93×
        // its own at 61, 7× at 2; benches/README).
        .event_interval(EVENT_INTERVAL)
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(wasmless::cli::run(cli));
    runtime.shutdown_timeout(BLOCKING_GRACE);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
