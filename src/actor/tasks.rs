//! A service's background tasks (Mode's `add_future`) and exit stack (`add_context`): what
//! runs beside the service during one run, and is cancelled, joined and closed at its stop.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::task::JoinHandle;

use super::addr::WeakAddr;
use super::cell::Core;
use super::error::{BoxError, CrashReason, SharedError};
use super::service::Service;

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

/// Why a background task did not finish with `Ok`: what awaiting its [`TaskHandle`] gives.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// [`TaskHandle::abort`] ended it.
    #[error("the task was aborted")]
    Aborted,
    /// Its service stopped (or crashed) first: the task was cancelled with the run.
    #[error("the task was cancelled: its service stopped")]
    Cancelled,
    /// It returned this error (its service crashed with it).
    #[error("the task failed: {0}")]
    Failed(SharedError),
    /// It panicked (its service crashed with it).
    #[error("the task {0}")]
    Panicked(CrashReason),
}

/// A background task of a service, from [`Context::spawn`](crate::Context::spawn) or
/// [`spawn_named`](crate::Context::spawn_named) (Mode's `add_future` returns the future):
/// await it to learn how it ended, or [`abort`](Self::abort) it. Dropping the handle leaves
/// the task running: it still belongs to its service, which cancels it at stop.
///
/// ```
/// use modo::prelude::*;
/// use modo::TaskError;
/// use std::time::Duration;
///
/// struct Fetcher;
/// impl Service for Fetcher {
///     async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
///         let quick = ctx.spawn(async { /* work */ });
///         let slow = ctx.spawn(tokio::time::sleep(Duration::from_secs(3600)));
///         ctx.spawn(async move {
///             assert!(quick.await.is_ok());
///             slow.abort();
///             assert!(matches!(slow.await, Err(TaskError::Aborted)));
///         });
///         Ok(())
///     }
/// }
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), modo::Error> {
/// # let system = System::new();
/// # system.spawn(Fetcher).await?;
/// # tokio::time::sleep(Duration::from_millis(1)).await;
/// # system.shutdown().await }
/// ```
pub struct TaskHandle {
    name: Arc<str>,
    abort: futures::future::AbortHandle,
    ended: tokio::sync::oneshot::Receiver<Result<(), TaskError>>,
}

impl TaskHandle {
    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Ends the task at its next await; its handle then gives [`TaskError::Aborted`]. An
    /// aborted task does not crash its service.
    pub fn abort(&self) {
        self.abort.abort();
    }

    /// Whether the task has ended (however it ended).
    pub fn is_finished(&self) -> bool {
        !self.ended.is_empty()
    }
}

/// The sending side of a [`TaskHandle`]: says how the task ended, and `Cancelled` if it is
/// dropped first (the task was cancelled with its service, or never launched).
pub(crate) struct Ended(Option<tokio::sync::oneshot::Sender<Result<(), TaskError>>>);

impl Ended {
    /// A handle for a task named `name` that `abort` can end, and the side that reports it.
    pub(crate) fn pair(name: Arc<str>, abort: futures::future::AbortHandle) -> (Ended, TaskHandle) {
        let (tx, ended) = tokio::sync::oneshot::channel();
        (Ended(Some(tx)), TaskHandle { name, abort, ended })
    }

    pub(crate) fn send(mut self, how: Result<(), TaskError>) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(how);
        }
    }
}

impl Drop for Ended {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(Err(TaskError::Cancelled));
        }
    }
}

impl std::fmt::Debug for TaskHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskHandle")
            .field("name", &self.name)
            .finish()
    }
}

impl std::future::Future for TaskHandle {
    type Output = Result<(), TaskError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.ended)
            .poll(cx)
            .map(|ended| ended.unwrap_or(Err(TaskError::Cancelled)))
    }
}

/// Takes a task off its service's list of running tasks when the task ends.
pub(crate) struct Listed<A: Service> {
    pub(crate) owner: WeakAddr<A>,
    pub(crate) name: Arc<str>,
}

