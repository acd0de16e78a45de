//! actix 0.13: every actor on the thread that drives its `actix_rt::System`; `do_send`
//! (ignores the mailbox capacity), `send`.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use tokio::runtime::Builder;
use tokio::sync::{Notify, oneshot};

use crate::common::{Tally, check_fanout, check_ring, growth, rss_bytes};
use crate::{CAPACITY, TREE_BRANCH, TREE_DEPTH};

struct Counter {
    n: u64,
}
impl Actor for Counter {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(CAPACITY);
    }
}
#[derive(Message)]
#[rtype(result = "()")]
struct Tick;
#[derive(Message)]
#[rtype(result = "u64")]
struct Take;
#[derive(Message)]
#[rtype(result = "u64")]
struct Echo(u64);
impl Handler<Tick> for Counter {
    type Result = ();
    fn handle(&mut self, _: Tick, _: &mut Context<Self>) {
        self.n += 1;
    }
}
impl Handler<Take> for Counter {
    type Result = MessageResult<Take>;
    fn handle(&mut self, _: Take, _: &mut Context<Self>) -> MessageResult<Take> {
        MessageResult(std::mem::take(&mut self.n))
    }
}
impl Handler<Echo> for Counter {
    type Result = MessageResult<Echo>;
    fn handle(&mut self, m: Echo, _: &mut Context<Self>) -> MessageResult<Echo> {
        MessageResult(m.0 + 1)
    }
}

/// Holds a sender that is dropped when the actor is dropped: the join.
struct Idle {
    _alive: oneshot::Sender<()>,
}
impl Actor for Idle {
    type Context = Context<Self>;
}
#[derive(Message)]
#[rtype(result = "()")]
struct Stop;
impl Handler<Stop> for Idle {
    type Result = ();
    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

pub async fn tell(n: u64) -> Duration {
    let addr = Counter { n: 0 }.start();
    let start = Instant::now();
    for _ in 0..n {
        addr.do_send(Tick);
    }
    assert_eq!(addr.send(Take).await.expect("running"), n);
    start.elapsed()
}

pub async fn ask(n: u64) -> Duration {
    let addr = Counter { n: 0 }.start();
    let start = Instant::now();
    for i in 0..n {
        assert_eq!(addr.send(Echo(i)).await.expect("running"), i + 1);
    }
    start.elapsed()
}

pub async fn spawn_stop(k: usize) -> Duration {
    let start = Instant::now();
    let mut actors = Vec::with_capacity(k);
    for _ in 0..k {
        let (alive, gone) = oneshot::channel();
        actors.push((Idle { _alive: alive }.start(), gone));
    }
    for (addr, gone) in actors {
        addr.do_send(Stop);
        drop(addr);
        assert!(gone.await.is_err());
    }
    start.elapsed()
}

/// A ring node: forwards the token to `next` until its last delivery.
struct RingNode {
    next: Option<Addr<RingNode>>,
    seen: u64,
    done: Arc<Notify>,
}
impl Actor for RingNode {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(CAPACITY);
    }
}
#[derive(Message)]
#[rtype(result = "()")]
struct Link(Addr<RingNode>);
/// The token, with the number of deliveries still to make (this one included).
#[derive(Message)]
#[rtype(result = "()")]
struct Token(u32);
#[derive(Message)]
#[rtype(result = "u64")]
struct Seen;
impl Handler<Link> for RingNode {
    type Result = ();
    fn handle(&mut self, m: Link, _: &mut Context<Self>) {
        self.next = Some(m.0);
    }
}
impl Handler<Token> for RingNode {
    type Result = ();
    fn handle(&mut self, Token(left): Token, _: &mut Context<Self>) {
        self.seen += 1;
        if left == 1 {
            self.done.notify_one();
        } else {
            let next = self.next.as_ref().expect("linked");
            next.do_send(Token(left - 1));
        }
    }
}
impl Handler<Seen> for RingNode {
    type Result = MessageResult<Seen>;
    fn handle(&mut self, _: Seen, _: &mut Context<Self>) -> MessageResult<Seen> {
        MessageResult(self.seen)
    }
}

