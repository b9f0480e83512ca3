//! Compact ids for the policy index. User, key and limit ids are UUIDs in
//! practice (the store mints them), so the index keeps them as 16 bytes
//! inline instead of a 36-character string in its own allocation; an id that
//! is not a UUID in canonical form (lower-case, hyphenated) stays a string.
//! The conversion is exact: an id always prints back as the text it came
//! from, and two ids are equal exactly when their texts are.

use std::fmt;
use std::sync::Arc;

/// Length of a hyphenated UUID.
const UUID_TEXT_LEN: usize = 36;

/// An id as the index holds it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum CompactId {
    /// A canonical UUID: its 16 bytes.
    Uuid([u8; 16]),
    /// Anything else, as written.
    Text(Arc<str>),
}

impl CompactId {
    /// The compact form of `s`.
    pub fn new(s: &str) -> CompactId {
        match canonical_uuid(s) {
            Some(bytes) => CompactId::Uuid(bytes),
            None => CompactId::Text(Arc::from(s)),
        }
    }

    /// Calls `f` with the id's text, formatting a UUID on the stack (no
    /// allocation).
    pub fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            CompactId::Uuid(bytes) => {
                let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
                f(uuid::Uuid::from_bytes(*bytes)
                    .hyphenated()
                    .encode_lower(&mut buf))
            }
            CompactId::Text(s) => f(s),
        }
    }

    /// Whether this is the id written `s`.
    pub fn is(&self, s: &str) -> bool {
        match self {
            CompactId::Uuid(bytes) => canonical_uuid(s).as_ref() == Some(bytes),
            CompactId::Text(t) => &**t == s,
        }
    }
}

/// The bytes of `s` when it is a UUID written the way it prints (so that
/// it round-trips); `None` for any other text, including other UUID
/// spellings (upper case, braces, no hyphens), which stay text.
fn canonical_uuid(s: &str) -> Option<[u8; 16]> {
    if s.len() != UUID_TEXT_LEN {
        return None;
    }
    let u = uuid::Uuid::try_parse(s).ok()?;
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    (u.hyphenated().encode_lower(&mut buf) == s).then(|| *u.as_bytes())
}

impl fmt::Display for CompactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|s| f.write_str(s))
    }
}

impl fmt::Debug for CompactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|s| write!(f, "{s:?}"))
    }
}

impl From<&str> for CompactId {
    fn from(s: &str) -> CompactId {
        CompactId::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canonical_uuid_is_kept_as_bytes_and_prints_back() {
        let s = "0b6c5e1e-8f3a-4c1d-9e2b-7a4f5d6c3b2a";
        let id = CompactId::new(s);
        assert!(matches!(id, CompactId::Uuid(_)));
        assert_eq!(id.to_string(), s);
        assert!(id.is(s));
        assert_eq!(id, CompactId::new(s));
    }

    #[test]
    fn other_ids_stay_text_and_print_back() {
        for s in [
            "t1-d",
            "",
            // Other spellings of a UUID must print as written.
            "0B6C5E1E-8F3A-4C1D-9E2B-7A4F5D6C3B2A",
            "0b6c5e1e8f3a4c1d9e2b7a4f5d6c3b2a",
            "{0b6c5e1e-8f3a-4c1d-9e2b-7a4f5d6c3b2a}",
        ] {
            let id = CompactId::new(s);
            assert!(matches!(id, CompactId::Text(_)), "{s}");
            assert_eq!(id.to_string(), s);
            assert!(id.is(s));
        }
    }

    #[test]
    fn ids_are_equal_exactly_when_their_texts_are() {
        let lower = CompactId::new("0b6c5e1e-8f3a-4c1d-9e2b-7a4f5d6c3b2a");
        let upper = CompactId::new("0B6C5E1E-8F3A-4C1D-9E2B-7A4F5D6C3B2A");
        assert_ne!(lower, upper);
        assert!(!lower.is("0B6C5E1E-8F3A-4C1D-9E2B-7A4F5D6C3B2A"));
        assert!(!upper.is("0b6c5e1e-8f3a-4c1d-9e2b-7a4f5d6c3b2a"));
        assert_ne!(CompactId::new("a"), CompactId::new("b"));
    }

    #[test]
    fn a_uuid_id_is_smaller_than_its_text() {
        // The point of the type: 16 bytes inline plus a tag, no allocation.
        assert!(std::mem::size_of::<CompactId>() <= 24);
    }
}
