//! Per-limit views derived from a policy and an instant: the window layout of
//! a budget or rate-limit half, and a budget's effective limit under its
//! override. Shared by management reads and the policy engine. Pure.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::money::Money;
use crate::profile::{Budget, Policy};
use crate::windows::{DEFAULT_QUARTER_START_MONTH, ResetDuration, Window, WindowSpec};

/// The window layout for a duration string under a policy's calendar settings.
pub fn spec_for(
    policy: &Policy,
    duration: &str,
    quarter_start_month: Option<u32>,
) -> Option<WindowSpec> {
    let d = ResetDuration::parse(duration).ok()?;
    let tz: Tz = policy.timezone.parse().unwrap_or(Tz::UTC);
    WindowSpec::new(
        d,
        policy.calendar_aligned,
        tz,
        quarter_start_month.unwrap_or(DEFAULT_QUARTER_START_MONTH),
    )
    .ok()
}

/// A budget's window layout.
pub fn budget_spec(policy: &Policy, b: &Budget) -> Option<WindowSpec> {
    spec_for(
        policy,
        &b.reset_duration,
        b.reset_config.map(|r| r.quarter_start_month),
    )
}

/// The window a budget is in at `now` (anchored at its creation, or at
/// `fallback_anchor` when it has none).
pub fn budget_window(
    policy: &Policy,
    b: &Budget,
    fallback_anchor: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Window> {
    let spec = budget_spec(policy, b)?;
    Some(spec.window_at(b.created_at.unwrap_or(fallback_anchor), now))
}

/// What an override looks like at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverrideView {
    pub amount: Money,
    /// `None` for `forever`.
    pub cycles_total: Option<u32>,
    pub cycles_remaining: Option<u32>,
    pub in_force: bool,
}

/// The override of `b` as seen at `now`, if it has one.
pub fn override_view(policy: &Policy, b: &Budget, now: DateTime<Utc>) -> Option<OverrideView> {
    let o = b.override_.as_ref()?;
    let (remaining, in_force) = match o.cycles {
        None => (None, true),
        Some(total) => {
            let index = budget_window(policy, b, now, now).map_or(o.set_window_index, |w| w.index);
            let left = crate::windows::cycles_remaining(o.set_window_index, total, index);
            (Some(left), left > 0)
        }
    };
    Some(OverrideView {
        amount: o.amount,
        cycles_total: o.cycles,
        cycles_remaining: remaining,
        in_force,
    })
}

/// `max_limit` plus the override's amount while it is in force.
pub fn effective_max_limit(policy: &Policy, b: &Budget, now: DateTime<Utc>) -> Money {
    match override_view(policy, b, now) {
        Some(v) if v.in_force => b.max_limit.saturating_add(v.amount),
        _ => b.max_limit,
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::profile::BudgetOverride;

    fn daily(created: DateTime<Utc>, cycles: Option<u32>) -> (Policy, Budget) {
        let b = Budget {
            id: "b".into(),
            max_limit: Money(10),
            reset_duration: "1d".into(),
            reset_config: None,
            created_at: Some(created),
            override_: Some(BudgetOverride {
                amount: Money(5),
                cycles,
                set_window_index: 0,
            }),
        };
        (Policy::empty(), b)
    }

    #[test]
    fn cycles_override_ends_by_itself() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let (p, b) = daily(t0, Some(2));
        assert_eq!(effective_max_limit(&p, &b, t0), Money(15));
        assert_eq!(override_view(&p, &b, t0).unwrap().cycles_remaining, Some(2));
        assert_eq!(
            effective_max_limit(&p, &b, t0 + Duration::days(1)),
            Money(15)
        );
        assert_eq!(
            override_view(&p, &b, t0 + Duration::days(1))
                .unwrap()
                .cycles_remaining,
            Some(1)
        );
        assert_eq!(
            effective_max_limit(&p, &b, t0 + Duration::days(2)),
            Money(10)
        );
        assert_eq!(
            override_view(&p, &b, t0 + Duration::days(2))
                .unwrap()
                .cycles_remaining,
            Some(0)
        );
    }

    #[test]
    fn forever_override_stays() {
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let (p, b) = daily(t0, None);
        assert_eq!(
            effective_max_limit(&p, &b, t0 + Duration::days(400)),
            Money(15)
        );
    }
}
