//! Messaging: tell and ask with typed replies, mailbox capacity and backpressure, sends after a
//! stop, ask timeouts, control before user messages, self-deadlock guards, message order.

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use modo::prelude::*;
use modo::{DEFAULT_MAILBOX_CAPACITY, StopSignal, TrySendError};
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;

/// Polls `fut` once with the current task's waker: `Pending` means it would wait.
async fn poll_once<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

// ----- services -------------------------------------------------------------------------

/// A counter that answers several message types, each with its own reply type.
#[derive(Default)]
struct Counter {
    n: u64,
}

impl Service for Counter {}

struct Add(u64);
struct Get;
struct Describe;
struct Echo<T>(T);
/// Tries every awaiting operation on its own address from inside a handler.
struct Reentrant;
/// Asks the service to stop itself through its context.
struct StopMe;

impl Handler<Add> for Counter {
    type Reply = ();
    async fn handle(&mut self, msg: Add, _ctx: &mut Context<Self>) {
        self.n += msg.0;
    }
}

impl Handler<Get> for Counter {
    type Reply = u64;
    async fn handle(&mut self, _: Get, _ctx: &mut Context<Self>) -> u64 {
        self.n
    }
}

impl Handler<Describe> for Counter {
    type Reply = String;
    async fn handle(&mut self, _: Describe, ctx: &mut Context<Self>) -> String {
        format!("{} n={}", ctx.label(), self.n)
    }
}

impl<T: Send + 'static> Handler<Echo<T>> for Counter {
    type Reply = T;
    async fn handle(&mut self, msg: Echo<T>, _ctx: &mut Context<Self>) -> T {
        msg.0
    }
}

/// What each self-directed operation returned.
struct ReentrantReport {
    ask: Result<u64, Error>,
    ask_timeout: Result<u64, Error>,
    stop: Result<(), Error>,
    restart: Result<(), Error>,
    tell: bool,
}

impl Handler<Reentrant> for Counter {
    type Reply = ReentrantReport;
    async fn handle(&mut self, _: Reentrant, ctx: &mut Context<Self>) -> ReentrantReport {
        let me = ctx.myself().clone();
        ReentrantReport {
            ask: me.ask(Get).await,
            ask_timeout: me.ask_timeout(Get, Duration::from_secs(5)).await,
            stop: me.stop().await,
            restart: me.restart().await,
            // A tell to itself only queues: it cannot deadlock while there is room.
            tell: me.tell(Add(10)).await.is_ok(),
        }
    }
}

