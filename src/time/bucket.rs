//! Rate limiting: [`TokenBucket`] (Mode's `Bucket`, `TokenBucket` and `rate_limit`) and
//! [`RateLimiter`], a bucket bound to a service's stop signal ([`Context::rate_limit`]).
//!
//! The guarantees and the differences from Mode are on [`TokenBucket`].
//!
//! # Why not `governor`
//! governor's GCRA is the same arithmetic as here, but its waiting uses real time
//! (futures-timer), which paused tokio time cannot drive, it does not say how many tokens
//! are left or how long `n` of them will take as Mode's bucket does, and its waiters are not
//! served in order. Adapting it would need our own clock and our own waiting anyway, which
//! is most of this file, for a dependency with several transitive crates.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::rate::{Rate, RateError};
use crate::wait::{StopSignal, WaitError};
use crate::{Context, Service};

/// A token bucket (Mode's `TokenBucket`): up to `capacity` tokens, one more every
/// [`Rate::interval`], starting full. Clones share one bucket.
///
/// Build it from a [`Rate`] (`"100/s"`, `"10/m"`, [`Rate::new`], [`Rate::every`]); the
/// capacity (the burst) is 1 unless set with [`with_capacity`](Self::with_capacity). Taking
/// a token either succeeds now ([`try_acquire`](Self::try_acquire), [`pour`](Self::pour):
/// never wait) or waits for it ([`acquire`](Self::acquire)). A bucket is usable on its own;
/// in a service, [`Context::rate_limit`] binds it to the stop signal.
///
/// ```
/// use modo::time::TokenBucket;
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// #[tokio::main(flavor = "current_thread", start_paused = true)]
/// async fn main() -> Result<(), modo::time::RateError> {
///     // 10 per second, bursts of up to 3.
///     let bucket = TokenBucket::with_capacity("10/s".parse()?, 3)?;
///     assert_eq!(bucket.fill_rate(), 10.0);
///     let start = Instant::now();
///     for _ in 0..3 {
///         assert!(bucket.try_acquire()); // the burst
///     }
///     assert!(!bucket.pour(1)); // empty: Mode's pour never waits either
///     assert_eq!(bucket.expected_time(1), Some(Duration::from_millis(100)));
///     bucket.acquire().await; // waits for the next token
///     assert_eq!(start.elapsed(), Duration::from_millis(100));
///     Ok(())
/// }
/// ```
///
/// # Invariants
/// - The bucket's whole state is one instant, the time at which it will be full again, read
///   and written under a mutex that no await and no user code runs under. Every way of
///   taking tokens moves it forward by `n` intervals, so over any stretch of time `t` no more
///   than `capacity + t / interval` tokens are handed out, however many tasks share it.
/// - Waiters are served in the order their `acquire` was first polled: an `acquire` reserves
///   its token at once (the bucket may owe tokens) and sleeps until it is due, so a later
///   `acquire`, `try_acquire` or `pour` cannot take it first.
/// - A waiting `acquire` that is dropped (cancelled, or stopped through [`RateLimiter`])
///   gives its token back. Waiters already queued keep their times; the token returned goes
///   to the next caller.
/// - Time is tokio's clock ([`tokio::time::Instant`]), so paused test time drives it.
///
/// # Where modo differs from Mode
/// - Mode's `capacity` and `fill_rate` arguments are ignored by its own code and its
///   capacity is the `over` argument (1.0 by default). modo keeps the same default (one
///   token: calls spaced evenly, no burst) and lets you set a capacity
///   ([`with_capacity`](Self::with_capacity)); `over` is the rate's own period (`"10/m"`).
/// - Mode's `tokens` moves its clock only while the bucket is not full, so after the bucket
///   sat full the token just poured comes back at once; modo's single instant has no such
///   state.
/// - Mode's `async with bucket` sleeps for the expected time and takes no token; modo's
///   `acquire` reserves the token, so concurrent callers cannot all wake for the same one.
#[derive(Clone)]
pub struct TokenBucket {
    inner: Arc<Inner>,
}

struct Inner {
    rate: Rate,
    capacity: u32,
    /// When the bucket will be full again (in the past: it is full). Reservations push it
    /// past `now + capacity x interval`: the bucket then owes tokens to waiters.
    full_at: Mutex<Instant>,
}

impl TokenBucket {
    /// A bucket at `rate` holding one token (Mode's default capacity): calls are spaced by
    /// [`Rate::interval`], with no burst.
    pub fn new(rate: Rate) -> Self {
        Self::build(rate, 1)
    }

