//! Remote calls over NATS beside raw async-nats, in the same run, on a nats-server this
//! bench starts on loopback (not run by CI; `cargo bench --features nats --bench remote`).
//!
//! - `ask`: one remote ask round trip (`RemoteAddr::ask`) vs one raw request-reply
//!   (`Client::request` to a raw responder that echoes the payload).
//! - `tell_pipelined`: acknowledged tells, 64 in flight, vs the same raw requests, 64 in
//!   flight.
//! - `tell_unacked`: fire-and-forget tells until the service counted them all vs raw
//!   publishes until a raw subscriber counted them all.
//! - `codec`: postcard's share: encoding a request frame, and decoding its head and body.
//!
//! Both sides use two connections (caller and server) of one nats-server, on a 2-worker
//! runtime. After the criterion groups, a table alternates raw and modo repetitions (one
//! discarded pair, then 5) and prints the medians and the modo / raw ratio: time for `ask`,
//! throughput for the tells. Without nats-server, it prints how to install it and exits.

#[path = "../tests/remote_support/mod.rs"]
mod remote_support;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use futures::StreamExt;
use modo::prelude::*;
use modo::remote::wire::{self, Kind, MessageId, NodeId, RequestHead};
use modo::remote::{Node, NodeOptions, RemoteAddr, RemoteMessage};
use serde::{Deserialize, Serialize};
use tokio::runtime::Runtime;

use remote_support::NatsServer;

/// A count that wakes its waiter when it reaches the target, so the bench waits without
/// spinning (a spinning waiter takes a core from the tasks it waits for).
#[derive(Default)]
struct Tally {
    count: AtomicU64,
    target: AtomicU64,
    reached: tokio::sync::Notify,
}

impl Tally {
    fn hit(&self) {
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if n == self.target.load(Ordering::Relaxed) {
            self.reached.notify_one();
        }
    }

    fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Waits (bounded) until the count reaches `target`; a lost message would stall it.
    async fn wait_for(&self, target: u64) {
        self.target.store(target, Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.count() < target {
            let woken = tokio::time::timeout_at(deadline, self.reached.notified()).await;
            assert!(
                woken.is_ok() || self.count() >= target,
                "only {} of {target} arrived",
                self.count()
            );
        }
    }
}

/// The service: answers pings, counts hits.
struct Sink {
    hits: Arc<Tally>,
}

impl Service for Sink {
    fn mailbox_capacity(&self) -> usize {
        1024
    }
}

#[derive(Serialize, Deserialize)]
struct Ping(u64);
impl RemoteMessage for Ping {
    const NAME: &'static str = "bench.Ping";
}

#[derive(Serialize, Deserialize)]
struct Hit(u64);
impl RemoteMessage for Hit {
    const NAME: &'static str = "bench.Hit";
}

impl Handler<Ping> for Sink {
    type Reply = u64;
    async fn handle(&mut self, Ping(n): Ping, _ctx: &mut Context<Self>) -> u64 {
        n
    }
}

impl Handler<Hit> for Sink {
    type Reply = ();
    async fn handle(&mut self, _: Hit, _ctx: &mut Context<Self>) {
        self.hits.hit();
    }
}

const ECHO: &str = "bench.raw.echo";
/// A raw responder that asks the local service before it replies: raw NATS plus one local
/// actor hop, the floor under a remote ask.
const VIA_ACTOR: &str = "bench.raw.actor";
const COUNT: &str = "bench.raw.count";
/// A raw subscriber that tells each message to a local service: raw NATS plus one local
/// actor hop, the floor under a fire-and-forget tell.
const COUNT_VIA_ACTOR: &str = "bench.raw.count_actor";
const IN_FLIGHT: usize = 64;
/// Fire-and-forget messages sent before waiting for them all to arrive.
const BATCH: u64 = 10_000;

#[derive(Clone)]
struct Fixture {
    raw: async_nats::Client,
    raw_count: Arc<Tally>,
    local_hits: Arc<Tally>,
    remote: RemoteAddr<Sink>,
    caller: Node,
    hits: Arc<Tally>,
}

struct Setup {
    fixture: Fixture,
    _system: System,
    _server: NatsServer,
}

async fn setup(server: NatsServer) -> Setup {
    let url = server.url();
    // Raw: a responder that echoes, and a subscriber that counts, on their own connection.
    let responder = async_nats::connect(&url).await.expect("connect");
    let mut echo = responder.subscribe(ECHO).await.unwrap();
    let echo_client = responder.clone();
    tokio::spawn(async move {
        while let Some(msg) = echo.next().await {
            if let Some(reply) = msg.reply {
                let _ = echo_client.publish(reply, msg.payload).await;
            }
        }
    });
    let raw_count = Arc::new(Tally::default());
    let mut counted = responder.subscribe(COUNT).await.unwrap();
    let count = raw_count.clone();
    tokio::spawn(async move {
        while counted.next().await.is_some() {
            count.hit();
        }
    });
    responder.flush().await.unwrap();
    let raw = async_nats::connect(&url).await.expect("connect");

    // modo: an exporting node with the service, and a calling node.
    let system = System::new();
    let local = system
        .spawn(Sink {
            hits: Arc::default(),
        })
        .await
        .unwrap();
    let local_hits = Arc::new(Tally::default());
    let local_sink = system
        .spawn(Sink {
            hits: local_hits.clone(),
        })
        .await
        .unwrap();
    let mut counted_via_actor = responder.subscribe(COUNT_VIA_ACTOR).await.unwrap();
    tokio::spawn(async move {
        while counted_via_actor.next().await.is_some() {
            let _ = local_sink.tell(Hit(0)).await;
        }
    });
    let mut via_actor = responder.subscribe(VIA_ACTOR).await.unwrap();
    let actor_client = responder.clone();
    tokio::spawn(async move {
        while let Some(msg) = via_actor.next().await {
            let n = local.ask(Ping(msg.payload.len() as u64)).await.unwrap();
            if let Some(reply) = msg.reply {
                let _ = actor_client
                    .publish(reply, Bytes::copy_from_slice(&n.to_le_bytes()))
                    .await;
            }
        }
    });
    responder.flush().await.unwrap();
    let exporter = Node::connect(&url, NodeOptions::new("bench"))
        .await
        .unwrap();
    system.spawn(exporter.clone()).await.unwrap();
    let hits = Arc::new(Tally::default());
    let sink = system.spawn(Sink { hits: hits.clone() }).await.unwrap();
    exporter
        .export("sink", sink)
        .message::<Ping>()
        .message::<Hit>()
        .start()
        .await
        .unwrap();
    let caller = Node::connect(&url, NodeOptions::new("bench"))
        .await
        .unwrap();
    let remote = caller.lookup::<Sink>("sink").unwrap();
    Setup {
        fixture: Fixture {
            raw,
            raw_count,
            local_hits,
            remote,
            caller,
            hits,
        },
        _system: system,
        _server: server,
    }
}

impl Fixture {
    async fn raw_ask(&self, iters: u64) -> Duration {
        let payload = Bytes::from_static(b"12345678");
        let start = Instant::now();
        for _ in 0..iters {
            black_box(self.raw.request(ECHO, payload.clone()).await.unwrap());
        }
        start.elapsed()
    }

    async fn raw_actor_ask(&self, iters: u64) -> Duration {
        let payload = Bytes::from_static(b"12345678");
        let start = Instant::now();
        for _ in 0..iters {
            black_box(self.raw.request(VIA_ACTOR, payload.clone()).await.unwrap());
        }
        start.elapsed()
    }

    async fn modo_ask(&self, iters: u64) -> Duration {
        let start = Instant::now();
        for i in 0..iters {
            black_box(self.remote.ask(Ping(i)).await.unwrap());
        }
        start.elapsed()
    }

    async fn raw_pipelined(&self, iters: u64) -> Duration {
        let payload = Bytes::from_static(b"12345678");
        let start = Instant::now();
        futures::stream::iter(0..iters)
            .map(|_| {
                let payload = payload.clone();
                async move { self.raw.request(ECHO, payload).await.unwrap() }
            })
            .buffer_unordered(IN_FLIGHT)
            .for_each(|m| {
                black_box(m);
                async {}
            })
            .await;
        start.elapsed()
    }

