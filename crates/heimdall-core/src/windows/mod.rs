//! Time windows of budgets and rate limits (governance §5): which window an
//! instant falls in, when it resets, whether a stored counter has rolled
//! over, and how many cycles an override has left.
//!
//! Every answer is a pure function of (spec, anchor, now): the anchor is the
//! counter's creation instant, and `now` is passed in by the caller, so any
//! node computes the same window index for the same counter. This module
//! must not read the clock, hold counters, or do I/O.
//!
//! - Rolling windows (`calendar_aligned` false, or any duration under a
//!   day): window k = [anchor + k×len, anchor + (k+1)×len), `M` = 30 days,
//!   `Q` = 90 days, `Y` = 365 days. See `rolling.rs`.
//! - Calendar windows: N calendar units from the boundary at or before the
//!   anchor, in the owner's time zone. See `calendar.rs`.

mod calendar;
mod cycles;
mod duration;
mod rolling;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

pub use cycles::{OverrideMode, cycles_remaining};
pub use duration::{
    DurationProblem, DurationUnit, MAX_COUNT, MAX_MONTHS, MAX_SECONDS, ResetDuration,
    parse_rate_limit_duration,
};

/// Default first month of the fiscal year for `Q` windows (January).
pub const DEFAULT_QUARTER_START_MONTH: u32 = 1;

/// Errors of this module. All are input errors (HTTP 400 at the edge).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("invalid reset duration {input:?}: {reason}")]
    InvalidDuration {
        input: String,
        reason: DurationProblem,
    },
    #[error("quarter_start_month must be between 1 and 12, got {0}")]
    InvalidQuarterStartMonth(u32),
    #[error("unknown timezone {0:?}")]
    UnknownTimezone(String),
}

/// Parses an IANA time zone name (`"UTC"`, `"Europe/Berlin"`), exactly as
/// the tz database spells it.
pub fn parse_timezone(name: &str) -> Result<Tz, WindowError> {
    name.parse::<Tz>()
        .map_err(|_| WindowError::UnknownTimezone(name.to_owned()))
}

/// One window: `[start, end)`, number `index` counted from the window that
/// contains the counter's anchor (index 0). Later windows have larger
/// indexes; instants before the anchor get negative ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    pub index: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    /// When the counter resets: the end of the window (`next_reset_at`).
    pub fn next_reset_at(&self) -> DateTime<Utc> {
        self.end
    }

    /// Whether `instant` lies in `[start, end)`.
    pub fn contains(&self, instant: DateTime<Utc>) -> bool {
        self.start <= instant && instant < self.end
    }

    /// Seconds until the reset, rounded up, for `Retry-After`.
    pub fn retry_after_secs(&self, now: DateTime<Utc>) -> u64 {
        retry_after_secs(self.end, now)
    }
}

/// Whole seconds from `now` until `reset_at`, rounded up so that a client
/// waiting that long finds the window reset; 0 when `reset_at` has passed.
pub fn retry_after_secs(reset_at: DateTime<Utc>, now: DateTime<Utc>) -> u64 {
    const NANOS: i128 = 1_000_000_000;
    let nanos = (i128::from(reset_at.timestamp()) - i128::from(now.timestamp())) * NANOS
        + i128::from(reset_at.timestamp_subsec_nanos())
        - i128::from(now.timestamp_subsec_nanos());
    if nanos <= 0 {
        return 0;
    }
    let seconds = (nanos + NANOS - 1) / NANOS;
    u64::try_from(seconds).unwrap_or(u64::MAX)
}

/// How a counter's windows are laid out: the duration and, for calendar
/// alignment, the zone and the first month of the quarter year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    pub duration: ResetDuration,
    /// Calendar boundaries (true) or a rolling lattice from the anchor.
    pub calendar_aligned: bool,
    /// Zone of the calendar boundaries; unused for rolling windows.
    pub tz: Tz,
    /// 1–12; first month of the year that `Q` windows follow. Values out of
    /// range (only possible by building the struct by hand) are clamped.
    pub quarter_start_month: u32,
}

/// What a lazy reset found: the window `now` is in, and whether it differs
/// from the counter's stored one (then `used` goes to 0 and `last_reset`
/// becomes `window.start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollover {
    pub rolled_over: bool,
    pub window: Window,
}

impl WindowSpec {
    /// A validated spec.
    pub fn new(
        duration: ResetDuration,
        calendar_aligned: bool,
        tz: Tz,
        quarter_start_month: u32,
    ) -> Result<WindowSpec, WindowError> {
        if !(1..=12).contains(&quarter_start_month) {
            return Err(WindowError::InvalidQuarterStartMonth(quarter_start_month));
        }
        Ok(WindowSpec {
            duration,
            calendar_aligned,
            tz,
            quarter_start_month,
        })
    }

    /// A rolling spec (zone and quarter month are then irrelevant).
    pub fn rolling(duration: ResetDuration) -> WindowSpec {
        WindowSpec {
            duration,
            calendar_aligned: false,
            tz: Tz::UTC,
            quarter_start_month: DEFAULT_QUARTER_START_MONTH,
        }
    }

    /// Whether windows follow the calendar: alignment is on and the unit is
    /// a day or longer (shorter durations ignore alignment).
    pub fn uses_calendar(&self) -> bool {
        self.calendar_aligned && self.duration.unit().is_calendar_unit()
    }

    /// The window containing `now` for a counter created at `anchor`.
    pub fn window_at(&self, anchor: DateTime<Utc>, now: DateTime<Utc>) -> Window {
        if self.uses_calendar() {
            calendar::window_at(
                self.duration,
                self.tz,
                self.quarter_start_month,
                anchor,
                now,
            )
        } else {
            rolling::window_at(self.duration.rolling_seconds(), anchor, now)
        }
    }

    /// When the window containing `now` ends.
    pub fn next_reset_at(&self, anchor: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
        self.window_at(anchor, now).end
    }

    /// Lazy reset from the stored `last_reset` (start of the counter's
    /// window, or its anchor if it never reset).
    ///
    /// Compares windows by their start rather than by a stored index: after
    /// the owner switches alignment or zone the old index means nothing, but
    /// the old `last_reset` still lies in exactly one window of the new
    /// layout, so usage is kept until the next new boundary (governance §5,
    /// "switching alignment on keeps the current usage"). A `now` behind the
    /// stored window (clock skew) never rolls back.
    pub fn roll_over(
        &self,
        anchor: DateTime<Utc>,
        last_reset: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Rollover {
        let stored = self.window_at(anchor, last_reset);
        let window = self.window_at(anchor, now);
        Rollover {
            rolled_over: window.start > stored.start,
            window,
        }
    }

    /// Lazy reset from a stored window index. Only valid while the spec is
    /// unchanged since the index was stored; prefer
    /// [`WindowSpec::roll_over`] when the spec may have changed.
    pub fn roll_over_from_index(
        &self,
        anchor: DateTime<Utc>,
        stored_index: i64,
        now: DateTime<Utc>,
    ) -> Rollover {
        let window = self.window_at(anchor, now);
        Rollover {
            rolled_over: window.index > stored_index,
            window,
        }
    }
}
