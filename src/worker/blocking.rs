//! The blocking detector as a service (see [`BlockingDetector`] for what it watches and how).
//!
//! # Invariants
//! - While no detector runs, services note nothing (`src/actor/busy.rs`): the hot path pays
//!   one relaxed atomic load per poll.
//! - A stall is reported once: a poll by its slot and start, the runtime's by its heartbeat.
//! - The watchdog thread ends with the service's run (its stop, restart or crash) and is
//!   joined before the stop goes on.

use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::Level;

use crate::actor::busy::{Board, Listening};
use crate::{Context, HookResult, Service, ServiceRef};

/// Reports of a detector, to a callback of yours.
type OnBlocked = Arc<dyn Fn(&Blocked) + Send + Sync>;

/// The blocking detector (Mode's `mode.debug.BlockingDetector`), as a service: spawn it into a
/// [`System`](crate::System) and it watches every service of that System for code that does
/// not yield, and names the service. The [`Worker`](crate::Worker) runs one by default.
///
/// Two watches, from a watchdog on its own OS thread (Mode uses SIGALRM):
/// - **Which service.** While a detector runs, every service's task (and each of its
///   background tasks) notes on its thread's slot which service it is and since when, for the
///   length of each poll (nothing is noted while no detector runs: the hot path pays one
///   atomic load). A note older than the timeout is code that has not yielded for that long:
///   the warning names the service, its background task if it was one, and the thread. This
///   sees one blocked worker thread among idle ones too.
/// - **The whole runtime.** A heartbeat task bumps a counter every interval; when it has not
///   moved for the timeout (and one interval more, for the first watch to name a service),
///   no task could run at all: the warning says so (a plain tokio task, not a service, is
///   blocking).
///
/// Each stall is reported once. The warning carries what the flight recorders then in their
/// scope had buffered (see [`crate::flight`], "The blocking detector"): a blocked scope cannot
/// reach its own deadline, so the detector writes its lines for it, right after the warning,
/// without clearing them. The watchdog logs through the tracing dispatcher that was current
/// where the detector started, and hands each report to [`BlockingDetector::on_blocked`] if
/// set.
///
/// A service [on its own thread](crate::ServiceSpec::on_own_thread) is not watched: blocking
/// that thread is what it is for.
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// use modo::prelude::*;
/// use modo::BlockingDetector;
///
/// struct Legacy;
/// impl Service for Legacy {}
///
/// struct Compute;
/// impl Handler<Compute> for Legacy {
///     type Reply = ();
///     async fn handle(&mut self, _: Compute, _ctx: &mut Context<Self>) {
///         std::thread::sleep(Duration::from_millis(300)); // blocks its runtime thread
///     }
/// }
///
/// # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
/// # async fn main() -> Result<(), modo::Error> {
/// let system = System::new();
/// let (tx, reports) = mpsc::channel();
/// system
///     .spawn(BlockingDetector::new(Duration::from_millis(100)).on_blocked(move |b| {
///         let _ = tx.send(b.clone());
///     }))
///     .await?;
/// let legacy = system.spawn(Legacy).await?;
/// legacy.ask(Compute).await?;
/// let report = reports.recv_timeout(Duration::from_secs(5)).expect("a report");
/// assert_eq!(report.service.map(|s| s.label().to_owned()).as_deref(), Some("Legacy"));
/// # system.shutdown().await }
/// ```
pub struct BlockingDetector {
    timeout: Duration,
    interval: Option<Duration>,
    on_blocked: Option<OnBlocked>,
    watchdog: Option<Watchdog>,
}

impl fmt::Debug for BlockingDetector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingDetector")
            .field("timeout", &self.timeout)
            .field("interval", &self.tick())
            .field("on_blocked", &self.on_blocked.is_some())
            .field("running", &self.watchdog.is_some())
            .finish()
    }
}

