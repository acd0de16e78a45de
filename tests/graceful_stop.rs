//! A graceful stop: `drain_and_stop` handles every message queued before it, then stops for
//! good; `stop` is the urgent one and overtakes the queue. What is sent after a graceful stop
//! is not handled (counted as a dead letter, or refused with the message back); a full
//! mailbox makes the graceful stop wait for room; a handler can ask for one; and a supervisor
//! decides what a graceful stop of its child means (a permanent child is restarted).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use modo::prelude::*;
use modo::supervisor::RestartPolicy;
use tokio::sync::Notify;

/// The bound on every wait in these tests.
const BOUND: Duration = Duration::from_secs(10);

async fn bounded<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(BOUND, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what} did not finish within {BOUND:?}"),
    }
}

/// What a `Counter` saw, shared with the test.
#[derive(Clone, Default)]
struct Seen {
    handled: Arc<Mutex<Vec<u32>>>,
    gate: Arc<Notify>,
    instances: Arc<AtomicU32>,
}

impl Seen {
    fn handled(&self) -> Vec<u32> {
        self.handled.lock().unwrap().clone()
    }
}

/// Handles `Work(n)` by recording `n`; `Work(0)` first waits for the gate, so messages queue
/// up behind it.
struct Counter {
    seen: Seen,
}

impl Counter {
    fn new(seen: &Seen) -> Self {
        seen.instances.fetch_add(1, Ordering::SeqCst);
        Counter { seen: seen.clone() }
    }
}

impl Service for Counter {}

struct Work(u32);

impl Handler<Work> for Counter {
    type Reply = u32;
    async fn handle(&mut self, Work(n): Work, _ctx: &mut Context<Self>) -> u32 {
        if n == 0 {
            self.seen.gate.notified().await;
        }
        self.seen.handled.lock().unwrap().push(n);
        n
    }
}

/// Asks the service to stop gracefully from its own handler.
struct Finish;

impl Handler<Finish> for Counter {
    type Reply = ();
    async fn handle(&mut self, _: Finish, ctx: &mut Context<Self>) {
        self.seen.handled.lock().unwrap().push(u32::MAX);
        ctx.drain_and_stop();
    }
}

/// Tries to await its own graceful stop: refused, it would wait on itself.
struct SelfDrain;

impl Handler<SelfDrain> for Counter {
    type Reply = Result<(), Error>;
    async fn handle(&mut self, _: SelfDrain, ctx: &mut Context<Self>) -> Result<(), Error> {
        ctx.myself().drain_and_stop().await
    }
}

