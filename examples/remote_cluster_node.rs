//! A modo cluster member in its own process, for the fault tests (and for trying a cluster by
//! hand): it joins the system `modo-test` under a node name, exports a counter under the
//! given names, offers the `counter` factory (children other nodes supervise), prints
//! `READY <name> <node-id>` and runs under a Worker (SIGUSR1 dumps its tree and the
//! cluster's) until SIGTERM or Ctrl-C. Credentials and TLS come from the environment
//! (`MODO_NATS_USER`, `MODO_NATS_PASSWORD`, ... see `NodeOptions::from_env`).
//!
//! ```text
//! nats-server -a 127.0.0.1 -p 4222 &
//! cargo run --features nats --example remote_cluster_node -- nats://127.0.0.1:4222 w1 svc-w1 250
//! cargo run --features nats --example remote_cluster_node -- nats://127.0.0.1:4222 w2 svc-w2 250
//! ```

#[path = "remote_app/mod.rs"]
mod remote_app;

use std::time::Duration;

use modo::Worker;
use modo::prelude::*;
use modo::remote::{Node, NodeOptions};
use remote_app::{Add, Boom, Counter, Record, Who, export_counter};

/// Connects, exports, registers the factory, says READY.
struct Member {
    urls: String,
    name: String,
    exports: Vec<String>,
    heartbeat: Duration,
}

impl Service for Member {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let options = NodeOptions::from_env("modo-test")?
            .node_name(self.name.clone())
            .heartbeat_interval(self.heartbeat)
            .request_timeout(Duration::from_secs(2));
        let node = Node::connect(&self.urls, options).await?;
        ctx.add_runtime_dependency(node.clone()).await?;
        let counter = ctx
            .add_runtime_dependency(Counter::new(self.name.clone()))
            .await?;
        for name in &self.exports {
            export_counter(&node, name, counter.clone()).await?;
        }
        let me = self.name.clone();
        node.factory("counter", move || Counter::new(me.clone()))
            .message::<Add>()
            .message::<Who>()
            .message::<Boom>()
            .message::<Record>()
            .register()
            .await?;
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        writeln!(out, "READY {} {}", self.name, node.id())?;
        out.flush()?;
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [urls, name, exports, heartbeat_ms] = args.as_slice() else {
        eprintln!(
            "usage: remote_cluster_node NATS_URL[,URL...] NODE_NAME EXPORT[,EXPORT...]|- HEARTBEAT_MS"
        );
        return std::process::ExitCode::from(2);
    };
    let Ok(ms) = heartbeat_ms.parse::<u64>() else {
        eprintln!("HEARTBEAT_MS must be a number of milliseconds, not {heartbeat_ms:?}");
        return std::process::ExitCode::from(2);
    };
    Worker::new(Member {
        urls: urls.clone(),
        name: name.clone(),
        exports: exports
            .split(',')
            .filter(|e| !e.is_empty() && *e != "-")
            .map(str::to_owned)
            .collect(),
        heartbeat: Duration::from_millis(ms),
    })
    .execute_from_commandline()
}
