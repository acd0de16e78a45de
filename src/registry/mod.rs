//! The registry actor: the System's live graph of services (Mode's Beacon), kept from the
//! events every service reports as it is created, changes state and stops for good.
//!
//! There is one registry per [`System`](crate::System), started by `System::new` and
//! stopped last by `System::shutdown`. Reporting is a non-blocking send of a small event on the
//! registry's own unbounded flume channel, so the registry never slows a service down; its own
//! lifecycle is not reported. The registry applies the events when it is asked for a snapshot,
//! and whenever 1,024 of them (`DRAIN_EVERY`) are waiting: a service does not wake the registry's
//! task for every state change, and the graph is always current when it is read.
//!
//! # Invariants
//! - Each service's events arrive in the order they happened: `Spawned` is queued by the
//!   creator before the service's task exists, later events by the service's own task, and
//!   `Removed` last.
//! - A snapshot ([`Addr<Registry>::graph`]) is taken by the registry's own task between two
//!   events: it is always a consistent graph (every parent and child it names is in it).

mod cluster;
mod graph;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use uuid::Uuid;

pub use cluster::{ClusterGraph, Member, MemberState};
pub use graph::{CycleError, DependencyGraph, Graph, Node};

use crate::actor::host::Event;
use crate::system::IdHasher;
use crate::{Addr, Context, Handler, HookResult, Service, ServiceRef};

/// How many waiting events make the System ask the registry to apply them.
pub(crate) const DRAIN_EVERY: usize = 1024;

/// The registry actor. Reach it with [`System::registry`](crate::System::registry).
#[derive(Debug)]
pub struct Registry {
    /// The live services and how they hang together; a snapshot reads the rest (label, state,
    /// restart count, tasks) from the services themselves.
    entries: HashMap<Uuid, Entry, IdHasher>,
    /// Creation order, so snapshots list siblings in the order they were added.
    next_seq: u64,
    events: flume::Receiver<Event>,
    /// Set by the System when it asked for a drain; cleared when one ran.
    drain_asked: Arc<AtomicBool>,
    /// Events queued since the last drain (an estimate: enough to decide when to drain).
    queued: Arc<AtomicUsize>,
}

/// What the registry keeps of one live service.
#[derive(Debug)]
struct Entry {
    service: ServiceRef,
    parent: Option<Uuid>,
    children: Vec<Uuid>,
    name: Option<Arc<str>>,
    /// Creation order.
    seq: u64,
}

/// The reporting side, kept by the System.
#[derive(Debug)]
pub(crate) struct Reporter {
    events: flume::Sender<Event>,
    drain_asked: Arc<AtomicBool>,
    queued: Arc<AtomicUsize>,
    /// Told to drain when the backlog is long.
    registry: Option<Addr<Registry>>,
}

/// A registry and the reporter that feeds it.
pub(crate) fn channel() -> (Registry, Reporter) {
    let (tx, rx) = flume::unbounded();
    let drain_asked = Arc::new(AtomicBool::new(false));
    let queued = Arc::new(AtomicUsize::new(0));
    let registry = Registry {
        entries: HashMap::default(),
        next_seq: 0,
        events: rx,
        drain_asked: drain_asked.clone(),
        queued: queued.clone(),
    };
    (
        registry,
        Reporter {
            events: tx,
            drain_asked,
            queued,
            registry: None,
        },
    )
}

impl Reporter {
    /// The reporter, telling `registry` to drain when the backlog is long.
    pub(crate) fn with_registry(mut self, registry: Addr<Registry>) -> Self {
        self.registry = Some(registry);
        self
    }

    /// Queues `event`; asks the registry to apply the backlog once it is long. Never blocks.
    pub(crate) fn report(&self, event: Event) {
        // Unbounded; fails only once the registry is gone, after every service.
        let _ = self.events.send(event);
        let queued = self.queued.fetch_add(1, Ordering::Relaxed) + 1;
        if queued >= DRAIN_EVERY
            && !self.drain_asked.swap(true, Ordering::AcqRel)
            && let Some(registry) = &self.registry
        {
            let _ = registry.try_tell(Drain);
        }
    }
}

