//! Mode's `humanize_seconds`: two decimals in the largest unit reached, "now" under a second,
//! prefix, separator and suffix left out of "now", sub-second values on request.

use std::time::Duration;

use modo::Seconds;
use modo::time::{Humanize, humanize_seconds, humanize_seconds_ago};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn mode_forms() {
    let cases: [(Duration, &str); 14] = [
        (Duration::ZERO, "now"),
        (ms(4), "now"),
        (ms(500), "now"),
        (ms(994), "now"),
        (ms(996), "1.00 second"),
        (ms(1000), "1.00 second"),
        (ms(1500), "1.50 seconds"),
        (ms(59_994), "59.99 seconds"),
        (ms(59_999), "1.00 minute"),
        (Duration::from_secs(60), "1.00 minute"),
        (Duration::from_secs(90), "1.50 minutes"),
        (Duration::from_secs(7200), "2.00 hours"),
        (Duration::from_secs(86_400), "1.00 day"),
        (Duration::from_secs(3 * 86_400 + 43_200), "3.50 days"),
    ];
    for (d, want) in cases {
        assert_eq!(humanize_seconds(d), want, "{d:?}");
    }
}

#[test]
fn takes_seconds_and_whole_numbers() {
    assert_eq!(humanize_seconds(45_u64), "45.00 seconds");
    assert_eq!(
        humanize_seconds("10.3/h".parse::<Seconds>().unwrap()),
        "now",
        "a rate string is a small number of seconds"
    );
    assert_eq!(
        humanize_seconds(Seconds::try_from(3.333_f64).unwrap()),
        "3.33 seconds"
    );
}

#[test]
fn prefix_sep_suffix_and_the_now_word() {
    let h = Humanize::new().prefix("in").sep(" ").suffix("!");
    assert_eq!(h.format(Duration::from_secs(1)), "in 1.00 second!");
    assert_eq!(h.format(ms(10)), "now", "nothing added to now");
    let h = Humanize::new().now("right away");
    assert_eq!(h.format(Duration::ZERO), "right away");
}

#[test]
fn microseconds_writes_sub_second_values() {
    let h = Humanize::new().microseconds(true);
    assert_eq!(h.format(ms(250)), "0.25 seconds");
    assert_eq!(h.format(ms(4)), "now", "rounded to 0.00");
    assert_eq!(h.format(Duration::ZERO), "now");
    assert_eq!(
        Humanize::new()
            .prefix("in ")
            .microseconds(true)
            .format(ms(10)),
        "in 0.01 seconds"
    );
}

#[test]
fn ago() {
    assert_eq!(humanize_seconds_ago(ms(3330)), "3.33 seconds ago");
    assert_eq!(humanize_seconds_ago(ms(999)), "1.00 second ago");
    assert_eq!(humanize_seconds_ago(ms(300)), "just now");
    assert_eq!(
        humanize_seconds_ago(Duration::from_secs(120)),
        "2.00 minutes ago"
    );
}
