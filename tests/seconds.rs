//! `modo::Seconds`: every form Mode accepts for a duration, the typed error naming a bad
//! input, its conversion into `modo::Error`, and its use where a duration is expected.

use std::pin::pin;
use std::task::{Poll, Waker};
use std::time::Duration;

use modo::prelude::*;
use modo::{Seconds, SecondsError};
use tokio::time::Instant;

fn parse(s: &str) -> Seconds {
    s.parse::<Seconds>()
        .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

// ----- accepted forms --------------------------------------------------------------------------

#[test]
fn durations_and_whole_numbers_of_seconds() {
    let d = Duration::from_millis(1500);
    assert_eq!(Seconds::from(d).as_duration(), d);
    assert_eq!(Duration::from(Seconds::from(d)), d);
    assert_eq!(Seconds::from(7_u64).as_duration(), Duration::from_secs(7));
    assert_eq!(Seconds::from(7_u32).as_duration(), Duration::from_secs(7));
    assert_eq!(Seconds::from(0_u64), Seconds::default());
    assert_eq!(Seconds::from(3_u64).as_secs_f64(), 3.0);
}

#[test]
fn floats_of_seconds() {
    assert_eq!(
        Seconds::try_from(1.5_f64).unwrap().as_duration(),
        Duration::from_millis(1500)
    );
    assert_eq!(
        Seconds::try_from(0.25_f32).unwrap().as_duration(),
        Duration::from_millis(250)
    );
    assert_eq!(
        Seconds::try_from(0.0_f64).unwrap().as_duration(),
        Duration::ZERO
    );
    assert_eq!(Seconds::from_secs_f64(2.0).unwrap(), Seconds::from(2_u64));
}

#[test]
fn number_strings() {
    assert_eq!(parse("1.203").as_duration(), Duration::from_millis(1203));
    assert_eq!(parse("2").as_duration(), Duration::from_secs(2));
    assert_eq!(parse("0").as_duration(), Duration::ZERO);
    assert_eq!(parse(" 2.5 ").as_duration(), Duration::from_millis(2500));
    assert_eq!(parse("1e3").as_duration(), Duration::from_secs(1000));
    assert_eq!(
        Seconds::try_from("1.203").unwrap(),
        Seconds::try_from(String::from("1.203")).unwrap()
    );
}

/// Mode's rate strings: `"N/unit"` is N divided by the unit's length in seconds.
#[test]
fn rate_strings_mean_n_divided_by_the_units_seconds() {
    assert_eq!(parse("10/s").as_duration(), Duration::from_secs(10));
    assert_eq!(parse("10/s").as_secs_f64(), 10.0);
    assert_eq!(
        parse("2/m").as_duration(),
        Duration::from_secs_f64(2.0 / 60.0)
    );
    assert_eq!(
        parse("10.3/h").as_duration(),
        Duration::from_secs_f64(10.3 / 3600.0)
    );
    assert_eq!(
        parse("100/d").as_duration(),
        Duration::from_secs_f64(100.0 / 86400.0)
    );
    assert_eq!(
        parse("60/m").as_duration(),
        Duration::from_secs(1),
        "60 per minute"
    );
    assert_eq!(parse("3600/h"), parse("1"));
    assert_eq!(
        Seconds::try_from(String::from("2/m")).unwrap(),
        parse("2/m")
    );
}

// ----- rejected forms --------------------------------------------------------------------------

/// The error for `input`, checking that it names the input in its fields and its message.
fn rejected(input: &str) -> SecondsError {
    let err = input.parse::<Seconds>().unwrap_err();
    assert_eq!(err.input(), input);
    assert!(
        err.to_string().contains(&format!("{input:?}")),
        "{input:?}: {err}"
    );
    assert_eq!(Seconds::try_from(input).unwrap_err(), err);
    assert_eq!(Seconds::try_from(input.to_string()).unwrap_err(), err);
    err
}

#[test]
fn malformed_strings_are_refused_naming_the_input() {
    for (input, reason) in [
        ("", "empty number"),
        ("   ", "empty number"),
        ("/s", "empty number"),
        ("-1", "negative"),
        ("-2.5/s", "negative"),
        ("NaN", "not a number"),
        ("nan", "not a number"),
        ("inf", "not a number"),
        ("-inf", "not a number"),
        ("abc", "not a number"),
        ("1.2.3", "not a number"),
        ("1s", "not a number"),
        ("1e400", "too large"),
        ("10/fortnight", "unknown rate unit (use s, m, h or d)"),
        ("10/", "unknown rate unit (use s, m, h or d)"),
        ("10/S", "unknown rate unit (use s, m, h or d)"),
        ("5/s/s", "unknown rate unit (use s, m, h or d)"),
    ] {
        assert_eq!(rejected(input).reason(), reason, "{input:?}");
    }
}

#[test]
fn bad_floats_are_refused() {
    let err = Seconds::try_from(-1.0_f64).unwrap_err();
    assert_eq!((err.input(), err.reason()), ("-1", "negative"));
    let err = Seconds::try_from(f64::NAN).unwrap_err();
    assert_eq!((err.input(), err.reason()), ("NaN", "not a number"));
    let err = Seconds::try_from(f64::INFINITY).unwrap_err();
    assert_eq!((err.input(), err.reason()), ("inf", "too large"));
    let err = Seconds::try_from(f64::NEG_INFINITY).unwrap_err();
    assert_eq!((err.input(), err.reason()), ("-inf", "negative"));
    let err = Seconds::try_from(-0.5_f32).unwrap_err();
    assert_eq!((err.input(), err.reason()), ("-0.5", "negative"));
    assert!(Seconds::try_from(f32::NAN).is_err());
}

#[test]
fn a_seconds_error_is_its_own_type_and_works_with_the_question_mark() {
    fn interval(s: &str) -> Result<Duration, modo::SecondsError> {
        let secs: Seconds = s.parse()?;
        Ok(secs.into())
    }
    assert_eq!(
        interval("2/m").unwrap(),
        Duration::from_secs_f64(2.0 / 60.0)
    );
    let err = interval("ten").unwrap_err();
    assert_eq!(err.input(), "ten");
    assert_eq!(err.reason(), "not a number");
    assert_eq!(err.to_string(), r#"invalid duration "ten": not a number"#);
    // Any error box takes it too.
    fn boxed(s: &str) -> Result<Seconds, modo::BoxError> {
        Ok(s.parse::<Seconds>()?)
    }
    assert!(boxed("1.5").is_ok());
    assert_eq!(
        boxed("ten").unwrap_err().to_string(),
        r#"invalid duration "ten": not a number"#
    );
}

// ----- where a duration is expected ---------------------------------------------------------

/// Sleeps as told, with the duration given as a `Seconds`.
struct Sleeper;

impl Service for Sleeper {}

struct NapFor(Seconds);

impl Handler<NapFor> for Sleeper {
    type Reply = bool;
    async fn handle(&mut self, msg: NapFor, ctx: &mut Context<Self>) -> bool {
        // `ctx.sleep(msg.0).await` is what this should be; the context's own sleep future is
        // not `Send` yet (see tests/waits.rs), so the stop signal's, which takes the same
        // argument, is awaited instead. `ctx.sleep` itself is exercised below.
        ctx.stop_signal().sleep(msg.0).await
    }
}

/// `ctx.sleep` takes a `Seconds`: polled once (not awaited) while running and while stopping.
struct PollsSleep {
    polls: std::sync::Arc<std::sync::Mutex<Vec<Poll<bool>>>>,
}

impl PollsSleep {
    fn poll_sleep(&self, ctx: &Context<Self>) {
        let mut sleep = pin!(ctx.sleep(parse("1.5")));
        let poll = sleep
            .as_mut()
            .poll(&mut std::task::Context::from_waker(Waker::noop()));
        self.polls.lock().unwrap().push(poll);
    }
}

impl Service for PollsSleep {
    async fn on_started(&mut self, ctx: &mut Context<Self>) -> HookResult {
        self.poll_sleep(ctx);
        Ok(())
    }

    async fn on_stop(&mut self, ctx: &mut Context<Self>) -> HookResult {
        self.poll_sleep(ctx);
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn sleeps_take_a_seconds() {
    let system = System::new();
    let s = system.spawn(Sleeper).await.unwrap();
    let start = Instant::now();
    assert!(s.ask(NapFor(parse("1.5"))).await.unwrap());
    assert_eq!(start.elapsed(), Duration::from_millis(1500));
    assert!(s.ask(NapFor(parse("2/s"))).await.unwrap());
    assert_eq!(start.elapsed(), Duration::from_millis(3500));
    assert!(s.ask(NapFor(Seconds::from(1_u64))).await.unwrap());
    assert_eq!(start.elapsed(), Duration::from_millis(4500));

    let polls = std::sync::Arc::default();
    let p = system
        .spawn(PollsSleep {
            polls: std::sync::Arc::clone(&polls),
        })
        .await
        .unwrap();
    p.stop().await.unwrap();
    assert_eq!(*polls.lock().unwrap(), [Poll::Pending, Poll::Ready(false)]);
    system.shutdown().await.unwrap();
}

// ----- randomized round trip ---------------------------------------------------------------------

/// SplitMix64: a small seeded generator, enough to vary inputs reproducibly.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A non-negative finite float: any bit pattern half the time (every magnitude, from
    /// subnormal to huge), a human-sized decimal (`1234 / 10^k`) the other half.
    fn seconds(&mut self) -> f64 {
        if self.next() & 1 == 0 {
            loop {
                let x = f64::from_bits(self.next() & !(1 << 63));
                if x.is_finite() {
                    return x;
                }
            }
        }
        let mantissa = self.below(1_000_000) as f64;
        mantissa / 10f64.powi(self.below(10) as i32)
    }
}

fn seed() -> u64 {
    let seed = match std::env::var("MODO_SEED") {
        Ok(s) => s.parse().expect("MODO_SEED is a u64"),
        Err(_) => 0x05EC_04D5,
    };
    println!("seed: {seed} (set MODO_SEED to replay)");
    seed
}

/// What `Duration::from_secs_f64` makes of `x`, or `None` when it does not fit.
fn expected(x: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(x).ok()
}

#[test]
fn random_floats_written_out_parse_to_the_same_duration() {
    let seed = seed();
    let mut rng = SplitMix(seed);
    for i in 0..2000 {
        let x = rng.seconds();
        let text = format!("{x}");
        let parsed = text.parse::<Seconds>();
        let as_float = Seconds::try_from(x);
        match expected(x) {
            Some(d) => {
                assert_eq!(
                    parsed.as_ref().map(|s| s.as_duration()),
                    Ok(d),
                    "seed {seed}, case {i}: {text:?}"
                );
                assert_eq!(
                    as_float.map(|s| s.as_duration()),
                    Ok(d),
                    "seed {seed}, case {i}: {x:?}"
                );
            }
            None => {
                let err = parsed.expect_err(&text);
                assert_eq!(
                    (err.input(), err.reason()),
                    (text.as_str(), "too large"),
                    "seed {seed}, case {i}"
                );
                assert_eq!(as_float.unwrap_err().reason(), "too large");
            }
        }
    }
}

#[test]
fn random_rates_parse_to_n_divided_by_the_unit() {
    let seed = seed();
    let mut rng = SplitMix(seed);
    for i in 0..2000 {
        let n = rng.below(1_000_000) as f64 / 10f64.powi(rng.below(4) as i32);
        let (unit, per) =
            [("s", 1.0), ("m", 60.0), ("h", 3600.0), ("d", 86400.0)][rng.below(4) as usize];
        let text = format!("{n}/{unit}");
        assert_eq!(
            parse(&text).as_duration(),
            Duration::from_secs_f64(n / per),
            "seed {seed}, case {i}: {text:?}"
        );
    }
}
