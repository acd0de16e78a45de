//! Single flight: Mode's `stampede`. Concurrent callers of the same async computation share
//! one execution of it and all get its result.
//!
//! [`Stampede`] guards one computation (Mode's decorated method, e.g. `maybe_connect`);
//! [`StampedeMap`] one per key (the same lookup for the same key, different keys in
//! parallel). A call starts the computation if none is running, else joins the running one.
//! Nothing is cached: a call after the computation finished runs it again.
//!
//! ```
//! use modo::stampede::Stampede;
//! use std::convert::Infallible;
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::time::Duration;
//!
//! #[tokio::main(flavor = "current_thread", start_paused = true)]
//! async fn main() {
//!     let connects = Arc::new(AtomicU32::new(0));
//!     let connect = Stampede::<u32, Infallible>::new();
//!     let call = || {
//!         let connects = connects.clone();
//!         connect.run(move || async move {
//!             tokio::time::sleep(Duration::from_secs(1)).await; // the slow handshake
//!             Ok(connects.fetch_add(1, Ordering::SeqCst) + 1)
//!         })
//!     };
//!     // Three callers at once: one connection, the same result for all.
//!     let (a, b, c) = tokio::join!(call(), call(), call());
//!     assert_eq!((a, b, c), (Ok(1), Ok(1), Ok(1)));
//!     // Later: it runs again.
//!     assert_eq!(call().await, Ok(2));
//! }
//! ```
//!
//! # Invariants
//! - At most one execution per key at a time: a call starts one only when no execution of
//!   that key is running, decided under the map's lock.
//! - Every caller that joined an execution gets its outcome: the value (a clone), the error
//!   (a clone), or [`StampedeError::Panicked`] if it panicked. After an error or a panic,
//!   the next call runs the computation again.
//! - A call that arrives after the execution finished starts a new one, even if some earlier
//!   callers have not picked up their result yet.
//! - The execution runs inside its callers' tasks (no task is spawned): whichever caller is
//!   polled drives it. A caller that drops its future leaves; the others carry on. When
//!   every caller has left, nobody is waiting for the result: the execution is dropped
//!   (cancelled) at once, and the next call starts afresh.
//! - No user code runs under the map's lock: the closure is called inside the execution.
//!
//! # Where modo differs from Mode
//! - Mode's leader runs the computation and the others wait on a future it fills: if the
//!   leader is cancelled, every waiter is cancelled, and if the computation raises, the
//!   waiters are never told (they hang). Here a caller leaving cancels nobody else, and an
//!   error reaches everyone.
//! - Mode keys its flights by the object the method is bound to; [`StampedeMap`] keys them
//!   by any value, [`Stampede`] is the object-bound form.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared, WeakShared};

/// How a shared execution failed; every caller that joined it gets a clone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StampedeError<E> {
    /// The computation returned this error.
    #[error("the shared computation failed: {0}")]
    Failed(E),
    /// The computation panicked, with this message.
    #[error("the shared computation panicked: {0}")]
    Panicked(Arc<str>),
}

type Outcome<T, E> = Result<T, StampedeError<E>>;
type Flight<T, E> = Shared<BoxFuture<'static, Outcome<T, E>>>;

struct Entry<T, E> {
    id: u64,
    flight: WeakShared<BoxFuture<'static, Outcome<T, E>>>,
}

/// Single flight per key (Mode's `stampede`, keyed): concurrent [`run`](Self::run)s with the
/// same key share one execution; different keys run independently. See the
/// [module docs](self) for the guarantees.
///
/// `T` and `E` are cloned to every caller (wrap them in an `Arc` if they are not `Clone`).
/// Share the map between tasks by reference or in an `Arc`.
///
/// ```
/// use modo::stampede::{StampedeError, StampedeMap};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let lookups: StampedeMap<&str, String, String> = StampedeMap::new();
/// let (a, b) = tokio::join!(
///     lookups.run("user:1", || async {
///         tokio::task::yield_now().await; // the database round trip
///         Ok("Ada".to_string())
///     }),
///     // Joins the running lookup: this closure is never called.
///     lookups.run("user:1", || async { Err("not called".to_string()) }),
/// );
/// assert_eq!(a, Ok("Ada".to_string()));
/// assert_eq!(b, Ok("Ada".to_string()));
///
/// let missing = lookups.run("user:2", || async { Err("no such user".to_string()) }).await;
/// assert_eq!(missing, Err(StampedeError::Failed("no such user".to_string())));
/// assert_eq!(lookups.in_flight(), 0);
/// # }
/// ```
pub struct StampedeMap<K, T, E = Infallible> {
    flights: Mutex<HashMap<K, Entry<T, E>>>,
    next_id: AtomicU64,
}

