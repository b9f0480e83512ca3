//! Virtual keys on the inference path (against the mock provider): what the
//! management API does to a key — rotation by hand and on schedule, the
//! one-time handover on the quota route, deactivation, deletion, a role
//! change — holds for `/v1/chat/completions` at once, not only for the
//! quota route — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod governance_support;

use chrono::Duration;
use governance_support::{Env, assert_denial, g, mock_options, openai_profile, start_with};
use heimdall_server::maintenance::rotate_due;
use heimdall_testkit::{TestDb, store_test};
use serde_json::{Value, json};

const MODEL: &str = "openai/gpt-4o-mini";

async fn env_with_grace(db: TestDb, grace: &str) -> Env {
    let grace = grace.to_string();
    start_with(db, mock_options(), move |c| {
        c.governance.vk_rotation_grace = grace;
    })
    .await
}

async fn chat_status(env: &Env, key: &str) -> u16 {
    env.chat(key, MODEL).await.status
}

async fn rotate(env: &Env, key_id: &str) -> String {
    let r = env
        .server
        .post(&g(&format!("/virtual-keys/{key_id}/rotate")), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["virtual_key"]["value"].as_str().unwrap().to_string()
}

store_test!(
    a_manual_rotation_holds_on_the_inference_path,
    |db: TestDb| async move {
        let env = env_with_grace(db, "1h").await;
        let m = env.member("Ann", openai_profile("Eng", json!({}))).await;
        assert_eq!(chat_status(&env, &m.key).await, 200);
        let new = rotate(&env, &m.key_id).await;
        assert_eq!(
            chat_status(&env, &new).await,
            200,
            "the new value works at once"
        );
        assert_eq!(
            chat_status(&env, &m.key).await,
            200,
            "the old one during the grace"
        );
        env.advance(Duration::hours(1));
        let r = env.chat(&m.key, MODEL).await;
        assert_denial(&r, 401, "virtual_key_not_found");
        assert_eq!(chat_status(&env, &new).await, 200);
        env.server.stop().await;
    }
);

store_test!(
    after_the_handover_the_old_value_is_dead_for_inference_too,
    |db: TestDb| async move {
        let env = env_with_grace(db, "1h").await;
        let m = env.member("Ann", openai_profile("Eng", json!({}))).await;
        let new = rotate(&env, &m.key_id).await;
        let q = env.quota(&m.key).await;
        assert_eq!(q.status, 200, "{}", q.text);
        assert_eq!(q.body["rotated_value"], new.as_str());
        let r = env.chat(&m.key, MODEL).await;
        assert_denial(&r, 401, "virtual_key_not_found");
        assert_eq!(chat_status(&env, &new).await, 200);
        env.server.stop().await;
    }
);

store_test!(
    an_automatic_rotation_holds_on_the_inference_path,
    |db: TestDb| async move {
        let env = env_with_grace(db, "0s").await;
        let m = env
            .member(
                "Ann",
                openai_profile("Eng", json!({"auto_rotation_interval": "1h"})),
            )
            .await;
        env.advance(Duration::hours(1));
        assert_eq!(rotate_due(&env.server.state).await.unwrap(), 1);
        // The old value works during the day of grace and hands over.
        assert_eq!(chat_status(&env, &m.key).await, 200);
        let q = env.quota(&m.key).await;
        let new = q.body["rotated_value"].as_str().unwrap().to_string();
        assert_eq!(chat_status(&env, &new).await, 200, "the new value works");
        assert_denial(&env.chat(&m.key, MODEL).await, 401, "virtual_key_not_found");

        // A second rotation, nobody reads the handover: the old value dies
        // when the day is over.
        env.advance(Duration::hours(1));
        assert_eq!(rotate_due(&env.server.state).await.unwrap(), 1);
        assert_eq!(chat_status(&env, &new).await, 200);
        env.advance(Duration::hours(24));
        assert_denial(&env.chat(&new, MODEL).await, 401, "virtual_key_not_found");
        env.server.stop().await;
    }
);

store_test!(
    key_and_copy_changes_hold_on_the_inference_path,
    |db: TestDb| async move {
        let env = env_with_grace(db, "0s").await;
        let m = env.member("Ann", openai_profile("Eng", json!({}))).await;
        let put = |body: Value| {
            let path = g(&format!("/virtual-keys/{}", m.key_id));
            let s = &env.server;
            async move { s.put(&path, body).await }
        };
        assert_eq!(put(json!({"is_active": false})).await.status, 200);
        let r = env.chat(&m.key, MODEL).await;
        let msg = assert_denial(&r, 403, "virtual_key_blocked");
        assert!(msg.contains("inactive"), "{msg}");
        assert_eq!(
            put(json!({"is_active": true, "expires_at": "2026-03-02T10:00:00Z"}))
                .await
                .status,
            200
        );
        assert_eq!(chat_status(&env, &m.key).await, 200);
        env.advance(Duration::hours(1));
        let msg = assert_denial(&env.chat(&m.key, MODEL).await, 403, "virtual_key_blocked");
        assert!(msg.contains("expired"), "{msg}");
        assert_eq!(put(json!({"expires_at": null})).await.status, 200);

        // The copy switched off: the key is valid but grants nothing.
        let copy = g(&format!("/users/{}/access-profiles/{}", m.user, m.profile));
        assert_eq!(
            env.server
                .put(&copy, json!({"is_active": false}))
                .await
                .status,
            200
        );
        assert_denial(&env.chat(&m.key, MODEL).await, 403, "virtual_key_blocked");
        assert_eq!(
            env.server
                .put(&copy, json!({"is_active": true}))
                .await
                .status,
            200
        );
        assert_eq!(chat_status(&env, &m.key).await, 200);

        // Detached: the key is gone.
        assert_eq!(env.server.delete(&copy).await.status, 200);
        assert_denial(&env.chat(&m.key, MODEL).await, 401, "virtual_key_not_found");
        env.server.stop().await;
    }
);

store_test!(
    a_role_change_holds_on_the_inference_path,
    |db: TestDb| async move {
        let env = env_with_grace(db, "0s").await;
        let p = env.template(openai_profile("Eng", json!({}))).await;
        let r = env
            .server
            .post(&g("/rbac/roles"), json!({"name": "Engineers"}))
            .await;
        let eng = r.body["role"]["id"].as_i64().unwrap();
        let r = env
            .server
            .post(
                &g(&format!("/access-profiles/{p}/roles")),
                json!({"role_ids": [eng], "is_default": true}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = env
            .server
            .post(
                &g("/users"),
                json!({"name": "Ann", "email": "ann@example.com", "role_id": eng}),
            )
            .await;
        let ann = r.body["user"]["id"].as_str().unwrap().to_string();
        let key = r.body["virtual_keys"][0]["value"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            chat_status(&env, &key).await,
            200,
            "a new user's key works at once"
        );
        let r = env
            .server
            .put(&g(&format!("/users/{ann}/role")), json!({"role_id": 2}))
            .await;
        assert_eq!(r.status, 200);
        assert_denial(&env.chat(&key, MODEL).await, 401, "virtual_key_not_found");
        env.server.stop().await;
    }
);

store_test!(
    minting_deleting_keys_and_users_hold_on_the_inference_path,
    |db: TestDb| async move {
        let env = env_with_grace(db, "0s").await;
        let m = env.member("Ann", openai_profile("Eng", json!({}))).await;
        let r = env
            .server
            .post(
                &g(&format!("/users/{}/virtual-keys", m.user)),
                json!({"name": "ci"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let extra = r.body["virtual_key"]["value"].as_str().unwrap().to_string();
        let extra_id = r.body["virtual_key"]["id"].as_str().unwrap().to_string();
        assert_eq!(
            chat_status(&env, &extra).await,
            200,
            "a minted key works at once"
        );
        let r = env
            .server
            .delete(&g(&format!("/users/{}/virtual-keys/{extra_id}", m.user)))
            .await;
        assert_eq!(r.status, 200);
        assert_denial(&env.chat(&extra, MODEL).await, 401, "virtual_key_not_found");
        assert_eq!(chat_status(&env, &m.key).await, 200);
        let r = env.server.delete(&g(&format!("/users/{}", m.user))).await;
        assert_eq!(r.status, 200);
        assert_denial(&env.chat(&m.key, MODEL).await, 401, "virtual_key_not_found");
        env.server.stop().await;
    }
);

store_test!(
    propagated_rules_and_applied_copies_hold_on_the_inference_path,
    |db: TestDb| async move {
        let env = env_with_grace(db, "0s").await;
        let p = env.template(openai_profile("Eng", json!({}))).await;
        let r = env
            .server
            .post(&g("/rbac/roles"), json!({"name": "Engineers"}))
            .await;
        let eng = r.body["role"]["id"].as_i64().unwrap();
        let r = env
            .server
            .post(
                &g("/users"),
                json!({"name": "Ann", "email": "ann@example.com", "role_id": eng}),
            )
            .await;
        let ann = r.body["user"]["id"].as_str().unwrap().to_string();
        // apply_to_existing provisions Ann's copy; its key is delivered by rotation.
        let r = env
            .server
            .post(
                &g(&format!("/access-profiles/{p}/roles")),
                json!({"role_ids": [eng], "apply_to_existing": true}),
            )
            .await;
        assert_eq!(r.body["users_applied"], 1, "{}", r.text);
        let r = env
            .server
            .get(&g(&format!("/users/{ann}/virtual-keys")))
            .await;
        let key_id = r.body["virtual_keys"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let key = rotate(&env, &key_id).await;
        assert_eq!(chat_status(&env, &key).await, 200);

        // The template stops allowing OpenAI: copies follow once propagated.
        let r = env
            .server
            .put(
                &g(&format!("/access-profiles/{p}")),
                json!({"provider_configs": [{"provider_name": "anthropic", "all_models_allowed": true}]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(chat_status(&env, &key).await, 200, "not before propagation");
        let r = env
            .server
            .post(
                &g(&format!("/access-profiles/{p}/propagate")),
                json!({"fields": ["provider_configs"]}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_denial(&env.chat(&key, MODEL).await, 403, "provider_blocked");
        env.server.stop().await;
    }
);
