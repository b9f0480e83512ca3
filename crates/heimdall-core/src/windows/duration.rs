//! Reset durations (`1d`, `2w`, `3M`, ...): parsing, validation and the
//! canonical string form.
//!
//! This file only knows the syntax and the nominal length of a duration. It
//! must not decide where a window starts or ends (that is `rolling.rs` and
//! `calendar.rs`), and it must not know about budgets or counters.

use std::fmt;
use std::str::FromStr;

use super::WindowError;

/// Largest count accepted before a unit. Anything bigger is almost surely a
/// typo, and keeping it small keeps every later multiplication far from
/// overflow.
pub const MAX_COUNT: u32 = 100_000;

/// Number of decimal digits of [`MAX_COUNT`].
const MAX_COUNT_DIGITS: usize = 6;

/// Longest fixed-length duration: 100 years of 365 days, in seconds.
pub const MAX_SECONDS: i64 = 100 * 365 * SECONDS_PER_DAY;

/// Longest month-based duration: 100 years of 12 months.
pub const MAX_MONTHS: i64 = 100 * 12;

const SECONDS_PER_DAY: i64 = 86_400;

/// Why a reset duration string was refused. Each reason is worded so that it
/// can be shown as is in a 400 response after the offending input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DurationProblem {
    #[error("it is empty")]
    Empty,
    #[error("it must start with a count of decimal digits, without sign or spaces")]
    MissingCount,
    #[error("the count must be followed by a unit (s, m, h, d, w, M, Q, Y)")]
    MissingUnit,
    #[error("unknown unit; expected one of s, m, h, d, w, M, Q, Y (case-sensitive)")]
    UnknownUnit,
    #[error("the count must not have leading zeros")]
    LeadingZero,
    #[error("the count must be at least 1")]
    ZeroCount,
    #[error("the count must be at most 100000")]
    CountTooLarge,
    #[error("the duration must be at most 100 years")]
    TooLong,
    #[error("quarters (Q) are not allowed for rate limits")]
    QuarterNotAllowed,
}

/// The unit of a reset duration. The letters are case-sensitive: `m` is a
/// minute and `M` a month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DurationUnit {
    /// `s`
    Second,
    /// `m`
    Minute,
    /// `h`
    Hour,
    /// `d`
    Day,
    /// `w`
    Week,
    /// `M`
    Month,
    /// `Q`
    Quarter,
    /// `Y`
    Year,
}

impl DurationUnit {
    /// Every unit, shortest first.
    pub const ALL: [DurationUnit; 8] = [
        DurationUnit::Second,
        DurationUnit::Minute,
        DurationUnit::Hour,
        DurationUnit::Day,
        DurationUnit::Week,
        DurationUnit::Month,
        DurationUnit::Quarter,
        DurationUnit::Year,
    ];

    /// The letter used in duration strings.
    pub const fn symbol(self) -> char {
        match self {
            DurationUnit::Second => 's',
            DurationUnit::Minute => 'm',
            DurationUnit::Hour => 'h',
            DurationUnit::Day => 'd',
            DurationUnit::Week => 'w',
            DurationUnit::Month => 'M',
            DurationUnit::Quarter => 'Q',
            DurationUnit::Year => 'Y',
        }
    }

    /// The unit written as `symbol`, if any.
    pub fn from_symbol(symbol: &str) -> Option<DurationUnit> {
        Self::ALL
            .into_iter()
            .find(|unit| symbol.len() == 1 && symbol.starts_with(unit.symbol()))
    }

    /// Length of one unit in a rolling window, in seconds. Governance §5
    /// fixes `M` = 30 days, `Q` = 90 days and `Y` = 365 days when windows do
    /// not follow the calendar.
    pub const fn rolling_seconds(self) -> i64 {
        match self {
            DurationUnit::Second => 1,
            DurationUnit::Minute => 60,
            DurationUnit::Hour => 3_600,
            DurationUnit::Day => SECONDS_PER_DAY,
            DurationUnit::Week => 7 * SECONDS_PER_DAY,
            DurationUnit::Month => 30 * SECONDS_PER_DAY,
            DurationUnit::Quarter => 90 * SECONDS_PER_DAY,
            DurationUnit::Year => 365 * SECONDS_PER_DAY,
        }
    }

    /// Number of calendar months in one unit, for the month-based units.
    pub const fn calendar_months(self) -> Option<i64> {
        match self {
            DurationUnit::Month => Some(1),
            DurationUnit::Quarter => Some(3),
            DurationUnit::Year => Some(12),
            _ => None,
        }
    }

    /// Whether calendar alignment applies to this unit. Units shorter than a
    /// day have no calendar boundary worth aligning to (governance §5).
    pub const fn is_calendar_unit(self) -> bool {
        !matches!(
            self,
            DurationUnit::Second | DurationUnit::Minute | DurationUnit::Hour
        )
    }

