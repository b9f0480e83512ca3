//! The policy index: an immutable snapshot mapping key hashes to users and
//! users to their copies, with compiled rules and limit definitions shared
//! between copies that carry the same policy. Built from store records;
//! replaced whole (the server swaps an `Arc`) after every management write.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::rules::CompiledRules;
use crate::copy::{CounterKind, UserCopy};
use crate::limits::spec_for;
use crate::profile::{LimitOwner, Policy};
use crate::windows::WindowSpec;

/// A key as the index needs it (from the store; never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub id: String,
    pub name: String,
    pub user_id: String,
    /// SHA-256 of the value, lower-case hex.
    pub hash: String,
    /// The old value's hash while a rotation grace lasts, and its end.
    pub previous_hash: Option<String>,
    pub previous_valid_until: Option<DateTime<Utc>>,
    pub is_active: bool,
    pub expires_at: Option<DateTime<Utc>>,
}

/// What one limit is: shared by every copy with the same definition.
#[derive(Debug, PartialEq)]
pub struct LimitDef {
    pub kind: CounterKind,
    pub owner: LimitOwner,
    /// Nano-dollars for budgets, tokens or requests for rate limits.
    pub max: i64,
    pub spec: WindowSpec,
    pub duration: Arc<str>,
}

/// A budget override as the engine applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotOverride {
    pub amount: i64,
    pub cycles: Option<u32>,
    pub set_window_index: i64,
}

/// One limit of one copy: the shared definition, the copy's own id and
/// window anchor, and its override.
#[derive(Debug, Clone)]
pub struct LimitSlot {
    pub def: Arc<LimitDef>,
    pub limit_id: Arc<str>,
    /// Unix ms.
    pub anchor: i64,
    pub override_: Option<SlotOverride>,
    /// The counter, resolved on first use and kept for this snapshot's life,
    /// so that later requests skip the counter map.
    pub counter: std::sync::OnceLock<Arc<super::counter::Counter>>,
}

/// A copy as the engine sees it.
#[derive(Debug)]
pub struct CopyEntry {
    pub id: i64,
    pub parent_profile_id: i64,
    pub name: Arc<str>,
    pub is_active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub assigned_at: DateTime<Utc>,
    pub rules: Arc<CompiledRules>,
    pub limits: Box<[LimitSlot]>,
}

impl CopyEntry {
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.is_active && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A user with copies ordered by `assigned_at` (earlier copies win ties).
#[derive(Debug)]
pub struct UserEntry {
    pub user_id: Arc<str>,
    pub copies: Box<[CopyEntry]>,
}

/// What a key hash leads to.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub key_id: Arc<str>,
    pub name: Arc<str>,
    pub is_active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    /// Set when this hash is a rotated-away value: it works until then.
    pub grace_until: Option<DateTime<Utc>>,
    pub user: Arc<UserEntry>,
}

/// Key hashes are SHA-256 outputs: uniformly random, so their first eight
/// bytes are already a good hash.
#[derive(Default)]
pub struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for (i, b) in bytes.iter().take(8).enumerate() {
            self.0 |= u64::from(*b) << (8 * i);
        }
    }
}

pub type KeyHash = [u8; 32];

/// The immutable policy index.
#[derive(Debug, Default)]
pub struct Snapshot {
    keys: HashMap<KeyHash, KeyEntry, BuildHasherDefault<PreHashed>>,
    users: HashMap<Arc<str>, Arc<UserEntry>>,
}

/// Parses a lower-case hex SHA-256.
pub fn parse_hash(hex: &str) -> Option<KeyHash> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Interns shared pieces while a snapshot is built.
#[derive(Default)]
struct Interner {
    rules: HashMap<String, Arc<CompiledRules>>,
    defs: HashMap<String, Arc<LimitDef>>,
}

impl Interner {
    fn rules(&mut self, p: &Policy) -> Arc<CompiledRules> {
        let key = CompiledRules::share_key(p);
        self.rules
            .entry(key)
            .or_insert_with(|| Arc::new(CompiledRules::compile(p)))
            .clone()
    }

    fn def(
        &mut self,
        p: &Policy,
        kind: CounterKind,
        owner: LimitOwner,
        max: i64,
        duration: &str,
        qsm: Option<u32>,
    ) -> Option<Arc<LimitDef>> {
        let spec = spec_for(p, duration, qsm)?;
        let key = format!(
            "{kind:?}|{owner:?}|{max}|{duration}|{}|{}|{qsm:?}",
            p.calendar_aligned, p.timezone
        );
        Some(
            self.defs
                .entry(key)
                .or_insert_with(|| {
                    Arc::new(LimitDef {
                        kind,
                        owner,
                        max,
                        spec,
                        duration: Arc::from(duration),
                    })
                })
                .clone(),
        )
    }

