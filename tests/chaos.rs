//! Issue 11's chaos battery: a tree of supervisors (every strategy, every restart policy, some
//! intensities low enough to escalate, some backoffs, a third of them built by a factory) over
//! about 150 workers (some with mailboxes of 2 to 8 slots), 16 clients telling and asking random
//! workers by address, and three chaos tasks that inject poison messages, make workers stop or
//! crash themselves, crash supervisors and workers, stop, restart and discard subtrees (awaited,
//! or fire-and-forget with `send_lifecycle`). Every message carries a ticket (client, seq,
//! kind) and a journal records what became of it. Then the promises of ARCHITECTURE.md ("What
//! modo promises about delivery", the supervisor's strategies and policies) are checked against
//! the journal, the System's dead-letter book, the runtime's own tracing events and the
//! registry's graph.
//!
//! The seed comes from `MODO_SEED` (decimal or `0x` hex; a fixed default otherwise) and is
//! printed first: rerun a failure with `MODO_SEED=<n> cargo test --test chaos`. The generator
//! is an inline splitmix64, one stream per task, so the operations are exactly reproducible;
//! the paused variant (current-thread runtime, paused clock) replays the whole run,
//! interleavings included (a test runs one seed twice and compares digests). The multi-thread
//! variant (2 workers, real time) adds true races and is only bounded. Each run prints a
//! summary: the fate of every message by kind, the chaos operations and their results, the
//! longest each took, the supervisors' decisions, what is live at the end.
//!
//! # How each message's fate is observed
//! - A ticket is registered before it is sent. Its message carries a drop guard: the handler
//!   disarms it on entry; a sender handed its message back (`SendError::into_inner`) disarms
//!   it. A guard dropped armed is a message that was never handled and not handed back: it was
//!   refused by an `ask` (dropped in the asker's own task) or dead-lettered (dropped by a
//!   mailbox drain, in the service's task or, after a send raced with the close, in a
//!   sender's task).
//! - The handler records its entry, and its completion as its last synchronous step before
//!   returning (so a completed ask has sent its reply in the same poll). A handler that does not
//!   complete drops an in-flight guard: while unwinding (a poison panic) it records `panicked`,
//!   otherwise (a crash or a stop's bound abandoned the pending handler) `abandoned`.
//!
//! # What is checked (each item names the promise)
//! 1. Nothing hangs: every tell, ask and lifecycle call is bounded by [`OP_LIMIT`]; with the
//!    paused clock a hang shows as that timeout at once. After the chaos every service is
//!    running or stopped for good within that bound. The shutdown is bounded by
//!    [`SHUTDOWN_LIMIT`].
//! 2. Errors are typed: a `tell` fails only with `SendError` stopped and hands back the very
//!    message; `try_tell` only full or stopped; an `ask` only `Crashed` or `Stopped` (a
//!    `Timeout` would be a hang); `stop`, `restart`, `discard`, `send_lifecycle` only with the
//!    variants their docs name.
//! 3. Tells are accounted for exactly, per ticket: a tell that returned `Ok` was entered exactly
//!    once or dropped unhandled (a dead letter), never both, never neither; a tell handed back
//!    was neither. So `tells sent = handled + handed back + dead-lettered + lost with a crashed
//!    handler`, and a handler that did not complete is a poison message (panicked) or one that
//!    was pending (abandoned).
//! 4. Asks resolve consistently: `Ok(reply)` iff the handler completed (and the reply is the
//!    ticket's); entered but not completed gives `Crashed`; never entered gives `Stopped` or
//!    `Crashed`.
//! 5. Dead letters agree with the System's book, per service. Asks are envelopes too, so a
//!    worker's count is its dead tells plus its dead asks. A dead ask is an ask whose message
//!    was dropped unhandled; one dropped in the asker's own task was either refused at the send
//!    (not a dead letter) or, only with threads, drained by the asker itself after its send
//!    raced with the close (a dead letter). So, per worker,
//!    `dead tells + asks dropped elsewhere <= dead letters <= that + asks dropped in the
//!    asker's task`, and on the current-thread runtime (where a send cannot race with a close)
//!    the left side is an equality. The settling pings (untracked asks) widen the right side by
//!    those that failed `Stopped`/`Crashed`: such a ping may have been queued, then dropped as
//!    its worker ended. `addr.dead_letters()` equals the book's entry, the book's
//!    total is the sum of its entries, each dead letter was reported by a tracing event with
//!    its count (per service id), and a supervisor's count is at most the asks to it that
//!    failed `Stopped`/`Crashed` plus its children's asks that got no reply.
//! 6. No duplicates (a ticket entered twice) and per-sender order: for each client and each
//!    worker, the seqs the worker entered strictly increase.
//! 7. Restarts keep the mailbox: a worker that never stopped for good has no dead letters,
//!    every tell it got was entered, and no ask to it failed without its handler starting.
//! 8. Restart policies: every restart a supervisor logs is allowed by the child's policy (a
//!    crashed child is restarted unless temporary, a stopped one only if permanent).
//! 9. The graph matches the live tree once the chaos has stopped and everything settled: the
//!    live services (not terminated) are exactly the graph's nodes, each with the right
//!    parent, label, state and restart count, and each supervisor's children (asked) are its
//!    node's children, in order; the live actor tasks are exactly the live services.
//! 10. A crash under the `Crashing` supervisor fails the System: `shutdown` returns it. After
//!     shutdown, nothing is live, the graph is empty, and shutdown made no new dead letters
//!     (everything was flushed).
//!
//! A separate test spawns and stops a 64-service tree 50 times in one System and checks that
//! live actors, names, roots and the graph go back to zero each round, that every cell is
//! freed (weak handles), that every message of the round was resolved, and that the RSS at
//! round 50 is within a tolerance of round 10.
//!
//! What the battery found is reproduced, one minimal test per broken promise, in
//! tests/chaos_findings.rs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::Duration;

use modo::prelude::*;
use modo::supervisor::{Backoff, RestartPolicy};
use modo::{DeadLetters, WeakAddr};
use tokio::time::Instant;
use uuid::Uuid;

// ----- knobs ------------------------------------------------------------------------------

const DEFAULT_SEED: u64 = 0x6d6f_646f_0011;

/// The bound on every single operation (send, ask, lifecycle call, settle wait). Far above
/// anything the tree legitimately waits for: handlers dwell at most [`SLOW_DWELL`], backoffs
/// at most 16 ms, a worker's stop holds on to a handler at most [`WORKER_SHUTDOWN_TIMEOUT`], and
/// a supervisor's handlers wait only on its children's starts and stops (so the longest
/// operation of a passing run takes a few hundred milliseconds). With the paused clock, a wait
/// that would never end reaches it at once.
const OP_LIMIT: Duration = Duration::from_secs(20);

/// Once a hang has been seen the run fails anyway; every later wait is cut to this, so that a
/// failing run with real time ends in seconds instead of waiting [`OP_LIMIT`] on every operation
/// that touches the stuck part of the tree (their reports are marked as consequences).
const AFTER_A_HANG: Duration = Duration::from_millis(200);

/// Set by the first wait that reached [`OP_LIMIT`] in this battery (the tests run one at a time).
static HANG_SEEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The bound for the next wait: [`OP_LIMIT`], or [`AFTER_A_HANG`] once a hang was seen.
fn limit() -> Duration {
    if HANG_SEEN.load(std::sync::atomic::Ordering::SeqCst) {
        AFTER_A_HANG
    } else {
        OP_LIMIT
    }
}

/// `fut` bounded by [`limit`]; a timeout marks the battery as having seen a hang.
async fn bounded<F: Future>(fut: F) -> Result<F::Output, tokio::time::error::Elapsed> {
    let res = tokio::time::timeout(limit(), fut).await;
    if res.is_err() {
        HANG_SEEN.store(true, std::sync::atomic::Ordering::SeqCst);
    }
    res
}

/// The bound on `System::shutdown` after the chaos. A supervisor's own shutdown timeout is the
/// default 60 s: a stop held up by one shows as a breach of this bound.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(10);

/// A worker's `shutdown_timeout`: a handler still pending this long after a stop or restart
/// request is abandoned and the worker counts as crashed.
const WORKER_SHUTDOWN_TIMEOUT: Duration = Duration::from_millis(100);

/// A rare handler that outlives [`WORKER_SHUTDOWN_TIMEOUT`], to be abandoned by a stop.
const SLOW_DWELL: Duration = Duration::from_millis(250);

/// The battery's shape.
#[derive(Debug, Clone, Copy)]
struct Config {
    mids: usize,
    leaves_per_mid: usize,
    workers_per_leaf: usize,
    workers_per_mid: usize,
    crashing_workers: usize,
    clients: u16,
    ops_per_client: u32,
    chaos_tasks: u16,
    chaos_ops_per_task: u32,
}

/// 6 x (2 x 10 + 5) + 6 = 156 workers under 20 supervisors.
const FULL: Config = Config {
    mids: 6,
    leaves_per_mid: 2,
    workers_per_leaf: 10,
    workers_per_mid: 5,
    crashing_workers: 6,
    clients: 16,
    ops_per_client: 250,
    chaos_tasks: 3,
    chaos_ops_per_task: 70,
};

/// A smaller run for the replay test (it runs twice).
const SMALL: Config = Config {
    mids: 3,
    leaves_per_mid: 2,
    workers_per_leaf: 6,
    workers_per_mid: 3,
    crashing_workers: 3,
    clients: 16,
    ops_per_client: 80,
    chaos_tasks: 2,
    chaos_ops_per_task: 30,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Current-thread runtime, paused clock: fully replayable.
    Paused,
    /// Two worker threads, real time: races.
    Threads,
}

/// The tests in this file run one at a time: the RSS test must not see the others' memory,
/// and on 2 shared cores running them side by side gains nothing.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ----- seed and generator -----------------------------------------------------------------