    async fn modo_pipelined(&self, iters: u64) -> Duration {
        let start = Instant::now();
        futures::stream::iter(0..iters)
            .map(|i| async move { self.remote.tell(Hit(i)).await.unwrap() })
            .buffer_unordered(IN_FLIGHT)
            .for_each(|()| async {})
            .await;
        start.elapsed()
    }

    /// Publishes in batches of at most `BATCH`, each counted in full before the next: core
    /// NATS drops messages for a subscriber that falls too far behind (a slow consumer), on
    /// both sides alike.
    async fn raw_publish(&self, iters: u64) -> Duration {
        let payload = Bytes::from_static(b"12345678");
        let start = Instant::now();
        let mut left = iters;
        while left > 0 {
            let n = left.min(BATCH);
            left -= n;
            let target = self.raw_count.count() + n;
            for _ in 0..n {
                self.raw.publish(COUNT, payload.clone()).await.unwrap();
            }
            self.raw.flush().await.unwrap();
            self.raw_count.wait_for(target).await;
        }
        start.elapsed()
    }

    async fn raw_actor_publish(&self, iters: u64) -> Duration {
        let payload = Bytes::from_static(b"12345678");
        let start = Instant::now();
        let mut left = iters;
        while left > 0 {
            let n = left.min(BATCH);
            left -= n;
            let target = self.local_hits.count() + n;
            for _ in 0..n {
                self.raw
                    .publish(COUNT_VIA_ACTOR, payload.clone())
                    .await
                    .unwrap();
            }
            self.raw.flush().await.unwrap();
            self.local_hits.wait_for(target).await;
        }
        start.elapsed()
    }

    async fn modo_publish(&self, iters: u64) -> Duration {
        let start = Instant::now();
        let mut left = iters;
        while left > 0 {
            let n = left.min(BATCH);
            left -= n;
            let target = self.hits.count() + n;
            for i in 0..n {
                self.remote.tell_unacked(Hit(i)).await.unwrap();
            }
            self.remote_flush().await;
            self.hits.wait_for(target).await;
        }
        start.elapsed()
    }

