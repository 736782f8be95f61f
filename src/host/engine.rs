//! The wasmtime engine: its configuration and the epoch clock that enforces
//! per-event timeouts.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
    RegallocAlgorithm, Strategy,
};

/// How often the epoch advances. A running function is checked against its
/// deadline (and yields to other tasks) once per tick: this is the longest
/// a busy function holds a worker thread while another function's event
/// waits for it. At 5 ms a hello beside endless loops waited 7× its p50
/// alone; at 1 ms, about 1× (`wasmless bench neighbours`, benches/README).
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// How often the epoch advances while no store of the host's exists (see
/// [`Ticking`]): a safety net for a store made without one, which is then
/// still stopped at its deadline, at most this much late.
pub const IDLE_TICK: Duration = Duration::from_millis(100);

/// How much of a pooled linear memory stays resident between instances.
const KEEP_RESIDENT: usize = 2 << 20;

/// Limits of the engine, shared by all functions in a host.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How many events may run at once. The pooling allocator holds
    /// [`ready_margin`] more instances: those made ahead of their events,
    /// and spent ones waiting to be dropped in the background.
    pub max_instances: u32,
    /// The largest memory limit a function may ask for, in bytes.
    pub max_memory: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            max_instances: 1000,
            max_memory: 1 << 30,
        }
    }
}

/// Which compiler an engine uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compiler {
    /// Cranelift: optimized code, the slower compile.
    Optimizing,
    /// Winch: a single-pass baseline compiler, several times faster to
    /// compile, slower code.
    Baseline,
}

/// Builds an engine: component model, async, epoch interruption and the
/// pooling allocator with copy-on-write memory images, so that a fresh
/// instance per event costs microseconds.
pub fn build_engine(config: &EngineConfig, compiler: Compiler) -> wasmtime::Result<Engine> {
    let mut wasm = Config::new();
    wasm.wasm_component_model(true).epoch_interruption(true);
    wasm.strategy(match compiler {
        Compiler::Optimizing => Strategy::Cranelift,
        Compiler::Baseline => Strategy::Winch,
    });
    // A deploy's baseline compile runs on a thread of its own (see
    // `bounded`), not in the process's shared pool of compile threads,
    // where it would wait behind any other module's compile.
    if compiler == Compiler::Baseline {
        wasm.parallel_compilation(false);
        // Winch compiles the functions, but Cranelift still compiles the
        // trampolines between host and wasm and a component's adapters:
        // most of a baseline compile (benches/README.md). They are small
        // and short-lived code (the optimized tier replaces them), so
        // Cranelift's quickest settings.
        wasm.cranelift_opt_level(OptLevel::None)
            .cranelift_regalloc_algorithm(RegallocAlgorithm::SinglePass);
    }
    let mut pool = PoolingAllocationConfig::default();
    let events = config.max_instances.max(1);
    let instances = events.saturating_add(ready_margin(events));
    // A Rust component holds a few core instances (the program, the WASI
    // adapter shims); a command module one.
    pool.total_component_instances(instances)
        .total_core_instances(instances * 4)
        .total_memories(instances * 2)
        .total_tables(instances * 4)
        .total_stacks(instances)
        .max_core_instances_per_component(32)
        .max_memories_per_component(4)
        .max_tables_per_component(8)
        .max_memory_size(usize::try_from(config.max_memory).unwrap_or(usize::MAX))
        .max_unused_warm_slots(64)
        // Reset only the pages an event dirtied (PAGEMAP_SCAN on Linux 6.7+)
        // and keep them resident, instead of an madvise per instance: the
        // cost of a fresh instance per event then follows what the event
        // touched, not the size of its memory.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(64 << 10);
    wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&wasm)
}

/// How many instances, beyond one per event running, a host may hold
/// outside events: made ahead of their events, or spent and waiting to be
/// dropped in the background.
pub fn ready_margin(max_instances: u32) -> u32 {
    (max_instances / 4).max(8)
}

/// How many [`Ticking`] guards exist: the epoch clocks tick every
/// [`EPOCH_TICK`] only while some do.
static TICKING: AtomicUsize = AtomicUsize::new(0);
/// Wakes the clocks when the first guard comes.
static WAKE: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
/// How many times the clocks advanced an epoch.
static TICKS: AtomicU64 = AtomicU64::new(0);

/// Keeps the epoch clocks ticking every [`EPOCH_TICK`] while it lives. Each
/// store the host makes holds one in its data, so that the clocks tick
/// while any store exists (an event in flight, an instance made ahead, one
/// being dropped) and sleep otherwise: an idle host, whose functions are
/// parked or have no instance waiting, wakes [`IDLE_TICK`]-ly instead of
/// 1,000 times a second per engine.
pub struct Ticking {
    _private: (),
}

