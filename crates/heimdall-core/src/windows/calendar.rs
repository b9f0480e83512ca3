//! Calendar-aligned windows: boundaries at local midnights of a time zone,
//! on Mondays (`w`), on the 1st of a month (`M`), of a quarter (`Q`, with a
//! configurable first month of the year) or of January (`Y`).
//!
//! A window is N calendar units counted from the boundary at or before the
//! anchor, so a lattice of local dates (for `d`, `w`) or of months (for `M`,
//! `Q`, `Y`). The index is found by arithmetic on day or month numbers, then
//! checked against the real instants with a loop of at most a few steps
//! (DST may make local dates run backwards for an hour). Local midnights
//! that do not exist or exist twice resolve to the earliest valid instant at
//! or after them.
//!
//! This file must not know about counters or durations under a day, and
//! must never read the clock.

use chrono::{DateTime, Datelike, MappedLocalTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

use super::{DurationUnit, ResetDuration, Window};

/// How far a local wall clock can be from UTC, with margin: real offsets
/// stay within ±16 h, including historical local mean times such as
/// Manila's −15:56.
const MAX_OFFSET_SECONDS: i64 = 17 * 3_600;

/// Bound on the correction steps after the arithmetic estimate. One step is
/// enough for any real zone; the bound only guarantees termination.
const MAX_CORRECTION_STEPS: usize = 4;

/// What a lattice counts in.
#[derive(Debug, Clone, Copy)]
enum Grain {
    /// Days since 0001-01-01 (`d`, `w`).
    Days,
    /// Months since year 0, i.e. `year × 12 + month0` (`M`, `Q`, `Y`).
    Months,
}

/// Boundaries `base + k × period` (in days or months), each at local
/// midnight in `tz`.
#[derive(Debug, Clone, Copy)]
struct Lattice {
    tz: Tz,
    grain: Grain,
    base: i64,
    period: i64,
}

/// The calendar window containing `now`, index 0 being the one containing
/// `anchor`. `duration` must have a calendar unit (`d` and longer).
pub(super) fn window_at(
    duration: ResetDuration,
    tz: Tz,
    quarter_start_month: u32,
    anchor: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Window {
    let lattice = Lattice::new(duration, tz, quarter_start_month, anchor);
    // Index relative to the anchor's own window, so that index 0 contains
    // the anchor even in the rare zones where the anchor's local date and
    // the lattice disagree.
    let anchor_raw = lattice.raw_index(anchor);
    let raw = lattice.raw_index(now);
    Window {
        index: raw.saturating_sub(anchor_raw),
        start: lattice.boundary(raw),
        end: lattice.boundary(raw.saturating_add(1)),
    }
}

impl Lattice {
    fn new(
        duration: ResetDuration,
        tz: Tz,
        quarter_start_month: u32,
        anchor: DateTime<Utc>,
    ) -> Lattice {
        let local = anchor.with_timezone(&tz).date_naive();
        let count = i64::from(duration.count());
        let (grain, base, unit_length) = match duration.unit() {
            DurationUnit::Week => {
                // The Monday on or before the anchor's local date.
                let monday = day_number(local) - i64::from(local.weekday().num_days_from_monday());
                (Grain::Days, monday, 7)
            }
            DurationUnit::Month => (Grain::Months, month_number(local), 1),
            DurationUnit::Quarter => {
                // Quarters start in quarter_start_month and every third month
                // after it; step back to the latest such month.
                let first = i64::from(quarter_start_month.clamp(1, 12)) - 1;
                let month = month_number(local);
                (Grain::Months, month - (month - first).rem_euclid(3), 3)
            }
            DurationUnit::Year => {
                let month = month_number(local);
                (Grain::Months, month - month.rem_euclid(12), 12)
            }
            // Day, and the sub-day units the caller never sends here.
            _ => (Grain::Days, day_number(local), 1),
        };
        Lattice {
            tz,
            grain,
            base,
            period: count * unit_length,
        }
    }

    /// The lattice index whose window contains `instant`.
    fn raw_index(&self, instant: DateTime<Utc>) -> i64 {
        let mut index = self.estimate(instant);
        for _ in 0..MAX_CORRECTION_STEPS {
            if instant < self.boundary(index) {
                index = index.saturating_sub(1);
            } else if instant >= self.boundary(index.saturating_add(1)) {
                index = index.saturating_add(1);
            } else {
                break;
            }
        }
        index
    }

    /// The index from the instant's local date alone: exact except when DST
    /// makes local dates repeat around midnight.
    fn estimate(&self, instant: DateTime<Utc>) -> i64 {
        let local = instant.with_timezone(&self.tz).date_naive();
        let units = match self.grain {
            Grain::Days => day_number(local),
            Grain::Months => month_number(local),
        };
        (units - self.base).div_euclid(self.period)
    }

    /// The instant at which window `index` starts.
    fn boundary(&self, index: i64) -> DateTime<Utc> {
        let saturated = if index < 0 {
            DateTime::<Utc>::MIN_UTC
        } else {
            DateTime::<Utc>::MAX_UTC
        };
        let units = index
            .checked_mul(self.period)
            .and_then(|offset| offset.checked_add(self.base));
        let date = units.and_then(|units| match self.grain {
            Grain::Days => date_from_day_number(units),
            Grain::Months => date_from_month_number(units),
        });
        date.and_then(|date| start_of_day(self.tz, date))
            .unwrap_or(saturated)
    }
}

fn day_number(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce())
}

fn date_from_day_number(days: i64) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(i32::try_from(days).ok()?)
}

