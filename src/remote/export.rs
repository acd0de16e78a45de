//! Exports: a local service served to other nodes under a name. The [`Export`] builder lists
//! the message types it takes; [`ExportService`] (a child of the node's service) subscribes
//! and serves.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_nats::client::PublishErrorKind;
use async_nats::{Subject, Subscriber};
use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use tokio::sync::oneshot;

use super::dedup::{MIN_KEEP, Seen, Window};
use super::wire::{self, Fault, Kind, MessageId, ReplyHead, WireError};
use super::{Node, RemoteError, RemoteMessage, check_name};
use crate::{Addr, Context, Error, Handler, HookResult, Lifecycle, Service, WeakAddr};

/// How many recently seen message ids an export remembers by default (with the reply it
/// gave), so a request sent again is answered instead of handled twice.
pub const DEFAULT_DEDUP_WINDOW: usize = 4096;

/// How many requests an export serves at once by default; past it, it stops reading from
/// NATS until one finishes.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 4096;

/// How long a stopping export waits for the requests it already took.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a stopping export keeps reading requests routed to it before its
/// unsubscription took effect.
const DRAIN_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Builds the export of a local service: `node.export(name, addr)`, then the message types
/// other nodes may send it, then [`start`](Self::start).
///
/// ```no_run
/// # use modo::prelude::*;
/// # use modo::remote::{Node, RemoteMessage};
/// # use serde::{Deserialize, Serialize};
/// # struct Cache; impl Service for Cache {}
/// # #[derive(Serialize, Deserialize)] struct Get(u32);
/// # impl RemoteMessage for Get { const NAME: &'static str = "cache.Get"; }
/// # impl Handler<Get> for Cache { type Reply = Option<String>;
/// #     async fn handle(&mut self, _: Get, _: &mut Context<Self>) -> Option<String> { None } }
/// # async fn run(node: Node, cache: Addr<Cache>) -> Result<(), modo::remote::RemoteError> {
/// node.export("cache", cache).message::<Get>().start().await?;
/// # Ok(()) }
/// ```
pub struct Export<A: Service> {
    node: Node,
    name: String,
    addr: Addr<A>,
    routes: HashMap<&'static str, Arc<dyn Route<A>>>,
    twice: Option<&'static str>,
    window: usize,
    max_in_flight: usize,
}

