//! An address survives restarts, and what was queued before or during a restart is handled
//! afterwards, in order, none lost.

use std::sync::Arc;

use modo::prelude::*;
use tokio::sync::Notify;

/// Records every value it receives; the first message waits on a gate.
struct Recorder {
    seen: Vec<u64>,
    gate: Option<Arc<Notify>>,
}

struct Item(u64);
struct Hold;
struct Seen;

/// Marks in the record where a restart happened.
const RESTARTED: u64 = u64::MAX;

impl Service for Recorder {
    async fn on_restart(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.seen.push(RESTARTED);
        Ok(())
    }
}

impl Handler<Item> for Recorder {
    type Reply = ();
    async fn handle(&mut self, Item(n): Item, _ctx: &mut Context<Self>) {
        self.seen.push(n);
    }
}

impl Handler<Hold> for Recorder {
    type Reply = ();
    async fn handle(&mut self, _: Hold, _ctx: &mut Context<Self>) {
        if let Some(gate) = self.gate.take() {
            gate.notified().await;
        }
    }
}

impl Handler<Seen> for Recorder {
    type Reply = Vec<u64>;
    async fn handle(&mut self, _: Seen, _ctx: &mut Context<Self>) -> Vec<u64> {
        self.seen.clone()
    }
}

#[tokio::test]
async fn the_same_addr_works_after_restart() {
    let system = System::new();
    let addr = system
        .spawn(Recorder {
            seen: vec![],
            gate: None,
        })
        .await
        .unwrap();
    let id = addr.id();
    let clone = addr.clone();
    addr.tell(Item(1)).await.unwrap();
    addr.restart().await.unwrap();
    clone.tell(Item(2)).await.unwrap();
    // `tell` returns once queued; the restart overtakes the queued message on the control
    // lane, and the message is handled after it.
    assert_eq!(addr.ask(Seen).await.unwrap(), vec![RESTARTED, 1, 2]);
    assert_eq!(addr.id(), id);
    assert_eq!(clone.restart_count(), 1);
    system.shutdown().await.unwrap();
}

/// Messages queued behind a busy handler when a restart is requested are all handled after
/// the restart, in order: the restart travels on the control lane and overtakes them, and the
/// mailbox they wait in is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_queued_during_a_restart_are_kept_in_order() {
    let gate = Arc::new(Notify::new());
    let system = System::new();
    let addr = system
        .spawn(
            ServiceSpec::new(Recorder {
                seen: vec![],
                gate: Some(gate.clone()),
            })
            .mailbox_capacity(2_000),
        )
        .await
        .unwrap();
    addr.tell(Hold).await.unwrap();
    for n in 0..1_000 {
        addr.tell(Item(n)).await.unwrap();
    }
    // Queued on the control lane now, while the handler of `Hold` is still in flight.
    addr.send_lifecycle(Lifecycle::Restart).unwrap();
    gate.notify_one();
    // Sent while the restart may be running: kept too, after the earlier ones.
    for n in 1_000..1_100 {
        addr.tell(Item(n)).await.unwrap();
    }
    let seen = addr.ask(Seen).await.unwrap();
    let mut expected = vec![RESTARTED];
    expected.extend(0..1_100);
    assert_eq!(seen, expected);
    assert_eq!(addr.restart_count(), 1);
    assert_eq!(addr.dead_letters(), 0);
    system.shutdown().await.unwrap();
}

/// Producers keep sending while the actor is restarted over and over: every message is
/// handled exactly once and each producer's order is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_under_load_lose_nothing() {
    const PRODUCERS: u64 = 4;
    const EACH: u64 = 5_000;
    let system = System::new();
    let addr = system
        .spawn(
            ServiceSpec::new(Recorder {
                seen: vec![],
                gate: None,
            })
            .mailbox_capacity(64),
        )
        .await
        .unwrap();
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let addr = addr.clone();
        producers.push(tokio::spawn(async move {
            for i in 0..EACH {
                addr.tell(Item(p * 1_000_000 + i)).await.unwrap();
            }
        }));
    }
    let mut restarts = 0;
    while producers.iter().any(|p| !p.is_finished()) {
        addr.restart().await.unwrap();
        restarts += 1;
        tokio::task::yield_now().await;
    }
    for p in producers {
        p.await.unwrap();
    }
    let seen: Vec<u64> = addr
        .ask(Seen)
        .await
        .unwrap()
        .into_iter()
        .filter(|n| *n != RESTARTED)
        .collect();
    assert_eq!(
        seen.len() as u64,
        PRODUCERS * EACH,
        "none lost, none doubled"
    );
    for p in 0..PRODUCERS {
        let mine: Vec<u64> = seen
            .iter()
            .copied()
            .filter(|n| n / 1_000_000 == p)
            .collect();
        let expected: Vec<u64> = (0..EACH).map(|i| p * 1_000_000 + i).collect();
        assert_eq!(mine, expected, "producer {p} out of order");
    }
    assert_eq!(addr.restart_count(), restarts);
    assert!(restarts > 0);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn restart_of_a_stopped_service_is_an_error() {
    let system = System::new();
    let addr = system
        .spawn(Recorder {
            seen: vec![],
            gate: None,
        })
        .await
        .unwrap();
    addr.stop().await.unwrap();
    assert!(matches!(addr.restart().await, Err(Error::Stopped { .. })));
    assert!(matches!(addr.start().await, Err(Error::Stopped { .. })));
    system.shutdown().await.unwrap();
}