    /// Whether a rate limit may use this unit (access-profiles: "units as
    /// budgets but without `Q`").
    pub const fn allowed_for_rate_limits(self) -> bool {
        !matches!(self, DurationUnit::Quarter)
    }
}

/// A reset duration: a count of at least 1 and a unit, at most 100 years
/// long in total.
///
/// Build it with [`ResetDuration::new`] or [`ResetDuration::parse`], which
/// check those bounds. The fields are public for matching; a value built by
/// hand with `count: 0` is treated as a count of 1 by the window arithmetic
/// rather than dividing by zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResetDuration {
    pub count: u32,
    pub unit: DurationUnit,
}

impl ResetDuration {
    /// Builds a duration, checking the same bounds as [`ResetDuration::parse`].
    pub fn new(count: u32, unit: DurationUnit) -> Result<ResetDuration, DurationProblem> {
        if count == 0 {
            return Err(DurationProblem::ZeroCount);
        }
        if count > MAX_COUNT {
            return Err(DurationProblem::CountTooLarge);
        }
        let too_long = match unit.calendar_months() {
            Some(months) => i64::from(count) * months > MAX_MONTHS,
            None => i64::from(count) * unit.rolling_seconds() > MAX_SECONDS,
        };
        if too_long {
            return Err(DurationProblem::TooLong);
        }
        Ok(ResetDuration { count, unit })
    }

    /// Parses a budget duration: `N` followed by one unit letter, e.g. `1d`,
    /// `90m`, `3M`.
    ///
    /// The count is plain ASCII digits: no sign, no spaces, no leading zero.
    /// Leading zeros are refused so that every accepted string is already
    /// canonical; two budgets are matched by their `reset_duration` string
    /// (propagation, duplicate check), so `01d` and `1d` must not both exist.
    pub fn parse(input: &str) -> Result<ResetDuration, WindowError> {
        Self::parse_inner(input).map_err(|reason| WindowError::InvalidDuration {
            input: input.to_owned(),
            reason,
        })
    }

    /// Parses a rate-limit duration: as [`ResetDuration::parse`], but `Q` is
    /// refused.
    pub fn parse_rate_limit(input: &str) -> Result<ResetDuration, WindowError> {
        let duration = Self::parse(input)?;
        if duration.unit.allowed_for_rate_limits() {
            Ok(duration)
        } else {
            Err(WindowError::InvalidDuration {
                input: input.to_owned(),
                reason: DurationProblem::QuarterNotAllowed,
            })
        }
    }

    fn parse_inner(input: &str) -> Result<ResetDuration, DurationProblem> {
        if input.is_empty() {
            return Err(DurationProblem::Empty);
        }
        let digits_end = input
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(input.len());
        let (digits, unit) = input.split_at(digits_end);
        if digits.is_empty() {
            return Err(DurationProblem::MissingCount);
        }
        if unit.is_empty() {
            return Err(DurationProblem::MissingUnit);
        }
        let unit = DurationUnit::from_symbol(unit).ok_or(DurationProblem::UnknownUnit)?;
        if digits.len() > 1 && digits.starts_with('0') {
            return Err(DurationProblem::LeadingZero);
        }
        // More digits than MAX_COUNT has cannot be in range; checking the
        // length first also keeps the u32 parse from overflowing.
        if digits.len() > MAX_COUNT_DIGITS {
            return Err(DurationProblem::CountTooLarge);
        }
        let count = digits
            .parse::<u32>()
            .map_err(|_| DurationProblem::MissingCount)?;
        ResetDuration::new(count, unit)
    }

    /// How many units, at least 1 (see the type's note on `count: 0`).
    pub const fn count(self) -> u32 {
        if self.count == 0 { 1 } else { self.count }
    }

    /// The unit.
    pub const fn unit(self) -> DurationUnit {
        self.unit
    }

    /// Length of one rolling window in seconds (`M` = 30 days, `Q` = 90
    /// days, `Y` = 365 days). Always positive.
    pub const fn rolling_seconds(self) -> i64 {
        self.count() as i64 * self.unit.rolling_seconds()
    }
}

/// Parses a rate-limit duration (every unit except `Q`).
pub fn parse_rate_limit_duration(input: &str) -> Result<ResetDuration, WindowError> {
    ResetDuration::parse_rate_limit(input)
}

impl fmt::Display for ResetDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.count, self.unit.symbol())
    }
}

impl FromStr for ResetDuration {
    type Err = WindowError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        ResetDuration::parse(input)
    }
}

impl TryFrom<&str> for ResetDuration {
    type Error = WindowError;

    fn try_from(input: &str) -> Result<Self, Self::Error> {
        ResetDuration::parse(input)
    }
}
