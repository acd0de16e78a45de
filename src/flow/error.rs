//! The errors of the flow-controlled queues. Each hands the item back; their `Debug` does not
//! need the item to be `Debug`.

use std::fmt;

/// Why a [`put`](super::FlowControlQueue::put) did not queue its item; the item comes back.
#[non_exhaustive]
pub enum PutError<T> {
    /// The queue was cleared (by [`clear`](super::FlowControlQueue::clear), or by its flow
    /// control event suspending) while this producer waited for room: what it was about to
    /// add is as stale as what was dropped (Mode cancels such producers).
    Cleared(T),
}

impl<T> PutError<T> {
    /// The item that was not queued.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Cleared(item) => item,
        }
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Cleared(_) => f.write_str("Cleared(..)"),
        }
    }
}

impl<T> fmt::Display for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PutError::Cleared(_) => f.write_str("the queue was cleared while waiting for room"),
        }
    }
}

impl<T> std::error::Error for PutError<T> {}

/// Why a [`try_put`](super::FlowControlQueue::try_put) did not queue its item; the item comes
/// back.
#[non_exhaustive]
pub enum TryPutError<T> {
    /// The queue holds `maxsize` items.
    Full(T),
    /// Its flow control event is suspended.
    Suspended(T),
}

impl<T> TryPutError<T> {
    /// The item that was not queued.
    pub fn into_inner(self) -> T {
        match self {
            TryPutError::Full(item) | TryPutError::Suspended(item) => item,
        }
    }
}

impl<T> fmt::Debug for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("Full(..)"),
            TryPutError::Suspended(_) => f.write_str("Suspended(..)"),
        }
    }
}

impl<T> fmt::Display for TryPutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryPutError::Full(_) => f.write_str("the queue is full"),
            TryPutError::Suspended(_) => f.write_str("production into the queue is suspended"),
        }
    }
}

impl<T> std::error::Error for TryPutError<T> {}
