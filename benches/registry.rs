//! The registry's share of spawn+stop: what it costs that every service reports to the
//! System's registry actor, in the style of `benches/core.rs` (each figure beside a raw flume
//! floor measured in the same run, then a table of medians and ratios).
//!
//! The registry cannot be switched off from outside (every `System` has one), so its share is
//! estimated from three workloads, each on two tokio runtimes, `mt2` (multi-thread, 2 workers)
//! and `ct` (current-thread), each measured future running as a task on the runtime and timing
//! itself:
//!
//! - (a) `modo`: 1,000 services spawned one after the other with `System::spawn`, stopped one
//!   after the other with `Addr::stop`, then `System::shutdown` (the join), with the registry
//!   on: the same workload as `spawn_stop` in `benches/core.rs`. A fresh `System` per
//!   iteration, built before the clock starts and dropped after it.
//! - (b) `flume`: the floor: 1,000 `tokio::spawn`ed tasks, each serving its own
//!   `flume::bounded(1024)` channel, each sent a stop message and joined.
//! - (c) `registry_work`: the registry's work for those 1,000 services without the services: the
//!   same number of events, sent the way services send them (`try_tell` to an actor with an
//!   unbounded mailbox, no waiting), handled by a modo actor doing what the registry does with
//!   each (a `HashMap` insert of a node built from two label strings and its parent link, an
//!   update, a removal), then one `ask` that returns once all are handled. A spawn and stop
//!   reports 6 events (see `src/runner.rs` and `src/cell.rs`): `Spawned` when created, `State`
//!   for starting, running, stopping and shutdown, and `Removed` when it ends. As in (a), the
//!   1,000 services' first three events are sent first, then their last three.
//!
//! (c) / (a) estimates the registry's share of spawn+stop: the time its events would take if
//! they ran one after the other with everything else. On `ct` that is what happens; on `mt2`
//! the registry's task runs on the other worker, beside the services, so its real share of the
//! wall time is smaller. The registry must not halve spawn throughput: the share must stay
//! below 50%.
//!
//! Since 2026-11-26 the registry sends and applies no events: every service is written in
//! place in the System's directory (`src/registry/directory.rs`), one insert at its spawn and
//! one removal at its end, and (a) includes that. Workload (c) still models the old event path
//! (with the `State` events the kernel had already stopped sending), so (c) / (a) now reads
//! as what that path would cost beside today's spawn+stop, not as the directory's share.
//! `benches/peers` shows what replacing it did (BENCHMARKS.md, 2026-11-26 late).
//!
//! Run it with `cargo bench --bench registry` (about 40 s on 2 cores). `cargo test --bench
//! registry` (and `cargo test --all-targets`) runs everything once on 50 services with a
//! single-repetition table, as a check that the benchmark works.

#![forbid(unsafe_code)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    Flavour, FlumeSpawnStop, Mode, ModoSpawnStop, Workload, measure, median, mode, new_criterion,
    nproc, print_grid, range, run_on, start_on_each, test_mode_note,
};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput};
use modo::{Addr, Context, Handler, Service, System};
use tokio::runtime::Runtime;
use uuid::Uuid;

/// Events one service reports to the registry in a spawn and a stop: `Spawned`, `State`
/// (starting, running, stopping, shutdown), `Removed`.
const EVENTS_PER_SERVICE: u64 = 6;

// ----- how much work ------------------------------------------------------------------------

/// The sizes of one run: full for `cargo bench`, tiny when run as a test.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Services (or tasks) per iteration.
    k: usize,
    /// Iterations of each workload in one repetition of the ratio section.
    iters: u64,
    /// Measured repetitions in the ratio section (after one discarded round).
    reps: usize,
    warm_up: bool,
}

impl Sizes {
    const BENCH: Sizes = Sizes {
        k: 1_000,
        iters: 10,
        reps: 7,
        warm_up: true,
    };

    const TEST: Sizes = Sizes {
        k: 50,
        iters: 1,
        reps: 1,
        warm_up: false,
    };
}

// ----- (a) spawn + stop with the registry, (b) the flume floor ---------------------------------

// `ModoSpawnStop` and `FlumeSpawnStop` are in `benches/common`: the `spawn_stop` pair of
// `benches/core.rs`.

// ----- (c) the registry's work, without the services ------------------------------------------

/// What the stand-in keeps per service: what the registry's `Node` holds.
#[derive(Debug)]
#[allow(dead_code)] // written, not read: the registry's snapshot reads them
struct Entry {
    label: String,
    shortlabel: String,
    parent: Option<Uuid>,
    children: Vec<Uuid>,
    state: u8,
    restart_count: u32,
    seq: u64,
}

