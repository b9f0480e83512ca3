//! The per-request record: event id, timings, outcome and usage, emitted as
//! metrics and one log line when the request ends — also when the client goes
//! away mid-stream (the record lives in the stream and logs on drop).
//!
//! It also holds the governance admission so that settlement happens exactly
//! once, whatever path the request takes. It must not block or do I/O.

use std::time::{Duration, Instant};

use heimdall_providers::types::Usage;

use super::governance_seam::Admission;
use super::routing::{RouteKind, Target};
use crate::error::ApiError;
use crate::metrics;

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still running (a stream whose body is being sent).
    Running,
    /// Answered in full.
    Ok,
    /// Answered with an error.
    Error,
    /// The client went away before the end.
    ClientClosed,
}

impl Outcome {
    /// The name in the request log.
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::ClientClosed => "client_closed",
        }
    }
}

/// A random (v4) UUID from the thread's generator: `Uuid::new_v4` asks the
/// kernel for randomness on every call, a system call per request. An
/// event id needs to be unique, not secret.
fn event_id() -> String {
    uuid::Builder::from_random_bytes(rand::random::<[u8; 16]>())
        .into_uuid()
        .to_string()
}

/// One request's record; emits on drop.
#[derive(Debug)]
pub struct RequestRecord {
    pub event_id: String,
    route: &'static str,
    request_type: &'static str,
    started: Instant,
    upstream: Duration,
    pub target: Option<Target>,
    pub status: u16,
    pub outcome: Outcome,
    pub usage: Option<Usage>,
    user: heimdall_core::policy::CompactId,
    /// The virtual key's id (never its value), when governed.
    key_id: Option<heimdall_core::policy::CompactId>,
    /// Nano-dollars charged at settlement.
    cost_nanos: i64,
    admission: Option<Admission>,
    /// ceil(request bytes / 4), for charging a stream cut short.
    pub prompt_estimate: u64,
    /// Characters of generated text forwarded so far (streams).
    pub streamed_chars: u64,
    /// The upstream failed (cut, timeout, bad event) after the stream started.
    cut_mid_stream: bool,
}

impl RequestRecord {
    /// Starts a record (counts the request as in flight).
    pub fn start(route: RouteKind, request_type: &'static str) -> Self {
        metrics::in_flight(route.label(), 1.0);
        Self {
            event_id: event_id(),
            route: route.label(),
            request_type,
            started: Instant::now(),
            upstream: Duration::ZERO,
            target: None,
            status: 200,
            outcome: Outcome::Running,
            usage: None,
            user: super::governance_seam::anonymous(),
            key_id: None,
            cost_nanos: 0,
            admission: None,
            prompt_estimate: 0,
            streamed_chars: 0,
            cut_mid_stream: false,
        }
    }

    /// The envelope's `extra_fields.request_type`.
    pub fn request_type(&self) -> &'static str {
        self.request_type
    }

    /// Adds time spent waiting on the upstream.
    pub fn add_upstream(&mut self, d: Duration) {
        self.upstream += d;
    }

    /// Names the caller in the log line: user, and key id when governed.
    pub fn identify(&mut self, caller: &super::governance_seam::Caller) {
        self.user = caller.user.clone();
        self.key_id = caller.governed.as_ref().map(|c| c.key_id.clone());
    }

    /// Holds the admission of the attempt that answered (settled on drop).
    pub fn hold(&mut self, admission: Admission) {
        if let Some(old) = self.admission.replace(admission) {
            self.cost_nanos += old.settle(None, false);
        }
    }

    /// Settles now with the usage seen so far (a stream's final usage has
    /// arrived): before the last event reaches the client, so that a client
    /// that reads its quota right after the stream sees the charge.
    pub fn settle_now(&mut self) {
        if let Some(a) = self.admission.take() {
            self.cost_nanos += a.settle(self.usage.as_ref(), true);
        }
    }

    /// Governance headers of the admission that answered (rate limits and
    /// budget remaining), for the response.
    pub fn response_headers(&self) -> Vec<(axum::http::HeaderName, axum::http::HeaderValue)> {
        self.admission
            .as_ref()
            .map(Admission::response_headers)
            .unwrap_or_default()
    }

    /// Adds the governance headers to a response.
    pub fn decorate(&self, resp: &mut axum::response::Response) {
        apply_headers(resp, self.response_headers());
    }

    /// Marks the request answered.
    pub fn finish_ok(&mut self) {
        self.outcome = Outcome::Ok;
    }

    /// Marks a stream whose upstream failed after it started (cut, timeout):
    /// it is charged for what was generated (see `Drop`).
    pub fn fail_mid_stream(&mut self, err: ApiError) -> ApiError {
        self.cut_mid_stream = true;
        self.fail(err)
    }

    /// Marks the request failed and stamps the error with this event id.
    pub fn fail(&mut self, mut err: ApiError) -> ApiError {
        self.status = err.status.as_u16();
        self.outcome = Outcome::Error;
        err.details.event_id = Some(self.event_id.clone());
        err
    }
}

