//! Observation: per-service statistics, recorded while the System observes and not at all (not
//! paid for) while nobody looks. (The per-message spans have their own test binary,
//! tests/message_spans.rs: a tracing subscriber is process-wide state.)

use std::sync::Arc;
use std::time::Duration;

use modo::prelude::*;

/// Answers `Ping` by telling its peer a `Pong` (if it has one).
struct Relay {
    peer: Option<Addr<Relay>>,
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl Service for Relay {}

struct Ping;
struct Pong;
struct Slow;

impl Handler<Ping> for Relay {
    type Reply = ();
    async fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) {
        if let Some(peer) = &self.peer {
            peer.tell(Pong).await.unwrap();
        }
    }
}

impl Handler<Pong> for Relay {
    type Reply = u8;
    async fn handle(&mut self, _: Pong, _ctx: &mut Context<Self>) -> u8 {
        7
    }
}

impl Handler<Slow> for Relay {
    type Reply = ();
    async fn handle(&mut self, _: Slow, _ctx: &mut Context<Self>) {
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn pair(system: &System) -> (Addr<Relay>, Addr<Relay>) {
    let b = system
        .spawn(ServiceSpec::new(Relay {
            peer: None,
            gate: None,
        }))
        .await
        .unwrap();
    let a = system
        .spawn(ServiceSpec::new(Relay {
            peer: Some(b.clone()),
            gate: None,
        }))
        .await
        .unwrap();
    (a, b)
}

#[tokio::test(start_paused = true)]
async fn nothing_is_recorded_while_nobody_observes() {
    let system = System::new();
    let (a, b) = pair(&system).await;
    assert!(!system.is_observing());
    for _ in 0..10 {
        a.ask(Ping).await.unwrap();
    }
    let stats = b.stats();
    assert_eq!(stats.handled, 0);
    assert_eq!(stats.handle_time, Default::default());
    assert_eq!(a.stats().handled, 0);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn observed_messages_record_their_wait_and_handle_time() {
    let system = System::new();
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let slow = system
        .spawn(Relay {
            peer: None,
            gate: Some(gate.clone()),
        })
        .await
        .unwrap();
    system.set_observing(true);
    // The first waits at the gate for 1 s, the second waits in the mailbox meanwhile.
    slow.tell(Slow).await.unwrap();
    slow.tell(Slow).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    gate.add_permits(2);
    slow.ask(Pong).await.unwrap();
    let stats = slow.stats();
    assert_eq!(stats.handled, 3);
    assert!(stats.handle_time.max >= Duration::from_secs(1), "{stats:?}");
    assert!(
        stats.mailbox_wait.max >= Duration::from_secs(1),
        "{stats:?}"
    );
    assert!(
        stats.handle_time.p50 >= Duration::from_millis(30),
        "{stats:?}"
    );

    system.set_observing(false);
    slow.ask(Pong).await.unwrap();
    assert_eq!(slow.stats().handled, 3, "off again: not recorded");
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn crashes_and_restarts_are_counted_with_the_last_crash_and_its_time() {
    use modo::supervisor::Supervisor;
    let system = System::new();
    let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
    let kid = sup
        .supervise(|| Relay {
            peer: None,
            gate: None,
        })
        .await
        .unwrap();
    assert!(kid.stats().last_crash.is_none());
    let before = std::time::SystemTime::now();
    kid.crash("first");
    kid.wait_until(|k| k.restart_count() == 1 && k.state() == ServiceState::Running)
        .await;
    kid.crash("second");
    kid.wait_until(|k| k.restart_count() == 2 && k.state() == ServiceState::Running)
        .await;
    let stats = kid.stats();
    assert_eq!((stats.crashes, stats.restarts), (2, 2));
    let last = stats.last_crash.expect("kept across the restart");
    assert_eq!(last.reason.to_string(), "second");
    assert!(last.at >= before);
    system.shutdown().await.unwrap();
}
