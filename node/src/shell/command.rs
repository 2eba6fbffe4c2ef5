//! The shell's language: statements separated by `;` or new lines, words
//! separated by spaces, quotes and escapes for arbitrary bytes.
//!
//! A word is bytes: `"..."` or `'...'` quote spaces and `;`, and both inside
//! and outside quotes `\xHH`, `\n`, `\r`, `\t`, `\0`, `\\`, `\"`, `\'` and
//! `\ ` stand for one byte each. This reads back what the shell prints
//! (`escape::escape_all`, Rust's `escape_ascii`).

use crate::escape::{self, EscapeError};

/// One shell command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Get(Vec<u8>),
    Set(Vec<u8>, Vec<u8>),
    Clear(Vec<u8>),
    /// Clears `[start, end)`.
    ClearRange(Vec<u8>, Vec<u8>),
    /// Reads `[start, end)`.
    GetRange {
        start: Vec<u8>,
        end: Vec<u8>,
        limit: Option<u64>,
        reverse: bool,
    },
    Status,
    Help,
    Quit,
}

/// Usage of every command, shown by `help`.
pub const HELP: &str = "\
commands (separate several with `;`):
  get KEY                                  the value of KEY, or (not found)
  set KEY VALUE                            writes VALUE at KEY
  clear KEY                                removes KEY
  clearrange BEGIN END                     removes every key in [BEGIN, END)
  getrange BEGIN END [limit N] [reverse]   keys in [BEGIN, END): one line per entry, then a count
  status                                   the node's status (JSON)
  help                                     this text
  quit                                     leaves the shell
keys and values: quote with \"...\" or '...'; escapes \\xHH \\n \\r \\t \\0 \\\\ \\\" \\' \\ (space)";

/// Why a statement could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unterminated {0} quote")]
    UnterminatedQuote(char),
    #[error("unknown escape \\{0}")]
    UnknownEscape(char),
    #[error("\\x must be followed by two hex digits")]
    BadHexEscape,
    #[error("a backslash ends the input")]
    TrailingBackslash,
    #[error("unknown command {0:?}; type help")]
    UnknownCommand(String),
    #[error("usage: {0}")]
    Usage(&'static str),
}

/// Parses `input` into commands; empty statements are skipped.
pub fn parse(input: &str) -> Result<Vec<Command>, ParseError> {
    split(input)?
        .into_iter()
        .filter(|words| !words.is_empty())
        .map(|words| command(&words))
        .collect()
}

/// The statements of `input`, each a list of words.
fn split(input: &str) -> Result<Vec<Vec<Vec<u8>>>, ParseError> {
    let mut statements = vec![Vec::new()];
    let mut word: Option<Vec<u8>> = None;
    let mut quote: Option<char> = None;
    let mut chars = input.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                let byte = unescape(&mut chars)?;
                word.get_or_insert_with(Vec::new).push(byte);
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => push_char(word.get_or_insert_with(Vec::new), c),
            (None, '"' | '\'') => {
                quote = Some(c);
                word.get_or_insert_with(Vec::new);
            }
            (None, ';' | '\n') => {
                let current = statements.last_mut().expect("never empty");
                current.extend(word.take());
                statements.push(Vec::new());
            }
            (None, c) if c.is_whitespace() => {
                let current = statements.last_mut().expect("never empty");
                current.extend(word.take());
            }
            (None, c) => push_char(word.get_or_insert_with(Vec::new), c),
        }
    }
    if let Some(q) = quote {
        return Err(ParseError::UnterminatedQuote(q));
    }
    statements.last_mut().expect("never empty").extend(word);
    Ok(statements)
}

fn push_char(word: &mut Vec<u8>, c: char) {
    let mut utf8 = [0; 4];
    word.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
}

/// The byte an escape after a backslash stands for: those of
/// [`escape::unescape_one`], plus `\ ` and `\;`.
fn unescape(chars: &mut std::str::Chars<'_>) -> Result<u8, ParseError> {
    if let Some(c @ (' ' | ';')) = chars.clone().next() {
        chars.next();
        return Ok(c as u8);
    }
    escape::unescape_one(chars).map_err(|e| match e {
        EscapeError::Unknown(c) => ParseError::UnknownEscape(c),
        EscapeError::BadHex => ParseError::BadHexEscape,
        EscapeError::Trailing => ParseError::TrailingBackslash,
    })
}

const USAGE_GET: &str = "get KEY";
const USAGE_SET: &str = "set KEY VALUE";
const USAGE_CLEAR: &str = "clear KEY";
const USAGE_CLEARRANGE: &str = "clearrange BEGIN END";
const USAGE_GETRANGE: &str = "getrange BEGIN END [limit N] [reverse]";

