//! [`Node`]: a process's membership of a modo system over NATS, and the service that shows it
//! in the tree.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::export::{AddExport, Export, ExportService};
use super::wire::{MessageId, NodeId};
use super::{RemoteAddr, RemoteError, check_name};
use crate::{Addr, Context, Error, Handler, HookResult, Service, WeakAddr};

/// How a [`Node`] connects.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    system: String,
    client_name: Option<String>,
    request_timeout: Duration,
    connect_timeout: Duration,
    inbox_prefix: Option<String>,
    reconnect_delay_max: Duration,
}

impl NodeOptions {
    /// Options for a node of the system `system` (a name of ASCII letters, digits, `_` and
    /// `-`; nodes of one system see each other's exports).
    pub fn new(system: impl Into<String>) -> Self {
        NodeOptions {
            system: system.into(),
            client_name: None,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            inbox_prefix: None,
            reconnect_delay_max: Duration::from_secs(2),
        }
    }

    /// The connection's name, as the NATS server shows it. Default: `modo-<system>`.
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = Some(name.into());
        self
    }

    /// The default bound on a remote call ([`RemoteAddr::with_timeout`] changes it per
    /// handle). Default: 5 s.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The bound on the first connection. Default: 5 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The subject prefix replies come back on. Default: `modo.<system>.inbox`, so a NATS
    /// user's permissions can be scoped to `modo.<system>.>`.
    pub fn inbox_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.inbox_prefix = Some(prefix.into());
        self
    }

    /// The longest wait between two reconnection attempts (they start at 10 ms and double).
    /// Default: 2 s. The node retries for ever.
    pub fn reconnect_delay_max(mut self, max: Duration) -> Self {
        self.reconnect_delay_max = max;
        self
    }
}

/// The state of a node's connection to NATS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectionState {
    /// Connected: requests flow.
    Connected,
    /// The connection broke; the client is reconnecting (publishes are buffered meanwhile,
    /// requests may time out).
    Reconnecting,
    /// Closed for good ([`Node::close`]).
    Closed,
}

impl ConnectionState {
    /// The diagnostic flag the node's service raises in this state.
    pub fn flag(self) -> &'static str {
        match self {
            ConnectionState::Connected => "nats:connected",
            ConnectionState::Reconnecting => "nats:reconnecting",
            ConnectionState::Closed => "nats:closed",
        }
    }

    const ALL: [ConnectionState; 3] = [
        ConnectionState::Connected,
        ConnectionState::Reconnecting,
        ConnectionState::Closed,
    ];
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectionState::Connected => "connected",
            ConnectionState::Reconnecting => "reconnecting",
            ConnectionState::Closed => "closed",
        })
    }
}

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
}

fn service_of(slot: &Mutex<Option<WeakAddr<Node>>>) -> Option<Addr<Node>> {
    let guard = slot.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_ref().and_then(WeakAddr::upgrade)
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("system", &self.inner.system)
            .field("id", &self.inner.id)
            .field("state", &self.state())
            .finish()
    }
}

impl Node {
    /// Connects to the NATS server at `url` (for example `nats://127.0.0.1:4222`) as a new
    /// node of `options`' system. Returns once connected; the connection then reconnects by
    /// itself whenever it breaks.
    ///
    /// # Errors
    /// [`RemoteError::InvalidName`] for a system name that cannot be a subject token;
    /// [`RemoteError::Connect`] if the server cannot be reached within the connect timeout.
    pub async fn connect(url: &str, options: NodeOptions) -> Result<Node, RemoteError> {
        check_name(&options.system)?;
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
        let connect = async_nats::ConnectOptions::new()
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
            connect.connect(url),
        )
        .await
        .map_err(|_| RemoteError::Connect {
            url: url.to_owned(),
            reason: format!("no connection within {:?}", options.connect_timeout),
        })?
        .map_err(|e| RemoteError::Connect {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        if client.connection_state() == async_nats::connection::State::Connected {
            state_tx.send_replace(ConnectionState::Connected);
        }
        Ok(Node {
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
            }),
        })
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

fn show_state(addr: &Addr<Node>, state: ConnectionState) {
    let diag = addr.diag();
    for other in ConnectionState::ALL {
        if other != state {
            diag.unset_flag(other.flag());
        }
    }
    diag.set_flag(state.flag());
}

/// A node already in a tree cannot be spawned a second time.
#[derive(Debug, thiserror::Error)]
#[error("this node already runs as a service ({0}); spawn it once")]
struct AlreadySpawned(String);

impl Service for Node {
    fn label(&self) -> Cow<'static, str> {
        Cow::Owned(format!("Node({})", self.inner.system))
    }

    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        {
            let mut service = self.inner.service.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(other) = service.as_ref().and_then(WeakAddr::upgrade)
                && other != *ctx.myself()
                && !other.is_terminated()
            {
                return Err(Box::new(AlreadySpawned(format!("{other:?}"))));
            }
            *service = Some(ctx.myself().downgrade());
        }
        let mut state = self.inner.state.clone();
        let me = ctx.myself().downgrade();
        let system = self.inner.system.clone();
        let id = self.inner.id;
        show_state(ctx.myself(), *state.borrow_and_update());
        ctx.log().info(format_args!(
            "node {id} of system {system}: {}",
            *state.borrow()
        ));
        ctx.spawn_named("nats-connection", async move {
            // The callback raised the flag already; this task logs the change.
            while state.changed().await.is_ok() {
                let now = *state.borrow_and_update();
                if me.upgrade().is_none() {
                    break;
                }
                match now {
                    ConnectionState::Connected => {
                        tracing::info!(target: "modo", "node {id} of system {system}: connected")
                    }
                    _ => {
                        tracing::warn!(target: "modo", "node {id} of system {system}: {now}")
                    }
                }
            }
        });
        Ok(())
    }

    async fn on_shutdown(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        // The exports (children) have answered what they took: send it before going on.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.inner.client.flush()).await;
        Ok(())
    }
}

impl<A: Service> Handler<AddExport<A>> for Node {
    type Reply = Result<Addr<ExportService<A>>, Error>;

    async fn handle(&mut self, msg: AddExport<A>, ctx: &mut Context<Self>) -> Self::Reply {
        ctx.add_runtime_dependency(msg.0).await
    }
}

/// Stops every export of the node (its children).
struct StopExports;

impl Handler<StopExports> for Node {
    type Reply = ();

    async fn handle(&mut self, _: StopExports, ctx: &mut Context<Self>) {
        for child in ctx.children().to_vec() {
            let _ = ctx.remove_dependency(&child).await;
        }
    }
}
