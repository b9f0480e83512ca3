//! Write-behind of usage: counters changed since the last flush are written
//! to the store in one batch at most `governance.flush_interval` apart, and
//! all of them on graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use heimdall_core::policy::Counter;
use heimdall_store::{CounterRow, StoreError};

use crate::state::AppState;

fn row(c: &Counter) -> CounterRow {
    let s = c.read();
    CounterRow {
        limit_id: c.limit_id.to_string(),
        kind: c.kind,
        user_profile_id: c.copy_id,
        used: s.used,
        window_start: s.window_start,
        reset_duration: c.duration.to_string(),
        anchor: s.anchor,
    }
}

/// Writes the queued counters (or every counter when `all`); returns how
/// many were written. On failure the counters are queued again.
pub async fn flush_now(state: &AppState, all: bool) -> Result<usize, StoreError> {
    let g = &state.governance;
    let mut batch: Vec<Arc<Counter>> = g.drain_dirty();
    if all {
        batch = g.counters.all();
    }
    batch.retain(|c| c.take_dirty() || all);
    if batch.is_empty() {
        return Ok(0);
    }
    let rows: Vec<CounterRow> = batch.iter().map(|c| row(c)).collect();
    let started = std::time::Instant::now();
    match state.store.save_counters(&rows, Utc::now()).await {
        Ok(()) => {
            metrics::histogram!("heimdall_store_flush_seconds")
                .record(started.elapsed().as_secs_f64());
            metrics::counter!("heimdall_store_flushed_counters_total").increment(rows.len() as u64);
            Ok(rows.len())
        }
        Err(e) => {
            for c in &batch {
                if c.mark_dirty() {
                    let _ = g.dirty_sender().send(c.clone());
                }
            }
            Err(e)
        }
    }
}

/// Flushes on the configured interval until the task is dropped.
pub async fn flush_loop(state: AppState) {
    let every = state
        .config
        .governance
        .flush_interval()
        .max(Duration::from_millis(10));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = flush_now(&state, false).await {
            tracing::warn!(error = %e, "usage flush failed; will retry at the next interval");
        }
    }
}
