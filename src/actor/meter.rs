//! The `metrics` facade (feature `metrics`): what modo records, under these names and labels.
//!
//! | name | kind | labels | when |
//! |---|---|---|---|
//! | `modo_messages_handled_total` | counter | `service` | each observed message |
//! | `modo_handle_seconds` | histogram | `service` | each observed message: handler time |
//! | `modo_mailbox_wait_seconds` | histogram | `service` | each observed message: time queued |
//! | `modo_mailbox_depth` | gauge | `service` | each observed message: messages still queued |
//! | `modo_crashes_total` | counter | `service` | each crash |
//! | `modo_restarts_total` | counter | `service` | each restart |
//! | `modo_dead_letters_total` | counter | `service` | each message that could not be delivered |
//! | `modo_spawns_total` | counter | (none) | each service spawned |
//!
//! "Observed" messages are those sent while the System observes
//! ([`System::set_observing`](crate::System::set_observing); the observer and its Prometheus
//! endpoint turn it on) or while a subscriber wants the `modo::message` spans: with nobody
//! looking, a message costs nothing here. Lifecycle counters are rare and always recorded
//! (without a recorder installed the facade does nothing). The `service` label is the
//! service's label. Without the feature every function here is empty.

#[cfg(feature = "metrics")]
use std::time::Duration;

#[cfg(feature = "metrics")]
use super::cell::Core;
#[cfg(feature = "metrics")]
use super::context::Context;
#[cfg(feature = "metrics")]
use super::observe::Stats;
#[cfg(feature = "metrics")]
use super::service::Service;

/// One service's handles into the recorder, made once (at its first observed message).
#[cfg(feature = "metrics")]
pub(crate) struct Handles {
    handled: metrics::Counter,
    handle_time: metrics::Histogram,
    wait: metrics::Histogram,
    depth: metrics::Gauge,
}

#[cfg(feature = "metrics")]
impl Handles {
    fn new(service: &str) -> Handles {
        let service = service.to_owned();
        Handles {
            handled: metrics::counter!("modo_messages_handled_total", "service" => service.clone()),
            handle_time: metrics::histogram!("modo_handle_seconds", "service" => service.clone()),
            wait: metrics::histogram!("modo_mailbox_wait_seconds", "service" => service.clone()),
            depth: metrics::gauge!("modo_mailbox_depth", "service" => service),
        }
    }
}

/// An observed message was handled.
#[cfg(feature = "metrics")]
pub(crate) fn handled<A: Service>(stats: &Stats, ctx: &Context<A>, wait: Duration, took: Duration) {
    let core = ctx.core();
    let h = stats.meter.get_or_init(|| Handles::new(&core.label));
    h.handled.increment(1);
    h.handle_time.record(took.as_secs_f64());
    h.wait.record(wait.as_secs_f64());
    h.depth.set(ctx.myself().mailbox_len() as f64);
}

#[cfg(not(feature = "metrics"))]
#[inline(always)]
pub(crate) fn handled<A: super::service::Service>(
    _: &super::observe::Stats,
    _: &super::context::Context<A>,
    _: std::time::Duration,
    _: std::time::Duration,
) {
}

/// A service crashed.
#[cfg(feature = "metrics")]
pub(crate) fn crashed(core: &Core) {
    metrics::counter!("modo_crashes_total", "service" => core.label.to_string()).increment(1);
}

/// A service restarted.
#[cfg(feature = "metrics")]
pub(crate) fn restarted(core: &Core) {
    metrics::counter!("modo_restarts_total", "service" => core.label.to_string()).increment(1);
}

/// `n` messages of a service became dead letters.
#[cfg(feature = "metrics")]
pub(crate) fn dead_letters(core: &Core, n: u64) {
    metrics::counter!("modo_dead_letters_total", "service" => core.label.to_string()).increment(n);
}

/// A service was spawned.
#[cfg(feature = "metrics")]
pub(crate) fn spawned() {
    metrics::counter!("modo_spawns_total").increment(1);
}

#[cfg(not(feature = "metrics"))]
mod off {
    use super::super::cell::Core;

    #[inline(always)]
    pub(crate) fn crashed(_: &Core) {}
    #[inline(always)]
    pub(crate) fn restarted(_: &Core) {}
    #[inline(always)]
    pub(crate) fn dead_letters(_: &Core, _: u64) {}
    #[inline(always)]
    pub(crate) fn spawned() {}
}

#[cfg(not(feature = "metrics"))]
pub(crate) use off::*;
