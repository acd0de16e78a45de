//! [`FlowControlQueue`]: a queue whose producers pause while its flow control event is
//! suspended.

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use super::error::{PutError, TryPutError};
use super::event::{FlowControlEvent, Managed};
use super::shared::Core;

/// Mode's `FlowControlQueue`: an async FIFO queue, bounded or not, whose producers wait while
/// its [`FlowControlEvent`] is suspended. Clones are handles on the same queue (any number
/// of producers and consumers).
///
/// ```
/// use modo::flow::{FlowControlEvent, FlowControlQueue};
/// use std::time::Duration;
///
/// #[tokio::main(flavor = "current_thread", start_paused = true)]
/// async fn main() {
///     let flow = FlowControlEvent::resumed();
///     let queue = FlowControlQueue::builder(&flow).maxsize(2).build();
///
///     flow.suspend();
///     let producer = tokio::spawn({
///         let queue = queue.clone();
///         async move { queue.put("order #1").await }
///     });
///     tokio::time::sleep(Duration::from_secs(1)).await;
///     assert!(queue.is_empty(), "the producer waits while suspended");
///
///     flow.resume();
///     assert_eq!(queue.get().await, "order #1");
///     producer.await.unwrap().unwrap();
/// }
/// ```
pub struct FlowControlQueue<T> {
    core: Arc<Core<T, Infallible>>,
    flow: FlowControlEvent,
}

impl<T> Clone for FlowControlQueue<T> {
    fn clone(&self) -> Self {
        FlowControlQueue {
            core: self.core.clone(),
            flow: self.flow.clone(),
        }
    }
}

/// Builds a [`FlowControlQueue`] of `T`s: [`FlowControlQueue::builder`].
pub struct FlowControlQueueBuilder<T> {
    flow: FlowControlEvent,
    maxsize: usize,
    clear_on_suspend: bool,
    item: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for FlowControlQueueBuilder<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowControlQueueBuilder")
            .field("flow", &self.flow)
            .field("maxsize", &self.maxsize)
            .field("clear_on_suspend", &self.clear_on_suspend)
            .finish()
    }
}

impl<T: Send + 'static> FlowControlQueueBuilder<T> {
    /// At most `maxsize` items; producers wait for room beyond it. 0 (the default, as in
    /// Mode) means no bound.
    pub fn maxsize(mut self, maxsize: usize) -> Self {
        self.maxsize = maxsize;
        self
    }

    /// Whether the event's [`suspend`](FlowControlEvent::suspend) and
    /// [`clear`](FlowControlEvent::clear) empty this queue (Mode's `clear_on_resume`, see
    /// [`FlowControlEvent`] for why modo clears on suspend). Default: `false`.
    pub fn clear_on_suspend(mut self, yes: bool) -> Self {
        self.clear_on_suspend = yes;
        self
    }

    /// The queue.
    pub fn build(self) -> FlowControlQueue<T> {
        let core = Arc::new(Core::new(self.maxsize, Some(self.flow.clone())));
        if self.clear_on_suspend {
            let managed: Arc<dyn Managed> = core.clone();
            self.flow.manage(Arc::downgrade(&managed));
        }
        FlowControlQueue {
            core,
            flow: self.flow,
        }
    }
}

impl<T: Send + 'static> FlowControlQueue<T> {
    /// An unbounded queue controlled by `flow`, not emptied by its suspend.
    pub fn new(flow: &FlowControlEvent) -> Self {
        Self::builder(flow).build()
    }

    /// A builder: bound and whether the event empties the queue.
    pub fn builder(flow: &FlowControlEvent) -> FlowControlQueueBuilder<T> {
        FlowControlQueueBuilder {
            flow: flow.clone(),
            maxsize: 0,
            clear_on_suspend: false,
            item: PhantomData,
        }
    }

    /// Adds an item at the back: waits while the flow is suspended, then for room. No put
    /// completes while the flow is suspended (a producer woken by room re-checks the flow).
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

    /// Adds an item if the flow is active and there is room; never waits.
    ///
    /// # Errors
    /// [`TryPutError::Suspended`] or [`TryPutError::Full`], with the item.
    pub fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        self.core.try_put(item)
    }

    /// Takes the item at the front, waiting for one. Consumers are not paused by the flow.
    ///
    /// # Cancel safety
    /// Cancel safe: an item is only taken in the poll that returns it.
    pub async fn get(&self) -> T {
        match self.core.get().await {
            Ok(item) => item,
            Err(never) => match never {},
        }
    }

    /// Takes the item at the front if there is one; never waits.
    pub fn try_get(&self) -> Option<T> {
        self.core.try_get().map(|r| match r {
            Ok(item) => item,
            Err(never) => match never {},
        })
    }

    /// Empties the queue and returns its items, oldest first; producers waiting for room get
    /// their items back ([`PutError::Cleared`]).
    pub fn clear(&self) -> Vec<T> {
        self.core.clear()
    }

    /// How many items are queued.
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether no item is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound, if any.
    pub fn maxsize(&self) -> Option<usize> {
        self.core.maxsize()
    }

    /// The flow control event.
    pub fn flow_control(&self) -> &FlowControlEvent {
        &self.flow
    }
}

impl<T> fmt::Debug for FlowControlQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowControlQueue")
            .field("len", &self.core.len())
            .field("maxsize", &self.core.maxsize())
            .field("flow", &self.flow)
            .finish()
    }
}
