//! Backpressure at the end: senders waiting for room in a full mailbox when the service stops
//! for good are released at once, each with its message handed back (a tell) or a typed error
//! (an ask). Nothing waits for room that will never come, and nothing is lost silently.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use modo::prelude::*;
use tokio::sync::{Notify, Semaphore};

/// A service whose `Work` handler waits for a permit of a gate: the test decides when work
/// gets done, so the mailbox can be filled to the brim.
struct Gated {
    gate: Arc<Semaphore>,
    entered: Arc<Notify>,
    handled: Arc<AtomicU64>,
    capacity: usize,
}

impl Service for Gated {
    fn mailbox_capacity(&self) -> usize {
        self.capacity
    }
}

struct Work;

impl Handler<Work> for Gated {
    type Reply = ();
    async fn handle(&mut self, _: Work, _ctx: &mut Context<Self>) {
        self.entered.notify_one();
        self.gate.acquire().await.expect("never closed").forget();
        self.handled.fetch_add(1, Ordering::SeqCst);
    }
}

struct Fixture {
    system: System,
    addr: Addr<Gated>,
    gate: Arc<Semaphore>,
    entered: Arc<Notify>,
    handled: Arc<AtomicU64>,
}

/// A gated service with `capacity` slots, its first `Work` in the handler (held), and
/// `capacity` more queued behind it: the mailbox is full.
async fn full_mailbox(capacity: usize) -> Fixture {
    let system = System::new();
    let gate = Arc::new(Semaphore::new(0));
    let entered = Arc::new(Notify::new());
    let handled = Arc::new(AtomicU64::new(0));
    let addr = system
        .spawn(Gated {
            gate: gate.clone(),
            entered: entered.clone(),
            handled: handled.clone(),
            capacity,
        })
        .await
        .unwrap();
    addr.tell(Work).await.unwrap();
    entered.notified().await;
    for _ in 0..capacity {
        addr.try_tell(Work)
            .expect("room for exactly `capacity` more");
    }
    assert!(addr.try_tell(Work).unwrap_err().is_full());
    Fixture {
        system,
        addr,
        gate,
        entered,
        handled,
    }
}

/// Lets the task(s) spawned so far run until they all wait.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn producers_waiting_for_room_get_their_message_back_when_the_service_stops() {
    const CAPACITY: usize = 8;
    const PRODUCERS: usize = 8;
    let f = full_mailbox(CAPACITY).await;

    // Eight producers, each waiting for room with its own numbered message.
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let addr = f.addr.clone();
        let outcomes = outcomes.clone();
        producers.push(tokio::spawn(async move {
            let outcome = match addr.tell(Work).await {
                Ok(()) => "queued",
                Err(e) => {
                    assert_eq!(e.label(), "Gated", "producer {p}: {e}");
                    let Work = e.into_inner();
                    "handed back"
                }
            };
            outcomes.lock().unwrap().push(outcome);
        }));
    }
    settle().await;
    assert!(
        outcomes.lock().unwrap().is_empty(),
        "all of them wait for room"
    );

    // Stop for good while the handler is held, then let the one in flight finish.
    let stopper = tokio::spawn({
        let addr = f.addr.clone();
        async move { addr.stop().await }
    });
    settle().await;
    f.gate.add_permits(1);

    tokio::time::timeout(Duration::from_secs(5), stopper)
        .await
        .expect("the stop ends")
        .unwrap()
        .unwrap();
    for producer in producers {
        tokio::time::timeout(Duration::from_secs(5), producer)
            .await
            .expect("no producer waits for room that will never come")
            .unwrap();
    }

    let outcomes = outcomes.lock().unwrap().clone();
    let queued = outcomes.iter().filter(|o| **o == "queued").count() as u64;
    let handed_back = outcomes.len() as u64 - queued;
    assert_eq!(handed_back, PRODUCERS as u64, "none of them got room");
    // Every message is accounted for: the one in flight was handled, the queued ones are dead
    // letters, the waiting ones came back to their senders.
    let handled = f.handled.load(Ordering::SeqCst);
    let dead = f.system.dead_letters().total;
    assert_eq!(handled, 1);
    assert_eq!(dead, CAPACITY as u64 + queued);
    assert_eq!(f.addr.dead_letters(), dead);
    f.system.shutdown().await.unwrap();
    drop(f.entered);
}

#[tokio::test(start_paused = true)]
async fn an_ask_storm_during_a_stop_resolves_every_ask() {
    const CAPACITY: usize = 4;
    const ASKS: usize = 1_000;
    let f = full_mailbox(CAPACITY).await;

    let mut asks = Vec::new();
    for _ in 0..ASKS {
        let addr = f.addr.clone();
        asks.push(tokio::spawn(async move { addr.ask(Work).await }));
    }
    settle().await;
    let stopper = tokio::spawn({
        let addr = f.addr.clone();
        async move { addr.stop().await }
    });
    settle().await;
    f.gate.add_permits(1);
    tokio::time::timeout(Duration::from_secs(5), stopper)
        .await
        .expect("the stop ends")
        .unwrap()
        .unwrap();

    let mut stopped = 0;
    for ask in asks {
        let res = tokio::time::timeout(Duration::from_secs(5), ask)
            .await
            .expect("no ask waits for room that will never come")
            .unwrap();
        match res {
            Err(Error::Stopped { .. }) => stopped += 1,
            other => panic!("an ask to a service stopped for good got {other:?}"),
        }
    }
    assert_eq!(stopped, ASKS);
    f.system.shutdown().await.unwrap();
}

/// A tell waits for room in a full mailbox of `capacity`; the held handler finishes and the
/// next one enters and waits on the gate: the slot it freed must reach the waiting tell, whose
/// message is then handled like the others.
async fn one_freed_slot_lets_a_waiting_tell_in(capacity: usize) {
    let f = full_mailbox(capacity).await;
    let waiter = tokio::spawn({
        let addr = f.addr.clone();
        async move { addr.tell(Work).await.is_ok() }
    });
    settle().await;
    assert!(!waiter.is_finished());
    f.gate.add_permits(1); // the held one finishes; a queued one enters; a slot frees
    f.entered.notified().await;
    let got_in = tokio::time::timeout(Duration::from_secs(10), waiter).await;
    assert!(
        got_in.expect("the waiting tell got its slot").unwrap(),
        "the tell was queued"
    );
    f.gate.add_permits(1000);
    // An ask queues behind everything told before it: once it is answered, all was handled.
    f.addr.ask(Work).await.unwrap();
    f.addr.stop().await.unwrap();
    // The held one, the `capacity` queued, the waiting tell and the ask.
    assert_eq!(f.handled.load(Ordering::SeqCst), capacity as u64 + 3);
    assert_eq!(f.system.dead_letters().total, 0);
    f.system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_sender_waiting_for_room_still_gets_room_while_the_service_runs() {
    // The release at the end must not disturb ordinary backpressure: a waiting sender is
    // queued as soon as a slot frees, and its message is handled.
    one_freed_slot_lets_a_waiting_tell_in(2).await;
}

#[tokio::test(start_paused = true)]
async fn in_a_large_mailbox_a_waiting_sender_gets_the_slot_freed_before_a_handler_waits() {
    // Freed slots are offered to waiting senders a few at a time (an eighth of this lane is 8),
    // but always before the actor waits for anything: here one slot frees, then the next
    // handler waits on the gate.
    one_freed_slot_lets_a_waiting_tell_in(64).await;
}
