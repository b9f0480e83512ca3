//! Virtual keys over HTTP: the shape of values, masking everywhere after the
//! creating response, minting extra keys, listing, updating and deleting —
//! on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod people;

use common::{PREFIXES, assert_error};
use heimdall_testkit::{Reply, TestDb, TestServer, store_test};
use people::*;
use serde_json::{Value, json};

fn mint_path(user: &str) -> String {
    g(&format!("/users/{user}/virtual-keys"))
}

store_test!(
    a_key_value_never_appears_after_its_creating_response,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let direct = template(&s, policy_body("Direct")).await;
        activate(&s, direct).await;
        let (ann, ks) = user(&s, "Ann", Some(eng)).await;
        let mut values = vec![(ks[0]["id"].clone(), assert_key_value(&ks[0]["value"]))];
        let body = assign(&s, &ann, direct).await;
        values.push((
            body["virtual_key"]["id"].clone(),
            assert_key_value(&body["virtual_key"]["value"]),
        ));
        let r = s.post(&mint_path(&ann), json!({"name": "ci"})).await;
        values.push((
            r.body["virtual_key"]["id"].clone(),
            assert_key_value(&r.body["virtual_key"]["value"]),
        ));
        // A new role's default, provisioned by a role change.
        let (p2, ops) = default_of_new_role(&s, "Ops", "Operators").await;
        let r = s
            .put(&g(&format!("/users/{ann}/role")), json!({ "role_id": ops }))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let moved = &r.body["virtual_keys"][0];
        values.push((moved["id"].clone(), assert_key_value(&moved["value"])));
        // The first key went with the old role's copy.
        values.remove(0);
        assert_eq!(p2, p + 2);

        let mut later: Vec<Reply> = Vec::new();
        for prefix in PREFIXES {
            later.push(s.get(&format!("{prefix}/users/{ann}/virtual-keys")).await);
            later.push(
                s.get(&format!("{prefix}/users/{ann}/access-profiles"))
                    .await,
            );
            later.push(s.get(&format!("{prefix}/users/{ann}")).await);
            later.push(s.get(&format!("{prefix}/users")).await);
        }
        later.push(s.get(&g("/access-profiles/audit-logs?limit=500")).await);
        later.push(
            s.put(
                &g(&format!("/virtual-keys/{}", values[0].0.as_str().unwrap())),
                json!({"description": "d"}),
            )
            .await,
        );
        later.push(quota(&s, &values[0].1).await);
        for r in &later {
            assert_eq!(r.status, 200, "{}", r.text);
        }
        for (_, v) in &values {
            assert_never_shown(&later.iter().collect::<Vec<_>>(), v);
        }

        // Masks are `sk-bf-****` + the last four characters.
        let listed = keys(&s, &ann).await;
        assert_eq!(listed.len(), 3);
        for (id, v) in &values {
            let k = listed.iter().find(|k| &k["id"] == id).unwrap();
            assert_mask_of(&k["value"], v);
        }
        for c in copies(&s, &ann).await {
            let ids = c["virtual_key_ids"].as_array().unwrap();
            assert_eq!(ids.len(), 1);
            let (_, v) = values.iter().find(|(id, _)| id == &ids[0]).unwrap();
            assert_mask_of(&c["virtual_key_values"][ids[0].as_str().unwrap()], v);
            assert_eq!(c["virtual_key_values"].as_object().unwrap().len(), 1);
        }
        s.stop().await;
    }
);

store_test!(values_are_prefixed_random_base62, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let (_p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
    let mut seen = std::collections::HashSet::new();
    for i in 0..10 {
        let (ann, ks) = user(&s, &format!("User {i}"), Some(eng)).await;
        assert!(seen.insert(assert_key_value(&ks[0]["value"])));
        let r = s.post(&mint_path(&ann), json!({})).await;
        assert!(seen.insert(assert_key_value(&r.body["virtual_key"]["value"])));
    }
    assert_eq!(seen.len(), 20);
    s.stop().await;
});

