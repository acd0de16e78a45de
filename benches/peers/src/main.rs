//! modo beside raw flume, ractor, kameo and actix: the same nine workloads in one process,
//! repetitions interleaved (for rep { for workload { for flavour { for system { run } } } }),
//! medians printed as a Markdown table with each system's ratio to raw flume and to modo.
//!
//! Workloads (each measured from inside the runtime, setup and teardown outside the clock
//! unless said; every run checks its result and panics on a wrong one; every run is bounded
//! by `LIMIT`: a run that does not finish in time is excluded and counted in the table):
//! 1. `tell`: 1 producer, `TELL_N` messages to one counting actor, then one ask/call that
//!    returns the count (checked). Bounded mailbox of 1024 where the system has one: modo,
//!    flume and kameo are bounded (the producer waits when full); ractor's mailbox is
//!    unbounded (`cast` never waits); actix's `do_send` ignores the mailbox capacity.
//!    Figure: messages/s; ratios are throughput ratios.
//! 2. `ask`: `ASK_N` sequential round trips to one server (each answer checked). Figure: time
//!    per round trip; ratios are time ratios.
//! 3. `spawn_stop`: `SPAWN_K` actors spawned one after the other, then stopped one after the
//!    other, each stop awaited until the actor has ended. Figure: time per actor; time ratios.
//! 4. `restart`: `RESTART_N` restarts of a child that panics on every message. modo: a
//!    `Supervisor` (OneForOne), the child's address stays valid, `RESTART_N` poison messages
//!    queued on it. kameo: `supervise` under a OneForOne supervisor (the restarted child keeps
//!    its mailbox), driven lock-step: one poison, then wait for the restarted instance's
//!    `on_start` (with all poisons queued at once kameo 0.22.2 stalled in every run; a run
//!    that stalls for 2 s is excluded and counted in the table). ractor: a linked supervisor
//!    re-spawns the child (`spawn_linked`) on each `ActorFailed` and sends the new child its
//!    poison (ractor has no built-in restart). actix: n/a (no panic restart). Floor: a task
//!    with its own flume channel that panics on its message and is spawned again, its panic
//!    caught via its `JoinHandle`. A silent panic hook is installed around this workload only.
//!    Figure: restarts/s; throughput ratios.
//! 5. `ring`: `RING_K` actors in a ring (bounded mailboxes of 1024 where configurable), each
//!    told the address of the next before the clock starts; the driver tells the first one a
//!    token that is then delivered `RING_HOPS` times in all (the driver's delivery is the
//!    first): each delivery counts, and the actor forwards it to the next with
//!    `tell(..).await` (modo, kameo), `cast` (ractor), `do_send` (actix), `send_async` (floor)
//!    until the last delivery, which wakes the driver (a tokio `Notify`). Outside the clock
//!    each actor is asked how many deliveries it saw: exactly `RING_HOPS / RING_K` each is
//!    checked. Figure: time per hop; time ratios.
//! 6. `producers8`: `PRODUCERS` tokio tasks each tell `PER_PRODUCER` messages to one counting
//!    actor (mailbox as in `tell`), all joined, then one ask of the count (checked equal to
//!    the total), all inside the clock. Figure: messages/s; throughput ratios.
//! 7. `fanout10k`: `FAN_K` counting actors (mailboxes as in `tell`) spawned outside the
//!    clock; inside it, one task tells `FAN_N` messages round-robin (message i to actor i mod
//!    `FAN_K`), then asks each actor its count, one after the other (the asks are inside the
//!    clock); each count is checked equal to `FAN_N / FAN_K`. Stopping the actors is outside
//!    the clock. Figure: messages/s; throughput ratios.
//! 8. `tree`: a tree of `TREE_NODES` services, `TREE_BRANCH` children per node down to depth
//!    `TREE_DEPTH`, started then stopped from its root; the clock runs from the spawn of the
//!    root to the end of the stop, every node ended. Starts and ends are counted (a shared
//!    atomic tally with a `Notify`) and checked equal to `TREE_NODES`. modo: children are the
//!    node's `Service::dependencies()`; `System::spawn(root)` returns once the whole tree
//!    started (checked: all `on_started` ran), `root.stop()` once every node stopped
//!    (checked: all `on_shutdown` ran). ractor: each node `spawn_linked`s its children in
//!    `pre_start` (each spawn waits for that child's `pre_start`, so its subtree); the root
//!    is stopped with `stop`, each node's `post_stop` stops its children and waits for them
//!    (`stop_children_and_wait`) then counts its end; the root's `JoinHandle` is joined.
//!    kameo: each node `supervise`s its children in `on_start` and waits for their startup;
//!    the root is stopped with `stop_gracefully` and `wait_for_shutdown` (a supervisor shuts
//!    its children down and waits for them before its `on_stop`, which counts the end).
//!    actix: each node `start()`s its children in `started`; a `Halt` message to the root is
//!    passed on by each node to its children before `ctx.stop()`, `stopped` counts the end;
//!    the driver waits for both tallies (actix's `start` does not wait for `started`, and a
//!    parent does not wait for its children to end). Floor: tokio tasks, each parent spawning
//!    its children with their own flume channels, waiting for each to report started (a
//!    oneshot), then on the stop message passing it down and joining its children. Figure:
//!    time per service; time ratios.
//! 9. `idle`: resident memory of `IDLE_K` idle actors (bounded mailbox of 1024 where
//!    configurable, ractor's is unbounded; the handles kept, one per actor, count too), in a
//!    fresh child process of this binary per measurement
//!    (`MODO_PEERS_IDLE_CHILD=<system>,<flavour>`). The child builds its runtime, spawns and
//!    stops `IDLE_WARM` actors (warm-up), reads `VmRSS` from `/proc/self/status`, spawns the
//!    `IDLE_K` actors, waits until each has run its start hook (modo also flushes its
//!    registry, whose nodes count too), reads `VmRSS` again, checks the start count (and for
//!    modo `System::live_actors`) and prints the growth. Floor: tokio tasks each parked on
//!    its own bounded(1024) flume receiver. Runs only in the measured repetitions 1 to
//!    `IDLE_RUNS` (no warm-up repetition: every measurement is a fresh process). Figure:
//!    bytes per actor; ratios are memory ratios (lower is better).
//!
//! Runtimes: `mt2` (tokio multi-thread, 2 workers) and `ct` (tokio current-thread). actix runs
//! in its own `actix_rt::System`, built per run: for `ct` `System::new()`, for `mt2`
//! `System::with_tokio_rt` over a 2-worker runtime (actix still runs every actor on the
//! thread that drives the System; tokio tasks it spawns, such as the `producers8` producers,
//! run on the workers).
//!
//! Run: `cd benches/peers && cargo run --release` (`MODO_PEERS_REPS=N` for N measured
//! repetitions, default 15, after one discarded warm-up repetition; `MODO_PEERS_ONLY=<names>`
//! to run a subset: a comma-separated list of workload names (`tell`, `ask`, `spawn_stop`,
//! `restart`, `ring`, `producers8`, `fanout10k`, `tree`, `idle`) and system names (`flume`
//! or `raw flume`, `modo`, `ractor`, `kameo`, `actix`): the listed workloads (all if none)
//! for the listed systems (all if none); `MODO_PEERS_VERBOSE=1` to log each run,
//! `MODO_PEERS_LOUD=1` to keep the default panic hook in the restart workload).

