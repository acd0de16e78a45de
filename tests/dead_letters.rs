//! Dead letters: always counted (per service and in the System's book); logged at INFO only
//! when the service crashed, and only the first 10 such events (a line then says further
//! ones are only counted), DEBUG otherwise; a summary at shutdown when some were not logged.
//! modo's structured fields (`modo_*`) reach a tracing layer but `ModeFormat` does not print
//! them; a supervisor's restart line counts restarts from 1.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Buffer;
use modo::prelude::*;
use tracing::field::{Field, Visit};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};

/// The tests of this file run one at a time: see `SERIAL` in tests/children.rs (a call site
/// first reached with no subscriber around, while another thread installs its capture, can be
/// cached as "never" by tracing and the capture then misses lines).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One event as a layer sees it: level, message and every other field.
#[derive(Debug, Clone)]
struct Seen {
    level: tracing::Level,
    message: String,
    fields: BTreeMap<String, String>,
}

/// A layer that records every event with its fields.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

struct Fields<'a>(&'a mut String, &'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        } else {
            self.1
                .insert(field.name().to_string(), format!("{value:?}"));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            *self.0 = value.to_string();
        } else {
            self.1.insert(field.name().to_string(), value.to_string());
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: LayerContext<'_, S>) {
        let (mut message, mut fields) = (String::new(), BTreeMap::new());
        event.record(&mut Fields(&mut message, &mut fields));
        self.0.lock().unwrap().push(Seen {
            level: *event.metadata().level(),
            message,
            fields,
        });
    }
}

/// What a capture saw: the formatted lines (without time and pid) and the events.
struct Captured {
    lines: Vec<String>,
    events: Vec<Seen>,
}

impl Captured {
    fn lines_with(&self, needle: &str) -> Vec<&String> {
        self.lines.iter().filter(|l| l.contains(needle)).collect()
    }
}

/// Runs `body` with ModeFormat lines and a `Recorder` at DEBUG installed on this thread (the
/// test runtime is current-thread: every actor logs here).
async fn capture<F, Fut>(body: F) -> Captured
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let buffer = Buffer::default();
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry()
        .with(LevelFilter::DEBUG)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .event_format(modo::log::ModeFormat::default())
                .with_writer(buffer.clone()),
        )
        .with(recorder.clone());
    let guard = tracing::subscriber::set_default(subscriber);
    body().await;
    drop(guard);
    let lines = buffer
        .lines()
        .iter()
        .map(|l| l.splitn(3, "] [").nth(2).unwrap_or(l).to_string())
        .collect();
    let events = recorder.0.lock().unwrap().clone();
    Captured { lines, events }
}

/// Handles `Work`; `Quit` stops it cleanly from the handler, `Boom` crashes it: either way the
/// messages queued behind are dead letters.
struct Inbox;

impl Service for Inbox {
    fn label(&self) -> std::borrow::Cow<'static, str> {
        "Mailbox".into()
    }
}

struct Work;
struct Quit;
struct Boom;

