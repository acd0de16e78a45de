//! The shutdown flag (`wait_for_shutdown`, `set_shutdown`) and the shutdown timeout that
//! bounds every wait of the stop sequence: a missing flag, a hung `on_stop`, a task that
//! ignores the stop. Every duration is exact: paused time.

mod common;

use std::time::Duration;

use common::{Journal, Noted, j, secs};
use modo::prelude::*;
use modo::{DEFAULT_SHUTDOWN_TIMEOUT, Hook};
use tokio::time::Instant;

/// What sets the flag of a [`Flagged`] service, besides the test.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Setter {
    Nobody,
    /// A background task, the moment the stop signal fires.
    TaskAtStop,
    /// A background task, after 1 s of clean-up once the stop signal fired.
    TaskAfterCleanup,
}

/// A service whose stop waits for the shutdown flag; it journals its stop hooks.
struct Flagged {
    journal: Journal,
    timeout: Option<Duration>,
    setter: Setter,
}

impl Flagged {
    fn new(journal: &Journal, timeout: Option<Duration>) -> Self {
        Flagged {
            journal: journal.clone(),
            timeout,
            setter: Setter::Nobody,
        }
    }
}

impl Service for Flagged {
    fn wait_for_shutdown(&self) -> bool {
        true
    }

    fn shutdown_timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_SHUTDOWN_TIMEOUT)
    }

    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let stop = ctx.stop_signal();
        let me = ctx.myself().clone();
        let journal = self.journal.clone();
        match self.setter {
            Setter::Nobody => {}
            Setter::TaskAtStop => {
                ctx.spawn(async move {
                    stop.stopped().await;
                    journal.push("task:set_shutdown");
                    me.set_shutdown();
                });
            }
            Setter::TaskAfterCleanup => {
                ctx.spawn(async move {
                    stop.stopped().await;
                    tokio::time::sleep(secs(1)).await;
                    journal.push("task:set_shutdown");
                    me.set_shutdown();
                });
            }
        }
        Ok(())
    }

    async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push("on_stop");
        Ok(())
    }

    async fn on_shutdown(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push("on_shutdown");
        Ok(())
    }
}

/// Sets the flag from a handler, through the context.
struct SetFlag;

impl Handler<SetFlag> for Flagged {
    type Reply = ();
    async fn handle(&mut self, _: SetFlag, ctx: &mut Context<Self>) {
        ctx.set_shutdown();
    }
}

// ----- waiting for the flag ---------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn stop_waits_for_the_flag_and_completes_right_after_it() {
    let journal = Journal::new();
    let system = System::new();
    let f = system
        .spawn(Flagged::new(&journal, Some(secs(5))))
        .await
        .unwrap();
    let start = Instant::now();
    let stopping = tokio::spawn({
        let f = f.clone();
        async move { f.stop().await }
    });
    tokio::time::sleep(secs(2)).await;
    assert!(!stopping.is_finished());
    assert_eq!(f.state(), ServiceState::Stopping);
    assert_eq!(journal.take(), j(&["on_stop"]));

    f.set_shutdown();
    stopping.await.unwrap().unwrap();
    assert_eq!(start.elapsed(), secs(2));
    assert_eq!(journal.take(), j(&["on_shutdown"]));
    assert_eq!(f.state(), ServiceState::Shutdown);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn without_the_flag_stop_ends_at_exactly_the_shutdown_timeout() {
    let journal = Journal::new();
    let system = System::new();
    let f = system
        .spawn(Flagged::new(&journal, Some(secs(5))))
        .await
        .unwrap();
    let start = Instant::now();
    // A warning is logged and the stop goes on: it still succeeds.
    f.stop().await.unwrap();
    assert_eq!(start.elapsed(), secs(5));
    assert_eq!(journal.take(), j(&["on_stop", "on_shutdown"]));
    assert_eq!(f.state(), ServiceState::Shutdown);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_default_shutdown_timeout_is_sixty_seconds() {
    assert_eq!(DEFAULT_SHUTDOWN_TIMEOUT, secs(60));
    let journal = Journal::new();
    let system = System::new();
    let f = system.spawn(Flagged::new(&journal, None)).await.unwrap();
    let start = Instant::now();
    f.stop().await.unwrap();
    assert_eq!(start.elapsed(), secs(60));
    assert_eq!(journal.take(), j(&["on_stop", "on_shutdown"]));
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_flag_set_before_the_stop_lets_it_through_at_once() {
    // From outside.
    let journal = Journal::new();
    let system = System::new();
    let f = system
        .spawn(Flagged::new(&journal, Some(secs(5))))
        .await
        .unwrap();
    f.set_shutdown();
    let start = Instant::now();
    f.stop().await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);

    // From a handler, through the context.
    let g = system
        .spawn(Flagged::new(&journal, Some(secs(5))))
        .await
        .unwrap();
    g.ask(SetFlag).await.unwrap();
    g.stop().await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        journal.take(),
        j(&["on_stop", "on_shutdown", "on_stop", "on_shutdown"])
    );
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_background_task_can_set_the_flag_when_the_stop_signal_fires() {
    let journal = Journal::new();
    let system = System::new();
    let mut flagged = Flagged::new(&journal, Some(secs(5)));
    flagged.setter = Setter::TaskAtStop;
    let f = system.spawn(flagged).await.unwrap();
    let start = Instant::now();
    f.stop().await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        journal.take(),
        j(&["task:set_shutdown", "on_stop", "on_shutdown"])
    );
    system.shutdown().await.unwrap();
}

