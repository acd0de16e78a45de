//! Typed services across processes and hosts, over [NATS](https://nats.io) (cargo feature
//! `nats`).
//!
//! A [`Node`] joins a NATS server under a system name. It is itself a service: spawn it in a
//! [`System`](crate::System) (as a root, or a child of your app) and its connection state
//! shows in the registry's graph and in the Worker's tree dump, as diagnostic flags
//! (`nats:connected`, `nats:reconnecting`, `nats:closed`). It reconnects by itself.
//!
//! A node [exports](Node::export) a local service under a name, listing the message types
//! it takes from other nodes. Any node of the same system then [looks the name up](Node::lookup)
//! and gets a [`RemoteAddr<A>`]: the same `tell`, `try_tell`, `ask` and `ask_timeout` as a
//! local [`Addr<A>`](crate::Addr), for every message type marked [`RemoteMessage`]. Several
//! nodes that export the same name share its load (a NATS queue group).
//!
//! ```no_run
//! use modo::prelude::*;
//! use modo::remote::{Node, NodeOptions, RemoteMessage};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Default)]
//! struct Counter { n: u64 }
//! impl Service for Counter {}
//!
//! #[derive(Serialize, Deserialize)]
//! struct Add(u64);
//! impl RemoteMessage for Add { const NAME: &'static str = "counter.Add"; }
//!
//! impl Handler<Add> for Counter {
//!     type Reply = u64;
//!     async fn handle(&mut self, Add(n): Add, _ctx: &mut Context<Self>) -> u64 {
//!         self.n += n;
//!         self.n
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // On one host:
//! let system = System::new();
//! let node = Node::connect("nats://127.0.0.1:4222", NodeOptions::new("shop")).await?;
//! system.spawn(node.clone()).await?;
//! let counter = system.spawn(Counter::default()).await?;
//! node.export("counter", counter).message::<Add>().start().await?;
//!
//! // On any other (a node of the same system "shop"):
//! let remote = node.lookup::<Counter>("counter")?;
//! remote.tell(Add(1)).await?;                  // returns once the remote mailbox took it
//! assert_eq!(remote.ask(Add(2)).await?, 3);    // the handler's reply, typed
//! # Ok(()) }
//! ```
//!
//! # Promises
//! The same as locally, or a typed [`RemoteError`]; nothing is lost silently:
//! - [`RemoteAddr::tell`] returns `Ok` once the remote mailbox accepted the message (the
//!   receiving node waits for room, so a full remote mailbox delays the reply). On failure
//!   the message comes back in a [`RemoteSendError`]. A message that may vanish is sent only
//!   with the explicitly named [`RemoteAddr::tell_unacked`].
//! - An ask or tell to a name nobody exports fails at once with
//!   [`RemoteError::NoResponders`] (unless the handle was given retries). Every call is
//!   bounded by a timeout ([`RemoteAddr::with_timeout`]); an ask whose node dies fails within
//!   it, and never hangs.
//! - A handler that panics gives the caller [`RemoteError::Crashed`], as locally.
//! - A request that does not decode (bad bytes, an unknown message type, another version of
//!   it, another wire version) gets a typed error reply; it never reaches the service and
//!   never crashes it or the node.
//! - Each message carries an id ([`wire::MessageId`]); each export keeps a window of recently
//!   seen ids with the reply it gave, so a request sent again with the same id (see
//!   [`RemoteAddr::with_retries`]) is answered, not handled twice, by the node that saw it.
//!   Each export counts what it served, refused, answered as a copy and dropped
//!   ([`ExportStats`], asked with [`GetExportStats`]).
//!
//! # A cluster: failure detection, watches, remote supervision
//! Every running node service publishes a heartbeat (its id, its name, its exports and how
//! each exported service is doing, its factories) every
//! [`heartbeat_interval`](NodeOptions::heartbeat_interval), and reads everyone's. A node
//! silent for [`heartbeat_misses`](NodeOptions::heartbeat_misses) of its intervals (default
//! 2) is unreachable; its first heartbeat after makes it up again. A crash or stop of an
//! exported service, a withdrawn export and a node leaving are published at once, in the
//! heartbeat itself (so they keep their order with it).
//!
//! - [`Node::watch`] makes a [`RemoteWatch`]: a local service standing for a remote node or
//!   exported name, which crashes with a [`RemoteDown`] (the node is unreachable, the service
//!   crashed) or stops (the service stopped, the node left) when its target goes down. Any
//!   local service [watches](crate::Context::watch) it and hears the kernel's
//!   [`Down`](crate::Down) in its [`on_down`](crate::Service::on_down), as for a local
//!   service. With [`WatchBuilder::on_up`], it hears a [`RemoteUp`] when the target is back.
//! - [`Node::factory`] registers a factory by name; [`Node::remote_child`] gives a
//!   [`RemoteChildSpec`] that any [`Supervisor`](crate::Supervisor) holds as a
//!   [`RemoteChild`]: a local proxy whose start spawns the child on a node offering the
//!   factory, which crashes when the child crashes or its node is lost (so the supervisor's
//!   strategy, intensity and escalation apply unchanged), and whose restart spawns again, on
//!   another node if that one is gone.
//! - [`Node::cluster_graph`] gathers every node's service tree
//!   ([`ClusterGraph`](crate::registry::ClusterGraph)); the Worker's SIGUSR1 dump shows it
//!   when a node runs in its tree.
//!
//! # Security
//! [`NodeOptions`] takes a user and password, a token, an nkey seed or a `.creds` file, and
//! TLS (a CA, a client certificate), from the builder or from the environment
//! ([`NodeOptions::from_env`]). Every subject of a system, replies included, is under
//! `modo.<system>.`, so a NATS user whose permissions are `publish` and `subscribe` on
//! `modo.<system>.>` can run its nodes, and nothing else can send to or read them. A server
//! refusing the credentials is [`RemoteError::Unauthorized`].
//!
//! # Subjects
//! Everything of a system lives under `modo.<system>.`:
//! - `modo.<system>.svc.<name>`: requests to an export, served in the queue group `<name>`;
//! - `modo.<system>.inbox.<token>...`: replies (the node's inbox prefix, so a NATS user's
//!   permissions can be scoped to its system: `modo.<system>.>`);
//! - `modo.<system>.hb.<node-id>`: heartbeats, with the down notices of exported services;
//!   `modo.<system>.probe`: a new node asks everyone for a heartbeat at once;
//! - `modo.<system>.node.<node-id>.ctl`: spawn and stop requests to one node;
//!   `modo.<system>.factory.<name>`: spawn requests to any node offering a factory (queue
//!   group `factory`);
//! - `modo.<system>.graph`: the cluster graph, gathered by scatter-gather.
//!
//! # Wire format
//! See [`wire`]: a version byte, then a head and the body in
//! [postcard](https://docs.rs/postcard) (compact, specified, serde-based).

