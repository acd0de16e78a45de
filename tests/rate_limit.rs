//! Rate limiting: a token bucket from Mode's rate strings, its burst, refill, the calls that
//! never wait, waiters served in order and given back when dropped, a service's limiter woken
//! by the stop, and bad rates refused with a typed error. All under paused time.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::ms;
use futures::FutureExt;
use modo::prelude::*;
use modo::time::{Rate, RateError, RateLimiter, TokenBucket};
use tokio::time::Instant;

fn bucket(rate: &str, capacity: u32) -> TokenBucket {
    TokenBucket::with_capacity(rate.parse().unwrap(), capacity).unwrap()
}

/// Takes tokens with `acquire` for `window`, returning when each was taken (from `start`).
async fn acquire_for(bucket: &TokenBucket, window: Duration) -> Vec<Duration> {
    let start = Instant::now();
    let mut taken = Vec::new();
    // Bounded: a bucket can never give more than capacity + window / interval.
    for _ in 0..10_000 {
        bucket.acquire().await;
        let at = start.elapsed();
        if at >= window {
            break;
        }
        taken.push(at);
    }
    taken
}

#[tokio::test(start_paused = true)]
async fn capacity_one_spaces_tokens_evenly_n_per_interval() {
    let b: TokenBucket = "10/s".parse().unwrap();
    assert_eq!(b.capacity(), 1);
    let taken = acquire_for(&b, Duration::from_secs(1)).await;
    let expected: Vec<Duration> = (0..10).map(|i| ms(100 * i)).collect();
    assert_eq!(taken, expected);
}

