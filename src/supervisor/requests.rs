//! What a supervisor is asked through its address: add a child (at the end or at a position),
//! adopt a running root, discard a child, list the children; the messages, their handling, and
//! the `Addr<Supervisor>` methods that send them.

use super::{AddChild, RestartPolicy, Supervisor};
use crate::{
    Addr, Context, Error, Handler, IntoServiceSpec, Service, ServiceRef, ServiceSpec, ServiceState,
};

/// Adds a child at run time (see [`Addr::<Supervisor>::supervise`]).
struct Supervise {
    add: AddChild,
    policy: RestartPolicy,
}

impl Handler<Supervise> for Supervisor {
    type Reply = Result<ServiceRef, Error>;

    async fn handle(&mut self, msg: Supervise, ctx: &mut Context<Self>) -> Self::Reply {
        let child = (msg.add)(ctx);
        self.start_new(ctx, child, msg.policy).await
    }
}

impl Supervisor {
    /// Takes on `child`, just added to the context, and starts it; a child that does not
    /// start is removed again, and its start error returned.
    async fn start_new(
        &mut self,
        ctx: &mut Context<Self>,
        child: ServiceRef,
        policy: RestartPolicy,
    ) -> Result<ServiceRef, Error> {
        self.take_on(ctx, &child, policy);
        if let Err(e) = child.start().await {
            self.children.remove(&child.id());
            let _ = ctx.remove_dependency(&child).await;
            return Err(e);
        }
        Ok(child)
    }
}

/// Adds a child at a position (see [`Addr::<Supervisor>::insert`]).
struct Insert {
    index: usize,
    add: InsertChild,
    policy: RestartPolicy,
}

/// Adds a child to a supervisor's context at an index; returns its handle.
type InsertChild =
    Box<dyn FnOnce(&mut Context<Supervisor>, usize) -> Result<ServiceRef, Error> + Send>;

impl Handler<Insert> for Supervisor {
    type Reply = Result<ServiceRef, Error>;

    async fn handle(&mut self, msg: Insert, ctx: &mut Context<Self>) -> Self::Reply {
        let child = (msg.add)(ctx, msg.index)?;
        self.start_new(ctx, child, msg.policy).await
    }
}

/// Adopts a running root as a child (see [`Addr::<Supervisor>::adopt`]).
struct Adopt {
    service: ServiceRef,
    policy: RestartPolicy,
}

impl Handler<Adopt> for Supervisor {
    type Reply = Result<(), Error>;

    async fn handle(&mut self, msg: Adopt, ctx: &mut Context<Self>) -> Self::Reply {
        if ctx.children().contains(&msg.service) {
            return Ok(());
        }
        ctx.adopt(&msg.service)?;
        self.take_on(ctx, &msg.service, msg.policy);
        Ok(())
    }
}

/// Removes a child for good (see [`Addr::<Supervisor>::discard`]).
struct Discard(ServiceRef);

impl Handler<Discard> for Supervisor {
    type Reply = Result<(), Error>;

    async fn handle(&mut self, Discard(child): Discard, ctx: &mut Context<Self>) -> Self::Reply {
        self.children.remove(&child.id());
        // Its own pending restart goes; a group restart waiting for another child goes on
        // without it.
        self.cancel_pending_of(std::slice::from_ref(&child));
        for pending in &mut self.pending {
            pending.group.retain(|c| *c != child);
        }
        ctx.remove_dependency(&child).await
    }
}

/// Lists the children (see [`Addr::<Supervisor>::children`]).
struct Children;

impl Handler<Children> for Supervisor {
    type Reply = Vec<ServiceRef>;

    async fn handle(&mut self, _: Children, ctx: &mut Context<Self>) -> Vec<ServiceRef> {
        ctx.children().to_vec()
    }
}

impl Addr<Supervisor> {
    /// Adds and starts a permanent child built by `factory`, which builds a fresh instance on
    /// every restart. The returned address stays valid across restarts.
    ///
    /// # Errors
    /// The child's start error (it is not kept), or the supervisor's own state.
    pub async fn supervise<S: Service>(
        &self,
        factory: impl FnMut() -> S + Send + 'static,
    ) -> Result<Addr<S>, Error> {
        self.supervise_with(ServiceSpec::from_factory(factory), RestartPolicy::Permanent)
            .await
    }

    /// Adds and starts a child from any spec (a value, a factory spec, a named spec), with a
    /// restart policy.
    ///
    /// # Errors
    /// As [`supervise`](Self::supervise).
    pub async fn supervise_with<T: IntoServiceSpec>(
        &self,
        spec: T,
        policy: RestartPolicy,
    ) -> Result<Addr<T::Service>, Error> {
        let add: AddChild = Box::new(move |ctx| ctx.add_dependency(spec).service_ref());
        let child = self.ask(Supervise { add, policy }).await??;
        Ok(child
            .downcast::<T::Service>()
            .expect("the child was built from a spec of this type"))
    }

