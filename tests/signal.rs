//! Signals (Mode's observer pattern) through the public API: order, sync and async receivers,
//! sender filters, disconnect, failing receivers, clone versus `with_default_sender`, and
//! concurrent sends, weak receivers that leave with their owner.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use modo::CrashReason;
use modo::Signal;
use modo::signal::{ReceiverId, SendReport};

type Log = Arc<Mutex<Vec<String>>>;

fn log() -> Log {
    Arc::new(Mutex::new(Vec::new()))
}

fn take(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap())
}

/// A sync receiver that writes `tag:sender:value`.
fn sync_rec(signal: &Signal<u32, &'static str>, log: &Log, tag: &'static str) -> ReceiverId {
    let log = log.clone();
    signal.connect(move |s: &&str, v: &u32| log.lock().unwrap().push(format!("{tag}:{s}:{v}")))
}

/// An async receiver that yields and sleeps before writing `tag:sender:value`.
fn async_rec(signal: &Signal<u32, &'static str>, log: &Log, tag: &'static str) -> ReceiverId {
    let log = log.clone();
    signal.connect_async(move |s, v| {
        let log = log.clone();
        async move {
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(2)).await;
            log.lock().unwrap().push(format!("{tag}:{s}:{v}"));
        }
    })
}

#[tokio::test]
async fn receivers_are_called_in_the_order_connected() {
    let signal: Signal<u32, &'static str> = Signal::named("ordered");
    let seen = log();
    let tags = ["r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9"];
    for tag in tags {
        sync_rec(&signal, &seen, tag);
    }
    let report = signal.send("x", 7).await;
    assert_eq!(report.called(), 10);
    assert!(report.is_ok());
    let expected: Vec<String> = tags.iter().map(|t| format!("{t}:x:7")).collect();
    assert_eq!(take(&seen), expected);

    // The same order on every send.
    signal.send("y", 8).await;
    let expected: Vec<String> = tags.iter().map(|t| format!("{t}:y:8")).collect();
    assert_eq!(take(&seen), expected);
}

#[tokio::test]
async fn sync_and_async_receivers_mixed_run_in_order_and_async_ones_are_awaited() {
    let signal: Signal<u32, &'static str> = Signal::new();
    let seen = log();
    async_rec(&signal, &seen, "a1");
    sync_rec(&signal, &seen, "s1");
    async_rec(&signal, &seen, "a2");
    sync_rec(&signal, &seen, "s2");

    let report = signal.send("me", 1).await;
    assert_eq!(report.called(), 4);
    assert_eq!(report.succeeded(), 4);
    // Every async receiver finished before `send` returned, and before the next receiver.
    assert_eq!(take(&seen), ["a1:me:1", "s1:me:1", "a2:me:1", "s2:me:1"]);
}

#[tokio::test]
async fn a_sender_filter_limits_a_receiver_to_one_sender() {
    let signal: Signal<u32, &'static str> = Signal::new();
    let seen = log();
    sync_rec(&signal, &seen, "all");
    let l = seen.clone();
    signal.connect_from("alice", move |s: &&str, v: &u32| {
        l.lock().unwrap().push(format!("only-alice:{s}:{v}"));
    });
    let l = seen.clone();
    signal.connect_async_from("bob", move |s, v| {
        let l = l.clone();
        async move { l.lock().unwrap().push(format!("only-bob:{s}:{v}")) }
    });

    assert_eq!(signal.send("alice", 1).await.called(), 2);
    assert_eq!(signal.send("bob", 2).await.called(), 2);
    assert_eq!(signal.send("carol", 3).await.called(), 1);
    assert_eq!(
        take(&seen),
        [
            "all:alice:1",
            "only-alice:alice:1",
            "all:bob:2",
            "only-bob:bob:2",
            "all:carol:3"
        ]
    );
}

