//! The actor's task: the lifecycle state machine, Mode's hook order, the mailbox loop with
//! control before user messages, and panic capture.
//!
//! ```text
//!            ┌────────── Start ──────────┐
//!            ▼                           │
//!  Idle ─▶ start sequence ─ok─▶ Running ─┼─ Stop ─▶ stop sequence ─▶ Idle or terminated
//!   ▲          │ fail                    ├─ Restart ─▶ stop ─▶ reset ─▶ start sequence
//!   │          ▼                         └─ Crash / panic ─▶ stop sequence (children crashed)
//!   └─── Crashed (a child waits for its parent's decision; a root terminates)
//! ```
//!
//! # Invariants
//! - One task per actor owns the service value and its context; hooks and handlers run here,
//!   one at a time.
//! - Between two user messages the control lane is probed (an atomic load); when both lanes are
//!   empty the task parks on a `biased` select, control first. A stop therefore begins as soon as
//!   the handler in flight returns, however many user messages are queued.
//! - A handler still pending when a crash arrives is dropped (its `ask` resolves to
//!   [`Error::Crashed`]); other control messages wait for it and are kept in order.
//! - A child's fate belongs to its parent: a crashed child stops and waits for the parent's
//!   decision ([`Service::on_child_crashed`]); a crashed root terminates.
//! - Termination closes the mailbox before the stop is acknowledged, so a send after `stop()`
//!   returned always fails; what was still queued becomes dead letters.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Weak};
use std::task::Poll;

use futures::FutureExt;
use tracing::Instrument;

use crate::addr::{Addr, ServiceRef};
use crate::cell::{AnyCell, CURRENT_ACTOR, Cell, CoreInit, Settings};
use crate::context::{Context, Phase};
use crate::error::{CrashReason, Error, Hook, SharedError};
use crate::handler::BoxEnvelope;
use crate::mailbox::{Control, ControlLane, Notice, Reply, UserLane};
use crate::registry::Event;
use crate::service::{ChildAction, Service};
use crate::spec::{Init, ServiceSpec};
use crate::state::ServiceState;
use crate::system::System;

/// Where a child hangs in the tree.
pub(crate) struct Parent {
    pub(crate) cell: Weak<dyn AnyCell>,
    pub(crate) depth: usize,
}

/// User messages handled in a row before the actor yields its thread, so a busy actor cannot
/// starve the other tasks of its worker thread (`tests/fairness.rs`).
const BATCH: u32 = 64;

/// Builds the actor, spawns its task (idle, waiting for a start) and returns its address.
pub(crate) fn create<S: Service>(
    system: &System,
    spec: ServiceSpec<S>,
    parent: Option<Parent>,
) -> Addr<S> {
    let ServiceSpec {
        init,
        mailbox_capacity,
        name,
        internal,
        own_thread,
    } = spec;
    let (service, factory) = match init {
        Init::Value(s) => (s, None),
        Init::Factory(mut f) => (f(0), Some(f)),
    };
    let settings = Settings {
        mundane_level: service.mundane_level(),
        shutdown_timeout: service.shutdown_timeout(),
        wait_for_shutdown: service.wait_for_shutdown(),
    };
    let capacity = mailbox_capacity.unwrap_or_else(|| service.mailbox_capacity());
    let core = crate::cell::Core::new(CoreInit {
        label: service.label(),
        shortlabel: service.shortlabel(),
        type_name: std::any::type_name::<S>(),
        settings,
        name: name.map(Arc::from),
        internal,
        parent: parent.map(|p| (p.cell, p.depth)),
        system: system.downgrade(),
    });
    let cell = Arc::new(Cell {
        core,
        user: UserLane::new(capacity),
    });
    let addr = Addr::from_cell(cell.clone());
    let core = addr.core();
    core.report(|| Event::Spawned {
        service: addr.service_ref(),
        parent: core.parent().map(|p| p.core().id),
        name: core.name.as_deref().map(str::to_owned),
    });
    let runner = Runner {
        actor: service,
        ctx: Context::new(addr.clone(), system.clone()),
        cell,
        factory,
        deps_added: false,
        first_start_done: false,
        deferred: VecDeque::new(),
        ctrl_seen: 0,
        held_stops: Vec::new(),
        own_thread,
    };
    let span = crate::log::service_span(addr.core());
    let id = addr.id();
    let fut = system.tracked(CURRENT_ACTOR.scope(id, runner.run()).instrument(span));
    if own_thread {
        spawn_on_thread(system, addr.core(), fut);
    } else {
        system.spawn_task(async move { answer_all(fut.await) });
    }
    addr
}

