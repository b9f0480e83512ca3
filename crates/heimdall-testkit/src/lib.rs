//! Test support for Heimdall: fresh stores (SQLite files, PostgreSQL
//! databases), a real server on port 0, an HTTP client that speaks to it,
//! and the mock provider. Tests start what they need and never sleep to wait
//! for a state.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

pub mod db;
pub mod harness;
pub mod mock;

pub use db::TestDb;
pub use harness::{ADMIN_TOKEN, Reply, TestServer};

/// Runs one async test body against SQLite and against PostgreSQL.
///
/// ```ignore
/// store_test!(creates_profile, |db| async move { ... });
/// ```
#[macro_export]
macro_rules! store_test {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::TestDb::sqlite().await;
                ($body)(db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(db) = $crate::TestDb::postgres().await else {
                    return;
                };
                ($body)(db).await;
            }
        }
    };
}
