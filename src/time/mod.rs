//! Time: [`Seconds`] (Mode's ways of writing a duration) and the drift-corrected [`Timer`].

mod seconds;
mod timer;

pub use seconds::{Seconds, SecondsError};
pub use timer::{DEFAULT_MAX_DRIFT_CORRECTION, Tick, Timer};