/// The answers a finished actor owes: sent once it is completely gone.
type Answers = Vec<(Reply, Result<bool, Error>)>;

fn answer_all(answers: Answers) {
    for (reply, res) in answers {
        let _ = reply.send(res);
    }
}

/// Mode's `ServiceThread`: the actor runs on its own OS thread, in its own current-thread
/// runtime. Its last answers (the stop that ended it) are sent after that runtime has shut
/// down (bounded by the shutdown timeout), so a `stop()` that returned finds the thread done.
fn spawn_on_thread<F>(system: &System, core: &crate::cell::Core, fut: F)
where
    F: std::future::Future<Output = Answers> + Send + 'static,
{
    let timeout = core.settings.shutdown_timeout;
    let name = format!("modo-{}", core.label);
    // The future is handed to the thread through a slot, so that if the thread cannot be
    // started it can still run on the System's runtime.
    let slot = Arc::new(std::sync::Mutex::new(Some(fut)));
    let on_thread = slot.clone();
    let started = std::thread::Builder::new().name(name).spawn(move || {
        let Some(fut) = on_thread.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => {
                let answers = rt.block_on(fut);
                rt.shutdown_timeout(timeout);
                answer_all(answers);
            }
            Err(e) => {
                tracing::error!(target: "modo", "no runtime for a service thread: {e}");
                drop(fut);
            }
        }
    });
    if let Err(e) = started {
        tracing::error!(
            target: "modo",
            "{}: could not start its own thread ({e}); running it on the System's runtime",
            core.prefix()
        );
        if let Some(fut) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
            system.spawn_task(async move { answer_all(fut.await) });
        }
    }
}

/// Takes the control messages that arrived while a handler is pending. Returns one that
/// preempts the handler (a crash, or a stop that marks this service crashed); defers the
/// rest, in order, arming `deadline` for a stop or restart.
fn take_during_handler(
    control: &ControlLane,
    ctrl_seen: &mut usize,
    deferred: &mut VecDeque<Control>,
    deadline: &mut Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    timeout: std::time::Duration,
) -> Option<Control> {
    while let Ok(ctrl) = control.receiver().try_recv() {
        *ctrl_seen += 1;
        match &ctrl {
            Control::Crash(_) | Control::Stop { cause: Some(_), .. } => return Some(ctrl),
            Control::Stop { .. } | Control::Restart { .. } if deadline.is_none() => {
                *deadline = Some(Box::pin(tokio::time::sleep(timeout)));
            }
            _ => {}
        }
        deferred.push_back(ctrl);
    }
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

/// What the loop does after a control message.
enum Flow {
    Continue,
    /// Terminate, then send this answer (after the mailbox is closed).
    Exit(Option<(Reply, Result<bool, Error>)>),
}

struct Runner<A: Service> {
    actor: A,
    ctx: Context<A>,
    cell: Arc<Cell<A>>,
    factory: Option<Box<dyn FnMut(u32) -> A + Send>>,
    deps_added: bool,
    first_start_done: bool,
    /// Control messages taken off the lane while a handler was in flight, in arrival order.
    deferred: VecDeque<Control>,
    /// Control messages received so far; compared with the lane's send count.
    ctrl_seen: usize,
    /// Stops waiting for the parent's decision (see `Notice::Stopped`), with their result.
    held_stops: Vec<(Reply, Result<bool, Error>)>,
    /// Runs on its own thread (Mode's `ServiceThread`): the thread hooks run too.
    own_thread: bool,
}

/// Runs a hook with panic capture: `Err` carries the crash reason.
macro_rules! run_hook {
    ($self:ident, $hook:ident, $which:expr) => {
        match AssertUnwindSafe($self.actor.$hook(&mut $self.ctx))
            .catch_unwind()
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err($self.hook_failed($which, SharedError::from(e))),
            Err(panic) => Err(CrashReason::from_panic(panic, $which.to_string())),
        }
    };
}

