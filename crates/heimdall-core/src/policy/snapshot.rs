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
    /// Hashes under which this user's keys are indexed (current values and
    /// old values in their grace), so that an update can remove them.
    pub key_hashes: Box<[KeyHash]>,
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

/// Number of shards of each map. An update copies only the shards it
/// touches, so a change to one user costs a few thousand entries, not the
/// whole index.
const SHARDS: usize = 256;

type KeyShard = HashMap<KeyHash, KeyEntry, BuildHasherDefault<PreHashed>>;
type UserShard = HashMap<Arc<str>, Arc<UserEntry>, rustc_hash::FxBuildHasher>;

/// Key shards are chosen by the hash's last byte; the map inside hashes by
/// its first eight bytes, so the two never correlate.
fn key_shard(h: &KeyHash) -> usize {
    usize::from(h[31])
}

fn user_shard(user_id: &str) -> usize {
    use std::hash::BuildHasher;
    (rustc_hash::FxBuildHasher.hash_one(user_id) as usize) % SHARDS
}

/// The immutable policy index.
#[derive(Debug, Clone)]
pub struct Snapshot {
    keys: Box<[Arc<KeyShard>]>,
    users: Box<[Arc<UserShard>]>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            keys: (0..SHARDS).map(|_| Arc::new(KeyShard::default())).collect(),
            users: (0..SHARDS)
                .map(|_| Arc::new(UserShard::default()))
                .collect(),
        }
    }
}

/// Everything the index holds about one user, as read from the store.
#[derive(Debug, Clone, Default)]
pub struct UserRecords {
    pub keys: Vec<KeyRecord>,
    pub copies: Vec<UserCopy>,
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

/// Interns shared pieces (compiled rules, limit definitions) across builds
/// and updates, so that copies with equal policies share them.
#[derive(Default)]
pub struct Interner {
    rules: HashMap<String, Arc<CompiledRules>>,
    names: HashMap<String, Arc<str>>,
    defs: HashMap<String, Arc<LimitDef>>,
}

impl Interner {
    /// Copy names repeat their template's name: one allocation per name.
    fn name(&mut self, n: &str) -> Arc<str> {
        if let Some(a) = self.names.get(n) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(n);
        self.names.insert(n.to_string(), a.clone());
        a
    }

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

impl Interner {
    /// Builds a user's entry and its key entries.
    fn user(
        &mut self,
        user_id: &str,
        keys: &[&KeyRecord],
        copies: &[&UserCopy],
    ) -> (Arc<UserEntry>, Vec<(KeyHash, KeyEntry)>) {
        let mut list: Vec<&UserCopy> = copies.to_vec();
        list.sort_by_key(|c| (c.assigned_at, c.id));
        let copies: Vec<CopyEntry> = list
            .into_iter()
            .map(|c| CopyEntry {
                id: c.id,
                parent_profile_id: c.parent_profile_id,
                name: self.name(&c.name),
                is_active: c.is_active,
                expires_at: c.expires_at,
                assigned_at: c.assigned_at,
                rules: self.rules(&c.policy),
                limits: self.slots(c).into_boxed_slice(),
            })
            .collect();
        // Each key is indexed under its current value's hash and, during a
        // rotation grace, under the old value's hash too.
        let indexed: Vec<(&KeyRecord, KeyHash, Option<DateTime<Utc>>)> = keys
            .iter()
            .copied()
            .flat_map(|k| {
                let current = parse_hash(&k.hash).map(|h| (k, h, None));
                let previous = match (
                    k.previous_hash.as_deref().and_then(parse_hash),
                    k.previous_valid_until,
                ) {
                    (Some(h), Some(until)) => Some((k, h, Some(until))),
                    _ => None,
                };
                current.into_iter().chain(previous)
            })
            .collect();
        let user = Arc::new(UserEntry {
            user_id: Arc::from(user_id),
            copies: copies.into_boxed_slice(),
            key_hashes: indexed.iter().map(|(_, h, _)| *h).collect(),
        });
        let out = indexed
            .into_iter()
            .map(|(k, h, grace_until)| {
                (
                    h,
                    KeyEntry {
                        key_id: Arc::from(k.id.as_str()),
                        name: Arc::from(k.name.as_str()),
                        is_active: k.is_active,
                        expires_at: k.expires_at,
                        grace_until,
                        user: user.clone(),
                    },
                )
            })
            .collect();
        (user, out)
    }
}

impl Snapshot {
    /// Builds the index from every key and every copy.
    pub fn build(keys: &[KeyRecord], copies: &[UserCopy]) -> Snapshot {
        Snapshot::build_with(&mut Interner::default(), keys, copies)
    }

