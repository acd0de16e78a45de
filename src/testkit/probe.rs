//! [`Probe`]: a service that records what it receives, and a handle on the test's side that
//! expects messages, silence, and services going down, each within a time bound that paused
//! tokio time makes free.

use std::any::type_name;
use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use uuid::Uuid;

use crate::{
    Addr, Context, Down, Error, Handler, HookResult, Recipient, Service, ServiceRef, ServiceSpec,
    System,
};

/// What a [`Probe`] expectation found instead. Generic over the probe's message type `M`, so
/// an unexpected message is handed back whole ([`into_message`](Self::into_message)); its
/// `Debug` and `Display` do not need `M: Debug` (they name the message's type).
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum ExpectError<M> {
    /// No message arrived in time.
    #[error("no message within {within:?}")]
    NoMessage {
        /// How long the probe waited.
        within: Duration,
    },
    /// Fewer messages than expected arrived in time (or before the probe stopped).
    #[error("{} of {expected} messages within {within:?}", .received.len())]
    TooFew {
        /// How many were expected.
        expected: usize,
        /// The ones that arrived, in order.
        received: Vec<M>,
        /// How long the probe waited.
        within: Duration,
    },
    /// A message arrived that the expectation did not allow: during
    /// [`expect_no_msg_for`](Probe::expect_no_msg_for), or one the predicate of
    /// [`expect_msg_matching`](Probe::expect_msg_matching) refused.
    #[error("an unexpected message arrived (a {})", type_name::<M>())]
    Unexpected {
        /// The message.
        message: M,
    },
    /// The watched service did not stop or crash in time.
    #[error("{service} did not go down within {within:?}")]
    NotDown {
        /// The service's label.
        service: Arc<str>,
        /// How long the probe waited.
        within: Duration,
    },
    /// The probe itself has stopped (its System shut down, or it was stopped) and has nothing
    /// left to give.
    #[error("the probe {label} has stopped")]
    ProbeStopped {
        /// The probe's label.
        label: Arc<str>,
    },
}

impl<M> ExpectError<M> {
    /// Whether the expectation ran out of time ([`NoMessage`](Self::NoMessage),
    /// [`TooFew`](Self::TooFew), [`NotDown`](Self::NotDown)).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            ExpectError::NoMessage { .. }
                | ExpectError::TooFew { .. }
                | ExpectError::NotDown { .. }
        )
    }

    /// The unexpected message, if that is what this error is.
    pub fn into_message(self) -> Option<M> {
        match self {
            ExpectError::Unexpected { message } => Some(message),
            _ => None,
        }
    }
}

impl<M> fmt::Debug for ExpectError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectError::NoMessage { within } => {
                f.debug_struct("NoMessage").field("within", within).finish()
            }
            ExpectError::TooFew {
                expected,
                received,
                within,
            } => f
                .debug_struct("TooFew")
                .field("expected", expected)
                .field("received", &received.len())
                .field("within", within)
                .finish(),
            ExpectError::Unexpected { .. } => f
                .debug_struct("Unexpected")
                .field("message", &type_name::<M>())
                .finish(),
            ExpectError::NotDown { service, within } => f
                .debug_struct("NotDown")
                .field("service", service)
                .field("within", within)
                .finish(),
            ExpectError::ProbeStopped { label } => f
                .debug_struct("ProbeStopped")
                .field("label", label)
                .finish(),
        }
    }
}

/// The service behind a [`Probe`]: it handles every message type that converts into `M`
/// (`M` itself included), answers with the probe's reply function, and passes the message
/// to the probe's handle. Hand its [`Addr`] or a [`Recipient`] (from
/// [`Probe::recipient`]) to the code under test.
pub struct ProbeService<M, R = ()> {
    label: Cow<'static, str>,
    messages: mpsc::UnboundedSender<M>,
    reply: Box<dyn FnMut(&M) -> R + Send>,
    /// Taken at the first start, which adds the watcher child and sends its address back.
    watcher: Option<(mpsc::UnboundedSender<Down>, oneshot::Sender<Addr<Watcher>>)>,
}

impl<M: Send + 'static, R: Send + 'static> Service for ProbeService<M, R> {
    async fn on_first_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        if let Some((downs, tell)) = self.watcher.take() {
            let spec = ServiceSpec::new(Watcher { downs }).label(format!("{}.watch", self.label));
            // The handle waits for it; if the handle is gone, nobody needs it.
            let _ = tell.send(ctx.add_dependency(spec));
        }
        Ok(())
    }

    fn label(&self) -> Cow<'static, str> {
        self.label.clone()
    }
}

