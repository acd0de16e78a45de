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

/// Starts only once `gate` opens; says so on `started`, and on `shut` when it shuts down.
struct Gated {
    gate: Option<tokio::sync::oneshot::Receiver<()>>,
    started: Option<tokio::sync::oneshot::Sender<()>>,
    shut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}
impl Service for Gated {
    async fn on_start(&mut self, _: &mut Context<Self>) -> HookResult {
        if let Some(gate) = self.gate.take() {
            let _ = gate.await;
        }
        Ok(())
    }
    async fn on_started(&mut self, _: &mut Context<Self>) -> HookResult {
        if let Some(started) = self.started.take() {
            let _ = started.send(());
        }
        Ok(())
    }
    async fn on_shutdown(&mut self, _: &mut Context<Self>) -> HookResult {
        self.shut.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// `spawn` drives a new service's start in the caller's task (no round trip to a task of its
/// own). A caller that goes away mid-start must not take the start with it: the service still
/// starts, in a task of its own, and `shutdown` stops it.
#[tokio::test]
async fn a_spawn_dropped_during_its_start_still_starts_and_shutdown_stops_it() {
    let system = System::new();
    let (open, gate) = tokio::sync::oneshot::channel();
    let (started, was_started) = tokio::sync::oneshot::channel();
    let shut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let spawn = system.spawn(Gated {
        gate: Some(gate),
        started: Some(started),
        shut: shut.clone(),
    });
    // The spawn is polled into `on_start`, which waits for the gate; then it is dropped.
    tokio::select! {
        biased;
        _ = spawn => panic!("the start waits for the gate"),
        () = tokio::task::yield_now() => {}
    }
    assert_eq!(system.live_actors(), 1, "the service outlives its spawn");
    open.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), was_started)
        .await
        .expect("the start went on without its spawner")
        .unwrap();
    assert_eq!(system.roots().len(), 1);
    system.shutdown().await.unwrap();
    assert!(shut.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(system.live_actors(), 0);
}

/// Records the runtime its start ran on.
struct WhereStarted(std::sync::Arc<std::sync::Mutex<Option<tokio::runtime::Id>>>);
impl Service for WhereStarted {
    async fn on_start(&mut self, _: &mut Context<Self>) -> HookResult {
        *self.0.lock().unwrap() = Some(tokio::runtime::Handle::current().id());
        Ok(())
    }
}

/// A spawn from another runtime than the System's does not run the start where it is called:
/// the service lives on the System's runtime, as every service does.
#[test]
fn a_spawn_from_another_runtime_starts_the_service_on_the_systems_runtime() {
    let home = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let system = home.block_on(async { System::new() });
    let elsewhere = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ran_on = std::sync::Arc::new(std::sync::Mutex::new(None));
    let addr = elsewhere
        .block_on(system.spawn(WhereStarted(ran_on.clone())))
        .unwrap();
    assert_eq!(*ran_on.lock().unwrap(), Some(home.handle().id()));
    assert_ne!(home.handle().id(), elsewhere.handle().id());
    // Started in the caller's task when the caller is on the System's runtime.
    home.block_on(async {
        addr.stop().await.unwrap();
        let again = system.spawn(WhereStarted(ran_on.clone())).await.unwrap();
        assert_eq!(*ran_on.lock().unwrap(), Some(home.handle().id()));
        // Its task went on after the spawn returned: a stop is answered.
        tokio::time::timeout(std::time::Duration::from_secs(10), again.stop())
            .await
            .expect("the task serving the service runs")
            .unwrap();
        system.shutdown().await.unwrap();
    });
}
