//! The chat server of `examples/chat.rs`, run in-process on 127.0.0.1 and driven by real TCP
//! clients: 200 clients in 10 rooms each get every line of their room exactly once and in
//! order per sender; a session that panics leaves its room and the others go on; `/quit`
//! delivers what was queued, then "bye"; a shutdown with every client connected is clean and
//! bounded. Traffic goes to 127.0.0.1 only; every wait is bounded.

#[path = "../examples/chat_app/mod.rs"]
mod chat_app;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chat_app::ChatServer;
use modo::System;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// The bound on any one read a client waits for.
const READ_BOUND: Duration = Duration::from_secs(20);

/// Starts the server on a free port of 127.0.0.1; returns the system and the port.
async fn start() -> (System, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let system = System::new();
    system.spawn(ChatServer::new(listener)).await.unwrap();
    (system, port)
}

struct Client {
    label: String,
    lines: Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
}

impl Client {
    /// Connects and reads the greeting.
    async fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let (read, write) = stream.into_split();
        let mut client = Client {
            label: String::new(),
            lines: BufReader::new(read).lines(),
            write,
        };
        let hello = client.recv().await.expect("a greeting");
        client.label = hello
            .strip_prefix("hello ")
            .unwrap_or_else(|| panic!("greeting: {hello:?}"))
            .to_string();
        assert!(client.label.starts_with("Session#"), "{hello}");
        client
    }

    async fn send(&mut self, line: &str) {
        self.write
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }

    /// The next line, or `None` at end of file (or a reset connection).
    async fn recv(&mut self) -> Option<String> {
        match tokio::time::timeout(READ_BOUND, self.lines.next_line()).await {
            Ok(Ok(line)) => line,
            Ok(Err(_)) => None,
            Err(_) => panic!("{}: no line within {READ_BOUND:?}", self.label),
        }
    }

    async fn expect(&mut self, want: &str) {
        let got = self.recv().await;
        assert_eq!(got.as_deref(), Some(want), "{}", self.label);
    }

    async fn join(&mut self, room: &str) {
        self.send(&format!("/join {room}")).await;
        self.expect(&format!("joined {room}")).await;
    }

    async fn who(&mut self) -> Vec<String> {
        self.send("/who").await;
        let line = self.recv().await.expect("a members line");
        let members = line.strip_prefix("members:").expect("members");
        members.split_whitespace().map(String::from).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_get_every_line_of_their_room_once_in_order() {
    const CLIENTS: usize = 200;
    const ROOMS: usize = 10;
    const LINES: usize = 20;
    let (system, port) = start().await;

    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        clients.push(Client::connect(port).await);
    }
    // Every client has joined before anyone speaks, so everyone hears every line of its room.
    let barrier = Arc::new(tokio::sync::Barrier::new(CLIENTS));
    let mut tasks = Vec::with_capacity(CLIENTS);
    for (i, mut client) in clients.into_iter().enumerate() {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let room = format!("room{}", i % ROOMS);
            client.join(&room).await;
            barrier.wait().await;
            for k in 0..LINES {
                client.send(&format!("c{i} {k}")).await;
            }
            // Each member of the room said LINES lines; the sender hears its own too.
            let expected = CLIENTS / ROOMS * LINES;
            let mut by_sender: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for _ in 0..expected {
                let line = client.recv().await.expect("a room line");
                let (from, text) = line.split_once(": ").expect("from: text");
                assert!(from.starts_with("Session#"), "{line}");
                let (c, k) = text.split_once(' ').expect("c<i> <k>");
                let sender: usize = c[1..].parse().unwrap();
                assert_eq!(sender % ROOMS, i % ROOMS, "a line of another room: {line}");
                by_sender
                    .entry(sender)
                    .or_default()
                    .push(k.parse().unwrap());
            }
            (i, client, by_sender)
        }));
    }
    let mut connected = Vec::with_capacity(CLIENTS);
    for task in tasks {
        let (i, client, by_sender) = task.await.unwrap();
        assert_eq!(by_sender.len(), CLIENTS / ROOMS, "client {i}: senders");
        for (sender, ks) in by_sender {
            assert_eq!(
                ks,
                (0..LINES).collect::<Vec<_>>(),
                "client {i}: lines of sender {sender} lost, doubled or out of order"
            );
        }
        connected.push(client);
    }
    // Nothing more arrives: each line came exactly once.
    for client in connected.iter_mut().take(ROOMS) {
        let members = client.who().await;
        assert_eq!(members.len(), CLIENTS / ROOMS, "{members:?}");
    }

    // A shutdown with every client connected: clean, bounded, and every connection closed.
    let stopped = tokio::time::timeout(Duration::from_secs(20), system.shutdown()).await;
    stopped.expect("the shutdown is bounded").unwrap();
    assert_eq!(system.live_actors(), 0);
    for client in &mut connected {
        assert_eq!(client.recv().await, None, "{} still open", client.label);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_that_panics_leaves_its_room_and_the_others_go_on() {
    let (system, port) = start().await;
    let mut a = Client::connect(port).await;
    let mut b = Client::connect(port).await;
    let mut c = Client::connect(port).await;
    for client in [&mut a, &mut b, &mut c] {
        client.join("x").await;
    }
    let mut everyone = vec![a.label.clone(), b.label.clone(), c.label.clone()];
    everyone.sort();
    assert_eq!(b.who().await, everyone);

    a.send("/panic").await;
    assert_eq!(
        a.recv().await,
        None,
        "the crashed session's connection closes"
    );
    // The room hears of the crash through its watch (no one told it); a few round trips at
    // most, each bounded.
    let mut left = Vec::new();
    for _ in 0..100 {
        left = b.who().await;
        if left.len() == 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(!left.contains(&a.label), "{left:?}");
    assert_eq!(left.len(), 2, "{left:?}");

    // The others go on, and newcomers are served.
    b.send("still here").await;
    let line = format!("{}: still here", b.label);
    b.expect(&line).await;
    c.expect(&line).await;
    let mut d = Client::connect(port).await;
    d.join("x").await;
    d.send("hi").await;
    let line = format!("{}: hi", d.label);
    for client in [&mut b, &mut c, &mut d] {
        client.expect(&line).await;
    }
    tokio::time::timeout(Duration::from_secs(10), system.shutdown())
        .await
        .expect("bounded")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quit_delivers_what_was_queued_then_bye() {
    let (system, port) = start().await;
    let mut a = Client::connect(port).await;
    let mut b = Client::connect(port).await;
    a.join("y").await;
    b.join("y").await;
    // 50 lines, `/who` and `/quit` in one write. Every line for A goes through its writer's
    // mailbox, in order: the 50 echoes (the room passed them on before it answered `/who`),
    // the members line, then "bye"; `/quit` stops the writer gracefully, so all of them are
    // written before the connection closes (a plain stop would drop what is queued).
    let mut burst = String::new();
    for k in 0..50 {
        burst.push_str(&format!("line {k}\n"));
    }
    burst.push_str("/who\n/quit\n");
    a.write.write_all(burst.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    while let Some(line) = a.recv().await {
        got.push(line);
        assert!(got.len() <= 60, "too many lines: {got:?}");
    }
    let mut expected: Vec<String> = (0..50).map(|k| format!("{}: line {k}", a.label)).collect();
    let mut both = [a.label.clone(), b.label.clone()];
    both.sort();
    expected.push(format!("members: {}", both.join(" ")));
    expected.push("bye".into());
    assert_eq!(got, expected, "then the connection closes");
    // B heard all 50 too, and the room let A go.
    for k in 0..50 {
        b.expect(&format!("{}: line {k}", a.label)).await;
    }
    let mut members = Vec::new();
    for _ in 0..100 {
        members = b.who().await;
        if members.len() == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(members, [b.label.clone()]);
    tokio::time::timeout(Duration::from_secs(10), system.shutdown())
        .await
        .expect("bounded")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_an_error_line_not_a_crash() {
    let (system, port) = start().await;
    let mut a = Client::connect(port).await;
    a.send("hello?").await;
    a.expect("error: /join a room first").await;
    assert!(a.who().await.is_empty());
    a.join("z").await;
    a.send("now").await;
    a.expect(&format!("{}: now", a.label)).await;
    // A client that hangs up: its session ends and leaves the room.
    let mut b = Client::connect(port).await;
    b.join("z").await;
    drop(a);
    let mut members = Vec::new();
    for _ in 0..100 {
        members = b.who().await;
        if members.len() == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(members, [b.label.clone()]);
    tokio::time::timeout(Duration::from_secs(10), system.shutdown())
        .await
        .expect("bounded")
        .unwrap();
}

/// Forwards every line a client's connection receives to a channel (`None` at the end), so
/// the socket is always drained while the test decides what to wait for.
fn drain(
    client: Client,
) -> (
    OwnedWriteHalf,
    tokio::sync::mpsc::UnboundedReceiver<Option<String>>,
) {
    let Client {
        mut lines, write, ..
    } = client;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let line = lines.next_line().await.ok().flatten();
            let end = line.is_none();
            if tx.send(line).is_err() || end {
                break;
            }
        }
    });
    (write, rx)
}

async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Option<String>>, who: &str) -> String {
    match tokio::time::timeout(READ_BOUND, rx.recv()).await {
        Ok(Some(Some(line))) => line,
        other => panic!("{who}: no line ({other:?})"),
    }
}

/// A client that never reads does not stall its room: its writer's mailbox fills, the room
/// (which never waits on a member) disconnects it, and the others get every line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_disconnected_and_the_room_goes_on() {
    // 8 KiB lines in batches of 100; the talker sends the next batch only once both readers
    // have the last one, so their writers never hold more than a batch (they are never the
    // slow ones, however busy the machine). The silent client's socket buffers and its
    // writer's mailbox (1,024 lines) fill after a few MiB: 200 batches (160 MiB) bound it.
    const BATCH: usize = 100;
    const MAX_BATCHES: usize = 200;
    let padding = "x".repeat(8 * 1024);
    let (system, port) = start().await;
    let mut silent = Client::connect(port).await;
    silent.join("busy").await;
    let mut talker = Client::connect(port).await;
    talker.join("busy").await;
    let mut listener = Client::connect(port).await;
    listener.join("busy").await;
    let (silent_label, talker_label) = (silent.label.clone(), talker.label.clone());
    let (mut talker_write, mut talker_rx) = drain(talker);
    let (mut listener_write, mut listener_rx) = drain(listener);

    let prefix = format!("{talker_label}: ");
    let mut sent = 0;
    let mut kicked = false;
    for _ in 0..MAX_BATCHES {
        let mut batch = String::new();
        for k in sent..sent + BATCH {
            batch.push_str(&format!("{k} {padding}\n"));
        }
        talker_write.write_all(batch.as_bytes()).await.unwrap();
        for k in sent..sent + BATCH {
            for (rx, who) in [(&mut talker_rx, "talker"), (&mut listener_rx, "listener")] {
                let line = next(rx, who).await;
                let text = line.strip_prefix(&prefix).expect("a line of the talker");
                assert_eq!(text.split_once(' ').unwrap().0, k.to_string(), "{who}");
            }
        }
        sent += BATCH;
        listener_write.write_all(b"/who\n").await.unwrap();
        let members = next(&mut listener_rx, "listener").await;
        let members: Vec<&str> = members
            .strip_prefix("members:")
            .expect("a members line")
            .split_whitespace()
            .collect();
        if !members.contains(&silent_label.as_str()) {
            assert_eq!(members.len(), 2, "{members:?}");
            kicked = true;
            break;
        }
    }
    assert!(
        kicked,
        "{silent_label} still in the room after {sent} lines"
    );
    // The room goes on without it.
    talker_write.write_all(b"after\n").await.unwrap();
    let line = format!("{talker_label}: after");
    assert_eq!(next(&mut talker_rx, "talker").await, line);
    assert_eq!(next(&mut listener_rx, "listener").await, line);
    drop(silent);
    tokio::time::timeout(Duration::from_secs(20), system.shutdown())
        .await
        .expect("bounded")
        .unwrap();
}
