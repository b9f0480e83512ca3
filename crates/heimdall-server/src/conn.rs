//! The connection layer under the router: the accept loop, the bound on open
//! connections, the per-connection timeouts, and the repairs that hyper
//! cannot be asked for.
//!
//! - **Connections**: at most `server.max_connections` are open; when all
//!   permits are taken the loop stops accepting (further connections wait in
//!   the kernel's listen backlog) instead of accepting and closing them.
//! - **Timeouts** (one watcher per connection, [`watch`]): the head of a
//!   request must arrive within `server.header_read_timeout` of its first
//!   byte (of accept, for a connection's first request); a connection with
//!   no request in flight and no bytes for `server.idle_timeout` is closed.
//!   A request is in flight from the moment its head is read until its
//!   response body is finished, so a stream waiting on its upstream is never
//!   idle. Hyper's own `header_read_timeout` is not used: it also runs while
//!   a kept-alive connection waits for its next request, which would cap the
//!   idle time at the header timeout.
//! - **Request bodies** ([`ReqBody`]): reading one may take at most
//!   `server.body_read_timeout` from its head (then [`BodyTimeout`], a 408 in
//!   `extract::read_body`). A body the handler did not read to its end is
//!   drained (at most `server.max_body_bytes` in all) before the response
//!   leaves, so that the kept-alive connection stays answerable; when that is
//!   not possible the response says `connection: close`.
//! - **Parse errors** ([`Io`]): hyper answers a request it cannot parse with
//!   a canned head (`400`, `414` or `431`, `content-length: 0`) and closes.
//!   The socket wrapper recognises that head on write and sends the error
//!   envelope in its place. Its only cost on the normal path is a 10-byte
//!   prefix compare per write.

use std::convert::Infallible;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, Version, header};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::config::ServerConfig;
use crate::error::ApiError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The connection settings of `server.*`, parsed.
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_body_bytes: usize,
    pub max_connections: usize,
}

impl Limits {
    pub fn from_config(c: &ServerConfig) -> Limits {
        Limits {
            header_read_timeout: c.header_read_timeout(),
            idle_timeout: c.idle_timeout(),
            body_read_timeout: c.body_read_timeout(),
            max_body_bytes: c.max_body_bytes,
            max_connections: c.max_connections,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes; then stops
/// accepting, lets open connections finish for at most `grace`, and closes
/// what is left.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    let limits = Arc::new(limits);
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // See the module comment: the watcher times heads and idle connections.
    builder.http1().keep_alive(true).header_read_timeout(None);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let mut tasks = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let tcp = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        // Small SSE frames must leave at once: without TCP_NODELAY, Nagle's
        // algorithm and delayed ACKs hold each frame for up to 40 ms.
        let _ = tcp.set_nodelay(true);
        let shared = Arc::new(Shared::default());
        let io = TokioIo::new(Io::new(tcp, shared.clone()));
        let ctx = Ctx {
            router: router.clone(),
            shared: shared.clone(),
            limits: limits.clone(),
        };
        let service = hyper::service::service_fn(move |req| ctx.call(req));
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let limits = limits.clone();
        tasks.spawn(async move {
            let conn = watcher.watch(builder.serve_connection_with_upgrades(io, service));
            watch(conn, &shared, &limits).await;
            drop(permit);
        });
    }
    drop(listener);
    // Graceful, but bounded: in-flight requests get `grace` to finish (a
    // long stream must not hold the exit).
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace_s = grace.as_secs(),
            "in-flight requests still running at the end of the shutdown grace; closing them"
        );
    }
    tasks.shutdown().await;
}

/// An accept error: per-connection ones are skipped; others (out of file
/// descriptors) are logged and the loop pauses, as a busy loop would not help.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// What the socket, the service and the watcher of one connection share.
#[derive(Debug, Default)]
struct Shared {
    /// Requests whose response body has not finished.
    in_flight: AtomicUsize,
    /// Requests begun on this connection (one may begin and end between two
    /// looks of the watcher).
    begun: AtomicUsize,
    /// Bytes arrived since the watcher last looked.
    read: AtomicBool,
    /// The connection speaks HTTP/2 (it began with the preface).
    h2: AtomicBool,
}

/// Counts a request as in flight until dropped (with its response body).
struct InFlight(Arc<Shared>);