impl Handler<StopMe> for Counter {
    type Reply = ();
    async fn handle(&mut self, _: StopMe, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Shared handles on a [`Gated`] service: its `Work` handler announces itself on `entered`,
/// then waits for one permit of `gate`, then records its number in `handled`.
#[derive(Clone)]
struct Gate {
    entered: Arc<Notify>,
    gate: Arc<Semaphore>,
    handled: Arc<Mutex<Vec<u32>>>,
    stop_signal: Arc<Mutex<Option<StopSignal>>>,
}

impl Gate {
    fn new() -> Self {
        Gate {
            entered: Arc::new(Notify::new()),
            gate: Arc::new(Semaphore::new(0)),
            handled: Arc::new(Mutex::new(Vec::new())),
            stop_signal: Arc::new(Mutex::new(None)),
        }
    }

    fn handled(&self) -> Vec<u32> {
        self.handled.lock().unwrap().clone()
    }

    /// The stop signal of the service's current run (set in `on_start`).
    fn stop_signal(&self) -> StopSignal {
        self.stop_signal
            .lock()
            .unwrap()
            .clone()
            .expect("the service has started")
    }
}

struct Gated {
    gate: Gate,
    capacity: Option<usize>,
}

impl Gated {
    fn new(gate: &Gate) -> Self {
        Gated {
            gate: gate.clone(),
            capacity: None,
        }
    }

    fn with_capacity(gate: &Gate, capacity: usize) -> Self {
        Gated {
            gate: gate.clone(),
            capacity: Some(capacity),
        }
    }
}

impl Service for Gated {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        *self.gate.stop_signal.lock().unwrap() = Some(ctx.stop_signal());
        Ok(())
    }

    fn mailbox_capacity(&self) -> usize {
        self.capacity.unwrap_or(DEFAULT_MAILBOX_CAPACITY)
    }
}

struct Work(u32);
struct Handled;

impl Handler<Work> for Gated {
    type Reply = ();
    async fn handle(&mut self, msg: Work, _ctx: &mut Context<Self>) {
        self.gate.entered.notify_one();
        self.gate
            .gate
            .acquire()
            .await
            .expect("the gate is never closed")
            .forget();
        self.gate.handled.lock().unwrap().push(msg.0);
    }
}

impl Handler<Handled> for Gated {
    type Reply = Vec<u32>;
    async fn handle(&mut self, _: Handled, _ctx: &mut Context<Self>) -> Vec<u32> {
        self.gate.handled()
    }
}

/// Sleeps in its handler (tokio time, so paused time drives it).
#[derive(Default)]
struct Sleeper {
    done: u32,
}

impl Service for Sleeper {}

struct Slow(Duration);
struct Done;

impl Handler<Slow> for Sleeper {
    type Reply = u32;
    async fn handle(&mut self, msg: Slow, _ctx: &mut Context<Self>) -> u32 {
        tokio::time::sleep(msg.0).await;
        self.done += 1;
        self.done
    }
}

impl Handler<Done> for Sleeper {
    type Reply = u32;
    async fn handle(&mut self, _: Done, _ctx: &mut Context<Self>) -> u32 {
        self.done
    }
}

/// Records every message in arrival order.
#[derive(Default)]
struct Recorder {
    seen: Vec<(usize, u32)>,
}

impl Service for Recorder {}

/// Message `seq` of producer `producer`.
struct Record(usize, u32);
struct Seen;

impl Handler<Record> for Recorder {
    type Reply = ();
    async fn handle(&mut self, msg: Record, _ctx: &mut Context<Self>) {
        self.seen.push((msg.0, msg.1));
    }
}

impl Handler<Seen> for Recorder {
    type Reply = Vec<(usize, u32)>;
    async fn handle(&mut self, _: Seen, _ctx: &mut Context<Self>) -> Vec<(usize, u32)> {
        std::mem::take(&mut self.seen)
    }
}

/// Stops `addr` while its `Work` handler is held by the gate, then opens the gate wide.
/// Only the message in flight is handled; everything queued becomes a dead letter.
async fn stop_while_held(addr: &Addr<Gated>, g: &Gate) -> Result<(), Error> {
    let stopper = tokio::spawn({
        let addr = addr.clone();
        async move { addr.stop().await }
    });
    // stop() fires the stop signal and queues its request in one step (no await between):
    // on the current-thread runtime, once the signal has fired the request is on the control
    // lane, behind the handler in flight.
    g.stop_signal().stopped().await;
    g.gate.add_permits(1_000_000);
    stopper.await.expect("the stopper does not panic")
}

// ----- tell and ask ---------------------------------------------------------------------

#[tokio::test]
async fn tell_then_ask_sees_every_told_message() {
    let system = System::new();
    let counter = system.spawn(Counter::default()).await.unwrap();
    counter.tell(Add(1)).await.unwrap();
    counter.tell(Add(2)).await.unwrap();
    counter.try_tell(Add(4)).unwrap();
    // The ask is queued behind the tells, so it sees all of them.
    assert_eq!(counter.ask(Get).await.unwrap(), 7);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_actor_handles_many_message_types_with_typed_replies() {
    let system = System::new();
    let counter = system.spawn(Counter::default()).await.unwrap();
    let (): () = counter.ask(Add(5)).await.unwrap();
    let n: u64 = counter.ask(Get).await.unwrap();
    assert_eq!(n, 5);
    let text: String = counter.ask(Describe).await.unwrap();
    assert_eq!(text, "Counter n=5");
    let list: Vec<u8> = counter.ask(Echo(vec![1_u8, 2, 3])).await.unwrap();
    assert_eq!(list, [1, 2, 3]);
    let pair: (&str, i32) = counter.ask(Echo(("x", -1))).await.unwrap();
    assert_eq!(pair, ("x", -1));
    let n: u64 = counter
        .ask_timeout(Get, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(n, 5);
    system.shutdown().await.unwrap();
}

// ----- capacity and backpressure -------------------------------------------------------

#[tokio::test]
async fn try_tell_on_a_full_mailbox_hands_the_message_back() {
    let system = System::new();
    let g = Gate::new();
    let addr = system
        .spawn(ServiceSpec::new(Gated::new(&g)).mailbox_capacity(2))
        .await
        .unwrap();
    // Work(0) is in flight, held by the gate: it no longer takes room in the mailbox.
    addr.tell(Work(0)).await.unwrap();
    g.entered.notified().await;
    addr.try_tell(Work(1)).unwrap();
    addr.try_tell(Work(2)).unwrap();
    assert_eq!(addr.mailbox_len(), 2);

    let err = addr.try_tell(Work(3)).unwrap_err();
    assert!(err.is_full());
    assert!(!err.is_stopped());
    assert!(matches!(err, TrySendError::Full(..)));
    assert_eq!(err.label(), "Gated");
    assert_eq!(err.to_string(), "mailbox of Gated is full");
    let Work(back) = err.into_inner();
    assert_eq!(back, 3);

    // `?` turns a full mailbox into Error::MailboxFull.
    fn try_work(addr: &Addr<Gated>, n: u32) -> Result<(), Error> {
        addr.try_tell(Work(n))?;
        Ok(())
    }
    let err = try_work(&addr, 4).unwrap_err();
    assert!(
        matches!(&err, Error::MailboxFull { label } if &**label == "Gated"),
        "{err:?}"
    );
    assert_eq!(addr.mailbox_len(), 2);

    g.gate.add_permits(3);
    assert_eq!(addr.ask(Handled).await.unwrap(), [0, 1, 2]);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn mailbox_capacity_comes_from_the_service_unless_the_spec_overrides_it() {
    let system = System::new();

    // Service::mailbox_capacity override: 1.
    let g1 = Gate::new();
    let one = system.spawn(Gated::with_capacity(&g1, 1)).await.unwrap();
    one.tell(Work(0)).await.unwrap();
    g1.entered.notified().await;
    one.try_tell(Work(1)).unwrap();
    let Work(back) = one.try_tell(Work(2)).unwrap_err().into_inner();
    assert_eq!(back, 2);
    assert_eq!(one.mailbox_len(), 1);

    // The spec wins over the service: 3.
    let g3 = Gate::new();
    let three = system
        .spawn(ServiceSpec::new(Gated::with_capacity(&g3, 1)).mailbox_capacity(3))
        .await
        .unwrap();
    three.tell(Work(0)).await.unwrap();
    g3.entered.notified().await;
    for n in 1..=3 {
        three.try_tell(Work(n)).unwrap();
    }
    assert!(three.try_tell(Work(4)).unwrap_err().is_full());
    assert_eq!(three.mailbox_len(), 3);

    // Neither: the default.
    let gd = Gate::new();
    let default = system.spawn(Gated::new(&gd)).await.unwrap();
    default.tell(Work(0)).await.unwrap();
    gd.entered.notified().await;
    for n in 0..DEFAULT_MAILBOX_CAPACITY {
        default.try_tell(Work(n as u32 + 1)).unwrap();
    }
    assert!(default.try_tell(Work(u32::MAX)).unwrap_err().is_full());
    assert_eq!(default.mailbox_len(), DEFAULT_MAILBOX_CAPACITY);

    // Each stop turns what was still queued into dead letters.
    for (addr, g) in [(&one, &g1), (&three, &g3), (&default, &gd)] {
        stop_while_held(addr, g).await.unwrap();
    }
    assert_eq!(one.dead_letters(), 1);
    assert_eq!(three.dead_letters(), 3);
    assert_eq!(default.dead_letters(), DEFAULT_MAILBOX_CAPACITY as u64);
    assert_eq!(g1.handled(), [0]);
    assert_eq!(g3.handled(), [0]);
    assert_eq!(gd.handled(), [0]);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn tell_waits_for_room_when_the_mailbox_is_full() {
    let system = System::new();
    let g = Gate::new();
    let addr = system
        .spawn(ServiceSpec::new(Gated::new(&g)).mailbox_capacity(1))
        .await
        .unwrap();
    addr.tell(Work(0)).await.unwrap();
    g.entered.notified().await;
    addr.tell(Work(1)).await.unwrap();
    assert_eq!(addr.mailbox_len(), 1);

    // Full: a tell stays pending however long we wait (paused time jumps the whole minute).
    let start = Instant::now();
    let waited = tokio::time::timeout(Duration::from_secs(60), addr.tell(Work(99))).await;
    assert!(waited.is_err(), "tell must wait for room");
    assert!(start.elapsed() >= Duration::from_secs(60));
    // The timed-out tell dropped its message: it was never queued.
    assert_eq!(addr.mailbox_len(), 1);

    let mut third = pin!(addr.tell(Work(2)));
    assert!(poll_once(third.as_mut()).await.is_pending());
    assert!(poll_once(third.as_mut()).await.is_pending());

    // The handler returns, the actor takes Work(1) off the lane: room for Work(2).
    g.gate.add_permits(1);
    third.await.unwrap();
    g.gate.add_permits(2);
    assert_eq!(addr.ask(Handled).await.unwrap(), [0, 1, 2]);
    system.shutdown().await.unwrap();
}

// ----- after a stop ----------------------------------------------------------------------

async fn add_and_get(addr: &Addr<Counter>) -> Result<u64, Error> {
    addr.tell(Add(1)).await?;
    addr.ask(Get).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_after_stop_fail_and_hand_the_message_back() {
    let system = System::new();
    let counter = system.spawn(Counter::default()).await.unwrap();
    assert_eq!(add_and_get(&counter).await.unwrap(), 1);
    counter.stop().await.unwrap();
    assert!(counter.is_terminated());

    // A tell's error can only mean "stopped".
    let err = counter.tell(Add(7)).await.unwrap_err();
    assert_eq!(err.label(), "Counter");
    assert_eq!(err.into_inner().0, 7);

    let err = counter.try_tell(Add(8)).unwrap_err();
    assert!(err.is_stopped());
    assert_eq!(err.into_inner().0, 8);

    let err = counter.ask(Get).await.unwrap_err();
    assert!(
        matches!(&err, Error::Stopped { label } if &**label == "Counter"),
        "{err:?}"
    );
    assert!(err.is_stopped());
    let err = counter
        .ask_timeout(Get, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Stopped { .. }), "{err:?}");

    // `?` converts the SendError of a tell into modo::Error.
    let err = add_and_get(&counter).await.unwrap_err();
    assert!(
        matches!(&err, Error::Stopped { label } if &**label == "Counter"),
        "{err:?}"
    );
    // Nothing was queued, so nothing was dead-lettered.
    assert_eq!(counter.dead_letters(), 0);
    system.shutdown().await.unwrap();
}

// ----- ask timeout ---------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn ask_timeout_on_a_slow_handler_times_out_and_the_actor_goes_on() {
    let system = System::new();
    let sleeper = system.spawn(Sleeper::default()).await.unwrap();
    let start = Instant::now();
    let err = sleeper
        .ask_timeout(Slow(Duration::from_secs(10)), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    match &err {
        Error::Timeout { label, timeout } => {
            assert_eq!(&**label, "Sleeper");
            assert_eq!(*timeout, Duration::from_secs(1));
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(10),
        "{waited:?}"
    );

    // The slow message is still handled (its reply is dropped); the next ask waits behind it.
    assert_eq!(sleeper.ask(Done).await.unwrap(), 1);
    assert!(start.elapsed() >= Duration::from_secs(10));
    assert_eq!(
        sleeper
            .ask_timeout(Slow(Duration::from_millis(10)), Duration::from_secs(1))
            .await
            .unwrap(),
        2
    );
    assert_eq!(sleeper.state(), ServiceState::Running);
    system.shutdown().await.unwrap();
}

// ----- control before user ---------------------------------------------------------------

#[tokio::test]
async fn stop_overtakes_every_queued_message() {
    const TELLS: u32 = 100_000;
    let system = System::new();
    let g = Gate::new();
    let addr = system
        .spawn(ServiceSpec::new(Gated::new(&g)).mailbox_capacity(TELLS as usize + 1))
        .await
        .unwrap();
    for n in 0..TELLS {
        addr.tell(Work(n)).await.unwrap();
    }
    // Work(0) is taken and held by the gate; the rest wait in the lane.
    g.entered.notified().await;
    assert_eq!(addr.mailbox_len(), TELLS as usize - 1);

    // The stop is requested from another task while Work(0) is held, then the gate opens
    // wide: the stop is served before any of the 99_999 queued messages.
    stop_while_held(&addr, &g).await.unwrap();

    assert_eq!(g.handled(), [0], "only the message in flight was handled");
    assert!(addr.is_terminated());
    assert_eq!(addr.state(), ServiceState::Shutdown);
    assert_eq!(addr.mailbox_len(), 0);
    assert_eq!(addr.dead_letters(), u64::from(TELLS - 1));
    let dead = system.dead_letters();
    assert_eq!(dead.total, u64::from(TELLS - 1));
    assert_eq!(dead.by_service.len(), 1);
    assert_eq!(dead.by_service[0].label, "Gated");
    assert_eq!(dead.by_service[0].id, addr.id());
    assert_eq!(dead.by_service[0].count, u64::from(TELLS - 1));
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn asks_queued_behind_a_held_handler_resolve_stopped_at_once() {
    let system = System::new();
    let g = Gate::new();
    let addr = system.spawn(Gated::new(&g)).await.unwrap();
    addr.tell(Work(0)).await.unwrap();
    g.entered.notified().await;

    // Ten asks, each polled once: queued, waiting for a reply.
    let mut asks: Vec<_> = (0..10).map(|_| Box::pin(addr.ask(Handled))).collect();
    for ask in &mut asks {
        assert!(poll_once(ask.as_mut()).await.is_pending());
    }
    assert_eq!(addr.mailbox_len(), 10);

    let start = Instant::now();
    let stopper = tokio::spawn({
        let addr = addr.clone();
        async move { addr.stop().await }
    });
    g.stop_signal().stopped().await;
    g.gate.add_permits(1);
    for ask in asks {
        // A generous timeout: with paused time it would fire only if nothing else could run.
        let res = tokio::time::timeout(Duration::from_secs(3600), ask)
            .await
            .expect("the ask resolves with the stop, not by a timeout");
        let err = res.unwrap_err();
        assert!(
            matches!(&err, Error::Stopped { label } if &**label == "Gated"),
            "{err:?}"
        );
    }
    assert_eq!(start.elapsed(), Duration::ZERO, "no timer had to fire");
    stopper.await.unwrap().unwrap();
    assert_eq!(g.handled(), [0]);
    assert_eq!(addr.dead_letters(), 10);
    system.shutdown().await.unwrap();
}

// ----- inside a handler ------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awaiting_itself_from_a_handler_is_refused() {
    let system = System::new();
    let counter = system.spawn(Counter::default()).await.unwrap();
    let report = counter.ask(Reentrant).await.unwrap();
    for (res, op) in [
        (report.ask.map(drop), "ask"),
        (report.ask_timeout.map(drop), "ask"),
        (report.stop, "stop"),
        (report.restart, "restart"),
    ] {
        match res {
            Err(Error::WouldDeadlock { label, op: got }) => {
                assert_eq!(&*label, "Counter");
                assert_eq!(got, op);
            }
            other => panic!("{op}: expected WouldDeadlock, got {other:?}"),
        }
    }
    assert!(report.tell);
    // Nothing was stopped or restarted, and the self-told Add(10) was handled after.
    assert_eq!(counter.ask(Get).await.unwrap(), 10);
    assert_eq!(counter.state(), ServiceState::Running);
    assert_eq!(counter.restart_count(), 0);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn ctx_stop_stops_after_the_handler_and_drops_the_rest() {
    let system = System::new();
    let counter = system.spawn(Counter::default()).await.unwrap();
    counter.tell(Add(1)).await.unwrap();
    counter.tell(StopMe).await.unwrap();
    counter.tell(Add(2)).await.unwrap();
    counter.tell(Add(3)).await.unwrap();
    counter.wait_until_stopped().await;
    assert_eq!(counter.state(), ServiceState::Shutdown);
    assert!(counter.is_terminated());
    assert_eq!(counter.dead_letters(), 2);
    assert_eq!(counter.tell(Add(4)).await.unwrap_err().into_inner().0, 4);
    system.shutdown().await.unwrap();
}

// ----- order -----------------------------------------------------------------------------

#[tokio::test]
async fn one_producer_keeps_its_order() {
    let system = System::new();
    let rec = system.spawn(Recorder::default()).await.unwrap();
    // 10_000 is ten times the default capacity: the producer hits backpressure on the way.
    for n in 0..10_000 {
        rec.tell(Record(0, n)).await.unwrap();
    }
    let seen = rec.ask(Seen).await.unwrap();
    let expected: Vec<(usize, u32)> = (0..10_000).map(|n| (0, n)).collect();
    assert_eq!(seen, expected);
    system.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_producers_keep_their_own_order_and_lose_nothing() {
    const PRODUCERS: usize = 4;
    const EACH: u32 = 5_000;
    let system = System::new();
    // A small mailbox so the producers contend for room.
    let rec = system
        .spawn(ServiceSpec::new(Recorder::default()).mailbox_capacity(16))
        .await
        .unwrap();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let rec = rec.clone();
            tokio::spawn(async move {
                for n in 0..EACH {
                    rec.tell(Record(p, n)).await.unwrap();
                }
            })
        })
        .collect();
    for producer in producers {
        producer.await.unwrap();
    }
    let seen = rec.ask(Seen).await.unwrap();
    assert_eq!(seen.len(), PRODUCERS * EACH as usize);
    let expected: Vec<u32> = (0..EACH).collect();
    for p in 0..PRODUCERS {
        let mine: Vec<u32> = seen
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(
            mine, expected,
            "producer {p}: out of order, lost or duplicated"
        );
    }
    assert_eq!(rec.dead_letters(), 0);
    system.shutdown().await.unwrap();
}
