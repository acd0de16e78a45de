//! The directory: every live service of a System (the registry's graph, and the roots), written
//! in place by whoever reports a change, read by snapshots.
//!
//! A report is one write in a slab, made by the code that caused it (the spawner, the service's
//! own task, the adopter): no event queue, no drain, no second map for the roots (a root is an
//! entry with no parent). The slab is sharded; a spawner writes to its own thread's shard, so
//! two runtime workers spawning at once do not share a lock or a cache line, and a service's
//! entry is found again through the key its cell carries (no hashing: a slot index, reused
//! last-freed first, so a spawn and a stop touch memory that is still warm).
//!
//! # Invariants
//! - Each service's changes happen in the order they happened: it is inserted by its creator
//!   before its task exists, adopted by its adopter while both are live, removed by its own task
//!   last.
//! - A write names its entry by key and id: a slot freed early (a root forgotten at shutdown)
//!   and reused by another service is never touched by the first service's later reports.
//! - A snapshot is a consistent graph: every parent and child it names is in it. Reading the
//!   shards one by one can meet a child whose parent was removed (or not yet seen) meanwhile;
//!   such a subtree is left out, as it would be a moment later (or earlier).

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use uuid::Uuid;

use crate::ServiceRef;
use crate::actor::host::Event;

use super::graph::{Graph, Node};

/// Shards: more than the threads that usually spawn at once.
const SHARDS: usize = 16;

/// A slab shrinks back once empty if it had grown past this many slots.
const KEEP_SLOTS: usize = 1024;

/// The live services of one System.
#[derive(Debug)]
pub(crate) struct Directory {
    shards: Box<[Padded]>,
    /// Numbers the services in creation order, and adoptions in the order they happened.
    seq: AtomicU64,
}

/// One shard on cache lines of its own: shards written by different threads must not share one.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded(Mutex<Slab>);

/// A shard's entries, by slot.
#[derive(Debug, Default)]
struct Slab {
    slots: Vec<Option<Entry>>,
    /// Free slots, the last freed on top.
    free: Vec<u32>,
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

/// A key: the shard in the high half, the slot in the low half.
fn key(shard: usize, slot: u32) -> u64 {
    ((shard as u64) << 32) | u64::from(slot)
}

fn split(key: u64) -> (usize, usize) {
    (
        (key >> 32) as usize % SHARDS,
        (key & u64::from(u32::MAX)) as usize,
    )
}

thread_local! {
    /// This thread's shard, given out round robin at its first spawn.
    static HOME: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The shard of the calling thread.
fn home() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    HOME.with(|home| {
        home.get().unwrap_or_else(|| {
            let shard = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
            home.set(Some(shard));
            shard
        })
    })
}

fn lock(m: &Mutex<Slab>) -> MutexGuard<'_, Slab> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Default for Directory {
    fn default() -> Self {
        Directory {
            shards: (0..SHARDS).map(|_| Padded::default()).collect(),
            seq: AtomicU64::new(0),
        }
    }
}

impl Slab {
    /// A slot to fill: the last one freed, or a new one.
    fn vacant(&mut self) -> u32 {
        if let Some(slot) = self.free.pop() {
            return slot;
        }
        let slot = u32::try_from(self.slots.len()).expect("fewer than 2^32 services per shard");
        self.slots.push(None);
        slot
    }

    /// The entry in `slot`, if it is `id`'s.
    fn get_mut(&mut self, slot: usize, id: Uuid) -> Option<&mut Entry> {
        self.slots
            .get_mut(slot)?
            .as_mut()
            .filter(|e| e.service.id() == id)
    }

    fn remove(&mut self, slot: usize, id: Uuid) {
        if self.get_mut(slot, id).is_none() {
            return;
        }
        self.slots[slot] = None;
        self.free.push(slot as u32);
        if self.free.len() == self.slots.len() && self.slots.len() > KEEP_SLOTS {
            // Empty after a crowd: give the memory back.
            *self = Slab::default();
        }
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().flatten()
    }
}

