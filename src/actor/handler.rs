//! [`Handler`]: how a service answers one message type, and the envelope a message travels in.
//!
//! A message is boxed once, at send time, into an envelope that knows its type; the actor's
//! loop calls the envelope, which calls the typed handler, catches a panic, and sends the reply.
//! The envelope is a thin pointer (16 bytes in the lane), which keeps flume at full speed.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use tokio::time::Instant;

use futures::FutureExt;
use tokio::sync::oneshot;
use tracing::Instrument;

use super::context::Context;
use super::error::{CrashReason, Error};
use super::mailbox::{Control, Stop};
use super::observe::{Sent, spans_wanted};
use super::service::Service;

/// How a service handles messages of type `M`. A service may implement it for any number of
/// message types.
///
/// The handler runs on the service's task with `&mut self`. A panic in it does not take the
/// process down: the service crashes with a [`CrashReason::Panic`], and an `ask` waiting on this
/// message gets [`Error::Crashed`].
///
/// ```
/// use modo::prelude::*;
///
/// #[derive(Default)]
/// struct Counter { n: u64 }
/// impl Service for Counter {}
///
/// struct Add(u64);
/// struct Get;
///
/// impl Handler<Add> for Counter {
///     type Reply = ();
///     async fn handle(&mut self, msg: Add, _ctx: &mut Context<Self>) { self.n += msg.0 }
/// }
/// impl Handler<Get> for Counter {
///     type Reply = u64;
///     async fn handle(&mut self, _: Get, _ctx: &mut Context<Self>) -> u64 { self.n }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), modo::Error> {
/// let system = System::new();
/// let counter = system.spawn(Counter::default()).await?;
/// counter.tell(Add(2)).await?;
/// assert_eq!(counter.ask(Get).await?, 2);
/// # system.shutdown().await }
/// ```
pub trait Handler<M: Send + 'static>: Service {
    /// What an `ask` of `M` returns.
    type Reply: Send + 'static;

    /// Handles one message.
    fn handle(
        &mut self,
        msg: M,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = Self::Reply> + Send;
}

pub(crate) type HandleFuture<'a> =
    Pin<Box<dyn Future<Output = Result<(), CrashReason>> + Send + 'a>>;

/// A typed message, boxed for the lane.
pub(crate) trait Envelope<A: Service>: Send + 'static {
    /// Runs the handler. `Err` is the crash reason when it panicked.
    fn handle<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> HandleFuture<'a>;

    /// The message, for handing it back to a sender whose send failed.
    fn into_message(self: Box<Self>) -> Box<dyn Any + Send>;

    /// Whether this is a user's message (counted as a dead letter if never handled), not one
    /// of modo's own markers.
    fn is_user_message(&self) -> bool {
        true
    }
}

pub(crate) type BoxEnvelope<A> = Box<dyn Envelope<A>>;

/// A stop queued behind the user messages (`drain_and_stop`): when the actor reaches it, the
/// stop goes onto the control lane and is served before the next message.
pub(crate) struct StopHere(pub(crate) Stop);

impl<A: Service> Envelope<A> for StopHere {
    fn is_user_message(&self) -> bool {
        false
    }

    fn handle<'a>(self: Box<Self>, _actor: &'a mut A, ctx: &'a mut Context<A>) -> HandleFuture<'a> {
        let core = ctx.core();
        core.signal_stop();
        // A closed control lane: the service is ending anyway.
        let _ = core.control.send(Control::Stop(self.0));
        Box::pin(async { Ok(()) })
    }

    fn into_message(self: Box<Self>) -> Box<dyn Any + Send> {
        Box::new(())
    }
}

/// A message sent with `tell`: no reply.
pub(crate) struct Tell<M>(pub(crate) M);

/// A message sent while someone observes (see `observe.rs`): the message, how it was sent, and
/// when and from where.
pub(crate) struct Traced<M, R> {
    pub(crate) msg: M,
    /// The ask's reply; `None` for a tell.
    pub(crate) reply: Option<oneshot::Sender<Result<R, Error>>>,
    /// Inline, not boxed: the envelope is boxed already, a second allocation per observed
    /// message bought nothing.
    pub(crate) sent: Sent,
}

