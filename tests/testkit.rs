//! The test kit itself (`modo::testkit`): probes expect messages, silence and downs within
//! bounds that paused time makes exact, with typed errors when they fail; faults injected on
//! a spec crash, fail and delay services, and a probe sees what a supervisor did about it;
//! the journal and the recorder assert hook order and fail where told.

use std::time::Duration;

use modo::prelude::*;
use modo::supervisor::RestartPolicy;
use modo::testkit::{
    DropNote, ExpectError, Fail, Faults, Journal, JournalError, Ping, Probe, Recorder,
    RecorderError,
};
use modo::{DEFAULT_SHUTDOWN_TIMEOUT, Down, DownReason, Hook, Recipient};
use tokio::time::Instant;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// The crash reason of a down, or a failed test.
fn crash_of(down: &Down) -> CrashReason {
    match down.reason() {
        DownReason::Crashed(reason) => reason.clone(),
        other => panic!("expected a crash, got {other:?}"),
    }
}

// ----- services under test ---------------------------------------------------------------

/// Reports `n * 10` for every `Calc(n)`, and after `Later(d, n)` reports `n` once `d` has
/// passed (from a background task).
struct Calc {
    report: Recipient<u64>,
}

impl Service for Calc {}

struct Times10(u64);
struct Later(Duration, u64);

impl Handler<Times10> for Calc {
    type Reply = ();
    async fn handle(&mut self, Times10(n): Times10, _ctx: &mut Context<Self>) {
        self.report.tell(n * 10).await.unwrap();
    }
}

impl Handler<Later> for Calc {
    type Reply = ();
    async fn handle(&mut self, Later(d, n): Later, ctx: &mut Context<Self>) {
        let report = self.report.clone();
        ctx.spawn(async move {
            tokio::time::sleep(d).await;
            report.tell(n).await.ok();
        });
    }
}

async fn calc(system: &System, probe: &Probe<u64>) -> Addr<Calc> {
    system
        .spawn(Calc {
            report: probe.recipient(),
        })
        .await
        .unwrap()
}

/// What the supervised jobs tell the probe: their starts (with the restart count) and the
/// jobs they did.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Report {
    Started { who: &'static str, restarts: u32 },
    Done { who: &'static str, job: u32 },
}

impl Report {
    fn who(&self) -> &'static str {
        match self {
            Report::Started { who, .. } | Report::Done { who, .. } => who,
        }
    }
}

struct Jobs {
    who: &'static str,
    report: Recipient<Report>,
}

impl Service for Jobs {
    async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let started = Report::Started {
            who: self.who,
            restarts: ctx.restart_count(),
        };
        self.report.tell(started).await?;
        Ok(())
    }

    fn label(&self) -> std::borrow::Cow<'static, str> {
        self.who.into()
    }
}

struct Job(u32);

impl Handler<Job> for Jobs {
    type Reply = ();
    async fn handle(&mut self, Job(job): Job, _ctx: &mut Context<Self>) {
        let who = self.who;
        self.report.tell(Report::Done { who, job }).await.unwrap();
    }
}

fn jobs(who: &'static str, probe: &Probe<Report>) -> ServiceSpec<Jobs> {
    let report = probe.recipient();
    ServiceSpec::from_factory(move || Jobs {
        who,
        report: report.clone(),
    })
}

