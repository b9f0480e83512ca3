//! Usage counters and the arithmetic of admission. A counter holds `used`
//! (settled, in the current window) and `reserved` (in flight). Each counter
//! has its own small lock; there is no lock over all counters.
//!
//! Counters live in a sharded map keyed by the limit's id, created on first
//! use (or loaded from the store at start), so memory grows with the limits
//! actually used, not with the number of keys.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rustc_hash::FxBuildHasher;

use crate::copy::CounterKind;

/// Mutable state of one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CounterState {
    /// Start of the window `used` belongs to (Unix ms).
    pub window_start: i64,
    /// The window's anchor and duration identity: when they change (the
    /// limit was re-created by propagation), the counter starts over.
    pub anchor: i64,
    pub used: i64,
    pub reserved: i64,
}

/// One counter of one limit of one user copy.
#[derive(Debug)]
pub struct Counter {
    pub limit_id: Arc<str>,
    pub kind: CounterKind,
    /// The user copy the limit belongs to (for persistence).
    pub copy_id: i64,
    /// The reset duration the counter counts in (for persistence).
    pub duration: Arc<str>,
    state: Mutex<CounterState>,
    dirty: AtomicBool,
}

impl Counter {
    pub fn new(
        limit_id: Arc<str>,
        kind: CounterKind,
        copy_id: i64,
        duration: Arc<str>,
        state: CounterState,
    ) -> Counter {
        Counter {
            limit_id,
            kind,
            copy_id,
            duration,
            state: Mutex::new(state),
            dirty: AtomicBool::new(false),
        }
    }

    /// Locks the state. A poisoned lock is recovered: the state is plain
    /// numbers and every update leaves it consistent.
    pub fn lock(&self) -> MutexGuard<'_, CounterState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn read(&self) -> CounterState {
        *self.lock()
    }

    /// Marks the counter changed; returns true if it was clean (the caller
    /// then queues it for the next flush).
    pub fn mark_dirty(&self) -> bool {
        !self.dirty.swap(true, Ordering::AcqRel)
    }

    /// Clears the changed mark (the flusher, before reading the state).
    pub fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::AcqRel)
    }
}

impl CounterState {
    /// Moves the counter into the window starting at `window_start` when that
    /// is later than its own: settled usage of an ended window is dropped.
    /// Reservations stay: they settle into whatever window is current then.
    pub fn roll_to(&mut self, window_start: i64) {
        if window_start > self.window_start {
            self.window_start = window_start;
            self.used = 0;
        }
    }
}

const SHARDS: usize = 64;

/// One map per counter kind, so that lookups borrow the id as `&str`.
type Shard = Mutex<[HashMap<Arc<str>, Arc<Counter>, FxBuildHasher>; 3]>;

fn slot(kind: CounterKind) -> usize {
    match kind {
        CounterKind::Budget => 0,
        CounterKind::Tokens => 1,
        CounterKind::Requests => 2,
    }
}

/// All counters of a node, sharded by limit id.
pub struct CounterStore {
    shards: Vec<Shard>,
}

impl std::fmt::Debug for CounterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CounterStore").finish_non_exhaustive()
    }
}

impl Default for CounterStore {
    fn default() -> Self {
        CounterStore {
            shards: (0..SHARDS)
                .map(|_| Mutex::new([HashMap::default(), HashMap::default(), HashMap::default()]))
                .collect(),
        }
    }
}

fn shard_of(limit_id: &str) -> usize {
    (FxBuildHasher.hash_one(limit_id) as usize) % SHARDS
}

impl CounterStore {
    /// The counter of a limit, created (empty, in `window_start`) when absent.
    /// A counter whose anchor differs belongs to an older limit of the same
    /// id: it is replaced by a fresh one.
    pub fn get_or_create(
        &self,
        limit_id: &str,
        kind: CounterKind,
        copy_id: i64,
        duration: &Arc<str>,
        anchor: i64,
        window_start: i64,
    ) -> Arc<Counter> {
        let shard = &self.shards[shard_of(limit_id)];
        let mut maps = shard.lock().unwrap_or_else(|e| e.into_inner());
        let map = &mut maps[slot(kind)];
        if let Some(c) = map.get(limit_id)
            && c.read().anchor == anchor
            && *c.duration == **duration
        {
            return c.clone();
        }
        let limit_id: Arc<str> = Arc::from(limit_id);
        let c = Arc::new(Counter::new(
            limit_id.clone(),
            kind,
            copy_id,
            duration.clone(),
            CounterState {
                window_start,
                anchor,
                used: 0,
                reserved: 0,
            },
        ));
        map.insert(limit_id, c.clone());
        c
    }

    /// The counter of a limit, if it exists.
    pub fn get(&self, limit_id: &str, kind: CounterKind) -> Option<Arc<Counter>> {
        let shard = &self.shards[shard_of(limit_id)];
        let maps = shard.lock().unwrap_or_else(|e| e.into_inner());
        maps[slot(kind)].get(limit_id).cloned()
    }

    /// Puts a counter loaded from the store.
    pub fn insert(&self, counter: Counter) {
        let shard = &self.shards[shard_of(&counter.limit_id)];
        let mut maps = shard.lock().unwrap_or_else(|e| e.into_inner());
        maps[slot(counter.kind)].insert(counter.limit_id.clone(), Arc::new(counter));
    }

    /// Sets a counter's settled usage to zero (propagation with `reset_usage`).
    pub fn reset(&self, limit_id: &str, kind: CounterKind) {
        if let Some(c) = self.get(limit_id, kind) {
            c.lock().used = 0;
            c.mark_dirty();
        }
    }

    /// Every counter (for a full flush, e.g. at shutdown).
    pub fn all(&self) -> Vec<Arc<Counter>> {
        self.shards
            .iter()
            .flat_map(|s| {
                s.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .flat_map(|m| m.values().cloned())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .map(HashMap::len)
                    .sum::<usize>()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
