//! The mailbox loop: user messages one at a time, control messages first, a yield every
//! [`BATCH`] messages, and a pending handler watched for a crash or an overdue stop.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use super::super::cell::Core;
use super::super::error::CrashReason;
use super::super::handler::{BoxEnvelope, HandleFuture};
use super::super::mailbox::{Control, ControlLane};
use super::super::service::Service;
use super::{Runner, boxed};

/// User messages handled in a row before the actor yields its thread, so a busy actor cannot
/// starve the other tasks of its worker thread (`tests/fairness.rs`).
const BATCH: u32 = 64;

/// The deadline of a stop kept waiting for a pending handler.
type Deadline = Option<Pin<Box<tokio::time::Sleep>>>;

impl<A: Service> Runner<A> {
    /// Serves user messages until a control message arrives; returns it. The slots freed are
    /// offered to waiting senders before the actor waits for anything (see
    /// `UserLane::offer_room`), and before it acts on the control message.
    pub(super) async fn serve(&mut self) -> Control {
        let cell = self.cell.clone();
        let user = &cell.user;
        let control = &cell.core.control;
        let mut handled = 0u32;
        // Messages handled since the actor last parked.
        let mut flowing = 0u32;
        let ctrl = loop {
            if let Some(ctrl) = self.take_control() {
                break ctrl;
            }
            let Some(env) = self.next_message() else {
                handled = 0;
                user.offer_room();
                if std::mem::take(&mut flowing) > 1 {
                    // A stream is flowing: its next message is likely a moment away. Let the
                    // others run once before parking, which would cost that message's sender a
                    // wake-up (messages one at a time, as in a ring or an ask, park at once).
                    yield_now().await;
                    continue;
                }
                // Park on both lanes, control first. Parking lets the others run: the batch
                // starts over.
                let seen = self.ctrl_seen;
                std::future::poll_fn(|cx| control.poll_park(seen, cx, || user.has_waiting())).await;
                continue;
            };
            if let Some(ctrl) = self.handle(env).await {
                break ctrl;
            }
            flowing = flowing.saturating_add(1);
            handled += 1;
            if handled == BATCH {
                handled = 0;
                user.offer_room();
                yield_now().await;
            }
        };
        user.offer_room();
        ctrl
    }

    /// The next user message: from the batch taken off the lane, or from a new batch. Its slot
    /// is freed as it is taken for handling.
    #[inline]
    fn next_message(&mut self) -> Option<BoxEnvelope<A>> {
        let user = &self.cell.user;
        let env = match self.inbox.pop_front() {
            Some(env) => env,
            None if user.take_batch(&mut self.inbox) => self.inbox.pop_front()?,
            None => return None,
        };
        user.taken();
        Some(env)
    }

    /// The next control message, if one is waiting: deferred ones first, then the lane (probed
    /// only when its send count moved).
    #[inline]
    fn take_control(&mut self) -> Option<Control> {
        if let Some(c) = self.deferred.pop_front() {
            return Some(c);
        }
        let core = &self.cell.core;
        if core.control.sent() > self.ctrl_seen
            && let Some(c) = core.control.try_recv()
        {
            self.ctrl_seen += 1;
            return Some(c);
        }
        None
    }

    /// Waits for a control message (user messages stay queued).
    pub(super) async fn next_control(&mut self) -> Control {
        loop {
            if let Some(c) = self.take_control() {
                return c;
            }
            let seen = self.ctrl_seen;
            let control = &self.cell.core.control;
            std::future::poll_fn(|cx| control.poll_pending(seen, cx)).await;
        }
    }

    /// Runs one user message. Returns a control message to act on at once: the crash of a
    /// panicking handler, a crash that arrived while the handler was pending, or the crash of a
    /// handler still pending `shutdown_timeout` after a stop or restart request arrived.
    async fn handle(&mut self, env: BoxEnvelope<A>) -> Option<Control> {
        #[cfg(feature = "testkit")]
        if let Some(reason) = self.faults.as_mut().and_then(|f| f.on_message()) {
            // As a panic in the handler would: the message is lost with the crash.
            self.cell.core.record_crash(reason.clone());
            drop(env);
            return Some(Control::Crash(reason));
        }
        let Some(actor) = self.actor.as_mut() else {
            // Messages are served only while running, and a running service has an instance.
            unreachable!("a service serving messages has an instance");
        };
        let mut fut = env.handle(actor, &mut self.ctx);
        // Most handlers finish on their first poll: no select, no waker registration, and
        // nothing of the slow path below in this future (which every idle actor's task holds).
        if let Poll::Ready(res) =
            std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
        {
            return res.err().map(Control::Crash);
        }
        self.cell.user.offer_room();
        let core = &self.cell.core;
        boxed(wait_pending(
            fut,
            core,
            &mut self.ctrl_seen,
            &mut self.deferred,
        ))
        .await
    }
}

