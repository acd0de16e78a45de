//! Background tasks (`ctx.spawn`, `ctx.spawn_named`, Mode's `add_future`): when they launch,
//! how they are cancelled and joined at stop, that none outlives its service, stop-aware loops,
//! failing tasks, and task names.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use common::{Buffer, Journal, Noted, Probe, j};
use modo::prelude::*;
use modo::{TaskError, TaskHandle};
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A task body that holds `guard` and never ends by itself.
async fn hold_forever(guard: Noted) {
    let _guard = guard;
    std::future::pending::<()>().await
}

// ----- launch order ---------------------------------------------------------------------

/// Adds a task and a child in `on_start`, then lets the child's task run before `on_start`
/// returns (so a task launched too early would show up before `P:on_start`).
struct Launcher {
    journal: Journal,
}

impl Service for Launcher {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let journal = self.journal.clone();
        ctx.spawn(async move {
            journal.push("task:first-poll");
            std::future::pending::<()>().await
        });
        ctx.add_dependency(Probe::new("C", &self.journal));
        // The child's task gets polled here (it records `C:on_init` and waits for a start);
        // the background task must not run yet.
        tokio::task::yield_now().await;
        self.journal.push("P:on_start");
        Ok(())
    }

    async fn on_started(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push("P:on_started");
        Ok(())
    }
}

#[tokio::test]
async fn tasks_added_in_on_start_launch_after_on_start_and_before_the_children() {
    let journal = Journal::new();
    let system = System::new();
    let p = system
        .spawn(Launcher {
            journal: journal.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        journal.take(),
        j(&[
            "C:on_init",
            "P:on_start",
            "task:first-poll",
            "C:on_first_start",
            "C:on_start",
            "C:on_started",
            "P:on_started",
        ])
    );
    assert_eq!(p.state(), ServiceState::Running);
    system.shutdown().await.unwrap();
    assert_eq!(system.live_actors(), 0);
}

// ----- tasks added while running, and their names ----------------------------------------

/// Starts named, unnamed, short-lived and timer tasks; reports its task names on demand.
struct Spawner;

impl Service for Spawner {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.spawn_named("alpha", std::future::pending::<()>());
        ctx.spawn(std::future::pending::<()>());
        ctx.spawn_named("brief", async {});
        ctx.timer(Duration::from_secs(1), || async {});
        // Not launched yet, but already listed.
        assert_eq!(
            ctx.task_names(),
            ["alpha", "Spawner#1", "brief", "Spawner.timer(1s)"]
        );
        Ok(())
    }
}

struct Names;
/// Spawns a task named `late` that answers on the sender at its first poll.
struct SpawnLate(oneshot::Sender<()>);

impl Handler<Names> for Spawner {
    type Reply = Vec<String>;
    async fn handle(&mut self, _: Names, ctx: &mut Context<Self>) -> Vec<String> {
        ctx.task_names()
    }
}

impl Handler<SpawnLate> for Spawner {
    type Reply = ();
    async fn handle(&mut self, msg: SpawnLate, ctx: &mut Context<Self>) {
        ctx.spawn_named("late", async move {
            let _ = msg.0.send(());
            std::future::pending::<()>().await
        });
    }
}

#[tokio::test(start_paused = true)]
async fn task_names_list_the_running_tasks_and_a_task_added_while_running_starts_at_once() {
    let system = System::new();
    let s = system.spawn(Spawner).await.unwrap();
    // `brief` has finished: it is no longer listed.
    assert_eq!(
        s.ask(Names).await.unwrap(),
        ["alpha", "Spawner#1", "Spawner.timer(1s)"]
    );

    let start = Instant::now();
    let (tx, rx) = oneshot::channel();
    s.ask(SpawnLate(tx)).await.unwrap();
    // Paused time: the timeout would fire only if the task were not running.
    tokio::time::timeout(Duration::from_secs(3600), rx)
        .await
        .expect("a task added while running starts at once")
        .unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        s.ask(Names).await.unwrap(),
        ["alpha", "Spawner#1", "Spawner.timer(1s)", "late"]
    );
    system.shutdown().await.unwrap();
}

