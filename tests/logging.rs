//! Logging names the service: Mode's `[^--Label]` prefix by depth, lifecycle lines at the
//! service's mundane level, a span per service, and Mode's line format.

mod common;

use common::Buffer;
use modo::prelude::*;
use tracing::Level;

struct Node {
    name: &'static str,
    short: Option<&'static str>,
    level: Level,
    children: Vec<Node>,
}

impl Node {
    fn new(name: &'static str, children: Vec<Node>) -> Self {
        Node {
            name,
            short: None,
            level: Level::INFO,
            children,
        }
    }
}

impl Service for Node {
    fn dependencies(&mut self) -> Vec<Dependency> {
        std::mem::take(&mut self.children)
            .into_iter()
            .map(Into::into)
            .collect()
    }
    async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.log()
            .info(format_args!("hello from depth {}", ctx.depth()));
        Ok(())
    }
    fn label(&self) -> std::borrow::Cow<'static, str> {
        self.name.into()
    }
    fn shortlabel(&self) -> std::borrow::Cow<'static, str> {
        self.short.unwrap_or(self.name).into()
    }
    fn mundane_level(&self) -> Level {
        self.level
    }
}

/// Runs `body` with a Mode-format subscriber at `level` installed on this thread (the test
/// runtime is current-thread, so every actor logs here), and returns the lines.
async fn capture<F, Fut>(level: Level, body: F) -> Vec<String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let buffer = Buffer::default();
    // A buffer is no terminal: no escapes (ModeFormat colours the level only where the
    // writer takes them).
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .event_format(modo::log::ModeFormat::default())
        .with_max_level(level)
        .with_writer(buffer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    body().await;
    drop(guard);
    buffer.lines()
}

fn messages(lines: &[String]) -> Vec<String> {
    // `[time] [pid] [LEVEL]: message`: keep the level and the message.
    lines
        .iter()
        .map(|l| {
            let after_pid = l.splitn(3, "] [").nth(2).unwrap_or(l);
            after_pid.to_string()
        })
        .collect()
}

#[tokio::test]
async fn prefixes_have_one_dash_per_level() {
    let lines = capture(Level::INFO, || async {
        let system = System::new();
        let tree = Node::new(
            "App",
            vec![Node::new("Web", vec![Node::new("Cache", vec![])])],
        );
        system.spawn(tree).await.unwrap();
        system.shutdown().await.unwrap();
    })
    .await;
    let msgs = messages(&lines);
    for expected in [
        "INFO]: [^App]: Starting...",
        "INFO]: [^-Web]: Starting...",
        "INFO]: [^--Cache]: Starting...",
        "INFO]: [^--Cache]: Started",
        "INFO]: [^--Cache]: hello from depth 2",
        "INFO]: [^App]: Started",
        "INFO]: [^App]: Stopping...",
        "INFO]: [^-Web]: Stopped",
        "INFO]: [^--Cache]: Shutdown complete",
    ] {
        assert!(
            msgs.iter().any(|m| m == expected),
            "missing {expected:?} in {msgs:#?}"
        );
    }
    // Mode's order of lifecycle lines for one service.
    let app: Vec<&String> = msgs.iter().filter(|m| m.contains("[^App]")).collect();
    let app: Vec<&str> = app.iter().map(|m| m.rsplit(": ").next().unwrap()).collect();
    assert_eq!(
        app,
        [
            "Starting...",
            "Started",
            "hello from depth 0",
            "Stopping...",
            "Stopped",
            "Shutdown complete"
        ]
    );
    // Each line starts with `[time] [pid] [LEVEL]: `.
    let pid = std::process::id().to_string();
    assert!(
        lines
            .iter()
            .all(|l| l.starts_with('[') && l.contains(&format!("] [{pid}] [")))
    );
}

#[tokio::test]
async fn mundane_lines_follow_the_services_level() {
    let quiet = || Node {
        name: "Internal",
        short: Some("int"),
        level: Level::DEBUG,
        children: vec![],
    };
    let at_info = capture(Level::INFO, || async {
        let system = System::new();
        system.spawn(quiet()).await.unwrap();
        system.shutdown().await.unwrap();
    })
    .await;
    let msgs = messages(&at_info);
    assert!(!msgs.iter().any(|m| m.contains("Starting...")), "{msgs:#?}");
    assert!(
        msgs.iter()
            .any(|m| m == "INFO]: [^int]: hello from depth 0"),
        "{msgs:#?}"
    );

    let at_debug = capture(Level::DEBUG, || async {
        let system = System::new();
        system.spawn(quiet()).await.unwrap();
        system.shutdown().await.unwrap();
    })
    .await;
    let msgs = messages(&at_debug);
    assert!(
        msgs.iter().any(|m| m == "DEBUG]: [^int]: Starting..."),
        "{msgs:#?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m == "DEBUG]: [^int]: Shutdown complete"),
        "{msgs:#?}"
    );
}

