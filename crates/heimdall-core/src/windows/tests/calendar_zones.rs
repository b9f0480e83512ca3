//! Calendar windows outside UTC: DST days of 23 and 25 hours, local dates
//! that differ from the UTC date, midnights that do not exist or happen
//! twice, a skipped day, and a sweep checking that windows tile time.

use super::*;

#[test]
fn a_new_york_day_is_23_hours_on_spring_forward_and_25_on_fall_back() {
    let spec = calendar("1d", Tz::America__New_York);
    let spring = "2026-03-08T12:00:00Z";
    let counter = Counter::new(&spec, spring);
    counter
        .at(spring)
        .is(0, "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z");
    let window = spec.window_at(at(spring), at(spring));
    assert_eq!(window.end - window.start, TimeDelta::hours(23));
    let fall = "2026-11-01T12:00:00Z";
    let window = spec.window_at(at(fall), at(fall));
    assert_eq!(
        (window.start, window.end),
        (at("2026-11-01T04:00:00Z"), at("2026-11-02T05:00:00Z"))
    );
    assert_eq!(window.end - window.start, TimeDelta::hours(25));
}

#[test]
fn the_local_date_decides_not_the_utc_date() {
    let spec = calendar("1d", Tz::America__New_York);
    let anchor = "2026-11-27T15:00:00Z";
    // 03:00 UTC on the 28th is still 22:00 on the 27th in New York.
    let counter = Counter::new(&spec, anchor);
    counter
        .at("2026-11-28T03:00:00Z")
        .is(0, "2026-11-27T05:00:00Z", "2026-11-28T05:00:00Z");
    counter
        .at("2026-11-28T05:00:00Z")
        .is(1, "2026-11-28T05:00:00Z", "2026-11-29T05:00:00Z");
    // 22:30 UTC on June 30 is already July 1 in Berlin.
    let month = calendar("1M", Tz::Europe__Berlin);
    let anchor = "2026-06-15T12:00:00Z";
    let counter = Counter::new(&month, anchor);
    counter
        .at("2026-06-30T22:30:00Z")
        .is(1, "2026-06-30T22:00:00Z", "2026-07-31T22:00:00Z");
}

#[test]
fn berlin_days_weeks_and_months_across_dst() {
    let day = calendar("1d", Tz::Europe__Berlin);
    let spring = "2026-03-29T10:00:00Z";
    let counter = Counter::new(&day, spring);
    counter
        .at(spring)
        .is(0, "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z");
    let fall = "2026-10-25T10:00:00Z";
    let counter = Counter::new(&day, fall);
    counter
        .at(fall)
        .is(0, "2026-10-24T22:00:00Z", "2026-10-25T23:00:00Z");
    // Wednesday 2026-03-25: Monday 00:00 CET to Monday 00:00 CEST.
    let week = calendar("1w", Tz::Europe__Berlin);
    let anchor = "2026-03-25T12:00:00Z";
    let counter = Counter::new(&week, anchor);
    counter
        .at(anchor)
        .is(0, "2026-03-22T23:00:00Z", "2026-03-29T22:00:00Z");
    counter
        .at("2026-03-29T22:00:00Z")
        .is(1, "2026-03-29T22:00:00Z", "2026-04-05T22:00:00Z");
    let month = calendar("1M", Tz::Europe__Berlin);
    let counter = Counter::new(&month, anchor);
    counter
        .at(anchor)
        .is(0, "2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z");
}

