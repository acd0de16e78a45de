//! An actor's task while it has no tokio task of its own: not launched yet (a child waiting
//! for its parent's start), driven by another task through a start or a request, or parked
//! after its start until its first wake-up. Kept in the control lane's slots, under its lock
//! (see `runner::Inline` for the whole story).

use std::future::Future;
use std::pin::Pin;
use std::task::Waker;

use tokio::runtime::Handle;

use super::super::runner::Inline;
use super::{ControlLane, Reply, lock};

/// An actor's task that has no tokio task of its own (yet).
#[derive(Default)]
pub(super) enum Dormant {
    /// It has one, or has ended.
    #[default]
    No,
    /// Not launched yet (see [`ControlLane::launch_on_first_send`]).
    Unlaunched(Launch),
    /// Being polled by another task, through its start (see `runner::Inline`). `woken`: its
    /// waker was woken since that task last polled it; `by`: that task's waker.
    Driven { woken: bool, by: Waker },
    /// Parked after its start: launched on the runtime by its first wake-up.
    Parked(ParkedTask),
}

/// A dormant actor's task and where to launch it.
pub(crate) struct ParkedTask {
    pub(crate) task: Pin<Box<dyn Future<Output = ()> + Send>>,
    pub(crate) runtime: Handle,
    /// The actor's waker while it has no tokio task: its cell, which calls
    /// [`ControlLane::wake_dormant`].
    pub(crate) waker: Waker,
}

/// Launches an actor's task; given a reply, the task starts the service at once and answers
/// it, and may be handed back to be driven by the caller through that start (see
/// `runner::Inline`).
pub(crate) type Launch = Box<dyn FnOnce(Option<Reply>) -> Option<Inline> + Send>;

impl ControlLane {
    /// Keeps the actor's task unlaunched until its parent's start takes it (see
    /// [`take_launch`](Self::take_launch)) or the first control message is sent (a stop, a
    /// start by someone else): the task is launched by that send, from the sender's thread,
    /// so its set-up and its start run in one go where the sender runs, with no wake-up of
    /// another worker. User messages wait in their lane meanwhile, as they would for any
    /// service not started yet.
    pub(crate) fn launch_on_first_send(&self, launch: Launch) {
        lock(&self.queue).dormant = Dormant::Unlaunched(launch);
    }

    /// The actor's task, if nothing launched it yet (no control message was ever sent, and
    /// the lane is open): whoever takes it launches it.
    pub(crate) fn take_launch(&self) -> Option<Launch> {
        let mut queue = lock(&self.queue);
        match std::mem::take(&mut queue.dormant) {
            Dormant::Unlaunched(launch) => Some(launch),
            other => {
                queue.dormant = other;
                None
            }
        }
    }

    /// The actor's task is about to be polled by the task `by` wakes (see `runner::Inline`):
    /// a wake-up of the actor wakes `by` until [`end_drive`](Self::end_drive).
    pub(crate) fn drive_by(&self, by: &Waker) {
        let mut queue = lock(&self.queue);
        match &mut queue.dormant {
            Dormant::Driven { woken, by: was } => {
                *woken = false;
                if !was.will_wake(by) {
                    *was = by.clone();
                }
            }
            dormant => {
                *dormant = Dormant::Driven {
                    woken: false,
                    by: by.clone(),
                }
            }
        }
    }

    /// The task driven since [`drive_by`](Self::drive_by), not finished, is left to itself:
    /// parked until its first wake-up, or launched now if it was woken meanwhile.
    /// `None`: the task ended while driven.
    pub(crate) fn end_drive(&self, task: Option<ParkedTask>) {
        let mut queue = lock(&self.queue);
        let woken = match queue.dormant {
            Dormant::Driven { woken, .. } => woken,
            _ => true,
        };
        match task {
            Some(task) if !woken => queue.dormant = Dormant::Parked(task),
            Some(task) => {
                queue.dormant = Dormant::No;
                drop(queue);
                task.runtime.spawn(task.task);
            }
            None => queue.dormant = Dormant::No,
        }
    }

    /// Drops the actor's task if it has no tokio task of its own (never launched, or parked
    /// dormant): for the host, when the runtime that would have dropped it shuts down.
    pub(crate) fn drop_dormant(&self) {
        let dormant = {
            let mut queue = lock(&self.queue);
            match std::mem::take(&mut queue.dormant) {
                driven @ Dormant::Driven { .. } => {
                    queue.dormant = driven;
                    return;
                }
                other => other,
            }
        };
        // Dropped outside the lock: the task's drop drops the service.
        drop(dormant);
    }

    /// The actor's waker while it has no tokio task of its own: launches a parked task, or
    /// wakes the task that drives it.
    pub(crate) fn wake_dormant(&self) {
        let mut queue = lock(&self.queue);
        match std::mem::take(&mut queue.dormant) {
            Dormant::Parked(task) => {
                drop(queue);
                task.runtime.spawn(task.task);
            }
            Dormant::Driven { by, .. } => {
                queue.dormant = Dormant::Driven {
                    woken: true,
                    by: by.clone(),
                };
                drop(queue);
                by.wake();
            }
            other => queue.dormant = other,
        }
    }
}
