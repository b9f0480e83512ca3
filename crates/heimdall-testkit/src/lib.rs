//! Test support for Heimdall: fresh stores (SQLite files, PostgreSQL
//! databases), a real server on port 0, an HTTP client that speaks to it,
//! and the mock provider. Tests start what they need and never sleep to wait
//! for a state.
//!
//! Everything but the mock provider sits behind the `harness` feature (on by
//! default), so that the `heimdall` binary, which serves the mock for
//! `heimdall mock-provider`, links no test harness and no test databases.

#![allow(clippy::expect_used, clippy::panic, clippy::unwrap_used)]

#[cfg(feature = "harness")]
pub mod db;
#[cfg(feature = "harness")]
pub mod harness;
pub mod mock;

#[cfg(feature = "harness")]
pub use db::TestDb;
#[cfg(feature = "harness")]
pub use harness::{ADMIN_TOKEN, Reply, TestServer};

/// Runs one async test body against SQLite and against PostgreSQL.
///
/// ```ignore
/// store_test!(creates_profile, |db| async move { ... });
/// ```
#[cfg(feature = "harness")]
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
