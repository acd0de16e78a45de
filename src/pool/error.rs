//! What can go wrong building or attaching a pool. Sends through a built pool fail with the
//! crate's own errors ([`SendError`](crate::SendError), [`TrySendError`](crate::TrySendError),
//! [`Error`](crate::Error)), which hand the message back where they can.

use crate::Error;

/// A pool that could not be built or attached.
///
/// ```
/// use modo::pool::{Pool, PoolError};
/// use modo::Service;
///
/// struct Worker;
/// impl Service for Worker {}
///
/// let err = Pool::builder(0, |_| Worker).build().unwrap_err();
/// assert!(matches!(err, PoolError::NoReplicas));
/// assert_eq!(err.to_string(), "a pool needs at least one replica");
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PoolError {
    /// The builder was asked for zero replicas.
    #[error("a pool needs at least one replica")]
    NoReplicas,
    /// The hash ring was asked for a number of points per replica outside `1..=`
    /// [`MAX_VIRTUAL_NODES`](super::MAX_VIRTUAL_NODES).
    #[error("virtual nodes per replica must be between 1 and {max}, not {given}")]
    VirtualNodes {
        /// The number asked for.
        given: usize,
        /// The largest allowed.
        max: usize,
    },
    /// The supervisor a router was attached to does not hold the replicas it expects: not the
    /// pool's supervisor, or one that lost replicas (a forfeiting strategy) before the attach.
    #[error("{label} has {found} replicas of type {replica}, the pool expects {expected}")]
    ReplicaMismatch {
        /// The supervisor's label.
        label: String,
        /// The replicas' service type.
        replica: &'static str,
        /// How many the pool was built with.
        expected: usize,
        /// How many children of that type the supervisor has.
        found: usize,
    },
    /// Spawning or starting the pool's supervisor or a replica failed, or the supervisor
    /// stopped before the router was attached.
    #[error(transparent)]
    Service(#[from] Error),
}
