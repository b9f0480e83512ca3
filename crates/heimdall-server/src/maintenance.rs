//! Background work of a node: automatic key rotation (and, with governance,
//! the usage flush and window sweep). Each job is a plain async function that
//! tests call directly with an injected clock; `run` schedules them.

use std::time::Duration;

use crate::state::AppState;

/// How often due rotations are looked for.
pub const ROTATION_CHECK: Duration = Duration::from_secs(30);

/// The shortest grace of an automatic rotation: a day, so that applications
/// can pick the new value up from the quota route.
pub const AUTO_ROTATION_MIN_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Rotates the managed keys of every template whose schedule is due.
pub async fn rotate_due(state: &AppState) -> Result<u64, heimdall_store::StoreError> {
    let grace = state
        .config
        .governance
        .vk_rotation_grace()
        .max(AUTO_ROTATION_MIN_GRACE);
    let grace = chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::days(1));
    let n = state
        .store
        .rotate_due_keys(grace, state.clock.now())
        .await?;
    if n > 0 {
        state.governance.reload(&state.store).await?;
        tracing::info!(keys = n, "rotated virtual keys on their profiles' schedule");
    }
    Ok(n)
}

/// Runs the background jobs until the task is dropped.
pub async fn run(state: AppState) {
    let mut tick = tokio::time::interval(ROTATION_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = rotate_due(&state).await {
            tracing::warn!(error = %e, "automatic key rotation failed; will retry");
        }
    }
}