#![forbid(unsafe_code)]

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::runtime::{Builder, Runtime};

mod actix_sys;
mod common;
mod floor;
mod idle;
mod kameo_sys;
mod modo_sys;
mod ractor_sys;
mod report;

const CAPACITY: usize = 1024;
const TELL_N: u64 = 1_000_000;
const ASK_N: u64 = 100_000;
const SPAWN_K: usize = 10_000;
const RESTART_N: u32 = 10_000;
const RING_K: usize = 1_000;
const RING_HOPS: u32 = 1_000_000;
const PRODUCERS: usize = 8;
const PER_PRODUCER: u64 = 125_000;
const FAN_K: usize = 10_000;
const FAN_N: u64 = 1_000_000;
const TREE_BRANCH: usize = 10;
const TREE_DEPTH: u32 = 4;
const TREE_NODES: usize = 11_111;
const IDLE_K: usize = 100_000;
const IDLE_WARM: usize = 1_000;
const IDLE_RUNS: usize = 3;
/// The bound on one run (setup and teardown included); a run past it is excluded and counted.
const LIMIT: Duration = Duration::from_secs(60);

const _: () = assert!(TREE_NODES == 1 + 10 + 100 + 1_000 + 10_000 && TREE_BRANCH == 10);
const _: () =
    assert!((RING_HOPS as usize).is_multiple_of(RING_K) && FAN_N.is_multiple_of(FAN_K as u64));