fn command(words: &[Vec<u8>]) -> Result<Command, ParseError> {
    let name = String::from_utf8_lossy(&words[0]).to_ascii_lowercase();
    let args = &words[1..];
    let exactly = |n: usize, usage| {
        if args.len() == n {
            Ok(())
        } else {
            Err(ParseError::Usage(usage))
        }
    };
    match name.as_str() {
        "get" => exactly(1, USAGE_GET).map(|()| Command::Get(args[0].clone())),
        "set" => exactly(2, USAGE_SET).map(|()| Command::Set(args[0].clone(), args[1].clone())),
        "clear" => exactly(1, USAGE_CLEAR).map(|()| Command::Clear(args[0].clone())),
        "clearrange" => exactly(2, USAGE_CLEARRANGE)
            .map(|()| Command::ClearRange(args[0].clone(), args[1].clone())),
        "getrange" => getrange(args),
        "status" => exactly(0, "status").map(|()| Command::Status),
        "help" => Ok(Command::Help),
        "quit" | "exit" => exactly(0, "quit").map(|()| Command::Quit),
        _ => Err(ParseError::UnknownCommand(name)),
    }
}

fn getrange(args: &[Vec<u8>]) -> Result<Command, ParseError> {
    let [start, end, options @ ..] = args else {
        return Err(ParseError::Usage(USAGE_GETRANGE));
    };
    let (mut limit, mut reverse) = (None, false);
    let mut options = options.iter();
    while let Some(option) = options.next() {
        match option.as_slice() {
            b"reverse" if !reverse => reverse = true,
            b"limit" if limit.is_none() => {
                let n = options.next().ok_or(ParseError::Usage(USAGE_GETRANGE))?;
                let n = std::str::from_utf8(n)
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .ok_or(ParseError::Usage(USAGE_GETRANGE))?;
                limit = Some(n);
            }
            _ => return Err(ParseError::Usage(USAGE_GETRANGE)),
        }
    }
    Ok(Command::GetRange {
        start: start.clone(),
        end: end.clone(),
        limit,
        reverse,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::escape::escape_all;

    fn b(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    #[test]
    fn statements_split_on_semicolons_and_new_lines() {
        let commands = parse("set k v; get k\nclear k;;  ").expect("parse");
        assert_eq!(
            commands,
            [
                Command::Set(b("k"), b("v")),
                Command::Get(b("k")),
                Command::Clear(b("k")),
            ]
        );
        assert_eq!(parse("   ").expect("empty"), []);
    }

    #[test]
    fn quotes_keep_spaces_and_semicolons() {
        let commands = parse(r#"set "a key; with spaces" 'it''s'"#).expect("parse");
        assert_eq!(commands, [Command::Set(b("a key; with spaces"), b("its"))]);
        assert_eq!(
            parse(r#"get """#).expect("empty key"),
            [Command::Get(Vec::new())]
        );
    }

    #[test]
    fn escapes_give_arbitrary_bytes() {
        let commands = parse(r#"set \x00\xFFk "v\"\n\t\\" "#).expect("parse");
        assert_eq!(
            commands,
            [Command::Set(vec![0, 0xff, b'k'], b("v\"\n\t\\"))]
        );
        assert_eq!(
            parse(r"get a\ b\;c").expect("parse"),
            [Command::Get(b("a b;c"))]
        );
    }

    #[test]
    fn printed_bytes_read_back() {
        let bytes: Vec<u8> = (0..=255).collect();
        let printed = format!("get \"{}\"", escape_all(&bytes));
        assert_eq!(parse(&printed).expect("parse"), [Command::Get(bytes)]);
    }

    #[test]
    fn getrange_options() {
        assert_eq!(
            parse("getrange a z limit 10 reverse").expect("parse"),
            [Command::GetRange {
                start: b("a"),
                end: b("z"),
                limit: Some(10),
                reverse: true
            }]
        );
        assert_eq!(
            parse("GETRANGE a z").expect("parse"),
            [Command::GetRange {
                start: b("a"),
                end: b("z"),
                limit: None,
                reverse: false
            }]
        );
        for bad in [
            "getrange a",
            "getrange a z limit",
            "getrange a z limit x",
            "getrange a z limit -1",
            "getrange a z reverse reverse",
            "getrange a z sideways",
        ] {
            assert_eq!(parse(bad), Err(ParseError::Usage(USAGE_GETRANGE)), "{bad}");
        }
    }

    #[test]
    fn errors_are_reported() {
        assert_eq!(parse("get \"k"), Err(ParseError::UnterminatedQuote('"')));
        assert_eq!(parse("get 'k"), Err(ParseError::UnterminatedQuote('\'')));
        assert_eq!(parse(r"get \q"), Err(ParseError::UnknownEscape('q')));
        assert_eq!(parse(r"get \x4"), Err(ParseError::BadHexEscape));
        assert_eq!(parse(r"get \xZZ"), Err(ParseError::BadHexEscape));
        assert_eq!(parse("get k\\"), Err(ParseError::TrailingBackslash));
        assert_eq!(parse("get"), Err(ParseError::Usage(USAGE_GET)));
        assert_eq!(parse("set k"), Err(ParseError::Usage(USAGE_SET)));
        assert_eq!(parse("clear a b"), Err(ParseError::Usage(USAGE_CLEAR)));
        assert_eq!(
            parse("clearrange a"),
            Err(ParseError::Usage(USAGE_CLEARRANGE))
        );
        assert_eq!(
            parse("fetch k"),
            Err(ParseError::UnknownCommand("fetch".into()))
        );
        // One bad statement fails the whole input: nothing runs.
        assert!(parse("set a 1; bogus").is_err());
    }
}