store_test!(
    listing_keys_shows_every_field_masked,
    |db: TestDb| async move {
        let (s, _clock) = clocked(&db, "0s").await;
        let (p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (ann, ks) = user(&s, "Ann", Some(eng)).await;
        let r = s
            .post(
                &mint_path(&ann),
                json!({"name": "ci", "description": "for CI"}),
            )
            .await;
        assert_eq!(
            r.status, 200,
            "minting answers 200 as Bifrost does: {}",
            r.text
        );
        let extra = r.body["virtual_key"].clone();
        assert_eq!(extra["name"], "ci");
        let listed = keys(&s, &ann).await;
        assert_eq!(listed.len(), 2);
        // Both were made at the same instant of the manual clock: find them by id.
        let managed = listed.iter().find(|k| k["id"] == ks[0]["id"]).unwrap();
        assert_eq!(managed["user_id"], ann.as_str());
        assert_eq!(managed["is_access_profile_managed"], true);
        assert_eq!(managed["access_profile_id"], p);
        assert_eq!(managed["is_active"], true);
        assert_eq!(managed["expires_at"], Value::Null);
        assert_eq!(managed["rotated_at"], Value::Null);
        assert_eq!(at(&managed["created_at"]), t0());
        assert!(managed.get("last_used_at").is_some());
        assert!(managed.get("description").is_some());
        let k = listed.iter().find(|k| k["id"] == extra["id"]).unwrap();
        assert_eq!(k["name"], "ci");
        assert_eq!(k["description"], "for CI");
        assert_eq!(k["is_access_profile_managed"], false);
        assert_eq!(k["access_profile_id"], Value::Null);
        assert_mask_of(&k["value"], extra["value"].as_str().unwrap());
        s.stop().await;
    }
);

store_test!(minting_extra_keys, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let (p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
    let (ann, _) = user(&s, "Ann", Some(eng)).await;
    // Without a body, with an empty object, and through the deprecated alias.
    let r = s.raw("POST", &mint_path(&ann), Vec::new()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let first = r.body["virtual_key"]["name"].as_str().unwrap().to_string();
    assert!(!first.is_empty());
    let r = s.post(&mint_path(&ann), json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_ne!(r.body["virtual_key"]["name"], first.as_str());
    for prefix in PREFIXES {
        let r = s
            .post(
                &format!("{prefix}/users/{ann}/access-profiles/{p}/virtual-keys"),
                json!({"name": format!("alias{}", prefix.len())}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let v = assert_key_value(&r.body["virtual_key"]["value"]);
        assert_eq!(quota(&s, &v).await.status, 200);
    }
    // The alias ignores its profile id.
    let r = s
        .post(
            &g(&format!("/users/{ann}/access-profiles/999/virtual-keys")),
            json!({"name": "ignored-profile"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(keys(&s, &ann).await.len(), 6);

    // Names are unique among the user's keys; other users may reuse them.
    let r = s
        .post(&mint_path(&ann), json!({"name": "ignored-profile"}))
        .await;
    assert_error(&r, 409, "conflict");
    let (bob, _) = user(&s, "Bob", Some(eng)).await;
    let r = s
        .post(&mint_path(&bob), json!({"name": "ignored-profile"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);

    for body in [
        json!({"name": ""}),
        json!({"name": 3}),
        json!({"scope": "all"}),
    ] {
        assert_error(
            &s.post(&mint_path(&ann), body).await,
            400,
            "invalid_request",
        );
    }
    assert_error(
        &s.raw("POST", &mint_path(&ann), b"{".to_vec()).await,
        400,
        "invalid_request",
    );
    s.stop().await;
});

store_test!(minting_needs_a_user_with_a_copy, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let (ann, _) = user(&s, "Ann", None).await;
    let r = s.post(&mint_path(&ann), json!({"name": "x"})).await;
    assert_error(&r, 404, "not_found");
    let ghost = uuid::Uuid::new_v4().to_string();
    let r = s.post(&mint_path(&ghost), json!({"name": "x"})).await;
    assert_error(&r, 404, "not_found");
    assert!(keys(&s, &ann).await.is_empty());
    s.stop().await;
});

store_test!(deleting_a_key, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let (p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
    let (ann, ks) = user(&s, "Ann", Some(eng)).await;
    let (bob, bob_keys) = user(&s, "Bob", Some(eng)).await;
    let r = s.post(&mint_path(&ann), json!({"name": "ci"})).await;
    let extra_id = r.body["virtual_key"]["id"].as_str().unwrap().to_string();
    let extra = assert_key_value(&r.body["virtual_key"]["value"]);

    // Another user's key through Ann's path is 404, and stays.
    let bob_key = bob_keys[0]["id"].as_str().unwrap();
    let r = s
        .delete(&g(&format!("/users/{ann}/virtual-keys/{bob_key}")))
        .await;
    assert_error(&r, 404, "not_found");
    assert_eq!(keys(&s, &bob).await.len(), 1);

    for (i, prefix) in PREFIXES.iter().enumerate() {
        let r = s
            .delete(&format!("{prefix}/users/{ann}/virtual-keys/{extra_id}"))
            .await;
        if i == 0 {
            assert_eq!(r.status, 200, "{}", r.text);
            assert!(r.body["message"].as_str().unwrap().contains("ci"));
        } else {
            assert_error(&r, 404, "not_found");
        }
    }
    assert_error(&quota(&s, &extra).await, 401, "virtual_key_not_found");

    // A managed key can be deleted too; the copy stays, without a key.
    let managed = ks[0]["id"].as_str().unwrap();
    let r = s
        .delete(&g(&format!("/users/{ann}/virtual-keys/{managed}")))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let c = copy_of(&s, &ann, p).await;
    assert_eq!(c["virtual_key_ids"], json!([]));
    assert_eq!(c["virtual_key_values"], json!({}));
    let ghost = uuid::Uuid::new_v4().to_string();
    let r = s
        .delete(&g(&format!("/users/{ghost}/virtual-keys/{managed}")))
        .await;
    assert_error(&r, 404, "not_found");
    s.stop().await;
});

store_test!(updating_a_key, |db: TestDb| async move {
    let (s, _clock) = clocked(&db, "0s").await;
    let (_p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
    let (ann, ks) = user(&s, "Ann", Some(eng)).await;
    let id = ks[0]["id"].as_str().unwrap().to_string();
    let value = assert_key_value(&ks[0]["value"]);
    s.post(&mint_path(&ann), json!({"name": "ci"})).await;
    for prefix in PREFIXES {
        let r = s
            .put(
                &format!("{prefix}/virtual-keys/{id}"),
                json!({"name": "main", "description": "Ann's main key", "expires_at": "2027-01-01T00:00:00Z"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let k = &r.body["virtual_key"];
        assert_eq!(k["name"], "main");
        assert_eq!(k["description"], "Ann's main key");
        assert_eq!(k["expires_at"], "2027-01-01T00:00:00Z");
        assert_eq!(k["is_active"], true);
        assert_mask_of(&k["value"], &value);
    }
    let r = s
        .put(
            &g(&format!("/virtual-keys/{id}")),
            json!({"description": null, "expires_at": null}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["virtual_key"]["description"], Value::Null);
    assert_eq!(r.body["virtual_key"]["expires_at"], Value::Null);
    assert_eq!(r.body["virtual_key"]["name"], "main");
    assert_eq!(quota(&s, &value).await.body["virtual_key_name"], "main");

    let r = s
        .put(&g(&format!("/virtual-keys/{id}")), json!({"name": "ci"}))
        .await;
    assert_error(&r, 409, "conflict");
    for body in [
        json!({"name": ""}),
        json!({"is_active": "no"}),
        json!({"value": "sk-bf-x"}),
    ] {
        let r = s.put(&g(&format!("/virtual-keys/{id}")), body).await;
        assert_error(&r, 400, "invalid_request");
    }
    let r = s
        .put(
            &g(&format!("/virtual-keys/{}", uuid::Uuid::new_v4())),
            json!({"name": "x"}),
        )
        .await;
    assert_error(&r, 404, "not_found");
    s.stop().await;
});
