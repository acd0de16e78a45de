//! The app from Mode's introduction, as modo services: an `App` with `Websockets`,
//! `Webserver` and `UserCache` children, a periodic "removing expired users" task, a few
//! requests, then a graceful stop (after a few seconds, or on Ctrl-C).
//!
//! ```text
//! cargo run --example tutorial            # runs for 3 s
//! cargo run --example tutorial -- 10      # runs for 10 s (Ctrl-C stops it earlier)
//! ```
//!
//! The log lines show the tree: `[^App]`, its children `[^-Webserver]`, one dash per level.

use std::collections::HashMap;
use std::time::Duration;

use modo::prelude::*;

/// The root service: its children are started in the order added and stopped in reverse.
struct App {
    port: u16,
    cache: Option<Addr<UserCache>>,
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
        Ok(())
    }
}

impl Handler<GetCache> for App {
    type Reply = Option<Addr<UserCache>>;
    async fn handle(&mut self, _: GetCache, _ctx: &mut Context<Self>) -> Self::Reply {
        self.cache.clone()
    }
}

struct Websockets {
    port: u16,
}

impl Service for Websockets {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        ctx.log().info(format_args!(
            "Starting websocket server on port {}",
            self.port
        ));
        Ok(())
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

/// Users seen recently; a background timer forgets the ones that expired.
#[derive(Default)]
struct UserCache {
    users: HashMap<u32, String>,
}

/// Remember a user (fire and forget).
struct PutUser(u32, String);
/// Look a user up.
struct GetUser(u32);

impl Service for UserCache {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        // A background task: cancelled and joined when the service stops.
        let stop = ctx.stop_signal();
        ctx.spawn_named("remove_expired", async move {
            while stop.sleep(Duration::from_millis(1000)).await {
                println!("REMOVING EXPIRED USERS");
            }
        });
        Ok(())
    }
}

impl Handler<PutUser> for UserCache {
    type Reply = ();
    async fn handle(&mut self, PutUser(id, name): PutUser, _ctx: &mut Context<Self>) {
        self.users.insert(id, name);
    }
}

impl Handler<GetUser> for UserCache {
    type Reply = Option<String>;
    async fn handle(&mut self, GetUser(id): GetUser, _ctx: &mut Context<Self>) -> Option<String> {
        self.users.get(&id).cloned()
    }
}

#[tokio::main]
async fn main() -> Result<(), modo::Error> {
    tracing_subscriber::fmt()
        .event_format(modo::log::ModeFormat::default())
        .init();

    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);

    let system = System::new();
    let app = system
        .spawn(App {
            port: 8000,
            cache: None,
        })
        .await?;

    let cache = app.ask(GetCache).await?.expect("added in on_first_start");
    cache.tell(PutUser(1, "ask".into())).await?;
    println!("user 1 is {:?}", cache.ask(GetUser(1)).await?);

    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(seconds)) => {}
        _ = tokio::signal::ctrl_c() => println!(),
    }
    system.shutdown().await
}