pub async fn ring(k: usize, hops: u32) -> Duration {
    let done = Arc::new(Notify::new());
    let nodes: Vec<_> = (0..k)
        .map(|_| {
            RingNode {
                next: None,
                seen: 0,
                done: done.clone(),
            }
            .start()
        })
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        node.do_send(Link(nodes[(i + 1) % k].clone()));
    }
    let start = Instant::now();
    nodes[0].do_send(Token(hops));
    done.notified().await;
    let took = start.elapsed();
    let mut counts = Vec::with_capacity(k);
    for node in &nodes {
        counts.push(node.send(Seen).await.expect("running"));
    }
    check_ring("actix ring", &counts);
    took
}

/// The producers are tokio tasks: on the 2 workers in `mt2` (the counter stays on the
/// System's thread), on the one thread in `ct`.
pub async fn producers(p: usize, each: u64) -> Duration {
    let addr = Counter { n: 0 }.start();
    let start = Instant::now();
    let tasks: Vec<_> = (0..p)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move {
                for _ in 0..each {
                    addr.do_send(Tick);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("producer");
    }
    assert_eq!(addr.send(Take).await.expect("running"), p as u64 * each);
    start.elapsed()
}

pub async fn fanout(k: usize, n: u64) -> Duration {
    let addrs: Vec<_> = (0..k).map(|_| Counter { n: 0 }.start()).collect();
    let start = Instant::now();
    for i in 0..n {
        addrs[(i % k as u64) as usize].do_send(Tick);
    }
    let mut counts = Vec::with_capacity(k);
    for a in &addrs {
        counts.push(a.send(Take).await.expect("running"));
    }
    let took = start.elapsed();
    check_fanout("actix fanout", &counts);
    took
}

/// A tree node: starts its children in `started`; `Halt` passes itself on to the children
/// and stops this node (`stopped` counts the end).
struct Node {
    depth: u32,
    tally: Arc<Tally>,
    kids: Vec<Addr<Node>>,
}
impl Actor for Node {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(CAPACITY);
        if self.depth < TREE_DEPTH {
            for _ in 0..TREE_BRANCH {
                let kid = Node {
                    depth: self.depth + 1,
                    tally: self.tally.clone(),
                    kids: Vec::new(),
                };
                self.kids.push(kid.start());
            }
        }
        self.tally.start();
    }
    fn stopped(&mut self, _: &mut Context<Self>) {
        self.tally.end();
    }
}
#[derive(Message)]
#[rtype(result = "()")]
struct Halt;
impl Handler<Halt> for Node {
    type Result = ();
    fn handle(&mut self, _: Halt, ctx: &mut Context<Self>) {
        for kid in &self.kids {
            kid.do_send(Halt);
        }
        ctx.stop();
    }
}

pub async fn tree(nodes: usize) -> Duration {
    let tally = Arc::new(Tally::new(nodes));
    let start = Instant::now();
    let root = Node {
        depth: 0,
        tally: tally.clone(),
        kids: Vec::new(),
    }
    .start();
    tally.wait_started().await;
    root.do_send(Halt);
    tally.wait_ended().await;
    let took = start.elapsed();
    tally.check("actix tree", true);
    took
}

struct Resting(Arc<Tally>);
impl Actor for Resting {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.set_mailbox_capacity(CAPACITY);
        self.0.start();
    }
}

/// RSS growth in bytes for `k` idle actors (the addresses kept: dropping them would stop
/// the actors).
pub async fn idle(k: usize) -> f64 {
    let tally = Arc::new(Tally::new(k));
    let mut held = Vec::with_capacity(k);
    let before = rss_bytes();
    for _ in 0..k {
        held.push(Resting(tally.clone()).start());
    }
    tally.wait_started().await;
    let after = rss_bytes();
    tally.check("actix idle", false);
    assert_eq!(held.len(), k);
    growth(before, after)
}

/// Runs `fut` in a fresh actix System: a current-thread one (`ct`) or one over a 2-worker
/// tokio runtime (`mt2`).
pub fn run<T, F: Future<Output = T>>(mt2: bool, fut: F) -> T {
    let sys = if mt2 {
        actix::System::with_tokio_rt(|| {
            Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime")
        })
    } else {
        actix::System::new()
    };
    sys.block_on(fut)
}
