//! What the observer costs: per message, watched and unwatched; and per look, over a big tree.
//!
//! One workload, `tell` (one producer sends `n` messages to one counting actor with modo's
//! default mailbox, then asks for the count), on two tokio runtimes, `mt2` (multi-thread, 2
//! workers) and `ct` (current-thread), in four Systems that each hold the same tree of idle
//! services beside the counter:
//!
//! - `plain`: no observer; message observation off (modo's default).
//! - `unwatched`: an observer on loopback, nobody watching (it takes no looks then): observation
//!   stays off, so messages take the plain path. This should read as `plain`.
//! - `watched`: the same, with one client reading the event stream (as the page does):
//!   observation on, each message records its mailbox wait and handle time.
//! - `observed`: no observer, observation turned on by hand: the observation's own share of
//!   `watched`, without the observer's looks and stream.
//!
//! Every System is built before the clock starts; the four are measured in turn, repetition
//! after repetition, and the table gives the median ns per message of each and its ratio to
//! `plain`. It also reads the observer's status document: how long one look over the tree took
//! (`look_us`), median of several looks, and the snapshot's size, while watched; unwatched, that
//! the observer takes no looks (its `looks` count stays put).
//!
//! Run it with `cargo bench --bench observer --features observer` (about 60 s on 2 cores).
//! `cargo test --benches --all-features` runs it once on tiny sizes, as a check that it works.

#![forbid(unsafe_code)]

#[allow(dead_code)]
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{
    Flavour, Mode, Workload, measure, median, mode, new_criterion, nproc, print_grid, range,
    run_on, start_on_each, test_mode_note,
};
use criterion::{Criterion, Throughput};
use modo::observe::{Observer, ObserverConfig};
use modo::{Addr, Context, Handler, Service, System};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

/// The sizes of one run: full for `cargo bench`, tiny when run as a test.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// Idle services in every System's tree.
    tree: usize,
    /// Messages per `tell` iteration, and iterations per repetition.
    tell_n: u64,
    tell_iters: u64,
    /// Measured repetitions of the four (after one discarded round).
    reps: usize,
    warm_up: bool,
    /// Looks whose duration is read for the look figure.
    looks: usize,
}

impl Sizes {
    const BENCH: Sizes = Sizes {
        tree: 2_000,
        tell_n: 100_000,
        tell_iters: 5,
        reps: 7,
        warm_up: true,
        looks: 8,
    };

    const TEST: Sizes = Sizes {
        tree: 50,
        tell_n: 1_000,
        tell_iters: 1,
        reps: 1,
        warm_up: false,
        looks: 1,
    };
}

#[derive(Default)]
struct Counter {
    n: u64,
}

impl Service for Counter {}

struct Tick;
struct Take;

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

struct Idle;
impl Service for Idle {}

#[derive(Clone)]
struct Tell {
    addr: Addr<Counter>,
    n: u64,
}

impl Workload for Tell {
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

/// The four setups, in the table's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    Plain,
    Unwatched,
    Watched,
    Observed,
}

const SETUPS: [Setup; 4] = [
    Setup::Plain,
    Setup::Unwatched,
    Setup::Watched,
    Setup::Observed,
];

impl Setup {
    fn name(self) -> &'static str {
        match self {
            Setup::Plain => "plain",
            Setup::Unwatched => "unwatched",
            Setup::Watched => "watched",
            Setup::Observed => "observed",
        }
    }
}

/// One System of one setup: the tree, the counter, the observer's address if it has one, and
/// the stream reader of `watched`.
struct Fixture {
    setup: Setup,
    system: System,
    tell: Tell,
    observer: Option<SocketAddr>,
    reader: Option<tokio::task::JoinHandle<()>>,
}

/// `GET path` over a fresh connection, the whole answer as text (loopback; `Connection:
/// close`, so the answer ends with the connection).
async fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr)
        .await
        .expect("the observer listens");
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("request");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut out))
        .await
        .expect("an answer within 30 s")
        .expect("the answer reads");
    String::from_utf8_lossy(&out).into_owned()
}

