//! Watching any service (OTP's monitors): the watcher hears once that the service stopped for
//! good or crashed, with the reason; a watch can be cancelled, and it ends with the watcher.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use modo::prelude::*;
use modo::supervisor::Supervisor;
use modo::{Down, DownReason, WatchId};

/// Records every `Down` it hears as `label:stopped` or `label:crashed:<reason>`.
#[derive(Default)]
struct Watcher {
    heard: Arc<Mutex<Vec<String>>>,
}

impl Service for Watcher {
    async fn on_down(&mut self, down: Down, _ctx: &mut Context<Self>) -> HookResult {
        let entry = match down.reason() {
            DownReason::Stopped => format!("{}:stopped", down.service().label()),
            DownReason::Crashed(reason) => {
                format!("{}:crashed:{reason}", down.service().label())
            }
            other => format!("{}:{other:?}", down.service().label()),
        };
        self.heard.lock().unwrap().push(entry);
        Ok(())
    }
}

struct Watch(ServiceRef);
struct Unwatch(WatchId);
struct Ping;

impl Handler<Watch> for Watcher {
    type Reply = WatchId;
    async fn handle(&mut self, Watch(s): Watch, ctx: &mut Context<Self>) -> WatchId {
        ctx.watch(&s)
    }
}

impl Handler<Unwatch> for Watcher {
    type Reply = ();
    async fn handle(&mut self, Unwatch(id): Unwatch, ctx: &mut Context<Self>) {
        ctx.unwatch(id);
    }
}

impl Handler<Ping> for Watcher {
    type Reply = ();
    async fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) {}
}

/// A service to watch: it can be crashed or stopped.
#[derive(Default)]
struct Target;

impl Service for Target {}

async fn watcher(system: &System) -> (Addr<Watcher>, Arc<Mutex<Vec<String>>>) {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let w = system
        .spawn(Watcher {
            heard: heard.clone(),
        })
        .await
        .unwrap();
    (w, heard)
}

#[tokio::test]
async fn a_watcher_hears_once_that_an_unrelated_service_stopped() {
    let system = System::new();
    let (w, heard) = watcher(&system).await;
    let target = system.spawn(Target).await.unwrap();
    w.ask(Watch(target.service_ref())).await.unwrap();
    target.stop().await.unwrap();
    // The notice is on the watcher's control lane, ahead of this ask.
    w.ask(Ping).await.unwrap();
    assert_eq!(*heard.lock().unwrap(), ["Target:stopped"]);
    system.shutdown().await.unwrap();
    assert_eq!(heard.lock().unwrap().len(), 1, "once");
}

#[tokio::test]
async fn a_crash_is_heard_with_its_reason_once_even_if_the_service_restarts() {
    let system = System::new();
    let (w, heard) = watcher(&system).await;
    let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
    let target = sup.supervise(Target::default).await.unwrap();
    w.ask(Watch(target.service_ref())).await.unwrap();
    target.crash("boom");
    target
        .wait_until(|t| t.restart_count() == 1 && t.state() == ServiceState::Running)
        .await;
    target.crash("again");
    target
        .wait_until(|t| t.restart_count() == 2 && t.state() == ServiceState::Running)
        .await;
    w.ask(Ping).await.unwrap();
    assert_eq!(*heard.lock().unwrap(), ["Target:crashed:boom"]);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn watching_a_service_that_is_already_down_fires_at_once() {
    let system = System::new();
    let (w, heard) = watcher(&system).await;
    let target = system.spawn(Target).await.unwrap();
    target.crash("gone before");
    target.wait_until_stopped().await;
    w.ask(Watch(target.service_ref())).await.unwrap();
    w.ask(Ping).await.unwrap();
    assert_eq!(*heard.lock().unwrap(), ["Target:crashed:gone before"]);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cancelled_watch_never_fires() {
    let system = System::new();
    let (w, heard) = watcher(&system).await;
    let target = system.spawn(Target).await.unwrap();
    let id = w.ask(Watch(target.service_ref())).await.unwrap();
    w.ask(Unwatch(id)).await.unwrap();
    target.stop().await.unwrap();
    w.ask(Ping).await.unwrap();
    assert!(heard.lock().unwrap().is_empty());
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_watch_ends_with_its_watcher() {
    let system = System::new();
    let (w, heard) = watcher(&system).await;
    let target = system.spawn(Target).await.unwrap();
    w.ask(Watch(target.service_ref())).await.unwrap();
    w.stop().await.unwrap();
    // The watcher is gone: the target's stop tells nobody, and does not fail.
    target.stop().await.unwrap();
    assert!(heard.lock().unwrap().is_empty());
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn many_watchers_each_hear_once() {
    let system = System::new();
    let target = system.spawn(Target).await.unwrap();
    let mut all = Vec::new();
    for _ in 0..20 {
        let (w, heard) = watcher(&system).await;
        w.ask(Watch(target.service_ref())).await.unwrap();
        w.ask(Watch(target.service_ref())).await.unwrap();
        all.push((w, heard));
    }
    target.stop().await.unwrap();
    for (w, heard) in &all {
        tokio::time::timeout(Duration::from_secs(1), w.ask(Ping))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*heard.lock().unwrap(), ["Target:stopped", "Target:stopped"]);
    }
    system.shutdown().await.unwrap();
}

/// A watcher whose `on_down` fails crashes, as any hook failure would.
struct Touchy;

impl Service for Touchy {
    async fn on_down(&mut self, _down: Down, _ctx: &mut Context<Self>) -> HookResult {
        Err("cannot live without it".into())
    }
}

impl Handler<Watch> for Touchy {
    type Reply = WatchId;
    async fn handle(&mut self, Watch(s): Watch, ctx: &mut Context<Self>) -> WatchId {
        ctx.watch(&s)
    }
}

#[tokio::test]
async fn a_failing_on_down_crashes_the_watcher() {
    let system = System::new();
    let touchy = system.spawn(Touchy).await.unwrap();
    let target = system.spawn(Target).await.unwrap();
    touchy.ask(Watch(target.service_ref())).await.unwrap();
    target.stop().await.unwrap();
    touchy.wait_until_stopped().await;
    assert_eq!(touchy.state(), ServiceState::Crashed);
    assert_eq!(
        touchy.crash_reason().unwrap().to_string(),
        "cannot live without it"
    );
    system.shutdown().await.unwrap();
}
