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

/// Why an escape after a backslash could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscapeError {
    #[error("unknown escape \\{0}")]
    Unknown(char),
    #[error("\\x must be followed by two hex digits")]
    BadHex,
    #[error("a backslash ends the input")]
    Trailing,
}

/// The byte the escape after a backslash stands for, its characters taken
/// from `chars`: `\xHH`, `\n`, `\r`, `\t`, `\0`, `\\`, `\'` or `\"`.
pub fn unescape_one(chars: &mut std::str::Chars<'_>) -> Result<u8, EscapeError> {
    let c = chars.next().ok_or(EscapeError::Trailing)?;
    Ok(match c {
        'n' => b'\n',
        'r' => b'\r',
        't' => b'\t',
        '0' => 0,
        '\\' | '"' | '\'' => c as u8,
        'x' => {
            let hex: String = chars.take(2).collect();
            if hex.len() != 2 || !hex.chars().all(|h| h.is_ascii_hexdigit()) {
                return Err(EscapeError::BadHex);
            }
            u8::from_str_radix(&hex, 16).expect("two hex digits")
        }
        other => return Err(EscapeError::Unknown(other)),
    })
}

/// The bytes [`escape_all`] rendered: the escapes of [`unescape_one`],
/// everything else as is.
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            out.push(unescape_one(&mut chars).map_err(|e| format!("{text:?}: {e}"))?);
        } else {
            let mut utf8 = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
        }
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
