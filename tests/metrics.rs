//! The `metrics` facade (feature `metrics`): observed messages, crashes, restarts, dead letters
//! and spawns reach an installed recorder under the documented names and labels.
#![cfg(feature = "metrics")]

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use modo::prelude::*;
use modo::supervisor::Supervisor;

struct Echo;
impl Service for Echo {}

struct Say(u32);

impl Handler<Say> for Echo {
    type Reply = u32;
    async fn handle(&mut self, Say(n): Say, _ctx: &mut Context<Self>) -> u32 {
        n
    }
}

/// What a metric holds: a counter's count, a gauge's value, a histogram's number of samples.
#[derive(Debug, PartialEq)]
enum Seen {
    Counter(u64),
    Gauge(f64),
    Histogram(usize),
}

type Snapshot = Vec<(
    metrics_util::CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// The value of metric `name` with label `service` (or no label), if recorded.
fn value(snapshot: &Snapshot, name: &str, service: Option<&str>) -> Option<Seen> {
    snapshot.iter().find_map(|(key, _, _, value)| {
        let key = key.key();
        let labelled = match service {
            Some(s) => key.labels().any(|l| l.key() == "service" && l.value() == s),
            None => key.labels().next().is_none(),
        };
        (key.name() == name && labelled).then(|| match value {
            DebugValue::Counter(n) => Seen::Counter(*n),
            DebugValue::Gauge(g) => Seen::Gauge(g.into_inner()),
            DebugValue::Histogram(h) => Seen::Histogram(h.len()),
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorder_sees_messages_crashes_restarts_dead_letters_and_spawns() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");

    let system = System::new();
    let echo = system
        .spawn(ServiceSpec::new(Echo).label("echo"))
        .await
        .unwrap();
    // Not observed: nothing per message.
    echo.ask(Say(1)).await.unwrap();
    system.set_observing(true);
    for i in 0..5 {
        echo.ask(Say(i)).await.unwrap();
    }
    let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
    let kid = sup
        .supervise_with(
            ServiceSpec::from_factory(|| Echo).label("kid"),
            Default::default(),
        )
        .await
        .unwrap();
    kid.crash("boom");
    kid.wait_until(|k| k.restart_count() == 1 && k.state() == ServiceState::Running)
        .await;

    let snapshot = snapshotter.snapshot().into_vec();
    let get = |name, service| value(&snapshot, name, service);
    assert_eq!(
        get("modo_messages_handled_total", Some("echo")),
        Some(Seen::Counter(5))
    );
    assert_eq!(
        get("modo_handle_seconds", Some("echo")),
        Some(Seen::Histogram(5))
    );
    assert_eq!(
        get("modo_mailbox_wait_seconds", Some("echo")),
        Some(Seen::Histogram(5))
    );
    assert_eq!(
        get("modo_mailbox_depth", Some("echo")),
        Some(Seen::Gauge(0.0))
    );
    assert_eq!(
        get("modo_crashes_total", Some("kid")),
        Some(Seen::Counter(1))
    );
    assert_eq!(
        get("modo_restarts_total", Some("kid")),
        Some(Seen::Counter(1))
    );
    assert!(matches!(get("modo_spawns_total", None), Some(Seen::Counter(n)) if n >= 3));

    // Dead letters: two messages queued behind a crash.
    let entered = std::sync::Arc::new(tokio::sync::Notify::new());
    struct Gated(std::sync::Arc<tokio::sync::Notify>);
    impl Service for Gated {}
    struct Wait;
    impl Handler<Wait> for Gated {
        type Reply = ();
        async fn handle(&mut self, _: Wait, _ctx: &mut Context<Self>) {
            self.0.notify_one();
            std::future::pending::<()>().await
        }
    }
    let gated = system
        .spawn(ServiceSpec::new(Gated(entered.clone())).label("gated"))
        .await
        .unwrap();
    gated.tell(Wait).await.unwrap();
    // The first is in its handler (lost with the crash, not a dead letter); two wait behind.
    entered.notified().await;
    gated.tell(Wait).await.unwrap();
    gated.tell(Wait).await.unwrap();
    gated.crash("down");
    gated.wait_until_stopped().await;
    let snapshot = snapshotter.snapshot().into_vec();
    assert_eq!(
        value(&snapshot, "modo_dead_letters_total", Some("gated")),
        Some(Seen::Counter(2))
    );
    system.shutdown().await.unwrap();
}
