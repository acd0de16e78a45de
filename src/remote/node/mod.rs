//! [`Node`]: a process's membership of a modo system over NATS, and the service that shows it
//! in the tree.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::collections::HashMap;

use tokio::sync::watch;

mod membership;
mod options;
mod service;

pub(crate) use service::{AddChild, AddWatch, RemoveChild, ServeFactory};
use service::{StopExports, show_state};

pub use options::{
    ConnectionState, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_MISSES, NodeOptions,
};

use super::auth;
use super::cluster::{self, Action, Cluster, Target};
use super::export::Export;
use super::spawn::{Factory, FactoryBuilder, RemoteChildSpec};
use super::watch::{WatchBuilder, WatchTarget};
use super::wire::{MessageId, NodeId};
use super::{RemoteAddr, RemoteError, check_name};
use crate::registry::ClusterGraph;
use crate::{Addr, Service, ServiceRef, WeakAddr};

/// A process's membership of a modo system over NATS: its connection, its id, and the
/// service that shows its state in the tree.
///
/// `Node` is a cheap handle (clone it freely). It is also a [`Service`]: spawn a clone in a
/// [`System`](crate::System) (`system.spawn(node.clone())`, or as a child of your app) so that
/// it can [export](Node::export) services, which run as its children, and so that its
/// connection state shows as the diagnostic flag `nats:connected`, `nats:reconnecting` or
/// `nats:closed` in the registry's graph and the Worker's tree dump. Stopping that service
/// stops the exports (their requests are answered first); the connection itself stays open
/// for [lookups](Node::lookup) until [`close`](Node::close) or the last handle is dropped.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    client: async_nats::Client,
    system: Arc<str>,
    id: NodeId,
    prefix: String,
    seq: AtomicU64,
    /// Set by `close`: later calls fail at once.
    closed: AtomicBool,
    /// The blocks outgoing frames are split from (fewer allocations per send).
    send_buf: Mutex<bytes::BytesMut>,
    state: watch::Receiver<ConnectionState>,
    state_tx: Arc<watch::Sender<ConnectionState>>,
    /// The node's service once spawned; shared with the connection's event callback, which
    /// raises the state's flag on it before it publishes the state.
    service: Arc<Mutex<Option<WeakAddr<Node>>>>,
    request_timeout: Duration,
    /// The membership: peers, watches, what the heartbeat says.
    cluster: Arc<Cluster>,
    /// The factories this node spawns children from, by name.
    factories: Mutex<HashMap<String, Arc<dyn Factory>>>,
    /// Actions that need the node's service (re-arming a watch, stopping an orphan): run by
    /// its membership task.
    deferred: (flume::Sender<Action>, flume::Receiver<Action>),
}

fn service_of(slot: &Mutex<Option<WeakAddr<Node>>>) -> Option<Addr<Node>> {
    let guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_ref().and_then(WeakAddr::upgrade)
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("system", &self.inner.system)
            .field("name", &self.inner.cluster.name)
            .field("id", &self.inner.id)
            .field("state", &self.state())
            .finish()
    }
}

