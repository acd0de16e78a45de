//! modo beside raw flume, ractor, kameo and actix: the same four workloads in one process,
//! repetitions interleaved (for rep { for workload { for flavour { for system { run } } } }),
//! medians printed as a Markdown table with each system's ratio to raw flume and to modo.
//!
//! Workloads (each measured from inside the runtime, setup and teardown outside the clock
//! unless said):
//! 1. `tell`: 1 producer, `TELL_N` messages to one counting actor, then one ask/call that
//!    returns the count (checked). Bounded mailbox of 1024 where the system has one: modo,
//!    flume and kameo are bounded (the producer waits when full); ractor's mailbox is
//!    unbounded (`cast` never waits); actix's `do_send` ignores the mailbox capacity.
//! 2. `ask`: `ASK_N` sequential round trips to one server.
//! 3. `spawn_stop`: `SPAWN_K` actors spawned one after the other, then stopped one after the
//!    other, each stop awaited until the actor has ended.
//! 4. `restart`: `RESTART_N` restarts of a child that panics on every message. modo: a
//!    `Supervisor` (OneForOne), the child's address stays valid, `RESTART_N` poison messages
//!    queued on it. kameo: `supervise` under a OneForOne supervisor (the restarted child keeps
//!    its mailbox), driven lock-step: one poison, then wait for the restarted instance's
//!    `on_start` (with all poisons queued at once kameo 0.22.2 stalled in every run; a run
//!    that stalls for 2 s is excluded and counted in the table). ractor: a linked supervisor re-spawns the child
//!    (`spawn_linked`) on each `ActorFailed` and sends the new child its poison (ractor has no
//!    built-in restart). actix: n/a (no panic restart). Floor: a task with its own flume
//!    channel that panics on its message and is spawned again, its panic caught via its
//!    `JoinHandle`. A silent panic hook is installed around this workload only.
//!
//! Runtimes: `mt2` (tokio multi-thread, 2 workers) and `ct` (tokio current-thread). actix runs
//! in its own `actix_rt::System`, built per run: for `ct` `System::new()`, for `mt2`
//! `System::with_tokio_rt` over a 2-worker runtime (actix still runs every actor on the
//! thread that drives the System).
//!
//! Run: `cd benches/peers && cargo run --release` (`MODO_PEERS_REPS=N` for N measured
//! repetitions, default 15, after one discarded warm-up repetition; `MODO_PEERS_ONLY=<workload
//! or system name>` to run a subset, `MODO_PEERS_VERBOSE=1` to log each run,
//! `MODO_PEERS_LOUD=1` to keep the default panic hook in the restart workload).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Runtime};
use tokio::sync::{Notify, oneshot};

const CAPACITY: usize = 1024;
const TELL_N: u64 = 1_000_000;
const ASK_N: u64 = 100_000;
const SPAWN_K: usize = 10_000;
const RESTART_N: u32 = 10_000;

// ===== raw flume (the floor) ==================================================================

mod floor {
    use super::*;

    type CountMsg = Option<oneshot::Sender<u64>>;

    pub async fn tell(n: u64) -> Duration {
        let (tx, rx) = flume::bounded::<CountMsg>(CAPACITY);
        tokio::spawn(async move {
            let mut count = 0u64;
            while let Ok(msg) = rx.recv_async().await {
                match msg {
                    None => count += 1,
                    Some(reply) => {
                        let _ = reply.send(std::mem::take(&mut count));
                    }
                }
            }
        });
        let start = Instant::now();
        for _ in 0..n {
            tx.send_async(None).await.expect("consumer");
        }
        let (reply, counted) = oneshot::channel();
        tx.send_async(Some(reply)).await.expect("consumer");
        assert_eq!(counted.await.expect("reply"), n);
        start.elapsed()
    }

    pub async fn ask(n: u64) -> Duration {
        let (tx, rx) = flume::bounded::<(u64, oneshot::Sender<u64>)>(CAPACITY);
        tokio::spawn(async move {
            while let Ok((x, reply)) = rx.recv_async().await {
                let _ = reply.send(x + 1);
            }
        });
        let start = Instant::now();
        for i in 0..n {
            let (reply, answer) = oneshot::channel();
            tx.send_async((i, reply)).await.expect("server");
            assert_eq!(answer.await.expect("reply"), i + 1);
        }
        start.elapsed()
    }

