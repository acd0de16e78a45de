//! Pools through the public API: each routing strategy's distribution (round-robin's exact
//! cycle, also under concurrent producers; least-loaded against a gated replica; keys that
//! stick and spread), restarts in place with nothing lost but the poison, replicas stopped
//! for good skipped, tells to a restarting replica kept, asks, try_tell, broadcast, the pool's
//! stop and restart intensity, the pool in the registry's graph and under a supervisor, and
//! the builder's typed errors.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use modo::pool::{Pool, PoolBuilder, PoolError, PoolRouter, Routing};
use modo::prelude::*;
use modo::supervisor::{Backoff, Strategy, Supervisor};
use tokio::sync::{oneshot, watch};

// ----- the replica ---------------------------------------------------------------------------

/// What each replica handled, by replica index; shared by every instance the factory makes,
/// so it survives restarts.
#[derive(Clone)]
struct Record(Arc<Vec<Mutex<Vec<u64>>>>);

impl Record {
    fn new(n: usize) -> Self {
        Record(Arc::new((0..n).map(|_| Mutex::new(Vec::new())).collect()))
    }
    fn push(&self, replica: usize, value: u64) {
        self.0[replica].lock().unwrap().push(value);
    }
    fn of(&self, replica: usize) -> Vec<u64> {
        self.0[replica].lock().unwrap().clone()
    }
    fn all(&self) -> Vec<Vec<u64>> {
        (0..self.0.len()).map(|i| self.of(i)).collect()
    }
    fn counts(&self) -> Vec<usize> {
        self.all().iter().map(Vec::len).collect()
    }
}

struct Worker {
    index: usize,
    record: Record,
}

impl Service for Worker {
    fn label(&self) -> std::borrow::Cow<'static, str> {
        format!("Worker#{}", self.index).into()
    }
}

/// Recorded by the replica that handles it.
struct Item(u64);
/// Recorded, except every 100th (`n % 100 == 99`), whose handler panics.
struct Job(u64);
/// Panics.
struct Poison;
/// Replies with the replica's index.
#[derive(Clone)]
struct Which;
/// Replies `n + 1`.
struct Echo(u64);
/// Replies once everything queued before it was handled.
#[derive(Clone)]
struct Flush;
/// Recorded; cloned by broadcast.
#[derive(Clone)]
struct Hello(u64);
/// Holds the replica in its handler until the gate opens; says when it has entered.
struct Hold {
    gate: watch::Receiver<bool>,
    entered: oneshot::Sender<()>,
}

impl Handler<Item> for Worker {
    type Reply = ();
    async fn handle(&mut self, Item(n): Item, _: &mut Context<Self>) {
        self.record.push(self.index, n);
    }
}

impl Handler<Job> for Worker {
    type Reply = ();
    async fn handle(&mut self, Job(n): Job, _: &mut Context<Self>) {
        if n % 100 == 99 {
            panic!("poison job {n}");
        }
        self.record.push(self.index, n);
    }
}

impl Handler<Poison> for Worker {
    type Reply = ();
    async fn handle(&mut self, _: Poison, _: &mut Context<Self>) {
        panic!("poisoned");
    }
}

impl Handler<Which> for Worker {
    type Reply = usize;
    async fn handle(&mut self, _: Which, _: &mut Context<Self>) -> usize {
        self.index
    }
}

impl Handler<Echo> for Worker {
    type Reply = u64;
    async fn handle(&mut self, Echo(n): Echo, _: &mut Context<Self>) -> u64 {
        n + 1
    }
}

impl Handler<Flush> for Worker {
    type Reply = ();
    async fn handle(&mut self, _: Flush, _: &mut Context<Self>) {}
}

impl Handler<Hello> for Worker {
    type Reply = ();
    async fn handle(&mut self, Hello(n): Hello, _: &mut Context<Self>) {
        self.record.push(self.index, n);
    }
}

impl Handler<Hold> for Worker {
    type Reply = ();
    async fn handle(&mut self, mut hold: Hold, _: &mut Context<Self>) {
        let _ = hold.entered.send(());
        let _ = hold.gate.wait_for(|open| *open).await;
    }
}

