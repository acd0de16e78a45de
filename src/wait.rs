//! Interruptible waiting: sleeps and waits that end as soon as their service is told to stop
//! or crashes. Everything abandoned is dropped on the spot: nothing keeps running.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::Stream;
use tokio_util::sync::CancellationToken;

use crate::time::{Tick, Timer};

/// Why a wait ended without its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The service was told to stop (or crashed) first.
    #[error("the service is stopping")]
    Stopped,
    /// The timeout ran out first.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// `wait_first` was given no futures.
    #[error("nothing to wait for")]
    Empty,
}

/// A cloneable view of a service's stop signal, for its background tasks: the same sleeps
/// and waits as [`Context`](crate::Context), usable where the context is not.
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
    pub(crate) fn new(token: CancellationToken) -> Self {
        StopSignal { token }
    }

    /// Whether the service was told to stop or crashed.
    pub fn is_stopping(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Waits until the service is told to stop or crashes.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn stopped(&self) {
        self.token.cancelled().await
    }

    /// Sleeps for `duration`, or less if the service is told to stop or crashes. Returns `true`
    /// if it slept the whole time, `false` if the stop cut it short.
    pub async fn sleep(&self, duration: impl Into<Duration>) -> bool {
        let duration = duration.into();
        tokio::select! {
            biased;
            _ = self.token.cancelled() => false,
            _ = tokio::time::sleep(duration) => true,
        }
    }

    /// Runs `fut` until it completes or the service stops; on a stop, `fut` is dropped.
    ///
    /// # Errors
    /// [`WaitError::Stopped`].
    pub async fn wait<F: Future>(&self, fut: F) -> Result<F::Output, WaitError> {
        tokio::select! {
            biased;
            _ = self.token.cancelled() => Err(WaitError::Stopped),
            out = fut => Ok(out),
        }
    }

    /// [`wait`](Self::wait) with a timeout; the two outcomes stay apart (Mode reports both as
    /// "stopped").
    ///
    /// # Errors
    /// [`WaitError::Stopped`] or [`WaitError::Timeout`].
    pub async fn wait_timeout<F: Future>(
        &self,
        fut: F,
        timeout: impl Into<Duration>,
    ) -> Result<F::Output, WaitError> {
        let timeout = timeout.into();
        match tokio::time::timeout(timeout, self.wait(fut)).await {
            Ok(res) => res,
            Err(_) => Err(WaitError::Timeout(timeout)),
        }
    }

    /// Waits for the first of `futs` to complete: its index and output. The others are
    /// dropped.
    ///
    /// # Errors
    /// [`WaitError::Stopped`]; [`WaitError::Empty`] if `futs` is empty.
    pub async fn wait_first<I>(
        &self,
        futs: I,
    ) -> Result<(usize, <I::Item as Future>::Output), WaitError>
    where
        I: IntoIterator,
        I::Item: Future,
    {
        let futs: Vec<Pin<Box<I::Item>>> = futs.into_iter().map(Box::pin).collect();
        if futs.is_empty() {
            return Err(WaitError::Empty);
        }
        let (out, index, _rest) = self.wait(futures::future::select_all(futs)).await?;
        Ok((index, out))
    }

    /// Waits for all of `futs`, returning their outputs in order.
    ///
    /// # Errors
    /// [`WaitError::Stopped`] (every future is dropped).
    pub async fn wait_many<I>(&self, futs: I) -> Result<Vec<<I::Item as Future>::Output>, WaitError>
    where
        I: IntoIterator,
        I::Item: Future,
    {
        self.wait(futures::future::join_all(futs)).await
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
        let timeout = timeout.into();
        match tokio::time::timeout(timeout, self.wait_first(futs)).await {
            Ok(res) => res,
            Err(_) => Err(WaitError::Timeout(timeout)),
        }
    }

    /// [`wait_many`](Self::wait_many) with a timeout, kept apart from the stop: all of the
    /// outputs, or none (every future is dropped at the timeout).
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
        let timeout = timeout.into();
        match tokio::time::timeout(timeout, self.wait_many(futs)).await {
            Ok(res) => res,
            Err(_) => Err(WaitError::Timeout(timeout)),
        }
    }

    /// Runs `fut` until it completes or the service stops. Returns `true` if the service
    /// stopped first (Mode's `wait_for_stopped`).
    pub async fn wait_for_stopped<F: Future>(&self, fut: F) -> bool {
        self.wait(fut).await.is_err()
    }

    /// A stream of drift-corrected ticks every `interval` (Mode's `itertimer`), ending when
    /// the service stops. The first tick comes one full interval from now.
    pub fn itertimer(&self, interval: impl Into<Duration>) -> Ticks {
        Ticks::new(Timer::new(interval), self.clone())
    }
}

/// The stream of [`StopSignal::itertimer`] and [`Context::itertimer`](crate::Context::itertimer).
///
/// Read it with [`Ticks::next`], or as a `futures::Stream`.
pub struct Ticks {
    inner: Pin<Box<dyn Stream<Item = Tick> + Send>>,
}

impl std::fmt::Debug for Ticks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ticks")
    }
}

impl Ticks {
    pub(crate) fn new(timer: Timer, stop: StopSignal) -> Self {
        let inner = futures::stream::unfold((timer, stop), |(mut timer, stop)| async move {
            let tick = stop.wait(timer.tick()).await.ok()?;
            Some((tick, (timer, stop)))
        });
        Ticks {
            inner: Box::pin(inner),
        }
    }

    /// The next tick, or `None` once the service stops.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn next(&mut self) -> Option<Tick> {
        self.inner.next().await
    }
}

impl Stream for Ticks {
    type Item = Tick;
    fn poll_next(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Tick>> {
        self.inner.as_mut().poll_next(cx)
    }
}
