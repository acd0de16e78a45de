//! The mailbox: two flume lanes and the protocol that keeps messages from being lost.
//!
//! - The **control lane** (unbounded) carries [`Lifecycle`] requests and internal notices. The
//!   actor serves it before any user message: it checks a counter of control sends between
//!   user messages and, when both lanes are empty, parks on both, control first.
//! - The **user lane** (bounded) carries boxed envelopes of typed messages. A full lane makes
//!   `tell` wait, so a fast producer cannot exhaust memory. The user lane closes when the
//!   service stops for good, at the start of that stop; the control lane stays open until the
//!   very end, for the notices of the children it stops.
//!
//! Both lanes live as long as the actor's shared cell, not as long as one run of the actor: a
//! restart keeps the mailbox and everything queued in it.
//!
//! # Invariants
//! - A message is handled, or handed back to its sender, or counted as a dead letter. Never
//!   dropped silently. Closing a lane sets its `closed` flag and then drains it; a sender checks
//!   `closed` before sending and again after, and drains the lane itself if it raced with the
//!   close (the receivers are never dropped while a sender exists, so nothing can be stranded).
//! - A sender waiting for room in the user lane waits on the lane's own notification with its
//!   message in hand: a freed slot wakes one waiter, the close wakes them all and each gets its
//!   message back. No sender waits for room in a lane that is closed.
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
}

impl Stop {
    /// A stop for good. `ask_parent`: it comes from anyone but the service's parent.
    pub(crate) fn for_good(ask_parent: bool) -> Stop {
        Stop {
            terminate: true,
            cause: None,
            reply: None,
            ask_parent,
        }
    }

