//! Machinery shared by `benches/core.rs` and `benches/registry.rs`: reading the command line
//! the way criterion does, running a timed workload as a task on a runtime, the spawn+stop
//! workload both measure (modo and its raw flume floor), and the table they print. The
//! runtimes and the median, which `benches/supervisor.rs` uses too, are in `base.rs`.

mod base;

pub use base::{Flavour, flavours, median, nproc};

use std::future::Future;
use std::time::{Duration, Instant};

use criterion::Criterion;
use modo::{Service, System};
use tokio::runtime::Runtime;

/// Capacity of every bounded channel of the floors: modo's default mailbox capacity, so the
/// floor and modo queue alike.
pub const CAPACITY: usize = modo::DEFAULT_MAILBOX_CAPACITY;

// ----- the command line ----------------------------------------------------------------------

/// What the command line asks for, read the way criterion reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `cargo bench`: measure.
    Bench,
    /// `cargo test`: run everything once, small.
    Test,
    /// `--list` or `--profile-time`: leave it to criterion, print no table.
    Other,
}

pub fn mode() -> Mode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let has = |flag: &str| {
        args.iter()
            .any(|a| a == flag || a.starts_with(&format!("{flag}=")))
    };
    if has("--list") || has("--profile-time") {
        Mode::Other
    } else if has("--bench") && !has("--test") {
        Mode::Bench
    } else {
        Mode::Test
    }
}

/// The criterion settings of these benchmarks, then whatever the command line adds.
pub fn new_criterion() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

// ----- running a workload --------------------------------------------------------------------

/// Builds the runtimes (`flavours`) and starts one set of fixtures on each, in that order.
pub fn start_on_each<X>(start: impl Fn(&Runtime) -> X) -> Vec<(Flavour, X)> {
    flavours()
        .into_iter()
        .map(|f| {
            let fx = start(&f.rt);
            (f, fx)
        })
        .collect()
}

/// Runs `fut` as a task on `rt` (on a worker thread for `mt2`) and waits for its output.
pub fn run_on<F>(rt: &Runtime, fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    rt.block_on(rt.spawn(fut)).expect("benchmark task panicked")
}

/// One workload (one side of a comparison): `iters` iterations, timed from inside the task.
pub trait Workload: Clone + Send + Sync + 'static {
    fn run(&self, iters: u64) -> impl Future<Output = Duration> + Send;
}

pub fn measure<W: Workload>(rt: &Runtime, w: &W, iters: u64) -> Duration {
    let w = w.clone();
    run_on(rt, async move { w.run(iters).await })
}

// ----- spawn + stop --------------------------------------------------------------------------

/// A service with no hooks and no handlers: the cost of the runtime alone.
#[derive(Debug)]
pub struct Idle;

impl Service for Idle {}

/// modo: `k` services spawned one after the other, stopped one after the other, then the
/// join (`System::shutdown`), on a fresh `System` per iteration built outside the clock.
#[derive(Clone)]
pub struct ModoSpawnStop {
    pub k: usize,
}

impl Workload for ModoSpawnStop {
    async fn run(&self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let system = System::new();
            let mut addrs = Vec::with_capacity(self.k);
            let start = Instant::now();
            for _ in 0..self.k {
                addrs.push(system.spawn(Idle).await.expect("spawn"));
            }
            // Each handle is dropped after its stop, inside the clock, as the floor drops
            // its senders: the last handle frees the actor's shared cell.
            for addr in addrs {
                addr.stop().await.expect("stop");
            }
            // No roots are left: this only waits until every actor task has ended.
            system.shutdown().await.expect("shutdown");
            total += start.elapsed();
            drop(system);
        }
        total
    }
}

/// Floor: `k` tokio tasks, each serving its own bounded flume channel, each sent a stop
/// message and joined.
#[derive(Clone)]
pub struct FlumeSpawnStop {
    pub k: usize,
}

impl Workload for FlumeSpawnStop {
    async fn run(&self, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let mut tasks = Vec::with_capacity(self.k);
            let start = Instant::now();
            for _ in 0..self.k {
                // A task serving its channel until told to stop (`true`).
                let (tx, rx) = flume::bounded::<bool>(CAPACITY);
                let task = tokio::spawn(async move {
                    while let Ok(stop) = rx.recv_async().await {
                        if stop {
                            break;
                        }
                    }
                });
                tasks.push((tx, task));
            }
            for (tx, task) in tasks {
                tx.send_async(true).await.expect("task is running");
                task.await.expect("task ended cleanly");
            }
            total += start.elapsed();
        }
        total
    }
}

// ----- the ratio table -----------------------------------------------------------------------

/// The lowest and the highest of `xs`.
pub fn range(xs: &[f64]) -> (f64, f64) {
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}

/// What a table's heading adds in test mode.
pub fn test_mode_note(mode: Mode) -> &'static str {
    if mode == Mode::Test {
        "; TEST MODE, tiny sizes, not a measurement"
    } else {
        ""
    }
}

/// Prints `header` and `cells` as a Markdown table, each column as wide as its widest cell,
/// then an empty line.
pub fn print_grid<const N: usize>(header: [&str; N], cells: &[[String; N]]) {
    let mut widths = header.map(str::len);
    for row in cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &[&str]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("| {} |", parts.join(" | "));
    };
    line(&header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    println!("|-{}-|", rule.join("-|-"));
    for row in cells {
        let refs: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&refs);
    }
    println!();
}