/// The seed of this run: `MODO_SEED` if set (decimal or `0x` hex), else a fixed default.
fn seed() -> u64 {
    let seed = match std::env::var("MODO_SEED") {
        Ok(s) => {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            }
            .unwrap_or_else(|e| panic!("MODO_SEED={s:?} is not a u64: {e}"))
        }
        Err(_) => DEFAULT_SEED,
    };
    println!("MODO_SEED={seed}");
    seed
}

/// splitmix64: small, well mixed, exactly reproducible.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// An independent stream for task `n` (so each task's choices do not depend on how the
    /// others interleave).
    fn stream(seed: u64, n: u64) -> Rng {
        let mut r = Rng(seed ^ n.wrapping_mul(0xd6e8_feb8_6659_fd93));
        r.next();
        r
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Poison panics are expected by the hundred: keep them out of the test output.
fn quiet_poison() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !msg.starts_with("chaos poison") {
                default(info);
            }
        }));
    });
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ----- the runtime's own events -------------------------------------------------------------

/// What the runtime reported through `tracing` during one battery (the tests run one at a
/// time): supervision decisions by kind, escalations past an intensity (WARN and above), and
/// dead letters per service id (each event carries its count in `modo_count`, whatever its
/// level).
#[derive(Debug, Default)]
struct Events {
    supervision: BTreeMap<&'static str, u64>,
    /// Each restart a supervisor decided for a child: (kind, the child's label).
    restarts: Vec<(&'static str, String)>,
    dead_letters: BTreeMap<String, u64>,
}

static EVENTS: Mutex<Events> = Mutex::new(Events {
    supervision: BTreeMap::new(),
    restarts: Vec::new(),
    dead_letters: BTreeMap::new(),
});

const RESTARTED_CRASHED: &str = "restarted a crashed child";
const RESTARTED_STOPPED: &str = "restarted a stopped child";

/// The phrases of the supervisor's log lines (src/supervisor/mod.rs), most specific first.
const SUPERVISION: &[(&str, &str)] = &[
    ("escalating", "escalated"),
    ("restarting stopped permanent", RESTARTED_STOPPED),
    ("not restarting temporary", "let a temporary child go"),
    ("giving up on all services", "forfeited all"),
    ("giving up on crashed", "forfeited one"),
    ("restart failed", "restart failed"),
    ("restarting", RESTARTED_CRASHED),
    ("failing the system", "failed the system"),
];

#[derive(Default)]
struct Fields {
    message: String,
    id: Option<String>,
    child: Option<String>,
    count: Option<u64>,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "modo_id" => self.id = Some(format!("{value:?}")),
            "modo_child" => self.child = Some(format!("{value:?}")),
            _ => {}
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "modo_count" {
            self.count = Some(value);
        }
    }
}

struct EventCounter;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for EventCounter {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut f = Fields::default();
        event.record(&mut f);
        let mut events = lock(&EVENTS);
        if f.message.contains("moved to dead letters")
            && let (Some(id), Some(count)) = (f.id, f.count)
        {
            *events.dead_letters.entry(id).or_default() += count;
            return;
        }
        if let Some((_, kind)) = SUPERVISION.iter().find(|(p, _)| f.message.contains(p)) {
            *events.supervision.entry(kind).or_default() += 1;
            if (*kind == RESTARTED_CRASHED || *kind == RESTARTED_STOPPED)
                && let Some(child) = f.child
            {
                events.restarts.push((kind, child));
            }
        }
    }
}

/// Installs the counter (once per process) and clears what an earlier battery counted.
fn count_events() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt;
        let subscriber = tracing_subscriber::registry()
            // WARN and above, and the DEBUG events of the dead letters (only the first of
            // them are logged at INFO; every one is an event).
            .with(tracing_subscriber::filter::filter_fn(|m| {
                *m.level() <= tracing::Level::WARN || m.target() == "modo"
            }))
            .with(EventCounter);
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber");
    });
    *lock(&EVENTS) = Events::default();
}

// ----- the journal --------------------------------------------------------------------------

/// A ticket: which client sent it, and its place in that client's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key {
    client: u16,
    seq: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Tell,
    TryTell,
    Ask,
}

/// What a message's handler does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Action {
    /// Returns at once.
    Plain,
    /// Sleeps this long first (pending: a crash or a stop's bound can abandon it).
    Dwell(Duration),
    /// Asks its own supervisor for its children first (pending; the parent may be stopping or
    /// restarting, which is what ended in a hang before issue 11's fixes).
    AskParent,
    /// Panics (the chaos's poison).
    Poison,
    /// Stops itself (`ctx.stop()`), then returns.
    StopSelf,
    /// Crashes itself (`ctx.crash`), then returns.
    CrashSelf,
}

impl Action {
    /// Whether the handler can be pending, so a crash or a stop's bound can abandon it.
    fn waits(self) -> bool {
        matches!(self, Action::Dwell(_) | Action::AskParent)
    }
}

/// What the sender saw.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Outcome {
    /// `tell`/`try_tell` returned `Ok`.
    Queued,
    /// `SendError` stopped, with the very message handed back.
    HandedBack,
    /// `try_tell`'s `SendError` full, with the very message handed back.
    Full,
    /// The ask's reply.
    Replied(u32),
    Crashed,
    Stopped,
    /// The bound ran out.
    Hung,
    /// Any other error: a broken promise.
    Untyped(String),
}

#[derive(Debug, Clone)]
struct Rec {
    worker: usize,
    kind: Kind,
    action: Action,
    entered: u32,
    completed: u32,
    panicked: u32,
    abandoned: u32,
    /// The message was dropped unhandled in the sender's own task.
    dropped_own: u32,
    /// ... in another task (a mailbox drain: a dead letter).
    dropped_elsewhere: u32,
    outcome: Option<Outcome>,
}

#[derive(Default)]
struct JournalInner {
    recs: HashMap<Key, Rec>,
    /// Per supervisor id: asks from `AskParent` handlers that got no reply (failed, or
    /// abandoned with their handler). Each can leave an envelope that becomes a dead letter.
    unanswered_parent_asks: HashMap<Uuid, u64>,
    /// Per worker index: the tickets it entered, in order.
    entries: BTreeMap<usize, Vec<Key>>,
}

#[derive(Default)]
struct Journal(Mutex<JournalInner>);

impl Journal {
    fn register(&self, key: Key, worker: usize, kind: Kind, action: Action) {
        let rec = Rec {
            worker,
            kind,
            action,
            entered: 0,
            completed: 0,
            panicked: 0,
            abandoned: 0,
            dropped_own: 0,
            dropped_elsewhere: 0,
            outcome: None,
        };
        assert!(
            lock(&self.0).recs.insert(key, rec).is_none(),
            "ticket {key:?} reused"
        );
    }

    fn with(&self, key: Key, f: impl FnOnce(&mut Rec)) {
        let mut inner = lock(&self.0);
        match inner.recs.get_mut(&key) {
            Some(rec) => f(rec),
            None => panic!("unregistered ticket {key:?}"),
        }
    }

    fn enter(&self, worker: usize, key: Key) {
        let mut inner = lock(&self.0);
        inner.entries.entry(worker).or_default().push(key);
        if let Some(rec) = inner.recs.get_mut(&key) {
            rec.entered += 1;
        }
    }

    fn outcome(&self, key: Key, outcome: Outcome) {
        self.with(key, |r| r.outcome = Some(outcome));
    }
}

/// Rides in every message: records a drop of a message never handled nor handed back.
struct Guard {
    journal: Arc<Journal>,
    key: Key,
    sender: Option<tokio::task::Id>,
    armed: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.armed {
            let own = self.sender.is_some() && tokio::task::try_id() == self.sender;
            self.journal.with(self.key, |r| {
                if own {
                    r.dropped_own += 1;
                } else {
                    r.dropped_elsewhere += 1;
                }
            });
        }
    }
}

/// Counts an ask to the parent that got no reply, however it ended (dropped with its handler
/// too).
struct ParentAsk {
    journal: Arc<Journal>,
    parent: Uuid,
    answered: bool,
}

impl Drop for ParentAsk {
    fn drop(&mut self) {
        if !self.answered {
            *lock(&self.journal.0)
                .unanswered_parent_asks
                .entry(self.parent)
                .or_default() += 1;
        }
    }
}

/// Lives in a handler from entry to completion: records how a handler that did not complete
/// ended.
struct InFlight {
    journal: Arc<Journal>,
    key: Key,
    done: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.done {
            let panicking = std::thread::panicking();
            self.journal.with(self.key, |r| {
                if panicking {
                    r.panicked += 1;
                } else {
                    r.abandoned += 1;
                }
            });
        }
    }
}

// ----- the worker ---------------------------------------------------------------------------

/// One ticketed message, told or asked. The reply is the ticket's seq.
struct Job {
    key: Key,
    action: Action,
    guard: Guard,
}

impl Job {
    fn new(journal: &Arc<Journal>, key: Key, action: Action) -> Job {
        Job {
            key,
            action,
            guard: Guard {
                journal: journal.clone(),
                key,
                sender: tokio::task::try_id(),
                armed: true,
            },
        }
    }
}

/// Answered once everything queued before it was handled.
struct Ping;

/// Panics, untracked (the finale under the `Crashing` supervisor).
struct Boom;

/// A worker: a fresh instance per restart (built by a factory), all sharing the journal.
struct Worker {
    index: usize,
    journal: Arc<Journal>,
}

impl Service for Worker {
    fn label(&self) -> std::borrow::Cow<'static, str> {
        format!("w{}", self.index).into()
    }

    fn shutdown_timeout(&self) -> Duration {
        WORKER_SHUTDOWN_TIMEOUT
    }
}

impl Handler<Job> for Worker {
    type Reply = u32;

