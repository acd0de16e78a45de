//! [`ObserverConfig`]: where the observer listens, its token, how often it looks, and the limits
//! that keep a slow or hostile client from costing more than a bounded amount.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// The port the observer listens on by default (on 127.0.0.1).
pub const DEFAULT_PORT: u16 = 6464;

/// How the observer is set up: see each method for its default. Cloning shares the
/// [`Listening`] handle.
///
/// ```
/// use std::time::Duration;
/// use modo::observe::ObserverConfig;
///
/// let config = ObserverConfig::new()
///     .bind("127.0.0.1:0".parse().unwrap())
///     .token("a long random secret")
///     .interval(Duration::from_millis(200));
/// assert_eq!(config.bind_addr().port(), 0);
/// assert!(config.has_token());
/// ```
#[derive(Clone)]
pub struct ObserverConfig {
    pub(crate) bind: SocketAddr,
    pub(crate) token: Option<Arc<str>>,
    pub(crate) interval: Duration,
    pub(crate) heartbeat: Duration,
    pub(crate) max_body: usize,
    pub(crate) max_streams: usize,
    pub(crate) max_connections: usize,
    pub(crate) stream_queue_events: usize,
    pub(crate) stream_queue_bytes: usize,
    pub(crate) write_timeout: Duration,
    pub(crate) action_timeout: Duration,
    pub(crate) body_timeout: Duration,
    pub(crate) send_buffer: Option<u32>,
    pub(crate) observe_linger: Option<Duration>,
    pub(crate) allowed_hosts: Vec<String>,
    #[cfg(feature = "prometheus")]
    pub(crate) prometheus: Option<metrics_exporter_prometheus::PrometheusHandle>,
    pub(crate) listening: Listening,
}

impl Default for ObserverConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ObserverConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObserverConfig")
            .field("bind", &self.bind)
            // Never print the token.
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("interval", &self.interval)
            .field("heartbeat", &self.heartbeat)
            .field("max_body", &self.max_body)
            .field("max_streams", &self.max_streams)
            .field("max_connections", &self.max_connections)
            .field("stream_queue_events", &self.stream_queue_events)
            .field("stream_queue_bytes", &self.stream_queue_bytes)
            .field("write_timeout", &self.write_timeout)
            .field("action_timeout", &self.action_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("send_buffer", &self.send_buffer)
            .field("observe_linger", &self.observe_linger)
            .field("allowed_hosts", &self.allowed_hosts)
            .finish_non_exhaustive()
    }
}

