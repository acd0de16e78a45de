//! [`Pool`]: the handle. Picks a replica for each send (by [`Routing`], or by key on the
//! hash ring) and sends with the replica's own [`Addr`]; owns nothing that needs a task.

use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::future::join_all;

use crate::supervisor::Supervisor;
use crate::{Addr, Error, Handler, SendError, Service, ServiceRef, ServiceState, TrySendError};

use super::builder::PoolBuilder;
use super::ring::{Ring, hash_key};
use super::routing::{self, Routing};

/// A pool of supervised replicas of one service behind one handle: sends are routed
/// round-robin, to the least-loaded replica, or by key (consistent hash), and each replica is
/// restarted in place by the pool's supervisor.
///
/// `Clone + Send + Sync`, cheap to clone (one `Arc`); valid for the life of the pool, across
/// restarts of its replicas and of the pool itself. Dropping every handle does not stop the
/// pool: [`stop`](Self::stop) it, or let [`System::shutdown`](crate::System::shutdown) do it.
///
/// See the [module docs](super) for the routing and delivery rules.
///
/// ```
/// use modo::pool::Pool;
/// use modo::prelude::*;
///
/// struct Worker { index: usize }
/// impl Service for Worker {}
///
/// struct Which;
/// impl Handler<Which> for Worker {
///     type Reply = usize;
///     async fn handle(&mut self, _: Which, _: &mut Context<Self>) -> usize { self.index }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let system = System::new();
/// let pool = Pool::builder(3, |index| Worker { index }).spawn(&system).await?;
/// // Round-robin by default.
/// let mut seen = Vec::new();
/// for _ in 0..6 {
///     seen.push(pool.ask(Which).await?);
/// }
/// assert_eq!(seen, [0, 1, 2, 0, 1, 2]);
/// // A key always reaches the same replica.
/// let a = pool.ask_keyed(&"user-7", Which).await?;
/// assert_eq!(pool.ask_keyed(&"user-7", Which).await?, a);
/// // Stopping the pool stops every replica; later sends hand the message back.
/// pool.stop().await?;
/// assert!(pool.replicas().iter().all(|r| r.is_terminated()));
/// assert!(pool.tell(Which).await.is_err());
/// # system.shutdown().await?; Ok(()) }
/// ```
pub struct Pool<A: Service> {
    inner: Arc<Inner<A>>,
}

struct Inner<A: Service> {
    replicas: Box<[Addr<A>]>,
    supervisor: Addr<Supervisor>,
    label: Arc<str>,
    routing: Routing,
    /// The turn of the next unkeyed send: where round-robin looks first, and where
    /// least-loaded starts its scan (so ties go round).
    turn: AtomicUsize,
    virtual_nodes: usize,
    /// Built at the first keyed send.
    ring: OnceLock<Ring>,
}

impl<A: Service> Clone for Pool<A> {
    fn clone(&self) -> Self {
        Pool {
            inner: self.inner.clone(),
        }
    }
}

impl<A: Service> fmt::Debug for Pool<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("label", &self.inner.label)
            .field("id", &self.id())
            .field("state", &self.state())
            .field("routing", &self.inner.routing)
            .field("size", &self.size())
            .field("live", &self.live())
            .finish()
    }
}

impl<A: Service> Pool<A> {
    /// A builder for a pool of `size` replicas, replica `i` made by `factory(i)`, again on
    /// every restart of that replica (a restarted replica starts from a fresh value).
    ///
    /// ```
    /// use modo::pool::Pool;
    /// use modo::Service;
    ///
    /// struct Worker { index: usize }
    /// impl Service for Worker {}
    ///
    /// let builder = Pool::builder(4, |index| Worker { index });
    /// # let _ = builder;
    /// ```
    pub fn builder(
        size: usize,
        factory: impl Fn(usize) -> A + Send + Sync + 'static,
    ) -> PoolBuilder<A> {
        PoolBuilder::new(size, factory)
    }