#[derive(Clone, Copy, PartialEq, Debug)]
enum Sys {
    Flume,
    Modo,
    Ractor,
    Kameo,
    Actix,
}
const SYSTEMS: [Sys; 5] = [Sys::Flume, Sys::Modo, Sys::Ractor, Sys::Kameo, Sys::Actix];
impl Sys {
    /// As printed in the table.
    fn name(self) -> &'static str {
        match self {
            Sys::Flume => "raw flume",
            Sys::Modo => "modo",
            Sys::Ractor => "ractor",
            Sys::Kameo => "kameo",
            Sys::Actix => "actix",
        }
    }
    /// One word, for `MODO_PEERS_ONLY` and the idle child's environment.
    fn key(self) -> &'static str {
        match self {
            Sys::Flume => "flume",
            other => other.name(),
        }
    }
    fn from_key(s: &str) -> Option<Sys> {
        match s {
            "flume" | "raw flume" | "raw_flume" | "floor" => Some(Sys::Flume),
            _ => SYSTEMS.into_iter().find(|sys| sys.name() == s),
        }
    }
    /// Why `self` cannot run `work`, if it cannot.
    fn cannot(self, work: Work) -> Option<&'static str> {
        match (self, work) {
            (Sys::Actix, Work::Restart) => Some("actix does not restart an actor that panicked"),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Work {
    Tell,
    Ask,
    SpawnStop,
    Restart,
    Ring,
    Producers8,
    Fanout10k,
    Tree,
    Idle,
}
const WORKS: [Work; 9] = [
    Work::Tell,
    Work::Ask,
    Work::SpawnStop,
    Work::Restart,
    Work::Ring,
    Work::Producers8,
    Work::Fanout10k,
    Work::Tree,
    Work::Idle,
];
impl Work {
    fn name(self) -> &'static str {
        match self {
            Work::Tell => "tell",
            Work::Ask => "ask",
            Work::SpawnStop => "spawn_stop",
            Work::Restart => "restart",
            Work::Ring => "ring",
            Work::Producers8 => "producers8",
            Work::Fanout10k => "fanout10k",
            Work::Tree => "tree",
            Work::Idle => "idle",
        }
    }
    fn from_name(s: &str) -> Option<Work> {
        WORKS.into_iter().find(|w| w.name() == s)
    }
    /// What a run's duration is divided by.
    fn units(self) -> f64 {
        match self {
            Work::Tell => TELL_N as f64,
            Work::Ask => ASK_N as f64,
            Work::SpawnStop => SPAWN_K as f64,
            Work::Restart => f64::from(RESTART_N),
            Work::Ring => f64::from(RING_HOPS),
            Work::Producers8 => (PRODUCERS as u64 * PER_PRODUCER) as f64,
            Work::Fanout10k => FAN_N as f64,
            Work::Tree => TREE_NODES as f64,
            Work::Idle => IDLE_K as f64,
        }
    }
    /// Throughput figures (higher is better) vs cost figures (time or bytes per unit, lower
    /// is better).
    fn is_rate(self) -> bool {
        matches!(
            self,
            Work::Tell | Work::Restart | Work::Producers8 | Work::Fanout10k
        )
    }
    /// Whether repetition `rep` runs this workload (idle: the measured repetitions 1 to
    /// `IDLE_RUNS` only).
    fn runs_in(self, rep: usize) -> bool {
        self != Work::Idle || (1..=IDLE_RUNS).contains(&rep)
    }
}

const FLAVOURS: [&str; 2] = ["mt2", "ct"];

/// Runs `fut` as a task on `rt`, bounded by `LIMIT`: `None` if it did not finish in time.
fn on<F>(rt: &Runtime, fut: F) -> Option<Duration>
where
    F: Future<Output = Duration> + Send + 'static,
{
    on_within(rt, LIMIT, fut)
}

