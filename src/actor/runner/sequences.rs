//! Mode's sequences: start (with the first start's children and name), stop (hooks, children
//! in reverse, tasks, exit stacks), restart (stop, reset, start), and the actor's end.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use super::super::addr::ServiceRef;
use super::super::context::Phase;
use super::super::error::{BoxError, CrashReason, Error, Hook, SharedError};
use super::super::host::Event;
use super::super::mailbox::{Control, Notice, Stop};
use super::super::service::Service;
use super::super::state::ServiceState;
use super::{Factory, Runner, bounded, boxed, fault_sleep, hooks};

impl<A: Service> Runner<A> {
    /// `on_init` on the current instance, or (`fresh`) on a fresh instance from the factory,
    /// whose settings are then read.
    pub(super) async fn init_instance(&mut self, fresh: bool) -> Result<(), CrashReason> {
        let index = self.cell.core.restart_count();
        let delay = self.fault_delay(Hook::Factory);
        let built = match self.factory.as_mut() {
            Some(Factory::Async { make, timeout }) if fresh => {
                Some(boxed(build_async(make, index, *timeout, delay)).await)
            }
            _ => None,
        };
        self.install_instance(built, fresh)
    }

    /// The synchronous part of [`init_instance`](Self::init_instance): puts in place the
    /// instance an async factory `built`, or a fresh one from the sync factory (`fresh`), or
    /// keeps the current one, and runs `on_init` on it.
    pub(super) fn install_instance(
        &mut self,
        built: Option<Result<A, Built>>,
        fresh: bool,
    ) -> Result<(), CrashReason> {
        let index = self.cell.core.restart_count();
        let built = match built {
            Some(Ok(actor)) => Some(actor),
            Some(Err(Built::Panicked(panic))) => {
                return Err(CrashReason::from_panic(panic, Hook::Factory.to_string()));
            }
            Some(Err(Built::Failed(source))) => {
                return Err(CrashReason::Error(Arc::new(Error::HookFailed {
                    label: self.cell.core.label.arc(),
                    hook: Hook::Factory,
                    source,
                })));
            }
            None => None,
        };
        let res = std::panic::catch_unwind(AssertUnwindSafe(|| {
            if let Some(actor) = built {
                self.actor = Some(actor);
            } else if fresh && let Some(Factory::Sync(factory)) = self.factory.as_mut() {
                self.actor = Some(factory(index));
            }
            if let Some(actor) = self.actor.as_mut() {
                actor.on_init();
            }
        }));
        res.map_err(|panic| CrashReason::from_panic(panic, Hook::OnInit.to_string()))?;
        if fresh && let Some(actor) = &self.actor {
            self.cell.core.settings.update(actor);
        }
        Ok(())
    }

    /// Start, restart, or start after a stop-for-restart (which resets like a restart).
    pub(super) async fn reset_and_start(&mut self, restart: bool) -> Result<(), Error> {
        let core = &self.cell.core;
        if core.is_closed() {
            return Err(core.gone_error());
        }
        if self.ctx.phase == Phase::Running {
            if !restart {
                return Ok(());
            }
            core.signal_stop();
            self.ctx.log().mundane("Restarting...");
            if let Some(e) = boxed(self.stop_sequence(false, None)).await {
                self.ctx
                    .log()
                    .warn(format_args!("Stop before restart reported: {e}"));
            }
        }
        // Only a service that ran before is reset; the very first start is not a restart.
        if self.deps_added {
            let core = &self.cell.core;
            core.bump_restart_count();
            core.clear_crash();
            core.watchers.rearm();
            fault_sleep(self.fault_delay(Hook::OnInit)).await;
            if let Err(reason) = boxed(self.init_instance(true)).await {
                return Err(boxed(self.fail_start(reason, false)).await);
            }
            if let Err(reason) = self.run_hook::<hooks::OnRestart>().await {
                return Err(boxed(self.fail_start(reason, false)).await);
            }
        } else if self.actor.is_none() {
            // An async factory's first instance; after a failed build, a start or restart
            // tries again (and counts as a restart, as any start after a crash does).
            if self.build_tried {
                let core = &self.cell.core;
                core.bump_restart_count();
                core.clear_crash();
                core.watchers.rearm();
            }
            self.build_tried = true;
            fault_sleep(self.fault_delay(Hook::OnInit)).await;
            if let Err(reason) = boxed(self.init_instance(true)).await {
                return Err(boxed(self.fail_start(reason, false)).await);
            }
            // On its own thread, the thread's hook waited for the first instance.
            if self.own_thread
                && let Err(reason) = self.run_hook::<hooks::OnThreadStarted>().await
            {
                return Err(boxed(self.fail_start(reason, false)).await);
            }
        } else if let Some(reason) = self.cell.core.crash_reason() {
            // Crashed before it ever started (on_init panicked).
            return Err(self.start_error(&reason));
        }
        self.start_sequence().await
    }

