//! What every benchmark here needs: its two runtimes, the machine's parallelism and the median
//! of repetitions. `benches/supervisor.rs` uses only this part of `benches/common`.

use tokio::runtime::{Builder, Runtime};

/// A runtime flavour and its name in group labels.
pub struct Flavour {
    pub name: &'static str,
    pub rt: Runtime,
}

/// `mt2` (multi-thread, 2 workers) and `ct` (current-thread), in that order.
pub fn flavours() -> [Flavour; 2] {
    let mt2 = Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bench-mt2")
        .enable_all()
        .build()
        .expect("multi-thread runtime");
    let ct = Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("current-thread runtime");
    [
        Flavour {
            name: "mt2",
            rt: mt2,
        },
        Flavour { name: "ct", rt: ct },
    ]
}

/// The parallelism the machine offers (0 if unknown), as the tables print it.
pub fn nproc() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// The median of `xs` (sorting it): the middle value, or the mean of the two middle ones.
pub fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    }
}
