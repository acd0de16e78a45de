//! The mailbox: two lanes and the protocol that keeps messages from being lost.
//!
//! - The **control lane** (unbounded) carries [`Lifecycle`] requests and internal notices. The
//!   actor serves it before any user message: it checks a counter of control sends between
//!   user messages and, when both lanes are empty, parks on both, control first.
//! - The **user lane** (bounded) carries boxed envelopes of typed messages. A full lane makes
//!   `tell` wait, so a fast producer cannot exhaust memory. Senders push under a lock; the
//!   actor takes everything queued in one swap and works through that batch without the lock,
//!   so producer and consumer meet once per batch, not once per message. A slot frees when its
//!   message is taken out of the batch to be handled: the capacity bounds the messages waiting
//!   (in the lane and in the batch), plus the one being handled. The user lane
//!   closes when the service stops for good, at the start of that stop; the control lane stays
//!   open until the very end, for the notices of the children it stops.
//!
//! Both lanes live as long as the actor's shared cell (the batch in the actor's runner, which
//! lives as long as the actor), not as long as one run of the actor: a restart keeps the
//! mailbox and everything queued in it.
//!
//! # Invariants
//! - A message is handled, or handed back to its sender, or counted as a dead letter. Never
//!   dropped silently. A lane's `closed` flag is set under its lock, so a send either lands
//!   before the close (and the close drains it, with the actor's batch) or is refused with its
//!   message.
//! - A sender waiting for room in the user lane waits on the lane's own notification with its
//!   message in hand. Freed slots are offered to waiters an eighth of the lane at a time, and
//!   always before the actor waits for anything (parks, yields its thread, awaits a pending
//!   handler, runs a lifecycle step): no sender waits for a free slot while the actor is not
//!   running a handler. The close wakes them all and each gets its message back. No sender
//!   waits for room in a lane that is closed.
//! - The actor parks only after it registered its waker and raised `parked`; a user send that
//!   lands after the actor looked finds `parked` raised and wakes it (both sides use
//!   sequentially consistent operations on `parked` and the lane's count).
//! - A control request whose actor is gone resolves at once: its reply sender is dropped and the
//!   waiter reads the reason from the cell.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll};

use futures::task::AtomicWaker;
use tokio::sync::{Notify, oneshot};
use uuid::Uuid;

use super::error::{CrashReason, Error};
use super::runner::{self, Inline};
use super::watch::Down;

mod dormant;

use dormant::Dormant;
pub(crate) use dormant::{Launch, ParkedTask};

/// Default capacity of a service's user lane.
///
/// Chosen as the size where a raw flume channel reaches its full throughput; change it per
/// service with [`Service::mailbox_capacity`](crate::Service::mailbox_capacity) or per spawn
/// with [`ServiceSpec::mailbox_capacity`](crate::ServiceSpec::mailbox_capacity).
pub const DEFAULT_MAILBOX_CAPACITY: usize = 1024;

/// A lifecycle request, delivered on a service's control lane ahead of every user message.
///
/// Send one with [`ServiceRef::send_lifecycle`](crate::ServiceRef::send_lifecycle), or use the
/// awaiting methods on [`Addr`](crate::Addr) (`start`, `stop`, `restart`, `crash`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Lifecycle {
    /// Start the service if it is not running.
    Start,
    /// Stop the service for good.
    Stop,
    /// Crash the service (and its children) with this reason.
    Crash(CrashReason),
    /// Stop the service, reset it, and start it again; the mailbox is kept.
    Restart,
}

/// Answers a control request: `Ok(true)` if it changed something, `Ok(false)` if it had
/// nothing to do (for `maybe_start`).
pub(crate) type Reply = oneshot::Sender<Result<bool, Error>>;

/// What travels on the control lane.
pub(crate) enum Control {
    Start { reply: Option<Reply> },
    Stop(Stop),
    Crash(CrashReason),
    Restart { reply: Option<Reply> },
    Notice(Notice),
}

