//! Listing templates: pagination (`limit`, `offset`), filters (`search`,
//! `tags`, `is_active`), ordering and counts — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use heimdall_testkit::{Reply, TestDb, TestServer, store_test};
use serde_json::json;

fn ids(r: &Reply) -> Vec<i64> {
    r.body["access_profiles"]
        .as_array()
        .unwrap_or_else(|| panic!("no access_profiles: {}", r.text))
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect()
}

async fn list(s: &TestServer, query: &str) -> Reply {
    let r = s.get(&profiles(query)).await;
    assert_eq!(r.status, 200, "{query}: {}", r.text);
    r
}

/// Creates `n` profiles named `p01`…; returns their ids.
async fn seed(s: &TestServer, n: usize) -> Vec<i64> {
    let mut out = Vec::new();
    for i in 1..=n {
        out.push(id_of(&create(s, minimal(&format!("p{i:02}"))).await));
    }
    out
}

store_test!(empty_store_lists_nothing, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    for prefix in PREFIXES {
        let r = s.get(&format!("{prefix}/access-profiles")).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body,
            json!({"access_profiles": [], "count": 0, "total_count": 0, "limit": 50, "offset": 0})
        );
    }
    s.stop().await;
});

store_test!(lists_in_id_order_with_counts, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    // Names in reverse alphabetical order, so that name order and id order differ.
    let mut created = Vec::new();
    for name in ["zeta", "Mu", "alpha"] {
        created.push(create(&s, minimal(name)).await);
    }
    let r = list(&s, "").await;
    assert_eq!(ids(&r), [1, 2, 3]);
    assert_eq!(r.body["count"], 3);
    assert_eq!(r.body["total_count"], 3);
    // Items are full profiles, as GET returns them.
    assert_eq!(r.body["access_profiles"][1], created[1]);
    s.stop().await;
});

store_test!(default_limit_is_fifty, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let all = seed(&s, 55).await;
    let r = list(&s, "").await;
    assert_eq!(r.body["limit"], 50);
    assert_eq!(r.body["offset"], 0);
    assert_eq!(r.body["count"], 50);
    assert_eq!(r.body["total_count"], 55);
    assert_eq!(ids(&r), all[..50]);
    let r = list(&s, "?offset=50").await;
    assert_eq!(ids(&r), all[50..]);
    assert_eq!(r.body["count"], 5);
    assert_eq!(r.body["total_count"], 55);
    s.stop().await;
});

store_test!(limit_and_offset_page_through, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    let all = seed(&s, 7).await;
    let r = list(&s, "?limit=3").await;
    assert_eq!(ids(&r), all[0..3]);
    assert_eq!(r.body["limit"], 3);
    assert_eq!(r.body["count"], 3);
    assert_eq!(r.body["total_count"], 7);
    let r = list(&s, "?limit=3&offset=3").await;
    assert_eq!(ids(&r), all[3..6]);
    assert_eq!(r.body["offset"], 3);
    let r = list(&s, "?limit=3&offset=6").await;
    assert_eq!(ids(&r), all[6..7]);
    assert_eq!(r.body["count"], 1);
    let r = list(&s, "?limit=3&offset=100").await;
    assert_eq!(ids(&r), Vec::<i64>::new());
    assert_eq!(r.body["count"], 0);
    assert_eq!(r.body["total_count"], 7);
    assert_eq!(r.body["offset"], 100);
    // Pages follow ids, so they survive a delete in between.
    assert_eq!(
        s.delete(&profiles(&format!("/{}", all[1]))).await.status,
        200
    );
    let r = list(&s, "?limit=2&offset=1").await;
    assert_eq!(ids(&r), [all[2], all[3]]);
    assert_eq!(r.body["total_count"], 6);
    s.stop().await;
});

store_test!(
    limit_above_maximum_is_clamped_and_echoed,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        seed(&s, 2).await;
        for q in [
            "?limit=501",
            "?limit=100000",
            "?limit=9223372036854775807",
            "?limit=99999999999999999999999",
        ] {
            let r = list(&s, q).await;
            assert_eq!(r.body["limit"], 500, "{q}");
            assert_eq!(r.body["count"], 2);
        }
        let r = list(&s, "?limit=500").await;
        assert_eq!(r.body["limit"], 500);
        // A huge offset is a valid offset past the end.
        let r = list(&s, "?offset=99999999999999999999999").await;
        assert_eq!(r.body["count"], 0);
        assert_eq!(r.body["total_count"], 2);
        s.stop().await;
    }
);

store_test!(
    limit_of_five_hundred_serves_five_hundred,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        seed(&s, 502).await;
        let r = list(&s, "?limit=1000").await;
        assert_eq!(r.body["limit"], 500);
        assert_eq!(r.body["count"], 500);
        assert_eq!(r.body["total_count"], 502);
        let r = list(&s, "?limit=1000&offset=500").await;
        assert_eq!(ids(&r), [501, 502]);
        s.stop().await;
    }
);

store_test!(
    rejects_negative_or_non_numeric_paging,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        seed(&s, 1).await;
        for prefix in PREFIXES {
            for q in [
                "limit=-1",
                "offset=-1",
                "limit=abc",
                "offset=abc",
                "limit=1.5",
                "offset=2.0",
                "limit=-0x1",
            ] {
                let r = s.get(&format!("{prefix}/access-profiles?{q}")).await;
                let what = q.split('=').next().unwrap();
                assert_invalid(&r, &[what]);
            }
        }
        s.stop().await;
    }
);

