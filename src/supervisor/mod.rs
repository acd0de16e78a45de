//! Supervisors: actors that restart their children by a [`Strategy`], within a restart
//! intensity, and escalate to their own supervisor past it.
//!
//! A supervisor is an ordinary service whose children are its dependencies. A child's crash
//! reaches it as a control message on its own lane (no polling) and is decided in its
//! [`Service::on_child_crashed`]; a child stopped by someone else is decided in
//! [`Service::on_child_stopped`] (a permanent child is restarted, as in OTP).
//!
//! ```
//! use modo::prelude::*;
//! use modo::supervisor::{Strategy, Supervisor};
//! use std::time::Duration;
//!
//! #[derive(Default)]
//! struct Job;
//! impl Service for Job {}
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), modo::Error> {
//! let system = System::new();
//! let sup = Supervisor::builder()
//!     .strategy(Strategy::OneForAll)
//!     .max_restarts(3)
//!     .over(Duration::from_secs(1))
//!     .build();
//! let sup = system.spawn(sup).await?;
//! let job: Addr<Job> = sup.supervise(Job::default).await?;
//! job.crash("boom");                       // the supervisor restarts it
//! job.wait_until(|j| j.restart_count() == 1 && j.is_started()).await;
//! assert_eq!(job.state(), ServiceState::Running);
//! # system.shutdown().await }
//! ```
//!
//! # Invariants
//! - Every child of a supervisor is supervised, however it was added (Mode forgets the ones
//!   given to its constructor).
//! - A restarted child keeps its address and its mailbox: what was queued for it is handled
//!   after the restart, in order.
//! - More than `max_restarts` restarts within `over` stop the children and crash the
//!   supervisor with [`Error::MaxRestartsExceeded`]; its own supervisor handles that crash.
//!   A restart is counted when it is decided, before its backoff.
//! - A backoff does not hold the supervisor up: the restart is scheduled (a timer task of the
//!   supervisor's run, named `<label>.backoff(<child>)`) and the supervisor goes on handling
//!   other children's crashes and its requests. A crash of a child that a pending restart
//!   will restart anyway (a sibling's one-for-all or rest-for-one group) is not counted or
//!   restarted again; a group restart drops the pending restarts of the children it
//!   restarts. The supervisor's stop (or restart) cancels what is pending; a discarded child
//!   leaves it; a child restarted by hand during its backoff (and not crashed again) is not
//!   restarted a second time when the backoff runs out.
//! - One for one with no backoff, a crashed child restarts in place: it asks the supervisor's
//!   decider in its own task (`in_place.rs`), which counts the restart against the shared
//!   intensity, and restarts at once, with no trip through the supervisor's mailbox; a
//!   supervisor busy with a slow request does not hold it up. A temporary child, a restart past
//!   the intensity, and every other strategy or backoff are decided by the supervisor.
//! - A restart of the crashed child alone that the supervisor decides (one-for-one, or the last
//!   of a rest-for-one) is sent, not awaited: the supervisor answers meanwhile. A restart that
//!   fails, in place or sent, comes back as a crash notice, counted and retried like any
//!   crash. A group's restarts are awaited one by one, in start order.

mod in_place;
mod requests;
mod strategy;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use strategy::Intensity;
pub use strategy::{Backoff, RestartPolicy, Strategy};

use crate::actor::mailbox::{Control, Stop};
use crate::{
    ChildAction, Context, CrashReason, Error, Handler, HookResult, IntoServiceSpec, Service,
    ServiceRef, ServiceSpec, TaskHandle,
};

/// Adds a child to a supervisor's context; returns its handle.
type AddChild = Box<dyn FnOnce(&mut Context<Supervisor>) -> ServiceRef + Send>;

/// Mode's default restart intensity: 100 restarts...
pub const DEFAULT_MAX_RESTARTS: u32 = 100;
/// ... within 1 second.
pub const DEFAULT_OVER: Duration = Duration::from_secs(1);

/// A supervising service. Build one with [`Supervisor::builder`].
pub struct Supervisor {
    strategy: Strategy,
    /// Shared with the decider its children ask in their own tasks (see `in_place.rs`).
    intensity: Arc<Intensity>,
    backoff: Backoff,
    label: String,
    /// Children given to the builder, added at the first start.
    initial: Vec<(AddChild, RestartPolicy)>,
    children: HashMap<Uuid, ChildInfo>,
    /// Restarts waiting out their backoff, in the order they were decided.
    pending: Vec<Pending>,
    /// Numbers the pending restarts of this run.
    tickets: u64,
}

/// A restart decided but waiting out its backoff: a timer task (cancelled with the
/// supervisor's run) tells the supervisor [`RestartDue`] with the ticket.
struct Pending {
    ticket: Ticket,
    /// The child whose crash (or failed restart) it answers.
    crashed: ServiceRef,
    /// `crashed`'s restart count when it was decided: a child restarted by hand meanwhile
    /// (and running) has had its answer.
    run: u32,
    /// What the restart restarts, in order (the crashed child among them).
    group: Vec<ServiceRef>,
    reason: String,
    timer: TaskHandle,
}

/// A pending restart's number: the supervisor's run (its restart count) and a count within
/// it, so a `RestartDue` left in the mailbox by an earlier run never matches.
type Ticket = (u32, u64);

#[derive(Debug, Clone, Copy)]
struct ChildInfo {
    /// Restarts in a row, for the backoff.
    in_a_row: u32,
    last_restart: Option<tokio::time::Instant>,
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("label", &self.label)
            .field("strategy", &self.strategy)
            .field("max_restarts", &self.intensity.max)
            .field("over", &self.intensity.over)
            .field("backoff", &self.backoff)
            .field("children", &self.children.len())
            .field("pending_restarts", &self.pending.len())
            .finish()
    }
}

