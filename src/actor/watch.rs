//! Watching a service (OTP's monitors): any service can watch any other, not only its
//! children, and hears once, in [`Service::on_down`](crate::Service::on_down), that it stopped
//! for good or crashed, with the reason.
//!
//! # Invariants
//! - A watch fires at most once: the watched service takes its list of watchers when it
//!   crashes or ends, so a crash followed by the end notifies once, with the crash.
//! - Watching a service that has already crashed or ended fires at once.
//! - A watch ends with its watcher: a watcher that ends removes itself from every service it
//!   watches, and a cancelled watch ([`Context::unwatch`](crate::Context::unwatch)) never
//!   fires.

use std::fmt;
use std::sync::{Mutex, MutexGuard, Weak};

use uuid::Uuid;

use super::addr::ServiceRef;
use super::cell::AnyCell;
use super::error::CrashReason;
use super::mailbox::{Control, Notice};

/// Identifies one watch, to cancel it with [`Context::unwatch`](crate::Context::unwatch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WatchId(Uuid);

/// Why a watched service is down.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DownReason {
    /// It stopped for good.
    Stopped,
    /// It crashed (a supervisor may restart it: watch it again to hear of the next time).
    Crashed(CrashReason),
}

/// What a watcher hears when a service it watches stops for good or crashes.
#[derive(Clone)]
pub struct Down {
    pub(crate) watch: WatchId,
    pub(crate) service: ServiceRef,
    pub(crate) reason: DownReason,
}

impl Down {
    /// The watch that fired.
    pub fn watch(&self) -> WatchId {
        self.watch
    }

    /// The service that is down.
    pub fn service(&self) -> &ServiceRef {
        &self.service
    }

    /// Why it is down.
    pub fn reason(&self) -> &DownReason {
        &self.reason
    }

    /// Whether it crashed.
    pub fn is_crash(&self) -> bool {
        matches!(self.reason, DownReason::Crashed(_))
    }
}

impl fmt::Debug for Down {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Down")
            .field("watch", &self.watch)
            .field("service", &self.service.label())
            .field("reason", &self.reason)
            .finish()
    }
}

impl fmt::Display for Down {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            DownReason::Stopped => write!(f, "{} stopped", self.service.label()),
            DownReason::Crashed(reason) => {
                write!(f, "{} crashed: {reason}", self.service.label())
            }
        }
    }
}

impl WatchId {
    /// A new id, unique (random, like a service's id).
    pub(crate) fn new() -> WatchId {
        WatchId(Uuid::new_v4())
    }
}

/// One watch on a service: its id and the watcher's cell.
type Watch = (WatchId, Weak<dyn AnyCell>);

/// The watchers of one service, kept in its cell.
#[derive(Default)]
pub(crate) struct Watchers {
    /// `None` once the service fired its watches: later watches fire at once.
    list: Mutex<Option<Vec<Watch>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Watchers {
    pub(crate) fn new() -> Self {
        Watchers {
            list: Mutex::new(Some(Vec::new())),
        }
    }

    /// Adds a watch; `false` if the service has already fired (the caller delivers at once).
    pub(crate) fn add(&self, id: WatchId, watcher: Weak<dyn AnyCell>) -> bool {
        match lock(&self.list).as_mut() {
            Some(list) => {
                list.push((id, watcher));
                true
            }
            None => false,
        }
    }

    /// After a restart: the service can go down again, so watches taken from now on wait for
    /// that (the ones that fired stay fired).
    pub(crate) fn rearm(&self) {
        lock(&self.list).get_or_insert_with(Vec::new);
    }

    /// Removes a watch, if it has not fired.
    pub(crate) fn remove(&self, id: WatchId) {
        if let Some(list) = lock(&self.list).as_mut() {
            list.retain(|(w, _)| *w != id);
        }
    }

    /// Tells every watcher that `service` is down, once.
    pub(crate) fn fire(&self, service: &ServiceRef, reason: &DownReason) {
        let Some(list) = lock(&self.list).take() else {
            return;
        };
        for (watch, watcher) in list {
            let Some(watcher) = watcher.upgrade() else {
                continue;
            };
            let down = Down {
                watch,
                service: service.clone(),
                reason: reason.clone(),
            };
            // A watcher that has ended does not hear it: its watch ended with it.
            let _ = watcher
                .core()
                .control
                .send(Control::Notice(Notice::Down(Box::new(down))));
        }
    }
}
