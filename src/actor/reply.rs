//! Replying later: [`ReplyTo<R>`], the handle an [`Addr::ask_with`](crate::Addr::ask_with)
//! puts into its message. The handler takes it, returns, and answers from another message or a
//! background task; the ask resolves exactly once.

use std::fmt;

use tokio::sync::oneshot;

use super::error::Error;

/// Where the answer to an ask goes, carried in the message (ractor's reply port, kameo's
/// delegated reply). Made by [`Addr::ask_with`](crate::Addr::ask_with); answer it with
/// [`send`](Self::send), once.
///
/// Dropping it unanswered resolves the ask with [`Error::Stopped`] (or [`Error::Crashed`] if
/// the service crashed meanwhile): an ask never waits for an answer that cannot come.
///
/// ```
/// use modo::prelude::*;
/// use modo::ReplyTo;
///
/// #[derive(Default)]
/// struct Frontier { waiting: Vec<ReplyTo<u32>> }
/// impl Service for Frontier {}
///
/// /// Asks for the next page number, answered when one is published.
/// struct NextPage(ReplyTo<u32>);
/// /// Publishes a page number to everyone waiting.
/// struct Publish(u32);
///
/// impl Handler<NextPage> for Frontier {
///     type Reply = ();
///     async fn handle(&mut self, NextPage(reply): NextPage, _ctx: &mut Context<Self>) {
///         self.waiting.push(reply); // answered later
///     }
/// }
/// impl Handler<Publish> for Frontier {
///     type Reply = ();
///     async fn handle(&mut self, Publish(page): Publish, _ctx: &mut Context<Self>) {
///         for reply in self.waiting.drain(..) {
///             let _ = reply.send(page);
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), modo::Error> {
/// let system = System::new();
/// let frontier = system.spawn(Frontier::default()).await?;
/// let waiting = tokio::spawn({
///     let frontier = frontier.clone();
///     async move { frontier.ask_with(NextPage).await }
/// });
/// tokio::task::yield_now().await;
/// frontier.tell(Publish(7)).await?;
/// assert_eq!(waiting.await.unwrap()?, 7);
/// # system.shutdown().await }
/// ```
#[must_use = "an ask waits for this: answer it with `send`, or drop it to fail the ask"]
pub struct ReplyTo<R> {
    tx: oneshot::Sender<Result<R, Error>>,
}

impl<R> ReplyTo<R> {
    pub(crate) fn new(tx: oneshot::Sender<Result<R, Error>>) -> Self {
        ReplyTo { tx }
    }

    /// Answers the ask.
    ///
    /// # Errors
    /// The value back, if the asker has given up (its future was dropped, or timed out).
    pub fn send(self, value: R) -> Result<(), R> {
        self.tx.send(Ok(value)).map_err(|back| match back {
            Ok(value) => value,
            // Only `Ok` was sent.
            Err(_) => unreachable!("the value sent is the value handed back"),
        })
    }

    /// Answers the ask with an error (for example [`Error::Timeout`] of a downstream call).
    pub fn fail(self, error: Error) {
        let _ = self.tx.send(Err(error));
    }

    /// Whether the asker has given up: an answer would go nowhere.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl<R> fmt::Debug for ReplyTo<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplyTo")
            .field("closed", &self.is_closed())
            .finish()
    }
}
