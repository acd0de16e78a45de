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
/// Span context is left out (the prefix already names the service), and so are modo's own
/// structured fields (`modo_child`, `modo_count`, ...), which repeat for machines what the
/// message says; other fields follow the message as ` name=value`.
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
        let level = event.metadata().level();
        if writer.has_ansi_escapes() {
            // Colour the level only where escapes are wanted (a terminal, or forced).
            let colour = match *level {
                tracing::Level::ERROR => "31",
                tracing::Level::WARN => "33",
                tracing::Level::INFO => "32",
                tracing::Level::DEBUG => "34",
                _ => "35",
            };
            write!(
                writer,
                "] [{}] [\x1b[{colour}m{level}\x1b[0m]: ",
                std::process::id()
            )?;
        } else {
            write!(writer, "] [{}] [{level}]: ", std::process::id())?;
        }
        let _ = ctx;
        let mut fields = ModeFields {
            writer: writer.by_ref(),
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        writeln!(writer)
    }
}

/// Writes an event's message, then its other fields as ` name=value`, except modo's own
/// structured fields (named `modo_*`): they say again, for machines, what the message already
/// says to a reader.
struct ModeFields<'w> {
    writer: Writer<'w>,
    result: fmt::Result,
}

impl tracing::field::Visit for ModeFields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.result = self.result.and_then(|()| self.writer.write_str(value));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        let name = field.name();
        if name.starts_with("modo_") {
            return;
        }
        self.result = self.result.and_then(|()| {
            if name == "message" {
                write!(self.writer, "{value:?}")
            } else {
                write!(self.writer, " {name}={value:?}")
            }
        });
    }
}
