//! Rolling windows: a lattice from the anchor, fixed M/Q/Y lengths,
//! sub-day durations that ignore alignment.

use super::*;

#[test]
fn rolling_windows_start_at_the_anchor() {
    let spec = rolling("1d");
    let anchor = "2026-01-15T10:30:00Z";
    let counter = Counter::new(&spec, anchor);
    counter.at(anchor).is(0, anchor, "2026-01-16T10:30:00Z");
    counter
        .at("2026-01-16T10:29:59.999999999Z")
        .is(0, anchor, "2026-01-16T10:30:00Z");
    counter
        .at("2026-01-16T10:30:00Z")
        .is(1, "2026-01-16T10:30:00Z", "2026-01-17T10:30:00Z");
    // 400 days on, across a month end and a year end.
    counter
        .at("2027-02-19T11:00:00Z")
        .is(400, "2027-02-19T10:30:00Z", "2027-02-20T10:30:00Z");
}

#[test]
fn rolling_windows_before_the_anchor_have_negative_indexes() {
    let spec = rolling("1h");
    let anchor = "2026-01-15T10:30:00Z";
    let counter = Counter::new(&spec, anchor);
    counter
        .at("2026-01-15T10:29:59Z")
        .is(-1, "2026-01-15T09:30:00Z", anchor);
    counter
        .at("2026-01-15T07:30:00Z")
        .is(-3, "2026-01-15T07:30:00Z", "2026-01-15T08:30:00Z");
}

#[test]
fn rolling_months_quarters_and_years_have_fixed_lengths() {
    let anchor = "2028-01-01T00:00:00Z";
    // M = 30 days: the second window starts on Jan 31, not Feb 1.
    let counter = Counter::new(&rolling("1M"), anchor);
    counter
        .at("2028-02-01T00:00:00Z")
        .is(1, "2028-01-31T00:00:00Z", "2028-03-01T00:00:00Z");
    // Q = 90 days (2028 is a leap year: Jan 31 + Feb 29 + Mar 30 days).
    let counter = Counter::new(&rolling("1Q"), anchor);
    counter
        .at("2028-03-31T00:00:00Z")
        .is(1, "2028-03-31T00:00:00Z", "2028-06-29T00:00:00Z");
    // Y = 365 days, so the leap year's last day already opens window 1.
    let counter = Counter::new(&rolling("1Y"), anchor);
    counter
        .at("2028-12-31T12:00:00Z")
        .is(1, "2028-12-31T00:00:00Z", "2029-12-31T00:00:00Z");
    let counter = Counter::new(&rolling("3M"), anchor);
    counter
        .at("2028-04-01T00:00:00Z")
        .is(1, "2028-03-31T00:00:00Z", "2028-06-29T00:00:00Z");
}

#[test]
fn rolling_index_is_arithmetic_even_for_billions_of_windows() {
    let spec = rolling("1s");
    let anchor = at("2000-01-01T00:00:00Z");
    let now = at("2100-01-01T00:00:00.5Z");
    let window = spec.window_at(anchor, now);
    assert_eq!(window.index, (now - anchor).num_seconds());
    assert_eq!(window.start, at("2100-01-01T00:00:00Z"));
    assert_eq!(window.end, at("2100-01-01T00:00:01Z"));
}

#[test]
fn rolling_lattice_keeps_the_anchors_fraction_of_a_second() {
    let spec = rolling("1m");
    let anchor = "2026-06-01T12:00:00.250Z";
    let counter = Counter::new(&spec, anchor);
    let next = "2026-06-01T12:01:00.250Z";
    counter.at("2026-06-01T12:01:00.249Z").is(0, anchor, next);
    counter.at(next).is(1, next, "2026-06-01T12:02:00.250Z");
}

#[test]
fn alignment_is_ignored_under_a_day() {
    let anchor = "2026-03-29T00:17:00Z";
    for tz in [Tz::UTC, Tz::Europe__Berlin] {
        let spec = calendar("12h", tz);
        assert!(!spec.uses_calendar());
        // Across Berlin's spring-forward night: still exactly 12 hours.
        let counter = Counter::new(&spec, anchor);
        counter
            .at("2026-03-29T13:00:00Z")
            .is(1, "2026-03-29T12:17:00Z", "2026-03-30T00:17:00Z");
    }
    assert!(calendar("1d", Tz::UTC).uses_calendar());
    assert!(!rolling("1d").uses_calendar());
}
