//! Virtual-key values: generation, hashing, masking. A value is `sk-bf-`
//! followed by 40 base62 characters from a CSPRNG; the store keeps only its
//! SHA-256 hash and last four characters.

use rand::Rng;
use sha2::{Digest, Sha256};

/// Every virtual key starts with this.
pub const KEY_PREFIX: &str = "sk-bf-";
const RANDOM_CHARS: usize = 40;
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A fresh key value.
pub fn generate_value() -> String {
    let mut rng = rand::rng();
    let mut v = String::with_capacity(KEY_PREFIX.len() + RANDOM_CHARS);
    v.push_str(KEY_PREFIX);
    for _ in 0..RANDOM_CHARS {
        v.push(BASE62[rng.random_range(0..BASE62.len())] as char);
    }
    v
}

/// SHA-256 of the value exactly as sent, lower-case hex.
pub fn hash_value(value: &str) -> String {
    hex(&Sha256::digest(value.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    s
}

/// The last four characters, kept for the mask.
pub fn last4(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// `sk-bf-****abcd`.
pub fn mask(last4: &str) -> String {
    format!("{KEY_PREFIX}****{last4}")
}

/// Whether a header value counts as a virtual key (prefix, any case).
pub fn looks_like_virtual_key(value: &str) -> bool {
    value
        .get(..KEY_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(KEY_PREFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_prefix_and_enough_base62() {
        let v = generate_value();
        assert!(v.starts_with("sk-bf-"));
        assert_eq!(v.len(), 46);
        assert!(v[6..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(v, generate_value());
    }

    #[test]
    fn hash_and_mask() {
        assert_eq!(hash_value("abc").len(), 64);
        assert_eq!(hash_value("abc"), hash_value("abc"));
        assert_eq!(mask(&last4("sk-bf-xyz1234")), "sk-bf-****1234");
        assert!(looks_like_virtual_key("SK-BF-abc"));
        assert!(!looks_like_virtual_key("sk-abc"));
    }
}