#[test]
fn quarters_and_years_in_local_time() {
    let berlin = quarters("1Q", Tz::Europe__Berlin, 4);
    let anchor = "2026-05-20T00:00:00Z";
    let counter = Counter::new(&berlin, anchor);
    counter
        .at(anchor)
        .is(0, "2026-03-31T22:00:00Z", "2026-06-30T22:00:00Z");
    let new_york = quarters("1Q", Tz::America__New_York, 11);
    let anchor = "2026-03-15T00:00:00Z";
    let counter = Counter::new(&new_york, anchor);
    counter
        .at(anchor)
        .is(0, "2026-02-01T05:00:00Z", "2026-05-01T04:00:00Z");
    let year = calendar("1Y", Tz::America__New_York);
    // 2027-01-01T03:00Z is still New Year's Eve in New York.
    let counter = Counter::new(&year, anchor);
    counter
        .at("2027-01-01T03:00:00Z")
        .is(0, "2026-01-01T05:00:00Z", "2027-01-01T05:00:00Z");
    counter
        .at("2027-01-01T05:00:00Z")
        .is(1, "2027-01-01T05:00:00Z", "2028-01-01T05:00:00Z");
}

#[test]
fn a_missing_midnight_starts_the_day_when_the_gap_ends() {
    // Havana springs forward at 00:00 → 01:00 on 2026-03-08 (05:00 UTC).
    let spec = calendar("1d", Tz::America__Havana);
    let anchor = "2026-03-07T12:00:00Z";
    let counter = Counter::new(&spec, anchor);
    counter
        .at(anchor)
        .is(0, "2026-03-07T05:00:00Z", "2026-03-08T05:00:00Z");
    counter
        .at("2026-03-08T05:00:00Z")
        .is(1, "2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z");
    // Santiago does the same on 2026-09-06 at 04:00 UTC.
    let anchor = "2026-09-06T12:00:00Z";
    let counter = Counter::new(&calendar("1d", Tz::America__Santiago), anchor);
    counter
        .at(anchor)
        .is(0, "2026-09-06T04:00:00Z", "2026-09-07T03:00:00Z");
}

#[test]
fn a_doubled_midnight_starts_the_day_at_its_first_occurrence() {
    // Havana falls back 01:00 CDT → 00:00 CST on 2026-11-01: midnight is at
    // 04:00 UTC and again at 05:00 UTC; the day starts at the first.
    let spec = calendar("1d", Tz::America__Havana);
    let anchor = "2026-10-31T12:00:00Z";
    let counter = Counter::new(&spec, anchor);
    counter
        .at(anchor)
        .is(0, "2026-10-31T04:00:00Z", "2026-11-01T04:00:00Z");
    for now in [
        "2026-11-01T04:00:00Z",
        "2026-11-01T04:30:00Z",
        "2026-11-01T05:30:00Z",
    ] {
        counter
            .at(now)
            .is(1, "2026-11-01T04:00:00Z", "2026-11-02T05:00:00Z");
    }
}

#[test]
fn a_skipped_calendar_day_is_an_empty_window() {
    // Samoa skipped 2011-12-30 entirely (UTC−10 → UTC+14).
    let spec = calendar("1d", Tz::Pacific__Apia);
    let anchor = "2011-12-29T12:00:00Z";
    let counter = Counter::new(&spec, anchor);
    counter
        .at(anchor)
        .is(0, "2011-12-29T10:00:00Z", "2011-12-30T10:00:00Z");
    counter
        .at("2011-12-30T10:00:00Z")
        .is(2, "2011-12-30T10:00:00Z", "2011-12-31T10:00:00Z");
}

#[test]
fn a_local_date_that_runs_backwards_stays_in_the_later_window() {
    // Casey station, 2010-03-05 02:00 +11 → 2010-03-04 23:00 +08 (15:00
    // UTC): midnight of the 5th happens at 13:00 and 16:00 UTC, and from
    // 15:00 to 16:00 UTC the local date is the 4th again. Those instants
    // belong to the day that began at the first midnight.
    let spec = calendar("1d", Tz::Antarctica__Casey);
    let anchor = "2010-03-04T12:00:00Z";
    let counter = Counter::new(&spec, anchor);
    counter
        .at(anchor)
        .is(0, "2010-03-03T13:00:00Z", "2010-03-04T13:00:00Z");
    counter
        .at("2010-03-04T15:30:00Z")
        .is(1, "2010-03-04T13:00:00Z", "2010-03-05T16:00:00Z");
    // Anchored inside the repeated hour: index 0 still contains the anchor.
    let repeated = "2010-03-04T15:30:00Z";
    let late = Counter::new(&spec, repeated);
    late.at(repeated)
        .is(0, "2010-03-04T13:00:00Z", "2010-03-05T16:00:00Z");
    assert_windows_tile(&spec, "2010-02-01T00:00:00Z");
}