// ----- helpers -------------------------------------------------------------------------------

/// Bounds a wait: a bug fails the test instead of hanging it (under paused time the clock
/// jumps ahead when everything is idle, so this costs nothing).
async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), fut)
        .await
        .expect("waited too long")
}

fn builder(n: usize, record: &Record) -> PoolBuilder<Worker> {
    let record = record.clone();
    Pool::builder(n, move |index| Worker {
        index,
        record: record.clone(),
    })
}

async fn spawn_pool(
    system: &System,
    n: usize,
    configure: impl FnOnce(PoolBuilder<Worker>) -> PoolBuilder<Worker>,
) -> (Pool<Worker>, Record) {
    let record = Record::new(n);
    let pool = configure(builder(n, &record))
        .spawn(system)
        .await
        .expect("pool spawned");
    (pool, record)
}

/// Waits until every live replica has handled everything queued before this call.
async fn flush(pool: &Pool<Worker>) {
    for (i, r) in within(pool.ask_all(Flush)).await.into_iter().enumerate() {
        if !pool.replicas()[i].is_terminated() {
            r.expect("flushed");
        }
    }
}

/// A gate that holds replicas in a handler until it opens.
struct Gate(watch::Sender<bool>);

impl Gate {
    fn new() -> Self {
        Gate(watch::channel(false).0)
    }

    /// Returns once `replica` is inside the held handler (its mailbox then counts only what
    /// comes after).
    async fn hold(&self, replica: &Addr<Worker>) {
        let (entered, inside) = oneshot::channel();
        replica
            .tell(Hold {
                gate: self.0.subscribe(),
                entered,
            })
            .await
            .expect("replica running");
        within(inside).await.expect("entered the handler");
    }

    fn open(&self) {
        self.0.send_replace(true);
    }
}

fn lens(pool: &Pool<Worker>) -> Vec<usize> {
    pool.replicas().iter().map(|r| r.mailbox_len()).collect()
}

