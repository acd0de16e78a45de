//! How a send without a key picks its replica: [`Routing`], and the two choices written over
//! a view of each replica ([`Slot`]) so they can be tested without actors.

use std::fmt;

use crate::{Addr, Service};

/// How a [`Pool`](super::Pool) routes a send that carries no key (`tell`, `try_tell`, `ask`,
/// `ask_timeout`). Sends with a key (`tell_keyed`, `ask_keyed`, ...) always go by the
/// consistent-hash ring, whatever the routing.
///
/// Both strategies prefer a replica that is running: a replica that crashed and waits for its
/// restart (or its backoff) gets no new unkeyed traffic while another is running; if none is,
/// the send is queued on the one chosen anyway, since a restart keeps the mailbox. A replica
/// stopped for good is never chosen.
///
/// ```
/// use modo::pool::{Pool, Routing};
/// use modo::Service;
///
/// struct Worker;
/// impl Service for Worker {}
///
/// let builder = Pool::builder(4, |_| Worker).routing(Routing::LeastLoaded);
/// # let _ = builder;
/// assert_eq!(Routing::default(), Routing::RoundRobin);
/// assert_eq!(Routing::LeastLoaded.to_string(), "least_loaded");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Routing {
    /// Each send to the next replica in index order, going round: with every replica running,
    /// replica `i` gets sends `i`, `i + n`, `i + 2n`, ... exactly. The turn of a replica that
    /// is down goes to the next turn, so its share is spread evenly over the others.
    #[default]
    RoundRobin,
    /// Each send to the replica with the fewest queued messages
    /// ([`ServiceRef::mailbox_len`](crate::ServiceRef::mailbox_len); the message in flight is
    /// not counted). Ties go round: the scan starts one replica further on at every send, so
    /// idle replicas share the work evenly. Costs one read per replica per send.
    LeastLoaded,
}

impl fmt::Display for Routing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Routing::RoundRobin => "round_robin",
            Routing::LeastLoaded => "least_loaded",
        })
    }
}

/// What routing reads of a replica.
pub(crate) trait Slot {
    /// Stopped for good: never chosen.
    fn terminated(&self) -> bool;
    /// Starting or running: preferred.
    fn started(&self) -> bool;
    /// Messages queued.
    fn queued(&self) -> usize;
}

impl<A: Service> Slot for Addr<A> {
    fn terminated(&self) -> bool {
        self.is_terminated()
    }
    fn started(&self) -> bool {
        self.is_started()
    }
    fn queued(&self) -> usize {
        self.mailbox_len()
    }
}

/// Round-robin: the replica whose turn `next_turn` gives, if it is started; otherwise the
/// replica of the next turn, so the share of a replica that is down is spread over all the
/// others instead of falling to its successor. After `n` turns without one (other senders may
/// have taken the turns in between), the first started replica from this send's first turn
/// on, else the first one not stopped for good. Never one in `skip`.
pub(crate) fn round_robin<S: Slot>(
    slots: &[S],
    mut next_turn: impl FnMut() -> usize,
    skip: &[usize],
) -> Option<usize> {
    let n = slots.len();
    let usable = |i: usize| !skip.contains(&i) && !slots[i].terminated();
    let mut from = None;
    for _ in 0..n {
        let i = next_turn() % n;
        if usable(i) && slots[i].started() {
            return Some(i);
        }
        from.get_or_insert(i);
    }
    let from = from.unwrap_or(0);
    let ring = || (0..n).map(move |k| (from + k) % n);
    ring()
        .find(|&i| usable(i) && slots[i].started())
        .or_else(|| ring().find(|&i| usable(i)))
}

/// Least-loaded from `turn`: started before not started, then the shortest mailbox; among
/// equals, the first at or after `turn % n`. Never one stopped for good or in `skip`.
pub(crate) fn least_loaded<S: Slot>(slots: &[S], turn: usize, skip: &[usize]) -> Option<usize> {
    let n = slots.len();
    let mut best: Option<(usize, (bool, usize))> = None;
    for k in 0..n {
        let i = (turn.wrapping_add(k)) % n;
        let slot = &slots[i];
        if skip.contains(&i) || slot.terminated() {
            continue;
        }
        let load = (!slot.started(), slot.queued());
        if best.is_none_or(|(_, b)| load < b) {
            best = Some((i, load));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy)]
    struct S {
        terminated: bool,
        started: bool,
        queued: usize,
    }

    const UP: S = S {
        terminated: false,
        started: true,
        queued: 0,
    };
    const DOWN: S = S {
        terminated: false,
        started: false,
        queued: 0,
    };
    const GONE: S = S {
        terminated: true,
        started: false,
        queued: 0,
    };

    fn q(queued: usize) -> S {
        S { queued, ..UP }
    }

    impl Slot for S {
        fn terminated(&self) -> bool {
            self.terminated
        }
        fn started(&self) -> bool {
            self.started
        }
        fn queued(&self) -> usize {
            self.queued
        }
    }

    /// Round-robin with a turn counter starting at `first`.
    fn rr(slots: &[S], first: usize, skip: &[usize]) -> Option<usize> {
        let mut turn = first;
        round_robin(
            slots,
            || {
                let t = turn;
                turn = turn.wrapping_add(1);
                t
            },
            skip,
        )
    }

    /// `sends` picks in a row from one counter.
    fn rr_run(slots: &[S], sends: usize) -> Vec<usize> {
        let mut turn = 0;
        let mut next = || {
            turn += 1;
            turn - 1
        };
        (0..sends)
            .map(|_| round_robin(slots, &mut next, &[]).unwrap())
            .collect()
    }

    #[test]
    fn round_robin_cycles_and_skips() {
        assert_eq!(rr_run(&[UP, UP, UP], 6), [0, 1, 2, 0, 1, 2]);
        // A replica that is down or gone gives its turns to the next turns: its share is
        // spread over the others.
        assert_eq!(rr_run(&[UP, UP, GONE, UP], 6), [0, 1, 3, 0, 1, 3]);
        assert_eq!(rr_run(&[UP, DOWN, UP], 4), [0, 2, 0, 2]);
        // None running: the next one not gone.
        assert_eq!(rr(&[GONE, DOWN, DOWN], 0, &[]), Some(1));
        assert_eq!(rr(&[GONE, GONE], 0, &[]), None);
        assert_eq!(rr(&[UP, UP], 0, &[0]), Some(1));
        assert_eq!(rr(&[UP, UP], usize::MAX, &[]), Some(1));
        // Other senders took every turn that was ours: still the started one.
        assert_eq!(round_robin(&[DOWN, UP, DOWN], || 0, &[]), Some(1));
    }

    #[test]
    fn least_loaded_prefers_short_running_mailboxes_and_rotates_ties() {
        assert_eq!(least_loaded(&[q(3), q(1), q(2)], 0, &[]), Some(1));
        // A shorter mailbox of a restarting replica loses to a running one.
        assert_eq!(least_loaded(&[q(5), DOWN], 0, &[]), Some(0));
        assert_eq!(least_loaded(&[GONE, q(9)], 0, &[]), Some(1));
        assert_eq!(least_loaded(&[GONE, GONE], 0, &[]), None);
        assert_eq!(least_loaded(&[q(0), q(0)], 0, &[0]), Some(1));
        // Ties go round with the turn.
        let idle = [UP, UP, UP, UP];
        let picks: Vec<_> = (0..4).map(|t| least_loaded(&idle, t, &[])).collect();
        assert_eq!(picks, [0, 1, 2, 3].map(Some));
        assert_eq!(least_loaded(&[q(1), q(2), q(1)], 1, &[]), Some(2));
    }
}
