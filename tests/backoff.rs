//! A supervisor's backoff does not hold it up: while one child waits out a long backoff,
//! another child's crash is restarted at once and requests are answered; a pending group
//! restart covers the crash of a child in its group (no double restart); a discarded child
//! leaves it; the supervisor's stop or restart cancels it; a child restarted by hand meanwhile is
//! not restarted again. All under paused time.

use std::time::Duration;

use modo::prelude::*;
use modo::supervisor::{Backoff, RestartPolicy, Strategy, Supervisor};
use tokio::time::Instant;

struct Kid(&'static str);

impl Service for Kid {
    fn label(&self) -> std::borrow::Cow<'static, str> {
        self.0.into()
    }
}

fn kid(name: &'static str) -> impl FnMut() -> Kid + Send + 'static {
    move || Kid(name)
}

async fn supervisor(system: &System, strategy: Strategy, backoff: Backoff) -> Addr<Supervisor> {
    system
        .spawn(
            Supervisor::builder()
                .strategy(strategy)
                .max_restarts(100)
                .over(Duration::from_secs(60))
                .backoff(backoff)
                .build(),
        )
        .await
        .unwrap()
}

/// Waits until `k` has been restarted `n` times and runs again.
async fn restarted(k: &ServiceRef, n: u32) {
    k.wait_until(|k| k.restart_count() == n && k.state() == ServiceState::Running)
        .await;
}

/// A one-for-one supervisor with a fixed `backoff`, and its child `a` crashed and waiting
/// it out (the supervisor has taken the crash in).
async fn crashed_in_backoff(system: &System, backoff: Duration) -> (Addr<Supervisor>, Addr<Kid>) {
    let sup = supervisor(system, Strategy::OneForOne, Backoff::Fixed(backoff)).await;
    let a = sup.supervise(kid("a")).await.unwrap();
    a.crash("a fails");
    a.wait_until(|a| a.is_crashed()).await;
    sup.children().await.unwrap();
    (sup, a)
}

#[tokio::test(start_paused = true)]
async fn another_child_is_restarted_at_once_while_one_waits_out_its_backoff() {
    let system = System::new();
    let sup = supervisor(
        &system,
        Strategy::OneForOne,
        Backoff::Exponential {
            base: Duration::from_millis(100),
            max: Duration::from_secs(60),
        },
    )
    .await;
    let a = sup.supervise(kid("a")).await.unwrap();
    let b = sup.supervise(kid("b")).await.unwrap();
    // `a` crash-loops: each restart in a row waits twice as long (100 ms ... 3.2 s).
    for n in 1..=6 {
        a.crash("a fails");
        restarted(&a, n).await;
    }
    a.crash("a fails again");
    a.wait_until(|a| a.is_crashed()).await;
    let t0 = Instant::now();

    // Meanwhile `b` crashes for the first time: its 100 ms backoff, not a's 6.4 s.
    b.crash("b fails");
    restarted(&b, 1).await;
    assert_eq!(t0.elapsed(), Duration::from_millis(100));
    assert!(a.is_crashed(), "a still waits out its backoff");
    // And the supervisor answers requests while it waits.
    assert_eq!(sup.children().await.unwrap().len(), 2);
    assert!(
        sup.children()
            .await
            .unwrap()
            .iter()
            .any(|c| c.label() == "a")
    );

    restarted(&a, 7).await;
    assert_eq!(t0.elapsed(), Duration::from_millis(6_400));
    assert_eq!(b.restart_count(), 1);
    system.shutdown().await.unwrap();
}

/// The pending timer is one of the supervisor's tasks, named for the child.
#[tokio::test(start_paused = true)]
async fn a_pending_restart_shows_as_a_task_of_the_supervisor() {
    let system = System::new();
    let (sup, a) = crashed_in_backoff(&system, Duration::from_secs(5)).await;
    assert_eq!(sup.task_names(), ["Supervisor.backoff(a)"]);
    restarted(&a, 1).await;
    assert!(sup.task_names().is_empty());
    system.shutdown().await.unwrap();
}

/// One-for-all: a sibling crashing while the group restart waits out its backoff is covered
/// by it: every child is restarted exactly once.
#[tokio::test(start_paused = true)]
async fn a_pending_one_for_all_restart_covers_a_siblings_crash() {
    let system = System::new();
    let sup = supervisor(
        &system,
        Strategy::OneForAll,
        Backoff::Fixed(Duration::from_secs(1)),
    )
    .await;
    let kids = [
        sup.supervise(kid("a")).await.unwrap(),
        sup.supervise(kid("b")).await.unwrap(),
        sup.supervise(kid("c")).await.unwrap(),
    ];
    let t0 = Instant::now();
    kids[0].crash("a fails");
    kids[0].wait_until(|k| k.is_crashed()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    kids[1].crash("b fails");
    kids[1].wait_until(|k| k.is_crashed()).await;
    assert!(kids[2].is_started(), "c runs until the group restart");

    for k in &kids {
        restarted(k, 1).await;
    }
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
    // Long after: nobody was restarted a second time.
    tokio::time::sleep(Duration::from_secs(10)).await;
    sup.children().await.unwrap();
    assert_eq!(kids.each_ref().map(|k| k.restart_count()), [1, 1, 1]);
    system.shutdown().await.unwrap();
}

/// Rest-for-one: a later child crashing during the backoff is covered; an earlier child's
/// crash is its own restart, which takes the pending one over.
#[tokio::test(start_paused = true)]
async fn rest_for_one_restarts_during_a_backoff_do_not_double_up() {
    let system = System::new();
    let sup = supervisor(
        &system,
        Strategy::RestForOne,
        Backoff::Exponential {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        },
    )
    .await;
    let kids = [
        sup.supervise(kid("a")).await.unwrap(),
        sup.supervise(kid("b")).await.unwrap(),
        sup.supervise(kid("c")).await.unwrap(),
    ];
    let counts = || kids.each_ref().map(|k| k.restart_count());

    // b's restart (b, c) is pending; c crashes: covered.
    kids[1].crash("b fails");
    kids[1].wait_until(|k| k.is_crashed()).await;
    kids[2].crash("c fails");
    kids[2].wait_until(|k| k.is_crashed()).await;
    restarted(&kids[1], 1).await;
    restarted(&kids[2], 1).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    sup.children().await.unwrap();
    assert_eq!(counts(), [0, 1, 1]);

    // c crashes twice in a row: its second restart waits 2 s. Meanwhile a crashes: a's
    // group (a, b, c) is due after 1 s, restarts c as well, and drops c's pending restart.
    kids[2].crash("c fails");
    restarted(&kids[2], 2).await;
    kids[2].crash("c fails again");
    kids[2].wait_until(|k| k.is_crashed()).await;
    let t0 = Instant::now();
    kids[0].crash("a fails");
    for (k, n) in kids.iter().zip([1, 2, 3]) {
        restarted(k, n).await;
    }
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
    tokio::time::sleep(Duration::from_secs(10)).await;
    sup.children().await.unwrap();
    assert_eq!(counts(), [1, 2, 3]);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_supervisors_stop_cancels_a_pending_restart() {
    let system = System::new();
    let (sup, a) = crashed_in_backoff(&system, Duration::from_secs(60)).await;
    let t0 = Instant::now();
    sup.stop().await.unwrap();
    assert_eq!(
        t0.elapsed(),
        Duration::ZERO,
        "the stop did not wait for the backoff"
    );
    assert!(a.is_terminated());
    assert_eq!(a.restart_count(), 0);
    system.shutdown().await.unwrap();
}

/// A restart of the supervisor restarts its children: the pending restart is moot and never
/// fires later.
#[tokio::test(start_paused = true)]
async fn the_supervisors_restart_drops_a_pending_restart() {
    let system = System::new();
    let (sup, a) = crashed_in_backoff(&system, Duration::from_secs(5)).await;
    sup.restart().await.unwrap();
    restarted(&a, 1).await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    sup.children().await.unwrap();
    assert_eq!(a.restart_count(), 1);
    system.shutdown().await.unwrap();
}

/// A child discarded during its backoff is not restarted; the others are not touched.
#[tokio::test(start_paused = true)]
async fn a_child_discarded_during_its_backoff_is_not_restarted() {
    let system = System::new();
    let sup = supervisor(
        &system,
        Strategy::OneForOne,
        Backoff::Fixed(Duration::from_secs(5)),
    )
    .await;
    let a = sup.supervise(kid("a")).await.unwrap();
    let b = sup.supervise(kid("b")).await.unwrap();
    a.crash("a fails");
    a.wait_until(|a| a.is_crashed()).await;
    sup.discard(&a).await.unwrap();
    assert!(a.is_terminated());
    tokio::time::sleep(Duration::from_secs(30)).await;
    let children = sup.children().await.unwrap();
    assert_eq!(children.len(), 1);
    assert_eq!((a.restart_count(), b.restart_count()), (0, 0));
    assert!(sup.task_names().is_empty(), "the timer went with it");
    assert!(b.is_started());
    system.shutdown().await.unwrap();
}

/// The intensity is counted when a restart is decided, backoff or not: crashes of two
/// children during each other's backoffs still add up to an escalation.
#[tokio::test(start_paused = true)]
async fn crashes_during_backoffs_count_against_the_intensity() {
    let system = System::new();
    let sup = system
        .spawn(
            Supervisor::builder()
                .max_restarts(2)
                .over(Duration::from_secs(60))
                .backoff(Backoff::Fixed(Duration::from_secs(10)))
                .build(),
        )
        .await
        .unwrap();
    let kids = [
        sup.supervise_with(
            ServiceSpec::from_factory(kid("a")),
            RestartPolicy::Permanent,
        )
        .await
        .unwrap(),
        sup.supervise_with(
            ServiceSpec::from_factory(kid("b")),
            RestartPolicy::Permanent,
        )
        .await
        .unwrap(),
        sup.supervise_with(
            ServiceSpec::from_factory(kid("c")),
            RestartPolicy::Permanent,
        )
        .await
        .unwrap(),
    ];
    let t0 = Instant::now();
    for k in &kids {
        k.crash("fails");
        k.wait_until(|k| k.is_crashed() || k.is_terminated()).await;
    }
    sup.wait_until(|s| s.is_terminated()).await;
    assert_eq!(
        t0.elapsed(),
        Duration::ZERO,
        "the third crash escalated at once"
    );
    assert!(matches!(
        sup.crash_reason(),
        Some(CrashReason::Error(ref e))
            if matches!(e.downcast_ref::<Error>(), Some(Error::MaxRestartsExceeded { restarts: 3, .. }))
    ));
    assert!(
        kids.iter()
            .all(|k| k.is_terminated() && k.restart_count() == 0)
    );
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_child_restarted_by_hand_during_its_backoff_is_not_restarted_again() {
    let system = System::new();
    let (sup, a) = crashed_in_backoff(&system, Duration::from_secs(5)).await;
    // Its operator does not wait out the 5 s backoff.
    a.restart().await.unwrap();
    assert_eq!(a.restart_count(), 1);
    assert_eq!(a.state(), ServiceState::Running);
    // The backoff runs out: the crash it answered was answered already.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let _ = sup.children().await.unwrap();
    assert_eq!(
        a.restart_count(),
        1,
        "restarted a second time for one crash"
    );
    assert_eq!(a.state(), ServiceState::Running);
    // A later crash is still restarted after its backoff.
    a.crash("a fails again");
    restarted(&a.service_ref(), 2).await;
    system.shutdown().await.unwrap();
}