    pub async fn spawn_stop(k: usize) -> Duration {
        let start = Instant::now();
        let mut tasks = Vec::with_capacity(k);
        for _ in 0..k {
            let (tx, rx) = flume::bounded::<bool>(CAPACITY);
            let task = tokio::spawn(async move {
                while let Ok(stop) = rx.recv_async().await {
                    if stop {
                        break;
                    }
                }
            });
            tasks.push((tx, task));
        }
        for (tx, task) in tasks {
            tx.send_async(true).await.expect("task");
            task.await.expect("task ended");
        }
        start.elapsed()
    }

    pub async fn restart(n: u32) -> Duration {
        let start = Instant::now();
        for _ in 0..n {
            let (tx, rx) = flume::bounded::<()>(CAPACITY);
            let task = tokio::spawn(async move {
                if rx.recv_async().await.is_ok() {
                    panic!("poison");
                }
            });
            tx.send_async(()).await.expect("sent");
            assert!(task.await.is_err());
        }
        start.elapsed()
    }
}

// ===== modo ===================================================================================

mod with_modo {
    use super::*;
    use modo::supervisor::Supervisor;
    use modo::{Context, Handler, Service, System};

    #[derive(Default)]
    struct Counter {
        n: u64,
    }
    impl Service for Counter {}
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
}

// ===== ractor =================================================================================

mod with_ractor {
    use super::*;
    use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

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
        async fn pre_start(
            &self,
            _: ActorRef<CounterMsg>,
            _: (),
        ) -> Result<u64, ActorProcessingErr> {
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
        let counted = actor.call(CounterMsg::Take, None).await.expect("call");
        assert_eq!(counted.success_or(()).ok(), Some(n));
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
                    let (child, _) =
                        Actor::spawn_linked(None, Fragile, (), myself.get_cell()).await?;
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
}

// ===== kameo ==================================================================================

mod with_kameo {
    use super::*;
    use kameo::Actor;
    use kameo::actor::{ActorRef, Spawn};
    use kameo::error::Infallible;
    use kameo::message::{Context, Message};
    use kameo::supervision::SupervisionStrategy;

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
        let actor =
            Counter::spawn_with_mailbox(Counter::default(), kameo::mailbox::bounded(CAPACITY));
        actor.wait_for_startup().await;
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
        let actor =
            Counter::spawn_with_mailbox(Counter::default(), kameo::mailbox::bounded(CAPACITY));
        actor.wait_for_startup().await;
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
            let a = Idle::spawn_with_mailbox(Idle, kameo::mailbox::bounded(CAPACITY));
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
            .spawn_with_mailbox(kameo::mailbox::bounded(CAPACITY))
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
}

// ===== actix ==================================================================================

mod with_actix {
    use super::*;
    use actix::prelude::*;

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

