//! The [`Worker`]: runs a tree of services as a program (Mode's `mode.Worker`).
//!
//! The Worker is the root of the tree: a service labelled `Worker` whose children are the
//! services it was given, started in order after it and stopped in reverse before it, so its
//! log lines read `[^Worker]`, its children's `[^-App]`, and so on down. It sets up logging
//! (Mode's line format, see [`ModeFormat`](crate::log::ModeFormat) and [`crate::logging`]),
//! listens to OS signals, watches the runtime for blocking code, and turns the outcome into
//! an exit code.
//!
//! A service given to the Worker that stops on its own leaves the tree; once every one of them
//! has stopped for good, the Worker stops too and the program ends with code 0 (Mode's Worker
//! would run on, empty, until a signal). A crash that no supervisor handles reaches the Worker,
//! which fails the program with code 1.
//!
//! # Signals (unix)
//! - SIGINT (Ctrl-C) and SIGTERM start a graceful stop of the whole tree
//!   ([`System::shutdown`]: children first, each stop bounded by its shutdown timeout), logged
//!   as `[^Worker]: Stopping on signal received...`. Only the first stop signal counts: a
//!   SIGTERM during the stop is ignored.
//! - A SIGINT during the stop (Ctrl-C pressed again) exits at once with
//!   [`EXIT_INTERRUPTED`] (130) from [`Worker::execute_from_commandline`] (and ends
//!   [`Worker::run`] with [`WorkerExit::Interrupted`]), without waiting for the stop.
//! - SIGUSR1 prints the live service tree (from the registry: each service indented by its
//!   depth, with its state and restart count) to stderr; the program keeps running.
//!
//! Off unix, Ctrl-C alone stops the Worker (and a second one exits at once).
//!
//! # Exit codes ([`Worker::execute_from_commandline`])
//! - 0: the tree stopped cleanly: every service stopped by itself, or a signal stopped the
//!   tree, or (with `daemon(false)`) it was stopped as soon as it had started.
//! - 1 ([`EXIT_FAILURE`]): a root service crashed (the crash reaches the Worker, which crashes
//!   and stops the rest of the tree), a hook failed while starting or stopping,
//!   [`on_execute`](Worker::on_execute) failed, or the System was failed ([`System::fail`]);
//!   the reason is printed to stderr.
//!
//! # Hooks
//! Mode's Worker hooks, as builder closures: [`on_execute`](Worker::on_execute) runs once the
//! services have started, before the Worker waits for them (its failure stops the tree in
//! order and fails the run); [`on_worker_shutdown`](Worker::on_worker_shutdown) runs last,
//! after the services stopped, with how the run ended.
//! - 130 ([`EXIT_INTERRUPTED`]): interrupted again during the stop.
//!
//! # Blocking detector
//! On by default: a [`BlockingDetector`] with the blocking timeout (default 10 s, Mode's),
//! spawned as a root of the Worker's System before the tree (so it watches the start, and
//! stops last). It warns, once per stall, when a service's code has run that long without
//! yielding, naming the service (and its background task, and the thread), even when only
//! one worker thread of several is blocked; and when the whole runtime made no progress for
//! that long outside any service. The warnings read `[^BlockingDetector]: Blocking detected:
//! ...`.
//!
//! ```no_run
//! use modo::prelude::*;
//! use modo::Worker;
//!
//! struct App;
//! impl Service for App {}
//!
//! fn main() -> std::process::ExitCode {
//!     Worker::new(App).loglevel(tracing::Level::INFO).execute_from_commandline()
//! }
//! ```

mod blocking;
mod dump;
mod root;
mod signals;

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tracing::Level;

use crate::logging::{LogConfig, LogInitError};
use crate::{Addr, CrashReason, Dependency, Error, Hook, HookResult, SharedError, System};

use dump::dump_tree;
use root::Root;

pub use blocking::{Blocked, BlockingDetector};
use signals::{Sig, Signals};

/// Mode's default blocking timeout: 10 seconds.
pub const DEFAULT_BLOCKING_TIMEOUT: Duration = Duration::from_secs(10);

/// The exit code when a root service crashed or a hook failed.
pub const EXIT_FAILURE: u8 = 1;

/// The exit code when a second SIGINT arrived during the stop (128 + SIGINT, the shell's
/// convention for a program ended by Ctrl-C).
pub const EXIT_INTERRUPTED: u8 = 130;

/// The Worker's label, and so its log prefix `[^Worker]`.
const LABEL: &str = "Worker";
const PREFIX: &str = "[^Worker]";

