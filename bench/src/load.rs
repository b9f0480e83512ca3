//! The load generator: open loop at a fixed arrival rate, and closed loop
//! (N workers back to back) for saturation throughput.
//!
//! Open loop: request `i` is due at `start + i / rate` and is sent then,
//! whether or not earlier ones have finished. A dedicated pacer thread sleeps
//! until each due time (an OS sleep is far finer than tokio's 1 ms timer
//! wheel) and spawns the request onto the runtime. Latency is measured from
//! the *due* time, not from the moment the request left, so a stall of the
//! system under test (or of the generator) shows up in the figures instead of
//! silently delaying the next sends (coordinated omission).
//!
//! Connections are HTTP/1.1 keep-alive from one pooled hyper client; a new
//! connection is opened only when every pooled one is busy. At most
//! `max_in_flight` requests are in flight (a request due while all slots
//! are busy waits, and the wait counts). Every run is bounded in count
//! (rate × duration) and in time (each request ends by its due time plus
//! the timeout).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::stats::new_histogram;

/// The pooled HTTP/1.1 client every request of the harness goes through.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A keep-alive client with `TCP_NODELAY`, as a gateway's own client is.
pub fn http_client() -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(4096)
        .pool_idle_timeout(Duration::from_secs(60))
        .build(connector)
}

/// One kind of request, sent over and over.
#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub uri: Uri,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    /// A whole request (to the end of the body, counted from its due time)
    /// must finish within this.
    pub timeout: Duration,
    /// Open loop: at most this many requests in flight (and so connections);
    /// a request due while all are busy waits for one, and the wait counts
    /// in its latency. Like a client's connection pool, it keeps an
    /// overloaded target from being buried under thousands of connections.
    pub max_in_flight: usize,
}

impl RequestSpec {
    fn build(&self) -> anyhow::Result<Request<Full<Bytes>>> {
        let mut b = Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(http::header::CONTENT_TYPE, "application/json");
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        Ok(b.body(Full::new(self.body.clone()))?)
    }
}

/// What a run recorded.
#[derive(Debug)]
pub struct LoadResult {
    /// Requests sent.
    pub sent: u64,
    /// Requests that ended with status 200 and a complete body.
    pub ok: u64,
    /// Failures by kind: `http_<status>`, `connect`, `body`, `timeout`, …
    pub errors: BTreeMap<String, u64>,
    /// Due time (open loop) or send time (closed loop) to the end of the body, ns.
    pub total: Histogram<u64>,
    /// Due or send time to the first non-empty body chunk, ns.
    pub ttfb: Histogram<u64>,
    /// How late the pacer sent each request, ns (open loop only).
    pub send_lag: Histogram<u64>,
    /// From the first due time to the last completion.
    pub elapsed: Duration,
}

#[derive(Debug)]
struct Recorder {
    total: Histogram<u64>,
    ttfb: Histogram<u64>,
    send_lag: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<String, u64>,
}

type Shared = Arc<Mutex<Recorder>>;

fn new_recorder() -> anyhow::Result<Shared> {
    Ok(Arc::new(Mutex::new(Recorder {
        total: new_histogram()?,
        ttfb: new_histogram()?,
        send_lag: new_histogram()?,
        ok: 0,
        errors: BTreeMap::new(),
    })))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

enum Outcome {
    Ok { ttfb: Duration, total: Duration },
    Failed(String),
}

/// Sends one request and reads its body to the end; times are from `origin`.
async fn exchange(client: &HttpClient, spec: &RequestSpec, origin: Instant) -> Outcome {
    let req = match spec.build() {
        Ok(r) => r,
        Err(_) => return Outcome::Failed("build".into()),
    };
    let resp = match client.request(req).await {
        Ok(r) => r,
        Err(e) if e.is_connect() => return Outcome::Failed("connect".into()),
        Err(_) => return Outcome::Failed("request".into()),
    };
    let status = resp.status();
    let mut body = resp.into_body();
    let mut ttfb = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if ttfb.is_none() && f.data_ref().is_some_and(|d| !d.is_empty()) {
                    ttfb = Some(origin.elapsed());
                }
            }
            Err(_) => return Outcome::Failed("body".into()),
        }
    }
    let total = origin.elapsed();
    if status != http::StatusCode::OK {
        return Outcome::Failed(format!("http_{}", status.as_u16()));
    }
    Outcome::Ok {
        ttfb: ttfb.unwrap_or(total),
        total,
    }
}

