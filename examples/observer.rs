//! The observer on a small shop: a Worker runs a tree of supervised services that handle a
//! steady trickle of messages (one of them crashes now and then and is restarted after a
//! second), and serves the tree at http://127.0.0.1:6464/: the live tree, messages per
//! second, handle times, restarts, the last crash and a timeline.
//!
//! ```text
//! cargo run --example observer --features observer                  # read-only
//! MODO_OBSERVER_TOKEN=secret cargo run --example observer --features observer
//!                                     # stop / restart / crash from the page, with the token
//! cargo run --example observer --features observer -- 127.0.0.1:0   # any free port
//! ```
//!
//! Ctrl-C stops it.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use modo::observe::ObserverConfig;
use modo::prelude::*;
use modo::supervisor::Backoff;
use modo::{Level, Worker};

/// One stage of the shop: handles a `Work` message every `every`, each taking about `work`;
/// with `crash_every`, its every n-th message panics.
struct Stage {
    name: &'static str,
    every: Duration,
    work: Duration,
    crash_every: Option<u64>,
    handled: u64,
}

/// A unit of work.
struct Work;

impl Service for Stage {
    fn label(&self) -> Cow<'static, str> {
        Cow::Borrowed(self.name)
    }

    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let me = ctx.myself().clone();
        ctx.timer(self.every, move || {
            let me = me.clone();
            async move {
                // Full or restarting: skip this beat.
                let _ = me.try_tell(Work);
            }
        });
        Ok(())
    }
}

impl Handler<Work> for Stage {
    type Reply = ();

    async fn handle(&mut self, _: Work, _ctx: &mut Context<Self>) {
        self.handled += 1;
        if let Some(n) = self.crash_every
            && self.handled.is_multiple_of(n)
        {
            panic!("{} gave up on message {}", self.name, self.handled);
        }
        // Handle times spread over 1x to 4x `work` (a fixed pattern, no randomness needed).
        let spread = 1 + (self.handled.wrapping_mul(2_654_435_761) % 4) as u32;
        tokio::time::sleep(self.work * spread).await;
    }
}

fn stage(
    name: &'static str,
    every_ms: u64,
    work_us: u64,
    crash_every: Option<u64>,
) -> impl FnMut() -> Stage + Send + 'static {
    move || Stage {
        name,
        every: Duration::from_millis(every_ms),
        work: Duration::from_micros(work_us),
        crash_every,
        handled: 0,
    }
}

/// The catalog: no messages, one background task that "refreshes" it.
struct Catalog;

impl Service for Catalog {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let stop = ctx.stop_signal();
        ctx.spawn_named("Catalog.refresh", async move {
            while stop.sleep(Duration::from_secs(2)).await {}
        });
        Ok(())
    }
}

fn shop() -> Supervisor {
    Supervisor::builder()
        .label("Shop")
        .child(|| {
            Supervisor::builder()
                .label("Orders")
                .backoff(Backoff::Fixed(Duration::from_secs(1)))
                .child(stage("Checkout", 20, 300, None))
                .child(stage("Payments", 50, 800, Some(150)))
                .child(stage("Shipping", 100, 1500, None))
                .build()
        })
        .child(|| Catalog)
        .build()
}

fn main() -> ExitCode {
    let bind: SocketAddr = match std::env::args().nth(1).map(|a| a.parse()) {
        None => SocketAddr::from(([127, 0, 0, 1], modo::observe::DEFAULT_PORT)),
        Some(Ok(addr)) => addr,
        Some(Err(e)) => {
            eprintln!("usage: observer [ADDRESS:PORT] ({e})");
            return ExitCode::from(2);
        }
    };
    let mut config = ObserverConfig::new().bind(bind);
    if let Ok(token) = std::env::var("MODO_OBSERVER_TOKEN") {
        config = config.token(token);
    }
    Worker::new(shop())
        .observer(config)
        .loglevel(Level::INFO)
        .log_panics(true)
        .execute_from_commandline()
}