    async fn start_sequence(&mut self) -> Result<(), Error> {
        let core = &self.cell.core;
        core.renew_stop_token();
        self.set_state(ServiceState::Starting);
        self.ctx.phase = Phase::Starting;

        if !self.deps_added
            && let Err(reason) = self.first_start_setup().await
        {
            return Err(boxed(self.fail_start(reason, false)).await);
        }
        if !self.first_start_done {
            if let Err(reason) = self.run_hook::<hooks::OnFirstStart>().await {
                return Err(boxed(self.fail_start(reason, false)).await);
            }
            self.first_start_done = true;
        }
        self.ctx.log().mundane("Starting...");
        #[cfg(feature = "testkit")]
        if let Some(failure) = self.faults.as_mut().and_then(|f| f.on_start()) {
            let reason =
                self.hook_failed(Hook::OnStart, SharedError::from(BoxError::from(failure)));
            return Err(boxed(self.fail_start(reason, false)).await);
        }
        if let Err(reason) = self.run_hook::<hooks::OnStart>().await {
            return Err(boxed(self.fail_start(reason, false)).await);
        }
        self.ctx.tasks.launch_pending(&self.cell.core);
        self.ctx.phase = Phase::Running;

        if !self.ctx.children.is_empty()
            && let Err(reason) = boxed(self.start_children()).await
        {
            return Err(boxed(self.fail_start(reason, true)).await);
        }
        self.ctx.log().mundane("Started");
        if let Err(reason) = self.run_hook::<hooks::OnStarted>().await {
            return Err(boxed(self.fail_start(reason, true)).await);
        }
        self.set_state(ServiceState::Running);
        Ok(())
    }

    /// The first start only: claims the service's name and creates the children its
    /// `dependencies` lists.
    async fn first_start_setup(&mut self) -> Result<(), CrashReason> {
        let core = &self.cell.core;
        if let Some(name) = &core.name {
            let me = self.ctx.myself().service_ref();
            self.ctx
                .host()
                .claim_name(name, &me)
                .map_err(|e| CrashReason::Error(Arc::new(e)))?;
        }
        self.deps_added = true;
        fault_sleep(self.fault_delay(Hook::Dependencies)).await;
        let Some(actor) = self.actor.as_mut() else {
            return Ok(());
        };
        let deps = std::panic::catch_unwind(AssertUnwindSafe(|| actor.dependencies()))
            .map_err(|panic| CrashReason::from_panic(panic, Hook::Dependencies.to_string()))?;
        for dep in deps {
            let child = dep.create(self.ctx.host(), self.ctx.as_parent());
            self.ctx.children.push(child);
        }
        Ok(())
    }

    /// Starts the children in the order they were added.
    async fn start_children(&mut self) -> Result<(), CrashReason> {
        let children = self.ctx.children.clone();
        for child in children {
            fault_sleep(self.fault_delay(Hook::StartChild)).await;
            if let Err(e) = start_child(&child).await {
                if child.is_terminated() {
                    // Stopped for good by someone else, its exit notice still on its way: it
                    // leaves our children, as it would a moment later.
                    self.ctx.children.retain(|c| c != &child);
                    continue;
                }
                return Err(self.hook_failed(Hook::StartChild, Arc::new(e)));
            }
        }
        Ok(())
    }

    /// Undoes a start that failed: with `on_start` done, the whole stop sequence runs;
    /// before that, only the tasks added so far are cancelled. The service is left crashed.
    async fn fail_start(&mut self, reason: CrashReason, after_on_start: bool) -> Error {
        let core = &self.cell.core;
        let reason = core.record_crash(reason);
        core.signal_stop();
        self.ctx.log().error(format_args!("Start failed: {reason}"));
        if after_on_start {
            self.stop_sequence(false, None).await;
        } else {
            self.end_tasks().await;
        }
        // The state is published by whoever decides what comes next (see `answer`).
        self.ctx.phase = Phase::Idle;
        self.start_error(&reason)
    }