/// The number after `"key":` in `text`.
fn number_after(text: &str, key: &str) -> u64 {
    let pattern = format!("\"{key}\":");
    let start = text.find(&pattern).expect("the key") + pattern.len();
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().expect("a number")
}

impl Fixture {
    fn start(rt: &Runtime, setup: Setup, sizes: Sizes) -> Fixture {
        run_on(rt, async move {
            let system = System::new();
            for _ in 0..sizes.tree {
                system.spawn(Idle).await.expect("spawn");
            }
            let counter = system.spawn(Counter::default()).await.expect("spawn");
            let mut observer = None;
            let mut reader = None;
            if matches!(setup, Setup::Unwatched | Setup::Watched) {
                let config = ObserverConfig::new().bind("127.0.0.1:0".parse().unwrap());
                let listening = config.listening();
                system.spawn(Observer::new(config)).await.expect("observer");
                let addr = listening.addr().expect("listening");
                observer = Some(addr);
                if setup == Setup::Watched {
                    // A client of the event stream that reads everything, as the page does.
                    let mut stream = TcpStream::connect(addr).await.expect("connect");
                    stream
                        .write_all(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                        .await
                        .expect("request");
                    let mut head = [0u8; 64];
                    let n = stream.read(&mut head).await.expect("answer");
                    assert!(head[..n].starts_with(b"HTTP/1.1 200"));
                    reader = Some(tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                    }));
                }
            }
            if setup == Setup::Observed {
                system.set_observing(true);
            }
            let observing = matches!(setup, Setup::Watched | Setup::Observed);
            assert_eq!(system.is_observing(), observing, "{setup:?}");
            Fixture {
                setup,
                system,
                tell: Tell {
                    addr: counter,
                    n: sizes.tell_n,
                },
                observer,
                reader,
            }
        })
    }

    /// The median duration of `looks` looks (µs), read from the status document (reading it
    /// does not count as watching); and for `watched`, the snapshot's size in bytes (reading
    /// the graph does).
    fn looks(&self, rt: &Runtime, looks: usize) -> Option<(f64, Option<usize>)> {
        let addr = self.observer?;
        if self.setup == Setup::Unwatched {
            // Nobody watches: the observer takes no looks (at most the one in flight).
            run_on(rt, async move {
                let before = number_after(&get(addr, "/api/v1/status").await, "looks");
                tokio::time::sleep(Duration::from_millis(1_000)).await;
                let after = number_after(&get(addr, "/api/v1/status").await, "looks");
                assert!(
                    after <= before + 1,
                    "unwatched, yet {before} then {after} looks"
                );
            });
            return None;
        }
        let graph = self.setup == Setup::Watched;
        run_on(rt, async move {
            let mut took = Vec::with_capacity(looks);
            // Only the looks taken from now on count.
            let mut last_at = number_after(&get(addr, "/api/v1/status").await, "snapshot_at_ms");
            for _ in 0..looks * 20 {
                if took.len() == looks {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                let status = get(addr, "/api/v1/status").await;
                let at = number_after(&status, "snapshot_at_ms");
                if at != last_at {
                    last_at = at;
                    took.push(number_after(&status, "look_us") as f64);
                }
            }
            assert_eq!(took.len(), looks, "the observer looks every 250 ms");
            let bytes = if graph {
                Some(get(addr, "/api/v1/graph").await.len())
            } else {
                None
            };
            Some((median(&mut took), bytes))
        })
    }

    fn shutdown(self, rt: &Runtime) {
        let (setup, system, counter) = (self.setup, self.system, self.tell.addr);
        let observing = system.is_observing();
        let handled = counter.service_ref().stats().handled;
        if setup == Setup::Unwatched {
            assert!(!observing, "nobody watched: observation stayed off");
            assert_eq!(handled, 0, "nobody watched: no message was recorded");
        } else if setup != Setup::Plain {
            assert!(handled > 0, "{setup:?}: messages recorded");
        }
        if let Some(reader) = self.reader {
            reader.abort();
        }
        run_on(rt, async move { system.shutdown().await }).expect("shutdown");
    }
}

