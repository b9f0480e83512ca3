//! Attaching roles to templates: `is_default`, `apply_to_existing` with an
//! exact `users_applied`, activation by attaching, detaching, and the audit
//! entries — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod people;

use common::{PREFIXES, assert_error};
use heimdall_testkit::{TestDb, TestServer, store_test};
use people::*;
use serde_json::{Value, json};

store_test!(
    a_new_user_of_a_role_with_a_default_holds_a_copy_and_a_working_key,
    |db: TestDb| async move {
        let (s, _clock) = clocked(&db, "0s").await;
        let (p, eng) = default_of_new_role(&s, "Engineering", "Engineers").await;
        let r = create_user(&s, "Ann", "ann@example.com", Some(eng)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let user = &r.body["user"];
        let uid = user["id"].as_str().unwrap().to_string();
        assert!(uuid::Uuid::parse_str(&uid).is_ok());
        assert_eq!(user["role_id"], eng);
        assert_eq!(user["role"]["name"], "Engineers");

        let vks = r.body["virtual_keys"].as_array().unwrap();
        assert_eq!(vks.len(), 1, "{}", r.text);
        let value = assert_key_value(&vks[0]["value"]);
        assert_eq!(vks[0]["access_profile_id"], p);
        assert!(vks[0]["id"].as_str().is_some());
        assert!(!vks[0]["name"].as_str().unwrap().is_empty());

        let cs = copies(&s, &uid).await;
        assert_eq!(cs.len(), 1);
        let c = &cs[0];
        assert_eq!(c["parent_profile_id"], p);
        assert_eq!(c["user_id"], uid.as_str());
        assert_eq!(c["name"], "Engineering");
        assert_eq!(c["source"], "role_default");
        assert_eq!(c["role_id"], eng);
        assert_eq!(at(&c["assigned_at"]), t0());
        assert_eq!(c["is_active"], true);
        assert_eq!(c["expires_at"], Value::Null);
        assert_eq!(c["virtual_key_ids"], json!([vks[0]["id"]]));
        assert_mask_of(
            &c["virtual_key_values"][vks[0]["id"].as_str().unwrap()],
            &value,
        );

        // The copy has the template's policy under its own ids, at zero.
        let t = get_template(&s, p).await.body["access_profile"].clone();
        assert_ne!(c["id"], Value::Null);
        assert_eq!(c["budgets"][0]["max_limit"], 10.0);
        assert_eq!(c["budgets"][0]["scope"], "total");
        assert_eq!(c["budgets"][0]["current_usage"], 0.0);
        assert_eq!(c["budgets"][0]["override"], Value::Null);
        assert_eq!(at(&c["budgets"][0]["last_reset"]), t0());
        assert_ne!(c["budgets"][0]["id"], t["budgets"][0]["id"]);
        assert_ne!(
            c["provider_configs"][0]["budgets"][0]["id"],
            t["provider_configs"][0]["budgets"][0]["id"]
        );
        assert_eq!(
            c["provider_configs"][0]["budgets"][0]["scope"],
            "provider:openai"
        );
        assert_ne!(
            c["provider_configs"][0]["id"],
            t["provider_configs"][0]["id"]
        );
        assert_ne!(c["rate_limit"]["id"], t["rate_limit"]["id"]);
        assert_eq!(c["rate_limit"]["request_current_usage"], 0);
        assert_eq!(c["rate_limit"]["token_max_limit"], 1000);

        // The key works on the quota route, in both headers.
        for reply in [quota(&s, &value).await, quota_vk(&s, &value).await] {
            assert_eq!(reply.status, 200, "{}", reply.text);
            assert_eq!(reply.body["user_id"], uid.as_str());
            assert_eq!(reply.body["is_active"], true);
            assert_eq!(reply.body["virtual_key_name"], vks[0]["name"]);
            assert_eq!(reply.body["access_profiles"][0]["parent_profile_id"], p);
            assert!(reply.body.get("rotated_value").is_none());
        }

        let detail = get_template(&s, p).await;
        assert_eq!(detail.body["user_count"], 1);
        let assigned = audit_entries(&s, p, "assign_user").await;
        assert_eq!(assigned.len(), 1);
        assert_eq!(assigned[0]["user_id"], uid.as_str());
        s.stop().await;
    }
);

store_test!(
    attach_answers_under_both_prefixes,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let p = template(&s, policy_body("Eng")).await;
        for prefix in PREFIXES {
            let r = s
                .post(
                    &format!("{prefix}/access-profiles/{p}/roles"),
                    json!({"role_ids": [2]}),
                )
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert_eq!(r.body["users_applied"], 0);
            assert!(r.body["message"].as_str().unwrap().len() > 5);
        }
        let roles = get_template(&s, p).await.body["roles"].clone();
        assert_eq!(
            roles.as_array().unwrap().len(),
            1,
            "attaching twice is one attachment"
        );
        let a = &roles[0];
        assert_eq!(a["access_profile_id"], p);
        assert_eq!(a["role_id"], 2);
        assert_eq!(a["role_name"], "Developer");
        assert_eq!(a["is_default"], false);
        assert!(a["id"].as_i64().is_some());
        s.stop().await;
    }
);

