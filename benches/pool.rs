//! A pool of 4 replicas against one actor, in the same run: what routing costs per send, and
//! how the sends spread over the replicas.
//!
//! Two workloads, each on two tokio runtimes, `mt2` (multi-thread, 2 workers) and `ct`
//! (current-thread); every measured future runs as a task on the runtime and times itself.
//!
//! - `tell`: one producer sends 100,000 unit messages, then asks for the count; the iteration
//!   ends when the count comes back, so every message has been handled. `single`:
//!   `Addr::tell` to one counting actor, then `Addr::ask`. `pool_rr`, `pool_ll`,
//!   `pool_keyed`: `Pool::tell` through a pool of 4 counting replicas routed round-robin or
//!   least-loaded, or `Pool::tell_keyed` with the message's number as its key, then
//!   `Pool::ask_all` for the 4 counts, which must add up.
//! - `ask`: sequential round trips, one at a time. `single`: `Addr::ask`; `pool_rr`,
//!   `pool_ll`: `Pool::ask`.
//!
//! Every mailbox has modo's default capacity. On `mt2` the 4 replicas can run on both workers
//! while one actor cannot, so a pool's tell may beat one actor's there; on `ct` the ratio is
//! the routing's cost alone.
//!
//! Criterion groups are named `<workload>/<flavour>`, the functions side by side. After them,
//! a short section alternates `single` and each pool variant (7 repetitions of each, after
//! one discarded pair), prints a table of medians and the ratio pool / single, and then the
//! spread: how one `tell` iteration's messages fell on the 4 replicas, per routing.
//!
//! Run it with `cargo bench --bench pool` (add `-- --quick` for short criterion groups);
//! `cargo test --bench pool` runs everything once on tiny sizes, as a check that it works.

#![forbid(unsafe_code)]

// The workload machinery of `benches/core.rs`; the spawn+stop pair in it is not used here.
#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use common::{
    Flavour, Mode, Workload, measure, median, mode, new_criterion, nproc, print_grid, range,
    run_on, start_on_each, test_mode_note,
};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use modo::pool::{Pool, Routing};
use modo::{Addr, Context, Handler, Service, System};
use tokio::runtime::Runtime;

/// Replicas per pool.
const REPLICAS: usize = 4;

// ----- how much work ------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Messages per `tell` iteration.
    tell_n: u64,
    /// Iterations of each workload in one repetition of the ratio section.
    tell_iters: u64,
    ask_iters: u64,
    /// Measured repetitions of each pair (after one discarded pair).
    reps: usize,
    warm_up: bool,
}

impl Sizes {
    const BENCH: Sizes = Sizes {
        tell_n: 100_000,
        tell_iters: 10,
        ask_iters: 100_000,
        reps: 7,
        warm_up: true,
    };

    const TEST: Sizes = Sizes {
        tell_n: 1_000,
        tell_iters: 1,
        ask_iters: 1_000,
        reps: 1,
        warm_up: false,
    };
}

// ----- the service ---------------------------------------------------------------------------

/// Counts `Tick`s; `Take` returns the count and resets it; `Echo` answers `n + 1`.
#[derive(Debug, Default)]
struct Counter {
    n: u64,
}

impl Service for Counter {}

struct Tick;
#[derive(Clone)]
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

// ----- the workloads -------------------------------------------------------------------------

#[derive(Clone)]
struct SingleTell {
    addr: Addr<Counter>,
    n: u64,
}

impl Workload for SingleTell {
    async fn run(&self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            for _ in 0..self.n {
                self.addr.tell(Tick).await.expect("counter is running");
            }
            assert_eq!(self.addr.ask(Take).await.expect("running"), self.n);
        }
        start.elapsed()
    }
}

#[derive(Clone)]
struct PoolTell {
    pool: Pool<Counter>,
    n: u64,
    keyed: bool,
}

impl PoolTell {
    /// One iteration: the sends, then every replica's count (which add up to `n`).
    async fn once(&self) -> Vec<u64> {
        for i in 0..self.n {
            let sent = if self.keyed {
                self.pool.tell_keyed(&i, Tick).await
            } else {
                self.pool.tell(Tick).await
            };
            sent.expect("pool is running");
        }
        let counts: Vec<u64> = self
            .pool
            .ask_all(Take)
            .await
            .into_iter()
            .map(|c| c.expect("replica is running"))
            .collect();
        assert_eq!(counts.iter().sum::<u64>(), self.n);
        counts
    }
}

impl Workload for PoolTell {
    async fn run(&self, iters: u64) -> Duration {
        let start = Instant::now();
        for _ in 0..iters {
            self.once().await;
        }
        start.elapsed()
    }
}

#[derive(Clone)]
struct SingleAsk {
    addr: Addr<Counter>,
}

