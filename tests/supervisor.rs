//! Supervisors: each strategy with three children where the second crashes, restart
//! policies, intensity and its escalation through two levels, backoff under paused time,
//! mailboxes kept across restarts, a panic stress test, and children inserted at a position
//! (`insert`), which rest-for-one restarts by.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use modo::prelude::*;
use modo::supervisor::{Backoff, RestartPolicy, Strategy, Supervisor};
use modo::testkit::Probe;
use modo::{DownReason, Recipient};
use tokio::time::Instant;

/// A worker that counts its instances (factory builds), panics on `Boom`, and records every
/// value it handles.
struct Worker {
    name: &'static str,
    seen: Vec<u64>,
}

struct Boom;
struct Item(u64);
struct Seen;
struct StopMe;

impl Service for Worker {
    fn label(&self) -> std::borrow::Cow<'static, str> {
        self.name.into()
    }
}

impl Handler<Boom> for Worker {
    type Reply = ();
    async fn handle(&mut self, _: Boom, _ctx: &mut Context<Self>) {
        panic!("{} exploded", self.name);
    }
}

impl Handler<Item> for Worker {
    type Reply = ();
    async fn handle(&mut self, Item(n): Item, _ctx: &mut Context<Self>) {
        self.seen.push(n);
    }
}

impl Handler<Seen> for Worker {
    type Reply = Vec<u64>;
    async fn handle(&mut self, _: Seen, _ctx: &mut Context<Self>) -> Vec<u64> {
        self.seen.clone()
    }
}

