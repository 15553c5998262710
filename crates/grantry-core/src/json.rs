//! JSON written by hand on hot paths (a token answer, a proxied answer's links).

/// Whether `text` goes into a JSON string as it is, with nothing to escape: printable ASCII, no
/// quote, no backslash. A fold without an early exit, so the compiler checks many bytes at once:
/// tokens are kilobytes long and this runs on every token read.
pub fn needs_no_escape(text: &[u8]) -> bool {
    text.iter().fold(true, |plain, &b| {
        plain & ((0x20..0x7f).contains(&b) & (b != b'"') & (b != b'\\'))
    })
}

#[cfg(test)]
mod tests {
    use super::needs_no_escape;

    #[test]
    fn only_printable_ascii_without_quotes_or_backslashes_needs_no_escape() {
        assert!(needs_no_escape(
            b"https://api.bitbucket.org/2.0/users/{a-b}?page=2"
        ));
        assert!(needs_no_escape(b""));
        // Quotes, backslashes and control characters need escaping; DEL and anything beyond
        // ASCII are left to serde_json too, which is never wrong.
        for other in [
            &b"a\"b"[..],
            b"a\\b",
            b"tab\t",
            b"\x7f",
            "\u{e9}t\u{e9}".as_bytes(),
        ] {
            assert!(!needs_no_escape(other), "{other:?}");
        }
    }
}