fn on_within<F>(rt: &Runtime, limit: Duration, fut: F) -> Option<Duration>
where
    F: Future<Output = Duration> + Send + 'static,
{
    rt.block_on(rt.spawn(async move { tokio::time::timeout(limit, fut).await.ok() }))
        .expect("benchmark task panicked")
}

/// Runs `fut` in a fresh actix System, bounded by `LIMIT`.
fn on_actix<F: Future<Output = Duration>>(fl: usize, fut: F) -> Option<Duration> {
    actix_sys::run(fl == 0, async move {
        tokio::time::timeout(LIMIT, fut).await.ok()
    })
}

/// Runs that did not finish (past `LIMIT`, or kameo's restart stall), per workload, flavour
/// (0 = mt2, 1 = ct) and system, warm-up included.
static STALLS: [[[AtomicU32; SYSTEMS.len()]; 2]; WORKS.len()] =
    [const { [const { [const { AtomicU32::new(0) }; SYSTEMS.len()] }; 2] }; WORKS.len()];

/// One run of `work` on `sys` in flavour `fl` (0 = mt2, 1 = ct): cost per unit (seconds, or
/// bytes for `idle`), or `None` where the system cannot do it or the run stalled (counted in
/// `STALLS`).
fn run_one(sys: Sys, work: Work, fl: usize, rt: &Runtime) -> Option<f64> {
    use Sys::*;
    use Work::*;
    if sys.cannot(work).is_some() {
        return None;
    }
    let cost = match (sys, work) {
        (_, Idle) => idle::measure(sys, FLAVOURS[fl]),
        (Kameo, Restart) => rt
            .block_on(
                rt.spawn(async {
                    tokio::time::timeout(LIMIT, kameo_sys::restart(RESTART_N)).await
                }),
            )
            .expect("kameo restart")
            .ok()
            .flatten()
            .map(|d| d.as_secs_f64()),
        _ => {
            let d = match (sys, work) {
                (Flume, Tell) => on(rt, floor::tell(TELL_N)),
                (Flume, Ask) => on(rt, floor::ask(ASK_N)),
                (Flume, SpawnStop) => on(rt, floor::spawn_stop(SPAWN_K)),
                (Flume, Restart) => on(rt, floor::restart(RESTART_N)),
                (Flume, Ring) => on(rt, floor::ring(RING_K, RING_HOPS)),
                (Flume, Producers8) => on(rt, floor::producers(PRODUCERS, PER_PRODUCER)),
                (Flume, Fanout10k) => on(rt, floor::fanout(FAN_K, FAN_N)),
                (Flume, Tree) => on(rt, floor::tree(TREE_NODES)),
                (Modo, Tell) => on(rt, modo_sys::tell(TELL_N)),
                (Modo, Ask) => on(rt, modo_sys::ask(ASK_N)),
                (Modo, SpawnStop) => on(rt, modo_sys::spawn_stop(SPAWN_K)),
                (Modo, Restart) => on(rt, modo_sys::restart(RESTART_N)),
                (Modo, Ring) => on(rt, modo_sys::ring(RING_K, RING_HOPS)),
                (Modo, Producers8) => on(rt, modo_sys::producers(PRODUCERS, PER_PRODUCER)),
                (Modo, Fanout10k) => on(rt, modo_sys::fanout(FAN_K, FAN_N)),
                (Modo, Tree) => on(rt, modo_sys::tree(TREE_NODES)),
                (Ractor, Tell) => on(rt, ractor_sys::tell(TELL_N)),
                (Ractor, Ask) => on(rt, ractor_sys::ask(ASK_N)),
                (Ractor, SpawnStop) => on(rt, ractor_sys::spawn_stop(SPAWN_K)),
                (Ractor, Restart) => on(rt, ractor_sys::restart(RESTART_N)),
                (Ractor, Ring) => on(rt, ractor_sys::ring(RING_K, RING_HOPS)),
                (Ractor, Producers8) => on(rt, ractor_sys::producers(PRODUCERS, PER_PRODUCER)),
                (Ractor, Fanout10k) => on(rt, ractor_sys::fanout(FAN_K, FAN_N)),
                (Ractor, Tree) => on(rt, ractor_sys::tree(TREE_NODES)),
                (Kameo, Tell) => on(rt, kameo_sys::tell(TELL_N)),
                (Kameo, Ask) => on(rt, kameo_sys::ask(ASK_N)),
                (Kameo, SpawnStop) => on(rt, kameo_sys::spawn_stop(SPAWN_K)),
                (Kameo, Ring) => on(rt, kameo_sys::ring(RING_K, RING_HOPS)),
                (Kameo, Producers8) => on(rt, kameo_sys::producers(PRODUCERS, PER_PRODUCER)),
                (Kameo, Fanout10k) => on(rt, kameo_sys::fanout(FAN_K, FAN_N)),
                (Kameo, Tree) => on(rt, kameo_sys::tree(TREE_NODES)),
                (Actix, Tell) => on_actix(fl, actix_sys::tell(TELL_N)),
                (Actix, Ask) => on_actix(fl, actix_sys::ask(ASK_N)),
                (Actix, SpawnStop) => on_actix(fl, actix_sys::spawn_stop(SPAWN_K)),
                (Actix, Ring) => on_actix(fl, actix_sys::ring(RING_K, RING_HOPS)),
                (Actix, Producers8) => on_actix(fl, actix_sys::producers(PRODUCERS, PER_PRODUCER)),
                (Actix, Fanout10k) => on_actix(fl, actix_sys::fanout(FAN_K, FAN_N)),
                (Actix, Tree) => on_actix(fl, actix_sys::tree(TREE_NODES)),
                (Kameo | Actix, Restart) | (_, Idle) => unreachable!("handled above"),
            };
            d.map(|d| d.as_secs_f64())
        }
    };
    match cost {
        Some(c) => Some(c / work.units()),
        None => {
            STALLS[work as usize][fl][sys as usize].fetch_add(1, Ordering::Relaxed);
            eprintln!(
                "{} {} {}: stalled, run excluded",
                work.name(),
                FLAVOURS[fl],
                sys.name()
            );
            None
        }
    }
}

