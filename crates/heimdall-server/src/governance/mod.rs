//! The governance layer of a node: the live policy index (an immutable
//! snapshot swapped with `arc-swap`), the usage counters, the price table,
//! and the write-behind of usage to the store.
//!
//! The request path reads the snapshot and touches counters only; it never
//! waits on the store. Management writes rebuild the snapshot before their
//! response is sent (`apply`), so the next request already sees them.

mod flush;
pub mod pricing_api;

use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use chrono::{DateTime, Utc};
use heimdall_core::copy::CounterKind;
use heimdall_core::policy::{
    Counter, CounterState, CounterStore, Interner, Snapshot, SnapshotBuilder,
};
use heimdall_core::pricing::PriceTable;
use heimdall_store::{Store, StoreError};

use crate::usage::LiveUsage;

pub use flush::{flush_loop, flush_now};

/// Governance state shared by every request of a node.
pub struct Governance {
    snapshot: ArcSwap<Snapshot>,
    pub counters: Arc<CounterStore>,
    dirty_tx: Sender<Arc<Counter>>,
    dirty_rx: Mutex<Receiver<Arc<Counter>>>,
    prices: ArcSwap<PriceTable>,
    /// One rebuild or update at a time (it reads the store after the write
    /// that asked for it committed, so the last one always wins correctly);
    /// the interner shares compiled rules across rebuilds.
    rebuild: tokio::sync::Mutex<Interner>,
}

/// What a management write changed in the policy index. Every write
/// handler returns it with its answer (`management::Written`); the reload
/// middleware applies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexChange {
    /// Templates, roles or prices only: copies and keys are untouched.
    Nothing,
    /// Only these users' keys or copies changed.
    Users(Vec<String>),
    /// Many users may have changed.
    Everything,
}

impl std::fmt::Debug for Governance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governance")
            .field("keys", &self.snapshot.load().key_count())
            .finish_non_exhaustive()
    }
}

/// Users read from the store per page of an index build: the page's
/// records are dropped before the next is read, so a build holds one page
/// of store rows at a time rather than the whole store.
const INDEX_PAGE_USERS: u32 = 5_000;

/// A progress line per this many users (a million-user build takes a while).
const INDEX_PROGRESS_EVERY: usize = 100_000;

async fn build_snapshot(
    store: &Store,
    interner: Interner,
) -> Result<(Snapshot, Interner), StoreError> {
    let started = std::time::Instant::now();
    let (users, keys) = store.index_counts().await?;
    let size = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
    let mut state = (SnapshotBuilder::new(size(users), size(keys)), interner);
    let mut after: Option<String> = None;
    let mut loaded = 0usize;
    loop {
        let page = store.index_page(after.as_deref(), INDEX_PAGE_USERS).await?;
        let Some((last, _)) = page.last() else {
            break;
        };
        after = Some(last.clone());
        let before = loaded;
        loaded += page.len();
        // Building compiles rules and hashes thousands of entries per page:
        // off the async workers.
        state = tokio::task::spawn_blocking(move || {
            let (mut builder, mut interner) = state;
            builder.add_page(&mut interner, &page);
            (builder, interner)
        })
        .await
        .map_err(|e| StoreError::Corrupt(format!("building the policy index failed: {e}")))?;
        if loaded / INDEX_PROGRESS_EVERY > before / INDEX_PROGRESS_EVERY {
            tracing::info!(
                users = loaded,
                of = users,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "policy index loading"
            );
        }
    }
    let (builder, interner) = state;
    Ok((builder.finish(), interner))
}

impl Governance {
    /// Loads the index, the persisted counters and the prices.
    pub async fn start(store: &Store) -> Result<Governance, StoreError> {
        let started = std::time::Instant::now();
        let (snapshot, interner) = build_snapshot(store, Interner::default()).await?;
        let counters = CounterStore::default();
        let rows = store.load_counters().await?;
        for r in &rows {
            counters.insert(Counter::new(
                Arc::from(r.limit_id.as_str()),
                r.kind,
                r.user_profile_id,
                Arc::from(r.reset_duration.as_str()),
                CounterState {
                    window_start: r.window_start,
                    anchor: r.anchor,
                    used: r.used,
                    reserved: 0,
                },
            ));
        }
        let prices = PriceTable::shipped().with_overrides(store.list_price_overrides().await?);
        tracing::info!(
            keys = snapshot.key_count(),
            users = snapshot.user_count(),
            counters = rows.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "policy index loaded"
        );
        let (tx, rx) = channel();
        Ok(Governance {
            snapshot: ArcSwap::from_pointee(snapshot),
            counters: Arc::new(counters),
            dirty_tx: tx,
            dirty_rx: Mutex::new(rx),
            prices: ArcSwap::from_pointee(prices),
            rebuild: tokio::sync::Mutex::new(interner),
        })
    }