impl Handler<Work> for Inbox {
    type Reply = ();
    async fn handle(&mut self, _: Work, _ctx: &mut Context<Self>) {}
}
impl Handler<Quit> for Inbox {
    type Reply = ();
    async fn handle(&mut self, _: Quit, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
impl Handler<Boom> for Inbox {
    type Reply = ();
    async fn handle(&mut self, _: Boom, ctx: &mut Context<Self>) {
        ctx.crash("boom");
    }
}

/// Spawns a `Mailbox`, then queues `first` and `n` works behind it without yielding (the
/// actor runs on this thread, so all are queued before it looks); waits until it ended.
async fn leave_behind<M>(system: &System, first: M, n: usize) -> Addr<Inbox>
where
    Inbox: Handler<M> + Handler<Work>,
    M: Send + 'static,
{
    let addr = system.spawn(Inbox).await.unwrap();
    addr.try_tell(first).map_err(|_| "room").unwrap();
    for _ in 0..n {
        addr.try_tell::<Work>(Work).map_err(|_| "room").unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), addr.wait_until_stopped())
        .await
        .expect("the service ends");
    addr
}

const LOST: &str = "message(s) moved to dead letters";

#[tokio::test]
async fn a_clean_stop_counts_its_dead_letters_and_logs_them_at_debug_only() {
    let _serial = SERIAL.lock().await;
    let system = System::new();
    let seen = capture(|| async {
        let addr = leave_behind(&system, Quit, 5).await;
        assert_eq!(addr.state(), ServiceState::Shutdown);
        assert_eq!(addr.dead_letters(), 5);
        let book = system.dead_letters();
        assert_eq!(book.total, 5);
        assert_eq!(book.by_service[0].label, "Mailbox");
        assert_eq!(book.by_service[0].id, addr.id());
        assert_eq!(book.by_service[0].count, 5);
    })
    .await;
    assert_eq!(
        seen.lines_with(LOST),
        [&format!("DEBUG]: [^Mailbox]: 5 {LOST}")]
    );
    let _ = system.shutdown().await;
}

#[tokio::test]
async fn a_crashed_service_logs_its_dead_letters_at_info() {
    let _serial = SERIAL.lock().await;
    let system = System::new();
    let seen = capture(|| async {
        let addr = leave_behind(&system, Boom, 3).await;
        assert!(addr.is_crashed());
        assert_eq!(addr.dead_letters(), 3);
        assert_eq!(system.dead_letters().total, 3);
    })
    .await;
    assert_eq!(
        seen.lines_with(LOST),
        [&format!("INFO]: [^Mailbox]: 3 {LOST} by its crash")]
    );
    let _ = system.shutdown().await;
}

#[tokio::test]
async fn after_ten_logged_events_the_rest_are_counted_and_one_line_says_so() {
    let _serial = SERIAL.lock().await;
    let system = System::new();
    let seen = capture(|| async {
        for i in 0..12 {
            let addr = leave_behind(&system, Boom, 1 + i % 2).await;
            assert_eq!(addr.dead_letters(), 1 + (i % 2) as u64);
        }
        // 6 x 1 + 6 x 2.
        let book = system.dead_letters();
        assert_eq!(book.total, 18);
        assert_eq!(book.by_service.len(), 12);
        assert_eq!(book.by_service.iter().map(|c| c.count).sum::<u64>(), 18);
        let _ = system.shutdown().await;
    })
    .await;
    let info: Vec<&String> = seen
        .lines_with(LOST)
        .into_iter()
        .filter(|l| l.starts_with("INFO"))
        .collect();
    let debug: Vec<&String> = seen
        .lines_with(LOST)
        .into_iter()
        .filter(|l| l.starts_with("DEBUG"))
        .collect();
    assert_eq!(info.len(), 10, "{:#?}", seen.lines);
    assert_eq!(debug.len(), 2, "{:#?}", seen.lines);
    let further = seen.lines_with("further dead letters are counted, not logged");
    assert_eq!(further.len(), 1, "{:#?}", seen.lines);
    // In order: the tenth logged event, the notice, then the unlogged ones.
    let pos = |needle: &String| seen.lines.iter().position(|l| l == needle).unwrap();
    assert!(pos(info[9]) < pos(further[0]) && pos(further[0]) < pos(debug[0]));
    // The summary at shutdown: events 11 and 12 (i = 10, 11) left 1 + 2 messages unlogged.
    let summary = seen.lines_with("undelivered message(s) in all");
    assert_eq!(summary.len(), 1, "{:#?}", seen.lines);
    assert!(
        summary[0].starts_with("INFO]: 18 undelivered message(s) in all, 3 of them not logged"),
        "{}",
        summary[0]
    );
}

#[tokio::test]
async fn the_shutdown_summary_comes_only_when_something_was_not_logged() {
    let _serial = SERIAL.lock().await;
    // Nothing lost: no summary.
    let system = System::new();
    let seen = capture(|| async {
        system.spawn(Inbox).await.unwrap();
        system.shutdown().await.unwrap();
    })
    .await;
    assert!(
        seen.lines_with("undelivered").is_empty(),
        "{:#?}",
        seen.lines
    );

    // Only crashes, all logged: no summary either.
    let system = System::new();
    let seen = capture(|| async {
        leave_behind(&system, Boom, 2).await;
        let _ = system.shutdown().await;
    })
    .await;
    assert!(
        seen.lines_with("undelivered").is_empty(),
        "{:#?}",
        seen.lines
    );

    // A clean stop's dead letters are not logged at INFO: the summary counts them.
    let system = System::new();
    let seen = capture(|| async {
        leave_behind(&system, Quit, 4).await;
        leave_behind(&system, Boom, 1).await;
        system.shutdown().await.unwrap();
    })
    .await;
    assert_eq!(
        seen.lines_with("undelivered"),
        [
            "INFO]: 5 undelivered message(s) in all, 4 of them not logged (messages left by \
             clean stops, and past the first crashes)"
        ]
    );
}

#[tokio::test]
async fn modo_fields_reach_a_layer_but_mode_format_does_not_print_them() {
    let _serial = SERIAL.lock().await;
    let system = System::new();
    let mut id = None;
    let seen = capture(|| async {
        let addr = leave_behind(&system, Boom, 2).await;
        id = Some(addr.id());
        // A field of the program's own is printed after the message.
        tracing::info!(target: "app", user = 42, "a line of the program's own");
    })
    .await;
    let event = seen
        .events
        .iter()
        .find(|e| e.message.contains(LOST))
        .expect("the dead-letter event");
    assert_eq!(event.level, tracing::Level::INFO);
    assert_eq!(event.fields["modo_count"], "2");
    assert_eq!(event.fields["modo_id"], id.unwrap().to_string());
    let line = &seen.lines_with(LOST)[0];
    assert!(!line.contains("modo_"), "{line}");
    assert!(line.ends_with("by its crash"), "{line}");
    assert_eq!(
        seen.lines_with("program's own"),
        ["INFO]: a line of the program's own user=42"]
    );
    let _ = system.shutdown().await;
}

#[tokio::test]
async fn a_supervisor_counts_restarts_from_one_in_its_line() {
    let _serial = SERIAL.lock().await;
    struct Child;
    impl Service for Child {}
    let system = System::new();
    let seen = capture(|| async {
        let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
        let child = sup.supervise(|| Child).await.unwrap();
        for n in 1..=2 {
            child.crash(format!("boom {n}"));
            tokio::time::timeout(
                Duration::from_secs(10),
                child.wait_until(|c| c.restart_count() == n && c.is_started()),
            )
            .await
            .expect("restarted");
        }
        system.shutdown().await.unwrap();
    })
    .await;
    let restarting = seen.lines_with("restarting");
    assert_eq!(restarting.len(), 2, "{:#?}", seen.lines);
    assert!(
        restarting[0].starts_with("WARN]: [^Supervisor]: restarting Child: boom 1"),
        "{}",
        restarting[0]
    );
    assert!(
        restarting[0].ends_with("(one_for_one, restart 1)"),
        "{}",
        restarting[0]
    );
    assert!(
        restarting[1].ends_with("(one_for_one, restart 2)"),
        "{}",
        restarting[1]
    );
    assert!(!restarting[0].contains("modo_"), "{}", restarting[0]);
    // The same event carries the structured fields for machines.
    let event = seen
        .events
        .iter()
        .find(|e| e.message.contains("restarting Child: boom 1"))
        .expect("the restart event");
    assert_eq!(event.fields["modo_child"], "Child");
    assert_eq!(event.fields["modo_supervisor"], "Supervisor");
    assert_eq!(event.fields["modo_strategy"], "one_for_one");
    assert_eq!(event.fields["modo_restart_count"], "0");
}
