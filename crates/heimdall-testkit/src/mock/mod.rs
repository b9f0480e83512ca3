//! The mock provider: a fast stand-in upstream speaking the OpenAI and the
//! Anthropic wire formats, for tests, the quick start and benchmarks.
//!
//! `MockProvider::start(opts)` binds port 0 and returns a handle with the
//! base URL; the handle records what arrived (so tests can assert what went
//! upstream) and can script failures. Behaviour per request comes from the
//! options and the `x-mock-*` headers (see `behaviour`). It must stay cheap:
//! no locks held across awaits, no work beyond rendering the answer.

mod anthropic;
mod behaviour;
mod openai;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderMap, Method};

pub use behaviour::MockOptions;

/// Most requests a mock keeps for inspection (oldest dropped first).
const MAX_RECORDED: usize = 256;

/// One request as the mock received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: Method,
    /// Path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Headers as received.
    pub headers: HeaderMap,
    /// Body as received.
    pub body: Bytes,
}

impl RecordedRequest {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// Shared state of one mock server.
#[derive(Debug, Default)]
pub(crate) struct MockState {
    pub(crate) opts: MockOptions,
    recorded: Mutex<std::collections::VecDeque<RecordedRequest>>,
    count: AtomicU64,
    /// Scripted failures: how many next requests fail, and with what status.
    fail_next: AtomicU64,
    fail_status: AtomicU64,
    pub(crate) streams_completed: AtomicU64,
    pub(crate) streams_cancelled: AtomicU64,
}

impl MockState {
    fn new(opts: MockOptions) -> Self {
        Self {
            opts,
            ..Default::default()
        }
    }

    pub(crate) fn record(&self, method: &Method, path: &str, headers: &HeaderMap, body: &Bytes) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if !self.opts.record {
            return;
        }
        let req = RecordedRequest {
            method: method.clone(),
            path: path.to_owned(),
            headers: headers.clone(),
            body: body.clone(),
        };
        if let Ok(mut q) = self.recorded.lock() {
            if q.len() >= MAX_RECORDED {
                q.pop_front();
            }
            q.push_back(req);
        }
    }

    /// Takes one scripted failure, if any is pending.
    pub(crate) fn take_scripted_failure(&self) -> Option<u16> {
        let taken = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        taken
            .ok()
            .map(|_| self.fail_status.load(Ordering::SeqCst) as u16)
    }
}

/// Starts mock servers.
#[derive(Debug)]
pub struct MockProvider;

impl MockProvider {
    /// Binds `127.0.0.1:0` and serves in the background until the handle drops.
    pub async fn start(opts: MockOptions) -> std::io::Result<MockHandle> {
        Self::start_on("127.0.0.1:0".parse().map_err(std::io::Error::other)?, opts).await
    }

    /// Binds `addr` and serves in the background until the handle drops.
    pub async fn start_on(addr: SocketAddr, opts: MockOptions) -> std::io::Result<MockHandle> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(MockState::new(opts));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = router(state.clone());
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            if let Err(e) = axum::serve(nodelay(listener), app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(error = %e, "mock provider stopped");
            }
        });
        Ok(MockHandle {
            base_url: format!("http://{addr}"),
            addr,
            state,
            _shutdown: tx,
        })
    }
}

/// Serves the mock on `listener` until `shutdown` resolves (the CLI uses this).
pub async fn serve(
    listener: tokio::net::TcpListener,
    opts: MockOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(Arc::new(MockState::new(opts)));
    axum::serve(nodelay(listener), app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Streams are many small frames: send each at once (no Nagle delay).
fn nodelay(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    })
}

fn router(state: Arc<MockState>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/models", get(openai::models))
        .route("/v1/messages", post(anthropic::messages))
        .with_state(state)
}

/// A running mock; dropping it stops the server.
#[derive(Debug)]
pub struct MockHandle {
    /// `http://127.0.0.1:PORT` (no `/v1`), what a provider's `base_url` takes.
    pub base_url: String,
    /// Bound address.
    pub addr: SocketAddr,
    state: Arc<MockState>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl MockHandle {
    /// Requests received so far (oldest first, at most 256).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state
            .recorded
            .lock()
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The last request received.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.state
            .recorded
            .lock()
            .ok()
            .and_then(|q| q.back().cloned())
    }

    /// How many requests arrived (recorded or not).
    pub fn request_count(&self) -> u64 {
        self.state.count.load(Ordering::Relaxed)
    }

    /// Makes the next `n` requests fail with `status`.
    pub fn fail_next(&self, n: u64, status: u16) {
        self.state
            .fail_status
            .store(u64::from(status), Ordering::SeqCst);
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Streams that ended because the reader went away before the end.
    pub fn cancelled_streams(&self) -> u64 {
        self.state.streams_cancelled.load(Ordering::SeqCst)
    }

    /// Streams sent to the end.
    pub fn completed_streams(&self) -> u64 {
        self.state.streams_completed.load(Ordering::SeqCst)
    }
}
