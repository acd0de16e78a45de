//! The registry actor: the System's live graph of services (Mode's Beacon).
//!
//! There is one registry per [`System`](crate::System), started by `System::new` and
//! stopped last by `System::shutdown`. The graph itself is the System's directory
//! (`directory.rs`): each service is entered by its creator and removed by its own task, in
//! place, so a report costs one write in a sharded map and never wakes a task. The registry
//! reads it when asked for a snapshot or a service; once the System has shut down it answers
//! no more, and nothing is live.
//!
//! # Invariants
//! - Each service's changes happen in the order they happened: it is entered by its creator
//!   before its task exists, and removed by its own task last.
//! - A snapshot ([`Addr<Registry>::graph`]) is always a consistent graph: every parent and
//!   child it names is in it.

mod cluster;
mod directory;
mod graph;

use std::sync::Arc;

use uuid::Uuid;

pub use cluster::{ClusterGraph, Member, MemberState};
pub(crate) use directory::Directory;
pub use graph::{CycleError, DependencyGraph, Graph, Node};

use crate::{Addr, Context, Handler, Service, ServiceRef};

/// The registry actor. Reach it with [`System::registry`](crate::System::registry).
#[derive(Debug)]
pub struct Registry {
    /// The live services, shared with the System that writes them.
    directory: Arc<Directory>,
}

impl Registry {
    /// The registry of the services in `directory`.
    pub(crate) fn new(directory: Arc<Directory>) -> Self {
        Registry { directory }
    }
}

impl Service for Registry {
    fn mundane_level(&self) -> tracing::Level {
        tracing::Level::DEBUG
    }

    fn mailbox_capacity(&self) -> usize {
        usize::MAX
    }
}

/// Asks the registry for a snapshot of the graph.
#[derive(Debug)]
pub(crate) struct Snapshot;

impl Handler<Snapshot> for Registry {
    type Reply = Graph;

    async fn handle(&mut self, _: Snapshot, _ctx: &mut Context<Self>) -> Graph {
        self.directory.snapshot()
    }
}

/// Asks the registry for one live service by id.
#[derive(Debug)]
pub(crate) struct Find(Uuid);

impl Handler<Find> for Registry {
    type Reply = Option<ServiceRef>;

    async fn handle(&mut self, Find(id): Find, _ctx: &mut Context<Self>) -> Option<ServiceRef> {
        self.directory.find(id)
    }
}

impl Addr<Registry> {
    /// The live service with id `id` (from a [`Graph`] snapshot, say), to act on it: stop,
    /// restart or crash it, read its stats. `None` if no live service has that id (or the
    /// System has shut down).
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
    /// let found = system.registry().service(app.id()).await.expect("live");
    /// found.stop().await?;
    /// assert!(system.registry().service(app.id()).await.is_none());
    /// # system.shutdown().await }
    /// ```
    pub async fn service(&self, id: Uuid) -> Option<ServiceRef> {
        self.ask(Find(id)).await.ok().flatten()
    }

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
}
