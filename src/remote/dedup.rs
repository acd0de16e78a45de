//! An export's dedup window: the message ids it saw lately, with the reply each got, so that a
//! request sent again (a sender's retry after a timeout, a copy through a NATS reconnect) is
//! answered with the first reply instead of being handled twice.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};

use async_nats::Subject;
use bytes::Bytes;

use super::wire::MessageId;

/// The most reply bytes the dedup window keeps; older entries are forgotten past it.
const MAX_KEPT_BYTES: usize = 16 << 20;

/// How long a finished id is kept at least, even past the window's count: a sender retries a
/// request only after its timeout, so under load a count alone could forget an id before its
/// copy arrives (and the copy would be handled again). Bounded by [`HARD_CAP_FACTOR`] and
/// [`MAX_KEPT_BYTES`].
pub(super) const MIN_KEEP: std::time::Duration = std::time::Duration::from_secs(30);

/// However young its ids, a window keeps at most this many times its count.
const HARD_CAP_FACTOR: usize = 16;

/// The recently seen message ids of one export, with the reply each got.
pub(super) struct Window {
    cap: usize,
    /// How long a finished id is kept at least (see [`MIN_KEEP`]).
    min_keep: std::time::Duration,
    slots: HashMap<MessageId, Slot>,
    /// Finished ids with when they finished, oldest first, for eviction.
    done: VecDeque<(MessageId, tokio::time::Instant)>,
    kept_bytes: usize,
}

enum Slot {
    /// Being served; the reply also goes to these subjects (the same request sent again).
    Pending(Vec<Subject>),
    /// Served; the reply it got (empty for fire-and-forget).
    Done(Bytes),
}

pub(super) enum Seen {
    New,
    /// A copy of a request being served: its reply will go to this one too.
    Pending,
    /// A copy of a served request: send it this reply.
    Done(Bytes),
}

impl Window {
    pub(super) fn new(cap: usize, min_keep: std::time::Duration) -> Self {
        Window {
            cap,
            min_keep,
            slots: HashMap::new(),
            done: VecDeque::new(),
            kept_bytes: 0,
        }
    }

    pub(super) fn begin(&mut self, id: MessageId, reply: Option<&Subject>) -> Seen {
        if self.cap == 0 {
            return Seen::New;
        }
        match self.slots.entry(id) {
            Entry::Vacant(v) => {
                v.insert(Slot::Pending(Vec::new()));
                Seen::New
            }
            Entry::Occupied(mut o) => match o.get_mut() {
                Slot::Pending(waiting) => {
                    waiting.extend(reply.cloned());
                    Seen::Pending
                }
                Slot::Done(frame) => Seen::Done(frame.clone()),
            },
        }
    }

    /// Drops a request that was refused before it reached the service.
    pub(super) fn forget(&mut self, id: MessageId) {
        if let Some(Slot::Pending(_)) = self.slots.get(&id) {
            self.slots.remove(&id);
        }
    }

    /// Records the reply; returns the subjects of copies that wait for it.
    pub(super) fn finish(&mut self, id: MessageId, frame: &Bytes) -> Vec<Subject> {
        if self.cap == 0 {
            return Vec::new();
        }
        let waiting = match self.slots.insert(id, Slot::Done(frame.clone())) {
            Some(Slot::Pending(waiting)) => waiting,
            _ => Vec::new(),
        };
        let now = tokio::time::Instant::now();
        self.done.push_back((id, now));
        self.kept_bytes += frame.len();
        let hard_cap = self.cap.saturating_mul(HARD_CAP_FACTOR);
        while let Some(&(old, at)) = self.done.front() {
            let over_count = self.done.len() > self.cap && now - at >= self.min_keep;
            if !(over_count || self.done.len() > hard_cap || self.kept_bytes > MAX_KEPT_BYTES) {
                break;
            }
            self.done.pop_front();
            if let Some(Slot::Done(f)) = self.slots.remove(&old) {
                self.kept_bytes -= f.len();
            }
        }
        waiting
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::wire::NodeId;

    fn id(seq: u64) -> MessageId {
        MessageId {
            node: NodeId([1; 16]),
            seq,
        }
    }

    #[test]
    fn the_window_answers_copies_and_forgets_the_oldest() {
        let mut w = Window::new(2, std::time::Duration::ZERO);
        let r = Subject::from("r");
        assert!(matches!(w.begin(id(1), Some(&r)), Seen::New));
        assert!(matches!(w.begin(id(1), Some(&r)), Seen::Pending));
        let waiting = w.finish(id(1), &Bytes::from_static(b"a"));
        assert_eq!(waiting.len(), 1);
        assert!(matches!(w.begin(id(1), None), Seen::Done(f) if f == "a"));
        for seq in 2..=3 {
            assert!(matches!(w.begin(id(seq), None), Seen::New));
            w.finish(id(seq), &Bytes::from_static(b"b"));
        }
        // Capacity 2: id 1 is forgotten, 2 and 3 are kept.
        assert!(matches!(w.begin(id(1), None), Seen::New));
        assert!(matches!(w.begin(id(3), None), Seen::Done(_)));
        assert_eq!(w.kept_bytes, 2);
    }

    /// Past its count, a window still keeps ids younger than its minimum age (a copy comes only
    /// after its sender's timeout), up to its hard cap.
    #[tokio::test(start_paused = true)]
    async fn young_ids_outlive_the_count_up_to_the_hard_cap() {
        let mut w = Window::new(2, std::time::Duration::from_secs(30));
        for seq in 1..=5 {
            assert!(matches!(w.begin(id(seq), None), Seen::New));
            w.finish(id(seq), &Bytes::from_static(b"a"));
        }
        assert!(
            matches!(w.begin(id(1), None), Seen::Done(_)),
            "5 ids, all young: kept"
        );
        tokio::time::advance(std::time::Duration::from_secs(30)).await;
        assert!(matches!(w.begin(id(6), None), Seen::New));
        w.finish(id(6), &Bytes::from_static(b"a"));
        assert!(
            matches!(w.begin(id(1), None), Seen::New),
            "old and over the count: forgotten"
        );
        assert!(matches!(w.begin(id(6), None), Seen::Done(_)));
        assert_eq!(w.done.len(), 2);
        // However young, never more than 16 times the count.
        for seq in 100..200 {
            w.begin(id(seq), None);
            w.finish(id(seq), &Bytes::from_static(b"a"));
        }
        assert_eq!(w.done.len(), 2 * HARD_CAP_FACTOR);
    }

    #[test]
    fn a_refused_request_is_forgotten_and_a_zero_window_keeps_nothing() {
        let mut w = Window::new(8, std::time::Duration::ZERO);
        assert!(matches!(w.begin(id(1), None), Seen::New));
        w.forget(id(1));
        assert!(matches!(w.begin(id(1), None), Seen::New));
        let mut off = Window::new(0, std::time::Duration::ZERO);
        assert!(matches!(off.begin(id(1), None), Seen::New));
        off.finish(id(1), &Bytes::from_static(b"x"));
        assert!(matches!(off.begin(id(1), None), Seen::New));
        assert!(off.slots.is_empty());
    }
}
