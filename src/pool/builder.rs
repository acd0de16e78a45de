//! Building a pool: [`PoolBuilder`] makes the supervisor and its replicas; [`PoolRouter`] is
//! the routing half, attached to that supervisor once it runs. `spawn` and `spawn_under` do
//! both; `build` hands the two halves over, so the supervisor can be placed anywhere in a
//! service tree (tower's `Buffer::pair`: build the worker and the handle, let the caller
//! spawn).

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::supervisor::{
    Backoff, DEFAULT_MAX_RESTARTS, DEFAULT_OVER, RestartPolicy, Strategy, Supervisor,
};
use crate::{Addr, Service, ServiceSpec, System};

use super::error::PoolError;
use super::handle::Pool;
use super::routing::Routing;

/// Points per replica on the hash ring unless the builder says otherwise: ketama's 160, which
/// keeps each replica's share of keys within about 10% of even.
pub const DEFAULT_VIRTUAL_NODES: usize = 160;

/// The most points per replica the ring accepts.
pub const MAX_VIRTUAL_NODES: usize = 4_096;

type Factory<A> = Arc<dyn Fn(usize) -> A + Send + Sync>;

/// Builds a [`Pool`]: how many replicas, how each is made, how sends are routed, and how the
/// replicas are supervised. Made by [`Pool::builder`].
///
/// ```
/// use modo::pool::{Pool, Routing};
/// use modo::supervisor::{Backoff, Strategy};
/// use modo::prelude::*;
/// use std::time::Duration;
///
/// struct Worker { index: usize }
/// impl Service for Worker {
///     fn label(&self) -> std::borrow::Cow<'static, str> {
///         format!("Worker#{}", self.index).into()
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = System::new();
/// let pool = Pool::builder(3, |index| Worker { index })
///     .routing(Routing::LeastLoaded)
///     .strategy(Strategy::OneForOne)
///     .max_restarts(10)
///     .over(Duration::from_secs(5))
///     .backoff(Backoff::Fixed(Duration::from_millis(100)))
///     .mailbox_capacity(64)
///     .label("Workers")
///     .spawn(&system)
///     .await?;
/// assert_eq!(pool.label(), "Workers");
/// assert_eq!(pool.replica(2).unwrap().label(), "Worker#2");
/// # system.shutdown().await?; Ok(()) }
/// ```
pub struct PoolBuilder<A: Service> {
    size: usize,
    factory: Factory<A>,
    routing: Routing,
    virtual_nodes: usize,
    label: Option<String>,
    strategy: Strategy,
    max_restarts: u32,
    over: Duration,
    backoff: Backoff,
    policy: RestartPolicy,
    mailbox_capacity: Option<usize>,
}

impl<A: Service> fmt::Debug for PoolBuilder<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("replica", &std::any::type_name::<A>())
            .field("size", &self.size)
            .field("routing", &self.routing)
            .field("virtual_nodes", &self.virtual_nodes)
            .field("label", &self.label)
            .field("strategy", &self.strategy)
            .field("max_restarts", &self.max_restarts)
            .field("over", &self.over)
            .field("backoff", &self.backoff)
            .field("restart_policy", &self.policy)
            .field("mailbox_capacity", &self.mailbox_capacity)
            .finish()
    }
}

impl<A: Service> PoolBuilder<A> {
    pub(crate) fn new(size: usize, factory: impl Fn(usize) -> A + Send + Sync + 'static) -> Self {
        PoolBuilder {
            size,
            factory: Arc::new(factory),
            routing: Routing::default(),
            virtual_nodes: DEFAULT_VIRTUAL_NODES,
            label: None,
            strategy: Strategy::OneForOne,
            max_restarts: DEFAULT_MAX_RESTARTS,
            over: DEFAULT_OVER,
            backoff: Backoff::None,
            policy: RestartPolicy::Permanent,
            mailbox_capacity: None,
        }
    }

    /// How sends without a key are routed (default [`Routing::RoundRobin`]).
    pub fn routing(mut self, routing: Routing) -> Self {
        self.routing = routing;
        self
    }

    /// Points per replica on the consistent-hash ring that keyed sends use (default
    /// [`DEFAULT_VIRTUAL_NODES`]); more points spread keys more evenly and cost memory
    /// (12 bytes a point, built at the first keyed send).
    pub fn virtual_nodes(mut self, points: usize) -> Self {
        self.virtual_nodes = points;
        self
    }

    /// The label of the pool's supervisor in graphs and logs (default `Pool<Type>`, the
    /// replicas' type name).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// The supervisor's strategy when a replica crashes (default
    /// [`Strategy::OneForOne`]: only that replica is restarted).
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// At most this many restarts within [`over`](Self::over) (default 100); past it the
    /// supervisor stops the replicas and crashes, and its own supervisor decides.
    pub fn max_restarts(mut self, max: u32) -> Self {
        self.max_restarts = max;
        self
    }

    /// The window of the restart intensity (default 1 s).
    pub fn over(mut self, window: Duration) -> Self {
        self.over = window;
        self
    }

    /// The wait before each restart of a replica (default none).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// When a replica is restarted (default [`RestartPolicy::Permanent`]: after a crash and
    /// after a stop its supervisor did not ask for). A replica that is not restarted has
    /// stopped for good: routing skips it.
    pub fn restart_policy(mut self, policy: RestartPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The capacity of each replica's mailbox (default the service's own
    /// [`Service::mailbox_capacity`]).
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = Some(capacity);
        self
    }

