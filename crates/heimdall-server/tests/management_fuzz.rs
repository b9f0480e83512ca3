//! A bounded fuzz of the management API (hardening issue): hostile strings,
//! numbers, shapes and ids sent to every management route, under both
//! prefixes, on SQLite and PostgreSQL. Every answer must be below 500, every
//! error must be in the envelope, and a refused write must leave the store
//! exactly as it was (every table but the usage counters, which the flusher
//! writes, is compared row by row after each write).
//!
//! The generator is seeded, so a failure names the seed and the request and
//! replays. `HEIMDALL_FUZZ_REQUESTS` raises the request count for a longer
//! run by hand.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod people;

use std::time::{Duration, Instant};

use heimdall_testkit::{Reply, TestDb, TestServer, store_test};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use sqlx::AnyPool;

/// Requests per backend in CI; a wall-clock guard stops earlier on a slow
/// machine (the count reached is printed).
const REQUESTS: usize = 1_200;
const TIME_GUARD: Duration = Duration::from_secs(40);

/// Ids of the realistic objects the fuzz starts from.
struct World {
    profile: String,
    role: String,
    user: String,
    key: String,
    budget: String,
    provider: String,
    provider_key: String,
}

async fn world(s: &TestServer) -> World {
    let g = |p: &str| format!("/api/governance{p}");
    let r = s
        .post(
            "/api/providers",
            json!({"provider": "openai", "network_config": {"base_url": "http://127.0.0.1:9"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s
        .post(
            "/api/providers/openai/keys",
            json!({"name": "main", "value": "sk-upstream-1", "models": ["gpt-4o"]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let provider_key = r.body["id"]
        .as_str()
        .map(str::to_string)
        .or_else(|| r.body["id"].as_i64().map(|i| i.to_string()))
        .or_else(|| r.body["key"]["id"].as_str().map(str::to_string))
        .unwrap_or_else(|| "1".to_string());
    let r = s
        .put(
            "/api/pricing/openai/gpt-4o",
            json!({"input_cost_per_million_tokens": 2.5, "output_cost_per_million_tokens": 10}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let profile = people::template(s, profile_body("Fuzzed")).await;
    people::activate(s, profile).await;
    let role = people::role(s, "Fuzzers").await;
    let (user, _) = people::user(s, "Fuzz Target", Some(role)).await;
    let copy = people::assign(s, &user, profile).await;
    let key = copy["virtual_key"]["id"].as_str().unwrap().to_string();
    let copies = people::copies(s, &user).await;
    let budget = copies[0]["budgets"][0]["id"]
        .to_string()
        .trim_matches('"')
        .to_string();
    let r = s.get(&g(&format!("/users/{user}"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    World {
        profile: profile.to_string(),
        role: role.to_string(),
        user,
        key,
        budget,
        provider: "openai".to_string(),
        provider_key,
    }
}

fn profile_body(name: &str) -> Value {
    json!({
        "name": name,
        "description": "a profile to fuzz",
        "tags": ["fuzz"],
        "provider_configs": [{"provider_name": "openai", "allowed_models": ["gpt-4o"],
                              "budgets": [{"max_limit": 5, "reset_duration": "1d"}]}],
        "budgets": [{"max_limit": 10, "reset_duration": "1M"}],
        "rate_limit": {"request_max_limit": 100, "request_reset_duration": "1m",
                       "token_max_limit": 10000, "token_reset_duration": "1h"},
        "mcp_tool_groups": [{"tool_group_id": 7}],
        "mcp_servers": [{"mcp_server_id": "github"}],
    })
}

/// A route: method, path with `{…}` placeholders, and a realistic body.
struct Route {
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
}

fn routes() -> Vec<Route> {
    let r = |method, path, body| Route { method, path, body };
    let none = None;
    vec![
        r(
            "GET",
            "{G}/access-profiles?limit=5&offset=0&search=a&tags=x&is_active=true",
            none.clone(),
        ),
        r("POST", "{G}/access-profiles", Some(profile_body("New"))),
        r(
            "GET",
            "{G}/access-profiles/audit-logs?limit=3",
            none.clone(),
        ),
        r("GET", "{G}/access-profiles/{profile}", none.clone()),
        r(
            "PUT",
            "{G}/access-profiles/{profile}",
            Some(
                json!({"description": "changed", "budgets": [{"max_limit": 20, "reset_duration": "1w"}]}),
            ),
        ),
        r("DELETE", "{G}/access-profiles/{profile}", none.clone()),
        r(
            "PUT",
            "{G}/access-profiles/{profile}/activate",
            none.clone(),
        ),
        r(
            "PUT",
            "{G}/access-profiles/{profile}/deactivate",
            none.clone(),
        ),
        r(
            "POST",
            "{G}/access-profiles/{profile}/clone",
            Some(json!({"name": "Clone", "description": "c"})),
        ),
        r(
            "GET",
            "{G}/access-profiles/{profile}/versions",
            none.clone(),
        ),
        r(
            "GET",
            "{G}/access-profiles/{profile}/versions/{version}",
            none.clone(),
        ),
        r(
            "GET",
            "{G}/access-profiles/{profile}/audit-logs?limit=2&offset=1",
            none.clone(),
        ),
        r(
            "POST",
            "{G}/access-profiles/{profile}/propagate",
            Some(
                json!({"dry_run": true, "fields": ["budgets"], "user_ids": [], "reset_usage": false}),
            ),
        ),
        r(
            "POST",
            "{G}/access-profiles/{profile}/roles",
            Some(json!({"role_ids": [2], "is_default": false, "apply_to_existing": false})),
        ),
        r(
            "DELETE",
            "{G}/access-profiles/{profile}/roles/{role}",
            none.clone(),
        ),
        r("GET", "{G}/rbac/roles", none.clone()),
        r(
            "POST",
            "{G}/rbac/roles",
            Some(json!({"name": "Auditors", "description": "read only"})),
        ),
        r("GET", "{G}/rbac/roles/{role}", none.clone()),
        r(
            "PUT",
            "{G}/rbac/roles/{role}",
            Some(json!({"name": "Renamed", "description": null})),
        ),
        r("DELETE", "{G}/rbac/roles/{role}", none.clone()),
        r("GET", "{G}/users?limit=10&offset=0&search=f", none.clone()),
        r(
            "POST",
            "{G}/users",
            Some(json!({"name": "Grace", "email": "grace@example.com", "role_id": 2})),
        ),
        r("GET", "{G}/users/{user}", none.clone()),
        r("DELETE", "{G}/users/{user}", none.clone()),
        r("PUT", "{G}/users/{user}/role", Some(json!({"role_id": 3}))),
        r("GET", "{G}/users/{user}/access-profiles", none.clone()),
        r(
            "POST",
            "{G}/users/{user}/access-profiles",
            Some(json!({"access_profile_id": 1, "expires_at": "2030-01-01T00:00:00Z"})),
        ),
        r(
            "PUT",
            "{G}/users/{user}/access-profiles/{profile}",
            Some(json!({"is_active": true, "expires_at": null})),
        ),
        r(
            "DELETE",
            "{G}/users/{user}/access-profiles/{profile}",
            none.clone(),
        ),
        r(
            "PUT",
            "{G}/users/{user}/access-profiles/{profile}/budgets/{budget}/override",
            Some(json!({"amount": 50, "mode": "add", "cycles": 2})),
        ),
        r(
            "DELETE",
            "{G}/users/{user}/access-profiles/{profile}/budgets/{budget}/override",
            none.clone(),
        ),
        r(
            "POST",
            "{G}/users/{user}/access-profiles/{profile}/virtual-keys",
            Some(json!({"name": "alias", "description": "d"})),
        ),
        r("GET", "{G}/users/{user}/virtual-keys", none.clone()),
        r(
            "POST",
            "{G}/users/{user}/virtual-keys",
            Some(json!({"name": "extra", "description": "d"})),
        ),
        r(
            "DELETE",
            "{G}/users/{user}/virtual-keys/{key}",
            none.clone(),
        ),
        r(
            "PUT",
            "{G}/virtual-keys/{key}",
            Some(
                json!({"name": "renamed", "description": "x", "is_active": true, "expires_at": null}),
            ),
        ),
        r("POST", "{G}/virtual-keys/{key}/rotate", none.clone()),
        r("GET", "/api/pricing", none.clone()),
        r(
            "PUT",
            "/api/pricing/{provider}/{model}",
            Some(json!({"input_cost_per_million_tokens": 1, "output_cost_per_million_tokens": 2})),
        ),
        r("DELETE", "/api/pricing/{provider}/{model}", none.clone()),
        r("GET", "/api/providers", none.clone()),
        r(
            "POST",
            "/api/providers",
            Some(
                json!({"provider": "groq", "kind": "openai", "network_config": {"base_url": "http://127.0.0.1:9", "extra_headers": {"x-a": "b"}, "max_retries": 1}}),
            ),
        ),
        r("GET", "/api/providers/{provider}", none.clone()),
        r(
            "PUT",
            "/api/providers/{provider}",
            Some(
                json!({"network_config": {"base_url": "http://127.0.0.1:9", "default_request_timeout_in_seconds": 30}}),
            ),
        ),
        r("DELETE", "/api/providers/{provider}", none.clone()),
        r("GET", "/api/providers/{provider}/keys", none.clone()),
        r(
            "POST",
            "/api/providers/{provider}/keys",
            Some(
                json!({"name": "second", "value": {"env_var": "FUZZ_KEY"}, "models": ["gpt-4o"], "weight": 2}),
            ),
        ),
        r(
            "GET",
            "/api/providers/{provider}/keys/{provider_key}",
            none.clone(),
        ),
        r(
            "PUT",
            "/api/providers/{provider}/keys/{provider_key}",
            Some(json!({"name": "main", "value": "sk-upstream-2", "enabled": false})),
        ),
        r(
            "DELETE",
            "/api/providers/{provider}/keys/{provider_key}",
            none,
        ),
    ]
}

/// Ids that are wrong in every way a path segment can be (already
/// percent-encoded where needed).
const HOSTILE_IDS: &[&str] = &[
    "0",
    "-1",
    "1e3",
    "9223372036854775808",
    "99999999999999999999",
    "%00",
    "a%00b",
    "%ff",
    "%c3%28",
    "abc",
    "..",
    "%2e%2e",
    "%2F",
    "%20",
    "%E2%80%AE",
    "null",
    "true",
    "1.5",
    "0x10",
    "%27%20OR%201%3D1--",
    "%3Cscript%3E",
    "00000000-0000-0000-0000-000000000000",
];

/// Strings that have broken gateways and databases before.
fn hostile_string(rng: &mut StdRng) -> String {
    match rng.random_range(0..16) {
        0 => String::new(),
        1 => " \t\n ".to_string(),
        2 => "\u{0}".to_string(),
        3 => "a\u{0}b".to_string(),
        4 => "x".repeat(rng.random_range(1_000..200_000)),
        5 => "💥".repeat(rng.random_range(1..5_000)),
        6 => "\u{202e}evil\u{200b}".to_string(),
        7 => "'; DROP TABLE users; --".to_string(),
        8 => "<script>alert(1)</script>".to_string(),
        9 => "../../etc/passwd".to_string(),
        10 => "line\r\nX-Injected: 1".to_string(),
        11 => "%00%ff".to_string(),
        12 => "regex:(a+)+$".to_string(),
        13 => "\u{7f}\u{1b}[31m".to_string(),
        14 => "é".repeat(rng.random_range(9_999..10_002)),
        _ => "1d".to_string(),
    }
}

fn hostile_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..14) {
        0 => Value::Null,
        1 => json!(rng.random_bool(0.5)),
        2 => json!(-1),
        3 => json!(0),
        4 => json!(i64::MAX),
        5 => json!(u64::MAX),
        6 => json!(1e308),
        7 => json!(-1e308),
        8 => json!(0.1),
        9 if depth < 3 => json!([hostile_value(rng, depth + 1), hostile_value(rng, depth + 1)]),
        10 if depth < 3 => json!({"zz": hostile_value(rng, depth + 1)}),
        11 => json!(vec![0; rng.random_range(0..3_000)]),
        _ => Value::String(hostile_string(rng)),
    }
}

/// A copy of `v` with one hostile change: a leaf replaced, a field
/// removed, an unknown field added, or the whole body replaced.
fn mutate(v: &Value, rng: &mut StdRng) -> Value {
    let mut out = v.clone();
    let mut paths: Vec<Vec<PathStep>> = Vec::new();
    collect_paths(&out, &mut Vec::new(), &mut paths);
    match rng.random_range(0..10) {
        0 => return hostile_value(rng, 0),
        1 => {
            if let Value::Object(m) = &mut out {
                m.insert(
                    hostile_string(rng).chars().take(50).collect::<String>() + "_unknown",
                    json!(1),
                );
            }
            return out;
        }
        _ => {}
    }
    if paths.is_empty() {
        return hostile_value(rng, 0);
    }
    let path = paths[rng.random_range(0..paths.len())].clone();
    let remove = rng.random_range(0..5) == 0;
    let replacement = hostile_value(rng, 0);
    set_at(
        &mut out,
        &path,
        if remove { None } else { Some(replacement) },
    );
    out
}

#[derive(Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn collect_paths(v: &Value, here: &mut Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                here.push(PathStep::Key(k.clone()));
                out.push(here.clone());
                collect_paths(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                here.push(PathStep::Index(i));
                out.push(here.clone());
                collect_paths(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn set_at(v: &mut Value, path: &[PathStep], new: Option<Value>) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = v;
    for step in parents {
        cur = match step {
            PathStep::Key(k) => &mut cur[k.as_str()],
            PathStep::Index(i) => &mut cur[*i],
        };
    }
    match (last, new) {
        (PathStep::Key(k), Some(n)) => cur[k.as_str()] = n,
        (PathStep::Key(k), None) => {
            if let Value::Object(m) = cur {
                m.remove(k);
            }
        }
        (PathStep::Index(i), Some(n)) => cur[*i] = n,
        (PathStep::Index(i), None) => {
            if let Value::Array(a) = cur {
                a.remove(*i);
            }
        }
    }
}

/// Raw bodies that are not JSON objects at all.
fn hostile_bytes(rng: &mut StdRng) -> Vec<u8> {
    match rng.random_range(0..8) {
        0 => b"{".to_vec(),
        1 => b"{\"name\": \"a\",}".to_vec(),
        2 => vec![0xff, 0xfe, b'{', b'}'],
        3 => b"{\"name\": \"\\ud800\"}".to_vec(),
        4 => b"[1, 2".to_vec(),
        5 => b"{\"a\":".repeat(10_000),
        6 => b"null".to_vec(),
        _ => Vec::new(),
    }
}

/// Every table but the usage counters (the flusher writes those), row by
/// row, as text.
async fn store_contents(pool: &AnyPool) -> Vec<String> {
    heimdall_testkit::db::every_row(pool)
        .await
        .into_iter()
        .filter(|row| !row.starts_with("usage_counters:"))
        .collect()
}

/// The envelope of an error answer.
fn assert_envelope(r: &Reply, what: &str) {
    let error = &r.body["error"];
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()) && error["type"].is_string(),
        "{what}: error {} outside the envelope: {}",
        r.status,
        r.text.chars().take(500).collect::<String>()
    );
}

store_test!(
    hostile_requests_to_every_management_route,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let w = world(&s).await;
        let pool = people::raw_db(&s).await;
        let seed: u64 = std::env::var("HEIMDALL_FUZZ_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0x04e1_da11);
        let asked: Option<usize> = std::env::var("HEIMDALL_FUZZ_REQUESTS")
            .ok()
            .and_then(|v| v.parse().ok());
        let requests = asked.unwrap_or(REQUESTS);
        // A run asked for by hand goes to its count; CI's stops at the guard.
        let guard = if asked.is_some() {
            Duration::MAX
        } else {
            TIME_GUARD
        };
        let mut rng = StdRng::seed_from_u64(seed);
        let routes = routes();
        let mut before = store_contents(&pool).await;
        let started = Instant::now();
        let (mut sent, mut refused_writes, mut accepted) = (0usize, 0usize, 0usize);
        for n in 0..requests {
            if started.elapsed() > guard {
                break;
            }
            let route = &routes[rng.random_range(0..routes.len())];
            let is_write = route.method != "GET";
            // Deletes and rotations only ever see hostile ids, so that the
            // objects the fuzz works on stay in place.
            let destructive = route.method == "DELETE" || route.path.ends_with("/rotate");
            let mut path = route.path.replace(
                "{G}",
                if rng.random_bool(0.7) {
                    "/api/governance"
                } else {
                    "/api"
                },
            );
            for (name, valid) in [
                ("{profile}", w.profile.as_str()),
                ("{version}", "1"),
                ("{role}", w.role.as_str()),
                ("{user}", w.user.as_str()),
                ("{key}", w.key.as_str()),
                ("{budget}", w.budget.as_str()),
                ("{provider}", w.provider.as_str()),
                ("{provider_key}", w.provider_key.as_str()),
                ("{model}", "gpt-4o"),
            ] {
                if path.contains(name) {
                    let id = if destructive || rng.random_bool(0.4) {
                        HOSTILE_IDS[rng.random_range(0..HOSTILE_IDS.len())]
                    } else {
                        valid
                    };
                    path = path.replace(name, id);
                }
            }
            if rng.random_range(0..8) == 0 {
                let q = HOSTILE_IDS[rng.random_range(0..HOSTILE_IDS.len())];
                path.push(if path.contains('?') { '&' } else { '?' });
                path.push_str(&format!("limit={q}&search={q}"));
            }
            let body: Vec<u8> = match (&route.body, rng.random_range(0..6)) {
                (_, 0) => hostile_bytes(&mut rng),
                (Some(b), 1) => serde_json::to_vec(b).unwrap(),
                (Some(b), _) => serde_json::to_vec(&mutate(b, &mut rng)).unwrap(),
                (None, 2) => serde_json::to_vec(&hostile_value(&mut rng, 0)).unwrap(),
                (None, _) => Vec::new(),
            };
            let what = format!(
                "seed {seed:#x} request {n}: {} {path} {}",
                route.method,
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            );
            let r = s.raw(route.method, &path, body).await;
            sent += 1;
            assert!(r.status < 500, "{what} → {}: {}", r.status, r.text);
            if r.status >= 400 {
                assert_envelope(&r, &what);
            }
            if is_write {
                let after = store_contents(&pool).await;
                if r.status >= 400 {
                    refused_writes += 1;
                    assert!(
                        after == before,
                        "{what} → {} changed the store:\n{}",
                        r.status,
                        after
                            .iter()
                            .filter(|l| !before.contains(l))
                            .chain(before.iter().filter(|l| !after.contains(l)))
                            .take(5)
                            .map(|l| l.chars().take(300).collect::<String>())
                            .collect::<Vec<_>>()
                            .join("\n")
                    );
                } else {
                    accepted += 1;
                }
                before = after;
            }
        }
        eprintln!(
            "fuzz seed {seed:#x}: {sent} requests in {:.1} s, {refused_writes} refused writes (store unchanged), {accepted} accepted writes",
            started.elapsed().as_secs_f64()
        );
        assert!(
            sent >= 200,
            "the fuzz must send a few hundred requests (sent {sent})"
        );
    }
);