#[tokio::test]
async fn disconnect_really_removes_and_drops_the_receiver() {
    let signal: Signal<u32, &'static str> = Signal::new();
    let seen = log();
    let keep = sync_rec(&signal, &seen, "keep");

    // A receiver holding an Arc (Mode could not remove a strongly referenced receiver).
    let held = Arc::new(());
    let h = held.clone();
    let sync_id = signal.connect(move |_: &&str, _: &u32| {
        let _ = &h;
    });
    let h = held.clone();
    let async_id = signal.connect_async_from("x", move |_, _| {
        let h = h.clone();
        async move {
            let _ = &h;
        }
    });
    assert_eq!(Arc::strong_count(&held), 3);
    assert_eq!(signal.len(), 3);
    assert_eq!(signal.send("x", 1).await.called(), 3);
    // The send dropped its snapshot: nothing else holds the receivers.
    assert_eq!(Arc::strong_count(&held), 3);

    assert!(signal.is_connected(sync_id));
    assert!(signal.disconnect(sync_id));
    assert!(!signal.is_connected(sync_id));
    assert_eq!(Arc::strong_count(&held), 2);
    assert!(signal.disconnect(async_id));
    assert_eq!(Arc::strong_count(&held), 1);

    // A second disconnect, or an id of another signal, reports "not connected".
    assert!(!signal.disconnect(sync_id));
    let other: Signal<u32, &'static str> = Signal::new();
    let foreign = other.connect(|_: &&str, _: &u32| {});
    assert!(!signal.disconnect(foreign));
    assert!(other.is_connected(foreign));

    take(&seen);
    let report = signal.send("x", 2).await;
    assert_eq!(report.called(), 1);
    assert_eq!(take(&seen), ["keep:x:2"]);

    assert_eq!(signal.disconnect_all(), 1);
    assert!(!signal.is_connected(keep));
    assert!(signal.is_empty());
    assert_eq!(signal.send("x", 3).await.called(), 0);
}

#[tokio::test]
async fn a_failing_receiver_is_reported_and_the_others_still_run() {
    let signal: Signal<u32, &'static str> = Signal::named("faulty");
    let seen = log();
    sync_rec(&signal, &seen, "first");
    let panics = signal.connect(|_: &&str, v: &u32| {
        if *v > 0 {
            panic!("receiver exploded on {v}");
        }
    });
    sync_rec(&signal, &seen, "middle");
    let errs = signal.connect(|_: &&str, _: &u32| Err("refused"));
    async_rec(&signal, &seen, "async");
    let async_panics = signal.connect_async(|_, v| async move {
        if v > 0 {
            panic!("async receiver exploded");
        }
    });
    let async_errs = signal.connect_async(|_, v| async move {
        tokio::task::yield_now().await;
        Err::<(), String>(format!("async refused {v}"))
    });
    sync_rec(&signal, &seen, "last");

    let report: SendReport = signal.send("s", 5).await;
    assert_eq!(report.called(), 8);
    assert_eq!(report.succeeded(), 4);
    assert!(!report.is_ok());
    assert_eq!(
        take(&seen),
        ["first:s:5", "middle:s:5", "async:s:5", "last:s:5"]
    );

    let failures = report.failures();
    let ids: Vec<ReceiverId> = failures.iter().map(|f| f.receiver()).collect();
    assert_eq!(ids, [panics, errs, async_panics, async_errs]);

    match failures[0].reason() {
        CrashReason::Panic { message, during } => {
            assert_eq!(&**message, "receiver exploded on 5");
            assert!(during.contains(&panics.to_string()), "{during}");
            assert!(during.contains("faulty"), "{during}");
        }
        other => panic!("expected a panic, got {other:?}"),
    }
    assert!(failures[0].reason().is_panic());
    match failures[1].reason() {
        CrashReason::Error(e) => assert_eq!(e.to_string(), "refused"),
        other => panic!("expected an error, got {other:?}"),
    }
    assert!(failures[2].reason().is_panic());
    assert!(failures[2].to_string().contains("async receiver exploded"));
    assert!(!failures[3].reason().is_panic());
    assert!(failures[3].to_string().contains("async refused 5"));

    // The signal still works afterwards; the panicking receiver stays connected.
    let report = signal.send("s", 0).await;
    assert_eq!(report.called(), 8);
    // With 0 neither panicking receiver panics; the two `Err` ones still fail.
    let ids: Vec<ReceiverId> = report.failures().iter().map(|f| f.receiver()).collect();
    assert_eq!(ids, [errs, async_errs]);
    assert!(signal.is_connected(panics));
}

