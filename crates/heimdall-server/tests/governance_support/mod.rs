//! Shared set-up of the governance tests: a mock provider, a real server on
//! port 0 whose providers point at the mock, a manual clock, and helpers to
//! make governed users (template → direct copy → key) through the management
//! API and to call the inference routes with their keys.
//!
//! Costs are made predictable: the mock reports 10 prompt and 20 completion
//! tokens for every answer, and tests set prices with `PUT /api/pricing`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use heimdall_core::clock::ManualClock;
use heimdall_server::Config;
use heimdall_testkit::mock::{MockHandle, MockOptions, MockProvider};
use heimdall_testkit::{Reply, TestDb, TestServer};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// The governance prefix.
pub const G: &str = "/api/governance";

/// Prompt tokens the mock reports for every answer.
pub const PROMPT: u64 = 10;
/// Completion tokens the mock reports for every answer.
pub const COMPLETION: u64 = 20;
/// Tokens one answer uses (what token limits are charged).
pub const TOKENS: i64 = (PROMPT + COMPLETION) as i64;

/// Test prices in USD per million tokens: $0.001 per input token and
/// $0.002 per output token, so one mock answer costs exactly $0.05.
pub const INPUT_PER_M: f64 = 1000.0;
pub const OUTPUT_PER_M: f64 = 2000.0;
/// Cost of one mock answer (10 × 0.001 + 20 × 0.002), in USD.
pub const ANSWER_USD: f64 = 0.05;

/// `max_tokens` every test body carries (the output part of estimates).
pub const MAX_TOKENS: u64 = 20;

/// The instant the manual clock starts at (a Monday, 09:00 UTC).
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
}

/// `{G}{path}`.
pub fn g(path: &str) -> String {
    format!("{G}{path}")
}

/// A server on a store, the mock behind its providers, and the clock.
pub struct Env {
    pub server: TestServer,
    pub mock: MockHandle,
    pub clock: Arc<ManualClock>,
    pub db: TestDb,
    config: Config,
}

/// A governed user: the template, the user, and the key of its copy.
#[derive(Debug, Clone)]
pub struct Member {
    pub profile: i64,
    pub user: String,
    pub key: String,
    pub key_id: String,
}

/// The mock's options for governance tests: fixed token counts.
pub fn mock_options() -> MockOptions {
    MockOptions {
        tokens: COMPLETION,
        prompt_tokens: Some(PROMPT),
        ..MockOptions::default()
    }
}

/// Providers `openai` and `anthropic` (and `groq`, OpenAI-compatible) on
/// the mock; virtual keys required (the default).
pub async fn start(db: TestDb) -> Env {
    start_with(db, mock_options(), |_| {}).await
}

pub async fn start_with(db: TestDb, opts: MockOptions, tweak: impl FnOnce(&mut Config)) -> Env {
    let mock = MockProvider::start(opts).await.unwrap();
    let mut config = TestServer::config(&db);
    let net = json!({"base_url": mock.base_url});
    config.providers = serde_json::from_value(json!({
        "openai": {"network_config": net, "keys": [{"name": "k1", "value": "sk-openai-upstream-key-1"}]},
        "anthropic": {"network_config": net, "keys": [{"name": "k1", "value": "sk-ant-upstream-key-1"}]},
        "groq": {"kind": "openai", "network_config": net, "keys": [{"name": "k1", "value": "gsk-upstream-key-1"}]},
    }))
    .unwrap();
    tweak(&mut config);
    let clock = Arc::new(ManualClock::new(t0()));
    let server = TestServer::start_with(config.clone(), Some(clock.clone())).await;
    Env {
        server,
        mock,
        clock,
        db,
        config,
    }
}

impl Env {
    /// Stops the server gracefully (which flushes usage) and starts another
    /// on the same store, with the same configuration and clock.
    pub async fn restart(self) -> Env {
        let Env {
            server,
            mock,
            clock,
            db,
            config,
        } = self;
        server.stop().await;
        let server = TestServer::start_with(config.clone(), Some(clock.clone())).await;
        Env {
            server,
            mock,
            clock,
            db,
            config,
        }
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.clock.advance(by);
    }

    /// Sets a price override (200).
    pub async fn price(&self, provider: &str, model: &str, input: f64, output: f64) {
        let r = self
            .server
            .put(
                &format!("/api/pricing/{provider}/{model}"),
                json!({"input_cost_per_million_tokens": input, "output_cost_per_million_tokens": output}),
            )
            .await;
        assert_eq!(r.status, 200, "set price of {provider}/{model}: {}", r.text);
    }

