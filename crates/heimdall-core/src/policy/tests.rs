//! The policy engine under an injected clock: identity errors, model rules,
//! the choice of the governing copy, reservations under concurrency, windows
//! and overrides, denial types and messages.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::copy::{CopySource, UserCopy};
use crate::keys::hash_value;
use crate::profile::{Policy, ProfileCreate, validate_create};

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
}

fn policy(v: serde_json::Value) -> Policy {
    let mut obj = v;
    obj["name"] = json!("p");
    let req: ProfileCreate = serde_json::from_value(obj).unwrap();
    let mut p = validate_create(req, t0()).unwrap().policy;
    let mut n = 0;
    p.assign_ids(None, &mut || {
        n += 1;
        n
    });
    p.anchor_unset(t0());
    p
}

fn copy(id: i64, user: &str, name: &str, p: Policy, assigned: chrono::DateTime<Utc>) -> UserCopy {
    UserCopy {
        id,
        user_id: user.into(),
        parent_profile_id: id,
        name: name.into(),
        is_active: true,
        expires_at: None,
        source: CopySource::Direct,
        role_id: None,
        assigned_at: assigned,
        policy: p,
        created_at: assigned,
        updated_at: assigned,
    }
}

fn key(id: &str, user: &str, value: &str) -> KeyRecord {
    KeyRecord {
        id: id.into(),
        name: format!("key {id}"),
        user_id: user.into(),
        hash: hash_value(value),
        previous_hash: None,
        previous_valid_until: None,
        is_active: true,
        expires_at: None,
    }
}

fn demand<'a>(provider: &'a str, model: &'a str) -> Demand<'a> {
    Demand {
        provider,
        model,
        tokens: 100,
        cost: Some(1_000_000),
        deny_unpriced: false,
    }
}

fn caller(s: &Snapshot, value: &str) -> Caller {
    identify(s, Some(&key_hash(value)), t0()).unwrap()
}

fn openai_all() -> serde_json::Value {
    json!([{"provider_name": "openai", "all_models_allowed": true}])
}

#[test]
fn identity_errors_in_order() {
    let mut k = key("k1", "u1", "sk-bf-a");
    let c = copy(
        1,
        "u1",
        "A",
        policy(json!({"provider_configs": openai_all()})),
        t0(),
    );
    let s = Snapshot::build(std::slice::from_ref(&k), std::slice::from_ref(&c));
    assert_eq!(
        identify(&s, None, t0()).unwrap_err(),
        Denial::VirtualKeyRequired
    );
    assert_eq!(
        identify(&s, Some(&key_hash("sk-bf-b")), t0()).unwrap_err(),
        Denial::VirtualKeyNotFound
    );
    assert!(identify(&s, Some(&key_hash("sk-bf-a")), t0()).is_ok());

    k.is_active = false;
    k.expires_at = Some(t0() - Duration::hours(1));
    let s = Snapshot::build(std::slice::from_ref(&k), std::slice::from_ref(&c));
    let d = identify(&s, Some(&key_hash("sk-bf-a")), t0()).unwrap_err();
    assert!(
        matches!(d, Denial::KeyInactive(_)),
        "inactive is checked before expired"
    );
    assert_eq!(d.status(), 403);
    assert!(d.message().contains("inactive"));

    k.is_active = true;
    let s = Snapshot::build(std::slice::from_ref(&k), std::slice::from_ref(&c));
    let d = identify(&s, Some(&key_hash("sk-bf-a")), t0()).unwrap_err();
    assert!(d.message().contains("expired"));

    k.expires_at = None;
    let mut expired = c;
    expired.expires_at = Some(t0());
    let s = Snapshot::build(&[k], &[expired]);
    assert_eq!(
        identify(&s, Some(&key_hash("sk-bf-a")), t0()).unwrap_err(),
        Denial::NoActiveProfile
    );
}

