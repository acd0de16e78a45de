//! [`Recorder`]: a service that writes every hook it runs into a [`Journal`] and fails at the
//! hooks it is told to, to build trees whose lifecycle a test asserts.

use std::borrow::Cow;
use std::fmt;

use super::journal::Journal;
use crate::{Context, Dependency, Handler, Hook, HookResult, Service};

/// How a [`Recorder`] fails at a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fail {
    /// The hook returns `Err("<name> failed in <hook>")`.
    Err,
    /// The hook panics with `"<name> panicked in <hook>"`.
    Panic,
}

/// A [`Recorder::fail_at`] that cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecorderError {
    /// The hook returns nothing (`on_init`, `dependencies`), so it can panic but not return
    /// an error.
    #[error("{hook} returns nothing: it can fail with Fail::Panic, not Fail::Err")]
    CannotReturnError {
        /// The hook.
        hook: Hook,
    },
    /// The step is not a hook of the service (starting or stopping a child, joining tasks):
    /// give the recorder a failing child instead.
    #[error("{hook} is a step of the lifecycle, not a hook a service can fail in")]
    NotAHook {
        /// The step.
        hook: Hook,
    },
}

/// A service that writes `<name>:<hook>` into a [`Journal`] for every hook it runs
/// (`on_init`, `on_first_start`, `on_start`, `on_started`, `on_stop`, `on_shutdown`,
/// `on_restart`, and `on_thread_started`/`on_thread_stop` on its own thread), starts the
/// recorders given to [`with_children`](Self::with_children) as its children, answers
/// [`Ping`] with its name, and fails at the hooks given to [`fail_at`](Self::fail_at). Its
/// label is its name.
///
/// Use it to see where your own services' hooks run relative to others (a recorder child of
/// your service, or your service writing into the same journal), or as a stand-in whose
/// failure your code must survive.
///
/// ```
/// use modo::prelude::*;
/// use modo::testkit::{Fail, Journal, Recorder};
/// use modo::Hook;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let journal = Journal::new();
/// let system = System::new();
/// let app = Recorder::new("App", &journal).with_children(vec![
///     Recorder::new("Db", &journal),
///     Recorder::new("Web", &journal).fail_at(Hook::OnStop, Fail::Err)?,
/// ]);
/// let app = system.spawn(app).await?;
/// journal.assert_order(&["App:on_start", "Db:on_started", "Web:on_started", "App:on_started"]);
/// journal.take();
///
/// // The children stop in reverse order; Web's failing on_stop is reported, the stop completes.
/// let err = app.stop().await.unwrap_err();
/// assert!(matches!(err, Error::HookFailed { hook: Hook::StopChild, .. }), "{err}");
/// assert_eq!(
///     journal.take(),
///     ["App:on_stop", "Web:on_stop", "Web:on_shutdown", "Db:on_stop", "Db:on_shutdown", "App:on_shutdown"]
/// );
/// # system.shutdown().await?;
/// # Ok(()) }
/// ```
pub struct Recorder {
    name: Cow<'static, str>,
    journal: Journal,
    children: Vec<Recorder>,
    failures: Vec<(Hook, Fail)>,
}

impl Recorder {
    /// A recorder named `name` (also its label) writing into `journal`.
    pub fn new(name: impl Into<Cow<'static, str>>, journal: &Journal) -> Self {
        Recorder {
            name: name.into(),
            journal: journal.clone(),
            children: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Its children, started in this order when it first starts (from
    /// [`Service::dependencies`]).
    pub fn with_children(mut self, children: Vec<Recorder>) -> Self {
        self.children = children;
        self
    }

    /// Fails at `hook`, every time it runs, as `how` says (the entry is written first). Call
    /// it again to fail at more hooks; the last call for a hook wins.
    ///
    /// # Errors
    /// [`RecorderError::CannotReturnError`] for `Fail::Err` at [`Hook::OnInit`] or
    /// [`Hook::Dependencies`]; [`RecorderError::NotAHook`] for [`Hook::StartChild`],
    /// [`Hook::StopChild`], [`Hook::JoinTasks`], [`Hook::Factory`] and [`Hook::OnExecute`].
    pub fn fail_at(mut self, hook: Hook, how: Fail) -> Result<Self, RecorderError> {
        match hook {
            Hook::OnInit | Hook::Dependencies if how == Fail::Err => {
                return Err(RecorderError::CannotReturnError { hook });
            }
            Hook::StartChild
            | Hook::StopChild
            | Hook::JoinTasks
            | Hook::Factory
            | Hook::OnExecute => {
                return Err(RecorderError::NotAHook { hook });
            }
            Hook::OnInit
            | Hook::Dependencies
            | Hook::OnFirstStart
            | Hook::OnStart
            | Hook::OnStarted
            | Hook::OnStop
            | Hook::OnShutdown
            | Hook::OnRestart
            | Hook::OnThreadStarted
            | Hook::OnThreadStop => {}
        }
        self.failures.retain(|(h, _)| *h != hook);
        self.failures.push((hook, how));
        Ok(self)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn failure(&self, hook: Hook) -> Option<Fail> {
        self.failures
            .iter()
            .find(|(h, _)| *h == hook)
            .map(|(_, how)| *how)
    }

    /// Writes `<name>:<hook>`, then fails if told to.
    fn record(&self, hook: Hook) -> HookResult {
        self.journal.push(format!("{}:{hook}", self.name));
        match self.failure(hook) {
            Some(Fail::Err) => Err(format!("{} failed in {hook}", self.name).into()),
            Some(Fail::Panic) => panic!("{} panicked in {hook}", self.name),
            None => Ok(()),
        }
    }
}

impl Service for Recorder {
    fn on_init(&mut self) {
        // `on_init` cannot return an error: `fail_at` only lets it panic.
        let _ = self.record(Hook::OnInit);
    }

    fn dependencies(&mut self) -> Vec<Dependency> {
        if self.failure(Hook::Dependencies) == Some(Fail::Panic) {
            panic!("{} panicked in {}", self.name, Hook::Dependencies);
        }
        std::mem::take(&mut self.children)
            .into_iter()
            .map(Dependency::from)
            .collect()
    }

    async fn on_first_start(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.record(Hook::OnFirstStart)
    }

    async fn on_start(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.record(Hook::OnStart)
    }

    async fn on_started(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.record(Hook::OnStarted)
    }

    async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.record(Hook::OnStop)
    }

    async fn on_shutdown(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.record(Hook::OnShutdown)
    }

    async fn on_restart(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.record(Hook::OnRestart)
    }

    async fn on_thread_started(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.record(Hook::OnThreadStarted)
    }

    async fn on_thread_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.record(Hook::OnThreadStop)
    }

    fn label(&self) -> Cow<'static, str> {
        self.name.clone()
    }
}

impl fmt::Debug for Recorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recorder")
            .field("name", &self.name)
            .field("children", &self.children)
            .field("failures", &self.failures)
            .finish()
    }
}

/// Asks a [`Recorder`] for its name: a message to check it is alive and serving.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ping;

impl Handler<Ping> for Recorder {
    type Reply = String;

    async fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) -> String {
        self.name.to_string()
    }
}