    /// The test price on `provider/model` ($0.05 per mock answer).
    pub async fn test_price(&self, provider: &str, model: &str) {
        self.price(provider, model, INPUT_PER_M, OUTPUT_PER_M).await;
    }

    /// Creates and activates a template; returns its id.
    pub async fn template(&self, body: Value) -> i64 {
        let r = self.server.post(&g("/access-profiles"), body).await;
        assert_eq!(r.status, 201, "create template: {}", r.text);
        let id = r.body["access_profile"]["id"].as_i64().unwrap();
        let r = self
            .server
            .put(&g(&format!("/access-profiles/{id}/activate")), json!({}))
            .await;
        assert_eq!(r.status, 200, "activate {id}: {}", r.text);
        id
    }

    /// Creates a user without a role; returns its id.
    pub async fn user(&self, name: &str) -> String {
        let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
        let r = self
            .server
            .post(&g("/users"), json!({"name": name, "email": email}))
            .await;
        assert_eq!(r.status, 200, "create user {name}: {}", r.text);
        r.body["user"]["id"].as_str().unwrap().to_string()
    }

    /// Gives `user` a direct copy of `profile`; returns (key value, key id).
    pub async fn assign(&self, user: &str, profile: i64) -> (String, String) {
        let r = self
            .server
            .post(
                &g(&format!("/users/{user}/access-profiles")),
                json!({"access_profile_id": profile}),
            )
            .await;
        assert_eq!(r.status, 201, "assign {profile} to {user}: {}", r.text);
        let vk = &r.body["virtual_key"];
        (
            vk["value"].as_str().unwrap().to_string(),
            vk["id"].as_str().unwrap().to_string(),
        )
    }

    /// A new user holding one direct copy of a new template made from `body`.
    pub async fn member(&self, name: &str, body: Value) -> Member {
        let profile = self.template(body).await;
        let user = self.user(name).await;
        let (key, key_id) = self.assign(&user, profile).await;
        Member {
            profile,
            user,
            key,
            key_id,
        }
    }

    /// The user's copy of template `profile`, with live usage.
    pub async fn copy(&self, user: &str, profile: i64) -> Value {
        let r = self
            .server
            .get(&g(&format!("/users/{user}/access-profiles")))
            .await;
        assert_eq!(r.status, 200, "copies of {user}: {}", r.text);
        r.body["access_profiles"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["parent_profile_id"] == profile)
            .unwrap_or_else(|| panic!("{user} holds no copy of {profile}: {}", r.text))
            .clone()
    }

    /// `budgets[i].current_usage` of the user's copy, in USD.
    pub async fn budget_used(&self, m: &Member, i: usize) -> f64 {
        self.copy(&m.user, m.profile).await["budgets"][i]["current_usage"]
            .as_f64()
            .unwrap()
    }

    /// `rate_limit.request_current_usage` of the user's copy.
    pub async fn requests_used(&self, m: &Member) -> i64 {
        self.copy(&m.user, m.profile).await["rate_limit"]["request_current_usage"]
            .as_i64()
            .unwrap()
    }

    /// `rate_limit.token_current_usage` of the user's copy.
    pub async fn tokens_used(&self, m: &Member) -> i64 {
        self.copy(&m.user, m.profile).await["rate_limit"]["token_current_usage"]
            .as_i64()
            .unwrap()
    }

    /// `GET G/virtual-keys/quota` with the key.
    pub async fn quota(&self, key: &str) -> Reply {
        let resp = self
            .server
            .client
            .get(self.server.url(&g("/virtual-keys/quota")))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        Reply::read(resp).await
    }

    /// POSTs `body` to `path` with `Authorization: Bearer key` (when given).
    pub async fn call(&self, path: &str, key: Option<&str>, body: &Value) -> Reply {
        self.call_with(path, key, body, &[]).await
    }

    pub async fn call_with(
        &self,
        path: &str,
        key: Option<&str>,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.server.client.post(self.server.url(path)).json(body);
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Reply::read(req.send().await.unwrap()).await
    }

    /// A chat completion on `/v1` with the key.
    pub async fn chat(&self, key: &str, model: &str) -> Reply {
        self.call("/v1/chat/completions", Some(key), &chat_body(model))
            .await
    }

    /// Posts a streaming request; returns status, headers and the whole text.
    pub async fn stream(&self, path: &str, key: &str, body: &Value) -> (u16, HeaderMap, String) {
        let resp = self
            .server
            .client
            .post(self.server.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.text().await.unwrap())
    }