    /// Runs `fut` in a fresh actix System: a current-thread one (`ct`) or one over a 2-worker
    /// tokio runtime (`mt2`).
    pub fn run<F: Future<Output = Duration>>(mt2: bool, fut: F) -> Duration {
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
}

// ===== the harness ============================================================================

#[derive(Clone, Copy, PartialEq)]
enum Sys {
    Flume,
    Modo,
    Ractor,
    Kameo,
    Actix,
}
const SYSTEMS: [Sys; 5] = [Sys::Flume, Sys::Modo, Sys::Ractor, Sys::Kameo, Sys::Actix];
impl Sys {
    fn name(self) -> &'static str {
        match self {
            Sys::Flume => "raw flume",
            Sys::Modo => "modo",
            Sys::Ractor => "ractor",
            Sys::Kameo => "kameo",
            Sys::Actix => "actix",
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Work {
    Tell,
    Ask,
    SpawnStop,
    Restart,
}
const WORKS: [Work; 4] = [Work::Tell, Work::Ask, Work::SpawnStop, Work::Restart];
impl Work {
    fn name(self) -> &'static str {
        match self {
            Work::Tell => "tell",
            Work::Ask => "ask",
            Work::SpawnStop => "spawn_stop",
            Work::Restart => "restart",
        }
    }
    fn units(self) -> f64 {
        match self {
            Work::Tell => TELL_N as f64,
            Work::Ask => ASK_N as f64,
            Work::SpawnStop => SPAWN_K as f64,
            Work::Restart => f64::from(RESTART_N),
        }
    }
    /// Throughput figures (higher is better) vs cost figures (lower is better).
    fn is_rate(self) -> bool {
        matches!(self, Work::Tell | Work::Restart)
    }
}

fn spawn_on<F>(rt: &Runtime, fut: F) -> Duration
where
    F: Future<Output = Duration> + Send + 'static,
{
    rt.block_on(rt.spawn(fut)).expect("benchmark task panicked")
}

/// One run of `work` on `sys` in flavour `fl` (0 = mt2, 1 = ct): seconds per unit, or `None`
/// where the system cannot do it.
fn run_one(sys: Sys, work: Work, fl: usize, rt: &Runtime) -> Option<f64> {
    let d = match (sys, work) {
        (Sys::Flume, Work::Tell) => spawn_on(rt, floor::tell(TELL_N)),
        (Sys::Flume, Work::Ask) => spawn_on(rt, floor::ask(ASK_N)),
        (Sys::Flume, Work::SpawnStop) => spawn_on(rt, floor::spawn_stop(SPAWN_K)),
        (Sys::Flume, Work::Restart) => spawn_on(rt, floor::restart(RESTART_N)),
        (Sys::Modo, Work::Tell) => spawn_on(rt, with_modo::tell(TELL_N)),
        (Sys::Modo, Work::Ask) => spawn_on(rt, with_modo::ask(ASK_N)),
        (Sys::Modo, Work::SpawnStop) => spawn_on(rt, with_modo::spawn_stop(SPAWN_K)),
        (Sys::Modo, Work::Restart) => spawn_on(rt, with_modo::restart(RESTART_N)),
        (Sys::Ractor, Work::Tell) => spawn_on(rt, with_ractor::tell(TELL_N)),
        (Sys::Ractor, Work::Ask) => spawn_on(rt, with_ractor::ask(ASK_N)),
        (Sys::Ractor, Work::SpawnStop) => spawn_on(rt, with_ractor::spawn_stop(SPAWN_K)),
        (Sys::Ractor, Work::Restart) => spawn_on(rt, with_ractor::restart(RESTART_N)),
        (Sys::Kameo, Work::Tell) => spawn_on(rt, with_kameo::tell(TELL_N)),
        (Sys::Kameo, Work::Ask) => spawn_on(rt, with_kameo::ask(ASK_N)),
        (Sys::Kameo, Work::SpawnStop) => spawn_on(rt, with_kameo::spawn_stop(SPAWN_K)),
        (Sys::Kameo, Work::Restart) => {
            match rt
                .block_on(rt.spawn(with_kameo::restart(RESTART_N)))
                .expect("kameo restart")
            {
                Some(d) => d,
                None => {
                    KAMEO_STALLS[fl].fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        (Sys::Actix, Work::Tell) => with_actix::run(fl == 0, with_actix::tell(TELL_N)),
        (Sys::Actix, Work::Ask) => with_actix::run(fl == 0, with_actix::ask(ASK_N)),
        (Sys::Actix, Work::SpawnStop) => with_actix::run(fl == 0, with_actix::spawn_stop(SPAWN_K)),
        (Sys::Actix, Work::Restart) => return None,
    };
    Some(d.as_secs_f64() / work.units())
}

/// kameo restart runs that stalled, per flavour (0 = mt2, 1 = ct), warm-up included.
static KAMEO_STALLS: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    }
}

fn figure(work: Work, secs_per_unit: f64) -> String {
    match work {
        Work::Tell => format!("{:.1} M msg/s", 1e-6 / secs_per_unit),
        Work::Ask => format!("{:.0} ns", secs_per_unit * 1e9),
        Work::SpawnStop => format!("{:.2} us/actor", secs_per_unit * 1e6),
        Work::Restart => format!("{:.0} k/s", 1e-3 / secs_per_unit),
    }
}

/// For rates: throughput ratio (this / reference, higher is better). For costs: time ratio
/// (this / reference, higher is slower).
fn ratio(work: Work, this: f64, reference: f64) -> String {
    let r = if work.is_rate() {
        reference / this
    } else {
        this / reference
    };
    format!("{r:.2}x")
}

fn main() {
    let reps: usize = std::env::var("MODO_PEERS_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let only = std::env::var("MODO_PEERS_ONLY").ok();
    let verbose = std::env::var_os("MODO_PEERS_VERBOSE").is_some();
    let mt2 = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("mt2");
    let ct = Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("ct");
    let flavours: [(&str, &Runtime); 2] = [("mt2", &mt2), ("ct", &ct)];

    let silent: Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send> = Box::new(|_| {});
    let mut silent = Some(silent);
    // samples[work][flavour][system]
    let mut samples = vec![vec![vec![Vec::<f64>::new(); SYSTEMS.len()]; 2]; WORKS.len()];
    let began = Instant::now();
    for rep in 0..=reps {
        for (wi, &work) in WORKS.iter().enumerate() {
            for (fi, (_, rt)) in flavours.iter().enumerate() {
                for (si, &sys) in SYSTEMS.iter().enumerate() {
                    if only
                        .as_deref()
                        .is_some_and(|o| o != work.name() && o != sys.name())
                    {
                        continue;
                    }
                    let hook = if work == Work::Restart {
                        let prev = std::panic::take_hook();
                        if std::env::var_os("MODO_PEERS_LOUD").is_none() {
                            std::panic::set_hook(silent.take().expect("hook"));
                        }
                        Some(prev)
                    } else {
                        None
                    };
                    if verbose {
                        eprintln!(
                            "rep {rep}: {} {} {}",
                            work.name(),
                            flavours[fi].0,
                            sys.name()
                        );
                    }
                    let r = run_one(sys, work, fi, rt);
                    if let Some(prev) = hook {
                        silent = Some(std::panic::take_hook());
                        std::panic::set_hook(prev);
                    }
                    // Repetition 0 is a warm-up, discarded.
                    if let (Some(x), true) = (r, rep > 0) {
                        samples[wi][fi][si].push(x);
                    }
                }
            }
        }
        eprintln!(
            "repetition {rep}/{reps} done at {:.1} s",
            began.elapsed().as_secs_f64()
        );
    }

    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "Median of {reps} interleaved repetitions (after 1 discarded warm-up), nproc {nproc}, \
         total {:.0} s. tell and restart: throughput ratio (higher is better); ask and \
         spawn_stop: time ratio (higher is slower).\n",
        began.elapsed().as_secs_f64()
    );
    println!("| workload | flavour | system | median | vs raw flume | vs modo |");
    println!("|---|---|---|---|---|---|");
    for (wi, &work) in WORKS.iter().enumerate() {
        for (fi, (fname, _)) in flavours.iter().enumerate() {
            let meds: Vec<Option<f64>> = samples[wi][fi]
                .iter_mut()
                .map(|xs| {
                    if xs.is_empty() {
                        None
                    } else {
                        Some(median(xs))
                    }
                })
                .collect();
            let label = match work {
                Work::Tell => format!("tell, 1 producer, {TELL_N} msgs"),
                Work::Ask => format!("ask round trip, {ASK_N} sequential"),
                Work::SpawnStop => format!("spawn+stop of {SPAWN_K} actors"),
                Work::Restart => format!("restarts/s, {RESTART_N} panics"),
            };
            for (si, &sys) in SYSTEMS.iter().enumerate() {
                match meds[si] {
                    Some(m) => println!(
                        "| {label} | {fname} | {} | {} | {} | {} |",
                        sys.name(),
                        figure(work, m),
                        meds[0].map_or("-".into(), |f| ratio(work, m, f)),
                        meds[1].map_or("-".into(), |o| ratio(work, m, o)),
                    ),
                    None => println!("| {label} | {fname} | {} | n/a | n/a | n/a |", sys.name()),
                }
                let stalls = KAMEO_STALLS[fi].load(Ordering::Relaxed);
                if work == Work::Restart && sys == Sys::Kameo && stalls > 0 {
                    println!(
                        "| {label} | {fname} | kameo: stalled runs | {stalls} of {} (excluded) | | |",
                        reps + 1
                    );
                }
            }
        }
    }
}
