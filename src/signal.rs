//! Signals: Mode's observer pattern (`mode.signals`).
//!
//! A [`Signal<T, S>`] keeps a list of receivers. [`Signal::send`] calls each of them with the
//! sender (`&S`) and the value (`&T`), in the order they were connected, awaiting the async
//! ones. A receiver may listen to every sender ([`Signal::connect`]) or to one
//! ([`Signal::connect_from`]).
//!
//! Where modo differs from Mode (MODE-NOTES.md, "Signals (observer)"):
//!
//! - receivers run in the order they were connected (Mode: unspecified order);
//! - a receiver that returns `Err` or panics is logged (a `tracing` warning) and reported in
//!   the [`SendReport`], and the receivers after it still run (Mode: the first failure stops
//!   the send);
//! - [`Signal::disconnect`] takes the [`ReceiverId`] that `connect` returned and really
//!   removes the receiver, dropping the closure and everything it captured (Mode cannot
//!   disconnect a strongly referenced receiver);
//! - receivers get the sender and the value, not the signal itself;
//! - a weak receiver ([`Signal::connect_weak`], Mode's `connect(weak=True)`) names its owner
//!   explicitly (an `Arc`, of which the signal keeps only a `Weak`) and gets `&owner` when
//!   called; once the owner is dropped it is no longer called and is removed from the list
//!   (Mode weakly references the bound method itself).
//!
//! ```
//! use modo::signal::Signal;
//! use std::sync::{Arc, Mutex};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() {
//!     // Sent values are `u32`, senders are `&'static str`.
//!     let on_change: Signal<u32, &'static str> = Signal::named("on_change");
//!     let seen = Arc::new(Mutex::new(Vec::new()));
//!
//!     let log = seen.clone();
//!     on_change.connect(move |sender: &&str, value: &u32| {
//!         log.lock().unwrap().push(format!("{sender}: {value}"));
//!     });
//!     let log = seen.clone();
//!     on_change.connect_async(move |sender, value| {
//!         let log = log.clone();
//!         async move {
//!             tokio::task::yield_now().await;
//!             log.lock().unwrap().push(format!("async {sender}: {value}"));
//!         }
//!     });
//!     // Only for sends from "b".
//!     let failing = on_change.connect_from("b", |_: &&str, _: &u32| Err("no b, please"));
//!
//!     let report = on_change.send("a", 1).await;
//!     assert_eq!(report.called(), 2);
//!     assert!(report.is_ok());
//!
//!     let report = on_change.send("b", 2).await;
//!     assert_eq!(report.called(), 3);
//!     assert_eq!(report.failures()[0].receiver(), failing);
//!
//!     // A signal that shares the receivers and sends as "c" by default.
//!     let from_c = on_change.with_default_sender("c");
//!     from_c.send_default(3).await;
//!
//!     assert!(on_change.disconnect(failing));
//!     assert!(!on_change.disconnect(failing));
//!     assert_eq!(
//!         *seen.lock().unwrap(),
//!         ["a: 1", "async a: 1", "b: 2", "async b: 2", "c: 3", "async c: 3"]
//!     );
//! }
//! ```

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::{BoxError, CrashReason, HookResult};

/// Identifies one connected receiver: returned by [`Signal::connect`] and its siblings, taken
/// by [`Signal::disconnect`], and named in a [`ReceiverFailure`].
///
/// Ids are unique in the process, so an id from one signal never disconnects a receiver of
/// another. A [`Clone`] of a signal keeps the ids of the receivers it copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReceiverId(u64);

impl ReceiverId {
    fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        ReceiverId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The id as a number (unique in the process).
    pub fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ReceiverId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "receiver #{}", self.0)
    }
}

/// What a receiver may return: `()` (it cannot fail) or `Result<(), E>` for any error `E`
/// that converts into a [`BoxError`] (a `&str`, a `String`, any `std::error::Error`).
pub trait ReceiverOutput {
    /// The outcome as a [`HookResult`].
    fn into_result(self) -> HookResult;
}

impl ReceiverOutput for () {
    fn into_result(self) -> HookResult {
        Ok(())
    }
}

