//! # modo
//!
//! Services you start, stop, restart and supervise, as actors on tokio: the service model of
//! Python's Mode (the base of Faust), in Rust.
//!
//! Every service is an actor: one tokio task owns its state and serves a mailbox with two
//! lanes, a control lane of lifecycle requests that always wins, and a bounded lane of typed
//! user messages. You spawn services through a [`System`], get a typed [`Addr`] back, `tell`
//! and `ask` it, and build trees of services whose hooks run in Mode's exact order.
//!
//! ```
//! use modo::prelude::*;
//! use std::time::Duration;
//!
//! #[derive(Default)]
//! struct Counter { n: u64 }
//!
//! impl Service for Counter {
//!     async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
//!         ctx.log().info("counter starting");
//!         Ok(())
//!     }
//! }
//!
//! struct Add(u64);
//!
//! impl Handler<Add> for Counter {
//!     type Reply = u64;
//!     async fn handle(&mut self, msg: Add, _ctx: &mut Context<Self>) -> u64 {
//!         self.n += msg.0;
//!         self.n
//!     }
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), modo::Error> {
//!     let system = System::new();
//!     let counter: Addr<Counter> = system.spawn(Counter::default()).await?;
//!     counter.tell(Add(1)).await?;
//!     assert_eq!(counter.ask(Add(2)).await?, 3);
//!     assert_eq!(counter.ask_timeout(Add(3), Duration::from_secs(1)).await?, 6);
//!     counter.stop().await?;
//!     assert!(counter.tell(Add(1)).await.is_err());
//!     system.shutdown().await
//! }
//! ```
//!
//! Start with [`Service`] (the hooks and their order), [`Handler`], [`Addr`] and [`Context`].
//! Then:
//!
//! - [`Context`] is Mode's toolbox: background tasks, drift-corrected timers
//!   ([`time::Timer`]), sleeps and waits that end when the service stops ([`StopSignal`]),
//!   exit stacks, the shutdown flag, diagnostics ([`Diag`]); [`Seconds`] reads Mode's
//!   durations; [`from_future`] makes a service of a future.
//! - [`supervisor`]: supervisors are actors with Mode's and Erlang's strategies, restart
//!   intensity that escalates, restart policies and backoff.
//! - [`registry`]: each [`System`] keeps the live graph of its services in a registry actor
//!   ([`System::registry`]), with snapshots, topological sort and Graphviz DOT, and finds
//!   named services ([`System::lookup`]).
//! - [`log`]: Mode's `[^--Label]` prefixes and line format over `tracing`.
//! - [`worker`]: the [`Worker`] runs a tree of services as a program: logging set-up, OS
//!   signals (graceful stop, tree dump), a blocking detector and exit codes.
//! - `remote` (cargo feature `nats`): typed services across processes and hosts over NATS:
//!   a node joins a system, exports services by name, and looks up typed remote addresses.
//! - [`signal`]: Mode's observer pattern: [`Signal`]s whose receivers run in order, a failing
//!   one reported without stopping the others.
//!
//! ARCHITECTURE.md in the repository maps the modules, the path of a message, the lifecycle
//! state machine and the invariants, each with the test that proves it.

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![deny(unused_must_use)]

mod actor;
mod awaitable;
mod diag;
pub mod flight;
pub mod flow;
pub mod log;
pub mod logging;
#[cfg(feature = "observer")]
pub mod observe;
pub mod pool;
pub mod registry;
#[cfg(feature = "nats")]
pub mod remote;
mod scope;
pub mod signal;
pub mod stampede;
pub mod supervisor;
mod system;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod time;
mod wait;
pub mod worker;

pub use actor::{
    Addr, BoxError, ChildAction, Context, CrashReason, CrashRecord, DEFAULT_MAILBOX_CAPACITY,
    DEFAULT_SHUTDOWN_TIMEOUT, Dependency, Down, DownReason, Error, Handler, Hook, HookResult,
    IntoServiceSpec, Lifecycle, Percentiles, Recipient, ReplyTo, SendError, Service, ServiceRef,
    ServiceSpec, ServiceState, ServiceStats, SharedError, TaskError, TaskHandle, TaskOutput,
    TrySendError, WatchId, WeakAddr,
};
pub use awaitable::{FutureService, from_future};
pub use diag::Diag;
pub use flight::FlightRecorder;
pub use flow::{FlowControlEvent, FlowControlQueue, ThrowableQueue};
pub use logging::LogConfig;
#[cfg(feature = "observer")]
pub use observe::{Observer, ObserverConfig};
pub use pool::{Pool, Routing};
pub use registry::{Graph, Registry};
pub use scope::Scoped;
pub use signal::Signal;
pub use stampede::{Stampede, StampedeMap};
pub use supervisor::{Strategy, Supervisor};
pub use system::{DeadLetterCount, DeadLetters, System};
pub use time::{Rate, RateLimiter, Seconds, SecondsError, TokenBucket};
pub use wait::{StopSignal, Ticks, WaitError};
pub use worker::{Blocked, BlockingDetector, Worker};

/// The log level type services and the Worker take (re-exported from `tracing`, so a program
/// needs no direct dependency on it).
pub use tracing::Level;

/// What `use modo::prelude::*;` brings in: the types every service touches.
pub mod prelude {
    pub use crate::{
        Addr, BoxError, ChildAction, Context, CrashReason, Dependency, Error, Handler, HookResult,
        Lifecycle, Seconds, Service, ServiceRef, ServiceSpec, ServiceState, StopSignal, Strategy,
        Supervisor, System, WaitError,
    };
}
