//! Crashes: panics in handlers and hooks, crashes requested from outside and inside, crashes
//! that preempt a pending handler, failed starts, crashed children and their parent's decision,
//! failing background tasks.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{j, secs};
use modo::prelude::*;
use modo::testkit::{Fail, Journal, Ping, Probe, Recorder};
use modo::{DownReason, Hook, Recipient};
use tokio::sync::Notify;
use tokio::time::Instant;

/// The journal without the `on_init` entries, whose place depends on when a child's task is
/// first polled.
fn without_init(entries: Vec<String>) -> Vec<String> {
    entries
        .into_iter()
        .filter(|e| !e.ends_with(":on_init"))
        .collect()
}

// ----- services -------------------------------------------------------------------------

/// A service that can be made to panic, crash itself or hang in a handler.
#[derive(Default)]
struct Fragile {
    count: u32,
    entered: Arc<Notify>,
}

impl Service for Fragile {}

struct Boom(&'static str);
struct Inc;
struct Count;
/// Calls `ctx.crash(reason)`, then returns whether `should_stop()` turned true.
struct CrashInside(&'static str);
/// Announces itself on `entered`, then never returns.
struct Hang;

impl Handler<Boom> for Fragile {
    type Reply = ();
    async fn handle(&mut self, msg: Boom, _ctx: &mut Context<Self>) {
        panic!("{}", msg.0);
    }
}

impl Handler<Inc> for Fragile {
    type Reply = u32;
    async fn handle(&mut self, _: Inc, _ctx: &mut Context<Self>) -> u32 {
        self.count += 1;
        self.count
    }
}

impl Handler<Count> for Fragile {
    type Reply = u32;
    async fn handle(&mut self, _: Count, _ctx: &mut Context<Self>) -> u32 {
        self.count
    }
}

impl Handler<CrashInside> for Fragile {
    type Reply = bool;
    async fn handle(&mut self, msg: CrashInside, ctx: &mut Context<Self>) -> bool {
        assert!(!ctx.should_stop());
        ctx.crash(msg.0);
        ctx.should_stop()
    }
}

impl Handler<Hang> for Fragile {
    type Reply = ();
    async fn handle(&mut self, _: Hang, _ctx: &mut Context<Self>) {
        self.entered.notify_one();
        std::future::pending::<()>().await
    }
}

/// A recorder can be made to panic in a handler too.
impl Handler<Boom> for Recorder {
    type Reply = ();
    async fn handle(&mut self, msg: Boom, _ctx: &mut Context<Self>) {
        panic!("{}", msg.0);
    }
}

/// A root that journals its hooks as `Tree:hook` (like a [`Recorder`]) and adds the given ones
/// as children with `ctx.add_dependency`, so the test can hold their addresses. Its label is
/// the default one, its type name.
struct Tree {
    journal: Journal,
    pending: Vec<Recorder>,
    kids: Arc<Mutex<Vec<Addr<Recorder>>>>,
}

impl Tree {
    fn new(journal: &Journal, children: Vec<Recorder>) -> Self {
        Tree {
            journal: journal.clone(),
            pending: children,
            kids: Arc::default(),
        }
    }
}

impl Service for Tree {
    async fn on_first_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        for child in std::mem::take(&mut self.pending) {
            let addr = ctx.add_dependency(child);
            self.kids.lock().unwrap().push(addr);
        }
        Ok(())
    }

    async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push("Tree:on_stop");
        Ok(())
    }

    async fn on_shutdown(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push("Tree:on_shutdown");
        Ok(())
    }
}

/// A child that reports `(value, restart_count)` to a probe for every `Record` it handles and
/// panics on `Boom`.
#[derive(Clone)]
struct Worker {
    report: Recipient<(u32, u32)>,
}

impl Worker {
    fn new(probe: &Probe<(u32, u32)>) -> Self {
        Worker {
            report: probe.recipient(),
        }
    }
}

impl Service for Worker {}

struct Record(u32);

impl Handler<Record> for Worker {
    type Reply = ();
    async fn handle(&mut self, msg: Record, ctx: &mut Context<Self>) {
        let _ = self.report.tell((msg.0, ctx.restart_count())).await;
    }
}