    /// Rebuilds the whole index from the store.
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let mut interner = self.rebuild.lock().await;
        let started = std::time::Instant::now();
        let (snapshot, back) = build_snapshot(store, std::mem::take(&mut *interner)).await?;
        *interner = back;
        self.snapshot.store(Arc::new(snapshot));
        metrics::histogram!("heimdall_index_rebuild_seconds")
            .record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// Replaces the entries of the given users with what the store holds
    /// now; only the index shards they live in are copied.
    pub async fn reload_users(&self, store: &Store, user_ids: &[String]) -> Result<(), StoreError> {
        let mut interner = self.rebuild.lock().await;
        let mut changes = Vec::with_capacity(user_ids.len());
        for uid in user_ids {
            changes.push((uid.clone(), store.user_index_records(uid).await?));
        }
        let next = self.snapshot.load().with_users(&mut interner, &changes);
        self.snapshot.store(Arc::new(next));
        Ok(())
    }

    /// Applies what a management write changed.
    pub async fn apply(&self, store: &Store, change: &IndexChange) -> Result<(), StoreError> {
        match change {
            IndexChange::Nothing => Ok(()),
            IndexChange::Users(ids) => self.reload_users(store, ids).await,
            IndexChange::Everything => self.reload(store).await,
        }
    }

    /// Re-reads price overrides.
    pub async fn reload_prices(&self, store: &Store) -> Result<(), StoreError> {
        let prices = PriceTable::shipped().with_overrides(store.list_price_overrides().await?);
        self.prices.store(Arc::new(prices));
        Ok(())
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    pub fn prices(&self) -> Arc<PriceTable> {
        self.prices.load_full()
    }

    /// Where settled counters announce themselves for the next flush.
    pub fn dirty_sender(&self) -> &Sender<Arc<Counter>> {
        &self.dirty_tx
    }

    /// Zeroes matched counters (propagation with `reset_usage`).
    pub fn reset_counters(&self, ids: &[(String, CounterKind)]) {
        for (id, kind) in ids {
            self.counters.reset(id, *kind);
        }
    }

    /// The background sweep of governance.md §5: moves every counter in use
    /// whose window has ended into its current window (usage to zero), so
    /// that what is flushed to the store is right for idle copies too.
    /// Returns how many counters were reset.
    pub fn sweep(&self, now: DateTime<Utc>) -> usize {
        let snapshot = self.snapshot();
        let mut reset = 0;
        for user in snapshot.users() {
            for copy in user.copies.iter() {
                for slot in copy.limits.iter() {
                    let Some(counter) = slot.counter.get() else {
                        continue;
                    };
                    let anchor = chrono::TimeZone::timestamp_millis_opt(&Utc, slot.anchor)
                        .single()
                        .unwrap_or(now);
                    let start = slot
                        .def
                        .spec
                        .window_at(anchor, now)
                        .start
                        .timestamp_millis();
                    let mut g = counter.lock();
                    if start > g.window_start {
                        let had = g.used;
                        g.roll_to(start);
                        drop(g);
                        if had != 0 && counter.mark_dirty() {
                            let _ = self.dirty_tx.send(counter.clone());
                        }
                        reset += 1;
                    }
                }
            }
        }
        reset
    }

    /// Takes every counter queued since the last call.
    pub(crate) fn drain_dirty(&self) -> Vec<Arc<Counter>> {
        let rx = self.dirty_rx.lock().unwrap_or_else(|e| e.into_inner());
        rx.try_iter().collect()
    }
}

impl LiveUsage for Governance {
    fn used(&self, limit_id: &str, kind: CounterKind, window_start: Option<DateTime<Utc>>) -> i64 {
        let Some(c) = self.counters.get(limit_id, kind) else {
            return 0;
        };
        let s = c.read();
        match window_start {
            // A counter still in an earlier window has not been reset yet
            // (lazily); its usage belongs to the past.
            Some(w) if s.window_start < w.timestamp_millis() => 0,
            _ => s.used,
        }
    }
}
