//! YCSB property files (`-P FILE`, Java `.properties` syntax) and overrides
//! (`-p key=value`): later files override earlier ones, and overrides
//! override every file. Each value remembers where it came from, so an
//! error names the file and line (or the `-p`) that set it.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Largest property file read (a workload file is a few hundred bytes).
const FILE_BYTES_MAX: u64 = 1 << 20;

/// Where a property's value was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File { path: PathBuf, line: usize },
    Override,
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{}:{line}", path.display()),
            Origin::Override => f.write_str("-p"),
            Origin::Flag(flag) => f.write_str(flag),
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    value: String,
    origin: Origin,
}

/// Property name to value, with origins.
#[derive(Debug, Clone, Default)]
pub struct Properties {
    entries: BTreeMap<String, Entry>,
}

impl Properties {
    pub fn new() -> Self {
        Properties::default()
    }

    /// Reads `path` and sets every property it holds.
    pub fn load_file(&mut self, path: &Path) -> Result<()> {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("read workload file {}", path.display()))?;
        if meta.len() > FILE_BYTES_MAX {
            bail!(
                "{}: {} bytes; a property file may hold at most {FILE_BYTES_MAX}",
                path.display(),
                meta.len()
            );
        }
        let bytes = std::fs::read(path)
            .with_context(|| format!("read workload file {}", path.display()))?;
        let text = String::from_utf8(bytes)
            .map_err(|e| anyhow::anyhow!("{}: not UTF-8 text ({e})", path.display()))?;
        self.parse_text(&text, path)
    }

    /// Parses `.properties` text: `key=value`, `key: value` or `key value`
    /// per logical line; `#` and `!` start comments; a line ending in an odd
    /// number of backslashes continues on the next; `\t \n \r \f \uXXXX`
    /// and backslash-escaped characters in keys and values.
    pub fn parse_text(&mut self, text: &str, path: &Path) -> Result<()> {
        let mut lines = text.lines().enumerate();
        while let Some((index, raw)) = lines.next() {
            let start_line = index + 1;
            let mut logical = raw.trim_start().to_string();
            if logical.is_empty() || logical.starts_with('#') || logical.starts_with('!') {
                continue;
            }
            while ends_with_continuation(&logical) {
                logical.pop();
                match lines.next() {
                    Some((_, next)) => logical.push_str(next.trim_start()),
                    None => break,
                }
            }
            let at = |msg: String| anyhow::anyhow!("{}:{start_line}: {msg}", path.display());
            let (key, value) = split_line(&logical).map_err(at)?;
            let origin = Origin::File {
                path: path.to_path_buf(),
                line: start_line,
            };
            self.set(key, value, origin);
        }
        Ok(())
    }

    /// A `-p key=value` override.
    pub fn set_override(&mut self, arg: &str) -> Result<()> {
        let Some((key, value)) = arg.split_once('=') else {
            bail!("-p {arg}: expected key=value");
        };
        let key = key.trim();
        if key.is_empty() {
            bail!("-p {arg}: the property name is empty");
        }
        self.set(key.to_string(), value.trim().to_string(), Origin::Override);
        Ok(())
    }

    pub fn set(&mut self, key: String, value: String, origin: Origin) {
        self.entries.insert(key, Entry { value, origin });
    }

    /// The value of `key` and where it was set.
    pub fn get(&self, key: &str) -> Option<(&str, &Origin)> {
        self.entries.get(key).map(|e| (e.value.as_str(), &e.origin))
    }

    /// Every property, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries
            .iter()
            .map(|(k, e)| (k.as_str(), e.value.as_str()))
    }

    /// Fails on the first property whose name is not in `known`, naming the
    /// closest known name.
    pub fn check_known(&self, known: &[&str]) -> Result<()> {
        for (key, entry) in &self.entries {
            if known.contains(&key.as_str()) {
                continue;
            }
            let closest = known
                .iter()
                .map(|k| (edit_distance(k, key), *k))
                .min()
                .filter(|(d, _)| *d <= 3);
            match closest {
                Some((_, name)) => bail!(
                    "{}: unknown property `{key}` (did you mean `{name}`?)",
                    entry.origin
                ),
                None => bail!(
                    "{}: unknown property `{key}`; known: {}",
                    entry.origin,
                    known.join(", ")
                ),
            }
        }
        Ok(())
    }
}