impl ObserverConfig {
    /// The defaults: listen on `127.0.0.1:6464`, no token (read-only), a snapshot every
    /// 250 ms, a heartbeat after 5 s without changes, request bodies up to 16 KiB, at most 64
    /// event streams and 256 connections, a stream client dropped once 1,024 events or 1 MiB
    /// wait for it, a write that makes no progress for 10 s ends its connection, an action
    /// answered within 10 s (else `202 Accepted`), a request body given 10 s to arrive, socket
    /// send buffers of 256 KiB, message observation on while someone watches and 30 s after.
    pub fn new() -> Self {
        ObserverConfig {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_PORT)),
            token: None,
            interval: Duration::from_millis(250),
            heartbeat: Duration::from_secs(5),
            max_body: 16 * 1024,
            max_streams: 64,
            max_connections: 256,
            stream_queue_events: 1024,
            stream_queue_bytes: 1024 * 1024,
            write_timeout: Duration::from_secs(10),
            action_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            send_buffer: Some(256 * 1024),
            observe_linger: Some(Duration::from_secs(30)),
            allowed_hosts: Vec::new(),
            #[cfg(feature = "prometheus")]
            prometheus: None,
            listening: Listening::new(),
        }
    }

    /// The address to listen on. Default `127.0.0.1:6464`; port 0 picks a free port (read it
    /// from [`listening`](Self::listening)). Listening beyond loopback exposes the tree to
    /// the network: do it only behind something that authenticates, and set a token.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// The address this config listens on.
    pub fn bind_addr(&self) -> SocketAddr {
        self.bind
    }

    /// The token that allows actions (stop, restart, crash): requests must carry
    /// `Authorization: Bearer <token>`. Without one the observer is read-only. An empty token
    /// fails the observer's start ([`ObserverError::EmptyToken`](super::ObserverError)).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Arc::from(token.into()));
        self
    }

    /// Whether a token is set (actions allowed with it).
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// How often the observer takes a snapshot of the tree and streams what changed.
    /// Default 250 ms; at least 10 ms.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(10));
        self
    }

    /// After how long without a change the stream sends a `heartbeat` event. Default 5 s.
    pub fn heartbeat(mut self, every: Duration) -> Self {
        self.heartbeat = every.max(Duration::from_millis(10));
        self
    }

    /// The largest request body accepted; a larger one gets `413`. Default 16 KiB.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// How many event streams may be open at once; one more gets `503`. Default 64.
    pub fn max_streams(mut self, n: usize) -> Self {
        self.max_streams = n;
        self
    }

    /// How many connections may be open at once; one more is closed as it is accepted.
    /// Default 256.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How much may wait for one stream client before it is dropped as too slow: this many
    /// events, or this many bytes, whichever comes first. Default 1,024 events, 1 MiB.
    pub fn stream_queue(mut self, events: usize, bytes: usize) -> Self {
        self.stream_queue_events = events.max(1);
        self.stream_queue_bytes = bytes.max(1);
        self
    }

    /// How long a write to a client may make no progress before its connection is closed
    /// (a client that stopped reading). Default 10 s.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// How long an action request waits for the stop or restart to finish before it answers
    /// `202 Accepted` (the action goes on). Default 10 s.
    pub fn action_timeout(mut self, timeout: Duration) -> Self {
        self.action_timeout = timeout;
        self
    }

    /// How long a request body may take to arrive; a slower one gets `408`. Default 10 s.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = timeout;
        self
    }

    /// The socket send buffer of each connection (`SO_SNDBUF`), or `None` for the system's
    /// (which grows up to several MiB per connection). Default 256 KiB: plenty for a page
    /// (on loopback or a LAN), and a client that stops reading holds at most that much kernel
    /// memory before its writes stall and [`write_timeout`](Self::write_timeout) closes it.
    pub fn send_buffer(mut self, bytes: Option<u32>) -> Self {
        self.send_buffer = bytes;
        self
    }

    /// How long message observation stays on after the last watcher left.
    ///
    /// The observer turns message observation on
    /// ([`System::set_observing`](crate::System::set_observing)) while someone watches: while
    /// an event stream is open (the page has one), and for this long after a request for the
    /// graph, a service or `/metrics`, or the end of the last stream. Then it turns it off
    /// again: an observer that nobody watches costs the messages nothing (they travel in the
    /// plain envelope, no clock read). The figures (messages/s, p50/p99) count the messages
    /// sent while observation was on. Default 30 s.
    ///
    /// `None` keeps observation on for the observer's whole life, watched or not: for a
    /// Prometheus server that scrapes `/metrics` less often than the linger, say, so that its
    /// counters miss no message.
    pub fn stop_observing_after(mut self, linger: Option<Duration>) -> Self {
        self.observe_linger = linger;
        self
    }

    /// Also accepts requests whose `Host` header is this name (with or without the port).
    /// On a loopback address only `127.0.0.1`, `localhost` and `[::1]` are accepted by
    /// default: a web page elsewhere cannot read the API through a DNS name rebound to
    /// loopback. On other addresses every host is accepted.
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(host.into().to_ascii_lowercase());
        self
    }

    /// Renders `/metrics` from this Prometheus recorder handle (one the program installed)
    /// instead of installing one. Without it the observer installs a Prometheus recorder as
    /// the process's global `metrics` recorder at its first start; if the program installed
    /// another recorder first, `/metrics` answers `503`.
    #[cfg(feature = "prometheus")]
    pub fn prometheus(mut self, handle: metrics_exporter_prometheus::PrometheusHandle) -> Self {
        self.prometheus = Some(handle);
        self
    }

    /// A handle that tells where the observer listens once it has started (useful with port
    /// 0, or when a [`Worker`](crate::Worker) starts the observer).
    pub fn listening(&self) -> Listening {
        self.listening.clone()
    }
}

/// Where an observer listens, once it does: from [`ObserverConfig::listening`] or
/// [`Observer::listening`](super::Observer::listening).
#[derive(Clone, Debug)]
pub struct Listening {
    tx: Arc<watch::Sender<Option<SocketAddr>>>,
}

impl Listening {
    fn new() -> Self {
        Listening {
            tx: Arc::new(watch::Sender::new(None)),
        }
    }

    pub(crate) fn set(&self, addr: Option<SocketAddr>) {
        self.tx.send_replace(addr);
    }

    /// The address, while the observer listens; `None` before its start and after its stop.
    pub fn addr(&self) -> Option<SocketAddr> {
        *self.tx.borrow()
    }

    /// The page's URL (`http://<addr>/`), while the observer listens.
    pub fn url(&self) -> Option<String> {
        self.addr().map(|a| format!("http://{a}/"))
    }

    /// Waits until the observer listens, and returns the address.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn wait(&self) -> SocketAddr {
        let mut rx = self.tx.subscribe();
        loop {
            if let Some(addr) = *rx.borrow_and_update() {
                return addr;
            }
            // The sender lives in `self`, so `changed` cannot fail while we wait.
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
