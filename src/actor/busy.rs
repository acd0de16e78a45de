//! Who is running on each thread: for the service's own code (a handle refusing to await its
//! own actor, a panic's log line naming its service: see `cell::with_current`), and for a
//! blocking detector. Every service's task and background task is wrapped in [`scoped`], which
//! makes its service the thread's current one for the length of each poll.
//!
//! For the detector: while one listens, every service's
//! task (and each of its background tasks) notes on its thread's slot which service it is and
//! since when, for the length of each poll. A detector on its own OS thread reads the slots: a
//! note older than its threshold names the service whose code has not yielded, blocking that
//! thread, even when the runtime's other threads run on (the case a heartbeat cannot see).
//!
//! One [`Board`] per System (in its [`Observe`](super::observe::Observe)); each thread that
//! polls a service's task while someone listens gets one slot on it, kept in a thread-local
//! cache and dropped with the thread.
//!
//! # Invariants
//! - Nobody listening: a poll costs one relaxed atomic load more than setting the current
//!   service (one thread-local swap in, one out), nothing else (no clock read, no lock).
//! - The current service is put back as the poll ends, also when it unwinds, with the one of
//!   an enclosing poll (a spawn driven inline) restored
//!   (`a_poll_sets_its_service_and_puts_back_the_one_before`, `a_poll_that_panics_puts_both_back`).
//! - A note lives exactly as long as the poll it describes: a guard takes it off, also when
//!   the poll unwinds, and puts back the note of an enclosing poll (a runtime driven inside a
//!   task).
//! - A slot's lock is taken by its own thread twice per noted poll and by the detector once
//!   per look: never across an await, never contended for long.

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

use super::addr::ServiceRef;
use super::cell::{Current, enter_scope};

/// What a note says: the service, and its background task if it is one.
pub(crate) struct Who {
    pub(crate) service: ServiceRef,
    /// `None`: the service's own task (a hook or a handler).
    pub(crate) task: Option<Arc<str>>,
}

/// A poll in progress on some thread.
#[derive(Clone)]
pub(crate) struct Note {
    pub(crate) who: Arc<Who>,
    pub(crate) since: Instant,
}

/// What a look at the board finds on one slot.
pub(crate) struct Seen {
    /// Which slot: the same poll seen twice has the same slot and `since`.
    pub(crate) slot: usize,
    pub(crate) thread: Option<Arc<str>>,
    pub(crate) note: Note,
}

/// One thread's slot.
struct Slot {
    thread: Option<Arc<str>>,
    note: Mutex<Option<Note>>,
}

/// The System's board of slots.
#[derive(Default)]
pub(crate) struct Board {
    listeners: AtomicUsize,
    slots: Mutex<Vec<Weak<Slot>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// This thread's slot on each board it has polled for, by board.
    static SLOTS: RefCell<Vec<(Weak<Board>, Arc<Slot>)>> = const { RefCell::new(Vec::new()) };
}

impl Board {
    /// Whether someone listens: polls are noted.
    #[inline]
    pub(crate) fn is_on(&self) -> bool {
        self.listeners.load(Ordering::Relaxed) > 0
    }

    /// Starts listening; polls are noted until the guard is dropped (and no one else listens).
    pub(crate) fn listen(self: &Arc<Self>) -> Listening {
        self.listeners.fetch_add(1, Ordering::Relaxed);
        Listening(self.clone())
    }

    /// The polls in progress now, on every thread.
    pub(crate) fn look(&self) -> Vec<Seen> {
        let mut slots = lock(&self.slots);
        // Threads that ended took their slot with them.
        slots.retain(|s| s.strong_count() > 0);
        slots
            .iter()
            .filter_map(Weak::upgrade)
            .filter_map(|slot| {
                let note = lock(&slot.note).clone()?;
                Some(Seen {
                    slot: Arc::as_ptr(&slot) as usize,
                    thread: slot.thread.clone(),
                    note,
                })
            })
            .collect()
    }

    /// Notes `who` on this thread's slot until the guard is dropped.
    fn enter(self: &Arc<Self>, who: &Arc<Who>) -> Entered {
        let slot = self.slot();
        let note = Note {
            who: who.clone(),
            since: Instant::now(),
        };
        let before = lock(&slot.note).replace(note);
        Entered { slot, before }
    }

