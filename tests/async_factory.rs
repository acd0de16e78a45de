//! A service built by an async factory (`ServiceSpec::from_async_factory`): awaited at the
//! first start and on every restart, told the restart index; a factory that fails, panics or
//! runs out of time fails that start with a typed error, which a supervisor treats as a crash
//! (counted, backed off, retried); settings are read from each instance built.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use modo::prelude::*;
use modo::supervisor::{Backoff, RestartPolicy};
use modo::{Hook, ServiceSpec};
use tokio::time::Instant;

/// A connection-like service: which build made it.
struct Conn {
    index: u32,
}

impl Service for Conn {
    fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(7)
    }
}

struct Index;

impl Handler<Index> for Conn {
    type Reply = u32;
    async fn handle(&mut self, _: Index, _ctx: &mut Context<Self>) -> u32 {
        self.index
    }
}

/// A factory that takes a second to connect and counts its calls; it fails for the indexes
/// in `failing`.
fn connecting(calls: &Arc<AtomicU32>, failing: &'static [u32]) -> ServiceSpec<Conn> {
    let calls = calls.clone();
    ServiceSpec::from_async_factory(move |index| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if failing.contains(&index) {
                Err(format!("connection {index} refused"))
            } else {
                Ok(Conn { index })
            }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn the_factory_is_awaited_at_the_first_start_and_on_every_restart() {
    let system = System::new();
    let calls = Arc::new(AtomicU32::new(0));
    let start = Instant::now();
    let conn = system.spawn(connecting(&calls, &[])).await.unwrap();
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "the start awaited the build"
    );
    assert_eq!(conn.ask(Index).await.unwrap(), 0);
    // The label is the type's (no instance exists when the address is made).
    assert_eq!(conn.label(), "Conn");

    // Messages queued during the restart wait for the new instance.
    let restart = conn.restart();
    let asked = conn.ask(Index);
    let (restarted, answer) = tokio::join!(restart, asked);
    restarted.unwrap();
    assert_eq!(
        answer.unwrap(),
        1,
        "a fresh instance, told the restart index"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_factory_that_returns_an_error_fails_the_start_with_a_typed_error() {
    let system = System::new();
    let calls = Arc::new(AtomicU32::new(0));
    let err = system.spawn(connecting(&calls, &[0])).await.unwrap_err();
    match &err {
        Error::HookFailed {
            label,
            hook: Hook::Factory,
            source,
        } => {
            assert_eq!(&**label, "Conn");
            assert_eq!(source.to_string(), "connection 0 refused");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "the factory of Conn failed: connection 0 refused"
    );
    assert!(
        system.roots().is_empty(),
        "a root whose start failed is gone"
    );
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_factory_that_panics_fails_the_start_as_a_crash() {
    let system = System::new();
    let spec = ServiceSpec::from_async_factory(|_| async {
        if true {
            panic!("no config file");
        }
        Ok::<_, BoxError>(Conn { index: 0 })
    });
    let err = system.spawn(spec).await.unwrap_err();
    match &err {
        Error::Crashed {
            reason: CrashReason::Panic { message, during },
            ..
        } => {
            assert_eq!(&**message, "no config file");
            assert_eq!(&**during, "the factory");
        }
        other => panic!("unexpected {other:?}"),
    }
    // A factory that panics before it returns its future counts the same.
    let spec = ServiceSpec::from_async_factory(|_| -> std::future::Ready<Result<Conn, BoxError>> {
        panic!("bad argument")
    });
    let err = system.spawn(spec).await.unwrap_err();
    assert!(
        matches!(&err, Error::Crashed { reason, .. } if reason.is_panic()),
        "{err:?}"
    );
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_factory_past_its_timeout_fails_the_start() {
    let system = System::new();
    let spec = ServiceSpec::from_async_factory(|_| async {
        std::future::pending::<()>().await;
        Ok::<_, BoxError>(Conn { index: 0 })
    })
    .factory_timeout(Duration::from_secs(2));
    let start = Instant::now();
    let err = system.spawn(spec).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert!(
        matches!(
            &err,
            Error::HookFailed {
                hook: Hook::Factory,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("did not return within 2s"),
        "{err}"
    );
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_supervisor_retries_a_failing_factory_as_it_retries_a_crash() {
    let system = System::new();
    let sup = system
        .spawn(
            Supervisor::builder()
                .max_restarts(5)
                .over(Duration::from_secs(60))
                .backoff(Backoff::Fixed(Duration::from_secs(10)))
                .build(),
        )
        .await
        .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    // Builds 1 and 2 fail; build 3 works.
    let conn = sup
        .supervise_with(connecting(&calls, &[1, 2]), RestartPolicy::Permanent)
        .await
        .unwrap();
    let start = Instant::now();
    conn.crash("connection lost");
    conn.wait_until(|c| c.restart_count() == 3 && c.state() == ServiceState::Running)
        .await;
    // Each attempt: a 10 s backoff, then a 1 s build.
    assert_eq!(start.elapsed(), Duration::from_secs(33));
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(conn.ask(Index).await.unwrap(), 3);
    assert!(sup.is_started());
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_factory_that_always_fails_exceeds_the_intensity() {
    let system = System::new();
    let sup = system
        .spawn(
            Supervisor::builder()
                .max_restarts(2)
                .over(Duration::from_secs(60))
                .build(),
        )
        .await
        .unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let conn = sup
        .supervise_with(connecting(&calls, &[1, 2, 3, 4]), RestartPolicy::Permanent)
        .await
        .unwrap();
    conn.crash("connection lost");
    sup.wait_until(|s| s.is_terminated()).await;
    assert!(
        matches!(
            sup.crash_reason(),
            Some(CrashReason::Error(ref e))
                if matches!(e.downcast_ref::<Error>(), Some(Error::MaxRestartsExceeded { .. }))
        ),
        "{:?}",
        sup.crash_reason()
    );
    // The first build, then one per restart allowed and the one past the intensity.
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_supervised_child_whose_first_build_fails_is_not_kept() {
    let system = System::new();
    let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let err = sup
        .supervise_with(connecting(&calls, &[0]), RestartPolicy::Permanent)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::HookFailed {
                hook: Hook::Factory,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(sup.children().await.unwrap().is_empty());
    system.shutdown().await.unwrap();
}

/// Label and mailbox capacity come from the spec; the other settings from each instance.
#[tokio::test(start_paused = true)]
async fn settings_come_from_the_spec_and_from_each_instance() {
    let system = System::new();
    let calls = Arc::new(AtomicU32::new(0));
    let conn = system
        .spawn(connecting(&calls, &[]).label("db#1").mailbox_capacity(2))
        .await
        .unwrap();
    assert_eq!(conn.label(), "db#1");
    assert!(format!("{:?}", connecting(&calls, &[])).contains("\"async\""));
    // The instance's shutdown timeout (7 s) bounds a stuck handler after a stop request.
    let asked = conn.ask_timeout(Stuck, Duration::from_secs(1)).await;
    assert!(asked.unwrap_err().is_timeout(), "the handler is stuck");
    let start = Instant::now();
    conn.stop().await.ok();
    assert_eq!(start.elapsed(), Duration::from_secs(7));
    system.shutdown().await.unwrap();
}

struct Stuck;

impl Handler<Stuck> for Conn {
    type Reply = ();
    async fn handle(&mut self, _: Stuck, _ctx: &mut Context<Self>) {
        std::future::pending::<()>().await
    }
}

/// Holds children added by a message.
struct Parent;

impl Service for Parent {}

struct AddChild(ServiceSpec<Conn>);

impl Handler<AddChild> for Parent {
    type Reply = Addr<Conn>;
    async fn handle(&mut self, AddChild(spec): AddChild, ctx: &mut Context<Self>) -> Addr<Conn> {
        ctx.add_dependency(spec)
    }
}

/// A child whose first build failed stays crashed (its parent decides); starting it again
/// calls the factory again, as a restart.
#[tokio::test(start_paused = true)]
async fn a_failed_first_build_is_retried_by_the_next_start() {
    let system = System::new();
    let parent = system.spawn(Parent).await.unwrap();
    let calls = Arc::new(AtomicU32::new(0));
    let conn = parent
        .ask(AddChild(connecting(&calls, &[0])))
        .await
        .unwrap();
    let err = conn.start().await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::HookFailed {
                hook: Hook::Factory,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(conn.is_crashed() && !conn.is_terminated());
    conn.start().await.unwrap();
    assert_eq!(conn.restart_count(), 1);
    assert_eq!(conn.ask(Index).await.unwrap(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    system.shutdown().await.unwrap();
}