    /// A parent stopping its child as part of its own stop (`terminate`) or restart.
    pub(crate) fn by_parent(terminate: bool) -> Stop {
        Stop {
            terminate,
            cause: None,
            reply: None,
            ask_parent: false,
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

/// The control lane: a short queue behind a lock (control messages are rare), the count of
/// sends that lets the actor probe it with one atomic load, and the actor's waker: a parked
/// actor registers it once and any control send wakes it.
pub(crate) struct ControlLane {
    queue: Mutex<VecDeque<Control>>,
    sent: AtomicUsize,
    /// Set under the queue's lock, so a send either lands before the close (and is drained by
    /// it) or is refused.
    closed: AtomicBool,
    waker: AtomicWaker,
}

impl ControlLane {
    pub(crate) fn new() -> Self {
        ControlLane {
            queue: Mutex::new(VecDeque::new()),
            sent: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        }
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<Control>> {
        // Nothing panics while holding it; a poisoned queue is still a consistent queue.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a control message. Returns it if the mailbox is already closed.
    pub(crate) fn send(&self, msg: Control) -> Result<(), Control> {
        {
            let mut queue = self.queue();
            if self.closed.load(Ordering::Acquire) {
                return Err(msg);
            }
            queue.push_back(msg);
        }
        self.sent.fetch_add(1, Ordering::SeqCst);
        // The actor registers before it reads `sent`: either it sees this send, or this wakes it.
        self.waker.wake();
        Ok(())
    }

    /// How many control messages were ever queued; compared with the receiver's own count.
    #[inline]
    pub(crate) fn sent(&self) -> usize {
        self.sent.load(Ordering::Acquire)
    }

    /// The oldest control message, if any.
    pub(crate) fn try_recv(&self) -> Option<Control> {
        self.queue().pop_front()
    }

    /// For the actor: `Ready` if control messages were sent beyond the `seen` it has received,
    /// else registers to be woken by the next send.
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

    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Closes the mailbox: later sends are refused. Returns the control messages left over so
    /// the actor can answer them (dropping a reply resolves its waiter).
    pub(crate) fn close(&self) -> VecDeque<Control> {
        let mut queue = self.queue();
        self.closed.store(true, Ordering::Release);
        std::mem::take(&mut *queue)
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

/// The bounded lane of user envelopes.
///
/// A sender that finds it full waits for room on the lane's own `room` notification, not inside
/// flume, holding on to its message. So closing the lane can release every waiting sender with
/// its message in hand: nothing waits for room that will never come, and nothing is swallowed.
pub(crate) struct UserLane<E> {
    tx: flume::Sender<E>,
    rx: flume::Receiver<E>,
    /// Set once the service stops for good: sends are refused and waiting senders released.
    closed: AtomicBool,
    /// Senders waiting for room; the receiver signals `room` only while there are some.
    waiting: AtomicUsize,
    room: Notify,
}

impl<E> UserLane<E> {
    /// A lane of `capacity`; `usize::MAX` means unbounded (the registry's lane).
    pub(crate) fn new(capacity: usize) -> Self {
        let (tx, rx) = if capacity == usize::MAX {
            flume::unbounded()
        } else {
            flume::bounded(capacity.max(1))
        };
        UserLane {
            tx,
            rx,
            closed: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            room: Notify::new(),
        }
    }

    /// Waits for room and queues `msg`. `Err` hands it back when the lane is closed, also
    /// while waiting. `Ok(n)` with `n > 0` means the send raced with the close and `n`
    /// messages (perhaps this one) had to be drained as dead letters.
    pub(crate) async fn send(&self, msg: E) -> Result<usize, E> {
        // Room now: no future, no registration.
        let mut msg = match self.try_send(msg) {
            Ok(raced) => return Ok(raced),
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
            msg = match self.try_send(msg) {
                Ok(raced) => return Ok(raced),
                Err((msg, true)) => msg,
                Err((msg, false)) => return Err(msg),
            };
            room.await;
        }
    }

    /// Queues `msg` if there is room now. `Err((msg, full))`: `full` tells a full lane from a
    /// closed one.
    pub(crate) fn try_send(&self, msg: E) -> Result<usize, (E, bool)> {
        if self.closed.load(Ordering::SeqCst) {
            return Err((msg, false));
        }
        match self.tx.try_send(msg) {
            Ok(()) => Ok(self.after_send()),
            Err(flume::TrySendError::Full(m)) => Err((m, true)),
            // The receiver lives in this struct: unreachable, but never lose the message.
            Err(flume::TrySendError::Disconnected(m)) => Err((m, false)),
        }
    }

    #[inline]
    fn after_send(&self) -> usize {
        if self.closed.load(Ordering::SeqCst) {
            self.drain()
        } else {
            0
        }
    }

    /// The next message, if one is queued.
    #[inline]
    pub(crate) fn try_recv(&self) -> Option<E> {
        let msg = self.rx.try_recv().ok()?;
        self.freed();
        Some(msg)
    }

    /// Waits for the next message. Call [`freed`](Self::freed) after taking one.
    pub(crate) fn recv_async(&self) -> flume::r#async::RecvFut<'_, E> {
        self.rx.recv_async()
    }

    /// A slot was freed: wakes one sender waiting for room, if any.
    #[inline]
    pub(crate) fn freed(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.room.notify_one();
        }
    }

    /// Closes the lane for good: later sends are refused, senders waiting for room are
    /// released with their message, and what is queued is dropped. Returns how many messages
    /// were queued (dead letters). Closing again drains again (nothing, normally).
    pub(crate) fn close(&self) -> usize {
        self.closed.store(true, Ordering::SeqCst);
        self.room.notify_waiters();
        self.drain()
    }

    /// Drops everything queued; returns how many there were.
    fn drain(&self) -> usize {
        self.rx.drain().count()
    }

    /// How many messages are queued.
    pub(crate) fn len(&self) -> usize {
        self.rx.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closed_lanes_hand_messages_back() {
        let control = ControlLane::new();
        let user = UserLane::<u32>::new(2);
        assert_eq!(user.send(1).await, Ok(0));
        assert!(control.close().is_empty());
        assert!(control.send(Control::Start { reply: None }).is_err());
        // What was queued before the close is dead-lettered by it.
        assert_eq!(user.close(), 1);
        assert_eq!(user.send(2).await, Err(2));
        assert_eq!(user.try_send(3), Err((3, false)));
    }

    #[tokio::test]
    async fn full_lane_reports_full() {
        let user = UserLane::<u32>::new(1);
        user.try_send(1).unwrap();
        assert_eq!(user.try_send(2), Err((2, true)));
        assert_eq!(user.len(), 1);
    }

    #[tokio::test]
    async fn closing_releases_senders_waiting_for_room() {
        let user = std::sync::Arc::new(UserLane::<u32>::new(1));
        user.try_send(1).unwrap();
        let waiter = tokio::spawn({
            let user = user.clone();
            async move { user.send(2).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        assert_eq!(user.close(), 1);
        assert_eq!(waiter.await.unwrap(), Err(2));
    }

    #[tokio::test]
    async fn a_freed_slot_lets_a_waiting_sender_in() {
        let user = std::sync::Arc::new(UserLane::<u32>::new(1));
        user.try_send(1).unwrap();
        let waiter = tokio::spawn({
            let user = user.clone();
            async move { user.send(2).await }
        });
        tokio::task::yield_now().await;
        assert_eq!(user.try_recv(), Some(1));
        assert_eq!(waiter.await.unwrap(), Ok(0));
        assert_eq!(user.try_recv(), Some(2));
    }

    #[test]
    fn control_sends_are_counted() {
        let control = ControlLane::new();
        assert_eq!(control.sent(), 0);
        control.send(Control::Start { reply: None }).ok().unwrap();
        control.send(Control::Restart { reply: None }).ok().unwrap();
        assert_eq!(control.sent(), 2);
        assert!(matches!(control.try_recv(), Some(Control::Start { .. })));
        assert_eq!(control.close().len(), 1);
        assert!(control.try_recv().is_none());
    }
}