impl Node {
    /// Connects to the NATS server at `url` (for example `nats://127.0.0.1:4222`; several
    /// servers of one cluster separated by commas: `nats://127.0.0.1:4222,nats://127.0.0.1:4223`)
    /// as a new node of `options`' system. Returns once connected; the connection then
    /// reconnects by itself whenever it breaks, to any of the servers.
    ///
    /// # Errors
    /// [`RemoteError::InvalidName`] for a system or node name that cannot be a subject token;
    /// [`RemoteError::Config`] for a bad URL or unreadable credential or TLS files;
    /// [`RemoteError::Unauthorized`] if the server refused the credentials;
    /// [`RemoteError::Connect`] if the server cannot be reached within the connect timeout.
    pub async fn connect(url: &str, options: NodeOptions) -> Result<Node, RemoteError> {
        check_name(&options.system)?;
        if let Some(name) = &options.node_name {
            check_name(name)?;
        }
        let servers = url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(|u| {
                u.parse::<async_nats::ServerAddr>()
                    .map_err(|e| RemoteError::Config {
                        what: format!("bad server URL {u:?}: {e}"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if servers.is_empty() {
            return Err(RemoteError::Config {
                what: "no server URL".into(),
            });
        }
        let system: Arc<str> = Arc::from(options.system.as_str());
        let id = NodeId::random();
        let (state_tx, state) = watch::channel(ConnectionState::Reconnecting);
        let state_tx = Arc::new(state_tx);
        let events = state_tx.clone();
        let service: Arc<Mutex<Option<WeakAddr<Node>>>> = Arc::default();
        let flags = service.clone();
        let max_delay = options.reconnect_delay_max;
        let inbox = options
            .inbox_prefix
            .clone()
            .unwrap_or_else(|| format!("modo.{system}.inbox"));
        let client_name = options
            .client_name
            .clone()
            .unwrap_or_else(|| format!("modo-{system}"));
        let connect = auth::apply(
            async_nats::ConnectOptions::new(),
            &options.credentials,
            &options.tls,
        )
        .await?
        .name(client_name)
        .custom_inbox_prefix(inbox)
        .connection_timeout(options.connect_timeout)
        .request_timeout(Some(options.request_timeout))
        .max_reconnects(None)
        .reconnect_delay_callback(move |attempts| {
            let exp = u32::try_from(attempts.min(16)).unwrap_or(16);
            Duration::from_millis(10u64 << exp).min(max_delay)
        })
        .event_callback(move |event| {
            let events = events.clone();
            let flags = flags.clone();
            async move {
                let state = match event {
                    async_nats::Event::Connected => ConnectionState::Connected,
                    async_nats::Event::Disconnected => ConnectionState::Reconnecting,
                    async_nats::Event::Closed => ConnectionState::Closed,
                    async_nats::Event::ServerError(e) => {
                        // A permissions violation, mostly: a subject this user may not
                        // use. Said once per occurrence; nothing else to do.
                        tracing::warn!(target: "modo", "NATS server error: {e}");
                        return;
                    }
                    _ => return,
                };
                if let Some(addr) = service_of(&flags) {
                    show_state(&addr, state);
                }
                events.send_replace(state);
            }
        });
        let client = tokio::time::timeout(
            options.connect_timeout + Duration::from_millis(500),
            connect.connect(servers),
        )
        .await
        .map_err(|_| RemoteError::Connect {
            url: url.to_owned(),
            reason: format!("no connection within {:?}", options.connect_timeout),
        })?
        .map_err(|e| match e.kind() {
            async_nats::ConnectErrorKind::AuthorizationViolation
            | async_nats::ConnectErrorKind::Authentication => RemoteError::Unauthorized {
                url: url.to_owned(),
                reason: e.to_string(),
            },
            async_nats::ConnectErrorKind::Tls => RemoteError::Connect {
                url: url.to_owned(),
                reason: format!("TLS: {e}"),
            },
            _ => RemoteError::Connect {
                url: url.to_owned(),
                reason: e.to_string(),
            },
        })?;
        if client.connection_state() == async_nats::connection::State::Connected {
            state_tx.send_replace(ConnectionState::Connected);
        }
        let node = Node {
            inner: Arc::new(Inner {
                client,
                prefix: format!("modo.{system}."),
                system,
                id,
                seq: AtomicU64::new(0),
                closed: AtomicBool::new(false),
                send_buf: Mutex::new(bytes::BytesMut::new()),
                state,
                state_tx,
                service,
                request_timeout: options.request_timeout,
                cluster: Arc::new(Cluster::new(
                    id,
                    Arc::from(options.node_name.clone().unwrap_or_else(|| id.to_string())),
                    options.heartbeat_interval,
                    options.heartbeat_misses,
                )),
                factories: Mutex::default(),
                deferred: flume::unbounded(),
            }),
        };
        let mut live = live_nodes();
        live.retain(|n| n.strong_count() > 0);
        live.push(Arc::downgrade(&node.inner));
        Ok(node)
    }

    /// This node's name ([`NodeOptions::node_name`]; its id by default).
    pub fn node_name(&self) -> &str {
        &self.inner.cluster.name
    }

    /// Starts building a watch on a remote node or exported name: returns a
    /// [`RemoteWatch`](super::RemoteWatch), a local service that ends when the target goes
    /// down, for any local service to [watch](crate::Context::watch).
    ///
    /// ```no_run
    /// # use modo::prelude::*;
    /// # use modo::remote::{Node, RemoteDown, WatchTarget};
    /// struct Monitor { node: Node }
    /// impl Service for Monitor {
    ///     async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
    ///         let watch = self.node.watch(WatchTarget::name("billing")).start().await?;
    ///         ctx.watch(&watch);
    ///         Ok(())
    ///     }
    ///     async fn on_down(&mut self, down: modo::Down, ctx: &mut Context<Self>) -> HookResult {
    ///         match RemoteDown::of(&down) {
    ///             Some(remote) => ctx.log().warn(format_args!("{remote}")),
    ///             None => ctx.log().info(format_args!("{down}")),
    ///         }
    ///         Ok(())
    ///     }
    /// }
    /// ```
    pub fn watch(&self, target: WatchTarget) -> WatchBuilder {
        WatchBuilder::new(self.clone(), target)
    }

    /// Starts registering a factory: `make` builds a fresh child each time another node asks
    /// this one to spawn one (see [`RemoteChild`](super::RemoteChild)).
    pub fn factory<A: Service>(
        &self,
        name: impl Into<String>,
        make: impl Fn() -> A + Send + Sync + 'static,
    ) -> FactoryBuilder<A> {
        FactoryBuilder::new(self.clone(), name.into(), Arc::new(make))
    }

    /// A child to run on another node, from the factory registered there as `factory`: give
    /// the spec to a [`Supervisor`](crate::Supervisor). See [`RemoteChildSpec`].
    pub fn remote_child<A: Service>(&self, factory: &str) -> RemoteChildSpec<A> {
        RemoteChildSpec::new(self.clone(), factory, self.inner.request_timeout)
    }

    /// Gathers the service tree of every node of the system: one request on
    /// `modo.<system>.graph`, the answers collected until every node heard up answered or
    /// `wait` passed. Nodes heard but silent are listed with their state and no tree.
    ///
    /// # Errors
    /// [`RemoteError::Disconnected`] if the request could not be sent.
    ///
    /// # Cancel safety
    /// Cancel safe (the answers are dropped).
    pub async fn cluster_graph(&self, wait: Duration) -> Result<ClusterGraph, RemoteError> {
        super::graph::gather(self, wait).await
    }

    pub(crate) fn cluster(&self) -> &Cluster {
        &self.inner.cluster
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        self.inner.request_timeout
    }

    pub(crate) fn ctl_subject(&self, id: NodeId) -> String {
        format!("{}node.{id}.ctl", self.inner.prefix)
    }

    pub(crate) fn factory_subject(&self, name: &str) -> String {
        format!("{}factory.{name}", self.inner.prefix)
    }

    pub(crate) fn graph_subject(&self) -> String {
        format!("{}graph", self.inner.prefix)
    }

    fn heartbeat_subject(&self) -> String {
        format!("{}hb.{}", self.inner.prefix, self.inner.id)
    }

    /// Registers a factory; `true` if the name is new.
    pub(crate) fn add_factory(&self, name: &str, factory: Arc<dyn Factory>) -> bool {
        let mut factories = self
            .inner
            .factories
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        factories.insert(name.to_owned(), factory).is_none()
    }

    pub(crate) fn factory_named(&self, name: &str) -> Option<Arc<dyn Factory>> {
        let factories = self
            .inner
            .factories
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        factories.get(name).cloned()
    }

    /// Stops a child of the node's service (a spawned child) and waits for it.
    pub(crate) async fn stop_child(&self, child: ServiceRef) {
        match self.service() {
            Some(service) => {
                let _ = service.ask(RemoveChild(child)).await;
            }
            None => {
                let _ = child.stop().await;
            }
        }
    }

    /// Withdraws a spawned child's export (it answers what it took), then stops the child.
    pub(crate) async fn stop_spawned(&self, spawned: cluster::Spawned) {
        let _ = spawned.export.stop().await;
        self.stop_child(spawned.child).await;
    }

    /// This node's id (random, new for every [`connect`](Self::connect)).
    pub fn id(&self) -> NodeId {
        self.inner.id
    }

    /// The system this node belongs to.
    pub fn system(&self) -> &str {
        &self.inner.system
    }

    /// The connection's state now.
    pub fn state(&self) -> ConnectionState {
        *self.inner.state.borrow()
    }

    /// A receiver of the connection's state: `changed().await` wakes at every change.
    pub fn watch_state(&self) -> watch::Receiver<ConnectionState> {
        self.inner.state.clone()
    }

    /// The subject requests to the export `name` are sent to: `modo.<system>.svc.<name>`.
    pub fn export_subject(&self, name: &str) -> String {
        format!("{}svc.{name}", self.inner.prefix)
    }

    /// The NATS client underneath (for what modo does not wrap; the benchmarks use it to
    /// compare with raw NATS).
    pub fn client(&self) -> &async_nats::Client {
        &self.inner.client
    }

    /// Starts building the export of `addr` under `name`: list the message types other
    /// nodes may send with [`Export::message`], then [`Export::start`] it.
    pub fn export<A: Service>(&self, name: impl Into<String>, addr: Addr<A>) -> Export<A> {
        Export::new(self.clone(), name.into(), addr)
    }

    /// A typed handle on the service other nodes of this system export as `name`. Nothing
    /// is sent yet: a call to a name nobody exports fails with
    /// [`RemoteError::NoResponders`].
    ///
    /// # Errors
    /// [`RemoteError::InvalidName`] if `name` cannot be an export's name.
    pub fn lookup<A: Service>(&self, name: &str) -> Result<RemoteAddr<A>, RemoteError> {
        check_name(name)?;
        Ok(RemoteAddr::new(
            self.clone(),
            Arc::from(name),
            self.export_subject(name),
            self.inner.request_timeout,
        ))
    }

    /// Stops the node's exports (each answers what it took first), flushes what is buffered
    /// and closes the connection for good (the state becomes [`ConnectionState::Closed`]).
    /// Later remote calls fail with [`RemoteError::Disconnected`]; the node's service keeps
    /// running, showing the `nats:closed` flag, until it is stopped.
    ///
    /// # Errors
    /// [`RemoteError::Disconnected`] if the connection could not be drained.
    pub async fn close(&self) -> Result<(), RemoteError> {
        self.inner.closed.store(true, Ordering::Release);
        // The exports first: each unsubscribes and answers what it took.
        if let Some(service) = self.service() {
            let _ = service.ask(StopExports).await;
        }
        // Then the others hear this node leave, at once.
        self.cluster().leaving.store(true, Ordering::Release);
        self.publish_heartbeat(true).await;
        let res = self
            .inner
            .client
            .drain()
            .await
            .map_err(|e| RemoteError::Disconnected {
                reason: e.to_string(),
            });
        if let Some(addr) = service_of(&self.inner.service) {
            show_state(&addr, ConnectionState::Closed);
        }
        self.inner.state_tx.send_replace(ConnectionState::Closed);
        res
    }

    /// `Err(Disconnected)` once [`close`](Self::close) was called.
    pub(crate) fn check_open(&self) -> Result<(), RemoteError> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(RemoteError::Disconnected {
                reason: "the node was closed".into(),
            })
        } else {
            Ok(())
        }
    }

    /// Encodes a request frame from the node's send buffer.
    pub(crate) fn encode_request<M: serde::Serialize + ?Sized>(
        &self,
        head: &super::wire::RequestHead<'_>,
        msg: &M,
    ) -> Result<bytes::Bytes, super::wire::WireError> {
        let mut buf = self
            .inner
            .send_buf
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        super::wire::encode_request_split(head, msg, &mut buf)
    }

    /// The next message id of this node.
    pub(crate) fn next_id(&self) -> MessageId {
        MessageId {
            node: self.inner.id,
            seq: self.inner.seq.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The node's service, if it runs.
    pub(crate) fn service(&self) -> Option<Addr<Node>> {
        service_of(&self.inner.service).filter(|a| !a.is_terminated())
    }
}

/// Whether `target` is up as this node hears it now (for tests and diagnostics).
impl Node {
    /// Whether the watch target is up as this node hears it now (a node sending heartbeats,
    /// a name some such node serves).
    pub fn is_up(&self, target: &WatchTarget) -> bool {
        let target = match target {
            WatchTarget::Node(n) => Target::Node(n.as_str().into()),
            WatchTarget::Name(n) => Target::Name(n.as_str().into()),
        };
        self.cluster().is_up(&target)
    }
}

/// The nodes of this process, for the Worker's dump.
fn live_nodes() -> std::sync::MutexGuard<'static, Vec<std::sync::Weak<Inner>>> {
    static LIVE: std::sync::OnceLock<Mutex<Vec<std::sync::Weak<Inner>>>> =
        std::sync::OnceLock::new();
    LIVE.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The cluster graph of every node whose service runs in `graph` (the Worker's dump): each
/// gathered for at most 1 s.
pub(crate) async fn cluster_graphs_in(graph: &crate::registry::Graph) -> Vec<ClusterGraph> {
    let nodes: Vec<Node> = live_nodes()
        .iter()
        .filter_map(std::sync::Weak::upgrade)
        .map(|inner| Node { inner })
        .filter(|n| n.service().is_some_and(|s| graph.node(s.id()).is_some()))
        .collect();
    let mut out = Vec::new();
    for node in nodes {
        if let Ok(cluster) = node.cluster_graph(Duration::from_secs(1)).await {
            out.push(cluster);
        }
    }
    out
}
