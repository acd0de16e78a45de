//! `Context::attach_stream` / `attach_stream_then`: each item of a stream becomes a message, in
//! order; the mailbox gives backpressure (a full mailbox stops the stream from being polled);
//! the end message follows the last item when the stream ends by itself; the stream belongs
//! to one run of the service: dropped when it stops, attached again by `on_start` after a
//! restart.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{Journal, Noted};
use futures::stream::{self, StreamExt};
use modo::prelude::*;

const BOUND: Duration = Duration::from_secs(10);

async fn bounded<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(BOUND, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what} did not finish within {BOUND:?}"),
    }
}

// ---------------------------------------------------------------------------------------

/// Reads 1,000 numbers from a stream attached in `on_start`, then `Eof`, and stops.
struct Numbers {
    journal: Journal,
}

struct Eof;
/// Attaches one more (finite) stream from a handler, while running.
struct AttachMore(Vec<u32>);

impl Service for Numbers {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.attach_stream_then(stream::iter(0..1_000u32), Eof);
        Ok(())
    }
}

impl Handler<u32> for Numbers {
    type Reply = ();
    async fn handle(&mut self, n: u32, _ctx: &mut Context<Self>) {
        self.journal.push(n.to_string());
    }
}

impl Handler<Eof> for Numbers {
    type Reply = ();
    async fn handle(&mut self, _: Eof, _ctx: &mut Context<Self>) {
        self.journal.push("eof");
    }
}

impl Handler<AttachMore> for Numbers {
    type Reply = ();
    async fn handle(&mut self, AttachMore(v): AttachMore, ctx: &mut Context<Self>) {
        ctx.attach_stream(stream::iter(v));
    }
}

