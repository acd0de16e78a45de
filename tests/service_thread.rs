//! Services on their own thread (Mode's `ServiceThread`): their own OS thread and runtime,
//! thread hooks on that thread, an `Addr` usable from anywhere, crashes reaching the
//! supervisor, and a stop that shuts the thread's runtime down before it returns.

mod common;

use std::sync::Arc;
use std::sync::mpsc;

use common::Journal;
use modo::prelude::*;
use modo::supervisor::RestartPolicy;

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("?").to_owned()
}

/// Records its hooks with the thread they ran on; can block its thread on request.
struct Blocking {
    journal: Journal,
    held: Option<Arc<()>>,
}

struct WhereAmI;
struct BlockUntil(mpsc::Receiver<()>);
struct Boom;
struct HoldInTask(Arc<()>);

impl Service for Blocking {
    async fn on_thread_started(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal
            .push(format!("thread_started on {}", thread_name()));
        Ok(())
    }
    async fn on_start(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push(format!("on_start on {}", thread_name()));
        Ok(())
    }
    async fn on_shutdown(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal
            .push(format!("on_shutdown on {}", thread_name()));
        self.held = None;
        Ok(())
    }
    async fn on_thread_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal
            .push(format!("thread_stop on {}", thread_name()));
        Ok(())
    }
}

impl Handler<WhereAmI> for Blocking {
    type Reply = String;
    async fn handle(&mut self, _: WhereAmI, _ctx: &mut Context<Self>) -> String {
        thread_name()
    }
}

impl Handler<BlockUntil> for Blocking {
    type Reply = ();
    async fn handle(&mut self, BlockUntil(rx): BlockUntil, _ctx: &mut Context<Self>) {
        // A blocking call: fine on its own thread, fatal on a shared current-thread runtime.
        let _ = rx.recv();
    }
}

impl Handler<Boom> for Blocking {
    type Reply = ();
    async fn handle(&mut self, _: Boom, _ctx: &mut Context<Self>) {
        panic!("boom on {}", thread_name());
    }
}

impl Handler<HoldInTask> for Blocking {
    type Reply = ();
    async fn handle(&mut self, HoldInTask(token): HoldInTask, ctx: &mut Context<Self>) {
        // A task on the service's own runtime, holding the token until it is cancelled.
        ctx.spawn(async move {
            let _token = token;
            std::future::pending::<()>().await
        });
    }
}

/// A plain service on the test's runtime.
struct Plain;
impl Service for Plain {}
struct Ping;
impl Handler<Ping> for Plain {
    type Reply = &'static str;
    async fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) -> &'static str {
        "pong"
    }
}

fn blocking(journal: &Journal) -> ServiceSpec<Blocking> {
    ServiceSpec::new(Blocking {
        journal: journal.clone(),
        held: None,
    })
    .on_own_thread()
}

#[tokio::test]
async fn it_runs_on_its_own_thread_with_its_hooks_there() {
    let journal = Journal::new();
    let system = System::new();
    let b = system.spawn(blocking(&journal)).await.unwrap();
    let here = thread_name();
    let there = b.ask(WhereAmI).await.unwrap();
    assert_eq!(there, "modo-Blocking");
    assert_ne!(there, here);
    b.stop().await.unwrap();
    assert_eq!(
        journal.take(),
        [
            "thread_started on modo-Blocking",
            "on_start on modo-Blocking",
            "on_shutdown on modo-Blocking",
            "thread_stop on modo-Blocking",
        ]
    );
    system.shutdown().await.unwrap();
}

/// The test runtime is current-thread: if the blocked service shared it, the ask to the
/// plain service could never be answered.
#[tokio::test]
async fn a_blocked_thread_service_does_not_block_the_others() {
    let journal = Journal::new();
    let system = System::new();
    let b = system.spawn(blocking(&journal)).await.unwrap();
    let plain = system.spawn(Plain).await.unwrap();
    let (release, rx) = mpsc::channel();
    b.tell(BlockUntil(rx)).await.unwrap();
    assert_eq!(plain.ask(Ping).await.unwrap(), "pong");
    release.send(()).unwrap();
    assert_eq!(b.ask(WhereAmI).await.unwrap(), "modo-Blocking");
    system.shutdown().await.unwrap();
    assert_eq!(system.live_actors(), 0);
}

#[tokio::test]
async fn a_crash_on_the_thread_reaches_its_supervisor() {
    let journal = Journal::new();
    let system = System::new();
    let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
    let j = journal.clone();
    let b = sup
        .supervise_with(
            ServiceSpec::from_factory(move || Blocking {
                journal: j.clone(),
                held: None,
            })
            .on_own_thread(),
            RestartPolicy::Permanent,
        )
        .await
        .unwrap();
    b.tell(Boom).await.unwrap();
    b.wait_until(|b| b.restart_count() == 1 && b.is_started())
        .await;
    // The same actor, still on its own thread.
    assert_eq!(b.ask(WhereAmI).await.unwrap(), "modo-Blocking");
    system.shutdown().await.unwrap();
    assert_eq!(journal.count("thread_stop on modo-Blocking"), 1);
}

#[tokio::test]
async fn stop_shuts_the_threads_runtime_down_before_it_returns() {
    let journal = Journal::new();
    let system = System::new();
    let b = system.spawn(blocking(&journal)).await.unwrap();
    let token = Arc::new(());
    b.ask(HoldInTask(token.clone())).await.unwrap();
    assert_eq!(Arc::strong_count(&token), 2);
    b.stop().await.unwrap();
    // The task on the service's runtime is gone with it.
    assert_eq!(Arc::strong_count(&token), 1);
    assert!(b.is_terminated());
    system.shutdown().await.unwrap();
}
