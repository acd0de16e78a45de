//! A future as a service (`modo::from_future`, Mode's `from_awaitable`): the start runs it,
//! the stop cancels it, its completion stops the service, its failure crashes it; from a
//! factory it can be restarted.

mod common;

use std::time::Duration;

use common::{Journal, Noted, j, secs};
use modo::Hook;
use modo::prelude::*;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A future that writes `run:<name>` on its first poll and then holds a guard forever.
async fn run_forever(name: String, journal: Journal) {
    journal.push(format!("run:{name}"));
    let _guard = Noted(name, journal);
    std::future::pending::<()>().await
}

#[tokio::test(start_paused = true)]
async fn spawning_starts_the_future_and_stopping_cancels_it() {
    let journal = Journal::new();
    let (started, on_start) = oneshot::channel();
    let system = System::new();
    let start = Instant::now();
    let job = {
        let journal = journal.clone();
        system
            .spawn(modo::from_future(async move {
                let _ = started.send(());
                run_forever("job".into(), journal).await
            }))
            .await
            .unwrap()
    };
    assert_eq!(job.label(), "FutureService");
    assert_eq!(job.state(), ServiceState::Running);
    tokio::time::timeout(secs(3600), on_start)
        .await
        .expect("the start runs the future")
        .unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);

    tokio::time::sleep(secs(10)).await;
    assert_eq!(journal.take(), j(&["run:job"]));
    job.stop().await.unwrap();
    assert_eq!(
        journal.take(),
        j(&["drop:job"]),
        "the stop dropped the future"
    );
    assert_eq!(job.state(), ServiceState::Shutdown);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_future_that_completes_stops_its_service() {
    let system = System::new();
    let start = Instant::now();
    let job = system
        .spawn(modo::from_future(async {
            tokio::time::sleep(secs(5)).await;
        }))
        .await
        .unwrap();
    job.wait_until_stopped().await;
    assert_eq!(start.elapsed(), secs(5));
    assert_eq!(job.state(), ServiceState::Shutdown);
    assert!(job.crash_reason().is_none());
    assert!(job.is_terminated());
    assert!(system.roots().is_empty());
    system.shutdown().await.unwrap();
    assert_eq!(system.live_actors(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_future_returning_ok_stops_its_service_too() {
    let system = System::new();
    let start = Instant::now();
    let job = system
        .spawn(modo::from_future(async {
            tokio::time::sleep(secs(2)).await;
            Ok::<(), BoxError>(())
        }))
        .await
        .unwrap();
    job.wait_until_stopped().await;
    assert_eq!(start.elapsed(), secs(2));
    assert_eq!(job.state(), ServiceState::Shutdown);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_future_returning_err_crashes_its_service() {
    let system = System::new();
    let start = Instant::now();
    let job = system
        .spawn(
            modo::from_future(async {
                tokio::time::sleep(secs(2)).await;
                Err::<(), BoxError>("lost the connection".into())
            })
            .label("Fetcher"),
        )
        .await
        .unwrap();
    job.wait_until_stopped().await;
    assert_eq!(start.elapsed(), secs(2));
    assert_eq!(job.state(), ServiceState::Crashed);
    let reason = job.crash_reason().expect("a crash reason");
    assert!(matches!(reason, CrashReason::Error(_)), "{reason:?}");
    assert_eq!(
        reason.to_string(),
        "task Fetcher of Fetcher failed: lost the connection"
    );
    assert!(job.is_terminated());
    system.shutdown().await.unwrap();
}

/// Panics; returns `()` as far as the type checker knows.
fn blow_up() {
    panic!("fetch panicked");
}

#[tokio::test(start_paused = true)]
async fn a_panicking_future_crashes_its_service_naming_it() {
    let system = System::new();
    let job = system
        .spawn(
            modo::from_future(async {
                tokio::time::sleep(secs(1)).await;
                blow_up();
            })
            .label("Fetcher"),
        )
        .await
        .unwrap();
    job.wait_until_stopped().await;
    assert_eq!(job.state(), ServiceState::Crashed);
    match job.crash_reason() {
        Some(CrashReason::Panic { message, during }) => {
            assert_eq!(&*message, "fetch panicked");
            assert_eq!(&*during, "task Fetcher");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn label_names_the_service() {
    let system = System::new();
    let job = system
        .spawn(modo::from_future(std::future::pending::<()>()).label("Poller"))
        .await
        .unwrap();
    assert_eq!(job.label(), "Poller");
    assert_eq!(job.shortlabel(), "Poller");
    assert_eq!(system.roots()[0].label(), "Poller");
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn from_a_factory_it_restarts_with_a_fresh_future() {
    let journal = Journal::new();
    let system = System::new();
    let mut run = 0;
    let job = {
        let journal = journal.clone();
        system
            .spawn(ServiceSpec::from_factory(move || {
                run += 1;
                modo::from_future(run_forever(format!("run{run}"), journal.clone())).label("Job")
            }))
            .await
            .unwrap()
    };
    tokio::time::sleep(secs(1)).await;
    assert_eq!(journal.take(), j(&["run:run1"]));
    job.restart().await.unwrap();
    tokio::time::sleep(secs(1)).await;
    assert_eq!(journal.take(), j(&["drop:run1", "run:run2"]));
    assert_eq!(job.restart_count(), 1);
    assert_eq!(job.state(), ServiceState::Running);
    job.stop().await.unwrap();
    assert_eq!(journal.take(), j(&["drop:run2"]));
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn without_a_factory_a_restart_fails_with_a_clear_error() {
    let journal = Journal::new();
    let system = System::new();
    let job = system
        .spawn(modo::from_future(run_forever("once".into(), journal.clone())).label("Once"))
        .await
        .unwrap();
    tokio::time::sleep(secs(1)).await;
    let err = job.restart().await.unwrap_err();
    match &err {
        Error::HookFailed {
            label,
            hook,
            source,
        } => {
            assert_eq!(&**label, "Once");
            assert_eq!(*hook, Hook::OnStart);
            assert_eq!(
                source.to_string(),
                "the future already ran; spawn from a factory to restart it"
            );
        }
        other => panic!("expected HookFailed in on_start, got {other:?}"),
    }
    // The first run's future was stopped by the restart, and nothing else ran.
    assert_eq!(journal.take(), j(&["run:once", "drop:once"]));
    // A root whose start failed is crashed and gone.
    assert_eq!(job.state(), ServiceState::Crashed);
    assert!(job.is_terminated());
    system.shutdown().await.unwrap();
    assert_eq!(system.live_actors(), 0);
}
