//! The queue both public queues wrap: items, thrown errors, an optional bound and an
//! optional flow control event, under one mutex, with two [`Notify`]s for the waits.
//!
//! Waiting follows one pattern everywhere: register interest (`Notified::enable`) first,
//! then look at the state under the lock, then sleep. A change made after the look wakes the
//! registered waiter, so no wake-up is lost; every loop iteration sleeps, so none spins.

use std::collections::VecDeque;
use std::pin::pin;
use std::sync::{Mutex, MutexGuard};

use tokio::sync::Notify;

use super::error::{PutError, TryPutError};
use super::event::{FlowControlEvent, Managed};

pub(super) struct Core<T, E> {
    state: Mutex<State<T, E>>,
    /// 0: no bound (Mode's `maxsize=0`).
    maxsize: usize,
    flow: Option<FlowControlEvent>,
    /// An item or an error was added: one consumer (`notify_one`; tokio hands the wake-up on
    /// if that consumer's future is dropped).
    not_empty: Notify,
    /// Room was made or the queue was cleared: every waiting producer (`notify_waiters`), who
    /// look again; one that loses the race sleeps again.
    not_full: Notify,
}

struct State<T, E> {
    items: VecDeque<T>,
    errors: VecDeque<E>,
    /// How many times the queue was cleared: a producer that waited for room across a clear
    /// gets its item back.
    clears: u64,
}

impl<T, E> Core<T, E> {
    pub(super) fn new(maxsize: usize, flow: Option<FlowControlEvent>) -> Self {
        Core {
            state: Mutex::new(State {
                items: VecDeque::new(),
                errors: VecDeque::new(),
                clears: 0,
            }),
            maxsize,
            flow,
            not_empty: Notify::new(),
            not_full: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T, E>> {
        // No user code runs under the lock (items are dropped after it is released).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn suspended(&self) -> bool {
        self.flow.as_ref().is_some_and(|f| !f.is_active())
    }

    fn has_room(&self, state: &State<T, E>) -> bool {
        self.maxsize == 0 || state.items.len() < self.maxsize
    }

    pub(super) async fn put(&self, item: T) -> Result<(), PutError<T>> {
        // Set once this producer has found the queue full: a clear after that cancels it,
        // whether it then waits for room or (woken by room while suspended) for the resume.
        let mut waiting_since: Option<u64> = None;
        loop {
            let mut wake = pin!(self.not_full.notified());
            wake.as_mut().enable();
            let suspended = {
                let mut state = self.lock();
                if waiting_since.is_some_and(|clears| clears != state.clears) {
                    return Err(PutError::Cleared(item));
                }
                let suspended = self.suspended();
                if !suspended {
                    if self.has_room(&state) {
                        state.items.push_back(item);
                        drop(state);
                        self.not_empty.notify_one();
                        return Ok(());
                    }
                    waiting_since.get_or_insert(state.clears);
                }
                suspended
            };
            match (&self.flow, suspended) {
                (Some(flow), true) if waiting_since.is_some() => {
                    tokio::select! {
                        () = flow.acquire() => {}
                        () = wake => {}
                    }
                }
                (Some(flow), true) => flow.acquire().await,
                _ => wake.await,
            }
        }
    }

    pub(super) fn try_put(&self, item: T) -> Result<(), TryPutError<T>> {
        let mut state = self.lock();
        if self.suspended() {
            return Err(TryPutError::Suspended(item));
        }
        if !self.has_room(&state) {
            return Err(TryPutError::Full(item));
        }
        state.items.push_back(item);
        drop(state);
        self.not_empty.notify_one();
        Ok(())
    }

    /// The next error thrown in, else the next item; waits for either.
    pub(super) async fn get(&self) -> Result<T, E> {
        loop {
            let mut ready = pin!(self.not_empty.notified());
            ready.as_mut().enable();
            if let Some(next) = self.try_get() {
                return next;
            }
            ready.await;
        }
    }

    pub(super) fn try_get(&self) -> Option<Result<T, E>> {
        let mut state = self.lock();
        if let Some(error) = state.errors.pop_front() {
            return Some(Err(error));
        }
        let item = state.items.pop_front()?;
        drop(state);
        if self.maxsize != 0 {
            self.not_full.notify_waiters();
        }
        Some(Ok(item))
    }

    pub(super) fn throw(&self, error: E) {
        self.lock().errors.push_back(error);
        self.not_empty.notify_one();
    }

    /// Empties the queue: items and pending errors. Returns the items; producers waiting
    /// for room get theirs back.
    pub(super) fn clear(&self) -> Vec<T> {
        let (items, _errors) = {
            let mut state = self.lock();
            state.clears += 1;
            (
                std::mem::take(&mut state.items),
                std::mem::take(&mut state.errors),
            )
        };
        self.not_full.notify_waiters();
        items.into()
    }

    pub(super) fn len(&self) -> usize {
        self.lock().items.len()
    }

    pub(super) fn errors(&self) -> usize {
        self.lock().errors.len()
    }

    pub(super) fn maxsize(&self) -> Option<usize> {
        (self.maxsize != 0).then_some(self.maxsize)
    }

    pub(super) fn flow(&self) -> Option<&FlowControlEvent> {
        self.flow.as_ref()
    }
}

impl<T: Send, E: Send> Managed for Core<T, E> {
    fn clear_managed(&self) -> usize {
        self.clear().len()
    }
}