store_test!(
    attach_validates_its_body_and_the_ids,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let p = template(&s, policy_body("Eng")).await;
        let path = g(&format!("/access-profiles/{p}/roles"));
        for body in [
            json!({}),
            json!({"role_ids": []}),
            json!({"role_ids": [99]}),
            json!({"role_ids": [2, 99]}),
            json!({"role_ids": "2"}),
            json!({"role_ids": [2], "is_default": "yes"}),
            json!({"role_ids": [2], "extra": 1}),
        ] {
            let r = s.post(&path, body.clone()).await;
            assert_error(&r, 400, "invalid_request");
        }
        // Nothing was attached and the template stays inactive.
        let d = get_template(&s, p).await;
        assert_eq!(d.body["roles"], json!([]));
        assert_eq!(d.body["access_profile"]["is_active"], false);
        assert_eq!(actions(&s, p).await, vec!["create"]);

        let r = attach(&s, 999, &[2], false, false).await;
        assert_error(&r, 404, "not_found");
        let r = s
            .post(&g("/access-profiles/x/roles"), json!({"role_ids": [2]}))
            .await;
        assert_error(&r, 400, "invalid_request");
        s.stop().await;
    }
);

store_test!(
    attaching_activates_an_inactive_template_with_one_audit_entry,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let p = template(&s, policy_body("Eng")).await;
        assert_eq!(
            get_template(&s, p).await.body["access_profile"]["is_active"],
            false
        );
        let version = get_template(&s, p).await.body["access_profile"]["version"].clone();
        attach_ok(&s, p, &[2], false, false).await;
        let t = get_template(&s, p).await.body["access_profile"].clone();
        assert_eq!(t["is_active"], true);
        assert_eq!(t["version"], version, "activation is not a new version");
        assert_eq!(actions(&s, p).await, vec!["create", "attach_role"]);
        let e = &audit_entries(&s, p, "attach_role").await[0];
        let new = json_field(&e["new_values"]);
        assert_eq!(new["role_ids"], json!([2]));
        assert_eq!(e["actor"].as_str().map(str::is_empty), Some(false));

        // Attaching to an active template does not log an activation either.
        attach_ok(&s, p, &[3], false, false).await;
        assert_eq!(
            actions(&s, p).await,
            vec!["create", "attach_role", "attach_role"]
        );
        s.stop().await;
    }
);

store_test!(
    a_new_default_replaces_the_old_one_which_stays_attached,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let first = template(&s, policy_body("First")).await;
        let second = template(&s, policy_body("Second")).await;
        let eng = role(&s, "Engineers").await;
        attach_ok(&s, first, &[eng], true, false).await;
        let (ann, ann_keys) = user(&s, "Ann", Some(eng)).await;
        assert_eq!(ann_keys[0]["access_profile_id"], first);

        attach_ok(&s, second, &[eng], true, false).await;
        let old = get_template(&s, first).await.body["roles"].clone();
        assert_eq!(old.as_array().unwrap().len(), 1, "the old attachment stays");
        assert_eq!(old[0]["role_id"], eng);
        assert_eq!(old[0]["is_default"], false);
        let new = get_template(&s, second).await.body["roles"].clone();
        assert_eq!(new[0]["is_default"], true);

        // Users who get the role now get the new default only.
        let (bob, bob_keys) = user(&s, "Bob", Some(eng)).await;
        assert_eq!(bob_keys.len(), 1);
        assert_eq!(bob_keys[0]["access_profile_id"], second);
        let bc = copies(&s, &bob).await;
        assert_eq!(bc.len(), 1);
        assert_eq!(bc[0]["parent_profile_id"], second);
        // Ann keeps what she had: a new default provisions nobody by itself.
        let ac = copies(&s, &ann).await;
        assert_eq!(ac.len(), 1);
        assert_eq!(ac[0]["parent_profile_id"], first);

        // Re-attaching with is_default false clears the flag.
        attach_ok(&s, second, &[eng], false, false).await;
        assert_eq!(
            get_template(&s, second).await.body["roles"][0]["is_default"],
            false
        );
        let (_, carl_keys) = user(&s, "Carl", Some(eng)).await;
        assert!(carl_keys.is_empty(), "no default left: {carl_keys:?}");
        s.stop().await;
    }
);

