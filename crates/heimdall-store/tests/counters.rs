//! `Store::save_counters`: multi-row upserts in statements of 500 rows,
//! duplicates (the later row wins), rows of copies that no longer exist
//! skipped, and a chunk that fails writes none of its rows — on SQLite and
//! PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;

use common::*;
use heimdall_core::copy::CounterKind;
use heimdall_store::{CounterRow, Store};
use heimdall_testkit::{TestDb, store_test};

fn row(limit: &str, kind: CounterKind, copy: i64, used: i64) -> CounterRow {
    CounterRow {
        limit_id: limit.to_string(),
        kind,
        user_profile_id: copy,
        used,
        window_start: 1_000 + used,
        reset_duration: format!("{}d", used % 7 + 1),
        anchor: 7 * used,
    }
}

type Key = (String, &'static str);

fn key_of(c: &CounterRow) -> Key {
    (c.limit_id.clone(), c.kind.as_str())
}

/// What is stored, by (limit id, kind).
async fn loaded(store: &Store) -> BTreeMap<Key, CounterRow> {
    store
        .load_counters()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (key_of(&c), c))
        .collect()
}

fn expected(rows: &[CounterRow]) -> BTreeMap<Key, CounterRow> {
    rows.iter().map(|c| (key_of(c), c.clone())).collect()
}

/// Two users holding one copy each; returns the copy ids.
async fn two_copies(store: &Store) -> (i64, i64) {
    let r = role(store, "Eng").await;
    default_template(store, "Eng default", r).await;
    user(store, "ann", Some(r)).await;
    user(store, "bob", Some(r)).await;
    let copies = store.list_all_copies().await.unwrap();
    assert_eq!(copies.len(), 2);
    (copies[0].id, copies[1].id)
}

const KINDS: [CounterKind; 3] = [
    CounterKind::Budget,
    CounterKind::Tokens,
    CounterKind::Requests,
];

store_test!(
    batches_of_every_size_around_the_chunk_land_whole,
    |db: TestDb| async move {
        let (store, _pool) = open(&db).await;
        let (a, b) = two_copies(&store).await;
        let mut all: Vec<CounterRow> = Vec::new();
        // 1, 499, 500, 501 and 1,234 rows: one statement, a full one, one
        // over, and three statements.
        for (batch, n) in [1usize, 499, 500, 501, 1234].into_iter().enumerate() {
            let rows: Vec<CounterRow> = (0..n)
                .map(|i| {
                    row(
                        &format!("b{batch}-l{i}"),
                        KINDS[i % 3],
                        if i % 2 == 0 { a } else { b },
                        i as i64,
                    )
                })
                .collect();
            store.save_counters(&rows, now()).await.unwrap();
            all.extend(rows);
            assert_eq!(loaded(&store).await, expected(&all), "after a batch of {n}");
        }
        assert_eq!(
            store.load_counters().await.unwrap().len(),
            1 + 499 + 500 + 501 + 1234
        );
    }
);

store_test!(
    an_upsert_overwrites_every_column_and_the_later_duplicate_wins,
    |db: TestDb| async move {
        let (store, pool) = open(&db).await;
        let (a, _b) = two_copies(&store).await;
        let first: Vec<CounterRow> = (0..700)
            .map(|i| row(&format!("l{i}"), CounterKind::Tokens, a, i))
            .collect();
        store.save_counters(&first, now()).await.unwrap();
        // The same counters again with new values, each twice in one batch
        // (the first occurrence stale), the duplicates far apart so that
        // they would fall into different statements if not merged first.
        let stale: Vec<CounterRow> = (0..700)
            .map(|i| row(&format!("l{i}"), CounterKind::Tokens, a, 99_999))
            .collect();
        let fresh: Vec<CounterRow> = (0..700)
            .map(|i| row(&format!("l{i}"), CounterKind::Tokens, a, 10_000 + i))
            .collect();
        let batch: Vec<CounterRow> = stale.iter().chain(&fresh).cloned().collect();
        store
            .save_counters(&batch, now() + chrono::Duration::seconds(5))
            .await
            .unwrap();
        assert_eq!(loaded(&store).await, expected(&fresh));
        assert_eq!(count_all(&pool, "usage_counters").await, 700);
        // The same limit id under another kind is another counter.
        store
            .save_counters(&[row("l0", CounterKind::Budget, a, 5)], now())
            .await
            .unwrap();
        assert_eq!(count_all(&pool, "usage_counters").await, 701);
        // updated_at is the flush's instant.
        let flushed_at = (now() + chrono::Duration::seconds(5)).timestamp_millis();
        let stamped = count(
            &pool,
            &format!(
                "SELECT COUNT(*) FROM usage_counters WHERE kind = $1 AND updated_at = {flushed_at}"
            ),
            "tokens",
        )
        .await;
        assert_eq!(stamped, 700);
    }
);

