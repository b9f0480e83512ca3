//! Key rotation, by hand and on a template's schedule: the old value works
//! for the grace, its holder reads the new value once from the quota route,
//! and afterwards (or after the grace) only the new value works. Time moves
//! by an injected clock — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
mod people;

use chrono::Duration;
use common::{PREFIXES, assert_error};
use heimdall_server::maintenance::rotate_due;
use heimdall_testkit::{TestDb, TestServer, store_test};
use people::*;
use serde_json::{Value, json};

async fn rotate(s: &TestServer, key_id: &str) -> String {
    let r = s
        .post(&g(&format!("/virtual-keys/{key_id}/rotate")), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["virtual_key"]["id"], key_id);
    assert!(r.body["message"].as_str().unwrap().len() > 5);
    assert_key_value(&r.body["virtual_key"]["value"])
}

/// A user with a managed key of a role default; returns (user, key id, value).
async fn holder(s: &TestServer, role: i64, name: &str) -> (String, String, String) {
    let (u, ks) = user(s, name, Some(role)).await;
    (
        u,
        ks[0]["id"].as_str().unwrap().to_string(),
        assert_key_value(&ks[0]["value"]),
    )
}

store_test!(
    the_old_value_works_during_the_grace_and_hands_over_once,
    |db: TestDb| async move {
        let (s, clock) = clocked(&db, "1h").await;
        let (_p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (ann, id, old) = holder(&s, eng, "Ann").await;
        clock.advance(Duration::minutes(10));
        let new = rotate(&s, &id).await;
        assert_ne!(new, old);

        // The listing shows the new value's mask and the rotation time.
        let k = &keys(&s, &ann).await[0];
        assert_mask_of(&k["value"], &new);
        assert_eq!(at(&k["rotated_at"]), t0() + Duration::minutes(10));

        // The new value works and carries no handover.
        let r = quota(&s, &new).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.body.get("rotated_value").is_none());

        // Within the grace, the old value works once and hands the new one over.
        clock.advance(Duration::minutes(59));
        let r = quota(&s, &old).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["rotated_value"], new.as_str());
        assert_eq!(r.body["user_id"], ann.as_str());
        // After that read only the new value works.
        assert_error(&quota(&s, &old).await, 401, "virtual_key_not_found");
        assert_error(&quota_vk(&s, &old).await, 401, "virtual_key_not_found");
        let r = quota(&s, &new).await;
        assert_eq!(r.status, 200);
        assert!(r.body.get("rotated_value").is_none());
        // The handed-over value is not in any later management response.
        let later = [
            s.get(&g(&format!("/users/{ann}/virtual-keys"))).await,
            s.get(&g(&format!("/users/{ann}/access-profiles"))).await,
        ];
        assert_never_shown(&later.iter().collect::<Vec<_>>(), &new);
        s.stop().await;
    }
);