impl<A: Service> fmt::Debug for Export<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Export")
            .field("name", &self.name)
            .field("messages", &self.routes.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl<A: Service> Export<A> {
    pub(crate) fn new(node: Node, name: String, addr: Addr<A>) -> Self {
        Export {
            node,
            name,
            addr,
            routes: HashMap::new(),
            twice: None,
            window: DEFAULT_DEDUP_WINDOW,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }

    /// Takes messages of type `M` from other nodes, for `tell`, `try_tell`, `ask` and
    /// `tell_unacked` (its reply travels back as serde).
    pub fn message<M>(mut self) -> Self
    where
        A: Handler<M>,
        M: RemoteMessage,
        <A as Handler<M>>::Reply: Serialize,
    {
        let route: Arc<dyn Route<A>> = Arc::new(Typed::<M>(PhantomData));
        if self.routes.insert(M::NAME, route).is_some() {
            self.twice = Some(M::NAME);
        }
        self
    }

    /// How many recently seen message ids to remember (default [`DEFAULT_DEDUP_WINDOW`]);
    /// 0 turns the check off. An id is kept at least 30 s even past that count (a copy
    /// comes only after its sender's timeout), up to 16 times the count. The window also
    /// keeps the replies it gave (up to 16 MiB in all), so a request sent again gets the same
    /// answer.
    pub fn dedup_window(mut self, ids: usize) -> Self {
        self.window = ids;
        self
    }

    /// How many requests to serve at once (default [`DEFAULT_MAX_IN_FLIGHT`], at least 1).
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = n.max(1);
        self
    }

    /// Starts serving: adds the export as a child of the node's service and returns once it
    /// is subscribed (other nodes reach it from then on). Stop the returned service to
    /// withdraw the export; it also stops by itself when the exported service stops for
    /// good.
    ///
    /// A stopping export drains: it unsubscribes, answers the requests that reached its
    /// process, and only then stops. Requests the server routed to it during the
    /// unsubscription's round trip can still be dropped by the NATS client (core NATS is at
    /// most once); their senders time out, and a sender with retries
    /// ([`RemoteAddr::with_retries`](super::RemoteAddr::with_retries)) reaches another
    /// replica.
    ///
    /// # Errors
    /// [`RemoteError::InvalidName`] for a bad name or a message name registered twice;
    /// [`RemoteError::NodeNotRunning`] if the node's service is not running;
    /// [`RemoteError::Local`] if the export's service failed to start (the subscription
    /// failed).
    pub async fn start(self) -> Result<Addr<ExportService<A>>, RemoteError> {
        check_name(&self.name)?;
        if let Some(message) = self.twice {
            return Err(RemoteError::InvalidName {
                name: message.to_owned(),
                reason: "two message types of this export share this name",
            });
        }
        let node_service = self.node.service().ok_or(RemoteError::NodeNotRunning)?;
        let subject = self.node.export_subject(&self.name);
        let service = ExportService {
            node: self.node,
            name: Arc::from(self.name),
            subject,
            target: self.addr,
            routes: Arc::new(self.routes),
            window: self.window,
            max_in_flight: self.max_in_flight,
            stop: None,
            counters: Arc::default(),
            listed: None,
        };
        match node_service.ask(AddExport(service)).await {
            Ok(res) => res.map_err(RemoteError::from),
            Err(e) => Err(RemoteError::from(e)),
        }
    }
}

/// What an export has done since it was created (across its restarts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Requests handed to the service (a tell queued, an ask answered, a try_tell tried).
    pub served: u64,
    /// Requests refused with a typed error before they reached the service (bad frame,
    /// unknown type, other version).
    pub refused: u64,
    /// Copies of a request already seen (same message id), answered from the dedup window
    /// without reaching the service.
    pub duplicates: u64,
    /// Fire-and-forget messages dropped (they did not decode; they have no reply to carry
    /// an error).
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    served: AtomicU64,
    refused: AtomicU64,
    duplicates: AtomicU64,
    dropped: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> ExportStats {
        ExportStats {
            served: self.served.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// Asks an export for its [`ExportStats`]: `export.ask(GetExportStats).await`.
#[derive(Debug, Clone, Copy)]
pub struct GetExportStats;

impl<A: Service> Handler<GetExportStats> for ExportService<A> {
    type Reply = ExportStats;

    async fn handle(&mut self, _: GetExportStats, _ctx: &mut Context<Self>) -> ExportStats {
        self.counters.snapshot()
    }
}

/// Asks the node's service to add an export as its child.
pub(crate) struct AddExport<A: Service>(pub(crate) ExportService<A>);

/// The service serving one export: a child of the node's service, labelled `export <name>`.
/// Its background task reads the export's subject (in the queue group `<name>`), decodes
/// each request, hands it to the local service, and replies.
pub struct ExportService<A: Service> {
    node: Node,
    name: Arc<str>,
    subject: String,
    target: Addr<A>,
    routes: Arc<HashMap<&'static str, Arc<dyn Route<A>>>>,
    window: usize,
    max_in_flight: usize,
    stop: Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>,
    counters: Arc<Counters>,
    /// Its key in the node's heartbeat, while listed there.
    listed: Option<u64>,
}

impl<A: Service> fmt::Debug for ExportService<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportService")
            .field("name", &self.name)
            .field("subject", &self.subject)
            .finish()
    }
}

/// Why an export could not subscribe.
#[derive(Debug, thiserror::Error)]
#[error("cannot subscribe to {subject}: {reason}")]
struct SubscribeError {
    subject: String,
    reason: String,
}

impl<A: Service> Service for ExportService<A> {
    fn label(&self) -> Cow<'static, str> {
        Cow::Owned(format!("export {}", self.name))
    }

    fn shutdown_timeout(&self) -> Duration {
        DRAIN_TIMEOUT + Duration::from_secs(1)
    }

    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let client = self.node.client().clone();
        let fail = |e: &dyn fmt::Display| SubscribeError {
            subject: self.subject.clone(),
            reason: e.to_string(),
        };
        let sub = client
            .queue_subscribe(self.subject.clone(), self.name.to_string())
            .await
            .map_err(|e| fail(&e))?;
        // Once the server has the subscription, other nodes reach this export.
        tokio::time::timeout(Duration::from_secs(5), client.flush())
            .await
            .map_err(|e| fail(&e))?
            .map_err(|e| fail(&e))?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        self.stop = Some((stop_tx, done_rx));
        let server = Server {
            client,
            name: self.name.clone(),
            target: self.target.clone(),
            routes: self.routes.clone(),
            window: Window::new(self.window, MIN_KEEP),
            max_in_flight: self.max_in_flight,
            waiting_tells: 0,
            accepted: Bytes::from(wire::encode_reply(&ReplyHead::Accepted)),
            me: ctx.myself().downgrade(),
            counters: self.counters.clone(),
        };
        ctx.spawn_named(
            format!("serve {}", self.name),
            server.run(sub, stop_rx, done_tx),
        );
        // Listed in the node's heartbeats from now on: watchers on other nodes follow it.
        let cluster_key = self
            .node
            .cluster()
            .add_export(self.name.clone(), self.target.service_ref());
        self.listed = Some(cluster_key);
        // An export of a service that stopped for good withdraws itself, so that replicas
        // take its share, or callers hear "no responders". A crash is announced to the
        // other nodes at once (their watches fire), also when a supervisor restarts it.
        let target = self.target.clone();
        let me = ctx.myself().clone();
        let node = self.node.clone();
        let name = self.name.clone();
        ctx.spawn_named("watch target", async move {
            loop {
                let run = target.restart_count();
                target
                    .wait_until(|t| t.is_crashed() || t.is_terminated() || t.restart_count() != run)
                    .await;
                let crashed = target.crash_reason().map(|r| r.to_string()).or_else(|| {
                    // Restarted before this task saw it crashed: announced as a crash all the
                    // same (a watcher would rather hear one too many than miss one).
                    (!target.is_terminated() && target.restart_count() != run)
                        .then(|| "crashed and was restarted".to_owned())
                });
                if crashed.is_some() || target.is_terminated() {
                    node.cluster().announce_down(super::cluster::DownNotice {
                        name: name.to_string(),
                        crashed,
                    });
                }
                if target.is_terminated() {
                    let _ = me.send_lifecycle(Lifecycle::Stop);
                    break;
                }
                // Wait for the restart (or the end) before looking again.
                target
                    .wait_until(|t| !t.is_crashed() || t.is_terminated())
                    .await;
            }
        });
        ctx.log().info(format_args!(
            "serving {} on {} (queue group {})",
            short_name::<A>(),
            self.subject,
            self.name
        ));
        Ok(())
    }

    async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        // Withdrawn: the other nodes hear it at once.
        if let Some(key) = self.listed.take() {
            self.node.cluster().remove_export(
                key,
                Some(super::cluster::DownNotice {
                    name: self.name.to_string(),
                    crashed: None,
                }),
            );
        }
        // Unsubscribe, answer what was taken, then let the tasks be cancelled.
        if let Some((stop, done)) = self.stop.take() {
            let _ = stop.send(());
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, done).await;
        }
        Ok(())
    }
}

