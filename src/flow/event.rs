//! [`FlowControlEvent`]: suspends and resumes production into the queues that share it.

use std::fmt;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::watch;

/// A queue the event empties when it suspends (or on [`FlowControlEvent::clear`]).
pub(super) trait Managed: Send + Sync {
    /// Empties the queue (dropping its items and pending errors, handing waiting producers
    /// their items back); returns how many items it dropped.
    fn clear_managed(&self) -> usize;
}

/// Mode's `FlowControlEvent`: one switch that suspends and resumes the producers of every
/// queue built with it ([`FlowControlQueue`](super::FlowControlQueue), and
/// [`ThrowableQueue`](super::ThrowableQueue)s given it). Clones share the switch.
///
/// While suspended, no put into those queues completes: producers wait in `put` (or get
/// [`TryPutError::Suspended`](super::TryPutError::Suspended) from `try_put`) until
/// [`resume`](Self::resume). Consumers are never paused.
///
/// Queues built with `clear_on_suspend(true)` are emptied by each
/// [`suspend`](Self::suspend) and by [`clear`](Self::clear): what they hold is stale once
/// production stops (Faust's rebalance). Mode empties such queues (its `clear_on_resume`)
/// on `resume` and on `clear`; modo empties them on `suspend` instead, so consumers do not
/// work through stale items during the pause. As nothing enters a suspended queue, a clear
/// at resume would find nothing more.
///
/// Like Mode's, a new event starts suspended ([`new`](Self::new));
/// [`resumed`](Self::resumed) starts it active.
///
/// ```
/// use modo::flow::{FlowControlEvent, FlowControlQueue};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let flow = FlowControlEvent::resumed();
/// let queue = FlowControlQueue::builder(&flow).clear_on_suspend(true).build();
/// queue.put(1).await.unwrap();
/// queue.put(2).await.unwrap();
///
/// assert_eq!(flow.suspend(), 2); // both items were stale: dropped
/// assert!(!flow.is_active());
/// assert!(queue.try_put(3).is_err()); // producers wait while suspended
///
/// flow.resume();
/// queue.put(4).await.unwrap();
/// assert_eq!(queue.get().await, 4);
/// # }
/// ```
#[derive(Clone)]
pub struct FlowControlEvent {
    inner: Arc<Inner>,
}

struct Inner {
    /// `true` while production is allowed.
    active: watch::Sender<bool>,
    /// The queues to empty on suspend; weak, so a dropped queue leaves by itself.
    managed: Mutex<Vec<Weak<dyn Managed>>>,
}

impl Default for FlowControlEvent {
    /// [`FlowControlEvent::new`]: suspended.
    fn default() -> Self {
        Self::new()
    }
}

impl FlowControlEvent {
    /// An event that starts suspended (Mode's default `initially_suspended=True`): producers
    /// wait until the first [`resume`](Self::resume).
    pub fn new() -> Self {
        Self::with_state(false)
    }

    /// An event that starts active (Mode's `initially_suspended=False`).
    pub fn resumed() -> Self {
        Self::with_state(true)
    }

    fn with_state(active: bool) -> Self {
        FlowControlEvent {
            inner: Arc::new(Inner {
                active: watch::Sender::new(active),
                managed: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Suspends production into the queues, then empties the ones built with
    /// `clear_on_suspend(true)`; returns how many items they dropped. Producers waiting for
    /// room in those queues get their item back
    /// ([`PutError::Cleared`](super::PutError::Cleared)).
    pub fn suspend(&self) -> usize {
        self.inner.active.send_replace(false);
        self.clear()
    }

    /// Resumes production: waiting producers go on.
    pub fn resume(&self) {
        self.inner.active.send_replace(true);
    }

    /// Whether production is allowed (not suspended).
    pub fn is_active(&self) -> bool {
        *self.inner.active.borrow()
    }

    /// Empties the queues built with `clear_on_suspend(true)` now, suspended or not (Mode's
    /// `clear`); returns how many items they dropped.
    pub fn clear(&self) -> usize {
        let queues: Vec<Arc<dyn Managed>> = {
            let mut managed = self.lock();
            managed.retain(|q| q.strong_count() > 0);
            managed.iter().filter_map(Weak::upgrade).collect()
        };
        // Outside the lock: clearing drops items, whose `Drop` may run any code.
        queues.iter().map(|q| q.clear_managed()).sum()
    }

    /// Waits until production is allowed (Mode's `acquire`); at once when it is.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn acquire(&self) {
        if self.is_active() {
            return;
        }
        let mut active = self.inner.active.subscribe();
        // The sender lives as long as `self`: `wait_for` cannot fail here.
        let _ = active.wait_for(|on| *on).await;
    }

    pub(super) fn manage(&self, queue: Weak<dyn Managed>) {
        let mut managed = self.lock();
        managed.retain(|q| q.strong_count() > 0);
        managed.push(queue);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<dyn Managed>>> {
        // Only pushes and retains run under the lock; a poisoned list is still a list.
        self.inner.managed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for FlowControlEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowControlEvent")
            .field("active", &self.is_active())
            .field("managed_queues", &self.lock().len())
            .finish()
    }
}
