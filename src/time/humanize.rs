//! Durations for people: Mode's `humanize_seconds` and `humanize_seconds_ago`.

use super::Seconds;

/// The units, largest first, with their length in seconds.
const UNITS: [(&str, f64); 4] = [
    ("day", 86_400.0),
    ("hour", 3_600.0),
    ("minute", 60.0),
    ("second", 1.0),
];

/// A duration in words: `1.50 seconds`, `1.00 minute`, `2.00 hours`, or `now` under a second.
///
/// The number is rounded to two decimals first, then written in the largest unit it reaches
/// (days, hours, minutes, seconds) with two decimals. Less than a second (after the
/// rounding) is the word "now"; [`Humanize`] has the other options.
///
/// Where modo differs from Mode: the unit is plural unless the number printed is `1.00`
/// (Mode looks at the whole part only and writes "1.50 minute"). Mode's manual shows
/// "1 minute" and "2 hours"; its code writes two decimals, and so does modo.
///
/// ```
/// use modo::time::humanize_seconds;
/// use std::time::Duration;
///
/// assert_eq!(humanize_seconds(Duration::ZERO), "now");
/// assert_eq!(humanize_seconds(Duration::from_millis(1500)), "1.50 seconds");
/// assert_eq!(humanize_seconds(60_u64), "1.00 minute");
/// assert_eq!(humanize_seconds(7200_u64), "2.00 hours");
/// ```
pub fn humanize_seconds(secs: impl Into<Seconds>) -> String {
    Humanize::new().format(secs)
}

/// A duration in the past, in words: `3.33 seconds ago`, or `just now` under a second.
///
/// ```
/// use modo::time::humanize_seconds_ago;
/// use std::time::Duration;
///
/// assert_eq!(humanize_seconds_ago(Duration::from_millis(3330)), "3.33 seconds ago");
/// assert_eq!(humanize_seconds_ago(Duration::from_millis(300)), "just now");
/// ```
pub fn humanize_seconds_ago(secs: impl Into<Seconds>) -> String {
    Humanize::ago().format(secs)
}

/// The options of [`humanize_seconds`] (Mode's keyword arguments): a prefix and a separator
/// before the number, a suffix after the unit, the word for less than a second, and whether
/// to write sub-second values instead of that word.
///
/// The prefix, separator and suffix are left out of the "now" word.
///
/// ```
/// use modo::time::Humanize;
/// use std::time::Duration;
///
/// let eta = Humanize::new().prefix("in").sep(" ");
/// assert_eq!(eta.format(Duration::from_secs(90)), "in 1.50 minutes");
/// assert_eq!(eta.format(Duration::ZERO), "now");
///
/// let precise = Humanize::new().microseconds(true);
/// assert_eq!(precise.format(Duration::from_millis(250)), "0.25 seconds");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Humanize {
    prefix: String,
    sep: String,
    suffix: String,
    now: String,
    microseconds: bool,
}

impl Default for Humanize {
    fn default() -> Self {
        Self::new()
    }
}

impl Humanize {
    /// Mode's defaults: no prefix, separator or suffix; "now" under a second.
    pub fn new() -> Self {
        Humanize {
            prefix: String::new(),
            sep: String::new(),
            suffix: String::new(),
            now: "now".to_owned(),
            microseconds: false,
        }
    }

    /// The defaults of Mode's `humanize_seconds_ago`: suffix " ago", "just now" under a
    /// second.
    pub fn ago() -> Self {
        Self::new().suffix(" ago").now("just now")
    }

    /// Written before the separator and the number.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Written between the prefix and the number.
    pub fn sep(mut self, sep: impl Into<String>) -> Self {
        self.sep = sep.into();
        self
    }

    /// Written right after the unit (include a leading space if you want one).
    pub fn suffix(mut self, suffix: impl Into<String>) -> Self {
        self.suffix = suffix.into();
        self
    }

    /// The word for less than a second (default "now").
    pub fn now(mut self, now: impl Into<String>) -> Self {
        self.now = now.into();
        self
    }

    /// With `true`, a duration above zero but under a second is written as `0.25 seconds`
    /// instead of the "now" word.
    pub fn microseconds(mut self, yes: bool) -> Self {
        self.microseconds = yes;
        self
    }

    /// The duration in words.
    pub fn format(&self, secs: impl Into<Seconds>) -> String {
        let secs = round2(secs.into().as_secs_f64());
        for (unit, length) in UNITS {
            if secs >= length {
                let number = format!("{:.2}", secs / length);
                let plural = if number == "1.00" { "" } else { "s" };
                return format!(
                    "{}{}{number} {unit}{plural}{}",
                    self.prefix, self.sep, self.suffix
                );
            }
        }
        if self.microseconds && secs > 0.0 {
            return format!(
                "{}{}{secs:.2} seconds{}",
                self.prefix, self.sep, self.suffix
            );
        }
        self.now.clone()
    }
}

/// `secs` rounded to two decimals, the way Mode does before choosing the unit (so 59.999
/// seconds is "1.00 minute", not "60.00 seconds").
fn round2(secs: f64) -> f64 {
    format!("{secs:.2}").parse().unwrap_or(secs)
}
