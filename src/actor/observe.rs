//! Watching the messages go by: per-message spans, per-service statistics (and, with the
//! `metrics` feature, the `metrics` facade), all of it paid for only while someone looks.
//!
//! A send checks one switch: the System's observation flag, or whether `tracing` wants the
//! `modo::message` spans (DEBUG). When neither is on, the message travels in the plain
//! envelope and nothing else happens: no clock read, no allocation, no span. When one is on,
//! the message travels in a [`Traced`](super::handler) envelope that carries the time it was
//! sent and the sender's span; the actor then runs the handler in a span of its own that
//! follows from the sender's, and records the mailbox wait and the handle time.
//!
//! # Invariants
//! - With observation off and `modo::message` spans disabled, the message path is the plain
//!   one (`tests/observe.rs` checks that nothing is recorded; `benches/peers` measures it).
//! - A service's statistics are allocated the first time one of its messages is observed:
//!   an idle service pays one pointer for them.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use tracing::Span;

/// The System-wide switch, shared by every service's cell; and the System's board of what
/// each thread is running, for a blocking detector (see `busy.rs`).
#[derive(Default)]
pub(crate) struct Observe {
    on: AtomicBool,
    pub(crate) busy: Arc<super::busy::Board>,
}

impl fmt::Debug for Observe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observe")
            .field("on", &self.is_on())
            .field("busy", &self.busy.is_on())
            .finish()
    }
}

impl Observe {
    pub(crate) fn set(&self, on: bool) {
        self.on.store(on, Ordering::Relaxed);
    }

    pub(crate) fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }
}

/// Whether a subscriber wants the per-message spans.
#[inline]
pub(crate) fn spans_wanted() -> bool {
    tracing::enabled!(target: "modo::message", tracing::Level::DEBUG)
}

/// What a traced message carries from its sender.
pub(crate) struct Sent {
    pub(crate) at: Instant,
    /// The sender's span (the handler's span follows from it), if spans are wanted.
    pub(crate) from: Option<Span>,
}

impl Sent {
    pub(crate) fn now() -> Sent {
        let from = spans_wanted().then(Span::current);
        Sent {
            at: Instant::now(),
            from,
        }
    }
}

/// A histogram of durations in power-of-two buckets of nanoseconds (bucket `i` holds
/// `[2^i, 2^(i+1))` ns): fixed memory, lock-free, good to a factor of two, which is what a
/// p50/p99 on an operator's page needs.
pub(crate) struct Histogram {
    buckets: [AtomicU64; 40],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Histogram {
    pub(crate) fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        let bucket = (63 - ns.leading_zeros() as usize).min(self.buckets.len() - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// The upper bound of the bucket holding quantile `q` (0..=1); zero if empty.
    pub(crate) fn quantile(&self, q: f64) -> Duration {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Duration::ZERO;
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Duration::from_nanos(1u64 << (i + 1).min(63));
            }
        }
        Duration::from_nanos(1u64 << 40)
    }
}

/// One service's statistics, kept while observed.
#[derive(Default)]
pub(crate) struct Stats {
    pub(crate) handled: AtomicU64,
    pub(crate) handle_time: Histogram,
    pub(crate) mailbox_wait: Histogram,
    #[cfg(feature = "metrics")]
    pub(crate) meter: OnceLock<super::meter::Handles>,
}

impl Stats {
    pub(crate) fn record(&self, wait: Duration, handled_in: Duration) {
        self.handled.fetch_add(1, Ordering::Relaxed);
        self.mailbox_wait.record(wait);
        self.handle_time.record(handled_in);
    }
}

/// Where a cell keeps its statistics: nothing until observed.
#[derive(Default)]
pub(crate) struct StatsSlot {
    stats: OnceLock<Arc<Stats>>,
}

impl StatsSlot {
    pub(crate) fn get_or_init(&self) -> Arc<Stats> {
        self.stats.get_or_init(Arc::default).clone()
    }

    pub(crate) fn get(&self) -> Option<&Arc<Stats>> {
        self.stats.get()
    }
}

/// Durations at three quantiles.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Percentiles {
    /// The median (an upper bound, within a factor of two).
    pub p50: Duration,
    /// The 99th percentile (an upper bound, within a factor of two).
    pub p99: Duration,
    /// The largest seen (an upper bound, within a factor of two).
    pub max: Duration,
}

impl Percentiles {
    fn of(h: &Histogram) -> Percentiles {
        Percentiles {
            p50: h.quantile(0.5),
            p99: h.quantile(0.99),
            max: h.quantile(1.0),
        }
    }
}

/// The last crash of a service: when, and why.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CrashRecord {
    /// When it crashed (wall clock).
    pub at: SystemTime,
    /// Why.
    pub reason: super::error::CrashReason,
}

/// A snapshot of what a service has done, from [`ServiceRef::stats`](crate::ServiceRef::stats).
///
/// Message figures count only what was observed: messages sent while the System observed
/// ([`System::set_observing`](crate::System::set_observing)) or while a subscriber wanted
/// the `modo::message` spans. Crashes and restarts are always counted.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ServiceStats {
    /// Messages handled (observed ones).
    pub handled: u64,
    /// How long handlers took (observed messages).
    pub handle_time: Percentiles,
    /// How long messages waited in the mailbox (observed messages).
    pub mailbox_wait: Percentiles,
    /// Messages waiting now.
    pub queued: usize,
    /// How many times it crashed.
    pub crashes: u32,
    /// How many times it was restarted.
    pub restarts: u32,
    /// Its last crash, if any (kept across restarts).
    pub last_crash: Option<CrashRecord>,
}

impl ServiceStats {
    pub(crate) fn from_parts(
        stats: Option<&Arc<Stats>>,
        queued: usize,
        crashes: u32,
        restarts: u32,
        last_crash: Option<CrashRecord>,
    ) -> ServiceStats {
        let (handled, handle_time, mailbox_wait) = match stats {
            Some(s) => (
                s.handled.load(Ordering::Relaxed),
                Percentiles::of(&s.handle_time),
                Percentiles::of(&s.mailbox_wait),
            ),
            None => Default::default(),
        };
        ServiceStats {
            handled,
            handle_time,
            mailbox_wait,
            queued,
            crashes,
            restarts,
            last_crash,
        }
    }
}

impl fmt::Debug for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stats")
            .field("handled", &self.handled.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_bucket_upper_bounds() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), Duration::ZERO);
        for _ in 0..98 {
            h.record(Duration::from_micros(10)); // bucket [8192, 16384) ns
        }
        h.record(Duration::from_millis(3)); // [2^21, 2^22) ns
        h.record(Duration::from_millis(3));
        assert_eq!(h.quantile(0.5), Duration::from_nanos(16384));
        assert_eq!(h.quantile(0.98), Duration::from_nanos(16384));
        assert_eq!(h.quantile(0.99), Duration::from_nanos(1 << 22));
        assert_eq!(h.quantile(1.0), Duration::from_nanos(1 << 22));
    }
}
