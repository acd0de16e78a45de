//! [`Context<A>`]: what a hook or handler may do: reach itself and the system, add and remove
//! children, run background tasks, sleep until stopped, crash, log.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::{Stream, StreamExt};
use tracing::Instrument;

use crate::diag::Diag;
use crate::time::Timer;
use crate::wait::{StopSignal, Ticks, WaitError};

use super::addr::{Addr, ServiceRef};
use super::cell::AnyCell;
use super::cell::{Core, Current};
use super::error::SharedError;
use super::error::{BoxError, CrashReason, Error};
use super::handler::Handler;
use super::host::Host;
use super::log::{Log, Logger};
use super::mailbox::{Control, Notice, Stop};
use super::runner::Parent;
use super::service::Service;
use super::tasks::{Ended, Exit, Exits, Listed, TaskError, TaskHandle, TaskOutput, Tasks};
use super::watch::{Down, DownReason, WatchId};

mod tree;

/// Where the service is in its own lifecycle, as the context sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Not started, or stopped and waiting for a start.
    Idle,
    /// In the start sequence, before its background tasks were launched.
    Starting,
    /// In the start sequence after the tasks were launched, or running.
    Running,
    /// In the stop sequence.
    Stopping,
}

/// The toolbox handed to every hook and handler of a service `A`.
pub struct Context<A: Service> {
    addr: Addr<A>,
    host: Arc<dyn Host>,
    pub(crate) children: Vec<ServiceRef>,
    /// The services this one watches, to end the watches with it.
    pub(crate) watching: Vec<(WatchId, Weak<dyn AnyCell>)>,
    pub(crate) tasks: Tasks,
    pub(crate) exits: Exits,
    pub(crate) phase: Phase,
}

impl<A: Service> fmt::Debug for Context<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("service", &self.addr)
            .field("children", &self.children.len())
            .field("tasks", &self.tasks.len())
            .finish()
    }
}

impl<A: Service> Context<A> {
    pub(crate) fn new(addr: Addr<A>, host: Arc<dyn Host>) -> Self {
        Context {
            addr,
            host,
            children: Vec::new(),
            watching: Vec::new(),
            tasks: Tasks::default(),
            exits: Exits::default(),
            phase: Phase::Idle,
        }
    }

    pub(crate) fn core(&self) -> &Core {
        self.addr.core()
    }

    /// This service's own address.
    pub fn myself(&self) -> &Addr<A> {
        &self.addr
    }

    /// Whoever hosts this service (the System: see `Context::system`).
    pub(crate) fn host(&self) -> &Arc<dyn Host> {
        &self.host
    }

    /// This service's label.
    pub fn label(&self) -> &str {
        &self.core().label
    }

    /// Depth in the service tree: 0 for a root.
    pub fn depth(&self) -> usize {
        self.core().depth()
    }

    /// How many times this service was restarted.
    pub fn restart_count(&self) -> u32 {
        self.core().restart_count()
    }

