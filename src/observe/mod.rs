//! The observer (cargo feature `observer`): a service that shows a running tree over HTTP, as
//! a JSON API, a live event stream and a web page, and lets an operator with the token stop,
//! restart or crash a service.
//!
//! Add it to any tree ([`Observer::new`]) or let the [`Worker`](crate::Worker) add it
//! ([`Worker::observer`](crate::Worker::observer)); either way it is a service like the
//! others and shows in its own tree (`[^-Observer]` under the Worker). It binds
//! `127.0.0.1:6464` by default ([`ObserverConfig::bind`]); open `http://127.0.0.1:6464/`.
//!
//! ```no_run
//! use modo::observe::{Observer, ObserverConfig};
//! use modo::prelude::*;
//!
//! struct App;
//! impl Service for App {}
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), modo::Error> {
//! let system = System::new();
//! system.spawn(App).await?;
//! let config = ObserverConfig::new().token(std::env::var("OBSERVER_TOKEN").unwrap_or_default());
//! let listening = config.listening();
//! system.spawn(Observer::new(config)).await?;
//! println!("open {}", listening.url().unwrap());
//! # system.shutdown().await }
//! ```
//!
//! # What it reads, and what that costs
//! Every `interval` (250 ms by default) the observer takes one snapshot of the registry's graph
//! ([`Addr<Registry>::graph`](crate::Registry)) and reads each service's
//! [`stats`](crate::ServiceRef::stats) and mailbox depth; the graph endpoint serves the latest
//! snapshot and the stream sends what changed since the one before. Nothing else tracks the
//! services: a service the graph does not hold does not exist for the observer.
//!
//! **While someone watches, the observer turns message observation on**
//! ([`System::set_observing`](crate::System::set_observing)): each message then records its
//! mailbox wait and handle time, which the figures (messages/s, p50/p99) come from. Someone
//! watches while an event stream is open (the page keeps one) and for 30 s after a request for
//! the graph, a service or `/metrics`, or after the last stream closed
//! ([`ObserverConfig::stop_observing_after`]); then the observer turns observation off again,
//! so an observer that nobody watches costs the messages nothing. It never turns off what the
//! program turned on itself, and turns it off when it stops. Crashes and restarts are counted
//! either way. The look every `interval` (its duration is `look_us` in the status document)
//! costs per service, not per message, and is skipped too while message observation is off:
//! a request for the graph or a service that finds the latest snapshot older than two
//! intervals has a look made for it (waiting at most a second), and a new stream starts from
//! the latest snapshot, brought up to date by the next look's changes.
//!
//! # The HTTP API, version 1
//! Every JSON document has `"version": 1` and a `"type"`. Times are milliseconds since the Unix
//! epoch (`at_ms`, server wall clock); durations are nanoseconds (`*_ns`).
//!
//! | request | answer |
//! |---|---|
//! | `GET /` | the page (and `/assets/observer.js`, `/assets/observer.css`) |
//! | `GET /api/v1/graph` | the latest snapshot (`type: "snapshot"`) |
//! | `GET /api/v1/services/{id}` | one service, read now (`type: "service"`) |
//! | `GET /api/v1/events` | the live stream, Server-Sent Events |
//! | `GET /api/v1/status` | the observer's own figures (`type: "status"`) |
//! | `POST /api/v1/services/{id}/stop` | stops the service (a supervised one is restarted by its supervisor) |
//! | `POST /api/v1/services/{id}/restart` | restarts it |
//! | `POST /api/v1/services/{id}/crash` | crashes it; body `{"reason": "..."}` optional |
//! | `GET /metrics` | Prometheus text format (feature `prometheus`) |
//!
//! A **service** (in a snapshot, an `added` change, and, with `crash_reason` and
//! `dead_letters` added, the service document):
//! ```json
//! { "id": "6f0c…", "label": "Web", "shortlabel": "Web", "type_name": "app::Web",
//!   "name": null, "parent": "a1b2…", "children": ["…"], "depth": 1,
//!   "state": "running", "restart_count": 0, "tasks": ["Web#1"], "flags": [],
//!   "mailbox": 0,
//!   "stats": { "handled": 120, "rate": 40.0,
//!              "handle_time":  { "p50_ns": 16384, "p99_ns": 65536, "max_ns": 131072 },
//!              "mailbox_wait": { "p50_ns": 2048,  "p99_ns": 8192,  "max_ns": 8192 },
//!              "crashes": 1, "last_crash": { "at_ms": 1767225600000, "reason": "boom" } } }
//! ```
//! `state` is one of `init`, `starting`, `running`, `stopping`, `shutdown`, `crashed`;
//! `rate` is messages handled per second over the last interval; `handled` and the
//! quantiles count observed messages only (upper bounds within a factor of two).
//!
//! A **snapshot**: `{"version": 1, "type": "snapshot", "seq": 42, "at_ms": …, "services":
//! [service, …]}`, services in creation order (a parent before its children).
//!
//! The **stream** (`text/event-stream`): each event has `event:` (its type), `id:` (its `seq`)
//! and one `data:` line holding the JSON document. The first event is a `snapshot`; then
//! `changes` events, numbered `seq + 1`, `seq + 2`, … with no gap, and a `heartbeat` (same
//! `seq` as the last event) after 5 s without a change. A client that falls behind (1,024 events
//! or 1 MiB waiting for it, see [`ObserverConfig::stream_queue`]) is dropped: its connection
//! is closed, and a reconnecting client (an `EventSource` does so by itself) starts again from
//! a fresh snapshot.
//! ```json
//! { "version": 1, "type": "changes", "seq": 43, "at_ms": …, "changes": [
//!   { "kind": "added", "service": service },
//!   { "kind": "removed", "id": "…", "label": "Web" },
//!   { "kind": "state", "id": "…", "from": "running", "to": "crashed" },
//!   { "kind": "crashed", "id": "…", "crashes": 2, "crash": { "at_ms": …, "reason": "…" } },
//!   { "kind": "restarted", "id": "…", "restart_count": 3, "crash": { "at_ms": …, "reason": "…" } },
//!   { "kind": "updated", "id": "…", "mailbox": 0, "tasks": […], "flags": […],
//!     "children": […], "stats": stats } ] }
//! ```
//! A crash and the restart that follows may both fall between two snapshots: the state then
//! reads `running` in both, and the `crashed` and `restarted` changes say what happened.
//!
//! An **action** answers `200` with `{"version": 1, "type": "action", "ok": true, "action":
//! "restart", "id": "…", "pending": false, "state": "running", "restart_count": 4}`, or `202`
//! with `"pending": true` when the stop or restart had not finished after the action timeout
//! (it goes on).
//!
//! The **status** document (`type: "status"`) is the observer's own account: `seq` and
//! `snapshot_at_ms` of the latest snapshot, `services`, `observing` (message observation on),
//! `read_only`, `interval_ms`, `look_us` (how long the last look took, in microseconds),
//! `looks` (looks taken since the observer started; none while nobody watches),
//! `stream_clients`, `stream_queued_bytes` (what waits for them, summed over the clients),
//! `streams_dropped` (clients dropped for being too slow), `connections`,
//! `connections_refused` and `writes_timed_out`. Reading it does not count as watching.
//!
//! An **error** is `{"version": 1, "error": {"status": 404, "code": "unknown_service",
//! "message": "…"}}`, with codes: `bad_path` (400: a `.` or `..` segment, a bad path),
//! `bad_id` (400: not a UUID), `bad_json` and `bad_body` (400), `read_only` (403: no token
//! configured), `unauthorized` (401: no or wrong token), `not_found`, `unknown_service`,
//! `unknown_action` (404), `method_not_allowed` (405), `would_stop_observer` (409: the target
//! is the observer or one of its ancestors), `action_failed` (409: the stop or restart
//! returned an error), `body_timeout` (408: the body was too slow), `too_large` (413),
//! `bad_host` (421), `too_many_streams` and
//! `metrics_unavailable` (503).
//!
//! # Security
//! - It listens on `127.0.0.1` unless told otherwise. On a loopback address it answers only
//!   requests whose `Host` is `127.0.0.1`, `localhost` or `[::1]` (or one allowed with
//!   [`ObserverConfig::allow_host`]), so a web page elsewhere cannot read it through a DNS
//!   name rebound to 127.0.0.1.
//! - Without a token it is read-only: actions get `403 read_only`. With one
//!   ([`ObserverConfig::token`]), actions need `Authorization: Bearer <token>`, else `401`. The
//!   token is kept only as its SHA-256 digest, and a presented token is hashed and compared
//!   digest to digest in constant time (the `subtle` crate): neither the time taken nor the
//!   token's length leaks. A browser sends no such header by itself, so another site cannot
//!   make it act (no cross-site request forgery); the page keeps the token in memory only.
//! - Bad input gets a 4xx JSON error (see above), never a panic or a hang: bodies are limited
//!   ([`ObserverConfig::max_body`], `413` beyond), headers must arrive within 10 s, writes that
//!   make no progress for [`ObserverConfig::write_timeout`] close the connection, streams and
//!   connections are capped. A client that stops reading holds at most its connection's
//!   send buffer ([`ObserverConfig::send_buffer`]) and its stream queue
//!   ([`ObserverConfig::stream_queue`]) until it is closed; the snapshot a new stream client
//!   starts from is one shared document, not a copy per client.
//! - Every response carries a Content-Security-Policy that lets the page load only its own
//!   script and style and talk only to its own origin, `X-Frame-Options: DENY`,
//!   `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.
//! - The observer cannot act on itself or on a service above it in the tree (`409`): that
//!   would stop the server under the request.

mod config;
mod error;
mod guard;
mod http;
mod hub;
mod page;
mod sample;
mod serve;
mod watch;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use config::{DEFAULT_PORT, Listening, ObserverConfig};
pub use error::ObserverError;

use uuid::Uuid;

use crate::{Addr, Context, HookResult, Registry, Service, ServiceRef};
use hub::{Hub, Limits};
use sample::{Snapshot, diff, look, now_ms};
use watch::Watchers;

/// The observer service: see the [module docs](self).
#[derive(Debug)]
pub struct Observer {
    config: ObserverConfig,
    /// Where it listened last: a restart binds the same address again (so a page keeps working
    /// when the port was 0).
    bound: Option<SocketAddr>,
    /// Who watches, while it serves: they drive message observation.
    watchers: Option<Arc<Watchers>>,
}

impl Observer {
    /// An observer set up by `config`.
    pub fn new(config: ObserverConfig) -> Self {
        Observer {
            config,
            bound: None,
            watchers: None,
        }
    }

    /// Where it listens, once it does.
    pub fn listening(&self) -> Listening {
        self.config.listening()
    }
}

impl Service for Observer {
    fn label(&self) -> Cow<'static, str> {
        Cow::Borrowed("Observer")
    }

    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let config = &self.config;
        if config.token.as_deref().is_some_and(str::is_empty) {
            return Err(ObserverError::EmptyToken.into());
        }
        let addr = self.bound.unwrap_or(config.bind);
        let listener = serve::bind(addr, config.send_buffer)
            .map_err(|source| ObserverError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| ObserverError::Bind { addr, source })?;
        self.bound = Some(local);

        let system = ctx.system();
        let watchers = Arc::new(Watchers::new(system.clone(), config.observe_linger));
        if let Some(earlier) = self.watchers.replace(watchers.clone()) {
            earlier.release();
        }
        let mut protected = HashSet::new();
        let mut up = Some(ctx.myself().service_ref());
        while let Some(service) = up {
            protected.insert(service.id());
            up = service.parent();
        }
        let hub = Arc::new(Hub::new(Limits {
            max_streams: config.max_streams,
            queue_events: config.stream_queue_events,
            queue_bytes: config.stream_queue_bytes,
        }));
        let counters = Arc::new(serve::Counters::default());
        let hosts = local.ip().is_loopback().then(|| {
            let mut hosts: Vec<String> = ["127.0.0.1", "localhost", "[::1]"]
                .into_iter()
                .map(str::to_owned)
                .collect();
            hosts.extend(config.allowed_hosts.iter().cloned());
            hosts
        });
        #[cfg(feature = "prometheus")]
        let prometheus = prometheus_handle(config);
        let shared = Arc::new(http::Shared {
            hub: hub.clone(),
            watchers: watchers.clone(),
            system: system.clone(),
            auth: guard::Auth::new(config.token.as_deref()),
            protected,
            action_timeout: config.action_timeout,
            hosts,
            counters: counters.clone(),
            interval: config.interval,
            max_body: config.max_body,
            body_timeout: config.body_timeout,
            #[cfg(feature = "prometheus")]
            prometheus: prometheus.clone(),
        });
        let app = http::router(shared, config.max_body);
        // The first look now: once the observer has started, it shows the tree.
        let registry = system.registry().clone();
        let mut refs = HashMap::new();
        let started = tokio::time::Instant::now();
        let first = look(
            &registry.graph().await,
            &mut refs,
            |id| lookup(&registry, id),
            &Snapshot::empty(),
            0,
        )
        .await;
        hub.set_look_time(started.elapsed());
        hub.publish(first, None);

        let upkeep: Box<dyn FnMut() + Send> = {
            #[cfg(feature = "prometheus")]
            {
                let handle = prometheus.ok();
                Box::new(move || {
                    if let Some(h) = &handle {
                        h.run_upkeep();
                    }
                })
            }
            #[cfg(not(feature = "prometheus"))]
            {
                Box::new(|| {})
            }
        };
        ctx.spawn_named(
            "observer:sampler",
            sample_loop(
                hub,
                watchers,
                registry,
                refs,
                config.interval,
                config.heartbeat,
                upkeep,
            ),
        );
        ctx.spawn_named(
            "observer:http",
            serve::serve(
                listener,
                app,
                config.max_connections,
                config.write_timeout,
                counters,
            ),
        );
        config.listening.set(Some(local));
        let mode = if config.token.is_some() {
            "actions need the token"
        } else {
            "read-only: no token"
        };
        ctx.log()
            .info(format_args!("Serving on http://{local}/ ({mode})"));
        if !local.ip().is_loopback() {
            ctx.log().warn(format_args!(
                "listening beyond loopback ({local}): anyone who reaches it sees the tree"
            ));
        }
        Ok(())
    }

    async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.config.listening.set(None);
        if let Some(watchers) = self.watchers.take() {
            watchers.release();
        }
        Ok(())
    }
}