/// Runs services as a program: the root of their tree, with logging, signals, a blocking
/// detector and exit codes. See the [module docs](self).
#[derive(Debug)]
pub struct Worker {
    services: Vec<Dependency>,
    log: LogConfig,
    override_logging: bool,
    blocking_timeout: Duration,
    detect_blocking: bool,
    daemon: bool,
    handle_signals: bool,
    log_panics: bool,
    #[cfg(feature = "observer")]
    observer: Option<crate::observe::ObserverConfig>,
    hooks: Hooks,
}

/// The Worker's own hooks (Mode's `on_execute` and `on_worker_shutdown`).
#[derive(Default)]
struct Hooks {
    on_execute: Option<OnExecute>,
    on_worker_shutdown: Option<OnWorkerShutdown>,
}

type OnExecute = Box<dyn FnOnce(System) -> BoxFuture<'static, HookResult> + Send>;
type OnWorkerShutdown = Box<dyn FnOnce(&WorkerExit) + Send>;

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("on_execute", &self.on_execute.is_some())
            .field("on_worker_shutdown", &self.on_worker_shutdown.is_some())
            .finish()
    }
}

/// How a Worker's run ended (see [`Worker::run`]).
#[derive(Debug)]
#[non_exhaustive]
pub enum WorkerExit {
    /// The tree stopped cleanly.
    Stopped,
    /// A root service crashed, a hook failed, or the System was failed: the error says which.
    Failed(Error),
    /// A second SIGINT arrived during the stop; the stop was abandoned.
    Interrupted,
}

impl WorkerExit {
    /// The process exit code: 0, [`EXIT_FAILURE`] or [`EXIT_INTERRUPTED`].
    pub fn code(&self) -> u8 {
        match self {
            WorkerExit::Stopped => 0,
            WorkerExit::Failed(_) => EXIT_FAILURE,
            WorkerExit::Interrupted => EXIT_INTERRUPTED,
        }
    }
}

impl Worker {
    /// A Worker running one root service (more with [`add_service`](Self::add_service)).
    pub fn new(service: impl Into<Dependency>) -> Self {
        Self::with_services(vec![service.into()])
    }

    /// A Worker running these services, started in order and stopped in reverse.
    pub fn with_services(services: Vec<Dependency>) -> Self {
        Worker {
            services,
            log: LogConfig::default(),
            override_logging: true,
            blocking_timeout: DEFAULT_BLOCKING_TIMEOUT,
            detect_blocking: true,
            daemon: true,
            handle_signals: true,
            log_panics: false,
            #[cfg(feature = "observer")]
            observer: None,
            hooks: Hooks::default(),
        }
    }

    /// Runs `f` once the services have started, before the Worker waits for them (Mode's
    /// `on_execute`): the program's own work, with the running tree at hand through the
    /// [`System`] it is given (look services up, spawn more, talk to them). A signal that
    /// stops the Worker, or the end of the tree, drops it where it is.
    ///
    /// `Err` (or a panic) is reported and stops the tree in order, as a crash would: the run
    /// ends with [`WorkerExit::Failed`] ([`Error::HookFailed`] for [`Hook::OnExecute`], or
    /// [`Error::Crashed`] for a panic) and exit code 1. With `daemon(false)`, the tree stops
    /// once `f` has returned.
    ///
    /// Mode calls `on_execute` from the Worker's first start, before its services start; here
    /// it sees them running.
    ///
    /// [`Hook::OnExecute`]: crate::Hook::OnExecute
    ///
    /// ```
    /// use modo::prelude::*;
    /// use modo::Worker;
    ///
    /// struct Db;
    /// impl Service for Db {}
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let exit = Worker::new(ServiceSpec::new(Db).name("db"))
    ///     .override_logging(false)
    ///     .handle_signals(false)
    ///     .daemon(false)
    ///     .on_execute(|system| async move {
    ///         let db = system.lookup::<Db>("db")?;
    ///         assert!(db.is_started());
    ///         Ok(())
    ///     })
    ///     .run()
    ///     .await;
    /// assert_eq!(exit.code(), 0);
    /// # }
    /// ```
    pub fn on_execute<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce(System) -> Fut + Send + 'static,
        Fut: Future<Output = HookResult> + Send + 'static,
    {
        self.hooks.on_execute = Some(Box::new(move |system| Box::pin(f(system))));
        self
    }