    /// Mode's stop order. `terminate_children`: children stop for good (else they wait to be
    /// started again). `cause`: the children are marked crashed with this reason.
    /// Leaves the state at `Stopping`: the caller publishes what comes next (a restart goes
    /// straight on to starting, a termination publishes after closing the mailbox).
    /// Returns the first failure; every step runs regardless.
    pub(super) async fn stop_sequence(
        &mut self,
        terminate_children: bool,
        cause: Option<CrashReason>,
    ) -> Option<Error> {
        let core = &self.cell.core;
        core.signal_stop();
        self.set_state(ServiceState::Stopping);
        self.ctx.phase = Phase::Stopping;
        let timeout = core.settings.shutdown_timeout();
        let mut first: Option<Error> = None;

        self.ctx.log().mundane("Stopping...");
        if let Err(reason) = self.run_stop_hook::<hooks::OnStop>().await {
            self.report_stop_failure(reason, &mut first);
        }
        if !self.ctx.children.is_empty() {
            boxed(self.stop_children(terminate_children, cause, &mut first)).await;
        }

        // With `wait_for_shutdown`, the background tasks (told to stop already) get until the
        // flag to finish their work, since the flag is how they say they are done; Mode's
        // cancellation lets a task clean up the same way. Then they are cancelled.
        if self.cell.core.settings.wait_for_shutdown() {
            let flag = self.cell.core.wait_shutdown_flag();
            let waited = boxed(tokio::time::timeout(timeout, flag)).await;
            if waited.is_err() {
                self.ctx.log().warn(format_args!(
                    "Gave up waiting for the shutdown flag after {timeout:?}"
                ));
            }
        }
        self.ctx.tasks.cancel_all();
        self.ctx.log().mundane("Stopped");

        fault_sleep(self.fault_delay(Hook::JoinTasks)).await;
        let stuck = self.join_tasks().await;
        let late = self.close_exits().await;
        if late > 0 {
            self.ctx.log().warn(format_args!(
                "{late} async context clean-up(s) did not finish within {timeout:?}"
            ));
        }
        if !stuck.is_empty() {
            let names: Vec<&str> = stuck.iter().map(|s| &**s).collect();
            let reason = self.hook_failed(
                Hook::JoinTasks,
                SharedError::from(BoxError::from(format!(
                    "tasks still running {timeout:?} after cancel: {}",
                    names.join(", ")
                ))),
            );
            self.report_stop_failure(reason, &mut first);
        }

        if let Err(reason) = self.run_stop_hook::<hooks::OnShutdown>().await {
            self.report_stop_failure(reason, &mut first);
        }
        // Whatever on_shutdown added belongs to this run: it must not leak into the next.
        self.end_tasks().await;
        self.ctx.log().mundane("Shutdown complete");
        self.ctx.phase = Phase::Idle;
        first
    }

    /// Stops the children newest first, each waited for, as part of our own stop or restart.
    async fn stop_children(
        &mut self,
        terminate: bool,
        cause: Option<CrashReason>,
        first: &mut Option<Error>,
    ) {
        let child_cause = cause.map(|reason| CrashReason::Parent {
            parent: self.cell.core.label.arc(),
            reason: Box::new(reason),
        });
        let children = if terminate {
            std::mem::take(&mut self.ctx.children)
        } else {
            self.ctx.children.clone()
        };
        let delay = self.fault_delay(Hook::StopChild);
        let stop_one = |child: ServiceRef| {
            let cause = child_cause.clone();
            async move {
                if let Some(delay) = delay {
                    tokio::time::sleep(delay).await;
                }
                let res = child
                    .core()
                    .request_raw("stop", |reply| {
                        Control::Stop(Stop::by_parent(terminate).because(cause).reply_to(reply))
                    })
                    .await;
                (child, res)
            }
        };
        let results = if self.cell.core.settings.concurrent_child_stop() {
            futures::future::join_all(children.into_iter().rev().map(stop_one)).await
        } else {
            let mut results = Vec::with_capacity(children.len());
            for child in children.into_iter().rev() {
                results.push(stop_one(child).await);
            }
            results
        };
        for (_, res) in results {
            match res {
                // Answered, or already gone (nothing left to stop).
                Ok(Ok(_)) | Err(_) => {}
                Ok(Err(e)) => {
                    let reason = self.hook_failed(Hook::StopChild, Arc::new(e));
                    self.report_stop_failure(reason, first);
                }
            }
        }
    }

    /// Cancels and joins the background tasks and closes the exit stack, each bounded by the
    /// shutdown timeout.
    async fn end_tasks(&mut self) {
        self.ctx.tasks.cancel_all();
        self.join_tasks().await;
        self.close_exits().await;
    }

