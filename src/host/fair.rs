//! CPU fairness between events. A running function yields to the other
//! tasks once per epoch tick, but the runtime's worker threads take turns
//! in order: with many busy events queued (endless loops, a heavy
//! function under load) a short event waits behind a whole round of them.
//!
//! So an event that has run for [`SHORT_TICKS`] ticks counts as long, and
//! while any other event is running in the host, long ones take turns
//! through a gate of one slot fewer than there are cores: there is always a
//! core for short events, whatever a neighbour does. With no other event
//! running the gate is not used, so one heavy function alone keeps every
//! core. The slot is held for one tick at a time and handed on in order
//! (tokio's semaphore is fair), so long events share the rest evenly.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::UpdateDeadline;

/// Ticks an event runs before it counts as long (see [`super::EPOCH_TICK`]).
pub const SHORT_TICKS: u32 = 10;

/// The host-wide counts and the gate.
struct Fairness {
    /// Events running now.
    active: AtomicUsize,
    /// Of those, the long ones.
    long: AtomicUsize,
    /// One slot fewer than there are cores (at least one).
    gate: Arc<Semaphore>,
}

static FAIR: LazyLock<Fairness> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Fairness {
        active: AtomicUsize::new(0),
        long: AtomicUsize::new(0),
        gate: Arc::new(Semaphore::new(cores.saturating_sub(1).max(1))),
    }
});

/// Counts one event as running while it lives.
pub(crate) struct Active(());

impl Active {
    /// An event begins.
    pub(crate) fn begin() -> Self {
        FAIR.active.fetch_add(1, Ordering::Relaxed);
        Active(())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        FAIR.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One store's share of the CPU: how long it has run, and the gate's slot
/// while it holds it.
#[derive(Default)]
pub(crate) struct Slice {
    ticks: u32,
    long: bool,
    slot: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
}

impl Slice {
    /// What a store does at an epoch tick that did not end it: hands on the
    /// gate's slot, then yields, through the gate when it is long and
    /// another event is running.
    pub(crate) fn tick(&mut self) -> UpdateDeadline {
        self.slot.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.ticks = self.ticks.saturating_add(1);
        if self.ticks < SHORT_TICKS {
            return UpdateDeadline::Yield(1);
        }
        if !self.long {
            self.long = true;
            FAIR.long.fetch_add(1, Ordering::Relaxed);
        }
        if FAIR.active.load(Ordering::Relaxed) <= FAIR.long.load(Ordering::Relaxed) {
            // Only long events run: no one to make room for.
            return UpdateDeadline::Yield(1);
        }
        let slot = self.slot.clone();
        let gate = FAIR.gate.clone();
        UpdateDeadline::YieldCustom(
            1,
            Box::pin(async move {
                if let Ok(permit) = gate.acquire_owned().await {
                    *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(permit);
                }
            }),
        )
    }
}

impl Drop for Slice {
    fn drop(&mut self) {
        if self.long {
            FAIR.long.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
