//! `examples/crawler.rs` as a real program, run as a child process: the crawl of 2,000 fake
//! pages ends by itself with exit code 0 and its summary (a fetcher crashed twice on the bad
//! page and was restarted by the pool each time); with `--unsupervised-crash` the same bug in
//! the unsupervised Frontier escalates to the Worker: exit code 1 and the reason.
//!
//! Each run is bounded by [`DEADLINE`]; a run that misses it is killed and the test fails
//! with its output.

#![cfg(unix)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(60);

/// `<target>/<profile>/examples/crawler`, built with cargo first (a no-op when fresh).
fn example_binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().expect("the test's own path");
            let profile_dir = exe
                .parent()
                .and_then(|deps| deps.parent())
                .expect("the test runs from <target>/<profile>/deps");
            let mut build = Command::new(env!("CARGO"));
            build.args(["build", "--example", "crawler"]);
            if profile_dir.ends_with("release") {
                build.arg("--release");
            }
            let status = build
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .expect("cargo runs");
            assert!(status.success(), "cargo build --example crawler failed");
            let binary = profile_dir.join("examples").join("crawler");
            assert!(binary.exists(), "no example binary at {}", binary.display());
            binary
        })
        .clone()
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn transcript(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the crawler with `args` to the end (bounded), reading both pipes on threads.
fn run(args: &[&str]) -> Run {
    let mut child = Command::new(example_binary())
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let (tx, rx) = mpsc::channel();
    for (name, mut pipe) in [
        (
            "out",
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        ),
        ("err", Box::new(child.stderr.take().unwrap())),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            let _ = tx.send((name, text));
        });
    }
    let started = Instant::now();
    let (mut stdout, mut stderr) = (None, None);
    while stdout.is_none() || stderr.is_none() {
        match rx.recv_timeout(DEADLINE.saturating_sub(started.elapsed())) {
            Ok(("out", text)) => stdout = Some(text),
            Ok((_, text)) => stderr = Some(text),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the crawler did not finish within {DEADLINE:?}");
            }
        }
    }
    // Both pipes closed: the process has exited (or closed them on its way out).
    let status = child.wait().expect("wait");
    Run {
        code: status.code(),
        stdout: stdout.unwrap(),
        stderr: stderr.unwrap(),
    }
}

#[test]
fn the_crawl_ends_by_itself_with_exit_0_and_its_summary() {
    let run = run(&[]);
    let all = run.transcript();
    assert_eq!(run.code, Some(0), "{all}");
    let summary: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("summary: "))
        .collect();
    assert_eq!(summary.len(), 1, "{all}");
    // 2,000 pages (one of which crashed its fetcher twice) and 20 links to missing pages.
    assert!(
        summary[0].starts_with("summary: 2020 URLs checked in "),
        "{all}"
    );
    assert!(
        summary[0].ends_with(": 1999 ok, 20 broken, 1 failed; fetchers restarted 2 time(s)"),
        "{all}"
    );
    assert!(
        run.stdout
            .contains("failed: fake://site/page/1234 (its fetcher crashed)"),
        "{all}"
    );
    assert_eq!(
        run.stdout.matches("broken: fake://site/missing/").count(),
        20
    );
    // The supervised crash: logged as one line naming the replica, then restarted in place.
    assert!(
        run.stderr.contains("]: panicked at examples/crawler.rs"),
        "{all}"
    );
    assert!(run.stderr.contains("[^---Fetcher#"), "{all}");
    assert!(
        run.stderr.contains("[^--Fetchers]: restarting Fetcher#"),
        "{all}"
    );
    assert!(run.stderr.contains("(one_for_one, restart 1)"), "{all}");
    // The Worker ended because its services did, not because of a signal or a crash.
    assert!(
        run.stderr
            .contains("[^Worker]: Every service has stopped: the Worker is done"),
        "{all}"
    );
    assert!(run.stderr.contains("[^Worker]: Shutdown complete"), "{all}");
    assert!(!run.stderr.contains("the Worker failed"), "{all}");
}

#[test]
fn the_same_bug_unsupervised_escalates_and_exits_1() {
    let run = run(&["--unsupervised-crash"]);
    let all = run.transcript();
    assert_eq!(run.code, Some(1), "{all}");
    assert!(!run.stdout.contains("summary:"), "{all}");
    assert!(
        run.stderr.contains(
            "[^-Crawler]: Crashed: child Frontier crashed: panicked in handler of Fetched: \
             malformed HTML: unterminated href"
        ),
        "{all}"
    );
    assert!(
        run.stderr.contains(
            "modo: the Worker failed: service Worker crashed: child Crawler crashed: child \
             Frontier crashed"
        ),
        "{all}"
    );
}
