//! The pooled HTTP client of one upstream: hyper-util's connection pool
//! (HTTP/1.1 keep-alive, HTTP/2 where TLS negotiates it) behind rustls with
//! the `ring` provider, and the request timeout applied to the whole
//! exchange, body included.
//!
//! Why not reqwest: on the governed path reqwest cost about a tenth of a
//! request's CPU on top of hyper in a profile (it re-parses the URL of every
//! response, runs a redirect layer, wraps bodies twice); an upstream call
//! here needs none of that. It must not know any wire format.

use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use tokio::time::Instant;

use crate::error::ProviderError;

/// Longest timeout a client keeps (a day); longer ones are shortened to it.
/// Providers are held to an hour by their configuration; this bounds the
/// deadline arithmetic even for a caller that skipped validation.
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// One upstream's client; cheap to clone (the pool is shared).
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl HttpClient {
    /// A client whose calls give up after `timeout` (connect, send, and
    /// reading the whole answer), connecting within `connect_timeout`.
    pub fn new(timeout: Duration, connect_timeout: Duration) -> Result<Self, ProviderError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| ProviderError::InvalidRequest(format!("cannot set up TLS: {e}")))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let inner = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            .build(https);
        // deadlines are `now + timeout`: keep that sum far from overflow
        let timeout = timeout.min(MAX_TIMEOUT);
        Ok(Self { inner, timeout })
    }

    /// Starts a request to `uri` (`Err` when the configured base URL did
    /// not make a valid URI: the error surfaces when it is sent).
    pub fn request(&self, method: Method, uri: Result<Uri, String>) -> RequestBuilder {
        RequestBuilder {
            client: self.clone(),
            method,
            uri,
            headers: HeaderMap::new(),
            body: Ok(Bytes::new()),
        }
    }
}

/// A request being put together.
#[derive(Debug)]
pub struct RequestBuilder {
    client: HttpClient,
    method: Method,
    uri: Result<Uri, String>,
    headers: HeaderMap,
    body: Result<Bytes, String>,
}

impl RequestBuilder {
    /// Adds (replacing) every header of `headers`.
    pub fn headers(mut self, headers: HeaderMap) -> Self {
        // A name is given once for all its values (`None` after it):
        // the first value replaces, the others append.
        let mut current = None;
        for (k, v) in headers {
            match k {
                Some(k) => {
                    self.headers.insert(k.clone(), v);
                    current = Some(k);
                }
                None => {
                    if let Some(k) = &current {
                        self.headers.append(k.clone(), v);
                    }
                }
            }
        }
        self
    }

    /// `Authorization: Bearer <key>` (marked sensitive).
    pub fn bearer_auth(mut self, key: &str) -> Self {
        if let Ok(mut v) = HeaderValue::from_str(&format!("Bearer {key}")) {
            v.set_sensitive(true);
            self.headers.insert(AUTHORIZATION, v);
        }
        self
    }

    /// A JSON body (and its content type).
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Self {
        self.body = serde_json::to_vec(body)
            .map(Bytes::from)
            .map_err(|e| e.to_string());
        self.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        self
    }

    /// Sends it and waits for the answer's head.
    pub async fn send(self) -> Result<Response, ProviderError> {
        let uri = self.uri.map_err(|u| {
            ProviderError::Unavailable(format!("{u:?} is not a valid upstream URL"))
        })?;
        let body = self.body.map_err(|e| {
            ProviderError::InvalidRequest(format!("cannot encode the request body: {e}"))
        })?;
        let mut req = http::Request::new(Full::new(body));
        *req.method_mut() = self.method;
        *req.uri_mut() = uri;
        *req.headers_mut() = self.headers;
        let now = Instant::now();
        let deadline = now
            .checked_add(self.client.timeout)
            .or_else(|| now.checked_add(MAX_TIMEOUT))
            .unwrap_or(now);
        match tokio::time::timeout_at(deadline, self.client.inner.request(req)).await {
            Err(_) => Err(timed_out(self.client.timeout)),
            Ok(Err(e)) => Err(ProviderError::Unavailable(describe(&e))),
            Ok(Ok(inner)) => Ok(Response {
                inner,
                deadline,
                timeout: self.client.timeout,
            }),
        }
    }
}

