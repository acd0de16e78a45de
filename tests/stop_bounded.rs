//! Every stop ends. A parent stopped while its children wait on asks to it, a parent restarted
//! in the same situation, a child that stopped itself and is then asked something: none of them
//! hangs, and each resolves at once or within the bound the service set
//! ([`Service::shutdown_timeout`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use modo::prelude::*;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// The parent: its `Hold` handler waits for a permit, so the test can queue work behind it.
struct Parent {
    gate: Arc<Semaphore>,
    kids: usize,
    kid_timeout: Duration,
}

impl Service for Parent {
    fn dependencies(&mut self) -> Vec<Dependency> {
        (0..self.kids)
            .map(|i| {
                Kid {
                    index: i,
                    timeout: self.kid_timeout,
                }
                .into()
            })
            .collect()
    }
}

struct Hold;
struct Hello;
struct Kids;

impl Handler<Kids> for Parent {
    type Reply = Vec<ServiceRef>;
    async fn handle(&mut self, _: Kids, ctx: &mut Context<Self>) -> Vec<ServiceRef> {
        ctx.children().to_vec()
    }
}

impl Handler<Hold> for Parent {
    type Reply = ();
    async fn handle(&mut self, _: Hold, _ctx: &mut Context<Self>) {
        self.gate.acquire().await.expect("never closed").forget();
    }
}

impl Handler<Hello> for Parent {
    type Reply = &'static str;
    async fn handle(&mut self, _: Hello, _ctx: &mut Context<Self>) -> &'static str {
        "hello"
    }
}

/// A child whose `AskParent` handler asks its parent and reports what it got.
struct Kid {
    index: usize,
    timeout: Duration,
}

impl Service for Kid {
    fn label(&self) -> std::borrow::Cow<'static, str> {
        format!("Kid{}", self.index).into()
    }

    fn shutdown_timeout(&self) -> Duration {
        self.timeout
    }
}

struct AskParent(Arc<Mutex<Vec<String>>>);

impl Handler<AskParent> for Kid {
    type Reply = ();
    async fn handle(&mut self, msg: AskParent, ctx: &mut Context<Self>) {
        let parent = ctx
            .myself()
            .service_ref()
            .parent()
            .and_then(|p| p.downcast::<Parent>())
            .expect("a kid has a Parent");
        let got = match parent.ask(Hello).await {
            Ok(s) => s.to_string(),
            Err(e) if e.is_stopped() => "stopped".to_string(),
            Err(e) => format!("error: {e}"),
        };
        msg.0
            .lock()
            .unwrap()
            .push(format!("kid{}: {got}", self.index));
    }
}

async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// A parent with three children, held in a handler, each child in a handler asking the parent
/// (the asks are queued behind the held handler).
async fn parent_with_kids_asking(
    kid_timeout: Duration,
) -> (
    System,
    Addr<Parent>,
    Vec<Addr<Kid>>,
    Arc<Semaphore>,
    Arc<Mutex<Vec<String>>>,
) {
    let system = System::new();
    let gate = Arc::new(Semaphore::new(0));
    let parent = system
        .spawn(Parent {
            gate: gate.clone(),
            kids: 3,
            kid_timeout,
        })
        .await
        .unwrap();
    let kids: Vec<Addr<Kid>> = parent
        .ask(Kids)
        .await
        .unwrap()
        .iter()
        .map(|k| k.downcast::<Kid>().unwrap())
        .collect();
    parent.tell(Hold).await.unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    for kid in &kids {
        kid.tell(AskParent(log.clone())).await.unwrap();
    }
    settle().await;
    assert!(log.lock().unwrap().is_empty(), "every kid waits on its ask");
    (system, parent, kids, gate, log)
}