/// Runs a stop-sequence hook, bounded by the shutdown timeout.
macro_rules! run_stop_hook {
    ($self:ident, $hook:ident, $which:expr) => {{
        let timeout = $self.cell.core.settings.shutdown_timeout;
        match bounded(timeout, async { run_hook!($self, $hook, $which) }).await {
            Some(res) => res,
            None => Err($self.hook_failed(
                $which,
                SharedError::from(crate::error::BoxError::from(format!(
                    "did not return within {timeout:?}"
                ))),
            )),
        }
    }};
}

/// `fut` bounded by `timeout`; `None` if it ran out. The timer (and its clock read) is armed
/// only if `fut` does not finish on its first poll, which most hooks do.
async fn bounded<F: std::future::Future>(
    timeout: std::time::Duration,
    fut: F,
) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    if let Poll::Ready(out) = futures::poll!(fut.as_mut()) {
        return Some(out);
    }
    tokio::time::timeout(timeout, fut).await.ok()
}

impl<A: Service> Runner<A> {
    /// Runs the actor to its end; returns the answers it still owes (sent by the caller once
    /// the actor is completely gone).
    async fn run(mut self) -> Answers {
        if let Err(reason) = self.init_instance(false) {
            // A service that cannot even initialise is crashed before its first start.
            self.cell.core.record_crash(reason);
            self.cell.core.set_state(ServiceState::Crashed);
        } else if self.own_thread
            && let Err(reason) = run_hook!(self, on_thread_started, Hook::OnThreadStarted)
        {
            // Its thread could not be set up: the service cannot start.
            self.cell.core.record_crash(reason);
            self.cell.core.set_state(ServiceState::Crashed);
        }
        let answer = loop {
            let ctrl = if self.ctx.phase == Phase::Running {
                self.serve().await
            } else {
                self.next_control().await
            };
            // Control messages are rare and their sequences run the user's hooks, whose futures
            // can be large: boxed, they do not weigh on every idle actor's task.
            if let Flow::Exit(answer) = Box::pin(self.control_or_exit(ctrl)).await {
                break answer;
            }
        };
        if self.own_thread
            && let Err(reason) = run_hook!(self, on_thread_stop, Hook::OnThreadStop)
        {
            self.ctx.log().error(format_args!("{reason}"));
        }
        let mut answers: Answers = answer.into_iter().collect();
        answers.append(&mut self.held_stops);
        answers
    }

    // ----- the mailbox loop -------------------------------------------------------------

    /// Serves user messages until a control message arrives; returns it.
    async fn serve(&mut self) -> Control {
        let cell = self.cell.clone();
        let user = &cell.user;
        let control = &cell.core.control;
        let mut handled = 0u32;
        loop {
            if let Some(ctrl) = self.take_control() {
                return ctrl;
            }
            let env = match user.try_recv() {
                Some(env) => env,
                None => {
                    // Park on both lanes, control first. Parking lets the others run: the
                    // batch starts over.
                    handled = 0;
                    let seen = self.ctrl_seen;
                    let mut recv = user.recv_async();
                    let woke = std::future::poll_fn(|cx| {
                        if control.poll_pending(seen, cx).is_ready() {
                            return Poll::Ready(None);
                        }
                        std::pin::Pin::new(&mut recv).poll(cx).map(Some)
                    })
                    .await;
                    match woke {
                        // A control message: taken at the top of the loop.
                        None => continue,
                        Some(Ok(env)) => {
                            user.freed();
                            env
                        }
                        // Unreachable: the cell holds a sender. Treat as a stop.
                        Some(Err(_)) => return Control::stop_for_good(None),
                    }
                }
            };
            if let Some(ctrl) = self.handle(env).await {
                return ctrl;
            }
            handled += 1;
            if handled == BATCH {
                handled = 0;
                yield_now().await;
            }
        }
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
            && let Ok(c) = core.control.receiver().try_recv()
        {
            self.ctrl_seen += 1;
            return Some(c);
        }
        None
    }

