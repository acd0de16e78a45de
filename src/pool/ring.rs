//! A consistent-hash ring with virtual nodes (the "ketama" layout): every replica owns
//! `virtual_nodes` points on a `u64` circle, and a key belongs to the first point at or after
//! its own hash, going round. Why a ring and not jump consistent hash: a replica that has
//! stopped for good must be skippable without moving anyone else's keys. On a ring, skipping a
//! dead replica's points hands each of its keys to the next live point, and every other key
//! keeps its replica; jump hash can only remove the last bucket.
//!
//! Hashes are std's `DefaultHasher` with its fixed keys: the same in every process built by
//! the same Rust release, not promised across releases (the mapping only has to hold for the
//! life of one pool).

use std::hash::{DefaultHasher, Hash, Hasher};

/// The ring: points sorted by hash, each tagged with the replica that owns it.
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    points: Box<[(u64, u32)]>,
}

/// The hash of a key on the ring.
pub(crate) fn hash_key<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

impl Ring {
    /// A ring of `replicas` replicas with `virtual_nodes` points each (both at least 1, and
    /// `replicas` within `u32`; the builder checks).
    pub(crate) fn new(replicas: usize, virtual_nodes: usize) -> Ring {
        let mut points = Vec::with_capacity(replicas * virtual_nodes);
        for replica in 0..replicas {
            let owner = replica as u32;
            for vnode in 0..virtual_nodes {
                let mut h = DefaultHasher::new();
                // A tag keeps point hashes apart from key hashes of the same tuple.
                ("modo-pool-point", owner, vnode as u32).hash(&mut h);
                points.push((h.finish(), owner));
            }
        }
        // Ties (two equal hashes) are broken by owner, so the order never depends on luck.
        points.sort_unstable();
        Ring {
            points: points.into_boxed_slice(),
        }
    }

    /// The replicas in ring order from `hash` on, one per point, going round once: the first
    /// for which `usable` holds owns the key.
    pub(crate) fn owner(&self, hash: u64, mut usable: impl FnMut(usize) -> bool) -> Option<usize> {
        let start = self.points.partition_point(|&(p, _)| p < hash);
        let (after, before) = self.points.split_at(start);
        // A replica found unusable is skipped without asking again (a dead replica owns many
        // points); replica counts are small, so a short list beats a bitmap.
        let mut refused: Vec<u32> = Vec::new();
        for &(_, owner) in before.iter().chain(after) {
            if refused.contains(&owner) {
                continue;
            }
            if usable(owner as usize) {
                return Some(owner as usize);
            }
            refused.push(owner);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(ring: &Ring, keys: u32, dead: &[usize]) -> Vec<usize> {
        (0..keys)
            .map(|k| {
                ring.owner(hash_key(&k), |r| !dead.contains(&r))
                    .expect("a live replica")
            })
            .collect()
    }

    #[test]
    fn a_key_always_maps_to_the_same_replica() {
        let a = Ring::new(5, 160);
        let b = Ring::new(5, 160);
        assert_eq!(owners(&a, 1_000, &[]), owners(&b, 1_000, &[]));
        assert_eq!(
            a.owner(hash_key("user-42"), |_| true),
            a.owner(hash_key("user-42"), |_| true)
        );
    }

    #[test]
    fn keys_spread_evenly_over_replicas() {
        let ring = Ring::new(4, 160);
        let mut counts = [0u32; 4];
        for owner in owners(&ring, 40_000, &[]) {
            counts[owner] += 1;
        }
        // 10,000 each if perfectly even; 160 points per replica keep each within 15%.
        for c in counts {
            assert!((8_500..=11_500).contains(&c), "uneven spread: {counts:?}");
        }
    }

    #[test]
    fn a_dead_replica_moves_only_its_own_keys() {
        let ring = Ring::new(4, 160);
        let before = owners(&ring, 10_000, &[]);
        let after = owners(&ring, 10_000, &[2]);
        let mut moved_to = [0u32; 4];
        for (b, a) in before.iter().zip(&after) {
            if *b == 2 {
                assert_ne!(*a, 2);
                moved_to[*a] += 1;
            } else {
                assert_eq!(a, b, "a key of a live replica moved");
            }
        }
        // Its keys are shared among the others, not dumped on one.
        assert!(moved_to.iter().enumerate().all(|(r, &n)| r == 2 || n > 0));
    }

    #[test]
    fn no_usable_replica_gives_none() {
        let ring = Ring::new(3, 8);
        assert_eq!(ring.owner(hash_key(&1u8), |_| false), None);
        let one = Ring::new(1, 1);
        assert_eq!(one.owner(u64::MAX, |_| true), Some(0));
        assert_eq!(one.owner(0, |_| true), Some(0));
    }
}
