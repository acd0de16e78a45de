//! The flight recorder (Mode's `flight_recorder`): a scope that ends in time writes nothing;
//! one that overruns its deadline writes its buffered lines, in order, at their levels, with
//! their original times, after a warning naming the deadline, and later lines at once. The
//! Worker's blocking detector adds what a running recorder saw to its warning.

mod common;

use std::time::Duration;

use common::Buffer;
use modo::flight::{FlightRecorder, current, on_timeout};
use modo::prelude::*;
use tokio::time::Instant;
use tracing::Level;

/// Installs a Mode-format subscriber on this thread (the tests' runtimes are current-thread,
/// so every task logs here); the returned guard uninstalls it.
fn capture() -> (Buffer, tracing::subscriber::DefaultGuard) {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .event_format(modo::log::ModeFormat::default())
        .with_max_level(Level::TRACE)
        .with_writer(buffer.clone())
        .finish();
    (buffer, tracing::subscriber::set_default(subscriber))
}

/// `[LEVEL]: message` of each line (time and pid cut off).
fn messages(buffer: &Buffer) -> Vec<String> {
    buffer
        .lines()
        .iter()
        .map(|l| l.splitn(3, "] [").nth(2).unwrap_or(l).to_string())
        .map(|l| format!("[{l}"))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_scope_that_ends_in_time_writes_nothing() {
    let (buffer, _guard) = capture();
    let recorder = FlightRecorder::new(Duration::from_secs(10));
    let log = recorder.clone();
    let out = recorder
        .run(async move {
            log.info("+step one");
            tokio::time::sleep(Duration::from_secs(4)).await;
            log.warn("-step one");
            on_timeout().error("step two");
            tokio::time::sleep(Duration::from_secs(5)).await;
            42
        })
        .await;
    assert_eq!(out, 42);
    assert!(!recorder.timed_out());
    // Past the deadline now, but the scope is over: still nothing.
    tokio::time::sleep(Duration::from_secs(30)).await;
    recorder.info("after the scope");
    assert_eq!(buffer.text(), "");
}

#[tokio::test(start_paused = true)]
async fn a_scope_that_ends_right_at_its_deadline_is_in_time() {
    let (buffer, _guard) = capture();
    for _ in 0..20 {
        let recorder = FlightRecorder::new(Duration::from_secs(1));
        let log = recorder.clone();
        recorder
            .run(async move {
                log.info("working");
                tokio::time::sleep(Duration::from_secs(1)).await;
            })
            .await;
        assert!(!recorder.timed_out());
    }
    assert_eq!(buffer.text(), "");
}

#[tokio::test(start_paused = true)]
async fn a_late_scope_writes_its_lines_in_order_with_their_original_times() {
    let (buffer, _guard) = capture();
    let recorder = FlightRecorder::named("refresh", Duration::from_secs(10));
    let start = Instant::now();
    let scope = tokio::spawn({
        let recorder = recorder.clone();
        let log = recorder.clone();
        async move {
            recorder
                .run(async move {
                    log.info("+redis.get('user')");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    log.info("-redis.get('user')");
                    on_timeout().warn("+redis.get('posts')");
                    tokio::time::sleep(Duration::from_secs(60)).await; // hangs
                    log.info("-redis.get('posts')");
                    "done"
                })
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(9_990)).await;
    assert_eq!(buffer.text(), "", "nothing before the deadline");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(recorder.timed_out());
    let lines = messages(&buffer);
    assert_eq!(lines.len(), 5, "{lines:#?}");
    assert_eq!(
        lines[0],
        "[WARN]: [refresh] Timed out: still running after 10.00 seconds (deadline 10s); \
         replaying 3 lines"
    );
    // Each at its own level, with its wall-clock time and its offset in the scope.
    for (line, (level, offset, text)) in lines[1..4].iter().zip([
        ("INFO", "+0.000s", "+redis.get('user')"),
        ("INFO", "+2.000s", "-redis.get('user')"),
        ("WARN", "+2.000s", "+redis.get('posts')"),
    ]) {
        let head = format!("[{level}]: [refresh] (");
        assert!(line.starts_with(&head), "{line}");
        let rest = &line[head.len()..];
        let (time, tail) = rest.split_once(' ').unwrap();
        assert!(
            time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "an RFC 3339 time in {line}"
        );
        assert_eq!(tail, format!("{offset}) {text}"));
    }
    assert_eq!(lines[4], "[INFO]: [refresh] -End of log-");
    // The scope goes on; what it logs now is written at once.
    assert_eq!(scope.await.unwrap(), "done");
    assert_eq!(start.elapsed(), Duration::from_secs(62));
    let last = messages(&buffer).pop().unwrap();
    assert!(last.starts_with("[INFO]: [refresh] ("), "{last}");
    assert!(last.ends_with("+62.000s) -redis.get('posts')"), "{last}");
}

#[tokio::test(start_paused = true)]
async fn on_timeout_logs_to_the_innermost_scope_and_nowhere_outside() {
    let (buffer, _guard) = capture();
    assert!(current().is_none());
    on_timeout().info("outside any scope: dropped");
    let outer = FlightRecorder::named("outer", Duration::from_secs(5));
    let inner = FlightRecorder::named("inner", Duration::from_secs(60));
    outer
        .run(async {
            on_timeout().info("in outer");
            inner
                .run(async {
                    assert_eq!(current().unwrap().label(), "inner");
                    on_timeout().info("in inner");
                    tokio::time::sleep(Duration::from_secs(10)).await;
                })
                .await;
            assert_eq!(current().unwrap().label(), "outer");
            on_timeout().info("in outer again");
        })
        .await;
    let lines = messages(&buffer);
    // Only the outer scope overran its deadline (at 5 s, during the inner scope).
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(lines[0].contains("[outer] Timed out"));
    assert!(lines[1].ends_with("+0.000s) in outer"));
    assert_eq!(lines[2], "[INFO]: [outer] -End of log-");
    assert!(
        lines[3].ends_with("+10.000s) in outer again"),
        "{}",
        lines[3]
    );
    assert!(!buffer.text().contains("in inner"));
    assert!(!buffer.text().contains("dropped"));
}

#[tokio::test(start_paused = true)]
async fn a_scope_dropped_before_its_deadline_writes_nothing() {
    let (buffer, _guard) = capture();
    let recorder = FlightRecorder::new(Duration::from_secs(10));
    let log = recorder.clone();
    let cut_short = tokio::time::timeout(
        Duration::from_secs(3),
        recorder.run(async move {
            log.info("started");
            std::future::pending::<()>().await
        }),
    )
    .await;
    assert!(cut_short.is_err());
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(buffer.text(), "");
    // The recorder can record a new scope.
    let again = recorder.run(async { 1 }).await;
    assert_eq!(again, 1);
    assert!(format!("{recorder:?}").contains("phase: \"done\""));
}

/// A service whose start blocks its thread inside a flight recorder's scope.
struct Blocker;

impl Service for Blocker {
    async fn on_start(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        FlightRecorder::named("db", Duration::from_secs(60))
            .run(async {
                on_timeout().info("connecting to the database");
                // A blocking call on the runtime's thread: nothing else runs meanwhile.
                std::thread::sleep(Duration::from_millis(1_200));
                on_timeout().info("connected");
            })
            .await;
        Ok(())
    }
}

/// Real time: the blocking detector is a thread watching the services' polls and the
/// runtime's heartbeat.
#[tokio::test]
async fn the_blocking_detectors_warning_carries_what_the_recorder_saw() {
    let (buffer, _guard) = capture();
    let exit = modo::Worker::new(Blocker)
        .override_logging(false)
        .handle_signals(false)
        .daemon(false)
        .blocking_timeout(Duration::from_millis(200))
        .run()
        .await;
    assert_eq!(exit.code(), 0, "{exit:?}");
    let lines = messages(&buffer);
    let warning = lines
        .iter()
        .position(|l| l.contains("Blocking detected"))
        .unwrap_or_else(|| panic!("no warning in {lines:#?}"));
    // The detector names the service whose start blocked the runtime.
    assert!(
        lines[warning].contains("Blocking detected: Blocker has run for")
            && lines[warning].ends_with("the flight recorders in their scope saw:"),
        "{}",
        lines[warning]
    );
    let after = &lines[warning + 1..];
    let heading = after
        .iter()
        .position(|l| l.starts_with("[WARN]: [^BlockingDetector]: [db] in its scope"))
        .unwrap_or_else(|| panic!("no recorder heading in {after:#?}"));
    assert!(after[heading].contains("(deadline 60s), 1 line recorded:"));
    assert!(
        after[heading + 1].starts_with("[WARN]: [^BlockingDetector]: [db] (")
            && after[heading + 1].ends_with("+0.000s) connecting to the database"),
        "{}",
        after[heading + 1]
    );
    // The scope ended in time (60 s deadline): the recorder itself wrote nothing.
    assert!(!buffer.text().contains("[db] Timed out"));
    assert!(!buffer.text().contains("connected\n"));
}

#[test]
fn recorders_and_their_scopes_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<FlightRecorder>();
    let r = FlightRecorder::new(Duration::from_secs(1));
    send(&r.run(async { 1 }));
}