/// Builds a [`Supervisor`].
pub struct SupervisorBuilder {
    strategy: Strategy,
    max_restarts: u32,
    over: Duration,
    backoff: Backoff,
    label: String,
    initial: Vec<(AddChild, RestartPolicy)>,
}

impl fmt::Debug for SupervisorBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisorBuilder")
            .field("strategy", &self.strategy)
            .field("max_restarts", &self.max_restarts)
            .field("over", &self.over)
            .field("children", &self.initial.len())
            .finish()
    }
}

impl Supervisor {
    /// A builder with Mode's defaults: `OneForOne`, 100 restarts over 1 s, no backoff.
    pub fn builder() -> SupervisorBuilder {
        SupervisorBuilder {
            strategy: Strategy::OneForOne,
            max_restarts: DEFAULT_MAX_RESTARTS,
            over: DEFAULT_OVER,
            backoff: Backoff::None,
            label: "Supervisor".to_owned(),
            initial: Vec::new(),
        }
    }

    /// A child's restart policy, as noted on its cell when it was added: it survives this
    /// supervisor's own restart (a fresh instance from a factory knows no children).
    fn policy(child: &ServiceRef) -> RestartPolicy {
        RestartPolicy::from_tag(child.core().parent_tag())
    }

    /// Takes `child` on with `policy`.
    fn take_on(&mut self, ctx: &mut Context<Self>, child: &ServiceRef, policy: RestartPolicy) {
        child.core().set_parent_tag(policy.tag());
        ctx.decide_stops_of(child, policy == RestartPolicy::Permanent);
        self.children.insert(
            child.id(),
            ChildInfo {
                in_a_row: 0,
                last_restart: None,
            },
        );
    }

    /// Logs a supervision event (see [`log_event`]).
    fn event(
        &self,
        ctx: &Context<Self>,
        child: &ServiceRef,
        what: &str,
        reason: &dyn fmt::Display,
    ) {
        log_event(
            &ctx.core().prefix(),
            &self.label,
            self.strategy,
            child,
            what,
            reason,
        );
    }

    /// Counts one restart against the intensity; past it, crashes the supervisor.
    fn allow_restart(&mut self, ctx: &mut Context<Self>) -> bool {
        match self.intensity.record(tokio::time::Instant::now()) {
            Ok(()) => true,
            Err(count) => {
                let error = Error::MaxRestartsExceeded {
                    label: ctx.label().into(),
                    restarts: count,
                    max_restarts: self.intensity.max,
                    within: self.intensity.over,
                };
                tracing::error!(target: "modo", "{}: {error}; escalating", ctx.log().prefix());
                // The crash stops every child (with their hooks) and tells our own parent.
                ctx.crash(error);
                false
            }
        }
    }