store_test!(
    search_matches_name_or_description_ignoring_case,
    |db: TestDb| async move {
        let s = TestServer::start(&db).await;
        create(
            &s,
            json!({"name": "Engineering", "description": "builders"}),
        )
        .await;
        create(
            &s,
            json!({"name": "Sales", "description": "Talks to ENGINEERS"}),
        )
        .await;
        create(&s, json!({"name": "Support"})).await;
        create(&s, json!({"name": "Équipe Ünïcode", "description": null})).await;
        let r = list(&s, "?search=engineer").await;
        assert_eq!(ids(&r), [1, 2]);
        assert_eq!(r.body["total_count"], 2);
        let r = list(&s, "?search=ENGINEERING").await;
        assert_eq!(ids(&r), [1]);
        let r = list(&s, "?search=UILD").await;
        assert_eq!(ids(&r), [1], "description matches too");
        let r = list(&s, "?search=s").await;
        assert_eq!(ids(&r), [1, 2, 3]);
        let r = list(&s, "?search=nothing-like-this").await;
        assert_eq!(ids(&r), Vec::<i64>::new());
        assert_eq!(r.body["total_count"], 0);
        let r = list(&s, "?search=%C3%A9QUIPE").await; // "éQUIPE"
        assert_eq!(ids(&r), [4], "Unicode case folding");
        let r = list(&s, "?search=port").await;
        assert_eq!(ids(&r), [3]);
        // Search combines with paging: counts are of the matches.
        let r = list(&s, "?search=s&limit=1&offset=1").await;
        assert_eq!(ids(&r), [2]);
        assert_eq!(r.body["total_count"], 3);
        assert_eq!(r.body["count"], 1);
        // SQL wildcards are plain characters.
        let r = list(&s, "?search=%25").await;
        assert_eq!(ids(&r), Vec::<i64>::new());
        let r = list(&s, "?search=_").await;
        assert_eq!(ids(&r), Vec::<i64>::new());
        s.stop().await;
    }
);

store_test!(tags_filter_requires_every_tag, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    create(&s, json!({"name": "a", "tags": ["eng", "prod"]})).await;
    create(&s, json!({"name": "b", "tags": ["eng"]})).await;
    create(&s, json!({"name": "c", "tags": ["prod", "eng", "eu"]})).await;
    create(&s, json!({"name": "d"})).await;
    assert_eq!(ids(&list(&s, "?tags=eng").await), [1, 2, 3]);
    assert_eq!(ids(&list(&s, "?tags=eng,prod").await), [1, 3]);
    assert_eq!(ids(&list(&s, "?tags=prod,eng").await), [1, 3]);
    assert_eq!(ids(&list(&s, "?tags=eng,%20prod%20").await), [1, 3]);
    assert_eq!(ids(&list(&s, "?tags=eng,prod,eu").await), [3]);
    assert_eq!(ids(&list(&s, "?tags=missing").await), Vec::<i64>::new());
    assert_eq!(ids(&list(&s, "?tags=eng,missing").await), Vec::<i64>::new());
    // A tag is matched whole, not as a substring.
    assert_eq!(ids(&list(&s, "?tags=en").await), Vec::<i64>::new());
    // An empty filter filters nothing.
    assert_eq!(ids(&list(&s, "?tags=").await), [1, 2, 3, 4]);
    let r = list(&s, "?tags=eng,prod&limit=1").await;
    assert_eq!(ids(&r), [1]);
    assert_eq!(r.body["total_count"], 2);
    s.stop().await;
});

store_test!(is_active_filter, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    seed(&s, 4).await;
    for id in [2, 4] {
        assert_eq!(
            s.put(&profiles(&format!("/{id}/activate")), json!({}))
                .await
                .status,
            200
        );
    }
    let r = list(&s, "?is_active=true").await;
    assert_eq!(ids(&r), [2, 4]);
    assert_eq!(r.body["total_count"], 2);
    assert!(
        r.body["access_profiles"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["is_active"] == true)
    );
    assert_eq!(ids(&list(&s, "?is_active=false").await), [1, 3]);
    assert_eq!(ids(&list(&s, "").await), [1, 2, 3, 4]);
    let r = s.get(&profiles("?is_active=maybe")).await;
    assert_invalid(&r, &["is_active"]);
    s.stop().await;
});

store_test!(filters_combine, |db: TestDb| async move {
    let s = TestServer::start(&db).await;
    create(&s, json!({"name": "Eng EU", "tags": ["eng", "eu"]})).await;
    create(&s, json!({"name": "Eng US", "tags": ["eng", "us"]})).await;
    create(&s, json!({"name": "Ops EU", "tags": ["ops", "eu"]})).await;
    create(&s, json!({"name": "Eng EU 2", "tags": ["eng", "eu"]})).await;
    assert_eq!(s.put(&profiles("/4/activate"), json!({})).await.status, 200);
    assert_eq!(ids(&list(&s, "?search=eng&tags=eu").await), [1, 4]);
    assert_eq!(
        ids(&list(&s, "?search=eng&tags=eu&is_active=false").await),
        [1]
    );
    assert_eq!(ids(&list(&s, "?search=eu&is_active=true").await), [4]);
    s.stop().await;
});