#[test]
fn rotated_value_works_only_during_grace() {
    let mut k = key("k1", "u1", "sk-bf-new");
    k.previous_hash = Some(hash_value("sk-bf-old"));
    k.previous_valid_until = Some(t0() + Duration::hours(1));
    let c = copy(
        1,
        "u1",
        "A",
        policy(json!({"provider_configs": openai_all()})),
        t0(),
    );
    let s = Snapshot::build(&[k], &[c]);
    assert!(identify(&s, Some(&key_hash("sk-bf-old")), t0()).is_ok());
    assert!(identify(&s, Some(&key_hash("sk-bf-new")), t0()).is_ok());
    let later = t0() + Duration::hours(2);
    assert_eq!(
        identify(&s, Some(&key_hash("sk-bf-old")), later).unwrap_err(),
        Denial::VirtualKeyNotFound
    );
}

#[test]
fn provider_and_model_rules() {
    let p = policy(json!({"provider_configs": [
        {"provider_name": "openai", "allowed_models": ["gpt-4o-mini", "regex:gpt-4\\.1.*"]}
    ]}));
    let s = Snapshot::build(&[key("k", "u", "sk-bf-x")], &[copy(1, "u", "A", p, t0())]);
    let c = caller(&s, "sk-bf-x");
    let store = CounterStore::default();
    assert!(admit(&c, &demand("openai", "gpt-4o-mini"), &store, None, t0()).is_ok());
    assert!(
        admit(&c, &demand("openai", "GPT-4.1-nano"), &store, None, t0()).is_ok(),
        "regex is case-insensitive"
    );
    let d = admit(&c, &demand("openai", "GPT-4o-mini"), &store, None, t0()).unwrap_err();
    assert_eq!(
        d.kind(),
        "model_blocked",
        "exact entries are case-sensitive"
    );
    let d = admit(&c, &demand("anthropic", "claude"), &store, None, t0()).unwrap_err();
    assert_eq!(d.kind(), "provider_blocked");
    assert_eq!(d.status(), 403);
}

#[test]
fn earliest_granting_copy_governs_and_the_next_takes_over_when_it_is_full() {
    let small = policy(
        json!({"provider_configs": openai_all(), "rate_limit": {"request_max_limit": 1, "request_reset_duration": "1h"}}),
    );
    let big = policy(
        json!({"provider_configs": openai_all(), "rate_limit": {"request_max_limit": 5, "request_reset_duration": "1h"}}),
    );
    let s = Snapshot::build(
        &[key("k", "u", "sk-bf-x")],
        &[
            copy(2, "u", "Big", big, t0() + Duration::seconds(1)),
            copy(1, "u", "Small", small, t0()),
        ],
    );
    let c = caller(&s, "sk-bf-x");
    let store = CounterStore::default();
    let a = admit(&c, &demand("openai", "m"), &store, None, t0()).unwrap();
    assert_eq!(&*a.copy_name, "Small");
    a.reservation.settle(
        Settlement {
            success: true,
            tokens: 1,
            cost: 0,
        },
        t0(),
    );
    let b = admit(&c, &demand("openai", "m"), &store, None, t0()).unwrap();
    assert_eq!(&*b.copy_name, "Big");
}

