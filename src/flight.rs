//! The flight recorder (Mode's `flight_recorder`): log lines kept aside while a scope runs,
//! written out only if the scope overruns its deadline, so the log shows the step that hung
//! without the noise of logging every step every time.
//!
//! [`FlightRecorder::run`] runs a future as the recorder's scope. Lines given to the
//! recorder ([`FlightRecorder::info`] and its siblings, or [`on_timeout`] from any code the
//! scope calls) are buffered with the time they were logged. If the future completes before
//! the deadline, the buffer is thrown away and nothing is written. If the deadline passes
//! first, the recorder writes, through `tracing` (target `modo`):
//!
//! ```text
//! WARN  [Flight Recorder-1] Timed out: still running after 10.00 seconds (deadline 10s); replaying 3 lines
//! INFO  [Flight Recorder-1] (2026-11-25T17:08:03.123Z +0.000s) +redis.get('user')
//! INFO  [Flight Recorder-1] (2026-11-25T17:08:05.124Z +2.001s) -redis.get('user')
//! INFO  [Flight Recorder-1] (2026-11-25T17:08:05.124Z +2.001s) +redis.get('posts')
//! INFO  [Flight Recorder-1] -End of log-
//! ```
//!
//! each line at its own level, with its original wall-clock time and its offset from the
//! start of the scope; the future keeps running, and the lines it logs after that are
//! written at once. The scope is not cancelled: the recorder only explains.
//!
//! ```
//! use modo::flight::{FlightRecorder, on_timeout};
//! use std::time::Duration;
//!
//! async fn refresh() {
//!     on_timeout().info("+fetching users");
//!     tokio::time::sleep(Duration::from_secs(1)).await;
//!     on_timeout().info("-fetching users");
//! }
//!
//! #[tokio::main(flavor = "current_thread", start_paused = true)]
//! async fn main() {
//!     // In time: nothing is written.
//!     FlightRecorder::new(Duration::from_secs(10)).run(refresh()).await;
//!     // Late: the two lines are written after 500 ms, then the scope goes on.
//!     FlightRecorder::new(Duration::from_millis(500)).run(refresh()).await;
//! }
//! ```
//!
//! # The blocking detector
//! A scope whose thread is blocked cannot reach its own deadline (nothing runs on that
//! thread). The Worker's blocking detector, running on its own thread, asks this module for
//! the recorders whose scope is running ([`FlightRecorder::run`] lists them in a
//! process-wide registry of weak references for the length of the scope) and adds what they
//! have buffered to its warning. It reads them without clearing them.
//!
//! # Invariants
//! - A scope that completes before its deadline writes nothing (the future's result is
//!   checked first when both are ready at once).
//! - After the deadline, every line buffered is written once, in the order logged, at its
//!   own level, with its original time; later lines are written at once. A run dropped
//!   before its deadline writes nothing.
//! - The buffer is under a mutex that no user code and no await runs under; the registry
//!   holds weak references only, so a recorder is never kept alive by it.
//!
//! # Where modo differs from Mode
//! - Mode's `wrap_info(obj)` proxies that log every method call are left out (Rust has no
//!   such proxies); log the calls with [`on_timeout`].
//! - Mode prints the task's stack after the replay; tokio gives no stack of a task.

use std::fmt::{self, Display};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tracing::Level;

use crate::time::humanize_seconds;

tokio::task_local! {
    static CURRENT: FlightRecorder;
}

/// The recorders whose scope is running, for the blocking detector.
static ACTIVE: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

/// Mode's `flight_recorder`: keeps log lines aside while a scope runs and writes them out
/// only if the scope overruns its deadline. Clones log into the same recorder. See the
/// [module docs](self).
///
/// ```
/// use modo::flight::FlightRecorder;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let recorder = FlightRecorder::named("refresh", Duration::from_secs(10));
/// let log = recorder.clone();
/// let users = recorder
///     .run(async move {
///         log.info("+get users");
///         let users = vec!["ada", "grace"];
///         log.info("-get users");
///         users
///     })
///     .await;
/// assert_eq!(users.len(), 2);
/// assert!(!recorder.timed_out());
/// # }
/// ```
#[derive(Clone)]
pub struct FlightRecorder {
    inner: Arc<Inner>,
}

struct Inner {
    label: Arc<str>,
    timeout: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    phase: Phase,
    lines: Vec<Line>,
}

#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Not in a scope: lines are buffered for the next one.
    #[default]
    Idle,
    /// In a scope, before the deadline: lines are buffered.
    Recording {
        started: Instant,
        started_wall: SystemTime,
    },
    /// In a scope, past the deadline: lines are written at once.
    TimedOut { started: Instant },
    /// The scope ended in time: lines are dropped until the next scope.
    Done,
}

struct Line {
    level: Level,
    wall: SystemTime,
    at: Instant,
    message: String,
}

