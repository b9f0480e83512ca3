//! The HTTP serving layer against hostile and careless clients, over raw
//! TCP: header, idle and body timeouts, the bound on open connections,
//! parse errors answered in the error envelope, and kept-alive connections
//! that stay answerable after a body the handler never read.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod inference_support;

use std::time::{Duration, Instant};

use heimdall_testkit::mock::MockOptions;
use heimdall_testkit::{ADMIN_TOKEN, TestDb, TestServer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One response read off a raw socket.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<String> {
        self.head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}\n{:?}",
                self.head,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts the error envelope with `status` and `kind`.
    fn assert_envelope(&self, status: u16, kind: &str) {
        assert_eq!(self.status, status, "{}", self.head);
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/json"),
            "{}",
            self.head
        );
        let v = self.json();
        assert_eq!(v["status_code"], status, "{v}");
        assert_eq!(v["error"]["type"], kind, "{v}");
        assert!(
            v["error"]["message"].as_str().is_some_and(|m| m.len() > 20),
            "{v}"
        );
    }
}

/// A raw HTTP/1.1 connection.
struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(server: &TestServer) -> Raw {
        let addr = server.base_url.trim_start_matches("http://");
        Raw {
            s: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).await.unwrap();
    }

    /// Sends, tolerating a server that already closed.
    async fn try_send(&mut self, bytes: &[u8]) {
        let _ = self.s.write_all(bytes).await;
    }

    /// Reads more bytes; false on EOF or error.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match self.s.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// The next response (no body when `head_only`), or `None` when the
    /// connection closes or nothing complete arrives `within`.
    async fn response_to(&mut self, head_only: bool, within: Duration) -> Option<RawResponse> {
        tokio::time::timeout(within, self.read_response(head_only))
            .await
            .ok()
            .flatten()
    }

    async fn response(&mut self) -> Option<RawResponse> {
        self.response_to(false, Duration::from_secs(10)).await
    }

    async fn read_response(&mut self, head_only: bool) -> Option<RawResponse> {
        let end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
        self.buf.drain(..end + 4);
        let status: u16 = head.get(9..12)?.parse().ok()?;
        let mut r = RawResponse {
            status,
            head,
            body: Vec::new(),
        };
        if head_only || status == 100 {
            return Some(r);
        }
        if r.header("transfer-encoding")
            .is_some_and(|t| t.contains("chunked"))
        {
            loop {
                let line_end = loop {
                    if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break p;
                    }
                    if !self.fill().await {
                        return None;
                    }
                };
                let size_text = String::from_utf8_lossy(&self.buf[..line_end]).to_string();
                let size = usize::from_str_radix(size_text.trim(), 16).ok()?;
                while self.buf.len() < line_end + 2 + size + 2 {
                    if !self.fill().await {
                        return None;
                    }
                }
                r.body
                    .extend_from_slice(&self.buf[line_end + 2..line_end + 2 + size]);
                self.buf.drain(..line_end + 2 + size + 2);
                if size == 0 {
                    return Some(r);
                }
            }
        }
        let len: usize = r
            .header("content-length")
            .map_or(Some(0), |v| v.parse().ok())?;
        while self.buf.len() < len {
            if !self.fill().await {
                return None;
            }
        }
        r.body = self.buf.drain(..len).collect();
        Some(r)
    }

    /// Waits for the server to close the connection (reading and
    /// discarding whatever it sends); the time it took, or `None` if it was
    /// still open after `within`.
    async fn closed_within(&mut self, within: Duration) -> Option<Duration> {
        let t = Instant::now();
        let closed = tokio::time::timeout(within, async {
            while self.fill().await {
                self.buf.clear();
            }
        })
        .await;
        closed.ok().map(|()| t.elapsed())
    }
}

async fn server_with(tweak: impl FnOnce(&mut heimdall_server::Config)) -> (TestServer, TestDb) {
    let db = TestDb::sqlite().await;
    let mut config = TestServer::config(&db);
    tweak(&mut config);
    (TestServer::start_with(config, None).await, db)
}

const HEALTH: &[u8] = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n";

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

