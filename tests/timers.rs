//! Timers: `ctx.timer` (Mode's `@timer`), `ctx.itertimer`, `ctx.tell_every`, and the
//! drift-corrected [`modo::time::Timer`] they share. Every instant is exact: paused time.

mod common;

use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Buffer, Journal, ms, secs};
use modo::prelude::*;
use modo::time::{DEFAULT_MAX_DRIFT_CORRECTION, Tick, Timer};
use tokio::time::Instant;

/// Instants, recorded relative to the start of a test.
#[derive(Clone)]
struct Times {
    start: Instant,
    at: Arc<Mutex<Vec<Duration>>>,
}

impl Times {
    fn new() -> Self {
        Times {
            start: Instant::now(),
            at: Arc::default(),
        }
    }

    fn record(&self) {
        self.at.lock().unwrap().push(self.start.elapsed());
    }

    fn get(&self) -> Vec<Duration> {
        self.at.lock().unwrap().clone()
    }
}

// ----- ctx.timer ----------------------------------------------------------------------------

/// Runs a timer every `interval`; call `n` (from 1) records its instant, then works for
/// `work(n)`, or fails if `fail_at == Some(n)`.
struct Periodic {
    interval: Duration,
    times: Times,
    work: fn(u32) -> Duration,
    fail_at: Option<u32>,
}

impl Periodic {
    fn new(times: &Times, work: fn(u32) -> Duration) -> Self {
        Periodic {
            interval: secs(1),
            times: times.clone(),
            work,
            fail_at: None,
        }
    }
}

