//! modo's core costs, each beside the same work on a raw flume channel in the same run.
//!
//! Three workloads, each on two tokio runtimes: `mt2` (multi-thread, 2 workers) and `ct`
//! (current-thread). Every measured future runs as a task spawned on the runtime (not on the
//! `block_on` thread, but for the one row that says so), and times itself, so runtime entry
//! and exit are not counted.
//!
//! - `tell`: one producer sends 100,000 messages to one consumer with a bounded mailbox of
//!   capacity 1024, then asks for the count; the iteration ends when the count comes back, so
//!   every message has been handled. modo: `Addr::tell` of a unit message to a counting actor,
//!   then `Addr::ask`. Floor: `flume::bounded(1024)` with `send_async`, one consumer task that
//!   counts, and a final request carrying a tokio oneshot for the count.
//! - `ask`: sequential round trips, one at a time, to one server. modo: `Addr::ask`. Floor: a
//!   `flume::bounded(1024)` request lane plus a tokio oneshot per reply, one server task.
//! - `spawn_stop`: 1,000 services spawned one after the other with `System::spawn` (which
//!   returns once each has started), then stopped one after the other with `Addr::stop`
//!   (which returns once each has run its stop sequence and closed its mailbox), then
//!   `System::shutdown`, which has no root left to stop and only waits until every actor task
//!   has ended: the join. Each handle is dropped inside the clock, right after its stop. Each
//!   iteration uses a fresh `System`, built before the clock starts and dropped after it.
//!   Floor: 1,000 `tokio::spawn`ed tasks, each with its own `flume::bounded(1024)` channel,
//!   then each sent a stop message and joined. The floor does not wait for its tasks to begin
//!   running; modo's spawn does (that start handshake is part of its contract and its cost).
//! - `spawn_stop, from main` (ratio table only): the same pair run as the future `block_on`
//!   drives instead of as a task, the way an `async fn main` under `#[tokio::main]` runs (on
//!   `mt2`, not on a worker thread). There `System::spawn` runs each start in the caller's
//!   task instead of waiting for a worker to run it.
//!
//! Criterion groups are named `<workload>/<flavour>` with the functions `flume` and `modo`
//! side by side. After them, a short section alternates flume and modo repetitions of each
//! pair (7 of each, after one discarded pair) and prints a table of medians and the ratio
//! modo / flume, the figure `PERFORMANCE.md` sets targets for (`shared/design/PERFORMANCE.md`).
//!
//! Run it with `cargo bench --bench core` (about 70 s on 2 cores); add a criterion filter
//! such as `cargo bench --bench core -- tell/ct` to run fewer criterion groups (the ratio
//! table is always printed in full). `cargo test --bench core` (and `cargo test
//! --all-targets`) runs every benchmark once on small sizes (1,000 messages, 50 services) and
//! a single-repetition table, as a check that the benchmarks work.

#![forbid(unsafe_code)]

mod common;

use std::time::{Duration, Instant};

use common::{
    CAPACITY, Flavour, FlumeSpawnStop, Mode, ModoSpawnStop, Workload, measure, median, mode,
    new_criterion, nproc, print_grid, range, run_on, start_on_each, test_mode_note,
};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use modo::{Addr, Context, Handler, Service, System};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

// ----- how much work ------------------------------------------------------------------------

/// The sizes of one run: full for `cargo bench`, tiny when run as a test.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Messages per `tell` iteration.
    tell_n: u64,
    /// Services (or tasks) per `spawn_stop` iteration.
    spawn_k: usize,
    /// Iterations of each workload in one repetition of the ratio section.
    tell_iters: u64,
    ask_iters: u64,
    spawn_iters: u64,
    /// Measured repetitions of each pair in the ratio section (after one discarded pair).
    reps: usize,
    warm_up: bool,
}

impl Sizes {
    const BENCH: Sizes = Sizes {
        tell_n: 100_000,
        spawn_k: 1_000,
        tell_iters: 10,
        ask_iters: 100_000,
        spawn_iters: 10,
        reps: 7,
        warm_up: true,
    };

    const TEST: Sizes = Sizes {
        tell_n: 1_000,
        spawn_k: 50,
        tell_iters: 1,
        ask_iters: 1_000,
        spawn_iters: 1,
        reps: 1,
        warm_up: false,
    };
}

// ----- tell ----------------------------------------------------------------------------------

/// modo: counts `Tick`s; `Take` returns the count and resets it. Also answers `Echo`.
#[derive(Debug, Default)]
struct Counter {
    n: u64,
}