impl<M, R, X> Handler<X> for ProbeService<M, R>
where
    M: Send + 'static,
    R: Send + 'static,
    X: Into<M> + Send + 'static,
{
    type Reply = R;

    async fn handle(&mut self, msg: X, _ctx: &mut Context<Self>) -> R {
        let msg = msg.into();
        let reply = (self.reply)(&msg);
        // Before the reply: an asker that got its answer finds the message on the probe.
        // A probe whose handle was dropped records nothing.
        let _ = self.messages.send(msg);
        reply
    }
}

impl<M, R> fmt::Debug for ProbeService<M, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeService")
            .field("label", &self.label)
            .field("message", &type_name::<M>())
            .finish_non_exhaustive()
    }
}

/// The probe's child that watches services for it ([`Context::watch`]) and passes on what it
/// hears: the probe service itself handles every `X: Into<M>`, so it cannot take a command.
struct Watcher {
    downs: mpsc::UnboundedSender<Down>,
}

struct WatchCmd(ServiceRef);

impl Service for Watcher {
    async fn on_down(&mut self, down: Down, _ctx: &mut Context<Self>) -> HookResult {
        // The handle may be gone: then nobody listens.
        let _ = self.downs.send(down);
        Ok(())
    }
}

impl Handler<WatchCmd> for Watcher {
    type Reply = ();

    async fn handle(&mut self, WatchCmd(service): WatchCmd, ctx: &mut Context<Self>) {
        ctx.watch(&service);
    }
}

/// Builds a [`Probe`] with a label or a reply function; [`Probe::spawn`] is the short way.
pub struct ProbeBuilder<M, R = ()> {
    label: Cow<'static, str>,
    reply: Box<dyn FnMut(&M) -> R + Send>,
}

impl<M: Send + 'static, R: Send + 'static> ProbeBuilder<M, R> {
    /// The probe's label (default `"Probe"`): it names the probe in errors and logs.
    pub fn label(mut self, label: impl Into<Cow<'static, str>>) -> Self {
        self.label = label.into();
        self
    }

    /// Answers every ask with `reply(&message)` (default: `()`), so the probe can stand in
    /// for a service the code under test asks.
    pub fn reply<R2: Send + 'static>(
        self,
        reply: impl FnMut(&M) -> R2 + Send + 'static,
    ) -> ProbeBuilder<M, R2> {
        ProbeBuilder {
            label: self.label,
            reply: Box::new(reply),
        }
    }

    /// Spawns the probe in `system`, as a root service with one child (its watcher).
    ///
    /// # Errors
    /// As [`System::spawn`] (for example [`Error::ShuttingDown`]).
    pub async fn spawn(self, system: &System) -> Result<Probe<M, R>, Error> {
        let (messages_tx, messages) = mpsc::unbounded_channel();
        let (downs_tx, downs) = mpsc::unbounded_channel();
        let (watcher_tx, watcher_rx) = oneshot::channel();
        let addr = system
            .spawn(ProbeService {
                label: self.label,
                messages: messages_tx,
                reply: self.reply,
                watcher: Some((downs_tx, watcher_tx)),
            })
            .await?;
        // Sent during the start, which `spawn` waited for.
        let watcher = watcher_rx.await.map_err(|_| Error::Stopped {
            label: Arc::from(addr.label()),
        })?;
        Ok(Probe {
            addr,
            watcher,
            messages,
            downs,
            heard: Vec::new(),
            watching: HashSet::new(),
        })
    }
}

impl<M, R> fmt::Debug for ProbeBuilder<M, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeBuilder")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// A test's probe (akka's `TestProbe`, OTP's `receive ... after`): a service that records the
/// messages it receives, and this handle, which expects them in order, expects silence, and
/// expects services to go down, each within a bound. Under paused tokio time
/// (`#[tokio::test(start_paused = true)]`) the bounds cost no real time: a timeout fires as
/// soon as nothing else can happen.
///
/// One probe records one type `M`, but takes any message type that converts into it: make
/// `M` an enum with `From` for each type the code under test sends, and hand out a
/// [`Recipient`] per type ([`recipient`](Self::recipient)). Or spawn one probe per type.
///
/// ```
/// use std::time::Duration;
/// use modo::prelude::*;
/// use modo::Recipient;
/// use modo::testkit::{ExpectError, Probe};
///
/// /// The code under test: tells whoever listens what it counted.
/// struct Counter { total: u64, report: Recipient<u64> }
/// impl Service for Counter {}
/// struct Add(u64);
/// impl Handler<Add> for Counter {
///     type Reply = ();
///     async fn handle(&mut self, Add(n): Add, _ctx: &mut Context<Self>) {
///         self.total += n;
///         self.report.tell(self.total).await.ok();
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = System::new();
/// let mut probe = Probe::<u64>::spawn(&system).await?;
/// let counter = system.spawn(Counter { total: 0, report: probe.recipient() }).await?;
///
/// counter.tell(Add(2)).await?;
/// counter.tell(Add(3)).await?;
/// assert_eq!(probe.expect_msg(Duration::from_secs(1)).await?, 2);
/// assert_eq!(probe.expect_msg(Duration::from_secs(1)).await?, 5);
/// // Nothing more: the wait is virtual, the test returns at once.
/// probe.expect_no_msg_for(Duration::from_secs(60)).await?;
/// let err = probe.expect_msg(Duration::from_secs(1)).await.unwrap_err();
/// assert!(matches!(err, ExpectError::NoMessage { .. }));
///
/// counter.crash("unplugged");
/// let down = probe.expect_down(&counter, Duration::from_secs(1)).await?;
/// assert_eq!(down.to_string(), "Counter crashed: unplugged");
/// # system.shutdown().await?;
/// # Ok(()) }
/// ```
pub struct Probe<M: Send + 'static, R: Send + 'static = ()> {
    addr: Addr<ProbeService<M, R>>,
    watcher: Addr<Watcher>,
    messages: mpsc::UnboundedReceiver<M>,
    downs: mpsc::UnboundedReceiver<Down>,
    /// Downs received but not yet expected, oldest first.
    heard: Vec<Down>,
    /// Services with a live watch (not fired yet).
    watching: HashSet<Uuid>,
}

