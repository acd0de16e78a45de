//! Who watches: message observation is on while someone looks at the figures, and off once
//! nobody has for a while, so that an observer nobody watches costs the messages nothing.
//!
//! # Invariants
//! - Observation is turned on at once by a watcher's arrival (a stream opened, a request that
//!   reads figures): the request that arrives is answered with observation already on.
//! - It is turned off only by [`Watchers::settle`] (the sampler calls it every interval), once
//!   no stream is open and the last watcher left at least `linger` ago; or at the observer's
//!   stop ([`Watchers::release`]), or when the watchers are dropped.
//! - The observer turns off only what it turned on: if observation was on when it wanted it
//!   on (the program set it), it leaves it alone.
//! - After [`Watchers::release`] nothing turns observation on again (a request still in
//!   flight while the observer stops cannot leave it on).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::System;

/// The watchers of one observer, and the System's observation switch they drive.
#[derive(Debug)]
pub(crate) struct Watchers {
    system: System,
    /// How long observation stays on after the last watcher left; `None`: always on.
    linger: Option<Duration>,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Streams open now.
    streams: usize,
    /// When a watcher last came or left.
    last: Instant,
    /// Whether this observer turned observation on (and so may turn it off).
    owned: bool,
    /// Released: the observer has stopped.
    closed: bool,
}

/// An open stream: a watcher for as long as it lives.
#[derive(Debug)]
pub(crate) struct StreamWatch {
    watchers: Arc<Watchers>,
}

impl Watchers {
    /// The watchers of an observer that is starting: with `linger` `None` observation is
    /// turned on now, for the observer's whole life; otherwise when someone watches.
    pub(crate) fn new(system: System, linger: Option<Duration>) -> Watchers {
        let watchers = Watchers {
            system,
            linger,
            state: Mutex::new(State {
                streams: 0,
                last: Instant::now(),
                owned: false,
                closed: false,
            }),
        };
        if linger.is_none() {
            let mut state = watchers.lock();
            watchers.turn_on(&mut state);
        }
        watchers
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing under this lock panics half-way through a change.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn turn_on(&self, state: &mut State) {
        if !state.owned && !state.closed && !self.system.is_observing() {
            self.system.set_observing(true);
            state.owned = true;
        }
    }

    fn turn_off(&self, state: &mut State) {
        if std::mem::take(&mut state.owned) {
            self.system.set_observing(false);
        }
    }

    /// Someone read the figures (the graph, a service, `/metrics`): observation is on now,
    /// and stays on at least `linger` from now.
    pub(crate) fn touch(&self) {
        let mut state = self.lock();
        state.last = Instant::now();
        self.turn_on(&mut state);
    }

    /// A stream opened: observation is on while the returned guard lives, and `linger` after.
    pub(crate) fn stream(self: &Arc<Self>) -> StreamWatch {
        let mut state = self.lock();
        state.streams += 1;
        state.last = Instant::now();
        self.turn_on(&mut state);
        StreamWatch {
            watchers: self.clone(),
        }
    }

    /// Turns observation off if nobody has watched for `linger`. Returns whether it is on
    /// (by this observer's doing or not).
    pub(crate) fn settle(&self) -> bool {
        let mut state = self.lock();
        if let Some(linger) = self.linger
            && state.streams == 0
            && state.last.elapsed() >= linger
        {
            self.turn_off(&mut state);
        }
        self.system.is_observing()
    }

    /// How many streams are open.
    #[cfg(test)]
    fn streams(&self) -> usize {
        self.lock().streams
    }

    /// The observer stops: observation is turned off if it turned it on, and stays off.
    pub(crate) fn release(&self) {
        let mut state = self.lock();
        state.closed = true;
        self.turn_off(&mut state);
    }
}

impl Drop for Watchers {
    fn drop(&mut self) {
        self.release();
    }
}

impl Drop for StreamWatch {
    fn drop(&mut self) {
        let mut state = self.watchers.lock();
        state.streams -= 1;
        state.last = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINGER: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn a_request_turns_observation_on_until_nobody_has_watched_for_the_linger() {
        let system = System::new();
        let w = Arc::new(Watchers::new(system.clone(), Some(LINGER)));
        assert!(!system.is_observing(), "nobody watches yet");
        assert!(!w.settle());
        w.touch();
        assert!(system.is_observing(), "on at once");
        tokio::time::advance(LINGER - Duration::from_millis(1)).await;
        assert!(w.settle(), "still within the linger");
        w.touch();
        tokio::time::advance(LINGER - Duration::from_millis(1)).await;
        assert!(w.settle(), "the second request restarted the linger");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!w.settle(), "off once nobody watched for the linger");
        assert!(!system.is_observing());
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_stream_keeps_observation_on_and_the_linger_counts_from_its_end() {
        let system = System::new();
        let w = Arc::new(Watchers::new(system.clone(), Some(LINGER)));
        let stream = w.stream();
        assert!(system.is_observing());
        assert_eq!(w.streams(), 1);
        tokio::time::advance(LINGER * 10).await;
        assert!(w.settle(), "on while the stream is open");
        drop(stream);
        assert_eq!(w.streams(), 0);
        tokio::time::advance(LINGER - Duration::from_millis(1)).await;
        assert!(w.settle());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!w.settle());
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_linger_observation_is_on_from_the_start_to_the_release() {
        let system = System::new();
        let w = Arc::new(Watchers::new(system.clone(), None));
        assert!(system.is_observing());
        tokio::time::advance(LINGER * 10).await;
        assert!(w.settle());
        w.release();
        assert!(!system.is_observing());
    }

    #[tokio::test(start_paused = true)]
    async fn what_the_program_turned_on_is_left_on() {
        let system = System::new();
        system.set_observing(true);
        let w = Arc::new(Watchers::new(system.clone(), Some(LINGER)));
        w.touch();
        tokio::time::advance(LINGER * 2).await;
        assert!(w.settle(), "not this observer's to turn off");
        w.release();
        assert!(system.is_observing());
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_release_nothing_turns_it_on_and_a_drop_releases() {
        let system = System::new();
        let w = Arc::new(Watchers::new(system.clone(), Some(LINGER)));
        w.release();
        w.touch();
        let stream = w.stream();
        assert!(
            !system.is_observing(),
            "a late request does not turn it on again"
        );
        drop(stream);

        let w = Arc::new(Watchers::new(system.clone(), Some(LINGER)));
        let stream = w.stream();
        assert!(system.is_observing());
        drop(w);
        assert!(system.is_observing(), "the open stream keeps the watchers");
        drop(stream);
        assert!(!system.is_observing(), "dropped watchers release");
    }
}