    /// Runs `f` at the very end of [`run`](Self::run), after the services have stopped (Mode's
    /// `on_worker_shutdown`), with how the run ended; also after an interrupted stop (then
    /// before the services finished stopping). A panic in it is reported and turns a clean
    /// exit into a failed one.
    ///
    /// ```
    /// use modo::prelude::*;
    /// use modo::Worker;
    ///
    /// struct App;
    /// impl Service for App {}
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let exit = Worker::new(App)
    ///     .override_logging(false)
    ///     .handle_signals(false)
    ///     .daemon(false)
    ///     .on_worker_shutdown(|exit| eprintln!("done with code {}", exit.code()))
    ///     .run()
    ///     .await;
    /// assert_eq!(exit.code(), 0);
    /// # }
    /// ```
    pub fn on_worker_shutdown(mut self, f: impl FnOnce(&WorkerExit) + Send + 'static) -> Self {
        self.hooks.on_worker_shutdown = Some(Box::new(f));
        self
    }

    /// Adds a service, started after the ones given before.
    pub fn add_service(mut self, service: impl Into<Dependency>) -> Self {
        self.services.push(service.into());
        self
    }

    /// The log level. Default: `RUST_LOG` (an `EnvFilter` directive) if set, else info.
    pub fn loglevel(mut self, level: Level) -> Self {
        self.log = std::mem::take(&mut self.log).level(level);
        self
    }

    /// Also appends the log lines to this file (created if missing).
    pub fn logfile(mut self, path: impl Into<PathBuf>) -> Self {
        self.log = std::mem::take(&mut self.log).file(path);
        self
    }