impl<M: Send + 'static> Probe<M> {
    /// A builder, to give the probe a label or a reply function.
    pub fn builder() -> ProbeBuilder<M> {
        ProbeBuilder {
            label: Cow::Borrowed("Probe"),
            reply: Box::new(|_| ()),
        }
    }

    /// Spawns a probe labelled `"Probe"` that answers asks with `()`.
    ///
    /// # Errors
    /// As [`System::spawn`].
    pub async fn spawn(system: &System) -> Result<Self, Error> {
        Self::builder().spawn(system).await
    }
}

impl<M: Send + 'static, R: Send + 'static> Probe<M, R> {
    /// The probe service's address: hand it to code that takes an `Addr`, or
    /// [`stop`](crate::ServiceRef::stop) / crash it.
    pub fn addr(&self) -> &Addr<ProbeService<M, R>> {
        &self.addr
    }

    /// A [`Recipient`] of `X` (any type that converts into `M`) for the code under test.
    pub fn recipient<X>(&self) -> Recipient<X, R>
    where
        X: Into<M> + Send + 'static,
    {
        self.addr.recipient::<X>()
    }

    /// The probe's label.
    pub fn label(&self) -> &str {
        self.addr.label()
    }

    fn stopped(&self) -> ExpectError<M> {
        ExpectError::ProbeStopped {
            label: Arc::from(self.addr.label()),
        }
    }

    /// The next message, waiting at most `within`. A message already received returns at
    /// once, even with a zero `within`.
    ///
    /// # Errors
    /// [`ExpectError::NoMessage`] if none arrives in time; [`ExpectError::ProbeStopped`] if
    /// the probe stopped and every message it received has been taken.
    ///
    /// # Cancel safety
    /// Cancel safe: a message is taken only when it is returned.
    pub async fn expect_msg(&mut self, within: Duration) -> Result<M, ExpectError<M>> {
        match tokio::time::timeout(within, self.messages.recv()).await {
            Ok(Some(msg)) => Ok(msg),
            Ok(None) => Err(self.stopped()),
            Err(_) => Err(ExpectError::NoMessage { within }),
        }
    }

    /// The next message, which must satisfy `pred`, waiting at most `within`.
    ///
    /// # Errors
    /// [`ExpectError::Unexpected`] with the message if `pred` refuses it (it is consumed);
    /// otherwise as [`expect_msg`](Self::expect_msg).
    ///
    /// # Cancel safety
    /// As [`expect_msg`](Self::expect_msg).
    pub async fn expect_msg_matching(
        &mut self,
        within: Duration,
        pred: impl FnOnce(&M) -> bool,
    ) -> Result<M, ExpectError<M>> {
        let msg = self.expect_msg(within).await?;
        if pred(&msg) {
            Ok(msg)
        } else {
            Err(ExpectError::Unexpected { message: msg })
        }
    }

    /// The next `n` messages, in order, all within `within` (one bound for all of them).
    ///
    /// # Errors
    /// [`ExpectError::TooFew`] with the ones that came if fewer than `n` arrive in time or
    /// before the probe stops.
    ///
    /// # Cancel safety
    /// Not cancel safe: messages received before the cancellation are lost with the future.
    pub async fn expect_msgs(
        &mut self,
        n: usize,
        within: Duration,
    ) -> Result<Vec<M>, ExpectError<M>> {
        let deadline = Instant::now() + within;
        let mut received = Vec::with_capacity(n);
        while received.len() < n {
            match tokio::time::timeout_at(deadline, self.messages.recv()).await {
                Ok(Some(msg)) => received.push(msg),
                Ok(None) | Err(_) => {
                    return Err(ExpectError::TooFew {
                        expected: n,
                        received,
                        within,
                    });
                }
            }
        }
        Ok(received)
    }