/// The Prometheus handle `/metrics` renders: the configured one, else one installed as the
/// process's global `metrics` recorder (once per process: the recorder is global by nature).
#[cfg(feature = "prometheus")]
fn prometheus_handle(
    config: &ObserverConfig,
) -> Result<metrics_exporter_prometheus::PrometheusHandle, String> {
    use std::sync::OnceLock;

    static INSTALLED: OnceLock<Result<metrics_exporter_prometheus::PrometheusHandle, String>> =
        OnceLock::new();
    if let Some(handle) = &config.prometheus {
        return Ok(handle.clone());
    }
    INSTALLED
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .map_err(|e| {
                    format!(
                        "cannot install the Prometheus recorder ({e}); pass the handle of the \
                         program's own with ObserverConfig::prometheus"
                    )
                })
        })
        .clone()
}

/// The live service `id`, for its figures.
fn lookup(registry: &Addr<Registry>, id: Uuid) -> impl Future<Output = Option<ServiceRef>> + use<> {
    let registry = registry.clone();
    async move { registry.service(id).await }
}

/// Takes a snapshot every `interval` and publishes what changed; a heartbeat after `heartbeat`
/// without a change. Turns message observation off once nobody has watched for a while.
async fn sample_loop(
    hub: Arc<Hub>,
    watchers: Arc<Watchers>,
    registry: Addr<Registry>,
    mut refs: HashMap<Uuid, ServiceRef>,
    interval: Duration,
    heartbeat: Duration,
    mut upkeep: Box<dyn FnMut() + Send>,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_event = tokio::time::Instant::now();
    loop {
        let asked = tokio::select! {
            _ = ticks.tick() => false,
            () = hub.look_wanted() => true,
        };
        let observing = watchers.settle();
        upkeep();
        if !observing && !asked {
            // Nobody watches: no look (a reader that comes asks for one, see `Hub::fresh`).
            continue;
        }
        let started = tokio::time::Instant::now();
        let graph = registry.graph().await;
        let prev = hub.latest();
        let mut next: Snapshot = look(
            &graph,
            &mut refs,
            |id| lookup(&registry, id),
            &prev,
            prev.seq,
        )
        .await;
        let changes = diff(&prev, &next);
        let event = (!changes.is_empty()).then(|| {
            next.seq += 1;
            hub::changes_frame(next.seq, next.at_ms, &changes)
        });
        // While graph requests or new stream clients come, the snapshot document is made here,
        // before it is published, rather than by the first reader (who would wait for it).
        if hub.snapshot_wanted() {
            next.json();
        }
        hub.set_look_time(started.elapsed());
        match event {
            Some(event) => {
                hub.publish(next, Some(event));
                last_event = tokio::time::Instant::now();
            }
            None => {
                if last_event.elapsed() >= heartbeat {
                    hub.send(&hub::heartbeat_frame(next.seq, now_ms()));
                    last_event = tokio::time::Instant::now();
                }
                hub.publish(next, None);
            }
        }
    }
}