fn short_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

/// A message type an export takes: decodes it and hands it to the local service.
pub(crate) trait Route<A: Service>: Send + Sync + 'static {
    /// The version of the message type.
    fn version(&self) -> u16;

    /// Decodes `body` and sends it to `target` as `kind` says. `now`: a tell may be queued
    /// with `try_tell` first (no tell of this export is waiting for room, so order holds).
    fn call(
        &self,
        target: &Addr<A>,
        kind: Kind,
        body: &[u8],
        wait: Option<Duration>,
        now: bool,
    ) -> Result<Served, Fault>;
}

/// How a request was served.
pub(crate) enum Served {
    /// Answered already (an accepted tell, a `try_tell`, a refusal).
    Now(Outcome),
    /// Answered when the future resolves: an ask, or a tell waiting for room.
    Later(BoxFuture<'static, Outcome>),
}

/// The reply a served request gets.
pub(crate) enum Outcome {
    Accepted,
    Reply(Bytes),
}

struct Typed<M>(PhantomData<fn() -> M>);

fn fault_frame(fault: Fault) -> Outcome {
    Outcome::Reply(Bytes::from(wire::encode_reply(&ReplyHead::Fault(fault))))
}

fn fault_of(e: &Error) -> Fault {
    match e {
        Error::Stopped { .. } => Fault::Stopped,
        Error::Crashed { reason, .. } => Fault::Crashed {
            reason: reason.to_string(),
        },
        Error::MailboxFull { .. } => Fault::MailboxFull,
        Error::Timeout { .. } => Fault::Timeout,
        other => Fault::Failed {
            what: other.to_string(),
        },
    }
}

async fn bounded<F: Future<Output = Outcome>>(wait: Option<Duration>, fut: F) -> Outcome {
    match wait {
        Some(wait) => tokio::time::timeout(wait, fut)
            .await
            .unwrap_or_else(|_| fault_frame(Fault::Timeout)),
        None => fut.await,
    }
}

impl<A, M> Route<A> for Typed<M>
where
    A: Handler<M>,
    M: RemoteMessage,
    <A as Handler<M>>::Reply: Serialize,
{
    fn version(&self) -> u16 {
        M::VERSION
    }

    fn call(
        &self,
        target: &Addr<A>,
        kind: Kind,
        body: &[u8],
        wait: Option<Duration>,
        now: bool,
    ) -> Result<Served, Fault> {
        let msg: M = wire::decode_body(body, "message").map_err(|e| Fault::Decode {
            what: format!("{}: {e}", M::NAME),
        })?;
        Ok(match kind {
            Kind::TryTell => Served::Now(match target.try_tell(msg) {
                Ok(()) => Outcome::Accepted,
                Err(e) if e.is_full() => fault_frame(Fault::MailboxFull),
                Err(_) => fault_frame(Fault::Stopped),
            }),
            Kind::Tell | Kind::Publish => {
                let msg = if now {
                    match target.try_tell(msg) {
                        Ok(()) => return Ok(Served::Now(Outcome::Accepted)),
                        Err(e) if e.is_full() => e.into_inner(),
                        Err(_) => return Ok(Served::Now(fault_frame(Fault::Stopped))),
                    }
                } else {
                    msg
                };
                let target = target.clone();
                Served::Later(Box::pin(bounded(wait, async move {
                    match target.tell(msg).await {
                        Ok(()) => Outcome::Accepted,
                        Err(_) => fault_frame(Fault::Stopped),
                    }
                })))
            }
            Kind::Ask => {
                let target = target.clone();
                Served::Later(Box::pin(bounded(wait, async move {
                    match target.ask(msg).await {
                        Ok(reply) => match wire::encode_ok(&reply) {
                            Ok(frame) => Outcome::Reply(Bytes::from(frame)),
                            Err(e) => fault_frame(Fault::Encode {
                                what: e.to_string(),
                            }),
                        },
                        Err(e) => fault_frame(fault_of(&e)),
                    }
                })))
            }
        })
    }
}

/// The export's serving loop.
struct Server<A: Service> {
    client: async_nats::Client,
    name: Arc<str>,
    target: Addr<A>,
    routes: Arc<HashMap<&'static str, Arc<dyn Route<A>>>>,
    window: Window,
    max_in_flight: usize,
    /// Tells waiting for room in the mailbox: while there are some, new tells queue behind
    /// them instead of trying `try_tell` first, so one sender's order holds.
    waiting_tells: usize,
    accepted: Bytes,
    /// The export's own service, stopped if the subscription ends by itself.
    me: WeakAddr<ExportService<A>>,
    counters: Arc<Counters>,
}

/// A request being served: its id, where the reply goes, whether it is a tell waiting for
/// room, whether the dedup window follows it, and the reply.
type InFlight = BoxFuture<'static, (MessageId, Option<Subject>, bool, bool, Outcome)>;

impl<A: Service> Server<A> {
    async fn run(
        mut self,
        mut sub: Subscriber,
        mut stop: oneshot::Receiver<()>,
        done: oneshot::Sender<()>,
    ) {
        let mut inflight: FuturesUnordered<InFlight> = FuturesUnordered::new();
        let mut stopping = false;
        let mut reading = true;
        // Set at the stop: the drain of the subscription ends the stream by then at the
        // latest (it ends sooner, once the server confirmed the unsubscription).
        let drain_deadline = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(drain_deadline);
        // Ends once the subscription has ended (unsubscribed at stop, or the connection
        // closed) and every request taken is answered.
        while reading || !inflight.is_empty() {
            tokio::select! {
                biased;
                _ = &mut stop, if !stopping => {
                    stopping = true;
                    // A drain, not a bare unsubscribe: requests the server routed here
                    // before it saw the unsubscription are still delivered and served (a
                    // bare unsubscribe drops them in the client, and their senders time out).
                    if sub.drain().await.is_err() {
                        reading = false;
                    }
                    drain_deadline
                        .as_mut()
                        .reset(tokio::time::Instant::now() + DRAIN_READ_TIMEOUT);
                }
                () = &mut drain_deadline, if stopping && reading => {
                    reading = false;
                }
                Some((id, reply, tell, windowed, outcome)) = inflight.next(), if !inflight.is_empty() => {
                    if tell {
                        self.waiting_tells -= 1;
                    }
                    self.finish(id, reply, windowed, outcome).await;
                }
                msg = sub.next(), if reading && inflight.len() < self.max_in_flight => match msg {
                    Some(msg) => self.accept(msg, &mut inflight).await,
                    None => reading = false,
                },
            }
        }
        let _ = self.client.flush().await;
        let _ = done.send(());
        if !stopping {
            // The subscription ended by itself: the connection is closed for good. An export
            // that cannot serve stops, so the tree shows it gone.
            tracing::warn!(target: "modo", "export {}: the NATS connection closed; stopping", self.name);
            if let Some(me) = self.me.upgrade() {
                let _ = me.send_lifecycle(Lifecycle::Stop);
            }
        }
    }

