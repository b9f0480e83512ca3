//! Every write route of the management API, under both prefixes, says what
//! it changed in the policy index, and the index reflects the write before
//! its response arrives — on SQLite and PostgreSQL.
//!
//! One table (`cases`) holds a realistic successful write for each write
//! route. `the_table_covers_every_write_route` compares it with the routes
//! the server registers (`management::write_routes`), so a new write route
//! without a case fails; `every_write_route_keeps_the_index_in_step` runs
//! each case and checks, right after the write, that the live index equals
//! one built from the store afresh (and that it changed, or did not, as the
//! case expects), then what the write means for a key on the inference path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod governance_support;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use governance_support::{Env, G, assert_denial, g, openai_profile, start};
use heimdall_core::policy::Snapshot;
use heimdall_server::governance::Governance;
use heimdall_server::management::write_routes;
use heimdall_testkit::{Reply, TestDb, store_test};
use serde_json::{Value, json};

const MODEL: &str = "openai/gpt-4o-mini";
const PREFIXES: [&str; 2] = [G, "/api"];

/// What a case's write does to the policy index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Index {
    /// Templates and roles: the index stays as it was.
    Unchanged,
    /// Keys or copies: the index differs afterwards.
    Changed,
}

type Run = for<'c> fn(&'c Ctx<'c>) -> Pin<Box<dyn Future<Output = ()> + 'c>>;

/// One write route and a realistic successful write on it.
struct Case {
    method: &'static str,
    /// As registered, without the prefix.
    path: &'static str,
    index: Index,
    /// Sets up what the write needs, calls `Ctx::write` once, then checks
    /// what the write means on the inference path.
    run: Run,
}

/// What every case starts from: an active template `p` (with a budget) of
/// which `user` holds a direct copy with the key `key`; a second active
/// template `p2`, the default of role `role`.
struct Fixture {
    n: usize,
    p: i64,
    p2: i64,
    role: i64,
    user: String,
    key: String,
    key_id: String,
    budget: String,
}

struct Ctx<'e> {
    env: &'e Env,
    prefix: &'static str,
    case: &'e Case,
    fx: Fixture,
    writes: Cell<u32>,
}

/// Fills the `{…}` segments of `pattern` with `args`, in order.
fn fill(pattern: &str, args: &[&str]) -> String {
    let mut args = args.iter();
    let path: Vec<String> = pattern
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                args.next()
                    .unwrap_or_else(|| panic!("{pattern}: too few path arguments"))
                    .to_string()
            } else {
                seg.to_string()
            }
        })
        .collect();
    assert!(args.next().is_none(), "{pattern}: too many path arguments");
    path.join("/")
}

/// Everything the index holds, in a form that compares: per user, its
/// copies (rules, limits, overrides) and the entries of its key hashes.
type Digest = (usize, usize, BTreeMap<String, String>);

/// Where two digests differ: the counts, and the users whose entries do.
fn differences(a: &Digest, b: &Digest) -> Vec<String> {
    let mut out = Vec::new();
    if (a.0, a.1) != (b.0, b.1) {
        out.push(format!("keys/users {}/{} vs {}/{}", a.0, a.1, b.0, b.1));
    }
    let ids: BTreeSet<&String> = a.2.keys().chain(b.2.keys()).collect();
    for id in ids {
        let (x, y) = (a.2.get(id), b.2.get(id));
        if x != y {
            out.push(format!("user {id}: {x:?}\n  vs {y:?}"));
        }
    }
    out
}

