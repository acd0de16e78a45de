//! Mode's drift-corrected timer.
//!
//! The schedule is absolute: tick `k` is due at `start + k * interval`. Each wake-up measures
//! how far behind that schedule it woke (the drift) and aims the next one at
//! `woke + interval - correction`, where the correction is the drift clamped to
//! `max_drift_correction` (when the interval is larger than that bound; shorter intervals are
//! not corrected, as in Mode). A drift within the bound is fully corrected, so the timer stays
//! exactly on schedule; a larger one is caught up a bound per tick instead of firing a burst
//! of ticks. Because the next target is an instant, not a duration measured after the
//! callback, the callback's own run time does not push the schedule.
//!
//! Logged, as in Mode: a wake-up later than `min(0.3 * interval, 1.2 s)` for intervals of at
//! least a second ("woke up too late"), and a callback that ran past the next tick
//! ("overlapping").

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// Mode's default bound on the correction applied to one sleep.
pub const DEFAULT_MAX_DRIFT_CORRECTION: Duration = Duration::from_millis(100);

/// One wake-up of a [`Timer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// 1 for the first tick.
    pub index: u64,
    /// When this tick was due.
    pub scheduled: Instant,
    /// When the timer actually woke.
    pub woke: Instant,
    /// How long the timer slept before this tick (Mode's itertimer yields this).
    pub slept: Duration,
}

impl Tick {
    /// How late the wake-up was.
    pub fn drift(&self) -> Duration {
        self.woke.saturating_duration_since(self.scheduled)
    }
}

/// A drift-corrected periodic timer: the first tick one full interval after creation.
///
/// ```
/// use modo::time::Timer;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let start = tokio::time::Instant::now();
/// let mut timer = Timer::new(Duration::from_secs(1));
/// let first = timer.tick().await;
/// assert_eq!(first.woke - start, Duration::from_secs(1));
/// // A slow callback does not push the schedule.
/// tokio::time::sleep(Duration::from_millis(700)).await;
/// let second = timer.tick().await;
/// assert_eq!(second.woke - start, Duration::from_secs(2));
/// # }
/// ```
pub struct Timer {
    interval: Duration,
    max_drift_correction: Duration,
    /// Tick `k` is due at `origin + k * interval`.
    origin: Instant,
    /// Where the next wake-up is aimed (due time plus what is left of the drift).
    next: Instant,
    last_woke: Instant,
    index: u64,
    name: Arc<str>,
}

impl fmt::Debug for Timer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timer")
            .field("name", &self.name)
            .field("interval", &self.interval)
            .field("index", &self.index)
            .finish()
    }
}

impl Timer {
    /// A timer whose first tick is `interval` from now.
    pub fn new(interval: impl Into<Duration>) -> Self {
        let interval = interval.into();
        let now = Instant::now();
        Timer {
            interval,
            max_drift_correction: DEFAULT_MAX_DRIFT_CORRECTION,
            origin: now,
            next: now + interval,
            last_woke: now,
            index: 0,
            name: Arc::from("timer"),
        }
    }

    /// Sets the bound on the correction of one sleep (default 100 ms).
    pub fn max_drift_correction(mut self, bound: Duration) -> Self {
        self.max_drift_correction = bound;
        self
    }

    /// Names the timer in its log lines.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Arc::from(name.into());
        self
    }

    /// The interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// When the next tick is due.
    pub fn next_due(&self) -> Instant {
        self.next
    }

    /// Waits for the next tick.
    ///
    /// # Cancel safety
    /// Cancel safe: a dropped call leaves the schedule as it was.
    pub async fn tick(&mut self) -> Tick {
        let before = Instant::now();
        if self.index > 0 && before > self.next {
            let ran = before.saturating_duration_since(self.last_woke);
            tracing::warn!(
                target: "modo",
                "{}: timer is overlapping: the work after tick {} took {:?}, past the interval of {:?}",
                self.name, self.index, ran, self.interval
            );
        }
        tokio::time::sleep_until(self.next).await;
        let woke = Instant::now();
        // Late against where this wake-up was aimed: what the log warns about.
        let late = woke.saturating_duration_since(self.next);
        if self.interval >= Duration::from_secs(1) {
            let threshold = (self.interval.mul_f64(0.3)).min(Duration::from_millis(1200));
            if late >= threshold {
                tracing::warn!(
                    target: "modo",
                    "{}: timer woke up too late: {:?} after its schedule (interval {:?})",
                    self.name, late, self.interval
                );
            }
        }
        self.index += 1;
        let index = u32::try_from(self.index).unwrap_or(u32::MAX);
        let scheduled = self.origin + self.interval.saturating_mul(index);
        // Behind the absolute schedule: what the correction works off.
        let drift = woke.saturating_duration_since(scheduled);
        let correction = if self.interval > self.max_drift_correction {
            drift.min(self.max_drift_correction)
        } else {
            Duration::ZERO
        };
        self.next = woke + self.interval - correction;
        let slept = woke.saturating_duration_since(before);
        self.last_woke = woke;
        if correction.is_zero() && drift > Duration::ZERO {
            // Uncorrected (short interval): the schedule moves with the timer.
            self.origin += drift;
        }
        Tick {
            index: self.index,
            scheduled,
            woke,
            slept,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn small_drift_is_fully_corrected() {
        let start = Instant::now();
        let mut t = Timer::new(Duration::from_secs(1));
        t.tick().await;
        // Simulate a late wake-up of 50 ms by arriving after the target.
        tokio::time::advance(Duration::from_millis(1050)).await;
        let tick = t.tick().await;
        assert_eq!(tick.drift(), Duration::from_millis(50));
        assert_eq!(t.next_due() - start, Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn large_drift_is_caught_up_one_bound_at_a_time() {
        let start = Instant::now();
        let mut t = Timer::new(Duration::from_secs(1));
        t.tick().await; // at 1 s
        tokio::time::advance(Duration::from_millis(1500)).await; // 2.5 s: 500 ms late
        let tick = t.tick().await;
        assert_eq!(tick.woke - start, Duration::from_millis(2500));
        // Corrected by at most 100 ms: next at 2.5 + 1 - 0.1.
        assert_eq!(t.next_due() - start, Duration::from_millis(3400));
    }

    #[tokio::test(start_paused = true)]
    async fn short_intervals_are_not_corrected() {
        let mut t = Timer::new(Duration::from_millis(50));
        t.tick().await;
        tokio::time::advance(Duration::from_millis(80)).await;
        let tick = t.tick().await;
        assert_eq!(t.next_due(), tick.woke + Duration::from_millis(50));
    }
}
