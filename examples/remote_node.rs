//! A modo node in its own process, for the remote tests (and for trying replicas by hand):
//! it joins a NATS server, exports a counter under one or more names, prints `READY` when it
//! serves, `HANDLED <seq>` for each `Record` it handles, and runs under a Worker until
//! SIGTERM or Ctrl-C.
//!
//! ```text
//! nats-server -a 127.0.0.1 -p 4222 &
//! cargo run --features nats --example remote_node -- nats://127.0.0.1:4222 r1 counter,counter-r1
//! cargo run --features nats --example remote_node -- nats://127.0.0.1:4222 r2 counter,counter-r2
//! ```

#[path = "remote_app/mod.rs"]
mod remote_app;

use modo::Worker;
use modo::prelude::*;
use modo::remote::{Node, NodeOptions};
use remote_app::{Counter, export_counter};

/// Connects, exports, says READY.
struct Replica {
    url: String,
    me: String,
    names: Vec<String>,
}

impl Service for Replica {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let node = Node::connect(&self.url, NodeOptions::new("modo-test")).await?;
        ctx.add_runtime_dependency(node.clone()).await?;
        let mut counter = Counter::new(self.me.clone());
        counter.print = true;
        let counter = ctx.add_runtime_dependency(counter).await?;
        for name in &self.names {
            export_counter(&node, name, counter.clone()).await?;
        }
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "READY {} {}", self.me, node.id())?;
        out.flush()?;
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, me, names] = args.as_slice() else {
        eprintln!("usage: remote_node NATS_URL REPLICA_NAME EXPORT[,EXPORT...]");
        return std::process::ExitCode::from(2);
    };
    Worker::new(Replica {
        url: url.clone(),
        me: me.clone(),
        names: names.split(',').map(str::to_owned).collect(),
    })
    .execute_from_commandline()
}