fn digest(s: &Snapshot) -> Digest {
    let mut users = BTreeMap::new();
    for u in s.users() {
        let copies: Vec<String> = u
            .copies
            .iter()
            .map(|c| {
                let mut rules: Vec<String> = c
                    .rules
                    .providers
                    .iter()
                    .map(|(p, r)| {
                        let exact: BTreeSet<&String> = r.exact.iter().collect();
                        format!(
                            "{p}: all={} exact={exact:?} patterns={:?} listed={:?}",
                            r.all_models, r.pattern_sources, r.listed
                        )
                    })
                    .collect();
                rules.sort();
                let limits: Vec<String> = c
                    .limits
                    .iter()
                    .map(|l| {
                        format!(
                            "{} {:?} {:?} max={} per {} anchor={} override={:?}",
                            l.limit_id,
                            l.def.kind,
                            l.def.owner,
                            l.def.max,
                            l.def.duration,
                            l.anchor,
                            l.override_
                        )
                    })
                    .collect();
                format!(
                    "copy {} of {} {:?} active={} expires={:?} rules={rules:?} limits={limits:?}",
                    c.id, c.parent_profile_id, c.name, c.is_active, c.expires_at
                )
            })
            .collect();
        let mut keys: Vec<String> = u
            .key_hashes
            .iter()
            .map(|h| {
                let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
                match s.key(h, DateTime::<Utc>::MIN_UTC) {
                    Some(k) => format!(
                        "{hex} key {} {:?} active={} expires={:?} grace={:?} of {}",
                        k.key_id, k.name, k.is_active, k.expires_at, k.grace_until, k.user.user_id
                    ),
                    None => format!("{hex} missing"),
                }
            })
            .collect();
        keys.sort();
        users.insert(
            u.user_id.to_string(),
            format!("copies={copies:?} keys={keys:?}"),
        );
    }
    (s.key_count(), s.user_count(), users)
}

