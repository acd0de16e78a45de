//! Scoped services (Mode's `async with service:`): started for a piece of code and stopped when
//! it ends, however it ends.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use modo::prelude::*;

/// Notes its start and its shutdown.
struct Resource {
    log: Arc<Mutex<Vec<&'static str>>>,
}

impl Service for Resource {
    async fn on_start(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.log.lock().unwrap().push("started");
        Ok(())
    }

    async fn on_shutdown(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.log.lock().unwrap().push("shut down");
        Ok(())
    }
}

struct Use;

impl Handler<Use> for Resource {
    type Reply = u32;
    async fn handle(&mut self, _: Use, _ctx: &mut Context<Self>) -> u32 {
        42
    }
}

fn resource() -> (Resource, Arc<Mutex<Vec<&'static str>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    (Resource { log: log.clone() }, log)
}

#[tokio::test]
async fn the_service_is_stopped_when_the_body_returns_and_the_result_comes_back() {
    let system = System::new();
    let (res, log) = resource();
    let got = system
        .scoped(res, |r| async move { r.ask(Use).await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, 42);
    assert_eq!(*log.lock().unwrap(), ["started", "shut down"]);
    assert!(system.roots().is_empty());
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_service_is_stopped_when_the_body_fails() {
    let system = System::new();
    let (res, log) = resource();
    let got: Result<Result<(), &str>, Error> =
        system.scoped(res, |_| async move { Err("nope") }).await;
    assert_eq!(got.unwrap(), Err("nope"));
    assert_eq!(*log.lock().unwrap(), ["started", "shut down"]);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_service_is_stopped_when_the_body_panics_and_the_panic_goes_on() {
    let system = System::new();
    let (res, log) = resource();
    let s = system.clone();
    let outcome = tokio::spawn(async move {
        s.scoped(res, |_| async move {
            panic!("body blew up");
        })
        .await
    })
    .await;
    let panic = outcome.unwrap_err();
    assert!(panic.is_panic());
    assert_eq!(*log.lock().unwrap(), ["started", "shut down"]);
    assert!(system.roots().is_empty());
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_service_is_stopped_when_the_scope_is_cancelled() {
    let system = System::new();
    let (res, log) = resource();
    let scoped = system.scoped(res, |_| std::future::pending::<()>());
    // Cancel it: a timeout drops the future in the middle of the body.
    assert!(
        tokio::time::timeout(Duration::from_millis(10), scoped)
            .await
            .is_err()
    );
    let root = system.roots().pop();
    if let Some(root) = root {
        tokio::time::timeout(Duration::from_secs(5), root.wait_until_stopped())
            .await
            .expect("stopped in the background");
    }
    assert_eq!(*log.lock().unwrap(), ["started", "shut down"]);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_guard_stops_its_service_when_stopped_or_dropped() {
    let system = System::new();
    let (res, log) = resource();
    let guard = system.spawn_scoped(res).await.unwrap();
    assert_eq!(guard.ask(Use).await.unwrap(), 42);
    guard.stop().await.unwrap();
    assert_eq!(*log.lock().unwrap(), ["started", "shut down"]);

    let (res, log) = resource();
    let guard = system.spawn_scoped(res).await.unwrap();
    let service = guard.service_ref();
    drop(guard);
    tokio::time::timeout(Duration::from_secs(5), service.wait_until_stopped())
        .await
        .expect("stopped in the background");
    assert!(service.is_terminated());
    assert_eq!(*log.lock().unwrap(), ["started", "shut down"]);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_failed_start_is_the_scopes_error_and_the_body_never_runs() {
    struct Broken;
    impl Service for Broken {
        async fn on_start(&mut self, _ctx: &mut Context<Self>) -> HookResult {
            Err("no disk".into())
        }
    }
    let system = System::new();
    let ran = Arc::new(Mutex::new(false));
    let r = ran.clone();
    let err = system
        .scoped(Broken, |_| async move { *r.lock().unwrap() = true })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no disk"), "{err}");
    assert!(!*ran.lock().unwrap());
    system.shutdown().await.unwrap();
}
