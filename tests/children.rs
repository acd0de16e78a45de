//! Many children of one parent: a per-spawn label (`ServiceSpec::label`) that shows in the
//! handles, the log prefix and the registry's graph; stopping children all at once
//! (`Service::stop_children_concurrently`) or one after another, newest first (the default);
//! an owned logger for background tasks (`Context::logger`); `modo::Level`; children a failed
//! parent never started are still launched, stopped and dropped.

mod common;

use std::borrow::Cow;
use std::time::Duration;

use common::{Buffer, Journal};
use modo::prelude::*;

const BOUND: Duration = Duration::from_secs(10);

/// The tests of this file run one at a time. `tracing` caches, per call site, whether any
/// subscriber wants its events; a call site first reached on a thread with no subscriber
/// while another thread installs its capture can be cached as "never" (a race in the cache),
/// and the capture then misses lines. One test at a time, each capture installed before its
/// services log, keeps the cache right.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn bounded<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(BOUND, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what} did not finish within {BOUND:?}"),
    }
}

/// Runs `body` with a Mode-format subscriber at `level` on this thread (the test runtime is
/// current-thread, so every actor logs here); returns the lines without time and pid.
async fn capture<F, Fut>(level: modo::Level, body: F) -> Vec<String>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .event_format(modo::log::ModeFormat::default())
        .with_max_level(level)
        .with_writer(buffer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    body().await;
    drop(guard);
    buffer
        .lines()
        .iter()
        // `[time] [pid] [LEVEL]: message` -> `LEVEL]: message`
        .map(|l| l.splitn(3, "] [").nth(2).unwrap_or(l).to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Labels per spawn.

/// One connection's session. Its type's own label would be "Session" for all of them.
struct Session {
    journal: Journal,
}

impl Service for Session {
    fn shortlabel(&self) -> Cow<'static, str> {
        "Sess".into()
    }

    async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.log().info("hello");
        // The owned logger, moved into a background task.
        let log = ctx.logger();
        let journal = self.journal.clone();
        ctx.spawn(async move {
            log.log(modo::Level::WARN, "from the task");
            journal.push(log.prefix());
        });
        Ok(())
    }
}

/// Adds sessions at run time, labelled `Session#<n>`.
struct Listener {
    journal: Journal,
    next: u32,
}

impl Service for Listener {}

struct Accept;

impl Handler<Accept> for Listener {
    type Reply = Result<Addr<Session>, Error>;
    async fn handle(&mut self, _: Accept, ctx: &mut Context<Self>) -> Self::Reply {
        self.next += 1;
        let session = Session {
            journal: self.journal.clone(),
        };
        ctx.add_runtime_dependency(
            ServiceSpec::new(session).label(format!("Session#{}", self.next)),
        )
        .await
    }
}

/// The root above the listener, so sessions are at depth 2: `[^--Session#3]`.
struct Server {
    journal: Journal,
}

impl Service for Server {
    fn dependencies(&mut self) -> Vec<Dependency> {
        vec![
            ServiceSpec::new(Listener {
                journal: self.journal.clone(),
                next: 0,
            })
            .name("listener")
            .into(),
        ]
    }
}

