//! What a node is configured with ([`NodeOptions`]) and the state of its connection
//! ([`ConnectionState`]).

use std::fmt;
use std::time::Duration;

use super::super::RemoteError;
use super::super::auth::{self, Credentials, Tls};
#[cfg(doc)]
use super::super::{RemoteAddr, WatchTarget};

/// The default heartbeat interval.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// The default number of heartbeat intervals a node may miss before it is unreachable.
pub const DEFAULT_HEARTBEAT_MISSES: u32 = 2;

/// How a [`Node`](super::Node) connects.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    pub(super) system: String,
    pub(super) client_name: Option<String>,
    pub(super) request_timeout: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) inbox_prefix: Option<String>,
    pub(super) reconnect_delay_max: Duration,
    pub(super) node_name: Option<String>,
    pub(super) heartbeat_interval: Duration,
    pub(super) heartbeat_misses: u32,
    pub(super) credentials: Credentials,
    pub(super) tls: Tls,
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
            node_name: None,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            heartbeat_misses: DEFAULT_HEARTBEAT_MISSES,
            credentials: Credentials::None,
            tls: Tls::default(),
        }
    }

    /// Options for a node of `system`, with credentials and TLS from the environment:
    ///
    /// | variable | meaning |
    /// |---|---|
    /// | `MODO_NATS_USER`, `MODO_NATS_PASSWORD` | a user and password (both, or neither) |
    /// | `MODO_NATS_TOKEN` | a token |
    /// | `MODO_NATS_NKEY` | an nkey seed (`SU...`) |
    /// | `MODO_NATS_CREDS` | the path of a `.creds` file |
    /// | `MODO_NATS_TLS_CA` | the PEM file of the CA that signed the server's certificate |
    /// | `MODO_NATS_TLS_CERT`, `MODO_NATS_TLS_KEY` | a client certificate and its key (both, or neither) |
    /// | `MODO_NATS_TLS_REQUIRED` | `1`/`true`/`yes`: refuse a server without TLS |
    ///
    /// At most one way to authenticate may be set; an empty variable counts as unset.
    ///
    /// # Errors
    /// [`RemoteError::Config`] naming what is inconsistent.
    pub fn from_env(system: impl Into<String>) -> Result<Self, RemoteError> {
        Self::from_vars(system, |k| std::env::var(k).ok())
    }

    /// [`from_env`](Self::from_env), reading the variables from `get` instead (a map in a
    /// test, a configuration file's section).
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_vars(
        system: impl Into<String>,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, RemoteError> {
        let (credentials, tls) = auth::from_vars(get)?;
        let mut options = NodeOptions::new(system);
        options.credentials = credentials;
        options.tls = tls;
        Ok(options)
    }

    /// The node's name in the cluster: what watches on a node
    /// ([`WatchTarget::Node`]) and the cluster graph name it by. A node restarted under the
    /// same name is the same watch target. Default: the node's random id.
    pub fn node_name(mut self, name: impl Into<String>) -> Self {
        self.node_name = Some(name.into());
        self
    }

    /// How often the node publishes its heartbeat (default 1 s). Other nodes declare it
    /// unreachable after [`heartbeat_misses`](Self::heartbeat_misses) intervals without one.
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.heartbeat_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How many heartbeat intervals of silence make a peer unreachable (default 2, at least
    /// 1): a watch hears a lost node within `misses` of its intervals after its last
    /// heartbeat.
    pub fn heartbeat_misses(mut self, misses: u32) -> Self {
        self.heartbeat_misses = misses.max(1);
        self
    }

    /// Authenticates with a user and password.
    pub fn user_password(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Credentials::UserPassword {
            user: user.into(),
            password: password.into(),
        };
        self
    }

    /// Authenticates with a token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.credentials = Credentials::Token(token.into());
        self
    }

    /// Authenticates with an nkey seed (`SU...`).
    pub fn nkey(mut self, seed: impl Into<String>) -> Self {
        self.credentials = Credentials::NKey(seed.into());
        self
    }

    /// Authenticates with a `.creds` file (user JWT and seed).
    pub fn credentials_file(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.credentials = Credentials::CredsFile(path.into());
        self
    }

    /// Any [`Credentials`].
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = credentials;
        self
    }

    /// Checks the server's certificate against this CA (PEM); turns TLS on.
    pub fn tls_root_ca(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.tls.root_ca = Some(path.into());
        self
    }

    /// Presents this client certificate and key (PEM), for servers that verify clients;
    /// turns TLS on.
    pub fn tls_client_cert(
        mut self,
        cert: impl Into<std::path::PathBuf>,
        key: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.tls.client_cert = Some((cert.into(), key.into()));
        self
    }

    /// Refuses a server that does not offer TLS.
    pub fn require_tls(mut self, yes: bool) -> Self {
        self.tls.required = yes;
        self
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
    /// Closed for good ([`Node::close`](super::Node::close)).
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

    pub(super) const ALL: [ConnectionState; 3] = [
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