    /// `GET path` with the key and no admin credentials.
    pub async fn get_with_key(&self, path: &str, key: Option<&str>) -> Reply {
        let mut req = self.server.client.get(self.server.url(path));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        Reply::read(req.send().await.unwrap()).await
    }

    /// Chat requests that reached the mock.
    pub fn upstream_chats(&self) -> usize {
        self.mock
            .requests()
            .iter()
            .filter(|r| r.path == "/v1/chat/completions" || r.path == "/v1/messages")
            .count()
    }
}

/// A chat body with `max_tokens` set (so the estimate is known).
pub fn chat_body(model: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": "hello"}]
    })
}

/// An Anthropic Messages body.
pub fn messages_body(model: &str) -> Value {
    json!({
        "model": model,
        "max_tokens": MAX_TOKENS,
        "messages": [{"role": "user", "content": "hello"}]
    })
}

/// Token estimate of a request body: ceil(bytes / 4) + output cap.
pub fn token_estimate(body: &Value, output_cap: u64) -> u64 {
    (serde_json::to_vec(body).unwrap().len() as u64).div_ceil(4) + output_cap
}

/// Cost estimate of a body at the test prices, in USD.
pub fn cost_estimate(body: &Value) -> f64 {
    let prompt = (serde_json::to_vec(body).unwrap().len() as u64).div_ceil(4);
    prompt as f64 * INPUT_PER_M / 1e6 + MAX_TOKENS as f64 * OUTPUT_PER_M / 1e6
}

/// A template allowing every OpenAI model with `extra` merged into it.
pub fn openai_profile(name: &str, extra: Value) -> Value {
    let mut body = json!({
        "name": name,
        "provider_configs": [{"provider_name": "openai", "all_models_allowed": true}],
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        body[k] = v;
    }
    body
}

/// Asserts a governance denial in Heimdall's envelope: status, top-level
/// `type`, `error.type`, `error.code`, `status_code`, `is_bifrost_error`.
/// Returns the message.
pub fn assert_denial(r: &Reply, status: u16, kind: &str) -> String {
    assert_eq!(r.status, status, "expected {status} {kind}: {}", r.text);
    let b = &r.body;
    assert_eq!(b["type"], kind, "{}", r.text);
    assert_eq!(b["status_code"], status, "{}", r.text);
    assert_eq!(b["is_bifrost_error"], true, "{}", r.text);
    assert_eq!(b["error"]["type"], kind, "{}", r.text);
    assert_eq!(b["error"]["code"], kind, "{}", r.text);
    assert!(
        uuid::Uuid::parse_str(b["event_id"].as_str().unwrap_or("")).is_ok(),
        "event_id: {}",
        r.text
    );
    let msg = b["error"]["message"].as_str().unwrap_or("").to_string();
    assert!(msg.len() >= 10, "a useful sentence: {}", r.text);
    msg
}

/// Asserts a denial in Anthropic's error shape; returns the message.
pub fn assert_anthropic_denial(r: &Reply, status: u16, kind: &str) -> String {
    assert_eq!(r.status, status, "expected {status} {kind}: {}", r.text);
    let b = &r.body;
    assert_eq!(b["type"], "error", "{}", r.text);
    assert_eq!(b["error"]["type"], kind, "{}", r.text);
    assert_eq!(b["status_code"], status, "{}", r.text);
    assert!(
        uuid::Uuid::parse_str(b["event_id"].as_str().unwrap_or("")).is_ok(),
        "event_id: {}",
        r.text
    );
    let msg = b["error"]["message"].as_str().unwrap_or("").to_string();
    assert!(msg.len() >= 10, "a useful sentence: {}", r.text);
    msg
}

/// A response header as text.
pub fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// `Retry-After` in seconds.
pub fn retry_after(r: &Reply) -> u64 {
    header(&r.headers, "retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", r.headers))
        .parse()
        .unwrap()
}

/// Parses an RFC 3339 timestamp from the wire.
pub fn at(v: &Value) -> DateTime<Utc> {
    let t = v
        .as_str()
        .unwrap_or_else(|| panic!("expected a timestamp, got {v}"));
    DateTime::parse_from_rfc3339(t)
        .unwrap_or_else(|e| panic!("not RFC 3339 ({e}): {t}"))
        .with_timezone(&Utc)
}

/// Whole-second RFC 3339 as messages write it.
pub fn secs(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Two USD amounts are equal to the nano-dollar.
pub fn assert_usd(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "{what}: {actual} USD, expected {expected}"
    );
}

/// Waits until `f` holds (polling), failing after ten seconds.
pub async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
}

/// The JSON payloads of an SSE text (skipping `[DONE]`).
pub fn data_events(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}