impl<E: Into<BoxError>> ReceiverOutput for Result<(), E> {
    fn into_result(self) -> HookResult {
        self.map_err(Into::into)
    }
}

/// One receiver that failed during a [`Signal::send`].
#[derive(Debug, Clone)]
pub struct ReceiverFailure {
    receiver: ReceiverId,
    reason: CrashReason,
}

impl ReceiverFailure {
    /// The receiver that failed.
    pub fn receiver(&self) -> ReceiverId {
        self.receiver
    }

    /// Why: [`CrashReason::Panic`] when it panicked, [`CrashReason::Error`] when it returned
    /// `Err`.
    pub fn reason(&self) -> &CrashReason {
        &self.reason
    }
}

impl fmt::Display for ReceiverFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.receiver, self.reason)
    }
}

/// What a [`Signal::send`] did: how many receivers it called and which of them failed.
///
/// Failures are also logged as warnings, so a caller that does not care may drop the report.
#[derive(Debug, Clone, Default)]
pub struct SendReport {
    called: usize,
    failures: Vec<ReceiverFailure>,
}

impl SendReport {
    /// How many receivers were called (the ones that failed included).
    pub fn called(&self) -> usize {
        self.called
    }

    /// How many receivers were called and succeeded.
    pub fn succeeded(&self) -> usize {
        self.called - self.failures.len()
    }

    /// The receivers that returned `Err` or panicked, in the order they were called.
    pub fn failures(&self) -> &[ReceiverFailure] {
        &self.failures
    }

    /// Whether every receiver called succeeded (also true when none was called).
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty()
    }
}

type SyncFn<T, S> = dyn Fn(&S, &T) -> HookResult + Send + Sync;
type AsyncFn<T, S> = dyn Fn(S, T) -> BoxFuture<'static, HookResult> + Send + Sync;

enum Call<T, S> {
    Sync(Box<SyncFn<T, S>>),
    Async(Box<AsyncFn<T, S>>),
}

/// A weak receiver's owner, type-erased: only its liveness matters here.
type Owner = Weak<dyn Any + Send + Sync>;

struct Receiver<T, S> {
    id: ReceiverId,
    /// `Some(sender)`: called only for sends from that sender.
    only_from: Option<S>,
    /// `Some`: a weak receiver, connected while its owner lives.
    owner: Option<Owner>,
    call: Call<T, S>,
}

impl<T, S> Receiver<T, S> {
    /// Whether the receiver is still connected: strong, or its owner is alive.
    fn is_alive(&self) -> bool {
        self.owner.as_ref().is_none_or(|o| o.strong_count() > 0)
    }
}

struct Shared<T, S> {
    name: Arc<str>,
    receivers: Mutex<Vec<Arc<Receiver<T, S>>>>,
}

impl<T, S> Shared<T, S> {
    fn new(name: Arc<str>, receivers: Vec<Arc<Receiver<T, S>>>) -> Arc<Self> {
        Arc::new(Shared {
            name,
            receivers: Mutex::new(receivers),
        })
    }

    /// The list; never poisoned in practice (no user code runs under the lock), and a
    /// poisoned list is still a valid list.
    fn lock(&self) -> MutexGuard<'_, Vec<Arc<Receiver<T, S>>>> {
        self.receivers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the list of live receivers under the lock, after taking off it the weak
    /// receivers whose owner is gone; those are dropped after the lock is released
    /// (dropping runs their captures' `Drop`, which may use the signal).
    fn with_live<R>(&self, f: impl FnOnce(&mut Vec<Arc<Receiver<T, S>>>) -> R) -> R {
        let mut list = self.lock();
        let dead: Vec<Arc<Receiver<T, S>>> = if list.iter().all(|r| r.is_alive()) {
            Vec::new()
        } else {
            let (live, dead) = std::mem::take(&mut *list)
                .into_iter()
                .partition(|r| r.is_alive());
            *list = live;
            dead
        };
        let out = f(&mut list);
        drop(list);
        drop(dead);
        out
    }
}