    /// Expects no message for `d`: returns after `d` if none came, or as soon as one comes.
    ///
    /// # Errors
    /// [`ExpectError::Unexpected`] with the message that came; [`ExpectError::ProbeStopped`]
    /// at once if the probe has stopped (silence from a stopped probe proves nothing).
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn expect_no_msg_for(&mut self, d: Duration) -> Result<(), ExpectError<M>> {
        match tokio::time::timeout(d, self.messages.recv()).await {
            Err(_) => Ok(()),
            Ok(Some(message)) => Err(ExpectError::Unexpected { message }),
            Ok(None) => Err(self.stopped()),
        }
    }

    /// Moves the downs heard so far into `heard`; their watches have fired.
    fn drain_downs(&mut self) {
        while let Ok(down) = self.downs.try_recv() {
            self.watching.remove(&down.service().id());
            self.heard.push(down);
        }
    }

    /// Watches `service` (any service) from now on, unless a watch on it is already live:
    /// the next time it stops for good or crashes, [`expect_down`](Self::expect_down) hears
    /// it. A watch fires once; after a crash and a restart, watch again to hear the next one.
    /// Watching a service that is down already fires at once.
    ///
    /// Watch before you act when the service could go down and come back (a supervised
    /// child) before [`expect_down`](Self::expect_down) starts watching.
    ///
    /// # Errors
    /// [`ExpectError::ProbeStopped`] if the probe has stopped.
    ///
    /// # Cancel safety
    /// Cancel safe; a cancelled call may or may not have started the watch.
    pub async fn watch(&mut self, service: &ServiceRef) -> Result<(), ExpectError<M>> {
        self.drain_downs();
        if self.watching.contains(&service.id()) {
            return Ok(());
        }
        self.watcher
            .ask(WatchCmd(service.clone()))
            .await
            .map_err(|_| self.stopped())?;
        self.watching.insert(service.id());
        Ok(())
    }

    /// Expects `service` to stop for good or crash within `within`, and returns what the
    /// probe heard ([`Down`]: the service and the [reason](crate::DownReason), the crash
    /// reason included). Watches the service first if the probe is not watching it yet and
    /// has not heard it go down (see [`watch`](Self::watch)). A down heard earlier and not
    /// yet expected returns at once, oldest first.
    ///
    /// A crash counts even if a supervisor restarts the service: modo's watches fire on a
    /// crash. The name follows modo's [`Down`]; this is akka's `expectTerminated`.
    ///
    /// # Errors
    /// [`ExpectError::NotDown`] if it is still up after `within`;
    /// [`ExpectError::ProbeStopped`] if the probe has stopped.
    ///
    /// # Cancel safety
    /// Cancel safe: a down heard before the cancellation is kept for the next call.
    #[doc(alias = "expect_terminated")]
    pub async fn expect_down(
        &mut self,
        service: &ServiceRef,
        within: Duration,
    ) -> Result<Down, ExpectError<M>> {
        let id = service.id();
        self.drain_downs();
        if let Some(i) = self.heard.iter().position(|d| d.service().id() == id) {
            return Ok(self.heard.remove(i));
        }
        if !self.watching.contains(&id) {
            self.watch(service).await?;
        }
        let deadline = Instant::now() + within;
        // Each turn takes one down or returns; the deadline bounds the waits.
        loop {
            match tokio::time::timeout_at(deadline, self.downs.recv()).await {
                Ok(Some(down)) => {
                    self.watching.remove(&down.service().id());
                    if down.service().id() == id {
                        return Ok(down);
                    }
                    self.heard.push(down);
                }
                Ok(None) => return Err(self.stopped()),
                Err(_) => {
                    return Err(ExpectError::NotDown {
                        service: Arc::from(service.label()),
                        within,
                    });
                }
            }
        }
    }

    /// Stops the probe for good (and its watcher): later expectations get
    /// [`ExpectError::ProbeStopped`] once the messages already received are taken.
    ///
    /// # Errors
    /// As [`ServiceRef::stop`](crate::ServiceRef::stop).
    pub async fn stop(&self) -> Result<(), Error> {
        self.addr.stop().await
    }
}

impl<M: Send + 'static, R: Send + 'static> fmt::Debug for Probe<M, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe")
            .field("label", &self.addr.label())
            .field("message", &type_name::<M>())
            .field("heard", &self.heard)
            .field("watching", &self.watching.len())
            .finish_non_exhaustive()
    }
}
