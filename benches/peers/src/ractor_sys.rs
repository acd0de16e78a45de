//! ractor 0.16: `Actor::spawn` / `spawn_linked`, `cast`, `call`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};
use tokio::sync::{Notify, oneshot};

use crate::common::{Tally, check_fanout, check_ring, growth, rss_bytes};
use crate::{LIMIT, TREE_BRANCH, TREE_DEPTH};

enum CounterMsg {
    Tick,
    Take(RpcReplyPort<u64>),
    Echo(u64, RpcReplyPort<u64>),
}

struct Counter;
impl Actor for Counter {
    type Msg = CounterMsg;
    type State = u64;
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<CounterMsg>, _: ()) -> Result<u64, ActorProcessingErr> {
        Ok(0)
    }
    async fn handle(
        &self,
        _: ActorRef<CounterMsg>,
        msg: CounterMsg,
        n: &mut u64,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            CounterMsg::Tick => *n += 1,
            CounterMsg::Take(reply) => {
                let _ = reply.send(std::mem::take(n));
            }
            CounterMsg::Echo(x, reply) => {
                let _ = reply.send(x + 1);
            }
        }
        Ok(())
    }
}

async fn take(actor: &ActorRef<CounterMsg>) -> u64 {
    let counted = actor.call(CounterMsg::Take, None).await.expect("call");
    counted.success_or(()).expect("counted")
}

struct Idle;
impl Actor for Idle {
    type Msg = ();
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<()>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

pub async fn tell(n: u64) -> Duration {
    let (actor, join) = Actor::spawn(None, Counter, ()).await.expect("spawn");
    let start = Instant::now();
    for _ in 0..n {
        actor.cast(CounterMsg::Tick).expect("running");
    }
    assert_eq!(take(&actor).await, n);
    let took = start.elapsed();
    actor.stop(None);
    join.await.expect("join");
    took
}

pub async fn ask(n: u64) -> Duration {
    let (actor, join) = Actor::spawn(None, Counter, ()).await.expect("spawn");
    let start = Instant::now();
    for i in 0..n {
        let r = actor
            .call(|p| CounterMsg::Echo(i, p), None)
            .await
            .expect("call");
        assert_eq!(r.success_or(()).ok(), Some(i + 1));
    }
    let took = start.elapsed();
    actor.stop(None);
    join.await.expect("join");
    took
}

pub async fn spawn_stop(k: usize) -> Duration {
    let start = Instant::now();
    let mut actors = Vec::with_capacity(k);
    for _ in 0..k {
        actors.push(Actor::spawn(None, Idle, ()).await.expect("spawn"));
    }
    for (actor, join) in actors {
        actor.stop(None);
        join.await.expect("join");
    }
    start.elapsed()
}

struct Poison;
struct Fragile;
impl Actor for Fragile {
    type Msg = Poison;
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<Poison>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
    async fn handle(
        &self,
        _: ActorRef<Poison>,
        _: Poison,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        panic!("poison");
    }
}

/// Restarts its child (a new `spawn_linked` plus the next poison) on each failure, `n`
/// times, then reports on `done`.
struct Sup;
struct SupState {
    left: u32,
    done: Option<oneshot::Sender<()>>,
}
impl Actor for Sup {
    type Msg = ();
    type State = SupState;
    type Arguments = (u32, oneshot::Sender<()>);
    async fn pre_start(
        &self,
        _: ActorRef<()>,
        (n, done): (u32, oneshot::Sender<()>),
    ) -> Result<SupState, ActorProcessingErr> {
        Ok(SupState {
            left: n,
            done: Some(done),
        })
    }
    async fn post_start(
        &self,
        myself: ActorRef<()>,
        _: &mut SupState,
    ) -> Result<(), ActorProcessingErr> {
        let (child, _) = Actor::spawn_linked(None, Fragile, (), myself.get_cell()).await?;
        child.cast(Poison)?;
        Ok(())
    }
    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<()>,
        evt: SupervisionEvent,
        st: &mut SupState,
    ) -> Result<(), ActorProcessingErr> {
        if let SupervisionEvent::ActorFailed(..) = evt {
            st.left -= 1;
            if st.left == 0 {
                if let Some(done) = st.done.take() {
                    let _ = done.send(());
                }
            } else {
                let (child, _) = Actor::spawn_linked(None, Fragile, (), myself.get_cell()).await?;
                child.cast(Poison)?;
            }
        }
        Ok(())
    }
}

pub async fn restart(n: u32) -> Duration {
    let (done_tx, done) = oneshot::channel();
    let start = Instant::now();
    let (sup, join) = Actor::spawn(None, Sup, (n, done_tx)).await.expect("spawn");
    done.await.expect("done");
    let took = start.elapsed();
    sup.stop(None);
    join.await.expect("join");
    took
}

enum RingMsg {
    Link(ActorRef<RingMsg>),
    /// The token, with the number of deliveries still to make (this one included).
    Token(u32),
    Seen(RpcReplyPort<u64>),
}
struct RingNode;
struct RingState {
    next: Option<ActorRef<RingMsg>>,
    seen: u64,
    done: Arc<Notify>,
}
impl Actor for RingNode {
    type Msg = RingMsg;
    type State = RingState;
    type Arguments = Arc<Notify>;
    async fn pre_start(
        &self,
        _: ActorRef<RingMsg>,
        done: Arc<Notify>,
    ) -> Result<RingState, ActorProcessingErr> {
        Ok(RingState {
            next: None,
            seen: 0,
            done,
        })
    }
    async fn handle(
        &self,
        _: ActorRef<RingMsg>,
        msg: RingMsg,
        st: &mut RingState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RingMsg::Link(next) => st.next = Some(next),
            RingMsg::Token(left) => {
                st.seen += 1;
                if left == 1 {
                    st.done.notify_one();
                } else {
                    let next = st.next.as_ref().expect("linked");
                    next.cast(RingMsg::Token(left - 1))?;
                }
            }
            RingMsg::Seen(reply) => {
                let _ = reply.send(st.seen);
            }
        }
        Ok(())
    }
}