/// A signal (Mode's `Signal`/`SyncSignal`): receivers connected to it are called, in the order
/// connected, each time a value of type `T` is sent, together with the sender (of type `S`,
/// `()` when senders do not matter).
///
/// The signal is `Send + Sync`; sends from many tasks may run at once. A send first takes a
/// snapshot of the receiver list and then calls the receivers without holding any lock, so a
/// receiver may itself connect, disconnect or send. A receiver connected during a send is not
/// called by that send; one disconnected during a send may still be called by it. (A receiver
/// that captures its own signal, or one sharing its receivers, keeps the list alive until it
/// is disconnected.)
///
/// # Cloning
///
/// A [`Clone`] shares nothing with the original: it gets its own receiver list, starting as a
/// copy of the original's list at the time of the clone (the same receivers, with the same
/// ids). Connecting to or disconnecting from one does not change the other. To share the
/// receivers and change only the default sender, use [`Signal::with_default_sender`].
///
/// See the [module docs](self) for an example.
pub struct Signal<T, S = ()> {
    shared: Arc<Shared<T, S>>,
    default_sender: Option<S>,
}

impl<T, S> Signal<T, S>
where
    T: Clone + Send + Sync + 'static,
    S: Clone + PartialEq + Send + Sync + 'static,
{
    /// A signal with no receivers, named `"signal"` in logs.
    pub fn new() -> Self {
        Self::named("signal")
    }

    /// A signal with no receivers and a name (used in the warnings about failing receivers).
    pub fn named(name: impl Into<Arc<str>>) -> Self {
        Signal {
            shared: Shared::new(name.into(), Vec::new()),
            default_sender: None,
        }
    }

    /// The signal's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The default sender set by [`Signal::with_default_sender`], if any.
    pub fn default_sender(&self) -> Option<&S> {
        self.default_sender.as_ref()
    }

    /// A signal that shares this one's receivers (connecting or disconnecting through either
    /// changes both) and whose [`Signal::send_default`] sends as `sender`.
    pub fn with_default_sender(&self, sender: S) -> Self {
        Signal {
            shared: self.shared.clone(),
            default_sender: Some(sender),
        }
    }

    /// Connects a synchronous receiver, called for every sender. It returns `()` or
    /// `Result<(), E>` ([`ReceiverOutput`]).
    pub fn connect<F, R>(&self, receiver: F) -> ReceiverId
    where
        F: Fn(&S, &T) -> R + Send + Sync + 'static,
        R: ReceiverOutput,
    {
        self.add(None, None, Self::sync_call(receiver))
    }

    /// Connects a synchronous receiver called only for sends from `sender`.
    pub fn connect_from<F, R>(&self, sender: S, receiver: F) -> ReceiverId
    where
        F: Fn(&S, &T) -> R + Send + Sync + 'static,
        R: ReceiverOutput,
    {
        self.add(Some(sender), None, Self::sync_call(receiver))
    }

    /// Connects an async receiver, called for every sender. It gets its own clones of the
    /// sender and the value, and the send awaits the future it returns before calling the next
    /// receiver.
    pub fn connect_async<F, Fut, R>(&self, receiver: F) -> ReceiverId
    where
        F: Fn(S, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: ReceiverOutput,
    {
        self.add(None, None, Self::async_call(receiver))
    }

    /// Connects an async receiver called only for sends from `sender`.
    pub fn connect_async_from<F, Fut, R>(&self, sender: S, receiver: F) -> ReceiverId
    where
        F: Fn(S, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: ReceiverOutput,
    {
        self.add(Some(sender), None, Self::async_call(receiver))
    }

    /// Connects a synchronous receiver weakly bound to `owner` (Mode's
    /// `connect(weak=True)`): the signal keeps only a [`Weak`] of the owner, the receiver is
    /// called with `&owner`, and once the owner is dropped it is no longer called and is
    /// removed from the list (at the next send or look at the list). Called for every
    /// sender.
    ///
    /// The receiver must not capture an `Arc` of its owner itself, or the owner never dies.
    ///
    /// ```
    /// use modo::signal::Signal;
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    ///
    /// struct Cache { invalidations: AtomicU32 }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let on_write: Signal<&'static str> = Signal::named("on_write");
    /// let cache = Arc::new(Cache { invalidations: AtomicU32::new(0) });
    /// let id = on_write.connect_weak(&cache, |cache: &Cache, _: &(), _key: &&str| {
    ///     cache.invalidations.fetch_add(1, Ordering::SeqCst);
    /// });
    /// on_write.send((), "user:1").await;
    /// assert_eq!(cache.invalidations.load(Ordering::SeqCst), 1);
    ///
    /// drop(cache); // the signal did not keep it alive
    /// assert!(!on_write.is_connected(id));
    /// assert_eq!(on_write.send((), "user:2").await.called(), 0);
    /// # }
    /// ```
    pub fn connect_weak<O, F, R>(&self, owner: &Arc<O>, receiver: F) -> ReceiverId
    where
        O: Send + Sync + 'static,
        F: Fn(&O, &S, &T) -> R + Send + Sync + 'static,
        R: ReceiverOutput,
    {
        let (owner, call) = Self::weak_sync_call(owner, receiver);
        self.add(None, owner, call)
    }

    /// [`connect_weak`](Self::connect_weak) for sends from `sender` only.
    pub fn connect_weak_from<O, F, R>(&self, sender: S, owner: &Arc<O>, receiver: F) -> ReceiverId
    where
        O: Send + Sync + 'static,
        F: Fn(&O, &S, &T) -> R + Send + Sync + 'static,
        R: ReceiverOutput,
    {
        let (owner, call) = Self::weak_sync_call(owner, receiver);
        self.add(Some(sender), owner, call)
    }

    /// Connects an async receiver weakly bound to `owner` (see
    /// [`connect_weak`](Self::connect_weak)). It gets an `Arc` of the owner for the length
    /// of its call (the owner lives until the call ends), and the sender and value.
    pub fn connect_weak_async<O, F, Fut, R>(&self, owner: &Arc<O>, receiver: F) -> ReceiverId
    where
        O: Send + Sync + 'static,
        F: Fn(Arc<O>, S, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: ReceiverOutput,
    {
        let weak = Arc::downgrade(owner);
        let erased: Owner = weak.clone();
        let call = Call::Async(Box::new(move |s: S, t: T| match weak.upgrade() {
            Some(owner) => {
                let fut = receiver(owner, s, t);
                async move { fut.await.into_result() }.boxed()
            }
            // Not reached: `send` holds the owner during the call.
            None => async { Ok(()) }.boxed(),
        }));
        self.add(None, Some(erased), call)
    }

    /// Removes a receiver. Returns whether it was connected to this signal (through this
    /// signal or one sharing its receivers).
    ///
    /// The receiver is dropped with everything it captured as soon as no send still running
    /// holds it (a send in progress finishes with the snapshot it took).
    pub fn disconnect(&self, id: ReceiverId) -> bool {
        let removed = {
            let mut list = self.shared.lock();
            list.iter()
                .position(|r| r.id == id)
                .map(|at| list.remove(at))
        };
        // Dropped here, outside the lock: the closure's captures may run any code in `Drop`.
        removed.is_some()
    }

    /// Removes every receiver; returns how many there were.
    pub fn disconnect_all(&self) -> usize {
        let removed = std::mem::take(&mut *self.shared.lock());
        removed.len()
    }

    /// Whether the receiver is connected (a weak one only while its owner lives).
    pub fn is_connected(&self, id: ReceiverId) -> bool {
        self.shared
            .with_live(|list| list.iter().any(|r| r.id == id))
    }

    /// How many receivers are connected (filtered ones included; weak ones whose owner is
    /// gone are removed first).
    pub fn len(&self) -> usize {
        self.shared.with_live(|list| list.len())
    }

    /// Whether no receiver is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends `value` from `sender`: calls, in the order connected, every receiver that listens
    /// to all senders or to this one, awaiting the async ones.
    ///
    /// A receiver that returns `Err` or panics is logged as a warning and reported in the
    /// returned [`SendReport`]; the receivers after it still run.
    pub async fn send(&self, sender: S, value: T) -> SendReport {
        let snapshot: Vec<Arc<Receiver<T, S>>> = self.shared.with_live(|list| list.clone());
        let mut report = SendReport::default();
        let mut gone = false;
        for receiver in snapshot {
            if receiver
                .only_from
                .as_ref()
                .is_some_and(|only| *only != sender)
            {
                continue;
            }
            // A weak receiver's owner is kept alive for the length of its call.
            let _owner = match &receiver.owner {
                None => None,
                Some(owner) => match owner.upgrade() {
                    Some(owner) => Some(owner),
                    None => {
                        gone = true;
                        continue;
                    }
                },
            };
            report.called += 1;
            let outcome = match &receiver.call {
                Call::Sync(f) => std::panic::catch_unwind(AssertUnwindSafe(|| f(&sender, &value))),
                Call::Async(f) => {
                    let (s, v) = (sender.clone(), value.clone());
                    // Calling `f` is inside the async block, so a panic while building the
                    // future is caught too.
                    AssertUnwindSafe(async move { f(s, v).await })
                        .catch_unwind()
                        .await
                }
            };
            let reason = match outcome {
                Ok(Ok(())) => continue,
                Ok(Err(error)) => CrashReason::error(error),
                Err(payload) => {
                    CrashReason::from_panic(payload, format!("{} of {}", receiver.id, self.name()))
                }
            };
            tracing::warn!(
                target: "modo",
                "signal {}: {} failed: {reason}",
                self.name(),
                receiver.id
            );
            report.failures.push(ReceiverFailure {
                receiver: receiver.id,
                reason,
            });
        }
        if gone {
            // Owners dropped during the send: take their receivers off the list now.
            self.shared.with_live(|_| ());
        }
        report
    }

    /// Sends `value` from the default sender ([`Signal::with_default_sender`]), or from
    /// `S::default()` when there is none (with `S = ()`, simply sends `value`).
    pub async fn send_default(&self, value: T) -> SendReport
    where
        S: Default,
    {
        let sender = self.default_sender.clone().unwrap_or_default();
        self.send(sender, value).await
    }

    fn add(&self, only_from: Option<S>, owner: Option<Owner>, call: Call<T, S>) -> ReceiverId {
        let id = ReceiverId::next();
        let receiver = Arc::new(Receiver {
            id,
            only_from,
            owner,
            call,
        });
        self.shared.with_live(|list| list.push(receiver));
        id
    }

    fn weak_sync_call<O, F, R>(owner: &Arc<O>, receiver: F) -> (Option<Owner>, Call<T, S>)
    where
        O: Send + Sync + 'static,
        F: Fn(&O, &S, &T) -> R + Send + Sync + 'static,
        R: ReceiverOutput,
    {
        let weak = Arc::downgrade(owner);
        let erased: Owner = weak.clone();
        let call = Self::sync_call(move |s: &S, t: &T| match weak.upgrade() {
            Some(owner) => receiver(&owner, s, t).into_result(),
            // Not reached: `send` holds the owner during the call.
            None => Ok(()),
        });
        (Some(erased), call)
    }

    fn sync_call<F, R>(receiver: F) -> Call<T, S>
    where
        F: Fn(&S, &T) -> R + Send + Sync + 'static,
        R: ReceiverOutput,
    {
        Call::Sync(Box::new(move |s: &S, t: &T| receiver(s, t).into_result()))
    }

    fn async_call<F, Fut, R>(receiver: F) -> Call<T, S>
    where
        F: Fn(S, T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: ReceiverOutput,
    {
        Call::Async(Box::new(move |s: S, t: T| {
            let fut = receiver(s, t);
            async move { fut.await.into_result() }.boxed()
        }))
    }
}

impl<T, S> Default for Signal<T, S>
where
    T: Clone + Send + Sync + 'static,
    S: Clone + PartialEq + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

/// Shares nothing: the clone has its own receiver list, a copy of this one's at the time of
/// the clone (see [`Signal`], "Cloning").
impl<T, S: Clone> Clone for Signal<T, S> {
    fn clone(&self) -> Self {
        let receivers = self.shared.with_live(|list| list.clone());
        Signal {
            shared: Shared::new(self.shared.name.clone(), receivers),
            default_sender: self.default_sender.clone(),
        }
    }
}

impl<T, S> fmt::Debug for Signal<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal")
            .field("name", &self.shared.name)
            .field("receivers", &self.shared.lock().len())
            .field("has_default_sender", &self.default_sender.is_some())
            .finish()
    }
}
