//! The Worker as a real program: `examples/worker.rs` run as a child process, driven with OS
//! signals (`kill`), its stderr and stdout read line by line on reader threads.
//!
//! Each test blocks on the pipes with one overall deadline ([`DEADLINE`]); a test that misses
//! it kills its child and fails with the output seen so far.

#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// The bound on each test's whole conversation with its child.
const DEADLINE: Duration = Duration::from_secs(30);

/// `<target>/<profile>/examples/worker`, next to this test's `deps` directory, built with
/// cargo first (`cargo test --all-targets` has built it already; then this is a no-op).
fn example_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("the test's own path");
            let profile_dir = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("the test runs from <target>/<profile>/deps");
            let binary = profile_dir.join("examples").join("worker");
            // Always build (once per test binary): cheap when it is fresh, and never runs a
            // stale binary. The same profile as this test.
            let mut build = Command::new(env!("CARGO"));
            build.args(["build", "--example", "worker"]);
            if profile_dir.ends_with("release") {
                build.arg("--release");
            }
            let status = build
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("cargo runs");
            assert!(status.success(), "cargo build --example worker failed");
            assert!(binary.exists(), "no example binary at {}", binary.display());
            binary
        })
        .clone()
}

/// One line of the child's output.
#[derive(Debug, Clone)]
enum Line {
    Out(String),
    Err(String),
}

impl Line {
    fn text(&self) -> &str {
        match self {
            Line::Out(s) | Line::Err(s) => s,
        }
    }
}

/// A running example and everything it printed so far.
struct Program {
    child: Child,
    lines: Receiver<Line>,
    seen: Vec<Line>,
    started: Instant,
}