#[tokio::test(start_paused = true)]
async fn other_units_work_the_same_way() {
    // 10 per minute: one every 6 s.
    let b: TokenBucket = "10/m".parse().unwrap();
    let taken = acquire_for(&b, Duration::from_secs(60)).await;
    let expected: Vec<Duration> = (0..10).map(|i| Duration::from_secs(6 * i)).collect();
    assert_eq!(taken, expected);
    // Built from a Duration.
    let b = TokenBucket::new(Rate::every(ms(250)).unwrap());
    let taken = acquire_for(&b, Duration::from_secs(1)).await;
    assert_eq!(taken, [ms(0), ms(250), ms(500), ms(750)]);
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_capacity_then_the_rate() {
    let b = bucket("10/s", 5);
    let taken = acquire_for(&b, Duration::from_secs(1)).await;
    // Five at once, then one every 100 ms from 100 ms on.
    let mut expected = vec![ms(0); 5];
    expected.extend((1..10).map(|i| ms(100 * i)));
    assert_eq!(taken, expected);
}

#[tokio::test(start_paused = true)]
async fn refill_is_gradual_and_stops_at_capacity() {
    let b = bucket("10/s", 3);
    assert_eq!(b.tokens(), 3.0);
    for _ in 0..3 {
        assert!(b.try_acquire());
    }
    assert_eq!(b.tokens(), 0.0);
    tokio::time::advance(ms(150)).await;
    assert!((b.tokens() - 1.5).abs() < 1e-9, "{}", b.tokens());
    assert_eq!(b.expected_time(1), Some(Duration::ZERO));
    assert_eq!(b.expected_time(2), Some(ms(50)));
    assert_eq!(b.expected_time(3), Some(ms(150)));
    assert_eq!(b.expected_time(4), None, "more than the capacity: never");
    // A long idle time fills it to the capacity, not beyond.
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(b.tokens(), 3.0);
    assert!(b.pour(3));
    assert!(!b.pour(1));
}

#[tokio::test(start_paused = true)]
async fn try_acquire_and_pour_never_wait() {
    let b = bucket("1/h", 2);
    let start = Instant::now();
    assert!(b.try_acquire());
    assert!(b.pour(1));
    for _ in 0..1_000 {
        assert!(!b.try_acquire());
        assert!(!b.pour(1));
    }
    assert!(!b.pour(3), "more than the capacity is never poured");
    assert!(b.pour(0));
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_waiters_token_cannot_be_taken_by_try_acquire_or_pour() {
    let b = bucket("10/s", 1);
    assert!(b.try_acquire());
    let mut waiter = Box::pin(b.acquire());
    assert!(futures::poll!(waiter.as_mut()).is_pending());
    assert_eq!(b.tokens(), 0.0);
    // The next token is the waiter's: due at 100 ms.
    assert_eq!(b.expected_time(1), Some(ms(200)));
    tokio::time::advance(ms(100)).await;
    assert!(!b.try_acquire());
    assert!(!b.pour(1));
    assert!(futures::poll!(waiter.as_mut()).is_ready());
    tokio::time::advance(ms(100)).await;
    assert!(b.try_acquire());
}

#[tokio::test(start_paused = true)]
async fn concurrent_acquirers_are_served_in_the_order_they_came() {
    let b = bucket("10/s", 1);
    let start = Instant::now();
    let served = Arc::new(Mutex::new(Vec::new()));
    // join_all polls them first in this order.
    let waiters = (0..5).map(|i| {
        let (b, served) = (b.clone(), served.clone());
        async move {
            b.acquire().await;
            served.lock().unwrap().push((i, start.elapsed()));
        }
    });
    futures::future::join_all(waiters).await;
    let served = served.lock().unwrap().clone();
    let expected: Vec<(i32, Duration)> = (0..5).map(|i| (i, ms(100 * i as u64))).collect();
    assert_eq!(served, expected);
}

#[tokio::test(start_paused = true)]
async fn many_tasks_sharing_a_bucket_never_exceed_the_rate() {
    let b = bucket("10/s", 5);
    let start = Instant::now();
    let window = Duration::from_secs(2);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let b = b.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            for _ in 0..1_000 {
                b.acquire().await;
                if start.elapsed() >= window {
                    break;
                }
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    // The burst of 5 at 0, then one at 100, 200, ..., 1900 ms.
    assert_eq!(total, 5 + 19);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_acquire_gives_its_token_back() {
    let b = bucket("10/s", 1);
    assert!(b.try_acquire());
    let mut waiter = Box::pin(b.acquire());
    assert!(futures::poll!(waiter.as_mut()).is_pending());
    drop(waiter);
    // Its token (due at 100 ms) is free again.
    assert_eq!(b.expected_time(1), Some(ms(100)));
    tokio::time::advance(ms(100)).await;
    assert!(b.try_acquire());
    // And a timed-out acquire as well.
    assert!(
        tokio::time::timeout(ms(50), b.acquire()).await.is_err(),
        "the next token is 100 ms away"
    );
    tokio::time::advance(ms(50)).await;
    assert!(b.try_acquire(), "the timed-out acquire took nothing");
}

#[tokio::test(start_paused = true)]
async fn acquire_n_takes_n_at_once_and_refuses_more_than_the_capacity() {
    let b = bucket("10/s", 4);
    let start = Instant::now();
    b.acquire_n(4).await.unwrap();
    assert_eq!(start.elapsed(), Duration::ZERO);
    b.acquire_n(3).await.unwrap();
    assert_eq!(start.elapsed(), ms(300));
    let err = b.acquire_n(5).await.unwrap_err();
    assert_eq!(
        err,
        RateError::OverCapacity {
            wanted: 5,
            capacity: 4
        }
    );
    assert!(err.to_string().contains("at most 4"));
    assert_eq!(start.elapsed(), ms(300), "refused at once");
}

/// A service that makes a rate limiter (one token a minute) in `on_start` and hands out
/// clones of it.
#[derive(Default)]
struct Poller {
    limiter: Option<RateLimiter>,
}

impl Service for Poller {
    async fn on_start(&mut self, ctx: &mut Context<Self>) -> HookResult {
        self.limiter = Some(ctx.rate_limit(Rate::new(1, Duration::from_secs(60))?));
        Ok(())
    }
}

struct GetLimiter;

impl Handler<GetLimiter> for Poller {
    type Reply = RateLimiter;
    async fn handle(&mut self, _: GetLimiter, _: &mut Context<Self>) -> RateLimiter {
        self.limiter.clone().expect("made in on_start")
    }
}

#[tokio::test(start_paused = true)]
async fn a_services_limiter_is_woken_by_the_stop() {
    let system = System::new();
    let poller = system.spawn(Poller::default()).await.unwrap();
    let limiter = poller.ask(GetLimiter).await.unwrap();
    assert_eq!(limiter.acquire().await, Ok(()));
    let start = Instant::now();
    let waiting = {
        let limiter = limiter.clone();
        tokio::spawn(async move { (limiter.acquire().await, start.elapsed()) })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished(), "the next token is a minute away");
    poller.stop().await.unwrap();
    let (result, after) = waiting.await.unwrap();
    assert_eq!(result, Err(WaitError::Stopped));
    assert_eq!(
        after,
        Duration::from_secs(1),
        "woken by the stop, not by a token"
    );
    // It took nothing: the token it had reserved is back, due a minute after the first.
    assert_eq!(
        limiter.bucket().expected_time(1),
        Some(Duration::from_secs(59))
    );
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_stopped_limiter_takes_no_token() {
    let system = System::new();
    let poller = system.spawn(Poller::default()).await.unwrap();
    let limiter = poller.ask(GetLimiter).await.unwrap();
    poller.stop().await.unwrap();
    assert_eq!(limiter.bucket().tokens(), 1.0);
    assert_eq!(limiter.acquire().await, Err(WaitError::Stopped));
    assert_eq!(limiter.bucket().tokens(), 1.0, "nothing taken");
    assert!(limiter.try_acquire(), "try_acquire ignores the stop signal");
    system.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn acquire_until_stopped_ends_when_the_stop_comes() {
    struct Idle;
    impl Service for Idle {}
    struct Signal;
    impl Handler<Signal> for Idle {
        type Reply = StopSignal;
        async fn handle(&mut self, _: Signal, ctx: &mut Context<Self>) -> StopSignal {
            ctx.stop_signal()
        }
    }
    let system = System::new();
    let idle = system.spawn(Idle).await.unwrap();
    let stop = idle.ask(Signal).await.unwrap();
    let b = bucket("1/h", 1);
    assert_eq!(b.acquire_until_stopped(&stop).await, Ok(()));
    let mut waiting = Box::pin(b.acquire_until_stopped(&stop));
    assert!(futures::poll!(waiting.as_mut()).is_pending());
    idle.stop().await.unwrap();
    assert_eq!(waiting.await, Err(WaitError::Stopped));
    // Its reserved token went back: one hour after the first, one is there.
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert!(b.try_acquire());
    system.shutdown().await.unwrap();
}

#[test]
fn bad_rates_are_typed_errors_naming_the_input() {
    for bad in [
        "", "abc", "10/x", "10/", "/s", "0/s", "0", "-1/s", "inf/s", "NaN", "3e9/s", "5/s/s",
    ] {
        let err = bad.parse::<Rate>().unwrap_err();
        assert!(
            matches!(err, RateError::Number { .. } | RateError::Invalid { .. }),
            "{bad:?}: {err:?}"
        );
        assert!(
            err.to_string().contains(&format!("{bad:?}")),
            "{bad:?}: {err}"
        );
        assert!(bad.parse::<TokenBucket>().is_err());
    }
    let number = "abc/s".parse::<Rate>().unwrap_err();
    assert!(
        std::error::Error::source(&number).is_some(),
        "chains the cause"
    );
    assert!(Rate::new(0, Duration::from_secs(1)).is_err());
    assert!(Rate::new(1, Duration::ZERO).is_err());
    assert!(Rate::every(Duration::ZERO).is_err());
    assert!(Rate::per_second(f64::NAN).is_err());
    assert!(Rate::per_second(-2.0).is_err());
    let rate: Rate = "1/s".parse().unwrap();
    assert_eq!(
        TokenBucket::with_capacity(rate, 0).unwrap_err(),
        RateError::ZeroCapacity
    );
    // A bucket that would take centuries to fill.
    let slow: Rate = "1/d".parse().unwrap();
    assert!(TokenBucket::with_capacity(slow, 100_000).is_err());
}

#[test]
fn rates_from_every_form_agree() {
    let from_str: Rate = "100/s".parse().unwrap();
    assert_eq!(from_str, Rate::new(100, Duration::from_secs(1)).unwrap());
    assert_eq!(from_str, Rate::per_second(100.0).unwrap());
    assert_eq!(from_str.interval(), ms(10));
    // What Mode's want_seconds makes of a rate string, read back as a rate.
    let seconds: Seconds = "10/m".parse().unwrap();
    let via_seconds = Rate::try_from(seconds).unwrap();
    let direct: Rate = "10/m".parse().unwrap();
    assert!((via_seconds.per_sec() - direct.per_sec()).abs() < 1e-9);
    assert_eq!("0.5/s".parse::<Rate>().unwrap().interval(), ms(2000));
}

#[tokio::test(start_paused = true)]
async fn an_acquire_that_finds_a_token_does_not_sleep() {
    let b = bucket("1/s", 2);
    // Completes on its first poll.
    assert!(b.acquire().now_or_never().is_some());
    assert!(b.acquire().now_or_never().is_some());
    assert!(b.acquire().now_or_never().is_none());
}

#[test]
fn buckets_and_limiters_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}
    send_sync::<TokenBucket>();
    send_sync::<RateLimiter>();
    send_sync::<Rate>();
    send_sync::<RateError>();
    let b: TokenBucket = "1/s".parse().unwrap();
    send(&b.acquire());
    send(&b.acquire_n(1));
}
