//! Mode's `ServiceThread`: a service whose actor runs on its own OS thread, in its own
//! current-thread runtime.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio_util::task::task_tracker::TaskTrackerToken;

use super::{Answers, answer_all};

/// Runs `fut` on a new thread named after the service. Its last answers (the stop that ended
/// it) are sent after that thread's runtime has shut down (bounded by `timeout`), so a `stop()`
/// that returned finds the thread done; the host's count of actor tasks (`token`) drops then
/// too. If the thread cannot be started, the actor runs on `fallback` instead.
pub(super) fn spawn_on_thread<F>(
    fallback: &Handle,
    label: &str,
    timeout: Duration,
    token: TaskTrackerToken,
    fut: F,
) where
    F: Future<Output = Answers> + Send + 'static,
{
    // The future is handed to the thread through a slot, so that if the thread cannot be
    // started it can still run on the host's runtime.
    let slot = Arc::new(Mutex::new(Some((fut, token))));
    let on_thread = slot.clone();
    let started = std::thread::Builder::new()
        .name(format!("modo-{label}"))
        .spawn(move || {
            let Some((fut, token)) = on_thread.lock().unwrap_or_else(|e| e.into_inner()).take()
            else {
                return;
            };
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => {
                    let answers = rt.block_on(fut);
                    rt.shutdown_timeout(timeout);
                    drop(token);
                    answer_all(answers);
                }
                Err(e) => {
                    tracing::error!(target: "modo", "no runtime for a service thread: {e}");
                    drop(fut);
                }
            }
        });
    if let Err(e) = started {
        tracing::error!(
            target: "modo",
            "{label}: could not start its own thread ({e}); running it on the System's runtime"
        );
        if let Some((fut, token)) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
            fallback.spawn(async move {
                let answers = fut.await;
                drop(token);
                answer_all(answers);
            });
        }
    }
}
