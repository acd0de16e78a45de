//! The System handle: spawn, shutdown order, repeated and concurrent shutdowns, shutting down
//! from inside a service, independence of two systems, dead letters.

mod common;

use common::{Journal, Ping, Probe};
use modo::prelude::*;

#[tokio::test]
async fn shutdown_stops_roots_newest_first_each_tree_children_first() {
    let journal = Journal::new();
    let system = System::new();
    system
        .spawn(Probe::new("A", &journal).with_children(vec![Probe::new("A1", &journal)]))
        .await
        .unwrap();
    system.spawn(Probe::new("B", &journal)).await.unwrap();
    assert_eq!(system.roots().len(), 2);
    assert_eq!(system.live_actors(), 3);
    journal.take();
    system.shutdown().await.unwrap();
    let stops: Vec<String> = journal.take();
    assert_eq!(
        stops,
        [
            "B:on_stop",
            "B:on_shutdown",
            "A:on_stop",
            "A1:on_stop",
            "A1:on_shutdown",
            "A:on_shutdown"
        ]
        .map(String::from)
    );
    assert!(system.roots().is_empty());
    assert_eq!(system.live_actors(), 0);
}

#[tokio::test]
async fn a_second_shutdown_is_harmless_and_spawn_after_is_refused() {
    let journal = Journal::new();
    let system = System::new();
    let a = system.spawn(Probe::new("A", &journal)).await.unwrap();
    let (r1, r2) = tokio::join!(system.shutdown(), system.shutdown());
    r1.unwrap();
    r2.unwrap();
    system.shutdown().await.unwrap();
    assert_eq!(journal.count("A:on_stop"), 1);
    assert!(a.is_terminated());
    assert!(system.is_shutting_down());
    let err = system.spawn(Probe::new("B", &journal)).await.unwrap_err();
    assert!(matches!(err, Error::ShuttingDown));
}

#[tokio::test]
async fn shutdown_reports_a_failing_stop_and_still_stops_the_rest() {
    let journal = Journal::new();
    let system = System::new();
    system.spawn(Probe::new("A", &journal)).await.unwrap();
    system
        .spawn(
            Probe::new("B", &journal)
                .fail_at(modo::Hook::OnShutdown, common::Fail::Err)
                .unwrap(),
        )
        .await
        .unwrap();
    let err = system.shutdown().await.unwrap_err();
    assert!(
        matches!(&err, Error::HookFailed { hook: modo::Hook::OnShutdown, label, .. } if &**label == "B"),
        "{err:?}"
    );
    assert_eq!(journal.count("A:on_shutdown"), 1);
    // The result is kept for later callers.
    assert!(system.shutdown().await.is_err());
}

struct Quitter;
struct Quit;

impl Service for Quitter {}

impl Handler<Quit> for Quitter {
    type Reply = Result<(), Error>;
    async fn handle(&mut self, _: Quit, ctx: &mut Context<Self>) -> Result<(), Error> {
        // Awaiting the shutdown here would wait for this very handler.
        let refused = ctx.system().shutdown().await;
        ctx.system().request_shutdown();
        refused
    }
}

#[tokio::test]
async fn shutdown_from_inside_a_service_is_requested_not_awaited() {
    let system = System::new();
    let q = system.spawn(Quitter).await.unwrap();
    let refused = q.ask(Quit).await.unwrap();
    assert!(matches!(refused, Err(Error::WouldDeadlock { .. })));
    q.wait_until_stopped().await;
    assert!(system.is_shutting_down());
    system.shutdown().await.unwrap();
    assert_eq!(system.live_actors(), 0);
}

#[tokio::test]
async fn two_systems_share_nothing() {
    let journal = Journal::new();
    let one = System::new();
    let two = System::new();
    let a = one.spawn(Probe::new("A", &journal)).await.unwrap();
    let b = two.spawn(Probe::new("B", &journal)).await.unwrap();
    one.shutdown().await.unwrap();
    assert!(a.is_terminated());
    assert_eq!(b.ask(Ping).await.unwrap(), "B");
    assert!(two.roots().len() == 1 && one.roots().is_empty());
    two.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_spawn_leaves_nothing_behind() {
    let journal = Journal::new();
    let system = System::new();
    let err = system
        .spawn(
            Probe::new("A", &journal)
                .fail_at(modo::Hook::OnStart, common::Fail::Panic)
                .unwrap(),
        )
        .await
        .unwrap_err();
    match err {
        Error::Crashed { reason, .. } => {
            assert!(reason.is_panic());
            assert!(
                reason.to_string().contains("A panicked in on_start"),
                "{reason}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(system.roots().is_empty());
    system.shutdown().await.unwrap();
    assert_eq!(system.live_actors(), 0);
}
