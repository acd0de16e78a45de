//! Time: [`Seconds`] (Mode's ways of writing a duration), the drift-corrected [`Timer`],
//! [`Rate`] and the rate-limiting [`TokenBucket`] / [`RateLimiter`] (Mode's `Bucket` and
//! `rate_limit`), and [`humanize_seconds`] (durations in words).

mod bucket;
mod humanize;
mod rate;
mod seconds;
mod timer;

pub use bucket::{RateLimiter, TokenBucket};
pub use humanize::{Humanize, humanize_seconds, humanize_seconds_ago};
pub use rate::{Rate, RateError};
pub use seconds::{Seconds, SecondsError};
pub use timer::{DEFAULT_MAX_DRIFT_CORRECTION, Tick, Timer};