/// Waits for a handler that did not finish on its first poll, watching the control lane: a
/// crash (or a stop that marks the service crashed) abandons it, other control messages are
/// deferred until it returns, and a stop or restart kept waiting longer than the shutdown
/// timeout abandons it as a crash.
async fn wait_pending(
    mut fut: HandleFuture<'_>,
    core: &Core,
    ctrl_seen: &mut usize,
    deferred: &mut VecDeque<Control>,
) -> Option<Control> {
    let control = &core.control;
    let timeout = core.settings.shutdown_timeout();
    // Armed when a stop or restart is kept waiting for this handler.
    let mut deadline: Deadline = None;
    let res = loop {
        let seen = *ctrl_seen;
        let woke = std::future::poll_fn(|cx| {
            if control.poll_pending(seen, cx).is_ready() {
                return Poll::Ready(Woke::Control);
            }
            if let Poll::Ready(res) = fut.as_mut().poll(cx) {
                return Poll::Ready(Woke::Done(res));
            }
            match deadline.as_mut().map(|d| d.as_mut().poll(cx)) {
                Some(Poll::Ready(())) => Poll::Ready(Woke::Deadline),
                _ => Poll::Pending,
            }
        })
        .await;
        let preempt = match woke {
            Woke::Done(res) => break res,
            Woke::Deadline => Some(Control::Crash(CrashReason::msg(format!(
                "a handler did not return within {timeout:?} of a stop request"
            )))),
            // Take what arrived; a crash abandons the handler, the rest waits.
            Woke::Control => {
                take_during_handler(control, ctrl_seen, deferred, &mut deadline, timeout)
            }
        };
        if let Some(ctrl) = preempt {
            let reason = match &ctrl {
                Control::Crash(reason) => Some(reason),
                Control::Stop(stop) => stop.cause.as_ref(),
                _ => None,
            };
            if let Some(reason) = reason {
                // Record first, so the abandoned ask reads the reason.
                core.record_crash(reason.clone());
            }
            drop(fut);
            return Some(ctrl);
        }
    };
    res.err().map(Control::Crash)
}

/// Takes the control messages that arrived while a handler is pending. Returns one that
/// preempts the handler (a crash, or a stop that marks this service crashed); defers the
/// rest, in order, arming `deadline` for a stop or restart.
fn take_during_handler(
    control: &ControlLane,
    ctrl_seen: &mut usize,
    deferred: &mut VecDeque<Control>,
    deadline: &mut Deadline,
    timeout: Duration,
) -> Option<Control> {
    while let Some(ctrl) = control.try_recv() {
        *ctrl_seen += 1;
        match ctrl {
            // A start of a running service does nothing: answered now, not after the handler,
            // which may be waiting on whoever asked (a parent starting its children). Unless a
            // stop or restart came first: then it is kept in order behind it.
            Control::Start { reply } if deadline.is_none() => {
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(false));
                }
            }
            ctrl => {
                if let Some(preempt) = defer_or_preempt(ctrl, deferred, deadline, timeout) {
                    return Some(preempt);
                }
            }
        }
    }
    None
}

/// Defers `ctrl` until the handler returns (arming `deadline` for a stop or restart), or
/// returns it if it preempts the handler.
fn defer_or_preempt(
    ctrl: Control,
    deferred: &mut VecDeque<Control>,
    deadline: &mut Deadline,
    timeout: Duration,
) -> Option<Control> {
    match &ctrl {
        Control::Crash(_) => return Some(ctrl),
        Control::Stop(stop) if stop.cause.is_some() => return Some(ctrl),
        Control::Stop(_) | Control::Restart { .. } if deadline.is_none() => {
            *deadline = Some(Box::pin(tokio::time::sleep(timeout)));
        }
        _ => {}
    }
    deferred.push_back(ctrl);
    None
}

/// What woke a pending handler's wait.
enum Woke {
    Control,
    Done(Result<(), CrashReason>),
    Deadline,
}

/// Lets the other tasks of this thread run: wakes itself and returns `Pending` once. tokio
/// treats a task that woke itself during its poll as a yield and puts it at the back of the
/// run queue (without the timer and I/O round trip of `tokio::task::yield_now`).
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await
}