impl Registry {
    /// Applies every waiting event, in order.
    fn drain(&mut self) {
        self.queued.store(0, Ordering::Relaxed);
        self.drain_asked.store(false, Ordering::Release);
        // One lock for the whole backlog, not one per event.
        let backlog: Vec<Event> = self.events.drain().collect();
        for event in backlog {
            self.apply(event);
        }
    }
}

impl Service for Registry {
    fn mundane_level(&self) -> tracing::Level {
        tracing::Level::DEBUG
    }

    async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.drain();
        Ok(())
    }

    fn mailbox_capacity(&self) -> usize {
        usize::MAX
    }
}

/// Asks the registry to apply the waiting events.
#[derive(Debug)]
pub(crate) struct Drain;

impl Handler<Drain> for Registry {
    type Reply = ();

    async fn handle(&mut self, _: Drain, _ctx: &mut Context<Self>) {
        self.drain();
    }
}

impl Registry {
    fn apply(&mut self, event: Event) {
        match event {
            Event::Spawned {
                service,
                parent,
                name,
            } => {
                let id = service.id();
                self.next_seq += 1;
                if let Some(parent) = parent.and_then(|p| self.entries.get_mut(&p)) {
                    parent.children.push(id);
                }
                let entry = Entry {
                    service,
                    parent,
                    children: Vec::new(),
                    name,
                    seq: self.next_seq,
                };
                self.entries.insert(id, entry);
            }
            Event::Removed { id } => {
                if let Some(entry) = self.entries.remove(&id)
                    && let Some(parent) = entry.parent.and_then(|p| self.entries.get_mut(&p))
                {
                    parent.children.retain(|c| *c != id);
                }
            }
            Event::Adopted { id, parent } => {
                // Both are live when it is reported (the adopter from its own task); an entry
                // already removed means the service ended meanwhile: nothing to move.
                if !self.entries.contains_key(&parent) {
                    return;
                }
                if let Some(entry) = self.entries.get_mut(&id) {
                    entry.parent = Some(parent);
                    if let Some(p) = self.entries.get_mut(&parent) {
                        p.children.push(id);
                    }
                }
            }
        }
    }

    /// The node of one entry, with what the service shows now.
    fn node(entry: &Entry) -> Node {
        let service = &entry.service;
        Node {
            id: service.id(),
            label: service.label().to_owned(),
            shortlabel: service.shortlabel().to_owned(),
            type_name: service.type_name(),
            name: entry.name.as_deref().map(str::to_owned),
            parent: entry.parent,
            children: entry.children.clone(),
            depth: service.depth(),
            state: service.state(),
            restart_count: service.restart_count(),
            tasks: service.task_names(),
            flags: service.diag().flags(),
            seq: entry.seq,
        }
    }
}

/// Asks the registry for a snapshot of the graph.
#[derive(Debug)]
pub(crate) struct Snapshot;

impl Handler<Snapshot> for Registry {
    type Reply = Graph;

    async fn handle(&mut self, _: Snapshot, _ctx: &mut Context<Self>) -> Graph {
        self.drain();
        Graph::from_nodes(self.entries.values().map(Registry::node).collect())
    }
}

/// Asks the registry for one live service by id.
#[derive(Debug)]
pub(crate) struct Find(Uuid);

impl Handler<Find> for Registry {
    type Reply = Option<ServiceRef>;

    async fn handle(&mut self, Find(id): Find, _ctx: &mut Context<Self>) -> Option<ServiceRef> {
        self.drain();
        self.entries.get(&id).map(|e| e.service.clone())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::system::System;

    /// A long backlog asks the registry for a drain once, and the drain empties it.
    #[tokio::test(flavor = "current_thread")]
    async fn a_long_backlog_asks_for_one_drain() {
        let system = System::new();
        let registry = system.registry().clone();
        for _ in 0..DRAIN_EVERY - 1 {
            system.report_for_test(Event::Removed { id: Uuid::new_v4() });
        }
        assert_eq!(registry.mailbox_len(), 0, "no drain asked yet");
        for _ in 0..10 {
            system.report_for_test(Event::Removed { id: Uuid::new_v4() });
        }
        assert_eq!(
            registry.mailbox_len(),
            1,
            "one drain asked, not one per event"
        );
        assert!(registry.graph().await.is_empty());
        system.shutdown().await.unwrap();
    }
}
