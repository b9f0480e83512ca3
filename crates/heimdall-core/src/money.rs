//! Money as integer nano-dollars. Limits and counters never use floating point,
//! so that sums are exact and every node computes the same answer; dollars as
//! `f64` exist only at the wire boundary.

use serde::{Deserialize, Serialize};

/// An amount of US dollars in nano-dollars (1e-9 USD).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Money(pub i64);

/// The largest amount accepted from the wire: one billion dollars. It keeps
/// every sum of a few thousand such amounts far from `i64` overflow.
pub const MAX_DOLLARS: f64 = 1e9;

impl Money {
    pub const ZERO: Money = Money(0);

    /// Converts dollars from the wire, rounding to the nearest nano-dollar.
    /// Returns `None` for values that are not finite or exceed [`MAX_DOLLARS`].
    pub fn from_dollars(dollars: f64) -> Option<Money> {
        if !dollars.is_finite() || dollars.abs() > MAX_DOLLARS {
            return None;
        }
        Some(Money((dollars * 1e9).round() as i64))
    }

    pub fn as_dollars(self) -> f64 {
        self.0 as f64 / 1e9
    }

    pub fn nanos(self) -> i64 {
        self.0
    }

    pub fn saturating_add(self, other: Money) -> Money {
        Money(self.0.saturating_add(other.0))
    }

    pub fn saturating_sub(self, other: Money) -> Money {
        Money(self.0.saturating_sub(other.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_round_trip_exactly_for_cents() {
        for cents in [1_i64, 99, 1000, 123_456] {
            let d = cents as f64 / 100.0;
            let m = Money::from_dollars(d).unwrap();
            assert_eq!(m.0, cents * 10_000_000);
            assert_eq!(m.as_dollars(), d);
        }
    }

    #[test]
    fn rejects_non_finite_and_huge() {
        assert!(Money::from_dollars(f64::NAN).is_none());
        assert!(Money::from_dollars(f64::INFINITY).is_none());
        assert!(Money::from_dollars(2e9).is_none());
    }
}