    async fn handle(&mut self, mut job: Job, ctx: &mut Context<Self>) -> u32 {
        job.guard.armed = false;
        let key = job.key;
        self.journal.enter(self.index, key);
        let mut flight = InFlight {
            journal: self.journal.clone(),
            key,
            done: false,
        };
        match job.action {
            Action::Plain => {}
            Action::Dwell(d) => tokio::time::sleep(d).await,
            Action::AskParent => {
                let parent = ctx
                    .myself()
                    .service_ref()
                    .parent()
                    .and_then(|p| p.downcast::<Supervisor>());
                if let Some(parent) = parent {
                    // Any answer will do: a reply, or the parent's end.
                    let mut pending = ParentAsk {
                        journal: self.journal.clone(),
                        parent: parent.id(),
                        answered: false,
                    };
                    pending.answered = parent.children().await.is_ok();
                }
            }
            Action::Poison => panic!("chaos poison {key:?}"),
            Action::StopSelf => ctx.stop(),
            Action::CrashSelf => ctx.crash(CrashReason::msg(format!("{key:?} crashes itself"))),
        }
        // The last synchronous step: the envelope replies in this same poll.
        flight.done = true;
        self.journal.with(key, |r| r.completed += 1);
        key.seq
    }
}

impl Handler<Ping> for Worker {
    type Reply = ();
    async fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) {}
}

impl Handler<Boom> for Worker {
    type Reply = ();
    async fn handle(&mut self, _: Boom, _ctx: &mut Context<Self>) {
        panic!("chaos poison: the finale");
    }
}

fn worker_spec(
    index: usize,
    journal: &Arc<Journal>,
    capacity: Option<usize>,
    prefix: &str,
) -> ServiceSpec<Worker> {
    let journal = journal.clone();
    let spec = ServiceSpec::from_factory(move || Worker {
        index,
        journal: journal.clone(),
    })
    .name(format!("{prefix}w{index}"));
    match capacity {
        Some(c) => spec.mailbox_capacity(c),
        None => spec,
    }
}

// ----- the tree -----------------------------------------------------------------------------

struct SupNode {
    addr: Addr<Supervisor>,
    label: String,
    parent: Option<usize>,
    policy: RestartPolicy,
    /// Built by a factory: a fresh instance on every restart.
    factory: bool,
    crashing: bool,
}

#[derive(Clone)]
struct WorkerNode {
    addr: Addr<Worker>,
    label: String,
    parent: usize,
    policy: RestartPolicy,
    /// Under the `Crashing` supervisor: no poison, no crash, no slow handler, no ask to its
    /// parent (any of them could crash it, which fails the whole System before the end).
    crashing: bool,
}

struct Tree {
    sups: Vec<SupNode>,
    workers: Vec<WorkerNode>,
}

impl Tree {
    fn crashing_sup(&self) -> Option<&SupNode> {
        self.sups.iter().find(|s| s.crashing)
    }

    /// Every service's label, restart policy (the root's is moot), and whether its supervisor
    /// is built by a factory.
    fn policies(&self) -> HashMap<String, (RestartPolicy, bool)> {
        let by_factory = |parent: Option<usize>| parent.is_some_and(|p| self.sups[p].factory);
        let sups = self
            .sups
            .iter()
            .map(|s| (s.label.clone(), (s.policy, by_factory(s.parent))));
        let workers = self
            .workers
            .iter()
            .map(|w| (w.label.clone(), (w.policy, by_factory(Some(w.parent)))));
        sups.chain(workers).collect()
    }
}

fn pick_policy(rng: &mut Rng) -> RestartPolicy {
    match rng.below(100) {
        0..75 => RestartPolicy::Permanent,
        75..88 => RestartPolicy::Transient,
        _ => RestartPolicy::Temporary,
    }
}

/// A supervisor's settings, so a factory can build it again on every restart.
#[derive(Debug, Clone)]
struct SupParams {
    label: String,
    strategy: Strategy,
    max_restarts: u32,
    backoff: Backoff,
}

impl SupParams {
    fn new(rng: &mut Rng, label: String, strategy: Strategy) -> SupParams {
        SupParams {
            label,
            strategy,
            max_restarts: rng.pick(&[3, 10, 100]),
            backoff: rng.pick(&[
                Backoff::None,
                Backoff::None,
                Backoff::Fixed(ms(2)),
                Backoff::Exponential {
                    base: ms(1),
                    max: ms(16),
                },
            ]),
        }
    }

    fn builder(&self) -> modo::supervisor::SupervisorBuilder {
        Supervisor::builder()
            .label(self.label.clone())
            .strategy(self.strategy)
            .max_restarts(self.max_restarts)
            .over(Duration::from_secs(1))
            .backoff(self.backoff)
    }
}

/// `n` strategies: `pool` repeated, shuffled by the seed (so every strategy of the pool is
/// used whenever `n` covers it).
fn strategies(rng: &mut Rng, n: usize, pool: &[Strategy]) -> Vec<Strategy> {
    let mut all: Vec<Strategy> = pool.iter().copied().cycle().take(n).collect();
    for i in (1..all.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        all.swap(i, j);
    }
    all
}

/// Mids never forfeit all their children at once (that would take a quarter of the tree).
const MID_STRATEGIES: &[Strategy] = &[
    Strategy::OneForOne,
    Strategy::OneForAll,
    Strategy::RestForOne,
    Strategy::ForfeitOneForOne,
    Strategy::OneForOne,
    Strategy::OneForAll,
];

const LEAF_STRATEGIES: &[Strategy] = &[
    Strategy::OneForOne,
    Strategy::OneForAll,
    Strategy::RestForOne,
    Strategy::ForfeitOneForOne,
    Strategy::ForfeitOneForAll,
    Strategy::OneForOne,
];

fn pick_capacity(rng: &mut Rng) -> Option<usize> {
    if rng.chance(40) {
        Some(2 + rng.below(7) as usize)
    } else {
        None
    }
}

/// Adds a supervisor under `parent`, built once (a value, reset by `on_init` on a restart) or,
/// one time in three, by a factory (a fresh instance on every restart, as
/// `SupervisorBuilder::child` builds its children).
async fn add_sup(
    tree: &mut Tree,
    parent: usize,
    rng: &mut Rng,
    params: SupParams,
    policy: RestartPolicy,
) -> usize {
    let factory = rng.chance(33);
    let parent_addr = &tree.sups[parent].addr;
    let label = params.label.clone();
    let addr = if factory {
        let spec = ServiceSpec::from_factory(move || params.builder().build());
        parent_addr.supervise_with(spec, policy).await
    } else {
        parent_addr
            .supervise_with(params.builder().build(), policy)
            .await
    }
    .expect("a supervisor starts");
    tree.sups.push(SupNode {
        addr,
        label,
        parent: Some(parent),
        policy,
        factory,
        crashing: false,
    });
    tree.sups.len() - 1
}

async fn add_worker(
    tree: &mut Tree,
    parent: usize,
    rng: &mut Rng,
    journal: &Arc<Journal>,
    crashing: bool,
) {
    let index = tree.workers.len();
    let spec = worker_spec(index, journal, pick_capacity(rng), "");
    let policy = if crashing {
        RestartPolicy::Permanent
    } else {
        pick_policy(rng)
    };
    let addr = tree.sups[parent]
        .addr
        .supervise_with(spec, policy)
        .await
        .expect("a worker starts");
    tree.workers.push(WorkerNode {
        label: format!("w{index}"),
        addr,
        parent,
        policy,
        crashing,
    });
}

/// Builds the tree: a root (one-for-one, an intensity it never reaches), `mids` supervisors
/// under it, each with `leaves_per_mid` leaf supervisors and `workers_per_mid` workers, each
/// leaf with `workers_per_leaf` workers; half the leaves get their workers from the builder
/// (found again by name), half through `supervise_with`. Plus a `Crashing` supervisor.
async fn build_tree(system: &System, rng: &mut Rng, journal: &Arc<Journal>, cfg: Config) -> Tree {
    let root = system
        .spawn(
            Supervisor::builder()
                .label("root")
                .max_restarts(1_000_000)
                .build(),
        )
        .await
        .expect("the root starts");
    let mut tree = Tree {
        sups: vec![SupNode {
            addr: root,
            label: "root".into(),
            parent: None,
            policy: RestartPolicy::Permanent,
            factory: false,
            crashing: false,
        }],
        workers: Vec::new(),
    };
    let mids = strategies(rng, cfg.mids, MID_STRATEGIES);
    let leaves = strategies(rng, cfg.mids * cfg.leaves_per_mid, LEAF_STRATEGIES);
    for (m, strategy) in mids.into_iter().enumerate() {
        let params = SupParams::new(rng, format!("m{m}"), strategy);
        let policy = pick_policy(rng);
        let mid = add_sup(&mut tree, 0, rng, params, policy).await;
        for l in 0..cfg.leaves_per_mid {
            let strategy = leaves[m * cfg.leaves_per_mid + l];
            let params = SupParams::new(rng, format!("l{m}.{l}"), strategy);
            let policy = pick_policy(rng);
            if rng.chance(50) {
                add_sup(&mut tree, mid, rng, params, policy).await;
                let leaf = tree.sups.len() - 1;
                for _ in 0..cfg.workers_per_leaf {
                    add_worker(&mut tree, leaf, rng, journal, false).await;
                }
                continue;
            }
            // The workers come with the builder (a value: its children are added at its first
            // start only); found again by name.
            let mut builder = params.builder();
            let first = tree.workers.len();
            let mut policies = Vec::new();
            for i in first..first + cfg.workers_per_leaf {
                let spec = worker_spec(i, journal, pick_capacity(rng), "");
                let policy = pick_policy(rng);
                policies.push(policy);
                builder = builder.child_spec(spec, policy);
            }
            let addr = tree.sups[mid]
                .addr
                .supervise_with(builder.build(), policy)
                .await
                .expect("a leaf supervisor starts");
            tree.sups.push(SupNode {
                addr,
                label: params.label,
                parent: Some(mid),
                policy,
                factory: false,
                crashing: false,
            });
            let leaf = tree.sups.len() - 1;
            for (i, policy) in (first..).zip(policies) {
                let addr = system
                    .lookup::<Worker>(&format!("w{i}"))
                    .expect("a builder's worker is registered by name");
                tree.workers.push(WorkerNode {
                    label: format!("w{i}"),
                    addr,
                    parent: leaf,
                    policy,
                    crashing: false,
                });
            }
        }
        for _ in 0..cfg.workers_per_mid {
            add_worker(&mut tree, mid, rng, journal, false).await;
        }
    }

    let crashing = Supervisor::builder()
        .label("crashing")
        .strategy(Strategy::Crashing)
        .build();
    let addr = tree.sups[0]
        .addr
        .supervise_with(crashing, RestartPolicy::Permanent)
        .await
        .expect("the crashing supervisor starts");
    tree.sups.push(SupNode {
        addr,
        label: "crashing".into(),
        parent: Some(0),
        policy: RestartPolicy::Permanent,
        factory: false,
        crashing: true,
    });
    let crashing = tree.sups.len() - 1;
    for _ in 0..cfg.crashing_workers {
        add_worker(&mut tree, crashing, rng, journal, true).await;
    }
    tree
}

