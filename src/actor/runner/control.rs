//! What each control message does: start, restart, stop (for good, for a restart of the
//! parent, or put to the parent), crash; and the state a finished one leaves.

use std::future::Future;
use std::pin::Pin;

use super::super::addr::ServiceRef;
use super::super::context::Phase;
use super::super::error::{CrashReason, Error};
use super::super::mailbox::{Control, Notice, Reply, Stop};
use super::super::service::Service;
use super::super::state::ServiceState;
use super::{Flow, Runner, boxed};

/// Where a crash leaves the service.
enum Crashed {
    /// Stopped and decided: ended (a root), or waiting for its parent.
    Decided(Flow),
    /// Stopped; its parent's decider restarts it now.
    RestartNow,
}

/// A boxed control step (see [`Runner::control_step`]).
pub(super) type Step<'a> = Pin<Box<dyn Future<Output = Flow> + Send + 'a>>;

impl<A: Service> Runner<A> {
    /// The step that acts on a control message; if the actor is to end, it terminates it
    /// before returning. Control messages are rare and their sequences run the user's hooks,
    /// whose futures can be large: each kind's step is boxed on its own, sized for that kind,
    /// so none weighs on every idle actor's task and a crash or a notice does not pay for a
    /// start's or a stop's state (one allocation per control message).
    pub(super) fn control_step(&mut self, ctrl: Control) -> Step<'_> {
        match ctrl {
            Control::Start { reply } => Box::pin(async move {
                let flow = self.on_start_request(reply).await;
                self.exit_if(flow).await
            }),
            Control::Restart { reply } => Box::pin(async move {
                let flow = self.restart(reply).await;
                self.exit_if(flow).await
            }),
            Control::Stop(stop) => Box::pin(async move {
                let flow = self.on_stop(stop).await;
                self.exit_if(flow).await
            }),
            // The usual crash (a handler's panic) restarts in place within this one step.
            Control::Crash(reason) => Box::pin(async move {
                let flow = match self.crash_and_decide(reason).await {
                    Crashed::Decided(flow) => flow,
                    Crashed::RestartNow => self.restart(None).await,
                };
                self.exit_if(flow).await
            }),
            Control::Notice(notice) => Box::pin(async move {
                let flow = self.on_notice(notice).await;
                self.exit_if(flow).await
            }),
        }
    }

    /// Terminates the actor if `flow` says it ends.
    async fn exit_if(&mut self, flow: Flow) -> Flow {
        if let Flow::Exit(_) = flow {
            self.terminate().await;
        }
        flow
    }

    /// Restarts the service. A restart nobody waits for (the parent's own, `Lifecycle::Restart`
    /// sent as a message, or a restart in place) that fails is a crash: the parent hears of it.
    async fn restart(&mut self, reply: Option<Reply>) -> Flow {
        self.release_held_stops();
        let res = self.reset_and_start(true).await.map(|()| true);
        let tell_parent = reply.is_none();
        self.answer(reply, res, tell_parent)
    }

    async fn on_start_request(&mut self, reply: Option<Reply>) -> Flow {
        self.release_held_stops();
        let res = if self.ctx.phase == Phase::Running {
            Ok(false)
        } else if self.cell.core.is_closed() {
            Err(self.cell.core.gone_error())
        } else {
            self.reset_and_start(false).await.map(|()| true)
        };
        // The start a spawn asked for answers the spawner; if the service was adopted
        // meanwhile, its new parent did not ask and hears of the failure as a crash.
        let tell_parent = std::mem::take(&mut self.spawn_start);
        self.answer(reply, res, tell_parent)
    }

    async fn on_stop(&mut self, stop: Stop) -> Flow {
        let Stop {
            terminate,
            cause,
            reply,
            ask_parent,
            parent_let_go,
        } = stop;
        // Set only on a stop for good (see `Stop::by_parent`).
        self.parent_let_go |= parent_let_go;
        let mut res = Ok(true);
        let mut settle = cause.is_some();
        if let Some(reason) = &cause {
            self.cell.core.record_crash(reason.clone());
        }
        let was_running = self.ctx.phase == Phase::Running;
        // A running child stopped by someone else asks its parent before it ends (if the parent
        // decides its stops), and keeps its own children for a restart until then.
        let will_ask = terminate
            && ask_parent
            && was_running
            && cause.is_none()
            && self.cell.core.parent_decides_stops()
            && self.cell.core.parent().is_some();
        if terminate && !will_ask {
            // Stopping for good: no user message will be handled again. Close the user lane now,
            // not at the end: waiting senders get their message back, queued asks fail at once,
            // and nothing that waits on them (a child asking its stopping parent) can hold this
            // stop up.
            self.close_user_lane();
        }
        if was_running {
            settle = true;
            let stop_children = terminate && !will_ask;
            if let Some(e) = self.stop_sequence(stop_children, cause).await {
                res = Err(e);
            }
        }
        if will_ask {
            match self.put_to_parent(reply, res) {
                Ok(()) => return Flow::Continue,
                // The parent is gone: end as any stop for good.
                Err((r, re)) => return Flow::Exit(r.map(|r| (r, re))),
            }
        }
        if terminate {
            // `terminate` publishes the final state once the mailbox is closed.
            return Flow::Exit(reply.map(|r| (r, res)));
        }
        if settle {
            self.settle();
        }
        if let Some(reply) = reply {
            let _ = reply.send(res);
        }
        Flow::Continue
    }

    /// Stopped; the parent decides whether it ends or restarts. Holds the stop's answer until
    /// then. `Err` gives the answer back if the parent could not be told.
    #[allow(clippy::type_complexity)]
    fn put_to_parent(
        &mut self,
        reply: Option<Reply>,
        res: Result<bool, Error>,
    ) -> Result<(), (Option<Reply>, Result<bool, Error>)> {
        let core = &self.cell.core;
        let Some(parent) = core.parent() else {
            return Err((reply, res));
        };
        self.settle();
        let core = &self.cell.core;
        let notice = Control::Notice(Notice::Stopped {
            child: core.id,
            run: core.restart_count(),
        });
        if parent.core().control.send(notice).is_err() {
            return Err((reply, res));
        }
        if let Some(reply) = reply {
            self.held_stops.push((reply, res));
        }
        Ok(())
    }

    /// Answers the stops that waited for the parent's decision: the stop itself is done.
    pub(super) fn release_held_stops(&mut self) {
        for (reply, res) in self.held_stops.drain(..) {
            let _ = reply.send(res);
        }
    }

    /// Publishes the state a finished stop leaves: crashed if there is a crash reason.
    pub(super) fn settle(&self) {
        let end = if self.cell.core.crash_reason().is_some() {
            ServiceState::Crashed
        } else {
            ServiceState::Shutdown
        };
        self.set_state(end);
    }

    /// Sends `res` on `reply`; a failed start or restart means the service crashed: a root
    /// terminates (and answers once its mailbox is closed), a child waits for its parent,
    /// which is told (`tell_parent`) when it is not the one that asked.
    fn answer(
        &mut self,
        reply: Option<Reply>,
        res: Result<bool, Error>,
        tell_parent: bool,
    ) -> Flow {
        let crashed = res.is_err()
            && self.ctx.phase == Phase::Idle
            && self.cell.core.crash_reason().is_some();
        let flow = if crashed {
            let flow = self.after_crash(tell_parent);
            if let Flow::Continue = flow {
                self.settle();
            }
            flow
        } else {
            Flow::Continue
        };
        match flow {
            Flow::Continue => {
                if let Some(reply) = reply {
                    let _ = reply.send(res);
                }
                Flow::Continue
            }
            Flow::Exit(_) => Flow::Exit(reply.map(|r| (r, res))),
        }
    }

    /// Crashes the service: its stop sequence runs with its children marked crashed; a root
    /// then ends, a child restarts at once if its parent's decider says so, or waits for its
    /// parent's decision.
    pub(super) async fn crash(&mut self, reason: CrashReason) -> Flow {
        match self.crash_and_decide(reason).await {
            Crashed::Decided(flow) => flow,
            Crashed::RestartNow => boxed(self.restart(None)).await,
        }
    }

    /// [`crash`](Self::crash) up to the decision, leaving a restart in place to the caller.
    async fn crash_and_decide(&mut self, reason: CrashReason) -> Crashed {
        let core = &self.cell.core;
        let reason = core.record_crash(reason);
        core.signal_stop();
        let root = core.is_root();
        if root {
            // A crashed root ends for good (see `after_crash`).
            self.close_user_lane();
        }
        if self.ctx.phase == Phase::Running {
            self.ctx.log().error(format_args!("Crashed: {reason}"));
            self.stop_sequence(root, Some(reason)).await;
        } else if self.cell.core.state() == ServiceState::Crashed {
            return Crashed::Decided(Flow::Continue);
        }
        if self.parent_restarts_now() {
            // Crashed, as watchers and readers see it, then restarted as the parent would.
            self.settle();
            return Crashed::RestartNow;
        }
        let flow = self.after_crash(true);
        if let Flow::Continue = flow {
            self.settle();
        }
        Crashed::Decided(flow)
    }

    /// Whether the parent, running, has a decider that restarts this crashed child now (see
    /// `decide.rs`).
    fn parent_restarts_now(&self) -> bool {
        let core = &self.cell.core;
        let Some(parent) = core.parent() else {
            return false;
        };
        if parent.core().state() != ServiceState::Running {
            return false;
        }
        let Some(decider) = parent.core().decider() else {
            return false;
        };
        let reason = core
            .crash_reason()
            .unwrap_or_else(|| CrashReason::msg("crashed"));
        let me = self.ctx.myself().service_ref();
        decider.restart_now(&ServiceRef::from_any(parent), &me, &reason)
    }

    /// A crashed root terminates; a crashed child waits for its parent's decision.
    fn after_crash(&mut self, notify_parent: bool) -> Flow {
        let core = &self.cell.core;
        let Some(parent) = core.parent() else {
            return Flow::Exit(None);
        };
        if notify_parent {
            let reason = core
                .crash_reason()
                .unwrap_or_else(|| CrashReason::msg("crashed"));
            let notice = Control::Notice(Notice::Crashed {
                child: core.id,
                reason,
                run: core.restart_count(),
            });
            if parent.core().control.send(notice).is_err() {
                return Flow::Exit(None);
            }
        }
        Flow::Continue
    }
}