/// Typed reads, each error naming where the value was set.
impl Properties {
    /// A whole number in `min..=max`, or `None` when unset.
    pub fn opt_u64(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>> {
        let Some((text, origin)) = self.get(key) else {
            return Ok(None);
        };
        match text.parse::<u64>() {
            Ok(v) if (min..=max).contains(&v) => Ok(Some(v)),
            Ok(_) => bail!("{origin}: {key}={text}: must be in {min}..={max}"),
            Err(_) => bail!("{origin}: {key}={text}: not a whole number"),
        }
    }

    pub fn u64(&self, key: &str, default: u64, min: u64, max: u64) -> Result<u64> {
        Ok(self.opt_u64(key, min, max)?.unwrap_or(default))
    }

    pub fn required_u64(&self, key: &str, min: u64, max: u64) -> Result<u64> {
        match self.opt_u64(key, min, max)? {
            Some(v) => Ok(v),
            None => bail!("{key} is not set: give it in a workload file (-P) or with -p {key}=N"),
        }
    }

    /// A number in `min..=max`, or `None` when unset.
    pub fn f64(&self, key: &str, min: f64, max: f64) -> Result<Option<f64>> {
        let Some((text, origin)) = self.get(key) else {
            return Ok(None);
        };
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() && (min..=max).contains(&v) => Ok(Some(v)),
            Ok(_) => bail!("{origin}: {key}={text}: must be in {min}..={max}"),
            Err(_) => bail!("{origin}: {key}={text}: not a number"),
        }
    }

    pub fn fraction(&self, key: &str, default: f64) -> Result<f64> {
        Ok(self.f64(key, 0.0, 1.0)?.unwrap_or(default))
    }

    pub fn bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some((text, _)) if text.eq_ignore_ascii_case("true") => Ok(true),
            Some((text, _)) if text.eq_ignore_ascii_case("false") => Ok(false),
            Some((text, origin)) => bail!("{origin}: {key}={text}: expected true or false"),
        }
    }

    pub fn choice<T: Copy>(&self, key: &str, default: &str, options: &[(&str, T)]) -> Result<T> {
        let (text, origin) = match self.get(key) {
            Some((text, origin)) => (text, Some(origin)),
            None => (default, None),
        };
        if let Some((_, v)) = options
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(text))
        {
            return Ok(*v);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let at = origin.map_or(String::new(), |o| format!("{o}: "));
        bail!(
            "{at}{key}={text}: not supported here; one of {}",
            names.join(", ")
        )
    }
}

fn ends_with_continuation(line: &str) -> bool {
    line.bytes().rev().take_while(|&b| b == b'\\').count() % 2 == 1
}

/// Splits a logical line into its unescaped key and value.
fn split_line(line: &str) -> Result<(String, String), String> {
    let mut key = String::new();
    let mut chars = line.chars().peekable();
    let mut separated = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => key.push(unescape(&mut chars)?),
            '=' | ':' => {
                separated = true;
                break;
            }
            c if c.is_whitespace() => {
                while chars.next_if(|c| c.is_whitespace()).is_some() {}
                if chars.next_if(|&c| c == '=' || c == ':').is_some() {
                    separated = true;
                }
                break;
            }
            c => key.push(c),
        }
    }
    if key.is_empty() {
        return Err(format!("expected key=value, got `{line}`"));
    }
    if separated {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
    }
    let mut value = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => value.push(unescape(&mut chars)?),
            c => value.push(c),
        }
    }
    Ok((key, value.trim_end().to_string()))
}