#[test]
fn error_of_the_earliest_granting_copy_is_returned() {
    let a = policy(
        json!({"provider_configs": openai_all(), "rate_limit": {"request_max_limit": 1, "request_reset_duration": "1h"}}),
    );
    let b = policy(
        json!({"provider_configs": openai_all(), "budgets": [{"max_limit": 0.000001, "reset_duration": "1d"}]}),
    );
    let s = Snapshot::build(
        &[key("k", "u", "sk-bf-x")],
        &[
            copy(1, "u", "A", a, t0()),
            copy(2, "u", "B", b, t0() + Duration::seconds(1)),
        ],
    );
    let c = caller(&s, "sk-bf-x");
    let store = CounterStore::default();
    let first = admit(&c, &demand("openai", "m"), &store, None, t0()).unwrap();
    first.reservation.settle(
        Settlement {
            success: true,
            tokens: 1,
            cost: 0,
        },
        t0(),
    );
    // B admits once (its budget is not used yet) ...
    let second = admit(&c, &demand("openai", "m"), &store, None, t0()).unwrap();
    second.reservation.settle(
        Settlement {
            success: true,
            tokens: 1,
            cost: 5_000,
        },
        t0(),
    );
    // ... then both refuse, and A's (the earliest) error wins.
    let d = admit(&c, &demand("openai", "m"), &store, None, t0()).unwrap_err();
    assert_eq!(d.kind(), "request_limited");
    assert!(d.message().contains("profile \"A\""), "{}", d.message());
}