// ----- round-robin ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn round_robin_cycles_exactly() {
    let system = System::new();
    let (pool, record) = spawn_pool(&system, 4, |b| b).await;
    assert_eq!(pool.routing(), Routing::RoundRobin);
    for n in 0..40 {
        pool.tell(Item(n)).await.unwrap();
    }
    flush(&pool).await;
    for k in 0..4u64 {
        let expected: Vec<u64> = (0..10).map(|j| k + 4 * j).collect();
        assert_eq!(record.of(k as usize), expected, "replica {k}");
    }
    // Asks take their turns in the same cycle (40 sends so far: replica 0 is next).
    let mut order = Vec::new();
    for _ in 0..8 {
        order.push(pool.ask(Which).await.unwrap());
    }
    assert_eq!(order, [0, 1, 2, 3, 0, 1, 2, 3]);
    system.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_is_exact_under_concurrent_producers() {
    let system = System::new();
    let (pool, record) = spawn_pool(&system, 4, |b| b).await;
    let producers: Vec<_> = (0..4u64)
        .map(|p| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for n in 0..1_000 {
                    pool.tell(Item(p * 1_000 + n)).await.unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        within(p).await.unwrap();
    }
    flush(&pool).await;
    // Every send took a distinct turn: 4,000 turns over 4 replicas is 1,000 each, whatever
    // the interleaving; and each message was handled exactly once.
    assert_eq!(record.counts(), [1_000; 4]);
    let all: BTreeSet<u64> = record.all().into_iter().flatten().collect();
    assert_eq!(all.len(), 4_000);
    system.shutdown().await.unwrap();
}

// ----- least-loaded --------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn least_loaded_avoids_the_longest_mailbox() {
    let system = System::new();
    let (pool, record) = spawn_pool(&system, 4, |b| b.routing(Routing::LeastLoaded)).await;
    let gate = Gate::new();
    let slow = &pool.replicas()[0];
    gate.hold(slow).await;
    for n in 0..9 {
        slow.tell(Item(1_000 + n)).await.unwrap();
    }
    assert_eq!(lens(&pool), [9, 0, 0, 0]);

    // Sent without yielding, so nobody handles anything meanwhile: the three short mailboxes
    // fill up to the slow one's length, and the slow one gets nothing.
    for n in 0..27 {
        pool.tell(Item(n)).await.unwrap();
    }
    assert_eq!(lens(&pool), [9, 9, 9, 9]);

    // The fast replicas drain; sends with pauses between them keep avoiding the slow one.
    for r in &pool.replicas()[1..] {
        within(r.ask(Flush)).await.unwrap();
    }
    for n in 27..60 {
        pool.tell(Item(n)).await.unwrap();
        tokio::task::yield_now().await;
    }
    assert_eq!(slow.mailbox_len(), 9);

    gate.open();
    flush(&pool).await;
    assert_eq!(record.of(0), (1_000..1_009).collect::<Vec<_>>());
    let fast: BTreeSet<u64> = (1..4).flat_map(|i| record.of(i)).collect();
    assert_eq!(fast, (0..60).collect());
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn least_loaded_shares_ties_evenly() {
    let system = System::new();
    let (pool, record) = spawn_pool(&system, 4, |b| b.routing(Routing::LeastLoaded)).await;
    // Every replica idle at every send (each send handled before the next): all ties, and
    // the ties go round.
    for n in 0..100 {
        pool.tell(Item(n)).await.unwrap();
        flush(&pool).await;
        assert_eq!(pool.queued(), 0);
    }
    assert_eq!(record.counts(), [25; 4]);
    // Nobody handles anything until the end: the shortest mailbox always takes the next.
    for n in 0..400 {
        pool.tell(Item(n)).await.unwrap();
    }
    assert_eq!(lens(&pool), [100; 4]);
    flush(&pool).await;
    assert_eq!(record.counts(), [125; 4]);
    system.shutdown().await.unwrap();
}

// ----- keys ----------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_key_always_reaches_the_same_replica_and_keys_spread() {
    let system = System::new();
    let (pool, record) = spawn_pool(&system, 4, |b| b).await;
    for round in 0..2 {
        for key in 0..1_000u64 {
            pool.tell_keyed(&key, Item(key)).await.unwrap();
        }
        if round == 0 {
            // A restart in place moves no key.
            pool.replicas()[1].tell(Poison).await.unwrap();
        }
    }
    flush(&pool).await;
    let mut owner = BTreeMap::new();
    for (replica, seen) in record.all().iter().enumerate() {
        for key in seen {
            let first = *owner.entry(*key).or_insert(replica);
            assert_eq!(first, replica, "key {key} reached two replicas");
        }
    }
    assert_eq!(owner.len(), 1_000);
    assert_eq!(record.all().iter().map(Vec::len).sum::<usize>(), 2_000);
    for (key, replica) in &owner {
        assert_eq!(pool.index_for_key(key), Some(*replica));
    }
    // 250 each if perfectly even; the ring keeps every replica's share within 40%.
    let counts = record.counts();
    assert!(
        counts.iter().all(|&c| (2 * 150..=2 * 350).contains(&c)),
        "keys spread unevenly: {counts:?}"
    );
    assert_eq!(pool.replicas()[1].restart_count(), 1);
    // Asks and string keys go by the same ring.
    for key in ["alice", "bob", "carol"] {
        let index = pool.index_for_key(key).unwrap();
        assert_eq!(pool.ask_keyed(key, Which).await.unwrap(), index);
        assert_eq!(
            pool.replica_for_key(key).unwrap().ask(Which).await.unwrap(),
            index
        );
    }
    system.shutdown().await.unwrap();
}