// ---- Defect 6: timeouts and the connection bound ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_and_missing_heads_are_closed_within_the_header_read_timeout() {
    let (s, _db) = server_with(|c| {
        c.server.header_read_timeout = "1s".to_string();
        c.server.idle_timeout = "30s".to_string();
    })
    .await;
    // A head that never ends.
    let mut partial = Raw::connect(&s).await;
    partial.send(b"GET /health HTTP/1.1\r\nhost: x\r\n").await;
    // A connection that never says anything.
    let mut silent = Raw::connect(&s).await;
    // A kept-alive connection whose second head never ends.
    let mut second = Raw::connect(&s).await;
    second.send(HEALTH).await;
    assert_eq!(second.response().await.unwrap().status, 200);
    tokio::time::sleep(secs(0.3)).await;
    second.send(b"GET /health HTTP/1.1\r\nho").await;
    for (name, c) in [
        ("partial", &mut partial),
        ("silent", &mut silent),
        ("second", &mut second),
    ] {
        let took = c.closed_within(secs(4.0)).await;
        let took = took.unwrap_or_else(|| panic!("{name}: still open after 4 s"));
        assert!(took < secs(3.0), "{name}: closed after {took:?}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let (s, _db) = server_with(|c| {
        c.server.header_read_timeout = "10s".to_string();
        c.server.idle_timeout = "1s".to_string();
    })
    .await;
    let mut c = Raw::connect(&s).await;
    c.send(HEALTH).await;
    assert_eq!(c.response().await.unwrap().status, 200);
    let t = Instant::now();
    // Still open a little before the timeout: one more request works.
    tokio::time::sleep(secs(0.5)).await;
    c.send(HEALTH).await;
    assert_eq!(c.response().await.unwrap().status, 200);
    let took = c.closed_within(secs(5.0)).await.expect("closed when idle");
    assert!(
        took >= secs(0.8) && took < secs(3.5),
        "closed {took:?} after the last response ({:?} after the first)",
        t.elapsed()
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_in_flight_is_not_idle() {
    let env = inference_support::start_with(
        MockOptions {
            latency_ms: 1_600,
            ..MockOptions::default()
        },
        json!({}),
        |c| {
            c.server.idle_timeout = "1s".to_string();
            c.server.header_read_timeout = "1s".to_string();
            c.server.body_read_timeout = "10s".to_string();
        },
    )
    .await;
    let s = &env.server;
    // An answer (plain and streamed) that waits 1.6 s on its upstream.
    for stream in [false, true] {
        let mut body = inference_support::chat("openai/gpt-4o-mini");
        body["stream"] = json!(stream);
        let body = body.to_string();
        let mut c = Raw::connect(s).await;
        c.send(
            format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await;
        let t = Instant::now();
        let r = c
            .response()
            .await
            .expect("an answer after the upstream's delay");
        assert_eq!(r.status, 200, "{}", r.head);
        assert!(t.elapsed() >= secs(1.4), "{:?}", t.elapsed());
        if stream {
            assert!(String::from_utf8_lossy(&r.body).contains("[DONE]"));
        }
    }
    // A body that trickles in over 2 s (under the body timeout).
    let mut c = Raw::connect(s).await;
    let body = json!({"name": "trickled", "description": "x".repeat(40)}).to_string();
    c.send(
        format!(
            "POST /api/governance/access-profiles HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ADMIN_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    )
    .await;
    for part in body.as_bytes().chunks(body.len() / 5 + 1) {
        tokio::time::sleep(secs(0.4)).await;
        c.send(part).await;
    }
    let r = c.response().await.expect("an answer to the trickled body");
    assert_ne!(r.status, 408, "{}", r.head);
    assert!(r.status < 500, "{}", r.head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_gets_408_within_the_body_read_timeout() {
    let env = inference_support::start_with(MockOptions::default(), json!({}), |c| {
        c.server.body_read_timeout = "1s".to_string();
        c.server.idle_timeout = "30s".to_string();
    })
    .await;
    let s = &env.server;
    for (path, anthropic) in [
        ("/api/governance/access-profiles", false),
        ("/v1/chat/completions", false),
        ("/anthropic/v1/messages", true),
    ] {
        let mut c = Raw::connect(s).await;
        c.send(
            format!(
                "POST {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ADMIN_TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"model\":"
            )
            .as_bytes(),
        )
        .await;
        let t = Instant::now();
        let r = c
            .response_to(false, secs(4.0))
            .await
            .unwrap_or_else(|| panic!("{path}: no answer within 4 s"));
        assert!(t.elapsed() < secs(3.0), "{path}: {:?}", t.elapsed());
        assert_eq!(r.status, 408, "{path}: {}", r.head);
        let v = r.json();
        if anthropic {
            assert_eq!(v["type"], "error", "{v}");
            assert_eq!(v["error"]["type"], "request_timeout", "{v}");
        } else {
            r.assert_envelope(408, "request_timeout");
        }
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("server.body_read_timeout"),
            "{v}"
        );
        // The rest of the body will never be read: the connection closes.
        assert_eq!(r.header("connection").as_deref(), Some("close"), "{path}");
        assert!(c.closed_within(secs(2.0)).await.is_some(), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_connections_wait_for_a_free_one() {
    let (s, _db) = server_with(|c| {
        c.server.max_connections = 2;
        c.server.idle_timeout = "30s".to_string();
        c.server.header_read_timeout = "30s".to_string();
    })
    .await;
    let mut a = Raw::connect(&s).await;
    let mut b = Raw::connect(&s).await;
    for c in [&mut a, &mut b] {
        c.send(HEALTH).await;
        assert_eq!(c.response().await.unwrap().status, 200);
    }
    // The third is not served while both are open...
    let mut third = Raw::connect(&s).await;
    third.send(HEALTH).await;
    assert!(
        third.response_to(false, secs(0.7)).await.is_none(),
        "a third connection was served with max_connections = 2"
    );
    // ...and is as soon as one closes.
    drop(a);
    let r = third
        .response_to(false, secs(3.0))
        .await
        .expect("served once a permit is free");
    assert_eq!(r.status, 200);
    b.send(HEALTH).await;
    assert_eq!(b.response().await.unwrap().status, 200);
    s.stop().await;
}

// ---- Defect 8: errors hyper answers on its own ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_hyper_cannot_parse_are_answered_in_the_envelope() {
    let (s, _db) = server_with(|_| {}).await;
    let many_headers: String = (0..5_000).map(|i| format!("x-h{i}: v\r\n")).collect();
    let long_path = format!("/{}", "a".repeat(100 * 1024));
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "CR in a header value",
            b"GET /health HTTP/1.1\r\nhost: x\r\nx-bad: a\rb\r\n\r\n".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "NUL in a header value",
            b"GET /health HTTP/1.1\r\nhost: x\r\nx-bad: a\0b\r\n\r\n".to_vec(),
            400,
            "invalid_request",
        ),
        (
            "duplicate Content-Length",
            b"POST /api/governance/access-profiles HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}"
                .to_vec(),
            400,
            "invalid_request",
        ),
        (
            "bad Transfer-Encoding",
            b"POST /api/governance/access-profiles HTTP/1.1\r\nhost: x\r\ntransfer-encoding: gzip\r\n\r\n{}"
                .to_vec(),
            400,
            "invalid_request",
        ),
        (
            "5000 headers",
            format!("GET /health HTTP/1.1\r\nhost: x\r\n{many_headers}\r\n").into_bytes(),
            431,
            "request_too_large",
        ),
        (
            "100 KB path",
            format!("GET {long_path} HTTP/1.1\r\nhost: x\r\n\r\n").into_bytes(),
            414,
            "invalid_request",
        ),
    ];
    for (name, request, status, kind) in cases {
        let mut c = Raw::connect(&s).await;
        // The server may close before reading all of a large request.
        let _ = c.s.write_all(&request).await;
        let r = c
            .response()
            .await
            .unwrap_or_else(|| panic!("{name}: no response"));
        assert_eq!(r.status, status, "{name}: {}", r.head);
        assert!(
            !r.body.is_empty(),
            "{name}: empty body; the server wrote:\n{}",
            r.head
        );
        r.assert_envelope(status, kind);
        assert_eq!(r.header("connection").as_deref(), Some("close"), "{name}");
        assert!(c.closed_within(secs(2.0)).await.is_some(), "{name}");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn application_errors_to_head_requests_are_left_alone() {
    let (s, _db) = server_with(|_| {}).await;
    let mut c = Raw::connect(&s).await;
    for (request, status) in [
        ("HEAD /nope HTTP/1.1\r\nhost: x\r\n\r\n", 404),
        (
            "HEAD /api/governance/access-profiles HTTP/1.1\r\nhost: x\r\n\r\n",
            401,
        ),
        (
            "HEAD /api/governance/access-profiles/abc HTTP/1.1\r\nhost: x\r\nauthorization: Bearer test-admin-token-0123456789\r\n\r\n",
            400,
        ),
    ] {
        c.send(request.as_bytes()).await;
        let r = c.response_to(true, secs(5.0)).await.expect("a HEAD answer");
        assert_eq!(r.status, status, "{}", r.head);
        let len: usize = r.header("content-length").unwrap().parse().unwrap();
        assert!(len > 0, "{}", r.head);
        assert_ne!(r.header("connection").as_deref(), Some("close"));
    }
    // Nothing but heads was written: the next answer starts right away.
    c.send(HEALTH).await;
    let r = c.response().await.unwrap();
    assert_eq!(r.status, 200, "{}", r.head);
    s.stop().await;
}

// ---- Defect 11: a body the handler never read ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_answers_after_an_unread_body() {
    let (s, _db) = server_with(|_| {}).await;
    let body = format!("{{\"x\": \"{}\"}}", "y".repeat(64 * 1024));
    let auth = format!("authorization: Bearer {ADMIN_TOKEN}\r\n");
    for (name, method, path, auth, status) in [
        (
            "bad id",
            "PUT",
            "/api/access-profiles/1e3/activate",
            auth.as_str(),
            400,
        ),
        (
            "no credentials",
            "POST",
            "/api/governance/access-profiles",
            "",
            401,
        ),
        ("no route", "POST", "/nope", auth.as_str(), 404),
    ] {
        let mut c = Raw::connect(&s).await;
        c.send(
            format!(
                "{method} {path} HTTP/1.1\r\nhost: x\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await;
        // The handler answers before the body is there.
        tokio::time::sleep(secs(0.2)).await;
        c.try_send(&body.as_bytes()[..1000]).await;
        tokio::time::sleep(secs(0.1)).await;
        c.try_send(&body.as_bytes()[1000..]).await;
        let r = c
            .response()
            .await
            .unwrap_or_else(|| panic!("{name}: no response"));
        assert_eq!(r.status, status, "{name}: {}", r.head);
        let closing = r.header("connection").as_deref() == Some("close");
        c.try_send(HEALTH).await;
        let second = c.response().await;
        assert!(
            second.as_ref().is_some_and(|r| r.status == 200),
            "{name}: the next request on the connection got {second:?} (first said connection: close: {closing})"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_body_too_large_to_drain_closes_with_connection_close() {
    let (s, _db) = server_with(|c| {
        c.server.max_body_bytes = 4096;
    })
    .await;
    let mut c = Raw::connect(&s).await;
    c.send(b"POST /nope HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n{}")
        .await;
    let r = c.response().await.expect("an answer");
    assert_eq!(r.status, 404, "{}", r.head);
    assert_eq!(
        r.header("connection").as_deref(),
        Some("close"),
        "{}",
        r.head
    );
    assert!(c.closed_within(secs(2.0)).await.is_some());
    s.stop().await;
}

// ---- The serving loop itself ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_without_tls_is_still_served() {
    let (s, _db) = server_with(|c| {
        c.server.body_read_timeout = "5s".to_string();
    })
    .await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = client.get(s.url("/health")).send().await.unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 200);
    // A body the handler never reads does not break the connection.
    let r = client
        .post(s.url("/nope"))
        .body(vec![b'x'; 200_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = client
        .post(s.url("/api/governance/access-profiles"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "over-h2"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    s.stop().await;
}