impl Handler<Boom> for Worker {
    type Reply = ();
    async fn handle(&mut self, msg: Boom, _ctx: &mut Context<Self>) {
        panic!("{}", msg.0);
    }
}

/// A parent of workers: the default reaction to a crashed child, or a restart. It journals
/// every `on_child_crashed` call as `crashed:<child>:<reason>`.
struct Boss {
    journal: Journal,
    restart: bool,
    /// Children returned by `dependencies`.
    deps: Vec<Worker>,
    /// Children added with `ctx.add_dependency` in `on_first_start`.
    added: Vec<Worker>,
}

impl Boss {
    fn removing(journal: &Journal, deps: Vec<Worker>) -> Self {
        Boss {
            journal: journal.clone(),
            restart: false,
            deps,
            added: Vec::new(),
        }
    }

    fn restarting(journal: &Journal, added: Vec<Worker>) -> Self {
        Boss {
            journal: journal.clone(),
            restart: true,
            deps: Vec::new(),
            added,
        }
    }
}

impl Service for Boss {
    fn dependencies(&mut self) -> Vec<Dependency> {
        std::mem::take(&mut self.deps)
            .into_iter()
            .map(Dependency::from)
            .collect()
    }

    async fn on_first_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        for worker in std::mem::take(&mut self.added) {
            ctx.add_dependency(worker);
        }
        Ok(())
    }

    async fn on_child_crashed(
        &mut self,
        child: &ServiceRef,
        reason: &CrashReason,
        _ctx: &mut Context<Self>,
    ) -> ChildAction {
        self.journal
            .push(format!("crashed:{}:{reason}", child.label()));
        if self.restart {
            ChildAction::Restart
        } else {
            ChildAction::Remove
        }
    }
}

struct Kids;

impl Handler<Kids> for Boss {
    type Reply = Vec<ServiceRef>;
    async fn handle(&mut self, _: Kids, ctx: &mut Context<Self>) -> Vec<ServiceRef> {
        ctx.children().to_vec()
    }
}

/// The first child of `boss`, typed.
async fn first_worker(boss: &Addr<Boss>) -> Addr<Worker> {
    let kids = boss.ask(Kids).await.unwrap();
    assert_eq!(kids.len(), 1);
    kids[0].downcast::<Worker>().expect("the child is a Worker")
}

/// How a background task ends.
#[derive(Clone, Copy)]
enum TaskEnd {
    Panic,
    Err,
}

/// Panics; returns `()` as far as the type checker knows, so a task can end with it.
fn blow_up() {
    panic!("task blew up");
}

/// Starts a background task in `on_start` that waits for `go`, then panics or returns `Err`.
struct Tasker {
    end: TaskEnd,
    go: Arc<Notify>,
    journal: Journal,
}

