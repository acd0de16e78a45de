//! Adopting a running service as a child (`Context::adopt`, `Addr<Supervisor>::adopt`: Mode's
//! `add_dependency` of an instance already started): the adopter stops it with its own stop,
//! newest first, and hears its crash; it leaves the System's roots and moves in the registry's
//! graph, its subtree's depth following. Refusals are typed and change nothing: a service that
//! has a parent, the adopter itself or an ancestor (no cycle), a stopped service, one of
//! another System or the registry.

use std::time::Duration;

use modo::prelude::*;
use modo::supervisor::RestartPolicy;
use modo::testkit::{Journal, Recorder};

const BOUND: Duration = Duration::from_secs(10);

async fn bounded<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(BOUND, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what} did not finish within {BOUND:?}"),
    }
}

/// A parent that journals its stop hooks and adopts what it is told to; its children are
/// recorders.
struct Adopter {
    name: &'static str,
    journal: Journal,
    children: Vec<Recorder>,
}

impl Adopter {
    fn new(name: &'static str, journal: &Journal) -> Self {
        Adopter {
            name,
            journal: journal.clone(),
            children: Vec::new(),
        }
    }

    fn with_children(mut self, children: Vec<Recorder>) -> Self {
        self.children = children;
        self
    }
}

impl Service for Adopter {
    fn label(&self) -> std::borrow::Cow<'static, str> {
        self.name.into()
    }

    fn dependencies(&mut self) -> Vec<Dependency> {
        self.children.drain(..).map(Dependency::from).collect()
    }

    async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push(format!("{}:on_stop", self.name));
        Ok(())
    }

    async fn on_shutdown(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.journal.push(format!("{}:on_shutdown", self.name));
        Ok(())
    }
}

struct Adopt(ServiceRef);

impl Handler<Adopt> for Adopter {
    type Reply = Result<(), Error>;
    async fn handle(&mut self, Adopt(s): Adopt, ctx: &mut Context<Self>) -> Self::Reply {
        ctx.adopt(&s)
    }
}

struct Children;

impl Handler<Children> for Adopter {
    type Reply = Vec<ServiceRef>;
    async fn handle(&mut self, _: Children, ctx: &mut Context<Self>) -> Vec<ServiceRef> {
        ctx.children().to_vec()
    }
}

fn labels(children: &[ServiceRef]) -> Vec<String> {
    children.iter().map(|c| c.label().to_owned()).collect()
}

