//! The index builder: a paged build gives the same index as the one-shot
//! build, shard counts keep hash tables well filled, and limit and key ids
//! round-trip whether or not they are UUIDs.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

use super::snapshot::{key_shard, shard_count};
use super::*;
use crate::copy::{CopySource, CounterKind, UserCopy};
use crate::keys::hash_value;
use crate::profile::{Policy, ProfileCreate, validate_create};

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).unwrap()
}

fn policy() -> Policy {
    let req: ProfileCreate = serde_json::from_value(json!({
        "name": "p",
        "provider_configs": [{"provider_name": "openai", "all_models_allowed": true}],
        "budgets": [{"max_limit": 10.0, "reset_duration": "1d"}],
        "rate_limit": {"request_max_limit": 100, "request_reset_duration": "1m"},
    }))
    .unwrap();
    let mut p = validate_create(req, t0()).unwrap().policy;
    let mut n = 0;
    p.assign_ids(None, &mut || {
        n += 1;
        n
    });
    p.anchor_unset(t0());
    p
}

fn copy(id: i64, user: &str, assigned: chrono::DateTime<Utc>) -> UserCopy {
    UserCopy {
        id,
        user_id: user.into(),
        parent_profile_id: id % 3,
        name: format!("template {}", id % 3),
        is_active: id % 5 != 0,
        expires_at: None,
        source: CopySource::Direct,
        role_id: None,
        assigned_at: assigned,
        policy: policy(),
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

/// Some users with one copy and key, some with two of each, one with a
/// rotated key in its grace, one with a copy and no key.
fn world() -> (Vec<KeyRecord>, Vec<UserCopy>) {
    let mut keys = Vec::new();
    let mut copies = Vec::new();
    for u in 0..40i64 {
        let uid = if u % 2 == 0 {
            uuid::Uuid::new_v4().to_string()
        } else {
            format!("user-{u}")
        };
        copies.push(copy(u * 10, &uid, t0() + Duration::seconds(u)));
        if u % 7 == 0 {
            copies.push(copy(u * 10 + 1, &uid, t0()));
        }
        if u == 39 {
            continue;
        }
        let mut k = key(&uuid::Uuid::new_v4().to_string(), &uid, &format!("sk-{u}"));
        if u == 3 {
            k.previous_hash = Some(hash_value("sk-3-old"));
            k.previous_valid_until = Some(t0() + Duration::hours(1));
        }
        keys.push(k);
        if u % 4 == 0 {
            keys.push(key(&format!("extra-{u}"), &uid, &format!("sk-{u}-extra")));
        }
    }
    (keys, copies)
}

/// Everything a snapshot says, in a stable order.
fn describe(s: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for shard in s.keys.iter() {
        for (h, k) in shard.iter() {
            out.push(format!(
                "key {h:?} {} {} {} {:?} {:?} -> {}",
                k.key_id, k.name, k.is_active, k.expires_at, k.grace_until, k.user.user_id
            ));
        }
    }
    for u in s.users() {
        let mut line = format!("user {} keys {:?}", u.user_id, u.key_hashes);
        for c in u.copies.iter() {
            line.push_str(&format!(
                " | copy {} {} {} {} {:?}",
                c.id, c.parent_profile_id, c.name, c.is_active, c.expires_at
            ));
            for l in c.limits.iter() {
                line.push_str(&format!(
                    " [{} {:?} {} {:?} {:?}]",
                    l.limit_id, l.def, l.anchor, l.override_, l.counter
                ));
            }
        }
        out.push(line);
    }
    out.sort();
    out
}

/// Groups records by user the way the store's pages do.
fn pages(
    keys: &[KeyRecord],
    copies: &[UserCopy],
    per_page: usize,
) -> Vec<Vec<(String, UserRecords)>> {
    let mut by_user: std::collections::BTreeMap<String, UserRecords> = Default::default();
    for k in keys {
        by_user
            .entry(k.user_id.clone())
            .or_default()
            .keys
            .push(k.clone());
    }
    for c in copies {
        by_user
            .entry(c.user_id.clone())
            .or_default()
            .copies
            .push(c.clone());
    }
    let all: Vec<(String, UserRecords)> = by_user.into_iter().collect();
    all.chunks(per_page).map(<[_]>::to_vec).collect()
}

#[test]
fn a_paged_build_gives_the_same_index_as_the_one_shot_build() {
    let (keys, copies) = world();
    let one_shot = Snapshot::build(&keys, &copies);
    for per_page in [1, 3, 1000] {
        let mut interner = Interner::default();
        // Deliberately wrong expectations: they only tune the shard count.
        let mut b = SnapshotBuilder::new(5, 100_000);
        for page in pages(&keys, &copies, per_page) {
            b.add_page(&mut interner, &page);
        }
        let paged = b.finish();
        assert_eq!(describe(&paged), describe(&one_shot), "pages of {per_page}");
        assert_eq!(paged.key_count(), one_shot.key_count());
        assert_eq!(paged.user_count(), 40);
        for k in &keys {
            assert!(
                paged.key(&parse_hash(&k.hash).unwrap(), t0()).is_some(),
                "{}",
                k.id
            );
            assert!(paged.user(&k.user_id).is_some());
        }
    }
}

#[test]
fn a_paged_build_updates_like_a_one_shot_build() {
    let (keys, copies) = world();
    let mut interner = Interner::default();
    let mut b = SnapshotBuilder::new(1_000_000, 1_000_000);
    for page in pages(&keys, &copies, 7) {
        b.add_page(&mut interner, &page);
    }
    let paged = b.finish();
    let one_shot = Snapshot::build(&keys, &copies);
    let uid = keys[0].user_id.clone();
    let changes = vec![(
        uid.clone(),
        UserRecords {
            keys: vec![key("new", &uid, "sk-new")],
            copies: vec![copy(999, &uid, t0())],
        },
    )];
    let a = paged.with_users(&mut interner, &changes);
    let b = one_shot.with_users(&mut Interner::default(), &changes);
    assert_eq!(describe(&a), describe(&b));
    assert!(a.key(&key_hash("sk-new"), t0()).is_some());
    assert!(a.key(&key_hash("sk-0"), t0()).is_none());
    assert_eq!(a.user(&uid).unwrap().copies[0].id, 999);
}

#[test]
fn shard_counts_keep_every_table_under_its_growth_point() {
    for n in [0, 10, 5_000, 100_000, 1_000_000] {
        let shards = shard_count(n);
        assert!(shards >= 256, "{n}: {shards}");
        if n >= 100_000 {
            let per_shard = n / shards;
            let buckets = (per_shard * 8 / 7).next_power_of_two();
            let fill = per_shard as f64 / buckets as f64;
            assert!((0.7..0.85).contains(&fill), "{n}: {per_shard} in {buckets}");
        }
    }
    // Key shards use the whole range.
    let shards = shard_count(1_000_000);
    let mut seen = vec![false; shards];
    for i in 0..100_000 {
        seen[key_shard(&key_hash(&format!("sk-{i}")), shards)] = true;
    }
    assert!(seen.iter().all(|s| *s));
}

#[test]
fn uuid_and_other_limit_and_key_ids_round_trip_to_counters_and_callers() {
    let mut c = copy(1, "u", t0());
    let uuid_budget = c.policy.budgets[0].id.clone();
    assert!(uuid::Uuid::try_parse(&uuid_budget).is_ok());
    let mut legacy = c.policy.budgets[0].clone();
    legacy.id = "legacy-budget-1".into();
    c.policy.budgets.push(legacy);
    c.policy.rate_limit.as_mut().unwrap().id = "0B6C5E1E-8F3A-4C1D-9E2B-7A4F5D6C3B2A".into();
    c.is_active = true;
    let key_id = uuid::Uuid::new_v4().to_string();
    let s = Snapshot::build(&[key(&key_id, "u", "sk-u")], &[c]);
    let caller = identify(&s, Some(&key_hash("sk-u")), t0()).unwrap();
    assert_eq!(caller.key_id.to_string(), key_id);
    assert_eq!(caller.user.user_id.to_string(), "u");
    let counters = CounterStore::default();
    let demand = Demand {
        provider: "openai",
        model: "m",
        tokens: 1,
        cost: Some(5),
        deny_unpriced: false,
    };
    let a = admit(&caller, &demand, &counters, None, t0()).unwrap();
    a.reservation.settle(
        Settlement {
            success: true,
            tokens: 1,
            cost: 5,
        },
        t0(),
    );
    for (id, kind, used) in [
        (uuid_budget.as_str(), CounterKind::Budget, 5),
        ("legacy-budget-1", CounterKind::Budget, 5),
        (
            "0B6C5E1E-8F3A-4C1D-9E2B-7A4F5D6C3B2A",
            CounterKind::Requests,
            1,
        ),
    ] {
        let counter = counters.get(id, kind).unwrap();
        assert_eq!(&*counter.limit_id, id);
        assert_eq!(counter.read().used, used, "{id}");
    }
    assert_eq!(counters.len(), 3);
}

#[test]
fn repeated_key_names_share_one_allocation() {
    let (keys, copies) = world();
    let mut named = keys.clone();
    for k in &mut named {
        k.name = "managed".into();
    }
    let s = Snapshot::build(&named, &copies);
    let a = s.key(&key_hash("sk-0"), t0()).unwrap();
    let b = s.key(&key_hash("sk-1"), t0()).unwrap();
    assert!(Arc::ptr_eq(&a.name, &b.name));
}