/// `MODO_PEERS_ONLY`: the workloads and systems to run (empty: all).
struct Only {
    works: Vec<Work>,
    systems: Vec<Sys>,
}
impl Only {
    fn parse(list: Option<&str>) -> Result<Only, String> {
        let mut only = Only {
            works: Vec::new(),
            systems: Vec::new(),
        };
        for name in list.unwrap_or("").split(',').map(str::trim) {
            if name.is_empty() {
                continue;
            }
            if let Some(w) = Work::from_name(name) {
                only.works.push(w);
            } else if let Some(s) = Sys::from_key(name) {
                only.systems.push(s);
            } else {
                let works: Vec<_> = WORKS.iter().map(|w| w.name()).collect();
                let systems: Vec<_> = SYSTEMS.iter().map(|s| s.key()).collect();
                return Err(format!(
                    "MODO_PEERS_ONLY: unknown name {name:?} (workloads: {}; systems: {})",
                    works.join(", "),
                    systems.join(", ")
                ));
            }
        }
        Ok(only)
    }
    fn wants(&self, work: Work, sys: Sys) -> bool {
        (self.works.is_empty() || self.works.contains(&work))
            && (self.systems.is_empty() || self.systems.contains(&sys))
    }
}

/// `--features observed`: tracing at INFO, and a metrics recorder on demand.
#[cfg(feature = "observed")]
mod observed {
    pub fn install() {
        tracing_subscriber::fmt()
            .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
            .with_writer(std::io::sink)
            .init();
        let recorder = std::env::var_os("MODO_PEERS_RECORDER").is_some();
        if recorder {
            let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
            metrics::set_global_recorder(recorder).expect("the only recorder");
        }
        eprintln!(
            "observed build: modo's metrics feature on, tracing at INFO (to a sink), {}",
            if recorder { "a Prometheus recorder installed" } else { "no metrics recorder" }
        );
    }
}

