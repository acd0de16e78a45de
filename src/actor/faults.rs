//! Faults injected on purpose, for tests (feature `testkit`): a service spawned with
//! [`ServiceSpec::faults`](crate::ServiceSpec::faults) crashes on its Nth message, fails its
//! Nth start, or has a hook take longer, without a line of its code changed.

use std::collections::HashMap;
use std::time::Duration;

use super::error::{CrashReason, Hook};

/// What to break in a service, and when. Build it with the methods; give it to
/// [`ServiceSpec::faults`](crate::ServiceSpec::faults).
///
/// ```
/// use modo::prelude::*;
/// use modo::testkit::Faults;
///
/// struct Job;
/// impl Service for Job {}
/// struct Work;
/// impl Handler<Work> for Job {
///     type Reply = ();
///     async fn handle(&mut self, _: Work, _ctx: &mut Context<Self>) {}
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), modo::Error> {
/// let system = System::new();
/// let job = system
///     .spawn(ServiceSpec::new(Job).faults(Faults::new().crash_on_message(2)))
///     .await?;
/// job.ask(Work).await?;
/// assert!(job.ask(Work).await.unwrap_err().is_crashed());
/// # system.shutdown().await }
/// ```
#[derive(Debug, Clone, Default)]
pub struct Faults {
    crash_on_message: Option<u64>,
    fail_start: Option<u32>,
    delays: HashMap<Hook, Duration>,
}

impl Faults {
    /// No faults yet.
    pub fn new() -> Self {
        Faults::default()
    }

    /// The `n`th user message the service takes (counted from 1 over its whole life, restarts
    /// included) crashes it instead of reaching its handler, as a panic in the handler would:
    /// an ask gets [`Error::Crashed`](crate::Error::Crashed).
    pub fn crash_on_message(mut self, n: u64) -> Self {
        self.crash_on_message = Some(n);
        self
    }

    /// The `n`th start (counted from 1: the first start, then each restart) fails, as an
    /// `on_start` returning an error would.
    pub fn fail_start(mut self, n: u32) -> Self {
        self.fail_start = Some(n);
        self
    }

    /// Step `hook` waits `delay` before it runs, for every hook and step [`Hook`] names:
    /// `on_init` (at spawn and before each restart's fresh instance), `dependencies` (first
    /// start), each lifecycle hook, [`Hook::StartChild`] and [`Hook::StopChild`] before each
    /// child's start or stop, [`Hook::JoinTasks`] before the background tasks are joined, and
    /// [`Hook::Factory`] before an async factory is called (within its timeout).
    /// A stop-sequence hook's shutdown-timeout bound still applies to the hook itself.
    pub fn delay(mut self, hook: Hook, delay: Duration) -> Self {
        self.delays.insert(hook, delay);
        self
    }
}

/// The runner's side: the plan and the counts so far.
#[derive(Debug)]
pub(crate) struct FaultState {
    plan: Faults,
    messages: u64,
    starts: u32,
}

impl FaultState {
    pub(crate) fn new(plan: Faults) -> Self {
        FaultState {
            plan,
            messages: 0,
            starts: 0,
        }
    }

    /// A user message is about to be handled: the crash to inject instead, if it is the one.
    pub(crate) fn on_message(&mut self) -> Option<CrashReason> {
        self.messages += 1;
        (self.plan.crash_on_message == Some(self.messages)).then(|| {
            CrashReason::msg(format!(
                "injected fault: crash on message {}",
                self.messages
            ))
        })
    }

    /// A start begins: the failure to inject, if it is the one.
    pub(crate) fn on_start(&mut self) -> Option<String> {
        self.starts += 1;
        (self.plan.fail_start == Some(self.starts))
            .then(|| format!("injected fault: start {} fails", self.starts))
    }

    /// How long hook `hook` waits first.
    pub(crate) fn delay(&self, hook: Hook) -> Option<Duration> {
        self.plan.delays.get(&hook).copied()
    }
}
