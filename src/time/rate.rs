//! [`Rate`]: how many events per how long, as Mode writes it (`"100/s"`, `"10/m"`, `"2/h"`,
//! `"0.5/d"`, or a plain number meaning per second).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::Seconds;

/// The longest time a bucket may take to fill from empty (interval x capacity): 100 years.
/// Beyond it the arithmetic on instants could overflow; no real rate comes near it.
const MAX_FILL_TIME: Duration = Duration::from_secs(100 * 365 * 86_400);

/// A rate: `count` events per `per` (Mode's rate strings and `rate_limit(rate, over)`).
///
/// | input | meaning |
/// |---|---|
/// | `"100/s"`, `"10/m"`, `"2/h"`, `"0.5/d"` | that many per second, minute, hour, day |
/// | `"100"` | 100 per second (Mode's `rate("100")`) |
/// | [`Rate::new(10, Duration::from_secs(1))`](Rate::new) | 10 per second |
/// | [`Rate::every(Duration::from_millis(250))`](Rate::every) | one every 250 ms |
/// | a [`Seconds`] (what Mode's `want_seconds` returns) | that many per second |
///
/// The count may be fractional (`"0.5/s"` is one every two seconds). Zero, negative and
/// unreadable rates, unknown units, and rates faster than one per nanosecond are a
/// [`RateError`] naming the input.
///
/// ```
/// use modo::time::Rate;
/// use std::time::Duration;
///
/// let r: Rate = "10/m".parse()?;
/// assert_eq!(r.count(), 10.0);
/// assert_eq!(r.per(), Duration::from_secs(60));
/// assert_eq!(r.interval(), Duration::from_secs(6));
/// assert!((r.per_sec() - 10.0 / 60.0).abs() < 1e-12);
///
/// assert_eq!("100".parse::<Rate>()?, Rate::new(100, Duration::from_secs(1))?);
/// assert_eq!(Rate::every(Duration::from_millis(250))?.per_sec(), 4.0);
/// assert!("10/fortnight".parse::<Rate>().is_err());
/// assert!("0/s".parse::<Rate>().is_err());
/// # Ok::<(), modo::time::RateError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    count: f64,
    per: Duration,
    interval: Duration,
}

/// A rate or a bucket setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RateError {
    /// The count is not a number (or is negative): the cause says why.
    #[error("invalid rate {input:?}")]
    Number {
        /// The whole input.
        input: String,
        /// Why its number was refused.
        #[source]
        source: super::SecondsError,
    },
    /// The rate cannot be used: the reason says why.
    #[error("invalid rate {input:?}: {reason}")]
    Invalid {
        /// The whole input (or the rate as given to a constructor).
        input: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A bucket must hold at least one token.
    #[error("a token bucket's capacity must be at least 1")]
    ZeroCapacity,
    /// More tokens were asked for at once than the bucket can ever hold.
    #[error("{wanted} tokens asked for at once; the bucket holds at most {capacity}")]
    OverCapacity {
        /// The tokens asked for.
        wanted: u32,
        /// The bucket's capacity.
        capacity: u32,
    },
}

impl RateError {
    fn invalid(input: impl Into<String>, reason: &'static str) -> Self {
        RateError::Invalid {
            input: input.into(),
            reason,
        }
    }
}

impl Rate {
    /// `count` events per `per`.
    ///
    /// # Errors
    /// [`RateError::Invalid`] when `count` or `per` is zero, or the rate is faster than one
    /// per nanosecond.
    pub fn new(count: u32, per: impl Into<Duration>) -> Result<Rate, RateError> {
        let per = per.into();
        Self::checked(f64::from(count), per, || format!("{count} per {per:?}"))
    }

    /// `count` events per second (Mode's `rate_limit(count)`); the count may be fractional.
    ///
    /// # Errors
    /// [`RateError::Invalid`] when `count` is zero, negative, not a number or infinite, or
    /// faster than one per nanosecond.
    pub fn per_second(count: f64) -> Result<Rate, RateError> {
        Self::checked(count, Duration::from_secs(1), || format!("{count}/s"))
    }

    /// One event every `interval`.
    ///
    /// # Errors
    /// [`RateError::Invalid`] when `interval` is zero.
    pub fn every(interval: impl Into<Duration>) -> Result<Rate, RateError> {
        let interval = interval.into();
        Self::checked(1.0, interval, || format!("1 per {interval:?}"))
    }