/// A stop request. Built in one place, here, by what it means.
pub(crate) struct Stop {
    /// Close the mailbox and end the actor's task after the stop sequence. A parent
    /// restarting stops its children without terminating them.
    pub(crate) terminate: bool,
    /// Set when the stop is part of a parent's crash: the child is marked crashed too.
    pub(crate) cause: Option<CrashReason>,
    pub(crate) reply: Option<Reply>,
    /// A running child stopped by anyone but its parent lets a parent that decides its stops
    /// choose what happens next (a supervisor restarts a permanent child) before it ends.
    pub(crate) ask_parent: bool,
    /// A parent stopping its children for good as it ends has already dropped them from its
    /// children: they need not tell it they exited.
    pub(crate) parent_let_go: bool,
}

impl Stop {
    /// A stop for good. `ask_parent`: it comes from anyone but the service's parent.
    pub(crate) fn for_good(ask_parent: bool) -> Stop {
        Stop {
            terminate: true,
            cause: None,
            reply: None,
            ask_parent,
            parent_let_go: false,
        }
    }

    /// A parent stopping its child as part of its own stop (`terminate`) or restart.
    pub(crate) fn by_parent(terminate: bool) -> Stop {
        Stop {
            terminate,
            cause: None,
            reply: None,
            ask_parent: false,
            parent_let_go: terminate,
        }
    }

    /// The child is stopped because its parent crashed with `cause`.
    pub(crate) fn because(mut self, cause: Option<CrashReason>) -> Stop {
        self.cause = cause;
        self
    }

    /// Answer on `reply` once the stop has finished.
    pub(crate) fn reply_to(mut self, reply: Reply) -> Stop {
        self.reply = Some(reply);
        self
    }
}

/// Notices a service receives about its children.
#[derive(Debug)]
pub(crate) enum Notice {
    /// A child stopped for good (its parent drops it from its children).
    Exited { child: Uuid },
    /// A child crashed and waits for its parent's decision. `run` is the child's restart count
    /// when it crashed: a notice about an earlier run (restarted since) is stale.
    Crashed {
        child: Uuid,
        reason: CrashReason,
        run: u32,
    },
    /// A running child was stopped (not by its parent) and waits for its parent's decision.
    Stopped { child: Uuid, run: u32 },
    /// A service this one watches is down.
    Down(Box<Down>),
    /// This service's tree was adopted (or its parent's was): its depth changed, its
    /// children's depths follow.
    Reparented,
}

impl Control {
    /// The control message for a lifecycle request nobody waits on.
    pub(crate) fn from_lifecycle(l: Lifecycle) -> Control {
        match l {
            Lifecycle::Start => Control::Start { reply: None },
            Lifecycle::Stop => Control::Stop(Stop::for_good(true)),
            Lifecycle::Crash(reason) => Control::Crash(reason),
            Lifecycle::Restart => Control::Restart { reply: None },
        }
    }
}

/// Locks a mutex, ignoring poisoning: nothing panics while holding these locks.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The control lane: a short queue behind a lock (control messages are rare), the count of
/// sends that lets the actor probe it with one atomic load, and the actor's doorbell: the
/// waker a parked actor registers, rung by every control send and by a user send that finds
/// the actor parked.
pub(crate) struct ControlLane {
    queue: Mutex<Slots>,
    sent: AtomicUsize,
    /// Set under the queue's lock, so a send either lands before the close (and is drained by
    /// it) or is refused.
    closed: AtomicBool,
    waker: AtomicWaker,
    /// The actor is parked waiting for a message on either lane.
    parked: AtomicBool,
}

/// The control queue: one message inline (the usual case: no allocation), more behind it.
#[derive(Default)]
struct Slots {
    first: Option<Control>,
    rest: VecDeque<Control>,
    /// The actor's task while it has no tokio task of its own.
    dormant: Dormant,
}

