//! `Recipient<M, R>`: a handle to anything that handles `M`, whatever its type; and replying
//! later with `ask_with` + `ReplyTo<R>`: from another message, from a background task, while the
//! actor goes on with other messages; failure paths (dropped unanswered, crashed meanwhile,
//! the asker gave up, failed on purpose) and the ask resolving exactly once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use modo::prelude::*;
use modo::{Recipient, ReplyTo, TrySendError};
use tokio::sync::Notify;

/// The bound on every wait in these tests that is not on paused time.
const BOUND: Duration = Duration::from_secs(10);

async fn bounded<F: std::future::Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(BOUND, fut).await {
        Ok(out) => out,
        Err(_) => panic!("{what} did not finish within {BOUND:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// A Frontier that reports to whoever asked, without knowing their types.

/// A page found by the frontier.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found(String);

/// Subscribe a recipient of `Found`.
struct Subscribe(Recipient<Found>);

/// Discover a URL: every subscriber hears of it.
struct Discover(&'static str);

#[derive(Default)]
struct Frontier {
    subscribers: Vec<Recipient<Found>>,
}

impl Service for Frontier {}

impl Handler<Subscribe> for Frontier {
    type Reply = usize;
    async fn handle(&mut self, Subscribe(r): Subscribe, _ctx: &mut Context<Self>) -> usize {
        self.subscribers.push(r);
        self.subscribers.len()
    }
}

impl Handler<Discover> for Frontier {
    type Reply = ();
    async fn handle(&mut self, Discover(url): Discover, _ctx: &mut Context<Self>) {
        for s in &self.subscribers {
            s.tell(Found(url.to_string()))
                .await
                .expect("subscriber alive");
        }
    }
}

/// One kind of subscriber: counts what it hears.
#[derive(Default)]
struct Stats {
    found: Vec<String>,
}
impl Service for Stats {}
impl Handler<Found> for Stats {
    type Reply = ();
    async fn handle(&mut self, Found(url): Found, _ctx: &mut Context<Self>) {
        self.found.push(url);
    }
}
struct Seen;
impl Handler<Seen> for Stats {
    type Reply = Vec<String>;
    async fn handle(&mut self, _: Seen, _ctx: &mut Context<Self>) -> Vec<String> {
        self.found.clone()
    }
}

/// Another kind of subscriber: archives what it hears, upper-cased.
#[derive(Default)]
struct Archive {
    pages: Vec<String>,
}
impl Service for Archive {}
impl Handler<Found> for Archive {
    type Reply = ();
    async fn handle(&mut self, Found(url): Found, _ctx: &mut Context<Self>) {
        self.pages.push(url.to_uppercase());
    }
}
impl Handler<Seen> for Archive {
    type Reply = Vec<String>;
    async fn handle(&mut self, _: Seen, _ctx: &mut Context<Self>) -> Vec<String> {
        self.pages.clone()
    }
}

#[tokio::test]
async fn a_frontier_reports_to_two_service_types_through_recipients() {
    let system = System::new();
    let frontier = system.spawn(Frontier::default()).await.unwrap();
    let stats = system.spawn(Stats::default()).await.unwrap();
    let archive = system.spawn(Archive::default()).await.unwrap();

    // The frontier holds `Recipient<Found>`s: it knows neither `Stats` nor `Archive`.
    let to_stats: Recipient<Found> = stats.recipient();
    assert_eq!(frontier.ask(Subscribe(to_stats)).await.unwrap(), 1);
    assert_eq!(
        frontier
            .ask(Subscribe(archive.clone().into()))
            .await
            .unwrap(),
        2
    );

    for url in ["a", "b", "c"] {
        frontier.tell(Discover(url)).await.unwrap();
    }
    // Queued behind the three Discover: once answered, the frontier has told all three to
    // both subscribers (each tell queued before the next Discover was handled).
    frontier.ask(Subscribe(stats.recipient())).await.unwrap();
    assert_eq!(stats.ask(Seen).await.unwrap(), ["a", "b", "c"]);
    assert_eq!(archive.ask(Seen).await.unwrap(), ["A", "B", "C"]);

    // A subscriber that stopped: the frontier's tell gets the message back.
    archive.stop().await.unwrap();
    let back = frontier.ask(Subscribe(archive.recipient())).await.unwrap();
    assert_eq!(back, 4);
    let r: Recipient<Found> = archive.recipient();
    assert_eq!(
        r.tell(Found("d".into())).await.unwrap_err().into_inner(),
        Found("d".into())
    );
    system.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// tell / try_tell / ask / ask_timeout through a Recipient.

/// Handles `Hold` by waiting on a gate: its mailbox fills while it waits.
struct Gated {
    gate: Arc<Notify>,
    got: Arc<Mutex<Vec<u32>>>,
}
impl Service for Gated {}

#[derive(Debug, PartialEq, Eq)]
struct Hold(u32);

impl Handler<Hold> for Gated {
    type Reply = u32;
    async fn handle(&mut self, Hold(n): Hold, _ctx: &mut Context<Self>) -> u32 {
        if n == 0 {
            self.gate.notified().await;
        }
        self.got.lock().unwrap().push(n);
        n * 10
    }
}

#[tokio::test]
async fn try_tell_through_a_recipient_hands_the_message_back_when_full_or_stopped() {
    let system = System::new();
    let gate = Arc::new(Notify::new());
    let got = Arc::new(Mutex::new(Vec::new()));
    let gated = system
        .spawn(
            ServiceSpec::new(Gated {
                gate: gate.clone(),
                got: got.clone(),
            })
            .mailbox_capacity(2),
        )
        .await
        .unwrap();
    let r: Recipient<Hold, u32> = gated.recipient();

    // Hold(0) blocks the handler. Its slot frees when the handler takes it, so two more fit.
    r.try_tell(Hold(0)).unwrap();
    bounded("the handler takes Hold(0)", async {
        while gated.mailbox_len() > 0 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    r.try_tell(Hold(1)).unwrap();
    r.try_tell(Hold(2)).unwrap();
    match r.try_tell(Hold(3)) {
        Err(e @ TrySendError::Full(..)) => {
            assert!(e.is_full());
            assert_eq!(e.label(), "Gated");
            assert_eq!(e.into_inner(), Hold(3));
        }
        Err(other) => panic!("expected Full, got stopped={}", other.is_stopped()),
        Ok(()) => panic!("a full mailbox took a third message"),
    }
    // `tell` waits for room instead: it lands once the gate opens.
    let waiting = tokio::spawn({
        let r = r.clone();
        async move { r.tell(Hold(4)).await }
    });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished(), "tell returned with no room");
    gate.notify_one();
    bounded("the waiting tell", waiting).await.unwrap().unwrap();
    assert_eq!(r.ask(Hold(5)).await.unwrap(), 50);
    assert_eq!(*got.lock().unwrap(), [0, 1, 2, 4, 5]);

    gated.stop().await.unwrap();
    match r.try_tell(Hold(5)) {
        Err(e @ TrySendError::Stopped(..)) => assert_eq!(e.into_inner(), Hold(5)),
        _ => panic!("expected Stopped"),
    }
    let e = r.tell(Hold(6)).await.unwrap_err();
    assert_eq!(e.label(), "Gated");
    assert_eq!(e.into_inner(), Hold(6));
    assert!(r.ask(Hold(7)).await.unwrap_err().is_stopped());
    assert!(r.is_terminated(), "a Recipient derefs to the ServiceRef");
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn ask_and_ask_timeout_through_a_recipient() {
    let system = System::new();
    let gate = Arc::new(Notify::new());
    let gated = system
        .spawn(Gated {
            gate: gate.clone(),
            got: Arc::default(),
        })
        .await
        .unwrap();
    let r: Recipient<Hold, u32> = gated.clone().into();
    assert_eq!(r.ask(Hold(2)).await.unwrap(), 20);
    assert_eq!(
        r.ask_timeout(Hold(3), Duration::from_secs(1))
            .await
            .unwrap(),
        30
    );
    // Hold(0) never answers until the gate opens: the timeout names the service.
    let started = tokio::time::Instant::now();
    let err = r
        .ask_timeout(Hold(0), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.label(), Some("Gated"));
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    // The message is still handled later; its reply goes nowhere, and the service goes on.
    gate.notify_one();
    assert_eq!(r.ask(Hold(1)).await.unwrap(), 10);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn recipients_compare_by_service_clone_and_debug() {
    let system = System::new();
    let a = system.spawn(Stats::default()).await.unwrap();
    let b = system.spawn(Stats::default()).await.unwrap();
    let ra1: Recipient<Found> = a.recipient();
    let ra2: Recipient<Found> = a.clone().into();
    let rb: Recipient<Found> = b.recipient();
    assert_eq!(ra1, ra2, "two recipients of one service are equal");
    assert_eq!(ra1.clone(), ra1);
    assert_ne!(ra1, rb, "different services differ, even of one type");
    assert_eq!(ra1.id(), a.id());
    assert_eq!(ra1.label(), "Stats");
    assert_eq!(ra1.state(), ServiceState::Running);
    let debug = format!("{ra1:?}");
    assert!(debug.starts_with("Recipient"), "{debug}");
    assert!(debug.contains("\"Stats\""), "{debug}");
    assert!(debug.contains(&a.id().to_string()), "{debug}");
    assert!(debug.contains("message: \"Found\""), "{debug}");
    // A clone sends to the same service.
    ra2.clone().tell(Found("x".into())).await.unwrap();
    assert_eq!(a.ask(Seen).await.unwrap(), ["x"]);
    assert!(b.ask(Seen).await.unwrap().is_empty());
    system.shutdown().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// ask_with / ReplyTo.

/// Parks `ReplyTo`s until a `Publish` answers them, and answers pings in between.
#[derive(Default)]
struct Waiter {
    waiting: Vec<(u32, ReplyTo<u32>)>,
    /// What `ReplyTo::send` handed back (the asker had given up).
    returned: Vec<u32>,
    handled: u32,
}
impl Service for Waiter {}

/// Asks for an answer, later.
struct Later(u32, ReplyTo<u32>);
/// Answers every parked ask with its number + `add`, newest first.
struct Publish(u32);
/// Drops every parked ask unanswered.
struct Forget;
/// Fails every parked ask with a timeout error of its own.
struct FailAll;
/// Answers in a background task after `delay`.
struct InTask(Duration, ReplyTo<&'static str>);
/// Answers at once, in the handler.
struct Now(ReplyTo<u32>);
/// Drops the reply in the handler.
struct DropIt(#[allow(dead_code)] ReplyTo<u32>);
struct Ping;
struct Returned;
/// How many asks are parked.
struct Parked;

impl Handler<Parked> for Waiter {
    type Reply = usize;
    async fn handle(&mut self, _: Parked, _ctx: &mut Context<Self>) -> usize {
        self.waiting.len()
    }
}

impl Handler<Later> for Waiter {
    type Reply = ();
    async fn handle(&mut self, Later(n, reply): Later, _ctx: &mut Context<Self>) {
        self.handled += 1;
        self.waiting.push((n, reply));
    }
}
impl Handler<Publish> for Waiter {
    type Reply = usize;
    async fn handle(&mut self, Publish(add): Publish, _ctx: &mut Context<Self>) -> usize {
        self.handled += 1;
        let mut answered = 0;
        while let Some((n, reply)) = self.waiting.pop() {
            match reply.send(n + add) {
                Ok(()) => answered += 1,
                Err(back) => self.returned.push(back),
            }
        }
        answered
    }
}
impl Handler<Forget> for Waiter {
    type Reply = ();
    async fn handle(&mut self, _: Forget, _ctx: &mut Context<Self>) {
        self.waiting.clear();
    }
}
impl Handler<FailAll> for Waiter {
    type Reply = ();
    async fn handle(&mut self, _: FailAll, _ctx: &mut Context<Self>) {
        for (_, reply) in self.waiting.drain(..) {
            reply.fail(Error::Timeout {
                label: "Downstream".into(),
                timeout: Duration::from_secs(3),
            });
        }
    }
}
impl Handler<InTask> for Waiter {
    type Reply = ();
    async fn handle(&mut self, InTask(delay, reply): InTask, ctx: &mut Context<Self>) {
        ctx.spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = reply.send("from the task");
        });
    }
}
impl Handler<Now> for Waiter {
    type Reply = ();
    async fn handle(&mut self, Now(reply): Now, _ctx: &mut Context<Self>) {
        let _ = reply.send(7);
    }
}
impl Handler<DropIt> for Waiter {
    type Reply = ();
    async fn handle(&mut self, _: DropIt, _ctx: &mut Context<Self>) {}
}
impl Handler<Ping> for Waiter {
    type Reply = u32;
    async fn handle(&mut self, _: Ping, _ctx: &mut Context<Self>) -> u32 {
        self.handled += 1;
        self.handled
    }
}
impl Handler<Returned> for Waiter {
    type Reply = Vec<u32>;
    async fn handle(&mut self, _: Returned, _ctx: &mut Context<Self>) -> Vec<u32> {
        self.returned.clone()
    }
}

/// Waits until the waiter holds `n` parked asks.
async fn parked(waiter: &Addr<Waiter>, n: usize) {
    bounded("the asks to be parked", async {
        while waiter.ask(Parked).await.unwrap() < n {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn ask_with_answered_from_another_message() {
    let system = System::new();
    let waiter = system.spawn(Waiter::default()).await.unwrap();
    let asks: Vec<_> = (0..3)
        .map(|n| {
            let w = waiter.clone();
            tokio::spawn(async move { w.ask_with(|reply| Later(n, reply)).await })
        })
        .collect();
    parked(&waiter, 3).await;
    // A Ping between the Later messages and the Publish: the waiter was not blocked.
    let handled = waiter.ask(Ping).await.unwrap();
    assert_eq!(handled, 4, "three Later handled, then this Ping");
    for a in &asks {
        assert!(!a.is_finished(), "an ask resolved before its answer");
    }
    assert_eq!(waiter.ask(Publish(100)).await.unwrap(), 3);
    let mut answers = Vec::new();
    for a in asks {
        answers.push(bounded("an answered ask", a).await.unwrap().unwrap());
    }
    assert_eq!(answers, [100, 101, 102]);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn ask_with_answered_from_a_background_task_while_the_actor_goes_on() {
    let system = System::new();
    let waiter = system.spawn(Waiter::default()).await.unwrap();
    let started = tokio::time::Instant::now();
    let ask = tokio::spawn({
        let w = waiter.clone();
        async move {
            w.ask_with(|reply| InTask(Duration::from_secs(2), reply))
                .await
        }
    });
    // While the task waits, the actor handles other messages at once.
    for expected in 1..=5 {
        assert_eq!(waiter.ask(Ping).await.unwrap(), expected);
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(!ask.is_finished());
    assert_eq!(ask.await.unwrap().unwrap(), "from the task");
    assert_eq!(started.elapsed(), Duration::from_secs(2));
    // Answered in the handler itself: the simplest case.
    assert_eq!(waiter.ask_with(Now).await.unwrap(), 7);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_reply_dropped_unanswered_fails_the_ask_with_stopped() {
    let system = System::new();
    let waiter = system.spawn(Waiter::default()).await.unwrap();
    // Dropped in the handler.
    let err = waiter.ask_with(DropIt).await.unwrap_err();
    assert!(err.is_stopped(), "{err}");
    assert_eq!(err.label(), Some("Waiter"));
    // Parked, then dropped by another message.
    let ask = tokio::spawn({
        let w = waiter.clone();
        async move { w.ask_with(|reply| Later(1, reply)).await }
    });
    parked(&waiter, 1).await;
    waiter.tell(Forget).await.unwrap();
    let err = bounded("the forgotten ask", ask)
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.is_stopped(), "{err}");
    // The service itself is fine.
    assert_eq!(waiter.state(), ServiceState::Running);
    // Parked, then the service stops for good: the value (and the ReplyTo) is dropped.
    let ask = tokio::spawn({
        let w = waiter.clone();
        async move { w.ask_with(|reply| Later(2, reply)).await }
    });
    parked(&waiter, 1).await;
    waiter.stop().await.unwrap();
    let err = bounded("the ask of a stopped service", ask)
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.is_stopped(), "{err}");
    // After the stop, ask_with fails at once: the message is never queued.
    let err = waiter.ask_with(Now).await.unwrap_err();
    assert!(err.is_stopped(), "{err}");
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_service_crashing_while_holding_the_reply_fails_the_ask_with_crashed() {
    let system = System::new();
    // A root: it ends when it crashes, and its value (holding the ReplyTo) with it.
    let waiter = system.spawn(Waiter::default()).await.unwrap();
    let ask = tokio::spawn({
        let w = waiter.clone();
        async move { w.ask_with(|reply| Later(1, reply)).await }
    });
    parked(&waiter, 1).await;
    waiter.crash("disk on fire");
    let err = bounded("the ask of a crashed root", ask)
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.is_crashed(), "{err}");
    assert!(err.to_string().contains("disk on fire"), "{err}");

    // A supervised one built by a factory: the restart drops the old value, and the ask
    // still says Crashed (the crash happened after it was sent), though the service runs
    // again by the time the asker reads it.
    let sup = system.spawn(Supervisor::builder().build()).await.unwrap();
    let waiter = sup.supervise(Waiter::default).await.unwrap();
    let ask = tokio::spawn({
        let w = waiter.clone();
        async move { w.ask_with(|reply| Later(1, reply)).await }
    });
    parked(&waiter, 1).await;
    waiter.crash("again");
    let err = bounded("the ask of a restarted service", ask)
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.is_crashed(), "{err}");
    bounded(
        "the restart",
        waiter.wait_until(|w| w.restart_count() == 1 && w.state() == ServiceState::Running),
    )
    .await;
    assert_eq!(waiter.ask_with(Now).await.unwrap(), 7);
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn send_after_the_asker_gave_up_hands_the_value_back() {
    let system = System::new();
    let waiter = system.spawn(Waiter::default()).await.unwrap();
    let err = waiter
        .ask_with_timeout(|reply| Later(5, reply), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.label(), Some("Waiter"));
    // Another ask that is still waiting, to show the two are told apart.
    let live = tokio::spawn({
        let w = waiter.clone();
        async move { w.ask_with(|reply| Later(6, reply)).await }
    });
    parked(&waiter, 2).await;
    // Publish answers newest first: 6 reaches its asker, 5's value comes back.
    assert_eq!(waiter.ask(Publish(10)).await.unwrap(), 1);
    assert_eq!(live.await.unwrap().unwrap(), 16);
    assert_eq!(waiter.ask(Returned).await.unwrap(), [15]);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn reply_to_knows_when_the_asker_is_gone() {
    let system = System::new();
    let waiter = system.spawn(Waiter::default()).await.unwrap();
    // An asker dropped while waiting.
    let ask = tokio::spawn({
        let w = waiter.clone();
        async move { w.ask_with(|reply| Later(1, reply)).await }
    });
    parked(&waiter, 1).await;
    ask.abort();
    let _ = ask.await;
    assert_eq!(waiter.ask(Publish(0)).await.unwrap(), 0);
    assert_eq!(waiter.ask(Returned).await.unwrap(), [1]);
    // Debug says whether it is closed.
    let (tx, rx) = tokio::sync::oneshot::channel::<String>();
    struct Show(ReplyTo<u32>, tokio::sync::oneshot::Sender<String>);
    impl Handler<Show> for Waiter {
        type Reply = ();
        async fn handle(&mut self, Show(reply, out): Show, _ctx: &mut Context<Self>) {
            let _ = out.send(format!("{reply:?}"));
            let _ = reply.send(0);
        }
    }
    assert_eq!(
        waiter.ask_with(move |reply| Show(reply, tx)).await.unwrap(),
        0
    );
    assert_eq!(rx.await.unwrap(), "ReplyTo { closed: false }");
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn fail_reaches_the_asker() {
    let system = System::new();
    let waiter = system.spawn(Waiter::default()).await.unwrap();
    let ask = tokio::spawn({
        let w = waiter.clone();
        async move { w.ask_with(|reply| Later(1, reply)).await }
    });
    parked(&waiter, 1).await;
    waiter.tell(FailAll).await.unwrap();
    let err = bounded("the failed ask", ask).await.unwrap().unwrap_err();
    match err {
        Error::Timeout { label, timeout } => {
            assert_eq!(&*label, "Downstream");
            assert_eq!(timeout, Duration::from_secs(3));
        }
        other => panic!("expected the error given to fail, got {other}"),
    }
    assert_eq!(waiter.state(), ServiceState::Running);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn each_ask_resolves_once_with_its_own_answer() {
    let system = System::new();
    let waiter = system.spawn(Waiter::default()).await.unwrap();
    let n = 200u32;
    let asks: Vec<_> = (0..n)
        .map(|i| {
            let w = waiter.clone();
            tokio::spawn(async move { (i, w.ask_with(|reply| Later(i, reply)).await) })
        })
        .collect();
    parked(&waiter, n as usize).await;
    assert_eq!(waiter.ask(Publish(1_000)).await.unwrap(), n as usize);
    // After the answers, a crash and a stop change nothing for the asks already answered.
    waiter.crash("after the answers");
    waiter.wait_until_stopped().await;
    let mut seen = std::collections::BTreeSet::new();
    for a in asks {
        let (i, res) = bounded("an ask", a).await.unwrap();
        assert_eq!(res.unwrap(), i + 1_000, "ask {i} got another's answer");
        assert!(seen.insert(i));
    }
    assert_eq!(seen.len(), n as usize);
    system.shutdown().await.unwrap();
}

#[tokio::test]
async fn ask_with_through_a_recipient() {
    let system = System::new();
    let waiter = system.spawn(Waiter::default()).await.unwrap();
    let later: Recipient<Later> = waiter.recipient();
    let ask = tokio::spawn({
        let later = later.clone();
        async move { later.ask_with(|reply| Later(3, reply)).await }
    });
    parked(&waiter, 1).await;
    assert_eq!(waiter.ask(Publish(4)).await.unwrap(), 1);
    assert_eq!(bounded("the ask", ask).await.unwrap().unwrap(), 7);
    // Dropped unanswered through a recipient: Stopped too.
    let drop_it: Recipient<DropIt> = waiter.recipient();
    assert!(drop_it.ask_with(DropIt).await.unwrap_err().is_stopped());
    waiter.stop().await.unwrap();
    assert!(
        later
            .ask_with(|r| Later(1, r))
            .await
            .unwrap_err()
            .is_stopped()
    );
    system.shutdown().await.unwrap();
}
