//! A service started by a spawn (or by its parent's start) has no tokio task of its own until
//! something wakes it, and a request to it from its runtime runs it in the caller's task. None
//! of that may show: every wake-up reaches it, a caller that leaves does not take the service
//! with it, a deep tree still starts and stops in Mode's order, and a runtime that shuts down
//! still drops what it hosted.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Journal, j};
use modo::prelude::*;

/// Notes when its value is dropped.
struct Flagged(Arc<AtomicBool>);
impl Drop for Flagged {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A root with one child: both are started, then never woken again.
struct Parent {
    dropped: Arc<AtomicBool>,
    child_dropped: Arc<AtomicBool>,
}
impl Drop for Parent {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}
impl Service for Parent {
    fn dependencies(&mut self) -> Vec<Dependency> {
        vec![
            Child {
                _flag: Flagged(self.child_dropped.clone()),
            }
            .into(),
        ]
    }
}
/// Holds a flag that notes its drop.
struct Child {
    _flag: Flagged,
}
impl Service for Child {}

/// Services that nothing woke after their start are dropped when their runtime shuts down, as
/// tasks are, though the System was never shut down.
#[test]
fn services_never_woken_are_dropped_with_their_runtime() {
    let dropped = Arc::new(AtomicBool::new(false));
    let child_dropped = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let system = System::new();
        system
            .spawn(Parent {
                dropped: dropped.clone(),
                child_dropped: child_dropped.clone(),
            })
            .await
            .unwrap();
        assert_eq!(system.live_actors(), 2);
    });
    assert!(!dropped.load(Ordering::SeqCst));
    drop(rt);
    assert!(
        dropped.load(Ordering::SeqCst),
        "the root outlived its runtime"
    );
    assert!(
        child_dropped.load(Ordering::SeqCst),
        "the child outlived its runtime"
    );
}

/// Waits in `on_stop` until its gate opens; notes `on_shutdown`.
struct SlowStop {
    gate: Option<tokio::sync::oneshot::Receiver<()>>,
    journal: Journal,
}
impl Service for SlowStop {
    async fn on_stop(&mut self, _: &mut Context<Self>) -> HookResult {
        self.journal.push("on_stop");
        if let Some(gate) = self.gate.take() {
            let _ = gate.await;
        }
        Ok(())
    }
    async fn on_shutdown(&mut self, _: &mut Context<Self>) -> HookResult {
        self.journal.push("on_shutdown");
        Ok(())
    }
}

/// A stop runs the service's stop in the caller's task; a caller that goes away mid-stop does
/// not take the stop with it: the service finishes it in a task of its own.
#[tokio::test]
async fn a_stop_whose_caller_leaves_mid_stop_still_finishes() {
    let journal = Journal::new();
    let system = System::new();
    let (open, gate) = tokio::sync::oneshot::channel();
    let s = system
        .spawn(SlowStop {
            gate: Some(gate),
            journal: journal.clone(),
        })
        .await
        .unwrap();
    // The stop is polled into `on_stop`, which waits for the gate; then it is dropped.
    tokio::select! {
        biased;
        _ = s.stop() => panic!("the stop waits for the gate"),
        () = tokio::task::yield_now() => {}
    }
    assert_eq!(journal.entries(), j(&["on_stop"]));
    assert_eq!(s.state(), ServiceState::Stopping);
    open.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), s.wait_until_stopped())
        .await
        .expect("the stop went on without its caller");
    assert_eq!(journal.take(), j(&["on_stop", "on_shutdown"]));
    system.shutdown().await.unwrap();
    assert_eq!(system.live_actors(), 0);
}

struct WhichRuntime;