store_test!(
    the_old_value_stops_working_when_the_grace_ends,
    |db: TestDb| async move {
        let (s, clock) = clocked(&db, "1h").await;
        let (_p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (_ann, id, old) = holder(&s, eng, "Ann").await;
        let new = rotate(&s, &id).await;
        clock.advance(Duration::hours(1));
        let r = quota(&s, &old).await;
        assert_error(&r, 401, "virtual_key_not_found");
        assert_eq!(quota(&s, &new).await.status, 200);
        // The periodic sweep forgets the old value for good; still 401.
        assert_eq!(rotate_due(&s.state).await.unwrap(), 0);
        assert_error(&quota(&s, &old).await, 401, "virtual_key_not_found");
        s.stop().await;
    }
);

store_test!(
    without_a_grace_the_old_value_dies_at_once,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        let (_p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (ann, id, old) = holder(&s, eng, "Ann").await;
        let r = s
            .post(
                &format!("{}/virtual-keys/{id}/rotate", PREFIXES[1]),
                json!({}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let new = assert_key_value(&r.body["virtual_key"]["value"]);
        assert_error(&quota(&s, &old).await, 401, "virtual_key_not_found");
        let q = quota(&s, &new).await;
        assert_eq!(q.status, 200);
        assert!(q.body.get("rotated_value").is_none());
        // Extra keys rotate the same way.
        let r = s
            .post(
                &g(&format!("/users/{ann}/virtual-keys")),
                json!({"name": "ci"}),
            )
            .await;
        let extra_id = r.body["virtual_key"]["id"].as_str().unwrap().to_string();
        let extra = assert_key_value(&r.body["virtual_key"]["value"]);
        let extra_new = rotate(&s, &extra_id).await;
        assert_error(&quota(&s, &extra).await, 401, "virtual_key_not_found");
        assert_eq!(quota(&s, &extra_new).await.status, 200);

        let r = s
            .post(
                &g(&format!("/virtual-keys/{}/rotate", uuid::Uuid::new_v4())),
                json!({}),
            )
            .await;
        assert_error(&r, 404, "not_found");
        s.stop().await;
    }
);

store_test!(
    rotating_twice_in_a_grace_keeps_only_the_latest_pair,
    |db: TestDb| async move {
        let (s, clock) = clocked(&db, "1h").await;
        let (_p, eng) = default_of_new_role(&s, "Eng", "Engineers").await;
        let (_ann, id, first) = holder(&s, eng, "Ann").await;
        let second = rotate(&s, &id).await;
        clock.advance(Duration::minutes(5));
        let third = rotate(&s, &id).await;
        assert_error(&quota(&s, &first).await, 401, "virtual_key_not_found");
        let r = quota(&s, &second).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["rotated_value"], third.as_str());
        assert_eq!(quota(&s, &third).await.status, 200);
        s.stop().await;
    }
);

fn rotating_template(name: &str) -> Value {
    let mut body = policy_body(name);
    body["auto_rotation_interval"] = json!("1h");
    body
}

store_test!(
    automatic_rotation_gives_managed_keys_new_values_with_a_day_of_grace,
    |db: TestDb| async move {
        let (s, clock) = clocked(&db, "0s").await;
        let p = template(&s, rotating_template("Rotating")).await;
        let eng = role(&s, "Engineers").await;
        attach_ok(&s, p, &[eng], true, false).await;
        let still = template(&s, policy_body("Still")).await;
        activate(&s, still).await;
        let t = get_template(&s, p).await.body["access_profile"].clone();
        assert_eq!(t["auto_rotation_interval"], 3_600_000_000_000_i64);
        let first_next = at(&t["next_rotation_at"]);
        assert_eq!(first_next, t0() + Duration::hours(1));
        assert_eq!(t["last_rotation_at"], Value::Null);
        let version = t["version"].clone();

        let (ann, _, ann_old) = holder(&s, eng, "Ann").await;
        let (_bob, _, bob_old) = holder(&s, eng, "Bob").await;
        let (carl, _, carl_old) = holder(&s, eng, "Carl").await;
        // Not managed by the rotating template: an extra key and a direct copy's key.
        let r = s
            .post(
                &g(&format!("/users/{ann}/virtual-keys")),
                json!({"name": "ci"}),
            )
            .await;
        let extra = assert_key_value(&r.body["virtual_key"]["value"]);
        let direct = assign(&s, &carl, still).await;
        let direct_value = assert_key_value(&direct["virtual_key"]["value"]);

        // Not due yet.
        clock.advance(Duration::minutes(59));
        assert_eq!(rotate_due(&s.state).await.unwrap(), 0);
        assert_eq!(quota(&s, &ann_old).await.body.get("rotated_value"), None);

        // Past next_rotation_at by more than two intervals.
        clock.advance(Duration::minutes(91)); // t0 + 2h30m
        let rotated_at = t0() + Duration::minutes(150);
        assert_eq!(
            rotate_due(&s.state).await.unwrap(),
            3,
            "the three managed keys"
        );
        let t = get_template(&s, p).await.body["access_profile"].clone();
        assert_eq!(at(&t["last_rotation_at"]), rotated_at);
        let next = at(&t["next_rotation_at"]);
        assert_eq!(next, t0() + Duration::hours(3), "whole intervals past now");
        assert!(next > rotated_at && next - rotated_at <= Duration::hours(1));
        assert_eq!((next - first_next).num_seconds() % 3600, 0);
        assert_eq!(t["version"], version, "the schedule is not a new version");
        // Running it again at once rotates nothing.
        assert_eq!(rotate_due(&s.state).await.unwrap(), 0);

        for k in keys(&s, &ann).await {
            if k["is_access_profile_managed"] == true {
                assert_eq!(at(&k["rotated_at"]), rotated_at);
            } else {
                assert_eq!(k["rotated_at"], Value::Null, "extra keys are not rotated");
            }
        }
        assert_eq!(quota(&s, &extra).await.body.get("rotated_value"), None);
        assert_eq!(
            quota(&s, &direct_value).await.body.get("rotated_value"),
            None
        );

        // Ann, an hour later: her old value works and hands the new one over once.
        clock.advance(Duration::hours(1));
        let r = quota(&s, &ann_old).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let ann_new = assert_key_value(&r.body["rotated_value"]);
        assert_ne!(ann_new, ann_old);
        assert_error(&quota(&s, &ann_old).await, 401, "virtual_key_not_found");
        let r = quota(&s, &ann_new).await;
        assert_eq!(r.status, 200);
        assert_mask_of(
            &keys(&s, &ann)
                .await
                .iter()
                .find(|k| k["is_access_profile_managed"] == true)
                .unwrap()["value"],
            &ann_new,
        );

        // Bob, a minute before the day is over: still works (24 h minimum grace).
        clock.set(rotated_at + Duration::hours(24) - Duration::minutes(1));
        let r = quota(&s, &bob_old).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_key_value(&r.body["rotated_value"]);

        // Carl, when the day is over: the old value is dead.
        clock.set(rotated_at + Duration::hours(24));
        assert_error(&quota(&s, &carl_old).await, 401, "virtual_key_not_found");
        assert_eq!(quota(&s, &ann_new).await.status, 200);
        assert_eq!(quota(&s, &direct_value).await.status, 200);
        assert_eq!(quota(&s, &extra).await.status, 200);
        s.stop().await;
    }
);

store_test!(
    automatic_rotation_uses_a_longer_configured_grace,
    |db: TestDb| async move {
        let (s, clock) = clocked(&db, "48h").await;
        let p = template(&s, rotating_template("Rotating")).await;
        let eng = role(&s, "Engineers").await;
        attach_ok(&s, p, &[eng], true, false).await;
        let (_ann, _, ann_old) = holder(&s, eng, "Ann").await;
        let (_bob, _, bob_old) = holder(&s, eng, "Bob").await;
        clock.advance(Duration::hours(1));
        assert_eq!(rotate_due(&s.state).await.unwrap(), 2);
        let t = get_template(&s, p).await.body["access_profile"].clone();
        assert_eq!(at(&t["next_rotation_at"]), t0() + Duration::hours(2));
        clock.advance(Duration::hours(30));
        let r = quota(&s, &ann_old).await;
        assert_eq!(r.status, 200, "30 h into a 48 h grace: {}", r.text);
        clock.advance(Duration::hours(18));
        assert_error(&quota(&s, &bob_old).await, 401, "virtual_key_not_found");
        s.stop().await;
    }
);

store_test!(
    each_due_run_rotates_again_and_new_copies_join_the_schedule,
    |db: TestDb| async move {
        let (s, clock) = clocked(&db, "0s").await;
        let p = template(&s, rotating_template("Rotating")).await;
        let eng = role(&s, "Engineers").await;
        attach_ok(&s, p, &[eng], true, false).await;
        let (ann, _, _) = holder(&s, eng, "Ann").await;
        clock.advance(Duration::hours(1));
        assert_eq!(rotate_due(&s.state).await.unwrap(), 1);
        let (_bob, _, bob_old) = holder(&s, eng, "Bob").await;
        clock.advance(Duration::minutes(30));
        assert_eq!(rotate_due(&s.state).await.unwrap(), 0);
        clock.advance(Duration::minutes(30));
        assert_eq!(rotate_due(&s.state).await.unwrap(), 2);
        let t = get_template(&s, p).await.body["access_profile"].clone();
        assert_eq!(at(&t["last_rotation_at"]), t0() + Duration::hours(2));
        assert_eq!(at(&t["next_rotation_at"]), t0() + Duration::hours(3));
        let k = &keys(&s, &ann).await[0];
        assert_eq!(at(&k["rotated_at"]), t0() + Duration::hours(2));
        let r = quota(&s, &bob_old).await;
        assert_eq!(r.status, 200);
        assert_key_value(&r.body["rotated_value"]);

        // Turning rotation off stops it.
        let r = s
            .put(
                &g(&format!("/access-profiles/{p}")),
                json!({"auto_rotation_interval": 0}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["access_profile"]["next_rotation_at"], Value::Null);
        clock.advance(Duration::days(3));
        assert_eq!(rotate_due(&s.state).await.unwrap(), 0);
        s.stop().await;
    }
);
