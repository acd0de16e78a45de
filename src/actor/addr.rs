//! Handles to a running service: [`ServiceRef`] (type-erased: lifecycle control and queries)
//! and [`Addr<A>`] (typed: send messages), which is a `ServiceRef` plus the typed mailbox and
//! derefs to it, so every lifecycle method is written once. Both are thin `Arc`s over the
//! service's shared cell: cheap to clone, valid across restarts.

use std::any::Any;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::diag::Diag;

use super::cell::{AnyCell, Cell, Core};
use super::error::{CrashReason, Error, SendError, TrySendError};
use super::handler::{Ask, BoxEnvelope, Handler, Tell, Traced};
use super::mailbox::{Control, Lifecycle, Stop};
use super::observe::{Sent, ServiceStats};
use super::recipient::Recipient;
use super::reply::ReplyTo;
use super::service::Service;
use super::state::ServiceState;

/// The typed address of a service: send it messages, and (through [`ServiceRef`], which it
/// derefs to) control its lifecycle and read its state.
///
/// `Clone + Send + Sync`; valid across restarts. Dropping every `Addr` does not stop the
/// service: stop it, or let [`System::shutdown`](crate::System::shutdown) do it.
pub struct Addr<A: Service> {
    cell: Arc<Cell<A>>,
    /// The same cell, type-erased: what the lifecycle methods work on.
    service: ServiceRef,
}

impl<A: Service> Clone for Addr<A> {
    fn clone(&self) -> Self {
        Addr {
            cell: self.cell.clone(),
            service: self.service.clone(),
        }
    }
}

impl<A: Service> fmt::Debug for Addr<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Addr")
            .field("label", &self.cell.core.label)
            .field("id", &self.cell.core.id)
            .field("state", &self.cell.core.state())
            .finish()
    }
}

impl<A: Service> PartialEq for Addr<A> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.cell, &other.cell)
    }
}

impl<A: Service> Eq for Addr<A> {}

impl<A: Service> Deref for Addr<A> {
    type Target = ServiceRef;

    fn deref(&self) -> &ServiceRef {
        &self.service
    }
}

impl<A: Service> Addr<A> {
    pub(crate) fn from_cell(cell: Arc<Cell<A>>) -> Self {
        let service = ServiceRef { cell: cell.clone() };
        Addr { cell, service }
    }

    pub(crate) fn cell(&self) -> &Arc<Cell<A>> {
        &self.cell
    }

