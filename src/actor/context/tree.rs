//! The part of [`Context`] that shapes the tree: children added, inserted, started at run
//! time, adopted, removed, and whose stops this service decides.

use std::sync::Arc;

use super::super::addr::{Addr, ServiceRef};
use super::super::decide::CrashDecider;
use super::super::error::Error;
use super::super::host::Event;
use super::super::mailbox::{Control, Notice};
use super::super::runner;
use super::super::service::Service;
use super::super::spec::IntoServiceSpec;
use super::{Context, Phase};

impl<A: Service> Context<A> {
    /// The children of this service, in the order they were added.
    pub fn children(&self) -> &[ServiceRef] {
        &self.children
    }

    /// Adds a child service (Mode's `add_dependency`). It is started with this service's
    /// start sequence (children in the order added); if this service is already past that
    /// step, start it yourself or use [`add_runtime_dependency`](Self::add_runtime_dependency).
    /// It is stopped before this service finishes stopping, in reverse order.
    pub fn add_dependency<T: IntoServiceSpec>(&mut self, service: T) -> Addr<T::Service> {
        let addr = self.spawn_child(service);
        self.children.push(addr.service_ref());
        addr
    }

    /// Adds a child service at `index` in this service's children (0: the first), instead of
    /// after the others: the order children start in (and stop in, reversed), which a
    /// [`Strategy::RestForOne`](crate::Strategy::RestForOne) supervisor restarts by. Like
    /// [`add_dependency`](Self::add_dependency), it is not started here unless this service's
    /// start sequence is still to reach its children.
    ///
    /// # Errors
    /// [`Error::ChildIndexOutOfRange`] if `index` is past the end (more than the number of
    /// children); nothing is spawned then.
    ///
    /// ```
    /// use modo::prelude::*;
    ///
    /// struct Step(&'static str);
    /// impl Service for Step {
    ///     fn label(&self) -> std::borrow::Cow<'static, str> { self.0.into() }
    /// }
    ///
    /// struct Pipeline;
    /// impl Service for Pipeline {
    ///     async fn on_first_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
    ///         ctx.add_dependency(Step("read"));
    ///         ctx.add_dependency(Step("write"));
    ///         ctx.insert_dependency(1, Step("parse"))?;
    ///         assert!(ctx.insert_dependency(9, Step("late")).is_err());
    ///         let order: Vec<&str> = ctx.children().iter().map(|c| c.label()).collect();
    ///         assert_eq!(order, ["read", "parse", "write"]);
    ///         Ok(())
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), modo::Error> {
    /// let system = System::new();
    /// system.spawn(Pipeline).await?;
    /// # system.shutdown().await }
    /// ```
    pub fn insert_dependency<T: IntoServiceSpec>(
        &mut self,
        index: usize,
        service: T,
    ) -> Result<Addr<T::Service>, Error> {
        let len = self.children.len();
        if index > len {
            return Err(Error::ChildIndexOutOfRange {
                label: self.core().label.arc(),
                index,
                len,
            });
        }
        let addr = self.spawn_child(service);
        self.children.insert(index, addr.service_ref());
        Ok(addr)
    }

    /// Builds `service` as a child of this one and launches its task (not yet started).
    fn spawn_child<T: IntoServiceSpec>(&mut self, service: T) -> Addr<T::Service> {
        let observe = self.core().observe.clone();
        let (addr, launch) = runner::build(service.into_spec(), Some(self.as_parent()), observe);
        launch.spawn(&self.host);
        addr
    }

    /// Adds a child service and, if this service has started (or is starting), starts it now.
    ///
    /// # Errors
    /// The child's start error; the child is then removed again.
    pub async fn add_runtime_dependency<T: IntoServiceSpec>(
        &mut self,
        service: T,
    ) -> Result<Addr<T::Service>, Error> {
        let addr = self.add_dependency(service);
        if matches!(self.phase, Phase::Starting | Phase::Running)
            && let Err(e) = addr.start().await
        {
            self.children.retain(|c| c.id() != addr.id());
            return Err(e);
        }
        Ok(addr)
    }

    /// Adopts `service`, a running root (spawned with [`System::spawn`](crate::System::spawn)),
    /// as a child of this service: Mode's `add_dependency` of an instance that was already
    /// started. From then on it is a child like the others: this service stops it with its
    /// own stop (children newest first, the adopted one the newest), restarts it with its own
    /// restart, and hears its crash ([`Service::on_child_crashed`]). It leaves the System's
    /// roots (so [`System::shutdown`](crate::System::shutdown) stops it through this service),
    /// its depth (and so its log prefix) changes at once and its subtree's as each of them
    /// next runs, and the registry's graph shows it under this service. It keeps running:
    /// adopting starts and stops nothing.
    ///
    /// A restart (by this service, or a supervisor's) restarts it in place: its factory builds
    /// a fresh instance if it was spawned from one, else its own value is reset with
    /// [`Service::on_init`].
    ///
    /// Adopting a service that is already a child of this one does nothing.
    ///
    /// # Errors
    /// - [`Error::Stopped`]: it has stopped for good.
    /// - [`Error::WouldCycle`]: it is this service or one of its ancestors.
    /// - [`Error::AlreadyHasParent`]: it is another service's child.
    /// - [`Error::NotAdoptable`]: it belongs to another System, or is the registry.
    ///
    /// Nothing changes when it fails.
    ///
    /// ```
    /// use modo::prelude::*;
    ///
    /// struct Pool;
    /// impl Service for Pool {}
    ///
    /// struct App;
    /// impl Service for App {}
    ///
    /// struct Adopt(ServiceRef);
    /// impl Handler<Adopt> for App {
    ///     type Reply = Result<(), Error>;
    ///     async fn handle(&mut self, Adopt(s): Adopt, ctx: &mut Context<Self>) -> Self::Reply {
    ///         ctx.adopt(&s)
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), modo::Error> {
    /// let system = System::new();
    /// let pool = system.spawn(Pool).await?;       // started on its own, a root
    /// let app = system.spawn(App).await?;
    /// app.ask(Adopt(pool.service_ref())).await??;
    /// assert_eq!(pool.parent().map(|p| p.id()), Some(app.id()));
    /// assert_eq!(system.roots().len(), 1);
    /// app.stop().await?;                           // stops the pool first
    /// assert!(pool.is_terminated());
    /// # system.shutdown().await }
    /// ```
    pub fn adopt(&mut self, service: &ServiceRef) -> Result<(), Error> {
        let me = self.addr.service_ref();
        let (core, target) = (me.core(), service.core());
        let label = || target.label.arc();
        let by = || core.label.arc();
        if !core.same_system(target) {
            return Err(Error::NotAdoptable {
                label: label(),
                by: by(),
                why: "it belongs to another System",
            });
        }
        if target.internal {
            return Err(Error::NotAdoptable {
                label: label(),
                by: by(),
                why: "it is one of the System's own services",
            });
        }
        if target.is_closed() {
            return Err(Error::Stopped { label: label() });
        }
        // One adoption at a time in a System: the checks below and the link are one step.
        let _adopting = self
            .host
            .adoption_lock()
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut ancestor = Some(me.clone());
        while let Some(a) = ancestor {
            if a.id() == target.id {
                return Err(Error::WouldCycle {
                    label: label(),
                    by: by(),
                });
            }
            ancestor = a.parent();
        }
        if !target.is_root() {
            return match target.parent() {
                Some(parent) if parent.core().id == core.id => Ok(()),
                parent => Err(Error::AlreadyHasParent {
                    label: label(),
                    by: by(),
                    parent: parent.map_or_else(
                        || Arc::from("a parent that has ended"),
                        |p| p.core().label.arc(),
                    ),
                }),
            };
        }
        if target.parent.set(me.downgrade_cell()).is_err() {
            // Roots are linked only under the lock: nobody else set it.
            unreachable!("a root's parent is set under the adoption lock");
        }
        target.set_depth(core.depth() + 1);
        // The lane's lock orders this with the end of the service: if the notice lands, the
        // service reads its parent after this and tells us when it ends; if not, it has ended
        // (or is ending) as a root.
        if target
            .control
            .send(Control::Notice(Notice::Reparented))
            .is_err()
        {
            return Err(Error::Stopped { label: label() });
        }
        if !target.internal {
            self.host.report(Event::Adopted {
                id: target.id,
                key: target.host_key(),
            });
        }
        self.children.push(service.clone());
        Ok(())
    }

    /// Makes this service decide what happens to its `child` when the child, running, is
    /// stopped by anyone but this service (its own [`Context::stop`], or `stop()` from
    /// elsewhere): the child runs its stop sequence, then waits for this service's
    /// [`Service::on_child_stopped`] to end it or restart it. By default (`yes == false`) such a
    /// child ends at once, closing its mailbox, and leaves this service's children. A
    /// [`Supervisor`](crate::Supervisor) decides the stops of its permanent children (OTP
    /// restarts a permanent child that exited).
    ///
    /// Returns `false`, and changes nothing, if `child` is not a child of this service.
    pub fn decide_stops_of(&mut self, child: &ServiceRef, yes: bool) -> bool {
        if !self.children.contains(child) {
            return false;
        }
        child.core().set_parent_decides_stops(yes);
        true
    }

    /// Lets this service's crashed children ask `decider` in their own tasks, while this
    /// service runs, before they wait for [`Service::on_child_crashed`] (see `decide.rs`);
    /// `None` takes the decider away.
    pub(crate) fn set_crash_decider(&self, decider: Option<Arc<dyn CrashDecider>>) {
        self.myself().core().set_decider(decider);
    }

    /// Stops `child` for good and removes it from this service's children.
    ///
    /// # Errors
    /// The child's stop error (it is removed all the same).
    pub async fn remove_dependency(&mut self, child: &ServiceRef) -> Result<(), Error> {
        let before = self.children.len();
        self.children.retain(|c| c != child);
        if self.children.len() == before {
            return Ok(());
        }
        child.stop().await
    }
}