pub async fn ring(k: usize, hops: u32) -> Duration {
    let done = Arc::new(Notify::new());
    let mut nodes = Vec::with_capacity(k);
    for _ in 0..k {
        nodes.push(
            Actor::spawn(None, RingNode, done.clone())
                .await
                .expect("spawn"),
        );
    }
    for (i, (node, _)) in nodes.iter().enumerate() {
        let next = nodes[(i + 1) % k].0.clone();
        node.cast(RingMsg::Link(next)).expect("running");
    }
    let start = Instant::now();
    nodes[0].0.cast(RingMsg::Token(hops)).expect("running");
    done.notified().await;
    let took = start.elapsed();
    let mut counts = Vec::with_capacity(k);
    for (node, _) in &nodes {
        let seen = node.call(RingMsg::Seen, None).await.expect("call");
        counts.push(seen.success_or(()).expect("seen"));
    }
    check_ring("ractor ring", &counts);
    for (node, join) in nodes {
        node.stop(None);
        join.await.expect("join");
    }
    took
}

pub async fn producers(p: usize, each: u64) -> Duration {
    let (actor, join) = Actor::spawn(None, Counter, ()).await.expect("spawn");
    let start = Instant::now();
    let tasks: Vec<_> = (0..p)
        .map(|_| {
            let actor = actor.clone();
            tokio::spawn(async move {
                for _ in 0..each {
                    actor.cast(CounterMsg::Tick).expect("running");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("producer");
    }
    assert_eq!(take(&actor).await, p as u64 * each);
    let took = start.elapsed();
    actor.stop(None);
    join.await.expect("join");
    took
}

pub async fn fanout(k: usize, n: u64) -> Duration {
    let mut actors = Vec::with_capacity(k);
    for _ in 0..k {
        actors.push(Actor::spawn(None, Counter, ()).await.expect("spawn"));
    }
    let start = Instant::now();
    for i in 0..n {
        actors[(i % k as u64) as usize]
            .0
            .cast(CounterMsg::Tick)
            .expect("running");
    }
    let mut counts = Vec::with_capacity(k);
    for (actor, _) in &actors {
        counts.push(take(actor).await);
    }
    let took = start.elapsed();
    check_fanout("ractor fanout", &counts);
    for (actor, join) in actors {
        actor.stop(None);
        join.await.expect("join");
    }
    took
}

/// A tree node: `spawn_linked`s its children in `pre_start` (each spawn returns once that
/// child's `pre_start`, so its subtree, is done); in `post_stop` stops them and waits for them.
struct Node;
impl Actor for Node {
    type Msg = ();
    type State = Arc<Tally>;
    type Arguments = (u32, Arc<Tally>);
    async fn pre_start(
        &self,
        myself: ActorRef<()>,
        (depth, tally): (u32, Arc<Tally>),
    ) -> Result<Arc<Tally>, ActorProcessingErr> {
        if depth < TREE_DEPTH {
            for _ in 0..TREE_BRANCH {
                Actor::spawn_linked(None, Node, (depth + 1, tally.clone()), myself.get_cell())
                    .await?;
            }
        }
        tally.start();
        Ok(tally)
    }
    async fn post_stop(
        &self,
        myself: ActorRef<()>,
        tally: &mut Arc<Tally>,
    ) -> Result<(), ActorProcessingErr> {
        myself.stop_children_and_wait(None, Some(LIMIT)).await;
        tally.end();
        Ok(())
    }
}

pub async fn tree(nodes: usize) -> Duration {
    let tally = Arc::new(Tally::new(nodes));
    let start = Instant::now();
    let (root, join) = Actor::spawn(None, Node, (0, tally.clone()))
        .await
        .expect("spawn");
    tally.wait_started().await;
    root.stop(None);
    tally.wait_ended().await;
    join.await.expect("join");
    let took = start.elapsed();
    tally.check("ractor tree", true);
    took
}

struct Resting;
impl Actor for Resting {
    type Msg = ();
    type State = Arc<Tally>;
    type Arguments = Arc<Tally>;
    async fn pre_start(
        &self,
        _: ActorRef<()>,
        tally: Arc<Tally>,
    ) -> Result<Arc<Tally>, ActorProcessingErr> {
        tally.start();
        Ok(tally)
    }
}

/// RSS growth in bytes for `k` idle actors (unbounded mailbox: ractor has no bound; the refs kept).
pub async fn idle(k: usize) -> f64 {
    let tally = Arc::new(Tally::new(k));
    let mut held = Vec::with_capacity(k);
    let before = rss_bytes();
    for _ in 0..k {
        let (actor, _join) = Actor::spawn(None, Resting, tally.clone())
            .await
            .expect("spawn");
        held.push(actor);
    }
    tally.wait_started().await;
    let after = rss_bytes();
    tally.check("ractor idle", false);
    assert_eq!(held.len(), k);
    growth(before, after)
}
