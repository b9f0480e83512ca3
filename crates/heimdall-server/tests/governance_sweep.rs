//! The background sweep of governance.md §5: counters of idle copies whose
//! window ended are reset and the reset is written to the store, so that the
//! stored usage is right without a request touching the counter.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod governance_support;

mod governance {
    pub use super::governance_support::*;
    pub use heimdall_testkit::{TestDb, store_test};
    pub use serde_json::json;
    use sqlx::Connection;

    async fn stored_used(url: &str, kind: &str) -> i64 {
        let opts = url.to_string();
        if opts.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(&opts).await.unwrap();
            sqlx::query_scalar::<_, i64>("SELECT used FROM usage_counters WHERE kind = $1")
                .bind(kind)
                .fetch_one(&mut c)
                .await
                .unwrap()
        } else {
            let mut c = sqlx::PgConnection::connect(&opts).await.unwrap();
            sqlx::query_scalar::<_, i64>("SELECT used FROM usage_counters WHERE kind = $1")
                .bind(kind)
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
    }

    store_test!(
        sweep_resets_ended_windows_of_idle_copies_in_the_store,
        |db: TestDb| async move {
            let env = start_with(db, mock_options(), |c| {
                c.governance.flush_interval = "1h".into();
            })
            .await;
            let m = env
                .member(
                    "Ann",
                    json!({"name": "Eng",
                        "provider_configs": [{"provider_name": "openai", "all_models_allowed": true}],
                        "rate_limit": {"request_max_limit": 100, "request_reset_duration": "1h"}}),
                )
                .await;
            assert_eq!(env.chat(&m.key, "openai/gpt-4o-mini").await.status, 200);
            let state = &env.server.state;
            heimdall_server::governance::flush_now(state, false)
                .await
                .unwrap();
            assert_eq!(stored_used(&env.server.store_url, "requests").await, 1);

            // Nothing happens within the window ...
            assert_eq!(heimdall_server::maintenance::sweep_windows(state), 0);
            // ... and once it has ended, the idle counter is reset and flushed.
            env.advance(chrono::Duration::minutes(61));
            assert_eq!(heimdall_server::maintenance::sweep_windows(state), 1);
            heimdall_server::governance::flush_now(state, false)
                .await
                .unwrap();
            assert_eq!(stored_used(&env.server.store_url, "requests").await, 0);
            assert_eq!(env.requests_used(&m).await, 0);
            env.server.stop().await;
        }
    );
}
