//! Restarts in place: the decision a one-for-one supervisor makes about a crashed child,
//! taken in the child's own task (see the kernel's `decide.rs`).
//!
//! A one-for-one restart with no backoff needs nothing of the supervisor but a count against
//! its intensity and a log line. Its children ask this decider when they crash; a "yes" is
//! counted in the intensity the supervisor shares with it, and the child restarts at once,
//! with no notice to the supervisor and no restart sent back: a restart costs no wake-up of
//! the supervisor, and a supervisor busy with a slow request does not hold it up.
//!
//! Everything else is left to [`Supervisor::on_child_crashed`](super::Supervisor): a
//! temporary child, a restart past the intensity (which escalates there), other strategies,
//! and any backoff.

use std::sync::Arc;

use crate::actor::decide::CrashDecider;
use crate::{CrashReason, ServiceRef};

use super::strategy::Intensity;
use super::{Backoff, RestartPolicy, Strategy, Supervisor, log_event};

/// The decider of one supervisor's run.
pub(super) struct InPlace {
    label: String,
    intensity: Arc<Intensity>,
}

impl InPlace {
    /// The decider for `sup`, if its restarts can be taken in place: one for one, no backoff.
    pub(super) fn for_supervisor(sup: &Supervisor) -> Option<Arc<dyn CrashDecider>> {
        if sup.strategy != Strategy::OneForOne || sup.backoff != Backoff::None {
            return None;
        }
        Some(Arc::new(InPlace {
            label: sup.label.clone(),
            intensity: sup.intensity.clone(),
        }))
    }
}

impl CrashDecider for InPlace {
    fn restart_now(&self, parent: &ServiceRef, child: &ServiceRef, reason: &CrashReason) -> bool {
        if Supervisor::policy(child) == RestartPolicy::Temporary
            || !self.intensity.try_record(tokio::time::Instant::now())
        {
            return false;
        }
        let prefix = parent.core().prefix();
        log_event(
            &prefix,
            &self.label,
            Strategy::OneForOne,
            child,
            "restarting",
            reason,
        );
        true
    }
}
