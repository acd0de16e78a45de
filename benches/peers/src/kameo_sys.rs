//! kameo 0.22: bounded mailboxes of `CAPACITY`, `tell(..).await`, `ask`, `supervise`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use kameo::Actor;
use kameo::actor::{ActorRef, Spawn, WeakActorRef};
use kameo::error::{ActorStopReason, Infallible};
use kameo::mailbox;
use kameo::message::{Context, Message};
use kameo::supervision::SupervisionStrategy;
use tokio::sync::Notify;

use crate::common::{Tally, check_fanout, check_ring, growth, rss_bytes};
use crate::{CAPACITY, TREE_BRANCH, TREE_DEPTH};

#[derive(Default)]
struct Counter {
    n: u64,
}
impl Actor for Counter {
    type Args = Self;
    type Error = Infallible;
    async fn on_start(args: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(args)
    }
}
struct Tick;
struct Take;
struct Echo(u64);
impl Message<Tick> for Counter {
    type Reply = ();
    async fn handle(&mut self, _: Tick, _: &mut Context<Self, ()>) {
        self.n += 1;
    }
}
impl Message<Take> for Counter {
    type Reply = u64;
    async fn handle(&mut self, _: Take, _: &mut Context<Self, u64>) -> u64 {
        std::mem::take(&mut self.n)
    }
}
impl Message<Echo> for Counter {
    type Reply = u64;
    async fn handle(&mut self, m: Echo, _: &mut Context<Self, u64>) -> u64 {
        m.0 + 1
    }
}

async fn counter() -> ActorRef<Counter> {
    let actor = Counter::spawn_with_mailbox(Counter::default(), mailbox::bounded(CAPACITY));
    actor.wait_for_startup().await;
    actor
}

struct Idle;
impl Actor for Idle {
    type Args = Self;
    type Error = Infallible;
    async fn on_start(args: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(args)
    }
}

async fn end<A: Actor>(a: ActorRef<A>) {
    a.stop_gracefully().await.expect("stop");
    a.wait_for_shutdown().await;
}

pub async fn tell(n: u64) -> Duration {
    let actor = counter().await;
    let start = Instant::now();
    for _ in 0..n {
        actor.tell(Tick).await.expect("running");
    }
    assert_eq!(actor.ask(Take).await.expect("running"), n);
    let took = start.elapsed();
    end(actor).await;
    took
}

pub async fn ask(n: u64) -> Duration {
    let actor = counter().await;
    let start = Instant::now();
    for i in 0..n {
        assert_eq!(actor.ask(Echo(i)).await.expect("running"), i + 1);
    }
    let took = start.elapsed();
    end(actor).await;
    took
}

pub async fn spawn_stop(k: usize) -> Duration {
    let start = Instant::now();
    let mut actors = Vec::with_capacity(k);
    for _ in 0..k {
        let a = Idle::spawn_with_mailbox(Idle, mailbox::bounded(CAPACITY));
        a.wait_for_startup().await;
        actors.push(a);
    }
    for a in actors {
        end(a).await;
    }
    start.elapsed()
}

struct Sup;
impl Actor for Sup {
    type Args = Self;
    type Error = Infallible;
    fn supervision_strategy() -> SupervisionStrategy {
        SupervisionStrategy::OneForOne
    }
    async fn on_start(args: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(args)
    }
}

struct Shared {
    starts: AtomicU32,
    done: Notify,
}

#[derive(Clone)]
struct Fragile(Arc<Shared>);
struct Poison;
impl Actor for Fragile {
    type Args = Self;
    type Error = Infallible;
    async fn on_start(args: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
        // Every start after the first is a restart: wake the driver.
        if args.0.starts.fetch_add(1, Ordering::AcqRel) > 0 {
            args.0.done.notify_one();
        }
        Ok(args)
    }
}
impl Message<Poison> for Fragile {
    type Reply = ();
    async fn handle(&mut self, _: Poison, _: &mut Context<Self, ()>) {
        panic!("poison");
    }
}

/// `None` when the restarts stall: no restart for `STALL` while poisons are queued (seen
/// on kameo 0.22.2, the supervised child stays dead; see BENCHMARKS.md).
pub async fn restart(n: u32) -> Option<Duration> {
    const STALL: Duration = Duration::from_secs(2);
    let shared = Arc::new(Shared {
        starts: AtomicU32::new(0),
        done: Notify::new(),
    });
    let sup = Sup::spawn(Sup);
    sup.wait_for_startup().await;
    let child = Fragile::supervise(&sup, Fragile(shared.clone()))
        .restart_limit(u32::MAX, Duration::from_secs(1))
        .spawn_with_mailbox(mailbox::bounded(CAPACITY))
        .await;
    child.wait_for_startup().await;
    // Lock-step: one poison, then wait for the restarted instance's `on_start`. With all
    // `n` poisons queued at once (as for modo) kameo 0.22.2 stalled in every run we tried
    // (the child stays dead after 17 to ~1,000 restarts), so the queued form is not measured.
    let start = Instant::now();
    let mut took = Some(Duration::ZERO);
    for i in 0..n {
        child.tell(Poison).await.expect("queued");
        if tokio::time::timeout(STALL, shared.done.notified())
            .await
            .is_err()
        {
            eprintln!("kameo restart stalled: {i} of {n} restarts");
            took = None;
            break;
        }
    }
    let took = took.map(|_| start.elapsed());
    sup.kill();
    sup.wait_for_shutdown().await;
    took
}

