//! The Markdown table: medians, figures, ratios to raw flume and to modo, stalled runs.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::{
    ASK_N, FAN_K, FAN_N, FLAVOURS, IDLE_K, IDLE_RUNS, Only, PER_PRODUCER, PRODUCERS, RESTART_N,
    RING_HOPS, RING_K, SPAWN_K, STALLS, SYSTEMS, Sys, TELL_N, TREE_NODES, WORKS, Work,
};

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    }
}

/// `cost` is seconds per unit (bytes per actor for `idle`).
fn figure(work: Work, cost: f64) -> String {
    match work {
        Work::Tell | Work::Producers8 | Work::Fanout10k => {
            format!("{:.1} M msg/s", 1e-6 / cost)
        }
        Work::Ask => format!("{:.0} ns", cost * 1e9),
        Work::SpawnStop => format!("{:.2} us/actor", cost * 1e6),
        Work::Restart => format!("{:.0} k/s", 1e-3 / cost),
        Work::Ring => format!("{:.0} ns/hop", cost * 1e9),
        Work::Tree => format!("{:.2} us/service", cost * 1e6),
        Work::Idle => format!("{cost:.0} B/actor"),
    }
}

fn label(work: Work) -> String {
    match work {
        Work::Tell => format!("tell, 1 producer, {TELL_N} msgs"),
        Work::Ask => format!("ask round trip, {ASK_N} sequential"),
        Work::SpawnStop => format!("spawn+stop of {SPAWN_K} actors"),
        Work::Restart => format!("restarts/s, {RESTART_N} panics"),
        Work::Ring => format!("ring of {RING_K} actors, {RING_HOPS} hops"),
        Work::Producers8 => format!("{PRODUCERS} producers x {PER_PRODUCER} msgs, 1 mailbox"),
        Work::Fanout10k => format!("1 driver, {FAN_N} msgs over {FAN_K} mailboxes"),
        Work::Tree => format!("tree of {TREE_NODES} services, start+stop"),
        Work::Idle => format!("RSS of {IDLE_K} idle actors"),
    }
}

/// For rates: throughput ratio (this / reference, higher is better). For costs: time or
/// memory ratio (this / reference, higher is slower or bigger).
fn ratio(work: Work, this: f64, reference: f64) -> String {
    let r = if work.is_rate() {
        reference / this
    } else {
        this / reference
    };
    format!("{r:.2}x")
}

/// Prints the table; `samples[work][flavour][system]` are costs per unit.
pub fn print_table(samples: &mut [Vec<Vec<Vec<f64>>>], only: &Only, reps: usize, total: Duration) {
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let idle_runs = reps.min(IDLE_RUNS);
    println!(
        "Median of {reps} interleaved repetitions (after 1 discarded warm-up; idle: median of \
         {idle_runs} child-process runs, no warm-up), nproc {nproc}, total {:.0} s. tell, \
         restarts/s, producers8 and fanout10k: throughput ratio (higher is better); ask, \
         spawn_stop, ring and tree: time ratio (higher is slower); idle: memory ratio (higher \
         is bigger).\n",
        total.as_secs_f64()
    );
    println!("| workload | flavour | system | median | vs raw flume | vs modo |");
    println!("|---|---|---|---|---|---|");
    let mut notes = Vec::new();
    for (wi, &work) in WORKS.iter().enumerate() {
        let label = label(work);
        for (fi, fname) in FLAVOURS.iter().enumerate() {
            let meds: Vec<Option<f64>> = samples[wi][fi]
                .iter_mut()
                .map(|xs| (!xs.is_empty()).then(|| median(xs)))
                .collect();
            let runs = if work == Work::Idle {
                idle_runs
            } else {
                reps + 1
            };
            for (si, &sys) in SYSTEMS.iter().enumerate() {
                if !only.wants(work, sys) {
                    continue;
                }
                match meds[si] {
                    Some(m) => println!(
                        "| {label} | {fname} | {} | {} | {} | {} |",
                        sys.name(),
                        figure(work, m),
                        meds[Sys::Flume as usize].map_or("-".into(), |f| ratio(work, m, f)),
                        meds[Sys::Modo as usize].map_or("-".into(), |o| ratio(work, m, o)),
                    ),
                    None => println!("| {label} | {fname} | {} | n/a | n/a | n/a |", sys.name()),
                }
                if let Some(why) = sys.cannot(work) {
                    let note = format!("{} {}: n/a, {why}", work.name(), sys.name());
                    if !notes.contains(&note) {
                        notes.push(note);
                    }
                }
                let stalls = STALLS[wi][fi][si].load(Ordering::Relaxed);
                if stalls > 0 {
                    println!(
                        "| {label} | {fname} | {}: stalled runs | {stalls} of {runs} (excluded) | | |",
                        sys.name()
                    );
                }
            }
        }
    }
    if !notes.is_empty() {
        println!();
        for note in notes {
            println!("- {note}");
        }
    }
}
