//! Instances made ahead of their events.
//!
//! Every event still runs in a fresh instance that no other event has run
//! in. What this changes is when that instance is made and when the spent
//! one is dropped: after a component function answers an event, the host
//! drops the spent instance (resetting its memory) and makes the next one in
//! the background, so that the function's next event finds an instance
//! waiting and pays only for its own call. A wasmless-world component that
//! exports `wasmless:function/init` has it called once, right after the
//! instance is made ahead (the Python and JavaScript runtimes load the
//! handler's module there); an instance made with its event runs no init. An
//! instance that fails to make, or whose init traps, is dropped: the event
//! makes its own. An instance waits at most [`READY_IDLE`]
//! (`HostConfig::ready_idle`); a function that gets no events holds none,
//! and neither does one whose event came alone: after an event whose
//! instance was made for it, the next is made ahead only if the function's
//! event before came within that time too. A burst of first calls to many
//! functions (a pool's, say) then leaves no instance waiting for each.
//!
//! The instances a host holds outside events (made ahead, or spent and not
//! yet dropped) each hold a [`Token`] of its [`Budget`], which the pooling
//! allocator has room for beside one instance per running event
//! (`engine::ready_margin`). Without a token an event's spent instance is
//! dropped on the event path, as before, and none is made ahead.
//!
//! A command module reads its event from stdin, which is fixed when its
//! store is made, so its instance is always made with its event.
//!
//! A wasmless-world function whose spec allows it (`spec.instanceReuse`)
//! has its instance kept after an event that ended cleanly (a response or
//! the function's own error, not a trap, a timeout or the memory limit) and
//! serves its next events there, one at a time, up to the spec's bound; then
//! the instance is dropped and a fresh one made ahead, as above. The kept
//! instances of a function, as many as its events ran at once, hold tokens
//! of the same [`Budget`] and are dropped after the same idle time.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use wasmtime::Store;
use wasmtime_wasi_http::p2::bindings::Proxy;

use super::bindings::Function;
use super::function::{FunctionSettings, Prepared, WasmlessPre};
use super::invoke::component_store;
use super::state::{Captured, ComponentState, LOG_CAPTURE};

/// How long a ready instance waits for an event before it is dropped.
pub(crate) const READY_IDLE: Duration = Duration::from_secs(60);

/// How many instances a host may hold outside events.
pub(crate) struct Budget {
    left: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(size: usize) -> Arc<Self> {
        Arc::new(Self {
            left: AtomicUsize::new(size),
        })
    }

    /// A token, unless all are out.
    fn take(self: &Arc<Self>) -> Option<Token> {
        self.left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(1)
            })
            .ok()
            .map(|_| Token(self.clone()))
    }
}

/// Room for one instance held outside an event; given back when dropped.
pub(crate) struct Token(Arc<Budget>);

impl Drop for Token {
    fn drop(&mut self) {
        self.0.left.fetch_add(1, Ordering::AcqRel);
    }
}

/// A fresh, unused instance of a component function and its store.
pub(crate) struct Ready {
    pub store: Store<ComponentState>,
    pub instance: Instance,
    /// The instance's stdout and stderr, logged after its event.
    pub io: Captured,
    /// The room of an instance made ahead; kept while its event runs and
    /// until its store is dropped.
    pub token: Option<Token>,
    /// When it was made, or last served an event.
    made: Instant,
    /// The events it served.
    served: u32,
    /// The number of the event it serves (`ReadySlot::arrive`); zero while
    /// it waits for one, and for an event made inline.
    pub arrival: u64,
    /// How much of `io` was logged already.
    logged: (usize, usize),
}

impl Ready {
    /// Counts the event about to run in the instance.
    pub(crate) fn serve(&mut self) {
        self.served += 1;
    }

    /// What the instance printed since it was last asked: stdout, stderr.
    pub(crate) fn new_output(&mut self) -> (bytes::Bytes, bytes::Bytes) {
        let out = self.io.stdout.contents();
        let err = self.io.stderr.contents();
        let new = (out.slice(self.logged.0..), err.slice(self.logged.1..));
        self.logged = (out.len(), err.len());
        new
    }
}

/// Once an instance kept for reuse has printed this much, it is replaced,
/// so that a later event's output finds room in a fresh capture.
const REUSE_OUTPUT: usize = LOG_CAPTURE / 2;

/// A function's events come under steady load when the last instance made
/// ahead waited less than this for its event, or an event found none
/// waiting while one was being made: the next instance's event is then already on its way, and there
/// is no quiet time before it for optional warm-up work (see [`WARM_UP`]).
pub(crate) const STEADY_GAP: Duration = Duration::from_millis(5);

