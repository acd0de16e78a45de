//! The hub: the latest snapshot, and the fan-out of each change event to the stream clients.
//!
//! # Invariants
//! - A client's first event is a snapshot at some sequence number `s`; it then gets every
//!   event numbered above `s`, in order, or is dropped: never a gap, never a reorder. The
//!   snapshot is taken and the client registered under one lock, the same lock a publish
//!   holds while it updates the latest snapshot and queues the event.
//! - What waits for one client is bounded: at most `queue_events` events and `queue_bytes`
//!   bytes (events are shared between clients, so the whole hub holds at most one copy of each
//!   queued event). A client that would go past either bound is dropped at once: its queue is
//!   closed, its stream ends with an error (which closes its connection), and
//!   `streams_dropped` counts it.
//! - The publisher never waits for a client.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use futures::Stream;
use serde::Serialize;
use tokio::sync::mpsc;

use super::sample::{Change, Snapshot, VERSION};

/// An SSE frame: `event: <kind>`, `id: <seq>`, `data: <json>`.
pub(crate) fn frame(kind: &str, seq: u64, json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + kind.len() + 40);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\nid: ");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(b"\ndata: ");
    // serde_json's compact output has no raw newline, so the document is one data line.
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

#[derive(Serialize)]
struct ChangesDoc<'a> {
    version: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    at_ms: u64,
    changes: &'a [Change],
}

#[derive(Serialize)]
struct HeartbeatDoc {
    version: u32,
    #[serde(rename = "type")]
    kind: &'static str,
    seq: u64,
    at_ms: u64,
}

/// The `changes` event for `changes` at `seq`.
pub(crate) fn changes_frame(seq: u64, at_ms: u64, changes: &[Change]) -> Bytes {
    let doc = ChangesDoc {
        version: VERSION,
        kind: "changes",
        seq,
        at_ms,
        changes,
    };
    frame(
        "changes",
        seq,
        &serde_json::to_vec(&doc).unwrap_or_default(),
    )
}

/// The `heartbeat` event at `seq`.
pub(crate) fn heartbeat_frame(seq: u64, at_ms: u64) -> Bytes {
    let doc = HeartbeatDoc {
        version: VERSION,
        kind: "heartbeat",
        seq,
        at_ms,
    };
    frame(
        "heartbeat",
        seq,
        &serde_json::to_vec(&doc).unwrap_or_default(),
    )
}

/// The bounds on stream clients.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_streams: usize,
    pub(crate) queue_events: usize,
    pub(crate) queue_bytes: usize,
}

/// The latest snapshot and the stream clients.
#[derive(Debug)]
pub(crate) struct Hub {
    state: Mutex<State>,
    limits: Limits,
    /// Clients dropped for being too slow.
    dropped: AtomicU64,
}

#[derive(Debug)]
struct State {
    latest: Arc<Snapshot>,
    clients: HashMap<u64, Slot>,
    next_client: u64,
}

/// The hub's side of one client.
#[derive(Debug)]
struct Slot {
    tx: mpsc::Sender<Bytes>,
    queued: Arc<Queued>,
}

/// What waits for one client, shared by the hub and the client's stream.
#[derive(Debug, Default)]
struct Queued {
    bytes: AtomicUsize,
    /// Set when the hub dropped the client for being too slow.
    lagged: AtomicBool,
}

/// No more stream clients are allowed.
#[derive(Debug)]
pub(crate) struct TooManyStreams(pub(crate) usize);

impl Hub {
    pub(crate) fn new(limits: Limits) -> Hub {
        Hub {
            state: Mutex::new(State {
                latest: Arc::new(Snapshot::empty()),
                clients: HashMap::new(),
                next_client: 0,
            }),
            limits,
            dropped: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing under this lock can panic half-way through a change; a poisoned lock still
        // holds consistent data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest snapshot.
    pub(crate) fn latest(&self) -> Arc<Snapshot> {
        self.lock().latest.clone()
    }

    /// How many stream clients are connected.
    pub(crate) fn clients(&self) -> usize {
        self.lock().clients.len()
    }

    /// How many stream clients were dropped for being too slow.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Makes `snapshot` the latest and, if given, queues `event` (numbered `snapshot.seq`) for
    /// every client, dropping those that would queue too much.
    pub(crate) fn publish(&self, snapshot: Snapshot, event: Option<Bytes>) {
        let mut state = self.lock();
        state.latest = Arc::new(snapshot);
        if let Some(event) = event {
            self.send_locked(&mut state, &event);
        }
    }

    /// Queues `event` for every client (a heartbeat: the latest snapshot stays).
    pub(crate) fn send(&self, event: &Bytes) {
        let mut state = self.lock();
        self.send_locked(&mut state, event);
    }

    fn send_locked(&self, state: &mut State, event: &Bytes) {
        let size = event.len();
        let limit = self.limits.queue_bytes;
        state.clients.retain(|_, slot| {
            let before = slot.queued.bytes.fetch_add(size, Ordering::AcqRel);
            let fits = before + size <= limit || before == 0;
            match fits.then(|| slot.tx.try_send(event.clone())) {
                Some(Ok(())) => true,
                // The stream is gone: its guard removes it too, whichever comes first.
                Some(Err(mpsc::error::TrySendError::Closed(_))) => false,
                Some(Err(mpsc::error::TrySendError::Full(_))) | None => {
                    slot.queued.lagged.store(true, Ordering::Release);
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    false
                }
            }
        });
    }

    /// A new stream client: the latest snapshot, then every later event.
    ///
    /// # Errors
    /// [`TooManyStreams`] when `max_streams` clients are connected.
    pub(crate) fn subscribe(self: &Arc<Self>) -> Result<Subscription, TooManyStreams> {
        let mut state = self.lock();
        if state.clients.len() >= self.limits.max_streams {
            return Err(TooManyStreams(self.limits.max_streams));
        }
        let (tx, rx) = mpsc::channel(self.limits.queue_events);
        let queued = Arc::new(Queued::default());
        let id = state.next_client;
        state.next_client += 1;
        state.clients.insert(
            id,
            Slot {
                tx,
                queued: queued.clone(),
            },
        );
        Ok(Subscription {
            hub: self.clone(),
            id,
            snapshot: Some(state.latest.clone()),
            rx,
            queued,
        })
    }

    fn remove(&self, id: u64) {
        self.lock().clients.remove(&id);
    }
}

/// One stream client's side: the snapshot, then the queued events.
#[derive(Debug)]
pub(crate) struct Subscription {
    hub: Arc<Hub>,
    id: u64,
    snapshot: Option<Arc<Snapshot>>,
    rx: mpsc::Receiver<Bytes>,
    queued: Arc<Queued>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.remove(self.id);
    }
}

impl Subscription {
    /// The sequence number of the snapshot this client starts from.
    #[cfg(test)]
    fn start_seq(&self) -> Option<u64> {
        self.snapshot.as_ref().map(|s| s.seq)
    }