struct Row {
    flavour: &'static str,
    setup: Setup,
    ns: f64,
    /// The lowest and highest ratio to `plain` of one repetition.
    ratio_range: (f64, f64),
    plain_ns: f64,
}

fn rows(flavours: &[(Flavour, Vec<Fixture>)], sizes: Sizes) -> Vec<Row> {
    let msgs = (sizes.tell_iters * sizes.tell_n) as f64;
    let mut rows = Vec::new();
    for (flavour, fixtures) in flavours {
        let rt = &flavour.rt;
        if sizes.warm_up {
            for fx in fixtures {
                measure(rt, &fx.tell, sizes.tell_iters);
            }
        }
        let mut ns: Vec<Vec<f64>> = vec![Vec::new(); fixtures.len()];
        for _ in 0..sizes.reps {
            for (i, fx) in fixtures.iter().enumerate() {
                let took = measure(rt, &fx.tell, sizes.tell_iters);
                ns[i].push(took.as_secs_f64() * 1e9 / msgs);
            }
        }
        let plain = ns[0].clone();
        let plain_ns = median(&mut plain.clone());
        for (i, fx) in fixtures.iter().enumerate() {
            let ratios: Vec<f64> = ns[i].iter().zip(&plain).map(|(x, p)| x / p).collect();
            rows.push(Row {
                flavour: flavour.name,
                setup: fx.setup,
                ns: median(&mut ns[i]),
                ratio_range: range(&ratios),
                plain_ns,
            });
        }
    }
    rows
}

fn main() {
    let mode = mode();
    let sizes = if mode == Mode::Bench {
        Sizes::BENCH
    } else {
        Sizes::TEST
    };
    let flavours = start_on_each(|rt| {
        SETUPS
            .iter()
            .map(|&setup| Fixture::start(rt, setup, sizes))
            .collect::<Vec<_>>()
    });

    let mut criterion: Criterion = new_criterion();
    for (flavour, fixtures) in &flavours {
        let mut group = criterion.benchmark_group(format!("tell/{}", flavour.name));
        group.throughput(Throughput::Elements(sizes.tell_n));
        for fx in fixtures {
            group.bench_function(fx.setup.name(), |b| {
                b.iter_custom(|iters| measure(&flavour.rt, &fx.tell, iters))
            });
        }
        group.finish();
    }
    criterion.final_summary();

    if mode != Mode::Other {
        let rows = rows(&flavours, sizes);
        println!();
        println!(
            "tell, {} x {} msgs, beside {} idle services: median of {} rounds of the four in \
             turn, nproc {}{}",
            sizes.tell_iters,
            sizes.tell_n,
            sizes.tree,
            sizes.reps,
            nproc(),
            test_mode_note(mode)
        );
        let cells: Vec<[String; 4]> = rows
            .iter()
            .map(|r| {
                let (lo, hi) = r.ratio_range;
                [
                    r.flavour.to_string(),
                    r.setup.name().to_string(),
                    format!("{:.1} ns/msg", r.ns),
                    format!("{:.2}x ({lo:.2}-{hi:.2})", r.ns / r.plain_ns),
                ]
            })
            .collect();
        print_grid(["flavour", "setup", "tell", "time vs plain"], &cells);

        for (flavour, fixtures) in &flavours {
            for fx in fixtures {
                if let Some((us, bytes)) = fx.looks(&flavour.rt, sizes.looks) {
                    let size = bytes.map_or(String::new(), |b| {
                        format!("; the snapshot document (HTTP answer) is {b} bytes")
                    });
                    println!(
                        "{} {}: a look over {} services took {:.0} us (median of {}){size}",
                        flavour.name,
                        fx.setup.name(),
                        sizes.tree + 2,
                        us,
                        sizes.looks,
                    );
                }
            }
        }
    }

    for (flavour, fixtures) in flavours {
        for fx in fixtures {
            fx.shutdown(&flavour.rt);
        }
    }
}
