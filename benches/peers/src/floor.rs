//! Raw flume (the floor): tokio tasks, each with its own bounded flume channel, no actor
//! runtime around them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, oneshot};

use crate::common::{Tally, check_fanout, check_ring, growth, rss_bytes};
use crate::{CAPACITY, TREE_BRANCH, TREE_DEPTH};

type CountMsg = Option<oneshot::Sender<u64>>;

/// A counting task: `None` counts, `Some(reply)` answers the count and resets it.
fn counter() -> flume::Sender<CountMsg> {
    let (tx, rx) = flume::bounded::<CountMsg>(CAPACITY);
    tokio::spawn(async move {
        let mut count = 0u64;
        while let Ok(msg) = rx.recv_async().await {
            match msg {
                None => count += 1,
                Some(reply) => {
                    let _ = reply.send(std::mem::take(&mut count));
                }
            }
        }
    });
    tx
}

async fn take(tx: &flume::Sender<CountMsg>) -> u64 {
    let (reply, counted) = oneshot::channel();
    tx.send_async(Some(reply)).await.expect("consumer");
    counted.await.expect("reply")
}

pub async fn tell(n: u64) -> Duration {
    let tx = counter();
    let start = Instant::now();
    for _ in 0..n {
        tx.send_async(None).await.expect("consumer");
    }
    assert_eq!(take(&tx).await, n);
    start.elapsed()
}

pub async fn ask(n: u64) -> Duration {
    let (tx, rx) = flume::bounded::<(u64, oneshot::Sender<u64>)>(CAPACITY);
    tokio::spawn(async move {
        while let Ok((x, reply)) = rx.recv_async().await {
            let _ = reply.send(x + 1);
        }
    });
    let start = Instant::now();
    for i in 0..n {
        let (reply, answer) = oneshot::channel();
        tx.send_async((i, reply)).await.expect("server");
        assert_eq!(answer.await.expect("reply"), i + 1);
    }
    start.elapsed()
}

pub async fn spawn_stop(k: usize) -> Duration {
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(k);
    for _ in 0..k {
        let (tx, rx) = flume::bounded::<bool>(CAPACITY);
        let task = tokio::spawn(async move {
            while let Ok(stop) = rx.recv_async().await {
                if stop {
                    break;
                }
            }
        });
        tasks.push((tx, task));
    }
    for (tx, task) in tasks {
        tx.send_async(true).await.expect("task");
        task.await.expect("task ended");
    }
    start.elapsed()
}

pub async fn restart(n: u32) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        let (tx, rx) = flume::bounded::<()>(CAPACITY);
        let task = tokio::spawn(async move {
            if rx.recv_async().await.is_ok() {
                panic!("poison");
            }
        });
        tx.send_async(()).await.expect("sent");
        assert!(task.await.is_err());
    }
    start.elapsed()
}

enum RingMsg {
    /// The token, with the number of deliveries still to make (this one included).
    Token(u32),
    /// End, answering how many times this task saw the token.
    Stop(oneshot::Sender<u64>),
}

/// `k` tasks in a ring, one token delivered `hops` times (the first delivery is the driver's).
pub async fn ring(k: usize, hops: u32) -> Duration {
    let done = Arc::new(Notify::new());
    let channels: Vec<_> = (0..k)
        .map(|_| flume::bounded::<RingMsg>(CAPACITY))
        .collect();
    let txs: Vec<_> = channels.iter().map(|(tx, _)| tx.clone()).collect();
    for (i, (_, rx)) in channels.into_iter().enumerate() {
        let next = txs[(i + 1) % k].clone();
        let done = done.clone();
        tokio::spawn(async move {
            let mut seen = 0u64;
            while let Ok(msg) = rx.recv_async().await {
                match msg {
                    RingMsg::Token(left) => {
                        seen += 1;
                        if left == 1 {
                            done.notify_one();
                        } else {
                            next.send_async(RingMsg::Token(left - 1))
                                .await
                                .expect("next in ring");
                        }
                    }
                    RingMsg::Stop(reply) => {
                        let _ = reply.send(seen);
                        break;
                    }
                }
            }
        });
    }
    let start = Instant::now();
    txs[0].send_async(RingMsg::Token(hops)).await.expect("ring");
    done.notified().await;
    let took = start.elapsed();
    let mut counts = Vec::with_capacity(k);
    for tx in &txs {
        let (reply, seen) = oneshot::channel();
        tx.send_async(RingMsg::Stop(reply)).await.expect("ring");
        counts.push(seen.await.expect("count"));
    }
    check_ring("raw flume ring", &counts);
    took
}

