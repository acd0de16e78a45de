//! The app from Mode's introduction, as modo services run by a [`Worker`]: the Worker is the
//! root of the tree, an `App` below it with `Websockets`, `Webserver` and `UserCache`
//! children, a periodic "removing expired users" task and a few requests. Ctrl-C (SIGINT) or
//! SIGTERM stops the whole tree gracefully, children first.
//!
//! ```text
//! cargo run --example tutorial            # a daemon: runs until Ctrl-C
//! cargo run --example tutorial -- 10      # stops by itself after 10 s (Ctrl-C stops it earlier)
//! ```
//!
//! The log lines show the tree: `[^Worker]`, `[^-App]`, `[^--Webserver]`, one dash per level.
//! (`examples/worker.rs` is the same app with switches for the Worker's test suite.)

use std::time::Duration;

mod app;

use app::{GetUser, PutUser, UserCache, Websockets};
use modo::Worker;
use modo::prelude::*;

/// The Worker's only service: its children are started in the order added and stopped in
/// reverse.
struct App {
    port: u16,
    cache: Option<Addr<UserCache>>,
    /// Stop the program after this long (the command-line argument); `None`: run until a
    /// signal stops it.
    run_for: Option<Duration>,
}

/// Asks the app for its user cache.
struct GetCache;

impl Service for App {
    /// Children the app never talks to: declared, started and stopped with it.
    fn dependencies(&mut self) -> Vec<Dependency> {
        vec![
            Websockets {
                port: self.port + 1,
            }
            .into(),
            Webserver { port: self.port }.into(),
        ]
    }

    /// A child the app talks to: added by hand, so the app keeps its typed address.
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
        if let Some(run_for) = self.run_for {
            // A background task (cancelled if the app stops first) that reminds the app.
            let stop = ctx.stop_signal();
            let me = ctx.myself().clone();
            ctx.spawn_named("stop_after", async move {
                if stop.sleep(run_for).await {
                    let _ = me.tell(TimeIsUp(run_for)).await;
                }
            });
        }
        Ok(())
    }
}

/// The run time given on the command line is over.
struct TimeIsUp(Duration);

impl Handler<TimeIsUp> for App {
    type Reply = ();
    async fn handle(&mut self, TimeIsUp(ran): TimeIsUp, ctx: &mut Context<Self>) {
        ctx.log().info(format_args!("Ran for {ran:?}: stopping"));
        // Shutting down from inside a service: `request_shutdown` starts the stop in the
        // background (awaiting `shutdown` here would wait for this very service). The Worker
        // sees its tree stop and exits with code 0, as after Ctrl-C.
        ctx.system().request_shutdown();
    }
}

impl Handler<GetCache> for App {
    type Reply = Option<Addr<UserCache>>;
    async fn handle(&mut self, _: GetCache, _ctx: &mut Context<Self>) -> Self::Reply {
        self.cache.clone()
    }
}

struct Webserver {
    port: u16,
}

impl Service for Webserver {
    async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.log()
            .info(format_args!("Serving on port {}", self.port));
        Ok(())
    }

    async fn on_stop(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.log().info("Closing server");
        ctx.log().info("Waiting for handlers to shut down");
        Ok(())
    }

    async fn on_shutdown(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.log().info("Cleanup");
        Ok(())
    }
}

fn main() -> std::process::ExitCode {
    let run_for = match std::env::args().nth(1) {
        None => None,
        Some(arg) => match arg.parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => Some(Duration::from_secs_f64(s)),
            _ => {
                eprintln!("usage: tutorial [SECONDS]   (no argument: run until Ctrl-C)");
                return std::process::ExitCode::from(2);
            }
        },
    };
    Worker::new(App {
        port: 8000,
        cache: None,
        run_for,
    })
    .execute_from_commandline()
}