    fn slots(&mut self, c: &UserCopy) -> Vec<LimitSlot> {
        let p = &c.policy;
        let fallback = c.assigned_at;
        let mut out = Vec::new();
        let owners = std::iter::once((LimitOwner::Profile, &p.budgets, p.rate_limit.as_ref()))
            .chain(p.provider_configs.iter().map(|pc| {
                (
                    LimitOwner::Provider(pc.provider_name.clone()),
                    &pc.budgets,
                    pc.rate_limit.as_ref(),
                )
            }));
        for (owner, budgets, rl) in owners {
            for b in budgets {
                let qsm = b.reset_config.map(|r| r.quarter_start_month);
                if let Some(def) = self.def(
                    p,
                    CounterKind::Budget,
                    owner.clone(),
                    b.max_limit.nanos(),
                    &b.reset_duration,
                    qsm,
                ) {
                    out.push(LimitSlot {
                        def,
                        limit_id: Arc::from(b.id.as_str()),
                        anchor: b.created_at.unwrap_or(fallback).timestamp_millis(),
                        override_: b.override_.as_ref().map(|o| SlotOverride {
                            amount: o.amount.nanos(),
                            cycles: o.cycles,
                            set_window_index: o.set_window_index,
                        }),
                        counter: std::sync::OnceLock::new(),
                    });
                }
            }
            if let Some(rl) = rl {
                let halves = [
                    (
                        CounterKind::Tokens,
                        rl.token_max_limit,
                        &rl.token_reset_duration,
                        rl.token_created_at,
                    ),
                    (
                        CounterKind::Requests,
                        rl.request_max_limit,
                        &rl.request_reset_duration,
                        rl.request_created_at,
                    ),
                ];
                for (kind, max, dur, created) in halves {
                    let (Some(max), Some(dur)) = (max, dur) else {
                        continue;
                    };
                    let max = i64::try_from(max).unwrap_or(i64::MAX);
                    if let Some(def) = self.def(p, kind, owner.clone(), max, dur, None) {
                        out.push(LimitSlot {
                            def,
                            limit_id: Arc::from(rl.id.as_str()),
                            anchor: created.unwrap_or(fallback).timestamp_millis(),
                            override_: None,
                            counter: std::sync::OnceLock::new(),
                        });
                    }
                }
            }
        }
        out
    }
}

impl Snapshot {
    /// Builds the index from every key and every copy.
    pub fn build(keys: &[KeyRecord], copies: &[UserCopy]) -> Snapshot {
        let mut interner = Interner::default();
        let mut by_user: HashMap<&str, Vec<&UserCopy>> = HashMap::new();
        for c in copies {
            by_user.entry(c.user_id.as_str()).or_default().push(c);
        }
        let mut users: HashMap<Arc<str>, Arc<UserEntry>> = HashMap::with_capacity(by_user.len());
        for (uid, mut list) in by_user {
            list.sort_by_key(|c| (c.assigned_at, c.id));
            let entries: Vec<CopyEntry> = list
                .into_iter()
                .map(|c| CopyEntry {
                    id: c.id,
                    parent_profile_id: c.parent_profile_id,
                    name: Arc::from(c.name.as_str()),
                    is_active: c.is_active,
                    expires_at: c.expires_at,
                    assigned_at: c.assigned_at,
                    rules: interner.rules(&c.policy),
                    limits: interner.slots(c).into_boxed_slice(),
                })
                .collect();
            let uid: Arc<str> = Arc::from(uid);
            users.insert(
                uid.clone(),
                Arc::new(UserEntry {
                    user_id: uid,
                    copies: entries.into_boxed_slice(),
                }),
            );
        }
        let mut map: HashMap<KeyHash, KeyEntry, BuildHasherDefault<PreHashed>> =
            HashMap::with_capacity_and_hasher(keys.len(), BuildHasherDefault::default());
        for k in keys {
            let user = users
                .entry(Arc::from(k.user_id.as_str()))
                .or_insert_with(|| {
                    Arc::new(UserEntry {
                        user_id: Arc::from(k.user_id.as_str()),
                        copies: Box::new([]),
                    })
                });
            let entry = KeyEntry {
                key_id: Arc::from(k.id.as_str()),
                name: Arc::from(k.name.as_str()),
                is_active: k.is_active,
                expires_at: k.expires_at,
                grace_until: None,
                user: user.clone(),
            };
            if let (Some(prev), Some(until)) = (
                k.previous_hash.as_deref().and_then(parse_hash),
                k.previous_valid_until,
            ) {
                map.insert(
                    prev,
                    KeyEntry {
                        grace_until: Some(until),
                        ..entry.clone()
                    },
                );
            }
            if let Some(h) = parse_hash(&k.hash) {
                map.insert(h, entry);
            }
        }
        Snapshot { keys: map, users }
    }

    /// The entry of a key hash (an old value past its grace is absent).
    pub fn key(&self, hash: &KeyHash, now: DateTime<Utc>) -> Option<&KeyEntry> {
        self.keys
            .get(hash)
            .filter(|k| k.grace_until.is_none_or(|g| g > now))
    }

    pub fn user(&self, user_id: &str) -> Option<&Arc<UserEntry>> {
        self.users.get(user_id)
    }

    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// Number of distinct compiled rule sets and limit definitions (to show
    /// that they are shared).
    pub fn user_count(&self) -> usize {
        self.users.len()
    }
}