impl Ctx<'_> {
    fn server(&self) -> &heimdall_testkit::TestServer {
        &self.env.server
    }

    /// The case's write: its method on its route under the prefix, with
    /// `args` in the path. Asserts success, then that the live index equals
    /// one built from the store now, and changed or not as the case says.
    async fn write(&self, args: &[&str], body: Option<Value>) -> Reply {
        let case = self.case;
        let path = format!("{}{}", self.prefix, fill(case.path, args));
        let governance = &self.server().state.governance;
        let before = digest(&governance.snapshot());
        let r = self.server().admin(case.method, &path, body).await;
        assert!(
            (200..300).contains(&r.status),
            "{} {path}: {}",
            case.method,
            r.text
        );
        let live = digest(&governance.snapshot());
        let fresh = Governance::start(&self.server().state.store)
            .await
            .unwrap()
            .snapshot();
        let stale = differences(&live, &digest(&fresh));
        assert!(
            stale.is_empty(),
            "after {} {path} the live index is not what the store holds (live vs store):\n{}",
            case.method,
            stale.join("\n")
        );
        let changed = !differences(&before, &live).is_empty();
        assert_eq!(
            changed,
            case.index == Index::Changed,
            "{} {path}: expected the index {:?}",
            case.method,
            case.index
        );
        self.writes.set(self.writes.get() + 1);
        r
    }

    async fn chat(&self, key: &str) -> Reply {
        self.env.chat(key, MODEL).await
    }

    async fn works(&self, key: &str) {
        let r = self.chat(key).await;
        assert_eq!(
            r.status, 200,
            "{} {}: {}",
            self.case.method, self.case.path, r.text
        );
    }

    /// The fixture's key still works: for writes that must not touch it.
    async fn key_still_works(&self) {
        self.works(&self.fx.key).await;
    }

    fn name(&self, what: &str) -> String {
        format!("{what}-{}", self.fx.n)
    }

    async fn new_template(&self, what: &str) -> i64 {
        let r = self
            .server()
            .post(
                &g("/access-profiles"),
                openai_profile(&self.name(what), json!({})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["access_profile"]["id"].as_i64().unwrap()
    }

    async fn new_role(&self, what: &str) -> i64 {
        let r = self
            .server()
            .post(&g("/rbac/roles"), json!({"name": self.name(what)}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["role"]["id"].as_i64().unwrap()
    }
}

fn value_of(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("a key value: {v}"))
        .to_string()
}

async fn fixture(env: &Env, n: usize) -> Fixture {
    let p = env
        .template(openai_profile(
            &format!("p-{n}"),
            json!({"budgets": [{"max_limit": 10, "reset_duration": "1d"}]}),
        ))
        .await;
    let p2 = env
        .template(openai_profile(&format!("p2-{n}"), json!({})))
        .await;
    let r = env
        .server
        .post(&g("/rbac/roles"), json!({"name": format!("role-{n}")}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let role = r.body["role"]["id"].as_i64().unwrap();
    let r = env
        .server
        .post(
            &g(&format!("/access-profiles/{p2}/roles")),
            json!({"role_ids": [role], "is_default": true}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let user = env.user(&format!("user{n}")).await;
    let (key, key_id) = env.assign(&user, p).await;
    let copy = env.copy(&user, p).await;
    let budget = value_of(&copy["budgets"][0]["id"]);
    Fixture {
        n,
        p,
        p2,
        role,
        user,
        key,
        key_id,
        budget,
    }
}

/// Every write route with its write. Adding a write route without a case
/// here fails `the_table_covers_every_write_route`.
fn cases() -> Vec<Case> {
    use Index::{Changed, Unchanged};
    vec![
        // Templates.
        Case {
            method: "POST",
            path: "/access-profiles",
            index: Unchanged,
            run: |c| {
                Box::pin(async move {
                    let body = openai_profile(&c.name("created"), json!({}));
                    c.write(&[], Some(body)).await;
                    c.key_still_works().await;
                })
            },
        },
        Case {
            method: "PUT",
            path: "/access-profiles/{id}",
            index: Unchanged,
            run: |c| {
                Box::pin(async move {
                    // Copies change only by propagation.
                    let body = json!({"provider_configs": [{"provider_name": "anthropic", "all_models_allowed": true}]});
                    c.write(&[&c.fx.p.to_string()], Some(body)).await;
                    c.key_still_works().await;
                })
            },
        },
        Case {
            method: "DELETE",
            path: "/access-profiles/{id}",
            index: Unchanged,
            run: |c| {
                Box::pin(async move {
                    let t = c.new_template("doomed").await;
                    c.write(&[&t.to_string()], None).await;
                    c.key_still_works().await;
                })
            },
        },
        Case {
            method: "PUT",
            path: "/access-profiles/{id}/activate",
            index: Unchanged,
            run: |c| {
                Box::pin(async move {
                    let t = c.new_template("inactive").await;
                    c.write(&[&t.to_string()], Some(json!({}))).await;
                    c.key_still_works().await;
                })
            },
        },
        Case {
            method: "PUT",
            path: "/access-profiles/{id}/deactivate",
            index: Unchanged,
            run: |c| {
                Box::pin(async move {
                    c.write(&[&c.fx.p.to_string()], Some(json!({}))).await;
                    c.key_still_works().await;
                })
            },
        },
        Case {
            method: "POST",
            path: "/access-profiles/{id}/clone",
            index: Unchanged,
            run: |c| {
                Box::pin(async move {
                    let body = json!({"name": c.name("clone")});
                    c.write(&[&c.fx.p.to_string()], Some(body)).await;
                    c.key_still_works().await;
                })
            },
        },
        Case {
            method: "POST",
            path: "/access-profiles/{id}/propagate",
            index: Changed,
            run: |c| {
                Box::pin(async move {
                    let p = c.fx.p.to_string();
                    let r = c
                        .server()
                        .put(
                            &g(&format!("/access-profiles/{p}")),
                            json!({"provider_configs": [{"provider_name": "anthropic", "all_models_allowed": true}]}),
                        )
                        .await;
                    assert_eq!(r.status, 200, "{}", r.text);
                    c.key_still_works().await;
                    c.write(&[&p], Some(json!({"fields": ["provider_configs"]})))
                        .await;
                    assert_denial(&c.chat(&c.fx.key).await, 403, "provider_blocked");
                })
            },
        },
        Case {
            method: "POST",
            path: "/access-profiles/{id}/roles",
            index: Changed,
            run: |c| {
                Box::pin(async move {
                    // A holder of a role without templates gets a copy.
                    let role = c.new_role("attach").await;
                    let r = c
                        .server()
                        .post(
                            &g("/users"),
                            json!({"name": c.name("holder"), "email": format!("holder{}@example.com", c.fx.n), "role_id": role}),
                        )
                        .await;
                    assert_eq!(r.status, 200, "{}", r.text);
                    assert_eq!(r.body["virtual_keys"], json!([]), "{}", r.text);
                    let holder = value_of(&r.body["user"]["id"]);
                    let body =
                        json!({"role_ids": [role], "is_default": true, "apply_to_existing": true});
                    let r = c.write(&[&c.fx.p2.to_string()], Some(body)).await;
                    assert_eq!(r.body["users_applied"], 1, "{}", r.text);
                    let snapshot = c.server().state.governance.snapshot();
                    let entry = snapshot.user(&holder).expect("the holder is in the index");
                    assert_eq!(entry.copies.len(), 1);
                    assert_eq!(entry.key_hashes.len(), 1);
                })
            },
        },
        Case {
            method: "DELETE",
            path: "/access-profiles/{id}/roles/{role_id}",
            index: Unchanged,
            run: |c| {
                Box::pin(async move {
                    c.write(&[&c.fx.p2.to_string(), &c.fx.role.to_string()], None)
                        .await;
                    c.key_still_works().await;
                })
            },
        },
        // Roles.
        Case {
            method: "POST",
            path: "/rbac/roles",
            index: Unchanged,
            run: |c| {
                Box::pin(async move {
                    c.write(&[], Some(json!({"name": c.name("new-role")})))
                        .await;
                    c.key_still_works().await;
                })
            },
        },
        Case {
            method: "PUT",
            path: "/rbac/roles/{id}",
            index: Unchanged,
            run: |c| {
                Box::pin(async move {
                    let body = json!({"name": c.name("renamed"), "description": "renamed"});
                    c.write(&[&c.fx.role.to_string()], Some(body)).await;
                    c.key_still_works().await;
                })
            },
        },
        Case {
            method: "DELETE",
            path: "/rbac/roles/{id}",
            index: Unchanged,
            run: |c| {
                Box::pin(async move {
                    c.write(&[&c.fx.role.to_string()], None).await;
                    c.key_still_works().await;
                })
            },
        },
        // Users.
        Case {
            method: "POST",
            path: "/users",
            index: Changed,
            run: |c| {
                Box::pin(async move {
                    let body = json!({"name": c.name("new-user"), "email": format!("new{}@example.com", c.fx.n), "role_id": c.fx.role});
                    let r = c.write(&[], Some(body)).await;
                    c.works(&value_of(&r.body["virtual_keys"][0]["value"]))
                        .await;
                })
            },
        },
        Case {
            method: "DELETE",
            path: "/users/{user_id}",
            index: Changed,
            run: |c| {
                Box::pin(async move {
                    c.write(&[&c.fx.user], None).await;
                    assert_denial(&c.chat(&c.fx.key).await, 401, "virtual_key_not_found");
                })
            },
        },
        Case {
            method: "PUT",
            path: "/users/{user_id}/role",
            index: Changed,
            run: |c| {
                Box::pin(async move {
                    let r = c
                        .write(&[&c.fx.user], Some(json!({"role_id": c.fx.role})))
                        .await;
                    c.works(&value_of(&r.body["virtual_keys"][0]["value"]))
                        .await;
                })
            },
        },
        // A user's copies.
        Case {
            method: "POST",
            path: "/users/{user_id}/access-profiles",
            index: Changed,
            run: |c| {
                Box::pin(async move {
                    let r = c
                        .write(&[&c.fx.user], Some(json!({"access_profile_id": c.fx.p2})))
                        .await;
                    c.works(&value_of(&r.body["virtual_key"]["value"])).await;
                })
            },
        },
        Case {
            method: "PUT",
            path: "/users/{user_id}/access-profiles/{profile_id}",
            index: Changed,
            run: |c| {
                Box::pin(async move {
                    c.write(
                        &[&c.fx.user, &c.fx.p.to_string()],
                        Some(json!({"is_active": false})),
                    )
                    .await;
                    assert_ne!(c.chat(&c.fx.key).await.status, 200);
                })
            },
        },
        Case {
            method: "DELETE",
            path: "/users/{user_id}/access-profiles/{profile_id}",
            index: Changed,
            run: |c| {
                Box::pin(async move {
                    c.write(&[&c.fx.user, &c.fx.p.to_string()], None).await;
                    assert_denial(&c.chat(&c.fx.key).await, 401, "virtual_key_not_found");
                })
            },
        },
        Case {
            method: "PUT",
            path: "/users/{user_id}/access-profiles/{profile_id}/budgets/{budget_id}/override",
            index: Changed,
            run: |c| {
                Box::pin(async move {
                    let body = json!({"amount": 5, "mode": "forever"});
                    c.write(&[&c.fx.user, &c.fx.p.to_string(), &c.fx.budget], Some(body))
                        .await;
                    c.key_still_works().await;
                })
            },
        },
        Case {
            method: "DELETE",
            path: "/users/{user_id}/access-profiles/{profile_id}/budgets/{budget_id}/override",
            index: Changed,
            run: |c| {
                Box::pin(async move {
                    let (user, p, budget) = (&c.fx.user, c.fx.p.to_string(), &c.fx.budget);
                    let r = c
                        .server()
                        .put(
                            &g(&format!(
                                "/users/{user}/access-profiles/{p}/budgets/{budget}/override"
                            )),
                            json!({"amount": 5, "mode": "forever"}),
                        )
                        .await;
                    assert_eq!(r.status, 200, "{}", r.text);
                    c.write(&[user, &p, budget], None).await;
                    c.key_still_works().await;
                })
            },
        },
        // Keys.
        Case {
            method: "POST",
            path: "/users/{user_id}/access-profiles/{profile_id}/virtual-keys",
            index: Changed,
            run: |c| {
                Box::pin(async move {
                    let r = c
                        .write(
                            &[&c.fx.user, &c.fx.p.to_string()],
                            Some(json!({"name": c.name("alias-key")})),
                        )
                        .await;
                    c.works(&value_of(&r.body["virtual_key"]["value"])).await;
                })
            },
        },
        Case {
            method: "POST",
            path: "/users/{user_id}/virtual-keys",
            index: Changed,
            run: |c| {
                Box::pin(async move {
                    let r = c
                        .write(&[&c.fx.user], Some(json!({"name": c.name("minted")})))
                        .await;
                    c.works(&value_of(&r.body["virtual_key"]["value"])).await;
                    c.key_still_works().await;
                })
            },
        },
        Case {
            method: "DELETE",
            path: "/users/{user_id}/virtual-keys/{vk_id}",
            index: Changed,
            run: |c| {
                Box::pin(async move {
                    c.write(&[&c.fx.user, &c.fx.key_id], None).await;
                    assert_denial(&c.chat(&c.fx.key).await, 401, "virtual_key_not_found");
                })
            },
        },
        Case {
            method: "PUT",
            path: "/virtual-keys/{vk_id}",
            index: Changed,
            run: |c| {
                Box::pin(async move {
                    c.write(&[&c.fx.key_id], Some(json!({"is_active": false})))
                        .await;
                    assert_denial(&c.chat(&c.fx.key).await, 403, "virtual_key_blocked");
                })
            },
        },
        Case {
            method: "POST",
            path: "/virtual-keys/{vk_id}/rotate",
            index: Changed,
            run: |c| {
                Box::pin(async move {
                    let r = c.write(&[&c.fx.key_id], Some(json!({}))).await;
                    c.works(&value_of(&r.body["virtual_key"]["value"])).await;
                })
            },
        },
    ]
}

#[test]
fn the_table_covers_every_write_route() {
    let registered: BTreeSet<(String, String)> = write_routes()
        .into_iter()
        .map(|(m, p)| (m.as_str().to_string(), p.to_string()))
        .collect();
    assert_eq!(
        registered.len(),
        write_routes().len(),
        "a write route is registered twice"
    );
    let cases = cases();
    let covered: BTreeSet<(String, String)> = cases
        .iter()
        .map(|c| (c.method.to_string(), c.path.to_string()))
        .collect();
    assert_eq!(covered.len(), cases.len(), "two cases for one route");
    let missing: Vec<_> = registered.difference(&covered).collect();
    let stale: Vec<_> = covered.difference(&registered).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "write routes without a case: {missing:?}; cases without a route: {stale:?}"
    );
}

store_test!(
    every_write_route_is_served_under_both_prefixes,
    |db: TestDb| async move {
        // The route list is the router's: each route answers (with a
        // refusal for these made-up ids, but not "no route" or 405).
        let env = start(db).await;
        for prefix in PREFIXES {
            for (method, path) in write_routes() {
                let args = vec!["0"; path.matches('{').count()];
                let url = format!("{prefix}{}", fill(path, &args));
                let r = env
                    .server
                    .admin(method.as_str(), &url, Some(json!({})))
                    .await;
                let msg = r.body["error"]["message"].as_str().unwrap_or("");
                assert!(
                    r.status != 405 && !msg.starts_with("no route"),
                    "{} {url}: {}",
                    method.as_str(),
                    r.text
                );
            }
        }
    }
);

store_test!(
    every_write_route_keeps_the_index_in_step,
    |db: TestDb| async move {
        let env = start(db).await;
        env.test_price("openai", "gpt-4o-mini").await;
        let cases = cases();
        let mut n = 0;
        for prefix in PREFIXES {
            for case in &cases {
                n += 1;
                let ctx = Ctx {
                    env: &env,
                    prefix,
                    case,
                    fx: fixture(&env, n).await,
                    writes: Cell::new(0),
                };
                (case.run)(&ctx).await;
                assert_eq!(
                    ctx.writes.get(),
                    1,
                    "{} {}: a case writes its route exactly once",
                    case.method,
                    case.path
                );
            }
        }
    }
);