/// The character after a backslash.
fn unescape(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, String> {
    match chars.next() {
        Some('t') => Ok('\t'),
        Some('n') => Ok('\n'),
        Some('r') => Ok('\r'),
        Some('f') => Ok('\u{c}'),
        Some('u') => {
            let hex: String = (0..4).filter_map(|_| chars.next()).collect();
            u32::from_str_radix(&hex, 16)
                .ok()
                .filter(|_| hex.len() == 4)
                .and_then(char::from_u32)
                .ok_or_else(|| format!("bad escape `\\u{hex}` (want four hex digits)"))
        }
        Some(c) => Ok(c),
        None => Err("a backslash ends the line".into()),
    }
}

/// Levenshtein distance, for "did you mean".
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Properties> {
        let mut p = Properties::new();
        p.parse_text(text, Path::new("w"))?;
        Ok(p)
    }

    fn value<'a>(p: &'a Properties, key: &str) -> Option<&'a str> {
        p.get(key).map(|(v, _)| v)
    }

    #[test]
    fn java_properties_syntax() {
        let p = parse(
            "# comment\n! also a comment\n\n  recordcount=1000\noperationcount : 2000\n\
             workload site.ycsb.workloads.CoreWorkload\nlong=a\\\n   b\\\\\nkey\\ with\\=esc=\\u0041\\t\n\
             empty=\ntrailing = x   \n",
        )
        .expect("parses");
        assert_eq!(value(&p, "recordcount"), Some("1000"));
        assert_eq!(value(&p, "operationcount"), Some("2000"));
        assert_eq!(
            value(&p, "workload"),
            Some("site.ycsb.workloads.CoreWorkload")
        );
        assert_eq!(value(&p, "long"), Some("ab\\"));
        assert_eq!(value(&p, "key with=esc"), Some("A"));
        assert_eq!(value(&p, "empty"), Some(""));
        assert_eq!(value(&p, "trailing"), Some("x"));
        let (_, origin) = p.get("operationcount").expect("set");
        assert_eq!(origin.to_string(), "w:5");
    }

    #[test]
    fn later_values_and_overrides_win() {
        let mut p = parse("recordcount=10\nrecordcount=20\nfieldcount=3\n").expect("parses");
        assert_eq!(value(&p, "recordcount"), Some("20"));
        p.set_override("fieldcount = 7").expect("override");
        p.parse_text("fieldcount=9\n", Path::new("later"))
            .expect("parses");
        assert_eq!(value(&p, "fieldcount"), Some("9"));
        p.set_override("fieldcount=11").expect("override");
        assert_eq!(
            p.get("fieldcount").map(|(v, o)| (v, o.clone())),
            Some(("11", Origin::Override))
        );
        assert_eq!(p.iter().count(), 2);
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let err = parse("recordcount=1\n=5\n").expect_err("empty key");
        assert_eq!(err.to_string(), "w:2: expected key=value, got `=5`");
        let err = parse("a=\\u00zz\n").expect_err("bad escape");
        assert!(err.to_string().starts_with("w:1: bad escape"), "{err}");
        let mut p = Properties::new();
        assert!(p.set_override("novalue").is_err());
        assert!(p.set_override("=1").is_err());
        let err = p
            .load_file(Path::new("/nonexistent/workloadz"))
            .expect_err("missing file");
        assert!(
            format!("{err:#}").contains("/nonexistent/workloadz"),
            "{err:#}"
        );
    }

    #[test]
    fn unknown_properties_are_refused_with_a_suggestion() {
        let known = ["readproportion", "recordcount", "fieldcount"];
        let p = parse("recordcount=1\nreadproprtion=0.5\n").expect("parses");
        let err = p.check_known(&known).expect_err("typo");
        assert_eq!(
            err.to_string(),
            "w:2: unknown property `readproprtion` (did you mean `readproportion`?)"
        );
        let mut p = Properties::new();
        p.set_override("zzzzzzzzzz=1").expect("override");
        let err = p.check_known(&known).expect_err("unknown");
        assert!(
            err.to_string()
                .starts_with("-p: unknown property `zzzzzzzzzz`; known: ")
        );
        assert!(
            parse("recordcount=1\n")
                .expect("parses")
                .check_known(&known)
                .is_ok()
        );
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
