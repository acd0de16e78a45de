//! The actor's task, one concern a file:
//!
//! - this file: building an actor and launching its task ([`build`], [`Launch`]), the loop
//!   that alternates serving the mailbox and acting on control messages, and running hooks;
//! - `serve.rs`: the mailbox loop (user messages, control first, fairness);
//! - `control.rs`: what each control message does (start, stop, restart, crash);
//! - `children.rs`: the notices a parent gets about its children, and its decisions;
//! - `sequences.rs`: Mode's start, stop and restart sequences, and the end of the actor;
//! - `hooks.rs`: the service's hooks as values the runner can call;
//! - `thread.rs`: a service on its own thread (Mode's `ServiceThread`).
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
//!   empty the task parks on both, control first. A stop therefore begins as soon as the
//!   handler in flight returns, however many user messages are queued; a handler still pending
//!   `shutdown_timeout` after a stop or restart request is abandoned as a crash.
//! - A handler still pending when a crash arrives is dropped (its `ask` resolves to
//!   [`Error::Crashed`]); other control messages wait for it and are kept in order.
//! - A child's fate belongs to its parent: a crashed child stops and waits for the parent's
//!   decision ([`Service::on_child_crashed`]); a crashed root terminates.
//! - A stop for good closes the user lane as it begins, and termination closes the control
//!   lane before the stop is acknowledged, so a send after `stop()` returned always fails;
//!   what was still queued becomes dead letters.

mod children;
mod control;
mod hooks;
mod sequences;
mod serve;
mod thread;

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::Duration;

use futures::FutureExt;
use tokio::runtime::Handle;
use tracing::Instrument;

use super::addr::{Addr, ServiceRef};
use super::busy;
use super::cell::{AnyCell, Cell, Core, CoreInit, Current, Settings};
use super::context::{Context, Phase};
use super::error::{BoxError, CrashReason, Error, Hook, SharedError};
use super::handler::BoxEnvelope;
use super::host::{Event, Host};
use super::mailbox::{Control, ControlLane, ParkedTask, Reply, UserLane};
use super::observe::Observe;
use super::service::Service;
use super::service::short_type_name;
use super::spec::{AnySpec, AsyncFactory, Init, ServiceSpec};
use super::state::ServiceState;

use hooks::HookFn;

/// Where a child hangs in the tree.
pub(crate) struct Parent {
    pub(crate) cell: Weak<dyn AnyCell>,
    pub(crate) depth: usize,
    /// The System's observation switch, shared down the tree.
    pub(crate) observe: Arc<Observe>,
}

/// An actor that is built but whose task is not running yet (tower's `Buffer::pair`: build the
/// handle and the worker, then let the caller run the worker).
pub(crate) struct Launch<A: Service> {
    /// `None` for an async factory's service: its first instance is built at its first start.
    actor: Option<A>,
    addr: Addr<A>,
    factory: Option<Factory<A>>,
    own_thread: bool,
    #[cfg(feature = "testkit")]
    faults: Option<Box<super::faults::FaultState>>,
}

/// Builds a service's cell from `spec`: returns its address, and its task ready to be launched.
pub(crate) fn build<S: Service>(
    spec: ServiceSpec<S>,
    parent: Option<Parent>,
    observe: Arc<Observe>,
) -> (Addr<S>, Launch<S>) {
    let ServiceSpec {
        init,
        mailbox_capacity,
        name,
        label,
        internal,
        own_thread,
        #[cfg(feature = "testkit")]
        faults,
    } = spec;
    let (actor, factory) = match init {
        Init::Value(s) => (Some(s), None),
        Init::Factory(mut f) => (Some(f(0)), Some(Factory::Sync(f))),
        Init::AsyncFactory { make, timeout } => (None, Some(Factory::Async { make, timeout })),
    };
    let settings = match &actor {
        Some(actor) => Settings::of(actor),
        None => Settings::defaults(),
    };
    let (label, shortlabel) = match (label, &actor) {
        (Some(label), _) => (label.clone(), label),
        (None, Some(actor)) => (actor.label(), actor.shortlabel()),
        (None, None) => {
            let name = std::borrow::Cow::Borrowed(short_type_name::<S>());
            (name.clone(), name)
        }
    };
    let capacity = mailbox_capacity.unwrap_or_else(|| match &actor {
        Some(actor) => actor.mailbox_capacity(),
        None => super::mailbox::DEFAULT_MAILBOX_CAPACITY,
    });
    let core = Core::new(CoreInit {
        label,
        shortlabel,
        type_name: std::any::type_name::<S>(),
        settings,
        name: name.map(Arc::from),
        internal,
        parent: parent.map(|p| (p.cell, p.depth)),
        observe,
    });
    let cell = Arc::new(Cell {
        core,
        user: UserLane::new(capacity),
    });
    let addr = Addr::from_cell(cell);
    let launch = Launch {
        actor,
        addr: addr.clone(),
        factory,
        own_thread,
        #[cfg(feature = "testkit")]
        faults: faults.map(|f| Box::new(super::faults::FaultState::new(f))),
    };
    (addr, launch)
}

