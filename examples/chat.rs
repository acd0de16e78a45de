//! A TCP chat server on 127.0.0.1, under a [`Worker`]: rooms made on demand, one session
//! actor per connection. Ctrl-C (or SIGTERM) stops it cleanly, sessions all at once.
//!
//! ```text
//! cargo run --example chat            # any free port; the port is printed
//! cargo run --example chat -- 7000    # port 7000
//! nc 127.0.0.1 <port>                 # then: /join lobby, hello, /who, /quit
//! ```
//!
//! The services are in `examples/chat_app/mod.rs` (`tests/chat.rs` runs them under load).
//! What they show (issue 12):
//!
//! - **A graceful stop**: on `/quit` the session stops its writer with `drain_and_stop`:
//!   every line queued for the client, "bye" last, is written before the connection closes.
//! - **Watching**: a room watches its members (`ctx.watch`, `on_down`): a session that ends
//!   for any reason, a crash included (`/panic`), leaves its room without saying so. A room
//!   never waits on a member: one that cannot take a line (its writer's mailbox is full: the
//!   client does not read) is disconnected.
//! - **A stream as messages**: each session's socket lines are attached with
//!   `ctx.attach_stream_then`; a full mailbox stops the reading, TCP slows the client.
//! - **Labels, concurrent stops, an owned logger**: sessions are labelled `Session#<n>` per
//!   spawn (`ServiceSpec::label`), the Listener stops them all at once
//!   (`stop_children_concurrently`), and its accept task logs through `ctx.logger()`.
//! - A session's crash is handled by the Listener (`on_child_crashed` returns `Remove`): the
//!   default would escalate it and stop the server.

mod chat_app;

use std::io::Write;
use std::process::ExitCode;

use chat_app::ChatServer;
use modo::Worker;

fn main() -> ExitCode {
    let port: u16 = match std::env::args().nth(1).map(|p| p.parse()) {
        None => 0,
        Some(Ok(port)) => port,
        Some(Err(e)) => {
            eprintln!("chat: the port must be a number from 0 to 65535: {e}");
            return ExitCode::from(2);
        }
    };
    // Bound here, before the Worker starts, so the port can be printed (and port 0 means
    // any free one).
    let listener = match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("chat: cannot listen on 127.0.0.1:{port}: {e}");
            return ExitCode::from(1);
        }
    };
    match listener.local_addr() {
        Ok(addr) => println!("chat server listening on {addr}"),
        Err(e) => {
            eprintln!("chat: {e}");
            return ExitCode::from(1);
        }
    }
    let _ = std::io::stdout().flush();
    Worker::new(ChatServer::new(listener))
        .log_panics(true)
        .execute_from_commandline()
}
