//! What a supervisor does when a child crashes: the strategy, each child's restart policy,
//! the restart intensity, and the backoff between restarts.

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// Which children a supervisor restarts when one crashes (Mode's strategies, and Erlang's
/// `rest_for_one`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Strategy {
    /// Restart only the crashed child.
    #[default]
    OneForOne,
    /// Stop every other child in reverse start order, then restart all of them in order.
    OneForAll,
    /// Stop the children started after the crashed one (in reverse), then restart the crashed
    /// one and those, in order.
    RestForOne,
    /// Stop the crashed child for good and give up on it.
    ForfeitOneForOne,
    /// Stop every child for good and give up on all of them.
    ForfeitOneForAll,
    /// No supervision: the crash fails the whole System, whose `shutdown` returns it.
    Crashing,
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::OneForOne => "one_for_one",
            Strategy::OneForAll => "one_for_all",
            Strategy::RestForOne => "rest_for_one",
            Strategy::ForfeitOneForOne => "forfeit_one_for_one",
            Strategy::ForfeitOneForAll => "forfeit_one_for_all",
            Strategy::Crashing => "crashing",
        })
    }
}

/// When a child is restarted (OTP's restart types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RestartPolicy {
    /// Always: after a crash, and after a stop that its supervisor did not ask for.
    #[default]
    Permanent,
    /// Only after a crash; a normal stop ends it.
    Transient,
    /// Never: a crash or a stop ends it.
    Temporary,
}

impl RestartPolicy {
    /// The policy as the tag a supervisor leaves on its child's cell (never 0, which means
    /// "none noted").
    pub(crate) fn tag(self) -> u8 {
        match self {
            RestartPolicy::Permanent => 1,
            RestartPolicy::Transient => 2,
            RestartPolicy::Temporary => 3,
        }
    }

    /// The policy a tag stands for; the default for none.
    pub(crate) fn from_tag(tag: u8) -> RestartPolicy {
        match tag {
            2 => RestartPolicy::Transient,
            3 => RestartPolicy::Temporary,
            _ => RestartPolicy::Permanent,
        }
    }
}

/// The wait before restarting a child, by how many times in a row it was restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Backoff {
    /// Restart at once.
    #[default]
    None,
    /// Wait the same time before every restart.
    Fixed(Duration),
    /// Wait `base`, then twice as long each time, at most `max`.
    Exponential {
        /// The first wait.
        base: Duration,
        /// The longest wait.
        max: Duration,
    },
}

impl Backoff {
    /// The wait before restart number `n` in a row (1 for the first).
    ///
    /// ```
    /// use modo::supervisor::Backoff;
    /// use std::time::Duration;
    ///
    /// let b = Backoff::Exponential { base: Duration::from_millis(100), max: Duration::from_secs(1) };
    /// let waits: Vec<u64> = (1..=6).map(|n| b.delay(n).as_millis() as u64).collect();
    /// assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
    /// ```
    pub fn delay(&self, n: u32) -> Duration {
        match *self {
            Backoff::None => Duration::ZERO,
            Backoff::Fixed(d) => d,
            Backoff::Exponential { base, max } => {
                let doublings = n.saturating_sub(1).min(31);
                base.saturating_mul(1 << doublings).min(max)
            }
        }
    }

    /// The longest wait this backoff can produce.
    pub(crate) fn longest(&self) -> Duration {
        match *self {
            Backoff::None => Duration::ZERO,
            Backoff::Fixed(d) => d,
            Backoff::Exponential { max, .. } => max,
        }
    }
}

/// Erlang's restart intensity: at most `max` restarts within a sliding window `over`. Shared
/// by a supervisor and the decider its children ask in their own tasks (see `in_place.rs`), so
/// the window is behind a lock, held only to count.
#[derive(Debug)]
pub(crate) struct Intensity {
    pub(crate) max: u32,
    pub(crate) over: Duration,
    stamps: Mutex<VecDeque<Instant>>,
}

impl Intensity {
    pub(crate) fn new(max: u32, over: Duration) -> Self {
        Intensity {
            max,
            over,
            stamps: Mutex::new(VecDeque::new()),
        }
    }

    /// The window at `now`, with the restarts older than `over` dropped.
    fn window(&self, now: Instant) -> MutexGuard<'_, VecDeque<Instant>> {
        let mut stamps = self.stamps.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(first) = stamps.front() {
            if now.saturating_duration_since(*first) >= self.over {
                stamps.pop_front();
            } else {
                break;
            }
        }
        stamps
    }

    /// Counts a restart at `now`: `Err(count)` if that makes more than `max` in the window.
    pub(crate) fn record(&self, now: Instant) -> Result<(), u32> {
        let mut stamps = self.window(now);
        stamps.push_back(now);
        let count = stamps.len() as u32;
        if count > self.max { Err(count) } else { Ok(()) }
    }

    /// Counts a restart at `now` only if it stays within the intensity; `false` counts nothing
    /// (the restart that would exceed it is left to [`record`](Self::record)).
    pub(crate) fn try_record(&self, now: Instant) -> bool {
        let mut stamps = self.window(now);
        if stamps.len() as u32 >= self.max {
            return false;
        }
        stamps.push_back(now);
        true
    }

    pub(crate) fn reset(&self) {
        self.stamps
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn intensity_is_a_sliding_window() {
        let i = Intensity::new(3, Duration::from_secs(1));
        let t0 = Instant::now();
        assert!(i.record(t0).is_ok());
        assert!(i.record(t0 + Duration::from_millis(300)).is_ok());
        assert!(i.record(t0 + Duration::from_millis(600)).is_ok());
        assert_eq!(i.record(t0 + Duration::from_millis(900)), Err(4));
        // The first two left the window.
        let j = Intensity::new(3, Duration::from_secs(1));
        for ms in [0, 300, 600] {
            j.record(t0 + Duration::from_millis(ms)).unwrap();
        }
        assert!(j.record(t0 + Duration::from_millis(1_300)).is_ok());
    }

    /// `try_record` counts only what stays within the intensity; the restart that would
    /// exceed it is left to `record`, which counts it and fails.
    #[tokio::test(start_paused = true)]
    async fn try_record_never_exceeds_the_intensity() {
        let i = Intensity::new(2, Duration::from_secs(1));
        let t0 = Instant::now();
        assert!(i.try_record(t0));
        assert!(i.try_record(t0 + Duration::from_millis(100)));
        assert!(!i.try_record(t0 + Duration::from_millis(200)));
        assert_eq!(i.record(t0 + Duration::from_millis(200)), Err(3));
        // Once the first two leave the window, there is room again.
        assert!(i.try_record(t0 + Duration::from_millis(1_150)));
        i.reset();
        assert!(i.try_record(t0 + Duration::from_millis(1_160)));
        assert!(i.try_record(t0 + Duration::from_millis(1_170)));
    }

    #[test]
    fn backoff_schedules() {
        assert_eq!(Backoff::None.delay(5), Duration::ZERO);
        assert_eq!(
            Backoff::Fixed(Duration::from_secs(2)).delay(9),
            Duration::from_secs(2)
        );
        let e = Backoff::Exponential {
            base: Duration::from_millis(10),
            max: Duration::from_secs(60),
        };
        assert_eq!(e.delay(1), Duration::from_millis(10));
        assert_eq!(e.delay(40), Duration::from_secs(60));
    }
}