// ----- sending ------------------------------------------------------------------------------

/// A message handed back: by a `tell` (it can only mean "stopped") or a `try_tell` (full or
/// stopped).
fn handed_back(mut job: Job, full: bool, key: Key) -> Outcome {
    job.guard.armed = false;
    if job.key != key {
        return Outcome::Untyped(format!("handed back {:?}, sent {key:?}", job.key));
    }
    if full {
        Outcome::Full
    } else {
        Outcome::HandedBack
    }
}

fn ask_outcome(res: Result<Result<u32, Error>, tokio::time::error::Elapsed>) -> Outcome {
    match res {
        Err(_) => Outcome::Hung,
        Ok(Ok(reply)) => Outcome::Replied(reply),
        Ok(Err(Error::Crashed { .. })) => Outcome::Crashed,
        Ok(Err(Error::Stopped { .. })) => Outcome::Stopped,
        Ok(Err(e)) => Outcome::Untyped(format!("{e:?}")),
    }
}

/// Sends `job` by `kind`, bounded by [`OP_LIMIT`]; what the sender saw.
async fn send(addr: &Addr<Worker>, kind: Kind, job: Job) -> Outcome {
    let key = job.key;
    match kind {
        Kind::Tell => match bounded(addr.tell(job)).await {
            Err(_) => Outcome::Hung,
            Ok(Ok(())) => Outcome::Queued,
            Ok(Err(e)) => handed_back(e.into_inner(), false, key),
        },
        Kind::TryTell => match addr.try_tell(job) {
            Ok(()) => Outcome::Queued,
            Err(e) => {
                let full = e.is_full();
                handed_back(e.into_inner(), full, key)
            }
        },
        Kind::Ask => ask_outcome(bounded(addr.ask(job)).await),
    }
}

/// One client: `ops` messages to random workers, tells and asks mixed; some handlers dwell
/// or ask their supervisor (so a crash or a stop can catch them in flight), rarely one
/// outlives a stop's bound.
async fn client(
    id: u16,
    mut rng: Rng,
    workers: Arc<Vec<WorkerNode>>,
    journal: Arc<Journal>,
    ops: u32,
) {
    for seq in 0..ops {
        let w = rng.below(workers.len() as u64) as usize;
        let kind = match rng.below(100) {
            0..65 => Kind::Tell,
            65..70 => Kind::TryTell,
            _ => Kind::Ask,
        };
        let calm = workers[w].crashing;
        let action = match rng.below(1_000) {
            0..3 if !calm => Action::Dwell(SLOW_DWELL),
            0..90 => Action::Dwell(ms(1 + rng.below(3))),
            90..120 if !calm => Action::AskParent,
            _ => Action::Plain,
        };
        let key = Key { client: id, seq };
        journal.register(key, w, kind, action);
        let outcome = send(&workers[w].addr, kind, Job::new(&journal, key, action)).await;
        journal.outcome(key, outcome);
        match rng.below(100) {
            0..40 => tokio::time::sleep(ms(1 + rng.below(3))).await,
            40..70 => tokio::task::yield_now().await,
            _ => {}
        }
    }
}

// ----- chaos --------------------------------------------------------------------------------

/// What the chaos tasks did and saw: per operation, per result, and the longest each took.
#[derive(Default, Debug)]
struct ChaosLog {
    results: BTreeMap<&'static str, BTreeMap<String, u32>>,
    longest: BTreeMap<&'static str, Duration>,
    violations: Vec<String>,
    /// Per supervisor index: asks to it that failed `Stopped`/`Crashed` (bounds its dead letters).
    failed_sup_asks: BTreeMap<usize, u64>,
    /// Per worker index: the settling pings that failed `Stopped`/`Crashed`. Such a ping may have
    /// been queued, then dropped unhandled as its worker ended: a dead letter with no ticket.
    failed_pings: BTreeMap<usize, u64>,
}

impl ChaosLog {
    fn note(&mut self, op: &'static str, result: &str) {
        *self
            .results
            .entry(op)
            .or_default()
            .entry(result.to_owned())
            .or_default() += 1;
    }

    fn took(&mut self, op: &'static str, d: Duration) {
        let longest = self.longest.entry(op).or_default();
        *longest = (*longest).max(d);
    }

    fn merge(&mut self, other: ChaosLog) {
        for (op, results) in other.results {
            for (result, n) in results {
                *self
                    .results
                    .entry(op)
                    .or_default()
                    .entry(result)
                    .or_default() += n;
            }
        }
        for (op, d) in other.longest {
            self.took(op, d);
        }
        self.violations.extend(other.violations);
        for (i, n) in other.failed_sup_asks {
            *self.failed_sup_asks.entry(i).or_default() += n;
        }
        for (i, n) in other.failed_pings {
            *self.failed_pings.entry(i).or_default() += n;
        }
    }
}

fn variant(e: &Error) -> &'static str {
    match e {
        Error::Stopped { .. } => "Stopped",
        Error::Crashed { .. } => "Crashed",
        Error::Timeout { .. } => "Timeout",
        Error::MailboxFull { .. } => "MailboxFull",
        Error::HookFailed { .. } => "HookFailed",
        Error::TaskFailed { .. } => "TaskFailed",
        Error::WouldDeadlock { .. } => "WouldDeadlock",
        Error::MaxRestartsExceeded { .. } => "MaxRestartsExceeded",
        _ => "other",
    }
}

/// Runs a lifecycle call bounded by [`OP_LIMIT`]; notes its result, how long it took, and
/// whether the docs allow its error.
async fn lifecycle_op(
    log: &mut ChaosLog,
    op: &'static str,
    target: &str,
    allowed: &[&str],
    fut: impl Future<Output = Result<(), Error>>,
) -> Result<(), Error> {
    let start = Instant::now();
    let bound = limit();
    let res = bounded(fut).await;
    log.took(op, start.elapsed());
    match res {
        Err(_) => {
            log.note(op, "HUNG");
            log.violations
                .push(format!("{op} of {target} did not return within {bound:?}"));
            Ok(())
        }
        Ok(Ok(())) => {
            log.note(op, "Ok");
            Ok(())
        }
        Ok(Err(e)) => {
            let v = variant(&e);
            log.note(op, v);
            if !allowed.contains(&v) {
                log.violations.push(format!(
                    "{op} of {target} failed with an undocumented {e:?}"
                ));
            }
            Err(e)
        }
    }
}

/// `stop()`: its docs name `HookFailed` and `Crashed` (a stop hook failed or panicked).
const STOP_ERRORS: &[&str] = &["HookFailed", "Crashed"];
/// `restart()` and `discard()`: as start and stop, plus the target's own end (`Stopped`).
const RESTART_ERRORS: &[&str] = &["HookFailed", "Crashed", "Stopped"];
/// `send_lifecycle`: only `Stopped` (its docs), which reads a crashed end as `Crashed`.
const SEND_LIFECYCLE_ERRORS: &[&str] = &["Stopped", "Crashed"];

/// Sends a ticketed message from a chaos task to worker `w` and notes what the sender saw.
async fn chaos_message(
    log: &mut ChaosLog,
    journal: &Arc<Journal>,
    key: Key,
    workers: &[WorkerNode],
    w: usize,
    kind: Kind,
    action: Action,
) {
    let op = match (action, kind) {
        (Action::Poison, Kind::Ask) => "poison-ask",
        (Action::Poison, _) => "poison-tell",
        (Action::StopSelf, _) => "stop-self",
        (Action::CrashSelf, _) => "crash-self",
        _ => "message",
    };
    journal.register(key, w, kind, action);
    let start = Instant::now();
    let outcome = send(&workers[w].addr, kind, Job::new(journal, key, action)).await;
    log.took(op, start.elapsed());
    let shown = match &outcome {
        Outcome::Replied(_) => "Replied".to_owned(),
        other => format!("{other:?}"),
    };
    log.note(op, &shown);
    journal.outcome(key, outcome);
}

