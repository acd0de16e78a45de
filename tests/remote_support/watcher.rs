//! A service that watches a remote node or name through the kernel's watch (and again after
//! each `RemoteUp`), and tells the test what it heard and when.

use std::time::Duration;

use modo::prelude::*;
use modo::remote::{Node, RemoteDown, RemoteUp, WatchTarget};
use modo::{Down, DownReason, Recipient};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// What a watcher heard.
#[derive(Debug)]
pub enum Heard {
    Down {
        at: Instant,
        stopped: bool,
        remote: Option<RemoteDown>,
    },
    Up {
        node: String,
    },
}

/// Watches a remote target through the kernel's watch, and again after each `RemoteUp`.
pub struct Watcher {
    node: Node,
    target: WatchTarget,
    heard: mpsc::UnboundedSender<Heard>,
}

impl Service for Watcher {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        let up: Recipient<RemoteUp> = ctx.myself().recipient();
        let watch = self
            .node
            .watch(self.target.clone())
            .on_up(up)
            .start()
            .await?;
        ctx.watch(&watch);
        Ok(())
    }

    async fn on_down(&mut self, down: Down, _ctx: &mut Context<Self>) -> HookResult {
        let _ = self.heard.send(Heard::Down {
            at: Instant::now(),
            stopped: matches!(down.reason(), DownReason::Stopped),
            remote: RemoteDown::of(&down).cloned(),
        });
        Ok(())
    }
}

impl Handler<RemoteUp> for Watcher {
    type Reply = ();
    async fn handle(&mut self, up: RemoteUp, ctx: &mut Context<Self>) {
        ctx.watch(&up.watch);
        let _ = self.heard.send(Heard::Up { node: up.node.1 });
    }
}

pub async fn watcher(
    system: &System,
    node: &Node,
    target: WatchTarget,
) -> (Addr<Watcher>, mpsc::UnboundedReceiver<Heard>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let w = system
        .spawn(Watcher {
            node: node.clone(),
            target,
            heard: tx,
        })
        .await
        .expect("the watcher starts");
    (w, rx)
}

/// What the watcher hears next, within 15 s.
pub async fn next(rx: &mut mpsc::UnboundedReceiver<Heard>) -> Heard {
    tokio::time::timeout(Duration::from_secs(15), rx.recv())
        .await
        .expect("heard something within 15 s")
        .expect("the watcher runs")
}
