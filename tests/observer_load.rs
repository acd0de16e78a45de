//! The observer under load, over real HTTP on loopback: what stays bounded and correct with a
//! big tree, many stream clients and one that stops reading; and that an observer nobody
//! watches costs the messages nothing.
//!
//! The first test runs a tree of 2,000 services through 600 restarts (paced at 200 a second,
//! each a state change and a restart-count change), watched by 50 stream clients while a 51st
//! client reads the graph and single services, and one more client stops reading. It checks
//! behaviour and bounds, not speed:
//! - every stream client gets every event, numbered without a gap, up to the last one (none of
//!   the 50 is dropped), and two of them, which keep a model of the tree from the stream, end
//!   with each service's restart count as the services have it;
//! - every API request is answered, with a document;
//! - the client that stopped reading is closed (a write timeout or the queue bound) and the
//!   others stay; what waits for the stream clients stays within its per-client bound; the
//!   process's memory does not grow without bound.
//!
//! The figures (API latencies, how late events arrive, how long a look over 2,000 services
//! takes) are printed, not asserted: a debug build on 2 shared cores says little about speed.
//! `cargo bench --bench observer --features observer` measures what the observer costs.
//! Run with `--nocapture` to see them.
#![cfg(feature = "observer")]

mod observer_support;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::StatusCode;
use modo::observe::{Observer, ObserverConfig};
use modo::prelude::*;
use observer_support::{Api, Stream, number_after};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

const GROUPS: usize = 20;
/// 20 groups of 99 leaves and the 20 group supervisors: 2,000 services.
const LEAVES_PER_GROUP: usize = 99;
/// Stream clients that check the numbering only (cheap), and those that also keep a model.
const RAW_CLIENTS: usize = 48;
const MODEL_CLIENTS: usize = 2;
const CLIENTS: usize = RAW_CLIENTS + MODEL_CLIENTS;
/// The restarts in all, and how many every 50 ms (200 a second).
const RESTARTS: usize = 600;
const RESTARTS_PER_TICK: usize = 10;
/// What may wait for one stream client.
const QUEUE_BYTES: usize = 256 * 1024;
/// The longest any one wait of these tests may take.
const WAIT: Duration = Duration::from_secs(60);

struct Leaf;
impl Service for Leaf {}