store_test!(
    rows_of_copies_that_do_not_exist_are_skipped,
    |db: TestDb| async move {
        let (store, pool) = open(&db).await;
        let (a, b) = two_copies(&store).await;
        let missing = a.max(b) + 1000;
        // Interleaved across chunk boundaries: every third row is orphaned.
        let rows: Vec<CounterRow> = (0..1200)
            .map(|i| {
                let copy = match i % 3 {
                    0 => missing,
                    1 => a,
                    _ => b,
                };
                row(&format!("l{i}"), CounterKind::Requests, copy, i)
            })
            .collect();
        store.save_counters(&rows, now()).await.unwrap();
        let kept: Vec<CounterRow> = rows
            .iter()
            .filter(|c| c.user_profile_id != missing)
            .cloned()
            .collect();
        assert_eq!(loaded(&store).await, expected(&kept));
        assert_eq!(count_all(&pool, "usage_counters").await, 800);
        // A batch made only of orphans writes nothing and is no error.
        let orphans: Vec<CounterRow> = (0..10)
            .map(|i| row(&format!("o{i}"), CounterKind::Budget, missing, i))
            .collect();
        store.save_counters(&orphans, now()).await.unwrap();
        assert_eq!(count_all(&pool, "usage_counters").await, 800);
        // So does an empty batch.
        store.save_counters(&[], now()).await.unwrap();
        assert_eq!(count_all(&pool, "usage_counters").await, 800);
    }
);

store_test!(
    a_failing_statement_writes_none_of_its_rows,
    |db: TestDb| async move {
        let (store, pool) = open(&db).await;
        let (a, b) = two_copies(&store).await;
        let before: Vec<CounterRow> = (0..300)
            .map(|i| row(&format!("l{i}"), CounterKind::Budget, a, i))
            .collect();
        store.save_counters(&before, now()).await.unwrap();
        let stored = every_row(&pool).await;
        fail_when(&store, &pool, "INSERT", "usage_counters", "NEW.used = -1").await;
        // One statement: 299 updates, one new row, and one row that fails.
        let mut batch: Vec<CounterRow> = (1..300)
            .map(|i| row(&format!("l{i}"), CounterKind::Budget, b, 5_000 + i))
            .collect();
        batch.push(row("new", CounterKind::Tokens, b, 1));
        batch.push(row("bad", CounterKind::Tokens, b, -1));
        let err = store.save_counters(&batch, now()).await.unwrap_err();
        assert_injected(err);
        assert_eq!(
            every_row(&pool).await,
            stored,
            "a failed statement left rows behind"
        );

        // Larger batches go in statements of 500, each its own transaction
        // (so that management writes wait for one statement, not a whole
        // flush): a failure stops the flush, and what is stored is whole
        // statements, never part of one and never the failing row.
        let mut big: Vec<CounterRow> = (0..1200)
            .map(|i| row(&format!("x{i}"), CounterKind::Requests, a, 10 + i))
            .collect();
        big.push(row("bad", CounterKind::Tokens, b, -1));
        assert_injected(store.save_counters(&big, now()).await.unwrap_err());
        let written = loaded(&store)
            .await
            .keys()
            .filter(|(l, _)| l.starts_with('x'))
            .count();
        assert!(
            [0, 500, 1000].contains(&written),
            "{written} rows written: not whole statements"
        );
        assert!(
            !loaded(&store)
                .await
                .contains_key(&("bad".to_string(), "tokens"))
        );
    }
);