impl Service for Tasker {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let go = self.go.clone();
        match self.end {
            TaskEnd::Panic => ctx.spawn(async move {
                go.notified().await;
                blow_up();
            }),
            TaskEnd::Err => ctx.spawn(async move {
                go.notified().await;
                Err::<(), BoxError>("task gave up".into())
            }),
        };
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

// ----- panics in handlers ----------------------------------------------------------------

#[tokio::test]
async fn a_panicking_handler_crashes_its_root_and_fails_its_ask() {
    let journal = Journal::new();
    let system = System::new();
    let fragile = system.spawn(Fragile::default()).await.unwrap();
    let bystander = system
        .spawn(Recorder::new("Bystander", &journal))
        .await
        .unwrap();
    assert_eq!(fragile.ask(Inc).await.unwrap(), 1);

    let err = fragile.ask(Boom("kaboom")).await.unwrap_err();
    match &err {
        Error::Crashed { label, reason } => {
            assert_eq!(&**label, "Fragile");
            assert!(reason.is_panic());
            assert!(reason.to_string().contains("kaboom"), "{reason}");
        }
        other => panic!("expected Crashed, got {other:?}"),
    }

    fragile.wait_until_stopped().await;
    assert_eq!(fragile.state(), ServiceState::Crashed);
    assert_eq!(fragile.state().to_string(), "crashed");
    assert!(fragile.is_crashed());
    match fragile.crash_reason() {
        Some(CrashReason::Panic { message, during }) => {
            assert_eq!(&*message, "kaboom");
            assert_eq!(&*during, "handler of Boom");
        }
        other => panic!("expected a panic reason, got {other:?}"),
    }
    // A crashed root is terminated: its mailbox is closed.
    assert!(fragile.is_terminated());
    let err = fragile.tell(Inc).await.unwrap_err();
    assert_eq!(err.to_string(), "service Fragile is stopped");
    // An ask now reads why it is gone.
    let err = fragile.ask(Count).await.unwrap_err();
    assert!(
        matches!(&err, Error::Crashed { reason, .. } if reason.is_panic()),
        "{err:?}"
    );

    // The rest of the system is untouched.
    assert_eq!(bystander.ask(Ping).await.unwrap(), "Bystander");
    assert_eq!(bystander.state(), ServiceState::Running);
    let roots: Vec<String> = system
        .roots()
        .iter()
        .map(|r| r.label().to_string())
        .collect();
    assert_eq!(roots, ["Bystander"]);
    system.shutdown().await.unwrap();
    assert_eq!(system.live_actors(), 0);
}

/// `wait_until_stopped` on a crashed root should mean the root is gone: terminated, its
/// mailbox closed, every send failing. On a multi-thread runtime the state is published before
/// the mailbox is closed, so a send in between is accepted (and later dead-lettered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_root_is_terminated_once_wait_until_stopped_returns() {
    let system = System::new();
    for round in 0..200 {
        let fragile = system.spawn(Fragile::default()).await.unwrap();
        let err = fragile.ask(Boom("kaboom")).await.unwrap_err();
        assert!(err.is_crashed());
        fragile.wait_until_stopped().await;
        assert!(fragile.is_terminated(), "round {round}: not terminated yet");
        assert!(
            fragile.tell(Inc).await.is_err(),
            "round {round}: a tell was accepted"
        );
    }
    system.shutdown().await.unwrap();
}

// ----- crash requests --------------------------------------------------------------------

#[tokio::test]
async fn crash_from_outside_runs_the_stop_hooks_and_crashes_the_children() {
    let journal = Journal::new();
    let system = System::new();
    let tree = Tree::new(
        &journal,
        vec![
            Recorder::new("B", &journal).with_children(vec![Recorder::new("B1", &journal)]),
            Recorder::new("C", &journal),
        ],
    );
    let kids = tree.kids.clone();
    let tree = system.spawn(tree).await.unwrap();
    let kids: Vec<Addr<Recorder>> = kids.lock().unwrap().clone();
    assert_eq!(kids.len(), 2);
    journal.take();

    tree.crash("boom");
    tree.wait_until_stopped().await;
    assert_eq!(
        journal.take(),
        j(&[
            "Tree:on_stop",
            "C:on_stop",
            "C:on_shutdown",
            "B:on_stop",
            "B1:on_stop",
            "B1:on_shutdown",
            "B:on_shutdown",
            "Tree:on_shutdown",
        ])
    );
    assert_eq!(tree.state(), ServiceState::Crashed);
    let reason = tree.crash_reason().expect("a crash reason");
    assert_eq!(reason.to_string(), "boom");
    assert!(!reason.is_panic());

    for kid in &kids {
        assert_eq!(kid.state(), ServiceState::Crashed, "{}", kid.label());
        assert!(kid.is_terminated(), "{}", kid.label());
        match kid.crash_reason() {
            Some(CrashReason::Parent { parent, reason }) => {
                assert_eq!(&*parent, "Tree");
                assert_eq!(reason.to_string(), "boom");
            }
            other => panic!("{}: expected a Parent reason, got {other:?}", kid.label()),
        }
        assert_eq!(
            kid.crash_reason().unwrap().to_string(),
            "parent Tree crashed: boom"
        );
    }
    system.shutdown().await.unwrap();
    assert_eq!(system.live_actors(), 0);
}

