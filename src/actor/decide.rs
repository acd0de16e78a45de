//! A parent's answer to a child's crash that the child can take in its own task: a restart
//! that needs no trip through the parent's mailbox (a supervisor's one-for-one restarts).
//!
//! The parent installs a [`CrashDecider`] on its own cell; a crashed child of a running parent
//! asks it, after its stop sequence, before it would tell the parent and wait. A "yes" means the
//! decision is made and counted: the child restarts at once, as if its parent had sent the
//! restart. A "no" changes nothing: the parent hears of the crash and decides in
//! [`Service::on_child_crashed`](super::service::Service::on_child_crashed), as always.
//!
//! # Invariants
//! - The decider is asked only while its parent's published state is `Running`; a parent
//!   starting, stopping or restarting decides in its own task, as before.
//! - `restart_now` returns at once and never waits on an actor: it runs in the child's task.

use super::addr::ServiceRef;
use super::error::CrashReason;

/// Decides, in the crashed child's own task, whether it restarts now.
pub(crate) trait CrashDecider: Send + Sync {
    /// Whether `child` of `parent`, crashed with `reason` and stopped, restarts at once. A
    /// `true` is a decision taken (a supervisor counts it against its intensity); `false`
    /// leaves the decision to the parent's `on_child_crashed`.
    fn restart_now(&self, parent: &ServiceRef, child: &ServiceRef, reason: &CrashReason) -> bool;
}