fn main() {
    if let Ok(spec) = std::env::var(idle::CHILD_ENV) {
        idle::child_main(&spec);
    }
    #[cfg(feature = "observed")]
    observed::install();
    let reps: usize = std::env::var("MODO_PEERS_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let only = match Only::parse(std::env::var("MODO_PEERS_ONLY").ok().as_deref()) {
        Ok(only) => only,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let verbose = std::env::var_os("MODO_PEERS_VERBOSE").is_some();
    let mt2 = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("mt2");
    let ct = Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("ct");
    let runtimes: [&Runtime; 2] = [&mt2, &ct];

    let silent: Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Sync + Send> = Box::new(|_| {});
    let mut silent = Some(silent);
    // samples[work][flavour][system]
    let mut samples = vec![vec![vec![Vec::<f64>::new(); SYSTEMS.len()]; 2]; WORKS.len()];
    let began = Instant::now();
    for rep in 0..=reps {
        for (wi, &work) in WORKS.iter().enumerate() {
            if !work.runs_in(rep) {
                continue;
            }
            for (fi, rt) in runtimes.iter().enumerate() {
                for (si, &sys) in SYSTEMS.iter().enumerate() {
                    if !only.wants(work, sys) {
                        continue;
                    }
                    let hook = if work == Work::Restart {
                        let prev = std::panic::take_hook();
                        if std::env::var_os("MODO_PEERS_LOUD").is_none() {
                            std::panic::set_hook(silent.take().expect("hook"));
                        }
                        Some(prev)
                    } else {
                        None
                    };
                    if verbose {
                        eprintln!("rep {rep}: {} {} {}", work.name(), FLAVOURS[fi], sys.name());
                    }
                    let r = run_one(sys, work, fi, rt);
                    if let Some(prev) = hook {
                        silent = Some(std::panic::take_hook());
                        std::panic::set_hook(prev);
                    }
                    // Repetition 0 is a warm-up, discarded (idle does not run in it).
                    if let (Some(x), true) = (r, rep > 0) {
                        samples[wi][fi][si].push(x);
                    }
                }
            }
        }
        eprintln!(
            "repetition {rep}/{reps} done at {:.1} s",
            began.elapsed().as_secs_f64()
        );
    }
    report::print_table(&mut samples, &only, reps, began.elapsed());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_selects_workloads_and_systems() {
        let all = Only::parse(None).expect("empty");
        assert!(all.wants(Work::Idle, Sys::Actix));
        let one = Only::parse(Some("ring")).expect("ring");
        assert!(one.wants(Work::Ring, Sys::Kameo));
        assert!(!one.wants(Work::Tell, Sys::Kameo));
        let sys = Only::parse(Some("raw flume")).expect("raw flume");
        assert!(sys.wants(Work::Tree, Sys::Flume));
        assert!(!sys.wants(Work::Tree, Sys::Modo));
        let both = Only::parse(Some("tree, idle,modo,flume")).expect("list");
        assert!(both.wants(Work::Idle, Sys::Modo) && both.wants(Work::Tree, Sys::Flume));
        assert!(!both.wants(Work::Ring, Sys::Modo) && !both.wants(Work::Tree, Sys::Kameo));
        for w in WORKS {
            assert_eq!(Work::from_name(w.name()), Some(w));
        }
        for s in SYSTEMS {
            assert_eq!(Sys::from_key(s.key()), Some(s));
            assert_eq!(Sys::from_key(s.name()), Some(s));
        }
    }

    #[test]
    fn only_refuses_an_unknown_name() {
        let err = Only::parse(Some("ring,rings")).err().expect("an error");
        assert!(
            err.contains("\"rings\"") && err.contains("producers8"),
            "{err}"
        );
    }

    #[test]
    fn a_run_past_its_bound_is_none() {
        let rt = Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        let stalled = on_within(&rt, Duration::from_millis(20), std::future::pending());
        assert_eq!(stalled, None);
        let done = on_within(&rt, LIMIT, async { Duration::from_nanos(7) });
        assert_eq!(done, Some(Duration::from_nanos(7)));
    }

    #[test]
    fn enum_order_matches_the_tables() {
        for (i, w) in WORKS.iter().enumerate() {
            assert_eq!(*w as usize, i);
        }
        for (i, s) in SYSTEMS.iter().enumerate() {
            assert_eq!(*s as usize, i);
        }
    }
}
