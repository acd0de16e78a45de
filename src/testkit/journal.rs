//! [`Journal`]: a shared, ordered record of what happened, to assert the order of hooks,
//! messages and drops against; [`DropNote`]: a guard that writes into it when dropped.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// An ordered, shared record of entries (`"A:on_start"`, `"drop:task"`, ...). Clones share
/// the same record, so every service of a test can write into one journal and the test reads
/// the order they wrote in.
///
/// Read it with [`take`](Self::take) (everything, leaving it empty) and compare with a list,
/// or check a partial order with [`check_order`](Self::check_order) /
/// [`assert_order`](Self::assert_order), count with [`count`](Self::count), and wait for an
/// entry written by another task with [`wait_for`](Self::wait_for).
///
/// ```
/// use modo::testkit::Journal;
///
/// let journal = Journal::new();
/// let writer = journal.clone();
/// writer.push("A:on_start");
/// writer.push("B:on_start");
/// writer.push("A:on_started");
/// assert_eq!(journal.count("A:on_start"), 1);
/// // A partial order: other entries may come in between.
/// journal.check_order(&["A:on_start", "A:on_started"])?;
/// assert!(journal.check_order(&["A:on_started", "B:on_start"]).is_err());
/// assert_eq!(journal.take(), ["A:on_start", "B:on_start", "A:on_started"]);
/// assert!(journal.is_empty());
/// # Ok::<(), modo::testkit::JournalError>(())
/// ```
#[derive(Clone, Default)]
pub struct Journal {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: Mutex<Vec<String>>,
    /// Woken on every push, for [`Journal::wait_for`].
    pushed: Notify,
}

/// What a [`Journal`] check found wrong. Every variant carries the journal as it was, so the
/// message of a failed test shows what happened instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The entry is not in the journal at all.
    #[error("{entry:?} is not in the journal {journal:?}")]
    Missing {
        /// The entry looked for.
        entry: String,
        /// The journal's entries.
        journal: Vec<String>,
    },
    /// The entry is in the journal, but not after the one expected before it.
    #[error("{entry:?} is not after {after:?} in the journal {journal:?}")]
    OutOfOrder {
        /// The entry looked for.
        entry: String,
        /// The entry it should have followed.
        after: String,
        /// The journal's entries.
        journal: Vec<String>,
    },
    /// [`wait_for`](Journal::wait_for) ran out of time.
    #[error("{entry:?} was not written within {within:?}; the journal: {journal:?}")]
    Timeout {
        /// The entry waited for.
        entry: String,
        /// How long it waited.
        within: Duration,
        /// The journal's entries when it gave up.
        journal: Vec<String>,
    },
}

impl Journal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<String>> {
        // A panic while holding this lock cannot leave the list half-written: take the data.
        self.inner
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends an entry, and wakes whoever [waits](Self::wait_for) for one.
    pub fn push(&self, entry: impl Into<String>) {
        self.lock().push(entry.into());
        self.inner.pushed.notify_waiters();
    }

