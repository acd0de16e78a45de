//! What services report to the registry: small events, sent without waiting.

use uuid::Uuid;

use crate::addr::ServiceRef;
use crate::state::ServiceState;

/// A change in the live service graph, reported by a service's own task (or by the code that
/// created it) to the System's registry actor. Sending one never blocks: the registry's lane is
/// unbounded.
#[derive(Debug)]
pub(crate) enum Event {
    /// A service was created (not yet started).
    Spawned {
        service: ServiceRef,
        /// The parent's id; `None` for a root.
        parent: Option<Uuid>,
        /// The name it was spawned under, if any.
        name: Option<String>,
    },
    /// A service changed state (restart counts change with a restart's `Starting`).
    State {
        id: Uuid,
        state: ServiceState,
        restart_count: u32,
    },
    /// A service stopped for good and left the graph.
    Removed { id: Uuid },
}