    async fn send(&self, reply: Subject, frame: Bytes) {
        match self.client.publish(reply.clone(), frame).await {
            Ok(()) => {}
            // A reply larger than the server takes: the caller hears why instead of waiting
            // for its timeout.
            Err(e) if e.kind() == PublishErrorKind::MaxPayloadExceeded => {
                let fault = Fault::Encode {
                    what: format!("the reply is larger than the server accepts ({e})"),
                };
                let frame = Bytes::from(wire::encode_reply(&ReplyHead::Fault(fault)));
                let _ = self.client.publish(reply, frame).await;
            }
            // The connection is closed for good: the caller times out.
            Err(_) => {}
        }
    }

    async fn refuse(
        &mut self,
        reply: Option<Subject>,
        fault: Fault,
        what: &(dyn fmt::Display + Sync),
    ) {
        match reply {
            Some(reply) => {
                Counters::bump(&self.counters.refused);
                tracing::debug!(target: "modo", "export {}: refused a request: {what}", self.name);
                self.send(
                    reply,
                    Bytes::from(wire::encode_reply(&ReplyHead::Fault(fault))),
                )
                .await;
            }
            None => {
                Counters::bump(&self.counters.dropped);
                tracing::warn!(target: "modo", "export {}: dropped a fire-and-forget message: {what}", self.name);
            }
        }
    }