    async fn remote_flush(&self) {
        // The caller node's connection: what `tell_unacked` buffered goes out now.
        let _ = self.caller.client().flush().await;
    }
}

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

fn main() {
    let Some(server) = NatsServer::start() else {
        remote_support::print_skip();
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let setup = rt.block_on(setup(server));
    let fx = setup.fixture.clone();
    // `cargo test --benches` runs each benchmark once: keep the table small then.
    let measuring = std::env::args().any(|a| a == "--bench");

    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    criterion_groups(&mut c, &rt, &fx);
    codec(&mut c);
    c.final_summary();

    let (ask_n, pipe_n, pub_n, reps) = if measuring {
        (2_000, 5_000, 20_000, 5)
    } else {
        (20, 50, 200, 1)
    };
    if !measuring {
        println!("\n(test mode: tiny sizes, one repetition; not a measurement)");
    }
    println!(
        "\nremote vs raw async-nats, same run (nproc {}), 2-worker runtime, median of {reps} after one discarded pair:",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| workload | raw async-nats | modo remote | ratio |");
    println!("|---|---|---|---|");
    let row = |name: &str,
               n: u64,
               throughput: bool,
               raw: &dyn Fn(u64) -> Duration,
               modo: &dyn Fn(u64) -> Duration| {
        let (mut r, mut m) = (Vec::new(), Vec::new());
        for rep in 0..=reps {
            let rd = raw(n);
            let md = modo(n);
            if rep > 0 {
                r.push(rd.as_secs_f64() * 1e9 / n as f64);
                m.push(md.as_secs_f64() * 1e9 / n as f64);
            }
        }
        let (r, m) = (median(&mut r), median(&mut m));
        if throughput {
            println!(
                "| {name} | {:.0} k msg/s | {:.0} k msg/s | {:.2}x throughput |",
                1e6 / r,
                1e6 / m,
                r / m
            );
        } else {
            println!(
                "| {name} | {:.1} us | {:.1} us | {:.2}x time |",
                r / 1e3,
                m / 1e3,
                m / r
            );
        }
    };
    row(
        "ask round trip",
        ask_n,
        false,
        &|n| rt.block_on(fx.raw_ask(n)),
        &|n| rt.block_on(fx.modo_ask(n)),
    );
    row(
        "ask, raw responder + local ask (the floor under a remote ask)",
        ask_n,
        false,
        &|n| rt.block_on(fx.raw_ask(n)),
        &|n| rt.block_on(fx.raw_actor_ask(n)),
    );
    row(
        "acked tell, 64 in flight",
        pipe_n,
        true,
        &|n| rt.block_on(fx.raw_pipelined(n)),
        &|n| rt.block_on(fx.modo_pipelined(n)),
    );
    row(
        "fire-and-forget tell",
        pub_n,
        true,
        &|n| rt.block_on(fx.raw_publish(n)),
        &|n| rt.block_on(fx.modo_publish(n)),
    );
    row(
        "publish, raw subscriber + local tell (the floor under fire-and-forget)",
        pub_n,
        true,
        &|n| rt.block_on(fx.raw_publish(n)),
        &|n| rt.block_on(fx.raw_actor_publish(n)),
    );
    drop(setup);
}

fn criterion_groups(c: &mut Criterion, rt: &Runtime, fx: &Fixture) {
    let mut g = c.benchmark_group("ask");
    g.bench_function("raw", |b| b.to_async(rt).iter_custom(|n| fx.raw_ask(n)));
    g.bench_function("raw + local ask", |b| {
        b.to_async(rt).iter_custom(|n| fx.raw_actor_ask(n))
    });
    g.bench_function("modo", |b| b.to_async(rt).iter_custom(|n| fx.modo_ask(n)));
    g.finish();

    let mut g = c.benchmark_group("tell_pipelined");
    g.throughput(Throughput::Elements(1));
    g.bench_function("raw", |b| {
        b.to_async(rt).iter_custom(|n| fx.raw_pipelined(n))
    });
    g.bench_function("modo", |b| {
        b.to_async(rt).iter_custom(|n| fx.modo_pipelined(n))
    });
    g.finish();

    let mut g = c.benchmark_group("tell_unacked");
    g.throughput(Throughput::Elements(1));
    g.bench_function("raw", |b| b.to_async(rt).iter_custom(|n| fx.raw_publish(n)));
    g.bench_function("modo", |b| {
        b.to_async(rt).iter_custom(|n| fx.modo_publish(n))
    });
    g.finish();
}

#[derive(Serialize, Deserialize)]
struct Sample {
    id: u32,
    name: String,
    tags: Vec<u16>,
}

impl RemoteMessage for Sample {
    const NAME: &'static str = "bench.Sample";
}

fn codec(c: &mut Criterion) {
    let head = RequestHead {
        kind: Kind::Ask,
        id: MessageId {
            node: NodeId([7; 16]),
            seq: 123_456,
        },
        message: Sample::NAME,
        version: Sample::VERSION,
        wait_ms: 5_000,
    };
    let msg = Sample {
        id: 42,
        name: "a user name".into(),
        tags: vec![1, 2, 3, 4],
    };
    let frame = wire::encode_request(&head, &msg).unwrap();
    let mut g = c.benchmark_group("codec");
    g.bench_function("encode request (postcard)", |b| {
        b.iter(|| black_box(wire::encode_request(black_box(&head), black_box(&msg)).unwrap()))
    });
    g.bench_function("decode request (postcard)", |b| {
        b.iter(|| {
            let (h, body) = wire::decode_request(black_box(&frame)).unwrap();
            let m: Sample = wire::decode_body(body, "message").unwrap();
            black_box((h.id.seq, m.id))
        })
    });
    g.finish();
    println!("a request frame of this sample is {} bytes", frame.len());
}