/// A modo actor doing the registry's work per event.
#[derive(Debug, Default)]
struct Book {
    nodes: HashMap<Uuid, Entry>,
    next_seq: u64,
    handled: u64,
}

impl Service for Book {
    /// Unbounded, as the registry's: a report never waits.
    fn mailbox_capacity(&self) -> usize {
        usize::MAX
    }
}

/// The registry's three kinds of event, with what each carries.
enum Event {
    Spawned {
        id: Uuid,
        label: Arc<str>,
        shortlabel: Arc<str>,
        parent: Option<Uuid>,
    },
    State {
        id: Uuid,
        state: u8,
        restart_count: u32,
    },
    Removed {
        id: Uuid,
    },
}

impl Handler<Event> for Book {
    type Reply = ();

    async fn handle(&mut self, event: Event, _ctx: &mut Context<Self>) {
        self.handled += 1;
        match event {
            Event::Spawned {
                id,
                label,
                shortlabel,
                parent,
            } => {
                self.next_seq += 1;
                let entry = Entry {
                    label: label.to_string(),
                    shortlabel: shortlabel.to_string(),
                    parent,
                    children: Vec::new(),
                    state: 0,
                    restart_count: 0,
                    seq: self.next_seq,
                };
                if let Some(p) = parent.and_then(|p| self.nodes.get_mut(&p)) {
                    p.children.push(id);
                }
                self.nodes.insert(id, entry);
            }
            Event::State {
                id,
                state,
                restart_count,
            } => {
                if let Some(entry) = self.nodes.get_mut(&id) {
                    entry.state = state;
                    entry.restart_count = restart_count;
                }
            }
            Event::Removed { id } => {
                if let Some(entry) = self.nodes.remove(&id)
                    && let Some(p) = entry.parent.and_then(|p| self.nodes.get_mut(&p))
                {
                    p.children.retain(|c| *c != id);
                }
            }
        }
    }
}

/// Returns (events handled, services still booked) and resets the count.
struct Drain;

impl Handler<Drain> for Book {
    type Reply = (u64, usize);
    async fn handle(&mut self, _: Drain, _ctx: &mut Context<Self>) -> (u64, usize) {
        (std::mem::take(&mut self.handled), self.nodes.len())
    }
}

#[derive(Clone)]
struct RegistryWork {
    book: Addr<Book>,
    k: usize,
}

impl RegistryWork {
    /// Starts the stand-in actor; call on the runtime it should run on.
    async fn start(system: &System, k: usize) -> Self {
        let book = system.spawn(Book::default()).await.expect("spawn");
        RegistryWork { book, k }
    }

    fn report(&self, event: Event) {
        if self.book.try_tell(event).is_err() {
            panic!("the stand-in registry is running, its mailbox unbounded");
        }
    }
}

impl Workload for RegistryWork {
    async fn run(&self, iters: u64) -> Duration {
        let label: Arc<str> = Arc::from("Idle");
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            // The ids exist before the registry hears of them (made with the service).
            let ids: Vec<Uuid> = (0..self.k).map(|_| Uuid::new_v4()).collect();
            let start = Instant::now();
            for &id in &ids {
                self.report(Event::Spawned {
                    id,
                    label: label.clone(),
                    shortlabel: label.clone(),
                    parent: None,
                });
                for state in [1, 2] {
                    self.report(Event::State {
                        id,
                        state,
                        restart_count: 0,
                    });
                }
            }
            for &id in &ids {
                for state in [3, 4] {
                    self.report(Event::State {
                        id,
                        state,
                        restart_count: 0,
                    });
                }
                self.report(Event::Removed { id });
            }
            let (handled, left) = self.book.ask(Drain).await.expect("stand-in is running");
            total += start.elapsed();
            assert_eq!(handled, self.k as u64 * EVENTS_PER_SERVICE);
            assert_eq!(left, 0);
        }
        total
    }
}

// ----- fixtures --------------------------------------------------------------------------------

struct Fixtures {
    /// Holds the stand-in registry actor.
    system: System,
    modo: ModoSpawnStop,
    flume: FlumeSpawnStop,
    registry_work: RegistryWork,
}

impl Fixtures {
    fn start(rt: &Runtime, sizes: Sizes) -> Self {
        let (system, registry_work) = run_on(rt, async move {
            let system = System::new();
            let work = RegistryWork::start(&system, sizes.k).await;
            (system, work)
        });
        Fixtures {
            system,
            modo: ModoSpawnStop { k: sizes.k },
            flume: FlumeSpawnStop { k: sizes.k },
            registry_work,
        }
    }

    fn shutdown(self, rt: &Runtime) {
        let system = self.system;
        run_on(rt, async move { system.shutdown().await }).expect("shutdown");
    }
}

