//! The policy index: an immutable snapshot mapping key hashes to users and
//! users to their copies, with compiled rules and limit definitions shared
//! between copies that carry the same policy. Built from store records
//! (`build.rs`); replaced whole (the server swaps an `Arc`) after a
//! template-wide write, or shard by shard after a write to a few users.
//!
//! At a million keys the index is most of the process's memory, so its
//! entries are compact: ids are 16-byte UUIDs where they parse
//! (`ids.rs`), a user's copies and key hashes sit inline in the user's one
//! allocation, and the number of shards is chosen from the number of
//! entries so that the hash tables inside are well filled.

use std::borrow::Borrow;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use smallvec::SmallVec;

use super::counter::Counter;
use super::ids::CompactId;
use super::rules::CompiledRules;
use crate::copy::CounterKind;
use crate::profile::LimitOwner;
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
    pub limit_id: CompactId,
    /// Unix ms.
    pub anchor: i64,
    /// Boxed: overrides are rare, and a slot exists per limit per user.
    pub override_: Option<Box<SlotOverride>>,
    /// The counter, resolved on first use and kept for this snapshot's life,
    /// so that later requests skip the counter map.
    pub counter: OnceLock<Arc<Counter>>,
}

/// A copy as the engine sees it.
#[derive(Debug)]
pub struct CopyEntry {
    pub id: i64,
    pub parent_profile_id: i64,
    pub name: Arc<str>,
    pub is_active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub rules: Arc<CompiledRules>,
    pub limits: Box<[LimitSlot]>,
}

impl CopyEntry {
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.is_active && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A user with copies ordered by `assigned_at` (earlier copies win ties).
/// Most users hold one copy and one key: both sit inline.
#[derive(Debug)]
pub struct UserEntry {
    pub user_id: CompactId,
    pub copies: SmallVec<[CopyEntry; 1]>,
    /// Hashes under which this user's keys are indexed (current values and
    /// old values in their grace), so that an update can remove them.
    pub key_hashes: SmallVec<[KeyHash; 1]>,
}

/// What a key hash leads to.
#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub key_id: CompactId,
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

/// A user in its shard, found by its id (so the shard stores one pointer
/// per user rather than the id twice).
#[derive(Debug, Clone)]
pub(super) struct UserRef(pub(super) Arc<UserEntry>);

impl PartialEq for UserRef {
    fn eq(&self, other: &Self) -> bool {
        self.0.user_id == other.0.user_id
    }
}

impl Eq for UserRef {}

impl Hash for UserRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.user_id.hash(state);
    }
}

impl Borrow<CompactId> for UserRef {
    fn borrow(&self) -> &CompactId {
        &self.0.user_id
    }
}

pub(super) type KeyShard = HashMap<KeyHash, KeyEntry, BuildHasherDefault<PreHashed>>;
pub(super) type UserShard = HashSet<UserRef, rustc_hash::FxBuildHasher>;

/// At least this many shards: an update copies only the shards it touches,
/// so a change to one user costs a few thousand entries, not the index.
const MIN_SHARDS: usize = 256;

/// How many shards hold `entries` entries. A hash table has a power of two
/// of buckets and grows when 7/8 full, so a table sized by chance can be
/// half empty (with 256 shards, a million keys make 3,906 per shard, just
/// over the 3,584 of 4,096 buckets: 8,192 buckets, 48 % full). The count
/// is chosen so that each shard lands at about 80 % of a power of two,
/// just under the 87.5 % at which it would double.
pub(super) fn shard_count(entries: usize) -> usize {
    const FILL: f64 = 0.8;
    let mut buckets = 16usize;
    while (entries as f64) / (FILL * (buckets * 2) as f64) >= MIN_SHARDS as f64 {
        buckets *= 2;
    }
    let shards = ((entries as f64) / (FILL * buckets as f64)).ceil() as usize;
    shards.max(MIN_SHARDS)
}

/// Key shards are chosen by the hash's last eight bytes; the map inside
/// hashes by its first eight, so the two never correlate.
pub(super) fn key_shard(h: &KeyHash, shards: usize) -> usize {
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&h[24..]);
    (u64::from_le_bytes(tail) % shards as u64) as usize
}

/// User shards are chosen by a different hash function than the one the
/// set inside uses: with the same one, every id of a shard would share the
/// hash's low bits, which are the bits the set uses to place entries, and
/// they would pile up in a few places of the table.
pub(super) fn user_shard(id: &CompactId, shards: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    (h.finish() % shards as u64) as usize
}

/// The immutable policy index.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub(super) keys: Box<[Arc<KeyShard>]>,
    pub(super) users: Box<[Arc<UserShard>]>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            keys: (0..MIN_SHARDS)
                .map(|_| Arc::new(KeyShard::default()))
                .collect(),
            users: (0..MIN_SHARDS)
                .map(|_| Arc::new(UserShard::default()))
                .collect(),
        }
    }
}

/// Everything the index holds about one user, as read from the store.
#[derive(Debug, Clone, Default)]
pub struct UserRecords {
    pub keys: Vec<KeyRecord>,
    pub copies: Vec<crate::copy::UserCopy>,
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

impl Snapshot {
    /// A new index equal to this one except for the given users, whose keys
    /// and copies are replaced by `records` (a user with neither is removed).
    /// Only the shards those users live in are copied.
    pub fn with_users(
        &self,
        interner: &mut super::Interner,
        changes: &[(String, UserRecords)],
    ) -> Snapshot {
        let mut next = self.clone();
        let (key_shards, user_shards) = (next.keys.len(), next.users.len());
        for (uid, rec) in changes {
            let id = CompactId::new(uid);
            let us = user_shard(&id, user_shards);
            if let Some(old) = next.users[us].get(&id).cloned() {
                for h in old.0.key_hashes.iter() {
                    Arc::make_mut(&mut next.keys[key_shard(h, key_shards)]).remove(h);
                }
                Arc::make_mut(&mut next.users[us]).remove(&id);
            }
            if rec.keys.is_empty() && rec.copies.is_empty() {
                continue;
            }
            let keys: Vec<&KeyRecord> = rec.keys.iter().collect();
            let copies: Vec<&crate::copy::UserCopy> = rec.copies.iter().collect();
            let (user, entries) = interner.user(uid, &keys, &copies);
            for (h, e) in entries {
                Arc::make_mut(&mut next.keys[key_shard(&h, key_shards)]).insert(h, e);
            }
            Arc::make_mut(&mut next.users[us]).insert(UserRef(user));
        }
        next
    }

    /// The entry of a key hash (an old value past its grace is absent).
    pub fn key(&self, hash: &KeyHash, now: DateTime<Utc>) -> Option<&KeyEntry> {
        self.keys[key_shard(hash, self.keys.len())]
            .get(hash)
            .filter(|k| k.grace_until.is_none_or(|g| g > now))
    }

    pub fn user(&self, user_id: &str) -> Option<&Arc<UserEntry>> {
        let id = CompactId::new(user_id);
        self.users[user_shard(&id, self.users.len())]
            .get(&id)
            .map(|u| &u.0)
    }

    /// Every user of the index.
    pub fn users(&self) -> impl Iterator<Item = &Arc<UserEntry>> {
        self.users.iter().flat_map(|s| s.iter().map(|u| &u.0))
    }

    pub fn key_count(&self) -> usize {
        self.keys.iter().map(|s| s.len()).sum()
    }

    pub fn user_count(&self) -> usize {
        self.users.iter().map(|s| s.len()).sum()
    }
}