/// One stall the detector noticed, as it reports it (its `Display` is the warning's text).
///
/// ```
/// use std::sync::mpsc;
/// use std::time::Duration;
/// use modo::prelude::*;
/// use modo::BlockingDetector;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), modo::Error> {
/// let system = System::new();
/// let (tx, reports) = mpsc::channel();
/// system
///     .spawn(BlockingDetector::new(Duration::from_millis(50)).on_blocked(move |b| {
///         let _ = tx.send(b.clone());
///     }))
///     .await?;
/// // A plain task, not a service, blocks the runtime's only thread.
/// tokio::spawn(async { std::thread::sleep(Duration::from_millis(200)) }).await.unwrap();
/// let stall = reports.recv_timeout(Duration::from_secs(5)).expect("a report");
/// assert!(stall.service.is_none());
/// assert!(stall.to_string().starts_with("Blocking detected: the runtime made no progress"));
/// # system.shutdown().await }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Blocked {
    /// The service whose code had not yielded; `None` when the whole runtime stalled with no
    /// service's code running (a plain tokio task blocked it).
    pub service: Option<ServiceRef>,
    /// The service's background task that was running, if it was one; `None` for the
    /// service's own task (one of its hooks or handlers).
    pub task: Option<String>,
    /// The blocked thread's name, if it has one.
    pub thread: Option<String>,
    /// How long the code had run without yielding (or the runtime made no progress) when
    /// noticed.
    pub blocked_for: Duration,
    /// The detector's timeout.
    pub timeout: Duration,
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (blocked_for, timeout) = (self.blocked_for, self.timeout);
        let Some(service) = &self.service else {
            return write!(
                f,
                "Blocking detected: the runtime made no progress for {blocked_for:?} \
                 (blocking timeout {timeout:?}): a task is blocking its thread"
            );
        };
        write!(
            f,
            "Blocking detected: {} has run for {blocked_for:?} without yielding \
             (blocking timeout {timeout:?}), ",
            service.label()
        )?;
        match &self.task {
            Some(task) => write!(f, "in its task {task}")?,
            None => f.write_str("in its own task (a hook or a handler)")?,
        }
        if let Some(thread) = &self.thread {
            write!(f, ", on thread {thread}")?;
        }
        Ok(())
    }
}

impl BlockingDetector {
    /// A detector that warns when code runs `timeout` without yielding (Mode's `timeout`;
    /// the Worker's default is 10 s). At least 4 ms.
    pub fn new(timeout: impl Into<Duration>) -> Self {
        BlockingDetector {
            timeout: timeout.into().max(Duration::from_millis(4)),
            interval: None,
            on_blocked: None,
            watchdog: None,
        }
    }

    /// How often the watchdog looks (and the heartbeat beats). Default: a quarter of the
    /// timeout. A stall is noticed at most one interval after it reached the timeout.
    ///
    /// ```
    /// use std::time::Duration;
    /// use modo::BlockingDetector;
    ///
    /// let detector = BlockingDetector::new(Duration::from_secs(2)).interval(Duration::from_millis(100));
    /// assert_eq!(detector.timeout(), Duration::from_secs(2));
    /// ```
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval = Some(every.max(Duration::from_millis(1)));
        self
    }

    /// Also hands each report to `f`, on the watchdog's thread, after the warning (a panic in
    /// `f` is caught and logged). Keep it short: the next look waits for it.
    pub fn on_blocked(mut self, f: impl Fn(&Blocked) + Send + Sync + 'static) -> Self {
        self.on_blocked = Some(Arc::new(f));
        self
    }

    /// The timeout (see [`interval`](Self::interval) for an example).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The interval in use.
    fn tick(&self) -> Duration {
        self.interval
            .unwrap_or(self.timeout / 4)
            .max(Duration::from_millis(1))
    }
}

/// The watchdog thread of a started detector, and the listening that makes services note
/// their polls; both end with it.
struct Watchdog {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
    _listening: Listening,
}

impl Watchdog {
    /// Ends the thread (at once: it waits on the channel) and joins it.
    fn halt(self) -> JoinHandle<()> {
        drop(self.stop);
        self.thread
    }
}

impl Drop for BlockingDetector {
    fn drop(&mut self) {
        if let Some(watchdog) = self.watchdog.take() {
            let _ = watchdog.halt().join();
        }
    }
}