    /// Queues `msg`, waiting only for room in the mailbox.
    ///
    /// # Errors
    /// [`SendError`] with the message inside if the service has stopped for good, also while
    /// this call waited for room.
    ///
    /// # Cancel safety
    /// If the future is dropped while waiting for room, the message is dropped with it and
    /// was never queued.
    pub async fn tell<M>(&self, msg: M) -> Result<(), SendError<M>>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        let env = self.envelope(msg);
        match self.cell.user.send(env, &self.cell.core.control).await {
            Ok(()) => Ok(()),
            Err(env) => Err(SendError::new(self.unwrap(env), self.label_arc())),
        }
    }

    /// Queues `msg` if the mailbox has room now.
    ///
    /// # Errors
    /// [`TrySendError::Full`] or [`TrySendError::Stopped`], with the message inside.
    pub fn try_tell<M>(&self, msg: M) -> Result<(), TrySendError<M>>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        let env = self.envelope(msg);
        match self.cell.user.try_send(env, &self.cell.core.control) {
            Ok(()) => Ok(()),
            Err((env, true)) => Err(TrySendError::Full(self.unwrap(env), self.label_arc())),
            Err((env, false)) => Err(TrySendError::Stopped(self.unwrap(env), self.label_arc())),
        }
    }

    /// The envelope of a message sent without a reply: traced while someone observes.
    #[inline]
    fn envelope<M>(&self, msg: M) -> BoxEnvelope<A>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        if self.cell.core.observing() {
            Box::new(Traced {
                msg,
                reply: None,
                sent: Sent::now(),
            })
        } else {
            Box::new(Tell(msg))
        }
    }

    /// The message inside an envelope that was not queued.
    fn unwrap<M: Send + 'static>(&self, env: BoxEnvelope<A>) -> M {
        match env.into_message().downcast::<M>() {
            Ok(m) => *m,
            // The envelope was built from an `M` by the caller.
            Err(_) => unreachable!("envelope holds the message type it was built with"),
        }
    }

    fn label_arc(&self) -> Arc<str> {
        self.cell.core.label.arc()
    }

    /// Sends `msg` and waits for the handler's reply.
    ///
    /// Resolves at once with an error if the service crashes or stops before replying; it
    /// never waits for a reply that cannot come.
    ///
    /// # Errors
    /// [`Error::Crashed`] if the handler panicked or the service crashed with the message
    /// queued or in flight (even if it was restarted before this call read the answer);
    /// [`Error::Stopped`] if it stopped for good; [`Error::WouldDeadlock`] when asked from the
    /// service's own task.
    ///
    /// # Cancel safety
    /// If dropped after the message was queued, the message is still handled and its reply
    /// discarded.
    pub async fn ask<M>(&self, msg: M) -> Result<A::Reply, Error>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        let core = &self.cell.core;
        core.check_not_self("ask")?;
        let epoch = core.crash_epoch();
        let (tx, rx) = oneshot::channel();
        let env: BoxEnvelope<A> = if core.observing() {
            Box::new(Traced {
                msg,
                reply: Some(tx),
                sent: Sent::now(),
            })
        } else {
            Box::new(Ask { msg, reply: tx })
        };
        if self.cell.user.send(env, &core.control).await.is_err() {
            return Err(core.gone_error());
        }
        match rx.await {
            Ok(reply) => reply,
            // Dropped unanswered: read why now, against the crash count when it was sent.
            Err(_) => Err(core.gone_error_since(epoch)),
        }
    }

    /// [`ask`](Self::ask), giving up after `timeout` (counted from the call, including the
    /// wait for room in the mailbox).
    ///
    /// # Errors
    /// [`Error::Timeout`], or any error of [`ask`](Self::ask).
    pub async fn ask_timeout<M>(&self, msg: M, timeout: Duration) -> Result<A::Reply, Error>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        match tokio::time::timeout(timeout, self.ask(msg)).await {
            Ok(res) => res,
            Err(_) => Err(Error::Timeout {
                label: self.label_arc(),
                timeout,
            }),
        }
    }

    /// Sends the message `make` builds around a [`ReplyTo`], and waits for whoever holds it to
    /// answer: the handler, or whoever it passed it to (another message, a background task).
    /// The message's own reply (`A::Reply`) is ignored. See [`ReplyTo`] for an example.
    ///
    /// # Errors
    /// As [`ask`](Self::ask); [`Error::Stopped`] or [`Error::Crashed`] also if the `ReplyTo` is
    /// dropped unanswered, or the error it was failed with.
    ///
    /// # Cancel safety
    /// As [`ask`](Self::ask): the message stays queued, its answer goes nowhere.
    pub async fn ask_with<M, R>(&self, make: impl FnOnce(ReplyTo<R>) -> M) -> Result<R, Error>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        let core = &self.cell.core;
        core.check_not_self("ask")?;
        let epoch = core.crash_epoch();
        let (tx, rx) = oneshot::channel();
        let env = self.envelope(make(ReplyTo::new(tx)));
        if self.cell.user.send(env, &core.control).await.is_err() {
            return Err(core.gone_error());
        }
        rx.await
            .unwrap_or_else(|_| Err(core.gone_error_since(epoch)))
    }

    /// [`ask_with`](Self::ask_with), giving up after `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`], or any error of [`ask_with`](Self::ask_with).
    pub async fn ask_with_timeout<M, R>(
        &self,
        make: impl FnOnce(ReplyTo<R>) -> M,
        timeout: Duration,
    ) -> Result<R, Error>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        match tokio::time::timeout(timeout, self.ask_with(make)).await {
            Ok(res) => res,
            Err(_) => Err(Error::Timeout {
                label: self.label_arc(),
                timeout,
            }),
        }
    }

    /// A [`Recipient`] of `M`: a handle to this service that knows only that it handles `M`.
    pub fn recipient<M>(&self) -> Recipient<M, A::Reply>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        Recipient::new(self.clone())
    }

    /// The type-erased handle.
    pub fn service_ref(&self) -> ServiceRef {
        self.service.clone()
    }

    /// A weak handle, which does not keep the cell alive.
    pub fn downgrade(&self) -> WeakAddr<A> {
        WeakAddr {
            cell: Arc::downgrade(&self.cell),
        }
    }
}