/// A chaos task: `ops` random disruptions, paced so they spread over the clients' run. Several
/// run at once, so lifecycle requests overlap.
async fn chaos(
    id: u16,
    mut rng: Rng,
    tree: Arc<Tree>,
    journal: Arc<Journal>,
    ops: u32,
) -> ChaosLog {
    let mut log = ChaosLog::default();
    let workers = &tree.workers;
    let sups = &tree.sups;
    let mut seq = 0u32;
    let mut key = || {
        seq += 1;
        Key { client: id, seq }
    };
    // Workers whose crash would fail the System before the end: none of those.
    let fragile: Vec<usize> = (0..workers.len())
        .filter(|&w| !workers[w].crashing)
        .collect();
    for _ in 0..ops {
        tokio::time::sleep(ms(rng.below(8))).await;
        let w = rng.below(workers.len() as u64) as usize;
        let f = rng.pick(&fragile);
        let s = 1 + rng.below(sups.len() as u64 - 1) as usize; // never the root
        let kind = if rng.chance(70) {
            Kind::Tell
        } else {
            Kind::Ask
        };
        match rng.below(100) {
            0..20 => {
                let poison = Action::Poison;
                chaos_message(&mut log, &journal, key(), workers, f, kind, poison).await;
            }
            20..24 => {
                let stop = Action::StopSelf;
                chaos_message(&mut log, &journal, key(), workers, w, kind, stop).await;
            }
            24..27 => {
                let crash = Action::CrashSelf;
                chaos_message(&mut log, &journal, key(), workers, f, kind, crash).await;
            }
            27..35 => {
                log.note("crash-sup", "sent");
                sups[s]
                    .addr
                    .crash(CrashReason::msg(format!("chaos crashes {}", sups[s].label)));
            }
            35..41 => {
                log.note("crash-worker", "sent");
                workers[f].addr.crash(CrashReason::msg(format!(
                    "chaos crashes {}",
                    workers[f].label
                )));
            }
            41..49 => {
                let _ = lifecycle_op(
                    &mut log,
                    "stop-worker",
                    &workers[w].label,
                    STOP_ERRORS,
                    workers[w].addr.stop(),
                )
                .await;
            }
            49..57 => {
                let _ = lifecycle_op(
                    &mut log,
                    "restart-worker",
                    &workers[w].label,
                    RESTART_ERRORS,
                    workers[w].addr.restart(),
                )
                .await;
            }
            57..61 => {
                let _ = lifecycle_op(
                    &mut log,
                    "stop-sup",
                    &sups[s].label,
                    STOP_ERRORS,
                    sups[s].addr.stop(),
                )
                .await;
            }
            61..67 => {
                let _ = lifecycle_op(
                    &mut log,
                    "restart-sup",
                    &sups[s].label,
                    RESTART_ERRORS,
                    sups[s].addr.restart(),
                )
                .await;
            }
            67..77 => {
                // Fire and forget: these overlap with everything else.
                let (target, label) = if rng.chance(50) {
                    (workers[w].addr.service_ref(), &workers[w].label)
                } else {
                    (sups[s].addr.service_ref(), &sups[s].label)
                };
                let request = match rng.below(3) {
                    0 => Lifecycle::Restart,
                    1 => Lifecycle::Stop,
                    _ => Lifecycle::Start,
                };
                let op = match request {
                    Lifecycle::Restart => "send-restart",
                    Lifecycle::Stop => "send-stop",
                    _ => "send-start",
                };
                let res = target.send_lifecycle(request);
                let _ =
                    lifecycle_op(&mut log, op, label, SEND_LIFECYCLE_ERRORS, async { res }).await;
            }
            77..81 => {
                let parent = workers[w].parent;
                let res = lifecycle_op(
                    &mut log,
                    "discard-worker",
                    &workers[w].label,
                    RESTART_ERRORS,
                    sups[parent].addr.discard(&workers[w].addr.service_ref()),
                )
                .await;
                if let Err(e) = res
                    && (e.is_stopped() || e.is_crashed())
                {
                    *log.failed_sup_asks.entry(parent).or_default() += 1;
                }
            }
            81..83 if !sups[s].crashing => {
                let parent = sups[s].parent.expect("not the root");
                let res = lifecycle_op(
                    &mut log,
                    "discard-sup",
                    &sups[s].label,
                    RESTART_ERRORS,
                    sups[parent].addr.discard(&sups[s].addr.service_ref()),
                )
                .await;
                if let Err(e) = res
                    && (e.is_stopped() || e.is_crashed())
                {
                    *log.failed_sup_asks.entry(parent).or_default() += 1;
                }
            }
            _ => {
                log.note("pause", "slept");
                tokio::time::sleep(ms(5 + rng.below(15))).await;
            }
        }
    }
    log
}

// ----- settling and the graph -----------------------------------------------------------------

/// Every known service: handle, label, expected parent id.
struct Known {
    sref: ServiceRef,
    label: String,
    parent: Option<Uuid>,
    sup: Option<usize>,
}

fn known(tree: &Tree) -> Vec<Known> {
    let mut all = Vec::new();
    for (i, s) in tree.sups.iter().enumerate() {
        all.push(Known {
            sref: s.addr.service_ref(),
            label: s.label.clone(),
            parent: s.parent.map(|p| tree.sups[p].addr.id()),
            sup: Some(i),
        });
    }
    for w in &tree.workers {
        all.push(Known {
            sref: w.addr.service_ref(),
            label: w.label.clone(),
            parent: Some(tree.sups[w.parent].addr.id()),
            sup: None,
        });
    }
    all
}

type Snapshot = Vec<(bool, ServiceState, u32)>;

fn snapshot(all: &[Known]) -> Snapshot {
    all.iter()
        .map(|k| {
            (
                k.sref.is_terminated(),
                k.sref.state(),
                k.sref.restart_count(),
            )
        })
        .collect()
}

/// Waits until every service is running or stopped for good, and a whole pass (each live
/// supervisor asked for its children: its notices are served first; each live worker pinged:
/// its mailbox is drained) changes nothing. Bounded: 10 passes, each wait by [`OP_LIMIT`].
async fn settle(tree: &Tree, log: &mut ChaosLog) -> Result<u32, String> {
    let all = known(tree);
    for pass in 1..=10 {
        let before = snapshot(&all);
        for k in &all {
            let bound = limit();
            let waited = bounded(
                k.sref
                    .wait_until(|s| s.state() == ServiceState::Running || s.is_terminated()),
            )
            .await;
            if waited.is_err() {
                return Err(format!(
                    "{} neither running nor stopped for good {bound:?} after the chaos: {:?}, restarts {}",
                    k.label,
                    k.sref.state(),
                    k.sref.restart_count()
                ));
            }
        }
        for (i, s) in tree.sups.iter().enumerate() {
            if s.addr.is_terminated() {
                continue;
            }
            match bounded(s.addr.children()).await {
                Err(_) => return Err(format!("{} did not answer `children` in time", s.label)),
                Ok(Err(e)) if e.is_stopped() || e.is_crashed() => {
                    *log.failed_sup_asks.entry(i).or_default() += 1;
                }
                Ok(Err(e)) => return Err(format!("{}: `children` failed with {e:?}", s.label)),
                Ok(Ok(_)) => {}
            }
        }
        for (i, w) in tree.workers.iter().enumerate() {
            if w.addr.is_terminated() {
                continue;
            }
            match bounded(w.addr.ask(Ping)).await {
                Err(_) => return Err(format!("{} did not answer a ping in time", w.label)),
                Ok(Err(e)) if e.is_stopped() || e.is_crashed() => {
                    *log.failed_pings.entry(i).or_default() += 1;
                }
                Ok(Err(e)) => return Err(format!("{}: a ping failed with {e:?}", w.label)),
                Ok(Ok(())) => {}
            }
        }
        let after = snapshot(&all);
        let steady = after
            .iter()
            .all(|(term, state, _)| *term || *state == ServiceState::Running);
        if before == after && steady {
            return Ok(pass);
        }
    }
    Err("the tree did not settle in 10 passes".into())
}

/// Waits (bounded: yields, then [`OP_LIMIT`]) until exactly `n` actor tasks are alive: the
/// tasks of services stopped for good have ended (they report their removal first).
async fn live_actors_become(system: &System, n: usize) -> Result<(), String> {
    let wait = async {
        while system.live_actors() != n {
            tokio::task::yield_now().await;
        }
    };
    bounded(wait).await.map_err(|_| {
        format!(
            "{} actor tasks alive, {n} services not stopped for good",
            system.live_actors()
        )
    })
}

/// The registry's graph against the live tree.
async fn check_graph(system: &System, tree: &Tree, v: &mut Vec<String>) -> usize {
    let all = known(tree);
    let live: HashMap<Uuid, &Known> = all
        .iter()
        .filter(|k| !k.sref.is_terminated())
        .map(|k| (k.sref.id(), k))
        .collect();
    let graph = system.registry().graph().await;
    for node in graph.nodes() {
        let Some(k) = live.get(&node.id) else {
            v.push(format!(
                "graph has {} ({:?}), which is not a live service",
                node.label, node.state
            ));
            continue;
        };
        if node.label != k.label {
            v.push(format!("graph labels {} as {}", k.label, node.label));
        }
        if node.parent != k.parent {
            v.push(format!(
                "graph: {} has parent {:?}, expected {:?}",
                k.label, node.parent, k.parent
            ));
        }
        if k.sref.parent().map(|p| p.id()) != k.parent {
            v.push(format!(
                "{}'s own parent handle is not its supervisor",
                k.label
            ));
        }
        if node.state != k.sref.state() || node.restart_count != k.sref.restart_count() {
            v.push(format!(
                "graph: {} is {:?} after {} restarts, the service {:?} after {}",
                k.label,
                node.state,
                node.restart_count,
                k.sref.state(),
                k.sref.restart_count()
            ));
        }
        let expected_children: Vec<Uuid> = all
            .iter()
            .filter(|c| c.parent == Some(node.id) && live.contains_key(&c.sref.id()))
            .map(|c| c.sref.id())
            .collect();
        let mut graph_children = node.children.clone();
        let mut sorted_expected = expected_children.clone();
        graph_children.sort();
        sorted_expected.sort();
        if graph_children != sorted_expected {
            v.push(format!(
                "graph: {} has {} children, {} live ones expected",
                k.label,
                node.children.len(),
                expected_children.len()
            ));
        }
        if let Some(i) = k.sup {
            match bounded(tree.sups[i].addr.children()).await {
                Ok(Ok(children)) => {
                    let ids: Vec<Uuid> = children.iter().map(|c| c.id()).collect();
                    if ids != node.children {
                        v.push(format!(
                            "{} lists {} children, its graph node {} (or in another order)",
                            k.label,
                            ids.len(),
                            node.children.len()
                        ));
                    }
                }
                other => v.push(format!(
                    "{}: `children` gave {:?}",
                    k.label,
                    other.map(|r| r.map(|c| c.len()))
                )),
            }
        }
    }
    for (id, k) in &live {
        if graph.node(*id).is_none() {
            v.push(format!(
                "live service {} ({:?}) is missing from the graph",
                k.label,
                k.sref.state()
            ));
        }
    }
    live.len()
}

