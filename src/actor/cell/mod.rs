//! The shared cell behind every handle: one per actor, alive as long as any handle or the
//! actor's task holds it. Transitions of the shared state happen here and nowhere else.
//!
//! # Invariants
//! - `state`, `restart_count` and `crash_reason` are written only by the actor's own task;
//!   handles read them.
//! - The mailbox (both lanes) lives here, not in the task, so a restart keeps what is queued.
//! - A control request whose reply is dropped resolves to [`Core::gone_error`], which reads the
//!   crash reason: a pending request on a crashed service says why.

use std::any::Any;
use std::borrow::Cow;
use std::cell::Cell as StdCell;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::SystemTime;

use futures::future::BoxFuture;
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::diag::Diag;

use super::addr::ServiceRef;
use super::decide::CrashDecider;
use super::error::{CrashReason, Error};
use super::handler::{BoxEnvelope, StopHere};
use super::host::Host;
use super::mailbox::{Control, ControlLane, Reply, Stop, UserLane};
use super::meter;
use super::observe::{CrashRecord, Observe, ServiceStats, StatsSlot, spans_wanted};
use super::service::Service;
use super::state::ServiceState;
use super::watch::Watchers;

mod label;
mod settings;

pub(crate) use label::{Label, Prefix};
pub(crate) use settings::Settings;

thread_local! {
    /// The service whose task (or one of whose background tasks) this thread is polling: so a
    /// handle can refuse to await its own actor, and a log line or a panic can name the
    /// service. Set for the length of each poll by the task's wrapper (`busy::scoped`).
    static CURRENT: StdCell<Option<Current>> = const { StdCell::new(None) };
}

/// What [`CURRENT`] holds.
pub(crate) struct Current {
    pub(crate) service: ServiceRef,
    /// The actor's own task (not one of its background tasks).
    pub(crate) own_task: bool,
}

/// Makes `slot`'s service the thread's current one until the guard is dropped, which puts
/// both back (the one before it, and `slot`'s), also when the poll unwinds.
pub(crate) fn enter_scope(slot: &mut Option<Current>) -> InScope<'_> {
    let before = CURRENT.with(|c| c.replace(slot.take()));
    InScope { slot, before }
}

/// See [`enter_scope`].
pub(crate) struct InScope<'a> {
    slot: &'a mut Option<Current>,
    before: Option<Current>,
}

impl Drop for InScope<'_> {
    fn drop(&mut self) {
        let before = self.before.take();
        // A thread whose locals are gone has no poll to restore.
        if let Ok(mine) = CURRENT.try_with(|c| c.replace(before)) {
            *self.slot = mine;
        }
    }
}

/// `f` on the thread's current service, if a service's task is being polled.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Current>) -> R) -> R {
    let current = CURRENT.try_with(StdCell::take).ok().flatten();
    let r = f(current.as_ref());
    if current.is_some() {
        CURRENT.with(|c| c.set(current));
    }
    r
}

/// The service the calling task belongs to, if any (its actor task or a background task).
pub(crate) fn current_service() -> Option<ServiceRef> {
    with_current(|c| c.map(|c| c.service.clone()))
}

