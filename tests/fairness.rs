//! Fairness: a busy actor yields its thread every [`BATCH`] messages, so actors sharing a
//! thread take turns however long their mailboxes are.

use std::sync::{Arc, Mutex};

use modo::prelude::*;

/// The documented bound: at most this many messages handled in a row while another task on
/// the same thread has work.
const BATCH: usize = 64;

/// Writes its tag into a shared log for every message.
struct Busy {
    tag: u8,
    log: Arc<Mutex<Vec<u8>>>,
}

impl Service for Busy {
    fn mailbox_capacity(&self) -> usize {
        20_000
    }
}

struct Tick;
struct Flush;

impl Handler<Tick> for Busy {
    type Reply = ();
    async fn handle(&mut self, _: Tick, _ctx: &mut Context<Self>) {
        self.log.lock().unwrap().push(self.tag);
    }
}

impl Handler<Flush> for Busy {
    type Reply = ();
    async fn handle(&mut self, _: Flush, _ctx: &mut Context<Self>) {}
}

/// The longest run of one tag in `log`, and where it ends.
fn longest_run(log: &[u8]) -> usize {
    log.chunk_by(|a, b| a == b)
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "current_thread")]
async fn two_busy_actors_on_one_thread_take_turns_within_the_batch() {
    const N: usize = 10_000;
    let system = System::new();
    let log = Arc::new(Mutex::new(Vec::with_capacity(2 * N)));
    let a = system
        .spawn(Busy {
            tag: b'a',
            log: log.clone(),
        })
        .await
        .unwrap();
    let b = system
        .spawn(Busy {
            tag: b'b',
            log: log.clone(),
        })
        .await
        .unwrap();
    // Fill both mailboxes before either actor runs (no await in between on this thread).
    for _ in 0..N {
        a.try_tell(Tick).unwrap();
        b.try_tell(Tick).unwrap();
    }
    a.ask(Flush).await.unwrap();
    b.ask(Flush).await.unwrap();
    let log = log.lock().unwrap().clone();
    assert_eq!(log.len(), 2 * N);
    // Until one of them runs out of work, neither handles more than BATCH in a row.
    let first_done = log.len()
        - log
            .iter()
            .rev()
            .take_while(|t| **t == log[log.len() - 1])
            .count();
    let run = longest_run(&log[..first_done]);
    assert!(
        run <= BATCH,
        "{run} messages in a row: the other actor starved"
    );
    system.shutdown().await.unwrap();
}