impl Directory {
    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    fn shard(&self, shard: usize) -> MutexGuard<'_, Slab> {
        lock(&self.shards[shard].0)
    }

    /// Every entry, shard by shard (each shard locked only while it is read).
    fn collect<T>(&self, mut f: impl FnMut(&Entry) -> Option<T>) -> Vec<T> {
        let mut out = Vec::new();
        for shard in 0..SHARDS {
            out.extend(self.shard(shard).entries().filter_map(&mut f));
        }
        out
    }

    /// Applies one change in the graph.
    pub(crate) fn apply(&self, event: Event) {
        match event {
            Event::Spawned { service } => {
                let seq = self.next_seq();
                let shard = home();
                let mut slab = self.shard(shard);
                let slot = slab.vacant();
                service.core().set_host_key(key(shard, slot));
                slab.slots[slot as usize] = Some(Entry {
                    service,
                    seq,
                    joined: seq,
                });
            }
            Event::Removed { id, key } => {
                let (shard, slot) = split(key);
                self.shard(shard).remove(slot, id);
            }
            Event::Adopted { id, key } => {
                // Reported by the adopter from its own task; an entry already removed means
                // the service ended meanwhile: nothing to move.
                let joined = self.next_seq();
                let (shard, slot) = split(key);
                if let Some(entry) = self.shard(shard).get_mut(slot, id) {
                    entry.joined = joined;
                }
            }
        }
    }

    /// Forgets `service` (a root whose stop failed at shutdown: it must not be tried again).
    pub(crate) fn forget(&self, service: &ServiceRef) {
        let (shard, slot) = split(service.core().host_key());
        self.shard(shard).remove(slot, service.id());
    }

    /// Every live service, in no particular order.
    pub(crate) fn all(&self) -> Vec<ServiceRef> {
        self.collect(|e| Some(e.service.clone()))
    }

    /// The live roots, in creation order.
    pub(crate) fn roots(&self) -> Vec<ServiceRef> {
        let mut roots = self.collect(|e| e.is_root().then(|| (e.seq, e.service.clone())));
        roots.sort_by_key(|(seq, _)| *seq);
        roots.into_iter().map(|(_, r)| r).collect()
    }

    /// How many roots are live.
    pub(crate) fn root_count(&self) -> usize {
        (0..SHARDS)
            .map(|shard| self.shard(shard).entries().filter(|e| e.is_root()).count())
            .sum()
    }

    /// The live service `id`: a walk of every entry (an operator's lookup, not a hot path).
    pub(crate) fn find(&self, id: Uuid) -> Option<ServiceRef> {
        (0..SHARDS).find_map(|shard| {
            self.shard(shard)
                .entries()
                .find(|e| e.service.id() == id)
                .map(|e| e.service.clone())
        })
    }

    /// A consistent snapshot of the graph, with what each service shows now.
    pub(crate) fn snapshot(&self) -> Graph {
        let seen: Vec<(Uuid, Option<Uuid>, Entry)> =
            self.collect(|e| Some((e.service.id(), e.parent(), e.clone())));
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

    struct Idle;
    impl crate::Service for Idle {}

    /// A root forgotten at shutdown frees its slot while it lives on; the next spawn on this
    /// thread takes that slot. The forgotten root's own removal must leave the new entry be.
    #[tokio::test]
    async fn a_reused_slot_is_not_touched_by_its_old_owner() {
        let system = crate::System::new();
        let dir = system.directory();
        let old = system.spawn(Idle).await.expect("spawn").service_ref();
        dir.forget(&old);
        assert!(dir.find(old.id()).is_none());
        let new = system.spawn(Idle).await.expect("spawn").service_ref();
        assert_eq!(
            new.core().host_key(),
            old.core().host_key(),
            "the slot is reused"
        );
        old.stop().await.expect("stop");
        assert_eq!(dir.find(new.id()).map(|s| s.id()), Some(new.id()));
        assert_eq!(dir.roots(), std::slice::from_ref(&new));
        new.stop().await.expect("stop");
        assert_eq!(dir.root_count(), 0);
        system.shutdown().await.expect("shutdown");
    }

    /// A crowd of services comes and goes; the slab gives its memory back once empty.
    #[tokio::test]
    async fn an_emptied_slab_shrinks() {
        let system = crate::System::new();
        let mut all = Vec::new();
        for _ in 0..KEEP_SLOTS + 10 {
            all.push(system.spawn(Idle).await.expect("spawn"));
        }
        let dir = system.directory();
        let used = |dir: &Directory| (0..SHARDS).map(|s| dir.shard(s).slots.len()).sum::<usize>();
        assert!(used(dir) > KEEP_SLOTS);
        assert_eq!(dir.root_count(), KEEP_SLOTS + 10);
        for addr in all {
            addr.stop().await.expect("stop");
        }
        assert_eq!(used(dir), 0);
        system.shutdown().await.expect("shutdown");
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