/// One request, which must end by `origin + timeout` (waiting for a slot
/// included), so that nothing of a run outlives it by more than a timeout.
async fn one(
    client: HttpClient,
    spec: Arc<RequestSpec>,
    origin: Instant,
    rec: Shared,
    slots: Option<Arc<Semaphore>>,
) {
    let deadline = tokio::time::Instant::from_std(origin + spec.timeout);
    let work = async {
        let _slot = match &slots {
            Some(s) => match s.clone().acquire_owned().await {
                Ok(p) => Some(p),
                Err(_) => return Outcome::Failed("closed".into()),
            },
            None => None,
        };
        exchange(&client, &spec, origin).await
    };
    let outcome = match tokio::time::timeout_at(deadline, work).await {
        Ok(o) => o,
        Err(_) => Outcome::Failed("timeout".into()),
    };
    let Ok(mut r) = rec.lock() else { return };
    match outcome {
        Outcome::Ok { ttfb, total } => {
            r.ok += 1;
            // values above the histogram's bound are clamped, never dropped
            r.total.saturating_record(nanos(total));
            r.ttfb.saturating_record(nanos(ttfb));
        }
        Outcome::Failed(kind) => *r.errors.entry(kind).or_insert(0) += 1,
    }
}

fn finish(rec: Shared, sent: u64, elapsed: Duration) -> anyhow::Result<LoadResult> {
    let r = match Arc::try_unwrap(rec) {
        Ok(m) => m
            .into_inner()
            .map_err(|_| anyhow::anyhow!("recorder poisoned"))?,
        // a request still running past the drain deadline holds a clone
        Err(shared) => {
            let g = shared
                .lock()
                .map_err(|_| anyhow::anyhow!("recorder poisoned"))?;
            Recorder {
                total: g.total.clone(),
                ttfb: g.ttfb.clone(),
                send_lag: g.send_lag.clone(),
                ok: g.ok,
                errors: g.errors.clone(),
            }
        }
    };
    let mut errors = r.errors;
    let accounted = r.ok + errors.values().sum::<u64>();
    if accounted < sent {
        *errors.entry("unfinished".into()).or_insert(0) += sent - accounted;
    }
    Ok(LoadResult {
        sent,
        ok: r.ok,
        errors,
        total: r.total,
        ttfb: r.ttfb,
        send_lag: r.send_lag,
        elapsed,
    })
}

/// Waits until `done` reaches `n` or the deadline passes (polling, no sleep
/// on a state we could be told about: the counter is bumped by detached tasks).
async fn drain(done: &AtomicU64, n: u64, deadline: Instant) {
    while done.load(Ordering::Acquire) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Sends `rate × duration` requests at a fixed arrival rate.
pub async fn open_loop(
    client: &HttpClient,
    spec: &RequestSpec,
    rate: u64,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    anyhow::ensure!(rate > 0, "rate must be positive");
    let n = (rate as f64 * duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let rec = new_recorder()?;
    let done = Arc::new(AtomicU64::new(0));
    let timeout = spec.timeout;
    let spec = Arc::new(spec.clone());
    let handle = tokio::runtime::Handle::current();
    let slots = Arc::new(Semaphore::new(spec.max_in_flight.max(1)));
    let start = Instant::now() + Duration::from_millis(5);
    let pacer = {
        let (rec, done, client) = (rec.clone(), done.clone(), client.clone());
        std::thread::Builder::new()
            .name("pacer".into())
            .spawn(move || {
                for i in 0..n {
                    let due = start + interval.mul_f64(i as f64);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    let lag = Instant::now().saturating_duration_since(due);
                    if let Ok(mut r) = rec.lock() {
                        r.send_lag.saturating_record(nanos(lag));
                    }
                    let (c, s, r, d) = (client.clone(), spec.clone(), rec.clone(), done.clone());
                    let slots = slots.clone();
                    handle.spawn(async move {
                        one(c, s, due, r, Some(slots)).await;
                        d.fetch_add(1, Ordering::Release);
                    });
                }
            })?
    };
    tokio::task::spawn_blocking(move || pacer.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the pacer thread panicked"))?;
    // every request ends by its due time + timeout, so one timeout after
    // the last due time they have all ended
    let last_due = start + interval.mul_f64(n.saturating_sub(1) as f64);
    let deadline = last_due + timeout + Duration::from_secs(1);
    drain(&done, n, deadline).await;
    finish(rec, n, start.elapsed())
}

/// `concurrency` workers send back to back for `duration`; the throughput is
/// `ok / elapsed`. Latency here is service time (closed loop), for context.
pub async fn closed_loop(
    client: &HttpClient,
    spec: &RequestSpec,
    concurrency: usize,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let rec = new_recorder()?;
    let sent = Arc::new(AtomicU64::new(0));
    let spec = Arc::new(spec.clone());
    let start = Instant::now();
    let end = start + duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (c, s, r, sent) = (client.clone(), spec.clone(), rec.clone(), sent.clone());
        workers.spawn(async move {
            while Instant::now() < end {
                sent.fetch_add(1, Ordering::Relaxed);
                one(c.clone(), s.clone(), Instant::now(), r.clone(), None).await;
            }
        });
    }
    while workers.join_next().await.is_some() {}
    let elapsed = start.elapsed();
    finish(rec, sent.load(Ordering::Relaxed), elapsed)
}