#[tokio::test]
async fn a_spawn_label_names_the_service_in_handles_logs_and_the_graph() {
    let _serial = SERIAL.lock().await;
    let journal = Journal::new();
    let system = System::new();
    let lines = capture(modo::Level::INFO, || async {
        system
            .spawn(Server {
                journal: journal.clone(),
            })
            .await
            .unwrap();
        let listener: Addr<Listener> = system.lookup("listener").unwrap();
        let mut sessions = Vec::new();
        for _ in 0..3 {
            sessions.push(listener.ask(Accept).await.unwrap().unwrap());
        }
        let third = &sessions[2];
        assert_eq!(third.label(), "Session#3");
        // The spawn's label is also the log label, over the type's own `shortlabel`.
        assert_eq!(third.shortlabel(), "Session#3");
        assert_eq!(third.depth(), 2);
        bounded("the tasks' lines", async {
            while journal.entries().len() < 3 {
                tokio::task::yield_now().await;
            }
        })
        .await;
        // The graph: one node per session, under the listener, by label.
        let graph = system.registry().graph().await;
        let under: Vec<String> = graph
            .children(listener.id())
            .iter()
            .map(|n| n.label.clone())
            .collect();
        assert_eq!(under, ["Session#1", "Session#2", "Session#3"]);
        let node = graph.node(third.id()).unwrap();
        assert_eq!(node.shortlabel, "Session#3");
        assert_eq!(graph.path(third.id()), ["Server", "Listener", "Session#3"]);
        assert!(graph.to_dot().contains("Session#3"));
        system.shutdown().await.unwrap();
    })
    .await;
    let has = |needle: &str| lines.iter().any(|l| l == needle);
    assert!(has("INFO]: [^--Session#3]: Starting..."), "{lines:#?}");
    assert!(has("INFO]: [^--Session#3]: hello"), "{lines:#?}");
    assert!(has("WARN]: [^--Session#3]: from the task"), "{lines:#?}");
    assert!(
        has("INFO]: [^--Session#1]: Shutdown complete"),
        "{lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("[^--Sess]") || l.contains("[^--Session]")),
        "a line without the spawn's label: {lines:#?}"
    );
    assert_eq!(
        journal.take(),
        ["[^--Session#1]", "[^--Session#2]", "[^--Session#3]"]
    );
}

// ---------------------------------------------------------------------------------------
// Stopping children: concurrently, or newest first one after another.

/// A child whose `on_stop` takes one second.
struct SlowStop {
    name: &'static str,
    journal: Journal,
}

impl Service for SlowStop {
    fn label(&self) -> Cow<'static, str> {
        self.name.into()
    }

    async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push(format!("{}:stopping", self.name));
        tokio::time::sleep(Duration::from_secs(1)).await;
        self.journal.push(format!("{}:stopped", self.name));
        Ok(())
    }
}

struct Parent {
    concurrently: bool,
    journal: Journal,
}

impl Service for Parent {
    fn dependencies(&mut self) -> Vec<Dependency> {
        ["a", "b", "c"]
            .into_iter()
            .map(|name| {
                SlowStop {
                    name,
                    journal: self.journal.clone(),
                }
                .into()
            })
            .collect()
    }

    fn stop_children_concurrently(&self) -> bool {
        self.concurrently
    }

