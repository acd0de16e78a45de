//! Restarts per second of a crash-looping child under a `OneForOne` supervisor, beside the
//! floor (a tokio task with its own flume channel that panics on its message and is spawned
//! again, its panic caught through its `JoinHandle`) and beside spawn+stop of the same actor,
//! all in the same run, on a 2-worker (`mt2`) and a current-thread (`ct`) runtime.
//!
//! Every panic runs a silent panic hook, in the floor and in modo alike: printing is not what
//! is measured. Run with `cargo bench --bench supervisor`; `cargo test --bench supervisor`
//! runs it once on tiny sizes.

#![forbid(unsafe_code)]

/// The runtimes, `nproc` and the median, shared with the other benchmarks (the rest of
/// `benches/common` is their paired-workload machinery, which this one does not use).
#[path = "common/base.rs"]
mod base;

use std::time::{Duration, Instant};

use base::{Flavour, flavours, median, nproc};
use criterion::Criterion;
use modo::prelude::*;
use modo::supervisor::Supervisor;

/// Panics on every message.
#[derive(Default)]
struct Fragile;

struct Poison;

impl Service for Fragile {}

impl Handler<Poison> for Fragile {
    type Reply = ();
    async fn handle(&mut self, _: Poison, _ctx: &mut Context<Self>) {
        panic!("poison");
    }
}

/// `n` restarts of a supervised child that panics on each of `n` queued messages.
async fn modo_restarts(n: u32) -> Duration {
    let system = System::new();
    let sup = system
        .spawn(Supervisor::builder().max_restarts(u32::MAX).build())
        .await
        .expect("supervisor");
    let child = sup.supervise(Fragile::default).await.expect("child");
    let start = Instant::now();
    for _ in 0..n {
        child.tell(Poison).await.expect("queued");
    }
    child.wait_until(|c| c.restart_count() == n).await;
    let took = start.elapsed();
    system.shutdown().await.expect("shutdown");
    took
}

/// `n` times: a task with its own channel gets a message, panics, and is spawned again.
async fn floor_restarts(n: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        let (tx, rx) = flume::bounded::<()>(1024);
        let task = tokio::spawn(async move {
            if rx.recv_async().await.is_ok() {
                panic!("poison");
            }
        });
        tx.send_async(()).await.expect("sent");
        assert!(task.await.is_err(), "the task panicked");
    }
    start.elapsed()
}

/// `n` times: spawn the same actor and stop it.
async fn modo_spawn_stop(n: u32) -> Duration {
    let system = System::new();
    let start = Instant::now();
    for _ in 0..n {
        let a = system.spawn(Fragile).await.expect("spawned");
        a.stop().await.expect("stopped");
    }
    let took = start.elapsed();
    system.shutdown().await.expect("shutdown");
    took
}

fn main() {
    std::panic::set_hook(Box::new(|_| {}));
    let args: Vec<String> = std::env::args().collect();
    let bench = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");
    let (n, reps) = if bench { (2_000, 7) } else { (20, 1) };

    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    for Flavour { name, rt } in flavours() {
        let mut group = c.benchmark_group(format!("restart/{name}"));
        group.throughput(criterion::Throughput::Elements(u64::from(n)));
        group.bench_function("floor", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| rt.block_on(floor_restarts(n))).sum())
        });
        group.bench_function("modo", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| rt.block_on(modo_restarts(n))).sum())
        });
        group.bench_function("modo_spawn_stop", |b| {
            b.iter_custom(|iters| (0..iters).map(|_| rt.block_on(modo_spawn_stop(n))).sum())
        });
        group.finish();
    }
    c.final_summary();

    println!();
    println!(
        "restarts per second, median of {reps} alternating repetitions of {n}, nproc {}{}",
        nproc(),
        if bench {
            ""
        } else {
            "; TEST MODE, tiny sizes, not a measurement"
        }
    );
    println!(
        "| flavour | floor (task re-spawn) | modo restart | ratio | modo spawn+stop | restart / spawn+stop |"
    );
    println!("|---|---|---|---|---|---|");
    for Flavour { name, rt } in flavours() {
        let (mut f, mut m, mut s) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..reps {
            f.push(f64::from(n) / rt.block_on(floor_restarts(n)).as_secs_f64());
            m.push(f64::from(n) / rt.block_on(modo_restarts(n)).as_secs_f64());
            s.push(f64::from(n) / rt.block_on(modo_spawn_stop(n)).as_secs_f64());
        }
        let (f, m, s) = (median(&mut f), median(&mut m), median(&mut s));
        println!(
            "| {name} | {:.0} k/s | {:.0} k/s | {:.2}x | {:.0} k/s | {:.2}x |",
            f / 1e3,
            m / 1e3,
            m / f,
            s / 1e3,
            m / s
        );
    }
}
