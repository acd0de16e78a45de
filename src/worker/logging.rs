//! The Worker's logging set-up: a tracing-subscriber registry with [`ModeFormat`] lines on
//! stderr (unless quiet) and, optionally, appended to a file; the level from the builder, else
//! `RUST_LOG`, else info.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::log::ModeFormat;

/// What the Worker was told about logging.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogConfig {
    pub(crate) level: Option<Level>,
    pub(crate) file: Option<std::path::PathBuf>,
    pub(crate) quiet: bool,
}

/// Installs the global subscriber. Returns `Ok(false)` when one was already installed (a
/// second Worker in the process keeps the first one's), `Err` when the log file cannot be
/// opened.
pub(crate) fn init(config: &LogConfig) -> std::io::Result<bool> {
    let filter = match config.level {
        Some(level) => EnvFilter::new(level.as_str()),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let stderr = (!config.quiet).then(|| {
        tracing_subscriber::fmt::layer()
            .event_format(ModeFormat::default())
            .with_writer(std::io::stderr)
    });
    let file = match &config.file {
        Some(path) => Some(open(path)?),
        None => None,
    };
    let file = file.map(|file| {
        tracing_subscriber::fmt::layer()
            .event_format(ModeFormat::default())
            .with_ansi(false)
            .with_writer(Mutex::new(file))
    });
    Ok(tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file)
        .try_init()
        .is_ok())
}

fn open(path: &Path) -> std::io::Result<std::fs::File> {
    OpenOptions::new().create(true).append(true).open(path)
}