/// The part of the cell that does not depend on the service type.
pub(crate) struct Core {
    pub(crate) id: Uuid,
    pub(crate) label: Label,
    pub(crate) shortlabel: Label,
    pub(crate) type_name: &'static str,
    /// Levels below its root. Changes when its tree is adopted (see `Context::adopt`).
    depth: AtomicUsize,
    pub(crate) settings: Settings,
    /// The name it was spawned under (unique in its System), if any.
    pub(crate) name: Option<Arc<str>>,
    /// The System's own services (the registry) do not report to the registry.
    pub(crate) internal: bool,
    /// Set at creation for a child; set once later for a root that is adopted (see
    /// `Context::adopt`), never changed after that.
    pub(crate) parent: OnceLock<Weak<dyn AnyCell>>,
    pub(crate) control: ControlLane,
    pub(crate) diag: Diag,
    /// The `ServiceState`, as its `code()`.
    state: AtomicU8,
    /// Tasks in `wait_until_stopped`: state changes notify only when there are some.
    state_waiters: AtomicUsize,
    state_changed: Notify,
    restart_count: AtomicU32,
    /// Crash records, a crash decider, background task names: made at first use (most
    /// services never crash nor run a task), so an idle service stays small.
    rare: Mutex<Option<Box<Rare>>>,
    /// How many times the service crashed, ever: an ask compares it with the count when it was
    /// sent, to tell "crashed meanwhile" from "stopped" however late it reads its answer.
    crashes: AtomicU32,
    /// Set by the parent: a running child stopped by anyone else waits for the parent's
    /// decision (`Service::on_child_stopped`) before it ends. Off by default.
    parent_decides_stops: AtomicBool,
    /// What the parent noted about this child (a supervisor: its restart policy). Opaque to
    /// the kernel; kept here so that it survives the parent's own restart.
    parent_tag: AtomicU8,
    /// Set as soon as a stop or crash is requested; cleared at each start.
    stopping: AtomicBool,
    /// The stop signal of the current run, made only when someone asks for it (a sleep, a
    /// wait, a background task): most services never do. Cancelled with `stopping`.
    stop_token: Mutex<Option<CancellationToken>>,
    shutdown_set: AtomicBool,
    shutdown_notify: Notify,
    dead_letters: AtomicU64,
    /// Where the host keeps its record of this service, set by the host when it hears of the
    /// service (see `Event::Spawned`) and handed back in the service's later events: the
    /// kernel only carries it.
    host_key: AtomicU64,
    /// Who watches this service (see `watch.rs`).
    pub(crate) watchers: Watchers,
    /// The System's observation switch (see `observe.rs`).
    pub(crate) observe: Arc<Observe>,
    /// Message statistics, made at the first observed message.
    pub(crate) stats: StatsSlot,
}

/// Locks a mutex, ignoring poisoning: the data behind these locks is always left consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) struct CoreInit {
    pub(crate) label: Cow<'static, str>,
    pub(crate) shortlabel: Cow<'static, str>,
    pub(crate) type_name: &'static str,
    pub(crate) settings: Settings,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) internal: bool,
    pub(crate) parent: Option<(Weak<dyn AnyCell>, usize)>,
    pub(crate) observe: Arc<Observe>,
}

impl Core {
    pub(crate) fn new(init: CoreInit) -> Core {
        let parent = OnceLock::new();
        let depth = match init.parent {
            Some((p, parent_depth)) => {
                let _ = parent.set(p);
                parent_depth + 1
            }
            None => 0,
        };
        let shortlabel = if init.shortlabel == init.label {
            None
        } else {
            Some(Label::from(init.shortlabel))
        };
        let label = Label::from(init.label);
        let shortlabel = shortlabel.unwrap_or_else(|| label.clone());
        Core {
            id: Uuid::new_v4(),
            label,
            shortlabel,
            type_name: init.type_name,
            depth: AtomicUsize::new(depth),
            settings: init.settings,
            name: init.name,
            internal: init.internal,
            parent,
            control: ControlLane::new(),
            diag: Diag::default(),
            state: AtomicU8::new(0),
            state_waiters: AtomicUsize::new(0),
            state_changed: Notify::new(),
            restart_count: AtomicU32::new(0),
            rare: Mutex::new(None),
            crashes: AtomicU32::new(0),
            parent_decides_stops: AtomicBool::new(false),
            parent_tag: AtomicU8::new(0),
            stopping: AtomicBool::new(false),
            stop_token: Mutex::new(None),
            shutdown_set: AtomicBool::new(false),
            shutdown_notify: Notify::new(),
            dead_letters: AtomicU64::new(0),
            host_key: AtomicU64::new(0),
            watchers: Watchers::new(),
            observe: init.observe,
            stats: StatsSlot::default(),
        }
    }

