//! The services both the tutorial and the Worker example run: Mode's tutorial app's
//! `Websockets` and `UserCache`. Not an example itself (cargo builds only `examples/*.rs`
//! and `examples/*/main.rs`); each example includes it with `mod app;`.

use std::collections::HashMap;
use std::time::Duration;

use modo::prelude::*;

/// The websocket server (pretend: it only logs).
pub struct Websockets {
    /// The port it would listen on.
    pub port: u16,
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

/// Users seen recently; a background timer forgets the ones that expired.
#[derive(Default)]
pub struct UserCache {
    users: HashMap<u32, String>,
}

/// Remember a user (fire and forget).
pub struct PutUser(pub u32, pub String);
/// Look a user up.
pub struct GetUser(pub u32);

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