#[tokio::test(start_paused = true)]
async fn an_adopted_service_is_stopped_by_its_parent_newest_first() {
    let journal = Journal::new();
    let system = System::new();
    let app = system
        .spawn(Adopter::new("App", &journal).with_children(vec![Recorder::new("Db", &journal)]))
        .await
        .unwrap();
    // Started on its own, with a child of its own.
    let pool = system
        .spawn(Recorder::new("Pool", &journal).with_children(vec![Recorder::new("Conn", &journal)]))
        .await
        .unwrap();
    assert_eq!(system.roots().len(), 2);
    journal.take();

    app.ask(Adopt(pool.service_ref())).await.unwrap().unwrap();
    assert!(pool.is_started(), "adopting starts and stops nothing");
    assert!(journal.is_empty(), "{:?}", journal.entries());
    assert_eq!(pool.parent().map(|p| p.id()), Some(app.id()));
    assert_eq!(labels(&app.ask(Children).await.unwrap()), ["Db", "Pool"]);
    assert_eq!(labels(&system.roots()), ["App"], "it left the roots");

    // Its depth and its subtree's follow; the graph shows it under the adopter.
    let graph = system.registry().graph().await;
    let conn = graph.children(pool.id())[0].id;
    assert_eq!(graph.children(app.id()).len(), 2);
    assert_eq!((pool.depth(), graph.depth(conn)), (1, Some(2)));
    assert_eq!(graph.roots().len(), 1);

    // The adopter's stop stops it, newest child first, its own child before it.
    bounded("the stop", app.stop()).await.unwrap();
    assert!(pool.is_terminated());
    assert_eq!(
        journal.take(),
        [
            "App:on_stop",
            "Pool:on_stop",
            "Conn:on_stop",
            "Conn:on_shutdown",
            "Pool:on_shutdown",
            "Db:on_stop",
            "Db:on_shutdown",
            "App:on_shutdown",
        ]
    );
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_adopter_hears_the_adopted_services_crash() {
    let journal = Journal::new();
    let system = System::new();
    let app = system.spawn(Adopter::new("App", &journal)).await.unwrap();
    let pool = system.spawn(Recorder::new("Pool", &journal)).await.unwrap();
    app.ask(Adopt(pool.service_ref())).await.unwrap().unwrap();

    // A parent that does not handle crashes escalates: it crashes too, naming the child.
    pool.crash("pool broke");
    bounded("the escalation", app.wait_until(|a| a.is_terminated())).await;
    match app.crash_reason() {
        Some(CrashReason::Child { child, reason }) => {
            assert_eq!(&*child, "Pool");
            assert_eq!(reason.to_string(), "pool broke");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(pool.is_terminated());
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_supervisor_restarts_an_adopted_service_in_place() {
    let journal = Journal::new();
    let system = System::new();
    let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
    // A value (no factory): its restart resets the same value with on_init.
    let pool = system.spawn(Recorder::new("Pool", &journal)).await.unwrap();
    // A factory spec: its restart builds a fresh instance.
    let builds = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = builds.clone();
    let fresh = system
        .spawn(ServiceSpec::from_factory(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Supervisor::builder().label("Fresh").build()
        }))
        .await
        .unwrap();
    sup.adopt(&pool, RestartPolicy::Permanent).await.unwrap();
    sup.adopt(&fresh, RestartPolicy::Permanent).await.unwrap();
    assert_eq!(sup.children().await.unwrap().len(), 2);
    // Adopting one's own child again does nothing.
    sup.adopt(&pool, RestartPolicy::Permanent).await.unwrap();
    assert_eq!(sup.children().await.unwrap().len(), 2);
    journal.take();

    pool.crash("boom");
    bounded(
        "the restart",
        pool.wait_until(|p| p.restart_count() == 1 && p.state() == ServiceState::Running),
    )
    .await;
    journal.assert_order(&[
        "Pool:on_stop",
        "Pool:on_init",
        "Pool:on_restart",
        "Pool:on_start",
    ]);
    fresh.crash("boom");
    bounded(
        "the restart",
        fresh.wait_until(|p| p.restart_count() == 1 && p.state() == ServiceState::Running),
    )
    .await;
    assert_eq!(builds.load(std::sync::atomic::Ordering::SeqCst), 2);
    // A permanent adopted child stopped by someone else is restarted too.
    pool.stop().await.unwrap();
    bounded(
        "the restart",
        pool.wait_until(|p| p.restart_count() == 2 && p.state() == ServiceState::Running),
    )
    .await;

    system.shutdown().await.unwrap();
    assert!(pool.is_terminated() && fresh.is_terminated());
}

#[tokio::test(start_paused = true)]
async fn a_service_with_a_parent_is_refused() {
    let journal = Journal::new();
    let system = System::new();
    let a = system
        .spawn(Adopter::new("A", &journal).with_children(vec![Recorder::new("Kid", &journal)]))
        .await
        .unwrap();
    let b = system.spawn(Adopter::new("B", &journal)).await.unwrap();
    let kid = a.ask(Children).await.unwrap()[0].clone();
    let err = b.ask(Adopt(kid.clone())).await.unwrap().unwrap_err();
    match &err {
        Error::AlreadyHasParent { label, by, parent } => {
            assert_eq!((&**label, &**by, &**parent), ("Kid", "B", "A"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        err.to_string(),
        "Kid cannot be adopted by B: it is a child of A"
    );
    // Nothing changed.
    assert_eq!(kid.parent().map(|p| p.id()), Some(a.id()));
    assert!(b.ask(Children).await.unwrap().is_empty());

    // Adopted once, a root has a parent: a second adopter is refused the same way.
    let c = system.spawn(Adopter::new("C", &journal)).await.unwrap();
    b.ask(Adopt(c.service_ref())).await.unwrap().unwrap();
    let err = a.ask(Adopt(c.service_ref())).await.unwrap().unwrap_err();
    assert!(matches!(err, Error::AlreadyHasParent { .. }), "{err:?}");
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_adopter_itself_or_an_ancestor_is_refused() {
    let journal = Journal::new();
    let system = System::new();
    let top = system.spawn(Adopter::new("Top", &journal)).await.unwrap();
    let mid = system.spawn(Adopter::new("Mid", &journal)).await.unwrap();
    let low = system.spawn(Adopter::new("Low", &journal)).await.unwrap();
    top.ask(Adopt(mid.service_ref())).await.unwrap().unwrap();
    mid.ask(Adopt(low.service_ref())).await.unwrap().unwrap();
    assert_eq!(low.depth(), 2);

    let err = low
        .ask(Adopt(low.service_ref()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&err, Error::WouldCycle { label, by } if &**label == "Low" && &**by == "Low"),
        "{err:?}"
    );
    // The root of its own tree, and a parent that is not a root.
    for ancestor in [&top, &mid] {
        let err = low
            .ask(Adopt(ancestor.service_ref()))
            .await
            .unwrap()
            .unwrap_err();
        assert!(matches!(err, Error::WouldCycle { .. }), "{err:?}");
    }
    assert_eq!(
        err.to_string(),
        "Low cannot be adopted by Low: it is Low itself or one of its ancestors"
    );
    assert!(top.parent().is_none() && top.is_started());
    assert_eq!(labels(&system.roots()), ["Top"]);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stopped_service_is_refused() {
    let journal = Journal::new();
    let system = System::new();
    let app = system.spawn(Adopter::new("App", &journal)).await.unwrap();
    let gone = system.spawn(Recorder::new("Gone", &journal)).await.unwrap();
    gone.stop().await.unwrap();
    let err = app
        .ask(Adopt(gone.service_ref()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Stopped { label } if &**label == "Gone"),
        "{err:?}"
    );
    assert!(app.ask(Children).await.unwrap().is_empty());
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn another_systems_service_and_the_registry_are_refused() {
    let journal = Journal::new();
    let system = System::new();
    let other = System::new();
    let app = system.spawn(Adopter::new("App", &journal)).await.unwrap();
    let foreign = other
        .spawn(Recorder::new("Foreign", &journal))
        .await
        .unwrap();
    let err = app
        .ask(Adopt(foreign.service_ref()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotAdoptable { why, .. } if why.contains("another System")),
        "{err:?}"
    );
    let err = app
        .ask(Adopt(system.registry().service_ref()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::NotAdoptable { .. }), "{err:?}");
    assert!(foreign.parent().is_none() && foreign.is_started());
    other.shutdown().await.unwrap();
    system.shutdown().await.unwrap();
}

/// Two roots adopting each other at the same moment: one wins, the other is refused (no
/// cycle), on a multi-thread runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossed_adoptions_make_no_cycle() {
    let journal = Journal::new();
    let system = System::new();
    for _ in 0..50 {
        let a = system.spawn(Adopter::new("A", &journal)).await.unwrap();
        let b = system.spawn(Adopter::new("B", &journal)).await.unwrap();
        let (ab, ba) = tokio::join!(a.ask(Adopt(b.service_ref())), b.ask(Adopt(a.service_ref())));
        let (ab, ba) = (ab.unwrap(), ba.unwrap());
        assert!(ab.is_ok() != ba.is_ok(), "{ab:?} {ba:?}");
        let refused = if ab.is_err() { ab } else { ba };
        assert!(
            matches!(refused, Err(Error::WouldCycle { .. })),
            "{refused:?}"
        );
        let root = if a.parent().is_none() { &a } else { &b };
        bounded("the stop", root.stop()).await.unwrap();
        assert!(a.is_terminated() && b.is_terminated());
    }
    system.shutdown().await.unwrap();
}

/// A service whose start waits for its gate, then fails.
struct Gated(std::sync::Arc<tokio::sync::Notify>);

impl Service for Gated {
    async fn on_start(&mut self, _ctx: &mut Context<Self>) -> HookResult {
        self.0.notified().await;
        Err("no database".into())
    }
}

#[tokio::test(start_paused = true)]
async fn a_root_adopted_while_its_start_fails_is_a_crash_its_adopter_hears() {
    let journal = Journal::new();
    let system = System::new();
    let app = system.spawn(Adopter::new("App", &journal)).await.unwrap();
    let gate = std::sync::Arc::new(tokio::sync::Notify::new());
    let spawning = tokio::spawn({
        let system = system.clone();
        let spec = ServiceSpec::new(Gated(gate.clone())).name("gated");
        async move { system.spawn(spec).await }
    });
    // Its name is claimed before `on_start`, which waits at the gate.
    let mut gated = None;
    for _ in 0..1_000 {
        if let Ok(found) = system.lookup::<Gated>("gated") {
            gated = Some(found);
            break;
        }
        tokio::task::yield_now().await;
    }
    let gated = gated.expect("the service is starting under its name");
    app.ask(Adopt(gated.service_ref())).await.unwrap().unwrap();

    gate.notify_one();
    // Its spawner hears the failed start...
    let spawned = bounded("the spawn", spawning).await.unwrap();
    assert!(spawned.is_err(), "the start failed");
    // ...and so does its adopter, now its parent: a plain parent escalates, naming it.
    bounded("the escalation", app.wait_until(|a| a.is_terminated())).await;
    match app.crash_reason() {
        Some(CrashReason::Child { child, .. }) => assert_eq!(&*child, "Gated"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(gated.is_terminated());
    system.shutdown().await.unwrap();
}