impl Workload for SingleAsk {
    async fn run(&self, iters: u64) -> Duration {
        let start = Instant::now();
        for i in 0..iters {
            assert_eq!(self.addr.ask(Echo(i)).await.expect("running"), i + 1);
        }
        start.elapsed()
    }
}

#[derive(Clone)]
struct PoolAsk {
    pool: Pool<Counter>,
}

impl Workload for PoolAsk {
    async fn run(&self, iters: u64) -> Duration {
        let start = Instant::now();
        for i in 0..iters {
            assert_eq!(self.pool.ask(Echo(i)).await.expect("running"), i + 1);
        }
        start.elapsed()
    }
}

// ----- one flavour's fixtures ----------------------------------------------------------------

struct Fixtures {
    system: System,
    single_tell: SingleTell,
    rr_tell: PoolTell,
    ll_tell: PoolTell,
    keyed_tell: PoolTell,
    single_ask: SingleAsk,
    rr_ask: PoolAsk,
    ll_ask: PoolAsk,
}

impl Fixtures {
    fn start(rt: &Runtime, sizes: Sizes) -> Self {
        let (system, single, rr, ll) = run_on(rt, async move {
            let system = System::new();
            let single = system.spawn(Counter::default()).await.expect("spawn");
            let rr = Pool::builder(REPLICAS, |_| Counter::default())
                .spawn(&system)
                .await
                .expect("pool");
            let ll = Pool::builder(REPLICAS, |_| Counter::default())
                .routing(Routing::LeastLoaded)
                .spawn(&system)
                .await
                .expect("pool");
            (system, single, rr, ll)
        });
        let n = sizes.tell_n;
        Fixtures {
            system,
            single_tell: SingleTell {
                addr: single.clone(),
                n,
            },
            rr_tell: PoolTell {
                pool: rr.clone(),
                n,
                keyed: false,
            },
            ll_tell: PoolTell {
                pool: ll.clone(),
                n,
                keyed: false,
            },
            keyed_tell: PoolTell {
                pool: rr.clone(),
                n,
                keyed: true,
            },
            single_ask: SingleAsk { addr: single },
            rr_ask: PoolAsk { pool: rr },
            ll_ask: PoolAsk { pool: ll },
        }
    }

    fn shutdown(self, rt: &Runtime) {
        let system = self.system;
        run_on(rt, async move { system.shutdown().await }).expect("shutdown");
    }
}

// ----- criterion -----------------------------------------------------------------------------

fn bench<W: Workload>(group: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, name: &str, w: &W) {
    group.bench_function(name, |b| b.iter_custom(|iters| measure(rt, w, iters)));
}

fn criterion_groups(c: &mut Criterion, flavours: &[(Flavour, Fixtures)], sizes: Sizes) {
    for (flavour, fx) in flavours {
        let rt = &flavour.rt;
        let mut group = c.benchmark_group(format!("tell/{}", flavour.name));
        group.throughput(Throughput::Elements(sizes.tell_n));
        bench(&mut group, rt, "single", &fx.single_tell);
        bench(&mut group, rt, "pool_rr", &fx.rr_tell);
        bench(&mut group, rt, "pool_ll", &fx.ll_tell);
        bench(&mut group, rt, "pool_keyed", &fx.keyed_tell);
        group.finish();
    }
    for (flavour, fx) in flavours {
        let rt = &flavour.rt;
        let mut group = c.benchmark_group(format!("ask/{}", flavour.name));
        bench(&mut group, rt, "single", &fx.single_ask);
        bench(&mut group, rt, "pool_rr", &fx.rr_ask);
        bench(&mut group, rt, "pool_ll", &fx.ll_ask);
        group.finish();
    }
}

// ----- the ratio table -----------------------------------------------------------------------

struct Row {
    workload: &'static str,
    flavour: &'static str,
    variant: &'static str,
    single_ns: f64,
    pool_ns: f64,
    /// The lowest and highest pool / single ratio of one repetition pair.
    pair_range: (f64, f64),
}

/// Alternates `single` and `pool` repetitions of `iters` iterations (`units` units of work
/// each); the median nanoseconds per unit of each, and the spread of the pairwise ratios.
fn ratio_pair<S: Workload, P: Workload>(
    rt: &Runtime,
    single: &S,
    pool: &P,
    iters: u64,
    units: f64,
    sizes: Sizes,
) -> (f64, f64, (f64, f64)) {
    if sizes.warm_up {
        measure(rt, single, iters);
        measure(rt, pool, iters);
    }
    let per_unit = |d: Duration| d.as_secs_f64() * 1e9 / units;
    let mut s = Vec::with_capacity(sizes.reps);
    let mut p = Vec::with_capacity(sizes.reps);
    for _ in 0..sizes.reps {
        s.push(per_unit(measure(rt, single, iters)));
        p.push(per_unit(measure(rt, pool, iters)));
    }
    let ratios: Vec<f64> = s.iter().zip(&p).map(|(s, p)| p / s).collect();
    (median(&mut s), median(&mut p), range(&ratios))
}