impl Ticking {
    /// A guard; the clocks wake at once if it is the first.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        if TICKING.fetch_add(1, Ordering::AcqRel) == 0 {
            // Under the lock, so that a clock that just saw none and is
            // about to wait cannot miss the wake-up.
            let _held = WAKE.0.lock().unwrap_or_else(|e| e.into_inner());
            WAKE.1.notify_all();
        }
        Self { _private: () }
    }
}

impl Drop for Ticking {
    fn drop(&mut self) {
        TICKING.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How many times the epoch clocks advanced an epoch, all engines together.
pub fn epoch_ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// Sleeps one tick: [`EPOCH_TICK`] while a [`Ticking`] guard exists, else
/// until one comes or [`IDLE_TICK`] passes.
fn wait_for_tick() {
    if TICKING.load(Ordering::Acquire) > 0 {
        std::thread::sleep(EPOCH_TICK);
        return;
    }
    let held = WAKE.0.lock().unwrap_or_else(|e| e.into_inner());
    let _ = WAKE
        .1
        .wait_timeout_while(held, IDLE_TICK, |_| TICKING.load(Ordering::Acquire) == 0);
}

/// Advances the engine's epoch every [`EPOCH_TICK`] (while a store exists,
/// see [`Ticking`]) for as long as the engine lives: not only as long as
/// this handle, because a store (an event in flight, an instance made
/// ahead, a spent one dropped in the background) holds the engine, and a
/// guest in an endless loop is stopped only by its epoch deadline. A clock
/// that stopped with the host's handle would leave such a store running
/// forever, and the process hanging on it at shutdown.
pub struct EpochClock {
    _private: (),
}

impl EpochClock {
    /// Starts the clock on its own thread; it ends once the last handle on
    /// the engine (the engine itself, a store, a module) is gone.
    pub fn start(engine: &Engine) -> Self {
        let engine = engine.weak();
        std::thread::Builder::new()
            .name("wasmless-epoch".into())
            .spawn(move || {
                loop {
                    wait_for_tick();
                    match engine.upgrade() {
                        Some(engine) => {
                            engine.increment_epoch();
                            TICKS.fetch_add(1, Ordering::Relaxed);
                        }
                        None => break,
                    }
                }
            })
            .expect("spawning a thread at start-up cannot fail short of resource exhaustion");
        Self { _private: () }
    }
}

/// Runs `work` on the threads of background compiles: a pool of its own
/// (so Cranelift's parallel compile of one function's code stays on it),
/// of half the cores, whose threads run at the lowest priority (nice 19). A
/// function's optimized code is compiled there after its baseline code
/// already serves, so it takes only CPU no event, deploy or first compile
/// wants: on a small CPU share, one function's background compile must not
/// slow the next function's first answer.
pub fn in_background<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    let pool = POOL.get_or_init(|| {
        // Half the cores: the other half stays free for events and the
        // first compiles, which a lower priority alone does not ensure
        // (priorities apply within a pod's cgroup, not between pods and the
        // node's other processes).
        let threads = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("wasmless-optimize-{i}"))
            .start_handler(|_| crate::net::lowest_priority(crate::net::thread_id()))
            .build()
            .map_err(|err| {
                tracing::warn!("no pool of background compile threads ({err}): optimized code is compiled at normal priority");
            })
            .ok()
    });
    match pool {
        Some(pool) => pool.install(work),
        None => work(),
    }
}

/// Gives back to the system the heap that a large compile used and freed.
/// glibc keeps freed memory in its arenas (one per thread that allocated):
/// after the optimized compile of the Python runtime, or a Python
/// function's snapshot, that was hundreds of megabytes resident that no one
/// used (benches/README.md).
#[allow(unsafe_code)]
pub fn return_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator's own
    // arenas; it is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_that_outlives_the_clocks_handle_still_reaches_its_deadline() {
        let engine = build_engine(&EngineConfig::default(), Compiler::Baseline).expect("engine");
        // The host's handle on the clock is gone at once (it shut down, or
        // swapped engines) while a store of the engine still runs.
        {
            let _clock = EpochClock::start(&engine);
        }
        let module = wasmtime::Module::new(
            &engine,
            r#"(module (func (export "spin") (loop $l (br $l))))"#,
        )
        .expect("module");
        // A store made without a `Ticking` guard: stopped by the clock's
        // idle ticks if no other store keeps it ticking.
        let mut store = wasmtime::Store::new(&engine, ());
        store.set_epoch_deadline(20);
        store.epoch_deadline_trap();
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).expect("instance");
        let spin = instance
            .get_typed_func::<(), ()>(&mut store, "spin")
            .expect("spin");
        drop(engine);
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(spin.call(&mut store, ()).is_err());
        });
        assert_eq!(
            finished.recv_timeout(Duration::from_secs(30)),
            Ok(true),
            "the loop was stopped by its deadline"
        );
    }
}
