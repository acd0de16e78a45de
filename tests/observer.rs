//! The observer's HTTP API, stream and actions, through real HTTP on loopback: what it shows,
//! what it lets a token holder do, and how it refuses bad input (a JSON 4xx, never a panic or
//! a hang; the server answers normally afterwards).
#![cfg(feature = "observer")]

mod observer_support;

use std::borrow::Cow;
use std::time::Duration;

use hyper::StatusCode;
use modo::observe::{Observer, ObserverConfig};
use modo::prelude::*;
use modo::supervisor::Backoff;
use observer_support::{Api, Stream, any_port};
use serde_json::Value;

const TOKEN: &str = "correct horse battery staple";
const WAIT: Duration = Duration::from_secs(5);

/// Answers pings.
struct Echo;
struct Ping;

impl Service for Echo {}

impl Handler<Ping> for Echo {
    type Reply = ();
    async fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) {}
}

/// Has a background task and a diagnostic flag.
struct Tasked;

impl Service for Tasked {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let stop = ctx.stop_signal();
        ctx.spawn_named("Tasked.poll", async move {
            stop.stopped().await;
        });
        ctx.diag().set_flag("db:connected");
        Ok(())
    }
}

/// A named, unsupervised service.
struct Loner;
impl Service for Loner {
    fn label(&self) -> Cow<'static, str> {
        Cow::Borrowed("Loner")
    }
}

struct Tree {
    system: System,
    api: Api,
    echo: Addr<Echo>,
    observer: Addr<Observer>,
}

/// A supervised team (Echo, Tasked; restarts after 300 ms, so a crash is seen as a state)
/// and an observer beside it, snapshots every 50 ms.
async fn tree(config: ObserverConfig) -> Tree {
    let system = System::new();
    let team = system
        .spawn(
            Supervisor::builder()
                .label("Team")
                .backoff(Backoff::Fixed(Duration::from_millis(300)))
                .build(),
        )
        .await
        .unwrap();
    let echo = team.supervise(|| Echo).await.unwrap();
    team.supervise(|| Tasked).await.unwrap();
    let config = config.bind(any_port()).interval(Duration::from_millis(50));
    let listening = config.listening();
    let observer = system.spawn(Observer::new(config)).await.unwrap();
    let addr = listening.addr().expect("listening once started");
    Tree {
        system,
        api: Api::new(addr),
        echo,
        observer,
    }
}