store_test!(
    apply_to_existing_provisions_exactly_the_users_without_a_copy,
    |db: TestDb| async move {
        let (s, _clock) = clocked(&db, "0s").await;
        let p = template(&s, policy_body("Eng")).await;
        let eng = role(&s, "Engineers").await;
        let ops = role(&s, "Ops").await;
        let (ann, _) = user(&s, "Ann", Some(eng)).await;
        let (bob, _) = user(&s, "Bob", Some(eng)).await;
        let (carl, _) = user(&s, "Carl", Some(ops)).await;
        let (dora, _) = user(&s, "Dora", Some(2)).await; // another role
        let (_eve, _) = user(&s, "Eve", None).await; // no role
        // Bob already holds a copy (directly).
        activate(&s, p).await;
        assign(&s, &bob, p).await;

        let n = attach_ok(&s, p, &[eng, ops], false, true).await;
        assert_eq!(n, 2, "Ann and Carl; Bob already has a copy");
        let a = copy_of(&s, &ann, p).await;
        assert_eq!(a["source"], "role_apply");
        assert_eq!(a["role_id"], eng);
        let c = copy_of(&s, &carl, p).await;
        assert_eq!(c["source"], "role_apply");
        assert_eq!(c["role_id"], ops);
        let b = copy_of(&s, &bob, p).await;
        assert_eq!(b["source"], "direct");
        assert_eq!(b["role_id"], Value::Null);
        assert!(copies(&s, &dora).await.is_empty());
        assert_eq!(get_template(&s, p).await.body["user_count"], 3);
        // Each provisioned copy has its managed key.
        assert_eq!(keys(&s, &ann).await.len(), 1);
        assert_eq!(keys(&s, &carl).await.len(), 1);

        // Again: nobody lacks a copy any more.
        assert_eq!(attach_ok(&s, p, &[eng, ops], false, true).await, 0);
        assert_eq!(keys(&s, &ann).await.len(), 1);
        let assigned = audit_entries(&s, p, "assign_user").await;
        assert_eq!(
            assigned.len(),
            3,
            "Bob's direct copy and the two applied ones"
        );

        // A new user of the role, then apply again: exactly one more.
        let (_fay, _) = user(&s, "Fay", Some(eng)).await;
        assert_eq!(attach_ok(&s, p, &[eng], false, true).await, 1);
        assert_eq!(attach_ok(&s, p, &[eng], false, true).await, 0);
        s.stop().await;
    }
);

store_test!(
    apply_to_existing_with_is_default_provisions_role_apply_copies,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let p = template(&s, policy_body("Eng")).await;
        let eng = role(&s, "Engineers").await;
        let (ann, _) = user(&s, "Ann", Some(eng)).await;
        assert_eq!(attach_ok(&s, p, &[eng], true, true).await, 1);
        assert_eq!(copy_of(&s, &ann, p).await["source"], "role_apply");
        let (bob, _) = user(&s, "Bob", Some(eng)).await;
        assert_eq!(copy_of(&s, &bob, p).await["source"], "role_default");
        s.stop().await;
    }
);

store_test!(
    an_inactive_default_is_skipped_silently_for_new_users,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let r = s
            .put(&g(&format!("/access-profiles/{p}/deactivate")), json!({}))
            .await;
        assert_eq!(r.status, 200);
        let r = create_user(&s, "Ann", "ann@example.com", Some(eng)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["virtual_keys"], json!([]));
        let ann = r.body["user"]["id"].as_str().unwrap().to_string();
        assert!(copies(&s, &ann).await.is_empty());

        // Moving a user into the role skips it too.
        let (bob, _) = user(&s, "Bob", None).await;
        let r = s
            .put(&g(&format!("/users/{bob}/role")), json!({"role_id": eng}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["virtual_keys"], json!([]));
        assert!(copies(&s, &bob).await.is_empty());
        assert!(audit_entries(&s, p, "assign_user").await.is_empty());
        s.stop().await;
    }
);