/// A ring node: forwards the token to `next` until its last delivery.
struct RingNode {
    next: Option<ActorRef<RingNode>>,
    seen: u64,
    done: Arc<Notify>,
}
impl Actor for RingNode {
    type Args = Self;
    type Error = Infallible;
    async fn on_start(args: Self, _: ActorRef<Self>) -> Result<Self, Infallible> {
        Ok(args)
    }
}
struct Link(ActorRef<RingNode>);
/// The token, with the number of deliveries still to make (this one included).
struct Token(u32);
struct Seen;
impl Message<Link> for RingNode {
    type Reply = ();
    async fn handle(&mut self, m: Link, _: &mut Context<Self, ()>) {
        self.next = Some(m.0);
    }
}
impl Message<Token> for RingNode {
    type Reply = ();
    async fn handle(&mut self, Token(left): Token, _: &mut Context<Self, ()>) {
        self.seen += 1;
        if left == 1 {
            self.done.notify_one();
        } else {
            let next = self.next.as_ref().expect("linked");
            next.tell(Token(left - 1)).await.expect("next in ring");
        }
    }
}
impl Message<Seen> for RingNode {
    type Reply = u64;
    async fn handle(&mut self, _: Seen, _: &mut Context<Self, u64>) -> u64 {
        self.seen
    }
}

pub async fn ring(k: usize, hops: u32) -> Duration {
    let done = Arc::new(Notify::new());
    let mut nodes = Vec::with_capacity(k);
    for _ in 0..k {
        let node = RingNode {
            next: None,
            seen: 0,
            done: done.clone(),
        };
        let node = RingNode::spawn_with_mailbox(node, mailbox::bounded(CAPACITY));
        node.wait_for_startup().await;
        nodes.push(node);
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
    check_ring("kameo ring", &counts);
    for node in nodes {
        end(node).await;
    }
    took
}

pub async fn producers(p: usize, each: u64) -> Duration {
    let actor = counter().await;
    let start = Instant::now();
    let tasks: Vec<_> = (0..p)
        .map(|_| {
            let actor = actor.clone();
            tokio::spawn(async move {
                for _ in 0..each {
                    actor.tell(Tick).await.expect("running");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("producer");
    }
    assert_eq!(actor.ask(Take).await.expect("running"), p as u64 * each);
    let took = start.elapsed();
    end(actor).await;
    took
}

pub async fn fanout(k: usize, n: u64) -> Duration {
    let mut actors = Vec::with_capacity(k);
    for _ in 0..k {
        actors.push(counter().await);
    }
    let start = Instant::now();
    for i in 0..n {
        actors[(i % k as u64) as usize]
            .tell(Tick)
            .await
            .expect("running");
    }
    let mut counts = Vec::with_capacity(k);
    for a in &actors {
        counts.push(a.ask(Take).await.expect("running"));
    }
    let took = start.elapsed();
    check_fanout("kameo fanout", &counts);
    for a in actors {
        end(a).await;
    }
    took
}

#[derive(Clone)]
struct NodeArgs {
    depth: u32,
    tally: Arc<Tally>,
}

/// A tree node: in `on_start` it `supervise`s its children (OneForOne, the default) and waits
/// for their startup, so its own startup covers its subtree. A supervisor's stop shuts its
/// children down and waits for them before its `on_stop`.
struct Node {
    tally: Arc<Tally>,
    _kids: Vec<ActorRef<Node>>,
}
impl Actor for Node {
    type Args = NodeArgs;
    type Error = Infallible;
    async fn on_start(args: NodeArgs, me: ActorRef<Self>) -> Result<Self, Infallible> {
        let mut kids = Vec::new();
        if args.depth < TREE_DEPTH {
            for _ in 0..TREE_BRANCH {
                let kid = NodeArgs {
                    depth: args.depth + 1,
                    tally: args.tally.clone(),
                };
                kids.push(
                    Node::supervise(&me, kid)
                        .spawn_with_mailbox(mailbox::bounded(CAPACITY))
                        .await,
                );
            }
            for kid in &kids {
                kid.wait_for_startup().await;
            }
        }
        args.tally.start();
        Ok(Node {
            tally: args.tally,
            _kids: kids,
        })
    }
    async fn on_stop(
        &mut self,
        _: WeakActorRef<Self>,
        _: ActorStopReason,
    ) -> Result<(), Infallible> {
        self.tally.end();
        Ok(())
    }
}

pub async fn tree(nodes: usize) -> Duration {
    let tally = Arc::new(Tally::new(nodes));
    let start = Instant::now();
    let root = Node::spawn_with_mailbox(
        NodeArgs {
            depth: 0,
            tally: tally.clone(),
        },
        mailbox::bounded(CAPACITY),
    );
    root.wait_for_startup().await;
    tally.wait_started().await;
    root.stop_gracefully().await.expect("stop");
    root.wait_for_shutdown().await;
    tally.wait_ended().await;
    let took = start.elapsed();
    tally.check("kameo tree", true);
    took
}

/// Keeps its share of the tally, as the other systems' idle actors do.
struct Resting {
    _tally: Arc<Tally>,
}
impl Actor for Resting {
    type Args = Arc<Tally>;
    type Error = Infallible;
    async fn on_start(tally: Arc<Tally>, _: ActorRef<Self>) -> Result<Self, Infallible> {
        tally.start();
        Ok(Resting { _tally: tally })
    }
}

/// RSS growth in bytes for `k` idle actors (bounded mailbox of `CAPACITY`, the refs kept).
pub async fn idle(k: usize) -> f64 {
    let tally = Arc::new(Tally::new(k));
    let mut held = Vec::with_capacity(k);
    let before = rss_bytes();
    for _ in 0..k {
        let a = Resting::spawn_with_mailbox(tally.clone(), mailbox::bounded(CAPACITY));
        a.wait_for_startup().await;
        held.push(a);
    }
    tally.wait_started().await;
    let after = rss_bytes();
    tally.check("kameo idle", false);
    assert_eq!(held.len(), k);
    growth(before, after)
}