#[test]
fn concurrent_requests_against_a_request_limit_admit_exactly_k() {
    let p = policy(
        json!({"provider_configs": openai_all(), "rate_limit": {"request_max_limit": 10, "request_reset_duration": "1h"}}),
    );
    let s = Arc::new(Snapshot::build(
        &[key("k", "u", "sk-bf-x")],
        &[copy(1, "u", "A", p, t0())],
    ));
    let store = Arc::new(CounterStore::default());
    let admitted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let threads: Vec<_> = (0..100)
        .map(|_| {
            let (s, store, admitted) = (s.clone(), store.clone(), admitted.clone());
            std::thread::spawn(move || {
                let c = caller(&s, "sk-bf-x");
                if let Ok(a) = admit(&c, &demand("openai", "m"), &store, None, t0()) {
                    admitted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    std::thread::yield_now();
                    a.reservation.settle(
                        Settlement {
                            success: true,
                            tokens: 10,
                            cost: 0,
                        },
                        t0(),
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(admitted.load(std::sync::atomic::Ordering::SeqCst), 10);
}

#[test]
fn budget_spending_stops_at_the_limit_under_concurrency() {
    // $1 budget, each request estimated at 3 cents and costing 2 cents.
    let p = policy(
        json!({"provider_configs": openai_all(), "budgets": [{"max_limit": 1.0, "reset_duration": "1d"}]}),
    );
    let s = Arc::new(Snapshot::build(
        &[key("k", "u", "sk-bf-x")],
        &[copy(1, "u", "A", p, t0())],
    ));
    let store = Arc::new(CounterStore::default());
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let (s, store) = (s.clone(), store.clone());
            std::thread::spawn(move || {
                let c = caller(&s, "sk-bf-x");
                let mut d = demand("openai", "m");
                d.cost = Some(30_000_000);
                let mut n = 0;
                while let Ok(a) = admit(&c, &d, &store, None, t0()) {
                    a.reservation.settle(
                        Settlement {
                            success: true,
                            tokens: 1,
                            cost: 20_000_000,
                        },
                        t0(),
                    );
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: i64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let limit_id = s.user("u").unwrap().copies[0].limits[0].limit_id.clone();
    let used = store
        .get(&limit_id.to_string(), crate::copy::CounterKind::Budget)
        .unwrap()
        .read()
        .used;
    assert_eq!(used, total * 20_000_000);
    assert!(used >= 1_000_000_000, "spends up to the limit: {used}");
    assert!(
        used <= 1_000_000_000 + 20_000_000,
        "overshoot at most one request: {used}"
    );
}

#[test]
fn windows_reset_usage_and_reservations_survive_the_boundary() {
    let p = policy(
        json!({"provider_configs": openai_all(), "rate_limit": {"request_max_limit": 1, "request_reset_duration": "1h"}}),
    );
    let s = Snapshot::build(&[key("k", "u", "sk-bf-x")], &[copy(1, "u", "A", p, t0())]);
    let c = caller(&s, "sk-bf-x");
    let store = CounterStore::default();
    let a = admit(&c, &demand("openai", "m"), &store, None, t0()).unwrap();
    assert!(
        admit(&c, &demand("openai", "m"), &store, None, t0()).is_err(),
        "the in-flight request holds the only slot"
    );
    // It settles in the next window: counted there.
    let later = t0() + Duration::minutes(61);
    a.reservation.settle(
        Settlement {
            success: true,
            tokens: 1,
            cost: 0,
        },
        later,
    );
    let d = admit(&c, &demand("openai", "m"), &store, None, later).unwrap_err();
    assert_eq!(d.kind(), "request_limited");
    assert_eq!(d.retry_after(), Some(59 * 60));
    assert!(
        d.message().contains("resets 2026-11-27T11:00:00Z"),
        "{}",
        d.message()
    );
    assert!(
        admit(
            &c,
            &demand("openai", "m"),
            &store,
            None,
            t0() + Duration::hours(2)
        )
        .is_ok()
    );
}

#[test]
fn failed_calls_do_not_count_requests_and_dropped_reservations_release() {
    let p = policy(
        json!({"provider_configs": openai_all(), "rate_limit": {"request_max_limit": 1, "request_reset_duration": "1h"}}),
    );
    let s = Snapshot::build(&[key("k", "u", "sk-bf-x")], &[copy(1, "u", "A", p, t0())]);
    let c = caller(&s, "sk-bf-x");
    let store = CounterStore::default();
    let a = admit(&c, &demand("openai", "m"), &store, None, t0()).unwrap();
    a.reservation.settle(
        Settlement {
            success: false,
            tokens: 0,
            cost: 0,
        },
        t0(),
    );
    let b = admit(&c, &demand("openai", "m"), &store, None, t0()).unwrap();
    drop(b);
    assert!(admit(&c, &demand("openai", "m"), &store, None, t0()).is_ok());
}

#[test]
fn budget_wins_over_rate_limits_and_both_rate_halves_make_rate_limited() {
    let p = policy(json!({"provider_configs": openai_all(),
        "budgets": [{"max_limit": 0.001, "reset_duration": "1d"}],
        "rate_limit": {"request_max_limit": 1, "request_reset_duration": "1m", "token_max_limit": 50, "token_reset_duration": "1m"}}));
    let s = Snapshot::build(
        &[key("k", "u", "sk-bf-x")],
        &[copy(1, "u", "Engineering", p, t0())],
    );
    let c = caller(&s, "sk-bf-x");
    let store = CounterStore::default();
    let a = admit(&c, &demand("openai", "m"), &store, None, t0()).unwrap();
    a.reservation.settle(
        Settlement {
            success: true,
            tokens: 60,
            cost: 500_000,
        },
        t0(),
    );
    let d = admit(&c, &demand("openai", "m"), &store, None, t0()).unwrap_err();
    assert_eq!(d.kind(), "rate_limited");
    assert_eq!(d.status(), 429);
    let b = admit(
        &c,
        &demand("openai", "m"),
        &store,
        None,
        t0() + Duration::minutes(1),
    )
    .unwrap();
    b.reservation.settle(
        Settlement {
            success: true,
            tokens: 1,
            cost: 600_000,
        },
        t0() + Duration::minutes(1),
    );
    let d = admit(
        &c,
        &demand("openai", "m"),
        &store,
        None,
        t0() + Duration::minutes(2),
    )
    .unwrap_err();
    assert_eq!(d.kind(), "budget_exceeded");
    assert_eq!(d.status(), 402);
    assert_eq!(
        d.message(),
        "budget exceeded: profile \"Engineering\" total 1d budget 0.0010 of 0.0010 USD used, resets 2026-11-28T09:00:00Z"
    );
}

#[test]
fn provider_limits_apply_only_to_their_provider() {
    let p = policy(json!({"provider_configs": [
        {"provider_name": "openai", "all_models_allowed": true, "rate_limit": {"request_max_limit": 1, "request_reset_duration": "1h"}},
        {"provider_name": "anthropic", "all_models_allowed": true}
    ]}));
    let s = Snapshot::build(&[key("k", "u", "sk-bf-x")], &[copy(1, "u", "A", p, t0())]);
    let c = caller(&s, "sk-bf-x");
    let store = CounterStore::default();
    admit(&c, &demand("openai", "m"), &store, None, t0())
        .unwrap()
        .reservation
        .settle(
            Settlement {
                success: true,
                ..Settlement::default()
            },
            t0(),
        );
    assert!(admit(&c, &demand("openai", "m"), &store, None, t0()).is_err());
    assert!(admit(&c, &demand("anthropic", "m"), &store, None, t0()).is_ok());
}

#[test]
fn overrides_raise_the_budget_for_their_cycles() {
    let mut p = policy(
        json!({"provider_configs": openai_all(), "budgets": [{"max_limit": 0.001, "reset_duration": "1d"}]}),
    );
    p.budgets[0].override_ = Some(crate::profile::BudgetOverride {
        amount: crate::money::Money(1_000_000),
        cycles: Some(1),
        set_window_index: 0,
    });
    let s = Snapshot::build(&[key("k", "u", "sk-bf-x")], &[copy(1, "u", "A", p, t0())]);
    let c = caller(&s, "sk-bf-x");
    let store = CounterStore::default();
    admit(&c, &demand("openai", "m"), &store, None, t0())
        .unwrap()
        .reservation
        .settle(
            Settlement {
                success: true,
                tokens: 1,
                cost: 1_500_000,
            },
            t0(),
        );
    assert!(
        admit(&c, &demand("openai", "m"), &store, None, t0()).is_ok(),
        "1.5m < 2m effective"
    );
    let next_day = t0() + Duration::days(1);
    admit(&c, &demand("openai", "m"), &store, None, next_day)
        .unwrap()
        .reservation
        .settle(
            Settlement {
                success: true,
                tokens: 1,
                cost: 1_500_000,
            },
            next_day,
        );
    assert_eq!(
        admit(&c, &demand("openai", "m"), &store, None, next_day)
            .unwrap_err()
            .kind(),
        "budget_exceeded",
        "the override lasted one window"
    );
}

#[test]
fn unpriced_models_are_denied_only_when_configured_and_budgeted() {
    let p = policy(
        json!({"provider_configs": openai_all(), "budgets": [{"max_limit": 1, "reset_duration": "1d"}]}),
    );
    let s = Snapshot::build(&[key("k", "u", "sk-bf-x")], &[copy(1, "u", "A", p, t0())]);
    let c = caller(&s, "sk-bf-x");
    let store = CounterStore::default();
    let mut d = demand("openai", "m");
    d.cost = None;
    assert!(admit(&c, &d, &store, None, t0()).is_ok());
    d.deny_unpriced = true;
    assert_eq!(
        admit(&c, &d, &store, None, t0()).unwrap_err().kind(),
        "model_unpriced"
    );
}

#[test]
fn headrooms_report_the_tightest_limits() {
    let p = policy(
        json!({"provider_configs": [{"provider_name": "openai", "all_models_allowed": true,
            "rate_limit": {"request_max_limit": 3, "request_reset_duration": "1m"}}],
        "rate_limit": {"request_max_limit": 10, "request_reset_duration": "1h", "token_max_limit": 1000, "token_reset_duration": "1h"},
        "budgets": [{"max_limit": 2, "reset_duration": "1d"}]}),
    );
    let s = Snapshot::build(&[key("k", "u", "sk-bf-x")], &[copy(1, "u", "A", p, t0())]);
    let c = caller(&s, "sk-bf-x");
    let a = admit(
        &c,
        &demand("openai", "m"),
        &CounterStore::default(),
        None,
        t0(),
    )
    .unwrap();
    let h = a.headrooms;
    assert_eq!(h.requests.unwrap().limit, 3);
    assert_eq!(h.requests.unwrap().remaining, 2);
    assert_eq!(h.requests.unwrap().reset_secs, 60);
    assert_eq!(h.tokens.unwrap().remaining, 900);
    assert_eq!(h.budget_remaining, Some(2_000_000_000 - 1_000_000));
}

#[test]
fn compiled_rules_are_shared_between_copies_with_the_same_policy() {
    let p = policy(
        json!({"provider_configs": [{"provider_name": "openai", "allowed_models": ["regex:gpt.*"]}], "budgets": [{"max_limit": 1, "reset_duration": "1d"}]}),
    );
    let copies: Vec<UserCopy> = (0..100)
        .map(|i| copy(i, &format!("u{i}"), "A", p.clone(), t0()))
        .collect();
    let keys: Vec<KeyRecord> = (0..100)
        .map(|i| key(&format!("k{i}"), &format!("u{i}"), &format!("sk-bf-{i}")))
        .collect();
    let s = Snapshot::build(&keys, &copies);
    let a = &s.user("u1").unwrap().copies[0];
    let b = &s.user("u2").unwrap().copies[0];
    assert!(Arc::ptr_eq(&a.rules, &b.rules));
    assert!(Arc::ptr_eq(&a.limits[0].def, &b.limits[0].def));
    assert_eq!(s.key_count(), 100);
}

#[test]
fn updating_one_user_replaces_its_keys_and_copies_and_leaves_the_rest() {
    let p = policy(json!({"provider_configs": openai_all()}));
    let copies: Vec<UserCopy> = (0..50)
        .map(|i| copy(i, &format!("u{i}"), "A", p.clone(), t0()))
        .collect();
    let keys: Vec<KeyRecord> = (0..50)
        .map(|i| key(&format!("k{i}"), &format!("u{i}"), &format!("sk-bf-{i}")))
        .collect();
    let mut interner = Interner::default();
    let base = Snapshot::build_with(&mut interner, &keys, &copies);

    // u7 gets a new key value and a second copy; u8 is removed.
    let mut rotated = key("k7", "u7", "sk-bf-7-new");
    rotated.previous_hash = Some(hash_value("sk-bf-7"));
    rotated.previous_valid_until = Some(t0() + Duration::hours(1));
    let changes = vec![
        (
            "u7".to_string(),
            UserRecords {
                keys: vec![rotated],
                copies: vec![
                    copy(7, "u7", "A", p.clone(), t0()),
                    copy(100, "u7", "B", p.clone(), t0() + Duration::seconds(1)),
                ],
            },
        ),
        ("u8".to_string(), UserRecords::default()),
    ];
    let next = base.with_users(&mut interner, &changes);

    assert!(identify(&next, Some(&key_hash("sk-bf-7-new")), t0()).is_ok());
    assert!(
        identify(&next, Some(&key_hash("sk-bf-7")), t0()).is_ok(),
        "old value in its grace"
    );
    assert!(identify(&next, Some(&key_hash("sk-bf-7")), t0() + Duration::hours(2)).is_err());
    assert_eq!(next.user("u7").unwrap().copies.len(), 2);
    assert_eq!(
        identify(&next, Some(&key_hash("sk-bf-8")), t0()).unwrap_err(),
        Denial::VirtualKeyNotFound
    );
    assert!(next.user("u8").is_none());
    assert!(identify(&next, Some(&key_hash("sk-bf-9")), t0()).is_ok());
    assert_eq!(next.key_count(), 50, "49 current values and one old value");
    // The base is untouched, and rules stay shared with it.
    assert!(identify(&base, Some(&key_hash("sk-bf-8")), t0()).is_ok());
    assert!(Arc::ptr_eq(
        &next.user("u7").unwrap().copies[1].rules,
        &base.user("u9").unwrap().copies[0].rules
    ));
}
