//! modo, through its public API only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use modo::supervisor::Supervisor;
use modo::{Addr, Context, Dependency, Handler, HookResult, Service, System};
use tokio::sync::Notify;

use crate::common::{Tally, check_fanout, check_ring, growth, rss_bytes};
use crate::{CAPACITY, TREE_BRANCH, TREE_DEPTH};

#[derive(Default)]
struct Counter {
    n: u64,
}
impl Service for Counter {
    fn mailbox_capacity(&self) -> usize {
        CAPACITY
    }
}
struct Tick;
struct Take;
struct Echo(u64);
impl Handler<Tick> for Counter {
    type Reply = ();
    async fn handle(&mut self, _: Tick, _: &mut Context<Self>) {
        self.n += 1;
    }
}
impl Handler<Take> for Counter {
    type Reply = u64;
    async fn handle(&mut self, _: Take, _: &mut Context<Self>) -> u64 {
        std::mem::take(&mut self.n)
    }
}
impl Handler<Echo> for Counter {
    type Reply = u64;
    async fn handle(&mut self, m: Echo, _: &mut Context<Self>) -> u64 {
        m.0 + 1
    }
}

struct Idle;
impl Service for Idle {}

#[derive(Default)]
struct Fragile;
struct Poison;
impl Service for Fragile {}
impl Handler<Poison> for Fragile {
    type Reply = ();
    async fn handle(&mut self, _: Poison, _: &mut Context<Self>) {
        panic!("poison");
    }
}

pub async fn tell(n: u64) -> Duration {
    let system = System::new();
    let addr = system.spawn(Counter::default()).await.expect("spawn");
    let start = Instant::now();
    for _ in 0..n {
        addr.tell(Tick).await.expect("running");
    }
    assert_eq!(addr.ask(Take).await.expect("running"), n);
    let took = start.elapsed();
    drop(addr);
    system.shutdown().await.expect("shutdown");
    took
}

pub async fn ask(n: u64) -> Duration {
    let system = System::new();
    let addr = system.spawn(Counter::default()).await.expect("spawn");
    let start = Instant::now();
    for i in 0..n {
        assert_eq!(addr.ask(Echo(i)).await.expect("running"), i + 1);
    }
    let took = start.elapsed();
    drop(addr);
    system.shutdown().await.expect("shutdown");
    took
}

/// As `benches/common`'s `ModoSpawnStop`: the final `System::shutdown` (the join of every
/// actor task) is inside the clock.
pub async fn spawn_stop(k: usize) -> Duration {
    let system = System::new();
    let start = Instant::now();
    let mut addrs = Vec::with_capacity(k);
    for _ in 0..k {
        addrs.push(system.spawn(Idle).await.expect("spawn"));
    }
    for addr in addrs {
        addr.stop().await.expect("stop");
    }
    system.shutdown().await.expect("shutdown");
    start.elapsed()
}

pub async fn restart(n: u32) -> Duration {
    let system = System::new();
    let sup = system
        .spawn(Supervisor::builder().max_restarts(u32::MAX).build())
        .await
        .expect("supervisor");
    let child = sup.supervise(Fragile::default).await.expect("child");
    let start = Instant::now();
    for _ in 0..n {
        child.tell(Poison).await.expect("queued");
    }
    child.wait_until(|c| c.restart_count() == n).await;
    let took = start.elapsed();
    drop(child);
    drop(sup);
    system.shutdown().await.expect("shutdown");
    took
}

/// A ring node: forwards the token to `next` until its last delivery.
struct RingNode {
    next: Option<Addr<RingNode>>,
    seen: u64,
    done: Arc<Notify>,
}
impl Service for RingNode {
    fn mailbox_capacity(&self) -> usize {
        CAPACITY
    }
}
struct Link(Addr<RingNode>);
/// The token, with the number of deliveries still to make (this one included).
struct Token(u32);
struct Seen;
impl Handler<Link> for RingNode {
    type Reply = ();
    async fn handle(&mut self, m: Link, _: &mut Context<Self>) {
        self.next = Some(m.0);
    }
}
impl Handler<Token> for RingNode {
    type Reply = ();
    async fn handle(&mut self, Token(left): Token, _: &mut Context<Self>) {
        self.seen += 1;
        if left == 1 {
            self.done.notify_one();
        } else {
            let next = self.next.as_ref().expect("linked");
            next.tell(Token(left - 1)).await.expect("next in ring");
        }
    }
}
impl Handler<Seen> for RingNode {
    type Reply = u64;
    async fn handle(&mut self, _: Seen, _: &mut Context<Self>) -> u64 {
        self.seen
    }
}