impl Program {
    fn start(env: &[(&str, &str)]) -> Program {
        let mut command = Command::new(example_binary());
        command
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("the example starts");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("piped");
        let err = child.stderr.take().expect("piped");
        let tx_out = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx_out.send(Line::Out(line)).is_err() {
                    break;
                }
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(Line::Err(line)).is_err() {
                    break;
                }
            }
        });
        Program {
            child,
            lines,
            seen: Vec::new(),
            started: Instant::now(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    fn remaining(&self) -> Duration {
        DEADLINE.saturating_sub(self.started.elapsed())
    }

    /// Reads lines until one contains `needle`; returns its index in `seen`.
    fn wait_for(&mut self, needle: &str) -> usize {
        loop {
            match self.lines.recv_timeout(self.remaining()) {
                Ok(line) => {
                    let hit = line.text().contains(needle);
                    self.seen.push(line);
                    if hit {
                        return self.seen.len() - 1;
                    }
                }
                Err(RecvTimeoutError::Timeout) => self.fail(&format!("no line with {needle:?}")),
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail(&format!("exited before a line with {needle:?}"))
                }
            }
        }
    }

    /// Reads to the end of both pipes, then reaps the child.
    fn wait_exit(&mut self) -> ExitStatus {
        loop {
            match self.lines.recv_timeout(self.remaining()) {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => self.fail("did not exit"),
            }
        }
        self.child.wait().expect("wait")
    }

    fn still_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    fn fail(&mut self, what: &str) -> ! {
        let _ = self.child.kill();
        let _ = self.child.wait();
        panic!("{what} within {DEADLINE:?}; output:\n{}", self.transcript());
    }

    fn transcript(&self) -> String {
        self.seen
            .iter()
            .map(|l| match l {
                Line::Out(s) => format!("out| {s}\n"),
                Line::Err(s) => format!("err| {s}\n"),
            })
            .collect()
    }

    /// The index of the first line at or after `from` containing `needle`.
    fn find_from(&self, from: usize, needle: &str) -> Option<usize> {
        self.seen[from..]
            .iter()
            .position(|l| l.text().contains(needle))
            .map(|i| i + from)
    }

    /// Asserts the needles appear in this order (each after the one before).
    fn assert_in_order(&self, needles: &[&str]) {
        let mut at = 0;
        for needle in needles {
            match self.find_from(at, needle) {
                Some(i) => at = i + 1,
                None => panic!(
                    "{needle:?} missing or out of order (expected {needles:#?}); output:\n{}",
                    self.transcript()
                ),
            }
        }
    }

    fn count(&self, needle: &str) -> usize {
        self.seen
            .iter()
            .filter(|l| l.text().contains(needle))
            .count()
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[test]
fn sigterm_stops_the_tree_children_first_and_exits_0() {
    let mut p = Program::start(&[]);
    p.wait_for("[^Worker]: Started");
    p.signal("TERM");
    let status = p.wait_exit();
    assert_eq!(status.code(), Some(0), "output:\n{}", p.transcript());
    p.assert_in_order(&[
        "[^Worker]: Stopping on signal received...",
        "[^Worker]: Stopping...",
        "[^-App]: Stopping...",
        "[^--UserCache]: Stopping...",
        "[^--UserCache]: Shutdown complete",
        "[^--Webserver]: Stopping...",
        "[^--Webserver]: Shutdown complete",
        "[^--Websockets]: Stopping...",
        "[^--Websockets]: Shutdown complete",
        "[^-App]: Shutdown complete",
        "[^Worker]: Shutdown complete",
    ]);
    assert_eq!(p.count("Stopping on signal received"), 1);
    // Mode's line format: [time] [pid] [LEVEL]: [^Label]: message.
    let pid = format!("] [{}] [INFO]: [^Worker]: Shutdown complete", p.pid());
    assert_eq!(p.count(&pid), 1, "output:\n{}", p.transcript());
}

#[test]
fn the_tree_starts_parents_first_in_order() {
    let mut p = Program::start(&[]);
    p.wait_for("[^Worker]: Started");
    p.assert_in_order(&[
        "[^Worker]: Starting...",
        "[^-App]: Starting...",
        "[^--Websockets]: Started",
        "[^--Webserver]: Started",
        "[^--UserCache]: Started",
        "[^-App]: Started",
        "[^Worker]: Started",
    ]);
    p.signal("TERM");
    assert_eq!(p.wait_exit().code(), Some(0));
}

#[test]
fn sigusr1_prints_the_tree_and_keeps_running() {
    let mut p = Program::start(&[]);
    p.wait_for("[^Worker]: Started");
    p.signal("USR1");
    // Each service with its state, restarts and depth, and under it its background tasks:
    // the blocking detector (a root of its own, spawned first), then the Worker's tree.
    let start = p.wait_for("--- modo service tree (6 services) ---");
    let end = p.wait_for("--- end of service tree ---");
    let tree: Vec<&str> = p.seen[start + 1..end]
        .iter()
        .filter(|l| matches!(l, Line::Err(_)))
        .map(Line::text)
        .collect();
    assert_eq!(
        tree,
        [
            "BlockingDetector state=running restarts=0 depth=0",
            "  task BlockingDetector.heartbeat",
            "Worker state=running restarts=0 depth=0",
            "  App state=running restarts=0 depth=1",
            "    Websockets state=running restarts=0 depth=2",
            "    Webserver state=running restarts=0 depth=2",
            "    UserCache state=running restarts=0 depth=2",
            "      task remove_expired",
        ],
        "output:\n{}",
        p.transcript()
    );
    assert!(p.still_running(), "SIGUSR1 ended the program");
    // Still serving signals: a second dump, then a clean stop.
    p.signal("USR1");
    let again = p.wait_for("--- end of service tree ---");
    assert!(again > end);
    assert!(p.still_running());
    p.signal("TERM");
    assert_eq!(p.wait_exit().code(), Some(0), "output:\n{}", p.transcript());
    assert_eq!(p.count("Stopping on signal received"), 1);
}

#[test]
fn a_crashing_root_service_exits_1_with_the_reason() {
    let mut p = Program::start(&[("MODO_EXAMPLE_CRASH", "1")]);
    let status = p.wait_exit();
    assert_eq!(status.code(), Some(1), "output:\n{}", p.transcript());
    p.assert_in_order(&[
        "[^Worker]: Started",
        "[^-App]: Crashed: deliberate crash (MODO_EXAMPLE_CRASH)",
        "[^Worker]: Shutdown complete",
        "modo: the Worker failed: service Worker crashed: child App crashed: deliberate crash",
    ]);
    assert!(
        p.seen
            .last()
            .is_some_and(|l| matches!(l, Line::Err(s) if s.starts_with("modo: "))),
        "the reason is the last line on stderr; output:\n{}",
        p.transcript()
    );
}

#[test]
fn an_unsupervised_child_panic_escalates_to_the_worker_and_exits_1() {
    let mut p = Program::start(&[("MODO_EXAMPLE_CHILD_PANIC", "1")]);
    let status = p.wait_exit();
    assert_eq!(status.code(), Some(1), "output:\n{}", p.transcript());
    p.assert_in_order(&[
        "[^Worker]: Started",
        "[^--Webserver]: Crashed: panicked in handler of BadRequest",
        "[^-App]: Crashed: child Webserver crashed: panicked in handler of BadRequest",
        "[^Worker]: Shutdown complete",
        "modo: the Worker failed: service Worker crashed: child App crashed: child Webserver \
         crashed: panicked in handler of BadRequest: bad request (MODO_EXAMPLE_CHILD_PANIC)",
    ]);
}

#[test]
fn a_batch_program_ends_by_itself_with_exit_0() {
    let mut p = Program::start(&[("MODO_EXAMPLE_BATCH", "1")]);
    assert_eq!(p.wait_exit().code(), Some(0), "output:\n{}", p.transcript());
    p.assert_in_order(&[
        "[^-App]: Batch done: stopping",
        "[^-App]: Shutdown complete",
        "[^Worker]: Every service has stopped: the Worker is done",
        "[^Worker]: Shutdown complete",
    ]);
    assert_eq!(p.count("Stopping on signal received"), 0);
}

#[test]
fn a_second_sigint_during_the_stop_exits_130_at_once() {
    let mut p = Program::start(&[("MODO_EXAMPLE_SLOW_STOP_MS", "20000")]);
    p.wait_for("[^Worker]: Started");
    p.signal("INT");
    p.wait_for("[^--Webserver]: Closing server");
    // Only the first stop signal starts the stop: a SIGTERM now changes nothing.
    p.signal("TERM");
    p.wait_for("Already stopping: signal ignored");
    assert!(p.still_running());
    let interrupted = Instant::now();
    p.signal("INT");
    let status = p.wait_exit();
    assert_eq!(status.code(), Some(130), "output:\n{}", p.transcript());
    assert!(
        interrupted.elapsed() < Duration::from_secs(10),
        "did not exit at once"
    );
    assert_eq!(p.count("Stopping on signal received"), 1);
    assert_eq!(p.count("[^Worker]: Shutdown complete"), 0);
    assert!(p.count("modo: interrupted during the stop") == 1);
}

#[test]
fn the_blocking_detector_warns_once_per_stall() {
    let mut p = Program::start(&[
        ("MODO_EXAMPLE_BLOCK_MS", "1500"),
        ("MODO_EXAMPLE_BLOCKING_TIMEOUT_MS", "200"),
    ]);
    let blocked = p.wait_for("example: blocking");
    let warned = p.wait_for("Blocking detected");
    let unblocked = p.wait_for("example: unblocked");
    assert!(blocked < warned && warned < unblocked);
    let warning = p.seen[warned].text().to_owned();
    assert!(
        warning.contains("[WARN]: [^BlockingDetector]: Blocking detected")
            && warning.contains("(blocking timeout 200ms)")
            // Plain tokio tasks block every thread: no service to name.
            && warning.contains("the runtime made no progress"),
        "{warning}"
    );
    // One warning for the one stall, however long it lasted.
    let during = p.seen[blocked..unblocked]
        .iter()
        .filter(|l| l.text().contains("Blocking detected"))
        .count();
    assert_eq!(during, 1, "output:\n{}", p.transcript());
    p.signal("TERM");
    assert_eq!(p.wait_exit().code(), Some(0), "output:\n{}", p.transcript());
}

#[test]
fn not_a_daemon_stops_once_started_and_exits_0() {
    let mut p = Program::start(&[("MODO_EXAMPLE_ONESHOT", "1")]);
    assert_eq!(p.wait_exit().code(), Some(0), "output:\n{}", p.transcript());
    p.assert_in_order(&[
        "[^Worker]: Started",
        "[^Worker]: Stopping...",
        "[^-App]: Shutdown complete",
        "[^Worker]: Shutdown complete",
    ]);
    assert_eq!(p.count("Stopping on signal received"), 0);
}

#[test]
fn quiet_with_a_log_file_writes_the_lines_to_the_file_only() {
    let path = std::env::temp_dir().join(format!("modo-worker-test-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&path);
    // The file is appended to: a line already there stays.
    std::fs::write(&path, "earlier line\n").expect("temp file");
    let path_str = path.to_str().expect("utf-8 temp path");
    let mut p = Program::start(&[
        ("MODO_EXAMPLE_ONESHOT", "1"),
        ("MODO_EXAMPLE_QUIET", "1"),
        ("MODO_EXAMPLE_LOGFILE", path_str),
    ]);
    assert_eq!(p.wait_exit().code(), Some(0), "output:\n{}", p.transcript());
    assert_eq!(p.count("[^"), 0, "quiet, yet:\n{}", p.transcript());
    let log = std::fs::read_to_string(&path).expect("the log file");
    let _ = std::fs::remove_file(&path);
    assert!(log.starts_with("earlier line\n"), "{log}");
    assert!(log.contains("[INFO]: [^Worker]: Started"), "{log}");
    assert!(
        log.contains("[INFO]: [^--Webserver]: Serving on port 8000"),
        "{log}"
    );
    assert!(
        !log.contains("\u{1b}["),
        "no colour codes in the file: {log}"
    );
}

#[test]
fn rust_log_sets_the_level() {
    let mut p = Program::start(&[("MODO_EXAMPLE_CRASH", "1"), ("RUST_LOG", "error")]);
    assert_eq!(p.wait_exit().code(), Some(1), "output:\n{}", p.transcript());
    assert_eq!(p.count("[INFO]"), 0, "output:\n{}", p.transcript());
    assert!(p.count("[ERROR]: [^Worker]: App crashed") == 1);
}

/// In process: `execute` on the test's runtime, without signal handlers (they would outlive
/// the Worker in this test process).
mod in_process {
    use modo::prelude::*;
    use modo::worker::{Worker, WorkerExit};

    struct Plain;
    impl Service for Plain {}

    struct FailsToStart;
    impl Service for FailsToStart {
        async fn on_start(&mut self, _ctx: &mut Context<Self>) -> HookResult {
            Err("no database".into())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn execute_runs_to_completion_without_a_daemon() {
        let worker = Worker::with_services(vec![Plain.into(), Plain.into()])
            .override_logging(false)
            .handle_signals(false)
            .daemon(false);
        worker.execute().await.expect("a clean run");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_start_is_the_error_and_code_1() {
        let exit = Worker::new(FailsToStart)
            .override_logging(false)
            .handle_signals(false)
            .daemon(false)
            .run()
            .await;
        assert_eq!(exit.code(), 1);
        let WorkerExit::Failed(e) = exit else {
            panic!("{exit:?}")
        };
        assert!(e.to_string().contains("no database"), "{e}");
    }

    /// Does its work in `on_started`, then stops itself.
    struct Batch;
    impl Service for Batch {
        async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
            ctx.stop();
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_daemon_worker_ends_with_its_last_service() {
        let exit = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            Worker::with_services(vec![Batch.into(), Batch.into()])
                .override_logging(false)
                .handle_signals(false)
                .run(),
        )
        .await
        .expect("the Worker ends by itself");
        assert_eq!(exit.code(), 0, "{exit:?}");
    }

    use modo::testkit::{Journal, Recorder};
    use modo::{Hook, ServiceSpec};
    use std::time::Duration;

    /// A Worker for these tests: no logging set-up, no signal handlers, no detector.
    fn quiet(worker: Worker) -> Worker {
        worker
            .override_logging(false)
            .handle_signals(false)
            .detect_blocking(false)
    }

    async fn bounded(worker: Worker) -> WorkerExit {
        tokio::time::timeout(Duration::from_secs(10), worker.run())
            .await
            .expect("the Worker ends by itself")
    }

    /// on_execute after the services started, with the tree at hand; on_worker_shutdown last,
    /// after they stopped, with the exit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_worker_hooks_run_after_the_start_and_after_the_stop() {
        let journal = Journal::new();
        let (on_execute, on_shutdown) = (journal.clone(), journal.clone());
        let worker = Worker::new(ServiceSpec::new(Recorder::new("App", &journal)).name("app"))
            .daemon(false)
            .on_execute(move |system| async move {
                let app = system.lookup::<Recorder>("app")?;
                on_execute.push(format!("on_execute: app {}", app.state()));
                Ok(())
            })
            .on_worker_shutdown(move |exit| {
                on_shutdown.push(format!("on_worker_shutdown: {}", exit.code()))
            });
        let exit = bounded(quiet(worker)).await;
        assert_eq!(exit.code(), 0, "{exit:?}");
        let entries = journal.take();
        let from = entries.iter().position(|e| e == "App:on_started").unwrap();
        assert_eq!(
            entries[from..],
            [
                "App:on_started",
                "on_execute: app running",
                "App:on_stop",
                "App:on_shutdown",
                "on_worker_shutdown: 0",
            ]
        );
    }

    /// Stops itself when told to.
    struct Job;
    impl Service for Job {}
    struct Finish;
    impl Handler<Finish> for Job {
        type Reply = ();
        async fn handle(&mut self, _: Finish, ctx: &mut Context<Self>) {
            ctx.stop();
        }
    }

    /// A daemon Worker waits for its services after on_execute: here on_execute hands the Job
    /// its work, and the Worker ends once the Job has stopped.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_daemon_waits_for_its_services_after_on_execute() {
        let journal = Journal::new();
        let on_execute = journal.clone();
        let worker =
            Worker::new(ServiceSpec::new(Job).name("job")).on_execute(move |system| async move {
                let job = system.lookup::<Job>("job")?;
                job.tell(Finish).await?;
                on_execute.push("on_execute told the job");
                Ok(())
            });
        let exit = bounded(quiet(worker)).await;
        assert_eq!(exit.code(), 0, "{exit:?}");
        assert_eq!(journal.take(), ["on_execute told the job"]);
    }

    /// An error from on_execute is the run's error: the tree stops in order (a daemon does not
    /// wait for a signal), the exit code is 1, and on_worker_shutdown still runs.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_on_execute_stops_the_tree_in_order_with_code_1() {
        let journal = Journal::new();
        let on_shutdown = journal.clone();
        let worker = Worker::new(
            Recorder::new("App", &journal).with_children(vec![Recorder::new("Db", &journal)]),
        )
        .on_execute(|_| async { Err("no work to do".into()) })
        .on_worker_shutdown(move |exit| {
            on_shutdown.push(format!("on_worker_shutdown: {}", exit.code()))
        });
        let exit = bounded(quiet(worker)).await;
        assert_eq!(exit.code(), 1);
        let WorkerExit::Failed(e) = &exit else {
            panic!("{exit:?}")
        };
        assert!(
            matches!(e, modo::Error::HookFailed { hook: Hook::OnExecute, label, .. } if &**label == "Worker"),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "on_execute of Worker failed: no work to do");
        journal.assert_order(&[
            "App:on_started",
            "App:on_stop",
            "Db:on_stop",
            "Db:on_shutdown",
            "App:on_shutdown",
            "on_worker_shutdown: 1",
        ]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_on_execute_fails_the_run() {
        let worker = Worker::new(Plain).on_execute(|_| async {
            if true {
                panic!("bad input");
            }
            Ok(())
        });
        let exit = bounded(quiet(worker)).await;
        assert_eq!(exit.code(), 1);
        assert!(
            matches!(&exit, WorkerExit::Failed(modo::Error::Crashed { reason, .. }) if reason.is_panic()),
            "{exit:?}"
        );
    }

    /// A service that fails to start: on_execute never runs, on_worker_shutdown does.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_execute_does_not_run_when_the_start_fails() {
        let journal = Journal::new();
        let (on_execute, on_shutdown) = (journal.clone(), journal.clone());
        let worker = Worker::new(FailsToStart)
            .on_execute(move |_| async move {
                on_execute.push("on_execute");
                Ok(())
            })
            .on_worker_shutdown(move |exit| {
                on_shutdown.push(format!("on_worker_shutdown: {}", exit.code()))
            });
        let exit = bounded(quiet(worker)).await;
        assert_eq!(exit.code(), 1);
        assert_eq!(journal.take(), ["on_worker_shutdown: 1"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_on_worker_shutdown_fails_a_clean_run() {
        let worker = Worker::new(Plain)
            .daemon(false)
            .on_worker_shutdown(|_| panic!("cannot flush"));
        let exit = bounded(quiet(worker)).await;
        assert_eq!(exit.code(), 1, "{exit:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_workers_in_one_process_both_set_up_logging() {
        for _ in 0..2 {
            Worker::new(Plain)
                .detect_blocking(false)
                .handle_signals(false)
                .daemon(false)
                .quiet(true)
                .execute()
                .await
                .expect("a clean run");
        }
    }
}
