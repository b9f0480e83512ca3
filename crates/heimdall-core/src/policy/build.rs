//! Building the policy index from store records: the interner that shares
//! compiled rules, limit definitions and names between copies, and the
//! builder that adds users a page at a time, so that the server never holds
//! the whole store's records at once (at a million users they are several
//! times the size of the index).

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use smallvec::SmallVec;

use super::ids::CompactId;
use super::rules::CompiledRules;
use super::snapshot::{
    CopyEntry, KeyEntry, KeyHash, KeyRecord, KeyShard, LimitDef, LimitSlot, SlotOverride, Snapshot,
    UserEntry, UserRecords, UserRef, UserShard, key_shard, parse_hash, shard_count, user_shard,
};
use crate::copy::{CounterKind, UserCopy};
use crate::limits::spec_for;
use crate::profile::{LimitOwner, Policy};

/// Key names are shared when they repeat (managed keys are named after
/// their template), but a deployment of uniquely named keys must not grow
/// the table without end: past this many names, new ones are not shared.
const MAX_SHARED_KEY_NAMES: usize = 65_536;

/// Interns shared pieces (compiled rules, limit definitions, names) across
/// builds and updates, so that copies with equal policies share them.
#[derive(Default)]
pub struct Interner {
    rules: HashMap<String, Arc<CompiledRules>>,
    names: HashMap<String, Arc<str>>,
    key_names: HashMap<String, Arc<str>>,
    defs: HashMap<String, Arc<LimitDef>>,
}

/// One allocation per distinct name in `table`, up to `cap` names.
fn intern(table: &mut HashMap<String, Arc<str>>, n: &str, cap: usize) -> Arc<str> {
    if let Some(a) = table.get(n) {
        return a.clone();
    }
    let a: Arc<str> = Arc::from(n);
    if table.len() < cap {
        table.insert(n.to_string(), a.clone());
    }
    a
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
                        limit_id: CompactId::new(&b.id),
                        anchor: b.created_at.unwrap_or(fallback).timestamp_millis(),
                        override_: b.override_.as_ref().map(|o| {
                            Box::new(SlotOverride {
                                amount: o.amount.nanos(),
                                cycles: o.cycles,
                                set_window_index: o.set_window_index,
                            })
                        }),
                        counter: OnceLock::new(),
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
                            limit_id: CompactId::new(&rl.id),
                            anchor: created.unwrap_or(fallback).timestamp_millis(),
                            override_: None,
                            counter: OnceLock::new(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Builds a user's entry and its key entries.
    pub(super) fn user(
        &mut self,
        user_id: &str,
        keys: &[&KeyRecord],
        copies: &[&UserCopy],
    ) -> (Arc<UserEntry>, Vec<(KeyHash, KeyEntry)>) {
        let mut list: Vec<&UserCopy> = copies.to_vec();
        list.sort_by_key(|c| (c.assigned_at, c.id));
        let copies: SmallVec<[CopyEntry; 1]> = list
            .into_iter()
            .map(|c| CopyEntry {
                id: c.id,
                parent_profile_id: c.parent_profile_id,
                name: intern(&mut self.names, &c.name, usize::MAX),
                is_active: c.is_active,
                expires_at: c.expires_at,
                rules: self.rules(&c.policy),
                limits: self.slots(c).into_boxed_slice(),
            })
            .collect();
        // Each key is indexed under its current value's hash and, during a
        // rotation grace, under the old value's hash too.
        type Indexed<'a> = (&'a KeyRecord, KeyHash, Option<DateTime<Utc>>);
        let indexed: SmallVec<[Indexed<'_>; 1]> = keys
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
            user_id: CompactId::new(user_id),
            copies,
            key_hashes: indexed.iter().map(|(_, h, _)| *h).collect(),
        });
        let out = indexed
            .into_iter()
            .map(|(k, h, grace_until)| {
                (
                    h,
                    KeyEntry {
                        key_id: CompactId::new(&k.id),
                        name: intern(&mut self.key_names, &k.name, MAX_SHARED_KEY_NAMES),
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

/// Builds a snapshot from users added one page at a time.
pub struct SnapshotBuilder {
    keys: Vec<KeyShard>,
    users: Vec<UserShard>,
}

impl SnapshotBuilder {
    /// A builder with shards sized for about this many users and keys (the
    /// figures only tune memory; any number of entries may be added).
    pub fn new(expected_users: usize, expected_keys: usize) -> SnapshotBuilder {
        SnapshotBuilder {
            keys: (0..shard_count(expected_keys))
                .map(|_| KeyShard::default())
                .collect(),
            users: (0..shard_count(expected_users))
                .map(|_| UserShard::default())
                .collect(),
        }
    }

    /// Adds one user (nothing when it has neither keys nor copies). A user
    /// must be added once, with all its keys and copies.
    pub fn add_user(
        &mut self,
        interner: &mut Interner,
        user_id: &str,
        keys: &[&KeyRecord],
        copies: &[&UserCopy],
    ) {
        if keys.is_empty() && copies.is_empty() {
            return;
        }
        let (user, entries) = interner.user(user_id, keys, copies);
        let key_shards = self.keys.len();
        for (h, e) in entries {
            self.keys[key_shard(&h, key_shards)].insert(h, e);
        }
        let us = user_shard(&user.user_id, self.users.len());
        self.users[us].insert(UserRef(user));
    }

    /// Adds a page of users with their records, as the store reads them.
    pub fn add_page(&mut self, interner: &mut Interner, page: &[(String, UserRecords)]) {
        for (uid, rec) in page {
            let keys: SmallVec<[&KeyRecord; 2]> = rec.keys.iter().collect();
            let copies: SmallVec<[&UserCopy; 2]> = rec.copies.iter().collect();
            self.add_user(interner, uid, &keys, &copies);
        }
    }

    pub fn finish(self) -> Snapshot {
        Snapshot {
            keys: self.keys.into_iter().map(Arc::new).collect(),
            users: self.users.into_iter().map(Arc::new).collect(),
        }
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
        let mut builder = SnapshotBuilder::new(by_user.len(), keys.len());
        for (uid, (user_keys, user_copies)) in &by_user {
            builder.add_user(interner, uid, user_keys, user_copies);
        }
        builder.finish()
    }
}