pub async fn ring(k: usize, hops: u32) -> Duration {
    let system = System::new();
    let done = Arc::new(Notify::new());
    let mut nodes = Vec::with_capacity(k);
    for _ in 0..k {
        let node = RingNode {
            next: None,
            seen: 0,
            done: done.clone(),
        };
        nodes.push(system.spawn(node).await.expect("spawn"));
    }
    for (i, node) in nodes.iter().enumerate() {
        let next = nodes[(i + 1) % k].clone();
        node.tell(Link(next)).await.expect("running");
    }
    let start = Instant::now();
    nodes[0].tell(Token(hops)).await.expect("running");
    done.notified().await;
    let took = start.elapsed();
    let mut counts = Vec::with_capacity(k);
    for node in &nodes {
        counts.push(node.ask(Seen).await.expect("running"));
    }
    check_ring("modo ring", &counts);
    drop(nodes);
    system.shutdown().await.expect("shutdown");
    took
}

pub async fn producers(p: usize, each: u64) -> Duration {
    let system = System::new();
    let addr = system.spawn(Counter::default()).await.expect("spawn");
    let start = Instant::now();
    let tasks: Vec<_> = (0..p)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move {
                for _ in 0..each {
                    addr.tell(Tick).await.expect("running");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("producer");
    }
    assert_eq!(addr.ask(Take).await.expect("running"), p as u64 * each);
    let took = start.elapsed();
    drop(addr);
    system.shutdown().await.expect("shutdown");
    took
}

pub async fn fanout(k: usize, n: u64) -> Duration {
    let system = System::new();
    let mut addrs = Vec::with_capacity(k);
    for _ in 0..k {
        addrs.push(system.spawn(Counter::default()).await.expect("spawn"));
    }
    let start = Instant::now();
    for i in 0..n {
        addrs[(i % k as u64) as usize]
            .tell(Tick)
            .await
            .expect("running");
    }
    let mut counts = Vec::with_capacity(k);
    for a in &addrs {
        counts.push(a.ask(Take).await.expect("running"));
    }
    let took = start.elapsed();
    check_fanout("modo fanout", &counts);
    drop(addrs);
    system.shutdown().await.expect("shutdown");
    took
}

/// A tree node: its children are its `dependencies`, started with it and stopped with it.
struct Node {
    depth: u32,
    tally: Arc<Tally>,
}
impl Service for Node {
    fn dependencies(&mut self) -> Vec<Dependency> {
        if self.depth == TREE_DEPTH {
            return Vec::new();
        }
        (0..TREE_BRANCH)
            .map(|_| {
                Node {
                    depth: self.depth + 1,
                    tally: self.tally.clone(),
                }
                .into()
            })
            .collect()
    }
    fn mailbox_capacity(&self) -> usize {
        CAPACITY
    }
    /// After its children started.
    async fn on_started(&mut self, _: &mut Context<Self>) -> HookResult {
        self.tally.start();
        Ok(())
    }
    /// The last hook of the stop sequence, after its children stopped.
    async fn on_shutdown(&mut self, _: &mut Context<Self>) -> HookResult {
        self.tally.end();
        Ok(())
    }
}

pub async fn tree(nodes: usize) -> Duration {
    let system = System::new();
    let tally = Arc::new(Tally::new(nodes));
    let start = Instant::now();
    let root = system
        .spawn(Node {
            depth: 0,
            tally: tally.clone(),
        })
        .await
        .expect("spawn");
    // `spawn` returns once the whole tree started.
    tally.check("modo tree, after spawn", false);
    root.stop().await.expect("stop");
    let took = start.elapsed();
    // `stop` returns once every node has run its stop sequence.
    tally.check("modo tree, after stop", true);
    drop(root);
    system.shutdown().await.expect("shutdown");
    took
}

struct Resting(Arc<Tally>);
impl Service for Resting {
    fn mailbox_capacity(&self) -> usize {
        CAPACITY
    }
    async fn on_started(&mut self, _: &mut Context<Self>) -> HookResult {
        self.0.start();
        Ok(())
    }
}

/// RSS growth in bytes for `k` idle services (one System, its registry on, the addresses kept).
pub async fn idle(k: usize) -> f64 {
    let system = System::new();
    let tally = Arc::new(Tally::new(k));
    let mut held = Vec::with_capacity(k);
    let before = rss_bytes();
    for _ in 0..k {
        held.push(system.spawn(Resting(tally.clone())).await.expect("spawn"));
    }
    // The registry applies its backlog when asked: its nodes count too.
    let _ = system.registry().graph().await;
    let after = rss_bytes();
    tally.check("modo idle", false);
    assert_eq!(system.live_actors(), k, "modo idle: live actors");
    growth(before, after)
}
