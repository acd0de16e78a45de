//! Property tests for `modo::Seconds` parsing: number strings and `"N/unit"` rate strings
//! round-trip to the `Duration` the float arithmetic gives, and bad input (letters other than
//! an exponent's `e`, negative numbers, unknown units, any string at all) is an `Err` naming
//! the input, never a panic.
//!
//! Each property runs on a generator seeded from `MODO_SEED` (a fixed default otherwise),
//! printed at the start: rerun a failure with `MODO_SEED=<seed> cargo test --test
//! proptest_seconds`.

use std::time::Duration;

use modo::Seconds;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

const DEFAULT_SEED: u64 = 0x6d6f_646f_0008;
const CASES: u32 = 4_096;

/// The seed of this run: `MODO_SEED` if set (decimal or `0x` hex), else a fixed default.
fn seed() -> u64 {
    let seed = match std::env::var("MODO_SEED") {
        Ok(s) => {
            let s = s.trim();
            match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            }
            .unwrap_or_else(|e| panic!("MODO_SEED={s:?} is not a u64: {e}"))
        }
        Err(_) => DEFAULT_SEED,
    };
    println!("MODO_SEED={seed}");
    seed
}

/// A runner whose cases all follow from the seed (no persisted failures, no other source).
fn runner() -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed().to_le_bytes());
    let config = Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// Runs `test` on `strategy`, failing the Rust test with proptest's minimal case.
fn check<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    if let Err(e) = runner().run(&strategy, test) {
        panic!("{e}");
    }
}

/// Any finite, non-negative f64: small and everyday values, whole numbers, and the whole bit
/// range (subnormals, values too large for a `Duration`).
fn non_negative_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        0.0..1e6_f64,
        (0u64..10_000_000).prop_map(|n| n as f64),
        any::<f64>()
            .prop_map(f64::abs)
            .prop_filter("finite", |f| f.is_finite()),
        Just(0.0),
        Just(f64::MIN_POSITIVE),
        Just(f64::from_bits(1)),
        Just(u64::MAX as f64),
        Just(f64::MAX),
    ]
}

/// Spaces or tabs, possibly none (the parser trims around numbers and units).
fn pad() -> impl Strategy<Value = String> {
    "[ \t]{0,2}"
}

const UNITS: [(&str, f64); 4] = [("s", 1.0), ("m", 60.0), ("h", 3_600.0), ("d", 86_400.0)];

/// The number with `{}` (Rust's shortest exact form, never an exponent) parses back to the
/// Duration `Duration::from_secs_f64` makes of it; too large for a `Duration` is an Err
/// naming the input on both sides.
#[test]
fn any_non_negative_number_round_trips() {
    check((non_negative_f64(), pad(), pad()), |(f, before, after)| {
        let input = format!("{before}{f}{after}");
        match (input.parse::<Seconds>(), Duration::try_from_secs_f64(f)) {
            (Ok(s), Ok(d)) => {
                prop_assert_eq!(s.as_duration(), d, "{:?}", input);
                prop_assert_eq!(s.as_duration(), Duration::from_secs_f64(f));
            }
            (Err(e), Err(_)) => {
                prop_assert_eq!(e.input(), input.as_str());
                prop_assert_eq!(e.reason(), "too large");
            }
            (got, want) => prop_assert!(false, "{input:?}: parsed {got:?}, expected {want:?}"),
        }
        Ok(())
    });
}

/// `"N/unit"` is N divided by the unit's length in seconds (s 1, m 60, h 3,600, d 86,400).
#[test]
fn rates_are_n_divided_by_the_units_length() {
    let n = prop_oneof![0.0..1e9_f64, (0u64..1_000_000).prop_map(|n| n as f64)];
    check(
        (n, 0..UNITS.len(), pad(), pad(), pad(), pad()),
        |(n, u, p1, p2, p3, p4)| {
            let (unit, len) = UNITS[u];
            let input = format!("{p1}{n}{p2}/{p3}{unit}{p4}");
            let parsed = input
                .parse::<Seconds>()
                .map_err(|e| TestCaseError::fail(format!("{input:?}: {e}")))?;
            prop_assert_eq!(
                parsed.as_duration(),
                Duration::from_secs_f64(n / len),
                "{:?}",
                input
            );
            Ok(())
        },
    );
}

/// A letter anywhere in the number (other than an exponent's `e`/`E`) is refused, with or
/// without a rate unit after it.
#[test]
fn numbers_with_letters_are_refused() {
    let letter = "[a-df-zA-DF-Z]";
    let number_part = "[0-9.eE+-]{0,6}";
    let tail = "[0-9a-zA-Z.+ -]{0,6}";
    let strategy = (
        number_part,
        letter,
        tail,
        proptest::option::of(0..UNITS.len()),
    )
        .prop_map(|(a, l, b, unit)| match unit {
            None => format!("{a}{l}{b}"),
            Some(u) => format!("{a}{l}{b}/{}", UNITS[u].0),
        });
    check(strategy, |input| {
        match input.parse::<Seconds>() {
            Ok(s) => prop_assert!(false, "{input:?} parsed as {s:?}"),
            Err(e) => prop_assert_eq!(e.input(), input.as_str()),
        }
        Ok(())
    });
}

/// A negative number (never zero: `-0` is zero) is refused, alone or as a rate.
#[test]
fn negative_numbers_are_refused() {
    let magnitude = prop_oneof![
        1e-9..1e9_f64,
        (1u64..10_000_000).prop_map(|n| n as f64),
        any::<f64>()
            .prop_map(f64::abs)
            .prop_filter("finite, non-zero", |f| f.is_finite() && *f > 0.0),
    ];
    let strategy = (magnitude, proptest::option::of(0..UNITS.len()), pad()).prop_map(
        |(m, unit, p)| match unit {
            None => format!("{p}-{m}"),
            Some(u) => format!("{p}-{m}/{}", UNITS[u].0),
        },
    );
    check(strategy, |input| {
        match input.parse::<Seconds>() {
            Ok(s) => prop_assert!(false, "{input:?} parsed as {s:?}"),
            Err(e) => prop_assert_eq!(e.input(), input.as_str()),
        }
        Ok(())
    });
}

/// A valid number with any unit other than s, m, h or d (after trimming) is refused.
#[test]
fn unknown_units_are_refused() {
    let unit = "[a-zA-Z0-9/ .]{0,8}".prop_filter("not a known unit", |u| {
        !UNITS.iter().any(|(known, _)| u.trim() == *known)
    });
    check((0.0..1e6_f64, unit), |(n, unit)| {
        let input = format!("{n}/{unit}");
        match input.parse::<Seconds>() {
            Ok(s) => prop_assert!(false, "{input:?} parsed as {s:?}"),
            Err(e) => prop_assert_eq!(e.input(), input.as_str()),
        }
        Ok(())
    });
}

/// Any string at all: never a panic; an Err names exactly the input, an Ok is a finite,
/// non-negative number of seconds.
#[test]
fn any_string_is_parsed_or_refused_never_a_panic() {
    let strategy = prop_oneof![
        any::<String>(),
        "[0-9 ./eE+-smhdinfatyNI]{0,16}",
        "\\PC{0,24}",
    ];
    check(strategy, |input| {
        match input.parse::<Seconds>() {
            Ok(s) => {
                let f = s.as_secs_f64();
                prop_assert!(f.is_finite() && f >= 0.0, "{:?} gave {}", input, f);
                prop_assert_eq!(Seconds::from(s.as_duration()), s);
            }
            Err(e) => prop_assert_eq!(e.input(), input.as_str()),
        }
        Ok(())
    });
}
