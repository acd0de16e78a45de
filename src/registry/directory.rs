//! The directory: every live service of a System (the registry's graph, and the roots), written
//! in place by whoever reports a change, read by snapshots.
//!
//! A report is one insert, update or removal in a sharded concurrent map, made by the code that
//! caused it (the spawner, the service's own task, the adopter): no event queue, no drain, no
//! second map for the roots (a root is an entry with no parent).
//!
//! # Invariants
//! - Each service's changes happen in the order they happened: it is inserted by its creator
//!   before its task exists, adopted by its adopter while both are live, removed by its own task
//!   last.
//! - A snapshot is a consistent graph: every parent and child it names is in it. Reading the
//!   shards one by one can meet a child whose parent was removed (or not yet seen) meanwhile;
//!   such a subtree is left out, as it would be a moment later (or earlier).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use uuid::Uuid;

use crate::ServiceRef;
use crate::actor::host::Event;
use crate::system::IdHasher;

use super::graph::{Graph, Node};

/// The live services of one System.
#[derive(Debug, Default)]
pub(crate) struct Directory {
    entries: DashMap<Uuid, Entry, IdHasher>,
    /// Numbers the services in creation order, and adoptions in the order they happened.
    seq: AtomicU64,
}

/// What the directory keeps of one live service: small, as every spawn writes one. Its parent
/// and name are the cell's own (a root's parent is set once, by its adoption).
#[derive(Debug, Clone)]
struct Entry {
    service: ServiceRef,
    /// Creation order: the order of the nodes of a snapshot, and of the roots.
    seq: u64,
    /// When it joined its parent (its creation, or its adoption): the order of siblings.
    joined: u64,
}

impl Entry {
    /// The parent's id; for a child whose parent is gone, the nil id, which no snapshot
    /// holds (so its subtree is left out).
    fn parent(&self) -> Option<Uuid> {
        let core = self.service.core();
        if core.is_root() {
            return None;
        }
        Some(core.parent().map_or(Uuid::nil(), |p| p.core().id))
    }

    fn is_root(&self) -> bool {
        self.service.core().is_root()
    }
}

impl Directory {
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Applies one change in the graph.
    pub(crate) fn apply(&self, event: Event) {
        match event {
            Event::Spawned { service } => {
                let seq = self.next_seq();
                let entry = Entry {
                    service,
                    seq,
                    joined: seq,
                };
                self.entries.insert(entry.service.id(), entry);
            }
            Event::Removed { id } => {
                self.entries.remove(&id);
            }
            Event::Adopted { id, parent } => {
                // Both are live when it is reported (the adopter from its own task); an entry
                // already removed means the service ended meanwhile: nothing to move.
                if !self.entries.contains_key(&parent) {
                    return;
                }
                let joined = self.next_seq();
                if let Some(mut entry) = self.entries.get_mut(&id) {
                    entry.joined = joined;
                }
            }
        }
    }

    /// Forgets `id` (a root whose stop failed at shutdown: it must not be tried again).
    pub(crate) fn forget(&self, id: Uuid) {
        self.entries.remove(&id);
    }

    /// The live roots, in creation order.
    pub(crate) fn roots(&self) -> Vec<ServiceRef> {
        let mut roots: Vec<(u64, ServiceRef)> = self
            .entries
            .iter()
            .filter(|e| e.is_root())
            .map(|e| (e.seq, e.service.clone()))
            .collect();
        roots.sort_by_key(|(seq, _)| *seq);
        roots.into_iter().map(|(_, r)| r).collect()
    }

    /// How many roots are live.
    pub(crate) fn root_count(&self) -> usize {
        self.entries.iter().filter(|e| e.is_root()).count()
    }

    /// The live service `id`.
    pub(crate) fn find(&self, id: Uuid) -> Option<ServiceRef> {
        self.entries.get(&id).map(|e| e.service.clone())
    }

    /// A consistent snapshot of the graph, with what each service shows now.
    pub(crate) fn snapshot(&self) -> Graph {
        let seen: Vec<(Uuid, Option<Uuid>, Entry)> = self
            .entries
            .iter()
            .map(|e| (*e.key(), e.parent(), e.value().clone()))
            .collect();
        let parents: HashMap<Uuid, Option<Uuid>> =
            seen.iter().map(|(id, parent, _)| (*id, *parent)).collect();
        let kept = rooted(&parents);
        let mut children: HashMap<Uuid, Vec<(u64, Uuid)>> = HashMap::new();
        for (id, parent, entry) in &seen {
            if let Some(parent) = *parent
                && kept.contains(id)
            {
                children
                    .entry(parent)
                    .or_default()
                    .push((entry.joined, *id));
            }
        }
        let nodes = seen
            .into_iter()
            .filter(|(id, ..)| kept.contains(id))
            .map(|(id, parent, entry)| {
                let mut kids = children.remove(&id).unwrap_or_default();
                kids.sort_unstable();
                let service = &entry.service;
                Node {
                    id,
                    label: service.label().to_owned(),
                    shortlabel: service.shortlabel().to_owned(),
                    type_name: service.type_name(),
                    name: service.core().name.as_deref().map(str::to_owned),
                    parent,
                    children: kids.into_iter().map(|(_, id)| id).collect(),
                    depth: service.depth(),
                    state: service.state(),
                    restart_count: service.restart_count(),
                    tasks: service.task_names(),
                    flags: service.diag().flags(),
                    seq: entry.seq,
                }
            })
            .collect();
        Graph::from_nodes(nodes)
    }
}

/// The ids whose chain of parents, in `parents`, reaches a root: the rest hang from a parent
/// the snapshot does not hold.
fn rooted(parents: &HashMap<Uuid, Option<Uuid>>) -> HashSet<Uuid> {
    let mut known: HashMap<Uuid, bool> = HashMap::with_capacity(parents.len());
    for &start in parents.keys() {
        // Walk up to a root, a missing parent, or an id already decided; then mark the path.
        let mut path = Vec::new();
        let mut at = start;
        let verdict = loop {
            if let Some(&v) = known.get(&at) {
                break v;
            }
            path.push(at);
            // A path longer than the map is a cycle, which adoption rules out; it is not rooted.
            if path.len() > parents.len() {
                break false;
            }
            match parents.get(&at) {
                None => break false,
                Some(None) => break true,
                Some(Some(parent)) => at = *parent,
            }
        };
        for id in path {
            // The last id pushed may be missing from the map (a removed parent): it is not a
            // node, so marking it does no harm.
            known.insert(id, verdict);
        }
    }
    known
        .into_iter()
        .filter(|(id, v)| *v && parents.contains_key(id))
        .map(|(id, _)| id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn a_subtree_whose_parent_is_missing_is_left_out() {
        let parents: HashMap<Uuid, Option<Uuid>> = [
            (id(1), None),
            (id(2), Some(id(1))),
            (id(3), Some(id(2))),
            // 9 is gone: 4 and its child 5 hang from nothing.
            (id(4), Some(id(9))),
            (id(5), Some(id(4))),
        ]
        .into_iter()
        .collect();
        let mut kept: Vec<Uuid> = rooted(&parents).into_iter().collect();
        kept.sort();
        assert_eq!(kept, [id(1), id(2), id(3)]);
    }

    #[test]
    fn a_cycle_is_not_rooted() {
        let parents: HashMap<Uuid, Option<Uuid>> =
            [(id(1), Some(id(2))), (id(2), Some(id(1))), (id(3), None)]
                .into_iter()
                .collect();
        assert_eq!(rooted(&parents).into_iter().collect::<Vec<_>>(), [id(3)]);
    }
}
