//! The attempt loop: the primary target, then each `fallbacks` entry, each
//! admitted by governance before it is tried (inference.md §Routes).
//!
//! An attempt that fails with a connection error, a timeout, 429 or 5xx
//! (after the provider's own retries) moves on to the next entry. When all
//! fail: the last upstream error, or the first governance denial if nothing
//! could be tried. It must not encode responses.

use std::future::Future;
use std::time::Instant;

use heimdall_providers::{ProviderError, Upstream};

use super::governance_seam::{self, AttemptInfo, Caller};
use super::request::provider_error;
use super::routing::Target;
use super::telemetry::RequestRecord;
use crate::error::ApiError;
use crate::metrics;
use crate::state::AppState;

/// What the loop needs besides the call itself.
pub struct AttemptCtx<'a> {
    pub state: &'a AppState,
    pub caller: &'a Caller,
    pub targets: &'a [Target],
    pub body_bytes: usize,
    pub output_cap: Option<u64>,
    pub model_requested: &'a str,
}

/// Runs `call` on each target in turn; returns the answer and who gave it.
pub async fn run<T, F, Fut>(
    ctx: AttemptCtx<'_>,
    rec: &mut RequestRecord,
    mut call: F,
) -> Result<(T, Target), ApiError>
where
    F: FnMut(Upstream, Target) -> Fut,
    Fut: Future<Output = Result<T, ProviderError>>,
{
    let snapshot = ctx.state.providers.snapshot();
    rec.prompt_estimate = (ctx.body_bytes as u64).div_ceil(4);
    let mut first_denial: Option<ApiError> = None;
    let mut last_error: Option<ApiError> = None;
    for (i, target) in ctx.targets.iter().enumerate() {
        let info = AttemptInfo {
            target,
            body_bytes: ctx.body_bytes,
            output_cap: ctx.output_cap,
        };
        let admission = match governance_seam::admit(ctx.state, ctx.caller, info) {
            Ok(a) => a,
            Err(denial) => {
                first_denial.get_or_insert(
                    denial
                        .with_extra("provider", target.provider.clone())
                        .with_extra("model_requested", ctx.model_requested)
                        .with_extra("request_type", rec.request_type()),
                );
                continue;
            }
        };
        let Some(upstream) = snapshot.get(&target.provider) else {
            // removed between decoding and now
            last_error = Some(ApiError::invalid_request(format!(
                "unknown provider \"{}\"",
                target.provider
            )));
            admission.settle(None, false);
            continue;
        };
        rec.target = Some(target.clone());
        let started = Instant::now();
        let result = call(upstream.clone(), target.clone()).await;
        rec.add_upstream(started.elapsed());
        match result {
            Ok(v) => {
                rec.hold(admission);
                return Ok((v, target.clone()));
            }
            Err(e) => {
                admission.settle(None, false);
                let err = provider_error(&e, target, ctx.model_requested, rec.request_type());
                if e.allows_fallback() && i + 1 < ctx.targets.len() {
                    tracing::info!(event_id = %rec.event_id, provider = %target.provider, model = %target.model,
                        status = e.status(), error = %e, "attempt failed; trying the next fallback");
                    metrics::fallback(&target.provider);
                    last_error = Some(err);
                    continue;
                }
                return Err(err);
            }
        }
    }
    Err(last_error
        .or(first_denial)
        .unwrap_or_else(|| ApiError::internal("no provider could be tried for this request")))
}
