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
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use tokio::sync::{Notify, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::Level;
use uuid::Uuid;

use crate::diag::Diag;
use crate::error::{CrashReason, Error};
use crate::handler::BoxEnvelope;
use crate::mailbox::{Control, ControlLane, Reply, UserLane};
use crate::service::Service;
use crate::state::ServiceState;
use crate::system::SystemInner;

tokio::task_local! {
    /// The id of the actor whose task is running, so a handle can refuse to await itself.
    pub(crate) static CURRENT_ACTOR: Uuid;
}

/// Settings read from the service once, at spawn.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) mundane_level: Level,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) wait_for_shutdown: bool,
}

/// The part of the cell that does not depend on the service type.
pub(crate) struct Core {
    pub(crate) id: Uuid,
    pub(crate) label: Arc<str>,
    pub(crate) shortlabel: Arc<str>,
    /// `[^--Label]`: Mode's log prefix, one dash per level below the root.
    pub(crate) prefix: Arc<str>,
    pub(crate) type_name: &'static str,
    pub(crate) depth: usize,
    pub(crate) settings: Settings,
    pub(crate) parent: Option<Weak<dyn AnyCell>>,
    pub(crate) system: Weak<SystemInner>,
    pub(crate) control: ControlLane,
    pub(crate) diag: Diag,
    state: watch::Sender<ServiceState>,
    restart_count: AtomicU32,
    crash_reason: Mutex<Option<CrashReason>>,
    /// Cancelled as soon as a stop or crash is requested; replaced at each start.
    stop_token: Mutex<CancellationToken>,
    shutdown_set: AtomicBool,
    shutdown_notify: Notify,
    dead_letters: AtomicU64,
}

/// Locks a mutex, ignoring poisoning: the data behind these locks is always left consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) struct CoreInit {
    pub(crate) label: String,
    pub(crate) shortlabel: String,
    pub(crate) type_name: &'static str,
    pub(crate) settings: Settings,
    pub(crate) parent: Option<(Weak<dyn AnyCell>, usize)>,
    pub(crate) system: Weak<SystemInner>,
}

impl Core {
    pub(crate) fn new(init: CoreInit) -> Core {
        let (parent, depth) = match init.parent {
            Some((p, parent_depth)) => (Some(p), parent_depth + 1),
            None => (None, 0),
        };
        let prefix = format!("[^{}{}]", "-".repeat(depth), init.shortlabel);
        Core {
            id: Uuid::new_v4(),
            label: Arc::from(init.label),
            shortlabel: Arc::from(init.shortlabel),
            prefix: Arc::from(prefix),
            type_name: init.type_name,
            depth,
            settings: init.settings,
            parent,
            system: init.system,
            control: ControlLane::new(),
            diag: Diag::default(),
            state: watch::Sender::new(ServiceState::Init),
            restart_count: AtomicU32::new(0),
            crash_reason: Mutex::new(None),
            stop_token: Mutex::new(CancellationToken::new()),
            shutdown_set: AtomicBool::new(false),
            shutdown_notify: Notify::new(),
            dead_letters: AtomicU64::new(0),
        }
    }

    pub(crate) fn state(&self) -> ServiceState {
        *self.state.borrow()
    }

    pub(crate) fn set_state(&self, s: ServiceState) {
        self.state.send_if_modified(|cur| {
            let changed = *cur != s;
            *cur = s;
            changed
        });
    }

    pub(crate) async fn wait_until_stopped(&self) {
        let mut rx = self.state.subscribe();
        // The sender lives in this core, which we borrow: the wait cannot fail.
        let _ = rx.wait_for(|s| s.is_stopped()).await;
    }

    pub(crate) fn restart_count(&self) -> u32 {
        self.restart_count.load(Ordering::Acquire)
    }

    pub(crate) fn bump_restart_count(&self) -> u32 {
        self.restart_count.fetch_add(1, Ordering::AcqRel) + 1
    }

    pub(crate) fn crash_reason(&self) -> Option<CrashReason> {
        lock(&self.crash_reason).clone()
    }

    /// Records `reason` unless the service already crashed (the first reason wins, as in Mode).
    pub(crate) fn record_crash(&self, reason: CrashReason) -> CrashReason {
        lock(&self.crash_reason).get_or_insert(reason).clone()
    }

    pub(crate) fn clear_crash(&self) {
        *lock(&self.crash_reason) = None;
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.control.is_closed()
    }

    /// The stop signal of the current run.
    pub(crate) fn stop_token(&self) -> CancellationToken {
        lock(&self.stop_token).clone()
    }

    /// A fresh stop signal for a new run; returns it.
    pub(crate) fn renew_stop_token(&self) -> CancellationToken {
        let fresh = CancellationToken::new();
        *lock(&self.stop_token) = fresh.clone();
        self.shutdown_set.store(false, Ordering::Release);
        fresh
    }

    /// Tells the current run to stop: `should_stop()` turns true and interruptible waits end.
    pub(crate) fn signal_stop(&self) {
        lock(&self.stop_token).cancel();
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
                label: self.label.clone(),
                reason,
            },
            None => Error::Stopped {
                label: self.label.clone(),
            },
        }
    }

    /// Refuses an awaiting request made from the actor's own task: it could never be answered.
    pub(crate) fn check_not_self(&self, op: &'static str) -> Result<(), Error> {
        match CURRENT_ACTOR.try_with(|id| *id == self.id) {
            Ok(true) => Err(Error::WouldDeadlock {
                label: self.label.clone(),
                op,
            }),
            _ => Ok(()),
        }
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
        self.check_not_self(op)?;
        let (tx, rx) = oneshot::channel();
        self.send_control(make(tx))?;
        rx.await.unwrap_or_else(|_| Err(self.gone_error()))
    }

    /// Requests a crash: the stop signal fires at once, the actor handles the rest.
    pub(crate) fn crash(&self, reason: CrashReason) {
        self.signal_stop();
        // A closed mailbox means the actor is already gone: nothing left to crash.
        let _ = self.control.send(Control::Crash(reason));
    }

    /// Counts `n` messages that could not be delivered and reports them.
    pub(crate) fn dead_lettered(&self, n: usize) {
        if n == 0 {
            return;
        }
        self.dead_letters.fetch_add(n as u64, Ordering::Relaxed);
        if let Some(system) = self.system.upgrade() {
            system.dead_letters.record(self, n as u64);
        }
        tracing::warn!(
            service = %self.label,
            id = %self.id,
            count = n,
            "{}: {} undelivered message(s) moved to dead letters",
            self.prefix,
            n
        );
    }

    pub(crate) fn dead_letter_count(&self) -> u64 {
        self.dead_letters.load(Ordering::Relaxed)
    }

    pub(crate) fn parent(&self) -> Option<Arc<dyn AnyCell>> {
        self.parent.as_ref().and_then(Weak::upgrade)
    }
}

/// The typed cell: the core plus the user lane of the mailbox.
pub(crate) struct Cell<A: Service> {
    pub(crate) core: Core,
    pub(crate) user: UserLane<BoxEnvelope<A>>,
}

/// The cell with its service type erased, for [`ServiceRef`](crate::ServiceRef).
pub(crate) trait AnyCell: Send + Sync + 'static {
    fn core(&self) -> &Core;
    /// Messages waiting in the user lane.
    fn queued(&self) -> usize;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<A: Service> AnyCell for Cell<A> {
    fn core(&self) -> &Core {
        &self.core
    }

    fn queued(&self) -> usize {
        self.user.len()
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}
