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

/// The bytes [`escape_all`] rendered: `\xHH`, `\n`, `\r`, `\t`, `\0`,
/// `\\`, `\'` and `\"` escapes, everything else as is.
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let escaped = match bytes.next() {
            Some(b'x') => {
                let hex: Vec<u8> = bytes.by_ref().take(2).collect();
                let digits = std::str::from_utf8(&hex).ok().filter(|h| h.len() == 2);
                digits
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("{text:?}: \\x must be followed by two hex digits"))?
            }
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'0') => 0,
            Some(c @ (b'\\' | b'\'' | b'"')) => c,
            _ => return Err(format!("{text:?}: unknown escape")),
        };
        out.push(escaped);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_reverses_escape_all() {
        let raw = b"k\x00\xff\"'\\\n\tz".to_vec();
        assert_eq!(unescape(&escape_all(&raw)).unwrap(), raw);
        assert!(unescape(r"\x4").is_err());
        assert!(unescape(r"\q").is_err());
    }

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