/// The environment variable that tells a runtime's `init` whether there is
/// quiet time for its optional warm-up (`1`) or the instance is made under
/// steady load and should do only what the event needs (`0`). The Python
/// runtime rehearses the event path ahead of the event only with `1`:
/// under load, a rehearsal per instance was a third of its CPU time
/// (benches/README.md).
pub const WARM_UP: &str = "WASMLESS_WARM_UP";

/// The instance's exports, by the world it implements.
pub(crate) enum Instance {
    Wasmless(Function),
    HttpProxy(Proxy),
}

/// An instantiation that failed, with what the instance printed meanwhile.
pub(crate) struct Failed {
    pub error: wasmtime::Error,
    pub io: Captured,
}

/// A component function's next instance, and what it is made from.
pub(crate) struct ReadySlot {
    engine: wasmtime::Engine,
    prepared: Prepared,
    settings: FunctionSettings,
    /// How long an instance waits; zero: none is made ahead.
    idle: Duration,
    budget: Arc<Budget>,
    ready: Mutex<Option<Ready>>,
    /// Instances that served events and may serve more
    /// (`FunctionSettings::events_per_instance`), the latest kept last.
    kept: Mutex<Vec<Ready>>,
    /// Set while a background task makes the next instance.
    filling: AtomicBool,
    /// Set once the task that drops an instance left waiting too long runs.
    reaping: AtomicBool,
    /// Set when an event found no instance waiting while one was being
    /// made, or one that waited less than [`STEADY_GAP`]; the next instance made ahead clears it and
    /// skips the warm-up.
    steady: AtomicBool,
    /// How many events came under steady load: what makes a source
    /// function worth its own snapshot (`preinit`).
    under_load: AtomicU32,
    /// How many events have arrived (`arrive`).
    arrivals: AtomicU64,
    /// Milliseconds from `born` until which the function counts as under
    /// concurrent load: [`STEADY_GAP`] after an event ended with another
    /// arrived while it ran.
    crowded_until: AtomicU64,
    /// When the slot was made: the clock of `last_event`.
    born: Instant,
    /// Milliseconds from `born` to the latest event, plus one; zero: none.
    last_event: AtomicU64,
    /// Set when the latest event came within `idle` of the one before.
    again: AtomicBool,
}

impl ReadySlot {
    /// The slot of a component function; `None` for a command module.
    pub(crate) fn new(
        engine: &wasmtime::Engine,
        prepared: &Prepared,
        settings: &FunctionSettings,
        idle: Duration,
        budget: &Arc<Budget>,
    ) -> Option<Arc<Self>> {
        if matches!(prepared, Prepared::Command(_)) {
            return None;
        }
        Some(Arc::new(Self {
            engine: engine.clone(),
            prepared: prepared.clone(),
            settings: settings.clone(),
            idle,
            budget: budget.clone(),
            ready: Mutex::new(None),
            kept: Mutex::new(Vec::new()),
            filling: AtomicBool::new(false),
            reaping: AtomicBool::new(false),
            steady: AtomicBool::new(false),
            under_load: AtomicU32::new(0),
            arrivals: AtomicU64::new(0),
            crowded_until: AtomicU64::new(0),
            born: Instant::now(),
            last_event: AtomicU64::new(0),
            again: AtomicBool::new(false),
        }))
    }

    fn slot(&self) -> MutexGuard<'_, Option<Ready>> {
        self.ready.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn kept(&self) -> MutexGuard<'_, Vec<Ready>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The instance waiting for an event, if there is one, now bound to
    /// this event's deadline: one kept for reuse first, the latest kept
    /// (its memory the most likely still in the caches), else the one made
    /// ahead.
    pub(crate) fn take(&self, deadline: Instant) -> Option<Ready> {
        let kept = self.kept().pop();
        let mut ready = match kept {
            Some(kept) => kept,
            None => {
                let made = self.slot().take();
                let steady = match &made {
                    Some(made) => made.made.elapsed() < STEADY_GAP,
                    // None waiting while the next is being made: events
                    // come faster than instances are made.
                    None => self.filling.load(Ordering::Acquire),
                };
                if steady {
                    self.steady.store(true, Ordering::Relaxed);
                    self.under_load.fetch_add(1, Ordering::Relaxed);
                }
                made?
            }
        };
        ready.store.data_mut().deadline = deadline;
        ready.store.set_epoch_deadline(1);
        Some(ready)
    }

