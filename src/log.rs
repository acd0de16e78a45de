//! Logging that names the service: Mode's `[^--Label]: message` prefix (one dash per level
//! below the root), lifecycle lines at the service's `mundane_level`, and a tracing span per
//! actor task.
//!
//! Every line is a [`tracing`] event with target `modo`; install any subscriber. [`ModeFormat`]
//! prints Mode's line format: `[time] [pid] [LEVEL]: [^--Label]: message`.

use std::fmt;

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

pub use crate::actor::log::Log;

/// Mode's line format for [`tracing_subscriber::fmt()`]:
/// `[2026-11-25T17:08:03.123Z] [4242] [INFO]: [^-App]: Starting...`.
///
/// Span context is left out (the prefix already names the service).
///
/// ```
/// let subscriber = tracing_subscriber::fmt()
///     .event_format(modo::log::ModeFormat::default())
///     .finish();
/// # drop(subscriber);
/// ```
#[derive(Debug, Default, Clone)]
pub struct ModeFormat {
    _priv: (),
}

impl<S, N> FormatEvent<S, N> for ModeFormat
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        writer.write_char('[')?;
        SystemTime.format_time(&mut writer)?;
        write!(
            writer,
            "] [{}] [{}]: ",
            std::process::id(),
            event.metadata().level()
        )?;
        ctx.format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}