// ----- probe: messages -------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn expect_msg_returns_what_the_code_under_test_sent_in_order() {
    let system = System::new();
    let mut probe = Probe::<u64>::spawn(&system).await.unwrap();
    let calc = calc(&system, &probe).await;
    for n in 1..=3 {
        calc.tell(Times10(n)).await.unwrap();
    }
    for n in 1..=3 {
        assert_eq!(probe.expect_msg(secs(1)).await.unwrap(), n * 10);
    }
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn expect_msg_times_out_with_a_typed_error_after_exactly_its_bound() {
    let system = System::new();
    let mut probe = Probe::<u64>::spawn(&system).await.unwrap();
    let real = std::time::Instant::now();
    let start = Instant::now();
    let err = probe.expect_msg(secs(3600)).await.unwrap_err();
    assert!(
        matches!(err, ExpectError::NoMessage { within } if within == secs(3600)),
        "{err:?}"
    );
    assert!(err.is_timeout());
    assert_eq!(err.to_string(), "no message within 3600s");
    // Virtual time: exactly the bound, and the hour cost no real hour.
    assert_eq!(start.elapsed(), secs(3600));
    assert!(real.elapsed() < secs(60), "{:?}", real.elapsed());
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_message_already_received_returns_even_with_a_zero_bound() {
    let system = System::new();
    let mut probe = Probe::<u64>::spawn(&system).await.unwrap();
    // An ask returns after the handler: the message is on the probe by then.
    probe.addr().ask(7u64).await.unwrap();
    assert_eq!(probe.expect_msg(Duration::ZERO).await.unwrap(), 7);
    assert!(matches!(
        probe.expect_msg(Duration::ZERO).await,
        Err(ExpectError::NoMessage { .. })
    ));
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn expect_no_msg_for_passes_in_silence_and_fails_at_the_first_message() {
    let system = System::new();
    let mut probe = Probe::<u64>::spawn(&system).await.unwrap();
    let calc = calc(&system, &probe).await;
    let start = Instant::now();
    calc.tell(Later(secs(3), 42)).await.unwrap();
    probe.expect_no_msg_for(secs(2)).await.unwrap();
    assert_eq!(start.elapsed(), secs(2), "silence is awaited in full");
    let err = probe.expect_no_msg_for(secs(5)).await.unwrap_err();
    assert_eq!(
        start.elapsed(),
        secs(3),
        "fails as soon as the message comes"
    );
    assert!(!err.is_timeout());
    assert_eq!(
        err.to_string(),
        "an unexpected message arrived (a u64)",
        "{err:?}"
    );
    assert_eq!(err.into_message(), Some(42), "the message is handed back");
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn expect_msg_matching_hands_back_a_message_the_predicate_refuses() {
    let system = System::new();
    let mut probe = Probe::<u64>::spawn(&system).await.unwrap();
    let calc = calc(&system, &probe).await;
    calc.tell(Times10(1)).await.unwrap();
    calc.tell(Times10(2)).await.unwrap();
    let even = |n: &u64| n.is_multiple_of(20);
    match probe.expect_msg_matching(secs(1), even).await {
        Err(ExpectError::Unexpected { message }) => assert_eq!(message, 10),
        other => panic!("expected Unexpected, got {other:?}"),
    }
    assert_eq!(probe.expect_msg_matching(secs(1), even).await.unwrap(), 20);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn expect_msgs_gives_the_ones_that_came_when_too_few_do() {
    let system = System::new();
    let mut probe = Probe::<u64>::spawn(&system).await.unwrap();
    let calc = calc(&system, &probe).await;
    calc.tell(Times10(1)).await.unwrap();
    calc.tell(Later(secs(2), 5)).await.unwrap();
    calc.tell(Later(secs(9), 6)).await.unwrap();
    let start = Instant::now();
    // One bound for all: the third message is later than it.
    match probe.expect_msgs(3, secs(5)).await {
        Err(ExpectError::TooFew {
            expected,
            received,
            within,
        }) => {
            assert_eq!((expected, within), (3, secs(5)));
            assert_eq!(received, [10, 5]);
        }
        other => panic!("expected TooFew, got {other:?}"),
    }
    assert_eq!(start.elapsed(), secs(5));
    assert_eq!(probe.expect_msgs(1, secs(5)).await.unwrap(), [6]);
    assert_eq!(start.elapsed(), secs(9));
    system.shutdown().await.unwrap();
}

/// One probe of an enum takes every type that converts into it: the code under test holds a
/// `Recipient` of its own message type.
#[derive(Debug, PartialEq)]
enum Seen {
    Number(u64),
    Word(String),
}

impl From<u64> for Seen {
    fn from(n: u64) -> Self {
        Seen::Number(n)
    }
}

impl From<String> for Seen {
    fn from(s: String) -> Self {
        Seen::Word(s)
    }
}

#[tokio::test(start_paused = true)]
async fn one_probe_takes_several_message_types_through_an_enum() {
    let system = System::new();
    let mut probe = Probe::<Seen>::spawn(&system).await.unwrap();
    let numbers: Recipient<u64> = probe.recipient();
    let words: Recipient<String> = probe.recipient();
    numbers.tell(1).await.unwrap();
    words.tell("two".to_owned()).await.unwrap();
    probe.addr().tell(Seen::Number(3)).await.unwrap();
    assert_eq!(
        probe.expect_msgs(3, secs(1)).await.unwrap(),
        [Seen::Number(1), Seen::Word("two".into()), Seen::Number(3)]
    );
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_replying_probe_stands_in_for_a_service_that_is_asked() {
    let system = System::new();
    let mut probe = Probe::<String>::builder()
        .label("Lengths")
        .reply(|s: &String| s.len())
        .spawn(&system)
        .await
        .unwrap();
    assert_eq!(probe.label(), "Lengths");
    let lengths: Recipient<String, usize> = probe.recipient();
    assert_eq!(lengths.ask("four".to_owned()).await.unwrap(), 4);
    assert_eq!(probe.expect_msg(Duration::ZERO).await.unwrap(), "four");
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stopped_probe_gives_what_it_had_then_says_stopped_at_once() {
    let system = System::new();
    let mut probe = Probe::<u64>::builder()
        .label("P")
        .spawn(&system)
        .await
        .unwrap();
    // Handled before the stop (a stop dead-letters what is still queued).
    probe.addr().ask(1u64).await.unwrap();
    probe.stop().await.unwrap();
    assert!(probe.addr().is_terminated());
    assert_eq!(probe.expect_msg(secs(1)).await.unwrap(), 1);
    let start = Instant::now();
    let err = probe.expect_msg(secs(3600)).await.unwrap_err();
    assert!(
        matches!(&err, ExpectError::ProbeStopped { label } if &**label == "P"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "the probe P has stopped");
    assert!(matches!(
        probe.expect_no_msg_for(secs(3600)).await,
        Err(ExpectError::ProbeStopped { .. })
    ));
    let other = system
        .spawn(Recorder::new("X", &Journal::new()))
        .await
        .unwrap();
    assert!(matches!(
        probe.expect_down(&other, secs(3600)).await,
        Err(ExpectError::ProbeStopped { .. })
    ));
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no waiting on a stopped probe"
    );
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_probe_cannot_join_a_system_that_is_shutting_down() {
    let system = System::new();
    system.shutdown().await.unwrap();
    let err = Probe::<u64>::spawn(&system).await.unwrap_err();
    assert!(matches!(err, Error::ShuttingDown), "{err:?}");
}

// ----- probe: downs ----------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn expect_down_of_a_crashed_service_gives_the_reason() {
    let system = System::new();
    let mut probe = Probe::<u64>::spawn(&system).await.unwrap();
    let calc = calc(&system, &probe).await;
    probe.watch(&calc).await.unwrap();
    calc.crash("unplugged");
    let down = probe.expect_down(&calc, secs(1)).await.unwrap();
    assert_eq!(down.service().id(), calc.id());
    assert!(down.is_crash());
    let reason = crash_of(&down);
    assert!(matches!(&reason, CrashReason::Message(m) if &**m == "unplugged"));
    assert_eq!(down.to_string(), "Calc crashed: unplugged");
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn expect_down_of_a_panicking_service_gives_the_panic() {
    let system = System::new();
    let mut probe = Probe::<u64>::spawn(&system).await.unwrap();
    // A recorder that panics in on_stop: stopping it is a crash, with the panic as reason.
    let r = system
        .spawn(
            Recorder::new("R", &Journal::new())
                .fail_at(Hook::OnStop, Fail::Panic)
                .unwrap(),
        )
        .await
        .unwrap();
    // expect_down watches by itself; the stop is started from another task.
    let stopper = tokio::spawn({
        let r = r.clone();
        async move { r.stop().await }
    });
    let down = probe.expect_down(&r, secs(1)).await.unwrap();
    match crash_of(&down) {
        CrashReason::Panic { message, during } => {
            assert_eq!(&*message, "R panicked in on_stop");
            assert_eq!(&*during, "on_stop");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert!(stopper.await.unwrap().is_err());
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn expect_down_of_a_stopped_service_and_of_one_already_down() {
    let system = System::new();
    let mut probe = Probe::<u64>::spawn(&system).await.unwrap();
    let journal = Journal::new();
    let a = system.spawn(Recorder::new("A", &journal)).await.unwrap();
    probe.watch(&a).await.unwrap();
    a.stop().await.unwrap();
    let down = probe.expect_down(&a, secs(1)).await.unwrap();
    assert!(matches!(down.reason(), DownReason::Stopped));
    assert_eq!(down.to_string(), "A stopped");

    // Already down before anyone watched: heard at once, with its reason.
    let b = system.spawn(Recorder::new("B", &journal)).await.unwrap();
    b.crash("gone before");
    b.wait_until_stopped().await;
    let start = Instant::now();
    let down = probe.expect_down(&b, secs(3600)).await.unwrap();
    assert_eq!(crash_of(&down).to_string(), "gone before");
    assert_eq!(start.elapsed(), Duration::ZERO);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn expect_down_of_a_live_service_times_out_naming_it() {
    let system = System::new();
    let mut probe = Probe::<u64>::spawn(&system).await.unwrap();
    let a = system
        .spawn(Recorder::new("Alive", &Journal::new()))
        .await
        .unwrap();
    let start = Instant::now();
    let err = probe.expect_down(&a, secs(30)).await.unwrap_err();
    assert!(
        matches!(&err, ExpectError::NotDown { service, within } if &**service == "Alive" && *within == secs(30)),
        "{err:?}"
    );
    assert!(err.is_timeout());
    assert_eq!(err.to_string(), "Alive did not go down within 30s");
    assert_eq!(start.elapsed(), secs(30));
    assert!(a.is_started());
    // The watch is still live: a later crash is heard.
    a.crash("later");
    let down = probe.expect_down(&a, secs(1)).await.unwrap();
    assert_eq!(crash_of(&down).to_string(), "later");
    system.shutdown().await.unwrap();
}

/// Crashes `first`, waits until its supervisor restarted it (its watch fired before), then
/// crashes `second`.
async fn crash_one_then_the_other(first: Addr<Jobs>, second: Addr<Jobs>) {
    first.crash("first");
    first
        .wait_until(|s| s.restart_count() == 1 && s.is_started())
        .await;
    second.crash("second");
}

/// The first service's down comes first but the second's is expected first: the first's is
/// kept, and returned later without a new watch (it runs again by then, restarted, so a new
/// watch could not hear that crash). Once heard while waiting, once found already queued.
#[tokio::test(start_paused = true)]
async fn downs_heard_while_expecting_another_are_kept_for_later() {
    let system = System::new();
    let mut probe = Probe::<Report>::spawn(&system).await.unwrap();
    let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
    let mut kids = Vec::new();
    for who in ["A", "B", "C", "D"] {
        let kid = sup
            .supervise_with(jobs(who, &probe), RestartPolicy::Permanent)
            .await
            .unwrap();
        probe.watch(&kid).await.unwrap();
        kids.push(kid);
    }
    let [a, b, c, d] = <[Addr<Jobs>; 4]>::try_from(kids).ok().unwrap();

    // Heard while waiting: the crashes come while the probe waits for B.
    let crashes = tokio::spawn(crash_one_then_the_other(a.clone(), b.clone()));
    let down = probe.expect_down(&b, secs(1)).await.unwrap();
    assert_eq!(crash_of(&down).to_string(), "second");
    crashes.await.unwrap();
    let start = Instant::now();
    let down = probe.expect_down(&a, secs(1)).await.unwrap();
    assert_eq!(crash_of(&down).to_string(), "first");
    assert_eq!(start.elapsed(), Duration::ZERO, "A's down was heard");

    // Found queued: both crashes happen before the probe looks.
    crash_one_then_the_other(c.clone(), d.clone()).await;
    let down = probe.expect_down(&d, secs(1)).await.unwrap();
    assert_eq!(crash_of(&down).to_string(), "second");
    let down = probe.expect_down(&c, secs(1)).await.unwrap();
    assert_eq!(crash_of(&down).to_string(), "first");
    assert_eq!(start.elapsed(), Duration::ZERO, "C's down was heard");
    system.shutdown().await.unwrap();
}

/// After a supervisor restarted a crashed service, watching it again hears its next crash
/// (the kernel re-arms a service's watchers when it restarts), not a `Stopped` at once.
#[tokio::test(start_paused = true)]
async fn a_watch_after_a_restart_hears_the_next_crash() {
    let system = System::new();
    let mut probe = Probe::<Report>::spawn(&system).await.unwrap();
    let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
    let a = sup
        .supervise_with(jobs("A", &probe), RestartPolicy::Permanent)
        .await
        .unwrap();
    probe.watch(&a).await.unwrap();
    a.crash("first");
    assert_eq!(
        crash_of(&probe.expect_down(&a, secs(1)).await.unwrap()).to_string(),
        "first"
    );
    a.wait_until(|a| a.restart_count() == 1 && a.is_started())
        .await;
    probe.watch(&a).await.unwrap();
    let err = probe.expect_down(&a, secs(1)).await.map(|d| d.to_string());
    assert!(
        matches!(err, Err(ExpectError::NotDown { .. })),
        "a running service is not down: {err:?}"
    );
    a.crash("second");
    assert_eq!(
        crash_of(&probe.expect_down(&a, secs(1)).await.unwrap()).to_string(),
        "second"
    );
    system.shutdown().await.unwrap();
}

// ----- faults ----------------------------------------------------------------------------

/// Job 3 of A crashes it (an injected fault, not A's code). Under one-for-all the supervisor
/// restarts A and its sibling B: the probe hears A's crash with the fault's reason, both
/// restarts, and A's jobs before and after; job 3 is lost with the crash, job 4 is not.
#[tokio::test(start_paused = true)]
async fn a_crash_on_the_nth_message_restarts_under_a_supervisor_and_the_probe_sees_it() {
    let system = System::new();
    let mut probe = Probe::<Report>::spawn(&system).await.unwrap();
    let sup = system
        .spawn(Supervisor::builder().strategy(Strategy::OneForAll).build())
        .await
        .unwrap();
    let a = sup
        .supervise_with(
            jobs("A", &probe).faults(Faults::new().crash_on_message(3)),
            RestartPolicy::Permanent,
        )
        .await
        .unwrap();
    let b = sup
        .supervise_with(jobs("B", &probe), RestartPolicy::Permanent)
        .await
        .unwrap();
    probe.watch(&a).await.unwrap();
    for job in 1..=4 {
        a.tell(Job(job)).await.unwrap();
    }

    let down = probe.expect_down(&a, secs(1)).await.unwrap();
    let reason = crash_of(&down);
    assert!(!reason.is_panic());
    assert_eq!(reason.to_string(), "injected fault: crash on message 3");

    let reports = probe.expect_msgs(7, secs(1)).await.unwrap();
    probe.expect_no_msg_for(secs(1)).await.unwrap();
    let of = |who| -> Vec<Report> { reports.iter().filter(|r| r.who() == who).cloned().collect() };
    use Report::{Done, Started};
    assert_eq!(
        of("A"),
        [
            Started {
                who: "A",
                restarts: 0
            },
            Done { who: "A", job: 1 },
            Done { who: "A", job: 2 },
            Started {
                who: "A",
                restarts: 1
            },
            Done { who: "A", job: 4 },
        ]
    );
    assert_eq!(
        of("B"),
        [
            Started {
                who: "B",
                restarts: 0
            },
            Started {
                who: "B",
                restarts: 1
            },
        ],
        "one-for-all restarted the sibling too"
    );
    assert_eq!((a.restart_count(), b.restart_count()), (1, 1));
    assert_eq!(
        a.dead_letters(),
        0,
        "the crashing message is lost, not a dead letter"
    );
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn failing_the_first_start_fails_the_spawn_with_a_typed_error() {
    let journal = Journal::new();
    let system = System::new();
    let err = system
        .spawn(ServiceSpec::new(Recorder::new("A", &journal)).faults(Faults::new().fail_start(1)))
        .await
        .unwrap_err();
    match &err {
        Error::HookFailed {
            label,
            hook,
            source,
        } => {
            assert_eq!(&**label, "A");
            assert_eq!(*hook, Hook::OnStart);
            assert_eq!(source.to_string(), "injected fault: start 1 fails");
        }
        other => panic!("expected HookFailed, got {other:?}"),
    }
    // The fault stands in for on_start: it never ran, and nothing is left running.
    assert_eq!(journal.take(), ["A:on_init", "A:on_first_start"]);
    assert!(system.roots().is_empty());
    system.shutdown().await.unwrap();
    assert_eq!(system.live_actors(), 0);
}

#[tokio::test(start_paused = true)]
async fn failing_a_later_start_fails_that_restart_with_a_typed_error() {
    let system = System::new();
    let mut probe = Probe::<Report>::spawn(&system).await.unwrap();
    let a = system
        .spawn(jobs("A", &probe).faults(Faults::new().fail_start(2)))
        .await
        .unwrap();
    probe.watch(&a).await.unwrap();
    let err = a.restart().await.unwrap_err();
    assert!(
        matches!(&err, Error::HookFailed { hook: Hook::OnStart, source, .. } if source.to_string() == "injected fault: start 2 fails"),
        "{err:?}"
    );
    let down = probe.expect_down(&a, secs(1)).await.unwrap();
    assert!(
        matches!(crash_of(&down), CrashReason::Error(e) if matches!(e.downcast_ref::<Error>(), Some(Error::HookFailed { hook: Hook::OnStart, .. })))
    );
    assert!(
        a.is_crashed() && a.is_terminated(),
        "a root that fails its restart ends"
    );
    assert_eq!(
        probe.expect_msg(secs(1)).await.unwrap(),
        Report::Started {
            who: "A",
            restarts: 0
        }
    );
    probe.expect_no_msg_for(secs(1)).await.unwrap();
    system.shutdown().await.unwrap();
}

/// Under a supervisor, a restart that fails is one more crash: the supervisor tries again,
/// and the third start (the second restart) succeeds.
#[tokio::test(start_paused = true)]
async fn a_failed_restart_under_a_supervisor_is_retried() {
    let system = System::new();
    let mut probe = Probe::<Report>::spawn(&system).await.unwrap();
    let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
    let a = sup
        .supervise_with(
            jobs("A", &probe).faults(Faults::new().fail_start(2)),
            RestartPolicy::Permanent,
        )
        .await
        .unwrap();
    a.crash("first");
    assert_eq!(
        probe.expect_msgs(2, secs(1)).await.unwrap(),
        [
            Report::Started {
                who: "A",
                restarts: 0
            },
            Report::Started {
                who: "A",
                restarts: 2
            },
        ],
        "restart 1 failed before on_started"
    );
    assert!(a.is_started());
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_delayed_hook_takes_exactly_its_delay_and_keeps_the_order() {
    let journal = Journal::new();
    let system = System::new();
    let start = Instant::now();
    let a = system
        .spawn(
            ServiceSpec::new(Recorder::new("A", &journal)).faults(
                Faults::new()
                    .delay(Hook::OnStart, secs(5))
                    .delay(Hook::OnStop, secs(2)),
            ),
        )
        .await
        .unwrap();
    assert_eq!(start.elapsed(), secs(5));
    let start = Instant::now();
    a.restart().await.unwrap();
    assert_eq!(
        start.elapsed(),
        secs(7),
        "the stop's 2 s, then the start's 5 s"
    );
    assert_eq!(
        journal.take(),
        [
            "A:on_init",
            "A:on_first_start",
            "A:on_start",
            "A:on_started",
            "A:on_stop",
            "A:on_shutdown",
            "A:on_init",
            "A:on_restart",
            "A:on_start",
            "A:on_started",
        ]
    );
    system.shutdown().await.unwrap();
}

/// Every step a `Hook` names can be delayed, not only the lifecycle hooks: `on_init` and
/// `dependencies` at the first start, each child's start and stop, and the join of the tasks;
/// paused time makes each wait exact.
#[tokio::test(start_paused = true)]
async fn every_step_a_hook_names_can_be_delayed() {
    let journal = Journal::new();
    let system = System::new();
    let parent = Recorder::new("P", &journal).with_children(vec![
        Recorder::new("C1", &journal),
        Recorder::new("C2", &journal),
    ]);
    let start = Instant::now();
    let p = system
        .spawn(
            ServiceSpec::new(parent).faults(
                Faults::new()
                    .delay(Hook::OnInit, secs(1))
                    .delay(Hook::Dependencies, secs(2))
                    .delay(Hook::StartChild, secs(3))
                    .delay(Hook::StopChild, secs(5))
                    .delay(Hook::JoinTasks, secs(7)),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        start.elapsed(),
        secs(1 + 2 + 3 * 2),
        "on_init, dependencies, two children"
    );
    let start = Instant::now();
    p.stop().await.unwrap();
    // The children stop one after the other (each waits its delay), then the join waits.
    assert_eq!(start.elapsed(), secs(5 * 2 + 7));
    let order = journal.take();
    let at = |s: &str| order.iter().position(|e| e == s).unwrap();
    assert!(
        at("C2:on_stop") < at("C1:on_stop"),
        "children stop newest first: {order:?}"
    );
    assert!(at("C1:on_shutdown") < at("P:on_shutdown"), "{order:?}");
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_delay_past_the_shutdown_timeout_is_cut_by_the_stop_bound() {
    let journal = Journal::new();
    let system = System::new();
    let a = system
        .spawn(
            ServiceSpec::new(Recorder::new("A", &journal))
                .faults(Faults::new().delay(Hook::OnStop, secs(3600))),
        )
        .await
        .unwrap();
    journal.take();
    let start = Instant::now();
    let err = a.stop().await.unwrap_err();
    assert_eq!(start.elapsed(), DEFAULT_SHUTDOWN_TIMEOUT);
    assert!(
        matches!(
            &err,
            Error::HookFailed {
                hook: Hook::OnStop,
                ..
            }
        ),
        "{err:?}"
    );
    // on_stop was cut during its delay; the rest of the stop ran.
    assert_eq!(journal.take(), ["A:on_shutdown"]);
    assert!(a.is_terminated());
    system.shutdown().await.unwrap();
}

// ----- journal and recorder --------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_recorder_tree_journals_every_hook_in_mode_order() {
    let journal = Journal::new();
    let system = System::new();
    let app = system
        .spawn(Recorder::new("App", &journal).with_children(vec![
            Recorder::new("Db", &journal),
            Recorder::new("Web", &journal),
        ]))
        .await
        .unwrap();
    journal.assert_order(&[
        "App:on_first_start",
        "App:on_start",
        "Db:on_start",
        "Db:on_started",
        "Web:on_start",
        "Web:on_started",
        "App:on_started",
    ]);
    assert_eq!(app.ask(Ping).await.unwrap(), "App");
    journal.take();
    app.restart().await.unwrap();
    journal
        .check_order(&[
            "App:on_stop",
            "Web:on_stop",
            "Db:on_stop",
            "App:on_shutdown",
            "App:on_restart",
            "App:on_start",
            "Db:on_start",
            "Web:on_start",
            "App:on_started",
        ])
        .unwrap();
    assert_eq!(
        journal.count("App:on_first_start"),
        0,
        "first start only once"
    );
    assert_eq!(journal.count("Web:on_stop"), 1);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_recorder_fails_at_the_hooks_it_is_told() {
    let journal = Journal::new();
    let system = System::new();
    let a = system
        .spawn(
            Recorder::new("A", &journal)
                .fail_at(Hook::OnStop, Fail::Err)
                .unwrap()
                .fail_at(Hook::OnRestart, Fail::Panic)
                .unwrap(),
        )
        .await
        .unwrap();
    let err = a.restart().await.unwrap_err();
    assert!(
        matches!(&err, Error::Crashed { reason: CrashReason::Panic { message, .. }, .. } if &**message == "A panicked in on_restart"),
        "{err:?}"
    );
    journal.check_order(&["A:on_stop", "A:on_restart"]).unwrap();

    // The last fail_at for a hook wins.
    let b = system
        .spawn(
            Recorder::new("B", &journal)
                .fail_at(Hook::OnStop, Fail::Panic)
                .unwrap()
                .fail_at(Hook::OnStop, Fail::Err)
                .unwrap(),
        )
        .await
        .unwrap();
    let err = b.stop().await.unwrap_err();
    assert!(
        matches!(&err, Error::HookFailed { hook: Hook::OnStop, source, .. } if source.to_string() == "B failed in on_stop"),
        "{err:?}"
    );
    system.shutdown().await.unwrap();
}

#[test]
fn fail_at_refuses_what_a_recorder_cannot_do() {
    let journal = Journal::new();
    for hook in [Hook::OnInit, Hook::Dependencies] {
        let err = Recorder::new("A", &journal)
            .fail_at(hook, Fail::Err)
            .unwrap_err();
        assert_eq!(err, RecorderError::CannotReturnError { hook });
        assert!(err.to_string().contains("Fail::Panic"), "{err}");
        assert!(
            Recorder::new("A", &journal)
                .fail_at(hook, Fail::Panic)
                .is_ok()
        );
    }
    for hook in [Hook::StartChild, Hook::StopChild, Hook::JoinTasks] {
        for how in [Fail::Err, Fail::Panic] {
            let err = Recorder::new("A", &journal).fail_at(hook, how).unwrap_err();
            assert_eq!(err, RecorderError::NotAHook { hook });
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_recorder_panicking_in_on_init_or_dependencies_fails_the_spawn() {
    for hook in [Hook::OnInit, Hook::Dependencies] {
        let journal = Journal::new();
        let system = System::new();
        let err = system
            .spawn(
                Recorder::new("A", &journal)
                    .with_children(vec![Recorder::new("Child", &journal)])
                    .fail_at(hook, Fail::Panic)
                    .unwrap(),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, Error::Crashed { reason, .. } if reason.is_panic() && reason.to_string().contains(&format!("A panicked in {hook}"))),
            "{hook}: {err:?}"
        );
        assert!(!journal.contains("Child:on_start"), "{hook}");
        assert!(!journal.contains("A:on_start"), "{hook}");
        system.shutdown().await.unwrap();
    }
}

#[test]
fn check_order_names_the_missing_and_the_misplaced_entry() {
    let journal = Journal::new();
    for e in ["A:on_start", "B:on_start", "A:on_started"] {
        journal.push(e);
    }
    let entries = journal.entries();
    assert_eq!(
        journal.check_order(&["B:on_start", "A:on_start"]),
        Err(JournalError::OutOfOrder {
            entry: "A:on_start".into(),
            after: "B:on_start".into(),
            journal: entries.clone(),
        })
    );
    let err = journal.check_order(&["A:on_stop"]).unwrap_err();
    assert_eq!(
        err,
        JournalError::Missing {
            entry: "A:on_stop".into(),
            journal: entries.clone(),
        }
    );
    assert_eq!(
        err.to_string(),
        r#""A:on_stop" is not in the journal ["A:on_start", "B:on_start", "A:on_started"]"#
    );
    assert_eq!(journal.len(), 3, "checks do not consume");
}

#[test]
#[should_panic(expected = r#""A:on_start" is not after "A:on_started" in the journal"#)]
fn assert_order_panics_with_the_journal() {
    let journal = Journal::new();
    journal.push("A:on_start");
    journal.push("A:on_started");
    journal.assert_order(&["A:on_started", "A:on_start"]);
}

#[tokio::test(start_paused = true)]
async fn wait_for_sees_an_entry_written_later_and_times_out_with_the_journal() {
    let journal = Journal::new();
    let writer = journal.clone();
    tokio::spawn(async move {
        writer.push("early");
        tokio::time::sleep(secs(2)).await;
        writer.push("late");
    });
    let start = Instant::now();
    journal.wait_for("late", secs(5)).await.unwrap();
    assert_eq!(start.elapsed(), secs(2));
    journal.wait_for("early", Duration::ZERO).await.unwrap();
    let err = journal.wait_for("never", secs(5)).await.unwrap_err();
    assert_eq!(start.elapsed(), secs(7));
    assert_eq!(
        err,
        JournalError::Timeout {
            entry: "never".into(),
            within: secs(5),
            journal: vec!["early".into(), "late".into()],
        }
    );
}

/// A background task holding a drop note: the journal shows it was cancelled during the stop,
/// after `on_stop` and before `on_shutdown`.
struct Tasked {
    journal: Journal,
}

impl Service for Tasked {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let note: DropNote = self.journal.note_drop("task");
        ctx.spawn(async move {
            let _note = note;
            std::future::pending::<()>().await
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
async fn a_drop_note_shows_when_a_task_was_cancelled() {
    let journal = Journal::new();
    let system = System::new();
    let t = system
        .spawn(Tasked {
            journal: journal.clone(),
        })
        .await
        .unwrap();
    assert!(journal.is_empty());
    t.stop().await.unwrap();
    assert_eq!(journal.take(), ["on_stop", "drop:task", "on_shutdown"]);
    system.shutdown().await.unwrap();
}