#[tokio::test]
async fn every_line_runs_in_a_span_naming_the_service() {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(buffer.clone())
        .with_ansi(false)
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let system = System::new();
    system
        .spawn(Node::new("Outer", vec![Node::new("Inner", vec![])]))
        .await
        .unwrap();
    system.shutdown().await.unwrap();
    drop(guard);
    let lines = buffer.lines();
    let inner: Vec<&String> = lines.iter().filter(|l| l.contains("[^-Inner]")).collect();
    assert!(!inner.is_empty());
    for line in inner {
        assert!(line.contains("service{label=Inner"), "{line}");
        // The child's span is not nested in its parent's.
        assert!(!line.contains("label=Outer"), "{line}");
    }
}

/// A fresh path in the temp directory.
fn temp_log(name: &str) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    std::env::temp_dir().join(format!("modo-{name}-{}-{nanos}.log", std::process::id()))
}

/// `[2026-11-25T17:08:03.123456Z] [4242] [INFO]: ` (time, pid, level) at the start of a line.
fn is_mode_line(line: &str) -> bool {
    let Some(rest) = line.strip_prefix('[') else {
        return false;
    };
    let Some((time, rest)) = rest.split_once("] [") else {
        return false;
    };
    let Some((pid, rest)) = rest.split_once("] [") else {
        return false;
    };
    time.len() >= 20
        && time.as_bytes()[4] == b'-'
        && time.contains('T')
        && time.ends_with('Z')
        && !pid.is_empty()
        && pid.bytes().all(|b| b.is_ascii_digit())
        && ["ERROR]: ", "WARN]: ", "INFO]: ", "DEBUG]: ", "TRACE]: "]
            .iter()
            .any(|l| rest.starts_with(l))
}

#[tokio::test]
async fn a_log_file_gets_mode_lines_without_escape_bytes() {
    let path = temp_log("file");
    // Colour forced on for stderr (quiet anyway): the file still gets none.
    let config = modo::logging::LogConfig::new()
        .level(Level::INFO)
        .file(&path)
        .quiet(true)
        .ansi(true);
    let dispatch = config.dispatch().unwrap();
    let guard = tracing::dispatcher::set_default(&dispatch);
    let system = System::new();
    system
        .spawn(Node::new("App", vec![Node::new("Web", vec![])]))
        .await
        .unwrap();
    tracing::info!(target: "modo", answer = 42, "a line with a field");
    tracing::debug!(target: "modo", "below the level");
    system.shutdown().await.unwrap();
    drop(guard);
    let written = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert!(!written.contains(&0x1b), "no escape byte in the file");
    let text = String::from_utf8(written).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 8, "{text}");
    let pid = format!("] [{}] [", std::process::id());
    for line in &lines {
        assert!(is_mode_line(line), "not Mode's format: {line:?}");
        assert!(line.contains(&pid), "{line:?}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("[INFO]: [^App]: Starting..."))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("[INFO]: [^-Web]: hello from depth 1"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("a line with a field") && l.contains("answer=42"))
    );
    assert!(!text.contains("below the level"));
}

#[test]
fn an_unopenable_log_file_is_a_typed_error_naming_it() {
    let path = std::env::temp_dir()
        .join("modo-no-such-directory")
        .join("deeper")
        .join("x.log");
    let err = modo::logging::LogConfig::new()
        .file(&path)
        .dispatch()
        .unwrap_err();
    assert!(matches!(err, modo::logging::LogInitError::OpenFile { .. }));
    assert!(err.to_string().contains("x.log"), "{err}");
    assert!(std::error::Error::source(&err).is_some());
}

/// Set in the child process the test below starts (this same test binary, one test).
const CHILD: &str = "MODO_LOGGING_TEST_CHILD";

/// In the child: installs the global subscriber as the parent asked, logs a line with a
/// field (a field name is where escapes would appear), tries a second install, and says how
/// that went on stdout.
fn child_logs() {
    let mut config = modo::logging::LogConfig::new().level(Level::INFO);
    if std::env::var(CHILD).as_deref() == Ok("ansi") {
        config = config.ansi(true);
    }
    modo::logging::init(config).unwrap();
    tracing::info!(target: "modo", answer = 42, "[^App]: from the child");
    let again = modo::logging::init(modo::logging::LogConfig::new());
    println!(
        "second init: {}",
        matches!(again, Err(modo::logging::LogInitError::AlreadyInstalled))
    );
}

/// Runs this test binary again as a child for one test, stderr and stdout piped.
fn run_child(mode: &str) -> (String, Vec<u8>) {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "stderr_that_is_not_a_terminal_gets_no_escapes",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, mode)
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "child failed: {out:?}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        out.stderr,
    )
}

#[test]
fn stderr_that_is_not_a_terminal_gets_no_escapes() {
    if std::env::var(CHILD).is_ok() {
        return child_logs();
    }
    // stderr is a pipe: plain text.
    let (stdout, stderr) = run_child("auto");
    let text = String::from_utf8_lossy(&stderr);
    let line = text
        .lines()
        .find(|l| l.contains("from the child"))
        .unwrap_or_else(|| panic!("no line in {text:?}"));
    assert!(is_mode_line(line), "{line:?}");
    assert!(line.contains("answer=42"), "{line:?}");
    assert!(!stderr.contains(&0x1b), "escapes on a pipe: {text:?}");
    assert!(stdout.contains("second init: true"), "{stdout}");
    // Forced on, the same line carries escapes: the check above can fail.
    let (_, forced) = run_child("ansi");
    assert!(forced.contains(&0x1b));
}
