//! The kernel: one actor. A service's shared cell and its handles, its two-lane mailbox, its
//! context, and the task that runs it through Mode's lifecycle. Everything else in modo (the
//! System, the registry, supervisors, the Worker) is built on this layer, and this layer
//! imports none of it: what it needs from above (report an event, count a dead letter, track a
//! task, claim a name) it asks of a [`Host`](host::Host), which the System implements.
//! `../shared/tools/layers` checks the rule in CI.
//!
//! One message, end to end, reads inside this folder: `addr.rs` (wrap and send),
//! `mailbox.rs` (queue, priority, close), `runner/serve.rs` (receive, dispatch), `handler.rs`
//! (run the handler, reply).
//!
//! | file | owns |
//! |---|---|
//! | `service.rs` | the [`Service`] trait: Mode's hooks and settings, [`ChildAction`] |
//! | `handler.rs` | [`Handler<M>`], the boxed envelope a message travels in, panic capture |
//! | `addr.rs` | [`ServiceRef`] (lifecycle, queries) and [`Addr<A>`] (typed sends, derefs to it) |
//! | `cell/` | the shared cell behind every handle: state, crash reason, mailbox (`mod.rs`); its settings (`settings.rs`); its label and log prefix (`label.rs`) |
//! | `mailbox.rs` | the control and user lanes, [`Lifecycle`], stop requests, child notices; `mailbox/dormant.rs`: the task of an actor that has no tokio task (not launched, driven, or parked) |
//! | `recipient.rs` | [`Recipient<M, R>`]: a handle to anything that handles `M` |
//! | `reply.rs` | [`ReplyTo<R>`]: answering an ask later |
//! | `context/` | [`Context<A>`]: what hooks and handlers may do (`mod.rs`); its children and adoption (`tree.rs`) |
//! | `tasks.rs` | background tasks and the exit stack of one run |
//! | `spec.rs` | [`ServiceSpec`], [`Dependency`]: what to spawn |
//! | `state.rs` | [`ServiceState`] |
//! | `error.rs` | [`Error`], [`SendError`], [`TrySendError`], [`CrashReason`], [`Hook`] |
//! | `host.rs` | what the kernel asks of its host, and the graph events it reports |
//! | `decide.rs` | a parent's answer to a child's crash, taken in the child's task (in-place restarts) |
//! | `watch.rs` | watching any service: [`Down`], [`WatchId`] |
//! | `observe.rs` | per-message spans and statistics, paid for only while observed: [`ServiceStats`] |
//! | `busy.rs` | which service each thread is running, noted only while a blocking detector listens |
//! | `meter.rs` | the `metrics` facade (feature `metrics`): names and labels |
//! | `log.rs` | the `[^--Label]` logger and the span of an actor's task |
//! | `runner/` | the actor's task: build and launch, the serve loop, control, children, the sequences |

pub(crate) mod addr;
pub(crate) mod busy;
pub(crate) mod cell;
pub(crate) mod context;
pub(crate) mod decide;
pub(crate) mod error;
#[cfg(feature = "testkit")]
pub(crate) mod faults;
pub(crate) mod handler;
pub(crate) mod host;
pub(crate) mod log;
pub(crate) mod mailbox;
pub(crate) mod meter;
pub(crate) mod observe;
pub(crate) mod recipient;
pub(crate) mod reply;
pub(crate) mod runner;
pub(crate) mod service;
pub(crate) mod spec;
pub(crate) mod state;
pub(crate) mod tasks;
pub(crate) mod watch;

pub use addr::{Addr, ServiceRef, WeakAddr};
pub use context::Context;
pub use error::{
    BoxError, CrashReason, Error, Hook, HookResult, SendError, SharedError, TrySendError,
};
#[cfg(feature = "testkit")]
pub use faults::Faults;
pub use handler::Handler;
pub use mailbox::{DEFAULT_MAILBOX_CAPACITY, Lifecycle};
pub use observe::{CrashRecord, Percentiles, ServiceStats};
pub use recipient::Recipient;
pub use reply::ReplyTo;
pub use service::{ChildAction, DEFAULT_SHUTDOWN_TIMEOUT, Service};
pub use spec::{Dependency, IntoServiceSpec, ServiceSpec};
pub use state::ServiceState;
pub use tasks::{TaskError, TaskHandle, TaskOutput};
pub use watch::{Down, DownReason, WatchId};