impl<K, T, E> Default for StampedeMap<K, T, E>
where
    K: Eq + Hash + Clone + Send + 'static,
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, T, E> StampedeMap<K, T, E>
where
    K: Eq + Hash + Clone + Send + 'static,
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    /// An empty map.
    pub fn new() -> Self {
        StampedeMap {
            flights: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Runs the computation `f` builds for `key`, or joins the execution of `key` already
    /// running, and returns its outcome. `f` is called only when this call starts the
    /// execution, from inside it (so a panic in `f` is caught too).
    ///
    /// # Errors
    /// [`StampedeError::Failed`] with (a clone of) the computation's error,
    /// [`StampedeError::Panicked`] when it panicked.
    ///
    /// # Cancel safety
    /// Dropping the future leaves the execution: the other callers still get the outcome.
    /// If no caller is left, the execution is dropped (cancelled) at once.
    pub async fn run<F, Fut>(&self, key: K, f: F) -> Outcome<T, E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let mut caller = self.join(key, f);
        (&mut caller.flight).await
    }

    /// How many keys have an execution running (callers still waiting for it).
    pub fn in_flight(&self) -> usize {
        self.lock()
            .values()
            .filter(|e| Self::running(&e.flight).is_some())
            .count()
    }

    /// Whether an execution of `key` is running.
    pub fn is_running(&self, key: &K) -> bool {
        self.lock()
            .get(key)
            .is_some_and(|e| Self::running(&e.flight).is_some())
    }

    fn join<F, Fut>(&self, key: K, f: F) -> Caller<'_, K, T, E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let mut flights = self.lock();
        if let Some(entry) = flights.get(&key)
            && let Some(flight) = Self::running(&entry.flight)
        {
            let id = entry.id;
            drop(flights);
            return Caller {
                map: self,
                key,
                id,
                flight,
            };
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let execution: BoxFuture<'static, Outcome<T, E>> = Box::pin(async move {
            match AssertUnwindSafe(async move { f().await })
                .catch_unwind()
                .await
            {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(error)) => Err(StampedeError::Failed(error)),
                Err(panic) => Err(StampedeError::Panicked(panic_message(panic.as_ref()))),
            }
        });
        let flight = execution.shared();
        if let Some(weak) = flight.downgrade() {
            flights.insert(key.clone(), Entry { id, flight: weak });
        }
        drop(flights);
        Caller {
            map: self,
            key,
            id,
            flight,
        }
    }

    /// The execution behind `weak` if it is still running: some caller holds it and it has
    /// not finished.
    fn running(weak: &WeakShared<BoxFuture<'static, Outcome<T, E>>>) -> Option<Flight<T, E>> {
        // `peek` panics only for a poisoned flight; executions catch their panics.
        weak.upgrade().filter(|f| f.peek().is_none())
    }

    /// Called by a leaving caller (done or dropped): removes the key's entry if it is the
    /// caller's execution and that is finished, or has no other caller left.
    fn leave(&self, key: &K, id: u64, mine: &Flight<T, E>) {
        let mut flights = self.lock();
        let Some(entry) = flights.get(key) else {
            return;
        };
        if entry.id != id {
            return;
        }
        // `None`: finished (this clone has taken its output). `Some(1)`: only this caller
        // holds it, and it is about to drop it. Joins happen under this lock, so no caller
        // can arrive in between.
        let finished = mine.peek().is_some() || matches!(mine.strong_count(), None | Some(1));
        if finished {
            flights.remove(key);
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Entry<T, E>>> {
        // No user code runs under the lock.
        self.flights.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One caller's share of an execution; leaving (done or dropped) tidies the map.
struct Caller<'a, K, T, E>
where
    K: Eq + Hash + Clone + Send + 'static,
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    map: &'a StampedeMap<K, T, E>,
    key: K,
    id: u64,
    flight: Flight<T, E>,
}

impl<K, T, E> Drop for Caller<'_, K, T, E>
where
    K: Eq + Hash + Clone + Send + 'static,
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    fn drop(&mut self) {
        self.map.leave(&self.key, self.id, &self.flight);
    }
}

impl<K, T, E> fmt::Debug for StampedeMap<K, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries = self.flights.lock().map(|m| m.len()).unwrap_or(0);
        f.debug_struct("StampedeMap")
            .field("entries", &entries)
            .finish()
    }
}

/// Single flight for one computation (Mode's `@stampede` on a method): concurrent
/// [`run`](Self::run)s share one execution. A [`StampedeMap`] with a single key; see the
/// [module docs](self) for an example and the guarantees.
pub struct Stampede<T, E = Infallible> {
    map: StampedeMap<(), T, E>,
}

impl<T, E> Default for Stampede<T, E>
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<T, E> Stampede<T, E>
where
    T: Clone + Send + Sync + 'static,
    E: Clone + Send + Sync + 'static,
{
    /// Nothing running yet.
    pub fn new() -> Self {
        Stampede {
            map: StampedeMap::new(),
        }
    }

    /// Runs the computation `f` builds, or joins the execution already running.
    ///
    /// # Errors
    /// [`StampedeError::Failed`] with (a clone of) the computation's error,
    /// [`StampedeError::Panicked`] when it panicked.
    ///
    /// # Cancel safety
    /// As [`StampedeMap::run`]: leaving does not cancel the others; the last to leave
    /// cancels the execution.
    pub async fn run<F, Fut>(&self, f: F) -> Outcome<T, E>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.map.run((), f).await
    }

    /// Whether an execution is running.
    pub fn is_running(&self) -> bool {
        self.map.is_running(&())
    }
}

impl<T, E> fmt::Debug for Stampede<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let running = self
            .map
            .flights
            .lock()
            .map(|m| !m.is_empty())
            .unwrap_or(false);
        f.debug_struct("Stampede")
            .field("has_entry", &running)
            .finish()
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> Arc<str> {
    if let Some(s) = payload.downcast_ref::<&str>() {
        Arc::from(*s)
    } else if let Some(s) = payload.downcast_ref::<String>() {
        Arc::from(s.as_str())
    } else {
        Arc::from("<non-string panic payload>")
    }
}
