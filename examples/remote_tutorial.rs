//! Mode's tutorial app split across two processes over NATS: the `users` side runs the app
//! with its `UserCache` and exports the cache; the `web` side is a second tree whose
//! `Frontend` stores and looks up users in it, once a second, through a typed
//! `RemoteAddr<UserCache>`.
//!
//! ```text
//! # terminal 1: the app and its user cache (starts a nats-server on 127.0.0.1:4222 if none
//! # answers there and one is installed: apt-get install nats-server)
//! cargo run --features nats --example remote_tutorial -- users
//! # terminal 2: the web tree, asking the other one
//! cargo run --features nats --example remote_tutorial -- web
//! ```
//!
//! Ctrl-C stops either side gracefully. Stop the `users` side while `web` runs: its requests
//! fail at once with "no node exports \"users\"", and work again when `users` is back.
//! `NATS_URL` picks another server; a number after the side (`-- web 5`) stops it after that
//! many seconds.

use std::process::{Child, Command, ExitCode, Stdio};
use std::time::Duration;

mod app;

use app::{GetUser, PutUser, UserCache, Websockets};
use modo::Worker;
use modo::prelude::*;
use modo::remote::{Node, NodeOptions, RemoteAddr, RemoteMessage};
use serde::{Deserialize, Serialize};

/// The system both sides join.
const SYSTEM: &str = "tutorial";

/// Stores a user in the cache (a remote tell).
#[derive(Debug, Serialize, Deserialize)]
struct StoreUser {
    id: u32,
    name: String,
}

impl RemoteMessage for StoreUser {
    const NAME: &'static str = "tutorial.StoreUser";
}

/// Looks a user up (a remote ask).
#[derive(Debug, Serialize, Deserialize)]
struct FetchUser {
    id: u32,
}

impl RemoteMessage for FetchUser {
    const NAME: &'static str = "tutorial.FetchUser";
}

impl Handler<StoreUser> for UserCache {
    type Reply = ();
    async fn handle(&mut self, msg: StoreUser, ctx: &mut Context<Self>) {
        <Self as Handler<PutUser>>::handle(self, PutUser(msg.id, msg.name), ctx).await
    }
}

impl Handler<FetchUser> for UserCache {
    type Reply = Option<String>;
    async fn handle(&mut self, msg: FetchUser, ctx: &mut Context<Self>) -> Option<String> {
        <Self as Handler<GetUser>>::handle(self, GetUser(msg.id), ctx).await
    }
}

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string())
}

/// Stops the whole program after `run_for`, if given.
fn stop_after(ctx: &mut Context<impl Service>, run_for: Option<Duration>) {
    if let Some(run_for) = run_for {
        let stop = ctx.stop_signal();
        let system = ctx.system().clone();
        ctx.spawn_named("stop_after", async move {
            if stop.sleep(run_for).await {
                system.request_shutdown();
            }
        });
    }
}

/// Terminal 1: the app with its children, the node, and the cache exported as `users`.
struct UsersApp {
    run_for: Option<Duration>,
    /// The node and the cache, from the first start to the export.
    export: Option<(Node, Addr<UserCache>)>,
}

impl Service for UsersApp {
    fn label(&self) -> std::borrow::Cow<'static, str> {
        "App".into()
    }

    fn dependencies(&mut self) -> Vec<Dependency> {
        vec![Websockets { port: 8001 }.into()]
    }

    async fn on_first_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let node = Node::connect(&nats_url(), NodeOptions::new(SYSTEM)).await?;
        // Children stop in reverse: the node (and its export) stops before the cache, so
        // the requests it took are answered by a running cache.
        let cache = ctx.add_dependency(UserCache::default());
        ctx.add_dependency(node.clone());
        // Exports need the node's service running: done once the children started.
        self.export = Some((node, cache));
        Ok(())
    }

    async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
        if let Some((node, cache)) = self.export.take() {
            node.export("users", cache)
                .message::<StoreUser>()
                .message::<FetchUser>()
                .start()
                .await?;
            ctx.log().info(format_args!(
                "UserCache exported as \"users\" (subject {})",
                node.export_subject("users")
            ));
        }
        stop_after(ctx, self.run_for);
        Ok(())
    }
}

/// Terminal 2: a web front end in its own tree, using the other process's cache.
struct Frontend {
    run_for: Option<Duration>,
    users: Option<RemoteAddr<UserCache>>,
}

impl Service for Frontend {
    async fn on_first_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let node = Node::connect(&nats_url(), NodeOptions::new(SYSTEM)).await?;
        self.users = Some(node.lookup::<UserCache>("users")?);
        ctx.add_dependency(node);
        Ok(())
    }

    async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let Some(users) = self.users.clone() else {
            return Ok(());
        };
        let stop = ctx.stop_signal();
        let me = ctx.myself().clone();
        ctx.spawn_named("requests", async move {
            let mut id = 0;
            while stop.sleep(Duration::from_secs(1)).await {
                id += 1;
                let _ = me
                    .tell(Request {
                        id,
                        users: users.clone(),
                    })
                    .await;
            }
        });
        stop_after(ctx, self.run_for);
        Ok(())
    }
}

/// One round of requests, on the frontend's own task (so its log lines carry its label).
struct Request {
    id: u32,
    users: RemoteAddr<UserCache>,
}

impl Handler<Request> for Frontend {
    type Reply = ();
    async fn handle(&mut self, Request { id, users }: Request, ctx: &mut Context<Self>) {
        let name = format!("user-{id}");
        if let Err(e) = users.tell(StoreUser { id, name }).await {
            ctx.log()
                .warn(format_args!("could not store user {id}: {e}"));
            return;
        }
        match users.ask(FetchUser { id }).await {
            Ok(found) => ctx.log().info(format_args!(
                "user {id} is {found:?} (from the other process)"
            )),
            Err(e) => ctx
                .log()
                .warn(format_args!("could not fetch user {id}: {e}")),
        }
    }
}

/// A nats-server started for the `users` side when none answers, killed on exit.
struct OwnServer(Child);

impl Drop for OwnServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn maybe_start_server() -> Option<OwnServer> {
    if std::env::var_os("NATS_URL").is_some()
        || std::net::TcpStream::connect(("127.0.0.1", 4222)).is_ok()
    {
        return None;
    }
    let binary = ["nats-server", "/usr/sbin/nats-server"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok())?;
    let child = Command::new(binary)
        .args(["-a", "127.0.0.1", "-p", "4222"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    eprintln!("started {binary} on 127.0.0.1:4222 (stopped with this program)");
    // Bounded wait for it to listen.
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", 4222)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(OwnServer(child))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let run_for = match args.get(1).map(|s| s.parse::<f64>()) {
        None => None,
        Some(Ok(s)) if s.is_finite() && s >= 0.0 => Some(Duration::from_secs_f64(s)),
        Some(_) => return usage(),
    };
    match args.first().map(String::as_str) {
        Some("users") => {
            let _server = maybe_start_server();
            Worker::new(UsersApp {
                run_for,
                export: None,
            })
            .execute_from_commandline()
        }
        Some("web") => Worker::new(Frontend {
            run_for,
            users: None,
        })
        .execute_from_commandline(),
        _ => usage(),
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: remote_tutorial users|web [SECONDS]");
    ExitCode::from(2)
}
