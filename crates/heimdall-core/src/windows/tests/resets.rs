//! Lazy resets, reset times, `Retry-After`, and override cycles.

use super::*;

#[test]
fn next_reset_is_the_end_of_the_window() {
    // The example of governance §4: a 1d budget read on 2026-11-27.
    let spec = calendar("1d", Tz::UTC);
    let reset = spec.next_reset_at(at("2026-11-01T09:00:00Z"), at("2026-11-27T16:20:00Z"));
    assert_eq!(reset.to_rfc3339(), "2026-11-28T00:00:00+00:00");
    let window = spec.window_at(at("2026-11-01T09:00:00Z"), at("2026-11-27T16:20:00Z"));
    assert_eq!(window.next_reset_at(), window.end);
}

#[test]
fn retry_after_rounds_up_to_whole_seconds() {
    let end = at("2026-01-01T00:01:00Z");
    assert_eq!(retry_after_secs(end, at("2026-01-01T00:00:55Z")), 5);
    assert_eq!(
        retry_after_secs(end, at("2026-01-01T00:00:54.999999999Z")),
        6
    );
    assert_eq!(retry_after_secs(end, at("2026-01-01T00:00:59.8Z")), 1);
    assert_eq!(retry_after_secs(end, end), 0);
    assert_eq!(retry_after_secs(end, at("2026-01-01T00:05:00Z")), 0);
    let spec = rolling("1m");
    let anchor = at("2026-01-01T00:00:00Z");
    let now = at("2026-01-01T00:00:30.5Z");
    assert_eq!(spec.window_at(anchor, now).retry_after_secs(now), 30);
}

#[test]
fn lazy_reset_rolls_over_only_when_a_new_window_began() {
    let spec = calendar("1M", Tz::Europe__Berlin);
    let anchor = at("2026-01-20T10:00:00Z");
    let last_reset = at("2025-12-31T23:00:00Z"); // January 1, Berlin time
    let same = spec.roll_over(anchor, last_reset, at("2026-01-31T22:59:59Z"));
    assert!(!same.rolled_over);
    assert_eq!(same.window.index, 0);
    let next = spec.roll_over(anchor, last_reset, at("2026-01-31T23:00:00Z"));
    assert!(next.rolled_over);
    assert_eq!(next.window.start, at("2026-01-31T23:00:00Z"));
    // Idle for months: one reset straight to the current window.
    let idle = spec.roll_over(anchor, last_reset, at("2026-06-15T00:00:00Z"));
    assert!(idle.rolled_over);
    assert_eq!(
        (idle.window.index, idle.window.start),
        (5, at("2026-05-31T22:00:00Z"))
    );
    // After the reset, the new last_reset is the window start: no second reset.
    assert!(
        !spec
            .roll_over(anchor, idle.window.start, at("2026-06-20T00:00:00Z"))
            .rolled_over
    );
}

#[test]
fn lazy_reset_never_goes_back_in_time() {
    let spec = rolling("1h");
    let anchor = at("2026-01-01T00:00:00Z");
    let last_reset = at("2026-01-01T05:00:00Z");
    let behind = spec.roll_over(anchor, last_reset, at("2026-01-01T04:59:00Z"));
    assert!(!behind.rolled_over);
    assert!(
        !spec
            .roll_over_from_index(anchor, 5, at("2026-01-01T04:59:00Z"))
            .rolled_over
    );
}

#[test]
fn lazy_reset_from_a_stored_index() {
    let spec = rolling("1h");
    let anchor = at("2026-01-01T00:10:00Z");
    let same = spec.roll_over_from_index(anchor, 2, at("2026-01-01T03:09:59Z"));
    assert!(!same.rolled_over);
    let next = spec.roll_over_from_index(anchor, 2, at("2026-01-01T03:10:00Z"));
    assert!(next.rolled_over);
    assert_eq!(
        (next.window.index, next.window.start),
        (3, at("2026-01-01T03:10:00Z"))
    );
}

#[test]
fn switching_alignment_on_keeps_usage_until_the_next_boundary() {
    let anchor = at("2026-11-25T10:00:00Z");
    // The rolling counter last reset at 10:00 on the 27th.
    let last_reset = at("2026-11-27T10:00:00Z");
    let aligned = calendar("1d", Tz::UTC);
    let kept = aligned.roll_over(anchor, last_reset, at("2026-11-27T20:00:00Z"));
    assert!(!kept.rolled_over);
    assert_eq!(kept.window.end, at("2026-11-28T00:00:00Z"));
    let reset = aligned.roll_over(anchor, last_reset, at("2026-11-28T00:00:00Z"));
    assert!(reset.rolled_over);
    assert_eq!(reset.window.start, at("2026-11-28T00:00:00Z"));
}

#[test]
fn cycles_count_the_window_they_were_set_in() {
    assert_eq!(cycles_remaining(5, 3, 5), 3);
    assert_eq!(cycles_remaining(5, 3, 6), 2);
    assert_eq!(cycles_remaining(5, 3, 7), 1);
    assert_eq!(cycles_remaining(5, 3, 8), 0);
    assert_eq!(cycles_remaining(5, 3, 1_000), 0);
    // A node whose clock is behind never reports more than was granted.
    assert_eq!(cycles_remaining(5, 3, 2), 3);
    assert_eq!(cycles_remaining(-2, 1, -2), 1);
    assert_eq!(cycles_remaining(i64::MAX, u32::MAX, i64::MIN), u32::MAX);
    assert_eq!(cycles_remaining(i64::MIN, u32::MAX, i64::MAX), 0);
}

#[test]
fn overrides_in_cycles_end_by_themselves_and_forever_does_not() {
    let cycles = OverrideMode::Cycles(2);
    assert!(cycles.in_force(4, 4));
    assert!(cycles.in_force(4, 5));
    assert!(!cycles.in_force(4, 6));
    assert_eq!(cycles.remaining(4, 5), Some(1));
    assert_eq!(OverrideMode::Forever.remaining(4, 1_000), None);
    assert!(OverrideMode::Forever.in_force(4, 1_000));
    assert!(OverrideMode::Forever.in_force(4, 0));
}

#[test]
fn an_override_for_two_monthly_cycles_covers_this_month_and_the_next() {
    let spec = calendar("1M", Tz::America__New_York);
    let anchor = at("2026-01-20T15:00:00Z");
    let set_index = spec.window_at(anchor, at("2026-02-10T15:00:00Z")).index;
    assert_eq!(set_index, 1);
    let mode = OverrideMode::Cycles(2);
    let index_at = |now: &str| spec.window_at(anchor, at(now)).index;
    assert_eq!(
        mode.remaining(set_index, index_at("2026-02-28T12:00:00Z")),
        Some(2)
    );
    assert_eq!(
        mode.remaining(set_index, index_at("2026-03-31T12:00:00Z")),
        Some(1)
    );
    // 2026-04-01T03:00Z is still March 31 in New York.
    assert!(mode.in_force(set_index, index_at("2026-04-01T03:00:00Z")));
    assert!(!mode.in_force(set_index, index_at("2026-04-01T04:00:00Z")));
}