/// A weak [`Addr`]: upgrade it to send.
pub struct WeakAddr<A: Service> {
    cell: Weak<Cell<A>>,
}

impl<A: Service> Clone for WeakAddr<A> {
    fn clone(&self) -> Self {
        WeakAddr {
            cell: self.cell.clone(),
        }
    }
}

impl<A: Service> fmt::Debug for WeakAddr<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeakAddr")
    }
}

impl<A: Service> WeakAddr<A> {
    /// The address, if the service's cell still exists.
    pub fn upgrade(&self) -> Option<Addr<A>> {
        self.cell.upgrade().map(Addr::from_cell)
    }
}

/// A type-erased handle to a service: lifecycle control and queries, no messages. Every
/// [`Addr`] derefs to one.
#[derive(Clone)]
pub struct ServiceRef {
    cell: Arc<dyn AnyCell>,
}

impl fmt::Debug for ServiceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = self.core();
        f.debug_struct("ServiceRef")
            .field("label", &core.label)
            .field("id", &core.id)
            .field("state", &core.state())
            .finish()
    }
}

impl PartialEq for ServiceRef {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

impl Eq for ServiceRef {}

impl<A: Service> From<Addr<A>> for ServiceRef {
    fn from(addr: Addr<A>) -> Self {
        addr.service
    }
}

impl ServiceRef {
    pub(crate) fn from_any(cell: Arc<dyn AnyCell>) -> Self {
        ServiceRef { cell }
    }

    #[inline]
    pub(crate) fn core(&self) -> &Core {
        self.cell.core()
    }

    pub(crate) fn cell_ref(&self) -> &dyn AnyCell {
        &*self.cell
    }

    pub(crate) fn downgrade_cell(&self) -> Weak<dyn AnyCell> {
        Arc::downgrade(&self.cell)
    }

    /// The service's type name, as `std::any::type_name` gives it.
    pub fn type_name(&self) -> &'static str {
        self.core().type_name
    }

    /// Messages waiting in the user lane.
    pub fn mailbox_len(&self) -> usize {
        self.cell.queued()
    }

    /// What the service has done: messages handled and their timings (observed ones, see
    /// [`System::set_observing`](crate::System::set_observing)), messages queued, crashes,
    /// restarts and its last crash.
    pub fn stats(&self) -> ServiceStats {
        self.core().stats_snapshot(self.cell.queued())
    }

    /// The typed address, if the service is an `A`.
    pub fn downcast<A: Service>(&self) -> Option<Addr<A>> {
        let any: Arc<dyn Any + Send + Sync> = self.cell.clone().into_any();
        any.downcast::<Cell<A>>().ok().map(Addr::from_cell)
    }

    /// The parent service, if this is a child and the parent still exists.
    pub fn parent(&self) -> Option<ServiceRef> {
        self.core().parent().map(ServiceRef::from_any)
    }

    /// The service's unique id.
    pub fn id(&self) -> Uuid {
        self.core().id
    }

    /// The label used in graphs and errors.
    pub fn label(&self) -> &str {
        &self.core().label
    }

    /// The label used in log lines.
    pub fn shortlabel(&self) -> &str {
        &self.core().shortlabel
    }

