//! Fresh stores for tests: a SQLite file in its own temporary directory, or a
//! PostgreSQL database created for the test and dropped afterwards, so that
//! tests run in parallel without seeing each other.

use sqlx::Connection;

/// Where the PostgreSQL test server is, unless `HEIMDALL_TEST_POSTGRES_URL` says otherwise.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A store URL owned by one test.
pub struct TestDb {
    pub url: String,
    pub kind: &'static str,
    _dir: Option<tempfile::TempDir>,
    pg_drop: Option<(String, String)>,
}

fn services_required() -> bool {
    std::env::var("HEIMDALL_REQUIRE_SERVICES").is_ok_and(|v| v == "1" || v == "true")
}

impl TestDb {
    /// A new SQLite database file.
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("heimdall.db").display());
        TestDb {
            url,
            kind: "sqlite",
            _dir: Some(dir),
            pg_drop: None,
        }
    }

    /// A new PostgreSQL database, or `None` (loudly) when the server does not
    /// answer. With `HEIMDALL_REQUIRE_SERVICES=1` an absent server fails the test.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = std::env::var("HEIMDALL_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string());
        let conn = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            sqlx::PgConnection::connect(&admin_url),
        )
        .await;
        let mut conn = match conn {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return skip(&admin_url, &e.to_string()),
            Err(_) => return skip(&admin_url, "timed out"),
        };
        let name = format!("heimdall_t_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let _ = conn.close().await;
        let url = replace_database(&admin_url, &name);
        Some(TestDb {
            url,
            kind: "postgres",
            _dir: None,
            pg_drop: Some((admin_url, name)),
        })
    }
}

fn skip(url: &str, why: &str) -> Option<TestDb> {
    if services_required() {
        panic!(
            "PostgreSQL is required (HEIMDALL_REQUIRE_SERVICES=1) but {url} does not answer: {why}"
        );
    }
    eprintln!(
        "\n*** SKIPPED: PostgreSQL at {url} does not answer ({why}); set HEIMDALL_TEST_POSTGRES_URL ***\n"
    );
    None
}

/// Swaps the database name at the end of a PostgreSQL URL.
fn replace_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let root = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin_url, name)) = self.pg_drop.take() {
            // Drop runs outside any runtime guarantee; use a small one of its own.
            let _ = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&mut c)
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

/// Every row of every table of the store, usage counters included, as text
/// (one line per row, sorted), read straight from the database: for tests
/// that assert a request wrote nothing, or exactly one row.
pub async fn every_row(pool: &sqlx::AnyPool) -> Vec<String> {
    use sqlx::Row;
    const TABLES: &[&str] = &[
        "settings",
        "sequences",
        "roles",
        "access_profiles",
        "profile_roles",
        "profile_versions",
        "audit_logs",
        "users",
        "user_profiles",
        "virtual_keys",
        "providers",
        "provider_keys",
        "usage_counters",
        "price_overrides",
    ];
    let mut out = Vec::new();
    for table in TABLES {
        let rows = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(pool)
            .await
            .unwrap_or_else(|e| panic!("read {table}: {e}"));
        for row in rows {
            let mut line = format!("{table}:");
            for i in 0..row.len() {
                let cell = row
                    .try_get::<Option<String>, _>(i)
                    .map(|v| format!("{v:?}"))
                    .or_else(|_| row.try_get::<Option<i64>, _>(i).map(|v| format!("{v:?}")))
                    .or_else(|_| row.try_get::<Option<f64>, _>(i).map(|v| format!("{v:?}")))
                    .or_else(|_| row.try_get::<Option<bool>, _>(i).map(|v| format!("{v:?}")))
                    .or_else(|_| {
                        row.try_get::<Option<Vec<u8>>, _>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .unwrap_or_else(|e| panic!("{table} column {i} unreadable: {e}"));
                line.push_str(&cell);
                line.push('|');
            }
            out.push(line);
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::replace_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            replace_database("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(replace_database("postgres://h", "x"), "postgres://h/x");
    }
}