impl Service for Counter {}

struct Tick;
struct Take;
struct Echo(u64);

impl Handler<Tick> for Counter {
    type Reply = ();
    async fn handle(&mut self, _: Tick, _: &mut Context<Self>) {
        self.n += 1;
    }
}

impl Handler<Take> for Counter {
    type Reply = u64;
    async fn handle(&mut self, _: Take, _: &mut Context<Self>) -> u64 {
        std::mem::take(&mut self.n)
    }
}

impl Handler<Echo> for Counter {
    type Reply = u64;
    async fn handle(&mut self, msg: Echo, _: &mut Context<Self>) -> u64 {
        msg.0 + 1
    }
}

#[derive(Clone)]
struct ModoTell {
    addr: Addr<Counter>,
    n: u64,
}

impl Workload for ModoTell {
    async fn run(&self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            for _ in 0..self.n {
                self.addr.tell(Tick).await.expect("counter is running");
            }
            let counted = self.addr.ask(Take).await.expect("counter is running");
            assert_eq!(counted, self.n);
        }
        start.elapsed()
    }
}

/// Floor: `None` is one message to count; `Some(reply)` asks for the count (and resets it).
/// An 8-byte element, half of modo's boxed envelope.
type CountMsg = Option<oneshot::Sender<u64>>;

#[derive(Clone)]
struct FlumeTell {
    tx: flume::Sender<CountMsg>,
    n: u64,
}

impl FlumeTell {
    /// Starts the consumer task; call on the runtime it should run on.
    fn start(n: u64) -> Self {
        let (tx, rx) = flume::bounded::<CountMsg>(CAPACITY);
        tokio::spawn(async move {
            let mut count = 0u64;
            while let Ok(msg) = rx.recv_async().await {
                match msg {
                    None => count += 1,
                    Some(reply) => {
                        let _ = reply.send(std::mem::take(&mut count));
                    }
                }
            }
        });
        FlumeTell { tx, n }
    }
}

impl Workload for FlumeTell {
    async fn run(&self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            for _ in 0..self.n {
                self.tx.send_async(None).await.expect("consumer is running");
            }
            let (reply, counted) = oneshot::channel();
            self.tx
                .send_async(Some(reply))
                .await
                .expect("consumer is running");
            assert_eq!(counted.await.expect("consumer replies"), self.n);
        }
        start.elapsed()
    }
}

// ----- ask -----------------------------------------------------------------------------------

#[derive(Clone)]
struct ModoAsk {
    addr: Addr<Counter>,
}

impl Workload for ModoAsk {
    async fn run(&self, iters: u64) -> Duration {
        let start = Instant::now();
        for i in 0..iters {
            let r = self.addr.ask(Echo(i)).await.expect("server is running");
            assert_eq!(r, i + 1);
        }
        start.elapsed()
    }
}

type EchoMsg = (u64, oneshot::Sender<u64>);

#[derive(Clone)]
struct FlumeAsk {
    tx: flume::Sender<EchoMsg>,
}

impl FlumeAsk {
    /// Starts the server task; call on the runtime it should run on.
    fn start() -> Self {
        let (tx, rx) = flume::bounded::<EchoMsg>(CAPACITY);
        tokio::spawn(async move {
            while let Ok((x, reply)) = rx.recv_async().await {
                let _ = reply.send(x + 1);
            }
        });
        FlumeAsk { tx }
    }
}

impl Workload for FlumeAsk {
    async fn run(&self, iters: u64) -> Duration {
        let start = Instant::now();
        for i in 0..iters {
            let (reply, answer) = oneshot::channel();
            self.tx
                .send_async((i, reply))
                .await
                .expect("server is running");
            assert_eq!(answer.await.expect("server replies"), i + 1);
        }
        start.elapsed()
    }
}

// ----- spawn + stop --------------------------------------------------------------------------

// `ModoSpawnStop` and `FlumeSpawnStop` are in `benches/common`: `benches/registry.rs` measures
// the same pair.

// ----- one flavour's fixtures ----------------------------------------------------------------

/// The long-lived servers of one runtime: floor tasks and modo actors, started once.
struct Fixtures {
    system: System,
    modo_tell: ModoTell,
    flume_tell: FlumeTell,
    modo_ask: ModoAsk,
    flume_ask: FlumeAsk,
    modo_spawn: ModoSpawnStop,
    flume_spawn: FlumeSpawnStop,
}

