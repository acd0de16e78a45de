//! A service's logger: Mode's `[^--Label]: message` prefix (one dash per level below the
//! root), lifecycle lines at the service's `mundane_level`, and the tracing span of each actor
//! task. Every line is a [`tracing`] event with target `modo`.

use std::fmt::{self, Display};

use tracing::{Level, Span};

use super::addr::ServiceRef;
use super::cell::Core;

/// Emits a `modo` event at a level known only at run time.
macro_rules! event_at {
    ($level:expr, $($arg:tt)+) => {
        match $level {
            Level::ERROR => tracing::error!(target: "modo", $($arg)+),
            Level::WARN => tracing::warn!(target: "modo", $($arg)+),
            Level::INFO => tracing::info!(target: "modo", $($arg)+),
            Level::DEBUG => tracing::debug!(target: "modo", $($arg)+),
            _ => tracing::trace!(target: "modo", $($arg)+),
        }
    };
}

/// A service's logger: each line is prefixed with the service's `[^--Label]`.
///
/// Get one from [`Context::log`](crate::Context::log).
#[derive(Clone, Copy)]
pub struct Log<'a> {
    core: &'a Core,
}

impl fmt::Debug for Log<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Log")
            .field(&self.core.prefix().to_string())
            .finish()
    }
}

impl<'a> Log<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Log { core }
    }

    /// The prefix, e.g. `[^--Webserver]`.
    pub fn prefix(&self) -> String {
        self.core.prefix().to_string()
    }

    /// Logs `msg` at `level`.
    pub fn log(&self, level: Level, msg: impl Display) {
        event_at!(level, "{}: {}", self.core.prefix(), msg);
    }

    /// Logs at error level.
    pub fn error(&self, msg: impl Display) {
        self.log(Level::ERROR, msg)
    }

    /// Logs at warn level.
    pub fn warn(&self, msg: impl Display) {
        self.log(Level::WARN, msg)
    }

    /// Logs at info level.
    pub fn info(&self, msg: impl Display) {
        self.log(Level::INFO, msg)
    }

    /// Logs at debug level.
    pub fn debug(&self, msg: impl Display) {
        self.log(Level::DEBUG, msg)
    }

    /// Logs at the service's `mundane_level` (the level of its lifecycle lines).
    pub fn mundane(&self, msg: impl Display) {
        self.log(self.core.settings.mundane_level(), msg)
    }
}

/// A service's logger that owns what it needs: move it into a background task, where the
/// [`Context`](crate::Context) (and so [`Context::log`](crate::Context::log)) cannot go.
/// Get one from [`Context::logger`](crate::Context::logger).
///
/// ```
/// use modo::prelude::*;
///
/// struct Poller;
/// impl Service for Poller {
///     async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
///         let log = ctx.logger();
///         ctx.spawn(async move {
///             log.info("polling"); // [^Poller]: polling
///         });
///         Ok(())
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), modo::Error> {
/// # let system = System::new();
/// # system.spawn(Poller).await?;
/// # system.shutdown().await }
/// ```
#[derive(Clone)]
pub struct Logger {
    service: ServiceRef,
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Logger").field(&self.prefix()).finish()
    }
}

impl Logger {
    pub(crate) fn new(service: ServiceRef) -> Self {
        Logger { service }
    }

    fn log_ref(&self) -> Log<'_> {
        Log::new(self.service.core())
    }

    /// The prefix, e.g. `[^--Webserver]`.
    pub fn prefix(&self) -> String {
        self.log_ref().prefix()
    }

    /// Logs `msg` at `level`.
    pub fn log(&self, level: Level, msg: impl Display) {
        self.log_ref().log(level, msg)
    }

    /// Logs at error level.
    pub fn error(&self, msg: impl Display) {
        self.log(Level::ERROR, msg)
    }

    /// Logs at warn level.
    pub fn warn(&self, msg: impl Display) {
        self.log(Level::WARN, msg)
    }

    /// Logs at info level.
    pub fn info(&self, msg: impl Display) {
        self.log(Level::INFO, msg)
    }

    /// Logs at debug level.
    pub fn debug(&self, msg: impl Display) {
        self.log(Level::DEBUG, msg)
    }

    /// Logs at the service's `mundane_level` (the level of its lifecycle lines).
    pub fn mundane(&self, msg: impl Display) {
        self.log_ref().mundane(msg)
    }
}

/// The span an actor's task runs in. It has no parent: a child's span is not nested in the
/// span of the parent that happened to create it.
pub(crate) fn service_span(core: &Core) -> Span {
    tracing::info_span!(
        target: "modo",
        parent: None,
        "service",
        label = %core.label,
        id = %core.id,
        depth = core.depth()
    )
}