impl<A: Service> Launch<A> {
    /// Reports the new service to `host`, then runs its task: on the host's runtime, or on its
    /// own thread. The host counts the task until it ends.
    pub(crate) fn spawn(self, host: &Arc<dyn Host>) {
        self.report(host);
        let inline = self.spawn_with(host, None, false);
        debug_assert!(
            inline.is_none(),
            "only a spawn that starts is driven inline"
        );
    }

    /// [`spawn`](Self::spawn), the task starting the service at once and answering on `reply`
    /// (no trip through the control lane). When the caller runs on the host's runtime, the
    /// task is not spawned yet: it is returned for the caller to drive through its start (see
    /// [`Inline`]), which saves the round trip of a spawn that waits for its start.
    pub(crate) fn spawn_started(self, host: &Arc<dyn Host>, reply: Reply) -> Option<Inline> {
        self.report(host);
        self.spawn_with(host, Some(reply), true)
    }

    /// [`spawn`](Self::spawn) deferred: the service is reported now, and its task launched by
    /// the first control message it is sent (see `ControlLane::launch_on_first_send`), or by
    /// its parent's start, which takes the launch and starts it as a spawn does (see
    /// [`start_launched`]).
    fn spawn_on_first_control(self, host: &Arc<dyn Host>) {
        self.report(host);
        let host = host.clone();
        let cell = self.addr.cell().clone();
        cell.core
            .control
            .launch_on_first_send(Box::new(move |first_start| {
                self.spawn_with(&host, first_start, false)
            }));
    }

    /// Reports the new service to `host` (its own services excepted).
    fn report(&self, host: &Arc<dyn Host>) {
        if !self.addr.core().internal {
            host.report(Event::Spawned {
                service: self.addr.service_ref(),
            });
        }
    }

    /// Launches the task, which starts the service first if given `first_start`. `by_spawner`:
    /// that start was asked for by the spawner, not by the parent (a start that fails then
    /// tells the parent, if the service has one by then).
    fn spawn_with(
        self,
        host: &Arc<dyn Host>,
        first_start: Option<Reply>,
        by_spawner: bool,
    ) -> Option<Inline> {
        let Launch {
            actor,
            addr,
            factory,
            own_thread,
            #[cfg(feature = "testkit")]
            faults,
        } = self;
        let core = addr.core();
        let token = host.track();
        super::meter::spawned();
        let span = super::log::service_span(core);
        // Only a service on its own thread names its thread (`arc` allocates for a static label).
        let thread_setup = own_thread.then(|| (core.settings.shutdown_timeout(), core.label.arc()));
        let board = (!own_thread).then(|| core.observe.busy.clone());
        let starts = first_start.is_some();
        let cell = addr.cell().clone();
        let mut runner = Runner {
            actor,
            cell: addr.cell().clone(),
            ctx: Context::new(addr, host.clone()),
            factory,
            deps_added: false,
            first_start_done: false,
            build_tried: false,
            inbox: VecDeque::new(),
            deferred: VecDeque::new(),
            ctrl_seen: 0,
            held_stops: Vec::new(),
            parent_let_go: false,
            own_thread,
            spawn_start: starts && by_spawner,
            first_start,
            #[cfg(feature = "testkit")]
            faults,
        };
        let current = Current {
            service: runner.ctx.myself().service_ref(),
            own_task: true,
        };
        // The runner is borrowed where the block holds it: an `async fn` taking it by value
        // would keep it twice in the task (as its argument, and moved into its body).
        let run = async move { runner.run().await };
        // Its own thread is there to be blocked: a blocking detector does not watch it.
        let fut = busy::scoped(current, board, None, run.instrument(span));
        if let Some((timeout, label)) = thread_setup {
            thread::spawn_on_thread(host.runtime(), &label, timeout, token, fut);
        } else {
            // A combinator, not an `async` block that awaits `fut`: such a block would hold
            // `fut` twice (captured, and moved into the await).
            let fut = fut.map(move |answers| {
                drop(token);
                answer_all(answers);
            });
            let runtime = host.runtime();
            if starts && may_drive(runtime) {
                return Some(Inline {
                    task: Some(ParkedTask {
                        task: Box::pin(fut),
                        runtime: runtime.clone(),
                        waker: std::task::Waker::from(cell),
                    }),
                });
            }
            runtime.spawn(fut);
        }
        None
    }
}

