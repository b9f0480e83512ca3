//! Rolling windows: a lattice of equal lengths anchored at the counter's
//! creation, window k = [anchor + k×len, anchor + (k+1)×len).
//!
//! Pure arithmetic in O(1): the index is one floor division, never a loop
//! over windows (a `1s` window over years is billions of windows). This
//! file must not know about calendars or time zones.

use chrono::{DateTime, TimeDelta, Utc};

use super::Window;

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// The rolling window of length `length_seconds` containing `now`, for a
/// lattice anchored at `anchor`. Index 0 contains the anchor; instants
/// before the anchor (clock skew between nodes) get negative indexes.
pub(super) fn window_at(length_seconds: i64, anchor: DateTime<Utc>, now: DateTime<Utc>) -> Window {
    // A zero length cannot come from a validated ResetDuration; clamping
    // keeps the division below total anyway.
    let length = length_seconds.max(1);
    let index = floor_index(length, anchor, now);
    Window {
        index,
        start: lattice_point(anchor, length, index),
        end: lattice_point(anchor, length, index.saturating_add(1)),
    }
}

/// floor((now - anchor) / length), counted in nanoseconds so that sub-second
/// anchors land exactly on their lattice. i128 cannot overflow here: the
/// whole chrono range is about 2^68 ns.
fn floor_index(length: i64, anchor: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
    let delta = (i128::from(now.timestamp()) - i128::from(anchor.timestamp())) * NANOS_PER_SECOND
        + i128::from(now.timestamp_subsec_nanos())
        - i128::from(anchor.timestamp_subsec_nanos());
    let index = delta.div_euclid(i128::from(length) * NANOS_PER_SECOND);
    // With length ≥ 1 s the quotient is below 2^38 in magnitude; saturate
    // rather than trust that.
    i64::try_from(index).unwrap_or(if index < 0 { i64::MIN } else { i64::MAX })
}

/// anchor + index × length seconds, saturated to chrono's range. Saturation
/// only happens millennia away, where an exact answer does not matter but a
/// panic would.
fn lattice_point(anchor: DateTime<Utc>, length: i64, index: i64) -> DateTime<Utc> {
    let saturated = if index < 0 {
        DateTime::<Utc>::MIN_UTC
    } else {
        DateTime::<Utc>::MAX_UTC
    };
    let Some(offset) = i64::try_from(i128::from(index) * i128::from(length))
        .ok()
        .and_then(TimeDelta::try_seconds)
    else {
        return saturated;
    };
    anchor.checked_add_signed(offset).unwrap_or(saturated)
}