fn by_label<'a>(services: &'a [Value], label: &str) -> &'a Value {
    services
        .iter()
        .find(|s| s["label"] == label)
        .unwrap_or_else(|| panic!("no {label} in {services:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graph_shows_the_tree_in_the_versioned_schema() {
    let t = tree(ObserverConfig::new()).await;
    let mut stream = Stream::connect(&t.api).await;
    // The first snapshot is taken as the observer starts; once one shows it running, the
    // graph holds the whole tree, the observer's tasks included.
    stream.wait_running(WAIT, "Observer").await;
    let reply = t.api.get("/api/v1/graph").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.json["version"], 1);
    assert_eq!(reply.json["type"], "snapshot");
    assert!(reply.json["seq"].is_u64());
    assert!(reply.json["at_ms"].as_u64().unwrap() > 0);
    let services = reply.json["services"].as_array().unwrap();
    let labels: Vec<&str> = services
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Team", "Echo", "Tasked", "Observer"]);
    let team = by_label(services, "Team");
    let echo = by_label(services, "Echo");
    assert_eq!(echo["parent"], team["id"]);
    assert_eq!(team["children"].as_array().unwrap().len(), 2);
    assert_eq!(echo["depth"], 1);
    assert_eq!(echo["state"], "running");
    assert_eq!(echo["restart_count"], 0);
    for field in [
        "handled",
        "rate",
        "handle_time",
        "mailbox_wait",
        "crashes",
        "last_crash",
    ] {
        assert!(
            echo["stats"].get(field).is_some(),
            "stats.{field} in {echo}"
        );
    }
    let observer = by_label(services, "Observer");
    assert!(
        observer["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "observer:http"),
        "{observer}"
    );
    t.system.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_service_in_detail_stats_tasks_flags_and_last_crash() {
    let t = tree(ObserverConfig::new()).await;
    // Someone looks (the graph), so the messages from now on are observed.
    let tasked = t.api.id_of("Tasked").await;
    for _ in 0..50 {
        t.echo.ask(Ping).await.unwrap();
    }
    let reply = t.api.get(&format!("/api/v1/services/{tasked}")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["version"], 1);
    assert_eq!(reply.json["type"], "service");
    let s = &reply.json["service"];
    assert_eq!(s["tasks"], serde_json::json!(["Tasked.poll"]));
    assert_eq!(s["flags"], serde_json::json!(["db:connected"]));
    assert_eq!(s["crash_reason"], Value::Null);

    let echo = t.echo.id().to_string();
    let s = t.api.get(&format!("/api/v1/services/{echo}")).await.json["service"].clone();
    assert_eq!(s["stats"]["handled"], 50, "{s}");
    assert!(s["stats"]["handle_time"]["p50_ns"].as_u64().unwrap() > 0);
    assert!(
        s["stats"]["handle_time"]["p99_ns"].as_u64().unwrap()
            >= s["stats"]["handle_time"]["p50_ns"].as_u64().unwrap()
    );

    t.echo.crash(CrashReason::msg("disk on fire"));
    t.echo
        .wait_until(|e| e.restart_count() == 1 && e.state() == ServiceState::Running)
        .await;
    let s = t.api.get(&format!("/api/v1/services/{echo}")).await.json["service"].clone();
    assert_eq!(s["restart_count"], 1);
    assert_eq!(s["stats"]["crashes"], 1);
    assert_eq!(s["stats"]["last_crash"]["reason"], "disk on fire");
    let at = s["stats"]["last_crash"]["at_ms"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        at <= now && now - at < 60_000,
        "crash time {at} vs now {now}"
    );
    t.system.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_sends_a_snapshot_then_numbered_changes() {
    let t = tree(ObserverConfig::new()).await;
    let mut stream = Stream::connect(&t.api).await;
    let first = stream.next(WAIT).await.expect("a first event");
    assert_eq!(first.kind, "snapshot");
    assert_eq!(first.doc["version"], 1);
    assert_eq!(first.id, first.doc["seq"].as_u64());
    // Seen running first, so that the crash shows as a change of state.
    stream.wait_running(WAIT, "Echo").await;
    let mut seq = stream.last_seq;

    // A crash under a supervisor that waits 300 ms: crashed state, the crash, the restart.
    let echo = t.echo.id().to_string();
    t.echo.crash(CrashReason::msg("bad batch"));
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !(seen.contains(&"restarted".to_owned()) && seen.contains(&"to crashed".to_owned())) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let event = stream
            .next(left)
            .await
            .unwrap_or_else(|| panic!("the crash and restart within 5 s; saw {seen:?}"));
        if event.kind != "changes" {
            continue;
        }
        let doc = &event.doc;
        assert_eq!(doc["version"], 1);
        assert_eq!(
            doc["seq"].as_u64().unwrap(),
            seq + 1,
            "no gap in the numbering"
        );
        assert_eq!(event.id, Some(seq + 1));
        seq += 1;
        for c in doc["changes"].as_array().unwrap() {
            if c["id"] != echo.as_str() {
                continue;
            }
            match c["kind"].as_str().unwrap() {
                "state" => seen.push(format!("to {}", c["to"].as_str().unwrap())),
                "crashed" => {
                    assert_eq!(c["crash"]["reason"], "bad batch");
                    seen.push("crashed".into());
                }
                "restarted" => {
                    assert_eq!(c["restart_count"], 1);
                    assert_eq!(c["crash"]["reason"], "bad batch");
                    assert!(c["crash"]["at_ms"].as_u64().unwrap() > 0);
                    seen.push("restarted".into());
                }
                _ => {}
            }
        }
    }
    assert!(seen.contains(&"crashed".to_owned()), "{seen:?}");

    // A new service shows as added, and as removed once it stopped for good.
    let loner = t.system.spawn(Loner).await.unwrap();
    let added = stream
        .wait_change(WAIT, "adding Loner", |c| {
            c["kind"] == "added" && c["service"]["label"] == "Loner"
        })
        .await;
    assert_eq!(added["service"]["id"], loner.id().to_string());
    loner.stop().await.unwrap();
    stream
        .wait_change(WAIT, "removing Loner", |c| {
            c["kind"] == "removed" && c["id"] == loner.id().to_string()
        })
        .await;
    t.system.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_observer_is_read_only() {
    let t = tree(ObserverConfig::new()).await;
    let echo = t.echo.id();
    for action in ["stop", "restart", "crash"] {
        let reply = t
            .api
            .post(
                &format!("/api/v1/services/{echo}/{action}"),
                Some(TOKEN),
                "",
            )
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.text);
        assert_eq!(reply.code(), "read_only");
        assert!(
            reply.json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("no token is configured"),
            "{}",
            reply.text
        );
    }
    assert_eq!(t.echo.restart_count(), 0);
    assert_eq!(t.echo.state(), ServiceState::Running);
    let status = t.api.get("/api/v1/status").await.json;
    assert_eq!(status["read_only"], true);
    t.system.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_need_the_token_and_then_work() {
    let t = tree(ObserverConfig::new().token(TOKEN)).await;
    let echo = t.echo.id();
    let restart = format!("/api/v1/services/{echo}/restart");

    let reply = t.api.post(&restart, None, "").await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.code(), "unauthorized");
    assert!(
        reply.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    // Every action, with no token or a wrong one (also for a service that does not exist:
    // the answer does not tell who exists), gets the typed 401 and does nothing.
    let unknown = uuid_like();
    for target in [echo.to_string(), unknown] {
        for action in ["stop", "restart", "crash"] {
            let path = format!("/api/v1/services/{target}/{action}");
            for token in [
                None,
                Some(""),
                Some("correct horse"),
                Some("correct horse battery staplf"),
            ] {
                let reply = t.api.post(&path, token, "").await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path} {token:?}");
                assert_eq!(reply.code(), "unauthorized", "{}", reply.text);
                assert_eq!(reply.json["version"], 1);
                assert_eq!(reply.json["error"]["status"], 401);
                assert_eq!(reply.headers["content-type"], "application/json");
            }
        }
    }
    // Not a bearer token, or the token in another header: refused the same way.
    for raw in [
        format!("Authorization: Basic {TOKEN}"),
        format!("Authorization: {TOKEN}"),
        format!("X-Token: {TOKEN}"),
    ] {
        let (code, text) = t
            .api
            .raw(
                format!(
                    "POST /api/v1/services/{echo}/stop HTTP/1.1\r\nHost: 127.0.0.1\r\n{raw}\r\n\
                     Content-Length: 0\r\n\r\n"
                )
                .as_bytes(),
            )
            .await;
        assert_eq!(code, 401, "{raw}: {text}");
        assert!(text.contains("\"unauthorized\""), "{text}");
    }
    assert_eq!(t.echo.restart_count(), 0, "refused actions did nothing");
    assert_eq!(t.echo.state(), ServiceState::Running);

    let reply = t.api.post(&restart, Some(TOKEN), "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["ok"], true);
    assert_eq!(reply.json["action"], "restart");
    assert_eq!(reply.json["pending"], false);
    assert_eq!(reply.json["restart_count"], 1);
    assert_eq!(t.echo.restart_count(), 1);

    let reply = t
        .api
        .post(
            &format!("/api/v1/services/{echo}/crash"),
            Some(TOKEN),
            r#"{"reason": "from the test"}"#,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    t.echo.wait_until(|e| e.restart_count() == 2).await;
    let last = t.echo.service_ref().stats().last_crash.unwrap();
    assert_eq!(last.reason.to_string(), "from the test");

    // An unsupervised service stops for good, and is then unknown.
    let loner = t.system.spawn(Loner).await.unwrap();
    let stop = format!("/api/v1/services/{}/stop", loner.id());
    let reply = t.api.post(&stop, Some(TOKEN), "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json["state"], "shutdown");
    assert!(loner.is_terminated());
    let reply = t.api.post(&stop, Some(TOKEN), "").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.code(), "unknown_service");

    // The observer does not act on itself.
    let reply = t
        .api
        .post(
            &format!("/api/v1/services/{}/stop", t.observer.id()),
            Some(TOKEN),
            "",
        )
        .await;
    assert_eq!(reply.status, StatusCode::CONFLICT);
    assert_eq!(reply.code(), "would_stop_observer");
    assert_eq!(t.observer.state(), ServiceState::Running);
    t.system.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_json_4xx_and_the_server_goes_on() {
    let t = tree(
        ObserverConfig::new()
            .token(TOKEN)
            .max_body(1024)
            .body_timeout(Duration::from_millis(300)),
    )
    .await;
    let api = &t.api;
    let echo = t.echo.id();
    let unknown = uuid_like();

    let check = |reply: &observer_support::Reply, status: u16, code: &str| {
        assert_eq!(reply.status.as_u16(), status, "{}", reply.text);
        assert_eq!(reply.code(), code, "{}", reply.text);
        assert_eq!(reply.json["version"], 1);
        assert_eq!(reply.json["error"]["status"], status);
        assert!(!reply.json["error"]["message"].as_str().unwrap().is_empty());
    };

    check(
        &api.get(&format!("/api/v1/services/{unknown}")).await,
        404,
        "unknown_service",
    );
    check(
        &api.post(
            &format!("/api/v1/services/{unknown}/restart"),
            Some(TOKEN),
            "",
        )
        .await,
        404,
        "unknown_service",
    );
    check(&api.get("/api/v1/services/not-a-uuid").await, 400, "bad_id");
    check(
        &api.post("/api/v1/services/12345/stop", Some(TOKEN), "")
            .await,
        400,
        "bad_id",
    );
    check(
        &api.post(&format!("/api/v1/services/{echo}/explode"), Some(TOKEN), "")
            .await,
        404,
        "unknown_action",
    );
    let crash = format!("/api/v1/services/{echo}/crash");
    check(
        &api.post(&crash, Some(TOKEN), "{not json").await,
        400,
        "bad_json",
    );
    check(
        &api.post(&crash, Some(TOKEN), r#"{"reason": 7}"#).await,
        400,
        "bad_json",
    );
    check(
        &api.post(&crash, Some(TOKEN), r#"{"why": "x"}"#).await,
        400,
        "bad_json",
    );
    check(
        &api.post(
            &format!("/api/v1/services/{echo}/stop"),
            Some(TOKEN),
            r#"{"reason": "x"}"#,
        )
        .await,
        400,
        "bad_json",
    );
    let long = format!(r#"{{"reason": "{}"}}"#, "x".repeat(2000));
    check(
        &api.post(&crash, Some(TOKEN), &long).await,
        413,
        "too_large",
    );
    check(&api.get("/api/v1/nowhere").await, 404, "not_found");
    check(&api.get("/metricz").await, 404, "not_found");
    check(
        &api.post("/api/v1/graph", None, "").await,
        405,
        "method_not_allowed",
    );
    assert_eq!(t.echo.restart_count(), 0, "no bad request acted");
    assert_eq!(t.echo.state(), ServiceState::Running);

    // What a polite client would not send, raw.
    let (code, text) = api
        .raw(b"GET /api/v1/../v1/graph HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("\"bad_path\""), "{text}");
    let (code, text) = api
        .raw(b"GET /api/v1/services/%2e%2e/stop HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("\"bad_path\""), "{text}");
    let (code, _) = api
        .raw(b"GET /../../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await;
    assert_eq!(code, 400);
    // A body announced at 10 MB: refused before it is read.
    let head = format!(
        "POST /api/v1/services/{echo}/crash HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\
         Content-Length: 10000000\r\n\r\n{{\"reason\": \""
    );
    let (code, text) = api.raw(head.as_bytes()).await;
    assert_eq!(code, 413, "{text}");
    assert!(text.contains("\"too_large\""), "{text}");
    // A body sent in chunks, with no length announced, past the limit: refused as it comes.
    let chunk = format!(r#"{{"reason": "{}"#, "y".repeat(1500));
    let head = format!(
        "POST /api/v1/services/{echo}/crash HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    let (code, text) = api.raw(head.as_bytes()).await;
    assert_eq!(code, 413, "{text}");
    assert!(text.contains("\"too_large\""), "{text}");
    // A body that stops half-way: refused once the body timeout has passed.
    let head = format!(
        "POST /api/v1/services/{echo}/crash HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"reason\": \""
    );
    let (code, text) = api.raw(head.as_bytes()).await;
    assert_eq!(code, 408, "{text}");
    assert!(text.contains("\"body_timeout\""), "{text}");
    // A foreign host name (DNS rebinding) on a loopback observer.
    let (code, text) = api
        .raw(b"GET /api/v1/graph HTTP/1.1\r\nHost: evil.example:6464\r\n\r\n")
        .await;
    assert_eq!(code, 421, "{text}");
    assert!(text.contains("\"bad_host\""), "{text}");
    let (code, _) = api
        .raw(b"GET /api/v1/graph HTTP/1.1\r\nHost: localhost:1\r\n\r\n")
        .await;
    assert_eq!(code, 200);
    // Not HTTP at all.
    let (code, _) = api
        .raw(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n")
        .await;
    assert_eq!(code, 400);

    // Every answer carries the security headers; and the server still serves.
    let reply = api.get("/api/v1/graph").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["x-content-type-options"], "nosniff");
    assert_eq!(reply.headers["x-frame-options"], "DENY");
    assert!(
        reply.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert_eq!(t.observer.state(), ServiceState::Running);
    t.system.shutdown().await.unwrap();
}

fn uuid_like() -> String {
    "7d444840-9dc0-11d1-b245-5ffdce74fad2".to_owned()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Waits (at most 10 s, checking every 10 ms) until `cond` holds; panics naming `what`.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within 10 s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How long observation stays on after the last watcher, in the tests that watch it switch.
const LINGER: Duration = Duration::from_millis(400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observation_is_on_while_someone_watches() {
    let system = System::new();
    let echo = system.spawn(Echo).await.unwrap();
    let config = ObserverConfig::new()
        .bind(any_port())
        .interval(Duration::from_millis(20))
        .heartbeat(Duration::from_millis(50))
        .stop_observing_after(Some(LINGER));
    let listening = config.listening();
    let observer = system.spawn(Observer::new(config)).await.unwrap();
    let api = Api::new(listening.addr().unwrap());
    assert!(!system.is_observing(), "nobody watches yet");
    // The observer's own figures do not count as watching.
    let status = api.get("/api/v1/status").await;
    assert_eq!(status.json["observing"], false, "{}", status.text);
    for _ in 0..20 {
        echo.ask(Ping).await.unwrap();
    }
    assert_eq!(
        echo.service_ref().stats().handled,
        0,
        "unwatched: nothing recorded"
    );

    // A look at the graph turns it on at once, and it goes off once nobody looked for a while.
    assert_eq!(api.get("/api/v1/graph").await.status, StatusCode::OK);
    assert!(
        system.is_observing(),
        "on by the time the graph is answered"
    );
    for _ in 0..20 {
        echo.ask(Ping).await.unwrap();
    }
    assert_eq!(echo.service_ref().stats().handled, 20);
    eventually("observation off after the linger", || {
        !system.is_observing()
    })
    .await;

    // So does a look at one service.
    let reply = api.get(&format!("/api/v1/services/{}", echo.id())).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(system.is_observing());
    eventually("observation off after the linger", || {
        !system.is_observing()
    })
    .await;

    // An open stream keeps it on; once it closes, it goes off after the linger.
    let opened = now_ms();
    let mut stream = Stream::connect(&api).await;
    assert!(system.is_observing(), "on by the time the stream answers");
    // The sampler settles the switch before each look: an event from a look made two
    // lingers after the stream opened says it has decided with the stream open, past the
    // linger.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let event = stream.next(left).await.expect("heartbeats within 5 s");
        if event.doc["at_ms"].as_u64().unwrap() >= opened + 2 * LINGER.as_millis() as u64 {
            break;
        }
    }
    assert!(system.is_observing(), "still on while the stream is open");
    drop(stream);
    eventually("observation off after the stream closed", || {
        !system.is_observing()
    })
    .await;
    for _ in 0..20 {
        echo.ask(Ping).await.unwrap();
    }
    assert_eq!(
        echo.service_ref().stats().handled,
        20,
        "unwatched again: nothing more"
    );
    let status = api.get("/api/v1/status").await;
    assert_eq!(status.json["observing"], false, "{}", status.text);
    observer.stop().await.unwrap();
    assert!(!system.is_observing());
    system.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observation_always_on_when_asked_and_what_the_program_turned_on_stays_on() {
    let system = System::new();
    // Without a linger: on from the start, watched or not, off at the stop.
    let config = ObserverConfig::new()
        .bind(any_port())
        .stop_observing_after(None);
    let listening = config.listening();
    let observer = system.spawn(Observer::new(config)).await.unwrap();
    assert!(system.is_observing());
    let addr = listening.addr().unwrap();
    let status = Api::new(addr).get("/api/v1/status").await;
    assert_eq!(status.json["observing"], true);
    observer.stop().await.unwrap();
    assert!(!system.is_observing(), "turned off again at the stop");
    assert_eq!(listening.addr(), None);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "nothing listens after the stop"
    );

    // Left on when the program turned it on, watched or not (the linger's part of this is
    // checked in paused time by the unit tests of src/observe/watch.rs).
    system.set_observing(true);
    let config = ObserverConfig::new().bind(any_port());
    let listening = config.listening();
    let observer = system.spawn(Observer::new(config)).await.unwrap();
    let api = Api::new(listening.addr().unwrap());
    assert_eq!(api.get("/api/v1/graph").await.status, StatusCode::OK);
    observer.stop().await.unwrap();
    assert!(system.is_observing(), "not the observer's to turn off");
    system.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_observer_listens_on_the_same_port() {
    let system = System::new();
    let config = ObserverConfig::new().bind(any_port());
    let listening = config.listening();
    let observer = system.spawn(Observer::new(config)).await.unwrap();
    let before = listening.addr().unwrap();
    observer.restart().await.unwrap();
    assert_eq!(listening.wait().await, before);
    assert_eq!(
        Api::new(before).get("/api/v1/status").await.status,
        StatusCode::OK
    );
    system.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_errors_are_typed() {
    let system = System::new();
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    // SO_REUSEADDR does not let two listeners share a port.
    let err = system
        .spawn(Observer::new(ObserverConfig::new().bind(addr)))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("cannot listen on {addr}")),
        "{err}"
    );
    let err = system
        .spawn(Observer::new(
            ObserverConfig::new().bind(any_port()).token(""),
        ))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("token is empty"), "{err}");
    system.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_limit_get_503() {
    let t = tree(ObserverConfig::new().max_streams(1)).await;
    let _one = Stream::connect(&t.api).await;
    let reply = t.api.get("/api/v1/events").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.code(), "too_many_streams");
    let status = t.api.get("/api/v1/status").await.json;
    assert_eq!(status["stream_clients"], 1);
    t.system.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_from_the_binary() {
    let t = tree(ObserverConfig::new()).await;
    let page = t.api.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text.contains("<script src=\"/assets/observer.js\">"));
    assert!(
        !page.text.contains("http://") && !page.text.contains("https://"),
        "nothing from elsewhere"
    );
    let js = t.api.get("/assets/observer.js").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.text.contains("new EventSource(\"/api/v1/events\")"));
    let css = t.api.get("/assets/observer.css").await;
    assert!(
        css.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    t.system.shutdown().await.unwrap();
}

/// The Worker adds the observer as its first child; it is not one of the services the Worker
/// waits for, so the Worker still ends when they have stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_adds_the_observer_and_still_ends_with_its_services() {
    struct Brief;
    impl Service for Brief {
        async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
            let me = ctx.myself().clone();
            ctx.spawn(async move {
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let _ = me.send_lifecycle(Lifecycle::Stop);
            });
            Ok(())
        }
    }
    let config = ObserverConfig::new()
        .bind(any_port())
        .interval(Duration::from_millis(50));
    let listening = config.listening();
    let worker = tokio::spawn(
        modo::Worker::new(Brief)
            .observer(config)
            .override_logging(false)
            .handle_signals(false)
            .detect_blocking(false)
            .execute(),
    );
    let addr = tokio::time::timeout(WAIT, listening.wait()).await.unwrap();
    let api = Api::new(addr);
    let mut stream = Stream::connect(&api).await;
    stream.wait_running(WAIT, "Brief").await;
    let services = api.services().await;
    let labels: Vec<&str> = services
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Worker", "Observer", "Brief"]);
    let observer = by_label(&services, "Observer");
    assert_eq!(observer["parent"], by_label(&services, "Worker")["id"]);
    assert_eq!(observer["depth"], 1);
    let ended = tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("the Worker ends once Brief has stopped");
    ended.unwrap().unwrap();
    assert_eq!(listening.addr(), None);
}

/// A service whose label no other test uses: the Prometheus recorder is global to the test
/// process, so its figures are this test's alone.
#[cfg(feature = "prometheus")]
struct Metered;

#[cfg(feature = "prometheus")]
impl Service for Metered {}

#[cfg(feature = "prometheus")]
impl Handler<Ping> for Metered {
    type Reply = ();
    async fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) {}
}

#[cfg(feature = "prometheus")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_in_the_prometheus_format() {
    // Observation on for the observer's whole life, as for a Prometheus server that scrapes
    // less often than the linger.
    let t = tree(ObserverConfig::new().stop_observing_after(None)).await;
    let metered = t.system.spawn(Metered).await.unwrap();
    for _ in 0..20 {
        metered.ask(Ping).await.unwrap();
    }
    let reply = t.api.get("/metrics").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    assert!(
        reply
            .text
            .contains("modo_messages_handled_total{service=\"Metered\"} 20"),
        "{}",
        reply.text
    );
    assert!(reply.text.contains("modo_handle_seconds"), "{}", reply.text);
    t.system.shutdown().await.unwrap();
}

/// The status document's count of looks.
async fn looks(api: &Api) -> u64 {
    api.get("/api/v1/status").await.json["looks"]
        .as_u64()
        .expect("looks in the status document")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observer_nobody_watches_takes_no_looks_and_a_reader_gets_a_fresh_graph() {
    let system = System::new();
    let config = ObserverConfig::new()
        .bind(any_port())
        .interval(Duration::from_millis(20))
        .stop_observing_after(Some(LINGER));
    let listening = config.listening();
    let observer = system.spawn(Observer::new(config)).await.unwrap();
    let api = Api::new(listening.addr().unwrap());

    // Unwatched for 15 intervals: at most the look in flight when it started (the first
    // look is the observer's start).
    let before = looks(&api).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = looks(&api).await;
    assert!(
        after <= before + 1,
        "looks while unwatched: {before} then {after}"
    );

    // A service spawned meanwhile is in the graph the first reader gets.
    let late = system.spawn(Loner).await.unwrap();
    let graph = api.get("/api/v1/graph").await;
    assert_eq!(graph.status, StatusCode::OK);
    let services = graph.json["services"].as_array().expect("services");
    assert!(
        services.iter().any(|s| s["id"] == late.id().to_string()),
        "the graph was looked at for its reader: {}",
        graph.text
    );
    // Watched now (for the linger): looks go on at every interval.
    let watched = looks(&api).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while looks(&api).await < watched + 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no looks while watched"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    observer.stop().await.unwrap();
    system.shutdown().await.unwrap();
}