/// Launches a service's task by `launch`, which starts it at once and answers on the reply it
/// is given, and waits for that answer: driving the task here through its start when `launch`
/// hands it back (see [`Inline`]).
pub(crate) async fn start_launched(
    core: &Core,
    launch: impl FnOnce(Reply) -> Option<Inline>,
) -> Result<bool, Error> {
    let epoch = core.crash_epoch();
    let (reply, started) = tokio::sync::oneshot::channel();
    let answer = core.answer(started, epoch);
    match launch(reply) {
        Some(inline) => inline.drive(&core.control, answer).await,
        None => answer.await,
    }
}

/// An actor's task, not spawned yet, that its spawner drives in its own task until the start
/// it waits for is answered (see [`drive`](Self::drive)). Dropped undriven, it is spawned.
pub(crate) struct Inline {
    task: Option<ParkedTask>,
}

impl Inline {
    pub(crate) fn new(task: ParkedTask) -> Inline {
        Inline { task: Some(task) }
    }

    /// Polls the actor's task and `until` together until `until` is ready; the task goes on
    /// by itself (if it has not ended already). `lane`: the actor's control lane.
    ///
    /// The task runs exactly as it would in a task of its own: same hooks, same order, same
    /// task-local scope, the same blocking detector; only the two task switches of a round
    /// trip are saved. It is polled with the actor's own waker (its cell, see
    /// `ControlLane::wake_dormant`), which wakes the driver while it drives. Then (or if the
    /// driver goes away first) the task is left dormant: it gets a tokio task of its own at
    /// its first wake-up (a message, a timer), or at once if it was woken meanwhile, and that
    /// task's first poll re-registers every waker it waits on. A request to a dormant actor
    /// from its runtime drives it the same way (see `ControlLane::send_driven`).
    pub(crate) async fn drive<T>(
        mut self,
        lane: &ControlLane,
        until: impl std::future::Future<Output = T>,
    ) -> T {
        let mut driving = Driving {
            lane,
            task: self.task.take(),
        };
        let mut until = std::pin::pin!(until);
        std::future::poll_fn(|cx| {
            if let Some(parked) = driving.task.as_mut() {
                lane.drive_by(cx.waker());
                let mut own = std::task::Context::from_waker(&parked.waker);
                let _nested = Nested::enter();
                // A panic in modo's own code ends the task, as it would a spawned one; it
                // must not unwind into the driver.
                let polled = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    parked.task.as_mut().poll(&mut own)
                }));
                match polled {
                    Ok(Poll::Pending) => {}
                    Ok(Poll::Ready(())) | Err(_) => driving.task = None,
                }
            }
            until.as_mut().poll(cx)
        })
        .await
    }
}

impl Drop for Inline {
    fn drop(&mut self) {
        if let Some(parked) = self.task.take() {
            parked.runtime.spawn(parked.task);
        }
    }
}

/// A task being driven: when the drive ends, however it ends, the task is left to itself.
struct Driving<'a> {
    lane: &'a ControlLane,
    task: Option<ParkedTask>,
}

impl Drop for Driving<'_> {
    fn drop(&mut self) {
        self.lane.end_drive(self.task.take());
    }
}

/// How deep a driven task may nest in the thread's poll: each level polls the next from
/// inside its own poll, so a deep chain of drives (a deep tree started or stopped from its
/// root) gives its tasks tokio tasks of their own instead.
const MAX_NESTED_DRIVES: u32 = 16;