fn month_number(date: NaiveDate) -> i64 {
    i64::from(date.year()) * 12 + i64::from(date.month0())
}

/// The 1st of month number `months`.
fn date_from_month_number(months: i64) -> Option<NaiveDate> {
    let year = i32::try_from(months.div_euclid(12)).ok()?;
    let month0 = u32::try_from(months.rem_euclid(12)).ok()?;
    NaiveDate::from_ymd_opt(year, month0 + 1, 1)
}

/// The first instant of local `date` in `tz`: its midnight, or when
/// midnight falls in a DST gap the instant the gap ends, or when midnight
/// happens twice the earlier one. `None` only outside chrono's range.
pub(super) fn start_of_day(tz: Tz, date: NaiveDate) -> Option<DateTime<Utc>> {
    earliest_at_or_after(tz, date.and_time(chrono::NaiveTime::MIN))
}

/// The earliest instant whose local time in `tz` is at or after `local`.
fn earliest_at_or_after(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        MappedLocalTime::Single(instant) => Some(instant.with_timezone(&Utc)),
        MappedLocalTime::Ambiguous(first, second) => Some(first.min(second).with_timezone(&Utc)),
        MappedLocalTime::None => end_of_gap(tz, local),
    }
}

/// `local` does not exist in `tz` (clocks jumped over it). The answer is
/// the transition instant, the smallest UTC second whose local time is at or
/// after `local`. chrono-tz does not expose transitions, so binary search:
/// ±17 h around `local` read as UTC surely contains it, and local time only
/// moves forward there (a gap and a fall-back within hours of each other do
/// not occur). About 17 steps, and only on days with a gap at midnight.
fn end_of_gap(tz: Tz, local: NaiveDateTime) -> Option<DateTime<Utc>> {
    let wall = local.and_utc().timestamp();
    let is_after = |seconds: i64| -> Option<bool> {
        let instant = DateTime::<Utc>::from_timestamp(seconds, 0)?;
        Some(tz.from_utc_datetime(&instant.naive_utc()).naive_local() >= local)
    };
    // Invariant: is_after(low) is false and is_after(high) is true.
    let mut low = wall.checked_sub(MAX_OFFSET_SECONDS)?;
    let mut high = wall.checked_add(MAX_OFFSET_SECONDS)?;
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if is_after(middle)? {
            high = middle;
        } else {
            low = middle;
        }
    }
    DateTime::<Utc>::from_timestamp(high, 0)
}