// ----- the accounting -----------------------------------------------------------------------

#[derive(Debug, Default)]
struct Tally {
    tells: u64,
    handled: u64,
    handed_back: u64,
    full: u64,
    dead_tells: u64,
    panicked: u64,
    abandoned: u64,
    asks: u64,
    replied: u64,
    ask_crashed: u64,
    ask_stopped: u64,
    asks_dropped_elsewhere: u64,
    asks_dropped_own: u64,
    dead_letters: u64,
}

/// Checks every ticket (promises 2 to 7), returns the counts; violations go to `v`.
fn account(
    journal: &Journal,
    tree: &Tree,
    dead: &DeadLetters,
    log: &ChaosLog,
    mode: Mode,
    v: &mut Vec<String>,
) -> Tally {
    let inner = lock(&journal.0);
    let mut t = Tally::default();
    // Per worker: dead tells, asks dropped elsewhere, asks dropped in the asker's task.
    let mut per_worker: Vec<(u64, u64, u64)> = vec![(0, 0, 0); tree.workers.len()];
    let mut keys: Vec<&Key> = inner.recs.keys().collect();
    keys.sort();
    for key in keys {
        let r = &inner.recs[key];
        let who = format!("{key:?} ({:?} to {})", r.kind, tree.workers[r.worker].label);
        let dropped = r.dropped_own + r.dropped_elsewhere;
        let Some(outcome) = &r.outcome else {
            v.push(format!("{who}: its sender never finished"));
            continue;
        };
        if r.entered > 1 {
            v.push(format!("{who}: handled {} times", r.entered));
        }
        if r.entered > 0 && r.completed + r.panicked + r.abandoned != r.entered {
            v.push(format!(
                "{who}: entered {} times, completed {}, panicked {}, abandoned {}",
                r.entered, r.completed, r.panicked, r.abandoned
            ));
        }
        if r.entered == 0 && r.completed + r.panicked + r.abandoned > 0 {
            v.push(format!("{who}: finished without entering"));
        }
        if r.panicked > 0 && r.action != Action::Poison {
            v.push(format!("{who}: a handler without poison panicked"));
        }
        if r.action == Action::Poison && r.completed > 0 {
            v.push(format!("{who}: a poison handler completed"));
        }
        if r.abandoned > 0 && !r.action.waits() {
            v.push(format!("{who}: abandoned, but its handler never waited"));
        }
        if r.entered > 0 && dropped > 0 {
            v.push(format!("{who}: handled and also dropped unhandled"));
        }
        t.panicked += u64::from(r.panicked);
        t.abandoned += u64::from(r.abandoned);
        match r.kind {
            Kind::Tell | Kind::TryTell => {
                t.tells += 1;
                match outcome {
                    Outcome::Queued => {
                        if r.entered == 0 && dropped == 0 {
                            v.push(format!(
                                "{who}: queued, then neither handled nor dead-lettered"
                            ));
                        }
                        if r.entered == 0 && dropped > 0 {
                            t.dead_tells += 1;
                            per_worker[r.worker].0 += 1;
                            if mode == Mode::Paused && r.dropped_own > 0 {
                                v.push(format!(
                                    "{who}: queued, then dropped by its own sender on one thread"
                                ));
                            }
                        }
                        if r.completed > 0 {
                            t.handled += 1;
                        }
                    }
                    Outcome::HandedBack | Outcome::Full => {
                        if r.entered > 0 || dropped > 0 {
                            v.push(format!("{who}: handed back, yet handled or dropped"));
                        }
                        if *outcome == Outcome::Full {
                            if r.kind != Kind::TryTell {
                                v.push(format!("{who}: a tell reported a full mailbox"));
                            }
                            t.full += 1;
                        } else {
                            t.handed_back += 1;
                        }
                    }
                    Outcome::Hung => v.push(format!("{who}: the send hung")),
                    other => v.push(format!("{who}: a send ended {other:?}")),
                }
            }
            Kind::Ask => {
                t.asks += 1;
                match outcome {
                    Outcome::Replied(reply) => {
                        t.replied += 1;
                        if *reply != key.seq {
                            v.push(format!("{who}: replied {reply}"));
                        }
                        if r.completed != 1 {
                            v.push(format!("{who}: a reply without a completed handler"));
                        }
                    }
                    Outcome::Crashed | Outcome::Stopped => {
                        if *outcome == Outcome::Crashed {
                            t.ask_crashed += 1;
                        } else {
                            t.ask_stopped += 1;
                        }
                        if r.completed > 0 {
                            v.push(format!(
                                "{who}: the handler completed, the ask got {outcome:?}"
                            ));
                        }
                        if r.entered > 0 && *outcome != Outcome::Crashed {
                            v.push(format!(
                                "{who}: its handler crashed, the ask got {outcome:?}"
                            ));
                        }
                        if r.entered == 0 && dropped == 0 {
                            v.push(format!(
                                "{who}: failed {outcome:?}, its message was never dropped"
                            ));
                        }
                        if r.dropped_elsewhere > 0 {
                            t.asks_dropped_elsewhere += 1;
                            per_worker[r.worker].1 += 1;
                        }
                        if r.dropped_own > 0 {
                            t.asks_dropped_own += 1;
                            per_worker[r.worker].2 += 1;
                        }
                    }
                    Outcome::Hung => v.push(format!("{who}: the ask hung")),
                    other => v.push(format!("{who}: the ask ended {other:?}")),
                }
            }
        }
    }

    // Promise 6: no duplicates (above) and per-sender order.
    for (w, entries) in &inner.entries {
        let mut last: HashMap<u16, u32> = HashMap::new();
        for key in entries {
            if let Some(prev) = last.insert(key.client, key.seq)
                && prev >= key.seq
            {
                v.push(format!(
                    "w{w} handled client {}'s seq {} after its seq {prev}",
                    key.client, key.seq
                ));
            }
        }
    }

    // Promise 5: the dead-letter book, per service.
    let book: HashMap<Uuid, u64> = dead.by_service.iter().map(|d| (d.id, d.count)).collect();
    let sum: u64 = dead.by_service.iter().map(|d| d.count).sum();
    if sum != dead.total {
        v.push(format!(
            "dead letters: total {} but the entries sum to {sum}",
            dead.total
        ));
    }
    t.dead_letters = dead.total;
    let mut accounted: HashSet<Uuid> = HashSet::new();
    for (i, w) in tree.workers.iter().enumerate() {
        let id = w.addr.id();
        accounted.insert(id);
        let counted = book.get(&id).copied().unwrap_or(0);
        if w.addr.dead_letters() != counted {
            v.push(format!(
                "{}: addr.dead_letters() = {}, the System's book {counted}",
                w.label,
                w.addr.dead_letters()
            ));
        }
        let (tells, elsewhere, own) = per_worker[i];
        let pings = log.failed_pings.get(&i).copied().unwrap_or(0);
        let low = tells + elsewhere;
        let high = if mode == Mode::Paused { low } else { low + own } + pings;
        if counted < low || counted > high {
            v.push(format!(
                "{}: {counted} dead letters, but {tells} dead tells + {elsewhere} dead asks{} \
                 (+ at most {pings} failed settling pings)",
                w.label,
                if mode == Mode::Paused {
                    String::new()
                } else {
                    format!(" (+ at most {own} asks drained by their own sender)")
                }
            ));
        }
    }
    for (i, s) in tree.sups.iter().enumerate() {
        let id = s.addr.id();
        accounted.insert(id);
        let counted = book.get(&id).copied().unwrap_or(0);
        let failed = log.failed_sup_asks.get(&i).copied().unwrap_or(0);
        let from_children = inner.unanswered_parent_asks.get(&id).copied().unwrap_or(0);
        if counted > failed + from_children {
            v.push(format!(
                "{}: {counted} dead letters, but only {failed} asks to it failed and \
                 {from_children} from its children got no reply",
                s.label
            ));
        }
    }
    for d in &dead.by_service {
        if !accounted.contains(&d.id) {
            v.push(format!(
                "dead letters of an unknown service {} ({})",
                d.label, d.count
            ));
        }
    }
    t
}