thread_local! {
    static NESTED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// One more level of driven task on this thread, for as long as it lives.
struct Nested;

impl Nested {
    fn enter() -> Nested {
        NESTED.with(|n| n.set(n.get() + 1));
        Nested
    }
}

/// Whether an actor's task whose home is `runtime` may be driven here (see [`Inline::drive`]):
/// from a task on that runtime, not too deeply nested.
pub(crate) fn may_drive(runtime: &Handle) -> bool {
    NESTED.with(|n| n.get()) < MAX_NESTED_DRIVES
        && Handle::try_current().is_ok_and(|h| h.id() == runtime.id())
}

impl Drop for Nested {
    fn drop(&mut self) {
        NESTED.with(|n| n.set(n.get().saturating_sub(1)));
    }
}

impl<S: Service> AnySpec for ServiceSpec<S> {
    fn launch_child(self: Box<Self>, host: &Arc<dyn Host>, parent: Parent) -> ServiceRef {
        let observe = parent.observe.clone();
        let (addr, launch) = build(*self, Some(parent), observe);
        launch.spawn_on_first_control(host);
        addr.service_ref()
    }
}

/// The answers a finished actor owes: sent once it is completely gone.
/// The answer to the request that ended it, then the stops held for the parent's decision:
/// no vector is made for the usual single answer.
type Answers = (
    Option<(Reply, Result<bool, Error>)>,
    Vec<(Reply, Result<bool, Error>)>,
);

fn answer_all((first, held): Answers) {
    for (reply, res) in first.into_iter().chain(held) {
        let _ = reply.send(res);
    }
}

/// What the loop does after a control message.
enum Flow {
    Continue,
    /// Terminate, then send this answer (after the mailbox is closed).
    Exit(Option<(Reply, Result<bool, Error>)>),
}

/// How a fresh instance is made for a restart.
enum Factory<A> {
    Sync(Box<dyn FnMut(u32) -> A + Send>),
    Async {
        make: AsyncFactory<A>,
        timeout: Duration,
    },
}

struct Runner<A: Service> {
    /// The service. `None` only for an async factory's service whose first instance is not
    /// built yet (or failed to build): it has never started, so no hook or handler runs.
    actor: Option<A>,
    ctx: Context<A>,
    cell: Arc<Cell<A>>,
    factory: Option<Factory<A>>,
    deps_added: bool,
    first_start_done: bool,
    /// An async factory was called for the first instance (a later start is a retry).
    build_tried: bool,
    /// The batch of user messages taken off the lane, handled in order (see `mailbox.rs`).
    inbox: VecDeque<BoxEnvelope<A>>,
    /// Control messages taken off the lane while a handler was in flight, in arrival order.
    deferred: VecDeque<Control>,
    /// Control messages received so far; compared with the lane's send count.
    ctrl_seen: usize,
    /// Stops waiting for the parent's decision (see `Notice::Stopped`), with their result.
    held_stops: Vec<(Reply, Result<bool, Error>)>,
    /// Stopped for good by its ending parent, which no longer lists it: no exit notice.
    parent_let_go: bool,
    /// Runs on its own thread (Mode's `ServiceThread`): the thread hooks run too.
    own_thread: bool,
    /// A service spawned started: the answer to its first start, which it makes before
    /// anything on its lanes. Only the reply is kept (not a whole `Control`): this field is in
    /// every actor's task for its whole life.
    first_start: Option<Reply>,
    /// The start being made is the one its spawner asked for (see `first_start`), not its
    /// parent.
    spawn_start: bool,
    /// Faults to inject (tests).
    #[cfg(feature = "testkit")]
    faults: Option<Box<super::faults::FaultState>>,
}

/// `fut` bounded by `timeout`; `None` if it ran out. The timer (and its clock read) is armed,
/// and allocated, only if `fut` does not finish on its first poll, which most hooks do: the
/// caller's future holds no timer.
async fn bounded<F: std::future::Future>(timeout: Duration, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        let timer = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// `fut` in a box: the future that awaits it keeps a pointer, not `fut`'s state. For the rare,
/// large steps of a sequence (children, tasks, clean-ups), so that the usual control step stays
/// small and cheap to allocate. A plain function, not an `async fn`: an `async fn` would hold
/// `fut` by value, unboxed, until its first poll, and so weigh as much as `fut` in the caller.
fn boxed<F: std::future::Future>(fut: F) -> std::pin::Pin<Box<F>> {
    Box::pin(fut)
}

/// Waits an injected fault's delay, if there is one.
async fn fault_sleep(delay: Option<Duration>) {
    if let Some(delay) = delay {
        // Boxed: a timer inline would add its size to every future that awaits this one.
        Box::pin(tokio::time::sleep(delay)).await;
    }
}

impl<A: Service> Runner<A> {
    /// Runs the actor to its end, starting first if it was spawned started; returns the
    /// answers it still owes (sent by the caller once the actor is completely gone).
    async fn run(&mut self) -> Answers {
        self.set_up().await;
        let answer = loop {
            let ctrl = if let Some(reply) = self.first_start.take() {
                Control::Start { reply: Some(reply) }
            } else if self.ctx.phase == Phase::Running {
                self.serve().await
            } else {
                self.next_control().await
            };
            // A boxed step, sized for its kind (see `control_step`).
            if let Flow::Exit(answer) = self.control_step(ctrl).await {
                break answer;
            }
        };
        if self.own_thread
            && self.actor.is_some()
            && let Err(reason) = boxed(self.run_hook::<hooks::OnThreadStop>()).await
        {
            self.ctx.log().error(format_args!("{reason}"));
        }
        (answer, std::mem::take(&mut self.held_stops))
    }

    /// `on_init` (an async factory's first instance is built by the first start instead), and
    /// on its own thread the thread's hook. A failure leaves the service crashed before its
    /// first start.
    async fn set_up(&mut self) {
        let initialised = if self.actor.is_some() {
            fault_sleep(self.fault_delay(Hook::OnInit)).await;
            self.install_instance(None, false)
        } else {
            Ok(())
        };
        if let Err(reason) = initialised {
            // A service that cannot even initialise is crashed before its first start.
            self.cell.core.record_crash(reason);
            self.set_state(ServiceState::Crashed);
        } else if self.own_thread
            && self.actor.is_some()
            && let Err(reason) = boxed(self.run_hook::<hooks::OnThreadStarted>()).await
        {
            // Its thread could not be set up: the service cannot start.
            self.cell.core.record_crash(reason);
            self.set_state(ServiceState::Crashed);
        }
    }

    /// How long step `hook` waits first, by an injected fault (feature `testkit`).
    fn fault_delay(&self, hook: Hook) -> Option<Duration> {
        #[cfg(feature = "testkit")]
        return self.faults.as_ref().and_then(|f| f.delay(hook));
        #[cfg(not(feature = "testkit"))]
        {
            let _ = hook;
            None
        }
    }

    /// Runs hook `H` with panic capture: `Err` carries the crash reason.
    async fn run_hook<H: HookFn<A>>(&mut self) -> Result<(), CrashReason> {
        fault_sleep(self.fault_delay(H::HOOK)).await;
        let Some(actor) = self.actor.as_mut() else {
            // Hooks run only once an instance exists (see `Runner::actor`).
            return Err(CrashReason::msg(format!("{} with no instance", H::HOOK)));
        };
        match AssertUnwindSafe(H::call(actor, &mut self.ctx))
            .catch_unwind()
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.hook_failed(H::HOOK, SharedError::from(e))),
            Err(panic) => Err(CrashReason::from_panic(panic, H::HOOK.to_string())),
        }
    }

    /// Runs a stop-sequence hook, bounded by the shutdown timeout.
    async fn run_stop_hook<H: HookFn<A>>(&mut self) -> Result<(), CrashReason> {
        let timeout = self.cell.core.settings.shutdown_timeout();
        match bounded(timeout, self.run_hook::<H>()).await {
            Some(res) => res,
            None => Err(self.hook_failed(
                H::HOOK,
                SharedError::from(BoxError::from(format!("did not return within {timeout:?}"))),
            )),
        }
    }

    /// Publishes `s` to the handles (the registry reads states live). A crash is heard by the
    /// service's watchers.
    fn set_state(&self, s: ServiceState) {
        self.cell.core.publish_state(s);
        if s == ServiceState::Crashed {
            self.fire_down();
        }
    }

    /// Reports a graph change to the host, unless this is one of the host's own services.
    fn report(&self, event: Event) {
        if !self.cell.core.internal {
            self.ctx.host().report(event);
        }
    }

    fn hook_failed(&self, hook: Hook, source: SharedError) -> CrashReason {
        CrashReason::Error(Arc::new(Error::HookFailed {
            label: self.cell.core.label.arc(),
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
            label: self.cell.core.label.arc(),
            reason: reason.clone(),
        }
    }
}