impl InFlight {
    fn new(shared: &Arc<Shared>) -> InFlight {
        shared.in_flight.fetch_add(1, Ordering::Relaxed);
        shared.begun.fetch_add(1, Ordering::Relaxed);
        InFlight(shared.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for (the rest of) a request head since then.
    Head(Instant),
    /// No request in flight and no bytes since then.
    Idle(Instant),
    /// A request is in flight.
    Busy,
}

/// Drives `conn`, closing it (by dropping it) when a request head takes
/// longer than `header_read_timeout` or the connection has been idle for
/// `idle_timeout`. The state is looked at after every poll of the
/// connection; the timer is only moved earlier, never later (a timer that
/// fires early is rearmed), so a busy connection costs no timer work.
async fn watch<C, E>(conn: C, shared: &Shared, limits: &Limits)
where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut conn = pin!(conn);
    let start = Instant::now();
    let mut phase = Phase::Head(start);
    let mut seen_begun = 0;
    let mut armed = start + limits.header_read_timeout;
    let mut timer = pin!(tokio::time::sleep_until(armed));
    let closed = poll_fn(|cx| {
        if let Poll::Ready(r) = conn.as_mut().poll(cx) {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            return Poll::Ready(None);
        }
        let busy = shared.in_flight.load(Ordering::Relaxed) > 0;
        let begun = shared.begun.load(Ordering::Relaxed);
        let new_request = begun != seen_begun;
        seen_begun = begun;
        let read = shared.read.load(Ordering::Relaxed);
        if read {
            shared.read.store(false, Ordering::Relaxed);
        }
        phase = match phase {
            _ if busy => Phase::Busy,
            _ if new_request => Phase::Idle(Instant::now()),
            Phase::Busy => Phase::Idle(Instant::now()),
            // On HTTP/2, bytes without a stream (pings, settings) are activity.
            Phase::Head(_) | Phase::Idle(_) if read && shared.h2.load(Ordering::Relaxed) => {
                Phase::Idle(Instant::now())
            }
            Phase::Idle(_) if read => Phase::Head(Instant::now()),
            p => p,
        };
        loop {
            let deadline = match phase {
                Phase::Head(t) => Some(t + limits.header_read_timeout),
                Phase::Idle(t) => Some(t + limits.idle_timeout),
                Phase::Busy => None,
            };
            if let Some(d) = deadline
                && d < armed
            {
                armed = d;
                timer.as_mut().reset(d);
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            let now = Instant::now();
            match (phase, deadline) {
                (Phase::Head(_), Some(d)) if now >= d => return Poll::Ready(Some("header")),
                (Phase::Idle(_), Some(d)) if now >= d => return Poll::Ready(Some("idle")),
                // Fired early (or while busy): look again one idle period on.
                _ => {
                    armed = deadline.unwrap_or(now + limits.idle_timeout);
                    timer.as_mut().reset(armed);
                }
            }
        }
    })
    .await;
    match closed {
        Some("header") => tracing::debug!(
            timeout_ms = limits.header_read_timeout.as_millis() as u64,
            "closing a connection: no complete request head within server.header_read_timeout"
        ),
        Some(_) => tracing::debug!(
            timeout_ms = limits.idle_timeout.as_millis() as u64,
            "closing a connection idle for server.idle_timeout"
        ),
        None => {}
    }
}

/// The per-connection service: counts requests in flight, bounds body reads
/// and drains what a handler left unread.
struct Ctx {
    router: Router,
    shared: Arc<Shared>,
    limits: Arc<Limits>,
}

impl Ctx {
    fn call(
        &self,
        req: Request<Incoming>,
    ) -> impl Future<Output = Result<Response<ResBody>, Infallible>> + Send + 'static + use<> {
        let in_flight = InFlight::new(&self.shared);
        let router = self.router.clone();
        let limits = self.limits.clone();
        async move {
            let (parts, incoming) = req.into_parts();
            if incoming.is_end_stream() {
                let Ok(resp) = router
                    .oneshot(Request::from_parts(parts, Body::new(incoming)))
                    .await;
                return Ok(ResBody::wrap(resp, in_flight));
            }
            let keep_alive_matters = parts.version < Version::HTTP_2;
            let slot = Arc::new(Slot::default());
            let body = ReqBody {
                reading: Some(Reading {
                    incoming,
                    seen: 0,
                    deadline: Instant::now() + limits.body_read_timeout,
                    timeout: limits.body_read_timeout,
                    timer: None,
                    failed: false,
                }),
                slot: slot.clone(),
            };
            let Ok(mut resp) = router
                .oneshot(Request::from_parts(parts, Body::new(body)))
                .await;
            if let Some(rest) = slot.take()
                && keep_alive_matters
                && !rest.drain(limits.max_body_bytes).await
            {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(ResBody::wrap(resp, in_flight))
        }
    }
}

/// A response body that keeps its request counted as in flight until the
/// body is finished (or dropped).
pub struct ResBody {
    body: Body,
    _in_flight: InFlight,
}

impl ResBody {
    fn wrap(resp: Response<Body>, in_flight: InFlight) -> Response<ResBody> {
        resp.map(|body| ResBody {
            body,
            _in_flight: in_flight,
        })
    }
}

impl HttpBody for ResBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that did not arrive within `server.body_read_timeout`.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body did not arrive within {} (server.body_read_timeout)", human(.0))]
pub struct BodyTimeout(pub Duration);

/// A duration as the configuration writes it (`1s`, `500ms`).
pub fn human(d: &Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

impl BodyTimeout {
    /// The timeout behind a body read error, if that is what it is.
    pub fn find<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyTimeout> {
        let mut cur = Some(e);
        while let Some(err) = cur {
            if let Some(t) = err.downcast_ref::<BodyTimeout>() {
                return Some(t);
            }
            cur = err.source();
        }
        None
    }
}

/// The part of a request body still to be read.
struct Reading {
    incoming: Incoming,
    /// Data bytes read so far.
    seen: usize,
    deadline: Instant,
    timeout: Duration,
    /// Created only when the body is not already there.
    timer: Option<Pin<Box<Sleep>>>,
    /// The body broke off (timeout or transport error): it cannot be drained.
    failed: bool,
}

impl Reading {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.seen = self.seen.saturating_add(data.len());
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.failed = true;
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let deadline = self.deadline;
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_ready() {
                    self.failed = true;
                    return Poll::Ready(Some(Err(Box::new(BodyTimeout(self.timeout)))));
                }
                Poll::Pending
            }
        }
    }