    /// The backoff before the next restart of `child`: one more restart in a row.
    fn next_delay(&mut self, child: &ServiceRef) -> Duration {
        let now = tokio::time::Instant::now();
        let longest = self.backoff.longest().max(self.intensity.over);
        let info = self.children.entry(child.id()).or_insert(ChildInfo {
            in_a_row: 0,
            last_restart: None,
        });
        // A child that ran well for a while starts its backoff over.
        if info
            .last_restart
            .is_some_and(|t| now.saturating_duration_since(t) > longest * 2)
        {
            info.in_a_row = 0;
        }
        info.in_a_row += 1;
        self.backoff.delay(info.in_a_row)
    }

    /// Whether a restart waiting out its backoff will restart `child` (it is in its group).
    fn is_pending(&self, child: &ServiceRef) -> bool {
        self.pending.iter().any(|p| p.group.contains(child))
    }

    /// What a crash of `child` restarts, by the strategy, in start order.
    fn group_of(&self, ctx: &Context<Self>, child: &ServiceRef) -> Vec<ServiceRef> {
        let all = ctx.children();
        let position = all.iter().position(|c| c == child).unwrap_or(0);
        match self.strategy {
            Strategy::OneForAll => all.to_vec(),
            Strategy::RestForOne => all[position..].to_vec(),
            _ => vec![child.clone()],
        }
    }

    /// Restarts `group` after `delay`, without waiting here: a timer task of this run tells
    /// the supervisor when it is due, and meanwhile it handles other crashes and requests.
    fn schedule(
        &mut self,
        ctx: &mut Context<Self>,
        crashed: &ServiceRef,
        group: Vec<ServiceRef>,
        delay: Duration,
        reason: String,
    ) {
        self.tickets += 1;
        let ticket = (ctx.restart_count(), self.tickets);
        let me = ctx.myself().downgrade();
        let stop = ctx.stop_signal();
        let name = format!("{}.backoff({})", self.label, crashed.label());
        let timer = ctx.spawn_named(name, async move {
            if stop.sleep(delay).await
                && let Some(me) = me.upgrade()
            {
                let _ = me.tell(RestartDue(ticket)).await;
            }
        });
        tracing::info!(
            target: "modo",
            "{}: backing off {delay:?} before restarting {}",
            ctx.log().prefix(),
            crashed.label()
        );
        self.pending.push(Pending {
            ticket,
            crashed: crashed.clone(),
            run: crashed.restart_count(),
            group,
            reason,
            timer,
        });
    }

    /// Drops the pending restarts of the children in `group`, which are being restarted (or
    /// discarded) now: a child is not restarted twice for one crash.
    fn cancel_pending_of(&mut self, group: &[ServiceRef]) {
        self.pending.retain(|p| {
            let covered = group.contains(&p.crashed);
            if covered {
                p.timer.abort();
            }
            !covered
        });
    }

    /// Restarts `group` (in order) after stopping the healthy ones among them in reverse.
    /// A restart that fails is another crash: counted against the intensity, then retried
    /// (with the rest of the group) after its backoff, or at once without one.
    async fn restart_group(
        &mut self,
        ctx: &mut Context<Self>,
        crashed: &ServiceRef,
        group: Vec<ServiceRef>,
    ) {
        self.cancel_pending_of(&group);
        if let [only] = group.as_slice()
            && only == crashed
        {
            self.restart_alone(crashed);
            return;
        }
        for sibling in group.iter().rev().filter(|c| *c != crashed) {
            let _ = sibling
                .core()
                .request("stop", |reply| {
                    Control::Stop(Stop::by_parent(false).reply_to(reply))
                })
                .await;
        }
        for (i, child) in group.iter().enumerate() {
            if let Some(info) = self.children.get_mut(&child.id()) {
                info.last_restart = Some(tokio::time::Instant::now());
            }
            while let Err(e) = child.restart().await {
                self.event(ctx, child, "restart failed for", &e);
                if child.is_terminated() {
                    // It ended meanwhile (stopped for good by someone else): nothing to
                    // restart, but the rest of the group still is.
                    self.children.remove(&child.id());
                    break;
                }
                if !self.allow_restart(ctx) {
                    return;
                }
                let delay = self.next_delay(child);
                if !delay.is_zero() {
                    self.schedule(ctx, child, group[i..].to_vec(), delay, e.to_string());
                    return;
                }
            }
        }
    }

