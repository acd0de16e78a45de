//! The [`Service`] trait: Mode's hooks and settings, run on the actor's own task.

use std::borrow::Cow;
use std::future::Future;
use std::time::Duration;

use tracing::Level;

use super::addr::ServiceRef;
use super::context::Context;
use super::error::{CrashReason, HookResult};
use super::mailbox::DEFAULT_MAILBOX_CAPACITY;
use super::spec::Dependency;
use super::watch::Down;

/// Default bound on the stop sequence's waits (Mode's `shutdown_timeout`): 60 seconds.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// A service: state owned by one tokio task, started, stopped, restarted and supervised.
///
/// Every hook is optional and runs on the service's own task, so it has `&mut self` without
/// locks. Hooks that can fail return [`HookResult`]; a hook that returns `Err` or panics
/// fails the start (the service is left stopped, see [`System::spawn`](crate::System::spawn))
/// or is reported by the stop, which still runs to the end.
///
/// # Order
/// Start: [`dependencies`](Service::dependencies) and [`on_first_start`](Service::on_first_start)
/// (first start only), "Starting...", [`on_start`](Service::on_start), background tasks added so
/// far, children in the order added, "Started", [`on_started`](Service::on_started).
///
/// Stop: "Stopping...", [`on_stop`](Service::on_stop), children in reverse order, background
/// tasks cancelled in reverse order, "Stopped", the wait for `set_shutdown` if
/// [`wait_for_shutdown`](Service::wait_for_shutdown), tasks joined,
/// [`on_shutdown`](Service::on_shutdown), "Shutdown complete".
///
/// Restart: the stop above (children are stopped, not discarded), restart count + 1, crash
/// reason cleared, [`on_init`](Service::on_init) (or a fresh instance from the factory),
/// [`on_restart`](Service::on_restart), the start above.
///
/// # Example
/// ```
/// use modo::prelude::*;
///
/// #[derive(Default)]
/// struct Cache { entries: usize }
///
/// impl Service for Cache {
///     async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
///         ctx.log().info("warming up");
///         self.entries = 10;
///         Ok(())
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), modo::Error> {
/// let system = System::new();
/// let cache = system.spawn(Cache::default()).await?;
/// assert_eq!(cache.state().to_string(), "running");
/// system.shutdown().await?;
/// assert_eq!(cache.state().to_string(), "shutdown");
/// # Ok(()) }
/// ```
pub trait Service: Sized + Send + 'static {
    /// Sets up (or resets) plain state. Runs once before the first start and again before each
    /// restart; a service spawned with a factory gets a fresh instance instead, and `on_init`
    /// runs on it. Mode's `__post_init__`.
    fn on_init(&mut self) {}

    /// The children to start with this service (Mode's `on_init_dependencies`). Called once,
    /// at the first start; the children are kept across restarts.
    fn dependencies(&mut self) -> Vec<Dependency> {
        Vec::new()
    }

    /// Runs at the first start only, before "Starting...".
    fn on_first_start(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = HookResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// The service is starting; runs before its background tasks and children start.
    fn on_start(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = HookResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// The service and its children have started.
    fn on_started(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = HookResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// The service is stopping; runs before its children stop.
    fn on_stop(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = HookResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// The last hook of the stop sequence, after children and tasks are gone.
    fn on_shutdown(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = HookResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// The service is being restarted: runs after the stop and `on_init`, before the start.
    fn on_restart(&mut self, ctx: &mut Context<Self>) -> impl Future<Output = HookResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// For a service spawned [on its own thread](crate::ServiceSpec::on_own_thread): runs on
    /// that thread once it is up, before the first start (with an
    /// [async factory](crate::ServiceSpec::from_async_factory), once its first instance is
    /// built). An `Err` leaves the service crashed.
    fn on_thread_started(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = HookResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// For a service spawned on its own thread: runs on that thread after the service stopped
    /// for good, just before the thread's runtime shuts down.
    fn on_thread_stop(
        &mut self,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = HookResult> + Send {
        let _ = ctx;
        async { Ok(()) }
    }

    /// A child crashed: it has run its stop hooks and waits for this decision. Runs on this
    /// service's task, as a control message, in the same scheduling round as the crash.
    ///
    /// Default: [`ChildAction::Escalate`]: a crash nobody handles is not lost. This service
    /// crashes too, with a reason naming the child ([`CrashReason::Child`]), and so on up the
    /// tree to a supervisor (which applies its strategy) or to the root (a crashed root ends;
    /// under a [`Worker`](crate::Worker) the program exits with code 1 and prints the reason),
    /// as in Mode and OTP. Return [`ChildAction::Remove`], `Restart` or `Keep` to choose
    /// otherwise. Supervisors decide by their strategy.
    fn on_child_crashed(
        &mut self,
        child: &ServiceRef,
        reason: &CrashReason,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = ChildAction> + Send {
        let _ = (child, reason, ctx);
        async { ChildAction::Escalate }
    }

    /// A running child whose stops this service decides
    /// ([`Context::decide_stops_of`](crate::Context::decide_stops_of)) was stopped by someone
    /// other than this service (its own `ctx.stop()`, or `stop()` from elsewhere): it has run
    /// its stop sequence and waits for this decision before it ends. Default:
    /// [`ChildAction::Remove`] (it ends). `Restart` starts it again with its mailbox; `Keep` is
    /// treated as `Remove`; `Escalate` crashes this service. Not called for other children:
    /// they end at once when stopped.
    fn on_child_stopped(
        &mut self,
        child: &ServiceRef,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = ChildAction> + Send {
        let _ = (child, ctx);
        async { ChildAction::Remove }
    }

    /// A service this one watches ([`Context::watch`](crate::Context::watch)) stopped for good
    /// or crashed. Runs on this service's task, as a control message. Default: nothing. An
    /// `Err` or a panic crashes this service.
    fn on_down(
        &mut self,
        down: Down,
        ctx: &mut Context<Self>,
    ) -> impl Future<Output = HookResult> + Send {
        let _ = (down, ctx);
        async { Ok(()) }
    }

    /// The label used in graphs and errors. Default: the type's name without its path.
    /// Return `"Name".into()` or `format!(..).into()`.
    fn label(&self) -> Cow<'static, str> {
        Cow::Borrowed(short_type_name::<Self>())
    }

    /// The label used in log lines. Default: [`label`](Service::label).
    fn shortlabel(&self) -> Cow<'static, str> {
        self.label()
    }

    /// Whether the stop sequence waits for `ctx.set_shutdown()` (bounded by
    /// [`shutdown_timeout`](Service::shutdown_timeout)). Default: `false`.
    fn wait_for_shutdown(&self) -> bool {
        false
    }

    /// The bound on each wait in the stop sequence. Default: 60 s.
    fn shutdown_timeout(&self) -> Duration {
        DEFAULT_SHUTDOWN_TIMEOUT
    }

    /// The level of the lifecycle lines ("Starting...", "Stopped", ...). Default: info.
    fn mundane_level(&self) -> Level {
        Level::INFO
    }

    /// Whether the stop sequence stops this service's children all at once (OTP's
    /// `simple_one_for_one`), instead of one after another, newest first (Mode's order, the
    /// default). For a parent of many independent children (one per connection): a child slow
    /// to stop (a stuck socket) then delays none of its siblings. Each child's stop is still
    /// bounded by its own shutdown timeout.
    fn stop_children_concurrently(&self) -> bool {
        false
    }

    /// The capacity of the user lane of the mailbox. Default:
    /// [`DEFAULT_MAILBOX_CAPACITY`](crate::DEFAULT_MAILBOX_CAPACITY).
    fn mailbox_capacity(&self) -> usize {
        DEFAULT_MAILBOX_CAPACITY
    }
}

/// What a parent does with a crashed child (see [`Service::on_child_crashed`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChildAction {
    /// Stop the child for good and drop it: its queued messages become dead letters and
    /// waiting asks get [`Error::Crashed`](crate::Error::Crashed).
    Remove,
    /// Restart the child; its mailbox and queued messages are kept.
    Restart,
    /// Leave it crashed (its mailbox stays open until this service stops or restarts it).
    Keep,
    /// Crash this service too (the child is stopped with it).
    Escalate,
}

/// `my_crate::module::Type<Param>` -> `Type`.
pub(crate) fn short_type_name<T: ?Sized>() -> &'static str {
    // Byte searches for single characters: this runs at every spawn.
    let full = std::any::type_name::<T>();
    let base = match full.find('<') {
        Some(i) => &full[..i],
        None => full,
    };
    match base.rfind(':') {
        Some(i) => &base[i + 1..],
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::short_type_name;

    struct Plain;
    #[allow(dead_code)]
    struct Generic<T>(T);

    #[test]
    fn short_names() {
        assert_eq!(short_type_name::<Plain>(), "Plain");
        assert_eq!(short_type_name::<Generic<Vec<u8>>>(), "Generic");
    }
}
