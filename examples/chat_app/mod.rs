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
//! [^--Session#3]           one per connection, its socket's lines attached as a stream
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
            write,
            rooms,
            room: None,
            quitting: false,
        };
        // One label per connection: log lines say `[^--Session#42]`, not `[^--Session]`.
        let spec = ServiceSpec::new(session).label(format!("Session#{}", self.accepted));
        if let Err(e) = ctx.add_runtime_dependency(spec).await {
            ctx.log().warn(format_args!("a session did not start: {e}"));
        }
    }
}

// ---------------------------------------------------------------------------------------
// A session: one connection.

/// A line for the client.
pub struct Deliver(pub String);

/// A line from the client (the socket's lines, attached as a stream).
struct Incoming(String);

/// The client closed its side.
struct Hangup;

struct Session {
    /// The socket's read half, until `on_start` attaches it as a stream.
    read: Option<OwnedReadHalf>,
    write: OwnedWriteHalf,
    rooms: Addr<Rooms>,
    room: Option<(String, Addr<Room>)>,
    /// The client said `/quit`: say "bye" when stopping.
    quitting: bool,
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
    /// Writes one line; a client that is gone ends the session.
    async fn write_line(&mut self, line: &str, ctx: &mut Context<Self>) {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        if self.write.write_all(&bytes).await.is_err() {
            ctx.stop();
        }
    }

    async fn join(&mut self, name: &str, ctx: &mut Context<Self>) -> Result<(), Error> {
        if let Some((_, old)) = self.room.take() {
            let _ = old.tell(Leave(ctx.myself().id())).await;
        }
        let room = self.rooms.ask(GetRoom(name.to_string())).await??;
        // The room knows its members only as "something that takes `Deliver`".
        room.ask(Join(ctx.myself().recipient())).await?;
        self.room = Some((name.to_string(), room));
        Ok(())
    }
}

impl Service for Session {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let read = self.read.take().ok_or("the connection is gone")?;
        // Each line becomes an `Incoming` message; a full mailbox stops the reading (and TCP
        // then slows the client down). `Hangup` comes after the last line.
        ctx.attach_stream_then(lines(read), Hangup);
        Ok(())
    }

    async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let hello = format!("hello {}", ctx.label());
        self.write_line(&hello, ctx).await;
        Ok(())
    }

    async fn on_stop(&mut self, ctx: &mut Context<Self>) -> HookResult {
        if self.quitting {
            self.write_line("bye", ctx).await;
        }
        let _ = self.write.shutdown().await;
        Ok(())
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
                Ok(()) => self.write_line(&format!("joined {name}"), ctx).await,
                Err(e) => self.write_line(&format!("error: {e}"), ctx).await,
            }
        } else if line == "/who" {
            let members = match &self.room {
                Some((_, room)) => room.ask(Who).await.unwrap_or_default(),
                None => Vec::new(),
            };
            self.write_line(&format!("members: {}", members.join(" ")), ctx)
                .await;
        } else if line == "/quit" {
            // A graceful stop: the lines already queued for this client are delivered first,
            // then `on_stop` says "bye" and the connection closes. `ctx.stop()` would
            // overtake them and drop them.
            self.quitting = true;
            ctx.drain_and_stop();
        } else if line == "/panic" {
            panic!("{} was asked to panic", ctx.label());
        } else if let Some((_, room)) = &self.room {
            let say = Say {
                from: ctx.label().to_string(),
                text: line.to_string(),
            };
            if room.tell(say).await.is_err() {
                self.room = None;
                self.write_line("error: the room is gone", ctx).await;
            }
        } else {
            self.write_line("error: /join a room first", ctx).await;
        }
    }
}

impl Handler<Deliver> for Session {
    type Reply = ();
    async fn handle(&mut self, Deliver(line): Deliver, ctx: &mut Context<Self>) {
        self.write_line(&line, ctx).await;
    }
}

impl Handler<Hangup> for Session {
    type Reply = ();
    async fn handle(&mut self, _: Hangup, ctx: &mut Context<Self>) {
        // What is queued for the client still goes out; then the session ends.
        ctx.drain_and_stop();
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
    watch: WatchId,
}

struct Join(Recipient<Deliver>);
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
        if self.remove(down.service().id()).is_some() {
            ctx.log().info(format_args!(
                "{down}; {} member(s) left",
                self.members.len()
            ));
        }
        Ok(())
    }
}

impl Handler<Join> for Room {
    type Reply = ();
    async fn handle(&mut self, Join(to): Join, ctx: &mut Context<Self>) {
        if self.members.iter().any(|m| m.to == to) {
            return;
        }
        // A `Recipient` derefs to the member's `ServiceRef`: watch it like any service.
        let watch = ctx.watch(&to);
        ctx.log().debug(format_args!("{} joined", to.label()));
        self.members.push(Member { to, watch });
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
                    member.to.label()
                ));
                let _ = member.to.send_lifecycle(Lifecycle::Stop);
            }
        }
    }
}

impl Handler<Who> for Room {
    type Reply = Vec<String>;
    async fn handle(&mut self, _: Who, _ctx: &mut Context<Self>) -> Vec<String> {
        let mut labels: Vec<String> = self
            .members
            .iter()
            .map(|m| m.to.label().to_string())
            .collect();
        labels.sort();
        labels
    }
}