    /// As [`Snapshot::build`], sharing pieces through `interner`.
    pub fn build_with(
        interner: &mut Interner,
        keys: &[KeyRecord],
        copies: &[UserCopy],
    ) -> Snapshot {
        // Group by user without copying the records.
        type Grouped<'a> = (Vec<&'a KeyRecord>, Vec<&'a UserCopy>);
        let mut by_user: HashMap<&str, Grouped<'_>> = HashMap::new();
        for c in copies {
            by_user.entry(c.user_id.as_str()).or_default().1.push(c);
        }
        for k in keys {
            by_user.entry(k.user_id.as_str()).or_default().0.push(k);
        }
        let mut key_shards: Vec<KeyShard> = (0..SHARDS).map(|_| KeyShard::default()).collect();
        let mut user_shards: Vec<UserShard> = (0..SHARDS).map(|_| UserShard::default()).collect();
        for (uid, (user_keys, user_copies)) in &by_user {
            let (user, entries) = interner.user(uid, user_keys, user_copies);
            for (h, e) in entries {
                key_shards[key_shard(&h)].insert(h, e);
            }
            user_shards[user_shard(uid)].insert(user.user_id.clone(), user);
        }
        Snapshot {
            keys: key_shards.into_iter().map(Arc::new).collect(),
            users: user_shards.into_iter().map(Arc::new).collect(),
        }
    }

    /// A new index equal to this one except for the given users, whose keys
    /// and copies are replaced by `records` (a user with neither is removed).
    /// Only the shards those users live in are copied.
    pub fn with_users(
        &self,
        interner: &mut Interner,
        changes: &[(String, UserRecords)],
    ) -> Snapshot {
        let mut next = self.clone();
        for (uid, rec) in changes {
            let us = user_shard(uid);
            if let Some(old) = next.users[us].get(uid.as_str()).cloned() {
                for h in old.key_hashes.iter() {
                    Arc::make_mut(&mut next.keys[key_shard(h)]).remove(h);
                }
                Arc::make_mut(&mut next.users[us]).remove(uid.as_str());
            }
            if rec.keys.is_empty() && rec.copies.is_empty() {
                continue;
            }
            let keys: Vec<&KeyRecord> = rec.keys.iter().collect();
            let copies: Vec<&UserCopy> = rec.copies.iter().collect();
            let (user, entries) = interner.user(uid, &keys, &copies);
            for (h, e) in entries {
                Arc::make_mut(&mut next.keys[key_shard(&h)]).insert(h, e);
            }
            Arc::make_mut(&mut next.users[us]).insert(user.user_id.clone(), user);
        }
        next
    }

    /// The entry of a key hash (an old value past its grace is absent).
    pub fn key(&self, hash: &KeyHash, now: DateTime<Utc>) -> Option<&KeyEntry> {
        self.keys[key_shard(hash)]
            .get(hash)
            .filter(|k| k.grace_until.is_none_or(|g| g > now))
    }

    pub fn user(&self, user_id: &str) -> Option<&Arc<UserEntry>> {
        self.users[user_shard(user_id)].get(user_id)
    }

    pub fn key_count(&self) -> usize {
        self.keys.iter().map(|s| s.len()).sum()
    }

    /// Number of distinct compiled rule sets and limit definitions (to show
    /// that they are shared).
    pub fn user_count(&self) -> usize {
        self.users.iter().map(|s| s.len()).sum()
    }
}
