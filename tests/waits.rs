//! Interruptible waiting: `ctx.sleep`, `ctx.wait`, `wait_timeout`, `wait_first`, `wait_many`,
//! `wait_for_stopped`, and the same through a `StopSignal` in a background task. Each returns
//! as soon as the service is told to stop (or crashes), and drops what it abandoned.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::Duration;

use common::{Journal, Noted, ms, secs};
use modo::prelude::*;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// A future that holds a guard named `name`, takes `delay` (forever if `None`), writes
/// `done:<name>` and returns `value`.
fn job<T>(
    journal: &Journal,
    name: &'static str,
    delay: Option<Duration>,
    value: T,
) -> impl Future<Output = T> {
    let guard = Noted::new(name, journal);
    async move {
        match delay {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
        guard.1.push(format!("done:{name}"));
        value
    }
}

/// The journal, sorted: for entries whose relative order is not part of the promise.
fn sorted(mut entries: Vec<String>) -> Vec<String> {
    entries.sort();
    entries
}

// ----- the service ---------------------------------------------------------------------------

/// Every handler waits in one of the ways of the context and replies with the outcome and
/// the instant it returned.
struct Waiter {
    journal: Journal,
}

impl Service for Waiter {}

type At<T> = (T, Instant);

struct Nap(Duration);
struct Wait(Option<Duration>);
struct WaitTimeout(Option<Duration>, Duration);
struct WaitFirst(Vec<(&'static str, Option<Duration>)>);
struct WaitMany(Vec<(&'static str, Option<Duration>)>);
struct WaitForStopped(Option<Duration>);

impl Handler<Nap> for Waiter {
    type Reply = At<bool>;
    async fn handle(&mut self, msg: Nap, ctx: &mut Context<Self>) -> At<bool> {
        let slept = ctx.sleep(msg.0).await;
        self.journal.push(format!("slept:{slept}"));
        (slept, Instant::now())
    }
}

/// Crashes the service from inside, then sleeps.
struct CrashThenNap(Duration);

impl Handler<CrashThenNap> for Waiter {
    type Reply = At<bool>;
    async fn handle(&mut self, msg: CrashThenNap, ctx: &mut Context<Self>) -> At<bool> {
        ctx.crash("boom");
        let slept = ctx.sleep(msg.0).await;
        self.journal.push(format!("slept:{slept}"));
        (slept, Instant::now())
    }
}

impl Handler<Wait> for Waiter {
    type Reply = At<Result<u32, WaitError>>;
    async fn handle(&mut self, msg: Wait, ctx: &mut Context<Self>) -> Self::Reply {
        let res = ctx.wait(job(&self.journal, "w", msg.0, 42)).await;
        self.journal.push("returned");
        (res, Instant::now())
    }
}

impl Handler<WaitTimeout> for Waiter {
    type Reply = At<Result<u32, WaitError>>;
    async fn handle(&mut self, msg: WaitTimeout, ctx: &mut Context<Self>) -> Self::Reply {
        let res = ctx
            .wait_timeout(job(&self.journal, "w", msg.0, 42), msg.1)
            .await;
        self.journal.push("returned");
        (res, Instant::now())
    }
}

impl Handler<WaitFirst> for Waiter {
    type Reply = At<Result<(usize, &'static str), WaitError>>;
    async fn handle(&mut self, msg: WaitFirst, ctx: &mut Context<Self>) -> Self::Reply {
        let jobs: Vec<_> = msg
            .0
            .into_iter()
            .map(|(name, delay)| job(&self.journal, name, delay, name))
            .collect();
        let res = ctx.wait_first(jobs).await;
        self.journal.push("returned");
        (res, Instant::now())
    }
}

impl Handler<WaitMany> for Waiter {
    type Reply = At<Result<Vec<&'static str>, WaitError>>;
    async fn handle(&mut self, msg: WaitMany, ctx: &mut Context<Self>) -> Self::Reply {
        let jobs: Vec<_> = msg
            .0
            .into_iter()
            .map(|(name, delay)| job(&self.journal, name, delay, name))
            .collect();
        let res = ctx.wait_many(jobs).await;
        self.journal.push("returned");
        (res, Instant::now())
    }
}

impl Handler<WaitForStopped> for Waiter {
    type Reply = At<bool>;
    async fn handle(&mut self, msg: WaitForStopped, ctx: &mut Context<Self>) -> At<bool> {
        let stopped = ctx
            .wait_for_stopped(job(&self.journal, "w", msg.0, ()))
            .await;
        self.journal.push("returned");
        (stopped, Instant::now())
    }
}

/// Empty `wait_first` and `wait_many`.
struct WaitOnNothing;

impl Handler<WaitOnNothing> for Waiter {
    type Reply = (Result<(usize, ()), WaitError>, Result<Vec<()>, WaitError>);
    async fn handle(&mut self, _: WaitOnNothing, ctx: &mut Context<Self>) -> Self::Reply {
        let none: Vec<std::future::Ready<()>> = Vec::new();
        (
            ctx.wait_first(none.clone()).await,
            ctx.wait_many(none).await,
        )
    }
}

/// A fresh system with a running `Waiter`, and the start instant.
async fn waiter() -> (System, Addr<Waiter>, Journal, Instant) {
    let journal = Journal::new();
    let system = System::new();
    let addr = system
        .spawn(Waiter {
            journal: journal.clone(),
        })
        .await
        .unwrap();
    (system, addr, journal, Instant::now())
}

/// Asks `msg` from another task and stops the service `after` from now; returns the reply.
async fn ask_then_stop<M>(
    addr: &Addr<Waiter>,
    msg: M,
    after: Duration,
) -> <Waiter as Handler<M>>::Reply
where
    Waiter: Handler<M>,
    M: Send + 'static,
{
    let asker = tokio::spawn({
        let addr = addr.clone();
        async move { addr.ask(msg).await }
    });
    tokio::time::sleep(after).await;
    addr.stop().await.unwrap();
    asker.await.unwrap().expect("the handler replied")
}

// ----- sleep ---------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn sleep_returns_true_after_the_full_time() {
    let (system, w, journal, start) = waiter().await;
    let (slept, at) = w.ask(Nap(ms(2500))).await.unwrap();
    assert!(slept);
    assert_eq!(at - start, ms(2500));
    assert_eq!(journal.take(), ["slept:true"]);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn sleep_returns_false_as_soon_as_the_service_is_stopped() {
    let (system, w, journal, start) = waiter().await;
    let (slept, at) = ask_then_stop(&w, Nap(secs(10)), secs(3)).await;
    assert!(!slept);
    assert_eq!(at - start, secs(3));
    assert_eq!(start.elapsed(), secs(3), "the stop did not wait");
    assert_eq!(journal.take(), ["slept:false"]);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn sleep_returns_false_at_once_in_a_service_that_crashed() {
    let (system, w, journal, start) = waiter().await;
    let (slept, at) = w.ask(CrashThenNap(secs(10))).await.unwrap();
    assert!(!slept);
    assert_eq!(at - start, Duration::ZERO);
    assert_eq!(journal.take(), ["slept:false"]);
    w.wait_until_stopped().await;
    assert_eq!(w.state(), ServiceState::Crashed);
    system.shutdown().await.unwrap();
}

/// Sleeps in `on_stop`: the service is stopping, so the sleep returns at once.
struct SleepsInOnStop {
    slept: Arc<Mutex<Option<bool>>>,
}

impl Service for SleepsInOnStop {
    async fn on_stop(&mut self, ctx: &mut Context<Self>) -> HookResult {
        *self.slept.lock().unwrap() = Some(ctx.sleep(secs(30)).await);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn sleep_in_the_stop_sequence_returns_false_at_once() {
    let slept = Arc::new(Mutex::new(None));
    let system = System::new();
    let s = system
        .spawn(SleepsInOnStop {
            slept: slept.clone(),
        })
        .await
        .unwrap();
    let start = Instant::now();
    s.stop().await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(*slept.lock().unwrap(), Some(false));
    system.shutdown().await.unwrap();
}

// ----- wait and wait_timeout ----------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn wait_returns_the_output_when_the_future_completes() {
    let (system, w, journal, start) = waiter().await;
    let (res, at) = w.ask(Wait(Some(secs(2)))).await.unwrap();
    assert_eq!(res, Ok(42));
    assert_eq!(at - start, secs(2));
    assert_eq!(journal.take(), ["done:w", "drop:w", "returned"]);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn wait_returns_stopped_as_soon_as_the_service_stops_and_drops_the_future() {
    let (system, w, journal, start) = waiter().await;
    let (res, at) = ask_then_stop(&w, Wait(None), secs(3)).await;
    assert_eq!(res, Err(WaitError::Stopped));
    assert_eq!(at - start, secs(3));
    // The abandoned future was dropped before the wait returned.
    assert_eq!(journal.take(), ["drop:w", "returned"]);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn wait_timeout_keeps_timeout_and_stop_apart() {
    // The future wins.
    let (system, w, journal, start) = waiter().await;
    let (res, at) = w.ask(WaitTimeout(Some(secs(1)), secs(5))).await.unwrap();
    assert_eq!(res, Ok(42));
    assert_eq!(at - start, secs(1));
    assert_eq!(journal.take(), ["done:w", "drop:w", "returned"]);

    // The timeout wins.
    let start = Instant::now();
    let (res, at) = w.ask(WaitTimeout(None, secs(5))).await.unwrap();
    assert_eq!(res, Err(WaitError::Timeout(secs(5))));
    assert_eq!(at - start, secs(5));
    assert_eq!(journal.take(), ["drop:w", "returned"]);

    // The stop wins.
    let start = Instant::now();
    let (res, at) = ask_then_stop(&w, WaitTimeout(None, secs(5)), secs(2)).await;
    assert_eq!(res, Err(WaitError::Stopped));
    assert_eq!(at - start, secs(2));
    assert_eq!(journal.take(), ["drop:w", "returned"]);
    system.shutdown().await.unwrap();
}

// ----- wait_first and wait_many ------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn wait_first_returns_the_first_to_complete_and_drops_the_others() {
    let (system, w, journal, start) = waiter().await;
    let (res, at) = w
        .ask(WaitFirst(vec![
            ("a", Some(secs(3))),
            ("b", Some(secs(1))),
            ("c", Some(secs(2))),
        ]))
        .await
        .unwrap();
    assert_eq!(res, Ok((1, "b")));
    assert_eq!(at - start, secs(1));
    let entries = journal.take();
    assert_eq!(entries.last().map(String::as_str), Some("returned"));
    assert_eq!(
        sorted(entries),
        ["done:b", "drop:a", "drop:b", "drop:c", "returned"],
        "a and c were dropped without completing"
    );
    // Nothing of a or c runs later.
    tokio::time::sleep(secs(5)).await;
    assert!(journal.take().is_empty());
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn wait_first_returns_stopped_and_drops_every_future() {
    let (system, w, journal, start) = waiter().await;
    let (res, at) = ask_then_stop(
        &w,
        WaitFirst(vec![("a", None), ("b", Some(secs(10)))]),
        secs(2),
    )
    .await;
    assert_eq!(res, Err(WaitError::Stopped));
    assert_eq!(at - start, secs(2));
    let entries = journal.take();
    assert_eq!(entries.last().map(String::as_str), Some("returned"));
    assert_eq!(sorted(entries), ["drop:a", "drop:b", "returned"]);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn wait_first_of_nothing_is_empty_and_wait_many_of_nothing_is_no_outputs() {
    let (system, w, _journal, _start) = waiter().await;
    let (first, many) = w.ask(WaitOnNothing).await.unwrap();
    assert_eq!(first, Err(WaitError::Empty));
    assert_eq!(many, Ok(Vec::new()));
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn wait_many_returns_every_output_in_order() {
    let (system, w, journal, start) = waiter().await;
    let (res, at) = w
        .ask(WaitMany(vec![
            ("a", Some(secs(3))),
            ("b", Some(secs(1))),
            ("c", Some(secs(2))),
        ]))
        .await
        .unwrap();
    assert_eq!(res, Ok(vec!["a", "b", "c"]));
    assert_eq!(at - start, secs(3));
    let entries = journal.take();
    assert_eq!(entries.last().map(String::as_str), Some("returned"));
    assert_eq!(
        sorted(entries),
        [
            "done:a", "done:b", "done:c", "drop:a", "drop:b", "drop:c", "returned"
        ]
    );
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn wait_many_returns_stopped_and_drops_every_future() {
    let (system, w, journal, start) = waiter().await;
    let (res, at) = ask_then_stop(
        &w,
        WaitMany(vec![
            ("a", Some(secs(1))),
            ("b", None),
            ("c", Some(secs(5))),
        ]),
        secs(2),
    )
    .await;
    assert_eq!(res, Err(WaitError::Stopped));
    assert_eq!(at - start, secs(2));
    let entries = journal.take();
    assert_eq!(entries.last().map(String::as_str), Some("returned"));
    // a had completed; b and c were dropped on the stop.
    assert_eq!(
        sorted(entries),
        ["done:a", "drop:a", "drop:b", "drop:c", "returned"]
    );
    system.shutdown().await.unwrap();
}

// ----- wait_for_stopped -----------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn wait_for_stopped_says_whether_the_stop_came_first() {
    let (system, w, journal, start) = waiter().await;
    let (stopped, at) = w.ask(WaitForStopped(Some(secs(1)))).await.unwrap();
    assert!(!stopped);
    assert_eq!(at - start, secs(1));
    assert_eq!(journal.take(), ["done:w", "drop:w", "returned"]);

    let start = Instant::now();
    let (stopped, at) = ask_then_stop(&w, WaitForStopped(None), secs(4)).await;
    assert!(stopped);
    assert_eq!(at - start, secs(4));
    assert_eq!(journal.take(), ["drop:w", "returned"]);
    system.shutdown().await.unwrap();
}

// ----- StopSignal in a background task ---------------------------------------------------------------

/// A task that goes through the waits of a `StopSignal` in turn, reporting each outcome with
/// its instant on `report`: a full sleep (1 s), a completed wait (1 s), a timed-out wait (1 s),
/// a completed wait_first and wait_many, then a sleep of an hour that the stop cuts short,
/// then the waits again, which all end at once.
struct Background {
    journal: Journal,
    report: Arc<Mutex<Vec<(String, Instant)>>>,
}

impl Service for Background {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let stop = ctx.stop_signal();
        let report = self.report.clone();
        let journal = self.journal.clone();
        ctx.spawn(async move {
            let say = |what: String| report.lock().unwrap().push((what, Instant::now()));
            assert!(!stop.is_stopping());
            say(format!("sleep:{}", stop.sleep(secs(1)).await));
            say(format!(
                "wait:{:?}",
                stop.wait(job(&journal, "w1", Some(secs(1)), 1)).await
            ));
            say(format!(
                "wait_timeout:{:?}",
                stop.wait_timeout(job(&journal, "w2", None, 2), secs(1))
                    .await
            ));
            say(format!(
                "wait_first:{:?}",
                stop.wait_first([
                    job(&journal, "f1", Some(secs(2)), 1),
                    job(&journal, "f2", Some(secs(1)), 2),
                ])
                .await
            ));
            say(format!(
                "wait_many:{:?}",
                stop.wait_many([
                    job(&journal, "m1", Some(secs(1)), 1),
                    job(&journal, "m2", Some(Duration::ZERO), 2),
                ])
                .await
            ));
            say(format!("long-sleep:{}", stop.sleep(secs(3600)).await));
            assert!(stop.is_stopping());
            stop.stopped().await;
            say(format!(
                "wait:{:?}",
                stop.wait(job(&journal, "w3", None, 3)).await
            ));
            say(format!(
                "wait_for_stopped:{}",
                stop.wait_for_stopped(job(&journal, "w4", None, ())).await
            ));
            say(format!(
                "wait_many:{:?}",
                stop.wait_many([job(&journal, "m3", None, 3)]).await
            ));
        });
        Ok(())
    }
}

/// How the service is ended while its task waits.
#[derive(Clone, Copy, Debug)]
enum End {
    Stop,
    Crash,
}

#[tokio::test(start_paused = true)]
async fn a_stop_signal_in_a_background_task_waits_like_the_context() {
    for end in [End::Stop, End::Crash] {
        let journal = Journal::new();
        let report = Arc::new(Mutex::new(Vec::new()));
        let system = System::new();
        let start = Instant::now();
        let b = system
            .spawn(Background {
                journal: journal.clone(),
                report: report.clone(),
            })
            .await
            .unwrap();
        // The waits before the long sleep take 1 + 1 + 1 + 1 + 1 = 5 s.
        tokio::time::sleep(secs(7)).await;
        match end {
            End::Stop => b.stop().await.unwrap(),
            End::Crash => {
                b.crash("boom");
                b.wait_until_stopped().await;
            }
        }
        let report: Vec<(String, Duration)> = report
            .lock()
            .unwrap()
            .iter()
            .map(|(what, at)| (what.clone(), *at - start))
            .collect();
        let expected: Vec<(String, Duration)> = [
            ("sleep:true", secs(1)),
            ("wait:Ok(1)", secs(2)),
            ("wait_timeout:Err(Timeout(1s))", secs(3)),
            ("wait_first:Ok((1, 2))", secs(4)),
            ("wait_many:Ok([1, 2])", secs(5)),
            ("long-sleep:false", secs(7)),
            ("wait:Err(Stopped)", secs(7)),
            ("wait_for_stopped:true", secs(7)),
            ("wait_many:Err(Stopped)", secs(7)),
        ]
        .into_iter()
        .map(|(w, d)| (w.to_string(), d))
        .collect();
        assert_eq!(report, expected, "{end:?}");
        // Every future the task made was dropped, completed or not.
        assert_eq!(
            sorted(journal.take())
                .into_iter()
                .filter(|e| e.starts_with("drop:"))
                .collect::<Vec<_>>(),
            [
                "drop:f1", "drop:f2", "drop:m1", "drop:m2", "drop:m3", "drop:w1", "drop:w2",
                "drop:w3", "drop:w4"
            ],
            "{end:?}"
        );
        system.shutdown().await.unwrap();
    }
}

/// A stop signal taken in one run is the stop signal of that run: it fires at the restart.
struct Restarting {
    signal: Arc<Mutex<Option<oneshot::Sender<StopSignal>>>>,
}

impl Service for Restarting {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        if let Some(tx) = self.signal.lock().unwrap().take() {
            let _ = tx.send(ctx.stop_signal());
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_stop_signal_fires_when_its_run_ends_by_a_restart() {
    let (tx, rx) = oneshot::channel();
    let system = System::new();
    let r = system
        .spawn(Restarting {
            signal: Arc::new(Mutex::new(Some(tx))),
        })
        .await
        .unwrap();
    let first_run = rx.await.unwrap();
    assert!(!first_run.is_stopping());
    let start = Instant::now();
    let sleeper = tokio::spawn({
        let first_run = first_run.clone();
        async move { first_run.sleep(secs(60)).await }
    });
    tokio::time::sleep(secs(1)).await;
    r.restart().await.unwrap();
    assert!(!sleeper.await.unwrap());
    assert_eq!(start.elapsed(), secs(1));
    assert!(first_run.is_stopping());
    assert_eq!(r.state(), ServiceState::Running);
    system.shutdown().await.unwrap();
}

// ----- the context's own methods ---------------------------------------------------------------------

/// Polls `fut` once, without awaiting (so no handler holds the context across an await).
fn poll_now<F: Future>(fut: F) -> Poll<F::Output> {
    let mut fut = pin!(fut);
    fut.as_mut()
        .poll(&mut std::task::Context::from_waker(Waker::noop()))
}

/// Polls every wait of the context once in a handler (running) and in `on_stop` (stopping).
struct Poller {
    seen: Arc<Mutex<Vec<String>>>,
}

impl Poller {
    fn poll_all(&self, ctx: &Context<Self>, when: &str) {
        let seen = [
            format!("sleep:{:?}", poll_now(ctx.sleep(secs(1)))),
            format!("wait:{:?}", poll_now(ctx.wait(std::future::ready(1)))),
            format!(
                "wait_pending:{:?}",
                poll_now(ctx.wait(std::future::pending::<()>()))
            ),
            format!(
                "wait_timeout:{:?}",
                poll_now(ctx.wait_timeout(std::future::ready(2), secs(1)))
            ),
            format!(
                "wait_first:{:?}",
                poll_now(ctx.wait_first([std::future::ready(3)]))
            ),
            format!(
                "wait_first_empty:{:?}",
                poll_now(ctx.wait_first(Vec::<std::future::Ready<()>>::new()))
            ),
            format!(
                "wait_many:{:?}",
                poll_now(ctx.wait_many([std::future::ready(4), std::future::ready(5)]))
            ),
            format!(
                "wait_for_stopped:{:?}",
                poll_now(ctx.wait_for_stopped(std::future::pending::<()>()))
            ),
        ];
        let mut out = self.seen.lock().unwrap();
        out.extend(seen.into_iter().map(|s| format!("{when}:{s}")));
    }
}

impl Service for Poller {
    async fn on_stop(&mut self, ctx: &mut Context<Self>) -> HookResult {
        self.poll_all(ctx, "stopping");
        Ok(())
    }
}

struct PollAll;

impl Handler<PollAll> for Poller {
    type Reply = ();
    async fn handle(&mut self, _: PollAll, ctx: &mut Context<Self>) {
        self.poll_all(ctx, "running");
    }
}

#[tokio::test(start_paused = true)]
async fn context_waits_resolve_like_their_stop_signal() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let system = System::new();
    let p = system.spawn(Poller { seen: seen.clone() }).await.unwrap();
    p.ask(PollAll).await.unwrap();
    p.stop().await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "running:sleep:Pending",
            "running:wait:Ready(Ok(1))",
            "running:wait_pending:Pending",
            "running:wait_timeout:Ready(Ok(2))",
            "running:wait_first:Ready(Ok((0, 3)))",
            "running:wait_first_empty:Ready(Err(Empty))",
            "running:wait_many:Ready(Ok([4, 5]))",
            "running:wait_for_stopped:Pending",
            "stopping:sleep:Ready(false)",
            "stopping:wait:Ready(Err(Stopped))",
            "stopping:wait_pending:Ready(Err(Stopped))",
            "stopping:wait_timeout:Ready(Err(Stopped))",
            "stopping:wait_first:Ready(Err(Stopped))",
            "stopping:wait_first_empty:Ready(Err(Empty))",
            "stopping:wait_many:Ready(Err(Stopped))",
            "stopping:wait_for_stopped:Ready(true)",
        ]
    );
    system.shutdown().await.unwrap();
}

/// A service that hands out its stop signal, for waits run from the test.
struct Signals;

impl Service for Signals {}

struct GetSignal;

impl Handler<GetSignal> for Signals {
    type Reply = modo::StopSignal;
    async fn handle(&mut self, _: GetSignal, ctx: &mut Context<Self>) -> modo::StopSignal {
        ctx.stop_signal()
    }
}

#[tokio::test(start_paused = true)]
async fn wait_first_and_wait_many_take_a_timeout_kept_apart_from_the_stop() {
    use std::time::Duration;
    let system = System::new();
    let svc = system.spawn(Signals).await.unwrap();
    let stop = svc.ask(GetSignal).await.unwrap();
    let after = |ms| tokio::time::sleep(Duration::from_millis(ms));

    // The first finishes before the timeout: its index and output.
    let first = stop
        .wait_first_timeout([after(300), after(100)], Duration::from_secs(1))
        .await;
    assert_eq!(first, Ok((1, ())));
    // None finishes in time: a timeout, not a stop.
    let began = Instant::now();
    let first = stop
        .wait_first_timeout([after(5_000), after(6_000)], Duration::from_millis(200))
        .await;
    assert_eq!(first, Err(WaitError::Timeout(Duration::from_millis(200))));
    assert_eq!(began.elapsed(), Duration::from_millis(200));
    assert_eq!(
        stop.wait_first_timeout(Vec::<tokio::time::Sleep>::new(), Duration::from_secs(1))
            .await,
        Err(WaitError::Empty)
    );

    // All finish in time: every output, in order.
    let all = stop
        .wait_many_timeout([after(100), after(300)], Duration::from_secs(1))
        .await;
    assert_eq!(all, Ok(vec![(), ()]));
    // One is too slow: a timeout, and nothing.
    let all = stop
        .wait_many_timeout([after(100), after(5_000)], Duration::from_millis(500))
        .await;
    assert_eq!(all, Err(WaitError::Timeout(Duration::from_millis(500))));

    // The stop comes first: a stop, not a timeout.
    let waiting = tokio::spawn({
        let stop = stop.clone();
        async move {
            stop.wait_many_timeout(
                [tokio::time::sleep(Duration::from_secs(60))],
                Duration::from_secs(30),
            )
            .await
        }
    });
    tokio::task::yield_now().await;
    svc.stop().await.unwrap();
    assert_eq!(waiting.await.unwrap(), Err(WaitError::Stopped));
    system.shutdown().await.unwrap();
}
