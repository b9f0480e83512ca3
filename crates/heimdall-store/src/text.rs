//! Free text as stored: PostgreSQL `text` cannot hold U+0000, so names and
//! descriptions are written through [`encode_text`] and read back through
//! [`decode_text`] on both backends.

/// PostgreSQL `text` cannot hold U+0000, which a JSON client may send in any
/// string. Free-text columns (names, descriptions) are therefore stored with
/// U+0000 written as U+0001 `0` and U+0001 itself as U+0001 `1`: every other
/// string is stored unchanged, and both backends hold the same bytes.
/// Structured columns are JSON text, where serde already escapes U+0000.
pub(crate) fn encode_text(s: &str) -> String {
    if !s.contains(['\u{0}', '\u{1}']) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\u{0}' => out.push_str("\u{1}0"),
            '\u{1}' => out.push_str("\u{1}1"),
            c => out.push(c),
        }
    }
    out
}

/// The inverse of [`encode_text`].
pub(crate) fn decode_text(s: String) -> String {
    if !s.contains('\u{1}') {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('0') => out.push('\u{0}'),
            Some('1') => out.push('\u{1}'),
            // Not written by `encode_text`; keep what is there.
            Some(other) => {
                out.push('\u{1}');
                out.push(other);
            }
            None => out.push('\u{1}'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{decode_text, encode_text};
    use crate::profiles::name_key;

    #[test]
    fn text_encoding_round_trips_and_leaves_ordinary_text_alone() {
        for s in [
            "",
            "plain",
            "a\u{0}b",
            "\u{0}",
            "\u{1}",
            "\u{1}0",
            "a\u{0}\u{1}0\u{1}1z",
            "é🚀\\0",
        ] {
            assert_eq!(decode_text(encode_text(s)), s, "{s:?}");
            assert!(!encode_text(s).contains('\u{0}'));
        }
        assert_eq!(encode_text("Engineering \\0 'x'"), "Engineering \\0 'x'");
        assert_ne!(encode_text("a\u{0}b"), encode_text("a\u{1}0b"));
        assert_eq!(name_key("ÉQUIPE\u{0}"), encode_text("équipe\u{0}"));
    }
}
