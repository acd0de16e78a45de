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
use std::time::Duration;

use axum::body::Bytes;
use futures::Stream;
use serde::Serialize;
use tokio::sync::mpsc;

use super::sample::{Change, Snapshot, VERSION};

/// An SSE frame: `event: <kind>`, `id: <seq>`, `data: <json>`.
pub(crate) fn frame(kind: &str, seq: u64, json: &[u8]) -> Bytes {
    let head = frame_head(kind, seq);
    let mut out = Vec::with_capacity(head.len() + json.len() + FRAME_END.len());
    out.extend_from_slice(&head);
    // serde_json's compact output has no raw newline, so the document is one data line.
    out.extend_from_slice(json);
    out.extend_from_slice(FRAME_END);
    Bytes::from(out)
}

/// What an SSE frame has before its JSON document.
fn frame_head(kind: &str, seq: u64) -> Bytes {
    Bytes::from(format!("event: {kind}\nid: {seq}\ndata: "))
}

/// What ends an SSE frame.
const FRAME_END: &[u8] = b"\n\n";

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
    /// How long the last look took, in microseconds.
    look_us: AtomicU64,
    /// When the hub was made: the origin of `wanted_at`.
    origin: tokio::time::Instant,
    /// When the snapshot document was last asked for: milliseconds after `origin`, plus one
    /// (zero: never).
    wanted_at: AtomicU64,
    /// Looks taken so far (the status document's `looks`).
    looks: AtomicU64,
    /// When the latest snapshot was published: milliseconds after `origin`.
    published_at: AtomicU64,
    /// Counts publications, for a reader waiting for a fresh snapshot.
    published: tokio::sync::watch::Sender<u64>,
    /// A reader wants a look now (the sampler skips looks while nobody watches).
    look_wanted: tokio::sync::Notify,
}