    /// Reads and discards the rest; false when that is not possible within
    /// `max` bytes in all and the body deadline.
    async fn drain(mut self, max: usize) -> bool {
        poll_fn(|cx| {
            loop {
                if self.failed {
                    return Poll::Ready(false);
                }
                let room = max.saturating_sub(self.seen) as u64;
                if self.seen > max || self.incoming.size_hint().lower() > room {
                    return Poll::Ready(false);
                }
                match ready!(self.poll_frame(cx)) {
                    Some(Ok(_)) => {}
                    Some(Err(_)) => return Poll::Ready(false),
                    None => return Poll::Ready(true),
                }
            }
        })
        .await
    }
}

/// Where a request body left unfinished goes when its reader drops it.
#[derive(Default)]
struct Slot(Mutex<Option<Reading>>);

impl Slot {
    fn put(&self, rest: Reading) {
        if let Ok(mut s) = self.0.lock() {
            *s = Some(rest);
        }
    }

    fn take(&self) -> Option<Reading> {
        self.0.lock().ok().and_then(|mut s| s.take())
    }
}

/// The request body handed to the router.
struct ReqBody {
    /// `None` once the body has ended.
    reading: Option<Reading>,
    slot: Arc<Slot>,
}

impl HttpBody for ReqBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let Some(reading) = this.reading.as_mut() else {
            return Poll::Ready(None);
        };
        let frame = ready!(reading.poll_frame(cx));
        if frame.is_none() && !reading.failed {
            this.reading = None;
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.reading
            .as_ref()
            .is_none_or(|r| r.failed || r.incoming.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.reading
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), |r| r.incoming.size_hint())
    }
}

impl Drop for ReqBody {
    fn drop(&mut self) {
        if let Some(rest) = self.reading.take() {
            self.slot.put(rest);
        }
    }
}

/// The accepted socket, as hyper sees it: notes reads for the watcher and
/// replaces hyper's canned parse-error head with the error envelope.
struct Io {
    tcp: TcpStream,
    shared: Arc<Shared>,
    first_read: bool,
    /// An envelope being written in place of a canned head, and how many
    /// bytes of it are out.
    replacing: Option<(Vec<u8>, usize)>,
}

/// Every head hyper writes for a parse error starts so (and has no body).
const CANNED_PREFIX: &[u8] = b"HTTP/1.1 4";

impl Io {
    fn new(tcp: TcpStream, shared: Arc<Shared>) -> Io {
        Io {
            tcp,
            shared,
            first_read: false,
            replacing: None,
        }
    }

