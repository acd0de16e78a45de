//! A future as a service (Mode's `Service.from_awaitable`): starting the service runs the
//! future as its background task, stopping it cancels the future.

use std::fmt;
use std::future::Future;

use crate::{Context, HookResult, Lifecycle, Service, TaskOutput};

/// A service that runs one future. Made by [`from_future`].
///
/// When the future completes the service stops itself; if it returns `Err` or panics, the
/// service crashes. The future runs once: to restart it, spawn the service from a factory
/// (`ServiceSpec::from_factory(|| from_future(make()))`), which builds a fresh future for each
/// run.
///
/// ```
/// use modo::prelude::*;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), modo::Error> {
/// let system = System::new();
/// let job = system
///     .spawn(modo::from_future(async {
///         tokio::time::sleep(std::time::Duration::from_secs(5)).await;
///     }))
///     .await?;
/// job.wait_until_stopped().await; // the future finished: the service stopped
/// assert_eq!(job.state(), ServiceState::Shutdown);
/// # system.shutdown().await }
/// ```
pub struct FutureService<F> {
    fut: Option<F>,
    label: String,
}

/// Wraps `fut` in a [`FutureService`] labelled `FutureService`.
pub fn from_future<F>(fut: F) -> FutureService<F>
where
    F: Future + Send + 'static,
    F::Output: TaskOutput,
{
    FutureService {
        fut: Some(fut),
        label: "FutureService".to_owned(),
    }
}

impl<F> FutureService<F> {
    /// Gives the service a label (Mode's `name`).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }
}

impl<F> fmt::Debug for FutureService<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FutureService")
            .field("label", &self.label)
            .field("pending", &self.fut.is_some())
            .finish()
    }
}

impl<F> Service for FutureService<F>
where
    F: Future + Send + 'static,
    F::Output: TaskOutput,
{
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let fut = self
            .fut
            .take()
            .ok_or("the future already ran; spawn from a factory to restart it")?;
        let me = ctx.myself().downgrade();
        ctx.spawn_named(self.label.clone(), async move {
            let out = fut.await.into_task_result();
            if out.is_ok()
                && let Some(me) = me.upgrade()
            {
                let _ = me.send_lifecycle(Lifecycle::Stop);
            }
            out
        });
        Ok(())
    }

    fn label(&self) -> std::borrow::Cow<'static, str> {
        self.label.clone().into()
    }
}