    /// This thread's slot on this board, made and registered at its first use.
    fn slot(self: &Arc<Self>) -> Arc<Slot> {
        SLOTS.with(|slots| {
            let mut slots = slots.borrow_mut();
            if let Some((_, slot)) = slots.iter().find(|(b, _)| b.as_ptr() == Arc::as_ptr(self)) {
                return slot.clone();
            }
            // Boards that are gone need no slot any more.
            slots.retain(|(b, _)| b.strong_count() > 0);
            let slot = Arc::new(Slot {
                thread: std::thread::current().name().map(Arc::from),
                note: Mutex::new(None),
            });
            lock(&self.slots).push(Arc::downgrade(&slot));
            slots.push((Arc::downgrade(self), slot.clone()));
            slot
        })
    }
}

/// Listening to a board (see [`Board::listen`]).
pub(crate) struct Listening(Arc<Board>);

impl Drop for Listening {
    fn drop(&mut self) {
        self.0.listeners.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A note on a slot, taken off when dropped.
struct Entered {
    slot: Arc<Slot>,
    before: Option<Note>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        *lock(&self.slot.note) = self.before.take();
    }
}

/// `fut` in `current`'s scope: during each of its polls the thread's current service is
/// `current` (see `cell::with_current`), and while someone listens on `board` the poll is noted
/// on it. `task`: the background task's name, `None` for the service's own task. One wrapper
/// for both, so a poll swaps one thread-local and the task holds the service's handle once.
///
/// A struct, not an `async fn`: an `async fn` would keep its argument and the pinned copy it
/// polls side by side, twice the runner's size in every actor's task.
pub(crate) fn scoped<F: Future>(
    current: Current,
    board: Option<Arc<Board>>,
    task: Option<Arc<str>>,
    fut: F,
) -> Scoped<F> {
    Scoped {
        fut,
        current: Some(current),
        board,
        task,
        who: None,
    }
}

pin_project_lite::pin_project! {
    /// See [`scoped`].
    pub(crate) struct Scoped<F> {
        #[pin]
        fut: F,
        // In the thread-local during a poll, here between polls.
        current: Option<Current>,
        // `None` on a service's own thread: it is there to be blocked.
        board: Option<Arc<Board>>,
        task: Option<Arc<str>>,
        // Made the first time a poll is noted: a spawn allocates nothing for it.
        who: Option<Arc<Who>>,
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let _noted = match this.board {
            Some(board) if board.is_on() => {
                if this.who.is_none()
                    && let Some(current) = this.current.as_ref()
                {
                    *this.who = Some(Arc::new(Who {
                        service: current.service.clone(),
                        task: this.task.clone(),
                    }));
                }
                this.who.as_ref().map(|who| board.enter(who))
            }
            _ => None,
        };
        // Put back after the poll, however it ends.
        let _scope = enter_scope(this.current);
        this.fut.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::panic::AssertUnwindSafe;
    use std::task::{Context, Poll};

    use super::*;
    use crate::actor::cell::current_service;

    struct Idle;
    impl crate::Service for Idle {}

    fn current(service: &ServiceRef) -> Current {
        Current {
            service: service.clone(),
            own_task: true,
        }
    }

    fn current_id() -> Option<uuid::Uuid> {
        current_service().map(|s| s.id())
    }

    /// A scope polled inside another (a spawn driven inline) is current for its poll only.
    #[tokio::test]
    async fn a_poll_sets_its_service_and_puts_back_the_one_before() {
        let system = crate::System::new();
        let a = system.spawn(Idle).await.expect("spawn").service_ref();
        let b = system.spawn(Idle).await.expect("spawn").service_ref();
        let inner = scoped(current(&b), None, None, async { current_id() });
        let outer = scoped(current(&a), None, None, async {
            let before = current_id();
            let inside = inner.await;
            (before, inside, current_id())
        });
        assert_eq!(current_id(), None);
        let seen = outer.await;
        assert_eq!(seen, (Some(a.id()), Some(b.id()), Some(a.id())));
        assert_eq!(current_id(), None);
        system.shutdown().await.expect("shutdown");
    }

    /// A poll that unwinds leaves the thread as it found it, and the scope keeps its service.
    #[tokio::test]
    async fn a_poll_that_panics_puts_both_back() {
        let system = crate::System::new();
        let a = system.spawn(Idle).await.expect("spawn").service_ref();
        let mut polls = 0;
        let fut = std::future::poll_fn(move |_| {
            polls += 1;
            assert!(polls > 1, "first poll panics");
            Poll::Ready(current_id())
        });
        let mut fut = Box::pin(scoped(current(&a), None, None, fut));
        let mut cx = Context::from_waker(futures::task::noop_waker_ref());
        let first = std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx)));
        assert!(first.is_err());
        assert_eq!(current_id(), None);
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(Some(a.id())));
        system.shutdown().await.expect("shutdown");
    }
}
