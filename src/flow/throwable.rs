//! [`ThrowableQueue`]: a queue whose waiting consumer can be woken by an error.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use super::error::{PutError, TryPutError};
use super::event::{FlowControlEvent, Managed};
use super::shared::Core;

/// Mode's `ThrowableQueue`: an async FIFO queue into which an error can be thrown
/// ([`throw`](Self::throw)). A consumer waiting in [`get`](Self::get) is woken with the
/// error; with no consumer waiting, the next `get` returns it. Errors come out before items,
/// in the order thrown, each once. Clones are handles on the same queue.
///
/// Bounded or not, and optionally under a [`FlowControlEvent`] (Mode's always is one; modo's
/// needs one only if you give it).
///
/// ```
/// use modo::flow::ThrowableQueue;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let queue: ThrowableQueue<u32, String> = ThrowableQueue::new();
/// let consumer = tokio::spawn({
///     let queue = queue.clone();
///     async move {
///         let mut sum = 0;
///         loop {
///             match queue.get().await {
///                 Ok(n) => sum += n,
///                 Err(e) => return (sum, e),
///             }
///         }
///     }
/// });
/// queue.put(1).await.unwrap();
/// queue.put(2).await.unwrap();
/// tokio::task::yield_now().await;
/// queue.throw("the fetcher failed".to_string()); // wakes the waiting consumer
/// assert_eq!(consumer.await.unwrap(), (3, "the fetcher failed".to_string()));
/// # }
/// ```
pub struct ThrowableQueue<T, E> {
    core: Arc<Core<T, E>>,
}

impl<T, E> Clone for ThrowableQueue<T, E> {
    fn clone(&self) -> Self {
        ThrowableQueue {
            core: self.core.clone(),
        }
    }
}

/// Builds a [`ThrowableQueue`] of `T`s and `E`rrors: [`ThrowableQueue::builder`].
pub struct ThrowableQueueBuilder<T, E> {
    flow: Option<FlowControlEvent>,
    maxsize: usize,
    clear_on_suspend: bool,
    types: PhantomData<fn() -> (T, E)>,
}

impl<T, E> fmt::Debug for ThrowableQueueBuilder<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrowableQueueBuilder")
            .field("flow", &self.flow)
            .field("maxsize", &self.maxsize)
            .field("clear_on_suspend", &self.clear_on_suspend)
            .finish()
    }
}

impl<T: Send + 'static, E: Send + 'static> ThrowableQueueBuilder<T, E> {
    /// At most `maxsize` items; producers wait for room beyond it. 0 (the default, as in
    /// Mode) means no bound.
    pub fn maxsize(mut self, maxsize: usize) -> Self {
        self.maxsize = maxsize;
        self
    }

    /// Producers wait while `flow` is suspended.
    pub fn flow_control(mut self, flow: &FlowControlEvent) -> Self {
        self.flow = Some(flow.clone());
        self
    }

    /// Whether the flow control event's [`suspend`](FlowControlEvent::suspend) and
    /// [`clear`](FlowControlEvent::clear) empty this queue (its items and pending errors).
    /// Needs [`flow_control`](Self::flow_control). Default: `false`.
    pub fn clear_on_suspend(mut self, yes: bool) -> Self {
        self.clear_on_suspend = yes;
        self
    }

    /// The queue.
    pub fn build(self) -> ThrowableQueue<T, E> {
        let core = Arc::new(Core::new(self.maxsize, self.flow.clone()));
        if let (Some(flow), true) = (&self.flow, self.clear_on_suspend) {
            let managed: Arc<dyn Managed> = core.clone();
            flow.manage(Arc::downgrade(&managed));
        }
        ThrowableQueue { core }
    }
}

impl<T: Send + 'static, E: Send + 'static> Default for ThrowableQueue<T, E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Send + 'static, E: Send + 'static> ThrowableQueue<T, E> {
    /// An unbounded queue without flow control.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder: bound, flow control, whether the event empties the queue.
    pub fn builder() -> ThrowableQueueBuilder<T, E> {
        ThrowableQueueBuilder {
            flow: None,
            maxsize: 0,
            clear_on_suspend: false,
            types: PhantomData,
        }
    }

    /// Adds an item at the back, waiting for room (and, with flow control, while suspended).
    ///
    /// # Errors
    /// [`PutError::Cleared`], with the item, when the queue was cleared while this producer
    /// waited for room.
    ///
    /// # Cancel safety
    /// Dropped before it returns, the item was not queued (it is dropped with the future).
    pub async fn put(&self, item: T) -> Result<(), PutError<T>> {
        self.core.put(item).await
    }

    /// Adds an item if there is room (and the flow is active); never waits.
    ///
    /// # Errors
    /// [`TryPutError::Full`] or [`TryPutError::Suspended`], with the item.
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        self.core.try_put(item)
    }

    /// The oldest error thrown in if there is one, else the item at the front; waits for
    /// either.
    ///
    /// # Errors
    /// The error thrown in.
    ///
    /// # Cancel safety
    /// Cancel safe: an item or error is only taken in the poll that returns it.
    pub async fn get(&self) -> Result<T, E> {
        self.core.get().await
    }

    /// As [`get`](Self::get) without waiting: `Ok(None)` when there is nothing.
    ///
    /// # Errors
    /// The oldest error thrown in.
    pub fn try_get(&self) -> Result<Option<T>, E> {
        self.core.try_get().transpose()
    }

    /// Throws `error` into the queue: a consumer waiting in [`get`](Self::get) wakes with it;
    /// with none waiting, the next `get` returns it (before any item).
    pub fn throw(&self, error: E) {
        self.core.throw(error)
    }

    /// Empties the queue: returns its items (oldest first) and drops its pending errors;
    /// producers waiting for room get their items back ([`PutError::Cleared`]).
    pub fn clear(&self) -> Vec<T> {
        self.core.clear()
    }

    /// How many items are queued (errors not counted).
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// How many thrown errors wait for a consumer.
    pub fn pending_errors(&self) -> usize {
        self.core.errors()
    }

    /// Whether there is neither an item nor an error to get (Mode's `empty`).
    pub fn is_empty(&self) -> bool {
        self.core.len() == 0 && self.core.errors() == 0
    }

    /// The bound, if any.
    pub fn maxsize(&self) -> Option<usize> {
        self.core.maxsize()
    }

    /// The flow control event, if any.
    pub fn flow_control(&self) -> Option<&FlowControlEvent> {
        self.core.flow()
    }
}

impl<T, E> fmt::Debug for ThrowableQueue<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrowableQueue")
            .field("len", &self.core.len())
            .field("pending_errors", &self.core.errors())
            .field("maxsize", &self.core.maxsize())
            .field("flow", &self.core.flow())
            .finish()
    }
}
