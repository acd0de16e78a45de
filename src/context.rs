//! [`Context<A>`]: what a hook or handler may do: reach itself and the system, add and remove
//! children, run background tasks, sleep until stopped, crash, log.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::addr::{Addr, ServiceRef};
use crate::cell::Core;
use crate::error::{BoxError, CrashReason, Error};
use crate::log::Log;
use crate::mailbox::Control;
use crate::runner::{self, Parent};
use crate::service::Service;
use crate::spec::IntoServiceSpec;
use crate::system::System;

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
    system: System,
    pub(crate) children: Vec<ServiceRef>,
    pub(crate) token: CancellationToken,
    pub(crate) tasks: Tasks,
    pub(crate) phase: Phase,
}

impl<A: Service> fmt::Debug for Context<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("service", &self.addr)
            .field("children", &self.children.len())
            .field("tasks", &self.tasks.running.len())
            .finish()
    }
}

impl<A: Service> Context<A> {
    pub(crate) fn new(addr: Addr<A>, system: System) -> Self {
        let token = addr.core().stop_token();
        Context {
            addr,
            system,
            children: Vec::new(),
            token,
            tasks: Tasks::default(),
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

    /// The system this service runs in.
    pub fn system(&self) -> &System {
        &self.system
    }

    /// This service's label.
    pub fn label(&self) -> &str {
        &self.core().label
    }

    /// Depth in the service tree: 0 for a root.
    pub fn depth(&self) -> usize {
        self.core().depth
    }

    /// How many times this service was restarted.
    pub fn restart_count(&self) -> u32 {
        self.core().restart_count()
    }

    /// The logger, prefixing each line with `[^--Label]`.
    pub fn log(&self) -> Log<'_> {
        Log::new(self.core())
    }

    /// Whether the service was told to stop (or crashed). Background loops check it.
    pub fn should_stop(&self) -> bool {
        self.token.is_cancelled()
    }

    /// A cloneable handle on this run's stop signal, for background tasks.
    pub fn stop_signal(&self) -> StopSignal {
        StopSignal {
            token: self.token.clone(),
        }
    }

    /// Sleeps for `duration`, or less if the service is told to stop or crashes.
    /// Returns `true` if it slept the whole time, `false` if the stop cut it short.
    pub async fn sleep(&self, duration: Duration) -> bool {
        self.stop_signal().sleep(duration).await
    }

    /// Asks this service to stop for good, after the current hook or handler returns. Use this
    /// instead of `ctx.myself().stop().await`, which would wait on itself.
    pub fn stop(&self) {
        let core = self.core();
        core.signal_stop();
        let _ = core.send_control(Control::Stop {
            terminate: true,
            cause: None,
            reply: None,
        });
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

    /// The children of this service, in the order they were added.
    pub fn children(&self) -> &[ServiceRef] {
        &self.children
    }

    /// Adds a child service (Mode's `add_dependency`). It is started with this service's
    /// start sequence (children in the order added); if this service is already past that
    /// step, start it yourself or use [`add_runtime_dependency`](Self::add_runtime_dependency).
    /// It is stopped before this service finishes stopping, in reverse order.
    pub fn add_dependency<T: IntoServiceSpec>(&mut self, service: T) -> Addr<T::Service> {
        let addr = runner::create(&self.system, service.into_spec(), Some(self.as_parent()));
        self.children.push(addr.service_ref());
        addr
    }

    /// Adds a child service and, if this service has started (or is starting), starts it now.
    ///
    /// # Errors
    /// The child's start error; the child is then removed again.
    pub async fn add_runtime_dependency<T: IntoServiceSpec>(
        &mut self,
        service: T,
    ) -> Result<Addr<T::Service>, Error> {
        let addr = self.add_dependency(service);
        if matches!(self.phase, Phase::Starting | Phase::Running)
            && let Err(e) = addr.start().await
        {
            self.children.retain(|c| c.id() != addr.id());
            return Err(e);
        }
        Ok(addr)
    }

    /// Stops `child` for good and removes it from this service's children.
    ///
    /// # Errors
    /// The child's stop error (it is removed all the same).
    pub async fn remove_dependency(&mut self, child: &ServiceRef) -> Result<(), Error> {
        let before = self.children.len();
        self.children.retain(|c| c != child);
        if self.children.len() == before {
            return Ok(());
        }
        child.stop().await
    }

    /// Runs `fut` as a background task of this service (Mode's `add_future`), named after the
    /// service. See [`spawn_named`](Self::spawn_named).
    pub fn spawn<F>(&mut self, fut: F)
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
    pub fn spawn_named<F>(&mut self, name: impl Into<String>, fut: F)
    where
        F: Future + Send + 'static,
        F::Output: TaskOutput,
    {
        let name: Arc<str> = Arc::from(name.into());
        let owner = self.addr.downgrade();
        let task_name = name.clone();
        let run = self.token.clone();
        let wrapped = async move {
            let reason = match AssertUnwindSafe(fut).catch_unwind().await {
                Ok(out) => match out.into_task_result() {
                    Ok(()) => return,
                    Err(e) => CrashReason::Error(Arc::from(e)),
                },
                Err(panic) => CrashReason::from_panic(panic, format!("task {task_name}")),
            };
            let Some(owner) = owner.upgrade() else { return };
            if run.is_cancelled() {
                // The run this task belonged to is already stopping: report, do not crash
                // whatever run comes next.
                tracing::warn!(target: "modo", "{}: task {task_name} failed while stopping: {reason}", owner.core().prefix);
            } else {
                owner.core().crash(reason);
            }
        };
        let span = tracing::info_span!(target: "modo", "task", name = %name);
        let fut: BoxFuture<'static, ()> = Box::pin(wrapped.instrument(span));
        if self.phase == Phase::Running {
            self.tasks.launch(name, fut);
        } else {
            self.tasks.pending.push((name, fut));
        }
    }

    /// The names of this service's background tasks that are still running.
    pub fn task_names(&self) -> Vec<String> {
        self.tasks
            .running
            .iter()
            .filter(|(_, h)| !h.is_finished())
            .map(|(n, _)| n.to_string())
            .collect()
    }

    pub(crate) fn as_parent(&self) -> Parent {
        Parent {
            cell: self.addr.service_ref().downgrade_cell(),
            depth: self.core().depth,
        }
    }
}

/// What a background task may return: `()` or `Result<(), E>` (an `Err` crashes the service).
pub trait TaskOutput: Send + 'static {
    /// The task's outcome.
    fn into_task_result(self) -> Result<(), BoxError>;
}

impl TaskOutput for () {
    fn into_task_result(self) -> Result<(), BoxError> {
        Ok(())
    }
}

impl<E: Into<BoxError> + Send + 'static> TaskOutput for Result<(), E> {
    fn into_task_result(self) -> Result<(), BoxError> {
        self.map_err(Into::into)
    }
}