// ----- crashes and restarts ------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_panicking_replica_is_restarted_in_place_and_nothing_else_is_lost() {
    let system = System::new();
    let (pool, record) = spawn_pool(&system, 4, |b| b).await;
    let ids: Vec<_> = pool.replicas().iter().map(|r| r.id()).collect();
    for n in 0..1_000 {
        pool.tell(Job(n)).await.unwrap();
    }
    flush(&pool).await;
    let handled: Vec<u64> = record.all().into_iter().flatten().collect();
    let unique: BTreeSet<u64> = handled.iter().copied().collect();
    let expected: BTreeSet<u64> = (0..1_000).filter(|n| n % 100 != 99).collect();
    assert_eq!(handled.len(), 990, "sent 1,000, 10 poisoned");
    assert_eq!(unique, expected, "each one handled once");
    let restarts: u32 = pool.replicas().iter().map(|r| r.restart_count()).sum();
    assert_eq!(restarts, 10);
    assert_eq!(
        pool.replicas().iter().map(|r| r.id()).collect::<Vec<_>>(),
        ids,
        "same replicas, restarted in place"
    );
    assert!(pool.replicas().iter().all(|r| r.dead_letters() == 0));
    assert_eq!(pool.live(), 4);
    assert_eq!(pool.state(), ServiceState::Running);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_tell_to_a_restarting_replica_waits_in_its_mailbox() {
    let system = System::new();
    let (pool, record) = spawn_pool(&system, 2, |b| {
        b.backoff(Backoff::Fixed(Duration::from_secs(1)))
    })
    .await;
    let down = &pool.replicas()[0];
    down.tell(Poison).await.unwrap();
    within(down.wait_until(|r| r.is_crashed())).await;

    // A key of the crashed replica is queued there, not moved.
    let key = (0..u64::MAX)
        .find(|k| pool.index_for_key(k) == Some(0))
        .unwrap();
    pool.tell_keyed(&key, Item(key)).await.unwrap();
    assert_eq!(down.mailbox_len(), 1);
    // Unkeyed traffic routes around it while it waits for its backoff.
    for n in 0..4 {
        pool.tell(Item(n)).await.unwrap();
    }
    assert_eq!(down.mailbox_len(), 1);

    tokio::time::advance(Duration::from_secs(1)).await;
    within(down.wait_until(|r| r.restart_count() == 1 && r.is_started())).await;
    flush(&pool).await;
    assert_eq!(record.of(0), [key]);
    assert_eq!(record.of(1), [0, 1, 2, 3]);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_replica_stopped_for_good_is_skipped_and_moves_only_its_keys() {
    let system = System::new();
    let (pool, record) = spawn_pool(&system, 4, |b| b.strategy(Strategy::ForfeitOneForOne)).await;
    let before: Vec<usize> = (0..1_000u64)
        .map(|k| pool.index_for_key(&k).unwrap())
        .collect();
    let gone = &pool.replicas()[2];
    gone.tell(Poison).await.unwrap();
    within(gone.wait_until(|r| r.is_terminated())).await;
    assert_eq!(pool.live(), 3);

    for n in 0..30 {
        pool.tell(Item(n)).await.unwrap();
    }
    for key in 0..1_000u64 {
        let now = pool.index_for_key(&key).unwrap();
        let was = before[key as usize];
        if was == 2 {
            assert_ne!(now, 2, "key {key} still on the gone replica");
        } else {
            assert_eq!(now, was, "key {key} moved though its replica lives");
        }
    }
    flush(&pool).await;
    assert_eq!(record.of(2), Vec::<u64>::new());
    assert_eq!(record.counts().iter().sum::<usize>(), 30, "none lost");
    assert_eq!(record.counts(), [10, 10, 0, 10]);

    // Only when no replica is left do sends fail, with the message handed back.
    for r in pool.replicas() {
        if !r.is_terminated() {
            r.tell(Poison).await.unwrap();
            within(r.wait_until(|r| r.is_terminated())).await;
        }
    }
    assert_eq!(pool.live(), 0);
    assert_eq!(
        pool.state(),
        ServiceState::Running,
        "the pool itself runs on"
    );
    let err = pool.tell(Item(7)).await.unwrap_err();
    assert_eq!(err.into_inner().0, 7);
    assert!(pool.try_tell(Item(8)).unwrap_err().is_stopped());
    assert!(pool.ask(Which).await.unwrap_err().is_stopped());
    assert!(pool.tell_keyed(&1u8, Item(9)).await.is_err());
    assert!(pool.index_for_key(&1u8).is_none());
    system.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tell_is_lost_while_replicas_go_away() {
    let system = System::new();
    let (pool, record) = spawn_pool(&system, 4, |b| b.strategy(Strategy::ForfeitOneForOne)).await;
    let producers: Vec<_> = (0..4u64)
        .map(|p| {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut refused = 0u64;
                for n in 0..2_000 {
                    let value = p * 2_000 + n;
                    if let Err(e) = pool.tell(Item(value)).await {
                        assert_eq!(e.into_inner().0, value, "the message comes back");
                        assert_eq!(pool.live(), 0, "refused while a replica was left");
                        refused += 1;
                    }
                    if n % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                refused
            })
        })
        .collect();
    // Meanwhile the replicas go away one by one, for good.
    let killer = {
        let pool = pool.clone();
        tokio::spawn(async move {
            for r in pool.replicas() {
                tokio::task::yield_now().await;
                r.tell(Poison).await.unwrap();
                r.wait_until(|r| r.is_terminated()).await;
            }
        })
    };
    let mut refused = 0;
    for p in producers {
        refused += within(p).await.unwrap();
    }
    within(killer).await.unwrap();
    // Every replica has stopped for good, so each message is settled: handled, handed back
    // to its sender, or counted as a dead letter when its replica stopped. None vanished,
    // none was handled twice.
    let handled: Vec<u64> = record.all().into_iter().flatten().collect();
    let unique: BTreeSet<u64> = handled.iter().copied().collect();
    assert_eq!(unique.len(), handled.len());
    let dead: u64 = pool.replicas().iter().map(|r| r.dead_letters()).sum();
    assert_eq!(handled.len() as u64 + refused + dead, 8_000);
    assert_eq!(pool.live(), 0);
    system.shutdown().await.unwrap();
}

// ----- asks ----------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn ask_through_the_pool() {
    let system = System::new();
    let (pool, _) = spawn_pool(&system, 2, |b| b).await;
    assert_eq!(pool.ask(Echo(1)).await.unwrap(), 2);
    // A panicking handler fails its ask; the pool keeps serving.
    let err = pool.ask(Poison).await.unwrap_err();
    assert!(err.is_crashed(), "{err}");
    for n in 0..10 {
        assert_eq!(pool.ask(Echo(n)).await.unwrap(), n + 1);
    }
    within(pool.replicas()[1].wait_until(|r| r.restart_count() == 1 && r.is_started())).await;
    // Of two asks in a row, one reaches the held replica and times out, the other answers.
    let gate = Gate::new();
    gate.hold(&pool.replicas()[0]).await;
    let mut timeouts = 0;
    for n in 0..2 {
        match pool.ask_timeout(Echo(n), Duration::from_millis(50)).await {
            Ok(reply) => assert_eq!(reply, n + 1),
            Err(e) => {
                assert!(e.is_timeout(), "{e}");
                timeouts += 1;
            }
        }
    }
    assert_eq!(timeouts, 1);
    let key = (0..u64::MAX)
        .find(|k| pool.index_for_key(k) == Some(0))
        .unwrap();
    let err = pool
        .ask_keyed_timeout(&key, Echo(0), Duration::from_millis(50))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    gate.open();
    system.shutdown().await.unwrap();
}

