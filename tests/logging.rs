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
    let subscriber = tracing_subscriber::fmt()
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