/// What a control send does to wake the actor.
enum Woke {
    Wake,
    Launch(Launch),
    Drive(ParkedTask),
}

impl ControlLane {
    pub(crate) fn new() -> Self {
        ControlLane {
            queue: Mutex::new(Slots::default()),
            sent: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            parked: AtomicBool::new(false),
        }
    }

    /// Queues a control message and wakes the actor. Returns it if the mailbox is closed.
    pub(crate) fn send(&self, msg: Control) -> Result<(), Control> {
        self.send_inner(msg, false).map(|_| ())
    }

    /// [`send`](Self::send) from a sender that waits for the answer: if `drive`, the actor is
    /// dormant (parked with no tokio task, see `runner::Inline`) and the sender runs on its
    /// runtime, the actor's task is handed to the sender to drive through the request instead
    /// of being launched.
    pub(crate) fn send_driven(&self, msg: Control, drive: bool) -> Result<Option<Inline>, Control> {
        self.send_inner(msg, drive)
    }

    fn send_inner(&self, msg: Control, drive: bool) -> Result<Option<Inline>, Control> {
        let woke = {
            let mut queue = lock(&self.queue);
            if self.closed.load(Ordering::Acquire) {
                return Err(msg);
            }
            if queue.first.is_none() && queue.rest.is_empty() {
                queue.first = Some(msg);
            } else {
                queue.rest.push_back(msg);
            }
            match std::mem::take(&mut queue.dormant) {
                Dormant::Unlaunched(launch) => Woke::Launch(launch),
                Dormant::Parked(task) if drive && runner::may_drive(&task.runtime) => {
                    Woke::Drive(task)
                }
                // A parked task is launched by the wake-up below.
                other => {
                    queue.dormant = other;
                    Woke::Wake
                }
            }
        };
        self.sent.fetch_add(1, Ordering::SeqCst);
        match woke {
            // Its first poll, by the sender, finds the message queued.
            Woke::Drive(task) => return Ok(Some(Inline::new(task))),
            // The actor registers before it reads `sent`: either it sees this send, or this
            // wakes it.
            Woke::Wake => self.waker.wake(),
            Woke::Launch(launch) => {
                self.waker.wake();
                // Its task finds the message queued.
                let inline = launch(None);
                debug_assert!(
                    inline.is_none(),
                    "only a launch that starts is driven inline"
                );
            }
        }
        Ok(None)
    }

    /// How many control messages were ever queued; compared with the receiver's own count.
    #[inline]
    pub(crate) fn sent(&self) -> usize {
        self.sent.load(Ordering::Acquire)
    }

    /// The oldest control message, if any.
    pub(crate) fn try_recv(&self) -> Option<Control> {
        let mut queue = lock(&self.queue);
        queue.first.take().or_else(|| queue.rest.pop_front())
    }

