//! What an idle actor costs in memory, and whether a burst of messages is given back.
//!
//! ```text
//! cargo run --release --example memory            # 100,000 actors, 1,000,000 messages
//! cargo run --release --example memory -- 10000   # fewer actors
//! ```
//!
//! Reads the resident set size from `/proc/self/statm` (Linux); elsewhere it says so and
//! exits. The figures include everything an actor brings with it: its task, its cell and
//! both mailbox lanes, its stop signal, its entry in the System's roots and its node in the
//! registry's graph.

use std::time::Instant;

use modo::prelude::*;

/// An actor with nothing to do.
struct Idle;

impl Service for Idle {}

/// A message with a payload, so the burst occupies real memory.
struct Payload(#[allow(dead_code)] [u64; 4]);

/// Counts what it received.
#[derive(Default)]
struct Sink {
    received: u64,
}

struct Count;

impl Service for Sink {
    fn mailbox_capacity(&self) -> usize {
        1_000_000
    }
}

impl Handler<Payload> for Sink {
    type Reply = ();
    async fn handle(&mut self, _: Payload, _ctx: &mut Context<Self>) {
        self.received += 1;
    }
}

impl Handler<Count> for Sink {
    type Reply = u64;
    async fn handle(&mut self, _: Count, _ctx: &mut Context<Self>) -> u64 {
        self.received
    }
}

/// Resident set size in KiB, if the platform tells.
fn rss_kib() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), modo::Error> {
    let Some(start) = rss_kib() else {
        println!("no /proc/self/statm here: this example measures on Linux only");
        return Ok(());
    };
    let arg = std::env::args().nth(1);
    let system = System::new();
    if arg.as_deref() == Some("--burst") {
        return burst(&system).await;
    }
    let n: usize = arg.and_then(|s| s.parse().ok()).unwrap_or(100_000);

    // Warm the allocator and the runtime, so the first actors do not pay for them.
    for _ in 0..1_000 {
        system.spawn(Idle).await?.stop().await?;
    }
    let before = rss_kib().unwrap_or(start);
    let t = Instant::now();
    let mut actors = Vec::with_capacity(n);
    for _ in 0..n {
        actors.push(system.spawn(Idle).await?);
    }
    let spawned = t.elapsed();
    // The registry applies its backlog when asked: its nodes count too.
    let graph = system.registry().graph().await;
    assert_eq!(graph.len(), n);
    drop(graph);
    let after = rss_kib().unwrap_or(before);
    let per_actor = (after.saturating_sub(before) * 1024) as f64 / n as f64;
    println!(
        "{n} idle actors: RSS +{} KiB, {per_actor:.0} bytes per actor (spawned in {spawned:.2?})",
        after.saturating_sub(before)
    );
    for a in &actors {
        a.stop().await?;
    }
    drop(actors);
    let _ = system.registry().graph().await;
    println!(
        "after stopping them: RSS {} KiB above where it was (the allocator keeps freed memory \
         for reuse; spawning them again does not grow it)",
        rss_kib().unwrap_or(0).saturating_sub(before)
    );
    let mut again = Vec::with_capacity(n);
    for _ in 0..n {
        again.push(system.spawn(Idle).await?);
    }
    println!(
        "{n} idle actors again: RSS {} KiB above the first baseline",
        rss_kib().unwrap_or(0).saturating_sub(before)
    );
    for a in &again {
        a.stop().await?;
    }

    system.shutdown().await?;

    // The burst runs in a fresh process: a heap that already grew would hide it.
    let Ok(exe) = std::env::current_exe() else {
        println!("could not find this program to measure the burst");
        return Ok(());
    };
    match std::process::Command::new(exe).arg("--burst").output() {
        Ok(out) => print!("{}", String::from_utf8_lossy(&out.stdout)),
        Err(e) => println!("could not run the burst measurement: {e}"),
    }
    Ok(())
}

/// A burst of 1,000,000 messages queued before the actor may run, then drained.
async fn burst(system: &System) -> Result<(), modo::Error> {
    // A burst of 1,000,000 messages queued before the actor may run, then drained.
    let sink = system.spawn(Sink::default()).await?;
    let baseline = rss_kib().unwrap_or(0);
    for _ in 0..1_000_000 {
        sink.try_tell(Payload([7; 4])).map_err(modo::Error::from)?;
    }
    let peak = rss_kib().unwrap_or(0);
    assert_eq!(sink.ask(Count).await?, 1_000_000);
    let drained = rss_kib().unwrap_or(0);
    println!(
        "burst of 1,000,000 messages: RSS +{} KiB queued, +{} KiB after the drain (freed memory \
         stays with the allocator for reuse)",
        peak.saturating_sub(baseline),
        drained.saturating_sub(baseline)
    );
    sink.stop().await?;
    system.shutdown().await
}