    /// A bucket at `rate` holding up to `capacity` tokens (the burst).
    ///
    /// # Errors
    /// [`RateError::ZeroCapacity`]; [`RateError::Invalid`] when filling it would take more
    /// than a hundred years.
    pub fn with_capacity(rate: Rate, capacity: u32) -> Result<Self, RateError> {
        if capacity == 0 {
            return Err(RateError::ZeroCapacity);
        }
        if rate.fill_time(capacity).is_none() {
            return Err(RateError::Invalid {
                input: format!("{rate} with capacity {capacity}"),
                reason: "it would take more than a hundred years to fill",
            });
        }
        Ok(Self::build(rate, capacity))
    }

    fn build(rate: Rate, capacity: u32) -> Self {
        TokenBucket {
            inner: Arc::new(Inner {
                rate,
                capacity,
                full_at: Mutex::new(Instant::now()),
            }),
        }
    }

    /// The rate tokens come back at.
    pub fn rate(&self) -> Rate {
        self.inner.rate
    }

    /// Tokens per second (Mode's `fill_rate`).
    pub fn fill_rate(&self) -> f64 {
        self.inner.rate.per_sec()
    }

    /// The most tokens the bucket holds (the burst).
    pub fn capacity(&self) -> u32 {
        self.inner.capacity
    }

    /// How many tokens could be taken now (Mode's `tokens`): fractional while one is coming
    /// back, 0 while waiters are owed tokens.
    pub fn tokens(&self) -> f64 {
        let now = Instant::now();
        let full_at = *self.lock();
        let capacity = f64::from(self.inner.capacity);
        let missing = full_at.saturating_duration_since(now).as_nanos() as f64
            / self.inner.rate.interval().as_nanos() as f64;
        (capacity - missing).clamp(0.0, capacity)
    }

    /// Takes one token if there is one now; never waits.
    pub fn try_acquire(&self) -> bool {
        self.pour(1)
    }

    /// Takes `n` tokens if there are `n` now, else none (Mode's `pour`); never waits.
    /// Always `false` when `n` is more than the capacity; `true` for 0.
    pub fn pour(&self, n: u32) -> bool {
        if n > self.inner.capacity {
            return false;
        }
        if n == 0 {
            return true;
        }
        let now = Instant::now();
        let mut full_at = self.lock();
        if self.due(*full_at, now, n) > now {
            return false;
        }
        *full_at = self.after_taking(*full_at, now, n);
        true
    }

    /// How long until `n` tokens could be taken (Mode's `expected_time`), counting the
    /// tokens owed to waiters; zero if they are there now. `None` when `n` is more than the
    /// capacity (never).
    pub fn expected_time(&self, n: u32) -> Option<Duration> {
        if n > self.inner.capacity {
            return None;
        }
        let now = Instant::now();
        let full_at = *self.lock();
        Some(self.due(full_at, now, n).saturating_duration_since(now))
    }

    /// Waits for a token and takes it. Callers are served in the order their `acquire` was
    /// first polled.
    ///
    /// # Cancel safety
    /// Cancel safe: dropped before it returns, it takes no token (the one it had reserved
    /// goes back to the bucket).
    pub async fn acquire(&self) {
        self.take(1).await
    }

    /// Waits for `n` tokens and takes them all at once.
    ///
    /// # Errors
    /// [`RateError::OverCapacity`] at once when `n` is more than the capacity (it could never
    /// be served).
    ///
    /// # Cancel safety
    /// Cancel safe, as [`acquire`](Self::acquire).
    pub async fn acquire_n(&self, n: u32) -> Result<(), RateError> {
        if n > self.inner.capacity {
            return Err(RateError::OverCapacity {
                wanted: n,
                capacity: self.inner.capacity,
            });
        }
        self.take(n).await;
        Ok(())
    }

    /// [`acquire`](Self::acquire), or less if the service behind `stop` is told to stop
    /// first (then no token is taken).
    ///
    /// # Errors
    /// [`WaitError::Stopped`], also when the service was already stopping.
    ///
    /// # Cancel safety
    /// Cancel safe, as [`acquire`](Self::acquire).
    pub async fn acquire_until_stopped(&self, stop: &StopSignal) -> Result<(), WaitError> {
        stop.wait(self.take(1)).await
    }

    /// This bucket bound to a stop signal: a [`RateLimiter`] whose waits end when the
    /// service stops. [`Context::rate_limit`] does this with the service's own signal.
    pub fn bind(&self, stop: StopSignal) -> RateLimiter {
        RateLimiter {
            bucket: self.clone(),
            stop,
        }
    }

    async fn take(&self, n: u32) {
        if n == 0 {
            return;
        }
        let due = {
            let now = Instant::now();
            let mut full_at = self.lock();
            let due = self.due(*full_at, now, n);
            *full_at = self.after_taking(*full_at, now, n);
            if due <= now {
                return;
            }
            due
        };
        let mut reservation = Reservation {
            bucket: self,
            tokens: n,
        };
        tokio::time::sleep_until(due).await;
        reservation.tokens = 0; // served: nothing to give back
    }