    /// Writes no log lines to stderr (a log file still gets them).
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.log = std::mem::take(&mut self.log).quiet(quiet);
        self
    }

    /// The whole logging set-up at once (replacing what `loglevel`, `logfile` and `quiet`
    /// set): see [`crate::logging`].
    pub fn logging(mut self, config: LogConfig) -> Self {
        self.log = config;
        self
    }

    /// Whether the Worker installs its own tracing subscriber. Default: `true`. With
    /// `false`, bring your own (Mode's `override_logging=False`); the level, file and quiet
    /// options are then ignored. Installing never replaces a subscriber already set: a second
    /// Worker in one process keeps the first one's.
    pub fn override_logging(mut self, yes: bool) -> Self {
        self.override_logging = yes;
        self
    }

    /// How long the runtime may make no progress before the blocking detector warns.
    /// Default: [`DEFAULT_BLOCKING_TIMEOUT`] (10 s).
    pub fn blocking_timeout(mut self, timeout: Duration) -> Self {
        self.blocking_timeout = timeout;
        self
    }

    /// Whether to run the blocking detector. Default: `true`.
    pub fn detect_blocking(mut self, yes: bool) -> Self {
        self.detect_blocking = yes;
        self
    }

    /// `true` (the default): run until the services have all stopped for good (a batch
    /// program ends by itself, with exit code 0), a signal stops the Worker, or a crash fails
    /// it. `false` (Mode's `daemon=False`): stop the tree as soon as it has started, for a
    /// program whose work is done in its services' start hooks.
    pub fn daemon(mut self, daemon: bool) -> Self {
        self.daemon = daemon;
        self
    }

    /// Whether panics go through the log as one line naming the service (see
    /// [`crate::logging::log_panics`]) instead of the default hook printing on top of the
    /// log. Default: `false` (the process's panic hook is left alone). The backtrace is kept
    /// when `RUST_BACKTRACE` asks for it.
    pub fn log_panics(mut self, yes: bool) -> Self {
        self.log_panics = yes;
        self
    }

    /// Whether the Worker installs its signal handlers. Default: `true`. With `false` it only
    /// stops on a crash, a failure or (with `daemon(false)`) once started: for a Worker
    /// embedded in a process that handles its own signals, or in tests. Once installed, a
    /// handler stays for the rest of the process (the signals are then ignored when no
    /// Worker listens).
    pub fn handle_signals(mut self, yes: bool) -> Self {
        self.handle_signals = yes;
        self
    }

    /// Adds the [observer](crate::observe) to the tree (feature `observer`): the Worker's first
    /// child (`[^-Observer]`), started before the services and stopped after them, so it shows
    /// the whole tree coming up and going down. It does not count as one of the services: the
    /// Worker still ends once they have all stopped. Read where it listens from
    /// [`ObserverConfig::listening`](crate::observe::ObserverConfig::listening).
    ///
    /// ```no_run
    /// use modo::observe::ObserverConfig;
    /// use modo::prelude::*;
    /// use modo::Worker;
    ///
    /// struct App;
    /// impl Service for App {}
    ///
    /// fn main() -> std::process::ExitCode {
    ///     Worker::new(App)
    ///         .observer(ObserverConfig::new().token("a long random secret"))
    ///         .execute_from_commandline()
    /// }
    /// ```
    #[cfg(feature = "observer")]
    pub fn observer(mut self, config: crate::observe::ObserverConfig) -> Self {
        self.observer = Some(config);
        self
    }

    /// Runs the services on the current tokio runtime until they stop, and says how it ended.
    /// Sets up logging, the signal handlers and the blocking detector first.
    pub async fn run(self) -> WorkerExit {
        let Worker {
            services,
            log,
            override_logging,
            blocking_timeout,
            detect_blocking,
            daemon,
            handle_signals,
            log_panics,
            #[cfg(feature = "observer")]
            observer,
            hooks,
        } = self;
        let Hooks {
            on_execute,
            on_worker_shutdown,
        } = hooks;
        #[cfg(feature = "observer")]
        let services = match observer {
            Some(config) => {
                let mut all = vec![Dependency::from(crate::observe::Observer::new(config))];
                all.extend(services);
                all
            }
            None => services,
        };
        if log_panics {
            crate::logging::log_panics();
        }
        if override_logging {
            match log.init() {
                // A second Worker in the process keeps the first one's subscriber.
                Ok(()) | Err(LogInitError::AlreadyInstalled) => {}
                Err(e) => return WorkerExit::Failed(worker_error(e.to_string())),
            }
        }
        let mut signals = match handle_signals.then(Signals::install).transpose() {
            Ok(signals) => signals,
            Err(e) => {
                return WorkerExit::Failed(worker_error(format!(
                    "cannot install the signal handlers: {e}"
                )));
            }
        };
        let system = System::new();
        // A root spawned before the tree: it watches the whole start, and the shutdown
        // (roots newest first) stops it last.
        if detect_blocking
            && let Err(e) = system.spawn(BlockingDetector::new(blocking_timeout)).await
        {
            tracing::warn!(target: "modo", "{PREFIX}: no blocking detector: {e}");
        }
        let root = Root {
            services,
            running: 0,
        };
        let exit = serve(&system, &mut signals, root, daemon, on_execute).await;
        match on_worker_shutdown {
            Some(f) => worker_shutdown(f, exit),
            None => exit,
        }
    }

    /// Runs the services on the current tokio runtime until they stop (see
    /// [`run`](Self::run)).
    ///
    /// # Errors
    /// The crash or hook failure that ended the run ([`Error::Crashed`] for a crashed root
    /// service, with the Worker's label and the crash reason); an interrupted stop is
    /// [`Error::Crashed`] with the message "interrupted during the stop".
    pub async fn execute(self) -> Result<(), Error> {
        match self.run().await {
            WorkerExit::Stopped => Ok(()),
            WorkerExit::Failed(e) => Err(e),
            WorkerExit::Interrupted => Err(worker_error("interrupted during the stop".into())),
        }
    }

    /// Builds a multi-thread tokio runtime, runs the services on it until they stop, and
    /// returns the exit code: 0 after a clean stop, [`EXIT_FAILURE`] (the reason printed to
    /// stderr) after a crash or a failed hook. Interrupted during the stop, it exits the
    /// process at once with [`EXIT_INTERRUPTED`].
    pub fn execute_from_commandline(self) -> ExitCode {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                eprintln!("modo: cannot build the tokio runtime: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        let exit = runtime.block_on(self.run());
        match exit {
            WorkerExit::Interrupted => {
                eprintln!("modo: interrupted during the stop: exiting at once");
                std::process::exit(i32::from(EXIT_INTERRUPTED));
            }
            WorkerExit::Failed(ref e) => eprintln!("modo: the Worker failed: {e}"),
            WorkerExit::Stopped => {}
        }
        runtime.shutdown_timeout(Duration::from_secs(1));
        ExitCode::from(exit.code())
    }
}

/// An error in the Worker's own name.
fn worker_error(message: String) -> Error {
    Error::Crashed {
        label: Arc::from(LABEL),
        reason: CrashReason::msg(message),
    }
}

/// Runs the `on_worker_shutdown` hook; a panic in it fails a clean exit.
fn worker_shutdown(f: OnWorkerShutdown, exit: WorkerExit) -> WorkerExit {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&exit))) {
        Ok(()) => exit,
        Err(panic) => {
            let reason = CrashReason::from_panic(panic, "on_worker_shutdown");
            tracing::error!(target: "modo", "{PREFIX}: {reason}");
            match exit {
                WorkerExit::Stopped => WorkerExit::Failed(Error::Crashed {
                    label: Arc::from(LABEL),
                    reason,
                }),
                other => other,
            }
        }
    }
}

/// What ended the wait for `on_execute`.
enum Executed {
    Done(Result<(), Error>),
    /// A stop signal, or the tree ended by itself: the hook was dropped.
    Interrupted,
}