    async fn on_shutdown(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push("parent:shutdown");
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn children_stop_concurrently_when_the_parent_asks() {
    let _serial = SERIAL.lock().await;
    let system = System::new();
    let journal = Journal::new();
    let parent = system
        .spawn(Parent {
            concurrently: true,
            journal: journal.clone(),
        })
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    parent.stop().await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(1));
    let entries = journal.take();
    // All three began before any finished; the parent's last hook came after all of them.
    let first_end = entries
        .iter()
        .position(|e| e.ends_with(":stopped"))
        .unwrap();
    assert_eq!(first_end, 3, "{entries:?}");
    assert_eq!(entries.len(), 7, "{entries:?}");
    assert_eq!(entries[6], "parent:shutdown");
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn children_stop_newest_first_one_after_another_by_default() {
    let _serial = SERIAL.lock().await;
    let system = System::new();
    let journal = Journal::new();
    let parent = system
        .spawn(Parent {
            concurrently: false,
            journal: journal.clone(),
        })
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    parent.stop().await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(
        journal.take(),
        [
            "c:stopping",
            "c:stopped",
            "b:stopping",
            "b:stopped",
            "a:stopping",
            "a:stopped",
            "parent:shutdown"
        ]
    );
    system.shutdown().await.unwrap();
}

/// A child slow to stop does not delay its siblings when stopped concurrently, and each is
/// still bounded by its own shutdown timeout.
#[tokio::test(start_paused = true)]
async fn a_stuck_child_is_bounded_by_its_own_timeout_and_delays_no_sibling() {
    let _serial = SERIAL.lock().await;
    struct Stuck {
        journal: Journal,
    }
    impl Service for Stuck {
        fn shutdown_timeout(&self) -> Duration {
            Duration::from_secs(2)
        }
        async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
            self.journal.push("stuck:stopping");
            std::future::pending::<()>().await;
            Ok(())
        }
    }
    struct Host {
        journal: Journal,
    }
    impl Service for Host {
        fn dependencies(&mut self) -> Vec<Dependency> {
            vec![
                Stuck {
                    journal: self.journal.clone(),
                }
                .into(),
                SlowStop {
                    name: "quick",
                    journal: self.journal.clone(),
                }
                .into(),
            ]
        }
        fn stop_children_concurrently(&self) -> bool {
            true
        }
    }
    let system = System::new();
    let journal = Journal::new();
    let host = system
        .spawn(Host {
            journal: journal.clone(),
        })
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    let res = bounded("the stop", host.stop()).await;
    // The stuck child's on_stop timed out: reported, and the stop completed.
    let err = res.unwrap_err();
    assert!(err.to_string().contains("Stuck"), "{err}");
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    let entries = journal.take();
    assert!(
        entries.contains(&"quick:stopped".to_string()),
        "{entries:?}"
    );
    assert!(host.is_terminated());
    system.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// modo::Level.

#[tokio::test]
async fn modo_level_sets_the_mundane_level_and_logger_levels() {
    let _serial = SERIAL.lock().await;
    struct Quiet;
    impl Service for Quiet {
        fn mundane_level(&self) -> modo::Level {
            modo::Level::DEBUG
        }
        async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
            let log = ctx.logger();
            assert_eq!(log.prefix(), "[^Quiet]");
            log.mundane("a mundane line");
            log.error("an error line");
            Ok(())
        }
    }
    let system = System::new();
    let info = capture(modo::Level::INFO, || async {
        system.spawn(Quiet).await.unwrap();
        system.shutdown().await.unwrap();
    })
    .await;
    assert_eq!(info, ["ERROR]: [^Quiet]: an error line"]);
    let system = System::new();
    let debug = capture(modo::Level::DEBUG, || async {
        system.spawn(Quiet).await.unwrap();
        system.shutdown().await.unwrap();
    })
    .await;
    assert!(
        debug.contains(&"DEBUG]: [^Quiet]: Starting...".to_string()),
        "{debug:#?}"
    );
    assert!(
        debug.contains(&"DEBUG]: [^Quiet]: a mundane line".to_string()),
        "{debug:#?}"
    );
}

/// A dependency's task is launched by the first control message it gets (its parent's start
/// of it, or a stop). Children whose parent fails before starting them still get their stop:
/// every one is launched, stopped and dropped, nothing is left running or held.
#[tokio::test]
async fn children_a_failed_parent_never_started_are_still_stopped_and_dropped() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Kid {
        inits: Arc<AtomicUsize>,
        drops: Arc<AtomicUsize>,
    }
    impl Drop for Kid {
        fn drop(&mut self) {
            self.drops.fetch_add(1, Ordering::SeqCst);
        }
    }
    impl Service for Kid {
        fn on_init(&mut self) {
            self.inits.fetch_add(1, Ordering::SeqCst);
        }
    }
    struct Parent {
        inits: Arc<AtomicUsize>,
        drops: Arc<AtomicUsize>,
    }
    impl Service for Parent {
        fn dependencies(&mut self) -> Vec<Dependency> {
            (0..3)
                .map(|_| {
                    Kid {
                        inits: self.inits.clone(),
                        drops: self.drops.clone(),
                    }
                    .into()
                })
                .collect()
        }
        async fn on_start(&mut self, _: &mut Context<Self>) -> Result<(), BoxError> {
            Err("no start".into())
        }
    }

    let _serial = SERIAL.lock().await;
    let system = System::new();
    let (inits, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let parent = Parent {
        inits: inits.clone(),
        drops: drops.clone(),
    };
    assert!(bounded("the spawn", system.spawn(parent)).await.is_err());
    bounded("the shutdown", system.shutdown())
        .await
        .expect("shutdown");
    assert_eq!(system.live_actors(), 0);
    assert_eq!(inits.load(Ordering::SeqCst), 3, "each child was launched");
    assert_eq!(
        drops.load(Ordering::SeqCst),
        3,
        "and dropped: none is held unlaunched"
    );
}