store_test!(
    detach_keeps_the_copies_already_provisioned,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (ann, keys_) = user(&s, "Ann", Some(eng)).await;
        let value = assert_key_value(&keys_[0]["value"]);

        for prefix in PREFIXES {
            attach_ok(&s, p, &[2], false, false).await;
            let r = s
                .delete(&format!("{prefix}/access-profiles/{p}/roles/2"))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            assert!(r.body["message"].as_str().unwrap().len() > 5);
        }
        let r = s
            .delete(&g(&format!("/access-profiles/{p}/roles/{eng}")))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(get_template(&s, p).await.body["roles"], json!([]));
        assert_eq!(copies(&s, &ann).await.len(), 1);
        assert_eq!(quota(&s, &value).await.status, 200);

        // No longer attached: a new user gets nothing, and detaching again is 404.
        let (_, bob_keys) = user(&s, "Bob", Some(eng)).await;
        assert!(bob_keys.is_empty());
        let r = s
            .delete(&g(&format!("/access-profiles/{p}/roles/{eng}")))
            .await;
        assert_error(&r, 404, "not_found");
        let r = s.delete(&g(&format!("/access-profiles/{p}/roles/3"))).await;
        assert_error(&r, 404, "not_found");
        let r = s.delete(&g("/access-profiles/999/roles/2")).await;
        assert_error(&r, 404, "not_found");
        let r = s
            .delete(&g(&format!("/access-profiles/{p}/roles/abc")))
            .await;
        assert_error(&r, 400, "invalid_request");

        let detached = audit_entries(&s, p, "detach_role").await;
        assert_eq!(detached.len(), 3);
        assert_eq!(json_field(&detached[0]["previous_values"])["role_id"], eng);
        s.stop().await;
    }
);

store_test!(
    keys_provisioned_by_apply_to_existing_are_delivered_by_rotating_them,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let p = template(&s, policy_body("Eng")).await;
        let eng = role(&s, "Engineers").await;
        let (ann, _) = user(&s, "Ann", Some(eng)).await;
        let r = attach(&s, p, &[eng], false, true).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(
            !r.text.contains("sk-bf-"),
            "no key value in the attach response: {}",
            r.text
        );
        let ks = keys(&s, &ann).await;
        assert_eq!(ks.len(), 1);
        assert_eq!(ks[0]["is_access_profile_managed"], true);
        assert_eq!(ks[0]["access_profile_id"], p);
        let id = ks[0]["id"].as_str().unwrap();
        let r = s
            .post(&g(&format!("/virtual-keys/{id}/rotate")), json!({}))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let value = assert_key_value(&r.body["virtual_key"]["value"]);
        let q = quota(&s, &value).await;
        assert_eq!(q.status, 200, "{}", q.text);
        assert_eq!(q.body["access_profiles"][0]["parent_profile_id"], p);
        s.stop().await;
    }
);

store_test!(
    an_attach_that_changes_nothing_is_not_audited,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let p = template(&s, policy_body("Eng")).await;
        let eng = role(&s, "Engineers").await;
        attach_ok(&s, p, &[eng], true, false).await;
        assert_eq!(actions(&s, p).await, vec!["create", "attach_role"]);
        // The same attachment again, and an apply that finds nobody to provision.
        assert_eq!(attach_ok(&s, p, &[eng], true, false).await, 0);
        assert_eq!(attach_ok(&s, p, &[eng], true, true).await, 0);
        assert_eq!(actions(&s, p).await, vec!["create", "attach_role"]);
        // Changing is_default is a change.
        attach_ok(&s, p, &[eng], false, false).await;
        assert_eq!(
            actions(&s, p).await,
            vec!["create", "attach_role", "attach_role"]
        );
        // So is provisioning someone.
        let (_ann, _) = user(&s, "Ann", Some(eng)).await;
        assert_eq!(attach_ok(&s, p, &[eng], false, true).await, 1);
        assert_eq!(
            actions(&s, p).await,
            vec![
                "create",
                "attach_role",
                "attach_role",
                "attach_role",
                "assign_user"
            ]
        );
        s.stop().await;
    }
);
