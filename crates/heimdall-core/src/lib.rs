//! Heimdall's pure core: domain types of access profiles, their validation,
//! money and time. Nothing here performs I/O or depends on an async runtime,
//! so every rule can be unit-tested with an injected clock.

pub mod clock;
pub mod copy;
pub mod directory;
pub mod keys;
pub mod limits;
pub mod money;
pub mod policy;
pub mod pricing;
pub mod profile;
pub mod windows;
