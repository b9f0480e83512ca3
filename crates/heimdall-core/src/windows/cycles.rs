//! How long a budget override stays in force, counted in windows.
//!
//! An override set during window `set_index` with `cycles: n` covers windows
//! `set_index .. set_index + n` (the current window counts as the first) and
//! then ends by itself. Everything is derived from window indexes, never
//! from a stored countdown, so every node computes the same answer without
//! coordination (governance §5). This file must not know about money or
//! about how indexes are computed.

/// How long an override lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OverrideMode {
    /// In force until removed.
    Forever,
    /// In force for this many windows, the one it was set in included.
    Cycles(u32),
}

impl OverrideMode {
    /// Whether an override set in window `set_index` applies in window
    /// `current_index`.
    pub fn in_force(self, set_index: i64, current_index: i64) -> bool {
        match self {
            OverrideMode::Forever => true,
            OverrideMode::Cycles(cycles) => cycles_remaining(set_index, cycles, current_index) > 0,
        }
    }

    /// Windows left, the current one included; `None` for `Forever`.
    pub fn remaining(self, set_index: i64, current_index: i64) -> Option<u32> {
        match self {
            OverrideMode::Forever => None,
            OverrideMode::Cycles(cycles) => {
                Some(cycles_remaining(set_index, cycles, current_index))
            }
        }
    }
}

/// Windows left for an override of `cycles` windows set in window
/// `set_index`, seen from window `current_index`, the current one included:
/// `cycles` in the window it was set, 0 once `current_index ≥ set_index +
/// cycles`.
///
/// A `current_index` before `set_index` (another node whose clock is behind)
/// reports the full count rather than more than was granted.
pub fn cycles_remaining(set_index: i64, cycles: u32, current_index: i64) -> u32 {
    // i128: set_index + cycles and the difference cannot overflow.
    let end = i128::from(set_index) + i128::from(cycles);
    let left = (end - i128::from(current_index)).clamp(0, i128::from(cycles));
    u32::try_from(left).unwrap_or(cycles)
}