    /// Joins the (cancelled) background tasks, bounded by the shutdown timeout; the names of
    /// those still running after it.
    async fn join_tasks(&mut self) -> Vec<Arc<str>> {
        if self.ctx.tasks.len() == 0 {
            return Vec::new();
        }
        let timeout = self.cell.core.settings.shutdown_timeout();
        boxed(self.ctx.tasks.join_all(timeout)).await
    }

    /// Closes the exit stack, bounded by the shutdown timeout; how many clean-ups were late.
    async fn close_exits(&mut self) -> usize {
        if self.ctx.exits.is_empty() {
            return 0;
        }
        let timeout = self.cell.core.settings.shutdown_timeout();
        boxed(self.ctx.exits.close(timeout)).await
    }

    fn report_stop_failure(&self, reason: CrashReason, first: &mut Option<Error>) {
        self.ctx.log().error(format_args!("{reason}"));
        if reason.is_panic() {
            self.cell.core.record_crash(reason.clone());
        }
        if first.is_none() {
            *first = Some(self.start_error(&reason));
        }
    }

    /// Closes the user lane for good (see `UserLane::close`); what was queued becomes dead
    /// letters.
    pub(super) fn close_user_lane(&mut self) {
        let core = &self.cell.core;
        let left = self
            .cell
            .user
            .close(&mut self.inbox, |env| env.is_user_message());
        // The host's own services (the registry) only get idempotent requests (a snapshot, a
        // lookup): what is left of them at shutdown is not a user's lost message.
        if !core.internal {
            core.dead_lettered(left, &**self.ctx.host());
        }
    }

    /// Ends the actor for good: children first, then the mailbox is closed and drained.
    pub(super) async fn terminate(&mut self) {
        let children: Vec<ServiceRef> = std::mem::take(&mut self.ctx.children);
        if !children.is_empty() {
            boxed(async {
                for child in children.iter().rev() {
                    let _ = child.stop().await;
                }
            })
            .await;
        }
        self.end_tasks().await;

        self.close_user_lane();
        let core = &self.cell.core;
        // Dropping left-over control requests resolves their waiters with `gone_error`.
        drop(core.control.close());
        drop(std::mem::take(&mut self.deferred));
        let host = self.ctx.host();
        if let Some(name) = &core.name {
            host.release_name(name, core.id);
        }
        self.report(Event::Removed {
            id: core.id,
            key: core.host_key(),
        });
        if let Some(parent) = core.parent()
            && !self.parent_let_go
        {
            let exited = Control::Notice(Notice::Exited { child: core.id });
            let _ = parent.core().control.send(exited);
        }
        self.ctx.unwatch_all();
        // Published last, so whoever sees the stopped state finds the mailbox closed, the name
        // free, the host and the parent told; then the watchers hear it.
        self.settle();
        self.fire_down();
    }
}

/// Starts `child` (see [`ServiceRef::maybe_start`]). A child whose task was never launched is
/// started by its parent as a spawn starts a service: its task is launched starting, and
/// driven by the parent's task through that start where it can be (see `Inline`), with no
/// round trip through its control lane. Same hooks, in the same order, with the same answer.
async fn start_child(child: &ServiceRef) -> Result<bool, Error> {
    let core = child.core();
    match core.control.take_launch() {
        Some(launch) => super::start_launched(core, |reply| launch(Some(reply))).await,
        None => child.maybe_start().await,
    }
}

/// Why an async factory gave no instance.
pub(super) enum Built {
    Panicked(Box<dyn std::any::Any + Send>),
    Failed(SharedError),
}

/// Calls the async factory `make` for instance `index` and awaits it, bounded by `timeout`
/// (an injected fault's `delay` first, within the bound).
async fn build_async<A>(
    make: &mut super::super::spec::AsyncFactory<A>,
    index: u32,
    timeout: std::time::Duration,
    delay: Option<std::time::Duration>,
) -> Result<A, Built> {
    use futures::FutureExt;
    // The factory itself may panic before it returns its future.
    let fut =
        std::panic::catch_unwind(AssertUnwindSafe(|| make(index))).map_err(Built::Panicked)?;
    let build = async move {
        fault_sleep(delay).await;
        AssertUnwindSafe(fut).catch_unwind().await
    };
    match bounded(timeout, build).await {
        Some(Ok(Ok(actor))) => Ok(actor),
        Some(Ok(Err(e))) => Err(Built::Failed(SharedError::from(e))),
        Some(Err(panic)) => Err(Built::Panicked(panic)),
        None => Err(Built::Failed(SharedError::from(BoxError::from(format!(
            "did not return within {timeout:?}"
        ))))),
    }
}