/// The background tasks of one service.
#[derive(Default)]
pub(crate) struct Tasks {
    pending: Vec<(Arc<str>, BoxFuture<'static, ()>)>,
    running: Vec<(Arc<str>, JoinHandle<()>)>,
    added: usize,
}

impl Tasks {
    fn next_index(&mut self) -> usize {
        self.added += 1;
        self.added
    }

    fn launch(&mut self, name: Arc<str>, fut: BoxFuture<'static, ()>) {
        // Forget finished tasks so a long-lived service that spawns many does not grow.
        self.running.retain(|(_, h)| !h.is_finished());
        self.running.push((name, tokio::spawn(fut)));
    }

    /// Launches the tasks added during the start sequence, in the order added.
    pub(crate) fn launch_pending(&mut self) {
        for (name, fut) in std::mem::take(&mut self.pending) {
            self.launch(name, fut);
        }
    }

    /// Cancels every task, newest first. Tasks never launched are dropped.
    pub(crate) fn cancel_all(&mut self) {
        self.pending.clear();
        for (_, handle) in self.running.iter().rev() {
            handle.abort();
        }
    }

    /// Waits for the cancelled tasks to end, up to `timeout`. Returns the names of tasks
    /// still running after it.
    pub(crate) async fn join_all(&mut self, timeout: Duration) -> Vec<Arc<str>> {
        let running = std::mem::take(&mut self.running);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut stuck = Vec::new();
        for (name, mut handle) in running {
            if tokio::time::timeout_at(deadline, &mut handle)
                .await
                .is_err()
            {
                stuck.push(name);
            }
        }
        stuck
    }
}

/// A cloneable view of a service's stop signal, for its background tasks.
///
/// ```
/// use modo::prelude::*;
/// use std::time::Duration;
///
/// struct Ticker;
/// impl Service for Ticker {
///     async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
///         let stop = ctx.stop_signal();
///         ctx.spawn(async move {
///             while stop.sleep(Duration::from_secs(1)).await {
///                 // periodic work
///             }
///         });
///         Ok(())
///     }
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), modo::Error> {
/// # let system = System::new();
/// # system.spawn(Ticker).await?;
/// # system.shutdown().await }
/// ```
#[derive(Debug, Clone)]
pub struct StopSignal {
    token: CancellationToken,
}

impl StopSignal {
    /// Whether the service was told to stop or crashed.
    pub fn is_stopping(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Waits until the service is told to stop or crashes.
    pub async fn stopped(&self) {
        self.token.cancelled().await
    }

    /// Sleeps for `duration` or until the stop signal; `true` if it slept the whole time.
    pub async fn sleep(&self, duration: Duration) -> bool {
        tokio::select! {
            biased;
            _ = self.token.cancelled() => false,
            _ = tokio::time::sleep(duration) => true,
        }
    }
}
