//! Who is running on each thread, for a blocking detector: while one listens, every service's
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
//! - Nobody listening: a poll costs one relaxed atomic load more, nothing else (no clock
//!   read, no thread-local, no lock).
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

/// `fut`, each of whose polls is noted on `board` as `who`'s while someone listens.
///
/// A struct, not an `async fn`: an `async fn` would keep its argument and the pinned copy it
/// polls side by side, twice the runner's size in every actor's task.
pub(crate) fn watched<F: Future>(board: Arc<Board>, who: Who, fut: F) -> Watched<F> {
    Watched {
        fut,
        board,
        // Shared with the notes only once one is written: a spawn allocates nothing for it.
        who: Shared::Own(Some(who)),
    }
}

pin_project_lite::pin_project! {
    /// See [`watched`].
    pub(crate) struct Watched<F> {
        #[pin]
        fut: F,
        board: Arc<Board>,
        who: Shared,
    }
}

impl<F: Future> Future for Watched<F> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        if !this.board.is_on() {
            return this.fut.poll(cx);
        }
        // Taken off after the poll, however it ends.
        let _noted = this.board.enter(this.who.shared());
        this.fut.poll(cx)
    }
}

/// A `Who`, moved into an `Arc` the first time a note needs one.
enum Shared {
    Own(Option<Who>),
    Arc(Arc<Who>),
}

impl Shared {
    fn shared(&mut self) -> &Arc<Who> {
        if let Shared::Own(who) = self
            && let Some(who) = who.take()
        {
            *self = Shared::Arc(Arc::new(who));
        }
        match self {
            Shared::Arc(who) => who,
            Shared::Own(_) => unreachable!("moved into an Arc above"),
        }
    }
}
