//! SSTables: the builder that writes them and the reader that serves them.

pub mod builder;
pub mod cursor;
pub mod inspect;
pub mod table;

pub use builder::TableBuilder;
pub use cursor::TableCursor;
pub use table::{Found, Table};

/// File name of table `number`.
pub fn file_name(number: u64) -> String {
    format!("{number:020}.sst")
}

/// Table number from a file name, if it is one.
pub fn parse_file_name(name: &str) -> Option<u64> {
    name.strip_suffix(".sst")?.parse().ok()
}