impl Fixtures {
    fn start(rt: &Runtime, sizes: Sizes) -> Self {
        let (system, modo_tell, modo_ask, flume_tell, flume_ask) = run_on(rt, async move {
            let system = System::new();
            let tell = system.spawn(Counter::default()).await.expect("spawn");
            let ask = system.spawn(Counter::default()).await.expect("spawn");
            let flume_tell = FlumeTell::start(sizes.tell_n);
            let flume_ask = FlumeAsk::start();
            (system, tell, ask, flume_tell, flume_ask)
        });
        Fixtures {
            system,
            modo_tell: ModoTell {
                addr: modo_tell,
                n: sizes.tell_n,
            },
            flume_tell,
            modo_ask: ModoAsk { addr: modo_ask },
            flume_ask,
            modo_spawn: ModoSpawnStop { k: sizes.spawn_k },
            flume_spawn: FlumeSpawnStop { k: sizes.spawn_k },
        }
    }

    fn shutdown(self, rt: &Runtime) {
        let system = self.system;
        run_on(rt, async move { system.shutdown().await }).expect("shutdown");
    }
}

// ----- criterion -----------------------------------------------------------------------------

fn bench_pair<F: Workload, M: Workload>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    flume: &F,
    modo: &M,
) {
    group.bench_function("flume", |b| {
        b.iter_custom(|iters| measure(rt, flume, iters))
    });
    group.bench_function("modo", |b| b.iter_custom(|iters| measure(rt, modo, iters)));
}

fn criterion_groups(c: &mut Criterion, flavours: &[(Flavour, Fixtures)], sizes: Sizes) {
    for (flavour, fx) in flavours {
        let mut group = c.benchmark_group(format!("tell/{}", flavour.name));
        group.throughput(Throughput::Elements(sizes.tell_n));
        bench_pair(&mut group, &flavour.rt, &fx.flume_tell, &fx.modo_tell);
        group.finish();
    }
    for (flavour, fx) in flavours {
        let mut group = c.benchmark_group(format!("ask/{}", flavour.name));
        bench_pair(&mut group, &flavour.rt, &fx.flume_ask, &fx.modo_ask);
        group.finish();
    }
    for (flavour, fx) in flavours {
        let mut group = c.benchmark_group(format!("spawn_stop/{}", flavour.name));
        group.throughput(Throughput::Elements(sizes.spawn_k as u64));
        bench_pair(&mut group, &flavour.rt, &fx.flume_spawn, &fx.modo_spawn);
        group.finish();
    }
}

// ----- the ratio table -----------------------------------------------------------------------

/// One row: medians over alternating repetitions, in nanoseconds per unit of work.
struct Row {
    workload: &'static str,
    flavour: &'static str,
    work: String,
    flume_ns: f64,
    modo_ns: f64,
    /// The lowest and highest modo / flume ratio of one repetition pair.
    pair_range: (f64, f64),
}

/// Where a workload runs: as a task (as every other row), or as the future `block_on` drives
/// (as an `async fn main` under `#[tokio::main]` does: on `mt2` that is not a worker thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Task,
    Main,
}

/// Alternates flume and modo repetitions of `iters` iterations (`units` units of work each),
/// run `on` a task or the `block_on` future; returns the median nanoseconds per unit of each,
/// and the spread of the pairwise ratios.
fn ratio_pair<F: Workload, M: Workload>(
    rt: &Runtime,
    flume: &F,
    modo: &M,
    iters: u64,
    units: f64,
    sizes: Sizes,
    on: Where,
) -> (f64, f64, (f64, f64)) {
    let run_f = || match on {
        Where::Task => measure(rt, flume, iters),
        Where::Main => rt.block_on(flume.run(iters)),
    };
    let run_m = || match on {
        Where::Task => measure(rt, modo, iters),
        Where::Main => rt.block_on(modo.run(iters)),
    };
    if sizes.warm_up {
        run_f();
        run_m();
    }
    let per_unit = |d: Duration| d.as_secs_f64() * 1e9 / units;
    let mut f = Vec::with_capacity(sizes.reps);
    let mut m = Vec::with_capacity(sizes.reps);
    for _ in 0..sizes.reps {
        f.push(per_unit(run_f()));
        m.push(per_unit(run_m()));
    }
    let ratios: Vec<f64> = f.iter().zip(&m).map(|(f, m)| m / f).collect();
    (median(&mut f), median(&mut m), range(&ratios))
}