    /// Depth in the service tree: 0 for a root.
    pub fn depth(&self) -> usize {
        self.core().depth()
    }

    /// The current lifecycle state.
    pub fn state(&self) -> ServiceState {
        self.core().state()
    }

    /// How many times the service was restarted.
    pub fn restart_count(&self) -> u32 {
        self.core().restart_count()
    }

    /// Why the service crashed, if it did (cleared by a restart).
    pub fn crash_reason(&self) -> Option<CrashReason> {
        self.core().crash_reason()
    }

    /// Whether the service is starting or running.
    pub fn is_started(&self) -> bool {
        matches!(self.state(), ServiceState::Starting | ServiceState::Running)
    }

    /// Whether the service is crashed.
    pub fn is_crashed(&self) -> bool {
        self.state() == ServiceState::Crashed
    }

    /// Whether the service has stopped for good: its mailbox is closed and every send fails.
    pub fn is_terminated(&self) -> bool {
        self.core().is_closed()
    }

    /// The names of the service's background tasks running now.
    pub fn task_names(&self) -> Vec<String> {
        self.core().task_names()
    }

    /// The service's diagnostic flags.
    pub fn diag(&self) -> &Diag {
        &self.core().diag
    }

    /// How many user messages this service could not deliver (dead letters).
    pub fn dead_letters(&self) -> u64 {
        self.core().dead_letter_count()
    }

    /// Starts the service if it is not running. Returns once it has started.
    ///
    /// # Errors
    /// [`Error::HookFailed`] (or [`Error::Crashed`]) if a hook failed: the service is then
    /// left stopped. [`Error::Stopped`] if it has stopped for good.
    pub async fn start(&self) -> Result<(), Error> {
        self.maybe_start().await.map(drop)
    }