// ----- try_tell and broadcast ----------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn try_tell_finds_room_or_hands_the_message_back() {
    let system = System::new();
    let (pool, record) = spawn_pool(&system, 2, |b| b.mailbox_capacity(1)).await;
    let gate = Gate::new();
    for r in pool.replicas() {
        gate.hold(r).await;
    }
    pool.replicas()[0].try_tell(Item(100)).unwrap();
    // Round-robin's turn is replica 0, which is full: the message goes to replica 1.
    pool.try_tell(Item(1)).unwrap();
    assert_eq!(lens(&pool), [1, 1]);
    let err = pool.try_tell(Item(2)).unwrap_err();
    assert!(err.is_full());
    assert_eq!(err.label(), "Pool<Worker>");
    assert_eq!(err.into_inner().0, 2);
    let err = pool.try_tell_keyed(&"k", Item(3)).unwrap_err();
    assert!(err.is_full());
    gate.open();
    flush(&pool).await;
    assert_eq!(record.all(), [vec![100], vec![1]]);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn broadcast_reaches_every_replica() {
    let system = System::new();
    let (pool, record) = spawn_pool(&system, 3, |b| b).await;
    assert_eq!(pool.broadcast(Hello(7)).await.unwrap(), 3);
    let answers: Vec<usize> = pool
        .ask_all(Which)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(answers, [0, 1, 2]);
    assert_eq!(record.all(), [vec![7], vec![7], vec![7]]);
    system.shutdown().await.unwrap();
}