// ----- cancellation order at stop ---------------------------------------------------------

/// Three tasks from `on_start` (t1..t3) and more added by message, each holding a [`Noted`];
/// one child; stop hooks journaled.
struct Stack {
    journal: Journal,
}

impl Service for Stack {
    fn dependencies(&mut self) -> Vec<Dependency> {
        vec![Probe::new("C", &self.journal).into()]
    }

    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        for name in ["t1", "t2", "t3"] {
            ctx.spawn(hold_forever(Noted::new(name, &self.journal)));
        }
        Ok(())
    }

    async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push("P:on_stop");
        Ok(())
    }

    async fn on_shutdown(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push("P:on_shutdown");
        Ok(())
    }
}

struct SpawnGuarded(&'static str);

impl Handler<SpawnGuarded> for Stack {
    type Reply = ();
    async fn handle(&mut self, msg: SpawnGuarded, ctx: &mut Context<Self>) {
        ctx.spawn(hold_forever(Noted::new(msg.0, &self.journal)));
    }
}

#[tokio::test]
async fn at_stop_tasks_are_cancelled_newest_first_then_joined_before_on_shutdown() {
    let journal = Journal::new();
    let system = System::new();
    let p = system
        .spawn(Stack {
            journal: journal.clone(),
        })
        .await
        .unwrap();
    p.ask(SpawnGuarded("t4")).await.unwrap();
    journal.take();
    p.stop().await.unwrap();
    assert_eq!(
        journal.take(),
        j(&[
            "P:on_stop",
            "C:on_stop",
            "C:on_shutdown",
            "drop:t4",
            "drop:t3",
            "drop:t2",
            "drop:t1",
            "P:on_shutdown",
        ])
    );
    system.shutdown().await.unwrap();
}

// ----- no task outlives its service -------------------------------------------------------

/// Sleeps in a loop forever, never looking at the stop signal.
async fn spin() {
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Every task holds a strong reference to the test's `Arc`; the service keeps only a weak one.
struct Holder {
    live: Weak<()>,
}

impl Holder {
    fn hold(&self, ctx: &mut Context<Self>) {
        let held = self.live.upgrade().expect("the test holds the Arc");
        ctx.spawn(async move {
            let _held = held;
            std::future::pending::<()>().await
        });
    }
}

impl Service for Holder {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        for _ in 0..3 {
            self.hold(ctx);
        }
        // A task that ignores the stop signal entirely: cancelled all the same.
        let held = self.live.upgrade().expect("the test holds the Arc");
        ctx.spawn(async move {
            let _held = held;
            spin().await
        });
        Ok(())
    }
}

struct HoldMore;

impl Handler<HoldMore> for Holder {
    type Reply = ();
    async fn handle(&mut self, _: HoldMore, ctx: &mut Context<Self>) {
        self.hold(ctx);
    }
}

#[tokio::test(start_paused = true)]
async fn no_task_outlives_its_service_after_a_stop() {
    let live = Arc::new(());
    let system = System::new();
    let h = system
        .spawn(Holder {
            live: Arc::downgrade(&live),
        })
        .await
        .unwrap();
    h.ask(HoldMore).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(Arc::strong_count(&live), 6);
    let start = Instant::now();
    h.stop().await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(Arc::strong_count(&live), 1);
    system.shutdown().await.unwrap();
    assert_eq!(system.live_actors(), 0);
}

#[tokio::test(start_paused = true)]
async fn no_task_outlives_its_service_after_a_crash() {
    let live = Arc::new(());
    let system = System::new();
    let h = system
        .spawn(Holder {
            live: Arc::downgrade(&live),
        })
        .await
        .unwrap();
    h.ask(HoldMore).await.unwrap();
    assert_eq!(Arc::strong_count(&live), 6);
    h.crash("boom");
    h.wait_until_stopped().await;
    assert_eq!(h.state(), ServiceState::Crashed);
    assert_eq!(Arc::strong_count(&live), 1);
    system.shutdown().await.unwrap();
    assert_eq!(system.live_actors(), 0);
}

// ----- stop-aware loops ---------------------------------------------------------------------

/// A task loop in Mode's style: `while not self.should_stop: await self.sleep(1.0)`.
struct Looper {
    journal: Journal,
    rounds: Arc<AtomicU32>,
}

impl Service for Looper {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let stop = ctx.stop_signal();
        let rounds = self.rounds.clone();
        let journal = self.journal.clone();
        ctx.spawn(async move {
            while !stop.is_stopping() {
                if stop.sleep(Duration::from_secs(1)).await {
                    rounds.fetch_add(1, Ordering::SeqCst);
                }
            }
            journal.push("loop:ended");
        });
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

#[tokio::test(start_paused = true)]
async fn a_task_loop_on_the_stop_signal_ends_by_itself_at_stop() {
    let journal = Journal::new();
    let rounds = Arc::new(AtomicU32::new(0));
    let system = System::new();
    let start = Instant::now();
    let l = system
        .spawn(Looper {
            journal: journal.clone(),
            rounds: rounds.clone(),
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(rounds.load(Ordering::SeqCst), 3);
    l.stop().await.unwrap();
    // The sleep in progress was cut short: the stop took no time.
    assert_eq!(start.elapsed(), Duration::from_millis(3500));
    assert_eq!(rounds.load(Ordering::SeqCst), 3);
    // The loop ended on its own (an aborted task would not have written `loop:ended`).
    assert_eq!(journal.take(), j(&["loop:ended", "on_stop", "on_shutdown"]));
    system.shutdown().await.unwrap();
}

// ----- failing tasks --------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum How {
    Panic,
    Err,
}

/// Its task `pump` fails after 2 s (the messages do not name it).
struct Pump {
    how: How,
}

impl Service for Pump {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let how = self.how;
        ctx.spawn_named("pump", async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            match how {
                How::Panic => panic!("broke"),
                How::Err => Err::<(), BoxError>("no more water".into()),
            }
        });
        Ok(())
    }
}

async fn crash_reason_of_failing_pump(how: How) -> CrashReason {
    let system = System::new();
    let start = Instant::now();
    let p = system.spawn(Pump { how }).await.unwrap();
    p.wait_until_stopped().await;
    assert_eq!(start.elapsed(), Duration::from_secs(2), "{how:?}");
    assert_eq!(p.state(), ServiceState::Crashed, "{how:?}");
    assert!(p.is_terminated(), "{how:?}");
    system.shutdown().await.unwrap();
    p.crash_reason().expect("a crash reason")
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_crashes_its_service_naming_the_task() {
    match crash_reason_of_failing_pump(How::Panic).await {
        CrashReason::Panic { message, during } => {
            assert_eq!(&*message, "broke");
            assert_eq!(&*during, "task pump");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_returning_err_crashes_its_service() {
    let reason = crash_reason_of_failing_pump(How::Err).await;
    assert!(matches!(reason, CrashReason::Error(_)), "{reason:?}");
    assert!(!reason.is_panic());
    assert!(reason.to_string().ends_with("no more water"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn a_task_returning_err_names_the_task_in_the_crash_reason() {
    let reason = crash_reason_of_failing_pump(How::Err).await;
    assert!(reason.to_string().contains("pump"), "{reason}");
}

/// Panics; returns `()` as far as the type checker knows, so a task can end with it.
fn blow_up(message: &str) {
    panic!("{message}");
}

/// Tasks that fail only once the service is stopping.
struct LateFailer {
    journal: Journal,
}

impl Service for LateFailer {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let stop = ctx.stop_signal();
        ctx.spawn_named("err-at-stop", async move {
            stop.stopped().await;
            Err::<(), BoxError>("failed while stopping".into())
        });
        let stop = ctx.stop_signal();
        ctx.spawn_named("panic-at-stop", async move {
            stop.stopped().await;
            blow_up("panicked while stopping");
        });
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

#[tokio::test(start_paused = true)]
async fn a_task_failing_while_its_service_stops_does_not_crash_it() {
    let journal = Journal::new();
    let system = System::new();
    let s = system
        .spawn(LateFailer {
            journal: journal.clone(),
        })
        .await
        .unwrap();

    // Across a restart: the failures belong to the run that is stopping, not the next one.
    s.restart().await.unwrap();
    assert_eq!(journal.take(), j(&["on_shutdown", "on_restart"]));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(s.state(), ServiceState::Running);
    assert!(s.crash_reason().is_none());
    assert_eq!(s.restart_count(), 1);

    // And at the final stop.
    s.stop().await.unwrap();
    assert_eq!(journal.take(), j(&["on_shutdown"]));
    assert_eq!(s.state(), ServiceState::Shutdown);
    assert!(s.crash_reason().is_none());
    system.shutdown().await.unwrap();
}

/// Adds a task from `on_shutdown`, after this run's tasks were cancelled and joined.
struct SpawnsInOnShutdown {
    journal: Journal,
}

impl Service for SpawnsInOnShutdown {
    async fn on_shutdown(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let journal = self.journal.clone();
        let guard = Noted::new("late", &self.journal);
        ctx.spawn_named("late", async move {
            let _guard = guard;
            journal.push("late:ran");
            std::future::pending::<()>().await
        });
        Ok(())
    }

    async fn on_restart(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push("on_restart");
        Ok(())
    }
}

impl Handler<Names> for SpawnsInOnShutdown {
    type Reply = Vec<String>;
    async fn handle(&mut self, _: Names, ctx: &mut Context<Self>) -> Vec<String> {
        ctx.task_names()
    }
}

/// A task added once the stop sequence has cancelled the tasks belongs to a run that is
/// over: it must not run, and must be gone before the next run starts.
#[tokio::test(start_paused = true)]
async fn a_task_added_in_on_shutdown_does_not_leak_into_the_next_run() {
    let journal = Journal::new();
    let system = System::new();
    let s = system
        .spawn(SpawnsInOnShutdown {
            journal: journal.clone(),
        })
        .await
        .unwrap();
    s.restart().await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(s.ask(Names).await.unwrap(), Vec::<String>::new());
    assert_eq!(journal.take(), j(&["drop:late", "on_restart"]));
    system.shutdown().await.unwrap();
}

// ----- tracing ------------------------------------------------------------------------------------

struct Chatty;

impl Service for Chatty {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        // See the test: make tracing re-read its call sites under this thread's subscriber
        // right before the task's span is made.
        tracing::callsite::rebuild_interest_cache();
        ctx.spawn_named("pump", async {
            tracing::info!("pumping");
        });
        Ok(())
    }
}

#[tokio::test]
async fn a_task_runs_in_a_span_carrying_its_name() {
    // Tracing caches per call site whether anyone listens, and a call site first reached on
    // another thread (other tests run in parallel, without a subscriber) is cached as unheard
    // while only one subscriber exists. Reach modo's call sites on this thread first; `Chatty`
    // then has tracing re-read them under this thread's subscriber before its task starts.
    let system = System::new();
    system.spawn(Chatty).await.unwrap().stop().await.unwrap();
    system.shutdown().await.unwrap();

    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_ansi(false)
        .finish();
    // A current-thread runtime: every task runs on this thread, under this default.
    let _guard = tracing::subscriber::set_default(subscriber);
    let system = System::new();
    let c = system.spawn(Chatty).await.unwrap();
    c.stop().await.unwrap();
    system.shutdown().await.unwrap();
    let out = buffer.text();
    let line = out
        .lines()
        .find(|l| l.contains("pumping"))
        .unwrap_or_else(|| panic!("no line from the task in:\n{out}"));
    assert!(line.contains("task{name=pump}"), "{line}");
}

/// Two named tasks that run until the service stops.
struct Listed;

impl Service for Listed {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        for name in ["first", "second"] {
            let stop = ctx.stop_signal();
            ctx.spawn_named(name, async move { stop.stopped().await });
        }
        Ok(())
    }
}

#[tokio::test]
async fn running_tasks_are_listed_on_the_handle_and_in_the_graph() {
    let system = System::new();
    let s = system.spawn(Listed).await.unwrap();
    assert_eq!(s.task_names(), ["first", "second"], "in the order launched");
    let graph = system.registry().graph().await;
    assert_eq!(graph.node(s.id()).unwrap().tasks, ["first", "second"]);
    s.stop().await.unwrap();
    assert!(s.task_names().is_empty(), "cancelled tasks leave the list");
    system.shutdown().await.unwrap();
}

// ----- task handles ---------------------------------------------------------------------------

/// Hands out the handles of the tasks it starts, so a test can await or abort them.
struct Handed {
    handles: Option<oneshot::Sender<Vec<TaskHandle>>>,
    outcome: fn() -> Result<(), BoxError>,
}

impl Service for Handed {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let quick = ctx.spawn_named("quick", async {});
        let endless = ctx.spawn_named("endless", std::future::pending::<()>());
        let outcome = self.outcome;
        let later = ctx.spawn_named("later", async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            outcome()
        });
        let _ = self
            .handles
            .take()
            .unwrap()
            .send(vec![quick, endless, later]);
        Ok(())
    }
}

async fn handed(
    system: &System,
    outcome: fn() -> Result<(), BoxError>,
) -> (Addr<Handed>, [TaskHandle; 3]) {
    let (tx, rx) = oneshot::channel();
    let addr = system
        .spawn(Handed {
            handles: Some(tx),
            outcome,
        })
        .await
        .unwrap();
    let handles: [TaskHandle; 3] = rx.await.unwrap().try_into().unwrap();
    (addr, handles)
}

#[tokio::test(start_paused = true)]
async fn a_task_handle_gives_ok_when_the_task_ends_and_abort_ends_it_without_a_crash() {
    let system = System::new();
    let (addr, [quick, endless, later]) = handed(&system, || Ok(())).await;
    assert_eq!(quick.name(), "quick");
    assert!(quick.await.is_ok());

    assert!(!endless.is_finished());
    endless.abort();
    assert!(matches!(endless.await, Err(TaskError::Aborted)));
    tokio::task::yield_now().await;
    assert_eq!(
        addr.state(),
        ServiceState::Running,
        "an abort is not a crash"
    );
    assert_eq!(addr.task_names(), vec!["later".to_string()]);

    let start = Instant::now();
    assert!(later.await.is_ok());
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert!(addr.task_names().is_empty());
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_task_handle_of_a_failing_task_gives_its_error_and_the_service_still_crashes() {
    let system = System::new();
    let (addr, [_quick, endless, later]) = handed(&system, || Err("bad reading".into())).await;
    match later.await {
        Err(TaskError::Failed(e)) => assert_eq!(e.to_string(), "bad reading"),
        other => panic!("expected Failed, got {other:?}"),
    }
    addr.wait_until_stopped().await;
    assert_eq!(addr.state(), ServiceState::Crashed);
    // The crash cancelled the task that was still running.
    assert!(endless.is_finished());
    assert!(matches!(endless.await, Err(TaskError::Cancelled)));
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_task_handle_says_cancelled_when_its_service_stops_first() {
    let system = System::new();
    let (addr, [_quick, endless, later]) = handed(&system, || Ok(())).await;
    addr.stop().await.unwrap();
    assert!(matches!(endless.await, Err(TaskError::Cancelled)));
    assert!(matches!(later.await, Err(TaskError::Cancelled)));
    system.shutdown().await.unwrap();
}

/// Panics in its task; hands out the handle.
struct PanicHolder(Option<oneshot::Sender<TaskHandle>>);

impl Service for PanicHolder {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let h = ctx.spawn_named("bomb", async { blow_up("boom") });
        let _ = self.0.take().unwrap().send(h);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_task_handle_of_a_panicking_task_gives_the_panic() {
    let system = System::new();
    let (tx, rx) = oneshot::channel();
    let addr = system.spawn(PanicHolder(Some(tx))).await.unwrap();
    match rx.await.unwrap().await {
        Err(TaskError::Panicked(reason)) => assert!(reason.to_string().contains("boom")),
        other => panic!("expected Panicked, got {other:?}"),
    }
    addr.wait_until_stopped().await;
    assert_eq!(addr.state(), ServiceState::Crashed);
    system.shutdown().await.unwrap();
}
