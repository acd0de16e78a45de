//! [`System`]: the handle that spawns root services and shuts the whole tree down.
//!
//! There are no globals: everything an actor runtime keeps (the roots, the task tracker, the
//! dead letters) belongs to one `System`, so two systems in one process (or two tests) share
//! nothing.
//!
//! # Invariants
//! - Every actor task is tracked; [`System::shutdown`] returns only once all of them ended.
//! - After `shutdown` begins, `spawn` fails with [`Error::ShuttingDown`]; a root that slipped in
//!   concurrently is stopped too.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dashmap::DashMap;
use tokio::runtime::Handle;
use tokio::sync::OnceCell;
use tokio_util::task::TaskTracker;
use tokio_util::task::task_tracker::TaskTrackerToken;
use uuid::Uuid;

use crate::actor::cell::with_current;
use crate::actor::host::{Event, Host};
use crate::actor::observe::Observe;
use crate::actor::runner;
use crate::registry::{Directory, Registry};
use crate::{Addr, Context, Error, IntoServiceSpec, Lifecycle, Service, ServiceRef, ServiceSpec};

/// The runtime handle: spawns services, shuts them down. Cheap to clone.
///
/// ```
/// use modo::prelude::*;
///
/// struct Hello;
/// impl Service for Hello {}
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), modo::Error> {
/// let system = System::new();
/// let hello = system.spawn(Hello).await?;
/// assert!(hello.is_started());
/// system.shutdown().await?;
/// assert!(hello.is_terminated());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct System {
    inner: Arc<SystemInner>,
}

pub(crate) struct SystemInner {
    handle: Handle,
    /// Every live service (the roots are those with no parent), written in place as services
    /// come and go; the registry reads it.
    directory: Arc<Directory>,
    tracker: TaskTracker,
    shutting_down: AtomicBool,
    shutdown: OnceCell<Result<(), Error>>,
    pub(crate) dead_letters: DeadLetterBook,
    /// Named services, for `lookup` without a trip through the registry's mailbox.
    names: DashMap<Arc<str>, ServiceRef>,
    registry: Addr<Registry>,
    /// The observation switch every service shares (see `System::set_observing`).
    observe: Arc<Observe>,
    /// Why the System was failed (see `System::fail`): what `shutdown` returns.
    failure: std::sync::Mutex<Option<Error>>,
    /// Held while a root is adopted (see `Context::adopt`).
    adoption: std::sync::Mutex<()>,
    /// Dropped with the System: ends its [`Reaper`]'s task.
    _reaper: tokio::sync::oneshot::Sender<()>,
}

/// Lives in a task of its own on the System's runtime, until the System is gone. A service
/// with no tokio task of its own (dormant since its start, or a child never started) is not
/// dropped by the runtime's shutdown as a task would be; if the runtime shuts down first, it
/// drops this, which drops them.
struct Reaper(std::sync::Weak<SystemInner>);

impl Drop for Reaper {
    fn drop(&mut self) {
        if let Some(inner) = self.0.upgrade() {
            for service in inner.directory.all() {
                service.core().control.drop_dormant();
            }
        }
    }
}

impl fmt::Debug for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("System")
            .field("roots", &self.inner.directory.root_count())
            .field("live_actors", &self.inner.tracker.len())
            .field(
                "shutting_down",
                &self.inner.shutting_down.load(Ordering::Relaxed),
            )
            .finish()
    }
}

impl Default for System {
    fn default() -> Self {
        System::new()
    }
}

impl System {
    /// A system on the current tokio runtime.
    ///
    /// # Panics
    /// Outside a tokio runtime; use [`System::with_handle`] there.
    pub fn new() -> Self {
        System::with_handle(Handle::current())
    }

    /// A system whose actors run on the runtime behind `handle`. Starts its registry.
    pub fn with_handle(handle: Handle) -> Self {
        // The registry needs no host to be built (it reports nothing), so the System can
        // hold its address from the start; it is launched once the System exists.
        let directory = Arc::new(Directory::default());
        let observe = Arc::new(Observe::default());
        let registry = Registry::new(directory.clone());
        let (registry, launch) =
            runner::build(ServiceSpec::new(registry).internal(), None, observe.clone());
        let (reaper, system_gone) = tokio::sync::oneshot::channel::<()>();
        let inner = Arc::new(SystemInner {
            _reaper: reaper,
            handle,
            directory,
            tracker: TaskTracker::new(),
            shutting_down: AtomicBool::new(false),
            shutdown: OnceCell::new(),
            dead_letters: DeadLetterBook::default(),
            names: DashMap::new(),
            registry,
            observe,
            failure: std::sync::Mutex::new(None),
            adoption: std::sync::Mutex::new(()),
        });
        let reaper = Reaper(Arc::downgrade(&inner));
        inner.handle.spawn(async move {
            let _reaper = reaper;
            let _ = system_gone.await;
        });
        let system = System { inner };
        launch.spawn(&system.host());
        // Its start needs no answer: requests sent before it starts wait in its mailbox.
        let _ = system.registry().send_lifecycle(Lifecycle::Start);
        system
    }