// ----- the pool's lifecycle ------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn stopping_the_pool_stops_every_replica_and_later_sends_fail() {
    let system = System::new();
    let (pool, _) = spawn_pool(&system, 3, |b| b).await;
    let clone = pool.clone();
    pool.stop().await.unwrap();
    assert!(pool.is_terminated());
    assert!(pool.replicas().iter().all(|r| r.is_terminated()));
    assert_eq!(pool.state(), ServiceState::Shutdown);

    let err = clone.tell(Item(42)).await.unwrap_err();
    assert_eq!(err.label(), "Pool<Worker>");
    assert_eq!(err.into_inner().0, 42);
    let err = clone.try_tell(Item(43)).unwrap_err();
    assert!(err.is_stopped());
    assert_eq!(err.into_inner().0, 43);
    assert!(clone.ask(Which).await.unwrap_err().is_stopped());
    assert!(clone.ask_keyed(&1, Which).await.unwrap_err().is_stopped());
    assert_eq!(
        clone.broadcast(Hello(1)).await.unwrap_err().into_inner().0,
        1
    );
    assert!(
        clone
            .ask_all(Which)
            .await
            .iter()
            .all(|r| r.as_ref().unwrap_err().is_stopped())
    );
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_pool_past_its_restart_intensity_stops_and_sends_fail() {
    let system = System::new();
    let (pool, _) = spawn_pool(&system, 3, |b| {
        b.max_restarts(2).over(Duration::from_secs(10))
    })
    .await;
    for r in pool.replicas() {
        r.tell(Poison).await.unwrap();
    }
    within(pool.wait_until_stopped()).await;
    within(pool.supervisor().wait_until(|s| s.is_terminated())).await;
    assert!(matches!(
        pool.supervisor().crash_reason(),
        Some(CrashReason::Error(ref e))
            if matches!(e.downcast_ref::<Error>(), Some(Error::MaxRestartsExceeded { .. }))
    ));
    assert!(pool.replicas().iter().all(|r| r.is_terminated()));
    assert_eq!(pool.tell(Item(5)).await.unwrap_err().into_inner().0, 5);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_pool_under_a_supervisor_is_restarted_with_its_replicas_in_place() {
    let system = System::new();
    let outer = system
        .spawn(Supervisor::builder().label("App").build())
        .await
        .unwrap();
    let record = Record::new(2);
    let pool = builder(2, &record)
        .max_restarts(1)
        .over(Duration::from_secs(10))
        .spawn_under(&outer)
        .await
        .unwrap();
    let ids: Vec<_> = pool.replicas().iter().map(|r| r.id()).collect();
    // Two crashes exceed the pool's intensity: it crashes, and App restarts it.
    for r in pool.replicas() {
        r.tell(Poison).await.unwrap();
    }
    within(
        pool.supervisor()
            .wait_until(|s| s.restart_count() == 1 && s.is_started()),
    )
    .await;
    assert!(pool.replicas().iter().all(|r| r.is_started()));
    assert_eq!(
        pool.replicas().iter().map(|r| r.id()).collect::<Vec<_>>(),
        ids
    );
    // The same handle keeps working.
    let mut seen = BTreeSet::new();
    for _ in 0..4 {
        seen.insert(pool.ask(Which).await.unwrap());
    }
    assert_eq!(seen, BTreeSet::from([0, 1]));

    // The graph: App, then the pool, then its replicas.
    let graph = system.registry().graph().await;
    assert_eq!(
        graph.path(pool.replicas()[1].id()),
        ["App", "Pool<Worker>", "Worker#1"]
    );

    // Transient under its parent: a stop ends it for good.
    pool.stop().await.unwrap();
    assert!(pool.replicas().iter().all(|r| r.is_terminated()));
    assert!(within(outer.children()).await.unwrap().is_empty());
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_pool_and_its_replicas_are_in_the_graph() {
    let system = System::new();
    let (pool, _) = spawn_pool(&system, 3, |b| b).await;
    let (named, _) = spawn_pool(&system, 2, |b| b.label("Shards")).await;
    let graph = system.registry().graph().await;

    let node = graph.node(pool.id()).expect("the pool is a node");
    assert_eq!(node.label, "Pool<Worker>");
    assert_eq!(node.parent, None);
    assert_eq!(node.state, ServiceState::Running);
    let children: Vec<_> = graph
        .children(pool.id())
        .iter()
        .map(|n| (n.id, n.label.clone()))
        .collect();
    let expected: Vec<_> = pool
        .replicas()
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id(), format!("Worker#{i}")))
        .collect();
    assert_eq!(children, expected);
    assert_eq!(graph.node(named.id()).unwrap().label, "Shards");
    assert_eq!(graph.children(named.id()).len(), 2);
    system.shutdown().await.unwrap();
}