    pub(crate) fn new(
        supervisor: Addr<Supervisor>,
        replicas: Vec<Addr<A>>,
        routing: Routing,
        virtual_nodes: usize,
    ) -> Self {
        let label = Arc::from(supervisor.label());
        Pool {
            inner: Arc::new(Inner {
                replicas: replicas.into_boxed_slice(),
                supervisor,
                label,
                routing,
                turn: AtomicUsize::new(0),
                virtual_nodes,
                ring: OnceLock::new(),
            }),
        }
    }

    // ----- routing ---------------------------------------------------------------------------

    /// The replica for the next unkeyed send, never one in `skip`.
    fn pick(&self, skip: &[usize]) -> Option<usize> {
        let replicas = &self.inner.replicas;
        let turn = &self.inner.turn;
        let next_turn = || turn.fetch_add(1, Ordering::Relaxed);
        match self.inner.routing {
            Routing::RoundRobin => routing::round_robin(replicas, next_turn, skip),
            Routing::LeastLoaded => routing::least_loaded(replicas, next_turn(), skip),
        }
    }

    fn ring(&self) -> &Ring {
        self.inner
            .ring
            .get_or_init(|| Ring::new(self.inner.replicas.len(), self.inner.virtual_nodes))
    }

    /// The replica that owns `hash`: the first on the ring not stopped for good and not in
    /// `skip`.
    fn owner(&self, hash: u64, skip: &[usize]) -> Option<usize> {
        let replicas = &self.inner.replicas;
        self.ring()
            .owner(hash, |i| !skip.contains(&i) && !replicas[i].is_terminated())
    }