#[tokio::test]
async fn crash_from_inside_a_handler() {
    let system = System::new();
    let fragile = system.spawn(Fragile::default()).await.unwrap();
    // The handler itself returns normally: its reply arrives, then the crash is served.
    assert!(fragile.ask(CrashInside("inside")).await.unwrap());
    fragile.wait_until_stopped().await;
    assert_eq!(fragile.state(), ServiceState::Crashed);
    match fragile.crash_reason() {
        Some(CrashReason::Message(m)) => assert_eq!(&*m, "inside"),
        other => panic!("expected a Message reason, got {other:?}"),
    }
    assert!(fragile.is_terminated());
    let err = fragile.ask(Inc).await.unwrap_err();
    assert!(
        matches!(&err, Error::Crashed { reason, .. } if reason.to_string() == "inside"),
        "{err:?}"
    );
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_crash_requested_in_a_handler_drops_the_messages_queued_behind_it() {
    let system = System::new();
    let fragile = system.spawn(Fragile::default()).await.unwrap();
    fragile.tell(Inc).await.unwrap();
    fragile.tell(CrashInside("inside")).await.unwrap();
    fragile.tell(Inc).await.unwrap();
    fragile.tell(Inc).await.unwrap();
    fragile.wait_until_stopped().await;
    assert_eq!(fragile.state(), ServiceState::Crashed);
    assert_eq!(fragile.dead_letters(), 2);
    assert_eq!(system.dead_letters().total, 2);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_crash_preempts_a_handler_that_never_returns() {
    let system = System::new();
    let entered = Arc::new(Notify::new());
    let fragile = system
        .spawn(Fragile {
            count: 0,
            entered: entered.clone(),
        })
        .await
        .unwrap();
    let hung = tokio::spawn({
        let fragile = fragile.clone();
        async move { fragile.ask(Hang).await }
    });
    entered.notified().await;
    // Asks queued behind the hung handler.
    let queued = tokio::spawn({
        let fragile = fragile.clone();
        async move { fragile.ask(Count).await.map(drop) }
    });
    while fragile.mailbox_len() == 0 {
        tokio::task::yield_now().await;
    }

    let start = Instant::now();
    fragile.crash("preempted");
    for ask in [hung, queued] {
        // Paused time: the timeout would fire only if the ask waited for something else.
        let res = tokio::time::timeout(Duration::from_secs(3600), ask)
            .await
            .expect("the ask resolves with the crash")
            .unwrap();
        match res {
            Err(Error::Crashed { label, reason }) => {
                assert_eq!(&*label, "Fragile");
                assert_eq!(reason.to_string(), "preempted");
            }
            other => panic!("expected Crashed, got {:?}", other.map(|_| ())),
        }
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    fragile.wait_until_stopped().await;
    assert_eq!(fragile.state(), ServiceState::Crashed);
    system.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_preempts_a_hung_handler_on_a_multi_thread_runtime() {
    let system = System::new();
    let entered = Arc::new(Notify::new());
    let fragile = system
        .spawn(Fragile {
            count: 0,
            entered: entered.clone(),
        })
        .await
        .unwrap();
    let hung = tokio::spawn({
        let fragile = fragile.clone();
        async move { fragile.ask(Hang).await }
    });
    entered.notified().await;
    fragile.crash("preempted");
    // A safety net only: the ask resolves as soon as the actor sees the crash.
    let res = tokio::time::timeout(Duration::from_secs(30), hung)
        .await
        .expect("the ask resolves with the crash")
        .unwrap();
    assert!(
        matches!(&res, Err(Error::Crashed { reason, .. }) if reason.to_string() == "preempted"),
        "{:?}",
        res.map(|_| ())
    );
    fragile.wait_until_stopped().await;
    assert_eq!(fragile.state(), ServiceState::Crashed);
    system.shutdown().await.unwrap();
}

// ----- failing hooks ---------------------------------------------------------------------

#[tokio::test]
async fn a_panic_in_on_stop_is_reported_and_the_stop_completes() {
    let journal = Journal::new();
    let system = System::new();
    let a = system
        .spawn(
            Recorder::new("A", &journal)
                .fail_at(Hook::OnStop, Fail::Panic)
                .unwrap(),
        )
        .await
        .unwrap();
    journal.take();
    let res = a.stop().await;
    assert_eq!(journal.take(), j(&["A:on_stop", "A:on_shutdown"]));
    assert!(a.is_terminated());
    assert_eq!(a.state(), ServiceState::Crashed);
    let reason = a.crash_reason().expect("the panic is the crash reason");
    assert!(reason.is_panic());
    assert!(
        reason.to_string().contains("A panicked in on_stop"),
        "{reason}"
    );
    match res {
        Err(Error::Crashed { label, reason }) => {
            assert_eq!(&*label, "A");
            assert!(reason.is_panic());
        }
        other => panic!("stop() must report the panic in on_stop, got {other:?}"),
    }
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_child_panicking_in_on_stop_fails_its_parents_stop() {
    let journal = Journal::new();
    let system = System::new();
    let p = system
        .spawn(Recorder::new("P", &journal).with_children(vec![
            Recorder::new("C", &journal).fail_at(Hook::OnStop, Fail::Panic).unwrap(),
        ]))
        .await
        .unwrap();
    journal.take();
    let res = p.stop().await;
    assert_eq!(
        journal.take(),
        j(&["P:on_stop", "C:on_stop", "C:on_shutdown", "P:on_shutdown"])
    );
    assert!(p.is_terminated());
    // As with a child whose on_stop returns Err: the parent reports StopChild with the
    // child's error as its source.
    match res {
        Err(Error::HookFailed {
            label,
            hook,
            source,
        }) => {
            assert_eq!(&*label, "P");
            assert_eq!(hook, Hook::StopChild);
            assert!(
                matches!(source.downcast_ref::<Error>(), Some(Error::Crashed { reason, .. }) if reason.is_panic()),
                "{source:?}"
            );
        }
        other => panic!("the parent's stop must report the child's panic, got {other:?}"),
    }
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failing_start_hook_fails_the_spawn_and_unwinds() {
    let all = [
        Hook::OnInit,
        Hook::OnFirstStart,
        Hook::OnStart,
        Hook::OnStarted,
    ];
    for (hook, ran, stop_hooks) in [
        (Hook::OnFirstStart, 2, false),
        (Hook::OnStart, 3, false),
        (Hook::OnStarted, 4, true),
    ] {
        for how in [Fail::Err, Fail::Panic] {
            let journal = Journal::new();
            let system = System::new();
            let err = system
                .spawn(Recorder::new("A", &journal).fail_at(hook, how).unwrap())
                .await
                .unwrap_err();
            match (how, &err) {
                (
                    Fail::Err,
                    Error::HookFailed {
                        label,
                        hook: h,
                        source,
                    },
                ) => {
                    assert_eq!(&**label, "A");
                    assert_eq!(*h, hook);
                    assert_eq!(source.to_string(), format!("A failed in {hook}"));
                }
                (Fail::Panic, Error::Crashed { label, reason }) => {
                    assert_eq!(&**label, "A");
                    assert!(reason.is_panic());
                    assert_eq!(
                        reason.to_string(),
                        format!("panicked in {hook}: A panicked in {hook}")
                    );
                }
                (how, other) => panic!("{hook} {how:?}: unexpected {other:?}"),
            }

            // The stop hooks run only if on_start had completed.
            let mut expected: Vec<String> = all[..ran].iter().map(|h| format!("A:{h}")).collect();
            if stop_hooks {
                expected.extend(["A:on_stop".to_string(), "A:on_shutdown".to_string()]);
            }
            assert_eq!(journal.take(), expected, "{hook} {how:?}");
            // The failed root is gone.
            assert!(system.roots().is_empty(), "{hook} {how:?}");
            system.shutdown().await.unwrap();
            assert_eq!(system.live_actors(), 0);
        }
    }
}

#[tokio::test]
async fn a_child_panicking_in_on_start_fails_the_parent_spawn() {
    let journal = Journal::new();
    let system = System::new();
    let err = system
        .spawn(Recorder::new("P", &journal).with_children(vec![
            Recorder::new("S", &journal),
            Recorder::new("F", &journal).fail_at(Hook::OnStart, Fail::Panic).unwrap(),
            Recorder::new("N", &journal),
        ]))
        .await
        .unwrap_err();
    match &err {
        Error::HookFailed {
            label,
            hook,
            source,
        } => {
            assert_eq!(&**label, "P");
            assert_eq!(*hook, Hook::StartChild);
            match source.downcast_ref::<Error>() {
                Some(Error::Crashed { label, reason }) => {
                    assert_eq!(&**label, "F");
                    assert!(reason.is_panic());
                    assert!(reason.to_string().contains("F panicked in on_start"));
                }
                other => panic!("expected F's crash as the source, got {other:?}"),
            }
        }
        other => panic!("expected HookFailed, got {other:?}"),
    }
    assert_eq!(
        without_init(journal.take()),
        j(&[
            "P:on_first_start",
            "P:on_start",
            "S:on_first_start",
            "S:on_start",
            "S:on_started",
            "F:on_first_start",
            "F:on_start",
            // F failed in on_start: no stop hooks for it. S started, so it stops again.
            "P:on_stop",
            "S:on_stop",
            "S:on_shutdown",
            "P:on_shutdown",
        ])
    );
    assert!(system.roots().is_empty());
    system.shutdown().await.unwrap();
    assert_eq!(system.live_actors(), 0);
}

// ----- crashed children ------------------------------------------------------------------

/// A down heard by a probe: the crash reason, which must be a panic saying `what`.
fn assert_panicked(down: &modo::Down, what: &str) {
    match down.reason() {
        DownReason::Crashed(reason) => {
            assert!(reason.is_panic(), "{reason}");
            assert!(reason.to_string().contains(what), "{reason}");
        }
        other => panic!("expected a crash, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_parent_that_removes_its_crashed_child_goes_on() {
    let journal = Journal::new();
    let system = System::new();
    let mut probe = Probe::<(u32, u32)>::spawn(&system).await.unwrap();
    let boss = system
        .spawn(Boss::removing(&journal, vec![Worker::new(&probe)]))
        .await
        .unwrap();
    let kid = first_worker(&boss).await;
    assert_eq!(kid.depth(), 1);
    probe.watch(&kid).await.unwrap();

    kid.tell(Record(1)).await.unwrap();
    kid.tell(Boom("child down")).await.unwrap();
    kid.tell(Record(2)).await.unwrap();
    assert_panicked(
        &probe.expect_down(&kid, secs(1)).await.unwrap(),
        "child down",
    );
    kid.wait_until_stopped().await;
    assert_eq!(kid.state(), ServiceState::Crashed);

    // The crash notice is on the parent's control lane, ahead of this ask.
    assert!(boss.ask(Kids).await.unwrap().is_empty());
    assert!(kid.is_terminated());
    assert_eq!(kid.state(), ServiceState::Crashed);
    let reason = kid.crash_reason().expect("a crash reason");
    assert!(reason.is_panic());
    assert!(reason.to_string().contains("child down"), "{reason}");
    assert_eq!(
        journal.take(),
        j(&["crashed:Worker:panicked in handler of Boom: child down"])
    );
    // Record(2) was queued behind the panic: removed with the child, a dead letter.
    assert_eq!(probe.expect_msg(secs(1)).await.unwrap(), (1, 0));
    probe.expect_no_msg_for(secs(1)).await.unwrap();
    assert_eq!(kid.dead_letters(), 1);
    assert_eq!(kid.tell(Record(3)).await.unwrap_err().into_inner().0, 3);

    assert_eq!(boss.state(), ServiceState::Running);
    assert!(boss.ask(Kids).await.unwrap().is_empty());
    system.shutdown().await.unwrap();
    assert_eq!(system.live_actors(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_parent_can_restart_a_crashed_child_with_its_mailbox() {
    let journal = Journal::new();
    let system = System::new();
    let mut probe = Probe::<(u32, u32)>::spawn(&system).await.unwrap();
    let boss = system
        .spawn(Boss::restarting(&journal, vec![Worker::new(&probe)]))
        .await
        .unwrap();
    let kid = first_worker(&boss).await;
    probe.watch(&kid).await.unwrap();

    // All four are queued before the child handles any: the two behind the panic wait
    // through the crash and the restart.
    kid.tell(Record(1)).await.unwrap();
    kid.tell(Boom("child down")).await.unwrap();
    kid.tell(Record(2)).await.unwrap();
    kid.tell(Record(3)).await.unwrap();
    assert_eq!(
        probe.expect_msgs(3, secs(1)).await.unwrap(),
        [(1, 0), (2, 1), (3, 1)],
        "handled before the crash, then after the restart"
    );
    assert_panicked(
        &probe.expect_down(&kid, secs(1)).await.unwrap(),
        "child down",
    );
    assert_eq!(kid.restart_count(), 1);
    assert_eq!(kid.state(), ServiceState::Running);
    assert!(kid.crash_reason().is_none(), "a restart clears the reason");
    assert_eq!(kid.dead_letters(), 0);
    assert_eq!(
        journal.take(),
        j(&["crashed:Worker:panicked in handler of Boom: child down"])
    );
    // Still the parent's child, and the same address keeps working.
    let kids = boss.ask(Kids).await.unwrap();
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0].id(), kid.id());
    kid.tell(Record(4)).await.unwrap();
    assert_eq!(probe.expect_msg(secs(1)).await.unwrap(), (4, 1));
    probe.expect_no_msg_for(secs(1)).await.unwrap();
    assert_eq!(boss.state(), ServiceState::Running);
    system.shutdown().await.unwrap();
    assert!(kid.is_terminated());
}

// ----- background tasks ------------------------------------------------------------------

async fn failing_task_crashes_its_service(end: TaskEnd) -> CrashReason {
    let journal = Journal::new();
    let go = Arc::new(Notify::new());
    let system = System::new();
    let tasker = system
        .spawn(Tasker {
            end,
            go: go.clone(),
            journal: journal.clone(),
        })
        .await
        .unwrap();
    assert_eq!(tasker.state(), ServiceState::Running);
    go.notify_one();
    tasker.wait_until_stopped().await;
    assert_eq!(tasker.state(), ServiceState::Crashed);
    assert_eq!(journal.take(), j(&["on_stop", "on_shutdown"]));
    system.shutdown().await.unwrap();
    assert!(tasker.is_terminated());
    assert_eq!(system.live_actors(), 0);
    tasker.crash_reason().expect("a crash reason")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_background_task_crashes_its_service() {
    match failing_task_crashes_its_service(TaskEnd::Panic).await {
        CrashReason::Panic { message, during } => {
            assert_eq!(&*message, "task blew up");
            assert!(during.starts_with("task Tasker#"), "{during}");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_task_returning_err_crashes_its_service() {
    let reason = failing_task_crashes_its_service(TaskEnd::Err).await;
    assert!(!reason.is_panic());
    assert!(matches!(reason, CrashReason::Error(_)), "{reason:?}");
    // The reason names the task (spawned unnamed: "<label>#<n>") and its error.
    assert_eq!(
        reason.to_string(),
        "task Tasker#1 of Tasker failed: task gave up"
    );
}

#[tokio::test(start_paused = true)]
async fn an_ask_abandoned_by_a_crash_says_crashed_even_after_the_restart() {
    // Deterministic replay of a chaos finding: the asker reads its answer only after the
    // supervisor has restarted the service (and so cleared its crash reason). It must still
    // hear `Crashed`, with the reason of the crash that abandoned its handler.
    use modo::supervisor::Supervisor;
    let system = System::new();
    let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
    let entered = Arc::new(Notify::new());
    let fragile = sup
        .supervise({
            let entered = entered.clone();
            move || Fragile {
                count: 0,
                entered: entered.clone(),
            }
        })
        .await
        .unwrap();
    let mut ask = std::pin::pin!(fragile.ask(Hang));
    // One poll queues the message; the asker is not polled again until the end.
    assert!(futures_poll_once(ask.as_mut()).await.is_pending());
    entered.notified().await;
    fragile.crash("abandoned it");
    fragile
        .wait_until(|f| f.restart_count() == 1 && f.state() == ServiceState::Running)
        .await;
    assert!(fragile.crash_reason().is_none(), "the restart cleared it");
    match ask.await {
        Err(Error::Crashed { reason, .. }) => assert_eq!(reason.to_string(), "abandoned it"),
        other => panic!("expected Crashed, got {:?}", other.map(|_| ())),
    }
    // A message queued after the restart is answered as usual.
    assert_eq!(fragile.ask(Inc).await.unwrap(), 1);
    system.shutdown().await.unwrap();
}

/// Polls `fut` once with the current task's waker.
async fn futures_poll_once<F: std::future::Future>(
    mut fut: std::pin::Pin<&mut F>,
) -> std::task::Poll<F::Output> {
    std::future::poll_fn(|cx| std::task::Poll::Ready(fut.as_mut().poll(cx))).await
}