/// How long after the last request for the snapshot document the sampler keeps making it.
const WANTED_FOR: Duration = Duration::from_secs(10);

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
            look_us: AtomicU64::new(0),
            origin: tokio::time::Instant::now(),
            wanted_at: AtomicU64::new(0),
            looks: AtomicU64::new(0),
            published_at: AtomicU64::new(0),
            published: tokio::sync::watch::Sender::new(0),
            look_wanted: tokio::sync::Notify::new(),
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

    /// The latest snapshot, for a reader of its document (the graph endpoint): notes that
    /// the document is wanted.
    pub(crate) fn latest_for_reading(&self) -> Arc<Snapshot> {
        self.note_wanted();
        self.latest()
    }

    fn note_wanted(&self) {
        let since = self.origin.elapsed().as_millis();
        self.wanted_at.store(
            u64::try_from(since).unwrap_or(u64::MAX - 1) + 1,
            Ordering::Relaxed,
        );
    }

    /// Whether the snapshot document was asked for recently (a graph request or a new stream
    /// client in the last 10 s): the sampler then makes it as it takes the snapshot.
    pub(crate) fn snapshot_wanted(&self) -> bool {
        match self.wanted_at.load(Ordering::Relaxed) {
            0 => false,
            at => {
                let at = self.origin + Duration::from_millis(at - 1);
                at.elapsed() < WANTED_FOR
            }
        }
    }

    /// How many stream clients are connected.
    pub(crate) fn clients(&self) -> usize {
        self.lock().clients.len()
    }

    /// The bytes waiting for stream clients, all clients together (each event counted once
    /// per client it waits for, though clients share one copy).
    pub(crate) fn queued_bytes(&self) -> usize {
        self.lock()
            .clients
            .values()
            .map(|c| c.queued.bytes.load(Ordering::Relaxed))
            .sum()
    }

    /// Notes how long a look took.
    pub(crate) fn set_look_time(&self, took: Duration) {
        self.look_us.store(
            u64::try_from(took.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// How long the last look took.
    pub(crate) fn look_time(&self) -> Duration {
        Duration::from_micros(self.look_us.load(Ordering::Relaxed))
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
        drop(state);
        self.looks.fetch_add(1, Ordering::Relaxed);
        self.published_at
            .store(self.millis_since_origin(), Ordering::Relaxed);
        self.published.send_modify(|n| *n += 1);
    }

    fn millis_since_origin(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// How many looks were published.
    pub(crate) fn looks(&self) -> u64 {
        self.looks.load(Ordering::Relaxed)
    }

    /// The latest snapshot if it is at most `max_age` old; else asks the sampler for a look
    /// (it skips them while nobody watches) and waits for it, at most `wait`, then returns
    /// the latest.
    pub(crate) async fn fresh(&self, max_age: Duration, wait: Duration) -> Arc<Snapshot> {
        let age = self
            .millis_since_origin()
            .saturating_sub(self.published_at.load(Ordering::Relaxed));
        if Duration::from_millis(age) <= max_age {
            return self.latest();
        }
        let mut published = self.published.subscribe();
        self.look_wanted.notify_one();
        let _ = tokio::time::timeout(wait, published.changed()).await;
        self.latest()
    }

    /// Resolves when a reader wants a look (see [`fresh`](Self::fresh)).
    pub(crate) async fn look_wanted(&self) {
        self.look_wanted.notified().await;
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
        self.note_wanted();
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
            pieces: Vec::new(),
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
    /// What is left of the snapshot frame to send, last piece first.
    pieces: Vec<Bytes>,
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
                // The snapshot frame goes out in three pieces: its head, the snapshot's
                // document (made once per snapshot, outside the hub's lock, and shared by every
                // client that starts from it, not copied per client), its end.
                sub.pieces = vec![Bytes::from_static(FRAME_END), snapshot.json()];
                return Some((Ok(frame_head("snapshot", snapshot.seq)), sub));
            }
            if let Some(piece) = sub.pieces.pop() {
                return Some((Ok(piece), sub));
            }
            let item = match sub.rx.recv().await {
                Some(event) => {
                    sub.queued.bytes.fetch_sub(event.len(), Ordering::AcqRel);
                    Ok(event)
                }
                None if sub.queued.lagged.swap(false, Ordering::AcqRel) => {
                    Err(io::Error::other("stream client dropped: too slow"))
                }
                None => return None,
            };
            Some((item, sub))
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

    /// The frames in `pieces` (a frame may come in several pieces), and whether they end in
    /// an error.
    fn frames(pieces: &[Result<Bytes, io::Error>]) -> (Vec<String>, bool) {
        let mut text = String::new();
        for piece in pieces.iter().flatten() {
            text.push_str(std::str::from_utf8(piece).unwrap());
        }
        assert!(
            text.is_empty() || text.ends_with("\n\n"),
            "whole frames: {text:?}"
        );
        let frames = text
            .split_terminator("\n\n")
            .map(|f| format!("{f}\n\n"))
            .collect();
        (frames, pieces.last().is_some_and(Result::is_err))
    }

    #[tokio::test]
    async fn a_client_gets_the_snapshot_then_every_later_event_in_order() {
        let hub = hub(16, 1 << 20);
        hub.publish(snapshot(1), Some(frame("changes", 1, b"{}")));
        let sub = hub.subscribe().unwrap();
        assert_eq!(sub.start_seq(), Some(1));
        hub.publish(snapshot(2), Some(frame("changes", 2, b"{}")));
        hub.publish(snapshot(3), Some(frame("changes", 3, b"{}")));
        // The snapshot in three pieces, then the two events.
        let got: Vec<_> = sub.into_stream().take(5).collect().await;
        let (got, failed) = frames(&got);
        assert!(!failed);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got[0].starts_with("event: snapshot\nid: 1\ndata: {"),
            "{got:?}"
        );
        let doc: serde_json::Value =
            serde_json::from_str(got[0].trim_end().split_once("data: ").unwrap().1).unwrap();
        assert_eq!(doc["type"], "snapshot");
        assert_eq!(doc["seq"], 1);
        assert!(got[1].starts_with("event: changes\nid: 2\n"));
        assert!(got[2].starts_with("event: changes\nid: 3\n"));
    }

    #[tokio::test]
    async fn clients_that_start_from_one_snapshot_share_its_document() {
        let hub = hub(16, 1 << 20);
        hub.publish(snapshot(1), None);
        let first = |sub: Subscription| async move {
            let pieces: Vec<_> = sub.into_stream().take(2).collect().await;
            pieces.into_iter().nth(1).unwrap().unwrap()
        };
        let a = first(hub.subscribe().unwrap()).await;
        let b = first(hub.subscribe().unwrap()).await;
        assert!(a.starts_with(b"{\"version\""));
        assert_eq!(a.as_ptr(), b.as_ptr(), "one copy, not one per client");
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
        let (frames, failed) = frames(&got);
        assert_eq!(frames.len(), 3, "snapshot, two events: {frames:?}");
        assert!(failed, "then the error");
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
        // The snapshot's three pieces, then the event.
        let got: Vec<_> = sub.into_stream().take(4).collect().await;
        assert_eq!(got[3].as_ref().unwrap().len(), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn the_snapshot_document_is_wanted_for_10_s_after_a_reader() {
        let hub = hub(4, 1 << 20);
        assert!(!hub.snapshot_wanted(), "nobody asked yet");
        hub.latest_for_reading();
        assert!(hub.snapshot_wanted());
        tokio::time::advance(WANTED_FOR - Duration::from_millis(1)).await;
        assert!(hub.snapshot_wanted());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!hub.snapshot_wanted());
        let _sub = hub.subscribe().unwrap();
        assert!(hub.snapshot_wanted(), "a new stream client wants it too");
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