    /// The System as its services' host.
    fn host(&self) -> Arc<dyn Host> {
        self.inner.clone()
    }

    /// The address of this System's registry actor, which keeps the live service graph.
    pub fn registry(&self) -> &Addr<Registry> {
        &self.inner.registry
    }

    /// The service spawned under `name` (see [`ServiceSpec::name`]), read from a concurrent
    /// map, not through the registry's mailbox.
    ///
    /// # Errors
    /// [`Error::UnknownName`] (with the closest known name, if one is close) or
    /// [`Error::WrongType`].
    pub fn lookup<A: Service>(&self, name: &str) -> Result<Addr<A>, Error> {
        match self.inner.names.get(name) {
            Some(service) => service.downcast::<A>().ok_or_else(|| Error::WrongType {
                name: name.to_owned(),
                expected: std::any::type_name::<A>(),
                actual: service.type_name(),
            }),
            None => Err(Error::UnknownName {
                name: name.to_owned(),
                did_you_mean: closest(name, self.inner.names.iter().map(|e| e.key().clone())),
            }),
        }
    }

    /// Spawns a root service and returns its address once it has started (its children and
    /// background tasks too).
    ///
    /// Called on the System's runtime (from one of its tasks, or the future its `block_on`
    /// drives), the start runs in the caller's task, then the service's task goes on by
    /// itself: no round trip to another task. Its hooks see the same context either way (their
    /// own service, span and task-local scope). Called from another runtime, the service's
    /// task starts it on the System's runtime.
    ///
    /// # Errors
    /// [`Error::HookFailed`] or [`Error::Crashed`] if the start failed: what had started is
    /// stopped again and the service is gone (its mailbox closed).
    /// [`Error::ShuttingDown`] once [`shutdown`](Self::shutdown) has begun.
    ///
    /// # Cancel safety
    /// If dropped before the start finished, the service still starts, and is stopped by
    /// `shutdown`.
    pub async fn spawn<T: IntoServiceSpec>(&self, service: T) -> Result<Addr<T::Service>, Error> {
        if self.inner.shutting_down.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        let host = self.host();
        let observe = self.inner.observe.clone();
        // Entered in the directory (a root) as it is launched, before its start.
        let (addr, launch) = runner::build(service.into_spec(), None, observe);
        // Started by its own task as its first act: no trip through the control lane, and
        // driven here through its start: no round trip to a task of its own.
        runner::start_launched(addr.core(), |reply| launch.spawn_started(&host, reply)).await?;
        Ok(addr)
    }

    /// The directory, for the directory's own tests.
    #[cfg(test)]
    pub(crate) fn directory(&self) -> &Directory {
        &self.inner.directory
    }

    /// The root services still alive, in spawn order.
    pub fn roots(&self) -> Vec<ServiceRef> {
        self.inner.directory.roots()
    }

    /// How many services' tasks are still running (roots and children; the registry is not
    /// counted).
    pub fn live_actors(&self) -> usize {
        let registry = usize::from(!self.registry().is_terminated());
        self.inner.tracker.len().saturating_sub(registry)
    }