    /// For the actor in a pending handler: `Ready` if control messages were sent beyond the
    /// `seen` it has received, else registers to be woken by the next control send.
    pub(crate) fn poll_pending(&self, seen: usize, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.sent.load(Ordering::SeqCst) > seen {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        if self.sent.load(Ordering::SeqCst) > seen {
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// For the idle actor: `Ready` once a control message beyond `seen` or a user message is
    /// waiting, else parks (registers the waker and raises `parked`).
    pub(crate) fn poll_park(
        &self,
        seen: usize,
        cx: &mut TaskContext<'_>,
        user_waiting: impl Fn() -> bool,
    ) -> Poll<()> {
        if self.sent.load(Ordering::SeqCst) > seen || user_waiting() {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        self.parked.store(true, Ordering::SeqCst);
        if self.sent.load(Ordering::SeqCst) > seen || user_waiting() {
            self.parked.store(false, Ordering::SeqCst);
            return Poll::Ready(());
        }
        Poll::Pending
    }

    /// For a user send that just queued a message: wakes the actor if it is parked.
    #[inline]
    pub(crate) fn ring(&self) {
        if self.parked.load(Ordering::SeqCst) && self.parked.swap(false, Ordering::SeqCst) {
            self.waker.wake();
        }
    }

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the mailbox: later sends are refused. Returns the control messages left over so
    /// the actor can answer them (dropping a reply resolves its waiter).
    pub(crate) fn close(&self) -> Vec<Control> {
        let mut queue = lock(&self.queue);
        self.closed.store(true, Ordering::Release);
        // Only the actor's own task closes its lane: it is running, so its dormant state stays.
        // It will not park again: the waker it registered goes (a dormant actor's waker is its
        // own cell, which it must not keep alive).
        drop(self.waker.take());
        let first = queue.first.take();
        let rest = std::mem::take(&mut queue.rest);
        first.into_iter().chain(rest).collect()
    }
}

/// Counts a sender waiting for room for as long as it waits, however the wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enlist(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The shared side of the bounded lane of user envelopes (the actor keeps the batch it took).
///
/// A sender that finds it full waits for room on the lane's own `room` notification, holding
/// on to its message. So closing the lane can release every waiting sender with its message in
/// hand: nothing waits for room that will never come, and nothing is swallowed.
///
/// The count of waiting messages is split in two, so producers and the actor do not write
/// the same cache line for every message: `pushed` (written by senders, under the lock) and
/// `popped` (written by the actor alone, a cache line away from the senders' fields). A sender
/// does not read `popped` for every message either: under the lock, senders share `credit`, a
/// lower bound of the free slots, and recount it from `popped` only when it runs out. `popped`
/// only grows, so the true room is never less than the credit, and "full" is said only after a
/// fresh count. Waiting senders are woken for freed slots a few at a time (see
/// [`offer_room`](Self::offer_room)), not once per message.
#[repr(C)] // the order below is the layout
pub(crate) struct UserLane<E> {
    // What senders touch for every message.
    queue: Mutex<Queue<E>>,
    /// Messages ever queued. Written under the lock.
    pushed: AtomicUsize,
    /// Set under the lock once the service stops for good: sends are refused and waiting
    /// senders released.
    closed: AtomicBool,
    // Touched when the credit runs out or a sender waits: they keep the two ends apart.
    capacity: usize,
    room: Notify,
    /// Senders waiting for room: `room` is signalled only while there are some.
    waiting: AtomicUsize,
    _apart: [u8; APART],
    // What the actor touches for every message, a cache line away from the senders' fields.
    /// Messages taken for handling (or dropped by the close). Written by the actor alone.
    popped: AtomicUsize,
    /// `popped` when the free slots were last offered to waiting senders. The actor's own.
    offered: AtomicUsize,
}

/// Padding that puts `popped` at least a cache line (64 bytes) past `closed`.
const APART: usize = 16;

// Checked on every build: the actor's count never shares a cache line with the senders' fields.
const _: () = assert!(
    std::mem::offset_of!(UserLane<()>, popped) >= std::mem::offset_of!(UserLane<()>, closed) + 64
);

/// What senders share under the lane's lock.
struct Queue<E> {
    items: VecDeque<E>,
    /// Free slots known to senders: never more than the true room.
    credit: usize,
}

impl<E> UserLane<E> {
    /// A lane of `capacity` (at least 1); `usize::MAX` means unbounded (the registry's lane).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        UserLane {
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                credit: capacity,
            }),
            pushed: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            capacity,
            room: Notify::new(),
            waiting: AtomicUsize::new(0),
            _apart: [0; APART],
            popped: AtomicUsize::new(0),
            offered: AtomicUsize::new(0),
        }
    }

