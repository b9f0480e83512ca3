//! Unit tests of the window engine: duration parsing, rolling and calendar
//! windows (several zones, DST days, month ends, leap years, quarters),
//! index stability, lazy resets and override cycles.
//!
//! Every instant is written out explicitly; nothing here reads the clock.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;

use super::*;

mod calendar_utc;
mod calendar_zones;
mod durations;
mod resets;
mod rolling;

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap_or_else(|e| panic!("bad test instant {rfc3339}: {e}"))
        .with_timezone(&Utc)
}

fn duration(text: &str) -> ResetDuration {
    ResetDuration::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn rolling(text: &str) -> WindowSpec {
    WindowSpec::rolling(duration(text))
}

fn calendar(text: &str, tz: Tz) -> WindowSpec {
    quarters(text, tz, DEFAULT_QUARTER_START_MONTH)
}

fn quarters(text: &str, tz: Tz, quarter_start_month: u32) -> WindowSpec {
    WindowSpec::new(duration(text), true, tz, quarter_start_month).unwrap_or_else(|e| panic!("{e}"))
}

/// A counter laid out by `spec` and created at `anchor`, to ask which
/// window it is in at given instants.
struct Counter {
    spec: WindowSpec,
    anchor: DateTime<Utc>,
}

impl Counter {
    fn new(spec: &WindowSpec, anchor: &str) -> Counter {
        Counter {
            spec: *spec,
            anchor: at(anchor),
        }
    }

    fn at(&self, now: &str) -> Seen {
        Seen {
            window: self.spec.window_at(self.anchor, at(now)),
            context: format!("{} anchored {}, at {now}", self.spec.duration, self.anchor),
        }
    }
}

/// The window a counter was in at one instant.
struct Seen {
    window: Window,
    context: String,
}

impl Seen {
    /// Asserts the window is number `index`, from `start` to `end`.
    #[track_caller]
    fn is(&self, index: i64, start: &str, end: &str) {
        let expected = Window {
            index,
            start: at(start),
            end: at(end),
        };
        assert_eq!(self.window, expected, "{}", self.context);
    }
}

fn problem(text: &str) -> DurationProblem {
    match ResetDuration::parse(text) {
        Err(WindowError::InvalidDuration { reason, .. }) => reason,
        other => panic!("{text:?} should be refused, got {other:?}"),
    }
}
