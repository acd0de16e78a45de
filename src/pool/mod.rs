//! Pools: N supervised replicas of one service behind one handle ([`Pool`]), each send
//! routed round-robin, to the least-loaded replica, or by key on a consistent-hash ring
//! (issue 12; ractor's `factory`, kameo's `ActorPool`, actix's `SyncArbiter`).
//!
//! A pool is a [`Supervisor`](crate::Supervisor) (labelled `Pool<Type>` by default) whose
//! children are the replicas, so it shows in the service tree and the registry's graph like
//! any other service, and a crashed replica is restarted in place: same address, same
//! mailbox, a fresh value from the factory. The handle holds the replicas' addresses and
//! picks one per send; routing runs on the caller's task, with no actor in between, so a
//! send through a pool costs one replica send plus a few atomic reads.
//!
//! | file | owns |
//! |---|---|
//! | `handle.rs` | [`Pool`]: the sends, broadcast, the replicas, the pool's lifecycle |
//! | `builder.rs` | [`PoolBuilder`] (supervisor and replicas), [`PoolRouter`] (attach later) |
//! | `routing.rs` | [`Routing`]: round-robin and least-loaded choices |
//! | `ring.rs` | the consistent-hash ring with virtual nodes that keyed sends use |
//! | `error.rs` | [`PoolError`] |
//!
//! ```
//! use modo::pool::{Pool, Routing};
//! use modo::prelude::*;
//!
//! struct Resizer { index: usize }
//!
//! impl Service for Resizer {
//!     fn label(&self) -> std::borrow::Cow<'static, str> {
//!         format!("Resizer#{}", self.index).into()
//!     }
//! }
//!
//! #[derive(Clone)]
//! struct Resize(u32);
//! impl Handler<Resize> for Resizer {
//!     type Reply = u32;
//!     async fn handle(&mut self, Resize(px): Resize, _: &mut Context<Self>) -> u32 { px / 2 }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let system = System::new();
//! let pool = Pool::builder(4, |index| Resizer { index })
//!     .routing(Routing::LeastLoaded)
//!     .spawn(&system)
//!     .await?;
//! pool.tell(Resize(800)).await?;
//! assert_eq!(pool.ask(Resize(640)).await?, 320);
//! assert_eq!(pool.ask_keyed(&"image-17", Resize(100)).await?, 50);
//! assert_eq!(pool.broadcast(Resize(1)).await?, 4);
//!
//! let graph = system.registry().graph().await;
//! let replicas: Vec<_> = graph.children(pool.id()).iter().map(|n| n.label.clone()).collect();
//! assert_eq!(replicas, ["Resizer#0", "Resizer#1", "Resizer#2", "Resizer#3"]);
//! # system.shutdown().await?; Ok(()) }
//! ```
//!
//! # Routing
//! - Unkeyed sends (`tell`, `try_tell`, `ask`, `ask_timeout`) follow the pool's [`Routing`],
//!   chosen at build time: [`Routing::RoundRobin`] or [`Routing::LeastLoaded`] (shortest
//!   mailbox, ties going round). Both prefer a running replica over one that crashed and
//!   waits for its restart.
//! - Keyed sends (`tell_keyed`, `try_tell_keyed`, `ask_keyed`, `ask_keyed_timeout`) go to
//!   the replica that owns the key on a consistent-hash ring with virtual nodes (160 points
//!   per replica by default, std's SipHash): a key always reaches the same replica while the
//!   same replicas are live. The key is an argument of the send, not a property of the pool,
//!   so a send that has no key cannot be routed by one by mistake.
//! - [`Pool::broadcast`] queues a clone on every live replica; [`Pool::ask_all`] asks them all.
//!
//! # Invariants
//! - A send is never lost by routing: a `tell` that returns `Ok` queued the message on one
//!   replica, with [`Addr::tell`](crate::Addr::tell)'s promise (handled, or a dead letter if
//!   that replica stops for good first). A `tell` that finds its replica stopped for good
//!   takes the message back and tries the next one; only when every replica has stopped for
//!   good does it fail, with the message handed back.
//! - A replica that crashed keeps its address and its mailbox: messages queued for it
//!   (before or during the restart, and its keyed messages) are handled after it restarts,
//!   in order; only the message whose handler crashed is lost.
//! - With every replica running, round-robin gives replica `i` exactly the sends `i`,
//!   `i + n`, ... in call order.
//! - A key maps to one replica for as long as the set of live replicas is unchanged; a
//!   replica stopped for good moves only its own keys.
//! - Stopping the pool stops every replica for good; after that every send fails and hands
//!   the message back. A pool whose restart intensity is exceeded stops its replicas and
//!   crashes; its own supervisor (if any) decides, and a restarted pool restarts its replicas
//!   in place, so every handle stays valid.
//!
//! # Where this differs from the peers
//! - kameo's `ActorPool` is an actor that forwards each message (one more hop); ractor's
//!   factory queues jobs in a factory actor. A modo pool routes on the caller's task.
//! - An `ask` is not moved to another replica if its replica stops for good between the
//!   choice and the send: the kernel's `ask` does not hand the message back. A `tell` is.
//! - Replica labels come from [`Service::label`](crate::Service::label): return one with the
//!   index (`Worker#2`) to tell replicas apart in logs and graphs.

mod builder;
mod error;
mod handle;
mod ring;
mod routing;

pub use builder::{DEFAULT_VIRTUAL_NODES, MAX_VIRTUAL_NODES, PoolBuilder, PoolRouter};
pub use error::PoolError;
pub use handle::Pool;
pub use routing::Routing;