mod addr;
mod auth;
mod cluster;
mod dedup;
mod error;
mod export;
mod graph;
mod node;
mod spawn;
mod watch;
pub mod wire;

pub use addr::RemoteAddr;
pub use auth::{Credentials, ENV_VARS, Tls};
pub use error::{RemoteError, RemoteSendError};
pub use export::{
    DEFAULT_DEDUP_WINDOW, DEFAULT_MAX_IN_FLIGHT, Export, ExportService, ExportStats, GetExportStats,
};
pub(crate) use node::cluster_graphs_in;
pub use node::{
    ConnectionState, DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_HEARTBEAT_MISSES, Node, NodeOptions,
};
pub use spawn::{FactoryBuilder, GetHolder, RemoteChild, RemoteChildSpec};
pub use watch::{
    DownCause, GetWatchTarget, RemoteDown, RemoteUp, RemoteWatch, WatchBuilder, WatchTarget,
};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// A message type that may travel between nodes.
///
/// The name is the type's identity on the wire: choose a stable one (by convention
/// `"<domain>.<Type>"`), never `std::any::type_name`, which changes between compilers and
/// module moves. Bump [`VERSION`](Self::VERSION) when the encoding changes incompatibly:
/// a node that takes another version answers [`RemoteError::VersionMismatch`].
///
/// ```
/// use modo::remote::RemoteMessage;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct PutUser { id: u32, name: String }
///
/// impl RemoteMessage for PutUser {
///     const NAME: &'static str = "users.PutUser";
///     const VERSION: u16 = 2;
/// }
/// ```
pub trait RemoteMessage: Serialize + DeserializeOwned + Send + 'static {
    /// The stable name of the type on the wire.
    const NAME: &'static str;
    /// The version of its encoding.
    const VERSION: u16 = 1;
}

/// Checks that `name` is one NATS subject token of the characters modo allows in names:
/// ASCII letters, digits, `_` and `-`, 1 to 128 of them.
pub(crate) fn check_name(name: &str) -> Result<(), RemoteError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name.len() > 128 {
        "it is longer than 128 bytes"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        "only ASCII letters, digits, '_' and '-' may be used"
    } else {
        return Ok(());
    };
    Err(RemoteError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::check_name;

    #[test]
    fn names_are_single_subject_tokens() {
        assert!(check_name("user-cache_2").is_ok());
        for bad in ["", "a.b", "a b", "*", ">", "é", &"x".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
