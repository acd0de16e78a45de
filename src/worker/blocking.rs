//! The blocking detector: a heartbeat task on the runtime and a watchdog on its own OS thread.
//!
//! The heartbeat bumps a counter every `timeout / 4`. The watchdog thread checks the counter
//! at the same pace; when it has not moved for `timeout`, no task could run on the runtime (a
//! task is blocking the thread, or every worker thread), and the watchdog logs a warning that
//! names the timeout, once per stall. It is a thread, not a signal handler (Mode uses
//! SIGALRM).
//!
//! The warning carries what the flight recorders then in their scope had buffered (see
//! [`crate::flight`], "The blocking detector"): a blocked scope cannot reach its own
//! deadline, so the detector writes its lines for it, right after the warning, without
//! clearing them. The watchdog logs through the tracing dispatcher that was current where
//! the detector was started (the Worker's), not only the global one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running detector; [`stop`](Self::stop) (or drop) ends both halves.
#[derive(Debug)]
pub(crate) struct BlockingDetector {
    heartbeat: tokio::task::JoinHandle<()>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl BlockingDetector {
    /// Starts the heartbeat on `handle`'s runtime and the watchdog thread. `prefix` starts the
    /// warning (the Worker's `[^Worker]`).
    pub(crate) fn start(
        handle: &tokio::runtime::Handle,
        timeout: Duration,
        prefix: String,
    ) -> std::io::Result<Self> {
        let timeout = timeout.max(Duration::from_millis(4));
        let tick = timeout / 4;
        let beats = Arc::new(AtomicU64::new(0));
        let heartbeat = {
            let beats = beats.clone();
            handle.spawn(async move {
                let mut interval = tokio::time::interval(tick);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    interval.tick().await;
                    beats.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        let thread = std::thread::Builder::new()
            .name("modo-blocking-detector".into())
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    watch(&beats, &stopped, tick, timeout, &prefix)
                })
            });
        let thread = match thread {
            Ok(thread) => thread,
            Err(e) => {
                heartbeat.abort();
                return Err(e);
            }
        };
        Ok(BlockingDetector {
            heartbeat,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops the heartbeat and joins the watchdog thread.
    pub(crate) fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.heartbeat.abort();
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BlockingDetector {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The watchdog's loop: returns when the sender is dropped.
fn watch(
    beats: &AtomicU64,
    stopped: &mpsc::Receiver<()>,
    tick: Duration,
    timeout: Duration,
    prefix: &str,
) {
    let mut seen = beats.load(Ordering::Relaxed);
    let mut since = Instant::now();
    let mut warned = false;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
        let now = beats.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            since = Instant::now();
            warned = false;
        } else if !warned && since.elapsed() >= timeout {
            warned = true;
            let recorded = crate::flight::active_report();
            let more = if recorded.is_empty() {
                String::new()
            } else {
                "; the flight recorders in their scope saw:".to_owned()
            };
            tracing::warn!(
                target: "modo",
                "{prefix}: Blocking detected: the runtime made no progress for {:?} \
                 (blocking timeout {:?}): a task is blocking its thread{more}",
                since.elapsed(),
                timeout
            );
            for line in recorded {
                tracing::warn!(target: "modo", "{prefix}: {line}");
            }
        }
    }
}