fn ratio_rows(flavours: &[(Flavour, Fixtures)], sizes: Sizes) -> Vec<Row> {
    let mut rows = Vec::new();
    for (flavour, fx) in flavours {
        let rt = &flavour.rt;
        let msgs = sizes.tell_iters * sizes.tell_n;
        let (flume_ns, modo_ns, pair_range) = ratio_pair(
            rt,
            &fx.flume_tell,
            &fx.modo_tell,
            sizes.tell_iters,
            msgs as f64,
            sizes,
            Where::Task,
        );
        rows.push(Row {
            workload: "tell",
            flavour: flavour.name,
            work: format!("{msgs} msgs"),
            flume_ns,
            modo_ns,
            pair_range,
        });

        let (flume_ns, modo_ns, pair_range) = ratio_pair(
            rt,
            &fx.flume_ask,
            &fx.modo_ask,
            sizes.ask_iters,
            sizes.ask_iters as f64,
            sizes,
            Where::Task,
        );
        rows.push(Row {
            workload: "ask",
            flavour: flavour.name,
            work: format!("{} asks", sizes.ask_iters),
            flume_ns,
            modo_ns,
            pair_range,
        });

        let actors = sizes.spawn_iters * sizes.spawn_k as u64;
        // Also from the future `block_on` drives, where `System::spawn` saves most by running
        // the start in the caller's task (no cross-thread round trip on mt2).
        for (on, workload) in [
            (Where::Task, "spawn_stop"),
            (Where::Main, "spawn_stop, from main"),
        ] {
            let (flume_ns, modo_ns, pair_range) = ratio_pair(
                rt,
                &fx.flume_spawn,
                &fx.modo_spawn,
                sizes.spawn_iters,
                actors as f64,
                sizes,
                on,
            );
            rows.push(Row {
                workload,
                flavour: flavour.name,
                work: format!("{} x {}", sizes.spawn_iters, sizes.spawn_k),
                flume_ns,
                modo_ns,
                pair_range,
            });
        }
    }
    rows
}

/// `ns` per unit as the workload is usually quoted.
fn figure(workload: &str, ns: f64) -> String {
    match workload {
        "tell" => format!("{ns:.1} ns/msg ({:.1} M/s)", 1e3 / ns),
        "ask" => format!("{ns:.0} ns/ask"),
        _ => format!("{:.2} us/actor", ns / 1e3),
    }
}

/// The ratio the targets are set in: throughput for tell, time for the others.
fn ratio_text(row: &Row) -> (String, &'static str) {
    let time = row.modo_ns / row.flume_ns;
    let (lo, hi) = row.pair_range;
    match row.workload {
        "tell" => (
            format!(
                "time {time:.2}x, thrpt {:.2}x ({:.2}-{:.2})",
                1.0 / time,
                1.0 / hi,
                1.0 / lo
            ),
            "thrpt >= 0.35x / >= 0.8x",
        ),
        "ask" => (
            format!("time {time:.2}x ({lo:.2}-{hi:.2})"),
            "time <= 1.5x / <= 1.25x",
        ),
        _ => (
            format!("time {time:.2}x ({lo:.2}-{hi:.2})"),
            "time <= 2x / <= 1.2x",
        ),
    }
}

fn print_table(rows: &[Row], sizes: Sizes, mode: Mode) {
    println!();
    println!(
        "modo / raw flume, same run: median of {} alternating repetitions (flume, then modo), \
         nproc {}{}",
        sizes.reps,
        nproc(),
        test_mode_note(mode)
    );
    println!("ratio = modo / flume; in brackets the lowest and highest ratio of one pair");
    let header = [
        "workload",
        "flavour",
        "work per rep",
        "flume",
        "modo",
        "ratio",
        "target (must / stretch)",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            let (ratio, target) = ratio_text(r);
            [
                r.workload.to_string(),
                r.flavour.to_string(),
                r.work.clone(),
                figure(r.workload, r.flume_ns),
                figure(r.workload, r.modo_ns),
                ratio,
                target.to_string(),
            ]
        })
        .collect();
    print_grid(header, &cells);
}

fn main() {
    let mode = mode();
    let sizes = if mode == Mode::Bench {
        Sizes::BENCH
    } else {
        Sizes::TEST
    };
    let flavours = start_on_each(|rt| Fixtures::start(rt, sizes));

    let mut criterion = new_criterion();
    criterion_groups(&mut criterion, &flavours, sizes);
    criterion.final_summary();

    if mode != Mode::Other {
        let rows = ratio_rows(&flavours, sizes);
        print_table(&rows, sizes, mode);
    }

    for (flavour, fx) in flavours {
        fx.shutdown(&flavour.rt);
    }
}