impl Drop for RequestRecord {
    fn drop(&mut self) {
        if self.outcome == Outcome::Running {
            self.outcome = Outcome::ClientClosed;
        }
        // An admission is held only once the upstream answered; a client
        // that leaves after that still cost the prompt. A stream the
        // upstream broke (cut, timeout) before its final usage is charged
        // the same way once something was generated: the provider's usage
        // so far, or an estimate of the text already sent.
        let generated_before_cut =
            self.cut_mid_stream && (self.streamed_chars > 0 || self.usage.is_some());
        if (self.outcome == Outcome::ClientClosed || generated_before_cut)
            && self.admission.is_some()
        {
            // The stream ended before the provider's final usage: charge what
            // was generated — the provider's figures so far (Anthropic reports
            // the input at the start), and at least an estimate of the
            // streamed text (about four characters a token).
            let generated = self.streamed_chars.div_ceil(4);
            let mut u = self.usage.take().unwrap_or_else(|| Usage {
                prompt_tokens: self.prompt_estimate,
                ..Usage::default()
            });
            u.completion_tokens = u.completion_tokens.max(generated);
            u.total_tokens = u.prompt_tokens + u.completion_tokens;
            self.usage = Some(u);
        }
        if let Some(a) = self.admission.take() {
            self.cost_nanos += a.settle(self.usage.as_ref(), self.outcome != Outcome::Error);
        }
        metrics::in_flight(self.route, -1.0);
        let total = self.started.elapsed();
        let overhead = total.saturating_sub(self.upstream);
        let (provider, model) = self
            .target
            .as_ref()
            .map_or(("", ""), |t| (t.provider.as_str(), t.model.as_str()));
        let (prompt, completion) = self
            .usage
            .as_ref()
            .map_or((0, 0), |u| (u.prompt_tokens, u.completion_tokens));
        // 499: the convention for "client closed request"
        let status = if self.outcome == Outcome::ClientClosed {
            499
        } else {
            self.status
        };
        metrics::record_request(&metrics::RequestSample {
            route: self.route,
            provider,
            model,
            status,
            upstream: self.upstream,
            overhead,
            prompt_tokens: prompt,
            completion_tokens: completion,
            cost_nanos: self.cost_nanos,
        });
        tracing::info!(
            target: "heimdall::request",
            event_id = %self.event_id,
            route = self.route,
            request_type = self.request_type,
            key_id = self.key_id.as_ref().map(tracing::field::display),
            user = %self.user,
            provider,
            model,
            status,
            outcome = self.outcome.as_str(),
            prompt_tokens = prompt,
            completion_tokens = completion,
            cost_usd = self.cost_nanos as f64 / 1e9,
            upstream_ms = self.upstream.as_secs_f64() * 1000.0,
            overhead_ms = overhead.as_secs_f64() * 1000.0,
            "request"
        );
    }
}

/// Adds headers to a response.
pub fn apply_headers(
    resp: &mut axum::response::Response,
    headers: Vec<(axum::http::HeaderName, axum::http::HeaderValue)>,
) {
    for (k, v) in headers {
        resp.headers_mut().insert(k, v);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_ids_are_distinct_v4_uuids() {
        let a = uuid::Uuid::parse_str(&super::event_id()).expect("a UUID");
        let b = uuid::Uuid::parse_str(&super::event_id()).expect("a UUID");
        assert_eq!(a.get_version_num(), 4);
        assert_ne!(a, b);
    }
}
