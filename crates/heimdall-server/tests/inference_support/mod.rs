//! Shared set-up of the inference tests: a mock provider and a real server
//! on port 0 whose config file seeds providers pointing at the mock.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use heimdall_testkit::mock::{MockHandle, MockOptions, MockProvider};
use heimdall_testkit::{Reply, TestDb, TestServer};
use serde_json::{Value, json};

pub struct Env {
    pub server: TestServer,
    pub mock: MockHandle,
    pub db: TestDb,
}

/// Providers `openai` and `anthropic` on the mock (each with one key), plus `extra`.
pub async fn start(extra: Value) -> Env {
    start_with(MockOptions::default(), extra, |_| {}).await
}

pub async fn start_with(
    opts: MockOptions,
    extra: Value,
    tweak: impl FnOnce(&mut heimdall_server::Config),
) -> Env {
    start_on(TestDb::sqlite().await, opts, extra, tweak).await
}

/// As `start_with`, on a given store (to run a test on PostgreSQL too).
pub async fn start_on(
    db: TestDb,
    opts: MockOptions,
    extra: Value,
    tweak: impl FnOnce(&mut heimdall_server::Config),
) -> Env {
    let mock = MockProvider::start(opts).await.unwrap();
    let mut config = TestServer::config(&db);
    config.governance.require_virtual_key = false;
    let net = json!({"base_url": mock.base_url});
    let mut providers = json!({
        "openai": {"network_config": net, "keys": [{"name": "k1", "value": "sk-openai-upstream-key-1"}]},
        "anthropic": {"network_config": net, "keys": [{"name": "k1", "value": "sk-ant-upstream-key-1"}]},
    });
    for (k, mut v) in extra.as_object().cloned().unwrap_or_default() {
        // every extra provider talks to the mock unless it says otherwise
        let nc = v
            .get_mut("network_config")
            .and_then(Value::as_object_mut)
            .map(|o| o.clone());
        let mut nc = nc.unwrap_or_default();
        nc.entry("base_url").or_insert(json!(mock.base_url));
        v["network_config"] = Value::Object(nc);
        providers[k] = v;
    }
    config.providers = serde_json::from_value(providers).unwrap();
    tweak(&mut config);
    let server = TestServer::start_with(config, None).await;
    Env { server, mock, db }
}

impl Env {
    /// The last request the mock got on `path` (model-list fetches run in the
    /// background, so "the last request" alone is racy).
    pub fn last(&self, path: &str) -> heimdall_testkit::mock::RecordedRequest {
        self.mock
            .requests()
            .into_iter()
            .rev()
            .find(|r| r.path == path)
            .expect("a request reached the mock")
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.post_with(path, body, &[]).await
    }

    pub async fn post_with(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.server.client.post(self.server.url(path)).json(&body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        Reply::read(req.send().await.unwrap()).await
    }

    /// Posts a body as raw text (for bodies a `Value` cannot hold).
    pub async fn post_raw(&self, path: &str, body: &'static str) -> Reply {
        let req = self
            .server
            .client
            .post(self.server.url(path))
            .header("content-type", "application/json")
            .body(body);
        Reply::read(req.send().await.unwrap()).await
    }

    /// Posts and returns the SSE `data:` payloads (and event names) as text lines.
    pub async fn stream(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> (u16, String) {
        let mut req = self.server.client.post(self.server.url(path)).json(&body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
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

/// Waits until `f` holds, failing after five seconds.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]})
}

pub fn weather_tool() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])
}
