//! Fuzzes `str::parse::<modo::Seconds>`: it never panics, a refusal names exactly the input,
//! and an accepted value is a sane `Duration` (finite, non-negative, round-trips through
//! `Seconds::from(Duration)` and, below a bound where f64 keeps nanoseconds, through
//! `Duration::from_secs_f64`).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use modo::Seconds;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    match input.parse::<Seconds>() {
        Ok(s) => {
            let d = s.as_duration();
            let f = s.as_secs_f64();
            assert!(f.is_finite() && f >= 0.0, "{input:?} gave {f}");
            assert_eq!(Seconds::from(d), s);
            assert_eq!(Duration::from(s), d);
            assert!(s.to_string().ends_with('s'));
            // Up to about 100 days an f64 holds the nanoseconds: the float form comes back
            // within a nanosecond of the Duration.
            if d < Duration::from_secs(8_000_000) {
                let back = Duration::from_secs_f64(f);
                let diff = back.abs_diff(d);
                assert!(
                    diff <= Duration::from_nanos(1),
                    "{input:?}: {d:?} vs {back:?}"
                );
            }
            // The value from its own float is accepted again.
            assert!(Seconds::from_secs_f64(f).is_ok() || d > Duration::from_secs(u64::MAX / 2));
        }
        Err(e) => {
            assert_eq!(e.input(), input);
            assert!(!e.reason().is_empty());
        }
    }
});