/// A message sent with `ask`: the reply goes back on a oneshot.
pub(crate) struct Ask<M, R> {
    pub(crate) msg: M,
    pub(crate) reply: oneshot::Sender<Result<R, Error>>,
}

fn during<M>() -> String {
    format!("handler of {}", super::service::short_type_name::<M>())
}

impl<A, M> Envelope<A> for Tell<M>
where
    A: Handler<M>,
    M: Send + 'static,
{
    fn handle<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> HandleFuture<'a> {
        let msg = self.0;
        Box::pin(async move {
            match AssertUnwindSafe(actor.handle(msg, ctx))
                .catch_unwind()
                .await
            {
                Ok(_) => Ok(()),
                Err(panic) => Err(CrashReason::from_panic(panic, during::<M>())),
            }
        })
    }

    fn into_message(self: Box<Self>) -> Box<dyn Any + Send> {
        Box::new(self.0)
    }
}

impl<A, M> Envelope<A> for Ask<M, A::Reply>
where
    A: Handler<M>,
    M: Send + 'static,
{
    fn handle<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> HandleFuture<'a> {
        let Ask { msg, reply } = *self;
        Box::pin(async move {
            match AssertUnwindSafe(actor.handle(msg, ctx))
                .catch_unwind()
                .await
            {
                Ok(r) => {
                    // The asker may have given up (timeout, dropped future): nothing to do.
                    let _ = reply.send(Ok(r));
                    Ok(())
                }
                Err(panic) => {
                    let reason = CrashReason::from_panic(panic, during::<M>());
                    let _ = reply.send(Err(Error::Crashed {
                        label: ctx.core().label.arc(),
                        reason: reason.clone(),
                    }));
                    Err(reason)
                }
            }
        })
    }

    fn into_message(self: Box<Self>) -> Box<dyn Any + Send> {
        Box::new(self.msg)
    }
}

impl<A, M> Envelope<A> for Traced<M, A::Reply>
where
    A: Handler<M>,
    M: Send + 'static,
{
    fn handle<'a>(self: Box<Self>, actor: &'a mut A, ctx: &'a mut Context<A>) -> HandleFuture<'a> {
        let Traced { msg, reply, sent } = *self;
        // One clock read ends the wait and starts the handling (a read costs about 30 ns on
        // the machines measured: three per observed message, not four).
        let start = Instant::now();
        let wait = start.saturating_duration_since(sent.at);
        let core = ctx.core();
        let stats = core.stats.get_or_init();
        let kind = if reply.is_some() { "ask" } else { "tell" };
        let span = if spans_wanted() {
            let span = tracing::debug_span!(
                target: "modo::message",
                "message",
                service = %core.label,
                message = super::service::short_type_name::<M>(),
                kind,
                wait_us = wait.as_micros() as u64,
                handle_us = tracing::field::Empty,
            );
            if let Some(from) = &sent.from {
                span.follows_from(from);
            }
            span
        } else {
            tracing::Span::none()
        };
        Box::pin(async move {
            let res = AssertUnwindSafe(actor.handle(msg, ctx).instrument(span.clone()))
                .catch_unwind()
                .await;
            let took = start.elapsed();
            stats.record(wait, took);
            span.record("handle_us", took.as_micros() as u64);
            super::meter::handled(&stats, ctx, wait, took);
            match res {
                Ok(r) => {
                    if let Some(reply) = reply {
                        let _ = reply.send(Ok(r));
                    }
                    Ok(())
                }
                Err(panic) => {
                    let reason = CrashReason::from_panic(panic, during::<M>());
                    span.in_scope(
                        || tracing::error!(target: "modo::message", "handler panicked: {reason}"),
                    );
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(Error::Crashed {
                            label: ctx.core().label.arc(),
                            reason: reason.clone(),
                        }));
                    }
                    Err(reason)
                }
            }
        })
    }

    fn into_message(self: Box<Self>) -> Box<dyn Any + Send> {
        Box::new(self.msg)
    }
}