#[tokio::test(start_paused = true)]
async fn a_parent_stopped_while_its_children_ask_it_stops_at_once() {
    let (system, parent, _kids, gate, log) = parent_with_kids_asking(Duration::from_secs(60)).await;
    let stopper = tokio::spawn({
        let parent = parent.clone();
        async move { parent.stop().await }
    });
    settle().await;
    gate.add_permits(1);
    let began = Instant::now();
    tokio::time::timeout(Duration::from_secs(1), stopper)
        .await
        .expect("the stop ends at once: the children's asks fail, their handlers return")
        .unwrap()
        .unwrap();
    assert!(began.elapsed() < Duration::from_secs(1));
    let mut log = log.lock().unwrap().clone();
    log.sort();
    assert_eq!(log, ["kid0: stopped", "kid1: stopped", "kid2: stopped"]);
    assert_eq!(system.live_actors(), 0);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_parent_restarted_while_its_children_ask_it_restarts_within_their_shutdown_timeout() {
    // A restart keeps the mailbox, so the children's asks cannot be failed: the cycle (the
    // parent waits for its children to stop, they wait for the parent to answer) is broken by
    // the children's shutdown timeout. A handler that has not returned that long after its
    // service was told to stop is abandoned, and the service counts as crashed.
    let kid_timeout = Duration::from_secs(2);
    let (system, parent, kids, gate, log) = parent_with_kids_asking(kid_timeout).await;
    let restarter = tokio::spawn({
        let parent = parent.clone();
        async move { parent.restart().await }
    });
    settle().await;
    gate.add_permits(1);
    let began = Instant::now();
    tokio::time::timeout(Duration::from_secs(30), restarter)
        .await
        .expect("the restart ends within the children's shutdown timeout")
        .unwrap()
        .unwrap();
    // Mode's order: the children are stopped one after another, newest first, each given its
    // own shutdown timeout.
    let took = began.elapsed();
    assert_eq!(took, kid_timeout * 3, "{took:?}");
    assert_eq!(parent.state(), ServiceState::Running);
    for kid in &kids {
        assert_eq!(kid.state(), ServiceState::Running, "{}", kid.label());
        assert_eq!(kid.restart_count(), 1);
    }
    assert!(
        log.lock().unwrap().is_empty(),
        "the abandoned handlers never finished"
    );
    // The parent answers again (the abandoned asks were handled after its restart).
    assert_eq!(parent.ask(Hello).await.unwrap(), "hello");
    system.shutdown().await.unwrap();
}

/// A child that stops itself on `Quit`; its parent's `QuitThenAsk` handler tells it to quit and
/// then asks it something.
struct Boss;

impl Service for Boss {}

struct Worker;

impl Service for Worker {}

struct Quit;

impl Handler<Quit> for Worker {
    type Reply = ();
    async fn handle(&mut self, _: Quit, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}

impl Handler<Hello> for Worker {
    type Reply = &'static str;
    async fn handle(&mut self, _: Hello, _ctx: &mut Context<Self>) -> &'static str {
        "still here"
    }
}

struct QuitThenAsk;

impl Handler<QuitThenAsk> for Boss {
    type Reply = (Result<&'static str, Error>, ServiceState);
    async fn handle(
        &mut self,
        _: QuitThenAsk,
        ctx: &mut Context<Self>,
    ) -> (Result<&'static str, Error>, ServiceState) {
        let worker = ctx
            .add_runtime_dependency(Worker)
            .await
            .expect("the worker starts");
        worker
            .ask(Quit)
            .await
            .expect("the worker answers before it stops");
        let asked = tokio::time::timeout(Duration::from_secs(3), worker.ask(Hello)).await;
        let asked = asked.unwrap_or_else(|_| {
            Err(Error::Timeout {
                label: Arc::from("Worker"),
                timeout: Duration::from_secs(3),
            })
        });
        (asked, worker.state())
    }
}

#[tokio::test(start_paused = true)]
async fn an_ask_to_a_child_that_stopped_itself_resolves_at_once_while_its_parent_is_busy() {
    let system = System::new();
    let boss = system.spawn(Boss).await.unwrap();
    let began = Instant::now();
    let (asked, state) = boss.ask(QuitThenAsk).await.unwrap();
    assert!(
        matches!(asked, Err(Error::Stopped { .. })),
        "an ask to a service that stopped itself resolves Stopped at once, got {asked:?}"
    );
    assert_eq!(state, ServiceState::Shutdown);
    assert!(began.elapsed() < Duration::from_secs(1));
    system.shutdown().await.unwrap();
}