/// Counts what it is told.
#[derive(Default)]
struct Counter(u64);
impl Service for Counter {}
struct Tick;
impl Handler<Tick> for Counter {
    type Reply = ();
    async fn handle(&mut self, _: Tick, _ctx: &mut Context<Self>) {
        self.0 += 1;
    }
}
struct Count;
impl Handler<Count> for Counter {
    type Reply = u64;
    async fn handle(&mut self, _: Count, _ctx: &mut Context<Self>) -> u64 {
        self.0
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The resident set size of this process, in bytes (Linux), if it can be read.
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

/// 20 supervised groups of 99 leaves: 2,000 services. Returns the leaves.
async fn big_tree(system: &System) -> Vec<ServiceRef> {
    let mut leaves = Vec::with_capacity(GROUPS * LEAVES_PER_GROUP);
    for g in 0..GROUPS {
        let group = system
            .spawn(Supervisor::builder().label(format!("Group{g}")).build())
            .await
            .unwrap();
        for _ in 0..LEAVES_PER_GROUP {
            leaves.push(group.supervise(|| Leaf).await.unwrap().service_ref());
        }
    }
    leaves
}

/// What one stream client saw.
#[derive(Debug, Default)]
struct Seen {
    /// Events after the snapshot.
    events: u64,
    /// The `seq` of the snapshot, and of the last event.
    first_seq: u64,
    last_seq: u64,
    /// Events whose number was not the one expected.
    gaps: u64,
    /// How late the latest event came, at most (its `at_ms` to its arrival), in ms.
    max_lag_ms: u64,
    /// Each service's restart count, from the stream (model clients only).
    restarts: HashMap<String, u64>,
}

/// Reads the stream until it has seen an event numbered `until` (once that is known), checking
/// the numbering of every event; a model client also keeps each service's restart count.
async fn follow(mut stream: Stream, model: bool, mut until: watch::Receiver<Option<u64>>) -> Seen {
    let mut seen = Seen::default();
    let mut seq: Option<u64> = None;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let (Some(last), Some(target)) = (seq, *until.borrow_and_update())
            && last >= target
        {
            return seen;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream did not reach the last event within {WAIT:?}: {seen:?}"
        );
        let Some(event) = stream.next(Duration::from_millis(200)).await else {
            assert!(!stream.ended(), "the stream was closed: {seen:?}");
            continue;
        };
        let at = number_after(&event.data, "at_ms").expect("at_ms in every event");
        let n = number_after(&event.data, "seq").expect("seq in every event");
        match (event.kind.as_str(), seq) {
            ("snapshot", None) => seen.first_seq = n,
            ("changes", Some(last)) => {
                seen.gaps += u64::from(n != last + 1);
                seen.events += 1;
            }
            ("heartbeat", Some(last)) => {
                seen.gaps += u64::from(n != last);
                seen.events += 1;
            }
            (kind, _) => panic!("unexpected {kind} event after seq {seq:?}"),
        }
        seq = Some(n);
        seen.last_seq = n;
        seen.max_lag_ms = seen.max_lag_ms.max(now_ms().saturating_sub(at));
        if model {
            let doc: Value = serde_json::from_str(&event.data).expect("every event is JSON");
            let count = |v: &Value| v.as_u64().expect("a restart count");
            match event.kind.as_str() {
                "snapshot" => {
                    for s in doc["services"].as_array().unwrap() {
                        let id = s["id"].as_str().unwrap().to_owned();
                        seen.restarts.insert(id, count(&s["restart_count"]));
                    }
                }
                "changes" => {
                    for c in doc["changes"].as_array().unwrap() {
                        let id = || c["id"].as_str().unwrap().to_owned();
                        match c["kind"].as_str().unwrap() {
                            "restarted" => {
                                seen.restarts.insert(id(), count(&c["restart_count"]));
                            }
                            "added" => {
                                let s = &c["service"];
                                let id = s["id"].as_str().unwrap().to_owned();
                                seen.restarts.insert(id, count(&s["restart_count"]));
                            }
                            "removed" => {
                                seen.restarts.remove(&id());
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_services_fifty_streams_and_a_client_that_stops_reading() {
    let system = System::new();
    let leaves = big_tree(&system).await;
    let config = ObserverConfig::new()
        .bind("127.0.0.1:0".parse().unwrap())
        .max_streams(CLIENTS + 8)
        .stream_queue(256, QUEUE_BYTES)
        .write_timeout(Duration::from_secs(2));
    let listening = config.listening();
    system.spawn(Observer::new(config)).await.unwrap();
    let api = Api::new(listening.addr().unwrap());
    let status = api.get("/api/v1/status").await.json;
    assert_eq!(status["services"], 2001, "{status}");
    let (code, snapshot_bytes) = api.fetch("/api/v1/graph").await;
    assert_eq!(code, StatusCode::OK);
    // The first frame alone is more than the socket buffers of the client that stops reading
    // hold (the server's 256 KiB send buffer, doubled by Linux, and its 4 KiB receive
    // buffer): its connection must stall.
    assert!(
        snapshot_bytes > 2 * 256 * 1024 + 64 * 1024,
        "the snapshot is {snapshot_bytes} bytes"
    );

    // 50 stream clients, each checking the numbering of every event.
    let (until_tx, until_rx) = watch::channel(None);
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let stream = Stream::connect_raw(&api).await;
        let model = i < MODEL_CLIENTS;
        clients.push(tokio::spawn(follow(stream, model, until_rx.clone())));
    }

    // The client that stops reading: a small receive window, the request, the answer's head.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow = socket.connect(api.addr).await.unwrap();
    slow.write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 512];
    let n = tokio::time::timeout(WAIT, slow.read(&mut head))
        .await
        .expect("the slow client's answer begins")
        .unwrap();
    assert!(String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"));

    // The load: 600 restarts, 10 every 50 ms, each leaf at most once.
    let rss_before = rss().unwrap_or(0);
    let started = Instant::now();
    let restarter = tokio::spawn({
        let leaves = leaves.clone();
        async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(50));
            let mut next = 0usize;
            for _ in 0..RESTARTS / RESTARTS_PER_TICK {
                ticks.tick().await;
                for _ in 0..RESTARTS_PER_TICK {
                    // A step prime to the count visits the leaves in a scattered order.
                    next = (next + 7919) % leaves.len();
                    leaves[next]
                        .send_lifecycle(Lifecycle::Restart)
                        .expect("a leaf takes a restart");
                }
            }
        }
    });

    // The API client, meanwhile: the graph and one service, in turn, until the load is sent.
    let mut latencies = Vec::new();
    let mut max_queued = 0u64;
    let mut max_rss = rss_before;
    let mut i = 0usize;
    while !restarter.is_finished() {
        assert!(
            started.elapsed() < WAIT,
            "the load was not sent within {WAIT:?}"
        );
        let t = Instant::now();
        let (status, len) = if i.is_multiple_of(2) {
            api.fetch("/api/v1/graph").await
        } else {
            let leaf = &leaves[(i * 31) % leaves.len()];
            api.fetch(&format!("/api/v1/services/{}", leaf.id())).await
        };
        latencies.push(t.elapsed());
        assert_eq!(status, StatusCode::OK);
        assert!(len > 0);
        if i.is_multiple_of(10) {
            let status = api.get("/api/v1/status").await.json;
            max_queued = max_queued.max(status["stream_queued_bytes"].as_u64().unwrap());
            max_rss = max_rss.max(rss().unwrap_or(0));
        }
        i += 1;
    }
    restarter.await.unwrap();
    let sent = started.elapsed();

    // Every restart done, then seen by the stream: the model clients follow every event to the
    // last look that shows them all.
    let deadline = tokio::time::Instant::now() + WAIT;
    while leaves
        .iter()
        .map(|l| l.restart_count() as usize)
        .sum::<usize>()
        < RESTARTS
    {
        assert!(tokio::time::Instant::now() < deadline, "restarts not done");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done_ms = now_ms();
    let mut last = api.get("/api/v1/status").await.json;
    while last["snapshot_at_ms"].as_u64().unwrap() <= done_ms {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no look after the restarts"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        last = api.get("/api/v1/status").await.json;
    }
    let target = last["seq"].as_u64().unwrap();

    // The slow client was closed: its connection ends once it reads again; the server then
    // has the 50 others, and no more.
    let mut got = n as u64;
    let mut buf = vec![0u8; 64 * 1024];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(k) => got += k as u64,
            }
        }
    })
    .await
    .unwrap_or(false);
    let mut status = api.get("/api/v1/status").await.json;
    while closed && status["stream_clients"] != CLIENTS {
        assert!(tokio::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
        status = api.get("/api/v1/status").await.json;
    }

    until_tx.send_replace(Some(target));
    let mut seen = Vec::new();
    for client in clients {
        seen.push(client.await.unwrap());
    }

    latencies.sort();
    let p50 = percentile(&latencies, 0.50);
    let p99 = percentile(&latencies, 0.99);
    let max_lag = seen.iter().map(|s| s.max_lag_ms).max().unwrap();
    let events: Vec<u64> = seen.iter().map(|s| s.events).collect();
    let grown = max_rss.saturating_sub(rss_before);
    eprintln!(
        "observer load: {RESTARTS} restarts among 2,000 services sent in {sent:.1?}; snapshot \
         {snapshot_bytes} bytes; API: {} requests, p50 {p50:?}, p99 {p99:?}, max {:?}; \
         {CLIENTS} streams to seq {target}: events per client {}..{}, latest event {max_lag} ms \
         after its look; last look {} us; slow client: {got} bytes read, then closed: \
         {closed} (streams dropped {}, writes timed out {}); queued for clients at most \
         {max_queued} bytes; RSS grew {} MiB",
        latencies.len(),
        latencies.last().unwrap(),
        events.iter().min().unwrap(),
        events.iter().max().unwrap(),
        status["look_us"],
        status["streams_dropped"],
        status["writes_timed_out"],
        grown / (1024 * 1024),
    );

    for s in &seen {
        assert_eq!(s.gaps, 0, "a gap in the numbering: {s:?}");
        assert!(s.last_seq >= target && s.first_seq <= target, "{s:?}");
    }
    for model in seen.iter().filter(|s| !s.restarts.is_empty()) {
        for leaf in &leaves {
            assert_eq!(
                model.restarts.get(&leaf.id().to_string()).copied(),
                Some(u64::from(leaf.restart_count())),
                "the stream's restart count of {}",
                leaf.label()
            );
        }
        assert_eq!(model.restarts.values().sum::<u64>(), RESTARTS as u64);
    }
    assert_eq!(
        seen.iter().filter(|s| !s.restarts.is_empty()).count(),
        MODEL_CLIENTS
    );
    assert!(closed, "the server closed the client that stopped reading");
    assert!(
        status["streams_dropped"].as_u64().unwrap() + status["writes_timed_out"].as_u64().unwrap()
            >= 1,
        "{status}"
    );
    assert_eq!(
        status["stream_clients"], CLIENTS,
        "the slow client has gone, the others have not: {status}"
    );
    assert!(
        max_queued <= ((CLIENTS + 1) * QUEUE_BYTES) as u64,
        "queued {max_queued} bytes"
    );
    assert!(grown < 256 * 1024 * 1024, "RSS grew {grown} bytes");
    system.shutdown().await.unwrap();
}

/// With 2,000 services and the observer looking every 50 ms, nobody watching: messages take
/// the plain path (nothing recorded, so no clock read per message). Watched, every message is
/// recorded; unwatched again, nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_nobody_watches_costs_nothing_per_message() {
    const MESSAGES: u64 = 10_000;
    let system = System::new();
    big_tree(&system).await;
    let counter = system.spawn(Counter::default()).await.unwrap();
    let config = ObserverConfig::new()
        .bind("127.0.0.1:0".parse().unwrap())
        .interval(Duration::from_millis(50))
        .stop_observing_after(Some(Duration::from_millis(300)));
    let listening = config.listening();
    system.spawn(Observer::new(config)).await.unwrap();
    let api = Api::new(listening.addr().unwrap());
    let burst = |counter: Addr<Counter>| async move {
        for _ in 0..MESSAGES {
            counter.tell(Tick).await.unwrap();
        }
        counter.ask(Count).await.unwrap()
    };

    // Unwatched, while the observer goes on looking at the tree.
    assert_eq!(burst(counter.clone()).await, MESSAGES);
    let status = api.get("/api/v1/status").await.json;
    assert_eq!(status["observing"], false, "{status}");
    assert_eq!(status["services"], 2002, "{status}");
    assert_eq!(
        counter.service_ref().stats().handled,
        0,
        "no message was observed"
    );

    // Watched: every message is recorded.
    let mut stream = Stream::connect_raw(&api).await;
    let first = stream.next(WAIT).await.expect("the snapshot");
    assert_eq!(first.kind, "snapshot");
    assert!(system.is_observing());
    assert_eq!(burst(counter.clone()).await, 2 * MESSAGES);
    let stats = counter.service_ref().stats();
    assert_eq!(
        stats.handled,
        MESSAGES + 1,
        "the burst and the count, observed"
    );
    assert!(stats.handle_time.p50 > Duration::ZERO);

    // Nobody watches again: after the linger, nothing more is recorded.
    drop(stream);
    let dropped = Instant::now();
    let deadline = tokio::time::Instant::now() + WAIT;
    while system.is_observing() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "observation never went off"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "observation off {:?} after the stream closed",
        dropped.elapsed()
    );
    assert_eq!(burst(counter.clone()).await, 3 * MESSAGES);
    assert_eq!(counter.service_ref().stats().handled, MESSAGES + 1);
    system.shutdown().await.unwrap();
}