/// Notes the runtime its stop ran on.
struct Where {
    stopped_on: Arc<std::sync::Mutex<Option<tokio::runtime::Id>>>,
}
impl Service for Where {
    async fn on_stop(&mut self, _: &mut Context<Self>) -> HookResult {
        *self.stopped_on.lock().unwrap() = Some(tokio::runtime::Handle::current().id());
        Ok(())
    }
}
impl Handler<WhichRuntime> for Where {
    type Reply = tokio::runtime::Id;
    async fn handle(&mut self, _: WhichRuntime, _: &mut Context<Self>) -> tokio::runtime::Id {
        tokio::runtime::Handle::current().id()
    }
}

/// Messages and requests from another runtime wake a service started by a spawn on its
/// System's runtime: its handlers and its stop run there, not where the caller runs.
#[test]
fn a_caller_on_another_runtime_wakes_the_service_on_its_own() {
    let home = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let away = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stopped_on = Arc::new(std::sync::Mutex::new(None));
    let (system, addr) = home.block_on(async {
        let system = System::new();
        let addr = system
            .spawn(Where {
                stopped_on: stopped_on.clone(),
            })
            .await
            .unwrap();
        (system, addr)
    });
    let home_id = home.handle().id();
    away.block_on(async {
        let ran_on = tokio::time::timeout(Duration::from_secs(10), addr.ask(WhichRuntime))
            .await
            .expect("the ask was answered")
            .unwrap();
        assert_eq!(ran_on, home_id);
        tokio::time::timeout(Duration::from_secs(10), addr.stop())
            .await
            .expect("the stop was answered")
            .unwrap();
    });
    assert_eq!(*stopped_on.lock().unwrap(), Some(home_id));
    home.block_on(async { system.shutdown().await.unwrap() });
}

/// A chain of services, each the only dependency of the one above.
struct Link {
    depth: usize,
    last: usize,
    journal: Journal,
}
impl Service for Link {
    fn dependencies(&mut self) -> Vec<Dependency> {
        if self.depth == self.last {
            return Vec::new();
        }
        vec![
            Link {
                depth: self.depth + 1,
                last: self.last,
                journal: self.journal.clone(),
            }
            .into(),
        ]
    }
    async fn on_start(&mut self, _: &mut Context<Self>) -> HookResult {
        self.journal.push(format!("start:{}", self.depth));
        Ok(())
    }
    async fn on_started(&mut self, _: &mut Context<Self>) -> HookResult {
        self.journal.push(format!("started:{}", self.depth));
        Ok(())
    }
    async fn on_stop(&mut self, _: &mut Context<Self>) -> HookResult {
        self.journal.push(format!("stop:{}", self.depth));
        Ok(())
    }
    async fn on_shutdown(&mut self, _: &mut Context<Self>) -> HookResult {
        self.journal.push(format!("shutdown:{}", self.depth));
        Ok(())
    }
}

/// A chain far deeper than the caller's task drives at once still starts and stops in Mode's
/// order: each parent's `on_start` before its child's, each child's `on_started` before its
/// parent's; `on_stop` from the top, `on_shutdown` from the bottom.
#[tokio::test]
async fn a_deep_chain_starts_and_stops_in_modes_order() {
    const LAST: usize = 60;
    let journal = Journal::new();
    let system = System::new();
    let spawn = system.spawn(Link {
        depth: 0,
        last: LAST,
        journal: journal.clone(),
    });
    let top = tokio::time::timeout(Duration::from_secs(10), spawn)
        .await
        .expect("the chain started")
        .unwrap();
    assert_eq!(system.live_actors(), LAST + 1);
    let mut want: Vec<String> = (0..=LAST).map(|d| format!("start:{d}")).collect();
    want.extend((0..=LAST).rev().map(|d| format!("started:{d}")));
    assert_eq!(journal.take(), want);
    tokio::time::timeout(Duration::from_secs(10), top.stop())
        .await
        .expect("the chain stopped")
        .unwrap();
    let mut want: Vec<String> = (0..=LAST).map(|d| format!("stop:{d}")).collect();
    want.extend((0..=LAST).rev().map(|d| format!("shutdown:{d}")));
    assert_eq!(journal.take(), want);
    system.shutdown().await.unwrap();
    assert_eq!(system.live_actors(), 0);
}