impl Service for BlockingDetector {
    /// Its lifecycle lines are debug: it is a tool, not part of the application.
    fn mundane_level(&self) -> Level {
        Level::DEBUG
    }

    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let (timeout, tick) = (self.timeout, self.tick());
        let beats = Arc::new(AtomicU64::new(0));
        let beating = beats.clone();
        let stop = ctx.stop_signal();
        ctx.spawn_named(format!("{}.heartbeat", ctx.label()), async move {
            let mut interval = tokio::time::interval(tick);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while stop.wait(interval.tick()).await.is_ok() {
                beating.fetch_add(1, Ordering::Relaxed);
            }
        });
        let board = ctx.myself().core().observe.busy.clone();
        let listening = board.listen();
        let watch = Watch {
            board,
            beats,
            tick,
            timeout,
            prefix: ctx.log().prefix().to_string(),
            on_blocked: self.on_blocked.clone(),
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let thread = std::thread::Builder::new()
            .name("modo-blocking-detector".into())
            .spawn(move || tracing::dispatcher::with_default(&dispatch, || watch.run(&stopped)))?;
        self.watchdog = Some(Watchdog {
            stop,
            thread,
            _listening: listening,
        });
        Ok(())
    }

    async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        if let Some(watchdog) = self.watchdog.take() {
            let thread = watchdog.halt();
            // The thread ends at once; its join is still a blocking call.
            if tokio::task::spawn_blocking(move || thread.join())
                .await
                .is_err()
            {
                return Err("the blocking detector's thread could not be joined".into());
            }
        }
        Ok(())
    }
}

/// What the watchdog thread watches.
struct Watch {
    board: Arc<Board>,
    beats: Arc<AtomicU64>,
    tick: Duration,
    timeout: Duration,
    prefix: String,
    on_blocked: Option<OnBlocked>,
}

impl Watch {
    /// The watchdog's loop: returns when the sender is dropped.
    fn run(&self, stopped: &mpsc::Receiver<()>) {
        let (tick, timeout) = (self.tick, self.timeout);
        let mut seen = self.beats.load(Ordering::Relaxed);
        let mut since = Instant::now();
        // The heartbeat's stall was reported (by name or not).
        let mut warned = false;
        // A service was named since the heartbeat last moved.
        let mut named = false;
        // The polls already reported: (slot, since). A poll is reported once.
        let mut reported: Vec<(usize, Instant)> = Vec::new();
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
            let now = Instant::now();
            let look = self.board.look();
            reported.retain(|r| look.iter().any(|s| (s.slot, s.note.since) == *r));
            let mut busy = false;
            for s in &look {
                let busy_for = now.saturating_duration_since(s.note.since);
                busy |= busy_for >= tick;
                if busy_for < timeout || reported.contains(&(s.slot, s.note.since)) {
                    continue;
                }
                reported.push((s.slot, s.note.since));
                named = true;
                self.report(&Blocked {
                    service: Some(s.note.who.service.clone()),
                    task: s.note.who.task.as_deref().map(str::to_owned),
                    thread: s.thread.as_deref().map(str::to_owned),
                    blocked_for: busy_for,
                    timeout,
                });
            }
            let beats = self.beats.load(Ordering::Relaxed);
            if beats != seen {
                (seen, since, warned, named) = (beats, now, false, false);
                continue;
            }
            let stalled = now.saturating_duration_since(since);
            if warned || stalled < timeout + tick {
                continue;
            }
            if named {
                // The stall's culprit was named already.
                warned = true;
            } else if !busy {
                warned = true;
                self.report(&Blocked {
                    service: None,
                    task: None,
                    thread: None,
                    blocked_for: stalled,
                    timeout,
                });
            }
            // Else a service's code has been running a while: it is named once it reaches
            // the timeout, or the stall is reported without a name at the next look.
        }
    }

    /// Warns (with what the flight recorders saw), then hands the report to the callback.
    fn report(&self, blocked: &Blocked) {
        let prefix = &self.prefix;
        let recorded = crate::flight::active_report();
        let more = if recorded.is_empty() {
            ""
        } else {
            "; the flight recorders in their scope saw:"
        };
        tracing::warn!(target: "modo", "{prefix}: {blocked}{more}");
        for line in recorded {
            tracing::warn!(target: "modo", "{prefix}: {line}");
        }
        if let Some(f) = &self.on_blocked
            && std::panic::catch_unwind(AssertUnwindSafe(|| f(blocked))).is_err()
        {
            tracing::error!(target: "modo", "{prefix}: the on_blocked callback panicked");
        }
    }
}