impl FlightRecorder {
    /// A recorder whose scope may run for `timeout`, labelled `Flight Recorder-N` (N counts
    /// the recorders made in this process).
    pub fn new(timeout: impl Into<Duration>) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self::named(format!("Flight Recorder-{n}"), timeout)
    }

    /// A recorder with its own label (shown in brackets on every line it writes).
    pub fn named(label: impl Into<Arc<str>>, timeout: impl Into<Duration>) -> Self {
        FlightRecorder {
            inner: Arc::new(Inner {
                label: label.into(),
                timeout: timeout.into(),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The label.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// How long the scope may run before the lines are written.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Whether the current (or last) scope overran its deadline.
    pub fn timed_out(&self) -> bool {
        matches!(self.lock().phase, Phase::TimedOut { .. })
    }

    /// Records a line at `level`: kept aside until the deadline passes (then written), or
    /// thrown away with the scope if it ends in time. Written at once after the deadline;
    /// dropped between the end of a scope in time and the next scope.
    pub fn log(&self, level: Level, message: impl Display) {
        let now = Instant::now();
        let wall = SystemTime::now();
        let mut state = self.lock();
        match state.phase {
            Phase::Idle | Phase::Recording { .. } => state.lines.push(Line {
                level,
                wall,
                at: now,
                message: message.to_string(),
            }),
            Phase::TimedOut { started } => {
                drop(state);
                let line = Line {
                    level,
                    wall,
                    at: now,
                    message: message.to_string(),
                };
                emit(
                    level,
                    format_args!("[{}] {}", self.label(), line.show(started)),
                );
            }
            Phase::Done => {}
        }
    }

    /// Records a line at error level.
    pub fn error(&self, message: impl Display) {
        self.log(Level::ERROR, message)
    }

    /// Records a line at warn level.
    pub fn warn(&self, message: impl Display) {
        self.log(Level::WARN, message)
    }

    /// Records a line at info level.
    pub fn info(&self, message: impl Display) {
        self.log(Level::INFO, message)
    }

    /// Records a line at debug level.
    pub fn debug(&self, message: impl Display) {
        self.log(Level::DEBUG, message)
    }

    /// Runs `fut` as this recorder's scope: the deadline starts now, and inside `fut` this
    /// recorder is the current one ([`current`], [`on_timeout`]). Returns `fut`'s output;
    /// `fut` is never cancelled by the deadline.
    ///
    /// A recorder records one scope at a time: `run` on a recorder whose scope is already
    /// running (through a clone) just runs `fut` inside that scope. After a scope ended, a
    /// new `run` starts a new recording.
    ///
    /// # Cancel safety
    /// Dropping the future ends the scope: nothing more is written, and `fut` is dropped.
    pub async fn run<F: Future>(&self, fut: F) -> F::Output {
        let fut = CURRENT.scope(self.clone(), fut);
        if !self.start() {
            return fut.await;
        }
        let _scope = Scope { recorder: self };
        let deadline = tokio::time::sleep(self.inner.timeout);
        tokio::pin!(fut, deadline);
        let mut replayed = false;
        loop {
            tokio::select! {
                biased;
                out = &mut fut => return out,
                () = &mut deadline, if !replayed => {
                    replayed = true;
                    self.replay();
                }
            }
        }
    }

    /// Starts a recording; `false` when one is already running.
    fn start(&self) -> bool {
        let mut state = self.lock();
        match state.phase {
            Phase::Recording { .. } | Phase::TimedOut { .. } => return false,
            Phase::Done => state.lines.clear(),
            Phase::Idle => {}
        }
        state.phase = Phase::Recording {
            started: Instant::now(),
            started_wall: SystemTime::now(),
        };
        drop(state);
        let mut active = active();
        active.retain(|r| r.strong_count() > 0);
        active.push(Arc::downgrade(&self.inner));
        true
    }

    /// The deadline passed: writes the buffer out, and every later line at once.
    fn replay(&self) {
        let (lines, started) = {
            let mut state = self.lock();
            let Phase::Recording { started, .. } = state.phase else {
                return;
            };
            state.phase = Phase::TimedOut { started };
            (std::mem::take(&mut state.lines), started)
        };
        let label = self.label();
        let timeout = self.inner.timeout;
        tracing::warn!(
            target: "modo",
            "[{label}] Timed out: still running after {} (deadline {timeout:?}); replaying {} line{}",
            humanize_seconds(timeout),
            lines.len(),
            if lines.len() == 1 { "" } else { "s" }
        );
        for line in &lines {
            emit(line.level, format_args!("[{label}] {}", line.show(started)));
        }
        tracing::info!(target: "modo", "[{label}] -End of log-");
    }

    /// The end of a scope (completed, or dropped): off the registry; a scope that ended in
    /// time forgets its lines.
    fn end(&self) {
        {
            let mut state = self.lock();
            state.lines.clear();
            state.phase = Phase::Done;
        }
        active().retain(|r| r.strong_count() > 0 && !std::ptr::eq(r.as_ptr(), &*self.inner));
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No user code runs under the lock (messages are formatted before it is taken).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Ends the scope however `run` ends.
struct Scope<'a> {
    recorder: &'a FlightRecorder,
}

impl Drop for Scope<'_> {
    fn drop(&mut self) {
        self.recorder.end();
    }
}

impl Line {
    /// `(2026-11-25T17:08:03.123Z +2.001s) message`
    fn show(&self, started: Instant) -> String {
        let offset = self.at.saturating_duration_since(started);
        format!(
            "({} +{:.3}s) {}",
            humantime::format_rfc3339_millis(self.wall),
            offset.as_secs_f64(),
            self.message
        )
    }
}

impl fmt::Debug for FlightRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        let phase = match state.phase {
            Phase::Idle => "idle",
            Phase::Recording { .. } => "recording",
            Phase::TimedOut { .. } => "timed out",
            Phase::Done => "done",
        };
        f.debug_struct("FlightRecorder")
            .field("label", &self.inner.label)
            .field("timeout", &self.inner.timeout)
            .field("phase", &phase)
            .field("buffered", &state.lines.len())
            .finish()
    }
}

/// The recorder whose scope the calling task is in (Mode's `current_flight_recorder`), if
/// any. Nested scopes: the innermost.
pub fn current() -> Option<FlightRecorder> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Logs to the current recorder (Mode's `on_timeout` object): code deep inside a scope can
/// record its steps without being handed the recorder. Outside any scope, the lines are
/// dropped.
///
/// ```
/// use modo::flight::{FlightRecorder, on_timeout};
/// use std::time::Duration;
///
/// fn parse(raw: &str) -> usize {
///     on_timeout().debug(format_args!("parsing {} bytes", raw.len()));
///     raw.len()
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let recorder = FlightRecorder::new(Duration::from_secs(1));
/// assert_eq!(recorder.run(async { parse("{}") }).await, 2);
/// # }
/// ```
pub fn on_timeout() -> OnTimeout {
    OnTimeout {
        recorder: current(),
    }
}

/// What [`on_timeout`] returns: the current recorder's logging methods, doing nothing
/// outside any scope.
#[derive(Debug, Clone)]
pub struct OnTimeout {
    recorder: Option<FlightRecorder>,
}

impl OnTimeout {
    /// The recorder lines go to, if any.
    pub fn recorder(&self) -> Option<&FlightRecorder> {
        self.recorder.as_ref()
    }

    /// Records a line at `level` ([`FlightRecorder::log`]).
    pub fn log(&self, level: Level, message: impl Display) {
        if let Some(recorder) = &self.recorder {
            recorder.log(level, message);
        }
    }

    /// Records a line at error level.
    pub fn error(&self, message: impl Display) {
        self.log(Level::ERROR, message)
    }

    /// Records a line at warn level.
    pub fn warn(&self, message: impl Display) {
        self.log(Level::WARN, message)
    }

    /// Records a line at info level.
    pub fn info(&self, message: impl Display) {
        self.log(Level::INFO, message)
    }

    /// Records a line at debug level.
    pub fn debug(&self, message: impl Display) {
        self.log(Level::DEBUG, message)
    }
}

fn active() -> MutexGuard<'static, Vec<Weak<Inner>>> {
    ACTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the running recorders have buffered, for the blocking detector's warning: for each
/// recorder in a scope, a heading line and its lines (original time and offset), in order.
/// Reads without clearing.
pub(crate) fn active_report() -> Vec<String> {
    let recorders: Vec<Arc<Inner>> = active().iter().filter_map(Weak::upgrade).collect();
    let mut report = Vec::new();
    for inner in recorders {
        let state = inner.lock();
        let (started, started_wall) = match state.phase {
            Phase::Recording {
                started,
                started_wall,
            } => (started, Some(started_wall)),
            Phase::TimedOut { started } => (started, None),
            Phase::Idle | Phase::Done => continue,
        };
        let since = started_wall
            .map(|w| format!(" since {}", humantime::format_rfc3339_millis(w)))
            .unwrap_or_default();
        report.push(format!(
            "[{}] in its scope{since} (deadline {:?}), {} line{} recorded:",
            inner.label,
            inner.timeout,
            state.lines.len(),
            if state.lines.len() == 1 { "" } else { "s" }
        ));
        for line in &state.lines {
            report.push(format!("[{}] {}", inner.label, line.show(started)));
        }
    }
    report
}

/// Emits a `modo` event at a level known only at run time.
fn emit(level: Level, message: fmt::Arguments<'_>) {
    match level {
        Level::ERROR => tracing::error!(target: "modo", "{message}"),
        Level::WARN => tracing::warn!(target: "modo", "{message}"),
        Level::INFO => tracing::info!(target: "modo", "{message}"),
        Level::DEBUG => tracing::debug!(target: "modo", "{message}"),
        _ => tracing::trace!(target: "modo", "{message}"),
    }
}