/// Runs `on_execute`, serving signals meanwhile; gives up on it if a stop signal comes or
/// the tree ends.
async fn execute(
    system: &System,
    signals: &mut Option<Signals>,
    worker: &Addr<Root>,
    on_execute: OnExecute,
) -> Executed {
    let run = AssertUnwindSafe(on_execute(system.clone())).catch_unwind();
    tokio::pin!(run);
    loop {
        tokio::select! {
            done = &mut run => {
                return Executed::Done(match done {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(source)) => Err(Error::HookFailed {
                        label: Arc::from(LABEL),
                        hook: Hook::OnExecute,
                        source: SharedError::from(source),
                    }),
                    Err(panic) => Err(Error::Crashed {
                        label: Arc::from(LABEL),
                        reason: CrashReason::from_panic(panic, "on_execute"),
                    }),
                });
            }
            () = worker.wait_until_stopped() => return Executed::Interrupted,
            sig = next_signal(signals) => match sig {
                Sig::DumpTree => dump_tree(system).await,
                Sig::Interrupt | Sig::Terminate => {
                    stopping_on_signal();
                    return Executed::Interrupted;
                }
            },
        }
    }
}

/// Starts the tree, runs `on_execute`, waits for a stop signal (or its end), stops it.
async fn serve(
    system: &System,
    signals: &mut Option<Signals>,
    root: Root,
    daemon: bool,
    on_execute: Option<OnExecute>,
) -> WorkerExit {
    let spawn = system.spawn(root);
    tokio::pin!(spawn);
    // Signals are handled during the start too: a stop signal abandons the wait (the start
    // goes on, and the shutdown stops what started).
    let started = loop {
        tokio::select! {
            result = &mut spawn => break Some(result),
            sig = next_signal(signals) => match sig {
                Sig::DumpTree => dump_tree(system).await,
                Sig::Interrupt | Sig::Terminate => {
                    stopping_on_signal();
                    break None;
                }
            },
        }
    };
    let worker: Option<Addr<Root>> = match started {
        Some(Ok(worker)) => Some(worker),
        Some(Err(e)) => {
            let _ = system.shutdown().await;
            return WorkerExit::Failed(e);
        }
        None => None,
    };
    // `wait`: whether to wait for the tree (a daemon, and nothing ended the run already).
    let mut wait = daemon;
    let mut failure: Option<Error> = None;
    if let (Some(worker), Some(on_execute)) = (&worker, on_execute) {
        match execute(system, signals, worker, on_execute).await {
            Executed::Done(Ok(())) => {}
            Executed::Done(Err(e)) => {
                tracing::error!(target: "modo", "{PREFIX}: {e}: stopping");
                failure = Some(e);
                wait = false;
            }
            Executed::Interrupted => wait = false,
        }
    }
    if let (Some(worker), true) = (&worker, wait) {
        loop {
            tokio::select! {
                () = worker.wait_until_stopped() => break,
                sig = next_signal(signals) => match sig {
                    Sig::DumpTree => dump_tree(system).await,
                    Sig::Interrupt | Sig::Terminate => {
                        stopping_on_signal();
                        break;
                    }
                },
            }
        }
    }
    let shutdown = system.shutdown();
    tokio::pin!(shutdown);
    let result = loop {
        tokio::select! {
            result = &mut shutdown => break result,
            sig = next_signal(signals) => match sig {
                Sig::DumpTree => dump_tree(system).await,
                Sig::Interrupt => return WorkerExit::Interrupted,
                Sig::Terminate => {
                    tracing::info!(target: "modo", "{PREFIX}: Already stopping: signal ignored");
                }
            },
        }
    };
    if let Some(e) = failure {
        return WorkerExit::Failed(e);
    }
    if let Some(reason) = worker.as_ref().and_then(|w| w.crash_reason()) {
        return WorkerExit::Failed(Error::Crashed {
            label: Arc::from(LABEL),
            reason,
        });
    }
    match result {
        Ok(()) => WorkerExit::Stopped,
        Err(e) => WorkerExit::Failed(e),
    }
}

/// The next signal; never, when the Worker does not handle signals.
async fn next_signal(signals: &mut Option<Signals>) -> Sig {
    match signals {
        Some(signals) => signals.recv().await,
        None => std::future::pending().await,
    }
}

fn stopping_on_signal() {
    tracing::info!(target: "modo", "{PREFIX}: Stopping on signal received...");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(WorkerExit::Stopped.code(), 0);
        assert_eq!(WorkerExit::Failed(Error::ShuttingDown).code(), 1);
        assert_eq!(WorkerExit::Interrupted.code(), 130);
    }
}
