//! Test support for Heimdall: the mock provider (`mock`), and later the
//! server harness on port 0 and store fixtures.
//!
//! Nothing here is used on the production request path; the binary uses only
//! `mock::serve` for `heimdall mock-provider`.

pub mod mock;
