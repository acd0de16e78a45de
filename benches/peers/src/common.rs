//! What the systems' modules share: the start/end tally of the tree and idle workloads, the
//! checks of the ring and fan-out counts, the resident set size.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

use crate::{FAN_K, FAN_N, RING_HOPS, RING_K};

/// Counts starts and ends of `target` actors; the start (end) that reaches `target` wakes the
/// waiter. A count that goes past `target` is a failed check (see [`Tally::check`]).
pub struct Tally {
    target: usize,
    started: AtomicUsize,
    ended: AtomicUsize,
    all_started: Notify,
    all_ended: Notify,
}

impl Tally {
    pub fn new(target: usize) -> Self {
        Tally {
            target,
            started: AtomicUsize::new(0),
            ended: AtomicUsize::new(0),
            all_started: Notify::new(),
            all_ended: Notify::new(),
        }
    }

    pub fn start(&self) {
        if self.started.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            // `notify_one` keeps a permit if nobody waits yet: no lost wake-up.
            self.all_started.notify_one();
        }
    }

    pub fn end(&self) {
        if self.ended.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            self.all_ended.notify_one();
        }
    }

    pub fn started(&self) -> usize {
        self.started.load(Ordering::Acquire)
    }

    pub fn ended(&self) -> usize {
        self.ended.load(Ordering::Acquire)
    }

    /// Returns once `target` starts were counted. Unbounded by itself: the harness bounds the
    /// whole run (`crate::LIMIT`).
    pub async fn wait_started(&self) {
        while self.started() < self.target {
            self.all_started.notified().await;
        }
    }

    /// Returns once `target` ends were counted (bounded by the harness as above).
    pub async fn wait_ended(&self) {
        while self.ended() < self.target {
            self.all_ended.notified().await;
        }
    }

    /// Panics unless exactly `target` starts and, if `ended`, exactly `target` ends were
    /// counted: a node started twice, or one that never ended, fails the run.
    pub fn check(&self, what: &str, ended: bool) {
        assert_eq!(self.started(), self.target, "{what}: starts counted");
        if ended {
            assert_eq!(self.ended(), self.target, "{what}: ends counted");
        }
    }
}

/// Panics unless every ring node saw the token `RING_HOPS / RING_K` times (`counts` in ring
/// order, one per node).
pub fn check_ring(what: &str, counts: &[u64]) {
    assert_eq!(counts.len(), RING_K, "{what}: ring size");
    let each = u64::from(RING_HOPS) / RING_K as u64;
    for (i, &c) in counts.iter().enumerate() {
        assert_eq!(c, each, "{what}: hops seen by ring node {i}");
    }
    assert_eq!(
        counts.iter().sum::<u64>(),
        u64::from(RING_HOPS),
        "{what}: hops"
    );
}

/// Panics unless every fan-out counter got `FAN_N / FAN_K` messages.
pub fn check_fanout(what: &str, counts: &[u64]) {
    assert_eq!(counts.len(), FAN_K, "{what}: mailboxes");
    let each = FAN_N / FAN_K as u64;
    for (i, &c) in counts.iter().enumerate() {
        assert_eq!(c, each, "{what}: messages counted by actor {i}");
    }
}

/// The process's resident set size in bytes (`VmRSS` of `/proc/self/status`, Linux).
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status: the idle workload measures on Linux only");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib * 1024
}

/// Bytes of RSS growth between two readings (the harness divides by the actor count).
pub fn growth(before: u64, after: u64) -> f64 {
    after.saturating_sub(before) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn panics(f: impl FnOnce() + std::panic::UnwindSafe) -> bool {
        std::panic::catch_unwind(f).is_err()
    }

    #[test]
    fn ring_check_wants_every_hop_at_every_node() {
        let each = u64::from(RING_HOPS) / RING_K as u64;
        let good = vec![each; RING_K];
        check_ring("good", &good);
        let mut lost = good.clone();
        lost[RING_K - 1] -= 1;
        assert!(panics(move || check_ring("one hop lost", &lost)));
        let mut moved = good.clone();
        moved[0] += 1;
        moved[1] -= 1;
        assert!(panics(move || check_ring("same sum, wrong node", &moved)));
        assert!(panics(move || check_ring("short ring", &good[1..])));
    }

    #[test]
    fn fanout_check_wants_every_message() {
        let each = FAN_N / FAN_K as u64;
        let good = vec![each; FAN_K];
        check_fanout("good", &good);
        let mut lost = good.clone();
        lost[17] = each - 1;
        assert!(panics(move || check_fanout("lost", &lost)));
    }

    #[test]
    fn tally_counts_and_checks() {
        let t = Tally::new(3);
        for _ in 0..3 {
            t.start();
        }
        t.check("started", false);
        assert!(panics(|| Tally::new(3).check("none ended", true)));
        t.start();
        assert!(panics(move || t.check("one start too many", false)));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn tally_wakes_a_waiter_that_came_late() {
        let t = Tally::new(2);
        t.end();
        t.end();
        // The wake-up came before the wait: the permit is kept.
        tokio::time::timeout(std::time::Duration::from_secs(1), t.wait_ended())
            .await
            .expect("no lost wake-up");
    }

    #[test]
    fn rss_is_read() {
        assert!(rss_bytes() > 0);
        assert_eq!(growth(10, 4), 0.0);
        assert_eq!(growth(4, 10), 6.0);
    }
}
