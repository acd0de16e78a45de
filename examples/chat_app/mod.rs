//! The chat server's services, shared by `examples/chat.rs` (the program) and `tests/chat.rs`
//! (which runs it in-process under load). Not an example itself: cargo builds only
//! `examples/*.rs` and `examples/*/main.rs`.
//!
//! The tree (under a Worker, one more level of dashes):
//!
//! ```text
//! [^Chat]                  the root: rooms first, the listener second (so it stops first)
//! [^-Rooms]                makes a room the first time someone joins it
//! [^--Room[lobby]]         one per room: its members, watched
//! [^-Listener]             accepts connections; one session each, stopped all at once
//! [^--Session#3]           one per connection: its socket's lines attached as a stream
//! [^---Session#3/out]      writes the lines for that client; what a room sends goes here
//! ```
//!
//! The protocol, one line each way:
//!
//! | client sends | server answers |
//! |---|---|
//! | (connects) | `hello Session#<n>` |
//! | `/join <room>` | `joined <room>` (leaving the room it was in) |
//! | `/who` | `members: Session#1 Session#4 ...` (sorted) |
//! | `/quit` | `bye`, then closes the connection |
//! | `/panic` | nothing: the session panics (a bug on purpose); the connection closes |
//! | any other line | `<Session#n>: <line>` to every member of the room, the sender too |

// Both the example and the test include this module; each uses a part of it.
#![allow(dead_code)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use modo::prelude::*;
use modo::{Down, Recipient, WatchId};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------
// The root.

/// The chat server: give it a listener already bound (so the caller knows the port).
pub struct ChatServer {
    listener: Option<std::net::TcpListener>,
}

impl ChatServer {
    /// A server that will accept on `listener` (bound, any state of blocking).
    pub fn new(listener: std::net::TcpListener) -> Self {
        ChatServer {
            listener: Some(listener),
        }
    }
}

impl Service for ChatServer {
    fn label(&self) -> Cow<'static, str> {
        "Chat".into()
    }

    fn dependencies(&mut self) -> Vec<Dependency> {
        let rooms = Rooms::default();
        let listener = Listener {
            bound: self.listener.take(),
            socket: None,
            rooms: None,
            accepted: 0,
        };
        vec![
            ServiceSpec::new(rooms).name("rooms").into(),
            listener.into(),
        ]
    }
}

// ---------------------------------------------------------------------------------------
// The listener: accepts in a background task, adds one session per connection.

struct Listener {
    /// The bound socket, until the first start turns it into a tokio listener.
    bound: Option<std::net::TcpListener>,
    socket: Option<Arc<TcpListener>>,
    rooms: Option<Addr<Rooms>>,
    accepted: u64,
}

/// A connection the accept task took.
struct Accepted(TcpStream);