/// Promise 7: a worker that never stopped for good lost nothing but what crashed with a
/// handler. Checked after the flush, before shutdown.
fn check_live_workers(journal: &Journal, tree: &Tree, v: &mut Vec<String>) -> usize {
    let inner = lock(&journal.0);
    let live: HashSet<usize> = (0..tree.workers.len())
        .filter(|&w| !tree.workers[w].addr.is_terminated())
        .collect();
    for &w in &live {
        if tree.workers[w].addr.dead_letters() != 0 {
            v.push(format!(
                "{} never stopped for good, yet has {} dead letters",
                tree.workers[w].label,
                tree.workers[w].addr.dead_letters()
            ));
        }
    }
    for (key, r) in &inner.recs {
        if !live.contains(&r.worker) {
            continue;
        }
        let who = format!(
            "{key:?} ({:?} to live {})",
            r.kind, tree.workers[r.worker].label
        );
        match r.outcome {
            Some(Outcome::Queued) if r.entered == 0 => {
                v.push(format!("{who}: queued, not handled after the flush"));
            }
            Some(Outcome::HandedBack) => v.push(format!("{who}: handed back by a live worker")),
            Some(Outcome::Stopped) => v.push(format!("{who}: Stopped from a live worker")),
            Some(Outcome::Crashed) if r.entered == 0 => {
                v.push(format!(
                    "{who}: Crashed without its handler starting, on a live worker"
                ));
            }
            _ => {}
        }
    }
    live.len()
}

/// A digest of everything observable: each worker's entries in order, every outcome, every
/// final state. Equal digests for one seed mean the run replayed exactly.
fn digest(journal: &Journal, tree: &Tree) -> u64 {
    let inner = lock(&journal.0);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (w, entries) in &inner.entries {
        w.hash(&mut h);
        entries.hash(&mut h);
    }
    let mut recs: Vec<(&Key, &Rec)> = inner.recs.iter().collect();
    recs.sort_by_key(|(k, _)| **k);
    for (k, r) in recs {
        (
            k,
            &r.outcome,
            r.entered,
            r.completed,
            r.panicked,
            r.abandoned,
        )
            .hash(&mut h);
        (r.dropped_own, r.dropped_elsewhere).hash(&mut h);
    }
    for k in known(tree) {
        (
            k.sref.is_terminated(),
            k.sref.restart_count(),
            format!("{:?}", k.sref.state()),
        )
            .hash(&mut h);
    }
    h.finish()
}

// ----- the battery ----------------------------------------------------------------------------

/// What one run of the battery found.
struct Report {
    seed: u64,
    mode: Mode,
    digest: u64,
    /// Broken promises, each described.
    violations: Vec<String>,
}

impl Report {
    /// Fails the test with the broken promises, if any (at most 40 shown).
    fn assert_kept(&self) {
        if self.violations.is_empty() {
            return;
        }
        let shown: Vec<&str> = self
            .violations
            .iter()
            .take(40)
            .map(String::as_str)
            .collect();
        panic!(
            "MODO_SEED={} ({:?}): {} broken promise(s):\n  {}",
            self.seed,
            self.mode,
            self.violations.len(),
            shown.join("\n  ")
        );
    }
}

async fn battery(seed: u64, mode: Mode, cfg: Config) -> Report {
    quiet_poison();
    count_events();
    HANG_SEEN.store(false, std::sync::atomic::Ordering::SeqCst);
    let real = std::time::Instant::now();
    let start = Instant::now();
    let system = System::new();
    let journal = Arc::new(Journal::default());
    let mut rng = Rng::stream(seed, 0);
    let tree = Arc::new(build_tree(&system, &mut rng, &journal, cfg).await);
    let workers = Arc::new(tree.workers.clone());

    // The clients and the chaos, all at once.
    let mut clients = Vec::new();
    for c in 0..cfg.clients {
        clients.push(tokio::spawn(client(
            c,
            Rng::stream(seed, 1 + u64::from(c)),
            workers.clone(),
            journal.clone(),
            cfg.ops_per_client,
        )));
    }
    let mut chaos_tasks = Vec::new();
    for c in 0..cfg.chaos_tasks {
        chaos_tasks.push(tokio::spawn(chaos(
            cfg.clients + c,
            Rng::stream(seed, 1_000 + u64::from(c)),
            tree.clone(),
            journal.clone(),
            cfg.chaos_ops_per_task,
        )));
    }
    for c in clients {
        c.await.expect("a client panicked");
    }
    let mut log = ChaosLog::default();
    for c in chaos_tasks {
        log.merge(c.await.expect("a chaos task panicked"));
    }
    let chaos_done = start.elapsed();

    let mut v: Vec<String> = std::mem::take(&mut log.violations);

    // Settle, then the graph and the live workers (promises 7 and 8).
    let passes = match settle(&tree, &mut log).await {
        Ok(passes) => passes,
        Err(e) => {
            v.push(e);
            0
        }
    };
    let all = known(&tree);
    let live_count = all.iter().filter(|k| !k.sref.is_terminated()).count();
    if let Err(e) = live_actors_become(&system, live_count).await {
        v.push(e);
    }
    let live_in_graph = check_graph(&system, &tree, &mut v).await;
    let live_workers = check_live_workers(&journal, &tree, &mut v);
    let live_sups = tree.sups.iter().filter(|s| !s.addr.is_terminated()).count();
    let restarts: u64 = all.iter().map(|k| u64::from(k.sref.restart_count())).sum();
    let dead_before = system.dead_letters();

    // The finale (promise 9): a crash under the `Crashing` supervisor fails the System, which
    // shuts down. Its time counts from the crash.
    let mut finale: Option<String> = None;
    let mut before_shutdown = Instant::now();
    if let Some(crashing) = tree.crashing_sup()
        && !crashing.addr.is_terminated()
    {
        let victim = bounded(crashing.addr.supervise_with(
            worker_spec(tree.workers.len(), &journal, None, "finale-"),
            RestartPolicy::Permanent,
        ))
        .await;
        match victim {
            Ok(Ok(victim)) => {
                before_shutdown = Instant::now();
                victim
                    .tell(Boom)
                    .await
                    .expect("the finale's victim is running");
                if bounded(victim.wait_until(|w| w.is_terminated()))
                    .await
                    .is_err()
                {
                    v.push(
                        "a crash under the Crashing supervisor did not shut the System down".into(),
                    );
                }
                finale = Some(victim.label().to_owned());
            }
            other => v.push(format!(
                "the finale's victim did not start: {:?}",
                other.map(|r| r.map(|_| ()))
            )),
        }
    }

    // Shutdown, bounded (promise 1), with the finale's error (promise 9).
    let shutdown = tokio::time::timeout(SHUTDOWN_LIMIT, system.shutdown()).await;
    let shutdown_took = before_shutdown.elapsed();
    if shutdown_took > SHUTDOWN_LIMIT {
        v.push(format!(
            "the shutdown took {shutdown_took:?}, more than {SHUTDOWN_LIMIT:?}"
        ));
    }
    match (&shutdown, &finale) {
        (Err(_), _) => v.push(format!("shutdown did not end within {SHUTDOWN_LIMIT:?}")),
        (Ok(Ok(())), None) => {}
        (Ok(Err(Error::Crashed { label, .. })), Some(victim)) if &**label == victim.as_str() => {}
        (Ok(res), _) => v.push(format!(
            "shutdown returned {res:?}, the finale's victim was {finale:?}"
        )),
    }
    if system.live_actors() != 0 {
        v.push(format!(
            "{} actors alive after shutdown",
            system.live_actors()
        ));
    }
    if !system.registry().graph().await.is_empty() || !system.roots().is_empty() {
        v.push("the graph or the roots are not empty after shutdown".into());
    }
    let dead = system.dead_letters();
    if dead.total != dead_before.total {
        v.push(format!(
            "shutdown made {} new dead letters after everything was flushed",
            dead.total - dead_before.total
        ));
    }

    // Each dead letter was reported with a tracing event, with its count.
    let events = std::mem::take(&mut *lock(&EVENTS));
    for d in &dead.by_service {
        let told = events
            .dead_letters
            .get(&d.id.to_string())
            .copied()
            .unwrap_or(0);
        if told != d.count {
            v.push(format!(
                "{}: {} dead letters in the book, {told} in its tracing events",
                d.label, d.count
            ));
        }
    }
    let told: u64 = events.dead_letters.values().sum();
    if told != dead.total {
        v.push(format!(
            "{} dead letters, {told} reported by tracing events",
            dead.total
        ));
    }

    // Restart policies: a supervisor restarts a crashed child unless it is temporary, and a
    // stopped one only if it is permanent.
    let policies = tree.policies();
    for (kind, child) in &events.restarts {
        let Some((policy, by_factory)) = policies.get(child) else {
            continue;
        };
        let allowed = match *kind {
            RESTARTED_CRASHED => *policy != RestartPolicy::Temporary,
            _ => *policy == RestartPolicy::Permanent,
        };
        if !allowed {
            let built = if *by_factory { "by a factory" } else { "once" };
            v.push(format!(
                "{child}, {policy:?}, was {kind} by its supervisor (built {built})"
            ));
        }
    }

    // Every ticket (promises 2 to 7).
    let t = account(&journal, &tree, &dead, &log, mode, &mut v);
    let digest = digest(&journal, &tree);

    println!(
        "chaos[{mode:?}] MODO_SEED={seed}: {} workers, {} supervisors ({} built by a factory); tells {} = handled {} + handed back {} \
         (+ {} full) + dead {} + lost {} (panicked {}, abandoned {}); asks {}: replied {}, crashed {}, \
         stopped {} (dead-lettered {}, dropped by the asker {}); dead letters {}; chaos {:?}; \
         longest {:?}; supervision {:?}; \
         at the end {live_workers} workers and {live_sups} supervisors live ({live_in_graph} in the graph), \
         {restarts} restarts, settled in {passes} pass(es); chaos phase {:?}, shutdown {:?}{}; \
         real {:?}; digest {digest:016x}",
        tree.workers.len(),
        tree.sups.len(),
        tree.sups.iter().filter(|s| s.factory).count(),
        t.tells,
        t.handled,
        t.handed_back,
        t.full,
        t.dead_tells,
        t.tells - t.handled - t.handed_back - t.full - t.dead_tells,
        t.panicked,
        t.abandoned,
        t.asks,
        t.replied,
        t.ask_crashed,
        t.ask_stopped,
        t.asks_dropped_elsewhere,
        t.asks_dropped_own,
        t.dead_letters,
        log.results,
        log.longest,
        events.supervision,
        chaos_done,
        shutdown_took,
        match &finale {
            Some(victim) => format!(" (failed by {victim}, as the Crashing supervisor must)"),
            None => String::new(),
        },
        real.elapsed(),
    );
    if HANG_SEEN.load(std::sync::atomic::Ordering::SeqCst) {
        v.insert(
            0,
            format!(
                "(a wait reached {OP_LIMIT:?}: every wait after it was cut to {AFTER_A_HANG:?}, \
                 so later reports may be its consequences)"
            ),
        );
    }
    Report {
        seed,
        mode,
        digest,
        violations: v,
    }
}

