//! The policy engine: the in-memory index of keys, users and copies
//! (`snapshot`), compiled allow-rules (`rules`), usage counters (`counter`),
//! and the decision with its reservation and settlement (`admit`). Pure and
//! deterministic given (snapshot, counters, clock): no I/O, no async.

mod admit;
mod build;
mod counter;
mod denial;
mod ids;
mod rules;
mod snapshot;

#[cfg(test)]
mod build_tests;
#[cfg(test)]
mod tests;

pub use admit::{
    Admission, Caller, Demand, Headroom, Headrooms, Reservation, Settlement, admit, format_time,
    identify,
};
pub use build::{Interner, SnapshotBuilder};
pub use counter::{Counter, CounterState, CounterStore};
pub use denial::{Denial, LimitBreach};
pub use ids::CompactId;
pub use rules::{CompiledRules, Grant, ModelRule};
pub use snapshot::{
    CopyEntry, KeyEntry, KeyHash, KeyRecord, LimitDef, LimitSlot, SlotOverride, Snapshot,
    UserEntry, UserRecords, parse_hash,
};

/// SHA-256 of a presented key value, as the index keys it.
pub fn key_hash(value: &str) -> KeyHash {
    use sha2::{Digest, Sha256};
    Sha256::digest(value.as_bytes()).into()
}
