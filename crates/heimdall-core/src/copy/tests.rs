//! Propagation: matched budgets and rate-limit halves keep id, anchor,
//! override and (unless reset) usage; everything else starts fresh.

use chrono::{Duration, TimeZone, Utc};

use super::*;
use crate::money::Money;
use crate::profile::{BudgetOverride, ProviderConfig};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn budget(id: &str, dollars: i64, dur: &str) -> Budget {
    Budget {
        id: id.into(),
        max_limit: Money(dollars * 1_000_000_000),
        reset_duration: dur.into(),
        reset_config: None,
        created_at: None,
        override_: None,
    }
}

fn copy_policy() -> Policy {
    let mut b = budget("b-day", 10, "1d");
    b.created_at = Some(t0());
    b.override_ = Some(BudgetOverride {
        amount: Money(5),
        cycles: Some(2),
        set_window_index: 0,
    });
    let mut w = budget("b-week", 50, "1w");
    w.created_at = Some(t0());
    Policy {
        budgets: vec![b, w],
        rate_limit: Some(RateLimit {
            id: "rl".into(),
            token_max_limit: Some(100),
            token_reset_duration: Some("1h".into()),
            request_max_limit: Some(10),
            request_reset_duration: Some("1m".into()),
            token_created_at: Some(t0()),
            request_created_at: Some(t0()),
        }),
        provider_configs: vec![ProviderConfig {
            id: 7,
            provider_name: "openai".into(),
            all_models_allowed: true,
            allowed_models: vec![],
            budgets: vec![Budget {
                created_at: Some(t0()),
                ..budget("p-day", 1, "1d")
            }],
            rate_limit: None,
        }],
        ..Policy::empty()
    }
}

#[test]
fn matched_budgets_keep_id_anchor_and_override() {
    let now = t0() + Duration::days(3);
    let template = Policy {
        budgets: vec![budget("t1", 20, "1d"), budget("t2", 1, "1M")],
        ..Policy::empty()
    };
    let out = propagate(
        &copy_policy(),
        &template,
        &[PropagateField::Budgets],
        false,
        now,
    );
    assert!(out.changed);
    assert!(out.reset.is_empty());
    let day = &out.policy.budgets[0];
    assert_eq!(day.id, "b-day");
    assert_eq!(day.max_limit, Money(20_000_000_000));
    assert_eq!(day.created_at, Some(t0()));
    assert!(day.override_.is_some());
    let month = &out.policy.budgets[1];
    assert_ne!(month.id, "t2");
    assert_ne!(month.id, "b-week");
    assert_eq!(month.created_at, Some(now));
    // Fields not named stay as they were.
    assert_eq!(out.policy.rate_limit, copy_policy().rate_limit);
}

#[test]
fn reset_usage_lists_the_matched_counters() {
    let template = Policy {
        budgets: vec![budget("t1", 10, "1d")],
        ..Policy::empty()
    };
    let out = propagate(
        &copy_policy(),
        &template,
        &[PropagateField::Budgets],
        true,
        t0(),
    );
    assert_eq!(out.reset, vec![("b-day".to_string(), CounterKind::Budget)]);
    assert!(
        out.policy.budgets[0].override_.is_some(),
        "overrides always survive"
    );
}

#[test]
fn rate_limit_halves_match_separately() {
    let now = t0() + Duration::hours(5);
    let template = Policy {
        rate_limit: Some(RateLimit {
            id: "x".into(),
            token_max_limit: Some(500),
            token_reset_duration: Some("1h".into()),
            request_max_limit: Some(10),
            request_reset_duration: Some("1d".into()),
            token_created_at: None,
            request_created_at: None,
        }),
        ..Policy::empty()
    };
    let out = propagate(
        &copy_policy(),
        &template,
        &[PropagateField::RateLimit],
        true,
        now,
    );
    let rl = out.policy.rate_limit.unwrap();
    assert_eq!(rl.id, "rl");
    assert_eq!(rl.token_created_at, Some(t0()));
    assert_eq!(rl.request_created_at, Some(now));
    assert_eq!(out.reset, vec![("rl".to_string(), CounterKind::Tokens)]);
    assert_eq!(
        out.recreated,
        vec![("rl".to_string(), CounterKind::Requests)],
        "the request half changed duration: its counter starts over"
    );

    let removed = propagate(
        &copy_policy(),
        &Policy::empty(),
        &[PropagateField::RateLimit],
        false,
        now,
    );
    assert_eq!(removed.policy.rate_limit, None);
}

#[test]
fn provider_configs_keep_ids_and_their_budgets() {
    let template = Policy {
        provider_configs: vec![
            ProviderConfig {
                id: 99,
                provider_name: "openai".into(),
                all_models_allowed: false,
                allowed_models: vec!["gpt-4o".into()],
                budgets: vec![budget("x", 2, "1d")],
                rate_limit: None,
            },
            ProviderConfig {
                id: 100,
                provider_name: "anthropic".into(),
                all_models_allowed: true,
                allowed_models: vec![],
                budgets: vec![],
                rate_limit: None,
            },
        ],
        ..Policy::empty()
    };
    let out = propagate(
        &copy_policy(),
        &template,
        &[PropagateField::ProviderConfigs],
        false,
        t0(),
    );
    assert_eq!(out.policy.provider_configs[0].id, 7);
    assert_eq!(out.policy.provider_configs[0].budgets[0].id, "p-day");
    assert_eq!(
        out.policy.provider_configs[0].allowed_models,
        vec!["gpt-4o"]
    );
    assert_eq!(
        out.policy.provider_configs[1].id, 0,
        "the store assigns new config ids"
    );
}

#[test]
fn an_identical_template_changes_nothing() {
    let copy = copy_policy();
    let template = copy.without_ids();
    let out = propagate(
        &copy,
        &template,
        &[
            PropagateField::Budgets,
            PropagateField::RateLimit,
            PropagateField::ProviderConfigs,
            PropagateField::Calendar,
        ],
        false,
        t0(),
    );
    assert!(!out.changed);
    assert_eq!(out.policy, copy);
}

#[test]
fn fields_are_validated() {
    assert!(parse_fields(&[]).is_err());
    assert!(parse_fields(&["name".into()]).is_err());
    assert_eq!(
        parse_fields(&["budgets".into(), "calendar".into(), "budgets".into()]).unwrap(),
        vec![PropagateField::Budgets, PropagateField::Calendar]
    );
}

#[test]
fn only_halves_under_a_kept_id_are_recreated() {
    let template = Policy {
        rate_limit: Some(RateLimit {
            id: "x".into(),
            token_max_limit: Some(100),
            token_reset_duration: Some("1h".into()),
            request_max_limit: Some(10),
            request_reset_duration: Some("1m".into()),
            token_created_at: None,
            request_created_at: None,
        }),
        ..Policy::empty()
    };
    // Everything matches: nothing is re-created, with or without reset.
    let out = propagate(
        &copy_policy(),
        &template,
        &[PropagateField::RateLimit],
        false,
        t0(),
    );
    assert!(out.recreated.is_empty());
    assert!(out.reset.is_empty());
    // A copy without a rate limit gets a new id: nothing old to clear.
    let bare = Policy {
        rate_limit: None,
        ..copy_policy()
    };
    let out = propagate(&bare, &template, &[PropagateField::RateLimit], true, t0());
    assert!(out.recreated.is_empty());
    assert!(out.reset.is_empty());
    assert_ne!(out.policy.rate_limit.unwrap().id, "rl");
}