// ----- building ------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn building_rejects_bad_input_with_typed_errors() {
    let record = Record::new(1);
    assert!(matches!(
        builder(0, &record).build(),
        Err(PoolError::NoReplicas)
    ));
    assert!(matches!(
        builder(1, &record).virtual_nodes(0).build(),
        Err(PoolError::VirtualNodes { given: 0, .. })
    ));
    assert!(matches!(
        builder(1, &record).virtual_nodes(1_000_000).build(),
        Err(PoolError::VirtualNodes { .. })
    ));

    let system = System::new();
    // A router attached to a supervisor that is not its pool's.
    let (_, router): (_, PoolRouter<Worker>) = builder(3, &Record::new(3)).build().unwrap();
    let (sup, _) = builder(2, &Record::new(2)).build().unwrap();
    let sup = system.spawn(sup).await.unwrap();
    match router.attach(&sup).await {
        Err(PoolError::ReplicaMismatch {
            expected, found, ..
        }) => assert_eq!((expected, found), (3, 2)),
        other => panic!("unexpected {other:?}"),
    }
    // ... or to one that has stopped.
    let (_, router): (_, PoolRouter<Worker>) = builder(2, &Record::new(2)).build().unwrap();
    sup.stop().await.unwrap();
    assert!(matches!(
        router.attach(&sup).await,
        Err(PoolError::Service(Error::Stopped { .. }))
    ));
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_fails_to_start_fails_the_spawn() {
    struct Broken;
    impl Service for Broken {
        async fn on_start(&mut self, _: &mut Context<Self>) -> HookResult {
            Err("no disk".into())
        }
    }
    let system = System::new();
    let err = Pool::builder(2, |_| Broken)
        .spawn(&system)
        .await
        .unwrap_err();
    assert!(matches!(err, PoolError::Service(_)), "{err}");
    assert!(system.roots().iter().all(|r| !r.is_started()));
    system.shutdown().await.unwrap();
}

#[test]
fn handles_are_send_sync_and_clone() {
    fn send_sync_clone<T: Send + Sync + Clone>() {}
    fn send_sync<T: Send + Sync>() {}
    send_sync_clone::<Pool<Worker>>();
    send_sync::<PoolBuilder<Worker>>();
    send_sync::<PoolRouter<Worker>>();
    send_sync::<PoolError>();
}