    /// Everything written so far, in order, leaving the journal empty.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lock())
    }

    /// Everything written so far, in order (the journal keeps it).
    pub fn entries(&self) -> Vec<String> {
        self.lock().clone()
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// How many times `entry` was written.
    pub fn count(&self, entry: &str) -> usize {
        self.lock().iter().filter(|e| *e == entry).count()
    }

    /// Whether `entry` was written.
    pub fn contains(&self, entry: &str) -> bool {
        self.lock().iter().any(|e| e == entry)
    }

    /// Checks that `expected` appear in the journal in this order; other entries may come
    /// before, between and after them (a subsequence). Each entry is matched at its first
    /// place after the one matched before it.
    ///
    /// # Errors
    /// [`JournalError::Missing`] for the first entry not in the journal at all,
    /// [`JournalError::OutOfOrder`] for the first one that is only before its predecessor.
    pub fn check_order(&self, expected: &[&str]) -> Result<(), JournalError> {
        let journal = self.lock();
        let mut from = 0;
        for (i, want) in expected.iter().enumerate() {
            match journal[from..].iter().position(|e| e == want) {
                Some(at) => from += at + 1,
                None if journal.iter().any(|e| e == want) => {
                    return Err(JournalError::OutOfOrder {
                        entry: (*want).to_owned(),
                        after: expected[i - 1].to_owned(),
                        journal: journal.clone(),
                    });
                }
                None => {
                    return Err(JournalError::Missing {
                        entry: (*want).to_owned(),
                        journal: journal.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// [`check_order`](Self::check_order) as a test assertion.
    ///
    /// # Panics
    /// With the [`JournalError`]'s message (which shows the journal) if the order does not
    /// hold.
    #[track_caller]
    pub fn assert_order(&self, expected: &[&str]) {
        if let Err(e) = self.check_order(expected) {
            panic!("{e}");
        }
    }

    /// Waits until `entry` is in the journal (at once if it already is), for at most
    /// `within`. Under paused tokio time the wait costs no real time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use modo::testkit::Journal;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), modo::testkit::JournalError> {
    /// let journal = Journal::new();
    /// let writer = journal.clone();
    /// tokio::spawn(async move {
    ///     tokio::time::sleep(Duration::from_secs(2)).await;
    ///     writer.push("done");
    /// });
    /// journal.wait_for("done", Duration::from_secs(5)).await?;
    /// let err = journal.wait_for("never", Duration::from_secs(1)).await.unwrap_err();
    /// assert!(err.to_string().contains("\"never\" was not written within 1s"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`JournalError::Timeout`], with the journal as it was then.
    ///
    /// # Cancel safety
    /// Cancel safe: it only reads the journal.
    pub async fn wait_for(&self, entry: &str, within: Duration) -> Result<(), JournalError> {
        let deadline = Instant::now() + within;
        // Each turn either returns or waits for a push, and the deadline bounds the waits.
        loop {
            let pushed = self.inner.pushed.notified();
            let mut pushed = std::pin::pin!(pushed);
            // Registered before the check: a push between the check and the wait wakes it.
            pushed.as_mut().enable();
            if self.contains(entry) {
                return Ok(());
            }
            if tokio::time::timeout_at(deadline, pushed).await.is_err() {
                return Err(JournalError::Timeout {
                    entry: entry.to_owned(),
                    within,
                    journal: self.entries(),
                });
            }
        }
    }

    /// A guard that writes `drop:<name>` into this journal when it is dropped: hold one in a
    /// task, a future or a service to see when (and whether) it was dropped.
    pub fn note_drop(&self, name: impl Into<String>) -> DropNote {
        DropNote::new(name, self)
    }
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Journal").field(&*self.lock()).finish()
    }
}

/// Writes `drop:<name>` into a [`Journal`] when dropped (made with
/// [`Journal::note_drop`]).
///
/// ```
/// use modo::testkit::Journal;
///
/// let journal = Journal::new();
/// let note = journal.note_drop("task");
/// assert!(journal.is_empty());
/// drop(note);
/// assert_eq!(journal.take(), ["drop:task"]);
/// ```
pub struct DropNote {
    name: String,
    journal: Journal,
}

impl DropNote {
    /// A guard writing `drop:<name>` into `journal` when dropped.
    pub fn new(name: impl Into<String>, journal: &Journal) -> Self {
        DropNote {
            name: name.into(),
            journal: journal.clone(),
        }
    }
}

impl Drop for DropNote {
    fn drop(&mut self) {
        self.journal.push(format!("drop:{}", self.name));
    }
}

impl fmt::Debug for DropNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DropNote")
            .field("name", &self.name)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_order_matches_a_subsequence_and_names_what_is_wrong() {
        let j = Journal::new();
        for e in ["a", "b", "a", "c"] {
            j.push(e);
        }
        assert_eq!(j.check_order(&[]), Ok(()));
        assert_eq!(j.check_order(&["a", "a", "c"]), Ok(()));
        assert_eq!(j.check_order(&["b", "a"]), Ok(()));
        assert_eq!(
            j.check_order(&["c", "b"]),
            Err(JournalError::OutOfOrder {
                entry: "b".into(),
                after: "c".into(),
                journal: j.entries(),
            })
        );
        assert_eq!(
            j.check_order(&["a", "a", "a"]),
            Err(JournalError::OutOfOrder {
                entry: "a".into(),
                after: "a".into(),
                journal: j.entries(),
            })
        );
        assert_eq!(
            j.check_order(&["a", "z"]),
            Err(JournalError::Missing {
                entry: "z".into(),
                journal: j.entries(),
            })
        );
    }
}
