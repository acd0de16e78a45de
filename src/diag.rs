//! Service diagnostics (Mode's `Diag`): named flags a service raises while it does something
//! worth seeing from outside ("committing", "flushing"), with the time of each flag's last
//! transition. Shared by the service and every handle to it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::sync::{Mutex, MutexGuard};

use tokio::time::Instant;

/// The diagnostic flags of one service, shared by the service and its handles.
///
/// ```
/// use modo::prelude::*;
///
/// struct Consumer;
/// impl Service for Consumer {}
///
/// struct Commit;
/// impl Handler<Commit> for Consumer {
///     type Reply = ();
///     async fn handle(&mut self, _: Commit, ctx: &mut Context<Self>) {
///         // "committing" is set while the future runs, and unset after, even if it fails.
///         ctx.diag().transition_with("committing", async { /* commit offsets */ }).await;
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), modo::Error> {
/// let system = System::new();
/// let consumer = system.spawn(Consumer).await?;
/// consumer.ask(Commit).await?;
/// assert!(consumer.diag().flags().is_empty());
/// assert!(consumer.diag().last_transition("committing").is_some());
/// # system.shutdown().await }
/// ```
#[derive(Default)]
pub struct Diag {
    /// Made at the first flag: every service has a `Diag`, few raise flags.
    inner: Mutex<Option<Box<DiagState>>>,
}

#[derive(Default)]
struct DiagState {
    flags: BTreeSet<String>,
    last_transition: BTreeMap<String, Instant>,
}

impl fmt::Debug for Diag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Diag")
            .field("flags", &self.flags())
            .finish()
    }
}

impl Diag {
    fn lock(&self) -> MutexGuard<'_, Option<Box<DiagState>>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Raises `flag`.
    pub fn set_flag(&self, flag: impl Into<String>) {
        let flag = flag.into();
        let mut guard = self.lock();
        let state = guard.get_or_insert_with(Box::default);
        state.last_transition.insert(flag.clone(), Instant::now());
        state.flags.insert(flag);
    }

    /// Lowers `flag`.
    pub fn unset_flag(&self, flag: &str) {
        let mut guard = self.lock();
        let Some(state) = guard.as_deref_mut() else {
            return;
        };
        if state.flags.remove(flag) {
            state
                .last_transition
                .insert(flag.to_owned(), Instant::now());
        }
    }

    /// Whether `flag` is raised.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.lock()
            .as_deref()
            .is_some_and(|s| s.flags.contains(flag))
    }

    /// The raised flags, sorted.
    pub fn flags(&self) -> Vec<String> {
        self.lock()
            .as_deref()
            .map(|s| s.flags.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// When `flag` was last raised or lowered.
    pub fn last_transition(&self, flag: &str) -> Option<Instant> {
        self.lock().as_deref()?.last_transition.get(flag).copied()
    }

    /// Runs `fut` with `flag` raised; lowers it when `fut` finishes, fails, panics or is
    /// dropped.
    pub async fn transition_with<F: Future>(&self, flag: impl Into<String>, fut: F) -> F::Output {
        let flag = flag.into();
        self.set_flag(flag.clone());
        let _lower = Lower { diag: self, flag };
        fut.await
    }
}

/// Lowers its flag when dropped, however the future ended.
struct Lower<'a> {
    diag: &'a Diag,
    flag: String,
}

impl Drop for Lower<'_> {
    fn drop(&mut self) {
        self.diag.unset_flag(&self.flag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn flags_and_transitions() {
        let d = Diag::default();
        d.set_flag("b");
        d.set_flag("a");
        assert_eq!(d.flags(), ["a", "b"]);
        let t = d.last_transition("a").unwrap();
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        d.unset_flag("a");
        assert!(!d.has_flag("a"));
        assert!(d.last_transition("a").unwrap() > t);
    }

    #[tokio::test]
    async fn transition_with_lowers_on_failure_and_drop() {
        let d = Diag::default();
        let res: Result<(), &str> = d
            .transition_with("x", async {
                assert!(d.has_flag("x"));
                Err("failed")
            })
            .await;
        assert!(res.is_err());
        assert!(!d.has_flag("x"));
        {
            let fut = d.transition_with("y", std::future::pending::<()>());
            let mut fut = Box::pin(fut);
            assert!(futures::poll!(fut.as_mut()).is_pending());
            assert!(d.has_flag("y"));
        }
        assert!(!d.has_flag("y"));
    }
}