#[tokio::test]
async fn items_arrive_in_order_then_the_end_message() {
    let system = System::new();
    let journal = Journal::new();
    // A small mailbox: the stream waits for room again and again, and still loses nothing.
    let numbers = system
        .spawn(
            ServiceSpec::new(Numbers {
                journal: journal.clone(),
            })
            .mailbox_capacity(4),
        )
        .await
        .unwrap();
    bounded("1,000 items and the end", async {
        while journal.count("eof") == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let mut expected: Vec<String> = (0..1_000).map(|n| n.to_string()).collect();
    expected.push("eof".into());
    assert_eq!(journal.take(), expected);
    // The stream's task is gone once it ended.
    assert!(
        numbers.task_names().iter().all(|t| !t.ends_with(".stream")),
        "{:?}",
        numbers.task_names()
    );
    // A stream attached from a handler runs at once; without `_then` no end message.
    numbers.tell(AttachMore(vec![7, 8, 9])).await.unwrap();
    bounded("three more", async {
        while journal.entries().len() < 3 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(journal.take(), ["7", "8", "9"]);
    system.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------

/// Handles each tick slowly (10 ms of paused time), from an endless stream that counts how
/// far it was pulled and notes its drop.
struct Slow {
    journal: Journal,
    pulled: Arc<AtomicU64>,
    handled: Arc<AtomicU64>,
}

struct Tick(#[allow(dead_code)] u64);

impl Service for Slow {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let guard = Noted::new("stream", &self.journal);
        let pulled = self.pulled.clone();
        let ticks = stream::iter(0u64..).map(move |i| {
            let _held = &guard;
            pulled.fetch_add(1, Ordering::SeqCst);
            Tick(i)
        });
        ctx.attach_stream(ticks);
        Ok(())
    }
}

impl Handler<Tick> for Slow {
    type Reply = ();
    async fn handle(&mut self, _: Tick, _ctx: &mut Context<Self>) {
        tokio::time::sleep(Duration::from_millis(10)).await;
        self.handled.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test(start_paused = true)]
async fn a_full_mailbox_stops_the_stream_from_being_polled() {
    let system = System::new();
    let journal = Journal::new();
    let (pulled, handled) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let slow = system
        .spawn(
            ServiceSpec::new(Slow {
                journal: journal.clone(),
                pulled: pulled.clone(),
                handled: handled.clone(),
            })
            .mailbox_capacity(2),
        )
        .await
        .unwrap();
    for round in 1..=10u64 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (p, h) = (
            pulled.load(Ordering::SeqCst),
            handled.load(Ordering::SeqCst),
        );
        // Ten handled per 100 ms.
        assert!(
            (round * 10 - 1..=round * 10).contains(&h),
            "round {round}: {h} handled"
        );
        // Pulled: the handled ones, the one in the handler, two in the mailbox, and the one
        // the stream's task holds while it waits for room. Not one more.
        assert!(
            p >= h && p <= h + 4,
            "round {round}: pulled {p}, handled {h}"
        );
    }
    slow.stop().await.unwrap();
    assert_eq!(
        journal.take(),
        ["drop:stream"],
        "the stream is dropped by the stop"
    );
    let after_stop = pulled.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(pulled.load(Ordering::SeqCst), after_stop);
    system.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------

/// Attaches, in every `on_start`, a stream of three items tagged with the run, which then
/// never ends; notes the stream's drop.
struct Runs {
    journal: Journal,
}

impl Service for Runs {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let run = ctx.restart_count();
        let guard = Noted::new(format!("stream{run}"), &self.journal);
        // The guard lives as long as the whole stream (a `map` after the `chain`).
        let items = stream::iter(0..3u32)
            .map(move |i| (run, i))
            .chain(stream::pending())
            .map(move |item| {
                let _held = &guard;
                item
            });
        ctx.attach_stream_then(items, Eof);
        Ok(())
    }
}

impl Handler<(u32, u32)> for Runs {
    type Reply = ();
    async fn handle(&mut self, (run, i): (u32, u32), _ctx: &mut Context<Self>) {
        self.journal.push(format!("run{run}:{i}"));
    }
}

impl Handler<Eof> for Runs {
    type Reply = ();
    async fn handle(&mut self, _: Eof, _ctx: &mut Context<Self>) {
        self.journal.push("eof");
    }
}

#[tokio::test]
async fn the_stream_is_dropped_at_stop_and_attached_again_after_a_restart() {
    let system = System::new();
    let journal = Journal::new();
    let runs = system
        .spawn(Runs {
            journal: journal.clone(),
        })
        .await
        .unwrap();
    let wait_for = |entry: &'static str| {
        let journal = journal.clone();
        async move {
            bounded(entry, async {
                while journal.count(entry) == 0 {
                    tokio::task::yield_now().await;
                }
            })
            .await
        }
    };
    wait_for("run0:2").await;
    assert!(runs.task_names().iter().any(|t| t == "Runs.stream"));
    runs.restart().await.unwrap();
    wait_for("run1:2").await;
    runs.stop().await.unwrap();
    assert_eq!(
        journal.take(),
        [
            "run0:0",
            "run0:1",
            "run0:2",
            "drop:stream0",
            "run1:0",
            "run1:1",
            "run1:2",
            "drop:stream1",
        ],
        "no end message for a stream dropped by a stop"
    );
    system.shutdown().await.unwrap();
}

/// A stream attached by a child is dropped when its parent's stop stops the child, and when
/// the System shuts down.
#[tokio::test]
async fn streams_end_with_the_system() {
    let system = System::new();
    let journal = Journal::new();
    struct Parent {
        journal: Journal,
    }
    impl Service for Parent {
        fn dependencies(&mut self) -> Vec<Dependency> {
            vec![
                Runs {
                    journal: self.journal.clone(),
                }
                .into(),
            ]
        }
    }
    system
        .spawn(Parent {
            journal: journal.clone(),
        })
        .await
        .unwrap();
    bounded("three items", async {
        while journal.count("run0:2") == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    system.shutdown().await.unwrap();
    assert_eq!(
        journal.take(),
        ["run0:0", "run0:1", "run0:2", "drop:stream0"]
    );
    assert_eq!(system.live_actors(), 0);
}