    /// Whether [`shutdown`](Self::shutdown) has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
    }

    /// Stops every root service, newest first, each tree children first (Mode's stop order),
    /// and returns once every actor task has ended. Calling it again, or concurrently, waits
    /// for the same shutdown and returns the same result.
    ///
    /// # Errors
    /// The first error a root's stop reported (the others are still stopped);
    /// [`Error::WouldDeadlock`] when awaited from a service's own task (use
    /// [`request_shutdown`](Self::request_shutdown) there).
    pub async fn shutdown(&self) -> Result<(), Error> {
        if with_current(|c| c.is_some_and(|c| c.own_task)) {
            return Err(Error::WouldDeadlock {
                label: Arc::from("System"),
                op: "shutdown",
            });
        }
        self.inner.shutting_down.store(true, Ordering::Release);
        let inner = &self.inner;
        inner
            .shutdown
            .get_or_init(|| async {
                let mut first: Option<Error> = None;
                // Loop: a root spawned while we were stopping the others is stopped too.
                loop {
                    let mut roots = self.roots();
                    if roots.is_empty() {
                        break;
                    }
                    roots.reverse();
                    for root in roots {
                        if let Err(e) = root.stop().await {
                            tracing::error!(target: "modo", "stopping {} failed: {e}", root.label());
                            first.get_or_insert(e);
                        }
                        // A root that could not be stopped must not keep the loop going.
                        inner.directory.forget(&root);
                    }
                }
                // The registry goes last: it saw every service leave.
                if let Err(e) = self.registry().stop().await {
                    first.get_or_insert(e);
                }
                inner.tracker.close();
                inner.tracker.wait().await;
                let unlogged = inner.dead_letters.unlogged();
                if unlogged > 0 {
                    tracing::info!(
                        target: "modo",
                        "{} undelivered message(s) in all, {unlogged} of them not logged \
                         (messages left by clean stops, and past the first crashes)",
                        inner.dead_letters.total.load(Ordering::Relaxed)
                    );
                }
                let failure = inner.failure.lock().unwrap_or_else(|e| e.into_inner()).clone();
                match failure.or(first) {
                    Some(e) => Err(e),
                    None => Ok(()),
                }
            })
            .await
            .clone()
    }

    /// Runs `fut` on the System's runtime, in the background.
    pub(crate) fn spawn_background(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.inner.handle.spawn(fut);
    }

    /// Starts [`shutdown`](Self::shutdown) in the background and returns at once: the way to
    /// shut down from inside a service.
    pub fn request_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::Release);
        let system = self.clone();
        self.inner.handle.spawn(async move {
            let _ = system.shutdown().await;
        });
    }

    /// Fails the whole System with `error`: starts the shutdown in the background, and
    /// `shutdown` returns this error (the first one, if called more than once). What a
    /// [`Strategy::Crashing`](crate::supervisor::Strategy::Crashing) supervisor does.
    pub fn fail(&self, error: Error) {
        tracing::error!(target: "modo", "the system is failing: {error}");
        self.inner
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(error);
        self.request_shutdown();
    }

    /// Turns message observation on or off for every service of this System: while on, each
    /// message sent records its mailbox wait and handle time in its service's
    /// [`stats`](crate::ServiceRef::stats) (and, with the `metrics` feature, in the `metrics`
    /// facade). Off by default: then a message costs nothing more than a flag read. The
    /// observer turns it on while it serves.
    pub fn set_observing(&self, on: bool) {
        self.inner.observe.set(on);
    }

    /// Whether message observation is on (see [`set_observing`](Self::set_observing)).
    pub fn is_observing(&self) -> bool {
        self.inner.observe.is_on()
    }

    /// A snapshot of the messages that could not be delivered, per service.
    pub fn dead_letters(&self) -> DeadLetters {
        self.inner.dead_letters.snapshot()
    }
}

impl Host for SystemInner {
    fn runtime(&self) -> &Handle {
        &self.handle
    }

    fn track(&self) -> TaskTrackerToken {
        self.tracker.token()
    }

    fn report(&self, event: Event) {
        self.directory.apply(event);
    }

    fn dead_lettered(&self, id: Uuid, label: &Arc<str>, n: u64, crashed: bool) -> bool {
        self.dead_letters.record(id, label, n, crashed)
    }

    fn claim_name(&self, name: &Arc<str>, service: &ServiceRef) -> Result<(), Error> {
        match self.names.entry(name.clone()) {
            dashmap::Entry::Occupied(_) => Err(Error::NameTaken {
                name: name.to_string(),
            }),
            dashmap::Entry::Vacant(slot) => {
                slot.insert(service.clone());
                Ok(())
            }
        }
    }

    fn release_name(&self, name: &str, id: Uuid) {
        self.names.remove_if(name, |_, s| s.id() == id);
    }