/// The replayable variant: one thread, paused clock.
#[tokio::test(start_paused = true)]
async fn chaos_on_one_thread_with_paused_time_keeps_every_promise() {
    let _serial = SERIAL.lock().await;
    battery(seed(), Mode::Paused, FULL).await.assert_kept();
}

/// The racy variant: two worker threads, real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_on_two_threads_keeps_every_promise() {
    let _serial = SERIAL.lock().await;
    battery(seed(), Mode::Threads, FULL).await.assert_kept();
}

/// The paused variant is fully replayable: the same seed gives the same run, interleavings
/// included (each worker's entries in order, every outcome, every final state). Only the
/// replay is checked here (on a smaller tree); the promises are the other tests' business.
#[test]
fn the_paused_variant_replays_a_seed_exactly() {
    let seed = seed();
    let run = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a runtime")
            .block_on(async {
                let _serial = SERIAL.lock().await;
                let report = battery(seed, Mode::Paused, SMALL).await;
                (report.digest, report.violations.len())
            })
    };
    let (first, second) = (run(), run());
    assert_eq!(
        first, second,
        "MODO_SEED={seed}: two runs of one seed differ"
    );
}

// ----- leaks over 50 spawn/stop rounds --------------------------------------------------------

/// The process's resident set, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
}

const ROUNDS: usize = 50;
const LEAK_SUPS: usize = 3;
const LEAK_WORKERS_PER_SUP: usize = 20;

/// RSS at round 50 may exceed round 10 by at most this much. The allocator keeps freed
/// memory and fragments, so the RSS is not exact. Measured alone (debug build): one round's
/// tree (64 services with their tasks, cells and mailboxes) and its traffic take about 670 KiB
/// (printed as `one tree`; after the other tests it shows less, as it reuses memory they
/// freed), and the RSS grew by about 60 KiB from round 10 to round 50. A leak of a tenth of a
/// tree per round would add over 2.5 MiB across the 40 rounds compared, past this bound. The
/// exact checks are the weak handles (every cell of every round freed) and the tickets (every
/// message of the round resolved).
const RSS_TOLERANCE_KIB: u64 = 2_048;

/// One System, 50 rounds: each spawns a root supervisor with three supervisors (one-for-one,
/// one-for-all, rest-for-one) of 20 named workers each, runs traffic with poison messages, a
/// supervisor crash, a restart and a stop, then stops the root. After each round: no live
/// actor, no root, no name, an empty graph, and every service's cell freed (weak handles);
/// the RSS at round 50 is within [`RSS_TOLERANCE_KIB`] of round 10.
#[tokio::test(start_paused = true)]
async fn fifty_spawn_stop_rounds_leave_nothing_behind() {
    let _serial = SERIAL.lock().await;
    let seed = seed();
    quiet_poison();
    HANG_SEEN.store(false, std::sync::atomic::Ordering::SeqCst);
    let system = System::new();
    let mut rss = Vec::new();
    let mut tree_cost = 0;
    for round in 1..=ROUNDS {
        let before = rss_kib();
        let journal = Arc::new(Journal::default());
        let mut rng = Rng::stream(seed, 10_000 + round as u64);
        let mut builder = Supervisor::builder().label("leak-root");
        let strategies = [
            Strategy::OneForOne,
            Strategy::OneForAll,
            Strategy::RestForOne,
        ];
        for (s, strategy) in strategies.iter().enumerate().take(LEAK_SUPS) {
            let mut sup = Supervisor::builder()
                .label(format!("leak-s{s}"))
                .strategy(*strategy);
            for i in 0..LEAK_WORKERS_PER_SUP {
                let index = s * LEAK_WORKERS_PER_SUP + i;
                sup = sup.child_spec(
                    worker_spec(index, &journal, pick_capacity(&mut rng), "leak-"),
                    RestartPolicy::Permanent,
                );
            }
            builder = builder.child_spec(
                ServiceSpec::new(sup.build()).name(format!("leak-s{s}")),
                RestartPolicy::Permanent,
            );
        }
        let root = system
            .spawn(ServiceSpec::new(builder.build()).name("leak-root"))
            .await
            .expect("the tree starts");
        let names: Vec<String> = std::iter::once("leak-root".to_owned())
            .chain((0..LEAK_SUPS).map(|s| format!("leak-s{s}")))
            .chain((0..LEAK_SUPS * LEAK_WORKERS_PER_SUP).map(|i| format!("leak-w{i}")))
            .collect();
        let workers: Vec<Addr<Worker>> = (0..LEAK_SUPS * LEAK_WORKERS_PER_SUP)
            .map(|i| system.lookup(&format!("leak-w{i}")).expect("named"))
            .collect();
        let sups: Vec<Addr<Supervisor>> = (0..LEAK_SUPS)
            .map(|s| system.lookup(&format!("leak-s{s}")).expect("named"))
            .collect();
        let weak_workers: Vec<WeakAddr<Worker>> = workers.iter().map(Addr::downgrade).collect();
        let weak_sups: Vec<WeakAddr<Supervisor>> = sups
            .iter()
            .chain(std::iter::once(&root))
            .map(Addr::downgrade)
            .collect();
        assert_eq!(
            system.live_actors(),
            names.len(),
            "round {round}: all started"
        );
        if round == 1 {
            tree_cost = rss_kib().saturating_sub(before);
        }

        // Traffic and a little chaos, from a task (the tickets know their sender's task).
        let traffic = tokio::spawn({
            let workers = workers.clone();
            let sups = sups.clone();
            let journal = journal.clone();
            async move {
                for seq in 0..600u32 {
                    let w = rng.below(workers.len() as u64) as usize;
                    let action = if seq % 150 == 75 {
                        Action::Poison
                    } else {
                        Action::Plain
                    };
                    let kind = if seq % 10 == 0 { Kind::Ask } else { Kind::Tell };
                    let key = Key { client: 0, seq };
                    journal.register(key, w, kind, action);
                    let outcome = send(&workers[w], kind, Job::new(&journal, key, action)).await;
                    journal.outcome(key, outcome);
                    match seq {
                        200 => sups[1].crash("leak round crash"),
                        300 => workers[w].restart().await.expect("a worker restarts"),
                        400 => workers[w]
                            .stop()
                            .await
                            .expect("a worker stops (and is restarted)"),
                        _ => {}
                    }
                }
                // A burst behind a dwelling handler: still queued when the root stops, so it
                // becomes dead letters.
                for seq in 600..640u32 {
                    let (kind, action) = if seq == 600 {
                        (Kind::Tell, Action::Dwell(ms(5)))
                    } else {
                        (Kind::TryTell, Action::Plain)
                    };
                    let key = Key { client: 0, seq };
                    journal.register(key, 0, kind, action);
                    let outcome = send(&workers[0], kind, Job::new(&journal, key, action)).await;
                    journal.outcome(key, outcome);
                }
            }
        });
        bounded(traffic)
            .await
            .expect("the traffic ends")
            .expect("the traffic task panicked");
        drop(workers);
        drop(sups);
        bounded(root.stop())
            .await
            .expect("the stop ends")
            .expect("the stop succeeds");
        drop(root);

        // Back to zero.
        assert_eq!(system.live_actors(), 0, "round {round}: actors left");
        assert!(system.roots().is_empty(), "round {round}: roots left");
        assert!(
            system.registry().graph().await.is_empty(),
            "round {round}: graph not empty"
        );
        for name in &names {
            assert!(
                matches!(
                    system.lookup::<Worker>(name),
                    Err(Error::UnknownName { .. })
                ),
                "round {round}: {name} still registered"
            );
        }
        let alive = weak_workers
            .iter()
            .filter(|w| w.upgrade().is_some())
            .count()
            + weak_sups.iter().filter(|s| s.upgrade().is_some()).count();
        assert_eq!(alive, 0, "round {round}: {alive} cells not freed");
        // Nothing sent this round is still held anywhere: every ticket resolved.
        let inner = lock(&journal.0);
        for (key, r) in &inner.recs {
            let resolved =
                r.completed + r.panicked + r.abandoned + r.dropped_own + r.dropped_elsewhere;
            let handed = matches!(r.outcome, Some(Outcome::HandedBack | Outcome::Full));
            assert!(
                resolved == 1 || (handed && resolved == 0),
                "round {round}: ticket {key:?} unresolved: {r:?}"
            );
        }
        drop(inner);
        rss.push(rss_kib());
    }
    let (at10, at50) = (rss[9], rss[ROUNDS - 1]);
    let dead = system.dead_letters();
    println!(
        "leaks MODO_SEED={seed}: RSS round 1 {} KiB, round 10 {at10} KiB, round 50 {at50} KiB \
         (one tree {tree_cost} KiB); {} dead letters, the book keeps {} entries (one per \
         service that ever had one, also after it is gone)",
        rss[0],
        dead.total,
        dead.by_service.len()
    );
    assert!(
        at50 <= at10 + RSS_TOLERANCE_KIB,
        "RSS grew from {at10} KiB at round 10 to {at50} KiB at round 50"
    );
    system.shutdown().await.expect("an empty system shuts down");
}
