//! Printable renderings of keys and values, which are arbitrary bytes.

/// Bytes shown of a key or value before it is cut short.
pub const SHOWN_BYTES_MAX: usize = 64;

/// `bytes` with printable ASCII as is and everything else escaped (`\x00`,
/// `\n`, `\\`, `\"`), cut after [`SHOWN_BYTES_MAX`] bytes with a note of how
/// many were left out.
pub fn escape(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(SHOWN_BYTES_MAX)];
    let mut out = escape_all(shown);
    if bytes.len() > shown.len() {
        out.push_str(&format!("...(+{} bytes)", bytes.len() - shown.len()));
    }
    out
}

/// All of `bytes`, escaped as [`escape`] does but never cut short: what
/// `ferrisdb shell` prints, in a form its parser reads back.
pub fn escape_all(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_printables_are_escaped() {
        assert_eq!(escape(b"key\x00\xff\"\\"), r#"key\x00\xff\"\\"#);
        assert_eq!(escape(b""), "");
    }

    #[test]
    fn long_values_are_cut() {
        let long = vec![b'a'; SHOWN_BYTES_MAX + 10];
        let shown = escape(&long);
        assert!(shown.starts_with(&"a".repeat(SHOWN_BYTES_MAX)));
        assert!(shown.ends_with("...(+10 bytes)"), "{shown}");
    }
}