    /// Mode's log prefix, `[^--Label]`: one dash per level below the root. Written on demand,
    /// so a service that never logs never builds it.
    pub(crate) fn prefix(&self) -> Prefix<'_> {
        Prefix(self)
    }

    /// The host's key for this service (see `Event`).
    pub(crate) fn host_key(&self) -> u64 {
        self.host_key.load(Ordering::Relaxed)
    }

    /// Notes the host's key for this service: called by the host as it hears of the service,
    /// before the service's task exists (the spawn orders it before the task's reads).
    pub(crate) fn set_host_key(&self, key: u64) {
        self.host_key.store(key, Ordering::Relaxed);
    }

    pub(crate) fn state(&self) -> ServiceState {
        ServiceState::from_code(self.state.load(Ordering::Acquire)).unwrap_or(ServiceState::Init)
    }

    /// Stores and announces `s` to the handles waiting on state changes. (The runner reports
    /// it to the host first: see `Runner::set_state`.)
    pub(crate) fn publish_state(&self, s: ServiceState) {
        let index = s.code();
        self.state.store(index, Ordering::SeqCst);
        if self.state_waiters.load(Ordering::SeqCst) > 0 {
            self.state_changed.notify_waiters();
        }
    }

    pub(crate) async fn wait_until_stopped(&self) {
        self.wait_until(|| self.state().is_stopped()).await
    }

    /// Waits until `pred` holds, checking it at every state change.
    pub(crate) async fn wait_until(&self, mut pred: impl FnMut() -> bool) {
        self.state_waiters.fetch_add(1, Ordering::SeqCst);
        let _count = WaiterGuard(&self.state_waiters);
        loop {
            let changed = self.state_changed.notified();
            let mut changed = std::pin::pin!(changed);
            // Registered before the check: a change after it is not missed.
            changed.as_mut().enable();
            if pred() {
                return;
            }
            changed.await;
        }
    }

    pub(crate) fn restart_count(&self) -> u32 {
        self.restart_count.load(Ordering::Acquire)
    }

    pub(crate) fn bump_restart_count(&self) -> u32 {
        meter::restarted(self);
        self.restart_count.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Whether a message sent now should be traced (see `observe.rs`).
    #[inline]
    pub(crate) fn observing(&self) -> bool {
        self.observe.is_on() || spans_wanted()
    }

    /// What the service has done so far.
    pub(crate) fn stats_snapshot(&self, queued: usize) -> ServiceStats {
        let last_crash = {
            let rare = lock(&self.rare);
            match rare.as_deref().map(|c| (&c.last, c.last_at)) {
                Some((Some(reason), Some(at))) => Some(CrashRecord {
                    at,
                    reason: reason.clone(),
                }),
                _ => None,
            }
        };
        ServiceStats::from_parts(
            self.stats.get(),
            queued,
            self.crashes.load(Ordering::Relaxed),
            self.restart_count(),
            last_crash,
        )
    }

    pub(crate) fn crash_reason(&self) -> Option<CrashReason> {
        // A service that never crashed has no reason to read: no lock (read at every stop).
        if self.crashes.load(Ordering::SeqCst) == 0 {
            return None;
        }
        lock(&self.rare).as_deref()?.current.clone()
    }

    /// Records `reason` unless the service already crashed (the first reason wins, as in Mode).
    pub(crate) fn record_crash(&self, reason: CrashReason) -> CrashReason {
        {
            let mut guard = lock(&self.rare);
            let rare = guard.get_or_insert_with(Box::default);
            if let Some(current) = &rare.current {
                return current.clone();
            }
            rare.current = Some(reason.clone());
            rare.last = Some(reason.clone());
            rare.last_at = Some(SystemTime::now());
            self.crashes.fetch_add(1, Ordering::SeqCst);
        }
        meter::crashed(self);
        reason
    }

    pub(crate) fn clear_crash(&self) {
        if let Some(rare) = lock(&self.rare).as_deref_mut() {
            rare.current = None;
        }
    }

    /// How many times the service has crashed: read when a request is sent, handed back to
    /// [`gone_error_since`](Self::gone_error_since) when its answer never comes.
    #[inline]
    pub(crate) fn crash_epoch(&self) -> u32 {
        self.crashes.load(Ordering::SeqCst)
    }

    /// Whether a running child stopped by anyone else waits for its parent's decision.
    pub(crate) fn parent_decides_stops(&self) -> bool {
        self.parent_decides_stops.load(Ordering::Acquire)
    }

    /// Installs, replaces or (`None`) removes the decider this service's crashed children ask
    /// first.
    pub(crate) fn set_decider(&self, decider: Option<Arc<dyn CrashDecider>>) {
        let mut guard = lock(&self.rare);
        // Removing a decider never installed makes nothing.
        if guard.is_some() || decider.is_some() {
            guard.get_or_insert_with(Box::default).decider = decider;
        }
    }

    /// The decider this service's crashed children ask first, if it installed one.
    pub(crate) fn decider(&self) -> Option<Arc<dyn CrashDecider>> {
        lock(&self.rare).as_deref()?.decider.clone()
    }

    /// What the parent noted about this child (0: nothing).
    pub(crate) fn parent_tag(&self) -> u8 {
        self.parent_tag.load(Ordering::Acquire)
    }

    pub(crate) fn set_parent_tag(&self, tag: u8) {
        self.parent_tag.store(tag, Ordering::Release);
    }

    pub(crate) fn set_parent_decides_stops(&self, yes: bool) {
        self.parent_decides_stops.store(yes, Ordering::Release);
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.control.is_closed()
    }

    /// Whether the current run was told to stop (or crashed).
    #[inline]
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// The stop signal of the current run, made now if nobody asked for it before (already
    /// cancelled if the run is stopping).
    pub(crate) fn stop_token(&self) -> CancellationToken {
        let mut slot = lock(&self.stop_token);
        let token = slot.get_or_insert_with(CancellationToken::new);
        if self.stopping.load(Ordering::Acquire) {
            token.cancel();
        }
        token.clone()
    }

    /// Starts a new run: not stopping, and a fresh stop signal if the last run's was used.
    pub(crate) fn renew_stop_token(&self) {
        self.shutdown_set.store(false, Ordering::Release);
        let mut slot = lock(&self.stop_token);
        self.stopping.store(false, Ordering::Release);
        if slot.as_ref().is_some_and(CancellationToken::is_cancelled) {
            *slot = None;
        }
    }

    /// Tells the current run to stop: `should_stop()` turns true and interruptible waits end.
    pub(crate) fn signal_stop(&self) {
        let slot = lock(&self.stop_token);
        self.stopping.store(true, Ordering::Release);
        if let Some(token) = slot.as_ref() {
            token.cancel();
        }
    }

    pub(crate) fn set_shutdown(&self) {
        self.shutdown_set.store(true, Ordering::Release);
        self.shutdown_notify.notify_waiters();
    }

    pub(crate) async fn wait_shutdown_flag(&self) {
        loop {
            let notified = self.shutdown_notify.notified();
            if self.shutdown_set.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    /// The error for a request the actor can no longer answer.
    pub(crate) fn gone_error(&self) -> Error {
        match self.crash_reason() {
            Some(reason) => Error::Crashed {
                label: self.label.arc(),
                reason,
            },
            None => Error::Stopped {
                label: self.label.arc(),
            },
        }
    }

    /// The error for a request sent at crash `epoch` that will never be answered: `Crashed` if
    /// the service is crashed or crashed since (even if a restart has cleared the reason by
    /// the time the requester reads this), else `Stopped`.
    pub(crate) fn gone_error_since(&self, epoch: u32) -> Error {
        let rare = lock(&self.rare);
        let reason = match rare.as_deref().map(|c| (&c.current, &c.last)) {
            Some((Some(current), _)) => Some(current.clone()),
            Some((None, Some(last))) if self.crashes.load(Ordering::SeqCst) != epoch => {
                Some(last.clone())
            }
            _ => None,
        };
        match reason {
            Some(reason) => Error::Crashed {
                label: self.label.arc(),
                reason,
            },
            None => Error::Stopped {
                label: self.label.arc(),
            },
        }
    }

    /// Refuses an awaiting request made from the actor's own task: it could never be answered.
    pub(crate) fn check_not_self(&self, op: &'static str) -> Result<(), Error> {
        if with_current(|c| c.is_some_and(|c| c.own_task && c.service.id() == self.id)) {
            return Err(Error::WouldDeadlock {
                label: self.label.arc(),
                op,
            });
        }
        Ok(())
    }

    /// Whether the calling task is this service's parent's own task.
    pub(crate) fn called_from_parent(&self) -> bool {
        let Some(parent) = self.parent() else {
            return false;
        };
        let parent_id = parent.core().id;
        with_current(|c| c.is_some_and(|c| c.own_task && c.service.id() == parent_id))
    }

    /// Sends a control message without waiting for an answer.
    pub(crate) fn send_control(&self, msg: Control) -> Result<(), Error> {
        self.control.send(msg).map_err(|_| self.gone_error())
    }

    /// Sends a control request and waits for its answer.
    pub(crate) async fn request(
        &self,
        op: &'static str,
        make: impl FnOnce(Reply) -> Control,
    ) -> Result<bool, Error> {
        self.request_raw(op, make).await.unwrap_or_else(Err)
    }

    /// [`request`](Self::request), telling an answer (inner result) apart from an actor that
    /// was gone before it could answer (outer `Err`, with [`gone_error`](Self::gone_error)).
    pub(crate) async fn request_raw(
        &self,
        op: &'static str,
        make: impl FnOnce(Reply) -> Control,
    ) -> Result<Result<bool, Error>, Error> {
        if let Err(e) = self.check_not_self(op) {
            return Ok(Err(e));
        }
        let epoch = self.crash_epoch();
        let (tx, rx) = oneshot::channel();
        // Not while it has background tasks: they go first, as they would if the actor's own
        // task were woken (a stop's signal wakes them before the request reaches the actor).
        let drive = !self.has_tasks();
        let answer = match self.control.send_driven(make(tx), drive) {
            Err(_) => return Err(self.gone_error()),
            // A dormant actor is driven here through the request (see `runner::Inline`).
            Ok(Some(inline)) => inline.drive(&self.control, rx).await,
            Ok(None) => rx.await,
        };
        answer.map_err(|_| self.gone_error_since(epoch))
    }

    /// The answer to a request sent at crash `epoch` on `rx`; if the actor could no longer
    /// answer, why.
    pub(crate) async fn answer(
        &self,
        rx: oneshot::Receiver<Result<bool, Error>>,
        epoch: u32,
    ) -> Result<bool, Error> {
        rx.await
            .unwrap_or_else(|_| Err(self.gone_error_since(epoch)))
    }

    /// Requests a crash: the stop signal fires at once, the actor handles the rest.
    pub(crate) fn crash(&self, reason: CrashReason) {
        self.signal_stop();
        // A closed mailbox means the actor is already gone: nothing left to crash.
        let _ = self.control.send(Control::Crash(reason));
    }

    /// Counts `n` messages that could not be delivered and reports them to `host`.
    #[inline]
    pub(crate) fn dead_lettered(&self, n: usize, host: &dyn Host) {
        if n > 0 {
            self.report_dead_letters(n, host);
        }
    }

    #[cold]
    fn report_dead_letters(&self, n: usize, host: &dyn Host) {
        self.dead_letters.fetch_add(n as u64, Ordering::Relaxed);
        meter::dead_letters(self, n as u64);
        // Messages left in the mailbox of a service that stopped cleanly were dropped on
        // purpose; those of a crashed one are news.
        let crashed = self.crash_reason().is_some();
        let logged = host.dead_lettered(self.id, &self.label.arc(), n as u64, crashed);
        // Every one is an event; only the logged ones are INFO, the rest DEBUG.
        let why = if crashed { " by its crash" } else { "" };
        let (id, count, prefix) = (self.id, n as u64, self.prefix());
        if logged {
            tracing::info!(target: "modo", modo_id = %id, modo_count = count,
                "{prefix}: {n} message(s) moved to dead letters{why}");
        } else {
            tracing::debug!(target: "modo", modo_id = %id, modo_count = count,
                "{prefix}: {n} message(s) moved to dead letters{why}");
        }
    }

    pub(crate) fn task_started(&self, name: &Arc<str>) {
        let mut guard = lock(&self.rare);
        guard
            .get_or_insert_with(Box::default)
            .tasks
            .push(name.clone());
    }

    pub(crate) fn task_ended(&self, name: &Arc<str>) {
        if let Some(rare) = lock(&self.rare).as_deref_mut()
            && let Some(i) = rare.tasks.iter().position(|t| Arc::ptr_eq(t, name))
        {
            rare.tasks.remove(i);
        }
    }

    /// Whether any of the service's background tasks is running.
    pub(crate) fn has_tasks(&self) -> bool {
        lock(&self.rare)
            .as_deref()
            .is_some_and(|rare| !rare.tasks.is_empty())
    }

    pub(crate) fn task_names(&self) -> Vec<String> {
        let guard = lock(&self.rare);
        let tasks = guard.as_deref().map_or(&[][..], |rare| &rare.tasks[..]);
        tasks.iter().map(|t| t.to_string()).collect()
    }

    pub(crate) fn dead_letter_count(&self) -> u64 {
        self.dead_letters.load(Ordering::Relaxed)
    }

    pub(crate) fn parent(&self) -> Option<Arc<dyn AnyCell>> {
        self.parent.get().and_then(Weak::upgrade)
    }

    /// Whether the service has no parent (and never had one): a root.
    pub(crate) fn is_root(&self) -> bool {
        self.parent.get().is_none()
    }

    pub(crate) fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    pub(crate) fn set_depth(&self, depth: usize) {
        self.depth.store(depth, Ordering::Relaxed);
    }

    /// Whether `other` belongs to the same System: services of one System share its
    /// observation switch, made once per System.
    pub(crate) fn same_system(&self, other: &Core) -> bool {
        Arc::ptr_eq(&self.observe, &other.observe)
    }
}

/// What most services never need, boxed at first use: the crash reason of the current run
/// and of the latest crash ever, a crash decider, the names of background tasks.
#[derive(Default)]
struct Rare {
    /// The crash reason of the current run. Cleared by a restart.
    current: Option<CrashReason>,
    /// The latest crash ever, kept across restarts for requests that read their answer late.
    last: Option<CrashReason>,
    /// When `last` happened.
    last_at: Option<SystemTime>,
    /// Set by a parent that can answer its children's crashes in their own tasks (see
    /// `decide.rs`): a supervisor restarting one for one.
    decider: Option<Arc<dyn CrashDecider>>,
    /// Names of the background tasks running now, for dumps (see `ServiceRef::task_names`).
    tasks: Vec<Arc<str>>,
}

/// Decrements the waiter count when a wait ends or is dropped.
struct WaiterGuard<'a>(&'a AtomicUsize);

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The typed cell: the core plus the user lane of the mailbox.
pub(crate) struct Cell<A: Service> {
    pub(crate) core: Core,
    pub(crate) user: UserLane<BoxEnvelope<A>>,
}

/// The actor's waker while its task has no tokio task of its own (see `runner::Inline`).
impl<A: Service> std::task::Wake for Cell<A> {
    fn wake(self: Arc<Self>) {
        self.core.control.wake_dormant();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.core.control.wake_dormant();
    }
}

/// The cell with its service type erased, for [`ServiceRef`](crate::ServiceRef).
pub(crate) trait AnyCell: Send + Sync + 'static {
    fn core(&self) -> &Core;
    /// Messages waiting in the user lane.
    fn queued(&self) -> usize;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    /// Queues `stop` behind the user messages already queued (waiting for room); `Err` if the
    /// mailbox is closed.
    fn queue_stop(&self, stop: Stop) -> BoxFuture<'_, Result<(), ()>>;
    /// Queues `stop` behind the user messages already queued, at once, past the capacity if
    /// it must (from the service's own task, which cannot wait for room).
    fn queue_stop_now(&self, stop: Stop) -> Result<(), ()>;
}

impl<A: Service> AnyCell for Cell<A> {
    fn core(&self) -> &Core {
        &self.core
    }

    fn queued(&self) -> usize {
        self.user.len()
    }

    fn queue_stop(&self, stop: Stop) -> BoxFuture<'_, Result<(), ()>> {
        let env: BoxEnvelope<A> = Box::new(StopHere(stop));
        Box::pin(async move { self.user.send(env, &self.core.control).await.map_err(drop) })
    }

    fn queue_stop_now(&self, stop: Stop) -> Result<(), ()> {
        let env: BoxEnvelope<A> = Box::new(StopHere(stop));
        self.user
            .push_past_capacity(env, &self.core.control)
            .map_err(drop)
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}