    /// When `n` tokens will be there: once the bucket is at most `capacity - n` tokens short
    /// of full.
    fn due(&self, full_at: Instant, now: Instant, n: u32) -> Instant {
        let slack = self.intervals(self.inner.capacity - n);
        // `checked_sub` fails only for a time before the clock's origin: long past.
        full_at.max(now).checked_sub(slack).unwrap_or(now)
    }

    fn after_taking(&self, full_at: Instant, now: Instant, n: u32) -> Instant {
        full_at.max(now) + self.intervals(n)
    }

    fn intervals(&self, n: u32) -> Duration {
        // Cannot overflow: n <= capacity and capacity x interval <= 100 years.
        self.inner.rate.interval() * n
    }

    fn lock(&self) -> MutexGuard<'_, Instant> {
        // No code that can panic runs under the lock; a poisoned instant is still valid.
        self.inner.full_at.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A token reserved by a waiting `acquire`; given back if the wait is dropped.
struct Reservation<'a> {
    bucket: &'a TokenBucket,
    tokens: u32,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.tokens == 0 {
            return;
        }
        let back = self.bucket.intervals(self.tokens);
        let mut full_at = self.bucket.lock();
        *full_at = full_at.checked_sub(back).unwrap_or(*full_at);
    }
}

impl From<Rate> for TokenBucket {
    /// [`TokenBucket::new`]: capacity 1.
    fn from(rate: Rate) -> Self {
        TokenBucket::new(rate)
    }
}

/// Parses a [`Rate`] (`"100/s"`) into a bucket of capacity 1.
impl FromStr for TokenBucket {
    type Err = RateError;
    fn from_str(s: &str) -> Result<Self, RateError> {
        Ok(TokenBucket::new(s.parse()?))
    }
}

impl fmt::Debug for TokenBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenBucket")
            .field("rate", &self.inner.rate)
            .field("capacity", &self.inner.capacity)
            .field("tokens", &self.tokens())
            .finish()
    }
}

/// A [`TokenBucket`] bound to a service's stop signal: [`acquire`](Self::acquire) ends with
/// [`WaitError::Stopped`] as soon as the service is told to stop. Get one from
/// [`Context::rate_limit`] (or [`TokenBucket::bind`]). Clones share the bucket.
///
/// ```
/// use modo::prelude::*;
/// use modo::time::{RateLimiter, TokenBucket};
///
/// struct Poller;
///
/// impl Service for Poller {
///     async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
///         let limiter: RateLimiter = ctx.rate_limit("10/s".parse::<TokenBucket>()?);
///         ctx.spawn(async move {
///             // At most 10 polls a second, until the service stops.
///             while limiter.acquire().await.is_ok() {
///                 // poll something
///             }
///         });
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), modo::Error> {
/// let system = System::new();
/// let poller = system.spawn(Poller).await?;
/// tokio::time::sleep(std::time::Duration::from_secs(1)).await;
/// poller.stop().await?; // the waiting acquire ends with Stopped
/// # system.shutdown().await }
/// ```
#[derive(Debug, Clone)]
pub struct RateLimiter {
    bucket: TokenBucket,
    stop: StopSignal,
}

impl RateLimiter {
    /// Waits for a token and takes it, unless the service is told to stop first.
    ///
    /// # Errors
    /// [`WaitError::Stopped`] when the service is stopping (also when it already was): no
    /// token is taken.
    ///
    /// # Cancel safety
    /// Cancel safe: dropped before it returns, it takes no token.
    pub async fn acquire(&self) -> Result<(), WaitError> {
        self.bucket.acquire_until_stopped(&self.stop).await
    }

    /// Takes a token if there is one now; never waits (and does not look at the stop
    /// signal).
    pub fn try_acquire(&self) -> bool {
        self.bucket.try_acquire()
    }

    /// The bucket (for [`pour`](TokenBucket::pour), [`tokens`](TokenBucket::tokens),
    /// [`expected_time`](TokenBucket::expected_time) and
    /// [`acquire_n`](TokenBucket::acquire_n); `stop_signal().wait(bucket().acquire_n(n))`
    /// waits for `n` tokens until the stop).
    pub fn bucket(&self) -> &TokenBucket {
        &self.bucket
    }

    /// The stop signal the waits end on.
    pub fn stop_signal(&self) -> &StopSignal {
        &self.stop
    }
}

impl<A: Service> Context<A> {
    /// A rate limiter for this service: `bucket` (a [`TokenBucket`], or a [`Rate`] for a
    /// bucket of capacity 1) bound to this run's stop signal, so its
    /// [`acquire`](RateLimiter::acquire) ends when the service is told to stop. Pass a clone
    /// of one bucket to several services to share a limit between them.
    ///
    /// See [`RateLimiter`] for an example.
    pub fn rate_limit(&self, bucket: impl Into<TokenBucket>) -> RateLimiter {
        bucket.into().bind(self.stop_signal())
    }
}
