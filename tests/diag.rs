//! Diagnostics (Mode's `Diag`): flags a service raises through `ctx.diag()`, seen from outside
//! through `addr.diag()`, with the instant of each flag's last transition, and
//! `transition_with`, which holds a flag exactly while its future runs, however it ends.

mod common;

use std::time::Duration;

use common::secs;
use modo::prelude::*;
use tokio::time::Instant;

/// Raises and lowers flags on request; runs work under `transition_with`.
struct Flagged;

impl Service for Flagged {}

struct Set(&'static str);
struct Unset(&'static str);
/// Holds `committing` for the given time, then succeeds.
struct Commit(Duration);
/// Holds `flushing` for the given time, then returns `Err`.
struct FailingFlush(Duration);
/// Holds `rebalancing` for the given time, then panics.
struct PanickyRebalance(Duration);
/// Holds `waiting` under a wait that the service's stop abandons.
struct WaitHolding;

impl Handler<Set> for Flagged {
    type Reply = ();
    async fn handle(&mut self, msg: Set, ctx: &mut Context<Self>) {
        ctx.diag().set_flag(msg.0);
    }
}

impl Handler<Unset> for Flagged {
    type Reply = ();
    async fn handle(&mut self, msg: Unset, ctx: &mut Context<Self>) {
        ctx.diag().unset_flag(msg.0);
    }
}

impl Handler<Commit> for Flagged {
    type Reply = u32;
    async fn handle(&mut self, msg: Commit, ctx: &mut Context<Self>) -> u32 {
        ctx.diag()
            .transition_with("committing", async move {
                tokio::time::sleep(msg.0).await;
                7
            })
            .await
    }
}

impl Handler<FailingFlush> for Flagged {
    type Reply = Result<(), String>;
    async fn handle(&mut self, msg: FailingFlush, ctx: &mut Context<Self>) -> Result<(), String> {
        ctx.diag()
            .transition_with("flushing", async move {
                tokio::time::sleep(msg.0).await;
                Err("disk full".to_string())
            })
            .await
    }
}

/// Panics; returns `()` as far as the type checker knows.
fn blow_up() {
    panic!("rebalance failed");
}

impl Handler<PanickyRebalance> for Flagged {
    type Reply = ();
    async fn handle(&mut self, msg: PanickyRebalance, ctx: &mut Context<Self>) {
        ctx.diag()
            .transition_with("rebalancing", async move {
                tokio::time::sleep(msg.0).await;
                blow_up();
            })
            .await
    }
}

impl Handler<WaitHolding> for Flagged {
    type Reply = Result<(), WaitError>;
    async fn handle(&mut self, _: WaitHolding, ctx: &mut Context<Self>) -> Result<(), WaitError> {
        // Through the stop signal: the context's own `wait` future is not `Send` yet (see
        // tests/waits.rs).
        let stop = ctx.stop_signal();
        stop.wait(
            ctx.diag()
                .transition_with("waiting", std::future::pending::<()>()),
        )
        .await
    }
}

async fn flagged() -> (System, Addr<Flagged>, Instant) {
    let system = System::new();
    let addr = system.spawn(Flagged).await.unwrap();
    (system, addr, Instant::now())
}

#[tokio::test(start_paused = true)]
async fn flags_set_inside_are_seen_from_outside_with_their_last_transition() {
    let (system, f, start) = flagged().await;
    assert!(f.diag().flags().is_empty());
    assert_eq!(f.diag().last_transition("b"), None);

    tokio::time::sleep(secs(2)).await;
    f.ask(Set("b")).await.unwrap();
    tokio::time::sleep(secs(1)).await;
    f.ask(Set("a")).await.unwrap();
    assert_eq!(f.diag().flags(), ["a", "b"], "sorted");
    assert!(f.diag().has_flag("a"));
    assert!(f.diag().has_flag("b"));
    assert!(!f.diag().has_flag("c"));
    assert_eq!(f.diag().last_transition("b"), Some(start + secs(2)));
    assert_eq!(f.diag().last_transition("a"), Some(start + secs(3)));

    tokio::time::sleep(secs(2)).await;
    f.ask(Unset("b")).await.unwrap();
    assert_eq!(f.diag().flags(), ["a"]);
    assert!(!f.diag().has_flag("b"));
    assert_eq!(f.diag().last_transition("b"), Some(start + secs(5)));

    // Lowering a flag that is not raised is no transition.
    tokio::time::sleep(secs(1)).await;
    f.ask(Unset("b")).await.unwrap();
    f.ask(Unset("never")).await.unwrap();
    assert_eq!(f.diag().last_transition("b"), Some(start + secs(5)));
    assert_eq!(f.diag().last_transition("never"), None);

    // Raising a raised flag again is a transition: its time moves.
    f.ask(Set("a")).await.unwrap();
    assert_eq!(f.diag().flags(), ["a"]);
    assert_eq!(f.diag().last_transition("a"), Some(start + secs(6)));
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn transition_with_holds_the_flag_while_the_future_runs() {
    let (system, f, start) = flagged().await;
    let commit = tokio::spawn({
        let f = f.clone();
        async move { f.ask(Commit(secs(3))).await }
    });
    tokio::time::sleep(secs(1)).await;
    assert_eq!(f.diag().flags(), ["committing"]);
    assert_eq!(f.diag().last_transition("committing"), Some(start));
    assert_eq!(commit.await.unwrap().unwrap(), 7);
    assert_eq!(start.elapsed(), secs(3));
    assert!(f.diag().flags().is_empty());
    assert_eq!(
        f.diag().last_transition("committing"),
        Some(start + secs(3))
    );
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn transition_with_lowers_the_flag_after_an_err_result() {
    let (system, f, start) = flagged().await;
    let flush = tokio::spawn({
        let f = f.clone();
        async move { f.ask(FailingFlush(secs(2))).await }
    });
    tokio::time::sleep(secs(1)).await;
    assert!(f.diag().has_flag("flushing"));
    assert_eq!(flush.await.unwrap().unwrap(), Err("disk full".to_string()));
    assert!(!f.diag().has_flag("flushing"));
    assert_eq!(f.diag().last_transition("flushing"), Some(start + secs(2)));
    assert_eq!(f.state(), ServiceState::Running);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_handler_panicking_under_transition_with_crashes_the_service_and_lowers_the_flag() {
    let (system, f, start) = flagged().await;
    let rebalance = tokio::spawn({
        let f = f.clone();
        async move { f.ask(PanickyRebalance(secs(2))).await }
    });
    tokio::time::sleep(secs(1)).await;
    assert!(f.diag().has_flag("rebalancing"));
    let err = rebalance.await.unwrap().unwrap_err();
    match &err {
        Error::Crashed { label, reason } => {
            assert_eq!(&**label, "Flagged");
            assert!(reason.is_panic());
            assert_eq!(
                reason.to_string(),
                "panicked in handler of PanickyRebalance: rebalance failed"
            );
        }
        other => panic!("expected Crashed, got {other:?}"),
    }
    f.wait_until_stopped().await;
    assert_eq!(f.state(), ServiceState::Crashed);
    assert!(f.diag().flags().is_empty());
    assert_eq!(
        f.diag().last_transition("rebalancing"),
        Some(start + secs(2))
    );
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_transition_abandoned_by_the_stop_lowers_its_flag() {
    let (system, f, start) = flagged().await;
    let wait = tokio::spawn({
        let f = f.clone();
        async move { f.ask(WaitHolding).await }
    });
    tokio::time::sleep(secs(4)).await;
    assert_eq!(f.diag().flags(), ["waiting"]);
    f.stop().await.unwrap();
    assert_eq!(wait.await.unwrap().unwrap(), Err(WaitError::Stopped));
    assert!(f.diag().flags().is_empty());
    assert_eq!(f.diag().last_transition("waiting"), Some(start + secs(4)));
    system.shutdown().await.unwrap();
}
