//! Logging set-up for a program, with or without a [`Worker`](crate::Worker): Mode's line
//! format ([`ModeFormat`]: `[time] [pid] [LEVEL]: [^--Label]: message`) on stderr and/or
//! appended to a file, at a level from the configuration, else `RUST_LOG`, else info.
//!
//! The Worker uses the same set-up ([`Worker::logging`](crate::Worker::logging) and its
//! `loglevel`/`logfile`/`quiet` options). A program without a Worker calls [`init`]:
//!
//! ```no_run
//! use modo::logging::{self, LogConfig};
//!
//! fn main() -> Result<(), modo::logging::LogInitError> {
//!     logging::init(LogConfig::new().level(tracing::Level::DEBUG).file("app.log"))?;
//!     tracing::info!(target: "modo", "[^App]: hello");
//!     Ok(())
//! }
//! ```
//!
//! Colour: the stderr lines carry ANSI escapes only when stderr is a terminal (checked with
//! [`std::io::IsTerminal`]), unless [`LogConfig::ansi`] says otherwise; a pipe or a file gets
//! plain text. The log file never gets escapes.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing::{Dispatch, Level};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::log::ModeFormat;

/// How to log: level, file, quiet, colour. Build it with the methods, then [`init`] it
/// (install it for the process) or make a [`Dispatch`] of it
/// ([`dispatch`](Self::dispatch), for a scope or a test).
///
/// ```
/// use modo::logging::LogConfig;
///
/// let path = std::env::temp_dir().join(format!("modo-doc-{}.log", std::process::id()));
/// let config = LogConfig::new().level(tracing::Level::INFO).file(&path).quiet(true);
/// let dispatch = config.dispatch()?;
/// tracing::dispatcher::with_default(&dispatch, || {
///     tracing::info!(target: "modo", "[^App]: Starting...");
/// });
/// let written = std::fs::read_to_string(&path).unwrap();
/// assert!(written.ends_with("[INFO]: [^App]: Starting...\n"));
/// # std::fs::remove_file(&path).ok();
/// # Ok::<(), modo::logging::LogInitError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct LogConfig {
    level: Option<Level>,
    file: Option<PathBuf>,
    quiet: bool,
    ansi: Option<bool>,
}

/// Why the logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogInitError {
    /// The log file could not be opened for appending.
    #[error("cannot open the log file {}: {source}", path.display())]
    OpenFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A global tracing subscriber was already installed (by an earlier [`init`] or
    /// anything else); it stays.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

impl LogConfig {
    /// The defaults: level from `RUST_LOG` (an `EnvFilter` directive), else info; stderr;
    /// no file; colour when stderr is a terminal.
    pub fn new() -> Self {
        Self::default()
    }

    /// The most verbose level written (instead of `RUST_LOG`).
    pub fn level(mut self, level: Level) -> Self {
        self.level = Some(level);
        self
    }

    /// Also appends the lines to this file (created if missing), without escapes.
    pub fn file(mut self, path: impl Into<PathBuf>) -> Self {
        self.file = Some(path.into());
        self
    }

    /// With `true`, nothing is written to stderr (a log file still gets the lines).
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// Forces ANSI escapes on stderr on (`true`) or off (`false`). Default: on only when
    /// stderr is a terminal.
    pub fn ansi(mut self, ansi: bool) -> Self {
        self.ansi = Some(ansi);
        self
    }

    /// The subscriber this configuration describes, not installed: for
    /// `tracing::dispatcher::with_default` / `set_default`.
    ///
    /// # Errors
    /// [`LogInitError::OpenFile`].
    pub fn dispatch(&self) -> Result<Dispatch, LogInitError> {
        self.build().map(Dispatch::new)
    }

    /// Installs this configuration as the process's global subscriber (see [`init`]).
    ///
    /// # Errors
    /// [`LogInitError::OpenFile`]; [`LogInitError::AlreadyInstalled`] when a global
    /// subscriber is already set (it is kept).
    pub fn init(&self) -> Result<(), LogInitError> {
        self.build()?
            .try_init()
            .map_err(|_| LogInitError::AlreadyInstalled)
    }

    fn build(&self) -> Result<impl tracing::Subscriber + Send + Sync + 'static, LogInitError> {
        let filter = match self.level {
            Some(level) => EnvFilter::new(level.as_str()),
            None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        };
        let ansi = self.ansi.unwrap_or_else(|| std::io::stderr().is_terminal());
        let stderr = (!self.quiet).then(|| {
            tracing_subscriber::fmt::layer()
                .event_format(ModeFormat::default())
                .with_ansi(ansi)
                .with_writer(std::io::stderr)
        });
        let file = match &self.file {
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
            .with(file))
    }
}

/// Installs `config` as the process's global tracing subscriber: Mode's line format on
/// stderr (unless quiet) and in the log file (if any).
///
/// # Errors
/// [`LogInitError::OpenFile`]; [`LogInitError::AlreadyInstalled`] when a global subscriber
/// is already set (it is kept).
pub fn init(config: LogConfig) -> Result<(), LogInitError> {
    config.init()
}

fn open(path: &Path) -> Result<std::fs::File, LogInitError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| LogInitError::OpenFile {
            path: path.to_owned(),
            source,
        })
}

/// Routes panics through the log: each panic becomes one `ERROR` line of target `modo`, prefixed
/// with the label of the service whose task (or background task) panicked, instead of the
/// default hook's message printed on top of the log. The backtrace follows on the next lines
/// when `RUST_BACKTRACE` (or `RUST_LIB_BACKTRACE`) asks for it. Replaces the process's panic
/// hook (see [`std::panic::set_hook`]); the [`Worker`](crate::Worker) installs it with
/// [`Worker::log_panics`](crate::Worker::log_panics).
///
/// A panic in a service is still a crash of that service: this changes only how it is
/// printed.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let message = panic_message(info.payload());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let prefix = crate::actor::cell::current_service()
            .map(|s| format!("{}: ", s.core().prefix()))
            .unwrap_or_default();
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            tracing::error!(target: "modo", "{prefix}panicked{at}: {message}\n{backtrace}");
        } else {
            tracing::error!(target: "modo", "{prefix}panicked{at}: {message}");
        }
    }));
}

/// The text of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "<non-string panic payload>"
    }
}
