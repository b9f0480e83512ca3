//! How the mock decides what to do for one request: options, `x-mock-*`
//! headers, forced and random errors, usage figures, generated text, and the
//! SSE body (with optional pauses, a mid-stream cut, and cancel detection).
//!
//! Vendor formats are not known here; `openai` and `anthropic` render them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{Stream, StreamExt};
use http::HeaderMap;

use super::MockState;

/// Options of a mock server (the `heimdall mock-provider` flags).
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Wait before answering (time to first byte).
    pub latency_ms: u64,
    /// Completion tokens per answer.
    pub tokens: u64,
    /// Prompt tokens to report; `None` = ceil(body bytes / 4).
    pub prompt_tokens: Option<u64>,
    /// Content chunks per stream; `None` = one per token.
    pub chunks: Option<u64>,
    /// Fraction of requests that fail with 500 at random.
    pub error_rate: f64,
    /// Keep the requests for inspection (tests); off for benchmarks.
    pub record: bool,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            tokens: 16,
            prompt_tokens: None,
            chunks: None,
            error_rate: 0.0,
            record: true,
        }
    }
}

/// What one request gets, after options and headers.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub latency: Duration,
    pub chunk_delay: Duration,
    pub fail_status: Option<u16>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub chunks: u64,
    /// Stop the stream abruptly after this many events.
    pub cut_after: Option<usize>,
    /// Answer a stream request with the whole JSON answer, as servers that
    /// ignore `stream: true` do (`x-mock-ignore-stream: 1`).
    pub ignore_stream: bool,
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

impl Plan {
    pub(crate) fn new(state: &MockState, headers: &HeaderMap, body_len: usize) -> Self {
        let opts = &state.opts;
        let forced = header_u64(headers, "x-mock-status")
            .map(|s| s as u16)
            .filter(|s| *s >= 400);
        let random =
            (opts.error_rate > 0.0 && rand::random::<f64>() < opts.error_rate).then_some(500);
        let fail_status = forced.or_else(|| state.take_scripted_failure()).or(random);
        let completion_tokens = header_u64(headers, "x-mock-tokens")
            .unwrap_or(opts.tokens)
            .max(1);
        Self {
            latency: Duration::from_millis(
                header_u64(headers, "x-mock-latency-ms").unwrap_or(opts.latency_ms),
            ),
            chunk_delay: Duration::from_millis(
                header_u64(headers, "x-mock-chunk-delay-ms").unwrap_or(0),
            ),
            fail_status,
            prompt_tokens: opts
                .prompt_tokens
                .unwrap_or_else(|| (body_len as u64).div_ceil(4))
                .max(1),
            completion_tokens,
            chunks: opts
                .chunks
                .unwrap_or(completion_tokens)
                .clamp(1, completion_tokens),
            cut_after: header_u64(headers, "x-mock-cut-after").map(|n| n as usize),
            ignore_stream: header_u64(headers, "x-mock-ignore-stream").is_some_and(|v| v > 0),
        }
    }

    pub(crate) async fn wait(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    /// The answer text: `completion_tokens` words.
    pub(crate) fn text(&self) -> String {
        words(self.completion_tokens).concat()
    }

    /// The answer text split into `chunks` pieces.
    pub(crate) fn text_chunks(&self) -> Vec<String> {
        split(&words(self.completion_tokens), self.chunks as usize)
    }
}

const WORDS: [&str; 8] = [
    "Mock",
    " answer",
    " from",
    " the",
    " Heimdall",
    " test",
    " provider",
    ".",
];

fn words(n: u64) -> Vec<&'static str> {
    (0..n as usize).map(|i| WORDS[i % WORDS.len()]).collect()
}

/// Splits items into `parts` contiguous, nearly equal groups.
pub(crate) fn split(items: &[&str], parts: usize) -> Vec<String> {
    let parts = parts.clamp(1, items.len().max(1));
    let (base, rem) = (items.len() / parts, items.len() % parts);
    let mut out = Vec::with_capacity(parts);
    let mut i = 0;
    for p in 0..parts {
        let n = base + usize::from(p < rem);
        out.push(items[i..i + n].concat());
        i += n;
    }
    out
}

/// The name of the first parameter of a tool schema, for generated arguments.
pub(crate) fn first_param(schema: Option<&serde_json::Value>) -> String {
    let schema = schema.cloned().unwrap_or_default();
    schema
        .get("required")
        .and_then(|r| r.get(0))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .or_else(|| {
            schema
                .get("properties")
                .and_then(|p| p.as_object())
                .and_then(|o| o.keys().next().cloned())
        })
        .unwrap_or_else(|| "input".to_owned())
}

/// Counts a stream as cancelled if it is dropped before its last event.
struct StreamGuard {
    state: Arc<MockState>,
    done: bool,
}

impl StreamGuard {
    fn complete(mut self) {
        self.done = true;
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        let counter = if self.done {
            &self.state.streams_completed
        } else {
            &self.state.streams_cancelled
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}

/// An SSE body from pre-rendered events, paced by `chunk_delay` and cut after
/// `cut_after` events (an I/O error makes hyper abort the connection).
pub(crate) fn sse_body(
    state: Arc<MockState>,
    plan: &Plan,
    events: Vec<Bytes>,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let delay = plan.chunk_delay;
    let cut = plan.cut_after;
    let guard = StreamGuard { state, done: false };
    futures::stream::unfold(
        (events.into_iter().enumerate(), guard),
        move |(mut it, mut guard)| async move {
            let (i, ev) = match it.next() {
                Some(x) => x,
                None => {
                    guard.complete();
                    return None;
                }
            };
            if cut.is_some_and(|c| i >= c) {
                guard.done = true;
                it.by_ref().for_each(drop);
                // let hyper flush what was sent (it does so when the body is pending)
                // so the client sees a stream that starts and then breaks
                tokio::time::sleep(Duration::from_millis(20)).await;
                return Some((
                    Err(std::io::Error::other("mock cut the stream")),
                    (it, guard),
                ));
            }
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Some((Ok(ev), (it, guard)))
        },
    )
    .fuse()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_even_and_complete() {
        let w = words(10);
        let parts = split(&w, 3);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts.concat(), w.concat());
        assert_eq!(split(&w, 100).len(), 10);
    }

    #[test]
    fn first_param_prefers_required() {
        let s = serde_json::json!({"properties": {"a": {}, "b": {}}, "required": ["b"]});
        assert_eq!(first_param(Some(&s)), "b");
        assert_eq!(first_param(None), "input");
    }
}