    fn checked(
        count: f64,
        per: Duration,
        input: impl FnOnce() -> String,
    ) -> Result<Rate, RateError> {
        if !count.is_finite() || count <= 0.0 {
            return Err(RateError::invalid(
                input(),
                "the count must be a number above zero",
            ));
        }
        if per.is_zero() {
            return Err(RateError::invalid(input(), "the period must be above zero"));
        }
        // Rounded up to the nanosecond, so the bucket never lets through more than the rate.
        let exact = per.as_nanos() as f64 / count;
        let nanos = exact.ceil();
        if exact < 1.0 {
            return Err(RateError::invalid(
                input(),
                "faster than one per nanosecond",
            ));
        }
        if nanos > MAX_FILL_TIME.as_nanos() as f64 {
            return Err(RateError::invalid(
                input(),
                "slower than one per hundred years",
            ));
        }
        Ok(Rate {
            count,
            per,
            interval: Duration::from_nanos(nanos as u64),
        })
    }

    /// How many events per [`per`](Self::per).
    pub fn count(&self) -> f64 {
        self.count
    }

    /// The period the count is given for.
    pub fn per(&self) -> Duration {
        self.per
    }

    /// Events per second (Mode's `fill_rate`).
    pub fn per_sec(&self) -> f64 {
        self.count / self.per.as_secs_f64()
    }

    /// The time between two events at this rate, rounded up to the nanosecond.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Whether a bucket of `capacity` at this rate takes at most [`MAX_FILL_TIME`] to fill.
    pub(crate) fn fill_time(&self, capacity: u32) -> Option<Duration> {
        self.interval
            .checked_mul(capacity)
            .filter(|t| *t <= MAX_FILL_TIME)
    }
}

/// The length of a rate unit, by Mode's names.
fn unit(name: &str) -> Option<Duration> {
    match name {
        "s" => Some(Duration::from_secs(1)),
        "m" => Some(Duration::from_secs(60)),
        "h" => Some(Duration::from_secs(3_600)),
        "d" => Some(Duration::from_secs(86_400)),
        _ => None,
    }
}

impl FromStr for Rate {
    type Err = RateError;

    fn from_str(input: &str) -> Result<Rate, RateError> {
        let (number, per) = match input.split_once('/') {
            None => (input, Duration::from_secs(1)),
            Some((number, name)) => {
                let per = unit(name.trim()).ok_or_else(|| {
                    RateError::invalid(input, "unknown rate unit (use s, m, h or d)")
                })?;
                (number, per)
            }
        };
        // The count reads like Mode's numbers, which `Seconds` already parses and checks.
        let count = number
            .parse::<Seconds>()
            .map_err(|source| RateError::Number {
                input: input.to_owned(),
                source,
            })?
            .as_secs_f64();
        Rate::checked(count, per, || input.to_owned())
    }
}

impl TryFrom<&str> for Rate {
    type Error = RateError;
    fn try_from(s: &str) -> Result<Rate, RateError> {
        s.parse()
    }
}

impl TryFrom<String> for Rate {
    type Error = RateError;
    fn try_from(s: String) -> Result<Rate, RateError> {
        s.parse()
    }
}

/// Reads a [`Seconds`] value as a count per second: what a rate string passed through
/// Mode's `want_seconds` means (`"10/m"` becomes 0.1667 per second).
impl TryFrom<Seconds> for Rate {
    type Error = RateError;
    fn try_from(s: Seconds) -> Result<Rate, RateError> {
        Rate::per_second(s.as_secs_f64())
    }
}

/// `10/s`, `10/m`, `10/h`, `10/d` for a whole unit, else `10 per 250ms`.
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.per.as_secs() {
            _ if self.per.subsec_nanos() != 0 => None,
            1 => Some("s"),
            60 => Some("m"),
            3_600 => Some("h"),
            86_400 => Some("d"),
            _ => None,
        };
        match name {
            Some(name) => write!(f, "{}/{name}", self.count),
            None => write!(f, "{} per {:?}", self.count, self.per),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_round_up_so_the_rate_is_never_exceeded() {
        let third: Rate = "3/s".parse().unwrap();
        assert_eq!(third.interval(), Duration::from_nanos(333_333_334));
        assert!(third.interval() * 3 >= Duration::from_secs(1));
        assert_eq!(
            "1000000000/s".parse::<Rate>().unwrap().interval(),
            Duration::from_nanos(1)
        );
        assert!("2000000000/s".parse::<Rate>().is_err());
    }

    #[test]
    fn display_round_trips_whole_units() {
        for s in ["10/s", "10/m", "2.5/h", "1/d"] {
            let r: Rate = s.parse().unwrap();
            assert_eq!(r.to_string(), s);
            assert_eq!(r.to_string().parse::<Rate>().unwrap(), r);
        }
        assert_eq!(
            Rate::every(Duration::from_millis(250)).unwrap().to_string(),
            "1 per 250ms"
        );
    }
}
