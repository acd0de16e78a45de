//! The tutorial app under a [`Worker`]: runs until Ctrl-C or SIGTERM, then stops the tree
//! children first. SIGUSR1 prints the live service tree to stderr.
//!
//! ```text
//! cargo run --example worker                  # Ctrl-C (or kill -TERM <pid>) stops it
//! kill -USR1 <pid>                             # prints the tree, keeps running
//! MODO_EXAMPLE_CRASH=1 cargo run --example worker      # the App crashes: exit code 1
//! MODO_EXAMPLE_BLOCK_MS=1000 MODO_EXAMPLE_BLOCKING_TIMEOUT_MS=200 \
//!     cargo run --example worker              # blocks the runtime: the detector warns
//! MODO_EXAMPLE_ONESHOT=1 cargo run --example worker   # daemon(false): stops once started
//! MODO_EXAMPLE_BATCH=1 cargo run --example worker     # the App stops itself when done:
//!                                              # the Worker ends by itself, exit code 0
//! MODO_EXAMPLE_CHILD_PANIC=1 cargo run --example worker  # an unsupervised Webserver panics:
//!                                              # the crash escalates, exit code 1
//! MODO_EXAMPLE_QUIET=1 MODO_EXAMPLE_LOGFILE=worker.log cargo run --example worker
//!                                              # logs to the file only
//! MODO_EXAMPLE_SLOW_STOP_MS=5000 cargo run --example worker  # a slow stop: Ctrl-C twice
//!                                              # exits at once with code 130
//! ```
//!
//! The log lines show the tree: `[^Worker]`, `[^-App]`, `[^--Webserver]`, one dash per level.

use std::time::Duration;

mod app;

use app::{GetUser, PutUser, UserCache, Websockets};
use modo::Worker;
use modo::prelude::*;

/// Milliseconds read from an environment variable.
fn env_ms(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .map(Duration::from_millis)
}

/// The root service: its children are started in the order added and stopped in reverse.
struct App {
    port: u16,
    cache: Option<Addr<UserCache>>,
    /// Crash this long after starting (`MODO_EXAMPLE_CRASH`).
    crash: bool,
    /// Block every runtime thread this long after starting (`MODO_EXAMPLE_BLOCK_MS`).
    block: Option<Duration>,
    /// Stop itself once started, its work done (`MODO_EXAMPLE_BATCH`).
    batch: bool,
}

impl Service for App {
    fn dependencies(&mut self) -> Vec<Dependency> {
        vec![
            Websockets {
                port: self.port + 1,
            }
            .into(),
            Webserver {
                port: self.port,
                slow_stop: env_ms("MODO_EXAMPLE_SLOW_STOP_MS"),
                panic: std::env::var_os("MODO_EXAMPLE_CHILD_PANIC").is_some(),
            }
            .into(),
        ]
    }

    async fn on_first_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        self.cache = Some(ctx.add_dependency(UserCache::default()));
        Ok(())
    }

    async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.log().info(format_args!(
            "App running with {} children",
            ctx.children().len()
        ));
        if let Some(cache) = &self.cache {
            cache.tell(PutUser(1, "ask".into())).await?;
            ctx.log()
                .info(format_args!("user 1 is {:?}", cache.ask(GetUser(1)).await?));
        }
        if self.crash {
            let me = ctx.myself().clone();
            ctx.spawn_named("crash", async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                me.crash(CrashReason::msg("deliberate crash (MODO_EXAMPLE_CRASH)"));
            });
        }
        if self.batch {
            ctx.log().info("Batch done: stopping");
            ctx.stop();
        }
        if let Some(block) = self.block {
            ctx.spawn_named("block", async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                block_every_worker(block).await;
            });
        }
        Ok(())
    }
}

/// Blocks every worker thread of the runtime at the same time for `block`: one task per
/// worker, meeting at a (blocking) barrier, so no thread is left to run other tasks.
async fn block_every_worker(block: Duration) {
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(workers));
    eprintln!("example: blocking {workers} runtime threads for {block:?}");
    let blockers: Vec<_> = (0..workers)
        .map(|_| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait();
                std::thread::sleep(block);
            })
        })
        .collect();
    for blocker in blockers {
        let _ = blocker.await;
    }
    eprintln!("example: unblocked");
}

struct Webserver {
    port: u16,
    /// Take this long to close (`MODO_EXAMPLE_SLOW_STOP_MS`).
    slow_stop: Option<Duration>,
    /// A request handler panics soon after the start (`MODO_EXAMPLE_CHILD_PANIC`).
    panic: bool,
}

/// A request the Webserver cannot handle.
struct BadRequest;

impl Handler<BadRequest> for Webserver {
    type Reply = ();
    async fn handle(&mut self, _: BadRequest, _ctx: &mut Context<Self>) {
        panic!("bad request (MODO_EXAMPLE_CHILD_PANIC)");
    }
}

impl Service for Webserver {
    async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.log()
            .info(format_args!("Serving on port {}", self.port));
        if self.panic {
            let me = ctx.myself().clone();
            ctx.spawn_named("bad client", async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = me.tell(BadRequest).await;
            });
        }
        Ok(())
    }

    async fn on_stop(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.log().info("Closing server");
        if let Some(slow) = self.slow_stop {
            tokio::time::sleep(slow).await;
        }
        Ok(())
    }

    async fn on_shutdown(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.log().info("Cleanup");
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let app = App {
        port: 8000,
        cache: None,
        crash: std::env::var_os("MODO_EXAMPLE_CRASH").is_some(),
        block: env_ms("MODO_EXAMPLE_BLOCK_MS"),
        batch: std::env::var_os("MODO_EXAMPLE_BATCH").is_some(),
    };
    let mut worker = Worker::new(app)
        .quiet(std::env::var_os("MODO_EXAMPLE_QUIET").is_some())
        .daemon(std::env::var_os("MODO_EXAMPLE_ONESHOT").is_none());
    if let Some(timeout) = env_ms("MODO_EXAMPLE_BLOCKING_TIMEOUT_MS") {
        worker = worker.blocking_timeout(timeout);
    }
    if let Some(path) = std::env::var_os("MODO_EXAMPLE_LOGFILE") {
        worker = worker.logfile(path);
    }
    worker.execute_from_commandline()
}
