//! HTTP plumbing shared by the provider kinds: one pooled client per upstream,
//! sending, and turning error answers into `ProviderError`.
//!
//! It must not know any wire format beyond "an error body usually has a
//! message somewhere"; kinds decide what to send.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Uri};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::NetworkConfig;
use crate::error::ProviderError;
use crate::http_client::{HttpClient, RequestBuilder, Response};

/// Connect timeout of inference.md §Behaviour.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Longest upstream error text passed on to the client.
const MAX_ERROR_TEXT: usize = 1000;

/// Builds the pooled client of one upstream.
pub fn build_client(network: &NetworkConfig) -> Result<HttpClient, ProviderError> {
    HttpClient::new(network.request_timeout(), CONNECT_TIMEOUT)
}

/// The URIs of one upstream's endpoints, parsed once when the provider is
/// built: parsing the URL text on every call showed as about 4 % of a
/// governed request's CPU in a profile. A base URL that does not parse is
/// kept as text, so that the call fails (502, naming the URL) as it always
/// did, rather than the provider refusing to be built.
#[derive(Debug, Clone)]
pub struct Endpoints {
    base: String,
    parsed: Vec<(&'static str, Uri)>,
}

impl Endpoints {
    /// Parses `base` + each of `paths`.
    pub fn new(base: String, paths: &[&'static str]) -> Self {
        let parsed = paths
            .iter()
            .filter_map(|p| Some((*p, parse_uri(&format!("{base}{p}"))?)))
            .collect();
        Self { base, parsed }
    }

    /// A request to `base` + `path`.
    pub fn request(&self, client: &HttpClient, method: http::Method, path: &str) -> RequestBuilder {
        let uri = match self.parsed.iter().find(|(p, _)| *p == path) {
            Some((_, uri)) => Ok(uri.clone()),
            None => {
                let text = format!("{}{path}", self.base);
                parse_uri(&text).ok_or(text)
            }
        };
        client.request(method, uri)
    }
}

/// An absolute `http` or `https` URI.
fn parse_uri(text: &str) -> Option<Uri> {
    let uri: Uri = text.parse().ok()?;
    let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
    (scheme_ok && uri.host().is_some()).then_some(uri)
}

/// `extra_headers` as a HeaderMap; invalid names or values are a config error.
pub fn header_map(
    headers: &std::collections::BTreeMap<String, String>,
) -> Result<HeaderMap, ProviderError> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
            ProviderError::InvalidRequest(format!("invalid extra header name {k:?}"))
        })?;
        let value = HeaderValue::from_str(v).map_err(|_| {
            ProviderError::InvalidRequest(format!("invalid value for extra header {k:?}"))
        })?;
        map.insert(name, value);
    }
    Ok(map)
}

/// Sends a request; a non-2xx answer becomes `ProviderError::Upstream`.
pub async fn send(req: RequestBuilder) -> Result<Response, ProviderError> {
    let resp = req.send().await?;
    if resp.status().is_success() {
        return Ok(resp);
    }
    Err(error_from_response(resp).await)
}

/// True when a 2xx answer to a stream request says it is JSON rather than
/// an event stream (a server that ignored `stream: true`). An answer
/// without a content type is read as an event stream.
pub fn is_json_answer(resp: &Response) -> bool {
    resp.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let mime = ct.split(';').next().unwrap_or_default().trim();
            mime.eq_ignore_ascii_case("application/json")
                || mime.to_ascii_lowercase().ends_with("+json")
        })
}

/// Reads a whole 2xx body and decodes it.
pub async fn read_json<T: DeserializeOwned>(resp: Response) -> Result<T, ProviderError> {
    let body = read_body(resp).await?;
    serde_json::from_slice(&body).map_err(|e| ProviderError::BadResponse(e.to_string()))
}

/// Reads a whole 2xx body.
pub async fn read_body(resp: Response) -> Result<Bytes, ProviderError> {
    resp.bytes().await
}

/// An upstream error answer, with the upstream's own message when it has one.
pub async fn error_from_response(resp: Response) -> ProviderError {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = match read_body(resp).await {
        Ok(b) => b,
        Err(e) => return e,
    };
    ProviderError::Upstream {
        status,
        message: error_message(status, &body),
        retry_after,
    }
}

/// Finds the message in OpenAI (`error.message`), Anthropic
/// (`error.message`) and ad-hoc (`message`, `error` string, `detail`) bodies.
pub fn error_message(status: u16, body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let found = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("message"))
            .or_else(|| v.get("error").filter(|e| e.is_string()))
            .or_else(|| v.get("detail"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let text = found.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    let mut text = if text.is_empty() {
        format!("upstream returned HTTP {status}")
    } else {
        text
    };
    if text.len() > MAX_ERROR_TEXT {
        let mut cut = MAX_ERROR_TEXT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// Unix seconds now, for `created` fields of translated answers.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn endpoints_join_base_and_path_parsed_or_not() {
        let ok = Endpoints::new("http://127.0.0.1:9/api".into(), &["/v1/models"]);
        assert_eq!(
            ok.parsed[0].1.to_string(),
            "http://127.0.0.1:9/api/v1/models"
        );
        // a base that does not parse fails on the call, naming the URL
        let client = build_client(&NetworkConfig::default()).unwrap();
        let bad = Endpoints::new("not a url".into(), &["/v1/models"]);
        assert!(bad.parsed.is_empty());
        let err = send(bad.request(&client, http::Method::GET, "/v1/models"))
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::Unavailable(_)));
        assert!(err.to_string().contains("not a url/v1/models"), "{err}");
        assert!(parse_uri("ftp://host/x").is_none());
        assert!(parse_uri("/relative").is_none());
    }

    #[test]
    fn error_message_reads_both_vendor_shapes() {
        assert_eq!(
            error_message(429, br#"{"error":{"message":"slow down","type":"x"}}"#),
            "slow down"
        );
        assert_eq!(
            error_message(
                529,
                br#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#
            ),
            "busy"
        );
        assert_eq!(error_message(500, b"plain text"), "plain text");
        assert_eq!(error_message(502, b""), "upstream returned HTTP 502");
    }
}