    /// Restarts `child`, the only one its crash restarts, without waiting for its start: the
    /// supervisor goes on with its mailbox meanwhile (one wake-up less per restart). A restart
    /// that fails comes back as a crash notice, so it is counted, backed off and retried as
    /// the awaited restart of a group is.
    fn restart_alone(&mut self, child: &ServiceRef) {
        if let Some(info) = self.children.get_mut(&child.id()) {
            info.last_restart = Some(tokio::time::Instant::now());
        }
        let core = child.core();
        core.signal_stop();
        if core.control.send(Control::Restart { reply: None }).is_err() {
            // It ended meanwhile (stopped for good by someone else): nothing to restart.
            self.children.remove(&child.id());
        }
    }
}

/// Logs a supervision event of supervisor `supervisor` (log prefix `prefix`) about `child`,
/// with the fields a reader needs.
fn log_event(
    prefix: &dyn fmt::Display,
    supervisor: &str,
    strategy: Strategy,
    child: &ServiceRef,
    what: &str,
    reason: &dyn fmt::Display,
) {
    // Nothing is formatted unless a subscriber takes the line: a restart with nobody
    // listening pays no allocation for it.
    if !tracing::enabled!(target: "modo", tracing::Level::WARN) {
        return;
    }
    // Everything a reader needs is in the line itself (no fields repeating it), and a
    // restart is counted from 1: the restart this line announces.
    let restarts = child.restart_count();
    let count = if what.starts_with("restarting") {
        format!("restart {}", restarts + 1)
    } else {
        format!("{restarts} restart(s) so far")
    };
    let label = child.label();
    tracing::warn!(
        target: "modo",
        modo_supervisor = %supervisor,
        modo_child = %label,
        modo_strategy = %strategy,
        modo_restart_count = restarts,
        "{prefix}: {what} {label}: {reason} ({strategy}, {count})"
    );
}

impl SupervisorBuilder {
    /// The strategy (default `OneForOne`).
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// At most this many restarts within [`over`](Self::over) (default 100).
    pub fn max_restarts(mut self, max: u32) -> Self {
        self.max_restarts = max;
        self
    }

    /// The sliding window of the restart intensity (default 1 s).
    pub fn over(mut self, window: Duration) -> Self {
        self.over = window;
        self
    }

    /// The wait before each restart (default none), by how many times in a row the child was
    /// restarted. The supervisor does not wait in the meantime: it restarts other children,
    /// answers requests, and cancels the wait if it stops.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// The supervisor's label (default `Supervisor`).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// A permanent child built by `factory` (and again on every restart).
    pub fn child<S: Service>(self, factory: impl FnMut() -> S + Send + 'static) -> Self {
        self.child_spec(ServiceSpec::from_factory(factory), RestartPolicy::Permanent)
    }

    /// A child from any spec, with a restart policy.
    pub fn child_spec<T: IntoServiceSpec>(mut self, spec: T, policy: RestartPolicy) -> Self {
        let add: AddChild = Box::new(move |ctx| ctx.add_dependency(spec).service_ref());
        self.initial.push((add, policy));
        self
    }

    /// The supervisor.
    pub fn build(self) -> Supervisor {
        Supervisor {
            strategy: self.strategy,
            intensity: Arc::new(Intensity::new(self.max_restarts, self.over)),
            backoff: self.backoff,
            label: self.label,
            initial: self.initial,
            children: HashMap::new(),
            pending: Vec::new(),
            tickets: 0,
        }
    }
}