/// Spawns a counter with `capacity`, sends `Work(0)` and waits until its handler holds it
/// (the mailbox is then empty and the actor busy).
async fn blocked(system: &System, seen: &Seen, capacity: usize) -> Addr<Counter> {
    let counter = system
        .spawn(ServiceSpec::new(Counter::new(seen)).mailbox_capacity(capacity))
        .await
        .unwrap();
    counter.tell(Work(0)).await.unwrap();
    bounded("Work(0) taken", async {
        while counter.mailbox_len() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    counter
}

async fn wait_for_len(addr: &ServiceRef, n: usize) {
    bounded("the mailbox to fill", async {
        while addr.mailbox_len() != n {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn drain_and_stop_handles_everything_queued_before_it_then_stops() {
    let system = System::new();
    let seen = Seen::default();
    let counter = blocked(&system, &seen, 2_000).await;
    for n in 1..=1_000 {
        counter.tell(Work(n)).await.unwrap();
    }
    // An ask queued before the graceful stop is answered, not failed.
    let ask = tokio::spawn({
        let c = counter.clone();
        async move { c.ask(Work(1_001)).await }
    });
    wait_for_len(&counter, 1_001).await;
    let stop = tokio::spawn({
        let c = counter.clone();
        async move { c.drain_and_stop().await }
    });
    wait_for_len(&counter, 1_002).await;
    assert!(!stop.is_finished());
    seen.gate.notify_one();
    bounded("drain_and_stop", stop).await.unwrap().unwrap();
    assert_eq!(seen.handled(), (0..=1_001).collect::<Vec<_>>());
    assert_eq!(ask.await.unwrap().unwrap(), 1_001);
    assert_eq!(counter.state(), ServiceState::Shutdown);
    assert!(counter.is_terminated());
    assert_eq!(counter.dead_letters(), 0);
    assert_eq!(system.dead_letters().total, 0);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn stop_overtakes_the_queue_and_drain_and_stop_does_not() {
    let system = System::new();
    let (urgent, graceful) = (Seen::default(), Seen::default());
    let a = blocked(&system, &urgent, 100).await;
    let b = blocked(&system, &graceful, 100).await;
    for n in 1..=50 {
        a.tell(Work(n)).await.unwrap();
        b.tell(Work(n)).await.unwrap();
    }
    let queued_ask = tokio::spawn({
        let a = a.clone();
        async move { a.ask(Work(51)).await }
    });
    wait_for_len(&a, 51).await;
    let stop_a = tokio::spawn({
        let a = a.clone();
        async move { a.stop().await }
    });
    let stop_b = tokio::spawn({
        let b = b.clone();
        async move { b.drain_and_stop().await }
    });
    wait_for_len(&b, 51).await;
    // Both wait for the handler in flight.
    tokio::task::yield_now().await;
    assert!(!stop_a.is_finished() && !stop_b.is_finished());
    urgent.gate.notify_one();
    graceful.gate.notify_one();
    bounded("stop", stop_a).await.unwrap().unwrap();
    bounded("drain_and_stop", stop_b).await.unwrap().unwrap();
    // stop: only the message in flight was handled; the 51 queued are dead letters and the
    // queued ask failed.
    assert_eq!(urgent.handled(), [0]);
    assert_eq!(a.dead_letters(), 51);
    assert!(queued_ask.await.unwrap().unwrap_err().is_stopped());
    // drain_and_stop: all 51 handled, none dead.
    assert_eq!(graceful.handled(), (0..=50).collect::<Vec<_>>());
    assert_eq!(b.dead_letters(), 0);
    assert_eq!(system.dead_letters().total, 51);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn messages_sent_after_drain_and_stop_are_not_handled_and_are_counted() {
    let system = System::new();
    let seen = Seen::default();
    let counter = blocked(&system, &seen, 100).await;
    for n in 1..=3 {
        counter.tell(Work(n)).await.unwrap();
    }
    let stop = tokio::spawn({
        let c = counter.clone();
        async move { c.drain_and_stop().await }
    });
    // The stop is queued behind 1..=3.
    wait_for_len(&counter, 4).await;
    // These land behind the stop: accepted now, never handled.
    for n in 10..15 {
        counter.tell(Work(n)).await.unwrap();
    }
    let late_ask = tokio::spawn({
        let c = counter.clone();
        async move { c.ask(Work(20)).await }
    });
    wait_for_len(&counter, 10).await;
    seen.gate.notify_one();
    bounded("drain_and_stop", stop).await.unwrap().unwrap();
    assert_eq!(seen.handled(), [0, 1, 2, 3]);
    // Five tells and one ask behind the stop: six dead letters, counted per service and in
    // the system's book.
    assert_eq!(counter.dead_letters(), 6);
    let book = system.dead_letters();
    assert_eq!(book.total, 6);
    assert_eq!(book.by_service.len(), 1);
    assert_eq!(book.by_service[0].label, "Counter");
    assert_eq!(book.by_service[0].count, 6);
    assert!(
        bounded("the late ask", late_ask)
            .await
            .unwrap()
            .unwrap_err()
            .is_stopped()
    );
    // Once stopped, a send is refused with the message back (not counted).
    let back = counter.tell(Work(30)).await.unwrap_err().into_inner();
    assert_eq!(back.0, 30);
    assert_eq!(counter.dead_letters(), 6);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn drain_and_stop_waits_for_room_in_a_full_mailbox() {
    let system = System::new();
    let seen = Seen::default();
    let counter = blocked(&system, &seen, 2).await;
    counter.tell(Work(1)).await.unwrap();
    counter.tell(Work(2)).await.unwrap();
    let stop = tokio::spawn({
        let c = counter.clone();
        async move { c.drain_and_stop().await }
    });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    // No room: the stop is not queued yet, and a try_tell still finds the mailbox full.
    assert!(!stop.is_finished());
    assert_eq!(counter.mailbox_len(), 2);
    assert!(counter.try_tell(Work(99)).unwrap_err().is_full());
    seen.gate.notify_one();
    bounded("drain_and_stop", stop).await.unwrap().unwrap();
    assert_eq!(seen.handled(), [0, 1, 2]);
    assert_eq!(counter.state(), ServiceState::Shutdown);
    assert_eq!(counter.dead_letters(), 0);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_handler_asks_for_a_graceful_stop() {
    let system = System::new();
    let seen = Seen::default();
    // A full mailbox does not keep a service from stopping itself gracefully.
    let counter = blocked(&system, &seen, 3).await;
    counter.tell(Finish).await.unwrap();
    counter.tell(Work(1)).await.unwrap();
    counter.tell(Work(2)).await.unwrap();
    assert!(counter.try_tell(Work(3)).unwrap_err().is_full());
    seen.gate.notify_one();
    bounded("the stop", counter.wait_until_stopped()).await;
    // Finish (recorded as u32::MAX) queued its stop behind 1 and 2: both handled.
    assert_eq!(seen.handled(), [0, u32::MAX, 1, 2]);
    assert_eq!(counter.state(), ServiceState::Shutdown);
    assert!(counter.is_terminated());
    assert!(counter.crash_reason().is_none());
    assert_eq!(counter.dead_letters(), 0);
    assert!(counter.tell(Work(4)).await.is_err());
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn awaiting_its_own_drain_and_stop_is_refused() {
    let system = System::new();
    let seen = Seen::default();
    let counter = system.spawn(Counter::new(&seen)).await.unwrap();
    let err = counter.ask(SelfDrain).await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            Error::WouldDeadlock {
                op: "drain_and_stop",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(counter.state(), ServiceState::Running);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn drain_and_stop_of_a_stopped_service_is_ok() {
    let system = System::new();
    let seen = Seen::default();
    let counter = system.spawn(Counter::new(&seen)).await.unwrap();
    counter.stop().await.unwrap();
    counter.drain_and_stop().await.unwrap();
    // Twice at once on a running one: both return once it stopped.
    let other = system.spawn(Counter::new(&seen)).await.unwrap();
    let (x, y) = tokio::join!(other.drain_and_stop(), other.drain_and_stop());
    x.unwrap();
    y.unwrap();
    assert!(other.is_terminated());
    // The second marker was behind the first: it went with the mailbox. A marker is no
    // user message: it is not counted as a dead letter.
    // A `drain_and_stop` marker left in the mailbox is not a user's message: it is not a dead
    // letter. (Found by this test: the close used to count the marker; now only user
    // envelopes count.)
    assert_eq!(
        other.dead_letters(),
        0,
        "a drain marker counted as a dead letter"
    );
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn stop_overtaking_a_queued_drain_and_stop_resolves_both() {
    let system = System::new();
    let seen = Seen::default();
    let counter = blocked(&system, &seen, 100).await;
    counter.tell(Work(1)).await.unwrap();
    let drain = tokio::spawn({
        let c = counter.clone();
        async move { c.drain_and_stop().await }
    });
    wait_for_len(&counter, 2).await;
    let stop = tokio::spawn({
        let c = counter.clone();
        async move { c.stop().await }
    });
    tokio::task::yield_now().await;
    seen.gate.notify_one();
    bounded("stop", stop).await.unwrap().unwrap();
    bounded("drain_and_stop", drain).await.unwrap().unwrap();
    assert_eq!(seen.handled(), [0]);
    // Work(1) is a dead letter; the drain's marker is not a user message.
    // The marker is not counted; see `drain_and_stop_of_a_stopped_service_is_ok`.
    assert_eq!(counter.dead_letters(), 1);
    system.shutdown().await.unwrap();
}

/// A graceful stop of a supervised child from outside: the supervisor decides. A permanent
/// child is restarted (OTP: a permanent child is always restarted), so the graceful stop is
/// a graceful restart: what was queued before it is handled by the old instance, what came
/// after it by the new one, and nothing is lost. A transient child ends for good; what came
/// after the stop is dead-lettered. `Supervisor::discard` is the way to end a permanent one.
#[tokio::test]
async fn a_supervisor_decides_a_graceful_stop_of_its_child() {
    let system = System::new();
    let sup = system.spawn(Supervisor::builder().build()).await.unwrap();

    // Permanent.
    let seen = Seen::default();
    let child = sup
        .supervise_with(
            ServiceSpec::from_factory({
                let seen = seen.clone();
                move || Counter::new(&seen)
            }),
            RestartPolicy::Permanent,
        )
        .await
        .unwrap();
    child.tell(Work(0)).await.unwrap();
    bounded("Work(0) taken", async {
        while child.mailbox_len() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    child.tell(Work(1)).await.unwrap();
    let stop = tokio::spawn({
        let c = child.clone();
        async move { c.drain_and_stop().await }
    });
    wait_for_len(&child, 2).await;
    child.tell(Work(2)).await.unwrap();
    seen.gate.notify_one();
    bounded("drain_and_stop of a permanent child", stop)
        .await
        .unwrap()
        .unwrap();
    bounded(
        "the restart",
        child.wait_until(|c| c.restart_count() == 1 && c.state() == ServiceState::Running),
    )
    .await;
    assert_eq!(child.ask(Work(3)).await.unwrap(), 3);
    assert_eq!(seen.handled(), [0, 1, 2, 3]);
    assert_eq!(seen.instances.load(Ordering::SeqCst), 2, "a fresh instance");
    assert_eq!(child.dead_letters(), 0);
    assert_eq!(sup.children().await.unwrap().len(), 1);
    // discard ends it for good.
    sup.discard(&child).await.unwrap();
    assert!(child.is_terminated());
    assert!(sup.children().await.unwrap().is_empty());

    // Transient: ends, and what was sent after the stop is a dead letter.
    let seen = Seen::default();
    let child = sup
        .supervise_with(
            ServiceSpec::from_factory({
                let seen = seen.clone();
                move || Counter::new(&seen)
            }),
            RestartPolicy::Transient,
        )
        .await
        .unwrap();
    child.tell(Work(0)).await.unwrap();
    bounded("Work(0) taken", async {
        while child.mailbox_len() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    child.tell(Work(1)).await.unwrap();
    let stop = tokio::spawn({
        let c = child.clone();
        async move { c.drain_and_stop().await }
    });
    wait_for_len(&child, 2).await;
    child.tell(Work(2)).await.unwrap();
    seen.gate.notify_one();
    bounded("drain_and_stop of a transient child", stop)
        .await
        .unwrap()
        .unwrap();
    bounded("the end", async {
        while !child.is_terminated() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert_eq!(seen.handled(), [0, 1]);
    assert_eq!(child.dead_letters(), 1);
    assert_eq!(child.restart_count(), 0);
    assert!(sup.children().await.unwrap().is_empty());
    system.shutdown().await.unwrap();
}