impl Service for Listener {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        if self.socket.is_none() {
            let bound = self.bound.take().ok_or("no socket to listen on")?;
            bound.set_nonblocking(true)?;
            self.socket = Some(Arc::new(TcpListener::from_std(bound)?));
        }
        self.rooms = Some(ctx.system().lookup::<Rooms>("rooms")?);
        let socket = self.socket.clone().expect("set above");
        ctx.log()
            .info(format_args!("Listening on {}", socket.local_addr()?));
        // A background task cannot hold the context: it logs through an owned logger, and
        // hands each connection to the listener as a message.
        let log = ctx.logger();
        let me = ctx.myself().clone();
        ctx.spawn(async move {
            loop {
                match socket.accept().await {
                    Ok((stream, peer)) => {
                        log.debug(format_args!("connection from {peer}"));
                        if me.tell(Accepted(stream)).await.is_err() {
                            break;
                        }
                    }
                    // Out of file descriptors, say: wait a little and go on.
                    Err(e) => {
                        log.warn(format_args!("accept failed: {e}"));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(())
    }

    /// Sessions are independent: at the end, stop them all at once, so one slow to close
    /// delays none of the others.
    fn stop_children_concurrently(&self) -> bool {
        true
    }

    /// A session that crashes is a bug in that session: close that connection (modo logs
    /// "Removing crashed child Session#7: ..."). The default, `Escalate`, would take the
    /// whole server down with it.
    async fn on_child_crashed(
        &mut self,
        _child: &ServiceRef,
        _reason: &CrashReason,
        _ctx: &mut Context<Self>,
    ) -> ChildAction {
        ChildAction::Remove
    }
}

impl Handler<Accepted> for Listener {
    type Reply = ();
    async fn handle(&mut self, Accepted(stream): Accepted, ctx: &mut Context<Self>) {
        self.accepted += 1;
        let Some(rooms) = self.rooms.clone() else {
            return;
        };
        let (read, write) = stream.into_split();
        let session = Session {
            read: Some(read),
            write: Some(write),
            writer: None,
            rooms,
            room: None,
        };
        // One label per connection: log lines say `[^--Session#42]`, not `[^--Session]`.
        let spec = ServiceSpec::new(session).label(format!("Session#{}", self.accepted));
        if let Err(e) = ctx.add_runtime_dependency(spec).await {
            ctx.log().warn(format_args!("a session did not start: {e}"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// A session: one connection. The session reads and runs the commands; its child, the writer,
// owns the socket's write half and writes every line for the client, in order.

/// A line for the client.
pub struct Deliver(pub String);

/// A line from the client (the socket's lines, attached as a stream).
struct Incoming(String);

/// The client closed its side.
struct Hangup;

struct Session {
    /// The socket's halves, until the first start hands them out.
    read: Option<OwnedReadHalf>,
    write: Option<OwnedWriteHalf>,
    writer: Option<Addr<Writer>>,
    rooms: Addr<Rooms>,
    room: Option<(String, Addr<Room>)>,
}

/// The lines of a socket as a stream, ending at end of file or at the first error.
fn lines(read: OwnedReadHalf) -> impl Stream<Item = Incoming> + Send + 'static {
    futures::stream::unfold(BufReader::new(read).lines(), |mut lines| async move {
        match lines.next_line().await {
            Ok(Some(line)) => Some((Incoming(line), lines)),
            Ok(None) | Err(_) => None,
        }
    })
}

impl Session {
    /// Queues a line for the client, behind everything queued for it before.
    async fn say(&self, line: impl Into<String>) {
        if let Some(writer) = &self.writer {
            let _ = writer.tell(Deliver(line.into())).await;
        }
    }

    async fn join(&mut self, name: &str, ctx: &mut Context<Self>) -> Result<(), Error> {
        let writer = self.writer.clone().ok_or_else(|| Error::Stopped {
            label: ctx.label().into(),
        })?;
        if let Some((_, old)) = self.room.take() {
            let _ = old.tell(Leave(writer.id())).await;
        }
        let room = self.rooms.ask(GetRoom(name.to_string())).await??;
        // The room knows a member only as "something that takes `Deliver`", and its name.
        room.ask(Join {
            to: writer.recipient(),
            name: ctx.label().to_string(),
        })
        .await?;
        self.room = Some((name.to_string(), room));
        Ok(())
    }
}

impl Service for Session {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let (read, write) = match (self.read.take(), self.write.take()) {
            (Some(read), Some(write)) => (read, write),
            _ => return Err("the connection is gone".into()),
        };
        let label = format!("{}/out", ctx.label());
        let writer = ctx
            .add_runtime_dependency(ServiceSpec::new(Writer { write }).label(label))
            .await?;
        // No writer, no session: when it ends (a slow client is disconnected by its room,
        // say), the session ends too.
        ctx.watch(&writer);
        self.writer = Some(writer);
        // Each line becomes an `Incoming` message; a full mailbox stops the reading (and TCP
        // then slows the client down). `Hangup` comes after the last line.
        ctx.attach_stream_then(lines(read), Hangup);
        Ok(())
    }

    async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
        self.say(format!("hello {}", ctx.label())).await;
        Ok(())
    }

    async fn on_down(&mut self, _down: Down, ctx: &mut Context<Self>) -> HookResult {
        ctx.stop();
        Ok(())
    }

    /// A writer stuck on a client that does not read, abandoned by its stop, counts as
    /// crashed: end the session (its watch says so too), do not escalate.
    async fn on_child_crashed(
        &mut self,
        _child: &ServiceRef,
        _reason: &CrashReason,
        _ctx: &mut Context<Self>,
    ) -> ChildAction {
        ChildAction::Remove
    }

    /// A client that does not read must not hold the server's stop for long.
    fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(2)
    }
}

impl Handler<Incoming> for Session {
    type Reply = ();
    async fn handle(&mut self, Incoming(line): Incoming, ctx: &mut Context<Self>) {
        let line = line.trim_end();
        if let Some(name) = line.strip_prefix("/join ") {
            let name = name.trim();
            match self.join(name, ctx).await {
                Ok(()) => self.say(format!("joined {name}")).await,
                Err(e) => self.say(format!("error: {e}")).await,
            }
        } else if line == "/who" {
            let members = match &self.room {
                Some((_, room)) => room.ask(Who).await.unwrap_or_default(),
                None => Vec::new(),
            };
            self.say(format!("members: {}", members.join(" "))).await;
        } else if line == "/quit" {
            self.say("bye").await;
            if let Some(writer) = self.writer.take() {
                // A graceful stop of the writer: everything queued for the client, "bye"
                // last, is written before it stops (`stop()` would overtake the queue and
                // drop it). Bounded, for a client that does not read.
                let drained = tokio::time::timeout(Duration::from_secs(5), writer.drain_and_stop());
                let _ = drained.await;
            }
            ctx.stop();
        } else if line == "/panic" {
            panic!("{} was asked to panic", ctx.label());
        } else if let Some((_, room)) = &self.room {
            let say = Say {
                from: ctx.label().to_string(),
                text: line.to_string(),
            };
            if room.tell(say).await.is_err() {
                self.room = None;
                self.say("error: the room is gone").await;
            }
        } else {
            self.say("error: /join a room first").await;
        }
    }
}

impl Handler<Hangup> for Session {
    type Reply = ();
    async fn handle(&mut self, _: Hangup, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

/// Writes the lines for one client. Its mailbox holds only what waits to be written: a full
/// one means the client does not read fast enough.
struct Writer {
    write: OwnedWriteHalf,
}

impl Service for Writer {
    async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        // The client sees the end of the stream once what was written before reaches it.
        let _ = self.write.shutdown().await;
        Ok(())
    }

    fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(2)
    }
}

impl Handler<Deliver> for Writer {
    type Reply = ();
    async fn handle(&mut self, Deliver(line): Deliver, ctx: &mut Context<Self>) {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        if self.write.write_all(&bytes).await.is_err() {
            // The client is gone.
            ctx.stop();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Rooms: made on demand.

#[derive(Default)]
pub struct Rooms {
    rooms: HashMap<String, Addr<Room>>,
}

impl Service for Rooms {}

/// The room called so, made if it does not exist.
struct GetRoom(String);

impl Handler<GetRoom> for Rooms {
    type Reply = Result<Addr<Room>, Error>;
    async fn handle(&mut self, GetRoom(name): GetRoom, ctx: &mut Context<Self>) -> Self::Reply {
        if let Some(room) = self.rooms.get(&name).filter(|r| !r.is_terminated()) {
            return Ok(room.clone());
        }
        let room = Room {
            members: Vec::new(),
        };
        let spec = ServiceSpec::new(room).label(format!("Room[{name}]"));
        let room = ctx.add_runtime_dependency(spec).await?;
        self.rooms.insert(name, room.clone());
        Ok(room)
    }
}

// ---------------------------------------------------------------------------------------
// A room: its members, watched so that one that ends (or crashes) leaves.

pub struct Room {
    members: Vec<Member>,
}

struct Member {
    to: Recipient<Deliver>,
    name: String,
    watch: WatchId,
}

/// Join a room: where its lines go, and the member's name.
struct Join {
    to: Recipient<Deliver>,
    name: String,
}
struct Leave(Uuid);
struct Say {
    from: String,
    text: String,
}
struct Who;

impl Room {
    fn remove(&mut self, id: Uuid) -> Option<Member> {
        let i = self.members.iter().position(|m| m.to.id() == id)?;
        Some(self.members.swap_remove(i))
    }
}

impl Service for Room {
    /// A member that ended, whatever the reason (it quit, its client hung up, it crashed),
    /// leaves the room: no one has to remember to say so.
    async fn on_down(&mut self, down: Down, ctx: &mut Context<Self>) -> HookResult {
        if let Some(member) = self.remove(down.service().id()) {
            ctx.log().info(format_args!(
                "{} left ({down}); {} member(s) left",
                member.name,
                self.members.len()
            ));
        }
        Ok(())
    }
}

impl Handler<Join> for Room {
    type Reply = ();
    async fn handle(&mut self, Join { to, name }: Join, ctx: &mut Context<Self>) {
        if self.members.iter().any(|m| m.to == to) {
            return;
        }
        // A `Recipient` derefs to the member's `ServiceRef`: watch it like any service.
        let watch = ctx.watch(&to);
        ctx.log().debug(format_args!("{name} joined"));
        self.members.push(Member { to, name, watch });
    }
}

impl Handler<Leave> for Room {
    type Reply = ();
    async fn handle(&mut self, Leave(id): Leave, ctx: &mut Context<Self>) {
        if let Some(member) = self.remove(id) {
            ctx.unwatch(member.watch);
        }
    }
}

impl Handler<Say> for Room {
    type Reply = ();
    async fn handle(&mut self, Say { from, text }: Say, ctx: &mut Context<Self>) {
        let line = format!("{from}: {text}");
        let mut slow = Vec::new();
        for member in &self.members {
            // Never wait on a member: a client that does not read would stall the room.
            // One whose mailbox is full is too slow to stay.
            if let Err(e) = member.to.try_tell(Deliver(line.clone()))
                && e.is_full()
            {
                slow.push(member.to.id());
            }
        }
        for id in slow {
            if let Some(member) = self.remove(id) {
                ctx.unwatch(member.watch);
                ctx.log().warn(format_args!(
                    "{} is too slow to keep up: disconnecting it",
                    member.name
                ));
                let _ = member.to.send_lifecycle(Lifecycle::Stop);
            }
        }
    }
}

impl Handler<Who> for Room {
    type Reply = Vec<String>;
    async fn handle(&mut self, _: Who, _ctx: &mut Context<Self>) -> Vec<String> {
        let mut labels: Vec<String> = self.members.iter().map(|m| m.name.clone()).collect();
        labels.sort();
        labels
    }
}