impl Service for Supervisor {
    fn on_init(&mut self) {
        // A restarted supervisor starts with a clean window. Its restart restarted every
        // child: the restarts that were waiting out a backoff are moot (their timers ended
        // with the last run).
        self.intensity.reset();
        self.pending.clear();
    }

    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        // Set at every start: a fresh instance from a factory may be built differently.
        ctx.set_crash_decider(in_place::InPlace::for_supervisor(self));
        Ok(())
    }

    async fn on_first_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        for (add, policy) in std::mem::take(&mut self.initial) {
            let child = add(ctx);
            self.take_on(ctx, &child, policy);
        }
        Ok(())
    }

    async fn on_child_crashed(
        &mut self,
        child: &ServiceRef,
        reason: &CrashReason,
        ctx: &mut Context<Self>,
    ) -> ChildAction {
        match self.strategy {
            Strategy::Crashing => {
                self.event(ctx, child, "failing the system for", reason);
                ctx.system().fail(Error::Crashed {
                    label: child.label().into(),
                    reason: reason.clone(),
                });
                return ChildAction::Keep;
            }
            Strategy::ForfeitOneForOne => {
                self.event(ctx, child, "giving up on crashed service", reason);
                self.children.remove(&child.id());
                return ChildAction::Remove;
            }
            Strategy::ForfeitOneForAll => {
                self.event(ctx, child, "giving up on all services after", reason);
                let others: Vec<ServiceRef> = ctx
                    .children()
                    .iter()
                    .rev()
                    .filter(|c| *c != child)
                    .cloned()
                    .collect();
                for other in others {
                    self.children.remove(&other.id());
                    let _ = ctx.remove_dependency(&other).await;
                }
                self.children.remove(&child.id());
                return ChildAction::Remove;
            }
            _ => {}
        }
        if self.is_pending(child) {
            // A restart waiting out its backoff restarts it anyway (a group restart of a
            // sibling that crashed first): one restart, not two.
            tracing::debug!(
                target: "modo",
                "{}: {} crashed ({reason}); a pending restart covers it",
                ctx.log().prefix(),
                child.label()
            );
            return ChildAction::Keep;
        }
        if Self::policy(child) == RestartPolicy::Temporary {
            self.event(ctx, child, "not restarting temporary", reason);
            self.children.remove(&child.id());
            return ChildAction::Remove;
        }
        if !self.allow_restart(ctx) {
            return ChildAction::Keep;
        }
        let delay = self.next_delay(child);
        let group = self.group_of(ctx, child);
        if delay.is_zero() {
            self.event(ctx, child, "restarting", reason);
            self.restart_group(ctx, child, group).await;
        } else {
            self.schedule(ctx, child, group, delay, reason.to_string());
        }
        ChildAction::Keep
    }

    async fn on_child_stopped(
        &mut self,
        child: &ServiceRef,
        ctx: &mut Context<Self>,
    ) -> ChildAction {
        if Self::policy(child) == RestartPolicy::Permanent
            && !matches!(
                self.strategy,
                Strategy::ForfeitOneForOne | Strategy::ForfeitOneForAll | Strategy::Crashing
            )
        {
            if !self.allow_restart(ctx) {
                return ChildAction::Remove;
            }
            self.event(ctx, child, "restarting stopped permanent", &"stopped");
            return ChildAction::Restart;
        }
        self.children.remove(&child.id());
        ChildAction::Remove
    }

    fn label(&self) -> std::borrow::Cow<'static, str> {
        self.label.clone().into()
    }
}

/// A pending restart's backoff is over (sent by its timer task).
struct RestartDue(Ticket);

impl Handler<RestartDue> for Supervisor {
    type Reply = ();

    async fn handle(&mut self, RestartDue(ticket): RestartDue, ctx: &mut Context<Self>) {
        let Some(i) = self.pending.iter().position(|p| p.ticket == ticket) else {
            // Cancelled meanwhile (covered by a group restart, discarded, or an earlier run).
            return;
        };
        let Pending {
            crashed,
            run,
            group,
            reason,
            ..
        } = self.pending.remove(i);
        if !ctx.children().contains(&crashed) {
            // It ended for good meanwhile: nothing to restart for it.
            return;
        }
        if crashed.restart_count() != run && !crashed.is_crashed() {
            // Restarted by hand during its backoff, and not crashed since: its crash was
            // answered. (Crashed again, it still waits for this restart.)
            tracing::info!(
                target: "modo",
                "{}: {} was restarted during its backoff; the pending restart is dropped",
                ctx.log().prefix(),
                crashed.label()
            );
            return;
        }
        let group: Vec<ServiceRef> = group
            .into_iter()
            .filter(|c| ctx.children().contains(c))
            .collect();
        self.event(ctx, &crashed, "restarting", &reason);
        self.restart_group(ctx, &crashed, group).await;
    }
}