    /// The logger, prefixing each line with `[^--Label]`.
    pub fn log(&self) -> Log<'_> {
        Log::new(self.core())
    }

    /// The same logger, owned: for a background task, which cannot hold the context.
    pub fn logger(&self) -> Logger {
        Logger::new(self.addr.service_ref())
    }

    /// Feeds each item of `stream` to this service as a message, in order, with backpressure:
    /// the next item is taken only once the last one has room in the mailbox (kameo's
    /// `attach_stream`, actix's `StreamHandler`). The stream belongs to this run of the service:
    /// it is dropped when the service stops (attach it again in `on_start` to have it after a
    /// restart). See [`attach_stream_then`](Self::attach_stream_then) to hear when it ends.
    pub fn attach_stream<S>(&mut self, stream: S)
    where
        S: Stream + Send + 'static,
        S::Item: Send + 'static,
        A: Handler<S::Item>,
    {
        self.attach(stream, None::<S::Item>);
    }

    /// [`attach_stream`](Self::attach_stream), then `end` as a last message once the stream
    /// has ended by itself (not when it is dropped because the service stops).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use futures::stream;
    /// use modo::prelude::*;
    ///
    /// /// Reads lines until the stream ends, then stops.
    /// struct Lines { seen: Arc<Mutex<Vec<String>>> }
    /// impl Service for Lines {
    ///     async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
    ///         let lines = stream::iter(["hello", "world"].map(String::from));
    ///         ctx.attach_stream_then(lines, Eof);
    ///         Ok(())
    ///     }
    /// }
    /// struct Eof;
    /// impl Handler<String> for Lines {
    ///     type Reply = ();
    ///     async fn handle(&mut self, line: String, _ctx: &mut Context<Self>) {
    ///         self.seen.lock().unwrap().push(line);
    ///     }
    /// }
    /// impl Handler<Eof> for Lines {
    ///     type Reply = ();
    ///     async fn handle(&mut self, _: Eof, ctx: &mut Context<Self>) {
    ///         ctx.stop();
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), modo::Error> {
    /// let system = System::new();
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let lines = system.spawn(Lines { seen: seen.clone() }).await?;
    /// lines.wait_until_stopped().await;
    /// assert_eq!(*seen.lock().unwrap(), ["hello", "world"]);
    /// # system.shutdown().await }
    /// ```
    pub fn attach_stream_then<S, E>(&mut self, stream: S, end: E)
    where
        S: Stream + Send + 'static,
        S::Item: Send + 'static,
        E: Send + 'static,
        A: Handler<S::Item> + Handler<E>,
    {
        self.attach(stream, Some(end));
    }

    fn attach<S, E>(&mut self, stream: S, end: Option<E>)
    where
        S: Stream + Send + 'static,
        S::Item: Send + 'static,
        E: Send + 'static,
        A: Handler<S::Item> + Handler<E>,
    {
        let me = self.addr.downgrade();
        let name = format!("{}.stream", self.core().label);
        self.spawn_named(name, async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                let Some(me) = me.upgrade() else { return };
                if me.tell(item).await.is_err() {
                    return;
                }
            }
            if let (Some(end), Some(me)) = (end, me.upgrade()) {
                let _ = me.tell(end).await;
            }
        });
    }

    /// Whether the service was told to stop (or crashed). Background loops check it.
    pub fn should_stop(&self) -> bool {
        self.core().is_stopping()
    }

    /// A cloneable handle on this run's stop signal, for background tasks: the same sleeps
    /// and waits as the context.
    pub fn stop_signal(&self) -> StopSignal {
        StopSignal::new(self.core().stop_token())
    }

    /// Sleeps for `duration` (a [`Duration`] or a [`Seconds`](crate::Seconds)), or less if
    /// the service is told to stop or crashes. Returns `true` if it slept the whole time,
    /// `false` if the stop cut it short (Mode's `sleep` wakes on stop only; this also wakes on
    /// a crash).
    pub async fn sleep(&self, duration: impl Into<Duration>) -> bool {
        self.stop_signal().sleep(duration).await
    }

    /// Runs `fut` until it completes or the service stops (then `fut` is dropped).
    ///
    /// # Errors
    /// [`WaitError::Stopped`].
    pub async fn wait<F: Future>(&self, fut: F) -> Result<F::Output, WaitError> {
        self.stop_signal().wait(fut).await
    }

    /// [`wait`](Self::wait) with a timeout, kept apart from the stop.
    ///
    /// # Errors
    /// [`WaitError::Stopped`] or [`WaitError::Timeout`].
    pub async fn wait_timeout<F: Future>(
        &self,
        fut: F,
        timeout: impl Into<Duration>,
    ) -> Result<F::Output, WaitError> {
        self.stop_signal().wait_timeout(fut, timeout).await
    }

    /// The first of `futs` to complete (index and output), unless the service stops first.
    ///
    /// # Errors
    /// [`WaitError::Stopped`], or [`WaitError::Empty`] for no futures.
    pub async fn wait_first<I>(
        &self,
        futs: I,
    ) -> Result<(usize, <I::Item as Future>::Output), WaitError>
    where
        I: IntoIterator,
        I::Item: Future,
    {
        self.stop_signal().wait_first(futs).await
    }

    /// All of `futs`, in order, unless the service stops first.
    ///
    /// # Errors
    /// [`WaitError::Stopped`].
    pub async fn wait_many<I>(&self, futs: I) -> Result<Vec<<I::Item as Future>::Output>, WaitError>
    where
        I: IntoIterator,
        I::Item: Future,
    {
        self.stop_signal().wait_many(futs).await
    }

    /// [`wait_first`](Self::wait_first) with a timeout, kept apart from the stop.
    ///
    /// # Errors
    /// [`WaitError::Stopped`], [`WaitError::Timeout`], or [`WaitError::Empty`].
    pub async fn wait_first_timeout<I>(
        &self,
        futs: I,
        timeout: impl Into<Duration>,
    ) -> Result<(usize, <I::Item as Future>::Output), WaitError>
    where
        I: IntoIterator,
        I::Item: Future,
    {
        self.stop_signal().wait_first_timeout(futs, timeout).await
    }

    /// [`wait_many`](Self::wait_many) with a timeout, kept apart from the stop.
    ///
    /// # Errors
    /// [`WaitError::Stopped`] or [`WaitError::Timeout`].
    pub async fn wait_many_timeout<I>(
        &self,
        futs: I,
        timeout: impl Into<Duration>,
    ) -> Result<Vec<<I::Item as Future>::Output>, WaitError>
    where
        I: IntoIterator,
        I::Item: Future,
    {
        self.stop_signal().wait_many_timeout(futs, timeout).await
    }

    /// Runs `fut` until it completes or the service stops; `true` if the service stopped
    /// first.
    pub async fn wait_for_stopped<F: Future>(&self, fut: F) -> bool {
        self.stop_signal().wait_for_stopped(fut).await
    }

    /// Drift-corrected ticks every `interval` (Mode's `itertimer`), ending when the service
    /// stops; the first tick comes one full interval from now. See [`Timer`].
    pub fn itertimer(&self, interval: impl Into<Duration>) -> Ticks {
        let timer = Timer::new(interval).name(self.core().prefix().to_string());
        Ticks::new(timer, self.stop_signal())
    }

    /// Ticks of a [`Timer`] you configured (say, its `max_drift_correction`), ending when the
    /// service stops.
    pub fn ticks(&self, timer: Timer) -> Ticks {
        Ticks::new(timer, self.stop_signal())
    }

    /// Runs `f` every `interval` as a background task (Mode's `@timer`), on the
    /// drift-corrected schedule of [`itertimer`](Self::itertimer), until the service stops. A
    /// run that returns `Err` or panics crashes the service.
    pub fn timer<F, Fut>(&mut self, interval: impl Into<Duration>, mut f: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: TaskOutput,
    {
        let interval = interval.into();
        let mut ticks = self.itertimer(interval);
        let name = format!("{}.timer({interval:?})", self.core().label);
        self.spawn_named(name, async move {
            while ticks.next().await.is_some() {
                f().await.into_task_result()?;
            }
            Ok::<(), BoxError>(())
        });
    }

    /// Sends this service the message `make()` every `interval`, on the drift-corrected
    /// schedule: periodic work that needs `&mut self` goes through the mailbox like any other
    /// message. Ends when the service stops.
    pub fn tell_every<M, F>(&mut self, interval: impl Into<Duration>, mut make: F)
    where
        A: Handler<M>,
        M: Send + 'static,
        F: FnMut() -> M + Send + 'static,
    {
        let interval = interval.into();
        let mut ticks = self.itertimer(interval);
        let me = self.addr.downgrade();
        let name = format!("{}.tell_every({interval:?})", self.core().label);
        self.spawn_named(name, async move {
            while ticks.next().await.is_some() {
                let Some(me) = me.upgrade() else { return };
                if me.tell(make()).await.is_err() {
                    return;
                }
            }
        });
    }

    /// Keeps `guard` until this run of the service stops, then drops it (Mode's
    /// `add_context`). Guards are dropped in reverse order of adding, after the background
    /// tasks are joined and before `on_shutdown`; also when the service crashes.
    pub fn add_context<G: Send + 'static>(&mut self, guard: G) {
        self.exits.push(Exit::Guard(Box::new(guard)));
    }

    /// Runs `cleanup` when this run of the service stops (Mode's `add_async_context`), in
    /// reverse order of adding, together with the guards of [`add_context`](Self::add_context),
    /// bounded by the shutdown timeout; also when the service crashes.
    pub fn add_async_context<F>(&mut self, cleanup: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.exits.push(Exit::Async(Box::pin(cleanup)));
    }

    /// This service's diagnostic flags.
    pub fn diag(&self) -> &Diag {
        &self.core().diag
    }

    /// Asks this service to stop for good, after the current hook or handler returns. Use this
    /// instead of `ctx.myself().stop().await`, which would wait on itself.
    pub fn stop(&self) {
        let core = self.core();
        core.signal_stop();
        let _ = core.send_control(Control::Stop(Stop::for_good(true)));
    }

    /// Asks this service to stop for good once it has handled every user message queued now
    /// (see [`ServiceRef::drain_and_stop`](crate::ServiceRef::drain_and_stop)); messages
    /// queued later are not handled. Returns at once.
    pub fn drain_and_stop(&self) {
        let me = self.addr.service_ref();
        let stop = Stop::for_good(true);
        // A closed mailbox: stopping for good already.
        let _ = me.cell_ref().queue_stop_now(stop);
    }

    /// Crashes this service (and its children) with `reason` once the current hook or
    /// handler returns.
    pub fn crash(&self, reason: impl Into<CrashReason>) {
        self.core().crash(reason.into());
    }

    /// Sets the shutdown flag that a [`wait_for_shutdown`](Service::wait_for_shutdown)
    /// service waits for while stopping.
    pub fn set_shutdown(&self) {
        self.core().set_shutdown();
    }

    /// Watches `service` (any service, not only a child): when it stops for good or crashes,
    /// this service hears it once, in [`Service::on_down`], with the reason. Watching a
    /// service that has already stopped or crashed fires at once. The watch ends when it
    /// fires, when it is cancelled with [`unwatch`](Self::unwatch), or when this service ends.
    ///
    /// ```
    /// use modo::prelude::*;
    /// use modo::{Down, DownReason};
    ///
    /// struct Member;
    /// impl Service for Member {}
    ///
    /// #[derive(Default)]
    /// struct Room { left: Vec<String> }
    /// impl Service for Room {
    ///     async fn on_down(&mut self, down: Down, _ctx: &mut Context<Self>) -> HookResult {
    ///         self.left.push(down.to_string());
    ///         Ok(())
    ///     }
    /// }
    ///
    /// struct Join(ServiceRef);
    /// impl Handler<Join> for Room {
    ///     type Reply = ();
    ///     async fn handle(&mut self, Join(member): Join, ctx: &mut Context<Self>) {
    ///         ctx.watch(&member);
    ///     }
    /// }
    /// struct Left;
    /// impl Handler<Left> for Room {
    ///     type Reply = Vec<String>;
    ///     async fn handle(&mut self, _: Left, _ctx: &mut Context<Self>) -> Vec<String> {
    ///         self.left.clone()
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), modo::Error> {
    /// let system = System::new();
    /// let room = system.spawn(Room::default()).await?;
    /// let member = system.spawn(Member).await?;
    /// room.ask(Join(member.service_ref())).await?;
    /// member.stop().await?;
    /// assert_eq!(room.ask(Left).await?, ["Member stopped"]);
    /// # system.shutdown().await }
    /// ```
    pub fn watch(&mut self, service: &ServiceRef) -> WatchId {
        let id = WatchId::new();
        let me: Weak<dyn AnyCell> = self.addr.service_ref().downgrade_cell();
        if service.core().watchers.add(id, me) {
            self.watching.push((id, service.downgrade_cell()));
        } else {
            // Already down: hear it at once (after the current hook or handler).
            let reason = match service.crash_reason() {
                Some(reason) => DownReason::Crashed(reason),
                None => DownReason::Stopped,
            };
            let down = Down {
                watch: id,
                service: service.clone(),
                reason,
            };
            let _ = self
                .core()
                .control
                .send(Control::Notice(Notice::Down(Box::new(down))));
        }
        id
    }

    /// Cancels a watch: it will not fire. Does nothing for a watch that has fired.
    pub fn unwatch(&mut self, watch: WatchId) {
        if let Some(i) = self.watching.iter().position(|(id, _)| *id == watch) {
            let (id, target) = self.watching.swap_remove(i);
            if let Some(target) = target.upgrade() {
                target.core().watchers.remove(id);
            }
        }
    }

    /// Ends every watch this service holds (it is ending).
    pub(crate) fn unwatch_all(&mut self) {
        for (id, target) in self.watching.drain(..) {
            if let Some(target) = target.upgrade() {
                target.core().watchers.remove(id);
            }
        }
    }

    /// Runs `fut` as a background task of this service (Mode's `add_future`), named after the
    /// service. See [`spawn_named`](Self::spawn_named).
    pub fn spawn<F>(&mut self, fut: F) -> TaskHandle
    where
        F: Future + Send + 'static,
        F::Output: TaskOutput,
    {
        let index = self.tasks.next_index();
        let name = format!("{}#{index}", self.core().label);
        self.spawn_named(name, fut)
    }

    /// Runs `fut` as a named background task of this service.
    ///
    /// A task added before the start sequence reaches its background-task step (in
    /// `on_first_start` or `on_start`) is launched at that step; later ones at once. At stop,
    /// tasks are cancelled in reverse order of adding, then joined. A task that panics or
    /// returns `Err` crashes the service.
    ///
    /// The returned [`TaskHandle`] (Mode's `add_future` returns the future) can be awaited for
    /// how the task ended, or aborted; dropping it changes nothing.
    pub fn spawn_named<F>(&mut self, name: impl Into<String>, fut: F) -> TaskHandle
    where
        F: Future + Send + 'static,
        F::Output: TaskOutput,
    {
        let name: Arc<str> = Arc::from(name.into());
        let owner = self.addr.downgrade();
        let task_name = name.clone();
        let label = self.core().label.arc();
        let run = self.core().stop_token();
        let registered = name.clone();
        let (fut, abort) = futures::future::abortable(fut);
        let (ended_tx, handle) = Ended::pair(name.clone(), abort);
        let wrapped = async move {
            // Drops off the service's list of running tasks however the task ends (done,
            // failed, or aborted at stop).
            let _listed = Listed {
                owner: owner.clone(),
                name: registered,
            };
            let reason = match AssertUnwindSafe(fut).catch_unwind().await {
                Ok(Err(futures::future::Aborted)) => {
                    ended_tx.send(Err(TaskError::Aborted));
                    return;
                }
                Ok(Ok(out)) => match out.into_task_result() {
                    Ok(()) => {
                        ended_tx.send(Ok(()));
                        return;
                    }
                    Err(e) => {
                        let e: SharedError = Arc::from(e);
                        ended_tx.send(Err(TaskError::Failed(e.clone())));
                        CrashReason::Error(Arc::new(Error::TaskFailed {
                            label: label.clone(),
                            task: task_name.clone(),
                            source: e,
                        }))
                    }
                },
                Err(panic) => {
                    let reason = CrashReason::from_panic(panic, format!("task {task_name}"));
                    ended_tx.send(Err(TaskError::Panicked(reason.clone())));
                    reason
                }
            };
            let Some(owner) = owner.upgrade() else { return };
            if run.is_cancelled() {
                // The run this task belonged to is already stopping: report, do not crash
                // whatever run comes next.
                tracing::warn!(target: "modo", "{}: task {task_name} failed while stopping: {reason}", owner.core().prefix());
            } else {
                owner.core().crash(reason);
            }
        };
        let span = tracing::info_span!(target: "modo", "task", name = %name);
        let current = Current {
            service: self.addr.service_ref(),
            own_task: false,
        };
        let board = self.core().observe.busy.clone();
        let fut: BoxFuture<'static, ()> = Box::pin(super::busy::scoped(
            current,
            Some(board),
            Some(name.clone()),
            wrapped.instrument(span),
        ));
        if self.phase == Phase::Running {
            let core = self.addr.core();
            self.tasks.launch(name, fut, core);
        } else {
            self.tasks.pending().push((name, fut));
        }
        handle
    }

    /// The names of this service's background tasks that are still running (or waiting to be
    /// launched by the start sequence).
    pub fn task_names(&self) -> Vec<String> {
        self.tasks.names()
    }

    pub(crate) fn as_parent(&self) -> Parent {
        Parent {
            cell: self.addr.service_ref().downgrade_cell(),
            depth: self.core().depth(),
            observe: self.core().observe.clone(),
        }
    }
}
