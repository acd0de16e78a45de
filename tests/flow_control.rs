//! Flow control: producers pause while the event is suspended and go on after the resume,
//! managed queues are emptied on suspend (their waiting producers get their items back), a
//! thrown error wakes a waiting consumer, and no item is lost or duplicated through pauses,
//! resumes and clears.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use modo::flow::{FlowControlEvent, FlowControlQueue, PutError, ThrowableQueue, TryPutError};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `fut`, failing the test instead of hanging if it is not done within an hour of paused
/// time (which passes at once when nothing else can run).
async fn within<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(3600), fut)
        .await
        .expect("hung: not done within an hour")
}

#[tokio::test(start_paused = true)]
async fn producers_wait_while_suspended_and_go_on_after_resume() {
    let flow = FlowControlEvent::resumed();
    let queue = FlowControlQueue::new(&flow);
    queue.put(0).await.unwrap();
    flow.suspend();
    let producers: Vec<_> = (1..=3)
        .map(|i| {
            let queue = queue.clone();
            tokio::spawn(async move { queue.put(i).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(queue.len(), 1, "nothing entered while suspended");
    assert!(producers.iter().all(|p| !p.is_finished()));
    // Consumers are not paused.
    assert_eq!(within(queue.get()).await, 0);
    assert!(matches!(queue.try_put(9), Err(TryPutError::Suspended(9))));

    flow.resume();
    for p in producers {
        within(p).await.unwrap().unwrap();
    }
    let mut got: Vec<i32> = (0..3).map(|_| queue.try_get().unwrap()).collect();
    got.sort();
    assert_eq!(got, [1, 2, 3]);
    assert_eq!(queue.try_get(), None);
}

#[tokio::test(start_paused = true)]
async fn a_new_event_starts_suspended_and_acquire_waits_for_the_resume() {
    let flow = FlowControlEvent::new();
    assert!(!flow.is_active());
    assert!(FlowControlEvent::resumed().is_active());
    let waiter = tokio::spawn({
        let flow = flow.clone();
        async move { flow.acquire().await }
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiter.is_finished());
    flow.resume();
    within(waiter).await.unwrap();
    assert!(flow.is_active());
    // Active: at once.
    tokio::time::timeout(Duration::ZERO, flow.acquire())
        .await
        .expect("acquire on an active event does not wait");
}

#[tokio::test(start_paused = true)]
async fn a_bounded_queue_makes_producers_wait_for_room_in_order() {
    let flow = FlowControlEvent::resumed();
    let queue = FlowControlQueue::builder(&flow).maxsize(2).build();
    assert_eq!(queue.maxsize(), Some(2));
    queue.put("a").await.unwrap();
    queue.put("b").await.unwrap();
    assert!(matches!(queue.try_put("x"), Err(TryPutError::Full("x"))));
    let third = tokio::spawn({
        let queue = queue.clone();
        async move { queue.put("c").await }
    });
    tokio::time::sleep(ms(100)).await;
    assert!(!third.is_finished());
    assert_eq!(within(queue.get()).await, "a");
    within(third).await.unwrap().unwrap();
    assert_eq!(within(queue.get()).await, "b");
    assert_eq!(within(queue.get()).await, "c");
}

#[tokio::test(start_paused = true)]
async fn a_producer_woken_by_room_while_suspended_waits_for_the_resume() {
    let flow = FlowControlEvent::resumed();
    let queue = FlowControlQueue::builder(&flow).maxsize(1).build();
    queue.put(1).await.unwrap();
    let producer = tokio::spawn({
        let queue = queue.clone();
        async move { queue.put(2).await }
    });
    tokio::time::sleep(ms(10)).await;
    flow.suspend(); // not a managed queue: nothing is cleared
    assert_eq!(within(queue.get()).await, 1); // room, while suspended
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(queue.is_empty(), "no put completes while suspended");
    assert!(!producer.is_finished());
    flow.resume();
    within(producer).await.unwrap().unwrap();
    assert_eq!(within(queue.get()).await, 2);
}

#[tokio::test(start_paused = true)]
async fn a_producer_that_found_the_queue_full_is_cleared_even_while_suspended() {
    let flow = FlowControlEvent::resumed();
    let queue = FlowControlQueue::builder(&flow).maxsize(1).build();
    queue.put(1).await.unwrap();
    let producer = tokio::spawn({
        let queue = queue.clone();
        async move { queue.put(2).await }
    });
    tokio::time::sleep(ms(10)).await;
    flow.suspend();
    assert_eq!(within(queue.get()).await, 1); // room: the producer wakes, and waits for the resume
    tokio::time::sleep(ms(10)).await;
    assert!(queue.clear().is_empty());
    match within(producer).await.unwrap() {
        Err(PutError::Cleared(2)) => {}
        other => panic!("expected Cleared(2), got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn suspend_empties_managed_queues_only() {
    let flow = FlowControlEvent::resumed();
    let managed = FlowControlQueue::builder(&flow)
        .clear_on_suspend(true)
        .build();
    let plain = FlowControlQueue::new(&flow);
    let throwable: ThrowableQueue<u8, &str> = ThrowableQueue::builder()
        .flow_control(&flow)
        .clear_on_suspend(true)
        .build();
    for i in 0..3 {
        managed.put(i).await.unwrap();
        plain.put(i).await.unwrap();
    }
    throwable.put(7).await.unwrap();
    throwable.throw("stale error");

    assert_eq!(flow.suspend(), 3 + 1, "three items and one item dropped");
    assert!(managed.is_empty());
    assert!(throwable.is_empty(), "items and pending errors");
    assert_eq!(plain.len(), 3, "an unmanaged queue keeps its items");

    // The event's clear works while active too.
    flow.resume();
    managed.put(10).await.unwrap();
    assert_eq!(flow.clear(), 1);
    assert!(managed.is_empty());
    // A dropped queue leaves the event.
    drop(managed);
    drop(throwable);
    assert_eq!(flow.clear(), 0);
    assert!(format!("{flow:?}").contains("managed_queues: 0"));
}

#[tokio::test(start_paused = true)]
async fn a_clear_hands_producers_waiting_for_room_their_items_back() {
    let flow = FlowControlEvent::resumed();
    let queue = FlowControlQueue::builder(&flow)
        .maxsize(1)
        .clear_on_suspend(true)
        .build();
    queue.put("old").await.unwrap();
    let blocked = tokio::spawn({
        let queue = queue.clone();
        async move { queue.put("stale").await }
    });
    tokio::time::sleep(ms(10)).await;
    assert_eq!(flow.suspend(), 1);
    match within(blocked).await.unwrap() {
        Err(PutError::Cleared(item)) => assert_eq!(item, "stale"),
        other => panic!("expected Cleared, got {other:?}"),
    }
    // A producer arriving while suspended waits at the event: not cleared, goes on later.
    let later = tokio::spawn({
        let queue = queue.clone();
        async move { queue.put("fresh").await }
    });
    tokio::time::sleep(ms(10)).await;
    assert_eq!(flow.suspend(), 0);
    flow.resume();
    within(later).await.unwrap().unwrap();
    assert_eq!(within(queue.get()).await, "fresh");

    // The queue's own clear returns the items, oldest first.
    let q = FlowControlQueue::new(&flow);
    for i in 0..4 {
        q.put(i).await.unwrap();
    }
    assert_eq!(q.clear(), [0, 1, 2, 3]);
    let err = PutError::Cleared(5);
    assert_eq!(
        err.to_string(),
        "the queue was cleared while waiting for room"
    );
    assert_eq!(err.into_inner(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_throw_wakes_a_waiting_consumer() {
    let queue: ThrowableQueue<u32, String> = ThrowableQueue::new();
    let consumer = tokio::spawn({
        let queue = queue.clone();
        async move { queue.get().await }
    });
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(!consumer.is_finished());
    let at = tokio::time::Instant::now();
    queue.throw("boom".into());
    assert_eq!(within(consumer).await.unwrap(), Err("boom".to_string()));
    assert_eq!(at.elapsed(), Duration::ZERO);
    assert!(queue.is_empty(), "the error was taken once");
}

#[tokio::test(start_paused = true)]
async fn one_throw_wakes_one_of_two_consumers() {
    let queue: ThrowableQueue<u32, &str> = ThrowableQueue::new();
    let consumers: Vec<_> = (0..2)
        .map(|_| {
            let queue = queue.clone();
            tokio::spawn(async move { queue.get().await })
        })
        .collect();
    tokio::time::sleep(ms(10)).await;
    queue.throw("one");
    tokio::time::sleep(ms(10)).await;
    assert_eq!(consumers.iter().filter(|c| c.is_finished()).count(), 1);
    queue.put(5).await.unwrap();
    let mut outcomes = Vec::new();
    for c in consumers {
        outcomes.push(within(c).await.unwrap());
    }
    outcomes.sort();
    assert_eq!(outcomes, [Ok(5), Err("one")]);
}

#[tokio::test(start_paused = true)]
async fn errors_thrown_with_no_consumer_come_out_first_in_order() {
    let queue: ThrowableQueue<u32, &str> = ThrowableQueue::builder().maxsize(4).build();
    queue.put(1).await.unwrap();
    queue.throw("e1");
    queue.put(2).await.unwrap();
    queue.throw("e2");
    assert_eq!(queue.pending_errors(), 2);
    assert_eq!(queue.len(), 2);
    assert_eq!(within(queue.get()).await, Err("e1"));
    assert_eq!(queue.try_get(), Err("e2"));
    assert_eq!(within(queue.get()).await, Ok(1));
    assert_eq!(queue.try_get(), Ok(Some(2)));
    assert_eq!(queue.try_get(), Ok(None));
    // Clear drops pending errors as well.
    queue.throw("e3");
    queue.put(3).await.unwrap();
    assert_eq!(queue.clear(), [3]);
    assert!(queue.is_empty());
}

/// Producers, one consumer and a controller that suspends and resumes every millisecond:
/// every accepted item arrives once, in each producer's order.
#[tokio::test(start_paused = true)]
async fn no_item_is_lost_or_duplicated_through_pauses_and_resumes() {
    const PRODUCERS: u32 = 4;
    const EACH: u32 = 500;
    let flow = FlowControlEvent::resumed();
    let queue = FlowControlQueue::builder(&flow).maxsize(8).build();
    let done = Arc::new(AtomicBool::new(false));
    let controller = tokio::spawn({
        let (flow, done) = (flow.clone(), done.clone());
        async move {
            let mut toggles = 0;
            while !done.load(Ordering::SeqCst) && toggles < 100_000 {
                tokio::time::sleep(ms(1)).await;
                if flow.is_active() {
                    flow.suspend();
                } else {
                    flow.resume();
                }
                toggles += 1;
            }
            flow.resume();
            toggles
        }
    });
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let queue = queue.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    queue.put((p, i)).await.unwrap();
                }
            })
        })
        .collect();
    let consumer = tokio::spawn({
        let queue = queue.clone();
        async move {
            let mut got = Vec::new();
            for _ in 0..PRODUCERS * EACH {
                got.push(queue.get().await);
                // Slower than the producers: the queue fills, and the flow is toggled
                // hundreds of times meanwhile.
                tokio::time::sleep(Duration::from_micros(300)).await;
            }
            got
        }
    });
    for p in producers {
        within(p).await.unwrap();
    }
    let got = within(consumer).await.unwrap();
    done.store(true, Ordering::SeqCst);
    let toggles = controller.await.unwrap();
    assert!(toggles > 10, "the flow was toggled {toggles} times");
    let unique: HashSet<_> = got.iter().copied().collect();
    assert_eq!(unique.len(), got.len(), "no duplicates");
    for p in 0..PRODUCERS {
        let mine: Vec<u32> = got.iter().filter(|(q, _)| *q == p).map(|x| x.1).collect();
        assert_eq!(mine, (0..EACH).collect::<Vec<_>>(), "producer {p} in order");
    }
    assert!(queue.is_empty());
}

/// The same with a managed queue: each accepted item is either received or counted by a
/// clear, and each refused one came back to its producer.
#[tokio::test(start_paused = true)]
async fn with_clears_every_accepted_item_is_received_or_counted_as_cleared() {
    const PRODUCERS: u32 = 4;
    const EACH: u32 = 300;
    let flow = FlowControlEvent::resumed();
    let queue = FlowControlQueue::builder(&flow)
        .maxsize(4)
        .clear_on_suspend(true)
        .build();
    let cleared = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let controller = tokio::spawn({
        let (flow, cleared, done) = (flow.clone(), cleared.clone(), done.clone());
        async move {
            for _ in 0..100_000 {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                tokio::time::sleep(ms(3)).await;
                cleared.fetch_add(flow.suspend(), Ordering::SeqCst);
                tokio::time::sleep(ms(1)).await;
                flow.resume();
            }
            flow.resume();
        }
    });
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let (mut accepted, mut returned) = (0_usize, Vec::new());
                for i in 0..EACH {
                    match queue.put((p, i)).await {
                        Ok(()) => accepted += 1,
                        Err(e) => returned.push(e.into_inner()),
                    }
                }
                (accepted, returned)
            })
        })
        .collect();
    let consumer = tokio::spawn({
        let queue = queue.clone();
        async move {
            let mut got = Vec::new();
            // Ends once nothing has arrived for a (virtual) second: the producers are done.
            while let Ok(item) = tokio::time::timeout(Duration::from_secs(1), queue.get()).await {
                got.push(item);
                // Slower than the producers, so queues fill and clears find items.
                tokio::time::sleep(Duration::from_micros(500)).await;
            }
            got
        }
    });
    let (mut accepted, mut returned) = (0, Vec::new());
    for p in producers {
        let (a, r) = within(p).await.unwrap();
        accepted += a;
        returned.extend(r);
    }
    done.store(true, Ordering::SeqCst);
    controller.await.unwrap();
    let got = within(consumer).await.unwrap();
    let cleared = cleared.load(Ordering::SeqCst);
    assert!(cleared > 0, "some clears found items");
    assert!(
        !returned.is_empty(),
        "some producers were handed their items back"
    );
    assert_eq!(accepted + returned.len(), (PRODUCERS * EACH) as usize);
    assert_eq!(
        accepted,
        got.len() + cleared,
        "accepted = received + cleared"
    );
    let unique: HashSet<_> = got.iter().copied().collect();
    assert_eq!(unique.len(), got.len(), "no duplicates");
    assert!(
        returned.iter().all(|r| !unique.contains(r)),
        "a returned item was never queued"
    );
}

#[test]
fn queues_and_their_futures_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<FlowControlEvent>();
    send_sync::<FlowControlQueue<String>>();
    send_sync::<ThrowableQueue<String, std::io::Error>>();
    send_sync::<PutError<String>>();
    let flow = FlowControlEvent::resumed();
    let q: FlowControlQueue<String> = FlowControlQueue::new(&flow);
    send(&q.put(String::new()));
    send(&q.get());
    send(&flow.acquire());
    let t: ThrowableQueue<String, String> = ThrowableQueue::new();
    send(&t.get());
}