    /// Waits for room and queues `msg`. `Err` hands it back when the lane is closed, also
    /// while waiting.
    pub(crate) async fn send(&self, msg: E, bell: &ControlLane) -> Result<(), E> {
        // Room now: no future, no registration.
        let mut msg = match self.try_send(msg, bell) {
            Ok(()) => return Ok(()),
            Err((msg, true)) => msg,
            Err((msg, false)) => return Err(msg),
        };
        loop {
            let room = self.room.notified();
            let mut room = std::pin::pin!(room);
            // Registered before the count goes up and before the last try: a slot freed or a
            // close after this point wakes us.
            room.as_mut().enable();
            let _waiting = Waiting::enlist(&self.waiting);
            msg = match self.try_send(msg, bell) {
                Ok(()) => return Ok(()),
                Err((msg, true)) => msg,
                Err((msg, false)) => return Err(msg),
            };
            room.await;
        }
    }

    /// Queues `msg` if there is room now, and wakes the actor if it is parked. `Err((msg,
    /// full))`: `full` tells a full lane from a closed one.
    #[inline]
    pub(crate) fn try_send(&self, msg: E, bell: &ControlLane) -> Result<(), (E, bool)> {
        {
            let mut queue = lock(&self.queue);
            if self.closed.load(Ordering::Relaxed) {
                return Err((msg, false));
            }
            if queue.credit == 0 {
                queue.credit = self.room_now();
                if queue.credit == 0 {
                    return Err((msg, true));
                }
            }
            queue.credit -= 1;
            queue.items.push_back(msg);
            self.pushed.fetch_add(1, Ordering::SeqCst);
        }
        bell.ring();
        Ok(())
    }

    /// The free slots, counted afresh. Called under the lock, so `pushed` is stable.
    fn room_now(&self) -> usize {
        // Paired with the actor's store of `popped`, fence, then load of `waiting` (see
        // `offer_room`): a sender that enlisted as waiting before this count either sees the
        // slots freed or is seen waiting.
        let popped = self.popped.load(Ordering::SeqCst);
        let waiting = self.pushed.load(Ordering::Relaxed).wrapping_sub(popped);
        self.capacity.saturating_sub(waiting)
    }

    /// Queues `msg` now even if the lane is full (one of the service's own markers, sent from
    /// its own task, which cannot wait for room). `Err` hands it back if the lane is closed.
    pub(crate) fn push_past_capacity(&self, msg: E, bell: &ControlLane) -> Result<(), E> {
        {
            let mut queue = lock(&self.queue);
            if self.closed.load(Ordering::Relaxed) {
                return Err(msg);
            }
            // It takes a slot like any message, so the credit stays a lower bound.
            queue.credit = queue.credit.saturating_sub(1);
            queue.items.push_back(msg);
            self.pushed.fetch_add(1, Ordering::SeqCst);
        }
        bell.ring();
        Ok(())
    }

    /// Moves everything queued into the actor's `batch` (which must be empty). `false` if
    /// nothing was queued.
    #[inline]
    pub(crate) fn take_batch(&self, batch: &mut VecDeque<E>) -> bool {
        if !self.has_waiting() {
            return false;
        }
        let mut queue = lock(&self.queue);
        std::mem::swap(&mut queue.items, batch);
        !batch.is_empty()
    }

    /// For the actor with its batch empty: whether a message is waiting in the lane.
    #[inline]
    pub(crate) fn has_waiting(&self) -> bool {
        // `popped` is the actor's own; `pushed` pairs with the sender's load of `parked`.
        self.pushed.load(Ordering::SeqCst) != self.popped.load(Ordering::Relaxed)
    }

    /// A message was taken out of the actor's batch to be handled: its slot frees (so the
    /// capacity counts waiting messages, not the one in flight). Freed slots are offered to
    /// waiting senders an eighth of the lane at a time, and by [`offer_room`](Self::offer_room).
    #[inline]
    pub(crate) fn taken(&self) {
        // The actor is the only writer: a plain store on its own line, no read-modify-write
        // on a line the senders write.
        let popped = self.popped.load(Ordering::Relaxed).wrapping_add(1);
        self.popped.store(popped, Ordering::Release);
        // An eighth of the lane (a shift: this runs for every message).
        let offer_every = (self.capacity >> 3).max(1);
        if popped.wrapping_sub(self.offered.load(Ordering::Relaxed)) >= offer_every {
            self.offer_room();
        }
    }