/// Mode waits for the flag before it cancels the service's futures, so a background task can
/// finish its clean-up and then set the flag: the stop completes right after it, at 1 s.
#[tokio::test(start_paused = true)]
async fn a_background_task_can_finish_its_cleanup_and_then_set_the_flag() {
    let journal = Journal::new();
    let system = System::new();
    let mut flagged = Flagged::new(&journal, Some(secs(5)));
    flagged.setter = Setter::TaskAfterCleanup;
    let f = system.spawn(flagged).await.unwrap();
    let start = Instant::now();
    f.stop().await.unwrap();
    assert_eq!(
        journal.take(),
        j(&["on_stop", "task:set_shutdown", "on_shutdown"])
    );
    assert_eq!(start.elapsed(), secs(1));
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_flag_belongs_to_one_run_a_restart_clears_it() {
    let journal = Journal::new();
    let system = System::new();
    let f = system
        .spawn(Flagged::new(&journal, Some(secs(5))))
        .await
        .unwrap();
    let start = Instant::now();
    f.set_shutdown();
    // The restart's stop finds the flag set: no wait.
    f.restart().await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    // The new run waits again.
    f.stop().await.unwrap();
    assert_eq!(start.elapsed(), secs(5));
    assert_eq!(
        journal.take(),
        j(&["on_stop", "on_shutdown", "on_stop", "on_shutdown"])
    );
    system.shutdown().await.unwrap();
}

// ----- a hung on_stop ---------------------------------------------------------------------------

/// Its `on_stop` never returns; the shutdown timeout is 5 s.
struct HangsOnStop {
    journal: Journal,
}

impl Service for HangsOnStop {
    fn shutdown_timeout(&self) -> Duration {
        secs(5)
    }

    async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push("hung:on_stop");
        std::future::pending::<()>().await;
        Ok(())
    }

    async fn on_shutdown(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push("hung:on_shutdown");
        Ok(())
    }
}

fn assert_on_stop_timed_out(err: &Error) {
    match err {
        Error::HookFailed {
            label,
            hook,
            source,
        } => {
            assert_eq!(&**label, "HangsOnStop");
            assert_eq!(*hook, Hook::OnStop);
            assert_eq!(source.to_string(), "did not return within 5s");
        }
        other => panic!("expected HookFailed in on_stop, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_hung_on_stop_is_cut_at_exactly_the_shutdown_timeout() {
    let journal = Journal::new();
    let system = System::new();
    let h = system
        .spawn(HangsOnStop {
            journal: journal.clone(),
        })
        .await
        .unwrap();
    let start = Instant::now();
    let err = h.stop().await.unwrap_err();
    assert_eq!(start.elapsed(), secs(5));
    assert_on_stop_timed_out(&err);
    // The rest of the stop sequence ran.
    assert_eq!(journal.take(), j(&["hung:on_stop", "hung:on_shutdown"]));
    assert!(h.is_terminated());
    assert_eq!(h.state(), ServiceState::Shutdown);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn system_shutdown_is_bounded_by_each_services_shutdown_timeout() {
    let journal = Journal::new();
    let system = System::new();
    let f = system
        .spawn(Flagged::new(&journal, Some(secs(3))))
        .await
        .unwrap();
    let h = system
        .spawn(HangsOnStop {
            journal: journal.clone(),
        })
        .await
        .unwrap();
    let start = Instant::now();
    // Newest root first: the hung on_stop (5 s), then the missing flag (3 s).
    let err = system.shutdown().await.unwrap_err();
    assert_eq!(start.elapsed(), secs(8));
    assert_on_stop_timed_out(&err);
    assert_eq!(
        journal.take(),
        j(&["hung:on_stop", "hung:on_shutdown", "on_stop", "on_shutdown"])
    );
    assert!(h.is_terminated());
    assert!(f.is_terminated());
    assert_eq!(system.live_actors(), 0);
}

// ----- tasks cannot block the stop ------------------------------------------------------------------

/// Its task never looks at the stop signal: it just keeps working.
struct Stubborn {
    journal: Journal,
}

async fn work_forever(guard: Noted) {
    let _guard = guard;
    loop {
        tokio::time::sleep(secs(1)).await;
    }
}

impl Service for Stubborn {
    fn shutdown_timeout(&self) -> Duration {
        secs(5)
    }

    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.spawn_named(
            "stubborn",
            work_forever(Noted::new("stubborn", &self.journal)),
        );
        Ok(())
    }

    async fn on_shutdown(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push("on_shutdown");
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_that_ignores_the_stop_is_aborted_and_cannot_block_it() {
    let journal = Journal::new();
    let system = System::new();
    let s = system
        .spawn(Stubborn {
            journal: journal.clone(),
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let start = Instant::now();
    s.stop().await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(journal.take(), j(&["drop:stubborn", "on_shutdown"]));

    // Within a system shutdown too.
    let t = system
        .spawn(Stubborn {
            journal: journal.clone(),
        })
        .await
        .unwrap();
    system.shutdown().await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(journal.take(), j(&["drop:stubborn", "on_shutdown"]));
    assert!(t.is_terminated());
    assert_eq!(system.live_actors(), 0);
}
