//! Calendar windows in UTC: days, weeks, months, quarters, years, with
//! month ends and leap years.

use super::*;

#[test]
fn calendar_days_start_at_midnight() {
    let spec = calendar("1d", Tz::UTC);
    let anchor = "2026-11-27T15:00:00Z";
    let counter = Counter::new(&spec, anchor);
    counter
        .at(anchor)
        .is(0, "2026-11-27T00:00:00Z", "2026-11-28T00:00:00Z");
    counter
        .at("2026-12-01T12:00:00Z")
        .is(4, "2026-12-01T00:00:00Z", "2026-12-02T00:00:00Z");
    counter
        .at("2026-11-26T23:59:59Z")
        .is(-1, "2026-11-26T00:00:00Z", "2026-11-27T00:00:00Z");
}

#[test]
fn calendar_weeks_start_on_monday() {
    let spec = calendar("1w", Tz::UTC);
    // 2026-11-25 is a Wednesday; its week began Monday 2026-11-23.
    let anchor = "2026-11-25T10:00:00Z";
    let counter = Counter::new(&spec, anchor);
    counter
        .at(anchor)
        .is(0, "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z");
    counter
        .at("2026-11-29T23:59:59Z")
        .is(0, "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z");
    counter
        .at("2026-11-30T00:00:00Z")
        .is(1, "2026-11-30T00:00:00Z", "2026-12-07T00:00:00Z");
    // A Sunday anchor belongs to the week that began six days before.
    let counter = Counter::new(&spec, "2026-11-29T22:00:00Z");
    counter
        .at("2026-11-29T22:00:00Z")
        .is(0, "2026-11-23T00:00:00Z", "2026-11-30T00:00:00Z");
}

#[test]
fn two_week_windows_count_from_the_monday_before_a_wednesday_anchor() {
    let spec = calendar("2w", Tz::UTC);
    let anchor = "2026-11-25T10:00:00Z";
    let counter = Counter::new(&spec, anchor);
    counter
        .at(anchor)
        .is(0, "2026-11-23T00:00:00Z", "2026-12-07T00:00:00Z");
    counter
        .at("2026-11-30T09:00:00Z")
        .is(0, "2026-11-23T00:00:00Z", "2026-12-07T00:00:00Z");
    counter
        .at("2026-12-06T23:59:59Z")
        .is(0, "2026-11-23T00:00:00Z", "2026-12-07T00:00:00Z");
    counter
        .at("2026-12-07T00:00:00Z")
        .is(1, "2026-12-07T00:00:00Z", "2026-12-21T00:00:00Z");
    counter
        .at("2027-01-06T00:00:00Z")
        .is(3, "2027-01-04T00:00:00Z", "2027-01-18T00:00:00Z");
}