    fn adoption_lock(&self) -> &std::sync::Mutex<()> {
        &self.adoption
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

impl<A: Service> Context<A> {
    /// The system this service runs in.
    pub fn system(&self) -> System {
        match self.host().clone().into_any().downcast::<SystemInner>() {
            Ok(inner) => System { inner },
            // The System is the only host there is.
            Err(_) => unreachable!("a service's host is its System"),
        }
    }
}

/// Every known name close to `name` by edit distance (at most a third of the longer name's
/// length, rounded up), closest first (ties in name order).
fn closest(name: &str, known: impl Iterator<Item = Arc<str>>) -> Vec<String> {
    let mut close: Vec<(usize, Arc<str>)> = known
        .map(|k| (edit_distance(name, &k), k))
        .filter(|(d, k)| *d <= name.chars().count().max(k.chars().count()).div_ceil(3))
        .collect();
    close.sort();
    close.into_iter().map(|(_, k)| k.to_string()).collect()
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diag
            } else {
                1 + diag.min(above).min(row[j])
            };
            diag = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn closest_names() {
        let known = || {
            ["webserver", "websockets", "cache"]
                .map(Arc::from)
                .into_iter()
        };
        assert_eq!(closest("webservr", known()), ["webserver"]);
        assert_eq!(closest("cahce", known()), ["cache"]);
        assert!(closest("database", known()).is_empty());
        // Every close one, closest first.
        assert_eq!(closest("websoc", known()), ["websockets"]);
        assert_eq!(closest("websocker", known()), ["websockets", "webserver"]);
    }

    struct Plain;
    impl crate::Service for Plain {}

    /// A service's waker while it has no tokio task of its own is its cell: a stopped service
    /// must not keep it (its cell would keep itself alive). Stopped while dormant (driven by
    /// the stop), or after a message launched its task, its cell is freed with the last
    /// address.
    #[tokio::test]
    async fn a_stopped_service_leaves_no_cell_behind() {
        let system = System::new();
        for woken in [false, true] {
            let addr = system.spawn(Plain).await.unwrap();
            if woken {
                addr.send_lifecycle(crate::Lifecycle::Start).unwrap();
                tokio::task::yield_now().await;
            }
            let cell = Arc::downgrade(addr.cell());
            addr.stop().await.unwrap();
            drop(addr);
            tokio::time::timeout(std::time::Duration::from_secs(10), async {
                while cell.strong_count() > 0 {
                    tokio::task::yield_now().await;
                }
            })
            .await
            .unwrap_or_else(|_| panic!("woken {woken}: the stopped service's cell is still held"));
        }
        system.shutdown().await.unwrap();
    }
}

/// Hashes a v4 uuid by its random bits: no need for SipHash on keys that are random already.
pub(crate) type IdHasher = std::hash::BuildHasherDefault<UuidBits>;

/// The hasher behind [`IdHasher`].
#[derive(Default)]
pub(crate) struct UuidBits(u64);

impl std::hash::Hasher for UuidBits {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

/// Per-service counts of undelivered messages.
#[derive(Default)]
pub(crate) struct DeadLetterBook {
    by_service: DashMap<Uuid, (Arc<str>, u64), IdHasher>,
    total: AtomicU64,
    /// Dead-letter events logged so far (Akka's way: the first few, then only counted).
    logged: AtomicU64,
    /// Messages counted but not logged.
    unlogged: AtomicU64,
}

/// How many dead-letter events are logged before the rest are only counted.
const DEAD_LETTERS_LOGGED: u64 = 10;

impl DeadLetterBook {
    /// Counts `n` dead letters of a service; whether to log them: the first
    /// [`DEAD_LETTERS_LOGGED`] events of crashed services are, the rest only counted (with one
    /// line saying so); those of a service that stopped cleanly never are.
    fn record(&self, id: Uuid, label: &Arc<str>, n: u64, crashed: bool) -> bool {
        self.total.fetch_add(n, Ordering::Relaxed);
        self.by_service
            .entry(id)
            .or_insert_with(|| (label.clone(), 0))
            .1 += n;
        if !crashed {
            self.unlogged.fetch_add(n, Ordering::Relaxed);
            return false;
        }
        let events = self.logged.fetch_add(1, Ordering::Relaxed);
        if events < DEAD_LETTERS_LOGGED {
            return true;
        }
        self.unlogged.fetch_add(n, Ordering::Relaxed);
        if events == DEAD_LETTERS_LOGGED {
            tracing::info!(
                target: "modo",
                "further dead letters are counted, not logged (System::dead_letters has them)"
            );
        }
        false
    }

    /// Dead letters counted but not logged.
    fn unlogged(&self) -> u64 {
        self.unlogged.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> DeadLetters {
        let mut by_service: Vec<DeadLetterCount> = self
            .by_service
            .iter()
            .map(|e| DeadLetterCount {
                id: *e.key(),
                label: e.value().0.to_string(),
                count: e.value().1,
            })
            .collect();
        by_service.sort_by(|a, b| a.label.cmp(&b.label).then(a.id.cmp(&b.id)));
        DeadLetters {
            total: self.total.load(Ordering::Relaxed),
            by_service,
        }
    }
}

/// A snapshot of [`System::dead_letters`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetters {
    /// Undelivered messages in all.
    pub total: u64,
    /// Per service, sorted by label.
    pub by_service: Vec<DeadLetterCount>,
}

/// Undelivered messages of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterCount {
    /// The service's id.
    pub id: Uuid,
    /// The service's label.
    pub label: String,
    /// How many of its messages were not delivered.
    pub count: u64,
}