#[tokio::test]
async fn a_clone_shares_nothing() {
    let original: Signal<u32, &'static str> = Signal::named("orig");
    let seen = log();
    let before = sync_rec(&original, &seen, "before");

    let copy = original.clone();
    assert_eq!(copy.name(), "orig");
    // The clone starts with a copy of the list...
    assert!(copy.is_connected(before));
    // ...and from then on the two are independent.
    let only_copy = sync_rec(&copy, &seen, "copy");
    let only_orig = sync_rec(&original, &seen, "orig");
    assert!(!original.is_connected(only_copy));
    assert!(!copy.is_connected(only_orig));

    original.send("o", 1).await;
    assert_eq!(take(&seen), ["before:o:1", "orig:o:1"]);
    copy.send("c", 2).await;
    assert_eq!(take(&seen), ["before:c:2", "copy:c:2"]);

    // Disconnecting from the clone leaves the original alone.
    assert!(copy.disconnect(before));
    assert!(original.is_connected(before));
    original.send("o", 3).await;
    assert_eq!(take(&seen), ["before:o:3", "orig:o:3"]);
    copy.send("c", 4).await;
    assert_eq!(take(&seen), ["copy:c:4"]);

    // A clone of an empty signal is empty, and connecting to it leaves the original empty.
    let empty: Signal<u32> = Signal::new();
    let empty_copy = empty.clone();
    empty_copy.connect(|_: &(), _: &u32| {});
    assert!(empty.is_empty());
    assert_eq!(empty_copy.len(), 1);
}

#[tokio::test]
async fn with_default_sender_shares_the_receivers() {
    let signal: Signal<u32, &'static str> = Signal::new();
    assert_eq!(signal.default_sender(), None);
    let seen = log();
    let shared = sync_rec(&signal, &seen, "base");

    let as_alice = signal.with_default_sender("alice");
    assert_eq!(as_alice.default_sender(), Some(&"alice"));
    // Connecting through the derived signal is seen by the original, and the reverse.
    let via_alice = async_rec(&as_alice, &seen, "via-alice");
    assert!(signal.is_connected(via_alice));
    assert!(as_alice.is_connected(shared));
    let l = seen.clone();
    signal.connect_from("alice", move |s: &&str, v: &u32| {
        l.lock().unwrap().push(format!("alice-only:{s}:{v}"));
    });

    let report = as_alice.send_default(1).await;
    assert_eq!(report.called(), 3);
    assert_eq!(
        take(&seen),
        ["base:alice:1", "via-alice:alice:1", "alice-only:alice:1"]
    );

    // An explicit sender still wins over the default.
    as_alice.send("bob", 2).await;
    assert_eq!(take(&seen), ["base:bob:2", "via-alice:bob:2"]);

    // Without a default sender, send_default uses S::default() ("" for &str).
    signal.send_default(3).await;
    assert_eq!(take(&seen), ["base::3", "via-alice::3"]);

    // Disconnecting through one removes from both.
    assert!(signal.disconnect(via_alice));
    assert!(!as_alice.is_connected(via_alice));
    assert_eq!(as_alice.len(), signal.len());

    // With `S = ()`, send_default just sends.
    let unit: Signal<String> = Signal::new();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    unit.connect(move |_: &(), v: &String| {
        assert_eq!(v, "hi");
        c.fetch_add(1, Ordering::SeqCst);
    });
    unit.send_default("hi".to_string()).await;
    unit.send((), "hi".to_string()).await;
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sends_from_many_tasks_all_deliver() {
    const TASKS: usize = 8;
    const SENDS: usize = 200;

    let signal: Signal<usize, usize> = Signal::named("busy");
    let sync_count = Arc::new(AtomicUsize::new(0));
    let async_count = Arc::new(AtomicUsize::new(0));
    let sum = Arc::new(AtomicUsize::new(0));
    let filtered = Arc::new(AtomicUsize::new(0));

    let (c, s) = (sync_count.clone(), sum.clone());
    signal.connect(move |_: &usize, v: &usize| {
        c.fetch_add(1, Ordering::SeqCst);
        s.fetch_add(*v, Ordering::SeqCst);
    });
    let c = async_count.clone();
    signal.connect_async(move |_, _| {
        let c = c.clone();
        async move {
            tokio::task::yield_now().await;
            c.fetch_add(1, Ordering::SeqCst);
        }
    });
    let f = filtered.clone();
    signal.connect_from(3, move |sender: &usize, _: &usize| {
        assert_eq!(*sender, 3);
        f.fetch_add(1, Ordering::SeqCst);
    });

    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let signal = signal.with_default_sender(task);
        tasks.push(tokio::spawn(async move {
            for i in 0..SENDS {
                let report = signal.send_default(i).await;
                assert!(report.is_ok());
                // One more when the snapshot caught a receiver connected below.
                let expected = if task == 3 { 3 } else { 2 };
                assert!((expected..=expected + 1).contains(&report.called()));
            }
        }));
    }
    // Connecting and disconnecting while the sends run is safe and leaves the others alone.
    for _ in 0..50 {
        let id = signal.connect(|_: &usize, _: &usize| {});
        tokio::task::yield_now().await;
        assert!(signal.disconnect(id));
    }
    for t in tasks {
        t.await.unwrap();
    }

    assert_eq!(sync_count.load(Ordering::SeqCst), TASKS * SENDS);
    assert_eq!(async_count.load(Ordering::SeqCst), TASKS * SENDS);
    assert_eq!(filtered.load(Ordering::SeqCst), SENDS);
    assert_eq!(
        sum.load(Ordering::SeqCst),
        TASKS * (SENDS * (SENDS - 1) / 2)
    );
    assert_eq!(signal.len(), 3);
}