    /// The pool's two halves: the supervisor, with one child per replica (made by the factory
    /// with its index, and made again on every restart), and the router to
    /// [`attach`](PoolRouter::attach) to it once it runs. Spawn the supervisor anywhere: as a
    /// root, under another supervisor, or as a dependency of a service.
    ///
    /// # Errors
    /// [`PoolError::NoReplicas`] for a size of 0 (or more than `u32::MAX`),
    /// [`PoolError::VirtualNodes`] outside `1..=`[`MAX_VIRTUAL_NODES`].
    pub fn build(self) -> Result<(Supervisor, PoolRouter<A>), PoolError> {
        if self.size == 0 || u32::try_from(self.size).is_err() {
            return Err(PoolError::NoReplicas);
        }
        if !(1..=MAX_VIRTUAL_NODES).contains(&self.virtual_nodes) {
            return Err(PoolError::VirtualNodes {
                given: self.virtual_nodes,
                max: MAX_VIRTUAL_NODES,
            });
        }
        let label = self
            .label
            .unwrap_or_else(|| format!("Pool<{}>", short_type_name::<A>()));
        let mut sup = Supervisor::builder()
            .strategy(self.strategy)
            .max_restarts(self.max_restarts)
            .over(self.over)
            .backoff(self.backoff)
            .label(label);
        for index in 0..self.size {
            let factory = self.factory.clone();
            // A fresh replica on every restart, always told its own index.
            let mut spec = ServiceSpec::from_indexed_factory(move |_restart| factory(index));
            if let Some(capacity) = self.mailbox_capacity {
                spec = spec.mailbox_capacity(capacity);
            }
            sup = sup.child_spec(spec, self.policy);
        }
        let router = PoolRouter {
            size: self.size,
            routing: self.routing,
            virtual_nodes: self.virtual_nodes,
            _replica: PhantomData,
        };
        Ok((sup.build(), router))
    }

    /// Spawns the pool as a root of `system` and returns once every replica has started.
    ///
    /// # Errors
    /// As [`build`](Self::build); [`PoolError::Service`] if a replica failed to start (the
    /// pool is then left stopped) or the system is shutting down.
    ///
    /// # Cancel safety
    /// Dropping the future after the spawn began leaves the pool running, without a handle;
    /// [`System::shutdown`] stops it.
    pub async fn spawn(self, system: &System) -> Result<Pool<A>, PoolError> {
        let (sup, router) = self.build()?;
        let sup = system.spawn(sup).await?;
        match router.attach(&sup).await {
            Ok(pool) => Ok(pool),
            Err(e) => {
                let _ = sup.stop().await;
                Err(e)
            }
        }
    }

    /// Spawns the pool under `parent`, with [`RestartPolicy::Transient`]: the parent
    /// restarts the pool if it crashes (its restart intensity exceeded), restarting every
    /// replica in place, and lets it end when it is stopped. Returns once every replica has
    /// started.
    ///
    /// # Errors
    /// As [`spawn`](Self::spawn), or the parent's own state.
    ///
    /// # Cancel safety
    /// As [`spawn`](Self::spawn); the parent stops the pool when it stops.
    pub async fn spawn_under(self, parent: &Addr<Supervisor>) -> Result<Pool<A>, PoolError> {
        let (sup, router) = self.build()?;
        let sup = parent
            .supervise_with(ServiceSpec::new(sup), RestartPolicy::Transient)
            .await?;
        match router.attach(&sup).await {
            Ok(pool) => Ok(pool),
            Err(e) => {
                let _ = parent.discard(&sup).await;
                Err(e)
            }
        }
    }
}

/// The routing half of a pool built with [`PoolBuilder::build`]: attach it to the pool's
/// supervisor once that runs, to get the [`Pool`] handle.
///
/// ```
/// use modo::pool::Pool;
/// use modo::prelude::*;
///
/// struct Worker;
/// impl Service for Worker {}
///
/// struct Ping;
/// impl Handler<Ping> for Worker {
///     type Reply = &'static str;
///     async fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> &'static str { "pong" }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = System::new();
/// let (supervisor, router) = Pool::builder(2, |_| Worker).build()?;
/// // The supervisor is an ordinary service: spawn it where it belongs in the tree.
/// let supervisor = system.spawn(ServiceSpec::new(supervisor).name("workers")).await?;
/// let pool = router.attach(&supervisor).await?;
/// assert_eq!(pool.ask(Ping).await?, "pong");
/// # system.shutdown().await?; Ok(()) }
/// ```
pub struct PoolRouter<A: Service> {
    size: usize,
    routing: Routing,
    virtual_nodes: usize,
    _replica: PhantomData<fn() -> A>,
}

impl<A: Service> fmt::Debug for PoolRouter<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolRouter")
            .field("replica", &std::any::type_name::<A>())
            .field("size", &self.size)
            .field("routing", &self.routing)
            .finish()
    }
}

impl<A: Service> PoolRouter<A> {
    /// The pool's handle over `supervisor`'s replicas (its children of type `A`, in start
    /// order). Waits until the supervisor has started, if it has not yet.
    ///
    /// # Errors
    /// [`PoolError::ReplicaMismatch`] if the supervisor does not have the pool's number of
    /// `A` children; [`PoolError::Service`] if it has stopped.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping the future changes nothing.
    pub async fn attach(self, supervisor: &Addr<Supervisor>) -> Result<Pool<A>, PoolError> {
        let children = supervisor.children().await?;
        let replicas: Vec<Addr<A>> = children.iter().filter_map(|c| c.downcast::<A>()).collect();
        if replicas.len() != self.size {
            return Err(PoolError::ReplicaMismatch {
                label: supervisor.label().to_owned(),
                replica: short_type_name::<A>(),
                expected: self.size,
                found: replicas.len(),
            });
        }
        Ok(Pool::new(
            supervisor.clone(),
            replicas,
            self.routing,
            self.virtual_nodes,
        ))
    }
}

/// `my_crate::module::Type<Param>` -> `Type`: the default pool label names the replicas'
/// type the way their own default label does.
fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
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