    /// Writes the pending envelope; reports `original` bytes written (what
    /// hyper gave) once it is all out.
    fn poll_replacement(
        &mut self,
        cx: &mut Context<'_>,
        original: usize,
    ) -> Poll<io::Result<usize>> {
        while let Some((bytes, done)) = self.replacing.as_mut() {
            if *done >= bytes.len() {
                self.replacing = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &bytes[*done..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *done += n;
        }
        Poll::Ready(Ok(original))
    }

    /// When `head` is hyper's canned answer to a request it could not parse,
    /// the envelope to send instead. The application never answers 400, 414
    /// or 431 without a body, and hyper writes its canned head alone, with
    /// no request in flight.
    fn canned_replacement(&self, head: &[u8]) -> Option<Vec<u8>> {
        if self.shared.in_flight.load(Ordering::Relaxed) != 0 || head.len() > 512 {
            return None;
        }
        let end = head.windows(4).position(|w| w == b"\r\n\r\n")?;
        if end + 4 != head.len() {
            return None;
        }
        let text = std::str::from_utf8(&head[..end]).ok()?;
        let mut lines = text.split("\r\n");
        let status: u16 = lines.next()?.get(9..12)?.parse().ok()?;
        if !lines.any(|l| l.eq_ignore_ascii_case("content-length: 0")) {
            return None;
        }
        let error = parse_error(StatusCode::from_u16(status).ok()?)?;
        Some(render(&error))
    }
}

/// The error for each status hyper writes on its own.
fn parse_error(status: StatusCode) -> Option<ApiError> {
    let (kind, message) = match status.as_u16() {
        400 => (
            "invalid_request",
            "the request is not valid HTTP and was not processed: a malformed request line, a header name or value with a forbidden character (such as CR, LF or NUL), conflicting Content-Length headers, or a Transfer-Encoding other than chunked",
        ),
        414 => (
            "invalid_request",
            "the request URI is too long: at most 65534 bytes are accepted",
        ),
        431 => (
            "request_too_large",
            "the request head is too large: at most 100 headers (and about 400 KB of head) are accepted",
        ),
        _ => return None,
    };
    Some(ApiError::new(status, kind, message))
}

/// A whole HTTP/1.1 response carrying the envelope of `error`; the
/// connection closes after it (as hyper closes it after a parse error).
fn render(error: &ApiError) -> Vec<u8> {
    let body = error
        .envelope(&uuid::Uuid::new_v4().to_string())
        .to_string();
    let status = error.status;
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len(),
        body
    )
    .into_bytes()
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.tcp).poll_read(cx, buf))?;
        let got = &buf.filled()[before..];
        if !got.is_empty() {
            this.shared.read.store(true, Ordering::Relaxed);
            if !this.first_read {
                this.first_read = true;
                if got.starts_with(b"PRI ") {
                    this.shared.h2.store(true, Ordering::Relaxed);
                }
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() && buf.starts_with(CANNED_PREFIX) {
            this.replacing = this.canned_replacement(buf).map(|b| (b, 0));
        }
        if this.replacing.is_some() {
            return this.poll_replacement(cx, buf.len());
        }
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none()
            && bufs.first().is_some_and(|b| b.starts_with(CANNED_PREFIX))
            && bufs[1..].iter().all(|b| b.is_empty())
        {
            this.replacing = this.canned_replacement(&bufs[0]).map(|b| (b, 0));
        }
        if this.replacing.is_some() {
            let total = bufs.iter().map(|b| b.len()).sum();
            return this.poll_replacement(cx, total);
        }
        Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// Raises this process's open-file limit (soft) to its hard limit where
/// the system allows. Returns the soft limit before and after.
#[cfg(unix)]
pub fn raise_open_file_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur >= lim.rlim_max {
        return Ok((rlim(before), rlim(before)));
    }
    let raised = libc::rlimit {
        rlim_cur: lim.rlim_max,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((rlim(before), rlim(raised.rlim_cur)))
}

/// `rlim_t` is 64 bits on the systems we build for, but not by definition.
#[cfg(unix)]
#[allow(clippy::unnecessary_cast)]
fn rlim(v: libc::rlim_t) -> u64 {
    v as u64
}

/// Not available off Unix.
#[cfg(not(unix))]
pub fn raise_open_file_limit() -> io::Result<(u64, u64)> {
    Err(io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_render_as_envelopes() {
        for status in [400u16, 414, 431] {
            let e = parse_error(StatusCode::from_u16(status).unwrap()).unwrap();
            let bytes = render(&e);
            let text = String::from_utf8(bytes).unwrap();
            let (head, body) = text.split_once("\r\n\r\n").unwrap();
            assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
            assert!(head.contains(&format!("content-length: {}", body.len())));
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["status_code"], status);
            assert!(v["error"]["message"].as_str().unwrap().len() > 20);
        }
        assert!(parse_error(StatusCode::NOT_FOUND).is_none());
    }

    #[test]
    fn the_open_file_limit_can_be_raised_to_the_hard_limit() {
        #[cfg(unix)]
        {
            let (before, after) = raise_open_file_limit().unwrap();
            assert!(after >= before);
        }
    }
}