/// `p` tasks each send `each` messages into one bounded channel; then one ask of the count.
pub async fn producers(p: usize, each: u64) -> Duration {
    let tx = counter();
    let start = Instant::now();
    let tasks: Vec<_> = (0..p)
        .map(|_| {
            let tx = tx.clone();
            tokio::spawn(async move {
                for _ in 0..each {
                    tx.send_async(None).await.expect("consumer");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("producer");
    }
    assert_eq!(take(&tx).await, p as u64 * each);
    start.elapsed()
}

/// `n` messages round-robin over `k` counting tasks, then each asked its count.
pub async fn fanout(k: usize, n: u64) -> Duration {
    let txs: Vec<_> = (0..k).map(|_| counter()).collect();
    let start = Instant::now();
    for i in 0..n {
        txs[(i % k as u64) as usize]
            .send_async(None)
            .await
            .expect("consumer");
    }
    let mut counts = Vec::with_capacity(k);
    for tx in &txs {
        counts.push(take(tx).await);
    }
    let took = start.elapsed();
    check_fanout("raw flume fanout", &counts);
    took
}

type Node = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One tree node: spawns its children and waits for them to report started, reports its own
/// start, waits for the stop, passes it to its children and waits for them to end.
fn tree_node(
    depth: u32,
    stop: flume::Receiver<()>,
    up: oneshot::Sender<()>,
    tally: Arc<Tally>,
) -> Node {
    Box::pin(async move {
        let mut kids = Vec::new();
        if depth < TREE_DEPTH {
            let mut ups = Vec::with_capacity(TREE_BRANCH);
            for _ in 0..TREE_BRANCH {
                let (tx, rx) = flume::bounded(CAPACITY);
                let (started, kid_up) = oneshot::channel();
                kids.push((
                    tx,
                    tokio::spawn(tree_node(depth + 1, rx, started, tally.clone())),
                ));
                ups.push(kid_up);
            }
            for kid_up in ups {
                kid_up.await.expect("child started");
            }
        }
        tally.start();
        let _ = up.send(());
        let _ = stop.recv_async().await;
        for (tx, _) in &kids {
            tx.send_async(()).await.expect("child");
        }
        for (_, task) in kids {
            task.await.expect("child ended");
        }
        tally.end();
    })
}

pub async fn tree(nodes: usize) -> Duration {
    let tally = Arc::new(Tally::new(nodes));
    let start = Instant::now();
    let (stop, rx) = flume::bounded(CAPACITY);
    let (started, up) = oneshot::channel();
    let root = tokio::spawn(tree_node(0, rx, started, tally.clone()));
    up.await.expect("root started");
    tally.check("raw flume tree, started", false);
    stop.send_async(()).await.expect("root");
    root.await.expect("root ended");
    let took = start.elapsed();
    tally.check("raw flume tree", true);
    took
}

/// RSS growth in bytes for `k` tasks, each parked on its own bounded channel (the senders kept).
pub async fn idle(k: usize) -> f64 {
    let tally = Arc::new(Tally::new(k));
    let mut held = Vec::with_capacity(k);
    let before = rss_bytes();
    for _ in 0..k {
        let (tx, rx) = flume::bounded::<()>(CAPACITY);
        let tally = tally.clone();
        tokio::spawn(async move {
            tally.start();
            let _ = rx.recv_async().await;
        });
        held.push(tx);
    }
    tally.wait_started().await;
    let after = rss_bytes();
    tally.check("raw flume idle", false);
    assert_eq!(held.len(), k);
    growth(before, after)
}
