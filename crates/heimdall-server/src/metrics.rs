//! Prometheus metrics: the recorder, `GET /metrics`, and the functions the
//! request path calls to count. Every series is named `heimdall_…` with
//! low-cardinality labels (route, provider, model, status; never a user or key).
//!
//! The recorder is process-wide (the `metrics` facade has one global
//! recorder), installed once however many servers a test process starts.

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::auth::require_admin;
use crate::state::AppState;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets in seconds: sub-millisecond overhead up to long generations.
const SECONDS_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    120.0,
];

/// Installs the recorder on first use; `None` if another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS_BUCKETS)
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    metrics::describe_counter!(
        "heimdall_requests_total",
        "Inference requests by route, provider, model and status"
    );
    metrics::describe_histogram!(
        "heimdall_upstream_latency_seconds",
        "Time spent waiting on the upstream provider"
    );
    metrics::describe_histogram!(
        "heimdall_gateway_overhead_seconds",
        "Total request time minus upstream time"
    );
    metrics::describe_counter!(
        "heimdall_tokens_total",
        "Tokens reported by upstreams, by provider, model and kind"
    );
    metrics::describe_gauge!(
        "heimdall_in_flight_requests",
        "Inference requests being served"
    );
    metrics::describe_counter!(
        "heimdall_fallbacks_total",
        "Attempts abandoned for the next fallback entry"
    );
}

/// `GET /metrics`; behind admin auth unless `metrics.public`.
pub fn routes(state: &AppState) -> Router<AppState> {
    handle();
    let r = Router::new().route("/metrics", get(render));
    if state.config.metrics.public {
        r
    } else {
        r.route_layer(middleware::from_fn_with_state(state.clone(), require_admin))
    }
}

async fn render(State(_): State<AppState>) -> Response {
    let text = handle().map(PrometheusHandle::render).unwrap_or_default();
    ([(CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// One finished inference request.
pub struct RequestSample<'a> {
    pub route: &'static str,
    pub provider: &'a str,
    pub model: &'a str,
    pub status: u16,
    pub upstream: Duration,
    pub overhead: Duration,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// Counts a finished request.
pub fn record_request(s: &RequestSample<'_>) {
    let labels = [
        ("route", s.route.to_owned()),
        ("provider", s.provider.to_owned()),
        ("model", s.model.to_owned()),
        ("status", s.status.to_string()),
    ];
    metrics::counter!("heimdall_requests_total", &labels).increment(1);
    let pm = [
        ("provider", s.provider.to_owned()),
        ("model", s.model.to_owned()),
    ];
    if !s.upstream.is_zero() {
        metrics::histogram!("heimdall_upstream_latency_seconds", &pm)
            .record(s.upstream.as_secs_f64());
    }
    metrics::histogram!("heimdall_gateway_overhead_seconds", "route" => s.route)
        .record(s.overhead.as_secs_f64());
    if s.prompt_tokens > 0 || s.completion_tokens > 0 {
        let with = |kind: &'static str| [pm[0].clone(), pm[1].clone(), ("kind", kind.to_owned())];
        metrics::counter!("heimdall_tokens_total", &with("prompt")).increment(s.prompt_tokens);
        metrics::counter!("heimdall_tokens_total", &with("completion"))
            .increment(s.completion_tokens);
    }
}

/// Adjusts the in-flight gauge of a route.
pub fn in_flight(route: &'static str, delta: f64) {
    metrics::gauge!("heimdall_in_flight_requests", "route" => route).increment(delta);
}

/// Counts an attempt abandoned for a fallback.
pub fn fallback(provider: &str) {
    metrics::counter!("heimdall_fallbacks_total", "provider" => provider.to_owned()).increment(1);
}
