//! Single flight (Mode's `stampede`): concurrent callers share one execution per key, an
//! error reaches every caller and the next call runs again, a caller that leaves cancels
//! nobody else, and when every caller leaves the execution is dropped.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{Journal, Noted};
use futures::FutureExt;
use modo::stampede::{Stampede, StampedeError, StampedeMap};
use tokio::time::Instant;

/// A computation that counts its executions, takes a second, and returns its number.
fn counted(
    runs: &Arc<AtomicU32>,
) -> impl FnOnce() -> futures::future::BoxFuture<'static, Result<u32, String>> + Send + 'static {
    let runs = runs.clone();
    move || {
        async move {
            let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(n)
        }
        .boxed()
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_share_one_execution() {
    let runs = Arc::new(AtomicU32::new(0));
    let s: Stampede<u32, String> = Stampede::new();
    let start = Instant::now();
    let outcomes = futures::future::join_all((0..10).map(|_| s.run(counted(&runs)))).await;
    assert_eq!(outcomes, vec![Ok(1); 10]);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert!(!s.is_running());
}

#[tokio::test(start_paused = true)]
async fn callers_in_other_tasks_share_it_too() {
    let runs = Arc::new(AtomicU32::new(0));
    let s: Arc<Stampede<u32, String>> = Arc::new(Stampede::new());
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (s, runs) = (s.clone(), runs.clone());
            tokio::spawn(async move { s.run(counted(&runs)).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), Ok(1));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn nothing_is_cached_a_later_call_runs_again() {
    let runs = Arc::new(AtomicU32::new(0));
    let s: Stampede<u32, String> = Stampede::new();
    assert_eq!(s.run(counted(&runs)).await, Ok(1));
    assert_eq!(s.run(counted(&runs)).await, Ok(2));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn keys_run_independently_and_share_within_a_key() {
    let runs = Arc::new(AtomicU32::new(0));
    let map: StampedeMap<&str, u32, String> = StampedeMap::new();
    let start = Instant::now();
    let calls = ["a", "b", "a", "b", "a"].map(|k| map.run(k, counted(&runs)));
    let outcomes = futures::future::join_all(calls).await;
    assert_eq!(runs.load(Ordering::SeqCst), 2, "one execution per key");
    assert_eq!(outcomes[0], outcomes[2]);
    assert_eq!(outcomes[0], outcomes[4]);
    assert_eq!(outcomes[1], outcomes[3]);
    assert_ne!(outcomes[0], outcomes[1]);
    assert_eq!(start.elapsed(), Duration::from_secs(1), "in parallel");
    assert_eq!(map.in_flight(), 0);
    assert!(!map.is_running(&"a"));
}

#[tokio::test(start_paused = true)]
async fn an_error_reaches_every_caller_and_the_next_call_runs_again() {
    let runs = Arc::new(AtomicU32::new(0));
    let s: Stampede<u32, String> = Stampede::new();
    let failing = |runs: &Arc<AtomicU32>| {
        let runs = runs.clone();
        move || async move {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(100)).await;
            Err::<u32, _>("connection refused".to_string())
        }
    };
    let outcomes = futures::future::join_all((0..5).map(|_| s.run(failing(&runs)))).await;
    let refused = Err(StampedeError::Failed("connection refused".to_string()));
    assert_eq!(outcomes, vec![refused; 5]);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // The next call runs it again, and can succeed.
    assert_eq!(s.run(counted(&runs)).await, Ok(2));
    assert_eq!(
        StampedeError::Failed("x".to_string()).to_string(),
        "the shared computation failed: x"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panic_is_an_error_for_every_caller() {
    let s: Stampede<u32, String> = Stampede::new();
    let (a, b) = tokio::join!(
        s.run(|| async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            panic!("handshake exploded")
        }),
        s.run(|| async { Ok(0) }),
    );
    let expected = Err(StampedeError::Panicked("handshake exploded".into()));
    assert_eq!(a, expected);
    assert_eq!(b, expected);
    // A panic while building the future is caught the same way.
    let built: Result<u32, _> = s
        .run(|| -> futures::future::Ready<Result<u32, String>> { panic!("no future") })
        .await;
    assert_eq!(built, Err(StampedeError::Panicked("no future".into())));
    assert_eq!(s.run(|| async { Ok(7) }).await, Ok(7), "usable afterwards");
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_leaves_does_not_cancel_the_others() {
    let runs = Arc::new(AtomicU32::new(0));
    let s: Stampede<u32, String> = Stampede::new();
    // The first caller starts the execution and is the first to drive it.
    let mut first = Box::pin(s.run(counted(&runs)));
    assert!(futures::poll!(first.as_mut()).is_pending());
    let second = s.run(counted(&runs));
    let leave_early = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        drop(first);
    };
    let (outcome, ()) = tokio::join!(second, leave_early);
    assert_eq!(outcome, Ok(1));
    assert_eq!(runs.load(Ordering::SeqCst), 1, "not restarted");
}

#[tokio::test(start_paused = true)]
async fn when_every_caller_leaves_the_execution_is_dropped_and_the_next_call_starts_afresh() {
    let journal = Journal::new();
    let runs = Arc::new(AtomicU32::new(0));
    let map: StampedeMap<u8, u32, String> = StampedeMap::new();
    let slow = |journal: &Journal, runs: &Arc<AtomicU32>| {
        let (journal, runs) = (journal.clone(), runs.clone());
        move || async move {
            let _noted = Noted::new("execution", &journal);
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok::<u32, String>(0)
        }
    };
    // Two callers, both given up on after a second.
    let both = async {
        tokio::join!(
            map.run(1, slow(&journal, &runs)),
            map.run(1, || async { Ok(9) })
        )
    };
    let gave_up = tokio::time::timeout(Duration::from_secs(1), both)
        .await
        .is_err();
    assert!(gave_up);
    assert_eq!(
        journal.take(),
        ["drop:execution"],
        "dropped when the last caller left"
    );
    assert_eq!(map.in_flight(), 0);
    assert!(!map.is_running(&1));
    // A new call runs it again from the start.
    let fresh = map.run(1, counted(&runs)).await;
    assert_eq!(fresh, Ok(2));
}

#[tokio::test(start_paused = true)]
async fn a_call_after_the_execution_finished_runs_again_even_if_others_have_not_collected() {
    let runs = Arc::new(AtomicU32::new(0));
    let s: Stampede<u32, String> = Stampede::new();
    let mut a = Box::pin(s.run(counted(&runs)));
    let mut b = Box::pin(s.run(counted(&runs)));
    assert!(futures::poll!(a.as_mut()).is_pending());
    assert!(futures::poll!(b.as_mut()).is_pending());
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(futures::poll!(a.as_mut()), std::task::Poll::Ready(Ok(1)));
    // `b` has not been polled since the execution finished; a new caller does not get its
    // stale result.
    assert!(!s.is_running());
    let c = s.run(counted(&runs));
    let (b, c) = tokio::join!(b, c);
    assert_eq!(b, Ok(1));
    assert_eq!(c, Ok(2));
}

#[test]
fn stampedes_are_send_and_sync_and_their_calls_are_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<Stampede<u32, String>>();
    send_sync::<StampedeMap<String, Vec<u8>, std::io::ErrorKind>>();
    send_sync::<StampedeError<String>>();
    let s: Stampede<u32, String> = Stampede::new();
    let call = s.run(|| async { Ok(1) });
    send(&call);
}