    /// Records an event's arrival, before it takes or makes its instance:
    /// its number, counted from one.
    pub(crate) fn arrive(&self) -> u64 {
        self.note_event();
        self.arrivals.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Whether event number `arrival`, ending now, finds the function under
    /// concurrent load: another event arrived while it ran, or while one
    /// of the events that ended in the last [`STEADY_GAP`] did.
    fn crowded(&self, arrival: u64) -> bool {
        let now = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        if self.arrivals.load(Ordering::Relaxed) > arrival {
            let until = now.saturating_add(u64::try_from(STEADY_GAP.as_millis()).unwrap_or(0));
            self.crowded_until.fetch_max(until, Ordering::Relaxed);
            return true;
        }
        now < self.crowded_until.load(Ordering::Relaxed)
    }

    /// Records whether an event came within `idle` of the one before.
    fn note_event(&self) {
        let now = u64::try_from(self.born.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let before = self.last_event.swap(now, Ordering::Relaxed);
        let within = u64::try_from(self.idle.as_millis()).unwrap_or(u64::MAX);
        self.again.store(
            before != 0 && now.saturating_sub(before) <= within,
            Ordering::Relaxed,
        );
    }

    /// How many events came faster than instances were made ahead for
    /// them (see [`STEADY_GAP`]).
    pub(crate) fn events_under_load(&self) -> u32 {
        self.under_load.load(Ordering::Relaxed)
    }

    /// Whether an instance is waiting.
    pub(crate) fn is_ready(&self) -> bool {
        self.slot().is_some()
    }

    /// Makes an instance now, for an event with this deadline.
    pub(crate) async fn make(&self, deadline: Instant) -> Result<Ready, Failed> {
        self.make_and_init(deadline, false, false).await
    }

    /// Makes an instance; with `init`, runs the component's `init` export
    /// too (the set-up it can do ahead of its event), if it has one, telling
    /// it in [`WARM_UP`] whether to `warm_up`.
    async fn make_and_init(
        &self,
        deadline: Instant,
        init: bool,
        warm_up: bool,
    ) -> Result<Ready, Failed> {
        let io = Captured::new(LOG_CAPTURE);
        let extra = [(WARM_UP, if warm_up { "1" } else { "0" })];
        let extra: &[(&str, &str)] = if init { &extra } else { &[] };
        let mut store = component_store(&self.engine, &self.settings, &io, deadline, extra);
        let instance = match &self.prepared {
            Prepared::Wasmless(wasmless) => instantiate_wasmless(&mut store, wasmless, init)
                .await
                .map(Instance::Wasmless),
            Prepared::HttpProxy(pre) => pre
                .instantiate_async(&mut store)
                .await
                .map(Instance::HttpProxy),
            Prepared::Command(_) => Err(wasmtime::format_err!(
                "a command's instance is made with its event"
            )),
        };
        match instance {
            Ok(instance) => Ok(Ready {
                store,
                instance,
                io,
                token: None,
                made: Instant::now(),
                served: 0,
                arrival: 0,
                logged: (0, 0),
            }),
            Err(error) => Err(Failed { error, io }),
        }
    }

    /// After an event in `ready`: keeps the instance for the function's
    /// next event when the spec allows reuse, the event ended `clean` and
    /// the instance has room left, on its token or a new one; else drops it
    /// and makes the next one, as [`ReadySlot::recycle`].
    pub(crate) fn keep_or_recycle(self: &Arc<Self>, mut ready: Ready, clean: bool) {
        let reusable = clean
            && ready.served < self.settings.events_per_instance
            && !self.idle.is_zero()
            && matches!(ready.instance, Instance::Wasmless(_))
            && ready.logged.0.max(ready.logged.1) < REUSE_OUTPUT;
        if reusable && let Some(token) = ready.token.take().or_else(|| self.budget.take()) {
            ready.token = Some(token);
            ready.made = Instant::now();
            self.kept().push(ready);
            if !self.reaping.swap(true, Ordering::AcqRel) {
                reap(Arc::downgrade(self), self.idle);
            }
            return;
        }
        let Ready {
            store,
            token,
            arrival,
            ..
        } = ready;
        self.recycle(store, token, arrival);
    }

    /// After event number `arrival`: drops its spent store and makes the
    /// next instance, both in the background, on the token of the instance
    /// made ahead or a new one. Without a token, or outside a tokio
    /// runtime, or when none is made ahead, the store is dropped here and no
    /// instance is made; nor is one after an event whose instance was made
    /// for it, unless the function's event before it came within `idle` too
    /// (a lone event predicts no next one in time for an instance to wait
    /// for it). Nor is one under concurrent load (`crowded`): events then
    /// come faster than instances can be made ahead of them, and each
    /// makes its own, and making one ahead measured slower than not. The
    /// spent store is then dropped here, with no task to hand it to
    /// (benches/README.md, "Concurrent events", has both measured).
    pub(crate) fn recycle(
        self: &Arc<Self>,
        spent: Store<ComponentState>,
        token: Option<Token>,
        arrival: u64,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            drop(spent);
            return;
        };
        if self.idle.is_zero() {
            drop(spent);
            return;
        }
        if self.crowded(arrival) {
            self.under_load.fetch_add(1, Ordering::Relaxed);
            drop((spent, token));
            return;
        }
        if token.is_none() && !self.again.load(Ordering::Relaxed) {
            drop(spent);
            return;
        }
        let Some(token) = token.or_else(|| self.budget.take()) else {
            drop(spent);
            return;
        };
        let slot = Arc::downgrade(self);
        runtime.spawn(async move {
            drop(spent);
            // The function was replaced or removed meanwhile.
            if let Some(slot) = slot.upgrade() {
                slot.fill(Some(token), false).await;
            }
        });
    }

    /// Makes an instance unless one is waiting, waiting for a token while
    /// none is left (they come back as the background drops spent
    /// instances).
    pub(crate) async fn fill_when_room(self: &Arc<Self>) {
        while !self.is_ready() && !self.idle.is_zero() {
            match self.budget.take() {
                Some(token) => return self.fill(Some(token), true).await,
                None => tokio::time::sleep(Duration::from_micros(100)).await,
            }
        }
    }

    /// Makes an instance, on `token` or a new one, unless one is waiting or
    /// being made or none is left. With `wait`, waits for the instance being
    /// made by another task, so that it returns with an instance waiting
    /// unless making one failed or no token was left; without, leaves it to
    /// that task (a spent instance's recycling under load: its task would
    /// only poll the slot until the other is done).
    pub(crate) async fn fill(self: &Arc<Self>, token: Option<Token>, wait: bool) {
        if self.idle.is_zero() {
            return;
        }
        loop {
            if self.is_ready() {
                return;
            }
            if self
                .filling
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                break;
            }
            if !wait {
                return;
            }
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        if !self.is_ready()
            && let Some(token) = token.or_else(|| self.budget.take())
        {
            // The deadline of the making itself: a start or init function
            // that never returns is stopped like an event would be.
            let deadline = Instant::now() + self.settings.timeout;
            let warm_up = !self.steady.swap(false, Ordering::Relaxed);
            match self.make_and_init(deadline, true, warm_up).await {
                Ok(mut ready) => {
                    ready.token = Some(token);
                    *self.slot() = Some(ready);
                }
                Err(failed) => tracing::debug!(
                    function = %self.settings.name,
                    "making an instance ahead of its event failed: {:#}", failed.error
                ),
            }
        }
        self.filling.store(false, Ordering::Release);
        if !self.reaping.swap(true, Ordering::AcqRel) {
            reap(Arc::downgrade(self), self.idle);
        }
    }
}

/// Instantiates a wasmless-world component and, with `init`, runs its
/// `init` export if it has one.
async fn instantiate_wasmless(
    store: &mut Store<ComponentState>,
    wasmless: &WasmlessPre,
    init: bool,
) -> wasmtime::Result<Function> {
    let instance = wasmless.pre.instantiate_async(&mut *store).await?;
    if init && let Some(index) = &wasmless.init {
        let func = instance.get_typed_func::<(), ()>(&mut *store, index)?;
        func.call_async(&mut *store, ()).await?;
    }
    wasmless.indices.load(&mut *store, &instance)
}

/// Drops an instance that waited longer than `idle`, so that a function
/// that stopped getting events holds no memory for them. Runs as long as the
/// slot does.
fn reap(slot: Weak<ReadySlot>, idle: Duration) {
    let every = (idle / 4).max(Duration::from_millis(100));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(slot) = slot.upgrade() else { break };
            let stale = {
                let mut ready = slot.slot();
                if ready.as_ref().is_some_and(|r| r.made.elapsed() > idle) {
                    ready.take()
                } else {
                    None
                }
            };
            drop(stale);
            let stale: Vec<Ready> = {
                let mut kept = slot.kept();
                let (stale, fresh) = std::mem::take(&mut *kept)
                    .into_iter()
                    .partition(|r| r.made.elapsed() > idle);
                *kept = fresh;
                stale
            };
            drop(stale);
        }
    });
}