    /// Offers the slots freed since the last offer to the senders waiting for room, if any.
    /// The actor calls it before it waits for anything (parks, yields, awaits a pending
    /// handler, runs a lifecycle step), so no sender waits for a slot that is already free
    /// while the actor is not running a handler.
    #[inline]
    pub(crate) fn offer_room(&self) {
        let popped = self.popped.load(Ordering::Relaxed);
        let freed = popped.wrapping_sub(self.offered.load(Ordering::Relaxed));
        if freed == 0 {
            return;
        }
        self.offered.store(popped, Ordering::Relaxed);
        // Orders the stores of `popped` before the load of `waiting`. Paired with a sender's
        // enlisting then recounting (both sequentially consistent): either this sees the
        // sender waiting, or the sender's recount sees the slots.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.waiting.load(Ordering::Relaxed) > 0 {
            if freed == 1 {
                self.room.notify_one();
            } else {
                self.room.notify_waiters();
            }
        }
    }

    /// Closes the lane for good: later sends are refused, senders waiting for room are
    /// released with their message, and what is queued (here and in the actor's `batch`) is
    /// dropped. Returns how many of those `counts` (the dead letters: modo's own markers are
    /// not). Closing again drains again (nothing, normally). Called by the actor.
    pub(crate) fn close(&self, batch: &mut VecDeque<E>, counts: impl Fn(&E) -> bool) -> usize {
        let taken = {
            let mut queue = lock(&self.queue);
            self.closed.store(true, Ordering::Relaxed);
            // Nothing is waiting any more: everything pushed counts as taken.
            let pushed = self.pushed.load(Ordering::Relaxed);
            self.popped.store(pushed, Ordering::SeqCst);
            self.offered.store(pushed, Ordering::Relaxed);
            // Dropped outside the lock: an envelope's drop answers its ask.
            std::mem::take(&mut queue.items)
        };
        // A sender counts itself waiting before its last try under the lock, so one that
        // missed `closed` is counted here (as in `taken`).
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.room.notify_waiters();
        }
        let n = taken
            .iter()
            .chain(batch.iter())
            .filter(|e| counts(e))
            .count();
        batch.clear();
        drop(taken);
        n
    }

    /// How many messages are waiting, in the lane and in the actor's batch (not counting the
    /// one being handled).
    pub(crate) fn len(&self) -> usize {
        // `popped` first: `pushed` read after it is at least as large.
        let popped = self.popped.load(Ordering::Acquire);
        self.pushed.load(Ordering::Acquire).wrapping_sub(popped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closed_lanes_hand_messages_back() {
        let control = ControlLane::new();
        let user = UserLane::<u32>::new(2);
        let mut batch = VecDeque::new();
        assert_eq!(user.send(1, &control).await, Ok(()));
        assert!(control.close().is_empty());
        assert!(control.send(Control::Start { reply: None }).is_err());
        // What was queued before the close is dead-lettered by it.
        assert_eq!(user.close(&mut batch, |_| true), 1);
        assert_eq!(user.send(2, &control).await, Err(2));
        assert_eq!(user.try_send(3, &control), Err((3, false)));
    }

    #[tokio::test]
    async fn full_lane_reports_full() {
        let control = ControlLane::new();
        let user = UserLane::<u32>::new(1);
        user.try_send(1, &control).unwrap();
        assert_eq!(user.try_send(2, &control), Err((2, true)));
        assert_eq!(user.len(), 1);
    }

    #[tokio::test]
    async fn a_slot_frees_when_its_message_is_taken_out_of_the_batch_for_handling() {
        let control = ControlLane::new();
        let user = UserLane::<u32>::new(2);
        let mut batch = VecDeque::new();
        user.try_send(1, &control).unwrap();
        user.try_send(2, &control).unwrap();
        assert!(user.take_batch(&mut batch));
        assert_eq!(batch.len(), 2);
        // Taken into the batch, not yet out of it: still no room.
        assert_eq!(user.try_send(3, &control), Err((3, true)));
        assert_eq!(batch.pop_front(), Some(1));
        user.taken();
        user.try_send(3, &control).unwrap();
        // The close counts the batch and the lane.
        assert_eq!(user.close(&mut batch, |_| true), 2);
        assert!(batch.is_empty());
    }

    #[tokio::test]
    async fn closing_releases_senders_waiting_for_room() {
        let control = std::sync::Arc::new(ControlLane::new());
        let user = std::sync::Arc::new(UserLane::<u32>::new(1));
        user.try_send(1, &control).unwrap();
        let waiter = tokio::spawn({
            let (user, control) = (user.clone(), control.clone());
            async move { user.send(2, &control).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert_eq!(user.close(&mut VecDeque::new(), |_| true), 1);
        assert_eq!(waiter.await.unwrap(), Err(2));
    }

    #[tokio::test]
    async fn a_handled_message_lets_a_waiting_sender_in() {
        let control = std::sync::Arc::new(ControlLane::new());
        let user = std::sync::Arc::new(UserLane::<u32>::new(1));
        let mut batch = VecDeque::new();
        user.try_send(1, &control).unwrap();
        let waiter = tokio::spawn({
            let (user, control) = (user.clone(), control.clone());
            async move { user.send(2, &control).await }
        });
        tokio::task::yield_now().await;
        assert!(user.take_batch(&mut batch));
        assert_eq!(batch.pop_front(), Some(1));
        user.taken();
        assert_eq!(waiter.await.unwrap(), Ok(()));
        assert!(user.take_batch(&mut batch));
        assert_eq!(batch.pop_front(), Some(2));
    }

    #[tokio::test]
    async fn a_marker_pushed_past_capacity_takes_a_slot_from_the_credit() {
        let control = ControlLane::new();
        let user = UserLane::<u32>::new(2);
        user.try_send(1, &control).unwrap();
        user.push_past_capacity(0, &control).unwrap();
        // Senders still held credit for one slot; the marker took it.
        assert_eq!(user.try_send(3, &control), Err((3, true)));
        assert_eq!(user.len(), 2);
    }

    /// Producers waiting for room and an actor taking, parking and offering as the runner
    /// does, on two worker threads: every message arrives, in each producer's order, and
    /// nobody waits forever (a lost wake-up would end in the timeout).
    #[test]
    fn senders_and_the_actor_on_two_threads_lose_no_message_and_no_wake_up() {
        const PRODUCERS: u32 = 4;
        const EACH: u32 = 3_000;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        for capacity in [1, 2, 3, 9, 64] {
            let control = std::sync::Arc::new(ControlLane::new());
            let user = std::sync::Arc::new(UserLane::<(u32, u32)>::new(capacity));
            let producers: Vec<_> = (0..PRODUCERS)
                .map(|p| {
                    let (user, control) = (user.clone(), control.clone());
                    rt.spawn(async move {
                        for i in 0..EACH {
                            user.send((p, i), &control).await.unwrap();
                        }
                    })
                })
                .collect();
            let actor = rt.spawn({
                let (user, control) = (user.clone(), control.clone());
                async move {
                    let mut batch = VecDeque::new();
                    let mut next = [0u32; PRODUCERS as usize];
                    let mut left = PRODUCERS * EACH;
                    while left > 0 {
                        if let Some((p, i)) = batch.pop_front() {
                            user.taken();
                            assert_eq!(i, next[p as usize], "producer {p}'s order");
                            next[p as usize] += 1;
                            left -= 1;
                            if left.is_multiple_of(97) {
                                user.offer_room();
                                tokio::task::yield_now().await;
                            }
                        } else if !user.take_batch(&mut batch) {
                            user.offer_room();
                            std::future::poll_fn(|cx| {
                                control.poll_park(0, cx, || user.has_waiting())
                            })
                            .await;
                        }
                    }
                }
            });
            rt.block_on(async {
                let all = async {
                    for p in producers {
                        p.await.unwrap();
                    }
                    actor.await.unwrap();
                };
                tokio::time::timeout(std::time::Duration::from_secs(60), all)
                    .await
                    .unwrap_or_else(|_| panic!("capacity {capacity}: a lost wake-up"));
            });
            assert_eq!(user.len(), 0);
        }
    }

    /// One step of the actor or a sender, for the model below.
    #[derive(Debug, Clone)]
    enum Step {
        Send,
        Marker,
        Handle,
        Close,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        prop_oneof![
            6 => Just(Step::Send),
            1 => Just(Step::Marker),
            5 => Just(Step::Handle),
            1 => Just(Step::Close),
        ]
    }

    proptest::proptest! {
        /// Whatever the order of sends, markers, handled messages and a close, `try_send`
        /// says full exactly when the messages waiting (in the lane and the batch) fill the
        /// capacity, `len` counts them, and messages come out in the order they went in.
        #[test]
        fn the_lane_matches_a_plain_count(
            capacity in 1usize..6,
            steps in proptest::collection::vec(step(), 0..80),
        ) {
            let control = ControlLane::new();
            let user = UserLane::<u32>::new(capacity);
            let mut batch = VecDeque::new();
            let (mut waiting, mut closed, mut next, mut expect) = (0usize, false, 0u32, 0u32);
            for s in steps {
                match s {
                    Step::Send => {
                        let res = user.try_send(next, &control);
                        match (closed, waiting >= capacity) {
                            (true, _) => proptest::prop_assert_eq!(res, Err((next, false))),
                            (false, true) => proptest::prop_assert_eq!(res, Err((next, true))),
                            (false, false) => {
                                proptest::prop_assert_eq!(res, Ok(()));
                                waiting += 1;
                                next += 1;
                            }
                        }
                    }
                    Step::Marker => {
                        let res = user.push_past_capacity(next, &control);
                        proptest::prop_assert_eq!(res.is_ok(), !closed);
                        if !closed {
                            waiting += 1;
                            next += 1;
                        }
                    }
                    Step::Handle => {
                        if batch.is_empty() {
                            proptest::prop_assert_eq!(user.has_waiting(), waiting > 0);
                            user.take_batch(&mut batch);
                        }
                        if let Some(m) = batch.pop_front() {
                            user.taken();
                            proptest::prop_assert_eq!(m, expect);
                            expect += 1;
                            waiting -= 1;
                        }
                    }
                    Step::Close => {
                        proptest::prop_assert_eq!(user.close(&mut batch, |_| true), waiting);
                        closed = true;
                        waiting = 0;
                        expect = next;
                    }
                }
                proptest::prop_assert_eq!(user.len(), waiting);
            }
        }
    }

    #[test]
    fn control_sends_are_counted_and_kept_in_order() {
        let control = ControlLane::new();
        assert_eq!(control.sent(), 0);
        control.send(Control::Start { reply: None }).ok().unwrap();
        control.send(Control::Restart { reply: None }).ok().unwrap();
        control.send(Control::Start { reply: None }).ok().unwrap();
        assert_eq!(control.sent(), 3);
        assert!(matches!(control.try_recv(), Some(Control::Start { .. })));
        assert!(matches!(control.try_recv(), Some(Control::Restart { .. })));
        control.send(Control::Restart { reply: None }).ok().unwrap();
        assert!(matches!(control.try_recv(), Some(Control::Start { .. })));
        assert_eq!(control.close().len(), 1);
        assert!(control.try_recv().is_none());
    }
}
