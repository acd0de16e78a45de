//! Flow control: Mode's `mode.utils.queues`. A [`FlowControlEvent`] suspends and resumes the
//! producers of every queue that shares it; a [`FlowControlQueue`] is such a queue; a
//! [`ThrowableQueue`] is a queue whose waiting consumer can be woken by an error.
//!
//! # When to use these instead of a service's mailbox
//! A service's mailbox carries typed messages to the handlers of one service, survives its
//! restarts and stops with it. Use these queues for the plumbing between tasks instead:
//!
//! - A [`FlowControlQueue`] when production must be paused from outside for several queues
//!   at once, and what they hold may go stale (Faust pauses its fetchers during a rebalance
//!   and drops what they had buffered). A mailbox cannot be paused or emptied.
//! - A [`ThrowableQueue`] when a consumer loop must learn of a producer's failure in the
//!   same `get` it waits on (a fetcher task feeding a processing loop: the fetcher's error
//!   wakes the processor), instead of a second channel and a `select!`.
//!
//! Both are bounded when given a `maxsize` (producers then wait for room), unbounded
//! otherwise, as Mode's are. Clones are handles on one queue: any number of producers and
//! consumers.
//!
//! ```
//! use modo::flow::{FlowControlEvent, FlowControlQueue, ThrowableQueue};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let flow = FlowControlEvent::new(); // starts suspended, as Mode's
//! let fetched = FlowControlQueue::builder(&flow).maxsize(100).clear_on_suspend(true).build();
//! let results: ThrowableQueue<u64, String> =
//!     ThrowableQueue::builder().flow_control(&flow).build();
//!
//! flow.resume();
//! fetched.put(7).await.unwrap();
//! results.put(fetched.get().await * 6).await.unwrap();
//! assert_eq!(results.get().await, Ok(42));
//! # }
//! ```
//!
//! # Invariants
//! - No put completes while its queue's event is suspended: producers wait at the event
//!   before looking for room, and look at the event again, under the queue's lock, before
//!   adding (a producer woken by room during a suspension goes back to wait).
//! - Every item a put or try_put accepted is either returned by exactly one `get`/`try_get`
//!   or returned by a `clear` (the event's clears count them); none is lost or duplicated.
//!   A producer whose put fails gets its item back in the error.
//! - A clear (of the queue, or by its event) hands its item back (`PutError::Cleared`) to
//!   every producer that had found the queue full and has not added its item since, whether
//!   it waits for room or, woken by room while suspended, for the resume. Producers that
//!   only wait at a suspended event are not cleared: they go on after the resume.
//! - Errors thrown into a [`ThrowableQueue`] come out before items, in order, each once; a
//!   consumer waiting in `get` is woken by a throw.
//! - Waits register before they look at the queue and every loop turn sleeps: no lost
//!   wake-up, no busy loop. A consumer dropped after being woken passes its wake-up on.
//!
//! # Where modo differs from Mode
//! - Managed queues (`clear_on_suspend(true)`, Mode's `clear_on_resume=True`) are emptied
//!   when the event suspends, not when it resumes; see [`FlowControlEvent`].
//! - A producer woken by room while suspended waits again (Mode's would add its item).
//! - Producers waiting for room are woken together and race for it (asyncio's queue serves
//!   them in the order they came); consumers are woken one per item or error.
//! - Clearing a [`FlowControlQueue`] hands its waiting producers their items back, as Mode
//!   does only for a `ThrowableQueue`.
//! - A [`ThrowableQueue`] needs no flow control event; Mode's pressure callbacks
//!   (`put_nowait_enhanced`) are left out.

mod error;
mod event;
mod queue;
mod shared;
mod throwable;

pub use error::{PutError, TryPutError};
pub use event::FlowControlEvent;
pub use queue::{FlowControlQueue, FlowControlQueueBuilder};
pub use throwable::{ThrowableQueue, ThrowableQueueBuilder};