    /// Tells `msg` to the replica `choose` picks, and to the next one if that one turns out
    /// to have stopped for good meanwhile.
    async fn tell_by<M>(
        &self,
        msg: M,
        choose: impl Fn(&[usize]) -> Option<usize>,
    ) -> Result<(), SendError<M>>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        let mut msg = msg;
        // Each failure is a replica stopped for good, which is never chosen again: at most
        // one attempt per replica.
        let mut refused = Vec::new();
        while let Some(i) = choose(&refused) {
            match self.inner.replicas[i].tell(msg).await {
                Ok(()) => return Ok(()),
                Err(back) => {
                    msg = back.into_inner();
                    refused.push(i);
                }
            }
        }
        // A replica refuses as soon as its stop for good closes its mailbox, a moment before
        // it has ended. The pool says "stopped" once they all have ended, so that after a
        // refusal `live()` is 0 (each wait is bounded by that replica's own stop).
        for i in refused {
            self.inner.replicas[i]
                .wait_until(|r| r.is_terminated())
                .await;
        }
        Err(SendError::new(msg, self.inner.label.clone()))
    }

    /// Tries the replicas in the order `choose` gives until one has room.
    fn try_tell_by<M>(
        &self,
        msg: M,
        choose: impl Fn(&[usize]) -> Option<usize>,
    ) -> Result<(), TrySendError<M>>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        let mut msg = msg;
        let mut tried = Vec::new();
        let mut full = false;
        while let Some(i) = choose(&tried) {
            match self.inner.replicas[i].try_tell(msg) {
                Ok(()) => return Ok(()),
                Err(back) => {
                    full |= back.is_full();
                    msg = back.into_inner();
                    tried.push(i);
                }
            }
        }
        let label = self.inner.label.clone();
        Err(if full {
            TrySendError::Full(msg, label)
        } else {
            TrySendError::Stopped(msg, label)
        })
    }

    fn stopped_error(&self) -> Error {
        Error::Stopped {
            label: self.inner.label.clone(),
        }
    }

    // ----- unkeyed sends ---------------------------------------------------------------------

    /// Queues `msg` on the replica the pool's [`Routing`] picks, waiting only for room in its
    /// mailbox. Running replicas are preferred; when none is running (all restarting), the
    /// message is queued on one anyway and handled after its restart, since a restart keeps
    /// the mailbox. A replica that turns out to have stopped for good is skipped and the next
    /// one tried.
    ///
    /// # Errors
    /// [`SendError`] with the message inside (labelled with the pool) when every replica has
    /// stopped for good: the pool stopped, or gave up on all of them.
    ///
    /// # Cancel safety
    /// If the future is dropped while waiting for room, the message is dropped with it and
    /// was never queued.
    pub async fn tell<M>(&self, msg: M) -> Result<(), SendError<M>>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        self.tell_by(msg, |skip| self.pick(skip)).await
    }

    /// Queues `msg` if a replica has room now: first the one the [`Routing`] picks, then the
    /// others in routing order.
    ///
    /// # Errors
    /// [`TrySendError::Full`] if every live replica's mailbox is full,
    /// [`TrySendError::Stopped`] if every replica has stopped for good; the message inside
    /// either way.
    pub fn try_tell<M>(&self, msg: M) -> Result<(), TrySendError<M>>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        self.try_tell_by(msg, |skip| self.pick(skip))
    }

    /// Sends `msg` to the replica the [`Routing`] picks and waits for its reply.
    ///
    /// # Errors
    /// As [`Addr::ask`] of the replica: [`Error::Crashed`] if its handler panicked or it
    /// crashed with the message queued or in flight, [`Error::Stopped`] if it stopped for
    /// good before replying. An ask cannot be moved to another replica once sent (the
    /// message is not handed back), so one racing with its replica's final stop fails with
    /// `Stopped` while others still run. [`Error::Stopped`] naming the pool when every
    /// replica has stopped for good.
    ///
    /// # Cancel safety
    /// If dropped after the message was queued, the message is still handled and its reply
    /// discarded.
    pub async fn ask<M>(&self, msg: M) -> Result<A::Reply, Error>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        match self.pick(&[]) {
            Some(i) => self.inner.replicas[i].ask(msg).await,
            None => Err(self.stopped_error()),
        }
    }

    /// [`ask`](Self::ask), giving up after `timeout` (counted from the call, including the
    /// wait for room in the mailbox).
    ///
    /// # Errors
    /// [`Error::Timeout`] naming the replica, or any error of [`ask`](Self::ask).
    ///
    /// # Cancel safety
    /// As [`ask`](Self::ask).
    pub async fn ask_timeout<M>(&self, msg: M, timeout: Duration) -> Result<A::Reply, Error>
    where
        A: Handler<M>,
        M: Send + 'static,
    {
        match self.pick(&[]) {
            Some(i) => self.inner.replicas[i].ask_timeout(msg, timeout).await,
            None => Err(self.stopped_error()),
        }
    }

    // ----- keyed sends -----------------------------------------------------------------------

    /// The replica that owns `key` on the consistent-hash ring now: while the same replicas
    /// are live, always the same one; `None` if every replica has stopped for good.
    ///
    /// A replica that has stopped for good gives its keys to the next live points on the
    /// ring; every other key keeps its replica. A replica that is restarting keeps its keys
    /// (messages for them wait in its mailbox).
    ///
    /// ```
    /// use modo::pool::Pool;
    /// use modo::prelude::*;
    ///
    /// struct Shard;
    /// impl Service for Shard {}
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let system = System::new();
    /// let pool = Pool::builder(4, |_| Shard).spawn(&system).await?;
    /// let owner = pool.replica_for_key(&42u64).unwrap().id();
    /// assert_eq!(pool.replica_for_key(&42u64).unwrap().id(), owner);
    /// # system.shutdown().await?; Ok(()) }
    /// ```
    pub fn replica_for_key<K: Hash + ?Sized>(&self, key: &K) -> Option<&Addr<A>> {
        self.owner(hash_key(key), &[])
            .map(|i| &self.inner.replicas[i])
    }

    /// The index of [`replica_for_key`](Self::replica_for_key) in
    /// [`replicas`](Self::replicas).
    pub fn index_for_key<K: Hash + ?Sized>(&self, key: &K) -> Option<usize> {
        self.owner(hash_key(key), &[])
    }

    /// Queues `msg` on the replica that owns `key` (see
    /// [`replica_for_key`](Self::replica_for_key)), waiting only for room in its mailbox.
    /// Messages with the same key from one sender are handled in the order sent, by one
    /// replica, across its restarts.
    ///
    /// # Errors
    /// [`SendError`] with the message inside when every replica has stopped for good.
    ///
    /// # Cancel safety
    /// As [`tell`](Self::tell).
    pub async fn tell_keyed<K, M>(&self, key: &K, msg: M) -> Result<(), SendError<M>>
    where
        K: Hash + ?Sized,
        A: Handler<M>,
        M: Send + 'static,
    {
        let hash = hash_key(key);
        self.tell_by(msg, |skip| self.owner(hash, skip)).await
    }

    /// Queues `msg` on the replica that owns `key` if it has room now. Never moves the
    /// message to another live replica: a key's messages stay on its replica.
    ///
    /// # Errors
    /// [`TrySendError::Full`] if that replica's mailbox is full, [`TrySendError::Stopped`] if
    /// every replica has stopped for good; the message inside either way.
    pub fn try_tell_keyed<K, M>(&self, key: &K, msg: M) -> Result<(), TrySendError<M>>
    where
        K: Hash + ?Sized,
        A: Handler<M>,
        M: Send + 'static,
    {
        let hash = hash_key(key);
        let mut msg = msg;
        let mut gone = Vec::new();
        while let Some(i) = self.owner(hash, &gone) {
            match self.inner.replicas[i].try_tell(msg) {
                Ok(()) => return Ok(()),
                Err(TrySendError::Full(m, label)) => return Err(TrySendError::Full(m, label)),
                Err(back) => {
                    msg = back.into_inner();
                    gone.push(i);
                }
            }
        }
        Err(TrySendError::Stopped(msg, self.inner.label.clone()))
    }

    /// Sends `msg` to the replica that owns `key` and waits for its reply.
    ///
    /// # Errors
    /// As [`ask`](Self::ask).
    ///
    /// # Cancel safety
    /// As [`ask`](Self::ask).
    pub async fn ask_keyed<K, M>(&self, key: &K, msg: M) -> Result<A::Reply, Error>
    where
        K: Hash + ?Sized,
        A: Handler<M>,
        M: Send + 'static,
    {
        match self.replica_for_key(key) {
            Some(replica) => replica.ask(msg).await,
            None => Err(self.stopped_error()),
        }
    }

    /// [`ask_keyed`](Self::ask_keyed), giving up after `timeout`.
    ///
    /// # Errors
    /// [`Error::Timeout`] naming the replica, or any error of [`ask`](Self::ask).
    ///
    /// # Cancel safety
    /// As [`ask`](Self::ask).
    pub async fn ask_keyed_timeout<K, M>(
        &self,
        key: &K,
        msg: M,
        timeout: Duration,
    ) -> Result<A::Reply, Error>
    where
        K: Hash + ?Sized,
        A: Handler<M>,
        M: Send + 'static,
    {
        match self.replica_for_key(key) {
            Some(replica) => replica.ask_timeout(msg, timeout).await,
            None => Err(self.stopped_error()),
        }
    }

    // ----- every replica ---------------------------------------------------------------------

    /// Queues a clone of `msg` on every replica that has not stopped for good, one after the
    /// other in index order (each waiting for room); returns how many took it.
    ///
    /// # Errors
    /// [`SendError`] with the message inside if no replica took it.
    ///
    /// # Cancel safety
    /// If dropped part way, the replicas before the one it waited on got their copy, the
    /// others did not.
    pub async fn broadcast<M>(&self, msg: M) -> Result<usize, SendError<M>>
    where
        A: Handler<M>,
        M: Clone + Send + 'static,
    {
        let mut sent = 0;
        for replica in self.inner.replicas.iter() {
            if !replica.is_terminated() && replica.tell(msg.clone()).await.is_ok() {
                sent += 1;
            }
        }
        if sent == 0 {
            return Err(SendError::new(msg, self.inner.label.clone()));
        }
        Ok(sent)
    }

    /// Asks every replica a clone of `msg` at once and waits for every answer; the results
    /// are in index order, each as [`Addr::ask`] gives it (a replica stopped for good answers
    /// [`Error::Stopped`]).
    ///
    /// # Cancel safety
    /// As [`ask`](Self::ask), for each replica.
    pub async fn ask_all<M>(&self, msg: M) -> Vec<Result<A::Reply, Error>>
    where
        A: Handler<M>,
        M: Clone + Send + 'static,
    {
        join_all(self.inner.replicas.iter().map(|r| r.ask(msg.clone()))).await
    }

    // ----- the replicas ----------------------------------------------------------------------

    /// The replicas, in index order: replica `i` was made by `factory(i)`. Each address stays
    /// valid across that replica's restarts.
    pub fn replicas(&self) -> &[Addr<A>] {
        &self.inner.replicas
    }

    /// Replica `index`, if there is one.
    pub fn replica(&self, index: usize) -> Option<&Addr<A>> {
        self.inner.replicas.get(index)
    }

    /// How many replicas the pool was built with.
    pub fn size(&self) -> usize {
        self.inner.replicas.len()
    }

    /// How many replicas have not stopped for good.
    pub fn live(&self) -> usize {
        self.inner
            .replicas
            .iter()
            .filter(|r| !r.is_terminated())
            .count()
    }

    /// Messages queued in all replicas' mailboxes together.
    pub fn queued(&self) -> usize {
        self.inner.replicas.iter().map(|r| r.mailbox_len()).sum()
    }

    /// How sends without a key are routed.
    pub fn routing(&self) -> Routing {
        self.inner.routing
    }

    // ----- the pool as a service -------------------------------------------------------------

    /// The pool's supervisor: the replicas' parent, the pool's node in the service tree.
    pub fn supervisor(&self) -> &Addr<Supervisor> {
        &self.inner.supervisor
    }

    /// The type-erased handle of the pool's supervisor.
    pub fn service_ref(&self) -> ServiceRef {
        self.inner.supervisor.service_ref()
    }

    /// The pool's id (its supervisor's).
    pub fn id(&self) -> uuid::Uuid {
        self.inner.supervisor.id()
    }

    /// The pool's label (default `Pool<Type>`).
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The pool's state (its supervisor's).
    pub fn state(&self) -> ServiceState {
        self.inner.supervisor.state()
    }

    /// Whether the pool has stopped for good: its replicas have too, and every send fails.
    pub fn is_terminated(&self) -> bool {
        self.inner.supervisor.is_terminated()
    }

    /// Stops the pool for good: every replica is stopped (in reverse index order, each with
    /// its stop hooks), then the supervisor. Messages still queued become dead letters; later
    /// sends fail with the message handed back. Returns once all have stopped.
    ///
    /// A pool spawned with [`spawn_under`](super::PoolBuilder::spawn_under) is transient
    /// under its parent, so this ends it there too.
    ///
    /// # Errors
    /// As [`ServiceRef::stop`]: a stop hook of a replica failed (the stop still ran to the
    /// end), or the call came from the pool's own task.
    ///
    /// # Cancel safety
    /// Dropping the future does not cancel the stop.
    pub async fn stop(&self) -> Result<(), Error> {
        self.inner.supervisor.stop().await
    }

    /// Waits until the pool has stopped (shut down or crashed).
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn wait_until_stopped(&self) {
        self.inner.supervisor.wait_until_stopped().await
    }
}
