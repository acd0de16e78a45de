//! [`Seconds`]: a duration given the ways Mode accepts one.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// A duration, accepted in every form Mode's `Seconds` takes:
///
/// | input | meaning |
/// |---|---|
/// | a [`Duration`] | itself |
/// | an integer or float number of seconds (`2`, `1.5`) | that many seconds |
/// | a number string (`"1.203"`) | that many seconds |
/// | a rate string `"N/unit"`, unit `s`, `m`, `h` or `d` | N divided by the unit's length in seconds, as Mode does: `"10/s"` is 10 s, `"2/m"` is 1/30 s, `"100/h"` is 0.0278 s, `"100/d"` is 0.00116 s |
///
/// Negative, not-a-number and infinite values, unknown units and anything else are a
/// [`SecondsError`] that names the input, never a panic.
///
/// ```
/// use modo::Seconds;
/// use std::time::Duration;
///
/// assert_eq!(Seconds::from(Duration::from_millis(1500)).as_duration(), Duration::from_millis(1500));
/// assert_eq!(Seconds::from(3_u64).as_secs_f64(), 3.0);
/// assert_eq!("1.203".parse::<Seconds>()?.as_duration(), Duration::from_millis(1203));
/// assert_eq!("10/s".parse::<Seconds>()?.as_secs_f64(), 10.0);
/// assert!(("100/h".parse::<Seconds>()?.as_secs_f64() - 0.0278).abs() < 1e-4);
/// assert!(Seconds::try_from(-1.0_f64).is_err());
///
/// let err = "10/fortnight".parse::<Seconds>().unwrap_err();
/// assert_eq!(err.input(), "10/fortnight");
/// # Ok::<(), modo::SecondsError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Seconds(Duration);

/// A value that is not a valid [`Seconds`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason}")]
pub struct SecondsError {
    input: String,
    reason: &'static str,
}

impl SecondsError {
    fn new(input: impl Into<String>, reason: &'static str) -> Self {
        SecondsError {
            input: input.into(),
            reason,
        }
    }

    /// The input that was refused.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Why it was refused.
    pub fn reason(&self) -> &str {
        self.reason
    }
}

impl Seconds {
    /// The duration.
    pub fn as_duration(self) -> Duration {
        self.0
    }

    /// The duration in seconds, as Mode's `want_seconds` returns it.
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }

    /// From a float number of seconds.
    ///
    /// # Errors
    /// Negative, NaN, infinite, or too large for a [`Duration`].
    pub fn from_secs_f64(secs: f64) -> Result<Self, SecondsError> {
        Self::checked(secs, || secs.to_string())
    }

    fn checked(secs: f64, input: impl FnOnce() -> String) -> Result<Self, SecondsError> {
        if secs.is_nan() {
            return Err(SecondsError::new(input(), "not a number"));
        }
        if secs < 0.0 {
            return Err(SecondsError::new(input(), "negative"));
        }
        Duration::try_from_secs_f64(secs)
            .map(Seconds)
            .map_err(|_| SecondsError::new(input(), "too large"))
    }
}

/// The length of a rate unit in seconds, by Mode's names.
fn unit_seconds(unit: &str) -> Option<f64> {
    match unit {
        "s" => Some(1.0),
        "m" => Some(60.0),
        "h" => Some(3_600.0),
        "d" => Some(86_400.0),
        _ => None,
    }
}

fn parse_number(s: &str, input: &str) -> Result<f64, SecondsError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(SecondsError::new(input, "empty number"));
    }
    // Rust's float parser also takes "inf" and "nan"; Mode's numbers are plain decimals.
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(SecondsError::new(input, "not a number"));
    }
    s.parse::<f64>()
        .map_err(|_| SecondsError::new(input, "not a number"))
}

impl FromStr for Seconds {
    type Err = SecondsError;

    fn from_str(input: &str) -> Result<Self, SecondsError> {
        let secs = match input.split_once('/') {
            None => parse_number(input, input)?,
            Some((n, unit)) => {
                let n = parse_number(n, input)?;
                let per = unit_seconds(unit.trim()).ok_or_else(|| {
                    SecondsError::new(input, "unknown rate unit (use s, m, h or d)")
                })?;
                n / per
            }
        };
        Seconds::checked(secs, || input.to_owned())
    }
}

impl TryFrom<&str> for Seconds {
    type Error = SecondsError;
    fn try_from(s: &str) -> Result<Self, SecondsError> {
        s.parse()
    }
}

impl TryFrom<String> for Seconds {
    type Error = SecondsError;
    fn try_from(s: String) -> Result<Self, SecondsError> {
        s.parse()
    }
}

impl TryFrom<f64> for Seconds {
    type Error = SecondsError;
    fn try_from(secs: f64) -> Result<Self, SecondsError> {
        Seconds::from_secs_f64(secs)
    }
}

impl TryFrom<f32> for Seconds {
    type Error = SecondsError;
    fn try_from(secs: f32) -> Result<Self, SecondsError> {
        Seconds::from_secs_f64(f64::from(secs))
    }
}

impl From<Duration> for Seconds {
    fn from(d: Duration) -> Self {
        Seconds(d)
    }
}

impl From<u64> for Seconds {
    fn from(secs: u64) -> Self {
        Seconds(Duration::from_secs(secs))
    }
}

impl From<u32> for Seconds {
    fn from(secs: u32) -> Self {
        Seconds(Duration::from_secs(u64::from(secs)))
    }
}

impl From<Seconds> for Duration {
    fn from(s: Seconds) -> Self {
        s.0
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> f64 {
        s.parse::<Seconds>().unwrap().as_secs_f64()
    }

    #[test]
    fn numbers_and_rates() {
        assert_eq!(secs("0"), 0.0);
        assert_eq!(secs("1.5"), 1.5);
        assert_eq!(secs(" 2 "), 2.0);
        assert_eq!(secs("10/s"), 10.0);
        assert!((secs("2/m") - 2.0 / 60.0).abs() < 1e-9);
        assert!((secs("10.3/h") - 10.3 / 3600.0).abs() < 1e-9);
        assert!((secs("100/d") - 100.0 / 86400.0).abs() < 1e-9);
    }

    #[test]
    fn rejects_bad_input_naming_it() {
        for bad in [
            "", "abc", "1.2.3", "-1", "10/x", "10/", "/s", "inf", "NaN", "1e400", "5/s/s",
        ] {
            let err = bad.parse::<Seconds>().unwrap_err();
            assert_eq!(err.input(), bad, "{bad:?}");
            assert!(err.to_string().contains(&format!("{bad:?}")));
        }
        assert_eq!(
            Seconds::try_from(-0.5_f64).unwrap_err().reason(),
            "negative"
        );
        assert!(Seconds::try_from(f64::NAN).is_err());
        assert!(Seconds::try_from(f64::INFINITY).is_err());
    }
}