// ----- criterion -------------------------------------------------------------------------------

fn bench<W: Workload>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    name: &str,
    workload: &W,
) {
    group.bench_function(name, |b| {
        b.iter_custom(|iters| measure(rt, workload, iters))
    });
}

fn criterion_groups(c: &mut Criterion, flavours: &[(Flavour, Fixtures)], sizes: Sizes) {
    for (flavour, fx) in flavours {
        let mut group = c.benchmark_group(format!("registry_share/{}", flavour.name));
        // Per service: a spawn and a stop, or the 6 events they report.
        group.throughput(Throughput::Elements(sizes.k as u64));
        bench(&mut group, &flavour.rt, "flume", &fx.flume);
        bench(&mut group, &flavour.rt, "modo", &fx.modo);
        bench(&mut group, &flavour.rt, "registry_work", &fx.registry_work);
        group.finish();
    }
}

// ----- the ratio table -------------------------------------------------------------------------

/// One row: medians over repetitions, in nanoseconds per service.
struct Row {
    flavour: &'static str,
    work: String,
    flume_ns: f64,
    modo_ns: f64,
    registry_ns: f64,
    /// The lowest and highest modo / flume ratio of one repetition.
    modo_range: (f64, f64),
    /// The lowest and highest registry_work / modo ratio of one repetition.
    share_range: (f64, f64),
}

/// Alternates the three workloads (flume, modo, registry work), `sizes.reps` times after one
/// discarded round, and returns the row of medians and ranges.
fn ratio_row(flavour: &Flavour, fx: &Fixtures, sizes: Sizes) -> Row {
    let rt = &flavour.rt;
    let iters = sizes.iters;
    if sizes.warm_up {
        measure(rt, &fx.flume, iters);
        measure(rt, &fx.modo, iters);
        measure(rt, &fx.registry_work, iters);
    }
    let per_service = |d: Duration| d.as_secs_f64() * 1e9 / (iters as f64 * sizes.k as f64);
    let (mut f, mut m, mut r) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..sizes.reps {
        f.push(per_service(measure(rt, &fx.flume, iters)));
        m.push(per_service(measure(rt, &fx.modo, iters)));
        r.push(per_service(measure(rt, &fx.registry_work, iters)));
    }
    let modo_ratios: Vec<f64> = f.iter().zip(&m).map(|(f, m)| m / f).collect();
    let shares: Vec<f64> = m.iter().zip(&r).map(|(m, r)| r / m).collect();
    Row {
        flavour: flavour.name,
        work: format!("{} x {}", iters, sizes.k),
        flume_ns: median(&mut f),
        modo_ns: median(&mut m),
        registry_ns: median(&mut r),
        modo_range: range(&modo_ratios),
        share_range: range(&shares),
    }
}

fn print_table(rows: &[Row], sizes: Sizes, mode: Mode) {
    println!();
    println!(
        "spawn+stop with the registry (modo), the raw flume floor, and the registry's work alone \
         ({EVENTS_PER_SERVICE} events per service): median of {} repetitions, nproc {}{}",
        sizes.reps,
        nproc(),
        test_mode_note(mode)
    );
    println!(
        "modo/flume = (a)/(b); registry share = (c)/(a), estimated; in brackets the lowest and \
         highest ratio of one repetition"
    );
    let header = [
        "flavour",
        "work per rep",
        "(b) flume",
        "(a) modo",
        "(c) registry work",
        "modo/flume",
        "registry share",
        "target",
    ];
    let cells: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            let share = r.registry_ns / r.modo_ns;
            let verdict = if share < 0.5 { "ok" } else { "OVER" };
            [
                r.flavour.to_string(),
                r.work.clone(),
                format!("{:.2} us/actor", r.flume_ns / 1e3),
                format!("{:.2} us/actor", r.modo_ns / 1e3),
                format!(
                    "{:.2} us/actor ({:.0} ns/event)",
                    r.registry_ns / 1e3,
                    r.registry_ns / EVENTS_PER_SERVICE as f64
                ),
                format!(
                    "{:.2}x ({:.2}-{:.2})",
                    r.modo_ns / r.flume_ns,
                    r.modo_range.0,
                    r.modo_range.1
                ),
                format!(
                    "{:.0}% ({:.0}-{:.0}%)",
                    share * 100.0,
                    r.share_range.0 * 100.0,
                    r.share_range.1 * 100.0
                ),
                format!("share < 50%: {verdict}"),
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
        let rows: Vec<Row> = flavours
            .iter()
            .map(|(flavour, fx)| ratio_row(flavour, fx, sizes))
            .collect();
        print_table(&rows, sizes, mode);
    }

    for (flavour, fx) in flavours {
        fx.shutdown(&flavour.rt);
    }
}
