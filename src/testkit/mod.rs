//! A test kit for your own services (cargo feature `testkit`): the tools modo's own tests use,
//! through the public API only.
//!
//! - [`Probe`]: a service that records what it receives, with a handle that expects
//!   messages ([`expect_msg`](Probe::expect_msg),
//!   [`expect_msg_matching`](Probe::expect_msg_matching), [`expect_msgs`](Probe::expect_msgs)),
//!   silence ([`expect_no_msg_for`](Probe::expect_no_msg_for)) and services going down
//!   ([`expect_down`](Probe::expect_down), for any service, with the crash reason), each
//!   within a bound. Failures are typed ([`ExpectError`]).
//! - [`Faults`]: break a service on purpose, without changing its code: crash it on its Nth
//!   message, fail its Nth start, or delay one of its hooks
//!   ([`ServiceSpec::faults`](crate::ServiceSpec::faults)).
//! - [`Journal`]: a shared, ordered record to assert the order of hooks and events against
//!   ([`take`](Journal::take), [`check_order`](Journal::check_order),
//!   [`count`](Journal::count), [`wait_for`](Journal::wait_for)); [`Recorder`]: a service
//!   that journals every hook it runs as `<name>:<hook>` and fails at the hooks you choose.
//!
//! Time: run tests under paused tokio time (`#[tokio::test(start_paused = true)]`, which
//! needs tokio's `test-util` feature in your dev-dependencies). Every expectation takes a
//! bound; with the clock paused, tokio moves it forward as soon as every task waits, so a
//! 60-second bound that runs out costs no real time, and a delay is measured exactly.
//!
//! # Example: a supervised service, a fault, and what the supervisor did
//!
//! The service under test reports to a [`Recipient`](crate::Recipient) when it starts and
//! when it handles a job. Its third job crashes it ([`Faults::crash_on_message`]); the probe
//! hears the crash with its reason, then the restart the supervisor made, and the jobs after
//! it, while the job that crashed it is gone.
//!
//! ```
//! use std::time::Duration;
//! use modo::prelude::*;
//! use modo::{DownReason, Recipient};
//! use modo::testkit::{Faults, Probe};
//!
//! #[derive(Debug, PartialEq)]
//! enum Report { Started { restarts: u32 }, Done(u32) }
//!
//! struct Jobs { report: Recipient<Report> }
//! impl Service for Jobs {
//!     async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
//!         self.report.tell(Report::Started { restarts: ctx.restart_count() }).await?;
//!         Ok(())
//!     }
//! }
//! struct Job(u32);
//! impl Handler<Job> for Jobs {
//!     type Reply = ();
//!     async fn handle(&mut self, Job(n): Job, _ctx: &mut Context<Self>) {
//!         self.report.tell(Report::Done(n)).await.ok();
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let second = Duration::from_secs(1);
//! let system = System::new();
//! let mut probe = Probe::<Report>::spawn(&system).await?;
//! let sup = system.spawn(Supervisor::builder().build()).await?;
//! let report = probe.recipient();
//! let jobs = sup
//!     .supervise_with(
//!         ServiceSpec::from_factory(move || Jobs { report: report.clone() })
//!             .faults(Faults::new().crash_on_message(3)),
//!         modo::supervisor::RestartPolicy::Permanent,
//!     )
//!     .await?;
//! probe.watch(&jobs).await?;
//! for n in 1..=4 {
//!     jobs.tell(Job(n)).await?;
//! }
//! assert_eq!(probe.expect_msg(second).await?, Report::Started { restarts: 0 });
//! assert_eq!(probe.expect_msgs(2, second).await?, [Report::Done(1), Report::Done(2)]);
//! let down = probe.expect_down(&jobs, second).await?;
//! match down.reason() {
//!     DownReason::Crashed(reason) => {
//!         assert_eq!(reason.to_string(), "injected fault: crash on message 3")
//!     }
//!     other => panic!("expected a crash, got {other:?}"),
//! }
//! assert_eq!(probe.expect_msg(second).await?, Report::Started { restarts: 1 });
//! assert_eq!(probe.expect_msg(second).await?, Report::Done(4));
//! probe.expect_no_msg_for(second).await?;
//! # system.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! # Example: a hook's order, and a delay measured
//!
//! ```
//! use std::time::Duration;
//! use modo::prelude::*;
//! use modo::Hook;
//! use modo::testkit::{Faults, Journal, Recorder};
//! use tokio::time::Instant;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let journal = Journal::new();
//! let system = System::new();
//! let started = Instant::now();
//! let db = system
//!     .spawn(
//!         ServiceSpec::new(Recorder::new("Db", &journal))
//!             .faults(Faults::new().delay(Hook::OnStart, Duration::from_secs(5))),
//!     )
//!     .await?;
//! assert_eq!(started.elapsed(), Duration::from_secs(5));
//! db.restart().await?;
//! journal.assert_order(&["Db:on_started", "Db:on_stop", "Db:on_restart", "Db:on_start"]);
//! assert_eq!(journal.count("Db:on_start"), 2);
//! # system.shutdown().await?;
//! # Ok(()) }
//! ```

mod journal;
mod probe;
mod recorder;

pub use crate::actor::Faults;
pub use journal::{DropNote, Journal, JournalError};
pub use probe::{ExpectError, Probe, ProbeBuilder, ProbeService};
pub use recorder::{Fail, Ping, Recorder, RecorderError};
