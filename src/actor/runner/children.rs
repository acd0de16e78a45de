//! What a parent hears about its children (one ended, one crashed, one was stopped by someone
//! else), and how it carries out its decision.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use uuid::Uuid;

use super::super::addr::ServiceRef;
use super::super::context::Phase;
use super::super::error::CrashReason;
use super::super::mailbox::{Control, Notice};
use super::super::service::{ChildAction, Service};
use super::super::watch::{Down, DownReason};
use super::{Flow, Runner};

impl<A: Service> Runner<A> {
    pub(super) async fn on_notice(&mut self, notice: Notice) -> Flow {
        match notice {
            Notice::Exited { child: id } => {
                self.ctx.children.retain(|c| c.id() != id);
                Flow::Continue
            }
            Notice::Stopped { child: id, run } => match self.current_child(id, run) {
                Some(child) => self.child_stopped(child).await,
                None => Flow::Continue,
            },
            Notice::Crashed {
                child: id,
                reason,
                run,
            } => match self.current_child(id, run) {
                // Not running: the child's fate follows ours (restarted or stopped with us).
                Some(child) if self.ctx.phase == Phase::Running => {
                    self.child_crashed(child, reason).await
                }
                _ => Flow::Continue,
            },
            Notice::Down(down) => self.watched_down(*down).await,
            Notice::Reparented => {
                let depth = self.cell.core.depth() + 1;
                for child in &self.ctx.children {
                    child.core().set_depth(depth);
                    let _ = child
                        .core()
                        .control
                        .send(Control::Notice(Notice::Reparented));
                }
                Flow::Continue
            }
        }
    }

    /// A service we watch is down: the watch is over; `on_down` hears it, if we are running.
    async fn watched_down(&mut self, down: Down) -> Flow {
        self.ctx.watching.retain(|(id, _)| *id != down.watch());
        if !matches!(self.ctx.phase, Phase::Running | Phase::Starting) {
            return Flow::Continue;
        }
        // Running or starting: the instance exists (see `Runner::actor`).
        let Some(actor) = self.actor.as_mut() else {
            return Flow::Continue;
        };
        let heard = AssertUnwindSafe(actor.on_down(down, &mut self.ctx))
            .catch_unwind()
            .await;
        match heard {
            Ok(Ok(())) => Flow::Continue,
            Ok(Err(e)) => self.crash(CrashReason::from(e)).await,
            Err(panic) => self.crash(CrashReason::from_panic(panic, "on_down")).await,
        }
    }

    /// Tells our watchers we are down (once: a later call finds no watchers).
    pub(super) fn fire_down(&self) {
        let core = &self.cell.core;
        let reason = match core.crash_reason() {
            Some(reason) => DownReason::Crashed(reason),
            None => DownReason::Stopped,
        };
        core.watchers.fire(self.ctx.myself(), &reason);
    }

    /// The child `id`, if it is still one of ours and the notice about its run `run` is not
    /// stale: a child restarted since (by our own restart, a sibling's group restart, or anyone
    /// else) and not crashed again needs no decision.
    fn current_child(&self, id: Uuid, run: u32) -> Option<ServiceRef> {
        let child = self.ctx.children.iter().find(|c| c.id() == id)?;
        (child.restart_count() == run || child.is_crashed()).then(|| child.clone())
    }

    /// A child whose stops we decide was stopped by someone else and waits for our decision.
    async fn child_stopped(&mut self, child: ServiceRef) -> Flow {
        let action = if self.ctx.phase == Phase::Running
            && let Some(actor) = self.actor.as_mut()
        {
            let decided = AssertUnwindSafe(actor.on_child_stopped(&child, &mut self.ctx))
                .catch_unwind()
                .await;
            match decided {
                Ok(action) => action,
                Err(panic) => {
                    // The child must not wait for an answer that will not come.
                    self.let_go(&child).await;
                    return self
                        .crash(CrashReason::from_panic(panic, "on_child_stopped"))
                        .await;
                }
            }
        } else {
            ChildAction::Remove
        };
        match action {
            ChildAction::Restart => {
                if let Err(e) = child.restart().await {
                    self.ctx.log().error(format_args!(
                        "Restarting stopped child {} failed: {e}",
                        child.label()
                    ));
                }
                Flow::Continue
            }
            ChildAction::Escalate => {
                self.let_go(&child).await;
                self.crash(CrashReason::msg(format!("child {} stopped", child.label())))
                    .await
            }
            // Keep and Remove: a stopped child is let go.
            _ => {
                self.let_go(&child).await;
                Flow::Continue
            }
        }
    }

    /// A child crashed and waits for our decision.
    async fn child_crashed(&mut self, child: ServiceRef, reason: CrashReason) -> Flow {
        // Running (see `on_notice`): the instance exists.
        let Some(actor) = self.actor.as_mut() else {
            return Flow::Continue;
        };
        let decided = AssertUnwindSafe(actor.on_child_crashed(&child, &reason, &mut self.ctx))
            .catch_unwind()
            .await;
        let action = match decided {
            Ok(action) => action,
            Err(panic) => {
                return self
                    .crash(CrashReason::from_panic(panic, "on_child_crashed"))
                    .await;
            }
        };
        match action {
            ChildAction::Remove => {
                self.ctx.log().warn(format_args!(
                    "Removing crashed child {}: {reason}",
                    child.label()
                ));
                self.let_go(&child).await;
                Flow::Continue
            }
            ChildAction::Restart => {
                if let Err(e) = child.restart().await {
                    self.ctx.log().error(format_args!(
                        "Restarting child {} failed: {e}",
                        child.label()
                    ));
                }
                Flow::Continue
            }
            ChildAction::Keep => Flow::Continue,
            ChildAction::Escalate => {
                self.crash(CrashReason::Child {
                    child: child.label().into(),
                    reason: Box::new(reason),
                })
                .await
            }
        }
    }

    /// Drops `child` from our children and stops it for good.
    async fn let_go(&mut self, child: &ServiceRef) {
        self.ctx.children.retain(|c| c != child);
        let _ = child.stop().await;
    }
}