/// An answer whose body is still to be read, within the request's deadline.
#[derive(Debug)]
pub struct Response {
    inner: http::Response<Incoming>,
    deadline: Instant,
    timeout: Duration,
}

impl Response {
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    pub fn headers(&self) -> &HeaderMap {
        self.inner.headers()
    }

    /// The whole body.
    pub async fn bytes(self) -> Result<Bytes, ProviderError> {
        let timeout = self.timeout;
        match tokio::time::timeout_at(self.deadline, self.inner.into_body().collect()).await {
            Err(_) => Err(timed_out(timeout)),
            Ok(Err(e)) => Err(ProviderError::StreamInterrupted(describe(&e))),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
        }
    }

    /// The body as it arrives, chunk by chunk; ends after the first error.
    pub fn bytes_stream(self) -> BoxStream<'static, Result<Bytes, ProviderError>> {
        let state = Some((self.inner.into_body(), self.deadline, self.timeout));
        Box::pin(futures::stream::unfold(state, |state| async move {
            let (mut body, deadline, timeout) = state?;
            loop {
                return match tokio::time::timeout_at(deadline, body.frame()).await {
                    Err(_) => Some((Err(timed_out(timeout)), None)),
                    Ok(None) => None,
                    Ok(Some(Err(e))) => {
                        Some((Err(ProviderError::StreamInterrupted(describe(&e))), None))
                    }
                    Ok(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) => Some((Ok(data), Some((body, deadline, timeout)))),
                        // trailers: nothing to pass on
                        Err(_) => continue,
                    },
                };
            }
        }))
    }
}

fn timed_out(timeout: Duration) -> ProviderError {
    ProviderError::Timeout(format!("no complete answer within {} s", timeout.as_secs()))
}

/// An error with its causes ("client error (Connect): tcp connect error:
/// Connection refused"), so the client sees what went wrong.
fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot server that answers with `reply` after reading the head.
    async fn server(reply: &'static [u8], hold: Duration) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = s.read(&mut buf).await;
            s.write_all(reply).await.unwrap();
            tokio::time::sleep(hold).await;
        });
        format!("http://{addr}/x")
    }

    #[tokio::test]
    async fn reads_a_whole_answer() {
        let url = server(
            b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
            Duration::ZERO,
        )
        .await;
        let c = HttpClient::new(Duration::from_secs(5), Duration::from_secs(5)).unwrap();
        let resp = c
            .request(Method::POST, url.parse::<Uri>().map_err(|_| url.clone()))
            .json(&serde_json::json!({"a": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(&resp.bytes().await.unwrap()[..], b"hello");
    }

    #[tokio::test]
    async fn a_huge_timeout_does_not_overflow_the_deadline() {
        let url = server(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
            Duration::ZERO,
        )
        .await;
        let c = HttpClient::new(Duration::MAX, Duration::from_secs(5)).unwrap();
        let resp = c
            .request(Method::GET, url.parse::<Uri>().map_err(|_| url.clone()))
            .send()
            .await
            .unwrap();
        assert_eq!(&resp.bytes().await.unwrap()[..], b"ok");
    }

    #[tokio::test]
    async fn a_body_that_never_ends_times_out() {
        let url = server(
            b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\npart",
            Duration::from_secs(5),
        )
        .await;
        let c = HttpClient::new(Duration::from_millis(300), Duration::from_secs(5)).unwrap();
        let resp = c
            .request(Method::GET, url.parse::<Uri>().map_err(|_| url.clone()))
            .send()
            .await
            .unwrap();
        let err = resp.bytes().await.unwrap_err();
        assert!(matches!(err, ProviderError::Timeout(_)), "{err:?}");
    }

    #[tokio::test]
    async fn refused_connections_and_bad_urls_are_unavailable() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let c = HttpClient::new(Duration::from_secs(5), Duration::from_secs(5)).unwrap();
        let uri: Uri = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let err = c.request(Method::GET, Ok(uri)).send().await.unwrap_err();
        assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
        assert!(err.to_string().to_lowercase().contains("refused"), "{err}");
        let err = c
            .request(Method::GET, Err("not a url/v1".into()))
            .send()
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    }
}