    async fn accept(
        &mut self,
        msg: async_nats::Message,
        inflight: &mut FuturesUnordered<InFlight>,
    ) {
        let payload = msg.payload;
        let (head, body) = match wire::decode_request(&payload) {
            Ok(decoded) => decoded,
            Err(e) => {
                let fault = match &e {
                    WireError::Version { got, supported } => Fault::WireVersion {
                        got: *got,
                        supported: *supported,
                    },
                    other => Fault::Decode {
                        what: other.to_string(),
                    },
                };
                return self.refuse(msg.reply, fault, &e).await;
            }
        };
        // A fire-and-forget message has no reply subject; anything with one is answered.
        let reply = msg.reply;
        let id = head.id;
        // Fire-and-forget messages are never sent twice (there is no reply to miss), so
        // they skip the window.
        let windowed = head.kind != Kind::Publish;
        let seen = if windowed {
            self.window.begin(id, reply.as_ref())
        } else {
            Seen::New
        };
        match seen {
            Seen::New => {}
            Seen::Pending => {
                Counters::bump(&self.counters.duplicates);
                return;
            }
            Seen::Done(frame) => {
                Counters::bump(&self.counters.duplicates);
                if let Some(reply) = reply {
                    self.send(reply, frame).await;
                }
                return;
            }
        }
        let now = self.waiting_tells == 0;
        // Routed without holding the table past the call: the refusals below need `self`.
        let routed = match self.routes.get(head.message) {
            None => Err(Fault::UnknownMessage {
                message: head.message.to_owned(),
            }),
            Some(route) if route.version() != head.version => Err(Fault::VersionMismatch {
                message: head.message.to_owned(),
                expected: route.version(),
                got: head.version,
            }),
            Some(route) => route.call(&self.target, head.kind, body, head.wait(), now),
        };
        match routed {
            Err(fault) => {
                self.window.forget(id);
                let what = format!("{fault:?}");
                self.refuse(reply, fault, &what).await;
            }
            Ok(Served::Now(outcome)) => {
                Counters::bump(&self.counters.served);
                // A fire-and-forget message queued at once: nothing to record or answer.
                if windowed || reply.is_some() {
                    self.finish(id, reply, windowed, outcome).await
                }
            }
            Ok(Served::Later(fut)) => {
                Counters::bump(&self.counters.served);
                let tell = matches!(head.kind, Kind::Tell | Kind::Publish);
                if tell {
                    self.waiting_tells += 1;
                }
                inflight.push(Box::pin(
                    async move { (id, reply, tell, windowed, fut.await) },
                ));
            }
        }
    }

    async fn finish(
        &mut self,
        id: MessageId,
        reply: Option<Subject>,
        windowed: bool,
        outcome: Outcome,
    ) {
        let frame = match outcome {
            Outcome::Accepted => self.accepted.clone(),
            Outcome::Reply(frame) => frame,
        };
        if windowed {
            let kept = if reply.is_some() {
                frame.clone()
            } else {
                Bytes::new()
            };
            for other in self.window.finish(id, &kept) {
                self.send(other, frame.clone()).await;
            }
        }
        if let Some(reply) = reply {
            self.send(reply, frame).await;
        }
    }
}
