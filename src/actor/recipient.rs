//! [`Recipient<M, R>`]: a handle to "anything that handles `M`", whatever its type.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::oneshot;

use super::addr::{Addr, ServiceRef};
use super::error::{Error, SendError, TrySendError};
use super::handler::Handler;
use super::reply::ReplyTo;

/// What a recipient needs of the service behind it: the typed sends, erased.
trait Sink<M, R>: Send + Sync + 'static {
    fn try_tell(&self, msg: M) -> Result<(), TrySendError<M>>;
    fn tell(&self, msg: M) -> BoxFuture<'_, Result<(), SendError<M>>>;
    fn ask(&self, msg: M) -> BoxFuture<'_, Result<R, Error>>;
}

impl<A, M> Sink<M, A::Reply> for Addr<A>
where
    A: Handler<M>,
    M: Send + 'static,
{
    fn try_tell(&self, msg: M) -> Result<(), TrySendError<M>> {
        Addr::try_tell(self, msg)
    }

    fn tell(&self, msg: M) -> BoxFuture<'_, Result<(), SendError<M>>> {
        Box::pin(Addr::tell(self, msg))
    }

    fn ask(&self, msg: M) -> BoxFuture<'_, Result<A::Reply, Error>> {
        Box::pin(Addr::ask(self, msg))
    }
}

/// A handle to any service that handles `M` (with reply `R`): a Frontier can report to
/// whoever asked, without knowing the asker's type. Cloneable, `Send + Sync`, and it derefs
/// to the service's [`ServiceRef`] (lifecycle and queries). Made with
/// [`Addr::recipient`](crate::Addr::recipient) or `.into()`.
///
/// ```
/// use modo::prelude::*;
/// use modo::Recipient;
///
/// struct Found(&'static str);
///
/// #[derive(Default)]
/// struct Stats { found: Vec<&'static str> }
/// impl Service for Stats {}
/// impl Handler<Found> for Stats {
///     type Reply = ();
///     async fn handle(&mut self, Found(url): Found, _ctx: &mut Context<Self>) {
///         self.found.push(url);
///     }
/// }
/// struct Count;
/// impl Handler<Count> for Stats {
///     type Reply = usize;
///     async fn handle(&mut self, _: Count, _ctx: &mut Context<Self>) -> usize {
///         self.found.len()
///     }
/// }
///
/// /// Knows only that someone wants to hear of what it finds.
/// struct Crawler { report: Recipient<Found> }
/// impl Service for Crawler {
///     async fn on_started(&mut self, _ctx: &mut Context<Self>) -> HookResult {
///         self.report.tell(Found("https://example.invalid/")).await?;
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), modo::Error> {
/// let system = System::new();
/// let stats = system.spawn(Stats::default()).await?;
/// system.spawn(Crawler { report: stats.recipient() }).await?;
/// assert_eq!(stats.ask(Count).await?, 1);
/// # system.shutdown().await }
/// ```
pub struct Recipient<M, R = ()> {
    sink: Arc<dyn Sink<M, R>>,
    service: ServiceRef,
}

impl<M: Send + 'static, R: Send + 'static> Recipient<M, R> {
    pub(crate) fn new<A>(addr: Addr<A>) -> Self
    where
        A: Handler<M, Reply = R>,
    {
        let service = addr.service_ref();
        Recipient {
            sink: Arc::new(addr),
            service,
        }
    }

    /// Queues `msg`, waiting only for room in the mailbox.
    ///
    /// # Errors
    /// [`SendError`] with the message inside if the service has stopped for good.
    ///
    /// # Cancel safety
    /// As [`Addr::tell`](crate::Addr::tell).
    pub async fn tell(&self, msg: M) -> Result<(), SendError<M>> {
        // Room now: no boxed future.
        match self.sink.try_tell(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(msg, _)) => self.sink.tell(msg).await,
            Err(TrySendError::Stopped(msg, label)) => Err(SendError::new(msg, label)),
        }
    }

    /// Queues `msg` if the mailbox has room now.
    ///
    /// # Errors
    /// [`TrySendError`] with the message inside.
    pub fn try_tell(&self, msg: M) -> Result<(), TrySendError<M>> {
        self.sink.try_tell(msg)
    }

    /// Sends `msg` and waits for the reply.
    ///
    /// # Errors
    /// As [`Addr::ask`](crate::Addr::ask).
    pub async fn ask(&self, msg: M) -> Result<R, Error> {
        self.sink.ask(msg).await
    }

    /// [`ask`](Self::ask), giving up after `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`], or any error of [`ask`](Self::ask).
    pub async fn ask_timeout(&self, msg: M, timeout: Duration) -> Result<R, Error> {
        match tokio::time::timeout(timeout, self.ask(msg)).await {
            Ok(res) => res,
            Err(_) => Err(Error::Timeout {
                label: self.service.core().label.arc(),
                timeout,
            }),
        }
    }

    /// Sends the message `make` builds around a [`ReplyTo`] and waits for its answer (see
    /// [`Addr::ask_with`](crate::Addr::ask_with)).
    ///
    /// # Errors
    /// As [`Addr::ask_with`](crate::Addr::ask_with).
    pub async fn ask_with<T>(&self, make: impl FnOnce(ReplyTo<T>) -> M) -> Result<T, Error> {
        let core = self.service.core();
        core.check_not_self("ask")?;
        let epoch = core.crash_epoch();
        let (tx, rx) = oneshot::channel();
        if self.tell(make(ReplyTo::new(tx))).await.is_err() {
            return Err(core.gone_error());
        }
        rx.await
            .unwrap_or_else(|_| Err(core.gone_error_since(epoch)))
    }
}

impl<M, R> Clone for Recipient<M, R> {
    fn clone(&self) -> Self {
        Recipient {
            sink: self.sink.clone(),
            service: self.service.clone(),
        }
    }
}

impl<M, R> Deref for Recipient<M, R> {
    type Target = ServiceRef;

    fn deref(&self) -> &ServiceRef {
        &self.service
    }
}

impl<M, R> PartialEq for Recipient<M, R> {
    fn eq(&self, other: &Self) -> bool {
        self.service == other.service
    }
}

impl<M, R> Eq for Recipient<M, R> {}

impl<M, R> fmt::Debug for Recipient<M, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recipient")
            .field("label", &self.service.label())
            .field("id", &self.service.id())
            .field("message", &super::service::short_type_name::<M>())
            .finish()
    }
}

impl<A, M> From<Addr<A>> for Recipient<M, A::Reply>
where
    A: Handler<M>,
    M: Send + 'static,
{
    fn from(addr: Addr<A>) -> Self {
        Recipient::new(addr)
    }
}
