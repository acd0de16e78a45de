//! Contexts (Mode's `add_context` and `add_async_context`): guards dropped and async clean-ups
//! run at stop, newest first, after the background tasks are joined and before `on_shutdown`;
//! also on a crash and a failed start; once per run across restarts; bounded by the shutdown
//! timeout.

mod common;

use std::time::Duration;

use common::{Journal, Noted, j, secs};
use modo::prelude::*;
use tokio::time::Instant;

/// Run `r` adds, in this order: guard `g1@r`, async clean-up `a2@r`, a task holding
/// `task@r`, guard `g3@r`, async clean-up `a4@r` that takes 1 s. Its hooks are journaled.
struct Exits {
    journal: Journal,
    runs: u32,
    fail_on_start: bool,
}

impl Exits {
    fn new(journal: &Journal) -> Self {
        Exits {
            journal: journal.clone(),
            runs: 0,
            fail_on_start: false,
        }
    }
}

impl Service for Exits {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        self.runs += 1;
        let r = self.runs;
        let journal = &self.journal;
        ctx.add_context(Noted(format!("g1@{r}"), journal.clone()));
        let j2 = journal.clone();
        ctx.add_async_context(async move { j2.push(format!("a2@{r}")) });
        let held = Noted(format!("task@{r}"), journal.clone());
        ctx.spawn(async move {
            let _held = held;
            std::future::pending::<()>().await
        });
        ctx.add_context(Noted(format!("g3@{r}"), journal.clone()));
        let j4 = journal.clone();
        ctx.add_async_context(async move {
            j4.push(format!("a4@{r}:begin"));
            tokio::time::sleep(secs(1)).await;
            j4.push(format!("a4@{r}:end"));
        });
        journal.push(format!("on_start@{r}"));
        if self.fail_on_start {
            return Err("cannot start".into());
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

    async fn on_restart(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push("on_restart");
        Ok(())
    }
}

/// Adds a guard while running.
struct AddGuard(&'static str);

impl Handler<AddGuard> for Exits {
    type Reply = ();
    async fn handle(&mut self, msg: AddGuard, ctx: &mut Context<Self>) {
        ctx.add_context(Noted(
            format!("{}@{}", msg.0, self.runs),
            self.journal.clone(),
        ));
    }
}

/// Panics in a handler.
struct Boom;

impl Handler<Boom> for Exits {
    type Reply = ();
    async fn handle(&mut self, _: Boom, _ctx: &mut Context<Self>) {
        panic!("boom");
    }
}

/// What stopping run `r` writes: the task first (joined), then the exits newest first, then
/// `on_shutdown`.
fn stop_of_run(r: u32) -> Vec<String> {
    [
        "on_stop".to_string(),
        format!("drop:task@{r}"),
        format!("a4@{r}:begin"),
        format!("a4@{r}:end"),
        format!("drop:g3@{r}"),
        format!("a2@{r}"),
        format!("drop:g1@{r}"),
        "on_shutdown".to_string(),
    ]
    .into()
}

#[tokio::test(start_paused = true)]
async fn at_stop_guards_and_cleanups_run_newest_first_between_the_tasks_and_on_shutdown() {
    let journal = Journal::new();
    let system = System::new();
    let e = system.spawn(Exits::new(&journal)).await.unwrap();
    e.ask(AddGuard("g5")).await.unwrap();
    assert_eq!(
        journal.take(),
        j(&["on_start@1"]),
        "nothing runs before the stop"
    );
    let start = Instant::now();
    e.stop().await.unwrap();
    // a4 takes its second; nothing else waits.
    assert_eq!(start.elapsed(), secs(1));
    let mut expected = stop_of_run(1);
    expected.insert(2, "drop:g5@1".to_string());
    assert_eq!(journal.take(), expected);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn guards_and_cleanups_also_run_on_a_crash() {
    for how in ["crash", "panic"] {
        let journal = Journal::new();
        let system = System::new();
        let e = system.spawn(Exits::new(&journal)).await.unwrap();
        journal.take();
        match how {
            "crash" => e.crash("boom"),
            _ => {
                let err = e.ask(Boom).await.unwrap_err();
                assert!(err.is_crashed(), "{err:?}");
            }
        }
        e.wait_until_stopped().await;
        assert_eq!(e.state(), ServiceState::Crashed, "{how}");
        assert_eq!(journal.take(), stop_of_run(1), "{how}");
        system.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn guards_and_cleanups_run_once_per_run_across_restarts() {
    let journal = Journal::new();
    let system = System::new();
    let e = system.spawn(Exits::new(&journal)).await.unwrap();
    e.restart().await.unwrap();
    e.restart().await.unwrap();
    e.stop().await.unwrap();
    let mut expected = j(&["on_start@1"]);
    for r in 1..=3 {
        expected.extend(stop_of_run(r));
        if r < 3 {
            expected.push("on_restart".to_string());
            expected.push(format!("on_start@{}", r + 1));
        }
    }
    assert_eq!(journal.take(), expected);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn guards_and_cleanups_added_by_a_failing_on_start_are_closed() {
    let journal = Journal::new();
    let system = System::new();
    let mut exits = Exits::new(&journal);
    exits.fail_on_start = true;
    let err = system.spawn(exits).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::HookFailed {
                hook: modo::Hook::OnStart,
                ..
            }
        ),
        "{err:?}"
    );
    // on_start did not complete: no stop hooks, but the task and the exits are closed.
    assert_eq!(
        journal.take(),
        j(&[
            "on_start@1",
            "drop:task@1",
            "a4@1:begin",
            "a4@1:end",
            "drop:g3@1",
            "a2@1",
            "drop:g1@1",
        ])
    );
    system.shutdown().await.unwrap();
    assert_eq!(system.live_actors(), 0);
}

// ----- bounded by the shutdown timeout -----------------------------------------------------------

/// Adds guard `g1`, a clean-up that never ends (holding guard `hung`), and a quick clean-up
/// `a3`; its shutdown timeout is 5 s.
struct HungCleanup {
    journal: Journal,
}

impl Service for HungCleanup {
    fn shutdown_timeout(&self) -> Duration {
        secs(5)
    }

    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.add_context(Noted("g1".into(), self.journal.clone()));
        let journal = self.journal.clone();
        let held = Noted("hung".into(), self.journal.clone());
        ctx.add_async_context(async move {
            let _held = held;
            journal.push("hung:begin");
            std::future::pending::<()>().await
        });
        let journal = self.journal.clone();
        ctx.add_async_context(async move { journal.push("a3") });
        Ok(())
    }

    async fn on_shutdown(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push("on_shutdown");
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_hung_async_cleanup_is_cut_at_the_shutdown_timeout_and_the_rest_still_runs() {
    let journal = Journal::new();
    let system = System::new();
    let h = system
        .spawn(HungCleanup {
            journal: journal.clone(),
        })
        .await
        .unwrap();
    let start = Instant::now();
    h.stop().await.unwrap();
    assert_eq!(start.elapsed(), secs(5));
    assert_eq!(
        journal.take(),
        j(&["a3", "hung:begin", "drop:hung", "drop:g1", "on_shutdown"])
    );
    assert_eq!(h.state(), ServiceState::Shutdown);
    system.shutdown().await.unwrap();
}
