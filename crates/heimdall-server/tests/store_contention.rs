//! Management writes while the usage flusher writes (hardening issue,
//! defect 1): with many keys sending chat requests and the flusher running
//! every 10 ms, 2,000 user creations, profile updates and key edits
//! all succeed — none fails because another writer holds the database. On
//! SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod governance_support;

mod contention {
    pub use super::governance_support::*;
    pub use heimdall_testkit::{TestDb, store_test};
    pub use serde_json::json;
    pub use std::sync::Arc;
    pub use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    /// Keys sending inference traffic (each settlement dirties counters).
    const KEYS: usize = 10;
    /// Management writer tasks running at once.
    const WRITERS: usize = 4;
    /// Writes per writer task (three kinds, in turn).
    const WRITES_PER_WRITER: usize = 500;

    store_test!(
        writes_never_fail_while_usage_is_flushed,
        |db: TestDb| async move {
            let env = Arc::new(
                start_with(db, mock_options(), |c| {
                    c.governance.flush_interval = "10ms".into();
                })
                .await,
            );
            env.test_price("openai", "gpt-4o-mini").await;
            let profile = env
            .template(openai_profile(
                "Busy",
                json!({"budgets": [{"max_limit": 1000000, "reset_duration": "1d"}],
                       "rate_limit": {"request_max_limit": 1000000, "request_reset_duration": "1m",
                                      "token_max_limit": 1000000000i64, "token_reset_duration": "1h"}}),
            ))
            .await;
            let mut keys = Vec::new();
            for i in 0..KEYS {
                let user = env.user(&format!("Load {i}")).await;
                keys.push(env.assign(&user, profile).await);
            }

            let stop = Arc::new(AtomicBool::new(false));
            let served = Arc::new(AtomicUsize::new(0));
            let mut load = Vec::new();
            for (key, _) in keys.clone() {
                let (env, stop, served) = (env.clone(), stop.clone(), served.clone());
                load.push(tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let r = env.chat(&key, "openai/gpt-4o-mini").await;
                        assert_eq!(r.status, 200, "chat under load: {}", r.text);
                        served.fetch_add(1, Ordering::Relaxed);
                        // Every flush finds dirty counters; the pause leaves the
                        // CPU to the writers.
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                }));
            }

            let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
            let mut writers = Vec::new();
            for (w, (_, key_id)) in keys.iter().take(WRITERS).enumerate() {
                let (env, failures, key_id) = (env.clone(), failures.clone(), key_id.clone());
                writers.push(tokio::spawn(async move {
                for i in 0..WRITES_PER_WRITER {
                    let r = match i % 3 {
                        0 => {
                            env.server
                                .post(
                                    &g("/users"),
                                    json!({"name": format!("W{w} {i}"), "email": format!("w{w}.{i}@example.com")}),
                                )
                                .await
                        }
                        1 => {
                            env.server
                                .put(
                                    &g(&format!("/access-profiles/{profile}")),
                                    json!({"description": format!("edit {w}.{i}")}),
                                )
                                .await
                        }
                        _ => {
                            env.server
                                .put(
                                    &g(&format!("/virtual-keys/{key_id}")),
                                    json!({"description": format!("key edit {w}.{i}")}),
                                )
                                .await
                        }
                    };
                    if r.status >= 500 {
                        failures.lock().unwrap().push(format!("write {w}.{i}: {} {}", r.status, r.text));
                    }
                }
            }));
            }
            for t in writers {
                t.await.unwrap();
            }
            stop.store(true, Ordering::Relaxed);
            for t in load {
                t.await.unwrap();
            }
            let failures = failures.lock().unwrap();
            assert!(
                failures.is_empty(),
                "{} of {} management writes failed while usage was flushed; first: {}",
                failures.len(),
                WRITERS * WRITES_PER_WRITER,
                failures[0]
            );
            assert!(
                served.load(Ordering::Relaxed) >= KEYS,
                "the inference load must have run alongside the writes"
            );
        }
    );
}

mod flush_batches {
    pub use super::governance_support::*;
    pub use heimdall_core::copy::CounterKind;
    pub use heimdall_store::CounterRow;
    pub use heimdall_testkit::{TestDb, store_test};
    pub use serde_json::json;

    // More rows than one upsert statement takes, a counter written twice in
    // one batch (the later row wins) and a counter of a copy that is gone
    // (skipped).
    store_test!(
        a_large_flush_keeps_every_counter_once,
        |db: TestDb| async move {
            let env = start(db).await;
            let m = env.member("Many", openai_profile("Many", json!({}))).await;
            let copy_id = env.copy(&m.user, m.profile).await["id"].as_i64().unwrap();
            let row = |limit: String, used: i64, copy: i64| CounterRow {
                limit_id: limit,
                kind: CounterKind::Requests,
                user_profile_id: copy,
                used,
                window_start: 1_000,
                reset_duration: "1m".into(),
                anchor: 0,
            };
            let mut rows: Vec<CounterRow> = (0..1_100)
                .map(|i| row(format!("bulk-{i}"), i, copy_id))
                .collect();
            rows.push(row("bulk-7".into(), 7_000, copy_id));
            rows.push(row("orphan".into(), 1, copy_id + 1_000_000));
            let store = &env.server.state.store;
            store
                .save_counters(&rows, chrono::Utc::now())
                .await
                .unwrap();
            let saved: Vec<CounterRow> = store
                .load_counters()
                .await
                .unwrap()
                .into_iter()
                .filter(|c| c.limit_id.starts_with("bulk-") || c.limit_id == "orphan")
                .collect();
            assert_eq!(saved.len(), 1_100, "every bulk counter once, no orphan");
            let used = |limit: &str| saved.iter().find(|c| c.limit_id == limit).unwrap().used;
            assert_eq!(used("bulk-7"), 7_000, "the later row of a counter wins");
            assert_eq!(used("bulk-1099"), 1_099);
            // A second flush updates in place.
            store
                .save_counters(&[row("bulk-0".into(), 42, copy_id)], chrono::Utc::now())
                .await
                .unwrap();
            let again = store.load_counters().await.unwrap();
            assert_eq!(
                again.iter().find(|c| c.limit_id == "bulk-0").unwrap().used,
                42
            );
        }
    );
}