impl Service for Periodic {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let times = self.times.clone();
        let work = self.work;
        let fail_at = self.fail_at;
        let mut n = 0;
        ctx.timer(self.interval, move || {
            n += 1;
            let times = times.clone();
            let (work, fail) = (work(n), fail_at == Some(n));
            async move {
                times.record();
                tokio::time::sleep(work).await;
                if fail {
                    return Err::<(), BoxError>(format!("tick {n} failed").into());
                }
                Ok(())
            }
        });
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_timer_first_runs_one_interval_after_start_then_every_interval() {
    let times = Times::new();
    let system = System::new();
    let p = system
        .spawn(Periodic::new(&times, |_| Duration::ZERO))
        .await
        .unwrap();
    tokio::time::sleep(ms(5500)).await;
    assert_eq!(times.get(), [secs(1), secs(2), secs(3), secs(4), secs(5)]);
    p.stop().await.unwrap();
    tokio::time::sleep(secs(10)).await;
    assert_eq!(times.get().len(), 5, "no call after the stop");
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_callback_taking_most_of_the_interval_does_not_push_the_schedule() {
    let times = Times::new();
    let system = System::new();
    let p = system
        .spawn(Periodic::new(&times, |_| ms(700)))
        .await
        .unwrap();
    tokio::time::sleep(ms(5500)).await;
    assert_eq!(times.get(), [secs(1), secs(2), secs(3), secs(4), secs(5)]);
    p.stop().await.unwrap();
    system.shutdown().await.unwrap();
}

/// The second call takes 2.5 s of a 1 s interval. Tick 3 was due at 3 s: it comes at once
/// when the call returns (4.5 s, an overlap). It woke 1.5 s late, more than the 100 ms bound,
/// so the next sleep is shortened by the bound only: tick 4 at 4.5 + 1 - 0.1 = 5.4 s.
#[tokio::test(start_paused = true)]
async fn after_a_callback_longer_than_the_interval_the_next_tick_comes_at_once() {
    let times = Times::new();
    let system = System::new();
    let p = system
        .spawn(Periodic::new(&times, |n| {
            if n == 2 { ms(2500) } else { Duration::ZERO }
        }))
        .await
        .unwrap();
    tokio::time::sleep(ms(5450)).await;
    assert_eq!(times.get(), [secs(1), secs(2), ms(4500), ms(5400)]);
    p.stop().await.unwrap();
    system.shutdown().await.unwrap();
}

/// Per the module docs of `modo::time::timer`, the schedule is absolute (tick k due at
/// start + k * interval) and a drift larger than the bound "is caught up a bound at a time":
/// after the overlap above (tick 3 at 4.5 s, 1.5 s behind), each tick should come 100 ms
/// closer to the grid: 5.4, 6.3, 7.2, 8.1 s.
#[tokio::test(start_paused = true)]
async fn after_an_overlap_the_schedule_catches_up_a_bound_per_tick() {
    let times = Times::new();
    let system = System::new();
    let p = system
        .spawn(Periodic::new(&times, |n| {
            if n == 2 { ms(2500) } else { Duration::ZERO }
        }))
        .await
        .unwrap();
    tokio::time::sleep(ms(8150)).await;
    assert_eq!(
        times.get(),
        [
            secs(1),
            secs(2),
            ms(4500),
            ms(5400),
            ms(6300),
            ms(7200),
            ms(8100)
        ]
    );
    p.stop().await.unwrap();
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_timer_callback_returning_err_crashes_the_service() {
    let times = Times::new();
    let system = System::new();
    let mut periodic = Periodic::new(&times, |_| Duration::ZERO);
    periodic.fail_at = Some(3);
    let p = system.spawn(periodic).await.unwrap();
    p.wait_until_stopped().await;
    assert_eq!(times.start.elapsed(), secs(3));
    assert_eq!(times.get(), [secs(1), secs(2), secs(3)]);
    assert_eq!(p.state(), ServiceState::Crashed);
    let reason = p.crash_reason().expect("a crash reason");
    assert!(matches!(reason, CrashReason::Error(_)), "{reason:?}");
    assert_eq!(
        reason.to_string(),
        "task Periodic.timer(1s) of Periodic failed: tick 3 failed"
    );
    system.shutdown().await.unwrap();
}

/// A timer whose second call panics.
struct PanickyTimer;

impl Service for PanickyTimer {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let mut n = 0;
        ctx.timer(ms(500), move || {
            n += 1;
            async move { assert!(n < 2, "timer call {n}") }
        });
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_timer_callback_crashes_the_service_naming_the_timer() {
    let start = Instant::now();
    let system = System::new();
    let p = system.spawn(PanickyTimer).await.unwrap();
    p.wait_until_stopped().await;
    assert_eq!(start.elapsed(), secs(1));
    assert_eq!(p.state(), ServiceState::Crashed);
    match p.crash_reason() {
        Some(CrashReason::Panic { message, during }) => {
            assert_eq!(&*message, "timer call 2");
            assert_eq!(&*during, "task PanickyTimer.timer(500ms)");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    system.shutdown().await.unwrap();
}

// ----- ctx.itertimer --------------------------------------------------------------------------

/// Reads `ctx.itertimer(1 s)` in a task, recording each tick; journals the end of the stream.
struct Iter {
    times: Times,
    ticks: Arc<Mutex<Vec<Tick>>>,
    journal: Journal,
}

impl Service for Iter {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let mut ticks = ctx.itertimer(secs(1));
        let seen = self.ticks.clone();
        let times = self.times.clone();
        let journal = self.journal.clone();
        ctx.spawn(async move {
            while let Some(tick) = ticks.next().await {
                times.record();
                seen.lock().unwrap().push(tick);
            }
            journal.push("ticks:ended");
        });
        Ok(())
    }

    async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push("on_stop");
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn itertimer_ticks_every_interval_and_ends_when_the_service_stops() {
    let times = Times::new();
    let journal = Journal::new();
    let ticks = Arc::new(Mutex::new(Vec::new()));
    let system = System::new();
    let it = system
        .spawn(Iter {
            times: times.clone(),
            ticks: ticks.clone(),
            journal: journal.clone(),
        })
        .await
        .unwrap();
    tokio::time::sleep(ms(3500)).await;
    it.stop().await.unwrap();
    assert_eq!(times.get(), [secs(1), secs(2), secs(3)]);
    let ticks = ticks.lock().unwrap().clone();
    for (k, tick) in (1..).zip(&ticks) {
        assert_eq!(tick.index, k);
        assert_eq!(tick.scheduled - times.start, secs(k));
        assert_eq!(tick.woke, tick.scheduled);
        assert_eq!(tick.drift(), Duration::ZERO);
        assert_eq!(tick.slept, secs(1));
    }
    // The stream ended (`None`) at the stop signal: the task was not merely aborted.
    assert_eq!(journal.take(), ["ticks:ended", "on_stop"]);
    system.shutdown().await.unwrap();
}

/// `StopSignal::itertimer` behaves the same in a task that only has the signal.
struct SignalIter {
    times: Times,
    journal: Journal,
}

impl Service for SignalIter {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let stop = ctx.stop_signal();
        let times = self.times.clone();
        let journal = self.journal.clone();
        ctx.spawn(async move {
            let mut ticks = stop.itertimer(ms(250));
            while ticks.next().await.is_some() {
                times.record();
            }
            journal.push("ticks:ended");
        });
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn stop_signal_itertimer_ticks_and_ends_at_stop() {
    let times = Times::new();
    let journal = Journal::new();
    let system = System::new();
    let it = system
        .spawn(SignalIter {
            times: times.clone(),
            journal: journal.clone(),
        })
        .await
        .unwrap();
    tokio::time::sleep(ms(800)).await;
    it.stop().await.unwrap();
    assert_eq!(times.get(), [ms(250), ms(500), ms(750)]);
    assert_eq!(journal.take(), ["ticks:ended"]);
    system.shutdown().await.unwrap();
}

// ----- ctx.tell_every ---------------------------------------------------------------------------

/// Tells itself `Beat` every second from `on_start`; records when each is handled.
struct Beater {
    times: Times,
}

struct Beat;

impl Service for Beater {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.tell_every(secs(1), || Beat);
        Ok(())
    }
}

impl Handler<Beat> for Beater {
    type Reply = ();
    async fn handle(&mut self, _: Beat, _ctx: &mut Context<Self>) {
        self.times.record();
    }
}

#[tokio::test(start_paused = true)]
async fn tell_every_delivers_to_the_service_on_schedule_and_ends_at_stop() {
    let times = Times::new();
    let system = System::new();
    let b = system
        .spawn(Beater {
            times: times.clone(),
        })
        .await
        .unwrap();
    tokio::time::sleep(ms(3500)).await;
    assert_eq!(times.get(), [secs(1), secs(2), secs(3)]);
    // A restart stops this run's ticker and starts a new one from 3.5 s. Were the old one
    // still running, beats would also come at 4 s and 5 s.
    b.restart().await.unwrap();
    tokio::time::sleep(ms(2600)).await;
    assert_eq!(times.get(), [secs(1), secs(2), secs(3), ms(4500), ms(5500)]);
    b.stop().await.unwrap();
    assert_eq!(b.dead_letters(), 0);
    system.shutdown().await.unwrap();
}

// ----- Timer used directly ----------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_timer_ticks_one_full_interval_after_creation_and_reports_each_tick() {
    let start = Instant::now();
    let mut timer = Timer::new(secs(1));
    assert_eq!(timer.interval(), secs(1));
    assert_eq!(timer.next_due() - start, secs(1));
    for k in 1..=3 {
        let tick = timer.tick().await;
        assert_eq!(
            tick,
            Tick {
                index: k,
                scheduled: start + secs(k),
                woke: start + secs(k),
                slept: secs(1),
            }
        );
        assert_eq!(tick.drift(), Duration::ZERO);
        assert_eq!(timer.next_due() - start, secs(k + 1));
    }
}

/// Polls `timer.tick()` once (so it sleeps), moves the clock `late` past its due time, and
/// returns the tick: a timer that woke up late.
async fn tick_late(timer: &mut Timer, late: Duration) -> Tick {
    let due = timer.next_due();
    let mut tick = pin!(timer.tick());
    assert!(poll_once(tick.as_mut()).await.is_none(), "woke too early");
    tokio::time::advance(due - Instant::now() + late).await;
    tick.await
}

/// One poll of `fut`: `Some` if it was ready.
async fn poll_once<F: std::future::Future>(mut fut: std::pin::Pin<&mut F>) -> Option<F::Output> {
    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        std::task::Poll::Ready(out) => std::task::Poll::Ready(Some(out)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn a_drift_within_the_bound_is_fully_corrected() {
    let start = Instant::now();
    let mut timer = Timer::new(secs(1));
    timer.tick().await;
    let tick = tick_late(&mut timer, ms(80)).await;
    assert_eq!(tick.index, 2);
    assert_eq!(tick.scheduled - start, secs(2));
    assert_eq!(tick.woke - start, ms(2080));
    assert_eq!(tick.drift(), ms(80));
    assert_eq!(tick.slept, ms(1080));
    // Back on the schedule at once: the next sleep is 80 ms shorter.
    assert_eq!(timer.next_due() - start, secs(3));
    let tick = timer.tick().await;
    assert_eq!(tick.woke - start, secs(3));
    assert_eq!(tick.drift(), Duration::ZERO);
    assert_eq!(tick.slept, ms(920));
    // Exactly the bound is still fully corrected.
    let tick = tick_late(&mut timer, DEFAULT_MAX_DRIFT_CORRECTION).await;
    assert_eq!(tick.woke - start, ms(4100));
    assert_eq!(timer.next_due() - start, secs(5));
}

#[tokio::test(start_paused = true)]
async fn a_larger_drift_is_corrected_by_at_most_the_bound() {
    let start = Instant::now();
    let mut timer = Timer::new(secs(1));
    timer.tick().await;
    let tick = tick_late(&mut timer, ms(500)).await;
    assert_eq!(tick.drift(), ms(500));
    assert_eq!(tick.woke - start, ms(2500));
    // 2.5 + 1 - 0.1: no burst of ticks to catch up.
    assert_eq!(timer.next_due() - start, ms(3400));
    let tick = timer.tick().await;
    assert_eq!(tick.woke - start, ms(3400));
    assert_eq!(tick.slept, ms(900));

    // A custom bound.
    let start = Instant::now();
    let mut timer = Timer::new(secs(1)).max_drift_correction(ms(300));
    timer.tick().await;
    let tick = tick_late(&mut timer, ms(250)).await;
    assert_eq!(tick.drift(), ms(250));
    assert_eq!(timer.next_due() - start, secs(3), "within the bound");
    let tick = tick_late(&mut timer, ms(500)).await;
    assert_eq!(tick.woke - start, ms(3500));
    assert_eq!(timer.next_due() - start, ms(4200), "3.5 + 1 - 0.3");
}

/// The documented promise for large drift, on the timer alone: after waking 500 ms late at
/// tick 2 (2.5 s), ticks 3, 4, 5, 6 come at 3.4, 4.3, 5.2, 6.1 s (100 ms closer each) and tick 7
/// is back on the grid at 7 s, with `scheduled` = start + k * interval.
#[tokio::test(start_paused = true)]
async fn a_large_drift_is_caught_up_to_the_absolute_schedule_a_bound_per_tick() {
    let start = Instant::now();
    let mut timer = Timer::new(secs(1));
    timer.tick().await;
    tick_late(&mut timer, ms(500)).await;
    let mut woke = Vec::new();
    let mut scheduled = Vec::new();
    for _ in 3..=7 {
        let tick = timer.tick().await;
        woke.push(tick.woke - start);
        scheduled.push(tick.scheduled - start);
    }
    assert_eq!(woke, [ms(3400), ms(4300), ms(5200), ms(6100), secs(7)]);
    assert_eq!(scheduled, [secs(3), secs(4), secs(5), secs(6), secs(7)]);
}

#[tokio::test(start_paused = true)]
async fn intervals_not_longer_than_the_bound_are_not_corrected() {
    let start = Instant::now();
    let mut timer = Timer::new(ms(100));
    timer.tick().await;
    let tick = tick_late(&mut timer, ms(30)).await;
    assert_eq!(tick.woke - start, ms(230));
    assert_eq!(timer.next_due() - start, ms(330));
}

// ----- what the timer logs ------------------------------------------------------------------------

/// Mode's rules: a wake-up at least `min(0.3 * interval, 1.2 s)` late is logged for intervals
/// of a second or more; work that runs past the next tick is logged as an overlap.
#[tokio::test(start_paused = true)]
async fn late_wake_ups_and_overlaps_are_logged() {
    // Tracing caches per call site whether anyone listens, and a call site first reached on
    // another thread of this binary (other tests, no subscriber) is cached as unheard while a
    // single subscriber exists. Reach the timer's call sites here first, then have tracing
    // re-read them under this thread's subscriber.
    let mut warm_up = Timer::new(secs(1));
    tick_late(&mut warm_up, secs(1)).await;
    tokio::time::sleep(secs(2)).await;
    warm_up.tick().await;

    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let mut timer = Timer::new(secs(1)).name("beat");
    timer.tick().await;
    tick_late(&mut timer, ms(200)).await; // 2.2 s, under 0.3 s late: not logged
    tick_late(&mut timer, ms(500)).await; // aimed at 3.1 s, woke 3.6 s: logged; next aimed at 4.5 s
    tokio::time::sleep(ms(1500)).await; // work after tick 3 until 5.1 s: past 4.5 s
    let tick = timer.tick().await;
    // 600 ms after where it was aimed (logged), 1.1 s behind the absolute schedule (4 s).
    assert_eq!((tick.index, tick.drift()), (4, ms(1100)));

    let mut fast = Timer::new(ms(500)).name("fast");
    fast.tick().await;
    tick_late(&mut fast, ms(400)).await; // sub-second interval: drift not logged

    let out = buffer.text();
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("beat:") || l.contains("fast:"))
        .collect();
    let expected = [
        "beat: timer woke up too late: 500ms after its schedule (interval 1s)",
        "beat: timer is overlapping: the work after tick 3 took 1.5s, past the interval of 1s",
        "beat: timer woke up too late: 600ms after its schedule (interval 1s)",
    ];
    assert_eq!(lines.len(), expected.len(), "{out}");
    for (line, want) in lines.iter().zip(expected) {
        assert!(line.contains("WARN") && line.ends_with(want), "{line:?}");
    }
}