/// Walks `now` over two years in steps shorter than any window and checks
/// that windows contain `now`, tile time without gaps or overlaps, keep
/// their index, and that the anchor's window is index 0.
#[track_caller]
fn assert_windows_tile(spec: &WindowSpec, anchor: &str) {
    let anchor = at(anchor);
    let first = spec.window_at(anchor, anchor);
    assert_eq!(first.index, 0);
    assert!(first.contains(anchor));
    let step = TimeDelta::minutes(97) + TimeDelta::seconds(13);
    let mut now = anchor - TimeDelta::days(40);
    let mut previous: Option<Window> = None;
    while now < anchor + TimeDelta::days(730) {
        let window = spec.window_at(anchor, now);
        assert!(window.contains(now), "{window:?} misses {now}");
        assert_eq!(
            spec.window_at(anchor, window.start),
            window,
            "start of {window:?}"
        );
        if let Some(previous) = previous {
            if window.index == previous.index {
                assert_eq!(window, previous);
            } else {
                assert_eq!(
                    window.index,
                    previous.index + 1,
                    "{previous:?} → {window:?}"
                );
                assert_eq!(window.start, previous.end, "{previous:?} → {window:?}");
            }
        }
        previous = Some(window);
        now += step;
    }
}

#[test]
fn windows_tile_time_with_stable_indexes() {
    assert_windows_tile(
        &calendar("1d", Tz::America__New_York),
        "2026-01-10T17:45:00Z",
    );
    assert_windows_tile(&calendar("1d", Tz::America__Havana), "2026-02-10T03:00:00Z");
    assert_windows_tile(&calendar("1w", Tz::Europe__Berlin), "2026-01-14T09:00:00Z");
    assert_windows_tile(
        &calendar("2w", Tz::America__New_York),
        "2026-01-14T09:00:00Z",
    );
    assert_windows_tile(&calendar("1M", Tz::Europe__Berlin), "2027-12-31T23:30:00Z");
    assert_windows_tile(
        &calendar("3M", Tz::America__Santiago),
        "2026-02-28T03:30:00Z",
    );
    assert_windows_tile(
        &quarters("1Q", Tz::America__New_York, 11),
        "2026-01-01T02:00:00Z",
    );
    assert_windows_tile(&calendar("1Y", Tz::Europe__Berlin), "2026-12-31T23:15:00Z");
    assert_windows_tile(&calendar("3d", Tz::Asia__Kolkata), "2026-05-05T05:05:05Z");
    assert_windows_tile(&rolling("7h"), "2026-05-05T05:05:05.5Z");
    assert_windows_tile(&rolling("1M"), "2026-01-31T12:00:00Z");
}

#[test]
fn the_index_depends_only_on_anchor_and_now() {
    // Two nodes asking about the same counter at different moments, in any
    // order, agree on every window.
    let spec = quarters("1Q", Tz::Europe__Berlin, 4);
    let anchor = at("2026-05-20T08:00:00Z");
    let later = at("2028-11-11T11:11:11Z");
    let first = spec.window_at(anchor, later);
    let _ = spec.window_at(anchor, at("2030-01-01T00:00:00Z"));
    assert_eq!(spec.window_at(anchor, later), first);
    assert_eq!(first.index, 10);
    assert_eq!(first.start, at("2028-09-30T22:00:00Z"));
}
