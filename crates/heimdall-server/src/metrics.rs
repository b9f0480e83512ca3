//! Prometheus metrics: the recorder, `GET /metrics`, and the functions the
//! request path calls to count. Every series is named `heimdall_…` with
//! low-cardinality labels (route, provider, model, status; never a user or key).
//!
//! The recorder is process-wide (the `metrics` facade has one global
//! recorder), installed once however many servers a test process starts.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics::{Counter, Gauge, Histogram};
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
    /// Nano-dollars charged.
    pub cost_nanos: i64,
}

/// The series one (route, provider, model, status) touches, registered
/// once and then reused: looking a series up by its labels allocated and
/// hashed four label strings per series, eight times a request (about 5 %
/// of a governed request's CPU in a profile).
struct RequestSeries {
    route: &'static str,
    provider: Box<str>,
    model: Box<str>,
    status: u16,
    requests: Counter,
    overhead: Histogram,
    // Registered on first use, so that a label set that never reached an
    // upstream (a 401, say) does not show empty series.
    upstream: OnceLock<Histogram>,
    prompt_tokens: OnceLock<Counter>,
    completion_tokens: OnceLock<Counter>,
    cost: OnceLock<Counter>,
}

impl RequestSeries {
    fn register(route: &'static str, provider: &str, model: &str, status: u16) -> Self {
        let labels = [
            ("route", route.to_owned()),
            ("provider", provider.to_owned()),
            ("model", model.to_owned()),
            ("status", status.to_string()),
        ];
        Self {
            route,
            provider: provider.into(),
            model: model.into(),
            status,
            requests: metrics::counter!("heimdall_requests_total", &labels),
            overhead: metrics::histogram!("heimdall_gateway_overhead_seconds", "route" => route),
            upstream: OnceLock::new(),
            prompt_tokens: OnceLock::new(),
            completion_tokens: OnceLock::new(),
            cost: OnceLock::new(),
        }
    }

    fn provider_model(&self) -> [(&'static str, String); 2] {
        [
            ("provider", self.provider.to_string()),
            ("model", self.model.to_string()),
        ]
    }

    fn upstream(&self) -> &Histogram {
        self.upstream.get_or_init(|| {
            metrics::histogram!("heimdall_upstream_latency_seconds", &self.provider_model())
        })
    }

    fn tokens(&self, kind: &'static str) -> &Counter {
        let cell = if kind == "prompt" {
            &self.prompt_tokens
        } else {
            &self.completion_tokens
        };
        cell.get_or_init(|| {
            let [p, m] = self.provider_model();
            metrics::counter!("heimdall_tokens_total", &[p, m, ("kind", kind.to_owned())])
        })
    }

    fn cost(&self) -> &Counter {
        self.cost.get_or_init(|| {
            metrics::counter!("heimdall_cost_nanodollars_total", &self.provider_model())
        })
    }

    fn is(&self, route: &str, provider: &str, model: &str, status: u16) -> bool {
        self.status == status
            && self.route == route
            && &*self.provider == provider
            && &*self.model == model
    }
}

/// Registered series by a hash of their labels. Read without a lock on
/// every request; a new label set copies the map (rare: providers × models
/// × statuses). Two label sets with the same hash: the later one is
/// registered on each use instead of cached (correct, just slower).
type SeriesMap = HashMap<u64, Arc<RequestSeries>>;
static SERIES: LazyLock<ArcSwap<SeriesMap>> = LazyLock::new(ArcSwap::default);

/// At most this many label sets are cached (a client sending many model
/// names must not grow the map without bound; past it, series are looked
/// up by labels as before).
const MAX_CACHED_SERIES: usize = 4096;

fn series(route: &'static str, provider: &str, model: &str, status: u16) -> Arc<RequestSeries> {
    let hash = rustc_hash::FxBuildHasher.hash_one((route, provider, model, status));
    if let Some(s) = SERIES.load().get(&hash)
        && s.is(route, provider, model, status)
    {
        return s.clone();
    }
    let fresh = Arc::new(RequestSeries::register(route, provider, model, status));
    // Handles made before the recorder exists would stay no-ops: cache
    // only once it is installed.
    if handle().is_some() && SERIES.load().len() < MAX_CACHED_SERIES {
        SERIES.rcu(|map| {
            let mut next = SeriesMap::clone(map);
            next.entry(hash).or_insert_with(|| fresh.clone());
            next
        });
    }
    fresh
}

/// Counts a finished request.
pub fn record_request(s: &RequestSample<'_>) {
    let series = series(s.route, s.provider, s.model, s.status);
    series.requests.increment(1);
    if !s.upstream.is_zero() {
        series.upstream().record(s.upstream.as_secs_f64());
    }
    series.overhead.record(s.overhead.as_secs_f64());
    if s.prompt_tokens > 0 || s.completion_tokens > 0 {
        series.tokens("prompt").increment(s.prompt_tokens);
        series.tokens("completion").increment(s.completion_tokens);
    }
    if s.cost_nanos > 0 {
        series
            .cost()
            .increment(u64::try_from(s.cost_nanos).unwrap_or(0));
    }
}

/// The in-flight gauge of each route, registered once.
static IN_FLIGHT: LazyLock<ArcSwap<HashMap<&'static str, Gauge>>> = LazyLock::new(ArcSwap::default);

/// Adjusts the in-flight gauge of a route.
pub fn in_flight(route: &'static str, delta: f64) {
    if let Some(g) = IN_FLIGHT.load().get(route) {
        g.increment(delta);
        return;
    }
    let gauge = metrics::gauge!("heimdall_in_flight_requests", "route" => route);
    gauge.increment(delta);
    if handle().is_some() {
        IN_FLIGHT.rcu(|map| {
            let mut next = HashMap::clone(map);
            next.entry(route).or_insert_with(|| gauge.clone());
            next
        });
    }
}

/// Counts an attempt abandoned for a fallback.
pub fn fallback(provider: &str) {
    metrics::counter!("heimdall_fallbacks_total", "provider" => provider.to_owned()).increment(1);
}