impl<A: Service> Drop for Listed<A> {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.upgrade() {
            owner.core().task_ended(&self.name);
        }
    }
}

/// What [`Context::add_context`] and [`Context::add_async_context`] keep.
pub(crate) enum Exit {
    Guard(Box<dyn std::any::Any + Send>),
    Async(BoxFuture<'static, ()>),
}

/// The exit stack of one run. Behind a mutex only so that `Context` is `Sync` (a hook may
/// hold `&Context` across an await); every access has `&mut`, so it never blocks.
#[derive(Default)]
pub(crate) struct Exits {
    stack: std::sync::Mutex<Vec<Exit>>,
}

impl Exits {
    fn stack(&mut self) -> &mut Vec<Exit> {
        self.stack.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether nothing is on the stack.
    pub(crate) fn is_empty(&mut self) -> bool {
        self.stack().is_empty()
    }

    pub(crate) fn push(&mut self, exit: Exit) {
        self.stack().push(exit);
    }

    /// Closes everything, newest first; async clean-ups share `timeout`. Returns how many
    /// clean-ups did not finish in time.
    pub(crate) async fn close(&mut self, timeout: Duration) -> usize {
        if self.stack().is_empty() {
            return 0;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut late = 0;
        while let Some(exit) = self.stack().pop() {
            match exit {
                Exit::Guard(guard) => drop(guard),
                Exit::Async(cleanup) => {
                    if tokio::time::timeout_at(deadline, cleanup).await.is_err() {
                        late += 1;
                    }
                }
            }
        }
        late
    }
}

/// The background tasks of one service.
#[derive(Default)]
pub(crate) struct Tasks {
    /// Behind a mutex only so that `Context` is `Sync`; accessed with `&mut`, never blocks.
    pending: std::sync::Mutex<Vec<(Arc<str>, BoxFuture<'static, ()>)>>,
    running: Vec<(Arc<str>, JoinHandle<()>)>,
    added: usize,
}

impl Tasks {
    /// How many tasks were launched and not yet forgotten.
    pub(crate) fn len(&self) -> usize {
        self.running.len()
    }

    /// The names of the tasks still running, then of those waiting to be launched.
    pub(crate) fn names(&self) -> Vec<String> {
        let pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let running = self.running.iter().filter(|(_, h)| !h.is_finished());
        running
            .map(|(n, _)| n)
            .chain(pending.iter().map(|(n, _)| n))
            .map(|n| n.to_string())
            .collect()
    }

    pub(crate) fn next_index(&mut self) -> usize {
        self.added += 1;
        self.added
    }

    pub(crate) fn launch(&mut self, name: Arc<str>, fut: BoxFuture<'static, ()>, core: &Core) {
        core.task_started(&name);
        // Forget finished tasks so a long-lived service that spawns many does not grow.
        self.running.retain(|(_, h)| !h.is_finished());
        self.running.push((name, tokio::spawn(fut)));
    }

    /// Launches the tasks added during the start sequence, in the order added.
    pub(crate) fn pending(&mut self) -> &mut Vec<(Arc<str>, BoxFuture<'static, ()>)> {
        self.pending.get_mut().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn launch_pending(&mut self, core: &Core) {
        for (name, fut) in std::mem::take(self.pending()) {
            self.launch(name, fut, core);
        }
    }

    /// Cancels every task, newest first. Tasks never launched are dropped.
    pub(crate) fn cancel_all(&mut self) {
        self.pending().clear();
        for (_, handle) in self.running.iter().rev() {
            handle.abort();
        }
    }

    /// Waits for the cancelled tasks to end, up to `timeout`. Returns the names of tasks
    /// still running after it.
    pub(crate) async fn join_all(&mut self, timeout: Duration) -> Vec<Arc<str>> {
        if self.running.is_empty() {
            return Vec::new();
        }
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