#[test]
fn signals_and_reports_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Signal<u32>>();
    send_sync::<Signal<String, Arc<str>>>();
    send_sync::<SendReport>();
    send_sync::<ReceiverId>();
}

#[tokio::test]
async fn a_send_future_can_be_spawned() {
    let signal: Signal<u32> = Signal::new();
    signal.connect_async(|_, _| async {});
    let s = signal.clone();
    let report = tokio::spawn(async move { s.send((), 1).await })
        .await
        .unwrap();
    assert_eq!(report.called(), 1);
}

/// A writer for the test subscriber: collects the formatted lines.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_failing_receiver_is_logged_as_a_warning() {
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime is current-thread: the send runs on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let signal: Signal<u32> = Signal::named("noisy");
    signal.connect(|_: &(), _: &u32| {});
    let failing = signal.connect(|_: &(), v: &u32| Err(format!("bad value {v}")));
    let report = signal.send((), 9).await;
    assert_eq!(report.failures().len(), 1);

    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("WARN"), "{text}");
    assert!(text.contains("signal noisy"), "{text}");
    assert!(text.contains(&failing.to_string()), "{text}");
    assert!(text.contains("bad value 9"), "{text}");
}

#[tokio::test]
async fn a_receiver_may_connect_and_disconnect_during_a_send() {
    // No lock is held while receivers run: a receiver can change the list (no deadlock).
    let signal: Signal<u32> = Signal::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let own_id = Arc::new(std::sync::OnceLock::<ReceiverId>::new());

    let (s, c, me) = (
        signal.with_default_sender(()),
        calls.clone(),
        own_id.clone(),
    );
    let once = signal.connect(move |_: &(), _: &u32| {
        // Disconnects itself and connects a new receiver, not called by this send.
        assert!(s.disconnect(*me.get().unwrap()));
        let c = c.clone();
        s.connect(move |_: &(), _: &u32| {
            c.fetch_add(1, Ordering::SeqCst);
        });
    });
    own_id.set(once).unwrap();

    assert_eq!(signal.send((), 1).await.called(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(!signal.is_connected(once));
    assert_eq!(signal.send((), 2).await.called(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// An owner that notes its drop.
struct Owner {
    name: &'static str,
    dropped: Log,
}

impl Drop for Owner {
    fn drop(&mut self) {
        self.dropped
            .lock()
            .unwrap()
            .push(format!("dropped {}", self.name));
    }
}

#[tokio::test]
async fn a_weak_receiver_is_called_while_its_owner_lives_and_removed_after() {
    let signal: Signal<u32, &'static str> = Signal::named("weak");
    let seen = log();
    let owner = Arc::new(Owner {
        name: "cache",
        dropped: seen.clone(),
    });
    sync_rec(&signal, &seen, "strong");
    let weak = {
        let seen = seen.clone();
        signal.connect_weak(&owner, move |o: &Owner, s: &&str, v: &u32| {
            seen.lock().unwrap().push(format!("{}:{s}:{v}", o.name));
        })
    };
    assert_eq!(
        Arc::strong_count(&owner),
        1,
        "the signal holds no strong reference"
    );
    assert_eq!(signal.len(), 2);

    let report = signal.send("a", 1).await;
    assert_eq!(report.called(), 2);
    assert_eq!(take(&seen), ["strong:a:1", "cache:a:1"]);

    drop(owner);
    assert_eq!(take(&seen), ["dropped cache"], "the owner really died");
    assert!(!signal.is_connected(weak));
    assert_eq!(signal.len(), 1, "removed from the list");
    let report = signal.send("a", 2).await;
    assert_eq!(report.called(), 1, "not called, not counted");
    assert_eq!(take(&seen), ["strong:a:2"]);
    assert!(!signal.disconnect(weak), "already gone");
}

#[tokio::test]
async fn a_weak_receiver_is_removed_by_the_send_that_finds_its_owner_gone() {
    let signal: Signal<u32> = Signal::new();
    let seen = log();
    let owner = Arc::new(Owner {
        name: "o",
        dropped: seen.clone(),
    });
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    signal.connect_weak(&owner, move |_: &Owner, _: &(), _: &u32| {
        counted.fetch_add(1, Ordering::SeqCst);
    });
    // A receiver connected after it drops the owner during a send: the weak one was
    // called first (order of connection).
    let holder = Arc::new(Mutex::new(Some(owner)));
    let h = holder.clone();
    let dropper = signal.connect(move |_: &(), _: &u32| {
        h.lock().unwrap().take();
    });
    assert_eq!(signal.send((), 1).await.called(), 2);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(take(&seen), ["dropped o"]);
    // Still on the list (nothing has looked at it since): the next send skips and removes it.
    assert!(format!("{signal:?}").contains("receivers: 2"));
    assert_eq!(signal.send((), 2).await.called(), 1, "only the dropper");
    assert!(format!("{signal:?}").contains("receivers: 1"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(signal.disconnect(dropper));
    assert!(signal.is_empty());
}

#[tokio::test]
async fn weak_receivers_filtered_by_sender_and_async_ones() {
    let signal: Signal<u32, &'static str> = Signal::named("weak filters");
    let seen = log();
    let owner = Arc::new(Owner {
        name: "svc",
        dropped: log(),
    });
    {
        let seen = seen.clone();
        signal.connect_weak_from("b", &owner, move |o: &Owner, s: &&str, v: &u32| {
            seen.lock()
                .unwrap()
                .push(format!("sync {}:{s}:{v}", o.name));
        });
    }
    let async_id = {
        let seen = seen.clone();
        signal.connect_weak_async(&owner, move |o: Arc<Owner>, s, v| {
            let seen = seen.clone();
            async move {
                tokio::task::yield_now().await;
                seen.lock()
                    .unwrap()
                    .push(format!("async {}:{s}:{v}", o.name));
            }
        })
    };
    signal.send("a", 1).await;
    signal.send("b", 2).await;
    assert_eq!(
        take(&seen),
        ["async svc:a:1", "sync svc:b:2", "async svc:b:2"]
    );
    // A disconnect works on weak receivers too.
    assert!(signal.disconnect(async_id));
    assert_eq!(signal.len(), 1);
    drop(owner);
    assert!(signal.is_empty());
    assert_eq!(signal.send("b", 3).await.called(), 0);
    assert!(take(&seen).is_empty());
}

#[tokio::test]
async fn an_async_weak_receiver_keeps_its_owner_alive_for_its_call() {
    let signal: Signal<u32> = Signal::new();
    let seen = log();
    let owner = Arc::new(Owner {
        name: "busy",
        dropped: seen.clone(),
    });
    let gate = Arc::new(tokio::sync::Notify::new());
    {
        let (seen, gate) = (seen.clone(), gate.clone());
        signal.connect_weak_async(&owner, move |o: Arc<Owner>, _, v| {
            let (seen, gate) = (seen.clone(), gate.clone());
            async move {
                gate.notified().await;
                seen.lock().unwrap().push(format!("{} got {v}", o.name));
            }
        });
    }
    let sending = tokio::spawn({
        let signal = signal.with_default_sender(());
        async move { signal.send_default(1).await.called() }
    });
    tokio::task::yield_now().await;
    drop(owner); // the last outside reference, during the call
    assert!(take(&seen).is_empty(), "still alive: the call holds it");
    gate.notify_one();
    assert_eq!(sending.await.unwrap(), 1);
    assert_eq!(take(&seen), ["busy got 1", "dropped busy"]);
    assert!(signal.is_empty());
}
