//! The blocking detector as a service of its own (`BlockingDetector`), without a Worker: it
//! names the service whose code blocks a runtime thread (its handler, or its background task
//! by name), on a multi-thread runtime where the other threads run on; it reports a runtime
//! stalled outside any service without a name; once per stall; nothing when nothing blocks or
//! once it has stopped.
//!
//! Real time: the detector is an OS thread reading the clock, and blocking is a thread
//! sleeping. Each block is short (300 ms against a 100 ms timeout) and each test is bounded.

use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use modo::prelude::*;
use modo::{Blocked, BlockingDetector};

mod common;
use common::Buffer;

const BOUND: Duration = Duration::from_secs(20);
const TIMEOUT: Duration = Duration::from_millis(100);
const BLOCK: Duration = Duration::from_millis(300);

/// The tests of this file run one at a time: each measures real time, undisturbed by the
/// others' blocked threads.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every test's log lines (the detector logs from its own thread, the services from the
/// runtime's: a global subscriber sees them all). Tests tell theirs apart by label.
fn log() -> &'static Buffer {
    static LOG: OnceLock<Buffer> = OnceLock::new();
    LOG.get_or_init(|| {
        let buffer = Buffer::default();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .event_format(modo::log::ModeFormat::default())
            .with_max_level(tracing::Level::WARN)
            .with_writer(buffer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        buffer
    })
}

async fn bounded<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(BOUND, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what} did not finish within {BOUND:?}"),
    }
}

/// A detector reporting to a channel.
async fn detector(system: &System) -> (Addr<BlockingDetector>, Receiver<Blocked>) {
    let (tx, reports) = mpsc::channel();
    let tx = Mutex::new(tx);
    let detector = system
        .spawn(BlockingDetector::new(TIMEOUT).on_blocked(move |b| {
            let _ = tx.lock().unwrap().send(b.clone());
        }))
        .await
        .unwrap();
    (detector, reports)
}

/// A service with code that does not yield.
struct Legacy {
    /// Also block in a background task named `crunch`, once started.
    in_task: bool,
}

impl Service for Legacy {
    async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
        if self.in_task {
            ctx.spawn_named("crunch", async {
                std::thread::sleep(BLOCK);
            });
        }
        Ok(())
    }
}

/// Blocks the handler's thread.
struct Compute;

impl Handler<Compute> for Legacy {
    type Reply = ();
    async fn handle(&mut self, _: Compute, _ctx: &mut Context<Self>) {
        std::thread::sleep(BLOCK);
    }
}

/// Sleeps without blocking.
struct Wait;

impl Handler<Wait> for Legacy {
    type Reply = ();
    async fn handle(&mut self, _: Wait, _ctx: &mut Context<Self>) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn label(b: &Blocked) -> Option<String> {
    b.service.as_ref().map(|s| s.label().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warning_names_the_service_whose_handler_blocks_its_thread() {
    let _serial = SERIAL.lock().await;
    let log = log();
    bounded("the test", async {
        let system = System::new();
        let (_detector, reports) = detector(&system).await;
        let legacy = system
            .spawn(ServiceSpec::new(Legacy { in_task: false }).label("Ledger"))
            .await
            .unwrap();
        legacy.ask(Compute).await.unwrap();
        let report = reports.recv_timeout(BOUND).expect("a report");
        assert_eq!(label(&report).as_deref(), Some("Ledger"));
        assert_eq!(report.task, None, "its own task: the handler");
        assert!(report.thread.is_some(), "runtime threads have names");
        assert!(
            report.blocked_for >= TIMEOUT && report.blocked_for < BLOCK,
            "{:?}",
            report.blocked_for
        );
        assert_eq!(report.timeout, TIMEOUT);
        // Once per stall.
        assert!(reports.try_recv().is_err(), "one report for one block");
        let warning = log
            .lines()
            .into_iter()
            .find(|l| l.contains("Blocking detected: Ledger"))
            .expect("a warning naming the service");
        assert!(
            warning.contains("[WARN]: [^BlockingDetector]: Blocking detected: Ledger has run for ")
                && warning.contains(
                    "without yielding (blocking timeout 100ms), in its own task (a hook or a handler), on thread "
                ),
            "{warning}"
        );
        system.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_background_task_is_named_with_its_service() {
    let _serial = SERIAL.lock().await;
    log();
    bounded("the test", async {
        let system = System::new();
        let (_detector, reports) = detector(&system).await;
        system
            .spawn(ServiceSpec::new(Legacy { in_task: true }).label("Batch"))
            .await
            .unwrap();
        let report = reports.recv_timeout(BOUND).expect("a report");
        assert_eq!(label(&report).as_deref(), Some("Batch"));
        assert_eq!(report.task.as_deref(), Some("crunch"));
        assert!(report.to_string().contains("Batch has run for"), "{report}");
        assert!(
            report.to_string().contains("in its task crunch"),
            "{report}"
        );
        system.shutdown().await.unwrap();
    })
    .await;
}

/// A plain tokio task (no service) blocking the only thread of a current-thread runtime: the
/// heartbeat stops, and the stall is reported without a name, once.
#[tokio::test(flavor = "current_thread")]
async fn a_stalled_runtime_outside_any_service_is_reported_without_a_name() {
    let _serial = SERIAL.lock().await;
    log();
    bounded("the test", async {
        let system = System::new();
        let (_detector, reports) = detector(&system).await;
        tokio::spawn(async { std::thread::sleep(BLOCK) })
            .await
            .unwrap();
        let report = reports.recv_timeout(BOUND).expect("a report");
        assert!(report.service.is_none(), "{report:?}");
        assert!(
            report
                .to_string()
                .starts_with("Blocking detected: the runtime made no progress for "),
            "{report}"
        );
        assert!(reports.try_recv().is_err(), "one report for one stall");
        system.shutdown().await.unwrap();
    })
    .await;
}

/// A service's hook blocking a current-thread runtime stalls it all: the service is named,
/// and the stall is not reported a second time without a name.
#[tokio::test(flavor = "current_thread")]
async fn a_stalled_runtime_is_reported_once_by_the_name_of_its_service() {
    let _serial = SERIAL.lock().await;
    log();
    bounded("the test", async {
        let system = System::new();
        let (_detector, reports) = detector(&system).await;
        let legacy = system.spawn(Legacy { in_task: false }).await.unwrap();
        legacy.ask(Compute).await.unwrap();
        // A few heartbeats later: still one report.
        tokio::time::sleep(TIMEOUT * 3).await;
        let all: Vec<Blocked> = reports.try_iter().collect();
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(label(&all[0]).as_deref(), Some("Legacy"));
        system.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_reported_when_nothing_blocks() {
    let _serial = SERIAL.lock().await;
    log();
    bounded("the test", async {
        let system = System::new();
        let (_detector, reports) = detector(&system).await;
        let legacy = system.spawn(Legacy { in_task: false }).await.unwrap();
        // 400 ms of handlers that wait without blocking.
        for _ in 0..8 {
            legacy.ask(Wait).await.unwrap();
        }
        assert!(reports.try_recv().is_err());
        system.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_detector_reports_nothing() {
    let _serial = SERIAL.lock().await;
    log();
    bounded("the test", async {
        let system = System::new();
        let (detector, reports) = detector(&system).await;
        detector.stop().await.unwrap();
        assert!(detector.task_names().is_empty(), "the heartbeat ended");
        let legacy = system.spawn(Legacy { in_task: false }).await.unwrap();
        legacy.ask(Compute).await.unwrap();
        assert!(reports.try_recv().is_err());
        system.shutdown().await.unwrap();
    })
    .await;
}
