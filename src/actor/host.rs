//! What the kernel asks of whoever hosts its actors: the [`Host`] (the
//! [`System`](crate::System) is the one host there is). The kernel reaches nothing above it but
//! through this trait, so the layer above can change without the kernel knowing.

use std::any::Any;
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;
use tokio_util::task::task_tracker::TaskTrackerToken;
use uuid::Uuid;

use super::addr::ServiceRef;
use super::error::Error;

/// A change in the shape of the live service graph, reported to the host by the code that
/// launched the service and by its own task when it ends. Reporting never blocks. (States are
/// not events: whoever shows the graph reads them live from the services.)
#[derive(Debug)]
pub(crate) enum Event {
    /// A service was created (not yet started).
    /// Its parent and name are on its cell; the host may note where it keeps its record of
    /// the service in the cell's host key (see `Core::set_host_key`).
    Spawned { service: ServiceRef },
    /// A service stopped for good and left the graph. `key`: its cell's host key.
    Removed { id: Uuid, key: u64 },
    /// A root service was adopted (see `Context::adopt`): it is now a child, its parent on
    /// its cell. `key`: its cell's host key.
    Adopted { id: Uuid, key: u64 },
}

/// The services a host gives the actors it hosts. Implemented by the System; handed down to
/// every actor as an `Arc<dyn Host>` (a service's context keeps it, its cell a `Weak`).
///
/// # Invariants
/// - Every method returns at once: none waits on an actor.
/// - `track` is called once per actor, before its task exists; the token is dropped when the
///   task ends, so the host can wait for every actor task.
pub(crate) trait Host: Any + Send + Sync {
    /// The runtime actor tasks run on.
    fn runtime(&self) -> &Handle;

    /// Counts one actor task until the token is dropped.
    fn track(&self) -> TaskTrackerToken;

    /// Records a change in the service graph.
    fn report(&self, event: Event);

    /// Counts `n` messages of service `id` that could not be delivered (`crashed`: because the
    /// service crashed, not because it stopped cleanly). Returns whether the service should log
    /// them: the host keeps the count of what was logged.
    fn dead_lettered(&self, id: Uuid, label: &Arc<str>, n: u64, crashed: bool) -> bool;

    /// Reserves `name` for `service`, unique among live services.
    fn claim_name(&self, name: &Arc<str>, service: &ServiceRef) -> Result<(), Error>;

    /// Frees `name` if `id` holds it.
    fn release_name(&self, name: &str, id: Uuid);

    /// Held while a root is adopted, so two adoptions cannot race into a cycle (A adopting B
    /// while B adopts A). Held briefly, never across an await.
    fn adoption_lock(&self) -> &Mutex<()>;

    /// The host as `Any`, so the layer that implements it can find itself again (the
    /// System's `Context::system`).
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}