impl Handler<StopMe> for Worker {
    type Reply = ();
    async fn handle(&mut self, _: StopMe, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

fn worker(name: &'static str) -> impl FnMut() -> Worker + Send + 'static {
    move || Worker { name, seen: vec![] }
}

async fn three(system: &System, strategy: Strategy) -> (Addr<Supervisor>, [Addr<Worker>; 3]) {
    let sup = system
        .spawn(Supervisor::builder().strategy(strategy).build())
        .await
        .unwrap();
    let a = sup.supervise(worker("a")).await.unwrap();
    let b = sup.supervise(worker("b")).await.unwrap();
    let c = sup.supervise(worker("c")).await.unwrap();
    (sup, [a, b, c])
}

fn counts(children: &[Addr<Worker>; 3]) -> [u32; 3] {
    [0, 1, 2].map(|i| children[i].restart_count())
}

/// Crashes the middle child and waits until the supervisor has dealt with it: an ask to the
/// supervisor is queued behind the crash notice on its lanes (control first), so it returns
/// once the strategy has run.
async fn crash_middle(sup: &Addr<Supervisor>, kids: &[Addr<Worker>; 3]) {
    kids[1].crash("second child fails");
    kids[1]
        .wait_until(|k| k.restart_count() > 0 || k.is_terminated() || k.is_crashed())
        .await;
    sup.children().await.unwrap();
}

#[tokio::test]
async fn one_for_one_restarts_only_the_crashed_child() {
    let system = System::new();
    let (sup, kids) = three(&system, Strategy::OneForOne).await;
    crash_middle(&sup, &kids).await;
    assert_eq!(counts(&kids), [0, 1, 0]);
    assert!(kids.iter().all(|k| k.state() == ServiceState::Running));
    assert!(
        kids[1].crash_reason().is_none(),
        "a restart clears the reason"
    );
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_for_all_restarts_every_child() {
    let system = System::new();
    let (sup, kids) = three(&system, Strategy::OneForAll).await;
    crash_middle(&sup, &kids).await;
    assert_eq!(counts(&kids), [1, 1, 1]);
    assert!(kids.iter().all(|k| k.state() == ServiceState::Running));
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn rest_for_one_restarts_the_crashed_and_later_children() {
    let system = System::new();
    let (sup, kids) = three(&system, Strategy::RestForOne).await;
    crash_middle(&sup, &kids).await;
    assert_eq!(counts(&kids), [0, 1, 1]);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn forfeit_one_for_one_gives_up_on_the_crashed_child() {
    let system = System::new();
    let (sup, kids) = three(&system, Strategy::ForfeitOneForOne).await;
    crash_middle(&sup, &kids).await;
    kids[1].wait_until(|k| k.is_terminated()).await;
    assert!(kids[1].is_crashed());
    assert_eq!(sup.children().await.unwrap().len(), 2);
    assert!(kids[0].is_started() && kids[2].is_started());
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn forfeit_one_for_all_gives_up_on_every_child() {
    let system = System::new();
    let (sup, kids) = three(&system, Strategy::ForfeitOneForAll).await;
    crash_middle(&sup, &kids).await;
    for k in &kids {
        k.wait_until(|k| k.is_terminated()).await;
    }
    assert!(sup.children().await.unwrap().is_empty());
    assert!(sup.is_started(), "the supervisor itself goes on");
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn crashing_fails_the_whole_system() {
    let system = System::new();
    let (_sup, kids) = three(&system, Strategy::Crashing).await;
    kids[1].crash("fatal");
    // The supervisor fails the System, which shuts itself down.
    kids[0].wait_until(|k| k.is_terminated()).await;
    assert!(system.is_shutting_down());
    let err = system.shutdown().await.unwrap_err();
    match err {
        Error::Crashed { label, reason } => {
            assert_eq!(&*label, "b");
            assert_eq!(reason.to_string(), "fatal");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(kids.iter().all(|k| k.is_terminated()));
}

/// Reports every item it handles to a probe, with how many this instance handled before it
/// (0 in a fresh instance), and panics on `Boom`.
struct Reporting {
    handled: u32,
    report: Recipient<(u64, u32)>,
}

impl Service for Reporting {}

impl Handler<Item> for Reporting {
    type Reply = ();
    async fn handle(&mut self, Item(n): Item, _ctx: &mut Context<Self>) {
        let _ = self.report.tell((n, self.handled)).await;
        self.handled += 1;
    }
}

impl Handler<Boom> for Reporting {
    type Reply = ();
    async fn handle(&mut self, _: Boom, _ctx: &mut Context<Self>) {
        panic!("reporting exploded");
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_child_is_restarted_and_its_queue_kept() {
    let second = Duration::from_secs(1);
    let system = System::new();
    let mut probe = Probe::<(u64, u32)>::spawn(&system).await.unwrap();
    let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
    let report = probe.recipient();
    let w = sup
        .supervise(move || Reporting {
            handled: 0,
            report: report.clone(),
        })
        .await
        .unwrap();
    probe.watch(&w).await.unwrap();
    // Queued behind the poison message: kept across the restart, in order.
    w.tell(Item(1)).await.unwrap();
    w.tell(Boom).await.unwrap();
    for n in 2..=5 {
        w.tell(Item(n)).await.unwrap();
    }
    let down = probe.expect_down(&w, second).await.unwrap();
    match down.reason() {
        DownReason::Crashed(reason) => {
            assert!(reason.is_panic());
            assert!(
                reason.to_string().contains("reporting exploded"),
                "{reason}"
            );
        }
        other => panic!("expected a crash, got {other:?}"),
    }
    assert_eq!(
        probe.expect_msgs(5, second).await.unwrap(),
        [(1, 0), (2, 0), (3, 1), (4, 2), (5, 3)],
        "every item once, in order; a fresh instance from the factory after the crash"
    );
    probe.expect_no_msg_for(second).await.unwrap();
    assert_eq!(w.restart_count(), 1);
    assert_eq!(w.dead_letters(), 0);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn policies_decide_after_crash_and_after_stop() {
    let system = System::new();
    let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
    let spec = |name| ServiceSpec::from_factory(worker(name));
    let permanent = sup
        .supervise_with(spec("p"), RestartPolicy::Permanent)
        .await
        .unwrap();
    let transient = sup
        .supervise_with(spec("t"), RestartPolicy::Transient)
        .await
        .unwrap();
    let temporary = sup
        .supervise_with(spec("x"), RestartPolicy::Temporary)
        .await
        .unwrap();

    // After a crash: permanent and transient restart, temporary ends.
    for k in [&permanent, &transient, &temporary] {
        k.crash("crash");
    }
    permanent
        .wait_until(|k| k.restart_count() == 1 && k.is_started())
        .await;
    transient
        .wait_until(|k| k.restart_count() == 1 && k.is_started())
        .await;
    temporary.wait_until(|k| k.is_terminated()).await;

    // After a normal stop: only permanent restarts (stop() returns once the stop is done).
    permanent.stop().await.unwrap();
    transient.stop().await.unwrap();
    permanent
        .wait_until(|k| k.restart_count() == 2 && k.is_started())
        .await;
    transient.wait_until(|k| k.is_terminated()).await;
    assert_eq!(transient.state(), ServiceState::Shutdown);

    // A permanent child that stops itself is restarted too.
    permanent.ask(StopMe).await.unwrap();
    permanent
        .wait_until(|k| k.restart_count() == 3 && k.is_started())
        .await;

    // discard removes it for good.
    sup.discard(&permanent.service_ref()).await.unwrap();
    assert!(permanent.is_terminated());
    assert!(sup.children().await.unwrap().is_empty());
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn intensity_escalates_through_two_levels() {
    let system = System::new();
    let top = system
        .spawn(
            Supervisor::builder()
                .label("top")
                .max_restarts(1)
                .over(Duration::from_secs(10))
                .build(),
        )
        .await
        .unwrap();
    let inner_builds = Arc::new(AtomicU32::new(0));
    let builds = inner_builds.clone();
    let inner = top
        .supervise(move || {
            builds.fetch_add(1, Ordering::SeqCst);
            Supervisor::builder()
                .label("inner")
                .max_restarts(2)
                .over(Duration::from_secs(10))
                .build()
        })
        .await
        .unwrap();
    let w = inner.supervise(worker("w")).await.unwrap();

    // Two restarts are within the inner supervisor's intensity...
    for n in 1..=2 {
        w.crash("again");
        w.wait_until(|k| k.restart_count() == n && k.is_started())
            .await;
    }
    assert!(inner.is_started());
    // ...the third is past it: inner stops its child and crashes with MaxRestartsExceeded,
    // and the top supervisor restarts inner (a fresh one from its factory).
    w.crash("again");
    inner
        .wait_until(|s| s.restart_count() == 1 && s.is_started())
        .await;
    assert_eq!(inner_builds.load(Ordering::SeqCst), 2);
    assert!(w.is_started(), "the subtree restarts with its supervisor");
    assert!(top.is_started());

    // Escalating a second time exceeds the top supervisor's own intensity (1): it crashes,
    // and as a root it ends. The fresh inner supervisor allows two restarts again.
    for _ in 0..2 {
        let before = w.restart_count();
        w.crash("and again");
        w.wait_until(|k| k.restart_count() == before + 1 && k.is_started())
            .await;
    }
    w.crash("once more");
    top.wait_until(|t| t.is_terminated()).await;
    match top.crash_reason() {
        Some(CrashReason::Error(e)) => match e.downcast_ref::<Error>() {
            Some(Error::MaxRestartsExceeded {
                label,
                restarts,
                max_restarts,
                ..
            }) => {
                assert_eq!(&**label, "top");
                assert_eq!((*restarts, *max_restarts), (2, 1));
            }
            other => panic!("unexpected {other:?}"),
        },
        other => panic!("unexpected {other:?}"),
    }
    assert!(w.is_terminated() && inner.is_terminated());
    system.shutdown().await.unwrap();
}

/// A supervisor allowing 3 restarts a minute with `backoff`, and its child, which starts once
/// fine and then fails every restart at `on_start`; the child's start attempts, and the last
/// restart index its factory was told.
async fn crash_loop(
    system: &System,
    backoff: Backoff,
) -> (Addr<Supervisor>, Addr<Loop>, Arc<AtomicU32>, Arc<AtomicU32>) {
    let sup = system
        .spawn(
            Supervisor::builder()
                .max_restarts(3)
                .over(Duration::from_secs(60))
                .backoff(backoff)
                .build(),
        )
        .await
        .unwrap();
    let attempts = Arc::new(AtomicU32::new(0));
    let index_told = Arc::new(AtomicU32::new(0));
    let (a, f) = (attempts.clone(), index_told.clone());
    let child = sup
        .supervise_with(
            ServiceSpec::from_indexed_factory(move |index| {
                f.store(index, Ordering::SeqCst);
                Loop {
                    attempts: a.clone(),
                    index,
                }
            }),
            RestartPolicy::Permanent,
        )
        .await
        .unwrap();
    (sup, child, attempts, index_told)
}

/// The crash loop ended as it should: 1 good start + 3 failing restarts; the 4th restart is
/// past the intensity, and the supervisor crashed with `MaxRestartsExceeded`.
fn assert_crash_loop_escalated(sup: &Addr<Supervisor>, attempts: &AtomicU32) {
    assert_eq!(attempts.load(Ordering::SeqCst), 4);
    assert!(matches!(
        sup.crash_reason(),
        Some(CrashReason::Error(ref e)) if matches!(e.downcast_ref::<Error>(), Some(Error::MaxRestartsExceeded { restarts: 4, max_restarts: 3, .. }))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_crash_loop_is_bounded_and_backed_off() {
    let system = System::new();
    let backoff = Backoff::Exponential {
        base: Duration::from_millis(100),
        max: Duration::from_secs(1),
    };
    let (sup, child, attempts, index_told) = crash_loop(&system, backoff).await;
    let start = Instant::now();
    child.crash("first");
    sup.wait_until(|s| s.is_terminated()).await;
    assert_crash_loop_escalated(&sup, &attempts);
    assert_eq!(
        index_told.load(Ordering::SeqCst),
        3,
        "the factory is told the restart index"
    );
    // Backoff before the restarts: 100 ms, 200 ms, 400 ms (the failed starts are crashes too).
    assert_eq!(start.elapsed(), Duration::from_millis(700));
    system.shutdown().await.unwrap();
}

struct Loop {
    attempts: Arc<AtomicU32>,
    index: u32,
}

impl Service for Loop {
    async fn on_start(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.index == 0 {
            Ok(())
        } else {
            Err("cannot start".into())
        }
    }
}

/// Every Kth message panics under a stream of messages: every other message is handled
/// exactly once, in order, and the poison messages are never redelivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_panicking_every_kth_message_loses_nothing_else() {
    const TOTAL: u64 = 10_000;
    const K: u64 = 100;
    let system = System::new();
    let sup = system
        .spawn(Supervisor::builder().max_restarts(1_000).build())
        .await
        .unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let shared = seen.clone();
    let child = sup
        .supervise(move || Poisoned {
            seen: shared.clone(),
        })
        .await
        .unwrap();
    for n in 1..=TOTAL {
        child.tell(Item(n)).await.unwrap();
    }
    child
        .wait_until(|c| c.restart_count() == (TOTAL / K) as u32 && c.mailbox_len() == 0)
        .await;
    let _ = child.ask(Seen).await;
    let seen = seen.lock().unwrap().clone();
    let expected: Vec<u64> = (1..=TOTAL).filter(|n| n % K != 0).collect();
    assert_eq!(seen.len(), expected.len());
    assert_eq!(seen, expected);
    assert_eq!(child.restart_count(), (TOTAL / K) as u32);
    system.shutdown().await.unwrap();
}

struct Poisoned {
    seen: Arc<std::sync::Mutex<Vec<u64>>>,
}

impl Service for Poisoned {}

impl Handler<Item> for Poisoned {
    type Reply = ();
    async fn handle(&mut self, Item(n): Item, _ctx: &mut Context<Self>) {
        if n % 100 == 0 {
            panic!("poison {n}");
        }
        self.seen.lock().unwrap().push(n);
    }
}

impl Handler<Seen> for Poisoned {
    type Reply = Vec<u64>;
    async fn handle(&mut self, _: Seen, _ctx: &mut Context<Self>) -> Vec<u64> {
        Vec::new()
    }
}

#[tokio::test]
async fn build_time_children_are_supervised_too() {
    let system = System::new();
    let sup = system
        .spawn(
            Supervisor::builder()
                .child(worker("first"))
                .child(worker("second"))
                .build(),
        )
        .await
        .unwrap();
    let kids = sup.children().await.unwrap();
    assert_eq!(
        kids.iter()
            .map(|k| k.label().to_owned())
            .collect::<Vec<_>>(),
        ["first", "second"]
    );
    let second = kids[1].downcast::<Worker>().unwrap();
    second.tell(Boom).await.unwrap();
    second
        .wait_until(|k| k.restart_count() == 1 && k.is_started())
        .await;
    assert!(sup.service_operational(&kids[1]));
    system.shutdown().await.unwrap();
}

fn names(children: &[ServiceRef]) -> Vec<String> {
    children.iter().map(|c| c.label().to_owned()).collect()
}

/// A child inserted in the middle takes that place in the order: rest-for-one restarts it and
/// exactly the children after it.
#[tokio::test]
async fn insert_places_a_child_where_rest_for_one_restarts_from() {
    let system = System::new();
    let sup = system
        .spawn(Supervisor::builder().strategy(Strategy::RestForOne).build())
        .await
        .unwrap();
    let a = sup.supervise(worker("a")).await.unwrap();
    let c = sup.supervise(worker("c")).await.unwrap();
    let b = sup
        .insert(
            1,
            ServiceSpec::from_factory(worker("b")),
            RestartPolicy::Permanent,
        )
        .await
        .unwrap();
    assert!(b.is_started());
    let first = sup
        .insert(
            0,
            ServiceSpec::from_factory(worker("first")),
            RestartPolicy::Permanent,
        )
        .await
        .unwrap();
    let last = sup
        .insert(
            4,
            ServiceSpec::from_factory(worker("last")),
            RestartPolicy::Permanent,
        )
        .await
        .unwrap();
    assert_eq!(
        names(&sup.children().await.unwrap()),
        ["first", "a", "b", "c", "last"]
    );
    let all = [&first, &a, &b, &c, &last];
    let counts = || all.map(|k| k.restart_count());

    b.crash("b fails");
    b.wait_until(|k| k.restart_count() == 1 && k.is_started())
        .await;
    sup.children().await.unwrap();
    assert_eq!(counts(), [0, 0, 1, 1, 1], "b and what comes after it");
    assert!(all.iter().all(|k| k.state() == ServiceState::Running));

    a.crash("a fails");
    a.wait_until(|k| k.restart_count() == 1 && k.is_started())
        .await;
    sup.children().await.unwrap();
    assert_eq!(counts(), [0, 1, 2, 2, 2]);
    system.shutdown().await.unwrap();
}

/// An index past the end is refused with a typed error, and nothing is spawned or changed;
/// a child whose start fails is not kept either.
#[tokio::test]
async fn insert_past_the_end_is_a_typed_error() {
    let system = System::new();
    let sup = system
        .spawn(Supervisor::builder().label("sup").build())
        .await
        .unwrap();
    sup.supervise(worker("a")).await.unwrap();
    let live = system.live_actors();
    let err = sup
        .insert(
            2,
            ServiceSpec::from_factory(worker("far")),
            RestartPolicy::Permanent,
        )
        .await
        .unwrap_err();
    match &err {
        Error::ChildIndexOutOfRange { label, index, len } => {
            assert_eq!((&**label, *index, *len), ("sup", 2, 1));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "sup has 1 children: cannot insert one at 2"
    );
    assert_eq!(names(&sup.children().await.unwrap()), ["a"]);
    assert_eq!(system.live_actors(), live, "nothing was spawned");

    let failing = ServiceSpec::from_indexed_factory(|index| Loop {
        attempts: Arc::new(AtomicU32::new(0)),
        index: index + 1,
    });
    let err = sup
        .insert(0, failing, RestartPolicy::Permanent)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::HookFailed { .. }), "{err:?}");
    assert_eq!(names(&sup.children().await.unwrap()), ["a"]);
    system.shutdown().await.unwrap();
}

/// Its first start is immediate; a restart waits for `gate`.
struct SlowRestart {
    gate: Arc<tokio::sync::Notify>,
}
impl Service for SlowRestart {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        if ctx.restart_count() > 0 {
            self.gate.notified().await;
        }
        Ok(())
    }
}

/// A supervisor does not wait for a one-for-one restart to finish starting: it answers
/// meanwhile, and the restart completes on its own.
#[tokio::test(start_paused = true)]
async fn a_supervisor_answers_while_its_crashed_child_restarts() {
    let system = System::new();
    let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
    let gate = Arc::new(tokio::sync::Notify::new());
    let child = sup
        .supervise({
            let gate = gate.clone();
            move || SlowRestart { gate: gate.clone() }
        })
        .await
        .unwrap();
    child.crash("boom");
    tokio::time::timeout(
        Duration::from_secs(5),
        child.wait_until(|c| c.restart_count() == 1 && c.state() == ServiceState::Starting),
    )
    .await
    .expect("the restart began");
    let children = tokio::time::timeout(Duration::from_secs(5), sup.children())
        .await
        .expect("the supervisor answers while its child restarts")
        .unwrap();
    assert_eq!(children, [child.service_ref()]);
    gate.notify_one();
    tokio::time::timeout(
        Duration::from_secs(5),
        child.wait_until(|c| c.state() == ServiceState::Running),
    )
    .await
    .expect("the restart finished");
    assert_eq!(child.restart_count(), 1);
    system.shutdown().await.unwrap();
}

/// Its restarts fail.
struct NoRestart;
impl Service for NoRestart {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        if ctx.restart_count() > 0 {
            return Err("cannot come back".into());
        }
        Ok(())
    }
}

/// A parent with one `NoRestart` child that reports its children's crashes and drops the
/// crashed child.
struct Hears {
    crashes: tokio::sync::mpsc::UnboundedSender<String>,
    child: Option<Addr<NoRestart>>,
}
struct TheChild;
impl Service for Hears {
    async fn on_first_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        self.child = Some(ctx.add_dependency(NoRestart));
        Ok(())
    }
    async fn on_child_crashed(
        &mut self,
        _: &ServiceRef,
        reason: &CrashReason,
        _: &mut Context<Self>,
    ) -> ChildAction {
        let _ = self.crashes.send(reason.to_string());
        ChildAction::Remove
    }
}
impl Handler<TheChild> for Hears {
    type Reply = Addr<NoRestart>;
    async fn handle(&mut self, _: TheChild, _: &mut Context<Self>) -> Addr<NoRestart> {
        self.child.clone().expect("added at the first start")
    }
}

/// `Lifecycle::Restart` sent as a message has nobody waiting for its answer: when that restart
/// fails, the child is crashed and its parent hears of it (it used to sit crashed, unheard).
#[tokio::test(start_paused = true)]
async fn a_restart_sent_as_a_message_that_fails_is_a_crash_the_parent_hears() {
    let system = System::new();
    let (crashes, mut heard) = tokio::sync::mpsc::unbounded_channel();
    let parent = system
        .spawn(Hears {
            crashes,
            child: None,
        })
        .await
        .unwrap();
    let child = parent.ask(TheChild).await.unwrap();
    child.send_lifecycle(Lifecycle::Restart).unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(5), heard.recv())
        .await
        .expect("the parent hears of the failed restart")
        .unwrap();
    assert!(reason.contains("cannot come back"), "{reason}");
    tokio::time::timeout(Duration::from_secs(5), child.wait_until_stopped())
        .await
        .expect("removed by its parent");
    assert!(
        parent.is_started(),
        "the parent chose to remove, not to escalate"
    );
    system.shutdown().await.unwrap();
}

/// Its first start tells `entered` and waits for `gate`.
struct GatedStart {
    entered: Arc<tokio::sync::Notify>,
    gate: Arc<tokio::sync::Notify>,
}
impl Service for GatedStart {
    async fn on_start(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.entered.notify_one();
        self.gate.notified().await;
        Ok(())
    }
}

/// A one-for-one restart is decided in the crashed child's own task: it does not wait for its
/// supervisor, here stuck in a `supervise` request whose child's start waits on a gate. (When
/// the crash had to go through the supervisor's mailbox, the restart waited for the gate.)
#[tokio::test(start_paused = true)]
async fn a_one_for_one_child_restarts_while_its_supervisor_is_busy() {
    let system = System::new();
    let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
    let w = sup.supervise(worker("w")).await.unwrap();
    let (entered, gate) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let busy = tokio::spawn({
        let (sup, entered, gate) = (sup.clone(), entered.clone(), gate.clone());
        async move {
            sup.supervise(move || GatedStart {
                entered: entered.clone(),
                gate: gate.clone(),
            })
            .await
        }
    });
    tokio::time::timeout(Duration::from_secs(5), entered.notified())
        .await
        .expect("the supervisor is busy starting the gated child");

    w.tell(Boom).await.unwrap();
    w.tell(Item(7)).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(5),
        w.wait_until(|k| k.restart_count() == 1 && k.is_started()),
    )
    .await
    .expect("the child restarted while its supervisor was busy");
    let seen = tokio::time::timeout(Duration::from_secs(5), w.ask(Seen))
        .await
        .expect("the restarted child answers")
        .unwrap();
    assert_eq!(seen, [7], "the message queued behind the crash is handled");
    assert!(!busy.is_finished(), "the supervisor is still busy");

    gate.notify_one();
    busy.await.unwrap().expect("the gated child started");
    assert_eq!(sup.children().await.unwrap().len(), 2);
    system.shutdown().await.unwrap();
}

/// Restarts decided in place count against the same intensity as the supervisor's own: a
/// child whose restarts fail is restarted in place once, then each failure comes back to the
/// supervisor as a crash, until the fourth restart is past `max_restarts(3)` and it escalates.
#[tokio::test(start_paused = true)]
async fn failing_restarts_in_place_count_until_the_supervisor_escalates() {
    let system = System::new();
    let (sup, child, attempts, _) = crash_loop(&system, Backoff::None).await;
    child.crash("first");
    tokio::time::timeout(
        Duration::from_secs(5),
        sup.wait_until(|s| s.is_terminated()),
    )
    .await
    .expect("the supervisor escalated");
    assert_crash_loop_escalated(&sup, &attempts);
    assert!(child.is_terminated());
    system.shutdown().await.unwrap();
}