    /// The client's events as SSE frames. Ends with an error if the client was dropped for
    /// being too slow (the server then closes the connection instead of ending the response
    /// cleanly: the client sees it was cut off, and an `EventSource` reconnects).
    pub(crate) fn into_stream(self) -> impl Stream<Item = Result<Bytes, io::Error>> + Send {
        futures::stream::unfold(self, |mut sub| async move {
            if let Some(snapshot) = sub.snapshot.take() {
                // Serialized outside the hub's lock (once per snapshot, shared).
                let event = frame("snapshot", snapshot.seq, &snapshot.json());
                return Some((Ok(event), sub));
            }
            match sub.rx.recv().await {
                Some(event) => {
                    sub.queued.bytes.fetch_sub(event.len(), Ordering::AcqRel);
                    Some((Ok(event), sub))
                }
                None if sub.queued.lagged.swap(false, Ordering::AcqRel) => Some((
                    Err(io::Error::other("stream client dropped: too slow")),
                    sub,
                )),
                None => None,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn hub(queue_events: usize, queue_bytes: usize) -> Arc<Hub> {
        Arc::new(Hub::new(Limits {
            max_streams: 2,
            queue_events,
            queue_bytes,
        }))
    }

    fn snapshot(seq: u64) -> Snapshot {
        let mut s = Snapshot::empty();
        s.seq = seq;
        s
    }

    #[tokio::test]
    async fn a_client_gets_the_snapshot_then_every_later_event_in_order() {
        let hub = hub(16, 1 << 20);
        hub.publish(snapshot(1), Some(frame("changes", 1, b"{}")));
        let sub = hub.subscribe().unwrap();
        assert_eq!(sub.start_seq(), Some(1));
        hub.publish(snapshot(2), Some(frame("changes", 2, b"{}")));
        hub.publish(snapshot(3), Some(frame("changes", 3, b"{}")));
        let got: Vec<String> = sub
            .into_stream()
            .take(3)
            .map(|f| String::from_utf8(f.unwrap().to_vec()).unwrap())
            .collect()
            .await;
        assert!(got[0].starts_with("event: snapshot\nid: 1\n"), "{got:?}");
        assert!(got[1].starts_with("event: changes\nid: 2\n"));
        assert!(got[2].starts_with("event: changes\nid: 3\n"));
    }

    #[tokio::test]
    async fn a_client_past_its_event_bound_is_dropped_and_its_stream_ends_in_error() {
        let hub = hub(2, 1 << 20);
        let sub = hub.subscribe().unwrap();
        for seq in 1..=3 {
            hub.publish(snapshot(seq), Some(frame("changes", seq, b"{}")));
        }
        assert_eq!(hub.clients(), 0);
        assert_eq!(hub.dropped(), 1);
        let got: Vec<_> = sub.into_stream().collect().await;
        assert_eq!(got.len(), 4, "snapshot, two events, then the error");
        assert!(got[..3].iter().all(Result::is_ok));
        assert!(got[3].is_err());
    }

    #[tokio::test]
    async fn a_client_past_its_byte_bound_is_dropped() {
        let big = Bytes::from(vec![b'x'; 600]);
        let hub = hub(100, 1000);
        let _sub = hub.subscribe().unwrap();
        hub.send(&big);
        assert_eq!(hub.clients(), 1);
        hub.send(&big);
        assert_eq!(hub.clients(), 0, "1,200 bytes would wait: dropped");
        assert_eq!(hub.dropped(), 1);
    }

    #[tokio::test]
    async fn an_event_larger_than_the_byte_bound_still_reaches_an_idle_client() {
        let hub = hub(100, 10);
        let sub = hub.subscribe().unwrap();
        hub.send(&Bytes::from(vec![b'x'; 100]));
        assert_eq!(hub.clients(), 1);
        let got: Vec<_> = sub.into_stream().take(2).collect().await;
        assert_eq!(got[1].as_ref().unwrap().len(), 100);
    }

    #[tokio::test]
    async fn streams_are_limited_and_a_dropped_stream_frees_its_place() {
        let hub = hub(4, 1 << 20);
        let a = hub.subscribe().unwrap();
        let _b = hub.subscribe().unwrap();
        assert!(hub.subscribe().is_err());
        drop(a);
        assert_eq!(hub.clients(), 1);
        assert!(hub.subscribe().is_ok());
    }
}
