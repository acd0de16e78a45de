//! The registry actor: the System's live graph of services (Mode's Beacon), kept from the
//! events every service reports as it is created, changes state and stops for good.
//!
//! There is one registry per [`System`](crate::System), started by `System::new` and
//! stopped last by `System::shutdown`. Reporting is a non-blocking send to its unbounded lane,
//! so the registry never slows a service down; its own lifecycle is not reported.
//!
//! # Invariants
//! - Each service's events arrive in the order they happened: `Spawned` is queued by the
//!   creator before the service's task exists, later events by the service's own task, and
//!   `Removed` last.
//! - A snapshot ([`Addr<Registry>::graph`]) is taken by the registry's own task between two
//!   events: it is always a consistent graph (every parent and child it names is in it).

mod event;
mod graph;

use std::collections::HashMap;

use uuid::Uuid;

pub(crate) use event::Event;
pub use graph::{CycleError, DependencyGraph, Graph, Node};

use crate::addr::Addr;
use crate::context::Context;
use crate::handler::Handler;
use crate::service::Service;

/// The registry actor. Reach it with [`System::registry`](crate::System::registry).
#[derive(Debug, Default)]
pub struct Registry {
    nodes: HashMap<Uuid, Node, crate::system::IdHasher>,
    /// Creation order, so snapshots list siblings in the order they were added.
    next_seq: u64,
}

impl Service for Registry {
    fn mundane_level(&self) -> tracing::Level {
        tracing::Level::DEBUG
    }

    fn mailbox_capacity(&self) -> usize {
        usize::MAX
    }
}

impl Handler<Event> for Registry {
    type Reply = ();

    async fn handle(&mut self, event: Event, _ctx: &mut Context<Self>) {
        match event {
            Event::Spawned {
                service,
                parent,
                name,
            } => {
                let id = service.id();
                self.next_seq += 1;
                let node = Node {
                    id,
                    label: service.label().to_owned(),
                    shortlabel: service.shortlabel().to_owned(),
                    type_name: service.type_name(),
                    name,
                    parent,
                    children: Vec::new(),
                    depth: service.depth(),
                    state: service.state(),
                    restart_count: service.restart_count(),
                    seq: self.next_seq,
                };
                if let Some(parent) = parent.and_then(|p| self.nodes.get_mut(&p)) {
                    parent.children.push(id);
                }
                self.nodes.insert(id, node);
            }
            Event::State {
                id,
                state,
                restart_count,
            } => {
                if let Some(node) = self.nodes.get_mut(&id) {
                    node.state = state;
                    node.restart_count = restart_count;
                }
            }
            Event::Removed { id } => {
                if let Some(node) = self.nodes.remove(&id)
                    && let Some(parent) = node.parent.and_then(|p| self.nodes.get_mut(&p))
                {
                    parent.children.retain(|c| *c != id);
                }
            }
        }
    }
}

/// Asks the registry for a snapshot of the graph.
#[derive(Debug)]
pub(crate) struct Snapshot;

impl Handler<Snapshot> for Registry {
    type Reply = Graph;

    async fn handle(&mut self, _: Snapshot, _ctx: &mut Context<Self>) -> Graph {
        Graph::from_nodes(self.nodes.values().cloned().collect())
    }
}

impl Addr<Registry> {
    /// A consistent snapshot of every live service. Once the System has shut down, nothing is
    /// live: the graph is empty.
    ///
    /// ```
    /// use modo::prelude::*;
    ///
    /// struct App;
    /// impl Service for App {}
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), modo::Error> {
    /// let system = System::new();
    /// let app = system.spawn(App).await?;
    /// let graph = system.registry().graph().await;
    /// assert_eq!(graph.node(app.id()).unwrap().label, "App");
    /// system.shutdown().await?;
    /// assert!(system.registry().graph().await.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn graph(&self) -> Graph {
        self.ask(Snapshot)
            .await
            .unwrap_or_else(|_| Graph::from_nodes(Vec::new()))
    }

    pub(crate) fn deliver(&self, event: Event) {
        // An unbounded lane: only fails once the registry has stopped, after every service.
        let _ = self.try_tell(event);
    }
}