fn ratio_rows(flavours: &[(Flavour, Fixtures)], sizes: Sizes) -> Vec<Row> {
    let mut rows = Vec::new();
    for (flavour, fx) in flavours {
        let rt = &flavour.rt;
        let msgs = (sizes.tell_iters * sizes.tell_n) as f64;
        let tells: [(&'static str, &PoolTell); 3] = [
            ("pool_rr", &fx.rr_tell),
            ("pool_ll", &fx.ll_tell),
            ("pool_keyed", &fx.keyed_tell),
        ];
        for (variant, pool) in tells {
            let (single_ns, pool_ns, pair_range) =
                ratio_pair(rt, &fx.single_tell, pool, sizes.tell_iters, msgs, sizes);
            rows.push(Row {
                workload: "tell",
                flavour: flavour.name,
                variant,
                single_ns,
                pool_ns,
                pair_range,
            });
        }
        let asks: [(&'static str, &PoolAsk); 2] =
            [("pool_rr", &fx.rr_ask), ("pool_ll", &fx.ll_ask)];
        for (variant, pool) in asks {
            let (single_ns, pool_ns, pair_range) = ratio_pair(
                rt,
                &fx.single_ask,
                pool,
                sizes.ask_iters,
                sizes.ask_iters as f64,
                sizes,
            );
            rows.push(Row {
                workload: "ask",
                flavour: flavour.name,
                variant,
                single_ns,
                pool_ns,
                pair_range,
            });
        }
    }
    rows
}

fn figure(workload: &str, ns: f64) -> String {
    match workload {
        "tell" => format!("{ns:.1} ns/msg ({:.2} M/s)", 1e3 / ns),
        _ => format!("{ns:.0} ns/ask"),
    }
}

/// Throughput for tell, time for ask, as `benches/core.rs` quotes them.
fn ratio_text(row: &Row) -> String {
    let time = row.pool_ns / row.single_ns;
    let (lo, hi) = row.pair_range;
    match row.workload {
        "tell" => format!("thrpt {:.2}x ({:.2}-{:.2})", 1.0 / time, 1.0 / hi, 1.0 / lo),
        _ => format!("time {time:.2}x ({lo:.2}-{hi:.2})"),
    }
}

fn print_table(rows: &[Row], sizes: Sizes, mode: Mode) {
    println!();
    println!(
        "pool of {REPLICAS} / one actor, same run: median of {} alternating repetitions \
         (single, then pool), nproc {}{}",
        sizes.reps,
        nproc(),
        test_mode_note(mode)
    );
    println!("ratio = pool / single; in brackets the lowest and highest ratio of one pair");
    let header = [
        "workload",
        "flavour",
        "pool",
        "single",
        "through the pool",
        "ratio",
    ];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.workload.to_string(),
                r.flavour.to_string(),
                r.variant.to_string(),
                figure(r.workload, r.single_ns),
                figure(r.workload, r.pool_ns),
                ratio_text(r),
            ]
        })
        .collect();
    print_grid(header, &cells);
}

/// How one `tell` iteration's messages fell on the replicas, per routing and flavour.
fn print_spread(flavours: &[(Flavour, Fixtures)], sizes: Sizes) {
    println!(
        "spread of one tell iteration ({} messages) over the {REPLICAS} replicas",
        sizes.tell_n
    );
    let header = ["flavour", "pool", "per replica", "min / max share"];
    let mut cells = Vec::new();
    for (flavour, fx) in flavours {
        for (variant, pool) in [
            ("pool_rr", &fx.rr_tell),
            ("pool_ll", &fx.ll_tell),
            ("pool_keyed", &fx.keyed_tell),
        ] {
            let pool = pool.clone();
            let counts = run_on(&flavour.rt, async move { pool.once().await });
            let share = |c: u64| 100.0 * c as f64 / sizes.tell_n as f64;
            let lo = counts.iter().copied().min().unwrap_or(0);
            let hi = counts.iter().copied().max().unwrap_or(0);
            cells.push([
                flavour.name.to_string(),
                variant.to_string(),
                format!("{counts:?}"),
                format!("{:.1}% / {:.1}%", share(lo), share(hi)),
            ]);
        }
    }
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
        print_spread(&flavours, sizes);
    }

    for (flavour, fx) in flavours {
        fx.shutdown(&flavour.rt);
    }
}