    /// Waits for a control message (user messages stay queued).
    async fn next_control(&mut self) -> Control {
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
        let mut fut = env.handle(&mut self.actor, &mut self.ctx);
        // Most handlers finish on their first poll: no select, no waker registration.
        let res = match futures::poll!(fut.as_mut()) {
            Poll::Ready(res) => res,
            Poll::Pending => {
                let control = &self.cell.core.control;
                let timeout = self.cell.core.settings.shutdown_timeout;
                // Armed when a stop or restart is kept waiting for this handler.
                let mut deadline: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
                loop {
                    let seen = self.ctrl_seen;
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
                        Woke::Control => take_during_handler(
                            control,
                            &mut self.ctrl_seen,
                            &mut self.deferred,
                            &mut deadline,
                            timeout,
                        ),
                    };
                    if let Some(ctrl) = preempt {
                        if let Control::Crash(reason) = &ctrl {
                            // Record first, so the abandoned ask reads the reason.
                            self.cell.core.record_crash(reason.clone());
                        }
                        drop(fut);
                        return Some(ctrl);
                    }
                }
            }
        };
        res.err().map(Control::Crash)
    }

    // ----- control ----------------------------------------------------------------------

    /// Acts on a control message; if the actor is to end, terminates it before returning.
    async fn control_or_exit(&mut self, ctrl: Control) -> Flow {
        let flow = self.on_control(ctrl).await;
        if let Flow::Exit(_) = flow {
            self.terminate().await;
        }
        flow
    }

    async fn on_control(&mut self, ctrl: Control) -> Flow {
        match ctrl {
            Control::Start { reply } => {
                self.release_held_stops();
                let res = if self.ctx.phase == Phase::Running {
                    Ok(false)
                } else if self.cell.core.is_closed() {
                    Err(self.cell.core.gone_error())
                } else {
                    self.reset_and_start(false).await.map(|()| true)
                };
                self.answer(reply, res)
            }
            Control::Restart { reply } => {
                self.release_held_stops();
                let res = self.reset_and_start(true).await.map(|()| true);
                self.answer(reply, res)
            }
            Control::Stop {
                terminate,
                cause,
                reply,
                ask_parent,
            } => {
                let mut res = Ok(true);
                let mut settle = cause.is_some();
                if let Some(reason) = &cause {
                    self.cell.core.record_crash(reason.clone());
                }
                let was_running = self.ctx.phase == Phase::Running;
                // A running child stopped by someone else asks its parent before it ends (if
                // the parent decides its stops), and keeps its own children for a restart until
                // then.
                let will_ask = terminate
                    && ask_parent
                    && was_running
                    && cause.is_none()
                    && self.cell.core.parent_decides_stops()
                    && self.cell.core.parent().is_some();
                if terminate && !will_ask {
                    // Stopping for good: no user message will be handled again. Close the user
                    // lane now, not at the end: waiting senders get their message back, queued
                    // asks fail at once, and nothing that waits on them (a child asking its
                    // stopping parent) can hold this stop up.
                    self.close_user_lane();
                }
                if was_running {
                    settle = true;
                    let stop_children = terminate && !will_ask;
                    if let Some(e) = self.stop_sequence(stop_children, cause.clone()).await {
                        res = Err(e);
                    }
                }
                if will_ask {
                    // Stopped; the parent decides whether it ends or restarts.
                    let core = &self.cell.core;
                    if let Some(parent) = core.parent() {
                        self.settle();
                        let notice = Control::Notice(Notice::Stopped {
                            child: core.id,
                            run: core.restart_count(),
                        });
                        if parent.core().control.send(notice).is_ok() {
                            if let Some(reply) = reply {
                                self.held_stops.push((reply, res));
                            }
                            return Flow::Continue;
                        }
                    }
                }
                if terminate {
                    // `terminate` publishes the final state once the mailbox is closed.
                    return Flow::Exit(reply.map(|r| (r, res)));
                }
                if settle {
                    self.settle();
                }
                if let Some(reply) = reply {
                    let _ = reply.send(res);
                }
                Flow::Continue
            }
            Control::Crash(reason) => self.crash(reason).await,
            Control::Notice(notice) => self.on_notice(notice).await,
        }
    }

    /// Answers the stops that waited for the parent's decision: the stop itself is done.
    fn release_held_stops(&mut self) {
        for (reply, res) in self.held_stops.drain(..) {
            let _ = reply.send(res);
        }
    }

    /// Publishes the state a finished stop leaves: crashed if there is a crash reason.
    fn settle(&self) {
        self.settle_state(true);
    }

    fn settle_state(&self, report: bool) {
        let core = &self.cell.core;
        let end = if core.crash_reason().is_some() {
            ServiceState::Crashed
        } else {
            ServiceState::Shutdown
        };
        core.publish_state(end, report);
    }

    /// Sends `res` on `reply`; a failed start or restart means the service crashed: a root
    /// terminates (and answers once its mailbox is closed), a child waits for its parent.
    fn answer(&mut self, reply: Option<Reply>, res: Result<bool, Error>) -> Flow {
        let crashed = res.is_err()
            && self.ctx.phase == Phase::Idle
            && self.cell.core.crash_reason().is_some();
        let flow = if crashed {
            let flow = self.after_crash(false);
            if let Flow::Continue = flow {
                self.settle();
            }
            flow
        } else {
            Flow::Continue
        };
        match flow {
            Flow::Continue => {
                if let Some(reply) = reply {
                    let _ = reply.send(res);
                }
                Flow::Continue
            }
            Flow::Exit(_) => Flow::Exit(reply.map(|r| (r, res))),
        }
    }

    async fn crash(&mut self, reason: CrashReason) -> Flow {
        let core = &self.cell.core;
        let reason = core.record_crash(reason);
        core.signal_stop();
        if core.parent.is_none() {
            // A crashed root ends for good (see `after_crash`).
            self.close_user_lane();
        }
        let core = &self.cell.core;
        if self.ctx.phase == Phase::Running {
            self.ctx.log().error(format_args!("Crashed: {reason}"));
            let terminate_children = core.parent.is_none();
            self.stop_sequence(terminate_children, Some(reason)).await;
        } else if core.state() == ServiceState::Crashed {
            return Flow::Continue;
        }
        let flow = self.after_crash(true);
        if let Flow::Continue = flow {
            self.settle();
        }
        flow
    }

    /// A crashed root terminates; a crashed child waits for its parent's decision.
    fn after_crash(&mut self, notify_parent: bool) -> Flow {
        let core = &self.cell.core;
        let Some(parent) = core.parent() else {
            return Flow::Exit(None);
        };
        if notify_parent {
            let reason = core
                .crash_reason()
                .unwrap_or_else(|| CrashReason::msg("crashed"));
            let notice = Control::Notice(Notice::Crashed {
                child: core.id,
                reason,
                run: core.restart_count(),
            });
            if parent.core().control.send(notice).is_err() {
                return Flow::Exit(None);
            }
        }
        Flow::Continue
    }

    async fn on_notice(&mut self, notice: Notice) -> Flow {
        match notice {
            Notice::Exited { child: id } => {
                self.ctx.children.retain(|c| c.id() != id);
                Flow::Continue
            }
            Notice::Stopped { child: id, run } => {
                let Some(child) = self.current_child(id, run) else {
                    return Flow::Continue;
                };
                let action = if self.ctx.phase == Phase::Running {
                    let decided =
                        AssertUnwindSafe(self.actor.on_child_stopped(&child, &mut self.ctx))
                            .catch_unwind()
                            .await;
                    match decided {
                        Ok(action) => action,
                        Err(panic) => {
                            // The child must not wait for an answer that will not come.
                            self.ctx.children.retain(|c| c != &child);
                            let _ = child.stop().await;
                            return self
                                .crash(CrashReason::from_panic(panic, "on_child_stopped"))
                                .await;
                        }
                    }
                } else {
                    ChildAction::Remove
                };
                match action {
                    ChildAction::Restart => {
                        if let Err(e) = child.restart().await {
                            self.ctx.log().error(format_args!(
                                "Restarting stopped child {} failed: {e}",
                                child.label()
                            ));
                        }
                        Flow::Continue
                    }
                    ChildAction::Escalate => {
                        self.ctx.children.retain(|c| c != &child);
                        let _ = child.stop().await;
                        self.crash(CrashReason::msg(format!("child {} stopped", child.label())))
                            .await
                    }
                    // Keep and Remove: a stopped child is let go.
                    _ => {
                        self.ctx.children.retain(|c| c != &child);
                        let _ = child.stop().await;
                        Flow::Continue
                    }
                }
            }
            Notice::Crashed {
                child: id,
                reason,
                run,
            } => {
                let Some(child) = self.current_child(id, run) else {
                    return Flow::Continue;
                };
                if self.ctx.phase != Phase::Running {
                    // Not running: the child's fate follows ours (restarted or stopped with us).
                    return Flow::Continue;
                }
                let decided =
                    AssertUnwindSafe(self.actor.on_child_crashed(&child, &reason, &mut self.ctx))
                        .catch_unwind()
                        .await;
                let action = match decided {
                    Ok(action) => action,
                    Err(panic) => {
                        return self
                            .crash(CrashReason::from_panic(panic, "on_child_crashed"))
                            .await;
                    }
                };
                self.apply_child_action(child, action, reason).await
            }
        }
    }

    /// The child `id`, if it is still one of ours and the notice about its run `run` is not
    /// stale: a child restarted since (by our own restart, a sibling's group restart, or anyone
    /// else) and not crashed again needs no decision.
    fn current_child(&self, id: uuid::Uuid, run: u32) -> Option<ServiceRef> {
        let child = self.ctx.children.iter().find(|c| c.id() == id)?;
        (child.restart_count() == run || child.is_crashed()).then(|| child.clone())
    }

    async fn apply_child_action(
        &mut self,
        child: ServiceRef,
        action: ChildAction,
        reason: CrashReason,
    ) -> Flow {
        match action {
            ChildAction::Remove => {
                self.ctx.children.retain(|c| c != &child);
                self.ctx.log().warn(format_args!(
                    "Removing crashed child {}: {reason}",
                    child.label()
                ));
                let _ = child.stop().await;
                Flow::Continue
            }
            ChildAction::Restart => {
                if let Err(e) = child.restart().await {
                    self.ctx.log().error(format_args!(
                        "Restarting child {} failed: {e}",
                        child.label()
                    ));
                }
                Flow::Continue
            }
            ChildAction::Keep => Flow::Continue,
            ChildAction::Escalate => {
                self.crash(CrashReason::Child {
                    child: child.label().into(),
                    reason: Box::new(reason),
                })
                .await
            }
        }
    }

    // ----- sequences ---------------------------------------------------------------------

    fn hook_failed(&self, hook: Hook, source: SharedError) -> CrashReason {
        CrashReason::Error(Arc::new(Error::HookFailed {
            label: self.cell.core.label.clone(),
            hook,
            source,
        }))
    }

    /// The error a failed start reports: the hook failure itself, or the crash.
    fn start_error(&self, reason: &CrashReason) -> Error {
        if let CrashReason::Error(e) = reason
            && let Some(err) = e.downcast_ref::<Error>()
        {
            return err.clone();
        }
        Error::Crashed {
            label: self.cell.core.label.clone(),
            reason: reason.clone(),
        }
    }

    /// `on_init` on the current instance, or a fresh instance from the factory.
    fn init_instance(&mut self, fresh: bool) -> Result<(), CrashReason> {
        let res = std::panic::catch_unwind(AssertUnwindSafe(|| {
            if fresh && let Some(factory) = self.factory.as_mut() {
                self.actor = factory(self.cell.core.restart_count());
            }
            self.actor.on_init();
        }));
        res.map_err(|panic| CrashReason::from_panic(panic, Hook::OnInit.to_string()))
    }

    /// Start, restart, or start after a stop-for-restart (which resets like a restart).
    async fn reset_and_start(&mut self, restart: bool) -> Result<(), Error> {
        let core = &self.cell.core;
        if self.cell.core.is_closed() {
            return Err(core.gone_error());
        }
        if self.ctx.phase == Phase::Running {
            if !restart {
                return Ok(());
            }
            core.signal_stop();
            self.ctx.log().mundane("Restarting...");
            if let Some(e) = self.stop_sequence(false, None).await {
                self.ctx
                    .log()
                    .warn(format_args!("Stop before restart reported: {e}"));
            }
        }
        // Only a service that ran before is reset; the very first start is not a restart.
        if self.deps_added {
            let core = &self.cell.core;
            core.bump_restart_count();
            core.clear_crash();
            if let Err(reason) = self.init_instance(true) {
                return Err(self.fail_start(reason, false).await);
            }
            if let Err(reason) = run_hook!(self, on_restart, Hook::OnRestart) {
                return Err(self.fail_start(reason, false).await);
            }
        } else if let Some(reason) = self.cell.core.crash_reason() {
            // Crashed before it ever started (on_init panicked).
            return Err(self.start_error(&reason));
        }
        self.start_sequence().await
    }

    async fn start_sequence(&mut self) -> Result<(), Error> {
        let core = &self.cell.core;
        self.ctx.token = core.renew_stop_token();
        core.set_state(ServiceState::Starting);
        self.ctx.phase = Phase::Starting;

        if !self.deps_added {
            if let Some(name) = &self.cell.core.name {
                let me = self.ctx.myself().service_ref();
                if let Err(e) = self.ctx.system().claim_name(name, me) {
                    return Err(self
                        .fail_start(CrashReason::Error(Arc::new(e)), false)
                        .await);
                }
            }
            self.deps_added = true;
            match std::panic::catch_unwind(AssertUnwindSafe(|| self.actor.dependencies())) {
                Ok(deps) => {
                    let system = self.ctx.system().clone();
                    for dep in deps {
                        let child = dep.create(&system, self.ctx.as_parent());
                        self.ctx.children.push(child);
                    }
                }
                Err(panic) => {
                    let reason = CrashReason::from_panic(panic, Hook::Dependencies.to_string());
                    return Err(self.fail_start(reason, false).await);
                }
            }
        }
        if !self.first_start_done {
            if let Err(reason) = run_hook!(self, on_first_start, Hook::OnFirstStart) {
                return Err(self.fail_start(reason, false).await);
            }
            self.first_start_done = true;
        }
        self.ctx.log().mundane("Starting...");
        if let Err(reason) = run_hook!(self, on_start, Hook::OnStart) {
            return Err(self.fail_start(reason, false).await);
        }
        self.ctx.tasks.launch_pending(&self.cell.core);
        self.ctx.phase = Phase::Running;

        let children = self.ctx.children.clone();
        for child in children {
            if let Err(e) = child.maybe_start().await {
                if child.is_terminated() {
                    // Stopped for good by someone else, its exit notice still on its way: it
                    // leaves our children, as it would a moment later.
                    self.ctx.children.retain(|c| c != &child);
                    continue;
                }
                let reason = self.hook_failed(Hook::StartChild, Arc::new(e));
                return Err(self.fail_start(reason, true).await);
            }
        }
        self.ctx.log().mundane("Started");
        if let Err(reason) = run_hook!(self, on_started, Hook::OnStarted) {
            return Err(self.fail_start(reason, true).await);
        }
        self.cell.core.set_state(ServiceState::Running);
        Ok(())
    }

    /// Undoes a start that failed: with `on_start` done, the whole stop sequence runs;
    /// before that, only the tasks added so far are cancelled. The service is left crashed.
    async fn fail_start(&mut self, reason: CrashReason, after_on_start: bool) -> Error {
        let core = &self.cell.core;
        let reason = core.record_crash(reason);
        core.signal_stop();
        self.ctx.log().error(format_args!("Start failed: {reason}"));
        if after_on_start {
            self.stop_sequence(false, None).await;
        } else {
            let timeout = self.cell.core.settings.shutdown_timeout;
            self.ctx.tasks.cancel_all();
            self.ctx.tasks.join_all(timeout).await;
            self.ctx.exits.close(timeout).await;
        }
        // The state is published by whoever decides what comes next (see `answer`).
        self.ctx.phase = Phase::Idle;
        self.start_error(&reason)
    }

    /// Mode's stop order. `terminate_children`: children stop for good (else they wait to be
    /// started again). `cause`: the children are marked crashed with this reason.
    /// Leaves the state at `Stopping`: the caller publishes what comes next (a restart goes
    /// straight on to starting, a termination publishes after closing the mailbox).
    /// Returns the first failure; every step runs regardless.
    async fn stop_sequence(
        &mut self,
        terminate_children: bool,
        cause: Option<CrashReason>,
    ) -> Option<Error> {
        let core = &self.cell.core;
        core.signal_stop();
        core.set_state(ServiceState::Stopping);
        self.ctx.phase = Phase::Stopping;
        let timeout = core.settings.shutdown_timeout;
        let mut first: Option<Error> = None;

        self.ctx.log().mundane("Stopping...");
        if let Err(reason) = run_stop_hook!(self, on_stop, Hook::OnStop) {
            self.report_stop_failure(reason, &mut first);
        }

        let child_cause = cause.as_ref().map(|reason| CrashReason::Parent {
            parent: self.cell.core.label.clone(),
            reason: Box::new(reason.clone()),
        });
        let children = if terminate_children {
            std::mem::take(&mut self.ctx.children)
        } else {
            self.ctx.children.clone()
        };
        for child in children.iter().rev() {
            let res = child
                .core()
                .request_raw("stop", |reply| Control::Stop {
                    terminate: terminate_children,
                    cause: child_cause.clone(),
                    reply: Some(reply),
                    ask_parent: false,
                })
                .await;
            match res {
                // Answered, or already gone (nothing left to stop).
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(e)) => {
                    let reason = self.hook_failed(Hook::StopChild, Arc::new(e));
                    self.report_stop_failure(reason, &mut first);
                }
            }
        }

        // With `wait_for_shutdown`, the background tasks (told to stop already) get until the
        // flag to finish their work, since the flag is how they say they are done; Mode's
        // cancellation lets a task clean up the same way. Then they are cancelled.
        if self.cell.core.settings.wait_for_shutdown {
            let waited = tokio::time::timeout(timeout, self.cell.core.wait_shutdown_flag()).await;
            if waited.is_err() {
                self.ctx.log().warn(format_args!(
                    "Gave up waiting for the shutdown flag after {timeout:?}"
                ));
            }
        }
        self.ctx.tasks.cancel_all();
        self.ctx.log().mundane("Stopped");

        let stuck = self.ctx.tasks.join_all(timeout).await;
        let late = self.ctx.exits.close(timeout).await;
        if late > 0 {
            self.ctx.log().warn(format_args!(
                "{late} async context clean-up(s) did not finish within {timeout:?}"
            ));
        }
        if !stuck.is_empty() {
            let names: Vec<&str> = stuck.iter().map(|s| &**s).collect();
            let reason = self.hook_failed(
                Hook::JoinTasks,
                SharedError::from(crate::error::BoxError::from(format!(
                    "tasks still running {timeout:?} after cancel: {}",
                    names.join(", ")
                ))),
            );
            self.report_stop_failure(reason, &mut first);
        }

        if let Err(reason) = run_stop_hook!(self, on_shutdown, Hook::OnShutdown) {
            self.report_stop_failure(reason, &mut first);
        }
        // Whatever on_shutdown added belongs to this run: it must not leak into the next.
        self.ctx.tasks.cancel_all();
        self.ctx.tasks.join_all(timeout).await;
        self.ctx.exits.close(timeout).await;
        self.ctx.log().mundane("Shutdown complete");
        self.ctx.phase = Phase::Idle;
        first
    }

    fn report_stop_failure(&self, reason: CrashReason, first: &mut Option<Error>) {
        self.ctx.log().error(format_args!("{reason}"));
        if reason.is_panic() {
            self.cell.core.record_crash(reason.clone());
        }
        if first.is_none() {
            *first = Some(self.start_error(&reason));
        }
    }

    /// Closes the user lane for good (see `UserLane::close`); what was queued becomes dead
    /// letters.
    fn close_user_lane(&self) {
        let core = &self.cell.core;
        let left = self.cell.user.close();
        // The System's own services (the registry) only get idempotent requests (drain,
        // snapshot): what is left of them at shutdown is not a user's lost message.
        if !core.internal {
            core.dead_lettered(left);
        }
    }

    /// Ends the actor for good: children first, then the mailbox is closed and drained.
    async fn terminate(&mut self) {
        let children = std::mem::take(&mut self.ctx.children);
        for child in children.iter().rev() {
            let _ = child.stop().await;
        }
        let timeout = self.cell.core.settings.shutdown_timeout;
        self.ctx.tasks.cancel_all();
        self.ctx.tasks.join_all(timeout).await;
        self.ctx.exits.close(timeout).await;

        self.close_user_lane();
        let core = &self.cell.core;
        // Dropping left-over control requests resolves their waiters with `gone_error`.
        drop(core.control.close());
        drop(std::mem::take(&mut self.deferred));
        if let Some(name) = &core.name {
            self.ctx.system().release_name(name, core.id);
        }
        core.report(|| Event::Removed { id: core.id });
        if let Some(parent) = core.parent() {
            let _ = parent
                .core()
                .control
                .send(Control::Notice(Notice::Exited { child: core.id }));
        } else if let Some(system) = core.system.upgrade() {
            system.forget_root(core.id);
        }
        // Published last, so whoever sees the stopped state finds the mailbox closed, the name
        // free, the registry and the parent told. The registry has dropped the node already:
        // no state event for it.
        self.settle_state(false);
    }
}