#[test]
fn calendar_months_start_on_the_first() {
    let spec = calendar("1M", Tz::UTC);
    // Created on Jan 31: the window is January; February is next.
    let anchor = "2026-01-31T18:00:00Z";
    let counter = Counter::new(&spec, anchor);
    counter
        .at(anchor)
        .is(0, "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z");
    counter
        .at("2026-02-28T23:59:59Z")
        .is(1, "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z");
    counter
        .at("2026-03-01T00:00:00Z")
        .is(2, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z");
    counter
        .at("2027-01-31T00:00:00Z")
        .is(12, "2027-01-01T00:00:00Z", "2027-02-01T00:00:00Z");
}

#[test]
fn february_has_29_days_in_leap_years_only() {
    let spec = calendar("1M", Tz::UTC);
    let leap = "2028-01-31T12:00:00Z";
    let counter = Counter::new(&spec, leap);
    counter
        .at("2028-02-29T23:59:59Z")
        .is(1, "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z");
    counter
        .at("2028-03-01T00:00:00Z")
        .is(2, "2028-03-01T00:00:00Z", "2028-04-01T00:00:00Z");
    let plain = "2027-01-31T12:00:00Z";
    let counter = Counter::new(&spec, plain);
    counter
        .at("2027-02-28T23:59:59Z")
        .is(1, "2027-02-01T00:00:00Z", "2027-03-01T00:00:00Z");
    counter
        .at("2027-03-01T00:00:00Z")
        .is(2, "2027-03-01T00:00:00Z", "2027-04-01T00:00:00Z");
    // Anchored on Feb 29 itself.
    let feb29 = "2028-02-29T08:00:00Z";
    let counter = Counter::new(&spec, feb29);
    counter
        .at(feb29)
        .is(0, "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z");
    let day = Counter::new(&calendar("1d", Tz::UTC), feb29);
    day.at(feb29)
        .is(0, "2028-02-29T00:00:00Z", "2028-03-01T00:00:00Z");
}

#[test]
fn three_month_windows_count_from_the_anchors_month() {
    let spec = calendar("3M", Tz::UTC);
    let anchor = "2026-02-10T00:00:00Z";
    let counter = Counter::new(&spec, anchor);
    counter
        .at(anchor)
        .is(0, "2026-02-01T00:00:00Z", "2026-05-01T00:00:00Z");
    counter
        .at("2026-05-01T00:00:00Z")
        .is(1, "2026-05-01T00:00:00Z", "2026-08-01T00:00:00Z");
    counter
        .at("2027-01-15T00:00:00Z")
        .is(3, "2026-11-01T00:00:00Z", "2027-02-01T00:00:00Z");
}

#[test]
fn quarters_follow_the_calendar_year_by_default() {
    let spec = calendar("1Q", Tz::UTC);
    let anchor = "2026-05-20T00:00:00Z";
    let counter = Counter::new(&spec, anchor);
    counter
        .at(anchor)
        .is(0, "2026-04-01T00:00:00Z", "2026-07-01T00:00:00Z");
    counter
        .at("2026-12-31T23:59:59Z")
        .is(2, "2026-10-01T00:00:00Z", "2027-01-01T00:00:00Z");
    counter
        .at("2027-01-01T00:00:00Z")
        .is(3, "2027-01-01T00:00:00Z", "2027-04-01T00:00:00Z");
}

#[test]
fn quarters_follow_a_fiscal_year_starting_in_april() {
    let spec = quarters("1Q", Tz::UTC, 4);
    // April-based quarters start Apr, Jul, Oct and Jan.
    let anchor = "2026-03-15T00:00:00Z";
    let counter = Counter::new(&spec, anchor);
    counter
        .at(anchor)
        .is(0, "2026-01-01T00:00:00Z", "2026-04-01T00:00:00Z");
    counter
        .at("2026-04-01T00:00:00Z")
        .is(1, "2026-04-01T00:00:00Z", "2026-07-01T00:00:00Z");
    // Two-quarter windows from the quarter before the anchor: Jan–Jun, Jul–Dec.
    let half = quarters("2Q", Tz::UTC, 4);
    let counter = Counter::new(&half, anchor);
    counter
        .at("2026-08-01T00:00:00Z")
        .is(1, "2026-07-01T00:00:00Z", "2027-01-01T00:00:00Z");
}

#[test]
fn quarters_follow_a_fiscal_year_starting_in_november() {
    let spec = quarters("1Q", Tz::UTC, 11);
    // November-based quarters start Nov, Feb, May and Aug.
    let counter = Counter::new(&spec, "2026-03-15T00:00:00Z");
    counter
        .at("2026-03-15T00:00:00Z")
        .is(0, "2026-02-01T00:00:00Z", "2026-05-01T00:00:00Z");
    let counter = Counter::new(&spec, "2026-01-10T00:00:00Z");
    counter
        .at("2026-01-10T00:00:00Z")
        .is(0, "2025-11-01T00:00:00Z", "2026-02-01T00:00:00Z");
    let anchor = "2026-12-31T23:00:00Z";
    let counter = Counter::new(&spec, anchor);
    counter
        .at(anchor)
        .is(0, "2026-11-01T00:00:00Z", "2027-02-01T00:00:00Z");
    counter
        .at("2027-02-01T00:00:00Z")
        .is(1, "2027-02-01T00:00:00Z", "2027-05-01T00:00:00Z");
    counter
        .at("2027-11-01T00:00:00Z")
        .is(4, "2027-11-01T00:00:00Z", "2028-02-01T00:00:00Z");
}

#[test]
fn years_start_on_january_first_whatever_the_quarter_month() {
    for quarter_start_month in [1, 4, 11] {
        let spec = quarters("1Y", Tz::UTC, quarter_start_month);
        let anchor = "2026-07-04T00:00:00Z";
        let counter = Counter::new(&spec, anchor);
        counter
            .at(anchor)
            .is(0, "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z");
        counter
            .at("2028-03-01T00:00:00Z")
            .is(2, "2028-01-01T00:00:00Z", "2029-01-01T00:00:00Z");
    }
    let two_years = calendar("2Y", Tz::UTC);
    let counter = Counter::new(&two_years, "2027-06-01T00:00:00Z");
    counter
        .at("2029-01-01T00:00:00Z")
        .is(1, "2029-01-01T00:00:00Z", "2031-01-01T00:00:00Z");
}