    /// Adds and starts a child from any spec, like [`supervise_with`](Self::supervise_with),
    /// at `index` in the supervisor's children (0: the first; the number of children: the
    /// last) instead of after them. The order matters to
    /// [`Strategy::RestForOne`](crate::Strategy::RestForOne), which restarts a crashed child
    /// and the ones after it, and to the stop, which goes in reverse.
    ///
    /// # Errors
    /// [`Error::ChildIndexOutOfRange`] if `index` is past the end (nothing is spawned);
    /// otherwise as [`supervise`](Self::supervise).
    ///
    /// ```
    /// use modo::prelude::*;
    /// use modo::supervisor::RestartPolicy;
    ///
    /// struct Stage(&'static str);
    /// impl Service for Stage {
    ///     fn label(&self) -> std::borrow::Cow<'static, str> { self.0.into() }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), modo::Error> {
    /// let system = System::new();
    /// let sup = system.spawn(Supervisor::builder().strategy(Strategy::RestForOne).build()).await?;
    /// sup.supervise(|| Stage("db")).await?;
    /// sup.supervise(|| Stage("web")).await?;
    /// // The cache must restart whenever the db does, and the web with it.
    /// sup.insert(1, ServiceSpec::from_factory(|| Stage("cache")), RestartPolicy::Permanent).await?;
    /// let order: Vec<String> = sup.children().await?.iter().map(|c| c.label().to_owned()).collect();
    /// assert_eq!(order, ["db", "cache", "web"]);
    /// let late = sup.insert(5, Stage("late"), RestartPolicy::Permanent).await;
    /// assert!(matches!(late, Err(Error::ChildIndexOutOfRange { index: 5, len: 3, .. })));
    /// # system.shutdown().await }
    /// ```
    pub async fn insert<T: IntoServiceSpec>(
        &self,
        index: usize,
        spec: T,
        policy: RestartPolicy,
    ) -> Result<Addr<T::Service>, Error> {
        let add: InsertChild =
            Box::new(move |ctx, index| ctx.insert_dependency(index, spec).map(|a| a.service_ref()));
        let child = self.ask(Insert { index, add, policy }).await??;
        Ok(child
            .downcast::<T::Service>()
            .expect("the child was built from a spec of this type"))
    }

    /// Supervises `service`, a running root (spawned with
    /// [`System::spawn`](crate::System::spawn)), from now on, with `policy`: it becomes the
    /// newest child (see [`Context::adopt`] for what adopting means). It keeps running; when
    /// it crashes, the strategy restarts it in place (a fresh instance if it was spawned from
    /// a factory, else its own value reset with [`Service::on_init`]), and the supervisor's
    /// stop stops it. Adopting one of its own children does nothing.
    ///
    /// # Errors
    /// As [`Context::adopt`] ([`Error::AlreadyHasParent`], [`Error::WouldCycle`],
    /// [`Error::Stopped`], [`Error::NotAdoptable`]); or the supervisor's own state.
    ///
    /// ```
    /// use modo::prelude::*;
    /// use modo::supervisor::RestartPolicy;
    ///
    /// struct Cache;
    /// impl Service for Cache {}
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), modo::Error> {
    /// let system = System::new();
    /// let cache = system.spawn(Cache).await?;
    /// let sup = system.spawn(Supervisor::builder().build()).await?;
    /// sup.adopt(&cache, RestartPolicy::Permanent).await?;
    /// cache.crash("boom");                                  // restarted in place
    /// cache.wait_until(|c| c.restart_count() == 1 && c.is_started()).await;
    /// # system.shutdown().await }
    /// ```
    pub async fn adopt(&self, service: &ServiceRef, policy: RestartPolicy) -> Result<(), Error> {
        self.ask(Adopt {
            service: service.clone(),
            policy,
        })
        .await?
    }

    /// Stops `child` for good and stops supervising it.
    ///
    /// # Errors
    /// The child's stop error, or the supervisor's own state.
    pub async fn discard(&self, child: &ServiceRef) -> Result<(), Error> {
        self.ask(Discard(child.clone())).await?
    }

    /// The supervised children, in start order.
    ///
    /// # Errors
    /// If the supervisor has stopped.
    pub async fn children(&self) -> Result<Vec<ServiceRef>, Error> {
        self.ask(Children).await
    }

    /// Whether `child` is running (Mode's `service_operational`).
    pub fn service_operational(&self, child: &ServiceRef) -> bool {
        child.state() == ServiceState::Running
    }
}