    /// Starts the service if it is not running; `Ok(true)` if this call started it.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn maybe_start(&self) -> Result<bool, Error> {
        self.core()
            .request("start", |reply| Control::Start { reply: Some(reply) })
            .await
    }

    /// Stops the service for good and returns once its stop sequence has finished: its
    /// children stopped, its tasks ended, its mailbox closed. Messages still queued become
    /// dead letters; later sends fail. Stopping a stopped service does nothing.
    ///
    /// A running child stopped this way (by anyone but its parent) whose parent decides its
    /// stops ([`Context::decide_stops_of`](crate::Context::decide_stops_of)) is put to its
    /// parent once stopped ([`Service::on_child_stopped`](crate::Service::on_child_stopped)):
    /// a supervisor restarts a permanent child, as in OTP (use the supervisor's `discard` to
    /// remove one for good). Any other service stops for good as above.
    ///
    /// The stop is served before any queued user message: it begins as soon as the handler
    /// in flight returns, or is abandoned (the service then counts as crashed) if it has not
    /// returned [`shutdown_timeout`](crate::Service::shutdown_timeout) after the request. A
    /// stop for good closes the mailbox as it begins: senders waiting for room get their
    /// message back and queued asks fail with [`Error::Stopped`] at once.
    ///
    /// # Errors
    /// [`Error::HookFailed`] if a stop hook (its own or a child's) returned an error or
    /// timed out, [`Error::Crashed`] if one panicked; the stop still ran to the end.
    /// [`Error::WouldDeadlock`] when awaited from the service's own task.
    ///
    /// # Cancel safety
    /// Dropping the future does not cancel the stop.
    pub async fn stop(&self) -> Result<(), Error> {
        let core = self.core();
        if core.is_closed() {
            return Ok(());
        }
        core.check_not_self("stop")?;
        core.signal_stop();
        // A parent stopping its own child decides for itself; anyone else's stop of a
        // child is put to the parent (a supervisor restarts a permanent child).
        let ask_parent = !core.called_from_parent();
        let res = core
            .request_raw("stop", |reply| {
                Control::Stop(Stop::for_good(ask_parent).reply_to(reply))
            })
            .await;
        match res {
            Ok(answer) => answer.map(drop),
            // Gone before it could answer: the goal is reached.
            Err(_) => Ok(()),
        }
    }

    /// Stops the service for good after it has handled every user message queued before this
    /// call (OTP's `gen_server:stop`, kameo's `stop_gracefully`), and returns once it has
    /// stopped: its last messages are handled, not dropped. [`stop`](Self::stop) is the urgent
    /// one: it overtakes what is queued. Messages sent after this call are not handled (they
    /// become dead letters, or are refused once the stop has begun).
    ///
    /// Waits for room if the mailbox is full, like a `tell`.
    ///
    /// # Errors
    /// As [`stop`](Self::stop).
    ///
    /// # Cancel safety
    /// Dropping the future after the stop was queued does not cancel it.
    pub async fn drain_and_stop(&self) -> Result<(), Error> {
        let core = self.core();
        if core.is_closed() {
            return Ok(());
        }
        core.check_not_self("drain_and_stop")?;
        let ask_parent = !core.called_from_parent();
        let (reply, answer) = oneshot::channel();
        let stop = Stop::for_good(ask_parent).reply_to(reply);
        if self.cell.queue_stop(stop).await.is_err() {
            // Closed: stopping for good already.
            return Ok(());
        }
        match answer.await {
            Ok(res) => res.map(drop),
            // Gone before it could answer (the marker became a dead letter): stopped.
            Err(_) => Ok(()),
        }
    }

    /// Stops the service, resets it (`on_init`, or a fresh instance from its factory),
    /// calls `on_restart` and starts it again. The mailbox is kept: messages queued before
    /// and during the restart are handled afterwards, in order.
    ///
    /// # Errors
    /// As [`start`](Self::start) and [`stop`](Self::stop).
    pub async fn restart(&self) -> Result<(), Error> {
        let core = self.core();
        core.check_not_self("restart")?;
        core.signal_stop();
        core.request("restart", |reply| Control::Restart { reply: Some(reply) })
            .await
            .map(drop)
    }

    /// Crashes the service and its children with `reason`: `should_stop()` turns true at
    /// once, the handler in flight is abandoned (its `ask` gets [`Error::Crashed`]), and the
    /// service stops, running its stop hooks. Does not wait; see
    /// [`wait_until_stopped`](Self::wait_until_stopped).
    pub fn crash(&self, reason: impl Into<CrashReason>) {
        self.core().crash(reason.into());
    }

    /// Sets the shutdown flag a [`wait_for_shutdown`](crate::Service::wait_for_shutdown)
    /// service waits for in its stop sequence.
    pub fn set_shutdown(&self) {
        self.core().set_shutdown();
    }

    /// Waits until the service is stopped (shut down or crashed).
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn wait_until_stopped(&self) {
        self.core().wait_until_stopped().await
    }

    /// Waits until `pred` holds for this service; it is checked now and at every state
    /// change (a restart count changes with the state, so `restart_count()` can be waited
    /// for too).
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn wait_until(&self, mut pred: impl FnMut(&Self) -> bool) {
        self.core().wait_until(|| pred(self)).await
    }

    /// Waits until the service is running; `Err` if it stopped for good instead.
    ///
    /// # Errors
    /// [`Error::Stopped`] or [`Error::Crashed`] if it terminated.
    pub async fn wait_until_running(&self) -> Result<(), Error> {
        self.wait_until(|s| s.state() == ServiceState::Running || s.is_terminated())
            .await;
        if self.state() == ServiceState::Running {
            Ok(())
        } else {
            Err(self.core().gone_error())
        }
    }

    /// Sends a [`Lifecycle`] request on the control lane without waiting for it.
    ///
    /// # Errors
    /// [`Error::Stopped`] if the service has stopped for good.
    pub fn send_lifecycle(&self, request: Lifecycle) -> Result<(), Error> {
        let core = self.core();
        if !matches!(request, Lifecycle::Start) {
            core.signal_stop();
        }
        core.send_control(Control::from_lifecycle(request))
    }
}
